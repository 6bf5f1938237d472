"""The engine every V2S command shares: the run API and run folders, the training loop and its faster CPU graph,
the frozen BiLSTM, batch augmentation, one-line errors and TensorFlow's start-up settings.

The design's own modules (``ts_model``, ``ts_dataloader``, ``utils``) and the commands a user types stay at the top
level; they import from here, and nothing here imports a command line. Importing the package loads nothing heavy.
"""
