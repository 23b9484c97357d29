"""Whole-brain objectives at the sensors (or regions): an evoked response, power spectra and functional
connectivity, each a differentiable ``loss(model: NetworkModel) -> scalar`` for :meth:`NetworkModel.fit` /
:func:`jr_jax.fit`.

* :func:`network_erp_target`: channels × time of gain · L · (y1 − y2) against a multi-channel evoked response; the
  loss is the mean squared residual over channels and samples divided by the data's variance. A baseline per channel
  and one scale for all channels can be profiled out in closed form, as in :func:`jr_jax.erp_target`.
* :func:`network_spectrum_target`: per channel, the log Welch PSD over a band (mean over realisations with fixed
  keys), against a resting recording's; one log-scale profiled out for all channels.
* :func:`fc_target`: the channels' correlation matrix (of band-passed or raw signals) against the data's; the loss is
  the mean squared difference over the pairs.

``space="sensors"`` compares sensor EEG (the recording's channels are the lead field's sensor names) and
``space="regions"`` region EEG (the channels are region labels).
"""

from __future__ import annotations

import dataclasses
import math

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .checks import run_settings, whole_steps
from .data import Recording
from .network import Network
from .solvers import Solver, solver as get_solver
from .simulation import DEFAULT_DT, DEFAULT_METHOD
from .sampling import lag_product_sums, log_psd_variance, welch_segments
from .spectra import welch
from .store import digest
from .targets import (ProfiledTarget, band_hz, boxcar_power, epoch_settings, positive_time, steps_per_sample,
                      welch_plan)
from .units import check_bool, check_dim, check_int
from .whole_brain import NetworkModel, check_run, has_pulse, network_model

SPACES = ("sensors", "regions")


def channel_rows(channels, names, space: str) -> np.ndarray:
    """Row of each recording channel among ``names`` (the lead field's sensors or the regions); the channels must be
    exactly those names, in any order."""
    if channels is None:
        raise ValueError("the recording must name its channels (data.recording(..., channels=names) or "
                         "data.from_mne(evoked)) to be compared with the network's " + space + ".")
    if names is None:
        raise ValueError("the network's lead field has no sensor names: build it with a jr_jax.leadfield.LeadField "
                         "(or compare regions, space='regions').")
    extra = [c for c in channels if c not in names]
    missing = [n for n in names if n not in channels]
    if extra or missing:
        what = "sensors" if space == "sensors" else "regions"
        hint = ("lead_field.select(recording.channels)" if space == "sensors" else "recording.pick(network.labels)")
        raise ValueError(f"the recording's channels do not match the network's {what}: "
                         + (f"missing from the recording: {missing[:12]}{' …' if len(missing) > 12 else ''}; "
                            if missing else "")
                         + (f"not among the network's {what}: {extra[:12]}{' …' if len(extra) > 12 else ''}; "
                            if extra else "")
                         + f"use {hint} to make them agree.")
    return np.array([list(names).index(c) for c in channels])


def _start(model, drive, params) -> NetworkModel:
    if isinstance(model, NetworkModel):
        if drive is not None or params is not None:
            raise ValueError("model is a NetworkModel, which holds its drive and params: do not pass them as well.")
        return model
    if not isinstance(model, Network):
        raise TypeError(f"network must be a jr_jax.network.Network or a whole_brain.NetworkModel; "
                        f"got {type(model).__name__}.")
    return network_model(model, params, drive)


def _space(space: str, model: NetworkModel, rec: Recording) -> np.ndarray:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}; got {space!r}.")
    if space == "regions":
        return channel_rows(rec.channels, model.labels, space)
    if model.network.lead_field is None:
        raise ValueError("space='sensors' needs a network with a lead field (network(..., lead_field=...)).")
    return channel_rows(rec.channels, model.sensors, space)


