"""Measured data in: a sampled signal (an ERP or an EEG/MEG trace) or a power spectrum, from arrays, CSV or MNE.

A :class:`Recording` is one channel, or several named ones, sampled at a constant rate; a :class:`Spectrum` is a
one-sided PSD on a uniform frequency grid. Both keep their unit (a brainunit unit, e.g. ``u.uvolt``) or ``None`` for
arbitrary units. Values are checked on the way in: NaN/Inf, a wrong shape or a non-uniform time or frequency axis
raise ``ValueError``; a file's errors name the file and the line.
"""

from __future__ import annotations

import csv
import dataclasses
import math

import brainunit as u
import numpy as np

from .units import check_dim

SAMPLING_RATE_RANGE_HZ = (10.0, 100_000.0)
"""Sampling rates a CSV time column may give: EEG, MEG and LFP recordings lie well inside; a rate outside is almost
always a time column in the wrong unit (milliseconds read as seconds give 1000× too low a rate)."""

TIME_STEP_RTOL = 0.01
"""How far (relative) one step of a CSV time column may differ from the median step: loose enough for times printed
with six decimals at 2048 Hz, tight enough to catch a dropped sample (a step twice the others)."""

_TIME_HEADS = ("time", "t", "time_s", "times")
_FREQ_HEADS = ("freq", "freqs", "frequency", "frequency_hz", "f")


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


def _channel_names(channels, what: str = "channels") -> tuple[str, ...]:
    """Channel names as a tuple of unique, non-empty strings (``what`` names the argument in errors)."""
    if isinstance(channels, str) or not hasattr(channels, "__iter__"):
        raise TypeError(f"{what} must be a list of channel names such as ['Cz', 'Pz']; got {channels!r}.")
    names = tuple(channels)
    if not names:
        raise ValueError(f"{what} must name at least one channel; got an empty list.")
    bad = [c for c in names if not isinstance(c, str) or not c.strip()]
    if bad:
        raise ValueError(f"{what} must be non-empty strings (channel names); got {bad[0]!r}.")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ValueError(f"{what} must be unique; {dup} appear(s) more than once.")
    return names


def _finite_channels(values, names: tuple[str, ...]) -> np.ndarray:
    """(T, C) finite samples of the channels ``names``; NaN/Inf is named by channel and sample index."""
    x = np.asarray(values.mantissa if isinstance(values, u.Quantity) else values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"the recording's values must have shape (time, {len(names)}) for {len(names)} channel(s); "
                         f"got shape {x.shape}.")
    if x.shape[0] < 2:
        raise ValueError(f"the recording must have at least 2 samples; got {x.shape[0]}.")
    for j, name in enumerate(names):
        bad = np.nonzero(~np.isfinite(x[:, j]))[0]
        if bad.size:
            raise ValueError(f"channel {name!r} contains {bad.size} NaN/Inf value(s), the first at sample index "
                             f"{bad[0]}; remove or interpolate them first.")
    return x


@dataclasses.dataclass(frozen=True)
class Recording:
    """One channel sampled at ``sampling_rate`` (``values`` of shape (T,)), or C named ``channels`` (shape (T, C));
    ``t0`` is the time of the first sample (for an epoch, relative to the stimulus: −0.1 s for an epoch that starts
    100 ms before it)."""

    values: np.ndarray
    sampling_rate: u.Quantity
    unit: object = None
    t0: float = 0.0
    channels: tuple[str, ...] | None = None

    def pick(self, names) -> Recording:
        """The channels ``names`` (a list of names, in that order, or one name) as a Recording with those channels;
        unknown names are an error that names them."""
        if self.channels is None:
            raise ValueError("this recording is one unnamed channel; pick() needs one made with channels=[...].")
        names = _channel_names([names] if isinstance(names, str) else names, "pick(names)")
        missing = [n for n in names if n not in self.channels]
        if missing:
            raise ValueError(f"pick: {missing} is/are not channel(s) of this recording (channels: "
                             f"{list(self.channels[:8])}{' …' if len(self.channels) > 8 else ''}).")
        idx = [self.channels.index(n) for n in names]
        return dataclasses.replace(self, values=self.values[:, idx], channels=names)

    def channel(self, name: str) -> Recording:
        """The channel ``name`` as a one-channel Recording (values of shape (T,), no channel names)."""
        if not isinstance(name, str):
            raise TypeError(f"channel() takes one channel name (a string); got {name!r}.")
        one = self.pick([name])
        return dataclasses.replace(one, values=one.values[:, 0], channels=None)

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


