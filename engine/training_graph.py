"""The training-only graph of a V2S model: the same outputs as the model, computed to train fast on a CPU.

In:  a V2S reprogramming model (``ts_model.build_v2s``), series (batch, L).
Out: ``training_graph(model)``: a Keras model sharing every weight of ``model`` that outputs the same
     probabilities, (batch, C), or (batch, K, C) per program for an ensemble of K (each program is trained on its
     own predictions). Only training steps use it; what is saved, evaluated and explained is ``model`` itself.

Two rewrites, both exact up to float rounding (tests/test_programs.py checks predictions and gradients):
  * the front end's STFT by linearity (``ReprogrammedSTFT``): the series' spectra need no gradient and delta's
    spectrum is taken once per batch (and per program), not once per example (a program on the waveform only: one
    on the series goes through the non-linear encoding, and the graph takes the plain STFT);
  * when the source model is frozen (``reprogram`` mode), its bidirectional LSTMs run as ``FrozenBiLSTM``
    (``frozen_lstm.frozen_bilstm``: both directions in one XLA-compiled loop, a backward pass for the input
    gradient only), and its first batch norm is folded into the convolution after it (``FoldedBatchNormConv``).
``bench/profile_v2s.py`` measures what each saves.
"""

import keras
from keras import layers as L

from engine.frozen_lstm import frozen_bilstm
from ts_model import ProgramGroups, StackPrograms, encoder_of, output_layer, sources_of


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


