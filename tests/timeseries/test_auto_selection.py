"""`model.kind=auto`: the network or a baseline, whichever has the lowest validation MSE, or (with
`model.auto_blend`) a network + DLinear average that beats that choice significantly; the choice is what
model.keras forecasts."""

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
    assert selection["blend_test"]["kept"] and selection["blend_test"]["p"] < 0.05
    x = splits.test.x[:5]
    expected = 0.5 * np.asarray(network(x)) + 0.5 * DLinear().fit(splits.train.x, splits.train.y).predict(x)
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-5)
    saved = keras.models.load_model(tmp_path / "model.keras", compile=False)  # what forecast/export read
    np.testing.assert_allclose(np.asarray(saved(x)), expected, atol=1e-5)
    assert json.loads((tmp_path / "selection.json").read_text())["chosen"] == "segrnn+dlinear:0.5"


def test_a_blend_lower_by_noise_alone_is_not_kept(tmp_path, monkeypatch):
    """A network exact on validation but for one stretch of `horizon` windows, where it errs three times as much
    as DLinear the other way: the 0.75 blend is lower on average (by a quarter), but the gain is that one block's."""
    cfg = _tiny(auto_blend=True)
    series = load_series(cfg.data)
    splits = make_splits(series, cfg.data)
    network = build_model(cfg.model, cfg.data.input_length, cfg.data.horizon, len(series.columns))
    y = splits.val.y
    dlinear = DLinear().fit(splits.train.x, splits.train.y).predict(splits.val.x)
    skipped = len(y) % cfg.data.horizon  # the test's blocks are the latest whole blocks of windows
    one_block = ((np.arange(len(y)) - skipped) // cfg.data.horizon == 0)[:, None, None]
    fake = y - 3.0 * one_block * (dlinear - y)
    real_predict = evaluate.predict
    monkeypatch.setattr(evaluate, "predict", lambda model, inputs: (
        fake if model is network and inputs is splits.val.inputs else real_predict(model, inputs)))
    _, strict = evaluate.select_model(network, series, splits, cfg)
    test, val_mse = strict["blend_test"], strict["validation_mse"]
    assert strict["chosen"] == "segrnn" and test["blend"] == "segrnn+dlinear:0.75" and not test["kept"]
    assert val_mse[test["blend"]] < 0.8 * val_mse["segrnn"] and test["blocks"] >= 20 and test["p"] > 0.2
    loose = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, auto_blend_p=1.0))
    _, any_gain = evaluate.select_model(network, series, splits, loose)  # the first auto_blend rule: any lower MSE
    assert any_gain["chosen"] == test["blend"] and any_gain["blend_test"]["kept"]


def test_paired_gain_test_counts_blocks_not_windows():
    rng = np.random.default_rng(0)
    reference = rng.normal(1.0, 0.1, 400)
    better = reference - 0.05 + rng.normal(0, 0.01, 400)
    assert evaluate.paired_gain_test(better, reference, block=50)["p"] < 1e-4
    noisy = reference + np.repeat(rng.normal(0, 0.2, 8), 50) - 0.01  # a small gain under block-level noise
    result = evaluate.paired_gain_test(noisy, reference, block=50)
    assert result["blocks"] == 8 and result["p"] > 0.05
    assert evaluate.paired_gain_test(better[:60], reference[:60], block=50)["p"] == 1.0  # one block: untestable


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
    val_mse, blend_test = metrics["selection"]["validation_mse"], metrics["selection"]["blend_test"]
    plain = min((k for k in val_mse if "+dlinear" not in k), key=val_mse.get)
    assert chosen == (blend_test["blend"] if blend_test["kept"] else plain) and blend_test["against"] == plain
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


def _covariate_csv(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 600
    plan = rng.normal(size=n)
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h"),
                          "load": np.sin(np.arange(n) / 4.0) + 0.5 * plan, "plan": plan, "temp": rng.normal(size=n)})
    frame.to_csv(tmp_path / "load.csv", index=False)
    return {"source": "csv", "path": str(tmp_path / "load.csv"), "columns": ("load",), "target": "load",
            "past_covariates": ("temp",), "future_covariates": ("plan",), "calendar": ("hour",)}


def _panel_csv(tmp_path):
    from apps.timeseries.data import synthetic_panel_frame

    synthetic_panel_frame(num_series=3, length=400).to_csv(tmp_path / "panel.csv", index=False)
    return {"source": "csv", "path": str(tmp_path / "panel.csv"), "id_column": "id"}


@pytest.mark.parametrize("layout", [_covariate_csv, _panel_csv], ids=["covariates", "long_format"])
def test_a_kept_blend_takes_the_networks_inputs_with_covariates_and_in_long_format(layout, tmp_path, monkeypatch):
    """The blend model is built from the network's inputs: with past/future covariates and calendar features (which
    DLinear ignores), and over a long-format panel's pooled windows; it saves, reloads and forecasts the blend."""
    from apps.timeseries.panel import is_long, load_panel, make_panel_splits

    base = _tiny(auto_blend=True)
    cfg = dataclasses.replace(base, data=dataclasses.replace(base.data, **layout(tmp_path)))
    if is_long(cfg.data):
        series = load_panel(cfg.data)
        splits = make_panel_splits(series, cfg.data)
    else:
        series = load_series(cfg.data)
        splits = make_splits(series, cfg.data)
    network = build_model(cfg.model, cfg.data.input_length, cfg.data.horizon, len(series.columns),
                          **series.covariate_sizes)
    linear = DLinear().fit(splits.train.x, splits.train.y)
    real_predict = evaluate.predict
    monkeypatch.setattr(evaluate, "predict", lambda model, inputs: (  # mirrored errors: the even blend is exact
        2 * splits.val.y - linear.predict(splits.val.x)
        if model is network and (inputs["window"] if isinstance(inputs, dict) else inputs) is splits.val.x
        else real_predict(model, inputs)))  # (`inputs` with covariates is a new dict each time: compare the window)
    model, selection = evaluate.select_model(network, series, splits, cfg, tmp_path)
    assert selection["chosen"] == "segrnn+dlinear:0.5" and selection["blend_test"]["kept"]
    test = splits.test.subset(np.arange(4))
    expected = 0.5 * real_predict(network, test.inputs) + 0.5 * linear.predict(test.x)
    saved = keras.models.load_model(tmp_path / "model.keras", compile=False)
    for m in (model, saved):
        np.testing.assert_allclose(real_predict(m, test.inputs), expected, atol=1e-5)
