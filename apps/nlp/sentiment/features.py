"""Text → token ids: the vocabulary, batching by length, word dropout and the string-input model.

Why the tokenizer lives outside the trained graph: `keras.layers.TextVectorization` is
TensorFlow-backed (string tensors), and JAX has no string dtype, so a model that must
train under both backends cannot hold it. Instead:

- training: `TextVectorization`, adapted on the training texts, vectorizes every split
  up front (it runs eagerly under any backend); the classifier (`model.py`) takes
  `[batch, time]` int token ids and is what `fit` trains and saves as `model.keras`;
- serving: `build_text_model` puts a `TextVectorization` built from the saved
  `vocabulary.txt` in front of that classifier, giving a raw-string → probability model
  (TensorFlow backend) that `export.py` saves as `.keras` and SavedModel.

Both paths use the same layer with the same vocabulary, standardization
("lower_and_strip_punctuation", ASCII lower-casing) and truncation to the first
`max_length` tokens, so they agree exactly (tests/nlp/sentiment check it).
"""

from __future__ import annotations

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


def make_vectorizer(max_length: int, vocabulary: Sequence[str] | None = None, vocab_size: int | None = None,
                    name: str = "text_vectorization") -> keras.layers.TextVectorization:
    """Lower-cases, strips punctuation, splits on whitespace, keeps the first `max_length` ids."""
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    kwargs = {"vocabulary": list(vocabulary)} if vocabulary is not None else {"max_tokens": vocab_size}
    return keras.layers.TextVectorization(
        standardize=STANDARDIZE, split="whitespace", output_mode="int",
        output_sequence_length=max_length, name=name, **kwargs,
    )


def adapt_vocabulary(texts: Sequence[str], vocab_size: int, max_length: int) -> list[str]:
    """The `vocab_size` most frequent training tokens, padding ("") and "[UNK]" first."""
    vectorizer = make_vectorizer(max_length, vocab_size=vocab_size + 2)
    vectorizer.adapt(np.asarray(clean_texts(texts), dtype=object), batch_size=1024)
    return list(vectorizer.get_vocabulary())


def save_vocabulary(vocabulary: Sequence[str], path: str | Path) -> None:
    """One token per line, in id order (id 0 padding and id 1 "[UNK]" included)."""
    Path(path).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")


def load_vocabulary(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run dir lacks its vocabulary (retrain)")
    tokens = path.read_text(encoding="utf-8").split("\n")
    return tokens[:-1] if tokens and tokens[-1] == "" else tokens


def vectorizer_from_vocabulary(vocabulary: Sequence[str], max_length: int) -> keras.layers.TextVectorization:
    """A vectorizer reproducing the ids of `vocabulary` (as saved by `save_vocabulary`)."""
    vocabulary = list(vocabulary)
    if vocabulary[:2] == ["", "[UNK]"]:
        vocabulary = vocabulary[2:]  # TextVectorization adds padding and OOV itself.
    return make_vectorizer(max_length, vocabulary=vocabulary)


def vectorize(texts: Sequence[str | bytes], vectorizer: keras.layers.TextVectorization,
              batch_size: int = 2048) -> np.ndarray:
    """`[n, max_length]` int32 token ids (0 = padding); long texts keep their first tokens."""
    texts = clean_texts(texts)
    width = vectorizer.get_config()["output_sequence_length"]
    if not texts:
        return np.zeros((0, width), dtype=np.int32)
    chunks = [
        np.asarray(ops.convert_to_numpy(vectorizer(np.asarray(texts[i:i + batch_size], dtype=object))), dtype=np.int32)
        for i in range(0, len(texts), batch_size)
    ]
    return np.concatenate(chunks)


def sequence_lengths(ids: np.ndarray) -> np.ndarray:
    """Number of tokens before the padding in each row."""
    return (ids != PAD_ID).sum(axis=1)


def trim_padding(ids: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Drops padding columns beyond the longest row, rounded up to a multiple of `multiple`."""
    width = int(max(1, sequence_lengths(ids).max())) if len(ids) else 1
    return ids[:, :min(ids.shape[1], -(-width // multiple) * multiple)]


def length_bucketed_batches(ids: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                            multiple: int = 16, pool_batches: int = 50) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of similar-length texts with the padding trimmed to a multiple of `multiple`.

    A recurrent layer costs time per step, so trimming padding makes short texts cheap;
    rounding to a multiple keeps the number of distinct shapes (JAX recompiles) small.
    Shuffling sorts only within pools of `pool_batches` batches, keeping batches random.
    """
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
    for index in batches:
        yield trim_padding(ids[index], multiple), labels[index]


def make_dataset(ids: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                 multiple: int = 16):
    """A re-iterable `tf.data.Dataset` of length-bucketed batches (reshuffled every epoch).

    tf.data feeds `fit` under both backends; the variable `[batch, time]` shape is declared
    explicitly, which the PyDataset adapter cannot do.
    """
    import tensorflow as tf

    epoch = {"count": 0}

    def generator():
        epoch["count"] += 1
        yield from length_bucketed_batches(ids, labels, batch_size, shuffle, seed + 1000 * epoch["count"], multiple)

    signature = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    # A known length gives `fit` a progress bar and no "ran out of data" warning.
    num_batches = sum(-(-min(batch_size * 50, len(ids) - s) // batch_size) for s in range(0, len(ids), batch_size * 50))
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(2)


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
    ids = vectorizer_from_vocabulary(vocabulary, max_length)(text)  # [batch, max_length]
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
