"""The unconstrained space a fit moves in: one coordinate θ per free JRParams field.

A positive field is optimised as ``log(x / x_start)``, a field with bounds through a logistic map onto
``(low, high)``, a field that may be negative (``v0``) as ``x − x_start`` in its canonical unit. So every θ is a
valid parameter set.
"""

from __future__ import annotations

import dataclasses

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .units import check_dim
from .params import CANONICAL_UNITS, FIELD_NAMES, FIELDS, JRParams


def in_canonical(name: str, value) -> np.ndarray:
    """The value of field ``name`` as float64 numbers in its canonical unit."""
    unit = CANONICAL_UNITS[name]
    return np.asarray(value.to_decimal(unit) if isinstance(value, u.Quantity) else value, dtype=np.float64)


def as_quantity(name: str, x):
    """Numbers in field ``name``'s canonical unit as that field's value (a Quantity, or plain for unitless fields)."""
    unit = CANONICAL_UNITS[name]
    return x if unit.is_unitless else u.Quantity(x, unit=unit)


def _canonical_float(name: str, value) -> float:
    arr = in_canonical(name, value)
    if arr.ndim:
        raise ValueError(f"the start value of {name} must be a scalar; got shape {arr.shape}.")
    return float(arr)


def _fmt(x: float, unit) -> str:
    return f"{x:.6g}" if unit.is_unitless else f"{x:.6g} {unit}"


@dataclasses.dataclass(frozen=True)
class FreeField:
    """The map between one free field's value x (canonical unit) and its coordinate θ."""

    name: str
    kind: str          # "log" | "bounded" | "shift"
    ref: float         # start value (canonical unit)
    lo: float = 0.0    # bounds, for kind "bounded"
    hi: float = 0.0

    def to_theta(self, x):
        """θ of the value ``x`` (NumPy; NaN or ±inf outside the field's domain)."""
        if self.kind == "log":
            return np.log(x / self.ref)
        if self.kind == "bounded":
            z = (x - self.lo) / (self.hi - self.lo)
            return np.log(z / (1 - z))
        return x - self.ref

    def from_theta(self, t):
        """The value at θ = ``t`` (traceable)."""
        if self.kind == "log":
            return self.ref * jnp.exp(t)
        if self.kind == "bounded":
            return self.lo + (self.hi - self.lo) * jax.nn.sigmoid(t)
        return self.ref + t

    def dvalue_dtheta(self, x):
        """d value / d θ at value ``x`` (for the delta method)."""
        if self.kind == "log":
            return x
        if self.kind == "bounded":
            z = (x - self.lo) / (self.hi - self.lo)
            return (self.hi - self.lo) * z * (1 - z)
        return 1.0


def _free_field(start: JRParams, name: str, bounds: dict) -> FreeField:
    x0 = _canonical_float(name, getattr(start, name))
    unit = CANONICAL_UNITS[name]
    if name in bounds:
        lo_q, hi_q = bounds[name]
        for q in (lo_q, hi_q):
            check_dim(f"bounds[{name!r}]", q, unit, FIELDS[name][1])
        lo, hi = (_canonical_float(name, q) for q in (lo_q, hi_q))
        if not lo < x0 < hi:
            raise ValueError(f"bounds for {name} ({_fmt(lo, unit)}, {_fmt(hi, unit)}) exclude the start value "
                             f"{_fmt(x0, unit)}; widen the bounds or change the start.")
        return FreeField(name, "bounded", x0, lo, hi)
    if FIELDS[name][2] == 0.0:
        if not x0 > 0:
            raise ValueError(f"{name} starts at {_fmt(x0, unit)}; a positive field is optimised on a log scale and "
                             f"must start above 0 (or give bounds).")
        return FreeField(name, "log", x0)
    return FreeField(name, "shift", x0)


class Parametrisation:
    """The free fields of ``start`` as unconstrained coordinates θ; the other fields keep ``start``'s values.

    Args:
      start: the parameters at θ = 0 (scalar fields).
      free: field names, a sequence or ``"A,B,a,b"``.
      bounds: ``{name: (low, high)}`` as Quantities, for free fields only.
    """

    def __init__(self, start: JRParams, free, bounds: dict | None = None):
        free = tuple(free.split(",")) if isinstance(free, str) else tuple(free)
        free = tuple(f.strip() for f in free)
        unknown = [f for f in free if f not in FIELD_NAMES]
        if unknown or not free:
            raise ValueError(f"free must name JRParams fields among {list(FIELD_NAMES)}; got {list(free)}"
                             + (f" (unknown: {unknown})" if unknown else " (none)") + ".")
        if len(set(free)) != len(free):
            raise ValueError(f"free has duplicates: {list(free)}.")
        bounds = dict(bounds or {})
        extra = [k for k in bounds if k not in free]
        if extra:
            raise ValueError(f"bounds given for {extra}, which are not free parameters {list(free)}.")
        self.start = start
        self.fields: tuple[FreeField, ...] = tuple(_free_field(start, name, bounds) for name in free)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def params(self, theta) -> JRParams:
        """The parameters at ``theta`` (last axis: one entry per free field; traceable)."""
        values = {n: getattr(self.start, n) for n in FIELD_NAMES}
        for i, f in enumerate(self.fields):
            values[f.name] = as_quantity(f.name, f.from_theta(theta[..., i]))
        return JRParams.tree_unflatten(None, [values[n] for n in FIELD_NAMES])

    def __repr__(self) -> str:
        return f"Parametrisation({', '.join(f'{f.name}: {f.kind}' for f in self.fields)})"
