"""Word vectors learnt here, on unlabelled text, to initialise the classifier's embedding.

Nothing pretrained is downloaded. With `--set model.embedding_init=word2vec` the train script
learns skip-gram vectors (gensim's Word2Vec) on the corpus `data.pretrain_corpus` names, copies
the vector of every vocabulary word into the embedding matrix (words the corpus lacks keep a
random row) and then fine-tunes it with the rest of the model, or keeps it fixed
(`model.freeze_embedding`). `data.corpus_vocab_size=N` also gives ids to the N most frequent corpus
words that training lacks (`extend_vocabulary`); kept frozen, their vectors let the classifier read
words it has no labelled example of (the SST-2 preset). The corpus:

- `train`: the training split's texts only, so the run still uses nothing but its own training
  data (IMDB's "from scratch" condition holds);
- `imdb`: every review text of the IMDB archive (train and test, labels unused) plus the training
  texts: 12 M tokens of in-domain movie-review text for the short-sentence sets (SST-2,
  rt-polarity). Refused when the task itself is IMDB, whose test reviews it would contain;
- a path: a text file (`.gz`/`.xz` too) with one unlabelled document per line.

Tokens come from `features.tokenize`, the classifier's own tokenizer, so every vocabulary entry
can find its vector. Training the vectors costs minutes on a CPU (IMDB corpus: ~3 minutes on 2
cores), so they are cached under `~/.cache/lstm-suite/word2vec/`, keyed by the corpus text and
the settings; `LSTM_SUITE_CACHE` moves the cache. With more than one worker thread gensim is not
bit-reproducible; the cache makes reruns on one machine reuse the same vectors.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import lzma
import os
import time
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.sentiment import features
from common.data import cache_dir
from common.errors import ConfigError

WINDOW = 5  # context words either side
NEGATIVE = 5  # negative samples per positive pair
MIN_COUNT = 3  # rarer corpus words get no vector (their embedding rows stay random)
EPOCHS = 5  # passes over the corpus


def read_corpus_file(path: str | Path) -> list[str]:
    """One document per line from a text file (`.gz`, `.xz` read directly); empty lines skipped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"data.pretrain_corpus={str(path)!r} is not a file; give train, imdb or a "
                                f"text file with one unlabelled document per line")
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return [line.strip() for line in handle if line.strip()]


def _stable_hash(token: str) -> int:
    # gensim seeds each word's initial vector from hash(word); Python's str hash changes per process.
    return zlib.crc32(token.encode("utf-8"))


def train_word_vectors(texts: Sequence[str], dim: int, seed: int = 0, workers: int | None = None,
                       use_cache: bool = True) -> dict[str, np.ndarray]:
    """Skip-gram vectors `{word: float32 [dim]}` for every corpus word seen `MIN_COUNT`+ times."""
    try:
        from gensim.models import Word2Vec
    except ImportError as err:  # the GPU machine's wheel set lacks it unless prepared with --word2vec
        raise ConfigError("model.embedding_init=word2vec needs gensim: `make setup` installs it here; on the GPU "
                         "machine prepare the wheels with tools/gpu/prepare.sh --word2vec") from err
    import gensim

    texts = features.clean_texts(texts)
    digest = hashlib.sha1()
    for text in texts:
        digest.update(text.encode("utf-8", errors="replace") + b"\n")
    digest.update(f"{dim}|{seed}|{WINDOW}|{NEGATIVE}|{MIN_COUNT}|{EPOCHS}|sg|{gensim.__version__}".encode())
    path = cache_dir() / "word2vec" / f"{digest.hexdigest()[:20]}.npz"
    if use_cache and path.is_file():
        stored = np.load(path)
        print(f"word2vec: {len(stored['words']):,} cached vectors from {path}")
        return dict(zip(stored["words"].tolist(), stored["vectors"]))
    started = time.perf_counter()
    sentences = [features.tokenize(text) for text in texts]
    tokens = sum(map(len, sentences))
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    print(f"word2vec: skip-gram {dim}-d on {len(sentences):,} texts ({tokens:,} tokens), {EPOCHS} epochs, "
          f"{workers} threads ...", flush=True)
    model = Word2Vec(sentences, vector_size=dim, window=WINDOW, min_count=MIN_COUNT, sg=1, negative=NEGATIVE,
                     epochs=EPOCHS, workers=workers, seed=seed, hashfxn=_stable_hash)
    words = list(model.wv.index_to_key)
    vectors = model.wv.vectors.astype(np.float32)
    print(f"word2vec: {len(words):,} vectors in {time.perf_counter() - started:.0f} s")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(partial, words=np.array(words), vectors=vectors)
        partial.replace(path)
    return dict(zip(words, vectors))


