"""The results table: collects run summaries, lines them up with the paper, and averages with/without artefacts."""

import json
import os

import pytest

import results_table
from conftest import cli_error, make_tone_gsc


def fake_run(folder, name, acc, classes=2):
    os.makedirs(folder / name, exist_ok=True)
    summary = {"dataset": name, "classes": classes, "train_size": 10, "length": 50, "segments": 10,
               "test_accuracy": acc, "val_accuracy": acc, "best_epoch": 3, "wall_seconds": 60.0,
               "protocol": "honest", "config": {}}
    (folder / name / "summary.json").write_text(json.dumps(summary))


def test_table_lines_up_with_the_paper_and_excludes_artefacts_from_the_clean_mean(tmp_path, capsys):
    fake_run(tmp_path, "Coffee", 1.0)
    fake_run(tmp_path, "GunPoint", 0.9)
    fake_run(tmp_path, "FordA", 0.5)
    results_table.main([str(tmp_path), "--md", str(tmp_path / "t.md"), "--csv", str(tmp_path / "t.csv")])
    text = (tmp_path / "t.md").read_text()
    assert "| FordA (*) |" in text
    assert "- mean all rows: **80.00** over 3 sets" in text
    assert "- mean without (*): **95.00** over 2 sets; on the 2 the paper reports: ours 95.00 vs paper V2Sa 98.34" \
        in text  # paper: (100 + 96.67) / 2
    import csv

    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["dataset"] for r in rows] == ["Coffee", "FordA", "GunPoint"]
    assert [float(r["ours_test"]) for r in rows] == [100.0, 50.0, 90.0] and rows[1]["artefact"] == "True"


def test_empty_and_missing_folders_are_one_line_errors(tmp_path, capsys):
    assert "no */summary.json under" in cli_error(capsys, results_table.main, [str(tmp_path)])
    assert "is not a folder of runs" in cli_error(capsys, results_table.main, [str(tmp_path / "nowhere")])


def compared_run(folder, name, config, val_ce, test, seed=0):
    run = folder / f"{name}_s{seed}"
    os.makedirs(run, exist_ok=True)
    (run / "summary.json").write_text(json.dumps({
        "dataset": name, "config": {**config, "seed": seed, "out": str(folder)}, "val_cross_entropy": val_ce,
        "val_accuracy": 0.5, "test_accuracy": test, "wall_seconds": 60.0}))


def test_compare_names_a_flag_older_runs_did_not_record(tmp_path, capsys):
    compared_run(tmp_path / "old", "A", {"l2": 0.0}, 0.5, 0.6)  # written before --cosine existed
    compared_run(tmp_path / "new", "A", {"l2": 0.0, "cosine": True}, 0.4, 0.7)
    results_table.main([str(tmp_path / "new"), "--compare", str(tmp_path / "old")])
    assert "| dataset | runs | val CE, cosine=False | val CE, cosine=True |" in capsys.readouterr().out


def test_compare_counts_validation_wins_and_picks_per_dataset(tmp_path, capsys):
    def run(folder, name, l2, val_ce, test):
        compared_run(folder, name, {"l2": l2}, val_ce, test)

    run(tmp_path / "main", "A", 0.05, 0.5, 0.6)
    run(tmp_path / "main", "B", 0.05, 0.2, 0.9)
    run(tmp_path / "main", "OnlyHere", 0.05, 0.2, 0.9)
    run(tmp_path / "ablation", "A", 0.0, 0.3, 0.8)
    run(tmp_path / "ablation", "B", 0.0, 0.4, 0.7)
    results_table.main([str(tmp_path / "ablation"), "--compare", str(tmp_path / "main")])
    out = capsys.readouterr().out
    assert "| dataset | runs | val CE, l2=0.05 | val CE, l2=0.0 |" in out and "OnlyHere" not in out
    # l2=0 is lower on A only; picking per dataset takes A from the ablation (80) and B from the main sweep (90).
    assert "val CE lower with l2=0.0 on 1 runs and 1 datasets, with l2=0.05 on 1 runs and 1 datasets" in out
    assert "mean test 75.00 vs 75.00; per dataset by lower mean val CE: 85.00" in out


def test_compare_summarises_the_apart_sets_and_the_others_on_their_own(tmp_path, capsys):
    for name, old_ce, new_ce in (("Chose1", 0.5, 0.1), ("Chose2", 0.5, 0.2), ("Fresh", 0.3, 0.4)):
        compared_run(tmp_path / "base", name, {"l2": 0.0}, old_ce, 0.5)
        compared_run(tmp_path / "new", name, {"l2": 0.1}, new_ce, 0.6)
    argv = [str(tmp_path / "new"), "--compare", str(tmp_path / "base")]
    results_table.main(argv + ["--apart", "Chose1", "Chose2"])
    out = capsys.readouterr().out
    assert "- the --apart sets (2 datasets, 2 runs): val CE lower with l2=0.1 on 2 runs" in out
    assert "- the others (1 datasets, 1 runs): val CE lower with l2=0.1 on 0 runs" in out
    assert "val CE lower with l2=0.1 on 2 runs and 2 datasets, with l2=0.0 on 1 runs" in out  # "all" unchanged
    line = cli_error(capsys, results_table.main, argv + ["--apart", "Chose1", "Chsoe2"])
    assert line == "results_table.py: error: --apart: Chsoe2 in neither folder (dataset names as the runs spell them)"


