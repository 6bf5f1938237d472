"""One V2S run: its settings, its training and scoring, and the folder it leaves behind.

    from engine.runs import RunConfig, load_data, train, load_run
    config = RunConfig(dataset="GunPoint", epochs=50).validated()
    run = train(load_data(config), config)          # -> Run: .summary (dict), .folder, .model
    run = load_run("runs/GunPoint_reprogram_V2Sa_s0") # a finished run, read back

In:  a ``RunConfig`` (every setting, with its default, in one dataclass) and the dataset (``ts_dataloader.UCRData``).
Out: a run folder (default ``runs/<Dataset>_<mode>_<arch>_s<seed>``; every file written atomically):
     ``model.keras`` (reloads after ``import ts_model``), ``best.weights.h5``, ``history.csv`` (one row per epoch),
     ``curves.png``, ``summary.json`` (settings, split sizes, best epoch, validation and test scores, wall time),
     and ``ckpt/`` (the last epoch's model with its optimizer state, for ``resume``).

Protocol (honest by default): a stratified part of the training set (``val_split``) picks the best epoch by
validation cross-entropy (without any penalty on delta); the test set is scored once, at the end, with that
epoch's weights, or with a fresh model trained on the whole training set for that many epochs (``refit``).
``val_on_test`` reproduces the reference code (best epoch chosen on the test set); such runs are labelled
OPTIMISTIC everywhere.
"""

import contextlib
import dataclasses
import hashlib
import os
import shutil
import sys
import time

import numpy as np

from engine.black_box import LEARNING_RATE as BLACK_BOX_LR, step_cost
from engine.errors import UsageError
from engine.run_folder import (REPO, RUN_ENTRIES, Run, foreign_entries, load_run, plot_curves,  # noqa: F401
                               portable, read_summary, upgraded_settings, write_history)
from speech.commands import SAMPLE_RATE
from speech.spec import (AM_DEPTH_DB, ARCHITECTURES, ATTENTION_ARCHITECTURES, BLACK_BOXES, CARRIER_HZ, CLIP_SIGMA,
                         ENCODINGS, FM_DEVIATION_HZ, KERAS_SOURCE, LAYOUTS, SOURCE_RATE_RANGE, TONE_PARAMETERS)

__all__ = ["RunConfig", "Run", "RunInterrupted", "train", "load_data", "load_run", "read_summary"]

RUNS_DIR = os.path.join(REPO, "runs")
DEFAULT_WEIGHTS = {arch: os.path.join(REPO, "weight", f"{arch.lower()}.weights.h5") for arch in ARCHITECTURES}
MODES = ("reprogram", "reprogram+finetune", "transfer", "fcn")
MAP_TYPES = ("random", "sequential", "frequency", "learned", "iterative", "full")
# What turns the frozen source's outputs into classes: a label mapping (of --map-type), or a linear head on frozen
# features (ts_model.LinearReadout): the attention-pooled vector, or pooled features of several layers. Left unset,
# the layers head wherever a head applies (a reprogramming mode, an attention-RNN source, no label mapping asked for:
# results/notes/encoding_selection.md), the paper's random label mapping elsewhere (TF_a and the FCN have output
# layers of their own and take the mapping's companions below); a user's model (--source-model) is read by a linear
# head on one of its layers ("features").
HEADS = ("mapping", "attention", "layers", "features")
# Each output layer's companions, the settings it was chosen with, used wherever they are left unset: the layers
# head reads fm-encoded series, starts as LP's classifier and trains with the program at a tenth of the learning
# rate (results/notes/encoding_selection.md); the attention head and the label mapping keep the zero-padded series
# and the learning rate they were chosen with (results/notes/output_side_selection.md, lr_selection.md).
HEAD_DEFAULTS = {"layers": {"encoding": "fm", "head_fit": "lp+train", "lr": 0.001},
                 "attention": {"encoding": "pad", "head_fit": "train", "lr": 0.01},
                 "mapping": {"encoding": "pad", "head_fit": "train", "lr": 0.01}}
# A user's model was never screened here: its head takes the companions of the nearest head that was, the layers head
# (also a standardised linear head on pooled frozen features).
HEAD_DEFAULTS["features"] = dict(HEAD_DEFAULTS["layers"])
# How a head (attention, layers) starts and trains: "train", from random weights, trained with delta; "lp", fitted by
# the linear probe's classifier on the frozen features of the fit split before training, then fixed (only delta
# trains, as under the paper's fixed label mapping); "lp+train", fitted so, then trained with delta.
HEAD_FITS = ("train", "lp", "lp+train")
# Each tone parameter's default, for the encodings that read it (speech.spec.TONE_PARAMETERS).
TONE_DEFAULTS = {"carrier": CARRIER_HZ, "deviation": FM_DEVIATION_HZ, "depth": AM_DEPTH_DB, "clip": CLIP_SIGMA}
# Where the program is added: the encoded waveform (the paper's) or the series before its encoding.
PROGRAM_SPACES = ("wave", "series")
REPROGRAM_MODES = ("reprogram", "reprogram+finetune")
MAX_SEGMENTS = 10
SELECT_MODES = ("none", "auto")
# The settings a mode does not use; a value other than the default is refused (validated), never silently ignored.
# TF_a fine-tunes the source on one zero-padded copy through a dense head; the FCN reads the raw series alone.
UNUSED_BY_MODE = {
    "transfer": ("mapping", "map_type", "ensemble", "dr", "per", "l2", "seg", "max_seg", "head_fit"),
    "fcn": ("arch", "source_weights", "mapping", "map_type", "ensemble", "dr", "per", "l2", "seg", "max_seg", "znorm",
            "standardise", "gain", "head_fit", "layout"),
}
# The candidates of --select auto, as changes to the run's own settings: the default ensemble of three programs and
# one program alone (results/notes/program_selection.md, round2_selection.md: the other levers screened, m in
# {5, 10, all that fit} among them, did not lower validation loss).
SELECTION_GRID = ({}, {"ensemble": 1})


