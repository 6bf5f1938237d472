"""The series-to-audio encodings (ts_encoding.py) and the head on pooled features of several frozen layers: what
each encoding plays, that programs train through it, the training graph, the .keras round trip and the run
settings that choose them."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from conftest import forward
from engine.errors import UsageError
from engine.runs import RunConfig, describe_encoding, folder_for
from engine.training_graph import training_graph
from speech.commands import SAMPLE_RATE
from ts_encoding import SegmentZeroPadding, ToneEncoding, build_encoding, encoder_of
from ts_model import PooledFeatures, build_v2s, encoded_series, output_layer, reprogrammed_waveform

LENGTH, CLASSES = 40, 3


def instantaneous_hz(wave, start, stop):
    """The mean frequency of ``wave[start:stop]`` from its zero crossings."""
    part = wave[start:stop]
    crossings = np.count_nonzero(np.diff(np.signbit(part)))
    return crossings / 2 / ((stop - start) / SAMPLE_RATE)


def test_fm_plays_the_series_as_the_pitch_of_a_tone():
    ramp = np.linspace(-5.0, 5.0, 200, dtype=np.float32)[None]  # beyond +-3 sigma at both ends: clipped there
    wave = np.asarray(ToneEncoding(200, "fm")(ramp))[0]
    assert wave.shape == (SAMPLE_RATE,) and abs(np.abs(wave).max() - 0.5) < 1e-3
    # z-normalised, the ramp runs from -1.73 to +1.73 sigma: 600 + 400 * z / 3 Hz, low at the start, high at the end
    z = (np.linspace(-5, 5, 200) - 0) / np.linspace(-5, 5, 200).std()
    low, high = 600 + 400 * z[0] / 3, 600 + 400 * z[-1] / 3
    assert abs(instantaneous_hz(wave, 0, 800) - low) < 0.08 * low
    assert abs(instantaneous_hz(wave, SAMPLE_RATE - 800, SAMPLE_RATE) - high) < 0.05 * high
    flat = np.asarray(ToneEncoding(50, "fm")(np.full((1, 50), 7.0, np.float32)))[0]  # a constant series: the carrier
    assert np.argmax(np.abs(np.fft.rfft(flat))) == 600
    # the series' own scale and offset do not matter, only its shape
    np.testing.assert_allclose(np.asarray(ToneEncoding(200, "fm")(3.0 * ramp + 100.0)), wave[None], atol=2e-3)


def test_fm_deviation_and_clip_change_the_pitch_range():
    step = np.r_[np.full(100, -1.0), np.full(100, 1.0)].astype(np.float32)[None]  # z-normalised: -1 then +1 sigma
    wave = np.asarray(ToneEncoding(200, "fm", carrier=1000.0, deviation=300.0, clip=1.0)(step))[0]
    assert abs(instantaneous_hz(wave, 1000, 7000) - 700.0) < 20  # 1000 - 300 * 1 / 1
    assert abs(instantaneous_hz(wave, 9000, 15000) - 1300.0) < 20


def test_am_plays_the_series_as_its_loudness_in_decibels():
    step = np.r_[np.full(100, -1.0), np.full(100, 1.0)].astype(np.float32)[None]
    wave = np.asarray(ToneEncoding(200, "am", depth=40.0, clip=1.0)(step))[0]
    quiet, loud = np.abs(wave[1000:7000]).max(), np.abs(wave[9000:15000]).max()
    assert abs(20 * np.log10(loud / quiet) - 40.0) < 0.5 and abs(loud - 0.5) < 1e-3
    assert np.argmax(np.abs(np.fft.rfft(wave[9000:15000]))) == round(600 * 6000 / SAMPLE_RATE)


def test_every_encoding_passes_a_gradient_to_the_series():
    x = tf.constant(np.random.default_rng(0).standard_normal((2, 30)).astype(np.float32))
    for name in ("pad", "fm", "am"):
        layer = build_encoding(name, 30, segments=3)
        with tf.GradientTape() as tape:
            tape.watch(x)
            energy = tf.reduce_sum(layer(x)[:, ::7] ** 2)
        grad = np.asarray(tape.gradient(energy, x))
        assert np.isfinite(grad).all() and np.abs(grad).max() > 0, name


def test_encodings_survive_their_config_and_name_their_spans():
    pad = build_encoding("pad", 30, segments=4)
    assert isinstance(pad, SegmentZeroPadding) and pad.spans() == [(0, 30), (4000, 4030), (8000, 8030),
                                                                   (12000, 12030)]
    tone = build_encoding("am", 30, carrier=900.0, depth=20.0)
    again = ToneEncoding.from_config(tone.get_config())
    assert (again.kind, again.carrier, again.depth, again.spans()) == ("am", 900.0, 20.0, [(0, SAMPLE_RATE)])
    with pytest.raises(ValueError, match="Unknown encoding 'wavelet'"):
        build_encoding("wavelet", 30)


def test_pooled_features_take_mean_std_and_max_over_time():
    seq = np.arange(24, dtype=np.float32).reshape(1, 4, 6)  # (batch, time 4, d 6)
    vec = np.ones((1, 5), np.float32)
    out = np.asarray(PooledFeatures()([seq, vec]))
    np.testing.assert_allclose(out[0, :6], seq[0].mean(0))
    np.testing.assert_allclose(out[0, 6:12], seq[0].std(0), rtol=1e-5)
    np.testing.assert_allclose(out[0, 12:18], seq[0].max(0))
    np.testing.assert_allclose(out[0, 18:], 1.0)


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, LENGTH)).astype(np.float32) * 5 + 2, rng.integers(0, CLASSES, 6).astype(np.int32)


@pytest.mark.parametrize("space", ["wave", "series"])
def test_training_graph_matches_a_tone_model_with_the_layers_head(source, series, space):
    """fm, the layers head, two programs, the program on the waveform or on the series: the training graph gives the
    model's predictions and gradients, and a series program starts at 0 (the model hears the encoded series)."""
    x, y = series
    model = build_v2s(LENGTH, CLASSES, source=source, encoding="fm", readout="layers", programs=2,
                      program_space=space)
    head = output_layer(model)
    assert head.name == "layers_head" and head.standardise
    if space == "series":
        np.testing.assert_allclose(reprogrammed_waveform(model, x), encoded_series(model, x), atol=1e-5)
        model.get_layer("reprogram").delta.assign(np.random.default_rng(1).normal(0, 0.3, (2, LENGTH)))
    fast = training_graph(model)
    np.testing.assert_allclose(forward(fast, x).mean(axis=1), forward(model, x), atol=1e-5)
    delta = model.get_layer("reprogram").delta
    grads = []
    for m in (model, fast):
        with tf.GradientTape() as tape:
            probs = m(x, training=True)
            probs = tf.reduce_mean(probs, axis=1) if len(probs.shape) == 3 else probs
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
        grads.append(np.asarray(tape.gradient(loss, delta.value)))
    assert np.abs(grads[0]).max() > 0
    # Float32 rounding only (a missing or doubled term is O(1)): a tone keeps all 125 frames loud, and the pooled
    # sums over them carry the rounding of the spectral path into the gradient (measured 2e-4 to 7e-4 relative on
    # the waveform's program); a series program's gradient is a long, cancelling sum of the waveform's over the
    # tone's phase, which amplifies that rounding (measured 5e-3).
    tolerance = 2e-3 if space == "wave" else 2e-2
    assert np.linalg.norm(grads[0] - grads[1]) <= tolerance * np.linalg.norm(grads[0])


