"""Chrono initialisation: bias layout and statistics per cell, RecurrentStack option, save/load round trip."""

import keras
import numpy as np
import pytest

from common.cells import NoForgetLSTMCell
from common.initializers import Chrono, lstm_chrono_kwargs
from common.layers import RecurrentStack


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _check_keep_bias(keep, t_max):
    """log U[1, t_max - 1]: exp(b) uniform on [1, t_max - 1] (mean t_max / 2, std (t_max - 2) / sqrt(12))."""
    u = np.exp(keep.astype("float64"))
    assert u.min() >= 1.0 - 1e-4 and u.max() <= t_max - 1 + 1e-3
    assert abs(u.mean() - t_max / 2) < 0.05 * t_max
    assert abs(u.std() - (t_max - 2) / np.sqrt(12)) < 0.05 * t_max
    assert len(np.unique(keep)) > 0.9 * len(keep)  # one draw per unit, not one shared value


def test_lstm_layout_and_statistics():
    units, t_max = 2000, 1000
    bias = _np(Chrono(t_max, seed=1)((4 * units,)))
    i, f, c, o = bias.reshape(4, units)
    _check_keep_bias(f, t_max)
    np.testing.assert_allclose(i, -f)
    assert not c.any() and not o.any()
    # Zero kernels: an orthogonal 2000 x 8000 recurrent kernel alone takes seconds to draw.
    layer = keras.layers.LSTM(units, kernel_initializer="zeros", recurrent_initializer="zeros",
                              **lstm_chrono_kwargs(t_max, seed=1))
    layer.build((None, 3, 2))
    np.testing.assert_allclose(_np(layer.cell.bias), bias)  # the layer gets exactly this layout
    # Keras' default for comparison: forget bias 1 (a memory of ~4 steps).
    default = keras.layers.LSTM(8)
    default.build((None, 3, 2))
    np.testing.assert_array_equal(_np(default.cell.bias).reshape(4, 8)[1], 1.0)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_keeps_state_through_update_gate(reset_after):
    units, t_max = 2000, 200
    layer = keras.layers.GRU(units, reset_after=reset_after, return_sequences=True, kernel_initializer="zeros",
                             recurrent_initializer="zeros",
                             bias_initializer=Chrono(t_max, gates="gru", seed=2))
    layer.build((None, 3, 2))
    bias = _np(layer.cell.bias)
    assert bias.shape == ((2, 3 * units) if reset_after else (3 * units,))
    total = bias.sum(axis=0) if reset_after else bias  # both rows enter the gates as a sum
    z, r, h = total.reshape(3, units)
    _check_keep_bias(z, t_max)
    assert not r.any() and not h.any()
    if reset_after:
        assert not bias[1].any()
    # Keras' GRU: h = z * h_prev + (1 - z) * candidate, so z near 1 keeps the state: with zero weights
    # and zero input, a unit with z = sigmoid(log u) = u / (1 + u) decays its state by exactly that per step.
    h0 = np.ones((1, units), dtype="float32")
    out = _np(layer(np.zeros((1, 2, 2), dtype="float32"), initial_state=[h0]))
    keep = np.exp(z) / (1 + np.exp(z))
    np.testing.assert_allclose(out[0, 1], keep**2, rtol=1e-4)  # candidate is tanh(0) = 0


def test_no_forget_cell_gets_negative_input_bias():
    cell = NoForgetLSTMCell(1000, kernel_initializer="zeros", recurrent_initializer="zeros", bias_initializer=Chrono(50, gates="lstm_no_forget", seed=3))
    cell.build((None, 2))
    i, g, o = _np(cell.bias).reshape(3, 1000)
    _check_keep_bias(-i, 50)
    assert not g.any() and not o.any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="t_max"):
        Chrono(2)
    with pytest.raises(ValueError, match="gates"):
        Chrono(100, gates="rnn")
    with pytest.raises(ValueError, match="unit_forget_bias"):
        Chrono(100)((6,))  # what Keras' LSTM asks for with unit_forget_bias=True: one gate slice
    with pytest.raises(ValueError, match="chrono_t_max"):
        RecurrentStack("lstm", (4,), chrono_t_max=1)


def test_seeded_is_reproducible_and_unseeded_differs():
    a, b = _np(Chrono(100, seed=5)((40,))), _np(Chrono(100, seed=5)((40,)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(_np(Chrono(100)((40,))), _np(Chrono(100)((40,))))


def test_save_load_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 3))
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm", **lstm_chrono_kwargs(60))(inputs)
    x = RecurrentStack("gru", (4,), chrono_t_max=30, return_sequences=False, name="stack")(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    gru_bias = _np(model.get_layer("stack").rnn_layers[0].cell.bias)
    kept = np.exp(gru_bias[0, :4])  # update-gate biases of the 4 GRU units
    assert np.all((kept >= 1) & (kept <= 29))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for mine, theirs in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    initializer = loaded.get_layer("lstm").cell.bias_initializer
    assert isinstance(initializer, Chrono) and initializer.t_max == 60 and initializer.gates == "lstm"
    assert loaded.get_layer("lstm").cell.unit_forget_bias is False
    stack = loaded.get_layer("stack")
    assert stack.chrono_t_max == 30 and stack.get_config()["chrono_t_max"] == 30
    assert isinstance(stack.rnn_layers[0].cell.bias_initializer, Chrono)
    assert keras.initializers.deserialize(keras.initializers.serialize(Chrono(7, "gru", seed=1))).get_config() == \
        {"t_max": 7, "gates": "gru", "seed": 1}


def test_recurrent_stack_default_unchanged():
    stack = RecurrentStack("lstm", (4, 4))
    stack.build((None, 5, 3))
    for rnn in stack.rnn_layers:
        np.testing.assert_array_equal(_np(rnn.cell.bias).reshape(4, 4)[1], 1.0)
    assert stack.get_config()["chrono_t_max"] == 0
    chrono = RecurrentStack("lstm", (4, 4), chrono_t_max=100, implementation="scan")
    chrono.build((None, 5, 3))
    first, second = (_np(r.cell.bias).reshape(4, 4) for r in chrono.rnn_layers)
    assert np.all(first[1] > 0) and not np.array_equal(first[1], second[1])  # per-layer draws
    np.testing.assert_allclose(first[0], -first[1])
