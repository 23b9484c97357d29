"""The built-in fitting objectives: an ERP in the time domain and a power spectrum, each a differentiable
``loss(params: JRParams) -> scalar``.

* :func:`erp_target`: the EEG response to a stimulus drive against a measured ERP. The loss is the mean squared
  residual divided by the target's variance (1 − R²-like, dimensionless). An optional scale and baseline are
  solved in closed form (least squares) at every evaluation, so the gradient is that of the profiled loss.
* :func:`spectrum_target`: the log Welch PSD of the simulated EEG over a band against a measured PSD. With a noisy
  drive the simulated PSD is the mean over K realisations with fixed keys (common random numbers), so the loss is
  deterministic. An optional overall scale is profiled out in closed form.

This is the one module of the fitting code that calls the simulator.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .data import Recording, Spectrum
from .drives import Drive
from .model import eeg
from .checks import check_budget as check_run_budget, run_settings, whole_steps
from .simulation import DEFAULT_DT, DEFAULT_METHOD, Record, trace
from .solvers import Solver, solver as get_solver
from .spectra import welch
from .store import digest
from .units import check_bool, check_dim, check_int, check_range, check_scalar


def _mv_to(unit) -> float:
    """Factor from model mV to ``unit`` (1 for arbitrary units)."""
    return 1.0 if unit is None else float((1.0 * u.mV).to_decimal(unit))


class Epoch(NamedTuple):
    """The checked settings of an evoked-response target (:func:`epoch_settings`)."""

    dt_s: float
    transient_steps: int
    dtype: object
    every: int
    scale: bool
    baseline: bool
    check_budget: bool


def epoch_settings(what: str, recording: Recording, drive: Drive, dt, transient, dtype, scale, baseline,
                   check_budget) -> Epoch:
    """Check the settings that the single-column and the network evoked-response targets share: the step, the
    transient, whole steps per sample, at least 8 samples, and a scale (default: for data in arbitrary units, which
    cannot be fitted without one)."""
    dt_s, _, tr_s, dtype, _ = run_settings(1.0 * u.second, dt, transient, dtype, drive, None)
    every = steps_per_sample(what, recording.fs_hz, dt_s)
    n = recording.values.shape[0]
    if n < 8:
        raise ValueError(f"{what} must have at least 8 samples; got {n}.")
    scale = recording.unit is None if scale is None else scale
    scale, baseline = check_bool("scale", scale), check_bool("baseline", baseline)
    if recording.unit is None and not scale:
        raise ValueError("data in arbitrary units (unit=None) needs scale=True; give the data's unit to fit without "
                         "a scale.")
    return Epoch(dt_s, whole_steps("transient", tr_s, dt_s), dtype, every, scale, baseline,
                 check_bool("check_budget", check_budget))


def steps_per_sample(what: str, fs_hz: float, dt_s: float) -> int:
    """Integration steps per sample at ``fs_hz``; a sample interval that is not a whole number of steps raises."""
    k = 1.0 / (fs_hz * dt_s)
    n = int(round(k))
    if n < 1 or abs(k - n) > 1e-6 * k:
        raise ValueError(f"{what} is sampled at {fs_hz:.6g} Hz: its sample interval {1e3 / fs_hz:.6g} ms must be a whole "
                         f"number of steps of dt = {dt_s * 1e3:.6g} ms (it is {k:.6g}). Resample the data or choose dt "
                         f"= (1 / sampling rate) / n for a whole n.")
    return n


def _one_channel(data: Recording) -> None:
    """A column's targets compare one channel; several go to :mod:`jr_jax.sensor_targets`."""
    if data.channels is not None:
        raise ValueError(f"data has {len(data.channels)} channels; a single column's target fits one: pass "
                         f"data.channel(name) (channels: {list(data.channels)[:8]}), or fit a network with "
                         f"jr_jax.sensor_targets.")


