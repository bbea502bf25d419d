"""Batched greedy and beam-search decoding over the encoder and decoder-step models.

Both searches run the encoder once per batch and then the decoder-step model one token
at a time with explicit states (NumPy glue around Keras models, so any backend works).
Beam search keeps `beam_size` live hypotheses per sentence, moves those that emit `</s>`
to a finished list, stops a sentence once it has `beam_size` finished hypotheses, and
ranks them by log-probability / GNMT length penalty `((5 + length) / 6) ** alpha`.
With `beam_size=1` it returns exactly the greedy result.

`Translator` bundles a run dir's tokenizers and models with the defined behaviour for
awkward input (empty text → "", unknown characters → `<unk>` plus a warning list,
over-long input → truncated to `max_source_tokens` or an error).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from apps.nlp.translation.config import Config, DecodeConfig
from apps.nlp.translation.data import pad_batch
from apps.nlp.translation.model import Seq2Seq
from apps.nlp.translation.tokenizer import BOS, EOS, PAD, BPETokenizer

IMPLEMENTATIONS = ("compiled", "python")


def _check_implementation(name: str) -> str:
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"decoder implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
    return name


def _numpy(values) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]


def _run(model: keras.Model, inputs) -> list[np.ndarray]:
    """`model(inputs)` as NumPy through the model's compiled predict function (traced once per shape):
    eager TensorFlow spent ~55 ms a decoder step on the tiny model, most of a reference decode."""
    outputs = model.predict_on_batch(inputs)
    return _numpy(outputs if isinstance(outputs, (list, tuple)) else [outputs])


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _forbid_special(logits: np.ndarray) -> np.ndarray:
    """`<pad>` and `<s>` are never valid outputs; an undertrained model may still score them highest."""
    logits = np.array(logits, dtype="float64")
    logits[:, [PAD, BOS]] = -np.inf
    return logits


def length_penalty(length: np.ndarray | int, alpha: float) -> np.ndarray:
    return ((5.0 + np.asarray(length, dtype="float64")) / 6.0) ** alpha


def _max_steps(source_ids: np.ndarray, cfg: DecodeConfig, max_target_tokens: int) -> int:
    longest = int((source_ids != PAD).sum(axis=1).max()) if source_ids.size else 0
    return max(1, min(max_target_tokens, int(cfg.max_length_ratio * longest) + cfg.max_extra_tokens))


def greedy_decode(encoder, step, source_ids: np.ndarray, max_steps: int) -> list[list[int]]:
    """Most likely next token at every step; returns ids without `</s>` per sentence."""
    batch = source_ids.shape[0]
    encoder_outputs, mask, *states = _run(encoder, source_ids)
    tokens = np.full((batch, 1), BOS, dtype="int32")
    outputs = np.zeros((batch, 0), dtype="int32")
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_steps):
        logits, *states = _run(step, [tokens, encoder_outputs, mask] + states)
        next_tokens = _forbid_special(logits).argmax(axis=-1).astype("int32")
        next_tokens[done] = PAD
        outputs = np.concatenate([outputs, next_tokens[:, None]], axis=1)
        done |= next_tokens == EOS
        if done.all():
            break
        tokens = next_tokens[:, None]
    return [_strip(row) for row in outputs]


def _strip(row: Sequence[int]) -> list[int]:
    out = []
    for token in row:
        if token in (EOS, PAD):
            break
        out.append(int(token))
    return out


def beam_decode(encoder, step, source_ids: np.ndarray, max_steps: int, beam_size: int,
                alpha: float = 0.6) -> list[list[int]]:
    """Batched beam search; returns the best hypothesis' ids (without `</s>`) per sentence."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    batch, k = source_ids.shape[0], beam_size
    encoder_outputs, mask, *states = _run(encoder, source_ids)
    # Every sentence's encoding repeated once per beam: rows are [sentence 0 beam 0..k-1, sentence 1 ...].
    encoder_outputs, mask = np.repeat(encoder_outputs, k, axis=0), np.repeat(mask, k, axis=0)
    states = [np.repeat(s, k, axis=0) for s in states]
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # All beams start identical; only the first may expand at step one.
    sequences = np.zeros((batch, k, 0), dtype="int32")
    tokens = np.full((batch * k, 1), BOS, dtype="int32")
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    active = np.ones(batch, dtype=bool)
    for t in range(max_steps):
        logits, *states = _run(step, [tokens, encoder_outputs, mask] + states)
        vocab = logits.shape[-1]
        total = scores[:, :, None] + _log_softmax(_forbid_special(logits)).reshape(batch, k, vocab)  # [batch, k, vocab]
        flat = total.reshape(batch, k * vocab)
        # 2k candidates guarantee k that do not end the sentence. Stable sort keeps argmax's tie order.
        top = np.argsort(-flat, axis=1, kind="stable")[:, : 2 * k]
        new_scores = np.full((batch, k), -np.inf)
        new_sequences = np.zeros((batch, k, t + 1), dtype="int32")
        parents = np.tile(np.arange(k), (batch, 1))
        new_tokens = np.full((batch, k), PAD, dtype="int32")
        for b in range(batch):
            if not active[b]:
                continue
            alive = 0
            for candidate in top[b]:
                score = flat[b, candidate]
                if not np.isfinite(score):
                    break
                beam, token = divmod(int(candidate), vocab)
                if token == EOS:
                    hypothesis = sequences[b, beam].tolist()
                    finished[b].append((score / length_penalty(t + 1, alpha), hypothesis))
                else:
                    new_scores[b, alive] = score
                    new_sequences[b, alive, :t] = sequences[b, beam]
                    new_sequences[b, alive, t] = token
                    parents[b, alive] = beam
                    new_tokens[b, alive] = token
                    alive += 1
                if len(finished[b]) >= k or alive == k:
                    break
            if len(finished[b]) >= k:
                active[b] = False
        if not active.any():
            break
        rows = (np.arange(batch)[:, None] * k + parents).reshape(-1)
        states = [s[rows] for s in states]
        scores, sequences = new_scores, new_sequences
        tokens = new_tokens.reshape(-1, 1)
    results = []
    for b in range(batch):
        candidates = list(finished[b])
        if active[b] or not candidates:
            # Ran out of steps: unfinished beams compete on the same normalised score.
            length = sequences.shape[2]
            candidates += [(scores[b, j] / length_penalty(length, alpha), sequences[b, j].tolist())
                           for j in range(k) if np.isfinite(scores[b, j])]
        best = max(candidates, key=lambda c: c[0])  # max keeps the first of equal scores
        results.append([int(x) for x in best[1]])
    return results


