"""The original GSC v2 attention-RNN weights: their front end, the import, and an independent reference forward."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import cli_error, shared_path
from speech.source_model import build_source_model, mel_layer


def reference_front_end(audio):
    """The original recipe with tf.signal directly: |STFT| -> HTK mel -> log(mel + 1e-6). (batch, 125, 80)."""
    spec = tf.abs(tf.signal.stft(audio, frame_length=1024, frame_step=128, fft_length=1024,
                                 window_fn=tf.signal.hann_window, pad_end=True))
    mel = tf.tensordot(spec, tf.signal.linear_to_mel_weight_matrix(80, 513, 16000, 40.0, 8000.0), 1)
    return np.asarray(tf.math.log(mel + 1e-6))


def test_gscv2_front_end_is_the_tf_signal_computation():
    audio = (np.random.default_rng(0).standard_normal((3, 16000)) * 0.1).astype(np.float32)
    ours = np.asarray(mel_layer("gscv2_logmel")(audio[:, :, None]))[..., 0]
    assert ours.shape == (3, 125, 80)
    np.testing.assert_allclose(ours, reference_front_end(audio), atol=1e-5, rtol=1e-5)


def test_the_front_end_is_recorded_and_rebuilt_from_the_model_card(tmp_path):
    import json

    from speech.source_model import load_source_model

    model = build_source_model("V2Sa", front_end="gscv2_logmel")
    model.save_weights(str(tmp_path / "w.weights.h5"))
    (tmp_path / "w.json").write_text(json.dumps({"architecture": "V2Sa", "front_end": "gscv2_logmel"}))
    again = load_source_model(str(tmp_path / "w.weights.h5"))
    assert [type(l).__name__ for l in again.get_layer("mel_stft").layers] == ["STFT", "Magnitude",
                                                                              "LogMelFilterbank"]
    kapre = build_source_model("V2Sa")
    assert type(kapre.get_layer("mel_stft").layers[-1]).__name__ == "MagnitudeToDecibel"


def _lstm(x, kernel, recurrent, bias):
    """A Keras LSTM (gates i, f, c, o; sigmoid / tanh) over x (T, d) in NumPy; all hidden states (T, units)."""
    units = recurrent.shape[0]
    h, c, out = np.zeros(units), np.zeros(units), []
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(len(x)):
        z = x[t] @ kernel + h @ recurrent + bias
        i, f, g, o = sigmoid(z[:units]), sigmoid(z[units:2 * units]), np.tanh(z[2 * units:3 * units]), \
            sigmoid(z[3 * units:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


def reference_forward(layers, audio):
    """The original network from its HDF5 arrays in NumPy (per-utterance normalisation): 36 probabilities."""
    def w(layer, name, direction=None):
        hits = [v for k, v in layers[layer].items() if k.endswith(f"/{name}:0")
                and (direction is None or f"{direction}_lstm" in k)]
        assert len(hits) == 1
        return hits[0].astype(np.float64)

    x = reference_front_end(audio[None])[0].astype(np.float64)
    x = ((x - x.mean()) / x.std())[:, :, None]  # (125, 80, 1)
    for conv, bn in (("conv2d", "batch_normalization"), ("conv2d_1", "batch_normalization_1")):
        kernel, padded = w(conv, "kernel"), np.pad(x, ((2, 2), (0, 0), (0, 0)))
        x = sum(np.einsum("tfi,io->tfo", padded[dt:dt + len(x)], kernel[dt, 0]) for dt in range(5)) + w(conv, "bias")
        x = np.maximum(x, 0)
        x = w(bn, "gamma") * (x - w(bn, "moving_mean")) / np.sqrt(w(bn, "moving_variance") + 1e-3) + w(bn, "beta")
    x = x[:, :, 0]
    for layer in ("bidirectional", "bidirectional_1"):
        forward = _lstm(x, *(w(layer, n, "forward") for n in ("kernel", "recurrent_kernel", "bias")))
        backward = _lstm(x[::-1], *(w(layer, n, "backward") for n in ("kernel", "recurrent_kernel", "bias")))[::-1]
        x = np.concatenate([forward, backward], axis=1)
    query = x[-1] @ w("dense", "kernel") + w("dense", "bias")
    scores = np.exp(x @ query - (x @ query).max())
    context = (scores / scores.sum()) @ x
    h = np.maximum(context @ w("dense_1", "kernel") + w("dense_1", "bias"), 0)
    h = h @ w("dense_2", "kernel") + w("dense_2", "bias")
    logits = h @ w("output", "kernel") + w("output", "bias")
    return np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()


@pytest.mark.slow
def test_imported_model_predicts_as_the_original_recipe_on_real_clips():
    from speech.attrnn import import_attrnn, read_original
    from speech.commands import read_clip, fit_to_one_second

    original = shared_path("attrnn_gscv2", "model-attRNN.h5")
    clips = sorted(glob.glob(os.path.join(shared_path("gsc"), "*", "*.flac")))[::640][:5]
    audio = np.stack([fit_to_one_second(read_clip(c)) for c in clips]).astype(np.float32)
    model = import_attrnn(original)
    ours = np.asarray(model(audio, training=False))
    layers = read_original(original)
    for clip, probs in zip(audio, ours):
        np.testing.assert_allclose(probs, reference_forward(layers, clip), atol=2e-4)
    assert (ours.max(axis=1) > 0.5).mean() >= 0.6  # mostly confident on real speech: the weights are not scrambled


def test_import_refuses_what_is_not_the_original_model(tmp_path, capsys):
    import h5py

    from speech import attrnn

    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    assert "is not an HDF5 file" in cli_error(capsys, attrnn.main, [readme, "--out", str(tmp_path / "x")])
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as fh:
        fh.create_dataset("model_weights/conv2d/conv2d/kernel:0", data=np.zeros((5, 1, 1, 10)))
        fh.create_dataset("model_weights/conv2d/conv2d/bias:0", data=np.zeros(10))
    (tmp_path / "LICENSE").write_text("MIT")
    line = cli_error(capsys, attrnn.main, [other, "--out", str(tmp_path / "x")])
    assert "has no layer 'batch_normalization'" in line
