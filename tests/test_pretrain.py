"""Pretraining end to end on a tiny tone 'speech' folder: learning, model card, resume, CLI errors."""

import os
import re

import numpy as np
import pytest

from speech import pretrain
from conftest import cli_error, make_tone_gsc
from speech.commands import SpeechSet
from utils import read_json

pytestmark = pytest.mark.slow


def run(tone_gsc, out, *extra):
    pretrain.main(["--gsc-dir", tone_gsc, "--out", out, "--batch-size", "16", "--lr", "5e-3",
                   "--real-val-percent", "30", "--real-repeat", "2", "--bn-momentum", "0.7", "--verbose", "0",
                   *extra])
    return read_json(out + ".json")


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """One epoch of pretraining, made once for the tests that continue from it: (tone folder, out prefix, card)."""
    root = tmp_path_factory.mktemp("pretrain")
    gsc = make_tone_gsc(root / "gsc")
    out = str(root / "stage1")
    return gsc, out, run(gsc, out, "--epochs", "1")


@pytest.mark.heavy
@pytest.mark.xdist_group("stage1")  # one worker makes the module's stage-1 fixture once for both tests
def test_resume_continues_after_the_last_finished_epoch_and_the_run_learns(tmp_path, stage1):
    import glob
    import shutil

    tone_gsc, first_out, first = stage1
    assert first["epochs_run"] == 1
    # A run killed after epoch 1 leaves its checkpoint folder behind; --resume picks it up (on a copy of stage 1).
    out = str(tmp_path / "stage1")
    for path in glob.glob(first_out + "*"):
        (shutil.copytree if os.path.isdir(path) else shutil.copy)(path, out + path[len(first_out):])
    second = run(tone_gsc, out, "--epochs", "6", "--patience", "10", "--resume")
    assert second["epochs_run"] == 6
    assert len(second["history"]["loss"]) == 6
    assert second["history"]["loss"][0] == first["history"]["loss"][0]
    # Six epochs in all learn the tones, and the card describes the run.
    assert second["accuracy"]["real_val"] > 0.6  # three classes: chance is 1/3
    assert second["architecture"] == "V2Sa" and 150_000 < second["parameters"] < 250_000
    assert second["class_order"][2] == "yes" and "--gsc-dir" in second["command"]
    for suffix in (".weights.h5", "_confusion.png"):
        assert os.path.getsize(out + suffix) > 1000


