"""The shared fit loop on a tiny model: run-dir artifacts, staging, resume, schedules, and learning."""

import json

import keras
import numpy as np
import pytest

from common.evaluation import binary_roc_auc, classification_report, plot_confusion_matrix, plot_history
from common.layers import AttentionPooling, RecurrentStack
from common.pipeline import load_model
from common.rundir import RunDir, RunDirError, open_run_dir
from common.training import TrainConfig, fit, make_optimizer, set_seed


def _task(n=256, t=12, seed=0):
    """Label = sign of the sum of the first feature: needs the whole sequence, linear in it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, 3)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
    return x, y


def _model(cell="gru"):
    inputs = keras.Input((None, 3))
    h = RecurrentStack(cell, (8,), return_sequences=True)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(AttentionPooling(8)(h))
    return keras.Model(inputs, outputs)


# Under JAX the LSTM (the GRU trains there in tests/test_without_tensorflow.py's speech run).
@pytest.mark.parametrize("cell", ["lstm", pytest.param("gru", marks=pytest.mark.one_backend)])
def test_fit_learns_and_writes_run_dir(tmp_path, cell):
    set_seed(0)
    cfg = TrainConfig(epochs=6, batch_size=32, learning_rate=1e-2, warmup_epochs=1)
    x, y = _task()
    xv, yv = _task(128, seed=1)
    model = _model(cell)
    model.compile(make_optimizer(cfg, steps_per_epoch=8), "sparse_categorical_crossentropy", metrics=["accuracy"])
    with RunDir(tmp_path / "run") as run:
        assert run.path.name == "run.partial"
        model, history = fit(model, (x, y), (xv, yv), cfg, run)
        run.write_json("metrics.json", {"accuracy": 1.0})
    run_dir = tmp_path / "run"
    assert not (tmp_path / "run.partial").exists()
    for name in ("model.keras", "history.json", "history.csv", "metrics.json"):
        assert (run_dir / name).is_file(), name
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 6 and len(history["epoch_seconds"]) == 6
    # Majority class is ~50%: the model must clearly beat it.
    assert max(history["val_accuracy"]) > 0.75
    assert history["learning_rate"][-1] < history["learning_rate"][1]  # cosine decay after warmup


@pytest.mark.one_backend
def test_run_dir_refuses_to_clobber_and_keeps_partial_on_failure(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "model.keras").write_text("x")
    with pytest.raises(RunDirError, match="did not write"):
        RunDir(tmp_path / "done").__enter__()
    with pytest.raises(KeyboardInterrupt):
        with RunDir(tmp_path / "crash") as run:
            (run.path / "history.json").write_text("{}")
            (run.path / "backup").mkdir()  # an epoch backup: resumable
            raise KeyboardInterrupt
    assert not (tmp_path / "crash").exists() and (tmp_path / "crash.partial" / "history.json").exists()
    with pytest.raises(RunDirError, match="nothing to resume"):
        RunDir(tmp_path / "nothing", resume=True).__enter__()
    with pytest.raises(RunDirError, match="not finished"):
        open_run_dir(tmp_path / "crash")
    with pytest.raises(RunDirError, match="not found"):
        open_run_dir(tmp_path / "nowhere")
    with pytest.raises(RunDirError, match="no config.json"):
        open_run_dir(tmp_path / "done")


def test_resume_continues_from_backup(tmp_path):
    set_seed(0)
    x, y = _task(64)
    cfg = TrainConfig(epochs=4, batch_size=32)

    class StopAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    model = _model()
    model.compile(make_optimizer(cfg, 2), "sparse_categorical_crossentropy")
    with pytest.raises(KeyboardInterrupt):
        with RunDir(tmp_path / "run") as run:
            fit(model, (x, y), (x, y), cfg, run, extra_callbacks=[StopAfter()])
    model = _model()
    model.compile(make_optimizer(cfg, 2), "sparse_categorical_crossentropy")
    with RunDir(tmp_path / "run", resume=True) as run:
        _, history = fit(model, (x, y), (x, y), cfg, run)
        (run.path / "config.json").write_text("{}")
    assert history["epoch"] == [1, 2, 3, 4]
    assert load_model(tmp_path / "run").count_params() == model.count_params()


@pytest.mark.one_backend
def test_optimizer_options():
    assert isinstance(make_optimizer(TrainConfig(optimizer="sgd", schedule="constant"), 10), keras.optimizers.SGD)
    opt = make_optimizer(TrainConfig(clipnorm=0.5), 10)
    assert isinstance(opt, keras.optimizers.AdamW) and opt.clipnorm == 0.5
    assert make_optimizer(TrainConfig(clipnorm=0.0), 10).clipnorm is None
    # SegRNN's lradj type3 as its loop applies it: 4 epochs at lr, then x0.8 an epoch (10 steps an epoch)
    sched = make_optimizer(TrainConfig(schedule="step", learning_rate=1e-3), 10)._learning_rate
    got = [float(sched(s)) for s in (0, 9, 39, 40, 49, 50, 60)]
    assert got == pytest.approx([1e-3, 1e-3, 1e-3, 8e-4, 8e-4, 6.4e-4, 5.12e-4], rel=1e-6)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert float(restored(55)) == pytest.approx(6.4e-4, rel=1e-6)
    warm = make_optimizer(TrainConfig(schedule="step", learning_rate=1e-3, warmup_epochs=1.0), 10)._learning_rate
    assert float(warm(4)) == pytest.approx(5e-4, rel=1e-6) and float(warm(45)) == pytest.approx(8e-4, rel=1e-6)


@pytest.mark.one_backend
def test_classification_report_and_plots(tmp_path):
    report = classification_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert plot_confusion_matrix(report["confusion_matrix"], report["labels"], tmp_path / "cm.png").stat().st_size > 1000
    assert plot_history({"loss": [2, 1], "val_loss": [2.5, 1.5]}, tmp_path / "h.png").stat().st_size > 1000
    assert binary_roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="both classes"):
        binary_roc_auc([1, 1], [0.2, 0.3])


@pytest.mark.one_backend
def test_time_budget_stops_before_the_epoch_that_would_overrun(tmp_path, capsys):
    import time

    from common.callbacks import TimeBudget

    class SlowEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.4)

    set_seed(0)
    cfg = TrainConfig(epochs=20, batch_size=64, time_budget_minutes=1.0 / 60)  # one second
    x, y = _task(128)
    model = _model()
    model.compile(make_optimizer(cfg, steps_per_epoch=2), "sparse_categorical_crossentropy")
    with RunDir(tmp_path / "run") as run:
        _, history = fit(model, (x, y), None, cfg, run, extra_callbacks=[SlowEpoch()])
    # Each epoch takes >= 0.4 s, so at most 2 fit in the 1 s budget (the first also compiles).
    assert 1 <= len(history["loss"]) <= 2
    assert "time budget: stopping after epoch" in capsys.readouterr().out
    with pytest.raises(Exception, match="time_budget_minutes"):
        with RunDir(tmp_path / "bad") as run:
            fit(model, (x, y), None, TrainConfig(epochs=1, time_budget_minutes=-1), run)
    assert TimeBudget(2.0).seconds == 120.0


@pytest.mark.one_backend
def test_time_budget_ignores_the_first_epochs_compilation(tmp_path, monkeypatch):
    import time
    import types

    import common.callbacks

    # The budget's clock runs 8 s ahead from the end of the first step on: a long XLA compilation
    # as the budget sees it, without the test sleeping through it.
    clock = {"ahead": 0.0}
    monkeypatch.setattr(common.callbacks, "time", types.SimpleNamespace(
        perf_counter=lambda: time.perf_counter() + clock["ahead"]))

    class SlowFirstStep(keras.callbacks.Callback):  # stands in for a long XLA compilation
        def on_train_batch_end(self, batch, logs=None):
            clock["ahead"] = 8.0

    set_seed(0)
    cfg = TrainConfig(epochs=4, batch_size=32, time_budget_minutes=13.5 / 60)
    x, y = _task(512)  # 16 steps per epoch: a robust median
    model = _model()
    model.compile(make_optimizer(cfg, steps_per_epoch=16), "sparse_categorical_crossentropy")
    with RunDir(tmp_path / "run") as run:
        # The 8 s land in one step of epoch 1. Predicting epoch 2 from epoch 1 (>= 8 s) would stop at
        # 8 + 8 > 13.5 s; the median step predicts well under a second, so the other three epochs fit
        # (the ~5 s of slack absorbs compilation and steps on a loaded 2-core machine).
        _, history = fit(model, (x, y), None, cfg, run, extra_callbacks=[SlowFirstStep()])
    assert len(history["loss"]) == 4  # not stopped after epoch 1


@pytest.mark.tf_only  # starts its own JAX process
def test_jax_compilation_cache_is_written_and_can_be_disabled(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = ("import numpy as np, keras\n"
              "from common.backend import enable_jax_compilation_cache\n"
              "print('folder', enable_jax_compilation_cache())\n"
              "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
              "m.compile('sgd', 'mse')\n"
              "m.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0)\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(root),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "LSTM_SUITE_JAX_CACHE": str(tmp_path / "jax")}
    run = lambda e: subprocess.run([sys.executable, "-c", script], env=e, capture_output=True, text=True,  # noqa: E731
                                   timeout=120, cwd=root)
    proc = run(env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"folder {tmp_path / 'jax'}" in proc.stdout and any((tmp_path / "jax").iterdir())
    # Off: decided from the setting before JAX is touched, so this process (TensorFlow) can check it.
    import common.backend

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common.backend.keras.backend, "backend", lambda: "jax")
        for off in ("0", "off"):
            patch.setenv("LSTM_SUITE_JAX_CACHE", off)
            assert common.backend.enable_jax_compilation_cache() is None


@pytest.mark.one_backend
@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", 0), ("learning_rate", 0.0),
                                         ("time_budget_minutes", -1.0), ("steps_per_execution", 0),
                                         ("clipnorm", -1.0)])
def test_train_config_rejects_values_that_would_train_nothing(field, value):
    from common.config import ConfigError

    with pytest.raises(ConfigError, match=f"train.{field} must be"):
        TrainConfig(**{field: value})


@pytest.mark.one_backend
def test_bad_train_value_stops_before_any_run_dir(tmp_path):
    from apps.timeseries import train

    assert train.main(["--config", "tiny", "--set", "train.epochs=0", "--run-dir", str(tmp_path / "run")]) == 2
    assert not any(tmp_path.iterdir())


@pytest.mark.one_backend
def test_run_dir_check_fails_early_without_touching_anything(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "model.keras").write_text("x")
    (tmp_path / "done" / "config.json").write_text("{}")  # a run dir of an older suite version (no run.json)
    with pytest.raises(RunDirError, match="already holds a finished run"):
        RunDir(tmp_path / "done").check()
    with pytest.raises(RunDirError, match="nothing to resume"):
        RunDir(tmp_path / "new", resume=True).check()
    assert RunDir(tmp_path / "done", overwrite=True).check() and RunDir(tmp_path / "new").check()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done"]  # nothing created
    # An ensemble member that finished (SubRun) is something to resume from.
    (tmp_path / "ens.partial" / "members" / "1").mkdir(parents=True)
    (tmp_path / "ens.partial" / "members" / "1" / "model.keras").write_text("x")
    (tmp_path / "ens.partial" / "config.json").write_text("{}")
    assert RunDir(tmp_path / "ens", resume=True).check()


def test_run_callbacks_let_the_jax_loop_run_ahead(tmp_path):
    """No callback of a run may need a step's results at the end of that step: one that does makes
    Keras' JAX loop wait for the device after every step (measured on CPU: +10 % per step)."""
    from keras.src.utils.python_utils import is_default

    from common.callbacks import make_callbacks

    with RunDir(tmp_path / "run") as run:
        callbacks = make_callbacks(TrainConfig(epochs=1, time_budget_minutes=5.0), run)
    blocking = [type(cb).__name__ for cb in callbacks if not getattr(cb, "async_safe", False)
                and not (is_default(cb.on_train_batch_end) and is_default(cb.on_batch_end))]
    assert blocking == []
    if keras.backend.backend() == "jax":  # the rule above is Keras' own: its JAX loop then dispatches asynchronously
        assert keras.callbacks.CallbackList(callbacks)._async_train


