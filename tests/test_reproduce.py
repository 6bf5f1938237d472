"""reproduce.py: a tiny grid end to end (local and Ray), resume, the summary maths, and a corrupt store line."""

import json
import os

import pytest

import reproduce
from conftest import make_toy_ucr


def test_summary_maths_on_known_inputs():
    values = {"A": 90.0, "B": 80.0, "C": 50.0}
    classes = {"A": 2, "B": 5, "C": 2}
    mean, median, mpce = reproduce.summary_rows(values, classes, lambda d: True)
    assert mean == pytest.approx(73.3333, abs=1e-3) and median == 80.0
    assert mpce == pytest.approx((10 / 2 + 20 / 5 + 50 / 2) / 3)
    assert reproduce.summary_rows(values, classes, lambda d: d != "C")[0] == 85.0
    assert reproduce.wins({"A": 90.0, "B": 80.0, "C": 50.0}, {"A": 85.0, "B": 80.0, "C": 60.0, "D": 1.0}) == (1, 1, 1)


def test_selection_keeps_the_lowest_validation_loss_per_seed():
    records = [
        {"dataset": "X", "method": "V2Sa", "seed": 0, "val_loss": 0.5, "test_accuracy": 0.6, "classes": 2},
        {"dataset": "X", "method": "V2Sa", "seed": 0, "val_loss": 0.2, "test_accuracy": 0.8, "classes": 2},
        {"dataset": "X", "method": "V2Sa", "seed": 1, "val_loss": 0.3, "test_accuracy": 0.9, "classes": 2},
    ]
    assert reproduce.select(records) == {("X", "V2Sa"): [80.0, 90.0]}
    control = dict(records[0], source_weights="random", val_loss=0.0, test_accuracy=0.5)
    assert reproduce.select(records + [control])[("X", "V2Sa (random source)")] == [50.0]
    assert reproduce.select(records + [control])[("X", "V2Sa")] == [80.0, 90.0]


def test_source_weights_control_has_keys_of_its_own():
    shipped = reproduce.plan(["A"], ["V2Sa", "MiniRocket"], [0], "default", 100)
    control = reproduce.plan(["A"], ["V2Sa", "MiniRocket"], [0], "default", 100, source_weights="random")
    assert shipped[0]["key"] != control[0]["key"] and control[0]["source_weights"] == "random"
    assert shipped[1]["key"] == control[1]["key"]  # MiniRocket has no source model


def test_run_settings_have_keys_and_labels_of_their_own():
    settings = reproduce.parse_settings(["head=attention", "--znorm=true", "lr=0.003", "carrier=700"])
    assert settings == {"head": "attention", "znorm": True, "lr": 0.003, "carrier": 700.0}
    del settings["carrier"]
    plain = reproduce.plan(["A"], ["V2Sa", "LP"], [0], "default", 100)
    changed = reproduce.plan(["A"], ["V2Sa", "LP"], [0], "default", 100, settings=settings)
    assert plain[0]["key"] != changed[0]["key"]
    training = reproduce.plan(["A"], ["LP"], [0], "default", 100, settings={"znorm": True, "lr": 0.003})
    assert plain[1]["key"] == training[0]["key"]  # LP trains no program: training settings do not concern it
    assert changed[1]["settings"] == {"head": "attention"}  # which head's features it reads does
    config = reproduce.task_config(changed[0], "data", "runs")
    assert (config.head, config.znorm, config.lr, config.mode) == ("attention", True, 0.003, "reprogram")
    records = [{"dataset": "X", "method": "V2Sa", "seed": 0, "val_loss": 0.3, "test_accuracy": 0.8},
               {"dataset": "X", "method": "V2Sa", "seed": 0, "val_loss": 0.1, "test_accuracy": 0.6,
                "settings": {"head": "attention"}}]
    assert reproduce.select(records) == {("X", "V2Sa"): [80.0], ("X", "V2Sa (head=attention)"): [60.0]}