def test_a_run_killed_within_an_epoch_resumes_at_the_next_batch(tmp_path, monkeypatch):
    """A V2Su epoch on the synthetic corpus takes most of an hour: a kill must cost minutes, not the epoch. The
    resumed run finishes the epoch from the batch after the last checkpoint and ends where an uninterrupted run
    ends (before the fix it restarted the epoch, training twice on its first batches)."""
    import h5py

    from utils import ResumableCheckpoint

    gsc = make_tone_gsc(tmp_path / "gsc")
    quiet = ["--epochs", "2", "--time-mask", "0", "--freq-mask", "0", "--checkpoint-minutes"]
    whole = run(gsc, str(tmp_path / "whole"), *quiet, "0")

    class Killed(RuntimeError):
        pass

    save_and_go_on = ResumableCheckpoint.on_train_batch_end

    def save_and_die(self, batch, logs=None):
        save_and_go_on(self, batch, logs)
        if self.state["epoch"] == 1 and self.state["batch"] == 2:
            raise Killed

    monkeypatch.setattr(ResumableCheckpoint, "on_train_batch_end", save_and_die)
    with pytest.raises(Killed):
        run(gsc, str(tmp_path / "killed"), *quiet, "1e-9")  # a checkpoint after every batch
    assert read_json(str(tmp_path / "killed_ckpt" / "state.json"))["batch"] == 2
    monkeypatch.setattr(ResumableCheckpoint, "on_train_batch_end", save_and_go_on)
    resumed = run(gsc, str(tmp_path / "killed"), *quiet, "1e-9", "--resume")
    assert resumed["epochs_run"] == 2 and resumed["history"]["val_loss"][0] == whole["history"]["val_loss"][0]
    assert resumed["history"]["val_loss"][1] == pytest.approx(whole["history"]["val_loss"][1], rel=1e-4)

    def arrays(path):
        with h5py.File(path, "r") as fh:
            found = []
            fh.visititems(lambda name, obj: found.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
            return found

    for a, b in zip(arrays(str(tmp_path / "whole.weights.h5")), arrays(str(tmp_path / "killed.weights.h5"))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_out_of_range_numbers_are_one_line_errors(capsys):
    for flag, value, expected in (("--lr", "-1", "--lr must be a positive number"),
                                  ("--epochs", "0", "--epochs must be at least 1"),
                                  ("--checkpoint-minutes", "-5", "--checkpoint-minutes must be 0 or more")):
        assert expected in cli_error(capsys, pretrain.main, ["--synthetic", flag, value])


def test_without_data_the_cli_says_what_to_give(capsys):
    assert "--synthetic, --gsc-dir" in cli_error(capsys, pretrain.main, ["--epochs", "1"])


def test_missing_gsc_folder_is_a_one_line_error(tmp_path, capsys):
    line = cli_error(capsys, pretrain.main, ["--gsc-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert re.match(r"pretrain.py: error: GSC folder not found: .*nowhere", line)


def test_evaluation_of_missing_or_wrong_weights_is_a_one_line_error(tmp_path, tone_gsc, capsys):
    from speech import evaluation as source_evaluation

    line = cli_error(capsys, source_evaluation.main, ["--weights", str(tmp_path / "none.weights.h5"), "--arch",
                                                      "V2Sa", "--gsc-dir", tone_gsc])
    assert re.match(r"source_evaluation.py: error: .*none.weights.h5", line)
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    line = cli_error(capsys, source_evaluation.main, ["--weights", readme, "--gsc-dir", tone_gsc])
    assert "README.md is not a weights file" in line


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        pretrain.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--gsc-dir", "--synthetic", "--time-mask", "--freq-mask", "--resume", "--patience"):
        assert flag in text


def test_speed_perturbation_raises_the_frequency():
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 500 * t)[None, :].astype("float32")
    out = pretrain.speed_perturb(np.random.default_rng(0), x, 1.2, 1.2, prob=1.0)
    assert np.argmax(np.abs(np.fft.rfft(out[0]))) == 600


@pytest.mark.heavy
@pytest.mark.xdist_group("stage1")
def test_fine_tuning_stage_starts_from_given_weights_and_keeps_the_first_card(tmp_path, stage1):
    tone_gsc, first, _ = stage1
    card = run(tone_gsc, str(tmp_path / "stage2"), "--epochs", "1", "--init-weights", first + ".weights.h5",
               "--speed", "0.9", "1.3")
    assert card["previous_stage"]["command"].count("stage1") == 1
    assert "--init-weights" in card["command"]


def test_augmentation_shifts_and_keeps_shape():
    x = np.zeros((4, 16000), "float32")
    x[:, 8000] = 1.0
    out = pretrain.augment_batch(np.random.default_rng(0), x, 1600, None, 0.0)
    assert out.shape == x.shape
    peaks = np.argmax(np.abs(out), axis=1)
    assert (np.abs(peaks - 8000) <= 1600).all() and len(set(peaks)) > 1


def test_resumed_batches_are_those_of_an_uninterrupted_run():
    # Before the fix a resumed run restarted the shuffle and augmentation at epoch 0's.
    rng = np.random.default_rng(0)
    data = SpeechSet(rng.normal(size=(10, 16000)).astype("float32"), np.arange(10), np.zeros(10), np.zeros(10))
    uninterrupted = pretrain.make_batches(data, 4, seed=3, max_shift=800)
    for epoch in range(3):
        uninterrupted.start_epoch(epoch)
    resumed = pretrain.make_batches(data, 4, seed=3, max_shift=800, first_epoch=2)
    fresh = pretrain.make_batches(data, 4, seed=3, max_shift=800)
    for i in range(len(resumed)):
        np.testing.assert_array_equal(resumed[i][0], uninterrupted[i][0])
        np.testing.assert_array_equal(resumed[i][1], uninterrupted[i][1])
    assert not np.array_equal(resumed[0][1], fresh[0][1])


@pytest.mark.heavy
def test_a_convolutional_source_pretrains_and_loads_from_its_card(tmp_path):
    """V2St through pretrain.py: the card names the architecture, so load_source_model rebuilds it from the file."""
    from speech.source_model import load_source_model

    gsc = make_tone_gsc(tmp_path / "gsc")
    out = str(tmp_path / "v2st")
    card = run(gsc, out, "--arch", "V2St", "--epochs", "1")
    assert card["architecture"] == "V2St" and card["epochs_run"] == 1 and 700_000 < card["parameters"] < 1_300_000
    model = load_source_model(out + ".weights.h5")
    assert model.name == "V2St" and model.get_layer("pooled") is not None


def test_evaluation_writes_its_accuracy_into_the_model_card(tmp_path, tone_gsc, capsys, monkeypatch):
    import json

    from speech import evaluation as source_evaluation
    from speech.source_model import build_source_model

    weights = str(tmp_path / "src.weights.h5")
    argv = ["--weights", weights, "--arch", "V2Sa", "--gsc-dir", tone_gsc, "--split", "val", "--card"]
    build_source_model("V2Sa").save_weights(weights)
    # No card beside the weights: one line, before anything is evaluated.
    assert "--card: no model card" in cli_error(capsys, source_evaluation.main, argv)
    (tmp_path / "src.json").write_text(json.dumps({"architecture": "V2Sa", "command": "python pretrain.py ..."}))
    monkeypatch.chdir(tmp_path)
    source_evaluation.main(argv)  # --card alone: a copy under runs/cards/, the card beside the weights untouched
    printed = float(re.search(r"accuracy (\d\.\d+)", capsys.readouterr().out).group(1))
    assert "evaluations" not in read_json(str(tmp_path / "src.json"))
    copy = read_json(str(tmp_path / "runs" / "cards" / "src.json"))
    assert round(copy["evaluations"]["real [val]"]["accuracy"], 4) == printed
    source_evaluation.main(argv + [str(tmp_path / "src.json")])  # --card naming the card: that card
    card = read_json(str(tmp_path / "src.json"))
    entry = card["evaluations"]["real [val]"]
    assert card["command"] == "python pretrain.py ..."  # the training figures stay
    assert round(entry["accuracy"], 4) == printed and entry["clips"] > 0
    assert entry["command"].startswith("python source_evaluation.py --weights") and "--card" in entry["command"]
