"""The output side: the iterative mapping, the fully-connected mapping and the attention head."""

import os

import numpy as np
import pytest

import keras

from conftest import forward

import cam_v2s
from engine import runs
from engine.iterative_mapping import IterativeMapping, owner_changes
from engine.training_graph import training_graph
from ts_model import (build_v2s, frequency_mapping, random_mapping, reprogrammed_features,
                      source_pass)
from utils import read_json

LENGTH = 40


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, LENGTH)).astype(np.float32), np.arange(12) % 3


def test_full_mapping_starts_as_the_many_to_one_mapping(source, series):
    x, _ = series
    keras.utils.set_random_seed(1)
    one = random_mapping(3, 1, seed=0)  # k = 1: exactly the fixed mapping
    fixed = build_v2s(LENGTH, 3, source=source, segments=4, mapping=one)
    full = build_v2s(LENGTH, 3, source=source, segments=4, mapping=one, readout="full")
    full.get_layer("reprogram").delta.assign(np.asarray(fixed.get_layer("reprogram").delta))
    np.testing.assert_allclose(forward(full, x), forward(fixed, x), atol=1e-6)
    assert {tuple(w.shape) for w in full.trainable_weights} == {(16000,), (1, 36, 3), (1, 3)}
    # k = 3: the start averages the owned labels' logits (a normalised geometric mean of their probabilities).
    three = random_mapping(3, 3, seed=0)
    full = build_v2s(LENGTH, 3, source=source, segments=4, mapping=three, readout="full")
    logits = reprogrammed_features(full, x)  # what the readout reads
    expected = np.exp(np.stack([logits[:, labels].mean(axis=1) for labels in three], axis=1))
    np.testing.assert_allclose(forward(full, x), expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_the_training_graph_computes_every_readout(source, series):
    x, _ = series
    for readout, classes, programs in (("full", 3, 2), ("attention", 40, 1), ("iterative", 3, 2)):
        mapping = None if readout == "attention" else np.stack([random_mapping(classes, 12, s) for s in range(2)])
        model = build_v2s(LENGTH, classes, source=source, segments=4, mapping=mapping, programs=programs,
                          readout=readout)
        per_program = forward(training_graph(model), x)
        mean = per_program.mean(axis=1) if programs > 1 else per_program
        np.testing.assert_allclose(mean, forward(model, x), atol=1e-5)


def test_iterative_mapping_follows_the_programs_predictions(source, series, tmp_path):
    x, y = series
    mapping = np.stack([random_mapping(3, 12, s) for s in range(2)])
    model = build_v2s(LENGTH, 3, source=source, segments=4, mapping=mapping, programs=2, readout="iterative")
    callback = IterativeMapping(x, y, 3, str(tmp_path / "mappings.json"))
    callback.set_model(model)
    callback.on_epoch_begin(0)
    probs = source_pass(model, probabilities=True)(x)
    expected = [frequency_mapping(p, y, 3, 12) for p in probs]
    layer = model.get_layer("label_mapping")
    assert [[sorted(c) for c in m] for m in expected] == layer.current_mapping()
    # Another program predicts other source labels: the mapping follows.
    rng = np.random.default_rng(5)
    model.get_layer("reprogram").delta.assign(rng.standard_normal((2, 16000)).astype(np.float32))
    callback.on_epoch_begin(1)
    logs = {}
    callback.on_epoch_end(1, logs)
    after = layer.current_mapping()
    assert after != [[sorted(c) for c in m] for m in expected]
    assert logs["map_changes"] == owner_changes(np.array(expected), np.array(after), 36) > 0
    record = read_json(tmp_path / "mappings.json")["epochs"]
    assert [e["epoch"] for e in record] == [0, 1] and record[1]["mapping"] == after
    # The model reads its classes through the new mapping, and a saved model keeps it.
    model.save(str(tmp_path / "m.keras"))
    again = keras.saving.load_model(str(tmp_path / "m.keras"))
    assert again.get_layer("label_mapping").current_mapping() == after
    np.testing.assert_allclose(forward(again, x), forward(model, x), atol=1e-6)


def write_many_classes(folder, classes=37, length=20):
    """A toy set with more classes than the 36 source labels: two training and one test series per class."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(folder, "Many"), exist_ok=True)
    for split, n in (("TRAIN", 2), ("TEST", 1)):
        rows = [[c + 1] + list(np.sin(np.linspace(0, c / 3, length)) + 0.05 * rng.standard_normal(length))
                for c in range(classes) for _ in range(n)]
        with open(os.path.join(folder, "Many", f"Many_{split}.tsv"), "w") as fh:
            fh.write("\n".join("\t".join(f"{v:.5f}" for v in r) for r in rows) + "\n")
    return str(folder)


@pytest.mark.slow
def test_the_default_head_runs_a_set_with_more_classes_than_source_labels(tmp_path, capsys):
    data_dir = write_many_classes(tmp_path / "data")  # as Adiac (37 classes)
    cfg = runs.RunConfig(dataset="Many", data_dir=data_dir, out=str(tmp_path / "run"), source_weights="random",
                         verbose=0, epochs=2, ensemble=1, seg=4)
    with pytest.raises(runs.UsageError, match="a head runs it"):
        runs.train(runs.load_data(cfg), runs.RunConfig(**{**vars(cfg), "head": "mapping"}))
    run = runs.train(runs.load_data(cfg), cfg)
    assert run.summary["classes"] == 37 and run.summary["mapping"] is None and run.summary["epochs_run"] == 2
    assert "a linear head on pooled features of several frozen layers" in capsys.readouterr().out
    model = run.model
    head = model.get_layer("layers_head")
    assert head.program_matrix().shape == (384 + 128 + 36, 37)
    again = runs.load_run(run.folder).model  # model.keras, read back in this process
    x = runs.load_data(cfg).x_test
    np.testing.assert_allclose(forward(again, x), forward(model, x), atol=1e-6)
    result = cam_v2s.main(["--run", run.folder, "--index", "3", "--out", str(tmp_path / "cam.png")])
    assert result["conv2d_1"].shape == (125, 80) and result["predicted"] == int(np.argmax(model(x[3:4])))


def test_settings_the_output_side_cannot_take_are_refused():
    for changes, words in (({"head": "attention", "map_type": "frequency"}, "drop --map-type"),
                           ({"head": "attention", "mode": "transfer"}, "--mode transfer has its own output layer"),
                           ({"map_type": "iterative", "refit": True}, "--refit is not supported"),
                           ({"head": "dense"}, "--head must be one of mapping, attention")):
        with pytest.raises(runs.UsageError, match=words):
            runs.RunConfig(source_weights="random", **changes).validated()
