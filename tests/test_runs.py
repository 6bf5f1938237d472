"""The run API: exact resume, early stopping, best-epoch scoring, interrupts, run folders, schedules, V2Su."""

import json
import os
import re
import shutil

import numpy as np
import pytest

import keras

from engine import runs
import v2s_main
from conftest import cli_error
from utils import ResumableCheckpoint, atomic_write, read_json

pytestmark = pytest.mark.slow


def config(data_dir, out, **changes):
    return runs.RunConfig(**{"dataset": "toy", "data_dir": data_dir, "out": str(out), "source_weights": "random",
                             "verbose": 0, "batch_size": 8, **changes})


def train(cfg):
    return runs.train(runs.load_data(cfg), cfg).summary


@pytest.mark.heavy
def test_an_augmented_run_trains_on_other_batches(tmp_path, tiny_ucr, capsys):
    # Its exact resumption is checked with the other stateful options in the several-sources test below.
    aug = {"jitter": 0.5, "scaling": 0.2}
    train(config(tiny_ucr, tmp_path / "aug", epochs=2, **aug))
    assert "training batches augmented (jitter 0.5, scaling 0.2)" in capsys.readouterr().out
    a = read_json(tmp_path / "aug" / "ckpt" / "state.json")["history"]
    train(config(tiny_ucr, tmp_path / "plain", epochs=2))
    plain = read_json(tmp_path / "plain" / "ckpt" / "state.json")["history"]
    assert plain["loss"][0] != a["loss"][0] and plain["val_ce"][0] == pytest.approx(a["val_ce"][0], abs=0.5)


@pytest.mark.heavy
def test_a_checkpoint_from_before_a_setting_existed_resumes(tmp_path, tiny_ucr):
    train(config(tiny_ucr, tmp_path / "old", epochs=1))
    os.remove(tmp_path / "old" / "summary.json")
    saved = read_json(tmp_path / "old" / "ckpt" / "run.json")
    for key in ("jitter", "scaling"):  # written before augmentation existed
        del saved[key]
    with open(tmp_path / "old" / "ckpt" / "run.json", "w") as fh:
        json.dump(saved, fh)
    assert train(config(tiny_ucr, tmp_path / "old", epochs=2, resume=True))["epochs_run"] == 2


def test_a_run_written_before_the_source_model_and_black_box_settings_is_the_same_run():
    """Its saved config lacks those keys: they take the values such runs used, so the run is reported or resumed,
    not refused as one of other settings."""
    cfg = runs.RunConfig(dataset="toy").validated()
    saved = cfg.experiment()
    for key in ("source_model", "source_rate", "source_layer", "black_box", "budget", "directions", "basis",
                "antithetic"):
        del saved[key]
    assert runs.differing_settings(saved, cfg) == []


def test_early_stopping_stops_and_a_stopped_run_resumes_as_stopped(tmp_path, tiny_ucr):
    # lr 5 makes the validation cross-entropy jump after the first epochs, so patience 2 stops the run early.
    summary = train(config(tiny_ucr, tmp_path / "es", epochs=30, patience=2, lr=5.0))
    assert summary["epochs_run"] == summary["best_epoch"] + 3 < 30
    os.remove(tmp_path / "es" / "summary.json")
    again = train(config(tiny_ucr, tmp_path / "es", epochs=30, patience=2, lr=5.0, resume=True))
    assert again["epochs_run"] == summary["epochs_run"]  # nothing more was trained
    assert again["test_accuracy"] == summary["test_accuracy"]


