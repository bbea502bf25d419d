"""MBROLA, a third offline speech engine: diphones cut from recordings of real speakers.

eSpeak NG is a formant synthesiser and Pico an HMM one; MBROLA concatenates diphones recorded from
a real voice (us1: an American English woman; us2, us3: two American English men), so its spectra are the nearest
to a microphone of the three. MBROLA only speaks phonemes with durations and pitch targets (a .pho
file); eSpeak NG supplies them: its phoneme events give each phoneme and its start time, mapped
here onto MBROLA's American English symbols, and the pitch contour is drawn per utterance.

The engine and voices are Debian packages (`mbrola` in contrib, AGPL-3; `mbrola-us1/2/3` in
non-free: free for non-commercial use with MBROLA only, see their copyright files). They are
fetched once from the Debian archive, SHA-256 pinned, unpacked in Python into the suite's cache:

    eng = MbrolaEngine()                       # downloads ~17.6 MB on first use
    audio = eng.synthesize("seven", "us2", f0=120, speed=1.1)   # float32, 16 kHz

`LSTM_SUITE_MBROLA_DEBS=DIR` reads the .deb files from DIR instead of downloading them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from apps.speech.debian import extract_deb, fetch_command, fetch_deb
from common.errors import DataError

VERSION = "3.3+dfsg-9"
MIRROR = os.environ.get("LSTM_SUITE_MBROLA_MIRROR", "http://deb.debian.org/debian")
PACKAGES = {  # file name: (pool folder, SHA-256)
    f"mbrola_{VERSION}_amd64.deb": (
        "contrib/m/mbrola", "d94ea5bbb8b201935e8a40d758f1a224030d13a1ba669cc75293823933554c7f"),
    "mbrola-us1_0.3+repack2-5_all.deb": (
        "non-free/m/mbrola-us1", "b3284caecfc47023bca46550c5f7cde2f4e8cb4ac3b60840ff8784914c7c85fd"),
    "mbrola-us2_0.1+repack2-5_all.deb": (
        "non-free/m/mbrola-us2", "ea95d89157e420b119f078853ddf27383b4cb4c607581c64b0f9079d5ee3f5dc"),
    "mbrola-us3_0.1+repack2-4_all.deb": (
        "non-free/m/mbrola-us3", "f8a4e75acc914a58fb7c85ffc3bbea48f0dc2c13704fadd054101020e973c1c2"),
}
VOICES = ("us1", "us2", "us3")
# Engine "mbrola_accented": German and French speakers' diphones speaking English with the accent
# their own phoneme sets give it (apps/speech/config.py SYNTH_ENGINES). Four more real voices, two
# men and two women, fetched only when that engine is used (39 MB).
ACCENTED_PACKAGES = {
    "mbrola-de4_0.0.20020812+repack2-4_all.deb": (
        "non-free/m/mbrola-de4", "02d541463cf5c86463a6a5fdfdbd93ffbe1553b122b360f824e44ca19851921a"),
    "mbrola-de5_1.0+repack2-4_all.deb": (
        "non-free/m/mbrola-de5", "9cfb2737ee7b070ac7768daa3f5cd9191adba403fdaa564cd03ed01d3075d80d"),
    "mbrola-fr1_2.050+repack2-4_all.deb": (
        "non-free/m/mbrola-fr1", "3b3fc10f27c2b202b188492f17d1929a2a3dc9ddecbcb08120610bc68e352202"),
    "mbrola-fr4_0.0.19990521+repack2-5_all.deb": (
        "non-free/m/mbrola-fr4", "3c19935aa7a6c897c7c033a0c964344b64ff3076b431d2544706a3d4574e1a0f"),
}
ACCENTED_VOICES = ("de4", "de5", "fr1", "fr4")
# Who recorded each voice (its own description, `mbrola -i`: us1 "American Female Voice", us2 and us3
# male; de4 "a male German voice", de5 "a German female voice", fr1 "a french male voice", fr4 "a French
# female voice"): a synthetic speaker's starting pitch (Hz) and vocal-tract scaling are drawn from its voice's
# ranges, so a woman's voice speaks at a woman's pitch (a man's f0 through her diphones is no real voice) and
# tract scaling above 1 turns the men's voices female- or child-like.
_WOMAN, _MAN = ((150.0, 260.0), (0.85, 1.15)), ((80.0, 160.0), (0.88, 1.3))
SPEAKER_RANGES = {  # voice: ((f0 low, f0 high), (tract low, tract high))
    "us1": _WOMAN, "us2": _MAN, "us3": _MAN, "de4": _MAN, "de5": _WOMAN, "fr1": _MAN, "fr4": _WOMAN,
}
RATE = 16000

# eSpeak NG's English phonemes (stress marks stripped) -> MBROLA's American English set
# (us1 README: p b t d k g f v T D s z S Z h tS dZ m n N l r w j, vowels i I E { A O V U u @ r= EI AI
# OI @U aU, "4" the flapped t, "_" silence). Two symbols split the phoneme's time between them.
_SAME = set("p b t d k g f v T D s z S Z h m n N l r w j tS dZ".split())
_MAP = {
    "E": "E", "E2": "E", "E3": "E", "I": "I", "I2": "I", "I#": "I", "i": "i", "i:": "i", "i@": "I", "i@3": "I r",
    "a": "{", "a#": "@", "aa": "{", "A:": "A", "A@": "A r", "0": "A", "O2": "O", "O:": "O", "O": "O",
    "o@": "O r", "O@": "O r", "V": "V", "@": "@", "@2": "@", "@5": "@", "@L": "@ l", "3:": "r=", "3": "r=",
    "e@": "E r", "eI": "EI", "aI": "AI", "aI@": "AI @", "aI3": "AI r=", "aU": "aU", "aU@": "aU @", "OI": "OI",
    "oU": "@U", "u:": "u", "U@": "U r", "U": "U", "t2": "t", "t#": "4", "d2": "d", "d#": "d", "r-": "r",
    "l/": "l", "l#": "l", "n-": "n", "m-": "m", "z/2": "z", "w#": "w", "_:": "_", "_": "_", "?": "_",
}


# The US symbols as a German or a French speaker says them, in their voice's own SAMPA set (the voices'
# `mbrola -i` tables): no "th" (T, D -> s, z), German w -> v, the uvular R, each language's nearest vowel,
# French drops h; German also devoices a final b d g v z (`_devoiced`). Unlisted symbols are the same.
_ACCENT = {
    "de": {"T": "s", "D": "z", "w": "v", "r": "R", "dZ": "d Z", "4": "d", "i": "i:", "{": "E", "A": "a:",
           "V": "a", "u": "u:", "r=": "9 6", "EI": "e:", "AI": "aI", "OI": "OY", "@U": "o:"},
    "fr": {"h": "", "T": "s", "D": "z", "r": "R", "tS": "t S", "dZ": "d Z", "4": "d", "I": "i", "{": "a",
           "A": "a", "V": "9", "U": "u", "r=": "9 R", "EI": "e", "AI": "a j", "OI": "O j", "@U": "o", "aU": "a w",
           "N": "n g"},
}
_DEVOICE = {"b": "p", "d": "t", "g": "k", "v": "f", "z": "s", "Z": "S"}


def language(voice: str) -> str:
    """The phoneme set a voice speaks: "us" for us1-us3, else its language ("de4" -> "de")."""
    return "us" if voice.startswith("us") else voice[:2]


def mbrola_phonemes(name: str, lang: str = "us") -> list[str]:
    """MBROLA symbols for one eSpeak NG phoneme name in a voice language's set (`language`); KeyError if
    it has no mapping. May be empty (a French speaker's silent h)."""
    base = name.lstrip("',%=")
    symbols = [base] if base in _SAME else _MAP[base].split()
    if lang == "us":
        return symbols
    return [x for symbol in symbols for x in _ACCENT[lang].get(symbol, symbol).split()]


def _devoiced(symbols: list[str], lang: str, before_pause: bool) -> list[str]:
    if lang == "de" and before_pause and symbols and symbols[-1] in _DEVOICE:
        return symbols[:-1] + [_DEVOICE[symbols[-1]]]
    return symbols


def pho_lines(events: list[tuple[int, str]], f0_start: float, f0_end: float, stretch: float = 1.0,
              lang: str = "us") -> str:
    """A .pho file from eSpeak NG phoneme events (start ms, name): durations from the events' spacing
    times `stretch`, and each voiced phoneme's pitch on a line from f0_start to f0_end (Hz); the symbols
    of the voice language `lang` (`language`)."""
    total = max(events[-1][0] - events[0][0], 1)
    lines = ["_ 40"]
    for (start, name), (end, next_name) in zip(events[:-1], events[1:]):
        symbols = _devoiced(mbrola_phonemes(name, lang), lang, next_name.lstrip("',%=").startswith("_"))
        for k, symbol in enumerate(symbols):
            duration = max(int(round((end - start) * stretch / len(symbols))), 10)
            if symbol == "_":
                lines.append(f"_ {max(duration, 20)}")
                continue
            position = (start - events[0][0] + (k + 0.5) * (end - start) / len(symbols)) / total
            lines.append(f"{symbol} {duration} 50 {f0_start + (f0_end - f0_start) * position:.0f}")
    lines.append("_ 40")
    return "\n".join(lines) + "\n"


def _verified(filename: str) -> bytes:
    packages = ACCENTED_PACKAGES if filename in ACCENTED_PACKAGES else PACKAGES
    folder, digest = packages[filename]
    return fetch_deb(filename, digest, f"{MIRROR}/pool/{folder}/{filename}", "LSTM_SUITE_MBROLA_DEBS",
                     what="the MBROLA package", all_files=list(packages),
                     leave_out="'mbrola_accented'" if packages is ACCENTED_PACKAGES else "'mbrola'")


def save_debs(dest: Path, accented: bool = False) -> list[Path]:
    """Writes the verified .deb files to `dest` (LSTM_SUITE_MBROLA_DEBS=dest reads them there); with
    `accented`, the German and French voices' too."""
    dest.mkdir(parents=True, exist_ok=True)
    names = list(PACKAGES) + (list(ACCENTED_PACKAGES) if accented else [])
    for filename in names:
        (dest / filename).write_bytes(_verified(filename))
    return [dest / f for f in names]


def _root(cache: Path | None = None, name: str = f"mbrola-{VERSION}") -> Path:
    """The engine's folder in the cache, or (name=ACCENTED_FOLDER) the accented voices' one."""
    from common.data import cache_dir

    return (cache or cache_dir()) / name


ACCENTED_FOLDER = "mbrola-accented-voices-1"


def installed(cache: Path | None = None, accented: bool = False) -> bool:
    return (_root(cache) / ".complete").exists() and (not accented or (_root(cache, ACCENTED_FOLDER) / ".complete").exists())


def ensure_mbrola(cache: Path | None = None) -> Path:
    """The folder holding the `mbrola` program (`bin/`) and the voices (`voices/`), fetched once."""
    import platform

    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise DataError(f"the MBROLA engine is fetched as a Debian amd64 package and runs on Linux x86-64 only "
                        f"(this is {platform.system()} {platform.machine()}); leave 'mbrola' out of "
                        f"data.synthetic_engines")
    root = _root(cache)
    if (root / ".complete").exists():
        return root
    from common.data import building

    with building(root, ".mbrola-", VERSION + "\n") as tmp:
        for filename in PACKAGES:
            extract_deb(_verified(filename), {"mbrola": "bin", **{v: "voices" for v in VOICES}}, tmp)
        missing = [p for p in ["bin/mbrola"] + [f"voices/{v}" for v in VOICES] if not (tmp / p).is_file()]
        if missing:
            raise DataError(f"the MBROLA packages lacked {', '.join(missing)}")
        (tmp / "bin" / "mbrola").chmod(0o755)
    return root


def ensure_accented_voices(cache: Path | None = None) -> Path:
    """The folder holding the German and French voices (`voices/`), fetched once (ensure_mbrola first)."""
    ensure_mbrola(cache)
    root = _root(cache, ACCENTED_FOLDER)
    if (root / ".complete").exists():
        return root
    from common.data import building

    with building(root, ".mbrola-accented-") as tmp:
        for filename in ACCENTED_PACKAGES:
            extract_deb(_verified(filename), {v: "voices" for v in ACCENTED_VOICES}, tmp)
        missing = [f"voices/{v}" for v in ACCENTED_VOICES if not (tmp / "voices" / v).is_file()]
        if missing:
            raise DataError(f"the MBROLA voice packages lacked {', '.join(missing)}")
    return root


class MbrolaEngine:
    """Speaks text with an MBROLA voice, eSpeak NG giving the phonemes and their timing."""

    sample_rate = RATE

    def __init__(self, root: Path | None = None, espeak=None, accented: bool = False):
        root = root or ensure_mbrola()
        self.program = root / "bin" / "mbrola"
        self.voices = {v: root / "voices" / v for v in VOICES}
        if accented:  # the German and French voices, in their own folder of the same cache
            accented_root = ensure_accented_voices(root.parent)
            self.voices.update({v: accented_root / "voices" / v for v in ACCENTED_VOICES})
        if espeak is None:
            from apps.speech.synth import engine

            espeak = engine()
        self.espeak = espeak

    def description(self, voice: str) -> str:
        """The voice's own first line of `mbrola -i` (e.g. "US1 American Female Voice")."""
        done = subprocess.run([str(self.program), "-i", str(self.voices[voice])], capture_output=True)
        lines = [line.strip() for line in (done.stdout + done.stderr).decode(errors="replace").splitlines()]
        return next((line for line in lines if line.upper().startswith(voice.upper())), "")

    def synthesize(self, text: str, voice: str, f0: float = 110.0, speed: float = 1.0, fall: float = 0.15,
                   accent: str = "en-us") -> np.ndarray:
        """Float32 audio at 16 kHz: `f0` the starting pitch (Hz) falling by `fall` over the utterance,
        `speed` > 1 faster. The phonemes come from eSpeak NG's `accent` voice."""
        import soundfile as sf

        if voice not in self.voices:
            raise ValueError(f"MBROLA has no voice {voice!r}; choose from {list(self.voices)}")
        events = self.espeak.phonemes(text, accent)
        pho = pho_lines(events, f0, f0 * (1 - fall), stretch=1.0 / speed, lang=language(voice))
        with tempfile.TemporaryDirectory(prefix="lstm-suite-mbrola-") as tmp:
            out = Path(tmp) / "out.wav"
            # -e: a diphone missing from the voice becomes silence instead of an error
            done = subprocess.run([str(self.program), "-e", str(self.voices[voice]), "-", str(out)],
                                  input=pho.encode(), capture_output=True)
            if done.returncode != 0 or not out.is_file():
                raise DataError(f"mbrola failed for {text!r} with voice {voice}: "
                                f"{done.stderr.decode(errors='replace').strip()[:200]}")
            audio, rate = sf.read(out, dtype="float32")
        if rate != RATE:  # de5 and fr4 speak at 22,050 Hz
            from apps.speech.synth import resample

            audio = resample(audio, rate, RATE)
        return audio


def _fetch_and_speak() -> str:
    root = ensure_mbrola()
    eng = MbrolaEngine(root)
    seconds = len(eng.synthesize("ready", "us1")) / eng.sample_rate
    return f"MBROLA {VERSION} in {root} (voices {', '.join(VOICES)}; 'ready' spoken in {seconds:.2f} s)"


def main() -> int:
    """`python -m apps.speech.mbrola` (`make mbrola`): fetch and unpack the engine now, and say where it is."""
    return fetch_command("Fetch MBROLA and its US voices into the cache (or save the .debs).", save_debs, _fetch_and_speak)


if __name__ == "__main__":
    raise SystemExit(main())
