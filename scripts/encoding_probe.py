"""How much a frozen source model's features say about a dataset's classes, for several ways of turning a series
into one second of audio: a linear probe on the training set only.

    python scripts/encoding_probe.py --data-dir ../shared/ucr --datasets GunPoint ECG200 Plane \
        [--source-weights weight/v2sa.weights.h5] [--encodings pad stretch2 stretch10 am1k fm] [--md probe.md]

V2S hears a series as m zero-padded copies (``pad``). Whether another encoding would give the frozen model more to
work with can be asked without training any program: encode every training series, read the frozen model's
attention vector (128 values) and its 36 logits (what V2S's label mapping reads), and fit a logistic regression
on each, scored by stratified k-fold cross-validation on the training set. A lower cross-validated cross-entropy
means the features separate the classes better. The test set is never read.

In:  UCR datasets (``ts_dataloader.load_ucr``); a source weights file (default: the shipped V2Sa).
Out: a markdown table on stdout (and ``--md``): per dataset and encoding, the cross-validated cross-entropy (nats)
     of the probe on the attention vector and on the logits, with means over the datasets and on how many each
     encoding beats ``pad``.

Encodings, each (N, L) series -> (N, 16000) waveform:
  pad        V2S's input: m = min(10, 16000 // L) copies at equal intervals, zeros between (``SegmentZeroPadding``)
  stretchK   the series resampled (linear interpolation) to 16000 / K samples, K copies back to back
  am1k       the series, resampled to one second, as the amplitude of a 1 kHz tone
  fm         the series, resampled to one second, as the pitch of a tone: 1 kHz +- 500 Hz * tanh(series)
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import tf_setup  # noqa: E402  (before TensorFlow loads)
import numpy as np  # noqa: E402

from engine.linear_probe import READOUTS, feature_reader, read_features  # noqa: E402
from speech.source_model import SAMPLE_RATE  # noqa: E402

ENCODINGS = ("pad", "stretch2", "stretch10", "am1k", "fm")
CARRIER_HZ = 1000.0
FM_DEVIATION_HZ = 500.0


def resample(x, length):
    """(N, L) -> (N, length) by linear interpolation over the same span."""
    old = np.linspace(0.0, 1.0, x.shape[1])
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, row) for row in x]).astype(np.float32)


def check_encoding(name):
    """Raise a one-line ValueError unless ``name`` is one of ENCODINGS or ``stretchK`` with 1 <= K <= 16000."""
    copies = name[len("stretch"):]
    if name in ENCODINGS or (name.startswith("stretch") and copies.isdigit() and 1 <= int(copies) <= SAMPLE_RATE):
        return
    raise ValueError(f"unknown encoding {name!r}; expected one of {ENCODINGS} or stretchK (K copies, 1..16000)")


def encode(x, name):
    """Series (N, L) -> waveforms (N, 16000) by the encoding ``name`` (one of ENCODINGS or ``stretchK``)."""
    check_encoding(name)
    x = np.asarray(x, np.float32)
    if name == "pad":
        from engine.runs import default_segments
        from ts_model import SegmentZeroPadding

        return np.asarray(SegmentZeroPadding(x.shape[1], default_segments(x.shape[1]))(x))
    if name.startswith("stretch"):
        copies = int(name[len("stretch"):])
        one = resample(x, SAMPLE_RATE // copies)
        out = np.zeros((len(x), SAMPLE_RATE), np.float32)
        out[:, :copies * one.shape[1]] = np.tile(one, (1, copies))
        return out
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    series = resample(x, SAMPLE_RATE)
    if name == "am1k":
        return (series * np.sin(2 * np.pi * CARRIER_HZ * t)).astype(np.float32)
    frequency = CARRIER_HZ + FM_DEVIATION_HZ * np.tanh(series)  # fm
    phase = 2 * np.pi * np.cumsum(frequency, axis=1) / SAMPLE_RATE
    return (0.5 * np.sin(phase)).astype(np.float32)


def probe_cross_entropy(f, y, folds=5, C=0.1, seed=0):
    """Cross-validated cross-entropy (nats) of a standardised logistic regression on features f (N, d)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine.training import cross_entropy

    folds = int(min(folds, np.bincount(y).min()))
    if folds < 2:
        raise ValueError("every class needs at least two training series for cross-validation")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probs = cross_val_predict(probe, f, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              method="predict_proba")
    return cross_entropy(probs, y)


def probe_dataset(reader, x, y, encodings, folds=5, C=0.1):
    """{(encoding, readout): cross-validated cross-entropy} for one training set (``reader``:
    ``engine.linear_probe.feature_reader``)."""
    out = {}
    for name in encodings:
        for readout, f in zip(READOUTS, read_features(reader, encode(x, name))):
            out[name, readout] = probe_cross_entropy(f, y, folds, C)
    return out


def table(results, encodings):
    """Markdown: one row per dataset, a column per (readout, encoding), then means and wins against ``pad``."""
    columns = [(e, r) for r in READOUTS for e in encodings]
    lines = ["| dataset | " + " | ".join(f"{r} {e}" for e, r in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for dataset, scores in results.items():
        lines.append(f"| {dataset} | " + " | ".join(f"{scores[c]:.3f}" for c in columns) + " |")
    means = [np.mean([s[c] for s in results.values()]) for c in columns]
    lines.append("| **mean** | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    wins = [sum(s[c] < s["pad", c[1]] for s in results.values()) for c in columns]
    lines.append("| lower than pad (sets) | " + " | ".join("-" if e == "pad" else str(w)
                                                           for (e, _), w in zip(columns, wins)) + " |")
    return "\n".join(lines)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="UCR archive folder.")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--source-weights", default=None, help="Source weights (default: the shipped V2Sa).")
    p.add_argument("--encodings", nargs="+", default=list(ENCODINGS), help=f"Default: {' '.join(ENCODINGS)}.")
    p.add_argument("--folds", type=int, default=5, help="Cross-validation folds (fewer when a class is smaller).")
    p.add_argument("--C", type=float, default=0.1, help="Inverse L2 strength of the logistic regression.")
    p.add_argument("--md", default=None, help="Also write the table to this file.")
    return p


def main(argv=None):
    from engine.errors import UsageError

    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (UsageError, ValueError) as err:
        raise SystemExit(f"encoding_probe.py: error: {err}") from None


def _run(args):
    from engine.runs import DEFAULT_WEIGHTS
    from speech.source_model import load_source_model
    from ts_dataloader import load_ucr

    for name in args.encodings:
        check_encoding(name)
    if args.folds < 2 or not args.C > 0:
        raise ValueError(f"--folds must be at least 2 and --C positive, got {args.folds} and {args.C}")
    reader = feature_reader(load_source_model(args.source_weights or DEFAULT_WEIGHTS["V2Sa"]))
    results = {}
    for dataset in args.datasets:
        data = load_ucr(dataset, data_dir=args.data_dir)
        results[dataset] = probe_dataset(reader, data.x_train, data.y_train, args.encodings, args.folds, args.C)
        print(f"{dataset}: " + ", ".join(f"{e}/{r} {v:.3f}" for (e, r), v in results[dataset].items()), flush=True)
    text = table(results, args.encodings)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
