"""Offline keyword data by speech synthesis: a Speech-Commands-layout folder made with eSpeak NG
(and, with `engines=("espeak", "pico", "mbrola")`, SVOX Pico and MBROLA: apps/speech/pico.py, mbrola.py).

`espeakng-loader` ships libespeak-ng and its voice data; we drive the C API through
ctypes (no system packages). Each synthetic "speaker" is an English accent + voice
variant (e.g. `en-us+m2`, `en+f3`) with its own base pitch, pitch range, speed and a
fixed microphone colouring; each utterance jitters speed and pitch again. The folder
is generated once per parameter set into `~/.cache/lstm-suite/` and is deterministic
for a seed:

    root = ensure_synthetic_dataset(words=CORE_WORDS, num_speakers=60, seed=0)

Layout: `<word>/<speaker>_nohash_<n>.wav` (16 kHz, 1 s), `_background_noise_/*.wav`,
`validation_list.txt`, `testing_list.txt` (split by speaker).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.speech.config import SYNTH_ENGINES as ENGINES  # eSpeak NG (espeakng-loader); SVOX Pico (apps/speech/pico.py)

SYNTH_VERSION = 6  # bump when generation changes, so stale caches are not reused
SYNTH_RATE = 22050  # eSpeak NG's native output rate
TARGET_RATE = 16000

ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029", "en-us-nyc", "en-gb-x-gbcwmd")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "klatt", "klatt2",
    "klatt3", "adam", "alex", "andy", "annie", "david", "ed", "edward", "grandma", "grandpa", "iven",
    "john", "linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis",
    "victor", "zac", "Alicia", "Andrea", "Denis", "Gene", "Lee", "Mike", "aunty", "belinda", "benjamin",
    "boris", "caleb", "shelby", "whisperf",
)
# Words spoken as `_unknown_`: the other Speech Commands words plus a broader vocabulary.
UNKNOWN_VOCABULARY = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
    "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward", "forward", "follow",
    "learn", "visual", "yellow", "yet", "yesterday", "nope", "noise", "note", "now", "know", "uptown",
    "cup", "dawn", "town", "done", "lift", "light", "write", "ride", "bright", "own", "one", "often",
    "of", "stuff", "top", "stoop", "step", "goal", "good", "ghost", "toe", "window", "water", "yard",
    "yell", "yep", "nod", "night", "open", "apple", "under", "double", "lefty", "rice", "fight",
    "sun", "moon", "star", "tree", "left hand", "gold", "coast", "start", "stack", "dock", "dune",
    "loft", "laugh", "drop", "shop", "chip", "bold", "move", "music", "table", "chair", "paper",
    "orange", "purple", "green", "blue", "red", "summer", "winter", "garden", "pocket", "rabbit",
)


def _sounds(eng, text: str) -> tuple[str, ...]:
    """eSpeak NG's en-us phonemes of `text` without stress marks or pauses: what a listener hears."""
    return tuple(p.replace("'", "").replace(",", "") for _, p in eng.phonemes(text) if not p.startswith("_"))


def phoneme_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Edit distance between two phoneme sequences (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[:], i
        for j, y in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
    return row[-1]


def unknown_vocabulary(words: Sequence[str], eng=None, min_distance: int = 1) -> list[str]:
    """The `_unknown_` words for keywords `words`: UNKNOWN_VOCABULARY less the keywords themselves and
    every word fewer than `min_distance` phoneme edits from one (eSpeak NG en-us phonemes). The default
    1 leaves out the homophones ("write" for "right", "know" for "no", "two" for a typed "too"), which
    would teach the model that a keyword's own sound is not the keyword; 2 also drops the near misses
    one phoneme away ("cup" for "up", "toe" for "two")."""
    eng = eng or engine()
    keyword_sounds = [_sounds(eng, w) for w in words]
    # sorted, each word's phonemes asked once: eSpeak NG's output depends on its earlier calls, so the
    # calls made here are fixed too
    candidates = sorted(set(UNKNOWN_VOCABULARY) - set(words))
    sounds = [_sounds(eng, w) for w in candidates]
    return [w for w, sound in zip(candidates, sounds)
            if min(phoneme_distance(sound, k) for k in keyword_sounds) >= min_distance]


class SynthesisError(RuntimeError):
    """eSpeak NG could not be loaded or failed to synthesise."""


_LOCK = threading.Lock()
_ENGINE = None


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h); `id` is the union, read as the phoneme's 8-byte name."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7


