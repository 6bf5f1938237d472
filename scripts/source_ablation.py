"""What the source model is worth: V2S accuracy against the source model's accuracy on real speech.

    python scripts/source_ablation.py --gsc-dir ../shared/gsc --out img/source_ablation.png \
        random=results/screens/sources/random \
        synthetic:weight/v2sa_synthetic.weights.h5=results/screens/sources/synthetic \
        shipped:weight/v2sa.weights.h5=results/screens/s10/default,results/ucr19_v2 \
        gscv2:weight/v2sa_gscv2.weights.h5=results/screens/s10/gscv2,results/screens/sources/gscv2

In:  sources as ``name[:weights]=folder[,folder...]``: a label, the source weights (``random`` alone: an untrained
     V2Sa, seeded as ``v2s_main.py --source-weights random`` builds it) and folders of V2S run folders trained on
     that source (``scripts/screen.py`` output or a sweep); ``--gsc-dir``, a Speech Commands layout folder.
Out: a markdown table on stdout (per source: real-speech accuracy on the validation speakers of ``--gsc-dir``, all
     clips and the 10 core words; mean validation cross-entropy and mean test accuracy over the datasets every
     source has, and on how many of them each source has the lowest validation cross-entropy), a table per dataset,
     and with ``--out`` a PNG scatter of mean V2S test accuracy against core-word accuracy on real speech. Only datasets
     present for every source count, each with its lowest seed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


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


def speech_accuracy(weights, clips):
    """(all clips, 10 core words) accuracy of a source model on ``clips``."""
    import keras

    from speech.evaluation import evaluate
    from speech.source_model import build_source_model, load_source_model

    if weights == "random":
        keras.utils.set_random_seed(0)
        model = build_source_model("V2Sa")
    else:
        model = load_source_model(weights)
    result = evaluate(model, clips)
    return result["accuracy"], result["core_words_accuracy"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="name[:weights]=folder[,folder...], one per source model.")
    p.add_argument("--gsc-dir", required=True, help="Speech Commands layout folder for the real-speech accuracy.")
    p.add_argument("--out", help="PNG of V2S mean test accuracy against real-speech accuracy.")
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
    rows = []
    for name, weights, _ in sources:
        rows.append({"name": name, "weights": weights,
                     "speech": speech_accuracy(weights, clips) if weights else None,
                     "val_ce": float(np.mean([runs[name][d]["val_cross_entropy"] for d in shared])),
                     "test": 100 * float(np.mean([runs[name][d]["test_accuracy"] for d in shared])),
                     "best": best[name]})
    print(f"{len(shared)} datasets: {', '.join(shared)}\n")
    print("| source | weights | real speech: all clips / 10 core words | mean val CE | mean test % | lowest val CE |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        speech = "not measured" if r["speech"] is None else " / ".join(f"{100 * a:.1f}%" for a in r["speech"])
        print(f"| {r['name']} | `{r['weights'] or '-'}` | {speech} | {r['val_ce']:.3f} | {r['test']:.2f} | "
              f"{r['best']} of {len(shared)} |")
    names = [name for name, _, _ in sources]
    print("\n| dataset | " + " | ".join(f"{n}: val CE / test %" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for dataset in shared:
        print(f"| {dataset} | " + " | ".join(f"{runs[n][dataset]['val_cross_entropy']:.3f} / "
                                            f"{100 * runs[n][dataset]['test_accuracy']:.2f}" for n in names) + " |")
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
