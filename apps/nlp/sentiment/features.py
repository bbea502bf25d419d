"""Text → token ids: the vocabulary, batching by length, word dropout and the string-input model.

Why the tokenizer lives outside the trained graph: `keras.layers.TextVectorization` is
TensorFlow-backed (string tensors) and JAX has no string dtype, so a model that must
train under both backends, including on a GPU machine without TensorFlow, cannot hold it.
Instead:

- training: `Vectorizer`, pure Python, re-implements TextVectorization's
  "lower_and_strip_punctuation" standardization (ASCII lower-casing, the same punctuation
  regex), its whitespace split and its truncation to the first `max_length` tokens; the
  vocabulary is counted in Python (`adapt_vocabulary`). The classifier (`model.py`) takes
  `[batch, time]` int token ids and is what `fit` trains and saves as `model.keras`;
- serving: `build_text_model` puts a `TextVectorization` built from the saved
  `vocabulary.txt` in front of that classifier, giving a raw-string → probability model
  (TensorFlow backend) that `export.py` saves as `.keras` and SavedModel.

Both give the same ids for the same text (tests/nlp/sentiment check it on the real corpora).
"""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Iterator, Sequence

import keras
import numpy as np
from keras import ops

PAD_ID = 0  # TextVectorization's padding/mask token
OOV_ID = 1  # TextVectorization's "[UNK]"
STANDARDIZE = "lower_and_strip_punctuation"


def clean_texts(texts: Sequence[str | bytes]) -> list[str]:
    """Strings ready for the vectorizer: bytes are UTF-8 decoded (invalid bytes become U+FFFD)."""
    cleaned = []
    for i, text in enumerate(texts):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise ValueError(f"text {i} is {type(text).__name__}, expected a string")
        cleaned.append(text)
    return cleaned


# TextVectorization's punctuation class, verbatim (`,-\.` is the range ",-." there too).
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")  # tf.strings.split splits on ASCII whitespace only
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def tokenize(text: str) -> list[str]:
    """TextVectorization's "lower_and_strip_punctuation" + whitespace split, in Python.

    tf.strings.lower lower-cases ASCII only ("É" stays), so `str.lower` would differ.
    """
    text = _PUNCTUATION.sub("", text.translate(_ASCII_LOWER))
    return [token for token in _WHITESPACE.split(text) if token]


def make_vectorizer(max_length: int, vocabulary: Sequence[str], name: str = "text_vectorization"):
    """The TensorFlow `TextVectorization` layer equal to `Vectorizer` (serving models only)."""
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    return keras.layers.TextVectorization(
        standardize=STANDARDIZE, split="whitespace", output_mode="int",
        output_sequence_length=max_length, name=name, vocabulary=list(vocabulary),
    )


def adapt_vocabulary(texts: Sequence[str], vocab_size: int, max_length: int | None = None) -> list[str]:
    """The `vocab_size` most frequent training tokens, padding ("") and "[UNK]" first.

    Ties are broken alphabetically so the vocabulary is reproducible. Every token of a text
    is counted, also past `max_length` (as TextVectorization.adapt does).
    """
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    counts = collections.Counter()
    for text in clean_texts(texts):
        counts.update(tokenize(text))
    counts.pop("[UNK]", None)  # cannot occur after stripping "[", "]"; kept explicit
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:vocab_size]
    return ["", "[UNK]"] + [token for token, _ in ranked]


def save_vocabulary(vocabulary: Sequence[str], path: str | Path) -> None:
    """One token per line, in id order (id 0 padding and id 1 "[UNK]" included)."""
    Path(path).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")


