"""Black-box reprogramming: the program trained from a source's output vectors alone, by a zeroth-order gradient
estimate (black-box adversarial reprogramming, BAR: Tsai, Chen and Ho, ICML 2020).

In:  ``UCRData`` and a ``RunConfig`` with ``black_box`` set (``BLACK_BOXES``): the source is reached only through
     ``BlackBox``, a function of a batch of waveforms (B, 16000) -> output vectors (B, D) that counts its queries;
     no TensorFlow tensor ever reaches it, so no gradient can flow through it.
Out: a run folder like V2S's (``summary.json`` with ``queries``, ``history.csv``, ``curves.png``, ``ckpt/`` to
     resume; no ``model.keras``: the source is not a Keras model).

The program lives in a low-dimensional basis: ``basis`` coefficients, linearly interpolated to the 16,000 samples
(``program_basis``), so the estimate works in ``basis`` dimensions, not 16,000. Each step draws ``directions`` q
unit vectors u_j and queries the batch under the program c and under c + beta u_j, (q + 1) x batch queries, and
estimates the gradient of the batch's cross-entropy as (d / q) sum_j [f(c + beta u_j) - f(c)] / beta u_j (BAR's
estimator, d the basis size, beta = ``SMOOTHING_PER_LR`` x the learning rate); ``antithetic`` also queries
c - beta u_j and takes central differences, (2q + 1) x batch queries. The readout on our side of the box, a linear head on the
standardised output vectors, trains with its exact gradient; it starts as the logistic regression of the fit
split's outputs without a program (the LP of the black box, scored too). Both train with Adam. An epoch is a pass
over the fit split, then the validation split is queried (counted); the best epoch by validation cross-entropy is
kept; training stops when the next step and its validation would pass ``budget`` queries, after ``epochs``, or
after ``patience`` epochs without a better one. Scoring the test set costs ``test_queries``, reported apart.
"""

import importlib.util
import os
import time

import numpy as np

from engine.errors import UsageError
from engine.run_folder import REPO
from speech.commands import SAMPLE_RATE
from speech.spec import BLACK_BOXES  # noqa: F401  (the names --black-box takes)

# The smoothing beta of the estimate, as a multiple of the learning rate: BAR's 0.1 at its 0.01. Tied to the step
# so that one knob sets the program's scale: a box whose outputs move more under the program than between series
# (efficientword's embedding: 0.005 for a program of 0.001, against a spread of 0.0004 between series) needs
# smaller steps and smaller probes alike.
SMOOTHING_PER_LR = 10.0
LEARNING_RATE = 0.01  # Adam's, for the program and the head (BAR's)
EFFICIENTWORD = ("first_iteration_siamese", "logmelcalc.tflite", "baseModel.tflite")


class BlackBox:
    """A source reached only by queries: ``box(waves)`` with waves (B, 16000) -> (B, D) float32; ``queries`` counts
    the waveforms it was asked about. ``fn`` receives a numpy array, never a tensor."""

    def __init__(self, fn, name):
        self.fn, self.name, self.queries = fn, name, 0

    def __call__(self, waves):
        waves = np.ascontiguousarray(waves, np.float32)
        out = np.asarray(self.fn(waves))
        self.queries += len(waves)
        if out.ndim != 2 or len(out) != len(waves):
            raise UsageError(f"--black-box {self.name} returned an array of shape {out.shape} for {len(waves)} "
                             "waveforms; a black box must give one output vector per waveform")
        return out.astype(np.float32)


def _interpreter(path):
    """TensorFlow's TFLite interpreter for ``path``, tensors allocated (its notice that LiteRT will replace it is
    TensorFlow's business, not the run's: silenced)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    return interpreter


def tflite_black_box(path=None):
    """V2Sa exported to TensorFlow Lite (``weight/v2sa.tflite``, ``speech.tflite_export``): 16,000 samples -> its 36
    class probabilities, run by TensorFlow's TFLite interpreter one waveform at a time; the same model a white-box
    run reprograms, so the two can be compared."""
    import tensorflow as tf

    path = path or os.path.join(REPO, "weight", "v2sa.tflite")
    if not os.path.isfile(path):
        raise UsageError(f"--black-box tflite reads {path}; write it with python scripts/export_tflite.py --out {path}")
    interpreter = _interpreter(path)
    given, read = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def probabilities(waves):
        out = []
        for wave in waves:
            interpreter.set_tensor(given, wave[None])
            interpreter.invoke()
            out.append(interpreter.get_tensor(read)[0])
        return np.stack(out)

    return BlackBox(probabilities, "tflite")


def efficientword_black_box():
    """efficientword-net 1.0.5's keyword embedder (Apache-2.0): its two TFLite files, 16,000 samples -> 98 x 64
    log-mel -> a 128-value embedding, run by TensorFlow's TFLite interpreter one waveform at a time."""
    spec = importlib.util.find_spec("eff_word_net")
    folder = os.path.join(os.path.dirname(spec.origin), "models", EFFICIENTWORD[0]) if spec and spec.origin else ""
    paths = [os.path.join(folder, name) for name in EFFICIENTWORD[1:]]
    if not all(os.path.isfile(p) for p in paths):
        raise UsageError("--black-box efficientword reads the TFLite files of the efficientword-net package; install "
                         "it with pip install efficientword-net==1.0.5 --no-deps")
    interpreters = [_interpreter(p) for p in paths]

    def run(it, x):
        it.set_tensor(it.get_input_details()[0]["index"], x.reshape(it.get_input_details()[0]["shape"]))
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])

    def embed(waves):
        return np.stack([run(interpreters[1], run(interpreters[0], w[None])).reshape(-1) for w in waves])

    return BlackBox(embed, "efficientword")


