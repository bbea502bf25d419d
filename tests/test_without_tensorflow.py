"""Every app trains under JAX on a machine without TensorFlow (the GPU machine's situation)."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
        "translation": ["--set", "train.epochs=1", "--set", "data.num_examples=200", "--set", "data.pad_multiple=24"],
        "sentiment": ["--set", "train.epochs=1", "--set", "data.bucket_multiple=24"],
        "language_model": ["--set", "train.epochs=1"]}
# One padded length (the tiny presets' maximum) for the text apps: each other length is another JAX
# compilation of every step, and length bucketing is tested under TensorFlow.


def test_every_tiny_preset_trains_under_jax_without_tensorflow(tmp_path):
    """All five apps' `train` commands in one process with TensorFlow unimportable (one JAX start-up)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split()  # the tests' (conftest)
                                if not flag.startswith("--xla_force_host_platform_device_count"))  # one device
    commands = []
    for app, module in sorted(APPS.items()):
        commands += [module, "--config", "tiny", "--run-dir", str(tmp_path / app), *FAST.get(app, []), "---"]
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "run_without_tensorflow.py"), *commands[:-1]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    for app, module in APPS.items():
        assert f"[run_without_tensorflow] {module}: exit 0 (" in proc.stdout, proc.stdout[-3000:]
        assert (tmp_path / app / "model.keras").is_file()
        metrics = json.loads((tmp_path / app / "metrics.json").read_text())
        assert metrics, f"{app}: metrics.json is empty"
        assert json.loads((tmp_path / app / "run.json").read_text())["backend"] == "jax"
    assert "blocked: emulating" not in proc.stderr  # nothing reached for TensorFlow and was stopped
