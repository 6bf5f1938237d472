"""The training CLI end to end on a tiny dataset: outputs, protocol labels, resume, and bad flags."""

import os

import keras
import numpy as np
import pytest

import v2s_main
from utils import read_json

pytestmark = pytest.mark.slow


def cli(data_dir, out, *extra):
    return v2s_main.main(["--dataset", "toy", "--data-dir", data_dir, "--out", out, "--source-weights", "random",
                          "--verbose", "0", "--batch-size", "8", *extra])


def test_cli_run_writes_every_output(tmp_path, tiny_ucr, capsys):
    out = str(tmp_path / "run")
    summary = cli(tiny_ucr, out, "--eps", "2", "--seg", "4")
    for name in ("best.weights.h5", "model.keras", "history.csv", "curves.png", "summary.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    saved = read_json(os.path.join(out, "summary.json"))
    assert saved["dataset"] == "Toy" and saved["classes"] == 3 and saved["segments"] == 4
    assert saved["protocol"] == "honest"
    # the test accuracy is the saved model's (the best epoch's weights) on the test set
    from engine.runs import RunConfig, load_data

    data = load_data(RunConfig(dataset="toy", data_dir=tiny_ucr))
    predicted = keras.saving.load_model(os.path.join(out, "model.keras")).predict(data.x_test, verbose=0)
    assert saved["test_accuracy"] == pytest.approx(np.mean(np.argmax(predicted, axis=1) == data.y_test))
    # the default output: the attention head on the frozen model's attention vector, no label mapping
    assert saved["mapping"] is None and saved["config"]["head"] == "layers" and saved["config"]["encoding"] == "fm"
    assert summary["epochs_run"] == 2
    text = capsys.readouterr().out
    assert "--- Test accuracy:" in text and "=== Best Val. Acc:" in text


def test_val_on_test_is_labelled_optimistic(tmp_path, tiny_ucr, capsys):
    summary = cli(tiny_ucr, str(tmp_path / "opt"), "--eps", "1", "--val-on-test")
    assert summary["protocol"].startswith("OPTIMISTIC")
    assert "OPTIMISTIC" in capsys.readouterr().out


def test_resume_continues_a_killed_run_from_its_weights_and_optimizer(tmp_path, tiny_ucr):
    """A run killed after epoch 1 and resumed ends exactly where an uninterrupted run ends: the checkpoint's
    weights and Adam's moments are restored (a fresh model, or a fresh optimizer, trained on the same batches from
    epoch 1 ends elsewhere). The label mapping, drawn once, is kept."""
    flags = ("--ensemble", "1", "--head", "mapping", "--lr", "0.05", "--patience", "0")
    whole = cli(tiny_ucr, str(tmp_path / "whole"), "--eps", "3", *flags)
    out = str(tmp_path / "resume")
    first = cli(tiny_ucr, out, "--eps", "1", *flags)
    os.remove(os.path.join(out, "summary.json"))  # as if killed before the end
    second = cli(tiny_ucr, out, "--eps", "3", "--resume", *flags)
    assert second["epochs_run"] == 3 and second["mapping"] == first["mapping"] == whole["mapping"]
    rows = [open(os.path.join(folder, "history.csv")).read().splitlines() for folder in (out, tmp_path / "whole")]
    assert len(rows[0]) == 4 and rows[0] == rows[1]  # header + 3 epochs, to the last digit

    def delta(folder):
        return np.asarray(keras.saving.load_model(os.path.join(folder, "ckpt", "last.keras"))
                          .get_layer("reprogram").delta)

    np.testing.assert_array_equal(delta(out), delta(str(tmp_path / "whole")))


@pytest.mark.parametrize("mode", [pytest.param("transfer", marks=pytest.mark.heavy), "fcn",
                                  pytest.param("reprogram+finetune", marks=pytest.mark.heavy)])
def test_baseline_modes_run(tmp_path, tiny_ucr, mode):
    if mode == "fcn":  # the FCN has no source: --source-weights is refused
        summary = v2s_main.main(["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / mode),
                                 "--verbose", "0", "--batch-size", "8", "--eps", "1", "--mode", mode])
    else:
        summary = cli(tiny_ucr, str(tmp_path / mode.replace("+", "_")), "--eps", "1", "--mode", mode)
    assert summary["config"]["mode"] == mode
    assert ("ensemble" in summary["settings_not_used"]) == (mode in ("transfer", "fcn"))  # recorded, not used
    # TF_a sees the series once, zero-padded; the FCN sees it as it is (the summary once said m=10 for both).
    assert summary["segments"] == {"transfer": 1, "fcn": None, "reprogram+finetune": 10}[mode]


@pytest.mark.parametrize("kind", ["frequency", "sequential"])
def test_frequency_and_sequential_mapping_flags(tmp_path, tiny_ucr, kind):
    """Every program of the ensemble reads its classes through the same mapping: the sequential one (class c owns
    labels 2c, 2c + 1), or the labels the frozen source predicts most for each class's fit series."""
    from engine.runs import RunConfig, load_data, split_data
    from ts_model import frequency_mapping, sequential_mapping
    from speech.source_model import build_source_model
    from ts_encoding import SegmentZeroPadding

    summary = cli(tiny_ucr, str(tmp_path / kind), "--eps", "1", "--map-type", kind, "--mapping", "2")
    mapping = np.asarray(summary["mapping"])
    assert mapping.shape == (3, 3, 2) and (mapping == mapping[0]).all()
    if kind == "sequential":
        expected = sequential_mapping(3, 2)
    else:
        config = RunConfig(dataset="toy", data_dir=tiny_ucr, source_weights="random").validated()
        data = load_data(config)
        x_fit, y_fit = split_data(data, config)[:2]
        keras.utils.set_random_seed(0)  # the run's random source: seed 0, built first
        source = build_source_model("V2Sa")
        waves = np.asarray(SegmentZeroPadding(data.length, summary["segments"])(x_fit))
        expected = frequency_mapping(source.predict(waves, verbose=0), y_fit, 3, 2)
    np.testing.assert_array_equal(mapping[0], expected)


def test_cosine_schedule_decays_to_zero(tmp_path, tiny_ucr):
    out = str(tmp_path / "cos")
    cli(tiny_ucr, out, "--eps", "3", "--cosine", "--lr", "0.01")
    rates = [float(line.split(",")[-1]) for line in open(os.path.join(out, "history.csv")).read().splitlines()[1:]]
    assert rates[0] < 0.01 and rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.0, abs=1e-7)
    assert v2s_main.config_from_args(v2s_main.build_parser().parse_args(["--no-cosine"])).cosine is False


