"""Ensembles of programs, the learned mapping, series scaling and the spectral training path."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from conftest import forward

from engine.training_graph import training_graph
from ts_model import (LabelMapping, ProgramAverage, ProgramGroups, Reprogram, SeriesScaling, StackPrograms,
                      build_source_model, build_v2s, program_source, random_mapping, sources_of)

LENGTH, CLASSES = 40, 3


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, LENGTH)).astype(np.float32), rng.integers(0, CLASSES, 6).astype(np.int32)


def mappings(k):
    return np.stack([random_mapping(CLASSES, 12, seed=s) for s in range(k)])


def test_one_program_is_the_single_program_model(source, series):
    x, _ = series
    keras.utils.set_random_seed(3)
    plain = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0])
    keras.utils.set_random_seed(3)
    one = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0], programs=1)
    assert [tuple(w.shape) for w in one.trainable_weights] == [(16000,)]
    np.testing.assert_array_equal(forward(plain, x), forward(one, x))


def test_an_ensemble_predicts_the_mean_of_its_programs(source, series):
    x, _ = series
    ensemble = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(3), programs=3)
    delta = np.asarray(ensemble.get_layer("reprogram").delta)
    assert delta.shape == (3, 16000) and not np.allclose(delta[0], delta[1])
    limit = np.sqrt(3 / 16000)  # each row drawn like a single program's delta
    assert np.abs(delta).max() <= limit and np.abs(delta).max() > 0.9 * limit
    singles = []
    for k in range(3):
        single = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(3)[k])
        single.get_layer("reprogram").delta.assign(delta[k])
        singles.append(forward(single, x))
    np.testing.assert_allclose(forward(ensemble, x), np.mean(singles, axis=0), atol=1e-6)


def test_programs_train_independently(source, series):
    """The gradient of one program's delta does not depend on another program's delta (nor on its outputs)."""
    x, y = series
    model = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(2), programs=2)
    trained = training_graph(model)
    delta = model.get_layer("reprogram").delta

    def gradient():
        with tf.GradientTape() as tape:
            probs = trained(x, training=True)  # (batch, K, C): each program scored on its own predictions
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(np.repeat(y[:, None], 2, 1), probs))
        return np.asarray(tape.gradient(loss, delta.value))

    before = gradient()
    delta.assign(np.asarray(delta) * np.array([[1.0], [-3.0]], np.float32))  # change program 1 only
    after = gradient()
    np.testing.assert_allclose(after[0], before[0], rtol=1e-4, atol=1e-9)
    assert not np.allclose(after[1], before[1])


def test_training_graph_matches_the_plain_model(source, series):
    """STFT by linearity and frozen BiLSTMs: the plain model's predictions and gradient of delta, to float rounding."""
    x, y = series
    for programs in (1, 2):
        model = build_v2s(LENGTH, CLASSES, source=source, segments=4, programs=programs,
                          mapping=mappings(2) if programs == 2 else mappings(1)[0])
        spectral = training_graph(model)
        plain = forward(model, x)
        fast = forward(spectral, x)
        np.testing.assert_allclose(fast.mean(axis=1) if programs == 2 else fast, plain, atol=1e-5)
        delta = model.get_layer("reprogram").delta
        grads = []
        for m in (model, spectral):
            with tf.GradientTape() as tape:
                probs = m(x, training=True)
                probs = tf.reduce_mean(probs, axis=1) if len(probs.shape) == 3 else probs
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
            grads.append(np.asarray(tape.gradient(loss, delta.value)))
        assert np.linalg.norm(grads[0] - grads[1]) <= 1e-4 * np.linalg.norm(grads[0])


def test_training_graph_keeps_keras_lstms_when_asked(source, series):
    """On a GPU the training graph keeps Keras' LSTM layers (their cuDNN path); outputs stay the model's."""
    x, _ = series
    model = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0])

    def kinds(graph):
        tail = graph.get_layer(f"{source.name}_after_mel")
        return {type(layer).__name__ for layer in tail.layers}

    assert "FrozenBiLSTM" in kinds(training_graph(model, lstm_loops=True))
    keras_lstms = training_graph(model, lstm_loops=False)
    assert "FrozenBiLSTM" not in kinds(keras_lstms) and "Bidirectional" in kinds(keras_lstms)
    np.testing.assert_allclose(forward(keras_lstms, x), forward(model, x), atol=1e-5)


