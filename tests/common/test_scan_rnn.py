"""ScanLSTM / ScanGRU must be Keras' LSTM / GRU computed another way: same weights, same outputs,
same gradients, under every option the suite uses (masks, go_backwards, Bidirectional, states)."""

import keras
import numpy as np
import pytest

from common.layers import RecurrentStack, ScanGRU, ScanLSTM

NATIVE = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
# On TensorFlow the scan layers run Keras' own loop, so the parity tests have nothing to compare there.
jax_only = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the scan runs on the JAX backend only")
SCAN = {"lstm": ScanLSTM, "gru": ScanGRU}


def _pair(cell, units=5, scan_unroll=3, **kwargs):
    """A native layer and its scan twin holding the same (random, not initial) weights."""
    native = NATIVE[cell](units, **kwargs)
    scan = SCAN[cell](units, scan_unroll=scan_unroll, **kwargs)
    native.build((None, None, 4))
    scan.build((None, None, 4))
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in native.get_weights()]
    native.set_weights(weights)
    scan.set_weights(weights)
    return native, scan


def _inputs(batch=3, steps=7, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, steps, 4)).astype("float32")


def _on_gpu() -> bool:
    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# On a GPU, float32 matmuls run as TF32 and cuDNN orders its sums differently: the two
# implementations then agree to about 5e-4 (measured on an H200), not to CPU rounding.
ATOL = 2e-3 if _on_gpu() else 2e-5


def _close(a, b, atol=None):
    atol = ATOL if atol is None else atol
    for x, y in zip(a if isinstance(a, (list, tuple)) else [a], b if isinstance(b, (list, tuple)) else [b]):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), atol=atol)


@jax_only
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("options", [
    dict(return_sequences=True),
    dict(return_sequences=False, return_state=True),
    dict(return_sequences=True, go_backwards=True, return_state=True),
    dict(return_sequences=True, zero_output_for_mask=True),
    dict(return_sequences=False, zero_output_for_mask=True),  # a last step masked out gives zeros
])
@pytest.mark.parametrize("masked", [False, True])
def test_scan_layer_equals_keras_layer(cell, options, masked):
    if options.get("zero_output_for_mask") and not masked:
        pytest.skip("zero_output_for_mask changes nothing without a mask: the first two option sets cover it")
    native, scan = _pair(cell, **options)
    x = _inputs()
    # Ragged on both sides: right padding (the suite's case) and a hole, which Keras also skips.
    mask = np.ones((3, 7), bool)
    mask[0, 5:] = False
    mask[1, 2] = False
    mask = mask if masked else None
    expected = native(x, mask=mask)
    if (options.get("go_backwards") and cell == "lstm" and mask is None and _on_gpu()
            and keras.backend.backend() == "jax"):
        # Keras 3.15's cuDNN LSTM path on JAX returns a go_backwards sequence in input order, unlike its
        # own scan path and the docs ("return the reversed sequence"); ScanLSTM follows the docs, which is
        # what Bidirectional's per-layer path expects.
        expected = [keras.ops.flip(expected[0], axis=1)] + list(expected[1:])
    for fused in (True, False):  # the default hand-written pass's forward, and the autodiff scan
        scan.fused_backward = fused
        _close(expected, scan(x, mask=mask))


@jax_only
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_scan_layer_uses_initial_state_and_unroll_that_does_not_divide_time(cell):
    native, scan = _pair(cell, scan_unroll=4, return_sequences=True, return_state=True)
    x = _inputs(steps=9)
    states = [np.full((3, 5), 0.3, "float32")] * (2 if cell == "lstm" else 1)
    _close(native(x, initial_state=states), scan(x, initial_state=states))


@jax_only
@pytest.mark.parametrize("cell", [pytest.param("lstm", marks=pytest.mark.slow), "gru"])  # lstm: two layers, 11 s
def test_scan_bidirectional_stack_matches_native_outputs_and_gradients(cell, tmp_path):
    x = _inputs(steps=6)
    mask = np.ones((3, 6), bool)
    mask[2, 4:] = False

    def build(implementation):
        inputs = keras.Input((None, 4))
        masked = keras.layers.Masking(0.0)(inputs)
        units = (5, 5) if cell == "lstm" else (5,)  # two layers once: JAX's eager tracing makes each one cost seconds
        y = RecurrentStack(cell, units, bidirectional=True, residual=True, implementation=implementation,
                           scan_unroll=2, name="stack")(masked)
        return keras.Model(inputs, keras.layers.Dense(1)(y))

    native, scan = build("native"), build("scan")
    scan.set_weights(native.get_weights())
    x = x * mask[..., None]  # Masking(0.0) derives the same mask
    _close(native(x), scan(x))

    loss = keras.losses.MeanSquaredError()
    target = np.ones((3, 6, 1), "float32")
    grads = [_gradients(model, loss, x, target) for model in (native, scan)]
    _close(grads[0], grads[1], atol=max(1e-4, ATOL))

    # The scan model saves and loads as itself, and its weights load into the native model.
    path = tmp_path / "scan.keras"
    scan.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("stack").implementation == "scan"
    _close(scan(x), loaded(x))


