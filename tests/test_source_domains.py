"""scripts/source_domains.py: its untrained control reads the source a ``--source-weights random`` run trains on."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import source_domains  # noqa: E402

from conftest import make_toy_ucr  # noqa: E402
from engine import runs  # noqa: E402


def test_the_untrained_controls_probe_reads_the_weights_a_seed_0_random_source_run_draws(tmp_path):
    # The LP row and the V2S row of the control are only one control if both read the same random network.
    cfg = runs.RunConfig(dataset="Toy", data_dir=make_toy_ucr(tmp_path), out=str(tmp_path / "run"), verbose=0,
                         source_weights="random", epochs=1, ensemble=1, seg=2, seed=0)
    trained_on = runs.train(runs.load_data(cfg), cfg).model.get_layer("V2Sa")
    reader = source_domains.reader_of("untrained")
    shared = {layer.name for layer in trained_on.layers}
    compared = 0
    for layer in reader.layers:
        if layer.weights and layer.name in shared:
            for ours, theirs in zip(layer.get_weights(), trained_on.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(ours, theirs)
                compared += 1
    assert compared >= 10  # the convolutions, LSTMs and attention, not a layer or two
