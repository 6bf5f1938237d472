"""Class activation maps for V2S (the paper's Figure 4), plus the CAM folded back onto the target series.

    python v2s_main.py                                                  # make demo's run: runs/Coffee_reprogram_V2Sa_s0
    python cam_v2s.py --run runs/Coffee_reprogram_V2Sa_s0 --index 0     # -> runs/Coffee_reprogram_V2Sa_s0/cam_0.png
    python cam_v2s.py --run runs/Coffee_reprogram_V2Sa_s0 --program 2   # an ensemble's third program: cam_p2_0.png
    python cam_v2s.py --clip speech.wav --out runs/cam_speech.png       # a speech clip through the source model alone

In:  a finished ``v2s_main.py`` run folder (its ``model.keras`` and ``summary.json``) and a test-set index, or a
     one-second speech clip and source weights.
Out: one figure with (a) the target series and the reprogrammed 16,000-sample waveform, (b) the frozen model's
     attention weights over its 125 frames, (c) the mel spectrogram of the reprogrammed input, (d)/(e) Grad-CAM
     from the chosen conv layers over that spectrogram (each (125, 80), like the spectrogram), and (f) the CAM
     folded back onto the series' own time steps: the time profile of the CAM, averaged over the m copies (under
     a tone encoding, which spreads the series over the whole second, the profile over the second itself), with
     the series' saliency: |d log p(predicted class) / d series| of the whole model, on the series' own time axis.
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import os

import numpy as np

from speech.commands import SAMPLE_RATE
from speech.spec import ATTENTION_ARCHITECTURES, FRAMES, HOP, N_FFT, N_MELS
CAM_LAYERS = ("conv2d_1", "conv2d_2")


def conv_layer_names(source):
    import keras

    return [l.name for l in source.layers if isinstance(l, keras.layers.Conv2D)]


def grad_cam(source, wave, layers=CAM_LAYERS, score_fn=None):
    """Grad-CAM maps of ``layers`` for one waveform (16000,).

    ``score_fn`` maps the source model's output (1, d) to the scalar being explained (default: its top source
    class; a run whose head reads the logits or the attention vector gets that output). Returns dict with 'mel'
    (125, 80), 'attention' (125,), 'probs' (the source output, (36,) for a source model alone) and one (125, 80)
    map per layer, each ReLU'd and scaled to [0, 1].
    """
    import keras
    import tensorflow as tf

    if "attSoftmax" not in {layer.name for layer in source.layers}:
        raise ValueError(f"CAM draws the attention-RNN sources' maps ({', '.join(ATTENTION_ARCHITECTURES)}); "
                         f"this run's source is {source.name}")
    valid = conv_layer_names(source)
    for name in layers:
        if name not in valid:
            raise ValueError(f"No conv layer {name!r} in the source model; valid layers: {', '.join(valid)}.")
    probe = keras.Model(source.input, [source.get_layer(n).output for n in layers] +
                        [source.get_layer("mel_stft").output, source.get_layer("attSoftmax").output, source.output])
    x = tf.convert_to_tensor(np.asarray(wave, np.float32)[None, :])
    with tf.GradientTape() as tape:
        *acts, mel, att, probs = probe(x, training=False)
        score = score_fn(probs) if score_fn else tf.reduce_max(probs, axis=-1)
    grads = tape.gradient(score, acts)
    out = {"mel": np.asarray(mel)[0, :, :, 0], "attention": np.asarray(att)[0], "probs": np.asarray(probs)[0]}
    out["negative"] = []
    for name, act, grad in zip(layers, acts, grads):
        weights = tf.reduce_mean(grad, axis=(1, 2), keepdims=True)  # one weight per channel
        weighted = tf.reduce_sum(weights * act, axis=-1)[0].numpy()
        cam = np.maximum(weighted, 0)
        if not cam.any():
            # A one-channel layer (conv2d_2) whose weight is negative gives an all-zero ReLU map; its magnitude
            # still shows where the evidence (against the other classes) sits, and the figure says so.
            cam = np.abs(weighted)
            out["negative"].append(name)
        out[name] = cam / (cam.max() + 1e-12)
    return out


def frame_profile_to_samples(profile, total=SAMPLE_RATE):
    """A per-frame profile (125,) -> per-sample (16000,) by linear interpolation at frame centres."""
    centres = np.arange(len(profile)) * HOP + N_FFT / 2
    return np.interp(np.arange(total), centres, profile)


def fold_back(cam, spans, length):
    """Time profile of a (125, 80) CAM on the series' own time steps, (length,): mapped to samples, each of the
    encoding's ``spans`` (start, stop) (the m copies of ``pad``, the whole second of a tone) resampled to the
    series' length, and averaged over the spans."""
    samples = frame_profile_to_samples(cam.mean(axis=1))
    return np.mean([stretch(samples[start:stop], length) for start, stop in spans], axis=0)


