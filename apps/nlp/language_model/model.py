"""The word-level language model: embedding -> LSTM/GRU stack -> (tied) adaptive or full softmax.

`LanguageModel` is one layer holding every weight; the models around it differ only in what they
take and return:
- the training model (`build_training_model`): `(tokens, targets) [batch, bptt]` -> per-token
  negative log-likelihood `[batch, bptt]`, with the recurrent state carried from one batch to the
  next in non-trainable variables (`CarriedState`: truncated BPTT over continuous streams; a
  callback zeroes them between epochs and before validation);
- the scoring model (`build_scoring_model`): explicit states in and out, per-token log-probability
  of the target, whether it is in the top 1 / top 5 and the softmax's input vector (evaluation with
  the state carried across the whole stream; the neural cache's keys);
- the step model (`build_step_model`): one token and the states in -> log-probabilities over the
  vocabulary and the new states (generation, next-word prediction, TFLite/ONNX export).

Adaptive softmax (Grave et al. 2017): the head scores the `cutoffs[0]` most frequent words and one
entry per tail cluster; tail cluster i scores its words in a space `tail_divisor**(i+1)` times
narrower. It is a normalised distribution over the whole vocabulary, so its perplexity is exact
(every tail is computed for every token: static shapes on every backend). With `tie_weights` the
head uses the input embedding rows and each tail the same rows through a learnt projection.

Locked (variational) dropout keeps one mask per sequence across time (Gal & Ghahramani 2016);
embedding dropout removes whole words from the vocabulary for a batch, and weight drop (DropConnect
on the recurrent kernels, `common.layers.weight_dropped`) one set of recurrent connections per batch
(Merity et al. 2018).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from common.layers import RecurrentStack, weight_dropped

NAME = "language_model"


def LockedDropout(rate: float = 0.0, seed: int | None = None, name: str | None = None) -> keras.layers.Dropout:
    """Dropout with one mask per sequence, the same at every time step, for `[batch, time, features]`:
    Keras' Dropout with the time axis of its noise shape set to 1."""
    return keras.layers.Dropout(rate, noise_shape=(None, 1, None), seed=seed, name=name)


