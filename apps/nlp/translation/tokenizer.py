"""A small byte-pair-encoding (BPE) subword tokenizer, trained on the training split.

Text is normalised (Unicode NFKC, collapsed whitespace, optionally lower-cased), split
at whitespace, and each word is split further into letter/digit runs and single
punctuation marks. The first piece of every word carries a "▁" word-start marker, as in
SentencePiece, so decoding is exact: join the pieces and turn "▁" back into spaces.
BPE merges (Sennrich et al. 2016) are learned inside those pieces only.

Defined behaviour for awkward input:
- characters never seen (or seen fewer than `min_char_count` times) in training map to
  `<unk>`; `unknown_characters(text)` lists them so callers can warn, and `decode`
  drops `<unk>` pieces.
- empty or whitespace-only text encodes to no tokens.

    tok = BPETokenizer.train(texts, vocab_size=1000)
    ids = tok.encode("Where is the station?")  # [int, ...] without <s>/</s>
    tok.decode(ids) == "where is the station?"
    tok.save(path); BPETokenizer.load(path)
"""

from __future__ import annotations

import heapq
import json
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence
from common.errors import RunDirError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")
WORD_START = "▁"
_PIECES = re.compile(r"\w+|[^\w\s]")
_FORMAT_VERSION = 1


def normalize(text: str, lowercase: bool) -> str:
    """NFKC, whitespace collapsed to single spaces, optionally lower-cased."""
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.replace(WORD_START, " ").split())
    return text.lower() if lowercase else text


def pretokenize(text: str) -> list[str]:
    """Normalised text → pieces: letter/digit runs and single punctuation marks.

    The first piece of each whitespace-separated word starts with "▁".
    """
    pieces = []
    for word in text.split():
        parts = _PIECES.findall(word)
        pieces.append(WORD_START + parts[0])
        pieces.extend(parts[1:])
    return pieces


