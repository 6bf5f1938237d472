"""The diagnosis verdicts follow their stated rules and the table reads a run folder's chosen epoch."""

import json
import os
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
import diagnose  # noqa: E402


def test_verdicts_follow_the_rules():
    assert diagnose.verdicts(0.6, 0.5, 0.5, 55.0, 60.0) == ["underfit"]
    assert diagnose.verdicts(1.0, 0.7, 0.7, 72.0, 75.0) == ["overfit"]
    assert diagnose.verdicts(0.95, 0.9, 0.5, 50.0, 90.0) == ["front end"]
    assert diagnose.verdicts(0.95, 0.9, 0.5, 80.0, 90.0) == ["output side"]
    assert diagnose.verdicts(0.95, 0.9, 0.9, 88.0, 91.0) == ["-"]


def test_the_table_reads_the_chosen_epoch_and_sorts_by_gap(tmp_path):
    for name, test, best in (("A", 0.9, 1), ("B", 0.5, 0)):
        run = tmp_path / "runs" / f"{name}_s1"
        os.makedirs(run)
        (run / "summary.json").write_text(json.dumps({"dataset": name, "classes": 2, "train_size": 20,
                                                      "best_epoch": best, "test_accuracy": test}))
        (run / "history.csv").write_text("epoch,accuracy,val_accuracy\n0,0.5,0.5\n1,1.0,0.95\n")
    store = tmp_path / "s.jsonl"
    records = [{"dataset": d, "method": m, "seed": 0, "config": {}, "test_accuracy": a, "val_accuracy": a}
               for d in "AB" for m, a in (("LP", 0.85), ("MiniRocket", 0.95))]
    store.write_text("\n".join(json.dumps(r) for r in records))
    rows = diagnose.diagnose(str(tmp_path / "runs"), str(store))
    assert [r["dataset"] for r in rows] == ["B", "A"]  # B trails MiniRocket by 45 points, A by 5
    assert rows[0]["fit"] == 50.0 and rows[0]["verdict"] == "underfit, output side"
    assert rows[1]["fit"] == 100.0 and rows[1]["val"] == 95.0 and rows[1]["verdict"] == "-"


def test_missing_runs_or_store_is_a_one_line_error(tmp_path, capsys):
    from conftest import cli_error

    line = cli_error(capsys, diagnose.main, ["--runs", str(tmp_path), "--store", str(tmp_path / "s.jsonl")])
    assert "no finished run folders" in line
