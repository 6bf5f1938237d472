"""Reprogramming model: segment positions, label mappings, what trains in each mode, dropout, save/reload."""

import os

import numpy as np
import pytest

import keras

from ts_model import (LabelMapping, Reprogram, SegmentZeroPadding, build_source_model, build_v2s, frequency_mapping,
                      label_mapping_matrix, max_labels_per_class, random_mapping, segment_positions,
                      sequential_mapping)


@pytest.fixture(scope="module")
def source():
    return build_source_model("V2Sa", bn_momentum=0.99)


def test_segment_positions_are_equal_intervals_from_the_start():
    assert segment_positions(100, 4) == [0, 4000, 8000, 12000]
    assert segment_positions(1600, 10)[-1] == 14400
    with pytest.raises(ValueError, match="--seg 9 or fewer"):
        segment_positions(1700, 10)


def test_segment_padding_places_exact_copies():
    x = np.arange(1, 6, dtype="float32")[None, :]  # 1..5
    wave = np.asarray(SegmentZeroPadding(5, 3)(x))[0]
    assert wave.shape == (16000,)
    for start in (0, 5333, 10666):
        assert wave[start:start + 5].tolist() == [1, 2, 3, 4, 5]
    assert np.count_nonzero(wave) == 15
    assert SegmentZeroPadding(5, 3).mask().sum() == 15


def test_max_seg_lifts_the_cap_so_copies_fill_the_input_back_to_back():
    from engine import runs

    assert runs.segments_for(runs.RunConfig(), 150) == 10  # the default cap
    assert runs.segments_for(runs.RunConfig(max_seg=10000), 150) == 106 == 16000 // 150
    assert runs.segments_for(runs.RunConfig(max_seg=10000, seg=3), 150) == 3  # an explicit m wins
    assert runs.segments_for(runs.RunConfig(max_seg=10000), 9000) == 1
    x = np.random.default_rng(0).normal(size=(2, 150)).astype("float32")
    wave = np.asarray(SegmentZeroPadding(150, 106)(x))
    np.testing.assert_array_equal(wave[:, :15900], np.tile(x, 106))  # stride 16000 // 106 = 150: no gaps
    assert not wave[:, 15900:].any()


def test_mappings_are_disjoint_and_sized():
    assert max_labels_per_class(5) == 7 and max_labels_per_class(2) == 18
    seq = sequential_mapping(3, 2)
    assert seq.tolist() == [[0, 1], [2, 3], [4, 5]]
    rnd = random_mapping(5, 7, seed=1)
    assert rnd.shape == (5, 7) and len(set(rnd.ravel())) == 35
    assert np.array_equal(rnd, random_mapping(5, 7, seed=1))
    assert not np.array_equal(rnd, random_mapping(5, 7, seed=2))
    with pytest.raises(ValueError, match="--mapping 7 or fewer"):
        random_mapping(5, 8)


def test_mapping_matrix_averages_owned_labels():
    m = label_mapping_matrix([[0, 2], [1, 3]])
    assert m.shape == (36, 2)
    probs = np.zeros((1, 36), "float32")
    probs[0, [0, 2, 1]] = [0.4, 0.2, 0.4]
    np.testing.assert_allclose(probs @ m, [[0.3, 0.2]])
    out = np.asarray(LabelMapping([[0, 2], [1, 3]])(probs))
    np.testing.assert_allclose(out, [[0.6, 0.4]], rtol=1e-5)  # renormalised


def test_frequency_mapping_gives_each_class_the_labels_it_triggers():
    probs = np.full((6, 36), 0.001)
    probs[[0, 1, 2], 7] = 0.9  # class 0 series mostly predict label 7
    probs[[3, 4, 5], 20] = 0.9  # class 1 series predict label 20
    mapping = frequency_mapping(probs, np.array([0, 0, 0, 1, 1, 1]), 2, 3)
    assert mapping[0][0] == 7 and mapping[1][0] == 20
    assert len(set(mapping.ravel())) == 6


