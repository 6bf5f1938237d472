"""LP, the frozen-feature control: what the frozen source model's features say about a dataset without any program.

V2S trains a program delta and reads the frozen model's outputs through a head or a label mapping. LP asks what the
frozen features hold before delta: every series is encoded exactly as V2S encodes it (``ts_encoding``: m zero-padded
copies, or a tone over the whole second; delta = 0), the frozen model reads it once, and a linear classifier is
fitted on its representation. The gap between V2S and LP is what the trained program adds beyond the features.

In:  ``UCRData`` (series (N, L), labels 0..C-1, any C), a source model (default: the shipped V2Sa weights), the
     encoding layer (default: ``pad`` with as many copies as fit, at most 10), the layers read, a seed.
Features: the frozen layers ``layers`` pooled side by side (``ts_model.feature_reader``: a vector as it is, a
     sequence by its mean, standard deviation and maximum over time), standardised on the training series.
     ``layers_of_head`` gives the layers each V2S head reads: LP reads what the run's head reads.
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

from engine.logistic import C_GRID, DEFAULT_C, classifier, probabilities  # noqa: F401  (LP's classifier)

# The frozen layers each V2S head reads, which LP reads for it: the attention head's vector (with the logits, as LP
# always read them beside it) or the layers head's pooled features (ts_model.FEATURE_LAYERS).
ATTENTION_LAYERS = ("att_vector", "logits")


def layers_of_head(head):
    """The frozen layers LP reads for a V2S run whose output layer is ``head`` (``RunConfig.head``)."""
    from ts_model import FEATURE_LAYERS

    return FEATURE_LAYERS if head == "layers" else ATTENTION_LAYERS


@dataclasses.dataclass
class ProbeResult:
    test_accuracy: float
    val_accuracy: float  # None when no validation split could be held out
    val_cross_entropy: float
    C: float
    features: int  # width of the feature vector


def probe_reader(source, layers=ATTENTION_LAYERS):
    """A Keras model (N, 16000) -> (N, D) pooled features of ``layers``, sharing the frozen source's weights; a
    one-line ``UsageError`` when the source lacks one of them."""
    from engine.errors import UsageError
    from ts_model import feature_reader

    try:
        return feature_reader(source, layers)
    except ValueError as err:
        raise UsageError(str(err)) from None


def frozen_features(reader, encoder, x, batch_size=64):
    """Series (N, L) -> the frozen features (N, D) of their V2S input (``encoder``'s waveforms, delta = 0).

    Through Keras' compiled predict (traced once per reader): an eager call of the source model's LSTMs runs their
    time loop in Python, about 20 times slower per batch on a CPU.
    """
    chunks = []
    for i in range(0, len(x), 512):  # waveforms are 64 kB each: encode a chunk at a time
        waves = np.asarray(encoder(np.asarray(x[i:i + 512], np.float32)))
        chunks.append(np.asarray(reader.predict(waves, batch_size=batch_size, verbose=0)))
    return np.concatenate(chunks)


def fit_probe(f_train, y_train, f_test, y_test, num_classes, val_split=0.2, seed=0, grid=C_GRID):
    """Choose C on the validation split of the training features, refit on all of them, score the test set once."""
    from engine.runs import stratified_split
    from engine.training import cross_entropy

    fit, val = stratified_split(y_train, val_split, seed)
    scores = []
    if len(val):
        for C in grid:
            model = classifier(C, seed).fit(f_train[fit], y_train[fit])
            probs = probabilities(model, f_train[val], num_classes)
            scores.append((cross_entropy(probs, y_train[val]), C, float(np.mean(probs.argmax(1) == y_train[val]))))
    val_ce, C, val_acc = min(scores) if scores else (None, DEFAULT_C, None)
    model = classifier(C, seed).fit(f_train, y_train)
    test_acc = float(np.mean(model.predict(f_test) == y_test)) if len(y_test) else None
    return ProbeResult(test_acc, val_acc, None if val_ce is None else float(val_ce), C, f_train.shape[1])


def linear_probe(data, source, seed=0, val_split=0.2, encoder=None, layers=ATTENTION_LAYERS, batch_size=64):
    """LP on ``data`` (``UCRData``) with the frozen ``source`` model; returns a ``ProbeResult``.

    ``encoder``: the encoding layer (``ts_encoding``) for the data's length; None: ``pad`` with V2S's default m.
    """
    from engine.runs import default_segments
    from ts_encoding import SegmentZeroPadding

    encoder = encoder or SegmentZeroPadding(data.length, default_segments(data.length))
    reader = probe_reader(source, layers)
    f_train = frozen_features(reader, encoder, data.x_train, batch_size)
    f_test = frozen_features(reader, encoder, data.x_test, batch_size)
    return fit_probe(f_train, data.y_train, f_test, data.y_test, data.num_classes, val_split, seed)

