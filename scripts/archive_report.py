r"""The archive benchmark's report: V2Sa, LP and MiniRocket on every set of a reproduce.py store, beside HIVE-COTE 2.

    AEON=.venv/lib/python3.11/site-packages/aeon/datasets/data
    python scripts/archive_report.py --store results/reproduce/archive.jsonl --data-dir ../shared/ucr $AEON \
        --out results/ucr_archive

In: a store of ``reproduce.py`` records (seed 0 of every method is the headline; further seeds are averaged in
columns of their own) and the archive folders the sets came from (their sizes, lengths and scales are read from
the data). HIVE-COTE 2's default-split accuracy is the published one (``reference/hc2_ucr112.csv``). Needs the
optional extra (aeon draws the critical-difference diagram).

Out: ``<out>.md`` (one row per set, mean / median / MPCE over the sets every method ran, win/tie/loss, the gap by
number of classes, length, training size and scale, failed runs, cost) and ``<out>.csv``; figures ``<out>_cd.png``
(average ranks with Wilcoxon-Holm cliques), ``<out>_scatter.png`` (V2Sa against MiniRocket) and ``<out>_gap.png``
(V2Sa minus MiniRocket against classes, length and training size).
"""

import argparse
import csv
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from reproduce import failures, mpce, select, wins, ResultStore  # noqa: E402

HC2 = os.path.join(REPO, "reference", "hc2_ucr112.csv")
METHODS = ("V2Sa", "LP", "MiniRocket")
COLUMNS = METHODS + ("HC2",)
FULL_ARCHIVE = 128  # datasets in the UCR 2018 archive (Dau et al. 2019)
SCALE_TOLERANCE = 0.1  # z-normalised: series' mean and standard deviation within this of 0 and 1, on average


def seed_columns(records, seed=0):
    """{method: {dataset: test accuracy %}} of one seed."""
    chosen = select([r for r in records if r["seed"] == seed])
    return {m: {d: accs[0] for (d, mm), accs in chosen.items() if mm == m} for m in METHODS}


def all_seed_columns(records):
    """{method: {dataset: (mean, std, seeds)}} where a method ran more than one seed on a set."""
    out = {}
    for (d, m), accs in select(records).items():
        if m in METHODS and len(accs) > 1:
            out.setdefault(m, {})[d] = (float(np.mean(accs)), float(np.std(accs)), len(accs))
    return out


def hc2_column(path=HC2):
    with open(path) as fh:
        return {row["dataset"]: float(row["hc2_s0"]) for row in csv.DictReader(fh)}


def set_properties(names, data_dirs):
    """{dataset: dict(classes, train, test, length, znormalised)} read from the first folder holding each set."""
    from ts_dataloader import load_ucr

    from engine.errors import UsageError

    props = {}
    for name in names:
        folder = next((d for d in data_dirs if os.path.isdir(os.path.join(d, name))), None)
        if folder is None:
            raise UsageError(f"--data-dir {' '.join(data_dirs)}: no folder holds {name}, a set of the store (the "
                             "report reads each set's size, length and scale from its files)")
        data = load_ucr(name, data_dir=folder)
        means, stds = [], []
        for series, n in zip(data.x_train, data.lengths_train):
            means.append(abs(float(np.mean(series[:n]))))
            stds.append(abs(float(np.std(series[:n])) - 1.0))
        props[name] = dict(classes=data.num_classes, train=len(data.x_train), test=len(data.x_test),
                           length=int(np.max(data.lengths_train)),
                           znormalised=bool(np.mean(means) <= SCALE_TOLERANCE and np.mean(stds) <= SCALE_TOLERANCE))
    return props


GROUPS = (  # (property, [(label, test)]): the bins of the gap table, fixed before looking at the gaps
    ("classes", [("2", lambda v: v == 2), ("3-5", lambda v: 3 <= v <= 5), ("6-10", lambda v: 6 <= v <= 10),
                 ("> 10", lambda v: v > 10)]),
    ("length", [("<= 150", lambda v: v <= 150), ("151-500", lambda v: 150 < v <= 500), ("> 500", lambda v: v > 500)]),
    ("train", [("<= 50", lambda v: v <= 50), ("51-200", lambda v: 50 < v <= 200), ("> 200", lambda v: v > 200)]),
    ("znormalised", [("yes", lambda v: v), ("no", lambda v: not v)]),
)


