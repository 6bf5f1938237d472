"""A paired screen: the same datasets x seeds under one set of v2s_main.py flags, resumable, several jobs at once.

    AEON=.venv/lib/python3.11/site-packages/aeon/datasets/data
    python scripts/screen.py --data-dir ../shared/ucr $AEON --out results/screens/archive/znorm --flags="--znorm"
    python results_table.py results/screens/archive/znorm --compare results/screens/archive/head_attention
    # head_attention: today's defaults on the subset (the attention head), the runs a lever pairs against

The protocol (results/notes/screening_protocol.md): by default every screen runs the screening subset
``SCREEN_SETS``, 33 UCR sets named from their sizes alone before any result was looked at, seed 0 only, and a
lever is decided on validation cross-entropy with a Wilcoxon signed-rank test across the sets plus the count of
sets that improve (``results_table.py --compare``). The subset's rule: of the 70 sets at hand (66 in
../shared/ucr, 4 shipped in aeon), those V2S can run (at most 36 classes, two training series per class) with at
most 210 training series (a run of minutes here) and one member of each family but the two largest (GunPoint
and DodgerLoop, two each). It spans 2 to 26 classes and lengths 24 to 2,844; 13 of its sets are not
z-normalised (their series' mean or standard deviation off 0 or 1 by more than 0.1 on average).

Each run goes to <out>/<Dataset>_s<seed>/ (a normal run folder); a rerun skips finished runs and resumes killed
ones. Every run is a ``v2s_main.py`` process with one TensorFlow thread; ``--jobs`` of them run at a time. Each
dataset is read from the first --data-dir that holds it.
"""

import argparse
import os
import shlex
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The screening subset (rule in the module docstring; families thinned: GestureMidAirD2/D3, GesturePebbleZ2,
# GunPointMaleVersusFemale/OldVersusYoung, DodgerLoopWeekend, InsectEPGSmallTrain and ToeSegmentation2 left out).
SCREEN_SETS = (
    "ACSF1 ArrowHead BME BirdChicken Car Chinatown Coffee DodgerLoopDay DodgerLoopGame ECG200 ECGFiveDays FaceFour "
    "FacesUCR Fish GestureMidAirD1 GesturePebbleZ1 GunPoint GunPointAgeSpan Ham Haptics Herring HouseTwenty "
    "InsectEPGRegularTrain ItalyPowerDemand Lightning2 OSULeaf OliveOil PickupGestureWiimoteZ Plane PowerCons Rock "
    "ToeSegmentation1 UMD").split()


def _one(task):
    """Train one (dataset, seed) of the screen with v2s_main.py in its own process; returns (folder, outcome)."""
    import json
    import subprocess

    dataset, seed, data_dirs, out, flags = task
    folder = os.path.join(out, f"{dataset}_s{seed}")
    data_dir = next((d for d in data_dirs if os.path.isdir(os.path.join(d, dataset))), data_dirs[0])
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
    p.add_argument("--data-dir", nargs="+", required=True,
                   help="UCR archive folders; each dataset is read from the first that holds it.")
    p.add_argument("--out", required=True, help="Screen folder: one run folder per dataset and seed.")
    p.add_argument("--datasets", nargs="+", default=SCREEN_SETS,
                   help=f"Default: the screening subset ({len(SCREEN_SETS)} sets, see above).")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="Default: seed 0 (the protocol's one seed).")
    p.add_argument("--flags", default="", help="v2s_main.py flags every run of the screen gets (one string).")
    p.add_argument("--jobs", type=int, default=2, help="Runs at a time, one TensorFlow thread each.")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")
    try:
        flags = shlex.split(args.flags)
    except ValueError as err:
        p.error(f"--flags {args.flags!r}: {err}")
    taken = sorted({f.split("=")[0] for f in flags} & {"--dataset", "--data-dir", "--seed", "--out", "--verbose",
                                                       "--resume"})
    if taken:
        p.error(f"--flags: {taken[0]} is set by the screen itself for every run (use --datasets, --data-dir, --seeds, "
                "--out)")
    tasks = [(d, s, args.data_dir, args.out, args.flags) for s in args.seeds for d in args.datasets]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "screen.txt"), "w") as fh:
        fh.write("python scripts/screen.py " + shlex.join(argv if argv is not None else sys.argv[1:]) + "\n")
    from concurrent.futures import ThreadPoolExecutor

    failed = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for folder, result in pool.map(_one, tasks):
            print(f"{folder}: {result}", flush=True)
            failed += result.startswith("failed")
    if failed:
        print(f"screen.py: {failed} of {len(tasks)} runs failed (above); rerun the command to retry them",
              file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
