"""Pretrain a V2S source model (V2Sa or V2Su) on one-second speech commands.

Data: a Google Speech Commands folder (``--gsc-dir``), the offline synthetic eSpeak NG corpus (``--synthetic``),
or both mixed (the recipe of the shipped weights). Real clips are split by speaker, synthetic ones by voice.

Out: ``<out>.weights.h5`` (the model's weights), ``<out>.json`` (model card) and ``<out>_confusion.png``;
checkpoints in ``<out>_ckpt/`` (at every epoch's end and every ``--checkpoint-minutes`` within an epoch) so that
``--resume`` continues a killed run where it stopped. Weights already at ``--out`` are replaced only with
``--force``; the default ``--out`` lies under runs/, so the shipped weights change only when a command names them.

    python pretrain.py --synthetic --gsc-dir ../shared/gsc                 # shipped recipe -> runs/pretrain/v2sa
    python pretrain.py --synthetic --out runs/pretrain/v2sa_synthetic      # no recordings needed
"""

import argparse
import os
import shlex
import sys
import time

import numpy as np

from engine.errors import UsageError
from speech.commands import SAMPLE_RATE
from speech.spec import ARCHITECTURES


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--gsc-dir", default=None,
                      help="Speech Commands folder (<word>/<speaker>_nohash_<n>.wav or .flac; _silence_ and "
                           "_background_noise_ give class 0). Split by speaker unless it has GSC's own lists.")
    data.add_argument("--synthetic", action="store_true",
                      help="Use the synthetic eSpeak NG corpus (generated on first use, then cached).")
    data.add_argument("--variants", type=int, default=0,
                      help="Synthetic voice variants to use (0 = all 104; each is spoken in 8 English accents).")
    data.add_argument("--clips-per-voice", type=int, default=1,
                      help="Synthetic clips of each word per voice (accent x variant).")
    data.add_argument("--corpus-seed", type=int, default=0, help="Seed of the synthetic corpus.")
    data.add_argument("--cache-dir", default=None,
                      help="Where the synthetic corpus is cached (default: ./data or $V2S_CACHE).")
    data.add_argument("--real-val-percent", type=int, default=20,
                      help="Percent of real speakers held out for validation (by speaker-id hash).")
    data.add_argument("--real-repeat", type=int, default=3,
                      help="How often each real training clip is shown per epoch (real clips are few).")
    data.add_argument("--max-per-class", type=int, default=None,
                      help="Keep at most this many real clips per class (quick trials).")
    aug = p.add_argument_group("augmentation (training only)")
    aug.add_argument("--time-shift", type=float, default=0.1,
                     help="Largest random shift of a clip in seconds (zero-filled).")
    aug.add_argument("--speed", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                     help="Speed perturbation: resample half of the training clips by a random factor in "
                          "[LOW, HIGH] (>1 raises pitch and formants, like a shorter vocal tract), e.g. 0.85 1.4.")
    aug.add_argument("--noise-mix", type=float, default=0.5,
                     help="Probability of mixing a real background-noise clip into a training clip.")
    aug.add_argument("--time-mask", type=int, default=12,
                     help="SpecAugment: widest masked band of spectrogram frames (0 = off).")
    aug.add_argument("--freq-mask", type=int, default=8,
                     help="SpecAugment: widest masked band of mel bins (0 = off).")
    train = p.add_argument_group("training")
    train.add_argument("--arch", choices=ARCHITECTURES, default="V2Sa",
                       help="V2Sa: attention RNN (0.2M params); V2Su: with a U-Net block (0.3M); V2Sr: residual CNN "
                            "(0.9M); V2St: temporal convolutional network (1.0M).")
    train.add_argument("--epochs", type=int, default=30, help="Largest number of epochs.")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (cosine decay to lr/20).")
    train.add_argument("--patience", type=int, default=6,
                       help="Early stopping: epochs without a lower validation loss before stopping.")
    train.add_argument("--bn-momentum", type=float, default=0.99,
                       help="Batch-norm moving-average momentum; lower it (e.g. 0.8) for runs of a few hundred "
                            "steps, whose moving statistics would otherwise lag far behind.")
    train.add_argument("--seed", type=int, default=0, help="Seed of initialisation, shuffling and augmentation.")
    train.add_argument("--init-weights", default=None,
                       help="Start from these weights (fine-tuning stage); their model card, if beside them, is "
                            "copied into the new card as 'previous_stage'.")
    train.add_argument("--out", default=None,
                       help="Output prefix: writes <out>.weights.h5, <out>.json and <out>_confusion.png. Default "
                            "runs/pretrain/<arch in lower case>; the shipped weights in weight/ change only when "
                            "--out names them.")
    train.add_argument("--resume", action="store_true", help="Continue from the checkpoints in <out>_ckpt/.")
    train.add_argument("--force", action="store_true",
                       help="Replace the weights, card and checkpoints already at --out (otherwise refused).")
    train.add_argument("--checkpoint-minutes", type=float, default=10.0,
                       help="Also checkpoint within an epoch every this many minutes, so a killed run loses at most "
                            "about that much (0 = at epoch ends only).")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress output.")
    return p