def embedding_matrix(vocabulary: Sequence[str], vectors: dict[str, np.ndarray], dim: int,
                     seed: int = 0) -> tuple[np.ndarray, float]:
    """`[len(vocabulary), dim]` initial embedding and the share of words (past padding/OOV) covered.

    Covered words take their vector; the rest (and "[UNK]") draw from a normal with the vectors'
    own per-dimension spread, so they start on the same scale. Row 0 (padding) is zeros.
    """
    rng = np.random.default_rng(seed)
    stacked = np.stack(list(vectors.values())) if vectors else np.zeros((1, dim), np.float32)
    if stacked.shape[1] != dim:
        raise ConfigError(f"word vectors are {stacked.shape[1]}-d but model.embedding_dim is {dim}")
    spread = stacked.std(axis=0) if len(stacked) > 1 else np.full(dim, 0.05, np.float32)
    matrix = rng.normal(0.0, 1.0, (len(vocabulary), dim)).astype(np.float32) * spread
    matrix[features.PAD_ID] = 0.0
    covered = 0
    for row, word in enumerate(vocabulary):
        if row >= 2 and word in vectors:
            matrix[row] = vectors[word]
            covered += 1
    return matrix, covered / max(1, len(vocabulary) - 2)


def extend_vocabulary(vocabulary: Sequence[str], corpus: Sequence[str], extra: int) -> list[str]:
    """`vocabulary` plus up to `extra` of the corpus' most frequent words it lacks (seen `MIN_COUNT`+ times).

    Those words get learnt vectors but no labelled example, so the classifier can read a word that
    only the unlabelled text taught it (SST-2 dev: 7 % of its tokens are absent from train).
    """
    counts: collections.Counter = collections.Counter()
    for text in features.clean_texts(corpus):
        counts.update(features.tokenize(text))
    known = set(vocabulary)
    ranked = sorted(((w, c) for w, c in counts.items() if c >= MIN_COUNT and w not in known),
                    key=lambda item: (-item[1], item[0]))
    return [*vocabulary, *(word for word, _ in ranked[:extra])]


def check_settings(source: str, corpus: str, init: str, corpus_vocab_size: int = 0) -> None:
    """Refuse settings that would be ignored or leak, before any data is read."""
    if init == "random" and corpus_vocab_size > 0:
        raise ConfigError(f"data.corpus_vocab_size={corpus_vocab_size} adds words that only have learnt vectors; it needs "
                         f"--set model.embedding_init=word2vec (or drop it)")
    if init == "random" and corpus != "train":
        raise ConfigError(f"data.pretrain_corpus={corpus!r} is used only with model.embedding_init=word2vec; "
                         f"add --set model.embedding_init=word2vec or drop it")
    if init == "word2vec" and corpus == "imdb" and source in ("imdb", "tfds:imdb_reviews"):
        raise ConfigError("data.pretrain_corpus=imdb would learn word vectors from IMDB's test reviews while "
                         "the task is IMDB; use --set data.pretrain_corpus=train")
    if init == "word2vec" and corpus not in ("train", "imdb") and not Path(corpus).expanduser().is_file():
        raise ConfigError(f"data.pretrain_corpus={corpus!r} is not a file; give train, imdb or a text "
                                f"file with one unlabelled document per line")


def corpus_texts(corpus: str, source: str, train_texts: Sequence[str]) -> tuple[list[str], str]:
    """The unlabelled texts `data.pretrain_corpus` names, and a description for the log."""
    if corpus == "train":
        return list(train_texts), f"the {len(train_texts):,} training texts"
    check_settings(source, corpus, "word2vec")
    if corpus == "imdb":
        from apps.nlp.sentiment.config import DataConfig
        from apps.nlp.sentiment.data import load_dataset

        imdb = load_dataset(DataConfig(source="imdb"), seed=0)
        reviews = [*imdb.train.texts, *imdb.validation.texts, *(t for s in imdb.evaluation.values() for t in s.texts)]
        return [*reviews, *train_texts], f"{len(reviews):,} IMDB reviews + the {len(train_texts):,} training texts"
    lines = read_corpus_file(corpus)
    return [*lines, *train_texts], f"{len(lines):,} lines of {corpus} + the {len(train_texts):,} training texts"