def test_the_test_score_uses_the_best_epochs_weights(tmp_path, tiny_ucr):
    summary = train(config(tiny_ucr, tmp_path / "best", epochs=6, lr=5.0, patience=0))
    assert summary["best_epoch"] < summary["epochs_run"] - 1  # the last epoch is not the best one here
    best = keras.saving.load_model(str(tmp_path / "best" / "model.keras"))
    last = keras.saving.load_model(str(tmp_path / "best" / "ckpt" / "last.keras"))
    delta_best = np.asarray(best.get_layer("reprogram").delta)
    assert not np.allclose(delta_best, np.asarray(last.get_layer("reprogram").delta))
    ckpt = keras.saving.load_model(str(tmp_path / "best" / "ckpt" / "last.keras"))
    ckpt.load_weights(str(tmp_path / "best" / "ckpt" / "best.weights.h5"))
    np.testing.assert_array_equal(delta_best, np.asarray(ckpt.get_layer("reprogram").delta))
    data = runs.load_data(config(tiny_ucr, tmp_path))
    accuracy = np.mean(np.argmax(best.predict(data.x_test, verbose=0), axis=1) == data.y_test)
    assert accuracy == pytest.approx(summary["test_accuracy"])


def test_ctrl_c_says_how_to_resume(tmp_path, tiny_ucr, capsys, monkeypatch):
    def interrupt(self, epoch, logs, seconds):
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(runs._Progress, "__call__", interrupt)
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "int"), "--source-weights",
            "random", "--verbose", "0", "--eps", "5", "--batch-size", "8"]
    with pytest.raises(SystemExit) as stop:
        v2s_main.main(argv)
    assert stop.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"v2s_main.py: interrupted after epoch 2; rerun with --resume to continue {tmp_path / 'int'}"


def test_resume_without_a_checkpoint_starts_fresh_and_other_settings_are_refused(tmp_path, tiny_ucr, capsys):
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "r"), "--source-weights", "random",
            "--verbose", "0", "--eps", "1", "--batch-size", "8"]
    v2s_main.main(argv + ["--resume"])
    assert "--resume: no checkpoint in" in capsys.readouterr().out
    os.remove(tmp_path / "r" / "summary.json")
    line = cli_error(capsys, v2s_main.main, argv + ["--resume", "--lr", "0.5"])
    assert "the checkpoint in" in line and "was made with lr=0.001, this run has lr=0.5" in line
    longer = v2s_main.main(argv + ["--resume", "--eps", "2"])  # more epochs may continue a run
    assert longer["epochs_run"] == 2 and len(open(tmp_path / "r" / "history.csv").read().splitlines()) == 3


def test_resume_accepts_the_same_source_weights_at_another_path(tmp_path, tiny_ucr, capsys):
    # A sweep's store may be shared by clones at other paths (a worktree, a cluster node): the same weights file
    # elsewhere continues the run; other weights are refused.
    shipped = os.path.join(runs.REPO, "weight")
    for name, source in (("here", "v2sa"), ("there", "v2sa"), ("other", "v2sa_synthetic")):
        os.makedirs(tmp_path / name)
        shutil.copy(os.path.join(shipped, f"{source}.weights.h5"), tmp_path / name / "v2sa.weights.h5")
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "r"), "--verbose", "0",
            "--batch-size", "8", "--seg", "2"]
    v2s_main.main(argv + ["--eps", "1", "--source-weights", str(tmp_path / "here" / "v2sa.weights.h5")])
    os.remove(tmp_path / "r" / "summary.json")
    line = cli_error(capsys, v2s_main.main,
                     argv + ["--resume", "--eps", "2", "--source-weights", str(tmp_path / "other" / "v2sa.weights.h5")])
    assert "was made with source_weights=" in line
    summary = v2s_main.main(argv + ["--resume", "--eps", "2", "--source-weights",
                                    str(tmp_path / "there" / "v2sa.weights.h5")])
    assert summary["epochs_run"] == 2


def test_dataset_index_and_any_case_name_the_same_run_folder(tmp_path, monkeypatch):
    from conftest import shared_path
    from ts_dataloader import resolve_name

    monkeypatch.setattr(runs, "RUNS_DIR", str(tmp_path))
    ucr = shared_path("ucr")
    for name in ("2", "ecg200", "ECG200"):  # the reference code's index, any case: the loaded set's own spelling
        cfg = runs.RunConfig(dataset=resolve_name(name), data_dir=ucr)
        assert runs.folder_for(cfg, runs.load_data(cfg).name) == str(tmp_path / "ECG200_reprogram_V2Sa_s0")
    data = runs.load_data(runs.RunConfig(dataset="gunpoint"))
    assert data.name == "GunPoint"


