"""Mutation score of the core modules: how many small planted bugs does ``make test`` catch?

    python scripts/mutation_score.py                          # HEAD, 10 mutants per module, report to stdout
    python scripts/mutation_score.py --rev 6938d9e^ --pair-with 41f311be7792 --report results/mutation/before.md
    python scripts/mutation_score.py --show NAME              # the diff of one mutant

mutmut (pinned in requirements/dev.txt) rewrites each function of ``CORE_MODULES`` into variants with one small
change each (a flipped comparison, a changed constant, a dropped argument, ...): a *mutant*. A mutant is *killed*
when a test that runs its function fails, *survives* when they all pass, and has *no tests* when no test of
``make test`` (``-m "not heavy"``) runs its function at all. The core holds about 5,600 mutants and a test run
of a training function takes minutes on two cores, so the score is estimated on a seeded random sample per module
(``--per-module``), with a 95% Wilson interval; the same sample seed is used for every revision.

In: a git revision of this repository (``--rev``). Work: ``runs/mutation/<rev>/`` (a copy of the revision,
mutmut's ``mutants/`` folder with its cached results inside): a killed script resumes where it stopped, finished
mutants are never run twice; the sample's verdicts are also kept in ``results/mutation/<commit>.json`` (committed), so
a fresh copy elsewhere resumes from them. Out: a markdown report (per module: sampled, killed, survived, no tests, timeouts,
the killed share of the decided mutants) with the surviving mutants' names, printed or written to ``--report``.

Each mutant's tests run in a process forked from a server that has not imported TensorFlow (mutmut's
``process_isolation=forkserver``, no warm-up): mutmut's default forks its main process, which has run the whole
suite, and a fork of a process whose TensorFlow thread pools exist keeps one thread and waits forever for the others
(every mutant whose tests reach TensorFlow ended at the time limit, undecided). A fresh import costs seconds a mutant.

Keras inspects a layer's ``__init__`` arguments when the layer is created, which mutmut's wrapper hides: the
constructors of Keras layers and callbacks are left unmutated (marked in the copy, never in the repository).
Not in CI: a mutant whose function the end-to-end tests run costs their whole time (about five minutes of one
core) when it survives, so one revision's sample of 70 takes hours. A mutant stopped at its limit is undecided: mutmut
stops a mutant's tests after 5 x (their own time + 60 s) of wall time (twice that of CPU time). The tests' own time
leaves out what a forked test process spends before them (its module fixtures, TensorFlow tracing), several times a
short test's own time here, and on a shared machine the wall clock runs on besides: with mutmut's 1 s in place of 60 s,
mutants that raise at once (``dict(None)``) were stopped before their test had failed. A mutant that loops costs five
minutes or more before it is stopped; it counts neither as caught nor as missed.
"""

import argparse
import fcntl
import json
import math
import os
import random
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE_MODULES = ("engine/runs.py", "engine/training.py", "engine/training_graph.py", "engine/frozen_lstm.py",
                "ts_model.py", "ts_dataloader.py", "utils.py")
# What the tests need beside the mutated modules (mutmut runs them from its copy, mutants/).
ALSO_COPY = ("speech/", "weight/", "ts_encoding.py", "v2s_main.py", "reproduce.py", "results_table.py", "swd.py",
             "cam_v2s.py", "tsne_v2s.py", "pretrain.py", "source_evaluation.py", "scripts/", "reference/", "bench/",
             "docs/", "README.md", "Makefile", "requirements/", "results/", "img/")
SETUP_CFG = """[mutmut]
source_paths=
    engine/
    ts_model.py
    ts_dataloader.py
    utils.py
only_mutate=
{only}
also_copy=
{also}
pytest_add_cli_args_test_selection=
    tests/
pytest_add_cli_args=
    -m
    not heavy
    -p
    no:randomly
timeout_multiplier=5
timeout_constant=60
process_isolation=forkserver
forkserver_warmup=none
"""
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 36: "timeout", 24: "timeout",
          -24: "timeout", 152: "timeout", 255: "timeout", None: "not run"}