def gap_table(columns, props):
    """Markdown rows: per property bin, sets, mean V2Sa / LP / MiniRocket, and V2Sa's wins/ties/losses."""
    common = [d for d in columns["V2Sa"] if d in columns["MiniRocket"] and d in columns["LP"] and d in props]
    lines = ["| property | bin | sets | V2Sa | LP | MiniRocket | V2Sa - MiniRocket | V2Sa vs MiniRocket (W/T/L) |",
             "|---|---|---|---|---|---|---|---|"]
    for prop, bins in GROUPS:
        for label, test in bins:
            names = [d for d in common if test(props[d][prop])]
            if not names:
                continue
            v, lp, mr = ([columns[m][d] for d in names] for m in ("V2Sa", "LP", "MiniRocket"))
            w, t, l = wins({d: columns["V2Sa"][d] for d in names}, columns["MiniRocket"])
            lines.append(f"| {prop} | {label} | {len(names)} | {np.mean(v):.2f} | {np.mean(lp):.2f} | "
                         f"{np.mean(mr):.2f} | {np.mean(v) - np.mean(mr):+.2f} | {w}/{t}/{l} |")
    return lines


def cost_lines(records, props):
    """The sweep's cost: CPU time per method (this machine), the sets that dominate, a projection to the archive."""
    lines = []
    # A resumed run's CPU time covers only its last part: left out, and counted below.
    here = [r for r in records if "failed" not in r and not r.get("imported_from") and r.get("cpu_seconds")
            and not r.get("resumed_after_epoch")]
    imported = [r for r in records if r.get("imported_from")]
    resumed = [r for r in records if "failed" not in r and r.get("resumed_after_epoch")]
    for m in METHODS:
        rs = [r for r in here if r["method"] == m]
        if not rs:
            continue
        total = sum(r["cpu_seconds"] for r in rs)
        top = sorted(rs, key=lambda r: -r["cpu_seconds"])[:4]
        per_series = [r["cpu_seconds"] / props[r["dataset"]]["train"] for r in rs if r["dataset"] in props]
        lines.append(f"- {m}: {len(rs)} runs here, {total / 3600:.2f} CPU hours ({total / len(rs):.0f} CPU s a run "
                     f"on average, median {np.median([r['cpu_seconds'] for r in rs]):.0f}); the largest: "
                     + ", ".join(f"{r['dataset']} (seed {r['seed']}) {r['cpu_seconds']:.0f} s" for r in top)
                     + (f"; {np.median(per_series):.2f} CPU s per training series (median)" if per_series else ""))
    v2s = [r["cpu_seconds"] for r in here if r["method"] == "V2Sa" and r["seed"] == 0]
    if v2s:
        lines.append(f"- Projection (an estimate, not a measurement): the {FULL_ARCHIVE}-set archive at this sweep's "
                     f"mean V2Sa cost per set would take {FULL_ARCHIVE * np.mean(v2s) / 3600:.0f} CPU hours for one "
                     "seed of V2Sa; the sets not here include the archive's largest (ElectricDevices, Crop, "
                     "StarLightCurves, with thousands of training series each), and a run's cost grows with its "
                     "training series, so read it as a lower bound.")
    if imported:
        lines.append(f"- {len(imported)} records were imported from run folders made outside the sweep (screens, "
                     "earlier sweeps; their wall time is in the store, not counted above).")
    if resumed:
        lines.append(f"- {len(resumed)} runs resumed after a killed sweep are not counted above (their CPU time "
                     "covers only the resumed part): " + ", ".join(
                         f"{r['method']} on {r['dataset']} (after epoch {r['resumed_after_epoch']})" for r in resumed))
    return lines


