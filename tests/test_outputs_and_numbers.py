"""Nothing deleted or overwritten that the user did not ask for, no non-finite number reported as a result, no flag
ignored: run folders, pretraining outputs, model cards, sweeps' stores, overflowing values, diverging training,
and the tools under scripts/."""

import importlib.util
import json
import os
import signal

import numpy as np
import pytest

import reproduce
import v2s_main
from conftest import REPO, cli_error, make_toy_ucr
from engine.errors import UsageError, terminate_as_interrupt
from engine.runs import RunConfig


def script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_ucr(tmp_path_factory.mktemp("ucr"))


def quick(toy, out, *extra):
    return ["--dataset", "Toy", "--data-dir", toy, "--out", str(out), "--source-weights", "random", "--eps", "1",
            "--ensemble", "1", "--verbose", "0", *extra]


@pytest.mark.slow
def test_a_run_never_writes_into_or_empties_a_folder_of_other_files(toy, tmp_path, capsys):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "thesis.tex").write_text("years of work")
    for extra in ((), ("--force",)):
        line = cli_error(capsys, v2s_main.main, quick(toy, own, *extra))
        assert "holds 'thesis.tex', which no run wrote" in line
    assert (own / "thesis.tex").read_text() == "years of work" and sorted(os.listdir(own)) == ["thesis.tex"]
    run = tmp_path / "run"
    v2s_main.main(quick(toy, run))
    assert not (run / ".lock").exists()  # the lock goes with the run
    (run / "cam_0.png").write_bytes(b"figure")  # a figure drawn from the run is the run's
    v2s_main.main(quick(toy, run, "--force"))
    assert (run / "summary.json").is_file() and not (run / "cam_0.png").exists()


def test_values_near_float32s_limit_are_z_normalised_not_zeroed():
    from ts_encoding import z_normalised

    x = np.random.default_rng(0).standard_normal((2, 50))
    expected = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    for scale in (1.0, 1e20, 1e36):  # squared, 1e20 overflows float32: the earlier std was inf, the series zeros
        out = np.asarray(z_normalised((x * scale).astype(np.float32)))
        np.testing.assert_allclose(out, expected, atol=1e-4)


def test_a_diverging_run_stops_naming_the_epoch_before_it_is_recorded():
    import keras

    from engine.training import _check_finite_epoch

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    _check_finite_epoch(model, {"loss": 0.5}, 4)
    # the whole line, its advice included: it is all a user gets
    with pytest.raises(UsageError, match="^training diverged in epoch 4: the training loss \\(nan\\) is not a finite "
                                         "number; lower --lr, or check the data's scale$"):
        _check_finite_epoch(model, {"loss": float("nan")}, 4)
    model.layers[0].kernel.assign(np.full((3, 2), np.inf, np.float32))
    with pytest.raises(UsageError, match="training diverged in epoch 7: the weight 'kernel'"):
        _check_finite_epoch(model, {"loss": 0.5}, 7)


def test_a_setting_the_mode_does_not_use_is_refused():
    with pytest.raises(UsageError, match="--gain is not used by --mode fcn"):
        RunConfig(mode="fcn", gain=True).validated()
    with pytest.raises(UsageError, match="--ensemble 5 is not used by --mode transfer"):
        RunConfig(mode="transfer", ensemble=5).validated()
    for mode in ("transfer", "fcn"):  # its defaults, validated twice, pass
        config = RunConfig(mode=mode).validated()
        assert config.validated() == config


def test_pretrain_writes_under_runs_and_replaces_nothing_unasked(tmp_path, capsys):
    from speech import pretrain

    args = pretrain.build_parser().parse_args(["--synthetic"])
    pretrain.check_args(args)
    assert args.out == os.path.join("runs", "pretrain", "v2sa")  # never the shipped weight/v2sa
    out = str(tmp_path / "src")
    open(out + ".weights.h5", "w").close()
    line = cli_error(capsys, pretrain.main, ["--synthetic", "--out", out])
    assert f"--out {out}: {out}.weights.h5 exists" in line and "--force replaces it" in line
    line = cli_error(capsys, pretrain.main, ["--synthetic", "--out", str(tmp_path / "new"), "--resume"])
    assert "--resume: no checkpoint in" in line and "new_ckpt" in line


