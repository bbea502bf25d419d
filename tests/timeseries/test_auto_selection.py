"""`model.kind=auto`: the network, a baseline or (with `model.auto_blend`) a network + DLinear average, whichever
has the lowest validation MSE; the choice is what model.keras forecasts."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from apps.timeseries import evaluate, train
from apps.timeseries.baselines import DLinear
from apps.timeseries.config import PRESETS
from apps.timeseries.data import load_series, make_splits
from apps.timeseries.model import build_model


def _tiny(**model):
    cfg = PRESETS["tiny"]
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="auto", quantiles=(), **model))


def test_a_blend_that_wins_validation_is_the_saved_model(tmp_path, monkeypatch):
    cfg = _tiny(auto_blend=True)
    series = load_series(cfg.data)
    splits = make_splits(series, cfg.data)
    network = build_model(cfg.model, cfg.data.input_length, cfg.data.horizon, len(series.columns))
    dlinear = DLinear().fit(splits.train.x, splits.train.y).predict(splits.val.x)
    # A network whose validation errors are DLinear's mirrored: the even average is exact there.
    real_predict = evaluate.predict
    monkeypatch.setattr(evaluate, "predict", lambda model, inputs: (
        2 * splits.val.y - dlinear if model is network and inputs is splits.val.inputs else real_predict(model, inputs)))
    model, selection = evaluate.select_model(network, series, splits, cfg, tmp_path)
    assert selection["chosen"] == "segrnn+dlinear:0.5" and selection["blend_weight"] == 0.5
    assert not selection["baseline_won"] and selection["validation_mse"]["segrnn+dlinear:0.5"] < 1e-10
    assert set(selection["validation_mse"]) == {"segrnn", "naive", "seasonal_naive", "dlinear", "segrnn+dlinear:0.25",
                                                "segrnn+dlinear:0.5", "segrnn+dlinear:0.75"}
    x = splits.test.x[:5]
    expected = 0.5 * np.asarray(network(x)) + 0.5 * DLinear().fit(splits.train.x, splits.train.y).predict(x)
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-5)
    saved = keras.models.load_model(tmp_path / "model.keras", compile=False)  # what forecast/export read
    np.testing.assert_allclose(np.asarray(saved(x)), expected, atol=1e-5)
    assert json.loads((tmp_path / "selection.json").read_text())["chosen"] == "segrnn+dlinear:0.5"


def test_without_auto_blend_only_the_network_and_baselines_compete(tmp_path):
    cfg = _tiny()
    series = load_series(cfg.data)
    splits = make_splits(series, cfg.data)
    network = build_model(cfg.model, cfg.data.input_length, cfg.data.horizon, len(series.columns))
    _, selection = evaluate.select_model(network, series, splits, cfg)
    assert set(selection["validation_mse"]) == {"segrnn", "naive", "seasonal_naive", "dlinear"}


def test_auto_blend_trains_evaluates_and_refuses_what_it_cannot_blend(tmp_path, capsys):
    run = tmp_path / "run"
    sets = ["--set", "model.kind=auto", "--set", "model.auto_blend=true", "--set", "model.quantiles=()"]
    assert train.main(["--config", "tiny", "--run-dir", str(run), *sets]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = metrics["selection"]["chosen"]
    assert chosen == min(metrics["selection"]["validation_mse"], key=metrics["selection"]["validation_mse"].get)
    assert evaluate.main(["--run-dir", str(run), "--out", str(tmp_path / "again")]) == 0  # the saved choice reloads
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test"]["model"]["mse"] == pytest.approx(metrics["test"]["model"]["mse"], rel=1e-5)
    capsys.readouterr()
    for extra in (["--set", "model.quantiles=(0.1,0.5,0.9)"], ["--set", "model.ensemble_size=2"],
                  ["--set", "model.kind=segrnn"]):
        assert train.main(["--config", "tiny", "--run-dir", str(tmp_path / "bad"), *sets, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert "model.auto_blend" in err and "Traceback" not in err, err
    assert not (tmp_path / "bad").exists()
