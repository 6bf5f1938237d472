"""Environment defaults TensorFlow reads once, when it loads; every command line imports this module first.

TensorFlow's C++ side prints several INFO lines at start-up (oneDNN, CPU features, CUDA drivers not found) before
a command's own output, even for ``--help``. Level 2 keeps its warnings' and errors' channels for errors only. A
value the user set in the environment wins.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
