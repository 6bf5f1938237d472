"""The shipped source weights: they load, their model card is complete, and (with ../shared) they still score."""

import os

import numpy as np
import pytest

from conftest import REPO, shared_path
from speech.source_model import build_source_model, load_source_weights
from speech.commands import CLASSES
from utils import read_json

WEIGHTS = os.path.join(REPO, "weight", "v2sa.weights.h5")
CARD = os.path.join(REPO, "weight", "v2sa.json")


def test_weights_load_and_card_describes_them():
    model = load_source_weights(build_source_model("V2Sa"), WEIGHTS)
    card = read_json(CARD)
    assert card["architecture"] == "V2Sa" and card["parameters"] == model.count_params()
    assert card["class_order"] == list(CLASSES)
    assert card["command"].startswith("python pretrain.py") and "synthetic" in card["voices"].lower()
    assert card["accuracy"]["synthetic_test"] >= 0.95 and card["accuracy"]["real_val"] >= 0.80


@pytest.mark.slow
def test_shipped_weights_recognise_real_validation_speakers():
    from speech.evaluation import evaluate
    from speech.commands import load_gsc_folder, speaker_split

    data, split = load_gsc_folder(shared_path("gsc"), progress=False)
    val = data.subset(speaker_split(data.speakers) == "val")
    model = load_source_weights(build_source_model("V2Sa"), WEIGHTS)
    result = evaluate(model, val)
    assert result["accuracy"] >= 0.80
    assert np.isclose(result["accuracy"], read_json(CARD)["accuracy"]["real_val"], atol=1e-6)
