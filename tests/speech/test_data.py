"""Data sources: audio loading errors, resampling, Speech Commands layout splits, synthetic and real data."""

import dataclasses
import shutil

import numpy as np
import pytest
import soundfile as sf

from apps.speech.config import SILENCE, UNKNOWN, AugmentConfig, DataConfig
from apps.speech.data import (AugmentedClips, Split, augment_batch, fit_length, label_names, load_audio, load_data,
                              load_eval_data, load_fsdd, load_speech_commands_folder, reverberate, room_response)
from common.errors import DataError

CFG = DataConfig(source="folder", words=("yes", "no"), clip_seconds=0.25)


def _tone(rate, seconds=0.2, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32")


def _make_folder(root, lists=True):
    for word, freq in (("yes", 300.0), ("no", 600.0), ("bird", 900.0)):
        (root / word).mkdir(parents=True)
        for speaker in ("aa11", "bb22", "cc33", "dd44"):
            sf.write(root / word / f"{speaker}_nohash_0.wav", _tone(16000, freq=freq), 16000)
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", 0.1 * np.random.default_rng(0).standard_normal(16000), 16000)
    if lists:
        (root / "validation_list.txt").write_text("yes/bb22_nohash_0.wav\nno/bb22_nohash_0.wav\n")
        (root / "testing_list.txt").write_text("yes/cc33_nohash_0.wav\nno/cc33_nohash_0.wav\nbird/cc33_nohash_0.wav\n")
    return root


def test_load_audio_resamples_and_rejects_bad_files(tmp_path):
    sf.write(tmp_path / "eight.wav", _tone(8000, 0.5), 8000)
    sf.write(tmp_path / "synth.wav", _tone(22050, 0.5), 22050)
    assert load_audio(tmp_path / "eight.wav").shape == (8000,)
    assert load_audio(tmp_path / "synth.wav").shape == (8000,)
    with pytest.raises(DataError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="cannot read"):
        load_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, "float32"), 16000)
    with pytest.raises(ValueError, match="empty"):
        load_audio(tmp_path / "empty.wav")


def test_fit_length_pads_and_crops_to_loudest_window():
    assert fit_length(np.ones(10, "float32"), 16).shape == (16,)
    audio = np.zeros(100, "float32")
    audio[70:80] = 1.0
    cropped = fit_length(audio, 20)
    assert cropped.shape == (20,) and cropped.sum() == 10.0


def test_folder_honours_split_lists_and_maps_unknown(tmp_path):
    root = _make_folder(tmp_path / "sc")
    data = load_speech_commands_folder(root, CFG)
    assert data.labels == ["yes", "no", SILENCE, UNKNOWN]
    assert set(data.validation.speakers) - {s for s in data.validation.speakers if s.startswith("silence")} == {"bb22"}
    assert "cc33" in data.test.speakers and "cc33" not in data.train.speakers
    assert data.train.audio.shape[1] == 4000
    assert data.labels.index(UNKNOWN) in data.train.labels  # "bird" became _unknown_
    assert data.labels.index(SILENCE) in data.train.labels  # cut from _background_noise_
    assert len(data.noises) == 1


