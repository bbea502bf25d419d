"""Sentiment data sources: the synthetic scope task and the readers, on real files where available."""

import tarfile

import numpy as np
import pytest

from apps.nlp.sentiment import data, synthetic
from apps.nlp.sentiment.config import DataConfig
from common.errors import DataError


def test_synthetic_is_balanced_deterministic_and_word_order_dependent():
    texts, labels = synthetic.generate(400, seed=3)
    assert (texts, labels) == synthetic.generate(400, seed=3)
    assert sum(labels) == 200
    # Every adjective appears under both labels, so single words carry no label.
    for word in ("good", "bad", "not", "but"):
        with_word = [y for t, y in zip(texts, labels) if word in t.split()]
        assert 0.35 < np.mean(with_word) < 0.65, word
    # Swapping the clauses around "but" keeps the bag of words and flips the label.
    rng = np.random.default_rng(0)
    review = synthetic._review(rng, "but", 1)
    first, second = review.split(" but ")
    assert sorted(f"{second} but {first}".split()) == sorted(review.split())


def test_synthetic_test_split_is_disjoint_from_train():
    (train_texts, _), (test_texts, test_labels) = synthetic.generate_splits(800, seed=1)
    assert len(test_texts) == 200 and not set(train_texts) & set(test_texts)
    assert 0.3 < np.mean(test_labels) < 0.7
    with pytest.raises(ValueError, match="unknown synthetic structure"):
        synthetic.generate(10, structures=("sarcasm",))


def test_sst2_files_read_directly_from_xz(shared_data):
    dev = data.read_table(shared_data / "nlp/sst2/dev.tsv.xz")  # header label<TAB>content
    assert len(dev) == 872 and set(dev.labels) == {"0", "1"}
    assert dev.texts[0].startswith("one long string of cliches")
    dataset = data.load_dataset(DataConfig(source="sst2", max_train_examples=500), seed=0)
    assert dataset.primary_split == "dev" and set(dataset.evaluation) == {"dev", "test"}
    assert len(dataset.evaluation["test"]) == 1821 and len(dataset.train) == 500
    assert dataset.label_names == ["negative", "positive"]
    # dev/test keep the treebank escapes ("-lrb- a -rrb-") that train writes as brackets: unescaped on load.
    for split in dataset.evaluation.values():
        assert not any("-lrb-" in t or "-rrb-" in t for t in split.texts)
    assert sum("(" in t for t in dataset.evaluation["dev"].texts) >= 20


def test_ptb_bracket_escapes_become_brackets():
    split = data.unescape_ptb(data.Split(["-LRB- a -RRB- film", "x -lsb- y -rsb- {z}", "a -lrb-ish"], ["1", "0", "1"]))
    assert split.texts == ["( a ) film", "x [ y ] {z}", "a (ish"] and split.labels == ["1", "0", "1"]


def test_uci_and_rt_polarity_readers(shared_data):
    uci = data.read_uci_folder(shared_data / "nlp/uci_sentiment_labelled_sentences")
    assert len(uci) == 3000 and set(uci.labels) == {"0", "1"} and all(uci.texts)
    rt = data.read_polarity_files(shared_data / "nlp/rt_polarity")
    assert len(rt) == 10662 and rt.labels.count("pos") == 5331  # latin-1 lines decode without errors
    dataset = data.load_dataset(DataConfig(source="rt_polarity", test_fraction=0.2, validation_fraction=0.1))
    assert len(dataset.evaluation["test"]) == 2132 and len(dataset.train) + len(dataset.validation) == 8530
    assert dataset.label_names == ["negative", "positive"]


def test_table_columns_in_either_order_and_n_classes(tmp_path):
    # SST-2 style reversed: sentence<TAB>label without a header.
    reversed_file = tmp_path / "reviews.tsv"
    reversed_file.write_text("a fine film\t1\nutterly dull\t0\nsome \"quoted\" words here\t1\n")
    split = data.read_table(reversed_file)
    assert split.texts[2] == 'some "quoted" words here' and split.labels == ["1", "0", "1"]
    # A CSV with named columns and three classes.
    csv_file = tmp_path / "stars.csv"
    rows = ["id,review,stars"] + [f'{i},"great, truly {i}",{i % 3 + 1}' for i in range(30)]
    csv_file.write_text("\n".join(rows) + "\n")
    cfg = DataConfig(source="table", path=str(csv_file), text_column="review", label_column="stars")
    dataset = data.load_dataset(cfg)
    assert dataset.label_names == ["1", "2", "3"]
    assert dataset.train.texts[0].startswith("great, truly")
    with pytest.raises(ValueError, match="not in header"):
        data.read_table(csv_file, text_column="body", label_column="stars")


