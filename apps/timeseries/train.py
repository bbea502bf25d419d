"""Trains a forecaster and scores it against naive, seasonal-naive and DLinear baselines.

    python -m apps.timeseries.train --config default --run-dir runs/forecast        # CO2, offline
    python -m apps.timeseries.train --config ett --run-dir runs/etth1_96 \
        --set data.path=timeseries/ETTh1.csv --set data.horizon=96                   # benchmark

The run dir gets config.json, model.keras, history.json, preprocessing.json (scaler,
columns, frequency, split borders, missing-value report), metrics.json, history.png
and forecast.png.
"""

from __future__ import annotations

import time

from apps.timeseries.config import PRESETS, Config
from common.config import to_dict, build_parser, describe, resolve_config, save_config
from common.training import (RunDir, add_train_flags, fit, make_optimizer, print_summary, set_seed,
                             steps_for)
from common.training import USER_ERRORS, report_user_error


def preprocessing_state(series, splits) -> dict:
    return {
        "dataset": series.name, "columns": series.columns, "target": series.target, "frequency": series.frequency,
        "seasonal_period": series.seasonal_period, "scaler": splits.scaler.to_dict(), "borders": splits.borders,
        "missing": series.missing_report, "last_timestamp": str(series.timestamps[-1]), "num_rows": len(series.values),
    }


def main(argv=None) -> int:
    parser = build_parser("Train a time-series forecaster (SegRNN / LSTM / GRU)", PRESETS)
    add_train_flags(parser)
    args = parser.parse_args(argv)
    try:
        cfg: Config = resolve_config(PRESETS, args.config, args.set)
        return run(cfg, args)
    except USER_ERRORS as err:
        return report_user_error(err)


def run(cfg: Config, args) -> int:
    # A bad or taken run dir, then data problems, surface before anything is written.
    RunDir(args.run_dir, app="forecasting", config=to_dict(cfg), resume=args.resume, overwrite=args.overwrite).check()
    from apps.timeseries.data import load_series, make_splits

    series = load_series(cfg.data)
    splits = make_splits(series, cfg.data)
    print(f"{series.name}: {len(series.values)} rows x {len(series.columns)} channels {series.columns}, "
          f"frequency {series.frequency}, seasonal period {series.seasonal_period}, missing {series.missing_report}")
    print(f"windows: train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} (borders {splits.borders})")

    from apps.timeseries.evaluate import evaluate_run, format_table
    from apps.timeseries.model import build_model, make_loss
    from common.evaluation import plot_history
    from common.distribute import setup_distribution
    from common.training import configure_precision

    set_seed(cfg.train.seed)
    configure_precision(cfg.train.precision)
    for line in describe(cfg):
        print("  " + line)
    dist = setup_distribution(cfg.train)
    print(dist.describe())
    with dist.scope():
        model = build_model(cfg.model, cfg.data.input_length, cfg.data.horizon, len(series.columns))
        steps = steps_for(len(splits.train), dist.global_batch_size)
        model.compile(optimizer=make_optimizer(cfg.train, steps, dist), loss=make_loss(cfg.model),
                      steps_per_execution=cfg.train.steps_per_execution)
    with RunDir(args.run_dir, app="forecasting", config=to_dict(cfg), resume=args.resume, overwrite=args.overwrite, is_chief=dist.is_chief) as run_dir:
        save_config(cfg, run_dir.path / "config.json")
        run_dir.write_json("preprocessing.json", preprocessing_state(series, splits))
        start = time.perf_counter()
        model, history = fit(model, (splits.train.x, splits.train.y), (splits.val.x, splits.val.y), cfg.train, run_dir,
                             dist=dist)
        train_seconds = time.perf_counter() - start
        metrics = evaluate_run(model, series, splits, cfg, plot_path=run_dir.path / "forecast.png")
        metrics["train_seconds"] = train_seconds
        metrics["epochs_run"] = len(history.get("loss", []))
        if history.get("val_loss"):
            metrics["best_val_loss"] = min(history["val_loss"])
        metrics["num_parameters"] = int(model.count_params())
        run_dir.write_json("metrics.json", metrics)
        if history:
            plot_history(history, run_dir.path / "history.png")
    print()
    print(format_table(metrics))
    print_summary(f"{cfg.model.kind} on {series.name} (input {cfg.data.input_length}, horizon {cfg.data.horizon})",
                  run_dir.final, metrics["summary"],
                  ["config.json", "model.keras", "metrics.json", "preprocessing.json", "history.png", "forecast.png"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
