"""Forecasting models (backend-agnostic `keras.ops`) and the baselines as Keras models.

- `SegRNN` (Lin et al. 2023, "Segment Recurrent Neural Network for Long-Term Time Series
  Forecasting"): the window is cut into segments of `seg_len` steps, each embedded by
  Dense+ReLU; a GRU (or LSTM) cell runs over the few segments; the decoder is parallel
  multi-step (PMF): one recurrent step per output segment, started from the encoder state and
  fed a positional (+ channel) embedding, each projected to `seg_len` values. `decoder="rmf"`
  decodes recurrently instead (each segment's forecast is embedded and fed back; the paper's
  ablation).
- `DirectRNN`: an LSTM/GRU stack (`common.layers.RecurrentStack`) reads the window and a Dense
  head emits every horizon step at once (direct multi-horizon).
- `BaselineForecaster`: naive, seasonal naive or DLinear (closed-form weights) as a Keras layer,
  so a run whose validation picked a baseline (`model.kind=auto`) saves, forecasts and exports
  it like any other model.

Both networks normalise each window (`InstanceNorm`: last value or RevIN) and undo it on the
output, run channel-independent (weights shared over channels, each channel its own
sequence) or multivariate, can emit quantiles (`[batch, horizon, channels, q]`) trained with
`PinballLoss`, and take covariates: past-observed ones (`[batch, input_length, P]`) and
known-future ones (`[batch, input_length + horizon, F]`, e.g. calendar features), which enter
the segment embedding (encoder) and the decoder inputs (SegRNN) or the step inputs and a
per-step decoder (DirectRNN).

SegRNN's PMF step is computed without repeating work: the decoder's recurrent step starts
every output segment from the same encoder state, so `h @ U` is computed once per series and
the inputs' projection once per (channel, segment); the result equals running the cell on each
of the `segments_out` copies (tested), at a fraction of the cost on long horizons.

    model = build_model(cfg.model, input_length=96, horizon=96, num_channels=7)
    model = build_model(cfg.model, 96, 96, 7, num_past_covariates=2, num_future_covariates=4)
    # inputs: {"window": [b, 96, 7], "past_covariates": [b, 96, 2], "future_covariates": [b, 192, 4]}
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import ops

from apps.timeseries.config import ModelConfig
from apps.timeseries.features import InstanceNorm
from common.layers import RecurrentStack

INPUT_NAMES = ("window", "past_covariates", "future_covariates")


def _fan_in_uniform(fan_in: int) -> keras.initializers.Initializer:
    """PyTorch's default for Linear and RNN weights: uniform in +-1/sqrt(fan_in) (a new seed per weight)."""
    bound = 1.0 / math.sqrt(max(1, fan_in))
    return keras.initializers.RandomUniform(-bound, bound)


