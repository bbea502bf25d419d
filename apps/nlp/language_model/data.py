"""Corpora for the language model: WikiText-2, any UTF-8 text file, or a generated corpus.

Word level, as the benchmark scores it: each line is split on spaces and ends with `<eos>`,
blank lines included for WikiText-2 (Merity et al.'s data loader: 2,088,628 / 217,646 / 245,569
train/valid/test tokens); other sources skip blank lines. The vocabulary comes from
the training stream only; WikiText-2 already maps rare words to `<unk>`, and any word never
seen in training becomes `<unk>` at evaluation. Ids are sorted by training frequency (id 0 is
the most frequent word), which is what the adaptive softmax's clusters need.

`text:PATH`: the file's non-empty lines, in order; the last 10% of lines are the test split, the
10% before them validation (a time-ordered split: no line is scored that training saw).
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import numpy as np

from apps.nlp.language_model.config import DataConfig
from common.errors import ConfigError, DataError

EOS, UNK = "<eos>", "<unk>"
WIKITEXT2_URL = "https://wikitext.smerity.com/wikitext-2-v1.zip"
WIKITEXT2_SHARED = "nlp/wikitext-2.tar.xz"


@dataclasses.dataclass
class Corpus:
    vocabulary: list[str]  # id -> word, most frequent first
    train: np.ndarray  # int32 token ids
    validation: np.ndarray
    test: np.ndarray
    description: str

    @property
    def word_to_id(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.vocabulary)}

    def summary(self) -> dict:
        unk = self.word_to_id.get(UNK)
        out = {"source": self.description, "vocabulary": len(self.vocabulary),
               **{f"{name}_tokens": int(len(getattr(self, name))) for name in ("train", "validation", "test")}}
        if unk is not None:
            out.update({f"{name}_unk_fraction": float(np.mean(getattr(self, name) == unk))
                        for name in ("validation", "test")})
        return out


def tokenize_lines(lines, lowercase: bool = False, empty_lines: bool = False) -> list[str]:
    """Words of the lines, each line closed by `<eos>`; empty lines are skipped unless `empty_lines`
    (WikiText-2 as the benchmark counts it: every line, blank ones too, ends in one `<eos>`)."""
    words: list[str] = []
    for line in lines:
        parts = (line.lower() if lowercase else line).split()
        if parts or empty_lines:
            words.extend(parts)
            words.append(EOS)
    return words


def build_vocabulary(words: list[str], max_size: int = 0, min_count: int = 1) -> list[str]:
    """Most frequent first (ties by first appearance, so it is deterministic); `<unk>` and `<eos>` always in."""
    counts = collections.Counter(words)
    first = {}
    for i, w in enumerate(words):
        first.setdefault(w, i)
    kept = [w for w in counts if counts[w] >= min_count and w not in (EOS, UNK)]
    kept.sort(key=lambda w: (-counts[w], first[w]))
    if max_size:
        if max_size < 3:
            raise ConfigError(f"data.max_vocab_size={max_size} leaves no room for words beside {EOS} and {UNK}")
        kept = kept[: max_size - 2]
    kept += [EOS, UNK]
    kept.sort(key=lambda w: (-counts.get(w, 0), first.get(w, len(words))))
    return kept


def encode(words: list[str], word_to_id: dict[str, int]) -> np.ndarray:
    unk = word_to_id[UNK]
    return np.fromiter((word_to_id.get(w, unk) for w in words), dtype=np.int32, count=len(words))


def _wikitext2_files() -> dict[str, Path]:
    """The extracted WikiText-2 split files (train/validation/test): from the shared data folder, else downloaded once into the cache."""
    from common.data import cache_dir, extract_archive, shared_data_dir

    root = shared_data_dir()
    if root is not None and (root / WIKITEXT2_SHARED).is_file():
        folder = extract_archive(root / WIKITEXT2_SHARED)
    else:
        import keras

        try:
            path = keras.utils.get_file("wikitext-2-v1.zip", WIKITEXT2_URL, cache_dir=str(cache_dir()),
                                        cache_subdir="downloads")
        except Exception as err:  # no network: urllib/HTTP errors of many kinds
            raise DataError(f"WikiText-2 not found: neither {WIKITEXT2_SHARED} in the shared data folder "
                            f"(../shared/data or $LSTM_SUITE_DATA) nor a download from {WIKITEXT2_URL} worked "
                            f"({type(err).__name__}); put the file in one of those places, or use "
                            f"--set data.source=text:PATH") from None
        folder = extract_archive(path)
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        for names in (("train.txt", "valid.txt", "test.txt"),
                      ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")):
            if all((candidate / n).is_file() for n in names):
                return dict(zip(("train", "validation", "test"), (candidate / n for n in names)))
    raise DataError(f"{folder} holds no train/valid/test text of WikiText-2; the archive is not the expected one")


def synthetic_lines(num_tokens: int, seed: int = 0) -> list[str]:
    """A generated corpus with learnable structure: sentences from a small grammar with agreement,
    so a recurrent model beats a unigram model by a wide margin, and a bigram one too (the verb
    agrees with a subject several words back)."""
    rng = np.random.default_rng(seed)
    subjects = {"sg": ["the cat", "the dog", "a bird", "the teacher", "my friend", "the old man"],
                "pl": ["the cats", "the dogs", "some birds", "the teachers", "my friends", "the old men"]}
    verbs = {"sg": ["sees", "likes", "follows", "finds", "watches"], "pl": ["see", "like", "follow", "find", "watch"]}
    objects = ["the ball", "a red box", "the small house", "an apple", "the river", "the green tree"]
    adverbs = ["today", "again", "at night", "every morning", "in the park"]
    lines, count = [], 0
    while count < num_tokens:
        number = "sg" if rng.random() < 0.5 else "pl"
        subject = subjects[number][rng.integers(len(subjects[number]))]
        # The clause hides the subject's number from an n-gram model: only memory gets the verb right.
        middle = ["", " that we know", " near the old house", " from the village"][rng.integers(4)]
        words = f"{subject}{middle} {verbs[number][rng.integers(5)]} {objects[rng.integers(len(objects))]}"
        if rng.random() < 0.5:
            words += " " + adverbs[rng.integers(len(adverbs))]
        words += " ."
        lines.append(words)
        count += len(words.split()) + 1
    return lines


def load_corpus(cfg: DataConfig, seed: int = 0) -> Corpus:
    from common.textio import read_text_lines

    source = cfg.source
    lowercase = cfg.lowercase
    if source == "wikitext2":
        files = _wikitext2_files()
        split_lines = {name: read_text_lines(path) for name, path in files.items()}
        description = f"WikiText-2 ({files['train'].parent})"
        lowercase = False
    elif source == "synthetic":
        lines = synthetic_lines(int(cfg.synthetic_tokens * 1.2), seed=seed)
        n = len(lines)
        split_lines = {"train": lines[: int(n * 0.834)], "validation": lines[int(n * 0.834): int(n * 0.917)],
                       "test": lines[int(n * 0.917):]}
        description = f"generated grammar corpus (seed {seed})"
    elif source.startswith("text:"):
        path = source[len("text:"):]
        if not path:
            raise ConfigError("data.source=text:PATH needs a file path, e.g. --set data.source=text:books.txt")
        lines = [line for line in read_text_lines(path, "data.source") if line.strip()]
        if len(lines) < 10:
            raise DataError(f"{path} has {len(lines)} non-empty lines; the split (last 10% test, 10% before it "
                            f"validation) needs at least 10")
        n = len(lines)
        split_lines = {"train": lines[: n - 2 * (n // 10)], "validation": lines[n - 2 * (n // 10): n - n // 10],
                       "test": lines[n - n // 10:]}
        description = f"{path} ({n} lines: first {len(split_lines['train'])} train, then 10% validation, 10% test)"
    else:
        raise ConfigError(f"unknown data.source {source!r}; use wikitext2, synthetic or text:PATH")
    words = {name: tokenize_lines(lines, lowercase, empty_lines=source == "wikitext2")
             for name, lines in split_lines.items()}
    if not words["train"]:
        raise DataError(f"{description}: the training split holds no words")
    vocabulary = build_vocabulary(words["train"], cfg.max_vocab_size, 1 if source == "wikitext2" else cfg.min_count)
    index = {w: i for i, w in enumerate(vocabulary)}
    ids = {name: encode(w, index) for name, w in words.items()}
    if cfg.max_train_tokens:
        ids["train"] = ids["train"][: cfg.max_train_tokens]
    return Corpus(vocabulary, ids["train"], ids["validation"], ids["test"], description)


def batchify(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """`[batch_size, n]`: the stream cut into `batch_size` contiguous streams (the tail that does not
    divide is dropped, as in the benchmark's loader)."""
    n = len(ids) // batch_size
    if n < 2:
        raise DataError(f"{len(ids)} tokens cannot fill {batch_size} streams of 2+ tokens; use a smaller batch size")
    return ids[: n * batch_size].reshape(batch_size, n)


def bptt_windows(streams: np.ndarray, bptt: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-word targets `[steps * batch, bptt]`, ordered so that consecutive batches of
    `batch` rows continue each stream (row r of batch k+1 follows row r of batch k): the carried
    state is the state of that row's stream."""
    batch, n = streams.shape
    steps = (n - 1) // bptt
    if steps < 1:
        raise DataError(f"streams of {n} tokens are shorter than one bptt window of {bptt}; lower sequence.bptt")
    x = streams[:, : steps * bptt].reshape(batch, steps, bptt).transpose(1, 0, 2).reshape(steps * batch, bptt)
    y = streams[:, 1: steps * bptt + 1].reshape(batch, steps, bptt).transpose(1, 0, 2).reshape(steps * batch, bptt)
    return x.astype(np.int32), y.astype(np.int32)


def save_vocabulary(vocabulary: list[str], path: Path) -> None:
    Path(path).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")


def load_vocabulary(path: Path) -> list[str]:
    from common.errors import RunDirError

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found: the run dir has no vocabulary (written by apps.nlp.language_model.train)")
    words = path.read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    if UNK not in words or EOS not in words or len(set(words)) != len(words):
        raise RunDirError(f"{path} is damaged (no {UNK}/{EOS}, or repeated words); retrain")
    return words
