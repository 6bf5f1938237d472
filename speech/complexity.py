"""How much a source model computes: parameters and multiply-accumulates (MACs) for one second of audio.

In:  a built source model (``speech.source_model.build_source_model``), input (batch, 16000).
Out: ``complexity(model)`` -> dict with ``parameters`` (all weights, the frozen front end's included),
     ``front_end_macs`` (STFT and mel filterbank), ``network_macs`` (every layer after the mel image) and
     ``macs`` (their sum), each for one one-second clip; ``layer_macs(model)`` gives the network's per-layer counts.

Counted the way DCASE challenge entries report model complexity: one MAC per multiply-add of a layer with
weights or of an attention product. A convolution costs (output positions) x (kernel size) x (input channels per
group) x (output channels), a transposed one (input positions) x (kernel size) x (input channels) x (output
channels), a dense layer (positions) x (inputs) x (units), an LSTM (steps) x 4 x units x (inputs + units) per
direction, the attention dot products (frames) x (features) each. Biases, activations, pooling, element-wise
additions and batch normalisation (folded into the preceding layer at inference) count zero. The front end's mel
filterbank is exact ((frames) x (FFT bins) x (mel bands)); its FFT is counted as 2 N log2 N real MACs per frame
of N samples (the usual radix-2 estimate; the true count depends on the FFT library), so the front end is reported
on its own and the network figure, which compares architectures, does not depend on it.
"""

import math

from speech.spec import FRAMES, N_FFT, N_MELS


def front_end_macs():
    """MACs of the mel front end for one second: the FFT of each frame (estimated) plus the mel matrix (exact)."""
    fft = FRAMES * 2 * N_FFT * math.log2(N_FFT)
    mel = FRAMES * (N_FFT // 2 + 1) * N_MELS
    return int(fft + mel)


def _shape(tensor):
    return tuple(int(d) for d in tensor.shape[1:])


def _positions(shape):
    """The product of all but the last (channel / feature) axis of a per-example shape."""
    return math.prod(shape[:-1]) if len(shape) > 1 else 1


def _lstm_macs(lstm, input_shape):
    steps, features = input_shape
    return steps * 4 * lstm.units * (features + lstm.units)


def _macs_of(layer):
    """MACs of one layer of a functional model for one example (0 for layers without weights or products)."""
    from keras import layers as L

    kind = type(layer)
    if isinstance(layer, (L.Conv1D, L.Conv2D)) and not isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose)):
        inputs, outputs = _shape(layer.input), _shape(layer.output)
        return _positions(outputs) * math.prod(layer.kernel_size) * inputs[-1] // layer.groups * outputs[-1]
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose)):
        inputs, outputs = _shape(layer.input), _shape(layer.output)
        return _positions(inputs) * math.prod(layer.kernel_size) * inputs[-1] * outputs[-1]
    if kind is L.Dense:
        inputs = _shape(layer.input)
        return _positions(inputs) * inputs[-1] * layer.units
    if kind is L.Bidirectional:
        shape = _shape(layer.input)
        return _lstm_macs(layer.forward_layer, shape) + _lstm_macs(layer.backward_layer, shape)
    if kind is L.LSTM:
        return _lstm_macs(layer, _shape(layer.input))
    if kind is L.Dot:
        return max(math.prod(_shape(t)) for t in layer.input)  # (frames, features) x (features,) or (frames,)
    return 0


def layer_macs(model):
    """{layer name: MACs for one one-second clip} for every layer after the mel front end that computes any."""
    counts = {}
    for layer in model.layers:
        if layer.name == "mel_stft":
            continue
        macs = _macs_of(layer)
        if macs:
            counts[layer.name] = int(macs)
    return counts


def complexity(model):
    """Parameters and MACs per one-second clip of a source model (see the module docstring for the rules)."""
    network = sum(layer_macs(model).values())
    front = front_end_macs()
    return {"parameters": int(model.count_params()), "front_end_macs": front, "network_macs": network,
            "macs": front + network}
