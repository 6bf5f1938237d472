"""A user's saved Keras audio model as the frozen source of V2S (``v2s_main.py --source-model PATH.keras``).

In:  a ``.keras`` file whose model takes a waveform, (batch, samples) or (batch, samples, 1), at ``rate`` Hz; the
     name of the layer the head reads (default ``default_layer``).
Out: ``keras_source(path, rate, layer)``: a model named ``KERAS_SOURCE`` taking V2S's one second of 16 kHz audio,
     (batch, 16000), and giving that layer's output as (batch, D) features: a layer's (batch, time, d) or
     (batch, time, a, b) output is pooled over time (mean, standard deviation and maximum,
     ``ts_model.PooledFeatures``).

On the way in, the second is resampled to ``rate`` (``Resample``: band-limited, by the FFT) and, when the model
takes a fixed number of samples longer than one second at its rate, repeated to fill it (``FillLength``); a model
that takes less than one second is refused (V2S plays a series as one second). The model's weights stay frozen.
"""

import os
import zipfile

import keras
from keras import layers as L
from keras import ops

from engine.errors import UsageError
from speech.commands import SAMPLE_RATE
from speech.spec import KERAS_SOURCE, SOURCE_RATE_RANGE


@keras.saving.register_keras_serializable(package="V2S")
class Resample(L.Layer):
    """Band-limited resampling of a batch of waveforms by the FFT: (batch, n_in) -> (batch, n_out).

    The spectrum of each row is cut (or zero-padded) to ``n_out // 2 + 1`` bins and inverted to ``n_out`` samples,
    scaled by n_out / n_in so amplitudes keep their size: a tone below both Nyquist rates keeps its frequency in Hz
    when one second of ``n_in`` samples becomes one second of ``n_out``. Differentiable, so delta trains through it.
    """

    def __init__(self, n_out, **kwargs):
        super().__init__(**kwargs)
        self.n_out = int(n_out)

    def call(self, x):
        import tensorflow as tf

        n_in, bins = x.shape[-1], self.n_out // 2 + 1
        spectrum = tf.signal.rfft(x)
        have = n_in // 2 + 1
        spectrum = spectrum[:, :bins] if have >= bins else tf.pad(spectrum, [[0, 0], [0, bins - have]])
        return tf.signal.irfft(spectrum, fft_length=[self.n_out]) * (self.n_out / n_in)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_out)

    def get_config(self):
        return {**super().get_config(), "n_out": self.n_out}


@keras.saving.register_keras_serializable(package="V2S")
class FillLength(L.Layer):
    """Repeat each waveform and cut it to ``length`` samples: (batch, n) -> (batch, length), length >= n."""

    def __init__(self, length, **kwargs):
        super().__init__(**kwargs)
        self.length = int(length)

    def call(self, x):
        copies = -(-self.length // x.shape[-1])
        return ops.tile(x, (1, copies))[:, :self.length]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.length)

    def get_config(self):
        return {**super().get_config(), "length": self.length}


def load_waveform_model(path):
    """The model saved in ``path``; ``UsageError`` naming the file unless it is a loadable ``.keras`` model."""
    flag = f"--source-model {path}"
    if os.path.isdir(path) or not os.path.isfile(path):
        raise UsageError(f"{flag}: no such file; expected a model saved by Keras (model.save('name.keras'))")
    if not (path.endswith(".keras") and zipfile.is_zipfile(path)):
        raise UsageError(f"{flag} is not a .keras model file (Keras 3's model.save('name.keras') writes one)")
    import ported.crepe  # noqa: F401  (registers the layers of the ported models in weight/)
    import ported.front_ends  # noqa: F401
    import ts_model  # noqa: F401  (registers V2S's layers: a V2S source model saved whole loads too)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # a damaged zip, an unregistered custom layer, another Keras' format: all one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{flag} cannot be loaded by Keras: {reason[:200]}") from None
    return model


