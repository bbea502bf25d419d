"""Configs for the long-time-lag experiments: which tasks/lengths/cells/clipping to sweep, the budget, presets.

    python -m apps.experiments.run --config default --run-dir runs/experiments
    python -m apps.experiments.run --config gpu --run-dir runs/experiments-gpu --set 'model.cells=("lstm","gru")'

`train` holds the optimizer settings shared by every run of the sweep; its `clipnorm`
is replaced per run by each value of `sweep.clipnorms` (0 = no clipping).
"""

from __future__ import annotations

import dataclasses

from common.training import TrainConfig


@dataclasses.dataclass(frozen=True)
class DataConfig:
    tasks: tuple[str, ...] = ("adding", "temporal_order")  # adding (exp. 4) and temporal_order (exp. 6a) of the 1997 paper
    lengths: tuple[int, ...] = (100,)  # sequence lengths T; cost per step grows linearly with T
    validation_size: int = 1000  # fixed held-out sequences per (task, T); more gives a finer solve fraction but slower evals
    seed: int = 0  # seeds the validation set; training batches are drawn fresh every step (infinite data, as in the paper)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cells: tuple[str, ...] = ("simple_rnn", "lstm", "gru", "lstm_no_forget")  # cell types compared
    units: int = 32  # recurrent width; the paper used far fewer (a few memory cells), wider learns faster with Adam


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    clipnorms: tuple[float, ...] = (0.0, 1.0)  # global-norm gradient clipping per run; 0 = off (exploding gradients stay visible)
    max_steps: int = 3000  # training-step budget per run; the paper needed 74k (T=100) to 853k (T=1000) sequences
    eval_every: int = 100  # steps between validation checks; also the resolution of "steps to solve"
    max_seconds_per_run: float = 0.0  # wall-clock cap per run so a preset fits its time budget; 0 = steps only
    solve_fraction: float = 0.99  # solved = this share of validation sequences correct (paper: all of the last 2000)
    gradient_batch: int = 64  # sequences used to measure |dLoss/dh_t| at initialisation and after training


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    sweep: SweepConfig = SweepConfig()
    train: TrainConfig = TrainConfig(
        batch_size=32, learning_rate=3e-3, optimizer="adam", schedule="constant", clipnorm=0.0, weight_decay=0.0
    )


PRESETS = {
    # Seconds on a laptop: every code path (both tasks, the custom cell, clipping), decides nothing.
    "tiny": Config(
        data=DataConfig(tasks=("adding", "temporal_order"), lengths=(20,), validation_size=64),
        model=ModelConfig(cells=("lstm", "lstm_no_forget"), units=4),
        sweep=SweepConfig(clipnorms=(1.0,), max_steps=4, eval_every=2, gradient_batch=8),
        train=TrainConfig(batch_size=8, learning_rate=3e-3, optimizer="adam", schedule="constant",
                          clipnorm=0.0, weight_decay=0.0),
    ),
    # `make experiments`: T=100 for every cell, with and without clipping, in about 10 minutes on 2 CPU cores.
    "default": Config(sweep=SweepConfig(max_steps=3000, max_seconds_per_run=25.0)),
    # The paper's lengths (48 runs): minutes per run on one GPU, hours for the grid; narrow it with
    # --set model.cells=... / data.lengths=(1000,). Not yet run (no GPU was available when written).
    "gpu": Config(
        data=DataConfig(lengths=(100, 500, 1000), validation_size=2000),
        model=ModelConfig(units=64),
        sweep=SweepConfig(max_steps=20000, eval_every=250, gradient_batch=128),
        train=TrainConfig(batch_size=128, learning_rate=1e-3, optimizer="adam", schedule="constant",
                          clipnorm=0.0, weight_decay=0.0),
    ),
}
