"""Export a V2S source model to TensorFlow Lite (``speech.tflite_export``): the ``--black-box tflite`` source.

    python scripts/export_tflite.py --weights weight/v2sa.weights.h5 --out weight/v2sa.tflite

Prints the file's size and the largest difference between its probabilities and the Keras model's on a few
seeded noise waveforms.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import tf_setup  # noqa: E402,F401  (before TensorFlow loads)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="weight/v2sa.weights.h5", help="Source weights (their card names the "
                                                                        "architecture).")
    p.add_argument("--out", required=True, help="The .tflite file to write.")
    args = p.parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from speech.source_model import load_source_model
    from speech.tflite_export import export_tflite

    source = load_source_model(args.weights)
    size = export_tflite(source, args.out)
    interpreter = tf.lite.Interpreter(model_path=args.out)
    interpreter.allocate_tensors()
    worst = 0.0
    for wave in np.random.default_rng(0).standard_normal((4, 1, 16000)).astype(np.float32) * 0.1:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], wave)
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        worst = max(worst, float(np.abs(out - np.asarray(source(wave))).max()))
    print(f"{args.out}: {size / 1e6:.1f} MB; largest difference from the Keras model's probabilities {worst:.1e}")


if __name__ == "__main__":
    main()
