"""Debian packages as a source of speech engines: fetch a pinned .deb, check it, unpack it in Python.

SVOX Pico (apps/speech/pico.py) and MBROLA (apps/speech/mbrola.py) are not on PyPI but are in the
Debian archive. A .deb is an `ar` archive holding a `data.tar.*`; reading it needs no root, no dpkg
and no apt, so the suite fetches the files it needs over HTTP, checks their SHA-256 and unpacks the
few members it uses into its cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from common.errors import DataError


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of a Unix `ar` archive (a .deb is one)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    return members


def extract_deb(data: bytes, wanted: dict[str, str], dest: Path) -> list[str]:
    """Writes the files of a .deb's data archive that `wanted` names to dest/<folder>/.

    `wanted` maps a name pattern to a folder: `prefix*` matches names starting with prefix,
    `*suffix` names ending with suffix, anything else the exact name.
    """
    members = _ar_members(data)
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise ValueError("no data.tar.* member in the .deb")

    def matches(base: str, pattern: str) -> bool:
        if pattern.endswith("*"):
            return base.startswith(pattern[:-1])
        if pattern.startswith("*"):
            return base.endswith(pattern[1:])
        return base == pattern

    written = []
    with tarfile.open(fileobj=io.BytesIO(members[name])) as tar:
        for info in tar.getmembers():
            base = os.path.basename(info.name)
            folder = next((f for p, f in wanted.items() if info.isfile() and matches(base, p)), None)
            if folder is not None:
                (dest / folder).mkdir(parents=True, exist_ok=True)
                with tar.extractfile(info) as src, open(dest / folder / base, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(f"{folder}/{base}")
    return written


def fetch_deb(filename: str, digest: str, url: str, env_var: str, what: str, all_files: list[str],
              leave_out: str) -> bytes:
    """The bytes of `filename`, read from the folder `$env_var` names or downloaded from `url`, checked
    against its SHA-256 `digest`. Every failure is a one-line DataError naming the fix."""
    local = os.environ.get(env_var)
    if local:
        path = Path(local) / filename
        if not path.is_file():
            raise DataError(f"{env_var}={local} has no {filename}; put the .deb files there "
                            f"({', '.join(all_files)}) or unset it to download them")
        data = path.read_bytes()
    else:
        package = filename.split("_")[0]
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as err:
            raise DataError(f"could not download {what} {package} from {url} ({err}); check the network, "
                            f"or download {', '.join(all_files)} elsewhere and set {env_var}=DIR, or leave "
                            f"{leave_out} out of data.synthetic_engines") from None
    got = hashlib.sha256(data).hexdigest()
    if got != digest:
        raise DataError(f"{filename} has SHA-256 {got[:16]}..., expected {digest[:16]}...; the download was "
                        f"corrupted or the file is another version: delete it and retry")
    return data


def fetch_command(description: str, save_debs, fetch) -> int:
    """The `python -m apps.speech.<engine> [--save-debs DIR]` command of an engine fetched as .debs:
    `save_debs(Path)` writes the verified files (returns their paths); `fetch()` unpacks the engine,
    speaks a word and returns the line to print."""
    import argparse

    from common.cli import run_command

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--save-debs", metavar="DIR", help="also write the verified .deb files to DIR")
    args = parser.parse_args()

    def body():
        if args.save_debs:
            for path in save_debs(Path(args.save_debs)):
                print(f"saved {path}")
        print(fetch())

    return run_command(body)
