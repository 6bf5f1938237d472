"""Resemblyzer's voice encoder (the ``Resemblyzer`` 0.1.4 package, Apache-2.0; a GE2E speaker encoder after Wan,
Wang, Papir and Lopez Moreno, "Generalized end-to-end loss for speaker verification", ICASSP 2018) rebuilt in
Keras 3: a speaker-embedding model trained on real speech.

In:  waveforms (batch, samples) at 16 kHz, float32, any number of samples.
Out: (batch, 256) speaker embeddings, non-negative and of unit length (``embedding``).

Front end: librosa's mel spectrogram (``ported.front_ends.LibrosaMel``: 400-sample frames every 160 samples, 40
Slaney mel bands, power, no log; 101 frames for one second). Network: three stacked LSTMs of 256 units
(``lstm1``..``lstm3``, the last one's final state read), a dense layer of 256 with ReLU (``linear``), L2
normalisation. The package's own ``embed_utterance`` also normalises the loudness, trims silences with a voice
activity detector and averages 1.6-second partial utterances; V2S controls its input itself, so the port is the
network (``VoiceEncoder.forward``) on one mel spectrogram.
"""

import keras
from keras import layers as L

from ported.front_ends import LibrosaMel

SAMPLE_RATE, N_FFT, HOP, N_MELS, UNITS, LAYERS = 16000, 400, 160, 40, 256, 3


def build_voice_encoder(samples=None, name="resemblyzer"):
    """The voice encoder on waveforms of ``samples`` samples (None: any length), random weights;
    ``port_state_dict`` fills them."""
    waves = keras.Input((samples,), name="waveform")
    x = LibrosaMel(N_FFT, HOP, N_MELS, sample_rate=SAMPLE_RATE, name="mel")(waves)
    for i in range(1, LAYERS + 1):
        x = L.LSTM(UNITS, return_sequences=i < LAYERS, name=f"lstm{i}")(x)
    x = L.Dense(UNITS, activation="relu", name="linear")(x)
    return keras.Model(waves, L.UnitNormalization(name="embedding")(x), name=name)


def port_state_dict(model, state):
    """Fill ``build_voice_encoder``'s weights from the package's ``model_state`` (``lstm.weight_ih_l0`` (1024, 40),
    ``lstm.weight_hh_l0``, ``lstm.bias_ih_l0``, ``lstm.bias_hh_l0``, ..., ``linear.weight``, ``linear.bias``). Both
    frameworks order the gates input, forget, cell, output; PyTorch's two biases add up to Keras' one."""
    for i in range(LAYERS):
        model.get_layer(f"lstm{i + 1}").set_weights([state[f"lstm.weight_ih_l{i}"].T, state[f"lstm.weight_hh_l{i}"].T,
                                                     state[f"lstm.bias_ih_l{i}"] + state[f"lstm.bias_hh_l{i}"]])
    model.get_layer("linear").set_weights([state["linear.weight"].T, state["linear.bias"]])
    return model
