"""Training throughput (sequences/s) of the suite's RecurrentStack vs PyTorch nn.LSTM/nn.GRU.

Both sides train the same shapes in the same process run: a regression head on the last
step, MSE loss, Adam, data already in memory. Keras runs `model.fit` (the suite's training
path, on whatever backend KERAS_BACKEND selects); PyTorch runs a plain loop (cuDNN on GPU).
Ratios (Keras / PyTorch) are the numbers to quote; absolute times depend on the machine.

    python -m bench.rnn_throughput --device cpu --out bench/out/rnn_throughput_cpu.json
    KERAS_BACKEND=jax python -m bench.rnn_throughput --device gpu --grid full --out bench/out/rnn_throughput_gpu.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

GRIDS = {
    # batch, steps, units, layers: CPU grid kept small enough to finish in a few minutes on 2 cores.
    "cpu": {"batch": (64, 256), "steps": (50, 100), "units": (128,), "layers": (1,), "cells": ("lstm", "gru")},
    "full": {"batch": (64, 256, 512), "steps": (50, 100, 200), "units": (128, 256, 512), "layers": (1, 2),
             "cells": ("lstm", "gru")},
    "smoke": {"batch": (16,), "steps": (10,), "units": (8,), "layers": (1,), "cells": ("lstm",)},
}
FEATURES = 32


def _data(batch, steps, batches):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * batches, steps, FEATURES)).astype("float32")
    y = rng.normal(size=(batch * batches, 1)).astype("float32")
    return x, y


def keras_throughput(cell, batch, steps, units, layers, batches, repeats) -> float:
    import keras

    from common.layers import RecurrentStack

    inputs = keras.Input((steps, FEATURES))
    hidden = RecurrentStack(cell, (units,) * layers, return_sequences=False)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    x, y = _data(batch, steps, batches)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def torch_throughput(cell, batch, steps, units, layers, batches, repeats, device) -> float:
    import torch

    rnn_class = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    rnn = rnn_class(FEATURES, units, num_layers=layers, batch_first=True).to(dev)
    head = torch.nn.Linear(units, 1).to(dev)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    x, y = _data(batch, steps, batches)
    xs = torch.from_numpy(x).to(dev)
    ys = torch.from_numpy(y).to(dev)

    def epoch():
        for i in range(batches):
            xb, yb = xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            out, _ = rnn(xb)
            loss = torch.nn.functional.mse_loss(head(out[:, -1]), yb)
            loss.backward()
            optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    epoch()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--grid", choices=tuple(GRIDS), default=None, help="default: cpu grid on cpu, full on gpu")
    parser.add_argument("--batches", type=int, default=4, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=2, help="timed epochs; the fastest counts")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--out", default="bench/out/rnn_throughput.json")
    args = parser.parse_args(argv)

    import keras

    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        if not args.no_torch:
            print("error: PyTorch is not installed; `make bench` installs requirements-bench.txt, "
                  "or pass --no-torch", file=sys.stderr)
            return 2
        have_torch = False
    grid = GRIDS[args.grid or ("cpu" if args.device == "cpu" else "full")]
    rows = []
    combos = list(itertools.product(grid["cells"], grid["layers"], grid["units"], grid["steps"], grid["batch"]))
    for n, (cell, layers, units, steps, batch) in enumerate(combos, 1):
        row = {"cell": cell, "layers": layers, "units": units, "steps": steps, "batch": batch,
               "keras_seq_per_s": keras_throughput(cell, batch, steps, units, layers, args.batches, args.repeats)}
        if have_torch:
            row["torch_seq_per_s"] = torch_throughput(cell, batch, steps, units, layers, args.batches, args.repeats,
                                                      args.device)
            row["ratio"] = row["keras_seq_per_s"] / row["torch_seq_per_s"]
        rows.append(row)
        ratio = f" ratio {row['ratio']:.2f}" if "ratio" in row else ""
        print(f"[{n}/{len(combos)}] {cell} L={layers} H={units} T={steps} B={batch}: "
              f"keras {row['keras_seq_per_s']:.0f} seq/s{ratio}", flush=True)
    result = {
        "device": args.device, "keras_backend": keras.backend.backend(), "keras": keras.__version__,
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = ["| cell | layers | units | steps | batch | keras seq/s | torch seq/s | keras/torch |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['cell']} | {r['layers']} | {r['units']} | {r['steps']} | {r['batch']} | "
                     f"{r['keras_seq_per_s']:.0f} | {r.get('torch_seq_per_s', float('nan')):.0f} | {r.get('ratio', float('nan')):.2f} |")
    out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
