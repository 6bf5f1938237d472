"""Source models: shapes, named layers, parameter counts, weight round trips and mismatched weights."""

import numpy as np
import pytest

import keras

from speech.source_model import (NAMED_LAYERS, SpecAugment, UtteranceNormalization, build_source_model,
                          count_trainable, load_source_weights)


@pytest.fixture(scope="module")
def v2sa():
    return build_source_model("V2Sa")


def test_v2sa_output_is_a_distribution_over_36_classes(v2sa):
    x = np.random.default_rng(0).standard_normal((3, 16000)).astype("float32") * 0.1
    p = v2sa.predict(x, verbose=0)
    assert p.shape == (3, 36)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_named_layers_exist_with_expected_shapes(v2sa):
    for name in NAMED_LAYERS:
        v2sa.get_layer(name)
    assert tuple(v2sa.get_layer("mel_stft").output.shape) == (None, 125, 80, 1)
    assert tuple(v2sa.get_layer("attSoftmax").output.shape) == (None, 125)
    assert tuple(v2sa.get_layer("logits").output.shape) == (None, 36)


def test_parameter_counts_match_the_paper(v2sa):
    assert 150_000 < v2sa.count_params() < 250_000  # paper: about 0.2M
    v2su = build_source_model("V2Su")
    assert 250_000 < v2su.count_params() < 400_000  # paper: about 0.3M
    for layer in NAMED_LAYERS:
        v2su.get_layer(layer)


def test_mel_front_end_is_frozen_while_the_rest_trains():
    model = build_source_model("V2Sa")
    mel = model.get_layer("mel_stft")
    trainable = {id(w) for w in model.trainable_weights}
    assert not any(id(w) in trainable for w in mel.weights)
    x = np.random.default_rng(0).standard_normal((4, 16000)).astype("float32") * 0.1
    before_mel, before_conv = np.asarray(mel(x[:, :, None])), np.asarray(model.get_layer("conv2d_1").kernel)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, np.arange(4))
    np.testing.assert_array_equal(np.asarray(mel(x[:, :, None])), before_mel)
    assert not np.allclose(np.asarray(model.get_layer("conv2d_1").kernel), before_conv)  # the rest did train
    assert count_trainable(model) == sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="V2Sa"):
        build_source_model("ResNet")


def test_weights_round_trip_gives_identical_predictions(tmp_path, v2sa):
    path = str(tmp_path / "w.weights.h5")
    v2sa.save_weights(path)
    other = load_source_weights(build_source_model("V2Sa"), path)
    x = np.random.default_rng(1).standard_normal((2, 16000)).astype("float32") * 0.1
    np.testing.assert_array_equal(v2sa.predict(x, verbose=0), other.predict(x, verbose=0))


def test_whole_model_survives_keras_save_and_load(tmp_path):
    model = build_source_model("V2Sa", time_mask=5, freq_mask=5, seed=1)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(2).standard_normal((2, 16000)).astype("float32") * 0.1
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), atol=1e-6)
    assert again.get_layer("spec_augment").get_config()["time_mask"] == 5


def test_weights_of_another_architecture_give_a_clear_error(tmp_path):
    path = str(tmp_path / "v2su.weights.h5")
    build_source_model("V2Su").save_weights(path)
    with pytest.raises(ValueError) as err:
        load_source_weights(build_source_model("V2Sa"), path)
    message = str(err.value)
    assert "v2su.weights.h5 do not fit the V2Sa architecture" in message and "the file holds 58 arrays" in message
    assert "\n" not in message and "Example error message" not in message  # was cut after a dangling first line


def test_a_missing_audio_clip_is_named(tmp_path):
    from speech.commands import read_clip

    with pytest.raises(ValueError, match="Audio file .*nothing.wav not found"):  # was libsndfile's "System error"
        read_clip(str(tmp_path / "nothing.wav"))


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.weights.h5"):
        load_source_weights(build_source_model("V2Sa"), str(tmp_path / "nothing.weights.h5"))


def test_utterance_normalization_gives_zero_mean_unit_std():
    x = np.random.default_rng(3).normal(5.0, 3.0, (4, 10, 8, 1)).astype("float32")
    y = np.asarray(UtteranceNormalization()(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2, 3)), 1.0, atol=1e-3)


def test_spec_augment_masks_only_in_training():
    layer = SpecAugment(time_mask=20, freq_mask=20, seed=0)
    x = np.ones((8, 125, 80, 1), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    masked = np.asarray(layer(x, training=True))
    assert masked.min() == 0.0 and masked.mean() < 1.0


@pytest.mark.parametrize("arch, low, high", [("V2Sr", 700_000, 1_300_000), ("V2St", 700_000, 1_300_000)])
def test_convolutional_sources_have_about_a_million_parameters_and_the_shared_layers(arch, low, high):
    """V2Sr and V2St: the paper's Table 4 gives its ResNet and TCN sources about 1M parameters; they share the
    front end, the logits and the softmax with V2Sa, and end in a pooled vector instead of attention."""
    keras.utils.set_random_seed(0)
    model = build_source_model(arch)
    assert low < model.count_params() < high
    for name in ("mel_stft", "mel_norm", "logits", "output", "pooled"):
        model.get_layer(name)
    assert "attSoftmax" not in [layer.name for layer in model.layers]
    x = np.random.default_rng(0).standard_normal((2, 16000)).astype("float32") * 0.1
    p = np.asarray(model(x, training=False))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(p[0], p[1])  # the two clips are told apart


def test_convolutional_sources_survive_a_keras_round_trip(tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 16000)).astype("float32") * 0.1
    for arch in ("V2Sr", "V2St"):
        model = build_source_model(arch)
        path = str(tmp_path / f"{arch}.keras")
        model.save(path)
        again = keras.saving.load_model(path)
        np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
