"""A paired screen: the same datasets x seeds under one set of v2s_main.py flags, resumable, several jobs at once.

    python scripts/screen.py --data-dir ../shared/ucr --out results/screens/ens3 --flags="--ensemble 3" \
        --datasets GunPoint ECG200 --seeds 0 1 2 --jobs 2
    python scripts/screen.py ... --flags=""          # the defaults, as the baseline of the pairing

Each run goes to <out>/<Dataset>_s<seed>/ (a normal run folder); a rerun skips finished runs and resumes killed
ones. Every run is a ``v2s_main.py`` process with one TensorFlow thread; ``--jobs`` of them run at a time.
Compare two screens, run by run, on validation cross-entropy with
``python results_table.py <screen> --compare <baseline screen>``.
"""

import argparse
import os
import shlex
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one(task):
    """Train one (dataset, seed) of the screen with v2s_main.py in its own process; returns (folder, outcome)."""
    import json
    import subprocess

    dataset, seed, data_dir, out, flags = task
    folder = os.path.join(out, f"{dataset}_s{seed}")
    summary = os.path.join(folder, "summary.json")
    if os.path.isfile(summary):
        return folder, "done before"
    argv = ["--dataset", dataset, "--data-dir", data_dir, "--seed", str(seed), "--out", folder, "--verbose", "0"]
    argv += shlex.split(flags)
    if os.path.isfile(os.path.join(folder, "ckpt", "state.json")):
        argv.append("--resume")
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, os.path.join(REPO, "v2s_main.py"), *argv], capture_output=True, text=True,
                          env=env, cwd=REPO)
    if done.returncode != 0:
        return folder, f"failed (exit {done.returncode}): {(done.stderr.strip().splitlines() or [''])[-1]}"
    with open(summary) as fh:
        result = json.load(fh)
    return folder, f"{100 * result['test_accuracy']:.2f}% in {result['wall_seconds'] / 60:.1f} min"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="UCR archive folder.")
    p.add_argument("--out", required=True, help="Screen folder: one run folder per dataset and seed.")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--flags", default="", help="v2s_main.py flags every run of the screen gets (one string).")
    p.add_argument("--jobs", type=int, default=2, help="Runs at a time, one TensorFlow thread each.")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")
    tasks = [(d, s, args.data_dir, args.out, args.flags) for s in args.seeds for d in args.datasets]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "screen.txt"), "w") as fh:
        fh.write("python scripts/screen.py " + shlex.join(argv if argv is not None else sys.argv[1:]) + "\n")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(args.jobs) as pool:
        for folder, result in pool.map(_one, tasks):
            print(f"{folder}: {result}", flush=True)


if __name__ == "__main__":
    main()
