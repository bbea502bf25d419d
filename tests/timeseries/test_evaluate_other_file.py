"""`evaluate --data FILE`: a trained forecaster scored on another file (e.g. other years of the same sensors),
read by column name and scaled as the model was trained; bad files are one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest

from apps.timeseries import evaluate, forecast, train

pytestmark = pytest.mark.xdist_group("other_file_run")  # one worker, so the module's tiny run is trained once


def _frame(periods: int = 900, start: str = "2021-01-01", freq: str = "h", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(periods)
    return pd.DataFrame({
        "date": pd.date_range(start, periods=periods, freq=freq),
        "load": 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(periods),
        "temp": 20 + 5 * np.cos(2 * np.pi * t / 24) + 0.5 * rng.standard_normal(periods),
    })


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A tiny two-channel run trained on a CSV (70/10/20 split), and that CSV."""
    root = tmp_path_factory.mktemp("other_file")
    path = root / "sensors.csv"
    _frame().to_csv(path, index=False)
    run = root / "run"
    assert train.main(["--config", "tiny", "--run-dir", str(run), "--set", "data.source=csv", "--set", f"data.path={path}",
                       "--set", "model.quantiles=()"]) == 0
    return run, path


def _scored(run, data, out):
    assert evaluate.main(["--run-dir", str(run), "--data", str(data), "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_the_runs_own_test_rows_as_a_file_score_exactly_as_its_test_split(csv_run, tmp_path):
    run, path = csv_run
    own = json.loads((run / "metrics.json").read_text())
    start, end = own["borders"]["test"]
    pd.read_csv(path).iloc[start:end].to_csv(tmp_path / "test_rows.csv", index=False)
    scored = _scored(run, tmp_path / "test_rows.csv", tmp_path / "eval")
    # Same windows, the run's scaler (not one refitted on the file), DLinear and MASE from the run's training rows.
    assert scored["test_windows"] == own["test_windows"] and scored["data"] == str(tmp_path / "test_rows.csv")
    for name in ("model", "naive", "seasonal_naive", "dlinear"):
        for metric in ("mse", "mae", "mase"):
            assert scored["test"][name][metric] == pytest.approx(own["test"][name][metric], rel=1e-6), (name, metric)


def test_the_printed_table_names_what_it_scored(csv_run, tmp_path, capsys):
    run, path = csv_run
    capsys.readouterr()
    assert evaluate.main(["--run-dir", str(run), "--split", "validation", "--out", str(tmp_path / "val")]) == 0
    own = json.loads((run / "metrics.json").read_text())
    assert f"(validation, {own['val_windows']} windows)" in capsys.readouterr().out  # it said "test"
    _scored(run, path, tmp_path / "file")
    assert "(sensors.csv, " in capsys.readouterr().out


def test_another_period_is_read_by_column_name(csv_run, tmp_path):
    run, _ = csv_run
    later = _frame(periods=400, start="2023-06-01", seed=1)
    later.to_csv(tmp_path / "later.csv", index=False)
    # The same values with the columns in the other order and one more column: read as the model was trained.
    later[["date", "temp", "load"]].assign(extra=1.0).to_csv(tmp_path / "shuffled.csv", index=False)
    plain = _scored(run, tmp_path / "later.csv", tmp_path / "plain")
    shuffled = _scored(run, tmp_path / "shuffled.csv", tmp_path / "shuffled")
    assert plain["test_windows"] == 400 - 24 - 8 + 1  # every window of the file
    assert shuffled["test"] == plain["test"] and shuffled["channels"] == ["load", "temp"]
    assert plain["test"]["model"]["mse"] < plain["test"]["naive"]["mse"]  # the trained model, not noise
    # forecast reads the file the same way
    for name in ("later", "shuffled"):
        assert forecast.main(["--run-dir", str(run), "--set", f"data.path={tmp_path / name}.csv",
                              "--out", str(tmp_path / f"{name}_forecast.csv")]) == 0
    assert (tmp_path / "later_forecast.csv").read_text() == (tmp_path / "shuffled_forecast.csv").read_text()


def test_bad_other_files_are_one_line_errors(csv_run, tmp_path, capsys):
    run, _ = csv_run
    later = _frame(periods=200, start="2023-06-01", seed=2)
    cases = {
        "no_temp.csv": (later.drop(columns="temp"), "column(s) ['temp'] not found"),
        "quarter_hours.csv": (_frame(periods=200, freq="15min"), "resample the file"),
        "short.csv": (later.iloc[:20], "one window of the run needs 32"),
        "header_only.csv": (later.iloc[:0], "no rows under the header"),
    }
    for name, (frame, _) in cases.items():
        frame.to_csv(tmp_path / name, index=False)
    later.to_csv(tmp_path / "semicolons.csv", index=False, sep=";")
    cases["semicolons.csv"] = (None, "separated by semicolons")
    cases["missing.csv"] = (None, "no such file")
    capsys.readouterr()
    for name, (_, message) in cases.items():
        assert evaluate.main(["--run-dir", str(run), "--data", str(tmp_path / name), "--out", str(tmp_path / "x")]) == 2, name
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, (name, err)
    later.to_csv(tmp_path / "later.csv", index=False)
    assert evaluate.main(["--run-dir", str(run), "--data", str(tmp_path / "later.csv"), "--split", "validation"]) == 2
    assert "leave --split out" in capsys.readouterr().err
    # The run's own split rule on a short file (--set data.path): the advice is --data, not a shorter window.
    assert evaluate.main(["--run-dir", str(run), "--set", f"data.path={tmp_path / 'short.csv'}"]) == 2
    err = capsys.readouterr().err
    assert "evaluate --data FILE" in err and "shorten" not in err
    # A value far outside anything trained on is scored, and named in a warning; gaps are reported.
    odd = later.copy()
    odd.loc[50, "load"] = 1e9
    odd.loc[60:62, "temp"] = np.nan
    odd.to_csv(tmp_path / "odd.csv", index=False)
    assert evaluate.main(["--run-dir", str(run), "--data", str(tmp_path / "odd.csv"), "--out", str(tmp_path / "odd")]) == 0
    captured = capsys.readouterr()
    assert "1 value(s) more than 100 training standard deviations" in captured.err and "'load'" in captured.err
    assert "note: 3 missing value(s)" in captured.out


def test_a_run_dir_from_before_ensembles_still_opens(csv_run, tmp_path):
    """Run dirs written before model.ensemble_size and model.init existed (2026-12-07) lack those keys."""
    import shutil

    from common.pipeline import load_run

    run, path = csv_run
    old = tmp_path / "old_run"
    shutil.copytree(run, old)
    config = json.loads((old / "config.json").read_text())
    model = config["config"]["model"] if "config" in config else config["model"]
    del model["ensemble_size"], model["init"]
    (old / "config.json").write_text(json.dumps(config))
    opened = load_run(old).cfg.model
    assert (opened.ensemble_size, opened.init) == (1, "glorot")  # what every run did before the fields
    assert evaluate.main(["--run-dir", str(old), "--out", str(tmp_path / "eval")]) == 0
