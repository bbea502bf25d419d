"""Backend set-up shared by every entry point: the JAX compilation cache."""

from __future__ import annotations

import os
from pathlib import Path

import keras


def enable_jax_compilation_cache() -> Path | None:
    """Under JAX, keeps compiled XLA programs on disk so a rerun (or evaluate after train) skips compiling.

    On the GPU the first epoch's compilations of every batch shape took 1-3 minutes, more than
    the steady epochs together; with the cache a rerun of the same shapes reuses them (on CPU a
    compile-bound IMDB smoke run went from 19 s to 7 s for its first epoch). Location:
    `$LSTM_SUITE_JAX_CACHE`, default `<cache dir>/jax` (`~/.cache/lstm-suite/jax`); set it to
    `0` to disable. Programs that compile in under a second are not cached (JAX's default,
    `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`). Returns the folder, or None when off.
    """
    if keras.backend.backend() != "jax":
        return None
    setting = os.environ.get("LSTM_SUITE_JAX_CACHE", "")
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    import jax

    from common.data import cache_dir

    folder = Path(setting).expanduser() if setting else cache_dir() / "jax"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder
