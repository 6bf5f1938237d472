r"""Where V2S breaks: for the sets where it trails MiniRocket most, does it underfit, overfit, or is the class
evidence lost in the frozen front end (or in the output mapping)?

    python scripts/diagnose.py --runs results/screens/archive/default_s1 --store results/reproduce/archive.jsonl \
        --worst 12 --md results/notes/diagnosis_table.md

In: a folder of V2S run folders (``summary.json`` and ``history.csv`` each, e.g. a screen) and a ``reproduce.py``
store holding LP and MiniRocket (seed 0) on the same sets. Out: one Markdown row per set, worst gap first: V2S's
accuracy on the fit split (the running accuracy over the chosen epoch's batches), on the validation split at that
epoch and on the test set; LP's validation and test accuracy (the frozen model's features, no program); MiniRocket's
test accuracy; and the verdicts below. The rules were fixed before any of these numbers were looked at:

- **underfit**: V2S fits less than 90% of its own fit split at the chosen epoch;
- **overfit**: it fits at least 90% but validates at least 20 points lower;
- **front end**: LP, a linear classifier on the frozen features, scores 15 or more points below MiniRocket: the
  evidence is not (linearly) in what the frozen model computes from the series as it is;
- **output side**: LP scores at least 10 points above V2S: the frozen features hold evidence V2S's many-to-one
  mapping of 36 speech labels does not use.
"""

import argparse
import csv
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from results_table import store_records  # noqa: E402

FIT_MIN = 0.9
OVERFIT_GAP = 0.2
FRONT_END_GAP = 15.0
OUTPUT_GAP = 10.0


def read_run(folder):
    """(summary, history row of the chosen epoch) of a finished run folder; a one-line error for one that is not."""
    from engine.errors import UsageError

    try:
        with open(os.path.join(folder, "summary.json")) as fh:
            summary = json.load(fh)
        with open(os.path.join(folder, "history.csv")) as fh:
            rows = {int(r["epoch"]): r for r in csv.DictReader(fh)}
        return summary, rows[summary["best_epoch"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{folder}: not a finished run folder (summary.json and history.csv; {type(err).__name__}: "
                         f"{err})") from None


def store_column(path, method, seed=0):
    """{dataset: record} of a method's finished default-settings runs of one seed in a reproduce.py store."""
    return {r["dataset"]: r for r in store_records(path, method) if r["seed"] == seed}


def verdicts(fit, val, test, lp_test, minirocket):
    """The labels of the module docstring (accuracies as fractions, LP and MiniRocket in %)."""
    found = []
    if fit < FIT_MIN:
        found.append("underfit")
    elif fit - val >= OVERFIT_GAP:
        found.append("overfit")
    if lp_test is not None and minirocket is not None and lp_test <= minirocket - FRONT_END_GAP:
        found.append("front end")
    if lp_test is not None and lp_test >= 100 * test + OUTPUT_GAP:
        found.append("output side")
    return found or ["-"]


def diagnose(runs_dir, store, worst=None):
    """Rows (dicts) of the table, worst V2S - MiniRocket gap first."""
    from engine.errors import UsageError

    lp, minirocket = store_column(store, "LP"), store_column(store, "MiniRocket")
    for name, column in (("LP", lp), ("MiniRocket", minirocket)):
        if not column:
            raise UsageError(f"--store {store} holds no finished {name} run (seed 0); the verdicts need LP and "
                             "MiniRocket beside V2S (reproduce.py --methods LP MiniRocket)")
    rows, seen = [], {}
    for path in sorted(glob.glob(os.path.join(runs_dir, "*", "summary.json"))):
        summary, chosen = read_run(os.path.dirname(path))
        d = summary["dataset"]
        if d in seen:
            raise UsageError(f"--runs {runs_dir} holds two runs of {d} ({seen[d]} and "
                             f"{os.path.basename(os.path.dirname(path))}); give a folder of one run per dataset, "
                             "as a screen makes")
        seen[d] = os.path.basename(os.path.dirname(path))
        fit, val, test = float(chosen["accuracy"]), float(chosen["val_accuracy"]), summary["test_accuracy"]
        lp_test = 100 * lp[d]["test_accuracy"] if d in lp else None
        lp_val = 100 * lp[d]["val_accuracy"] if d in lp and lp[d].get("val_accuracy") is not None else None
        mr = 100 * minirocket[d]["test_accuracy"] if d in minirocket else None
        rows.append(dict(dataset=d, classes=summary["classes"], train=summary["train_size"],
                         epoch=summary["best_epoch"], fit=100 * fit, val=100 * val, test=100 * test, lp_val=lp_val,
                         lp_test=lp_test, minirocket=mr, gap=None if mr is None else 100 * test - mr,
                         verdict=", ".join(verdicts(fit, val, test, lp_test, mr))))
    rows.sort(key=lambda r: (r["gap"] is None, r["gap"] if r["gap"] is not None else 0))
    return rows[:worst] if worst else rows


def markdown(rows):
    def f(v):
        return "" if v is None else f"{v:.1f}"

    lines = ["| dataset | classes | train | epoch | V2S fit | V2S val | V2S test | LP val | LP test | MiniRocket | "
             "V2S - MiniRocket | verdict |", "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['classes']} | {r['train']} | {r['epoch']} | {f(r['fit'])} | "
                     f"{f(r['val'])} | {f(r['test'])} | {f(r['lp_val'])} | {f(r['lp_test'])} | "
                     f"{f(r['minirocket'])} | {f(r['gap'])} | {r['verdict']} |")
    counts = {}
    for r in rows:
        for v in r["verdict"].split(", "):
            counts[v] = counts.get(v, 0) + 1
    lines += ["", "Verdicts over these sets: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", required=True, help="Folder of V2S run folders (summary.json + history.csv).")
    p.add_argument("--store", required=True, help="reproduce.py store with LP and MiniRocket, seed 0.")
    p.add_argument("--worst", type=int, default=None, help="Keep this many sets, worst gap first (default: all).")
    p.add_argument("--md", default=None, help="Also write the table to this file.")
    args = p.parse_args(argv)
    if args.worst is not None and args.worst < 1:
        p.error(f"--worst must be at least 1 (a number of sets), got {args.worst}")
    if not glob.glob(os.path.join(args.runs, "*", "summary.json")):
        p.error(f"--runs {args.runs}: no finished run folders (*/summary.json) there")
    if not os.path.isfile(args.store):
        p.error(f"--store {args.store}: not a file; expected a reproduce.py store (.jsonl)")
    from engine.errors import cli_errors

    with cli_errors("diagnose.py"):
        text = markdown(diagnose(args.runs, args.store, args.worst))
    print(text)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
