"""The training-only graph of a V2S model: the same outputs as the model, computed to train fast on a CPU.

In:  a V2S reprogramming model (``ts_model.build_v2s``), series (batch, L).
Out: ``training_graph(model)``: a Keras model sharing every weight of ``model`` that outputs the same
     probabilities, (batch, C), or (batch, K, C) per program for an ensemble of K (each program is trained on its
     own predictions). Only training steps use it; what is saved, evaluated and explained is ``model`` itself.

Two rewrites, both exact up to float rounding (tests/test_programs.py checks predictions and gradients):
  * the front end's STFT by linearity (``ReprogrammedSTFT``): the series' spectra need no gradient and delta's
    spectrum is taken once per batch (and per program), not once per example;
  * when the source model is frozen (``reprogram`` mode), its bidirectional LSTMs run as ``FrozenBiLSTM``
    (``frozen_lstm.frozen_bilstm``: both directions in one XLA-compiled loop, a backward pass for the input
    gradient only).
``bench/profile_v2s.py`` measures what each saves.
"""

import keras
from keras import layers as L

from frozen_lstm import frozen_bilstm
from ts_model import source_of


@keras.saving.register_keras_serializable(package="V2S")
class ReprogrammedSTFT(L.Layer):
    """STFT of reprogrammed waveforms by linearity: STFT(x + delta) = STFT(x) + STFT(delta).

    Inputs: ``[waves, reprogrammed]``: the zero-padded series x (batch, n) and x + delta as ``Reprogram`` made them,
    (K * batch, n) for K programs (one program's delta, with any dropout mask, is the same in all its rows). Out:
    the complex STFT (K * batch, frames, bins, 1) of the reprogrammed waveforms, with the front end's own kapre
    ``STFT`` settings ``stft_config``.

    Why: only delta is trained, so the series' spectra need no gradient and delta's spectrum is computed once per
    batch instead of once per example, which removes the backward pass of the STFT over the batch (about a sixth
    of a training step on a CPU: ``bench/profile_v2s.py``). The forward values equal the plain path's to float
    rounding (tests/test_ts_model.py checks predictions and gradients); program k's delta is recovered as row
    k * batch of ``reprogrammed`` minus row 0 of ``waves``, and the gradient reaches it through that row alone.
    With K programs the series' spectra are also computed once for all K.
    """

    def __init__(self, stft_config, **kwargs):
        super().__init__(**kwargs)
        from kapre.time_frequency import STFT

        self.stft_config = {k: v for k, v in dict(stft_config).items()
                            if k in ("n_fft", "win_length", "hop_length", "window_name", "pad_begin", "pad_end",
                                     "input_data_format", "output_data_format")}
        self.stft = STFT(**self.stft_config)

    def call(self, inputs):
        import tensorflow as tf

        waves, reprogrammed = inputs
        batch = tf.shape(waves)[0]
        # Row k * batch of the stacked reprogrammed waves carries program k's delta (one program: row 0).
        programs = tf.shape(reprogrammed)[0] // batch
        deltas = tf.gather(reprogrammed, tf.range(programs) * batch) - tf.stop_gradient(waves[:1])
        series = tf.stop_gradient(self.stft(waves[:, :, None]))  # (batch, frames, bins, 1)
        spectra = series[None] + self.stft(deltas[:, :, None])[:, None]  # (K, batch, frames, bins, 1)
        return tf.reshape(spectra, tf.concat([[-1], tf.shape(series)[1:]], axis=0))

    def get_config(self):
        return {**super().get_config(), "stft_config": self.stft_config}


@keras.saving.register_keras_serializable(package="V2S")
class FrozenBiLSTM(L.Layer):
    """``Bidirectional(LSTM(units, return_sequences=True))`` with frozen weights, trained through faster.

    Shape: (batch, time, d) -> (batch, time, 2 * units), the wrapped layer's outputs to float rounding. Wraps (and
    reads the weights of) an existing Keras ``Bidirectional`` layer with default LSTM settings; the gradient reaches
    the input only, never the weights (``frozen_lstm``).
    """

    def __init__(self, wrapped, **kwargs):
        super().__init__(name=kwargs.pop("name", f"{wrapped.name}_frozen"), **kwargs)
        cell = wrapped.forward_layer.cell
        settings = (wrapped.merge_mode, wrapped.forward_layer.return_sequences, cell.activation.__name__,
                    cell.recurrent_activation.__name__, cell.use_bias, cell.dropout, cell.recurrent_dropout)
        if settings != ("concat", True, "tanh", "sigmoid", True, 0.0, 0.0):
            raise ValueError(f"FrozenBiLSTM needs a default Bidirectional(LSTM(return_sequences=True)); {wrapped.name} "
                             f"has (merge, return_sequences, activation, recurrent activation, bias, dropouts) "
                             f"{settings}")
        self.wrapped = wrapped

    def call(self, x, mask=None, training=None):
        import tensorflow as tf

        def weights(layer):
            cell = layer.cell
            return [tf.convert_to_tensor(w) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]

        return frozen_bilstm(x, weights(self.wrapped.forward_layer), weights(self.wrapped.backward_layer))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * self.wrapped.forward_layer.units)

    def build(self, input_shape):
        if not self.wrapped.built:
            self.wrapped.build(input_shape)

    def get_config(self):
        return {**super().get_config(), "wrapped": keras.saving.serialize_keras_object(self.wrapped)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["wrapped"] = keras.saving.deserialize_keras_object(config["wrapped"])
        return cls(**config)


def training_graph(model):
    """A model with ``model``'s layers and weights and the same outputs, built to train faster (reprogram modes).

    Everything after the STFT is the source model's own layers, except that a frozen source's bidirectional LSTMs
    become ``FrozenBiLSTM`` (same weights). For an ensemble the output is each program's probabilities (batch,
    K, C).
    """
    source = source_of(model)
    front = source.get_layer("mel_stft")
    stft, *to_mel = front.layers
    tail = keras.Model(front.output, source.output, name=f"{source.name}_after_mel")
    if not source.trainable:
        tail = keras.models.clone_model(
            tail, clone_function=lambda layer: FrozenBiLSTM(layer) if isinstance(layer, L.Bidirectional) else layer)
    inputs = keras.Input(model.input.shape[1:], name="series")
    names = {layer.name for layer in model.layers}
    series = model.get_layer("series_scaling")(inputs) if "series_scaling" in names else inputs
    waves = model.get_layer("segment_padding")(series)
    spectrum = ReprogrammedSTFT(stft.get_config(), name="reprogrammed_stft")([waves,
                                                                            model.get_layer("reprogram")(waves)])
    for layer in to_mel:
        spectrum = layer(spectrum)
    probs = tail(spectrum, training=False)
    return keras.Model(inputs, model.get_layer("label_mapping")(probs), name=f"{model.name}_training")