def test_learned_mapping_starts_as_the_many_to_one_mapping(source, series):
    x, _ = series
    fixed = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0])
    learned = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0], readout="learned")
    learned.get_layer("reprogram").delta.assign(np.asarray(fixed.get_layer("reprogram").delta))
    np.testing.assert_allclose(forward(learned, x), forward(fixed, x), atol=1e-5)
    assert {tuple(w.shape) for w in learned.trainable_weights} == {(16000,), (36, CLASSES)}


def test_learned_mapping_trains_and_stays_a_distribution():
    layer = LabelMapping(random_mapping(CLASSES, 12, seed=0), learned=True)
    probs = tf.nn.softmax(tf.random.stateless_normal((8, 36), seed=(1, 2)))
    start = np.asarray(layer(probs))
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(tf.math.log(layer(probs)[:, 0]))
    grad = tape.gradient(loss, layer.log_matrix.value)
    layer.log_matrix.assign(layer.log_matrix - 50.0 * grad)  # a large step towards class 0
    out = np.asarray(layer(probs))
    assert (out > 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert (out[:, 0] > start[:, 0]).all()
    assert np.allclose(layer.program_matrix(), np.exp(np.asarray(layer.log_matrix)))


def test_series_scaling():
    x = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], np.float32)
    z = np.asarray(SeriesScaling(znorm=True)(x))
    np.testing.assert_allclose(z[0], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    assert (z[1] == 0).all()  # a constant series becomes zeros, not NaN
    gained = SeriesScaling(gain=True)
    gained(x)
    gained.scale.assign(2.5)
    np.testing.assert_allclose(np.asarray(gained(x)), 2.5 * x)
    # A dataset's units are divided out also when its center is exactly 0 (a series already centred).
    np.testing.assert_allclose(np.asarray(SeriesScaling(center=0.0, scale=4.0)(x)), x / 4.0)
    np.testing.assert_allclose(np.asarray(SeriesScaling(center=1.0, scale=1.0)(x)), x - 1.0)


def test_a_single_programs_iterative_mapping_reads_its_classes_through_the_assigned_mapping():
    # The iterative mapping's callback hands one program a (C, k) mapping; its matrix is then the new one.
    probs = np.eye(36, dtype=np.float32)[[0, 3, 4]]  # all of each row's probability on source label 0, 3 or 4
    layer = LabelMapping([[0, 1], [2, 3], [4, 5]], iterative=True)
    np.testing.assert_allclose(np.asarray(layer(probs)), np.eye(3, dtype=np.float32), atol=1e-6)
    layer.assign([[4, 1], [2, 3], [0, 5]])
    np.testing.assert_allclose(np.asarray(layer(probs)), np.eye(3, dtype=np.float32)[[2, 1, 0]], atol=1e-6)
    assert layer.current_mapping() == [[1, 4], [2, 3], [0, 5]]  # read back from the matrix: sorted


def test_standardise_removes_the_units_and_offset_of_a_dataset(source, series, tmp_path):
    from engine import runs
    from ts_model import dataset_standardisation

    x, _ = series
    raw = 1000.0 * x + 5000.0  # the same series in other units, with an offset
    center, scale = dataset_standardisation(raw)
    assert center == pytest.approx(1000.0 * x.mean() + 5000.0) and scale == pytest.approx(1000.0 * x.std(), rel=1e-5)
    keras.utils.set_random_seed(4)
    plain = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0],
                      standardise=dataset_standardisation(x))
    keras.utils.set_random_seed(4)
    scaled = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0],
                       standardise=(center, scale))
    np.testing.assert_allclose(forward(scaled, raw), forward(plain, x), atol=1e-5)
    # A run reads its standardisation from the fit split only.
    from conftest import make_toy_ucr

    cfg = runs.RunConfig(dataset="toy", data_dir=make_toy_ucr(tmp_path), source_weights="random", standardise=True,
                         ensemble=1).validated()
    data = runs.load_data(cfg)
    x_fit, y_fit, x_val, _, _ = runs.split_data(data, cfg)
    layer = runs.build_model(cfg, data, x_fit, y_fit)[0].get_layer("series_scaling")
    assert (layer.center, layer.scale_by) == dataset_standardisation(x_fit) != dataset_standardisation(data.x_train)