@keras.saving.register_keras_serializable(package="language_model")
class LanguageModel(keras.layers.Layer):
    """Every weight of the model. See the module docstring for the three models built on it."""

    def __init__(self, vocab_size: int, embedding_dim: int = 256, cell: str = "lstm", units=(256,),
                 tie_weights: bool = True, softmax: str = "adaptive", cutoffs=(2000, 10000), tail_divisor: int = 4,
                 embedding_dropout: float = 0.0, input_dropout: float = 0.0, hidden_dropout: float = 0.0,
                 output_dropout: float = 0.0, implementation: str = "native", seed: int = 0, unroll: bool = False,
                 tail_capacity=(), weight_drop: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if softmax not in ("adaptive", "full"):
            raise ValueError(f"softmax must be adaptive or full, got {softmax!r}")
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.cell = cell
        self.units = tuple(int(u) for u in units)
        self.tie_weights = bool(tie_weights)
        self.softmax = softmax
        # Cutoffs at or past the vocabulary size are dropped (a small vocabulary has fewer clusters).
        self.cutoffs = tuple(int(c) for c in cutoffs if 0 < int(c) < self.vocab_size) if softmax == "adaptive" else ()
        self.tail_divisor = int(tail_divisor)
        self.embedding_dropout = float(embedding_dropout)
        self.input_dropout = float(input_dropout)
        self.hidden_dropout = float(hidden_dropout)
        self.output_dropout = float(output_dropout)
        self.weight_drop = float(weight_drop)
        self.implementation = implementation
        self.seed = int(seed)
        self.unroll = bool(unroll)
        # Training only: the share of a batch's tokens each tail cluster is computed for (the tokens whose
        # target lies in it, gathered); () computes every tail for every token. See target_log_prob.
        self.tail_capacity = tuple(float(c) for c in tail_capacity)
        self.rnn = RecurrentStack(cell, self.units, dropout_rate=0.0, return_sequences=True, return_state=True,
                                  implementation=implementation, unroll=self.unroll, name="rnn")
        self.lock_in = LockedDropout(self.input_dropout, seed=seed, name="input_dropout")
        self.lock_hidden = [LockedDropout(self.hidden_dropout, seed=seed + 1 + i, name=f"hidden_dropout_{i}")
                            for i in range(len(self.units) - 1)]
        self.lock_out = LockedDropout(self.output_dropout, seed=seed + 100, name="output_dropout")
        self.embed_seed = keras.random.SeedGenerator(seed + 200)
        self.weight_drop_seed = keras.random.SeedGenerator(seed + 300)

    # ------------------------------------------------------------------ weights
    @property
    def bounds(self) -> list[int]:
        return [0, *self.cutoffs, self.vocab_size]

    @property
    def output_width(self) -> int:
        return self.embedding_dim if self.tie_weights else self.units[-1]

    def state_shapes(self) -> list[int]:
        return self.rnn.state_shapes()

    def build(self, input_shape=None):
        d = self.embedding_dim
        self.embeddings = self.add_weight(name="embeddings", shape=(self.vocab_size, d),
                                          initializer=keras.initializers.RandomUniform(-0.1, 0.1))
        self.rnn.build((None, None, d))
        width = self.units[-1]
        self.projection = None
        if self.tie_weights and width != d:
            self.projection = self.add_weight(name="projection", shape=(width, d), initializer="glorot_uniform")
        out = self.output_width
        if self.softmax == "full":
            if not self.tie_weights:
                self.output_embeddings = self.add_weight(name="output_embeddings", shape=(self.vocab_size, out),
                                                         initializer="glorot_uniform")
            self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
        else:
            head = self.cutoffs[0] if self.cutoffs else self.vocab_size
            clusters = len(self.cutoffs)
            if not self.tie_weights:
                self.head_embeddings = self.add_weight(name="head_embeddings", shape=(head, out),
                                                       initializer="glorot_uniform")
            self.head_bias = self.add_weight(name="head_bias", shape=(head,), initializer="zeros")
            self.cluster_kernel = (self.add_weight(name="cluster_kernel", shape=(out, clusters),
                                                   initializer="glorot_uniform") if clusters else None)
            self.cluster_bias = (self.add_weight(name="cluster_bias", shape=(clusters,), initializer="zeros")
                                 if clusters else None)
            self.tail_in, self.tail_words, self.tail_bias = [], [], []
            bounds = self.bounds
            for i in range(clusters):
                width_i = max(1, out // (self.tail_divisor ** (i + 1)))
                size = bounds[i + 2] - bounds[i + 1]
                self.tail_in.append(self.add_weight(name=f"tail_{i}_in", shape=(out, width_i),
                                                    initializer="glorot_uniform"))
                # Tied: the tail's word vectors are the input embedding rows projected to width_i.
                shape = (out, width_i) if self.tie_weights else (size, width_i)
                self.tail_words.append(self.add_weight(name=f"tail_{i}_words", shape=shape,
                                                       initializer="glorot_uniform"))
                self.tail_bias.append(self.add_weight(name=f"tail_{i}_bias", shape=(size,), initializer="zeros"))
        self.built = True

    # ------------------------------------------------------------------ pieces
    def hidden(self, tokens, states=None, training=None):
        """`tokens [batch, time]` -> `(h [batch, time, output_width], new_states)`."""
        table = self.embeddings
        if training and self.embedding_dropout > 0:
            keep = keras.random.uniform((self.vocab_size, 1), seed=self.embed_seed) >= self.embedding_dropout
            table = table * ops.cast(keep, table.dtype) / (1.0 - self.embedding_dropout)
        x = ops.take(table, ops.cast(tokens, "int32"), axis=0)
        x = self.lock_in(x, training=training)
        with weight_dropped(self.rnn.rnn_layers, self.weight_drop if training else 0.0, self.weight_drop_seed):
            x, new_states = self._recur(x, states, training)
        if self.projection is not None:
            x = ops.matmul(x, self.projection)
        x = self.lock_out(x, training=training)
        return x, new_states

    def _recur(self, x, states, training):
        if self.hidden_dropout > 0 and len(self.units) > 1 and training:
            # Locked dropout between layers: run the stack's layers one by one.
            n = self.rnn.states_per_layer
            new_states = []
            for i, layer in enumerate(self.rnn.rnn_layers):
                init = None if states is None else list(states[i * n:(i + 1) * n])
                out = layer(x, initial_state=init, training=training)
                x, layer_states = out[0], list(out[1:])
                new_states.extend(layer_states)
                if i < len(self.rnn.rnn_layers) - 1:
                    x = self.lock_hidden[i](x, training=training)
        else:
            out = self.rnn(x, initial_state=None if states is None else list(states), training=training)
            x, new_states = out[0], list(out[1:])
        return x, new_states

    def _head_words(self):
        if self.tie_weights:
            return self.embeddings[: (self.cutoffs[0] if self.cutoffs else self.vocab_size)]
        return self.head_embeddings

    def _head_log_probs(self, h):
        """`[..., head words + clusters]`: the head's words, then one entry per tail cluster."""
        head = ops.matmul(h, ops.transpose(self._head_words())) + self.head_bias
        if not self.cutoffs:
            return ops.log_softmax(head, axis=-1)
        clusters = ops.matmul(h, self.cluster_kernel) + self.cluster_bias
        return ops.log_softmax(ops.concatenate([head, clusters], axis=-1), axis=-1)

    def _tail_logits(self, h, i):
        """Logits of tail cluster i's words: `[..., size_i]`."""
        bounds = self.bounds
        hi = ops.matmul(h, self.tail_in[i])
        words = (ops.matmul(self.embeddings[bounds[i + 1]:bounds[i + 2]], self.tail_words[i]) if self.tie_weights
                 else self.tail_words[i])
        return ops.matmul(hi, ops.transpose(words)) + self.tail_bias[i]

    def log_probs(self, h):
        """`[..., vocab]` log-probabilities of every word."""
        if self.softmax == "full":
            words = self.embeddings if self.tie_weights else self.output_embeddings
            return ops.log_softmax(ops.matmul(h, ops.transpose(words)) + self.output_bias, axis=-1)
        head_lp = self._head_log_probs(h)
        if not self.cutoffs:
            return head_lp
        c0 = self.cutoffs[0]
        parts = [head_lp[..., :c0]]
        for i in range(len(self.cutoffs)):
            parts.append(head_lp[..., c0 + i: c0 + i + 1] + ops.log_softmax(self._tail_logits(h, i), axis=-1))
        return ops.concatenate(parts, axis=-1)

    def target_log_prob(self, h, targets):
        """`[batch, time]` log-probability of each target word (cheaper than `log_probs` + gather for
        the full softmax only by the gather; for the adaptive one, the head plus one tail per token)."""
        targets = ops.cast(targets, "int32")
        if self.softmax == "full" or not self.cutoffs:
            lp = self.log_probs(h)
            return ops.squeeze(ops.take_along_axis(lp, targets[..., None], axis=-1), -1)
        head_lp = self._head_log_probs(h)
        bounds = self.bounds
        c0 = self.cutoffs[0]
        # Head words: their own entry. A tail word: its cluster's entry + its log-prob within the cluster.
        head_index = ops.where(targets < c0, targets, c0)
        result = ops.squeeze(ops.take_along_axis(head_lp, ops.minimum(head_index, c0 - 1)[..., None], axis=-1), -1)
        result = ops.where(targets < c0, result, 0.0)
        for i in range(len(self.cutoffs)):
            lo, hi = bounds[i + 1], bounds[i + 2]
            inside = ops.logical_and(targets >= lo, targets < hi)
            if i < len(self.tail_capacity) and self.tail_capacity[i] < 1.0 and h.shape[0] and h.shape[1]:
                word_lp = self._gathered_tail(h, targets, inside, i, lo, hi)
            else:
                tail_lp = ops.log_softmax(self._tail_logits(h, i), axis=-1)
                local = ops.clip(targets - lo, 0, hi - lo - 1)
                word_lp = ops.squeeze(ops.take_along_axis(tail_lp, local[..., None], axis=-1), -1)
            result = result + ops.where(inside, head_lp[..., c0 + i] + word_lp, 0.0)
        return result

    def _gathered_tail(self, h, targets, inside, i, lo, hi):
        """Cluster i's log-probability of each target, computed only for the (at most capacity) tokens
        whose target is in the cluster: a static-shape gather by sorting the in-cluster tokens first.
        The app sizes the capacity at twice the cluster's share of training tokens plus a margin, so a
        batch holding more is many standard deviations away; such extra tokens would lose their
        within-cluster term for that step (training loss only: evaluation computes every tail)."""
        batch, time = h.shape[0], h.shape[1]
        n = batch * time
        capacity = max(1, min(n, int(np.ceil(self.tail_capacity[i] * n))))
        flat_h = ops.reshape(h, (n, h.shape[-1]))
        flat_inside = ops.reshape(inside, (n,))
        pick = ops.argsort(-ops.cast(flat_inside, "float32"))[:capacity]  # in-cluster tokens first
        tail_lp = ops.log_softmax(self._tail_logits(ops.take(flat_h, pick, axis=0), i), axis=-1)
        local = ops.clip(ops.take(ops.reshape(targets, (n,)), pick) - lo, 0, hi - lo - 1)
        word_lp = ops.squeeze(ops.take_along_axis(tail_lp, local[:, None], axis=-1), -1)
        word_lp = ops.where(ops.take(flat_inside, pick), word_lp, 0.0)
        return ops.reshape(ops.scatter(pick[:, None], word_lp, (n,)), (batch, time))

    def call(self, tokens, states=None, training=None):
        h, new_states = self.hidden(tokens, states, training=training)
        return self.log_probs(h), new_states

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "cell": self.cell, "units": list(self.units), "tie_weights": self.tie_weights, "softmax": self.softmax,
                "cutoffs": list(self.cutoffs), "tail_divisor": self.tail_divisor,
                "embedding_dropout": self.embedding_dropout, "input_dropout": self.input_dropout,
                "hidden_dropout": self.hidden_dropout, "output_dropout": self.output_dropout,
                "implementation": self.implementation, "seed": self.seed, "unroll": self.unroll,
                "tail_capacity": list(self.tail_capacity), "weight_drop": self.weight_drop}


@keras.saving.register_keras_serializable(package="language_model")
class CarriedState(keras.layers.Layer):
    """Training: `(tokens, targets) [batch, bptt]` -> NLL `[batch, bptt]`, carrying the recurrent state
    from one call to the next in non-trainable variables (no gradient flows across batches)."""

    def __init__(self, model_config: dict, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.model_config = dict(model_config)
        self.batch_size = int(batch_size)
        self.lm = LanguageModel(**self.model_config, name=NAME)

    def build(self, input_shape=None):
        self.lm.build()
        self.states = [self.add_weight(name=f"state_{i}", shape=(self.batch_size, width), initializer="zeros",
                                       trainable=False) for i, width in enumerate(self.lm.state_shapes())]
        self.built = True

    def reset_states(self) -> None:
        for state in self.states:
            state.assign(np.zeros(tuple(state.shape), dtype="float32"))

    def call(self, inputs, training=None):
        tokens, targets = inputs
        h, new_states = self.lm.hidden(tokens, [ops.convert_to_tensor(s) for s in self.states], training=training)
        for variable, value in zip(self.states, new_states):
            variable.assign(ops.stop_gradient(value))
        return -self.lm.target_log_prob(h, targets)

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config, "batch_size": self.batch_size}


class ResetStates(keras.callbacks.Callback):
    """Zeroes the carried state at the start of every epoch and of every validation pass."""

    def _reset(self):
        for layer in self.model.layers:
            if isinstance(layer, CarriedState):
                layer.reset_states()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()


class ValidationPerplexity(keras.callbacks.Callback):
    """At each epoch end, scores the validation stream the benchmark's way (`eval_batch_size` streams,
    the state carried across each) and writes `val_loss` (mean NLL) and `val_perplexity` into the logs,
    for the best checkpoint and early stopping. Keras' own validation would read the stream as
    `train.batch_size` streams, each started from a zero state."""

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int):
        super().__init__()
        self.ids, self.batch_size, self.bptt = ids, batch_size, bptt

    def on_epoch_end(self, epoch, logs=None):
        import math

        from apps.nlp.language_model.inference import score_stream

        scores = score_stream(trained_layer(self.model), self.ids, self.batch_size, self.bptt, progress=False)
        if logs is not None:
            logs["val_loss"] = scores["cross_entropy_nats"]
            logs["val_perplexity"] = scores["perplexity"]
        print(f"epoch {epoch + 1}: validation perplexity {scores['perplexity']:.2f} ({scores['tokens']:,} tokens, "
              f"{self.batch_size} streams, state carried)", flush=True)
        if not math.isfinite(scores["perplexity"]):
            self.model.stop_training = True


