"""Training plumbing shared by every app: seeding, precision, optimizer + schedule,
callbacks, resumable run directories and the fit loop.

A run directory is staged in `<run-dir>.partial/` while training and renamed to
`<run-dir>/` only once every artifact is written, so a crash never leaves a
half-written run dir; `--resume` continues from the staged backup.

    with RunDir(args.run_dir, resume=args.resume) as run:
        save_config(cfg, run.path / "config.json")
        model, history = fit(model, train_ds, val_ds, cfg.train, run)
        run.write_json("metrics.json", metrics)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import keras
import numpy as np

from common.config import ConfigError, check_fields
from common.errors import DivergedError
from common.rundir import RunDir, RunDirError, SubRun, open_run_dir, write_json  # noqa: F401  (re-exported)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # larger batches feed a GPU better but generalise slightly worse
    learning_rate: float = 1e-3  # peak LR after warmup
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"  # adamw decouples weight decay from the gradient
    weight_decay: float = 1e-4  # adamw only; regularises large embeddings/recurrent weights
    schedule: Literal["constant", "cosine"] = "cosine"  # cosine decays to 0 at the last epoch
    warmup_epochs: float = 0.0  # linear warmup; helps large batches and attention models start stably
    clipnorm: float = 1.0  # global-norm gradient clipping guards RNNs against exploding gradients; 0 disables
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # mixed saves memory on GPU; RNN cells stay float32
    early_stopping_patience: int = 0  # epochs without val improvement before stopping; 0 disables
    seed: int = 0  # seeds Python, NumPy and the backend
    tensorboard: bool = False  # write TensorBoard logs under <run-dir>/tensorboard
    steps_per_execution: int = 1  # >1 runs several steps per compiled call, fewer host round trips on GPU
    distribution: Literal["none", "mirrored", "multi_worker", "data_parallel"] = "none"  # see common/distribute.py
    lr_scaling: Literal["none", "linear", "sqrt"] = "linear"  # LR x replicas keeps per-example step size as the global batch grows
    time_budget_minutes: float = 0.0  # stop after the epoch whose successor would overrun this; 0 = no limit (LR schedule unchanged)

    def __post_init__(self):
        """Rejects values that would train nothing or misbehave, before any run dir exists."""
        checks = [("epochs", self.epochs >= 1, ">= 1"), ("batch_size", self.batch_size >= 1, ">= 1"),
                  ("learning_rate", self.learning_rate > 0, "> 0"), ("weight_decay", self.weight_decay >= 0, ">= 0"),
                  ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"), ("clipnorm", self.clipnorm >= 0, ">= 0 (0 disables)"),
                  ("early_stopping_patience", self.early_stopping_patience >= 0, ">= 0 (0 disables)"),
                  ("steps_per_execution", self.steps_per_execution >= 1, ">= 1"),
                  ("time_budget_minutes", self.time_budget_minutes >= 0, ">= 0 (0 = no limit)")]
        check_fields(self, "train", checks)


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and the backend RNG in one call."""
    keras.utils.set_random_seed(int(seed))


def configure_precision(precision: str) -> None:
    """Sets the global dtype policy. RecurrentStack keeps its cells float32 under mixed_bfloat16."""
    keras.mixed_precision.set_global_policy(precision)