def test_reference_schedule_sets_the_reference_adam_and_defaults_come_from_the_run_config():
    from engine.runs import RunConfig

    config = v2s_main.config_from_args(v2s_main.build_parser().parse_args(["--reference-schedule"]))
    assert (config.lr, config.lr_decay) == (0.05, 0.48)
    plain = v2s_main.config_from_args(v2s_main.build_parser().parse_args([]))
    assert plain == RunConfig()  # every CLI default is the run API's default
    assert v2s_main.config_from_args(v2s_main.build_parser().parse_args(["--mod", "1", "--net", "1"])).mode == \
        "transfer"


@pytest.mark.heavy
def test_refit_trains_on_the_whole_training_set_for_the_chosen_epochs_and_resumes(tmp_path, tiny_ucr, capsys):
    out = str(tmp_path / "refit")
    summary = cli(tiny_ucr, out, "--eps", "3", "--refit")
    assert summary["refit_epochs"] == summary["best_epoch"] + 1
    assert 0.0 <= summary["split_model_test_accuracy"] <= 1.0
    refit_state = os.path.join(out, "ckpt_refit", "state.json")
    state = read_json(refit_state)
    assert state["epoch"] == summary["refit_epochs"]
    assert "on all 18 training series" in capsys.readouterr().out  # 6 per class x 3, none held out
    # The saved model is the refit one: reloaded, it scores what the summary reports.
    import keras

    from ts_dataloader import load_ucr

    data = load_ucr("toy", data_dir=tiny_ucr)
    reloaded = keras.saving.load_model(os.path.join(out, "model.keras"))
    acc = reloaded.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]
    assert acc == pytest.approx(summary["test_accuracy"])
    # Killed one epoch before the refit's end, the run resumes the refit and ends where it would have.
    assert summary["refit_epochs"] >= 2  # this seeded toy run picks a later epoch, so there is a refit to interrupt
    os.remove(os.path.join(out, "summary.json"))
    import json

    state["epoch"] -= 1
    with open(refit_state, "w") as fh:
        json.dump(state, fh)
    second = cli(tiny_ucr, out, "--eps", "3", "--refit", "--resume")
    assert second["refit_epochs"] == summary["refit_epochs"] and second["best_epoch"] == summary["best_epoch"]
    assert read_json(refit_state)["epoch"] == summary["refit_epochs"]


def test_stratified_split_keeps_every_class():
    y = np.array([0] * 10 + [1] * 3 + [2] * 2)
    from engine.runs import stratified_split

    tr, va = stratified_split(y, 0.2, seed=0)
    assert set(y[va]) == {0, 1, 2} and set(y[tr]) == {0, 1, 2}
    assert not set(tr) & set(va) and len(tr) + len(va) == len(y)


@pytest.mark.heavy
def test_resume_in_a_fresh_process(tmp_path, tiny_ucr):
    """A killed run is resumed by a new process, which has not imported the V2S layers yet."""
    import subprocess
    import sys

    out = str(tmp_path / "fresh")
    cli(tiny_ucr, out, "--eps", "1")
    os.remove(os.path.join(out, "summary.json"))
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", out, "--source-weights", "random", "--verbose", "0",
            "--batch-size", "8", "--eps", "2", "--resume"]
    repo = os.path.dirname(os.path.abspath(v2s_main.__file__))
    done = subprocess.run([sys.executable, os.path.join(repo, "v2s_main.py"), *argv],
                          capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "Resuming" in done.stdout and read_json(os.path.join(out, "summary.json"))["epochs_run"] == 2
