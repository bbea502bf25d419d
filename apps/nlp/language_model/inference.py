"""Scoring, generation and next-word prediction with a trained language model.

    from common.pipeline import load_run
    run = load_run("runs/lm")
    run.predict("the game was released in")        # top-k next words with probabilities
    generate(run, "the game was", max_words=30, temperature=0.8, top_k=40, seed=0)

Prompts are split on spaces like the training text (WikiText-2 is tokenised: "it 's", "1 @,@ 000");
a word the vocabulary lacks reads as `<unk>`. A prompt of unknown words only is an error: the
model would be predicting from nothing it knows. A prompt longer than the training window is
read whole: the state is carried through it, as in evaluation.
"""

from __future__ import annotations

import math
import time

import numpy as np

from apps.nlp.language_model.data import EOS, UNK, batchify
from common.errors import DataError, UsageError


def score_stream(lm, ids: np.ndarray, batch_size: int, bptt: int, progress: bool = True,
                 keep: bool = False) -> dict:
    """Perplexity of `ids` with the state carried across the whole stream, cut into `batch_size`
    contiguous streams read `bptt` tokens at a time (the benchmark's evaluation; batch 1 gives
    the same numbers up to the few tokens lost at stream starts). Also next-word top-1/top-5.
    `keep` adds `"arrays"`: per position of each stream the target's log-probability, the target
    and the softmax's input vector (`[batch, n - 1]`, `[batch, n - 1]`, `[batch, n - 1, width]`),
    what the neural cache needs."""
    from apps.nlp.language_model.model import build_scoring_model, zero_states

    streams = batchify(ids, batch_size)
    n = streams.shape[1]
    states = zero_states(lm, batch_size)
    models = {}
    total_lp, top1, top5, count = 0.0, 0.0, 0.0, 0
    kept_lp, kept_h = [], []
    started = time.perf_counter()
    windows = list(range(0, n - 1, bptt))
    for k, start in enumerate(windows):
        length = min(bptt, n - 1 - start)
        if length not in models:
            models[length] = build_scoring_model(lm, batch_size, length)
        x = streams[:, start:start + length]
        y = streams[:, start + 1:start + 1 + length]
        lp, hit1, hit5, h, *states = models[length].predict_on_batch([x, y, *states])
        total_lp += float(np.sum(lp, dtype=np.float64))
        top1 += float(np.sum(hit1))
        top5 += float(np.sum(hit5))
        count += int(lp.size)
        if keep:
            kept_lp.append(np.asarray(lp, dtype=np.float32))
            kept_h.append(np.asarray(h, dtype=np.float32))
        if progress and (k + 1) % max(1, len(windows) // 10) == 0:
            print(f"  scored {count:,} tokens, running perplexity {math.exp(-total_lp / count):.2f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    result = {"perplexity": math.exp(-total_lp / count), "cross_entropy_nats": -total_lp / count,
              "top1_accuracy": top1 / count, "top5_accuracy": top5 / count, "tokens": count,
              "batch_size": batch_size, "bptt": bptt}
    if keep:
        result["arrays"] = (np.concatenate(kept_lp, 1), streams[:, 1:n].astype(np.int64), np.concatenate(kept_h, 1))
    return result


def cache_probs(hidden: np.ndarray, targets: np.ndarray, size: int, thetas, chunk: int = 512) -> np.ndarray:
    """The neural cache (Grave et al. 2017, "Improving neural language models with a continuous
    cache"): at each position t of each stream, the probability of its target under
    `p_cache(w) ∝ sum over the previous `size` positions i whose target was w of exp(theta * h_t . h_i)`,
    i.e. the words that followed contexts like this one lately. `hidden [batch, n, width]`,
    `targets [batch, n]` -> `[len(thetas), batch, n]` (0 at each stream's first position, whose cache
    is empty). Every key precedes its query: position i's target is the word read at i + 1 <= t."""
    thetas = [float(t) for t in np.atleast_1d(thetas)]
    batch, n = targets.shape
    out = np.zeros((len(thetas), batch, n), dtype=np.float64)
    for b in range(batch):
        h, y = hidden[b], targets[b]
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            first = max(0, start - size)
            dots = h[start:stop] @ h[first:stop].T  # [queries, keys]
            query, key = np.arange(start, stop)[:, None], np.arange(first, stop)[None, :]
            allowed = (key < query) & (key >= query - size)
            match = (y[first:stop][None, :] == y[start:stop][:, None]) & allowed
            top = np.where(allowed, dots, -np.inf).max(axis=1, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)  # a query with no key (a stream's first position)
            shifted = np.where(allowed, dots - top, 0.0)  # <= 0 inside the window
            for j, theta in enumerate(thetas):
                weights = np.exp(theta * shifted) * allowed
                total = weights.sum(axis=1)
                out[j, b, start:stop] = (weights * match).sum(axis=1) / np.where(total > 0, total, 1.0)
    return out


def cache_perplexity(log_probs: np.ndarray, cache: np.ndarray, lam: float) -> float:
    """Perplexity of `(1 - lam) * p_model + lam * p_cache` per position; positions with an empty cache
    (each stream's first) keep `p_model`."""
    p = np.exp(log_probs.astype(np.float64))
    mixed = (1.0 - lam) * p + lam * cache
    mixed[:, 0] = p[:, 0]
    return float(np.exp(-np.mean(np.log(mixed))))


THETAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0)
LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


