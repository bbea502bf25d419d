"""Forecasts beyond the end of the series with a trained run and writes a CSV.

    python -m apps.timeseries.forecast --run-dir runs/forecast --horizon 104 --out forecast.csv

The model reads the last `input_length` observations; horizons longer than the model's
are produced recursively (the point forecast is fed back as input). Columns: `date`,
one per channel (point forecast, original scale) and `<channel>_q<q>` per quantile.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from apps.timeseries.data import Scaler, load_series
from apps.timeseries.evaluate import load_run, point_forecast, predict
from common.training import load_model, report_user_error, USER_ERRORS, write_json


def forecast_future(model, scaled: np.ndarray, input_length: int, model_horizon: int, horizon: int, quantiles) -> np.ndarray:
    """`[horizon, channels(, q)]` scaled forecast from the end of `scaled` (`[time, channels]`)."""
    history = scaled[-input_length:].astype(np.float32)
    chunks = []
    produced = 0
    while produced < horizon:
        output = predict(model, history[None])[0]  # [model_horizon, channels(, q)]
        chunks.append(output)
        produced += model_horizon
        history = np.concatenate([history, point_forecast(output, quantiles)])[-input_length:]
    return np.concatenate(chunks)[:horizon]


def future_index(last: pd.Timestamp, frequency: str, horizon: int):
    if frequency == "irregular":
        return np.arange(1, horizon + 1)  # steps ahead: the spacing of an irregular series is unknown
    return pd.date_range(last, periods=horizon + 1, freq=frequency)[1:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Forecast past the end of the series with a trained run")
    parser.add_argument("--run-dir", required=True, help="a run dir written by apps.timeseries.train")
    parser.add_argument("--horizon", type=int, default=0, help="steps to forecast; 0 = the model's horizon")
    parser.add_argument("--out", default="", help="CSV path; default <run-dir>/forecast.csv")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a data field, e.g. --set data.path=newer.csv to forecast from fresher data")
    args = parser.parse_args(argv)
    try:
        if args.horizon < 0:
            raise ValueError(f"--horizon must be positive, got {args.horizon}")
        path, cfg = load_run(args.run_dir, args.set)
        series = load_series(cfg.data)
        if len(series.values) < cfg.data.input_length:
            raise ValueError(f"the series has {len(series.values)} rows; the model needs the last {cfg.data.input_length}")
        state = json.loads((path / "preprocessing.json").read_text())
        if state["columns"] != series.columns:
            raise ValueError(f"the data has columns {series.columns} but the model was trained on {state['columns']}")
        scaler = Scaler.from_dict(state["scaler"])
        model = load_model(path)
        horizon = args.horizon or cfg.data.horizon
        quantiles = cfg.model.quantiles
        scaled = forecast_future(model, scaler.transform(series.values), cfg.data.input_length, cfg.data.horizon,
                                 horizon, quantiles)
    except USER_ERRORS as err:
        return report_user_error(err)
    table = pd.DataFrame({"date": future_index(series.timestamps[-1], series.frequency, horizon)})
    point = scaler.inverse(point_forecast(scaled, quantiles).astype(np.float64))
    for c, name in enumerate(series.columns):
        table[name] = point[:, c]
        for i, q in enumerate(quantiles):
            table[f"{name}_q{q:g}"] = scaled[:, c, i] * scaler.std[c] + scaler.mean[c]
    out = Path(args.out) if args.out else path / "forecast.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    write_json(out.with_suffix(".json"), {"horizon": horizon, "model_horizon": cfg.data.horizon,
                                         "recursive": horizon > cfg.data.horizon, "from": str(series.timestamps[-1])})
    print(table.head(min(5, horizon)).to_string(index=False))
    print(f"Wrote {horizon}-step forecast to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
