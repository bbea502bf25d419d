"""BPE tokenizer: round trips, merges, unknown characters, empty text, save/load."""

import pytest

from apps.nlp.translation.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, BPETokenizer, normalize, pretokenize
from common.errors import RunDirError

TEXTS = ["Where is the station?", "The stations are far.", "¿Dónde está la estación?", "I don't know, do you?",
         "station station stations"] * 3


def test_round_trip_of_normalised_text():
    tok = BPETokenizer.train(TEXTS, vocab_size=60, lowercase=True)
    for text in TEXTS + ["  Where   is\tthe station ? ", "¿dónde?"]:
        assert tok.decode(tok.encode(text)) == normalize(text, lowercase=True)


def test_merges_make_frequent_words_single_tokens_and_keep_rare_words_in_pieces():
    tok = BPETokenizer.train(TEXTS, vocab_size=200, lowercase=True)
    assert tok.tokenize("station") == ["▁station"]
    pieces = tok.tokenize("stationed")  # unseen word: built from learned subwords
    assert len(pieces) > 1 and "".join(pieces) == "▁stationed"
    assert UNK not in tok.encode("stationed")


def test_vocab_layout_and_size():
    tok = BPETokenizer.train(TEXTS, vocab_size=40)
    assert tok.vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert tok.vocab_size <= 40
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train(TEXTS, vocab_size=3)


def test_unknown_characters_map_to_unk_and_are_reported():
    tok = BPETokenizer.train(TEXTS, vocab_size=60)
    ids = tok.encode("where is the 駅 station😀?")
    assert ids.count(UNK) == 2
    assert tok.unknown_characters("where is the 駅 station😀?") == sorted(["駅", "😀"])
    assert tok.decode(ids) == "where is the station?"  # <unk> pieces are dropped


def test_empty_and_whitespace_text_encode_to_nothing():
    tok = BPETokenizer.train(TEXTS, vocab_size=60)
    assert tok.encode("") == [] and tok.encode("   \n") == []
    assert tok.decode([]) == "" and tok.decode([BOS, EOS, 5]) == ""


def test_pretokenize_marks_word_starts_and_splits_punctuation():
    assert pretokenize("¿dónde está? don't") == ["▁¿", "dónde", "▁está", "?", "▁don", "'", "t"]


def test_save_load_round_trip(tmp_path):
    tok = BPETokenizer.train(TEXTS, vocab_size=60, lowercase=False)
    tok.save(tmp_path / "tok.json")
    loaded = BPETokenizer.load(tmp_path / "tok.json")
    assert loaded.vocab == tok.vocab and loaded.merges == tok.merges and loaded.lowercase is False
    assert loaded.encode("Where is the Station?") == tok.encode("Where is the Station?")
    with pytest.raises(RunDirError, match="not found"):
        BPETokenizer.load(tmp_path / "missing.json")