def _check(name: str, value: int, minimum: int = 1) -> int:
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class _Forecaster(keras.layers.Layer):
    """Shared plumbing: sizes, window normalisation, quantile axis, covariate counts."""

    def __init__(self, input_length, horizon, num_channels, channel_mode="independent", normalization="last",
                 num_quantiles=0, dropout_rate=0.0, num_past_covariates=0, num_future_covariates=0, **kwargs):
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
        self.num_past_covariates = _check("num_past_covariates", num_past_covariates, 0)
        self.num_future_covariates = _check("num_future_covariates", num_future_covariates, 0)
        self.outputs_per_step = max(1, self.num_quantiles)
        self.independent = channel_mode == "independent"
        self.norm = InstanceNorm(normalization, self.num_channels, name="instance_norm")
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    @property
    def num_encoder_covariates(self) -> int:
        """Covariates seen over the input window: past-observed and the known-future ones' past part."""
        return self.num_past_covariates + self.num_future_covariates

    def _encoder_covariates(self, past, future):
        """`[batch, input_length, P + F]` or None."""
        parts = []
        if self.num_past_covariates:
            if past is None:
                raise ValueError(f"this model takes {self.num_past_covariates} past covariates: pass past_covariates")
            parts.append(past)
        if self.num_future_covariates:
            if future is None:
                raise ValueError(f"this model takes {self.num_future_covariates} known-future covariates: pass "
                                 f"future_covariates [batch, input_length + horizon, F]")
            parts.append(future[:, : self.input_length])
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def _finish(self, y, stats):
        # y: [batch, horizon, channels, q]
        y = self.norm.denormalize(y, stats)
        if self.num_quantiles > 1:
            # Monotone rearrangement (Chernozhukov, Fernandez-Val & Galichon 2010): independently trained
            # quantile outputs can cross (a 0.1 quantile above the median); sorted, they follow the config's
            # ascending levels, and rearranged quantile estimates are never further from the true ones.
            y = ops.sort(y, axis=-1)
        return y if self.num_quantiles else ops.squeeze(y, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(input_length=self.input_length, horizon=self.horizon, num_channels=self.num_channels,
                      channel_mode=self.channel_mode, normalization=self.normalization,
                      num_quantiles=self.num_quantiles, dropout_rate=self.dropout_rate,
                      num_past_covariates=self.num_past_covariates, num_future_covariates=self.num_future_covariates)
        return config


# ------------------------------------------------------------------ recurrent steps on Keras cells' weights


def _input_projection(cell, x, bias=True):
    """`x @ kernel (+ input bias)`: the input part of every gate, `[..., gates * units]`."""
    y = ops.matmul(x, cell.kernel)
    if bias:
        y = y + (cell.bias[0] if isinstance(cell, keras.layers.GRUCell) else cell.bias)
    return y


def _recurrent_step(cell, x_proj, state):
    """One step of a Keras GRUCell (reset_after) or LSTMCell from the projected input.

    `x_proj` (`[..., gates * units]`) and the state (`[h]` or `[h, c]`, `[..., units]`) broadcast
    against each other, so one state can meet many inputs (the PMF decoder). Returns the new state.
    """
    units = cell.units
    h = state[0]
    if isinstance(cell, keras.layers.GRUCell):
        recurrent = ops.matmul(h, cell.recurrent_kernel) + cell.bias[1]
        x_z, x_r, x_h = x_proj[..., :units], x_proj[..., units:2 * units], x_proj[..., 2 * units:]
        r_z, r_r, r_h = recurrent[..., :units], recurrent[..., units:2 * units], recurrent[..., 2 * units:]
        z = ops.sigmoid(x_z + r_z)
        r = ops.sigmoid(x_r + r_r)
        candidate = ops.tanh(x_h + r * r_h)
        return [z * h + (1.0 - z) * candidate]
    c = state[1]
    gates = x_proj + ops.matmul(h, cell.recurrent_kernel)
    i, f = ops.sigmoid(gates[..., :units]), ops.sigmoid(gates[..., units:2 * units])
    g, o = ops.tanh(gates[..., 2 * units:3 * units]), ops.sigmoid(gates[..., 3 * units:])
    c = f * c + i * g
    return [o * ops.tanh(c), c]


@keras.saving.register_keras_serializable(package="timeseries")
class SegRNN(_Forecaster):
    """Segment-recurrent forecaster with parallel (PMF) or recurrent (RMF) multi-step decoding.

    Args:
        input_length, horizon, num_channels: window sizes.
        d_model: recurrent width (and segment-embedding width).
        seg_len: segment length; input and horizon are padded up to multiples of it.
        cell: "gru" (paper) or "lstm".
        decoder: "pmf" (paper: every output segment decoded at once) or "rmf" (recurrent: each
            segment's forecast is embedded and fed back; no covariates).
        channel_embedding: PMF queries carry a learnt per-channel half (SegRNN's channel_id);
            without it every channel shares the position embedding.
        init: "glorot" (Keras: Glorot-uniform kernels, orthogonal recurrent kernel, zero biases)
            or "fan_in" (PyTorch's defaults, which the paper's code runs with: every kernel and
            bias uniform in +-1/sqrt(fan_in), the GRU's +-1/sqrt(d_model)).
        channel_mode: "independent" (SegRNN's default: each channel its own series, weights shared)
            or "multivariate" (one sequence of all channels' segments).
        normalization: "last" (paper), "revin" or "none".
        num_quantiles: 0 for a point forecast, else the size of the quantile axis.
        dropout_rate: before the output projection.
        num_past_covariates, num_future_covariates: covariate widths (0 = none). Their segments
            are embedded beside the values' (encoder); the known-future ones' horizon segments are
            added to the PMF queries (decoder).

    Inputs: `window [batch, input_length, num_channels]`, optionally `past_covariates
    [batch, input_length, P]` and `future_covariates [batch, input_length + horizon, F]`.
    Output shape: `[batch, horizon, num_channels]` (+ `[..., num_quantiles]`).
    """

    def __init__(self, input_length=96, horizon=96, num_channels=1, d_model=512, seg_len=48, cell="gru",
                 decoder="pmf", channel_embedding=True, init="glorot", **kwargs):
        super().__init__(input_length, horizon, num_channels, **kwargs)
        if init not in ("glorot", "fan_in"):
            raise ValueError(f"init must be 'glorot' or 'fan_in', got {init!r}")
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        if decoder not in ("pmf", "rmf"):
            raise ValueError(f"decoder must be 'pmf' or 'rmf', got {decoder!r}")
        if decoder == "rmf" and self.num_encoder_covariates:
            raise ValueError("decoder='rmf' takes no covariates; use the pmf decoder with covariates")
        self.d_model = _check("d_model", d_model)
        self.seg_len = _check("seg_len", seg_len)
        self.cell = cell
        self.decoder = decoder
        self.channel_embedding = bool(channel_embedding)
        self.num_in = math.ceil(self.input_length / self.seg_len)
        self.num_out = math.ceil(self.horizon / self.seg_len)
        self.pad = self.num_in * self.seg_len - self.input_length
        self._segment_width = self.seg_len * (1 if self.independent else self.num_channels)
        self.embed = keras.layers.Dense(self.d_model, name="segment_embedding")  # ReLU after the covariates' part
        cell_class = keras.layers.GRUCell if cell == "gru" else keras.layers.LSTMCell
        # One cell for encoder and decoder, as in the paper.
        self.rnn_cell = cell_class(self.d_model, name=f"{cell}_cell")
        self.project = keras.layers.Dense(self._segment_width * self.outputs_per_step, name="segment_projection")
        self.covariate_embed = (keras.layers.Dense(self.d_model, use_bias=False, name="covariate_embedding")
                                if self.num_encoder_covariates else None)
        self.future_embed = (keras.layers.Dense(self.d_model, use_bias=False, name="future_embedding")
                             if self.num_future_covariates else None)
        self.init = init
        if init == "fan_in":
            dense = [(self.embed, self._segment_width), (self.project, self.d_model),
                     (self.covariate_embed, self.seg_len * self.num_encoder_covariates),
                     (self.future_embed, self.seg_len * self.num_future_covariates)]
            for layer, width in dense:
                if layer is not None:
                    layer.kernel_initializer, layer.bias_initializer = _fan_in_uniform(width), _fan_in_uniform(width)
            cell = self.rnn_cell
            cell.kernel_initializer, cell.recurrent_initializer, cell.bias_initializer = (
                _fan_in_uniform(self.d_model), _fan_in_uniform(self.d_model), _fan_in_uniform(self.d_model))

    def build(self, inputs_shape=None, past_covariates_shape=None, future_covariates_shape=None):
        self.norm.build(None)
        self.embed.build((None, self.num_in, self._segment_width))
        self.rnn_cell.build((None, self.d_model))
        self.project.build((None, self.d_model))
        if self.covariate_embed is not None:
            self.covariate_embed.build((None, self.num_in, self.seg_len * self.num_encoder_covariates))
        if self.future_embed is not None:
            self.future_embed.build((None, self.num_out, self.seg_len * self.num_future_covariates))
        if self.decoder == "pmf":
            if self.independent and self.channel_embedding:
                half = self.d_model // 2
                self.position_embedding = self.add_weight(
                    name="position_embedding", shape=(self.num_out, half),
                    initializer=keras.initializers.RandomNormal(stddev=1.0))
                self.channel_embedding_weight = self.add_weight(
                    name="channel_embedding", shape=(self.num_channels, self.d_model - half),
                    initializer=keras.initializers.RandomNormal(stddev=1.0))
            else:
                self.position_embedding = self.add_weight(
                    name="position_embedding", shape=(self.num_out, self.d_model),
                    initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.built = True

    def _pad_front(self, x):
        return ops.concatenate([ops.repeat(x[:, :1], self.pad, axis=1), x], axis=1) if self.pad else x

    def _segments(self, x, width):
        """`[batch, num_in * seg_len, k]` -> `[batch, num_in, seg_len * k]` (time-major inside a segment)."""
        return ops.reshape(x, (-1, self.num_in, self.seg_len * width))

    def _zero_state(self, like):
        zeros = ops.zeros_like(like[..., : self.d_model])
        return [zeros] if self.cell == "gru" else [zeros, zeros]

    def call(self, inputs, past_covariates=None, future_covariates=None, training=None):
        x, stats = self.norm.normalize(inputs)  # [batch, input_length, channels]
        x = self._pad_front(x)
        channels, q, n_in, n_out, d = self.num_channels, self.outputs_per_step, self.num_in, self.num_out, self.d_model
        if self.independent:
            rows = ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, n_in, self.seg_len))  # [batch*channels, n_in, seg]
        else:
            rows = self._segments(x, channels)  # [batch, n_in, seg*channels]
        embedded = self.embed(rows)  # [rows, n_in, d]
        covariates = self._encoder_covariates(past_covariates, future_covariates)
        if covariates is not None:
            extra = self.covariate_embed(self._segments(self._pad_front(covariates), self.num_encoder_covariates))
            if self.independent:  # the same covariates for every channel of a series
                embedded = ops.reshape(ops.reshape(embedded, (-1, channels, n_in, d)) + extra[:, None], (-1, n_in, d))
            else:
                embedded = embedded + extra
        embedded = ops.relu(embedded)

        # Encoder: the input projections of all segments in one matmul, then the recurrence.
        projected = _input_projection(self.rnn_cell, embedded)  # [rows, n_in, gates*d]
        state = self._zero_state(projected[:, 0])
        for t in range(n_in):
            state = _recurrent_step(self.rnn_cell, projected[:, t], state)

        if self.decoder == "rmf":
            return self._finish(self._decode_recurrent(state, training), stats)

        # PMF decoder: every output segment is one step from the same encoder state.
        if self.independent and self.channel_embedding:
            position = ops.broadcast_to(self.position_embedding[None], (channels, n_out, d // 2))
            channel = ops.broadcast_to(self.channel_embedding_weight[:, None], (channels, n_out, d - d // 2))
            queries = ops.concatenate([position, channel], axis=-1)  # [channels, n_out, d]
        else:
            queries = self.position_embedding[None]  # [1, n_out, d]
        query_proj = _input_projection(self.rnn_cell, queries)[None]  # [1, channels|1, n_out, gates*d]
        if self.future_embed is not None:
            horizon_part = future_covariates[:, self.input_length:]  # [batch, horizon, F]
            short = n_out * self.seg_len - self.horizon
            if short:
                horizon_part = ops.concatenate([horizon_part, ops.repeat(horizon_part[:, -1:], short, axis=1)], axis=1)
            future = self.future_embed(ops.reshape(horizon_part, (-1, n_out, self.seg_len * self.num_future_covariates)))
            query_proj = query_proj + _input_projection(self.rnn_cell, future, bias=False)[:, None]  # [batch, 1, n_out, G]
        groups = channels if self.independent else 1
        state = [ops.reshape(s, (-1, groups, 1, d)) for s in state]  # [batch, groups, 1, d]
        decoded = _recurrent_step(self.rnn_cell, query_proj, state)[0]  # [batch, groups, n_out, d]
        y = self.project(self.dropout(decoded, training=training))  # [batch, groups, n_out, seg_width*q]
        if self.independent:
            y = ops.reshape(y, (-1, channels, n_out * self.seg_len, q))[:, :, : self.horizon]
            y = ops.transpose(y, (0, 2, 1, 3))  # [batch, horizon, channels, q]
        else:
            y = ops.reshape(y, (-1, n_out * self.seg_len, channels, q))[:, : self.horizon]
        return self._finish(y, stats)

    def _decode_recurrent(self, state, training):
        """RMF: predict a segment from the state, embed its point forecast, step the cell, repeat."""
        channels, q = self.num_channels, self.outputs_per_step
        middle = min(range(q), key=lambda i: abs((i + 0.5) / q - 0.5))  # the point (median-most) output
        segments = []
        for m in range(self.num_out):
            y = self.project(self.dropout(state[0], training=training))  # [rows, seg_width*q]
            segments.append(y)
            if m + 1 < self.num_out:
                point = ops.reshape(y, (-1, self._segment_width, q))[..., middle]  # [rows, seg_width]
                state = _recurrent_step(self.rnn_cell, _input_projection(self.rnn_cell, ops.relu(self.embed(point))), state)
        y = ops.stack(segments, axis=1)  # [rows, n_out, seg_width*q]
        if self.independent:
            y = ops.reshape(y, (-1, channels, self.num_out * self.seg_len, q))[:, :, : self.horizon]
            return ops.transpose(y, (0, 2, 1, 3))
        return ops.reshape(y, (-1, self.num_out * self.seg_len, channels, q))[:, : self.horizon]

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, seg_len=self.seg_len, cell=self.cell, decoder=self.decoder,
                      channel_embedding=self.channel_embedding, init=self.init)
        return config


@keras.saving.register_keras_serializable(package="timeseries")
class DirectRNN(_Forecaster):
    """LSTM/GRU encoder + Dense head emitting all horizon steps at once.

    Args:
        cell: "lstm" or "gru"; units: layer widths of the RecurrentStack.
        decoder_units: width of the per-step decoder that meets known-future covariates
            (`relu(A h + B f_t) -> value`, added to the linear head); unused without them.
        Other arguments as in `SegRNN`. Covariates join every input step (past-observed and
        the known-future ones' past part); the known-future ones' horizon steps feed the decoder.

    Inputs and output shape as in `SegRNN`.
    """

    def __init__(self, input_length=96, horizon=96, num_channels=1, cell="lstm", units: Sequence[int] = (64,),
                 decoder_units=32, **kwargs):
        super().__init__(input_length, horizon, num_channels, **kwargs)
        self.cell = cell
        self.units = tuple(int(u) for u in units)
        self.decoder_units = _check("decoder_units", decoder_units)
        self.rnn = RecurrentStack(cell, self.units, return_sequences=False, dropout_rate=self.dropout_rate, name="rnn")
        per_row = 1 if self.independent else self.num_channels
        self.head = keras.layers.Dense(self.horizon * per_row * self.outputs_per_step, name="horizon_head")
        if self.num_future_covariates:
            self.context = keras.layers.Dense(self.decoder_units, name="decoder_context")
            self.future_proj = keras.layers.Dense(self.decoder_units, use_bias=False, name="decoder_covariates")
            self.step_head = keras.layers.Dense(per_row * self.outputs_per_step, name="decoder_head")

    def build(self, inputs_shape=None, past_covariates_shape=None, future_covariates_shape=None):
        self.norm.build(None)
        features = (1 if self.independent else self.num_channels) + self.num_encoder_covariates
        self.rnn.build((None, self.input_length, features))
        self.head.build((None, self.rnn.output_width))
        if self.num_future_covariates:
            self.context.build((None, self.rnn.output_width))
            self.future_proj.build((None, self.horizon, self.num_future_covariates))
            self.step_head.build((None, self.horizon, self.decoder_units))
        self.built = True

    def call(self, inputs, past_covariates=None, future_covariates=None, training=None):
        x, stats = self.norm.normalize(inputs)  # [batch, input_length, channels]
        q, channels, length = self.outputs_per_step, self.num_channels, self.input_length
        covariates = self._encoder_covariates(past_covariates, future_covariates)  # [batch, time, K] or None
        if self.independent:
            x = ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, length, 1))  # [batch*channels, time, 1]
            if covariates is not None:
                k = self.num_encoder_covariates
                shared = ops.repeat(covariates[:, None], channels, axis=1)  # [batch, channels, time, K]
                x = ops.concatenate([x, ops.reshape(shared, (-1, length, k))], axis=-1)
        elif covariates is not None:
            x = ops.concatenate([x, covariates], axis=-1)
        encoded = self.rnn(x, training=training)  # [rows, units]
        y = self.head(self.dropout(encoded, training=training))
        if self.independent:
            y = ops.transpose(ops.reshape(y, (-1, channels, self.horizon, q)), (0, 2, 1, 3))
        else:
            y = ops.reshape(y, (-1, self.horizon, channels, q))
        if self.num_future_covariates:
            future = self.future_proj(future_covariates[:, length:])  # [batch, horizon, k]
            context = self.context(encoded)  # [rows, k]
            if self.independent:
                hidden = ops.relu(ops.reshape(context, (-1, channels, 1, self.decoder_units)) + future[:, None])
                steps = ops.transpose(self.step_head(hidden), (0, 2, 1, 3))  # [batch, horizon, channels, q]
            else:
                steps = ops.reshape(self.step_head(ops.relu(context[:, None] + future)), (-1, self.horizon, channels, q))
            y = y + steps
        return self._finish(y, stats)

    def get_config(self):
        config = super().get_config()
        config.update(cell=self.cell, units=list(self.units), decoder_units=self.decoder_units)
        return config


@keras.saving.register_keras_serializable(package="timeseries")
class BaselineForecaster(keras.layers.Layer):
    """Naive, seasonal naive or DLinear as a layer, with optional quantile offsets.

    Args:
        kind: "naive" (repeat the last value), "seasonal_naive" (repeat the last `period` steps)
            or "dlinear" (moving-average trend/remainder + linear maps; weights from
            `baselines.DLinear`, stored as a non-trainable weight `[2 * input_length + 1, horizon]`).
        input_length, horizon, num_channels: window sizes.
        period: seasonal-naive lag in steps.
        kernel: DLinear moving-average width.
        quantiles: () for a point forecast; else the `quantile_offsets` weight `[horizon, channels, q]`
            (validation residual quantiles) is added to the point forecast.

    Inputs: `window [batch, input_length, num_channels]`; covariates are accepted and ignored,
    so the layer replaces a network with the same inputs.
    """

    def __init__(self, kind="naive", input_length=96, horizon=96, num_channels=1, period=1, kernel=25,
                 quantiles=(), **kwargs):
        super().__init__(**kwargs)
        if kind not in ("naive", "seasonal_naive", "dlinear"):
            raise ValueError(f"kind must be naive, seasonal_naive or dlinear, got {kind!r}")
        self.kind = kind
        self.input_length = _check("input_length", input_length)
        self.horizon = _check("horizon", horizon)
        self.num_channels = _check("num_channels", num_channels)
        self.period = _check("period", period)
        self.kernel = max(1, min(int(kernel), self.input_length))
        self.quantiles = tuple(float(v) for v in quantiles)

    def build(self, inputs_shape=None, past_covariates_shape=None, future_covariates_shape=None):
        if self.kind == "dlinear":
            self.linear = self.add_weight(name="dlinear", shape=(2 * self.input_length + 1, self.horizon),
                                          initializer="zeros", trainable=False)
        if self.quantiles:
            self.quantile_offsets = self.add_weight(name="quantile_offsets",
                                                    shape=(self.horizon, self.num_channels, len(self.quantiles)),
                                                    initializer="zeros", trainable=False)
        self.built = True

    def call(self, inputs, past_covariates=None, future_covariates=None):
        x = inputs  # [batch, input_length, channels]
        if self.kind == "naive" or (self.kind == "seasonal_naive" and not 1 < self.period <= self.input_length):
            y = ops.repeat(x[:, -1:], self.horizon, axis=1)
        elif self.kind == "seasonal_naive":
            steps = self.input_length - self.period + (np.arange(self.horizon) % self.period)
            y = ops.take(x, ops.convert_to_tensor(steps.astype("int32")), axis=1)
        else:
            k = self.kernel
            front, back = (k - 1) // 2, k // 2
            padded = ops.concatenate([ops.repeat(x[:, :1], front, axis=1), x, ops.repeat(x[:, -1:], back, axis=1)],
                                     axis=1) if k > 1 else x
            cumsum = ops.cumsum(ops.pad(padded, ((0, 0), (1, 0), (0, 0))), axis=1)
            trend = (cumsum[:, k:] - cumsum[:, :-k]) / k  # [batch, input_length, channels]
            parts = ops.transpose(ops.concatenate([x - trend, trend], axis=1), (0, 2, 1))  # [batch, channels, 2L]
            y = ops.matmul(parts, self.linear[:-1]) + self.linear[-1]  # [batch, channels, horizon]
            y = ops.transpose(y, (0, 2, 1))
        if self.quantiles:
            y = ops.expand_dims(y, -1) + self.quantile_offsets[None]
        return y

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, input_length=self.input_length, horizon=self.horizon,
                      num_channels=self.num_channels, period=self.period, kernel=self.kernel,
                      quantiles=list(self.quantiles))
        return config


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


