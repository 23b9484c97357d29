"""Unit and value checks shared by every module: one place that says what a wrong unit or value looks like."""

from __future__ import annotations

import math
import numbers

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np


class UnitError(TypeError):
    """An argument has the wrong physical dimension (or none where one is needed)."""


def describe(value) -> str:
    """A short human-readable rendering of what the user passed."""
    if isinstance(value, u.Quantity):
        return f"{value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"the plain number {value!r} (no unit)"
    return f"{type(value).__name__} {value!r} (no unit)"


def check_real(name: str, value):
    """Raise TypeError unless ``value`` (a Quantity's numbers, or plain numbers) is real numbers: no strings,
    booleans, complex numbers, None or other objects, which NumPy would otherwise convert or truncate silently."""
    m = value.mantissa if isinstance(value, u.Quantity) else value
    if type(m) in (float, int):                            # the common case, decided at once
        return value
    dtype = getattr(m, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") in "fiu" and dtype.kind:
        return value
    if dtype is None:
        if isinstance(m, numbers.Real) and not isinstance(m, (bool, np.bool_)):
            return value
        if isinstance(m, (list, tuple)):
            try:
                dtype = np.asarray(m).dtype
            except (TypeError, ValueError):        # ragged nesting
                dtype = np.dtype(object)
    if dtype is not None and (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        return value
    what = f"{type(m).__name__} {m!r}" if dtype is None else f"an array of dtype {dtype}"
    raise TypeError(f"{name} must be real numbers; got {what}.")


def check_dim(name: str, value, unit: u.Unit, example: str):
    """Raise :class:`UnitError` unless ``value`` is a Quantity with the dimension of ``unit`` (plain numbers for a
    unitless ``unit``), and TypeError unless its numbers are real (:func:`check_real`).

    ``example`` is shown to the user, e.g. ``"3.25 * u.mV"``.
    """
    if isinstance(value, u.Quantity):
        if u.get_dim(value) == u.get_dim(unit):
            return check_real(name, value)
        raise UnitError(f"{name} must have the unit of {unit} (for example {example}); got {describe(value)}.")
    if unit.is_unitless:
        return check_real(name, value)
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
    """Value checks: real numbers (:func:`check_real`) and, on concrete numbers, finite and within [low, high]
    (in ``unit``)."""
    check_real(name, value)
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


def check_int(name: str, value, *, low: int = 1, what: str = "") -> int:
    """``value`` as an int: TypeError for anything but a Python or NumPy integer (booleans included), ValueError for
    an integer below ``low``. ``what`` says what it counts (e.g. "a positive number of sets")."""
    what = what or f"a whole number >= {low}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        err = ValueError if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) else TypeError
        raise err(f"{name} must be {what}; got {type(value).__name__} {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    return int(value)


def check_bool(name: str, value) -> bool:
    """``value`` if it is True or False (a NumPy bool too); a TypeError otherwise (a truthy string is not True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}.")
    return bool(value)


def check_number(name: str, value, *, low=None, low_inclusive=True, high=None) -> float:
    """One real, finite plain number (or dimensionless Quantity) within the bounds, as a float."""
    if isinstance(value, u.Quantity) and u.get_dim(value) == u.get_dim(u.UNITLESS):
        value = value.mantissa
    if isinstance(value, u.Quantity) or np.ndim(check_real(name, value)) != 0:
        raise TypeError(f"{name} must be one plain number; got {describe(value)}.")
    check_range(name, value, u.UNITLESS, low=low, low_inclusive=low_inclusive, high=high)
    return float(value)


def check_scalar(name: str, value):
    """Raise ValueError unless ``value`` (a Quantity's numbers, or plain numbers) is a single value."""
    shape = np.shape(value.mantissa if isinstance(value, u.Quantity) else value)
    if shape != ():
        raise ValueError(f"{name} must be one value; got shape {shape}.")
    return value


def fmt_seconds(t: float) -> str:
    if not math.isfinite(t):
        return str(t)
    return f"{t * 1e3:.6g} ms" if abs(t) < 1 else f"{t:.6g} s"
