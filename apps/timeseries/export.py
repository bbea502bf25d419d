"""Exports a trained forecaster that takes and returns original-scale values.

The exported model wraps the run's model with the training scaler:
`raw window [batch, input_length, channels] -> Standardize -> model -> inverse -> forecast`,
so a consumer needs no preprocessing state. Parity against Keras is checked on test
windows (`common.export.export_all`, written to parity.json). TensorFlow backend only.

    python -m apps.timeseries.export --run-dir runs/forecast            # keras + SavedModel
    python -m apps.timeseries.export --run-dir runs/forecast --formats keras saved_model onnx
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from apps.timeseries.data import Scaler, load_series, make_splits
from apps.timeseries.evaluate import load_run
from common.training import load_model, report_user_error, USER_ERRORS


def raw_scale_model(model, scaler: Scaler):
    """`model` between a Standardize layer and its inverse."""
    import keras

    from apps.timeseries.features import Standardize

    window = keras.Input(model.inputs[0].shape[1:], name="window")
    scaled = Standardize(scaler.mean.tolist(), scaler.std.tolist(), name="standardize")(window)
    forecast = Standardize(scaler.mean.tolist(), scaler.std.tolist(), invert=True, name="unstandardize")(model(scaled))
    return keras.Model(window, forecast, name="forecaster_raw_scale")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export a trained forecaster (original-scale inputs/outputs)")
    parser.add_argument("--run-dir", required=True, help="a run dir written by apps.timeseries.train")
    parser.add_argument("--out", default="", help="output folder; default <run-dir>/export")
    parser.add_argument("--formats", nargs="+", default=["keras", "saved_model"],
                        choices=["keras", "saved_model", "onnx", "tflite"], help="formats to write and parity-check")
    parser.add_argument("--num-examples", type=int, default=8, help="test windows used for the parity check")
    args = parser.parse_args(argv)
    try:
        path, cfg = load_run(args.run_dir)
        state = json.loads((path / "preprocessing.json").read_text())
        scaler = Scaler.from_dict(state["scaler"])
        series = load_series(cfg.data)
        splits = make_splits(series, cfg.data)
        model = load_model(path)
    except USER_ERRORS as err:
        return report_user_error(err)
    from common.export import ExportError, export_all

    raw = raw_scale_model(model, scaler)
    sample = scaler.inverse(splits.test.x[: args.num_examples].astype(np.float64)).astype(np.float32)
    out = Path(args.out) if args.out else path / "export"
    try:
        report = export_all(raw, out, [sample], formats=tuple(args.formats))
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for fmt, info in report["formats"].items():
        diff = info["max_abs_diff"]
        print(f"  {fmt:12s} {info['path']}  max |diff| {diff if diff is None else f'{diff:.2e}'}")
    print(f"Wrote exports and {out / 'parity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
