"""A pure-JAX LSTM training loop: the speed yardstick for the experiments' Keras loop.

No Keras: the LSTM step (Keras' gate order and chrono bias), Adam and global-norm clipping
are written out, one `jax.jit` of a `lax.scan` over `steps_per_call` training steps, each a
`lax.scan` over time. The issue that asked for the compiled Keras loop (docs/results.md,
Experiments) measured the chrono LSTM on the adding problem with a loop like this one; the
runner's steps/s is compared against it side by side.

    KERAS_BACKEND=jax python -m apps.experiments.reference --task adding --length 1000 --steps 100
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from apps.experiments.tasks import get_task


def init_params(key, input_dim: int, units: int, output_dim: int, t_max: int) -> dict:
    k1, k2, k3, k4 = jax.random.split(key, 4)
    limit = np.sqrt(6.0 / (input_dim + 4 * units))
    forget = jnp.log(jax.random.uniform(k3, (units,), minval=1.0, maxval=t_max - 1.0))  # chrono
    bias = jnp.concatenate([-forget, forget, jnp.zeros(2 * units)])
    recurrent = jnp.linalg.qr(jax.random.normal(k2, (4 * units, units)))[0].T  # orthogonal rows
    return {"kernel": jax.random.uniform(k1, (input_dim, 4 * units), minval=-limit, maxval=limit),
            "recurrent": recurrent, "bias": bias,
            "head": jax.random.normal(k4, (units, output_dim)) / np.sqrt(units), "head_bias": jnp.zeros(output_dim)}


def forward(params: dict, x: jnp.ndarray) -> jnp.ndarray:
    """x `[batch, T, F]` -> head output `[batch, output_dim]` from the last hidden state."""
    units = params["recurrent"].shape[0]
    projected = jnp.einsum("btf,fg->tbg", x, params["kernel"]) + params["bias"]  # hoisted input projection

    def step(carry, z_x):
        h, c = carry
        z = z_x + h @ params["recurrent"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((x.shape[0], units))
    (h, _), _ = jax.lax.scan(step, (zeros, zeros), projected)
    return h @ params["head"] + params["head_bias"]


def make_loss(task: str):
    if task == "adding":
        return lambda params, x, y: jnp.mean((0.25 * forward(params, x) + 0.5 - y) ** 2)

    def crossentropy(params, x, y):
        logits = forward(params, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=-1))

    return crossentropy


def make_chunk(loss, learning_rate: float, clipnorm: float):
    """`(params, adam_state, xs [K, B, T, F], ys [K, B, ...]) -> (params, adam_state, losses [K])`, jitted."""
    grad = jax.value_and_grad(loss)

    def train_step(state, batch):
        params, m, v, t = state
        value, g = grad(params, *batch)
        norm = jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(g)))
        scale = jnp.minimum(1.0, clipnorm / (norm + 1e-6)) if clipnorm > 0 else 1.0
        g = jax.tree_util.tree_map(lambda leaf: leaf * scale, g)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        step_size = learning_rate * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(lambda p, a, b: p - step_size * a / (jnp.sqrt(b) + 1e-7), params, m, v)
        return (params, m, v, t), value

    @jax.jit
    def chunk(params, m, v, t, xs, ys):
        (params, m, v, t), losses = jax.lax.scan(train_step, (params, m, v, t), (xs, ys))
        return params, m, v, t, losses

    return chunk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pure-JAX chrono-LSTM training loop (speed reference)")
    parser.add_argument("--task", default="adding", choices=("adding", "temporal_order"))
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100, help="timed training steps (after one warm-up call)")
    parser.add_argument("--steps-per-call", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--units", type=int, default=32)
    args = parser.parse_args(argv)
    spec = get_task(args.task)
    params = init_params(jax.random.PRNGKey(0), spec.input_dim, args.units, spec.output_dim, args.length)
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    t = jnp.zeros((), jnp.float32)
    chunk = make_chunk(make_loss(args.task), 3e-3, 1.0)
    rng = np.random.default_rng(1)

    def batches():
        pairs = [spec.generate(rng, args.batch_size, args.length) for _ in range(args.steps_per_call)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    params, m, v, t, losses = chunk(params, m, v, t, *batches())  # compile + first call
    losses.block_until_ready()
    calls = max(1, args.steps // args.steps_per_call)
    start = time.perf_counter()
    for _ in range(calls):
        params, m, v, t, losses = chunk(params, m, v, t, *batches())
    losses.block_until_ready()
    seconds = time.perf_counter() - start
    steps = calls * args.steps_per_call
    print(f"pure JAX LSTM, {args.task} T={args.length}, batch {args.batch_size}, {args.units} units: "
          f"{steps} steps in {seconds:.1f} s = {steps / seconds:.2f} steps/s (last loss {float(losses[-1]):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
