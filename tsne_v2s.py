"""tSNE of the source model's 36 logits on a training set: before reprogramming, after TF_a, after V2S (Figure 5).

    python tsne_v2s.py --v2s-run results/Coffee_reprogram_V2Sa_s0 --tf-run results/Coffee_transfer_V2Sa_s0 \
        --out img/tsne_coffee.png

In:  a finished V2S run folder (its model holds the frozen source and delta) and optionally a TF_a run folder.
Out: side-by-side tSNE embeddings (2-D) of the logits of the *training* series, coloured by class:
     (1) the frozen source model on the zero-padded series (no delta), (2) the fine-tuned TF_a source model,
     (3) the frozen source model on the reprogrammed series (padded + delta).
"""

import argparse
import os

import numpy as np


def embed(features, seed=0):
    """2-D tSNE of (N, d) features; perplexity shrinks for small N."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)


def logit_sets(v2s_run, tf_run=None, data_dir=None):
    """{panel title: (N, 36) logits} and the labels, for the training set of the V2S run's dataset."""
    import keras

    import ts_model  # noqa: F401  (registers the custom layers)
    from ts_model import source_of
    from swd import logits_model, reprogrammed_logits
    from ts_dataloader import load_ucr
    from v2s_main import read_summary

    summary = read_summary(os.path.join(v2s_run, "summary.json"))
    model = keras.saving.load_model(os.path.join(v2s_run, "model.keras"))
    data = load_ucr(summary["dataset"], data_dir=data_dir or summary["config"].get("data_dir"))
    x = data.x_train
    padded = np.asarray(model.get_layer("segment_padding")(x))
    sets = {"before reprogramming (frozen source, no delta)":
            logits_model(source_of(model)).predict(padded, verbose=0, batch_size=64)}
    if tf_run:
        tf_model = keras.saving.load_model(os.path.join(tf_run, "model.keras"))
        inner = next(l for l in tf_model.layers if l.name.endswith("_logits"))
        tf_padded = np.asarray(tf_model.get_layer("segment_padding")(x))
        sets["after transfer learning (TF_a)"] = inner.predict(tf_padded, verbose=0, batch_size=64)
    sets["after V2S reprogramming"] = reprogrammed_logits(model, x)
    return sets, data.y_train, data.name


def plot(sets, y, name, path, seed=0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (title, feats) in zip(axes[0], sets.items()):
        points = embed(feats, seed)
        for c in sorted(set(int(v) for v in y)):
            ax.scatter(points[y == c, 0], points[y == c, 1], color=colours(c % 10), s=12, label=f"class {c}")
        ax.set(xlabel="tSNE 1", ylabel="tSNE 2")
        ax.set_title(title, fontsize=10)
    axes[0][-1].legend(loc="best", fontsize=8)
    fig.suptitle(f"{name}: tSNE of the source model's 36 logits on the training set")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--v2s-run", required=True, help="A finished reprogram run folder.")
    p.add_argument("--tf-run", default=None, help="A finished --mode transfer run folder on the same dataset.")
    p.add_argument("--data-dir", default=None, help="UCR folder, if the run's own --data-dir moved.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="tsne.png", help="Output figure (.png or .pdf).")
    args = p.parse_args(argv)
    from utils import cli_errors

    with cli_errors("tsne_v2s.py"):
        sets, y, name = logit_sets(args.v2s_run, args.tf_run, args.data_dir)
    plot(sets, y, name, args.out, args.seed)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