def _signals(model: NetworkModel, x, rows, space: str, start: NetworkModel):
    """Region EEG numbers (…, N) → the compared channels (…, C), for a model with the start's regions and sensors
    (the rows were matched to those)."""
    names = (model.labels, start.labels) if space == "regions" else (model.sensors, start.sensors)
    if names[0] != names[1]:
        raise ValueError(f"this target matched the recording's channels to its start model's {space}; the model it "
                         f"is called on has other {space}: build the target from that model.")
    return x[..., np.asarray(rows)] if space == "regions" else model.to_sensors(x, rows)


# -- evoked responses ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class NetworkERPTarget(ProfiledTarget):
    """Objective: simulated channels (sample k at t = transient + k / fs) against a multi-channel evoked response;
    build with :func:`network_erp_target`, call on a :class:`jr_jax.whole_brain.NetworkModel`."""

    recording: Recording
    start: NetworkModel
    rows: np.ndarray
    space: str
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
        """Samples × channels compared (the Laplace approximation's n)."""
        return int(self.recording.values.size)

    def prior_weight(self, noise=None) -> float:
        """The weight of the priors' Σ z² beside this loss, (noise² / var(data)) / n: the loss is the mean of n squared
        residuals over var(data), so with sensor noise of SD ``noise`` (the recording's unit) the negative
        log-posterior is 1/(2w) times loss + w·Σ z²."""
        rec = self.recording
        if noise is None:
            raise ValueError("priors need noise=: the sensor noise's standard deviation, in the recording's unit "
                             f"({rec.unit or 'arbitrary units: a plain number'}), to weigh them against the data.")
        if rec.unit is None:
            if isinstance(noise, u.Quantity):
                raise ValueError(f"noise must be a plain number for a recording in arbitrary units; got {noise!r}.")
            sd = float(noise)
        else:
            check_dim("noise", noise, rec.unit, f"2. * u.{rec.unit}")
            sd = float(noise.to_decimal(rec.unit))
        if not sd > 0:
            raise ValueError(f"noise must be > 0; got {noise!r}.")
        var = float(np.var(rec.values))
        return (sd * sd / (var if var > 0 else 1.0)) / self.n_points

    def simulate(self, model: NetworkModel):
        """The simulated channels in mV, (samples, channels) (traceable)."""
        x = model.region_eeg(self.recording.values.shape[0], every=self.every, dt_s=self.dt_s, method=self.method,
                             transient_steps=self.transient_steps, dtype=self.dtype, check_budget=self.check_budget)
        return _signals(model, x, self.rows, self.space, self.start)

    def spec(self) -> dict:
        """What fixes the loss, JSON-able: a resumed fit must find the same."""
        return {"kind": "network_erp", "shape": list(self.recording.values.shape), "fs_hz": self.recording.fs_hz,
                "data": digest(self.recording.values), "channels": list(self.recording.channels), "space": self.space,
                "dt_s": self.dt_s, "method": self.method.spec(), "transient_steps": self.transient_steps,
                "scale": self.scale, "baseline": self.baseline, "unit": str(self.recording.unit),
                "dtype": str(self.dtype)}


