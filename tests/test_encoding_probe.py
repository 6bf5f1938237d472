"""The encoding probe's encodings, probe and table (scripts/encoding_probe.py), on tiny inputs."""

import importlib.util
import os

import numpy as np
import pytest

from speech.source_model import SAMPLE_RATE

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "encoding_probe.py")
_SPEC = importlib.util.spec_from_file_location("encoding_probe", _PATH)
probe = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe)


def test_encodings_place_the_series_as_described():
    x = np.stack([np.linspace(-1, 1, 400), np.linspace(1, -1, 400)]).astype(np.float32)
    pad = probe.encode(x, "pad")  # 10 copies, 1600 samples apart, zeros between
    assert pad.shape == (2, SAMPLE_RATE)
    np.testing.assert_allclose(pad[:, 1600:2000], x)
    assert not pad[:, 400:1600].any()
    stretched = probe.encode(x, "stretch2")  # the series over 8000 samples, twice
    np.testing.assert_allclose(stretched[:, :8000], stretched[:, 8000:])
    np.testing.assert_allclose(stretched[:, [0, 7999]], x[:, [0, -1]], atol=1e-6)
    am = probe.encode(np.zeros((1, 50), np.float32), "am1k")
    assert not am.any()  # a silent envelope is silence
    fm = probe.encode(np.zeros((1, 50), np.float32), "fm")[0]  # a flat series is the 1 kHz carrier
    spectrum = np.abs(np.fft.rfft(fm))
    assert np.argmax(spectrum) == 1000
    with pytest.raises(ValueError, match="unknown encoding"):
        probe.encode(x, "wavelet")


def test_the_probe_scores_separable_features_lower_than_noise():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    separable = rng.standard_normal((60, 8)) + 3.0 * np.eye(3, 8)[y]
    noise = rng.standard_normal((60, 8))
    assert probe.probe_cross_entropy(separable, y) < 0.5 < np.log(3) - 0.3 < probe.probe_cross_entropy(noise, y)
    with pytest.raises(ValueError, match="two training series"):
        probe.probe_cross_entropy(separable[:41], np.r_[y[:40], 2])


def test_table_counts_the_sets_each_encoding_beats_pad_on():
    results = {"A": {("pad", "att_vector"): 0.5, ("fm", "att_vector"): 0.4, ("pad", "logits"): 0.6,
                     ("fm", "logits"): 0.7},
               "B": {("pad", "att_vector"): 0.5, ("fm", "att_vector"): 0.6, ("pad", "logits"): 0.6,
                     ("fm", "logits"): 0.8}}
    rows = probe.table(results, ["pad", "fm"]).splitlines()
    assert rows[-2] == "| **mean** | 0.500 | 0.500 | 0.600 | 0.750 |"
    assert rows[-1] == "| lower than pad (sets) | - | 1 | - | 0 |"


def test_a_malformed_stretch_encoding_is_a_one_line_error_not_a_crash():
    # Before the fix, stretch0 divided by zero and stretchx failed in int() with Python's own message.
    for name in ("stretch0", "stretchx", "stretch"):
        with pytest.raises(ValueError, match="unknown encoding"):
            probe.check_encoding(name)
    probe.check_encoding("stretch5")