def test_folder_without_lists_splits_by_speaker(tmp_path):
    root = _make_folder(tmp_path / "sc", lists=False)
    cfg = dataclasses.replace(CFG, validation_percent=30.0, testing_percent=30.0)
    data = load_speech_commands_folder(root, cfg)
    real = lambda split: {s for s in split.speakers if not s.startswith("silence")}  # noqa: E731
    assert not real(data.train) & real(data.test) and not real(data.train) & real(data.validation)


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_data(dataclasses.replace(CFG, path=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="data.path"):
        load_data(dataclasses.replace(CFG, path=""))
    with pytest.raises(ValueError, match="unknown data.source"):
        load_data(dataclasses.replace(CFG, source="mp3s"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no word folders"):
        load_data(dataclasses.replace(CFG, path=str(tmp_path / "empty")))
    root = _make_folder(tmp_path / "sc")
    with pytest.raises(ValueError, match=r"no clips for label\(s\) \['maybe'\]"):
        load_speech_commands_folder(root, dataclasses.replace(CFG, words=("yes", "maybe")))
    with pytest.raises(ValueError, match="distinct words"):  # refused when the config is made
        label_names(dataclasses.replace(CFG, words=("yes", "yes")))


def test_augmentation_keeps_shape_and_range():
    rng = np.random.default_rng(0)
    audio = np.stack([_tone(16000, 0.25), np.zeros(4000, "float32")])
    noise = [0.2 * rng.standard_normal(8000).astype("float32")]
    out = augment_batch(audio, noise, AugmentConfig(noise_probability=1.0, speed_range=(0.9, 1.1)), 16000, rng)
    assert out.shape == audio.shape and np.abs(out).max() <= 1.0 and not np.allclose(out, audio)
    split = Split(audio, np.array([0, 1]), ["a", "b"], ["a", "b"])
    batches = AugmentedClips(split, noise, AugmentConfig(), batch_size=1, sample_rate=16000)
    assert len(batches) == 2 and batches[0][0].shape == (1, 4000)


def test_room_response_and_reverb():
    rng = np.random.default_rng(0)
    response = room_response(0.4, 16000, rng)
    assert len(response) == 6400 and np.isclose(np.sum(response ** 2), 1.0, atol=1e-5)
    assert np.abs(response[0]) == np.abs(response).max()  # the direct path dominates
    energy = response[1:] ** 2
    assert energy[:640].sum() > 100 * energy[-640:].sum()  # the tail decays (60 dB over rt60)
    click = np.zeros(16000, "float32")
    click[1000] = 0.5
    wet = reverberate(click, 0.4, 16000, rng)
    assert wet.shape == click.shape and np.isclose(np.abs(wet).max(), 0.5)
    assert (np.abs(wet[1001:7400]) > 0).mean() > 0.99 and np.abs(wet[7401:]).max() < 1e-6  # an rt60-long tail
    audio = np.stack([_tone(16000, 0.25)] * 2)
    dry = augment_batch(audio, [], AugmentConfig(volume_range=(1, 1), time_shift_seconds=0.0, lowpass_probability=0.0),
                        16000, np.random.default_rng(1))
    reverbed = augment_batch(audio, [], AugmentConfig(volume_range=(1, 1), time_shift_seconds=0.0, lowpass_probability=0.0,
                                                      reverb_probability=1.0), 16000, np.random.default_rng(1))
    np.testing.assert_array_equal(dry, audio)
    assert not np.allclose(reverbed, audio) and np.abs(reverbed).max() <= 1.0


def test_lowpass_removes_what_8_khz_audio_lacks_and_augmentation_applies_it():
    from apps.speech.data import lowpass

    t = np.arange(16000) / 16000
    clip = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 6000 * t)).astype("float32")
    spectrum = np.abs(np.fft.rfft(lowpass(clip, 4000.0, 16000)))  # 1 Hz bins
    reference = np.abs(np.fft.rfft(clip))
    assert spectrum[6000] < 1e-3 * reference[6000] and np.isclose(spectrum[1000], reference[1000], rtol=1e-4)
    np.testing.assert_array_equal(lowpass(clip, 8000.0, 16000), clip)  # at Nyquist: nothing to remove
    plain = AugmentConfig(volume_range=(1, 1), time_shift_seconds=0.0, noise_probability=0.0, lowpass_probability=0.0)
    band_limited = augment_batch(clip[None], [], dataclasses.replace(plain, lowpass_probability=1.0), 16000,
                                 np.random.default_rng(0))[0]
    assert np.abs(np.fft.rfft(band_limited))[4001:].max() < 1e-3 * reference[6000]
    np.testing.assert_array_equal(augment_batch(clip[None], [], plain, 16000, np.random.default_rng(0))[0], clip)


def test_augment_config_rejects_bad_values():
    from common.config import ConfigError

    with pytest.raises(ConfigError, match="reverb_probability"):
        AugmentConfig(reverb_probability=1.5)
    with pytest.raises(ConfigError, match="rt60_range"):
        AugmentConfig(rt60_range=(0.5, 0.1))
    with pytest.raises(ConfigError, match="lowpass_hz_range"):
        AugmentConfig(lowpass_hz_range=(4000.0, 3000.0))


def test_synthetic_source_is_cached_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path))
    cfg = DataConfig(words=("yes", "no"), synthetic_speakers=3, synthetic_repeats=1, synthetic_unknown_per_speaker=1,
                     synthetic_silence_clips=10, validation_percent=34.0, testing_percent=34.0, clip_seconds=0.5)
    first = load_data(cfg, verbose=False)
    second = load_data(cfg, verbose=False)
    np.testing.assert_array_equal(first.train.audio, second.train.audio)
    assert len(first.train) and len(first.validation) and len(first.test)
    assert np.abs(first.train.audio).max() > 0.05  # real speech, not silence
    assert len(list(tmp_path.glob("speech_synthetic_*"))) == 1
    assert set(first.test.speakers).isdisjoint(s for s in first.train.speakers if not s.startswith("silence"))


