"""Sentence pairs from a source, a deterministic train/valid/test split, and padded batches.

Sources (`DataConfig.source`):
- `synthetic`: the rule-based English → es/fr/de demo generator (offline, the default).
- `anki` or a path to an Anki/Tatoeba file (`.txt`, `.tsv` or a `.zip` holding one):
  `english<TAB>other[<TAB>attribution]` per line; `source_lang`/`target_lang` pick the direction.
- `multi30k` or `parallel:DIR`: line-aligned files `<split>.<lang>[.gz]` with official
  `train`, `val`/`valid`/`dev` and `test*` splits (Multi30k: `test_2016_flickr`).
- `tfds:NAME`: a TensorFlow Datasets translation set (downloads; for users with internet).

Sources without official splits are split by a hash of the normalised source sentence, so
every pair with the same source lands in the same split and the split does not depend on
file order. Official splits are kept; training pairs whose source also occurs in valid or
test are dropped, so no source sentence is shared across splits either way.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import random
import unicodedata
from pathlib import Path
from typing import Iterator, Sequence

import keras
import numpy as np

from apps.nlp.translation.config import DataConfig
from apps.nlp.translation.tokenizer import BOS, EOS, PAD
from common.data import extract_archive, require_shared_data
from common.errors import DataError


@dataclasses.dataclass(frozen=True)
class Splits:
    train: list[tuple[str, str]]
    valid: list[tuple[str, str]]
    test: list[tuple[str, str]]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def source_key(text: str) -> str:
    """What counts as "the same source sentence": NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _bucket(text: str, seed: int) -> float:
    digest = hashlib.md5(f"{seed}\x00{source_key(text)}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pairs(pairs: Sequence[tuple[str, str]], valid_fraction: float, test_fraction: float, seed: int = 0) -> Splits:
    """Deterministic split keyed on the source sentence (no source in two splits)."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"valid_fraction + test_fraction must be in [0, 1), got {valid_fraction} + {test_fraction}")
    train, valid, test = [], [], []
    for pair in pairs:
        u = _bucket(pair[0], seed)
        (test if u < test_fraction else valid if u < test_fraction + valid_fraction else train).append(pair)
    return Splits(train, valid, test)


def remove_overlap(splits: Splits) -> Splits:
    """Drops training pairs whose source appears in valid/test, and valid pairs whose source is in test."""
    test_keys = {source_key(s) for s, _ in splits.test}
    valid = [p for p in splits.valid if source_key(p[0]) not in test_keys]
    held_out = test_keys | {source_key(s) for s, _ in valid}
    train = [p for p in splits.train if source_key(p[0]) not in held_out]
    return Splits(train, valid, splits.test)


def _clean(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(s.strip(), t.strip()) for s, t in pairs if s.strip() and t.strip()]


def read_tab_pairs(path: Path, source_lang: str, target_lang: str) -> list[tuple[str, str]]:
    """Anki/Tatoeba `english<TAB>other[<TAB>attribution]`; a `.zip` is extracted to the cache first."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"pair file {path} not found; pass an Anki .txt/.zip or --set data.source=synthetic")
    if path.suffix == ".zip":
        folder = extract_archive(path)
        candidates = sorted(p for p in folder.rglob("*.txt") if not p.name.startswith(("_", ".")) and "about" not in p.name.lower())
        if not candidates:
            raise DataError(f"{path} holds no .txt file of sentence pairs")
        path = candidates[0]
    if "en" not in (source_lang, target_lang):
        raise DataError(f"Anki files pair English with one other language; got {source_lang}->{target_lang}")
    pairs = _tab_pairs(path, "english<TAB>translation")
    return _clean(pairs if source_lang == "en" else [(other, english) for english, other in pairs])


def _tab_pairs(path: Path, expected: str) -> list[tuple[str, str]]:
    """The first two tab-separated columns of each non-blank line (more columns are ignored)."""
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            columns = line.rstrip("\n").split("\t")
            if len(columns) < 2:
                if line.strip():
                    raise DataError(f"{path}:{line_number}: expected {expected}, got {line[:60]!r}")
                continue
            pairs.append((columns[0], columns[1]))
    return pairs


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def _find_split_file(folder: Path, names: Sequence[str], lang: str) -> Path | None:
    for name in names:
        for candidate in (folder / f"{name}.{lang}", folder / f"{name}.{lang}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_parallel(folder: Path, source_lang: str, target_lang: str) -> dict[str, list[tuple[str, str]]]:
    """Line-aligned `<split>.<lang>[.gz]` files → {"train": pairs, "valid": ..., "test": ...} (present splits only)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"parallel data folder {folder} not found")
    names = {"train": ["train"], "valid": ["val", "valid", "dev"], "test": ["test", "test_2016_flickr", "test2016"]}
    found = {}
    for split, candidates in names.items():
        src = _find_split_file(folder, candidates, source_lang)
        tgt = _find_split_file(folder, candidates, target_lang)
        if src is None or tgt is None:
            continue
        sources, targets = _read_lines(src), _read_lines(tgt)
        if len(sources) != len(targets):
            raise DataError(f"{src} has {len(sources)} lines but {tgt} has {len(targets)}: files are not line-aligned")
        found[split] = _clean(list(zip(sources, targets)))
    if "train" not in found:
        raise DataError(f"no train.{source_lang}[.gz] and train.{target_lang}[.gz] in {folder}")
    return found


def read_eval_pairs(path: Path, source_lang: str, target_lang: str) -> list[tuple[str, str]]:
    """The pairs `evaluate --data PATH` scores: line-aligned `NAME.<source>[.gz]` + `NAME.<target>[.gz]` given as
    the prefix `DIR/NAME` or as a folder holding one such pair (e.g. Multi30k's test_2017_flickr), or a
    `source<TAB>target` file (the run's source language first)."""
    try:
        return _read_eval_pairs(Path(path), source_lang, target_lang)
    except UnicodeDecodeError as err:
        raise DataError(f"--data {path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None


def _read_eval_pairs(path: Path, source_lang: str, target_lang: str) -> list[tuple[str, str]]:
    if path.is_dir():
        names = sorted({f.name.removesuffix(".gz").removesuffix(f".{source_lang}") for f in path.iterdir()
                        if f.name.removesuffix(".gz").endswith(f".{source_lang}")})
        names = [n for n in names if _find_split_file(path, [n], target_lang) is not None]
        if len(names) != 1:
            raise DataError(f"{path}: {'no' if not names else len(names)} line-aligned NAME.{source_lang} + "
                            f"NAME.{target_lang} pair(s){' (' + ', '.join(names) + ')' if names else ''}; "
                            f"pass one as --data {path}/NAME")
        path = path / names[0]
    src = _find_split_file(path.parent, [path.name], source_lang)
    tgt = _find_split_file(path.parent, [path.name], target_lang)
    if src is not None and tgt is not None:
        sources, targets = _read_lines(src), _read_lines(tgt)
        if len(sources) != len(targets):
            raise DataError(f"{src} has {len(sources)} lines but {tgt} has {len(targets)}: files are not line-aligned")
        pairs = _clean(list(zip(sources, targets)))
    elif path.is_file():
        pairs = _clean(_tab_pairs(path, f"{source_lang}<TAB>{target_lang}"))
    else:
        raise DataError(f"--data {path}: neither a {source_lang}<TAB>{target_lang} file nor line-aligned "
                        f"{path.name}.{source_lang}[.gz] + {path.name}.{target_lang}[.gz] files (nor a folder of them)")
    if not pairs:
        raise DataError(f"--data {path}: no sentence pairs")
    return pairs


def read_tfds(name: str, source_lang: str, target_lang: str) -> dict[str, list[tuple[str, str]]]:
    """A TFDS translation dataset (e.g. `ted_hrlr_translate/pt_to_en`); downloads on first use."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name)
    builder.download_and_prepare()
    found = {}
    for split, candidates in {"train": ["train"], "valid": ["validation", "dev"], "test": ["test"]}.items():
        for candidate in candidates:
            if candidate in builder.info.splits:
                ds = tfds.as_numpy(builder.as_dataset(split=candidate))
                found[split] = _clean([(ex[source_lang].decode("utf-8"), ex[target_lang].decode("utf-8")) for ex in ds])
                break
    return found


def load_splits(cfg: DataConfig) -> Splits:
    """The train/valid/test pairs of `cfg.source`, with no source sentence in two splits."""
    source = cfg.source
    official: dict[str, list[tuple[str, str]]] | None = None
    if source == "synthetic":
        from apps.nlp.translation.synthetic import generate_pairs

        if cfg.source_lang != "en":
            raise DataError(f"the synthetic source translates from English: set data.source_lang=en (got {cfg.source_lang!r})")
        pairs = generate_pairs(cfg.num_examples, cfg.target_lang, cfg.split_seed)
    elif source == "anki":
        pairs = read_tab_pairs(require_shared_data("nlp/spa-eng.zip"), cfg.source_lang, cfg.target_lang)
    elif source == "multi30k":
        official = read_parallel(require_shared_data("nlp/multi30k"), cfg.source_lang, cfg.target_lang)
    elif source.startswith("parallel:"):
        official = read_parallel(Path(source.split(":", 1)[1]), cfg.source_lang, cfg.target_lang)
    elif source.startswith("tfds:"):
        official = read_tfds(source.split(":", 1)[1], cfg.source_lang, cfg.target_lang)
    elif Path(source).suffix in (".txt", ".tsv", ".zip"):
        pairs = read_tab_pairs(Path(source), cfg.source_lang, cfg.target_lang)
    else:
        raise DataError(
            f"unknown data.source {source!r}: use synthetic, anki, multi30k, a path to an Anki .txt/.tsv/.zip, parallel:DIR or tfds:NAME"
        )
    if official is None:
        splits = split_pairs(pairs, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
    else:
        train = official["train"]
        if "test" in official and "valid" in official:
            splits = Splits(train, official["valid"], official["test"])
        else:
            # Missing official held-out sets are carved out of train by the same hash rule.
            carved = split_pairs(train, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
            splits = Splits(carved.train, official.get("valid", carved.valid), official.get("test", carved.test))
        splits = remove_overlap(splits)
    if cfg.num_examples > 0 and source != "synthetic" and len(splits.train) > cfg.num_examples:
        train = list(splits.train)
        random.Random(cfg.split_seed).shuffle(train)
        splits = Splits(train[: cfg.num_examples], splits.valid, splits.test)
    if not splits.train or not splits.valid or not splits.test:
        raise DataError(f"data source {source!r} gave an empty split {splits.sizes()}; use more examples or other fractions")
    return splits


def encode_pairs(pairs, source_tokenizer, target_tokenizer, max_source_tokens: int, max_target_tokens: int,
                 drop_long: bool = True) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids per pair; over-long pairs are dropped (`drop_long`) or truncated."""
    sources, targets = [], []
    for source, target in pairs:
        src, tgt = source_tokenizer.encode(source), target_tokenizer.encode(target)
        if not src or not tgt:
            continue
        if len(src) > max_source_tokens or len(tgt) + 1 > max_target_tokens:
            if drop_long:
                continue
            src, tgt = src[:max_source_tokens], tgt[: max_target_tokens - 1]
        sources.append(src)
        targets.append(tgt)
    return sources, targets


def _round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def pad_batch(sequences: Sequence[Sequence[int]], multiple: int = 8, length: int | None = None) -> np.ndarray:
    """Right-padded int32 [batch, length]; length rounds up to `multiple` to limit distinct shapes."""
    length = length or _round_up(max(len(s) for s in sequences), multiple)
    out = np.full((len(sequences), length), PAD, dtype="int32")
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq[:length]
    return out


def teacher_forcing_batch(sources, targets, multiple: int = 8) -> tuple[dict, np.ndarray]:
    """({"source_ids", "target_in"}, target_out) with target_in = <s> y and target_out = y </s>."""
    source_ids = pad_batch(sources, multiple)
    target_in = pad_batch([[BOS] + list(t) for t in targets], multiple)
    target_out = pad_batch([list(t) + [EOS] for t in targets], multiple, length=target_in.shape[1])
    return {"source_ids": source_ids, "target_in": target_in}, target_out


class PairBatches(keras.utils.PyDataset):
    """Length-bucketed teacher-forcing batches; reshuffled every epoch.

    Sentences of similar length share a batch, which cuts padding (and CPU time)
    several-fold compared with padding everything to the longest sentence.

    Args:
        sources, targets: token ids per pair.
        batch_size: examples per batch (the global batch when training on several devices).
        shuffle: reshuffle the buckets and the batch order every epoch.
        seed: seed of that shuffle.
        multiple_of: every batch's size is made a multiple of this (the replica count), so
            each replica gets an equal slice. The one short batch is topped up with filler
            rows that copy real inputs but have all-padding targets, which the masked loss
            and accuracy ignore, so each pair is still seen exactly once per epoch.
        pad_multiple: sequence lengths are padded up to a multiple of this, bounding the
            number of distinct batch shapes (each one is a JAX/XLA compilation).
    """

    def __init__(self, sources, targets, batch_size: int, shuffle: bool = True, seed: int = 0, multiple_of: int = 1,
                 pad_multiple: int = 8, **kwargs):
        super().__init__(**kwargs)
        if not sources:
            raise DataError("no sentence pairs to batch (all empty or longer than the token limits?)")
        if multiple_of < 1:
            raise ValueError(f"multiple_of must be a positive device count, got {multiple_of}")
        self.sources, self.targets = list(sources), list(targets)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.multiple_of = int(multiple_of)
        self.pad_multiple = int(pad_multiple)
        self.rng = np.random.default_rng(seed)
        self.batches = self._make_batches()

    def _make_batches(self) -> list[np.ndarray]:
        lengths = np.array([len(s) + len(t) for s, t in zip(self.sources, self.targets)], dtype="float64")
        if self.shuffle:
            lengths = lengths + self.rng.uniform(0, 2, size=len(lengths))  # breaks ties differently each epoch
        order = np.argsort(lengths, kind="stable")
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            self.rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        rows = list(self.batches[index])
        filler = -len(rows) % self.multiple_of
        rows += [rows[k % len(rows)] for k in range(filler)]
        inputs, target_out = teacher_forcing_batch([self.sources[i] for i in rows], [self.targets[i] for i in rows],
                                                   self.pad_multiple)
        if filler:
            target_out[len(rows) - filler:] = PAD  # no target tokens: zero weight in the loss and the accuracy
        return inputs, target_out

    def on_epoch_end(self):
        if self.shuffle:
            self.batches = self._make_batches()

    def iterate(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]


def as_backend_dataset(batches: PairBatches):
    """What `model.fit` gets: a tf.data pipeline with variable lengths on TensorFlow, else the PyDataset.

    Keras infers a PyDataset's signature from its first batches, which can freeze the
    sequence lengths; declaring them `None` here lets every length bucket through.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    spec = tf.TensorSpec((None, None), tf.int32)

    def generate():
        yield from batches.iterate()
        batches.on_epoch_end()

    dataset = tf.data.Dataset.from_generator(generate, output_signature=({"source_ids": spec, "target_in": spec}, spec))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
