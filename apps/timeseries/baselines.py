"""Baselines that run beside every model: naive, seasonal naive and a DLinear-style linear model.

All take scaled input windows `x[n, input_length, channels]` and return `[n, horizon, channels]`.
The linear model follows DLinear (Zeng et al. 2023): a moving-average split into trend and
remainder, one linear map per part shared over channels; it is fitted in closed form
(ridge least squares), which reaches the training optimum that DLinear's SGD approximates.
"""

from __future__ import annotations

import numpy as np


def naive(x: np.ndarray, horizon: int) -> np.ndarray:
    """Repeats the last observed value."""
    return np.repeat(x[:, -1:, :], horizon, axis=1)


def seasonal_naive(x: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Repeats the last observed season; falls back to naive when the period exceeds the window."""
    length = x.shape[1]
    if period < 2 or period > length:
        return naive(x, horizon)
    steps = length - period + (np.arange(horizon) % period)
    return x[:, steps, :]


def moving_average(x: np.ndarray, kernel: int) -> np.ndarray:
    """DLinear's trend: a centred moving average over time with edge values repeated."""
    front = np.repeat(x[:, :1], (kernel - 1) // 2, axis=1)
    back = np.repeat(x[:, -1:], kernel // 2, axis=1)
    padded = np.concatenate([front, x, back], axis=1)
    cumsum = np.cumsum(np.pad(padded, ((0, 0), (1, 0), (0, 0))), axis=1)
    return (cumsum[:, kernel:] - cumsum[:, :-kernel]) / kernel


class DLinear:
    """Trend/remainder decomposition + shared linear maps, fitted by ridge regression.

    Args:
        kernel: moving-average width (DLinear uses 25), capped at the window length.
        ridge: L2 penalty relative to the mean feature energy; keeps the solve well posed.
    """

    def __init__(self, kernel: int = 25, ridge: float = 1e-5):
        self.kernel = kernel
        self.ridge = ridge
        self.weights: np.ndarray | None = None

    def _features(self, x: np.ndarray) -> np.ndarray:
        kernel = max(1, min(self.kernel, x.shape[1]))
        trend = moving_average(x, kernel)
        parts = np.concatenate([x - trend, trend], axis=1)  # [n, 2*length, channels]
        rows = np.transpose(parts, (0, 2, 1)).reshape(-1, parts.shape[1])  # channel-independent rows
        return np.concatenate([rows, np.ones((len(rows), 1))], axis=1).astype(np.float64)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "DLinear":
        features = self._features(x)
        targets = np.transpose(y, (0, 2, 1)).reshape(-1, y.shape[1]).astype(np.float64)
        gram = features.T @ features
        penalty = self.ridge * np.trace(gram) / len(gram)
        self.weights = np.linalg.solve(gram + penalty * np.eye(len(gram)), features.T @ targets)
        self.horizon = y.shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise ValueError("DLinear.predict called before fit")
        out = self._features(x) @ self.weights  # [n*channels, horizon]
        return np.transpose(out.reshape(x.shape[0], x.shape[2], -1), (0, 2, 1)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "ridge": self.ridge, "weights": None if self.weights is None else self.weights.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "DLinear":
        model = cls(data["kernel"], data["ridge"])
        model.weights = None if data["weights"] is None else np.asarray(data["weights"])
        return model


def baseline_forecasts(x: np.ndarray, horizon: int, period: int, linear: DLinear) -> dict[str, np.ndarray]:
    return {
        "naive": naive(x, horizon),
        "seasonal_naive": seasonal_naive(x, horizon, period),
        "dlinear": linear.predict(x),
    }
