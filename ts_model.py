"""V2S models: the reprogramming layer, many-to-one label mapping, the heads, and the paper's baselines.

``build_v2s`` assembles, for a target task with C classes and series of length L:

    series (batch, L) -> encoding (ts_encoding: pad, fm or am) -> (batch, 16000) -> Reprogram (+ dropout(M * delta))
        -> frozen source model (V2Sa / V2Su) -> 36 source probabilities -> LabelMapping -> (batch, C)

or, with another ``readout``, a trained ``LinearReadout`` on the source's 36 logits (``full``), on its 128-value
attention vector (``attention``, any number of classes) or on pooled features of several of its layers (``layers``,
``PooledFeatures``) in place of the many-to-one mapping. With ``program_space="series"`` the program is added to
the series (L values) before the encoding instead of to the waveform after it.

An ensemble of K programs may spread them over S frozen source models (``source`` a list; K a multiple of S):
programs are grouped by source, K / S programs per source, each group's reprogrammed waves going through its own
source model (``ProgramGroups`` splits the stacked batch, the sources' probabilities are stacked back in program
order).

Modes: ``reprogram`` (the paper's V2S: only delta trains), ``reprogram+finetune`` (delta and the source model train),
``transfer`` (TF_a baseline: encoded input, fine-tuned source model, dense head on its 36 logits, no delta) and
``fcn`` (a fully convolutional network trained from scratch on the raw series; Wang et al. 2017).
The source models themselves live in ``source_model``, the encodings in ``ts_encoding``; this module re-exports
their builders.
"""

import keras
import numpy as np
from keras import layers as L
from keras import ops

from engine.errors import UsageError
from speech.source_model import ARCHITECTURES, NUM_SOURCE_CLASSES, build_source_model, load_source_weights
from speech.spec import FEATURE_SPACES, KERAS_SOURCE, TONE_ENCODINGS
from ts_encoding import SegmentZeroPadding, build_encoding, encoder_of, segment_positions, z_normalised  # noqa: F401

MODES = ("reprogram", "reprogram+finetune", "transfer", "fcn")
# Where a program is added: to the encoded waveform (the paper's) or to the series before its encoding.
PROGRAM_SPACES = ("wave", "series")
__all__ = ["MODES", "SegmentZeroPadding", "Reprogram", "SeriesScaling", "dataset_standardisation", "LabelMapping",
           "ProgramAverage", "ProgramGroups", "StackPrograms", "LinearReadout", "READOUTS", "OUTPUT_LAYERS",
           "output_layer", "source_reader", "sources_of", "program_source", "segment_positions",
           "build_encoding", "encoder_of",
           "label_mapping_matrix", "sequential_mapping", "random_mapping", "frequency_mapping",
           "max_labels_per_class", "build_v2s", "build_fcn", "build_source_model", "load_source_weights",
           "source_of", "logits_model", "source_features", "encoded_series", "program_waves", "reprogrammed_waveform",
           "reprogrammed_features", "source_pass", "PooledFeatures", "FEATURE_LAYERS", "feature_reader",
           "PROGRAM_SPACES", "set_feature_standardisation"]