def network_kind(cfg: ModelConfig) -> str:
    """The network a config trains: `kind`, or `auto_network` for kind=auto."""
    return cfg.auto_network if cfg.kind == "auto" else cfg.kind


def model_inputs(input_length: int, horizon: int, num_channels: int, num_past_covariates: int = 0,
                 num_future_covariates: int = 0) -> dict:
    """The Keras inputs by name: `window`, and the covariate inputs the model takes."""
    inputs = {"window": keras.Input((input_length, num_channels), name="window")}
    if num_past_covariates:
        inputs["past_covariates"] = keras.Input((input_length, num_past_covariates), name="past_covariates")
    if num_future_covariates:
        inputs["future_covariates"] = keras.Input((input_length + horizon, num_future_covariates),
                                                  name="future_covariates")
    return inputs


def _functional(core, inputs: dict, name: str) -> keras.Model:
    output = core(inputs["window"], past_covariates=inputs.get("past_covariates"),
                  future_covariates=inputs.get("future_covariates"))
    # Without covariates the model keeps a single tensor input, as exported models always had.
    return keras.Model(inputs if len(inputs) > 1 else inputs["window"], output, name=name)


def build_model(cfg: ModelConfig, input_length: int, horizon: int, num_channels: int,
                num_past_covariates: int = 0, num_future_covariates: int = 0, name: str | None = None) -> keras.Model:
    """A Functional model `window [batch, input_length, channels] (+ covariates) -> forecast`
    (named `<kind>_forecaster` unless `name` is given, e.g. an ensemble member's)."""
    kind = network_kind(cfg)
    common = dict(input_length=input_length, horizon=horizon, num_channels=num_channels, channel_mode=cfg.channel_mode,
                  normalization=cfg.normalization, num_quantiles=len(cfg.quantiles), dropout_rate=cfg.dropout_rate,
                  num_past_covariates=num_past_covariates, num_future_covariates=num_future_covariates)
    if kind == "segrnn":
        core = SegRNN(d_model=cfg.d_model, seg_len=cfg.seg_len, cell=cfg.cell, decoder=cfg.decoder,
                      channel_embedding=cfg.channel_embedding, init=cfg.init, name="segrnn", **common)
    elif kind in ("lstm", "gru"):
        core = DirectRNN(cell=kind, units=cfg.units, decoder_units=cfg.decoder_units, name=f"direct_{kind}", **common)
    else:
        raise ValueError(f"model.kind must be segrnn, lstm, gru or auto, got {cfg.kind!r}")
    inputs = model_inputs(input_length, horizon, num_channels, num_past_covariates, num_future_covariates)
    return _functional(core, inputs, name or f"{kind}_forecaster")


