"""tSNE of the source model's outputs on a training set: before reprogramming, after TF_a, after V2S (Figure 5).

    python v2s_main.py && python v2s_main.py --mode transfer      # runs/Coffee_reprogram_V2Sa_s0, _transfer_
    python tsne_v2s.py --v2s-run runs/Coffee_reprogram_V2Sa_s0 --tf-run runs/Coffee_transfer_V2Sa_s0
                                                                   # -> runs/Coffee_reprogram_V2Sa_s0/tsne.png

In:  a finished V2S run folder (its model holds the frozen source and delta) and optionally a TF_a run folder.
Out: side-by-side tSNE embeddings (2-D) of the 36 logits of the *training* series, coloured by class:
     (1) the frozen source model on the zero-padded series (no delta), (2) the fine-tuned TF_a source model,
     (3) the frozen source model on the reprogrammed series (padded + delta). For a V2S run with the attention head
     panels (1) and (3) show the 128-value attention vector the head reads instead (``ts_model.source_features``).
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import os



def embed(features, seed=0):
    """2-D tSNE of (N, d) features; perplexity shrinks for small N (t-SNE needs it below N, and N of at least 3)."""
    from sklearn.manifold import TSNE

    from engine.errors import UsageError

    if len(features) < 3:
        raise UsageError(f"t-SNE needs at least 3 series to place; the training set has {len(features)}")
    perplexity = float(min(30.0, max(1.0, (len(features) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)


def feature_sets(v2s_run, tf_run=None, data_dir=None):
    """{panel title: (N, F) source outputs} and the labels, for the training set of the V2S run's dataset."""
    from engine.errors import UsageError
    from engine.run_folder import load_run
    from ts_dataloader import load_ucr
    from ts_model import encoded_series, reprogrammed_features, source_features, source_of

    v2s = load_run(v2s_run)
    if v2s.config["mode"] not in ("reprogram", "reprogram+finetune"):
        raise UsageError(f"--v2s-run {v2s_run} is a {v2s.config['mode']} run; it must be a reprogramming run")
    baseline = load_run(tf_run) if tf_run else None
    if baseline is not None:
        if baseline.config["mode"] != "transfer":
            raise UsageError(f"--tf-run {tf_run} is a {baseline.config['mode']} run; it must be a --mode transfer run")
        if baseline.summary["dataset"] != v2s.summary["dataset"]:
            raise UsageError(f"--tf-run {tf_run} is on {baseline.summary['dataset']}, --v2s-run on "
                             f"{v2s.summary['dataset']}; they must share the dataset")
    data = load_ucr(v2s.summary["dataset"], data_dir=data_dir or v2s.config.get("data_dir"))
    x = data.x_train
    sets = {"before reprogramming (frozen source, no delta)":
            source_features(source_of(v2s.model)).predict(encoded_series(v2s.model, x), verbose=0, batch_size=64)}
    if baseline is not None:
        inner = next(l for l in baseline.model.layers if l.name.endswith("_logits"))
        sets["after transfer learning (TF_a)"] = inner.predict(encoded_series(baseline.model, x), verbose=0,
                                                               batch_size=64)
    sets["after V2S reprogramming"] = reprogrammed_features(v2s.model, x)
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
    fig.suptitle(f"{name}: tSNE of the source model's outputs on the training set")
    fig.tight_layout()
    from utils import save_figure

    save_figure(fig, path, dpi=100)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--v2s-run", required=True, help="A finished reprogram run folder.")
    p.add_argument("--tf-run", default=None, help="A finished --mode transfer run folder on the same dataset.")
    p.add_argument("--data-dir", default=None, help="UCR folder, if the run's own --data-dir moved.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="Output figure (.png or .pdf). Default: tsne.png in the V2S run folder.")
    args = p.parse_args(argv)
    args.out = args.out or os.path.join(args.v2s_run, "tsne.png")
    from engine.errors import cli_errors

    with cli_errors("tsne_v2s.py"):
        sets, y, name = feature_sets(args.v2s_run, args.tf_run, args.data_dir)
        plot(sets, y, name, args.out, args.seed)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
