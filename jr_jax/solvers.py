"""Solvers: one-step methods for the Jansen–Rit SDE  dX = f(X, μ(t)) dt + G dW, each an object.

The noise is additive and enters only y4 (the excitatory interneuron kernel), through the drive p = μ + σ ξ.
A solver owns its step ``step(state, t, dt, params, drive, noise, coupling=None) -> state`` (which calls the one
model, :mod:`jr_jax.model`), its stage times ``stages`` (the fractions c of dt at which it evaluates the right-hand
side; a network computes its delayed input at exactly these) and its noise layout ``noise(key, dt, params, drive)``
(the random numbers of one step), so the same code runs deterministic and stochastic problems and a new method is one
class. ``coupling``, for networks (:mod:`jr_jax.network`), is ``coupling(state, c) -> (dp, q)``: the extra input to
p and to the pyramidal kernel (Hz) at the stage time t + c·dt, given that stage's state.

* :class:`Euler` (``"euler"``) — Euler / Euler–Maruyama (deterministic order 1; strong order 1 for additive noise).
* :class:`Heun` (``"heun"``) — Heun / stochastic Heun (order 2; strong order 1 for additive noise).
* :class:`RK4` (``"rk4"``, the default) — classic Runge–Kutta 4 (order 4); with noise the increment is held over
  the step (strong order 1).
* :class:`Kutta38` (``"kutta38"``) — Kutta's 3/8 rule (order 4, stages at 0, ⅓, ⅔, 1); noise as in RK4.
* :class:`Strang` (``"strang"``) — Strang splitting of Ableidinger, Buckwar & Hinterleitner (2017): the linear PSP
  kernels with the white noise are solved exactly over dt/2, the nonlinear firing-rate part over dt in between
  (order 2; strong order 1). Exact in the linear limit, so it keeps the noise statistics right at large dt.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import brainunit as u
import jax.numpy as jnp

from . import rng
from .model import JRState, firing_rates, pack, rhs, unpack

DEFAULT_METHOD = "rk4"


class ExplicitNoise(NamedTuple):
    """Random part of p over one step (Hz): the per-step draw plus σ·ΔW/dt; ``None`` for a deterministic drive."""

    xi: u.Quantity | None


class SplitNoise(NamedTuple):
    """For ``strang``: the per-step draw (Hz) and the stochastic convolutions of each half step.

    ``j*`` are ∫₀^{dt/2} (u·e^{−a u}, (1 − a u)·e^{−a u}) dW for the first and second half (units s·√s and √s);
    ``None`` where the drive has no such part.
    """

    xi: u.Quantity | None
    jy1: u.Quantity | None
    jv1: u.Quantity | None
    jy2: u.Quantity | None
    jv2: u.Quantity | None


def _input(drive, t, noise):
    """The external input p (Hz) at time t of a step with these random numbers."""
    mean = drive.mean(t)
    return mean if noise.xi is None else mean + noise.xi


def _coupled(state, p, c, coupling):
    """(p, q): the input p plus the network's input at stage fraction c (q: onto the pyramidal kernel), if any."""
    if coupling is None:
        return p, None
    dp, q = coupling(state, c)
    return (p if dp is None else p + dp), q


def _stage(y, p, c, dt, params, coupling):
    """dt·f(y) for a packed state ``y`` (see :func:`jr_jax.model.pack`) with input ``p`` at stage fraction ``c``."""
    state = unpack(y)
    d = rhs(state, params, *_coupled(state, p, c, coupling))
    return pack(JRState(*(dt * x for x in d)))