def test_paper_protocol_grid_size():
    tasks = reproduce.plan(["A"], ["V2Sa", "TF_a"], [0, 1], "paper", 100)
    assert len(tasks) == 5 * 10 * 2 + 2
    assert len({t["key"] for t in tasks}) == len(tasks)
    narrow = reproduce.plan(["A"], ["V2Sa"], [0], "paper", 100, grid=([0.0, 0.4], [0, 1]))
    assert [(t["config"]["dr"], t["config"]["seg"]) for t in narrow] == [(0.0, 0), (0.0, 1), (0.4, 0), (0.4, 1)]
    # the narrowed grid's runs are the full grid's: a wider sweep on the same store skips them
    assert {t["key"] for t in narrow if t["config"]["seg"] == 1} < {t["key"] for t in tasks}
    config = reproduce.task_config(narrow[0], "data", "runs").output_resolved()
    assert (config.val_on_test, config.head, config.encoding, config.seg) == (True, "mapping", "pad", 0)


def test_the_paper_protocol_is_a_column_of_its_own_scored_as_the_reference_code_scored():
    honest = {"dataset": "X", "method": "V2Sa", "seed": 0, "config": {}, "val_loss": 0.1, "test_accuracy": 0.7}
    paper = [dict(honest, config=reproduce.paper_config(d, 0), val_loss=loss, test_accuracy=0.5,
                  best_test_accuracy=best) for d, loss, best in ((0.0, 0.01, 0.8), (0.4, 0.5, 0.9))]
    # per seed the configuration of the best test accuracy of any epoch, never mixed with the honest runs
    assert reproduce.select([honest, *paper]) == {("X", "V2Sa"): [70.0],
                                                  ("X", "V2Sa" + reproduce.PAPER_PROTOCOL_LABEL): [90.0]}
    # In the table: its failures fall in its own column, and it is read against the paper's V2Sa over shared sets.
    coffee = [dict(r, dataset="Coffee", classes=2, key=f"k{i}") for i, r in enumerate([honest, *paper])]
    coffee.append(dict(coffee[1], dataset="GunPoint", key="f", failed="RunInterrupted: interrupted"))
    text, rows, _ = reproduce.build_table(coffee)
    label = "V2Sa" + reproduce.PAPER_PROTOCOL_LABEL
    assert [(r["dataset"], r["V2Sa"], r[label]) for r in rows] == [("Coffee", "70.00", "90.00"),
                                                                   ("GunPoint", "", "failed")]
    assert "configurations run: dropout [0.0, 0.4] x m [0]" in text and "0 wins, 0 ties, 1 losses" in text
    assert "over the 1 sets both have (all): ours 90.00, the paper's 100.00" in text
    # beside the honest run of the same readout, the share of its gap to the paper that the protocol closes
    mapped = dict(coffee[0], key="m", settings={"head": "mapping"}, test_accuracy=0.8)
    text = reproduce.build_table([*coffee, mapped])[0]
    assert "the honest run of the same readout 80.00: the protocol closes 10.00 of its 20.00-point gap (50%)" in text
    # the cost row sums every run of a column, both configurations of the paper protocol
    coffee[1]["wall_seconds"], coffee[2]["wall_seconds"], coffee[0]["wall_seconds"] = 1800, 5400, 360
    text = reproduce.build_table(coffee)[0]
    assert "| **wall hours, all runs** |  |" in text and text.split("wall hours, all runs** |")[1].split("\n")[0]\
        .strip(" |").split(" | ")[-2:] == ["0.10", "2.00"]


@pytest.mark.parametrize("flags, message", [
    (["--dropouts", "0"], "they need --protocol paper"),
    (["--protocol", "paper", "--dropouts", "1.5"], "--dropouts must lie in [0, 1), got 1.5"),
    (["--protocol", "paper", "--segments", "11"], "--segments must lie in 0..10"),
])
def test_a_bad_paper_grid_is_one_line(flags, message, capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["--data-dir", ".", *flags])
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def record(key, **extra):
    return {"key": key, "dataset": "X", "method": "FCN", "config": {}, "seed": 0, "test_accuracy": 0.5, **extra}