def mean_nll(y_true, y_pred):
    """The model already outputs the per-token NLL; `y_true` is a placeholder."""
    return ops.mean(y_pred)


def tail_capacity(train_ids: np.ndarray, vocab_size: int, cutoffs) -> tuple[float, ...]:
    """Per tail cluster: twice its share of the training tokens plus 2 points, capped at 1."""
    bounds = [c for c in cutoffs if 0 < c < vocab_size] + [vocab_size]
    return tuple(min(1.0, 2.0 * float(np.mean((train_ids >= lo) & (train_ids < hi))) + 0.02)
                 for lo, hi in zip(bounds, bounds[1:]))


def model_config(cfg, vocab_size: int, seed: int = 0, train_ids: np.ndarray | None = None) -> dict:
    m = cfg.model
    capacity = ()
    if m.softmax == "adaptive" and m.gather_tails and train_ids is not None:
        capacity = tail_capacity(train_ids, vocab_size, m.cutoffs)
    return dict(tail_capacity=capacity, vocab_size=vocab_size, embedding_dim=m.embedding_dim, cell=m.cell, units=tuple(m.units),
                tie_weights=m.tie_weights, softmax=m.softmax, cutoffs=tuple(m.cutoffs), tail_divisor=m.tail_divisor,
                embedding_dropout=m.embedding_dropout, input_dropout=m.input_dropout, hidden_dropout=m.hidden_dropout,
                output_dropout=m.output_dropout, weight_drop=m.weight_drop, implementation=m.rnn_implementation,
                seed=seed)