def test_inverse_time_decay_is_recorded_per_epoch(tmp_path, tiny_ucr):
    train(config(tiny_ucr, tmp_path / "decay", epochs=3, lr=0.1, lr_decay=0.5))
    rates = [float(r.split(",")[-1]) for r in open(tmp_path / "decay" / "history.csv").read().splitlines()[1:]]
    steps_per_epoch = 2  # 15 fit series, batches of 8
    expected = [0.1 / (1 + 0.5 * steps_per_epoch * (e + 1)) for e in range(3)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)


@pytest.mark.heavy
def test_v2su_through_the_cli(tmp_path, tiny_ucr):
    summary = v2s_main.main(["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "u"), "--arch",
                             "V2Su", "--source-weights", "random", "--verbose", "0", "--eps", "1", "--batch-size",
                             "8", "--seg", "2"])
    assert summary["config"]["arch"] == "V2Su"
    model = keras.saving.load_model(str(tmp_path / "u" / "model.keras"))
    assert "unet_enc1_a" in [l.name for l in model.get_layer("V2Su").layers]


def test_ensemble_run_records_every_programs_mapping(tmp_path, tiny_ucr):
    summary = train(config(tiny_ucr, tmp_path / "ens", epochs=1, ensemble=2, map_type="learned"))
    mapping = np.array(summary["mapping"])
    assert mapping.shape == (2, 3, 12) and not np.array_equal(mapping[0], mapping[1])


def test_resumable_checkpoint_keeps_the_best_weights_and_counts_patience(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    checkpoint = ResumableCheckpoint(str(tmp_path / "c"), monitor="val", patience=2)
    checkpoint.set_model(model)
    for epoch, (value, weight) in enumerate(((0.5, 1.0), (0.3, 2.0), (0.4, 3.0), (0.6, 4.0))):
        model.layers[0].kernel.assign(np.full((2, 1), weight, np.float32))
        checkpoint.on_epoch_end(epoch, {"val": value})
    assert checkpoint.state["best_epoch"] == 1 and checkpoint.state["wait"] == 2 and model.stop_training
    checkpoint.restore_best()
    assert np.asarray(model.layers[0].kernel).ravel().tolist() == [2.0, 2.0]
    again = ResumableCheckpoint(str(tmp_path / "c"), monitor="val", patience=2)
    assert again.state["epoch"] == 4 and again.state["history"]["val"] == [0.5, 0.3, 0.4, 0.6]


def test_a_checkpoint_within_an_epoch_records_its_batch_and_an_epochs_end_clears_it_and_adds_the_time(tmp_path,
                                                                                                     monkeypatch):
    import types

    import utils

    clock = iter([100.0, 103.0, 103.0, 125.0])  # opened, a batch's end (due: written), the epoch's end
    monkeypatch.setattr(utils, "time", types.SimpleNamespace(time=lambda: next(clock)))  # this module's clock only
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    checkpoint = ResumableCheckpoint(str(tmp_path / "c"), monitor="val", every_seconds=1.0)
    checkpoint.set_model(model)
    checkpoint.on_train_batch_end(4)  # 3 s after opening: written, five batches done
    on_disk = read_json(tmp_path / "c" / "state.json")
    assert (on_disk["epoch"], on_disk["batch"], on_disk["seconds"]) == (0, 5, 3.0)
    checkpoint.on_epoch_end(0, {"val": 0.5})  # a resumed run must start the next epoch at its first batch
    on_disk = read_json(tmp_path / "c" / "state.json")
    assert (on_disk["epoch"], on_disk["batch"], on_disk["seconds"]) == (1, 0, 25.0)


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"old": 1}')

    def fails(tmp):
        with open(tmp, "w") as fh:
            fh.write('{"new": ')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(str(path), fails)
    assert json.loads(path.read_text()) == {"old": 1}
    assert os.listdir(tmp_path) == ["f.json"]  # no temporary file left behind
    atomic_write(str(tmp_path / "new" / "g.txt"), lambda tmp: open(tmp, "w").write("x"))
    assert (tmp_path / "new" / "g.txt").read_text() == "x"


