"""Layer contract tests: shapes, masks, serialization round trip, one train step, streaming parity.

Runs under TensorFlow and again under JAX (`make test` runs tests/common twice).
"""

import keras
import numpy as np
import pytest

from common.layers import (
    AttentionPooling,
    BahdanauAttention,
    LuongAttention,
    RecurrentStack,
    StreamingAttentionPooling,
    build_streaming_step_model,
    stream,
)

RNG = np.random.default_rng(0)


def _x(batch=3, time=7, features=5):
    return RNG.normal(size=(batch, time, features)).astype("float32")


def _round_trip(model, inputs, tmp_path):
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(inputs)), keras.ops.convert_to_numpy(model(inputs)), atol=1e-6
    )
    return loaded


def _one_train_step(model, x, y):
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y)
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert sum(changed) >= len(changed) // 2, "most weights should move after one step"


# Under JAX each cell and each direction once (the other two pairs are the TensorFlow pass's).
@pytest.mark.parametrize("cell, bidirectional", [("lstm", True), ("gru", False),
                                                 pytest.param("lstm", False, marks=pytest.mark.one_backend),
                                                 pytest.param("gru", True, marks=pytest.mark.one_backend)])
def test_recurrent_stack_contract(cell, bidirectional, tmp_path):
    stack = RecurrentStack(cell, (6, 6), bidirectional=bidirectional, residual=True, layer_norm=True,
                           dropout_rate=0.1, return_sequences=True)
    inputs = keras.Input((None, 5))
    outputs = keras.layers.Dense(2)(stack(inputs))
    model = keras.Model(inputs, outputs)
    x = _x()
    assert model(x).shape == (3, 7, 2)
    assert stack.output_width == (12 if bidirectional else 6)
    _one_train_step(model, x, np.zeros((3, 7, 2), "float32"))
    loaded = _round_trip(model, x, tmp_path)
    restored = [l for l in loaded.layers if isinstance(l, RecurrentStack)][0]
    assert restored.get_config() == stack.get_config()


def test_recurrent_stack_last_step_and_states():
    stack = RecurrentStack("lstm", (4, 3), return_sequences=False, return_state=True)
    out, *states = stack(_x())
    assert out.shape == (3, 3)
    assert [s.shape for s in states] == [(3, 4), (3, 4), (3, 3), (3, 3)]
    assert stack.state_shapes() == [4, 4, 3, 3]
    # The last layer's h is the output when returning only the final step.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(states[2]), atol=1e-6)


def test_recurrent_stack_mask_ignores_padding():
    stack = RecurrentStack("gru", (4,), return_sequences=False)
    x = _x(2, 5, 3)
    padded = np.concatenate([x, np.zeros((2, 3, 3), "float32")], axis=1)
    mask = np.array([[True] * 5 + [False] * 3] * 2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stack(padded, mask=mask)), keras.ops.convert_to_numpy(stack(x)), atol=1e-5
    )


def test_recurrent_stack_initial_state_is_used():
    stack = RecurrentStack("lstm", (4,), return_sequences=False)
    x = _x(2, 3, 3)
    zeros = stack(x)
    ones = stack(x, initial_state=[np.ones((2, 4), "float32")] * 2)
    assert not np.allclose(keras.ops.convert_to_numpy(zeros), keras.ops.convert_to_numpy(ones))
    with pytest.raises(ValueError, match="initial_state needs 2"):
        stack(x, initial_state=[np.ones((2, 4), "float32")])


@pytest.mark.parametrize("kwargs, match", [
    ({"cell": "rnn"}, "cell must be one of"),
    ({"units": ()}, "units must be"),
    ({"dropout_rate": 1.5}, "dropout_rate"),
])
def test_recurrent_stack_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecurrentStack(**kwargs)


def test_mixed_bfloat16_keeps_cells_float32():
    stack = RecurrentStack("lstm", (4,), dtype="mixed_bfloat16")
    out = stack(_x())
    assert stack.rnn_layers[0].dtype_policy.compute_dtype == "float32"
    assert out.shape == (3, 7, 4)


def test_attention_pooling_contract(tmp_path):
    inputs = keras.Input((None, 5))
    pooled = AttentionPooling(4)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(pooled))
    x = _x()
    assert model(x).shape == (3, 1)
    _one_train_step(model, x, np.ones((3, 1), "float32"))
    _round_trip(model, x, tmp_path)


def test_attention_pooling_weights_sum_to_one_and_skip_padding():
    layer = AttentionPooling(4, return_attention_scores=True)
    x = _x(2, 6, 3)
    mask = np.array([[True] * 4 + [False] * 2, [True] * 6])
    pooled, weights = layer(x, mask=mask)
    weights = keras.ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights[0, 4:] < 1e-6)
    expected = np.einsum("bt,btd->bd", weights, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), expected, atol=1e-5)


@pytest.mark.parametrize("gain", [1.0, 300.0])  # 300: scores in the hundreds, where a plain exp would overflow
def test_streaming_attention_pooling_equals_attention_pooling_over_the_prefix(gain):
    pool = AttentionPooling(4)
    x = _x(2, 9, 3)
    pool(x)
    pool.score.kernel.assign(keras.ops.convert_to_numpy(pool.score.kernel) * gain)
    step = StreamingAttentionPooling(4)
    state = [np.zeros((2, 1), "float32"), np.zeros((2, 1), "float32"), np.zeros((2, 3), "float32")]
    step([x[:, :3]] + state)  # builds, then takes the trained pool's weights
    step.set_weights(pool.get_weights())
    for end in (3, 6, 9):  # after each chunk: attention pooling over all frames so far
        pooled, *state = (keras.ops.convert_to_numpy(t) for t in step([x[:, end - 3:end]] + state))
        assert np.all(np.isfinite(pooled))
        np.testing.assert_allclose(pooled, keras.ops.convert_to_numpy(pool(x[:, :end])), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: BahdanauAttention(6), lambda: LuongAttention("general", scale=True)])
