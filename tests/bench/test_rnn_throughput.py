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
