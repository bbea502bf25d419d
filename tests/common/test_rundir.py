"""Run dirs never destroy what the suite did not write, lock their staging dir, and resume a finished fit."""

import json
import os

import keras
import numpy as np
import pytest

from common.errors import DivergedError
from common.rundir import MANIFEST, RunDir, RunDirError, _Lock, open_run_dir, read_manifest
from common.training import TrainConfig, fit, make_optimizer

# Run-dir bookkeeping is backend-independent; the fit loop itself is checked under JAX in test_training.
pytestmark = pytest.mark.one_backend


def _finished_run(path, app="speech", extra=()):
    with RunDir(path, app=app, config={"a": 1}) as run:
        (run.path / "model.keras").write_text("m")
        (run.path / "history.json").write_text("{}")
    for name in extra:
        (path / name).write_text("user")
    return path


def test_overwrite_never_deletes_a_folder_the_suite_did_not_write(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(RunDirError, match="did not write"):
            RunDir(victim, app="speech", overwrite=overwrite).__enter__()
    assert (victim / "notes.txt").read_text() == "x"
    assert not (tmp_path / "victim.partial").exists()


def test_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    for path in (".", "..", str(tmp_path), "./"):
        with pytest.raises(RunDirError, match="current folder or one of its parents"):
            RunDir(path, overwrite=True).check()
    assert (work / "keep.txt").exists() and not (tmp_path / "a" / "..partial").exists()


def test_overwrite_replaces_only_a_suite_run_holding_only_suite_files(tmp_path):
    run = _finished_run(tmp_path / "run")
    manifest = read_manifest(run)
    assert manifest["app"] == "speech" and manifest["status"] == "finished" and "model.keras" in manifest["files"]
    assert manifest["backend"] == keras.backend.backend() and "keras" in manifest["versions"]
    with pytest.raises(RunDirError, match="already holds a finished speech run.*--overwrite"):
        RunDir(run, app="speech").check()
    (run / "eval").mkdir()  # what evaluate writes later is the suite's too
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"did not write \(notes.txt\)"):
        RunDir(run, overwrite=True).check()
    (run / "notes.txt").unlink()
    with RunDir(run, app="speech", overwrite=True, config={"a": 2}) as new:
        (new.path / "model.keras").write_text("m2")
    assert json.loads((run / "config.json").read_text()) == {"a": 2} and not (run / "eval").exists()


def test_a_file_or_an_unwritable_place_is_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        RunDir(tmp_path / "file").check()
    with pytest.raises(RunDirError, match="cannot write the run dir"):
        RunDir("/proc/lstm-suite-run").check()
    with pytest.raises(RunDirError, match="cannot write the run dir"):
        RunDir(tmp_path / "file" / "run").check()


def test_a_second_training_into_the_same_run_dir_fails_at_once(tmp_path):
    first = RunDir(tmp_path / "run", app="speech").__enter__()
    (first.path / "history.json").write_text("{}")
    with pytest.raises(RunDirError, match=rf"another training is writing .*pid {os.getpid()}"):
        RunDir(tmp_path / "run", app="speech").check()
    with pytest.raises(RunDirError, match="another training"):
        RunDir(tmp_path / "run", app="speech", overwrite=True).__enter__()
    assert (first.path / "history.json").exists(), "the second run deleted the first one's files"
    first.__exit__(None, None, None)
    assert (tmp_path / "run" / "history.json").exists()


def test_a_stale_unlocked_staging_dir_of_the_suite_is_replaced(tmp_path):
    stale = RunDir(tmp_path / "run", app="speech").__enter__()
    (stale.path / "history.json").write_text("{}")
    stale._release()  # as if its process had died
    with RunDir(tmp_path / "run", app="speech") as run:
        assert not (run.path / "history.json").exists()
    lock = _Lock(tmp_path / "run")
    lock.release()


def _task(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5, 3)).astype("float32")
    return x, (x.sum(axis=(1, 2)) > 0).astype("int32")


def _model(cfg):
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(2, activation="softmax")])
    model.compile(make_optimizer(cfg, 2), "sparse_categorical_crossentropy")
    return model


def test_an_interrupt_after_fit_resumes_from_the_staged_model(tmp_path, capsys):
    cfg = TrainConfig(epochs=2, batch_size=32)
    x, y = _task()
    with pytest.raises(KeyboardInterrupt):
        with RunDir(tmp_path / "run", app="t", config={"c": 1}) as run:
            trained, _ = fit(_model(cfg), (x, y), (x, y), cfg, run)
            raise KeyboardInterrupt  # during the evaluation after training
    assert "--resume" in capsys.readouterr().err
    assert not (tmp_path / "run.partial" / "backup").exists() and (tmp_path / "run.partial" / "model.keras").exists()
    with pytest.raises(RunDirError, match=r"different config.*c: 1 -> 2"):
        RunDir(tmp_path / "run", app="t", config={"c": 2}, resume=True).check()
    fresh = _model(cfg)
    with RunDir(tmp_path / "run", app="t", config={"c": 1}, resume=True) as run:
        resumed, history = fit(fresh, (x, y), (x, y), cfg, run)
    assert resumed is fresh and len(history["loss"]) == 2  # no epoch trained again
    for a, b in zip(resumed.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "training had finished" in capsys.readouterr().out
    assert open_run_dir(tmp_path / "run", app="t") == tmp_path / "run"


def test_an_interrupt_before_any_epoch_leaves_nothing(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        with RunDir(tmp_path / "run", app="t"):
            raise KeyboardInterrupt
    assert not any(tmp_path.iterdir()) and "nothing was kept" in capsys.readouterr().err


def test_a_diverged_training_is_not_published(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e12, clipnorm=0.0, optimizer="sgd", schedule="constant")
    x, y = _task()
    with pytest.raises(DivergedError, match="training diverged.*learning_rate"):
        with RunDir(tmp_path / "run", app="t") as run:
            fit(_model(cfg), (x * 1e3, y), (x, y), cfg, run)
    assert not any(tmp_path.iterdir())


def test_opening_checks_the_app_and_the_model_checksum(tmp_path):
    run = _finished_run(tmp_path / "run", app="speech")
    with pytest.raises(RunDirError, match="holds a speech run, not a sentiment one"):
        open_run_dir(run, app="sentiment")
    (run / "model.keras").write_text("another model")
    with pytest.raises(RunDirError, match="not the model this run trained"):
        open_run_dir(run, app="speech")
    assert (run / MANIFEST).is_file()
