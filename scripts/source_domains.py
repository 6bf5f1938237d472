"""Table 5 here: does the source's domain matter? V2S and LP with sources trained on speech commands, music, speaker
identity and pitch, paired against the default V2Sa on the screening subset.

    AEON=.venv/lib/python3.11/site-packages/aeon/datasets/data
    # V2S on a ported source: a screen per source (scripts/screen.py), today's defaults otherwise
    python scripts/screen.py --data-dir ../shared/ucr $AEON --out results/screens/domains/resemblyzer \
        --flags="--source-model weight/resemblyzer.keras" --jobs 1
    # LP on every source's features (the features the V2S head reads, fm-encoded series, no program)
    python scripts/source_domains.py lp --data-dir ../shared/ucr $AEON --out results/screens/domains
    python scripts/source_domains.py table --out results/screens/domains --table results/notes/source_domains.md

Sources (``SOURCES``): the shipped V2Sa (speech commands, its V2S runs are the default screen
``results/screens/archive/fm_layers_lp_train``), the original attention RNN on real GSC v2, the two musicnn taggers
(music), Resemblyzer's voice encoder (speaker identity), CREPE tiny (pitch) and, as the control, V2Sa's
architecture untrained (``--source-weights random``). Each is read as V2S reads it: V2Sa
and the GSC v2 model through the layers head's pooled features (``ts_model.FEATURE_LAYERS``), a ported model
through ``speech.keras_source`` (the layer before its outputs, or its output, pooled over time if a sequence).

LP (``engine.linear_probe.fit_probe``) encodes every series with the default encoding (fm), reads the frozen
features once and fits the logistic regression, C chosen on V2S's validation split (seed 0, 20%). Out:
``<out>/lp.jsonl`` (one line per source and dataset, resumable), and ``table``: per source, LP's and V2S's mean
validation cross-entropy and test accuracy over the sets both columns have, and against V2Sa (V2S against V2S, LP
against LP) the count of sets with lower validation cross-entropy and a two-sided Wilcoxon signed-rank p. The
decision reads validation cross-entropy only; test accuracy is shown, never used.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/screen.py's SCREEN_SETS

from engine import tf_setup  # noqa: E402,F401  (before TensorFlow loads)
import numpy as np  # noqa: E402
from encoding_probe import read_records  # noqa: E402  (one JSON line per record; a torn last line skipped)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> (domain it was trained on, weights, V2S screen folder[, the layer read]); .weights.h5 files are V2S's own
# architectures. The "/layer" variants read a wider layer than the default one (the logits of a tagger, the pitch
# probabilities), a width closer to the 548 pooled values V2Sa's head reads: named before their LP ran.
SOURCES = {
    "V2Sa": ("speech commands (synthetic voices + 2,689 real clips)", "weight/v2sa.weights.h5",
             "results/screens/archive/fm_layers_lp_train"),
    "V2Sa_gscv2": ("speech commands (real GSC v2)", "weight/v2sa_gscv2.weights.h5", "results/screens/domains/gscv2"),
    "musicnn_mtt": ("music tags (MagnaTagATune)", "weight/musicnn_mtt.keras", "results/screens/domains/musicnn_mtt"),
    "musicnn_msd": ("music tags (Million Song Dataset)", "weight/musicnn_msd.keras",
                    "results/screens/domains/musicnn_msd"),
    "resemblyzer": ("speaker identity (real speech)", "weight/resemblyzer.keras", "results/screens/domains/resemblyzer"),
    "crepe_tiny": ("pitch", "weight/crepe_tiny.keras", "results/screens/domains/crepe_tiny"),
    "musicnn_mtt/max_pool": ("music tags (MagnaTagATune)", "weight/musicnn_mtt.keras", None, "max_pool"),
    "crepe_tiny/conv5_pool": ("pitch", "weight/crepe_tiny.keras", None, "conv5_pool"),
    "untrained": ("nothing (V2Sa's architecture, random weights)", "random", "results/screens/domains/untrained"),
}
BASELINE = "V2Sa"


def reader_of(name):
    """The frozen feature reader of source ``name``: (N, 16000) waveforms -> (N, D)."""
    from speech.keras_source import keras_source
    from speech.source_model import load_source_model
    from ts_model import feature_reader

    if SOURCES[name][1] == "random":
        from engine.runs import RunConfig, load_source
        from utils import set_seed

        # the weights a seed-0 run with --source-weights random draws: train() seeds, then builds the source first
        set_seed(0)
        return feature_reader(load_source(RunConfig(source_weights="random")))
    weights, layer = os.path.join(REPO, SOURCES[name][1]), (SOURCES[name][3:] or (None,))[0]
    return keras_source(weights, layer=layer) if weights.endswith(".keras") else \
        feature_reader(load_source_model(weights))


def run_lp(data_dirs, out, sources, datasets):
    from engine.linear_probe import fit_probe, frozen_features
    from engine.runs import RunConfig, encoder_for
    from ts_dataloader import load_ucr

    path = os.path.join(out, "lp.jsonl")
    done = {(r["source"], r["dataset"]) for r in read_records(path)}
    os.makedirs(out, exist_ok=True)
    config = RunConfig(head="layers").output_resolved()  # the default encoding (fm) and its parameters
    for name in sources:
        todo = [d for d in datasets if (name, d) not in done]
        if not todo:
            continue
        reader = reader_of(name)
        for dataset in todo:
            data_dir = next((d for d in data_dirs if os.path.isdir(os.path.join(d, dataset))), data_dirs[0])
            data = load_ucr(dataset, data_dir=data_dir)
            encoder = encoder_for(config, data.length, channels=data.channels)
            f_train, f_test = (frozen_features(reader, encoder, x, batch_size=16) for x in (data.x_train, data.x_test))
            result = fit_probe(f_train, data.y_train, f_test, data.y_test, data.num_classes, seed=0)
            record = {"source": name, "dataset": dataset, "val_ce": result.val_cross_entropy,
                      "val_accuracy": result.val_accuracy, "test_accuracy": result.test_accuracy, "C": result.C,
                      "features": result.features}
            with open(path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(f"{name} {dataset}: LP val CE {result.val_cross_entropy:.3f}, test {result.test_accuracy:.3f}",
                  flush=True)


def v2s_scores(folder):
    """{dataset: {"val_ce", "test_accuracy"}} of a screen's finished seed-0 runs."""
    import glob

    out = {}
    for path in glob.glob(os.path.join(REPO, folder, "*_s0", "summary.json")):
        with open(path) as fh:
            s = json.load(fh)
        out[s["dataset"]] = {"val_ce": s["val_cross_entropy"], "test_accuracy": s["test_accuracy"]}
    return out


