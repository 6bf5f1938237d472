"""librosa's mel spectrogram in TensorFlow, the front end the ported models were trained with.

In:  waveforms (batch, samples), float32.
Out: ``LibrosaMel``: (batch, frames, n_mels), what ``librosa.feature.melspectrogram(y, sr, n_fft=n_fft,
     hop_length=hop, n_mels=n_mels).T`` gives (power 2, Slaney mel scale and area normalisation), with the signal
     reflect-padded by n_fft // 2 at both ends (``center=True`` as the librosa of 2019, when these models were
     trained, padded; today's librosa pads with zeros, which changes the first and last frame only); optionally
     ``log10(log_scale * mel + 1)`` (musicnn's compression) and only the first ``frames`` frames.
"""

import keras
import numpy as np
from keras import layers as L


def slaney_mel_matrix(sample_rate, n_fft, n_mels, f_min=0.0, f_max=None):
    """(n_fft // 2 + 1, n_mels) float32 triangular mel filters on Slaney's mel scale (linear below 1 kHz,
    logarithmic above) with Slaney's area normalisation: librosa.filters.mel's defaults, transposed."""
    f_max = sample_rate / 2 if f_max is None else f_max
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, log_step = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, float)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / log_step, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(log_step * (m - min_log_mel)), f_sp * m)

    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    widths, ramps = np.diff(edges), edges[:, None] - bins[None, :]
    lower, upper = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


@keras.saving.register_keras_serializable(package="V2S")
class LibrosaMel(L.Layer):
    """Waveforms (batch, samples) -> mel spectrogram (batch, frames, n_mels); see the module docstring. No weights.

    ``frames`` None: all 1 + samples // hop frames. ``log_scale`` None: the power mel spectrogram itself.
    """

    def __init__(self, n_fft, hop, n_mels, sample_rate=16000, frames=None, log_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.n_fft, self.hop, self.n_mels, self.sample_rate = int(n_fft), int(hop), int(n_mels), int(sample_rate)
        self.frames = None if frames is None else int(frames)
        self.log_scale = None if log_scale is None else float(log_scale)
        self.matrix = slaney_mel_matrix(self.sample_rate, self.n_fft, self.n_mels)

    def call(self, waves):
        import tensorflow as tf

        half = self.n_fft // 2
        padded = tf.pad(waves, [[0, 0], [half, half]], mode="REFLECT")
        spectrum = tf.signal.stft(padded, self.n_fft, self.hop, self.n_fft, window_fn=tf.signal.hann_window)
        power = tf.math.square(tf.math.abs(spectrum))
        if self.frames is not None:
            power = power[:, :self.frames]
        mel = keras.ops.matmul(power, self.matrix)
        return mel if self.log_scale is None else keras.ops.log10(self.log_scale * mel + 1.0)

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else 1 + input_shape[1] // self.hop
        frames = self.frames if self.frames is not None else frames
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        return {**super().get_config(), "n_fft": self.n_fft, "hop": self.hop, "n_mels": self.n_mels,
                "sample_rate": self.sample_rate, "frames": self.frames, "log_scale": self.log_scale}
