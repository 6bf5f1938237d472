"""Figures and analysis on a tiny finished run: CAM, tSNE, sliced Wasserstein distance."""

import os
import re

import numpy as np
import pytest

import cam_v2s
import swd
import tsne_v2s
import v2s_main
from conftest import cli_error, make_toy_ucr, tone, write_clip

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("analysis")]  # one worker makes the runs fixture once


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny reprogram run (with --swd) and a transfer run on the toy dataset, random source weights."""
    base = tmp_path_factory.mktemp("analysis")
    data_dir = make_toy_ucr(base)
    gsc = base / "gsc"
    for word, freq in (("yes", 300.0), ("no", 1500.0)):
        for spk in range(5):
            write_clip(str(gsc / word / f"s{spk}_nohash_0.wav"), tone(freq, 0.5))
    common = ["--dataset", "toy", "--data-dir", data_dir, "--source-weights", "random", "--verbose", "0",
              "--batch-size", "8", "--eps", "2"]
    v2s_main.main(common + ["--out", str(base / "runs" / "v2s"), "--swd", "--swd-gsc-dir", str(gsc), "--seg", "3"])
    v2s_main.main(common + ["--out", str(base / "runs" / "tf"), "--mode", "transfer"])
    return base, data_dir, str(gsc)


def test_cam_figure_and_map_shapes(runs, tmp_path):
    base, _, _ = runs
    out = str(tmp_path / "cam.png")
    result = cam_v2s.main(["--run", str(base / "runs" / "v2s"), "--index", "1", "--out", out])
    assert os.path.getsize(out) > 10_000
    assert result["conv2d_1"].shape == result["mel"].shape == (125, 80)
    assert result["conv2d_2"].shape == (125, 80)
    assert result["folded"]["conv2d_1"].shape == (40,)  # the series' own length
    assert result["saliency"].shape == (40,) and result["saliency"].max() == pytest.approx(1.0)
    assert result["attention"].shape == (125,)


def test_cam_bad_layer_and_index(runs, tmp_path, capsys):
    base, _, _ = runs
    run = str(base / "runs" / "v2s")
    line = cli_error(capsys, cam_v2s.main, ["--run", run, "--layers", "conv9", "--out", str(tmp_path / "x.png")])
    assert "valid layers: conv2d_1, conv2d_2" in line
    line = cli_error(capsys, cam_v2s.main, ["--run", run, "--index", "99", "--out", str(tmp_path / "x.png")])
    assert "--index 99 is out of range" in line


def test_cam_refuses_a_source_without_attention():
    """V2Sr has no attention weights or (125, 80) conv maps: a clear refusal, not a missing-layer traceback."""
    from speech.source_model import build_source_model

    with pytest.raises(ValueError, match="CAM draws the attention-RNN sources' maps .*this run's source is V2Sr"):
        cam_v2s.grad_cam(build_source_model("V2Sr"), np.zeros(16000, np.float32))


def test_cam_explains_the_chosen_program_of_an_ensemble(runs, tmp_path, capsys):
    base, _, _ = runs
    run, out = str(base / "runs" / "v2s"), str(tmp_path / "p.png")
    first = cam_v2s.main(["--run", run, "--index", "1", "--out", out])
    third = cam_v2s.main(["--run", run, "--index", "1", "--program", "2", "--out", out])
    assert third["program"] == 2 and third["programs"] == 3
    np.testing.assert_array_equal(first["series"], third["series"])
    assert not np.allclose(first["wave"], third["wave"])  # the third program's own delta
    line = cli_error(capsys, cam_v2s.main, ["--run", run, "--program", "3", "--out", out])
    assert line.endswith("--program 3 is out of range; the run has 3 programs (0..2)")


def test_missing_run_folder_is_a_one_line_error(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert re.match(r"cam_v2s.py: error: .*no_run", cli_error(capsys, cam_v2s.main, ["--run", str(tmp_path / "no_run"),
                                                                                    "--out", out]))
    assert re.match(r"tsne_v2s.py: error: .*no_run", cli_error(capsys, tsne_v2s.main,
                                                              ["--v2s-run", str(tmp_path / "no_run"), "--out", out]))
    assert re.match(r"swd.py: error: .*no_run", cli_error(capsys, swd.main, ["plot", str(tmp_path / "no_run")]))


def test_runs_of_the_wrong_mode_are_refused(runs, tmp_path, capsys):
    base, _, _ = runs
    v2s, tf_run, out = str(base / "runs" / "v2s"), str(base / "runs" / "tf"), str(tmp_path / "x.png")
    assert "must be a --mode transfer run" in cli_error(capsys, tsne_v2s.main, ["--v2s-run", v2s, "--tf-run", v2s,
                                                                                 "--out", out])
    assert "must be a reprogramming run" in cli_error(capsys, tsne_v2s.main, ["--v2s-run", tf_run, "--out", out])
    assert "CAM needs a reprogramming run" in cli_error(capsys, cam_v2s.main, ["--run", tf_run, "--out", out])


def test_figures_go_into_output_folders_that_do_not_exist_yet(runs, tmp_path):
    base, _, _ = runs
    out = tmp_path / "new" / "folder" / "cam.png"
    cam_v2s.main(["--run", str(base / "runs" / "v2s"), "--out", str(out)])
    assert out.stat().st_size > 10_000


def test_cam_on_a_speech_clip(tmp_path):
    from speech.source_model import build_source_model

    weights = str(tmp_path / "w.weights.h5")
    build_source_model("V2Sa").save_weights(weights)
    clip = str(tmp_path / "clip.wav")
    write_clip(clip, tone(600, 0.6))
    out = str(tmp_path / "clip_cam.png")
    result = cam_v2s.main(["--clip", clip, "--weights", weights, "--out", out])
    assert os.path.getsize(out) > 10_000 and result["conv2d_2"].shape == (125, 80)


def test_fold_back_averages_the_copies():
    cam = np.zeros((125, 80))
    cam[0:2] = 1.0  # relevance only in the first frames -> only the first copy region lights up
    folded = cam_v2s.fold_back(cam, [(0, 100), (8000, 8100)], 100)
    assert folded.shape == (100,) and 0.4 < folded.max() <= 0.5  # the hot copy averaged with a cold one


def test_fold_back_of_a_tone_puts_the_second_on_the_series_time_axis():
    cam = np.zeros((125, 80))
    cam[30:33] = 1.0  # relevance about a quarter of the way through the second
    folded = cam_v2s.fold_back(cam, [(0, 16000)], 200)
    assert folded.shape == (200,) and 45 <= np.argmax(folded) <= 60 and folded[150:].max() == 0


def test_tsne_figure(runs, tmp_path):
    base, _, _ = runs
    out = str(tmp_path / "tsne.png")
    tsne_v2s.main(["--v2s-run", str(base / "runs" / "v2s"), "--tf-run", str(base / "runs" / "tf"), "--out", out])
    assert os.path.getsize(out) > 10_000
    # the three panels: the frozen source on the encoded series, TF_a's fine-tuned one, and V2S's reprogrammed
    # input (the program changes what the source computes), one row per training series
    sets, y, name = tsne_v2s.feature_sets(str(base / "runs" / "v2s"), str(base / "runs" / "tf"))
    before, after = sets["before reprogramming (frozen source, no delta)"], sets["after V2S reprogramming"]
    assert name == "Toy" and len(sets) == 3 and all(len(f) == len(y) == 18 for f in sets.values())
    assert before.shape == after.shape and not np.allclose(before, after)


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift():
    a = np.random.default_rng(0).standard_normal((200, 36))
    assert swd.sliced_wasserstein(a, a) < 1e-9
    near, far = swd.sliced_wasserstein(a, a + 0.5), swd.sliced_wasserstein(a, a + 3.0)
    assert 0 < near < far


def test_swd_recorded_per_epoch_plotted_and_tabled(runs, tmp_path):
    base, _, gsc = runs
    history = open(base / "runs" / "v2s" / "history.csv").read().splitlines()
    assert "swd" in history[0].split(",") and len(history) == 3
    out = str(tmp_path / "swd.png")
    swd.main(["plot", str(base / "runs" / "v2s"), "--out", out])
    assert os.path.getsize(out) > 10_000
    rows, mean, median = swd.main(["table", str(base / "runs"), "--gsc-dir", gsc])
    assert [name for name, _ in rows] == ["Toy"] and mean == median == rows[0][1] > 0  # the tf run is left out
    assert swd.mean_and_median([1.0, 2.0, 6.0]) == (3.0, 2.0)


def test_the_swd_a_run_records_is_drawn_with_the_runs_seed(runs):
    # Two runs with one seed record the same SWD for the same model: the random projections follow --seed.
    from engine import runs as engine_runs
    from ts_model import source_of, source_pass

    base, data_dir, gsc = runs
    model = engine_runs.load_run(str(base / "runs" / "v2s")).model
    x = engine_runs.load_data(engine_runs.RunConfig(dataset="toy", data_dir=data_dir)).x_train[:8]
    config = engine_runs.RunConfig(swd=True, swd_gsc_dir=gsc, seed=3)
    recorded = []
    for _ in range(2):
        callback = engine_runs._epoch_callbacks(config, str(base), x, None, 3)(model)[0]
        callback.set_model(model)
        logs = {}
        callback.on_epoch_end(0, logs)
        recorded.append(logs["swd"])
    reference = swd.source_reference_features(source_of(model), gsc)
    assert recorded[0] == recorded[1] == swd.sliced_wasserstein(reference, source_pass(model, program=0)(x), seed=3)


def test_swd_table_of_a_folder_mixing_head_and_mapping_runs(runs, tmp_path):
    """A head run is measured in the attention vector's space, a mapping run in the logits': each against its own
    reference, never one cloud against the other's (that mixed 128- and 36-value clouds and crashed)."""
    import shutil

    base, data_dir, gsc = runs
    shutil.copytree(base / "runs" / "v2s", tmp_path / "mixed" / "head")
    v2s_main.main(["--dataset", "toy", "--data-dir", data_dir, "--source-weights", "random", "--verbose", "0",
                   "--batch-size", "8", "--eps", "2", "--seg", "3", "--head", "mapping",
                   "--out", str(tmp_path / "mixed" / "mapping")])
    shutil.copytree(tmp_path / "mixed" / "mapping", tmp_path / "alone" / "mapping")
    mixed, _, _ = swd.main(["table", str(tmp_path / "mixed"), "--gsc-dir", gsc])
    alone, _, _ = swd.main(["table", str(tmp_path / "alone"), "--gsc-dir", gsc])
    head_alone, _, _ = swd.main(["table", str(base / "runs"), "--gsc-dir", gsc])
    assert len(mixed) == 2
    assert mixed[0][1] == pytest.approx(head_alone[0][1]) and mixed[1][1] == pytest.approx(alone[0][1])
    # --space logits: every run in the paper's space; a mapping run reads the logits anyway, the head run does not.
    logits, _, _ = swd.main(["table", str(tmp_path / "mixed"), "--gsc-dir", gsc, "--space", "logits"])
    assert logits[1][1] == pytest.approx(mixed[1][1]) and logits[0][1] != pytest.approx(mixed[0][1])


def test_the_logits_of_a_source_cut_before_them_are_refused():
    import keras

    from engine.errors import UsageError
    from ts_model import source_features

    wave = keras.Input((16000,))
    cut = keras.Model(wave, keras.layers.Dense(4, name="att_vector")(wave))
    assert source_features(cut) is cut
    with pytest.raises(UsageError, match="ends at 'att_vector', before the logits"):
        source_features(cut, "logits")


def test_figures_go_into_the_run_folder_by_default(runs, tmp_path, monkeypatch):
    base, _, _ = runs
    monkeypatch.chdir(tmp_path)  # was cam.png, tsne.png and swd_curve.png in the working folder (or over img/)
    v2s, tf_run = base / "runs" / "v2s", base / "runs" / "tf"
    cam_v2s.main(["--run", str(v2s), "--index", "1", "--program", "0"])
    tsne_v2s.main(["--v2s-run", str(v2s), "--tf-run", str(tf_run)])
    swd.main(["plot", str(v2s)])
    assert {"cam_1.png", "tsne.png", "swd_curve.png"} <= set(os.listdir(v2s)) and os.listdir(tmp_path) == []
