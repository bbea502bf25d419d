"""MBROLA as a third synthesis engine (apps/speech/mbrola.py, data.synthetic_engines)."""

import json

import numpy as np
import pytest

from tests.speech.helpers import needs_engine
from tests.speech.test_pico import _deb, needs_pico


def test_every_phoneme_of_the_vocabulary_has_an_mbrola_symbol():
    """eSpeak NG's en-us phonemes for every keyword and every unknown word map onto MBROLA's US set
    (a phoneme without a mapping would raise KeyError while a dataset is built)."""
    from apps.speech.mbrola import mbrola_phonemes
    from apps.speech.synth import UNKNOWN_VOCABULARY, engine

    words = list(UNKNOWN_VOCABULARY) + ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                                        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                        "nine", "marvin", "sheila", "house", "happy"]
    names = {name for word in words for _, name in engine().phonemes(word, "en-us")}
    symbols = {s for name in names for s in mbrola_phonemes(name)}
    assert len(names) > 30 and "'I" in names
    us_set = set("p b t d k g f v T D s z S Z h tS dZ m n N l r w j i I E { A O V U u @ r= EI AI OI @U aU 4 _".split())
    assert symbols <= us_set
    with pytest.raises(KeyError):
        mbrola_phonemes("Q9")


# Each accented voice's own SAMPA set (`mbrola -i` of de2/de4 and fr1/fr4)
_DE_SET = set("p b t d k g f v s z S Z x C h pf ts tS m n N l R 6 j aI OY aU @ i: I y: Y e: E E: 2: 9 u: U o: O a: a _".split())
_FR_SET = set("i e E a O o u y 2 9 @ e~ a~ o~ 9~ j w H p t k b d g f s S v z Z l R m n N _".split())


def test_accented_voices_speak_english_phonemes_in_their_own_symbols():
    from apps.speech.mbrola import ACCENTED_VOICES, SPEAKER_RANGES, language, mbrola_phonemes
    from apps.speech.synth import UNKNOWN_VOCABULARY, engine

    names = {name for word in list(UNKNOWN_VOCABULARY) + ["three", "the", "sheila", "marvin", "judge", "house"]
             for _, name in engine().phonemes(word, "en-us")}
    assert {language(v) for v in ACCENTED_VOICES} == {"de", "fr"} and language("us2") == "us"
    for lang, allowed in (("de", _DE_SET), ("fr", _FR_SET)):
        symbols = {s for name in names for s in mbrola_phonemes(name, lang)}
        assert symbols <= allowed, (lang, symbols - allowed)
    assert mbrola_phonemes("T", "de") == ["s"] and mbrola_phonemes("w", "de") == ["v"]  # no "th", w as v
    assert mbrola_phonemes("h", "fr") == [] and mbrola_phonemes("h", "us") == ["h"]  # a French speaker's silent h
    assert set(ACCENTED_VOICES) <= set(SPEAKER_RANGES)


def test_pho_lines_take_durations_from_the_events_and_draw_the_pitch_line():
    from apps.speech.mbrola import pho_lines

    events = [(0, "s"), (100, "'I"), (300, "k"), (350, "s"), (450, "_:"), (460, "_")]
    lines = pho_lines(events, f0_start=200, f0_end=100).split("\n")
    assert lines[0] == "_ 40" and lines[-2] == "_ 40"
    body = [line.split() for line in lines[1:-2]]
    assert [b[0] for b in body] == ["s", "I", "k", "s", "_"]
    assert [int(b[1]) for b in body] == [100, 200, 50, 100, 20]  # a 10 ms pause is padded to 20
    pitches = [float(b[3]) for b in body if b[0] != "_"]
    assert pitches == sorted(pitches, reverse=True) and 100 < pitches[-1] < pitches[0] < 200
    fast = [line.split() for line in pho_lines(events, 150, 150, stretch=0.5).split("\n")[1:-2]]
    assert [int(b[1]) for b in fast][:4] == [50, 100, 25, 50]
    split = [line.split()[0] for line in pho_lines([(0, "m"), (100, "'A@"), (300, "_")], 120, 100).split("\n")[1:-2]]
    assert split == ["m", "A", "r"]  # an r-coloured vowel becomes vowel + r, sharing its time
    bed = [(0, "b"), (80, "'E"), (250, "d"), (320, "_:"), (330, "_")]
    german = [line.split()[0] for line in pho_lines(bed, 120, 100, lang="de").split("\n")[1:-2]]
    assert german == ["b", "E", "t", "_"]  # a German speaker devoices the final d
    assert [line.split()[0] for line in pho_lines(bed, 120, 100).split("\n")[1:-2]] == ["b", "E", "d", "_"]


