"""Evaluate source-model weights on speech clips: the command line of ``speech.evaluation``.

    python source_evaluation.py --weights weight/v2sa.weights.h5 --gsc-dir ../shared/gsc --split val
    python source_evaluation.py --help
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
from speech.evaluation import main

if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