def test_reprogram_trains_delta_only_and_source_stays_bit_identical(source):
    model = build_v2s(50, 2, source=source, segments=4)
    before = [w.copy() for w in source.get_weights()]
    delta_before = model.get_layer("reprogram").get_weights()[0].copy()
    assert [w.name for w in model.trainable_weights] == ["delta"]
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((8, 50)).astype("float32"), rng.integers(0, 2, 8), epochs=1, verbose=0)
    for a, b in zip(before, source.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(delta_before, model.get_layer("reprogram").get_weights()[0])


def test_transfer_fine_tunes_the_source():
    source = build_source_model("V2Sa")
    model = build_v2s(50, 3, mode="transfer", source=source)
    before = [w.copy() for w in source.get_weights()]
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((8, 50)).astype("float32"), rng.integers(0, 3, 8), epochs=1, verbose=0)
    assert "reprogram" not in [l.name for l in model.layers]
    assert any(not np.array_equal(a, b) for a, b in zip(before, source.get_weights()))


def test_dropout_on_delta_only_in_training():
    layer = Reprogram(l2=0.0, dropout=0.5)
    x = np.zeros((2, 1000), "float32")
    infer1, infer2 = np.asarray(layer(x, training=False)), np.asarray(layer(x, training=False))
    np.testing.assert_array_equal(infer1, infer2)
    np.testing.assert_array_equal(infer1[0], np.asarray(layer.delta))
    train = np.asarray(layer(x, training=True))
    assert (train == 0).mean() > 0.3


def test_mask_keeps_delta_off_the_series():
    pad = SegmentZeroPadding(10, 2)
    layer = Reprogram(dropout=0.0, mask=1.0 - pad.mask())
    out = np.asarray(layer(np.zeros((1, 16000), "float32")))[0]
    assert (out[:10] == 0).all() and (out[8000:8010] == 0).all() and (out[10:20] != 0).any()


def test_the_models_mask_keeps_delta_outside_the_copies_only(source):
    """--per 1 as build_v2s wires it: the program is 0 on the three copies of the series and free elsewhere."""
    model = build_v2s(30, 4, source=source, segments=3, mapping=random_mapping(4, 9, seed=3), mask=True)
    delta = np.asarray(model.get_layer("reprogram").perturbation())
    on_copies = np.zeros(16000, bool)
    for start, stop in model.get_layer("encoding").spans():
        on_copies[start:stop] = True
    assert on_copies.sum() == 90 and (delta[on_copies] == 0).all() and (delta[~on_copies] != 0).mean() > 0.99


def test_saved_v2s_reloads_and_predicts_the_same(tmp_path, source):
    model = build_v2s(30, 4, source=source, segments=3, mapping=random_mapping(4, 9, seed=3), mask=True)
    x = np.random.default_rng(1).standard_normal((3, 30)).astype("float32")
    path = str(tmp_path / "v2s.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), atol=1e-6)
    assert again.get_layer("label_mapping").mapping == model.get_layer("label_mapping").mapping


def test_saved_v2s_loads_in_a_fresh_process(tmp_path, source):
    import subprocess
    import sys

    path = str(tmp_path / "fresh.keras")
    build_v2s(20, 2, source=source, segments=2).save(path)
    code = f"import keras, ts_model; m = keras.saving.load_model({path!r}); print(m.output.shape[-1])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("2")


def test_fcn_baseline_shapes():
    model = build_v2s(40, 5, mode="fcn")
    assert model.predict(np.zeros((2, 40), "float32"), verbose=0).shape == (2, 5)


def test_bad_mode_and_mismatched_mapping(source):
    with pytest.raises(ValueError, match="Unknown mode"):
        build_v2s(10, 2, mode="magic", source=source)
    with pytest.raises(ValueError, match="3 rows but the data has 2"):
        build_v2s(10, 2, source=source, mapping=sequential_mapping(3, 2))


def test_l2_penalty_is_l2_times_the_sum_of_squared_delta_and_absent_by_default():
    x = np.zeros((2, 16), "float32")
    penalised = Reprogram(l2=0.05)
    penalised(x)
    delta = penalised.get_weights()[0]
    np.testing.assert_allclose(float(sum(penalised.losses)), 0.05 * float(np.sum(delta ** 2)), rtol=1e-5)
    default = Reprogram()
    default(x)
    assert default.l2 == 0.0 and not default.losses