def stretch(values, length):
    """``values`` linearly resampled to ``length`` points over the same span (unchanged when already that long)."""
    if len(values) == length:
        return np.asarray(values)
    return np.interp(np.linspace(0, len(values) - 1, length), np.arange(len(values)), values)


def explain_run(run, index, layers=CAM_LAYERS, data_dir=None, program=0):
    """Everything the figure needs for test series ``index`` of a finished run.

    An ensemble is explained through one of its programs, ``program`` (its own delta and mapping), for the class
    the whole ensemble predicts.
    """
    from engine.errors import UsageError
    from engine.run_folder import load_run
    from ts_dataloader import load_ucr
    from ts_model import encoder_of, output_layer, program_source, reprogrammed_waveform

    finished = load_run(run)
    if finished.config["mode"] not in ("reprogram", "reprogram+finetune"):
        raise UsageError(f"--run {run} is a {finished.config['mode']} run; CAM needs a reprogramming run")
    model = finished.model
    if len(model.input.shape) == 3:
        raise UsageError(f"--run {run} is multivariate ({model.input.shape[1]} channels): CAM folds its maps back onto "
                         "one series, so it explains univariate runs")
    data = load_ucr(finished.summary["dataset"], data_dir=data_dir or finished.config.get("data_dir"))
    if not 0 <= index < len(data.x_test):
        raise UsageError(f"--index {index} is out of range; {data.name} has {len(data.x_test)} test series "
                         f"(0..{len(data.x_test) - 1})")
    programs = model.get_layer("reprogram").programs
    if not 0 <= program < programs:
        valid = f"{programs} programs (0..{programs - 1})" if programs > 1 else "1 program (0)"
        raise UsageError(f"--program {program} is out of range; the run has {valid}")
    series = data.x_test[index]
    spans = encoder_of(model).spans()
    wave = reprogrammed_waveform(model, series[None, :], program)[0]
    head = output_layer(model)
    target_probs = model.predict(series[None, :], verbose=0)[0]
    predicted = int(np.argmax(target_probs))
    result = grad_cam(program_source(model, program), wave, layers,
                      score_fn=lambda p: head.program_scores(p, program)[:, predicted])
    result.update(series=series, wave=wave, spans=spans, predicted=predicted,
                  true=int(data.y_test[index]), dataset=data.name, index=index, program=program, programs=programs,
                  folded={n: fold_back(result[n], spans, len(series)) for n in layers},
                  saliency=series_saliency(model, series, predicted))
    return result


