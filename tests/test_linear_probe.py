"""LP, the frozen-feature control: the classifier, its choice of C on the validation split only, and LP as a
method of reproduce.py on a set with more classes than the 36 source labels."""

import numpy as np
import pytest

import reproduce
from conftest import make_toy_ucr
from engine.linear_probe import C_GRID, fit_probe


def blobs(n_per_class, classes, dims, separation, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dims)) * separation
    y = np.repeat(np.arange(classes), n_per_class)
    return centres[y] + rng.standard_normal((len(y), dims)), y


def test_separable_features_are_classified_and_noise_is_not():
    f, y = blobs(30, 3, 20, 3.0, seed=0)
    f_test, y_test = blobs(20, 3, 20, 3.0, seed=0)  # same centres (same seed), other draws below
    f_test = f_test + np.random.default_rng(1).standard_normal(f_test.shape) * 0.1
    good = fit_probe(f, y, f_test, y_test, 3, seed=0)
    assert good.test_accuracy > 0.95 and good.C in C_GRID and good.features == 20
    noise = fit_probe(np.random.default_rng(2).standard_normal(f.shape), y, f_test, y_test, 3, seed=0)
    assert noise.test_accuracy < 0.6 and noise.val_cross_entropy > good.val_cross_entropy


def test_c_is_chosen_on_the_validation_split_never_on_the_test_set():
    f, y = blobs(30, 3, 20, 0.7, seed=3)
    f_test, y_test = blobs(20, 3, 20, 0.7, seed=4)
    chosen = fit_probe(f, y, f_test, y_test, 3, seed=0)
    flipped = fit_probe(f, y, f_test, (y_test + 1) % 3, 3, seed=0)  # other test labels: same C, same validation
    assert (chosen.C, chosen.val_cross_entropy) == (flipped.C, flipped.val_cross_entropy)


def test_a_set_too_small_for_a_split_takes_the_default_c():
    f, y = blobs(1, 4, 5, 3.0, seed=0)  # one series per class: nothing to validate with
    result = fit_probe(f, y, f, y, 4, seed=0)
    assert result.val_accuracy is None and result.C == 1.0 and result.test_accuracy == 1.0


@pytest.mark.slow
def test_lp_runs_a_set_with_more_classes_than_source_labels(tmp_path):
    from test_reproduce import many_class_ucr

    data = make_toy_ucr(tmp_path / "ucr")
    many_class_ucr(data, classes=37)
    records = reproduce.main(["--data-dir", data, "--datasets", "Many", "Toy", "--methods", "LP", "--source-weights",
                              "random", "--store", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "t")])
    by_set = {r["dataset"]: r for r in records}
    assert "failed" not in by_set["Many"] and by_set["Many"]["classes"] == 37
    assert by_set["Many"]["test_accuracy"] > 3 / 37 and by_set["Toy"]["test_accuracy"] > 2 / 3
    assert by_set["Many"]["C"] in C_GRID and "| Many | 37 |" in open(tmp_path / "t.md").read()


@pytest.mark.parametrize("classes", [2, 4])
def test_a_fitted_head_gives_the_classifiers_probabilities(classes):
    """The head's kernel and bias reproduce the fitted pipeline (its standardisation folded in); a class the fit
    split never saw is never predicted."""
    from engine.logistic import classifier, fit_linear_head, probabilities

    f, y = blobs(12, classes, 6, 2.0, seed=1)
    f = f * np.arange(1, 7) + 10.0  # features of other scales and offsets than the standardised ones
    kernel, bias, C = fit_linear_head(f, y, classes + 1, seed=0)
    logits = f @ kernel + bias
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = probabilities(classifier(C, 0).fit(f, y), f, classes + 1)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert kernel.shape == (6, classes + 1) and probs[:, classes].max() < 1e-9
