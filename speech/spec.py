"""The source models' fixed facts, importable without TensorFlow (so a command's ``--help`` and its flag checks
answer at once): the architectures, the number of source labels, and the mel front end's framing.

One second of 16 kHz audio (``SAMPLE_RATE`` samples) -> STFT of ``N_FFT``-sample Hann frames every ``HOP``
samples, padded at the end: ``FRAMES`` (125) frames of 513 bins -> ``N_MELS`` (80) mel bands from ``MEL_F_MIN``
(40 Hz) to 8 kHz, in decibels (the reference code's kapre settings). ``speech.source_model`` builds the models.
"""

from speech.commands import CLASSES, SAMPLE_RATE

NUM_SOURCE_CLASSES = len(CLASSES)
# V2Sa: attention RNN; V2Su: V2Sa with a U-Net block; V2Sr: residual CNN; V2St: temporal convolutional network.
ARCHITECTURES = ("V2Sa", "V2Su", "V2Sr", "V2St")
# The architectures with an attention-pooled vector (``att_vector``), which CAM and ``--head attention`` read.
ATTENTION_ARCHITECTURES = ("V2Sa", "V2Su")
N_FFT, HOP, N_MELS, MEL_F_MIN = 1024, 128, 80, 40.0
FRAMES = -(-SAMPLE_RATE // HOP)