class _Engine:
    """A thin ctypes wrapper around libespeak-ng in synchronous mode."""

    RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as err:
            raise SynthesisError("the synthetic source needs espeakng-loader: pip install espeakng-loader") from err
        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path()
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        # 2 = AUDIO_OUTPUT_SYNCHRONOUS; options 1 = espeakINITIALIZE_PHONEME_EVENTS (the phonemes and their
        # times drive MBROLA, apps/speech/mbrola.py). Whether the events change the audio could not be told:
        # eSpeak NG's audio for the same calls already differs slightly between processes.
        rate = self.lib.espeak_Initialize(2, 0, str(data_path).encode(), 1)
        if rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed (data path {data_path})")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[int, str]] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                         ctypes.POINTER(_Event))

        def collect(wav, num_samples, events):
            if num_samples > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
            i = 0
            while events and events[i].type != _EVENT_LIST_TERMINATED:
                if events[i].type == _EVENT_PHONEME:
                    self._phonemes.append((int(events[i].audio_position), events[i].id.decode("ascii", "replace")))
                i += 1
            return 0

        self._callback = callback_type(collect)  # kept referenced so it is not garbage collected
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """Float32 waveform at `self.sample_rate` for `text` spoken by `voice` (e.g. "en-us+f3")."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SynthesisError(f"eSpeak NG has no voice {voice!r}")
        self.lib.espeak_SetParameter(self.RATE, int(rate), 0)
        self.lib.espeak_SetParameter(self.PITCH, int(pitch), 0)
        self.lib.espeak_SetParameter(self.RANGE, int(pitch_range), 0)
        self.lib.espeak_SetParameter(self.VOLUME, 100, 0)
        self._chunks, self._phonemes = [], []
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)  # POS_CHARACTER, espeakCHARS_UTF8
        self.lib.espeak_Synchronize()
        if status != 0 or not self._chunks:
            raise SynthesisError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0

    def phonemes(self, text: str, voice: str = "en-us", rate: int = 175) -> list[tuple[int, str]]:
        """eSpeak NG's phonemes for `text` with their start times in ms, e.g. "six" ->
        [(11, "s"), (84, "'I"), (281, "k"), (326, "s"), (429, "_:"), (436, "_")] (stress marks kept)."""
        self.synthesize(text, voice, rate=rate, pitch=50, pitch_range=50)
        return list(self._phonemes)


def engine() -> _Engine:
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


def resample(audio: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Polyphase resampling (anti-aliased) from `rate` to `target` Hz."""
    if rate == target:
        return audio.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def _tract_scaled(audio: np.ndarray, rate: int, tract: float) -> np.ndarray:
    """Vocal-tract scaling: resampled so that, played at TARGET_RATE, every frequency moves by `tract`."""
    return resample(audio, rate, int(round(TARGET_RATE / tract / 100)) * 100)


def _speaker_colouring(rng: np.random.Generator):
    """A fixed per-speaker 'microphone + room': random low/high cut and a short reverb tail."""
    from scipy.signal import butter

    low = rng.uniform(60, 300)
    high = rng.uniform(3000, 7500)
    sos = butter(2, [low, high], btype="bandpass", fs=TARGET_RATE, output="sos")
    reverb_seconds = rng.choice([0.0, rng.uniform(0.05, 0.35)])
    impulse = None
    if reverb_seconds > 0:
        n = int(reverb_seconds * TARGET_RATE)
        impulse = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 5.0))
        impulse[0] = 1.0 / rng.uniform(0.15, 0.6)  # direct path louder than the tail
        impulse = impulse / np.abs(impulse).sum() * rng.uniform(2.0, 5.0)
    return sos, impulse