def test_corrupt_store_line_is_reported_not_fatal(tmp_path):
    store = reproduce.ResultStore(str(tmp_path / "runs.jsonl"))
    store.append(record("a"))
    with open(store.path, "a") as fh:
        fh.write('{"key": "b", "x": \n')  # a torn line, as a kill mid-write would leave
    store.append({"key": "d", "x": 3})  # valid JSON, but not a run record: fields missing
    store.append(record("c"))
    records, problems = store.load()
    assert [r["key"] for r in records] == ["a", "c"]
    assert len(problems) == 2 and "line 2" in problems[0] and "line 3" in problems[1]


def test_not_found_and_unreadable_datasets_are_told_apart(tmp_path):
    data = make_toy_ucr(tmp_path / "ucr")
    os.makedirs(os.path.join(data, "Broken"))
    with open(os.path.join(data, "Broken", "Broken_TRAIN.tsv"), "w") as fh:
        fh.write("1\t1.0\t2.0\n2\t1.0\n")
    with open(os.path.join(data, "Broken", "Broken_TEST.tsv"), "w") as fh:
        fh.write("1\t1.0\t2.0\n")
    present, missing, unreadable = reproduce.available_datasets(["Toy", "NotThere", "Broken"], data)
    assert present == ["Toy"] and missing == ["NotThere"]
    assert unreadable[0][0] == "Broken" and "line 2: 1 values, but line 1 has 2" in unreadable[0][1]


def many_class_ucr(folder, classes=40):
    """A dataset with more classes than the 36 source labels: V2Sa cannot map it, the FCN can train on it."""
    os.makedirs(os.path.join(folder, "Many"), exist_ok=True)
    for split in ("TRAIN", "TEST"):
        with open(os.path.join(folder, "Many", f"Many_{split}.tsv"), "w") as fh:
            for c in range(classes):
                for _ in range(2):
                    fh.write("\t".join([str(c)] + [f"{c + 0.01 * i:.2f}" for i in range(20)]) + "\n")


@pytest.mark.slow
def test_a_failing_task_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    data = make_toy_ucr(tmp_path / "ucr")
    many_class_ucr(data)
    store = str(tmp_path / "runs.jsonl")
    # V2Sr reads its classes through the label mapping, which cannot share 36 source labels out among 40 classes:
    # that task fails when it starts.
    argv = ["--data-dir", data, "--datasets", "Many", "Toy", "--methods", "V2Sr", "FCN", "--epochs", "1",
            "--source-weights", "random", "--store", store, "--out", str(tmp_path / "t")]
    records = reproduce.main(argv)
    failed = [r for r in records if "failed" in r]
    assert [(r["dataset"], r["method"]) for r in failed] == [("Many", "V2Sr")]
    assert "40 classes, more than the 36 source labels" in failed[0]["failed"]
    assert len(records) == 4  # the three other tasks ran after the failure
    table = open(tmp_path / "t.md").read()
    assert "| Many | 40 | " in table and "failed |" in table and "- V2Sr (random source) (1 epochs) on Many, seed 0: UsageError" in table
    again = reproduce.main(argv)  # a rerun tries the failed task again, and only that one
    assert "1 to run" in capsys.readouterr().out and len(again) == 5


@pytest.mark.heavy
@pytest.mark.slow
def test_two_local_jobs(tmp_path):
    data = make_toy_ucr(tmp_path / "ucr")
    records = reproduce.main(["--data-dir", data, "--datasets", "Toy", "--methods", "FCN", "--seeds", "0", "1",
                              "--epochs", "1", "--jobs", "2", "--store", str(tmp_path / "runs.jsonl"),
                              "--out", str(tmp_path / "t")])
    assert sorted(r["seed"] for r in records) == [0, 1] and all("test_accuracy" in r for r in records)
    lines = open(tmp_path / "runs.jsonl").read().splitlines()
    assert len(lines) == 2 and len({json.loads(line)["key"] for line in lines}) == 2


