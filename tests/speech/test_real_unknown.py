"""Real keyword-free speech as `_unknown_` training clips (data.unknown_audio)."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from tests.speech.helpers import assert_tiny_training_refuses, fake_fsdd


def _tone(path, freq, sample_rate=8000, seconds=0.4):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate)


def _data(labels, per_class=4, samples=1600):
    from apps.speech.data import SpeechData, Split, _empty

    y = np.repeat(np.arange(len(labels) - 1), per_class).astype(np.int32)  # no _unknown_ yet
    train = Split(np.zeros((len(y), samples), np.float32), y, ["s"] * len(y), ["p"] * len(y))
    return SpeechData(list(labels), train, _empty(samples), _empty(samples), [], "root")


def test_real_unknown_clips_skip_keywords_pick_speakers_and_count(tmp_path):
    from apps.speech.config import DataConfig
    from apps.speech.data import DataError, add_real_unknown

    labels = ["yes", "no", "_silence_", "_unknown_"]
    folder = tmp_path / "words"
    for word, freq in (("yes", 300), ("cat", 400), ("dog", 500)):
        for i in range(3):
            _tone(folder / word / f"spk{i}_nohash_0.wav", freq + 10 * i)
    cfg = DataConfig(words=("yes", "no"), unknown_audio=str(folder), unknown_audio_fraction=0.0)
    data = _data(labels)
    clips, summary = add_real_unknown(data, cfg)
    assert clips.shape == (6, 1600)
    # "yes" is a keyword: its 3 recordings are left out, the 6 of cat/dog become _unknown_.
    assert summary["recordings"] == 6 and summary["left_out_keyword_recordings"] == 3
    assert len(data.train) == 12 + 6 and (data.train.labels[-6:] == 3).all()
    assert not any("/yes/" in p for p in data.train.paths[-6:])
    assert np.abs(data.train.audio[-6:]).max() > 0.1 and data.train.audio.shape[1] == 1600
    # unknown_audio_fraction 0.5 of an average keyword's 4 training clips: 2, drawn with the seed.
    data = _data(labels)
    assert add_real_unknown(data, dataclasses.replace(cfg, unknown_audio_fraction=0.5))[1]["recordings"] == 2
    # FSDD: only the chosen speakers.
    fsdd = fake_fsdd(tmp_path / "fsdd", ["ann", "bob", "cy"])
    data = _data(labels)
    _, summary = add_real_unknown(data, dataclasses.replace(cfg, unknown_audio=str(fsdd), unknown_speakers=("ann", "cy")))
    assert summary["speakers"] == ["ann", "cy"] and summary["recordings"] == 6
    with pytest.raises(DataError, match="zed"):
        add_real_unknown(_data(labels), dataclasses.replace(cfg, unknown_audio=str(fsdd), unknown_speakers=("zed",)))
    with pytest.raises(DataError, match="say a keyword"):
        add_real_unknown(_data(labels), _only_keywords(tmp_path, cfg))


def test_mix_speech_respects_the_mask_and_the_snr():
    from apps.speech.config import AugmentConfig
    from apps.speech.data import mix_speech

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((3, 4000))).astype(np.float32)
    speech = (0.05 * rng.standard_normal((2, 4000))).astype(np.float32)
    cfg = AugmentConfig(speech_noise_probability=1.0, speech_noise_snr_db_range=(10.0, 10.0))
    out = mix_speech(audio, np.array([True, False, True]), speech, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(out[1], audio[1])  # a _silence_ clip stays as it is
    for i in (0, 2):
        added = out[i] - audio[i]
        snr = 10 * np.log10(np.mean(audio[i] ** 2) / np.mean(added ** 2))
        assert abs(snr - 10.0) < 0.2, snr
    assert not np.shares_memory(out, audio)
    none = mix_speech(audio, np.ones(3, bool), speech, AugmentConfig(), np.random.default_rng(1))
    np.testing.assert_array_equal(none, audio)  # probability 0 (the default) mixes nothing


def _only_keywords(tmp_path, cfg):
    folder = tmp_path / "only_yes"
    _tone(folder / "yes" / "a_nohash_0.wav", 300)
    return dataclasses.replace(cfg, unknown_audio=str(folder))


@pytest.mark.tf_only
def test_bad_real_unknown_settings_are_refused_before_any_run_dir(tmp_path, capsys):
    """A tiny run that records the real unknown clips in data.json: test_domain_adversarial.py (one training
    for both options)."""
    from apps.speech import train

    fsdd = fake_fsdd(tmp_path / "fsdd", ["ann", "bob"])
    assert_tiny_training_refuses(train, tmp_path, capsys, (
        [f"data.unknown_audio={fsdd}", "data.include_unknown=false"], ["data.unknown_speakers=('ann',)"],
        [f"data.unknown_audio={tmp_path / 'missing'}"], ["augment.speech_noise_probability=0.3"]), "unknown_audio")
