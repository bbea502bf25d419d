"""SVOX Pico as a second synthesis engine (apps/speech/pico.py, data.synthetic_engines)."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from tests.speech.helpers import needs_engine

needs_pico = needs_engine("pico", "SVOX Pico")


def _deb(files: dict[str, bytes]) -> bytes:
    """A minimal .deb: an ar archive holding debian-binary and a data.tar.xz with `files`."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    out = b"!<arch>\n"
    for name, payload in (("debian-binary", b"2.0\n"), ("data.tar.xz", tar_bytes.getvalue())):
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n".encode() + payload
        if len(payload) % 2:
            out += b"\n"
    return out


def test_extract_deb_writes_only_the_wanted_files(tmp_path):
    from apps.speech.pico import extract_deb

    deb = _deb({"./usr/lib/x86_64-linux-gnu/libttspico.so.0.0.0": b"ELF",
                "./usr/share/pico/lang/en-US_ta.bin": b"ta", "./usr/share/pico/lang/en-US_lh0_sg.bin": b"sgx",
                "./usr/share/doc/libttspico0/copyright": b"text"})
    written = extract_deb(deb, {"libttspico.so.0*": "lib", "*_ta.bin": "lang", "*_sg.bin": "lang"}, tmp_path)
    assert sorted(written) == ["lang/en-US_lh0_sg.bin", "lang/en-US_ta.bin", "lib/libttspico.so.0.0.0"]
    assert (tmp_path / "lang" / "en-US_lh0_sg.bin").read_bytes() == b"sgx"
    assert not (tmp_path / "copyright").exists() and not (tmp_path / "doc").exists()
    with pytest.raises(ValueError, match="not an ar archive"):
        extract_deb(b"PK\x03\x04", {}, tmp_path)