def build_training_model(config: dict, batch_size: int, bptt: int) -> keras.Model:
    tokens = keras.Input(batch_shape=(batch_size, bptt), dtype="int32", name="tokens")
    targets = keras.Input(batch_shape=(batch_size, bptt), dtype="int32", name="targets")
    nll = CarriedState(config, batch_size, name="carried")((tokens, targets))
    return keras.Model({"tokens": tokens, "targets": targets}, nll, name="language_model_training")


def trained_layer(model: keras.Model) -> LanguageModel:
    """The `LanguageModel` layer inside a training model (what every other model is built from)."""
    for layer in model.layers:
        if isinstance(layer, CarriedState):
            return layer.lm
    raise ValueError(f"{model.name} holds no CarriedState layer: not a language-model training model")


def _copy(lm: LanguageModel, **overrides) -> LanguageModel:
    # Inference copies never drop anything, and compute every tail (exact for every token).
    copy = LanguageModel.from_config({**lm.get_config(), "name": NAME, "tail_capacity": (), "embedding_dropout": 0.0,
                                      "weight_drop": 0.0,
                                      "input_dropout": 0.0, "hidden_dropout": 0.0, "output_dropout": 0.0,
                                      **overrides})
    copy.build()
    copy.set_weights(lm.get_weights())
    return copy


