"""What each source model costs: parameters, multiply-accumulates per second of audio, and measured throughput.

    python bench/bench_source_model.py [--arch V2Sa V2Su V2Sr V2St] [--steps 8] [--json bench/source_model.json]
                                       [--cards weight/v2sa.json weight/v2su.json ...]
    python bench/bench_source_model.py --from-json bench/source_model.json --cards weight/v2st.json

Per architecture: parameters and MACs for one one-second clip (``speech.complexity``: front end and network), then
samples/s of inference (``predict``), of a pretraining step (``fit``: forward, backward, Adam on every weight) at
batch 32 and 128, and of a V2S reprogramming step (the frozen source under ``training.fit``'s compiled step, one
program, batch 32, series of length 500 copied m = 10 times, FordA's shape): the step a user waits on. Random
inputs; each figure is the median of ``--repeats`` timed passes after one warm-up pass. The ratios in the output
compare figures of one run on one machine. ``--cards`` writes each architecture's row into the model cards named
(a card's ``complexity`` entry, with this command), so the cards and weight/README.md carry the same figures.
"""

import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine import tf_setup  # noqa: E402,F401  (before TensorFlow loads: the commands' settings)

import numpy as np

from bench.timing import median_seconds  # noqa: E402
from speech.spec import ARCHITECTURES

REPROGRAM_LENGTH, REPROGRAM_SEGMENTS = 500, 10


def source_rate(model, batch, steps, repeats, train):
    """Pretraining (``fit``) or inference (``predict``) samples/s of a source model at ``batch``."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch * steps, 16000)) * 0.1).astype("float32")
    y = rng.integers(0, 36, batch * steps)
    run = (lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0)) if train else \
        (lambda: model.predict(x, batch_size=batch, verbose=0))
    return len(x) / median_seconds(run, repeats)


def reprogram_rate(source, batch, steps, repeats):
    """Samples/s of V2S's training step on a frozen ``source`` (the compiled step of ``training.fit``)."""
    import keras

    from engine.training import StepFunctions
    from ts_model import build_v2s, max_labels_per_class, random_mapping

    source.trainable = False
    model = build_v2s(REPROGRAM_LENGTH, 2, source=source, segments=REPROGRAM_SEGMENTS,
                      mapping=random_mapping(2, max_labels_per_class(2)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    step = StepFunctions(model).train_step
    rng = np.random.default_rng(0)
    n = batch * steps
    xs = rng.standard_normal((n, REPROGRAM_LENGTH)).astype(np.float32)
    ys = rng.integers(0, 2, n).astype(np.int32)
    return n / median_seconds(lambda: [step(xs[i:i + batch], ys[i:i + batch]) for i in range(0, n, batch)], repeats)


def measure(arch, steps, repeats):
    """One row of the table for ``arch``."""
    import keras

    from speech.complexity import complexity
    from speech.source_model import build_source_model

    keras.utils.set_random_seed(0)
    model = build_source_model(arch)
    row = {"arch": arch, **complexity(model)}
    model.compile("adam", "sparse_categorical_crossentropy")
    for mode in ("train", "inference"):
        rate = {b: source_rate(model, b, steps, repeats, mode == "train") for b in (32, 128)}
        row[f"{mode}_batch32"], row[f"{mode}_batch128"] = rate[32], rate[128]
    row["reprogram_batch32"] = reprogram_rate(model, 32, steps, repeats)
    return row


def host():
    """The CPU's model name and core count, as the figures' context (e.g. "AMD EPYC, 2 cores")."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def write_cards(rows, cards, command, host_name):
    """Put each row into the model cards of its architecture (a card's ``architecture`` names it)."""
    by_arch = {row["arch"]: row for row in rows}
    for path in cards:
        with open(path) as fh:
            card = json.load(fh)
        row = by_arch.get(card.get("architecture", "V2Sa"))
        if row is None:
            print(f"{path}: its architecture {card.get('architecture')} was not measured; left as it is")
            continue
        card["complexity"] = {**{k: v for k, v in row.items() if k != "arch"}, "command": command, "host": host_name,
                              "units": "parameters; MACs per one-second clip; samples/s on the host"}
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(card, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES))
    p.add_argument("--steps", type=int, default=8, help="Batches per timed pass.")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    p.add_argument("--cards", nargs="*", default=[], help="Model cards (weight/*.json) to write the figures into.")
    p.add_argument("--from-json", default=None,
                   help="Measure nothing: write the figures of an earlier run's --json file (its command and host "
                        "with them) into --cards, e.g. for weights trained after the measurement.")
    args = p.parse_args()
    if args.from_json:
        try:
            with open(args.from_json) as fh:
                earlier = json.load(fh)
            rows, command, host_name = earlier["rows"], earlier["command"], earlier["host"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"bench_source_model.py: error: --from-json {args.from_json}: expected the JSON file an earlier "
                  f"--json run wrote ({type(err).__name__}: {err})", file=sys.stderr)
            sys.exit(2)
        write_cards(rows, args.cards, command, host_name)
        return
    import keras
    import tensorflow as tf

    print(f"cores: {os.cpu_count()}  machine: {platform.machine()}  tensorflow {tf.__version__}  "
          f"keras {keras.__version__}")
    print("| source | parameters | MACs / s of audio (network + front end) | inference, batch 32 | pretraining "
          "step, batch 32 | V2S reprogramming step, batch 32 |")
    print("|---|---|---|---|---|---|")
    rows = []
    for arch in args.arch:
        row = measure(arch, args.steps, args.repeats)
        rows.append(row)
        macs = f"{row['network_macs'] / 1e6:.1f}M + {row['front_end_macs'] / 1e6:.1f}M"
        rates = " | ".join(f"{row[k]:.1f} samples/s" for k in ("inference_batch32", "train_batch32",
                                                                  "reprogram_batch32"))
        print(f"| {arch} | {row['parameters']:,} | {macs} | {rates} |", flush=True)
    command = "python " + " ".join(sys.argv)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"host": host(), "command": command, "rows": rows}, fh, indent=2)
    write_cards(rows, args.cards, command, host())


if __name__ == "__main__":
    main()
