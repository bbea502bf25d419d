"""Gradient flow through time: the norm of dLoss/dh_t for every step t of a trained model.

The total derivative of the loss with respect to the hidden state h_t (through the
recurrence, not only the direct path) is measured with a probe: the model's own cell is
wrapped so that every new hidden state gets `+ delta_t` before it is emitted and fed
back, and the gradient with respect to `delta` (at `delta = 0`) is exactly dLoss/dh_t.
The probe model is keras.ops-only; only the gradient call is per backend
(TensorFlow: `tf.GradientTape`, JAX: `jax.grad`, PyTorch: `torch.autograd`).

    norms = hidden_gradient_norms(model, x, y, loss="mse")  # numpy [T]
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from apps.experiments.model import RECURRENT_LAYER_NAME


class HiddenProbeCell(keras.layers.Layer):
    """Wraps a built recurrent cell; its input is `concat([x_t, delta_t])` and it emits `h_t + delta_t`.

    The perturbed h replaces the first state (h for SimpleRNN, GRU and both LSTM cells),
    so delta enters the recurrence as well as the output.
    """

    def __init__(self, cell: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.units = int(cell.units)
        self.state_size = cell.state_size
        self.output_size = self.units

    def build(self, input_shape):
        self.built = True  # The wrapped cell is already built with the trained weights.

    def call(self, inputs, states, training=False):
        x = inputs[:, : -self.units]  # [batch, features]
        delta = inputs[:, -self.units:]  # [batch, units]
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        output, new_states = self.cell(x, states, training=training)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        h = output + delta
        new_states[0] = h
        return h, new_states


def build_probe_model(model: keras.Model, layer_name: str = RECURRENT_LAYER_NAME) -> keras.Model:
    """`[sequence [b, T, F], delta [b, T, units]] -> model output`, sharing the model's weights.

    Expects the experiment model layout: Input -> recurrent layer (last output) -> head layers.
    """
    recurrent = model.get_layer(layer_name)
    cell = recurrent.cell
    length, features = model.inputs[0].shape[1], model.inputs[0].shape[2]
    sequence = keras.Input((length, features), name="sequence")
    delta = keras.Input((length, int(cell.units)), name="delta")
    joined = keras.layers.Concatenate(axis=-1)([sequence, delta])
    hidden = keras.layers.RNN(HiddenProbeCell(cell), return_sequences=False, name="probe")(joined)
    position = model.layers.index(recurrent)
    for layer in model.layers[position + 1:]:
        hidden = layer(hidden)
    return keras.Model([sequence, delta], hidden, name="gradient_probe")


def _summed_loss(loss: str, y, predictions):
    """Sum over the batch, so every example's gradient is its own dLoss/dh_t."""
    if loss == "mse":
        return ops.sum(ops.mean(ops.square(predictions - ops.cast(y, predictions.dtype)), axis=-1))
    if loss == "sparse_categorical_crossentropy":
        return ops.sum(keras.losses.sparse_categorical_crossentropy(y, predictions))
    raise ValueError(f"loss must be 'mse' or 'sparse_categorical_crossentropy', got {loss!r}")


def hidden_gradients(probe: keras.Model, x: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """dLoss/dh_t for every example and step: `[batch, T, units]` (backend-specific autodiff)."""
    backend = keras.backend.backend()
    units = probe.inputs[1].shape[-1]
    zeros = np.zeros((x.shape[0], x.shape[1], units), dtype="float32")
    x = np.asarray(x, dtype="float32")
    if backend == "tensorflow":
        import tensorflow as tf

        delta = tf.constant(zeros)
        with tf.GradientTape() as tape:
            tape.watch(delta)
            value = _summed_loss(loss, y, probe([tf.constant(x), delta], training=False))
        return tape.gradient(value, delta).numpy()
    if backend == "jax":
        import jax

        trainable = [v.value for v in probe.trainable_variables]
        non_trainable = [v.value for v in probe.non_trainable_variables]

        def loss_of_delta(delta):
            predictions, _ = probe.stateless_call(trainable, non_trainable, [x, delta], training=False)
            return _summed_loss(loss, y, predictions)

        return np.asarray(jax.grad(loss_of_delta)(jax.numpy.asarray(zeros)))
    if backend == "torch":
        import torch

        delta = torch.zeros(zeros.shape, requires_grad=True)
        value = _summed_loss(loss, y, probe([torch.as_tensor(x), delta], training=False))
        value.backward()
        return delta.grad.detach().cpu().numpy()
    raise ValueError(f"gradient measurement supports the tensorflow, jax and torch backends, not {backend!r}")


def hidden_gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray, loss: str,
                          layer_name: str = RECURRENT_LAYER_NAME) -> np.ndarray:
    """Mean over examples of `||dLoss/dh_t||_2`, one value per step t: numpy `[T]`."""
    grads = hidden_gradients(build_probe_model(model, layer_name), x, y, loss)  # [batch, T, units]
    return np.linalg.norm(grads, axis=-1).mean(axis=0)


class HiddenGradientProbe:
    """`hidden_gradient_norms` compiled once (JAX) and applied to any weights of one architecture.

    The experiments measure ||dLoss/dh_t|| for every member of a group before and after training;
    the members share the template model's architecture, so one jitted probe serves them all.

        probe = HiddenGradientProbe(template_model, "mse")
        norms = probe(member_values, x, y)  # numpy [T]; values in template.trainable_variables order
    """

    def __init__(self, model: keras.Model, loss: str, layer_name: str = RECURRENT_LAYER_NAME):
        import jax

        if keras.backend.backend() != "jax":
            raise ValueError("HiddenGradientProbe needs the JAX backend; use hidden_gradient_norms elsewhere")
        probe = build_probe_model(model, layer_name)
        model_variables = list(model.trainable_variables)
        # The probe shares the model's variables; map its order onto the model's.
        order = [next(i for i, v in enumerate(model_variables) if v is w) for w in probe.trainable_variables]
        non_trainable = [v.value for v in probe.non_trainable_variables]
        units = probe.inputs[1].shape[-1]

        def norms(values, x, y):
            zeros = jax.numpy.zeros((x.shape[0], x.shape[1], units), dtype="float32")

            def loss_of_delta(delta):
                predictions, _ = probe.stateless_call([values[i] for i in order], non_trainable, [x, delta],
                                                      training=False)
                return _summed_loss(loss, y, predictions)

            grads = jax.grad(loss_of_delta)(zeros)  # [batch, T, units]
            return jax.numpy.linalg.norm(grads, axis=-1).mean(axis=0)

        self._norms = jax.jit(norms)

    def __call__(self, values, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(self._norms(list(values), np.asarray(x, dtype="float32"), y))
