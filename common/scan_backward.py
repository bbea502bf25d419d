"""LSTM/GRU recurrences with a hand-written backward pass (JAX only), for `ScanLSTM`/`ScanGRU`
(`fused_backward=True`, their default; `*_scan_autodiff` differentiate the same forward by JAX).

Autodiff of a scan accumulates the recurrent kernel's gradient `h_{t-1}^T dz_t` inside the
backward loop: one small matmul per time step, plus an add. Here the backward loop only carries
the state cotangents and stacks each step's gate cotangents `dz_t`; the kernel's gradient is then
one large matmul over all steps, `H_prev^T DZ`, as cuDNN computes it. On a GPU at small widths,
where kernel launches per time step set the pace, that removes a third of the loop's matmuls.

Inputs are time-major: projected inputs `p` `[time, batch, gates*units]` (input matmul and input
bias already applied), boolean `mask` `[time, batch, 1]` or None (every step counts). Masked
steps keep the state; their output is the kept state, or zeros with `zero_masked`. Outputs:
`(outputs [time, batch, units], last h, last c)` for the LSTM, `(outputs, last h)` for the GRU;
`outputs` is None unless `sequences` (then no per-step outputs are stored, nor their cotangents
carried). tests/common/test_scan_rnn.py compares values and gradients with Keras' layers.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_sigmoid = jax.nn.sigmoid


def _with_backward(forward, backward):
    """`forward(unroll, zero_masked, sequences, p, kernel, ..., mask) -> (result, saved)` as a function
    whose gradient is `backward(unroll, zero_masked, sequences, (saved, kernel, mask), cotangents)`."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
    def scan(unroll, zero_masked, sequences, *args):
        return forward(unroll, zero_masked, sequences, *args)[0]

    def scan_forward(unroll, zero_masked, sequences, *args):
        result, saved = forward(unroll, zero_masked, sequences, *args)
        return result, (saved, args[1], args[-1])  # the kernel and the mask

    scan.defvjp(scan_forward, backward)
    return scan


def _where(mask, new, old):
    """`mask ? new : old`; without a mask (None) every step counts, and no select is traced."""
    return new if mask is None else jnp.where(mask, new, old)


def _split(mask, cotangent):
    """The cotangent of `state = mask ? new : previous`, as (its part for new, its part for previous)."""
    if mask is None:
        return cotangent, jnp.zeros_like(cotangent)
    return jnp.where(mask, cotangent, 0.0), jnp.where(mask, 0.0, cotangent)


def _masked_cotangents(dh, d_out, mask, zero_masked):
    """(cotangent of the new state before masking, cotangent passed straight to the previous state)."""
    if d_out is None:  # no per-step outputs: only the final state carries a cotangent
        d_out = 0.0
    if zero_masked:  # output = mask ? new : 0, state = mask ? new : previous (zero_masked implies a mask)
        return jnp.where(mask, dh + d_out, 0.0), jnp.where(mask, 0.0, dh)
    return _split(mask, dh + d_out)  # output = state = mask ? new : previous


def _lstm_forward(unroll, zero_masked, sequences, p, kernel, h0, c0, mask, save=True):
    units = h0.shape[-1]

    def step(carry, inputs):
        h, c = carry
        p_t, m = inputs
        z = p_t + h @ kernel  # gates i, f, c, o
        i, f = _sigmoid(z[:, :units]), _sigmoid(z[:, units:2 * units])
        g, o = jnp.tanh(z[:, 2 * units:3 * units]), _sigmoid(z[:, 3 * units:])
        c_new = f * c + i * g
        tanh_c = jnp.tanh(c_new)
        h_new = o * tanh_c
        h_t, c_t = _where(m, h_new, h), _where(m, c_new, c)
        out = _where(m, h_new, 0.0) if zero_masked else h_t
        return (h_t, c_t), (out if sequences else None, (h, c, i, f, g, o, tanh_c) if save else ())

    (h_last, c_last), (outputs, saved) = jax.lax.scan(step, (h0, c0), (p, mask), unroll=unroll)
    return (outputs, h_last, c_last), saved


