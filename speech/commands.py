"""Speech Commands data for the source model: class order and a loader for GSC-layout folders.

In:  a folder in the Google Speech Commands v2 layout: one sub-folder per word holding ``.wav`` or ``.flac`` clips
     named ``<speaker>_nohash_<n>.<ext>``; optionally ``_silence_`` (one-second noise clips),
     ``_background_noise_`` (long noise recordings, cut into one-second clips), ``validation_list.txt`` and
     ``testing_list.txt``.
Out: ``SpeechSet`` with ``x`` float32 (N, 16000) at 16 kHz, ``y`` int (N,) in the 36-class order ``CLASSES``,
     ``speakers`` (N,) and ``paths`` (N,) strings.
"""

import dataclasses
import hashlib
import os

import numpy as np

SAMPLE_RATE = 16000
# The reference code's 36 outputs; weights and label maps depend on this order.
CLASSES = (
    "silence", "nine", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one",
    "two", "three", "four", "five", "six", "seven", "eight", "backward", "bed", "bird", "cat", "dog", "follow",
    "forward", "happy", "house", "learn", "marvin", "sheila", "tree", "visual", "wow",
)
WORDS = CLASSES[1:]
# The ten command words of the Speech Commands benchmark (Warden 2018); the rest are its auxiliary words.
CORE_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE_FOLDERS = ("_silence_", "_background_noise_")
AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclasses.dataclass
class SpeechSet:
    """One-second clips with 36-class labels; ``speakers`` groups clips for speaker-disjoint splits."""

    x: np.ndarray
    y: np.ndarray
    speakers: np.ndarray
    paths: np.ndarray

    def __len__(self):
        return len(self.y)

    def subset(self, mask):
        return SpeechSet(self.x[mask], self.y[mask], self.speakers[mask], self.paths[mask])

    @staticmethod
    def concat(sets):
        return SpeechSet(*(np.concatenate([getattr(s, f.name) for s in sets])
                           for f in dataclasses.fields(SpeechSet)))


def fit_to_one_second(audio):
    """Zero-pad or centre-crop a 1-D waveform to exactly 16,000 samples."""
    if len(audio) >= SAMPLE_RATE:
        start = (len(audio) - SAMPLE_RATE) // 2
        return audio[start:start + SAMPLE_RATE]
    return np.pad(audio, (0, SAMPLE_RATE - len(audio)))


def resample(audio, rate, target=SAMPLE_RATE):
    """Polyphase resampling of a 1-D waveform from ``rate`` to ``target`` Hz."""
    if rate == target:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(audio, target // g, int(rate) // g).astype(np.float32)


def read_clip(path):
    """Read a mono float32 waveform at 16 kHz (resampling other rates, averaging channels)."""
    import soundfile as sf

    if not os.path.isfile(path):
        raise ValueError(f"Audio file {path} not found")  # libsndfile says only "System error"
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise ValueError(f"Cannot read audio file {path}: {err}") from None
    if rate < 4000:
        raise ValueError(f"Audio file {path} has sample rate {rate} Hz; expected speech audio at 16000 Hz "
                         "(other rates of at least 4000 Hz are resampled).")
    return resample(audio.mean(axis=1), rate)


def clip_changes(path):
    """What ``read_clip`` and ``fit_to_one_second`` do to the clip at ``path``, in words ([] when nothing: one
    channel, 16 kHz, one second)."""
    import soundfile as sf

    info = sf.info(path)
    seconds = info.frames / info.samplerate
    changes = [f"{info.channels} channels averaged"] if info.channels > 1 else []
    changes += [f"resampled from {info.samplerate} Hz to {SAMPLE_RATE}"] if info.samplerate != SAMPLE_RATE else []
    if abs(seconds - 1.0) * SAMPLE_RATE >= 1:
        changes.append(f"{seconds:.2f} s {'centre-cropped' if seconds > 1 else 'zero-padded at the end'} to one "
                       "second")
    return changes


def speaker_of(path):
    """Speaker id from a GSC file name (``<speaker>_nohash_<n>.wav``); the file stem when there is none."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem


def speaker_split(speakers, val_percent=20, test_percent=0, salt="v2s"):
    """Deterministic speaker-disjoint split by hashing speaker ids; returns 'train' / 'val' / 'test' per clip."""
    def bucket(s):
        return int(hashlib.sha1(f"{salt}:{s}".encode()).hexdigest(), 16) % 100

    buckets = np.array([bucket(s) for s in speakers])
    return np.where(buckets < val_percent, "val", np.where(buckets < val_percent + test_percent, "test", "train"))


def _official_lists(root):
    """GSC's own validation/testing lists when the folder has them: {relative path: 'val' | 'test'}."""
    split = {}
    for name, tag in (("validation_list.txt", "val"), ("testing_list.txt", "test")):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path) as fh:
                split.update({line.strip(): tag for line in fh if line.strip()})
    return split


def load_gsc_folder(root, max_per_class=None, seed=0, progress=True):
    """Load every clip of a GSC-layout folder; returns (``SpeechSet``, official split per clip or None).

    Words outside the 35 commands are skipped; ``_background_noise_`` recordings are cut into one-second clips
    labelled silence. ``max_per_class`` keeps a seeded random subset per class (for quick runs).
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"GSC folder not found: {root} (expected one sub-folder per word, e.g. {root}/yes)")
    entries = []
    for folder in sorted(os.listdir(root)):
        label = 0 if folder in SILENCE_FOLDERS else CLASSES.index(folder) if folder in WORDS else None
        if label is None or not os.path.isdir(os.path.join(root, folder)):
            continue
        files = sorted(f for f in os.listdir(os.path.join(root, folder)) if f.lower().endswith(AUDIO_EXTENSIONS))
        if max_per_class:
            files = sorted(np.random.default_rng(seed).permutation(files)[:max_per_class])
        entries += [(os.path.join(folder, f), label) for f in files]
    if not entries:
        raise ValueError(f"No .wav or .flac clips in word folders under {root}; expected the Speech Commands layout "
                         f"(<word>/<speaker>_nohash_<n>.wav with words such as {', '.join(WORDS[:4])}, ...).")
    from tqdm import tqdm

    xs, ys, speakers, paths = [], [], [], []
    for rel, label in tqdm(entries, desc=f"reading {os.path.basename(os.path.normpath(root))}", unit="clip",
                           disable=not progress):
        audio = read_clip(os.path.join(root, rel))
        long_noise = rel.startswith("_background_noise_")
        pieces = [audio[i:i + SAMPLE_RATE] for i in range(0, len(audio) - SAMPLE_RATE + 1, SAMPLE_RATE)] \
            if long_noise else [fit_to_one_second(audio)]
        for i, piece in enumerate(pieces):
            xs.append(piece)
            ys.append(label)
            speakers.append(f"{rel}#{i}" if long_noise else speaker_of(rel))
            paths.append(rel)
    official = _official_lists(root)
    split = np.array([official.get(p, "train") for p in paths]) if official else None
    data = SpeechSet(np.stack(xs).astype(np.float32), np.array(ys, dtype=np.int64), np.array(speakers),
                     np.array(paths))
    return data, split
