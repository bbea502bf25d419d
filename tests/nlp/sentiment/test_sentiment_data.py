"""Sentiment data sources: the synthetic scope task and the readers, on real files where available."""

import tarfile

import numpy as np
import pytest

from apps.nlp.sentiment import data, synthetic
from apps.nlp.sentiment.config import DataConfig


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
    with pytest.raises(FileNotFoundError, match="not found"):
        data.load_dataset(DataConfig(source="table", path=str(tmp_path / "missing.tsv")))
    with pytest.raises(ValueError, match="unknown data.source"):
        data.load_dataset(DataConfig(source="yelp"))
    single = tmp_path / "one_class.tsv"
    single.write_text("".join(f"text {i}\t1\n" for i in range(20)))
    with pytest.raises(ValueError, match="single class"):
        data.load_dataset(DataConfig(source="table", path=str(single)))