def test_sweeps_write_under_runs_and_each_store_keeps_its_own_run_folders(tmp_path):
    assert reproduce.DEFAULT_STORE == os.path.join(REPO, "runs", "reproduce", "runs.jsonl")
    a, b = reproduce.runs_folder(str(tmp_path / "a.jsonl")), reproduce.runs_folder(str(tmp_path / "b.jsonl"))
    assert a == str(tmp_path / "runs" / "a") and b == str(tmp_path / "runs" / "b")


def test_settings_are_given_once_with_a_value_to_methods_that_take_them(capsys, tmp_path):
    store = ["--store", str(tmp_path / "s.jsonl"), "--data-dir", str(tmp_path)]
    cases = ((["--settings", "head=mapping", "head=attention"], "--settings names head twice"),
             (["--settings", "ensemble"], "expected NAME=VALUE; ensemble needs a value (e.g. ensemble=3)"),
             (["--methods", "V2Sa", "MiniRocket", "--settings", "lr=0.003"], "MiniRocket takes none of them"),
             (["--methods", "LP", "--settings", "lr=0.003"], "LP takes none of them"))
    for flags, message in cases:
        assert message in cli_error(capsys, reproduce.main, store + flags)


def test_runs_of_another_length_are_tabulated_apart():
    rows = [{"dataset": "X", "method": "V2Sa", "seed": 0, "val_loss": 0.3, "test_accuracy": 0.8, "epochs": 100},
            {"dataset": "X", "method": "V2Sa", "seed": 0, "val_loss": 0.1, "test_accuracy": 0.6, "epochs": 5},
            {"dataset": "X", "method": "LP", "seed": 0, "val_loss": 0.2, "test_accuracy": 0.7, "epochs": 5}]
    assert reproduce.select(rows) == {("X", "V2Sa"): [80.0], ("X", "V2Sa (5 epochs)"): [60.0], ("X", "LP"): [70.0]}


def test_results_table_refuses_a_flag_it_would_ignore_and_writes_into_new_folders(tmp_path, capsys):
    import results_table

    folder = tmp_path / "runs" / "Toy_s0"
    folder.mkdir(parents=True)
    summary = {"dataset": "Toy", "classes": 3, "test_accuracy": 0.5, "val_accuracy": 0.5, "val_cross_entropy": 0.7,
               "wall_seconds": 1.0, "best_epoch": 0, "config": {"seed": 0, "mode": "reprogram", "arch": "V2Sa"},
               "train_size": 9, "length": 40, "segments": 10, "protocol": "honest"}
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit):
        results_table.main([str(tmp_path / "runs"), "--across-seeds"])
    assert "--across-seeds pairs two folders of a --compare" in capsys.readouterr().err
    results_table.main([str(tmp_path / "runs"), "--md", str(tmp_path / "new" / "t.md")])
    assert (tmp_path / "new" / "t.md").is_file()


def test_diagnose_needs_lp_and_minirocket_one_run_per_set_and_readable_summaries(tmp_path, capsys):
    diagnose = script("diagnose")
    runs = tmp_path / "runs"
    for name in ("Toy_s0", "Toy_s1"):
        (runs / name).mkdir(parents=True)
        (runs / name / "summary.json").write_text(json.dumps({"dataset": "Toy", "classes": 3, "train_size": 9,
                                                               "best_epoch": 0, "test_accuracy": 0.5}))
        (runs / name / "history.csv").write_text("epoch,accuracy,val_accuracy\n0,0.9,0.8\n")
    store = tmp_path / "s.jsonl"
    store.write_text(json.dumps({"key": "k", "dataset": "Toy", "method": "LP", "config": {}, "seed": 0,
                                 "test_accuracy": 0.7, "val_accuracy": 0.7}) + "\n")
    argv = ["--runs", str(runs), "--store", str(store)]
    assert "holds no finished MiniRocket run" in cli_error(capsys, diagnose.main, argv)
    with open(store, "a") as fh:
        fh.write(json.dumps({"key": "m", "dataset": "Toy", "method": "MiniRocket", "config": {}, "seed": 0,
                             "test_accuracy": 0.9}) + "\n")
    assert "holds two runs of Toy (Toy_s0 and Toy_s1)" in cli_error(capsys, diagnose.main, argv)
    (runs / "Toy_s1" / "summary.json").write_text("{not json")
    assert "Toy_s1: not a finished run folder" in cli_error(capsys, diagnose.main, argv)
    with pytest.raises(SystemExit):
        diagnose.main(argv + ["--worst", "-1"])
    assert "--worst must be at least 1" in capsys.readouterr().err


