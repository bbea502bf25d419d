"""Trains a forecaster and scores it against naive, seasonal-naive and DLinear baselines.

    python -m apps.timeseries.train --config default --run-dir runs/forecast        # CO2, offline
    python -m apps.timeseries.train --config ett --run-dir runs/etth1_96 \
        --set data.path=timeseries/ETTh1.csv --set data.horizon=96                   # benchmark

The run dir gets run.json, config.json, model.keras, history.json, preprocessing.json (scaler,
columns, frequency, split borders, missing-value report), metrics.json, training_curves.png
and forecast.png. The app's declarations are in app.py; common/pipeline.py runs them.
"""

from __future__ import annotations

from common.cli import train_main


def main(argv=None) -> int:
    return train_main("forecasting", argv)


if __name__ == "__main__":
    raise SystemExit(main())