def test_local_debs_are_checked_and_a_missing_one_is_named(tmp_path, monkeypatch):
    from apps.speech import pico
    from common.errors import DataError

    monkeypatch.setenv("LSTM_SUITE_PICO_DEBS", str(tmp_path / "debs"))
    (tmp_path / "debs").mkdir()
    with pytest.raises(DataError, match="has no libttspico0_"):
        pico.ensure_pico(cache=tmp_path / "cache")
    # Right names, wrong bytes: the digest check refuses them and nothing is left in the cache.
    for name in pico.PACKAGES:
        (tmp_path / "debs" / name).write_bytes(_deb({"./x": b"1"}))
    with pytest.raises(DataError, match="SHA-256"):
        pico.ensure_pico(cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_matching_digests_but_no_voice_files_is_an_error(tmp_path, monkeypatch):
    from apps.speech import pico
    from common.errors import DataError

    debs = {name: _deb({"./usr/lib/libttspico.so.0.0.0": b"ELF"}) for name in pico.PACKAGES}
    (tmp_path / "debs").mkdir()
    for name, data in debs.items():
        (tmp_path / "debs" / name).write_bytes(data)
    monkeypatch.setenv("LSTM_SUITE_PICO_DEBS", str(tmp_path / "debs"))
    monkeypatch.setattr(pico, "PACKAGES", {n: hashlib.sha256(d).hexdigest() for n, d in debs.items()})
    with pytest.raises(DataError, match="voice files"):
        pico.ensure_pico(cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_engines_are_validated():
    from apps.speech.config import DataConfig
    from apps.speech.synth import ensure_synthetic_dataset
    from common.errors import ConfigError

    for bad in (("festival",), ()):
        with pytest.raises(ConfigError, match="synthetic_engines"):
            DataConfig(synthetic_engines=bad)
    with pytest.raises(ValueError, match="unknown synthesis engine"):
        ensure_synthetic_dataset(["yes"], engines=("flite",))



@needs_pico
def test_a_repeated_engine_voices_more_of_the_speakers(tmp_path):
    """data.synthetic_engines=("espeak", "pico", "pico"): speaker i takes engines[i % 3], two Pico in three."""
    from apps.speech.config import DataConfig
    from apps.speech.synth import ensure_synthetic_dataset

    assert DataConfig(synthetic_engines=("espeak", "pico", "pico")).synthetic_engines == ("espeak", "pico", "pico")
    root = ensure_synthetic_dataset(["yes"], num_speakers=6, repeats_per_word=1, unknown_per_speaker=0, silence_clips=0,
                                    cache=tmp_path, verbose=False, engines=("espeak", "pico", "pico"))
    speakers = json.loads((root / "synthesis.json").read_text())["speakers"]
    assert [s.get("engine", "espeak") for s in speakers] == ["espeak", "pico", "pico"] * 2



@needs_pico
def test_pico_speaks_both_voices_after_tensorflow_is_imported():
    import tensorflow  # noqa: F401 - the symbol clash this guards against appears only with it loaded

    from apps.speech.pico import PicoEngine

    eng = PicoEngine()
    lengths = {}
    for voice in ("en-US", "en-GB", "en-US"):  # switching voices disposes and recreates the engine
        for speed in (80, 130):
            audio = eng.synthesize("seven", voice, pitch=100, speed=speed)
            assert audio.dtype == np.float32 and 0.05 < np.abs(audio).max() <= 1.0
            lengths[(voice, speed)] = len(audio) / eng.sample_rate
    assert 0.3 < lengths[("en-US", 130)] < lengths[("en-US", 80)] < 1.5  # faster speech is shorter
    with pytest.raises(ValueError, match="unknown Pico voice"):
        eng.synthesize("seven", "de-DE")


@needs_pico
def test_mixed_engine_dataset_alternates_speakers_and_keeps_espeak_cache_names(tmp_path):
    from apps.speech.synth import ensure_synthetic_dataset

    kwargs = dict(num_speakers=4, repeats_per_word=1, unknown_per_speaker=1, silence_clips=2, cache=tmp_path,
                  verbose=False)
    mixed = ensure_synthetic_dataset(["yes"], engines=("espeak", "pico"), **kwargs)
    speakers = json.loads((mixed / "synthesis.json").read_text())["speakers"]
    assert [s.get("engine", "espeak") for s in speakers] == ["espeak", "pico", "espeak", "pico"]
    assert all(0.75 <= s["tract"] <= 1.12 for s in speakers if s.get("engine") == "pico")
    import soundfile as sf

    pico_ids = {s["id"] for s in speakers if s.get("engine") == "pico"}
    clips = [p for p in (mixed / "yes").glob("*.wav") if p.name.split("_")[0] in pico_ids]
    assert len(clips) == 2 and all(np.abs(sf.read(p)[0]).max() > 0.05 for p in clips)
    espeak_only = ensure_synthetic_dataset(["yes"], **kwargs)
    assert espeak_only != mixed and ensure_synthetic_dataset(["yes"], engines=("espeak",), **kwargs) == espeak_only


def test_training_with_pico_unreachable_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    from apps.speech import pico, train
    from tests.speech.helpers import assert_tiny_training_refuses

    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSTM_SUITE_PICO_DEBS", raising=False)
    monkeypatch.setattr(pico, "MIRROR", "http://127.0.0.1:9")  # nothing listens there
    assert_tiny_training_refuses(train, tmp_path, capsys, [['data.synthetic_engines=("espeak","pico")']],
                                 "could not download the SVOX Pico package")
    assert not list((tmp_path / "cache").glob("svox-pico*")) and not list((tmp_path / "cache").glob(".svox*"))
    assert_tiny_training_refuses(train, tmp_path, capsys, [['data.synthetic_engines=("festival",)']],
                                 "data.synthetic_engines must be")


@needs_pico
def test_a_fresh_engine_repeats_its_output_exactly():
    """Pico's waveform depends on its earlier calls, so datasets take a fresh engine each: two fresh
    engines given the same calls in the same order give identical audio."""
    from apps.speech.pico import PicoEngine

    calls = [("six", "en-US", 90, 110), ("seven", "en-GB", 120, 80), ("six", "en-US", 90, 110)]
    first, second = PicoEngine(), PicoEngine()
    for text, voice, pitch, speed in calls:
        a = first.synthesize(text, voice, pitch=pitch, speed=speed)
        b = second.synthesize(text, voice, pitch=pitch, speed=speed)
        assert np.array_equal(a, b)
