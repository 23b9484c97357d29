"""The delayed read of a network's stored presynaptic rates (:mod:`jr_jax.network`): the weights that turn the
samples kept at whole steps into the rate at a stage's delayed time t + c·dt − τ.

Two reads, chosen by ``network(..., interpolation=...)``:

* ``"linear"``: linear interpolation between the two stored steps around the read time. Its error is O(dt²), so RK4
  in a delayed network converges at second order.
* ``"hermite"``: cubic Hermite interpolation from the two steps' rates S and time derivatives dS/dt = S'(v)·dv/dt
  (dv/dt is part of the state: y4 − y5, or y3 for the pyramidal rule), stored beside the rates. Its error is
  O(dt⁴), so RK4 keeps its fourth order.

Inside the current step (τ < c·dt) both interpolate between the step's start and the stage's own state (Hermite:
with both ends' derivatives). At τ = 0 that is the stage's own rate, so instantaneous coupling is the plain
Runge–Kutta stage; for 0 < τ < c·dt the read carries the stage state's error (Hermite: third order, measured),
which concerns only delays shorter than a step (for a fixed τ > 0 it is gone once dt < τ). Both reads are
continuous in τ, the Hermite read also in its derivative, so the delays (the speed), the weights and G are
differentiable. The samples travel through the loop in a flat ring buffer laid out by :func:`to_ring`.
"""

from __future__ import annotations

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .model import sigmoid

READS = ("linear", "hermite")


# -- the loop's ring buffer: the history's rows, flat, once or twice over ----------------------------------------
# A read at step s of the sample r steps back or ahead (−(rows − 2) ≤ r ≤ 2) is at the flat row
# (s mod rows) + r + rows − 2, in [0, 2·rows): with the rows twice over no modulo per sample is needed (a simulation's
# loop is faster so), with them once (a checkpointed loop's, whose blocks store the buffer) it is taken. Flat row p
# holds ring row (p + 2) mod rows.

def to_ring(history, step, copies: int):
    """The loop's flat buffer of a network's history (rows, ...) whose row 0 is global step ``step``."""
    rows = history.shape[0]
    ring = jnp.roll(history, step % rows, axis=0)                       # step m in ring row m mod rows
    return ring[(np.arange(copies * rows) + 2) % rows].reshape(-1)


def from_ring(flat, step, shape, copies: int):
    """The network's history (of ``shape``) at global step ``step`` from the loop's flat buffer."""
    rows = shape[0]
    ring = flat.reshape((copies * rows,) + tuple(shape[1:]))[(np.arange(rows) - 2) % rows]
    return jnp.roll(ring, -(step % rows), axis=0)


def write_row(flat, row, step, copies: int):
    """``flat`` with the samples ``row`` of global step ``step`` stored in each copy of their row."""
    rows = flat.shape[0] // (copies * row.shape[0])
    first = (step - 2) % rows * row.shape[0]
    for k in range(copies):
        flat = jax.lax.dynamic_update_slice(flat, row, (first + k * rows * row.shape[0],))
    return flat


def flat_places(base, size: int, step, copies: int, width: int):
    """The flat places at global step ``step`` of samples whose places at a step ≡ 0 (mod rows) are ``base``, in a
    flat buffer of ``size`` with rows of ``width``."""
    rows = size // (copies * width)
    flat = base + step % rows * width
    return flat if copies == 2 else flat % (rows * width)


def hermite_basis(s):
    """The cubic Hermite basis on [0, 1]: the weights of the left value, left slope·h, right value, right slope·h."""
    s2 = s * s
    s3 = s2 * s
    return 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, 3 * s2 - 2 * s3, s3 - s2


def rate_and_slope(v, dv, params):
    """(S(v) in Hz, dS/dt = S'(v)·dv/dt in Hz/s) as plain numbers, for a potential ``v`` (mV) moving at ``dv``
    (mV/s); S' = r·S·(1 − S / 2e0)."""
    rate = sigmoid(v, params)
    slope = params.r * rate * (1 - rate / (2 * params.e0)) * dv
    return rate.to_decimal(u.Hz), slope.to_decimal(u.Hz / u.second)


