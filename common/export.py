"""Exporting trained models: `.keras`, TF SavedModel, TFLite and ONNX, each checked for parity.

Export runs on the TensorFlow side (load the `.keras` file under KERAS_BACKEND=tensorflow;
cross-backend `.keras` loading is exact). Each `export_*` writes one artifact; `run_*`
executes it; `check_parity` compares against the Keras outputs and fails loudly.

    report = export_all(model, out_dir, sample_inputs, formats=("saved_model", "onnx"))
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from common.layers import native_recurrence

FORMATS = ("keras", "saved_model", "tflite", "onnx")
PARITY_ATOL = 1e-4


class ExportError(RuntimeError):
    """An export that cannot be produced or does not match the Keras model."""


def _tf():
    try:
        import tensorflow as tf
    except ImportError as err:  # The JAX-only GPU machine has no TensorFlow.
        raise ExportError(
            "export needs TensorFlow: run it on the CPU side (KERAS_BACKEND=tensorflow) from the run dir's model.keras"
        ) from err
    return tf


def _as_list(x: Any) -> list:
    if isinstance(x, dict):
        return list(x.values())
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _signature(model: keras.Model, batch_size: int | None = None):
    tf = _tf()
    specs = []
    for tensor, name in zip(model.inputs, input_names(model)):
        shape = (batch_size,) + tuple(tensor.shape[1:]) if batch_size is not None else tuple(tensor.shape)
        specs.append(tf.TensorSpec(shape, tensor.dtype, name=name))
    return specs


def _export_signature(model: keras.Model, batch_size: int | None = None):
    """`model.export` wants one entry per positional call argument: a multi-input model takes one list."""
    specs = _signature(model, batch_size)
    return [specs] if len(specs) > 1 else specs


def export_saved_model(model: keras.Model, path: str | Path, batch_size: int | None = None) -> Path:
    """TF SavedModel with a `serve` endpoint taking the model's raw inputs (scan recurrences exported native)."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    with native_recurrence(model):
        model.export(str(path), format="tf_saved_model", input_signature=_export_signature(model, batch_size),
                     verbose=False)
    return path


def export_onnx(model: keras.Model, path: str | Path) -> Path:
    """ONNX via tf2onnx (native ONNX LSTM/GRU ops for Keras RNN layers, scan ones included)."""
    path = Path(path)
    with native_recurrence(model):
        model.export(str(path), format="onnx", input_signature=_export_signature(model), verbose=False)
    return path


QUANTIZATIONS = (None, "dynamic", "int8")