@pytest.mark.parametrize("layer, inputs", [
    (Reprogram(programs=3, dropout=0.1, name="r"), np.zeros((2, 50), np.float32)),
    (LabelMapping(np.stack([random_mapping(2, 3, seed=s) for s in range(2)]), learned=True, name="m"),
     np.full((4, 36), 1 / 36, np.float32)),
    (ProgramAverage(name="a"), np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)),
    (SeriesScaling(znorm=True, gain=True, center=3.0, scale=2.0, name="s"),
     np.random.default_rng(0).random((2, 9)).astype(np.float32)),
    (ProgramGroups(3, name="g"), np.arange(12, dtype=np.float32).reshape(6, 2)),
])
def test_new_layers_survive_a_keras_round_trip(tmp_path, layer, inputs):
    inp = keras.Input(inputs.shape[1:])
    model = keras.Model(inp, layer(inp))
    for w in model.weights:
        w.assign(np.random.default_rng(1).random(w.shape).astype(np.float32))
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(model(inputs)), rtol=1e-6)
    assert again.layers[1].get_config() == model.layers[1].get_config()


def test_ensemble_model_round_trip(tmp_path, source, series):
    x, _ = series
    model = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(2), programs=2,
                      readout="learned", znorm=True, gain=True)
    model.save(str(tmp_path / "e.keras"))
    again = keras.saving.load_model(str(tmp_path / "e.keras"))
    np.testing.assert_allclose(forward(again, x), forward(model, x), atol=1e-7)


def test_frozen_bilstm_refuses_a_sequence_of_unknown_length_saying_why():
    from engine.frozen_lstm import frozen_bilstm

    weights = (np.zeros((4, 8)), np.zeros((2, 8)), np.zeros(8))
    with pytest.raises(ValueError, match="^frozen_bilstm needs a static number of time steps; got a sequence of "
                                         "unknown length$"):
        frozen_bilstm(keras.Input((None, 4)), weights, weights)


@pytest.mark.parametrize("threads", [1, 2])  # one loop for both directions, or one loop each
def test_frozen_bilstm_is_the_keras_layer_for_outputs_and_input_gradients(tmp_path, monkeypatch, threads):
    from engine.training_graph import FrozenBiLSTM

    monkeypatch.setattr(tf.config.threading, "get_inter_op_parallelism_threads", lambda: threads)
    inp = keras.Input((30, 8))
    wrapped = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True))
    keras.Model(inp, wrapped(inp))
    rng = np.random.default_rng(0)
    for w in wrapped.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.5)
    frozen = FrozenBiLSTM(wrapped)
    x = tf.constant(rng.standard_normal((3, 30, 8)).astype(np.float32))
    probe = tf.constant(rng.standard_normal((3, 30, 12)).astype(np.float32))
    np.testing.assert_allclose(np.asarray(frozen(x)), np.asarray(wrapped(x)), atol=1e-5)
    grads = []
    for layer in (wrapped, frozen):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * probe)
        grads.append(np.asarray(tape.gradient(loss, x)))
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-5, rtol=1e-4)
    inp = keras.Input((30, 8))
    model = keras.Model(inp, frozen(inp))
    model.save(str(tmp_path / "f.keras"))
    again = keras.saving.load_model(str(tmp_path / "f.keras"))
    np.testing.assert_allclose(forward(again, x), np.asarray(frozen(x)), atol=1e-6)
    with pytest.raises(ValueError, match="needs a default Bidirectional"):
        FrozenBiLSTM(keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True, activation="relu")))


def test_folded_batch_norm_conv_is_the_two_layers_including_the_edges(tmp_path):
    from engine.training_graph import FoldedBatchNormConv

    source = build_source_model("V2Sa")
    bn, conv = source.get_layer("bn_1"), source.get_layer("conv2d_2")
    rng = np.random.default_rng(0)
    for w in bn.weights + conv.weights:  # statistics and weights far from the identity, so the fold is exercised
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.5 + (1.0 if "variance" in w.path else 0.0))
    y = tf.constant(np.abs(rng.standard_normal((2, 125, 80, 10))).astype(np.float32))
    folded = FoldedBatchNormConv(bn, conv)
    plain = np.asarray(conv(bn(y, training=False)))
    np.testing.assert_allclose(np.asarray(folded(y)), plain, atol=1e-5 * np.abs(plain).max())
    inp = keras.Input((125, 80, 10))
    model = keras.Model(inp, folded(inp))
    model.save(str(tmp_path / "f.keras"))
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(str(tmp_path / "f.keras"))(y)),
                               np.asarray(folded(y)), atol=1e-6)


