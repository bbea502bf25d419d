"""Training tokens/s of the language model's softmax variants, side by side in one process.

    KERAS_BACKEND=jax python -m bench.lm_softmax --out bench/out/lm_softmax_cpu.json

A 1x256 LSTM with a 33,278-word vocabulary (WikiText-2's size), batches of 32 x 35 synthetic
Zipf-distributed ids: the full softmax, the adaptive softmax with every tail computed for every
token, and with each tail computed only for the tokens whose target is in it (capacities as the
app sizes them for WikiText-2). One untimed call compiles each model first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

VARIANTS = {"full": ("full", ()), "adaptive_all_tails": ("adaptive", ()),
            "adaptive_gathered": ("adaptive", (0.333, 0.162))}


def tokens_per_second(softmax: str, capacity, batches: int, batch: int = 32, bptt: int = 35) -> float:
    from apps.nlp.language_model.model import build_training_model, mean_nll

    config = dict(vocab_size=33278, embedding_dim=256, units=(256,), softmax=softmax, cutoffs=(2000, 10000),
                  tail_divisor=4, tail_capacity=capacity)
    model = build_training_model(config, batch, bptt)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=mean_nll, jit_compile=True)
    rng = np.random.default_rng(0)
    x = (rng.zipf(1.3, (batch * batches, bptt)) % 33278).astype("int32")
    y = np.roll(x, -1, 1)
    model.fit({"tokens": x[:batch], "targets": y[:batch]}, y[:batch], batch_size=batch, verbose=0)  # compile
    start = time.perf_counter()
    model.fit({"tokens": x, "targets": y}, y, batch_size=batch, verbose=0, shuffle=False)
    return batches * batch * bptt / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--out", default="bench/out/lm_softmax_cpu.json")
    args = parser.parse_args(argv)
    results = {name: tokens_per_second(softmax, capacity, args.batches) for name, (softmax, capacity) in VARIANTS.items()}
    report = {"backend": keras.backend.backend(), "tokens_per_s": results,
              "gathered_vs_all_tails": results["adaptive_gathered"] / results["adaptive_all_tails"],
              "gathered_vs_full": results["adaptive_gathered"] / results["full"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
