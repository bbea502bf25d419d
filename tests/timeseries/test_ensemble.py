"""`model.ensemble_size`: N networks from seeds seed..seed+N-1, their forecasts averaged in one model."""

import json

import numpy as np
import pytest

from apps.timeseries import train
from apps.timeseries.model import build_ensemble


def test_ensemble_averages_its_members_scores_each_and_resumes_after_a_finished_member(tmp_path, interrupt_fit, capsys):
    import keras

    from common.pipeline import load_run

    run_dir = tmp_path / "run"
    args = ["--config", "tiny", "--run-dir", str(run_dir), "--set", "model.ensemble_size=2",
            "--set", "train.epochs=1"]
    restore_fit = interrupt_fit(2)
    assert train.main(args) == 130  # interrupted in member 2: staged, member 1 kept for --resume
    assert (tmp_path / "run.partial" / "members" / "1" / "model.keras").is_file() and not run_dir.exists()
    restore_fit()
    capsys.readouterr()
    assert train.main([*args, "--resume"]) == 0
    assert "member 1 already trained" in capsys.readouterr().out
    assert not list(run_dir.glob("members/*/model.keras"))  # the weights live once, in the ensemble

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == [1, 1] and metrics["members"]["size"] == 2
    for split in ("val", "test"):
        scores = metrics["members"][f"{split}_mse"]
        assert set(scores) == {"member_1", "member_2", "ensemble"}
        # Averaging two forecasts never does worse than the mean of their squared errors (Jensen).
        assert scores["ensemble"] <= (scores["member_1"] + scores["member_2"]) / 2 + 1e-9, scores
    # The run's headline test MSE is the ensemble's.
    assert metrics["test"]["model"]["mse"] == pytest.approx(metrics["members"]["test_mse"]["ensemble"], rel=1e-4)

    model = load_run(run_dir).model
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert [m.name for m in members] == ["member_1", "member_2"]
    x = np.random.default_rng(0).standard_normal((3, *model.inputs[0].shape[1:])).astype("float32")
    outputs = [np.asarray(m.predict_on_batch(x)) for m in members]
    assert not np.allclose(outputs[0], outputs[1])  # different seeds, different networks
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(x)), (outputs[0] + outputs[1]) / 2, atol=1e-6)


def test_ensemble_keeps_covariate_inputs_and_refuses_one_member():
    from apps.timeseries.config import ModelConfig
    from apps.timeseries.model import build_model
    from common.errors import ConfigError

    cfg = ModelConfig(d_model=8, seg_len=4, dropout_rate=0.0)
    members = [build_model(cfg, 8, 4, 2, num_future_covariates=3, name=f"member_{k + 1}") for k in range(2)]
    ensemble = build_ensemble(members)
    assert sorted(t.name for t in ensemble.inputs) == ["future_covariates", "window"]
    rng = np.random.default_rng(1)
    feed = {"window": rng.standard_normal((2, 8, 2)).astype("float32"),
            "future_covariates": rng.standard_normal((2, 12, 3)).astype("float32")}
    expected = (np.asarray(members[0](feed)) + np.asarray(members[1](feed))) / 2
    np.testing.assert_allclose(np.asarray(ensemble(feed)), expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 members"):
        build_ensemble(members[:1])
    with pytest.raises(ConfigError, match="ensemble_size"):
        ModelConfig(ensemble_size=0)
