"""Training throughput (sequences/s) of the suite's RecurrentStack vs PyTorch nn.LSTM/nn.GRU.

Both sides train the same shapes in the same process run: a regression head on the last
step, MSE loss, Adam, data already in memory. Keras runs `model.fit` (the suite's training
path, on whatever backend KERAS_BACKEND selects); PyTorch runs a plain loop (cuDNN on GPU).
Ratios (Keras / PyTorch) are the numbers to quote; absolute times depend on the machine.

    python -m bench.rnn_throughput --device cpu --out bench/out/rnn_throughput_cpu.json
    KERAS_BACKEND=jax python -m bench.rnn_throughput --device gpu --grid gpu --steps-per-execution 1 8 --jax-loop \
        --out bench/out/rnn_throughput_gpu.json

`--scan-unroll K [K ...]` adds one column per K: the same shapes trained by `fit` on
`RecurrentStack(implementation="scan", scan_unroll=K)` (`common.layers.ScanLSTM`/`ScanGRU`: the
input projection hoisted out of the loop, K steps per loop iteration). On an H200 it beat Keras'
native layers (cuDNN LSTM) at 128-256 units, e.g. LSTM H=128 0.93x PyTorch against 0.56x, and lost
at H=512 (docs/results.md). The full GPU comparison:

    KERAS_BACKEND=jax python -m bench.rnn_throughput --device gpu --grid gpu --batches 32 --scan-unroll 4 8 \
        --out bench/out/rnn_scan_gpu.json

On CPU (JAX, 2 cores, B=256, T=100, H=128) the hoisted projection is slower than Keras' own scan
LSTM, which multiplies `x_t @ W` inside the loop (a jitted grad: 235 ms against 160 ms): XLA-CPU
then writes and reads the `[time, batch, 4*units]` gradient once more. Unrolling also lost there
(LSTM 1098 / 889 / 312 seq/s at unroll 1 / 4 / 16). CPU numbers say nothing about the GPU's
per-step floor; only a GPU run decides. `--masked` feeds right-padded batches of random lengths
behind a Masking layer (the NLP apps' case) and packed sequences to PyTorch. Each row also names
the faster of the suite's paths at that shape ("best path") and its ratio to PyTorch.

`--jax-loop` adds a diagnostic column: the same Keras model and optimizer trained by a jitted
`lax.scan` over device-resident batches, which shows how much of `fit`'s time is the kernels.
On CPU (JAX, H=8, T=10, B=16) it ran 107k seq/s against fit's 16k: fit adds about 0.85 ms per
step there. On the H200 at H=128 the jitted loop ran 1.27x `fit` for the LSTM (native layers),
and the profile below found the device idle for 42 % of that loop's step: launch-bound kernels.

`--profile` (JAX) profiles one more epoch of `fit` and of the JAX loop per shape and keeps a
summary of the trace in the JSON: milliseconds per step, the fraction of that the device was busy,
kernels per step and the top kernels. A low busy fraction means the host (launches, Python,
copies) sets the pace; a high one with many small kernels per time step means the loop does.
`tools/gpu/lease.sh` runs the H=128 diagnostics with it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

GRIDS = {
    # batch, steps, units, layers: CPU grid kept small enough to finish in a few minutes on 2 cores.
    "cpu": {"batch": (64, 256), "steps": (50, 100), "units": (128,), "layers": (1,), "cells": ("lstm", "gru")},
    "full": {"batch": (64, 256, 512), "steps": (50, 100, 200), "units": (128, 256, 512), "layers": (1, 2),
             "cells": ("lstm", "gru")},
    # GPU: a star around the anchor (B=256, T=100, H=256, 1 layer), moving one axis at a time to
    # the full grid's extremes; 16 shapes instead of the full grid's 108, a few minutes on one GPU.
    "gpu": {"star": {"batch": (64, 512), "steps": (50, 200), "units": (128, 512), "layers": (2,)},
            "anchor": {"batch": 256, "steps": 100, "units": 256, "layers": 1}, "cells": ("lstm", "gru")},
    "anchor": {"batch": (256,), "steps": (100,), "units": (128, 256), "layers": (1,), "cells": ("lstm", "gru")},
    "smoke": {"batch": (16,), "steps": (10,), "units": (8,), "layers": (1,), "cells": ("lstm",)},
}
FEATURES = 32


def _data(batch, steps, batches, masked=False):
    """Inputs, targets and lengths. `masked`: each sequence keeps a random length in [steps/2, steps]
    and is zero-padded after it (the NLP apps' right-padded batches)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * batches, steps, FEATURES)).astype("float32")
    y = rng.normal(size=(batch * batches, 1)).astype("float32")
    lengths = np.full(len(x), steps)
    if masked:
        lengths = rng.integers(max(1, steps // 2), steps + 1, size=len(x))
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    return x, y, lengths


def _keras_model(cell, steps, units, layers, implementation="native", scan_unroll=8, masked=False,
                 fused_backward=False):
    import keras

    from common.layers import RecurrentStack

    inputs = keras.Input((steps, FEATURES))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    hidden = RecurrentStack(cell, (units,) * layers, return_sequences=False, implementation=implementation,
                            scan_unroll=scan_unroll, scan_fused_backward=fused_backward)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


def summarize_trace(trace_dir: str | Path, steps: int, top: int = 12) -> dict:
    """Where a profiled run's time went, from the Perfetto trace `jax.profiler.trace` wrote.

    Device events are the kernels on the GPU's streams (`/device:*` processes, "Stream" threads);
    on a CPU, the ops on XLA's worker threads. `busy_fraction` is the union of those events over the
    span from the first to the last: near 1 the device is the limit, far below 1 it waits for the
    host (launches, Python, copies). `events_per_step` counts kernels per training step.
    """
    import gzip

    paths = sorted(Path(trace_dir).rglob("perfetto_trace.json.gz"), key=lambda p: p.stat().st_mtime)
    if not paths:
        raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
    with gzip.open(paths[-1], "rt") as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    processes = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    threads = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    spans = [e for e in events if e.get("ph") == "X" and e.get("dur") is not None]
    devices = {pid for pid, name in processes.items() if name.startswith("/device:")}
    kernels = [e for e in spans if e["pid"] in devices
               and threads.get((e["pid"], e.get("tid")), "").lower().startswith("stream")]
    if not kernels:  # device lines named otherwise: all of them (the summary names the threads counted)
        kernels = [e for e in spans if e["pid"] in devices]
    if not kernels:  # CPU backend: XLA runs the ops on its own threads
        kernels = [e for e in spans if threads.get((e["pid"], e.get("tid")), "").startswith("tf_XLA")]
    if not kernels:
        return {"error": "no device events in the trace", "trace": str(paths[-1])}
    intervals = sorted((e["ts"], e["ts"] + e["dur"]) for e in kernels)
    busy, end = 0.0, -float("inf")
    for lo, hi in intervals:
        if hi > end:
            busy += hi - max(lo, end)
            end = hi
    span = intervals[-1][1] - intervals[0][0]
    by_name: dict[str, list[float]] = {}
    for e in kernels:
        by_name.setdefault(e["name"], []).append(e["dur"])
    ranked = sorted(by_name.items(), key=lambda item: -sum(item[1]))[:top]
    return {
        "span_ms_per_step": span / 1000 / steps, "busy_ms_per_step": busy / 1000 / steps,
        "busy_fraction": busy / span if span else 0.0, "events_per_step": len(kernels) / steps,
        "threads": sorted({threads.get((e["pid"], e.get("tid")), "?") for e in kernels})[:8],
        "top": [{"name": name[:120], "ms_per_step": sum(d) / 1000 / steps, "per_step": len(d) / steps,
                 "mean_us": sum(d) / len(d)} for name, d in ranked],
    }


def _profiled(run, trace_dir, steps: int) -> dict:
    """Runs `run()` under the JAX profiler and summarises the trace; a profiler failure (e.g. no
    CUPTI on the machine) is recorded in the summary instead of losing the shape's timings."""
    import jax

    try:
        with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
            run()
        return summarize_trace(trace_dir, steps)
    except Exception as err:  # noqa: BLE001 - a diagnostic must not sink the benchmark
        print(f"    profile failed: {type(err).__name__}: {err}", flush=True)
        return {"error": f"{type(err).__name__}: {err}"}


def keras_throughput(cell, batch, steps, units, layers, batches, repeats, steps_per_execution=1,
                     scan_unroll=None, profile_dir=None, profiles=None, masked=False, fused_backward=False) -> float:
    """`fit` throughput of the suite's RecurrentStack: native, or `implementation="scan"` with `scan_unroll`.

    With `profile_dir`, one more epoch runs under the JAX profiler and its summary goes into
    `profiles[profile_dir.name]`.
    """
    import keras

    if scan_unroll is None:
        model = _keras_model(cell, steps, units, layers, masked=masked)
    else:
        model = _keras_model(cell, steps, units, layers, implementation="scan", scan_unroll=scan_unroll,
                             masked=masked, fused_backward=fused_backward)
    model.compile(keras.optimizers.Adam(1e-3), "mse", steps_per_execution=steps_per_execution)
    x, y, _ = _data(batch, steps, batches, masked)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        best = min(best, time.perf_counter() - start)
    if profile_dir is not None:
        profiles[profile_dir.name] = _profiled(
            lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False), profile_dir, batches)
    return len(x) / best


def jax_loop_throughput(cell, batch, steps, units, layers, batches, repeats, profile_dir=None,
                        profiles=None, masked=False) -> float:
    """The same Keras model and optimizer, trained by a hand-written jitted JAX step on device-resident batches.

    A diagnostic, not the suite's training path: comparing it with `fit` separates what the
    recurrent kernels cost from what Keras' loop adds per step (host-to-device copies,
    callbacks, Python bookkeeping). JAX backend only.
    """
    import jax
    import keras

    if keras.backend.backend() != "jax":
        raise ValueError("--jax-loop needs KERAS_BACKEND=jax")
    model = _keras_model(cell, steps, units, layers, masked=masked)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    x, y, _ = _data(batch, steps, batches, masked)
    xs = jax.device_put(x.reshape(batches, batch, steps, FEATURES))  # every batch resident on the device
    ys = jax.device_put(y.reshape(batches, batch, 1))

    def loss_fn(trainable, non_trainable, xb, yb):
        pred, non_trainable = model.stateless_call(trainable, non_trainable, xb, training=True)
        return keras.ops.mean((pred - yb) ** 2), non_trainable

    @jax.jit
    def epoch(state, xs, ys):
        def step(state, batch_xy):
            trainable, non_trainable, opt_vars = state
            (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                trainable, non_trainable, *batch_xy)
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return (trainable, non_trainable, opt_vars), loss

        return jax.lax.scan(step, state, (xs, ys))

    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    state, losses = epoch(state, xs, ys)  # compile + warm up
    jax.block_until_ready(losses)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        state, losses = epoch(state, xs, ys)
        jax.block_until_ready(losses)
        best = min(best, time.perf_counter() - start)
    if not np.isfinite(np.asarray(losses)).all():
        raise RuntimeError("the JAX loop diverged")
    if profile_dir is not None:
        profiles[profile_dir.name] = _profiled(lambda: jax.block_until_ready(epoch(state, xs, ys)), profile_dir, batches)
    return len(x) / best


def torch_throughput(cell, batch, steps, units, layers, batches, repeats, device, masked=False) -> float:
    """PyTorch's cuDNN RNN on the same data; `masked` feeds packed sequences (its way to skip padding)."""
    import torch

    rnn_class = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    rnn = rnn_class(FEATURES, units, num_layers=layers, batch_first=True).to(dev)
    head = torch.nn.Linear(units, 1).to(dev)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    x, y, lengths = _data(batch, steps, batches, masked)
    xs = torch.from_numpy(x).to(dev)
    ys = torch.from_numpy(y).to(dev)

    def epoch():
        for i in range(batches):
            xb, yb = xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            if masked:
                packed = torch.nn.utils.rnn.pack_padded_sequence(
                    xb, lengths[i * batch:(i + 1) * batch], batch_first=True, enforce_sorted=False)
                _, state = rnn(packed)
                last = (state[0] if cell == "lstm" else state)[-1]  # top layer's h at each sequence's end
            else:
                out, _ = rnn(xb)
                last = out[:, -1]
            loss = torch.nn.functional.mse_loss(head(last), yb)
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


def _scan_key(unroll: int, spe: int, fused: bool = False) -> str:
    """JSON key prefix of a scan column: `scan_u8`; `scan_u8_spe4` with steps_per_execution 4;
    `scan_u8_fb` with the hand-written backward pass."""
    return f"scan_u{unroll}" + (f"_spe{spe}" if spe != 1 else "") + ("_fb" if fused else "")


def _scan_label(unroll: int, spe: int, fused: bool = False) -> str:
    return f"scan unroll {unroll}" + (f" spe {spe}" if spe != 1 else "") + (" fused bwd" if fused else "")


def _combos(grid: dict) -> list[tuple]:
    """(cell, layers, units, steps, batch) tuples: the full product, or the anchor plus one-axis moves."""
    if "star" not in grid:
        return list(itertools.product(grid["cells"], grid["layers"], grid["units"], grid["steps"], grid["batch"]))
    order = ("layers", "units", "steps", "batch")
    shapes = [dict(grid["anchor"])]
    for axis in order:
        shapes += [{**grid["anchor"], axis: value} for value in grid["star"][axis]]
    return [(cell, *(s[a] for a in order)) for cell in grid["cells"] for s in shapes]


def _gpu_name() -> str | None:
    try:
        import jax

        return ", ".join(sorted({d.device_kind for d in jax.devices() if d.platform == "gpu"})) or None
    except Exception:  # no JAX or no GPU: the torch side names the device instead
        try:
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except Exception:
            return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--grid", choices=tuple(GRIDS), default=None, help="default: cpu grid on cpu, full on gpu")
    parser.add_argument("--batches", type=int, default=4, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=2, help="timed epochs; the fastest counts")
    parser.add_argument("--steps-per-execution", type=int, nargs="+", default=[1],
                        help="Keras steps_per_execution values to time (each a column); the best is compared")
    parser.add_argument("--jax-loop", action="store_true",
                        help="also time a jitted JAX loop (lax.scan over device-resident batches) on the same "
                             "Keras model: separates kernel time from fit's per-step overhead (JAX backend)")
    parser.add_argument("--scan-unroll", type=int, nargs="*", default=[],
                        help="also time fit on RecurrentStack(implementation='scan'): the input projection hoisted "
                             "and this many steps per loop iteration (one column per value and steps_per_execution)")
    parser.add_argument("--fused-backward", action="store_true",
                        help="time every scan column also with scan_fused_backward (the recurrent kernel's "
                             "gradient as one matmul after the backward loop; JAX)")
    parser.add_argument("--masked", action="store_true",
                        help="right-padded sequences of random lengths (T/2..T) behind a Masking layer; PyTorch "
                             "gets them packed")
    parser.add_argument("--profile", action="store_true",
                        help="profile one more epoch of fit (and of the JAX loop) per shape and store where the "
                             "device time went (busy fraction, kernels per step, top kernels) in the JSON (JAX backend)")
    parser.add_argument("--units", type=int, nargs="+", default=None,
                        help="only these hidden sizes of the grid (e.g. --grid anchor --units 128)")
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
    if args.profile and keras.backend.backend() != "jax":
        print("error: --profile needs KERAS_BACKEND=jax", file=sys.stderr)
        return 2
    grid = GRIDS[args.grid or ("cpu" if args.device == "cpu" else "full")]
    if args.units:
        if "star" in grid:
            print("error: --units subsets a plain grid (cpu, full, anchor, smoke), not the gpu star", file=sys.stderr)
            return 2
        grid = {**grid, "units": tuple(args.units)}
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    result = {
        "device": args.device, "keras_backend": keras.backend.backend(), "keras": keras.__version__,
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "gpu": _gpu_name() if args.device == "gpu" else None, "batches_per_epoch": args.batches,
        "masked": args.masked, "rows": rows,
    }

    def write_json():  # after every shape, so a run cut short still leaves what it measured
        out.write_text(json.dumps(result, indent=2) + "\n")

    combos = _combos(grid)
    scan_variants = [(k, spe, fb) for k in args.scan_unroll for spe in args.steps_per_execution
                     for fb in ((False, True) if args.fused_backward else (False,))]
    for n, (cell, layers, units, steps, batch) in enumerate(combos, 1):
        row = {"cell": cell, "layers": layers, "units": units, "steps": steps, "batch": batch}
        # Profiled (with --profile): native fit, the first scan column (and its fused-backward twin)
        # and the JAX loop, each summary under the name of its trace folder.
        profiles: dict[str, dict] = {}
        trace_dir = Path(args.out).parent / f"trace_{cell}_{layers}_{units}_{steps}_{batch}"

        def trace(name: str, wanted: bool):
            return trace_dir / name if args.profile and wanted else None

        # PyTorch is timed before and after the Keras paths and its faster epoch counts: at small
        # shapes its launch-bound kernels moved 15-40 % between calls on an H200, Keras' 2 %.
        torch_runs = []
        if have_torch:
            torch_runs.append(torch_throughput(cell, batch, steps, units, layers, args.batches, args.repeats,
                                               args.device, masked=args.masked))
        for i, spe in enumerate(args.steps_per_execution):
            row[f"keras_spe{spe}_seq_per_s"] = keras_throughput(
                cell, batch, steps, units, layers, args.batches, args.repeats, spe,
                profile_dir=trace("fit", i == 0), profiles=profiles, masked=args.masked)
        for j, (k, spe, fb) in enumerate(scan_variants):
            row[f"{_scan_key(k, spe, fb)}_seq_per_s"] = keras_throughput(
                cell, batch, steps, units, layers, args.batches, args.repeats, spe, scan_unroll=k,
                profile_dir=trace(_scan_key(k, spe, fb), j == 0 or (fb and j == 1)), profiles=profiles,
                masked=args.masked, fused_backward=fb)
        if args.jax_loop:
            row["jax_loop_seq_per_s"] = jax_loop_throughput(
                cell, batch, steps, units, layers, args.batches, args.repeats,
                profile_dir=trace("jax_loop", True), profiles=profiles, masked=args.masked)
        row.update({f"profile_{name}": summary for name, summary in profiles.items()})  # traces are large
        shutil.rmtree(trace_dir, ignore_errors=True)
        best_spe = max(args.steps_per_execution, key=lambda spe: row[f"keras_spe{spe}_seq_per_s"])
        row["keras_seq_per_s"], row["keras_best_spe"] = row[f"keras_spe{best_spe}_seq_per_s"], best_spe
        # The suite's best fit path at this shape: native layers or the scan implementation.
        paths = {"native" + (f"_spe{best_spe}" if best_spe != 1 else ""): row["keras_seq_per_s"],
                 **{_scan_key(*v).replace("_u", ""): row[f"{_scan_key(*v)}_seq_per_s"] for v in scan_variants}}
        row["best_path"] = max(paths, key=paths.get)
        row["best_seq_per_s"] = paths[row["best_path"]]
        if have_torch:
            torch_runs.append(torch_throughput(cell, batch, steps, units, layers, args.batches, args.repeats,
                                               args.device, masked=args.masked))
            row["torch_runs_seq_per_s"] = torch_runs
            row["torch_seq_per_s"] = max(torch_runs)
            row["ratio"] = row["keras_seq_per_s"] / row["torch_seq_per_s"]
            row["best_ratio"] = row["best_seq_per_s"] / row["torch_seq_per_s"]
        rows.append(row)
        write_json()
        ratio = f" ratio {row['ratio']:.2f}" if "ratio" in row else ""
        for v in scan_variants:
            ratio += f", {_scan_label(*v)} {row[f'{_scan_key(*v)}_seq_per_s']:.0f} seq/s"
        if "jax_loop_seq_per_s" in row:
            ratio += f", jax loop {row['jax_loop_seq_per_s']:.0f} seq/s"
        if "best_ratio" in row:
            ratio += f"; best {row['best_path']} {row['best_ratio']:.2f}x torch"
        print(f"[{n}/{len(combos)}] {cell} L={layers} H={units} T={steps} B={batch}: "
              f"keras {row['keras_seq_per_s']:.0f} seq/s{ratio}", flush=True)
        for key in [key for key in row if key.startswith("profile_")]:
            if "top" in row[key]:
                p = row[key]
                print(f"    {key[8:]}: {p['span_ms_per_step']:.2f} ms/step, device busy {p['busy_fraction']:.0%}, "
                      f"{p['events_per_step']:.0f} kernels/step; top: "
                      + "; ".join(f"{t['name'][:40]} {t['ms_per_step']:.2f} ms" for t in p["top"][:3]), flush=True)
    spes = args.steps_per_execution
    loop = [f"{_scan_label(*v)} seq/s" for v in scan_variants] + (["jax loop seq/s"] if args.jax_loop else [])
    table = ["| cell | layers | units | steps | batch | " + " | ".join(
             [f"keras seq/s (spe {s})" for s in spes] + loop)
             + " | torch seq/s | native keras/torch | best path | best/torch |",
             "|---|---|---|---|---|" + "---|" * (len(spes) + len(loop) + 4)]
    for r in rows:
        cells = [f"{r[f'keras_spe{s}_seq_per_s']:.0f}" for s in spes]
        cells += [f"{r[f'{_scan_key(*v)}_seq_per_s']:.0f}" for v in scan_variants]
        cells += [f"{r['jax_loop_seq_per_s']:.0f}"] if args.jax_loop else []
        table.append(f"| {r['cell']} | {r['layers']} | {r['units']} | {r['steps']} | {r['batch']} | "
                     + " | ".join(cells)
                     + f" | {r.get('torch_seq_per_s', float('nan')):.0f} | {r.get('ratio', float('nan')):.2f}"
                     + f" | {r['best_path']} | {r.get('best_ratio', float('nan')):.2f} |")
    out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