def series_saliency(model, series, cls):
    """|d log p(cls) / d series|, (length,), averaged over a window of a thirtieth of the series and scaled to a
    maximum of 1: where on the series' own time axis a change would move the whole model's (every program's) belief
    in class ``cls`` most. The encodings are differentiable, so the gradient reaches the series through the
    waveform the frozen model hears; the window smooths the sample-to-sample noise of a raw gradient."""
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(series, np.float32)[None, :])
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.math.log(model(x, training=False)[0, cls] + 1e-12)
    grad = np.abs(np.asarray(tape.gradient(score, x))[0])
    window = max(1, len(grad) // 30)
    grad = np.convolve(grad, np.ones(window) / window, mode="same")
    return grad / (grad.max() + 1e-12)


def explain_clip(path, weights, layers=CAM_LAYERS):
    """The same maps for a speech clip through the source model alone (no fold-back)."""
    from speech.source_model import load_source_model
    from speech.commands import CLASSES, fit_to_one_second, read_clip

    from speech.commands import clip_changes

    source = load_source_model(weights)
    wave = fit_to_one_second(read_clip(path))
    changes = clip_changes(path)
    if changes:
        print(f"note: {path}: " + ", ".join(changes) + " (the source model hears one second at 16 kHz)")
    result = grad_cam(source, wave, layers)
    result.update(series=None, wave=wave, predicted=CLASSES[int(np.argmax(result["probs"]))],
                  dataset=os.path.basename(path), index=None, folded={})
    return result


def plot(result, layers, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 + len(layers) + (1 if result["folded"] else 0)
    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.6 * panels))
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    ax = axes[0]
    ax.plot(t, result["wave"], lw=0.5, color="tab:blue", label="reprogrammed input")
    if result["series"] is not None:
        # The series where the encoding put it: each copy of pad, or stretched over the whole second for a tone
        # (scaled to the waveform's range there, since a tone carries it in pitch or loudness, not amplitude).
        whole = result["spans"] == [(0, SAMPLE_RATE)]
        series = result["series"]
        if whole:
            peak = np.max(np.abs(series)) or 1.0
            series = series / peak * np.max(np.abs(result["wave"]))
        for start, stop in result["spans"]:
            ax.plot(t[start:stop], stretch(series, stop - start), lw=0.8, color="tab:red")
        ax.plot([], [], color="tab:red",
                label="target series (played as a tone, scaled)" if whole else "target series (m copies)")
    ensemble = result.get("programs", 1) > 1
    ax.set(xlabel="time (s)", ylabel="amplitude", title=f"(a) {result['dataset']}"
           + (f", test index {result['index']}: true class {result['true']}, predicted {result['predicted']}"
              if result["index"] is not None else f": predicted {result['predicted']}")
           + (f"; program {result['program']} of the ensemble's {result['programs']} (0..{result['programs'] - 1})"
              if ensemble else ""))
    ax.legend(loc="upper right", fontsize=8)
    frames = np.arange(FRAMES) * HOP / SAMPLE_RATE
    axes[1].plot(frames, result["attention"], color="tab:green")
    axes[1].set(xlabel="time (s)", ylabel="weight", title="(b) attention weights of the frozen source model")
    extent = [0, FRAMES * HOP / SAMPLE_RATE, 0, N_MELS]
    images = [("(c) mel spectrogram of the reprogrammed input (dB)", result["mel"], "magma", "dB")]
    images += [(f"({'def'[i]}) Grad-CAM from {n}" + (" (|weighted sum|: all evidence negative)"
                                                     if n in result["negative"] else ""), result[n], "jet",
                "relevance") for i, n in enumerate(layers)]
    for ax, (title, image, cmap, label) in zip(axes[2:], images):
        im = ax.imshow(image.T, origin="lower", aspect="auto", cmap=cmap, extent=extent)
        ax.set(xlabel="time (s)", ylabel="mel bin", title=title)
        fig.colorbar(im, ax=ax, label=label, pad=0.01)
    if result["folded"]:
        ax = axes[-1]
        steps = np.arange(len(result["series"]))
        ax.plot(steps, result["series"], color="black", lw=1, label="series")
        ax2 = ax.twinx()
        for n, profile in result["folded"].items():
            ax2.plot(steps, profile, lw=1.2, label=f"CAM {n}")
        if result.get("saliency") is not None:
            ax2.plot(steps, result["saliency"], lw=1.2, color="tab:red", alpha=0.8,
                     label="saliency |d log p(predicted) / d series|")
        ax2.set_ylabel("CAM (mean over copies), saliency")
        ax2.legend(loc="upper right", fontsize=8)
        ax.set(xlabel="series time step", ylabel="value", title="(f) CAM folded back onto the target series, and the series' saliency")
    fig.tight_layout()
    from utils import save_figure

    save_figure(fig, path, dpi=100)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="A finished v2s_main.py run folder (reprogram modes).")
    src.add_argument("--clip", help="A speech clip (.wav / .flac) explained by the source model alone.")
    p.add_argument("--index", type=int, default=0, help="Test-set index of the series to explain.")
    p.add_argument("--program", type=int, default=0,
                   help="Which program of an ensemble run to explain (0 .. K-1; each has its own delta and mapping).")
    p.add_argument("--dataset-dir", default=None, help="UCR folder, if the run's own --data-dir moved.")
    p.add_argument("--weights", default="weight/v2sa.weights.h5", help="Source weights for --clip.")
    p.add_argument("--layers", nargs="+", default=list(CAM_LAYERS), help="Conv layers to explain.")
    p.add_argument("--out", default=None,
                   help="Output figure (.png, or .pdf). Default: cam_<index>.png (cam_p<program>_<index>.png for "
                        "another program) inside the run folder; runs/cam_<clip name>.png for --clip.")
    args = p.parse_args(argv)
    if args.out is None and args.run:
        args.out = os.path.join(args.run, f"cam_{f'p{args.program}_' if args.program else ''}{args.index}.png")
    elif args.out is None:
        args.out = os.path.join("runs", f"cam_{os.path.splitext(os.path.basename(args.clip))[0]}.png")
    from engine.errors import cli_errors

    with cli_errors("cam_v2s.py"):
        result = explain_run(args.run, args.index, args.layers, args.dataset_dir, args.program) if args.run else \
            explain_clip(args.clip, args.weights, args.layers)
        plot(result, args.layers, args.out)
    print(f"Wrote {args.out}")
    return result


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