def load_vocabulary(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run dir lacks its vocabulary (retrain)")
    tokens = path.read_text(encoding="utf-8").split("\n")
    return tokens[:-1] if tokens and tokens[-1] == "" else tokens


class Vectorizer:
    """Texts → `[n, max_length]` int32 ids with a fixed vocabulary; backend-free.

    Args:
        vocabulary: tokens in id order; a leading ("", "[UNK]") pair is optional and implied.
        max_length: ids kept per text (the first tokens); shorter texts are padded with 0.
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int):
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        words = list(vocabulary)
        if words[:2] == ["", "[UNK]"]:
            words = words[2:]
        self.vocabulary = ["", "[UNK]"] + words  # id order, as saved in vocabulary.txt
        self.max_length = int(max_length)
        self.index = {token: i for i, token in enumerate(self.vocabulary) if i >= 2}

    def ids(self, text: str) -> list[int]:
        lookup = self.index.get
        return [lookup(token, OOV_ID) for token in tokenize(text)[:self.max_length]]

    def __call__(self, texts: Sequence[str | bytes]) -> np.ndarray:
        texts = clean_texts(texts)
        out = np.zeros((len(texts), self.max_length), dtype=np.int32)
        for row, text in enumerate(texts):
            ids = self.ids(text)
            out[row, :len(ids)] = ids
        return out


def vectorizer_from_vocabulary(vocabulary: Sequence[str], max_length: int) -> Vectorizer:
    """A vectorizer reproducing the ids of `vocabulary` (as saved by `save_vocabulary`)."""
    return Vectorizer(vocabulary, max_length)


def vectorize(texts: Sequence[str | bytes], vectorizer: Vectorizer) -> np.ndarray:
    """`[n, max_length]` int32 token ids (0 = padding); long texts keep their first tokens."""
    return vectorizer(texts)


def sequence_lengths(ids: np.ndarray) -> np.ndarray:
    """Number of tokens before the padding in each row."""
    return (ids != PAD_ID).sum(axis=1)


def trim_padding(ids: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Drops padding columns beyond the longest row, rounded up to a multiple of `multiple`."""
    width = int(max(1, sequence_lengths(ids).max())) if len(ids) else 1
    return ids[:, :min(ids.shape[1], -(-width // multiple) * multiple)]


def _bucket_indices(ids: np.ndarray, batch_size: int, shuffle: bool, seed: int, pool_batches: int) -> list[np.ndarray]:
    """Row indices of each batch: texts of similar length together, batch order shuffled."""
    n = len(ids)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    lengths = sequence_lengths(ids)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, n, pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    if shuffle:
        np.random.default_rng(seed + 1).shuffle(batches)
    return batches


def _batch(ids: np.ndarray, labels: np.ndarray, index: np.ndarray, multiple: int, replicas: int):
    """`(ids, labels, sample_weight)` of one batch, topped up to a multiple of `replicas` with zero-weight rows."""
    filler = -len(index) % replicas
    weights = np.ones(len(index) + filler, dtype=np.float32)
    if filler:
        weights[len(index):] = 0.0
        index = np.concatenate([index, index[np.arange(filler) % len(index)]])
    return trim_padding(ids[index], multiple), labels[index], weights


def length_bucketed_batches(ids: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                            multiple: int = 16, pool_batches: int = 50,
                            replicas: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batches `(ids, labels, sample_weight)` of similar-length texts, padding trimmed to a multiple of `multiple`.

    A recurrent layer costs time per step, so trimming padding makes short texts cheap;
    rounding to a multiple keeps the number of distinct shapes (JAX recompiles) small.
    Shuffling sorts only within pools of `pool_batches` batches, keeping batches random.

    `batch_size` is the global batch when training on `replicas` devices. The one short batch
    (anywhere after shuffling) is topped up to a multiple of `replicas` with filler rows that
    repeat real texts with sample weight 0, so every replica gets an equal slice (JAX shards
    must be equal; Keras' TF trainer builds from the first batch) and every example still
    counts exactly once per epoch (the loss averages over all rows, so filler rows add no
    gradient and only scale that one batch's step by real / padded rows). Other rows weigh 1.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be a positive device count, got {replicas}")
    for index in _bucket_indices(ids, batch_size, shuffle, seed, pool_batches):
        yield _batch(ids, labels, index, multiple, replicas)


def count_batches(num_examples: int, batch_size: int, pool_batches: int = 50) -> int:
    """How many batches `length_bucketed_batches` yields (pools split separately, so not always ceil(n / b))."""
    pool = batch_size * pool_batches
    return sum(-(-min(pool, num_examples - s) // batch_size) for s in range(0, num_examples, pool))


class BucketedBatches(keras.utils.PyDataset):
    """Length-bucketed `(ids, labels, sample_weight)` batches as a PyDataset (the JAX path; needs no TensorFlow).

    Reshuffled at every epoch end; `len()` is the number of batches, each example once with
    weight 1 (filler rows topping a batch up to a multiple of `replicas` have weight 0).
    """

    def __init__(self, ids: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                 multiple: int = 16, replicas: int = 1):
        super().__init__()
        self.ids, self.labels = ids, labels
        self.batch_size, self.shuffle, self.seed, self.multiple = batch_size, shuffle, seed, multiple
        self.replicas = replicas
        self.epoch = 0
        self._batches = self._make()

    def _make(self) -> list:
        self.epoch += 1
        return list(length_bucketed_batches(self.ids, self.labels, self.batch_size, self.shuffle,
                                            self.seed + 1000 * self.epoch, self.multiple, replicas=self.replicas))

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int):
        return self._batches[index]

    def batch_sizes(self) -> list[int]:
        """Rows per batch this epoch (read by `common.distribute` to shard without loading batches)."""
        return [len(labels) for _, labels, _ in self._batches]

    def on_epoch_end(self):
        if self.shuffle:
            self._batches = self._make()


def make_dataset(ids: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                 multiple: int = 16, replicas: int = 1):
    """Re-iterable length-bucketed `(ids, labels, sample_weight)` batches for `fit`, reshuffled every epoch.

    TensorFlow backend: a `tf.data.Dataset` whose variable `[batch, time]` shape is declared
    explicitly (the PyDataset adapter would freeze the first batch's length there). Other
    backends: a `BucketedBatches` PyDataset, so JAX training needs no TensorFlow. Either way
    `batch_size` is the global batch and batches are multiples of `replicas` (see
    `length_bucketed_batches`).
    """
    if keras.backend.backend() != "tensorflow":
        return BucketedBatches(ids, labels, batch_size, shuffle, seed, multiple, replicas)
    import tensorflow as tf

    epoch = {"count": 0}

    def generator():
        epoch["count"] += 1
        yield from length_bucketed_batches(ids, labels, batch_size, shuffle, seed + 1000 * epoch["count"], multiple,
                                           replicas=replicas)

    signature = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32),
                 tf.TensorSpec([None], tf.float32))
    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    # A known length gives `fit` a progress bar and no "ran out of data" warning.
    cardinality = count_batches(len(ids), batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(cardinality)).prefetch(2)


@keras.saving.register_keras_serializable(package="sentiment")
class WordDropout(keras.layers.Layer):
    """Replaces each real token by the OOV id with probability `rate` while training.

    Regularises long reviews: the model cannot rely on any single word being present.

    Args:
        rate: replacement probability in [0, 1).
        oov_id: the id that replaces dropped words (TextVectorization's "[UNK]" is 1).
        seed: seed of the layer's random generator.

    Input/output shape: `[batch, time]` int token ids (padding 0 stays 0).
    """

    def __init__(self, rate: float = 0.1, oov_id: int = OOV_ID, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.oov_id = int(oov_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        drop = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) < self.rate  # [batch, time]
        drop = ops.logical_and(drop, ops.not_equal(inputs, PAD_ID))
        return ops.where(drop, ops.cast(self.oov_id, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, oov_id=self.oov_id, seed=self.seed)
        return config


def build_text_model(classifier: keras.Model, vocabulary: Sequence[str], max_length: int) -> keras.Model:
    """Raw strings `[batch]` → the classifier's probabilities; TensorFlow backend only."""
    if keras.backend.backend() != "tensorflow":
        raise ValueError("the string-input model needs KERAS_BACKEND=tensorflow (TextVectorization is TF-backed)")
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = make_vectorizer(max_length, Vectorizer(vocabulary, max_length).vocabulary[2:])(text)  # [batch, max_length]
    probabilities = classifier(ids)
    return keras.Model(text, probabilities, name="text_classifier")


def bag_of_words_baseline(train_ids: np.ndarray, train_y: np.ndarray, eval_sets: dict[str, tuple[np.ndarray, np.ndarray]],
                          vocab_size: int, seed: int = 0) -> dict[str, float]:
    """Accuracy of logistic regression on unigram counts of the same tokens the RNN sees.

    The reference point for the synthetic scope task: word order and scope are invisible to it.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    def counts(ids: np.ndarray):
        rows = np.repeat(np.arange(len(ids)), ids.shape[1])
        cols = ids.reshape(-1)
        keep = cols != PAD_ID
        data = np.ones(int(keep.sum()), dtype=np.float32)
        matrix = sparse.csr_matrix((data, (rows[keep], cols[keep])), shape=(len(ids), vocab_size))
        matrix.sum_duplicates()
        matrix.data = np.log1p(matrix.data)  # damp repeated words, as tf-idf style baselines do
        return matrix

    classifier = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    classifier.fit(counts(train_ids), train_y)
    return {name: float((classifier.predict(counts(ids)) == y).mean()) for name, (ids, y) in eval_sets.items()}
