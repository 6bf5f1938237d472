"""Every bad input a user can give the training CLI ends in one line on stderr and exit code 2, before training."""

import os

import numpy as np
import pytest

import v2s_main
from conftest import cli_error, make_toy_ucr


@pytest.fixture(scope="module")
def ucr(tmp_path_factory):
    """The toy dataset plus one broken or awkward dataset per case below."""
    folder = tmp_path_factory.mktemp("ucr")
    make_toy_ucr(folder)

    def write(name, train, test=None):
        os.makedirs(folder / name, exist_ok=True)
        (folder / name / f"{name}_TRAIN.tsv").write_text(train)
        (folder / name / f"{name}_TEST.tsv").write_text(test if test is not None else "1\t1\t2\t3\n2\t3\t2\t1\n")

    write("Short", "1\t1\t2\t3\n2\t1\t2\n")
    write("Long", "1\t1\t2\t3\n2\t1\t2\t3\t4\n")
    write("Blank", "1\t1\t2\t3\n2\t1\t\t3\n")
    write("Infinite", "1\t1\t2\t3\n2\tinf\t2\t3\n")
    write("Single", "1\t1\t2\t3\n2\t3\t2\t1\n")  # one training series per class
    rows = "".join(f"{c}\t{c}\t{c + 1}\t{c + 2}\n" for c in range(52) for _ in range(2))
    write("Many", rows, rows)  # 52 classes, as PigCVP
    write("Holes", "1\t1\t2\t3\n2\t1\tNaN\t3\n")
    write("Commas", "1,1,2,3\n2,3,2,1\n")
    import gzip

    os.makedirs(folder / "Cut", exist_ok=True)
    with gzip.open(folder / "Cut" / "Cut_TRAIN.tsv.gz", "wt") as fh:
        fh.write("1\t1\t2\t3\n2\t3\t2\t1\n" * 300)
    with gzip.open(folder / "Cut" / "Cut_TEST.tsv.gz", "wt") as fh:
        fh.write("1\t1\t2\t3\n")
    data = (folder / "Cut" / "Cut_TRAIN.tsv.gz").read_bytes()
    (folder / "Cut" / "Cut_TRAIN.tsv.gz").write_bytes(data[:len(data) // 2])
    (folder / "a_file").write_text("not a folder")
    write("Huge", "1\t1\t2\t3\n2\t1\t1e39\t3\n")  # beyond float32: infinite once the model reads it
    os.makedirs(folder / "Binary", exist_ok=True)
    (folder / "Binary" / "Binary_TRAIN.tsv").write_bytes(bytes(range(256)) * 4)
    (folder / "Binary" / "Binary_TEST.tsv").write_text("1\t1\t2\t3\n")
    rows = "".join("\t".join(str(v) for v in np.random.default_rng(i).integers(0, 50, 6)) + "\n" for i in range(23))
    write("NoLabels", rows, rows)  # whole numbers without a label column: 23 "classes" of one series
    weights = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weight", "v2sa.weights.h5")
    payload = open(weights, "rb").read()
    (folder / "cut.weights.h5").write_bytes(payload[:100_000])
    (folder / "plain.h5").write_bytes(payload)
    os.makedirs(folder / "weights_dir", exist_ok=True)
    os.makedirs(folder / "Chans", exist_ok=True)
    rows = "".join(f"{c},{c + 1},{c + 2}:{c},{c},{c}:{c % 2}\n" for c in range(6))
    for split in ("TRAIN", "TEST"):
        (folder / "Chans" / f"Chans_{split}.ts").write_text("@problemName Chans\n@data\n" + rows)
    return str(folder)


CASES = [
    (["--eps", "0"], "--eps (epochs) must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    (["--lr", "-0.01"], "--lr must be a positive number, got -0.01"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--mapping", "-1"], "--mapping must be 0 (maximal) or a positive count, got -1"),
    (["--mapping", "13"], "--mapping 13 source labels x 3 classes = 39 > 36 source labels; use --mapping 12 or fewer"),
    (["--seg", "500"], "--seg 400 or fewer"),
    (["--max-seg", "0"], "--max-seg must be at least 1, got 0"),
    (["--dr", "1.5"], "--dr must be in [0, 1), got 1.5"),
    (["--l2", "-1"], "--l2 must be 0 or more, got -1.0"),
    (["--ensemble", "0"], "--ensemble must be at least 1"),
    (["--jitter", "-0.1"], "--jitter must be 0 (off) or more, got -0.1"),
    (["--scaling", "inf"], "--scaling must be 0 (off) or more, got inf"),
    (["--patience", "-2"], "--patience must be 0 (off) or a positive number of epochs, got -2"),
    (["--source-weights", "weight/v2sa.weights.h5", "weight/v2sa_synthetic.weights.h5"],
     "an --ensemble that is a multiple of 2 (got --mode reprogram, --ensemble 3)"),
    (["--source-weights", "weight/v2sa.weights.h5", "no/such.weights.h5", "random"],
     "source weights no/such.weights.h5 not found"),
    (["--ema", "-1"], "--ema must be 0 (off) or a number of epochs, got -1.0"),
    (["--ema", "nan"], "--ema must be 0 (off) or a number of epochs, got nan"),
    (["--val-split", "1.5"], "--val-split must be in (0, 1), got 1.5"),
    (["--refit", "--val-on-test"], "no validation split"),
    (["--cosine", "--reference-schedule"], "pick one"),
    (["--source-weights", "nothing.weights.h5"], "source weights nothing.weights.h5 not found"),
    (["--source-weights", "README.md"], "README.md is not a weights file"),
    (["--out", "{ucr}/a_file/run"], "--out {ucr}/a_file/run cannot be written"),
    (["--dataset", "Cofee"], "Did you mean Coffee"),
    (["--dataset", "Short"], "Short_TRAIN.tsv, line 2: 2 values, but line 1 has 3"),
    (["--dataset", "Long"], "Long_TRAIN.tsv, line 2: 4 values, but line 1 has 3"),
    (["--dataset", "Blank"], "Blank_TRAIN.tsv, line 2: field 3 is blank"),
    (["--dataset", "Infinite"], "Infinite_TRAIN.tsv, line 2: value 1 is infinite"),
    (["--dataset", "Cut"], "Cut_TRAIN.tsv.gz is truncated or not a gzip file"),
    (["--dataset", "Single"], "Single has 2 training series, at most one per class: no validation split"),
    (["--dataset", "Many", "--map-type", "random"], "Many has 52 classes, more than the 36 source labels a "
                                                    "many-to-one label mapping can share out; a head runs it"),
    (["--arch", "V2Sr", "--head", "attention"], "--head attention reads the attention RNN's layers, which V2Sr "
                                                "does not have; it needs --arch V2Sa or V2Su"),
    (["--encoding", "am", "--deviation", "100"], "--deviation is a parameter of --encoding fm; this run's encoding is "
                                                 "am"),
    (["--gaps", "refuse", "--dataset", "Holes"], "Holes_TRAIN.tsv, line 2: value 2 is missing (NaN inside the series)"),
    (["--dataset", "Commas"], "Commas_TRAIN.tsv, line 1: no tab in the row, its fields are separated by commas"),
    (["--data-dir", "{ucr}/a_file"], "--data-dir {ucr}/a_file is a file; expected the folder"),
    (["--data-dir", "{ucr}/nowhere"], "UCR data folder not found: {ucr}/nowhere"),
    (["--dataset", "Huge"], "Huge_TRAIN.tsv, line 2: value 2 (1e+39) is beyond float32's range"),
    (["--dataset", "Binary"], "Binary_TRAIN.tsv, line 1: not text"),
    (["--dataset", "NoLabels"], "it looks like a measurement, not a class label"),
    (["--mode", "fcn"], "--source-weights random is not used by --mode fcn"),
    (["--mode", "transfer", "--dr", "0.2"], "--dr 0.2 is not used by --mode transfer"),
    (["--mode", "transfer", "--map-type", "iterative"], "--map-type iterative is not used by --mode transfer"),
    (["--source-weights", "{ucr}/cut.weights.h5"], "cut.weights.h5 cannot be read as HDF5 (truncated file"),
    (["--source-weights", "{ucr}/plain.h5"], "Keras reads weights only from files named <name>.weights.h5"),
    (["--source-weights", "{ucr}/weights_dir"], "weights_dir is a folder; expected a weights file"),
    (["--head-fit", "lp", "--map-type", "random"], "--head-fit lp fits a head (--head attention or layers)"),
    (["--layout", "split"], "--layout split places the channels of a multivariate series; Toy has one"),
    (["--dataset", "Chans", "--encoding", "pad"], "Chans is multivariate (2 channels): --encoding pad plays one"),
    (["--dataset", "Chans", "--program", "series"], "Chans is multivariate: --program series takes univariate"),
]


@pytest.mark.parametrize("flags, message", CASES, ids=[" ".join(f) for f, _ in CASES])
def test_bad_input_is_one_line_and_exit_code_2(ucr, tmp_path, capsys, flags, message):
    flags = [f.replace("{ucr}", ucr) for f in flags]
    argv = ["--dataset", "toy", "--data-dir", ucr, "--out", str(tmp_path / "run"), "--source-weights", "random",
            "--verbose", "0"]
    argv += flags  # later flags win
    line = cli_error(capsys, v2s_main.main, argv)
    assert line.startswith("v2s_main.py: error: ") and message.replace("{ucr}", ucr) in line
    assert not os.path.exists(tmp_path / "run" / "ckpt")  # refused before anything trained


def test_a_class_only_in_the_test_set_is_named(ucr, tmp_path, capsys):
    folder = os.path.join(ucr, "Unseen")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, classes in (("TRAIN", (1, 2)), ("TEST", (1, 2, 3))):
        with open(os.path.join(folder, f"Unseen_{split}.tsv"), "w") as fh:
            for c in classes:
                for _ in range(4):
                    fh.write("\t".join([str(c)] + [f"{v:.3f}" for v in rng.standard_normal(12)]) + "\n")
    v2s_main.main(["--dataset", "Unseen", "--data-dir", ucr, "--out", str(tmp_path / "u"), "--source-weights",
                   "random", "--verbose", "0", "--eps", "1"])
    assert "note: class 3 of Unseen appears only in the test set" in capsys.readouterr().out


COMMAND_LINES = ("v2s_main.py", "cam_v2s.py", "tsne_v2s.py", "results_table.py", "reproduce.py", "swd.py",
                 "pretrain.py", "source_evaluation.py")


@pytest.mark.slow
@pytest.mark.parametrize("script", COMMAND_LINES)
def test_help_prints_only_the_help(script):
    # Without the user setting TF_CPP_MIN_LOG_LEVEL, TensorFlow's start-up INFO lines must not precede the help;
    # and --help answers without loading TensorFlow at all (it took 10 s or more when every command imported it).
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = ("import runpy, sys\nsys.argv = [sys.argv[1], '--help']\ntry:\n    runpy.run_path(sys.argv[0], "
             "run_name='__main__')\nexcept SystemExit as stop:\n    code = stop.code\n"
             "print('loaded TensorFlow' if 'tensorflow' in sys.modules else 'no TensorFlow')\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, os.path.join(repo, script)], capture_output=True, text=True,
                          env=env, cwd=repo, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage:")
    assert done.stdout.rstrip().endswith("no TensorFlow")
    assert [line for line in done.stderr.splitlines() if " I " in line or "oneDNN" in line] == []


@pytest.mark.parametrize("chosen, expected", [(None, "1"), ("0", "0")])
def test_commands_turn_on_onednn_kernels_unless_the_user_chose(chosen, expected):
    """TensorFlow leaves its oneDNN kernels off on CPUs it does not recognise (e.g. AMD EPYC): the commands turn
    them on before TensorFlow loads (1.4-1.6x faster steps, bench/README.md); a user's own setting wins."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if chosen is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = chosen
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", "import os\nfrom engine import tf_setup\n"
                           "print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"], capture_output=True, text=True, env=env,
                          cwd=repo, timeout=60)
    assert done.stdout.strip() == expected, done.stderr


NOISE = ("cuInit", "PredictCost", "Compiled cluster", "input_shape", "absl", "oneDNN", "W0000", "I0000", "E0000",
         "tensorflow")


@pytest.mark.slow
def test_a_short_run_prints_its_own_lines_and_one_progress_bar(tmp_path):
    import subprocess
    import sys

    data = make_toy_ucr(tmp_path / "ucr")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "V2S_TF_LOGS")}
    done = subprocess.run([sys.executable, os.path.join(repo, "v2s_main.py"), "--dataset", "toy", "--data-dir", data,
                           "--out", str(tmp_path / "run"), "--eps", "2", "--ensemble", "1", "--batch-size", "8"],
                          capture_output=True, env=env, cwd=repo, timeout=300)  # bytes: keep the bar's \r
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, stderr[-2000:]
    assert [line for line in (stdout + stderr).splitlines() if any(n in line for n in NOISE)] == []
    bars = [line for line in stdout.split("\n") if "epoch/s" in line]  # one line, redrawn in place with \r
    assert len(bars) == 1 and "100%" in bars[0].split("\r")[-1], bars
    assert "--- Test accuracy:" in stdout and stderr.strip() == ""
