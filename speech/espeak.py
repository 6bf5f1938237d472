"""Offline text-to-speech with eSpeak NG through ctypes.

Uses the ``libespeak-ng`` shared library and voice data shipped in the ``espeakng-loader`` wheel (installed by the
README set-up), so no system package and no network is needed.

In:  a word, a voice name such as ``"en-us+f3"`` (accent + variant), rate (words/min), pitch and range (0-100).
Out: float32 mono waveform in [-1, 1] at ``ESpeak.sample_rate`` Hz (22,050 for eSpeak NG), silence trimmed.
"""

import ctypes
import os

import numpy as np

# espeak_AUDIO_OUTPUT and espeak_PARAMETER values from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

# English accents that ship with eSpeak NG; with the voice variants below they make the synthetic "speakers".
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")


def voice_variants():
    """Names of the eSpeak NG voice variants in the shipped data (e.g. ``m1``, ``klatt2``), sorted.

    Variants with a ``breath`` line are left out: their breath noise differs from run to run even in a fresh
    process with libc ``rand`` seeded, which would make the corpus irreproducible.
    """
    import espeakng_loader

    folder = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    names = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                if not any(line.split()[:1] == ["breath"] for line in fh):
                    names.append(name)
    return names


class ESpeak:
    """One initialised eSpeak NG engine per process (the library keeps global state)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._init()
        return cls._instance

    def _init(self):
        try:
            import espeakng_loader
        except ImportError as err:
            raise RuntimeError(
                "The synthetic speech corpus needs the 'espeakng-loader' package "
                "(pip install -r requirements/base.txt)."
            ) from err
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.sample_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with data at {data.decode()}")
        self._chunks = []
        # eSpeak NG draws some noise sources from libc rand(); seeding it per utterance keeps them repeatable.
        self._srand = ctypes.CDLL(None).srand
        # Keep a reference to the callback so it is not garbage collected while the library holds it.
        self._callback = _CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]

    def _collect(self, wav, numsamples, events):
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    def say(self, text, voice="en-us", rate=160, pitch=50, pitch_range=50, seed=0):
        """Synthesize ``text``; returns float32 samples at ``self.sample_rate`` with leading/trailing silence cut.

        Repeatable for the same arguments in a fresh process; within one process eSpeak NG's echo and flutter
        state carries over from earlier utterances, so ``speech.synthetic`` gives each voice a process of its own.
        """
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range),
                             (_PARAM_VOLUME, 100)):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        self._srand(int(seed) & 0x7FFFFFFF)
        raw = text.encode() + b"\0"
        if self._lib.espeak_Synth(raw, len(raw), 0, 0, 0, 0, None, None) != 0:
            raise RuntimeError(f"eSpeak NG could not synthesize {text!r} with voice {voice!r}")
        self._lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks).astype(np.float32) / 32768.0 if self._chunks else np.zeros(0, "f4")
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        return audio[loud[0]:loud[-1] + 1] if loud.size else audio