@pytest.mark.heavy
def test_selection_never_reads_the_test_set(tmp_path, tiny_ucr, monkeypatch):
    """--select auto picks on validation data: poisoning the test labels leaves the choice unchanged."""
    grid = ({}, {"lr": 5.0})
    monkeypatch.setattr(runs, "SELECTION_GRID", grid)
    clean = train(config(tiny_ucr, tmp_path / "clean", epochs=3, select="auto", ensemble=1))
    real_load = runs.load_data

    def poisoned(cfg):
        data = real_load(cfg)
        data.y_test = (data.y_test + 1) % data.num_classes
        data.x_test = data.x_test[::-1].copy()
        return data

    monkeypatch.setattr(runs, "load_data", poisoned)
    dirty_cfg = config(tiny_ucr, tmp_path / "dirty", epochs=3, select="auto", ensemble=1)
    dirty = runs.train(runs.load_data(dirty_cfg), dirty_cfg).summary
    assert clean["selection"]["chosen"] == dirty["selection"]["chosen"]
    assert [c["val_cross_entropy"] for c in clean["selection"]["candidates"]] == \
        [c["val_cross_entropy"] for c in dirty["selection"]["candidates"]]
    chosen = min(clean["selection"]["candidates"], key=lambda c: c["val_cross_entropy"])
    assert clean["selection"]["chosen"] == chosen["name"] and len(clean["selection"]["candidates"]) == 2
    # the poisoned test set is what the dirty run scored: the clean run's model on the poisoned arrays gives its score
    data = real_load(dirty_cfg)
    predicted = np.argmax(runs.load_run(str(tmp_path / "clean")).model.predict(data.x_test[::-1], verbose=0), axis=1)
    assert dirty["test_accuracy"] == pytest.approx(np.mean(predicted == (data.y_test + 1) % data.num_classes))
    for name in ("model.keras", "summary.json", "history.csv"):
        assert os.path.isfile(tmp_path / "clean" / name)
    # candidates never scored the test set; only the chosen one has a test accuracy
    scored = [read_json(tmp_path / "clean" / "candidates" / c["name"] / "summary.json")["test_accuracy"]
              for c in clean["selection"]["candidates"]]
    assert sum(s is not None for s in scored) == 1


@pytest.mark.heavy
def test_a_run_over_several_sources_with_augmentation_and_an_average_resumes_exactly(tmp_path, tiny_ucr, capsys):
    # Every option that carries state across epochs at once (the sources' programs, the augmentation's random
    # stream, the moving average saved with the optimizer, the iterative mapping saved with the weights): killed
    # after epoch 1 and resumed, the run is the uninterrupted one.
    opts = {"source_weights": ["random", "random"], "ensemble": 2, "jitter": 0.5, "scaling": 0.2, "ema": 2,
            "map_type": "iterative"}
    whole = train(config(tiny_ucr, tmp_path / "whole", epochs=3, **opts))
    assert "source V2Sa (random, random)" in capsys.readouterr().out
    assert whole["config"]["source_weights"] == opts["source_weights"]
    train(config(tiny_ucr, tmp_path / "parts", epochs=1, **opts))
    first_part = read_json(tmp_path / "parts" / "ckpt" / "state.json")["seconds"]
    os.remove(tmp_path / "parts" / "summary.json")
    resumed = train(config(tiny_ucr, tmp_path / "parts", epochs=3, resume=True, **opts))
    assert resumed["test_cross_entropy"] == whole["test_cross_entropy"]
    # The wall time counts both processes' training, not only the resumed part.
    final = read_json(tmp_path / "parts" / "ckpt" / "state.json")["seconds"]
    assert 0 < first_part < final and resumed["wall_seconds"] == pytest.approx(final, abs=0.01)
    a = read_json(tmp_path / "whole" / "ckpt" / "state.json")["history"]
    b = read_json(tmp_path / "parts" / "ckpt" / "state.json")["history"]
    assert a["loss"] == b["loss"] and a["val_ce"] == b["val_ce"]
    assert a["map_changes"] == b["map_changes"]
    mappings = [read_json(tmp_path / run / "mappings.json")["epochs"] for run in ("whole", "parts")]
    assert mappings[0] == mappings[1] and [e["epoch"] for e in mappings[0]] == [0, 1, 2]
    assert resumed["mapping"] == mappings[0][resumed["best_epoch"]]["mapping"]


