"""Source acoustic models of V2S: the attention RNN "V2Sa", its U-Net variant "V2Su", a residual CNN "V2Sr" and a
temporal convolutional network "V2St" (the paper's Table 4 sources of about a million parameters).

In:  raw one-second waveforms, shape (batch, 16000), float32 in about [-1, 1], 16 kHz.
Out: class probabilities over the 36 speech-command outputs, shape (batch, 36), in the order of
     ``speech.commands.CLASSES``.

Every architecture has ``mel_stft`` (kapre mel spectrogram, (batch, 125, 80, 1)), ``mel_norm`` (per-utterance
normalisation), ``logits`` (pre-softmax scores, (batch, 36)) and ``output`` (softmax). V2Sa and V2Su also have the
layers CAM and the attention head look up: ``conv2d_1`` and ``conv2d_2`` (the two small conv layers),
``attSoftmax`` (attention weights, (batch, 125)) and ``att_vector`` (the attention-pooled vector, (batch, 128)).
V2Sr and V2St end in ``pooled`` (global average pooling, (batch, channels)) instead.
"""

import os

import kapre.time_frequency  # noqa: F401  (registers kapre's layers so saved models load in a fresh process)
import keras
from keras import layers as L
from keras import ops

from speech.commands import SAMPLE_RATE
from speech.spec import ARCHITECTURES, FRAMES, HOP, MEL_F_MIN, N_FFT, N_MELS, NUM_SOURCE_CLASSES  # noqa: F401
NAMED_LAYERS = ("mel_stft", "mel_norm", "conv2d_1", "conv2d_2", "attSoftmax", "logits", "output")
# V2Sr: stem and stage widths (one residual block of two 3x3 convs per stage, each stage but the first halves the
# resolution); V2St: channels and the dilations of its residual blocks. Both near a million parameters, the size
# the paper gives its ResNet and TCN sources (Table 4), at a fraction of V2Su's multiply-accumulates.
RESNET_WIDTHS = (32, 64, 128, 192)
TCN_WIDTH, TCN_DILATIONS = 180, (1, 2, 4, 8, 16)


