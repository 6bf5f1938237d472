"""V2S as a scikit-learn classifier: ``fit(X, y)`` on numpy arrays, ``predict``, ``predict_proba``, ``score``.

    from engine.estimator import V2SClassifier
    clf = V2SClassifier(epochs=50).fit(X_train, y_train)        # X: (n, length) floats, y: any labels
    clf.score(X_test, y_test)                                    # accuracy
    cross_val_score(V2SClassifier(epochs=2), X, y, cv=2)         # clone, get_params, set_params work

In:  ``X`` of shape (n, length), or (n, channels, length) for multivariate series (aeon's layout), or a list of
     series of unequal lengths, each (length_i,) or (channels, length_i) (zero-padded at the end to the longest, as
     the loaders pad a variable-length set), finite numbers within float32's range; ``y`` of n labels of any type
     (``classes_`` keeps them, sorted).
Out: a fitted estimator holding the trained Keras model (``model_``), the run's summary (``summary_``: the epoch
     chosen on the validation split, its scores) and ``classes_``.

The parameters keep ``engine.runs.RunConfig``'s names and defaults (``epochs``, ``ensemble``, ``head``, ``encoding``,
``lr``, ...; ``random_state`` is its ``seed``); ``fit`` is one ``engine.runs.train`` call on the arrays, under the
honest protocol: a stratified ``val_split`` of ``X`` picks the epoch, nothing else is held out. ``out`` keeps the
run folder there; by default it is written to a temporary folder and removed after ``fit``. A fitted estimator
pickles (``joblib.dump``) with its model. Errors name the argument, in scikit-learn's style.
"""

import contextlib
import io
import os
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

# The RunConfig settings an estimator exposes (its parameters), each with RunConfig's default.
PARAMETERS = ("epochs", "ensemble", "head", "head_fit", "encoding", "carrier", "deviation", "depth", "clip", "program",
              "layout", "lr", "batch_size", "patience", "val_split", "arch", "source_weights", "mode", "map_type", "seg", "dr",
              "l2", "znorm")


def _as_series(X, name="X"):
    """X as a float32 (n, length) or (n, channels, length) array and each series' length: an array, or a list of
    series of unequal lengths."""
    from ts_dataloader import FLOAT32_MAX

    if isinstance(X, (list, tuple)) and len(X) and len({np.shape(x)[-1] for x in X}) > 1:
        shapes = {np.shape(x)[:-1] for x in X}
        if len(shapes) > 1 or np.ndim(X[0]) not in (1, 2):
            raise ValueError(f"{name}: the series of a list must all be 1-D, or all (channels, length) with the same "
                             f"channels; got shapes {sorted(shapes)[:3]}")
        lengths = np.array([np.shape(x)[-1] for x in X])
        if lengths.min() == 0:
            raise ValueError(f"{name} holds an empty series (index {int(np.argmin(lengths))})")
        padded = np.zeros((len(X), *shapes.pop(), lengths.max()))
        for i, x in enumerate(X):
            padded[i, ..., :lengths[i]] = np.asarray(x, dtype=float)
        X = padded
    else:
        try:
            X = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numbers: an array of shape (n, length) or a list of 1-D series")\
                from None
        lengths = np.full(len(X), X.shape[-1]) if X.ndim >= 2 else None
    if X.ndim == 3 and X.shape[1] == 1:
        X = X[:, 0]  # one channel: a univariate series
    if X.ndim not in (2, 3) or 0 in X.shape:
        raise ValueError(f"{name} must have shape (n, length) or (n, channels, length), none of them 0, got shape "
                         f"{np.shape(X)}")
    bad = ~np.isfinite(X) | (np.abs(np.nan_to_num(X)) > FLOAT32_MAX)
    if bad.any():
        where = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{', '.join(map(str, where))}] is {float(X[where]):g}: V2S takes finite numbers "
                         "within float32's range")
    return X.astype(np.float32), lengths