@dataclasses.dataclass
class RunConfig:
    """Every setting of a run. Defaults live here and nowhere else; the CLI's help repeats how each was chosen."""

    # data
    dataset: str = "Coffee"
    data_dir: str = None
    download: bool = False
    val_split: float = 0.2
    val_on_test: bool = False
    gaps: str = "interpolate"  # a NaN inside a series: interpolate, or refuse the file (ts_dataloader.GAP_POLICIES)
    # model
    mode: str = "reprogram"
    arch: str = "V2Sa"
    # None: the shipped weights of ``arch``; "random": an untrained source (control); a list of several: the
    # programs of the ensemble spread over them (ensemble / len consecutive programs per source)
    source_weights: str = None
    # a user's saved Keras model taking a waveform (speech.keras_source), instead of a built-in source; its rate in
    # Hz, and the layer its head reads (None: the one before its class outputs, or its output)
    source_model: str = None
    source_rate: int = SAMPLE_RATE
    source_layer: str = None
    # a source reached only by queries (engine.black_box): the program trained by a zeroth-order estimate within a
    # budget of queries, in a basis of that many coefficients, with that many random directions per step (each
    # also in its opposite sign when antithetic: central differences)
    black_box: str = None
    budget: int = 50000
    directions: int = 10
    basis: int = 250
    antithetic: bool = False
    encoding: str = None  # None: the head's (HEAD_DEFAULTS)
    carrier: float = None  # the tone's parameters (fm / am); None: TONE_DEFAULTS for the encodings that read them
    deviation: float = None
    depth: float = None
    clip: float = None
    program: str = "wave"  # where delta is added: the encoded waveform, or the series before its encoding
    layout: str = "mix"  # a multivariate series' channels: tones at once in bands of their own, or one after another
    seg: int = 0  # copies m of the series; 0: as many as fit, at most max_seg
    max_seg: int = MAX_SEGMENTS  # the cap on m when seg is 0 (the paper's grid was m in 1..10)
    mapping: int = 0  # source labels per class k; 0: floor(36 / classes)
    map_type: str = None  # None: "random" where a label mapping reads the classes; learned / full start from it
    head: str = None  # None: as output_resolved() chooses; attention: a linear head on the attention vector
    head_fit: str = None  # how a head starts and trains (HEAD_FITS); None: the head's (HEAD_DEFAULTS)
    ensemble: int = 3  # K independent programs trained as one model, predictions averaged (program_selection.md)
    znorm: bool = False  # z-normalise every series before padding
    standardise: bool = False  # one mean and standard deviation for the whole dataset, from the fit split
    gain: bool = False  # a trainable gain on the series before padding
    jitter: float = 0.0  # training-batch noise, in standard deviations of the training series (augmentation.py)
    scaling: float = 0.0  # training-batch amplitude factor N(1, scaling^2) per series (augmentation.py)
    dr: float = 0.0  # dropout on delta (results/notes/dropout_selection.md)
    per: int = 0  # 1: delta only outside the series copies
    l2: float = 0.0  # L2 penalty on delta (results/notes/l2_selection.md)
    # training
    epochs: int = 100
    batch_size: int = 32
    lr: float = None  # None: the head's (HEAD_DEFAULTS)
    lr_decay: float = 0.0
    cosine: bool = False  # results/notes/cosine_selection.md
    refit: bool = False
    patience: int = 20  # stop after this many epochs without a lower val_ce (results/notes/speed_selection.md)
    ema: float = 0.0  # evaluate a moving average of the weights over about this many epochs (0: the weights)
    select: str = "none"  # auto: choose among SELECTION_GRID by validation cross-entropy
    seed: int = 0
    # output (never changes what is learned)
    out: str = None
    resume: bool = False
    force: bool = False  # replace a finished (or unfinished) run in the folder instead of refusing
    swd: bool = False
    swd_gsc_dir: str = None
    tensorboard: bool = False
    verbose: int = 1

    def validated(self):
        """A copy with derived settings filled in; raises ``UsageError`` naming the flag of a bad value."""
        c = dataclasses.replace(self)
        if c.source_model is not None or c.source_layer is not None or c.source_rate != SAMPLE_RATE:
            c = keras_source_checked(c)
        if c.black_box is not None:
            c = black_box_checked(c)
        else:
            stray = [name for name in BLACK_BOX_ONLY if getattr(c, name) != getattr(RunConfig, name)]
            if stray:
                raise UsageError(f"--{stray[0]} sets how a black box is queried; it needs --black-box")
        for ok, message in (
            (c.mode in MODES, f"--mode must be one of {', '.join(MODES)}, got {c.mode!r}"),
            (c.arch in ARCHITECTURES or (c.source_model and c.arch == KERAS_SOURCE) or
             (c.black_box and c.arch == c.black_box),
             f"--arch must be one of {', '.join(ARCHITECTURES)}, got {c.arch!r}"),
            (c.map_type is None or c.map_type in MAP_TYPES,
             f"--map-type must be one of {', '.join(MAP_TYPES)}, got {c.map_type!r}"),
            (c.head is None or c.head in HEADS, f"--head must be one of {', '.join(HEADS)}, got {c.head!r}"),
            # "random" as well: a validated config (map_type filled in) validates again unchanged
            (c.head in (None, "mapping") or (c.map_type in (None, "random") and c.mapping == 0),
             f"--head {c.head} reads the classes from a linear head, not a label mapping; drop --map-type and "
             "--mapping"),
            (c.encoding is None or c.encoding in ENCODINGS,
             f"--encoding must be one of {', '.join(ENCODINGS)}, got {c.encoding!r}"),
            (c.encoding in (None, "pad") or c.mode != "fcn",
             f"--encoding {c.encoding}: --mode fcn reads the series itself, it encodes nothing as audio"),
            (c.program in PROGRAM_SPACES, f"--program must be one of {', '.join(PROGRAM_SPACES)}, got {c.program!r}"),
            (c.layout in LAYOUTS, f"--layout must be one of {', '.join(LAYOUTS)}, got {c.layout!r}"),
            (c.head_fit is None or c.head_fit in HEAD_FITS,
             f"--head-fit must be one of {', '.join(HEAD_FITS)}, got {c.head_fit!r}"),
            (c.head != "features" or c.source_model or c.black_box,
             "--head features reads a layer of a user's model; give it with --source-model PATH.keras"),
        ):
            if not ok:
                raise UsageError(message)
        resolved = c.output_resolved()
        defaults = RunConfig(mode=c.mode).output_resolved()
        for name in UNUSED_BY_MODE.get(c.mode, ()):
            value, default = getattr(resolved, name), getattr(defaults, name)
            if name == "source_weights" and value is not None:
                default = value if source_paths(value) == [DEFAULT_WEIGHTS[defaults.arch]] else default
            if value != default:
                shown = "" if isinstance(value, bool) else " " + " ".join(map(str, source_paths(value)
                                                                           if name == "source_weights" else [value]))
                what = {"transfer": "fine-tunes the source through a dense head, no program",
                        "fcn": "reads the raw series alone"}[c.mode]
                raise UsageError(f"--{name.replace('_', '-')}{shown} is not used by --mode {c.mode} (which {what}); "
                                 "drop it")
        encoding = resolved.encoding
        for name in TONE_DEFAULTS:
            if getattr(c, name) is not None and name not in TONE_PARAMETERS.get(encoding, ()):
                users = [e for e, names in TONE_PARAMETERS.items() if name in names]
                raise UsageError(f"--{name} is a parameter of --encoding {' and '.join(users)}; this run's encoding "
                                 f"is {encoding}")
        c = c.output_resolved()
        checks = (
            (c.head in ("mapping", "features") or c.arch in ATTENTION_ARCHITECTURES,
             f"--head {c.head} reads the attention RNN's layers, which {c.arch} does not have; it needs --arch "
             f"{' or '.join(ATTENTION_ARCHITECTURES)}"),
            (c.head == "mapping" or c.mode in REPROGRAM_MODES,
             f"--head {c.head} is a head on the reprogrammed source; --mode {c.mode} has its own output layer"),
            (c.head_fit == "train" or c.head != "mapping",
             f"--head-fit {c.head_fit} fits a head (--head attention or layers); a label mapping is not fitted"),
            (c.program == "wave" or c.mode in REPROGRAM_MODES,
             f"--program series adds a program to the series; --mode {c.mode} trains no program"),
            (not c.per or (c.encoding == "pad" and c.program == "wave"),
             "--per 1 keeps delta outside the zero-padded copies: it needs --encoding pad and --program wave"),
            (c.carrier is None or (np.isfinite(c.carrier) and 0 < c.carrier < SAMPLE_RATE / 2),
             f"--carrier must be a frequency in Hz between 0 and {SAMPLE_RATE // 2}, got {c.carrier}"),
            (c.deviation is None or (np.isfinite(c.deviation) and 0 < c.deviation < c.carrier
                                     and c.carrier + c.deviation < SAMPLE_RATE / 2),
             f"--deviation must be positive, below --carrier ({c.carrier} Hz) and keep carrier + deviation under "
             f"{SAMPLE_RATE // 2} Hz, got {c.deviation}"),
            (c.depth is None or (np.isfinite(c.depth) and 0 < c.depth <= 120),
             f"--depth must be a loudness range in dB in (0, 120], got {c.depth}"),
            (c.clip is None or (np.isfinite(c.clip) and c.clip > 0),
             f"--clip must be a positive number of standard deviations, got {c.clip}"),
            (not (c.map_type == "iterative" and c.refit),
             "--map-type iterative re-assigns the mapping as the validation run trains; --refit is not supported "
             "with it"),
            (c.epochs >= 1, f"--eps (epochs) must be at least 1, got {c.epochs}"),
            (c.batch_size >= 1, f"--batch-size must be at least 1, got {c.batch_size}"),
            (np.isfinite(c.lr) and c.lr > 0, f"--lr must be a positive number, got {c.lr}"),
            (np.isfinite(c.lr_decay) and c.lr_decay >= 0, f"--lr-decay must be 0 or more, got {c.lr_decay}"),
            (c.mapping >= 0, f"--mapping must be 0 (maximal) or a positive count, got {c.mapping}"),
            (c.seg >= 0, f"--seg must be 0 (as many as fit) or a positive count, got {c.seg}"),
            (c.max_seg >= 1, f"--max-seg must be at least 1, got {c.max_seg}"),
            (0.0 <= c.dr < 1.0, f"--dr must be in [0, 1), got {c.dr}"),
            (np.isfinite(c.l2) and c.l2 >= 0, f"--l2 must be 0 or more, got {c.l2}"),
            (c.per in (0, 1), f"--per must be 0 or 1, got {c.per}"),
            (np.isfinite(c.jitter) and c.jitter >= 0, f"--jitter must be 0 (off) or more, got {c.jitter}"),
            (np.isfinite(c.scaling) and c.scaling >= 0, f"--scaling must be 0 (off) or more, got {c.scaling}"),
            (c.ensemble >= 1, f"--ensemble must be at least 1 (one program), got {c.ensemble}"),
            (c.select in SELECT_MODES, f"--select must be one of {', '.join(SELECT_MODES)}, got {c.select!r}"),
            (c.select == "none" or (c.mode in REPROGRAM_MODES and not c.val_on_test),
             "--select auto chooses among reprogramming settings on the validation split; it needs a reprogram mode "
             "and no --val-on-test"),
            (c.patience >= 0, f"--patience must be 0 (off) or a positive number of epochs, got {c.patience}"),
            (np.isfinite(c.ema) and c.ema >= 0, f"--ema must be 0 (off) or a number of epochs, got {c.ema}"),
            (not (c.cosine and c.lr_decay),
             "--cosine and --lr-decay / --reference-schedule are two schedules; pick one"),
            (not (c.refit and c.val_on_test), "--refit retrains on the whole training set for the epochs a validation "
                                              "split chose; --val-on-test has no validation split"),
            (c.val_on_test or 0.0 < c.val_split < 1.0,
             f"--val-split must be in (0, 1), got {c.val_split} (or use --val-on-test)"),
            (not c.swd or c.mode in REPROGRAM_MODES,
             f"--swd measures how far reprogrammed series are from speech; --mode {c.mode} reprograms nothing"),
            (not (c.resume and c.force), "--resume continues the run in the folder, --force replaces it; pick one"),
        )
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if c.source_model or c.black_box:
            return c
        if c.source_weights is None:
            c.source_weights = DEFAULT_WEIGHTS[c.arch]
        paths = source_paths(c.source_weights)
        c.source_weights = paths[0] if len(paths) == 1 else paths
        if len(paths) > 1 and (c.mode != "reprogram" or c.ensemble % len(paths)):
            raise UsageError(f"--source-weights: {len(paths)} source models spread the programs of an ensemble over "
                             f"them; they need --mode reprogram and an --ensemble that is a multiple of {len(paths)} "
                             f"(got --mode {c.mode}, --ensemble {c.ensemble})")
        for path in paths if c.mode != "fcn" else ():
            if path == "random":
                continue
            if os.path.isdir(path):
                raise UsageError(f"--source-weights {path} is a folder; expected a weights file (.weights.h5) or "
                                 "'random'")
            if not os.path.isfile(path):
                prefix = portable(path)[:-len(".weights.h5")]  # pretrain.py --out names the files by their prefix
                train = (f"python pretrain.py --synthetic --arch {c.arch} --out {prefix}"
                         if path == DEFAULT_WEIGHTS.get(c.arch) else "pretrain.py")
                raise UsageError(f"source weights {path} not found; train them with {train} or pass --source-weights "
                                 "random for the untrained control")
            from speech.source_model import check_weights_file

            check_weights_file(path)
        return c

    def output_resolved(self):
        """A copy with the output layer chosen where it was left unset (``head``, ``map_type``): see HEADS."""
        c = dataclasses.replace(self)
        if c.head is None and (c.source_model or c.black_box):
            c.head = "features"
        if c.black_box and c.lr is None:
            c.lr = BLACK_BOX_LR  # BAR's (Tsai, Chen and Ho 2020)
        if c.head is None:
            mapping_asked = c.map_type is not None or c.mapping != 0
            c.head = "layers" if (c.mode in REPROGRAM_MODES and c.arch in ATTENTION_ARCHITECTURES
                                  and not mapping_asked) else "mapping"
        if c.map_type is None:
            c.map_type = "random"
        for name, value in HEAD_DEFAULTS[c.head if c.mode in REPROGRAM_MODES else "mapping"].items():
            if getattr(c, name) is None:
                setattr(c, name, value)
        for name, default in TONE_DEFAULTS.items():
            if name in TONE_PARAMETERS.get(c.encoding, ()) and getattr(c, name) is None:
                setattr(c, name, default)
        return c

    def experiment(self):
        """The settings that change what is learned (not where a run reads or writes, nor what it prints)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in OUTPUT_SETTINGS}


def keras_source_checked(c):
    """``c`` with a user's model as its source (``arch`` KERAS_SOURCE) once the settings that go with
    ``--source-model`` are checked; ``UsageError`` naming the flag otherwise. The file itself is loaded, and its input
    and layers checked, when the run builds it (``speech.keras_source``)."""
    import zipfile

    path = c.source_model
    if path is None:
        raise UsageError("--source-layer and --source-rate describe a --source-model; give the model too")
    flag = f"--source-model {path}"
    for ok, message in (
        (os.path.isfile(path), f"{flag}: no such file; expected a model saved by Keras (model.save('name.keras'))"),
        (path.endswith(".keras") and os.path.isfile(path) and zipfile.is_zipfile(path),
         f"{flag} is not a .keras model file (Keras 3's model.save('name.keras') writes one)"),
        (c.mode == "reprogram", f"{flag} is reprogrammed frozen: it needs --mode reprogram, got --mode {c.mode}"),
        (c.arch in ("V2Sa", KERAS_SOURCE), f"--arch {c.arch} names a built-in source; {flag} replaces it: drop --arch"),
        (c.source_weights is None, f"--source-weights loads a built-in source; {flag} brings its own weights: drop it"),
        (c.head in (None, "features"), f"--head {c.head} reads a layer of V2S's own sources; {flag} is read by a "
                                       "linear head on one of its layers (--head features, --source-layer)"),
        (c.map_type in (None, "random") and c.mapping == 0,  # "random": filled in by a first validation
         f"{flag} is read by a linear head (--head features); drop --map-type and --mapping"),
        (isinstance(c.source_rate, int) and SOURCE_RATE_RANGE[0] <= c.source_rate <= SOURCE_RATE_RANGE[1],
         f"--source-rate must be a sampling rate in Hz from {SOURCE_RATE_RANGE[0]} to {SOURCE_RATE_RANGE[1]}, got "
         f"{c.source_rate}"),
        (not c.swd, f"--swd compares reprogrammed series with speech through V2S's own sources; not with {flag}"),
    ):
        if not ok:
            raise UsageError(message)
    return dataclasses.replace(c, arch=KERAS_SOURCE)


# The settings only a black-box run reads (given without --black-box, they are refused).
BLACK_BOX_ONLY = ("budget", "directions", "basis", "antithetic")
# The settings a black-box run does not take (engine.black_box trains one program, no penalty, dropout or mask on
# it, no augmentation, schedule, refit, selection or SWD); a value other than the default is refused.
BLACK_BOX_UNUSED = ("ensemble", "dr", "l2", "per", "program", "refit", "select", "ema", "jitter", "scaling", "cosine",
                    "lr_decay", "swd", "tensorboard", "val_on_test", "znorm", "gain", "standardise", "head_fit")
# (the head always starts as the logistic regression of the box's outputs and trains: --head-fit lp+train)


def black_box_checked(c):
    """``c`` with a black box as its source (``arch`` the box's name, one program) once the settings that go with
    ``--black-box`` are checked; ``UsageError`` naming the flag otherwise."""
    flag = f"--black-box {c.black_box}"
    defaults = RunConfig()
    unused = [name for name in BLACK_BOX_UNUSED if getattr(c, name) != getattr(defaults, name)
              and not (name == "ensemble" and c.ensemble == 1) and not (name == "head_fit" and c.head_fit == "lp+train")]
    for ok, message in (
        (c.black_box in BLACK_BOXES, f"--black-box must be one of {', '.join(BLACK_BOXES)}, got {c.black_box!r}"),
        (c.mode == "reprogram", f"{flag} is reprogrammed frozen: it needs --mode reprogram, got --mode {c.mode}"),
        (c.arch in ("V2Sa", c.black_box), f"--arch {c.arch} names a built-in source; {flag} replaces it: drop --arch"),
        (c.source_weights is None and c.source_model is None,
         f"{flag} is the source; drop --source-weights and --source-model"),
        (c.head in (None, "features"), f"--head {c.head}: {flag} is read by a linear head on its output vectors "
                                       "(--head features)"),
        (c.map_type in (None, "random") and c.mapping == 0, f"{flag} is read by a linear head; drop --map-type and "
                                                            "--mapping"),
        (not unused, f"--{unused[0].replace('_', '-') if unused else ''} is not used by {flag} (one program trained "
                     "by a zeroth-order estimate); drop it"),
        (c.directions >= 1, f"--directions must be at least 1, got {c.directions}"),
        (2 <= c.basis <= SAMPLE_RATE, f"--basis must be from 2 to {SAMPLE_RATE} coefficients, got {c.basis}"),
        (c.budget >= step_cost(c),
         f"--budget {c.budget} is below one training step: ({'2 x ' if c.antithetic else ''}--directions "
         f"{c.directions} + 1) x --batch-size {c.batch_size} = {step_cost(c)} queries"),
    ):
        if not ok:
            raise UsageError(message)
    return dataclasses.replace(c, arch=c.black_box, ensemble=1)


# Where the data comes from and how strictly it is read ("gaps" either gives the series every run sees or refuses),
# where a run writes and what it prints.
OUTPUT_SETTINGS = frozenset({"data_dir", "download", "gaps", "out", "resume", "force", "swd", "swd_gsc_dir",
                             "tensorboard", "verbose"})


class RunInterrupted(Exception):
    """Ctrl-C during a run; the message says after which epoch and how to continue."""


def load_data(config):
    """The dataset ``config`` names (``ts_dataloader.load_ucr``); errors are ``UsageError`` subclasses."""
    from ts_dataloader import load_ucr

    return load_ucr(config.dataset, data_dir=config.data_dir, download=config.download, gaps=config.gaps)


def folder_for(config, dataset_name):
    """Where a run writes: ``config.out``, else runs/<dataset>_<mode>_<arch>_s<seed>[_<changed settings>].

    Runs with other settings get folders of their own (``_ensemble-1_lr-0.003``); the settings a finished run may
    be continued with (epochs, patience) are left out of the name, so ``--resume --eps 200`` finds the run.
    """
    if config.out:
        return config.out
    base = f"{dataset_name}_{config.mode.replace('+', '_')}_{source_label(config)}_s{config.seed}"
    changes = changed_settings(config)
    suffix = "_".join(f"{k}-{v}" if v is not True else k for k, v in changes.items())
    if len(suffix) > 80:  # a name a file system and a reader can take; the summary lists every setting
        suffix = "settings-" + hashlib.sha1(suffix.encode()).hexdigest()[:10]
    return os.path.join(RUNS_DIR, base + (f"_{suffix}" if suffix else ""))


def source_label(config):
    """What a run folder's name and its plots call the source: the architecture, or the file name of a user's
    model (``--source-model``) without ``.keras``."""
    if config.source_model:
        return os.path.basename(config.source_model)[:-len(".keras")]
    if config.black_box:
        return f"blackbox-{config.black_box}"
    return config.arch


def changed_settings(config):
    """{setting: short value} of the experiment settings that differ from the defaults (not dataset, mode, arch,
    source model, seed, epochs or patience, which a run folder's name or its continuation cover)."""
    same = {"mode": config.mode, "arch": config.arch, "source_model": config.source_model,
            "black_box": config.black_box, "ensemble": 1 if config.black_box else RunConfig.ensemble}
    defaults = RunConfig(**same).output_resolved()
    # A head's companions count as changed only against that head's defaults, a tone's parameters only against the
    # defaults of the run's own encoding.
    resolved = config.output_resolved()
    companions = RunConfig(**same, head=resolved.head).output_resolved()
    tone = RunConfig(**same, encoding=resolved.encoding).output_resolved()
    changes = {}
    for key, value in resolved.experiment().items():
        default = getattr(tone if key in TONE_DEFAULTS else companions if key in HEAD_DEFAULTS["layers"] else
                          defaults, key)
        if key in ("dataset", "mode", "arch", "seed", "epochs", "patience") or value == default:
            continue
        if key == "source_weights":
            paths = source_paths(value)
            if [os.path.realpath(p) for p in paths] == [os.path.realpath(DEFAULT_WEIGHTS[config.arch])]:
                continue
            value = "+".join(os.path.basename(p).replace(".weights.h5", "") for p in paths)
        elif isinstance(value, bool):
            value = True if value else "off"
        elif isinstance(value, float):
            value = f"{value:g}"
        changes[key] = value
    return changes


def differing_settings(saved, config):
    """The experiment settings (and dataset) in which a run folder's saved config differs from ``config``."""
    now = config.experiment()
    return [k for k in sorted(now) if not same_setting(k, upgraded_settings(saved).get(k), now[k])]


def same_setting(key, saved, now):
    """Whether a saved setting equals today's. Source weights (or a source model) are the same when their files hold
    the same bytes, wherever they lie: another clone, a moved checkout or a cluster node with its own path to them."""
    if key not in ("source_weights", "source_model") or saved is None or now is None:
        return saved == now
    return _weights_identity(saved) == _weights_identity(now)


def _weights_identity(source_weights):
    """Per path: the file's SHA-256, "random", or the resolved path of a file that is not there."""
    identity = []
    for path in source_paths(source_weights):
        full = os.path.realpath(os.path.join(REPO, path))
        if path != "random" and os.path.isfile(full):
            with open(full, "rb") as f:
                identity.append(hashlib.sha256(f.read()).hexdigest())
        else:
            identity.append(path if path == "random" else full)
    return identity


def check_folder(folder, config):
    """A finished run of the same settings in ``folder`` (returned, to be reported instead of retrained), or None
    when the run may go ahead; other settings, or an unfinished run without --resume, are refused in one line.

    Nothing in a run folder is replaced unless asked: --force replaces it, --resume continues it.
    """
    from utils import resume_state

    summary_path = os.path.join(folder, "summary.json")
    if config.force or config.resume:
        return None
    if os.path.isfile(summary_path):
        finished = read_summary(summary_path)
        differ = differing_settings(finished["config"], config)
        if not differ:
            return Run(folder, finished)
        shown = ", ".join(f"{k}={finished['config'].get(k)!r} there, {getattr(config, k)!r} here" for k in differ[:3])
        raise UsageError(f"{folder} holds a finished run with other settings ({shown}); choose another --out, or "
                         "--force to replace it")
    state = resume_state(os.path.join(folder, "ckpt"))
    if state and state.get("epoch"):
        raise UsageError(f"{folder} holds an unfinished run ({state['epoch']} epochs done); --resume continues it, "
                         "--force starts it again")
    return None


@contextlib.contextmanager
def folder_lock(folder):
    """Hold an exclusive lock on run folder ``folder`` while a run writes it; a second writer is refused at once.

    The lock file is removed when the run ends. A writer that locked a file another one removed in the meantime
    (its inode no longer the path's) takes the new file instead, so two writers never both hold a lock.
    """
    import fcntl

    path = os.path.join(folder, ".lock")
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UsageError(f"{folder} is being written by another run; wait for it to finish or choose another "
                             "--out") from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fh.fileno()).st_ino:
            break
        fh.close()  # removed (and perhaps re-created) by the writer that held it: lock the file now there
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def check_run_folder(folder, force=False):
    """Refuse to write into (or, with --force, to empty) a folder holding files no run wrote, naming one."""
    foreign = foreign_entries(folder)
    if foreign:
        what = "--force empties only run folders" if force else "a run writes into an empty folder or a run folder"
        raise UsageError(f"--out {folder} holds {foreign[0]!r}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}"
                         f", which no run wrote; {what}: choose another --out")


def check_writable(folder):
    """Fail now, not after the first epoch, when ``folder`` cannot be created or written."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, ".write_test")
        with open(probe, "w") as fh:
            fh.write("")
        os.remove(probe)
    except OSError as err:
        raise UsageError(f"--out {folder} cannot be written: {err.strerror or err}") from None


def stratified_split(y, fraction, seed):
    """Indices (train, val) with about ``fraction`` of every class in val (at least one per class when possible).

    A class with a single series keeps it in train (nothing is left to validate it with).
    """
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = int(round(fraction * len(idx)))
        n = min(max(n, 1), len(idx) - 1) if len(idx) > 1 else 0
        val += list(idx[:n])
    val = np.sort(np.array(val, dtype=int))
    return np.setdiff1d(np.arange(len(y)), val), val


def split_data(data, config):
    """(x_fit, y_fit, x_val, y_val, notes): the arrays training and epoch selection see, and warnings to print."""
    notes = list(data.notes)
    if config.val_on_test:
        return data.x_train, data.y_train, data.x_test, data.y_test, notes
    counts = np.bincount(data.y_train, minlength=data.num_classes)
    single = [str(data.labels[c]) for c in np.flatnonzero(counts == 1)]
    tr, va = stratified_split(data.y_train, config.val_split, config.seed)
    if not len(va):
        raise UsageError(f"{data.name} has {len(data.y_train)} training series, at most one per class: no validation "
                         "split can be held out; use --val-on-test (optimistic, best epoch chosen on the test set)")
    if single:
        notes.append(f"class {', '.join(single)} has one training series: it is only trained on, never validated")
    return data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va], notes


def default_segments(length, cap=MAX_SEGMENTS):
    """m when --seg is 0: as many copies of a length-``length`` series as fit in 16,000 samples, at most ``cap``."""
    return max(1, min(cap, SAMPLE_RATE // length))


def segments_for(config, length):
    """Copies m of the series in the 16,000-sample input: one for TF_a (zero-padded only), none for the FCN."""
    if config.mode == "fcn":
        return None
    return 1 if config.mode == "transfer" else config.seg or default_segments(length, config.max_seg)


def source_paths(source_weights):
    """``source_weights`` as a list of paths (one path, or "random", becomes a list of one)."""
    return [source_weights] if isinstance(source_weights, str) else list(source_weights)


def load_source(config):
    """The source model with its weights (or random weights for the control); a list of them when the settings
    name several."""
    from speech.source_model import build_source_model, load_source_model

    if config.source_model:
        from speech.keras_source import keras_source

        return keras_source(config.source_model, config.source_rate, config.source_layer)
    models = [build_source_model(config.arch) if path == "random" else load_source_model(path, config.arch)
              for path in source_paths(config.source_weights)]
    return models[0] if len(models) == 1 else models


# Program j of an ensemble draws its random mapping with seed + PROGRAM_SEED_STEP * j (program 0: the run's seed).
PROGRAM_SEED_STEP = 7919


def choose_mapping(config, source, x, y, num_classes, segments):
    """(C, k) source labels per class, or (K, C, k) for an ensemble of K programs.

    Seeded random (also the start of a learned, full or iterative one; each program its own seed), sequential, or
    by the frozen
    model's votes on ``x`` (frequency); sequential mappings are the same for every program, frequency mappings for
    every program of one source (``source`` may be a list, one per group of programs).
    """
    from ts_model import SeriesScaling, frequency_mapping, max_labels_per_class, random_mapping, sequential_mapping

    k = config.mapping or max_labels_per_class(num_classes)
    # An iterative mapping starts random; the first epoch re-assigns it from the program's own predictions.
    if config.map_type in ("random", "learned", "full", "iterative"):
        maps = [random_mapping(num_classes, k, seed=config.seed + PROGRAM_SEED_STEP * j)
                for j in range(config.ensemble)]
    else:
        sources = source if isinstance(source, list) else [source]
        if config.map_type == "sequential":
            per_source = [sequential_mapping(num_classes, k)] * len(sources)
        else:
            scaled = np.asarray(SeriesScaling(config.znorm, False, *standardisation(config, x))(x))
            waves = np.asarray(encoder_for(config, x.shape[-1], segments, 1 if x.ndim == 2 else x.shape[1])(scaled))
            per_source = [frequency_mapping(s.predict(waves, verbose=0, batch_size=64), y, num_classes, k)
                          for s in sources]
        maps = [per_source[j * len(sources) // config.ensemble] for j in range(config.ensemble)]
    return maps[0] if config.ensemble == 1 else np.stack(maps)


def encoder_for(config, length, segments=None, channels=1):
    """The encoding layer of ``config`` (``ts_encoding.build_encoding``) for series of ``length`` samples (of
    ``channels`` channels); m = ``segments`` copies under ``pad`` (default: the run's)."""
    from ts_encoding import build_encoding

    segments = segments or segments_for(config, length) or 1
    return build_encoding(config.encoding, length, segments, config.carrier, config.deviation, config.depth,
                          config.clip, channels, config.layout)


def standardisation(config, x_fit):
    """(center, scale) the series are standardised with: the fit split's overall mean and standard deviation with
    ``standardise``, else (0, 1). Only the fit split is read (the validation and test series are scaled alike)."""
    from ts_model import dataset_standardisation

    return dataset_standardisation(x_fit) if config.standardise else (0.0, 1.0)


def learning_rate(config, fit_size):
    """Adam's learning rate: a constant, the reference's inverse-time decay per step, or a cosine to 0."""
    import keras

    if config.lr_decay:
        return keras.optimizers.schedules.InverseTimeDecay(config.lr, 1, config.lr_decay)
    if config.cosine:
        steps = config.epochs * -(-fit_size // config.batch_size)
        return keras.optimizers.schedules.CosineDecay(config.lr, steps)
    return config.lr


def check_task(config, data):
    """Refuse, before anything trains, what the source model cannot represent."""
    from ts_model import NUM_SOURCE_CLASSES, segment_positions

    if config.source_model:
        from speech.keras_source import checked_source

        checked_source(config.source_model, config.source_rate, config.source_layer)
    if config.mode in REPROGRAM_MODES and config.head == "mapping":
        if data.num_classes > NUM_SOURCE_CLASSES:
            raise UsageError(f"{data.name} has {data.num_classes} classes, more than the {NUM_SOURCE_CLASSES} source "
                             f"labels a many-to-one label mapping can share out; a head runs it (--head layers, the "
                             f"default on {' and '.join(ATTENTION_ARCHITECTURES)} when no --map-type or --mapping is "
                             "given, or --head attention), and so do --mode transfer, --mode fcn and the "
                             "frozen-feature baseline (reproduce.py --methods LP)")
        k = config.mapping or NUM_SOURCE_CLASSES // data.num_classes
        if k * data.num_classes > NUM_SOURCE_CLASSES:
            raise UsageError(f"--mapping {k} source labels x {data.num_classes} classes = {k * data.num_classes} > "
                             f"{NUM_SOURCE_CLASSES} source labels; use --mapping "
                             f"{NUM_SOURCE_CLASSES // data.num_classes} or fewer")
    if data.channels > 1:
        if config.mode != "fcn" and config.encoding == "pad":
            raise UsageError(f"{data.name} is multivariate ({data.channels} channels): --encoding pad plays one "
                             "series; its channels are played as tones, --encoding fm or am (with --layout)")
        if config.program == "series":
            raise UsageError(f"{data.name} is multivariate: --program series takes univariate series; drop it")
    elif config.layout != "mix":
        raise UsageError(f"--layout {config.layout} places the channels of a multivariate series; {data.name} has one")
    segments = segments_for(config, data.length)
    if segments and data.channels == 1:
        try:
            segment_positions(data.length, segments)
        except ValueError as err:
            raise UsageError(str(err)) from None


def build_model(config, data, x_fit, y_fit):
    """(compiled model, segments, mapping) for ``config`` on ``data``; the mapping may look at ``x_fit`` only."""
    import keras

    from ts_model import build_v2s

    segments = segments_for(config, data.length)
    source = load_source(config) if config.mode != "fcn" else None
    mapping = None
    reprogram = config.mode in REPROGRAM_MODES
    if reprogram and config.head == "mapping":
        mapping = choose_mapping(config, source, x_fit, y_fit, data.num_classes, segments)
    model = build_v2s(data.length, data.num_classes, mode=config.mode, source=source, segments=segments or 1,
                      mapping=mapping, dropout=config.dr, l2=config.l2, mask=bool(config.per),
                      programs=config.ensemble if reprogram else 1, readout=readout_of(config),
                      znorm=config.znorm, gain=config.gain,
                      standardise=standardisation(config, x_fit) if config.standardise else None,
                      encoding=config.encoding, carrier=config.carrier, deviation=config.deviation,
                      depth=config.depth, clip=config.clip, program_space=config.program, channels=data.channels,
                      layout=config.layout)
    if reprogram and config.head != "mapping":
        fit_head(model, config, x_fit, y_fit, data.num_classes)
    # The optimizer lives in the compiled model so that model.keras checkpoints carry its state; "ce" is the
    # cross-entropy without the L2 penalty on delta, on which the best epoch is picked.
    from engine.training import ema_momentum

    steps_per_epoch = -(-len(x_fit) // config.batch_size)
    optimizer = keras.optimizers.Adam(learning_rate(config, len(x_fit)), use_ema=config.ema > 0,
                                      ema_momentum=ema_momentum(config.ema, steps_per_epoch))
    model.compile(optimizer=optimizer,
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="ce")])
    return model, segments, mapping


def fit_head(model, config, x_fit, y_fit, num_classes):
    """Set a head's start from the fit split's frozen features (as the untrained model computes them): its
    standardisation (``--head layers``), and with ``--head-fit lp`` / ``lp+train`` its weights, fitted by the
    linear probe's classifier (every program the same) and, for ``lp``, fixed."""
    from ts_model import output_layer, set_feature_standardisation, source_pass

    head = output_layer(model)
    if not head.standardise and config.head_fit == "train":
        return
    features = source_pass(model, program=0)(x_fit)
    if head.standardise:
        set_feature_standardisation(head, features)
        features = (features - np.asarray(head.center)) / np.asarray(head.scale)
    if config.head_fit != "train":
        from engine.logistic import fit_linear_head

        kernel, bias, _ = fit_linear_head(features, y_fit, num_classes, seed=config.seed)
        head.kernel.assign(np.repeat(kernel[None], head.programs, axis=0))
        head.bias.assign(np.repeat(bias[None], head.programs, axis=0))
        head.trainable = config.head_fit == "lp+train"


def readout_of(config):
    """The ``ts_model.build_v2s`` readout of the settings: the head, or the label mapping's kind."""
    if config.head != "mapping":
        return config.head
    return config.map_type if config.map_type in ("learned", "iterative", "full") else "mean"


def mapping_of(model):
    """A V2S model's label mapping (one row of source labels per class; an iterative one's latest), or None for a
    feature head, TF_a and the FCN."""
    from ts_model import OUTPUT_LAYERS, output_layer

    if not {layer.name for layer in model.layers} & set(OUTPUT_LAYERS):
        return None
    return output_layer(model).current_mapping()


def load_checkpoint(folder):
    """The model a ResumableCheckpoint saved in ``folder`` (V2S layers registered first, for a fresh process)."""
    import keras

    import ts_model  # noqa: F401

    return keras.saving.load_model(os.path.join(folder, "last.keras"))


class _Progress:
    """One line per run that updates after every epoch (tqdm), or nothing when verbose is 0."""

    def __init__(self, total, initial, verbose, desc):
        self.bar = None
        if verbose:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="epoch", file=sys.stdout,
                            mininterval=0 if verbose == 2 else 0.5, leave=True)

    def __call__(self, epoch, logs, seconds):
        if self.bar is not None:
            shown = {k: f"{logs[k]:.4f}" for k in ("loss", "accuracy", "val_ce", "val_accuracy") if k in logs}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _open_checkpoint(folder, config, data, resume, monitor, patience=None):
    """(checkpoint, model or None, state or None): resume from ``folder`` when asked and possible, else start fresh.

    The checkpoint folder stores the experiment settings and the data's shape it was made with; resuming with
    different ones is refused, naming the first difference.
    """
    from utils import ResumableCheckpoint, read_json, resume_state, write_json

    identity = {**config.experiment(), "dataset": data.name, "length": int(data.length),
                "classes": int(data.num_classes), "train_size": int(len(data.x_train))}
    state = resume_state(folder) if resume else None
    if resume and state is None:
        print(f"--resume: no checkpoint in {folder}; starting fresh.")
    if state is not None:
        saved_path = os.path.join(folder, "run.json")
        saved = read_json(saved_path) if os.path.isfile(saved_path) else None
        if saved is not None:
            # More epochs (or another patience) may continue a run, unless a cosine schedule was fitted to them.
            extendable = {"patience"} | (set() if config.cosine else {"epochs"})
            saved = upgraded_settings(saved)  # a checkpoint from before a setting existed used its old value
            differ = [k for k in sorted(set(saved) | set(identity))
                      if not same_setting(k, saved.get(k), identity.get(k)) and k not in extendable]
            if differ:
                k = differ[0]
                raise UsageError(f"--resume: the checkpoint in {folder} was made with {k}={saved.get(k)!r}, this run "
                                 f"has {k}={identity.get(k)!r}; use the same settings or another --out")
        model = load_checkpoint(folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        model = None
        write_json(os.path.join(folder, "run.json"), identity)
    return ResumableCheckpoint(folder, monitor=monitor, patience=patience), model, state


def _train_in(folder, config, data, x_fit, y_fit, validation, epochs, monitor, patience, callbacks_for, desc,
              announce=None):
    """Build or resume a model in checkpoint ``folder`` and train it; returns (model, checkpoint, samples seen,
    step functions). The step functions' forward pass, traced for validation, also scores the test set.

    ``announce(model)`` is called once the model exists, before training (it prints what is trained).
    """
    from engine.augmentation import Augmentation
    from engine.training import StepFunctions, fit
    from utils import set_seed

    checkpoint, model, state = _open_checkpoint(folder, config, data, config.resume, monitor, patience)
    if model is None:
        set_seed(config.seed)
        model = build_model(config, data, x_fit, y_fit)[0]
    else:
        print(f"Resuming {folder} after epoch {state['epoch']}.")
    if announce:
        announce(model)
    done = checkpoint.state["epoch"]
    stopped = patience is not None and patience > 0 and checkpoint.state["wait"] >= patience
    seen = 0
    steps = StepFunctions(model)
    if done < epochs and not stopped:
        progress = _Progress(epochs, done, config.verbose, desc)
        try:
            seen = fit(model, x_fit, y_fit, checkpoint, epochs=epochs, batch_size=config.batch_size,
                       seed=config.seed, validation=validation, initial_epoch=done, steps=steps,
                       epoch_callbacks=callbacks_for(model), progress=progress,
                       augment=Augmentation(config.jitter, config.scaling))
        finally:
            progress.close()
    checkpoint.set_model(model)
    return model, checkpoint, seen, steps


def _score(steps, x, y):
    """(accuracy, cross-entropy) of the model of ``steps`` (``StepFunctions``) on (x, y); (None, None) when there
    is nothing to score."""
    from engine.training import cross_entropy

    if not len(x):
        return None, None
    probs = steps.predict(np.asarray(x, np.float32))
    return float(np.mean(np.argmax(probs, axis=1) == y)), cross_entropy(probs, np.asarray(y))


def train(data, config, command=None):
    """Train and test one configuration on ``data``; returns the finished ``Run`` (also written to its folder).

    ``command``: the command line recorded in the summary (default: this process's). Raises ``UsageError`` for
    settings the data cannot take, before any training; Ctrl-C becomes ``RunInterrupted`` (the last finished
    epoch is checkpointed, so ``resume`` continues from there).
    """
    config = config.validated()
    check_task(config, data)
    folder = folder_for(config, data.name)
    check_run_folder(folder, config.force)
    check_writable(folder)
    config = dataclasses.replace(config, out=folder, dataset=data.name)
    stage = ["ckpt"]  # the checkpoint folder in use, for the message of an interrupted run
    try:
        with folder_lock(folder):
            finished = check_folder(folder, config)
            if finished is not None:
                print(f"{folder} already holds this finished run: test accuracy "
                      f"{_percent(finished.summary['test_accuracy'])}, validation accuracy "
                      f"{_percent(finished.summary['val_accuracy'])} (--force trains it again).")
                return finished
            if config.force:
                _empty_folder(folder)
            if config.black_box:
                from engine.black_box_training import train_black_box

                return train_black_box(data, config, folder, split_data(data, config),
                                       encoder_for(config, data.length, channels=data.channels), command)
            if config.select == "auto":
                return _train_selected(data, config, command)
            return _train_and_score(data, config, folder, stage, command)
    except KeyboardInterrupt:
        from utils import resume_state

        state = resume_state(os.path.join(folder, stage[0])) or {"epoch": 0}
        refit = " of the refit" if stage[0] == "ckpt_refit" else ""
        if stage[0] == "scoring":
            raise RunInterrupted(f"interrupted while scoring the test set; training is finished, rerun with --resume "
                                 f"to score {folder}") from None
        if not state["epoch"]:
            raise RunInterrupted(f"interrupted before the first epoch{refit} finished; rerun with --resume to start "
                                 f"{folder} again") from None
        raise RunInterrupted(f"interrupted after epoch {state['epoch']}{refit}; rerun with --resume to continue "
                             f"{folder}") from None


def _percent(value):
    return "none" if value is None else f"{100 * value:.2f}%"


def _empty_folder(folder):
    """Remove what a run folder holds (not the folder, whose lock this process holds); only run entries
    (``check_run_folder`` refused any other)."""
    keep = {".lock", *foreign_entries(folder)}
    for name in os.listdir(folder):
        if name in keep:
            continue
        path = os.path.join(folder, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


def candidate_name(changes):
    """A candidate's folder name: its changed settings ("defaults" for none)."""
    return "_".join(f"{k}-{v}" for k, v in sorted(changes.items())) or "defaults"


def _train_selected(data, config, command, grid=None):
    """--select auto: train every candidate of ``grid`` on the split, keep the lowest validation cross-entropy.

    The candidates see the training set only (the test arrays are removed before they train); the chosen one is
    then scored on the test set, once. Each candidate is a run folder of its own in <run>/candidates/<name>, so a
    killed selection resumes candidate by candidate. The run folder gets the chosen candidate's files and a
    summary whose ``selection`` lists every candidate with its validation cross-entropy.
    """
    from utils import write_json

    grid = SELECTION_GRID if grid is None else grid
    folder = config.out
    without_test = dataclasses.replace(data, x_test=data.x_test[:0], y_test=data.y_test[:0])
    candidates = []
    for changes in grid:
        name = candidate_name(changes)
        candidate = dataclasses.replace(config, select="none", out=os.path.join(folder, "candidates", name),
                                        **changes)
        print(f"--select auto: candidate {name}")
        finished = os.path.isfile(os.path.join(candidate.out, "summary.json"))
        run = load_run(candidate.out) if finished else train(
            without_test, dataclasses.replace(candidate, resume=True), command=command)
        candidates.append({"name": name, "changes": changes, "val_cross_entropy": run.summary["val_cross_entropy"],
                           "val_accuracy": run.summary["val_accuracy"], "wall_seconds": run.summary["wall_seconds"],
                           "config": candidate})
    chosen = min(candidates, key=lambda c: c["val_cross_entropy"])
    print(f"--select auto: chose {chosen['name']} (validation cross-entropy "
          + ", ".join(f"{c['name']} {c['val_cross_entropy']:.4f}" for c in candidates) + ")")
    # The chosen candidate's checkpoint is complete: resuming it trains nothing more and scores the test set.
    final = train(data, dataclasses.replace(chosen["config"], resume=True), command=command)
    for name in ("model.keras", "best.weights.h5", "history.csv", "curves.png"):
        shutil.copyfile(os.path.join(final.folder, name), os.path.join(folder, name))
    summary = dict(final.summary, config={**final.summary["config"], "select": "auto", "out": portable(folder)},
                   wall_seconds=round(sum(c["wall_seconds"] for c in candidates) + final.summary["wall_seconds"], 2),
                   selection={"chosen": chosen["name"], "candidates": [
                       {k: c[k] for k in ("name", "changes", "val_cross_entropy", "val_accuracy", "wall_seconds")}
                       for c in candidates]})
    write_json(os.path.join(folder, "summary.json"), summary)
    print(f"Run folder: {folder} (the chosen candidate's own: {final.folder})")
    return Run(folder, read_summary(os.path.join(folder, "summary.json")), final.model)


def _describe(config, model, data, label):
    segments, mapping = segments_for(config, data.length), mapping_of(model)
    delta = config.mode in REPROGRAM_MODES
    source = (f"source {config.source_model} at {config.source_rate} Hz" if config.source_model else
              f"source {config.arch} ({', '.join(source_paths(config.source_weights))})")
    return (f"mode {config.mode}, " + (f"{source}, " if config.mode != "fcn" else "") +
            (f"{describe_encoding(config)}, " if config.mode != "fcn" else "") +
            (f"{data.channels} channels as {'simultaneous tones' if config.layout == 'mix' else 'consecutive tones'}, "
             if data.channels > 1 and config.mode != "fcn" else "") +
            (f"m={segments}, " if segments and config.encoding == "pad" else "") +
            (f"k={np.asarray(mapping).shape[-1]} {config.map_type} mapping, " if delta and mapping is not None
             else "") +
            ("a linear head on the attention vector, " if delta and config.head == "attention" else "") +
            ("a linear head on pooled features of several frozen layers, " if delta and config.head == "layers"
             else "") +
            (f"a linear head on its layer {config.source_layer or 'before the output'}, "
             if delta and config.head == "features" else "") +
            ("the program added to the series before its encoding, " if delta and config.program == "series"
             else "") +
            (f"dropout {config.dr} on delta, " if delta else "") +
            (f"ensemble of {config.ensemble} programs, " if delta and config.ensemble > 1 else "") +
            ("series standardised with the fit split's mean and standard deviation, " if config.standardise
             else "") +
            (f"series {'z-normalised' if config.znorm else ''}{' and ' if config.znorm and config.gain else ''}"
             f"{'scaled by a trained gain' if config.gain else ''}, " if config.znorm or config.gain else "") +
            (f"training batches augmented (jitter {config.jitter}, scaling {config.scaling}), "
             if config.jitter or config.scaling else "") +
            f"lr {config.lr}{' decay ' + str(config.lr_decay) if config.lr_decay else ''}"
            f"{' cosine' if config.cosine else ''}"
            f"{f', early stopping after {config.patience} epochs' if config.patience else ''}"
            f"{f', weights averaged over about {config.ema:g} epochs' if config.ema else ''}, trainable "
            f"parameters {sum(int(np.prod(w.shape)) for w in model.trainable_weights):,}, protocol {label}")


def describe_encoding(config):
    """How the run turns a series into audio, in words (e.g. "encoding fm (600 +- 400 Hz, clip 3 sigma)")."""
    if config.encoding == "fm":
        return f"encoding fm ({config.carrier:g} +- {config.deviation:g} Hz, clip {config.clip:g} sigma)"
    if config.encoding == "am":
        return f"encoding am ({config.carrier:g} Hz, {config.depth:g} dB, clip {config.clip:g} sigma)"
    return "encoding pad"


def _epoch_callbacks(config, folder, x_fit, y_fit, num_classes):
    """A function model -> the per-epoch extras of the run (an iterative mapping's re-assignment, SWD, TensorBoard
    scalars)."""
    def callbacks_for(model):
        callbacks = []
        if config.map_type == "iterative" and config.mode in REPROGRAM_MODES:
            from engine.iterative_mapping import IterativeMapping

            callbacks.append(IterativeMapping(x_fit, y_fit, num_classes, os.path.join(folder, "mappings.json"),
                                              batch_size=config.batch_size))
        if config.swd and config.mode in REPROGRAM_MODES:
            from swd import SWDCallback, source_reference_features
            from ts_model import source_of

            reference = source_reference_features(source_of(model), config.swd_gsc_dir)
            callbacks.append(SWDCallback(reference, x_fit, seed=config.seed))
        if config.tensorboard:
            from engine.training import TensorBoardScalars

            callbacks.append(TensorBoardScalars(os.path.join(folder, "tb")))
        return callbacks
    return callbacks_for


def _train_and_score(data, config, folder, stage, command):
    """Train, pick the best epoch, score the test set once, write the run folder; ``stage[0]`` names the step in
    progress ("ckpt", "ckpt_refit", "scoring") for the message of an interrupted run."""
    from utils import atomic_write, set_seed, write_json

    set_seed(config.seed)
    label = "OPTIMISTIC (best epoch chosen on the test set)" if config.val_on_test else "honest"
    x_fit, y_fit, x_val, y_val, notes = split_data(data, config)
    for note in notes:
        print(f"note: {note}")  # about the data: shown even in a quiet run
    print(f"{data.name}: {len(data.x_train)} train ({len(x_fit)} fit / {len(x_val)} "
          f"{'test-as-val' if config.val_on_test else 'val'}), {len(data.x_test)} test, length {data.length}, "
          f"{f'{data.channels} channels, ' if data.channels > 1 else ''}"
          f"{data.num_classes} classes {data.labels.tolist()}; source: {data.source}")
    start = time.time()
    model, checkpoint, seen, steps = _train_in(
        os.path.join(folder, "ckpt"), config, data, x_fit, y_fit, (x_val, y_val), config.epochs, "val_ce",
        config.patience or None, _epoch_callbacks(config, folder, x_fit, y_fit, data.num_classes),
        f"{data.name} {config.mode}", lambda m: print(_describe(config, m, data, label)))
    checkpoint.restore_best()
    stage[0] = "scoring"
    test_acc, test_ce = _score(steps, data.x_test, data.y_test)
    hist, best = checkpoint.state["history"], checkpoint.state["best_epoch"]
    seconds = checkpoint.state["seconds"]
    split_test_acc = None
    if config.refit and best is not None:
        split_test_acc = test_acc
        print(f"Refit: a fresh model on all {len(data.x_train)} training series for {best + 1} epochs "
              f"(the split model scored {split_test_acc:.4f} on the test set).")
        stage[0] = "ckpt_refit"
        model, refit_ckpt, refit_seen, steps = _train_in(
            os.path.join(folder, "ckpt_refit"), config, data, data.x_train, data.y_train, None, best + 1, None, None,
            lambda m: [], f"{data.name} refit")
        seen += refit_seen
        if model.optimizer.use_ema:  # the refit is scored like the split model: with its averaged weights
            model.optimizer.finalize_variable_values(model.trainable_weights)
        seconds += refit_ckpt.state["seconds"]
        stage[0] = "scoring"
        test_acc, test_ce = _score(steps, data.x_test, data.y_test)
    mapping = mapping_of(model)  # after a refit, the refit model's own (a frequency mapping may differ)
    penalty = float(sum(float(np.asarray(v)) for v in model.losses)) if model.losses else 0.0
    train_seconds = time.time() - start
    summary = {
        "dataset": data.name, "data_source": portable(data.source), "classes": data.num_classes,
        "length": data.length, "train_size": len(data.x_train), "test_size": len(data.x_test), "protocol": label,
        "config": {k: portable(v) for k, v in dataclasses.asdict(config).items()},
        "segments": segments_for(config, data.length),
        "mapping": None if mapping is None else np.asarray(mapping).astype(int).tolist(),
        "best_epoch": best, "epochs_run": checkpoint.state["epoch"],
        "val_accuracy": hist["val_accuracy"][best] if best is not None else None,
        "val_loss": hist["val_loss"][best] if best is not None else None,
        "val_cross_entropy": hist["val_ce"][best] if best is not None else None,
        "test_accuracy": test_acc, "test_loss": None if test_ce is None else test_ce + penalty,
        "test_cross_entropy": test_ce,
        "refit_epochs": best + 1 if split_test_acc is not None else None,
        "split_model_test_accuracy": split_test_acc,
        "wall_seconds": round(seconds, 2),
        "train_samples_per_second": round(seen / train_seconds, 1) if seen > 0 else None,
        "command": command or "python v2s_main.py " + " ".join(sys.argv[1:]),
        # Settings recorded in "config" (at their defaults) that this mode does not use (UNUSED_BY_MODE).
        "settings_not_used": list(UNUSED_BY_MODE.get(config.mode, ())),
    }
    atomic_write(os.path.join(folder, "best.weights.h5"), model.save_weights)
    atomic_write(os.path.join(folder, "model.keras"), model.save)
    write_history(os.path.join(folder, "history.csv"), hist)
    plot_curves(os.path.join(folder, "curves.png"), hist, f"{data.name}, {config.mode} ({source_label(config)}), {label}")
    write_json(os.path.join(folder, "summary.json"), summary)
    tag = " [OPTIMISTIC: best epoch chosen on the test set]" if config.val_on_test else ""
    print(f"--- Test accuracy: {test_acc:.4f}{tag}" if test_acc is not None else "--- (no test set scored)")
    print(f"=== Best Val. Acc: {summary['val_accuracy']:.4f} At Epoch of {best}{tag}")
    print(f"Run folder: {folder}")
    return Run(folder, read_summary(os.path.join(folder, "summary.json")), model)