def test_compare_pairs_runs_by_dataset_and_seed(tmp_path, capsys):
    for seed, (old_ce, new_ce) in enumerate(((0.5, 0.4), (0.5, 0.7), (0.6, 0.5))):
        compared_run(tmp_path / "base", "A", {"ensemble": 1}, old_ce, 0.5, seed)
        compared_run(tmp_path / "ens", "A", {"ensemble": 3}, new_ce, 0.7, seed)
    compared_run(tmp_path / "ens", "A", {"ensemble": 3}, 0.1, 0.9, seed=7)  # no partner: left out
    results_table.main([str(tmp_path / "ens"), "--compare", str(tmp_path / "base")])
    out = capsys.readouterr().out
    assert "Paired on 3 runs: 1 datasets x seeds 0, 1, 2" in out
    assert "| A | 3 | 0.533 | 0.533 | 50.00 | 70.00 |" in out
    assert "val CE lower with ensemble=3 on 2 runs and 0 datasets, with ensemble=1 on 1 runs and 1 datasets" in out


def test_csv_with_compare_is_refused_not_ignored(tmp_path, capsys):
    fake_run(tmp_path / "a", "Coffee", 1.0)
    fake_run(tmp_path / "b", "Coffee", 0.9)
    with pytest.raises(SystemExit):
        results_table.main([str(tmp_path / "a"), "--compare", str(tmp_path / "b"), "--csv", str(tmp_path / "t.csv")])
    assert "with --compare use --md" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_source_ablation_uses_shared_datasets_and_the_first_seed(tmp_path, capsys):
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "scripts", "source_ablation.py")
    spec = importlib.util.spec_from_file_location("source_ablation", path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    compared_run(tmp_path / "a", "X", {}, 0.2, 0.9)
    compared_run(tmp_path / "a", "X", {}, 0.9, 0.1, seed=1)  # a later seed: not the one compared
    compared_run(tmp_path / "a2", "Y", {}, 0.6, 0.5)  # a source's runs may sit in several folders
    compared_run(tmp_path / "a", "OnlyHere", {}, 0.1, 1.0)
    compared_run(tmp_path / "b", "X", {}, 0.3, 0.7)
    compared_run(tmp_path / "b", "Y", {}, 0.4, 0.6)
    ablation.main([f"a={tmp_path / 'a'},{tmp_path / 'a2'}", f"b={tmp_path / 'b'}", "--gsc-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith("2 datasets: X, Y")
    assert "| a | `-` | - | not measured | 0.400 | 70.00 | 1 of 2 | - | - |" in out
    # b against a: lower on Y (0.4 < 0.6), higher on X (0.3 > 0.2); two sets cannot reach significance
    assert "| b | `-` | - | not measured | 0.350 | 65.00 | 1 of 2 | 1 of 2 (1) | - |" in out
    # the paper's Table 4 figure is looked up by the architecture the weights' model card names
    assert ablation.architecture_of(os.path.join(root, "weight", "v2st.weights.h5")) == ("V2St", 1_000_296)
    assert ablation.paper_table4()["V2St"] == 86.21 and ablation.paper_table4()["V2Sa"] == 89.37
    with pytest.raises(SystemExit, match="--paper-out needs a source whose model card names an architecture"):
        ablation.main([f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "--gsc-dir", str(tmp_path),
                       "--paper-out", str(tmp_path / "p.png")])
    capsys.readouterr()
    v2st = os.path.join(root, "weight", "v2st.weights.h5")
    gsc = make_tone_gsc(tmp_path / "gsc")
    ablation.main([f"a={tmp_path / 'a'}", f"t:{v2st}={tmp_path / 'b'}", "--gsc-dir", gsc,
                   "--paper-out", str(tmp_path / "p.png")])
    out = capsys.readouterr().out
    assert f"| t | `{v2st}` | V2St (1,000,296) | " in out and out.split("\n")[5].endswith("| 86.21 |")
    assert os.path.getsize(tmp_path / "p.png") > 10_000
    with pytest.raises(SystemExit, match="expected name"):
        ablation.parse_source("no-folder")
    with pytest.raises(SystemExit, match="nowhere is not a folder of runs"):
        ablation.main([f"a={tmp_path / 'nowhere'}", "--gsc-dir", str(tmp_path)])


def test_mixed_runs_are_labelled_and_never_averaged_or_paired_together(tmp_path, capsys):
    import dataclasses

    from engine.runs import RunConfig

    def run(name, dataset, acc, **config):
        config = dataclasses.asdict(RunConfig(**config).output_resolved())  # as a run of today records every setting
        os.makedirs(tmp_path / name)
        (tmp_path / name / "summary.json").write_text(json.dumps({
            "dataset": dataset, "classes": 2, "train_size": 10, "length": 50, "segments": 10, "test_accuracy": acc,
            "val_accuracy": acc, "best_epoch": 3, "wall_seconds": 60.0, "protocol": "honest", "config": config}))

    run("a", "Coffee", 1.0)
    run("b", "Coffee", 0.9, seed=1)
    run("c", "Coffee", 0.5, mode="fcn")
    run("d", "Coffee", 0.7, ensemble=1)
    run("e", "GunPoint", 0.8)
    results_table.main([str(tmp_path), "--md", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert "| Coffee | fcn |  |  |  | 0 |" in text and "| Coffee | reprogram | V2Sa | 1 |  | 0 |" in text
    # the default's two seeds of Coffee count once: (mean(100, 90) + 80) / 2 over 2 sets, not 3 or 5 "sets"
    assert "**reprogram V2Sa, 3 programs** (seeds 0, 1" in text
    assert "- mean all rows: **87.50** over 2 sets; on the 2 the paper reports: ours 87.50 vs paper V2Sa" in text
    assert "**fcn** (seeds 0" in text and "- mean all rows: **50.00** over 1 sets\n" in text  # never paired with V2Sa
    line = cli_error(capsys, results_table.main, [str(tmp_path), "--compare", str(tmp_path)])
    assert "two runs of Coffee with seed 0 in one folder" in line


def test_compare_tests_the_datasets_with_wilcoxon_and_pairs_across_seeds(tmp_path, capsys):
    for i in range(8):  # the candidate is lower on all 8 datasets: the smallest two-sided p of 8 pairs, 2 / 2^8
        compared_run(tmp_path / "base", f"D{i}", {"l2": 0.0}, 0.5 + 0.01 * i, 0.6, seed=0)
        compared_run(tmp_path / "cand", f"D{i}", {"l2": 0.0}, 0.4 + 0.02 * i, 0.6, seed=1)
    results_table.main([str(tmp_path / "cand"), "--compare", str(tmp_path / "base"), "--across-seeds"])
    out = capsys.readouterr().out
    assert "Wilcoxon signed-rank over the datasets: p = 0.00781" in out and "on 8 runs and 8 datasets" in out
    assert "the two folders share no" in cli_error(capsys, results_table.main,
                                                   [str(tmp_path / "cand"), "--compare", str(tmp_path / "base")])
    assert results_table.wilcoxon_p([1, 2], [1, 2]) == 1.0


def test_compare_pairs_a_screen_with_a_stores_default_v2sa_runs(tmp_path, capsys):
    import dataclasses

    from engine.runs import RunConfig

    # as runs record it: the output layer filled in, the source relative to the repository
    defaults = dict(dataclasses.asdict(RunConfig().output_resolved()), source_weights="weight/v2sa.weights.h5")
    store = tmp_path / "archive.jsonl"
    records = [{"dataset": f"D{i}", "method": "V2Sa", "config": {}, "seed": 0, "epochs": 100, "val_loss": 0.5,
                "test_accuracy": 0.7, "val_accuracy": 0.7, "wall_seconds": 30.0, "head": "layers", "encoding": "fm"}
               for i in range(4)]
    records += [{"dataset": "D0", "method": "LP", "config": {}, "seed": 0, "epochs": 100, "val_loss": 0.1,
                 "test_accuracy": 0.9, "val_accuracy": 0.9, "wall_seconds": 3.0},  # another method: left out
                {"dataset": "D1", "method": "V2Sa", "config": {"dr": 0.4}, "seed": 0, "epochs": 100, "val_loss": 0.1,
                 "test_accuracy": 0.9, "val_accuracy": 0.9, "wall_seconds": 3.0},  # other settings: left out
                {"dataset": "D2", "method": "V2Sa", "config": {}, "seed": 0, "failed": "UsageError: x"}]
    store.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    for i in range(4):
        compared_run(tmp_path / "screen", f"D{i}", defaults, 0.4, 0.8, seed=1)
    results_table.main([str(tmp_path / "screen"), "--compare", str(store), "--across-seeds"])
    out = capsys.readouterr().out
    assert "Paired on 4 runs" in out and "| val CE, seed 0 | val CE, seed 1 |" in out
    assert "mean val CE 0.500 vs 0.400" in out
    # Records made before the attention head existed read the classes through the label mapping, and say so.
    (tmp_path / "earlier.jsonl").write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "head"})
                                                      for r in records[:4]) + "\n")
    results_table.main([str(tmp_path / "screen"), "--compare", str(tmp_path / "earlier.jsonl"), "--across-seeds"])
    assert "val CE, head=mapping" in capsys.readouterr().out
    (tmp_path / "empty.jsonl").write_text("")
    empty = str(tmp_path / "empty.jsonl")
    assert "holds no finished V2Sa run" in cli_error(capsys, results_table.main,
                                                    [str(tmp_path / "screen"), "--compare", empty])