def profiled_curve(x, data: Recording, scale: bool, baseline: bool):
    """(s·x + c, s, c): the model ``x`` (mV; samples first, channels after) in the data's units, with one scale s
    (``scale``; else the unit's factor) and an offset c per channel (``baseline``; else 0) solved by least squares."""
    y = jnp.asarray(data.values, x.dtype)
    xm = x - x.mean(axis=0) if baseline else x
    if scale:
        ym = y - y.mean(axis=0) if baseline else y
        s = jnp.sum(xm * ym) / jnp.maximum(jnp.sum(xm * xm), jnp.finfo(x.dtype).tiny)
    else:
        s = jnp.asarray(_mv_to(data.unit), x.dtype)
    c = (y - s * x).mean(axis=0) if baseline else jnp.zeros(y.shape[1:], x.dtype)
    return s * x + c, s, c


# -- ERP ----------------------------------------------------------------------------------------------------------

class ProfiledTarget:
    """What the time-domain targets share: the model's curve with the profiled scale and baseline
    (:func:`profiled_curve`) against ``recording``, and the loss, the mean squared residual over the data's variance.
    A subclass holds ``recording``, ``scale`` and ``baseline`` and defines ``simulate(params)`` (mV)."""

    def _fit_curve(self, x):
        return profiled_curve(x, self.recording, self.scale, self.baseline)

    def model(self, params):
        """The fitted model in the target's units (scale and baseline applied)."""
        return self._fit_curve(self.simulate(params))[0]

    def nuisance(self, params) -> dict:
        """The closed-form scale (target unit per mV) and baseline(s) (target unit; one per channel) at ``params``."""
        _, s, c = self._fit_curve(self.simulate(params))
        c = np.asarray(c)
        return {"scale": float(s), "baseline": float(c) if c.ndim == 0 else [float(v) for v in c]}

    def __call__(self, params):
        y = jnp.asarray(self.recording.values)
        m = self.model(params)
        var = float(np.var(self.recording.values))
        return jnp.mean((m - y.astype(m.dtype)) ** 2) / (var if var > 0 else 1.0)


@dataclasses.dataclass(frozen=True, eq=False)
class ERPTarget(ProfiledTarget):
    """Objective: simulated EEG (sample k at t = transient + k / fs) against a measured ERP. Build with
    :func:`erp_target`; call it on a JRParams to get the loss."""

    recording: Recording
    drive: object
    dt_s: float
    method: Solver
    transient_steps: int
    every: int
    scale: bool
    baseline: bool
    dtype: object = None
    check_budget: bool = True

    @property
    def n_points(self) -> int:
        """The number of samples compared (the Laplace approximation's n)."""
        return int(self.recording.values.shape[0])

    def simulate(self, params):
        """Simulated EEG at the target's sample times, in mV (traceable)."""
        n = self.n_points
        tr = trace(params, duration=(n - 1) * self.every * self.dt_s * u.second, dt=self.dt_s * u.second,
                   drive=self.drive, method=self.method, record=Record(("eeg",), self.every),
                   transient=self.transient_steps * self.dt_s * u.second, dtype=self.dtype,
                   check_budget=self.check_budget)
        first = eeg(tr.start_state).to_decimal(u.mV)[None]
        return jnp.concatenate([first, tr.eeg.to_decimal(u.mV)])

    def spec(self) -> dict:
        """What fixes the loss, JSON-able: a resumed fit must find the same."""
        return {"kind": "erp", "n": self.n_points, "fs_hz": self.recording.fs_hz, "data": digest(self.recording.values),
                "dt_s": self.dt_s, "method": self.method.spec(), "transient_steps": self.transient_steps,
                "scale": self.scale, "baseline": self.baseline, "drive": repr(self.drive)}


