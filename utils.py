"""Shared helpers: seeding, atomic file writes, and a resumable checkpoint / early-stopping callback."""

import json
import os
import random
import tempfile
import time

import keras
import numpy as np


def set_seed(seed):
    """Seed Python, NumPy and Keras (TensorFlow) random generators."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step, so readers never see half a file.

    The temporary file keeps ``path``'s extension because Keras picks the format from it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(path)
    if base.endswith(".weights"):  # keep the double extension Keras insists on
        ext = ".weights" + ext
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=ext)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=_jsonable)
            fh.write("\n")

    atomic_write(path, write)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Checkpoint every epoch so a killed run resumes where it stopped, and stop early on a monitored metric.

    Writes into ``folder`` (each file atomically):
      ``last.keras``          the whole model with its optimizer state, after the latest finished epoch;
      ``best.weights.h5``     the weights of the epoch with the lowest ``monitor`` value so far;
      ``state.json``          finished epochs, best value and epoch, epochs without improvement, history,
                              ``batch``: training batches finished in the unfinished epoch (0 at an epoch's end),
                              and ``seconds``: wall time since the checkpoint was first opened, summed over every
                              process that resumed it (the time between a kill and the resume is not counted).
    ``resume_state(folder)`` reads it back; pass its ``epoch`` as ``initial_epoch`` to ``fit``.

    With ``every_seconds``, ``last.keras`` and ``state.json`` are also written within an epoch, after the first
    training batch that ends that long after the last write, so a run whose epochs take an hour loses minutes, not
    the epoch, when it is killed; the trainer resumes at ``state["batch"]`` of ``state["epoch"]``. A trainer that
    feeds an epoch from its middle sets ``batch_offset`` to the batches it skipped.
    """

    def __init__(self, folder, monitor="val_loss", patience=None, every_seconds=None):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.patience = patience
        self.every_seconds = every_seconds
        self.batch_offset = 0
        self.state = resume_state(folder) or {"epoch": 0, "best": None, "best_epoch": None, "wait": 0,
                                              "history": {}}
        self.state.setdefault("seconds", 0.0)
        self.state.setdefault("batch", 0)
        self._clock = self._saved = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.every_seconds is None or time.time() - self._saved < self.every_seconds:
            return
        self.state["batch"] = self.batch_offset + batch + 1
        self._save()

    def on_epoch_end(self, epoch, logs=None):
        self.record(epoch, logs)
        self.finish_epoch(epoch)

    def record(self, epoch, logs=None):
        """Add epoch ``epoch``'s ``logs`` to the history; save the model's weights if it is the best epoch so far.

        The first half of ``on_epoch_end``: a training loop that evaluates other weights than it trains (an
        average of them) calls it with those weights in the model, then puts the trained ones back and calls
        ``finish_epoch``, so ``last.keras`` resumes the training and ``best.weights.h5`` holds what was evaluated.
        """
        logs = dict(logs or {})
        if "learning_rate" not in logs:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
        for key, value in logs.items():
            self.state["history"].setdefault(key, []).append(float(value))
        value = logs.get(self.monitor)
        if value is not None and (self.state["best"] is None or value < self.state["best"]):
            self.state.update(best=float(value), best_epoch=epoch, wait=0)
            atomic_write(os.path.join(self.folder, "best.weights.h5"), self.model.save_weights)
        else:
            self.state["wait"] += 1

    def finish_epoch(self, epoch):
        """Write ``last.keras`` and ``state.json`` after epoch ``epoch``; stop training once patience runs out."""
        self.state.update(epoch=epoch + 1, batch=0)
        self.batch_offset = 0
        self._save()
        if self.patience is not None and self.state["wait"] >= self.patience:
            self.model.stop_training = True

    def _save(self):
        """Write ``last.keras`` (model and optimizer) and then ``state.json``, each atomically."""
        now = time.time()
        self.state["seconds"] += now - self._clock
        self._clock = self._saved = now
        atomic_write(os.path.join(self.folder, "last.keras"), self.model.save)
        write_json(os.path.join(self.folder, "state.json"), self.state)

    def restore_best(self):
        """Load the best epoch's weights into the model (no-op when no epoch finished)."""
        path = os.path.join(self.folder, "best.weights.h5")
        if os.path.isfile(path):
            self.model.load_weights(path)


def resume_state(folder):
    """The state a ``ResumableCheckpoint`` left in ``folder``, or None when there is none."""
    path = os.path.join(folder, "state.json")
    return read_json(path) if os.path.isfile(path) else None


def save_figure(fig, path, dpi=100):
    """Write a matplotlib figure to ``path`` (its folder created if missing; format from the extension), atomically,
    and close it."""
    import matplotlib.pyplot as plt

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
    plt.close(fig)
