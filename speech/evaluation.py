r"""Evaluate a source model's weights on a GSC-layout folder or on the synthetic corpus.

In:  weights (``.weights.h5`` or ``.keras``) of a V2Sa / V2Su model; clips from ``--gsc-dir`` (any Speech Commands
     layout folder, split by speaker the way ``pretrain.py`` splits it) or from the synthetic corpus.
Out: accuracy printed, per-class accuracy, a confusion-matrix PNG (rows: true class, columns: predicted) and, with
     ``--card``, the figures written into the weights' model card (``evaluations``, one entry per data and split,
     with the command), so the card carries the real-speech accuracy beside the training figures.

    python source_evaluation.py --weights weight/v2sa.weights.h5 --gsc-dir ../shared/gsc --split val
    python source_evaluation.py --weights weight/v2st.weights.h5 --gsc-dir ../shared/gsc --split val --card \
        weight/v2st.json                               # records the accuracy in the shipped card (--card alone: a copy)
    python source_evaluation.py --weights weight/v2sa.weights.h5 --synthetic --split test
"""

import argparse
import os
import shlex
import sys

import numpy as np

from engine.errors import UsageError
from speech.commands import CLASSES, CORE_WORDS
from speech.spec import ARCHITECTURES


def evaluate(model, data, batch_size=128):
    """Accuracy, 36x36 confusion matrix and per-class accuracy of ``model`` on a ``SpeechSet``."""
    pred = np.argmax(model.predict(data.x, batch_size=batch_size, verbose=0), axis=1)
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    np.add.at(confusion, (data.y, pred), 1)
    support = confusion.sum(axis=1)
    per_class = {CLASSES[c]: float(confusion[c, c] / support[c]) for c in range(len(CLASSES)) if support[c]}
    core = np.isin(data.y, [CLASSES.index(w) for w in CORE_WORDS])
    return {"accuracy": float(np.mean(pred == data.y)), "confusion": confusion, "per_class": per_class,
            "clips": int(len(data)), "core_words_accuracy": float(np.mean(pred[core] == data.y[core])) if core.any()
            else None, "core_word_clips": int(core.sum())}


def plot_confusion(confusion, path, title):
    """Row-normalised confusion matrix as a PNG with class names on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(11, 10))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=90, fontsize=8)
    ax.set_yticks(range(len(CLASSES)), [f"{c} ({n})" for c, n in zip(CLASSES, rows[:, 0])], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (clips)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="fraction of the true class", fraction=0.046)
    fig.tight_layout()
    from utils import save_figure

    save_figure(fig, path, dpi=110)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="weight/v2sa.weights.h5", help="Weights file (.weights.h5 or .keras).")
    p.add_argument("--arch", choices=ARCHITECTURES, default=None,
                   help="Architecture of the weights (default: from the model card beside them, else V2Sa).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gsc-dir", help="Any Speech Commands layout folder (.wav or .flac).")
    src.add_argument("--synthetic", action="store_true", help="The synthetic eSpeak NG corpus (default config).")
    p.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                   help="Which part: real folders are split by speaker as pretrain.py does (or by GSC's own "
                        "lists when present); the synthetic corpus by voice variant.")
    p.add_argument("--real-val-percent", type=int, default=20, help="As in pretrain.py.")
    p.add_argument("--cache-dir", default=None, help="Synthetic corpus cache folder.")
    p.add_argument("--plot", default=None, help="Write the confusion matrix to this PNG.")
    p.add_argument("--card", nargs="?", const="", default=None, metavar="CARD",
                   help="Also record the accuracy, with this command, under 'evaluations' in a model card: alone, "
                        "in a copy of the card beside the weights at runs/cards/<prefix>.json; with a path, in that "
                        "card (e.g. weight/v2st.json, the shipped one: only when named).")
    return p


def record_in_card(source, path, key, result, command):
    """Add ``result`` (of ``evaluate``) under evaluations[key] to the card at ``path`` (started as a copy of the
    card ``source`` when it does not exist yet), atomically."""
    from utils import read_json, write_json

    card = read_json(path if os.path.isfile(path) else source)
    card.setdefault("evaluations", {})[key] = {
        "accuracy": result["accuracy"], "clips": result["clips"], "core_words_accuracy": result["core_words_accuracy"],
        "command": command}
    write_json(path, card)


def main(argv=None):
    from engine.errors import cli_errors

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    with cli_errors("source_evaluation.py"):
        return _run(args, "python source_evaluation.py " + shlex.join(argv))


def _run(args, command):
    from speech.source_model import load_source_model, model_card_path

    card = model_card_path(args.weights) if args.card is not None else None
    if args.card is not None and (card is None or not os.path.isfile(card)):
        raise UsageError(f"--card: no model card {card or 'for ' + args.weights} beside the weights (pretrain.py "
                         "writes one)")
    target = (args.card or os.path.join("runs", "cards", os.path.basename(card))) if card else None
    model = load_source_model(args.weights, args.arch)
    arch = model.name
    if args.gsc_dir:
        from speech.commands import load_gsc_folder, speaker_split

        data, split = load_gsc_folder(args.gsc_dir)
        if split is None:
            split = speaker_split(data.speakers, val_percent=args.real_val_percent)
        name = args.gsc_dir
    else:
        from speech.synthetic import DEFAULT_CACHE, CorpusConfig, load_or_generate

        wanted = ("train", "val", "test") if args.split == "all" else (args.split,)
        data, split = load_or_generate(CorpusConfig(), cache_dir=args.cache_dir or DEFAULT_CACHE, splits=wanted)
        name = "synthetic corpus"
    if args.split != "all":
        data = data.subset(split == args.split)
    if not len(data):
        raise UsageError(f"no clips in the {args.split!r} split of {name}")
    result = evaluate(model, data)
    print(f"{arch} weights {args.weights} on {name} [{args.split}]: accuracy {result['accuracy']:.4f} "
          f"({result['clips']} clips)")
    if result["core_words_accuracy"] is not None:
        print(f"  the 10 core words ({', '.join(CORE_WORDS)}): accuracy {result['core_words_accuracy']:.4f} "
              f"({result['core_word_clips']} clips)")
    for cls, acc in result["per_class"].items():
        print(f"  {cls:>9s} {acc:.3f}")
    if card:
        record_in_card(card, target, f"{'real' if args.gsc_dir else 'synthetic'} [{args.split}]", result, command)
        print(f"Wrote the accuracy into {target}")
    if args.plot:
        plot_confusion(result["confusion"], args.plot,
                       f"{arch} on {name} [{args.split}], accuracy {result['accuracy']:.3f}")
        print(f"Wrote {args.plot}")


if __name__ == "__main__":
    main()
