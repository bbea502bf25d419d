"""Sentiment on several devices: TF mirrored over 2 logical CPUs, JAX data_parallel over 4 host devices.

The end-to-end cases run `apps.nlp.sentiment.train` in a subprocess, because the device
layout is fixed when the backend starts.
"""

import json
import os

import keras
import numpy as np
import pytest

from apps.nlp.sentiment import features


def _train(train_in_subprocess, run_dir, distribution, batch_size, env, logical_cpus=1):
    sets = [f"train.distribution={distribution}", f"train.batch_size={batch_size}"]
    args = ["--config", "tiny", "--run-dir", str(run_dir)] + [a for s in sets for a in ("--set", s)]
    out = train_in_subprocess("apps.nlp.sentiment.train", args, env, logical_cpus)
    for name in ("config.json", "model.keras", "history.json", "metrics.json", "vocabulary.txt", "labels.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and metrics["epochs_run"] == 1
    history = json.loads((run_dir / "history.json").read_text())
    assert np.isfinite(history["loss"]).all()
    # One batch covers the validation split, so fit's weighted val_accuracy is the report's accuracy.
    assert history["val_accuracy"][-1] == pytest.approx(metrics["validation"]["accuracy"], abs=1e-6)
    return out


@pytest.mark.slow  # end to end in a subprocess; the batching is checked fast below, the engines in tests/common
@pytest.mark.tf_only
def test_mirrored_two_logical_cpus_trains_end_to_end(tmp_path, train_in_subprocess):
    pytest.importorskip("tensorflow")
    out = _train(train_in_subprocess, tmp_path / "run", "mirrored", 7, {"KERAS_BACKEND": "tensorflow"}, logical_cpus=2)
    assert "distribution=mirrored replicas=2 per-replica batch=7 global batch=14" in out


# The subprocess picks its own backend, so the TF pass runs it; the JAX pass skips it with the other tf_only tests.
@pytest.mark.slow
@pytest.mark.tf_only
def test_jax_data_parallel_four_devices_odd_batch_trains_end_to_end(tmp_path, train_in_subprocess):
    pytest.importorskip("jax")
    out = _train(train_in_subprocess, tmp_path / "run", "data_parallel", 7, {"KERAS_BACKEND": "jax",
                                                        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"})
    assert "distribution=data_parallel replicas=4 per-replica batch=7 global batch=28" in out


def _epoch(dataset):
    """One epoch of numpy batches from either backend's `make_dataset` (tf.data re-iterates, a PyDataset is indexed)."""
    if isinstance(dataset, keras.utils.PyDataset):
        batches = [dataset[i] for i in range(len(dataset))]
        dataset.on_epoch_end()
        return batches
    return list(dataset.as_numpy_iterator())


def test_batches_divide_across_devices_and_keep_every_example_once():
    from common.distribute import Distribution, shardable

    ids = np.zeros((30, 32), dtype=np.int32)
    for i in range(30):
        ids[i, :i + 1] = 5  # example i has i + 1 tokens, which identifies it in a batch
    labels = (np.arange(30) % 2).astype(np.int32)
    # 30 examples in global batches of 28 (7 per device on 4): one short batch of 2, topped up to 4.
    dataset = features.make_dataset(ids, labels, 28, shuffle=True, seed=0, multiple=8, replicas=4)
    positions = set()
    for _ in range(3):  # the short batch moves around as the batches are reshuffled
        sizes, seen = [], []
        batches = _epoch(dataset)
        for batch_ids, batch_labels, weights in batches:
            assert len(batch_ids) == len(batch_labels) == len(weights) and len(weights) % 4 == 0
            assert set(weights.tolist()) <= {0.0, 1.0}
            sizes.append(len(weights))
            real = weights == 1.0
            lengths = features.sequence_lengths(batch_ids)
            seen += lengths[real].tolist()
            assert (batch_labels == (lengths - 1) % 2).all()  # labels travel with their texts, filler included
        assert sorted(sizes) == [4, 28] and sorted(seen) == list(range(1, 31))
        assert sum(int((w == 0).sum()) for _, _, w in batches) == 2
        positions.add(sizes.index(4))
    assert len(positions) == 2, "the short batch should not always sit at the same place"
    assert features.count_batches(30, 28) == len(batches)

    # JAX data_parallel serves these batches unchanged: none is trimmed or skipped.
    batches = features.BucketedBatches(ids, labels, 28, shuffle=True, seed=0, multiple=8, replicas=4)
    wrapped = shardable(batches, Distribution("data_parallel", 4, True, 7, 1.0))
    assert [len(wrapped[i][2]) for i in range(len(wrapped))] == batches.batch_sizes()


def _filler_batch():
    """A tiny classifier and a 3-example batch topped up to 4 rows (row 3 repeats row 0 with weight 0)."""
    from apps.nlp.sentiment.config import PRESETS
    from apps.nlp.sentiment.model import build_classifier, compile_classifier

    cfg = PRESETS["tiny"]
    model = build_classifier(cfg.model, 50, 2, seed=0)
    compile_classifier(model, keras.optimizers.SGD(0.0), 2)
    ids = np.random.default_rng(0).integers(2, 50, size=(3, 8)).astype(np.int32)
    predicted = (np.asarray(model.predict_on_batch(ids))[:, 0] > 0.5).astype(np.int32)
    labels = np.array([predicted[0], 1 - predicted[1], 1 - predicted[2]], dtype=np.int32)  # 1 of 3 correct
    padded_ids, padded_labels, weights = next(features.length_bucketed_batches(ids, labels, 3, shuffle=False,
                                                                               multiple=8, replicas=4))
    assert weights.tolist() == [1.0, 1.0, 1.0, 0.0]
    real = model.evaluate(padded_ids[:3], padded_labels[:3], batch_size=4, verbose=0, return_dict=True)
    padded = model.evaluate(padded_ids, padded_labels, sample_weight=weights, batch_size=4, verbose=0,
                            return_dict=True)
    return real, padded


def test_filler_rows_add_nothing_to_the_loss():
    real, padded = _filler_batch()
    # Keras averages over all rows ("sum_over_batch_size"): a zero-weight row adds no loss and no
    # gradient, it only scales the one short batch per epoch by real / padded rows.
    assert padded["loss"] * 4 == pytest.approx(real["loss"] * 3, rel=1e-5)


def test_filler_rows_do_not_count_in_accuracy():
    real, padded = _filler_batch()
    assert real["accuracy"] == pytest.approx(1 / 3)
    assert padded["accuracy"] == pytest.approx(real["accuracy"])