@pytest.mark.slow
def test_a_killed_sweep_stops_its_workers(tmp_path):
    """kill (SIGTERM) on a sweep of two jobs: it stops like Ctrl-C and no worker keeps training (and locking) a run."""
    import fcntl
    import glob
    import signal
    import subprocess
    import sys
    import time

    data = make_toy_ucr(tmp_path / "ucr")
    argv = [sys.executable, reproduce.__file__, "--data-dir", data, "--datasets", "Toy", "--methods", "V2Sa",
            "--source-weights", "random", "--seeds", "0", "1", "--epochs", "100", "--jobs", "2",
            "--store", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "t")]
    sweep = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(reproduce.__file__))
    locks = []
    for _ in range(600):  # both workers have opened a run (each holds its folder's lock while it trains)
        locks = glob.glob(str(tmp_path / "runs" / "s" / "*" / ".lock"))
        if len(locks) == 2 or sweep.poll() is not None:
            break
        time.sleep(0.2)
    assert len(locks) == 2, sweep.communicate()[1][-1500:]
    sweep.send_signal(signal.SIGTERM)
    _, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130 and "interrupted; every finished run is in" in err
    for lock in locks:
        if os.path.exists(lock):  # a worker that stopped cleanly removed its lock
            with open(lock) as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if a worker still holds it


@pytest.mark.slow
def test_tiny_grid_runs_resumes_and_skips_missing_datasets(tmp_path, capsys):
    data = make_toy_ucr(tmp_path / "ucr")
    store = str(tmp_path / "store" / "runs.jsonl")
    argv = ["--data-dir", data, "--datasets", "Toy", "NotThere", "--methods", "V2Sa", "FCN", "--epochs", "1",
            "--source-weights", "random", "--store", store, "--out", str(tmp_path / "table")]
    records = reproduce.main(argv)
    out = capsys.readouterr().out
    assert "skipped: NotThere" in out and "2 to run" in out
    assert sorted(r["method"] for r in records) == ["FCN", "V2Sa"]
    table = open(tmp_path / "table.md").read()
    assert "| Toy | 3 |" in table and "**mean, all**" in table
    again = reproduce.main(argv)
    assert "2 already in" in capsys.readouterr().out and len(again) == 2

    # Importing the grid's own run folders into a new store: FCN comes back under the same key; the V2Sa run used
    # random source weights, which the default grid would not, so it is reported and left out.
    other = reproduce.ResultStore(str(tmp_path / "other.jsonl"))
    assert reproduce.import_runs([reproduce.runs_folder(store)], other) == 1
    assert "source weights random are not the shipped ones" in capsys.readouterr().err
    imported = other.load()[0][0]
    original = next(r for r in records if r["method"] == "FCN")
    assert imported["key"] == original["key"] and imported["test_accuracy"] == original["test_accuracy"]
    assert reproduce.import_runs([reproduce.runs_folder(store)], other) == 0


def _fake_run(folder, **changes):
    import dataclasses

    from engine.runs import RunConfig

    config = dataclasses.asdict(RunConfig(dataset="Toy", **changes).validated())  # as a run records its settings
    os.makedirs(folder)
    with open(os.path.join(folder, "summary.json"), "w") as fh:
        json.dump({"dataset": "Toy", "classes": 3, "config": config, "test_accuracy": 0.5, "val_accuracy": 0.6,
                   "val_cross_entropy": 0.7, "wall_seconds": 1.0}, fh)
    return str(folder)


