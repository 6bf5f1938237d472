"""Pretrain a V2S source model on one-second speech commands: the command line of ``speech.pretrain``.

    python pretrain.py --synthetic --gsc-dir ../shared/gsc       # the shipped recipe -> runs/pretrain/v2sa
    python pretrain.py --help                                                      # every flag, explained
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
from speech.pretrain import main

if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
