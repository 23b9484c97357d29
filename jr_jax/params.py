"""Parameters of one Jansen–Rit column: a frozen, unit-aware pytree."""

from __future__ import annotations

import dataclasses
from typing import Any

import brainunit as u
import jax

from .units import check_dim, check_range, check_real

Quantity = u.Quantity

FIELDS: dict[str, tuple[u.Unit, str, float | None, bool, str]] = {
    "A": (u.mV, "3.25 * u.mV", 0.0, True, "excitatory PSP amplitude"),
    "B": (u.mV, "22. * u.mV", 0.0, True, "inhibitory PSP amplitude"),
    "a": (u.Hz, "100. * u.Hz", 0.0, False, "inverse excitatory time constant"),
    "b": (u.Hz, "50. * u.Hz", 0.0, False, "inverse inhibitory time constant"),
    "C": (u.UNITLESS, "135.", 0.0, True, "average number of synapses"),
    "c1": (u.UNITLESS, "1.0", 0.0, True, "C1 / C (pyramidal -> excitatory interneurons)"),
    "c2": (u.UNITLESS, "0.8", 0.0, True, "C2 / C (excitatory interneurons -> pyramidal)"),
    "c3": (u.UNITLESS, "0.25", 0.0, True, "C3 / C (pyramidal -> inhibitory interneurons)"),
    "c4": (u.UNITLESS, "0.25", 0.0, True, "C4 / C (inhibitory interneurons -> pyramidal)"),
    "e0": (u.Hz, "2.5 * u.Hz", 0.0, True, "half the maximal firing rate of the sigmoid"),
    "v0": (u.mV, "6. * u.mV", None, True, "potential at half-maximal firing"),
    "r": (u.mV ** -1, "0.56 / u.mV", 0.0, False, "steepness of the sigmoid"),
}
"""Every JRParams field: ``name: (canonical unit, example, lower bound or None, lower bound inclusive, meaning)``.
The constructor checks values against it; fitting reads the units and the bounds."""

_DEFAULTS: dict[str, Any] = {
    "A": 3.25 * u.mV,
    "B": 22.0 * u.mV,
    "a": 100.0 * u.Hz,
    "b": 50.0 * u.Hz,
    "C": 135.0,
    "c1": 1.0,
    "c2": 0.8,
    "c3": 0.25,
    "c4": 0.25,
    "e0": 2.5 * u.Hz,
    "v0": 6.0 * u.mV,
    "r": 0.56 / u.mV,
}

FIELD_NAMES = tuple(FIELDS)
CANONICAL_UNITS = {name: spec[0] for name, spec in FIELDS.items()}

# the brainmass Jansen–Rit tutorial's names -> ours
_BRAINMASS_NAMES = {"Ae": "A", "Ai": "B", "be": "a", "bi": "b", "a1": "c1", "a2": "c2", "a3": "c3", "a4": "c4"}


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, init=False, repr=False, eq=False)
class JRParams:
    """Parameters of the classic Jansen & Rit (1995) column, each a brainunit Quantity.

    Defaults: A = 3.25 mV, B = 22 mV, a = 100 s⁻¹, b = 50 s⁻¹, C = 135 with C1..C4 = C·(1, 0.8, 0.25, 0.25),
    e0 = 2.5 s⁻¹, v0 = 6 mV, r = 0.56 mV⁻¹.

    Any field may be an array (for batches or per-column values); values are checked on construction: a wrong unit
    raises :class:`jr_jax.UnitError`, a string, boolean or complex value ``TypeError`` and (when concrete) a
    non-finite or out-of-range value ``ValueError``.
    Use :meth:`replace` to change fields and :meth:`from_brainmass` to carry over the names of the brainmass
    Jansen–Rit tutorial (``Ae, Ai, be, bi, a1..a4, s_max``).
    """

    A: Quantity
    B: Quantity
    a: Quantity
    b: Quantity
    C: Any
    c1: Any
    c2: Any
    c3: Any
    c4: Any
    e0: Quantity
    v0: Quantity
    r: Quantity

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(FIELDS)
        if unknown:
            hint = ""
            bm = [k for k in unknown if k in _BRAINMASS_NAMES or k == "s_max"]
            if bm:
                hint = " These are brainmass names: use JRParams.from_brainmass(...)."
            raise TypeError(f"JRParams got unknown field(s) {sorted(unknown)}; known fields are {list(FIELDS)}.{hint}")
        for name, (unit, example, low, low_incl, _) in FIELDS.items():
            value = kwargs.get(name, _DEFAULTS[name])
            if value is not _DEFAULTS[name]:        # the defaults are valid: checking them cost most of a call
                check_dim(f"JRParams.{name}", value, unit, example)
                check_range(f"JRParams.{name}", value, unit, low=low, low_inclusive=low_incl)
            object.__setattr__(self, name, value)

    # -- pytree -----------------------------------------------------------------
    def tree_flatten(self):
        return tuple(getattr(self, n) for n in FIELD_NAMES), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        for name, value in zip(FIELD_NAMES, children):
            object.__setattr__(obj, name, value)
        return obj

    # -- derived connectivity constants ------------------------------------------
    @property
    def C1(self):
        return self.C * self.c1

    @property
    def C2(self):
        return self.C * self.c2

    @property
    def C3(self):
        return self.C * self.c3

    @property
    def C4(self):
        return self.C * self.c4

    # -- helpers ------------------------------------------------------------------
    def replace(self, **changes) -> "JRParams":
        """A copy with some fields changed (validated like the constructor)."""
        values = {n: getattr(self, n) for n in FIELD_NAMES}
        values.update(changes)
        return JRParams(**values)

    def to_dict(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in FIELD_NAMES}

    @classmethod
    def from_brainmass(cls, **kwargs) -> "JRParams":
        """Build from the names of brainmass's ``JansenRitModel`` (its Jansen–Rit tutorial).

        ``Ae→A, Ai→B, be→a, bi→b, a1..a4→c1..c4``, ``s_max→2·e0``; brainmass's ``r`` is a plain number per mV and
        is accepted either plain (0.56) or as a Quantity in 1/mV. Our own field names are accepted too.
        """
        out = {}
        for key, value in kwargs.items():
            if key == "s_max":
                check_dim("s_max", value, u.Hz, "5. * u.Hz")
                out["e0"] = value / 2
            elif key == "r" and not isinstance(value, u.Quantity):
                out["r"] = check_real("r", value) / u.mV
            else:
                out[_BRAINMASS_NAMES.get(key, key)] = value
        return cls(**out)

    def __repr__(self):
        parts = ", ".join(f"{n}={getattr(self, n)!r}" for n in FIELD_NAMES)
        return f"JRParams({parts})"


def canonical(params: JRParams, dtype=None) -> JRParams:
    """The same parameters expressed in the canonical units (mV, 1/s, 1/mV) with a common float dtype.

    Called once per simulation (inside ``jit``) so that the step function never converts units.
    """
    import jax.numpy as jnp

    def conv(name):
        value = getattr(params, name)
        unit = CANONICAL_UNITS[name]
        if unit.is_unitless:
            mant = value.mantissa if isinstance(value, u.Quantity) else value
            return jnp.asarray(mant, dtype=dtype)
        return u.Quantity(jnp.asarray(value.to_decimal(unit), dtype=dtype), unit=unit)

    return JRParams.tree_unflatten(None, [conv(n) for n in FIELD_NAMES])
