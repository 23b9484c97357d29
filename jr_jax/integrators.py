"""One-step integrators for the Jansen–Rit SDE  dX = f(X, μ(t)) dt + G dW.

The noise is additive and enters only y4 (the excitatory interneuron kernel), through the drive p = μ + σ ξ.
Every method is a pure ``step(state, t, dt, params, drive, noise) -> state`` that calls the one model
(:mod:`jr_jax.model`); the random numbers of a step come in ``noise`` (drawn by :func:`draw_noise`, or built by a
caller from a given Brownian path), so the same code runs deterministic and stochastic problems.

* ``euler`` — Euler / Euler–Maruyama (deterministic order 1; strong order 1 for additive noise).
* ``heun`` — Heun / stochastic Heun (order 2; strong order 1 for additive noise).
* ``rk4`` — classic Runge–Kutta 4 (order 4); with noise the increment is held over the step (strong order 1).
* ``strang`` — Strang splitting of Ableidinger, Buckwar & Hinterleitner (2017): the linear PSP kernels with the
  white noise are solved exactly over dt/2, the nonlinear firing-rate part over dt in between (order 2; strong
  order 1). Exact in the linear limit, so it keeps the noise statistics right at large dt.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp

from .model import JRState, firing_rates, rhs

_is_q = lambda x: isinstance(x, u.Quantity)  # noqa: E731


def _axpy(x: JRState, h, k: JRState) -> JRState:
    """x + h·k, leaf by leaf, keeping units."""
    return jax.tree.map(lambda a, b: a + h * b, x, k, is_leaf=_is_q)


def _combine(x: JRState, h, ks, weights) -> JRState:
    def leaf(a, *bs):
        acc = weights[0] * bs[0]
        for w, b in zip(weights[1:], bs[1:]):
            acc = acc + w * b
        return a + h * acc
    return jax.tree.map(leaf, x, *ks, is_leaf=_is_q)


class ExplicitNoise(NamedTuple):
    """Random part of p over one step (Hz): the per-step draw plus σ·ΔW/dt."""

    xi: u.Quantity


class SplitNoise(NamedTuple):
    """For ``strang``: the per-step draw (Hz) and the stochastic convolutions of each half step.

    ``j*`` are ∫₀^{dt/2} (u·e^{−a u}, (1 − a u)·e^{−a u}) dW for the first and second half (units s·√s and √s).
    """

    xi: u.Quantity
    jy1: u.Quantity
    jv1: u.Quantity
    jy2: u.Quantity
    jv2: u.Quantity


# -- explicit Runge–Kutta family -------------------------------------------------------------------------------

def euler(state, t, dt, params, drive, noise: ExplicitNoise):
    return _axpy(state, dt, rhs(state, params, drive.mean(t) + noise.xi))


def heun(state, t, dt, params, drive, noise: ExplicitNoise):
    k1 = rhs(state, params, drive.mean(t) + noise.xi)
    k2 = rhs(_axpy(state, dt, k1), params, drive.mean(t + dt) + noise.xi)
    return _combine(state, dt, (k1, k2), (0.5, 0.5))


def rk4(state, t, dt, params, drive, noise: ExplicitNoise):
    half = dt / 2
    p_mid = drive.mean(t + half) + noise.xi
    k1 = rhs(state, params, drive.mean(t) + noise.xi)
    k2 = rhs(_axpy(state, half, k1), params, p_mid)
    k3 = rhs(_axpy(state, half, k2), params, p_mid)
    k4 = rhs(_axpy(state, dt, k3), params, drive.mean(t + dt) + noise.xi)
    return _combine(state, dt, (k1, k2, k3, k4), (1 / 6, 1 / 3, 1 / 3, 1 / 6))


# -- Strang splitting ------------------------------------------------------------------------------------------

def _kernel_flow(y, v, k, h):
    """Exact flow over time h of the free PSP kernel y'' = −2k y' − k² y (critically damped)."""
    kh = u.maybe_decimal(k * h)
    e = jnp.exp(-kh)
    y_new = e * ((1 + kh) * y + h * v)
    v_new = e * ((1 - kh) * v - k * kh * y)
    return y_new, v_new


def _linear_half(state: JRState, params, h, sigma, jy, jv) -> JRState:
    y0, y3 = _kernel_flow(state.y0, state.y3, params.a, h)
    y1, y4 = _kernel_flow(state.y1, state.y4, params.a, h)
    y2, y5 = _kernel_flow(state.y2, state.y5, params.b, h)
    if sigma is not None:
        g = params.A * params.a * sigma
        y1 = y1 + g * jy
        y4 = y4 + g * jv
    return JRState(y0, y1, y2, y3, y4, y5)


