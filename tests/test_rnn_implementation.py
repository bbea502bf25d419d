"""`model.rnn_implementation=scan` changes how each app's recurrences run, never what they compute:
the same weights give the same outputs as the native layers (the parity of the layers themselves is in
tests/common/test_scan_rnn.py)."""

import dataclasses

import keras
import numpy as np
import pytest

from common.layers import RecurrentStack, ScanGRU, ScanLSTM

# The scan runs on JAX only (on TensorFlow it is Keras' own loop); `make test` runs this file under JAX.
pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the scan runs on the JAX backend only")


def _scan_stacks(model: keras.Model) -> list[RecurrentStack]:
    stacks = [layer for layer in model._flatten_layers() if isinstance(layer, RecurrentStack)]
    assert stacks, "no RecurrentStack in the model"
    return stacks


def _check(build, inputs, atol=2e-5):
    native, scan = build("native"), build("scan")
    assert all(s.implementation == "scan" and isinstance(s.rnn_layers[0].forward_layer
                                                         if s.bidirectional else s.rnn_layers[0], (ScanLSTM, ScanGRU))
               for s in _scan_stacks(scan))
    scan.set_weights(native.get_weights())
    for a, b in zip(keras.tree.flatten(native(inputs, training=False)), keras.tree.flatten(scan(inputs, training=False))):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=atol)


@pytest.mark.parametrize("architecture", ["crnn", "streaming"])
def test_speech_scan_model_equals_native(architecture):
    from apps.speech.config import PRESETS
    from apps.speech.model import build_model

    cfg = PRESETS["tiny"]

    def build(implementation):
        model_cfg = dataclasses.replace(cfg.model, architecture=architecture, rnn_implementation=implementation,
                                        scan_unroll=3)
        return build_model(model_cfg, cfg.features, cfg.augment, num_classes=4,
                           sample_rate=cfg.data.sample_rate, clip_seconds=cfg.data.clip_seconds)

    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, int(cfg.data.sample_rate * cfg.data.clip_seconds)))
    _check(build, audio.astype("float32"))


def test_sentiment_scan_model_equals_native_on_padded_text():
    from apps.nlp.sentiment.config import PRESETS
    from apps.nlp.sentiment.model import build_classifier

    cfg = PRESETS["tiny"].model
    ids = np.array([[4, 5, 6, 7, 0, 0], [8, 9, 0, 0, 0, 0]], dtype="int32")  # right-padded, as batches are
    _check(lambda impl: build_classifier(dataclasses.replace(cfg, rnn_implementation=impl), vocab_size=12,
                                         num_classes=2), ids)


def test_translation_scan_model_equals_native():
    from apps.nlp.translation.config import PRESETS
    from apps.nlp.translation.model import Seq2Seq

    cfg = PRESETS["tiny"].model
    source = np.array([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]], dtype="int32")
    target = np.array([[1, 5, 6, 7], [1, 8, 0, 0]], dtype="int32")

    def build(implementation):
        return Seq2Seq(dataclasses.replace(cfg, rnn_implementation=implementation), source_vocab_size=20,
                       target_vocab_size=24).training_model()

    _check(build, [source, target])
