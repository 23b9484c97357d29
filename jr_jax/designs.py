"""Designs of parameter sets to sweep: a grid over named axes, or sets drawn at random within bounds."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as _drives
from .units import check_dim
from .params import FIELD_NAMES, JRParams


# -- designs ----------------------------------------------------------------------------------------------------

class Design(NamedTuple):
    """Parameter sets to sweep: ``params`` and ``drive`` whose fields are scalars (shared) or arrays of one length
    (one value per set); ``axes`` the swept values (per grid axis, or per set for a random design); ``shape`` the
    grid's shape (``(n,)`` for a random design)."""

    params: JRParams
    drive: _drives.Drive
    axes: dict
    shape: tuple

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def take(self, index) -> "Design":
        """The sets at ``index`` as a flat design, e.g. ``design.take(np.arange(rank, design.size, n_ranks))`` for
        one process's share of a sweep split over hosts."""
        n = self.size
        keep = np.arange(n)[index]

        def sl(x):
            return x[keep] if np.ndim(x) == 1 and np.shape(x)[0] == n else x

        axes = {k: (v[keep] if np.shape(u.get_mantissa(v)) == (n,) else v) for k, v in self.axes.items()}
        return Design(jax.tree.map(sl, self.params), jax.tree.map(sl, self.drive), axes, (len(keep),))


_P_FIELD = {_drives.Constant: "value", _drives.WhiteNoise: "mu"}


def _assign(params: JRParams, drive, name: str, values):
    """Set the swept quantity ``name`` (a JRParams field, or ``p`` = the drive's mean) to ``values``."""
    if name == "p":
        field = _P_FIELD.get(type(drive))
        if field is None:
            raise ValueError(f"the axis 'p' sets the mean input of a constant or white-noise drive; the drive is "
                             f"{type(drive).__name__}. Build the drives yourself and pass them to sweep().")
        check_dim("axis p", values, u.Hz, "np.linspace(50, 350, 64) * u.Hz")
        return params, dataclasses.replace(drive, **{field: values})
    if name not in FIELD_NAMES:
        raise ValueError(f"unknown sweep axis {name!r}: use a JRParams field {list(FIELD_NAMES)} or 'p'.")
    return params.replace(**{name: values}), drive


def _axis_values(name, values):
    q = values if isinstance(values, u.Quantity) else u.Quantity(np.asarray(values, dtype=np.float64))
    if np.ndim(q.mantissa) != 1 or np.size(q.mantissa) == 0:
        raise ValueError(f"axis {name!r} needs a non-empty 1-D array of values; got shape {np.shape(q.mantissa)}.")
    return q


def grid(*, base: JRParams | None = None, drive=None, **axes) -> Design:
    """The cartesian product of the given axes, e.g. ``grid(A=np.linspace(2, 10, 64) * u.mV, B=...)``.

    Axis names are JRParams fields or ``p`` (the mean of a constant or white-noise drive; default drive
    ``constant(220 Hz)``). The first axis varies slowest (``result.grid(name)`` has shape ``(len(ax1), len(ax2), …)``).
    """
    if not axes:
        raise ValueError("grid() needs at least one axis, e.g. grid(B=np.linspace(10, 60, 32) * u.mV).")
    params = JRParams() if base is None else base
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    vals = {name: _axis_values(name, v) for name, v in axes.items()}
    shape = tuple(len(v.mantissa) for v in vals.values())
    mesh = np.meshgrid(*[np.asarray(v.mantissa) for v in vals.values()], indexing="ij")
    for (name, v), m in zip(vals.items(), mesh):
        params, drive = _assign(params, drive, name, u.Quantity(m.ravel(), unit=v.unit))
    return Design(params, drive, vals, shape)


def random_design(n: int, *, key, base: JRParams | None = None, drive=None, log=(), **bounds) -> Design:
    """``n`` sets drawn uniformly (or log-uniformly for the names in ``log``) within ``bounds``, e.g.
    ``random_design(1000, key=jax.random.key(0), A=(2 * u.mV, 10 * u.mV), a=(50 * u.Hz, 200 * u.Hz), log=("a",))``."""
    if int(n) < 1:
        raise ValueError(f"random_design needs n >= 1 sets; got {n}.")
    params = JRParams() if base is None else base
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    unknown = set(log) - set(bounds)
    if unknown:
        raise ValueError(f"log names {sorted(unknown)} have no bounds.")
    axes = {}
    for i, (name, (lo, hi)) in enumerate(bounds.items()):
        unit = lo.unit if isinstance(lo, u.Quantity) else u.UNITLESS
        lo_v = float(u.Quantity(lo).to_decimal(unit))
        hi_v = float(u.Quantity(hi).to_decimal(unit))
        if not lo_v < hi_v:
            raise ValueError(f"bounds for {name!r} must be (low, high) with low < high; got ({lo}, {hi}).")
        z = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (int(n),), dtype=jnp.float32), np.float64)
        if name in log:
            if lo_v <= 0:
                raise ValueError(f"log-uniform {name!r} needs positive bounds; got ({lo}, {hi}).")
            v = np.exp(np.log(lo_v) + z * (np.log(hi_v) - np.log(lo_v)))
        else:
            v = lo_v + z * (hi_v - lo_v)
        axes[name] = u.Quantity(v, unit=unit)
        params, drive = _assign(params, drive, name, axes[name])
    return Design(params, drive, axes, (int(n),))


