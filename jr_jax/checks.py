"""Checks of a run's settings, shared by ``simulate``, ``trace``, ``sweep`` and the fitting targets."""

from __future__ import annotations

import math
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .units import check_dim, fmt_seconds
from .model import STATE_NAMES, STATE_UNITS, JRState


class RunSettings(NamedTuple):
    """Checked settings: step, duration and transient in seconds, the float dtype and the key."""

    dt_s: float
    duration_s: float
    transient_s: float
    dtype: np.dtype
    key: jax.Array


def zero_key():
    """The key of a deterministic run (its random numbers are never used)."""
    return jax.random.key(0)


def run_settings(duration, dt, transient, dtype, drive, key) -> RunSettings:
    """Check the settings of a run (named in the errors) and return them in seconds; a deterministic drive without a
    key gets :func:`zero_key`."""
    check_dim("duration", duration, u.second, "10. * u.second")
    check_dim("dt", dt, u.second, "0.5 * u.ms")
    check_dim("transient", transient, u.second, "1. * u.second")
    dt_s = float(dt.to_decimal(u.second))
    if not (dt_s > 0 and math.isfinite(dt_s)):
        raise ValueError(f"dt must be a positive finite time; got {dt!r}.")
    dur_s, tr_s = float(duration.to_decimal(u.second)), float(transient.to_decimal(u.second))
    if not dur_s > 0:
        raise ValueError(f"duration must be positive; got {duration!r}.")
    if tr_s < 0:
        raise ValueError(f"transient must be >= 0; got {transient!r}.")
    dtype = jnp.dtype(dtype) if dtype is not None else jnp.result_type(float)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError('dtype=float64 needs 64-bit JAX: call jax.config.update("jax_enable_x64", True) first.')
    if drive.is_random and key is None:
        raise ValueError("this drive is random: pass key=jax.random.key(seed) (the same key gives the same run).")
    return RunSettings(dt_s, dur_s, tr_s, dtype, zero_key() if key is None else key)


def whole_steps(name: str, duration_s: float, dt_s: float) -> int:
    """``duration_s / dt_s`` as a whole number of steps, or a ValueError naming ``name``."""
    n = duration_s / dt_s
    n_int = int(round(n))
    if abs(n - n_int) > 1e-6 * max(1.0, n):
        raise ValueError(f"{name} ({fmt_seconds(duration_s)}) must be a whole number of steps of dt = "
                         f"{fmt_seconds(dt_s)}; it is {n:.6g} steps.")
    return n_int


def column_state(state, dtype) -> JRState:
    """``initial_state`` of one column or a network: a :class:`JRState` of Quantities, each field checked."""
    if not isinstance(state, JRState):
        raise TypeError(f"initial_state must be a jr_jax.JRState; got {type(state).__name__}.")
    out = []
    for name, value, unit in zip(STATE_NAMES, state, STATE_UNITS):
        check_dim(f"initial_state.{name}", value, unit, f"0. * u.{'mV' if unit == u.mV else 'mV / u.second'}")
        out.append(u.Quantity(jnp.asarray(value.to_decimal(unit), dtype), unit=unit))
    return JRState(*out)
