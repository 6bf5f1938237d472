"""Collect finished runs (``<folder>/*/summary.json``) into a Markdown table beside the paper's numbers.

In:  a results folder of run sub-folders written by ``v2s_main.py``; the paper's Table 2
     (``reference/paper_table2.csv``).
Out: Markdown on stdout (and ``--csv`` / ``--md`` files): per dataset our test accuracy, validation accuracy, best
     epoch and wall time next to the paper's V2Sa and SOTA columns, with means over all rows and over the rows the
     paper reports cleanly (FordA, FordB, Lightning2 and Wafer are label-folding artefacts in the paper).

    python results_table.py results/sweep --md results/ucr19.md
    python results_table.py results/ablation --compare results/ucr19     # an ablation against the main sweep
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import csv
import glob
import os

import numpy as np

from engine.errors import UsageError, cli_errors
from engine.run_folder import read_summary
from engine.runs import OUTPUT_SETTINGS

REPO = os.path.dirname(os.path.abspath(__file__))
PAPER_TABLE = os.path.join(REPO, "reference", "paper_table2.csv")
PAPER_ARTEFACTS = ("FordA", "FordB", "Lightning2", "Wafer")


def paper_rows(path=PAPER_TABLE):
    with open(path) as fh:
        return {row["dataset"]: row for row in csv.DictReader(fh)}


def collect(folder):
    """Every summary.json under ``folder`` (one level deep), as a list of dicts (configs upgraded to today's flags)."""
    return [read_summary(path) for path in sorted(glob.glob(os.path.join(folder, "*", "summary.json")))]


def table(runs, paper):
    rows = []
    for r in sorted(runs, key=lambda r: r["dataset"].lower()):
        p = paper.get(r["dataset"], {})
        rows.append({
            "dataset": r["dataset"], "classes": r["classes"], "train": r["train_size"], "length": r["length"],
            "m": r["segments"], "ours_test": 100 * r["test_accuracy"],
            "ours_val": None if r["val_accuracy"] is None else 100 * r["val_accuracy"],
            "best_epoch": r["best_epoch"], "minutes": r["wall_seconds"] / 60,
            "paper_v2sa": float(p["v2s_a"]) if p else None, "paper_sota": float(p["sota"]) if p else None,
            "artefact": r["dataset"] in PAPER_ARTEFACTS, "protocol": r["protocol"],
        })
    return rows


def _mean(rows, key, keep=lambda r: True):
    values = [r[key] for r in rows if keep(r) and r[key] is not None]
    return (float(np.mean(values)), len(values)) if values else (None, 0)


def markdown(rows):
    def fmt(v, digits=2):
        return "" if v is None else f"{v:.{digits}f}"

    lines = ["| dataset | C | train | L | m | ours test % | ours val % | best epoch | minutes | paper V2Sa % | "
             "paper SOTA % |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r["dataset"] + (" (*)" if r["artefact"] else "")
        lines.append(f"| {name} | {r['classes']} | {r['train']} | {r['length']} | {r['m']} | {fmt(r['ours_test'])} | "
                     f"{fmt(r['ours_val'])} | {r['best_epoch']} | {fmt(r['minutes'], 1)} | {fmt(r['paper_v2sa'])} | "
                     f"{fmt(r['paper_sota'])} |")
    clean = lambda r: not r["artefact"]  # noqa: E731
    both = lambda r: not r["artefact"] and r["paper_v2sa"] is not None  # noqa: E731
    for label, keep in (("mean, all rows", lambda r: True), ("mean without (*)", clean)):
        ours, n = _mean(rows, "ours_test", keep)
        paper, n_paper = _mean(rows, "paper_v2sa", lambda r: keep(r) and r["ours_test"] is not None)
        sota, _ = _mean(rows, "paper_sota", keep)
        lines.append(f"| **{label}** ({n} sets) | | | | | **{fmt(ours)}** | | | | {fmt(paper)} | {fmt(sota)} |")
    ours_pair, n_pair = _mean(rows, "ours_test", both)
    paper_pair, _ = _mean(rows, "paper_v2sa", both)
    protocols = sorted({r["protocol"] for r in rows})
    lines.append("")
    lines.append(f"(*) label-folding artefact in the paper (reported there as 100%). Protocol: {', '.join(protocols)}. "
                 f"Paired mean without (*): ours {fmt(ours_pair)} vs paper V2Sa {fmt(paper_pair)} over {n_pair} sets.")
    return "\n".join(lines)


def comparison(runs, baseline):
    """Markdown comparing two sweeps or screens (say an ablation against the defaults), paired run by run.

    Runs pair on (dataset, seed). The decision rule a user may apply without touching the test set is the
    validation cross-entropy, so the table counts the runs and the datasets (mean over seeds) where each side is
    lower, and reports the test mean of picking, per dataset, the side with the lower mean validation CE.
    """
    def key(r):
        return r["dataset"], r["config"].get("seed", 0)

    base = {key(r): r for r in baseline}
    pairs = [(base[key(r)], r) for r in sorted(runs, key=lambda r: (r["dataset"].lower(), key(r)[1]))
             if key(r) in base]
    if not pairs:
        raise UsageError("the two folders share no (dataset, seed) run")
    differ = sorted({k for b, r in pairs for k in set(b["config"]) | set(r["config"])
                     if k not in OUTPUT_SETTINGS | {"dataset", "seed"} and b["config"].get(k) != r["config"].get(k)})
    label = lambda run: ", ".join(f"{k}={run['config'].get(k)}" for k in differ) or "same settings"  # noqa: E731
    a, b = label(pairs[0][0]), label(pairs[0][1])
    by_set = {}
    for old, new in pairs:
        by_set.setdefault(old["dataset"], []).append((old, new))
    seeds = sorted({key(r)[1] for _, r in pairs})
    lines = [f"Paired on {len(pairs)} runs: {len(by_set)} datasets x seeds {', '.join(map(str, seeds))} "
             "(means over the seeds each dataset has).", "",
             f"| dataset | runs | val CE, {a} | val CE, {b} | test %, {a} | test %, {b} | minutes, {a} | "
             f"minutes, {b} |",
             "|---|---|---|---|---|---|---|---|"]

    def mean(items, field, scale=1.0):
        return float(np.mean([scale * r[field] for r in items]))

    rows = []
    for name, items in by_set.items():
        olds, news = [o for o, _ in items], [n for _, n in items]
        rows.append((name, olds, news))
        lines.append(f"| {name}{' (*)' if name in PAPER_ARTEFACTS else ''} | {len(items)} | "
                     f"{mean(olds, 'val_cross_entropy'):.3f} | {mean(news, 'val_cross_entropy'):.3f} | "
                     f"{mean(olds, 'test_accuracy', 100):.2f} | {mean(news, 'test_accuracy', 100):.2f} | "
                     f"{mean(olds, 'wall_seconds', 1 / 60):.1f} | {mean(news, 'wall_seconds', 1 / 60):.1f} |")
    lines.append("")
    for title, keep in (("all", lambda d: True), ("without (*)", lambda d: d not in PAPER_ARTEFACTS)):
        kept = [(n, o, w) for n, o, w in rows if keep(n)]
        kept_pairs = [(o, w) for _, olds, news in kept for o, w in zip(olds, news)]
        if not kept:
            continue
        lower_runs = sum(w["val_cross_entropy"] < o["val_cross_entropy"] for o, w in kept_pairs)
        lower_sets = sum(mean(w, "val_cross_entropy") < mean(o, "val_cross_entropy") for _, o, w in kept)
        picked = [w if mean(w, "val_cross_entropy") < mean(o, "val_cross_entropy") else o for _, o, w in kept]
        lines.append(
            f"- {title} ({len(kept)} datasets, {len(kept_pairs)} runs): val CE lower with {b} on {lower_runs} runs "
            f"and {lower_sets} datasets, with {a} on {len(kept_pairs) - lower_runs} runs and "
            f"{len(kept) - lower_sets} datasets; mean val CE "
            f"{np.mean([mean(o, 'val_cross_entropy') for _, o, _ in kept]):.3f} vs "
            f"{np.mean([mean(w, 'val_cross_entropy') for _, _, w in kept]):.3f}; mean test "
            f"{np.mean([mean(o, 'test_accuracy', 100) for _, o, _ in kept]):.2f} vs "
            f"{np.mean([mean(w, 'test_accuracy', 100) for _, _, w in kept]):.2f}; per dataset by lower mean val CE: "
            f"{np.mean([mean(r, 'test_accuracy', 100) for r in picked]):.2f}; minutes "
            f"{sum(o['wall_seconds'] for o, _ in kept_pairs) / 60:.0f} vs "
            f"{sum(w['wall_seconds'] for _, w in kept_pairs) / 60:.0f}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="Folder of run sub-folders, each with a summary.json.")
    p.add_argument("--md", default=None, help="Also write the Markdown table to this file.")
    p.add_argument("--csv", default=None, help="Also write the rows as CSV.")
    p.add_argument("--compare", metavar="BASELINE", default=None,
                   help="Instead, compare with another sweep folder (validation CE, validation and test accuracy).")
    args = p.parse_args(argv)
    if args.compare and args.csv:
        p.error("--csv writes the table's rows; with --compare use --md.")
    with cli_errors("results_table.py"):
        runs, rows = _collect_or_exit(args.folder), None
        if args.compare:
            text = comparison(runs, _collect_or_exit(args.compare))
        else:
            rows = table(runs, paper_rows())
            text = markdown(rows)
    print(text)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text + "\n")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def _collect_or_exit(folder):
    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a folder of runs")
    runs = collect(folder)
    if not runs:
        raise UsageError(f"no */summary.json under {folder}")
    return runs


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