def _lstm_bwd(unroll, zero_masked, sequences, residuals, cotangents):
    (h_prev, c_prev, i, f, g, o, tanh_c), kernel, mask = residuals
    d_outputs, d_h_last, d_c_last = cotangents
    kernel_t = kernel.T

    def step(carry, inputs):
        dh, dc = carry  # cotangents of the state after this step
        d_out, c_p, i_, f_, g_, o_, tc, m = inputs
        d_h_new, dh_pass = _masked_cotangents(dh, d_out, m, zero_masked)
        d_c_new, dc_pass = _split(m, dc)
        dc_total = d_c_new + d_h_new * o_ * (1.0 - tc * tc)
        dz = jnp.concatenate([dc_total * g_ * i_ * (1.0 - i_), dc_total * c_p * f_ * (1.0 - f_),
                              dc_total * i_ * (1.0 - g_ * g_), d_h_new * tc * o_ * (1.0 - o_)], axis=-1)
        return (dh_pass + dz @ kernel_t, dc_pass + dc_total * f_), dz

    (dh0, dc0), dz_all = jax.lax.scan(step, (d_h_last, d_c_last), (d_outputs, c_prev, i, f, g, o, tanh_c, mask),
                                      reverse=True, unroll=unroll)
    d_kernel = jnp.einsum("tbh,tbg->hg", h_prev, dz_all)  # one matmul over all steps
    return dz_all, d_kernel, dh0, dc0, None



def _gru_forward(unroll, zero_masked, sequences, p, kernel, recurrent_bias, h0, mask, save=True):
    units = h0.shape[-1]

    def step(h, inputs):
        p_t, m = inputs
        rec = h @ kernel + recurrent_bias  # gates z, r, h (reset_after=True)
        z = _sigmoid(p_t[:, :units] + rec[:, :units])
        r = _sigmoid(p_t[:, units:2 * units] + rec[:, units:2 * units])
        rec_h = rec[:, 2 * units:]
        candidate = jnp.tanh(p_t[:, 2 * units:] + r * rec_h)
        h_new = z * h + (1.0 - z) * candidate
        h_t = _where(m, h_new, h)
        out = _where(m, h_new, 0.0) if zero_masked else h_t
        return h_t, (out if sequences else None, (h, z, r, candidate, rec_h) if save else ())

    h_last, (outputs, saved) = jax.lax.scan(step, h0, (p, mask), unroll=unroll)
    return (outputs, h_last), saved


def _gru_bwd(unroll, zero_masked, sequences, residuals, cotangents):
    (h_prev, z, r, candidate, rec_h), kernel, mask = residuals
    d_outputs, d_h_last = cotangents
    kernel_t = kernel.T

    def step(dh, inputs):
        d_out, h_p, z_, r_, cand, rh, m = inputs
        d_h_new, dh_pass = _masked_cotangents(dh, d_out, m, zero_masked)
        dz_pre = d_h_new * (h_p - cand) * z_ * (1.0 - z_)
        dcand_pre = d_h_new * (1.0 - z_) * (1.0 - cand * cand)
        dr_pre = dcand_pre * rh * r_ * (1.0 - r_)
        d_rec = jnp.concatenate([dz_pre, dr_pre, dcand_pre * r_], axis=-1)
        d_p = jnp.concatenate([dz_pre, dr_pre, dcand_pre], axis=-1)
        return dh_pass + d_h_new * z_ + d_rec @ kernel_t, (d_p, d_rec)

    dh0, (d_p_all, d_rec_all) = jax.lax.scan(step, d_h_last, (d_outputs, h_prev, z, r, candidate, rec_h, mask),
                                             reverse=True, unroll=unroll)
    d_kernel = jnp.einsum("tbh,tbg->hg", h_prev, d_rec_all)  # one matmul over all steps
    return d_p_all, d_kernel, d_rec_all.sum(axis=(0, 1)), dh0, None


lstm_scan = _with_backward(_lstm_forward, _lstm_bwd)  # (unroll, zero_masked, sequences, p, kernel, h0, c0, mask)
gru_scan = _with_backward(_gru_forward, _gru_bwd)  # (..., p, kernel, recurrent_bias, h0, mask)


# The same forward passes, differentiated by JAX (`fused_backward=False`): the reference the
# hand-written backward passes are compared and timed against.
def lstm_scan_autodiff(unroll, zero_masked, sequences, *args):
    return _lstm_forward(unroll, zero_masked, sequences, *args, save=False)[0]  # JAX keeps its own residuals


def gru_scan_autodiff(unroll, zero_masked, sequences, *args):
    return _gru_forward(unroll, zero_masked, sequences, *args, save=False)[0]