def erp_target(data: Recording, drive, *, dt=DEFAULT_DT, method: str | Solver = DEFAULT_METHOD, transient=1.0 * u.second,
               scale: bool | None = None, baseline: bool = True, dtype=None,
               check_budget: bool = True) -> ERPTarget:
    """An ERP objective.

    Args:
      data: a :class:`jr_jax.data.Recording` (from an array, CSV or MNE); sample k is compared with the simulated EEG
        at t = transient + k / sampling_rate.
      drive: the input, stimulus included, in simulation time (the epoch starts at ``transient``): e.g.
        ``drives.constant(60 * u.Hz) + drives.pulse(transient + 0.1 * u.second, 300 * u.Hz)``.
      dt, method: the integration (the sample interval must be a whole number of steps).
      transient: simulated before the epoch from the zero state, so that the epoch starts from rest.
      scale: fit a scale factor (target units per mV); default: True when the data's unit is None (arbitrary units),
        else False (model mV converted to the data's unit).
      baseline: fit a constant offset (default True: measured ERPs are baseline-corrected, the model's EEG is not).
      check_budget: as in :func:`jr_jax.simulate`, for one loss evaluation (checked here and by every ``trace``).
    """
    if not isinstance(data, Recording):
        raise TypeError(f"data must be a jr_jax.data.Recording (jr_jax.data.recording(values, sampling_rate)); "
                        f"got {type(data).__name__}.")
    _one_channel(data)
    if not isinstance(drive, Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    if drive.is_random:
        raise ValueError("an ERP target needs a deterministic drive (the ERP is the mean response); fit a noisy "
                         "drive's output with spectrum_target.")
    e = epoch_settings("the ERP target", data, drive, dt, transient, dtype, scale, baseline, check_budget)
    n = data.values.shape[0]
    check_run_budget("erp_target", steps=e.transient_steps + (n - 1) * e.every, dt_s=e.dt_s,
                     record_bytes=n * e.dtype.itemsize, records=f"{n:,} samples",
                     advice="Use a shorter transient or a larger dt", check=e.check_budget)
    return ERPTarget(data, drive, e.dt_s, get_solver(method), e.transient_steps, e.every, e.scale, e.baseline,
                     e.dtype, e.check_budget)


# -- spectrum -----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class SpectrumTarget:
    """Objective: mean log-PSD error over a band; build with :func:`spectrum_target`."""

    freqs: np.ndarray          # Hz, the bins compared
    log_psd: np.ndarray        # log of the target PSD at freqs (target units)
    unit: object
    drive: object
    keys: object               # (K,) keys, one realisation each
    dt_s: float
    method: Solver
    n_steps: int
    transient_steps: int
    every: int
    nperseg: int
    bins: np.ndarray           # indices of freqs in the simulated Welch grid
    scale: bool
    dtype: object = None
    check_budget: bool = True

    @property
    def n_points(self) -> int:
        """The number of frequency bins compared (the Laplace approximation's n)."""
        return int(self.freqs.shape[0])

    def psd(self, params):
        """Simulated PSD (mV²/Hz) at ``freqs``: the mean over the realisations (traceable)."""
        fs = 1.0 / (self.every * self.dt_s)

        def one(key):
            tr = trace(params, duration=self.n_steps * self.dt_s * u.second, dt=self.dt_s * u.second,
                       drive=self.drive, key=key, method=self.method, record=Record(("eeg",), self.every, "mean"),
                       transient=self.transient_steps * self.dt_s * u.second, dtype=self.dtype,
                       check_budget=self.check_budget)
            x = tr.eeg.to_decimal(u.mV)
            return welch(x, fs, nperseg=self.nperseg)[1].mantissa[self.bins]

        p = jax.vmap(one)(self.keys).mean(axis=0)
        return p / jnp.asarray(boxcar_power(self.freqs, self.every, self.dt_s), p.dtype)

    def _residuals(self, params):
        k = 1.0 if self.unit is None else float((1.0 * u.mV ** 2 / u.Hz).to_decimal(self.unit))
        lp = jnp.log(self.psd(params)) + math.log(k)
        r = lp - jnp.asarray(self.log_psd, lp.dtype)
        c = -r.mean() if self.scale else jnp.zeros((), lp.dtype)
        return r + c, c

    def model(self, params):
        """The fitted model PSD in the target's units (scale applied)."""
        r, _ = self._residuals(params)
        return jnp.exp(r + jnp.asarray(self.log_psd, r.dtype))

    def nuisance(self, params) -> dict:
        """The closed-form log PSD scale at ``params`` (0 with scale=False)."""
        return {"log_scale": float(self._residuals(params)[1])}

    def __call__(self, params):
        r, _ = self._residuals(params)
        return jnp.mean(r * r)

    def spec(self) -> dict:
        """What fixes the loss, JSON-able: a resumed fit must find the same."""
        return {"kind": "psd", "freqs": digest(self.freqs), "data": digest(self.log_psd), "dt_s": self.dt_s,
                "method": self.method.spec(), "n_steps": self.n_steps, "transient_steps": self.transient_steps,
                "every": self.every, "realisations": int(self.keys.shape[0]),
                "keys": digest(jax.random.key_data(self.keys)), "scale": self.scale, "drive": repr(self.drive)}


@dataclasses.dataclass(frozen=True)
class WelchPlan:
    """How a simulated PSD meets a target's: the target's bins in the band (``keep``), the simulated EEG's window
    (``every`` steps), Welch segment (``nperseg`` samples), length (``n_samples``) and matching bins (``bins``)."""

    keep: np.ndarray
    every: int
    nperseg: int
    n_samples: int
    bins: np.ndarray


def welch_plan(f: np.ndarray, seg_s: float, band: tuple[float, float], dec_s: float, dt_s: float,
               dur_s: float) -> WelchPlan:
    """The :class:`WelchPlan` for a target PSD on the grid ``f`` (Hz, spacing 1 / ``seg_s``) compared over ``band``,
    with the simulated EEG averaged over ``dec_s`` and simulated for ``dur_s``; every mismatch raises."""
    lo, hi = band
    keep = (f >= lo - 1e-9) & (f <= hi + 1e-9)
    if keep.sum() < 3:
        raise ValueError(f"the band {lo:.6g}–{hi:.6g} Hz holds {int(keep.sum())} frequency bins of the target; it needs "
                         f"at least 3.")
    every = steps_per_sample("the simulated EEG (decimate)", 1.0 / dec_s, dt_s)
    fs_sim = 1.0 / (every * dt_s)
    if fs_sim / 2 < hi:
        raise ValueError(f"decimate = {dec_s * 1e3:.6g} ms gives {fs_sim:.6g} Hz, too slow for the band up to "
                         f"{hi:.6g} Hz.")
    nperseg = int(round(seg_s * fs_sim))
    if abs(seg_s * fs_sim - nperseg) > 1e-6 * nperseg:
        raise ValueError(f"the target's segment ({seg_s:.6g} s, i.e. frequency spacing {1 / seg_s:.6g} Hz) must be a whole "
                         f"number of decimated samples ({1e3 / fs_sim:.6g} ms).")
    n_seg = int(dur_s // seg_s + 1e-9)
    if n_seg < 1:
        raise ValueError(f"duration ({dur_s:.6g} s) must hold at least one segment of {seg_s:.6g} s.")
    f_sim = np.fft.rfftfreq(nperseg, 1.0 / fs_sim)
    bins = np.rint(f[keep] * seg_s).astype(int)
    if not np.allclose(f_sim[bins], f[keep], atol=1e-6 * max(1.0, hi)):
        raise ValueError("the target's frequencies are not multiples of its spacing (1 / segment).")
    return WelchPlan(keep, every, nperseg, n_seg * nperseg, bins)


def boxcar_power(freqs: np.ndarray, every: int, dt_s: float) -> np.ndarray:
    """|H(f)|² of the mean over ``every`` steps of ``dt_s`` that precedes a simulated PSD (divided out of it)."""
    f, m = np.asarray(freqs), every
    return (np.sin(np.pi * f * m * dt_s) / (m * np.sin(np.pi * f * dt_s))) ** 2 if m > 1 else np.ones_like(f)


def band_hz(band) -> tuple[float, float]:
    """(low, high) in Hz of a band (a pair of frequencies with 0 < low < high)."""
    if not isinstance(band, (tuple, list)) or len(band) != 2:
        raise ValueError(f"band must be a pair (low, high) of frequencies; got {band!r}.")
    for b in band:
        check_dim("band", b, u.Hz, "(2. * u.Hz, 40. * u.Hz)")
        check_range("band", check_scalar("band", b), u.Hz)
    lo, hi = (float(b.to_decimal(u.Hz)) for b in band)
    if not 0 < lo < hi:
        raise ValueError(f"band must be (low, high) with 0 < low < high; got {band!r}.")
    return lo, hi


def positive_time(name: str, value, example: str) -> float:
    """One positive, finite time, in seconds."""
    check_dim(name, value, u.second, example)
    check_range(name, check_scalar(name, value), u.second, low=0.0, low_inclusive=False)
    return float(value.to_decimal(u.second))


def spectrum_target(data: Recording | Spectrum, drive, *, band=(2.0 * u.Hz, 40.0 * u.Hz), duration=10.0 * u.second,
                    realisations: int = 4, key=None, segment=2.0 * u.second, decimate=2.0 * u.ms, dt=DEFAULT_DT,
                    method: str | Solver = DEFAULT_METHOD, transient=1.0 * u.second, scale: bool = True,
                    dtype=None, check_budget: bool = True) -> SpectrumTarget:
    """A spectral objective: mean over the bins in ``band`` of (log PSD_model − log PSD_target)².

    Args:
      data: a :class:`jr_jax.data.Recording` (its Welch PSD with ``segment``-long Hann segments, 50 % overlap, is the
        target) or a :class:`jr_jax.data.Spectrum` (its frequency spacing sets the segment length).
      drive: the input; with noise, each loss evaluation simulates ``realisations`` runs with the fixed keys
        ``jax.random.split(key, realisations)`` (common random numbers) and averages their PSDs.
      band: (low, high) frequencies compared.
      duration: simulated time per realisation (after ``transient``); a whole number of segments is used.
      decimate: the EEG is averaged over windows of this length before the PSD (the boxcar's response is divided
        out).
      scale: profile out an overall PSD scale (default True: a measured EEG's level depends on the recording).
      check_budget: as in :func:`jr_jax.simulate`, for one loss evaluation (checked here and by every ``trace``).
    """
    if not isinstance(drive, Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    if drive.is_random and key is None:
        raise ValueError("this drive is random: pass key=jax.random.key(seed); the realisations use fixed keys drawn "
                         "from it.")
    realisations = check_int("realisations", realisations, what="a positive integer")
    scale, check_budget = check_bool("scale", scale), check_bool("check_budget", check_budget)
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    lo, hi = band_hz(band)
    seg_s = positive_time("segment", segment, "2. * u.second")
    dec_s = positive_time("decimate", decimate, "2. * u.ms")
    if isinstance(data, Recording):
        _one_channel(data)
        nps = int(round(seg_s * data.fs_hz))
        if data.values.shape[0] < nps:
            raise ValueError(f"the recording is {data.values.shape[0] / data.fs_hz:.6g} s long, shorter than one Welch "
                             f"segment of {seg_s:.6g} s; pass a longer recording or a shorter segment.")
        if data.fs_hz / 2 < hi:
            raise ValueError(f"the recording's sampling rate {data.fs_hz:.6g} Hz cannot resolve the band up to {hi:.6g} Hz "
                             f"(Nyquist {data.fs_hz / 2:.6g} Hz).")
        f = np.fft.rfftfreq(nps, 1.0 / data.fs_hz)
        unit = None if data.unit is None else data.unit ** 2 / u.Hz
    elif isinstance(data, Spectrum):
        f, p, unit = data.freqs, data.psd, data.unit
        seg_s = 1.0 / data.df
    else:
        raise TypeError(f"data must be a jr_jax.data.Recording or Spectrum; got {type(data).__name__}.")
    plan = welch_plan(f, seg_s, (lo, hi), dec_s, dt_s, dur_s)
    keep, every, nperseg, bins = plan.keep, plan.every, plan.nperseg, plan.bins
    n_tr, n_sim = whole_steps("transient", tr_s, dt_s), plan.n_samples
    check_run_budget("spectrum_target", steps=n_tr + n_sim * every, dt_s=dt_s, check=check_budget,
                     record_bytes=realisations * n_sim * dtype.itemsize,
                     records=f"{realisations} realisations × {n_sim:,} samples", advice="Use a shorter duration")
    if isinstance(data, Recording):         # the target's PSD, once everything is checked
        p = np.asarray(welch(data.values, data.fs_hz, nperseg=nps)[1].mantissa, np.float64)
    keys = jax.random.split(key, realisations)
    return SpectrumTarget(f[keep].astype(np.float64), np.log(p[keep]), unit, drive, keys, dt_s, get_solver(method),
                          n_sim * every, n_tr, every, nperseg, bins, scale, dtype, check_budget)
