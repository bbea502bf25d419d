"""common.pipeline.fit_ensemble, the member loop the sentiment and forecasting ensembles share."""

import dataclasses
import types

import keras
import numpy as np
import pytest

from common.pipeline import Job, fit_ensemble
from common.rundir import write_json
from common.training import TrainConfig


@dataclasses.dataclass(frozen=True)
class _Config:
    train: TrainConfig = TrainConfig(seed=7)


def _member(seed: int, name: str) -> keras.Model:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs), name=name)
    model.get_layer("dense").set_weights([np.full((3, 2), float(seed), "float32"), np.zeros(2, "float32")])
    return model


def _average(members):
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Average()([m(inputs) for m in members]), name="ensemble")


@pytest.mark.one_backend
def test_members_resume_where_they_stopped_and_the_average_is_kept(tmp_path):
    run = types.SimpleNamespace(path=tmp_path, write_json=lambda name, obj: write_json(tmp_path / name, obj))
    job = Job(app=None, cfg=_Config(), dist=types.SimpleNamespace(mode="single"), run=run)
    calls = []

    def fit_one(member_job, k, stop_at=None):
        calls.append((k, member_job.cfg.train.seed, member_job.run.path.relative_to(tmp_path).as_posix()))
        if k == stop_at:
            raise KeyboardInterrupt
        model = _member(member_job.cfg.train.seed, f"member_{k + 1}")
        model.save(str(member_job.run.path / "model.keras"))  # what common.training.fit leaves when it finishes
        write_json(member_job.run.path / "history.json", {"loss": [float(k)]})
        return model, {"loss": [float(k)]}

    with pytest.raises(KeyboardInterrupt):  # stopped in the second member: the first is finished
        fit_ensemble(job, 3, lambda j, k: fit_one(j, k, stop_at=1), _average)
    assert calls == [(0, 7, "members/1"), (1, 8, "members/2")]
    assert not (tmp_path / "model.keras").exists()

    calls.clear()
    ensemble = fit_ensemble(job, 3, fit_one, _average)
    assert calls == [(1, 8, "members/2"), (2, 9, "members/3")]  # member 1 loaded, not retrained
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(ensemble.model.predict_on_batch(x), np.full((1, 2), 3 * 8.0), atol=1e-5)  # seeds 7, 8, 9
    assert [m.name for m in ensemble.members] == ["member_1", "member_2", "member_3"]
    assert ensemble.history["members"] == [{"loss": [0.0]}, {"loss": [1.0]}, {"loss": [2.0]}]
    assert (tmp_path / "model.keras").is_file() and not list(tmp_path.glob("members/*/model.keras"))

    calls.clear()  # stopped after averaging (e.g. in evaluation): --resume continues from the saved average
    again = fit_ensemble(job, 3, fit_one, _average, compile=False)
    assert calls == [] and [m.name for m in again.members] == ["member_1", "member_2", "member_3"]
    np.testing.assert_allclose(again.model.predict_on_batch(x), ensemble.model.predict_on_batch(x), atol=1e-6)
