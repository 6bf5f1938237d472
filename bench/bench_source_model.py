"""Source-model throughput: training and inference samples/s of V2Sa (and V2Su) at batch 32 and 128.

    python bench/bench_source_model.py [--arch V2Sa V2Su] [--steps 20] [--json bench/source_model.json]

Random one-second inputs; every figure is the median of ``--repeats`` timed passes after one warm-up pass. The
ratio rows compare batch 128 with batch 32 in the same run, on the same machine.
"""

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def throughput(model, batch, steps, repeats, train):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch * steps, 16000)) * 0.1).astype("float32")
    y = rng.integers(0, 36, batch * steps)
    run = (lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0)) if train else \
        (lambda: model.predict(x, batch_size=batch, verbose=0))
    run()  # warm-up: graph tracing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return len(x) / float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=["V2Sa", "V2Su"])
    p.add_argument("--steps", type=int, default=8, help="Batches per timed pass.")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    args = p.parse_args()
    import keras
    import tensorflow as tf

    from speech.source_model import build_source_model

    print(f"cores: {os.cpu_count()}  machine: {platform.machine()}  tensorflow {tf.__version__}  "
          f"keras {keras.__version__}")
    rows = []
    for arch in args.arch:
        model = build_source_model(arch)
        model.compile("adam", "sparse_categorical_crossentropy")
        for mode in ("train", "inference"):
            rate = {b: throughput(model, b, args.steps, args.repeats, mode == "train") for b in (32, 128)}
            rows.append({"arch": arch, "mode": mode, "batch32": rate[32], "batch128": rate[128],
                         "ratio_128_over_32": rate[128] / rate[32]})
            print(f"{arch:5s} {mode:9s} batch 32: {rate[32]:7.1f} samples/s   batch 128: {rate[128]:7.1f} "
                  f"samples/s   ratio {rate[128] / rate[32]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cores": os.cpu_count(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
