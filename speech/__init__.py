"""The speech side of V2S: the source acoustic models and everything that trains or checks them.

``source_model``  V2Sa / V2Su architectures, the mel front end, weight loading ((batch, 16000) -> (batch, 36))
``commands``      the 36-class order, GSC-layout folder loader, speaker splits
``synthetic``     the offline synthetic speech-commands corpus (eSpeak NG voices)
``espeak``        a minimal ctypes binding of libespeak-ng
``pretrain``      pretraining a source model (library and the ``pretrain.py`` command line)
``evaluation``    accuracy and confusion matrix of source weights (the ``source_evaluation.py`` command line)
"""
