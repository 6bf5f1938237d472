"""Training-time augmentation: what each transform does to a batch, and that validation data is never touched."""

import numpy as np
import pytest

from engine.augmentation import Augmentation, augmentation_rng
from engine.training import fit


def batch():
    return np.random.default_rng(0).normal(size=(64, 50)).astype(np.float32)


def test_zero_strengths_return_the_batch_unchanged():
    x = batch()
    assert not Augmentation().active
    np.testing.assert_array_equal(Augmentation()(x, augmentation_rng(0, 0)), x)


def test_scaling_multiplies_each_series_by_one_factor_near_one():
    x = batch()
    out = Augmentation(scaling=0.1)(x, augmentation_rng(0, 0))
    factors = out / x
    np.testing.assert_allclose(factors, factors[:, :1].repeat(50, axis=1), rtol=1e-5)
    assert abs(factors[:, 0].mean() - 1.0) < 0.05 and 0.07 < factors[:, 0].std() < 0.13
    assert factors[:, 0].std() > 0.01  # not the identity


def test_jitter_adds_noise_in_units_of_the_given_scale():
    x = batch()
    noise = Augmentation(jitter=0.03)(x, augmentation_rng(0, 0), scale=10.0) - x
    assert noise.std() == pytest.approx(0.3, rel=0.05) and abs(noise.mean()) < 0.01


def test_draws_are_fixed_by_seed_and_epoch():
    x, aug = batch(), Augmentation(jitter=0.1, scaling=0.1)
    np.testing.assert_array_equal(aug(x, augmentation_rng(3, 7)), aug(x, augmentation_rng(3, 7)))
    assert not np.allclose(aug(x, augmentation_rng(3, 7)), aug(x, augmentation_rng(3, 8)))


class _Recorder:
    """A stand-in for StepFunctions that records what the loop feeds it."""

    def __init__(self, classes):
        self.trained, self.scored, self.classes = [], [], classes

    def train_step(self, x, y):
        self.trained.append(np.array(x))
        probs = np.full((len(x), self.classes), 1.0 / self.classes, np.float32)
        return 0.0, 0.0, probs

    def predict(self, x):
        self.scored.append(np.array(x))
        return np.full((len(x), self.classes), 1.0 / self.classes, np.float32)

    def penalty(self):
        return 0.0


class _Checkpoint:
    def set_model(self, model):
        pass

    def record(self, epoch, logs):
        pass

    def finish_epoch(self, epoch):
        pass


class _Model:
    stop_training = False
    optimizer = None  # as a Keras model before compile
    trainable_weights = ()


def test_fit_augments_training_batches_only():
    x, y = batch(), np.arange(64) % 2
    xv = batch()[:10] + 5.0
    steps = _Recorder(2)
    fit(_Model(), x, y, _Checkpoint(), epochs=1, batch_size=64, seed=0, validation=(xv, y[:10]), steps=steps,
        augment=Augmentation(jitter=0.5))
    (trained,), (scored,) = steps.trained, steps.scored
    order = np.random.default_rng([0, 0]).permutation(64)
    assert not np.allclose(trained, x[order])  # the training batch was changed
    np.testing.assert_array_equal(scored, xv)  # the validation series were not


def test_scaling_draws_one_factor_per_multivariate_series():
    x = np.ones((4, 3, 20), np.float32)
    out = Augmentation(scaling=0.5)(x, np.random.default_rng(0))
    assert out.shape == x.shape and all(np.unique(series).size == 1 for series in out)  # one factor per series
    assert np.unique(out[:, 0, 0]).size == 4