class V2SClassifier(ClassifierMixin, BaseEstimator):
    """Voice2Series (Yang, Tsai, Chen, ICML 2021) with this project's defaults, as a scikit-learn classifier.

    A frozen speech-command model hears each series (by default as the pitch of a tone over one second) and a
    trained program plus a linear head read its classes (``engine.runs.RunConfig`` documents every parameter).
    """

    def __init__(self, epochs=100, ensemble=3, head=None, head_fit=None, encoding=None, carrier=None, deviation=None,
                 depth=None, clip=None, program="wave", layout="mix", lr=None, batch_size=32, patience=20,
                 val_split=0.2,
                 arch="V2Sa", source_weights=None, mode="reprogram", map_type=None, seg=0, dr=0.0, l2=0.0,
                 znorm=False, random_state=None, out=None, verbose=0):
        self.epochs, self.ensemble, self.head, self.head_fit = epochs, ensemble, head, head_fit
        self.encoding, self.carrier, self.deviation, self.depth, self.clip = encoding, carrier, deviation, depth, clip
        self.program, self.layout, self.lr, self.batch_size = program, layout, lr, batch_size
        self.patience, self.val_split = patience, val_split
        self.arch, self.source_weights, self.mode, self.map_type = arch, source_weights, mode, map_type
        self.seg, self.dr, self.l2, self.znorm = seg, dr, l2, znorm
        self.random_state, self.out, self.verbose = random_state, out, verbose

    def _config(self, out):
        from engine.runs import RunConfig

        if self.random_state is not None and not isinstance(self.random_state, (int, np.integer)):
            raise ValueError(f"random_state must be an int or None, got {self.random_state!r}")
        settings = {name: getattr(self, name) for name in PARAMETERS}
        return RunConfig(dataset="arrays", out=out, seed=int(self.random_state or 0), verbose=self.verbose,
                         **settings).validated()

    def fit(self, X, y):
        """Train on series ``X`` (n, length) and labels ``y`` (n,); returns ``self``."""
        from engine.runs import train
        from ts_dataloader import UCRData

        X, lengths = _as_series(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must hold one label per series of X ({len(X)}), got shape {y.shape}")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds a single class ({self.classes_[0]!r}); classification needs at least two")
        data = UCRData("arrays", X, codes, X[:0], codes[:0], np.array([str(c) for c in self.classes_]),
                       "numpy arrays", lengths, np.zeros(0, int))
        self.n_features_in_, self.n_channels_ = X.shape[-1], data.channels
        quiet = contextlib.redirect_stdout(io.StringIO()) if not self.verbose else contextlib.nullcontext()
        with tempfile.TemporaryDirectory(prefix="v2s_fit_") as tmp, quiet:
            folder = self.out or os.path.join(tmp, "run")
            run = train(data, self._config(folder), command="V2SClassifier.fit")
            self.model_, self.summary_ = run.model, run.summary
        return self

    def _check_fitted_input(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        X, _ = _as_series(X)
        channels = 1 if X.ndim == 2 else X.shape[1]
        if (X.shape[-1], channels) != (self.n_features_in_, self.n_channels_):
            raise ValueError(f"X has series of length {X.shape[-1]} and {channels} channel(s), the estimator was "
                             f"fitted on length {self.n_features_in_} and {self.n_channels_} channel(s)")
        return X

    def predict_proba(self, X):
        """Class probabilities (n, len(classes_)), columns in the order of ``classes_``."""
        X = self._check_fitted_input(X)
        return np.asarray(self.model_.predict(X, batch_size=256, verbose=0), dtype=float)

    def predict(self, X):
        """The most probable class of each series, as a label of ``classes_``."""
        probs = self.predict_proba(X)  # first: it checks the estimator is fitted
        return self.classes_[np.argmax(probs, axis=1)]

    def __getstate__(self):
        """Picklable: the Keras model travels as the bytes of its .keras file."""
        state = dict(self.__dict__)
        if "model_" in state:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                state["model_"].save(path)
                with open(path, "rb") as fh:
                    state["model_"] = fh.read()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            import keras

            import ts_model  # noqa: F401  (registers the V2S layers)

            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                with open(path, "wb") as fh:
                    fh.write(state["model_"])
                state["model_"] = keras.saving.load_model(path)
        self.__dict__.update(state)