def mutmut():
    return os.path.join(os.path.dirname(sys.executable), "mutmut")


def rev_name(rev):
    """The revision's full commit hash (so '6938d9e^' and its hash share one work folder)."""
    out = subprocess.run(["git", "-C", REPO, "rev-parse", "--verify", rev + "^{commit}"], capture_output=True,
                         text=True)
    if out.returncode:
        raise SystemExit(f"mutation_score.py: --rev {rev!r} is not a commit of this repository")
    return out.stdout.strip()


def mark_keras_constructors(path):
    """Append mutmut's skip pragma to the one-line ``def __init__`` of Keras layer and callback classes."""
    with open(path) as fh:
        lines = fh.read().split("\n")
    keras_class = False
    for i, line in enumerate(lines):
        header = re.match(r"class \w+(\((.*)\))?:", line)
        if header:
            bases = header.group(2) or ""
            keras_class = "L.Layer" in bases or "keras." in bases
        if keras_class and re.match(r"\s+def __init__\(.*\):\s*$", line):
            lines[i] = line + "  # pragma: no mutate block"
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def prepare(commit, work):
    """A copy of ``commit`` in ``work`` (once; later calls reuse it) with mutmut's settings (written every time)."""
    if not os.path.isfile(os.path.join(work, "Makefile")):
        os.makedirs(work, exist_ok=True)
        archive = subprocess.run(["git", "-C", REPO, "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", work], input=archive, check=True)
        for module in CORE_MODULES:
            if os.path.isfile(os.path.join(work, module)):
                mark_keras_constructors(os.path.join(work, module))
    present = [p for p in ALSO_COPY if os.path.exists(os.path.join(work, p))]
    with open(os.path.join(work, "setup.cfg"), "w") as fh:
        fh.write(SETUP_CFG.format(only="\n".join("    " + m for m in CORE_MODULES),
                                  also="\n".join("    " + p for p in present)))


def mutmut_env():
    # one TensorFlow thread per test process, as make test runs them
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
                PYTHONPATH="")


def cached(work, field):
    """{module: mutmut's ``field`` of its cached data} from ``work/mutants``: "exit_code_by_key" ({mutant name:
    exit code or None}) or "hash_by_function_name" ({function: hash of its source})."""
    out = {}
    for module in CORE_MODULES:
        meta = os.path.join(work, "mutants", module + ".meta")
        if os.path.isfile(meta):
            with open(meta) as fh:
                out[module] = json.load(fh)[field]
    return out


def results(work):
    """{module: {mutant name: exit code or None}} from mutmut's cached results in ``work/mutants``."""
    return cached(work, "exit_code_by_key")


def sample(names, k, seed):
    """``k`` names drawn without replacement, the same draw for the same names and seed; a larger ``k`` keeps the
    smaller one's names (the first k of one seeded shuffle), so widening a sample reuses what was run."""
    names = sorted(names)
    random.Random(seed).shuffle(names)
    return sorted(names[:k])


def verdicts_file(commit):
    """The committed record of a revision's decided mutants: {module: {name: exit code}}."""
    return os.path.join(REPO, "results", "mutation", commit[:12] + ".json")


def restore(work, path):
    """Fill the verdicts recorded in ``path`` into mutmut's cache in ``work`` (a fresh copy of the revision), so a
    mutant decided before is not run again."""
    if not os.path.isfile(path):
        return
    with open(path) as fh:
        recorded = json.load(fh)
    for module, verdicts in recorded.items():
        meta_path = os.path.join(work, "mutants", module + ".meta")
        if not os.path.isfile(meta_path):
            continue
        with open(meta_path) as fh:
            meta = json.load(fh)
        codes = meta["exit_code_by_key"]
        missing = {n: c for n, c in verdicts.items() if n in codes and codes[n] is None and c is not None}
        if missing:
            codes.update(missing)
            with open(meta_path, "w") as fh:
                json.dump(meta, fh, indent=4)