def progress_verbosity() -> int:
    """A live progress bar on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int, dist=None) -> keras.optimizers.Optimizer:
    """Optimizer with optional linear warmup + cosine decay and global-norm clipping.

    With a `common.distribute.Distribution`, the peak LR is scaled by its `lr_factor`.
    """
    if dist is not None and dist.lr_factor != 1.0:
        cfg = dataclasses.replace(cfg, learning_rate=cfg.learning_rate * dist.lr_factor)
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "cosine":
        lr: Any = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else cfg.learning_rate,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=cfg.learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    else:
        lr = cfg.learning_rate
    clip = {"clipnorm": cfg.clipnorm} if cfg.clipnorm > 0 else {}
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg.weight_decay, **clip)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **clip)
    return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True, **clip)


# Exceptions that mean a user mistake: entry points print them as one line and exit 2.
USER_ERRORS = (ConfigError, RunDirError, ValueError, FileNotFoundError)


def report_user_error(err: BaseException) -> int:
    """Prints `error: ...` to stderr and returns the exit code for a user mistake."""
    print(f"error: {err}", file=sys.stderr)
    return 2


class JSONHistory(keras.callbacks.Callback):
    """Appends each epoch's logs (+ seconds taken) to history.json, surviving resume."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.history: dict[str, list] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logs["epoch"] = epoch + 1
        lr = getattr(self.model.optimizer, "learning_rate", None)
        if lr is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        write_json(self.path, self.history)


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch whose successor would end past `minutes` since training began.

    The next epoch is predicted from the last one's *steady* step time (the median training
    step, times the steps per epoch) plus its validation time, so the first epoch's
    compilation, which can dwarf the steady epochs on a GPU, does not end training early.
    The learning-rate schedule is not shortened: a budget that cuts many epochs leaves the
    LR undecayed, so size `epochs` to the budget where you can. The best validation weights
    are restored as usual.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = float(minutes) * 60.0
        self._train_start = self._last = 0.0
        self._steps: list[float] = []

    def on_train_begin(self, logs=None):
        self._train_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._steps = []
        self._last = time.perf_counter()

    # Timed at each batch's start, a hook that gets no logs: a batch-end hook would make Keras wait
    # for every step's results (see make_callbacks).
    def on_train_batch_begin(self, batch, logs=None):
        now = time.perf_counter()
        if batch > 0:
            self._steps.append(now - self._last)
        self._last = now

    def predicted_epoch_seconds(self, epoch_end: float) -> float:
        """Median step x steps + the time after the last step (validation, callbacks)."""
        if not self._steps:
            return 0.0
        return float(np.median(self._steps)) * len(self._steps) + (epoch_end - self._last)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        if now - self._train_start + self.predicted_epoch_seconds(now) > self.seconds:
            self.model.stop_training = True
            print(f"time budget: stopping after epoch {epoch + 1} ({(now - self._train_start) / 60:.1f} of "
                  f"{self.seconds / 60:.1f} minutes used; another epoch would overrun)", flush=True)


class StopOnNaN(keras.callbacks.Callback):
    """Stops training after an epoch whose mean loss is NaN or infinite (a NaN step makes the mean NaN).

    Keras' `TerminateOnNaN` checks every step, which makes the JAX loop wait for each step's loss.
    Run off the training thread instead (`async_safe`), it raced with the loop: under JAX a
    callback's `self.model` syncs the model state, and doing that from Keras' callback thread while
    the loop donates the same buffers failed in CI ("buffer has been deleted or donated"). Checking
    at the epoch's end, on the training thread, costs at most the rest of that epoch.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"epoch {epoch + 1}: loss is {loss}; stopping training", flush=True)
            self.model.stop_training = True


def _epoch_only(callback: keras.callbacks.Callback) -> keras.callbacks.Callback:
    """Marks a Keras checkpoint callback that saves per epoch as async-safe: its batch-end hook then
    only counts batches and never touches `self.model` (which, under JAX, would sync the state from
    Keras' callback thread; see StopOnNaN)."""
    if callback.save_freq != "epoch":
        raise ValueError(f"{type(callback).__name__} must save per epoch to run off the training thread")
    callback.async_safe = True
    return callback


def make_callbacks(
    cfg: TrainConfig, run: RunDir, monitor: str = "val_loss", mode: str = "min", has_validation: bool = True
) -> list[keras.callbacks.Callback]:
    """The run's callbacks. None of them needs a training step's results at the end of that step,
    so Keras' JAX loop dispatches step after step without waiting for the device (one callback
    with a plain batch-end hook would make every step sync; cfg.tensorboard's does)."""
    callbacks: list[keras.callbacks.Callback] = [
        _epoch_only(keras.callbacks.BackupAndRestore(str(run.backup_dir))),
        JSONHistory(run.path / "history.json"),
        keras.callbacks.CSVLogger(str(run.path / "history.csv"), append=True),
        StopOnNaN(),
    ]
    if has_validation:
        callbacks.append(_epoch_only(
            keras.callbacks.ModelCheckpoint(
                str(run.path / "best.weights.h5"), monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True
            )
        ))
        if cfg.early_stopping_patience > 0:
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience)
            )
    if cfg.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run.path / "tensorboard")))
    if cfg.time_budget_minutes > 0:
        callbacks.append(TimeBudget(cfg.time_budget_minutes))
    return callbacks


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


