"""The results table: collects run summaries, lines them up with the paper, and averages with/without artefacts."""

import json
import os

import pytest

import results_table


def fake_run(folder, name, acc, classes=2):
    os.makedirs(folder / name, exist_ok=True)
    summary = {"dataset": name, "classes": classes, "train_size": 10, "length": 50, "segments": 10,
               "test_accuracy": acc, "val_accuracy": acc, "best_epoch": 3, "wall_seconds": 60.0,
               "protocol": "honest"}
    (folder / name / "summary.json").write_text(json.dumps(summary))


def test_table_lines_up_with_the_paper_and_excludes_artefacts_from_the_clean_mean(tmp_path, capsys):
    fake_run(tmp_path, "Coffee", 1.0)
    fake_run(tmp_path, "GunPoint", 0.9)
    fake_run(tmp_path, "FordA", 0.5)
    results_table.main([str(tmp_path), "--md", str(tmp_path / "t.md"), "--csv", str(tmp_path / "t.csv")])
    text = (tmp_path / "t.md").read_text()
    assert "| FordA (*) |" in text
    assert "**mean, all rows** (3 sets) | | | | | **80.00**" in text
    assert "**mean without (*)** (2 sets) | | | | | **95.00** | | | | 98.34" in text  # paper: (100 + 96.67) / 2
    assert os.path.getsize(tmp_path / "t.csv") > 0


def test_empty_folder_is_reported(tmp_path):
    with pytest.raises(SystemExit, match="no \\*/summary.json"):
        results_table.main([str(tmp_path)])
