"""How a target series becomes the one second of 16 kHz audio a frozen speech model hears: the encodings of V2S.

Every encoding is a Keras layer, (batch, L) series -> (batch, 16000) waveform, differentiable in the series (so a
program added to the series before the encoding trains through it), with ``spans()``: where the series lies in
the waveform, as (start, stop) sample ranges, which CAM uses to fold a map over the second back onto the series.

  ``pad``  (``SegmentZeroPadding``, the paper's): m copies of the raw series at equal intervals in silence. A
           300-sample series fills two or three of the front end's 125 STFT frames; the model hears a click.
  ``fm``   (``ToneEncoding``): the series, z-normalised, clipped at +-clip and resampled to 16,000 samples, is the
           pitch of a tone: instantaneous frequency ``carrier + deviation * s / clip`` Hz (600 +- 400 Hz by
           default), amplitude ``TONE_AMPLITUDE``. Every frame of the second carries a part of the series' shape.
  ``am``   (``ToneEncoding``): the same normalised series as the loudness of a ``carrier`` Hz tone, in decibels:
           ``depth`` dB between the lowest and the highest clipped value, so the log-mel image the model reads
           follows the series linearly in time.

A multivariate series (batch, D, L) is played as D tones (``ChannelTones``), in one of two ``LAYOUTS``: ``mix``,
the D tones at once, each in a band of its own (frequency division, like the voices of a chord), or ``split``, one
after another, each channel a D-th of the second (time division).

``build_encoding`` makes the layer a run's settings describe; ``encoder_of`` finds it in a V2S model. The
parameters' defaults are ``speech.spec``'s (one place, importable without TensorFlow).
"""

import keras
import numpy as np
from keras import layers as L
from keras import ops

from speech.spec import (AM_DEPTH_DB, CARRIER_HZ, CLIP_SIGMA, ENCODINGS, FM_DEVIATION_HZ, LAYOUTS, TONE_AMPLITUDE,
                         TONE_ENCODINGS)
from speech.commands import SAMPLE_RATE

__all__ = ["ENCODINGS", "segment_positions", "SegmentZeroPadding", "ToneEncoding", "ChannelTones", "LAYOUTS",
           "build_encoding", "encoder_of", "ENCODER_NAMES", "z_normalised"]

# The highest frequency a band of ``mix`` may reach: below the source's 8 kHz mel ceiling.
TOP_HZ = 7800.0
# The name of the encoding layer in a V2S model; models saved before the encodings existed named their padding
# "segment_padding".
ENCODER_NAMES = ("encoding", "segment_padding")


def z_normalised(x):
    """Each series of x (batch, L) at zero mean and unit standard deviation; a constant series becomes 0.

    Computed on the series divided by its largest magnitude: the z-score does not change, and squaring values near
    float32's limit (3.4e38; a series of order 1e20 already) no longer overflows to infinity.
    """
    peak = ops.max(ops.abs(x), axis=-1, keepdims=True)
    x = x / ops.where(peak > 0, peak, ops.ones_like(peak))
    mean = ops.mean(x, axis=-1, keepdims=True)
    std = ops.std(x, axis=-1, keepdims=True)
    return (x - mean) / ops.where(std > 1e-7, std, ops.ones_like(std))


def segment_positions(length, segments, total=SAMPLE_RATE):
    """Start indices of ``segments`` copies of a length-``length`` series at equal intervals from 0.

    Copy i starts at ``i * (total // segments)``; raises ValueError when the copies would overlap or overrun.
    """
    if segments < 1:
        raise ValueError(f"--seg (segments m) must be at least 1, got {segments}.")
    stride = total // segments
    if length > stride:
        fit = total // length
        raise ValueError(f"{segments} copies of a length-{length} series do not fit in {total} samples at equal "
                         f"intervals of {stride}; use --seg {fit} or fewer.")
    return [i * stride for i in range(segments)]