def test_nan_loss_still_stops_training(tmp_path):
    set_seed(0)
    x, y = _task(128)
    x[0, 0, 0] = np.nan  # the first step's loss, and every weight after it, is NaN
    model = _model()
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    from common.errors import DivergedError

    with pytest.raises(DivergedError, match="diverged"):
        with RunDir(tmp_path / "run") as run:
            fit(model, (x, y), None, TrainConfig(epochs=50, batch_size=16, seed=0), run, extra_callbacks=[counter := _Epochs()])
    assert counter.epochs == 1  # stopped after the epoch with the first NaN
    assert not any(tmp_path.iterdir())  # and nothing was published or kept


class _Epochs(keras.callbacks.Callback):
    epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


@pytest.mark.one_backend
@pytest.mark.parametrize("stop_after", [0, 1])  # 0: all 3 epochs; 1: a callback stops training after epoch 1
def test_ema_weights_are_validated_kept_and_saved(tmp_path, stop_after):
    momentum = 0.9

    class Raw(keras.callbacks.Callback):  # the EMA of the raw weights after each step, as Keras defines it
        average = None

        def on_train_batch_end(self, batch, logs=None):
            w = [np.array(v, dtype=np.float64) for v in self.model.trainable_weights]
            m = momentum if self.average is not None else 0.0
            self.average = [m * a + (1 - m) * b for a, b in zip(self.average or w, w)]
            self.last = w

        def on_epoch_end(self, epoch, logs=None):
            if stop_after and epoch + 1 == stop_after:
                self.model.stop_training = True

    set_seed(0)
    cfg = TrainConfig(epochs=3, batch_size=32, learning_rate=1e-2, ema_momentum=momentum)
    model = _model()
    model.compile(make_optimizer(cfg, steps_per_epoch=8), "sparse_categorical_crossentropy")
    raw = Raw()
    with RunDir(tmp_path / "run") as run:
        # Stopped early without validation (no best checkpoint to fall back on): KeepEMAOnStop's case.
        val = None if stop_after else _task(64, seed=1)
        model, history = fit(model, _task(256), val, cfg, run, extra_callbacks=[raw])
    assert len(history["loss"]) == (stop_after or 3)
    saved = keras.models.load_model(tmp_path / "run" / "model.keras").trainable_weights
    # model.keras holds the average of the steps (validated at each epoch end), not the last step's weights.
    for s_, a in zip(saved, raw.average):
        np.testing.assert_allclose(np.array(s_), a, atol=1e-5)
    assert max(float(np.abs(np.array(s_) - b).max()) for s_, b in zip(saved, raw.last)) > 1e-3