def check_args(args):
    """One-line errors for numeric flags out of range (before any data is read)."""
    import math

    if args.out is None:
        args.out = os.path.join("runs", "pretrain", args.arch.lower())
    rules = (
        (not (args.resume and args.force), "--resume continues the training at --out, --force replaces it; pick one"),
        (args.epochs >= 1, f"--epochs must be at least 1, got {args.epochs}"),
        (args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}"),
        (math.isfinite(args.lr) and args.lr > 0, f"--lr must be a positive number, got {args.lr}"),
        (args.patience >= 1, f"--patience must be at least 1, got {args.patience}"),
        (math.isfinite(args.checkpoint_minutes) and args.checkpoint_minutes >= 0,
         f"--checkpoint-minutes must be 0 or more, got {args.checkpoint_minutes}"),
        (0 <= args.noise_mix <= 1, f"--noise-mix must lie in [0, 1], got {args.noise_mix}"),
        (0 < args.real_val_percent < 100, f"--real-val-percent must lie in (0, 100), got {args.real_val_percent}"),
        (args.time_shift >= 0, f"--time-shift must be 0 or more, got {args.time_shift}"),
    )
    for ok, message in rules:
        if not ok:
            raise UsageError(message)
    check_out(args)


def check_out(args):
    """Refuse to replace earlier weights at --out without --force, and a --resume with nothing to resume."""
    from utils import resume_state

    ckpt = f"{args.out}_ckpt"
    if args.resume and resume_state(ckpt) is None:
        raise UsageError(f"--resume: no checkpoint in {ckpt} to continue; drop --resume to start a new training")
    if not (args.resume or args.force) and resume_state(ckpt) is not None:
        raise UsageError(f"--out {args.out}: {ckpt} holds an unfinished training; --resume continues it, --force "
                         "starts again")
    earlier = [p for p in (f"{args.out}.weights.h5", f"{args.out}.json") if os.path.exists(p)]
    if earlier and not (args.resume or args.force):
        raise UsageError(f"--out {args.out}: {earlier[0]} exists (a finished or other training); --force replaces "
                         "it, --resume continues it, or choose another --out")


def load_data(args):
    """Returns dict split -> SpeechSet (train / val / test; 'real_val' and 'real_test' when real data is given)."""
    from speech.commands import SpeechSet, load_gsc_folder, speaker_split

    parts = {"train": [], "val": [], "test": []}
    sets = {}
    if args.synthetic:
        from speech.synthetic import DEFAULT_CACHE, CorpusConfig, load_or_generate

        config = CorpusConfig(seed=args.corpus_seed, variants=args.variants, clips_per_voice=args.clips_per_voice)
        syn, split = load_or_generate(config, cache_dir=args.cache_dir or DEFAULT_CACHE)
        for name in parts:
            parts[name].append(syn.subset(split == name))
        sets["synthetic_test"] = syn.subset(split == "test")
    if args.gsc_dir:
        real, split = load_gsc_folder(args.gsc_dir, max_per_class=args.max_per_class, seed=args.seed)
        if split is None:
            split = speaker_split(real.speakers, val_percent=args.real_val_percent)
        parts["train"] += [real.subset(split == "train")] * args.real_repeat
        parts["val"].append(real.subset(split == "val"))
        sets["real_val"] = real.subset(split == "val")
        sets["real_train_noise"] = real.subset((split == "train") & (real.y == 0))
        if (split == "test").any():
            parts["test"].append(real.subset(split == "test"))
            sets["real_test"] = real.subset(split == "test")
    if not parts["train"]:
        raise UsageError("give --synthetic, --gsc-dir PATH, or both")
    for name, chunks in parts.items():
        if chunks:
            sets[name] = SpeechSet.concat(chunks)
    return sets


