"""Model contract: step decoding equals teacher forcing, greedy equals beam(1), beam search sanity."""

import dataclasses

import keras
import numpy as np
import pytest

from apps.nlp.translation.config import PRESETS
from apps.nlp.translation.decode import beam_decode, greedy_decode
from apps.nlp.translation.model import MaskedSmoothedCrossEntropy, Seq2Seq
from apps.nlp.translation.tokenizer import BOS

SOURCE = np.array([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0], [11, 12, 13, 0, 0]], dtype="int32")
TARGET_IN = np.array([[BOS, 5, 6, 7], [BOS, 8, 0, 0], [BOS, 9, 10, 11]], dtype="int32")


def _seq2seq(**changes):
    cfg = dataclasses.replace(PRESETS["tiny"].model, **changes)
    return Seq2Seq(cfg, source_vocab_size=20, target_vocab_size=24)


@pytest.mark.parametrize("changes", [dict(), dict(attention="bahdanau", cell="gru", decoder_units=(8, 6))])
def test_step_model_reproduces_teacher_forced_logits(changes):
    seq2seq = _seq2seq(**changes)
    logits = np.asarray(seq2seq.training_model()([SOURCE, TARGET_IN], training=False))  # [batch, T, vocab]
    encoder_outputs, mask, *states = [np.asarray(x) for x in seq2seq.encoder_model()(SOURCE)]
    step = seq2seq.decoder_step_model()
    for t in range(TARGET_IN.shape[1]):
        step_logits, *states = [np.asarray(x) for x in step([TARGET_IN[:, t:t + 1], encoder_outputs, mask] + states)]
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)


def test_inference_models_share_the_training_layers():
    seq2seq = _seq2seq()
    training, step = seq2seq.training_model(), seq2seq.decoder_step_model()
    assert step.get_layer("output_projection") is training.get_layer("output_projection")
    rebuilt = Seq2Seq.from_trained(training, seq2seq.cfg)
    assert rebuilt.layers["decoder"] is training.get_layer("decoder")


@pytest.mark.parametrize("seed", [0, 6])
def test_greedy_equals_beam_of_size_one_and_beam_is_sane(seed):
    keras.utils.set_random_seed(seed)  # seed 6 once made the untrained model prefer <pad>
    seq2seq = _seq2seq()
    encoder, step = seq2seq.encoder_model(), seq2seq.decoder_step_model()
    rng = np.random.default_rng(0)
    for layer in (step.get_layer("output_projection"),):  # sharper logits give varied, non-trivial outputs
        kernel, bias = layer.get_weights()
        layer.set_weights([rng.normal(0, 3, kernel.shape).astype("float32"), bias])
    greedy = greedy_decode(encoder, step, SOURCE, max_steps=7)
    assert greedy == beam_decode(encoder, step, SOURCE, max_steps=7, beam_size=1)
    beams = beam_decode(encoder, step, SOURCE, max_steps=7, beam_size=3)
    assert len(beams) == 3 and all(len(b) <= 7 and 0 not in b and BOS not in b for b in beams)
    # Each sentence decodes on its own exactly as in the batch.
    assert beam_decode(encoder, step, SOURCE[1:2, :2], max_steps=7, beam_size=3)[0] == beams[1]


def test_label_smoothed_loss_ignores_padding():
    loss = MaskedSmoothedCrossEntropy(label_smoothing=0.1)
    logits = np.random.default_rng(0).normal(size=(1, 3, 6)).astype("float32")
    full = float(loss(np.array([[2, 3, 0]]), logits))
    first_two = float(loss(np.array([[2, 3]]), logits[:, :2]))
    assert full == pytest.approx(first_two, rel=1e-5)


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_padding_batches_to_a_multiple_changes_no_loss(attention):
    # data.pad_multiple only bounds the number of batch shapes: masked steps must not count.
    from apps.nlp.translation.data import PairBatches
    from apps.nlp.translation.model import compile_training_model

    rng = np.random.default_rng(0)
    sources = [list(rng.integers(3, 20, rng.integers(2, 9))) for _ in range(24)]
    targets = [list(rng.integers(3, 24, rng.integers(2, 9))) for _ in range(24)]
    model = _seq2seq(attention=attention).training_model()
    compile_training_model(model, keras.optimizers.Adam(1e-3), 0.1)
    results = [model.evaluate(PairBatches(sources, targets, 24, shuffle=False, pad_multiple=multiple), verbose=0,
                              return_dict=True) for multiple in (1, 16, 64)]
    for other in results[1:]:
        assert other["loss"] == pytest.approx(results[0]["loss"], rel=1e-5)
        assert other["masked_token_accuracy"] == pytest.approx(results[0]["masked_token_accuracy"])
