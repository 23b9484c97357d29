"""Results as labelled ``xarray`` Datasets: named dimensions, coordinates in their units and a ``units`` attribute on
every variable, so that a run or a sweep can be selected by value, plotted and saved (``to_netcdf``) as it is.

xarray is an optional extra (``pip install jr_jax[xarray]``), imported only when a conversion is asked for.
"""

from __future__ import annotations

import brainunit as u
import numpy as np

from .loop import UNITS
from .network import NetworkState
from .params import FIELDS


def require_xarray():
    """The ``xarray`` module, or an ImportError that names the extra to install."""
    try:
        import xarray
    except ImportError:
        raise ImportError("to_xarray() needs xarray, an optional dependency of jr_jax: "
                          "pip install jr_jax[xarray]") from None
    return xarray


def unit_str(unit) -> str:
    """A unit as a compact string for ``attrs["units"]``: ``"mV"``, ``"mV/s"``, ``"mV^2/Hz"``, ``"1"``."""
    return str(unit).replace(" / ", "/")


def _numbers(x, unit=None) -> tuple[np.ndarray, dict]:
    """(NumPy numbers, attrs with their units) of a Quantity, in ``unit`` if given (a named unit: one computed in
    the run may print as SI base units); a plain array (a flag) gets no units."""
    if isinstance(x, u.Quantity):
        unit = x.unit if unit is None else unit
        return np.asarray(x.to_decimal(unit)), {"units": unit_str(unit)}
    return np.asarray(x), {}


def _axis(name: str, values) -> tuple[np.ndarray, dict]:
    """A design axis's values in the canonical unit of its JRParams field (``p``: Hz), with that unit."""
    return _numbers(u.Quantity(values), FIELDS[name][0] if name in FIELDS else u.Hz)


def simulation_dataset(result, labels=None):
    """A :class:`jr_jax.SimulationResult` as a Dataset: one variable per recorded variable, dims ``("time",)`` for
    one column, ``("time", "set")`` for a batch or ``("time", "region")`` for a network (its ``final_state`` is a
    NetworkState); ``labels`` name the sets or regions (e.g. ``network.labels``; default 0 … n−1)."""
    xr = require_xarray()
    time = np.asarray(result.time.to_decimal(u.second))
    if time.ndim != 1:
        raise ValueError(f"to_xarray() converts one run (time of shape (n_records,)); this result's time has shape "
                         f"{time.shape} (a vmapped trace?): convert each run on its own.")
    dim = "region" if isinstance(result.final_state, NetworkState) else "set"
    coords, data, n = {"time": ("time", time, {"units": "s"})}, {}, None
    for name, q in result.variables.items():
        x, attrs = _numbers(q, UNITS[name])
        if x.ndim not in (1, 2) or x.shape[0] != time.size:
            raise ValueError(f"recorded {name!r} has shape {x.shape}; expected ({time.size},) or ({time.size}, n).")
        n = x.shape[1] if x.ndim == 2 else n
        data[name] = xr.Variable(("time", dim)[:x.ndim], x, attrs)
    if n is not None:           # labels name an axis only where a variable has it
        values = np.arange(n) if labels is None else np.asarray(labels)
        if values.shape != (n,):
            raise ValueError(f"labels must give one name per {dim} ({n}); got shape {values.shape}.")
        coords[dim] = (dim, values)
    rec = result.record
    attrs = {"dt_s": float(result.dt.to_decimal(u.second)), "method": result.method,
             "record_variables": ",".join(rec.variables), "record_every": int(rec.every),
             "record_reduce": rec.reduce}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def sweep_dataset(result):
    """A :class:`jr_jax.SweepResult` as a Dataset: the features, ``diverged`` and ``computed`` as variables over the
    grid's axes (coordinates: the axes' values in their field's unit, e.g. mV for A, named in attrs) or over ``set``
    for other designs (a random design's values then ride along as coordinates); the PSD also over ``frequency``."""
    xr = require_xarray()
    design = result.design
    shape = tuple(design.shape)
    if design.is_grid:
        dims = tuple(design.axes)
        coords = {k: (k,) + _axis(k, v) for k, v in design.axes.items()}
    else:
        dims, coords = ("set",), {"set": ("set", np.arange(design.size))}
        coords |= {k: ("set",) + _axis(k, v) for k, v in design.axes.items()
                   if np.shape(u.get_mantissa(v)) == (design.size,)}
    coords["frequency"] = ("frequency", np.asarray(result.freqs.to_decimal(u.Hz)), {"units": "Hz"})
    data = {}
    for name, v in {**result.features, "computed": result.computed}.items():
        x, attrs = _numbers(v)
        x = x.reshape(shape + x.shape[1:])
        data[name] = xr.Variable(dims + ("frequency",) * (x.ndim - len(shape)), x, attrs)
    return xr.Dataset(data, coords=coords, attrs={"chunk_size": int(result.chunk_size)})
