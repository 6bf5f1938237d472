"""The screening subset keeps to its rule: at least 30 sets, each one V2S can run with at most 210 training
series, families thinned."""

import os
import sys

import numpy as np

from conftest import REPO, shared_path

sys.path.insert(0, os.path.join(REPO, "scripts"))
import screen  # noqa: E402


def test_the_screening_subset_keeps_to_its_rule():
    import importlib.util

    from ts_dataloader import load_ucr

    ucr = shared_path("ucr")
    aeon = os.path.join(os.path.dirname(importlib.util.find_spec("aeon").origin), "datasets", "data")
    assert len(screen.SCREEN_SETS) >= 30 and len(set(screen.SCREEN_SETS)) == len(screen.SCREEN_SETS)
    for name in screen.SCREEN_SETS:
        data = load_ucr(name, data_dir=ucr if os.path.isdir(os.path.join(ucr, name)) else aeon)
        assert len(data.x_train) <= 210 and 2 <= data.num_classes <= 36, name
        assert np.bincount(data.y_train).min() >= 2, name
    for family in ("GestureMidAir", "GesturePebble", "InsectEPG", "ToeSegmentation"):
        assert sum(name.startswith(family) for name in screen.SCREEN_SETS) == 1, family