class BPETokenizer:
    """Byte-pair encoding over characters with `<pad>=0, <unk>=1, <s>=2, </s>=3`.

    Args:
        vocab: all token strings, the special tokens first.
        merges: learned merges in priority order, each a pair of token strings.
        lowercase: lower-case text before tokenizing.
    """

    def __init__(self, vocab: Sequence[str], merges: Sequence[tuple[str, str]], lowercase: bool = True):
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocab must start with {SPECIAL_TOKENS}, got {list(vocab[:4])}")
        self.vocab = list(vocab)
        self.merges = [tuple(m) for m in merges]
        self.lowercase = bool(lowercase)
        self.token_to_id = {token: i for i, token in enumerate(self.vocab)}
        if len(self.token_to_id) != len(self.vocab):
            raise ValueError("vocab has duplicate tokens")
        self.merge_rank = {pair: rank for rank, pair in enumerate(self.merges)}
        self.alphabet = {t for t in self.vocab[len(SPECIAL_TOKENS):] if len(t) == 1}
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, lowercase: bool = True, min_char_count: int = 1,
              min_pair_count: int = 2) -> "BPETokenizer":
        """Learns merges until the vocabulary has `vocab_size` tokens (or no pair repeats).

        The heap holds (count, pair) entries; stale ones are skipped when popped, so each
        merge only touches the words that contain the merged pair.
        """
        if vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)}, got {vocab_size}")
        word_counts: Counter = Counter()
        for text in texts:
            word_counts.update(pretokenize(normalize(text, lowercase)))
        char_counts: Counter = Counter()
        for word, count in word_counts.items():
            for ch in word:
                char_counts[ch] += count
        alphabet = sorted(ch for ch, count in char_counts.items() if count >= min_char_count)
        vocab = list(SPECIAL_TOKENS) + alphabet
        known = set(alphabet)
        words = [list(w) for w in word_counts]
        freqs = list(word_counts.values())
        pair_counts: dict[tuple[str, str], int] = defaultdict(int)
        pair_words: dict[tuple[str, str], set[int]] = defaultdict(set)
        for index, symbols in enumerate(words):
            for pair in zip(symbols, symbols[1:]):
                if pair[0] in known and pair[1] in known:
                    pair_counts[pair] += freqs[index]
                    pair_words[pair].add(index)
        heap = [(-count, pair) for pair, count in pair_counts.items()]
        heapq.heapify(heap)
        merges: list[tuple[str, str]] = []
        while len(vocab) < vocab_size and heap:
            negative_count, pair = heapq.heappop(heap)
            if pair_counts.get(pair, 0) != -negative_count:
                continue  # Stale entry: the count changed after it was pushed.
            if -negative_count < min_pair_count:
                break
            merged = pair[0] + pair[1]
            merges.append(pair)
            vocab.append(merged)
            known.add(merged)
            changed = set()
            for index in list(pair_words[pair]):
                symbols, freq = words[index], freqs[index]
                for old in zip(symbols, symbols[1:]):
                    if old in pair_counts:
                        pair_counts[old] -= freq
                        changed.add(old)
                new_symbols = _apply_merge(symbols, pair, merged)
                words[index] = new_symbols
                for new in zip(new_symbols, new_symbols[1:]):
                    if new[0] in known and new[1] in known:
                        pair_counts[new] += freq
                        pair_words[new].add(index)
                        changed.add(new)
            for key in changed:
                count = pair_counts[key]
                if count > 0:
                    heapq.heappush(heap, (-count, key))
                else:
                    pair_counts.pop(key, None)
                    pair_words.pop(key, None)
        return cls(vocab, merges, lowercase)

    def _encode_piece(self, piece: str) -> list[int]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        symbols = list(piece)
        while len(symbols) > 1:
            ranked = [(self.merge_rank.get(pair, len(self.merge_rank)), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
            rank, _ = min(ranked)
            if rank == len(self.merge_rank):
                break
            symbols = _apply_merge(symbols, self.merges[rank], "".join(self.merges[rank]))
        ids = [self.token_to_id.get(s, UNK) for s in symbols]
        if len(self._cache) < 200_000:
            self._cache[piece] = ids
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Token strings for `text` (unknown characters appear as `<unk>`)."""
        return [self.vocab[i] for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        """Token ids without `<s>`/`</s>`; empty text gives an empty list."""
        ids: list[int] = []
        for piece in pretokenize(normalize(text, self.lowercase)):
            ids.extend(self._encode_piece(piece))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text for `ids`, stopping at `</s>`; `<pad>`, `<s>` and `<unk>` are dropped."""
        pieces = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i < len(SPECIAL_TOKENS) or i >= len(self.vocab):
                continue
            pieces.append(self.vocab[i])
        return " ".join("".join(pieces).replace(WORD_START, " ").split())

    def unknown_characters(self, text: str) -> list[str]:
        """Characters of (normalised) `text` that the tokenizer maps to `<unk>`."""
        return sorted({ch for ch in normalize(text, self.lowercase) if not ch.isspace() and ch not in self.alphabet})

    def to_dict(self) -> dict:
        return {"type": "bpe", "version": _FORMAT_VERSION, "lowercase": self.lowercase,
                "vocab": self.vocab, "merges": [list(m) for m in self.merges]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        path = Path(path)
        if not path.is_file():
            raise RunDirError(f"tokenizer file {path} not found: is this a translation run dir?")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunDirError(f"{path} is not valid JSON ({err}); the run dir is damaged: retrain") from None
        if not isinstance(data, dict) or data.get("type") != "bpe" or data.get("version") != _FORMAT_VERSION:
            raise RunDirError(f"{path} is not a version-{_FORMAT_VERSION} BPE tokenizer file")
        return cls(data["vocab"], [tuple(m) for m in data["merges"]], data["lowercase"])


def _apply_merge(symbols: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out