@keras.saving.register_keras_serializable(package="V2S")
class Reprogram(L.Layer):
    """Add a trainable perturbation: x' = x + dropout(M * delta), for one program or ``programs`` K at once.

    Shape: (batch, n) -> (batch, n) for one program; (batch, n) -> (K * batch, n) for K, the K perturbed copies of
    the batch stacked along the batch axis (program k's rows are k * batch .. (k + 1) * batch - 1), so the frozen
    source model runs once on all of them. ``delta`` has shape (n,) for one program and (K, n) for K, each row
    drawn like the single program's (uniform in +-sqrt(3 / n), Glorot's limit for an (n,) weight).
    ``l2``: L2 penalty on delta (none by default; the paper used 0.04, its code 0.05 — results/notes/
    l2_selection.md shows why V2S defaults to 0). ``dropout`` on delta (none by default, the reference code's 0.4
    fitted worse: results/notes/dropout_selection.md) is applied only in training, with one mask per program shared
    by the batch (the reference code also dropped at test time, a bug). ``mask`` (length n, 0/1) restricts delta
    to where it is 1; None means everywhere.
    ``space``: where the program sits, ``"wave"`` (added to the encoded waveform, n = 16000: the paper's) or
    ``"series"`` (added to the series before its encoding, n = L); the layer computes the same either way, the
    helpers below read it to apply the layers in the model's order. ``zero_init``: delta starts at 0 (the series
    itself) instead of the Glorot draw.
    """

    def __init__(self, l2=0.0, dropout=0.0, mask=None, programs=1, space="wave", zero_init=False, **kwargs):
        super().__init__(**kwargs)
        self.l2, self.dropout, self.programs = float(l2), float(dropout), int(programs)
        if self.programs < 1:
            raise ValueError(f"--ensemble (programs) must be at least 1, got {programs}")
        if space not in PROGRAM_SPACES:
            raise ValueError(f"Unknown program space {space!r}; expected one of {PROGRAM_SPACES}.")
        self.space, self.zero_init = space, bool(zero_init)
        self.mask = None if mask is None else [float(v) for v in np.asarray(mask).ravel()]
        self.drop = L.Dropout(self.dropout)

    def build(self, input_shape):
        n = input_shape[-1]
        if self.programs == 1:
            shape, init = (n,), "glorot_uniform"
        else:
            limit = float(np.sqrt(3.0 / n))
            shape, init = (self.programs, n), keras.initializers.RandomUniform(-limit, limit)
        init = "zeros" if self.zero_init else init
        self.delta = self.add_weight(name="delta", shape=shape, initializer=init,
                                     regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)
        self._mask = None if self.mask is None else ops.convert_to_tensor(np.array(self.mask, np.float32))

    def perturbation(self):
        """The effective perturbation M * delta (no dropout): shape (n,) for one program, (K, n) for K."""
        return self.delta if self._mask is None else self.delta * self._mask

    def call(self, x, training=False):
        if self.programs == 1:
            return x + self.drop(self.perturbation()[None, :], training=training)
        perturbed = x[None, :, :] + self.drop(self.perturbation()[:, None, :], training=training)
        return ops.reshape(perturbed, (-1, x.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (None if self.programs > 1 else input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "l2": self.l2, "dropout": self.dropout, "mask": self.mask,
                "programs": self.programs, "space": self.space, "zero_init": self.zero_init}


@keras.saving.register_keras_serializable(package="V2S")
class SeriesScaling(L.Layer):
    """Scale each series before it is padded: optional standardisation, then an optional trainable gain.

    Shape: (batch, L) -> (batch, L). ``znorm``: subtract each series' mean and divide by its standard deviation
    (a constant series becomes zeros). ``center`` / ``scale``: subtract one fixed number and divide by another, the
    same for every series (a dataset's standardisation from its training series: units and offset gone, the
    series' amplitudes relative to each other kept). ``gain``: multiply by one trainable scalar, initialised to 1,
    trained with delta (the series' amplitude against delta's and against the log-mel's dynamic range is otherwise
    fixed).
    """

    def __init__(self, znorm=False, gain=False, center=0.0, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.znorm, self.gain = bool(znorm), bool(gain)
        self.center, self.scale_by = float(center), float(scale)

    def build(self, input_shape):
        self.scale = self.add_weight(name="gain", shape=(), initializer="ones") if self.gain else None

    def call(self, x):
        if self.center != 0.0 or self.scale_by != 1.0:
            x = (x - self.center) / self.scale_by
        if self.znorm:
            x = z_normalised(x)
        return x * self.scale if self.gain else x

    def get_config(self):
        return {**super().get_config(), "znorm": self.znorm, "gain": self.gain, "center": self.center,
                "scale": self.scale_by}


def dataset_standardisation(x):
    """(center, scale) of training series ``x`` (N, L): their overall mean and standard deviation (1 for a
    constant set), for ``SeriesScaling``."""
    x = np.asarray(x, np.float64)
    std = float(np.std(x))
    return float(np.mean(x)), std if std > 1e-12 else 1.0


def max_labels_per_class(num_classes, num_source=NUM_SOURCE_CLASSES):
    """The paper's maximal many-to-one mapping size: floor(36 / C)."""
    return num_source // num_classes


def _check_mapping_size(num_classes, k, num_source):
    if num_classes < 2:
        raise ValueError(f"Label mapping needs at least 2 target classes, got {num_classes}.")
    if k < 1 or k * num_classes > num_source:
        raise ValueError(f"--mapping {k} source labels x {num_classes} classes = {k * num_classes} > {num_source} "
                         f"source labels; use --mapping {max_labels_per_class(num_classes, num_source)} or fewer.")


def sequential_mapping(num_classes, k, num_source=NUM_SOURCE_CLASSES):
    """Target class c owns source labels c*k .. c*k+k-1 (the reference code's mapping). Shape (C, k)."""
    _check_mapping_size(num_classes, k, num_source)
    return np.arange(num_classes * k).reshape(num_classes, k)


def random_mapping(num_classes, k, seed=0, num_source=NUM_SOURCE_CLASSES):
    """Each target class owns k distinct source labels drawn by a seeded permutation. Shape (C, k)."""
    _check_mapping_size(num_classes, k, num_source)
    return np.random.default_rng(seed).permutation(num_source)[:num_classes * k].reshape(num_classes, k)


def frequency_mapping(source_probs, y, num_classes, k, num_source=NUM_SOURCE_CLASSES):
    """Frequency label mapping (Tsai et al. 2020): source labels go to the class whose series predict them most.

    ``source_probs`` (N, 36) are the frozen source model's outputs on the training series, ``y`` (N,) their classes.
    Greedy: repeatedly take the (class, source label) pair with the most argmax votes (ties broken by the summed
    probability) among classes still short of k labels and labels still free. Shape (C, k).
    """
    _check_mapping_size(num_classes, k, num_source)
    votes = np.zeros((num_classes, num_source))
    np.add.at(votes, (y, np.argmax(source_probs, axis=1)), 1.0)
    mass = np.zeros((num_classes, num_source))
    np.add.at(mass, y, source_probs)
    score = votes + mass / (mass.max() + 1e-12) * 0.5  # votes first; probability mass breaks ties
    owned = [[] for _ in range(num_classes)]
    free = np.ones(num_source, bool)
    for _ in range(num_classes * k):
        open_rows = np.array([len(o) < k for o in owned])
        masked = np.where(open_rows[:, None] & free[None, :], score, -np.inf)
        c, s = np.unravel_index(np.argmax(masked), masked.shape)
        owned[c].append(int(s))
        free[s] = False
    return np.array(owned)


def label_mapping_matrix(mapping, num_source=NUM_SOURCE_CLASSES):
    """(36, C) matrix averaging each class's k source probabilities: column c has 1/k at the labels c owns."""
    mapping = np.asarray(mapping)
    matrix = np.zeros((num_source, len(mapping)), np.float32)
    for c, labels in enumerate(mapping):
        matrix[labels, c] = 1.0 / len(labels)
    return matrix


# A learned mapping starts with this weight (instead of 0) for the source labels a class does not own.
LEARNED_FLOOR = 1e-6


@keras.saving.register_keras_serializable(package="V2S")
class LabelMapping(L.Layer):
    """Many-to-one label mapping: source probabilities -> target class probabilities.

    One program: (batch, 36) -> (batch, C); ``mapping`` (C, k) lists the k source labels class c owns, and class
    c's score is their mean probability. K programs (``mapping`` (K, C, k), one mapping each): the (K * batch, 36)
    probabilities ``Reprogram`` stacked go to (batch, K, C), each program read through its own mapping. Scores are
    renormalised to sum to 1, which leaves the cross-entropy gradient of the reference code unchanged.
    ``learned``: the (36, C) averaging matrix of each program is trained with delta (a fully-connected output
    mapping, as in later reprogramming work, e.g. AutoVP, Tsao et al. 2024, but started from the many-to-one
    mapping). It is kept positive as exp(V), V starting at log(matrix) with LEARNED_FLOOR for the labels a class
    does not own, so an untrained model predicts as the fixed mapping does (to about 1e-6), every score stays
    positive, and Adam's steps on V change the matrix multiplicatively.
    ``iterative``: the mapping stays many-to-one but is re-assigned during training (``assign``; iterative label
    mapping, ILM-VP, Chen et al., CVPR 2023: ``engine/iterative_mapping.py``); ``current_mapping`` reads it back.
    """

    def __init__(self, mapping, learned=False, iterative=False, **kwargs):
        super().__init__(**kwargs)
        mapping = np.asarray(mapping)
        if learned and iterative:
            raise ValueError("A label mapping is either learned (a trained matrix) or iterative (re-assigned), "
                             "not both.")
        self.programs = 1 if mapping.ndim == 2 else len(mapping)
        self.mapping = mapping.astype(int).tolist()
        self.learned, self.iterative = bool(learned), bool(iterative)
        stacked = mapping[None] if mapping.ndim == 2 else mapping
        self._initial = np.stack([label_mapping_matrix(m) for m in stacked])  # (K, 36, C)
        self.matrix = ops.convert_to_tensor(self._initial[0] if self.programs == 1 else self._initial)

    def build(self, input_shape):
        initial = self._initial[0] if self.programs == 1 else self._initial
        if self.learned:
            self.log_matrix = self.add_weight(name="log_mapping_matrix", shape=initial.shape,
                                              initializer=keras.initializers.Constant(
                                                  np.log(np.maximum(initial, LEARNED_FLOOR))))
        if self.iterative:
            # A weight, not a constant: re-assigned between epochs, saved with the checkpoints (so a resumed run
            # reads its classes through the mapping it had), and seen by the compiled training step.
            self.mapping_matrix = self.add_weight(name="mapping_matrix", shape=initial.shape, trainable=False,
                                                  initializer=keras.initializers.Constant(initial))

    def _matrix(self, dtype):
        if self.learned:
            return ops.exp(self.log_matrix)
        return ops.cast(self.mapping_matrix if self.iterative else self.matrix, dtype)

    def call(self, probs):
        matrix = self._matrix(probs.dtype)
        if self.programs == 1:
            scores = ops.matmul(probs, matrix)
        else:
            per_program = ops.reshape(probs, (self.programs, -1, probs.shape[-1]))  # (K, batch, 36)
            scores = ops.transpose(ops.matmul(per_program, matrix), (1, 0, 2))  # (batch, K, C)
        return scores / (ops.sum(scores, axis=-1, keepdims=True) + 1e-12)

    def assign(self, mapping):
        """Give an iterative mapping new source labels: ``mapping`` (C, k), or (K, C, k) for K programs."""
        mapping = np.asarray(mapping)
        stacked = mapping[None] if mapping.ndim == 2 else mapping
        matrix = np.stack([label_mapping_matrix(m) for m in stacked])
        self.mapping_matrix.assign(matrix[0] if self.programs == 1 else matrix)
        self.mapping = mapping.astype(int).tolist()

    def current_mapping(self):
        """The source labels each class owns now, (C, k) or (K, C, k) as a list (an iterative mapping's latest;
        read from its saved matrix, so a reloaded model gives the mapping it was saved with)."""
        if not self.iterative:
            return self.mapping
        matrix = np.asarray(self.mapping_matrix)
        stacked = matrix[None] if self.programs == 1 else matrix
        owned = [[np.flatnonzero(m[:, c] > 0).tolist() for c in range(m.shape[1])] for m in stacked]
        return owned[0] if self.programs == 1 else owned

    def program_matrix(self, program=0):
        """The (36, C) matrix program ``program`` reads its classes through (the trained one when learned)."""
        matrix = np.asarray(self._matrix("float32"))
        return matrix if self.programs == 1 else matrix[program]

    def program_scores(self, probs, program=0):
        """Class scores (batch, C) of program ``program`` from its source probabilities (batch, 36), before the
        renormalisation (what a CAM of a class explains)."""
        return ops.matmul(probs, ops.convert_to_tensor(self.program_matrix(program)))

    def compute_output_shape(self, input_shape):
        classes = self._initial.shape[-1]
        return (input_shape[0], classes) if self.programs == 1 else (None, self.programs, classes)

    def get_config(self):
        return {**super().get_config(), "mapping": self.mapping, "learned": self.learned, "iterative": self.iterative}


@keras.saving.register_keras_serializable(package="V2S")
class LinearReadout(L.Layer):
    """A trained linear classifier with bias on a frozen source model's output, one per program, then a softmax.

    One program: (batch, d) -> (batch, C); K programs: the (K * batch, d) features of the stacked programs ->
    (batch, K, C), program k read by its own kernel (d, C) and bias (C,). The kernel is stored as (K, d, C).
    ``mapping`` (C, k), or (K, C, k): start from a many-to-one mapping, the kernel 1/k at the source labels each
    class owns and 0 elsewhere, the bias 0 (d is then the 36 source logits; the fully-connected mapping of AutoVP,
    Tsao et al., ICLR 2024). With k = 1 that start predicts exactly as the fixed mapping does (a softmax over the
    owned labels' logits is their renormalised probabilities); with k > 1 it averages the owned labels' logits, a
    geometric rather than arithmetic mean of their probabilities. Without ``mapping``: Glorot-uniform kernel,
    zero bias (a feature head on, e.g., the 128-value attention vector, for any number of classes).
    ``standardise``: features are first standardised, (f - center) / scale per feature, with two fixed
    (non-trained, saved) vectors that start at 0 and 1 and are set once from the training series' features
    (``set_feature_standardisation``): features of several layers differ in scale by orders of magnitude, and
    one learning rate trains them all.
    """

    def __init__(self, classes, programs=1, mapping=None, standardise=False, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.programs = int(classes), int(programs)
        self.mapping = None if mapping is None else np.asarray(mapping).astype(int).tolist()
        self.standardise = bool(standardise)

    def build(self, input_shape):
        d = int(input_shape[-1])
        if self.mapping is not None:
            mapping = np.asarray(self.mapping)
            stacked = mapping[None] if mapping.ndim == 2 else mapping
            init = keras.initializers.Constant(np.stack([label_mapping_matrix(m, d) for m in stacked]))
        else:
            limit = float(np.sqrt(6.0 / (d + self.classes)))
            init = keras.initializers.RandomUniform(-limit, limit)
        self.kernel = self.add_weight(name="kernel", shape=(self.programs, d, self.classes), initializer=init)
        self.bias = self.add_weight(name="bias", shape=(self.programs, self.classes), initializer="zeros")
        if self.standardise:
            self.center = self.add_weight(name="feature_center", shape=(d,), initializer="zeros", trainable=False)
            self.scale = self.add_weight(name="feature_scale", shape=(d,), initializer="ones", trainable=False)

    def _standardised(self, features):
        return (features - self.center) / self.scale if self.standardise else features

    def call(self, features):
        features = self._standardised(features)
        if self.programs == 1:
            return ops.softmax(ops.matmul(features, self.kernel[0]) + self.bias[0], axis=-1)
        per_program = ops.reshape(features, (self.programs, -1, features.shape[-1]))  # (K, batch, d)
        logits = ops.matmul(per_program, self.kernel) + self.bias[:, None, :]  # (K, batch, C)
        return ops.softmax(ops.transpose(logits, (1, 0, 2)), axis=-1)

    def current_mapping(self):
        """The many-to-one mapping the readout started from (None for a feature head)."""
        return self.mapping

    def program_matrix(self, program=0):
        """Program ``program``'s trained kernel, (d, C)."""
        return np.asarray(self.kernel)[program]

    def program_scores(self, features, program=0):
        """Class logits (batch, C) of program ``program`` from its features (batch, d) (what a CAM explains)."""
        return ops.matmul(self._standardised(features), self.kernel[program]) + self.bias[program]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.classes) if self.programs == 1 else (None, self.programs, self.classes)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "programs": self.programs, "mapping": self.mapping,
                "standardise": self.standardise}


# A feature's scale is at least this fraction of the median feature's standard deviation.
SCALE_FLOOR = 0.1


def set_feature_standardisation(head, features):
    """Set a standardising ``LinearReadout``'s center and scale from features (N, d): their mean and standard
    deviation per feature, the latter at least ``SCALE_FLOOR`` times the median one.

    Why the floor: a feature nearly constant over the training series (the maximum of a saturated tanh, say) would
    be divided by almost nothing, and the program's small changes to it, or float rounding, would swing the head's
    logits without bound.
    """
    center, scale = feature_standardisation(features)
    head.center.assign(center)
    head.scale.assign(scale)


def feature_standardisation(features):
    """(center, scale), float32 (d,) each, of features (N, d): ``set_feature_standardisation``'s, for any head."""
    features = np.asarray(features, np.float64)
    std = features.std(axis=0)
    floor = SCALE_FLOOR * np.median(std) if np.median(std) > 0 else 1.0
    return features.mean(axis=0).astype(np.float32), np.maximum(std, floor).astype(np.float32)


@keras.saving.register_keras_serializable(package="V2S")
class PooledFeatures(L.Layer):
    """Several frozen layers' outputs as one feature vector: summary statistics over time, side by side.

    In: a list of tensors, each (batch, d) (kept as it is), (batch, time, d) or (batch, time, a, b) (its last two
    axes merged into d = a * b); out: (batch, D), each sequence contributing its mean, standard deviation and
    maximum over time (3 d values), in the order of the list. Head2Toe (Evci et al., ICML 2022) reads pooled
    features of every layer of a frozen backbone for out-of-domain transfer; here the time axis, which carries the
    series under a tone encoding, is what is pooled.
    """

    def call(self, inputs):
        parts = []
        for x in inputs:
            if len(x.shape) == 4:
                x = ops.reshape(x, (-1, x.shape[1], x.shape[2] * x.shape[3]))
            if len(x.shape) == 3:
                parts += [ops.mean(x, axis=1), ops.std(x, axis=1), ops.max(x, axis=1)]
            else:
                parts.append(x)
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shapes):
        width = 0
        for shape in input_shapes:
            width += shape[-1] if len(shape) == 2 else 3 * int(np.prod(shape[2:]))
        return (input_shapes[0][0], width)


# The frozen layers the ``layers`` readout pools (V2Sa and V2Su; results/notes/encoding_selection.md): the first
# BiLSTM's sequence (mean, standard deviation and maximum over time), the attention vector and the 36 logits.
FEATURE_LAYERS = ("bilstm_1", "att_vector", "logits")


def feature_reader(source, layers=FEATURE_LAYERS, name=None):
    """(batch, 16000) waveform -> (batch, D) pooled features of ``layers`` of a source model (``PooledFeatures``),
    sharing its weights; named like the source unless ``name`` is given."""
    names = [layer.name for layer in source.layers]
    missing = [layer for layer in layers if layer not in names]
    if missing:
        raise ValueError(f"the source model {source.name} has no layer {missing[0]!r}; the layers readout reads "
                         f"{', '.join(layers)} (the V2Sa and V2Su architectures)")
    outputs = [source.get_layer(layer).output for layer in layers]
    return keras.Model(source.input, PooledFeatures(name="pooled_features")(outputs), name=name or source.name)


# What the output layer reads from the frozen source model, per readout of ``build_v2s``: its probabilities, its
# 36 logits, its attention-pooled vector (128 values for V2Sa and V2Su), or pooled features of FEATURE_LAYERS.
READOUTS = {"mean": "output", "learned": "output", "iterative": "output", "full": "logits",
            "attention": "att_vector", "layers": FEATURE_LAYERS, "features": "output"}
# The output layer's name per readout (build_v2s): a label mapping, or a head on features.
OUTPUT_NAMES = {"full": "label_mapping", "attention": "attention_head", "layers": "layers_head",
                "features": "features_head"}
OUTPUT_LAYERS = ("label_mapping", "attention_head", "layers_head", "features_head")


def output_layer(model):
    """The layer that turns a V2S model's source outputs into class probabilities (a label mapping or a head)."""
    names = {layer.name for layer in model.layers}
    return next(model.get_layer(name) for name in OUTPUT_LAYERS if name in names)


def source_reader(source, readout):
    """The frozen source as the output layer of ``readout`` reads it: the source itself when the layer reads its
    probabilities, else a model with the same input, layers and name whose output is the layer ``READOUTS`` names
    (so ``sources_of``, the training graph and CAM find it like the source), or the pooled features of several
    (``feature_reader``)."""
    layer = READOUTS[readout]
    if layer == "output":
        return source
    if isinstance(layer, tuple):
        return feature_reader(source, layer)
    return keras.Model(source.input, source.get_layer(layer).output, name=source.name)


@keras.saving.register_keras_serializable(package="V2S")
class ProgramAverage(L.Layer):
    """The ensemble's prediction: (batch, K, C) per-program probabilities -> (batch, C), their mean."""

    def call(self, probs):
        return ops.mean(probs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="V2S")
class ProgramGroups(L.Layer):
    """Split stacked programs into ``groups`` equal groups of consecutive programs, one per source model.

    Shape: (K * batch, ...) -> ``groups`` tensors of (K / groups * batch, ...): program k's rows (k * batch ..
    (k + 1) * batch - 1, as ``Reprogram`` stacks them) go to group k // (K / groups), so each group is itself a
    stack of whole programs.
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, x):
        size = ops.shape(x)[0] // self.groups
        return [x[g * size:(g + 1) * size] for g in range(self.groups)]

    def compute_output_shape(self, input_shape):
        return [(None,) + tuple(input_shape[1:])] * self.groups

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="V2S")
class StackPrograms(L.Layer):
    """The inverse of ``ProgramGroups``: a list of (n_g, ...) tensors -> their stack along the batch axis."""

    def call(self, parts):
        return ops.concatenate(parts, axis=0)

    def compute_output_shape(self, input_shape):
        return (None,) + tuple(input_shape[0][1:])


def _is_source(layer):
    """Whether ``layer`` is a source model nested in a V2S model: named after its architecture ("V2Sa"), or
    "<arch>_source<g>" when an ensemble has several, or a user's waveform model (``speech.keras_source``)."""
    return (layer.name in ARCHITECTURES + (KERAS_SOURCE,)) or layer.name.split("_source")[0] in ARCHITECTURES


def sources_of(model):
    """The source models nested in a V2S model, in program order ([model] when it is a source model itself)."""
    found = [layer for layer in model.layers if _is_source(layer)]
    return found or [model]


def program_source(model, program=0):
    """The source model program ``program`` of a V2S model reads (the only one unless it has several)."""
    sources = sources_of(model)
    if len(sources) == 1:
        return sources[0]
    programs = model.get_layer("reprogram").programs
    return sources[program // (programs // len(sources))]


def source_of(model):
    """The source model nested in a V2S model (the first one when it has several; the model itself when it is a
    source model)."""
    return sources_of(model)[0]


def logits_model(source):
    """(batch, 16000) waveform -> (batch, 36) pre-softmax logits of a source model (shares its weights)."""
    return keras.Model(source.input, source.get_layer("logits").output, name=f"{source.name}_logits")


def source_features(source, space="read"):
    """(batch, 16000) waveform -> what the analyses (SWD, t-SNE) compare of a V2S model's frozen source: its
    (batch, 36) logits, or, when the V2S model reads features of the source instead of its probabilities (a head:
    ``source_reader``) and ``space`` is "read", those features, (batch, 128) for the attention vector.
    ``space="logits"`` asks for the logits whatever the model reads; a source cut before them is refused."""
    if space not in FEATURE_SPACES:
        raise ValueError(f"space must be one of {', '.join(FEATURE_SPACES)}, got {space!r}")
    if space == "read" and source.layers[-1].name != "output":
        return source
    if "logits" not in {layer.name for layer in source.layers}:
        raise UsageError(f"the source of this run ends at {source.layers[-1].name!r}, before the logits: its head "
                         "reads no logits; compare what it reads instead")
    return logits_model(source)


def encoded_series(model, x):
    """The encoded series ``x`` (N, L) that a V2S or TF_a model feeds its source before any program: (N, 16000).

    Any scaling the model applies first (``SeriesScaling``) is applied too.
    """
    x = np.asarray(x, np.float32)
    if "series_scaling" in {layer.name for layer in model.layers}:
        x = model.get_layer("series_scaling")(x)
    return np.asarray(encoder_of(model)(x))


def program_waves(model):
    """A function (series (batch, L), training) -> the reprogrammed waveforms (K * batch, 16000) of V2S ``model``,
    its layers applied in its own order: scaling, then the encoding before or after the program (``Reprogram``'s
    ``space``)."""
    names = {layer.name for layer in model.layers}
    scaling = model.get_layer("series_scaling") if "series_scaling" in names else None
    encoder, reprogram = encoder_of(model), model.get_layer("reprogram")

    def waves(series, training=False):
        x = scaling(series) if scaling is not None else series
        if reprogram.space == "series":
            return encoder(reprogram(x, training=training))
        return reprogram(encoder(x), training=training)

    return waves


def reprogrammed_waveform(model, x, program=0):
    """What the frozen source model hears for series ``x`` (N, L): the encoded series with the program, (N, 16000).

    Inference mode: no dropout on delta. For an ensemble, the waveforms of program ``program``.
    """
    waves = np.asarray(program_waves(model)(np.asarray(x, np.float32)))
    return waves if model.get_layer("reprogram").programs == 1 else waves[program * len(x):(program + 1) * len(x)]


def source_pass(model, program=None, probabilities=False, space="read"):
    """A function (series (N, L), batch_size) -> the source features (``source_features``: the 36 logits, or the
    features a head reads; ``probabilities``: the logits' softmax) the reprogrammed inputs of V2S ``model``
    give: (N, F) for program ``program``, or (K, N, F) for every program when ``program`` is None, each read by its
    own source model, in inference mode (no dropout on delta).

    Traced once, on the first call (an eager call of the source's LSTMs runs their time loop in Python, many times
    slower on a CPU); a per-epoch caller (the SWD, the iterative mapping) keeps the function and reuses it.
    """
    import tensorflow as tf

    reprogram, waves_of = model.get_layer("reprogram"), program_waves(model)
    programs = range(reprogram.programs) if program is None else [program]
    heads = {k: source_features(program_source(model, k), space) for k in programs}

    @tf.function(input_signature=[series_signature(model)])
    def run(series):
        waves = waves_of(series)
        b = tf.shape(series)[0]
        out = tf.stack([heads[k](waves[k * b:(k + 1) * b], training=False) for k in programs])
        out = tf.nn.softmax(out) if probabilities else out
        return out if program is None else out[0]

    def outputs(x, batch_size=256):
        x = np.asarray(x, np.float32)
        parts = [np.asarray(run(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts, axis=0 if program is not None else 1)

    return outputs


def series_signature(model):
    """The ``tf.TensorSpec`` of a batch of the series ``model`` takes: (None, L), or (None, D, L) multivariate."""
    import tensorflow as tf

    return tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), tf.float32)


def reprogrammed_features(model, x, batch_size=64, program=0, space="read"):
    """Source features (``source_features``: logits (N, 36), or attention vectors (N, 128) for a head run) of a V2S
    model's reprogrammed inputs for series ``x`` (N, L) (ensemble: program ``program``, read by its own source)."""
    return source_pass(model, program, space=space)(x, batch_size)


def build_fcn(length, num_classes, channels=1):
    """FCN baseline (Wang et al. 2017): three Conv1D-BN-ReLU blocks, global average pooling, softmax. Input (batch,
    L), or (batch, D, L) for ``channels`` D > 1 (the channels are the first convolution's input channels)."""
    inputs = keras.Input(series_shape(length, channels), name="series")
    x = L.Reshape((length, 1))(inputs) if channels == 1 else L.Permute((2, 1), name="channels_last")(inputs)
    for i, (filters, size) in enumerate(((128, 8), (256, 5), (128, 3)), 1):
        x = L.Conv1D(filters, size, padding="same", name=f"fcn_conv{i}")(x)
        x = L.BatchNormalization(name=f"fcn_bn{i}")(x)
        x = L.Activation("relu", name=f"fcn_relu{i}")(x)
    x = L.GlobalAveragePooling1D(name="fcn_gap")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="target_output")(x)
    return keras.Model(inputs, outputs, name="FCN")


def series_shape(length, channels=1):
    """A model's input shape for one series: (L,), or (D, L) for a multivariate one of D channels."""
    return (length,) if channels == 1 else (channels, length)


def build_v2s(length, num_classes, mode="reprogram", source=None, arch="V2Sa", segments=1, mapping=None,
              dropout=0.0, l2=0.0, mask=False, programs=1, readout="mean", znorm=False, gain=False,
              standardise=None, encoding="pad", carrier=None, deviation=None, depth=None, clip=None,
              program_space="wave", channels=1, layout="mix"):
    """Build a V2S model (or a baseline) for series of ``length`` and ``num_classes`` classes.

    ``source``: a source model (e.g. with loaded weights); built from ``arch`` with random weights when None. A list
    of S source models spreads the ``programs`` over them (K / S consecutive programs per source; K a multiple of S).
    ``encoding``: how a series becomes one second of audio (``ts_encoding.build_encoding``: ``pad`` with m =
    ``segments`` copies, 1 for ``transfer``; ``fm`` / ``am`` with the tone's ``carrier``, ``deviation``, ``depth``,
    ``clip``, None for their defaults). ``program_space``: the program is added to the encoded waveform
    (``wave``, 16,000 values, the paper's) or to the series before its encoding (``series``, L values, starting at
    0; under a tone encoding it is added to the z-normalised series, so its scale does not depend on the data's
    units).
    ``mapping``: (C, k) source labels per class for the reprogramming modes (default: sequential, maximal k), or
    (K, C, k), one mapping per program, when ``programs`` K > 1 (an ensemble of K independent programs trained as
    one model; its prediction is the mean of theirs). ``mask``: restrict delta to the samples outside the series
    copies (the paper's M; ``pad`` and the waveform's program only). ``readout``, how class probabilities are read
    from the frozen source (``READOUTS``): ``mean`` the fixed many-to-one mapping, ``learned`` its matrix trained
    too, ``iterative`` re-assigned during training (``LabelMapping``), ``full`` a linear layer with bias on the 36
    logits started from the mapping, ``attention`` a linear head on the attention vector, ``layers`` a linear head
    on standardised pooled features of several layers (``LinearReadout``; no mapping, any number of classes),
    ``features`` a linear head on whatever the source gives, standardised (a user's model: ``speech.keras_source``).
    ``standardise`` (center, scale): subtract and divide by these numbers first (a dataset's standardisation).
    ``znorm`` / ``gain``: z-normalise each series / scale it by a trainable gain before the encoding
    (``SeriesScaling``). ``channels`` D > 1: multivariate series (batch, D, length), played as D tones in
    ``layout`` (``ts_encoding.ChannelTones``; a tone encoding, the program on the waveform).
    Returns a Keras model taking (batch, length) series and giving (batch, num_classes) probabilities.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {MODES}.")
    if readout not in READOUTS:
        raise ValueError(f"Unknown readout {readout!r}; expected one of {tuple(READOUTS)}.")
    if program_space not in PROGRAM_SPACES:
        raise ValueError(f"Unknown program space {program_space!r}; expected one of {PROGRAM_SPACES}.")
    if mask and (encoding != "pad" or program_space != "wave"):
        raise ValueError("The mask M keeps delta outside the zero-padded copies: it needs the pad encoding and the "
                         "program on the waveform.")
    if channels > 1 and program_space != "wave":
        raise ValueError("A multivariate series takes its program on the waveform (the program on the series is "
                         "univariate for now).")
    if mode == "fcn":
        return build_fcn(length, num_classes, channels)
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    sources = [s if s is not None else build_source_model(arch) for s in sources]
    if len(sources) > 1:
        if mode != "reprogram" or programs % len(sources) or len({id(s) for s in sources}) < len(sources):
            raise ValueError(f"{len(sources)} source models need the reprogram mode and a number of programs that is a "
                             f"multiple of {len(sources)}, each source a model of its own; got mode {mode!r} with "
                             f"{programs} programs.")
        for g, s in enumerate(sources):
            s.name = f"{s.name.split('_source')[0]}_source{g}"
    for s in sources:
        s.trainable = mode != "reprogram"
    source = sources[0]
    in_series = program_space == "series" and mode != "transfer"
    znorm = znorm or (in_series and encoding in TONE_ENCODINGS)
    inputs = keras.Input(series_shape(length, channels), name="series")
    center, scale = standardise if standardise is not None else (0.0, 1.0)
    series = (SeriesScaling(znorm, gain, center, scale, name="series_scaling")(inputs)
              if (znorm or gain or standardise is not None) else inputs)
    encoder = build_encoding(encoding, length, segments if mode != "transfer" else 1, carrier, deviation, depth,
                             clip, channels, layout)
    if mode == "transfer":
        logits = logits_model(source)
        # training=False keeps the source's batch-norm statistics fixed while its weights fine-tune.
        x = logits(encoder(series), training=False)
        outputs = L.Dense(num_classes, activation="softmax", name="target_output")(x)
        return keras.Model(inputs, outputs, name="TF_a")
    if readout in OUTPUT_NAMES and readout != "full":
        mapping = None
    elif mapping is None:
        one = sequential_mapping(num_classes, max_labels_per_class(num_classes))
        mapping = one if programs == 1 else np.stack([one] * programs)
    if mapping is not None:
        mapping = np.asarray(mapping)
        if (mapping.ndim == 3) != (programs > 1) or (programs > 1 and len(mapping) != programs):
            raise ValueError(f"{programs} programs need "
                             f"{'one (C, k) mapping' if programs == 1 else f'{programs} mappings'}, got an array of "
                             f"shape {mapping.shape}.")
        if mapping.shape[-2] != num_classes:
            raise ValueError(f"The label mapping has {mapping.shape[-2]} rows but the data has {num_classes} classes.")
    program = Reprogram(l2=l2, dropout=dropout, mask=1.0 - encoder.mask() if mask else None, programs=programs,
                        space=program_space, zero_init=in_series, name="reprogram")
    wave = encoder(program(series)) if in_series else program(encoder(series))
    readers = []
    for s in sources:
        reader = source_reader(s, readout)
        reader.trainable = s.trainable
        readers.append(reader)
    if len(readers) == 1:
        probs = readers[0](wave, training=False)
    else:
        groups = ProgramGroups(len(readers), name="program_groups")(wave)
        probs = StackPrograms(name="stack_programs")([r(g, training=False) for r, g in zip(readers, groups)])
    if readout in OUTPUT_NAMES:
        head = LinearReadout(num_classes, programs, mapping=mapping, standardise=readout in ("layers", "features"),
                             name=OUTPUT_NAMES[readout])
    else:
        head = LabelMapping(mapping, learned=readout == "learned", iterative=readout == "iterative",
                            name="label_mapping")
    outputs = head(probs)
    if programs > 1:
        outputs = ProgramAverage(name="program_average")(outputs)
    return keras.Model(inputs, outputs, name="V2S" if mode == "reprogram" else "V2S_finetune")