def _colour(audio: np.ndarray, colouring) -> np.ndarray:
    from scipy.signal import fftconvolve, sosfilt

    sos, impulse = colouring
    out = sosfilt(sos, audio)
    if impulse is not None:
        out = fftconvolve(out, impulse)[: len(out) + len(impulse) // 2]
    return out.astype(np.float32)


def place_in_clip(audio: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Trims silence and places the word at a random offset in a `num_samples` clip."""
    active = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    if active.size:
        audio = audio[max(0, active[0] - 160): active[-1] + 800]
    if len(audio) >= num_samples:
        start = (len(audio) - num_samples) // 2
        return audio[start:start + num_samples]
    clip = np.zeros(num_samples, dtype=np.float32)
    offset = int(rng.integers(0, num_samples - len(audio) + 1))
    clip[offset:offset + len(audio)] = audio
    return clip


def make_noises(num_samples: int, rng: np.random.Generator, babble: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A few long background-noise recordings: white, pink, brown, hum, fan-like and babble."""
    white = rng.standard_normal(num_samples)
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.maximum(np.fft.rfftfreq(num_samples, 1 / TARGET_RATE), 20.0)
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), num_samples)
    brown = np.fft.irfft(spectrum / freqs, num_samples)
    t = np.arange(num_samples) / TARGET_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8)) + 0.05 * white
    fan_band = np.exp(-((freqs - rng.uniform(200, 800)) ** 2) / (2 * 150.0 ** 2))
    fan = np.fft.irfft(spectrum * fan_band, num_samples) + 0.1 * pink / (np.abs(pink).max() + 1e-9)
    noises = {"white_noise": white, "pink_noise": pink, "brown_noise": brown, "hum": hum, "fan": fan}
    if babble is not None:
        noises["babble"] = babble
    return {k: (0.5 * v / (np.abs(v).max() + 1e-9)).astype(np.float32) for k, v in noises.items()}