def test_archive_report_refuses_a_folder_as_prefix_a_missing_method_and_a_missing_set(tmp_path, capsys):
    report = script("archive_report")
    store = tmp_path / "s.jsonl"
    lines = [{"key": m, "dataset": "Toy", "method": m, "config": {}, "seed": 0, "test_accuracy": 0.5,
              "val_loss": 0.5} for m in ("V2Sa", "LP")]
    store.write_text("".join(json.dumps(r) + "\n" for r in lines))
    argv = ["--store", str(store), "--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit):
        report.main(argv + ["--out", str(tmp_path) + os.sep])
    assert "is a folder; it is the prefix of the report's files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report.main(argv + ["--out", str(tmp_path / "r")])
    assert "holds no finished MiniRocket run of seed 0" in capsys.readouterr().err
    with open(store, "a") as fh:
        fh.write(json.dumps(dict(lines[0], key="mr", method="MiniRocket")) + "\n")
    assert "no folder holds Toy, a set of the store" in cli_error(capsys, report.main, argv + ["--out",
                                                                                             str(tmp_path / "r")])


def test_a_screen_refuses_flags_it_sets_and_fails_when_its_runs_fail(tmp_path, capsys, monkeypatch):
    screen = script("screen")
    with pytest.raises(SystemExit):
        screen.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "s"), "--flags=--out elsewhere"])
    assert "--flags: --out is set by the screen itself" in capsys.readouterr().err
    monkeypatch.setattr(screen, "_one", lambda task: (task[0], "failed (exit 2): no such set"))
    with pytest.raises(SystemExit) as stop:
        screen.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "s"), "--datasets", "A", "B"])
    assert stop.value.code == 1 and "2 of 2 runs failed" in capsys.readouterr().err


def test_tsne_of_too_few_series_is_a_one_line_error():
    import tsne_v2s

    with pytest.raises(UsageError, match="t-SNE needs at least 3 series"):
        tsne_v2s.embed(np.zeros((2, 5)))
    assert tsne_v2s.embed(np.random.default_rng(0).standard_normal((4, 5))).shape == (4, 2)


def test_the_scatter_plot_takes_a_stores_only_v2sa_column(tmp_path):
    columns = {"paper V2Sa": {"Coffee": 100.0}, "V2Sa (head=mapping)": {"Coffee": 96.0}}
    assert reproduce.plot_scatter(columns, str(tmp_path / "s.png")) and (tmp_path / "s.png").is_file()
    assert not reproduce.plot_scatter({"paper V2Sa": {"Coffee": 100.0}, "LP": {"Coffee": 90.0}},
                                      str(tmp_path / "t.png"))


def test_a_download_without_a_network_is_one_line(monkeypatch):
    import urllib.error

    import pyts.datasets

    import ts_dataloader

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(pyts.datasets, "fetch_ucr_dataset", offline)
    with pytest.raises(ts_dataloader.DatasetError, match="--download: Beef could not be fetched .*Name or service"):
        ts_dataloader.load_ucr("Beef", download=True)


def test_a_clip_the_model_cannot_hear_as_it_is_is_described(tmp_path):
    from conftest import tone, write_clip
    from speech.commands import clip_changes

    path = str(tmp_path / "c.wav")
    write_clip(path, np.stack([tone(300, 0.5, rate=8000)] * 2, axis=1), rate=8000)
    assert clip_changes(path) == ["2 channels averaged", "resampled from 8000 Hz to 16000",
                                  "0.50 s zero-padded at the end to one second"]
    write_clip(path, tone(300))
    assert clip_changes(path) == []


def test_a_kill_is_an_interrupt_inside_the_block():
    with pytest.raises(KeyboardInterrupt):
        with terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


@pytest.mark.parametrize("path", ["results_table.py", "scripts/archive_report.py", "scripts/diagnose.py",
                                  "scripts/source_ablation.py", "speech/evaluation.py"])
def test_help_examples_keep_their_line_continuations(path):
    source = open(os.path.join(REPO, path)).read()
    spec = importlib.util.spec_from_file_location("m", os.path.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert source.count(" \\\n") >= 1 and " \\\n" in module.__doc__