def recording(values, sampling_rate, unit=None, t0=0.0, channels=None) -> Recording:
    """A :class:`Recording` from an array (or a Quantity, whose unit is then kept) sampled at ``sampling_rate`` (Hz):
    one channel of shape (T,), or with ``channels`` (C unique names) C channels of shape (T, C)."""
    check_dim("sampling_rate", sampling_rate, u.Hz, "1000. * u.Hz")
    fs = float(sampling_rate.to_decimal(u.Hz))
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sampling_rate must be positive and finite; got {sampling_rate!r}.")
    if isinstance(values, u.Quantity):
        if unit is not None:
            raise ValueError("values is a Quantity and carries its unit; do not pass unit as well.")
        unit = values.unit
    t0 = float(t0.to_decimal(u.second)) if isinstance(t0, u.Quantity) else float(t0)
    if channels is None:
        return Recording(_finite_1d("the recording", values), fs * u.Hz, _unit("unit", unit), t0)
    names = _channel_names(channels)
    return Recording(_finite_channels(values, names), fs * u.Hz, _unit("unit", unit), t0, names)


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


# -- text files ----------------------------------------------------------------------------------------------------

def decode_text(raw: bytes | str, where: str) -> str:
    """The text of a file's bytes (UTF-8, with or without a byte-order mark); binary content is an error."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{where}: not a text file (byte {err.start} cannot be read as UTF-8).") from None


def _numbers(cells: list[str], where: str, line: int) -> list[float]:
    """One line's cells as numbers; the first cell that is not one is named with its line and column."""
    try:
        return [float(c) for c in cells]
    except ValueError:
        col, bad = next((j, c) for j, c in enumerate(cells) if not _is_number(c))
        what = "an empty cell" if not bad.strip() else f"{bad.strip()!r}"
        raise ValueError(f"{where}, line {line}, column {col + 1}: {what} is not a number.") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _table(rows: list[tuple[int, list[str]]], where: str) -> np.ndarray:
    """(line, cells) rows, all of one width, as a float64 table; ragged rows and non-numbers name their line."""
    width = len(rows[0][1])
    out = np.empty((len(rows), width))
    for i, (line, cells) in enumerate(rows):
        if len(cells) != width:
            raise ValueError(f"{where}, line {line}: {len(cells)} column(s), but line {rows[0][0]} has {width}.")
        out[i] = _numbers(cells, where, line)
    return out


def _check_finite(table: np.ndarray, lines: list[int], where: str, columns=None) -> None:
    """NaN/Inf in ``table`` (in ``columns``, default all) is an error naming the first one's line and column."""
    cols = range(table.shape[1]) if columns is None else columns
    for j in sorted({c % table.shape[1] for c in cols}):
        bad = np.nonzero(~np.isfinite(table[:, j]))[0]
        if bad.size:
            raise ValueError(f"{where}, line {lines[bad[0]]}, column {j + 1}: {table[bad[0], j]} is not a finite "
                             f"number ({bad.size} such value(s) in this column); remove or interpolate them.")


def parse_matrix(raw: bytes | str, where: str, delimiter: str | None = None) -> np.ndarray:
    """A 2-D table of finite numbers from text (bytes or str): one row per non-blank line, cells split at
    ``delimiter`` (default: whitespace), ``#`` starts a comment. ``where`` names the source in every error, which
    also names the line: a cell that is not a number, a row of another length, NaN/Inf, or no numbers at all."""
    text = decode_text(raw, where)
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0]
        if body.strip():
            rows.append((number, body.split(delimiter) if delimiter else body.split()))
    if not rows:
        raise ValueError(f"{where}: holds no numbers (the file is empty).")
    table = _table(rows, where)
    _check_finite(table, [r[0] for r in rows], where)
    return table


def read_matrix(path, delimiter: str | None = ",") -> np.ndarray:
    """A 2-D table of finite numbers from a text file (CSV by default), e.g. a lead field; see :func:`parse_matrix`."""
    with open(path, "rb") as fh:
        return parse_matrix(fh.read(), str(path), delimiter)


# -- CSV of one signal or one spectrum -----------------------------------------------------------------------------