def test_decoder_attention_contract(make, tmp_path):
    query = keras.Input((None, 4))
    values = keras.Input((None, 5))
    context = make()(query, values)
    model = keras.Model([query, values], keras.layers.Dense(2)(context))
    q, v = _x(3, 2, 4), _x(3, 7, 5)
    assert model([q, v]).shape == (3, 2, 2)
    _one_train_step(model, [q, v], np.zeros((3, 2, 2), "float32"))
    _round_trip(model, [q, v], tmp_path)


@pytest.mark.parametrize("layer", [BahdanauAttention(6, return_attention_scores=True),
                                   LuongAttention("dot", return_attention_scores=True)])
def test_decoder_attention_masks_values_and_accepts_2d_query(layer):
    q = _x(2, 1, 5)[:, 0]  # [batch, width]
    v = _x(2, 6, 5)
    mask = np.array([[True] * 3 + [False] * 3, [True] * 6])
    context, weights = layer(q, v, values_mask=mask)
    weights = keras.ops.convert_to_numpy(weights)
    assert context.shape == (2, 5) and weights.shape == (2, 6)
    assert np.all(weights[0, 3:] < 1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(context), np.einsum("bt,btd->bd", weights, v), atol=1e-5)


def test_luong_dot_needs_equal_widths():
    with pytest.raises(ValueError, match="equal query/value widths"):
        LuongAttention("dot")(_x(2, 1, 4), _x(2, 3, 5))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("chunk", [1, 4])
def test_streaming_step_equals_full_sequence(cell, chunk):
    stack = RecurrentStack(cell, (6, 6), residual=True, layer_norm=True)
    inputs = keras.Input((None, 5))
    keras.Model(inputs, stack(inputs))
    x = _x(2, 12, 5)
    full = keras.ops.convert_to_numpy(stack(x))
    step = build_streaming_step_model(stack, 5, chunk_size=chunk, batch_size=2)
    streamed, states = stream(step, x, stack.get_initial_state(2))
    np.testing.assert_allclose(streamed, full, atol=1e-5)
    assert [s.shape for s in states] == [(2, w) for w in stack.state_shapes()]


def test_streaming_rejects_bidirectional_and_ragged_chunks():
    stack = RecurrentStack("lstm", (4,), bidirectional=True)
    stack(_x())
    with pytest.raises(ValueError, match="cannot stream"):
        build_streaming_step_model(stack, 5)
    uni = RecurrentStack("lstm", (4,))
    uni(_x())
    step = build_streaming_step_model(uni, 5, chunk_size=3, batch_size=3)
    with pytest.raises(ValueError, match="multiple of the chunk size"):
        stream(step, _x(3, 7, 5), uni.get_initial_state(3))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_masks_the_recurrent_kernel_for_the_call_only(cell):
    from common.layers import weight_dropped

    implementation = "scan" if keras.backend.backend() == "jax" else "native"  # the scan runs under JAX only
    stack = RecurrentStack(cell, (6,), implementation=implementation, bidirectional=True)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    before = keras.ops.convert_to_numpy(stack(x))
    kernels = [layer.cell.recurrent_kernel for bi in stack.rnn_layers for layer in (bi.forward_layer, bi.backward_layer)]
    with weight_dropped(stack.rnn_layers, 0.5, keras.random.SeedGenerator(0)):
        dropped = [keras.ops.convert_to_numpy(layer.cell.recurrent_kernel)
                   for bi in stack.rnn_layers for layer in (bi.forward_layer, bi.backward_layer)]
        during = keras.ops.convert_to_numpy(stack(x))
    for kernel, d in zip(kernels, dropped):
        k, zero = keras.ops.convert_to_numpy(kernel), d == 0
        assert 0.3 < zero.mean() < 0.7
        np.testing.assert_allclose(d[~zero], 2.0 * k[~zero], rtol=1e-6)  # kept weights scaled by 1 / (1 - rate)
    assert not np.allclose(dropped[0], dropped[1])  # one mask per cell
    # The same outputs as a stack whose recurrent kernels are the dropped ones: Keras' own loop ran them.
    reference = RecurrentStack(cell, (6,), bidirectional=True)
    reference.build(x.shape)
    reference.set_weights(stack.get_weights())
    ref_cells = [layer.cell for bi in reference.rnn_layers for layer in (bi.forward_layer, bi.backward_layer)]
    for c, d in zip(ref_cells, dropped):
        c.recurrent_kernel.assign(d)
    np.testing.assert_allclose(during, keras.ops.convert_to_numpy(reference(x)), atol=1e-5)
    # Restored: the variables are the weights again, unchanged.
    now = [layer.cell.recurrent_kernel for bi in stack.rnn_layers for layer in (bi.forward_layer, bi.backward_layer)]
    assert all(a is b for a, b in zip(now, kernels))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stack(x)), before, atol=1e-6)
    with pytest.raises(ValueError, match="weight drop"), weight_dropped(stack.rnn_layers, 1.0, None):
        pass
