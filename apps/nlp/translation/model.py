"""Encoder–decoder with attention, built from one object that owns every named layer.

`Seq2Seq` creates (or, for a trained model, looks up by name) the layers once and wires
three Functional models from them, so all three share weights:

- `training_model()`: `[source_ids, target_in] -> logits [batch, T_target, vocab]`
  (teacher forcing: the decoder reads the shifted reference).
- `encoder_model()`: `source_ids -> [encoder_outputs, source_mask, *decoder_states]`.
- `decoder_step_model()`: `[previous_token [batch, 1], encoder_outputs, source_mask,
  *decoder_states] -> [logits [batch, vocab], *new_decoder_states]`.

Architecture: source embedding → bidirectional `RecurrentStack` (LSTM/GRU) whose last
layer's final states, passed through a `tanh` bridge, start the decoder `RecurrentStack`;
each decoder output queries `BahdanauAttention` or `LuongAttention` over the encoder
outputs (padding masked), and `tanh(W [output; context])` feeds the vocabulary projection.
Attention follows the recurrence (Luong et al. 2015, without input feeding), so teacher
forcing runs all target steps in parallel and the step model computes exactly the same
function one token at a time. Only `keras.ops` is used: TensorFlow and JAX run it alike.
"""

from __future__ import annotations

import keras
from keras import ops

from apps.nlp.translation.config import ModelConfig
from apps.nlp.translation.tokenizer import PAD
from common.layers import BahdanauAttention, LuongAttention, RecurrentStack


@keras.saving.register_keras_serializable(package="translation")
class PaddingMask(keras.layers.Layer):
    """`ids != <pad>` as a bool mask. Input `[batch, time]` int → output `[batch, time]` bool."""

    def call(self, ids):
        return ops.not_equal(ids, PAD)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="translation")
