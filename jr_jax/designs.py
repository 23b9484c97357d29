"""Designs of parameter sets to sweep: a grid over named axes, or sets drawn at random within bounds."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as _drives
from .checks import check_key
from .units import check_dim, check_int, check_range
from .params import FIELD_NAMES, FIELDS, JRParams


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

    @property
    def is_grid(self) -> bool:
        """Whether the sets form a grid over ``axes`` (one 1-D axis per dimension of ``shape``), so that results can
        be labelled by the axes' values (``SweepResult.to_xarray``)."""
        lengths = tuple(np.shape(u.get_mantissa(v)) for v in self.axes.values())
        return bool(self.axes) and lengths == tuple((k,) for k in self.shape)

    def take(self, index) -> "Design":
        """The sets at ``index`` as a flat design, e.g. ``design.take(np.arange(rank, design.size, n_ranks))`` for
        one process's share of a sweep split over hosts."""
        n = self.size
        keep = np.arange(n)[index]

        def sl(x):
            return x[keep] if np.ndim(x) == 1 and np.shape(x)[0] == n else x

        axes = {k: (v[keep] if np.shape(u.get_mantissa(v)) == (n,) else v) for k, v in self.axes.items()}
        return type(self)(jax.tree.map(sl, self.params), jax.tree.map(sl, self.drive), axes, (len(keep),))


class RandomDesign(Design):
    """A :class:`Design` of sets drawn at random (:func:`random_design`): ``axes`` hold one value per set, never a
    grid (even with one axis)."""

    __slots__ = ()

    @property
    def is_grid(self) -> bool:
        return False


_P_FIELD = {_drives.Constant: "value", _drives.WhiteNoise: "mu"}


def _axis_unit(name: str):
    """(unit, example) of the swept quantity ``name``: a JRParams field or ``p``."""
    if name == "p":
        return u.Hz, "220. * u.Hz"
    if name not in FIELD_NAMES:
        raise ValueError(f"unknown sweep axis {name!r}: use a JRParams field {list(FIELD_NAMES)} or 'p'.")
    return FIELDS[name][0], FIELDS[name][1]


def _assign(params: JRParams, drive, name: str, values):
    """Set the swept quantity ``name`` (a JRParams field, or ``p`` = the drive's mean) to ``values``."""
    if name == "p":
        return params, dataclasses.replace(drive, **{_p_field(drive): values})
    return params.replace(**{name: values}), drive


def _p_field(drive) -> str:
    """The field of ``drive`` that the axis ``p`` sets (its mean input)."""
    field = _P_FIELD.get(type(drive))
    if field is None:
        raise ValueError(f"the axis 'p' sets the mean input of a constant or white-noise drive; the drive is "
                         f"{type(drive).__name__}. Build the drives yourself and pass them to sweep().")
    return field


def _axis_values(name, values):
    """The values of axis ``name``: the axis's unit, real and finite numbers, non-empty and 1-D."""
    unit, example = _axis_unit(name)
    check_dim(f"axis {name!r}", values, unit, example)
    q = values if isinstance(values, u.Quantity) else u.Quantity(np.asarray(values, dtype=np.float64))
    if np.ndim(q.mantissa) != 1 or np.size(q.mantissa) == 0:
        raise ValueError(f"axis {name!r} needs a non-empty 1-D array of values; got shape {np.shape(q.mantissa)}.")
    check_range(f"axis {name!r}", q, unit)
    return q


def _base(base, drive):
    """(params, drive) to vary: ``base`` (default JRParams()) and ``drive`` (default constant(220 Hz)), checked."""
    params = JRParams() if base is None else base
    if not isinstance(params, JRParams):
        raise TypeError(f"base must be a jr_jax.JRParams; got {type(params).__name__}.")
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    return params, drive


def grid(*, base: JRParams | None = None, drive=None, **axes) -> Design:
    """The cartesian product of the given axes, e.g. ``grid(A=np.linspace(2, 10, 64) * u.mV, B=...)``.

    Axis names are JRParams fields or ``p`` (the mean of a constant or white-noise drive; default drive
    ``constant(220 Hz)``). The first axis varies slowest (``result.grid(name)`` has shape ``(len(ax1), len(ax2), …)``).
    """
    if not axes:
        raise ValueError("grid() needs at least one axis, e.g. grid(B=np.linspace(10, 60, 32) * u.mV).")
    params, drive = _base(base, drive)
    vals = {name: _axis_values(name, v) for name, v in axes.items()}
    shape = tuple(len(v.mantissa) for v in vals.values())
    mesh = np.meshgrid(*[np.asarray(v.mantissa) for v in vals.values()], indexing="ij")
    for (name, v), m in zip(vals.items(), mesh):
        params, drive = _assign(params, drive, name, u.Quantity(m.ravel(), unit=v.unit))
    return Design(params, drive, vals, shape)


def _bounds(name: str, pair, log: bool):
    """(low, high, unit) of ``name``'s bounds, checked: low and high as numbers in the unit of low."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"bounds for {name!r} must be a pair (low, high); got {pair!r}.")
    unit, example = _axis_unit(name)
    for q in pair:
        check_dim(f"bounds for {name!r}", q, unit, example)
        check_range(f"bounds for {name!r}", q, unit)
        if np.ndim(u.get_mantissa(q)) != 0:
            raise ValueError(f"bounds for {name!r} must be two single values; got {pair!r}.")
    lo, hi = pair
    unit = lo.unit if isinstance(lo, u.Quantity) else u.UNITLESS
    lo_v, hi_v = float(u.Quantity(lo).to_decimal(unit)), float(u.Quantity(hi).to_decimal(unit))
    if not lo_v < hi_v:
        raise ValueError(f"bounds for {name!r} must be (low, high) with low < high; got ({lo}, {hi}).")
    if log and lo_v <= 0:
        raise ValueError(f"log-uniform {name!r} needs positive bounds; got ({lo}, {hi}).")
    return lo_v, hi_v, unit


def random_design(n: int, *, key, base: JRParams | None = None, drive=None, log=(), **bounds) -> Design:
    """``n`` sets drawn uniformly (or log-uniformly for the names in ``log``) within ``bounds``, e.g.
    ``random_design(1000, key=jax.random.key(0), A=(2 * u.mV, 10 * u.mV), a=(50 * u.Hz, 200 * u.Hz), log=("a",))``."""
    n = check_int("random_design(n)", n, what="a positive number of sets")
    if check_key(key, "random_design(key)") is None:
        raise TypeError("random_design needs key=jax.random.key(seed).")
    params, drive = _base(base, drive)
    log = (log,) if isinstance(log, str) else tuple(log)
    unknown = set(log) - set(bounds)
    if unknown:
        raise ValueError(f"log names {sorted(unknown)} have no bounds.")
    checked = {name: _bounds(name, pair, name in log) for name, pair in bounds.items()}   # all, before drawing
    if "p" in checked:
        _p_field(drive)
    axes = {}
    for i, (name, (lo_v, hi_v, unit)) in enumerate(checked.items()):
        z = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (int(n),), dtype=jnp.float32), np.float64)
        if name in log:
            v = np.exp(np.log(lo_v) + z * (np.log(hi_v) - np.log(lo_v)))
        else:
            v = lo_v + z * (hi_v - lo_v)
        axes[name] = u.Quantity(v, unit=unit)
        params, drive = _assign(params, drive, name, axes[name])
    return RandomDesign(params, drive, axes, (int(n),))