def open_black_box(name):
    """The ``BlackBox`` a ``--black-box`` name stands for."""
    if name == "tflite":
        return tflite_black_box()
    if name == "efficientword":
        return efficientword_black_box()
    raise UsageError(f"--black-box must be one of {', '.join(BLACK_BOXES)}, got {name!r}")


def program_basis(size, samples=SAMPLE_RATE):
    """(samples, size) matrix B: the program is B @ c, ``size`` coefficients linearly interpolated over the samples."""
    position = np.linspace(0, size - 1, samples)
    left = np.minimum(np.floor(position).astype(int), size - 2) if size > 1 else np.zeros(samples, int)
    weight = position - left
    basis = np.zeros((samples, size), np.float32)
    basis[np.arange(samples), left] = 1 - weight
    if size > 1:
        basis[np.arange(samples), left + 1] += weight
    return basis


def probe_offsets(directions, antithetic=False):
    """The offsets of one step's programs from c, (1 + q, d) or, ``antithetic``, (1 + 2q, d): 0 (the program
    itself, whose outputs the head and the logged loss use), then u_1..u_q, then -u_1..-u_q when antithetic."""
    rows = [np.zeros((1, directions.shape[1])), directions] + ([-directions] if antithetic else [])
    return np.concatenate(rows)


def zo_estimate(losses, directions, beta, antithetic=False):
    """The gradient estimate from the losses at c + beta x ``probe_offsets``: BAR's forward differences, (d / q)
    sum_j (f(c + beta u_j) - f(c)) / beta u_j for the q unit ``directions`` (q, d); ``antithetic``: central
    differences, (d / q) sum_j (f(c + beta u_j) - f(c - beta u_j)) / (2 beta) u_j, whose error has no term in
    the curvature along u_j (Nesterov and Spokoiny 2017), for q more queries of the batch."""
    q, d = directions.shape
    slopes = (losses[1:q + 1] - losses[q + 1:]) / (2 * beta) if antithetic else (losses[1:] - losses[0]) / beta
    return (d / q) * slopes @ directions


def unit_directions(rng, q, d):
    """q directions drawn uniformly on the unit sphere of R^d."""
    u = rng.standard_normal((q, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


class Adam:
    """Adam on one numpy array (Kingma and Ba 2015, Keras' defaults but the learning rate)."""

    def __init__(self, shape, lr=LEARNING_RATE, b1=0.9, b2=0.999, eps=1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m, self.v, self.t = np.zeros(shape), np.zeros(shape), 0

    def step(self, value, grad):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad ** 2
        m, v = self.m / (1 - self.b1 ** self.t), self.v / (1 - self.b2 ** self.t)
        return value - self.lr * m / (np.sqrt(v) + self.eps)

    def state(self, prefix):
        return {f"{prefix}_m": self.m, f"{prefix}_v": self.v, f"{prefix}_t": np.array(self.t)}

    def load(self, arrays, prefix):
        self.m, self.v, self.t = arrays[f"{prefix}_m"], arrays[f"{prefix}_v"], int(arrays[f"{prefix}_t"])


def softmax(logits):
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def cross_entropies(probs, y):
    """Per-row cross-entropy, clipped as Keras clips it."""
    return -np.log(np.clip(np.take_along_axis(probs, y[..., None], axis=-1)[..., 0], 1e-7, 1 - 1e-7))


def queries_per_series(config):
    """Queries one training series costs in a step: directions + 1, or 2 x directions + 1 when antithetic."""
    return (2 if config.antithetic else 1) * config.directions + 1


def step_cost(config):
    """Queries of one full training step: ``queries_per_series`` x the batch size."""
    return queries_per_series(config) * config.batch_size
