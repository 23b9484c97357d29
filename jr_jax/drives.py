"""External input p(t) onto the excitatory interneurons (Hz).

A drive is a pytree with two parts:

* a deterministic part ``mean(t)`` (Hz), evaluated at the times each integrator needs (so RK4 sees the drive at
  its stages, not a held value);
* optional randomness: Gaussian white noise of intensity ``sigma`` (Hz·√s), so that p = μ(t) + σ ξ(t) and a step of
  length dt sees a standard deviation σ/√dt (statistics do not depend on dt); and/or a per-step draw
  (``uniform(low, high)``, the drive of Jansen & Rit 1995), whose statistics are per step by definition.

Random numbers are drawn inside the compiled loop from an explicit ``jax.random`` key. Drives add with ``+`` (to
drives only). Every constructor checks its arguments (unit, real numbers, finite values, ranges) and names the one
at fault, so that a NaN never reaches a run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import rng
from .units import check_dim, check_number, check_range, describe, is_concrete

_SQRT_S = u.second ** 0.5
SIGMA_UNIT = u.Hz * _SQRT_S


def _hz(name, value, example="120. * u.Hz"):
    """A rate in Hz: unit, real numbers and (when concrete) finite values checked."""
    check_dim(name, value, u.Hz, example)
    check_range(name, value, u.Hz)
    return value


def _sec(name, value, example="0.1 * u.second"):
    """A time: unit, real numbers and (when concrete) finite values checked."""
    check_dim(name, value, u.second, example)
    check_range(name, value, u.second)
    return value


def _below(x, y, unit, strict: bool) -> bool:
    """Whether some concrete value of ``y`` is below (or equal to, with ``strict``) ``x``; traced values pass."""
    if not is_concrete((x, y)):
        return False
    d = np.asarray((y - x).to_decimal(unit))
    return bool(np.any(d <= 0 if strict else d < 0))


def _pytree(cls):
    """Register a frozen dataclass as a pytree whose fields are all data (no recompilation on new values)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])


class Drive:
    """Base class: deterministic ``mean(t)``, white-noise intensity ``sigma`` and an optional per-step draw."""

    def mean(self, t):
        raise NotImplementedError

    @property
    def sigma(self):
        """Gaussian white-noise intensity in Hz·√s, or ``None`` when the drive has none."""
        return None

    def step_noise(self, key, dt):
        """Per-step random value (Hz) that is not white noise, or ``None``."""
        return None

    @property
    def has_step_noise(self) -> bool:
        return False

    @property
    def is_random(self) -> bool:
        return self.sigma is not None or self.has_step_noise

    def __add__(self, other):
        if not isinstance(other, Drive):
            raise TypeError(f"a drive adds only to another drive from jr_jax.drives; got {describe(other)} (a constant "
                            f"input is drives.constant(p * u.Hz)).")
        left = self.terms if isinstance(self, Sum) else (self,)
        right = other.terms if isinstance(other, Sum) else (other,)
        return Sum(left + right)

    def __radd__(self, other):
        raise TypeError(f"a drive adds only to another drive from jr_jax.drives; got {describe(other)} + a drive (a "
                        f"constant input is drives.constant(p * u.Hz)).")


@_pytree
class Constant(Drive):
    value: u.Quantity

    def mean(self, t):
        return self.value


@_pytree
class WhiteNoise(Drive):
    mu: u.Quantity
    noise: u.Quantity

    def mean(self, t):
        return self.mu

    @property
    def sigma(self):
        return self.noise


@_pytree
class Uniform(Drive):
    low: u.Quantity
    high: u.Quantity

    def mean(self, t):
        return (self.low + self.high) / 2

    @property
    def has_step_noise(self):
        return True

    def step_noise(self, key, dt):
        half = (self.high - self.low) / 2
        return half * rng.uniform(key, (), minval=-1.0, maxval=1.0)


@_pytree
class Sinusoid(Drive):
    offset: u.Quantity
    amplitude: u.Quantity
    frequency: u.Quantity
    phase: float

    def mean(self, t):
        return self.offset + self.amplitude * u.math.sin(2 * math.pi * self.frequency * t + self.phase)


