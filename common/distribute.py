"""Multi-device and multi-worker training on the engines that exist: tf.distribute and keras.distribution.

`TrainConfig.distribution` picks one:
- "none": one device.
- "mirrored" (TF backend): `tf.distribute.MirroredStrategy` over the local GPUs (or logical CPUs).
- "multi_worker" (TF backend): `tf.distribute.MultiWorkerMirroredStrategy`, hosts from `TF_CONFIG`.
- "data_parallel" (JAX backend): `keras.distribution.DataParallel` over every device of the mesh;
  multi-host runs call `keras.distribution.initialize()` first (reads JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES, JAX_PROCESS_ID, as documented by Keras).

`TrainConfig.batch_size` is per replica; the global batch is `batch_size * replicas` and the
learning rate scales with it as `TrainConfig.lr_scaling` says. Only the chief writes the run dir.

    dist = setup_distribution(cfg.train)
    with dist.scope():
        model = build_model(cfg.model)
        model.compile(make_optimizer(cfg.train, steps, dist), ...)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from typing import Any, Callable

import keras

MODES = ("none", "mirrored", "multi_worker", "data_parallel")


@dataclasses.dataclass(frozen=True)
class Distribution:
    mode: str
    replicas: int
    is_chief: bool
    per_replica_batch: int
    lr_factor: float
    strategy: Any = None  # the tf.distribute strategy, when one is used

    @property
    def global_batch_size(self) -> int:
        return self.per_replica_batch * self.replicas

    def scope(self):
        """Create and compile the model inside this scope (a no-op without a TF strategy)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> str:
        return (
            f"distribution={self.mode} replicas={self.replicas} per-replica batch={self.per_replica_batch} "
            f"global batch={self.global_batch_size} lr x{self.lr_factor:g} chief={self.is_chief}"
        )


def _lr_factor(scaling: str, replicas: int) -> float:
    if scaling == "linear":
        return float(replicas)
    if scaling == "sqrt":
        return math.sqrt(replicas)
    return 1.0


def _require_backend(mode: str, backend: str) -> None:
    if keras.backend.backend() != backend:
        fix = "KERAS_BACKEND=jax with distribution=data_parallel" if backend == "tensorflow" else \
            "KERAS_BACKEND=tensorflow with distribution=mirrored or multi_worker"
        raise ValueError(
            f"distribution={mode!r} needs the {backend} backend, but Keras runs on {keras.backend.backend()!r}; use {fix}"
        )


def _tf_config_is_chief() -> bool:
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = tf_config.get("task", {})
    cluster = tf_config.get("cluster", {})
    if task.get("type") == "chief":
        return True
    return "chief" not in cluster and task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def setup_distribution(cfg) -> Distribution:
    """Builds the strategy / mesh named by `cfg.distribution` (a TrainConfig)."""
    mode = getattr(cfg, "distribution", "none")
    scaling = getattr(cfg, "lr_scaling", "none")
    if mode not in MODES:
        raise ValueError(f"distribution must be one of {MODES}, got {mode!r}")
    if mode == "none":
        return Distribution("none", 1, True, cfg.batch_size, 1.0)
    if mode in ("mirrored", "multi_worker"):
        _require_backend(mode, "tensorflow")
        import tensorflow as tf

        if mode == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            # Several logical CPUs (tests, or a CPU-only box) need explicit cross-device ops.
            ops = None if gpus else tf.distribute.ReductionToOneDevice()
            strategy = tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=ops)
            chief = True
        else:
            if "TF_CONFIG" not in os.environ:
                raise ValueError("distribution='multi_worker' needs TF_CONFIG describing the cluster (see README, Scaling out)")
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            chief = _tf_config_is_chief()
        replicas = strategy.num_replicas_in_sync
        return Distribution(mode, replicas, chief, cfg.batch_size, _lr_factor(scaling, replicas), strategy)
    _require_backend(mode, "jax")
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    import jax

    return Distribution(mode, len(devices), jax.process_index() == 0, cfg.batch_size, _lr_factor(scaling, len(devices)))


