"""Port the musicnn taggers (``pip install musicnn==0.1.0``, ISC) to Keras 3 and record the original's outputs.

    # 1. in this project's environment: the Keras models and their model cards (weight/musicnn_mtt.keras, ...)
    python scripts/port_musicnn.py convert --package /path/to/site-packages/musicnn --out weight
    # 2. once, in a throwaway environment that runs the package's own TF1 code (tf_keras beside TensorFlow 2.20,
    #    the package on the path, librosa): the reference outputs the port's test compares with
    TF_USE_LEGACY_KERAS=1 PYTHONPATH=/tmp/tf_keras:/path/to/site-packages \
        python scripts/port_musicnn.py reference --package /path/to/site-packages/musicnn \
        --gsc-dir ../shared/gsc --out tests/fixtures/musicnn_reference.npz

``convert`` reads the checkpoints with TensorFlow's checkpoint reader (no package code runs). ``reference`` builds
the package's own graph (``musicnn.models.define_model``), restores each checkpoint, and runs it on real audio: two
three-second waveforms, each three Speech Commands clips end to end (16-bit samples, stored in the fixture), through
librosa's mel spectrogram with the port's padding (reflect) and in float32; it also stores what the package's own
pipeline gives (its float16 cast, today's librosa padding), for the model card's note on the difference.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # port_torch_sources's clip reader
CLIPS = ("yes", "no", "up", "down", "left", "right")  # the first clip of each word folder, three per waveform
OUT_NAMES = {"MTT_musicnn": "musicnn_mtt", "MSD_musicnn": "musicnn_msd"}


def convert(package, out):
    sys.path.insert(0, REPO)
    from ported.musicnn import CHECKPOINTS, build_musicnn, port_checkpoint
    from speech.complexity import layer_macs

    for checkpoint, (labels, trained_on) in CHECKPOINTS.items():
        folder = os.path.join(package, checkpoint)
        model = port_checkpoint(build_musicnn(len(labels), name=OUT_NAMES[checkpoint]), folder)
        path = os.path.join(out, f"{OUT_NAMES[checkpoint]}.keras")
        model.save(path)
        with open(os.path.join(folder, "experiment.result")) as fh:
            published = " ".join(fh.read().split())
        card = {"architecture": "musicnn", "source_model": True, "sample_rate": 16000, "input_samples": 48000,
                "outputs": "50 tag probabilities (sigmoid)", "labels": list(labels),
                "parameters": int(model.count_params()), "network_macs_per_input": int(sum(layer_macs(model).values())),
                "provenance": {"package": "musicnn 0.1.0 (PyPI)", "checkpoint": f"musicnn/{checkpoint}",
                               "authors": "J. Pons, X. Serra",
                               "paper": "musicnn: pre-trained convolutional neural networks for music audio tagging, "
                                        "ISMIR 2019 late-breaking/demo",
                               "training_data": trained_on, "license": "ISC", "published_quality": published},
                "front_end": "ported.musicnn.MusicnnLogMel (librosa's mel spectrogram in TensorFlow, float32)",
                "license_file": "musicnn.LICENSE"}
        with open(os.path.join(out, f"{OUT_NAMES[checkpoint]}.json"), "w") as fh:
            json.dump(card, fh, indent=2)
        print(f"{path}: {card['parameters']:,} parameters, {os.path.getsize(path) / 1e6:.1f} MB")
    licences = [os.path.join(os.path.dirname(package), d, "LICENSE.md") for d in os.listdir(os.path.dirname(package))
                if d.startswith("musicnn-") and d.endswith(".dist-info")]
    if licences and os.path.isfile(licences[0]):
        shutil.copyfile(licences[0], os.path.join(out, "musicnn.LICENSE"))


def fixture_waves(gsc_dir):
    """(2, 48000) int16: three one-second Speech Commands clips end to end per row."""
    from port_torch_sources import first_clips

    clips = first_clips(gsc_dir, CLIPS)
    return np.stack([np.concatenate(clips[i:i + 3]) for i in (0, 3)])


def reference(package, gsc_dir, out):
    import librosa
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    sys.path.insert(0, REPO)
    waves16 = fixture_waves(gsc_dir)
    waves = waves16.astype(np.float32) / 32768.0

    def log_mel(wave, **options):
        mel = librosa.feature.melspectrogram(y=wave, sr=16000, hop_length=256, n_fft=512, n_mels=96, **options).T
        return mel[:187]

    ours = np.stack([np.log10(10000 * log_mel(w, pad_mode="reflect") + 1) for w in waves]).astype(np.float32)
    package_way = np.stack([np.log10(10000 * log_mel(w).astype(np.float16) + 1) for w in waves]).astype(np.float32)
    record = {"waves": waves16, "log_mel": ours}
    for checkpoint in OUT_NAMES:
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
            training = tf.compat.v1.placeholder(tf.bool)
            logits, *_, penultimate = models.define_model(x, training, checkpoint, 50)
        with tf.compat.v1.Session() as session:
            tf.compat.v1.train.Saver().restore(session, os.path.join(package, checkpoint) + "/")
            for name, mel in (("", ours), ("package_", package_way)):
                lo, pen = session.run([logits, penultimate], {x: mel, training: False})
                record[f"{name}{OUT_NAMES[checkpoint]}_logits"] = lo
                if not name:
                    record[f"{OUT_NAMES[checkpoint]}_penultimate"] = pen
    np.savez_compressed(out, **record)
    print(f"{out}: {', '.join(f'{k} {v.shape}' for k, v in record.items())}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("step", choices=("convert", "reference"))
    p.add_argument("--package", required=True, help="The installed musicnn package folder (holding MTT_musicnn/).")
    p.add_argument("--out", required=True, help="convert: the folder for the models; reference: the .npz file.")
    p.add_argument("--gsc-dir", help="reference: a Speech Commands folder (word folders of 16 kHz .wav or .flac clips).")
    args = p.parse_args(argv)
    if not os.path.isdir(os.path.join(args.package, "MTT_musicnn")):
        p.error(f"--package {args.package} holds no MTT_musicnn checkpoint folder; pass the installed musicnn folder")
    if args.step == "convert":
        convert(args.package, args.out)
    else:
        if not args.gsc_dir or not os.path.isdir(args.gsc_dir):
            p.error("reference needs --gsc-dir, a Speech Commands folder")
        reference(args.package, args.gsc_dir, args.out)


if __name__ == "__main__":
    main()
