"""Subprocess body for the distribution tests: trains a tiny RecurrentStack model once per RUN, in order,
printing each run's losses as a `RESULT {json}` line. Several runs share one process (one backend
start-up): a single-device reference and the distributed run it must match, on the same device layout.

usage: python tests/common/dist_script.py [--logical-cpus N] MODE:PER_REPLICA_BATCH:RUN_DIR ...

MODE `mirrored_odd` (TensorFlow, 2 logical CPUs) is another case: a Dense model whose first batch of 7
splits 4 + 3 over the two replicas (PER_REPLICA_BATCH is ignored).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

args = sys.argv[1:]
logical_cpus = 1
if args[:1] == ["--logical-cpus"]:
    logical_cpus, args = int(args[1]), args[2:]
if logical_cpus > 1:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from common.distribute import setup_distribution  # noqa: E402
from common.layers import RecurrentStack  # noqa: E402
from common.rundir import RunDir  # noqa: E402
from common.training import TrainConfig, fit, make_optimizer, set_seed  # noqa: E402


def train(mode: str, per_replica: int, run_dir: str) -> dict:
    cfg = TrainConfig(epochs=3, batch_size=per_replica, learning_rate=0.05, optimizer="sgd", schedule="constant",
                      clipnorm=0.0, distribution=mode, lr_scaling="none")
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)  # the previous run's layout, if any
    dist = setup_distribution(cfg)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    y = x[:, :, 0].sum(axis=1, keepdims=True).astype("float32")
    keras.backend.clear_session()
    set_seed(0)
    with dist.scope():
        inputs = keras.Input((6, 3))
        outputs = keras.layers.Dense(1)(RecurrentStack("gru", (4,), return_sequences=False)(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(make_optimizer(cfg, 64 // dist.global_batch_size, dist), "mse")
    with RunDir(run_dir, is_chief=dist.is_chief) as run:
        _, history = fit(model, (x, y), None, cfg, run, dist=dist, shuffle=False)
    return {"loss": history["loss"], "replicas": dist.replicas, "chief": dist.is_chief,
            "global_batch": dist.global_batch_size}


def train_odd_first_batch(run_dir: str) -> dict:
    """Without prepare_model's workaround Keras fails building metrics: "AddN ... [4,3] != [3,3]"."""
    import tensorflow as tf

    cfg = TrainConfig(epochs=2, batch_size=4, distribution="mirrored", lr_scaling="none", optimizer="sgd",
                      schedule="constant", clipnorm=0.0)
    keras.backend.clear_session()
    dist = setup_distribution(cfg)
    x = np.random.default_rng(0).normal(size=(15, 3)).astype("float32")
    with dist.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(make_optimizer(cfg, 3, dist), "mse", metrics=["mae"])
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(7)  # 7, 7, 1: 4+3 on two replicas
    with RunDir(run_dir) as run:
        _, history = fit(model, data, None, cfg, run, dist=dist)
    return {"loss": history["loss"], "replicas": dist.replicas, "chief": dist.is_chief,
            "global_batch": dist.global_batch_size}


for spec in args:
    mode, per_replica, run_dir = spec.split(":", 2)
    result = train_odd_first_batch(run_dir) if mode == "mirrored_odd" else train(mode, int(per_replica), run_dir)
    print("RESULT " + json.dumps(result), flush=True)
