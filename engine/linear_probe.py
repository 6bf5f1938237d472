"""LP, the frozen-feature control: what the frozen source model's features say about a dataset without any program.

V2S trains a program delta and reads the frozen model's 36 source probabilities through a fixed many-to-one
label mapping. LP asks what the frozen features hold before delta: every series is padded and replicated exactly as
V2S pads it (``SegmentZeroPadding``, m copies, delta = 0), the frozen model reads it once, and a linear classifier
is fitted on its representation. The gap between V2S and LP is what the trained program adds beyond the features.

In:  ``UCRData`` (series (N, L), labels 0..C-1, any C), a source model (default: the shipped V2Sa weights), a seed.
Features: per series the attention-pooled vector (``att_vector``, 128 values for V2Sa) and the 36 ``logits``,
     side by side (N, 164), standardised on the training series.
Classifier: scikit-learn's multinomial ``LogisticRegression``; its inverse regularisation C is chosen from
     ``C_GRID`` by cross-entropy on the validation split V2S itself uses (``runs.stratified_split`` with the same
     ``val_split`` and seed), then refitted on the whole training set with that C, as MiniRocket trains on the whole
     training set. A dataset too small to hold out a split (one series in some class) takes C = ``DEFAULT_C``.
Out: ``ProbeResult`` with test accuracy (the test set is scored once), validation accuracy and cross-entropy of
     the chosen C, and that C.

Features are computed once per dataset (train and test, ``frozen_features``); only the classifier sees the split.
"""

import dataclasses

import numpy as np

READOUTS = ("att_vector", "logits")  # the V2Sa source model's layers LP reads
C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
DEFAULT_C = 1.0


@dataclasses.dataclass
class ProbeResult:
    test_accuracy: float
    val_accuracy: float  # None when no validation split could be held out
    val_cross_entropy: float
    C: float
    features: int  # width of the feature vector


def feature_reader(source, readouts=READOUTS):
    """A Keras model (N, 16000) -> [one (N, d) array per readout] sharing the frozen source model's weights."""
    import keras

    missing = [name for name in readouts if name not in [layer.name for layer in source.layers]]
    if missing:
        from engine.errors import UsageError

        raise UsageError(f"the source model {source.name} has no layer {missing[0]!r}; the linear probe reads "
                         f"{', '.join(readouts)} (the V2Sa architecture)")
    return keras.Model(source.input, [source.get_layer(name).output for name in readouts])


def read_features(reader, waves, batch_size=64):
    """[(N, d) per readout] of a ``feature_reader`` for waveforms (N, 16000).

    Through Keras' compiled predict (traced once per reader): an eager call of the source model's LSTMs runs their
    time loop in Python, about 20 times slower per batch on a CPU.
    """
    out = reader.predict(waves, batch_size=batch_size, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def frozen_features(reader, x, segments, batch_size=64):
    """Series (N, L) -> the frozen features (N, d) of their V2S input (m = ``segments`` copies, delta = 0)."""
    from ts_model import SegmentZeroPadding

    pad = SegmentZeroPadding(x.shape[1], segments)
    chunks = []
    for i in range(0, len(x), 512):  # padded waveforms are 64 kB each: pad a chunk at a time
        waves = np.asarray(pad(np.asarray(x[i:i + 512], np.float32)))
        chunks.append(np.concatenate(read_features(reader, waves, batch_size), axis=1))
    return np.concatenate(chunks)


def _classifier(C, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed))


def _probabilities(model, f, num_classes):
    """Class probabilities (N, C) of a fitted pipeline, with a zero column for a class it never saw."""
    probs = np.zeros((len(f), num_classes))
    probs[:, model.classes_] = model.predict_proba(f)
    return probs


def fit_probe(f_train, y_train, f_test, y_test, num_classes, val_split=0.2, seed=0, grid=C_GRID):
    """Choose C on the validation split of the training features, refit on all of them, score the test set once."""
    from engine.runs import stratified_split
    from engine.training import cross_entropy

    fit, val = stratified_split(y_train, val_split, seed)
    scores = []
    if len(val):
        for C in grid:
            model = _classifier(C, seed).fit(f_train[fit], y_train[fit])
            probs = _probabilities(model, f_train[val], num_classes)
            scores.append((cross_entropy(probs, y_train[val]), C, float(np.mean(probs.argmax(1) == y_train[val]))))
    val_ce, C, val_acc = min(scores) if scores else (None, DEFAULT_C, None)
    model = _classifier(C, seed).fit(f_train, y_train)
    test_acc = float(np.mean(model.predict(f_test) == y_test)) if len(y_test) else None
    return ProbeResult(test_acc, val_acc, None if val_ce is None else float(val_ce), C, f_train.shape[1])


def linear_probe(data, source, seed=0, val_split=0.2, max_seg=None, batch_size=64):
    """LP on ``data`` (``UCRData``) with the frozen ``source`` model; returns a ``ProbeResult``."""
    from engine.runs import MAX_SEGMENTS, default_segments

    segments = default_segments(data.length, max_seg or MAX_SEGMENTS)
    reader = feature_reader(source)
    f_train = frozen_features(reader, data.x_train, segments, batch_size)
    f_test = frozen_features(reader, data.x_test, segments, batch_size)
    return fit_probe(f_train, data.y_train, f_test, data.y_test, data.num_classes, val_split, seed)