def network_erp_target(recording: Recording, network, drive=None, *, params=None, space: str = "sensors",
                       dt=DEFAULT_DT, method: str | Solver = DEFAULT_METHOD, transient=1.0 * u.second,
                       scale: bool | None = None, baseline: bool = True, dtype=None,
                       check_budget: bool = True) -> NetworkERPTarget:
    """A sensor-space (or region-space) evoked-response objective.

    Args:
      recording: a multi-channel :class:`jr_jax.data.Recording` (``data.from_mne(evoked)``, or
        ``data.recording(values, fs, unit, channels=names)``); sample k is compared with t = transient + k / fs.
      network: a :class:`jr_jax.network.Network` with a lead field whose sensor names are the recording's channels,
        or a :class:`jr_jax.whole_brain.NetworkModel` (then ``drive`` and ``params`` come from it).
      drive: the input with the stimulus (:func:`jr_jax.whole_brain.stimulus`) in simulation time (the epoch starts
        at ``transient``); deterministic, with a pulse. params: the columns' start parameters (default
        ``JRParams()``). The recording's own ``t0`` is not used: sample 0 is the end of the transient, so put the
        stimulus onset at ``transient − t0`` (an epoch from −0.1 s: onset = transient + 0.1 s).
      space: ``"sensors"`` (gain · L · EEG) or ``"regions"`` (the channels are region labels).
      scale: profile one scale (target unit per mV) for all channels; default True for data in arbitrary units.
        Do not free the lead-field gain with it (they are the same factor).
      baseline: profile an offset per channel (default True: measured ERPs are baseline-corrected).
    The start model is ``target.start``; ``target.start.fit(target, ...)`` fits it.
    """
    if not isinstance(recording, Recording):
        raise TypeError(f"recording must be a jr_jax.data.Recording; got {type(recording).__name__}.")
    start = _start(network, drive, params)
    if start.drive.is_random:
        raise ValueError("an evoked-response target needs a deterministic drive (the ERP is the mean response); fit "
                         "resting-state data with network_spectrum_target or fc_target.")
    if not has_pulse(start.drive):
        raise ValueError(f"the drive has no stimulus (whole_brain.stimulus(network, regions, peak, onset)): an evoked "
                         f"response needs one; got {start.drive!r}.")
    rows = _space(space, start, recording)
    e = epoch_settings("the evoked-response target", recording, start.drive, dt, transient, dtype, scale, baseline,
                       check_budget)
    check_run("network_erp_target", recording.values.shape[0], e.every, e.dt_s, e.transient_steps,
              start.network.n_regions, 1, e.dtype, e.check_budget)
    return NetworkERPTarget(recording, start, rows, space, e.dt_s, get_solver(method), e.transient_steps, e.every,
                            e.scale, e.baseline, e.dtype, e.check_budget)


# -- resting state: spectra and functional connectivity ------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class _Resting:
    """What the resting-state targets share: the start model, the compared channels and the noisy runs."""

    start: NetworkModel
    rows: np.ndarray
    space: str
    keys: object               # (K,) keys, one realisation each
    dt_s: float
    method: Solver
    n_samples: int
    every: int
    transient_steps: int
    dtype: object
    check_budget: bool

    def signals(self, model: NetworkModel):
        """The compared channels (mV numbers) of every realisation, (K, channels, samples) (traceable)."""
        def one(key):
            x = model.region_eeg(self.n_samples, every=self.every, dt_s=self.dt_s, method=self.method,
                                 transient_steps=self.transient_steps, dtype=self.dtype, key=key, reduce="mean",
                                 check_budget=self.check_budget)
            return _signals(model, x, self.rows, self.space, self.start).T

        return jax.vmap(one)(self.keys)

    def spec(self) -> dict:
        return {"space": self.space, "dt_s": self.dt_s, "method": self.method.spec(), "n_samples": self.n_samples,
                "every": self.every, "transient_steps": self.transient_steps, "realisations": int(self.keys.shape[0]),
                "keys": digest(jax.random.key_data(self.keys)), "dtype": str(self.dtype)}


class _SamplingWeight:
    """The priors' weight of a resting-state target: w = σ²/n beside its loss, the mean of n squared residuals of
    variance σ² (``residual_variance``), so the negative log-posterior is 1/(2w) times loss + w·Σ z². ``WHAT`` names
    the target, ``SOURCE`` where σ² comes from."""

    WHAT = SOURCE = ""

    def prior_weight(self, noise=None) -> float:
        if noise is not None:
            raise ValueError(f"noise= is not used with {self.WHAT}: the weight of the priors is computed from the "
                             f"data ({self.SOURCE}); leave noise out (got noise={noise!r}).")
        return self.residual_variance() / self.n_points


