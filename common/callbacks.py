"""The callbacks every training run gets: epoch backup, JSON history, NaN stop, best checkpoint,
early stopping, TensorBoard and a time budget.

None of them needs a training step's results at the end of that step, so Keras' JAX loop
dispatches step after step without waiting for the device (a callback with a plain batch-end
hook would make every step sync; TensorBoard's does).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from common.rundir import write_json


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


class KeepEMAOnStop(keras.callbacks.Callback):
    """With `SwapEMAWeights(swap_on_epoch=True)` first in the list and this one last: when a callback
    stops training before the last epoch (early stopping, time budget), the weights averaged so far
    stay the model's. Keras copies the optimizer's average slots into the model when `fit` ends,
    and at that point the slots hold the raw weights (the swap put the average in the model), so
    they are set to the model's averaged weights first (as SwapEMAWeights does after the last epoch)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and epoch < self.params["epochs"] - 1:
            optimizer = self.model.optimizer
            for var, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
                average.assign(var)


def make_callbacks(  # cfg: a common.training.TrainConfig; run: a RunDir or SubRun
    cfg, run, monitor: str = "val_loss", mode: str = "min", has_validation: bool = True
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
