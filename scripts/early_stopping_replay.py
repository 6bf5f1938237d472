"""Replay early stopping on finished 100-epoch runs: how often would a patience change the chosen epoch, and how
much training would it save?

    python scripts/early_stopping_replay.py results/ucr19 --patience 10 20 30 40
    python scripts/early_stopping_replay.py results --recursive          # every committed full-length history

In:  run folders (``history.csv`` with a ``val_ce`` column, ``summary.json`` for the wall time), each trained for
     all its epochs without early stopping.
Out: per patience P, a Markdown row: runs whose chosen epoch (lowest validation cross-entropy) stays the same when
     training stops after P epochs without a lower one, the fraction of epochs and of wall time (each run's time
     split evenly over its epochs) that would be trained, and how much the validation cross-entropy of the chosen
     epoch rises where it changes. Then one line per run whose chosen epoch changes at the first patience.
The rule is the one ``training.fit`` applies (``utils.ResumableCheckpoint``: stop when the epochs since the best
reach P); ties keep the earlier epoch, as ``numpy.argmin`` does.
"""

import argparse
import csv
import glob
import json
import os

import numpy as np


def stopped(values, patience):
    """(chosen epoch, epochs trained) when training on ``values`` (val CE per epoch) stops after ``patience``."""
    best, best_value, wait = 0, np.inf, 0
    for epoch, value in enumerate(values):
        if value < best_value:
            best, best_value, wait = epoch, value, 0
        else:
            wait += 1
        if wait >= patience:
            return best, epoch + 1
    return best, len(values)


def histories(paths, recursive=False, min_epochs=100):
    """[(run folder, val CE per epoch, wall seconds)] of the full-length runs under ``paths``."""
    found = []
    for path in paths:
        pattern = os.path.join(path, "**", "history.csv") if recursive else os.path.join(path, "*", "history.csv")
        for history in sorted(glob.glob(pattern, recursive=recursive)):
            folder = os.path.dirname(history)
            with open(history) as fh:
                rows = list(csv.DictReader(fh))
            if len(rows) < min_epochs or "val_ce" not in rows[0] or not os.path.isfile(f"{folder}/summary.json"):
                continue
            with open(os.path.join(folder, "summary.json")) as fh:
                summary = json.load(fh)
            if summary.get("config", {}).get("patience"):
                continue  # already early-stopped
            found.append((folder, np.array([float(r["val_ce"]) for r in rows]), summary["wall_seconds"]))
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="Folders of run folders.")
    p.add_argument("--patience", nargs="+", type=int, default=[10, 20, 30, 40])
    p.add_argument("--recursive", action="store_true", help="Every run folder below the paths, at any depth.")
    args = p.parse_args(argv)
    runs = histories(args.paths, args.recursive)
    if not runs:
        raise SystemExit("early_stopping_replay.py: no full-length runs with a val_ce history under the paths")
    print(f"{len(runs)} runs of {min(len(v) for _, v, _ in runs)}+ epochs\n")
    print("| patience | same chosen epoch | epochs trained | wall time trained | val CE rise where it changed "
          "(mean / max) |")
    print("|---|---|---|---|---|")
    for patience in args.patience:
        same, epochs, total, seconds, rises = 0, 0, 0, 0.0, []
        for _, values, wall in runs:
            full = int(np.argmin(values))
            best, trained = stopped(values, patience)
            same += best == full
            epochs, total = epochs + trained, total + len(values)
            seconds += wall * trained / len(values)
            if best != full:
                rises.append(values[best] - values[full])
        wall_total = sum(w for _, _, w in runs)
        rise = f"{np.mean(rises):.3f} / {np.max(rises):.3f}" if rises else "-"
        print(f"| {patience} | {same} of {len(runs)} | {100 * epochs / total:.0f}% | "
              f"{100 * seconds / wall_total:.0f}% | {rise} |")
    print(f"\nRuns whose chosen epoch changes with patience {args.patience[0]}:")
    for folder, values, _ in runs:
        full = int(np.argmin(values))
        best, trained = stopped(values, args.patience[0])
        if best != full:
            print(f"- {folder}: epoch {full} -> {best} (stops after {trained}), val CE {values[full]:.3f} -> "
                  f"{values[best]:.3f}")


if __name__ == "__main__":
    main()
