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

from common.data import shared_data_dir  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests that need real data skip only when it is absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data not present on this machine")
    return root
