"""Cost of a per-step host sync in `fit`: the suite's run callbacks against the same list with one
callback that needs each step's logs at that step's end (Keras' stock `TerminateOnNaN`).

Such a callback makes Keras turn every step's logs into Python floats before the next step is
dispatched, so the host waits for the device after each step. Under JAX the suite's callbacks
avoid that (common.training.make_callbacks); this measures what it saves, side by side in one run.

    KERAS_BACKEND=jax python -m bench.callback_sync --out bench/out/callback_sync.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="time steps per sequence")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=100, help="batches per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per variant, alternating; the fastest counts")
    parser.add_argument("--out", default="bench/out/callback_sync.json")
    args = parser.parse_args(argv)

    import keras

    from common.layers import RecurrentStack
    from common.callbacks import StopOnNaN, make_callbacks
    from common.rundir import RunDir
    from common.training import TrainConfig

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch * args.batches, args.steps, 16)).astype("float32")
    y = rng.normal(size=(len(x), 1)).astype("float32")
    inputs = keras.Input((args.steps, 16))
    model = keras.Model(inputs, keras.layers.Dense(1)(RecurrentStack("gru", (args.units,), return_sequences=False)(inputs)))
    model.compile("adam", "mse")
    with tempfile.TemporaryDirectory() as tmp, RunDir(Path(tmp) / "run") as run:
        suite = make_callbacks(TrainConfig(epochs=1), run, has_validation=False)
        blocking = [keras.callbacks.TerminateOnNaN() if isinstance(cb, StopOnNaN) else cb for cb in suite]
        variants = {"suite callbacks": suite, "with a per-step sync": blocking}
        best = {name: float("inf") for name in variants}
        model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)  # compile
        for _ in range(args.repeats):
            for name, callbacks in variants.items():
                start = time.perf_counter()
                model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, callbacks=callbacks)
                best[name] = min(best[name], time.perf_counter() - start)
    ms = {name: 1000 * seconds / args.batches for name, seconds in best.items()}
    result = {"backend": keras.backend.backend(), "shape": vars(args), "ms_per_step": ms,
              "sync_over_suite": ms["with a per-step sync"] / ms["suite callbacks"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, value in ms.items():
        print(f"{name}: {value:.3f} ms/step")
    print(f"a per-step sync costs {result['sync_over_suite']:.2f}x; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
