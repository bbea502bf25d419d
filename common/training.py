"""Training settings and the fit loop shared by every app: TrainConfig, seeding, precision,
optimizer + schedule, and `fit` (callbacks from common/callbacks.py, the run dir from
common/rundir.py). Apps do not call these directly: `common.pipeline.train` does.

    with RunDir(run_dir, app="speech", config=to_dict(cfg)) as run:
        model, history = fit(model, train_ds, val_ds, cfg.train, run)
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Any, Literal, Sequence

import keras
import numpy as np

from common.config import check_fields
from common.errors import DivergedError
from common.backend import enable_jax_compilation_cache
from common.callbacks import KeepEMAOnStop, make_callbacks
from common.rundir import RunDir


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # larger batches feed a GPU better but generalise slightly worse
    learning_rate: float = 1e-3  # peak LR after warmup
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"  # adamw decouples weight decay from the gradient
    weight_decay: float = 1e-4  # decoupled weight decay (AdamW's; applied the same way under adam and sgd); regularises large embeddings/recurrent weights
    schedule: Literal["constant", "cosine", "step"] = "cosine"  # cosine decays to 0 at the last epoch; step: constant for step_constant_epochs, then x step_decay every epoch
    step_decay: float = 0.8  # schedule="step": LR factor per epoch after the constant epochs (SegRNN's lradj type3: 0.8)
    step_constant_epochs: int = 4  # schedule="step": epochs at the peak LR before the decay starts (type3 as SegRNN's loop applies it: 4)
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
    ema_momentum: float = 0.0  # > 0: validate, keep and save an exponential moving average of the weights (Polyak averaging, e.g. 0.999); 0 = off

    def __post_init__(self):
        """Rejects values that would train nothing or misbehave, before any run dir exists."""
        checks = [("epochs", self.epochs >= 1, ">= 1"), ("batch_size", self.batch_size >= 1, ">= 1"),
                  ("learning_rate", self.learning_rate > 0, "> 0"), ("weight_decay", self.weight_decay >= 0, ">= 0"),
                  ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"), ("clipnorm", self.clipnorm >= 0, ">= 0 (0 disables)"),
                  ("early_stopping_patience", self.early_stopping_patience >= 0, ">= 0 (0 disables)"),
                  ("steps_per_execution", self.steps_per_execution >= 1, ">= 1"),
                  ("time_budget_minutes", self.time_budget_minutes >= 0, ">= 0 (0 = no limit)"),
                  ("ema_momentum", 0.0 <= self.ema_momentum < 1.0, "in [0, 1) (0 = off; e.g. 0.999)"),
                  ("step_decay", 0.0 < self.step_decay <= 1.0, "in (0, 1] (1 = constant)"),
                  ("step_constant_epochs", self.step_constant_epochs >= 0, ">= 0")]
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


@keras.saving.register_keras_serializable(package="lstm_suite")
class EpochStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Peak LR for `constant_epochs` epochs, then x `decay` at the start of every later epoch.

    SegRNN's `lradj=type3` (lr if epoch < 3 else lr * 0.8 ** (epoch - 3), set after each epoch
    for the next, so its epochs 1-4 run at lr and the fifth at 0.8 lr) is decay 0.8 with 4
    constant epochs. The epoch is the optimizer step // steps_per_epoch, so
    the schedule is exact under any backend and resumes with the optimizer's step counter. An
    optional linear warmup over `warmup_steps` precedes it.
    """

    def __init__(self, learning_rate: float, steps_per_epoch: int, decay: float = 0.8, constant_epochs: int = 4,
                 warmup_steps: int = 0):
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.decay = float(decay)
        self.constant_epochs = int(constant_epochs)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        epoch = keras.ops.floor(step / float(self.steps_per_epoch))
        decays = keras.ops.maximum(epoch - float(self.constant_epochs) + 1.0, 0.0)
        lr = self.learning_rate * keras.ops.power(self.decay, decays)
        if self.warmup_steps:
            lr = lr * keras.ops.minimum((step + 1.0) / float(self.warmup_steps), 1.0)
        return lr

    def get_config(self):
        return {"learning_rate": self.learning_rate, "steps_per_epoch": self.steps_per_epoch, "decay": self.decay,
                "constant_epochs": self.constant_epochs, "warmup_steps": self.warmup_steps}


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
    elif cfg.schedule == "step":
        lr = EpochStepDecay(cfg.learning_rate, steps_per_epoch, cfg.step_decay, cfg.step_constant_epochs,
                            warmup_steps)
    else:
        lr = cfg.learning_rate
    clip: dict = {"clipnorm": cfg.clipnorm} if cfg.clipnorm > 0 else {}
    if cfg.ema_momentum > 0:  # fit() swaps the average in at each epoch end (validation, checkpoints)
        clip.update(use_ema=True, ema_momentum=cfg.ema_momentum)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg.weight_decay, **clip)
    # Keras applies weight_decay decoupled (as AdamW does) for every optimizer that is given one.
    decay = {"weight_decay": cfg.weight_decay} if cfg.weight_decay > 0 else {}
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **decay, **clip)
    return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True, **decay, **clip)


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
    has_validation: bool | None = None,
    **fit_kwargs,
) -> tuple[keras.Model, dict]:
    """Fits a compiled model, restores the best validation weights, saves `model.keras`.

    `keep`: a model sharing the trained layers (e.g. the same network on shorter inputs) that is
    saved and returned instead of the one trained.

    `train_data`/`val_data` are anything `model.fit` takes (tf.data, PyDataset, arrays as a tuple).
    `monitor` may name a metric that one of `metric_callbacks` writes into the epoch logs; with
    `has_validation=True` and no `val_data`, such a callback is the validation (best checkpoint,
    early stopping).
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
    # With train.ema_momentum the averaged weights are swapped in at each epoch end, before any other
    # callback: validation, the best checkpoint and the saved model are the average's.
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if cfg.ema_momentum > 0 else []
    callbacks = (ema + list(metric_callbacks) + make_callbacks(cfg, run, monitor, mode,
                                                        has_validation=val_data is not None if has_validation is None
                                                        else has_validation)
                 + list(extra_callbacks) + ([KeepEMAOnStop()] if ema else []))
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
