"""A synthetic Speech Commands corpus, generated offline with eSpeak NG and cached.

The 35 command words are spoken by synthetic voices (English accents x eSpeak NG voice variants) with random rate,
pitch, pitch range, loudness, start offset, band limiting, reverberation and additive coloured noise; class 0 gets
noise-only "silence" clips. Everything is deterministic from ``seed``.

The split is by *voice variant* (timbre): a variant is in exactly one of train / val / test under every accent,
so the test split holds voices never heard in training.

In:  ``CorpusConfig`` (seed, number of variants, clips per word and voice, split percentages).
Out: ``SpeechSet`` with x float32 (N, 16000) at 16 kHz, y int (N,) in ``speech.commands.CLASSES`` order,
     speakers = voice names (e.g. ``"en-us+f3"``), plus a split array ('train' / 'val' / 'test') of length N.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from speech.espeak import ACCENTS, ESpeak, voice_variants
from speech.commands import SAMPLE_RATE, WORDS, SpeechSet, resample

DEFAULT_CACHE = os.environ.get(
    "V2S_CACHE", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))  # <repo>/data


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Everything that determines the corpus; its hash names the cache file."""

    seed: int = 0
    variants: int = 0  # 0: every variant shipped with eSpeak NG; else the first N of a seeded shuffle
    clips_per_voice: int = 1  # clips of each word per (accent, variant) voice
    val_percent: int = 10
    test_percent: int = 10

    def key(self):
        return hashlib.sha1(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def variant_split(variants, val_percent, test_percent, seed):
    """'train' / 'val' / 'test' for each variant name, by a seeded shuffle so the sizes are exact."""
    order = np.random.default_rng(seed).permutation(len(variants))
    n_val = round(len(variants) * val_percent / 100)
    n_test = round(len(variants) * test_percent / 100)
    split = {}
    for rank, i in enumerate(order):
        split[variants[i]] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return split


def coloured_noise(rng, n, colour):
    """White (0), pink (1) or brown (2) noise of unit RMS, length ``n``."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum / freqs ** (colour / 2.0), n)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)


def _band_limit(rng, audio):
    from scipy.signal import butter, sosfilt

    if rng.random() < 0.5:
        audio = sosfilt(butter(4, rng.uniform(2500, 7500), "low", fs=SAMPLE_RATE, output="sos"), audio)
    if rng.random() < 0.5:
        audio = sosfilt(butter(2, rng.uniform(60, 400), "high", fs=SAMPLE_RATE, output="sos"), audio)
    return audio


def _reverb(rng, audio):
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.1, 0.6)
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0
    wet = fftconvolve(audio, ir / np.sqrt(np.sum(ir ** 2)))[:len(audio) + len(ir) // 2]
    return wet * rng.uniform(0.3, 1.0) + np.pad(audio, (0, len(wet) - len(audio)))


def word_clip(tts, rng, word, voice):
    """One augmented one-second clip of ``word`` spoken by ``voice``."""
    audio = tts.say(word, voice=voice, rate=rng.uniform(110, 230), pitch=rng.uniform(15, 85),
                    pitch_range=rng.uniform(10, 95), seed=rng.integers(2 ** 31))
    audio = resample(audio, tts.sample_rate)
    audio = _band_limit(rng, audio)
    if rng.random() < 0.3:
        audio = _reverb(rng, audio)
    audio = audio[:SAMPLE_RATE]
    clip = np.zeros(SAMPLE_RATE, np.float32)
    start = rng.integers(0, SAMPLE_RATE - len(audio) + 1)
    clip[start:start + len(audio)] = audio
    clip *= rng.uniform(0.05, 0.9) / (np.abs(clip).max() + 1e-9)
    if rng.random() < 0.8:
        speech_rms = np.sqrt(np.mean(audio ** 2)) * rng.uniform(0.05, 0.9) / (np.abs(audio).max() + 1e-9)
        snr_db = rng.uniform(5, 40)
        clip += coloured_noise(rng, SAMPLE_RATE, rng.integers(0, 3)) * speech_rms / 10 ** (snr_db / 20)
    return clip


def silence_clip(rng):
    """A one-second noise-only clip: coloured noise at a random level, sometimes with mains hum."""
    clip = coloured_noise(rng, SAMPLE_RATE, rng.integers(0, 3)) * 10 ** rng.uniform(-4, -0.7)
    if rng.random() < 0.3:
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        clip += 10 ** rng.uniform(-3.5, -1.5) * np.sin(2 * np.pi * rng.choice([50, 60]) * t + rng.uniform(0, 6.3))
    return clip.astype(np.float32)


def _variant_clips(args):
    """All clips of one voice variant under every accent, in a fresh process.

    eSpeak NG keeps internal state (echo buffer, flutter phase, libc ``rand``) across utterances that no API call
    resets, so each variant is synthesized in a new process: the same call sequence then gives the same samples.
    """
    seed, variant_index, variant, clips_per_voice = args
    tts = ESpeak()
    xs, ys, voices = [], [], []
    for ai, accent in enumerate(ACCENTS):
        voice = f"{accent}+{variant}"
        for rep in range(clips_per_voice):
            for wi, word in enumerate(WORDS):
                rng = np.random.default_rng([seed, variant_index, ai, wi + 1, rep])
                xs.append(word_clip(tts, rng, word, voice))
                ys.append(wi + 1)
            # A silence clip per voice and repetition keeps class 0 about as large as a word class.
            xs.append(silence_clip(np.random.default_rng([seed, variant_index, ai, 0, rep])))
            ys.append(0)
            voices += [voice] * (len(WORDS) + 1)
    return np.round(np.clip(np.stack(xs), -1, 1) * 32767).astype(np.int16), np.array(ys, np.int64), voices


def generate(config, splits=("train", "val", "test"), progress=True, workers=None):
    """Generate the corpus for ``config`` (only the voice variants of ``splits``) with ``workers`` processes.

    Returns (``SpeechSet``, split array). A clip depends only on the config and its voice and word, so a corpus
    generated for one split holds exactly the clips of that split in the full corpus.
    """
    import multiprocessing

    from tqdm import tqdm

    variants = voice_variants()
    if config.variants:
        variants = sorted(np.random.default_rng(config.seed).permutation(variants)[:config.variants])
    split_of = variant_split(variants, config.val_percent, config.test_percent, config.seed)
    tasks = [(config.seed, i, v, config.clips_per_voice) for i, v in enumerate(variants) if split_of[v] in splits]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers or os.cpu_count(), maxtasksperchild=1) as pool:
        parts = list(tqdm(pool.imap(_variant_clips, tasks), total=len(tasks), desc="synthesizing voice variants",
                          unit="variant", disable=not progress))
    speakers = np.array([v for _, _, voices in parts for v in voices])
    data = SpeechSet(np.concatenate([p[0] for p in parts]).astype(np.float32) / 32767.0,
                     np.concatenate([p[1] for p in parts]), speakers,
                     np.array([f"synthetic/{s}" for s in speakers]))
    split = np.array([split_of[s.split("+", 1)[1]] for s in speakers])
    return data, split


def load_or_generate(config, cache_dir=DEFAULT_CACHE, splits=("train", "val", "test"), progress=True):
    """The corpus for ``config`` (the variants of ``splits``) from ``cache_dir``, generating and caching it if absent.

    The cache is int16 and compressed; a cached full corpus also serves a request for fewer splits.
    """
    splits = tuple(sorted(splits))
    full = tuple(sorted(("train", "val", "test")))
    for candidate in dict.fromkeys((splits, full)):
        path = _cache_path(config, cache_dir, candidate)
        if os.path.isfile(path):
            with np.load(path) as z:
                keep = np.isin(z["split"], splits)
                data = SpeechSet(z["x"][keep].astype(np.float32) / 32767.0, z["y"][keep], z["speakers"][keep],
                                 z["paths"][keep])
                return data, z["split"][keep]
    path = _cache_path(config, cache_dir, splits)
    data, split = generate(config, splits=splits, progress=progress)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, x=np.round(data.x * 32767).astype(np.int16), y=data.y, speakers=data.speakers,
                        paths=data.paths, split=split, config=json.dumps(dataclasses.asdict(config)))
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written cache behind
    return data, split


def _cache_path(config, cache_dir, splits):
    suffix = "" if len(splits) == 3 else "_" + "-".join(splits)
    return os.path.join(cache_dir, f"synthetic_speech_{config.key()}{suffix}.npz")
