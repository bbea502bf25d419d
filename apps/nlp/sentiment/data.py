"""Labelled text from every supported source, as plain Python lists.

Sources (`data.source`):
- `synthetic`: the offline scope task of `synthetic.py` (the `make train-sentiment` default).
- `imdb` / `folder`: the Maas et al. layout `train/<label>/*.txt`, `test/<label>/*.txt`
  (a folder or a `.tar.xz`/`.tar.gz`/`.zip` archive, extracted once into the user cache).
- `sst2`: GLUE SST-2 `label<TAB>sentence` files; evaluation splits `dev` (reported) and `test`.
- `table`: any TSV/CSV (also `.xz`/`.gz`) with a text and a label column (names or indices,
  detected when not given), e.g. SST-2 `label<TAB>sentence` or UCI `sentence<TAB>label`.
- `uci`: the UCI labelled sentences (amazon/imdb/yelp, `sentence<TAB>0|1`), a test share carved out.
- `rt_polarity`: Pang & Lee's `*.pos` / `*.neg` one-sentence-per-line files.
- `tfds:imdb_reviews`, `tfds:glue/sst2`: TensorFlow Datasets (downloads; needs internet).

    dataset = load_dataset(cfg.data, seed=0)
    dataset.train.texts, dataset.train.labels, dataset.evaluation["test"], dataset.label_names

Labels stay strings here; `encode_labels` maps them to class indices and rejects labels
the model was not trained on.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import lzma
import re
import sys
from pathlib import Path

import numpy as np

from apps.nlp.sentiment import synthetic
from apps.nlp.sentiment.config import DataConfig
from common.data import extract_archive, require_shared_data
from common.errors import DataError

NAMED_SOURCES = ("synthetic", "imdb", "folder", "sst2", "table", "uci", "rt_polarity")
TEXT_COLUMN_NAMES = ("sentence", "text", "content", "review", "document", "sentence1")
LABEL_COLUMN_NAMES = ("label", "labels", "sentiment", "polarity", "class", "target", "rating")
SHARED_PATHS = {
    "imdb": "nlp/aclImdb.tar.xz",
    "sst2": "nlp/sst2",
    "uci": "nlp/uci_sentiment_labelled_sentences",
    "rt_polarity": "nlp/rt_polarity",
}
# Sources whose 0/1 labels mean negative/positive get readable names (tables keep theirs).
BINARY_NAMES = {"0": "negative", "1": "positive", "neg": "negative", "pos": "positive"}
READABLE_LABEL_SOURCES = ("sst2", "uci", "rt_polarity", "imdb", "tfds:imdb_reviews", "tfds:glue/sst2")


@dataclasses.dataclass
class Split:
    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclasses.dataclass
class Dataset:
    train: Split
    validation: Split
    evaluation: dict[str, Split]  # named held-out splits; the first is the one reported
    label_names: list[str]
    description: str

    @property
    def primary_split(self) -> str:
        return next(iter(self.evaluation))


# ----------------------------------------------------------------------------- reading text


def decode_text(raw: bytes | str) -> str:
    """UTF-8 text; bytes that are not UTF-8 are decoded as Latin-1 (UCI, rt-polarity) instead of failing."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_bytes(path: Path) -> bytes:
    """File contents, transparently decompressing `.xz` and `.gz`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found; check data.path / data.test_path")
    if path.suffix == ".xz":
        return lzma.open(path).read()
    if path.suffix == ".gz":
        return gzip.open(path).read()
    return path.read_bytes()


def label_sort_key(label: str):
    """Numeric labels sort numerically ("2" < "10"), others alphabetically (neg < pos)."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def encode_labels(labels: list[str], label_names: list[str], split: str = "") -> np.ndarray:
    """Class indices for `labels`; an unseen label is a ValueError naming it and the known ones."""
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({label for label in labels if label not in index}, key=label_sort_key)
    if unknown:
        where = f" in the {split} split" if split else ""
        raise DataError(
            f"label(s) {unknown[:5]}{where} were not seen in training (known: {label_names}); "
            "map them to a training label or retrain with them"
        )
    return np.asarray([index[label] for label in labels], dtype=np.int32)


