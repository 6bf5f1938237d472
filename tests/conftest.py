"""Shared fixtures: TensorFlow set up as the commands set it, the ../shared folder when present, tiny audio folders."""

import os

from engine import tf_setup  # noqa: F401  (before TensorFlow loads: its log level and CPU kernels, as every command)

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")


def shared_path(*parts):
    """Path inside ../shared, or skip the test when that folder is absent (e.g. on a user's machine)."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"needs {path}")
    return path


def write_clip(path, audio, rate=16000, fmt=None):
    import soundfile as sf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, audio, rate, format=fmt)


def tone(freq, seconds=1.0, rate=16000, amp=0.5, phase=0.0):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


@pytest.fixture
def tone_gsc(tmp_path):
    return make_tone_gsc(tmp_path / "gsc")


def make_tone_gsc(root):
    """A GSC-layout folder where each word is a tone of its own pitch, spoken by 10 'speakers'."""
    rng = np.random.default_rng(0)
    for word, freq in (("yes", 300.0), ("no", 1200.0), ("up", 3000.0)):
        for spk in range(10):
            for n in range(2):
                audio = tone(freq * rng.uniform(0.95, 1.05), seconds=rng.uniform(0.3, 0.8))
                write_clip(str(root / word / f"spk{spk:04x}_nohash_{n}.wav"), audio)
    return str(root)


def make_toy_ucr(folder):
    """A 3-class toy dataset in the UCR 2018 layout under ``folder``: sine, square and ramp shapes of length 40."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 40)
    shapes = [np.sin(2 * np.pi * 3 * t), np.sign(np.sin(2 * np.pi * 2 * t)), t * 2 - 1]

    def rows(n):
        return [[c + 1] + list(shapes[c] + 0.1 * rng.standard_normal(40)) for c in range(3) for _ in range(n)]

    os.makedirs(os.path.join(folder, "Toy"), exist_ok=True)
    for split, n in (("TRAIN", 6), ("TEST", 4)):
        with open(os.path.join(folder, "Toy", f"Toy_{split}.tsv"), "w") as fh:
            fh.write("\n".join("\t".join(f"{v:.5f}" for v in r) for r in rows(n)) + "\n")
    return str(folder)


@pytest.fixture
def tiny_ucr(tmp_path):
    return make_toy_ucr(tmp_path)


@pytest.fixture(scope="module")
def source():
    """A V2Sa source model with seeded random weights, built once per test module."""
    import keras

    from speech.source_model import build_source_model

    keras.utils.set_random_seed(0)
    return build_source_model("V2Sa")


def forward(model, x):
    """A Keras model's outputs for ``x`` through its compiled predict: an eager call of the source model's LSTMs
    runs their time loop in Python, several times slower than tracing once on a CPU."""
    return np.asarray(model.predict(np.asarray(x), batch_size=len(x), verbose=0))


def cli_error(capsys, main, argv):
    """Run a CLI's ``main(argv)`` that must refuse its input: exit code 2 and one line on stderr; returns the line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2, f"exit code {stop.value.code}, expected 2"
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Traceback" not in "\n".join(lines)
    return lines[-1]