@keras.saving.register_keras_serializable(package="V2S")
class UtteranceNormalization(L.Layer):
    """Normalise each example to zero mean and unit variance over all its axes but the batch axis.

    Shape: any (batch, ...) -> same shape. Stateless; the reference code's ``Normalization2D(int_axis=0)``.
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        axes = tuple(range(1, len(x.shape)))
        mean = ops.mean(x, axis=axes, keepdims=True)
        std = ops.std(x, axis=axes, keepdims=True)
        return (x - mean) / (std + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="V2S")
class SpecAugment(L.Layer):
    """SpecAugment-style masking of one random time band and one random frequency band, in training only.

    Shape: (batch, time, freq, channels) -> same. ``time_mask`` / ``freq_mask`` are the largest band widths in
    bins; 0 disables that mask. At inference (``training=False``) this layer is the identity, so a frozen source
    model never masks the reprogrammed input.
    """

    def __init__(self, time_mask=0, freq_mask=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.time_mask = int(time_mask)
        self.freq_mask = int(freq_mask)
        self.seed = seed
        self._rng = keras.random.SeedGenerator(seed)

    def _band(self, batch, length, width, x_dtype):
        """A (batch, length) mask that is 0 on one random band of up to ``width`` bins per example, else 1."""
        size = keras.random.randint((batch, 1), 0, width + 1, seed=self._rng)
        start = keras.random.randint((batch, 1), 0, length, seed=self._rng)
        pos = ops.arange(length)[None, :]
        inside = ops.logical_and(pos >= start, pos < start + size)
        return ops.cast(ops.logical_not(inside), x_dtype)

    def call(self, x, training=False):
        if not training or (self.time_mask == 0 and self.freq_mask == 0):
            return x
        batch = ops.shape(x)[0]
        if self.time_mask:
            x = x * self._band(batch, x.shape[1], self.time_mask, x.dtype)[:, :, None, None]
        if self.freq_mask:
            x = x * self._band(batch, x.shape[2], self.freq_mask, x.dtype)[:, None, :, None]
        return x

    def get_config(self):
        return {**super().get_config(), "time_mask": self.time_mask, "freq_mask": self.freq_mask,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="V2S")
class LastStep(L.Layer):
    """The last time step of a sequence: (batch, time, features) -> (batch, features)."""

    def call(self, x):
        return x[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="V2S")
class LogMelFilterbank(L.Layer):
    """Magnitude spectrogram -> natural-log mel spectrogram, with TensorFlow's HTK mel matrix.

    Shape: (batch, frames, N_FFT // 2 + 1, 1) -> (batch, frames, n_mels, 1). ``log(mel + offset)`` of
    ``tf.signal.linear_to_mel_weight_matrix(n_mels, bins, sample_rate, f_min, f_max)`` (HTK mel scale, no area
    normalisation, DC bin unused): the front end of the original attention RNN's weights (de Andrade et al. 2018).
    """

    def __init__(self, n_mels=N_MELS, sample_rate=SAMPLE_RATE, f_min=MEL_F_MIN, f_max=SAMPLE_RATE / 2,
                 offset=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.n_mels, self.sample_rate, self.f_min, self.f_max, self.offset = (int(n_mels), int(sample_rate),
                                                                              float(f_min), float(f_max),
                                                                              float(offset))

    def build(self, input_shape):
        import tensorflow as tf

        self.matrix = tf.signal.linear_to_mel_weight_matrix(self.n_mels, int(input_shape[2]), self.sample_rate,
                                                            self.f_min, self.f_max)

    def call(self, magnitude):
        mel = ops.einsum("btfc,fm->btmc", magnitude, ops.cast(self.matrix, magnitude.dtype))
        return ops.log(mel + self.offset)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.n_mels, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "n_mels": self.n_mels, "sample_rate": self.sample_rate, "f_min": self.f_min,
                "f_max": self.f_max, "offset": self.offset}


# Front ends a source model can have; a weights file's model card names the one its weights were trained with.
#   kapre_db:     the reference code's kapre mel spectrogram in decibels (this project's pretrained weights);
#   gscv2_logmel: magnitude STFT, TensorFlow's HTK mel matrix, natural log (the original GSC v2 weights).
FRONT_ENDS = ("kapre_db", "gscv2_logmel")


def mel_layer(front_end="kapre_db", input_length=SAMPLE_RATE):
    """The frozen front end ``mel_stft``: (batch, 16000, 1) -> (batch, 125, 80, 1), in kapre layers.

    Both front ends frame the same way (N_FFT-sample Hann windows every HOP samples, padded at the end) and give
    80 mel bands from 40 Hz to 8 kHz; see FRONT_ENDS for how they differ.
    """
    if front_end not in FRONT_ENDS:
        raise ValueError(f"Unknown front end {front_end!r}; expected one of {FRONT_ENDS}.")
    if front_end == "kapre_db":
        from kapre.composed import get_melspectrogram_layer

        mel = get_melspectrogram_layer(
            input_shape=(input_length, 1), n_fft=N_FFT, hop_length=HOP, pad_end=True, sample_rate=SAMPLE_RATE,
            n_mels=N_MELS, mel_f_min=MEL_F_MIN, mel_f_max=SAMPLE_RATE / 2, return_decibel=True,
            input_data_format="channels_last", output_data_format="channels_last", name="mel_stft")
    else:
        from kapre.time_frequency import STFT, Magnitude

        mel = keras.Sequential([keras.Input((input_length, 1)),
                                STFT(n_fft=N_FFT, hop_length=HOP, pad_end=True, input_data_format="channels_last",
                                     output_data_format="channels_last"),
                                Magnitude(), LogMelFilterbank()], name="mel_stft")
    mel.trainable = False
    return mel


def _unet_block(x):
    """U-Net style encoder-decoder over (time, mel); pools along frequency only so 125 frames stay 125."""
    def conv(t, filters, name):
        t = L.Conv2D(filters, (3, 3), padding="same", activation="relu", name=f"{name}_a")(t)
        return L.Conv2D(filters, (3, 3), padding="same", activation="relu", name=f"{name}_b")(t)

    e1 = conv(x, 16, "unet_enc1")
    e2 = conv(L.MaxPooling2D((1, 2), name="unet_pool1")(e1), 32, "unet_enc2")
    b = conv(L.MaxPooling2D((1, 2), name="unet_pool2")(e2), 64, "unet_mid")
    u2 = L.Conv2DTranspose(32, (1, 2), strides=(1, 2), padding="same", name="unet_up2")(b)
    d2 = conv(L.Concatenate(name="unet_cat2")([u2, e2]), 32, "unet_dec2")
    u1 = L.Conv2DTranspose(16, (1, 2), strides=(1, 2), padding="same", name="unet_up1")(d2)
    d1 = conv(L.Concatenate(name="unet_cat1")([u1, e1]), 16, "unet_dec1")
    return L.Conv2D(1, (1, 1), name="unet_out")(d1)


def _residual_body(x, widths=RESNET_WIDTHS):
    """V2Sr: a ResNet over the (125, 80) mel image in the style of the keyword-spotting ResNets of Tang and Lin
    ("Deep residual learning for small-footprint keyword spotting", ICASSP 2018), with a stride-2 stem and one
    stride-2 stage per width so the widest layers see few positions: (batch, 125, 80, 1) -> (batch, widths[-1])."""
    x = L.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="res_stem")(x)
    x = L.ReLU(name="res_stem_relu")(L.BatchNormalization(name="res_stem_bn")(x))
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        name = f"res{i + 1}"
        y = L.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv_a")(x)
        y = L.ReLU(name=f"{name}_relu_a")(L.BatchNormalization(name=f"{name}_bn_a")(y))
        y = L.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv_b")(y)
        y = L.BatchNormalization(name=f"{name}_bn_b")(y)
        if stride != 1 or x.shape[-1] != width:
            x = L.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{name}_shortcut")(x)
        x = L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([x, y]))
    return L.GlobalAveragePooling2D(name="pooled")(x)


def _tcn_body(x, width=TCN_WIDTH, dilations=TCN_DILATIONS):
    """V2St: a temporal convolutional network (Bai, Kolter and Koltun, "An empirical evaluation of generic
    convolutional and recurrent networks for sequence modeling", 2018) over the 125 mel frames, non-causal: residual
    blocks of two dilated kernel-3 convolutions whose dilations double, so the last block sees the whole second:
    (batch, 125, 80, 1) -> (batch, width)."""
    x = L.Reshape((FRAMES, N_MELS), name="frames")(x)
    x = L.Conv1D(width, 1, name="tcn_in")(x)
    for d in dilations:
        name = f"tcn{d}"
        y = L.Conv1D(width, 3, dilation_rate=d, padding="same", use_bias=False, name=f"{name}_conv_a")(x)
        y = L.ReLU(name=f"{name}_relu_a")(L.BatchNormalization(name=f"{name}_bn_a")(y))
        y = L.Conv1D(width, 3, dilation_rate=d, padding="same", use_bias=False, name=f"{name}_conv_b")(y)
        y = L.BatchNormalization(name=f"{name}_bn_b")(y)
        x = L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([x, y]))
    return L.GlobalAveragePooling1D(name="pooled")(x)


def _attention_rnn_tail(x, bn_momentum):
    """V2Sa's (and V2Su's) layers after the mel image: two (5, 1) convs, two BiLSTMs, dot-product attention with
    the last step as the query (de Andrade et al. 2018) and a small dense stack: (batch, 125, 80, c) -> (batch, 32)."""
    x = L.Conv2D(10, (5, 1), activation="relu", padding="same", name="conv2d_1")(x)
    x = L.BatchNormalization(momentum=bn_momentum, name="bn_1")(x)
    x = L.Conv2D(1, (5, 1), activation="relu", padding="same", name="conv2d_2")(x)
    x = L.BatchNormalization(momentum=bn_momentum, name="bn_2")(x)
    x = L.Reshape((-1, x.shape[2]), name="squeeze_last_dim")(x)
    x = L.Bidirectional(L.LSTM(64, return_sequences=True), name="bilstm_1")(x)
    x = L.Bidirectional(L.LSTM(64, return_sequences=True), name="bilstm_2")(x)
    last = LastStep(name="last_step")(x)
    query = L.Dense(128, name="query")(last)
    scores = L.Dot(axes=[1, 2], name="att_scores")([query, x])
    weights = L.Softmax(name="attSoftmax")(scores)
    context = L.Dot(axes=[1, 1], name="att_vector")([weights, x])
    x = L.Dense(64, activation="relu", name="dense_1")(context)
    return L.Dense(32, name="dense_2")(x)


def build_source_model(arch="V2Sa", num_classes=NUM_SOURCE_CLASSES, time_mask=0, freq_mask=0, seed=None,
                       bn_momentum=0.99, front_end="kapre_db"):
    """Build a source model: the attention RNN (``arch="V2Sa"``), its U-Net variant (``"V2Su"``), the residual
    CNN (``"V2Sr"``) or the temporal convolutional network (``"V2St"``); see ``ARCHITECTURES``.

    ``time_mask`` / ``freq_mask`` > 0 add SpecAugment masking used only while training (pretraining); the
    weights are the same either way, so masked and unmasked builds load each other's weights.
    ``front_end``: one of FRONT_ENDS (weights only fit the front end they were trained with).
    ``bn_momentum`` is the moving-average momentum of V2Sa's and V2Su's two batch norms (Keras' 0.99 as in the
    reference code); short training runs need a smaller one, because the second conv layer's output variance is
    tiny (~1e-4) and a 0.99 moving average takes about a thousand steps to get there from its initial 1.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown source architecture {arch!r}; expected one of {ARCHITECTURES}.")
    inputs = keras.Input((SAMPLE_RATE,), name="input")
    x = L.Reshape((SAMPLE_RATE, 1), name="add_channel")(inputs)
    x = mel_layer(front_end)(x)
    x = UtteranceNormalization(name="mel_norm")(x)
    x = SpecAugment(time_mask, freq_mask, seed=seed, name="spec_augment")(x)
    if arch in ("V2Sa", "V2Su"):
        x = _attention_rnn_tail(_unet_block(x) if arch == "V2Su" else x, bn_momentum)
    else:
        x = (_residual_body if arch == "V2Sr" else _tcn_body)(x)
    logits = L.Dense(num_classes, name="logits")(x)
    outputs = L.Softmax(name="output")(logits)
    return keras.Model(inputs, outputs, name=arch)


def check_weights_file(path):
    """Raise a one-line error unless ``path`` is a Keras weights file (.weights.h5, HDF5, readable to its end) or a
    .keras model (zip)."""
    import zipfile

    import h5py

    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; expected a source weights file (.weights.h5) or a .keras model")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Source-model weights not found: {path}")
    is_weights = path.endswith(".h5") and h5py.is_hdf5(path)
    is_model = path.endswith(".keras") and zipfile.is_zipfile(path)
    if not (is_weights or is_model):
        raise ValueError(f"{path} is not a weights file (expected a .weights.h5 file or a .keras model written by "
                         "Keras)")
    if is_weights:
        try:
            with h5py.File(path, "r"):
                pass
        except OSError as err:
            raise ValueError(f"{path} cannot be read as HDF5 ({str(err).split('(')[-1].rstrip(')')}): truncated or "
                             "damaged; copy or download it again") from None
        if not path.endswith(".weights.h5"):
            raise ValueError(f"{path}: Keras reads weights only from files named <name>.weights.h5 (a plain .h5 "
                             "name means its old whole-model format); rename the file to end in .weights.h5")


