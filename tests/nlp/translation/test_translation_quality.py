"""Slow accuracy check: a short synthetic run must far beat copying the source."""

import json

import pytest

from apps.nlp.translation import train
from apps.nlp.translation.config import DataConfig
from apps.nlp.translation.data import load_splits
from apps.nlp.translation.evaluate import corpus_scores


@pytest.mark.slow
@pytest.mark.tf_only
def test_synthetic_run_beats_copy_baseline(tmp_path):
    run_dir = tmp_path / "run"
    # Small batches: about 1,000 updates, which the task needs more than epochs.
    sets = ["data.num_examples=6000", "train.epochs=3", "train.batch_size=16", "decode.beam_size=1"]
    assert train.main(["--config", "default", "--run-dir", str(run_dir)] + [a for s in sets for a in ("--set", s)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = load_splits(DataConfig(num_examples=6000)).test
    copy = corpus_scores([s for s, _ in test], [t for _, t in test], lowercase=True)
    assert copy["bleu"] < 10
    assert metrics["bleu"] > 60 and metrics["chrf"] > copy["chrf"] + 30
