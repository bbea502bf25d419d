"""Slow accuracy checks on real data (make test-slow): a recurrent model must clearly beat chance."""

import json

import pytest

from apps.speech import evaluate, train


@pytest.mark.slow
@pytest.mark.tf_only
def test_fsdd_official_split_accuracy(shared_data, tmp_path):
    run = tmp_path / "fsdd"
    # 8 epochs (the preset trains 20 and reaches 0.99); chance is 0.10.
    assert train.main(["--config", "fsdd", "--set", "train.epochs=8", "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.9


@pytest.mark.slow
@pytest.mark.tf_only
def test_synthetic_model_transfers_to_real_speech_commands(shared_data, tmp_path, capsys):
    run = tmp_path / "synthetic"
    assert train.main(["--config", "default", "--set", "train.epochs=6", "--run-dir", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] >= 0.5  # chance 1/12
    archive = shared_data / "speech" / "speech_commands_v0.01_sample.tar.xz"
    out = tmp_path / "eval"
    assert evaluate.main(["--run-dir", str(run), "--data", str(archive), "--split", "all", "--keywords-only",
                          "--out", str(out)]) == 0
    # Chance 0.10. With clip mean normalisation 6 epochs gave 0.72 / 0.64 / 0.69 (seeds 0-2); without it
    # the full 14-epoch preset gave 0.53-0.60, so this fails if the normalisation stops working.
    assert json.loads((out / "metrics.json").read_text())["accuracy"] >= 0.62
