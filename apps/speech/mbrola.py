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
# Who recorded each voice (its own description, `mbrola -i`: us1 "American Female Voice", us2 and us3
# male): a synthetic speaker's starting pitch (Hz) and vocal-tract scaling are drawn from its voice's
# ranges, so us1 speaks at a woman's pitch (a man's f0 through her diphones is no real voice) and
# tract scaling above 1 turns the men's voices female- or child-like.
SPEAKER_RANGES = {  # voice: ((f0 low, f0 high), (tract low, tract high))
    "us1": ((150.0, 260.0), (0.85, 1.15)),
    "us2": ((80.0, 160.0), (0.88, 1.3)),
    "us3": ((80.0, 160.0), (0.88, 1.3)),
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


def mbrola_phonemes(name: str) -> list[str]:
    """MBROLA symbols for one eSpeak NG phoneme name; KeyError if it has no mapping."""
    base = name.lstrip("',%=")
    if base in _SAME:
        return [base]
    return _MAP[base].split()


def pho_lines(events: list[tuple[int, str]], f0_start: float, f0_end: float, stretch: float = 1.0) -> str:
    """A .pho file from eSpeak NG phoneme events (start ms, name): durations from the events' spacing
    times `stretch`, and each voiced phoneme's pitch on a line from f0_start to f0_end (Hz)."""
    total = max(events[-1][0] - events[0][0], 1)
    lines = ["_ 40"]
    for (start, name), (end, _) in zip(events[:-1], events[1:]):
        symbols = mbrola_phonemes(name)
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
    folder, digest = PACKAGES[filename]
    return fetch_deb(filename, digest, f"{MIRROR}/pool/{folder}/{filename}", "LSTM_SUITE_MBROLA_DEBS",
                     what="the MBROLA package", all_files=list(PACKAGES), leave_out="'mbrola'")


def save_debs(dest: Path) -> list[Path]:
    """Writes the verified .deb files to `dest` (LSTM_SUITE_MBROLA_DEBS=dest reads them there)."""
    dest.mkdir(parents=True, exist_ok=True)
    for filename in PACKAGES:
        (dest / filename).write_bytes(_verified(filename))
    return [dest / f for f in PACKAGES]


def _root(cache: Path | None = None) -> Path:
    from common.data import cache_dir

    return (cache or cache_dir()) / f"mbrola-{VERSION}"


def installed(cache: Path | None = None) -> bool:
    return (_root(cache) / ".complete").exists()


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


class MbrolaEngine:
    """Speaks text with an MBROLA voice, eSpeak NG giving the phonemes and their timing."""

    sample_rate = RATE

    def __init__(self, root: Path | None = None, espeak=None):
        root = root or ensure_mbrola()
        self.program = root / "bin" / "mbrola"
        self.voices = {v: root / "voices" / v for v in VOICES}
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
        pho = pho_lines(events, f0, f0 * (1 - fall), stretch=1.0 / speed)
        with tempfile.TemporaryDirectory(prefix="lstm-suite-mbrola-") as tmp:
            out = Path(tmp) / "out.wav"
            # -e: a diphone missing from the voice becomes silence instead of an error
            done = subprocess.run([str(self.program), "-e", str(self.voices[voice]), "-", str(out)],
                                  input=pho.encode(), capture_output=True)
            if done.returncode != 0 or not out.is_file():
                raise DataError(f"mbrola failed for {text!r} with voice {voice}: "
                                f"{done.stderr.decode(errors='replace').strip()[:200]}")
            audio, rate = sf.read(out, dtype="float32")
        if rate != RATE:
            raise DataError(f"MBROLA voice {voice} speaks at {rate} Hz, expected {RATE}")
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