def test_a_tone_model_with_the_layers_head_survives_a_keras_round_trip(source, series, tmp_path):
    x, _ = series
    model = build_v2s(LENGTH, CLASSES, source=source, encoding="am", depth=30.0, readout="layers",
                      program_space="series")
    head = output_layer(model)
    head.center.assign(np.full(head.center.shape, 0.5, np.float32))  # the saved standardisation, not the start
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(forward(loaded, x), forward(model, x), atol=1e-6)
    assert encoder_of(loaded).depth == 30.0 and loaded.get_layer("reprogram").space == "series"
    np.testing.assert_allclose(np.asarray(output_layer(loaded).center), 0.5)


def test_run_settings_refuse_a_tone_parameter_the_encoding_does_not_read():
    with pytest.raises(UsageError, match="--deviation is a parameter of --encoding fm; this run's encoding is am"):
        RunConfig(encoding="am", deviation=100.0).validated()
    with pytest.raises(UsageError, match="--depth is a parameter of --encoding am; this run's encoding is pad"):
        RunConfig(encoding="pad", depth=30.0).validated()
    with pytest.raises(UsageError, match="--carrier must be a frequency"):
        RunConfig(encoding="fm", carrier=9000.0).validated()
    with pytest.raises(UsageError, match="--deviation must be positive, below --carrier"):
        RunConfig(encoding="fm", deviation=700.0).validated()
    with pytest.raises(UsageError, match="--per 1 keeps delta outside the zero-padded copies"):
        RunConfig(encoding="fm", per=1).validated()
    with pytest.raises(UsageError, match="--program series adds a program to the series; --mode transfer"):
        RunConfig(mode="transfer", program="series").validated()
    with pytest.raises(UsageError, match="--mode fcn reads the series itself"):
        RunConfig(mode="fcn", encoding="am").validated()
    fm = RunConfig(encoding="fm").validated()
    assert (fm.carrier, fm.deviation, fm.depth, fm.clip) == (600.0, 400.0, None, 3.0)
    assert fm.validated() == fm  # a validated config validates again unchanged
    assert RunConfig(mode="fcn").validated().encoding == "pad"


