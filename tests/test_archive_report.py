"""The archive report counts what the store holds: seed 0 per method, wins, failed runs listed, seeds averaged."""

import csv
import os
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
import archive_report  # noqa: E402


def _record(dataset, method, seed, acc):
    return {"key": f"{dataset}-{method}-{seed}", "dataset": dataset, "method": method, "config": {}, "seed": seed,
            "test_accuracy": acc, "val_loss": 0.5, "classes": 2, "cpu_seconds": 60.0}


def test_the_report_pairs_seed_zero_lists_failures_and_averages_seeds(tmp_path):
    # Coffee and Ham are in the published HIVE-COTE 2 table; Fungi's V2Sa run failed.
    records = [_record("Coffee", "V2Sa", 0, 0.9), _record("Coffee", "LP", 0, 0.8),
               _record("Coffee", "MiniRocket", 0, 1.0), _record("Ham", "V2Sa", 0, 0.7),
               dict(_record("Ham", "LP", 0, 0.75), cpu_seconds=5.0, resumed_after_epoch=40),
               _record("Ham", "MiniRocket", 0, 0.6),
               _record("Ham", "MiniRocket", 1, 0.8), _record("Fungi", "LP", 0, 0.5),
               _record("Fungi", "MiniRocket", 0, 0.9),
               {"key": "Fungi-V2Sa-0", "dataset": "Fungi", "method": "V2Sa", "config": {}, "seed": 0,
                "failed": "UsageError: no validation split"}]
    props = {d: dict(classes=2, train=30, test=30, length=100, znormalised=d != "Ham")
             for d in ("Coffee", "Ham", "Fungi")}
    out = str(tmp_path / "archive")
    text = archive_report.report(records, props, out)
    assert "- V2Sa vs MiniRocket: 1 wins, 0 ties, 1 losses" in text
    assert "- V2Sa vs LP: 1 wins, 0 ties, 1 losses" in text
    assert "- V2Sa on Fungi, seed 0: UsageError: no validation split" in text
    assert "Over the 2 sets where V2Sa, LP and MiniRocket all ran" in text
    # A resumed run's CPU time covers only its last part: named, not counted as the cost of LP on Ham.
    assert "- LP: 2 runs here" in text and "LP on Ham (after epoch 40)" in text
    with open(out + ".csv") as fh:
        rows = {row["dataset"]: row for row in csv.DictReader(fh)}
    assert rows["Fungi"]["V2Sa"] == "failed" and rows["Fungi"]["LP"] == "50.00"
    assert rows["Ham"]["MiniRocket"] == "60.00"  # seed 0 is the headline column
    assert rows["Ham"]["MiniRocket, seeds"] == "70.00 ± 10.00 (2)"
    assert rows["Ham"]["z-normalised"] == "no" and rows["Coffee"]["HC2 (published)"] == "100.00"
    for figure in ("_cd.png", "_scatter.png", "_gap.png"):
        assert os.path.getsize(out + figure) > 10_000


def test_the_gap_table_names_its_bins_by_what_they_hold():
    # The many-class bin once read "11-36" while it also held Adiac (37 classes) and ShapesAll (60).
    columns = {m: {"ShapesAll": 70.0, "Coffee": 90.0} for m in ("V2Sa", "LP", "MiniRocket")}
    props = {"ShapesAll": dict(classes=60, train=600, length=512, znormalised=True),
             "Coffee": dict(classes=2, train=28, length=286, znormalised=True)}
    rows = [line for line in archive_report.gap_table(columns, props) if line.startswith("| classes")]
    assert rows == ["| classes | 2 | 1 | 90.00 | 90.00 | 90.00 | +0.00 | 0/1/0 |",
                    "| classes | > 10 | 1 | 70.00 | 70.00 | 70.00 | +0.00 | 0/1/0 |"]


def test_a_missing_or_empty_store_is_a_one_line_error(tmp_path, capsys):
    from conftest import cli_error

    argv = ["--store", str(tmp_path / "none.jsonl"), "--data-dir", str(tmp_path), "--out", str(tmp_path / "a")]
    assert "not a file" in cli_error(capsys, archive_report.main, argv)
    (tmp_path / "none.jsonl").write_text("")
    assert "holds no finished run" in cli_error(capsys, archive_report.main, argv)