def linear_weights(d, lo, c, gk, dtype):
    """Linear read at stage fraction ``c`` for delays of ``d`` steps (samples at step + lo + {0, 1, 2}): the three
    sample planes' weights and those of the step's start and the stage's own rate, each times ``gk`` = G·K."""
    r = c - d
    lc = jnp.floor(r)
    w = r - lc
    shift = lc - lo                          # 0 or 1: which two of the three planes
    past = (r < 0).astype(dtype) * gk
    planes = [past * jnp.where(shift == 0, 1 - w, 0.0),
              past * jnp.where(shift == 0, w, 1 - w),
              past * jnp.where(shift == 0, 0.0, w)]
    now = (r >= 0).astype(dtype) * gk
    if c == 0:
        start, stage = jnp.zeros_like(now), now
    else:
        start, stage = now * (1 - r / c), now * (r / c)
    return planes, start, stage


def hermite_weights(d, lo, c, gk, dt_s, dtype):
    """Hermite read at stage fraction ``c``: weights (3, N, N, 2) of the sample planes step + lo + {0, 1, 2} (last
    axis: rate, slope in Hz/s), the step's start folded into its plane, and (N, N, 2) of the stage's own rate and
    slope; each times ``gk`` = G·K."""
    r = c - d
    lc = jnp.floor(r)
    h00, h10, h01, h11 = hermite_basis(r - lc)
    first = (lc == lo).astype(dtype)         # the interval is planes (0, 1), else (1, 2)
    past = (r < 0).astype(dtype) * gk
    left = jnp.stack([h00, dt_s * h10], -1)
    right = jnp.stack([h01, dt_s * h11], -1)
    f = first[..., None]
    planes = past[None, ..., None] * jnp.stack([f * left, f * right + (1 - f) * left, (1 - f) * right])
    now = ((r >= 0).astype(dtype) * gk)[..., None]
    if c == 0:                               # r >= 0 only for τ = 0: the stage's own rate
        return planes, now * jnp.stack([jnp.ones_like(r), jnp.zeros_like(r)], -1)
    g00, g10, g01, g11 = hermite_basis(jnp.clip(r, 0, c) / c)
    start = now * jnp.stack([g00, c * dt_s * g10], -1)
    at_start = (jnp.arange(3)[:, None, None] == -lo[None]).astype(dtype)[..., None]    # plane of step + 0
    return planes + at_start * start[None], now * jnp.stack([g01, c * dt_s * g11], -1)


def sample_sums(weights, samples):
    """Σ_k weights[i, c, k] · samples[i, k], shape (stages, N): one matrix-vector product per receiver i (XLA's
    dot on a CPU is several times faster than a fused multiply and sum; full float32 precision on a GPU)."""
    return jax.lax.dot_general(weights, samples, (((2,), (1,)), ((0,), (0,))), precision=jax.lax.Precision.HIGHEST).T


@jax.custom_vjp
def past_sums(weights, samples):
    """:func:`sample_sums`: every stage's read of the stored samples (i: receiver, c: stage, k: the receiver's
    sample planes × sender slots), computed once per step. Its own gradient rule keeps the gradient of a delayed
    network lean: one product per pair and stage, on stage cotangents computed once."""
    return sample_sums(weights, samples)


def _past_sums_fwd(weights, samples):
    return sample_sums(weights, samples), (weights, samples)    # plain operations: forward-over-reverse works


def _past_sums_bwd(res, g):
    weights, samples = res
    # g is materialised first: fused into the per-pair products, XLA recomputes its whole chain per pair
    g = jax.lax.optimization_barrier(g)
    return samples[:, None, :] * g.T[:, :, None], sum(weights[:, c] * g[c][:, None] for c in range(g.shape[0]))


past_sums.defvjp(_past_sums_fwd, _past_sums_bwd)