def strang(state, t, dt, params, drive, noise: SplitNoise):
    half = dt / 2
    sigma = drive.sigma
    x = _linear_half(state, params, half, sigma, noise.jy1, noise.jv1)
    to_pyr, to_exc, to_inh = firing_rates(x, params, drive.mean(t + half) + noise.xi)
    x = JRState(x.y0, x.y1, x.y2,
                x.y3 + dt * params.A * params.a * to_pyr,
                x.y4 + dt * params.A * params.a * to_exc,
                x.y5 + dt * params.B * params.b * to_inh)
    return _linear_half(x, params, half, sigma, noise.jy2, noise.jv2)


def _moments(x, n_max=2, terms=14):
    """∫₀¹ sⁿ e^{−x s} ds for n = 0..n_max, stable for small x (series) and large x (closed form)."""
    xs = jnp.minimum(x, 1.0)
    series = []
    for n in range(n_max + 1):
        acc, coef = 0.0, 1.0
        for j in range(terms):
            acc = acc + coef / (n + j + 1)
            coef = coef * (-xs) / (j + 1)
        series.append(acc)
    xl = jnp.maximum(x, 1.0)
    e = jnp.exp(-xl)
    closed = [(1 - e) / xl,
              (1 - e * (1 + xl)) / xl ** 2,
              (2 - e * (2 + 2 * xl + xl ** 2)) / xl ** 3]
    return [jnp.where(x < 1.0, s, c) for s, c in zip(series, closed)]


def convolution_cholesky(k, h):
    """Cholesky factor of the covariance of ∫₀^h (u e^{−k u}, (1 − k u) e^{−k u}) dW(u).

    Returns (l11, l21, l22) with units (s·√s, √s, √s): J = (l11 z1, l21 z1 + l22 z2) for standard normals z.
    """
    kh = u.maybe_decimal(k * h)
    i0, i1, i2 = _moments(2 * kh)           # ∫₀¹ sⁿ e^{−2kh s} ds
    hm = u.maybe_decimal(h.to_decimal(u.second)) if isinstance(h, u.Quantity) else h
    c11 = hm ** 3 * i2
    c12 = hm ** 2 * (i1 - kh * i2)
    c22 = hm * (i0 - 2 * kh * i1 + kh ** 2 * i2)
    l11 = jnp.sqrt(c11)
    l21 = c12 / l11
    l22 = jnp.sqrt(jnp.maximum(c22 - l21 ** 2, 0.0))
    s15, s05 = u.second ** 1.5, u.second ** 0.5
    return u.Quantity(l11, unit=s15), u.Quantity(l21, unit=s05), u.Quantity(l22, unit=s05)


# -- noise ------------------------------------------------------------------------------------------------------

def _step_draw(drive, key, dt):
    if drive.has_step_noise:
        return drive.step_noise(key, dt)
    return 0.0 * u.Hz


def draw_noise(method: str, key, dt, params, drive):
    """The random numbers of one step for ``method`` (zeros for a deterministic drive)."""
    k_step, k_white = jax.random.split(key) if drive.is_random else (None, None)
    xi = _step_draw(drive, k_step, dt) if drive.has_step_noise else 0.0 * u.Hz
    sigma = drive.sigma
    if method == "strang":
        if sigma is None:
            zero_y, zero_v = 0.0 * u.second ** 1.5, 0.0 * u.second ** 0.5
            return SplitNoise(xi, zero_y, zero_v, zero_y, zero_v)
        l11, l21, l22 = convolution_cholesky(params.a, dt / 2)
        z = jax.random.normal(k_white, (4,))
        return SplitNoise(xi, l11 * z[0], l21 * z[0] + l22 * z[1], l11 * z[2], l21 * z[2] + l22 * z[3])
    if sigma is not None:
        dw = jax.random.normal(k_white, ()) * u.math.sqrt(dt)
        xi = xi + sigma * dw / dt
    return ExplicitNoise(xi)


class Method(NamedTuple):
    name: str
    step: Callable
    order: int          # deterministic order
    strong_order: float  # strong order with additive noise
    description: str


METHODS = {
    "euler": Method("euler", euler, 1, 1.0, "Euler / Euler–Maruyama"),
    "heun": Method("heun", heun, 2, 1.0, "Heun / stochastic Heun"),
    "rk4": Method("rk4", rk4, 4, 1.0, "classic Runge–Kutta 4 (noise held over the step)"),
    "strang": Method("strang", strang, 2, 1.0, "Strang splitting, exact linear part (Ableidinger et al. 2017)"),
}
ALIASES = {"euler_maruyama": "euler", "em": "euler", "stochastic_heun": "heun", "splitting": "strang"}


def get_method(name: str) -> Method:
    key = ALIASES.get(name, name)
    if key not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)} (aliases {sorted(ALIASES)}); got {name!r}.")
    return METHODS[key]
