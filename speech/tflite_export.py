"""A V2S source model (V2Sa, V2Su) as a TensorFlow Lite file: what a device runs, and the ``tflite`` black box.

In:  a source model (``speech.source_model``, kapre_db front end) with its weights.
Out: ``export_tflite(source, path)`` writes a .tflite file taking (1, 16000) waveforms and giving the source's
     (1, 36) class probabilities, equal to the Keras model's to float rounding (``tests/test_black_box.py`` checks
     the shipped ``weight/v2sa.tflite``).

The converter cannot take the model as it is: kapre's STFT layer transposes a complex tensor, which TFLite has no
kernel for, and Keras' LSTMs lower only unrolled over a fixed batch. The exported copy therefore computes the same
front end as ``MagnitudeSTFT`` (``tf.signal.stft`` and its magnitude before any transpose), then the front end's own
filterbank and decibel layers, and clones the rest of the source with its bidirectional LSTMs unrolled, batch 1.
"""

import keras
from keras import layers as L

from speech.commands import SAMPLE_RATE
from speech.spec import HOP, N_FFT


@keras.saving.register_keras_serializable(package="V2S")
class MagnitudeSTFT(L.Layer):
    """(batch, samples, 1) -> (batch, frames, N_FFT // 2 + 1, 1): |STFT| with kapre's framing (Hann, padded at the
    end), the output of the front end's ``STFT`` and ``Magnitude`` layers."""

    def call(self, x):
        import tensorflow as tf

        spectrum = tf.signal.stft(x[:, :, 0], N_FFT, HOP, N_FFT, window_fn=tf.signal.hann_window, pad_end=True)
        return tf.abs(spectrum)[..., None]


def _unrolled(layer):
    """A fresh copy of ``layer`` (weights set afterwards), a bidirectional LSTM unrolled."""
    config = layer.get_config()
    if isinstance(layer, L.Bidirectional):
        for side in ("layer", "backward_layer"):
            if config.get(side):
                config[side]["config"]["unroll"] = True
    return layer.__class__.from_config(config)


def exportable_copy(source):
    """The source model rebuilt for the converter (see the module docstring), sharing nothing, same weights."""
    front = source.get_layer("mel_stft")
    if [type(layer).__name__ for layer in front.layers[:2]] != ["STFT", "Magnitude"]:
        raise ValueError(f"{source.name}'s front end is not kapre's STFT and magnitude; only the kapre_db front end "
                         "exports")
    inputs = keras.Input((SAMPLE_RATE,), batch_size=1, name="input")
    x = MagnitudeSTFT(name="magnitude_stft")(L.Reshape((SAMPLE_RATE, 1), name="add_channel")(inputs))
    copies = []
    for layer in front.layers[2:]:  # the front end's own filterbank and decibel layers
        copies.append((layer.__class__.from_config(layer.get_config()), layer))
        x = copies[-1][0](x)
    tail = keras.Model(front.output, source.output)
    copy = keras.models.clone_model(tail, clone_function=_unrolled)
    model = keras.Model(inputs, copy(x), name=f"{source.name}_tflite")
    for mine, theirs in copies:
        mine.set_weights(theirs.get_weights())
    copy.set_weights(tail.get_weights())
    return model


def export_tflite(source, path):
    """Write ``source`` as a TFLite file at ``path``; returns the number of bytes."""
    import tensorflow as tf

    from utils import atomic_write

    blob = tf.lite.TFLiteConverter.from_keras_model(exportable_copy(source)).convert()

    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(blob)

    atomic_write(path, write)
    return len(blob)
