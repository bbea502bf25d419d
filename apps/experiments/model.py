"""One recurrent layer + a linear/softmax head: the model every experiment trains.

A *variant* names the cell and its initialisation: `simple_rnn`, `lstm`, `gru`,
`lstm_no_forget` (the 1997 LSTM, `common.cells.NoForgetLSTMCell`) keep Keras' default
initialisers (LSTM: forget-gate bias +1, Jozefowicz et al. 2015; GRU and the no-forget cell:
zero biases); a `_chrono` suffix (`lstm_chrono`, `gru_chrono`, `lstm_no_forget_chrono`) sets
the gate biases with chrono initialisation (`common.initializers.Chrono`, Tallec & Ollivier
2018) for time scales up to `t_max` steps.

LSTM and GRU are Keras' own layers: vmapped over a group's members in the compiled loop they ran
3.2x (LSTM) and 2.1x (GRU) faster than `common.layers.ScanLSTM`/`ScanGRU` (T=100, 32 units,
2 members, 2 CPU cores, 2026-12-03: 248.5 vs 76.9 and 277.6 vs 132.3 member-steps/s).
"""

from __future__ import annotations

import keras

from common.cells import NoForgetLSTMCell
from common.initializers import Chrono, lstm_chrono_kwargs

CELL_TYPES = ("simple_rnn", "lstm", "gru", "lstm_no_forget")
INITS = ("default", "chrono")
VARIANTS = tuple(f"{cell}_chrono" if init == "chrono" else cell
                 for cell in CELL_TYPES for init in INITS if not (cell == "simple_rnn" and init == "chrono"))
RECURRENT_LAYER_NAME = "recurrent"


def parse_variant(variant: str) -> tuple[str, str]:
    """`"lstm_chrono"` -> `("lstm", "chrono")`; `"gru"` -> `("gru", "default")`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown cell variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if variant.endswith("_chrono"):
        return variant[: -len("_chrono")], "chrono"
    return variant, "default"


def make_recurrent_layer(cell: str, units: int, init: str = "default", t_max: int = 0,
                         recurrent_scale: float = 1.0, return_sequences: bool = False,
                         name: str = RECURRENT_LAYER_NAME):
    """A `[batch, time, features] -> [batch, units]` recurrent layer of the named cell type.

    `recurrent_scale` multiplies the orthogonal recurrent kernel (its spectral radius); > 1 makes
    gradients explode through time, the set-up of the clipping demonstration.
    """
    if cell not in CELL_TYPES:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_TYPES)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    if init == "chrono" and cell == "simple_rnn":
        raise ValueError("chrono initialisation needs a gated cell (lstm, gru, lstm_no_forget), not simple_rnn")
    common = {"recurrent_initializer": keras.initializers.Orthogonal(gain=recurrent_scale)}
    if cell == "simple_rnn":
        return keras.layers.SimpleRNN(units, return_sequences=return_sequences, name=name, **common)
    if cell == "lstm":
        bias = lstm_chrono_kwargs(t_max) if init == "chrono" else {}
        return keras.layers.LSTM(units, return_sequences=return_sequences, name=name, **common, **bias)
    if cell == "gru":
        bias = {"bias_initializer": Chrono(t_max, gates="gru")} if init == "chrono" else {}
        return keras.layers.GRU(units, return_sequences=return_sequences, name=name, **common, **bias)
    bias = {"bias_initializer": Chrono(t_max, gates="lstm_no_forget")} if init == "chrono" else {}
    return keras.layers.RNN(NoForgetLSTMCell(units, **common, **bias), return_sequences=return_sequences, name=name)


def build_model(variant: str, units: int, length: int, input_dim: int, output_dim: int, task_loss: str,
                t_max: int = 0, recurrent_scale: float = 1.0) -> keras.Model:
    """Input `[batch, length, input_dim]` -> recurrent layer -> Dense head (adding: `[batch, 1]`; else class probabilities).

    `t_max` is the chrono time scale (0: the sequence length).
    """
    cell, init = parse_variant(variant)
    inputs = keras.Input((length, input_dim), name="sequence")
    layer = make_recurrent_layer(cell, units, init, t_max or length, recurrent_scale)
    hidden = layer(inputs)  # [batch, units]
    if task_loss == "sparse_categorical_crossentropy":
        outputs = keras.layers.Dense(output_dim, activation="softmax", name="head")(hidden)
    else:
        outputs = keras.layers.Dense(output_dim, name="head")(hidden)
        # The adding target 0.5 + (X1 + X2) / 4 has a standard deviation of only 0.2; predicting
        # X1 + X2 and mapping it back lets the head start at unit scale. Without this, LSTMs sat on
        # the predict-0.5 plateau for 2000+ steps at T=50 in our runs (docs/results.md, Experiments).
        outputs = keras.layers.Rescaling(scale=0.25, offset=0.5, name="to_target_range")(outputs)
    return keras.Model(inputs, outputs, name=f"{variant}_model")
