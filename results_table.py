r"""Collect finished runs (``<folder>/*/summary.json``) into a Markdown table beside the paper's numbers.

In:  a results folder of run sub-folders written by ``v2s_main.py``; the paper's Table 2
     (``reference/paper_table2.csv``).
Out: Markdown on stdout (and ``--csv`` / ``--md`` files): per dataset our test accuracy, validation accuracy, best
     epoch and wall time next to the paper's V2Sa and SOTA columns, with means over all rows and over the rows the
     paper reports cleanly (FordA, FordB, Lightning2 and Wafer are label-folding artefacts in the paper).

    python results_table.py results/sweep --md results/ucr19.md
    python results_table.py results/ablation --compare results/ucr19     # an ablation against the main sweep
    python results_table.py results/screens/archive/default_s1 --compare results/reproduce/archive.jsonl \
        --across-seeds                                                   # a screen against a sweep's V2Sa runs
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import csv
import dataclasses
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


def store_records(path, method):
    """The finished runs of ``method`` with the grid's default settings in a ``reproduce.py`` store (no other
    configuration, the shipped source, no --settings). Lines that are not records are skipped (the store's own
    reader names them)."""
    import json

    records = []
    with open(path) as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (isinstance(r, dict) and r.get("method") == method and "failed" not in r and "test_accuracy" in r
                    and not r.get("config") and not r.get("source_weights") and not r.get("settings")):
                records.append(r)
    return records


def collect_store(path, method="V2Sa"):
    """A ``reproduce.py`` store's finished runs of ``method`` under the default settings, as the run dicts
    ``comparison`` pairs: a screen can pair against a sweep's runs (say the archive sweep's V2Sa, seed 0) whose
    folders are not at hand."""
    from engine.run_folder import SETTINGS_BEFORE_THEY_EXISTED
    from engine.runs import RunConfig

    # The shipped source as run folders record it (relative to the repository).
    shipped = os.path.relpath(RunConfig(dataset="any").validated().source_weights, REPO)
    runs = []
    for r in store_records(path, method):
        # The record's output layer and encoding with their companions; a record made before either existed read
        # the classes through the label mapping from zero-padded series.
        config = RunConfig(head=r.get("head", SETTINGS_BEFORE_THEY_EXISTED["head"]),
                           encoding=r.get("encoding", SETTINGS_BEFORE_THEY_EXISTED["encoding"])).output_resolved()
        runs.append({"dataset": r["dataset"], "val_cross_entropy": r["val_loss"],
                     "test_accuracy": r["test_accuracy"], "val_accuracy": r["val_accuracy"],
                     "wall_seconds": r["wall_seconds"],
                     "config": dict(dataclasses.asdict(config), source_weights=shipped, dataset=r["dataset"],
                                    seed=r["seed"], epochs=r["epochs"])})
    return runs


def settings_of(run):
    """(mode, arch, programs, other changed settings as text) of a run summary: what makes two runs comparable."""
    from engine.runs import RunConfig, changed_settings

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    config = RunConfig(**{**{k: v for k, v in run["config"].items() if k in fields}, "out": None})
    others = {k: v for k, v in changed_settings(config).items() if k != "ensemble"}
    for key in ("epochs", "patience"):  # left out of folder names, but they change what a run learns
        if getattr(config, key) != getattr(RunConfig(), key):
            others[key] = getattr(config, key)
    text = ", ".join(k if v is True else f"{k}={v}" for k, v in others.items())
    return config.mode, config.arch, config.ensemble if config.mode in ("reprogram", "reprogram+finetune") else "", \
        text


def table(runs, paper):
    rows = []
    for r in sorted(runs, key=lambda r: (r["dataset"].lower(), settings_of(r), r["config"].get("seed", 0))):
        p = paper.get(r["dataset"], {})
        rows.append({
            "dataset": r["dataset"], **_row(r), "seed": r["config"].get("seed", 0), "classes": r["classes"],
            "train": r["train_size"], "length": r["length"],
            "m": r["segments"], "ours_test": 100 * r["test_accuracy"],
            "ours_val": None if r["val_accuracy"] is None else 100 * r["val_accuracy"],
            "best_epoch": r["best_epoch"], "minutes": r["wall_seconds"] / 60,
            "paper_v2sa": float(p["v2s_a"]) if p else None, "paper_sota": float(p["sota"]) if p else None,
            "artefact": r["dataset"] in PAPER_ARTEFACTS, "protocol": r["protocol"],
        })
    return rows


def _row(run):
    mode, arch, programs, others = settings_of(run)
    return {"mode": mode, "arch": arch if mode != "fcn" else "", "programs": programs, "settings": others}


def _group_label(row):
    label = f"{row['mode']} {row['arch']}".strip() + (f", {row['programs']} programs" if row["programs"] else "")
    return label + (f", {row['settings']}" if row["settings"] else "")


def _per_dataset(rows, key, keep):
    """{dataset: mean of ``key`` over its runs (seeds)} for the rows ``keep`` admits."""
    values = {}
    for r in rows:
        if keep(r) and r[key] is not None:
            values.setdefault(r["dataset"], []).append(r[key])
    return {d: float(np.mean(v)) for d, v in values.items()}


def markdown(rows):
    """The table, then one block of means per group of comparable runs (same mode, source, programs, settings):
    seeds of a dataset are averaged first, so a set counts once; only reprogrammed V2Sa runs are paired with the
    paper's V2Sa column."""
    def fmt(v, digits=2):
        return "" if v is None else f"{v:.{digits}f}"

    lines = ["| dataset | mode | source | K | settings | seed | C | train | L | m | ours test % | ours val % | "
             "best epoch | minutes | paper V2Sa % | paper SOTA % |", "|" + "---|" * 16]
    for r in rows:
        name = r["dataset"] + (" (*)" if r["artefact"] else "")
        lines.append(f"| {name} | {r['mode']} | {r['arch']} | {r['programs']} | {r['settings']} | {r['seed']} | "
                     f"{r['classes']} | {r['train']} | {r['length']} | {r['m'] or ''} | {fmt(r['ours_test'])} | "
                     f"{fmt(r['ours_val'])} | {r['best_epoch']} | {fmt(r['minutes'], 1)} | {fmt(r['paper_v2sa'])} | "
                     f"{fmt(r['paper_sota'])} |")
    groups = {}
    for r in rows:
        groups.setdefault(_group_label(r), []).append(r)
    for label, group in groups.items():
        paired_with_paper = group[0]["mode"] == "reprogram" and group[0]["arch"] == "V2Sa"
        seeds = sorted({r["seed"] for r in group})
        lines.append(f"\n**{label}** (seeds {', '.join(map(str, seeds))}; a dataset's seeds averaged first):")
        for title, keep in (("all rows", lambda r: True), ("without (*)", lambda r: not r["artefact"])):
            ours = _per_dataset(group, "ours_test", keep)
            if not ours:
                continue
            text = f"- mean {title}: **{fmt(float(np.mean(list(ours.values()))))}** over {len(ours)} sets"
            paper = _per_dataset(group, "paper_v2sa", keep)
            if paired_with_paper and paper:
                shared = sorted(set(ours) & set(paper))
                text += (f"; on the {len(shared)} the paper reports: ours {fmt(np.mean([ours[d] for d in shared]))}"
                         f" vs paper V2Sa {fmt(np.mean([paper[d] for d in shared]))}")
            lines.append(text)
    protocols = sorted({r["protocol"] for r in rows})
    lines.append("")
    lines.append(f"(*) label-folding artefact in the paper (reported there as 100%). Protocol: {', '.join(protocols)}. "
                 "K: programs of a reprogramming run. Settings: those that differ from the defaults.")
    return "\n".join(lines)