def speed_perturb(rng, x, low, high, prob=0.5):
    """Resample each clip with probability ``prob`` by a factor in [low, high]: y(t) = x(r t), zero past the end."""
    out = x.copy()
    t = np.arange(x.shape[1], dtype=np.float64)
    for i in np.flatnonzero(rng.random(len(x)) < prob):
        out[i] = np.interp(t * rng.uniform(low, high), t, x[i], right=0.0)
    return out


def augment_batch(rng, x, max_shift, noise_bank, noise_prob, speed=None):
    """Optional speed perturbation, random zero-filled time shift, random gain and (sometimes) real noise mixed in."""
    if speed:
        x = speed_perturb(rng, x, *speed)
    out = np.zeros_like(x)
    shifts = rng.integers(-max_shift, max_shift + 1, len(x)) if max_shift else np.zeros(len(x), int)
    for i, s in enumerate(shifts):
        if s >= 0:
            out[i, s:] = x[i, :x.shape[1] - s]
        else:
            out[i, :s] = x[i, -s:]
    out *= rng.uniform(0.5, 1.5, (len(x), 1)).astype(np.float32)
    if noise_bank is not None and len(noise_bank):
        mix = rng.random(len(x)) < noise_prob
        noise = noise_bank[rng.integers(0, len(noise_bank), mix.sum())]
        out[mix] += noise * rng.uniform(0.05, 1.0, (mix.sum(), 1)).astype(np.float32)
    return np.clip(out, -1, 1)


def make_batches(data, batch_size, seed, max_shift=0, noise_bank=None, noise_prob=0.0, speed=None, first_epoch=0,
                 first_batch=0):
    """A Keras ``PyDataset`` that reshuffles and augments ``data`` every epoch.

    Order and augmentation are a pure function of (seed, epoch, batch index), so a resumed run sees the batches an
    uninterrupted run would have seen. The epoch is set by ``start_epoch(epoch)`` (``first_epoch`` to begin with),
    which ``epoch_setter`` calls as Keras begins each epoch: a counter advanced at Keras' ``on_epoch_end`` would be
    one ahead, since Keras also ends an "epoch" once before training, after peeking at two batches. Feed it to
    ``fit(shuffle=False)``: Keras' own shuffle of the batch order draws from the global RNG, which a resumed run
    does not restore. With ``first_batch`` > 0 it is the rest of one epoch only, from that batch on (a run resumed
    within an epoch finishes it, then goes on with a ``first_batch`` = 0 dataset).
    """
    import keras

    class AugmentedClips(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.start_epoch(first_epoch)

        def start_epoch(self, epoch):
            self.epoch = epoch
            self.order = np.random.default_rng([seed, epoch]).permutation(len(data))

        def __len__(self):
            return int(np.ceil(len(data) / batch_size)) - first_batch

        def __getitem__(self, i):
            i += first_batch
            idx = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            rng = np.random.default_rng([seed, self.epoch, i])
            return augment_batch(rng, data.x[idx], max_shift, noise_bank, noise_prob, speed), data.y[idx]

    return AugmentedClips()


def epoch_setter(batches):
    """A callback that tells ``make_batches``' dataset which epoch Keras is beginning."""
    import keras

    return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs=None: batches.start_epoch(epoch))


def cosine_schedule(lr, epochs):
    """Per-epoch cosine decay from ``lr`` to ``lr / 20``: a pure function of the epoch, so resuming is exact."""
    def schedule(epoch, _current=None):
        return float(lr / 20 + (lr - lr / 20) * 0.5 * (1 + np.cos(np.pi * min(epoch, epochs) / epochs)))

    return schedule