# ----------------------------------------------------------------------------- tables


def _delimiter(path: Path, text: str) -> str:
    name = path.name.lower().removesuffix(".xz").removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith(".tsv") or "\t" in text.split("\n", 1)[0]:
        return "\t"
    return ","


def _resolve_column(spec: str, header: list[str] | None, width: int, kind: str, path: Path) -> int:
    if spec.strip().lstrip("-").isdigit():
        index = int(spec)
        if not -width <= index < width:
            raise DataError(f"{path}: data.{kind}_column={spec} but rows have {width} columns")
        return index % width
    if header is None:
        raise DataError(f"{path} has no header row, so data.{kind}_column must be a 0-based index, got {spec!r}")
    lowered = [h.strip().lower() for h in header]
    if spec.lower() not in lowered:
        raise DataError(f"{path}: column {spec!r} not in header {header}; set data.{kind}_column to one of them")
    return lowered.index(spec.lower())


def read_table(path: str | Path, text_column: str = "", label_column: str = "") -> Split:
    """Text + label columns of a TSV/CSV file (header optional; columns detected when not given)."""
    path = Path(path)
    content = decode_text(read_bytes(path)).replace("\r\n", "\n")
    delimiter = _delimiter(path, content)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    csv.field_size_limit(sys.maxsize)
    rows = [row for row in csv.reader(content.split("\n"), delimiter=delimiter, quoting=quoting) if row and any(row)]
    if not rows:
        raise DataError(f"{path} holds no rows")
    first = [cell.strip().lower() for cell in rows[0]]
    has_header = any(name in first for name in TEXT_COLUMN_NAMES + LABEL_COLUMN_NAMES) or (
        not text_column.strip().isdigit() and text_column != "" and text_column.lower() in first
    )
    header = rows[0] if has_header else None
    body = rows[1:] if has_header else rows
    width = len(rows[0])
    if width < 2:
        raise DataError(f"{path}: expected a text and a label column separated by {delimiter!r}, got 1 column")
    if text_column:
        text_index = _resolve_column(text_column, header, width, "text", path)
    elif header is not None and any(name in first for name in TEXT_COLUMN_NAMES):
        text_index = next(first.index(name) for name in TEXT_COLUMN_NAMES if name in first)
    else:
        # The text column is the one with the longest cells on average.
        sample = body[:200]
        text_index = int(np.argmax([np.mean([len(r[i]) if i < len(r) else 0 for r in sample]) for i in range(width)]))
    if label_column:
        label_index = _resolve_column(label_column, header, width, "label", path)
    elif header is not None and any(name in first for name in LABEL_COLUMN_NAMES):
        label_index = next(first.index(name) for name in LABEL_COLUMN_NAMES if name in first)
    else:
        label_index = 1 if text_index == 0 else 0
    if label_index == text_index:
        raise DataError(f"{path}: text and label column are both {text_index}; set data.text_column/data.label_column")
    texts, labels = [], []
    for line_number, row in enumerate(body, start=2 if has_header else 1):
        if len(row) <= max(text_index, label_index):
            raise DataError(f"{path}:{line_number}: expected {width} columns, got {len(row)}: {row[:3]}")
        texts.append(row[text_index])
        labels.append(row[label_index].strip())
    return Split(texts, labels)


# ----------------------------------------------------------------------------- folders


def _maas_root(path: Path) -> Path:
    """The folder holding `train/` and `test/` (an archive is extracted once into the cache)."""
    if path.is_file():
        path = extract_archive(path)
    if not path.is_dir():
        raise DataError(f"{path} not found; expected a folder with train/<label>/*.txt or its archive")
    for candidate in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
        if (candidate / "train").is_dir():
            return candidate
    raise DataError(f"{path} has no train/ folder (expected the Maas layout train/pos, train/neg, test/...)")


