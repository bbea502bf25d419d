"""Run directories: staged, locked, published whole, and never confused with folders the suite did not write.

A training run is written into `<run-dir>.partial/` and renamed to `<run-dir>/` only once every
artifact is there, so a crash never leaves a half-written run dir; `--resume` continues from what
the staging dir holds (the last epoch's backup, or a finished `model.keras` whose evaluation was
interrupted). Rules that keep users' files safe:

- A run dir carries `run.json` (the manifest: app, package versions, backend, git commit, the
  files it wrote, the model's checksum). Only a folder with that manifest (or the artifacts of an
  older suite version: `config.json` beside `model.keras`/`history.json`) is ever replaced, and
  only with `--overwrite`; a folder holding files the suite did not write is refused, as are
  `.`, its parents, the home folder and the project itself.
- The staging dir is locked (`flock`) while a training writes it: a second training into the same
  `--run-dir` fails at once instead of deleting the first one's files.
- Everything is checked before any data is loaded (`RunDir.check`), including that the place is
  writable, so a bad `--run-dir` costs seconds, not a training.

    with RunDir(args.run_dir, app="speech", config=to_dict(cfg)) as run:
        model, history = fit(model, train, val, cfg.train, run)
        run.write_json("metrics.json", metrics)
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from common.errors import RunDirError

MANIFEST = "run.json"
SUITE = "lstm-suite"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# What evaluate/export/predict add to a finished run dir; an --overwrite may delete these too.
LATER_OUTPUTS = ("eval", "export", "translations_", "forecast", "confusion_", "samples", "spotting", "generated",
                 "history.png")


def write_json(path: str | Path, obj: Any) -> None:
    """Writes JSON atomically (temp file + rename) so readers never see half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def read_json(path: Path, what: str = "") -> Any:
    """JSON of `path`, or a RunDirError naming the file when it is missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} not found{f' ({what})' if what else ''}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunDirError(f"{path} is not valid JSON ({err}); the run dir is damaged: retrain, "
                          f"or restore the file") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict | None:
    """The suite's manifest of a folder, or None when it has none (or not the suite's)."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("suite") == SUITE else None


def is_suite_run(path: Path) -> bool:
    """Whether `path` is a run dir (or staging dir) this suite wrote: its manifest, or the artifacts an
    older version wrote without one (config.json beside model.keras, history.json or backup/)."""
    path = Path(path)
    if read_manifest(path) is not None:
        return True
    return (path / "config.json").is_file() and any((path / n).exists() for n in ("model.keras", "history.json", "backup", "members"))


def foreign_entries(path: Path) -> list[str]:
    """Entries of a suite run dir that the suite did not write (a user's notes, say)."""
    manifest = read_manifest(path) or {}
    written = set(manifest.get("files", ())) | {MANIFEST}
    legacy = manifest == {}
    foreign = []
    for entry in sorted(os.listdir(path)):
        if entry in written or entry.startswith(LATER_OUTPUTS) or entry.endswith(".tmp"):
            continue
        if legacy and entry.endswith((".json", ".keras", ".csv", ".png", ".txt", ".tsv", ".h5", ".npz")):
            continue  # an older run dir lists no files: accept the kinds it wrote
        foreign.append(entry)
    return foreign


