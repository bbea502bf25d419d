"""The contract every app keeps: one path through common.pipeline for all of them.

Tiny training through the Python API, then load_run -> predict / evaluate / export, the same
through the `lstm-suite` CLI, and a run dir refused by every other app. Settings are cut to the
fastest that still train (the accuracy bounds are in each app's own tests)."""

import json

import numpy as np
import pytest

from common.errors import RunDirError
from common.pipeline import get_app, load_run, train

FAST = {
    "speech": ["train.epochs=1", "data.synthetic_speakers=6", "data.synthetic_repeats=1"],
    "sentiment": [],
    "translation": ["train.epochs=1", "data.num_examples=200"],
    "forecasting": [],
    "language_model": ["train.epochs=1"],
}


def _inputs(app):
    t = np.arange(8000) / 16000
    return {
        "speech": np.stack([0.3 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)]).astype("float32"),
        "sentiment": ["a fine film", "not good at all"],
        "translation": ["where is the station?", ""],
        "forecasting": None,
        "language_model": "the cat",
    }[app]


def _check_prediction(app, result):
    if app == "speech":
        assert len(result) == 2 and all(0 < r["probability"] <= 1 and r["label"] == r["top"][0][0] for r in result)
    elif app == "sentiment":
        assert [r["text"] for r in result] == ["a fine film", "not good at all"]
    elif app == "translation":
        assert len(result) == 2 and result[1].text == "" and isinstance(result[0].text, str)  # empty in, empty out
    elif app == "forecasting":
        assert len(result) == 8 and list(result.columns)[0] == "date"
    else:
        assert len(result) == 5 and result[0]["probability"] >= result[-1]["probability"]


@pytest.mark.tf_only  # export runs on TensorFlow
@pytest.mark.parametrize("app", sorted(FAST))
def test_every_app_through_the_api_and_the_cli(app, tmp_path, monkeypatch, capsys):
    from common.cli import main as cli

    monkeypatch.setenv("LSTM_SUITE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "run"
    run = train(app, "tiny", path, overrides=FAST[app])
    assert run.path == path and run.app.name == get_app(app).name
    manifest = json.loads((path / "run.json").read_text())
    assert manifest["app"] == run.app.name and manifest["backend"] == "tensorflow"
    assert {"config.json", "model.keras", "metrics.json", "history.json", "data.json"} <= set(manifest["files"])

    opened = load_run(path)
    assert opened.app.name == run.app.name and opened.cfg == run.cfg
    _check_prediction(app, opened.predict(_inputs(app)))
    metrics = opened.evaluate()
    split = opened.app.resolve_split(opened, None)
    assert json.loads((path / "eval" / split / "metrics.json").read_text())["app"] == run.app.name
    assert metrics["split"] == split
    report = opened.export(tmp_path / "export", formats=["saved_model"], num_examples=2)
    assert json.loads((tmp_path / "export" / "export.json").read_text())["app"] == run.app.name
    assert report

    capsys.readouterr()
    assert cli([app, "evaluate", "--run-dir", str(path), "--out", str(tmp_path / "cli_eval")]) == 0
    assert (tmp_path / "cli_eval" / "metrics.json").is_file()
    for other in sorted(set(FAST) - {app}):  # a run dir opens only for the app that wrote it
        with pytest.raises(RunDirError, match=f"holds a {run.app.name} run"):
            load_run(path, other)
        assert cli([other, "evaluate", "--run-dir", str(path)]) == 2
        assert f"holds a {run.app.name} run" in capsys.readouterr().err
