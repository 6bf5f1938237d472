"""musicnn (Pons and Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", ISMIR
2019 late-breaking demo; the ``musicnn`` 0.1.0 package, ISC licence) rebuilt in Keras 3 from its TF1 checkpoints.

In:  waveforms (batch, 48000): three seconds at 16 kHz, float32 in about [-1, 1].
Out: (batch, 50) tag probabilities (sigmoid), in the order of ``MTT_LABELS`` / ``MSD_LABELS``.

Layers a head can read (``--source-layer``), as the package's extractor names them: ``timbral`` (batch, 187, 408)
and ``temporal`` (batch, 187, 153), the front end's two kinds of filters, pooled over frequency; ``cnn1``..``cnn3``
(batch, 187, 64), the mid-end; ``max_pool`` and ``mean_pool`` (batch, 753) over time; ``penultimate`` (batch,
200); ``logits`` (batch, 50).

The front end is the package's librosa one computed in TensorFlow (``ported.front_ends.LibrosaMel``): 512-sample
frames every 256 samples, 96 Slaney mel bands from 0 to 8 kHz, ``log10(10000 * mel + 1)``, the first 187 frames.
The package casts the mel spectrogram to float16 before the log; the port stays in float32.
"""

import keras
from keras import layers as L

from ported.front_ends import LibrosaMel

SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 512, 256, 96
FRAMES = 187  # the package's patch of three seconds: librosa.time_to_frames(3, sr, n_fft, hop) + 1
SAMPLES = 3 * SAMPLE_RATE
MTT_LABELS = ("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
              "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
              "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal",
              "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
              "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
              "choral")
MSD_LABELS = ("rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
              "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
              "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
              "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop",
              "70s", "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
              "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy")
# The package's checkpoints this module ports: folder name -> (tag names, what the tags were trained on).
CHECKPOINTS = {"MTT_musicnn": (MTT_LABELS, "MagnaTagATune"), "MSD_musicnn": (MSD_LABELS, "the Million Song Dataset")}


def _pooled_over_frequency(x, filters, kernel, padding, name):
    """A front-end branch: conv (relu), batch norm, max over the remaining frequency bins -> (batch, frames, filters)."""
    x = L.Conv2D(filters, kernel, padding=padding, activation="relu", name=f"{name}_conv")(x)
    x = L.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    x = L.MaxPooling2D((1, x.shape[2]), name=f"{name}_pool")(x)
    return L.Reshape((x.shape[1], filters), name=f"{name}_squeeze")(x)


def build_musicnn(num_classes=50, midend_filters=64, backend_units=200, samples=SAMPLES, name="musicnn"):
    """The musicnn tagger (front end 7774timbraltemporal with 1.6 x its base filters, dense mid-end, global
    max-and-mean pooling, dense back end) on ``samples``-sample 16 kHz waveforms, random weights; ``port_checkpoint``
    fills them from the package's checkpoint."""
    waves = keras.Input((samples,), name="waveform")
    frames = (samples - N_FFT // 2) // HOP + 1  # the package's patch length in frames (FRAMES for three seconds)
    mel = LibrosaMel(N_FFT, HOP, N_MELS, frames=frames, log_scale=10000.0, name="log_mel")(waves)
    x = L.Reshape((frames, N_MELS, 1), name="add_channel")(mel)
    x = L.BatchNormalization(epsilon=1e-3, name="input_bn")(x)
    padded = L.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    timbral = [_pooled_over_frequency(padded, 204, (7, int(share * N_MELS)), "valid", f"timbral{tag}")
               for share, tag in ((0.4, 74), (0.7, 77))]
    temporal = [_pooled_over_frequency(x, 51, (length, 1), "same", f"temporal{length}") for length in (128, 64, 32)]
    front = L.Concatenate(name="front_end")([L.Concatenate(name="timbral")(timbral),
                                             L.Concatenate(name="temporal")(temporal)])
    layers, x = [front], front
    for i in (1, 2, 3):
        y = L.ZeroPadding1D(3, name=f"cnn{i}_pad")(x)
        y = L.Conv1D(midend_filters, 7, activation="relu", name=f"cnn{i}_conv")(y)
        y = L.BatchNormalization(epsilon=1e-3, name=f"cnn{i}_bn")(y)
        x = L.Identity(name="cnn1")(y) if i == 1 else L.Add(name=f"cnn{i}")([y, x])
        layers.append(x)
    features = L.Concatenate(name="mid_end")(layers)
    max_pool = L.GlobalMaxPooling1D(name="max_pool")(features)
    mean_pool = L.GlobalAveragePooling1D(name="mean_pool")(features)
    width = features.shape[-1]
    # The package interleaves the two poolings (max, mean of feature 0, then of feature 1, ...).
    pairs = L.Concatenate(name="max_mean")([L.Reshape((width, 1), name="max_pool_column")(max_pool),
                                            L.Reshape((width, 1), name="mean_pool_column")(mean_pool)])
    x = L.BatchNormalization(epsilon=1e-3, name="pooled_bn")(L.Flatten(name="pooled")(pairs))
    x = L.Dense(backend_units, activation="relu", name="dense")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="penultimate")(x)
    logits = L.Dense(num_classes, name="logits")(x)
    return keras.Model(waves, L.Activation("sigmoid", name="taggram")(logits), name=name)


# The checkpoint's layers in the order the package creates them (TF1 names conv2d, conv2d_1, ...), and the port's.
CONV_ORDER = ("timbral74_conv", "timbral77_conv", "temporal128_conv", "temporal64_conv", "temporal32_conv",
              "cnn1_conv", "cnn2_conv", "cnn3_conv")
BN_ORDER = ("input_bn", "timbral74_bn", "timbral77_bn", "temporal128_bn", "temporal64_bn", "temporal32_bn",
            "cnn1_bn", "cnn2_bn", "cnn3_bn", "pooled_bn", "penultimate")
DENSE_ORDER = ("dense", "logits")


def _tf1_name(kind, index):
    return kind if index == 0 else f"{kind}_{index}"


def port_checkpoint(model, checkpoint_dir):
    """Fill ``build_musicnn``'s weights from a package checkpoint folder (e.g. ``.../musicnn/MTT_musicnn``), read
    with TensorFlow's checkpoint reader; returns ``model``. A mid-end convolution's (7, width, 1, filters) kernel
    becomes the equivalent Conv1D's (7, width, filters)."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_dir.rstrip("/") + "/")

    def get(name):
        return reader.get_tensor(name)

    for i, layer in enumerate(CONV_ORDER):
        kernel = get(f"{_tf1_name('conv2d', i)}/kernel")
        target = model.get_layer(layer)
        kernel = kernel.reshape(target.kernel.shape)
        target.set_weights([kernel, get(f"{_tf1_name('conv2d', i)}/bias")])
    for i, layer in enumerate(BN_ORDER):
        base = _tf1_name("batch_normalization", i)
        model.get_layer(layer).set_weights([get(f"{base}/{v}") for v in ("gamma", "beta", "moving_mean",
                                                                         "moving_variance")])
    for i, layer in enumerate(DENSE_ORDER):
        base = _tf1_name("dense", i)
        model.get_layer(layer).set_weights([get(f"{base}/kernel"), get(f"{base}/bias")])
    return model
