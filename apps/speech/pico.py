"""SVOX Pico, a second offline speech engine for synthetic keyword data.

eSpeak NG is a formant synthesiser: every one of its voices shares the same buzzy source, and a
model trained on it alone learns that sound. Pico (Android's old on-device TTS) is a different,
HMM-based engine with two English voices (en-US, en-GB). It is not on PyPI: its two Debian
packages (`libttspico0`, `libttspico-data`, Apache-2.0, Debian's non-free section because the voice
data ships without its sources) are fetched once from the Debian archive, checked against pinned
SHA-256 digests and unpacked in Python (no root, no dpkg) into the suite's cache:

    eng = PicoEngine()                       # downloads ~4.3 MB on first use
    audio = eng.synthesize("seven", "en-GB", pitch=80, speed=110)   # float32, 16 kHz

`LSTM_SUITE_PICO_DEBS=DIR` reads the two .deb files from DIR instead of downloading them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path

import numpy as np

from apps.speech.debian import extract_deb, fetch_command, fetch_deb
from common.errors import DataError

PICO_RATE = 16000
VERSION = "1.0+git20130326-13"
MIRROR = os.environ.get("LSTM_SUITE_PICO_MIRROR", "http://deb.debian.org/debian")
PACKAGES = {
    f"libttspico0_{VERSION}_amd64.deb": "fc9e4dbc664a7756ae73e83633d9987e6b0f2fd5248f04def8beb8de6df2cd02",
    f"libttspico-data_{VERSION}_all.deb": "25c9904cef2471302634c03deff3ca96b588e22ea94929dda72d940584a3b84a",
}
VOICES = {"en-US": ("en-US_ta.bin", "en-US_lh0_sg.bin"), "en-GB": ("en-GB_ta.bin", "en-GB_kh0_sg.bin")}
_LIBRARY = "libttspico.so.0"
_MEMORY = 6_000_000  # bytes of working memory: pico2wave gives one voice 2.5 MB; both voices loaded need more
_STEP_BUSY = 201


def _verified(filename: str) -> bytes:
    return fetch_deb(
        filename, PACKAGES[filename], f"{MIRROR}/pool/non-free/s/svox/{filename}", "LSTM_SUITE_PICO_DEBS",
        what="the SVOX Pico package", all_files=list(PACKAGES), leave_out="'pico'")


def save_debs(dest: Path) -> list[Path]:
    """Writes the two verified .deb files to `dest` (for a machine without the Debian archive:
    tools/gpu/prepare.sh carries them, and LSTM_SUITE_PICO_DEBS=dest reads them there)."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename in PACKAGES:
        (dest / filename).write_bytes(_verified(filename))
        paths.append(dest / filename)
    return paths


def _root(cache: Path | None = None) -> Path:
    from common.data import cache_dir

    return (cache or cache_dir()) / f"svox-pico-{VERSION}"


def installed(cache: Path | None = None) -> bool:
    """Whether the package is fetched and unpacked already (no download)."""
    return (_root(cache) / ".complete").exists()


def ensure_pico(cache: Path | None = None) -> Path:
    """The folder holding Pico's library (`lib/`) and voices (`lang/`), fetched and unpacked once."""
    import platform

    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise DataError(f"the SVOX Pico engine is fetched as a Debian amd64 package and runs on Linux x86-64 only "
                        f"(this is {platform.system()} {platform.machine()}); leave 'pico' out of data.synthetic_engines")
    root = _root(cache)
    if (root / ".complete").exists():
        return root
    from common.data import building

    with building(root, ".svox-pico-", VERSION + "\n") as tmp:
        for filename in PACKAGES:
            data = _verified(filename)
            extract_deb(data, {"libttspico.so.0*": "lib", "*_ta.bin": "lang", "*_sg.bin": "lang"}, tmp)
        lang = tmp / "lang"
        for ta, sg in VOICES.values():
            if not (lang / ta).is_file() or not (lang / sg).is_file():
                raise DataError(f"the Pico voice files {ta}/{sg} are missing from the downloaded package")
        libs = sorted((tmp / "lib").glob("libttspico.so.0*"))
        if not libs:
            raise DataError("the Pico package held no libttspico.so.0")
        shutil.copyfile(libs[-1], tmp / "lib" / _LIBRARY)
    return root


