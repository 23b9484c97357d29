"""Unit and value checks shared by every module: one place that says what a wrong unit or value looks like."""

from __future__ import annotations

import math

import brainunit as u
import jax
import numpy as np


class UnitError(TypeError):
    """An argument has the wrong physical dimension (or none where one is needed)."""


def describe(value) -> str:
    """A short human-readable rendering of what the user passed."""
    if isinstance(value, u.Quantity):
        return f"{value!r}"
    if isinstance(value, (int, float)):
        return f"the plain number {value!r} (no unit)"
    return f"{type(value).__name__} {value!r} (no unit)"


def check_dim(name: str, value, unit: u.Unit, example: str):
    """Raise :class:`UnitError` unless ``value`` is a Quantity with the dimension of ``unit``.

    ``example`` is shown to the user, e.g. ``"3.25 * u.mV"``.
    """
    if isinstance(value, u.Quantity):
        if u.get_dim(value) == u.get_dim(unit):
            return value
        raise UnitError(f"{name} must have the unit of {unit} (for example {example}); got {describe(value)}.")
    if unit.is_unitless:
        return value
    raise UnitError(f"{name} must be a quantity in {unit} (for example {example}); got {describe(value)}.")


def is_concrete(x) -> bool:
    """True when ``x`` holds actual numbers (not a tracer inside jit/vmap/grad)."""
    leaves = jax.tree_util.tree_leaves(x)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def mantissa_in(value, unit: u.Unit):
    """The numbers of ``value`` expressed in ``unit`` (plain numbers pass through for unitless units)."""
    if isinstance(value, u.Quantity):
        return value.to_decimal(unit) if not unit.is_unitless else value.mantissa
    return value


def check_range(name: str, value, unit: u.Unit, *, low=None, low_inclusive=True, high=None):
    """Value checks on concrete numbers: finite, and within [low, high] (in ``unit``)."""
    if not is_concrete(value):
        return
    x = np.asarray(mantissa_in(value, unit), dtype=float)
    unit_s = "" if unit.is_unitless else f" {unit}"
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    if low is not None:
        bad = x < low if low_inclusive else x <= low
        if np.any(bad):
            rel = ">=" if low_inclusive else ">"
            raise ValueError(f"{name} must be {rel} {low}{unit_s}; got {value!r}.")
    if high is not None and np.any(x > high):
        raise ValueError(f"{name} must be <= {high}{unit_s}; got {value!r}.")


def fmt_seconds(t: float) -> str:
    if not math.isfinite(t):
        return str(t)
    return f"{t * 1e3:.6g} ms" if abs(t) < 1 else f"{t:.6g} s"
