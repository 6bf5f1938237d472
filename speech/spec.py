"""The source models' fixed facts, importable without TensorFlow (so a command's ``--help`` and its flag checks
answer at once): the architectures, the number of source labels, and the mel front end's framing.

One second of 16 kHz audio (``SAMPLE_RATE`` samples) -> STFT of ``N_FFT``-sample Hann frames every ``HOP``
samples, padded at the end: ``FRAMES`` (125) frames of 513 bins -> ``N_MELS`` (80) mel bands from ``MEL_F_MIN``
(40 Hz) to 8 kHz, in decibels (the reference code's kapre settings). ``speech.source_model`` builds the models.

How a target series becomes that one second (``ts_encoding`` builds the layers): ``pad`` places m copies of it in
silence (the paper's); ``fm`` plays it as the pitch of a tone over the whole second (instantaneous frequency
``carrier + deviation * s / clip`` Hz for the series s, z-normalised and clipped at +-``clip``); ``am`` as the
loudness of a ``carrier`` Hz tone (``depth`` dB from the lowest to the highest clipped value).
"""

from speech.commands import CLASSES, SAMPLE_RATE

NUM_SOURCE_CLASSES = len(CLASSES)
# V2Sa: attention RNN; V2Su: V2Sa with a U-Net block; V2Sr: residual CNN; V2St: temporal convolutional network.
ARCHITECTURES = ("V2Sa", "V2Su", "V2Sr", "V2St")
# The architectures with an attention-pooled vector (``att_vector``), which CAM and ``--head attention`` read.
ATTENTION_ARCHITECTURES = ("V2Sa", "V2Su")
# The name of a user's Keras waveform model once wrapped as a source (``speech.keras_source``; --source-model), and
# what a run folder and a summary call its architecture.
KERAS_SOURCE = "keras_source"
# Sources reached only by queries (--black-box, engine.black_box): V2Sa exported to TensorFlow Lite, and
# efficientword-net's TFLite keyword embedder.
BLACK_BOXES = ("tflite", "efficientword")
# The sampling rates such a model may take (--source-rate), in Hz: a telephone band to a studio rate.
SOURCE_RATE_RANGE = (4000, 96000)
N_FFT, HOP, N_MELS, MEL_F_MIN = 1024, 128, 80, 40.0
FRAMES = -(-SAMPLE_RATE // HOP)

# Series-to-audio encodings (ts_encoding.py) and the defaults of their parameters.
ENCODINGS = ("pad", "fm", "am")
TONE_ENCODINGS = ("fm", "am")
CARRIER_HZ = 600.0  # the tone's centre frequency: inside the band speech carries most energy
FM_DEVIATION_HZ = 400.0  # the pitch swing at +-clip: 200 to 1,000 Hz around a 600 Hz carrier
AM_DEPTH_DB = 40.0  # the loudness swing from -clip to +clip
CLIP_SIGMA = 3.0  # z-normalised values are clipped at +-this many standard deviations
TONE_AMPLITUDE = 0.5  # peak amplitude of an encoded tone (a loud but unclipped one-second clip)
# How a multivariate series' channels share the second: at once, in bands of their own, or one after another.
LAYOUTS = ("mix", "split")
# Which tone parameter each encoding reads (the others are refused).
TONE_PARAMETERS = {"fm": ("carrier", "deviation", "clip"), "am": ("carrier", "depth", "clip")}
# What an analysis (SWD, t-SNE) compares of a frozen source: what the V2S model reads of it, or its 36 logits (the
# paper's space).
FEATURE_SPACES = ("read", "logits")