def prepare_model(model: keras.Model, dist: Distribution) -> keras.Model:
    """Applies the engine workarounds a strategy needs; `common.training.fit` calls it.

    Keras 3.15's TF trainer builds metrics by *reducing* the first distributed batch
    (keras-team/keras#20585 family). That fails under MultiWorkerMirroredStrategy for any
    input tensor, and under MirroredStrategy whenever the first batch splits unevenly across
    the replicas (7 examples on 2 devices: "AddN ... [4,3] != [3,3]"). Shapes are all the build
    needs, so the first local replica's batch serves the same purpose.
    """
    if dist.mode not in ("mirrored", "multi_worker") or getattr(model, "_lstm_suite_patched", False):
        return model
    import tensorflow as tf
    from keras import tree

    strategy = dist.strategy

    def symbolic_build_from_local_batch(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build_from_local_batch
    model._lstm_suite_patched = True
    if dist.mode == "multi_worker":
        _patch_scalar_log_reduction()
    return model


def _patch_scalar_log_reduction() -> None:
    """Keras 3.15 reduces each step's scalar logs with `reduce("MEAN", v, axis=0)` under
    multi-worker collectives, which fails for 0-d tensors; average scalars with axis=None."""
    import tensorflow as tf
    from keras import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_lstm_suite", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not tf_trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)

        def _reduce(v):
            local = strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v
            if local.shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return original(v, strategy, reduction)

        return tree.map_structure(_reduce, values)

    reduce_per_replica._lstm_suite = True
    tf_trainer.reduce_per_replica = reduce_per_replica


class _ReplicaMultipleBatches(keras.utils.PyDataset):
    """Serves a PyDataset's batches trimmed to a multiple of the replica count (JAX shards must be equal).

    Trimming leaves out fewer than `multiple` examples of a batch. A batch with fewer examples
    than `multiple` would be cut to nothing, so it is not served at all. Which batches those are:
    - if the dataset has `batch_sizes()` (sizes in index order, for the current epoch), any batch
      may be the short one, as in shuffled length-bucketed datasets; the list is renewed every epoch;
    - otherwise Keras' convention that only the last batch is short: its size is checked once.
    A too-small batch elsewhere in a dataset without `batch_sizes()` raises a ValueError saying
    so, rather than training on an empty batch. Datasets that top their batches up to a multiple
    of the replica count themselves (translation's `PairBatches`) pass through unchanged.
    """

    def __init__(self, inner: keras.utils.PyDataset, multiple: int):
        super().__init__()
        self.inner = inner
        self.multiple = multiple
        self.served = self._served_batches()

    def _served_batches(self) -> list[int]:
        sizes = getattr(self.inner, "batch_sizes", None)
        if callable(sizes):
            return [i for i, size in enumerate(sizes()) if size >= self.multiple]
        count = len(self.inner)
        if count and _batch_size(self.inner[count - 1]) < self.multiple:
            count -= 1
        return list(range(count))

    def __len__(self) -> int:
        return len(self.served)

    def __getitem__(self, index):
        from keras import tree

        inner_index = self.served[index]
        batch = self.inner[inner_index]
        keep = _batch_size(batch) // self.multiple * self.multiple
        if keep == 0:
            raise ValueError(
                f"batch {inner_index} of {type(self.inner).__name__} has {_batch_size(batch)} examples, fewer than the "
                f"{self.multiple} devices, and is not the last batch; give the dataset a batch_sizes() method "
                f"(so such batches are skipped) or top its batches up to a multiple of the device count"
            )
        return tree.map_structure(lambda a: a[:keep], batch)

    def on_epoch_end(self):
        self.inner.on_epoch_end()
        if callable(getattr(self.inner, "batch_sizes", None)):
            self.served = self._served_batches()


def _batch_size(batch) -> int:
    from keras import tree

    return len(tree.flatten(batch)[0])


def shardable(data: Any, dist: Distribution) -> Any:
    """Makes `fit` inputs divisible across JAX data-parallel devices.

    Arrays (a tuple) are trimmed to a multiple of the replica count, so at most replicas-1
    examples are left out; PyDatasets get each batch trimmed the same way, and a batch smaller
    than the replica count is skipped (see `_ReplicaMultipleBatches`). TF strategies split
    uneven batches themselves (`prepare_model` covers an uneven first batch), so they get the
    data unchanged.
    """
    if dist.mode != "data_parallel" or dist.replicas == 1 or data is None:
        return data
    if isinstance(data, tuple):
        keep = _batch_size(data) // dist.replicas * dist.replicas
        if keep < _batch_size(data):
            print(f"data_parallel: using {keep} of {_batch_size(data)} examples (a multiple of {dist.replicas} devices)")
        return tuple(a[:keep] for a in data)
    if isinstance(data, keras.utils.PyDataset):
        return _ReplicaMultipleBatches(data, dist.replicas)
    raise ValueError(
        "distribution='data_parallel' needs arrays or a keras.utils.PyDataset whose batches divide evenly "
        f"across {dist.replicas} devices; got {type(data).__name__}"
    )


def chief_only(dist: Distribution, action: Callable[[], Any]) -> Any:
    """Runs `action` on the chief only (artifact writes); other workers skip it."""
    return action() if dist.is_chief else None