def test_a_finished_run_is_reported_not_replaced_and_other_settings_are_refused(tmp_path, tiny_ucr, capsys):
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "r"), "--source-weights", "random",
            "--verbose", "0", "--eps", "1", "--batch-size", "8", "--ensemble", "1"]
    first = v2s_main.main(argv)
    stamp = os.path.getmtime(tmp_path / "r" / "summary.json")
    again = v2s_main.main(argv)  # the same command: the finished run is reported, nothing retrains
    assert "already holds this finished run" in capsys.readouterr().out
    assert again["test_accuracy"] == first["test_accuracy"]
    assert os.path.getmtime(tmp_path / "r" / "summary.json") == stamp
    line = cli_error(capsys, v2s_main.main, argv + ["--lr", "0.5"])  # was: the first run replaced without a word
    assert "holds a finished run with other settings (lr=0.001 there, 0.5 here)" in line and "--force" in line
    v2s_main.main(argv + ["--lr", "0.5", "--force"])
    assert runs.load_run(str(tmp_path / "r")).config["lr"] == 0.5


def test_an_unfinished_run_is_not_restarted_without_being_asked(tmp_path, tiny_ucr, capsys, monkeypatch):
    def interrupt(self, epoch, logs, seconds):
        if epoch == 1:
            raise KeyboardInterrupt

    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "u"), "--source-weights", "random",
            "--verbose", "0", "--eps", "4", "--batch-size", "8", "--ensemble", "1"]
    with monkeypatch.context() as patch:
        patch.setattr(runs._Progress, "__call__", interrupt)
        with pytest.raises(SystemExit):
            v2s_main.main(argv)
    line = cli_error(capsys, v2s_main.main, argv)
    assert "holds an unfinished run (2 epochs done); --resume continues it, --force starts it again" in line
    assert v2s_main.main(argv + ["--resume"])["epochs_run"] == 4


def test_ctrl_c_in_the_first_epoch_says_none_finished(tmp_path, tiny_ucr, capsys, monkeypatch):
    def interrupt(self, epoch, logs=None):  # Ctrl-C before the first epoch's checkpoint is written
        raise KeyboardInterrupt

    monkeypatch.setattr(ResumableCheckpoint, "record", interrupt)
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "z"), "--source-weights", "random",
            "--verbose", "0", "--eps", "3", "--batch-size", "8", "--ensemble", "1"]
    with pytest.raises(SystemExit):
        v2s_main.main(argv)
    assert "interrupted before the first epoch finished" in capsys.readouterr().err  # was "after epoch 0"


def test_ctrl_c_while_scoring_the_test_set_stops_and_says_how_to_continue(tmp_path, tiny_ucr, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "_score", interrupt)
    argv = ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(tmp_path / "s"), "--source-weights", "random",
            "--verbose", "0", "--eps", "1", "--batch-size", "8", "--ensemble", "1"]
    with pytest.raises(SystemExit) as stop:
        v2s_main.main(argv)
    assert stop.value.code == 130
    assert "interrupted while scoring the test set; training is finished, rerun with --resume" in \
        capsys.readouterr().err


