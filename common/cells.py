"""Recurrent cell variants that Keras does not ship, for use with `keras.layers.RNN`.

`NoForgetLSTMCell` is the LSTM of Hochreiter & Schmidhuber (1997): input and output
gates around a constant error carousel, `c_t = c_{t-1} + i_t * g_t`, with no forget
gate (added by Gers et al. 2000). It equals Keras' LSTM with the forget gate fixed at 1.
Only `keras.ops` is used, so it runs on TensorFlow and JAX alike.

    layer = keras.layers.RNN(NoForgetLSTMCell(32), return_sequences=False)
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="common")
class NoForgetLSTMCell(keras.layers.Layer):
    """LSTM cell without a forget gate (the 1997 "vanilla" LSTM with a constant error carousel).

    Weights follow Keras' LSTMCell layout minus the forget block: `kernel` `[input_dim, 3*units]`,
    `recurrent_kernel` `[units, 3*units]` and `bias` `[3*units]`, ordered (input gate, candidate,
    output gate).

        i = sigmoid(x W_i + h U_i + b_i)     g = tanh(x W_g + h U_g + b_g)
        o = sigmoid(x W_o + h U_o + b_o)     c = c_prev + i * g     h = o * tanh(c)

    Without a forget gate the cell state can only grow in magnitude, which is why
    Gers et al. (2000) added one for long continual streams; on short, reset-per-sequence
    tasks the carousel alone already bridges long lags.

    Args:
        units: width of the hidden and cell state.
        activation: squashing of the candidate and the cell state (tanh in both papers).
        recurrent_activation: gate nonlinearity (sigmoid).
        use_bias: add a bias to every gate.
        kernel_initializer, recurrent_initializer, bias_initializer: as in `keras.layers.LSTMCell`.

    Call: `cell(inputs [batch, input_dim], [h [batch, units], c [batch, units]])`
    returns `(h, [h, c])`.
    """

    def __init__(
        self,
        units: int,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 3 * self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = (
            self.add_weight(shape=(3 * self.units,), initializer=self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]  # [batch, units] each
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel)  # [batch, 3*units]
        if self.use_bias:
            z = z + self.bias
        z_i, z_g, z_o = ops.split(z, 3, axis=-1)
        i = self.recurrent_activation(z_i)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        c = c_prev + i * g  # The constant error carousel: no forget gate scales c_prev.
        h = o * self.activation(c)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            recurrent_activation=keras.activations.serialize(self.recurrent_activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
