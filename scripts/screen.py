"""A paired screen: the same datasets x seeds under one set of v2s_main.py flags, resumable, several jobs at once.

    python scripts/screen.py --data-dir ../shared/ucr --out results/screens/ens3 --flags="--ensemble 3" \
        --datasets GunPoint ECG200 --seeds 0 1 2 --jobs 2
    python scripts/screen.py ... --flags=""          # the defaults, as the baseline of the pairing

Each run goes to <out>/<Dataset>_s<seed>/ (a normal run folder); a rerun skips finished runs and resumes killed
ones. Jobs run in their own processes with one TensorFlow thread each. Compare two screens, run by run, on
validation cross-entropy with ``python results_table.py <screen> --compare <baseline screen>``.
"""

import argparse
import multiprocessing
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one(task):
    """Train one (dataset, seed) of the screen in this worker; returns (name, test accuracy or the error)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import contextlib
    import io

    import v2s_main
    from errors import UsageError

    dataset, seed, data_dir, out, flags = task
    folder = os.path.join(out, f"{dataset}_s{seed}")
    if os.path.isfile(os.path.join(folder, "summary.json")):
        return folder, "done before"
    argv = ["--dataset", dataset, "--data-dir", data_dir, "--seed", str(seed), "--out", folder, "--verbose", "0"]
    argv += shlex.split(flags)
    if os.path.isfile(os.path.join(folder, "ckpt", "state.json")):
        argv.append("--resume")
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            config = v2s_main.config_from_args(v2s_main.build_parser().parse_args(argv)).validated()
            import runs

            run = runs.train(runs.load_data(config), config, command="python v2s_main.py " + shlex.join(argv))
        return folder, f"{100 * run.summary['test_accuracy']:.2f}% in {run.summary['wall_seconds'] / 60:.1f} min"
    except UsageError as err:
        return folder, f"failed: {err}"


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
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for folder, result in pool.imap_unordered(_one, tasks):
            print(f"{folder}: {result}", flush=True)


if __name__ == "__main__":
    main()
