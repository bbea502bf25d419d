"""One recurrent layer + a linear/softmax head: the model every experiment trains.

The cells compared are Keras' SimpleRNN, LSTM and GRU plus `common.cells.NoForgetLSTMCell`
(the 1997 LSTM). All four keep their default initialisers (Keras' LSTM adds 1 to the
forget-gate bias, Jozefowicz et al. 2015), so the comparison is what a user gets by default.
"""

from __future__ import annotations

import keras

from common.cells import NoForgetLSTMCell

CELL_TYPES = ("simple_rnn", "lstm", "gru", "lstm_no_forget")
RECURRENT_LAYER_NAME = "recurrent"


def make_recurrent_layer(cell: str, units: int, return_sequences: bool = False, name: str = RECURRENT_LAYER_NAME):
    """A `[batch, time, features] -> [batch, units]` recurrent layer of the named cell type."""
    if cell == "simple_rnn":
        return keras.layers.SimpleRNN(units, return_sequences=return_sequences, name=name)
    if cell == "lstm":
        return keras.layers.LSTM(units, return_sequences=return_sequences, name=name)
    if cell == "gru":
        return keras.layers.GRU(units, return_sequences=return_sequences, name=name)
    if cell == "lstm_no_forget":
        return keras.layers.RNN(NoForgetLSTMCell(units), return_sequences=return_sequences, name=name)
    raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_TYPES)}")


def build_model(cell: str, units: int, length: int, input_dim: int, output_dim: int, task_loss: str) -> keras.Model:
    """Input `[batch, length, input_dim]` -> recurrent layer -> Dense head (`[batch, 1]` in [0, 1]-ish or class probabilities)."""
    inputs = keras.Input((length, input_dim), name="sequence")
    hidden = make_recurrent_layer(cell, units)(inputs)  # [batch, units]
    if task_loss == "sparse_categorical_crossentropy":
        outputs = keras.layers.Dense(output_dim, activation="softmax", name="head")(hidden)
    else:
        outputs = keras.layers.Dense(output_dim, name="head")(hidden)
        # The adding target 0.5 + (X1 + X2) / 4 has a standard deviation of only 0.2; predicting
        # X1 + X2 and mapping it back lets the head start at unit scale. Without this, LSTMs sat on
        # the predict-0.5 plateau for 2000+ steps at T=50 in our runs (docs/results.md, Experiments).
        outputs = keras.layers.Rescaling(scale=0.25, offset=0.5, name="to_target_range")(outputs)
    return keras.Model(inputs, outputs, name=f"{cell}_model")