def test_imported_run_is_keyed_like_the_grid_and_other_settings_are_refused(tmp_path):
    default = reproduce.record_from_run(_fake_run(tmp_path / "a"))
    assert default["key"] == reproduce.plan(["Toy"], ["V2Sa"], [0], "default", 100)[0]["key"]
    assert (default["head"], default["encoding"]) == ("layers", "fm")  # how the run read its classes and series
    # The paper's grid reads the classes through its label mapping, whatever today's default, and watches the test
    # set; its score is the best test accuracy of any epoch (history.csv's val_accuracy), not the summary's.
    folder = _fake_run(tmp_path / "b", dr=0.1, seg=3, head="mapping", val_on_test=True)
    with open(os.path.join(folder, "history.csv"), "w") as fh:
        fh.write("epoch,val_accuracy\n0,0.25\n1,0.75\n2,0.5\n")
    paper = reproduce.record_from_run(folder)
    assert paper["key"] in {t["key"] for t in reproduce.plan(["Toy"], ["V2Sa"], [0], "paper", 100)}
    assert (paper["best_test_accuracy"], paper["test_accuracy"]) == (0.75, 0.5)
    with pytest.raises(ValueError, match=r"dr=0.1 \(default 0.0\)"):  # the grid's settings, honest: not the paper's
        reproduce.record_from_run(_fake_run(tmp_path / "b2", dr=0.1, seg=3, head="mapping"))
    with pytest.raises(ValueError, match=r"l2=0.01 \(default 0.0\)"):
        reproduce.record_from_run(_fake_run(tmp_path / "c", l2=0.01))
    with pytest.raises(ValueError, match=r"head='mapping' \(default 'layers'\)"):  # an earlier default
        reproduce.record_from_run(_fake_run(tmp_path / "d", head="mapping"))
    with pytest.raises(ValueError, match=r"head='attention' \(default 'layers'\)"):  # the one before today's
        reproduce.record_from_run(_fake_run(tmp_path / "d2", head="attention"))
    with pytest.raises(ValueError, match=r"dr=0.1 \(default 0.0\)"):  # the paper's dropout under today's head
        reproduce.record_from_run(_fake_run(tmp_path / "e", dr=0.1, seg=3))
    # Runs of the earlier default import into the grid that names it with --settings, keyed as that grid keys them.
    mapping = reproduce.record_from_run(_fake_run(tmp_path / "f", head="mapping"), {"head": "mapping"})
    grid = reproduce.plan(["Toy"], ["V2Sa"], [0], "default", 100, settings={"head": "mapping"})
    assert mapping["key"] == grid[0]["key"] and mapping["settings"] == {"head": "mapping"}
    with pytest.raises(ValueError, match=r"head='layers' \(default 'mapping'\)"):
        reproduce.record_from_run(_fake_run(tmp_path / "g"), {"head": "mapping"})
    with pytest.raises(ValueError, match=r"dr=0.1 \(default 0.0\)"):  # settings rule out the paper's grid
        reproduce.record_from_run(_fake_run(tmp_path / "h", dr=0.1, seg=3, head="mapping"), {"head": "mapping"})


def test_a_store_of_the_earlier_output_default_takes_no_runs_of_todays(tmp_path):
    earlier = [{"key": "k", "dataset": "Toy", "method": "V2Sa", "config": {}, "seed": 0, "test_accuracy": 0.5}]
    tasks = reproduce.plan(["Toy"], ["V2Sa", "FCN"], [0], "default", 100)
    with pytest.raises(reproduce.UsageError, match="its V2Sa runs under default settings have head=mapping, today's "
                                                   "default is head=layers; start a new store"):
        reproduce.check_store_output(earlier, tasks, "old.jsonl")
    reproduce.check_store_output([dict(earlier[0], head="layers", encoding="fm")], tasks, "new.jsonl")
    # The paper's grid and --settings runs carry their own output layer in their keys: no clash.
    reproduce.check_store_output(earlier, reproduce.plan(["Toy"], ["V2Sa"], [0], "paper", 100), "old.jsonl")
    with pytest.raises(ValueError, match="no summary.json"):
        reproduce.record_from_run(str(tmp_path))


def test_a_store_of_the_earlier_encoding_takes_no_default_runs_of_another():
    """Default V2S and LP runs name neither head nor encoding in their keys: after the default changed to the layers
    head on fm, a store of the attention head's zero-padded runs (LP records from before carry neither) takes no
    new default runs of either."""
    earlier = [{"key": "k", "dataset": "Toy", "method": m, "config": {}, "seed": 0, "test_accuracy": 0.5,
                **({"head": "layers", "encoding": "pad"} if m == "V2Sa" else {"head": "layers"})}
               for m in ("V2Sa", "LP")]
    tasks = reproduce.plan(["Toy"], ["V2Sa", "LP"], [0], "default", 100)
    for method in ("V2Sa", "LP"):
        with pytest.raises(reproduce.UsageError, match=f"its {method} runs under default settings have encoding=pad, "
                                                       "today's default is encoding=fm"):
            reproduce.check_store_output(earlier, reproduce.plan(["Toy"], [method], [0], "default", 100), "old.jsonl")
    today = [dict(r, encoding="fm") for r in earlier]
    reproduce.check_store_output(today, tasks, "new.jsonl")
    # LP takes the settings that concern it from --settings, and its key then names them
    lp = reproduce.plan(["Toy"], ["LP"], [0], "default", 100, settings={"encoding": "am", "lr": 0.1})[0]
    assert lp["settings"] == {"encoding": "am"} and lp["key"] != tasks[1]["key"]