@keras.saving.register_keras_serializable(package="V2S")
class SegmentZeroPadding(L.Layer):
    """Place a series m times at equal intervals in a zero waveform: (batch, L) -> (batch, 16000).

    Copy i occupies samples ``[i * (16000 // m), i * (16000 // m) + L)``; everything else is zero. ``mask()`` gives
    the 0/1 waveform of where the copies are.
    """

    def __init__(self, length, segments=1, total=SAMPLE_RATE, **kwargs):
        super().__init__(**kwargs)
        self.length, self.segments, self.total = int(length), int(segments), int(total)
        self.positions = segment_positions(self.length, self.segments, self.total)

    def mask(self):
        m = np.zeros(self.total, np.float32)
        for p in self.positions:
            m[p:p + self.length] = 1.0
        return m

    def spans(self):
        """[(start, stop)] sample ranges of the copies."""
        return [(p, p + self.length) for p in self.positions]

    def call(self, x):
        batch = ops.shape(x)[0]
        pieces, cursor = [], 0
        for p in self.positions:
            if p > cursor:
                pieces.append(ops.zeros((batch, p - cursor), dtype=x.dtype))
            pieces.append(x)
            cursor = p + self.length
        if cursor < self.total:
            pieces.append(ops.zeros((batch, self.total - cursor), dtype=x.dtype))
        return ops.concatenate(pieces, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.total)

    def get_config(self):
        return {**super().get_config(), "length": self.length, "segments": self.segments, "total": self.total}


def _interpolation(length, total):
    """(lower index, upper index, weight of the upper) per output sample: linear interpolation of a length-``length``
    series onto ``total`` samples spanning the same interval (first and last values kept)."""
    where = np.linspace(0.0, length - 1.0, total)
    lower = np.floor(where).astype(np.int32)
    upper = np.minimum(lower + 1, length - 1).astype(np.int32)
    return lower, upper, (where - lower).astype(np.float32)


def _resampled(u, lower, upper, weight):
    """``u`` (..., L) resampled along its last axis by ``_interpolation``'s indices and weights: (..., total)."""
    weight = ops.cast(weight, u.dtype)
    return ops.take(u, lower, axis=-1) * (1.0 - weight) + ops.take(u, upper, axis=-1) * weight


def _tone(u, carrier_cycles, kind, swing, depth):
    """The unit-amplitude tone a normalised series ``u`` (..., total) in [-1, 1] plays along its last axis: ``fm``,
    the carrier's phase (``carrier_cycles``, in cycles) plus the running sum of ``swing * u`` Hz; ``am``, the carrier
    ``depth / 2 * (u - 1)`` dB below full level."""
    carrier = ops.cast(carrier_cycles, u.dtype)
    if kind == "fm":
        return ops.sin(2.0 * np.pi * (carrier + ops.cumsum(swing * u, axis=-1) / SAMPLE_RATE))
    level_db = depth / 2.0 * (u - 1.0)
    return ops.power(10.0, level_db / 20.0) * ops.sin(2.0 * np.pi * carrier)


