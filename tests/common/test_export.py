"""Export parity: SavedModel, ONNX and TFLite (streaming step, builtins only) against Keras."""

import keras
import numpy as np
import pytest

from common.export import ExportError, check_parity, export_all, export_tflite
from common.layers import AttentionPooling, RecurrentStack, build_streaming_step_model, stream

pytestmark = pytest.mark.tf_only


def _classifier(implementation="native"):
    inputs = keras.Input((None, 5), name="features")
    h = RecurrentStack("lstm", (8,), bidirectional=True, implementation=implementation)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(AttentionPooling(4)(h)))


def test_export_all_formats_match_keras(tmp_path):
    model = _classifier()
    x = np.random.default_rng(0).normal(size=(4, 9, 5)).astype("float32")
    report = export_all(model, tmp_path, [x], formats=("keras", "saved_model", "onnx"))
    for fmt in ("keras", "saved_model", "onnx"):
        assert report["formats"][fmt]["max_abs_diff"] <= 1e-4
    assert (tmp_path / "parity.json").is_file()


def test_scan_model_exports_native_rnn_ops_with_parity(tmp_path):
    """A model trained with implementation="scan" exports as Keras' native layers: ONNX gets its LSTM op
    (not a loop), and both formats match the scan model's own outputs."""
    import onnx

    model = _classifier("scan")
    x = np.random.default_rng(0).normal(size=(4, 9, 5)).astype("float32")
    report = export_all(model, tmp_path, [x], formats=("saved_model", "onnx"))
    assert max(r["max_abs_diff"] for r in report["formats"].values()) <= 1e-4
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert "LSTM" in ops and "Loop" not in ops


def test_dynamic_rnn_tflite_needs_select_ops(tmp_path):
    with pytest.raises(ExportError, match="allow_select_tf_ops"):
        export_tflite(_classifier(), tmp_path / "m.tflite")


def test_streaming_step_model_exports_to_builtin_tflite_and_streams_equal(tmp_path):
    stack = RecurrentStack("gru", (6, 6), residual=True)
    inputs = keras.Input((None, 5))
    keras.Model(inputs, stack(inputs))
    step = build_streaming_step_model(stack, 5, chunk_size=2, batch_size=1)
    x = np.random.default_rng(1).normal(size=(1, 8, 5)).astype("float32")
    states = stack.get_initial_state(1)
    report = export_all(step, tmp_path, [x[:, :2]] + states, formats=("tflite", "onnx"))
    assert report["formats"]["tflite"]["max_abs_diff"] <= 1e-4
    from common.export import input_names, tflite_runner

    # Drive one TFLite interpreter chunk by chunk and compare with the full-sequence Keras run
    # (the runner's outputs must be copies: the interpreter reuses its buffers).
    run, outputs = tflite_runner(tmp_path / "model.tflite", input_names(step)), []
    for start in range(0, 8, 2):
        out, *states = run([x[:, start:start + 2]] + states)
        outputs.append(out)
    np.testing.assert_allclose(np.concatenate(outputs, 1), keras.ops.convert_to_numpy(stack(x)), atol=1e-5)


def test_check_parity_fails_loudly():
    with pytest.raises(ExportError, match="exceeds"):
        check_parity([np.zeros(3)], [np.full(3, 1e-3)])
    with pytest.raises(ExportError, match="shape"):
        check_parity([np.zeros(3)], [np.zeros(4)])


def test_int8_tflite_is_smaller_close_to_float_and_keeps_float_io(tmp_path):
    """Post-training int8 (weights and activations, calibrated) of a streaming step model with state inputs."""
    from common.export import input_names, tflite_interpreter, tflite_runner

    stack = RecurrentStack("gru", (128,))
    inputs = keras.Input((None, 16))
    keras.Model(inputs, stack(inputs))
    step = build_streaming_step_model(stack, 16, chunk_size=4, batch_size=1)
    rng = np.random.default_rng(0)
    samples = [[rng.normal(size=(1, 4, 16)).astype("float32"), rng.uniform(-0.5, 0.5, size=(1, 128)).astype("float32")]
               for _ in range(32)]
    float_path = export_tflite(step, tmp_path / "float.tflite")
    int8_path = export_tflite(step, tmp_path / "int8.tflite", quantize="int8", representative=samples)
    assert int8_path.stat().st_size < 0.4 * float_path.stat().st_size  # 55k weights: 4 bytes -> 1
    interpreter = tflite_interpreter(int8_path)
    assert sum(t["dtype"] == np.int8 for t in interpreter.get_tensor_details()) >= 4
    details = interpreter.get_signature_runner().get_input_details()
    assert {d["dtype"] for d in details.values()} == {np.float32}  # callers feed the same tensors
    names = input_names(step)
    ref, quant = tflite_runner(float_path, names), tflite_runner(int8_path, names)
    x = [rng.normal(size=(1, 4, 16)).astype("float32"), np.zeros((1, 128), "float32")]
    a, b = ref(x)[0], quant(x)[0]
    assert 0 < np.abs(a - b).max() < 0.1  # quantised (not identical), but close: the GRU state is in (-1, 1)
    with pytest.raises(ValueError, match="representative"):
        export_tflite(step, tmp_path / "x.tflite", quantize="int8")
