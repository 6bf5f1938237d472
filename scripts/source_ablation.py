r"""What the source model is worth: V2S accuracy against the source model's accuracy on real speech, and against
the paper's Table 4 (other source architectures).

    python scripts/source_ablation.py --gsc-dir ../shared/gsc --out img/source_ablation.png \
        random=results/screens/sources/random \
        synthetic:weight/v2sa_synthetic.weights.h5=results/screens/sources/synthetic \
        shipped:weight/v2sa.weights.h5=results/screens/s10/default,results/ucr19_v2 \
        gscv2:weight/v2sa_gscv2.weights.h5=results/screens/s10/gscv2,results/screens/sources/gscv2

In:  sources as ``name[:weights]=folder[,folder...]``: a label, the source weights (``random`` alone: an untrained
     V2Sa, seeded as ``v2s_main.py --source-weights random`` builds it) and folders of V2S run folders trained on
     that source (``scripts/screen.py`` output or a sweep); ``--gsc-dir``, a Speech Commands layout folder.
Out: a markdown table on stdout (per source: architecture and parameters from the model card, real-speech accuracy
     on the validation speakers of ``--gsc-dir``, all clips and the 10 core words; mean validation cross-entropy and
     mean test accuracy over the datasets every source has, on how many of them each source has the lowest
     validation cross-entropy, and against the first source: the sets where its validation cross-entropy is lower
     and the Wilcoxon signed-rank p; the paper's Table 4 mean for that architecture, over its 30 sets with
     test-selected settings, ``reference/paper_table4.csv``), a table per dataset, with ``--out`` a PNG scatter
     of mean V2S test accuracy against core-word accuracy on real speech, and with ``--paper-out`` a PNG of mean
     V2S test accuracy here against the paper's Table 4 figure for each source's architecture (does the paper's
     ordering hold). Only datasets present for every source count, each with its lowest seed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

PAPER_TABLE4 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference",
                            "paper_table4.csv")


def paper_table4(path=PAPER_TABLE4):
    """{architecture: mean test accuracy (%) over the paper's 30 sets} from the paper's Table 4."""
    import csv

    with open(path) as fh:
        return {row["architecture"]: float(row["mean_accuracy"]) for row in csv.DictReader(fh)}


def parse_source(text):
    """``name[:weights]=folder[,folder...]`` -> (name, weights or "random", [folders])."""
    head, sep, folders = text.partition("=")
    name, _, weights = head.partition(":")
    if not sep or not name or not folders:
        raise SystemExit(f"source_ablation.py: error: expected name[:weights]=folder[,folder...], got {text!r}")
    return name, weights or ("random" if name == "random" else None), folders.split(",")


def runs_by_dataset(folders):
    """{dataset: summary} for the lowest seed of each dataset in folders of run folders."""
    from results_table import collect

    found = {}
    for summary in (s for folder in folders for s in collect(folder)):
        seed = summary["config"]["seed"]
        if summary["dataset"] not in found or seed < found[summary["dataset"]]["config"]["seed"]:
            found[summary["dataset"]] = summary
    return found


def validation_speakers(gsc_dir):
    """The clips of the validation speakers of a GSC-layout folder (read once, scored for every source)."""
    from speech.commands import load_gsc_folder, speaker_split

    data, split = load_gsc_folder(gsc_dir, progress=False)
    if split is None:
        split = speaker_split(data.speakers)
    return data.subset(split == "val")


def source_model(weights):
    """The source model of a weights file (architecture from its card), or the untrained V2Sa for ``random``."""
    import keras

    from speech.source_model import build_source_model, load_source_model

    if weights == "random":
        keras.utils.set_random_seed(0)
        return build_source_model("V2Sa")
    return load_source_model(weights)


def speech_accuracy(model, clips):
    """(all clips, 10 core words) accuracy of a source model on ``clips``."""
    from speech.evaluation import evaluate

    result = evaluate(model, clips)
    return result["accuracy"], result["core_words_accuracy"]


def architecture_of(weights):
    """(architecture, parameters) of a source, None for a source given by its runs alone."""
    from speech.source_model import model_card

    if weights is None:
        return None
    if weights == "random":
        return "V2Sa", None
    card = model_card(weights)
    return card.get("architecture", "V2Sa"), card.get("parameters")


def plot_against_paper(rows, n_sets, path):
    """Scatter of each source's mean test accuracy here against the paper's Table 4 mean for its architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils import save_figure

    placed = [r for r in rows if r["paper"] is not None]
    if not placed:
        raise SystemExit("source_ablation.py: error: --paper-out needs a source whose model card names an "
                         "architecture of the paper's Table 4")
    fig, ax = plt.subplots(figsize=(5, 4))
    for r in placed:
        ax.scatter(r["paper"], r["test"], s=40)
        label = r["name"] if r["name"] == r["arch"][0] else f"{r['name']} ({r['arch'][0]})"
        ax.annotate(label, (r["paper"], r["test"]), textcoords="offset points", xytext=(6, -4))
    for r in (r for r in rows if r["weights"] == "random"):
        ax.axhline(r["test"], color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"{r['name']}: untrained V2Sa", (0.02, r["test"]), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(0, 4), color="grey")
    ax.margins(x=0.3, y=0.1)
    ax.set_xlabel("paper, Table 4: mean test accuracy, 30 UCR sets (%)")
    ax.set_ylabel(f"here: mean test accuracy, {n_sets} UCR sets (%)")
    ax.set_title("Source architectures: here against the paper")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    print(f"Wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="name[:weights]=folder[,folder...], one per source model.")
    p.add_argument("--gsc-dir", required=True, help="Speech Commands layout folder for the real-speech accuracy.")
    p.add_argument("--out", help="PNG of V2S mean test accuracy against real-speech accuracy.")
    p.add_argument("--paper-out", help="PNG of V2S mean test accuracy here against the paper's Table 4 figure.")
    args = p.parse_args(argv)
    sources = [parse_source(s) for s in args.sources]
    missing = [f for _, _, folders in sources for f in folders if not os.path.isdir(f)]
    if missing:
        raise SystemExit(f"source_ablation.py: error: {missing[0]} is not a folder of runs")
    runs = {name: runs_by_dataset(folders) for name, _, folders in sources}
    shared = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not shared:
        raise SystemExit("source_ablation.py: error: no dataset is in every folder")
    best = {name: 0 for name, _, _ in sources}
    for dataset in shared:
        best[min(runs, key=lambda n: runs[n][dataset]["val_cross_entropy"])] += 1
    clips = validation_speakers(args.gsc_dir) if any(weights for _, weights, _ in sources) else None
    from results_table import wilcoxon_p

    paper = paper_table4()
    first = [runs[sources[0][0]][d]["val_cross_entropy"] for d in shared]
    rows = []
    for name, weights, _ in sources:
        val_ce = [runs[name][d]["val_cross_entropy"] for d in shared]
        arch = architecture_of(weights)
        rows.append({"name": name, "weights": weights, "arch": arch,
                     "speech": speech_accuracy(source_model(weights), clips) if weights else None,
                     "val_ce": float(np.mean(val_ce)),
                     "test": 100 * float(np.mean([runs[name][d]["test_accuracy"] for d in shared])),
                     "best": best[name], "lower": sum(v < f for v, f in zip(val_ce, first)),
                     "p": wilcoxon_p(first, val_ce),
                     "paper": paper.get(arch[0]) if arch and weights != "random" else None})
    print(f"{len(shared)} datasets: {', '.join(shared)}\n")
    print(f"| source | weights | architecture (parameters) | real speech: all clips / 10 core words | mean val CE | "
          f"mean test % | lowest val CE | val CE below {sources[0][0]} (Wilcoxon p) | paper's Table 4 |")
    print("|---" * 9 + "|")
    for r in rows:
        speech = "not measured" if r["speech"] is None else " / ".join(f"{100 * a:.1f}%" for a in r["speech"])
        arch = "-" if r["arch"] is None else (f"{r['arch'][0]} (untrained)" if r["weights"] == "random" else
                                              f"{r['arch'][0]} ({r['arch'][1]:,})" if r["arch"][1] else r["arch"][0])
        versus = "-" if r is rows[0] else f"{r['lower']} of {len(shared)} ({r['p']:.2g})"
        paper_mean = "-" if r["paper"] is None else f"{r['paper']:.2f}"
        print(f"| {r['name']} | `{r['weights'] or '-'}` | {arch} | {speech} | {r['val_ce']:.3f} | {r['test']:.2f} | "
              f"{r['best']} of {len(shared)} | {versus} | {paper_mean} |")
    names = [name for name, _, _ in sources]
    print("\n| dataset | " + " | ".join(f"{n}: val CE / test %" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for dataset in shared:
        print(f"| {dataset} | " + " | ".join(f"{runs[n][dataset]['val_cross_entropy']:.3f} / "
                                            f"{100 * runs[n][dataset]['test_accuracy']:.2f}" for n in names) + " |")
    if args.paper_out:
        plot_against_paper(rows, len(shared), args.paper_out)
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        for r in (r for r in rows if r["speech"] is not None):
            ax.scatter(100 * r["speech"][1], r["test"], s=40)
            ax.annotate(r["name"], (100 * r["speech"][1], r["test"]), textcoords="offset points", xytext=(5, -10))
        ax.set_xlabel("source model on real speech: 10 core words, validation speakers (%)")
        ax.set_ylabel(f"V2S mean test accuracy over {len(shared)} UCR sets (%)")
        ax.set_title("What the source model is worth")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        fig.savefig(args.out, dpi=120)
        print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
