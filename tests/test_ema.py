"""A moving average of the weights (--ema): evaluated and kept instead of the trained weights, resumed exactly."""

import os

import keras
import numpy as np
import pytest

from engine import runs
from engine.training import averaged_weights, cross_entropy, ema_momentum, fit
from utils import ResumableCheckpoint, read_json


def test_the_momentum_fixes_the_window_in_epochs_not_steps():
    assert ema_momentum(3, 2) == pytest.approx(1 - 1 / 6)
    assert ema_momentum(3, 90) == pytest.approx(1 - 1 / 270)
    assert ema_momentum(0.5, 2) == 0.0 and ema_momentum(0, 50) == 0.0


def _tiny(momentum):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=momentum),
                  loss="sparse_categorical_crossentropy")
    return model


def test_validation_and_the_best_weights_see_the_average_while_training_goes_on_from_the_trained_weights(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 4)).astype(np.float32), (rng.random(24) > 0.5).astype(np.int32)
    model = _tiny(0.9)
    checkpoint = ResumableCheckpoint(str(tmp_path), monitor="val_ce")
    fit(model, x, y, checkpoint, epochs=1, batch_size=4, seed=0, validation=(x, y))
    trained = [np.array(w) for w in model.trainable_weights]
    average = [np.array(v) for v in model.optimizer._model_variables_moving_average]
    assert not np.allclose(trained[0], average[0])  # six steps at momentum 0.9: the two differ
    with averaged_weights(model):
        assert all(np.array_equal(np.array(w), a) for w, a in zip(model.trainable_weights, average))
        probs = model.predict(x, verbose=0)
    assert all(np.array_equal(np.array(w), t) for w, t in zip(model.trainable_weights, trained))  # put back
    history = read_json(os.path.join(tmp_path, "state.json"))["history"]
    assert history["val_ce"][0] == pytest.approx(cross_entropy(probs, y), abs=1e-6)
    checkpoint.restore_best()
    assert all(np.array_equal(np.array(w), a) for w, a in zip(model.trainable_weights, average))


def test_without_an_average_nothing_is_swapped():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    before = [np.array(w) for w in model.trainable_weights]
    with averaged_weights(model):
        assert all(np.array_equal(np.array(w), b) for w, b in zip(model.trainable_weights, before))


@pytest.mark.heavy
@pytest.mark.slow
def test_an_averaged_run_differs_from_a_plain_one_only_in_what_is_evaluated(tmp_path, tiny_ucr, capsys):
    # Its exact resumption is checked with the other stateful options in tests/test_runs.py (several sources).
    def train(out, **changes):
        cfg = runs.RunConfig(dataset="toy", data_dir=tiny_ucr, out=str(tmp_path / out), source_weights="random",
                             verbose=0, batch_size=4, ensemble=2, **changes)
        return runs.train(runs.load_data(cfg), cfg).summary

    train("averaged", epochs=3, ema=2)
    assert "weights averaged over about 2 epochs" in capsys.readouterr().out
    a = read_json(tmp_path / "averaged" / "ckpt" / "state.json")["history"]
    train("plain", epochs=3)  # the same batches and training, other weights evaluated
    p = read_json(tmp_path / "plain" / "ckpt" / "state.json")["history"]
    assert p["loss"] == a["loss"] and p["val_ce"][1:] != a["val_ce"][1:]
