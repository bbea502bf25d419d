"""Long-time-lag experiments: task generators, scoring, gradient-norm probe, the tiny sweep end to end."""

import json

import keras
import numpy as np
import pytest

from apps.experiments import run
from apps.experiments.gradients import hidden_gradient_norms
from apps.experiments.model import CELL_TYPES, build_model
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


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_gradient_norms_one_value_per_step(cell):
    length = 25
    x, y = adding_problem(np.random.default_rng(3), 6, length)
    model = build_model(cell, 4, length, 2, 1, "mse")
    norms = hidden_gradient_norms(model, x, y, "mse")
    assert norms.shape == (length,) and np.all(np.isfinite(norms)) and np.all(norms > 0)
    # At t = T the only path is the linear head and the fixed 0.25 rescaling: dLoss/dh_T = 2 (y_hat - y) 0.25 W_head.
    prediction = keras.ops.convert_to_numpy(model(x))
    head = keras.ops.convert_to_numpy(model.get_layer("head").kernel)[:, 0]
    expected = np.mean(np.abs(2 * (prediction[:, 0] - y[:, 0]))) * 0.25 * np.linalg.norm(head)
    np.testing.assert_allclose(norms[-1], expected, rtol=1e-4)


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    run_dir = tmp_path / "exp"
    assert run.main(["--config", "tiny", "--run-dir", str(run_dir)]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    json.dumps(results, allow_nan=False)  # standard JSON: no NaN even for the step-0 train loss
    rows = results["runs"]
    assert len(rows) == 4  # 2 tasks x 1 length x 2 cells x 1 clipnorm
    for row in rows:
        assert row["status"] in ("solved", "budget", "time", "diverged")
        assert len(row["gradient_norms_init"]) == row["length"] == 20
        assert row["curve"]["step"][0] == 0 and row["curve"]["step"][-1] == row["steps_run"]
    table = (run_dir / "results.md").read_text()
    assert table.count("| adding |") == 2 and table.count("| temporal_order |") == 2
    for plot in ("learning_curves.png", "gradient_flow.png"):
        assert (run_dir / plot).stat().st_size > 1000
    # Every trained model is a run dir that gate inspection can open.
    from common.inspect import main as inspect_main

    model_dir = run_dir / "models" / "adding_T20_lstm_no_forget_clip1"
    out = tmp_path / "gates.png"
    assert inspect_main(["--run-dir", str(model_dir), "--input", str(model_dir / "sample_input.npy"),
                         "--out", str(out)]) == 0
    assert out.is_file()
    assert "max |error|" in capsys.readouterr().out


def test_bad_config_and_existing_run_dir(tmp_path, capsys):
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "a"), "--set", "model.cells=('lstm','tcn')"]) == 2
    assert "tcn" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "b"), "--set", "sweep.nope=1"]) == 2
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.json").write_text("{}")
    assert run.main(["--config", "tiny", "--run-dir", str(tmp_path / "c")]) == 2
    assert "--overwrite" in capsys.readouterr().err
