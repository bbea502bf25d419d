"""Export a trained speech run dir: SavedModel (raw 16 kHz audio in) + TFLite, each parity-checked,
and for `streaming` models a builtins-only TFLite step model with external state.

    python -m apps.speech.export --run-dir runs/speech                  # -> runs/speech/export/
    python -m apps.speech.export --run-dir runs/speech --formats saved_model,tflite

Writes `parity.json` (max |difference| of each format vs Keras on real clips) and, for a
streaming model, `streaming_step.tflite` + `streaming.json`: the step model is fed the same
clips 100 ms at a time through the TFLite interpreter, and its final probabilities must
equal the full (non-streaming) Keras model's within 1e-4. Runs on the TensorFlow backend.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common.training import USER_ERRORS, report_user_error

DEFAULT_FORMATS = ("keras", "saved_model", "tflite")


def sample_clips(cfg, count: int, seed: int = 0) -> np.ndarray:
    """Real clips from the run's data source (test split) when available, else seeded noise + tones."""
    num_samples = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    try:
        from apps.speech.data import load_data

        data = load_data(cfg.data, verbose=False)
        split = data.test if len(data.test) else data.train
        if len(split):
            return split.audio[:count].astype("float32")
    except (ValueError, FileNotFoundError):
        pass
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / cfg.data.sample_rate
    return (0.1 * rng.standard_normal((count, num_samples)) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32")


def export_streaming(model, cfg, out_dir: Path, clips: np.ndarray, atol: float = 1e-4) -> dict:
    """Writes the streaming step model as builtins-only TFLite and checks it against the full model."""
    from apps.speech.model import build_streaming_model, stream_clip
    from apps.speech.train import predict_probabilities
    from common.export import ExportError, export_tflite, input_names, run_tflite

    step = build_streaming_model(model, cfg.model.streaming_chunk_frames, batch_size=1)
    path = export_tflite(step, out_dir / "streaming_step.tflite")
    names = input_names(step)
    full = predict_probabilities(model, clips)
    worst_keras, worst_tflite = 0.0, 0.0
    agree = 0
    for i in range(len(clips)):
        clip = clips[i:i + 1]
        keras_stream = stream_clip(step, clip)
        tflite_stream = stream_clip(step, clip, runner=lambda inputs: run_tflite(path, inputs, names))
        worst_keras = max(worst_keras, float(np.abs(keras_stream - full[i:i + 1]).max()))
        worst_tflite = max(worst_tflite, float(np.abs(tflite_stream - full[i:i + 1]).max()))
        agree += int(tflite_stream.argmax() == full[i].argmax())
    report = {
        "path": str(path), "chunk_samples": int(step.inputs[0].shape[1]),
        "state_inputs": names[1:], "num_clips": int(len(clips)),
        "max_abs_diff_keras_stream_vs_full": worst_keras, "max_abs_diff_tflite_stream_vs_full": worst_tflite,
        "top1_agreement": agree / max(1, len(clips)), "atol": atol,
    }
    if worst_tflite > atol:
        raise ExportError(f"streaming TFLite differs from the full model by {worst_tflite:.3g} (> {atol:g})")
    return report


def export_flat_tflite(model, path: Path, clips: np.ndarray, atol: float = 1e-4) -> dict:
    """Full-clip TFLite with builtin ops only: the recurrences are unrolled (the clip length is
    fixed), so no Flex delegate is needed and parity is checked here on `clips`."""
    from apps.speech.model import export_copy
    from apps.speech.train import predict_probabilities
    from common.export import check_parity, export_tflite, input_names, run_tflite

    flat = export_copy(model, unroll=True)
    export_tflite(flat, path)
    reference = predict_probabilities(model, clips)
    outputs = np.concatenate([run_tflite(path, [clips[i:i + 1]], input_names(flat))[0] for i in range(len(clips))])
    diff = check_parity([reference], [outputs], atol, what="tflite")
    return {"path": str(path), "max_abs_diff": diff, "ops": "TFLITE_BUILTINS (unrolled recurrences)"}


def main(argv=None) -> int:
    from common.export import ExportError

    parser = argparse.ArgumentParser(description="Export a trained speech model (SavedModel, TFLite, streaming TFLite).")
    parser.add_argument("--run-dir", required=True, help="run dir written by apps.speech.train")
    parser.add_argument("--out", default=None, help="output folder (default <run-dir>/export)")
    parser.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                        help="comma-separated subset of keras,saved_model,tflite")
    parser.add_argument("--num-clips", type=int, default=8, help="clips used for the parity checks")
    args = parser.parse_args(argv)
    try:
        return _export(args)
    except (*USER_ERRORS, ExportError) as err:
        return report_user_error(err)


def _export(args) -> int:
    import keras

    from apps.speech.evaluate import load_run
    from common.export import export_all
    from common.training import write_json

    if keras.backend.backend() != "tensorflow":
        raise ValueError("export runs on the TensorFlow backend: unset KERAS_BACKEND or set it to tensorflow")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - {"keras", "saved_model", "tflite"}
    if unknown:
        # ONNX is left out: tf2onnx turns the Normalization statistics into graph inputs.
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from keras, saved_model, tflite")
    cfg, labels, model = load_run(args.run_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "export"
    clips = sample_clips(cfg, max(1, args.num_clips))
    report = export_all(model, out, [clips], formats=tuple(f for f in formats if f in ("keras", "saved_model")))
    if "tflite" in formats:
        report["formats"]["tflite"] = export_flat_tflite(model, out / "model.tflite", clips)
    write_json(out / "parity.json", report)
    lines = [f"  {fmt}: {info['path']} (max |diff| {info['max_abs_diff']:.2g})" for fmt, info in report["formats"].items()]
    if cfg.model.architecture == "streaming":
        streaming = export_streaming(model, cfg, out, clips)
        write_json(out / "streaming.json", streaming)
        lines.append(f"  streaming step (TFLite builtins, external state): {streaming['path']} "
                     f"(max |diff| vs full model {streaming['max_abs_diff_tflite_stream_vs_full']:.2g})")
    else:
        lines.append("  streaming step: skipped (train with --set model.architecture=streaming to get one)")
    write_json(out / "labels.json", labels)
    print(f"Exported {args.run_dir} to {out}:\n" + "\n".join(lines) + f"\nParity report: {out / 'parity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