def test_unknown_words_leave_out_the_keywords_homophones():
    from apps.speech.synth import UNKNOWN_VOCABULARY, unknown_vocabulary

    assert {"write", "know", "two"} <= set(UNKNOWN_VOCABULARY)
    vocab = unknown_vocabulary(("right", "no", "too", "up"))
    assert not {"write", "know", "two", "up"} & set(vocab)  # same sound as a keyword, or the keyword
    assert {"uptown", "cup", "now", "note", "light", "toe"} <= set(vocab)  # near misses stay
    assert {"write", "know", "two"} <= set(unknown_vocabulary(("yes",)))
    far = unknown_vocabulary(("right", "no", "too", "up"), min_distance=2)  # near misses out too
    assert set(far) < set(vocab) and not {"cup", "now", "note", "light", "toe"} & set(far) and "orange" in far


def test_phoneme_distance_counts_edits():
    from apps.speech.synth import phoneme_distance
    from common.config import ConfigError

    assert phoneme_distance(("k", "V", "p"), ("V", "p")) == 1
    assert phoneme_distance(("r", "aI", "t"), ("l", "aI", "t")) == 1
    assert phoneme_distance(("s", "I", "k", "s"), ("s", "I", "k", "s")) == 0
    assert phoneme_distance((), ("n", "oU")) == 2
    with pytest.raises(ConfigError, match="synthetic_unknown_min_distance"):
        DataConfig(synthetic_unknown_min_distance=0)


def test_fsdd_loader_on_real_subset(shared_data, tmp_path, monkeypatch):
    from common.data import extract_archive

    recordings = extract_archive(shared_data / "speech" / "fsdd.tar.xz")
    recordings = next(p for p in recordings.rglob("recordings") if p.is_dir())
    subset = tmp_path / "fsdd"
    subset.mkdir()
    for digit in (0, 1):
        for speaker in ("george", "jackson"):
            for index in (0, 1, 5, 12):
                name = f"{digit}_{speaker}_{index}.wav"
                shutil.copy(recordings / name, subset / name)
    cfg = DataConfig(source="fsdd", include_silence=False, include_unknown=False)
    data = load_fsdd(subset, cfg)
    assert data.labels[:2] == ["0", "1"] and len(data.test) == 8 and len(data.train) == 4 and len(data.validation) == 4
    assert data.test.audio.shape == (8, 16000)  # 8 kHz resampled to 16 kHz, padded to 1 s
    held_out = load_fsdd(subset, dataclasses.replace(cfg, test_speaker="george"))
    assert set(held_out.test.speakers) == {"george"} and "george" not in held_out.train.speakers
    with pytest.raises(ValueError, match="not in FSDD"):
        load_fsdd(subset, dataclasses.replace(cfg, test_speaker="nobody"))
    # Synthetic digit speakers join the training split only, each clip labelled with the digit it says.
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    mixed = load_fsdd(subset, dataclasses.replace(cfg, test_speaker="george", fsdd_add_synthetic=True,
                                                  synthetic_speakers=2, synthetic_repeats=1))
    assert len(mixed.train) == len(held_out.train) + 2 * 1 * 10
    np.testing.assert_array_equal(mixed.test.audio, held_out.test.audio)
    np.testing.assert_array_equal(mixed.validation.audio, held_out.validation.audio)
    synthetic = [(y, str(p)) for y, p in zip(mixed.train.labels, mixed.train.paths) if "george" not in str(p)
                 and "jackson" not in str(p)]
    assert sorted(int(y) for y, _ in synthetic) == sorted(list(range(10)) * 2)
    from apps.speech.config import DIGIT_WORDS
    assert all(f"/{DIGIT_WORDS[y]}/" in path for y, path in synthetic)
    # A model of the spoken digits (the synthetic-digits preset) scores FSDD under its words.
    from apps.speech.config import DIGIT_WORDS
    from apps.speech.data import load_eval_data

    labels = [*DIGIT_WORDS, SILENCE, UNKNOWN]
    scored = load_eval_data(subset, DataConfig(words=DIGIT_WORDS), labels, "all")
    assert len(scored) == 16 and sorted({labels[y] for y in scored.labels}) == ["one", "zero"]
    assert all(labels[y] == DIGIT_WORDS[int(p.split("/")[-1][0])] for y, p in zip(scored.labels, map(str, scored.paths)))


def test_speech_commands_sample_loads_all_core_words(shared_data):
    archive = shared_data / "speech" / "speech_commands_v0.01_sample.tar.xz"
    cfg = DataConfig(source="folder")
    labels = label_names(cfg)
    split = load_eval_data(archive, cfg, labels, "all")
    counts = np.bincount(split.labels, minlength=len(labels))
    assert split.audio.shape[1] == 16000
    assert all(counts[labels.index(w)] == 10 for w in ("yes", "no", "up", "down", "stop", "go"))
    assert counts[labels.index(UNKNOWN)] > 0
