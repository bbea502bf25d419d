"""Data loading, checks, splits and baselines (no model training, fast)."""

import numpy as np
import pandas as pd
import pytest

from apps.timeseries.baselines import DLinear, naive, seasonal_naive
from apps.timeseries.config import DataConfig
from apps.timeseries.data import infer_seasonal_period, load_series, make_splits, series_from_frame, split_borders


def hourly_frame(rows=400, columns=("a", "OT"), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=rows, freq="h")})
    for i, name in enumerate(columns):
        frame[name] = np.sin(2 * np.pi * t / 24 + i) + 0.1 * rng.standard_normal(rows)
    return frame


def test_etth1_benchmark_split(shared_data):
    cfg = DataConfig(source="tslib", path=str(shared_data / "timeseries" / "ETTh1.csv"), input_length=96, horizon=96)
    series = load_series(cfg)
    splits = make_splits(series, cfg)
    assert series.columns == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"] and series.target == "OT"
    assert series.frequency.lower() == "h" and series.seasonal_period == 24
    # 12/4/4 months of 30 days; val/test start seq_len rows early (Time-Series-Library borders).
    assert splits.borders == {"train": [0, 8640], "val": [8544, 11520], "test": [11424, 14400]}
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8449, 2785, 2785)
    assert splits.test.x.shape == (2785, 96, 7) and splits.test.y.shape == (2785, 96, 7)
    # The scaler sees the training rows only.
    np.testing.assert_allclose(splits.scaler.mean, series.values[:8640].mean(axis=0))
    np.testing.assert_allclose(splits.scaled[:8640].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(splits.test.x[0], splits.scaled[11424:11520], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("preset", ["etth1-720", "etth2-720", "etth1-720-gpu", "etth2-720-gpu"])
def test_input_720_presets_forecast_the_same_test_hours_as_input_96(shared_data, preset):
    import dataclasses

    from apps.timeseries.config import PRESETS

    cfg = dataclasses.replace(PRESETS[preset].data, path=str(shared_data / PRESETS[preset].data.path))
    assert cfg.input_length == 720
    series = load_series(cfg)
    long, short = make_splits(series, cfg), make_splits(series, dataclasses.replace(cfg, input_length=96))
    # Table 2's protocol: the look-back grows into the earlier split, the forecast targets stay the benchmark's.
    assert len(long.test) == len(short.test) == 2785 and long.borders["test"] == [14400 - 2880 - 720, 14400]
    np.testing.assert_array_equal(long.test.origins, short.test.origins)
    np.testing.assert_array_equal(long.test.y, short.test.y)
    np.testing.assert_array_equal(long.test.x[:, -96:], short.test.x)
    np.testing.assert_allclose(long.scaler.mean, short.scaler.mean)  # the same training rows scale both


def test_ratio_split_national_illness(shared_data):
    cfg = DataConfig(source="tslib", path=str(shared_data / "timeseries" / "national_illness.csv"), input_length=36, horizon=24)
    series = load_series(cfg)
    assert len(series.values) == 966 and series.seasonal_period == 52
    assert split_borders(966, cfg, series.name) == {"train": [0, 676], "val": [640, 773], "test": [737, 966]}


def test_statsmodels_co2_interpolates_and_reports():
    series = load_series(DataConfig(source="co2"))
    assert series.missing_report["missing_values"] == 59 and series.missing_report["interpolated_values"] == 59
    assert np.isfinite(series.values).all() and series.seasonal_period == 52


def test_missing_timestamps_and_mask_policy():
    frame = hourly_frame(300).drop(index=[100, 101]).reset_index(drop=True)
    frame.loc[200, "a"] = np.nan
    series = series_from_frame(frame, DataConfig(missing="mask", input_length=24, horizon=12), "gappy")
    assert len(series.values) == 300 and series.missing_report["missing_timestamps_added"] == 2
    assert series.missing_report["missing_values"] == 2 * 2 + 1 and not series.valid[[100, 101, 202]].any()
    splits = make_splits(series, DataConfig(missing="mask", input_length=24, horizon=12))
    assert splits.masked_windows > 0 and series.missing_report["masked_windows"] == splits.masked_windows
    for part in (splits.train, splits.val, splits.test):
        first = part.origins - 24
        assert not np.any((first[:, None] <= np.array([100, 101, 202])) & (np.array([100, 101, 202]) < part.origins[:, None] + 12))


@pytest.mark.parametrize(
    "change, cfg, message",
    [
        (lambda f: f, DataConfig(input_length=200, horizon=100), "too short"),
        (lambda f: f.assign(a=f["a"].where(f.index != 10)), DataConfig(missing="error"), "missing"),
        (lambda f: f.assign(a=f["a"].where(f.index != 10, np.inf)), DataConfig(), "infinite"),
        (lambda f: f.iloc[[0, 2, 1] + list(range(3, len(f)))], DataConfig(), "strictly increasing"),
        (lambda f: pd.concat([f.iloc[:5], f.iloc[4:]]), DataConfig(), "strictly increasing"),
        (lambda f: f, DataConfig(columns=("a", "nope")), "not found"),
        (lambda f: f, DataConfig(target="nope"), "target column"),
        (lambda f: f, DataConfig(date_column="time"), "date column"),
        (lambda f: f.assign(a=f["a"].astype(object).where(f.index != 7, "n/a")), DataConfig(), "non-numeric"),
        (lambda f: f.assign(date=f["date"].astype(str).where(f.index != 3, "yesterday")), DataConfig(), "unparseable"),
    ],
)
def test_bad_input_errors(change, cfg, message):
    with pytest.raises(ValueError, match=message):
        series = series_from_frame(change(hourly_frame(400)), cfg, "bad")
        make_splits(series, cfg)


def test_baselines_on_exact_patterns():
    t = np.arange(200, dtype=np.float32)
    periodic = np.sin(2 * np.pi * t / 12)[None, :, None]
    x, y = periodic[:, :48], periodic[:, 48:60]
    np.testing.assert_allclose(seasonal_naive(x, 12, 12), y, atol=1e-5)
    np.testing.assert_allclose(naive(x, 3)[0, :, 0], x[0, -1, 0])
    trend = (0.1 * t)[None, :, None]
    windows = np.stack([trend[0, i:i + 30] for i in range(100)])
    linear = DLinear().fit(windows[:, :20], windows[:, 20:])
    np.testing.assert_allclose(linear.predict(windows[:5, :20]), windows[:5, 20:], atol=1e-2)


@pytest.mark.parametrize("frequency, period", [("15min", 96), ("h", 24), ("D", 7), ("W-SAT", 52), ("MS", 12), ("QS", 4)])
def test_seasonal_period_from_frequency(frequency, period):
    assert infer_seasonal_period(frequency, pd.date_range("2020-01-01", periods=4, freq=frequency)) == period


def test_paper_recipe_input_720_presets_hold_the_scripts_values():
    """etth1/etth2-720-gpu are SegRNN's scripts/SegRNN/etth1.sh and etth2.sh (Table 2): the values a GPU run compares."""
    from apps.timeseries.config import PRESETS

    for preset, path, dropout in (("etth1-720-gpu", "timeseries/ETTh1.csv", 0.1), ("etth2-720-gpu", "timeseries/ETTh2.csv", 0.5)):
        cfg = PRESETS[preset]
        assert (cfg.data.path, cfg.data.input_length, cfg.data.features) == (path, 720, "M")
        m, t = cfg.model, cfg.train
        assert (m.kind, m.d_model, m.seg_len, m.cell, m.decoder, m.channel_embedding, m.normalization) == \
            ("segrnn", 512, 24, "gru", "pmf", True, "last")
        assert (m.dropout_rate, m.loss, m.init) == (dropout, "mse", "fan_in")
        assert (t.epochs, t.batch_size, t.learning_rate, t.schedule, t.early_stopping_patience) == (30, 64, 3e-4, "step", 5)
        assert (t.step_decay, t.step_constant_epochs) == (0.8, 4)
