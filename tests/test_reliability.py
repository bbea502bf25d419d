"""Regression table for the reliability probe (issue 20): each bad input the probe found gives a
one-line error naming the problem (exit 2 from the CLI) or the right result, and leaves nothing
half-written. Items 1-3 (data loss) and the run-dir checks live in tests/common/test_rundir.py;
forecasting's filled-in input windows in tests/timeseries/test_pipeline.py."""

import json
import tarfile

import keras
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from common.errors import ConfigError, DataError, RunDirError, UserError


def _sentiment_run(path):
    """A finished-looking sentiment run dir with an untrained tiny model (no fit needed)."""
    from apps.nlp.sentiment import features
    from apps.nlp.sentiment.config import PRESETS
    from apps.nlp.sentiment.model import build_classifier
    from common.config import save_config

    path.mkdir(parents=True)
    cfg = PRESETS["tiny"]
    save_config(cfg, path / "config.json")
    keras.utils.set_random_seed(0)
    vocabulary = ["", "[UNK]", "good", "bad", "film"]
    build_classifier(cfg.model, len(vocabulary), 2).save(path / "model.keras")
    features.save_vocabulary(vocabulary, path / "vocabulary.txt")
    (path / "labels.json").write_text(json.dumps({"label_names": ["negative", "positive"]}))
    (path / "metrics.json").write_text(json.dumps({"primary_split": "test"}))
    (path / "run.json").write_text(json.dumps({"suite": "lstm-suite", "app": "sentiment"}))  # as train writes it
    return path


# 4. Non-finite audio is refused with the file name.
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_audio_is_refused_by_name(tmp_path, bad):
    from apps.speech.data import load_audio

    clip = np.zeros(8000, dtype="float32")
    clip[100] = bad
    sf.write(tmp_path / "bad.wav", clip, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="bad.wav"):
        load_audio(tmp_path / "bad.wav")


# 5. Archives are cached by content: same name, other bytes -> other extraction; updated in place -> re-read.
def test_archive_cache_is_keyed_by_content(tmp_path):
    from common.data import extract_archive

    def make(folder, text):
        (folder / "src").mkdir(parents=True, exist_ok=True)
        (folder / "src" / "a.txt").write_text(text)
        with tarfile.open(folder / "clips.tar.gz", "w:gz") as tar:
            tar.add(folder / "src" / "a.txt", arcname="a.txt")
        return folder / "clips.tar.gz"

    cache = tmp_path / "cache"
    cache.mkdir()
    a, b = make(tmp_path / "a", "first"), make(tmp_path / "b", "second, longer")
    assert (extract_archive(a, cache) / "a.txt").read_text() == "first"
    assert (extract_archive(b, cache) / "a.txt").read_text() == "second, longer"
    make(tmp_path / "a", "updated in place")
    assert (extract_archive(a, cache) / "a.txt").read_text() == "updated in place"
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="broken.tar.gz"):
        extract_archive(tmp_path / "broken.tar.gz", cache)


# 6. A CSV without a date column is not read as nanosecond timestamps.
def test_numeric_first_column_is_not_taken_as_dates():
    from apps.timeseries.config import DataConfig
    from apps.timeseries.data import series_from_frame

    frame = pd.DataFrame({"step": np.arange(200), "load": np.sin(np.arange(200) / 5.0)})
    with pytest.raises(DataError, match="no date column"):
        series_from_frame(frame, DataConfig(source="csv"), "load.csv")


# 8. A run dir is checked when opened: config, labels and model against each other.
def test_run_dir_contents_are_checked_against_each_other(tmp_path):
    from common.pipeline import load_run

    run = _sentiment_run(tmp_path / "run")
    assert load_run(run, "sentiment").state["label_names"] == ["negative", "positive"]
    config = (run / "config.json").read_text()
    (run / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="config.json"):  # not silently the default preset
        load_run(run, "sentiment")
    (run / "config.json").write_text("not json at all")
    with pytest.raises(ConfigError, match="config.json.*not valid JSON"):  # 10: the file is named
        load_run(run, "sentiment")
    (run / "config.json").write_text(config)
    (run / "labels.json").write_text(json.dumps({"label_names": ["a", "b", "c"]}))
    with pytest.raises(RunDirError, match="3"):  # not an IndexError at prediction time
        load_run(run, "sentiment")
    (run / "labels.json").write_text(json.dumps({"label_names": ["negative", "positive"]}))
    with pytest.raises(RunDirError, match="holds a sentiment run"):
        load_run(run, "speech")


# 10. A truncated model.keras is "damaged", not "file not found".
def test_truncated_model_is_reported_as_damaged(tmp_path):
    from common.pipeline import load_run

    run = _sentiment_run(tmp_path / "run")
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunDirError, match="damaged"):
        load_run(run, "sentiment")


# 9/10. The CLI turns each of these into a one-line error (exit 2) without a traceback or a run dir.
CLI_CASES = [
    ("apps.timeseries.train", ["--set", "eval.backtest_windows=-1"], "backtest_windows"),
    ("apps.timeseries.train", ["--set", "data.seasonal_period=-3"], "seasonal_period"),
    ("apps.speech.train", ["--set", "model.conv_filters=(-2,)"], "conv_filters"),
    ("apps.timeseries.train", ["--set", "model.quantiles=(0.5, 1.5)"], "quantiles"),
]


@pytest.mark.parametrize("module,argv,word", CLI_CASES, ids=[c[2] for c in CLI_CASES])
def test_bad_values_are_named_one_line_errors(module, argv, word, tmp_path, capsys):
    import importlib

    main = importlib.import_module(module).main
    assert main(["--config", "tiny", "--run-dir", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and word in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_a_run_dir_that_is_a_file_and_a_corrupt_data_archive_are_one_line_errors(tmp_path, capsys):
    from apps.nlp.sentiment import evaluate as sentiment_evaluate
    from apps.speech import evaluate as speech_evaluate

    (tmp_path / "file").write_text("x")
    assert sentiment_evaluate.main(["--run-dir", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    run = _sentiment_run(tmp_path / "run")
    assert speech_evaluate.main(["--run-dir", str(run)]) == 2  # a sentiment run opened by speech
    assert "sentiment" in capsys.readouterr().err


def test_translation_input_file_that_is_not_utf8_names_the_file(tmp_path):
    from common.textio import read_text_lines

    (tmp_path / "in.txt").write_bytes(b"hola\n\xff\xfe mundo\n")
    with pytest.raises(DataError, match=r"in.txt.*line 2"):
        read_text_lines(tmp_path / "in.txt", "--input-file")
    assert issubclass(DataError, UserError)


def test_building_publishes_only_finished_folders(tmp_path):
    import pytest

    from common.data import building

    target = tmp_path / "cache" / "thing-1"
    with pytest.raises(RuntimeError):
        with building(target, ".thing-") as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("crash midway")
    assert not target.exists() and list((tmp_path / "cache").iterdir()) == []
    with building(target, ".thing-", "v1\n") as tmp:
        (tmp / "whole.bin").write_bytes(b"y")
    assert (target / ".complete").read_text() == "v1\n" and (target / "whole.bin").read_bytes() == b"y"
    # A second builder that finishes after the first keeps the first's folder and leaves no temporary one.
    with building(target, ".thing-") as tmp:
        (tmp / "other.bin").write_bytes(b"z")
    assert (target / "whole.bin").exists() and sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["thing-1"]