def record(codes, chosen, path):
    """Write the sample's decided verdicts to ``path`` (committed with the report); a timeout is undecided and left
    out, so a later run with another CPU limit runs it again."""
    decided = {m: {n: codes[m][n] for n in chosen[m] if STATUS.get(codes[m][n]) not in ("not run", "timeout")}
               for m in chosen}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(decided, fh, indent=1, sort_keys=True)
    with open(path) as fh:
        recorded = json.load(fh)
    for module, verdicts in recorded.items():
        known = codes.get(module, {})
        if any(known.get(name) is None and name in known for name in verdicts):
            meta = os.path.join(os.path.dirname(path), "..", "..", "unused")  # placeholder, replaced below
    return codes


def wilson(killed, n):
    """95% Wilson interval of a share, in percent."""
    if n == 0:
        return None, None
    z, p = 1.96, killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def report(commit, codes, chosen, per_module, seed):
    lines = [f"## Mutation score at {commit[:10]} ({per_module} sampled mutants per module, seed {seed})", "",
             "| module | mutants | sampled | killed | survived | no tests | timeout | not run | killed share of the "
             "decided (95% interval) |", "|---|---|---|---|---|---|---|---|---|"]
    total = {"killed": 0, "decided": 0}
    survivors = []
    for module in CORE_MODULES:
        if module not in codes:
            continue
        statuses = [STATUS.get(codes[module][name], "suspicious") for name in chosen[module]]
        count = {s: statuses.count(s) for s in ("killed", "survived", "no tests", "timeout", "not run")}
        # "no tests" counts as missed; a timeout is undecided (see the module's docstring)
        caught = count["killed"]
        decided = count["killed"] + count["survived"] + count["no tests"]
        low, high = wilson(caught, decided)
        share = "" if not decided else f"{100 * caught / decided:.0f}% ({low:.0f}-{high:.0f})"
        lines.append(f"| {module} | {len(codes[module])} | {len(statuses)} | {count['killed']} | "
                     f"{count['survived']} | {count['no tests']} | {count['timeout']} | {count['not run']} | "
                     f"{share} |")
        total["killed"] += caught
        total["decided"] += decided
        survivors += [(module, n, s) for n, s in zip(chosen[module], statuses) if s in ("survived", "no tests")]
    if total["decided"]:
        low, high = wilson(total["killed"], total["decided"])
        lines.append(f"| **all** | | | | | | | | {100 * total['killed'] / total['decided']:.0f}% "
                     f"({low:.0f}-{high:.0f}) |")
    lines += ["", "A mutant with no tests counts as missed (no test of `make test` runs its function); one stopped at "
              "its CPU limit (timeout) is undecided and left out of the share.", "",
              "Survivors and mutants no test reaches:", ""]
    lines += [f"- `{name}` ({status})" for _, name, status in survivors] or ["- none"]
    return "\n".join(lines) + "\n"


def unchanged(codes, hashes, other_hashes):
    """{module: [mutant names]} of the functions whose source is the same in both revisions: the same mutation of
    the same code, so its verdicts in the two differ only by the tests."""
    out = {}
    for module, names in codes.items():
        ours, theirs = hashes.get(module, {}), other_hashes.get(module, {})
        prefix = module[:-3].replace("/", ".") + "."
        out[module] = [n for n in names
                       if ours.get(f := n[len(prefix):].rsplit("__mutmut_", 1)[0]) == theirs.get(f, object())]
    return out


def paired_lines(commit, other, chosen):
    """Verdicts of the same mutants under two revisions' tests, from their committed verdicts."""
    with open(verdicts_file(commit)) as fh:
        ours = json.load(fh)
    with open(verdicts_file(other)) as fh:
        theirs = json.load(fh)
    pairs = [(STATUS.get(ours[m][n]), STATUS.get(theirs[m][n])) for m in chosen for n in chosen[m]
             if n in ours.get(m, {}) and n in theirs.get(m, {})]
    caught = ("killed",)
    both = sum(a in caught and b in caught for a, b in pairs)
    only_ours = sum(a in caught and b not in caught for a, b in pairs)
    only_theirs = sum(b in caught and a not in caught for a, b in pairs)
    return ["", f"Paired with {other[:10]} on the {len(pairs)} sampled mutants both have decided: caught by both "
            f"{both}, only at {commit[:10]} {only_ours}, only at {other[:10]} {only_theirs}, by neither "
            f"{len(pairs) - both - only_ours - only_theirs}."]