def read_labelled_folder(split_dir: Path) -> Split:
    """`<split_dir>/<label>/*.txt`, one example per file; the `unsup` folder is skipped."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} not found (expected <label>/*.txt folders inside)")
    texts, labels = [], []
    label_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name != "unsup")
    if not label_dirs:
        raise DataError(f"{split_dir} has no label folders (expected e.g. pos/ and neg/)")
    for label_dir in label_dirs:
        for file in sorted(label_dir.glob("*.txt")):
            texts.append(decode_text(file.read_bytes()))
            labels.append(label_dir.name)
    return Split(texts, labels)


def read_polarity_files(folder: Path) -> Split:
    """rt-polarity style: files named `<anything>.<label>` holding one example per line."""
    if not folder.is_dir():
        raise DataError(f"{folder} not found (expected files like rt-polarity.pos / rt-polarity.neg)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in ("", ".md", ".txt", ".README"))
    if not files:
        raise DataError(f"{folder} has no <name>.<label> files")
    texts, labels = [], []
    for file in files:
        for line in read_bytes(file).split(b"\n"):
            line = line.strip()
            if line:
                texts.append(decode_text(line))
                labels.append(file.suffix.lstrip("."))
    return Split(texts, labels)


def read_uci_folder(folder: Path) -> Split:
    """All `*_labelled.txt` files of the UCI sentiment-labelled-sentences folder, concatenated."""
    files = sorted(folder.glob("*_labelled.txt")) if folder.is_dir() else [folder]
    if not files:
        raise DataError(f"{folder} holds no *_labelled.txt files")
    texts, labels = [], []
    for file in files:
        part = read_table(file, text_column="0", label_column="1")
        texts += part.texts
        labels += part.labels
    return Split(texts, labels)


def read_tfds(name: str) -> tuple[Split, dict[str, Split]]:
    """TensorFlow Datasets source (downloads on first use, so it needs internet)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # pragma: no cover - installed in this project
        raise DataError("the tfds: sources need tensorflow-datasets (pip install tensorflow-datasets)") from err
    text_key = {"imdb_reviews": "text", "glue/sst2": "sentence"}.get(name)
    if text_key is None:
        raise DataError(f"unsupported tfds dataset {name!r}; use tfds:imdb_reviews or tfds:glue/sst2")
    held_out = "test" if name == "imdb_reviews" else "validation"

    def load(split: str) -> Split:
        examples = tfds.as_numpy(tfds.load(name, split=split))
        texts, labels = [], []
        for example in examples:
            texts.append(decode_text(example[text_key]))
            labels.append(str(int(example["label"])))
        return Split(texts, labels)

    return load("train"), {held_out: load(held_out)}


# ----------------------------------------------------------------------------- assembling splits


def _carve(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Random (rest, held_out) partition with `fraction` of the examples held out."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"a held-out fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(split))
    count = max(1, int(round(len(split) * fraction)))
    held, rest = order[:count], order[count:]
    pick = lambda idx: Split([split.texts[i] for i in idx], [split.labels[i] for i in idx])  # noqa: E731
    return pick(rest), pick(held)


