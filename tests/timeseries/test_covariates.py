"""Covariates reach the model: a known-future column that determines the target is used."""

import json

import numpy as np
import pandas as pd
import pytest

from common.pipeline import train


KINDS = {"lstm": ["model.kind=lstm", "model.units=(16,)"],
         "segrnn": ["model.kind=segrnn", "model.d_model=16", "model.seg_len=8"]}


def _train(tmp_path, name, csv, kind, *extra):
    overrides = ["data.source=csv", f"data.path={csv}", "data.columns=('load',)", "data.target=load",
                 "data.input_length=24", "data.horizon=8", *KINDS[kind],
                 "model.quantiles=()", "model.normalization=none", "model.dropout_rate=0.0", "train.epochs=6",
                 "train.learning_rate=0.01", "data.max_train_windows=0", "eval.backtest_windows=0", *extra]
    run = train("forecasting", "tiny", tmp_path / name, overrides)
    return json.loads((run.path / "metrics.json").read_text())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_known_future_covariate_that_determines_the_target_is_used(kind, tmp_path):
    rng = np.random.default_rng(0)
    n = 1200
    plan = rng.normal(size=n)  # i.i.d.: the past says nothing about the next values
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h"),
                          "load": 2.0 * plan + 0.05 * rng.normal(size=n), "plan": plan})
    csv = tmp_path / "load.csv"
    frame.to_csv(csv, index=False)
    with_plan = _train(tmp_path, "with", csv, kind, "data.future_covariates=('plan',)")
    assert with_plan["future_covariates"] == ["plan"]
    mse, naive = with_plan["test"]["model"]["mse"], with_plan["test"]["naive"]["mse"]
    # The load is i.i.d., so nothing that sees only its past beats predicting the mean, whose MSE is half
    # the naive forecast's (Var(a - b) = 2 Var). Measured: naive 1.94; without the plan both kinds 1.02;
    # with it lstm 0.0012, segrnn 0.032.
    assert naive > 1.0, naive
    assert mse < 0.05 * naive / 2, (mse, naive)