def plot_cd(columns, datasets, methods, path):
    """Critical-difference diagram of ``methods`` over ``datasets`` (aeon: Wilcoxon-Holm cliques)."""
    import matplotlib

    matplotlib.use("Agg")
    from aeon.visualisation import plot_critical_difference

    scores = np.array([[columns[c][d] for c in methods] for d in datasets])
    fig, _ = plot_critical_difference(scores, list(methods), test="wilcoxon", correction="holm", alpha=0.05)
    fig.suptitle(f"average rank over {len(datasets)} UCR sets (lower is better)", fontsize=9)
    from utils import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130, bbox_inches="tight"))  # aeon's labels overhang
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_scatter(columns, props, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils import save_figure

    names = [d for d in columns["V2Sa"] if d in columns["MiniRocket"]]
    fig, ax = plt.subplots(figsize=(6, 6))
    for d in names:
        scaled = props.get(d, {}).get("znormalised", True)
        ax.scatter(columns["MiniRocket"][d], columns["V2Sa"][d], s=12 + 3 * props.get(d, {}).get("classes", 2),
                   color="tab:blue" if scaled else "tab:orange", alpha=0.75)
        ax.annotate(d, (columns["MiniRocket"][d], columns["V2Sa"][d]), fontsize=5)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8)
    ax.set(xlabel="MiniRocket test accuracy (%)", ylabel="V2Sa test accuracy (%)", xlim=(0, 101), ylim=(0, 101),
           title=f"{len(names)} UCR sets, seed 0 (size: classes; orange: not z-normalised)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    save_figure(fig, path, dpi=130)


def plot_gap(columns, props, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils import save_figure

    names = [d for d in columns["V2Sa"] if d in columns["MiniRocket"] and d in props]
    gap = [columns["V2Sa"][d] - columns["MiniRocket"][d] for d in names]
    colours = ["tab:blue" if props[d]["znormalised"] else "tab:orange" for d in names]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, prop, log in zip(axes, ("classes", "length", "train"), (False, True, True)):
        ax.scatter([props[d][prop] for d in names], gap, c=colours, s=14, alpha=0.8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel={"classes": "classes", "length": "series length", "train": "training series"}[prop],
               xscale="log" if log else "linear")
    axes[0].set_ylabel("V2Sa - MiniRocket (test accuracy points)")
    fig.suptitle("where V2Sa loses to MiniRocket (seed 0; orange: not z-normalised)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def report(records, props, out, command="python scripts/archive_report.py"):
    """Write <out>.md, <out>.csv and the three figures; returns the markdown text."""
    columns = seed_columns(records)
    columns["HC2"] = hc2_column()
    seeds = all_seed_columns(records)
    failed = [(d, m, s, e) for d, m, s, e in failures(records) if m in METHODS]
    names = sorted({d for m in METHODS for d in columns[m]} | {d for d, *_ in failed}, key=str.lower)
    failed_cells = {(d, m) for d, m, _, _ in failed}
    seed_methods = [m for m in METHODS if m in seeds]
    header = (["dataset", "classes", "train", "length", "z-normalised", "HC2 (published)"] + list(METHODS)
              + [f"{m}, seeds" for m in seed_methods])
    lines = ["# V2Sa, LP and MiniRocket on the UCR archive", "",
             "Test accuracy (%), honest protocol (V2Sa's epoch and LP's C chosen on a stratified 20% of the training "
             "set; MiniRocket on the same splits), seed 0 in the method columns; a \"seeds\" column averages the "
             "seeds a set has. HC2: HIVE-COTE 2's published default-split accuracy (Middlehurst, Schäfer, Bagnall, "
             "DMKD 2024, via aeon; reference/hc2_ucr112.csv), not run here. Made by:", "",
             "    " + command, "",
             f"![critical-difference diagram]({os.path.basename(out)}_cd.png) "
             f"![V2Sa against MiniRocket]({os.path.basename(out)}_scatter.png)", "",
             f"![V2Sa - MiniRocket by classes, length and training size]({os.path.basename(out)}_gap.png)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = []
    for d in names:
        p = props.get(d, {})
        cells = [d, str(p.get("classes", "")), str(p.get("train", "")), str(p.get("length", "")),
                 {True: "yes", False: "no"}.get(p.get("znormalised"), ""),
                 f"{columns['HC2'][d]:.2f}" if d in columns["HC2"] else ""]
        for m in METHODS:
            cells.append(f"{columns[m][d]:.2f}" if d in columns[m] else ("failed" if (d, m) in failed_cells else ""))
        for m in seed_methods:
            s = seeds[m].get(d)
            cells.append(f"{s[0]:.2f} ± {s[1]:.2f} ({s[2]})" if s else "")
        lines.append("| " + " | ".join(cells) + " |")
        rows.append(dict(zip(header, cells)))
    common = [d for d in names if all(d in columns[m] for m in METHODS)]
    with_hc2 = [d for d in common if d in columns["HC2"]]
    lines += ["", f"Over the {len(common)} sets where V2Sa, LP and MiniRocket all ran (seed 0), and over the "
              f"{len(with_hc2)} of them with a published HIVE-COTE 2 result (the archive's variable-length and "
              "missing-value sets have none):", "",
              "| | " + " | ".join(f"{m} ({len(common)} sets)" for m in METHODS) + " | "
              + " | ".join(f"{c} ({len(with_hc2)} sets)" for c in COLUMNS) + " |",
              "|---|" + "---|" * (len(METHODS) + len(COLUMNS))]
    for stat, fn in (("mean", np.mean), ("median", np.median), ("MPCE", None), ("average rank", None)):
        cells = []
        for subset, cols in ((common, METHODS), (with_hc2, COLUMNS)):
            if stat == "average rank":
                ranks = np.mean([_ranks([columns[c][d] for c in cols]) for d in subset], axis=0)
                cells += [f"{r:.2f}" for r in ranks]
            elif stat == "MPCE":
                cells += [f"{mpce([(100 - columns[c][d], props[d]['classes']) for d in subset if d in props]):.2f}"
                          for c in cols]
            else:
                cells += [f"{fn([columns[c][d] for d in subset]):.2f}" for c in cols]
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    lines.append("")
    for a, b in (("V2Sa", "MiniRocket"), ("V2Sa", "LP"), ("LP", "MiniRocket"), ("V2Sa", "HC2"),
                 ("MiniRocket", "HC2")):
        w, t, l = wins({d: columns[a][d] for d in common}, columns[b])
        lines.append(f"- {a} vs {b}: {w} wins, {t} ties, {l} losses")
    lines += ["", "V2Sa against MiniRocket by set property (seed 0, sets where V2Sa, LP and MiniRocket ran):", ""]
    lines += gap_table(columns, props)
    if failed:
        lines += ["", "Failed runs:"] + [f"- {m} on {d}, seed {s}: {e}" for d, m, s, e in failed]
    lines += ["", "Cost (CPU seconds recorded in the store):", ""] + cost_lines(records, props)
    text = "\n".join(lines) + "\n"
    from utils import atomic_write

    def write_md(tmp):
        with open(tmp, "w") as fh:
            fh.write(text)

    def write_csv(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(out + ".md", write_md)
    atomic_write(out + ".csv", write_csv)
    plot_cd(columns, common, METHODS, out + "_cd.png")
    plot_scatter(columns, props, out + "_scatter.png")
    plot_gap(columns, props, out + "_gap.png")
    return text


def _ranks(values):
    """Ranks of one set's accuracies, 1 = best, ties averaged."""
    from scipy.stats import rankdata

    return rankdata([-v for v in values])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, help="reproduce.py's JSON-lines store.")
    p.add_argument("--data-dir", nargs="+", required=True, help="Archive folders the sets are read from.")
    p.add_argument("--out", required=True, help="Prefix of the report's files (.md, .csv, _cd.png, ...).")
    args = p.parse_args(argv)
    if not os.path.isfile(args.store):
        p.error(f"--store {args.store}: not a file; expected a reproduce.py store (.jsonl)")
    if args.out.endswith(os.sep) or os.path.isdir(args.out):
        p.error(f"--out {args.out} is a folder; it is the prefix of the report's files, e.g. {args.out.rstrip(os.sep)}"
                f"{os.sep}report (-> report.md, report.csv, ...)")
    records, problems = ResultStore(args.store).load()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not any("test_accuracy" in r for r in records):
        p.error(f"--store {args.store} holds no finished run")
    ran = {r["method"] for r in records if "test_accuracy" in r and r["seed"] == 0}
    missing = [m for m in METHODS if m not in ran]
    if missing:
        p.error(f"--store {args.store} holds no finished {missing[0]} run of seed 0; the report sets "
                f"{', '.join(METHODS)} side by side (reproduce.py --methods {' '.join(METHODS)})")
    names = sorted({r["dataset"] for r in records})
    import shlex

    from engine.errors import cli_errors

    command = "python scripts/archive_report.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    with cli_errors("archive_report.py"):
        from engine.runs import check_writable

        check_writable(os.path.dirname(os.path.abspath(args.out)))
        text = report(records, set_properties(names, args.data_dir), args.out, command)
    print(text)


if __name__ == "__main__":
    main()
