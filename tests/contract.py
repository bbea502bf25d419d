"""The contract every app keeps, checked on a run dir that app's own pipeline test has just trained
(one tiny training per app for both): the manifest, load_run -> predict / evaluate / export through the
Python API, evaluate through the `lstm-suite` CLI, and the run dir refused by every other app.

Each app's pipeline test ends with `check_app_contract(app, run_dir, tmp_path, capsys)`;
tests/test_app_contract.py checks that every registered app does, and trains one app through `train()`."""

import json

import numpy as np
import pytest

from common.errors import RunDirError
from common.pipeline import get_app, load_run


def _inputs(app):
    t = np.arange(8000) / 16000
    return {
        "speech": np.stack([0.3 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)]).astype("float32"),
        "sentiment": ["a fine film", "not good at all"],
        "translation": ["where is the station?", ""],
        "forecasting": None,
        "language_model": "the cat",
    }[app]


def _check_prediction(app, result, cfg):
    if app == "speech":
        assert len(result) == 2 and all(0 < r["probability"] <= 1 and r["label"] == r["top"][0][0] for r in result)
    elif app == "sentiment":
        assert [r["text"] for r in result] == ["a fine film", "not good at all"]
    elif app == "translation":
        assert len(result) == 2 and result[1].text == "" and isinstance(result[0].text, str)  # empty in, empty out
    elif app == "forecasting":
        assert len(result) == cfg.data.horizon and list(result.columns)[0] == "date"
    else:
        assert len(result) == 5 and result[0]["probability"] >= result[-1]["probability"]


def check_app_contract(app: str, path, tmp_path, capsys, *, export: bool = True, backend: str = "tensorflow",
                       options: dict | None = None):
    """`export=False` where the caller has just exported the same run through the CLI (common.pipeline.export
    serves both); `options`: evaluate options, passed to the API as keywords and to the CLI as flags
    (`{"beam_size": 1}` -> `--beam-size 1`)."""
    from common.cli import main as cli

    name = get_app(app).name
    manifest = json.loads((path / "run.json").read_text())
    assert manifest["app"] == name and manifest["backend"] == backend
    assert {"config.json", "model.keras", "metrics.json", "history.json", "data.json"} <= set(manifest["files"])

    opened = load_run(path)
    assert opened.app.name == name and opened.path == path
    _check_prediction(name, opened.predict(_inputs(name)), opened.cfg)
    split = opened.app.resolve_split(opened, None)
    options = options or {}
    flags = [arg for key, value in options.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    metrics = opened.evaluate(out=tmp_path / "api_eval", **options)
    assert metrics["split"] == split and metrics["app"] == name
    assert json.loads((tmp_path / "api_eval" / "metrics.json").read_text())["app"] == name
    if export:
        report = opened.export(tmp_path / "api_export", formats=["saved_model"], num_examples=2)
        assert report and json.loads((tmp_path / "api_export" / "export.json").read_text())["app"] == name

    capsys.readouterr()
    assert cli([name, "evaluate", "--run-dir", str(path), "--out", str(tmp_path / "cli_eval"), *flags]) == 0
    assert json.loads((tmp_path / "cli_eval" / "metrics.json").read_text())["split"] == split
    from apps import APPS

    for other in sorted(set(APPS) - {name}):  # a run dir opens only for the app that wrote it
        with pytest.raises(RunDirError, match=f"holds a {name} run"):
            load_run(path, other)
        assert cli([other, "evaluate", "--run-dir", str(path)]) == 2
        assert f"holds a {name} run" in capsys.readouterr().err
