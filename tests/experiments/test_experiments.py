"""Long-time-lag experiments: task generators, scoring, cell variants, gradient-norm probe, CLI errors.

The compiled loop and the sweep end to end are JAX-only: tests/experiments/test_jax_loop.py,
run by the JAX pass of `make test` (skipped under another backend).
"""


import keras
import numpy as np
import pytest

from apps.experiments import run
from apps.experiments.gradients import hidden_gradient_norms
from apps.experiments.model import CELL_TYPES, VARIANTS, build_model, parse_variant
from apps.experiments.tasks import (
    SYMBOLS,
    adding_problem,
    baseline_predictions,
    score,
    temporal_order_problem,
)



def test_adding_problem_definition():
    length = 40
    x, y = adding_problem(np.random.default_rng(0), 500, length)
    assert x.shape == (500, length, 2) and y.shape == (500, 1) and x.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= -1) & (values <= 1))
    marked = markers == 1.0
    assert np.all(marked.sum(axis=1) == 2)
    first = marked.argmax(axis=1)
    second = length - 1 - marked[:, ::-1].argmax(axis=1)
    assert first.max() < 10 and second.max() < length // 2 - 1
    assert np.all(markers[:, -1] == -1.0)
    assert np.all((markers[:, 0] == -1.0) | marked[:, 0])
    counted = marked.copy()
    counted[:, 0] = False  # A marked first pair counts as 0 (paper).
    expected = 0.5 + (values * counted).sum(axis=1) / 4.0
    np.testing.assert_allclose(y[:, 0], expected, atol=1e-6)


def test_temporal_order_definition():
    length = 60
    x, labels = temporal_order_problem(np.random.default_rng(1), 400, length)
    assert x.shape == (400, length, len(SYMBOLS)) and labels.shape == (400,)
    np.testing.assert_array_equal(x.sum(-1), 1.0)  # one-hot
    symbols = x.argmax(-1)
    assert np.all(symbols[:, 0] == SYMBOLS.index("E")) and np.all(symbols[:, -1] == SYMBOLS.index("B"))
    relevant = symbols >= SYMBOLS.index("X")
    assert np.all(relevant.sum(1) == 2)
    positions = [np.flatnonzero(row) for row in relevant]
    t1 = np.array([p[0] for p in positions])
    t2 = np.array([p[1] for p in positions])
    assert t1.min() >= 6 and t1.max() <= 12 and t2.min() >= 30 and t2.max() <= 36
    is_y = lambda t: symbols[np.arange(400), t] == SYMBOLS.index("Y")  # noqa: E731
    np.testing.assert_array_equal(labels, 2 * is_y(t1) + is_y(t2))
    assert set(np.unique(labels)) == {0, 1, 2, 3}


def test_scores_and_baselines():
    x, y = adding_problem(np.random.default_rng(2), 20000, 100)
    constant = score("adding", baseline_predictions("adding", len(y)), y)
    # Var(X1 + X2) / 16 with X1 zeroed in the 10% of sequences whose first pair is marked.
    assert abs(constant["mse"] - (0.9 / 3 + 1 / 3) / 16) < 0.002
    assert 0.12 < constant["fraction_within_0.04"] < 0.2
    _, labels = temporal_order_problem(np.random.default_rng(2), 4000, 30)
    assert abs(score("temporal_order", baseline_predictions("temporal_order", 4000), labels)["accuracy"] - 0.25) < 0.03
    assert score("adding", y, y) == {"mse": 0.0, "fraction_within_0.04": 1.0}
    labels = np.array([0, 1, 2, 3])
    assert score("temporal_order", np.eye(4), labels)["accuracy"] == 1.0
    with pytest.raises(ValueError, match="length"):
        adding_problem(np.random.default_rng(0), 2, 10)


@pytest.mark.parametrize("variant", [*CELL_TYPES, "lstm_chrono"])
def test_gradient_norms_one_value_per_step(variant):
    length = 25
    x, y = adding_problem(np.random.default_rng(3), 6, length)
    model = build_model(variant, 4, length, 2, 1, "mse")
    norms = hidden_gradient_norms(model, x, y, "mse")
    assert norms.shape == (length,) and np.all(np.isfinite(norms)) and np.all(norms > 0)
    # At t = T the only path is the linear head and the fixed 0.25 rescaling: dLoss/dh_T = 2 (y_hat - y) 0.25 W_head.
    prediction = keras.ops.convert_to_numpy(model(x))
    head = keras.ops.convert_to_numpy(model.get_layer("head").kernel)[:, 0]
    expected = np.mean(np.abs(2 * (prediction[:, 0] - y[:, 0]))) * 0.25 * np.linalg.norm(head)
    np.testing.assert_allclose(norms[-1], expected, rtol=1e-4)


def test_variants_set_the_gate_biases():
    def bias(variant, length=50):
        cell = build_model(variant, 8, length, 2, 1, "mse").get_layer("recurrent").cell
        return keras.ops.convert_to_numpy(cell.bias)

    np.testing.assert_array_equal(bias("lstm").reshape(4, 8)[1], 1.0)  # Keras' forget bias +1
    forget = bias("lstm_chrono").reshape(4, 8)[1]
    assert np.all((np.exp(forget) >= 1 - 1e-5) & (np.exp(forget) <= 49 + 1e-3))  # t_max = T = 50
    assert np.all(bias("gru_chrono").sum(axis=0).reshape(3, 8)[0] > 0) and not bias("gru").any()
    assert np.all(bias("lstm_no_forget_chrono").reshape(3, 8)[0] < 0)
    assert set(VARIANTS) >= {"lstm", "lstm_chrono", "gru", "gru_chrono", "simple_rnn", "lstm_no_forget"}
    assert parse_variant("gru_chrono") == ("gru", "chrono")
    with pytest.raises(ValueError, match="variant"):
        parse_variant("simple_rnn_chrono")


def test_cli_errors_need_no_backend(tmp_path, capsys):
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "a"), "--set", "model.cells=('lstm','tcn')"]) == 2
    assert "tcn" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "b"), "--set", "sweep.nope=1"]) == 2
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "b"), "--set", "sweep.steps_per_call=3"]) == 2
    assert "divide sweep.eval_every" in capsys.readouterr().err
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "b"), "--set", "train.clipnorm=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err  # the old embedded TrainConfig is gone
    if keras.backend.backend() != "jax":
        assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "c")]) == 2
        assert "KERAS_BACKEND=jax" in capsys.readouterr().err
        assert not (tmp_path / "c").exists()
