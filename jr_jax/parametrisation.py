"""The unconstrained space a fit moves in: one coordinate θ per free value.

A positive value is optimised as ``log(x / x_start)``, a value with bounds through a logistic map onto
``(low, high)``, a value that may be negative (``v0``) as ``x − x_start`` in its unit. So every θ is a valid
parameter set.

:func:`jr_jax.fit` moves in the space of any object with ``fields`` (a tuple of :class:`FreeField`),
``params(theta)`` (what the objective takes), ``penalty(theta)`` (a prior's term, 0 without one) and ``spec()``
(JSON that identifies it for a resumed fit): :class:`Parametrisation` for one column's JRParams, and
:class:`jr_jax.whole_brain.NetworkParametrisation` for a whole-brain network.
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
    """The map between one free value x (in ``unit``) and its coordinate θ."""

    name: str
    kind: str          # "log" | "bounded" | "shift"
    ref: float         # start value (in unit)
    lo: float = 0.0    # bounds, for kind "bounded"
    hi: float = 0.0
    unit: object = u.UNITLESS

    def quantity(self, x):
        """Numbers in this field's unit as a value (a Quantity, or plain numbers when unitless)."""
        return x if self.unit.is_unitless else u.Quantity(x, unit=self.unit)

    def numbers(self, value) -> np.ndarray:
        """A value (Quantity or plain numbers) as float64 numbers in this field's unit."""
        return np.asarray(value.to_decimal(self.unit) if isinstance(value, u.Quantity) else value, dtype=np.float64)

    def spec(self) -> dict:
        """JSON-ready description (a resumed fit must find the same)."""
        return {"name": self.name, "kind": self.kind, "ref": self.ref, "lo": self.lo, "hi": self.hi,
                "unit": str(self.unit)}

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


def free_field(name: str, x0: float, unit, positive: bool, bound=None, example: str = "") -> FreeField:
    """The :class:`FreeField` of a value ``name`` that starts at ``x0`` (numbers in ``unit``): bounded when
    ``bound = (low, high)`` (Quantities, or numbers when unitless) is given, else log-scaled when ``positive``, else
    shifted."""
    if bound is not None:
        for q in bound:
            check_dim(f"bounds[{name!r}]", q, unit, example or f"1.0 * {unit}")
        lo, hi = (float(np.asarray(q.to_decimal(unit) if isinstance(q, u.Quantity) else q)) for q in bound)
        if not lo < x0 < hi:
            raise ValueError(f"bounds for {name} ({_fmt(lo, unit)}, {_fmt(hi, unit)}) exclude the start value "
                             f"{_fmt(x0, unit)}; widen the bounds or change the start.")
        return FreeField(name, "bounded", x0, lo, hi, unit)
    if positive:
        if not x0 > 0:
            raise ValueError(f"{name} starts at {_fmt(x0, unit)}; a positive value is optimised on a log scale and "
                             f"must start above 0 (or give bounds).")
        return FreeField(name, "log", x0, unit=unit)
    return FreeField(name, "shift", x0, unit=unit)


def _free_field(start: JRParams, name: str, bounds: dict) -> FreeField:
    x0 = _canonical_float(name, getattr(start, name))
    return free_field(name, x0, CANONICAL_UNITS[name], FIELDS[name][2] == 0.0, bounds.get(name), FIELDS[name][1])


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

    def penalty(self, theta):
        """No prior: 0."""
        return 0.0

    def start_thetas(self, starts) -> np.ndarray:
        """(S, n_free) coordinates of the start points of a batched JRParams ``starts`` (one start per entry)."""
        vals = [np.atleast_1d(in_canonical(f.name, getattr(starts, f.name))) for f in self.fields]
        n = max(v.shape[0] for v in vals)
        return np.stack([f.to_theta(np.broadcast_to(v, (n,))) for f, v in zip(self.fields, vals)], axis=-1)

    def spec(self) -> dict:
        """What fixes the map from θ, JSON-ready: the free fields and every start value."""
        return {"free": [f.spec() for f in self.fields],
                "start": {n: in_canonical(n, getattr(self.start, n)).tolist() for n in FIELD_NAMES}}

    def __repr__(self) -> str:
        return f"Parametrisation({', '.join(f'{f.name}: {f.kind}' for f in self.fields)})"