def test_a_second_writer_of_a_run_folder_is_refused_at_once(tmp_path, tiny_ucr, capsys):
    import fcntl

    folder = tmp_path / "locked"
    folder.mkdir()
    with open(folder / ".lock", "w") as held:  # another process writing this folder holds this lock
        fcntl.flock(held, fcntl.LOCK_EX)
        line = cli_error(capsys, v2s_main.main, ["--dataset", "toy", "--data-dir", tiny_ucr, "--out", str(folder),
                                                 "--source-weights", "random", "--verbose", "0", "--eps", "1"])
    assert f"{folder} is being written by another run" in line


def test_default_folders_name_the_settings_that_differ(monkeypatch, tmp_path):
    monkeypatch.setattr(runs, "RUNS_DIR", str(tmp_path))
    default = runs.RunConfig(dataset="GunPoint").validated()
    assert runs.folder_for(default, "GunPoint") == str(tmp_path / "GunPoint_reprogram_V2Sa_s0")
    other = runs.RunConfig(dataset="GunPoint", ensemble=1, lr=0.003, znorm=True, epochs=5).validated()
    assert runs.folder_for(other, "GunPoint") == str(tmp_path / "GunPoint_reprogram_V2Sa_s0_ensemble-1_znorm_lr-0.003")
    control = runs.RunConfig(dataset="GunPoint", source_weights="random").validated()
    assert runs.folder_for(control, "GunPoint").endswith("_s0_source_weights-random")
    paper = runs.RunConfig(dataset="GunPoint", map_type="random").validated()  # asks for the paper's mapping
    assert runs.folder_for(paper, "GunPoint").endswith("_s0_head-mapping")
    # Too many changes for a readable name: a hash of them, the same one every time, so --resume finds the folder.
    many = dict(dataset="GunPoint", ensemble=1, lr=0.003, znorm=True, gain=True, dr=0.1, l2=0.01, jitter=0.05,
                batch_size=16, carrier=700.0, deviation=300.0)
    name = os.path.basename(runs.folder_for(runs.RunConfig(**many).validated(), "GunPoint"))
    assert re.fullmatch(r"GunPoint_reprogram_V2Sa_s0_settings-[0-9a-f]{10}", name)
    assert name == os.path.basename(runs.folder_for(runs.RunConfig(**many).validated(), "GunPoint"))
    assert name != os.path.basename(runs.folder_for(runs.RunConfig(**{**many, "dr": 0.2}).validated(), "GunPoint"))


LAYERS, EARLIER = ("layers", "fm", "lp+train", 0.001), ("pad", "train", 0.01)


@pytest.mark.parametrize("settings, head, map_type, companions", [
    ({}, "layers", "random", LAYERS[1:]),  # V2Sa reprogramming: the layers head on fm, started by LP
    ({"arch": "V2Su"}, "layers", "random", LAYERS[1:]),
    ({"mode": "reprogram+finetune"}, "layers", "random", LAYERS[1:]),
    ({"head": "attention"}, "attention", "random", EARLIER),  # the attention head brings its own companions
    ({"head": "attention", "lr": 0.003}, "attention", "random", ("pad", "train", 0.003)),  # given: kept
    ({"map_type": "random"}, "mapping", "random", EARLIER),  # any label mapping asked for: the mapping
    ({"map_type": "full"}, "mapping", "full", EARLIER),
    ({"mapping": 2}, "mapping", "random", EARLIER),
    ({"arch": "V2Sr"}, "mapping", "random", EARLIER),  # no attention-RNN layers
    ({"arch": "V2St"}, "mapping", "random", EARLIER),
    ({"mode": "transfer"}, "mapping", "random", EARLIER),  # the baselines have their own output layers
    ({"head": "mapping"}, "mapping", "random", EARLIER),
])
def test_the_output_layer_left_unset_is_the_head_where_it_applies(settings, head, map_type, companions):
    once = runs.RunConfig(source_weights="random", **settings).validated()
    assert (once.head, once.map_type) == (head, map_type)
    assert (once.encoding, once.head_fit, once.lr) == companions
    assert once.validated() == once  # a validated config validates again unchanged (a run re-reads its own)


