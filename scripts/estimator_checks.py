"""Run scikit-learn's estimator checks on V2SClassifier and write which pass, which are expected to fail and why.

    python scripts/estimator_checks.py --out results/estimator_checks.md

In:  nothing but the shipped source weights; every check builds its own small arrays (scikit-learn's blobs and
     random matrices: series of 1 to 10 values), so a V2S fit there is one epoch of one program, the cheapest the
     checks allow. Out: a markdown report, one row per check run (a check run twice, e.g. on two inputs, is two rows),
     with the checks known not to apply and their reasons. Exits 1 when a check that is not listed as expected fails.

The whole run fits V2S some hundred times: about half an hour on 2 CPU cores, which is why it is a script and not a
test (``tests/test_estimator.py`` covers the estimator's behaviour and errors in seconds).
"""

import argparse
import contextlib
import io
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import tf_setup  # noqa: E402  (before TensorFlow loads)
from engine.estimator import V2SClassifier  # noqa: E402

# Checks whose premise does not hold for a model of time series, each with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_classifiers_train": "asks for 83% training accuracy on 2-value 'series' (make_blobs) after a fit the "
                               "check suite must keep to one epoch; a pitch contour of two points carries no shape",
    "check_methods_subset_invariance": "predicting a subset of the rows and all of them agree to float32 rounding "
                                       "(TensorFlow's batched kernels), not to the check's 1e-7 on probabilities",
}


def run_checks(estimator):
    """[(check name, status, message)] of ``sklearn.utils.estimator_checks.check_estimator`` on ``estimator``."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None, expected_failed_checks=EXPECTED_FAILED_CHECKS)
    return [(r["check_name"], r["status"], " ".join(str(r.get("exception") or "").split())[:160]) for r in results]


def report(rows, seconds):
    """The markdown text of the report."""
    counts = {s: sum(status == s for _, status, _ in rows) for s in ("passed", "xfail", "skipped", "failed")}
    lines = ["# scikit-learn's estimator checks on V2SClassifier", "",
             "    python scripts/estimator_checks.py --out results/estimator_checks.md", "",
             f"V2SClassifier(epochs=1, ensemble=1), scikit-learn's `check_estimator`: {counts['passed']} passed, "
             f"{counts['xfail']} expected to fail, {counts['skipped']} skipped, {counts['failed']} failed, in "
             f"{seconds / 60:.0f} min on this machine.", "",
             "| check | status | note |", "|---|---|---|"]
    for name, status, message in rows:
        note = EXPECTED_FAILED_CHECKS.get(name, message) if status == "xfail" else message
        lines.append(f"| {name} | {status} | {note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join("runs", "estimator_checks.md"),
                   help="Where the report goes (default runs/estimator_checks.md).")
    args = p.parse_args(argv)
    tf_setup.quiet_stderr()
    if os.path.isdir(args.out):
        p.error(f"--out {args.out} is a folder; expected a .md file path")
    start = time.time()
    rows = run_checks(V2SClassifier(epochs=1, ensemble=1))
    text = report(rows, time.time() - start)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, args.out)
    print(text.split("\n")[4])
    return 1 if any(status == "failed" for _, status, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