# Compiled decoding: the same two searches written with keras.ops over fixed-shape tensors, so one
# backend loop (tf.while_loop inside a tf.function, or lax.while_loop inside jax.jit) runs every step
# of a batch without returning to Python. Hypotheses live in [batch, beam, max_length] buffers;
# finished ones are masked instead of removed. The Python searches above are the reference.

def _first_argmax(x, axis=-1):
    """Index of the first maximum along `axis` (argmax's tie order is not specified on every backend)."""
    from keras import ops

    best = ops.max(x, axis=axis, keepdims=True)
    positions = ops.arange(ops.shape(x)[axis], dtype="int32")
    shape = [1] * len(x.shape)
    shape[axis] = -1
    positions = ops.reshape(positions, shape)
    return ops.min(ops.where(ops.equal(x, best), positions, ops.shape(x)[axis]), axis=axis)


def _take_rows(x, index):
    """x [batch, n, ...] gathered along axis 1 with index [batch, m] → [batch, m, ...]."""
    from keras import ops

    for _ in range(len(x.shape) - 2):
        index = ops.expand_dims(index, -1)
    return ops.take_along_axis(x, index, axis=1)


def _step_fn(step):
    def run(tokens, encoder_outputs, mask, states):
        logits, *new_states = step([tokens, encoder_outputs, mask] + list(states), training=False)
        return logits, new_states
    return run