def test_maas_folder_and_archive(tmp_path, monkeypatch):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label, text in (("pos", "loved it"), ("neg", "hated it"), ("unsup", "unlabelled")):
            (root / split / label).mkdir(parents=True)
            for i in range(3):
                (root / split / label / f"{i}_7.txt").write_bytes(f"{text} {i} <br />".encode() + b"\xe9")
    archive = tmp_path / "aclImdb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    for path in (root, archive):
        dataset = data.load_dataset(DataConfig(source="folder", path=str(path), validation_fraction=0.34))
        assert dataset.label_names == ["neg", "pos"]  # unsup is skipped; folder sources keep their names
        assert len(dataset.evaluation["test"]) == 6 and len(dataset.train) + len(dataset.validation) == 6
        assert dataset.evaluation["test"].texts[0].endswith("\u00e9")  # latin-1 fallback


@pytest.mark.slow
def test_imdb_archive_from_shared_data(shared_data):
    dataset = data.load_dataset(DataConfig(source="imdb"))
    assert len(dataset.evaluation["test"]) == 25000
    assert len(dataset.train) + len(dataset.validation) == 25000
    assert dataset.label_names == ["negative", "positive"]


def test_unseen_labels_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"label\(s\) \['maybe'\] in the test split were not seen in training"):
        data.encode_labels(["positive", "maybe"], ["negative", "positive"], "test")
    with pytest.raises(DataError, match="not found"):
        data.load_dataset(DataConfig(source="table", path=str(tmp_path / "missing.tsv")))
    with pytest.raises(ValueError, match="unknown data.source"):
        data.load_dataset(DataConfig(source="yelp"))
    single = tmp_path / "one_class.tsv"
    single.write_text("".join(f"text {i}\t1\n" for i in range(20)))
    with pytest.raises(ValueError, match="single class"):
        data.load_dataset(DataConfig(source="table", path=str(single)))


def _spans(text):
    tokens = text.split()
    return {" ".join(tokens[a:b]) for a in range(len(tokens)) for b in range(a + 1, len(tokens) + 1)}


def test_sentence_validation_split_shares_no_phrase_with_train():
    # SST-2 style: every sentence is listed together with its phrases.
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts, labels = [], []
    for s in range(200):
        sentence = " ".join(rng.choice(words, size=int(rng.integers(6, 12))))
        tokens = sentence.split()
        for a, b in {(0, len(tokens)), (0, 3), (2, 5), (len(tokens) - 4, len(tokens)), (1, 2)}:
            texts.append(" ".join(tokens[a:b]))
            labels.append(str(s % 2))
    split = data.Split(texts, labels)
    train, validation, dropped = data._carve_sentences(split, 0.1, seed=0)
    assert len(validation) >= 1 and dropped > 0
    assert len(train) + len(validation) + dropped == len(split)
    assert 0.1 * len(split) <= len(split) - len(train) < 0.1 * len(split) + 16  # stops after one more sentence
    train_set = set(train.texts)
    for sentence in validation.texts:
        assert not _spans(sentence) & train_set, sentence  # no phrase of it was trained on
        assert sum(sentence in t for t in texts) == 1  # a whole sentence, in no other text
    # The random carve, by contrast, leaves phrases of validation texts in train.
    rand_train, rand_validation = data._carve(split, 0.1, seed=0)
    assert any(_spans(v) & set(rand_train.texts) for v in rand_validation.texts)
    assert data._carve_sentences(split, 0.1, seed=0)[1].texts == validation.texts  # deterministic


def test_sst2_sentence_validation_on_the_real_file(shared_data):
    dataset = data.load_dataset(DataConfig(source="sst2", validation_split="sentences", validation_fraction=0.1))
    assert 400 < len(dataset.validation) < 900 and "whole training sentences" in dataset.description
    train_set = set(dataset.train.texts)
    assert not any(_spans(v) & train_set for v in dataset.validation.texts)
    mean_length = np.mean([len(t.split()) for t in dataset.validation.texts])
    assert 15 < mean_length < 25  # sentence-length, like dev (19.5 tokens), unlike the 9-token phrases