def fit(
    model: keras.Model,
    train_data: Any,
    val_data: Any,
    cfg: TrainConfig,
    run: RunDir,
    monitor: str = "val_loss",
    mode: str = "min",
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    dist=None,
    metric_callbacks: Sequence[keras.callbacks.Callback] = (),
    keep: keras.Model | None = None,
    **fit_kwargs,
) -> tuple[keras.Model, dict]:
    """Fits a compiled model, restores the best validation weights, saves `model.keras`.

    `keep`: a model sharing the trained layers (e.g. the same network on shorter inputs) that is
    saved and returned instead of the one trained.

    `train_data`/`val_data` are anything `model.fit` takes (tf.data, PyDataset, arrays as a tuple).
    `monitor` may name a metric that one of `metric_callbacks` writes into the epoch logs.
    Arrays are batched with the global batch size of `dist` (a `common.distribute.Distribution`);
    datasets must already be batched with `dist.global_batch_size`.
    Returns the model and the history dict (also written to history.json).
    """
    keep = keep if keep is not None else model
    history_path = run.path / "history.json"
    if (run.path / "model.keras").is_file() and not run.backup_dir.exists():
        # A resumed run whose training had finished (it was stopped during evaluation): use its model.
        print(f"training had finished: continuing from {run.path / 'model.keras'}", flush=True)
        trained = keras.models.load_model(str(run.path / "model.keras"), compile=False)
        keep.set_weights(trained.get_weights())
        return keep, json.loads(history_path.read_text()) if history_path.exists() else {}
    # metric_callbacks run first at each epoch end, so the metrics they add to the logs (e.g. a
    # validation BLEU) reach the history, the best checkpoint and early stopping.
    callbacks = (list(metric_callbacks) + make_callbacks(cfg, run, monitor, mode, has_validation=val_data is not None)
                 + list(extra_callbacks))
    enable_jax_compilation_cache()
    if dist is not None:
        from common.distribute import prepare_model, shardable

        prepare_model(model, dist)
        train_data, val_data = shardable(train_data, dist), shardable(val_data, dist)
    if isinstance(train_data, tuple):
        x, y = train_data[0], train_data[1]
        fit_kwargs.setdefault("batch_size", dist.global_batch_size if dist is not None else cfg.batch_size)
        fit_kwargs.setdefault("shuffle", True)
    else:
        x, y = train_data, None
    model.fit(
        x, y, validation_data=val_data, epochs=cfg.epochs, callbacks=callbacks,
        verbose=progress_verbosity(), **fit_kwargs,
    )
    if dist is not None and dist.mode == "data_parallel":
        # Evaluation after training sees arbitrary batch sizes; it runs on one device.
        keras.distribution.set_distribution(None)
    best = run.path / "best.weights.h5"
    if best.exists():
        model.load_weights(str(best))
        best.unlink()
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    check_finite(keep, history, cfg)
    keep.save(str(run.path / "model.keras"))
    return keep, history


WEIGHT_LIMIT = 1e8


def check_finite(model: keras.Model, history: dict, cfg: TrainConfig) -> None:
    """Raises DivergedError when training left non-finite weights (or never had a finite loss):
    such a model must not be published as a finished run."""
    losses = [float(v) for v in history.get("loss", [])]
    # Weights this large only come from an exploding update (a sane network's stay below ~1e2).
    bad_weights = [w.path for w in model.weights
                   if not np.all(np.abs(keras.ops.convert_to_numpy(w.value).astype("float64")) < WEIGHT_LIMIT)]
    if bad_weights or (losses and not any(np.isfinite(losses))):
        shown = ", ".join(f"{v:.3g}" for v in losses[-3:])
        raise DivergedError(
            f"training diverged (loss per epoch ends {shown}; {len(bad_weights)} weight tensors are NaN, inf "
            f"or beyond {WEIGHT_LIMIT:.0e}), so "
            f"nothing was published; lower train.learning_rate (now {cfg.learning_rate:g}) or keep "
            f"train.clipnorm > 0 (now {cfg.clipnorm:g})")


def steps_for(num_examples: int, batch_size: int) -> int:
    return max(1, math.ceil(num_examples / batch_size))


def add_train_flags(parser) -> None:
    """Flags every train script shares beyond --config/--set/--run-dir."""
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from <run-dir>.partial")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing finished run dir")


def print_summary(title: str, run_dir: Path, metrics: dict, files: Iterable[str]) -> None:
    """The closing lines of every train script: where the results are."""
    print(f"\n== {title} ==")
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    print(f"Run dir: {run_dir}")
    for name in files:
        if (run_dir / name).exists():
            print(f"  {run_dir / name}")


def load_model(run_dir: str | Path) -> keras.Model:
    """The trained model of a finished run dir (custom layers are registered by importing common.layers)."""
    import common.cells  # noqa: F401  (registers the serializable cells and layers)
    import common.layers  # noqa: F401

    path = open_run_dir(run_dir)
    enable_jax_compilation_cache()
    return keras.models.load_model(str(path / "model.keras"), compile=False)