def export_tflite(model: keras.Model, path: str | Path, allow_select_tf_ops: bool = False,
                  batch_size: int | None = None, quantize: str | None = None,
                  representative: Sequence[Sequence[np.ndarray]] | None = None) -> Path:
    """TFLite flatbuffer. Builtins only by default (what a phone runtime has).

    A dynamic-length RNN needs `allow_select_tf_ops=True`; streaming step models
    (fixed shape, unrolled, explicit state) convert with builtins only.

    `quantize`: None (float32); "dynamic" (int8 weights, float activations); "int8" (post-training
    integer quantisation of weights and activations, calibrated on `representative`, a list of
    input lists in the model's input order; inputs and outputs stay float32, so callers feed the
    same tensors; an op without an int8 kernel stays float).
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize == "int8" and not representative:
        raise ValueError("int8 quantisation needs representative inputs to calibrate the activations' ranges")
    tf = _tf()
    import tempfile

    path = Path(path)
    # Converting from a SavedModel freezes the weights into constants; converting a live
    # concrete function keeps them as resource variables that the interpreter never initialises.
    with tempfile.TemporaryDirectory() as tmp:
        export_saved_model(model, Path(tmp) / "saved_model", batch_size=batch_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved_model"))
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "int8":
            names = input_names(model)
            examples = [[np.asarray(x, dtype=t.dtype) for x, t in zip(inputs, model.inputs)] for inputs in representative]
            if len(names) > 1:  # several inputs: keyed by the signature's names, whatever their order there
                examples = [dict(zip(names, inputs)) for inputs in examples]
            converter.representative_dataset = lambda: iter(examples)
        return _convert(tf, converter, path, allow_select_tf_ops)


def _convert(tf, converter, path: Path, allow_select_tf_ops: bool) -> Path:
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    try:
        flatbuffer = converter.convert()
    except Exception as err:  # The converter raises several private error types.
        hint = "" if allow_select_tf_ops else " (a dynamic-length RNN needs allow_select_tf_ops=True, or export a streaming step model)"
        raise ExportError(f"TFLite conversion failed{hint}: {str(err).splitlines()[0]}") from err
    path.write_bytes(flatbuffer)
    return path


def run_saved_model(path: str | Path, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    tf = _tf()
    loaded = tf.saved_model.load(str(path))
    tensors = [tf.constant(x) for x in inputs]
    outputs = loaded.serve(tensors) if len(tensors) > 1 else loaded.serve(tensors[0])
    return [np.asarray(o) for o in _as_list(outputs)]


def time_calls(fn: Callable[[], object], min_calls: int = 20, min_seconds: float = 1.0) -> dict:
    """Per-call latency of `fn` after one untimed warm-up call: median, p99 (when >= 100 calls) and count
    (at least `min_calls` calls and `min_seconds` of calls). For the export reports and bench/."""
    import time

    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times = np.asarray(times)
    out = {"calls": int(len(times)), "median_ms": float(np.median(times) * 1e3)}
    if len(times) >= 100:
        out["p99_ms"] = float(np.percentile(times, 99) * 1e3)
    return out


def input_names(model: keras.Model) -> list[str]:
    """The names the exported signatures use for the model's inputs, in positional order."""
    return [t.name.split(":")[0] for t in model.inputs]


def tflite_interpreter(path: str | Path, num_threads: int | None = None):
    """A LiteRT interpreter (`ai_edge_litert`, the successor of the deprecated `tf.lite.Interpreter`) for `path`."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise ExportError("running TFLite models needs LiteRT: pip install ai-edge-litert (pinned in requirements.txt)") from err
    return Interpreter(model_path=str(path), num_threads=num_threads)


def tflite_runner(path: str | Path, names: Sequence[str],
                  num_threads: int | None = None) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """One LiteRT interpreter for the flatbuffer's signature, as a function of the inputs given positionally
    in the order of `names` (for repeated calls, e.g. a stream fed chunk by chunk)."""
    interpreter = tflite_interpreter(path, num_threads)
    runner = interpreter.get_signature_runner()
    expected = set(runner.get_input_details())
    if expected != set(names):
        raise ExportError(f"tflite signature inputs {sorted(expected)} do not match {list(names)}")

    def run(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = runner(**{name: np.asarray(x) for name, x in zip(names, inputs)})
        return [np.array(outputs[k]) for k in sorted(outputs, key=_output_index)]  # copies: the buffers are reused

    return run


def run_tflite(path: str | Path, inputs: Sequence[np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """Runs the flatbuffer's signature once with inputs given positionally in the order of `names`."""
    return tflite_runner(path, names)(inputs)


def _run_tflite_in_groups(path: Path, inputs: Sequence[np.ndarray], names: Sequence[str],
                          batch_size: int | None) -> list[np.ndarray]:
    """`run_tflite` on the whole batch, or `batch_size` rows at a time for a fixed-batch flatbuffer."""
    if batch_size is None:
        return run_tflite(path, inputs, names)
    run, total, parts = tflite_runner(path, names), int(inputs[0].shape[0]), []
    for start in range(0, total, batch_size):
        group = []
        for x in inputs:
            rows = x[start:start + batch_size]
            if len(rows) < batch_size:
                rows = np.concatenate([rows, np.repeat(rows[:1], batch_size - len(rows), axis=0)])
            group.append(rows)
        parts.append([o[:min(batch_size, total - start)] for o in run(group)])
    return [np.concatenate(outs) for outs in zip(*parts)]