def _cache_key(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def ensure_synthetic_dataset(
    words: Sequence[str],
    num_speakers: int = 60,
    repeats_per_word: int = 3,
    unknown_per_speaker: int = 12,
    silence_clips: int = 200,
    validation_percent: float = 10.0,
    testing_percent: float = 10.0,
    seed: int = 0,
    cache: Path | None = None,
    verbose: bool = True,
    engines: Sequence[str] = ("espeak",),
    unknown_min_distance: int = 1,
) -> Path:
    """Generates (once) and returns a Speech-Commands-layout folder of synthetic speech.

    The folder name hashes every argument, so a different seed or size gives a new
    folder and an identical call reuses the cached one. Generation happens in a
    temporary sibling folder renamed into place, so a crash leaves no partial dataset.

    `engines` ("espeak", "pico", "mbrola", "mbrola_accented") take turns voicing the speakers: speaker i uses engines[i % len].
    A Pico speaker is one of Pico's two English voices with its own pitch, speed and a vocal-tract
    scaling (resampling that moves pitch and formants together, 0.75-1.12: lower makes the female
    voices sound male), so it is as varied as an eSpeak NG speaker. An MBROLA speaker is one of its three
    US voices (us1 a woman's, us2/us3 men's) with its own starting pitch from its voice's range (150-260 Hz
    for us1, 80-160 Hz for the men; a falling or rising contour per utterance), speed and vocal-tract
    scaling (0.85-1.15 for us1; 0.88-1.3 for the men, above 1 sounds female or younger); eSpeak NG's
    en-us phonemes and timing drive it (apps/speech/mbrola.py). An "mbrola_accented" speaker is the same
    with one of MBROLA's German or French voices (de4, fr1 men; de5, fr4 women), its phonemes as a
    German or French speaker says English ones.
    """
    from common.data import cache_dir

    words = [w.lower() for w in words if not w.startswith("_")]
    if not words:
        raise ValueError("synthetic data needs at least one keyword in data.words")
    params = dict(
        version=SYNTH_VERSION, words=list(words), num_speakers=num_speakers, repeats_per_word=repeats_per_word,
        unknown_per_speaker=unknown_per_speaker, silence_clips=silence_clips,
        validation_percent=validation_percent, testing_percent=testing_percent, seed=seed,
    )
    engines = tuple(engines)
    unknown_engines = sorted(set(engines) - set(ENGINES))
    if not engines or unknown_engines:
        raise ValueError(f"unknown synthesis engine(s) {unknown_engines or '(none given)'}; choose from {list(ENGINES)}")
    if engines != ("espeak",):
        params["engines"] = list(engines)  # only when set, so eSpeak-only caches keep their names
    if unknown_min_distance != 1:
        params["unknown_min_distance"] = int(unknown_min_distance)
    root = (cache or cache_dir()) / f"speech_synthetic_{_cache_key(params)}"
    if (root / ".complete").exists():
        return root
    import soundfile as sf

    from common.data import building

    with building(root, ".speech_synthetic-") as tmp:
        eng = engine() if "espeak" in engines else None
        mbrola_eng, mbrola_voices, mbrola_ranges = None, {}, {}
        if "mbrola" in engines or "mbrola_accented" in engines:
            from apps.speech.mbrola import ACCENTED_VOICES, SPEAKER_RANGES as mbrola_ranges, VOICES, MbrolaEngine

            mbrola_eng = MbrolaEngine(espeak=eng or engine(), accented="mbrola_accented" in engines)
            mbrola_voices = {"mbrola": VOICES, "mbrola_accented": ACCENTED_VOICES}
        pico_eng, pico_voices = None, []
        if "pico" in engines:
            from apps.speech.pico import VOICES, PicoEngine

            pico_eng = PicoEngine()  # a fresh engine: like eSpeak NG, Pico's output depends on its earlier calls
            pico_voices = sorted(VOICES)
        rng = np.random.default_rng(seed)
        unknown_vocab = unknown_vocabulary(words, eng or engine(), unknown_min_distance)
        num_samples = TARGET_RATE
        speakers = []
        for i in range(num_speakers):
            speaker_id = hashlib.sha1(f"{seed}-{i}".encode()).hexdigest()[:8]
            if engines[i % len(engines)] == "pico":
                speakers.append(dict(
                    id=speaker_id, engine="pico",
                    voice=pico_voices[int(rng.integers(len(pico_voices)))], pitch=int(rng.integers(60, 150)),
                    speed=int(rng.integers(75, 135)), tract=round(float(rng.uniform(0.75, 1.12)), 2),
                    gain=float(rng.uniform(0.2, 0.9)), colour_seed=int(rng.integers(2 ** 31)),
                ))
                continue
            if engines[i % len(engines)] in ("mbrola", "mbrola_accented"):
                voices = mbrola_voices[engines[i % len(engines)]]
                voice = voices[int(rng.integers(len(voices)))]
                f0_range, tract_range = mbrola_ranges[voice]
                speakers.append(dict(
                    id=speaker_id, engine="mbrola", voice=voice,
                    f0=round(float(rng.uniform(*f0_range)), 1), speed=round(float(rng.uniform(0.8, 1.25)), 2),
                    tract=round(float(rng.uniform(*tract_range)), 2),
                    gain=float(rng.uniform(0.2, 0.9)), colour_seed=int(rng.integers(2 ** 31)),
                ))
                continue
            speakers.append(dict(
                id=speaker_id,
                voice=f"{ACCENTS[rng.integers(len(ACCENTS))]}+{VARIANTS[rng.integers(len(VARIANTS))]}",
                rate=int(rng.integers(120, 230)), pitch=int(rng.integers(20, 85)), range=int(rng.integers(20, 90)),
                gain=float(rng.uniform(0.2, 0.9)),
                colour_seed=int(rng.integers(2 ** 31)),
            ))
        # Split by speaker like Speech Commands (one speaker never spans splits), with exact
        # proportions so even a tiny preset gets validation and test speakers.
        order = rng.permutation(num_speakers)
        num_val = max(1, int(round(num_speakers * validation_percent / 100))) if validation_percent > 0 else 0
        num_test = max(1, int(round(num_speakers * testing_percent / 100))) if testing_percent > 0 else 0
        split_of = {int(i): "validation" for i in order[:num_val]}
        split_of.update({int(i): "testing" for i in order[num_val:num_val + num_test]})
        lists = {"validation": [], "testing": []}
        count = 0

        def speak(spk, text, spk_rng):
            if spk.get("engine") == "mbrola":
                raw = mbrola_eng.synthesize(text, spk["voice"], f0=spk["f0"] * spk_rng.uniform(0.9, 1.1),
                                            speed=spk["speed"] * spk_rng.uniform(0.88, 1.12),
                                            fall=spk_rng.uniform(-0.05, 0.3))
                return _tract_scaled(raw, mbrola_eng.sample_rate, spk["tract"])  # tract > 1 shortens the vocal tract
            if spk.get("engine") == "pico":
                raw = pico_eng.synthesize(text, spk["voice"], pitch=int(spk["pitch"] * spk_rng.uniform(0.92, 1.08)),
                                          speed=int(spk["speed"] * spk_rng.uniform(0.88, 1.12)))
                return _tract_scaled(raw, pico_eng.sample_rate, spk["tract"])
            raw = eng.synthesize(
                text, spk["voice"],
                rate=int(spk["rate"] * spk_rng.uniform(0.85, 1.15)),
                pitch=int(np.clip(spk["pitch"] + spk_rng.integers(-8, 9), 0, 99)),
                pitch_range=int(np.clip(spk["range"] + spk_rng.integers(-10, 11), 0, 99)),
            )
            audio = resample(raw, eng.sample_rate)
            return audio

        # Serial on purpose: eSpeak NG's waveform for the same text and voice depends on the
        # engine's earlier calls (measured: 0.54 max abs difference on a repeat), so the dataset is
        # reproducible only in this order from a fresh engine. A process pool would change it, and
        # saves little: about 6 ms per clip, 2.5 minutes for the gpu preset's 24k clips.
        for spk_index, spk in enumerate(speakers):
            spk_rng = np.random.default_rng([seed, spk_index])
            colouring = _speaker_colouring(np.random.default_rng(spk["colour_seed"]))
            split = split_of.get(spk_index, "train")
            utterances = [(w, w) for w in words for _ in range(repeats_per_word)]
            utterances += [("_unknown_", unknown_vocab[j]) for j in spk_rng.choice(len(unknown_vocab), unknown_per_speaker)]
            counters: dict[str, int] = {}
            for label, text in utterances:
                audio = _colour(speak(spk, text, spk_rng), colouring)
                clip = place_in_clip(audio, num_samples, spk_rng)
                clip = clip / (np.abs(clip).max() + 1e-9) * spk["gain"] * spk_rng.uniform(0.7, 1.0)
                folder = text.replace(" ", "_") if label == "_unknown_" else label
                n = counters.get(folder, 0)
                counters[folder] = n + 1
                rel = f"{folder}/{spk['id']}_nohash_{n}.wav"
                (tmp / folder).mkdir(exist_ok=True)
                sf.write(tmp / rel, clip, TARGET_RATE, subtype="PCM_16")
                if split != "train":
                    lists[split].append(rel)
                count += 1
            if verbose and (spk_index + 1) % 10 == 0:
                print(f"  synthesised {spk_index + 1}/{num_speakers} speakers ({count} clips)", flush=True)

        # Babble: several speakers talking at once, as in a cafe.
        sentences = ["the quick brown fox jumps over the lazy dog", "please call stella and ask her to bring these things",
                     "we will meet at the station around seven", "a large crowd gathered near the market square"]
        babble = np.zeros(TARGET_RATE * 20, dtype=np.float32)
        for j in range(12):
            spk = speakers[j % len(speakers)]
            speech = speak(spk, sentences[j % len(sentences)], rng)
            speech = np.tile(speech, int(np.ceil(len(babble) / len(speech))))[: len(babble)]
            babble += np.roll(speech, int(rng.integers(len(babble))))
        noise_dir = tmp / "_background_noise_"
        noise_dir.mkdir()
        for name, noise in make_noises(TARGET_RATE * 20, rng, babble).items():
            sf.write(noise_dir / f"{name}.wav", noise, TARGET_RATE, subtype="PCM_16")
        # Silence clips live in their own folder so every split gets some.
        silence_dir = tmp / "_silence_"
        silence_dir.mkdir()
        noise_bank = list(make_noises(TARGET_RATE * 4, rng).values())
        for j in range(silence_clips):
            noise = noise_bank[j % len(noise_bank)]
            start = int(rng.integers(0, len(noise) - num_samples))
            clip = noise[start:start + num_samples] * rng.choice([0.0, rng.uniform(0.001, 0.3)])
            rel = f"_silence_/silence{j % 10}_nohash_{j}.wav"
            sf.write(tmp / rel, clip, TARGET_RATE, subtype="PCM_16")
            if j % 10 == 0 and validation_percent > 0:
                lists["validation"].append(rel)
            elif j % 10 == 1 and testing_percent > 0:
                lists["testing"].append(rel)
        (tmp / "validation_list.txt").write_text("\n".join(lists["validation"]) + "\n")
        (tmp / "testing_list.txt").write_text("\n".join(lists["testing"]) + "\n")
        (tmp / "synthesis.json").write_text(json.dumps({"params": params, "speakers": speakers}, indent=2) + "\n")
    return root
