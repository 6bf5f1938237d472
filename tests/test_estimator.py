"""V2SClassifier, the scikit-learn face of V2S: fit / predict / score on numpy arrays, clone, cross-validation,
pickling, and errors that name the argument."""

import pickle

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from engine.estimator import V2SClassifier

pytestmark = pytest.mark.slow


def shapes(n_per_class, seed, length=40):
    """Sine, square and ramp series with noise, labelled with strings."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    forms = [np.sin(2 * np.pi * 3 * t), np.sign(np.sin(2 * np.pi * 2 * t)), 2 * t - 1]
    X = np.stack([forms[c] + 0.1 * rng.standard_normal(length) for c in range(3) for _ in range(n_per_class)])
    return X, np.repeat(np.array(["sine", "square", "ramp"]), n_per_class)


@pytest.fixture(scope="module")
def fitted():
    X, y = shapes(6, seed=0)
    return V2SClassifier(epochs=2, ensemble=1).fit(X, y), shapes(4, seed=1)


def test_fit_predict_score_on_arrays(fitted):
    clf, (X_test, y_test) = fitted
    assert list(clf.classes_) == ["ramp", "sine", "square"] and clf.n_features_in_ == 40
    probs = clf.predict_proba(X_test)
    assert probs.shape == (12, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    predicted = clf.predict(X_test)
    assert predicted.dtype.kind == "U" and list(predicted) == list(clf.classes_[probs.argmax(axis=1)])
    assert clf.score(X_test, y_test) == pytest.approx(np.mean(predicted == y_test))
    assert clf.score(X_test, y_test) > 0.9  # three easy shapes: the frozen features alone separate them
    assert clf.summary_["epochs_run"] == 2 and clf.summary_["test_accuracy"] is None  # nothing else held out


def test_a_fitted_estimator_pickles_with_its_model(fitted):
    clf, (X_test, _) = fitted
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(X_test), clf.predict_proba(X_test), atol=1e-6)


def test_clone_and_cross_validation():
    X, y = shapes(6, seed=2)
    clf = V2SClassifier(epochs=2, ensemble=1, random_state=3)
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "model_")
    centre = FunctionTransformer(lambda series: series - series.mean(axis=1, keepdims=True))
    scores = cross_val_score(make_pipeline(centre, clf), X, y, cv=2)  # in a Pipeline, cloned per fold
    assert scores.shape == (2,) and (scores > 0.5).all()


@pytest.mark.heavy
def test_series_of_unequal_length_are_padded_as_the_loader_pads_them():
    X, y = shapes(6, seed=4)
    ragged = [x[:30 + i % 10] for i, x in enumerate(X)]
    clf = V2SClassifier(epochs=1, ensemble=1).fit(ragged, y)
    assert clf.n_features_in_ == 39 and clf.predict([x[:39] for x in X]).shape == (18,)


def test_multivariate_series_are_played_as_tones_of_their_channels(tmp_path, capsys):
    import cam_v2s
    from conftest import cli_error

    X, y = shapes(6, seed=6)
    X3 = np.stack([X, X[:, ::-1], -X], axis=1)  # (18, 3, 40): three channels
    clf = V2SClassifier(epochs=1, ensemble=1, layout="split", out=str(tmp_path / "run")).fit(X3, y)
    assert (clf.n_channels_, clf.n_features_in_) == (3, 40) and clf.predict(X3).shape == (18,)
    assert clf.summary_["config"]["layout"] == "split"
    with pytest.raises(ValueError, match="X has 1 channel\\(s\\), but V2SClassifier was fitted on 3"):
        clf.predict(X)
    with pytest.raises(ValueError, match="X has 30 features, but V2SClassifier is expecting 40 features as input"):
        clf.predict(X3[..., :30])
    line = cli_error(capsys, cam_v2s.main, ["--run", str(tmp_path / "run"), "--out", str(tmp_path / "c.png")])
    assert "is multivariate (3 channels): CAM folds its maps back onto one series" in line


def test_bad_input_names_the_argument():
    X, y = shapes(3, seed=5)
    clf = V2SClassifier(epochs=1, ensemble=1)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    bad = X.copy()
    bad[2, 7] = np.nan
    cases = ((bad, y, r"X\[2, 7\] is NaN"), (X, y[:-1], "y must hold one label per series of X \\(9\\)"),
             (X[:, None, None, :], y, "must have shape \\(n, length\\) or \\(n, channels, length\\)"),
             (X, np.zeros(9), "y holds one class"), (X * 1e39, y, "within float32's range"),
             ([X[0], X[1][:20], np.stack([X[2]] * 2)], y[:3], "must all be 1-D, or all \\(channels, length\\)"),
             (X[0], y, "Reshape your data with X.reshape\\(1, -1\\)"), (X[:, :0], y, "X has 0 feature\\(s\\)"),
             (X + 1j, y, "Complex data not supported"), (X, None, "requires y to be passed"),
             (X, np.linspace(0, 1, 9), "Unknown label type"))
    for features, labels, message in cases:
        with pytest.raises(ValueError, match=message):
            clf.fit(features, labels)
    with pytest.raises(TypeError, match="X must hold numbers.*argument must be"):
        clf.fit(np.array([[1.0, {"a": 1}]] * 9, dtype=object), y)
    with pytest.raises(TypeError, match="sparse input is not supported"):
        clf.fit(scipy.sparse.csr_matrix(X), y)
    with pytest.warns(DataConversionWarning), pytest.raises(ValueError, match="y holds one class"):
        clf.fit(X, np.zeros((9, 1)))  # a column of labels is read as one label per series
    with pytest.raises(ValueError, match="--lr must be a positive number"):
        V2SClassifier(lr=-1.0).fit(X, y)