def _forbidden_mask(vocab_size: int):
    from keras import ops

    ids = ops.arange(vocab_size, dtype="int32")
    return ops.logical_or(ops.equal(ids, PAD), ops.equal(ids, BOS))  # [vocab]


def greedy_search_ops(encoder, step, source_ids, max_steps, max_length: int):
    """Greedy decoding as one backend loop; int32 [batch, max_length] ids, `<pad>` after `</s>` (not kept).

    Same result as `greedy_decode`: the most likely allowed token at every step, until every row has
    emitted `</s>` or `max_steps` (a scalar tensor, <= max_length) steps ran."""
    from keras import ops

    encoder_outputs, mask, *states = encoder(source_ids, training=False)
    encoder_outputs = ops.copy(encoder_outputs)  # drops the Keras mask attached to it (the step takes it explicitly)
    batch = ops.shape(source_ids)[0]
    run_step = _step_fn(step)
    positions = ops.arange(max_length, dtype="int32")[None, :]

    def body(t, tokens, done, outputs, states):
        logits, new_states = run_step(tokens, encoder_outputs, mask, states)
        logits = ops.where(_forbidden_mask(logits.shape[-1])[None, :], float("-inf"), logits)
        next_tokens = ops.where(done, PAD, _first_argmax(logits))  # [batch]
        outputs = ops.where(ops.equal(positions, t), next_tokens[:, None], outputs)
        return t + 1, next_tokens[:, None], ops.logical_or(done, ops.equal(next_tokens, EOS)), outputs, new_states

    def keep_going(t, tokens, done, outputs, states):
        return ops.logical_and(t < max_steps, ops.logical_not(ops.all(done)))

    start = (ops.zeros((), "int32"), ops.full((batch, 1), BOS, "int32"), ops.zeros((batch,), "bool"),
             ops.zeros((batch, max_length), "int32"), list(states))
    _, _, _, outputs, _ = ops.while_loop(keep_going, body, start)
    return outputs


