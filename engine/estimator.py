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
              "layout", "lr", "batch_size", "patience", "val_split", "arch", "source_weights", "source_model", "source_rate",
              "source_layer", "mode", "map_type", "seg", "dr", "l2", "znorm")


def _as_series(X, name="X"):
    """X as a float32 (n, length) or (n, channels, length) array and each series' length: an array, or a list of
    series of unequal lengths."""
    from scipy import sparse

    from ts_dataloader import FLOAT32_MAX

    if sparse.issparse(X):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported: pass a dense array "
                        f"({name}.toarray())")
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
            X = np.asarray(X)  # first without a dtype: a complex array would lose its imaginary part to float
            real = X.dtype.kind != "c"
            X = X.astype(float) if real else X
        except (TypeError, ValueError) as err:
            raise type(err)(f"{name} must hold numbers, an array of shape (n, length) or a list of 1-D series "
                            f"({err})") from None
        if not real:
            raise ValueError(f"{name}: Complex data not supported; V2S takes real-valued series")
        lengths = np.full(len(X), X.shape[-1]) if X.ndim >= 2 else None
    if X.ndim == 3 and X.shape[1] == 1:
        X = X[:, 0]  # one channel: a univariate series
    if X.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (n, length) or (n, channels, length), got shape {np.shape(X)}"
                         + (f"; Reshape your data with {name}.reshape(1, -1) if it is one series" if X.ndim == 1
                            else ""))
    for axis, what in ((0, "sample(s)"), (X.ndim - 1, "feature(s)"), (1, "channel(s)")):
        if X.shape[axis] == 0:  # scikit-learn's wording, which its checks look for
            raise ValueError(f"{name} has 0 {what} (shape={X.shape}) while a minimum of 1 is required.")
    bad = ~np.isfinite(X) | (np.abs(np.nan_to_num(X)) > FLOAT32_MAX)
    if bad.any():
        where = tuple(int(v) for v in np.argwhere(bad)[0])
        value = "NaN" if np.isnan(X[where]) else f"{float(X[where]):g}"
        raise ValueError(f"{name}[{', '.join(map(str, where))}] is {value}: V2S takes finite numbers within "
                         "float32's range")
    return X.astype(np.float32), lengths


class V2SClassifier(ClassifierMixin, BaseEstimator):
    """Voice2Series (Yang, Tsai, Chen, ICML 2021) with this project's defaults, as a scikit-learn classifier.

    A frozen speech-command model hears each series (by default as the pitch of a tone over one second) and a
    trained program plus a linear head read its classes (``engine.runs.RunConfig`` documents every parameter).
    """

    def __init__(self, epochs=100, ensemble=3, head=None, head_fit=None, encoding=None, carrier=None, deviation=None,
                 depth=None, clip=None, program="wave", layout="mix", lr=None, batch_size=32, patience=20,
                 val_split=0.2,
                 arch="V2Sa", source_weights=None, source_model=None, source_rate=16000, source_layer=None,
                 mode="reprogram", map_type=None, seg=0, dr=0.0, l2=0.0, znorm=False, random_state=None, out=None,
                 verbose=0):
        self.epochs, self.ensemble, self.head, self.head_fit = epochs, ensemble, head, head_fit
        self.encoding, self.carrier, self.deviation, self.depth, self.clip = encoding, carrier, deviation, depth, clip
        self.program, self.layout, self.lr, self.batch_size = program, layout, lr, batch_size
        self.patience, self.val_split = patience, val_split
        self.arch, self.source_weights, self.mode, self.map_type = arch, source_weights, mode, map_type
        self.source_model, self.source_rate, self.source_layer = source_model, source_rate, source_layer
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

        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d

        if y is None:
            raise ValueError("V2SClassifier requires y to be passed, but the target y is None")
        X, lengths = _as_series(X)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # a column of labels: warned and read as one label per series
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must hold one label per series of X ({len(X)}), got shape {y.shape}")
        check_classification_targets(y)  # continuous targets: 'Unknown label type', in scikit-learn's words
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds one class ({self.classes_[0]!r}); classification needs at least two")
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
        if X.shape[-1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[-1]} features, but V2SClassifier is expecting {self.n_features_in_} "
                             "features as input (the series' length in fit)")
        if channels != self.n_channels_:
            raise ValueError(f"X has {channels} channel(s), but V2SClassifier was fitted on {self.n_channels_}")
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