def _resting(what: str, recording, network, drive, params, space, duration, realisations, key, decimate, dt, method,
             transient, dtype, check_budget, n_samples=None) -> tuple[_Resting, float]:
    """The checked shared part of a resting-state target, and the simulated sampling rate (Hz)."""
    if not isinstance(recording, Recording):
        raise TypeError(f"recording must be a jr_jax.data.Recording; got {type(recording).__name__}.")
    start = _start(network, drive, params)
    rows = _space(space, start, recording)
    if not start.drive.is_random:
        raise ValueError(f"{what} compares resting-state fluctuations: the drive must be random (e.g. "
                         f"drives.white_noise(120 * u.Hz, 20 * u.Hz * u.second ** 0.5)); got {start.drive!r}.")
    if key is None:
        raise ValueError("this drive is random: pass key=jax.random.key(seed); the realisations use fixed keys drawn "
                         "from it.")
    realisations = check_int("realisations", realisations, what="a positive integer")
    check_budget = check_bool("check_budget", check_budget)
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, start.drive, key)
    dec_s = positive_time("decimate", decimate, "2. * u.ms")
    every = steps_per_sample("the simulated EEG (decimate)", 1.0 / dec_s, dt_s)
    n = int(dur_s / (every * dt_s) + 1e-9) if n_samples is None else n_samples
    n_tr = whole_steps("transient", tr_s, dt_s)
    check_run(what, n, every, dt_s, n_tr, start.network.n_regions, realisations, dtype, check_budget)
    res = _Resting(start, rows, space, jax.random.split(key, realisations), dt_s, get_solver(method), n, every, n_tr,
                   dtype, check_budget)
    return res, 1.0 / (every * dt_s)


@dataclasses.dataclass(frozen=True, eq=False)
class NetworkSpectrumTarget(_SamplingWeight):
    """Objective: mean over channels and bins of (log PSD_model − log PSD_data − c)², c a profiled log scale for all
    channels; build with :func:`network_spectrum_target`."""

    WHAT, SOURCE = "network_spectrum_target", "the sampling variance of the log Welch PSDs, from their segments"
    run: _Resting
    freqs: np.ndarray          # Hz, the bins compared
    log_psd: np.ndarray        # (channels, bins) log of the data's PSD (its units)
    unit: object
    nperseg: int
    bins: np.ndarray
    scale: bool
    data_variance: np.ndarray  # (bins,) var of the data's log PSD estimate

    @property
    def start(self) -> NetworkModel:
        return self.run.start

    @property
    def n_points(self) -> int:
        """Channels × bins compared (the Laplace approximation's n)."""
        return int(self.log_psd.size)

    def residual_variance(self) -> float:
        """σ², the variance of a residual at the true parameters: the sampling variance of the data's log Welch PSD
        plus the model's (its realisations × segments), mean over the bins (:func:`log_psd_variance`). Profiling c
        leaves it as it is (the profile likelihood in c has the same σ²)."""
        k = int(self.run.keys.shape[0]) * welch_segments(self.run.n_samples, self.nperseg)
        return float(np.mean(self.data_variance + log_psd_variance(k, self.bins, self.nperseg)))


    def psd(self, model: NetworkModel):
        """The simulated PSD (mV²/Hz) per channel at ``freqs``, the mean over the realisations (traceable)."""
        x = self.run.signals(model)
        fs = 1.0 / (self.run.every * self.run.dt_s)
        p = welch(x, fs, nperseg=self.nperseg)[1].mantissa[..., self.bins].mean(axis=0)
        return p / jnp.asarray(boxcar_power(self.freqs, self.run.every, self.run.dt_s), p.dtype)

    def _residuals(self, model):
        k = 1.0 if self.unit is None else float((1.0 * u.mV ** 2 / u.Hz).to_decimal(self.unit))
        lp = jnp.log(self.psd(model)) + math.log(k)
        r = lp - jnp.asarray(self.log_psd, lp.dtype)
        c = -r.mean() if self.scale else jnp.zeros((), lp.dtype)
        return r + c, c

    def nuisance(self, model) -> dict:
        """The closed-form log PSD scale at ``model`` (0 with scale=False)."""
        return {"log_scale": float(self._residuals(model)[1])}

    def __call__(self, model):
        r, _ = self._residuals(model)
        return jnp.mean(r * r)

    def spec(self) -> dict:
        return {"kind": "network_psd", "freqs": digest(self.freqs), "data": digest(self.log_psd), "scale": self.scale,
                "unit": str(self.unit),
                "nperseg": self.nperseg, **self.run.spec()}