def beam_search_ops(encoder, step, source_ids, max_steps, beam_size: int, alpha: float, max_length: int,
                    score_dtype: str = "float32"):
    """Beam search over sentences × beams as one backend loop with fixed shapes.

    Semantics of `beam_decode`: per step the 2k best (beam, token) extensions of each sentence are
    read best first; one ending in `</s>` joins the sentence's finished list (score / GNMT length
    penalty of its length with `</s>`), the others fill the k live beams, until the sentence has k
    finished hypotheses (then it stops) or k live ones. After `max_steps` (scalar tensor) steps the
    live beams of unfinished sentences compete with the finished ones on the normalised score.
    Ties go to the lower (beam, token) index, as in the stable sort there.

    Returns int32 [batch, max_length]: the best hypothesis of each sentence, `<pad>` after its end.
    `beam_size` is a Python int, or under TensorFlow a scalar int32 tensor (>= 1, checked by the caller).
    """
    from keras import ops

    if isinstance(beam_size, (int, np.integer)):
        k = int(beam_size)
        if k < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    else:  # a scalar int32 tensor inside a tf.function (the exported translator): one loop for every size
        k = beam_size
    encoder_outputs, mask, *states = encoder(source_ids, training=False)
    # Rows are [sentence 0 beam 0..k-1, sentence 1 ...], as in the Python search.
    encoder_outputs, mask = ops.repeat(encoder_outputs, k, axis=0), ops.repeat(mask, k, axis=0)
    states = [ops.repeat(s, k, axis=0) for s in states]
    batch = ops.shape(source_ids)[0]
    run_step = _step_fn(step)
    neg_inf = ops.cast(float("-inf"), score_dtype)
    slots = ops.arange(k, dtype="int32")  # [k]
    positions = ops.arange(max_length, dtype="int32")[None, None, :]  # [1, 1, max_length]

    def penalty(length):
        return ((5.0 + ops.cast(length, score_dtype)) / 6.0) ** alpha

    def body(t, tokens, states, scores, sequences, finished_scores, finished_sequences, finished_count, active):
        logits, new_states = run_step(tokens, encoder_outputs, mask, states)
        vocab = logits.shape[-1]
        logits = ops.where(_forbidden_mask(vocab)[None, :], float("-inf"), ops.cast(logits, score_dtype))
        total = scores[:, :, None] + ops.reshape(ops.log_softmax(logits, axis=-1), (-1, k, vocab))  # [batch, k, vocab]
        candidate_scores, candidates = ops.top_k(ops.reshape(total, (-1, k * vocab)), 2 * k)  # [batch, 2k], best first
        candidates = ops.cast(candidates, "int32")
        beams, candidate_tokens = candidates // vocab, candidates % vocab
        ends = ops.equal(candidate_tokens, EOS)
        ends_int = ops.cast(ends, "int32")
        ends_before = ops.cumsum(ends_int, axis=1) - ends_int  # finished by earlier candidates of this step
        live_before = ops.cumsum(1 - ends_int, axis=1) - (1 - ends_int)
        # The Python loop reads candidates in order and stops at the first -inf, at k finished or at k live.
        read = (ops.logical_and(ops.isfinite(candidate_scores), active[:, None])
                & (finished_count[:, None] + ends_before < k) & (live_before < k))
        # Live slot s takes the read non-final candidate with s live ones before it.
        to_live = ops.logical_and(read, ops.logical_not(ends))[:, :, None] & ops.equal(live_before[:, :, None], slots)
        has_live = ops.any(to_live, axis=1)  # [batch, k]
        pick = _first_argmax(ops.cast(to_live, "int32"), axis=1)  # [batch, k] candidate index per slot
        new_scores = ops.where(has_live, ops.take_along_axis(candidate_scores, pick, axis=1), neg_inf)
        parents = ops.where(has_live, ops.take_along_axis(beams, pick, axis=1), slots[None, :])
        new_tokens = ops.where(has_live, ops.take_along_axis(candidate_tokens, pick, axis=1), PAD)
        # Finished slot f takes the read final candidate that brings the count to f + 1.
        to_finished = (ops.logical_and(read, ends)[:, :, None]
                       & ops.equal((finished_count[:, None] + ends_before)[:, :, None], slots))
        has_finished = ops.any(to_finished, axis=1)  # [batch, k]
        pick = _first_argmax(ops.cast(to_finished, "int32"), axis=1)
        finished_scores = ops.where(
            has_finished, ops.take_along_axis(candidate_scores, pick, axis=1) / penalty(t + 1), finished_scores)
        ended = _take_rows(sequences, ops.take_along_axis(beams, pick, axis=1))  # [batch, k, max_length], before step t
        finished_sequences = ops.where(has_finished[:, :, None], ended, finished_sequences)
        finished_count = finished_count + ops.sum(ops.cast(ops.logical_and(read, ends), "int32"), axis=1)
        sequences = _take_rows(sequences, parents)
        sequences = ops.where(ops.equal(positions, t), new_tokens[:, :, None], sequences)
        rows = ops.reshape(ops.arange(batch, dtype="int32")[:, None] * k + parents, (-1,))
        new_states = [ops.take(s, rows, axis=0) for s in new_states]
        return (t + 1, ops.reshape(new_tokens, (-1, 1)), new_states, new_scores, sequences, finished_scores,
                finished_sequences, finished_count, ops.logical_and(active, finished_count < k))

    def keep_going(t, tokens, states, scores, sequences, finished_scores, finished_sequences, finished_count, active):
        return ops.logical_and(t < max_steps, ops.any(active))

    first_beam_only = ops.where(ops.equal(slots, 0), ops.cast(0.0, score_dtype), neg_inf)  # only beam 0 expands first
    start = (ops.zeros((), "int32"), ops.full((batch * k, 1), BOS, "int32"), states,
             ops.zeros((batch, k), score_dtype) + first_beam_only[None, :],
             ops.zeros((batch, k, max_length), "int32"), ops.full((batch, k), neg_inf, score_dtype),
             ops.zeros((batch, k, max_length), "int32"), ops.zeros((batch,), "int32"), ops.ones((batch,), "bool"))
    (steps, _, _, scores, sequences, finished_scores, finished_sequences, finished_count,
     active) = ops.while_loop(keep_going, body, start)
    # Unfinished beams compete where a sentence ran out of steps (or never finished one).
    compete = ops.logical_or(active, ops.equal(finished_count, 0))[:, None] & ops.isfinite(scores)
    unfinished = ops.where(compete, scores / penalty(steps), neg_inf)
    finished_scores = ops.where(slots[None, :] < finished_count[:, None], finished_scores, neg_inf)
    best = _first_argmax(ops.concatenate([finished_scores, unfinished], axis=1), axis=1)  # finished first, as in Python
    pool = ops.concatenate([finished_sequences, sequences], axis=1)  # [batch, 2k, max_length]
    return _take_rows(pool, best[:, None])[:, 0]


