"""Configs for the long-time-lag experiments: tasks, lengths, cell variants, clipping, seeds, budget.

    KERAS_BACKEND=jax python -m apps.experiments.run --config default --run-dir runs/experiments
    KERAS_BACKEND=jax python -m apps.experiments.run --config long --run-dir runs/experiments-long
    KERAS_BACKEND=jax python -m apps.experiments.run --config default --run-dir runs/x --set 'model.cells=("lstm_chrono","lstm")' --set 'sweep.seeds=(0,1,2)'

Budgets are training steps (`sweep.max_steps` batches of `optimizer.batch_size` sequences), so
a table means the same on every machine; wall time is reported beside it. Every combination of
`sweep.clipnorms` x `sweep.seeds` of one (task, T, cell variant) trains together in one compiled
loop (apps/experiments/loop.py).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from common.config import check_fields


@dataclasses.dataclass(frozen=True)
class DataConfig:
    tasks: tuple[str, ...] = ("adding", "temporal_order")  # adding (exp. 4) and temporal_order (exp. 6a) of the 1997 paper
    lengths: tuple[int, ...] = (100,)  # sequence lengths T; cost per step grows linearly with T
    validation_size: int = 1000  # fixed held-out sequences per (task, T); 1000 resolves 99% solved to +-0.3 points, costs an eval ~ 10 training steps
    seed: int = 0  # seeds the validation set; training batches are drawn fresh every step (infinite data, as in the paper)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cells: tuple[str, ...] = ("lstm_chrono", "lstm", "gru_chrono", "gru", "simple_rnn", "lstm_no_forget")  # variants: cell + optional _chrono init (apps/experiments/model.py)
    units: int = 32  # recurrent width; the paper used a few memory cells, 32 learns faster with Adam and still costs little per step
    chrono_t_max: int = 0  # chrono time scale t_max (biases log U[1, t_max-1]); 0 = the sequence length T (Tallec & Ollivier's choice)
    recurrent_scale: float = 1.0  # gain of the orthogonal recurrent kernel; > 1 makes gradients explode (the clipping demo)

    def __post_init__(self):
        check_fields(self, "model", [("units", self.units >= 1, ">= 1"),
                                     ("chrono_t_max", self.chrono_t_max == 0 or self.chrono_t_max > 2, "0 (= T) or > 2"),
                                     ("recurrent_scale", self.recurrent_scale > 0, "> 0")])


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    optimizer: Literal["adam", "sgd"] = "adam"  # adam normalises step sizes (robust); plain sgd shows exploding gradients as divergence
    learning_rate: float = 3e-3  # constant; 3e-3 solved T=100..1000 with chrono LSTMs in our runs, higher trades stability for speed
    batch_size: int = 32  # sequences per step; "sequences to solve" = steps x this, the paper's unit (it trained on single sequences)

    def __post_init__(self):
        check_fields(self, "optimizer", [("learning_rate", self.learning_rate > 0, "> 0"),
                                         ("batch_size", self.batch_size >= 1, ">= 1")])


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    clipnorms: tuple[float, ...] = (0.0, 1.0)  # global-norm gradient clipping per run; 0 = off (exploding gradients stay visible)
    seeds: tuple[int, ...] = (0,)  # one run per seed (initial weights and training-data stream); 3 seeds show what is robust
    max_steps: int = 3000  # training-step budget per run; the paper needed 74k (T=100) to 853k (T=1000) sequences
    eval_every: int = 100  # steps between validation checks; the resolution of "steps to solve"
    steps_per_call: int = 50  # training steps per compiled call (divides eval_every); larger = fewer host round trips, more input memory
    solve_fraction: float = 0.99  # solved = this share of validation sequences correct (paper: all of the last 2000)
    gradient_batch: int = 64  # validation sequences used to measure ||dLoss/dh_t|| at initialisation and after training
    workers: int = 0  # processes training groups side by side (one core each); 0 = one per CPU core, 1 = in this process

    def __post_init__(self):
        check_fields(self, "sweep", [
            ("max_steps", self.max_steps >= 1, ">= 1"), ("eval_every", self.eval_every >= 1, ">= 1"),
            ("steps_per_call", self.steps_per_call >= 1, ">= 1"),  # dividing eval_every: run.validate (cross-field)
            ("solve_fraction", 0 < self.solve_fraction <= 1, "in (0, 1]"),
            ("gradient_batch", self.gradient_batch >= 1, ">= 1"), ("workers", self.workers >= 0, ">= 0 (0 = one per core)"),
            ("clipnorms", bool(self.clipnorms) and min(self.clipnorms) >= 0, "non-empty, each >= 0 (0 disables)"),
            ("seeds", bool(self.seeds) and len(set(self.seeds)) == len(self.seeds), "non-empty and distinct"),
        ])


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    sweep: SweepConfig = SweepConfig()


PRESETS = {
    # Seconds, for tests: both tasks, chrono, with and without clipping, two seeds; decides nothing.
    "tiny": Config(
        data=DataConfig(lengths=(20,), validation_size=64),
        model=ModelConfig(cells=("lstm_chrono",), units=4),
        optimizer=OptimizerConfig(batch_size=8),
        sweep=SweepConfig(clipnorms=(0.0, 1.0), seeds=(0, 1), max_steps=4, eval_every=2, steps_per_call=2,
                          gradient_batch=8, workers=1),
    ),
    # `make experiments`: T=100, both tasks, six cell variants, with and without clipping (24 runs).
    "default": Config(sweep=SweepConfig(max_steps=8000, eval_every=100, steps_per_call=50)),
    # `make experiments-long`: T=500 and T=1000, chrono LSTM vs default LSTM vs GRU (both inits), clipped, one seed.
    "long": Config(
        data=DataConfig(lengths=(500, 1000)),
        model=ModelConfig(cells=("lstm_chrono", "lstm", "gru_chrono", "gru")),
        sweep=SweepConfig(clipnorms=(1.0,), max_steps=10000, eval_every=250, steps_per_call=25),
    ),
    # `make experiments-clipping`: exploding gradients. A SimpleRNN whose recurrent kernel has gain 2
    # under plain SGD (lr 0.3) on temporal order at T=20: without clipping the rare huge gradient
    # steps (global norm up to ~400) throw it off and it stalls above the chance loss; clipped to
    # norm 1 it learns. The LSTM beside it learns either way. Three seeds.
    "clipping": Config(
        data=DataConfig(tasks=("temporal_order",), lengths=(20,)),
        model=ModelConfig(cells=("simple_rnn", "lstm"), recurrent_scale=2.0),
        optimizer=OptimizerConfig(optimizer="sgd", learning_rate=0.3),
        sweep=SweepConfig(clipnorms=(0.0, 1.0), seeds=(0, 1, 2), max_steps=1500, eval_every=100, steps_per_call=50),
    ),
    # The long grid plus T=100, five seeds, more budget: for a lent GPU (hours on 2 CPU cores).
    "gpu": Config(
        data=DataConfig(lengths=(100, 500, 1000), validation_size=2000),
        model=ModelConfig(cells=("lstm_chrono", "lstm", "gru_chrono", "gru", "lstm_no_forget")),
        sweep=SweepConfig(clipnorms=(0.0, 1.0), seeds=(0, 1, 2, 3, 4), max_steps=20000, eval_every=250,
                          steps_per_call=50, gradient_batch=128),
    ),
}
