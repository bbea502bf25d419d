"""The experiments' compiled JAX loop and the tiny sweep end to end (JAX only).

`make test` runs tests/experiments in its JAX pass; under another backend this file skips.
"""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="JAX only: make test runs tests/experiments again in its JAX pass")


def _dense_models(seeds):
    models = []
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((3, 2))
        models.append(keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs))))
    return models


def _data(streams, steps, rng):
    xs = rng.normal(size=(streams, steps, 5, 3, 2)).astype("float32")
    return xs, xs.sum(axis=(-1, -2))[..., None] * 3.0


def test_group_matches_members_trained_alone_and_clips_globally():
    from apps.experiments.loop import GroupTrainer

    xs, ys = _data(2, 3, np.random.default_rng(0))
    sgd = lambda: keras.optimizers.SGD(learning_rate=0.1)  # noqa: E731  (SGD: the update shows the clipped gradient)
    group = GroupTrainer(_dense_models([0, 1, 0]), "mse", sgd, clipnorms=[0.0, 0.0, 0.01])
    before = [v.copy() for v in group.member_values(2)]
    first_losses, first_norms = group.train(xs[:, :1], ys[:, :1], [0, 1, 0])
    # Member 2 (member 0's weights and data, clipnorm 0.01): the same raw gradient norm, and the SGD step
    # moves its weights by exactly lr * 0.01 in global norm, since the raw norm is far above 0.01.
    assert first_norms[2, 0] == pytest.approx(first_norms[0, 0], rel=1e-5) and first_norms[2, 0] > 1.0
    moved = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(group.member_values(2), before)))
    assert moved == pytest.approx(0.1 * 0.01, rel=1e-4)
    rest_losses, rest_norms = group.train(xs[:, 1:], ys[:, 1:], [0, 1, 0])  # two more steps, one call
    losses, norms = np.concatenate([first_losses, rest_losses], 1), np.concatenate([first_norms, rest_norms], 1)
    assert losses.shape == norms.shape == (3, 3)
    for member, (seed, stream) in enumerate([(0, 0), (1, 1)]):
        alone = GroupTrainer(_dense_models([seed]), "mse", sgd, clipnorms=[0.0])
        alone_losses, alone_norms = alone.train(xs[stream:stream + 1], ys[stream:stream + 1], [0])
        np.testing.assert_allclose(losses[member], alone_losses[0], rtol=1e-5)
        np.testing.assert_allclose(norms[member], alone_norms[0], rtol=1e-5)
        for mine, theirs in zip(group.member_values(member), alone.member_values(0)):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_retired_members_keep_their_weights():
    from apps.experiments.loop import GroupTrainer

    xs, ys = _data(1, 2, np.random.default_rng(1))
    models = _dense_models([0, 1])
    group = GroupTrainer(models, "mse", lambda: keras.optimizers.Adam(0.01), clipnorms=[1.0, 1.0])
    group.train(xs, ys, [0, 0])
    frozen = [v.copy() for v in group.member_values(0)]
    group.retire([0])
    assert group.live == [1] and group.predict(xs[0, 0]).shape == (1, 5, 1)
    moving = [v.copy() for v in group.member_values(1)]
    losses, _ = group.train(xs, ys, [0])
    assert losses.shape == (1, 2)
    for a, b in zip(group.member_values(0), frozen):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(group.member_values(1), moving))
    group.write_back()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(models[0].trainable_variables[0]), frozen[0])


def test_hidden_gradient_probe_matches_the_uncompiled_one():
    from apps.experiments.gradients import HiddenGradientProbe, hidden_gradient_norms
    from apps.experiments.model import build_model
    from apps.experiments.tasks import adding_problem

    x, y = adding_problem(np.random.default_rng(2), 6, 22)
    model = build_model("gru_chrono", 4, 22, 2, 1, "mse")
    values = [np.asarray(v.value) for v in model.trainable_variables]
    np.testing.assert_allclose(HiddenGradientProbe(model, "mse")(values, x, y),
                               hidden_gradient_norms(model, x, y, "mse"), rtol=1e-4)


