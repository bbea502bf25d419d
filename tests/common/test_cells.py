"""NoForgetLSTMCell: NumPy reference math, forget-gate-at-1 equivalence with Keras' LSTM, serialization."""

import keras
import numpy as np
import pytest

from common.cells import NoForgetLSTMCell


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference(x, kernel, recurrent, bias):
    """The 1997 LSTM in NumPy: c_t = c_{t-1} + i_t g_t, h_t = o_t tanh(c_t)."""
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, g, o = _sigmoid(z[:, :units]), np.tanh(z[:, units:2 * units]), _sigmoid(z[:, 2 * units:])
        c = c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def _random_weights(cell, rng):
    for variable in cell.weights:
        variable.assign(rng.normal(0, 0.5, size=variable.shape).astype("float32"))


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    layer = keras.layers.RNN(NoForgetLSTMCell(4), return_sequences=True, return_state=True)
    layer(x)
    _random_weights(layer.cell, rng)
    outputs, h, c = (keras.ops.convert_to_numpy(t) for t in layer(x))
    cell = layer.cell
    ref_out, ref_h, ref_c = _reference(x.astype("float64"), *(keras.ops.convert_to_numpy(w).astype("float64")
                                                                for w in (cell.kernel, cell.recurrent_kernel, cell.bias)))
    assert outputs.shape == (3, 7, 4)
    np.testing.assert_allclose(outputs, ref_out, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(c, ref_c, atol=1e-5)


def test_equals_keras_lstm_with_forget_gate_saturated_open():
    """Keras' LSTM with a huge forget bias (f = sigmoid(60) = 1 in float32) is the no-forget cell."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    units = 5
    mine = keras.layers.RNN(NoForgetLSTMCell(units), return_sequences=True)
    lstm = keras.layers.LSTM(units, return_sequences=True)
    mine(x)
    lstm(x)
    _random_weights(mine.cell, rng)
    blocks = lambda w: np.split(keras.ops.convert_to_numpy(w), 3, axis=-1)  # noqa: E731  (i, g, o)
    k_i, k_g, k_o = blocks(mine.cell.kernel)
    r_i, r_g, r_o = blocks(mine.cell.recurrent_kernel)
    b_i, b_g, b_o = blocks(mine.cell.bias)
    # Keras' layout is (i, f, c, o); zero forget weights plus a bias of 60 pin f to 1.
    lstm.cell.kernel.assign(np.concatenate([k_i, np.zeros_like(k_i), k_g, k_o], axis=-1))
    lstm.cell.recurrent_kernel.assign(np.concatenate([r_i, np.zeros_like(r_i), r_g, r_o], axis=-1))
    lstm.cell.bias.assign(np.concatenate([b_i, np.full_like(b_i, 60.0), b_g, b_o], axis=-1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mine(x)), keras.ops.convert_to_numpy(lstm(x)), atol=1e-5)


def test_config_round_trip_and_save_load(tmp_path):
    inputs = keras.Input((6, 2))
    outputs = keras.layers.Dense(1)(keras.layers.RNN(NoForgetLSTMCell(3, use_bias=False))(inputs))
    model = keras.Model(inputs, outputs)
    cell = model.layers[1].cell
    clone = NoForgetLSTMCell.from_config(cell.get_config())
    assert clone.units == 3 and clone.use_bias is False
    x = np.random.default_rng(2).normal(size=(2, 6, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)


def test_one_train_step_changes_weights():
    inputs = keras.Input((5, 2))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.RNN(NoForgetLSTMCell(4))(inputs)))
    model.compile(optimizer="adam", loss="mse")
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.layers[1].cell.weights]
    x = np.random.default_rng(3).normal(size=(8, 5, 2)).astype("float32")
    loss = model.train_on_batch(x, np.ones((8, 1), dtype="float32"))
    after = [keras.ops.convert_to_numpy(w) for w in model.layers[1].cell.weights]
    assert np.isfinite(np.asarray(loss)).all()
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        NoForgetLSTMCell(0)