def test_a_tone_runs_folder_names_only_what_differs_from_its_encodings_defaults():
    name = lambda **kw: folder_for(RunConfig(**kw).validated(), "Toy").rsplit("/", 1)[1]  # noqa: E731
    assert name(encoding="fm") == name() == "Toy_reprogram_V2Sa_s0"  # today's default
    assert name(carrier=700.0) == "Toy_reprogram_V2Sa_s0_carrier-700"
    assert name(encoding="am") == "Toy_reprogram_V2Sa_s0_encoding-am"  # am's own depth and carrier: not named
    assert name(encoding="pad") == "Toy_reprogram_V2Sa_s0_encoding-pad"
    # another head brings its own encoding, fit and learning rate: only the head is named
    assert name(head="attention") == "Toy_reprogram_V2Sa_s0_head-attention"
    assert name(head="attention", lr=0.001) == "Toy_reprogram_V2Sa_s0_head-attention_lr-0.001"


@pytest.mark.parametrize("space", ["wave", "series"])
def test_training_graph_scales_the_series_as_the_model_does(source, series, space):
    """--znorm --gain on raw-valued series (scale 5, offset 2): the training graph feeds the source the scaled
    series, as the model does (a graph without the scaling trains on other inputs than it is scored on)."""
    x, _ = series
    model = build_v2s(LENGTH, CLASSES, source=source, segments=4, readout="attention", znorm=True, gain=True,
                      program_space=space)
    model.get_layer("series_scaling").scale.assign(3.0)  # the trained gain, away from its start
    np.testing.assert_allclose(forward(training_graph(model), x), forward(model, x), atol=1e-5)


def test_channels_as_simultaneous_or_consecutive_tones():
    from ts_encoding import ChannelTones

    one = np.random.default_rng(0).standard_normal((2, 1, 50)).astype(np.float32)
    for kind in ("fm", "am"):  # one channel, either layout: the univariate tone exactly
        for layout in ("mix", "split"):
            np.testing.assert_allclose(np.asarray(ChannelTones(50, 1, kind, layout)(one)),
                                       np.asarray(ToneEncoding(50, kind)(one[:, 0])), atol=1e-5)
    flat = np.zeros((1, 3, 50), np.float32)  # three constant channels: three carriers, one band each
    mix = ChannelTones(50, 3, "fm", "mix")
    assert mix.carriers == [200.0 + 400.0, 200.0 + 1200.0, 200.0 + 2000.0] and mix.swing == 400.0
    spectrum = np.abs(np.fft.rfft(np.asarray(mix(flat))[0]))
    assert sorted(np.argsort(spectrum)[-3:]) == [600, 1400, 2200]
    many = ChannelTones(50, 24, "fm", "mix")  # 24 channels: narrower bands, the top one below 7.8 kHz
    assert many.carriers[-1] + many.swing <= 7800.0 + 1e-6
    ramp = np.stack([np.full(50, -1.0), np.linspace(-1, 1, 50)])[None].astype(np.float32)  # channel 0 flat
    split = np.asarray(ChannelTones(50, 2, "fm", "split")(ramp))[0]
    assert abs(instantaneous_hz(split, 1000, 7000) - 600.0) < 10  # the flat channel's slot: the carrier
    assert instantaneous_hz(split, 14000, 16000) > 700.0  # the ramp's end: high (z up to 1.7: 830 Hz)
    again = ChannelTones.from_config(ChannelTones(50, 2, "am", "split", depth=20.0).get_config())
    assert (again.channels, again.layout, again.depth, again.spans()) == (2, "split", 20.0, [(0, 8000), (8000, 16000)])


def test_a_multivariate_model_trains_through_its_graph_and_survives_a_round_trip(source, tmp_path):
    x = np.random.default_rng(2).standard_normal((4, 3, LENGTH)).astype(np.float32)
    y = np.array([0, 1, 2, 0], np.int32)
    model = build_v2s(LENGTH, CLASSES, source=source, encoding="fm", readout="layers", programs=2, channels=3,
                      layout="split")
    assert model.input.shape[1:] == (3, LENGTH)
    np.testing.assert_allclose(forward(training_graph(model), x).mean(axis=1), forward(model, x), atol=1e-5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(forward(keras.saving.load_model(path), x), forward(model, x), atol=1e-6)
    with pytest.raises(ValueError, match="--encoding pad plays one series"):
        build_v2s(LENGTH, CLASSES, source=source, encoding="pad", channels=3)


def test_a_run_announces_the_encoding_it_trains_with():
    assert describe_encoding(RunConfig().validated()) == "encoding fm (600 +- 400 Hz, clip 3 sigma)"
    am = RunConfig(encoding="am", carrier=900.0, depth=20.0, clip=2.0).validated()
    assert describe_encoding(am) == "encoding am (900 Hz, 20 dB, clip 2 sigma)"
    assert describe_encoding(RunConfig(encoding="pad").validated()) == "encoding pad"