class _Apply(keras.layers.Layer):
    """Runs one of the inference computations of a `LanguageModel` inside a layer call, so that
    the weights are read in the traced graph (not folded into eager constants while a Functional
    model is built, which ONNX would turn into extra inputs)."""

    def __init__(self, lm: LanguageModel, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.lm, self.mode = lm, mode

    def call(self, tokens, *rest):
        if self.mode == "score":
            targets, states = rest[0], list(rest[1:])
            h, new_states = self.lm.hidden(tokens, states or None)
            lp = self.lm.log_probs(h)
            target_lp = ops.squeeze(ops.take_along_axis(lp, ops.cast(targets, "int32")[..., None], axis=-1), -1)
            # The target's rank: how many words score strictly higher (a count, cheaper than a top-k sort).
            rank = ops.sum(ops.cast(lp > target_lp[..., None], "int32"), axis=-1)
            # h: what the softmax reads, the neural cache's keys and queries (inference.cache_log_probs).
            return [target_lp, ops.cast(rank < 1, "float32"), ops.cast(rank < 5, "float32"), h, *new_states]
        states = list(rest)
        h, new_states = self.lm.hidden(tokens, states or None)
        if self.mode == "step":
            return [self.lm.log_probs(h[:, 0]), *new_states]
        return self.lm.log_probs(h[:, -1])  # "prompt": the next word after the last token


def build_scoring_model(lm: LanguageModel, batch_size: int, bptt: int) -> keras.Model:
    """`(tokens, targets, *states)` -> `(target_log_prob, top1, top5, hidden, *new_states)`, states
    explicit; `hidden [batch, bptt, output_width]` is the vector the softmax reads at each position."""
    copy = _copy(lm)
    tokens = keras.Input(batch_shape=(batch_size, bptt), dtype="int32", name="tokens")
    targets = keras.Input(batch_shape=(batch_size, bptt), dtype="int32", name="targets")
    states = [keras.Input(batch_shape=(batch_size, w), name=f"state_{i}") for i, w in enumerate(copy.state_shapes())]
    outputs = _Apply(copy, "score", name="score")(tokens, targets, *states)
    return keras.Model([tokens, targets, *states], outputs, name="language_model_scoring")


def build_step_model(lm: LanguageModel, batch_size: int | None = 1, unroll: bool = False) -> keras.Model:
    """`(token [batch, 1], *states)` -> `(log_probs [batch, vocab], *new_states)`: the streaming model."""
    copy = _copy(lm, unroll=unroll)
    token = keras.Input(batch_shape=(batch_size, 1), dtype="int32", name="token")
    states = [keras.Input(batch_shape=(batch_size, w), name=f"state_{i}") for i, w in enumerate(copy.state_shapes())]
    outputs = _Apply(copy, "step", name="step")(token, *states)
    return keras.Model([token, *states], outputs, name="language_model_step")


def build_prompt_model(lm: LanguageModel) -> keras.Model:
    """`tokens [1, time]` (zero start state) -> log-probabilities of the next word `[1, vocab]`."""
    copy = _copy(lm)
    tokens = keras.Input(batch_shape=(1, None), dtype="int32", name="tokens")
    return keras.Model(tokens, _Apply(copy, "prompt", name="prompt")(tokens), name="language_model_prompt")


def zero_states(lm: LanguageModel, batch_size: int) -> list[np.ndarray]:
    return [np.zeros((batch_size, w), dtype="float32") for w in lm.state_shapes()]
