"""Wall-clock timing shared by the bench scripts.

In:  ``run``, a zero-argument callable that does one timed pass (a batch, an epoch, a fit over some samples);
     ``repeats``, how many passes to time; optionally ``warm_up``, a cheaper call that traces the same graphs.
Out: the median wall seconds of one pass. The first call of a ``tf.function`` or Keras step traces its graph
     (seconds), so the warm-up is never timed; the median keeps one slow pass (another process waking) from
     moving the figure.
"""

import time

import numpy as np


def median_seconds(run, repeats, warm_up=None):
    """Median wall seconds of ``run()`` over ``repeats`` timed passes, after one untimed ``warm_up()`` (or run)."""
    (warm_up or run)()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
