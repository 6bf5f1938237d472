"""The LP screen of the encodings: what a frozen source model's features hold about a dataset under each way of
turning a series into audio, and under each set of frozen layers read, with no program trained.

    AEON=.venv/lib/python3.11/site-packages/aeon/datasets/data
    python scripts/encoding_probe.py --data-dir ../shared/ucr $AEON --out results/screens/encoding_lp
    python scripts/encoding_probe.py --out results/screens/encoding_lp --table-only    # rebuild the table

Per dataset (default: the 33 sets of the screening subset, ``scripts/screen.py``) and encoding candidate, every
series is encoded by the product's own layer (``ts_encoding.build_encoding``), the frozen source model (default:
the shipped V2Sa) reads it once, and each frozen layer is pooled (``ts_model.PooledFeatures``: a vector as it is,
a sequence by its mean, standard deviation and maximum over time). For each feature set, LP
(``engine.linear_probe.fit_probe``) chooses its C on the validation split V2S uses (seed 0, 20%), refits on the
training set and scores the test set once. The decision reads the validation cross-entropy only; test accuracy is
shown, never used.

Out (``--out``): ``records.jsonl``, one line per (dataset, encoding candidate) with every feature set's scores
(resumable: a rerun skips the lines it has), and ``table.md`` (or ``--table``): per candidate, the mean validation cross-entropy and
test accuracy, and against ``--baseline`` the sets where the validation cross-entropy is lower and a two-sided
Wilcoxon signed-rank test across the sets.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/screen.py's SCREEN_SETS

from engine import tf_setup  # noqa: E402  (before TensorFlow loads)
import numpy as np  # noqa: E402

# Encoding candidates: (encoding, its parameters), named before the screen ran. "fm" and "am" are the defaults of
# speech.spec; the others move one parameter each.
ENCODINGS = {
    "pad": ("pad", {}),
    "fm": ("fm", {}),
    "fm_narrow": ("fm", {"deviation": 200.0}),
    "fm_low": ("fm", {"carrier": 400.0, "deviation": 300.0}),
    "fm_high": ("fm", {"carrier": 1000.0, "deviation": 600.0}),
    "fm_clip2": ("fm", {"clip": 2.0}),
    "am": ("am", {}),
    "am_deep": ("am", {"depth": 60.0}),
    "am_1k": ("am", {"carrier": 1000.0}),
}
# Feature sets: the frozen layers read together. "att" is what LP and the attention head read today.
FEATURE_SETS = {
    "att": ("att_vector", "logits"),
    "lstm1": ("bilstm_1", "att_vector", "logits"),
    "deep": ("bilstm_1", "bilstm_2", "att_vector", "logits"),
    "wide": ("mel_norm", "bilstm_1", "bilstm_2", "att_vector", "logits"),
}
# The parameter variants are screened with one feature set each, the base encodings with all of them.
BASE_ENCODINGS = ("pad", "fm", "am")
VARIANT_FEATURES = ("lstm1",)


def candidates():
    """[(encoding candidate, feature set)] of the screen."""
    return [(e, f) for e in ENCODINGS for f in FEATURE_SETS if e in BASE_ENCODINGS or f in VARIANT_FEATURES]


def layer_blocks(reader, encoder, x, batch_size=64):
    """{layer: (N, d) pooled block} of series x (N, L) under ``encoder``; ``reader`` outputs one block per layer."""
    blocks = None
    for i in range(0, len(x), 512):
        waves = np.asarray(encoder(np.asarray(x[i:i + 512], np.float32)))
        out = reader.predict(waves, batch_size=batch_size, verbose=0)
        out = [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
        blocks = out if blocks is None else [np.concatenate([a, b]) for a, b in zip(blocks, out)]
    return dict(zip(reader.layer_names, blocks))


def block_reader(source, layers):
    """A Keras model (N, 16000) -> [one pooled (N, d) block per layer of ``layers``]."""
    import keras

    from ts_model import PooledFeatures

    reader = keras.Model(source.input, [PooledFeatures(name=f"pooled_{name}")([source.get_layer(name).output])
                                        for name in layers])
    reader.layer_names = list(layers)
    return reader


def probe_dataset(reader, data, encoding, seed=0):
    """{feature set: scores} for one dataset under one encoding candidate (those of ``candidates()``)."""
    from engine.linear_probe import fit_probe
    from engine.runs import default_segments
    from ts_encoding import build_encoding

    kind, params = ENCODINGS[encoding]
    encoder = build_encoding(kind, data.length, default_segments(data.length), **params)
    train, test = layer_blocks(reader, encoder, data.x_train), layer_blocks(reader, encoder, data.x_test)
    scores = {}
    for features in [f for e, f in candidates() if e == encoding]:
        layers = FEATURE_SETS[features]
        result = fit_probe(np.concatenate([train[n] for n in layers], 1), data.y_train,
                           np.concatenate([test[n] for n in layers], 1), data.y_test, data.num_classes, seed=seed)
        scores[features] = {"val_ce": result.val_cross_entropy, "val_accuracy": result.val_accuracy,
                            "test_accuracy": result.test_accuracy, "C": result.C, "width": result.features}
    return scores


def screen_scores(folder):
    """{dataset: scores} of a screen's run folders (``scripts/screen.py``, seed 0): V2S's validation cross-entropy and
    test accuracy, to stand beside the LP candidates as one more."""
    import glob

    out = {}
    for path in glob.glob(os.path.join(folder, "*_s0", "summary.json")):
        with open(path) as fh:
            s = json.load(fh)
        out[s["dataset"]] = {"val_ce": s["val_cross_entropy"], "test_accuracy": s["test_accuracy"]}
    return out


def table(records, baseline, runs=None):
    """Markdown: per candidate the mean validation cross-entropy and test accuracy over the sets every candidate
    has, and against ``baseline`` the sets where the validation cross-entropy is lower and Wilcoxon's p. ``runs``:
    {name: {dataset: scores}} of V2S screens (``screen_scores``) to compare as candidates too."""
    from results_table import wilcoxon_p

    by_set = {}
    for r in records:
        for features, s in r["scores"].items():
            by_set.setdefault(r["dataset"], {})[f"{r['encoding']}/{features}"] = s
    for name, scores in (runs or {}).items():
        for dataset, s in scores.items():
            by_set.setdefault(dataset, {})[name] = s
    names = [f"{e}/{f}" for e, f in candidates()] + list(runs or {})
    sets = sorted((d for d, s in by_set.items() if all(n in s and s[n]["val_ce"] is not None for n in names)),
                  key=str.lower)
    if not sets:
        return "(no dataset has every candidate yet)"
    base = [by_set[d][baseline]["val_ce"] for d in sets]
    lines = [f"{len(sets)} datasets; baseline {baseline}. Lower validation cross-entropy (CE) is better.", "",
             "| candidate | mean val CE | median val CE | sets with lower val CE than the baseline | Wilcoxon p | "
             "mean test % |", "|---|---|---|---|---|---|"]
    rows = []
    for name in names:
        ce = [by_set[d][name]["val_ce"] for d in sets]
        test = [by_set[d][name]["test_accuracy"] for d in sets]
        lower = sum(c < b for c, b in zip(ce, base))
        higher = sum(c > b for c, b in zip(ce, base))
        p = "-" if name == baseline else f"{wilcoxon_p(base, ce):.2g}"
        rows.append((np.mean(ce), f"| {name} | {np.mean(ce):.3f} | {np.median(ce):.3f} | "
                     f"{'-' if name == baseline else f'{lower} (higher on {higher})'} | {p} | "
                     f"{100 * np.mean(test):.2f} |"))
    lines += [row for _, row in sorted(rows)]
    lines += ["", "Per dataset, validation cross-entropy (test accuracy %):", "",
              "| dataset | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for d in sets:
        cells = [f"{by_set[d][n]['val_ce']:.3f} ({100 * by_set[d][n]['test_accuracy']:.1f})" for n in names]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_records(path):
    """The records of ``path``; a line torn by a killed run is skipped (its dataset and encoding run again)."""
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def build_parser():
    from screen import SCREEN_SETS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", nargs="+", default=None,
                   help="UCR archive folders; each dataset is read from the first that holds it.")
    p.add_argument("--datasets", nargs="+", default=SCREEN_SETS, help="Default: the screening subset (33 sets).")
    p.add_argument("--encodings", nargs="+", choices=list(ENCODINGS), default=list(ENCODINGS),
                   help="Encoding candidates to run (default: all).")
    p.add_argument("--source-weights", default=None, help="Source weights (default: the shipped V2Sa).")
    p.add_argument("--out", required=True, help="Screen folder (records.jsonl, table.md).")
    p.add_argument("--baseline", default="pad/att", help="The candidate the others are paired against.")
    p.add_argument("--table", default=None, help="Where the table goes (default: <out>/table.md).")
    p.add_argument("--runs", nargs="+", default=(), metavar="NAME=FOLDER",
                   help="V2S screens (scripts/screen.py folders) to set beside the LP candidates, each as a candidate "
                        "named NAME (validation cross-entropy of its chosen epoch; the same split).")
    p.add_argument("--table-only", action="store_true", help="Only rebuild table.md from records.jsonl.")
    return p


def main(argv=None):
    from engine.errors import cli_errors

    args = build_parser().parse_args(argv)
    with cli_errors("encoding_probe.py"):
        return _run(args)


def _run(args):
    from engine.errors import UsageError
    from engine.runs import DEFAULT_WEIGHTS
    from utils import atomic_write

    path = os.path.join(args.out, "records.jsonl")
    runs = {}
    for pair in args.runs:
        name, sep, folder = pair.partition("=")
        if not sep or not os.path.isdir(folder):
            raise UsageError(f"--runs {pair!r}: expected NAME=FOLDER with FOLDER a screen's folder of run folders")
        runs[name] = screen_scores(folder)
    if args.baseline not in [f"{e}/{f}" for e, f in candidates()] + list(runs):
        raise UsageError(f"--baseline {args.baseline!r} is not a candidate (encoding/features, e.g. pad/att)")
    if not args.table_only:
        from speech.source_model import load_source_model
        from ts_dataloader import load_ucr

        if not args.data_dir:
            raise UsageError("--data-dir is required unless --table-only")
        os.makedirs(args.out, exist_ok=True)
        done = {(r["dataset"], r["encoding"]) for r in read_records(path)}
        source = load_source_model(args.source_weights or DEFAULT_WEIGHTS["V2Sa"])
        reader = block_reader(source, sorted({n for layers in FEATURE_SETS.values() for n in layers}))
        for dataset in args.datasets:
            todo = [e for e in args.encodings if (dataset, e) not in done]
            if not todo:
                continue
            data_dir = next((d for d in args.data_dir if os.path.isdir(os.path.join(d, dataset))), args.data_dir[0])
            data = load_ucr(dataset, data_dir=data_dir)
            for encoding in todo:
                scores = probe_dataset(reader, data, encoding)
                with open(path, "a") as fh:
                    fh.write(json.dumps({"dataset": dataset, "encoding": encoding, "scores": scores}) + "\n")
                print(f"{dataset} {encoding}: " + ", ".join(f"{f} {s['val_ce']:.3f}" for f, s in scores.items()
                                                            if s["val_ce"] is not None), flush=True)
    text = table(read_records(path), args.baseline, runs)
    def write(tmp):
        with open(tmp, "w") as fh:
            fh.write(text + "\n")

    atomic_write(args.table or os.path.join(args.out, "table.md"), write)
    print(text)
    return text


if __name__ == "__main__":
    tf_setup.quiet_stderr()
    main()
