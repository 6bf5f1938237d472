"""Where a V2S training step spends its time, part by part, on this machine.

    python bench/profile_v2s.py [--arch V2Sa] [--length 500 --segments 10 --batch-size 32 --threads 1 --repeats 5]

In:  the source architecture, the shape of a dataset (default FordA: series of length 500, m = 10 copies,
     2 classes) and a batch size.
Out: a table of milliseconds per training step for each part of the frozen source model, forward and backward
     (the backward pass is the gradient with respect to the part's input, which is what reprogramming needs: the
     source weights are frozen), then the whole step as ``model.fit`` runs it, the Adam update, and the per-epoch
     extras (validation pass, checkpoint writes) of ``v2s_main.py``.

Each part runs alone in a ``tf.function`` on inputs of the shape it sees inside the model (random values), so
the parts' sum can be compared with the whole step: the difference is what the parts do not account for
(Keras' step overhead, the data adapter, copies between parts). Timings are medians over ``--repeats`` passes
of ``--steps`` calls each, after a warm-up call that traces the function.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine import tf_setup  # noqa: E402,F401  (before TensorFlow loads: the commands' settings)

import numpy as np

from bench.timing import median_seconds  # noqa: E402


def median_ms(fn, steps, repeats):
    """Median wall milliseconds of one call of ``fn`` (passes of ``steps`` calls, after one warm-up call)."""
    return 1000.0 * median_seconds(lambda: [fn() for _ in range(steps)], repeats, warm_up=fn) / steps


def part_timer(fn, x, steps, repeats):
    """(forward ms, backward ms) of ``fn`` on ``x``; backward = gradient of a fixed projection w.r.t. ``x``."""
    import tensorflow as tf

    x = tf.constant(x)
    out = fn(x)
    probe = tf.constant(np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype.as_numpy_dtype))

    forward = tf.function(lambda: fn(x))

    @tf.function
    def both():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.cast(probe, tf.float32))
        return tape.gradient(loss, x)

    f = median_ms(forward, steps, repeats)
    fb = median_ms(both, steps, repeats)
    return f, fb - f


# The parts of each source after its mel front end, as (row name, first layer, last layer): each part is the
# source's own layers from the first one's input to the last one's output.
PARTS = {
    "V2Sa": [("normalisation, 2 convs, batch norms", "mel_norm", "squeeze_last_dim"),
             ("BiLSTM 1", "bilstm_1", "bilstm_1"), ("BiLSTM 2", "bilstm_2", "bilstm_2"),
             ("attention, dense head, softmax", "last_step", "output")],
    "V2Su": [("normalisation", "mel_norm", "spec_augment"), ("U-Net block (11 convs)", "unet_enc1_a", "unet_out"),
             ("2 convs, batch norms", "conv2d_1", "squeeze_last_dim"),
             ("BiLSTM 1", "bilstm_1", "bilstm_1"), ("BiLSTM 2", "bilstm_2", "bilstm_2"),
             ("attention, dense head, softmax", "last_step", "output")],
    "V2Sr": [("normalisation", "mel_norm", "spec_augment"), ("stem + stage 1 (63 x 40, 32 channels)", "res_stem",
                                                             "res1_out"),
             ("stage 2 (32 x 20, 64)", "res2_conv_a", "res2_out"), ("stage 3 (16 x 10, 128)", "res3_conv_a",
                                                                     "res3_out"),
             ("stage 4 (8 x 5, 192)", "res4_conv_a", "res4_out"), ("pooling, logits, softmax", "pooled", "output")],
    "V2St": [("normalisation, input projection", "mel_norm", "tcn_in")] +
            [(f"block, dilation {d}", f"tcn{d}_conv_a", f"tcn{d}_out") for d in (1, 2, 4, 8, 16)] +
            [("pooling, logits, softmax", "pooled", "output")],
}


def source_parts(source, arch):
    """The source model cut into the parts the profile reports: [(name, function of the previous part's output)]."""
    import keras

    get = source.get_layer
    stft, magnitude, filterbank, decibel = get("mel_stft").layers

    def part(first, last):
        inputs = get(first).input
        sub = keras.Model(inputs, get(last).output)
        return lambda x: sub(x, training=False)

    return [("STFT (frames, Hann window, FFT)", lambda x: stft(get("add_channel")(x))),
            ("magnitude, mel filterbank, dB", lambda x: decibel(filterbank(magnitude(x))))] + \
        [(name, part(first, last)) for name, first, last in PARTS[arch]]


def layer_rows(source, prefix, steps, repeats):
    """(layer, forward ms, backward ms) of each conv layer whose name starts with ``prefix``, each run alone on a
    random input of the shape it sees in the model (batch of 32 waves): which resolution the time goes to."""
    from keras import layers as L

    rng = np.random.default_rng(2)
    rows = []
    for layer in source.layers:
        if layer.name.startswith(prefix) and isinstance(layer, (L.Conv2D, L.Conv2DTranspose)):
            shape = (32,) + tuple(layer.input.shape[1:])
            x = rng.standard_normal(shape).astype(np.float32)
            rows.append((f"{layer.name} {tuple(layer.input.shape[1:])} -> {layer.output.shape[-1]}",) +
                        part_timer(lambda t, layer=layer: layer(t), x, steps, repeats))
    return rows


def profile(length=500, segments=10, num_classes=2, batch=32, steps=5, repeats=5, val_size=720, arch="V2Sa"):
    """Rows (part, forward ms, backward ms) per training step, a dict of whole-step figures, and extra rows (the
    BiLSTMs as the training graph runs them; V2Su's U-Net convs one by one)."""
    import keras
    import tensorflow as tf

    from speech.source_model import build_source_model
    from ts_model import build_v2s, max_labels_per_class, random_mapping

    keras.utils.set_random_seed(0)
    source = build_source_model(arch)
    model = build_v2s(length, num_classes, source=source, segments=segments,
                      mapping=random_mapping(num_classes, max_labels_per_class(num_classes)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="ce")])
    rng = np.random.default_rng(0)
    series = rng.standard_normal((batch, length)).astype(np.float32)

    rows = []
    wave = model.get_layer("reprogram")(model.get_layer("encoding")(series))
    f, b = part_timer(lambda x: model.get_layer("reprogram")(model.get_layer("encoding")(x)), series,
                      steps, repeats)
    rows.append(("segment padding + delta", f, b))
    x = np.asarray(wave)
    from engine.training_graph import FrozenBiLSTM

    frozen_rows = []
    for name, fn in source_parts(source, arch):
        f, b = part_timer(fn, x, steps, repeats)
        rows.append((name, f, b))
        if name.startswith("BiLSTM"):  # the same part as training_graph runs it for a frozen source
            frozen = FrozenBiLSTM(source.get_layer(f"bilstm_{name[-1]}"))
            frozen_rows.append((f"{name} as FrozenBiLSTM (training step)",) + part_timer(frozen, x, steps, repeats))
        x = np.asarray(fn(tf.constant(x)))

    # The whole training step (forward, backward, Adam): as training.fit compiles it (the STFT by linearity), the
    # same step through the plain model, and model.fit's step (how runs trained before training.fit); per batch,
    # over a pass of 4 * steps batches so a pass's fixed cost is spread thin.
    from engine.training import StepFunctions

    n = batch * 4 * steps
    xs, ys = rng.standard_normal((n, length)).astype(np.float32), rng.integers(0, num_classes, n).astype(np.int32)
    whole = {}
    for name, step in (("spectral step", StepFunctions(model).train_step),
                       ("plain step", StepFunctions(model, train_outputs=model).train_step)):
        whole[name] = median_ms(lambda: [step(xs[i:i + batch], ys[i:i + batch]) for i in range(0, n, batch)],
                                1, repeats) / (4 * steps)
    model.fit(xs[:batch], ys[:batch], batch_size=batch, epochs=1, verbose=0)
    whole["model.fit step"] = median_ms(lambda: model.fit(xs, ys, batch_size=batch, epochs=1, verbose=0), 1,
                                        repeats) / (4 * steps)

    # Adam's update of delta alone.
    delta = model.get_layer("reprogram").delta
    grad = tf.constant(rng.standard_normal(delta.shape).astype(np.float32))
    optimizer = model.optimizer
    whole["Adam update"] = median_ms(tf.function(lambda: optimizer.apply_gradients([(grad, delta)])), steps,
                                     repeats)

    # Per-epoch extras of v2s_main.py: a validation pass and the checkpoint writes (last.keras + best weights).
    xv = rng.standard_normal((val_size, length)).astype(np.float32)
    predictor = StepFunctions(model)
    whole["validation pass"] = median_ms(lambda: predictor.predict(xv), 1, max(1, repeats // 2))
    with tempfile.TemporaryDirectory() as tmp:
        whole["checkpoint writes"] = median_ms(lambda: (model.save(os.path.join(tmp, "last.keras")),
                                                        model.save_weights(os.path.join(tmp, "b.weights.h5"))),
                                               1, repeats)
    if arch == "V2Su":
        frozen_rows += layer_rows(source, "unet_", steps, repeats)
    return rows, whole, frozen_rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=sorted(PARTS), default="V2Sa", help="Source architecture (random weights).")
    p.add_argument("--length", type=int, default=500, help="Series length L (FordA: 500).")
    p.add_argument("--segments", type=int, default=10, help="Copies m of the series (FordA default: 10).")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--val-size", type=int, default=720, help="Validation series per epoch (FordA's split: 720).")
    p.add_argument("--steps", type=int, default=5, help="Calls per timed pass.")
    p.add_argument("--repeats", type=int, default=5, help="Timed passes; the median is reported.")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: TensorFlow's choice).")
    args = p.parse_args(argv)
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rows, whole, frozen_rows = profile(args.length, args.segments, args.classes, args.batch_size, args.steps,
                                       args.repeats, args.val_size, args.arch)
    total = sum(f + b for _, f, b in rows)
    stft_backward = next(b for name, _, b in rows if name.startswith("STFT"))
    print(f"V2S training step, source {args.arch}, batch {args.batch_size}, series length {args.length}, "
          f"m = {args.segments}, threads {args.threads or 'default'}, cores {os.cpu_count()}")
    print("| part | forward ms | backward ms | share of the parts' sum |")
    print("|---|---|---|---|")
    for name, f, b in rows:
        print(f"| {name} | {f:.1f} | {b:.1f} | {100 * (f + b) / total:.0f}% |")
    print(f"| **sum of the parts** | | | {total:.1f} ms |")
    for name, f, b in frozen_rows:
        print(f"| {name} | {f:.1f} | {b:.1f} | |")
    step = whole["spectral step"]
    print(f"\nwhole training step, ms per batch of {args.batch_size} (samples/s):")
    for name in ("plain step", "model.fit step", "spectral step"):
        print(f"  {name:15s} {whole[name]:6.1f} ms ({1000 * args.batch_size / whole[name]:.0f} samples/s)")
    print(f"the parts sum to {total:.1f} ms, the plain step takes {whole['plain step']:.1f} ms; the spectral step "
          f"(training.fit's) drops most of the STFT's backward pass ({stft_backward:.1f} ms over the batch)")
    print(f"Adam update of delta: {whole['Adam update']:.2f} ms")
    epoch_steps = -(-4 * args.val_size // args.batch_size)  # the training steps of an epoch with a 20% split
    print(f"per epoch: validation pass over {args.val_size} series {whole['validation pass']:.0f} ms, checkpoint "
          f"writes {whole['checkpoint writes']:.0f} ms; against {epoch_steps} training steps "
          f"({epoch_steps * step / 1000:.1f} s) that is {100 * whole['validation pass'] / (epoch_steps * step):.0f}% "
          f"and {100 * whole['checkpoint writes'] / (epoch_steps * step):.1f}%")


if __name__ == "__main__":
    main()
