"""Translation on several devices: TF mirrored over 2 logical CPUs, JAX data_parallel over 4 host devices.

The end-to-end cases run `apps.nlp.translation.train` in a subprocess, because the device
layout is fixed when the backend starts.
"""

import json
import os

import numpy as np
import pytest

from apps.nlp.translation.data import PairBatches
from apps.nlp.translation.tokenizer import PAD


def _train(train_in_subprocess, run_dir, distribution, batch_size, env, logical_cpus=1):
    sets = [f"train.distribution={distribution}", f"train.batch_size={batch_size}", "data.target_lang=de",
            "decode.max_eval_examples=4", "train.epochs=1"]  # the distributed path end to end, not the accuracy
    args = ["--config", "tiny", "--run-dir", str(run_dir)] + [a for s in sets for a in ("--set", s)]
    out = train_in_subprocess("apps.nlp.translation.train", args, env, logical_cpus)
    for name in ("config.json", "model.keras", "history.json", "metrics.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["bleu"]) and metrics["epochs_run"] == 1
    assert np.isfinite(json.loads((run_dir / "history.json").read_text())["loss"]).all()
    return out


@pytest.mark.slow  # end to end in a subprocess; the batching is checked fast below, the engines in tests/common
@pytest.mark.tf_only
def test_mirrored_two_logical_cpus_trains_end_to_end(tmp_path, train_in_subprocess):
    pytest.importorskip("tensorflow")
    out = _train(train_in_subprocess, tmp_path / "run", "mirrored", 8, {"KERAS_BACKEND": "tensorflow"}, logical_cpus=2)
    assert "distribution=mirrored replicas=2 per-replica batch=8 global batch=16" in out


# The subprocess picks its own backend, so the TF pass runs it; the JAX pass skips it with the other tf_only tests.
@pytest.mark.slow
@pytest.mark.tf_only
def test_jax_data_parallel_four_devices_odd_batch_trains_end_to_end(tmp_path, train_in_subprocess):
    pytest.importorskip("jax")
    out = _train(train_in_subprocess, tmp_path / "run", "data_parallel", 7, {"KERAS_BACKEND": "jax",
                                                        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"})
    assert "distribution=data_parallel replicas=4 per-replica batch=7 global batch=28" in out


def test_batches_divide_across_devices_and_keep_every_pair_once():
    from apps.nlp.translation.model import MaskedSmoothedCrossEntropy, masked_token_accuracy
    from common.distribute import Distribution, shardable

    sources = [[5] * n for n in range(1, 31)]  # 30 pairs in batches of 28: one short batch of 2
    targets = [[6] * n for n in range(1, 31)]
    batches = PairBatches(sources, targets, batch_size=28, seed=0, multiple_of=4)
    for _ in range(3):  # the short batch moves around as the batches are reshuffled
        sizes, lengths = [], []
        for inputs, target_out in batches.iterate():
            sizes.append(len(target_out))
            real = (target_out != PAD).any(axis=1)
            lengths += (inputs["source_ids"][real] != PAD).sum(1).tolist()
        assert sorted(sizes) == [4, 28] and sorted(lengths) == list(range(1, 31))
        batches.on_epoch_end()
    wrapped = shardable(batches, Distribution("data_parallel", 4, True, 7, 1.0))
    assert [len(wrapped[i][1]) for i in range(len(wrapped))] == [len(batches[i][1]) for i in range(len(batches))]

    # Filler rows change neither the loss nor the accuracy.
    short = next(i for i in range(len(batches)) if len(batches.batches[i]) == 2)
    _, padded = batches[short]
    assert padded.shape[0] == 4 and (padded[:2] != PAD).any() and (padded[2:] == PAD).all()
    logits = np.random.default_rng(0).normal(size=padded.shape + (8,)).astype("float32")
    loss = MaskedSmoothedCrossEntropy(0.1)
    assert float(loss(padded, logits)) == pytest.approx(float(loss(padded[:2], logits[:2])), rel=1e-6)
    assert float(masked_token_accuracy(padded, logits)) == pytest.approx(float(masked_token_accuracy(padded[:2], logits[:2])))