@_pytree
class Pulse(Drive):
    onset: u.Quantity
    peak: u.Quantity
    width: u.Quantity
    order: float

    def mean(self, t):
        tau = jnp.maximum(u.maybe_decimal((t - self.onset) / self.width), 0.0)
        n = self.order
        # peak · (τ/n)^n · e^(n − τ): zero before onset, maximal (= peak) at t = onset + n·width.
        shape = jnp.exp(n * jnp.log(jnp.maximum(tau, 1e-30) / n) + n - tau)
        return self.peak * jnp.where(tau > 0, shape, 0.0)


@_pytree
class Ramp(Drive):
    start: u.Quantity
    stop: u.Quantity
    t_start: u.Quantity
    t_stop: u.Quantity

    def mean(self, t):
        frac = jnp.clip(u.maybe_decimal((t - self.t_start) / (self.t_stop - self.t_start)), 0.0, 1.0)
        return self.start + (self.stop - self.start) * frac


@_pytree
class Chirp(Drive):
    offset: u.Quantity
    amplitude: u.Quantity
    f_start: u.Quantity
    f_stop: u.Quantity
    t_stop: u.Quantity

    def mean(self, t):
        # Linear chirp: instantaneous frequency f_start + (f_stop − f_start)·t/t_stop (held after t_stop).
        k = (self.f_stop - self.f_start) / self.t_stop
        tc = u.math.minimum(t, self.t_stop)
        phase = 2 * math.pi * (self.f_start * tc + 0.5 * k * tc * tc + self.f_stop * (t - tc))
        return self.offset + self.amplitude * u.math.sin(phase)


class Table(NamedTuple):
    """Samples along time held by a drive (a Quantity): data of the drive, never one value per parameter set, so a
    batch (:mod:`jr_jax.batches`) shares it whatever its length."""

    samples: u.Quantity


@_pytree
class Samples(Drive):
    values: Table
    dt: u.Quantity

    def mean(self, t):
        x = u.maybe_decimal(t / self.dt)
        vals = self.values.samples.mantissa
        idx = jnp.arange(vals.shape[0], dtype=jnp.result_type(float))
        return u.Quantity(jnp.interp(x, idx, vals), unit=self.values.samples.unit)


@_pytree
class Sum(Drive):
    terms: tuple

    def mean(self, t):
        total = self.terms[0].mean(t)
        for term in self.terms[1:]:
            total = total + term.mean(t)
        return total

    @property
    def sigma(self):
        sigmas = [d.sigma for d in self.terms if d.sigma is not None]
        if not sigmas:
            return None
        var = sigmas[0] ** 2
        for s in sigmas[1:]:
            var = var + s ** 2
        return u.math.sqrt(var)

    @property
    def has_step_noise(self):
        return any(d.has_step_noise for d in self.terms)

    def step_noise(self, key, dt):
        parts = [d for d in self.terms if d.has_step_noise]
        if not parts:
            return None
        keys = rng.split(key, len(parts))
        total = parts[0].step_noise(keys[0], dt)
        for k, d in zip(keys[1:], parts[1:]):
            total = total + d.step_noise(k, dt)
        return total


# -- constructors (the public API) -------------------------------------------------------------------------------

def constant(p) -> Drive:
    """p(t) = p (Hz)."""
    _hz("constant(p)", p)
    return Constant(p)


def white_noise(mean, sigma) -> Drive:
    """p(t) = mean + sigma·ξ(t), ξ Gaussian white noise; ``sigma`` in Hz·√s (a step dt sees SD sigma/√dt).

    The brainmass Jansen–Rit tutorial writes its noise as "SD ≈ 30 Hz per sqrt(second)" and draws
    ``normal(mean, 30/sqrt(dt))`` per step: that is ``white_noise(mean * u.Hz, 30 * u.Hz * u.second ** 0.5)``.
    """
    _hz("white_noise(mean)", mean)
    if isinstance(sigma, u.Quantity) and u.get_dim(sigma) == u.get_dim(u.Hz):
        raise ValueError(
            f"white_noise(sigma) is a white-noise intensity in Hz·√s (for example 30 * u.Hz * u.second ** 0.5), so "
            f"that statistics do not depend on dt; got {sigma!r}, a plain rate. A per-step SD s at step dt corresponds to "
            f"sigma = s·√dt.")
    check_dim("white_noise(sigma)", sigma, SIGMA_UNIT, "30. * u.Hz * u.second ** 0.5")
    check_range("white_noise(sigma)", sigma, SIGMA_UNIT, low=0.0)
    return WhiteNoise(mean, sigma)


