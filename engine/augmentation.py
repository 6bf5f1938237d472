"""Training-time augmentation of target series: jitter and scaling, drawn afresh for every batch.

In:  a batch of series ``x`` (B, L) float32, a NumPy ``Generator``, and the training set's standard deviation
     ``scale`` (one float, in the series' own units).
Out: (B, L) float32: ``x * s + e`` with one factor ``s ~ N(1, scaling^2)`` per series and noise
     ``e ~ N(0, (jitter * scale)^2)`` per sample. With both strengths 0 the batch comes back unchanged.

Jitter and scaling are the two simplest label-preserving transforms of the time-series augmentation literature
(Um et al., "Data augmentation of wearable sensor data for Parkinson's disease monitoring using convolutional
neural networks", ICMI 2017; surveyed by Iwana and Uchida, PLOS ONE 2021, whose defaults are jitter 0.03 and
scaling 0.1 for z-normalised series). Validation and test series are never augmented.
"""

import numpy as np


class Augmentation:
    """Jitter and scaling of strengths ``jitter`` and ``scaling`` (both >= 0; 0 turns that transform off)."""

    def __init__(self, jitter=0.0, scaling=0.0):
        self.jitter, self.scaling = float(jitter), float(scaling)

    @property
    def active(self):
        return self.jitter > 0 or self.scaling > 0

    def __call__(self, x, rng, scale=1.0):
        x = np.asarray(x, np.float32)
        if not self.active:
            return x
        out = x
        if self.scaling > 0:
            factor = rng.normal(1.0, self.scaling, size=(len(x),) + (1,) * (x.ndim - 1))  # one per series
            out = out * factor.astype(np.float32)
        if self.jitter > 0:
            out = out + rng.normal(0.0, self.jitter * scale, size=x.shape).astype(np.float32)
        return out


def augmentation_rng(seed, epoch):
    """The generator of epoch ``epoch``'s augmentation: fixed by (seed, epoch), so a resumed run draws the same."""
    return np.random.default_rng([seed, epoch, 1])
