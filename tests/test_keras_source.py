"""A user's saved Keras waveform model as the frozen source (--source-model): the wrapping, the run, the refusals."""

import json
import os

import keras
import numpy as np
import pytest
from keras import layers as L

import v2s_main
from conftest import cli_error, make_toy_ucr, tone


@keras.saving.register_keras_serializable(package="V2STest")
class RatedFrames(L.Layer):
    """A framing layer that states the rate it was built for, as audio front ends do (kapre's, torchaudio's)."""

    def __init__(self, sample_rate=22050, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = sample_rate

    def call(self, x):
        return ops_frames(x)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate}


def ops_frames(x):
    return keras.ops.reshape(x[:, :16000], (-1, 100, 160))


def save(model, folder, name):
    path = os.path.join(str(folder), name)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small keyword classifier (one second at 16 kHz, softmax outputs) and a 3-second 22.05 kHz embedding model
    taking (batch, samples, 1) with a sequence layer, saved as a user would."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    i = keras.Input((16000,))
    x = L.Reshape((16000, 1))(i)
    x = L.Conv1D(8, 400, strides=160, activation="relu", name="frames")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    x = L.Dense(12, activation="relu", name="embed")(x)
    classifier = keras.Model(i, L.Dense(5, activation="softmax", name="classes")(x), name="kws")
    i = keras.Input((66150, 1))
    x = L.Conv1D(4, 512, strides=256, activation="relu", name="seq")(i)
    embedder = keras.Model(i, L.Dense(6, name="embedding")(L.GlobalMaxPooling1D(name="pool")(x)), name="emb")
    a, b = keras.Input((100,)), keras.Input((100,))
    i = keras.Input((8000,))
    i2 = keras.Input((16000,))
    return {"classifier": save(classifier, folder, "kws.keras"), "embedder": save(embedder, folder, "emb.keras"),
            "two_inputs": save(keras.Model([a, b], L.Add()([a, b])), folder, "two.keras"),
            "half_second": save(keras.Model(i, L.Dense(3, activation="softmax")(i)), folder, "half.keras"),
            "rated": save(keras.Model(i2, L.GlobalAveragePooling1D()(RatedFrames(name="frames")(i2))), folder,
                          "rated.keras"),
            "folder": str(folder)}


def test_resampling_keeps_a_tone_at_its_frequency_and_amplitude():
    from speech.keras_source import Resample

    wave = tone(1000.0, amp=0.5)[None]
    up = np.asarray(Resample(22050)(wave))[0]
    assert up.shape == (22050,)
    spectrum = np.abs(np.fft.rfft(up))
    assert np.argmax(spectrum) == 1000  # one second: bin k is k Hz at any rate
    assert abs(np.max(np.abs(up)) - 0.5) < 0.01
    back = np.asarray(Resample(16000)(up[None]))[0]
    np.testing.assert_allclose(back, wave[0], atol=1e-4)


def test_fill_length_repeats_the_second():
    from speech.keras_source import FillLength

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(np.asarray(FillLength(7)(x)), [[0, 1, 2, 0, 1, 2, 0], [3, 4, 5, 3, 4, 5, 3]])


def test_the_head_reads_the_layer_before_the_class_outputs_or_the_output_of_an_embedding_model(models):
    from speech.keras_source import default_layer, has_class_outputs, load_waveform_model

    classifier, embedder = (load_waveform_model(models[k]) for k in ("classifier", "embedder"))
    assert has_class_outputs(classifier) and not has_class_outputs(embedder)
    assert default_layer(classifier) == "embed" and default_layer(embedder) == "embedding"
    i = keras.Input((16000,))
    logits = L.Dense(3, name="logits")(i)
    assert default_layer(keras.Model(i, L.Softmax(name="probs")(logits))) == "logits"