def test_run_made_before_a_setting_existed_counts_with_the_value_it_used(tmp_path, monkeypatch):
    old = _fake_run(tmp_path / "old", cosine=False)
    with open(os.path.join(old, "summary.json")) as fh:
        summary = json.load(fh)
    del summary["config"]["cosine"]  # summaries written before --cosine existed (constant learning rate)
    with open(os.path.join(old, "summary.json"), "w") as fh:
        json.dump(summary, fh)
    assert reproduce.record_from_run(old)["key"] == reproduce.record_from_run(_fake_run(tmp_path / "new"))["key"]
    # Were cosine the default, that old run would not be a default-grid run: it is read as cosine=False.
    import dataclasses

    @dataclasses.dataclass
    class CosineByDefault(reproduce.runs.RunConfig):
        cosine: bool = True

    monkeypatch.setattr(reproduce.runs, "RunConfig", CosineByDefault)
    with pytest.raises(ValueError, match=r"cosine=False \(default True\)"):
        reproduce.record_from_run(old)


@pytest.mark.heavy
@pytest.mark.slow
def test_minirocket_baseline_on_the_same_split(tmp_path):
    pytest.importorskip("aeon")
    data = make_toy_ucr(tmp_path / "ucr")
    records = reproduce.main(["--data-dir", data, "--datasets", "Toy", "--methods", "MiniRocket",
                              "--store", str(tmp_path / "runs.jsonl"), "--out", str(tmp_path / "t")])
    assert records[0]["test_accuracy"] > 0.6


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_runs_on_a_two_node_ray_cluster(tmp_path):
    """A real two-node Ray cluster on this machine (each node its own raylet and temp dir, one CPU each): a small
    sweep is submitted to its address, tasks run on both nodes, and every result reaches the store."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    data = make_toy_ucr(tmp_path / "ucr")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        records = reproduce.main(["--data-dir", data, "--datasets", "Toy", "--methods", "LP", "MiniRocket",
                                  "--seeds", "0", "1", "--source-weights", "random", "--backend", "ray",
                                  "--address", cluster.address, "--store", str(tmp_path / "runs.jsonl"),
                                  "--out", str(tmp_path / "t")])
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    assert sorted((r["method"], r["seed"]) for r in records) == [("LP", 0), ("LP", 1), ("MiniRocket", 0),
                                                                 ("MiniRocket", 1)]
    assert all("test_accuracy" in r for r in records)
    assert len({r["node"] for r in records}) == 2  # both nodes ran tasks
    assert len(open(tmp_path / "runs.jsonl").read().splitlines()) == 4


def test_table_of_a_store_goes_beside_it_and_defaults_stay_out_of_results(tmp_path):
    # Before the fix, --table-only / --import-runs with a custom --store overwrote the committed results/table2, and
    # the default store and table were the committed ones.
    store = tmp_path / "seeds.jsonl"
    reproduce.ResultStore(str(store)).append(
        {"key": "k", "dataset": "Coffee", "method": "FCN", "config": {}, "seed": 0, "epochs": 1, "classes": 2,
         "test_accuracy": 0.5, "val_accuracy": 0.5, "val_loss": 0.7, "wall_seconds": 1.0})
    reproduce.main(["--table-only", "--store", str(store)])
    assert (tmp_path / "seeds.md").is_file() and (tmp_path / "seeds.csv").is_file()
    repo = os.path.dirname(os.path.abspath(reproduce.__file__))
    assert reproduce.DEFAULT_STORE.startswith(os.path.join(repo, "runs") + os.sep)
    assert reproduce.table_prefix(None, reproduce.DEFAULT_STORE) == os.path.join(repo, "runs", "reproduce", "runs")
    # two stores in one folder keep their runs apart
    assert reproduce.runs_folder(str(tmp_path / "a.jsonl")) != reproduce.runs_folder(str(tmp_path / "b.jsonl"))
    reproduce.main(["--table-only", "--store", str(store), "--out", str(tmp_path / "new" / "folder" / "t")])
    assert (tmp_path / "new" / "folder" / "t.md").is_file()


def test_a_store_without_the_papers_datasets_gets_no_empty_scatter_plot(tmp_path, capsys):
    # Before the fix, a table of sets the paper never ran (e.g. held-out UCR sets) came with an empty plot.
    store = tmp_path / "heldout.jsonl"
    record = {"key": "k", "dataset": "ArrowHead", "method": "V2Sa", "config": {}, "seed": 0, "epochs": 1,
              "classes": 3, "test_accuracy": 0.6, "val_accuracy": 0.6, "val_loss": 0.7, "wall_seconds": 1.0}
    reproduce.ResultStore(str(store)).append(record)
    reproduce.main(["--table-only", "--store", str(store)])
    assert not (tmp_path / "heldout_scatter.png").exists()
    assert "no scatter plot" in capsys.readouterr().out
    reproduce.ResultStore(str(store)).append({**record, "key": "c", "dataset": "Coffee", "classes": 2})
    reproduce.main(["--table-only", "--store", str(store)])
    assert (tmp_path / "heldout_scatter.png").is_file()


@pytest.mark.slow
def test_a_killed_task_resumes_and_records_its_cpu_time(tmp_path, capsys, monkeypatch):
    from engine import runs

    data = make_toy_ucr(tmp_path / "ucr")
    task = reproduce.plan(["Toy"], ["V2Sa"], [0], "default", 4, source_weights="random")[0]
    task["config"] = {"ensemble": 1, "batch_size": 8}

    def interrupt(self, epoch, logs, seconds):
        if epoch == 1:
            raise KeyboardInterrupt

    # The kill stops the sweep: before the fix it was recorded as the task's failure and the next task started.
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(runs._Progress, "__call__", interrupt)
        reproduce.run_task(task, data, str(tmp_path / "runs"))
    capsys.readouterr()
    record = reproduce.run_task(task, data, str(tmp_path / "runs"))
    assert capsys.readouterr().out == ""  # a sweep's runs are quiet: their results go to the store
    summary = json.load(open(tmp_path / "runs" / task["key"] / "summary.json"))
    assert summary["epochs_run"] == 4 and "failed" not in record  # epochs 3 and 4 continued the killed run
    assert record["cpu_seconds"] > 0 and record["resumed_after_epoch"] == 2  # its CPU time covers epochs 3-4 only


def test_a_store_whose_last_line_lacks_its_newline_keeps_the_next_record(tmp_path):
    path = tmp_path / "s.jsonl"
    first = {"key": "a", "dataset": "X", "method": "V2Sa", "config": {}, "seed": 0, "test_accuracy": 0.5}
    path.write_text(json.dumps(first))  # no newline: an editor or a killed writer left it so
    store = reproduce.ResultStore(str(path))
    store.append(dict(first, key="b", seed=1))
    records, problems = store.load()
    assert [r["key"] for r in records] == ["a", "b"] and problems == []  # was one glued, unreadable line


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),  # every task failed, exit 0, naming --eps
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--seeds", "0", "-1"], "--seeds must be 0 or more, got 0 -1"),
    (["--address", "ray://x:1"], "--address names a Ray cluster; it needs --backend ray"),
    (["--source-weights", "nothing.weights.h5"], "source weights nothing.weights.h5 not found"),
    (["--store", "{tmp}"], "is a folder; expected a JSON-lines file"),  # was "no finished runs"
    (["--settings", "head"], "--settings 'head': expected NAME=VALUE"),
    (["--settings", "seed=3"], "'seed' is not one --settings can change"),
    (["--settings", "znorm=maybe"], "znorm takes a bool, got 'maybe'"),
    (["--settings", "head=dense"], "--head must be one of mapping, attention, layers, features, got 'dense'"),
])
def test_every_flag_is_checked_before_any_task_starts(tmp_path, capsys, flags, message):
    from conftest import cli_error

    data = make_toy_ucr(tmp_path / "ucr")
    argv = ["--data-dir", data, "--datasets", "Toy", "--methods", "V2Sa", "--store", str(tmp_path / "s.jsonl"),
            "--out", str(tmp_path / "t")] + [f.replace("{tmp}", str(tmp_path)) for f in flags]
    line = cli_error(capsys, reproduce.main, argv)
    assert line.startswith("reproduce.py: error: ") and message in line
    assert not os.path.exists(tmp_path / "runs")


def test_a_second_sweep_on_a_store_is_refused_at_once(tmp_path, capsys):
    import fcntl

    from conftest import cli_error

    data = make_toy_ucr(tmp_path / "ucr")
    store = tmp_path / "s.jsonl"
    with open(str(store) + ".lock", "w") as held:  # the first sweep holds the store
        fcntl.flock(held, fcntl.LOCK_EX)
        line = cli_error(capsys, reproduce.main, ["--data-dir", data, "--datasets", "Toy", "--methods", "FCN",
                                                  "--epochs", "1", "--store", str(store), "--out", str(tmp_path / "t")])
    assert "is being written by another reproduce.py sweep" in line and not store.exists()


def test_all_names_every_dataset_in_the_folder(tmp_path):
    data = make_toy_ucr(tmp_path / "ucr")
    many_class_ucr(data)
    (tmp_path / "ucr" / "Flat_TRAIN.tsv").write_text("1\t1.0\n")
    (tmp_path / "ucr" / "Flat_TEST.tsv").write_text("1\t1.0\n")
    assert reproduce.datasets_in(data) == ["Flat", "Many", "Toy"]


def test_an_import_with_a_bad_setting_is_refused_in_one_line(tmp_path):
    # Before the fix, --import-runs skipped the --settings check and reported every run as "not imported".
    args = reproduce.build_parser().parse_args(["--import-runs", str(tmp_path), "--settings", "head=nonsense",
                                                "--store", str(tmp_path / "s.jsonl")])
    with pytest.raises(ValueError, match="--head must be one of mapping, attention, layers, features, got 'nonsense'"):
        reproduce.check_args(args)


def test_the_papers_v2su_column_stands_beside_a_v2su_column_only():
    run = {"dataset": "Coffee", "method": "V2Sa", "seed": 0, "val_loss": 0.1, "test_accuracy": 1.0, "classes": 2,
           "key": "a", "config": {}}
    text, rows, columns = reproduce.build_table([run])
    assert "paper V2Su" not in text and "paper V2Su" not in columns
    v2su = dict(run, method="V2Su", key="b", settings={"ensemble": 1}, test_accuracy=0.5)
    text, rows, columns = reproduce.build_table([run, v2su])
    header = text.splitlines()[0]
    assert "paper V2Su" in header and "V2Su (ensemble=1)" in header
    assert rows[0]["paper V2Su"] == "100.00" and rows[0]["V2Su (ensemble=1)"] == "50.00"  # the paper's Coffee row


def test_a_table_of_sets_the_paper_never_ran_has_only_our_columns(tmp_path):
    # Before the fix, a UEA store's table had four empty published columns, "vs paper SOTA: 0 wins, 0 ties,
    # 0 losses", artefact rows and footnote, and plotting it raised KeyError 'paper V2Sa'.
    runs = [{"dataset": d, "method": m, "seed": 0, "val_loss": 0.1, "test_accuracy": acc, "classes": 4,
             "key": d + m, "config": {}}
            for d in ("BasicMotions", "NATOPS") for m, acc in (("V2Sa", 0.9), ("MiniRocket", 1.0))]
    text, rows, columns = reproduce.build_table(runs)
    assert text.splitlines()[0] == "| dataset | C | V2Sa | MiniRocket |"
    assert "paper SOTA" not in text and "without (*)" not in text and "label-folding" not in text
    assert "- V2Sa vs MiniRocket: 0 wins, 0 ties, 2 losses" in text
    assert not reproduce.plot_scatter(columns, str(tmp_path / "scatter.png"))
    runs.append(dict(runs[0], dataset="Coffee", key="c"))  # one of the paper's sets: its columns come back
    text, _, _ = reproduce.build_table(runs)
    assert "paper V2Sa" in text.splitlines()[0] and "wins" in text
