"""The sentiment classifier: token ids → class probabilities.

    ids [batch, time] → WordDropout → Embedding (mask_zero) → Dropout
      → RecurrentStack (BiLSTM/BiGRU, all steps) → AttentionPooling | masked max | last state
      → [Dense] → Dropout → Dense(1, sigmoid) for two classes, Dense(N, softmax) otherwise

`model.ensemble_size=N` trains N such classifiers from seeds seed..seed+N-1 and saves one model
averaging their probabilities (`build_ensemble`).

Backend-agnostic (keras.ops only): trains under TensorFlow and JAX. The raw-string model
for serving wraps it with the vocabulary (`features.build_text_model`).
"""

from __future__ import annotations

import keras
from keras import ops

from apps.nlp.sentiment.config import ModelConfig
from apps.nlp.sentiment.features import WordDropout
from common.layers import AttentionPooling, RecurrentStack


@keras.saving.register_keras_serializable(package="sentiment")
class MaskedMaxPooling(keras.layers.Layer):
    """Max over the unmasked time steps.

    Input shape: `[batch, time, features]` (+ mask `[batch, time]`). Output: `[batch, features]`;
    an all-padding row gives zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)  # [batch, time, 1]
        masked = ops.where(valid, inputs, ops.full_like(inputs, -1e9))
        pooled = ops.max(masked, axis=1)  # [batch, features]
        return ops.where(ops.any(valid, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def build_classifier(cfg: ModelConfig, vocab_size: int, num_classes: int, seed: int = 0,
                     name: str = "sentiment_classifier") -> keras.Model:
    """Functional classifier taking `[batch, time]` int32 ids (0 = padding)."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if vocab_size < 3:
        raise ValueError(f"vocab_size must cover padding, OOV and a word, got {vocab_size}")
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = WordDropout(cfg.word_dropout_rate, seed=seed, name="word_dropout")(ids) if cfg.word_dropout_rate > 0 else ids
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True, trainable=not cfg.freeze_embedding,
                               name="embedding")(x)  # [batch, time, dim]
    if cfg.embedding_dropout_rate > 0:
        x = keras.layers.Dropout(cfg.embedding_dropout_rate, name="embedding_dropout")(x)
    last = cfg.pooling == "last"
    x = RecurrentStack(cell=cfg.cell, units=cfg.units, bidirectional=cfg.bidirectional,
                       dropout_rate=cfg.recurrent_dropout_rate, return_sequences=not last,
                       implementation=cfg.rnn_implementation, scan_unroll=cfg.scan_unroll, name="encoder")(x)
    if cfg.pooling == "attention":
        x = AttentionPooling(cfg.attention_units, name="attention_pooling")(x)  # [batch, width]
    elif cfg.pooling == "max":
        x = MaskedMaxPooling(name="max_pooling")(x)
    if cfg.hidden_units > 0:
        x = keras.layers.Dense(cfg.hidden_units, activation="relu", name="hidden")(x)
    if cfg.classifier_dropout_rate > 0:
        x = keras.layers.Dropout(cfg.classifier_dropout_rate, name="classifier_dropout")(x)
    if num_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", name="probability", dtype="float32")(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(ids, outputs, name=name)


def build_ensemble(members: list[keras.Model]) -> keras.Model:
    """One model averaging the members' probabilities (same token ids in, same output shape).

    Members trained from different seeds make different mistakes; the mean of their
    probabilities is the ensemble's prediction. The result saves, loads and exports like a
    single classifier (the members are nested models, named `member_<k>`).
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    outputs = keras.layers.Average(name="ensemble_mean", dtype="float32")([member(ids) for member in members])
    return keras.Model(ids, outputs, name="sentiment_ensemble")


def compile_args(num_classes: int) -> dict:
    """Loss and accuracy for 2 (sigmoid) or N (softmax) classes, for `compile` beside the optimizer.

    `jit_compile="auto"` keeps XLA off for TensorFlow on CPU, which matters here: forcing it
    recompiled for every bucketed batch shape and ran the recurrent loop ~5x slower per step.
    """
    if num_classes == 2:
        loss, metric = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss, metric = "sparse_categorical_crossentropy", keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    # weighted_metrics: filler rows (weight 0, added to divide batches across devices) do not count.
    return {"loss": loss, "weighted_metrics": [metric], "jit_compile": "auto"}


def compile_classifier(model: keras.Model, optimizer, num_classes: int) -> keras.Model:
    model.compile(optimizer=optimizer, **compile_args(num_classes))
    return model


def class_probabilities(outputs) -> "np.ndarray":  # noqa: F821
    """`[n, num_classes]` probabilities from the model output (a binary model emits P(class 1))."""
    import numpy as np

    outputs = np.asarray(ops.convert_to_numpy(outputs), dtype=np.float32)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs
