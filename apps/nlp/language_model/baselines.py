"""Count-based baselines scored on the same tokens as the network: a unigram model and an
interpolated Kneser-Ney trigram model (Chen & Goodman 1999, one discount per order).

Both are proper distributions over the model's vocabulary (every word, `<unk>` included, gets
probability > 0), so their perplexities compare directly with the network's.
"""

from __future__ import annotations

import collections

import numpy as np


def unigram_log_probs(train: np.ndarray, stream: np.ndarray, vocab_size: int) -> np.ndarray:
    """Per-position log-probability of `stream[i]` under add-one-smoothed training frequencies."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    return np.log(counts / counts.sum())[stream]


class KneserNeyTrigram:
    """Interpolated Kneser-Ney over word ids, trigram, discount `d` at every order."""

    def __init__(self, train: np.ndarray, vocab_size: int, discount: float = 0.75):
        self.d = float(discount)
        self.vocab_size = int(vocab_size)
        t = train.tolist()
        trigrams = collections.Counter(zip(t, t[1:], t[2:]))
        self.tri = trigrams
        self.tri_context = collections.Counter()  # c(u v .)
        self.tri_types = collections.Counter()  # N1+(u v .)
        for (u, v, _), c in trigrams.items():
            self.tri_context[(u, v)] += c
            self.tri_types[(u, v)] += 1
        bigram_types = collections.Counter((v, w) for (_, v, w) in trigrams)  # N1+(. v w): continuation counts
        self.bi_cont = bigram_types
        self.bi_context = collections.Counter()  # N1+(. v .)
        self.bi_types = collections.Counter()  # N1+(v .) among continuation bigrams
        for (v, _), c in bigram_types.items():
            self.bi_context[v] += c
            self.bi_types[v] += 1
        unigram_cont = np.zeros(vocab_size, dtype=np.float64)  # N1+(. w)
        for (_, w) in bigram_types:
            unigram_cont[w] += 1
        # Add-one over the continuation counts: unseen words keep a small probability.
        self.p_uni = (unigram_cont + 1.0) / (unigram_cont.sum() + vocab_size)

    def _p_bigram(self, v: int, w: int) -> float:
        context = self.bi_context.get(v, 0)
        if not context:
            return self.p_uni[w]
        seen = max(self.bi_cont.get((v, w), 0) - self.d, 0.0) / context
        return seen + self.d * self.bi_types[v] / context * self.p_uni[w]

    def log_probs(self, stream: np.ndarray) -> np.ndarray:
        """Per-position log-probability of `stream[i]` given `stream[i-2], stream[i-1]` (shorter
        histories at the start)."""
        s = stream.tolist()
        out = np.empty(len(s), dtype=np.float64)
        for i, w in enumerate(s):
            if i == 0:
                p = self.p_uni[w]
            elif i == 1:
                p = self._p_bigram(s[0], w)
            else:
                u, v = s[i - 2], s[i - 1]
                lower = self._p_bigram(v, w)
                context = self.tri_context.get((u, v), 0)
                if context:
                    p = (max(self.tri.get((u, v, w), 0) - self.d, 0.0) / context
                         + self.d * self.tri_types[(u, v)] / context * lower)
                else:
                    p = lower
            out[i] = np.log(p)
        return out


def scored_positions(length: int, batch_size: int) -> np.ndarray:
    """The stream positions whose words the network scores when the stream is cut into
    `batch_size` contiguous streams (`data.batchify`): every position but each stream's first,
    and the tail that does not divide."""
    n = length // batch_size
    starts = np.arange(batch_size) * n
    return (starts[:, None] + np.arange(1, n)[None, :]).reshape(-1)


def baseline_perplexities(train: np.ndarray, stream: np.ndarray, vocab_size: int, batch_size: int) -> dict:
    positions = scored_positions(len(stream), batch_size)
    uni = unigram_log_probs(train, stream, vocab_size)[positions]
    kn = KneserNeyTrigram(train, vocab_size).log_probs(stream)[positions]
    return {"unigram": float(np.exp(-uni.mean())), "kneser_ney_trigram": float(np.exp(-kn.mean())),
            "tokens": int(len(positions))}