def network_spectrum_target(recording: Recording, network, drive=None, *, params=None, space: str = "sensors",
                            band=(2.0 * u.Hz, 40.0 * u.Hz), duration=10.0 * u.second, realisations: int = 2, key=None,
                            segment=2.0 * u.second, decimate=2.0 * u.ms, dt=DEFAULT_DT,
                            method: str | Solver = DEFAULT_METHOD, transient=1.0 * u.second, scale: bool = True,
                            dtype=None, check_budget: bool = True) -> NetworkSpectrumTarget:
    """A resting-state spectral objective per channel (sensors or regions), as :func:`jr_jax.spectrum_target` for
    one column: the data's Welch PSD (``segment``-long Hann segments) over ``band`` against the mean PSD of
    ``realisations`` runs of ``duration`` with the fixed keys ``jax.random.split(key, realisations)``."""
    lo, hi = band_hz(band)
    seg_s = positive_time("segment", segment, "2. * u.second")
    res, fs_sim = _resting("network_spectrum_target", recording, network, drive, params, space, duration,
                           realisations, key, decimate, dt, method, transient, dtype, check_budget)
    nps = int(round(seg_s * recording.fs_hz))
    if recording.values.shape[0] < nps:
        raise ValueError(f"the recording is {recording.values.shape[0] / recording.fs_hz:.6g} s long, shorter than one "
                         f"Welch segment of {seg_s:.6g} s; pass a longer recording or a shorter segment.")
    if recording.fs_hz / 2 < hi:
        raise ValueError(f"the recording's sampling rate {recording.fs_hz:.6g} Hz cannot resolve the band up to "
                         f"{hi:.6g} Hz (Nyquist {recording.fs_hz / 2:.6g} Hz).")
    f = np.fft.rfftfreq(nps, 1.0 / recording.fs_hz)
    plan = welch_plan(f, seg_s, (lo, hi), res.every * res.dt_s, res.dt_s, res.n_samples * res.every * res.dt_s)
    res = dataclasses.replace(res, n_samples=plan.n_samples)
    p = np.asarray(welch(recording.values.T, recording.fs_hz, nperseg=nps)[1].mantissa, np.float64)[:, plan.keep]
    if np.any(p <= 0):
        raise ValueError("the recording has a channel with zero power in the band (a flat channel?); drop it.")
    unit = None if recording.unit is None else recording.unit ** 2 / u.Hz
    data_var = log_psd_variance(welch_segments(recording.values.shape[0], nps), np.nonzero(plan.keep)[0], nps)
    return NetworkSpectrumTarget(res, f[plan.keep].astype(np.float64), np.log(p), unit, plan.nperseg, plan.bins,
                                 check_bool("scale", scale), data_var)


def band_pass(x, fs_hz: float, band):
    """``x`` (…, time) with the Fourier components outside ``band`` (Hz, (low, high)) removed (traceable)."""
    f = np.fft.rfftfreq(x.shape[-1], 1.0 / fs_hz)
    keep = jnp.asarray((f >= band[0]) & (f <= band[1]), x.dtype)
    return jnp.fft.irfft(jnp.fft.rfft(x, axis=-1) * keep, n=x.shape[-1], axis=-1)


def correlation(x):
    """The correlation matrix of the channels of ``x`` (…, channels, time) (traceable)."""
    xm = x - x.mean(axis=-1, keepdims=True)
    c = xm @ jnp.swapaxes(xm, -1, -2)
    d = jnp.sqrt(jnp.diagonal(c, axis1=-2, axis2=-1))
    return c / (d[..., :, None] * d[..., None, :])