def build_ensemble(members: Sequence[keras.Model]) -> keras.Model:
    """One model whose forecast is the mean of the members' (the same inputs in, the same output shape).

    Networks trained from different seeds overfit differently; their mean forecast has lower variance
    than any one of them. It saves, loads and exports like a single forecaster: the members are nested
    models (`member_<k>`), and quantile outputs average quantile by quantile.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    first = members[0]
    names = [tensor.name for tensor in first.inputs]
    inputs = {name: keras.Input(tuple(t.shape[1:]), name=name) for name, t in zip(names, first.inputs)}
    feed = inputs if len(inputs) > 1 else inputs[names[0]]
    output = keras.layers.Average(name="ensemble_mean", dtype="float32")([member(feed) for member in members])
    return keras.Model(feed, output, name="forecast_ensemble")


@keras.saving.register_keras_serializable(package="timeseries")
class WeightedSum(keras.layers.Layer):
    """`weight * a + (1 - weight) * b` of two forecasts of one shape (a network and DLinear, `model.auto_blend`)."""

    def __init__(self, weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs):
        a, b = inputs
        return self.weight * a + (1.0 - self.weight) * b

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def build_blend_model(network: keras.Model, baseline: keras.Model, weight: float) -> keras.Model:
    """One model whose forecast is `weight * network + (1 - weight) * baseline` (same inputs as both)."""
    output = WeightedSum(weight, name="blend")([network.output, baseline(network.input)])
    return keras.Model(network.input, output, name=f"blend_{network.name}")


def build_baseline_model(kind: str, input_length: int, horizon: int, num_channels: int, period: int = 1,
                         dlinear_weights: np.ndarray | None = None, kernel: int = 25, quantiles: Sequence[float] = (),
                         quantile_offsets: np.ndarray | None = None, num_past_covariates: int = 0,
                         num_future_covariates: int = 0) -> keras.Model:
    """A baseline as a Keras model with the same inputs as the network it replaces."""
    core = BaselineForecaster(kind, input_length, horizon, num_channels, period=period, kernel=kernel,
                              quantiles=quantiles, name=kind)
    inputs = model_inputs(input_length, horizon, num_channels, num_past_covariates, num_future_covariates)
    model = _functional(core, inputs, f"{kind}_forecaster")
    if kind == "dlinear":
        if dlinear_weights is None:
            raise ValueError("build_baseline_model('dlinear') needs the fitted dlinear_weights")
        core.linear.assign(np.asarray(dlinear_weights, dtype="float32"))
    if quantiles:
        offsets = np.zeros((horizon, num_channels, len(quantiles))) if quantile_offsets is None else quantile_offsets
        core.quantile_offsets.assign(np.asarray(offsets, dtype="float32"))
    return model


def make_loss(cfg: ModelConfig):
    if cfg.quantiles:
        return PinballLoss(cfg.quantiles)
    return cfg.loss


def point_index(quantiles: Sequence[float]) -> int:
    """The quantile used as the point forecast: the one closest to the median."""
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))
