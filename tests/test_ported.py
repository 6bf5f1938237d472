"""The ported musicnn taggers (weight/musicnn_*.keras) against the original package's outputs on real audio.

The fixture (tests/fixtures/musicnn_reference.npz) was written by ``scripts/port_musicnn.py reference``, which ran
the package's own TF1 graph on two three-second waveforms of Speech Commands clips.
"""

import os

import keras
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "musicnn_reference.npz")


@pytest.fixture(scope="module")
def reference():
    record = np.load(FIXTURE)
    return {key: record[key] for key in record.files}


def test_the_mel_matrix_is_librosas():
    librosa = pytest.importorskip("librosa")
    from ported.musicnn import slaney_mel_matrix

    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T
    np.testing.assert_allclose(slaney_mel_matrix(), expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", ["musicnn_mtt", "musicnn_msd"])
def test_the_port_gives_the_originals_outputs(reference, name):
    import ported.musicnn  # noqa: F401  (registers the front end)

    model = keras.saving.load_model(os.path.join(REPO, "weight", f"{name}.keras"))
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
