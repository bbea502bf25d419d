"""The experiments' compiled training loop (JAX): several models, several steps per compiled call.

A *group* is a set of models with one architecture that differ only in their weights' values:
initialisation (chrono or Keras' default), seed and clipping threshold. Their variables are
stacked along a leading member axis and trained together with `jax.vmap`; one compiled call
(`jax.jit` of a `lax.scan` over `steps` training steps) advances every member by `steps`
steps. On a CPU a recurrent step of 32 units is loop-overhead bound, so M members cost far
less than M separate runs (docs/results.md, Experiments, gives the measured ratio).

Everything goes through Keras' stateless APIs (`model.stateless_call`,
`optimizer.stateless_apply`), so the trained values drop back into ordinary Keras models.
Each step: loss and gradient, the gradient's global norm (recorded, before clipping), global-norm
clipping to the member's `clipnorm` (0 = off; Pascanu et al. 2013), the optimizer update.
A retired member (solved, or diverged) leaves the stacked state, so it costs nothing more;
its last values are kept for `write_back`.

    trainer = GroupTrainer(models, "mse", make_optimizer, clipnorms=[0.0, 1.0])
    losses, norms = trainer.train(xs, ys, member_data)  # xs [S, K, B, T, F]; losses, norms [L, K]
    predictions = trainer.predict(x_val)  # [L, N, out], L = live members
    trainer.retire([0])  # member 0 solved: it stops training and keeps its weights
    trainer.write_back()  # the trained values into each member's keras.Model
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras
import numpy as np

from common.errors import BackendError


def require_jax() -> None:
    if keras.backend.backend() != "jax":
        raise BackendError(
            f"apps.experiments trains with a JAX-compiled loop, but Keras runs on {keras.backend.backend()!r}; "
            "run it with KERAS_BACKEND=jax (make experiments sets it)"
        )


def loss_function(name: str) -> Callable:
    """Mean loss over the batch, in keras.ops: "mse" or "sparse_categorical_crossentropy" (on probabilities)."""
    from keras import ops

    if name == "mse":
        return lambda y, p: ops.mean(ops.square(p - ops.cast(y, p.dtype)))
    if name == "sparse_categorical_crossentropy":
        return lambda y, p: ops.mean(keras.losses.sparse_categorical_crossentropy(y, p))
    raise ValueError(f"loss must be 'mse' or 'sparse_categorical_crossentropy', got {name!r}")


class GroupTrainer:
    """Trains the members of one group in lockstep (see the module docstring).

    Args:
        models: one built `keras.Model` per member, all of one architecture (the first is the
            template whose `stateless_call` runs every member's weights).
        loss: "mse" or "sparse_categorical_crossentropy".
        make_optimizer: returns a fresh, unclipped Keras optimizer (clipping happens here).
        clipnorms: per member global-norm threshold; 0 = no clipping.
    """

    def __init__(self, models: Sequence[keras.Model], loss: str,
                 make_optimizer: Callable[[], keras.optimizers.Optimizer], clipnorms: Sequence[float]):
        require_jax()
        import jax

        if len(models) != len(clipnorms) or not models:
            raise ValueError(f"need one clipnorm per model, got {len(models)} models and {len(clipnorms)} clipnorms")
        shapes = [[tuple(v.shape) for v in m.trainable_variables] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("every member of a group needs the same architecture (variable shapes differ)")
        self.models = list(models)
        self.template = models[0]
        self.optimizer = make_optimizer()
        self.optimizer.build(self.template.trainable_variables)
        self.loss_fn = loss_function(loss)
        self.clipnorms = np.asarray(clipnorms, dtype="float32")  # [M]
        self._non_trainable = [v.value for v in self.template.non_trainable_variables]
        self._jax = jax
        self._train = jax.jit(self._train_impl, donate_argnums=(0,))
        self._predict = jax.jit(jax.vmap(self._forward, in_axes=(0, None)))
        self.live = list(range(len(self.models)))  # members still training, in state order
        self._retired: dict[int, list[np.ndarray]] = {}
        jnp = jax.numpy
        trainable = [jnp.stack([m.trainable_variables[i].value for m in self.models])
                     for i in range(len(self.template.trainable_variables))]
        # Fresh optimizer state per member: the built optimizer's initial values (zeros, iteration 0).
        opt = [jnp.stack([v.value] * self.size) for v in self.optimizer.variables]
        self._state = (trainable, opt)

    @property
    def size(self) -> int:
        return len(self.models)

    # -------------------------------------------------------------- compiled functions

    def _forward(self, trainable, x, training=False):
        predictions, _ = self.template.stateless_call(trainable, self._non_trainable, x, training=training)
        return predictions

    def _member_step(self, trainable, opt, x, y, clipnorm):
        jax, jnp = self._jax, self._jax.numpy

        def loss_of(params):
            return self.loss_fn(y, self._forward(params, x, training=True))

        loss, grads = jax.value_and_grad(loss_of)(trainable)
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in grads))  # global norm, before clipping
        scale = jnp.where(clipnorm > 0, jnp.minimum(1.0, clipnorm / jnp.maximum(norm, 1e-12)), 1.0)
        new_trainable, new_opt = self.optimizer.stateless_apply(opt, [g * scale for g in grads], trainable)
        return new_trainable, new_opt, loss, norm

    def _train_impl(self, state, xs, ys, member_data, clipnorms):
        """xs `[S, K, B, ...]` (one stream per data seed); member_data `[L]` indexes S per live member."""
        jax = self._jax
        step = jax.vmap(self._member_step)

        def body(carry, k):
            trainable, opt = carry
            x = xs[member_data, k]  # [L, B, ...]: each member's own data stream
            y = ys[member_data, k]
            trainable, opt, loss, norm = step(trainable, opt, x, y, clipnorms)
            return (trainable, opt), (loss, norm)

        (trainable, opt), (losses, norms) = jax.lax.scan(body, state, jax.numpy.arange(xs.shape[1]))
        return (trainable, opt), losses.T, norms.T  # [L, K] each

    # -------------------------------------------------------------- public API

    def train(self, xs: np.ndarray, ys: np.ndarray, member_data: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Runs `xs.shape[1]` steps for every live member; returns (losses, grad norms), numpy `[L, K]`.

        `xs`/`ys`: `[S, K, batch, ...]`, one training stream per data seed; `member_data[j]` is the
        stream of live member j. The first call for a new number of live members compiles.
        """
        member_data = np.asarray(member_data, dtype="int32")
        if len(member_data) != len(self.live):
            raise ValueError(f"need a data stream index per live member ({len(self.live)}), got {len(member_data)}")
        self._state, losses, norms = self._train(self._state, xs, ys, member_data, self.clipnorms[self.live])
        return np.asarray(losses), np.asarray(norms)

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Every live member's predictions on `x`: numpy `[L, N, outputs]`."""
        trainable = self._state[0]
        parts = [np.asarray(self._predict(trainable, x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts, axis=1)

    def member_values(self, member: int) -> list[np.ndarray]:
        """A member's current trainable values (live or retired), in `trainable_variables` order."""
        if member in self._retired:
            return self._retired[member]
        j = self.live.index(member)
        return [np.asarray(values[j]) for values in self._state[0]]

    def retire(self, members: Sequence[int]) -> None:
        """Stops training `members` (solved or diverged): keeps their values, drops them from the state."""
        members = [m for m in members if m in self.live]
        if not members:
            return
        for m in members:
            self._retired[m] = self.member_values(m)
        keep = np.array([j for j, m in enumerate(self.live) if m not in members], dtype="int32")
        self.live = [self.live[j] for j in keep]
        self._state = tuple([values[keep] for values in part] for part in self._state)

    def write_back(self) -> None:
        """Assigns each member's current values to its own keras.Model."""
        for i, model in enumerate(self.models):
            for variable, values in zip(model.trainable_variables, self.member_values(i)):
                variable.assign(values)
