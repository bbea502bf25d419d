"""Reading users' text files the same way in every app: UTF-8, or an error naming the file and line."""

from __future__ import annotations

from pathlib import Path

from common.errors import DataError


def read_text(path: str | Path, flag: str = "") -> str:
    """The whole file as text; a missing, undecodable or empty file is a DataError naming it."""
    path = Path(path).expanduser()
    what = f"{flag} {path}" if flag else str(path)
    if not path.is_file():
        raise DataError(f"{what} not found" + ("" if path.exists() else "; check the path"))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{what} is not UTF-8 text (line {line}, byte {err.start}: {err.reason}); re-save it as "
                        f"UTF-8") from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not part of the first line


def read_text_lines(path: str | Path, flag: str = "") -> list[str]:
    """The file's lines (no line ends); see read_text for the errors."""
    return read_text(path, flag).splitlines()
