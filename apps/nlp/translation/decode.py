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


def _numpy(values) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]


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
    encoder_outputs, mask, *states = _numpy(encoder(source_ids, training=False))
    tokens = np.full((batch, 1), BOS, dtype="int32")
    outputs = np.zeros((batch, 0), dtype="int32")
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_steps):
        logits, *states = _numpy(step([tokens, encoder_outputs, mask] + states, training=False))
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
    encoder_outputs, mask, *states = _numpy(encoder(source_ids, training=False))
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
        logits, *states = _numpy(step([tokens, encoder_outputs, mask] + states, training=False))
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
    """

    def __init__(self, cfg: Config, source_tokenizer: BPETokenizer, target_tokenizer: BPETokenizer, seq2seq: Seq2Seq,
                 on_overlong: str = "truncate"):
        if on_overlong not in ("truncate", "error"):
            raise ValueError(f"on_overlong must be 'truncate' or 'error', got {on_overlong!r}")
        self.cfg = cfg
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.seq2seq = seq2seq
        self.encoder = seq2seq.encoder_model()
        self.step = seq2seq.decoder_step_model()
        self.on_overlong = on_overlong

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, on_overlong: str = "truncate") -> "Translator":
        from common.config import load_config
        from common.training import load_model, open_run_dir

        path = open_run_dir(run_dir)
        cfg = load_config(Config, path / "config.json")
        model = load_model(path)
        return cls(cfg, BPETokenizer.load(path / "source_tokenizer.json"), BPETokenizer.load(path / "target_tokenizer.json"),
                   Seq2Seq.from_trained(model, cfg.model), on_overlong)

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
                      length_penalty_alpha: float | None = None) -> list[list[int]]:
        """Target ids per source id list; empty sources give empty outputs without running the model."""
        d = self.cfg.decode
        beam_size = d.beam_size if beam_size is None else beam_size
        alpha = d.length_penalty if length_penalty_alpha is None else length_penalty_alpha
        results: list[list[int]] = [[] for _ in sources]
        order = sorted((i for i, s in enumerate(sources) if len(s)), key=lambda i: len(sources[i]))
        for start in range(0, len(order), d.batch_size):
            rows = order[start: start + d.batch_size]
            source_ids = pad_batch([sources[i] for i in rows])
            steps = _max_steps(source_ids, d, self.cfg.data.max_target_tokens)
            if beam_size == 1:
                outputs = greedy_decode(self.encoder, self.step, source_ids, steps)
            else:
                outputs = beam_decode(self.encoder, self.step, source_ids, steps, beam_size, alpha)
            for i, output in zip(rows, outputs):
                results[i] = output
        return results

    def translate(self, texts: Sequence[str], beam_size: int | None = None) -> list[Translation]:
        ids, truncated = self.encode_sources(texts)
        outputs = self.translate_ids(ids, beam_size)
        return [Translation(self.target_tokenizer.decode(out), self.source_tokenizer.unknown_characters(text), cut)
                for out, text, cut in zip(outputs, texts, truncated)]