def _protected(path: Path) -> str | None:
    """Why `path` may never be used as a run dir (it would replace folders that hold other things)."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "is the current folder or one of its parents"
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        return "is the home or root folder"
    if resolved == PROJECT_ROOT or resolved in PROJECT_ROOT.parents:
        return "is the lstm-suite project folder or one of its parents"
    return None


def _writable_base(path: Path) -> Path:
    """The nearest existing ancestor of `path` (where mkdir would start)."""
    base = path.resolve().parent
    while not base.exists():
        base = base.parent
    return base


def check_writable(path: Path, what: str, flag: str = "--run-dir") -> None:
    """Raises RunDirError unless a file can be created where `path` would go (read-only file systems and
    missing permissions fail here, before any work, instead of after training)."""
    base = _writable_base(Path(path))
    try:
        handle, probe = tempfile.mkstemp(prefix=".lstm-suite-write-check-", dir=base)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise RunDirError(f"cannot write {what} under {base} ({err.strerror or err}); choose a writable {flag}") from None


def environment() -> dict:
    """Backend, package versions and git commit, recorded in every manifest."""
    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    for name in ("tensorflow", "jax"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {"backend": keras.backend.backend(), "versions": versions, "git": git_commit(),
            "host": platform.node(), "command": sys.argv}


def git_commit() -> dict | None:
    """The project's commit and whether its tracked files had changes, or None outside a git checkout."""
    if not (PROJECT_ROOT / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)} if commit else None


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class _Lock:
    """An exclusive, non-blocking `flock` on a directory, held until released (or the process dies)."""

    def __init__(self, path: Path):
        self.fd = os.open(str(path), os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(self.fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise BlockingIOError(str(path)) from None
            raise

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _locked_by_other(path: Path) -> bool:
    try:
        _Lock(path).release()
    except BlockingIOError:
        return True
    except FileNotFoundError:
        return False
    return False


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return keys


class RunDir:
    """Stages a run in `<path>.partial/` (locked while it is written) and publishes it as `<path>/`.

    Args:
        path: the final run directory.
        app: the app writing it (recorded in the manifest; an --overwrite replaces only suite runs).
        config: the run's config as a dict: written as config.json on entering; on --resume it must
            equal the staged one.
        resume: continue from `<path>.partial/` (its epoch backup, or its finished model).
        overwrite: replace an existing finished run at `path` (only a run dir this suite wrote).
        is_chief: False on the non-chief workers of a multi-worker run: they write to a scratch
            dir that is discarded.
    """

    def __init__(self, path: str | Path, app: str = "", config: dict | None = None, resume: bool = False,
                 overwrite: bool = False, is_chief: bool = True):
        self.final = Path(path)
        self.staging = self.final.with_name(self.final.name + ".partial") if self.final.name else self.final
        self.app = app
        # As JSON reads it back (tuples become lists), so a resumed run compares like with like.
        self.config = json.loads(json.dumps(config, default=_json_default)) if config is not None else None
        self.resume = resume
        self.overwrite = overwrite
        self.is_chief = is_chief
        self._lock: _Lock | None = None
        if not is_chief:
            self.staging = Path(tempfile.mkdtemp(prefix="lstm-suite-worker-"))
            self.resume = False

    @property
    def path(self) -> Path:
        return self.staging

    @property
    def backup_dir(self) -> Path:
        return self.staging / "backup"

    def check(self) -> "RunDir":
        """Raises the RunDirError that entering would raise, touching nothing: call it before long
        preparation (data, tokenizers, word vectors) so a bad or taken run dir fails in seconds."""
        if not self.is_chief:
            return self
        final, staging = self.final, self.staging
        reason = _protected(final) if str(final) else "is empty"
        if reason:
            raise RunDirError(f"--run-dir {final} {reason}; give a new folder for the run, e.g. runs/my-run")
        if final.exists() and not final.is_dir():
            raise RunDirError(f"--run-dir {final} is a file, not a folder; give a folder path for the run")
        if final.is_dir() and any(final.iterdir()):
            if not is_suite_run(final):
                raise RunDirError(f"{final} exists and holds files lstm-suite did not write (it has no {MANIFEST}); "
                                  f"choose another --run-dir (nothing was touched, and --overwrite will not touch it)")
            manifest = read_manifest(final) or {}
            what = f"a finished {manifest['app']} run" if manifest.get("app") else "a finished run"
            if not self.overwrite:
                raise RunDirError(f"{final} already holds {what}; choose another --run-dir, or pass --overwrite to "
                                  f"replace it")
            foreign = foreign_entries(final)
            if foreign:
                raise RunDirError(f"{final} holds {what} and also files lstm-suite did not write "
                                  f"({', '.join(foreign[:5])}); move them out before --overwrite replaces the run")
        if staging.exists():
            if not staging.is_dir():
                raise RunDirError(f"{staging} is a file; move it away (the run is staged there while it trains)")
            if not is_suite_run(staging) and any(staging.iterdir()):
                raise RunDirError(f"{staging} exists and holds files lstm-suite did not write; move it away or "
                                  f"choose another --run-dir (the run is staged there while it trains)")
            if _locked_by_other(staging):
                manifest = read_manifest(staging) or {}
                who = f" (pid {manifest['pid']}, started {manifest.get('started', '?')})" if "pid" in manifest else ""
                raise RunDirError(f"another training is writing {staging}{who}; wait for it to finish or choose "
                                  f"another --run-dir")
        if self.resume:
            if not self.resumable():
                raise RunDirError(f"nothing to resume in {staging} (no epoch backup or trained model there); "
                                  f"start without --resume")
            if self.config is not None and (staging / "config.json").is_file():
                staged = read_json(staging / "config.json")
                changed = config_differences(staged, self.config)
                if changed:
                    raise RunDirError(f"--resume with a different config than the staged run ({'; '.join(changed[:4])}); "
                                      f"rerun with the original --config/--set, or start afresh without --resume")
        check_writable(staging, "the run dir")
        return self

    def resumable(self) -> bool:
        """A staged state to continue from: an epoch backup, or a model whose training finished
        (here or in a SubRun), e.g. when evaluation after training was interrupted."""
        staging = self.staging
        if self.backup_dir.exists() or (staging / "model.keras").is_file():
            return True
        return any(staging.glob("*/**/backup")) or any(staging.glob("*/**/model.keras"))

    def __enter__(self) -> "RunDir":
        if not self.is_chief:
            return self
        self.check()
        if self.staging.exists() and not self.resume:
            shutil.rmtree(self.staging)  # a stale staging dir of this suite, unlocked (its training is gone)
        self.staging.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = _Lock(self.staging)
        except BlockingIOError:
            raise RunDirError(f"another training started writing {self.staging} just now; choose another "
                              f"--run-dir") from None
        self._write_manifest(status="training")
        if self.config is not None and not (self.resume and (self.staging / "config.json").is_file()):
            write_json(self.staging / "config.json", self.config)
        return self

    def _write_manifest(self, **fields) -> dict:
        manifest = read_manifest(self.staging) or {"suite": SUITE, "app": self.app, "started": _now(),
                                                   **environment()}
        manifest.update(pid=os.getpid(), **fields)
        write_json(self.staging / MANIFEST, manifest)
        return manifest

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.is_chief:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        try:
            if exc_type is not None:
                self._stopped(exc_type, exc)
                return False
            shutil.rmtree(self.backup_dir, ignore_errors=True)
            files = sorted(e for e in os.listdir(self.staging) if not e.endswith(".tmp"))
            model = self.staging / "model.keras"
            self._write_manifest(status="finished", finished=_now(), files=files,
                                 model_sha256=file_sha256(model) if model.is_file() else None)
            if self.final.exists():
                shutil.rmtree(self.final)  # check() made sure it is a suite run holding only suite files
            os.replace(self.staging, self.final)
        finally:
            self._release()
        return False

    def _stopped(self, exc_type, exc) -> None:
        """An exception ended the run: keep what --resume can continue from, remove the rest."""
        from common.errors import DivergedError, UserError

        if issubclass(exc_type, DivergedError) or not self.resumable():
            shutil.rmtree(self.staging, ignore_errors=True)
            if not issubclass(exc_type, UserError):
                print(f"\nTraining stopped ({exc_type.__name__}) before an epoch finished; nothing was kept "
                      f"(rerun the same command to start again).", file=sys.stderr)
            return
        print(f"\nTraining stopped ({exc_type.__name__}); partial state kept in {self.staging} - rerun the same "
              f"command with --resume to continue.", file=sys.stderr)

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.staging / name, obj)


class SubRun:
    """A folder inside a RunDir that `fit` can use as its run, e.g. one member of an ensemble.

    `fit` checkpoints, logs history and backs up under `<run>/<name>/`; the folder is published
    (or kept for `--resume`) with the enclosing run dir.
    """

    def __init__(self, run: RunDir, name: str):
        self.path = run.path / name
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def backup_dir(self) -> Path:
        return self.path / "backup"

    @property
    def finished(self) -> bool:
        """`fit` completed here (it writes model.keras last), so a resumed run can skip it."""
        return (self.path / "model.keras").is_file() and not self.backup_dir.exists()


def open_run_dir(run_dir: str | Path, app: str | None = None) -> Path:
    """Checks a finished run dir for evaluate/predict/export (and that `app` wrote it), with a clear error
    otherwise. Returns its path."""
    path = Path(run_dir)
    partial = path.with_name(path.name + ".partial")
    if not path.is_dir():
        if path.exists():
            raise RunDirError(f"--run-dir {path} is a file, not a run dir; pass the folder a train command wrote")
        if partial.is_dir():
            raise RunDirError(f"{path} is not finished: training stopped early (state in {partial}); rerun train "
                              f"with --resume")
        raise RunDirError(f"run dir {path} not found; train first (e.g. make train-speech) or pass the right --run-dir")
    for name in ("config.json", "model.keras"):
        if not (path / name).is_file():
            raise RunDirError(f"{path} has no {name}: it is not a run dir written by a train command")
    manifest = read_manifest(path)
    if app is not None and manifest is not None and manifest.get("app") and manifest["app"] != app:
        raise RunDirError(f"{path} holds a {manifest['app']} run, not a {app} one; use the {manifest['app']} "
                          f"commands (e.g. python -m {_module_of(manifest['app'])}.evaluate --run-dir {path})")
    if manifest is not None and manifest.get("model_sha256"):
        if file_sha256(path / "model.keras") != manifest["model_sha256"]:
            raise RunDirError(f"{path / 'model.keras'} is not the model this run trained (its checksum differs from "
                              f"{MANIFEST}); restore it or retrain")
    return path


def _module_of(app: str) -> str:
    return {"speech": "apps.speech", "sentiment": "apps.nlp.sentiment", "translation": "apps.nlp.translation",
            "forecasting": "apps.timeseries", "language_model": "apps.nlp.language_model",
            "experiments": "apps.experiments"}.get(app, f"apps.{app}")


def published_files(path: Path) -> Iterable[str]:
    return (read_manifest(path) or {}).get("files", [])
