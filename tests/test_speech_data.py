"""GSC-layout loader, speaker splits, and the synthetic eSpeak NG corpus."""

import numpy as np
import pytest

from conftest import tone, write_clip
from speech.commands import CLASSES, load_gsc_folder, read_clip, speaker_split
from speech.synthetic import CorpusConfig, generate, load_or_generate


def test_class_order_is_the_reference_codes():
    assert len(CLASSES) == 36
    assert CLASSES[:4] == ("silence", "nine", "yes", "no") and CLASSES[35] == "wow"


def test_gsc_loader_reads_wav_flac_silence_noise_and_official_lists(tmp_path):
    root = tmp_path / "gsc"
    write_clip(str(root / "yes" / "aaaa1111_nohash_0.wav"), tone(440, 0.5))
    write_clip(str(root / "yes" / "bbbb2222_nohash_0.flac"), tone(440, 1.2))
    write_clip(str(root / "wow" / "aaaa1111_nohash_1.wav"), tone(880, 1.0, rate=8000), rate=8000)
    write_clip(str(root / "_silence_" / "17.flac"), np.zeros(16000, "float32"))
    write_clip(str(root / "_background_noise_" / "hum.wav"), tone(50, 3.5))
    write_clip(str(root / "notaword" / "cccc_nohash_0.wav"), tone(100))
    (root / "validation_list.txt").write_text("yes/bbbb2222_nohash_0.flac\n")
    data, split = load_gsc_folder(str(root), progress=False)
    assert data.x.shape == (7, 16000) and data.x.dtype == np.float32
    labels = dict(zip(data.paths, data.y))
    assert labels["yes/aaaa1111_nohash_0.wav"] == CLASSES.index("yes")
    assert labels["wow/aaaa1111_nohash_1.wav"] == CLASSES.index("wow")
    assert labels["_silence_/17.flac"] == 0
    assert (data.y == 0).sum() == 4  # one silence clip + three whole seconds of background noise
    assert "notaword/cccc_nohash_0.wav" not in labels
    assert set(data.speakers[data.y == CLASSES.index("yes")]) == {"aaaa1111", "bbbb2222"}
    assert split[list(data.paths).index("yes/bbbb2222_nohash_0.flac")] == "val"
    # The 8 kHz clip was resampled: one second of it fills the 16,000 samples with a 880 Hz tone.
    wow = data.x[list(data.paths).index("wow/aaaa1111_nohash_1.wav")]
    assert np.argmax(np.abs(np.fft.rfft(wow))) == 880


def test_speaker_split_is_deterministic_and_disjoint():
    speakers = np.array([f"s{i // 3}" for i in range(600)])
    split = speaker_split(speakers, val_percent=20, test_percent=10)
    assert np.array_equal(split, speaker_split(speakers, val_percent=20, test_percent=10))
    groups = {name: set(speakers[split == name]) for name in ("train", "val", "test")}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert 0.1 < np.mean(split == "val") < 0.3


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_gsc_folder(str(tmp_path / "nowhere"))


def test_folder_without_clips_explains_the_layout(tmp_path):
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(ValueError, match="Speech Commands layout"):
        load_gsc_folder(str(tmp_path / "empty"))


def test_corrupt_audio_file_is_named(tmp_path):
    bad = tmp_path / "gsc" / "yes" / "x_nohash_0.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"RIFF\x00\x00not really a wav")
    with pytest.raises(ValueError, match="x_nohash_0.wav"):
        load_gsc_folder(str(tmp_path / "gsc"), progress=False)


def test_implausible_sample_rate_is_rejected(tmp_path):
    path = str(tmp_path / "slow.wav")
    write_clip(path, np.zeros(100, "float32"), rate=100)
    with pytest.raises(ValueError, match="slow.wav.*100 Hz"):
        read_clip(path)


@pytest.fixture(scope="module")
def small_corpus():
    return generate(CorpusConfig(seed=3, variants=5, val_percent=20, test_percent=20), progress=False)


def test_corpus_is_one_second_at_16khz_and_balanced(small_corpus):
    data, split = small_corpus
    assert data.x.shape[1] == 16000 and data.x.dtype == np.float32
    counts = np.bincount(data.y, minlength=36)
    assert counts.min() == counts.max() == 5 * 8  # 5 variants x 8 accents, every class incl. silence
    assert np.abs(data.x).max() <= 1.0
    words = data.x[data.y > 0]
    assert (np.abs(words).max(axis=1) > 0.04).all()  # every word clip actually holds sound


def test_corpus_splits_hold_disjoint_voices(small_corpus):
    data, split = small_corpus
    variant = np.array([s.split("+", 1)[1] for s in data.speakers])
    groups = {name: set(variant[split == name]) for name in ("train", "val", "test")}
    assert all(groups.values())
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]


def test_same_seed_same_audio_other_seed_other_audio():
    def corpus(seed):  # one variant per voice and word: a fifth of the small corpus
        return generate(CorpusConfig(seed=seed, variants=1, val_percent=20, test_percent=20), progress=False)[0]

    data = corpus(3)
    np.testing.assert_array_equal(data.x, corpus(3).x)
    assert not np.array_equal(data.x, corpus(4).x)


@pytest.mark.heavy
def test_cache_is_reused_and_serves_a_single_split(tmp_path, small_corpus):
    config = CorpusConfig(seed=3, variants=5, val_percent=20, test_percent=20)
    data, split = load_or_generate(config, cache_dir=str(tmp_path), progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    np.testing.assert_allclose(data.x, small_corpus[0].x, atol=1 / 32767)
    test_only, test_split = load_or_generate(config, cache_dir=str(tmp_path), splits=("test",), progress=False)
    assert set(test_split) == {"test"} and len(test_only) == (split == "test").sum()
    assert len(list(tmp_path.glob("*.npz"))) == 1  # served from the full corpus, nothing new generated


def test_unknown_voice_is_reported():
    from speech.espeak import ESpeak

    with pytest.raises(ValueError, match="zz-nope"):
        ESpeak().say("yes", voice="zz-nope")
