import json

import pytest

from bench import rnn_throughput


def test_benchmark_smoke_writes_json_and_table(tmp_path):
    args = ["--grid", "smoke", "--batches", "1", "--repeats", "1", "--scan-unroll", "2", "--fused-backward",
            "--out", str(tmp_path / "b.json")]
    try:
        import torch  # noqa: F401
    except ImportError:
        args.append("--no-torch")
    assert rnn_throughput.main(args) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    row = result["rows"][0]
    assert row["keras_seq_per_s"] > 0 and (tmp_path / "b.md").read_text().startswith("| cell")
    assert row["scan_u2_seq_per_s"] > 0 and "scan unroll 2 seq/s" in (tmp_path / "b.md").read_text()
    assert row["scan_u2_fb_seq_per_s"] > 0 and "scan unroll 2 fused bwd seq/s" in (tmp_path / "b.md").read_text()
    if "ratio" in row:
        assert row["ratio"] == pytest.approx(row["keras_seq_per_s"] / row["torch_seq_per_s"])
        # timed before and after the Keras paths; the faster counts
        assert len(row["torch_runs_seq_per_s"]) == 2 and row["torch_seq_per_s"] == max(row["torch_runs_seq_per_s"])


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
                           "--repeats", "1", "--no-torch", "--jax-loop", "--scan-unroll", "2", "--profile", "--out", str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["jax_loop_seq_per_s"] > 0 and row["keras_seq_per_s"] > 0
    assert "jax loop seq/s" in out.with_suffix(".md").read_text()
    for key in ("profile_fit", "profile_scan_u2", "profile_jax_loop"):  # where the time went, traces removed
        assert 0 < row[key]["busy_fraction"] <= 1 and row[key]["events_per_step"] > 0 and row[key]["top"]
    assert not list(tmp_path.glob("trace_*"))


def test_trace_summary_unions_overlapping_device_events(tmp_path):
    import gzip

    meta = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/device:GPU:0"}},
            {"ph": "M", "pid": 1, "tid": 7, "name": "thread_name", "args": {"name": "Stream #13(Compute)"}},
            {"ph": "M", "pid": 1, "tid": 8, "name": "thread_name", "args": {"name": "XLA Ops"}},
            {"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "/host:CPU"}}]
    kernels = [{"ph": "X", "pid": 1, "tid": 7, "ts": ts, "dur": dur, "name": name}
               for ts, dur, name in [(0, 10, "gemm"), (5, 10, "gemm"), (40, 20, "lstm_fwd"), (90, 10, "gemm")]]
    others = [{"ph": "X", "pid": 1, "tid": 8, "ts": 0, "dur": 100, "name": "fusion"},  # not a stream: not counted
              {"ph": "X", "pid": 2, "tid": 3, "ts": 0, "dur": 500, "name": "python"}]
    trace_dir = tmp_path / "plugins" / "profile" / "run"
    trace_dir.mkdir(parents=True)
    with gzip.open(trace_dir / "perfetto_trace.json.gz", "wt") as f:
        json.dump({"traceEvents": meta + kernels + others}, f)
    summary = rnn_throughput.summarize_trace(tmp_path, steps=2)
    assert summary["busy_fraction"] == pytest.approx(45 / 100)  # [0, 15] + [40, 60] + [90, 100] over [0, 100]
    assert summary["span_ms_per_step"] == pytest.approx(0.05) and summary["events_per_step"] == 2
    assert [t["name"] for t in summary["top"]] == ["gemm", "lstm_fwd"]
    assert summary["top"][0]["ms_per_step"] == pytest.approx(0.015) and summary["top"][0]["mean_us"] == 10


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_scan_columns_time_the_suites_scan_layer(cell):
    """The --scan-unroll columns must time common.layers' scan implementation, whose parity with Keras'
    layers tests/common/test_scan_rnn.py checks; the default column the native layers."""
    from common.layers import ScanGRU, ScanLSTM

    scan = rnn_throughput._keras_model(cell, 10, 6, 2, implementation="scan", scan_unroll=4)
    rnns = [layer for layer in scan.get_layer(index=1).rnn_layers]
    assert all(isinstance(r, ScanLSTM if cell == "lstm" else ScanGRU) and r.scan_unroll == 4 for r in rnns)
    native = rnn_throughput._keras_model(cell, 10, 6, 2)
    assert not any(isinstance(r, (ScanLSTM, ScanGRU)) for r in native.get_layer(index=1).rnn_layers)


def test_callback_sync_bench_compares_the_suite_callbacks_with_a_blocking_list(tmp_path):
    from bench import callback_sync

    out = tmp_path / "sync.json"
    assert callback_sync.main(["--units", "4", "--steps", "3", "--batch", "4", "--batches", "3", "--repeats", "1",
                               "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["ms_per_step"]) == {"suite callbacks", "with a per-step sync"}
    assert result["sync_over_suite"] == pytest.approx(
        result["ms_per_step"]["with a per-step sync"] / result["ms_per_step"]["suite callbacks"])