def train(args):
    """Train as ``args`` says; returns (model, data sets, checkpoint state, seconds of training)."""
    import keras

    from speech.source_model import build_source_model
    from utils import ResumableCheckpoint, resume_state, set_seed

    check_args(args)
    set_seed(args.seed)
    sets = load_data(args)
    model = build_source_model(args.arch, time_mask=args.time_mask, freq_mask=args.freq_mask, seed=args.seed,
                               bn_momentum=args.bn_momentum)
    ckpt_dir = f"{args.out}_ckpt"
    state = resume_state(ckpt_dir) if args.resume else None
    if state is None and os.path.isdir(ckpt_dir) and not args.resume:
        import shutil

        shutil.rmtree(ckpt_dir)
    if state:
        model = keras.saving.load_model(os.path.join(ckpt_dir, "last.keras"))
        print(f"Resuming from {ckpt_dir} after epoch {state['epoch']}.")
    else:
        if args.init_weights:
            from speech.source_model import load_source_weights

            load_source_weights(model, args.init_weights)
        model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    noise = sets.get("real_train_noise")
    epoch, skipped = (state["epoch"], state.get("batch", 0)) if state else (0, 0)

    def batches(first_epoch, first_batch=0):
        return make_batches(sets["train"], args.batch_size, args.seed, int(args.time_shift * SAMPLE_RATE),
                            noise.x if noise is not None else None, args.noise_mix, args.speed, first_epoch,
                            first_batch)

    checkpoint = ResumableCheckpoint(ckpt_dir, monitor="val_loss", patience=args.patience,
                                     every_seconds=60 * args.checkpoint_minutes or None)
    schedule = keras.callbacks.LearningRateScheduler(cosine_schedule(args.lr, args.epochs))

    def fit(data, first_epoch, last_epoch):
        if first_epoch < last_epoch and checkpoint.state["wait"] < args.patience:
            model.fit(data, validation_data=(sets["val"].x, sets["val"].y), epochs=last_epoch,
                      initial_epoch=first_epoch, shuffle=False, verbose=args.verbose,
                      callbacks=[epoch_setter(data), schedule, checkpoint])

    start = time.time()
    if skipped:
        # Killed within an epoch: finish that epoch from the next batch (its logged training loss and accuracy then
        # cover only those batches), then go on from the next epoch as an uninterrupted run would.
        checkpoint.batch_offset = skipped
        fit(batches(epoch, skipped), epoch, min(epoch + 1, args.epochs))
        epoch += 1
    fit(batches(epoch), epoch, args.epochs)
    checkpoint.set_model(model)
    checkpoint.restore_best()
    return model, sets, checkpoint.state, time.time() - start


def main(argv=None):
    args = build_parser().parse_args(argv)
    from speech.source_model import count_trainable
    from speech.evaluation import evaluate, plot_confusion
    from speech.commands import CLASSES
    from engine.errors import cli_errors
    from utils import atomic_write, write_json

    with cli_errors("pretrain.py"):
        model, sets, state, seconds = train(args)
    atomic_write(f"{args.out}.weights.h5", model.save_weights)
    results = {}
    for name in ("train", "val", "test", "synthetic_test", "real_val", "real_test"):
        if name in sets and len(sets[name]):
            results[name] = evaluate(model, sets[name])
            print(f"--- {name}: accuracy {results[name]['accuracy']:.4f} on {len(sets[name])} clips")
    main_eval = "real_val" if "real_val" in results else "val"
    plot_confusion(results[main_eval]["confusion"], f"{args.out}_confusion.png",
                   title=f"{args.arch} on {main_eval} ({len(sets[main_eval])} clips), "
                         f"accuracy {results[main_eval]['accuracy']:.3f}")
    sources = (["synthetic eSpeak NG corpus"] if args.synthetic else []) + \
              ([f"GSC-layout folder {args.gsc_dir}"] if args.gsc_dir else [])
    card = {
        "architecture": args.arch,
        "parameters": int(model.count_params()),
        "trainable_parameters": count_trainable(model),
        "data_sources": sources,
        "synthetic_corpus": {"seed": args.corpus_seed, "variants": args.variants or "all",
                             "clips_per_voice": args.clips_per_voice} if args.synthetic else None,
        "clips": {name: len(s) for name, s in sets.items()},
        "command": "python pretrain.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "accuracy": {name: r["accuracy"] for name, r in results.items()},
        "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
        "best_val_loss": state["best"], "history": state["history"],
        "training_seconds_this_invocation": round(seconds, 1),
        "training_seconds": round(state["seconds"], 1),
        "class_order": list(CLASSES),
        "input": "float32 waveform (batch, 16000), 16 kHz, about [-1, 1]",
        "voices": ("The synthetic voices are eSpeak NG formant-synthesis voices, not recordings of people. "
                   "Accuracy on synthetic voices says little about real speech; see the real-speech figures.")
        if args.synthetic else None,
        "notes": ("The 'train' accuracy counts every repeat of a real clip; 'real_val' speakers are disjoint from "
                  "training speakers but were also used for early stopping."),
    }
    previous = (args.init_weights or "").replace(".weights.h5", ".json")
    if previous and os.path.isfile(previous):
        from utils import read_json

        card["previous_stage"] = {k: v for k, v in read_json(previous).items() if k != "history"}
    write_json(f"{args.out}.json", card)
    print(f"Wrote {args.out}.weights.h5, {args.out}.json, {args.out}_confusion.png")


if __name__ == "__main__":
    main()