def mutants_of(commit, work_root, run=True):
    """(work folder, {module: {name: exit code}}) of a revision: its copy and mutmut's cache, the mutants written
    first when there are none (mutmut's run of an unknown name would also run the whole suite clean)."""
    work = os.path.join(work_root, commit[:12])
    prepare(commit, work)
    if not results(work) and run:
        subprocess.run([sys.executable, "-c", "import mutmut.__main__ as m; m.create_mutants(1)"], cwd=work,
                       env=mutmut_env(), check=True)
    restore(work, verdicts_file(commit))
    return work, results(work)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", default="HEAD", help="The git revision to score (default HEAD).")
    p.add_argument("--pair-with", metavar="REV", default=None,
                   help="Sample only mutants of functions whose source is the same at REV (run REV with --pair-with "
                        "this --rev to score the same mutants under its tests).")
    p.add_argument("--per-module", type=int, default=10, help="Mutants sampled per module (default 10).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the sample (default 0).")
    p.add_argument("--work", default=os.path.join(REPO, "runs", "mutation"),
                   help="Folder of the work copies (default runs/mutation).")
    p.add_argument("--report", default=None, help="Write the markdown report here (default: print it).")
    p.add_argument("--report-only", action="store_true", help="Report what is cached, run nothing.")
    p.add_argument("--show", metavar="NAME", help="Print the diff of one mutant of --rev and stop.")
    args = p.parse_args(argv)
    if args.per_module < 1:
        raise SystemExit(f"mutation_score.py: --per-module must be at least 1, got {args.per_module}")
    commit = rev_name(args.rev)
    work = os.path.join(args.work, commit[:12])
    prepare(commit, work)
    # Two scripts on one copy would run the same mutants into one cache: the second is refused at once.
    lock = open(os.path.join(work, ".mutation_score.lock"), "w")
    try:
        if not (args.report_only or args.show):  # reading the cache while a run writes it is fine
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"mutation_score.py: {work} is in use by another mutation_score.py; wait for it") from None
    if args.show:
        raise SystemExit(subprocess.run([mutmut(), "show", args.show], cwd=work, env=mutmut_env()).returncode)
    work, codes = mutants_of(commit, args.work, run=not args.report_only)
    if not codes:
        raise SystemExit(f"mutation_score.py: mutmut wrote no mutants in {work}/mutants (see its output above)")
    pool = {m: list(names) for m, names in codes.items()}
    other = rev_name(args.pair_with) if args.pair_with else None
    if other:
        other_work, _ = mutants_of(other, args.work, run=not args.report_only)
        pool = unchanged(codes, cached(work, "hash_by_function_name"), cached(other_work, "hash_by_function_name"))
    chosen = {m: sample(pool[m], args.per_module, args.seed) for m in codes}
    todo = [n for m in codes for n in chosen[m] if codes[m][n] is None]
    if todo and not args.report_only:
        print(f"{len(todo)} sampled mutants to run in {work}", flush=True)
        # One call: mutmut first runs the tests of every named mutant clean (a whole suite's time), then saves each
        # mutant's result as it comes, so a killed script loses only the mutant in flight.
        try:
            subprocess.run([mutmut(), "run", "--max-children", "1", *todo], cwd=work, env=mutmut_env())
        finally:  # a killed script still records what was decided
            codes = results(work)
            record(codes, chosen, verdicts_file(commit))
    record(codes, chosen, verdicts_file(commit))  # also after a killed run, whose own record did not happen
    text = report(commit, codes, chosen, args.per_module, args.seed)
    if other and os.path.isfile(verdicts_file(commit)) and os.path.isfile(verdicts_file(other)):
        text += "\n".join(paired_lines(commit, other, chosen)) + "\n"
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