def table(out):
    from results_table import wilcoxon_p

    lp = {}
    for r in read_records(os.path.join(out, "lp.jsonl")):
        if r["val_ce"] is not None:
            lp.setdefault(r["source"], {})[r["dataset"]] = r
    v2s = {name: v2s_scores(entry[2]) if entry[2] else {} for name, entry in SOURCES.items()}
    lines = ["| source | trained on | method | sets | mean val CE | mean test % | V2Sa's mean val CE, test % on those "
             "sets | sets with lower val CE than V2Sa | Wilcoxon p |", "|---|---|---|---|---|---|---|---|---|"]
    for name, (domain, *_) in SOURCES.items():
        for method, column in (("V2S", v2s), ("LP", lp)):
            mine, base = column.get(name, {}), column.get(BASELINE, {})
            sets = sorted(d for d in mine if d in base)
            if not sets:
                lines.append(f"| {name} | {domain} | {method} | 0 | | | | | |")
                continue
            ce, b_ce = [mine[d]["val_ce"] for d in sets], [base[d]["val_ce"] for d in sets]
            acc, b_acc = [mine[d]["test_accuracy"] for d in sets], [base[d]["test_accuracy"] for d in sets]
            against = "-" if name == BASELINE else (f"{sum(c < b for c, b in zip(ce, b_ce))} of {len(sets)}")
            p = "-" if name == BASELINE else f"{wilcoxon_p(b_ce, ce):.2g}"
            lines.append(f"| {name} | {domain} | {method} | {len(sets)} | {np.mean(ce):.3f} | {100 * np.mean(acc):.2f} "
                         f"| {np.mean(b_ce):.3f}, {100 * np.mean(b_acc):.2f} | {against} | {p} |")
    return "\n".join(lines)


def main(argv=None):
    from screen import SCREEN_SETS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=("lp", "table"))
    p.add_argument("--data-dir", nargs="+", help="lp: UCR folders (each dataset read from the first that holds it).")
    p.add_argument("--out", required=True, help="The screen folder (lp.jsonl).")
    p.add_argument("--sources", nargs="+", choices=list(SOURCES), default=list(SOURCES))
    p.add_argument("--datasets", nargs="+", default=SCREEN_SETS, help="Default: the screening subset (33 sets).")
    p.add_argument("--table", help="table: write the markdown here (default: print it).")
    args = p.parse_args(argv)
    if args.step == "lp":
        if not args.data_dir:
            p.error("lp needs --data-dir")
        run_lp(args.data_dir, args.out, args.sources, args.datasets)
    else:
        text = table(args.out)
        if args.table:
            with open(args.table, "w") as fh:
                fh.write(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