@keras.saving.register_keras_serializable(package="V2S")
class FoldedBatchNormConv(L.Layer):
    """A frozen batch norm followed by a 'same'-padded convolution along time, as one convolution: exact.

    Shape: (batch, time, freq, C) -> (batch, time, freq, filters), the output of ``conv(bn(y))`` (the conv's own
    activation included) for the layers ``bn`` (inference mode) and ``conv`` (kernel (k, 1), stride 1, padding
    'same'). bn(y) = s * y + o per channel, so conv(bn(y)) = conv'(y) + e(t): conv' has the kernel scaled by s per
    input channel, and e(t) is the convolution of the constant o with the same zero padding (it differs from its
    middle value only within k // 2 frames of either end). Saves the batch norm's full pass over a 10-channel
    tensor, forward and backward, in every training step.
    """

    def __init__(self, bn, conv, **kwargs):
        super().__init__(name=kwargs.pop("name", f"{bn.name}_{conv.name}_folded"), **kwargs)
        ok = (conv.strides == (1, 1) and conv.padding == "same" and conv.kernel_size[1] == 1
              and conv.dilation_rate == (1, 1) and conv.groups == 1 and conv.data_format == "channels_last"
              and bn.axis in (-1, 3, [3], [-1]) and bn.center and bn.scale)
        if not ok:
            raise ValueError(f"FoldedBatchNormConv needs a channels-last batch norm and a stride-1, 'same', (k, 1) "
                             f"convolution; got {bn.name} and {conv.name}")
        self.bn, self.conv = bn, conv

    def call(self, y, mask=None, training=None):
        from keras import ops

        scale = self.bn.gamma / ops.sqrt(self.bn.moving_variance + self.bn.epsilon)
        offset = self.bn.beta - self.bn.moving_mean * scale
        kernel = self.conv.kernel * scale[None, None, :, None]
        out = ops.conv(y, kernel, strides=1, padding="same", data_format="channels_last")
        # e(t): the convolution of the constant offset with the zero padding, per output filter.
        constant = ops.ones((1, y.shape[1], 1, y.shape[3]), y.dtype) * offset
        out = out + ops.conv(constant, self.conv.kernel, strides=1, padding="same", data_format="channels_last")
        if self.conv.use_bias:
            out = out + self.conv.bias
        return self.conv.activation(out)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (self.conv.filters,)

    def get_config(self):
        return {**super().get_config(), "bn": keras.saving.serialize_keras_object(self.bn),
                "conv": keras.saving.serialize_keras_object(self.conv)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["bn"] = keras.saving.deserialize_keras_object(config["bn"])
        config["conv"] = keras.saving.deserialize_keras_object(config["conv"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="V2S")
class FoldedAway(L.Layer):
    """Passes its input through: stands where a layer folded into the next one was (its call arguments too)."""

    def call(self, x, mask=None, training=None):
        return x


def _frozen_tail(source, tail, lstm_loops):
    """``tail`` with a frozen source's faster equivalents: bn_1 + conv2d_2 folded and, if ``lstm_loops``, the
    BiLSTMs as FrozenBiLSTM (the attention RNN's layers; other sources' tails are returned as they are)."""
    if "bn_1" not in {layer.name for layer in source.layers}:
        return tail
    folded = FoldedBatchNormConv(source.get_layer("bn_1"), source.get_layer("conv2d_2"))

    def faster(layer):
        if lstm_loops and isinstance(layer, L.Bidirectional):
            return FrozenBiLSTM(layer)
        if layer.name == "bn_1":
            return FoldedAway(name="bn_1_folded_away")
        return folded if layer.name == "conv2d_2" else layer

    return keras.models.clone_model(tail, clone_function=faster)


def training_graph(model, lstm_loops=None):
    """A model with ``model``'s layers and weights and the same outputs, built to train faster (reprogram modes).

    Everything after the STFT is the source model's own layers, except that a frozen source's bidirectional LSTMs
    become ``FrozenBiLSTM`` and its bn_1 + conv2d_2 become ``FoldedBatchNormConv`` (same weights). For an ensemble
    the output is each program's probabilities (batch, K, C); programs spread over several source models share the
    one STFT by linearity, then go through their own source's mel layers and tail. ``lstm_loops`` None:
    FrozenBiLSTM only when no GPU is visible, because on a GPU Keras' own LSTM layers take the cuDNN path, which a
    hand-written loop would block.
    """
    if lstm_loops is None:
        import tensorflow as tf

        lstm_loops = not tf.config.list_physical_devices("GPU")
    sources = sources_of(model)
    if not all("mel_stft" in {layer.name for layer in source.layers} for source in sources):
        # A source without V2S's mel front end (a user's model, speech.keras_source): no rewrite applies; the
        # model's own graph up to its output layer gives each program's probabilities.
        return keras.Model(model.inputs, output_layer(model).output, name=f"{model.name}_training")
    fronts = [source.get_layer("mel_stft") for source in sources]
    stft = fronts[0].layers[0]
    settings = [{k: v for k, v in front.layers[0].get_config().items() if k not in ("name", "trainable")}
                for front in fronts]
    if any(other != settings[0] for other in settings[1:]):
        raise ValueError("training_graph: the source models frame their STFTs differently; one STFT by linearity "
                         "cannot serve them all")
    inputs = keras.Input(model.input.shape[1:], name="series")
    names = {layer.name for layer in model.layers}
    series = model.get_layer("series_scaling")(inputs) if "series_scaling" in names else inputs
    encoder, program = encoder_of(model), model.get_layer("reprogram")
    if program.space == "series":
        # A program on the series reaches the waveform through the (non-linear) encoding: the plain STFT.
        spectrum = stft(L.Reshape((-1, 1), name="add_channel")(encoder(program(series))))
    else:
        waves = encoder(series)
        spectrum = ReprogrammedSTFT(stft.get_config(), name="reprogrammed_stft")([waves, program(waves)])
    groups = [spectrum] if len(sources) == 1 else ProgramGroups(len(sources), name="program_groups")(spectrum)
    probs = []
    for source, front, group in zip(sources, fronts, groups):
        for layer in front.layers[1:]:  # the source's own magnitude and mel layers
            group = layer(group)
        tail = keras.Model(front.output, source.output, name=f"{source.name}_after_mel")
        if not source.trainable:
            tail = _frozen_tail(source, tail, lstm_loops)
        probs.append(tail(group, training=False))
    probs = probs[0] if len(sources) == 1 else StackPrograms(name="stack_programs")(probs)
    return keras.Model(inputs, output_layer(model)(probs), name=f"{model.name}_training")
