"""The contract every app keeps (tests/contract.py): each app's own pipeline test trains its tiny run once
and ends with `check_app_contract` on it; here, that every registered app does, and one app trained
through the Python API's `train()` (the CLIs' path) meeting the same contract."""

import json
import re
from pathlib import Path

import pytest

from common.pipeline import get_app, load_run, train

from tests.contract import check_app_contract

TESTS = Path(__file__).resolve().parent


def test_every_app_is_held_to_the_contract_by_its_pipeline_test():
    from apps import APPS

    called = set()
    for path in TESTS.rglob("test_*.py"):
        called |= set(re.findall(r'check_app_contract\(\s*"(\w+)"', path.read_text()))
    assert set(APPS) <= called, f"apps whose pipeline test skips tests/contract.py: {sorted(set(APPS) - called)}"


@pytest.mark.tf_only  # export runs on TensorFlow
def test_train_through_the_api_meets_the_contract(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "run"
    run = train("forecasting", "tiny", path, overrides=["train.epochs=2"])
    assert run.path == path and run.app.name == get_app("forecasting").name
    assert run.cfg.train.epochs == 2 and json.loads((path / "config.json").read_text())["train"]["epochs"] == 2
    assert load_run(path).cfg == run.cfg
    check_app_contract("forecasting", path, tmp_path, capsys)
