"""Export a trained speech run dir: SavedModel, TFLite and ONNX (raw 16 kHz audio in), each
parity-checked, and for `streaming` models a builtins-only TFLite step model with external state.

    python -m apps.speech.export --run-dir runs/speech                  # -> runs/speech/export/
    python -m apps.speech.export --run-dir runs/speech --formats saved_model onnx

TFLite and ONNX take a copy of the model with a matmul DFT (neither has a portable RFFT),
the normalization statistics as constants and the recurrences unrolled over the clip's fixed
frame count: a loop-free graph of builtin ops (ONNX: opset ops only, no `Loop`).

Writes `export.json` (max |difference| of each format vs Keras on real clips) and, for a
streaming model, `streaming_step.tflite` (+ `streaming_step.onnx` with the onnx format) and
`streaming.json`: the step model is fed the same clips 100 ms at a time through the TFLite
interpreter (and onnxruntime), and its final probabilities must equal the full (non-streaming)
Keras model's within 1e-4. Runs on the TensorFlow backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from common.cli import export_main
from common.errors import UserError



def sample_clips(cfg, count: int, seed: int = 0) -> np.ndarray:
    """Real clips from the run's data source (test split) when available, else seeded noise + tones."""
    num_samples = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    try:
        from apps.speech.data import load_data

        data = load_data(cfg.data, verbose=False)
        split = data.test if len(data.test) else data.train
        if len(split):
            return split.audio[:count].astype("float32")
    except UserError:
        pass  # no data here: parity on seeded noise and tones is still a parity check
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / cfg.data.sample_rate
    return (0.1 * rng.standard_normal((count, num_samples)) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32")


def export_streaming(model, cfg, out_dir: Path, clips: np.ndarray, full: np.ndarray, atol: float = 1e-4,
                     onnx: bool = False) -> dict:
    """Writes the streaming step model as builtins-only TFLite (and ONNX when `onnx`), feeds `clips`
    through each chunk by chunk, and checks the final probabilities against `full`, the full model's."""
    from apps.speech.model import build_streaming_model, export_copy, stream_clip
    from common.export import ExportError, export_onnx, export_tflite, input_names, onnx_runner, tflite_runner

    # From the export copy: its normalization statistics are constants, which ONNX needs.
    step = build_streaming_model(export_copy(model), cfg.model.streaming_chunk_frames, batch_size=1)
    path = export_tflite(step, out_dir / "streaming_step.tflite")
    names = input_names(step)
    runners = {"tflite": tflite_runner(path, names)}  # one interpreter for every chunk
    if onnx:
        onnx_path = export_onnx(step, out_dir / "streaming_step.onnx")
        runners["onnx"] = onnx_runner(onnx_path)  # one session for every chunk
    worst = {"keras": 0.0, **{fmt: 0.0 for fmt in runners}}
    agree = {fmt: 0 for fmt in runners}
    for i in range(len(clips)):
        clip = clips[i:i + 1]
        worst["keras"] = max(worst["keras"], float(np.abs(stream_clip(step, clip) - full[i:i + 1]).max()))
        for fmt, runner in runners.items():
            streamed = stream_clip(step, clip, runner=runner)
            worst[fmt] = max(worst[fmt], float(np.abs(streamed - full[i:i + 1]).max()))
            agree[fmt] += int(streamed.argmax() == full[i].argmax())
    report = {
        "path": str(path), "chunk_samples": int(step.inputs[0].shape[1]),
        "state_inputs": names[1:], "num_clips": int(len(clips)),
        "max_abs_diff_keras_stream_vs_full": worst["keras"], "max_abs_diff_tflite_stream_vs_full": worst["tflite"],
        "top1_agreement": agree["tflite"] / max(1, len(clips)), "atol": atol,
    }
    if onnx:
        report.update(onnx_path=str(onnx_path), max_abs_diff_onnx_stream_vs_full=worst["onnx"],
                      onnx_top1_agreement=agree["onnx"] / max(1, len(clips)))
    for fmt in runners:
        if worst[fmt] > atol:
            raise ExportError(f"streaming {fmt} differs from the full model by {worst[fmt]:.3g} (> {atol:g})")
    return report


def export_flat(model, fmt: str, path: Path, clips: np.ndarray, reference: np.ndarray, atol: float = 1e-4) -> dict:
    """Full-clip TFLite (builtin ops only, no Flex delegate) or ONNX of `export_copy(model, unroll=True)`:
    the clip length is fixed, so the recurrences unroll into plain ops. Parity with `reference` (the
    Keras model's probabilities on `clips`) is checked."""
    from apps.speech.model import export_copy
    from common.export import check_parity, export_onnx, export_tflite, input_names, run_onnx, tflite_runner

    flat = export_copy(model, unroll=True)
    if fmt == "tflite":
        export_tflite(flat, path)
        run = tflite_runner(path, input_names(flat))
        outputs = np.concatenate([run([clips[i:i + 1]])[0] for i in range(len(clips))])
        ops = "TFLITE_BUILTINS (unrolled recurrences)"
    else:
        export_onnx(flat, path)
        outputs = run_onnx(path, [clips])[0]
        ops = "ONNX opset ops (unrolled recurrences, no Loop)"
    diff = check_parity([reference], [outputs], atol, what=fmt)
    return {"path": str(path), "max_abs_diff": diff, "ops": ops}


def _tflite_accuracy(runner, clips: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    predictions = np.concatenate([runner([clips[i:i + 1]])[0] for i in range(len(clips))])
    return float(np.mean(predictions.argmax(-1) == labels)), predictions


# Float, dynamic-range (int8 weights, float activations) and full int8 (weights and activations,
# calibrated), side by side. Full int8 quantises the in-model log-mel front end's activations too: on
# the default crnn that cost 44 points of test accuracy (0.944 -> 0.508) where dynamic cost 3.3.
KINDS = (("float32", None), ("dynamic", "dynamic"), ("int8", "int8"))


def _changes(models: dict, latency: str) -> None:
    """Accuracy change and speed-up of each quantised model against the float one, in place."""
    for kind, _ in KINDS[1:]:
        models[kind]["accuracy_change"] = models[kind]["test_accuracy"] - models["float32"]["test_accuracy"]
        models[kind]["speedup"] = models["float32"][latency] / models[kind][latency]


def export_int8(run, out: Path, float_written: Sequence[str] = (), calibration: int = 200, max_test: int = 2000) -> dict:
    """Post-training quantisation (`KINDS`: dynamic-range and full int8; float32 in/out) of the builtins-only
    clip model (and, for a streaming run, the step model), calibrated on training clips; reports the test
    split's accuracy and the 1-thread LiteRT latency of float vs int8 side by side (as kws_streaming does).
    `float_written` names the float flatbuffers this export already wrote ("clip", "streaming"): reused."""
    from apps.speech.data import load_data
    from apps.speech.model import build_streaming_model, export_copy, stream_clip
    from common.export import export_tflite, input_names, tflite_runner, time_calls

    cfg, model = run.cfg, run.model
    data = load_data(cfg.data, verbose=False)
    if not len(data.test) or not len(data.train):
        raise UserError("int8 export needs the run's training clips (calibration) and test clips (accuracy); "
                        f"data.source={cfg.data.source!r} gives {len(data.train)} / {len(data.test)}")
    rng = np.random.default_rng(0)
    calib = data.train.audio[rng.choice(len(data.train), min(calibration, len(data.train)), replace=False)]
    test_audio, test_labels = data.test.audio[:max_test].astype("float32"), data.test.labels[:max_test]
    flat = export_copy(model, unroll=True)
    names = input_names(flat)
    report: dict = {"calibration_clips": int(len(calib)), "test_clips": int(len(test_audio)), "clip_model": {}}
    for kind, quantize in KINDS:
        path = out / ("model.tflite" if quantize is None else f"model_{kind}.tflite")
        if quantize is not None or "clip" not in float_written:
            export_tflite(flat, path, quantize=quantize, representative=[[c[None].astype("float32")] for c in calib])
        runner = tflite_runner(path, names, num_threads=1)
        accuracy, predictions = _tflite_accuracy(runner, test_audio, test_labels)
        report["clip_model"][kind] = {"path": str(path), "bytes": path.stat().st_size, "test_accuracy": accuracy,
                                      "latency_ms_1thread": time_calls(lambda: runner([test_audio[:1]]), 200, 0)["median_ms"]}
        if quantize is None:
            reference = predictions
        else:
            report["clip_model"][kind]["top1_agreement_with_float"] = float(np.mean(
                predictions.argmax(-1) == reference.argmax(-1)))
    _changes(report["clip_model"], "latency_ms_1thread")
    if cfg.model.architecture == "streaming":
        step = build_streaming_model(export_copy(model), cfg.model.streaming_chunk_frames, batch_size=1)
        step_names = input_names(step)
        # Calibrate on the step inputs a real stream produces (states included), fed chunk by chunk.
        samples: list[list[np.ndarray]] = []

        def recording(inputs):
            samples.append([np.array(x) for x in inputs])
            return [np.array(o) for o in step.predict_on_batch(inputs)]

        for c in calib[: max(4, calibration // 10)]:
            stream_clip(step, c[None], runner=recording)
        stream = {}
        for kind, quantize in KINDS:
            path = out / ("streaming_step.tflite" if quantize is None else f"streaming_step_{kind}.tflite")
            if quantize is not None or "streaming" not in float_written:
                export_tflite(step, path, quantize=quantize, representative=samples)
            runner = tflite_runner(path, step_names, num_threads=1)
            finals = np.concatenate([stream_clip(step, test_audio[i:i + 1], runner=runner)
                                     for i in range(min(len(test_audio), 500))])
            zeros = [np.zeros(t.shape, dtype=t.dtype) for t in step.inputs]
            stream[kind] = {"path": str(path), "bytes": path.stat().st_size,
                            "test_accuracy": float(np.mean(finals.argmax(-1) == test_labels[:len(finals)])),
                            "latency_ms_per_chunk_1thread": time_calls(lambda: runner(zeros), 1000, 0)["median_ms"]}
        stream["chunk_ms"] = 1e3 * int(step.inputs[0].shape[1]) / cfg.data.sample_rate
        _changes(stream, "latency_ms_per_chunk_1thread")
        report["streaming_step"] = stream
    return report


def export_run(run, out: Path, formats, num_examples: int) -> dict:
    """Every requested format of the run's model, parity-checked on real clips; the streaming step model
    too for a streaming run. Returns the report (written by the pipeline as export.json)."""
    from apps.speech.inference import predict_probabilities
    from common.export import export_all
    from common.rundir import write_json

    cfg, labels, model = run.cfg, run.state["labels"], run.model
    clips = sample_clips(cfg, num_examples)
    report = export_all(model, out, [clips], formats=tuple(f for f in formats if f in ("keras", "saved_model")))
    reference = predict_probabilities(model, clips)  # the Keras model's answers every other format must match
    for fmt in ("tflite", "onnx"):
        if fmt in formats:
            report["formats"][fmt] = export_flat(model, fmt, out / f"model.{fmt}", clips, reference)
    if cfg.model.architecture == "streaming":
        report["streaming"] = export_streaming(model, cfg, out, clips, reference, onnx="onnx" in formats)
        write_json(out / "streaming.json", report["streaming"])
    if "tflite_int8" in formats:
        written = (["clip"] if "tflite" in formats else []) + (["streaming"] if "streaming" in report else [])
        report["int8"] = export_int8(run, out, written)
        write_json(out / "int8.json", report["int8"])
    write_json(out / "labels.json", labels)
    return report


def print_report(report: dict) -> None:
    int8 = report.get("int8")
    if int8:
        for part, latency in (("clip_model", "latency_ms_1thread"), ("streaming_step", "latency_ms_per_chunk_1thread")):
            if part not in int8:
                continue
            for kind, _ in KINDS[1:]:
                f, q = int8[part]["float32"], int8[part][kind]
                print(f"  {kind} {part}: {q['path']} (test accuracy {q['test_accuracy']:.3f} vs float "
                      f"{f['test_accuracy']:.3f}; {q[latency]:.3f} vs {f[latency]:.3f} ms, 1 thread; "
                      f"{q['bytes'] / 1e3:.0f} vs {f['bytes'] / 1e3:.0f} kB)")
    for fmt, info in report["formats"].items():
        print(f"  {fmt}: {info['path']} (max |diff| {info['max_abs_diff']:.2g})")
    streaming = report.get("streaming")
    if streaming is None:
        print("  streaming step: skipped (train with --set model.architecture=streaming to get one)")
        return
    print(f"  streaming step (TFLite builtins, external state): {streaming['path']} "
          f"(max |diff| vs full model {streaming['max_abs_diff_tflite_stream_vs_full']:.2g})")
    if "onnx_path" in streaming:
        print(f"  streaming step (ONNX, external state): {streaming['onnx_path']} "
              f"(max |diff| vs full model {streaming['max_abs_diff_onnx_stream_vs_full']:.2g})")


def main(argv=None) -> int:
    return export_main("speech", argv)


if __name__ == "__main__":
    raise SystemExit(main())