def _output_index(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def onnx_runner(path: str | Path) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """One onnxruntime session for `path`, as a function of the inputs given positionally (for repeated calls)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    specs = session.get_inputs()
    return lambda inputs: [np.asarray(o) for o in session.run(None, {s.name: np.asarray(x) for s, x in zip(specs, inputs)})]


def run_onnx(path: str | Path, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return onnx_runner(path)(inputs)


def check_parity(reference: Sequence[np.ndarray], exported: Sequence[np.ndarray], atol: float = PARITY_ATOL,
                 what: str = "export") -> float:
    """Max absolute difference between two output lists; raises ExportError above `atol`."""
    reference, exported = list(reference), list(exported)
    if len(reference) != len(exported):
        raise ExportError(f"{what}: {len(exported)} outputs, expected {len(reference)}")
    worst = 0.0
    for ref, out in zip(reference, exported):
        ref, out = np.asarray(ref), np.asarray(out)
        if ref.shape != out.shape:
            raise ExportError(f"{what}: output shape {out.shape}, expected {ref.shape}")
        if ref.dtype.kind in "fc":
            worst = max(worst, float(np.max(np.abs(ref.astype(np.float64) - out.astype(np.float64)))) if ref.size else 0.0)
        elif not np.array_equal(ref, out):
            raise ExportError(f"{what}: non-numeric outputs differ")
    if worst > atol:
        raise ExportError(f"{what}: max |difference| {worst:.3g} exceeds {atol:g}")
    return worst


def export_all(model: keras.Model, out_dir: str | Path, sample_inputs: Sequence[np.ndarray],
               formats: Sequence[str] = ("keras", "saved_model", "onnx"), tflite_select_tf_ops: bool = False,
               atol: float = PARITY_ATOL, tflite_batch_size: int | None = None) -> dict:
    """Writes each requested format under `out_dir`, checks parity on `sample_inputs`, writes parity.json.

    `tflite_batch_size`: None exports TFLite with a free batch axis; N fixes it to N (a Keras LSTM/GRU
    over a dynamic batch has no builtin-ops TFLite form, a fixed batch converts), and the parity check
    then feeds the samples N at a time (the last group padded with copies of its first row)."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {FORMATS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sample_inputs = [np.asarray(x) for x in sample_inputs]
    reference = [np.asarray(o) for o in _as_list(model(sample_inputs if len(sample_inputs) > 1 else sample_inputs[0], training=False))]
    report: dict[str, Any] = {"atol": atol, "num_examples": int(sample_inputs[0].shape[0]), "formats": {}}
    for fmt in formats:
        if fmt == "keras":
            path = out_dir / "model.keras"
            model.save(str(path))
            outputs = _as_list(keras.models.load_model(str(path), compile=False)(
                sample_inputs if len(sample_inputs) > 1 else sample_inputs[0], training=False))
        elif fmt == "saved_model":
            path = export_saved_model(model, out_dir / "saved_model")
            outputs = run_saved_model(path, sample_inputs)
        elif fmt == "onnx":
            path = export_onnx(model, out_dir / "model.onnx")
            outputs = run_onnx(path, sample_inputs)
        else:
            path = export_tflite(model, out_dir / "model.tflite", allow_select_tf_ops=tflite_select_tf_ops,
                                 batch_size=tflite_batch_size)
            try:
                outputs = _run_tflite_in_groups(path, sample_inputs, input_names(model), tflite_batch_size)
            except RuntimeError as err:
                if "Flex" not in str(err):
                    raise
                # The pip LiteRT interpreter lacks the Flex delegate; a device runtime links it.
                note = "not checked: the pip LiteRT interpreter has no Flex delegate for SELECT_TF_OPS"
                print(f"warning: tflite parity {note}")
                report["formats"][fmt] = {"path": str(path), "max_abs_diff": None, "parity": note}
                continue
        diff = check_parity(reference, [np.asarray(o) for o in outputs], atol, what=fmt)
        report["formats"][fmt] = {"path": str(path), "max_abs_diff": diff}
        if fmt == "tflite" and tflite_batch_size is not None:
            report["formats"][fmt]["batch_size"] = int(tflite_batch_size)
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
