"""The black-box results: per dataset, white-box V2S runs beside black-box runs (their test accuracy, LP on the box's
outputs, queries, wall time), and a figure of validation accuracy against queries.

    python scripts/black_box_report.py --white V2Sa=results/screens/archive/fm_layers_lp_train \
        tflite=results/screens/black_box/tflite efficientword=results/screens/black_box/efficientword \
        --table results/notes/black_box_table.md --figure results/notes/black_box_queries.png

In:  folders of run folders (``scripts/screen.py`` output, seed 0): one ``--white name=folder`` per white-box
     screen (test %, wall seconds and epochs run shown), then one ``name=folder`` per black box. Only the datasets
     every folder has finished count.
Out: a markdown table (stdout, or ``--table``) and, with ``--figure``, a PNG: for each dataset, the validation
     accuracy of each black-box run after each epoch against the queries spent so far.
"""

import argparse
import csv
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import tf_setup  # noqa: E402,F401  (before TensorFlow loads: its log level)
import numpy as np  # noqa: E402


def finished(folder):
    """{dataset: (summary, run folder)} of a folder's finished seed-0 runs."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*_s0", "summary.json"))):
        with open(path) as fh:
            summary = json.load(fh)
        out[summary["dataset"]] = (summary, os.path.dirname(path))
    return out


def history(run):
    with open(os.path.join(run, "history.csv")) as fh:
        rows = list(csv.DictReader(fh))
    return [float(r["queries"]) for r in rows], [float(r["val_accuracy"]) for r in rows]


def table(whites, boxes):
    sets = sorted(set.intersection(*(set(r) for r in list(whites.values()) + list(boxes.values()))), key=str.lower)
    head = "| dataset |" + "".join(f" {n} test % (wall s, epochs) |" for n in whites) + "".join(
        f" {n} test % | {n} LP % | {n} queries (wall s, epochs) |" for n in boxes)
    lines = [head, "|---|" + "---|" * len(whites) + "---|---|---|" * len(boxes)]
    for d in sets:
        cells = []
        for runs in whites.values():
            w = runs[d][0]
            cells.append(f"{100 * w['test_accuracy']:.2f} ({w['wall_seconds']:.0f}, {w['epochs_run']})")
        for runs in boxes.values():
            s = runs[d][0]
            cells += [f"{100 * s['test_accuracy']:.2f}", f"{100 * s['lp_test_accuracy']:.2f}",
                      f"{s['queries']:,} ({s['wall_seconds']:.0f}, {s['epochs_run']})"]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    if sets:
        mean = lambda runs, key: np.mean([runs[d][0][key] for d in sets])  # noqa: E731
        cells = [f"{100 * mean(runs, 'test_accuracy'):.2f}" for runs in whites.values()]
        for runs in boxes.values():
            cells += [f"{100 * mean(runs, 'test_accuracy'):.2f}", f"{100 * mean(runs, 'lp_test_accuracy'):.2f}",
                      f"{mean(runs, 'queries'):,.0f}"]
        lines.append(f"| mean of {len(sets)} | " + " | ".join(cells) + " |")
    return "\n".join(lines), sets


def figure(path, boxes, sets):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils import save_figure

    cols = min(5, len(sets))
    rows = -(-len(sets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, d in zip(axes.flat, sets):
        for name, runs in boxes.items():
            queries, accuracy = history(runs[d][1])
            ax.plot(queries, accuracy, label=name)
        ax.set_title(d, fontsize=9)
        ax.set_xlabel("queries")
        ax.set_ylabel("validation accuracy")
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("boxes", nargs="+", metavar="NAME=FOLDER", help="Black-box screens.")
    p.add_argument("--white", action="append", required=True, metavar="NAME=FOLDER",
                   help="A white-box screen of the same datasets (repeat for several).")
    p.add_argument("--table", help="Write the table here (default: print it).")
    p.add_argument("--figure", help="Write the validation accuracy against queries here (PNG).")
    args = p.parse_args(argv)

    def named(items):
        out = {}
        for item in items:
            name, sep, folder = item.partition("=")
            if not sep:
                p.error(f"expected NAME=FOLDER, got {item!r}")
            if not os.path.isdir(folder):
                p.error(f"{folder}: no such folder")
            out[name] = finished(folder)
        return out

    whites, boxes = named(args.white), named(args.boxes)
    text, sets = table(whites, boxes)
    if args.table:
        with open(args.table, "w") as fh:
            fh.write(text + "\n")
    print(text)
    if args.figure and sets:
        figure(args.figure, boxes, sets)


if __name__ == "__main__":
    main()
