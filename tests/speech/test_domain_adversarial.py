"""Domain-adversarial training (model.domain_weight, data.adapt_audio): the gradient-reversal layer,
the packed loss and metric, and a tiny run that trains on unlabeled real-layout clips."""

import json

import numpy as np
import pytest

from tests.speech.helpers import assert_tiny_training_refuses, fake_fsdd


def _grad(fn, x):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: keras.ops.sum(fn(v)))(x))
    import tensorflow as tf

    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(fn(v))
    return tape.gradient(y, v).numpy()


def test_gradient_reversal_is_identity_forward_and_flips_the_gradient():
    from apps.speech.model import GradientReversal

    x = np.linspace(-2, 3, 12, dtype=np.float32).reshape(3, 4)
    layer = GradientReversal(0.3)
    np.testing.assert_allclose(np.asarray(layer(x)), x, atol=1e-6)
    np.testing.assert_allclose(_grad(lambda v: 2.0 * layer(v), x), np.full_like(x, -0.6), atol=1e-6)


def test_packed_loss_and_accuracy_ignore_the_labels_of_real_clips():
    from apps.speech.model import LabeledAccuracy, domain_adversarial_loss

    probs = np.asarray([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05]], np.float32)
    domain = np.asarray([[0.2], [0.4], [0.7], [0.1]], np.float32)
    y_pred = np.concatenate([probs, domain], 1)
    # Clips 0, 1 labeled (classes 0, 2: one hit); clips 2, 3 real, their class column is meaningless.
    y_true = np.asarray([[0, 0], [2, 0], [1, 1], [1, 1]], np.float32)
    loss = np.asarray(domain_adversarial_loss(3)(y_true, y_pred))
    ce = -np.log([0.7, 0.1])
    bce = -np.log([0.8, 0.6, 0.7, 0.1])
    expected = np.concatenate([ce * 2.0, [0.0, 0.0]]) + bce  # 4 clips, 2 labeled: scale 2
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    assert abs(loss.mean() - (ce.mean() + bce.mean())) < 1e-4
    metric = LabeledAccuracy(3)
    metric.update_state(y_true, y_pred)
    assert abs(float(metric.result()) - 0.5) < 1e-6  # 1 of the 2 labeled; the real ones do not count


@pytest.mark.tf_only
def test_tiny_domain_adversarial_run_with_real_unknown_clips(tmp_path, monkeypatch, capsys):
    """One tiny training for two options (each a tiny speech run, ~10 s): domain-adversarial training
    on unlabeled FSDD speakers, and other FSDD speakers' recordings as `_unknown_` clips
    (data.unknown_audio, whose refusals are tested in test_real_unknown.py)."""
    import keras

    from apps.speech import train
    from apps.speech.model import with_domain_head

    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    real = fake_fsdd(tmp_path / "fsdd", ["ann", "bob", "cy"])
    unknown = fake_fsdd(tmp_path / "fsdd_unknown", ["dee", "eve"])
    run = tmp_path / "run"
    code = train.main(["--config", "tiny", "--set", "model.domain_weight=0.5", "--set", f"data.adapt_audio={real}",
                       "--set", "data.adapt_speakers=('ann','bob')", "--set", f"data.unknown_audio={unknown}",
                       "--set", "data.unknown_audio_fraction=0", "--set", "augment.speech_noise_probability=0.5",
                       "--set", "train.epochs=2",  # the plumbing, not learning
                       "--run-dir", str(run)])
    assert code == 0
    data = json.loads((run / "data.json").read_text())
    assert data["adapt_audio"]["recordings"] == 6 and data["adapt_audio"]["speakers"] == ["ann", "bob"]
    assert data["adapt_audio"]["keyword_recordings"] == 0  # digits, and tiny's keywords are yes/no/up
    assert data["unknown_audio"]["recordings"] == 6 and data["unknown_audio"]["speakers"] == ["dee", "eve"]
    model = keras.models.load_model(run / "model.keras")  # the plain classifier, no domain head saved
    labels = json.loads((run / "labels.json").read_text())
    assert model.outputs[0].shape[-1] == len(labels)
    assert not any(layer.name.startswith("domain") for layer in model.layers)
    history = json.loads((run / "history.json").read_text())
    assert "val_accuracy" in json.dumps(history)
    # The two-headed train model shares the classifier's weights: same class probabilities.
    two = with_domain_head(model, 0.5, 8)
    x = np.random.default_rng(1).standard_normal((2, model.inputs[0].shape[1])).astype(np.float32) * 0.1
    out = np.asarray(two(x, training=False))
    np.testing.assert_allclose(out[:, :len(labels)], np.asarray(model(x, training=False)), atol=1e-5)
    assert np.all((out[:, -1] > 0) & (out[:, -1] < 1))
    # Settings that cannot work fail in one line before anything is written.
    assert_tiny_training_refuses(train, tmp_path, capsys, (
        ["model.domain_weight=0.5"], [f"data.adapt_audio={real}"],
        ["model.domain_weight=0.5", f"data.adapt_audio={real}", "data.adapt_speakers=('zed',)"]), "adapt", "domain")
