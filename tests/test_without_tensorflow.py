"""Every app trains under JAX on a machine without TensorFlow (the GPU machine's situation)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "speech": "apps.speech.train",
    "sentiment": "apps.nlp.sentiment.train",
    "translation": "apps.nlp.translation.train",
    "timeseries": "apps.timeseries.train",
    "language_model": "apps.nlp.language_model.train",
}
# What runs without TensorFlow is the code path, not the accuracy (the tests with bounds run elsewhere):
# one epoch where the tiny preset trains for longer.
FAST = {"speech": ["--set", "train.epochs=1", "--set", "data.synthetic_speakers=6", "--set", "data.synthetic_repeats=1"],
        "translation": ["--set", "train.epochs=1", "--set", "data.num_examples=200"]}


@pytest.mark.parametrize("app", sorted(APPS))
def test_tiny_preset_trains_under_jax_without_tensorflow(app, tmp_path):
    run_dir = tmp_path / app
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "run_without_tensorflow.py"), APPS[app], "--config", "tiny",
         "--run-dir", str(run_dir), *FAST.get(app, [])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "tensorflow" not in proc.stderr.lower() or "blocked" not in proc.stderr
    assert (run_dir / "model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics, "metrics.json is empty"
