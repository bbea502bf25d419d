"""Real-data accuracy on ETTh1 (slow: a few minutes on CPU; `make test-slow`)."""

import json

import pytest

from apps.timeseries import train


@pytest.mark.slow
def test_segrnn_etth1_96_beats_naive_and_nears_dlinear(shared_data, tmp_path):
    run = tmp_path / "etth1"
    argv = ["--config", "ett", "--run-dir", str(run), "--set", f"data.path={shared_data / 'timeseries' / 'ETTh1.csv'}",
            "--set", "model.d_model=128", "--set", "model.loss=mae", "--set", "train.epochs=3"]
    assert train.main(argv) == 0
    test = json.loads((run / "metrics.json").read_text())["test"]
    # Published input-96 numbers: naive ~1.29, DLinear 0.386, SegRNN 0.368 (MSE, scaled).
    assert test["model"]["mse"] < 0.40
    assert test["model"]["mse"] < 0.5 * test["naive"]["mse"]
    assert test["dlinear"]["mse"] < 0.40
