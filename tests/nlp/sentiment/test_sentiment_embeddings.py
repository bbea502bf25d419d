"""Word vectors learnt on unlabelled text (model.embedding_init=word2vec)."""

import json

import numpy as np
import pytest

from apps.nlp.sentiment import embeddings, features, train
from common.errors import ConfigError


def _corpus(seed=0, n=3000):
    # "good"/"great" share every context, as do "bad"/"awful"; the two groups never share one.
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        positive = rng.random() < 0.5
        word = rng.choice(["good", "great"] if positive else ["bad", "awful"])
        context = rng.choice(["fun", "warm", "bright"] if positive else ["dull", "cold", "grim"], size=3)
        texts.append(f"{context[0]} {context[1]} {word} {context[2]} film")
    return texts


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_word_vectors_put_shared_contexts_together(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path))
    vectors = embeddings.train_word_vectors(_corpus(), dim=16, seed=0, workers=1)
    assert vectors["good"].shape == (16,) and vectors["good"].dtype == np.float32
    assert _cosine(vectors["good"], vectors["great"]) > _cosine(vectors["good"], vectors["awful"]) + 0.1
    assert _cosine(vectors["bad"], vectors["awful"]) > _cosine(vectors["bad"], vectors["great"]) + 0.1
    # A second call with the same corpus and settings reads the cache.
    cached = list((tmp_path / "word2vec").glob("*.npz"))
    assert len(cached) == 1
    again = embeddings.train_word_vectors(_corpus(), dim=16, seed=0, workers=1)
    np.testing.assert_array_equal(again["good"], vectors["good"])


def test_embedding_matrix_rows_follow_the_vocabulary():
    vectors = {"good": np.ones(4, np.float32), "bad": -np.ones(4, np.float32)}
    vocabulary = ["", "[UNK]", "good", "film", "bad"]
    matrix, coverage = embeddings.embedding_matrix(vocabulary, vectors, 4, seed=0)
    assert matrix.shape == (5, 4) and coverage == pytest.approx(2 / 3)
    np.testing.assert_array_equal(matrix[0], 0.0)  # padding
    np.testing.assert_array_equal(matrix[2], 1.0)
    np.testing.assert_array_equal(matrix[4], -1.0)
    assert np.abs(matrix[3]).max() > 0  # uncovered words keep a random row
    with pytest.raises(ValueError, match="embedding_dim"):
        embeddings.embedding_matrix(vocabulary, vectors, 8)


def test_corpus_choice_and_its_errors(tmp_path):
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("a fine film\n\nanother one\n", encoding="utf-8")
    texts, about = embeddings.corpus_texts(str(corpus), "sst2", ["train text"])
    assert texts == ["a fine film", "another one", "train text"] and "2 lines" in about
    assert embeddings.corpus_texts("train", "sst2", ["x", "y"])[0] == ["x", "y"]
    with pytest.raises(ValueError, match="test reviews"):
        embeddings.check_settings("imdb", "imdb", "word2vec")
    with pytest.raises(ValueError, match="embedding_init=word2vec"):
        embeddings.check_settings("sst2", "imdb", "random")
    with pytest.raises(ConfigError, match="one unlabelled document per line"):
        embeddings.check_settings("sst2", str(tmp_path / "missing.txt"), "word2vec")
    with pytest.raises(ValueError, match="corpus_vocab_size"):
        embeddings.check_settings("sst2", "train", "random", corpus_vocab_size=100)


def test_vocabulary_extended_by_frequent_corpus_words_only():
    corpus = ["superb superb superb film", "superb dull dull dull", "rare film", "film Film"]
    vocabulary = ["", "[UNK]", "film"]
    # "superb" 4x and "dull" 3x reach MIN_COUNT (3); "rare" does not; known "film" is not repeated.
    assert embeddings.MIN_COUNT == 3
    assert embeddings.extend_vocabulary(vocabulary, corpus, 10) == ["", "[UNK]", "film", "superb", "dull"]
    assert embeddings.extend_vocabulary(vocabulary, corpus, 1) == ["", "[UNK]", "film", "superb"]
    assert embeddings.extend_vocabulary(vocabulary, corpus, 0) == vocabulary


def test_training_starts_from_the_learnt_vectors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    code = train.main(["--config", "tiny", "--run-dir", str(run), "--set", "model.embedding_init=word2vec",
                       "--set", "train.learning_rate=1e-9"])  # ~no update: the saved embedding is the initial one
    assert code == 0
    out = capsys.readouterr().out
    assert "word2vec corpus: the" in out and "of the vocabulary starts from a learnt vector" in out
    import keras

    model = keras.models.load_model(run / "model.keras", compile=False)
    vocabulary = features.load_vocabulary(run / "vocabulary.txt")
    learnt = model.get_layer("embedding").get_weights()[0]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["embedding_init"] == "word2vec"
    cached = np.load(next((tmp_path / "cache" / "word2vec").glob("*.npz")))
    table = dict(zip(cached["words"].tolist(), cached["vectors"]))
    word = next(w for w in vocabulary[2:] if w in table)
    np.testing.assert_allclose(learnt[vocabulary.index(word)], table[word], atol=1e-5)
    np.testing.assert_array_equal(learnt[0], 0.0)


def test_corpus_words_join_the_vocabulary_and_a_frozen_embedding_keeps_their_vectors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "unlabelled.txt"
    corpus.write_text("\n".join(["an utterly sublime zzyzx picture"] * 5 + ["a leaden zzyzx mess"] * 5), encoding="utf-8")
    run = tmp_path / "run"
    code = train.main(["--config", "tiny", "--run-dir", str(run), "--set", "model.embedding_init=word2vec",
                       "--set", f"data.pretrain_corpus={corpus}", "--set", "data.corpus_vocab_size=50",
                       "--set", "model.freeze_embedding=true"])  # normal learning rate: only the frozen rows stay put
    assert code == 0
    assert "words of the word2vec corpus that training lacks added" in capsys.readouterr().out
    import keras

    vocabulary = features.load_vocabulary(run / "vocabulary.txt")
    assert "zzyzx" in vocabulary and "sublime" in vocabulary  # only the unlabelled corpus has them
    model = keras.models.load_model(run / "model.keras", compile=False)
    layer = model.get_layer("embedding")
    assert not layer.trainable
    cached = np.load(next((tmp_path / "cache" / "word2vec").glob("*.npz")))
    table = dict(zip(cached["words"].tolist(), cached["vectors"]))
    learnt = layer.get_weights()[0]
    for word in ("zzyzx", "sublime", next(w for w in vocabulary[2:] if w in table and w not in ("zzyzx", "sublime"))):
        np.testing.assert_array_equal(learnt[vocabulary.index(word)], table[word])
