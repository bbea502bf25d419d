"""Shared pytest setup: quiet TF logs, markers, and the real-data fixture."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Hermetic runs: no JAX compilation cache shared between tests (test_training enables one in tmp).
os.environ.setdefault("LSTM_SUITE_JAX_CACHE", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

# Nothing from `common` at import time: importing it imports TensorFlow (~9 s of CPU), and the xdist
# controller, which loads this file but runs no test, would pay that on the cores the workers use.


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests that need real data skip only when it is absent."""
    from common.data import shared_data_dir

    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data not present on this machine")
    return root


@pytest.fixture
def train_in_subprocess():
    """`run(module, args, env, logical_cpus=1) -> stdout`: MODULE's `main(args)` in a fresh process
    (tests/train_with_logical_cpus.py; the device layout is fixed when a backend starts), asserting
    that it exits 0 and showing its output when it does not."""
    import subprocess

    def run(module: str, args: list[str], env: dict, logical_cpus: int = 1) -> str:
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "train_with_logical_cpus.py"), str(logical_cpus),
                               module, *args], capture_output=True, text=True, cwd=ROOT, timeout=240,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **env})
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc.stdout

    return run
