"""Complexity counts: multiply-accumulates per layer kind, against counts worked out by hand."""

import keras
from keras import layers as L

from speech.complexity import complexity, front_end_macs, layer_macs
from speech.source_model import build_source_model


def test_each_layer_kind_is_counted_by_its_rule():
    inputs = keras.Input((10, 8, 3))
    x = L.Conv2D(4, (3, 3), padding="same", name="conv")(inputs)  # 80 positions x 9 x 3 x 4
    x = L.Conv2D(4, 3, strides=2, padding="same", name="strided")(x)  # 5 x 4 positions x 9 x 4 x 4
    x = L.Conv2DTranspose(2, (1, 2), strides=(1, 2), name="up")(x)  # 20 input positions x 2 x 4 x 2
    x = L.BatchNormalization(name="bn")(x)
    x = L.Reshape((5, 16), name="frames")(x)
    x = L.Conv1D(6, 3, dilation_rate=2, padding="same", name="conv1d")(x)  # 5 x 3 x 16 x 6
    x = L.Bidirectional(L.LSTM(7, return_sequences=True), name="bilstm")(x)  # 2 x 5 x 4 x 7 x (6 + 7)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    outputs = L.Dense(5, name="dense")(x)  # 14 x 5
    counts = layer_macs(keras.Model(inputs, outputs))
    assert counts == {"conv": 8640, "strided": 2880, "up": 320, "conv1d": 1440, "bilstm": 3640, "dense": 70}


def test_v2sa_counts_its_bilstms_and_attention():
    counts = layer_macs(build_source_model("V2Sa"))
    assert counts["bilstm_1"] == 2 * 125 * 4 * 64 * (80 + 64)
    assert counts["bilstm_2"] == 2 * 125 * 4 * 64 * (128 + 64)
    assert counts["att_scores"] == counts["att_vector"] == 125 * 128
    assert counts["conv2d_1"] == 125 * 80 * 5 * 10
    assert "mel_stft" not in counts and "bn_1" not in counts


def test_totals_add_the_front_end_to_the_network():
    model = build_source_model("V2St")
    c = complexity(model)
    assert c["network_macs"] == sum(layer_macs(model).values())
    assert c["macs"] == c["front_end_macs"] + c["network_macs"] == front_end_macs() + c["network_macs"]
    assert front_end_macs() > 125 * 513 * 80  # the mel matrix alone, plus the FFTs
    assert c["parameters"] == model.count_params()