def test_the_wrapped_source_gives_the_models_own_features(models):
    from speech.keras_source import keras_source, load_waveform_model

    waves = np.random.default_rng(0).standard_normal((3, 16000)).astype(np.float32) * 0.1
    source = keras_source(models["classifier"])
    user = load_waveform_model(models["classifier"])
    expected = keras.Model(user.inputs, user.get_layer("embed").output)(waves)
    np.testing.assert_allclose(np.asarray(source(waves)), np.asarray(expected), atol=1e-6)
    assert not source.trainable_weights
    # 22.05 kHz, 3 s: the second is resampled, repeated three times and cut to 66,150 samples; a sequence is pooled.
    source = keras_source(models["embedder"], rate=22050, layer="seq")
    user = load_waveform_model(models["embedder"])
    from speech.keras_source import FillLength, Resample

    heard = np.asarray(FillLength(66150)(Resample(22050)(waves)))[..., None]
    seq = np.asarray(keras.Model(user.inputs, user.get_layer("seq").output)(heard))
    pooled = np.concatenate([seq.mean(1), seq.std(1), seq.max(1)], axis=1)
    np.testing.assert_allclose(np.asarray(source(waves)), pooled, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case, flags, message", [
    ("two_inputs", [], "takes inputs of shape (None, 100), (None, 100); a source takes one waveform"),
    ("half_second", [], "takes 8000 samples, 0.50 s at --source-rate 16000; V2S plays a series as one second"),
    ("classifier", ["--source-layer", "nope"], "--source-layer 'nope': {path} has no such layer; its layers: "),
    ("rated", [], "--source-rate 16000: layer 'frames' of {path} is set for 22050 Hz; pass --source-rate 22050"),
    ("classifier", ["--source-rate", "100"], "--source-rate must be a sampling rate in Hz from 4000 to 96000"),
    ("classifier", ["--mode", "transfer"], "is reprogrammed frozen: it needs --mode reprogram"),
    ("classifier", ["--head", "layers"], "--head layers reads a layer of V2S's own sources"),
    ("classifier", ["--map-type", "frequency"], "is read by a linear head (--head features); drop --map-type"),
    ("classifier", ["--arch", "V2Su"], "--arch V2Su names a built-in source"),
    ("classifier", ["--source-weights", "random"], "--source-weights loads a built-in source"),
    ("missing", [], "--source-model {path}: no such file"),
    ("not_keras", [], "--source-model {path} is not a .keras model file"),
    (None, ["--source-layer", "embed"], "--source-layer and --source-rate describe a --source-model"),
    (None, ["--head", "features"], "--head features reads a layer of a user's model"),
])
def test_bad_source_models_and_flags_are_refused_in_one_line(models, tmp_path, capsys, case, flags, message):
    ucr = make_toy_ucr(tmp_path / "ucr")
    paths = {**models, "missing": str(tmp_path / "none.keras"), "not_keras": str(tmp_path / "junk.keras")}
    (tmp_path / "junk.keras").write_text("not a zip")
    argv = ["--dataset", "toy", "--data-dir", ucr, "--out", str(tmp_path / "run"), "--verbose", "0", "--eps", "1"]
    argv += (["--source-model", paths[case]] if case else []) + flags
    line = cli_error(capsys, v2s_main.main, argv)
    assert line.startswith("v2s_main.py: error: ") and message.format(path=paths.get(case)) in line
    assert not os.path.exists(tmp_path / "run" / "ckpt")


def test_a_run_on_a_users_model_trains_the_program_and_head_and_reloads(models, tmp_path):
    """The Done-when command on a toy dataset: the program and the features head train, the user's weights stay,
    the folder and summary name the model, model.keras reloads to the same predictions, a rerun finds the run."""
    import dataclasses

    from engine.runs import RunConfig, folder_for, load_data, load_run, train
    from speech.keras_source import load_waveform_model

    ucr = make_toy_ucr(tmp_path / "ucr")
    config = RunConfig(dataset="toy", data_dir=ucr, source_model=models["classifier"], epochs=3, ensemble=2,
                       batch_size=8, verbose=0).validated()
    assert config.head == "features" and config.encoding == "fm" and config.arch == "keras_source"
    data = load_data(config)
    assert os.path.basename(folder_for(config, data.name)) == "Toy_reprogram_kws_s0_ensemble-2_batch_size-8"
    config = dataclasses.replace(config, out=str(tmp_path / "run"))
    run = train(data, config)
    with open(os.path.join(run.folder, "summary.json")) as fh:
        saved = json.load(fh)["config"]
    assert saved["source_model"] == models["classifier"] and saved["arch"] == "keras_source"
    user = load_waveform_model(models["classifier"])
    trained = run.model.get_layer("keras_source")
    np.testing.assert_array_equal(trained.get_layer("kws_to_embed").get_weights()[0], user.get_weights()[0])
    again = load_run(run.folder)
    np.testing.assert_allclose(again.model.predict(data.x_test, verbose=0), run.model.predict(data.x_test, verbose=0),
                               atol=1e-6)
    assert train(data, config).summary == run.summary  # the finished run is found, not trained again


def test_the_training_graph_of_a_users_source_gives_each_programs_probabilities(models):
    from engine.training_graph import training_graph
    from speech.keras_source import keras_source
    from ts_model import build_v2s

    model = build_v2s(40, 3, source=keras_source(models["classifier"]), readout="features", encoding="fm",
                      programs=2)
    model.get_layer("reprogram").delta.assign(np.random.default_rng(1).standard_normal((2, 16000)) * 0.05)
    x = np.random.default_rng(0).standard_normal((4, 40)).astype(np.float32)
    per_program = np.asarray(training_graph(model)(x))
    assert per_program.shape == (4, 2, 3)
    assert not np.allclose(per_program[:, 0], per_program[:, 1])
    np.testing.assert_allclose(per_program.mean(axis=1), np.asarray(model(x)), atol=1e-6)


def test_the_scikit_learn_classifier_takes_a_users_model(models, tmp_path):
    from engine.estimator import V2SClassifier

    rng = np.random.default_rng(0)
    X = np.concatenate([np.sin(np.linspace(0, 6, 30))[None] + 0.1 * rng.standard_normal((8, 30)),
                        np.cos(np.linspace(0, 6, 30))[None] + 0.1 * rng.standard_normal((8, 30))]).astype(np.float32)
    y = np.array(["a"] * 8 + ["b"] * 8)
    clf = V2SClassifier(source_model=models["classifier"], epochs=1, ensemble=1, out=str(tmp_path / "clf")).fit(X, y)
    assert clf.get_params()["source_model"] == models["classifier"]
    assert set(clf.predict(X)) <= {"a", "b"} and clf.predict_proba(X).shape == (16, 2)
    with open(os.path.join(str(tmp_path / "clf"), "summary.json")) as fh:
        assert json.load(fh)["config"]["arch"] == "keras_source"