@dataclasses.dataclass(frozen=True, eq=False)
class FCTarget(_SamplingWeight):
    """Objective: mean over channel pairs of (FC_model − FC_data)², FC the correlation matrix (of band-passed signals
    with ``band``), the model's the mean over realisations; build with :func:`fc_target`."""

    WHAT, SOURCE = "fc_target", "the sampling variance of the correlations, from the channels' autocorrelations"
    run: _Resting
    fc: np.ndarray             # (channels, channels) the data's
    band: tuple | None
    lag_time: np.ndarray       # (channels, channels) s, Σ_k ρ_i(k)ρ_j(k) / fs of the data (:func:`lag_product_sums`)
    data_s: float              # the recording's duration

    @property
    def start(self) -> NetworkModel:
        return self.run.start

    @property
    def n_points(self) -> int:
        """The channel pairs compared (the Laplace approximation's n)."""
        c = self.fc.shape[0]
        return c * (c - 1) // 2

    def residual_variance(self) -> float:
        """σ², the variance of a residual FC_model − FC_data at the true parameters, mean over the pairs: Bartlett's
        var(r) ≈ (1 − r²)²·τ/T for a recording of T seconds, τ = ``lag_time`` (:func:`lag_product_sums`), for the
        data and for the model's mean over its realisations (τ taken as the data's: the model that fits them has
        their autocorrelations)."""
        iu = np.triu_indices(self.fc.shape[0], 1)
        sim_s = self.run.n_samples * self.run.every * self.run.dt_s * int(self.run.keys.shape[0])
        v = (1 - self.fc[iu] ** 2) ** 2 * self.lag_time[iu] * (1 / self.data_s + 1 / sim_s)
        return float(np.mean(v))


    def model(self, model: NetworkModel):
        """The simulated FC matrix (traceable)."""
        x = self.run.signals(model)
        if self.band is not None:
            x = band_pass(x, 1.0 / (self.run.every * self.run.dt_s), self.band)
        return correlation(x).mean(axis=0)

    def __call__(self, model: NetworkModel):
        d = self.model(model) - jnp.asarray(self.fc)
        iu = np.triu_indices(self.fc.shape[0], 1)
        return jnp.mean(d[iu] ** 2)

    def spec(self) -> dict:
        return {"kind": "fc", "data": digest(self.fc), "band": self.band, **self.run.spec()}


def fc_target(recording: Recording, network, drive=None, *, params=None, space: str = "sensors", band=None,
              duration=10.0 * u.second, realisations: int = 2, key=None, decimate=2.0 * u.ms, dt=DEFAULT_DT,
              method: str | Solver = DEFAULT_METHOD, transient=1.0 * u.second, dtype=None,
              check_budget: bool = True) -> FCTarget:
    """A functional-connectivity objective: the correlation matrix of the channels (sensors or regions), of the
    signals band-passed to ``band`` ((low, high), e.g. alpha) or raw (None), against the data's."""
    hz = None if band is None else band_hz(band)
    res, fs_sim = _resting("fc_target", recording, network, drive, params, space, duration, realisations, key,
                           decimate, dt, method, transient, dtype, check_budget)
    if recording.values.shape[1] < 2:
        raise ValueError("functional connectivity needs at least 2 channels.")
    for fs, what in ((recording.fs_hz, "the recording's sampling rate"), (fs_sim, "the simulated rate (decimate)")):
        if hz is not None and fs / 2 < hz[1]:
            raise ValueError(f"{what} {fs:.6g} Hz cannot resolve the band up to {hz[1]:.6g} Hz.")
    x = np.asarray(recording.values.T, np.float64)
    if hz is not None:
        x = np.asarray(band_pass(jnp.asarray(x), recording.fs_hz, hz))
    if np.any(x.std(axis=-1) == 0):
        raise ValueError("the recording has a constant channel (after the band-pass); drop it.")
    return FCTarget(res, np.asarray(correlation(jnp.asarray(x)), np.float64), hz,
                    lag_product_sums(x) / recording.fs_hz, x.shape[-1] / recording.fs_hz)
