import json

import pytest

from bench import rnn_throughput


def test_benchmark_smoke_writes_json_and_table(tmp_path):
    args = ["--grid", "smoke", "--batches", "1", "--repeats", "1", "--out", str(tmp_path / "b.json")]
    try:
        import torch  # noqa: F401
    except ImportError:
        args.append("--no-torch")
    assert rnn_throughput.main(args) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    row = result["rows"][0]
    assert row["keras_seq_per_s"] > 0 and (tmp_path / "b.md").read_text().startswith("| cell")
    if "ratio" in row:
        assert row["ratio"] == pytest.approx(row["keras_seq_per_s"] / row["torch_seq_per_s"])


@pytest.mark.slow  # a diagnostic for GPU sessions; subprocess with a JAX compile
def test_jax_loop_diagnostic_runs_under_jax(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "j.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-m", "bench.rnn_throughput", "--grid", "smoke", "--batches", "2",
                           "--repeats", "1", "--no-torch", "--jax-loop", "--out", str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["jax_loop_seq_per_s"] > 0 and row["keras_seq_per_s"] > 0
    assert "jax loop seq/s" in out.with_suffix(".md").read_text()