@keras.saving.register_keras_serializable(package="V2S")
class ToneEncoding(L.Layer):
    """A series as the pitch (``kind="fm"``) or the loudness (``"am"``) of a tone lasting the whole second.

    Shape: (batch, L) -> (batch, ``total``). Each series is z-normalised (a constant one becomes 0), clipped at
    +-``clip`` and divided by ``clip``, so u lies in [-1, 1], then resampled to ``total`` samples by linear
    interpolation. ``fm``: instantaneous frequency ``carrier + deviation * u`` Hz, the phase its running sum.
    ``am``: a ``carrier`` Hz sine whose level is ``depth / 2 * (u - 1)`` dB below ``amplitude``. Every step is
    differentiable in the series (the clipping's gradient is 0 beyond +-clip).
    """

    def __init__(self, length, kind="fm", carrier=CARRIER_HZ, deviation=FM_DEVIATION_HZ, depth=AM_DEPTH_DB,
                 clip=CLIP_SIGMA, amplitude=TONE_AMPLITUDE, total=SAMPLE_RATE, **kwargs):
        super().__init__(**kwargs)
        if kind not in TONE_ENCODINGS:
            raise ValueError(f"Unknown tone encoding {kind!r}; expected one of {TONE_ENCODINGS}.")
        self.length, self.kind, self.total = int(length), kind, int(total)
        self.carrier, self.deviation, self.depth = float(carrier), float(deviation), float(depth)
        self.clip, self.amplitude = float(clip), float(amplitude)
        lower, upper, weight = _interpolation(self.length, self.total)
        self._lower, self._upper = ops.convert_to_tensor(lower), ops.convert_to_tensor(upper)
        self._weight = ops.convert_to_tensor(weight)
        # The carrier's own phase in cycles, reduced modulo 1 in float64 so float32 keeps its precision.
        cycles = np.mod(self.carrier * np.arange(self.total) / SAMPLE_RATE, 1.0)
        self._carrier_cycles = ops.convert_to_tensor(cycles.astype(np.float32))

    def spans(self):
        """[(0, total)]: the series spans the whole second."""
        return [(0, self.total)]

    def normalised(self, x):
        """The series as the encoding reads it: z-normalised, clipped, divided by ``clip``; (batch, total)."""
        u = ops.clip(z_normalised(x), -self.clip, self.clip) / self.clip
        return _resampled(u, self._lower, self._upper, self._weight)

    def call(self, x):
        return self.amplitude * _tone(self.normalised(x), self._carrier_cycles, self.kind, self.deviation, self.depth)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.total)

    def get_config(self):
        return {**super().get_config(), "length": self.length, "kind": self.kind, "carrier": self.carrier,
                "deviation": self.deviation, "depth": self.depth, "clip": self.clip, "amplitude": self.amplitude,
                "total": self.total}


