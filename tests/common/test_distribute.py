"""Scale-out on the real engines: tf.distribute (mirrored, multi-worker) and keras.distribution (JAX).

Each case runs in a subprocess because device layout is fixed when the backend starts.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Subprocesses pick their own backend, so one pass (the TF one) covers both engines.
pytestmark = pytest.mark.tf_only

SCRIPT = Path(__file__).with_name("dist_script.py")
ROOT = SCRIPT.parent.parent.parent


def _run(args, env=None, timeout=240):
    """dist_script.py's results, one dict per MODE:BATCH:DIR run, in order."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(l[len("RESULT "):]) for l in proc.stdout.splitlines() if l.startswith("RESULT ")]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_two_cpus_matches_one_device_and_takes_a_first_batch_that_splits_unevenly(tmp_path):
    # One process on two logical CPUs: the default strategy's reference first, then MirroredStrategy;
    # then (same process, one TensorFlow start-up) a run whose first batch of 7 splits 4 + 3.
    single, mirrored, odd = _run(["--logical-cpus", "2", f"none:32:{tmp_path / 'a'}", f"mirrored:16:{tmp_path / 'b'}",
                                  f"mirrored_odd:0:{tmp_path / 'c'}"], {"KERAS_BACKEND": "tensorflow"})
    assert single["replicas"] == 1 and mirrored["replicas"] == 2 and mirrored["global_batch"] == 32
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=1e-3)
    assert single["loss"][-1] < single["loss"][0]
    assert (tmp_path / "b" / "model.keras").is_file()
    # Without prepare_model's workaround Keras fails building metrics: "AddN ... [4,3] != [3,3]".
    assert odd["replicas"] == 2 and len(odd["loss"]) == 2 and all(np.isfinite(odd["loss"]))
    assert (tmp_path / "c" / "model.keras").is_file()


def test_jax_data_parallel_four_devices_matches_one_device(tmp_path):
    # One process with four host devices: the reference on the default device, then data parallel over all.
    single, parallel = _run([f"none:32:{tmp_path / 'a'}", f"data_parallel:8:{tmp_path / 'b'}"],
                            {"KERAS_BACKEND": "jax", "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"})
    assert single["replicas"] == 1 and parallel["replicas"] == 4 and parallel["global_batch"] == 32
    assert parallel["loss"] == pytest.approx(single["loss"], rel=1e-3)


@pytest.mark.slow
def test_two_worker_multi_worker_mirrored_writes_one_model(tmp_path):
    (single,) = _run([f"none:32:{tmp_path / 'single'}"], {"KERAS_BACKEND": "tensorflow"})
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, str(SCRIPT), f"multi_worker:16:{tmp_path / 'run'}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT))
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads([l for l in out.splitlines() if l.startswith("RESULT ")][-1][7:]))
    finally:
        for proc in procs:
            proc.kill()
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 and r["global_batch"] == 32 for r in results)
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-4)
    assert results[0]["loss"] == pytest.approx(single["loss"], rel=1e-3)
    assert (tmp_path / "run" / "model.keras").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "single"]


def test_wrong_backend_is_a_clear_error():
    import keras

    from common.distribute import setup_distribution
    from common.training import TrainConfig

    other = "data_parallel" if keras.backend.backend() == "tensorflow" else "mirrored"
    with pytest.raises(ValueError, match="needs the .* backend"):
        setup_distribution(TrainConfig(distribution=other))


def test_shardable_trims_to_a_multiple_of_the_devices():
    import keras
    import numpy as np

    from common.distribute import Distribution, shardable

    dist = Distribution("data_parallel", 4, True, 3, 1.0)
    x, y = np.arange(23), np.arange(23) * 2
    tx, ty = shardable((x, y), dist)
    assert len(tx) == len(ty) == 20 and (ty == tx * 2).all()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            n = (10, 7, 2)[i]
            return np.zeros((n, 2)), np.zeros(n)

    wrapped = shardable(Batches(), dist)
    assert len(wrapped) == 2  # the 2-example batch cannot be split over 4 devices
    assert [len(wrapped[i][0]) for i in range(2)] == [8, 4]
    assert shardable((x, y), Distribution("mirrored", 2, True, 3, 1.0)) == (x, y)


def test_skips_batches_smaller_than_the_devices_wherever_they_are():
    import keras
    import numpy as np

    from common.distribute import Distribution, shardable

    dist = Distribution("data_parallel", 4, True, 3, 1.0)

    class Shuffled(keras.utils.PyDataset):
        """The 2-example batch moves each epoch, as in shuffled length-bucketed datasets."""

        def __init__(self):
            super().__init__()
            self.sizes = [10, 2, 5]

        def batch_sizes(self):
            return list(self.sizes)

        def __len__(self):
            return len(self.sizes)

        def __getitem__(self, i):
            n = self.sizes[i]
            return np.full((n, 2), i), np.full(n, i)

        def on_epoch_end(self):
            self.sizes = self.sizes[1:] + self.sizes[:1]

    wrapped = shardable(Shuffled(), dist)
    for sizes in ([8, 4], [4, 8], [4, 8]):  # 10, 2, 5 → 2, 5, 10 → 5, 10, 2
        assert [len(wrapped[i][1]) for i in range(len(wrapped))] == sizes
        assert all(len(set(wrapped[i][1].tolist())) == 1 for i in range(len(wrapped)))  # whole batches, not mixed
        wrapped.on_epoch_end()

    class NoSizes(Shuffled):
        batch_sizes = None

    wrapped = shardable(NoSizes(), dist)
    assert len(wrapped) == 3 and len(wrapped[0][0]) == 8  # only the last batch is checked up front
    with pytest.raises(ValueError, match="batch 1 of NoSizes has 2 examples, fewer than the 4 devices"):
        wrapped[1]
