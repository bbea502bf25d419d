"""Forecasting models built from `common.layers.RecurrentStack` (backend-agnostic `keras.ops`).

- `SegRNN` (Lin et al. 2023, "Segment Recurrent Neural Network for Long-Term Time Series
  Forecasting"): the window is cut into segments of `seg_len` steps, each embedded by
  Dense+ReLU; a GRU runs over the few segments; the decoder is parallel multi-step
  (PMF): one GRU step per output segment, started from the encoder state and fed a
  positional (+ channel) embedding, each projected to `seg_len` values.
- `DirectRNN`: an LSTM/GRU stack reads the window and a Dense head emits every horizon
  step at once (direct multi-horizon).

Both normalise each window (`InstanceNorm`: last value or RevIN) and undo it on the
output, run channel-independent (weights shared over channels, each channel its own
sequence) or multivariate, and can emit quantiles (`[batch, horizon, channels, q]`)
trained with `PinballLoss`.

    model = build_model(cfg.model, input_length=96, horizon=96, num_channels=7)
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops

from apps.timeseries.config import ModelConfig
from apps.timeseries.features import InstanceNorm
from common.layers import RecurrentStack


def _check(name: str, value: int) -> int:
    if int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class _Forecaster(keras.layers.Layer):
    """Shared plumbing: sizes, window normalisation, quantile axis."""

    def __init__(self, input_length, horizon, num_channels, channel_mode="independent", normalization="last",
                 num_quantiles=0, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        if channel_mode not in ("independent", "multivariate"):
            raise ValueError(f"channel_mode must be 'independent' or 'multivariate', got {channel_mode!r}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        self.input_length = _check("input_length", input_length)
        self.horizon = _check("horizon", horizon)
        self.num_channels = _check("num_channels", num_channels)
        self.channel_mode = channel_mode
        self.normalization = normalization
        self.num_quantiles = int(num_quantiles)
        self.dropout_rate = float(dropout_rate)
        self.outputs_per_step = max(1, self.num_quantiles)
        self.norm = InstanceNorm(normalization, self.num_channels, name="instance_norm")
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def _finish(self, y, stats):
        # y: [batch, horizon, channels, q]
        y = self.norm.denormalize(y, stats)
        return y if self.num_quantiles else ops.squeeze(y, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(input_length=self.input_length, horizon=self.horizon, num_channels=self.num_channels,
                      channel_mode=self.channel_mode, normalization=self.normalization,
                      num_quantiles=self.num_quantiles, dropout_rate=self.dropout_rate)
        return config


@keras.saving.register_keras_serializable(package="timeseries")
class SegRNN(_Forecaster):
    """Segment-recurrent forecaster with parallel multi-step decoding.

    Args:
        input_length, horizon, num_channels: window sizes.
        d_model: GRU width (and segment-embedding width).
        seg_len: segment length; input and horizon are padded up to multiples of it.
        cell: "gru" (paper) or "lstm".
        channel_mode: "independent" (SegRNN's default, channel embedding in the decoder)
            or "multivariate" (one sequence of all channels' segments).
        normalization: "last" (paper), "revin" or "none".
        num_quantiles: 0 for a point forecast, else the size of the quantile axis.
        dropout_rate: before the output projection.

    Input shape: `[batch, input_length, num_channels]`.
    Output shape: `[batch, horizon, num_channels]` (+ `[..., num_quantiles]`).
    """

    def __init__(self, input_length=96, horizon=96, num_channels=1, d_model=512, seg_len=48, cell="gru", **kwargs):
        super().__init__(input_length, horizon, num_channels, **kwargs)
        self.d_model = _check("d_model", d_model)
        self.seg_len = _check("seg_len", seg_len)
        self.cell = cell
        self.num_in = math.ceil(self.input_length / self.seg_len)
        self.num_out = math.ceil(self.horizon / self.seg_len)
        self.pad = self.num_in * self.seg_len - self.input_length
        width = self.seg_len * (1 if channel_mode_is_independent(self.channel_mode) else self.num_channels)
        self.embed = keras.layers.Dense(self.d_model, activation="relu", name="segment_embedding")
        # One recurrent stack for encoder and decoder, as in the paper.
        self.rnn = RecurrentStack(cell, (self.d_model,), return_sequences=False, name="rnn")
        self.project = keras.layers.Dense(width * self.outputs_per_step, name="segment_projection")
        self._segment_width = width

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.embed.build((None, self.num_in, self._segment_width))
        self.rnn.build((None, self.num_in, self.d_model))
        self.project.build((None, self.d_model))
        if channel_mode_is_independent(self.channel_mode):
            half = self.d_model // 2
            self.position_embedding = self.add_weight(name="position_embedding", shape=(self.num_out, half),
                                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
            self.channel_embedding = self.add_weight(name="channel_embedding", shape=(self.num_channels, self.d_model - half),
                                                     initializer=keras.initializers.RandomNormal(stddev=1.0))
        else:
            self.position_embedding = self.add_weight(name="position_embedding", shape=(self.num_out, self.d_model),
                                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.built = True

    def call(self, inputs, training=None):
        x, stats = self.norm.normalize(inputs)  # [batch, input_length, channels]
        if self.pad:
            x = ops.concatenate([ops.repeat(x[:, :1], self.pad, axis=1), x], axis=1)
        ones = ops.ones_like(inputs[:, :1, :1])  # [batch, 1, 1]: carries the dynamic batch size
        channels, q, n_out = self.num_channels, self.outputs_per_step, self.num_out
        if channel_mode_is_independent(self.channel_mode):
            x = ops.transpose(x, (0, 2, 1))  # [batch, channels, time]
            x = ops.reshape(x, (-1, self.num_in, self.seg_len))  # [batch*channels, segments, seg_len]
            position = ops.broadcast_to(self.position_embedding[None], (channels, n_out, self.d_model // 2))
            channel = ops.broadcast_to(self.channel_embedding[:, None], (channels, n_out, self.d_model - self.d_model // 2))
            queries = ops.concatenate([position, channel], axis=-1)  # [channels, segments_out, d_model]
            queries = ops.expand_dims(ones, -1) * queries[None]  # [batch, channels, segments_out, d_model]
        else:
            x = ops.reshape(x, (-1, self.num_in, self.seg_len * channels))  # [batch, segments, seg_len*channels]
            queries = ones * self.position_embedding[None]  # [batch, segments_out, d_model]
        state = self.rnn(self.embed(x), training=training)  # [rows, d_model]
        queries = ops.reshape(queries, (-1, 1, self.d_model))  # [rows*segments_out, 1, d_model]
        state = ops.reshape(ops.repeat(ops.expand_dims(state, 1), n_out, axis=1), (-1, self.d_model))
        decoded = self.rnn(queries, initial_state=[state], training=training)  # [rows*segments_out, d_model]
        y = self.project(self.dropout(decoded, training=training))  # [rows*segments_out, seg_width*q]
        if channel_mode_is_independent(self.channel_mode):
            y = ops.reshape(y, (-1, channels, n_out * self.seg_len, q))[:, :, : self.horizon]
            y = ops.transpose(y, (0, 2, 1, 3))  # [batch, horizon, channels, q]
        else:
            y = ops.reshape(y, (-1, n_out * self.seg_len, channels, q))[:, : self.horizon]
        return self._finish(y, stats)

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, seg_len=self.seg_len, cell=self.cell)
        return config


@keras.saving.register_keras_serializable(package="timeseries")
class DirectRNN(_Forecaster):
    """LSTM/GRU encoder + Dense head emitting all horizon steps at once.

    Args:
        cell: "lstm" or "gru"; units: layer widths of the RecurrentStack.
        Other arguments as in `SegRNN`.

    Input shape: `[batch, input_length, num_channels]`.
    Output shape: `[batch, horizon, num_channels]` (+ `[..., num_quantiles]`).
    """

    def __init__(self, input_length=96, horizon=96, num_channels=1, cell="lstm", units: Sequence[int] = (64,), **kwargs):
        super().__init__(input_length, horizon, num_channels, **kwargs)
        self.cell = cell
        self.units = tuple(int(u) for u in units)
        self.rnn = RecurrentStack(cell, self.units, return_sequences=False, dropout_rate=self.dropout_rate, name="rnn")
        per_row = 1 if channel_mode_is_independent(self.channel_mode) else self.num_channels
        self.head = keras.layers.Dense(self.horizon * per_row * self.outputs_per_step, name="horizon_head")

    def build(self, input_shape):
        self.norm.build(input_shape)
        features = 1 if channel_mode_is_independent(self.channel_mode) else self.num_channels
        self.rnn.build((None, self.input_length, features))
        self.head.build((None, self.rnn.output_width))
        self.built = True

    def call(self, inputs, training=None):
        x, stats = self.norm.normalize(inputs)  # [batch, input_length, channels]
        q = self.outputs_per_step
        if channel_mode_is_independent(self.channel_mode):
            x = ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, self.input_length, 1))  # [batch*channels, time, 1]
        y = self.head(self.dropout(self.rnn(x, training=training), training=training))
        if channel_mode_is_independent(self.channel_mode):
            y = ops.transpose(ops.reshape(y, (-1, self.num_channels, self.horizon, q)), (0, 2, 1, 3))
        else:
            y = ops.reshape(y, (-1, self.horizon, self.num_channels, q))
        return self._finish(y, stats)

    def get_config(self):
        config = super().get_config()
        config.update(cell=self.cell, units=list(self.units))
        return config


def channel_mode_is_independent(mode: str) -> bool:
    return mode == "independent"


@keras.saving.register_keras_serializable(package="timeseries")
class PinballLoss(keras.losses.Loss):
    """Mean quantile (pinball) loss: `max(q * (y - p), (q - 1) * (y - p))` averaged over all quantiles.

    `y_true`: `[batch, horizon, channels]`; `y_pred`: `[batch, horizon, channels, len(quantiles)]`.
    """

    def __init__(self, quantiles: Sequence[float] = (0.5,), name: str = "pinball", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]
        if not self.quantiles or not all(0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError(f"quantiles must be in (0, 1), got {quantiles!r}")

    def call(self, y_true, y_pred):
        q = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred  # [batch, horizon, channels, q]
        return ops.mean(ops.maximum(q * error, (q - 1.0) * error), axis=(-1, -2))

    def get_config(self):
        config = super().get_config()
        config.update(quantiles=self.quantiles)
        return config


def build_model(cfg: ModelConfig, input_length: int, horizon: int, num_channels: int) -> keras.Model:
    """A Functional model `window [batch, input_length, channels] -> forecast`."""
    common = dict(input_length=input_length, horizon=horizon, num_channels=num_channels, channel_mode=cfg.channel_mode,
                  normalization=cfg.normalization, num_quantiles=len(cfg.quantiles), dropout_rate=cfg.dropout_rate)
    if cfg.kind == "segrnn":
        core = SegRNN(d_model=cfg.d_model, seg_len=cfg.seg_len, cell="gru", name="segrnn", **common)
    elif cfg.kind in ("lstm", "gru"):
        core = DirectRNN(cell=cfg.kind, units=cfg.units, name=f"direct_{cfg.kind}", **common)
    else:
        raise ValueError(f"model.kind must be segrnn, lstm or gru, got {cfg.kind!r}")
    window = keras.Input((input_length, num_channels), name="window")
    return keras.Model(window, core(window), name=f"{cfg.kind}_forecaster")


def make_loss(cfg: ModelConfig):
    if cfg.quantiles:
        return PinballLoss(cfg.quantiles)
    return cfg.loss


def point_index(quantiles: Sequence[float]) -> int:
    """The quantile used as the point forecast: the one closest to the median."""
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))