class CompiledDecoder:
    """Greedy and beam search of an encoder/decoder-step pair, each batch one compiled call.

    Under TensorFlow each search is a `tf.function` over `[batch, time]` inputs of any size (traced
    once; `jit_compile=True` hands it to XLA, which compiles per shape). Under JAX it is `jax.jit`
    of a stateless call with the current weights as arguments, so weights changed by training are
    used, and inputs are padded to bucketed shapes (batch to a power of two, time to a multiple of
    8) to bound the number of compilations. Both read the models' weights at call time.

    Args:
        encoder, step: `Seq2Seq.encoder_model()` and `decoder_step_model()`.
        max_length: width of the hypothesis buffers, >= every `max_steps` passed to `decode`.
        jit_compile: TensorFlow only: compile the loop with XLA.
        score_dtype: beam scores' dtype. float64 gives the NumPy reference's arithmetic; JAX has it
            only with `jax_enable_x64`.
    """

    def __init__(self, encoder, step, max_length: int, jit_compile: bool = False, score_dtype: str = "float32"):
        self.encoder, self.step = encoder, step
        self.max_length = int(max_length)
        self.backend = keras.backend.backend()
        if self.backend not in ("tensorflow", "jax"):
            raise ValueError(f"compiled decoding supports the tensorflow and jax backends, not {self.backend}; "
                             "use decode.implementation=python")
        if jit_compile and self.backend != "tensorflow":
            raise ValueError("jit_compile applies to the tensorflow backend (JAX always compiles)")
        if score_dtype == "float64" and self.backend == "jax":
            import jax

            if not jax.config.jax_enable_x64:
                raise ValueError("score_dtype=float64 under JAX needs JAX_ENABLE_X64=1")
        self.jit_compile, self.score_dtype = bool(jit_compile), score_dtype
        self._functions: dict = {}

    def _search(self, beam_size: int, alpha: float):
        def search(source_ids, max_steps):
            if beam_size == 1:
                return greedy_search_ops(self.encoder, self.step, source_ids, max_steps, self.max_length)
            return beam_search_ops(self.encoder, self.step, source_ids, max_steps, beam_size, alpha,
                                   self.max_length, self.score_dtype)
        return search

    def _compiled(self, beam_size: int, alpha: float):
        key = (beam_size, float(alpha) if beam_size > 1 else None)
        if key not in self._functions:
            search = self._search(beam_size, alpha)
            if self.backend == "tensorflow":
                import tensorflow as tf

                self._functions[key] = tf.function(
                    search, jit_compile=self.jit_compile,
                    input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.int32)])
            else:
                import jax

                variables = self._variables()

                def pure(values, source_ids, max_steps):
                    with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                        return search(source_ids, max_steps)

                jitted = jax.jit(pure)
                self._functions[key] = lambda source_ids, max_steps: jitted(
                    [v.value for v in variables], source_ids, max_steps)
        return self._functions[key]

    def _variables(self) -> list:
        seen, variables = set(), []
        for v in list(self.encoder.weights) + list(self.step.weights):
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
        return variables

    def _bucket(self, source_ids: np.ndarray) -> np.ndarray:
        """JAX and XLA compile per shape: pad rows (copies of row 0, dropped after) and time to fewer shapes."""
        if self.backend == "tensorflow" and not self.jit_compile:
            return source_ids
        batch, time = source_ids.shape
        rows = 1 << max(0, (batch - 1).bit_length())
        padded = np.full((rows, -(-time // 8) * 8), PAD, dtype="int32")
        padded[:batch, :time] = source_ids
        padded[batch:, :time] = source_ids[:1]
        return padded

    def decode(self, source_ids: np.ndarray, max_steps: int, beam_size: int, alpha: float = 0.6) -> list[list[int]]:
        """Best hypothesis' ids (without `</s>`) per row of `source_ids`, like `beam_decode`/`greedy_decode`."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        if not 1 <= max_steps <= self.max_length:
            raise ValueError(f"max_steps must be in [1, {self.max_length}], got {max_steps}")
        source_ids = np.asarray(source_ids, dtype="int32")
        outputs = self._compiled(beam_size, alpha)(self._bucket(source_ids), np.int32(max_steps))
        outputs = np.asarray(keras.ops.convert_to_numpy(outputs))[: len(source_ids)]
        return [_strip(row) for row in outputs]


@dataclasses.dataclass
class Translation:
    text: str
    unknown_characters: list[str]
    truncated: bool


class Translator:
    """Source text → target text with a trained run dir's tokenizers and models.

    Args:
        cfg: the run's config.
        source_tokenizer, target_tokenizer: the run's BPE tokenizers.
        seq2seq: the `Seq2Seq` wrapping the trained layers.
        on_overlong: "truncate" (keep the first `max_source_tokens` tokens) or "error".
        implementation: "compiled" (`CompiledDecoder`: each batch one backend loop) or "python"
            (`beam_decode`/`greedy_decode`, the NumPy reference); the same translations up to float
            rounding in near-ties. Not a config field: it changes no result a run records.
    """

    def __init__(self, cfg: Config, source_tokenizer: BPETokenizer, target_tokenizer: BPETokenizer, seq2seq: Seq2Seq,
                 on_overlong: str = "truncate", implementation: str = "compiled"):
        if on_overlong not in ("truncate", "error"):
            raise ValueError(f"on_overlong must be 'truncate' or 'error', got {on_overlong!r}")
        _check_implementation(implementation)
        self.implementation = implementation
        self.cfg = cfg
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.seq2seq = seq2seq
        self.encoder = seq2seq.encoder_model()
        self.step = seq2seq.decoder_step_model()
        self.on_overlong = on_overlong
        self._compiled: CompiledDecoder | None = None  # built on first use: it traces per beam size

    def compiled_decoder(self) -> CompiledDecoder:
        if self._compiled is None:
            self._compiled = CompiledDecoder(self.encoder, self.step, self.cfg.data.max_target_tokens)
        return self._compiled

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, on_overlong: str = "truncate",
                     implementation: str = "compiled") -> "Translator":
        from common.config import load_config
        from common.pipeline import load_model
        from common.rundir import open_run_dir

        path = open_run_dir(run_dir)
        cfg = load_config(Config, path / "config.json")
        model = load_model(path)
        return cls(cfg, BPETokenizer.load(path / "source_tokenizer.json"), BPETokenizer.load(path / "target_tokenizer.json"),
                   Seq2Seq.from_trained(model, cfg.model), on_overlong, implementation)

    def encode_sources(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        limit = self.cfg.data.max_source_tokens
        ids, truncated = [], []
        for text in texts:
            tokens = self.source_tokenizer.encode(text)
            if len(tokens) > limit and self.on_overlong == "error":
                raise ValueError(f"source has {len(tokens)} tokens, more than max_source_tokens={limit}: {text[:60]!r}...")
            truncated.append(len(tokens) > limit)
            ids.append(tokens[:limit])
        return ids, truncated

    def translate_ids(self, sources: Sequence[Sequence[int]], beam_size: int | None = None,
                      length_penalty_alpha: float | None = None, implementation: str | None = None) -> list[list[int]]:
        """Target ids per source id list; empty sources give empty outputs without running the model.

        `implementation` ("compiled" or "python", default the translator's) picks the search."""
        d = self.cfg.decode
        beam_size = d.beam_size if beam_size is None else beam_size
        alpha = d.length_penalty if length_penalty_alpha is None else length_penalty_alpha
        implementation = _check_implementation(self.implementation if implementation is None else implementation)
        results: list[list[int]] = [[] for _ in sources]
        order = sorted((i for i, s in enumerate(sources) if len(s)), key=lambda i: len(sources[i]))
        for start in range(0, len(order), d.batch_size):
            rows = order[start: start + d.batch_size]
            source_ids = pad_batch([sources[i] for i in rows])
            steps = _max_steps(source_ids, d, self.cfg.data.max_target_tokens)
            if implementation == "compiled":
                outputs = self.compiled_decoder().decode(source_ids, steps, beam_size, alpha)
            elif beam_size == 1:
                outputs = greedy_decode(self.encoder, self.step, source_ids, steps)
            else:
                outputs = beam_decode(self.encoder, self.step, source_ids, steps, beam_size, alpha)
            for i, output in zip(rows, outputs):
                results[i] = output
        return results

    def translate(self, texts: Sequence[str], beam_size: int | None = None,
                  implementation: str | None = None) -> list[Translation]:
        ids, truncated = self.encode_sources(texts)
        outputs = self.translate_ids(ids, beam_size, implementation=implementation)
        return [Translation(self.target_tokenizer.decode(out), self.source_tokenizer.unknown_characters(text), cut)
                for out, text, cut in zip(outputs, texts, truncated)]


def time_decoding(translator: Translator, sources: Sequence[Sequence[int]], beam_size: int,
                  implementations: Sequence[str] = IMPLEMENTATIONS, repeats: int = 1) -> dict:
    """Decodes `sources` (id lists) with each implementation side by side in this process.

    The first compiled call traces (and under JAX/XLA compiles), so each implementation runs once
    untimed as warm-up on the first batch, then `repeats` timed passes over everything; the fastest
    pass counts. Returns {implementation: {"seconds", "sentences_per_second", "outputs"}} plus, for two
    implementations, "differing" (indices whose outputs differ) and "speedup" (first / second seconds).
    For benchmarks (bench/) and the docs' speed table; not used by the apps."""
    import time

    report: dict = {}
    warm = list(sources[: translator.cfg.decode.batch_size])
    for name in implementations:
        translator.translate_ids(warm, beam_size, implementation=name)
        best, outputs = float("inf"), None
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            outputs = translator.translate_ids(sources, beam_size, implementation=name)
            best = min(best, time.perf_counter() - start)
        report[name] = {"seconds": best, "sentences_per_second": len(sources) / best, "outputs": outputs}
    if len(implementations) == 2:
        a, b = (report[name] for name in implementations)
        report["differing"] = [i for i, (x, y) in enumerate(zip(a["outputs"], b["outputs"])) if x != y]
        report["speedup"] = a["seconds"] / b["seconds"]
    return report