def uniform(low, high) -> Drive:
    """A new uniform draw in [low, high] (Hz) every step, as in Jansen & Rit (1995) (120–320 Hz).

    Unlike :func:`white_noise`, the statistics of this drive are defined per step and do change with dt.
    """
    _hz("uniform(low)", low)
    _hz("uniform(high)", high)
    if _below(low, high, u.Hz, strict=False):
        raise ValueError(f"uniform(low, high) needs low <= high; got low={low!r}, high={high!r}.")
    return Uniform(low, high)


def sinusoid(offset, amplitude, frequency, phase: float = 0.0) -> Drive:
    """p(t) = offset + amplitude · sin(2π·frequency·t + phase) (offset, amplitude and frequency in Hz, phase in rad)."""
    _hz("sinusoid(offset)", offset)
    _hz("sinusoid(amplitude)", amplitude, "70. * u.Hz")
    _hz("sinusoid(frequency)", frequency, "10. * u.Hz")
    return Sinusoid(offset, amplitude, frequency, check_number("sinusoid(phase)", phase))


def pulse(onset, peak, width=5.0 * u.ms, order: float = 7.0) -> Drive:
    """A gamma-shaped input pulse for evoked responses: peak·(τ/n)ⁿ·e^(n−τ), τ = (t − onset)/width ≥ 0.

    It rises smoothly from ``onset`` and reaches ``peak`` (Hz) at ``onset + order·width`` — the
    q·(t/w)ⁿ·e^(−t/w) impulse shape used by Jansen & Rit for the visual evoked potential, parametrised by its peak.
    Add it to a background drive: ``drives.uniform(120 * u.Hz, 320 * u.Hz) + drives.pulse(0.5 * u.second, 300 * u.Hz)``.
    """
    _sec("pulse(onset)", onset)
    _hz("pulse(peak)", peak, "300. * u.Hz")
    _sec("pulse(width)", width, "5. * u.ms")
    check_range("pulse(width)", width, u.second, low=0.0, low_inclusive=False)
    return Pulse(onset, peak, width, check_number("pulse(order)", order, low=0.0, low_inclusive=False))


def ramp(start, stop, t_start, t_stop) -> Drive:
    """Linear ramp from ``start`` (Hz, before ``t_start``) to ``stop`` (Hz, after ``t_stop``)."""
    _hz("ramp(start)", start)
    _hz("ramp(stop)", stop)
    _sec("ramp(t_start)", t_start)
    _sec("ramp(t_stop)", t_stop)
    if _below(t_start, t_stop, u.second, strict=True):
        raise ValueError(f"ramp needs t_stop > t_start; got t_start={t_start!r}, t_stop={t_stop!r}.")
    return Ramp(start, stop, t_start, t_stop)


def chirp(offset, amplitude, f_start, f_stop, t_stop) -> Drive:
    """offset + amplitude·sin(phase) with frequency sweeping linearly from ``f_start`` to ``f_stop`` over [0, t_stop]."""
    _hz("chirp(offset)", offset)
    _hz("chirp(amplitude)", amplitude, "50. * u.Hz")
    _hz("chirp(f_start)", f_start, "1. * u.Hz")
    _hz("chirp(f_stop)", f_stop, "30. * u.Hz")
    _sec("chirp(t_stop)", t_stop, "5. * u.second")
    check_range("chirp(t_stop)", t_stop, u.second, low=0.0, low_inclusive=False)
    return Chirp(offset, amplitude, f_start, f_stop, t_stop)


def array(values, dt) -> Drive:
    """A user-given input sampled every ``dt`` from t = 0 (Hz), linearly interpolated, held after the last sample."""
    _hz("array(values)", values, "jnp.asarray(samples) * u.Hz")
    _sec("array(dt)", dt, "1. * u.ms")
    check_range("array(dt)", dt, u.second, low=0.0, low_inclusive=False)
    vals = u.math.asarray(values)
    if vals.ndim != 1 or vals.shape[0] < 1:
        raise ValueError(f"array(values) must be a 1-D array of samples; got shape {vals.shape}.")
    return Samples(Table(vals), dt)