def test_a_diverging_run_is_reported_and_stays_json(tmp_path):
    from apps.experiments import run
    from apps.experiments.config import PRESETS, ModelConfig, OptimizerConfig
    from apps.experiments.tasks import get_task

    base = PRESETS["tiny"]
    cfg = dataclasses.replace(base, model=ModelConfig(cells=("lstm_no_forget",), units=4),
                              optimizer=OptimizerConfig(optimizer="sgd", learning_rate=1e9, batch_size=8),
                              sweep=dataclasses.replace(base.sweep, clipnorms=(0.0,), seeds=(0,)))
    spec = get_task("adding")
    validation = spec.generate(np.random.default_rng(0), 64, 20)
    rows, _, traces, group = run.train_group(spec, 20, "lstm_no_forget", cfg, validation)
    (row,) = rows
    assert row["status"] == "diverged" and not row["solved"] and row["steps_run"] <= 4
    assert not np.all(np.isfinite(traces["loss"][0]))
    assert traces["gates_init"] is None  # the keep-gate plot covers LSTM/GRU only
    json.dumps(rows, allow_nan=False)
    assert group["runs"] == 1


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    from apps.experiments import run
    from common.gates import main as inspect_main

    run_dir = tmp_path / "exp"
    # Two worker processes (spawned, longest groups first), as `make experiments` runs on a 2-core machine.
    assert run.main(["--config", "tiny", "--set", "sweep.workers=2", "--run-dir", str(run_dir)]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["workers"] == 2
    json.dumps(results, allow_nan=False)  # standard JSON: no NaN even for the step-0 train loss
    rows = results["runs"]
    assert len(rows) == 8  # 2 tasks x 1 length x 1 variant x 2 clipnorms x 2 seeds
    assert {(r["clipnorm"], r["seed"]) for r in rows} == {(0.0, 0), (1.0, 0), (0.0, 1), (1.0, 1)}
    traces = np.load(run_dir / "traces.npz")
    for row in rows:
        assert row["status"] in ("solved", "budget", "diverged") and row["init"] == "chrono"
        assert len(row["gradient_norms_init"]) == row["length"] == 20
        assert row["curve"]["step"][0] == 0 and row["curve"]["step"][-1] == row["steps_run"]
        assert traces[f"{row['run']}/grad_norm"].shape == (row["steps_run"],)
    # Same seed, same initial weights: clip 0 and clip 1 start from one point.
    seed0 = [r for r in rows if r["task"] == "adding" and r["seed"] == 0]
    assert seed0[0]["gradient_norms_init"] == seed0[1]["gradient_norms_init"]
    assert len(results["groups"]) == 2 and all(g["runs"] == 4 for g in results["groups"])
    summary = (run_dir / "summary.md").read_text()
    assert summary.count("| adding |") == 2 and summary.count("| temporal_order |") == 2
    assert (run_dir / "results.md").read_text().count("| lstm_chrono |") == 8 + 2
    for plot in ("learning_curves.png", "gradient_flow.png", "grad_norms.png", "keep_gates_adding_T20.png",
                 "keep_gates_temporal_order_T20.png"):
        assert (run_dir / plot).stat().st_size > 1000
    assert json.loads((run_dir / "config.json").read_text())["optimizer"]["batch_size"] == 8
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_results", Path(__file__).parents[2] / "tools" / "check_results.py")
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    assert checker.check_file(run_dir / "ledger.jsonl") == []  # ready for docs/results.jsonl
    ledger = [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines()]
    finals = [r for r in ledger if r["metric"] in ("accuracy", "fraction_within_0.04")]
    assert len(finals) == 8 and all(r["length"] == 20 and "cell=lstm_chrono" in r["setting"] for r in finals)
    out = capsys.readouterr().out
    assert "member-steps/s" in out and "| temporal_order | 20 | lstm_chrono | 1 |" in out
    # Every trained model is a run dir that gate inspection can open (the Chrono initializer loads too).
    model_dir = run_dir / "models" / "adding_T20_lstm_chrono_clip1_seed0"
    gates = tmp_path / "gates.png"
    assert inspect_main(["--run-dir", str(model_dir), "--input", str(model_dir / "sample_input.npy"),
                         "--out", str(gates)]) == 0
    assert gates.is_file() and "max |error|" in capsys.readouterr().out
    assert run.main(["--config", "tiny", "--run-dir", str(run_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err

    # The workers' rows are the ones this process trains itself (the table does not depend on workers);
    # one group (four runs) retrained here says so at half the cost of all of them.
    from apps.experiments.config import PRESETS

    job = run._group_jobs(PRESETS["tiny"])[0]
    here = run.run_group_job(job, PRESETS["tiny"], str(tmp_path / "in_process"))["rows"]
    there = [r for r in rows if (r["task"], r["length"]) == job[:2]]
    assert len(there) == 4 and [r["run"] for r in there] == [r["run"] for r in here]
    for a, b in zip(there, here):
        assert a["status"] == b["status"] and a["steps_run"] == b["steps_run"]
        np.testing.assert_allclose(a["curve"]["train_loss"][1:], b["curve"]["train_loss"][1:], rtol=1e-4)
        np.testing.assert_allclose(a["gradient_norms_init"], b["gradient_norms_init"], rtol=1e-4)
