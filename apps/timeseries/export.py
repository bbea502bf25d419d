"""Exports a trained forecaster that takes and returns original-scale values.

The exported model wraps the run's model with the training scaler:
`raw window [batch, input_length, channels] -> Standardize -> model -> inverse -> forecast`,
so a consumer needs no preprocessing state. Parity against Keras is checked on test
windows (`common.export.export_all`, written to parity.json). TensorFlow backend only.

    python -m apps.timeseries.export --run-dir runs/forecast            # keras + SavedModel
    python -m apps.timeseries.export --run-dir runs/forecast --formats keras saved_model onnx
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apps.timeseries.data import Scaler
from common.cli import export_main


def raw_scale_model(model, scaler: Scaler):
    """`model` between a Standardize layer and its inverse."""
    import keras

    from apps.timeseries.features import Standardize

    window = keras.Input(model.inputs[0].shape[1:], name="window")
    scaled = Standardize(scaler.mean.tolist(), scaler.std.tolist(), name="standardize")(window)
    forecast = Standardize(scaler.mean.tolist(), scaler.std.tolist(), invert=True, name="unstandardize")(model(scaled))
    return keras.Model(window, forecast, name="forecaster_raw_scale")


def export_run(run, out: Path, formats, num_examples: int) -> dict:
    """The raw-scale forecaster in each format, parity-checked on test windows."""
    from apps.timeseries.data import load_series, make_splits
    from common.export import export_all

    scaler = run.state["scaler_object"]
    splits = make_splits(load_series(run.cfg.data), run.cfg.data)
    raw = raw_scale_model(run.model, scaler)
    sample = scaler.inverse(splits.test.x[:num_examples].astype(np.float64)).astype(np.float32)
    return export_all(raw, out, [sample], formats=tuple(formats))


def main(argv=None) -> int:
    return export_main("forecasting", argv)


if __name__ == "__main__":
    raise SystemExit(main())