def tune_cache(arrays, size: int, thetas=THETAS, lambdas=LAMBDAS) -> dict:
    """The cache's theta and lambda with the lowest perplexity on `arrays` (validation's, from
    `score_stream(..., keep=True)`), by grid search; the grid's perplexities too. Lambda 0 is in the
    grid: on text that does not repeat itself the search turns the cache off."""
    log_probs, targets, hidden = arrays
    grid = []
    for theta, probs in zip(thetas, cache_probs(hidden, targets, size, thetas)):
        for lam in lambdas:
            grid.append({"theta": theta, "lambda": lam, "perplexity": cache_perplexity(log_probs, probs, lam)})
    best = min(grid, key=lambda g: g["perplexity"])
    return {"size": size, "theta": best["theta"], "lambda": best["lambda"], "perplexity": best["perplexity"],
            "grid": grid}


def score_with_cache(lm, ids: np.ndarray, batch_size: int, bptt: int, cache: dict | None,
                     progress: bool = True) -> dict:
    """`score_stream`'s metrics and, with a chosen neural cache (`tune_cache`'s `size`, `theta`,
    `lambda`), the perplexity with it under `"cache"`."""
    result = score_stream(lm, ids, batch_size, bptt, progress=progress, keep=cache is not None)
    if cache is not None:
        result["cache"] = with_cache(result, cache)
        del result["arrays"]
    return result


def with_cache(result: dict, cache: dict) -> dict:
    """`score_stream(..., keep=True)`'s result scored again with the neural cache `cache`
    (`size`, `theta`, `lambda`): its perplexity, beside the model's own."""
    log_probs, targets, hidden = result["arrays"]
    probs = cache_probs(hidden, targets, cache["size"], [cache["theta"]])[0]
    return {"perplexity": cache_perplexity(log_probs, probs, cache["lambda"]), "size": cache["size"],
            "theta": cache["theta"], "lambda": cache["lambda"], "tokens": result["tokens"]}


def prompt_ids(run, prompt: str) -> list[int]:
    if not isinstance(prompt, str):
        raise DataError(f"a prompt is a string, got {type(prompt).__name__}")
    words = prompt.split()
    if not words:
        raise DataError("the prompt is empty; give at least one word")
    index = run.state["word_to_id"]
    unk = index[UNK]
    ids = [index.get(w, unk) for w in words]
    if all(i == unk for i in ids) and UNK not in words:
        raise DataError(f"no word of the prompt {prompt[:80]!r} is in the model's vocabulary of {len(index):,} words "
                        f"(it reads as <unk> only); WikiText-2 models expect tokenised English, e.g. 'the game was'")
    return ids


class Stepper:
    """Feeds tokens one at a time through the step model, keeping the state (batch 1)."""

    def __init__(self, run):
        from apps.nlp.language_model.model import zero_states

        self.model = run.state["step_model"]
        self.states = zero_states(run.state["lm"], 1)
        self.log_probs = None

    def feed(self, token: int) -> np.ndarray:
        out = self.model.predict_on_batch([np.array([[token]], dtype=np.int32), *self.states])
        self.log_probs, self.states = np.asarray(out[0][0], dtype=np.float64), list(out[1:])
        return self.log_probs

    def read(self, ids) -> np.ndarray:
        for token in ids:
            self.feed(int(token))
        return self.log_probs


def _start(run, prompt: str) -> Stepper:
    stepper = Stepper(run)
    # The prompt follows a line end, as text does at the start of a paragraph.
    stepper.read([run.state["word_to_id"][EOS], *prompt_ids(run, prompt)])
    return stepper


def next_words(run, prompt: str, top_k: int = 5) -> list[dict]:
    """The `top_k` most likely next words after `prompt`, with their probabilities."""
    if top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {top_k}")
    lp = _start(run, prompt).log_probs
    vocab = run.state["vocabulary"]
    best = np.argsort(-lp)[:top_k]
    return [{"word": vocab[i], "probability": float(np.exp(lp[i]))} for i in best]


def sample_next(log_probs: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0, banned=()) -> int:
    """One word id from `log_probs` after temperature, top-k and nucleus (top-p) filtering."""
    if temperature <= 0:
        raise UsageError(f"temperature must be > 0, got {temperature} (use e.g. 0.01 for near-greedy text)")
    if top_k < 0:
        raise UsageError(f"top_k must be >= 0 (0 = all words), got {top_k}")
    if not 0 < top_p <= 1:
        raise UsageError(f"top_p must be in (0, 1], got {top_p}")
    logits = np.asarray(log_probs, dtype=np.float64) / temperature
    for i in banned:
        logits[i] = -np.inf
    order = np.argsort(-logits)
    if top_k:
        order = order[:top_k]
    probs = np.exp(logits[order] - logits[order[0]])
    probs /= probs.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), top_p) + 1)
        order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
    return int(order[rng.choice(len(order), p=probs)])


def generate(run, prompt: str, max_words: int | None = None, temperature: float | None = None,
             top_k: int | None = None, top_p: float | None = None, seed: int = 0, allow_unk: bool = False) -> str:
    """Text continuing `prompt` (the prompt not included). `<eos>` becomes a line break; `<unk>` is
    never sampled unless `allow_unk`."""
    g = run.cfg.generate
    max_words = g.max_words if max_words is None else max_words
    if max_words < 1:
        raise UsageError(f"--max-words must be >= 1, got {max_words}")
    temperature = g.temperature if temperature is None else temperature
    top_k = g.top_k if top_k is None else top_k
    top_p = g.top_p if top_p is None else top_p
    rng = np.random.default_rng(seed)
    vocab, index = run.state["vocabulary"], run.state["word_to_id"]
    banned = () if allow_unk else (index[UNK],)
    stepper = _start(run, prompt)
    words = []
    lp = stepper.log_probs
    for _ in range(max_words):
        token = sample_next(lp, rng, temperature, top_k, top_p, banned)
        words.append("\n" if vocab[token] == EOS else vocab[token])
        lp = stepper.feed(token)
    return " ".join(words).replace(" \n ", "\n").strip()
