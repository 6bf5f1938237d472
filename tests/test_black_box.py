"""Black-box reprogramming (engine/black_box.py): the estimator, the program basis, the query count, a tiny run
through a numpy black box (budget, resume), and the refusals."""

import json
import os

import numpy as np
import pytest

import v2s_main
from conftest import cli_error, make_toy_ucr


def band_energies(waves):
    """A stand-in black box: the log energy of 16 frequency bands of each waveform, computed in numpy only."""
    assert isinstance(waves, np.ndarray), f"the black box was given a {type(waves).__name__}, not a numpy array"
    spectrum = np.abs(np.fft.rfft(waves, axis=1)) ** 2
    return np.log(np.stack([band.sum(1) for band in np.array_split(spectrum[:, 1:4001], 16, axis=1)], 1) + 1e-6)


@pytest.fixture
def numpy_box(monkeypatch):
    """``--black-box efficientword`` answered by ``band_energies`` (the test needs no TFLite package)."""
    from engine import black_box

    boxes = []

    def opened(name):
        boxes.append(black_box.BlackBox(band_energies, name))
        return boxes[-1]

    monkeypatch.setattr(black_box, "open_black_box", opened)
    monkeypatch.setattr("engine.black_box_training.open_black_box", opened)
    return boxes


def test_the_estimate_points_along_the_gradient():
    from engine.black_box import unit_directions, zo_estimate

    rng = np.random.default_rng(0)
    target, c = rng.standard_normal(20), np.zeros(20)
    f = lambda w: float(np.sum((w - target) ** 2))  # noqa: E731
    directions = unit_directions(rng, 400, 20)
    losses = np.array([f(c)] + [f(c + 0.01 * u) for u in directions])
    estimate, true = zo_estimate(losses, directions, beta=0.01), 2 * (c - target)
    assert np.dot(estimate, true) / np.linalg.norm(estimate) / np.linalg.norm(true) > 0.9
    assert 0.7 < np.linalg.norm(estimate) / np.linalg.norm(true) < 1.3  # the d / q scale makes it unbiased


def test_antithetic_differences_cancel_the_curvature_that_forward_ones_keep():
    """On a quadratic, a central difference is the directional derivative exactly; a forward one adds beta times
    the curvature along the direction, so with a large beta only the antithetic estimate stays on the gradient."""
    from engine.black_box import probe_offsets, unit_directions, zo_estimate

    rng = np.random.default_rng(0)
    target, c, beta = rng.standard_normal(20), np.zeros(20), 0.5
    f = lambda w: float(np.sum((w - target) ** 2))  # noqa: E731
    directions = unit_directions(rng, 10, 20)
    offsets = probe_offsets(directions, antithetic=True)
    assert offsets.shape == (21, 20) and not offsets[0].any()
    np.testing.assert_array_equal(offsets[11:], -offsets[1:11])
    losses = np.array([f(c + beta * o) for o in offsets])
    central = zo_estimate(losses, directions, beta, antithetic=True)
    forward = zo_estimate(losses[:11], directions, beta)
    true = 2 * (c - target)
    # the exact projection of the gradient on the directions, scaled by d / q
    np.testing.assert_allclose(central, 2.0 * (directions @ true) @ directions, rtol=1e-9)
    np.testing.assert_allclose(forward - central, 2.0 * beta * directions.sum(0), rtol=1e-9)


def test_the_program_basis_interpolates_its_coefficients():
    from engine.black_box import program_basis

    basis = program_basis(5, samples=9)
    np.testing.assert_allclose(basis.sum(1), 1.0)
    np.testing.assert_allclose(basis @ np.array([0.0, 1.0, 0.0, 2.0, 4.0]), [0, 0.5, 1, 0.5, 0, 1, 2, 3, 4])


def test_the_box_counts_its_queries_and_refuses_an_output_that_is_not_a_vector():
    from engine.black_box import BlackBox
    from engine.errors import UsageError

    box = BlackBox(band_energies, "bands")
    box(np.zeros((3, 16000)))
    box(np.zeros((2, 16000)))
    assert box.queries == 5
    flat = BlackBox(lambda waves: waves.sum(1), "flat")
    with pytest.raises(UsageError, match="returned an array of shape \\(2,\\) for 2 waveforms"):
        flat(np.zeros((2, 16000)))


