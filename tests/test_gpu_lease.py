"""The one-call GPU lease plan (tools/gpu/lease.sh), rehearsed on the CPU with tiny presets."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_lease_plan_runs_every_app_and_returns_small_results(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), LEASE_RUNS=str(tmp_path / "runs"), PYTHON=sys.executable,
               KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", LEASE_PRESET="tiny",
               LEASE_BENCH="--device cpu --grid smoke --batches 2 --no-torch --scan-unroll 2 --fused-backward",
               LEASE_SET_TRANSLATION="--set model.rnn_implementation=scan",
               LEASE_SYNC_ARGS="--units 8 --steps 5 --batch 8 --batches 5 --repeats 1")
    done = subprocess.run(["bash", "tools/gpu/lease.sh", "400"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["lease.tar.gz", "lease.txt", "rnn_bench.json"]  # <= 8 files back
    assert json.loads((out / "rnn_bench.json").read_text())
    with tarfile.open(out / "lease.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    out = tmp_path / "unpacked"
    for app in ("speech", "sentiment", "translation", "forecast"):
        assert (out / "runs" / app / "metrics.json").is_file(), app
        assert json.loads((out / "runs" / app / "config.json").read_text())["train"]["time_budget_minutes"] > 0
        assert not list((out / "runs" / app).glob("*.keras")), "models stay on the device"
    assert "done in" in done.stdout and "done in" in (tmp_path / "out" / "lease.txt").read_text()
    assert (out / "logs" / "speech.log").is_file()
    bench = json.loads((out / "rnn_bench.json").read_text())["rows"][0]
    assert bench["scan_u2_seq_per_s"] > 0 and bench["scan_u2_fb_seq_per_s"] > 0  # autodiff and fused backward
    assert json.loads((out / "callback_sync.json").read_text())["sync_over_suite"] > 0
    # The presets run as they are, except where LEASE_SET_<APP> adds settings.
    for app in ("speech", "sentiment", "translation"):
        implementation = json.loads((out / "runs" / app / "config.json").read_text())["model"]["rnn_implementation"]
        assert implementation == ("scan" if app == "translation" else "native"), app