def _carve_sentences(split: Split, fraction: float, seed: int) -> tuple[Split, Split, int]:
    """(rest, held_out, dropped): hold out whole texts that share nothing with training.

    SST-2's training file lists every phrase of each sentence as its own example, so a random
    carve puts phrases of the same sentences on both sides (validation then reads 0.93 while dev
    reads 0.83 and cannot pick a checkpoint). Here validation takes random texts that no other
    text contains (whole sentences), and training drops every text inside a held-out one (its
    phrases, as whitespace-token spans), until `fraction` of the examples have left training.
    On data without nested texts this is a random carve that also drops exact duplicates.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"a held-out fraction must be in (0, 1), got {fraction}")
    norm = [" " + " ".join(text.split()) + " " for text in split.texts]
    by_text: dict[str, list[int]] = {}
    for i, text in enumerate(norm):
        by_text.setdefault(text, []).append(i)
    corpus = "\n".join(by_text)  # entries cannot match across the newline

    def contained_elsewhere(text: str) -> bool:  # occurs in the corpus other than as itself
        first = corpus.find(text)
        return corpus.find(text, first + 1) >= 0

    target = max(1, int(round(len(split) * fraction)))
    held: list[int] = []
    removed: set[int] = set()
    for i in np.random.default_rng(seed).permutation(len(split)):
        if len(removed) >= target:
            break
        if i in removed or not norm[i].strip() or contained_elsewhere(norm[i]):
            continue
        held.append(int(i))
        tokens = norm[i].split()
        for start in range(len(tokens)):
            for stop in range(start + 1, len(tokens) + 1):
                removed.update(by_text.get(" " + " ".join(tokens[start:stop]) + " ", ()))
    if not held:
        raise DataError("validation_split=sentences found no text that other texts do not contain; "
                         "use --set data.validation_split=random")
    rest = [i for i in range(len(split)) if i not in removed]
    pick = lambda idx: Split([split.texts[i] for i in idx], [split.labels[i] for i in idx])  # noqa: E731
    return pick(rest), pick(held), len(removed) - len(held)


# GLUE SST-2's dev and test sentences keep the Penn Treebank bracket escapes ("-lrb- a -rrb-") while
# its train phrases use "(" and ")"; left escaped, 86 of dev's 1,104 unknown tokens were "lrb"/"rrb".
PTB_ESCAPED_SOURCES = ("sst2", "tfds:glue/sst2")
_PTB_ESCAPES = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}
_PTB_ESCAPE = re.compile("|".join(map(re.escape, _PTB_ESCAPES)), re.IGNORECASE)


def unescape_ptb(split: Split) -> Split:
    """`split` with Penn Treebank bracket escapes (-LRB-, -RRB-, ...) turned back into brackets."""
    texts = [_PTB_ESCAPE.sub(lambda m: _PTB_ESCAPES[m.group(0).lower()], text) for text in split.texts]
    return Split(texts, split.labels)


def _shared_or_given(cfg: DataConfig) -> Path:
    if cfg.path:
        return Path(cfg.path).expanduser()
    return require_shared_data(SHARED_PATHS[cfg.source])


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"none of {list(names)} found in {folder}")


def check_source(cfg: DataConfig) -> None:
    """Settings the chosen source would ignore are errors (never train on other data than the user
    named); checked with the config, before any data is read."""
    from common.errors import ConfigError

    source = cfg.source
    known = source in NAMED_SOURCES or source in ("folder", "table") or source in ("tfds:imdb_reviews", "tfds:glue/sst2")
    if not known:
        raise ConfigError(f"unknown data.source {source!r}; choose from {', '.join(NAMED_SOURCES)}, folder, table, "
                          f"tfds:imdb_reviews or tfds:glue/sst2")
    if cfg.path and (source == "synthetic" or source.startswith("tfds:")):
        raise ConfigError(f"data.path={cfg.path!r} is ignored by data.source={source!r}; for your own file add "
                          f"--set data.source=table (TSV/CSV) or folder (train/pos, train/neg, test/...)")
    table_only = {"validation_path": cfg.validation_path, "test_path": cfg.test_path,
                  "text_column": cfg.text_column, "label_column": cfg.label_column}
    ignored = [f"data.{k}" for k, v in table_only.items() if v]
    if ignored and source != "table":
        raise ConfigError(f"{', '.join(ignored)} apply only to data.source=table, not {source!r}; "
                          f"add --set data.source=table or drop them")
    if source in ("folder", "table") and not cfg.path:
        what = "a folder or archive with train/ and test/" if source == "folder" else \
            "a TSV/CSV file with text and label columns"
        raise ConfigError(f"data.source={source} needs data.path ({what})")


def _load_raw(cfg: DataConfig, seed: int) -> tuple[Split, Split | None, dict[str, Split], str]:
    source = cfg.source
    check_source(cfg)
    if source == "synthetic":
        (texts, labels), (test_texts, test_labels) = synthetic.generate_splits(
            cfg.synthetic_examples, seed=seed, structures=cfg.synthetic_structures)
        names = synthetic.LABEL_NAMES
        to_names = lambda ys: [names[y] for y in ys]  # noqa: E731
        return (Split(texts, to_names(labels)), None, {"test": Split(test_texts, to_names(test_labels))},
                f"synthetic scope task {cfg.synthetic_structures}")
    if source in ("imdb", "folder"):
        if source == "folder" and not cfg.path:
            raise DataError("data.source=folder needs data.path (a folder or archive with train/ and test/)")
        root = _maas_root(_shared_or_given(cfg))
        evaluation = {"test": read_labelled_folder(root / "test")} if (root / "test").is_dir() else {}
        return read_labelled_folder(root / "train"), None, evaluation, f"Maas folder {root}"
    if source == "sst2":
        folder = _shared_or_given(cfg)
        train = read_table(_first_existing(folder, ("train.tsv.xz", "train.tsv")), "", "")
        evaluation = {"dev": read_table(_first_existing(folder, ("dev.tsv.xz", "dev.tsv")))}
        if any((folder / n).is_file() for n in ("test.tsv.xz", "test.tsv")):
            test = read_table(_first_existing(folder, ("test.tsv.xz", "test.tsv")))
            if set(test.labels) <= set(train.labels):  # GLUE's own test file is unlabelled.
                evaluation["test"] = test
        return train, None, evaluation, f"SST-2 {folder}"
    if source == "table":
        if not cfg.path:
            raise DataError("data.source=table needs data.path (a TSV/CSV file with text and label columns)")
        read = lambda p: read_table(Path(p).expanduser(), cfg.text_column, cfg.label_column)  # noqa: E731
        validation = read(cfg.validation_path) if cfg.validation_path else None
        evaluation = {"test": read(cfg.test_path)} if cfg.test_path else {}
        return read(cfg.path), validation, evaluation, f"table {cfg.path}"
    if source == "uci":
        return read_uci_folder(_shared_or_given(cfg)), None, {}, "UCI labelled sentences"
    if source == "rt_polarity":
        return read_polarity_files(_shared_or_given(cfg)), None, {}, "rt-polarity v1.0"
    if source.startswith("tfds:"):
        train, evaluation = read_tfds(source.removeprefix("tfds:"))
        return train, None, evaluation, source
    raise DataError(f"unknown data.source {source!r}; choose from {', '.join(NAMED_SOURCES)} or tfds:imdb_reviews, tfds:glue/sst2")


def load_dataset(cfg: DataConfig, seed: int = 0, label_names: list[str] | None = None) -> Dataset:
    """Train/validation/evaluation splits for `cfg`; `label_names` (from a run dir) fixes the classes."""
    train, validation, evaluation, description = _load_raw(cfg, seed)
    fixes = []
    if cfg.source in READABLE_LABEL_SOURCES:
        fixes.append(lambda split: Split(split.texts, [BINARY_NAMES.get(y, y) for y in split.labels]))
    if cfg.source in PTB_ESCAPED_SOURCES:
        fixes.append(unescape_ptb)
    for fix in fixes:
        train = fix(train)
        validation = fix(validation) if validation is not None else None
        evaluation = {name: fix(split) for name, split in evaluation.items()}
    if len(train) == 0:
        raise DataError(f"{description}: the training split is empty")
    if not evaluation:
        train, evaluation["test"] = _carve(train, cfg.test_fraction, seed + 1)
    if validation is None and cfg.validation_split == "sentences":
        train, validation, dropped = _carve_sentences(train, cfg.validation_fraction, seed + 2)
        description += (f"; validation = {len(validation):,} whole training sentences, {dropped:,} training "
                        f"phrases inside them dropped")
    elif validation is None:
        train, validation = _carve(train, cfg.validation_fraction, seed + 2)
    if cfg.max_train_examples > 0 and len(train) > cfg.max_train_examples:
        keep = np.random.default_rng(seed + 3).permutation(len(train))[: cfg.max_train_examples]
        train = Split([train.texts[i] for i in keep], [train.labels[i] for i in keep])
    if label_names is None:
        label_names = sorted(set(train.labels), key=label_sort_key)
    if len(label_names) < 2:
        raise DataError(f"{description}: training labels hold a single class {label_names}; need at least 2")
    return Dataset(train, validation, evaluation, list(label_names), description)
