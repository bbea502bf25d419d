"""Shared pytest setup: quiet TF logs, markers, and the real-data fixture."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Archives extract into a per-session cache unless the user set one (keeps ~/.cache clean in CI)."""
    if "LSTM_SUITE_CACHE" not in os.environ:
        os.environ["LSTM_SUITE_CACHE"] = str(Path.home() / ".cache" / "lstm-suite")
    yield
