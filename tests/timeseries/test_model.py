"""Forecaster layers: shapes, modes, serialization, and the pinball loss."""

import dataclasses
import keras
import numpy as np
import pytest

from apps.timeseries.config import ModelConfig
from apps.timeseries.features import InstanceNorm
from apps.timeseries.model import PinballLoss, build_model, make_loss


@pytest.mark.parametrize(
    "kind, channel_mode, normalization, quantiles",
    [
        ("segrnn", "independent", "last", ()),
        ("segrnn", "multivariate", "revin", (0.1, 0.5, 0.9)),
        ("gru", "independent", "revin", (0.2, 0.8)),
        ("lstm", "multivariate", "none", ()),
    ],
)
def test_forecaster_shapes_and_round_trip(tmp_path, kind, channel_mode, normalization, quantiles):
    cfg = ModelConfig(kind=kind, channel_mode=channel_mode, normalization=normalization, quantiles=quantiles,
                      d_model=8, seg_len=6, units=(4,), dropout_rate=0.1)
    model = build_model(cfg, input_length=20, horizon=7, num_channels=3)  # 20 and 7 are not multiples of seg_len
    x = np.random.default_rng(0).standard_normal((5, 20, 3)).astype("float32")
    expected = (5, 7, 3) + ((len(quantiles),) if quantiles else ())
    assert model(x).shape == expected
    if kind != "segrnn":  # SegRNN's train steps run in the pipeline tests; keep this test fast.
        model.compile("adam", make_loss(cfg))
        model.fit(x, x[:, :7], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)


def test_segrnn_fan_in_init_follows_pytorch_bounds_and_round_trips(tmp_path):
    """init="fan_in": every kernel and bias inside +-1/sqrt(fan_in), not all equal, and kept by save/load."""
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(kind="segrnn", d_model=16, seg_len=4, init="fan_in")
    model = build_model(cfg, input_length=12, horizon=8, num_channels=2)
    core = model.get_layer("segrnn")
    bounds = {"segment_embedding": 1 / 4 ** 0.5, "segment_projection": 1 / 16 ** 0.5, "gru_cell": 1 / 16 ** 0.5}
    values = {name: [] for name in bounds}
    for w in core.weights:
        layer = next((name for name in bounds if f"{name}/" in w.path), None)
        if layer is not None:
            values[layer].append(np.asarray(w).ravel())
            assert np.abs(values[layer][-1]).max() <= bounds[layer] + 1e-7, w.path
    for layer, parts in values.items():  # kernel and bias of each layer, together at least 32 values
        v = np.concatenate(parts)
        assert v.size >= 32 and np.abs(v).max() > 0.8 * bounds[layer] and np.unique(v).size > v.size // 2, layer
    cell = core.rnn_cell
    assert not np.allclose(np.asarray(cell.kernel), np.asarray(cell.recurrent_kernel)[:, : cell.kernel.shape[1]])
    glorot = build_model(ModelConfig(kind="segrnn", d_model=16, seg_len=4), input_length=12, horizon=8, num_channels=2)
    assert not np.asarray(glorot.get_layer("segrnn").rnn_cell.bias).any()  # Keras's default: zero biases
    x = np.random.default_rng(0).standard_normal((3, 12, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert restored.get_layer("segrnn").init == "fan_in"
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="init"):
        build_model(dataclasses.replace(cfg, init="he"), input_length=12, horizon=8, num_channels=2)


def test_instance_norm_is_reversible():
    x = np.random.default_rng(1).standard_normal((4, 10, 2)).astype("float32") * 5 + 3
    for mode in ("last", "revin", "none"):
        layer = InstanceNorm(mode, num_channels=2)
        layer.build(x.shape)
        normed, stats = layer.normalize(x)
        np.testing.assert_allclose(layer.denormalize(normed, stats), x, atol=1e-4)


def test_pinball_loss_sanity():
    y = np.array([[[0.0]], [[1.0]]], dtype="float32")  # [batch, horizon, channels]
    pred = np.zeros((2, 1, 1, 2), dtype="float32")  # quantiles 0.1 and 0.9 predict 0
    loss = PinballLoss((0.1, 0.9))
    # Under-prediction by 1 costs q: (0.1 + 0.9) / 2 quantiles / 2 examples.
    assert float(loss(y, pred)) == pytest.approx((0.0 + (0.1 + 0.9) / 2) / 2)
    # q=0.5 is half the absolute error.
    median = PinballLoss((0.5,))
    p = np.full((2, 1, 1, 1), 0.25, dtype="float32")
    assert float(median(y, p)) == pytest.approx(0.5 * np.mean([0.25, 0.75]))
    # The constant minimising the 0.9 pinball loss is the empirical 0.9 quantile.
    samples = np.linspace(0, 1, 101, dtype="float32").reshape(-1, 1, 1)
    candidates = np.linspace(0, 1, 41)
    losses = [float(PinballLoss((0.9,))(samples, np.full((101, 1, 1, 1), c, "float32"))) for c in candidates]
    assert candidates[int(np.argmin(losses))] == pytest.approx(0.9, abs=0.03)
    with pytest.raises(ValueError, match="quantiles"):
        PinballLoss((0.0, 1.5))


@pytest.mark.parametrize("kind", ["segrnn", "lstm"])
def test_quantile_outputs_never_cross(kind):
    """Untrained quantile heads cross freely; the model sorts its quantile axis (monotone rearrangement)."""
    from common.errors import ConfigError

    keras.utils.set_random_seed(3)
    cfg = ModelConfig(kind=kind, d_model=8, seg_len=4, units=(8,), dropout_rate=0.0, quantiles=(0.1, 0.5, 0.9))
    model = build_model(cfg, 8, 4, 3)
    # Large inputs make the random heads' quantiles cross often (checked: without the sort, most windows).
    out = np.asarray(model(np.random.default_rng(0).standard_normal((64, 8, 3)).astype("float32") * 10))
    assert out.shape == (64, 4, 3, 3)
    assert (np.diff(out, axis=-1) >= 0).all()
    with pytest.raises(ConfigError, match="ascending"):
        ModelConfig(quantiles=(0.9, 0.5, 0.1))