@pytest.fixture(scope="module")
def three_sources():
    """Three differently initialised sources, one with the GSC v2 front end (natural-log mel)."""
    keras.utils.set_random_seed(5)
    return [build_source_model("V2Sa"), build_source_model("V2Sa", front_end="gscv2_logmel"),
            build_source_model("V2Sa")]


@pytest.mark.heavy
def test_programs_spread_over_sources_are_each_the_single_source_program(three_sources, series):
    x, y = series
    model = build_v2s(LENGTH, CLASSES, source=three_sources, segments=4, mapping=mappings(6), programs=6)
    assert [s.name for s in sources_of(model)] == ["V2Sa_source0", "V2Sa_source1", "V2Sa_source2"]
    delta = np.asarray(model.get_layer("reprogram").delta)
    per_program = forward(training_graph(model), x)  # (batch, 6, C), the fast path
    for k in range(6):
        assert program_source(model, k) is three_sources[k // 2]  # two consecutive programs per source
        single = build_v2s(LENGTH, CLASSES, source=three_sources[k // 2], segments=4, mapping=mappings(6)[k])
        single.get_layer("reprogram").delta.assign(delta[k])
        np.testing.assert_allclose(per_program[:, k], forward(single, x), atol=1e-6)
    np.testing.assert_allclose(forward(model, x), per_program.mean(axis=1), atol=1e-6)


def test_programs_over_sources_train_independently(three_sources, series):
    x, y = series
    model = build_v2s(LENGTH, CLASSES, source=three_sources, segments=4, mapping=mappings(3), programs=3)
    trained, delta = training_graph(model), model.get_layer("reprogram").delta

    def gradient():
        with tf.GradientTape() as tape:
            probs = trained(x, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(np.repeat(y[:, None], 3, 1), probs))
        return np.asarray(tape.gradient(loss, delta.value))

    before = gradient()
    delta.assign(np.asarray(delta) * np.array([[1.0], [1.0], [-3.0]], np.float32))  # program 2 (source 2) only
    after = gradient()
    np.testing.assert_allclose(after[:2], before[:2], rtol=1e-4, atol=1e-9)
    assert not np.allclose(after[2], before[2])


def test_a_model_over_several_sources_round_trips(tmp_path, three_sources, series):
    x, _ = series
    model = build_v2s(LENGTH, CLASSES, source=three_sources, segments=4, mapping=mappings(3), programs=3)
    model.save(str(tmp_path / "s.keras"))
    again = keras.saving.load_model(str(tmp_path / "s.keras"))
    np.testing.assert_allclose(forward(again, x), forward(model, x), atol=1e-7)
    assert program_source(again, 2).name == "V2Sa_source2"


def test_sources_need_a_multiple_of_programs_and_distinct_models(three_sources):
    with pytest.raises(ValueError, match="multiple of 3"):
        build_v2s(LENGTH, CLASSES, source=three_sources, segments=4, mapping=mappings(2), programs=2)
    with pytest.raises(ValueError, match="a model of its own"):
        build_v2s(LENGTH, CLASSES, source=three_sources[:1] * 3, segments=4, mapping=mappings(3), programs=3)


def test_stack_programs_inverts_program_groups():
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    parts = ProgramGroups(3)(x)
    assert [p.shape for p in parts] == [(4, 2)] * 3
    np.testing.assert_array_equal(np.asarray(StackPrograms()(parts)), x)


def test_training_graph_of_a_convolutional_source_matches_the_plain_model(series):
    """V2Sr has no attention-RNN layers to replace: its training graph keeps its tail and still equals the model."""
    x, _ = series
    keras.utils.set_random_seed(0)
    model = build_v2s(LENGTH, CLASSES, source=build_source_model("V2Sr"), segments=4, mapping=mappings(1)[0])
    np.testing.assert_allclose(forward(training_graph(model), x), forward(model, x), atol=1e-5)


def test_dropout_on_delta_reaches_the_training_graph(source, series):
    """--dr: in training the graph drops a share of delta (their gradient is exactly 0, one mask per program for
    the whole batch); in inference nothing is dropped and the graph gives the model's outputs."""
    x, y = series
    model = build_v2s(LENGTH, CLASSES, source=source, segments=4, mapping=mappings(1)[0], dropout=0.5)
    fast = training_graph(model)
    np.testing.assert_allclose(forward(fast, x), forward(model, x), atol=1e-5)
    delta = model.get_layer("reprogram").delta
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, fast(x, training=True)))
    grad = np.asarray(tape.gradient(loss, delta.value))
    assert 0.4 < np.mean(grad == 0) < 0.6
