"""A run folder: what a finished V2S run leaves on disk, and how to read it back.

In:  a folder written by ``engine.runs.train`` (or by ``v2s_main.py``, its command line).
Out: ``Run`` (``folder``, ``summary`` dict, ``config`` dict, ``model`` loaded from model.keras on first use,
     ``history()``: {metric: [value per epoch]}); ``read_summary`` for one summary.json.

Files of a run folder: ``summary.json`` (settings, split sizes, best epoch, scores, wall time), ``history.csv``
(one row per epoch), ``curves.png``, ``model.keras``, ``best.weights.h5`` and ``ckpt/`` (resume state).
Summaries written before a setting existed are read with the value those runs used, so old sweeps stay comparable.
"""

import csv
import dataclasses
import os

import numpy as np

from engine.errors import UsageError
from speech.commands import SAMPLE_RATE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project root, one above engine/

# Settings added after runs were committed, with the value every earlier run used (see read_summary).
SETTINGS_BEFORE_THEY_EXISTED = {"cosine": False, "refit": False, "patience": 0, "ensemble": 1, "znorm": False,
                               "gain": False, "select": "none", "jitter": 0.0, "scaling": 0.0,
                               "max_seg": 10, "ema": 0.0, "head": "mapping",
                               "standardise": False, "encoding": "pad", "carrier": None, "deviation": None,
                               "depth": None, "clip": None, "program": "wave",
                               "head_fit": "train", "layout": "mix", "source_model": None,
                               "source_rate": SAMPLE_RATE, "source_layer": None, "black_box": None, "budget": 50000,
                               "directions": 10, "basis": 250, "antithetic": False}
# What a run, and the figures drawn from it, write into a run folder (fnmatch patterns): nothing else may be there
# for a run to write into the folder, or for --force to empty it (``foreign_entries``).
RUN_ENTRIES = ("summary.json", "history.csv", "curves.png", "model.keras", "best.weights.h5", "ckpt", "ckpt_refit",
               "candidates", "mappings.json", "tb", ".lock", ".write_test", ".tmp_*", "cam_*.png", "cam_*.pdf",
               "tsne.png", "tsne.pdf", "swd_curve.png", "swd_curve.pdf")
# Keys of configs written before RunConfig existed (the CLI's argparse namespace) that are not settings.
LEGACY_KEYS = ("mod", "net", "reference_schedule")


@dataclasses.dataclass
class Run:
    """A finished run: its folder and summary; ``model`` loads ``model.keras`` when first used."""

    folder: str
    summary: dict
    _model: object = None

    @property
    def config(self):
        return self.summary["config"]

    @property
    def model(self):
        if self._model is None:
            import keras

            import ts_model  # noqa: F401  (registers the V2S layers)

            path = os.path.join(self.folder, "model.keras")
            if not os.path.isfile(path):
                raise UsageError(f"{self.folder} has no model.keras (a run made elsewhere, committed without it?)")
            self._model = keras.saving.load_model(path)
        return self._model

    def history(self):
        """{metric: [value per epoch]} from history.csv."""
        with open(os.path.join(self.folder, "history.csv")) as fh:
            rows = list(csv.DictReader(fh))
        return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def read_summary(path):
    """A run's summary.json as a dict; settings added after the run are filled in with the values it used."""
    import json

    try:
        with open(path) as fh:
            summary = json.load(fh)
        config = summary["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path}: not a run summary ({type(err).__name__}: {err})") from None
    return dict(summary, config=upgraded_settings({k: v for k, v in config.items() if k not in LEGACY_KEYS}))


def upgraded_settings(settings):
    """Settings written by an earlier version (a summary's config, a checkpoint's run.json), with every setting
    added since filled in with the value those runs used."""
    return {**SETTINGS_BEFORE_THEY_EXISTED, **settings}


def foreign_entries(folder):
    """The entries of ``folder`` that no run wrote (``RUN_ENTRIES``), sorted; [] for a run folder, an empty one or
    one that does not exist."""
    import fnmatch

    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder)
                  if not any(fnmatch.fnmatch(name, pattern) for pattern in RUN_ENTRIES))


def load_run(folder):
    """The ``Run`` a finished run folder holds; a one-line ``UsageError`` when it is not one."""
    path = os.path.join(folder, "summary.json")
    if not os.path.isdir(folder):
        raise UsageError(f"run folder {folder} not found")
    if not os.path.isfile(path):
        raise UsageError(f"{folder} has no summary.json (not a finished run)")
    return Run(folder, read_summary(path))


def portable(value):
    """Paths inside the repository are stored relative to it, so committed summaries do not name this machine."""
    if isinstance(value, str) and os.path.isabs(value) and value.startswith(REPO + os.sep):
        return os.path.relpath(value, REPO)
    return value


def write_history(path, history):
    """history.csv: an ``epoch`` column, then one column per metric."""
    from utils import atomic_write

    keys = list(history)

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["epoch"] + keys)
            for i in range(len(history[keys[0]]) if keys else 0):
                w.writerow([i] + [history[k][i] for k in keys])

    atomic_write(path, write)


def plot_curves(path, history, title):
    """curves.png: training and validation accuracy and loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils import save_figure

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(len(history.get("loss", [])))
    for key, ax in (("accuracy", ax1), ("loss", ax2)):
        ax.plot(epochs, history.get(key, []), label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
