"""Backend-agnostic recurrent building blocks shared by every app.

Only `keras.ops` is used inside layers, so the same code runs on TensorFlow (CPU)
and JAX (GPU). Everything here is registered for `.keras` serialization.

- `RecurrentStack`: N LSTM/GRU layers, optional bidirectional, residual, layer norm, dropout.
- `ScanLSTM` / `ScanGRU`: Keras' LSTM/GRU (same weights, same results) with the input projection
  hoisted out of the loop and several steps per loop iteration: faster training on a GPU at small
  and middle widths (`RecurrentStack(implementation="scan")`).
- `AttentionPooling`: learned weighted average over time (for classifiers).
- `BahdanauAttention` (additive) and `LuongAttention` (dot/general) for decoders.
- `build_streaming_step_model` / `stream`: run a unidirectional stack one chunk at a
  time with explicit state in/out, numerically equal to the full-sequence run.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Sequence

import keras
import numpy as np
from keras import ops

from common.initializers import Chrono, lstm_chrono_kwargs

CELLS = ("lstm", "gru")


def _large_negative(dtype) -> float:
    """A masking value that stays finite in the score dtype (float16 overflows at -1e9)."""
    return -6.0e4 if "float16" in str(dtype) else -1.0e9


def _masked_softmax(scores, mask):
    """Softmax over the last axis where `mask` (broadcastable bool) is True."""
    if mask is not None:
        mask = ops.cast(mask, "bool")
        scores = ops.where(mask, scores, ops.full_like(scores, _large_negative(scores.dtype)))
    return ops.softmax(scores, axis=-1)


IMPLEMENTATIONS = ("native", "scan")


class _HoistedScan:
    """The recurrence of Keras' LSTM/GRU as one JAX scan (`common.scan_backward`), mixed into the
    subclasses below.

    For the JAX backend, where Keras runs cuDNN for LSTM (several kernel launches per time step)
    and a step-by-step scan for GRU; on TensorFlow these layers run Keras' own loop. Here
    `x @ kernel + bias` for every step is a single large matmul before the loop, and `scan_unroll`
    steps share one loop iteration, so XLA fuses across steps and launches fewer, larger kernels.
    By default (`fused_backward=True`) the backward pass is hand-written (`common.scan_backward`):
    the recurrent kernel's gradient is one matmul after the backward loop instead of one per step,
    23-32 % faster GPU training than autodiff of the same scan at every shape measured on an H200
    (128-512 units, dense and masked) and 19-56 % on a CPU; `fused_backward=False` keeps JAX's
    autodiff of the same forward pass. Weights, initial states, masking, `go_backwards`,
    `return_state` and `zero_output_for_mask` behave as in the parent class (tests compare outputs
    and gradients), so a model trained this way loads as a plain LSTM/GRU for export.
    """

    def __init__(self, *args, scan_unroll: int = 8, fused_backward: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(scan_unroll, bool) or not isinstance(scan_unroll, int) or scan_unroll < 1:
            raise ValueError(f"scan_unroll must be a positive int (steps per loop iteration), got {scan_unroll!r}")
        self.scan_unroll = scan_unroll
        self.fused_backward = bool(fused_backward)
        self.native_loop = False  # True inside native_recurrence(): Keras' own loop, for export
        cell = self.cell
        problems = []
        if cell.dropout or cell.recurrent_dropout:
            problems.append("dropout/recurrent_dropout inside the cell (use dropout between layers)")
        if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
            problems.append("activations other than tanh/sigmoid")
        if not cell.use_bias:
            problems.append("use_bias=False")
        if getattr(cell, "reset_after", True) is False:
            problems.append("GRU reset_after=False")
        if self.unroll:
            problems.append("unroll=True (a fully unrolled recurrence has no loop to scan)")
        if problems:
            raise ValueError(f"{type(self).__name__} supports the cuDNN-compatible settings only; got "
                             + ", ".join(problems) + ". Use keras.layers.LSTM/GRU (implementation='native') instead.")

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # TensorFlow's scan does not unroll (its `unroll` only sets parallel_iterations) and its native
        # layers have fused kernels, so there the scan would only be slower: it runs Keras' own loop.
        if self.native_loop or keras.backend.backend() != "jax":  # native_loop: see native_recurrence()
            return super().inner_loop(sequences, initial_state, mask, training=training)
        from common import scan_backward  # imports JAX

        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        lstm = isinstance(self, keras.layers.LSTM)
        state = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        while len(state) == 1 and isinstance(state[0], (list, tuple)):  # GRU may get [[h]]
            state = list(state[0])
        h0 = state[0]
        c0 = state[1] if lstm else None

        x = ops.transpose(sequences, (1, 0, 2))  # [time, batch, features]
        if mask is not None:
            mask = ops.expand_dims(ops.transpose(ops.cast(mask, "bool"), (1, 0)), -1)  # [time, batch, 1]
        if self.go_backwards:  # process in reverse; outputs stay in processing order, as Keras returns them
            x = ops.flip(x, 0)
            mask = None if mask is None else ops.flip(mask, 0)
        input_bias = cell.bias if lstm else cell.bias[0]
        projected = ops.matmul(x, cell.kernel) + input_bias  # [time, batch, gates*units], one matmul
        zero_masked = self.zero_output_for_mask and mask is not None
        kernel = ops.convert_to_tensor(cell.recurrent_kernel)  # a JAX array, as custom_vjp needs
        sequences = self.return_sequences
        if lstm:
            scan = scan_backward.lstm_scan if self.fused_backward else scan_backward.lstm_scan_autodiff
            outputs, h, c = scan(self.scan_unroll, zero_masked, sequences, projected, kernel, h0, c0, mask)
            states = [h, c]
        else:
            scan = scan_backward.gru_scan if self.fused_backward else scan_backward.gru_scan_autodiff
            outputs, h = scan(self.scan_unroll, zero_masked, sequences, projected, kernel,
                              ops.convert_to_tensor(cell.bias)[1], h0, mask)
            states = [h]
        if sequences:
            return outputs[-1], ops.transpose(outputs, (1, 0, 2)), states  # outputs: [batch, time, units]
        last_output = ops.where(mask[-1], h, ops.zeros_like(h)) if zero_masked else h
        return last_output, ops.expand_dims(last_output, 1), states  # the caller uses last_output only

    def get_config(self):
        config = super().get_config()
        config.update(scan_unroll=self.scan_unroll, fused_backward=self.fused_backward)
        return config


@keras.saving.register_keras_serializable(package="common")
class ScanLSTM(_HoistedScan, keras.layers.LSTM):
    """`keras.layers.LSTM` computed as a scan with the input projection hoisted (see `_HoistedScan`).

    Args:
        scan_unroll: time steps per loop iteration (8 was fastest on an H200 at 128-256 units).
        fused_backward: use `common.scan_backward`'s hand-written backward pass (default; False:
            JAX autodiff of the scan).
        Everything else as `keras.layers.LSTM` (cuDNN-compatible settings only).
    """


@keras.saving.register_keras_serializable(package="common")
class ScanGRU(_HoistedScan, keras.layers.GRU):
    """`keras.layers.GRU` (`reset_after=True`) computed as a scan with the input projection hoisted.

    Args:
        scan_unroll: time steps per loop iteration.
        fused_backward: use `common.scan_backward`'s hand-written backward pass (default; False:
            JAX autodiff of the scan).
        Everything else as `keras.layers.GRU` (cuDNN-compatible settings only).
    """


@keras.saving.register_keras_serializable(package="common")
class RecurrentStack(keras.layers.Layer):
    """A stack of LSTM or GRU layers with the options every app needs.

    The defaults keep Keras' cuDNN-eligible settings (tanh/sigmoid activations,
    no recurrent dropout, `reset_after=True` for GRU, not unrolled), so GPU fast
    paths apply on both backends.

    Args:
        cell: "lstm" or "gru".
        units: units per layer, e.g. `(128, 128)` for two layers.
        bidirectional: wrap each layer in `keras.layers.Bidirectional` (outputs concatenated).
        residual: add each layer's input to its output where the widths match.
        layer_norm: apply `LayerNormalization` after each layer.
        dropout_rate: dropout between layers (not inside the recurrence, to keep cuDNN).
        return_sequences: return `[batch, time, width]` from the last layer, else `[batch, width]`.
        return_state: also return the final states of every layer, flattened in layer order
            (`[h, c]` per LSTM, `[h]` per GRU; forward then backward when bidirectional).
        unroll: unroll the recurrence (only for short fixed-length inputs such as streaming steps).
        implementation: "native" (Keras' LSTM/GRU: cuDNN for LSTM on a GPU) or "scan" (`ScanLSTM`/
            `ScanGRU`: same weights and results; on an H200 1.4-2.8x faster `fit` than native at
            128-512 units and 1.0-2.3x PyTorch's cuDNN; slower on a CPU; each distinct input shape
            compiles longer; see docs/results.md). An unrolled stack has no loop, so it is always native.
        scan_unroll: time steps per loop iteration for "scan".
        scan_fused_backward: for "scan", compute the recurrent kernel's gradient with one matmul after
            the backward loop instead of one per step (`common.scan_backward`; default, 23-32 %
            faster on an H200); False: JAX autodiff of the scan.
        chrono_t_max: > 0 initialises every layer's gate biases with chrono initialisation
            (`common.initializers.Chrono`, Tallec & Ollivier 2018: LSTM forget bias `log U[1, t_max - 1]`,
            input bias its negative; GRU the update-gate bias that keeps the state), so units
            start with memories of up to `t_max` steps; 0 keeps Keras' default (LSTM forget bias +1).

    Input shape: `[batch, time, features]` (mask supported).
    Output shape: `[batch, time, width]` or `[batch, width]`, where width is
    `units[-1]` (doubled when bidirectional); followed by the states if `return_state`.
    """

    def __init__(
        self,
        cell: str = "lstm",
        units: Sequence[int] = (64,),
        bidirectional: bool = False,
        residual: bool = False,
        layer_norm: bool = False,
        dropout_rate: float = 0.0,
        return_sequences: bool = True,
        return_state: bool = False,
        unroll: bool = False,
        implementation: str = "native",
        scan_unroll: int = 8,
        scan_fused_backward: bool = True,
        chrono_t_max: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        units = tuple(int(u) for u in ([units] if isinstance(units, int) else units))
        if not units or min(units) < 1:
            raise ValueError(f"units must be a non-empty tuple of positive ints, got {units!r}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        self.cell = cell
        self.units = units
        self.bidirectional = bool(bidirectional)
        self.residual = bool(residual)
        self.layer_norm = bool(layer_norm)
        self.dropout_rate = float(dropout_rate)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.unroll = bool(unroll)
        self.implementation = implementation
        self.scan_unroll = int(scan_unroll)
        self.scan_fused_backward = bool(scan_fused_backward)
        self.chrono_t_max = int(chrono_t_max)
        if self.chrono_t_max and self.chrono_t_max <= 2:
            raise ValueError(f"chrono_t_max must be 0 (off) or > 2, got {chrono_t_max!r}")
        self.supports_masking = True

        if implementation == "scan" and not self.unroll:
            scan_class = ScanLSTM if cell == "lstm" else ScanGRU
            rnn_class = functools.partial(scan_class, scan_unroll=self.scan_unroll,
                                          fused_backward=self.scan_fused_backward)
        else:
            rnn_class = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
        # cuDNN RNN kernels under JAX are float32-only (bf16 crashes at compile); the
        # cells run in float32 and Keras autocasts their inputs and the layers after.
        rnn_dtype = "float32" if self.dtype_policy.compute_dtype == "bfloat16" else self.dtype_policy
        self.rnn_layers = []
        self.norm_layers = []
        self.dropout_layers = []
        for i, width in enumerate(units):
            last = i == len(units) - 1
            bias_init = {}
            if self.chrono_t_max:
                # A fresh initializer per layer: one shared instance would repeat its seed's biases.
                bias_init = (lstm_chrono_kwargs(self.chrono_t_max) if cell == "lstm"
                             else {"bias_initializer": Chrono(self.chrono_t_max, gates="gru")})
            rnn = rnn_class(
                width,
                return_sequences=True if not last else self.return_sequences,
                return_state=self.return_state,
                unroll=self.unroll,
                name=f"{cell}_{i}",
                dtype=rnn_dtype,
                **bias_init,
            )
            if self.bidirectional:
                rnn = keras.layers.Bidirectional(rnn, name=f"bidirectional_{i}", dtype=rnn_dtype)
            self.rnn_layers.append(rnn)
            if self.layer_norm:
                self.norm_layers.append(
                    keras.layers.LayerNormalization(name=f"layer_norm_{i}", dtype=self.dtype_policy)
                )
            if self.dropout_rate > 0 and not last:
                self.dropout_layers.append(keras.layers.Dropout(self.dropout_rate, name=f"dropout_{i}"))

    @property
    def output_width(self) -> int:
        return self.units[-1] * (2 if self.bidirectional else 1)

    @property
    def states_per_layer(self) -> int:
        return (2 if self.cell == "lstm" else 1) * (2 if self.bidirectional else 1)

    def state_shapes(self) -> list[int]:
        """Width of each flattened state tensor, in the order `return_state` yields them."""
        shapes = []
        for width in self.units:
            shapes.extend([width] * self.states_per_layer)
        return shapes

    def get_initial_state(self, batch_size: int) -> list[np.ndarray]:
        """Zero states for streaming, one array per state tensor."""
        return [np.zeros((batch_size, w), dtype="float32") for w in self.state_shapes()]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, rnn in enumerate(self.rnn_layers):
            rnn.build(shape)
            width = self.units[i] * (2 if self.bidirectional else 1)
            shape = shape[:-1] + (width,)
            if self.layer_norm:
                self.norm_layers[i].build(shape)
        self.built = True

    def _residual_applies(self, i: int, in_width, out_width) -> bool:
        last = i == len(self.units) - 1
        return self.residual and in_width == out_width and (self.return_sequences or not last)

    def call(self, inputs, mask=None, training=None, initial_state=None):
        x = inputs  # [batch, time, features]
        n = self.states_per_layer
        if initial_state is not None:
            initial_state = list(initial_state)
            if len(initial_state) != n * len(self.units):
                raise ValueError(
                    f"initial_state needs {n * len(self.units)} tensors "
                    f"({n} per layer x {len(self.units)} layers), got {len(initial_state)}"
                )
        states = []
        dropout_iter = iter(self.dropout_layers)
        for i, rnn in enumerate(self.rnn_layers):
            layer_state = None if initial_state is None else initial_state[i * n:(i + 1) * n]
            result = rnn(x, mask=mask, training=training, initial_state=layer_state)
            if self.return_state:
                y, layer_states = result[0], list(result[1:])
                states.extend(layer_states)
            else:
                y = result
            # [batch, time, width] or [batch, width] for the last layer
            if self._residual_applies(i, x.shape[-1], y.shape[-1]):
                y = y + x
            if self.layer_norm:
                y = self.norm_layers[i](y)
            if i < len(self.rnn_layers) - 1 and self.dropout_rate > 0:
                y = next(dropout_iter)(y, training=training)
            x = y
        if self.return_state:
            return [x] + states
        return x

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences:
            return [None] * (1 + len(self.state_shapes())) if self.return_state else None
        if self.return_state:
            return [mask] + [None] * len(self.state_shapes())
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell,
            units=list(self.units),
            bidirectional=self.bidirectional,
            residual=self.residual,
            layer_norm=self.layer_norm,
            dropout_rate=self.dropout_rate,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            unroll=self.unroll,
            implementation=self.implementation,
            scan_unroll=self.scan_unroll,
            scan_fused_backward=self.scan_fused_backward,
            chrono_t_max=self.chrono_t_max,
        )
        return config


@keras.saving.register_keras_serializable(package="common")
class AttentionPooling(keras.layers.Layer):
    """Additive attention pooling over time: `sum_t softmax(v . tanh(W x_t + b)) x_t`.

    Args:
        units: width of the scoring projection.
        return_attention_scores: also return the `[batch, time]` weights.

    Input shape: `[batch, time, features]` (mask supported, padded steps get zero weight).
    Output shape: `[batch, features]`.
    """

    def __init__(self, units: int = 64, return_attention_scores: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.return_attention_scores = bool(return_attention_scores)
        self.supports_masking = True
        self.projection = keras.layers.Dense(self.units, activation="tanh", name="projection", dtype=self.dtype_policy)
        self.score = keras.layers.Dense(1, use_bias=False, name="score", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.projection.build(input_shape)
        self.score.build(tuple(input_shape[:-1]) + (self.units,))
        self.built = True

    def call(self, inputs, mask=None):
        scores = ops.squeeze(self.score(self.projection(inputs)), axis=-1)  # [batch, time]
        weights = _masked_softmax(scores, mask)
        pooled = ops.einsum("bt,btd->bd", weights, inputs)  # [batch, features]
        if self.return_attention_scores:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], input_shape[-1])
        if self.return_attention_scores:
            return out, (input_shape[0], input_shape[1])
        return out

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, return_attention_scores=self.return_attention_scores)
        return config


@keras.saving.register_keras_serializable(package="common")
class StreamingAttentionPooling(AttentionPooling):
    """`AttentionPooling` fed chunk by chunk: an online softmax with constant-size state.

    Call with `[x [batch, chunk, features], running_max [batch, 1], running_sum [batch, 1],
    running_values [batch, features]]` (all zeros start a stream); returns `[pooled, new_max,
    new_sum, new_values]`. After the chunks of a sequence, `pooled` equals `AttentionPooling` over
    everything so far (the weights are the same sublayers: `set_weights(pool.get_weights())`).
    The running maximum keeps the exponentials in range; a zero `running_sum` marks a fresh stream.
    """

    def build(self, input_shape):
        super().build(input_shape[0])

    def call(self, inputs):
        x, previous_max, previous_sum, previous_values = inputs
        scores = ops.squeeze(self.score(self.projection(x)), axis=-1)  # [batch, chunk]
        started = previous_sum > 0  # [batch, 1]
        chunk_max = ops.max(scores, axis=1, keepdims=True)
        new_max = ops.where(started, ops.maximum(previous_max, chunk_max), chunk_max)
        rescale = ops.where(started, ops.exp(ops.minimum(previous_max - new_max, 0.0)), 0.0)  # old sums to the new max
        weights = ops.exp(scores - new_max)  # [batch, chunk], each <= 1
        new_sum = previous_sum * rescale + ops.sum(weights, axis=1, keepdims=True)
        new_values = previous_values * rescale + ops.einsum("bt,btd->bd", weights, x)
        return [new_values / new_sum, new_max, new_sum, new_values]

    def compute_output_shape(self, input_shape):
        x = input_shape[0]
        return [(x[0], x[-1]), (x[0], 1), (x[0], 1), (x[0], x[-1])]


class _DecoderAttention(keras.layers.Layer):
    """Shared call logic: scores `[batch, Tq, Tv]` → weights → context `[batch, Tq, Dv]`."""

    def __init__(self, return_attention_scores: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.return_attention_scores = bool(return_attention_scores)
        self.supports_masking = True

    def _scores(self, query, values):
        raise NotImplementedError

    def call(self, query, values, query_mask=None, values_mask=None):
        squeeze = len(query.shape) == 2
        if squeeze:
            query = ops.expand_dims(query, 1)  # [batch, 1, Dq]
        scores = self._scores(query, values)  # [batch, Tq, Tv]
        mask = None if values_mask is None else ops.expand_dims(values_mask, 1)
        weights = _masked_softmax(scores, mask)
        context = ops.einsum("bqt,btd->bqd", weights, values)  # [batch, Tq, Dv]
        if squeeze:
            context, weights = context[:, 0], weights[:, 0]
        if self.return_attention_scores:
            return context, weights
        return context

    def compute_mask(self, query, values, query_mask=None, values_mask=None):
        return [query_mask, None] if self.return_attention_scores else query_mask

    def compute_output_shape(self, query_shape, values_shape):
        if len(query_shape) == 2:
            out, w = (query_shape[0], values_shape[-1]), (query_shape[0], values_shape[1])
        else:
            out = (query_shape[0], query_shape[1], values_shape[-1])
            w = (query_shape[0], query_shape[1], values_shape[1])
        return (out, w) if self.return_attention_scores else out

    def get_config(self):
        config = super().get_config()
        config.update(return_attention_scores=self.return_attention_scores)
        return config


@keras.saving.register_keras_serializable(package="common")
class BahdanauAttention(_DecoderAttention):
    """Additive attention (Bahdanau et al. 2015): `score = v . tanh(W_q q + W_k k)`.

    Args:
        units: width of the shared scoring space.
        return_attention_scores: also return the attention weights.

    Call: `layer(query, values)`, query `[batch, Tq, Dq]` or `[batch, Dq]`,
    values `[batch, Tv, Dv]` (values' mask hides padding).
    Output: context `[batch, Tq, Dv]` (or `[batch, Dv]`), plus weights `[batch, Tq, Tv]`.
    """

    def __init__(self, units: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.query_dense = keras.layers.Dense(self.units, use_bias=False, name="query_dense", dtype=self.dtype_policy)
        self.key_dense = keras.layers.Dense(self.units, name="key_dense", dtype=self.dtype_policy)
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="score_dense", dtype=self.dtype_policy)

    def build(self, query_shape, values_shape):
        self.query_dense.build(query_shape)
        self.key_dense.build(values_shape)
        self.score_dense.build((None, self.units))
        self.built = True

    def _scores(self, query, values):
        q = ops.expand_dims(self.query_dense(query), 2)  # [batch, Tq, 1, units]
        k = ops.expand_dims(self.key_dense(values), 1)  # [batch, 1, Tv, units]
        return ops.squeeze(self.score_dense(ops.tanh(q + k)), -1)  # [batch, Tq, Tv]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="common")
class LuongAttention(_DecoderAttention):
    """Multiplicative attention (Luong et al. 2015).

    Args:
        score: "dot" (`q . k`, needs equal widths) or "general" (`q . W k`).
        scale: divide scores by `sqrt(width)`, which keeps softmax from saturating for wide states.
        return_attention_scores: also return the attention weights.

    Call and shapes as `BahdanauAttention`.
    """

    def __init__(self, score: str = "general", scale: bool = False, **kwargs):
        super().__init__(**kwargs)
        if score not in ("dot", "general"):
            raise ValueError(f"score must be 'dot' or 'general', got {score!r}")
        self.score = score
        self.scale = bool(scale)
        self.key_dense = None

    def build(self, query_shape, values_shape):
        if self.score == "general":
            self.key_dense = keras.layers.Dense(query_shape[-1], use_bias=False, name="key_dense", dtype=self.dtype_policy)
            self.key_dense.build(values_shape)
        elif query_shape[-1] != values_shape[-1]:
            raise ValueError(
                f"dot attention needs equal query/value widths, got {query_shape[-1]} and {values_shape[-1]}; use score='general'"
            )
        self.built = True

    def _scores(self, query, values):
        keys = self.key_dense(values) if self.key_dense is not None else values
        scores = ops.einsum("bqd,btd->bqt", query, keys)
        if self.scale:
            scores = scores / ops.sqrt(ops.cast(query.shape[-1], scores.dtype))
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(score=self.score, scale=self.scale)
        return config


@contextlib.contextmanager
def native_recurrence(model: keras.Model):
    """Within this context, `model`'s `ScanLSTM`/`ScanGRU` layers run Keras' native loop.

    Same weights and outputs, nothing rebuilt or copied; graphs traced inside (exports) carry
    native RNN ops (ONNX LSTM/GRU, TF's fused kernels) instead of a generic loop, which tf2onnx
    cannot convert.
    """
    scans = [layer for layer in model._flatten_layers() if isinstance(layer, _HoistedScan)]
    for layer in scans:
        layer.native_loop = True
    try:
        yield model
    finally:
        for layer in scans:
            layer.native_loop = False


def recurrent_cells(layers) -> list:
    """The LSTM/GRU cells of `layers` (RNN layers or `Bidirectional` wrappers), forward then backward."""
    cells = []
    for layer in layers:
        if isinstance(layer, keras.layers.Bidirectional):
            cells += [layer.forward_layer.cell, layer.backward_layer.cell]
        else:
            cells.append(layer.cell)
    return cells


@contextlib.contextmanager
def weight_dropped(layers, rate: float, seed: keras.random.SeedGenerator):
    """Within this context, every LSTM/GRU cell of `layers` computes with DropConnect on its recurrent
    kernel (Wan et al. 2013; the "weight drop" of Merity et al. 2018): `recurrent_kernel * mask /
    (1 - rate)`, one Bernoulli mask per cell and per call, shared by every sequence of the batch and
    every time step. The recurrence itself is untouched, so Keras' fused/cuDNN kernel or the scan
    (`ScanLSTM`) still runs it (unlike `recurrent_dropout`, which forces a per-step loop); the
    variable gets its gradient through the product and is restored on exit. `rate` 0 does nothing.
    Call the layers inside the context in training only."""
    if not rate:
        yield
        return
    if not 0.0 < rate < 1.0:
        raise ValueError(f"weight drop rate must be in [0, 1), got {rate!r}")
    cells = recurrent_cells(layers)
    originals = [cell.recurrent_kernel for cell in cells]
    try:
        for cell, kernel in zip(cells, originals):
            keep = keras.random.uniform(tuple(kernel.shape), seed=seed) >= rate
            dropped = ops.convert_to_tensor(kernel) * ops.cast(keep, kernel.dtype) / (1.0 - rate)
            object.__setattr__(cell, "recurrent_kernel", dropped)  # not tracked: the variable stays the weight
        yield
    finally:
        for cell, kernel in zip(cells, originals):
            object.__setattr__(cell, "recurrent_kernel", kernel)


def build_streaming_step_model(
    stack: RecurrentStack, input_dim: int, chunk_size: int = 1, batch_size: int = 1, name: str = "streaming_step"
) -> keras.Model:
    """A fixed-shape model that runs `stack`'s weights on one chunk with explicit state.

    Inputs: `[frames [batch, chunk, input_dim], *states]`; outputs: `[outputs [batch, chunk, width], *new_states]`.
    The recurrence is unrolled over the chunk, so the graph has no loop: TFLite converts it
    with builtin ops only. Feeding the returned states back in reproduces the full-sequence
    run of `stack` (see `stream`).
    """
    if stack.bidirectional:
        raise ValueError("a bidirectional stack needs the future, so it cannot stream; use bidirectional=False")
    if not stack.built:
        raise ValueError("build (or train) the stack before making a streaming step model from it")
    config = stack.get_config()
    config.update(return_sequences=True, return_state=True, unroll=True, name=stack.name, dropout_rate=0.0)
    step_stack = RecurrentStack.from_config(config)
    frames = keras.Input((chunk_size, input_dim), batch_size=batch_size, name="frames")
    states = [keras.Input((w,), batch_size=batch_size, name=f"state_{i}") for i, w in enumerate(stack.state_shapes())]
    results = step_stack(frames, initial_state=states)
    step_stack.set_weights(stack.get_weights())
    return keras.Model([frames] + states, results, name=name)


def stream(step_model: keras.Model, sequence: np.ndarray, initial_state: Sequence[np.ndarray]) -> tuple[np.ndarray, list]:
    """Runs `sequence` `[batch, time, features]` through a step model chunk by chunk.

    `time` must be a multiple of the step model's chunk size. Returns the concatenated
    outputs `[batch, time, width]` and the final states.
    """
    chunk = step_model.inputs[0].shape[1]
    if sequence.shape[1] % chunk:
        raise ValueError(f"sequence length {sequence.shape[1]} is not a multiple of the chunk size {chunk}")
    states = [np.asarray(s) for s in initial_state]
    outputs = []
    for start in range(0, sequence.shape[1], chunk):
        results = step_model([sequence[:, start:start + chunk]] + states, training=False)
        outputs.append(np.asarray(results[0]))
        states = [np.asarray(s) for s in results[1:]]
    return np.concatenate(outputs, axis=1), states
