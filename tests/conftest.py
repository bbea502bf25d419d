"""Shared pytest setup: quiet TF logs, markers, and the real-data fixture."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Hermetic runs: no JAX compilation cache shared between tests (test_training enables one in tmp).
os.environ.setdefault("LSTM_SUITE_JAX_CACHE", "0")
# XLA's LLVM back end without its optimisation passes, and its older (elemental) CPU code generator in
# place of the fusion emitters: the tests' tiny models spend most of their JAX time compiling, and what
# they check (shapes, parity, learning) does not depend on how fast the generated code is. Measured on
# 2 cores: a tiny speech run 14.5 s -> 10.8 s (optimisation level 0), then the tiny speech and
# language-model trainings under JAX 17.0-20.7 s -> 13.0-13.9 s (no fusion emitters, three runs each).
# Subprocesses inherit them.
def _xla_test_flags() -> list[str]:
    import importlib.metadata

    flags = ["--xla_backend_optimization_level=0"]
    try:  # the switch is newer than the JAX a GPU machine may bring, and XLA aborts on a flag it does not know
        major, minor = (int(part) for part in importlib.metadata.version("jaxlib").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return flags
    return flags + ["--xla_cpu_use_fusion_emitters=false"] if (major, minor) >= (0, 10) else flags  # seen in 0.10


for _flag in _xla_test_flags():
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()
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


@pytest.fixture
def interrupt_fit(monkeypatch):
    """`interrupt_fit(n)`: the n-th call of common.training.fit from now on raises KeyboardInterrupt (Ctrl-C
    during that training, e.g. an ensemble's second member); returns `restore`, which puts the real fit back."""
    import common.training

    real_fit = common.training.fit

    def interrupt(n: int):
        calls = []

        def fit_then_fail(*args, **kwargs):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real_fit(*args, **kwargs)

        monkeypatch.setattr(common.training, "fit", fit_then_fail)
        return lambda: monkeypatch.setattr(common.training, "fit", real_fit)

    return interrupt


# The longest tests first (measured on 2 cores, 10-51 s each), so that neither xdist worker is left
# running one of them alone at the end while the other idles; the rest keep their collection order.
LONGEST_FIRST = ("tests/test_without_tensorflow.py", "tests/speech/test_pipeline.py",
                 "tests/nlp/translation/test_translation_pipeline.py", "tests/nlp/sentiment/test_sentiment_pipeline.py",
                 "tests/experiments/test_jax_loop.py", "tests/test_rnn_implementation.py",
                 "tests/timeseries/test_pipeline.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the same order on every worker, as xdist requires
