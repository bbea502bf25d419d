"""The Python tokenizer used for training equals TextVectorization used for serving."""

import numpy as np
import pytest

from apps.nlp.sentiment import data, features

TRICKY = [
    "The film, was NOT good!", "ÉCOLE Straße İstanbul ǅ", "tab\tnew\nline\r\x0bvt\x0cff",
    "nbsp\xa0thin\u2009sep\x1cunit\x1frecord\x85nel", "don't-stop...now", "[UNK] <br /><br />a",
    "ＦＵＬＬＷＩＤＴＨ", "emoji 😀 mixed😀case", "", "   ", "a" * 300, "x,-.y", "résumé Ünïcode", "ǈ Ǉ ǉ",
]


def _tf_ids(texts, vocabulary, max_length):
    layer = features.make_vectorizer(max_length, vocabulary[2:])
    return np.asarray(layer(np.asarray(texts, dtype=object)), dtype=np.int32)


@pytest.mark.tf_only
def test_python_vectorizer_matches_text_vectorization_on_tricky_text():
    vocabulary = features.adapt_vocabulary(TRICKY * 2 + ["ÉCOLE école ecole"], vocab_size=40)
    assert vocabulary[:2] == ["", "[UNK]"] and len(set(vocabulary)) == len(vocabulary) > 20
    assert features.tokenize("ÉCOLE Don't-Stop") == ["École", "dontstop"]  # ASCII-only lower-casing
    for max_length in (1, 5, 64):
        ours = features.Vectorizer(vocabulary, max_length)(TRICKY)
        np.testing.assert_array_equal(ours, _tf_ids(TRICKY, vocabulary, max_length))


@pytest.mark.tf_only
def test_python_vectorizer_matches_text_vectorization_on_real_corpora(shared_data):
    texts = data.read_table(shared_data / "nlp/sst2/train.tsv.xz").texts[:20000]
    texts += data.load_dataset(data.DataConfig(source="rt_polarity"), seed=0).train.texts
    vocabulary = features.adapt_vocabulary(texts, vocab_size=5000)
    ours = features.Vectorizer(vocabulary, 48)(texts)
    np.testing.assert_array_equal(ours, _tf_ids(texts, vocabulary, 48))
    assert (ours == features.OOV_ID).any() and (ours[:, -1] == 0).mean() > 0.5


def test_vocabulary_is_frequency_ranked_with_alphabetical_ties():
    vocabulary = features.adapt_vocabulary(["b a c", "a b", "a z y"], vocab_size=3)
    assert vocabulary == ["", "[UNK]", "a", "b", "c"]
    ids = features.Vectorizer(vocabulary, 4)(["A b, Q", b"c \xff"])
    assert ids.tolist() == [[2, 3, 1, 0], [4, 1, 0, 0]]  # invalid UTF-8 decodes to U+FFFD, an unknown token
