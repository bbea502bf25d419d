"""End to end on the tiny preset: train -> evaluate -> predict -> export, plus user-error exit codes."""

import json

import numpy as np
import pytest
import soundfile as sf

from apps.speech import evaluate, export, predict, train

from tests.contract import check_app_contract


@pytest.mark.tf_only
def test_tiny_end_to_end(tmp_path, monkeypatch, capsys):
    # One test (not a shared fixture) so pytest-xdist never trains the tiny model twice.
    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    # Trained after random earlier clips (augment.prefix_clips), so its step model can run on and on.
    code = train.main(["--config", "tiny", "--set", "model.architecture=streaming", "--set", "augment.prefix_clips=1",
                       "--run-dir", str(run)])
    assert code == 0
    import keras

    assert keras.models.load_model(run / "model.keras").inputs[0].shape == (None, 8000)  # one clip, not two
    for name in ("config.json", "labels.json", "data.json", "run.json", "model.keras", "history.json", "metrics.json",
                 "training_curves.png", "confusion_matrix.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    # Streaming, with prefix clips: learns well past always answering the most frequent label.
    assert metrics["test_accuracy"] >= 0.4, metrics["test_accuracy"]
    assert json.loads((run / "labels.json").read_text()) == ["yes", "no", "up", "_silence_", "_unknown_"]
    _check_evaluate_predict_export(run, tmp_path, capsys)
    _check_user_errors(run, tmp_path, capsys)
    check_app_contract("speech", run, tmp_path, capsys, export=False)  # exported above through the CLI


def _check_evaluate_predict_export(run, tmp_path, capsys):
    assert evaluate.main(["--run-dir", str(run)]) == 0
    report = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert set(report["per_class"]) == {"yes", "no", "up", "_silence_", "_unknown_"}
    assert (run / "eval" / "test" / "confusion_matrix.png").is_file()

    t = np.arange(4000) / 8000  # an 8 kHz file: resampled, not rejected
    sf.write(tmp_path / "tone.wav", 0.3 * np.sin(2 * np.pi * 300 * t), 8000)
    capsys.readouterr()
    assert predict.main(["--run-dir", str(run), "--top-k", "2", str(tmp_path / "tone.wav")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(str(tmp_path / "tone.wav")) and line.count(",") == 1

    # Spotting: a long file through the sliding window, and streams made of the test clips.
    sf.write(tmp_path / "long.wav", np.random.default_rng(0).normal(0, 0.05, 16000 * 3), 16000)
    assert predict.main(["--run-dir", str(run), "--spot", "--json", str(tmp_path / "long.wav")]) == 0
    spotted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert spotted["seconds"] == 3.0 and all(0 <= d["time"] <= 3 for d in spotted["detections"])
    assert predict.main(["--run-dir", str(run), "--spot", "--step-model", "5", "--json", str(tmp_path / "long.wav")]) == 0
    live = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # the step model, staggered resets
    assert live["seconds"] == 3.0 and all(0 <= d["time"] <= 3 for d in live["detections"])
    assert predict.main(["--run-dir", str(run), "--spot", "--live", "--json", str(tmp_path / "long.wav")]) == 0
    live = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # one never-reset state
    assert live["seconds"] == 3.0 and all(0 <= d["time"] <= 3 for d in live["detections"])
    assert evaluate.main(["--run-dir", str(run), "--spotting", "--out", str(tmp_path / "spot")]) == 0
    spotting = json.loads((tmp_path / "spot" / "metrics.json").read_text())["spotting"]
    assert spotting["keywords"] > 0 and spotting["hits"] + spotting["misses"] == spotting["keywords"]
    assert [p["threshold"] for p in spotting["curve"]] == [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    for point in spotting["curve"]:  # every detection is a hit or a false alarm
        assert point["detections"] == point["hits"] + point["false_alarms"] and point["hits"] <= point["keywords"]
    assert (tmp_path / "spot" / "spotting.png").is_file() and (tmp_path / "spot" / "spotting_curve.png").is_file()
    assert spotting["miss_rate"] == pytest.approx(1 - spotting["recall"])
    # False accepts per hour on speech without keywords: the model's own "yes" clips filed under another
    # word count as negatives (and are spotted), clips in its keyword folders are left out.
    import shutil

    said_yes = sorted((tmp_path / "cache").glob("speech_synthetic_*/yes/*.wav"))[:12]
    for word, clips in (("house", said_yes[:9]), ("yes", said_yes[9:])):
        (tmp_path / "negatives" / word).mkdir(parents=True)
        for clip in clips:
            shutil.copy(clip, tmp_path / "negatives" / word / clip.name)
    # Two sources (one evaluation): each false accept and every second of stream time is counted for exactly one.
    (tmp_path / "negatives2" / "cat").mkdir(parents=True)
    for clip in said_yes[:4]:
        shutil.copy(clip, tmp_path / "negatives2" / "cat" / clip.name)
    assert evaluate.main(["--run-dir", str(run), "--spotting", "--negatives", str(tmp_path / "negatives"),
                          "--negatives", str(tmp_path / "negatives2"), "--out", str(tmp_path / "spotneg")]) == 0
    negative = json.loads((tmp_path / "spotneg" / "metrics.json").read_text())["spotting"]
    both = negative["negatives"]
    assert [s["recordings"] for s in both["sources"]] == [9, 4] and both["recordings"] == 13
    assert [s["left_out_keyword_recordings"] for s in both["sources"]] == [3, 0]
    hours = both["stream_minutes"] / 60
    assert both["false_accepts_per_hour"] == pytest.approx(both["false_accepts"] / hours)
    per_hour = [p["false_accepts_per_hour"] for p in negative["curve"]]
    assert per_hour[0] > 0 and per_hour == sorted(per_hour, reverse=True)  # fewer as the threshold rises
    assert negative["keywords"] == spotting["keywords"]  # the keyword streams are unchanged
    assert sum(s["false_accepts"] for s in both["sources"]) == both["false_accepts"]
    assert sum(s["stream_minutes"] for s in both["sources"]) == pytest.approx(both["stream_minutes"])
    assert all(s["stream_minutes"] > 0 for s in both["sources"])
    assert evaluate.main(["--run-dir", str(run), "--negatives", str(tmp_path / "negatives")]) == 2  # needs --spotting
    assert evaluate.main(["--run-dir", str(run), "--spotting", "--step-model", "5", "--out", str(tmp_path / "spot5")]) == 0
    live = json.loads((tmp_path / "spot5" / "metrics.json").read_text())["spotting"]
    assert live["step_model_phases"] == 5 and live["settings"]["smooth_windows"] == 3
    assert live["keywords"] == spotting["keywords"]  # the same streams

    out = tmp_path / "export"
    assert export.main(["--run-dir", str(run), "--out", str(out), "--formats", "saved_model", "onnx", "--num-examples", "2"]) == 0
    parity = json.loads((out / "export.json").read_text())
    assert parity["formats"]["saved_model"]["max_abs_diff"] <= 1e-4
    assert parity["formats"]["onnx"]["max_abs_diff"] <= 1e-4
    import onnx

    graph = onnx.load(str(out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["audio"]  # no statistics left as inputs to feed
    assert "Loop" not in {node.op_type for node in graph.node}  # recurrences unrolled
    streaming = json.loads((out / "streaming.json").read_text())
    assert (out / "streaming_step.tflite").is_file() and (out / "streaming_step.onnx").is_file()
    assert streaming["max_abs_diff_tflite_stream_vs_full"] <= 1e-4 and streaming["top1_agreement"] == 1.0
    assert streaming["max_abs_diff_onnx_stream_vs_full"] <= 1e-4 and streaming["onnx_top1_agreement"] == 1.0


def _check_user_errors(run, tmp_path, capsys):
    capsys.readouterr()
    assert train.main(["--config", "tiny", "--run-dir", str(run)]) == 2  # finished run, no --overwrite
    assert train.main(["--config", "tiny", "--set", "model.bogus=1", "--run-dir", str(tmp_path / "r")]) == 2
    assert train.main(["--config", "tiny", "--set", "augment.prefix_clips=1", "--run-dir", str(tmp_path / "r")]) == 2
    assert train.main(["--config", "tiny", "--set", "data.source=folder", "--set", f"data.path={tmp_path / 'no'}",
                       "--run-dir", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
    assert evaluate.main(["--run-dir", str(tmp_path / "missing")]) == 2
    assert evaluate.main(["--run-dir", str(run), "--data", str(tmp_path / "nowhere")]) == 2
    assert predict.main(["--run-dir", str(run), str(tmp_path / "missing.wav")]) == 2
    (tmp_path / "junk.wav").write_bytes(b"RIFF????")
    assert predict.main(["--run-dir", str(run), str(tmp_path / "junk.wav")]) == 2
    assert predict.main(["--run-dir", str(run), "--spot", "--threshold", "1.5", str(tmp_path / "tone.wav")]) == 2
    assert predict.main(["--run-dir", str(run), "--spot", "--step-model", "2", str(tmp_path / "long.wav")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error: ") >= 9 and "threshold must be in (0, 1]" in err
    assert "streaming architecture only" in err
    assert "must divide" in err
