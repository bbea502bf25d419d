"""Locating the shared real datasets and extracting archives into a user cache.

Real data lives in `../shared/data/` beside the project (or `$LSTM_SUITE_DATA`).
Archives (`.tar.xz`, `.zip`) are extracted once into `$LSTM_SUITE_CACHE`
(default `~/.cache/lstm-suite/`), as a user's download would be; never into the repo. The
extraction is keyed by the archive's content, so a changed archive is read afresh.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

from common.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """The shared real-data folder, or None when it is not present on this machine."""
    env = os.environ.get("LSTM_SUITE_DATA")
    candidate = Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def require_shared_data(relative: str) -> Path:
    """Path to a file/folder under the shared data dir, or a clear error saying where it was looked for."""
    root = shared_data_dir()
    if root is None:
        raise DataError(
            "shared real-data folder not found: expected ../shared/data beside the project "
            "or a path in $LSTM_SUITE_DATA"
        )
    path = root / relative
    if not path.exists():
        raise DataError(f"{path} not found in the shared data folder (see {root / 'README.md'})")
    return path


def cache_dir() -> Path:
    path = Path(os.environ.get("LSTM_SUITE_CACHE", Path.home() / ".cache" / "lstm-suite"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _archive_key(archive: Path) -> str:
    """A short content key of an archive: its size, mtime and a hash of its bytes (cached by size+mtime)."""
    import hashlib

    stat = archive.stat()
    digest = hashlib.sha256()
    with open(archive, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{stat.st_size}-{digest.hexdigest()[:16]}"


@contextlib.contextmanager
def building(target: Path, prefix: str, marker: str = "ok\n") -> Iterator[Path]:
    """A temporary sibling folder of `target` to fill; when the block ends without an error it gets a
    `.complete` marker (`marker` as its text) and is renamed to `target`, so a crash, an error or a
    concurrent process never leaves a half-built `target` (a process that finished first wins). The
    temporary folder is removed in every case.

        with building(cache / "voices-1.0", ".voices-") as tmp:
            (tmp / "voice.bin").write_bytes(data)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield tmp
        (tmp / ".complete").write_text(marker)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first (or a stale partial copy exists).
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _archive_stem(archive: Path) -> str:
    stem = archive.name
    for suffix in (".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def extract_archive(archive: str | Path, cache: Path | None = None) -> Path:
    """Extracts `archive` once into `<cache>/<archive stem>-<content key>/` and returns that folder.

    The folder is keyed by the archive's content (size and a hash of its bytes), so two archives
    with the same name, or one updated in place, never share an extraction. Extraction goes to a
    temporary sibling first and is renamed into place, so a crash or a concurrent test worker
    never sees a half-extracted tree. A damaged archive is a DataError naming it.
    """
    import gzip
    import lzma

    from common.errors import DataError

    archive = Path(archive)
    if not archive.is_file():
        raise DataError(f"archive {archive} not found")
    stem = _archive_stem(archive)
    root = cache or cache_dir()
    target = root / f"{stem}-{_archive_key(archive)}"
    if (target / ".complete").exists():
        return target
    with building(target, f".{stem}-", f"{archive.resolve()}\n") as tmp:
        try:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tf:
                    tf.extractall(tmp, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, lzma.LZMAError) as err:
            raise DataError(f"cannot extract {archive}: {err or type(err).__name__}; the archive is damaged or not a "
                            f".tar.xz/.tar.gz/.zip: download or build it again") from None
    return target
