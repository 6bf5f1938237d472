"""Pretrained audio models of other projects, rebuilt in Keras 3 so V2S can reprogram them (``--source-model``)."""
