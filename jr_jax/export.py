"""Results out: as labelled ``xarray`` Datasets (named dimensions, coordinates in their units and a ``units``
attribute on every variable, so that a run or a sweep can be selected by value, plotted and saved with
``to_netcdf``), and sensor EEG as MNE ``Evoked``/``Raw`` objects with a montage (:func:`to_mne`), for MNE's
topomaps, joint plots and source tools.

xarray and MNE are optional extras (``pip install jr_jax[xarray]``, ``jr_jax[mne]``), imported only when a
conversion is asked for.
"""

from __future__ import annotations

import brainunit as u
import numpy as np

from .data import TIME_STEP_RTOL, Recording
from .loop import UNITS
from .network import NetworkState
from .params import FIELDS
from .units import UnitError, check_dim, check_int, check_number


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


# -- MNE -------------------------------------------------------------------------------------------------------------

TO_MNE_KINDS = ("evoked", "raw")


def require_mne():
    """The ``mne`` module, or an ImportError that names the extra to install."""
    try:
        import mne
    except ImportError:
        raise ImportError('to_mne() needs MNE-Python, an optional dependency of jr_jax: pip install "jr_jax[mne]"') \
            from None
    return mne


def sensor_layout(sensors) -> tuple[list[str], np.ndarray | None]:
    """(names, positions (M, 3) in m, or None) of a lead field (``.sensors``, ``.positions``) or a list of names."""
    if isinstance(sensors, (list, tuple)) and sensors and all(isinstance(s, str) for s in sensors):
        names, pos = list(sensors), None
    elif hasattr(sensors, "sensors"):
        names, pos = list(sensors.sensors), getattr(sensors, "positions", None)
    else:
        raise TypeError("sensors must be a lead field with .sensors (names) and .positions ((M, 3), in m), such as "
                        f"jr_jax.leadfield.tvb_eeg65(), or a list of sensor names; got {type(sensors).__name__}.")
    dup = sorted({n for n in names if names.count(n) > 1})
    if not names or dup or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"sensors must name each sensor once with a non-empty string; got {names[:8]}"
                         f"{' (repeated: ' + str(dup) + ')' if dup else ''}.")
    if pos is not None:
        pos = np.asarray(pos.to_decimal(u.meter) if isinstance(pos, u.Quantity) else pos, dtype=np.float64)
        if pos.shape != (len(names), 3) or not np.all(np.isfinite(pos)):
            raise ValueError(f"sensors.positions must be finite x, y, z in m, of shape ({len(names)}, 3) for "
                             f"{len(names)} sensors; got shape {pos.shape}.")
        if np.abs(pos).max() > 1.0:
            raise ValueError(f"sensors.positions must be in metres (a head is about 0.2 m across); they reach "
                             f"{np.abs(pos).max():.6g} (millimetres?).")
        check_head_frame(names, pos)
    return names, pos


def check_head_frame(names: list[str], pos: np.ndarray) -> None:
    """A ValueError unless the 10-10 frontal sensors (Fp…, AF…) lie towards +y of the occipital ones (O…, PO…,
    Iz), as in MNE's head frame (x to the right ear, y to the nose, z up): a map in another frame is drawn turned."""
    front = [i for i, n in enumerate(names) if n.lower().startswith(("fp", "af"))]
    back = [i for i, n in enumerate(names) if n.lower().startswith(("o", "po")) or n.lower() == "iz"]
    if not front or not back:
        return
    d = pos[front].mean(axis=0) - pos[back].mean(axis=0)
    if not d[1] > abs(d[0]):
        raise ValueError(f"sensors.positions must be in MNE's head frame (x to the right ear, y to the nose, z up); "
                         f"here the frontal sensors lie at {np.round(d[:2], 3).tolist()} m (x, y) from the occipital "
                         "ones. Positions with x to the nose and y to the left ear (Brainstorm, CTF) become "
                         "(−y, x, z).")


def _eeg_volts(eeg, names: list[str], pos):
    """(sensor EEG (T, M) in V, names, positions) of a Quantity (T, M) or a Recording (channels matched by name)."""
    if isinstance(eeg, Recording):
        if eeg.unit is None or u.get_dim(eeg.unit) != u.get_dim(u.volt):
            raise UnitError(f"eeg (a Recording) must be in a voltage unit to convert to volts (e.g. recording(..., "
                            f"unit=u.uvolt)); got unit {eeg.unit}.")
        x = eeg.values * float(u.Quantity(1.0, unit=eeg.unit).to_decimal(u.volt))
        x = x[:, None] if x.ndim == 1 else x
        if eeg.channels is not None:
            missing = [c for c in eeg.channels if c not in names]
            if missing:
                raise ValueError(f"eeg's channels {missing[:8]} are not sensors of `sensors` ({names[:8]}…).")
            idx = [names.index(c) for c in eeg.channels]
            names, pos = list(eeg.channels), None if pos is None else pos[idx]
    elif isinstance(eeg, u.Quantity):
        if u.get_dim(eeg) != u.get_dim(u.mV):
            raise UnitError(f"eeg must be in a voltage unit such as mV (as net.sensors(result.eeg) gives); got unit "
                            f"{eeg.unit}.")
        x = np.asarray(eeg.to_decimal(u.volt), dtype=np.float64)
    else:
        raise TypeError(f"eeg must be sensor EEG, a Quantity of shape (time, sensors) in mV (net.sensors(result.eeg)),"
                        f" or a jr_jax.data.Recording; got {type(eeg).__name__} of shape {np.shape(eeg)}.")
    if x.ndim != 2 or x.shape[1] != len(names) or x.shape[0] < 1:
        hint = " (transposed? time comes first)" if x.ndim == 2 and x.shape[0] == len(names) else ""
        raise ValueError(f"eeg must have shape (time, {len(names)}) for the {len(names)} sensors of `sensors`; got "
                         f"shape {x.shape}{hint}. Region EEG goes to sensors with net.sensors(result.eeg) first.")
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"eeg has NaN/Inf: sensor {names[bad[0][1]]!r}, sample index {bad[0][0]}.")
    return x, names, pos