def load_source_weights(model, path):
    """Load ``.weights.h5`` (or a whole ``.keras`` model's weights) into ``model``.

    Raises ValueError naming the file and the mismatch when the weights belong to another architecture.
    """
    check_weights_file(path)
    try:
        if path.endswith(".keras"):
            other = keras.saving.load_model(path, compile=False)
            model.set_weights(other.get_weights())
        else:
            model.load_weights(path)
    except (ValueError, KeyError, OSError):
        held = _weights_held(path) if path.endswith(".h5") else None
        held = f"; the file holds {held[0]} arrays of {held[1]:,} values" if held else ""
        arch = model_card(path).get("architecture")
        hint = f" (its model card says {arch}: use --arch {arch})" if arch and arch != model.name else ""
        raise ValueError(f"Weights in {path} do not fit the {model.name} architecture ({len(model.weights)} weight "
                         f"tensors, {model.count_params():,} parameters{held}){hint}") from None
    return model


def _weights_held(path):
    """(tensors, parameters) stored in a .weights.h5 file."""
    import h5py

    sizes = []
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: sizes.append(obj.size) if isinstance(obj, h5py.Dataset) else None)
    return len(sizes), int(sum(sizes))


def model_card_path(weights_path):
    """Where the model card of a weights file lives (``x.weights.h5`` or ``x.keras`` -> ``x.json``); None for a
    file of another kind."""
    card = weights_path.replace(".weights.h5", ".json").replace(".keras", ".json")
    return None if card == weights_path else card


def model_card(weights_path):
    """The model card (JSON) beside a weights file (``model_card_path``), or {} when there is none."""
    import json

    card = model_card_path(weights_path)
    if card is None or not os.path.isfile(card):
        return {}
    try:
        with open(card) as fh:
            return json.load(fh)
    except ValueError as err:
        raise ValueError(f"{card}: the model card beside {weights_path} is not JSON ({err})") from None


def load_source_model(weights_path, arch=None):
    """The source model a weights file describes: architecture and front end from its model card, weights loaded.

    ``arch`` overrides the card (default: the card's ``architecture``, else V2Sa). Front end: the card's
    ``front_end`` (cards written before front ends were recorded mean kapre_db).
    """
    check_weights_file(weights_path)
    card = model_card(weights_path)
    model = build_source_model(arch or card.get("architecture", "V2Sa"),
                               front_end=card.get("front_end", "kapre_db"))
    return load_source_weights(model, weights_path)


def count_trainable(model):
    """Number of trainable parameters (the mel front end is frozen, so it does not count)."""
    return int(sum(ops.size(w) for w in model.trainable_weights))