class PicoEngine:
    """A ctypes wrapper around libttspico (its C API, picoapi.h), loading each voice on first use."""

    sample_rate = PICO_RATE

    def __init__(self, root: Path | None = None):
        root = root or ensure_pico()
        self.lang = root / "lang"
        # DEEPBIND: libttspico exports generic symbol names that TensorFlow's libraries also define; without
        # it the library binds to TensorFlow's and crashes in pico_getData once TensorFlow is imported.
        mode = getattr(os, "RTLD_DEEPBIND", 0) | getattr(os, "RTLD_LOCAL", 0)
        self.lib = ctypes.CDLL(str(root / "lib" / _LIBRARY), mode=mode)
        ptr, text, i16, i16p = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int16, ctypes.POINTER(ctypes.c_int16)
        signatures = {  # picoapi.h; pico_Status is a 16-bit int
            "pico_initialize": [ptr, ctypes.c_uint32, ctypes.POINTER(ptr)],
            "pico_loadResource": [ptr, text, ctypes.POINTER(ptr)],
            "pico_getResourceName": [ptr, ptr, ctypes.c_char_p],
            "pico_createVoiceDefinition": [ptr, text],
            "pico_addResourceToVoiceDefinition": [ptr, text, text],
            "pico_newEngine": [ptr, text, ctypes.POINTER(ptr)],
            "pico_disposeEngine": [ptr, ctypes.POINTER(ptr)],
            "pico_putTextUtf8": [ptr, text, i16, i16p],
            "pico_getData": [ptr, ptr, i16, i16p, i16p],
        }
        for name, argtypes in signatures.items():
            getattr(self.lib, name).argtypes = argtypes
            getattr(self.lib, name).restype = i16
        self._memory = ctypes.create_string_buffer(_MEMORY)
        self.system = ctypes.c_void_p()
        self._check(self.lib.pico_initialize(self._memory, _MEMORY, ctypes.byref(self.system)), "pico_initialize")
        self._defined: set[str] = set()
        self._current: ctypes.c_void_p | None = None
        self._voice: str | None = None
        self._buffer = ctypes.create_string_buffer(4096)

    @staticmethod
    def _check(status: int, what: str):
        if status != 0:
            raise RuntimeError(f"{what} failed with Pico status {status}")

    def _engine(self, voice: str) -> ctypes.c_void_p:
        """The engine for `voice`. Pico runs one engine at a time, so a change of voice disposes the last one
        (the voices' resources stay loaded)."""
        if self._voice == voice:
            return self._current
        if voice not in VOICES:
            raise ValueError(f"unknown Pico voice {voice!r}; choose one of {sorted(VOICES)}")
        if voice not in self._defined:
            names = []
            for filename in VOICES[voice]:
                resource = ctypes.c_void_p()
                self._check(self.lib.pico_loadResource(self.system, str(self.lang / filename).encode(),
                                                       ctypes.byref(resource)), f"loading {filename}")
                name = ctypes.create_string_buffer(200)
                self._check(self.lib.pico_getResourceName(self.system, resource, name), "pico_getResourceName")
                names.append(name.value)
            self._check(self.lib.pico_createVoiceDefinition(self.system, voice.encode()), "pico_createVoiceDefinition")
            for name in names:
                self._check(self.lib.pico_addResourceToVoiceDefinition(self.system, voice.encode(), name),
                            "pico_addResourceToVoiceDefinition")
            self._defined.add(voice)
        if self._current is not None:
            self._check(self.lib.pico_disposeEngine(self.system, ctypes.byref(self._current)), "pico_disposeEngine")
            self._current, self._voice = None, None
        engine = ctypes.c_void_p()
        self._check(self.lib.pico_newEngine(self.system, voice.encode(), ctypes.byref(engine)), "pico_newEngine")
        self._current, self._voice = engine, voice
        return engine

    def synthesize(self, text: str, voice: str, pitch: int = 100, speed: int = 100) -> np.ndarray:
        """`text` in `voice` at `pitch` and `speed` percent of the voice's own; float32 at 16 kHz."""
        engine = self._engine(voice)
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        data = f'<pitch level="{int(pitch)}"><speed level="{int(speed)}">{escaped}</speed></pitch>'.encode() + b"\0"
        sent, received, kind = ctypes.c_int16(), ctypes.c_int16(), ctypes.c_int16()
        out, pos = [], 0
        while pos < len(data):
            chunk = data[pos:pos + 16000]
            self._check(self.lib.pico_putTextUtf8(engine, chunk, len(chunk), ctypes.byref(sent)), "pico_putTextUtf8")
            pos += sent.value
            while True:
                status = self.lib.pico_getData(engine, self._buffer, len(self._buffer), ctypes.byref(received),
                                               ctypes.byref(kind))
                out.append(self._buffer.raw[:received.value])
                if status != _STEP_BUSY:
                    break
        return np.frombuffer(b"".join(out), dtype=np.int16).astype(np.float32) / 32768.0


def _fetch_and_speak() -> str:
    root = ensure_pico()
    eng = PicoEngine(root)
    seconds = len(eng.synthesize("ready", "en-US")) / eng.sample_rate
    return f"SVOX Pico {VERSION} in {root} (voices {', '.join(sorted(VOICES))}; 'ready' spoken in {seconds:.2f} s)"


def main() -> int:
    """`python -m apps.speech.pico` (`make pico`): fetch and unpack the engine now, and say where it is."""
    return fetch_command("Fetch SVOX Pico into the cache (or save its .deb files).", save_debs, _fetch_and_speak)


if __name__ == "__main__":
    raise SystemExit(main())
