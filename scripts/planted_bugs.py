"""Plant known bugs in the core, one at a time, in a copy of the repository, and check that a named test fails.

    python scripts/planted_bugs.py            # one line per bug: caught or NOT caught, by which test

Each bug below was once shown to pass the whole suite `make test` runs; the test named beside it was written to
catch it, and must pass on the code as it is. The repository is copied (without .venv, runs, results, .git) into a temporary folder, so a killed run
never leaves a planted bug behind; the copy's tests run with this checkout's Python. Exit code 1 when a bug is not
caught. Slow-ish (a tiny training run per bug); not part of `make test`.
"""

import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (bug, file, text, planted text, the test that must fail)
BUGS = [
    ("on --resume, a fresh model instead of the checkpoint's weights and optimizer", "engine/runs.py",
     "    checkpoint, model, state = _open_checkpoint(folder, config, data, config.resume, monitor, patience)\n",
     "    checkpoint, model, state = _open_checkpoint(folder, config, data, config.resume, monitor, patience)\n"
     "    model = None\n",
     "tests/test_v2s_main.py::test_resume_continues_a_killed_run_from_its_weights_and_optimizer"),
    ("the best epoch chosen on val_loss (with the L2 penalty) instead of val_ce", "engine/runs.py",
     'config.epochs, "val_ce",', 'config.epochs, "val_loss",',
     "tests/test_runs.py::test_the_best_epoch_is_chosen_on_the_cross_entropy_not_the_penalised_loss"),
    ("the --per 1 mask inverted inside build_v2s", "ts_model.py",
     "mask=1.0 - encoder.mask() if mask else None", "mask=encoder.mask() if mask else None",
     "tests/test_ts_model.py::test_the_models_mask_keeps_delta_outside_the_copies_only"),
    ("the training graph leaving out the series scaling", "engine/training_graph.py",
     'series = model.get_layer("series_scaling")(inputs) if "series_scaling" in names else inputs',
     "series = inputs",
     "tests/test_encoding.py::test_training_graph_scales_the_series_as_the_model_does"),
    ("a missing first value filled with 0 instead of its neighbour", "ts_dataloader.py",
     "row[missing] = np.interp(pos[missing], pos[~missing], row[~missing])",
     "row[missing] = np.interp(pos[missing], pos[~missing], row[~missing], left=0.0)",
     "tests/test_ts_dataloader.py::test_a_missing_first_value_takes_its_neighbours_value_not_zero"),
]


def main():
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "repo")
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", "runs", "results", ".git", "__pycache__",
                                                                   ".pytest_cache"))
        for bug, path, text, planted, test in BUGS:
            target = os.path.join(copy, path)
            original = open(target).read()
            if original.count(text) != 1:
                raise SystemExit(f"planted_bugs.py: {path} no longer holds the line this bug changes; update BUGS")

            def test_fails():
                done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
                                      cwd=copy, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=copy))
                if done.returncode == 5:
                    raise SystemExit(f"planted_bugs.py: no test {test}; update BUGS")
                return done.returncode != 0

            if test_fails():  # a test failing without the bug would prove nothing
                raise SystemExit(f"planted_bugs.py: {test} fails on the code as it is")
            with open(target, "w") as fh:
                fh.write(original.replace(text, planted))
            caught = test_fails()
            with open(target, "w") as fh:
                fh.write(original)
            missed += not caught
            print(f"{'caught' if caught else 'NOT caught'}: {bug} ({test.split('::')[1]})", flush=True)
    raise SystemExit(1 if missed else 0)


if __name__ == "__main__":
    main()
