"""Sliced Wasserstein distance (SWD) between source-speech outputs and reprogrammed target outputs (Table 3, Fig. 3).

In:  the frozen source model's outputs on held-out source speech (the synthetic corpus' validation voices, or a
     GSC-layout folder), shape (n, F), and its outputs on reprogrammed target series, shape (N, F): the 36 logits
     (the paper's space), or, for a run with a head, what the head reads (the 128-value attention vector; the
     548 pooled features of the layers head); ``table --space logits`` compares the logits whatever the head reads
     (an attention-head run's model holds the source only up to the attention vector: refused).
Out: the SWD between the two clouds (POT's ``ot.sliced_wasserstein_distance``, 1,000 seeded projections).

    python v2s_main.py --swd --out runs/coffee_swd                # records the SWD after every epoch
    python swd.py plot runs/coffee_swd                            # -> runs/coffee_swd/swd_curve.png (Figure 3)
    python swd.py table runs [--gsc-dir ../shared/gsc] [--space logits]   # Table 3: mean / median over runs

``SWDCallback`` records the SWD after every epoch when ``v2s_main.py --swd`` is given.
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import glob
import os

import numpy as np

from engine.errors import UsageError, cli_errors
from speech.spec import FEATURE_SPACES

PROJECTIONS = 1000


def sliced_wasserstein(a, b, projections=PROJECTIONS, seed=0):
    """SWD between point clouds ``a`` (n, d) and ``b`` (m, d), each point weighted equally."""
    import ot

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(ot.sliced_wasserstein_distance(a, b, n_projections=projections, seed=seed))


def source_reference_features(source, gsc_dir=None, max_clips=1000, seed=0, space="read"):
    """``ts_model.source_features`` of ``source`` on held-out source speech: a GSC folder's validation speakers, or
    synthetic val voices."""
    from ts_model import source_features

    if gsc_dir:
        from speech.commands import load_gsc_folder, speaker_split

        data, split = load_gsc_folder(gsc_dir, progress=False)
        split = split if split is not None else speaker_split(data.speakers)
        x = data.x[split == "val"]
    else:
        from speech.synthetic import CorpusConfig, load_or_generate

        x = load_or_generate(CorpusConfig(), splits=("val",), progress=False)[0].x
    if len(x) > max_clips:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_clips, replace=False))]
    return source_features(source, space).predict(x, batch_size=64, verbose=0)


class SWDCallback:
    """Adds ``swd`` (source speech vs reprogrammed training series, in the space of ``source_features``) to the
    logs of every epoch (an epoch callback of ``engine.training.fit``)."""

    def __init__(self, reference_features, x_train, seed=0):
        self.reference, self.x_train, self.seed = reference_features, x_train, seed
        self.model = self.features = None

    def set_model(self, model):
        self.model = model

    def on_epoch_end(self, epoch, logs=None):
        from ts_model import source_pass

        if logs is not None:
            self.features = self.features or source_pass(self.model, program=0)  # traced at the first epoch only
            logs["swd"] = sliced_wasserstein(self.reference, self.features(self.x_train), seed=self.seed)


def plot_curve(run, path):
    """Figure 3: validation accuracy, validation loss and SWD per epoch of a run recorded with --swd."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = os.path.join(run, "history.csv")
    if not os.path.isfile(history):
        raise UsageError(f"{run} is not a run folder (no history.csv)")
    with open(history) as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "swd" not in rows[0]:
        raise UsageError(f"{history} has no 'swd' column; train with v2s_main.py --swd")
    epochs = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    loss_key = "val_ce" if "val_ce" in rows[0] else "val_loss"  # v2s_main selects epochs on val_ce
    for ax, key, label in zip(axes, ("val_accuracy", loss_key, "swd"),
                              ("validation accuracy", "validation loss (cross-entropy)",
                               "sliced Wasserstein distance")):
        ax.plot(epochs, [float(r[key]) for r in rows])
        ax.set(xlabel="epoch", ylabel=label, title=label)
    fig.suptitle(f"{os.path.basename(os.path.normpath(run))}: accuracy, loss and SWD per epoch")
    fig.tight_layout()
    from utils import save_figure

    save_figure(fig, path)


def table(folder, gsc_dir=None, space="read"):
    """SWD of every reprogramming run under ``folder``: per run, then mean and median (Table 3); ``space``: what
    each run's model reads of its source, or the source's logits whatever it reads (the paper's space)."""
    from engine.run_folder import load_run
    from ts_dataloader import load_ucr
    from ts_model import reprogrammed_features, source_features, source_of

    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a folder of runs")
    # One reference per feature space (the logits of a mapping run, the attention vector of a head run): a folder
    # may hold both, and the two are never measured against each other.
    rows, references = [], {}
    for summary_path in sorted(glob.glob(os.path.join(folder, "*", "summary.json"))):
        run = load_run(os.path.dirname(summary_path))
        if run.config["mode"] != "reprogram":
            continue
        source = source_of(run.model)
        kind = source_features(source, space).layers[-1].name
        if kind not in references:
            references[kind] = source_reference_features(source, gsc_dir, space=space)
        data = load_ucr(run.summary["dataset"], data_dir=run.config.get("data_dir"))
        features = reprogrammed_features(run.model, data.x_train, space=space)
        rows.append((run.summary["dataset"], sliced_wasserstein(references[kind], features)))
    if not rows:
        raise UsageError(f"no reprogram runs (*/summary.json) under {folder}")
    return (rows,) + mean_and_median([v for _, v in rows])


def mean_and_median(values):
    """Table 3's two summaries of per-run SWD values."""
    return float(np.mean(values)), float(np.median(values))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("plot", help="Figure 3 from a run trained with --swd.")
    pp.add_argument("run")
    pp.add_argument("--out", default=None, help="Output figure. Default: swd_curve.png in the run folder.")
    pt = sub.add_parser("table", help="Table 3: mean / median SWD over the reprogramming runs in a folder.")
    pt.add_argument("folder")
    pt.add_argument("--gsc-dir", default=None, help="Source speech reference (default: synthetic val voices).")
    pt.add_argument("--space", choices=FEATURE_SPACES, default="read",
                    help="Compare what each run's model reads of its source (default), or the source's 36 logits "
                         "whatever the head reads: the paper's space, comparable with its Table 3.")
    args = p.parse_args(argv)
    with cli_errors("swd.py"):
        if args.command == "plot":
            args.out = args.out or os.path.join(args.run, "swd_curve.png")
            plot_curve(args.run, args.out)
            print(f"Wrote {args.out}")
            return None
        rows, mean, median = table(args.folder, args.gsc_dir, args.space)
    print("| dataset | SWD |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.3f} |")
    print(f"| **mean** | **{mean:.3f}** |\n| **median** | **{median:.3f}** |")
    return rows, mean, median


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
