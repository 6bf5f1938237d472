"""The LP screen of the encodings (scripts/encoding_probe.py): its candidates, its pooled blocks against the product's
feature reader, its resumable records and its table."""

import importlib.util
import json
import os

import numpy as np
import pytest

from conftest import make_toy_ucr

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "encoding_probe.py")
_SPEC = importlib.util.spec_from_file_location("encoding_probe", _PATH)
probe = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe)


def test_every_base_encoding_meets_every_feature_set_and_the_variants_one():
    pairs = probe.candidates()
    assert ("pad", "att") in pairs and ("fm", "wide") in pairs and ("am", "deep") in pairs
    assert ("fm_narrow", "lstm1") in pairs and ("fm_narrow", "att") not in pairs
    assert len(pairs) == len(probe.BASE_ENCODINGS) * len(probe.FEATURE_SETS) + \
        (len(probe.ENCODINGS) - len(probe.BASE_ENCODINGS)) * len(probe.VARIANT_FEATURES)


def test_blocks_side_by_side_are_the_products_pooled_features(source):
    from ts_encoding import build_encoding
    from ts_model import feature_reader

    x = np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)
    encoder = build_encoding("fm", 50)
    blocks = probe.layer_blocks(probe.block_reader(source, ["bilstm_1", "logits"]), encoder, x)
    product = feature_reader(source, ("bilstm_1", "logits")).predict(np.asarray(encoder(x)), verbose=0)
    np.testing.assert_allclose(np.concatenate([blocks["bilstm_1"], blocks["logits"]], 1), product, atol=1e-5)


def record(dataset, encoding, ce):
    features = [f for e, f in probe.candidates() if e == encoding]
    return {"dataset": dataset, "encoding": encoding,
            "scores": {f: {"val_ce": ce, "val_accuracy": 1.0, "test_accuracy": 0.5, "C": 1.0, "width": 9}
                       for f in features}}


def test_table_pairs_every_candidate_with_the_baseline_over_complete_sets():
    records = [record(d, e, 0.5 if e == "pad" else 0.3) for d in ("A", "B", "C") for e in probe.ENCODINGS]
    records.append(record("D", "pad", 0.1))  # a set without every candidate is left out
    text = probe.table(records, "pad/att")
    assert text.startswith("3 datasets; baseline pad/att.")
    fm = next(line for line in text.splitlines() if line.startswith("| fm/att |"))
    assert fm.split(" | ")[1:4] == ["0.300", "0.300", "3 (higher on 0)"]
    assert "| D |" not in text
    assert probe.table([], "pad/att") == "(no dataset has every candidate yet)"


@pytest.mark.slow
def test_the_screen_resumes_and_skips_torn_lines(tmp_path, capsys):
    data = make_toy_ucr(tmp_path / "ucr")
    out = tmp_path / "screen"
    argv = ["--data-dir", data, "--datasets", "Toy", "--encodings", "pad", "fm", "--out", str(out),
            "--source-weights", "weight/v2sa.weights.h5"]
    probe.main(argv)
    lines = (out / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["encoding"] for line in lines] == ["pad", "fm"]
    with open(out / "records.jsonl", "a") as fh:
        fh.write('{"dataset": "Toy", "enc')  # a line torn by a killed run
    capsys.readouterr()
    probe.main(argv)  # nothing left to run: both (dataset, encoding) pairs are done
    assert "Toy pad:" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        probe.main(["--out", str(out), "--table-only", "--baseline", "nothing/att"])


def test_a_v2s_screen_stands_beside_the_lp_candidates(tmp_path):
    records = [record(d, e, 0.5) for d in ("A", "B") for e in probe.ENCODINGS]
    for dataset, ce in (("A", 0.2), ("B", 0.9)):
        folder = tmp_path / f"{dataset}_s0"
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps({"dataset": dataset, "val_cross_entropy": ce,
                                                         "test_accuracy": 0.75}))
    text = probe.table(records, "fm/lstm1", {"v2s": probe.screen_scores(str(tmp_path))})
    row = next(line for line in text.splitlines() if line.startswith("| v2s |"))
    assert row.split(" | ")[1:4] == ["0.550", "0.550", "1 (higher on 1)"] and row.endswith("75.00 |")