def wilcoxon_p(old, new):
    """Two-sided Wilcoxon signed-rank p-value of paired values (1.0 when every pair is equal)."""
    from scipy.stats import wilcoxon

    differences = np.asarray(new, float) - np.asarray(old, float)
    return 1.0 if not np.any(differences) else float(wilcoxon(differences).pvalue)


def comparison(runs, baseline, across_seeds=False, apart=()):
    """Markdown comparing two sweeps or screens (say an ablation against the defaults), paired run by run.

    Runs pair on (dataset, seed), or on the dataset alone with ``across_seeds`` (two folders of one run per
    dataset, e.g. the same settings under two seeds: the noise floor of a screen). The decision rule a user may
    apply without touching the test set is the validation cross-entropy, so the table counts the runs and the
    datasets (mean over seeds) where each side is lower, tests the per-dataset differences with a Wilcoxon
    signed-rank test, and reports the test mean of picking, per dataset, the side with the lower mean validation CE.
    ``apart`` names datasets (say, those a setting was chosen on) to summarise apart from the rest, so its effect on
    sets that did not choose it shows on its own.
    """
    def key(r):
        return (r["dataset"], 0) if across_seeds else (r["dataset"], r["config"].get("seed", 0))

    for folder_runs in (runs, baseline):
        seen = {}
        for r in folder_runs:
            if key(r) in seen:
                raise UsageError(f"two runs of {r['dataset']} with seed {r['config'].get('seed', 0)} in one folder "
                                 f"({_group_label(_row(seen[key(r)]))} and {_group_label(_row(r))}): --compare pairs a "
                                 "folder of one setting with another; split them into folders of their own")
            seen[key(r)] = r
    base = {key(r): r for r in baseline}
    pairs = [(base[key(r)], r) for r in sorted(runs, key=lambda r: (r["dataset"].lower(), key(r)[1]))
             if key(r) in base]
    if not pairs:
        raise UsageError("the two folders share no (dataset, seed) run")
    unknown = sorted(set(apart) - {r["dataset"] for r in runs + baseline})
    if unknown:
        raise UsageError(f"--apart: {', '.join(unknown)} in neither folder (dataset names as the runs spell them)")
    differ = sorted({k for b, r in pairs for k in set(b["config"]) | set(r["config"])
                     if k not in OUTPUT_SETTINGS | {"dataset", "seed"} and b["config"].get(k) != r["config"].get(k)})
    def label(run):
        if not differ and across_seeds:
            return f"seed {run['config'].get('seed', 0)}"
        return ", ".join(f"{k}={run['config'].get(k)}" for k in differ) or "same settings"

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
    groups = [("all", lambda d: True), ("without (*)", lambda d: d not in PAPER_ARTEFACTS)]
    if apart:
        groups += [("the --apart sets", lambda d: d in apart), ("the others", lambda d: d not in apart)]
    for title, keep in groups:
        kept = [(n, o, w) for n, o, w in rows if keep(n)]
        kept_pairs = [(o, w) for _, olds, news in kept for o, w in zip(olds, news)]
        if not kept:
            continue
        lower_runs = sum(w["val_cross_entropy"] < o["val_cross_entropy"] for o, w in kept_pairs)
        lower_sets = sum(mean(w, "val_cross_entropy") < mean(o, "val_cross_entropy") for _, o, w in kept)
        picked = [w if mean(w, "val_cross_entropy") < mean(o, "val_cross_entropy") else o for _, o, w in kept]
        p_value = wilcoxon_p([mean(o, "val_cross_entropy") for _, o, _ in kept],
                             [mean(w, "val_cross_entropy") for _, _, w in kept])
        lines.append(
            f"- {title} ({len(kept)} datasets, {len(kept_pairs)} runs): val CE lower with {b} on {lower_runs} runs "
            f"and {lower_sets} datasets, with {a} on {len(kept_pairs) - lower_runs} runs and "
            f"{len(kept) - lower_sets} datasets; mean val CE "
            f"{np.mean([mean(o, 'val_cross_entropy') for _, o, _ in kept]):.3f} vs "
            f"{np.mean([mean(w, 'val_cross_entropy') for _, _, w in kept]):.3f} (Wilcoxon signed-rank over the "
            f"datasets: p = {p_value:.3g}); mean test "
            f"{np.mean([mean(o, 'test_accuracy', 100) for _, o, _ in kept]):.2f} vs "
            f"{np.mean([mean(w, 'test_accuracy', 100) for _, _, w in kept]):.2f}; per dataset by lower mean val CE: "
            f"{np.mean([mean(r, 'test_accuracy', 100) for r in picked]):.2f}; minutes "
            f"{sum(o['wall_seconds'] for o, _ in kept_pairs) / 60:.0f} vs "
            f"{sum(w['wall_seconds'] for _, w in kept_pairs) / 60:.0f}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="Folder of run sub-folders, each with a summary.json (with --compare, also a "
                   "reproduce.py store, .jsonl).")
    p.add_argument("--md", default=None, help="Also write the Markdown table to this file.")
    p.add_argument("--csv", default=None, help="Also write the rows as CSV.")
    p.add_argument("--compare", metavar="BASELINE", default=None,
                   help="Instead, compare with another sweep folder (validation CE, validation and test accuracy), "
                        "or with a reproduce.py store's V2Sa runs under the default settings (a .jsonl file).")
    p.add_argument("--across-seeds", action="store_true",
                   help="With --compare: pair the folders' runs by dataset alone (one run per dataset in each), e.g. "
                        "seed 0 against seed 1 of the same settings, the noise floor of a screen.")
    p.add_argument("--apart", nargs="+", default=(), metavar="DATASET",
                   help="With --compare: also summarise these datasets and the others separately (e.g. the sets a "
                        "setting was chosen on, so its effect on the rest shows on its own).")
    args = p.parse_args(argv)
    if args.apart and not args.compare:
        p.error("--apart splits a --compare summary; give --compare BASELINE")
    if args.across_seeds and not args.compare:
        p.error("--across-seeds pairs two folders of a --compare by dataset; give --compare BASELINE")
    if args.compare and args.csv:
        p.error("--csv writes the table's rows; with --compare use --md.")
    if args.folder.endswith(".jsonl") and not args.compare:
        p.error(f"{args.folder} is a reproduce.py store: its table is `python reproduce.py --store {args.folder} "
                "--table-only`; here a store can be one side of --compare")
    with cli_errors("results_table.py"):
        runs, rows = _collect_or_exit(args.folder), None
        if args.compare:
            text = comparison(runs, _collect_or_exit(args.compare), args.across_seeds, set(args.apart))
        else:
            rows = table(runs, paper_rows())
            text = markdown(rows)
    print(text)
    for path in (args.md, args.csv):
        if path and os.path.dirname(os.path.abspath(path)):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text + "\n")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def _collect_or_exit(folder):
    if os.path.isfile(folder) and folder.endswith(".jsonl"):
        runs = collect_store(folder)
        if not runs:
            raise UsageError(f"{folder} holds no finished V2Sa run with the default settings")
        return runs
    if not os.path.isdir(folder):
        raise UsageError(f"{folder} is not a folder of runs (or a reproduce.py store, .jsonl)")
    runs = collect(folder)
    if not runs:
        raise UsageError(f"no */summary.json under {folder}")
    return runs


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
