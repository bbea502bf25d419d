"""Feature layers that live inside the forecasting models (backend-agnostic `keras.ops`).

- `InstanceNorm`: per-window normalisation undone on the forecast: `last` subtracts the
  window's last value (SegRNN), `revin` standardises each window and channel with a
  learnable affine (RevIN, Kim et al. 2022), `none` passes through.
- `Standardize`: fixed per-channel scaling with the training statistics, so exported
  models take and return values on the original scale.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

NORMALIZATIONS = ("last", "revin", "none")


@keras.saving.register_keras_serializable(package="timeseries")
class InstanceNorm(keras.layers.Layer):
    """Reversible per-window normalisation.

    Args:
        mode: "last", "revin" or "none".
        num_channels: channels of the input (for the RevIN affine weights).
        epsilon: variance floor for revin.

    `normalize(x)`: `[batch, time, channels]` -> (same shape, stats).
    `denormalize(y, stats)`: `[batch, horizon, channels(, quantiles)]` back to the input scale.
    """

    def __init__(self, mode: str = "last", num_channels: int = 1, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {mode!r}")
        self.mode = mode
        self.num_channels = int(num_channels)
        self.epsilon = float(epsilon)

    def build(self, input_shape=None):
        if self.mode == "revin":
            self.affine_weight = self.add_weight(name="affine_weight", shape=(self.num_channels,), initializer="ones")
            self.affine_bias = self.add_weight(name="affine_bias", shape=(self.num_channels,), initializer="zeros")
        self.built = True

    def normalize(self, x):
        if self.mode == "last":
            last = x[:, -1:, :]  # [batch, 1, channels]
            return x - last, (last,)
        if self.mode == "revin":
            mean = ops.mean(x, axis=1, keepdims=True)  # [batch, 1, channels]
            std = ops.sqrt(ops.var(x, axis=1, keepdims=True) + self.epsilon)
            return (x - mean) / std * self.affine_weight + self.affine_bias, (mean, std)
        return x, ()

    def denormalize(self, y, stats):
        extra = len(y.shape) - 3  # a trailing quantile axis broadcasts against [batch, 1, channels, 1]

        def expand(t):
            return ops.expand_dims(t, -1) if extra else t

        if self.mode == "last":
            return y + expand(stats[0])
        if self.mode == "revin":
            mean, std = stats
            weight = self.affine_weight + self.epsilon * self.epsilon
            y = (y - expand(ops.reshape(self.affine_bias, (1, 1, -1)))) / expand(ops.reshape(weight, (1, 1, -1)))
            return y * expand(std) + expand(mean)
        return y

    def call(self, x):
        return self.normalize(x)[0]

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, num_channels=self.num_channels, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="timeseries")
class Standardize(keras.layers.Layer):
    """`(x - mean) / std` per channel, or the inverse with `invert=True`.

    Args:
        mean, std: per-channel training statistics.
        invert: map scaled values back to the original scale.

    Input shape: `[batch, time, channels(, quantiles)]`; the channel axis is 2.
    """

    def __init__(self, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,), invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.invert = bool(invert)

    def call(self, x):
        shape = (1, 1, len(self.mean)) + (1,) * (len(x.shape) - 3)
        mean = ops.reshape(ops.convert_to_tensor(self.mean, dtype=x.dtype), shape)
        std = ops.reshape(ops.convert_to_tensor(self.std, dtype=x.dtype), shape)
        return x * std + mean if self.invert else (x - mean) / std

    def get_config(self):
        config = super().get_config()
        config.update(mean=self.mean, std=self.std, invert=self.invert)
        return config