def test_local_debs_are_checked_and_nothing_half_made_is_left(tmp_path, monkeypatch):
    from apps.speech import mbrola
    from common.errors import DataError

    monkeypatch.setenv("LSTM_SUITE_MBROLA_DEBS", str(tmp_path / "debs"))
    (tmp_path / "debs").mkdir()
    with pytest.raises(DataError, match="has no mbrola_"):
        mbrola.ensure_mbrola(cache=tmp_path / "cache")
    for name in mbrola.PACKAGES:
        (tmp_path / "debs" / name).write_bytes(_deb({"./usr/bin/mbrola": b"ELF"}))
    with pytest.raises(DataError, match="SHA-256"):
        mbrola.ensure_mbrola(cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_training_with_mbrola_unreachable_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    from apps.speech import mbrola, train
    from tests.speech.helpers import assert_tiny_training_refuses

    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSTM_SUITE_MBROLA_DEBS", raising=False)
    monkeypatch.setattr(mbrola, "MIRROR", "http://127.0.0.1:9")  # nothing listens there
    assert_tiny_training_refuses(train, tmp_path, capsys, [['data.synthetic_engines=("espeak","mbrola")']],
                                 "could not download the MBROLA package")
    assert not list((tmp_path / "cache").glob("*mbrola*"))


needs_mbrola = needs_engine("mbrola", "MBROLA")
needs_accented = needs_engine("mbrola", "MBROLA's German and French voices", accented=True)


@needs_accented
def test_accented_voices_speak_at_16_khz_with_their_speakers_pitch():
    from apps.speech.mbrola import ACCENTED_VOICES, SPEAKER_RANGES, MbrolaEngine

    eng = MbrolaEngine(accented=True)
    us = eng.synthesize("seven", "us2", f0=110)
    for voice in ACCENTED_VOICES:  # de5 and fr4 record at 22,050 Hz: resampled to the same length
        audio = eng.synthesize("seven", voice, f0=110)
        assert audio.dtype == np.float32 and 0.05 < np.abs(audio).max() <= 1.0
        assert abs(len(audio) - len(us)) < 0.15 * len(us), voice
        full = eng.description(voice).lower() + " " + {"de5": "german female voice"}.get(voice, "")
        female = "female" in full  # de5's first line does not say; its README does ("a German female voice")
        (f0_low, _), _ = SPEAKER_RANGES[voice]
        assert (f0_low >= 140) == female, (voice, full)


@needs_mbrola
def test_mbrola_speaks_each_voice_at_the_asked_speed():
    from apps.speech.mbrola import VOICES, MbrolaEngine

    eng = MbrolaEngine()
    for voice in VOICES:
        normal = eng.synthesize("seven", voice, f0=110)
        assert normal.dtype == np.float32 and 0.05 < np.abs(normal).max() <= 1.0
        fast = eng.synthesize("seven", voice, f0=110, speed=1.6)
        assert 0.3 < len(fast) / len(normal) < 0.8
        # eSpeak NG's timing shifts a little with its earlier calls (its known statefulness), MBROLA follows it
        assert abs(len(eng.synthesize("seven", voice, f0=110)) - len(normal)) < 0.1 * len(normal)
    # A higher pitch target moves the spectrum's harmonics: the two differ
    assert not np.array_equal(eng.synthesize("six", "us2", f0=90)[:4000], eng.synthesize("six", "us2", f0=180)[:4000])
    with pytest.raises(ValueError, match="no voice"):
        eng.synthesize("seven", "en1")


@needs_mbrola
@needs_pico
def test_three_engine_dataset_takes_turns(tmp_path):
    import soundfile as sf

    from apps.speech.synth import ensure_synthetic_dataset

    root = ensure_synthetic_dataset(["yes"], num_speakers=6, repeats_per_word=1, unknown_per_speaker=1,
                                    silence_clips=2, cache=tmp_path, verbose=False,
                                    engines=("espeak", "pico", "mbrola"))
    speakers = json.loads((root / "synthesis.json").read_text())["speakers"]
    assert [s.get("engine", "espeak") for s in speakers] == ["espeak", "pico", "mbrola"] * 2
    mbrola_ids = {s["id"] for s in speakers if s.get("engine") == "mbrola"}
    from apps.speech.mbrola import SPEAKER_RANGES

    for s in speakers:
        if s.get("engine") == "mbrola":
            (f0_low, f0_high), (tract_low, tract_high) = SPEAKER_RANGES[s["voice"]]
            assert f0_low <= s["f0"] <= f0_high and tract_low <= s["tract"] <= tract_high, s
    clips = [p for p in (root / "yes").glob("*.wav") if p.name.split("_")[0] in mbrola_ids]
    assert len(clips) == 2 and all(np.abs(sf.read(p)[0]).max() > 0.05 for p in clips)


@needs_mbrola
def test_pitch_ranges_follow_who_recorded_each_voice():
    """us1 is a woman's voice (its own description says so): her speakers get a woman's pitch, the men's a man's."""
    from apps.speech.mbrola import ACCENTED_VOICES, SPEAKER_RANGES, VOICES, MbrolaEngine

    eng = MbrolaEngine()
    assert set(SPEAKER_RANGES) == set(VOICES) | set(ACCENTED_VOICES)
    for voice in VOICES:
        description = eng.description(voice).lower()
        female = "female" in description
        assert female or " male" in description, (voice, description)
        (f0_low, f0_high), _ = SPEAKER_RANGES[voice]
        assert (f0_low >= 140 and f0_high <= 300) if female else (f0_low >= 70 and f0_high <= 170), (voice, description)
    assert "female" in eng.description("us1").lower()


@needs_mbrola
def test_accented_voices_unreachable_refuse_in_one_line_and_leave_nothing(tmp_path, monkeypatch):
    import shutil

    from apps.speech import mbrola
    from common.errors import DataError

    shutil.copytree(mbrola.ensure_mbrola(), tmp_path / mbrola.ensure_mbrola().name)  # the engine, not the voices
    monkeypatch.delenv("LSTM_SUITE_MBROLA_DEBS", raising=False)
    monkeypatch.setattr(mbrola, "MIRROR", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DataError, match="leave 'mbrola_accented' out of data.synthetic_engines"):
        mbrola.ensure_accented_voices(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [mbrola.ensure_mbrola().name]