# -- the solvers ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Solver:
    """Base class of the solvers. A subclass sets ``name``, ``order`` (deterministic), ``strong_order`` (additive
    noise), ``stages`` (the fractions of dt at which ``step`` calls the right-hand side and the coupling, in the order
    it calls them; a stage at 0 is evaluated at the step's start state, which a delayed network relies on when it
    carries its read from the end of one step to the start of the next) and defines ``step``; ``noise`` draws the
    explicit layout (:class:`ExplicitNoise`, one draw held over the step) unless overridden. Solvers are frozen and
    field-less, so equal solvers hash equal and a compiled loop is reused."""

    name: ClassVar[str]
    order: ClassVar[int]
    strong_order: ClassVar[float] = 1.0
    stages: ClassVar[tuple[float, ...]]
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        """A solver that defines ``step`` must say what it is: a ``name``, its ``order`` and its ``stages``."""
        super().__init_subclass__(**kwargs)
        if "step" not in cls.__dict__:
            return
        name, stages = getattr(cls, "name", None), getattr(cls, "stages", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"solver {cls.__qualname__} must set name = '...' (a short identifier).")
        if (not isinstance(stages, tuple) or not stages
                or not all(isinstance(c, (int, float)) and 0 <= c <= 1 for c in stages)):
            raise TypeError(f"solver {cls.__qualname__} must set stages = (c, ...): the fractions of dt in [0, 1] "
                            f"at which its step calls the right-hand side; got {stages!r}.")
        if not isinstance(getattr(cls, "order", None), int):
            raise TypeError(f"solver {cls.__qualname__} must set order = n (its deterministic order).")

    def spec(self) -> str:
        """What identifies the solver's numbers in a checkpoint folder: its class path and its fields."""
        return f"{type(self).__module__}.{self!r}"

    def step(self, state, t, dt, params, drive, noise, coupling=None) -> JRState:
        raise NotImplementedError

    def noise(self, key, dt, params, drive):
        """The random numbers of one step (``None`` parts for a deterministic drive)."""
        if not drive.is_random:
            return ExplicitNoise(None)
        k_step, k_white = rng.split(key)
        xi = drive.step_noise(k_step, dt) if drive.has_step_noise else None
        sigma = drive.sigma
        if sigma is not None:
            white = (sigma * (rng.normal(k_white, ()) * u.math.sqrt(dt)) / dt).to(u.Hz)
            xi = white if xi is None else xi + white
        return ExplicitNoise(xi)


@dataclasses.dataclass(frozen=True)
class Euler(Solver):
    name = "euler"
    order = 1
    stages = (0,)
    description = "Euler / Euler–Maruyama"

    def step(self, state, t, dt, params, drive, noise: ExplicitNoise, coupling=None):
        y = pack(state)
        return unpack(y + _stage(y, _input(drive, t, noise), 0, dt, params, coupling))


@dataclasses.dataclass(frozen=True)
class Heun(Solver):
    name = "heun"
    order = 2
    stages = (0, 1)
    description = "Heun / stochastic Heun"

    def step(self, state, t, dt, params, drive, noise: ExplicitNoise, coupling=None):
        y = pack(state)
        k1 = _stage(y, _input(drive, t, noise), 0, dt, params, coupling)
        k2 = _stage(y + k1, _input(drive, t + dt, noise), 1, dt, params, coupling)
        return unpack(y + (k1 + k2) / 2)


@dataclasses.dataclass(frozen=True)
class RK4(Solver):
    name = "rk4"
    order = 4
    stages = (0, 0.5, 1)
    description = "classic Runge–Kutta 4 (noise held over the step)"

    def step(self, state, t, dt, params, drive, noise: ExplicitNoise, coupling=None):
        y = pack(state)
        p_mid = _input(drive, t + dt / 2, noise)
        k1 = _stage(y, _input(drive, t, noise), 0, dt, params, coupling)
        k2 = _stage(y + k1 / 2, p_mid, 0.5, dt, params, coupling)
        k3 = _stage(y + k2 / 2, p_mid, 0.5, dt, params, coupling)
        k4 = _stage(y + k3, _input(drive, t + dt, noise), 1, dt, params, coupling)
        return unpack(y + (k1 + 2 * k2 + 2 * k3 + k4) / 6)


@dataclasses.dataclass(frozen=True)
class Kutta38(Solver):
    """Kutta's 3/8 rule: order 4 with stages at ⅓ and ⅔ of the step."""

    name = "kutta38"
    order = 4
    stages = (0, 1 / 3, 2 / 3, 1)
    description = "Kutta's 3/8 rule (noise held over the step)"

    def step(self, state, t, dt, params, drive, noise: ExplicitNoise, coupling=None):
        _, c2, c3, _ = self.stages
        y = pack(state)
        k1 = _stage(y, _input(drive, t, noise), 0, dt, params, coupling)
        k2 = _stage(y + k1 / 3, _input(drive, t + c2 * dt, noise), c2, dt, params, coupling)
        k3 = _stage(y - k1 / 3 + k2, _input(drive, t + c3 * dt, noise), c3, dt, params, coupling)
        k4 = _stage(y + k1 - k2 + k3, _input(drive, t + dt, noise), 1, dt, params, coupling)
        return unpack(y + (k1 + 3 * k2 + 3 * k3 + k4) / 8)


