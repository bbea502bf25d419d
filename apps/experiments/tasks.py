"""Long-time-lag benchmark tasks of Hochreiter & Schmidhuber (1997), generated in code.

Both tasks put the information that decides the target early in the sequence and ask
for the answer only at the end, so a model must carry it across (almost) T steps.

- Adding problem (paper's experiment 4): pairs (value in [-1, 1], marker). Exactly two
  pairs are marked with 1.0: one among the first 10 (X1), one among the first T/2 - 1
  (X2); the first and last pair carry marker -1 (unless the first one is marked, in
  which case its value counts as 0). Target: `0.5 + (X1 + X2) / 4` at the last step.
  A sequence counts as correct when the absolute error is below 0.04.
- Temporal order problem (experiment 6a): one-hot symbols over {E, B, a, b, c, d, X, Y};
  the sequence starts with E, ends with B, is filled with random a-d, except that
  positions t1 in [0.1T, 0.2T] and t2 in [0.5T, 0.6T] hold X or Y. The class is the
  order: XX -> 0 (Q), XY -> 1 (R), YX -> 2 (S), YY -> 3 (U).

One deviation from the paper: sequences have a fixed length T (the paper draws lengths
in [T, 1.1T]) so batches need no padding; the lags scale with T exactly as in the paper.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

TASKS = ("adding", "temporal_order")
SYMBOLS = ("E", "B", "a", "b", "c", "d", "X", "Y")
ADDING_TOLERANCE = 0.04  # The paper's "processed correctly" bound on the absolute error.


def adding_problem(rng: np.random.Generator, batch_size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns inputs `[batch, length, 2]` (value, marker) and targets `[batch, 1]` in [0, 1]."""
    if length < 20:
        raise ValueError(f"the adding problem needs length >= 20 (X2 is drawn from the first T/2 - 1), got {length}")
    values = rng.uniform(-1.0, 1.0, size=(batch_size, length)).astype("float32")
    markers = np.zeros((batch_size, length), dtype="float32")
    markers[:, 0] = -1.0
    markers[:, -1] = -1.0
    rows = np.arange(batch_size)
    first = rng.integers(0, 10, size=batch_size)
    # X2: one of the first T/2 - 1 pairs that is not already marked.
    second = rng.integers(0, length // 2 - 2, size=batch_size)
    second = np.where(second >= first, second + 1, second)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    # The paper sets the value to zero when the first pair of the sequence is the marked one.
    x1 = np.where(first == 0, 0.0, values[rows, first])
    x2 = np.where(second == 0, 0.0, values[rows, second])
    targets = (0.5 + (x1 + x2) / 4.0).astype("float32")[:, None]
    return np.stack([values, markers], axis=-1), targets


def temporal_order_problem(rng: np.random.Generator, batch_size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns one-hot inputs `[batch, length, 8]` and class ids `[batch]` in {0, 1, 2, 3}."""
    if length < 20:
        raise ValueError(f"the temporal order problem needs length >= 20, got {length}")
    symbols = rng.integers(2, 6, size=(batch_size, length))  # a, b, c, d
    symbols[:, 0] = SYMBOLS.index("E")
    symbols[:, -1] = SYMBOLS.index("B")
    rows = np.arange(batch_size)
    t1 = rng.integers(int(0.1 * length), int(0.2 * length) + 1, size=batch_size)
    t2 = rng.integers(int(0.5 * length), int(0.6 * length) + 1, size=batch_size)
    first_is_y = rng.integers(0, 2, size=batch_size)
    second_is_y = rng.integers(0, 2, size=batch_size)
    symbols[rows, t1] = SYMBOLS.index("X") + first_is_y
    symbols[rows, t2] = SYMBOLS.index("X") + second_is_y
    inputs = np.eye(len(SYMBOLS), dtype="float32")[symbols]
    labels = (2 * first_is_y + second_is_y).astype("int32")
    return inputs, labels


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What the runner needs to know about a task: generator, loss, output head and headline metric."""

    name: str
    generate: Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]
    input_dim: int
    output_dim: int
    loss: str
    metric: str  # The headline validation metric written to the table; higher is better.


TASK_SPECS = {
    "adding": TaskSpec("adding", adding_problem, 2, 1, "mse", "fraction_within_0.04"),
    "temporal_order": TaskSpec("temporal_order", temporal_order_problem, len(SYMBOLS), 4,
                               "sparse_categorical_crossentropy", "accuracy"),
}


def baseline_predictions(task: str, num_examples: int) -> np.ndarray:
    """The best input-blind guess: 0.5 for adding (MSE about 0.04, ~15% within 0.04), uniform classes otherwise."""
    if task == "adding":
        return np.full((num_examples, 1), 0.5, dtype="float32")
    return np.full((num_examples, 4), 0.25, dtype="float32")


def get_task(name: str) -> TaskSpec:
    if name not in TASK_SPECS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASK_SPECS[name]


def score(task: str, predictions: np.ndarray, targets: np.ndarray) -> dict:
    """Validation metrics: adding -> MSE and fraction within 0.04; temporal order -> accuracy."""
    if task == "adding":
        error = np.asarray(predictions, dtype="float64").reshape(-1) - np.asarray(targets, dtype="float64").reshape(-1)
        return {
            "mse": float(np.mean(error**2)),
            "fraction_within_0.04": float(np.mean(np.abs(error) < ADDING_TOLERANCE)),
        }
    labels = np.asarray(targets).reshape(-1)
    probabilities = np.asarray(predictions, dtype="float64")
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {
        "accuracy": float(np.mean(probabilities.argmax(-1) == labels)),
        "crossentropy": float(-np.mean(np.log(picked))),
    }