@keras.saving.register_keras_serializable(package="V2S")
class ChannelTones(L.Layer):
    """A multivariate series as D tones: (batch, D, L) -> (batch, ``total``).

    Each channel is z-normalised, clipped at +-``clip`` and divided by it (u in [-1, 1]), as ``ToneEncoding`` does.
    ``layout="mix"``: every channel lasts the whole second, in a band of its own: the bands of width w =
    min(2 ``deviation``, (``TOP_HZ`` - f0) / D) follow each other upwards from f0 = ``carrier`` - ``deviation``;
    channel c's tone sits at f0 + (c + 1/2) w, swinging +-w/2 (``fm``) or at that fixed pitch with its loudness
    (``am``, ``depth`` dB); the D tones are summed at ``amplitude`` / D each. One channel is ``ToneEncoding``'s
    tone exactly. ``layout="split"``: channel c takes the c-th D-th of the second, as one tone of ``carrier`` +-
    ``deviation`` whose phase runs on across the boundaries.
    """

    def __init__(self, length, channels, kind="fm", layout="mix", carrier=CARRIER_HZ, deviation=FM_DEVIATION_HZ,
                 depth=AM_DEPTH_DB, clip=CLIP_SIGMA, amplitude=TONE_AMPLITUDE, total=SAMPLE_RATE, **kwargs):
        super().__init__(**kwargs)
        if kind not in TONE_ENCODINGS:
            raise ValueError(f"Unknown tone encoding {kind!r}; expected one of {TONE_ENCODINGS}.")
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown channel layout {layout!r}; expected one of {LAYOUTS}.")
        self.length, self.channels, self.kind, self.layout = int(length), int(channels), kind, layout
        self.carrier, self.deviation, self.depth = float(carrier), float(deviation), float(depth)
        self.clip, self.amplitude, self.total = float(clip), float(amplitude), int(total)
        d = self.channels
        if layout == "mix":
            lowest = self.carrier - self.deviation
            width = min(2.0 * self.deviation, (TOP_HZ - lowest) / d)
            self.carriers = [lowest + (c + 0.5) * width for c in range(d)]
            self.swing = width / 2.0
            lower, upper, weight = _interpolation(self.length, self.total)
            cycles = np.mod(np.outer(self.carriers, np.arange(self.total)) / SAMPLE_RATE, 1.0)  # (D, total)
        else:
            # Output sample t plays channel c = t // slot at position (t % slot) of its own series, resampled.
            slot = self.total // d
            lo, up, weight = _interpolation(self.length, slot)
            offsets = np.repeat(np.arange(d) * self.length, slot)
            lower = np.concatenate([np.tile(lo, d) + offsets, np.full(self.total - d * slot, d * self.length - 1)])
            upper = np.concatenate([np.tile(up, d) + offsets, np.full(self.total - d * slot, d * self.length - 1)])
            weight = np.concatenate([np.tile(weight, d), np.zeros(self.total - d * slot, np.float32)])
            cycles = np.mod(self.carrier * np.arange(self.total) / SAMPLE_RATE, 1.0)
        self._lower, self._upper = ops.convert_to_tensor(lower.astype(np.int32)), ops.convert_to_tensor(upper.astype(np.int32))
        self._weight = ops.convert_to_tensor(np.asarray(weight, np.float32))
        self._carrier_cycles = ops.convert_to_tensor(cycles.astype(np.float32))

    def spans(self):
        """Where each channel lies: [(0, total)] per channel (``mix``), or each channel's slot (``split``)."""
        if self.layout == "mix":
            return [(0, self.total)] * self.channels
        slot = self.total // self.channels
        return [(c * slot, (c + 1) * slot) for c in range(self.channels)]

    def call(self, x):
        u = ops.clip(z_normalised(x), -self.clip, self.clip) / self.clip  # (batch, D, L), per channel
        if self.layout == "mix":
            u = _resampled(u, self._lower, self._upper, self._weight)  # (batch, D, total)
            tones = _tone(u, self._carrier_cycles, self.kind, self.swing, self.depth)
            return self.amplitude / self.channels * ops.sum(tones, axis=1)
        u = _resampled(ops.reshape(u, (-1, self.channels * self.length)), self._lower, self._upper, self._weight)
        return self.amplitude * _tone(u, self._carrier_cycles, self.kind, self.deviation, self.depth)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.total)

    def get_config(self):
        return {**super().get_config(), "length": self.length, "channels": self.channels, "kind": self.kind,
                "layout": self.layout, "carrier": self.carrier, "deviation": self.deviation, "depth": self.depth,
                "clip": self.clip, "amplitude": self.amplitude, "total": self.total}


def build_encoding(encoding, length, segments=1, carrier=None, deviation=None, depth=None, clip=None,
                   channels=1, layout="mix", name="encoding"):
    """The encoding layer of ``encoding`` (one of ``ENCODINGS``) for series of ``length`` samples.

    ``segments``: the copies m of ``pad``; ``carrier`` / ``deviation`` / ``depth`` / ``clip``: the tone's
    parameters (None: ``speech.spec``'s defaults), each used only by the encodings that read it; ``channels`` D > 1:
    a multivariate series (batch, D, L), played as D tones in ``layout`` (``ChannelTones``; tone encodings only).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"Unknown encoding {encoding!r}; expected one of {ENCODINGS}.")
    if encoding == "pad":
        if channels > 1:
            raise ValueError(f"--encoding pad plays one series; a multivariate series of {channels} channels is "
                             f"played as tones: --encoding {' or '.join(TONE_ENCODINGS)}")
        return SegmentZeroPadding(length, segments, name=name)
    given = {k: v for k, v in {"carrier": carrier, "deviation": deviation, "depth": depth, "clip": clip}.items()
             if v is not None}
    if channels > 1:
        return ChannelTones(length, channels, encoding, layout, name=name, **given)
    return ToneEncoding(length, encoding, name=name, **given)


def encoder_of(model):
    """The encoding layer of a V2S or TF_a model."""
    names = {layer.name for layer in model.layers}
    found = [n for n in ENCODER_NAMES if n in names]
    if not found:
        raise ValueError(f"{model.name} has no encoding layer (one named {' or '.join(ENCODER_NAMES)})")
    return model.get_layer(found[0])