# -- Strang splitting ------------------------------------------------------------------------------------------

def _linear_half(y, params, h, sigma, jy, jv):
    """Exact flow over time h of the three free PSP kernels (d/dt + k)² y = 0 on a packed state, k = (a, a, b),
    plus the white noise, which enters the excitatory kernel (y1, y4) through the gain A a σ."""
    shape = y.shape[1:]
    k = u.math.stack([u.math.broadcast_to(params.a, shape), u.math.broadcast_to(params.a, shape),
                      u.math.broadcast_to(params.b, shape)])
    x, v = u.Quantity(y[:3], unit=u.mV), u.Quantity(y[3:], unit=u.mV / u.second)
    kh = u.maybe_decimal(k * h)
    e = jnp.exp(-kh)
    s = unpack(jnp.concatenate([(e * ((1 + kh) * x + h * v)).to_decimal(u.mV),
                                (e * ((1 - kh) * v - k * kh * x)).to_decimal(u.mV / u.second)]))
    if sigma is not None:
        g = params.A * params.a * sigma
        s = s._replace(y1=s.y1 + g * jy, y4=s.y4 + g * jv)
    return pack(s)


@dataclasses.dataclass(frozen=True)
class Strang(Solver):
    """Strang splitting with the exact linear flow (Ableidinger, Buckwar & Hinterleitner 2017). Its noise is the
    stochastic convolutions of each half step (:class:`SplitNoise`)."""

    name = "strang"
    order = 2
    stages = (0.5,)
    description = "Strang splitting, exact linear part (Ableidinger et al. 2017)"

    def step(self, state, t, dt, params, drive, noise: SplitNoise, coupling=None):
        half = dt / 2
        sigma = drive.sigma
        s = unpack(_linear_half(pack(state), params, half, sigma, noise.jy1, noise.jv1))
        to_pyr, to_exc, to_inh = firing_rates(s, params, *_coupled(s, _input(drive, t + half, noise), 0.5, coupling))
        s = s._replace(y3=s.y3 + dt * params.A * params.a * to_pyr,
                       y4=s.y4 + dt * params.A * params.a * to_exc,
                       y5=s.y5 + dt * params.B * params.b * to_inh)
        return unpack(_linear_half(pack(s), params, half, sigma, noise.jy2, noise.jv2))

    def noise(self, key, dt, params, drive):
        if not drive.is_random:
            return SplitNoise(None, None, None, None, None)
        k_step, k_white = rng.split(key)
        xi = drive.step_noise(k_step, dt) if drive.has_step_noise else None
        if drive.sigma is None:
            return SplitNoise(xi, None, None, None, None)
        l11, l21, l22 = convolution_cholesky(params.a, dt / 2)
        z = rng.normal(k_white, (4,))
        return SplitNoise(xi, l11 * z[0], l21 * z[0] + l22 * z[1], l11 * z[2], l21 * z[2] + l22 * z[3])


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


# -- by name ----------------------------------------------------------------------------------------------------

SOLVERS: dict[str, type[Solver]] = {cls.name: cls for cls in (Euler, Heun, RK4, Kutta38, Strang)}
"""The built-in solvers by name; ``method=`` also takes any :class:`Solver` instance."""

ALIASES = {"euler_maruyama": "euler", "em": "euler", "stochastic_heun": "heun", "splitting": "strang",
           "rk38": "kutta38"}


def solver(method: str | Solver) -> Solver:
    """The solver for ``method``: a :class:`Solver` instance, or a name among :data:`SOLVERS` and :data:`ALIASES`."""
    if isinstance(method, Solver):
        return method
    if isinstance(method, type) and issubclass(method, Solver):
        return method()
    key = ALIASES.get(method, method) if isinstance(method, str) else None
    if key not in SOLVERS:
        raise ValueError(f"method must be one of {sorted(SOLVERS)} (aliases {sorted(ALIASES)}) or a "
                         f"jr_jax.solvers.Solver; got {method!r}.")
    return SOLVERS[key]()
