"""Locating the shared real datasets and extracting archives into a user cache.

Real data lives in `../shared/data/` beside the project (or `$LSTM_SUITE_DATA`).
Archives (`.tar.xz`, `.zip`) are extracted once into `$LSTM_SUITE_CACHE`
(default `~/.cache/lstm-suite/`), as a user's download would be; never into the repo.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

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
        raise FileNotFoundError(
            "shared real-data folder not found: expected ../shared/data beside the project "
            "or a path in $LSTM_SUITE_DATA"
        )
    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} not found in the shared data folder (see {root / 'README.md'})")
    return path


def cache_dir() -> Path:
    path = Path(os.environ.get("LSTM_SUITE_CACHE", Path.home() / ".cache" / "lstm-suite"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract_archive(archive: str | Path, cache: Path | None = None) -> Path:
    """Extracts `archive` once into `<cache>/<archive stem>/` and returns that folder.

    Extraction goes to a temporary sibling first and is renamed into place, so a crash
    or a concurrent test worker never sees a half-extracted tree.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} not found")
    stem = archive.name
    for suffix in (".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = (cache or cache_dir()) / stem
    if (target / ".complete").exists():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=target.parent))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        (tmp / ".complete").write_text(str(archive) + "\n")
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
    return target
