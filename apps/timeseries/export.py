"""Exports a trained forecaster that takes and returns original-scale values.

The exported model wraps the run's model with the training scaler:
`raw window [batch, input_length, channels] -> Standardize -> model -> inverse -> forecast`,
so a consumer needs no preprocessing state (a long-format run, with a scaler per series, exports
the scaled model and `series_scalers.json` instead). Parity against Keras is checked on test
windows (`common.export.export_all`, written to parity.json). TensorFlow backend only.

TFLite takes one window per call (batch fixed to 1, `TFLITE_BATCH`): the on-device use, and the only
form in which a Keras LSTM/GRU forecaster converts to builtin ops (over a free batch axis the
converter rejects its TensorList). Quantile forecasts keep their axis in every format.

    python -m apps.timeseries.export --run-dir runs/forecast            # keras, SavedModel, ONNX, TFLite
    python -m apps.timeseries.export --run-dir runs/forecast --formats saved_model onnx
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apps.timeseries.data import Scaler
from common.cli import export_main

TFLITE_BATCH = 1


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

    if run.state.get("layout") == "long":
        return _export_panel(run, out, formats, num_examples)
    scaler = run.state["scaler_object"]
    splits = make_splits(load_series(run.cfg.data), run.cfg.data)
    raw = raw_scale_model(run.model, scaler)
    sample = scaler.inverse(splits.test.x[:num_examples].astype(np.float64)).astype(np.float32)
    return export_all(raw, out, [sample], formats=tuple(formats), tflite_batch_size=TFLITE_BATCH)


def _export_panel(run, out: Path, formats, num_examples: int) -> dict:
    """Long format: each series has its own scaler, so the model is exported on the scaled values as
    trained, with the scalers beside it in `series_scalers.json` (`(x - mean) / std` per series id)."""
    from apps.timeseries.panel import load_panel, make_panel_splits
    from common.export import export_all
    from common.rundir import write_json

    splits = make_panel_splits(load_panel(run.cfg.data), run.cfg.data)
    write_json(out / "series_scalers.json", {"id_column": run.state["id_column"], "target": run.state["target"],
                                             "scalers": {i: info["scaler"] for i, info in run.state["series"].items()}})
    report = export_all(run.model, out, [splits.test.x[:num_examples]], formats=tuple(formats),
                        tflite_batch_size=TFLITE_BATCH)
    return {**report, "scaled_inputs": "each series scaled with series_scalers.json; outputs likewise"}


def main(argv=None) -> int:
    return export_main("forecasting", argv)


if __name__ == "__main__":
    raise SystemExit(main())
