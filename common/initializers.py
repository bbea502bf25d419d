"""Bias initializers for gated recurrent cells: chrono initialisation (Tallec & Ollivier 2018).

A gated cell keeps its state for about `1 / (1 - g)` steps when its keep gate sits at `g`.
Keras' LSTM starts every forget gate at `sigmoid(1) = 0.73` (a memory of ~4 steps), so at
T = 1000 the gradient from the last step to the first is ~0.73^1000 = 0. Chrono
initialisation spreads the units' characteristic times over `[1, t_max]` instead: each
unit's keep-gate bias is `log(u)` with `u ~ U[1, t_max - 1]`, so `sigmoid(b) = u / (1 + u)`
and the unit forgets after about `u + 1` steps. The input gate gets the negative bias, so a
long-memory unit also writes slowly. Choose `t_max` near the longest lag the task needs.

Gate layouts (which slice of the bias vector is which gate):
- `"lstm"`: Keras' `LSTMCell`, bias `[4 * units]` ordered (input, forget, candidate, output):
  forget = `log u`, input = `-log u`, candidate and output 0. Keras' LSTM adds 1 to the forget
  bias unless `unit_forget_bias=False`, so use `lstm_chrono_kwargs(t_max)`.
- `"gru"`: Keras' `GRUCell`, bias `[3 * units]` (`reset_after=False`) or `[2, 3 * units]`
  (`reset_after=True`: input bias, recurrent bias), gates ordered (update z, reset r, candidate).
  Keras computes `h = z * h_prev + (1 - z) * candidate`, so z is the gate that *keeps* the
  state (the forget gate's analogue, and `1 - z` is the input gate's): z = `log u`, the rest 0
  (the recurrent-bias row stays 0; only the sum of the two rows enters the gate).
- `"lstm_no_forget"`: `common.cells.NoForgetLSTMCell`, bias `[3 * units]` ordered (input,
  candidate, output). The 1997 cell has no forget gate to lengthen; only the input-gate half
  applies (input = `-log u`), the negatively biased input gates of the 1997 paper that slow the
  cell state's drift.

    layer = keras.layers.LSTM(32, **lstm_chrono_kwargs(t_max=1000))
    layer = keras.layers.GRU(32, bias_initializer=Chrono(1000, gates="gru"))
"""

from __future__ import annotations

import random

import keras
from keras import ops

GATE_LAYOUTS = {"lstm": 4, "gru": 3, "lstm_no_forget": 3}  # gate blocks in the bias vector


@keras.saving.register_keras_serializable(package="common")
class Chrono(keras.initializers.Initializer):
    """Chrono bias initialisation for a Keras LSTM / GRU / `NoForgetLSTMCell` bias vector.

    Args:
        t_max: the longest time scale (in steps) a unit should be able to keep; must be > 2,
            since the keep-gate biases are `log U[1, t_max - 1]`.
        gates: the bias layout, "lstm", "gru" or "lstm_no_forget" (see the module docstring).
        seed: an int for reproducible biases; None draws one from Python's `random`, which
            `keras.utils.set_random_seed` seeds (as Keras' own random initializers do).
    """

    def __init__(self, t_max: int, gates: str = "lstm", seed: int | None = None):
        if gates not in GATE_LAYOUTS:
            raise ValueError(f"gates must be one of {', '.join(GATE_LAYOUTS)}, got {gates!r}")
        if not float(t_max) > 2:
            raise ValueError(f"t_max must be > 2 (biases are log U[1, t_max - 1]), got {t_max!r}")
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        self.t_max = int(t_max)
        self.gates = gates
        self._init_seed = seed
        self.seed = seed if seed is not None else random.randint(1, 2**31 - 1)

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        blocks = GATE_LAYOUTS[self.gates]
        rows = 1
        if self.gates == "gru" and len(shape) == 2 and shape[0] == 2:
            rows = 2  # reset_after=True: [input bias, recurrent bias]
        elif len(shape) != 1:
            raise ValueError(f"Chrono({self.gates!r}) initialises a bias vector, got shape {shape}")
        if shape[-1] % blocks:
            raise ValueError(
                f"Chrono({self.gates!r}) expects a bias of {blocks} * units, got shape {shape}"
                + ("; Keras' LSTM needs unit_forget_bias=False (use lstm_chrono_kwargs)" if self.gates == "lstm" else "")
            )
        units = shape[-1] // blocks
        dtype = dtype or keras.backend.floatx()
        u = keras.random.uniform((units,), minval=1.0, maxval=float(self.t_max - 1), seed=self.seed, dtype="float32")
        keep = ops.log(u)  # [units]
        zeros = ops.zeros((units,), dtype="float32")
        if self.gates == "lstm":
            parts = [-keep, keep, zeros, zeros]  # input, forget, candidate, output
        elif self.gates == "gru":
            parts = [keep, zeros, zeros]  # update (keep) gate z, reset, candidate
        else:
            parts = [-keep, zeros, zeros]  # input, candidate, output
        bias = ops.concatenate(parts)
        if rows == 2:
            bias = ops.stack([bias, ops.zeros_like(bias)])
        return ops.cast(bias, dtype)

    def get_config(self):
        return {"t_max": self.t_max, "gates": self.gates, "seed": self._init_seed}


def lstm_chrono_kwargs(t_max: int, seed: int | None = None) -> dict:
    """Keyword arguments for `keras.layers.LSTM`/`LSTMCell` that apply chrono initialisation.

    `unit_forget_bias=False` because Keras would otherwise call the initializer on the gate
    slices separately and add 1 to the forget bias.
    """
    return {"bias_initializer": Chrono(t_max, gates="lstm", seed=seed), "unit_forget_bias": False}