def test_a_run_stays_within_its_budget_counts_every_query_and_resumes(numpy_box, tmp_path, monkeypatch):
    """The toy set through the numpy box: queries as counted by the box, within the budget; a run killed after its
    second epoch and resumed ends as the uninterrupted run does."""
    import dataclasses

    from engine import black_box
    from engine.runs import RunConfig, load_data, train

    ucr = make_toy_ucr(tmp_path / "ucr")
    config = RunConfig(dataset="toy", data_dir=ucr, black_box="efficientword", budget=700, directions=4, basis=20,
                       batch_size=8, patience=0, verbose=0, out=str(tmp_path / "whole"))
    data = load_data(config)
    whole = train(data, config).summary
    fit, val = 15, 3  # the toy set: 18 training series (6 per class), a fifth held out
    per_epoch = (4 + 1) * fit + val
    assert whole["queries"] == numpy_box[-1].queries - whole["test_queries"] == fit + val + whole["epochs_run"] * per_epoch
    assert whole["queries"] <= 700 < whole["queries"] + per_epoch
    assert whole["test_queries"] == 2 * len(data.x_test)  # the program's and LP's predictions
    assert whole["config"]["ensemble"] == 1 and whole["config"]["arch"] == "efficientword"

    def killing(name):
        box = black_box.BlackBox(band_energies, name)
        limit = fit + val + 2 * per_epoch

        def fn(waves):
            if box.queries >= limit:
                raise KeyboardInterrupt
            return band_energies(waves)

        box.fn = fn
        return box

    monkeypatch.setattr("engine.black_box_training.open_black_box", killing)
    with pytest.raises(Exception, match="interrupted after epoch 2"):
        train(data, dataclasses.replace(config, out=str(tmp_path / "killed")))
    monkeypatch.setattr("engine.black_box_training.open_black_box", lambda name: black_box.BlackBox(band_energies, name))
    resumed = train(data, dataclasses.replace(config, out=str(tmp_path / "killed"), resume=True)).summary
    for key in ("queries", "test_queries", "best_epoch", "epochs_run", "val_cross_entropy", "test_accuracy"):
        assert resumed[key] == whole[key], key
    with open(tmp_path / "killed" / "history.csv") as fh:
        assert len(fh.read().splitlines()) == whole["epochs_run"] + 1


def test_an_antithetic_run_spends_two_queries_per_direction(numpy_box, tmp_path):
    from engine.runs import RunConfig, load_data, train

    config = RunConfig(dataset="toy", data_dir=make_toy_ucr(tmp_path / "ucr"), black_box="efficientword",
                       budget=700, directions=4, basis=20, antithetic=True, batch_size=8, epochs=2, patience=0,
                       verbose=0, out=str(tmp_path / "run"))
    summary = train(load_data(config), config).summary
    fit, val = 15, 3
    assert summary["epochs_run"] == 2 and summary["queries"] == fit + val + 2 * ((2 * 4 + 1) * fit + val)
    assert summary["config"]["antithetic"] is True


@pytest.mark.parametrize("flags, message", [
    (["--budget", "10"], "--budget 10 is below one training step: (--directions 10 + 1) x --batch-size 32 = 352"),
    (["--ensemble", "5"], "--ensemble is not used by --black-box efficientword"),
    (["--dr", "0.2"], "--dr is not used by --black-box efficientword"),
    (["--head", "layers"], "--head layers: --black-box efficientword is read by a linear head on its output"),
    (["--map-type", "frequency"], "--black-box efficientword is read by a linear head; drop --map-type"),
    (["--mode", "transfer"], "--black-box efficientword is reprogrammed frozen: it needs --mode reprogram"),
    (["--basis", "1"], "--basis must be from 2 to 16000 coefficients, got 1"),
    (["--directions", "0"], "--directions must be at least 1, got 0"),
    (["--budget", "300", "--antithetic"], "--budget 300 is below one training step: (2 x --directions 10 + 1) x "
                                          "--batch-size 32 = 672"),
])
def test_bad_black_box_flags_are_refused_in_one_line(tmp_path, capsys, flags, message):
    argv = ["--dataset", "toy", "--data-dir", make_toy_ucr(tmp_path / "ucr"), "--out", str(tmp_path / "run"),
            "--verbose", "0", "--black-box", "efficientword"] + flags
    line = cli_error(capsys, v2s_main.main, argv)
    assert line.startswith("v2s_main.py: error: ") and message in line


@pytest.mark.parametrize("flags", [["--budget", "1000"], ["--antithetic"], ["--basis", "50"], ["--directions", "3"]])
def test_black_box_flags_without_a_black_box_are_refused(tmp_path, capsys, flags):
    argv = ["--dataset", "toy", "--data-dir", make_toy_ucr(tmp_path / "ucr"), "--out", str(tmp_path / "run"),
            "--verbose", "0"] + flags
    line = cli_error(capsys, v2s_main.main, argv)
    assert line == f"v2s_main.py: error: {flags[0]} sets how a black box is queried; it needs --black-box"


def test_efficientword_is_a_black_box_of_128_value_outputs():
    import importlib.util

    if importlib.util.find_spec("eff_word_net") is None:
        pytest.skip("needs pip install efficientword-net==1.0.5 --no-deps")
    from engine.black_box import efficientword_black_box

    box = efficientword_black_box()
    out = box(np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32) * 0.1)
    assert out.shape == (2, 128) and box.queries == 2


def test_the_shipped_tflite_v2sa_is_the_keras_v2sa():
    """weight/v2sa.tflite (scripts/export_tflite.py) gives the Keras model's probabilities, as the tflite box."""
    import os

    from engine.black_box import open_black_box
    from speech.source_model import load_source_model

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    waves = np.random.default_rng(1).standard_normal((2, 16000)).astype(np.float32) * 0.2
    box = open_black_box("tflite")
    keras_probs = np.asarray(load_source_model(os.path.join(repo, "weight", "v2sa.weights.h5"))(waves))
    np.testing.assert_allclose(box(waves), keras_probs, atol=1e-5)
    assert box.queries == 2