def _time_axis(n: int, sampling_rate, times, t0) -> tuple[float, float]:
    """(sampling rate in Hz, time of the first sample in s) from ``sampling_rate`` and ``t0``, or from ``times``."""
    if times is not None:
        if sampling_rate is not None or t0 is not None:
            raise ValueError("pass times= (e.g. result.time) or sampling_rate= and t0=, not both.")
        if isinstance(times, u.Quantity):
            t = np.asarray(check_dim("times", times, u.second, "result.time").to_decimal(u.second), np.float64)
        else:
            t = np.asarray(times, dtype=np.float64)
        if t.shape != (n,) or n < 2:
            raise ValueError(f"times must give one time per sample of eeg, shape ({n},) with n ≥ 2; got {t.shape}.")
        step = (t[-1] - t[0]) / (n - 1)
        if not (step > 0 and np.all(np.abs(np.diff(t) - step) <= TIME_STEP_RTOL * step)):
            raise ValueError("times must increase uniformly (one sampling rate); they do not.")
        return 1.0 / step, float(t[0])
    if sampling_rate is None:
        raise ValueError("to_mne needs the sampling rate: pass sampling_rate= (e.g. 1000 * u.Hz) or times= "
                         "(e.g. result.time); got neither.")
    fs = float(check_dim("sampling_rate", sampling_rate, u.Hz, "1000. * u.Hz").to_decimal(u.Hz))
    t0 = 0.0 if t0 is None else t0
    t0 = float(check_dim("t0", t0, u.second, "-0.1 * u.second").to_decimal(u.second)) \
        if isinstance(t0, u.Quantity) else check_number("t0", t0)
    if not (fs > 0 and np.isfinite(fs) and np.isfinite(t0)):
        raise ValueError(f"sampling_rate must be positive and finite and t0 finite; got {sampling_rate!r}, {t0!r}.")
    return fs, t0


def to_mne(eeg, sensors, *, sampling_rate=None, times=None, kind: str = "evoked", t0=None, nave: int = 1):
    """Sensor EEG as an MNE ``EvokedArray`` (``kind="evoked"``) or ``RawArray`` (``kind="raw"``), in volts, with a
    montage from the sensor positions, so that MNE's topomaps, joint plots and source tools take a simulation.

    Args:
      eeg: sensor EEG, a Quantity of shape (T, M) in a voltage unit (what ``Network.sensors`` returns), or a
        :class:`jr_jax.data.Recording` in a voltage unit (its channels matched to ``sensors`` by name; it carries
        its sampling rate and ``t0``).
      sensors: a lead field with ``.sensors`` (M names) and ``.positions`` ((M, 3), m, in MNE's head frame: x to
        the right ear, y to the nose, z up), such as ``jr_jax.leadfield.tvb_eeg65()``; or a list of M names (then
        no montage, and no topomap).
      sampling_rate: the rate of ``eeg``'s samples (Hz); or ``times``: their times (s, e.g. ``result.time``).
      t0: the time of the first sample (s; default 0), e.g. −0.1 s for an epoch that starts 100 ms before the
        stimulus. For ``kind="raw"`` it becomes ``raw.first_time`` (MNE's ``raw.times`` start at 0).
      nave: the number of averaged trials an Evoked stands for (for noise estimates; 1 for a simulation).
    """
    if kind not in TO_MNE_KINDS:
        raise ValueError(f"kind must be one of {TO_MNE_KINDS}; got {kind!r}.")
    nave = check_int("nave", nave, low=1)
    names, pos = sensor_layout(sensors)
    x, names, pos = _eeg_volts(eeg, names, pos)
    if isinstance(eeg, Recording):
        if sampling_rate is not None or times is not None or t0 is not None:
            raise ValueError("eeg is a Recording, which carries its sampling rate and t0: do not pass "
                             "sampling_rate=, times= or t0=.")
        fs, start = eeg.fs_hz, eeg.t0
    else:
        fs, start = _time_axis(x.shape[0], sampling_rate, times, t0)
    mne = require_mne()
    info = mne.create_info(names, fs, "eeg")
    if pos is not None:
        info.set_montage(mne.channels.make_dig_montage(ch_pos=dict(zip(names, pos)), coord_frame="head"))
    if kind == "evoked":
        return mne.EvokedArray(x.T, info, tmin=start, nave=nave, verbose=False)
    return mne.io.RawArray(x.T, info, first_samp=int(round(start * fs)), verbose=False)
