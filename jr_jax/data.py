"""Measured data in: a sampled signal (an ERP or an EEG/MEG trace) or a power spectrum, from arrays, CSV or MNE.

A :class:`Recording` is one channel sampled at a constant rate; a :class:`Spectrum` is a one-sided PSD on a uniform
frequency grid. Both keep their unit (a brainunit unit, e.g. ``u.uvolt``) or ``None`` for arbitrary units. Values are
checked on the way in: NaN/Inf, a wrong shape or a non-uniform time or frequency axis raise ``ValueError``.
"""

from __future__ import annotations

import csv
import dataclasses
import math

import brainunit as u
import numpy as np

from .units import check_dim


def _finite_1d(name: str, values, min_len: int = 2) -> np.ndarray:
    x = np.asarray(values.mantissa if isinstance(values, u.Quantity) else values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one channel (a 1-D array); got shape {x.shape}.")
    if x.shape[0] < min_len:
        raise ValueError(f"{name} must have at least {min_len} samples; got {x.shape[0]}.")
    bad = np.nonzero(~np.isfinite(x))[0]
    if bad.size:
        raise ValueError(f"{name} contains {bad.size} NaN/Inf value(s), the first at index {bad[0]}; "
                         f"remove or interpolate them first.")
    return x


@dataclasses.dataclass(frozen=True)
class Recording:
    """One channel sampled at ``sampling_rate``; ``t0`` is the time of the first sample (for an epoch, relative to
    the stimulus: −0.1 s for an epoch that starts 100 ms before it)."""

    values: np.ndarray
    sampling_rate: u.Quantity
    unit: object = None
    t0: float = 0.0

    @property
    def fs_hz(self) -> float:
        return float(self.sampling_rate.to_decimal(u.Hz))

    @property
    def times(self) -> np.ndarray:
        """Sample times in seconds."""
        return self.t0 + np.arange(self.values.shape[0]) / self.fs_hz


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """A one-sided PSD ``psd`` at the uniformly spaced frequencies ``freqs`` (Hz, plain numbers)."""

    freqs: np.ndarray
    psd: np.ndarray
    unit: object = None

    @property
    def df(self) -> float:
        return float(self.freqs[1] - self.freqs[0])


def _unit(name, unit):
    if unit is not None and not isinstance(unit, u.Unit):
        raise TypeError(f"{name} must be a brainunit unit such as u.uvolt, or None for arbitrary units; got {unit!r}.")
    return unit


def recording(values, sampling_rate, unit=None, t0=0.0) -> Recording:
    """A :class:`Recording` from an array (or a Quantity, whose unit is then kept) sampled at ``sampling_rate`` (Hz)."""
    check_dim("sampling_rate", sampling_rate, u.Hz, "1000. * u.Hz")
    fs = float(sampling_rate.to_decimal(u.Hz))
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sampling_rate must be positive and finite; got {sampling_rate!r}.")
    if isinstance(values, u.Quantity):
        if unit is not None:
            raise ValueError("values is a Quantity and carries its unit; do not pass unit as well.")
        unit = values.unit
    t0 = float(t0.to_decimal(u.second)) if isinstance(t0, u.Quantity) else float(t0)
    return Recording(_finite_1d("the recording", values), fs * u.Hz, _unit("unit", unit), t0)


def spectrum(freqs, psd, unit=None) -> Spectrum:
    """A :class:`Spectrum` from frequencies (Hz; a Quantity or plain numbers) and PSD values on a uniform grid."""
    f = np.asarray(freqs.to_decimal(u.Hz) if isinstance(freqs, u.Quantity) else freqs, dtype=np.float64)
    if isinstance(psd, u.Quantity):
        unit = psd.unit if unit is None else unit
    p = _finite_1d("the spectrum's psd", psd, min_len=3)
    f = _finite_1d("the spectrum's freqs", f, min_len=3)
    if f.shape != p.shape:
        raise ValueError(f"freqs and psd must have the same length; got {f.shape[0]} and {p.shape[0]}.")
    df = np.diff(f)
    if not (df[0] > 0 and np.allclose(df, df[0], rtol=1e-6, atol=0)):
        raise ValueError("freqs must be increasing and uniformly spaced (as Welch's method gives); "
                         f"got spacings from {df.min():.6g} to {df.max():.6g} Hz.")
    if np.any(p <= 0):
        raise ValueError(f"psd must be positive everywhere (its logarithm is fitted); {int(np.sum(p <= 0))} value(s) are not.")
    return Spectrum(f, p, _unit("unit", unit))


def read_csv(path, sampling_rate=None, unit=None, column: int = -1) -> Recording | Spectrum:
    """Read a CSV file of one signal or one spectrum.

    * a first column headed ``time``/``t`` (seconds): a :class:`Recording`; the sampling rate comes from the time
      column (which must be uniform) and ``t0`` from its first value;
    * a first column headed ``freq``/``frequency`` (Hz): a :class:`Spectrum`;
    * one column of numbers without a header: a :class:`Recording` at ``sampling_rate`` (then required).

    ``column`` picks the value column (default: the last).
    """
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: the file is empty.")
    header = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        header, rows = [c.strip().lower() for c in rows[0]], rows[1:]
    try:
        table = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: every row after the header must be numbers ({err}).") from None
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError(f"{path}: expected at least two rows of numbers; got {table.shape[0]}.")
    first = header[0] if header else None
    if first in ("freq", "freqs", "frequency", "frequency_hz", "f"):
        return spectrum(table[:, 0], table[:, column], unit)
    if first in ("time", "t", "time_s", "times") or (header is None and table.shape[1] >= 2 and sampling_rate is None):
        t = table[:, 0]
        dts = np.diff(t)
        if not (dts[0] > 0 and np.allclose(dts, dts[0], rtol=1e-4, atol=0)):
            raise ValueError(f"{path}: the time column must be increasing and uniformly sampled; "
                             f"got steps from {dts.min():.6g} to {dts.max():.6g} s.")
        fs = 1.0 / np.mean(dts)
        if sampling_rate is not None and not math.isclose(fs, float(sampling_rate.to_decimal(u.Hz)), rel_tol=1e-3):
            raise ValueError(f"{path}: the time column gives a sampling rate of {fs:.6g} Hz, not {sampling_rate!r}.")
        return recording(table[:, column], fs * u.Hz, unit, t0=t[0])
    if table.shape[1] != 1 and header is not None:
        raise ValueError(f"{path}: the first column must be headed 'time' (s) or 'frequency' (Hz); got {header[0]!r}.")
    if sampling_rate is None:
        raise ValueError(f"{path} has no time column: pass sampling_rate (e.g. 1000 * u.Hz).")
    return recording(table[:, column], sampling_rate, unit)


def from_mne(inst, pick=None) -> Recording:
    """A :class:`Recording` of one channel of an MNE ``Evoked`` or ``Raw`` object (data in volts; ``t0`` from its
    ``times``). ``pick`` is a channel name or index; required when there is more than one channel."""
    names = list(inst.ch_names)
    if pick is None:
        if len(names) != 1:
            raise ValueError(f"this object has {len(names)} channels: pass pick=<name or index> "
                             f"(channels: {names[:8]}{' …' if len(names) > 8 else ''}).")
        pick = 0
    if isinstance(pick, str):
        if pick not in names:
            raise ValueError(f"pick={pick!r} is not a channel of this object (channels: {names[:8]}…).")
        pick = names.index(pick)
    data = np.asarray(inst.get_data(picks=[int(pick)]), dtype=np.float64)[0]
    return recording(data, float(inst.info["sfreq"]) * u.Hz, u.volt, t0=float(inst.times[0]))