def _gradients(model, loss, x, target):
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def compute(trainable):
            y, _ = model.stateless_call(trainable, [v.value for v in model.non_trainable_variables], x)
            return loss(target, y)

        return jax.jit(jax.grad(compute))([v.value for v in model.trainable_variables])
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = loss(target, model(x, training=True))
    return tape.gradient(value, model.trainable_variables)


def test_unrolled_stack_stays_native_and_step_model_works_from_a_scan_stack():
    stack = RecurrentStack("gru", (4,), implementation="scan", unroll=True)
    assert isinstance(stack.rnn_layers[0], keras.layers.GRU) and not isinstance(stack.rnn_layers[0], ScanGRU)
    from common.layers import build_streaming_step_model, stream

    scan_stack = RecurrentStack("lstm", (4,), implementation="scan", scan_unroll=2)
    x = _inputs(batch=1, steps=6)
    full = keras.ops.convert_to_numpy(scan_stack(x))
    step = build_streaming_step_model(scan_stack, input_dim=4, chunk_size=2)
    streamed, _ = stream(step, x, scan_stack.get_initial_state(1))
    np.testing.assert_allclose(streamed, full, atol=2e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dropout=0.1), "dropout"),
    (dict(activation="relu"), "activations"),
    (dict(unroll=True), "unroll"),
    (dict(scan_unroll=0), "scan_unroll"),
])
def test_scan_layer_rejects_settings_it_does_not_compute(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScanLSTM(4, **kwargs)


def test_recurrent_stack_rejects_unknown_implementation():
    with pytest.raises(ValueError, match="implementation"):
        RecurrentStack("lstm", (4,), implementation="cudnn")


def test_on_tensorflow_the_scan_layer_runs_keras_loop():
    """TensorFlow's scan does not unroll, so there ScanLSTM must take Keras' own (fused) path."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow backend behaviour")
    native, scan = _pair("lstm", return_sequences=True)
    x = _inputs()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(native(x)), keras.ops.convert_to_numpy(scan(x)))


@jax_only
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("options", [
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=False, return_state=True, go_backwards=True),
    dict(return_sequences=True, zero_output_for_mask=True),
])
@pytest.mark.parametrize("fused", [pytest.param(False, marks=pytest.mark.slow), True])  # True: the default
def test_scan_layer_gradients_equal_keras_layer(cell, options, fused):
    """Gradients with respect to the weights, the inputs and the initial states, through outputs and
    final states, with a ragged mask; `fused` is the hand-written backward pass (common.scan_backward)."""
    import jax

    native, scan = _pair(cell, **options)
    scan.fused_backward = fused
    x = _inputs(steps=9)
    mask = np.ones((3, 9), bool)
    mask[0, 6:] = False
    mask[1, 3] = False
    rng = np.random.default_rng(5)
    states = [rng.normal(size=(3, 5)).astype("float32") for _ in range(2 if cell == "lstm" else 1)]
    results = native(x, mask=mask, initial_state=states)
    weights = [rng.normal(size=np.shape(r)).astype("float32") for r in keras.tree.flatten(results)]

    def gradients(layer):
        def loss(variables, inputs, initial):
            outputs, _ = layer.stateless_call(variables, [v.value for v in layer.non_trainable_variables], inputs,
                                              mask=mask, initial_state=initial)
            return sum((o * w).sum() for o, w in zip(keras.tree.flatten(outputs), weights))

        return jax.grad(loss, argnums=(0, 1, 2))([v.value for v in layer.trainable_variables], x, states)

    _close(keras.tree.flatten(gradients(native)), keras.tree.flatten(gradients(scan)), atol=max(1e-4, ATOL))


def test_native_recurrence_switches_scan_layers_for_its_duration_only():
    """Exports trace inside `native_recurrence` (Keras' own loop, which export converters know); the
    switch must cover every scan layer of the model and be undone even when the body fails."""
    from common.layers import native_recurrence

    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, RecurrentStack("gru", (5, 5), bidirectional=True, implementation="scan")(inputs))
    scans = [layer for layer in model._flatten_layers() if isinstance(layer, (ScanLSTM, ScanGRU))]
    assert len(scans) == 4  # two layers, forward and backward
    x = _inputs()
    expected = keras.ops.convert_to_numpy(model(x))
    with pytest.raises(RuntimeError), native_recurrence(model):
        assert all(layer.native_loop for layer in scans)
        _close(model(x), expected)
        raise RuntimeError("export failed")
    assert not any(layer.native_loop for layer in scans)
