"""Import the original attention-RNN weights (trained on real Speech Commands v2) into a V2Sa source model.

    python -m speech.attrnn ../shared/attrnn_gscv2/model-attRNN.h5 --out weight/v2sa_gscv2

In:  the HDF5 file of de Andrade et al.'s Keras 2 model ("A neural attention model for speech command
     recognition", arXiv:1808.08929; repository douglas125/SpeechCmdRecognition, MIT license), read with h5py:
     its ``model_weights/<layer>/<layer>/<name>:0`` datasets.
Out: ``<out>.weights.h5`` (a V2Sa model with the ``gscv2_logmel`` front end those weights were trained with), a
     model card ``<out>.json`` (provenance, license, front end, the layer mapping) and the license notice
     ``<out>.LICENSE`` beside them. Errors name the layer or shape that does not fit.

The layers after the front end are the same in both models, in the same order; only their names differ:
"""

import argparse
import hashlib
import os
import shutil
import sys

import numpy as np

from engine.errors import UsageError

# Our V2Sa layer -> (the original's layer, its weights in our order).
LAYER_MAP = {
    "conv2d_1": ("conv2d", ("kernel", "bias")),
    "bn_1": ("batch_normalization", ("gamma", "beta", "moving_mean", "moving_variance")),
    "conv2d_2": ("conv2d_1", ("kernel", "bias")),
    "bn_2": ("batch_normalization_1", ("gamma", "beta", "moving_mean", "moving_variance")),
    "bilstm_1": ("bidirectional", ("forward", "backward")),
    "bilstm_2": ("bidirectional_1", ("forward", "backward")),
    "query": ("dense", ("kernel", "bias")),
    "dense_1": ("dense_1", ("kernel", "bias")),
    "dense_2": ("dense_2", ("kernel", "bias")),
    "logits": ("output", ("kernel", "bias")),
}
__doc__ += "\n".join(f"    {ours:9s} <- {theirs}" for ours, (theirs, _) in LAYER_MAP.items()) + "\n"
PROVENANCE = {
    "authors": "D. C. de Andrade, S. Leo, M. L. D. S. Viana, C. Bernkopf",
    "paper": "A neural attention model for speech command recognition, arXiv:1808.08929, 2018",
    "source": "github.com/douglas125/SpeechCmdRecognition, file model-attRNN.h5 "
              "(commit 1bbac0da4374590eb1517af01b77052be5407722)",
    "training_data": "Google Speech Commands v2, its training split (validation_list.txt and testing_list.txt "
                     "excluded), task '35word'",
    "license": "MIT",
    "copyright": "Copyright (c) 2018 Douglas Coimbra de Andrade",
}


def read_original(path):
    """{their layer name: {weight name: array}} from the original HDF5 file; a one-line error if it is not one."""
    import h5py

    if not os.path.isfile(path):
        raise UsageError(f"{path} not found")
    if not h5py.is_hdf5(path):
        raise UsageError(f"{path} is not an HDF5 file (expected the original model-attRNN.h5)")
    with h5py.File(path, "r") as fh:
        if "model_weights" not in fh:
            raise UsageError(f"{path} has no 'model_weights' group: not a whole Keras 2 model file")
        layers = {}
        for name, group in fh["model_weights"].items():
            weights = {}
            group.visititems(lambda key, item: weights.__setitem__(key, np.asarray(item))
                             if hasattr(item, "shape") else None)
            layers[name] = weights
    return layers


def _pick(weights, layer, suffix, direction=None):
    """The one array of ``layer`` whose path ends in ``suffix`` (and sits under ``direction``_lstm, if given)."""
    hits = [k for k in weights if k.endswith(suffix) and (direction is None or f"/{direction}_lstm" in f"/{k}")]
    if len(hits) != 1:
        raise UsageError(f"layer {layer!r} of the original model: expected one '{suffix}' weight"
                         f"{f' in its {direction} LSTM' if direction else ''}, found {len(hits)} "
                         f"({', '.join(sorted(weights)) or 'none'}); not the attention-RNN architecture")
    return weights[hits[0]]


def original_arrays(layers):
    """{our layer name: [arrays in the order our layer's get_weights() returns them]}."""
    arrays = {}
    for ours, (theirs, names) in LAYER_MAP.items():
        if theirs not in layers:
            raise UsageError(f"the original model has no layer {theirs!r} (for our {ours}); layers found: "
                             f"{', '.join(sorted(layers))}")
        weights = layers[theirs]
        if names == ("forward", "backward"):
            arrays[ours] = [_pick(weights, theirs, f"/{w}:0", d) for d in names
                            for w in ("kernel", "recurrent_kernel", "bias")]
        else:
            arrays[ours] = [_pick(weights, theirs, f"/{w}:0") for w in names]
    return arrays


def import_attrnn(path):
    """A V2Sa source model (``gscv2_logmel`` front end) holding the original weights of ``path``."""
    from speech.source_model import build_source_model

    model = build_source_model("V2Sa", front_end="gscv2_logmel")
    for ours, arrays in original_arrays(read_original(path)).items():
        layer = model.get_layer(ours)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise UsageError(f"{path}: weights of {LAYER_MAP[ours][0]!r} have shapes {got}, our {ours} needs "
                             f"{expected}; not the attention-RNN architecture")
        layer.set_weights(arrays)
    return model


def main(argv=None):
    from engine.errors import cli_errors

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="The original model-attRNN.h5 (HDF5, Keras 2).")
    p.add_argument("--out", default="weight/v2sa_gscv2", help="Output prefix (default weight/v2sa_gscv2).")
    p.add_argument("--license", default=None,
                   help="The MIT license file to ship beside the weights (default: LICENSE beside the input).")
    args = p.parse_args(argv)
    with cli_errors("speech.attrnn"):
        from utils import atomic_write, write_json

        model = import_attrnn(args.weights)
        licence = args.license or os.path.join(os.path.dirname(os.path.abspath(args.weights)), "LICENSE")
        if not os.path.isfile(licence):
            raise UsageError(f"license file {licence} not found; the MIT notice must ship with the weights "
                             "(give it with --license)")
        with open(args.weights, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        atomic_write(f"{args.out}.weights.h5", model.save_weights)
        shutil.copyfile(licence, f"{args.out}.LICENSE")
        from speech.commands import CLASSES

        write_json(f"{args.out}.json", {
            "architecture": "V2Sa", "front_end": "gscv2_logmel", "parameters": int(model.count_params()),
            "provenance": PROVENANCE, "imported_from": {"file": os.path.basename(args.weights), "sha256": digest},
            "license_file": os.path.basename(f"{args.out}.LICENSE"),
            "layer_mapping": {ours: theirs for ours, (theirs, _) in LAYER_MAP.items()},
            "front_end_details": "magnitude STFT (1024-sample Hann frames every 128 samples, padded at the end, "
                                 "125 frames), tf.signal.linear_to_mel_weight_matrix (80 bins, 40-8000 Hz, HTK, no "
                                 "area normalisation), natural log of (mel + 1e-6), then per-utterance "
                                 "normalisation (the original normalised over the whole batch, which makes a "
                                 "prediction depend on the rest of the batch)",
            "class_order": list(CLASSES),
            "input": "float32 waveform (batch, 16000), 16 kHz, about [-1, 1]",
            "command": "python -m speech.attrnn " + " ".join(argv if argv is not None else sys.argv[1:]),
        })
    print(f"Wrote {args.out}.weights.h5, {args.out}.json and {args.out}.LICENSE")
    return model


if __name__ == "__main__":
    main()
