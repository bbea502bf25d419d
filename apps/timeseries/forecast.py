"""Forecasts beyond the end of the series with a trained run and writes a CSV (the predict command).

    python -m apps.timeseries.forecast --run-dir runs/forecast --horizon 104 --out forecast.csv
    python -m apps.timeseries.forecast --run-dir runs/forecast --set data.path=newer.csv   # fresher data
    from common.pipeline import load_run; table = load_run("runs/forecast").predict(frame, horizon=24)

The model reads the last `input_length` observations; horizons longer than the model's are
produced recursively (the point forecast is fed back as input). Columns: `date`, one per
channel (point forecast, original scale) and `<channel>_q<q>` per quantile. When the last
`input_length` rows held missing values that were filled in, the forecast is refused unless
`--allow-filled` (the gaps are listed), since it would rest on invented values.

A long-format run (`data.id_column`) forecasts every series at once: a long table with the id,
date and value columns (and `<value>_q<q>` per quantile), `horizon` rows per series.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from apps.timeseries.evaluate import point_forecast, predict
from common.cli import predict_main
from common.errors import DataError, UsageError
from common.rundir import check_writable, write_json


def forecast_batch(model, histories: np.ndarray, model_horizon: int, horizon: int, quantiles) -> np.ndarray:
    """`[n, horizon, channels(, q)]` scaled forecasts following each of `histories` (`[n, input_length, channels]`)."""
    input_length = histories.shape[1]
    history = histories.astype(np.float32)
    chunks = []
    produced = 0
    while produced < horizon:
        output = predict(model, history)  # [n, model_horizon, channels(, q)]
        chunks.append(output)
        produced += model_horizon
        history = np.concatenate([history, point_forecast(output, quantiles)], axis=1)[:, -input_length:]
    return np.concatenate(chunks, axis=1)[:, :horizon]


def forecast_future(model, scaled: np.ndarray, input_length: int, model_horizon: int, horizon: int, quantiles) -> np.ndarray:
    """`[horizon, channels(, q)]` scaled forecast from the end of `scaled` (`[time, channels]`)."""
    return forecast_batch(model, scaled[None, -input_length:], model_horizon, horizon, quantiles)[0]


def future_index(last: pd.Timestamp, frequency: str, horizon: int):
    if frequency == "irregular":
        return np.arange(1, horizon + 1)  # steps ahead: the spacing of an irregular series is unknown
    return pd.date_range(last, periods=horizon + 1, freq=frequency)[1:]


def _series(run, inputs):
    import dataclasses

    from apps.timeseries.data import load_series, series_from_frame

    # The run's value columns by name and in its order: a table holding them in another order, or more, is
    # read as the model was trained; one missing a column is a DataError naming it.
    data = dataclasses.replace(run.cfg.data, columns=tuple(run.state["columns"]))
    if inputs is None:
        return load_series(data)
    if isinstance(inputs, (str, Path)):
        return load_series(dataclasses.replace(data, source="csv" if data.source in ("co2", "sunspots")
                                               else data.source, path=str(inputs)))
    if isinstance(inputs, pd.DataFrame):
        return series_from_frame(inputs.reset_index() if isinstance(inputs.index, pd.DatetimeIndex) else inputs,
                                 data, "frame")
    raise DataError(f"forecast takes a DataFrame (date + value columns), a CSV path or nothing (the run's own data), "
                    f"got {type(inputs).__name__}")


def _panel(run, inputs):
    from apps.timeseries.panel import load_panel, panel_from_frame

    cfg = run.cfg
    if inputs is None:
        return load_panel(cfg.data)
    if isinstance(inputs, (str, Path)):
        import dataclasses

        return load_panel(dataclasses.replace(cfg.data, source="csv", path=str(inputs)))
    if isinstance(inputs, pd.DataFrame):
        return panel_from_frame(inputs, cfg.data, "frame")
    raise DataError(f"forecast of a long-format run takes a DataFrame (id, date, value rows), a CSV path or nothing "
                    f"(the run's own data), got {type(inputs).__name__}")


def _filled_message(filled, timestamps, length: int, report: dict, where: str = "") -> str:
    when = ", ".join(str(t) for t in timestamps[-length:][filled[:3]])
    return (f"{where}{len(filled)} of the last {length} rows the model reads had missing values that were filled "
            f"in ({when}{', ...' if len(filled) > 3 else ''}; report {report}); the forecast would rest on them: "
            f"fix the data, or pass --allow-filled to forecast anyway")


def forecast_panel(run, inputs=None, horizon: int = 0, allow_filled: bool = False) -> pd.DataFrame:
    """Long-format runs: the next `horizon` steps of every series, one row per (id, date), original scale.

    Columns: the id column, the date column, the value column (point forecast) and `<value>_q<q>`
    per quantile. Every series is scaled with its own training statistics, so only the ids the run
    was trained on can be forecast.
    """
    cfg, state = run.cfg, run.state
    panel = _panel(run, inputs)
    scalers = state["scaler_objects"]
    unknown = [i for i in panel.ids if i not in scalers]
    if unknown:
        raise DataError(f"series {unknown[:3]}{' ...' if len(unknown) > 3 else ''} were not in the training data, so "
                        f"the model has no scaler for them; forecast the {len(scalers)} trained ids, or retrain with "
                        f"the new series")
    if panel.columns != state["columns"]:
        raise DataError(f"the data's value column is {panel.target!r} but the model was trained on {state['target']!r}")
    length = cfg.data.input_length
    filled_total = 0
    for series_id, series in zip(panel.ids, panel.series):
        if len(series.values) < length:
            raise DataError(f"series {series_id!r} has {len(series.values)} rows; the model needs the last {length}")
        filled = np.flatnonzero(~series.valid[-length:])
        filled_total += len(filled)
        if len(filled) and not allow_filled:
            raise DataError(_filled_message(filled, series.timestamps, length, series.missing_report,
                                            f"series {series_id!r}: "))
    model_horizon = state["model_horizon"]
    horizon = horizon or model_horizon
    quantiles = cfg.model.quantiles
    histories = np.stack([scalers[i].transform(s.values[-length:]) for i, s in zip(panel.ids, panel.series)])
    scaled = forecast_batch(run.model, histories, model_horizon, horizon, quantiles)  # [series, horizon, 1(, q)]
    tables = []
    for k, (series_id, series) in enumerate(zip(panel.ids, panel.series)):
        scaler = scalers[series_id]
        table = pd.DataFrame({panel.id_column: series_id,
                              panel.date_column: future_index(series.timestamps[-1], panel.frequency, horizon)})
        table[panel.target] = scaler.inverse(point_forecast(scaled[k], quantiles).astype(np.float64))[:, 0]
        for i, q in enumerate(quantiles):
            table[f"{panel.target}_q{q:g}"] = scaled[k, :, 0, i] * scaler.std[0] + scaler.mean[0]
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    table.attrs.update(horizon=horizon, model_horizon=model_horizon, recursive=horizon > model_horizon,
                       series=len(panel.ids), origin={i: str(s.timestamps[-1]) for i, s in zip(panel.ids, panel.series)},
                       filled_inputs=int(filled_total))
    return table


def forecast(run, inputs=None, horizon: int = 0, allow_filled: bool = False) -> pd.DataFrame:
    """The forecast table from the end of `inputs` (default: the run's own data source)."""
    cfg, state = run.cfg, run.state
    if horizon < 0:
        raise UsageError(f"--horizon must be >= 0 (0 = the model's horizon), got {horizon}")
    if state.get("past_covariates") or state.get("future_covariates"):
        raise UsageError(f"{run.path} was trained with covariates (past {state.get('past_covariates')}, known-future "
                         f"{state.get('future_covariates')}); forecasting beyond the data from such a model is not "
                         f"supported yet: use evaluate for its scores, or train without covariates to forecast")
    if state.get("layout") == "long":
        return forecast_panel(run, inputs, horizon, allow_filled)
    series = _series(run, inputs)
    length = cfg.data.input_length
    if len(series.values) < length:
        raise DataError(f"the series has {len(series.values)} rows; the model needs the last {length}")
    if series.columns != state["columns"]:
        raise DataError(f"the data has columns {series.columns} but the model was trained on {state['columns']}")
    filled = np.flatnonzero(~series.valid[-length:])
    if len(filled) and not allow_filled:
        raise DataError(_filled_message(filled, series.timestamps, length, series.missing_report))
    scaler = state["scaler_object"]
    model_horizon = state["model_horizon"]
    horizon = horizon or model_horizon
    quantiles = cfg.model.quantiles
    scaled = forecast_future(run.model, scaler.transform(series.values), length, model_horizon, horizon, quantiles)
    table = pd.DataFrame({"date": future_index(series.timestamps[-1], series.frequency, horizon)})
    point = scaler.inverse(point_forecast(scaled, quantiles).astype(np.float64))
    for c, name in enumerate(series.columns):
        table[name] = point[:, c]
        for i, q in enumerate(quantiles):
            table[f"{name}_q{q:g}"] = scaled[:, c, i] * scaler.std[c] + scaler.mean[c]
    table.attrs.update(horizon=horizon, model_horizon=model_horizon, recursive=horizon > model_horizon,
                       origin=str(series.timestamps[-1]), filled_inputs=int(len(filled)))
    return table


def add_arguments(parser) -> None:
    parser.add_argument("--horizon", type=int, default=0, help="steps to forecast; 0 = the model's horizon")
    parser.add_argument("--out", default="", help="CSV path; default <run-dir>/forecast.csv")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a data field, e.g. --set data.path=newer.csv to forecast from fresher data")
    parser.add_argument("--allow-filled", action="store_true",
                        help="forecast even when the input window holds filled-in missing values")


def run_command(run, args) -> int:
    run = run.with_overrides(args.set)
    out = Path(args.out) if args.out else run.path / "forecast.csv"
    check_writable(out, "the forecast", "--out")  # before any work: a bad --out fails in a second
    table = forecast(run, horizon=args.horizon, allow_filled=args.allow_filled)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    write_json(out.with_suffix(".json"), dict(table.attrs))
    if args.json:
        print(json.dumps({"out": str(out), **table.attrs}))
    else:
        print(table.head(min(5, len(table))).to_string(index=False))
        if "series" in table.attrs:
            print(f"Wrote {table.attrs['horizon']}-step forecasts of {table.attrs['series']} series "
                  f"({len(table)} rows) to {out}")
        else:
            print(f"Wrote {len(table)}-step forecast to {out}")
    return 0


def main(argv=None) -> int:
    return predict_main("forecasting", argv)


if __name__ == "__main__":
    raise SystemExit(main())
