"""Real-data accuracy checks for sentiment (slow suite: `make test-slow`)."""

import json

import pytest

from apps.nlp.sentiment import train


@pytest.mark.slow
def test_sst2_subset_with_learnt_word_vectors_beats_bag_of_words(tmp_path, shared_data, monkeypatch):
    # A third of SST-2's phrases, word vectors learnt on those training texts only, 2 epochs.
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    args = ["--config", "sst2", "--run-dir", str(run_dir)]
    for item in ("data.max_train_examples=20000", "data.pretrain_corpus=train", "train.epochs=2",
                 "model.units=(64,)"):
        args += ["--set", item]
    assert train.main(args) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    dev = metrics["dev"]["accuracy"]
    assert dev >= 0.78, dev
    assert dev > metrics["bag_of_words_accuracy"]["dev"], metrics["bag_of_words_accuracy"]
    # Whole-sentence validation tracks dev (a random carve of phrases read ~0.1 higher).
    assert abs(metrics["validation"]["accuracy"] - dev) < 0.05