def test_the_best_epoch_is_chosen_on_the_cross_entropy_not_the_penalised_loss(tmp_path, tiny_ucr):
    """With an L2 penalty on delta, validation loss and cross-entropy pick different epochs here (4 and 5, a
    precondition checked below); the run keeps the cross-entropy's, as the README and --help say."""
    import csv

    summary = train(config(tiny_ucr, tmp_path / "l2", epochs=8, l2=0.5, ensemble=1, patience=0, head="mapping"))
    history = list(csv.DictReader(open(tmp_path / "l2" / "history.csv")))
    ce, loss = ([float(r[k]) for r in history] for k in ("val_ce", "val_loss"))
    assert np.argmin(loss) != np.argmin(ce)
    assert summary["best_epoch"] == np.argmin(ce) and summary["val_cross_entropy"] == pytest.approx(min(ce))


def test_the_seed_sets_the_split_the_start_and_the_batches_and_val_split_the_split_size(tiny_ucr):
    from engine.training import epoch_order
    from utils import set_seed

    data = runs.load_data(config(tiny_ucr, "unused"))

    def start(seed):
        cfg = config(tiny_ucr, "unused", seed=seed, ensemble=1).validated()
        x_fit, y_fit, x_val, _, _ = runs.split_data(data, cfg)
        set_seed(seed)
        model = runs.build_model(cfg, data, x_fit, y_fit)[0]
        return x_val, np.asarray(model.get_layer("reprogram").delta)

    (val0, delta0), (val1, delta1), (again, delta_again) = start(0), start(1), start(0)
    assert not np.array_equal(val0, val1) and not np.array_equal(delta0, delta1)
    np.testing.assert_array_equal(val0, again)
    np.testing.assert_array_equal(delta0, delta_again)
    assert list(epoch_order(15, 0, 3)) != list(epoch_order(15, 1, 3))
    assert list(epoch_order(15, 0, 3)) == list(epoch_order(15, 0, 3)) != list(epoch_order(15, 0, 4))
    half = runs.split_data(data, config(tiny_ucr, "unused", val_split=0.5).validated())
    assert len(half[2]) == 9 and np.bincount(half[3]).tolist() == [3, 3, 3]  # half of each class's 6 series


def test_tensorboard_scalars_are_written_per_epoch(tmp_path, tiny_ucr):
    import glob

    import tensorflow as tf

    train(config(tiny_ucr, tmp_path / "tb", epochs=2, ensemble=1, tensorboard=True))
    events = glob.glob(str(tmp_path / "tb" / "tb" / "events.out.tfevents.*"))
    values = {}
    for event in tf.compat.v1.train.summary_iterator(events[0]):
        for value in event.summary.value:
            values.setdefault(value.tag, []).append(event.step)
    history = open(tmp_path / "tb" / "history.csv").read().splitlines()
    assert values["val_ce"] == [0, 1] and len(history) == 3 and {"loss", "accuracy", "val_accuracy"} <= set(values)


def test_classes_with_one_training_series_are_named_in_one_note():
    from ts_dataloader import UCRData

    y = np.array([0, 0, 0, 0, 1, 2, 3, 3, 3, 3])  # classes "b" and "c": one training series each
    data = UCRData("Few", np.zeros((10, 5), np.float32), y, np.zeros((2, 5), np.float32), np.array([0, 3]),
                   np.array(["a", "b", "c", "d"]), "memory")
    notes = runs.split_data(data, runs.RunConfig(val_split=0.5).validated())[4]
    assert notes == ["class b, c has one training series: it is only trained on, never validated"]