class MaskedSmoothedCrossEntropy(keras.losses.Loss):
    """Token cross-entropy with label smoothing, averaged over non-padding targets.

    Args:
        label_smoothing: probability mass spread uniformly over the vocabulary.

    `y_true` `[batch, time]` ids (0 = padding), `y_pred` `[batch, time, vocab]` logits.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)  # [batch, time, vocab]
        nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1), -1)
        smooth = -ops.mean(log_probs, axis=-1)
        per_token = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth  # [batch, time]
        mask = ops.cast(ops.not_equal(y_true, PAD), "float32")
        return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing, "name": self.name}


@keras.saving.register_keras_serializable(package="translation")
def masked_token_accuracy(y_true, y_pred):
    """Share of non-padding target tokens whose argmax prediction is right."""
    y_true = ops.cast(y_true, "int32")
    correct = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
    mask = ops.cast(ops.not_equal(y_true, PAD), "float32")
    return ops.sum(correct * mask) / ops.maximum(ops.sum(mask), 1.0)


class Seq2Seq:
    """Owns the named layers of the translation model and builds its three views.

    Args:
        cfg: the model section of the config.
        source_vocab_size, target_vocab_size: tokenizer vocabulary sizes.
        layers: existing layers by name (from `from_trained`); None creates fresh ones.
    """

    def __init__(self, cfg: ModelConfig, source_vocab_size: int, target_vocab_size: int, layers: dict | None = None):
        self.cfg = cfg
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.layers = layers if layers is not None else self._make_layers()
        self.encoder = self.layers["encoder"]
        self.decoder = self.layers["decoder"]

    # Layer names are the contract between the training model and the inference models.
    def layer_names(self) -> list[str]:
        names = ["source_embedding", "source_padding_mask", "source_dropout", "encoder", "target_embedding",
                 "target_dropout", "decoder", "attention", "attention_combine", "output_dropout", "output_projection"]
        return names + [name for name, _ in self._bridge_specs()]

    def _bridge_specs(self) -> list[tuple[str, int]]:
        """(name, width) of each Dense that maps final encoder states to one decoder state."""
        kinds = ("h", "c") if self.cfg.cell == "lstm" else ("h",)
        return [(f"bridge_{i}_{kind}", width) for i, width in enumerate(self.cfg.decoder_units) for kind in kinds]

    def _make_layers(self) -> dict:
        c = self.cfg
        layers = {
            "source_embedding": keras.layers.Embedding(self.source_vocab_size, c.embedding_dim, mask_zero=True, name="source_embedding"),
            "source_padding_mask": PaddingMask(name="source_padding_mask"),
            "source_dropout": keras.layers.Dropout(c.dropout_rate, name="source_dropout"),
            "encoder": RecurrentStack(c.cell, c.encoder_units, bidirectional=True, dropout_rate=c.dropout_rate,
                                      return_sequences=True, return_state=True, implementation=c.rnn_implementation,
                                      scan_unroll=c.scan_unroll, name="encoder"),
            # Targets are right-padded and the loss ignores padding, so the decoder needs no mask.
            "target_embedding": keras.layers.Embedding(self.target_vocab_size, c.embedding_dim, name="target_embedding"),
            "target_dropout": keras.layers.Dropout(c.dropout_rate, name="target_dropout"),
            "decoder": RecurrentStack(c.cell, c.decoder_units, dropout_rate=c.dropout_rate,
                                      return_sequences=True, return_state=True, implementation=c.rnn_implementation,
                                      scan_unroll=c.scan_unroll, name="decoder"),
            "attention": (BahdanauAttention(c.attention_units, name="attention") if c.attention == "bahdanau"
                          else LuongAttention("general", scale=True, name="attention")),
            "attention_combine": keras.layers.Dense(c.decoder_units[-1], activation="tanh", name="attention_combine"),
            "output_dropout": keras.layers.Dropout(c.dropout_rate, name="output_dropout"),
            "output_projection": keras.layers.Dense(self.target_vocab_size, name="output_projection", dtype="float32"),
        }
        for name, width in self._bridge_specs():
            layers[name] = keras.layers.Dense(width, activation="tanh", name=name)
        return layers

    @classmethod
    def from_trained(cls, model: keras.Model, cfg: ModelConfig) -> "Seq2Seq":
        """Wraps the layers of a trained (e.g. loaded) training model, found by name."""
        source_vocab = model.get_layer("source_embedding").input_dim
        target_vocab = model.get_layer("target_embedding").input_dim
        probe = cls.__new__(cls)
        probe.cfg = cfg
        names = cls.layer_names(probe)
        try:
            layers = {name: model.get_layer(name) for name in names}
        except ValueError as err:
            raise ValueError(f"model does not match the config's architecture: {err}") from err
        return cls(cfg, source_vocab, target_vocab, layers)

    # The three pieces every view is made of.
    def encode(self, source_ids):
        """source_ids [batch, T_source] → (encoder outputs, source mask, initial decoder states)."""
        L = self.layers
        mask = L["source_padding_mask"](source_ids)  # [batch, T_source] bool
        x = L["source_dropout"](L["source_embedding"](source_ids))  # [batch, T_source, embedding]
        results = self.encoder(x)
        outputs, states = results[0], results[1:]  # [batch, T_source, 2 * units]
        last = states[-self.encoder.states_per_layer:]  # forward then backward final states of the top layer
        per_direction = len(last) // 2
        decoder_states = []
        bridges = iter(self._bridge_specs())
        for _ in self.cfg.decoder_units:
            for kind in range(per_direction):
                name, _ = next(bridges)
                joined = keras.layers.Concatenate(name=f"{name}_input")([last[kind], last[per_direction + kind]])
                decoder_states.append(L[name](joined))
        return outputs, mask, decoder_states

    def decode(self, target_in, encoder_outputs, source_mask, states):
        """target_in [batch, T] → (logits [batch, T, vocab], new decoder states)."""
        L = self.layers
        y = L["target_dropout"](L["target_embedding"](target_in))  # [batch, T, embedding]
        results = self.decoder(y, initial_state=list(states))
        outputs, new_states = results[0], results[1:]  # [batch, T, units]
        context = L["attention"](outputs, encoder_outputs, values_mask=source_mask)  # [batch, T, 2 * encoder units]
        combined = L["attention_combine"](keras.layers.Concatenate(name="attention_concat")([outputs, context]))
        logits = L["output_projection"](L["output_dropout"](combined))  # [batch, T, vocab]
        return logits, list(new_states)

    # The three views.
    def training_model(self) -> keras.Model:
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        target_in = keras.Input((None,), dtype="int32", name="target_in")
        outputs, mask, states = self.encode(source_ids)
        logits, _ = self.decode(target_in, outputs, mask, states)
        return keras.Model([source_ids, target_in], logits, name="translation_training")

    def encoder_model(self) -> keras.Model:
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        outputs, mask, states = self.encode(source_ids)
        return keras.Model(source_ids, [outputs, mask] + states, name="translation_encoder")

    def decoder_step_model(self) -> keras.Model:
        previous = keras.Input((1,), dtype="int32", name="previous_token")
        encoder_outputs = keras.Input((None, self.encoder.output_width), name="encoder_outputs")
        source_mask = keras.Input((None,), dtype="bool", name="source_mask")
        states = [keras.Input((w,), name=f"decoder_state_{i}") for i, w in enumerate(self.decoder.state_shapes())]
        logits, new_states = self.decode(previous, encoder_outputs, source_mask, states)
        logits = keras.layers.Reshape((self.target_vocab_size,), name="step_logits")(logits)  # [batch, vocab]
        return keras.Model([previous, encoder_outputs, source_mask] + states, [logits] + new_states,
                           name="translation_decoder_step")


def compile_training_model(model: keras.Model, optimizer, label_smoothing: float) -> None:
    model.compile(optimizer=optimizer, loss=MaskedSmoothedCrossEntropy(label_smoothing),
                  metrics=[masked_token_accuracy])