def waveform_length(model, path):
    """Samples per example the model takes (None: any number); refuses an input that is not one waveform."""
    shapes = [tuple(i.shape) for i in model.inputs]
    shape = shapes[0] if len(shapes) == 1 else None
    if shape is None or not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 1)):
        shown = ", ".join(str(s) for s in shapes)
        raise UsageError(f"--source-model {path} takes inputs of shape {shown}; a source takes one waveform, "
                         "(batch, samples) or (batch, samples, 1)")
    return shape[1]


def has_class_outputs(model):
    """Whether the model ends in class (or tag) probabilities: a softmax or sigmoid as its last layer or that
    layer's activation."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return len(model.outputs[0].shape) == 2 and (isinstance(last, L.Softmax) or
                                                 getattr(activation, "__name__", "") in ("softmax", "sigmoid"))


def default_layer(model):
    """The layer the head reads when none is named: the one before the class outputs of a classifier, the output
    layer of any other model (an embedding model's embedding)."""
    last = model.layers[-1]
    if not has_class_outputs(model):
        return last.name
    before = last.input._keras_history.operation
    return last.name if isinstance(before, L.InputLayer) else before.name


def check_rate(model, rate, path):
    """Refuse a rate outside SOURCE_RATE_RANGE, or one that a layer of the model names otherwise (``sample_rate``)."""
    if not (isinstance(rate, int) and SOURCE_RATE_RANGE[0] <= rate <= SOURCE_RATE_RANGE[1]):
        low, high = SOURCE_RATE_RANGE
        raise UsageError(f"--source-rate must be a sampling rate in Hz from {low} to {high}, got {rate}")
    for layer in _all_layers(model):
        try:
            own = layer.get_config().get("sample_rate")
        except (NotImplementedError, TypeError, AttributeError):  # a layer that cannot describe itself names no rate
            own = None
        if isinstance(own, (int, float)) and int(own) != rate:
            raise UsageError(f"--source-rate {rate}: layer {layer.name!r} of {path} is set for {int(own)} Hz; pass "
                             f"--source-rate {int(own)}")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def checked_source(path, rate=SAMPLE_RATE, layer=None):
    """(model, samples it takes or None, the layer the head reads) of the model in ``path``; ``UsageError`` naming
    the flag when the file, its input, the rate or the layer does not fit (before a run writes anything)."""
    model = load_waveform_model(path)
    length = waveform_length(model, path)
    check_rate(model, rate, path)
    if length is not None and length < rate:
        raise UsageError(f"--source-model {path} takes {length} samples, {length / rate:.2f} s at --source-rate "
                         f"{rate}; V2S plays a series as one second: it needs a model of at least {rate} samples")
    names = [each.name for each in model.layers]
    layer = layer or default_layer(model)
    if layer not in names:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise UsageError(f"--source-layer {layer!r}: {path} has no such layer; its layers: {shown}")
    return model, length, layer


def keras_source(path, rate=SAMPLE_RATE, layer=None):
    """The frozen source V2S reads: (batch, 16000) one second at 16 kHz -> (batch, D) features of ``layer`` of the
    model in ``path`` (default ``default_layer``), with the model's own weights. See the module docstring."""
    from ts_model import PooledFeatures

    model, length, layer = checked_source(path, rate, layer)
    read = keras.Model(model.inputs, model.get_layer(layer).output, name=f"{model.name}_to_{layer}")
    read.trainable = False
    wave = inputs = keras.Input((SAMPLE_RATE,), name="input")
    if rate != SAMPLE_RATE:
        wave = Resample(rate, name="resample")(wave)
    if length is not None and length > rate:
        wave = FillLength(length, name="fill_length")(wave)
    if len(model.inputs[0].shape) == 3:
        wave = L.Reshape((-1, 1), name="add_channel")(wave)
    features = read(wave)
    if len(features.shape) > 4:
        raise UsageError(f"--source-layer {layer!r} of {path} gives {len(features.shape) - 1}-axis outputs; the head "
                         "reads vectors, or sequences it pools over time (2 or 3 axes)")
    if len(features.shape) > 2:
        features = PooledFeatures(name="pooled_features")([features])
    source = keras.Model(inputs, features, name=KERAS_SOURCE)
    source.trainable = False
    return source
