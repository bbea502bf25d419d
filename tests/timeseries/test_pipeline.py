"""End to end: train -> evaluate -> forecast -> export on tiny presets, and accuracy vs naive."""

import json

import numpy as np
import pandas as pd
import pytest

from apps.timeseries import evaluate, export, forecast, train

from tests.contract import check_app_contract


@pytest.mark.tf_only
def test_tiny_train_evaluate_forecast_export(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--config", "tiny", "--run-dir", str(run)]) == 0
    for name in ("config.json", "run.json", "data.json", "model.keras", "history.json", "metrics.json", "preprocessing.json",
                 "forecast.png", "training_curves.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"model", "naive", "seasonal_naive", "dlinear"}
    assert metrics["missing"]["interpolated_values"] == 59
    assert 0.0 <= metrics["quantile_coverage"]["interval_coverage"] <= 1.0
    assert len(metrics["backtest"]["origins"]) == 2
    assert "Run dir:" in capsys.readouterr().out

    assert evaluate.main(["--run-dir", str(run)]) == 0
    assert json.loads((run / "eval" / "test" / "metrics.json").read_text())["test"]["model"]["mse"] == pytest.approx(metrics["test"]["model"]["mse"], rel=1e-5)

    out = tmp_path / "future.csv"
    assert forecast.main(["--run-dir", str(run), "--horizon", "20", "--out", str(out)]) == 0  # 20 > model horizon 8
    table = pd.read_csv(out)
    assert list(table.columns) == ["date", "co2", "co2_q0.1", "co2_q0.5", "co2_q0.9"] and len(table) == 20
    assert pd.to_datetime(table["date"]).is_monotonic_increasing and table["co2"].between(300, 450).all()

    _check_forecast_refusals(run, tmp_path, capsys)

    # The default formats (keras, SavedModel, ONNX, TFLite), each within 1e-4 of Keras on the quantile forecast.
    assert export.main(["--run-dir", str(run), "--out", str(tmp_path / "export"), "--num-examples", "3"]) == 0
    parity = json.loads((tmp_path / "export" / "export.json").read_text())
    assert set(parity["formats"]) == {"keras", "saved_model", "onnx", "tflite"}
    assert all(f["max_abs_diff"] <= 1e-4 for f in parity["formats"].values()), parity["formats"]
    assert parity["formats"]["tflite"]["batch_size"] == 1
    _check_exported_quantile_forecast(run, tmp_path / "export")
    check_app_contract("forecasting", run, tmp_path, capsys, export=False)  # exported above through the CLI


def _check_exported_quantile_forecast(run, out):
    """The exported files themselves, fed raw values: the quantile axis is there and matches Keras."""
    from apps.timeseries.data import load_series, make_splits
    from common.config import load_config
    from common.export import run_onnx, run_tflite
    from apps.timeseries.config import Config

    cfg = load_config(Config, run / "config.json")
    window = make_splits(load_series(cfg.data), cfg.data).test.x[:1].astype(np.float32)
    import keras

    scaled = keras.models.load_model(out / "model.keras", compile=False)
    raw = 300.0 + 20.0 * window  # any raw-scale window
    expected = np.asarray(scaled(raw))
    assert expected.shape == (1, 8, 1, 3)  # [batch, horizon, channels, quantiles 0.1/0.5/0.9]
    np.testing.assert_allclose(run_onnx(out / "model.onnx", [raw])[0], expected, atol=1e-4)
    np.testing.assert_allclose(run_tflite(out / "model.tflite", [raw], ["window"])[0], expected, atol=1e-4)


@pytest.mark.parametrize("kind", ["lstm"])
def test_recurrent_forecaster_exports_to_tflite_and_onnx(tmp_path, kind):
    # A Keras LSTM over a free batch axis has no builtin-ops TFLite form; the forecaster's fixed batch does.
    run = tmp_path / "run"
    assert train.main(["--config", "tiny", "--set", f"model.kind={kind}", "--run-dir", str(run)]) == 0
    assert export.main(["--run-dir", str(run), "--formats", "tflite", "onnx", "--num-examples", "3"]) == 0
    parity = json.loads((run / "export" / "export.json").read_text())
    assert parity["num_examples"] == 3 and parity["formats"]["tflite"]["batch_size"] == 1
    assert all(f["max_abs_diff"] <= 1e-4 for f in parity["formats"].values()), parity["formats"]


def test_model_beats_naive_on_seasonal_series(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(1500)
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2021-01-01", periods=len(t), freq="h"),
        "load": 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.002 * t + 0.3 * rng.standard_normal(len(t)),
    })
    path = tmp_path / "load.csv"
    frame.to_csv(path, index=False)
    run = tmp_path / "run"
    argv = ["--config", "tiny", "--run-dir", str(run), "--set", "data.source=csv", "--set", f"data.path={path}",
            "--set", "data.input_length=48", "--set", "data.horizon=24", "--set", "model.seg_len=12",
            "--set", "model.d_model=16", "--set", "model.quantiles=()", "--set", "train.epochs=4",
            "--set", "data.max_train_windows=512", "--set", "train.batch_size=32", "--set", "train.learning_rate=0.01"]
    assert train.main(argv) == 0
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["model"]["mse"] < 0.5 * test["naive"]["mse"]
    assert test["model"]["mase"] < test["naive"]["mase"]


def test_bad_config_and_data_exit_cleanly(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--config", "tiny", "--run-dir", str(run), "--set", "model.nope=1"]) == 2
    assert train.main(["--config", "tiny", "--run-dir", str(run), "--set", "data.source=csv",
                       "--set", f"data.path={tmp_path / 'missing.csv'}"]) == 2
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"date": ["2020-01-02", "2020-01-01", "2020-01-03"], "v": [1, 2, 3]}).to_csv(bad, index=False)
    assert train.main(["--config", "tiny", "--run-dir", str(run), "--set", "data.source=csv", "--set", f"data.path={bad}"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key" in err and "not found" in err and "strictly increasing" in err
    assert not run.exists() and not (tmp_path / "run.partial").exists()
    assert evaluate.main(["--run-dir", str(tmp_path / "nowhere")]) == 2


def _check_forecast_refusals(run, tmp_path, capsys):
    """Issue 20 items 7 and 9: filled-in input windows, settings the model was built for, a bad --out."""
    from common.errors import DataError
    from common.pipeline import load_run

    loaded = load_run(run)
    frame = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=60, freq="W-SAT"),
                          "co2": 360 + np.sin(np.arange(60) / 8.0)})
    assert len(loaded.predict(frame)) == 8  # a clean window forecasts the model's horizon
    frame.loc[57:, "co2"] = np.nan  # the last three values missing: they would be filled in
    with pytest.raises(DataError, match="filled in"):
        loaded.predict(frame)
    filled = loaded.predict(frame, allow_filled=True)
    assert len(filled) == 8 and filled.attrs["filled_inputs"] == 3
    capsys.readouterr()
    assert forecast.main(["--run-dir", str(run), "--set", "data.horizon=16"]) == 2  # the model forecasts 8
    assert "data.horizon" in capsys.readouterr().err
    assert forecast.main(["--run-dir", str(run), "--out", "/proc/forecast.csv"]) == 2  # refused before any work
    err = capsys.readouterr().err
    assert "/proc" in err and "--out" in err and "Traceback" not in err