def _csv_rows(path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            return [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file (byte {err.start} cannot be read as UTF-8).") from None
    except csv.Error as err:
        raise ValueError(f"{path}: not a readable CSV file ({err}).") from None


def _step_checked(x: np.ndarray, lines: list[int], where: str, what: str, unit: str, rtol: float) -> float:
    """The step of an axis column that must increase strictly and evenly; the first line that breaks it is named."""
    steps = np.diff(x)
    down = np.nonzero(steps <= 0)[0]
    if down.size:
        i = down[0] + 1
        raise ValueError(f"{where}, line {lines[i]}: the {what} column must increase strictly; {x[i]:.9g} {unit} "
                         f"follows {x[i - 1]:.9g} {unit} on line {lines[i - 1]}.")
    median = float(np.median(steps))
    off = np.nonzero(np.abs(steps - median) > rtol * median)[0]
    if off.size:
        i = off[0] + 1
        raise ValueError(f"{where}, line {lines[i]}: the {what} column must be uniformly sampled; the step to this "
                         f"line is {steps[i - 1]:.6g} {unit}, the median step {median:.6g} {unit} (a missing or "
                         "repeated sample?).")
    return (x[-1] - x[0]) / (x.shape[0] - 1)


def _plausible_rate(fs: float, where: str) -> None:
    """A sampling rate outside SAMPLING_RATE_RANGE_HZ is an error that suggests the time column's unit."""
    lo, hi = SAMPLING_RATE_RANGE_HZ
    if lo <= fs <= hi:
        return
    hint = "give the times in seconds"
    for factor, name in ((1e3, "milliseconds"), (1e6, "microseconds")):
        if lo <= fs * factor <= hi:
            hint = (f"the time column looks like {name} read as seconds: divide by {factor:g} or give the times in "
                    "seconds")
            break
    raise ValueError(f"{where}: the time column gives a sampling rate of {fs:.6g} Hz, outside the plausible "
                     f"{lo:g} Hz–{hi / 1e3:g} kHz; {hint}.")


def _time_series(table, lines, path, sampling_rate, unit, column) -> Recording:
    t = table[:, 0]
    fs = 1.0 / _step_checked(t, lines, str(path), "time", "s", TIME_STEP_RTOL)
    _plausible_rate(fs, str(path))
    if sampling_rate is not None and not math.isclose(fs, float(sampling_rate.to_decimal(u.Hz)), rel_tol=1e-3):
        raise ValueError(f"{path}: the time column gives a sampling rate of {fs:.6g} Hz, not {sampling_rate!r}.")
    return recording(table[:, column], fs * u.Hz, unit, t0=t[0])


def read_csv(path, sampling_rate=None, unit=None, column: int = -1) -> Recording | Spectrum:
    """Read a CSV file of one signal or one spectrum.

    * a first column headed ``time``/``t`` (seconds): a :class:`Recording`; the sampling rate comes from the time
      column, which must increase evenly and give 10 Hz–100 kHz (``SAMPLING_RATE_RANGE_HZ``), and ``t0`` from its
      first value;
    * a first column headed ``freq``/``frequency`` (Hz): a :class:`Spectrum`;
    * one column of numbers without a header: a :class:`Recording` at ``sampling_rate`` (then required).

    ``column`` picks the value column (default: the last). Every error names the file, and the line where one is at
    fault (a cell that is not a number, NaN/Inf, a row of another length, a time that does not increase evenly).
    """
    rows = _csv_rows(path)
    if not rows:
        raise ValueError(f"{path}: the file is empty.")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        (header_line, header), rows = rows[0], rows[1:]
        header = [c.strip().lower() for c in header]
    if len(rows) < 2:
        raise ValueError(f"{path}: expected at least two rows of numbers{' after the header' if header else ''}; "
                         f"got {len(rows)}.")
    table, lines = _table(rows, str(path)), [r[0] for r in rows]
    width = table.shape[1]
    if header is not None and len(header) != width:
        raise ValueError(f"{path}, line {header_line}: the header names {len(header)} column(s), the rows below "
                         f"hold {width}.")
    if not -width <= column < width:
        raise ValueError(f"{path}: column={column} does not exist; the file has {width} column(s).")
    first = header[0] if header else None
    axis = first in _FREQ_HEADS or first in _TIME_HEADS or (header is None and width >= 2 and sampling_rate is None)
    if axis and column % width == 0:
        raise ValueError(f"{path}: the first column is the {'frequency' if first in _FREQ_HEADS else 'time'} column; "
                         f"the values need a column of their own (column={column}).")
    _check_finite(table, lines, str(path), [0, column] if axis else [column])
    try:
        if first in _FREQ_HEADS:
            _step_checked(table[:, 0], lines, str(path), "frequency", "Hz", 1e-6)
            return spectrum(table[:, 0], table[:, column], unit)
        if axis:
            return _time_series(table, lines, path, sampling_rate, unit, column)
        if width != 1 and header is not None:
            raise ValueError(f"the first column must be headed 'time' (s) or 'frequency' (Hz); got {header[0]!r}.")
        if sampling_rate is None:
            raise ValueError("there is no time column: pass sampling_rate (e.g. 1000 * u.Hz).")
        return recording(table[:, column], sampling_rate, unit)
    except ValueError as err:
        raise ValueError(str(err) if str(err).startswith(str(path)) else f"{path}: {err}") from None


MNE_UNITS = {"eeg": u.volt, "eog": u.volt, "ecg": u.volt, "emg": u.volt, "seeg": u.volt, "ecog": u.volt,
             "dbs": u.volt, "mag": u.tesla, "grad": u.tesla / u.meter}
"""The unit of MNE's data by channel type (MNE keeps SI units); other types (misc, stim, …) get ``None``."""


def _mne_index(names: list[str], pick) -> int:
    """The index of the channel ``pick`` (a name or an index) among ``names``."""
    if isinstance(pick, str):
        if pick not in names:
            raise ValueError(f"pick={pick!r} is not a channel of this object (channels: {names[:8]}…).")
        return names.index(pick)
    if isinstance(pick, bool) or not isinstance(pick, (int, np.integer)) or not -len(names) <= pick < len(names):
        raise ValueError(f"pick={pick!r} is not a channel name or an index below {len(names)}.")
    return int(pick) % len(names)


def _mne_recording(inst, idx: list[int], one: bool) -> Recording:
    """The channels ``idx`` of an MNE object: one channel of shape (T,) if ``one``, else named channels (T, C)."""
    names = [inst.ch_names[i] for i in idx]
    units = {MNE_UNITS.get(t) for t in inst.get_channel_types(picks=idx)}
    if len(units) > 1:
        raise ValueError(f"the channels {names[:8]} are of types with different units ({sorted(map(str, units))}); "
                         "pick channels of one type.")
    x = np.asarray(inst.get_data(picks=idx), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"from_mne takes an Evoked or a Raw object (data of shape (channels, time)); got data of "
                         f"shape {x.shape}: average Epochs first (epochs.average()).")
    fs, t0, unit = float(inst.info["sfreq"]) * u.Hz, float(inst.times[0]), units.pop()
    if not one:
        return recording(x.T, fs, unit, t0=t0, channels=names)
    try:
        return recording(x[0], fs, unit, t0=t0)
    except ValueError as err:
        raise ValueError(f"channel {names[0]!r}: {err}") from None


def from_mne(inst, pick=None) -> Recording:
    """A :class:`Recording` of an MNE ``Evoked`` or ``Raw`` object, in MNE's units (EEG in volts; MEG in T or T/m),
    ``t0`` from its ``times``.

    ``pick=None``: the one channel of a one-channel object; of a multi-channel object, all its EEG channels as a
    multi-channel Recording — data channels only (EOG, ECG, stimulus, MEG and other channels are left out) and the
    bad channels of ``info['bads']`` left out too. ``pick`` a channel name or index: that channel, as one channel of
    shape (T,). ``pick`` a list of names (or indices): those channels in that order, bad ones included as asked.
    """
    names = list(inst.ch_names)
    if pick is None and len(names) == 1:
        pick = 0
    if pick is None:
        types, bads = inst.get_channel_types(), set(inst.info["bads"])
        idx = [i for i, (n, t) in enumerate(zip(names, types)) if t == "eeg" and n not in bads]
        if not idx:
            raise ValueError(f"this object has no good EEG channel (channel types: {sorted(set(types))}; bad: "
                             f"{sorted(bads)}): pass pick=<name, index or list of names>.")
        return _mne_recording(inst, idx, one=False)
    if isinstance(pick, (str, int, np.integer)):
        return _mne_recording(inst, [_mne_index(names, pick)], one=True)
    picks = list(pick) if hasattr(pick, "__iter__") else []
    if not picks:
        raise ValueError(f"pick={pick!r} is not a channel name, an index or a non-empty list of them.")
    idx = [_mne_index(names, p) for p in picks]
    _channel_names([names[i] for i in idx], "pick")
    return _mne_recording(inst, idx, one=False)
