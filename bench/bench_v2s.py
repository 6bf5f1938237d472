"""V2S training throughput: the current training loop against the build before it, and a plain port.

    python bench/bench_v2s.py [--dataset FordA --data-dir ../shared/ucr] [--steps 20] [--threads 1]

All three train the same thing (delta on a frozen V2Sa, many-to-one mapping, Adam, batch 32) in one run on the
same machine, one after the other:
  now    - ``ts_model.build_v2s`` trained by ``training.fit``: one compiled step fed tensors directly.
  before - the same model trained by ``model.fit`` (how every run was trained before ``training.fit``).
  plain  - the reference layout under ``model.fit``: series zero-padded in NumPy to (N, 16000, 1) arrays up front,
           a squeeze, the perturbation layer, the source model, then the mapping as matmul + reshape + mean.
Reported: samples/s of each, the ratios, one epoch's wall time on the dataset (FordA: 3,601 series), and the size
of the input arrays each needs in memory. Random inputs of the dataset's shape are used when the dataset is not
available, and the output says so. ``--threads 1`` is how sweeps run (one TensorFlow thread per job).
"""

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine import tf_setup  # noqa: E402,F401  (before TensorFlow loads: the commands' settings)

import numpy as np

from bench.timing import median_seconds  # noqa: E402


def plain_port(source, length, num_classes, k, segments):
    """The reference code's structure: pre-padded waveforms in, mapping as matmul + reshape + mean."""
    import keras
    from keras import layers as L
    from keras import ops

    from ts_model import Reprogram

    inputs = keras.Input((16000, 1))
    x = L.Reshape((16000,))(inputs)
    x = Reprogram(l2=0.05, dropout=0.4)(x)
    probs = source(x, training=False)
    matrix = np.zeros((36, num_classes * k), np.float32)
    matrix[np.arange(num_classes * k), np.arange(num_classes * k)] = 1.0
    mapped = L.Lambda(lambda p: ops.mean(ops.reshape(ops.matmul(p, matrix), (-1, num_classes, k)), axis=-1))(probs)
    return keras.Model(inputs, mapped)


def pad_numpy(x, segments):
    out = np.zeros((len(x), 16000, 1), np.float32)
    stride = 16000 // segments
    for i in range(segments):
        out[:, i * stride:i * stride + x.shape[1], 0] = x
    return out


def time_keras_fit(model, x, y, batch, repeats):
    """Samples/s of ``model.fit`` over one pass of (x, y), median of ``repeats`` passes after a warm-up."""
    return len(x) / median_seconds(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), repeats,
                                   warm_up=lambda: model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch,
                                                             epochs=1, verbose=0))


def time_training_loop(model, x, y, batch, repeats):
    """Samples/s of ``training.fit`` (validation and checkpoints left out, as in the Keras timing)."""
    import tempfile

    from engine.training import StepFunctions, fit
    from utils import ResumableCheckpoint

    steps = StepFunctions(model)

    class NoWrites(ResumableCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            pass

    epochs = itertools.count()

    def one_epoch(tmp):
        r = next(epochs)
        fit(model, x, y, NoWrites(tmp), epochs=r + 1, initial_epoch=r, batch_size=batch, seed=0, steps=steps)

    with tempfile.TemporaryDirectory() as tmp:
        return len(x) / median_seconds(lambda: one_epoch(tmp), repeats,
                                       warm_up=lambda: steps.train_step(x[:batch], y[:batch].astype(np.int32)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="FordA")
    p.add_argument("--data-dir", default=os.environ.get("V2S_UCR_DIR"))
    p.add_argument("--steps", type=int, default=12, help="Batches per timed pass.")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seg", type=int, default=0, help="Segments m (0: as v2s_main.py chooses).")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: TensorFlow's choice).")
    args = p.parse_args()
    import keras
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from engine.runs import default_segments
    from speech.source_model import build_source_model
    from ts_dataloader import DatasetError, load_ucr
    from ts_model import build_v2s, sequential_mapping

    try:
        data = load_ucr(args.dataset, data_dir=args.data_dir)
        n_train, length, classes, origin = len(data.x_train), data.length, data.num_classes, data.source
    except DatasetError:
        n_train, length, classes, origin = 3601, 500, 2, "random stand-in of FordA's shape"
    segments = args.seg or default_segments(length)
    k = 36 // classes
    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = rng.standard_normal((n, length)).astype(np.float32)
    y = rng.integers(0, classes, n)
    print(f"cores: {os.cpu_count()}, threads: {args.threads or 'default'}  dataset: {args.dataset} ({origin}), "
          f"{n_train} train series of length {length}, m={segments}, k={k}, batch {args.batch_size}")
    rates = {}
    for name in ("now", "before", "plain"):
        keras.utils.set_random_seed(0)
        source = build_source_model("V2Sa")
        source.trainable = False
        if name == "plain":
            model, inputs = plain_port(source, length, classes, k, segments), pad_numpy(x, segments)
        else:
            model, inputs = build_v2s(length, classes, source=source, segments=segments,
                                      mapping=sequential_mapping(classes, k)), x
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        timer = time_training_loop if name == "now" else time_keras_fit
        rates[name] = timer(model, inputs, y, args.batch_size, args.repeats)
    for name, rate in rates.items():
        input_mb = n_train * (16000 if name == "plain" else length) * 4 / 2 ** 20
        print(f"{name:6s}: {rate:7.1f} samples/s   one {args.dataset} epoch: {n_train / rate:7.1f} s   "
              f"training inputs in memory: {input_mb:8.1f} MB")
    print(f"ratio now/before throughput: {rates['now'] / rates['before']:.2f}   "
          f"now/plain: {rates['now'] / rates['plain']:.2f}   input memory plain/ours: {16000 / length:.1f}x")


if __name__ == "__main__":
    main()
