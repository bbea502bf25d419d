"""Subprocess body for the distribution tests: trains a tiny RecurrentStack model, prints losses as JSON.

usage: python tests/common/dist_script.py MODE PER_REPLICA_BATCH RUN_DIR [LOGICAL_CPUS]
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

mode, per_replica, run_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
logical_cpus = int(sys.argv[4]) if len(sys.argv) > 4 else 1
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

cfg = TrainConfig(epochs=3, batch_size=per_replica, learning_rate=0.05, optimizer="sgd", schedule="constant",
                  clipnorm=0.0, distribution=mode, lr_scaling="none")
dist = setup_distribution(cfg)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 6, 3)).astype("float32")
y = x[:, :, 0].sum(axis=1, keepdims=True).astype("float32")
set_seed(0)
with dist.scope():
    inputs = keras.Input((6, 3))
    outputs = keras.layers.Dense(1)(RecurrentStack("gru", (4,), return_sequences=False)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(make_optimizer(cfg, 64 // dist.global_batch_size, dist), "mse")
with RunDir(run_dir, is_chief=dist.is_chief) as run:
    _, history = fit(model, (x, y), None, cfg, run, dist=dist, shuffle=False)
print("RESULT " + json.dumps({"loss": history["loss"], "replicas": dist.replicas, "chief": dist.is_chief,
                              "global_batch": dist.global_batch_size}))
