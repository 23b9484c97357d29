"""Gradient-based fitting with optax: tune any JRParams fields to an ERP, a spectrum or any loss.

An *objective* is a function ``loss(params: JRParams) -> scalar`` that JAX can differentiate. Two are built in:

* :func:`erp_target` — the EEG response to a stimulus drive against a measured ERP, in the time domain. The loss is
  the mean squared residual divided by the target's variance (1 − R²-like, dimensionless). An optional scale and
  baseline are fitted in closed form at every evaluation (least squares), so an ERP in µV or arbitrary units can be
  fitted and the gradient is that of the profiled loss.
* :func:`spectrum_target` — the log Welch PSD of the simulated EEG over a frequency band against a measured PSD. With
  a noisy drive the simulated PSD is the mean over K realisations drawn with fixed keys (common random numbers), so
  the loss is a deterministic, differentiable function of the parameters. An optional log-offset (overall scale) is
  profiled out in closed form.

:func:`fit` optimises in an unconstrained space: ``log(x / x_start)`` for positive fields, a logistic map for fields
given bounds, ``(x − x_start)/unit`` for ``v0``. Gradients run through the simulation with ``jax.checkpoint`` per
block of steps (:func:`jr_jax.simulate.trace`), so memory grows with the number of blocks, not steps.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time as _time
import warnings
from typing import Callable

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import drives as _drives
from ._store import atomic_savez, digest, open_spec_dir
from ._units import check_dim
from .analysis import welch
from .data import Recording, Spectrum
from .model import eeg as _eeg
from .params import CANONICAL_UNITS, FIELD_NAMES, JRParams, _FIELDS
from .simulate import DEFAULT_DT, DEFAULT_METHOD, _n_steps, run_settings, trace

DEFAULT_FREE = ("A", "B", "a", "b")


class FitSpecError(ValueError):
    """A resume directory holds a fit with a different specification."""


class NotIdentifiableWarning(UserWarning):
    """The Hessian of the loss at the optimum is (near-)singular: some parameter combination is not determined."""


def _mv_to(unit) -> float:
    """Factor from model mV to ``unit`` (1 for arbitrary units)."""
    return 1.0 if unit is None else float((1.0 * u.mV).to_decimal(unit))


def _steps_per_sample(what: str, fs_hz: float, dt_s: float) -> int:
    k = 1.0 / (fs_hz * dt_s)
    n = int(round(k))
    if n < 1 or abs(k - n) > 1e-6 * k:
        raise ValueError(f"{what} is sampled at {fs_hz:.6g} Hz: its sample interval {1e3 / fs_hz:.6g} ms must be a whole "
                         f"number of steps of dt = {dt_s * 1e3:.6g} ms (it is {k:.6g}). Resample the data or choose dt "
                         f"= (1 / sampling rate) / n for a whole n.")
    return n


# -- ERP ----------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class ERPTarget:
    """Objective: simulated EEG (sample k at t = transient + k / fs) against a measured ERP. Build with
    :func:`erp_target`; call it on a JRParams to get the loss."""

    recording: Recording
    drive: object
    dt_s: float
    method: str
    transient_steps: int
    every: int
    scale: bool
    baseline: bool
    dtype: object = None

    @property
    def n_points(self) -> int:
        return int(self.recording.values.shape[0])

    def simulate(self, params):
        """Simulated EEG at the target's sample times, in mV (traceable)."""
        n = self.n_points
        tr = trace(params, self.drive, n_steps=(n - 1) * self.every, dt_s=self.dt_s, method=self.method,
                   every=self.every, transient_steps=self.transient_steps, dtype=self.dtype)
        first = _eeg(tr.start).to_decimal(u.mV)[None]
        return jnp.concatenate([first, tr.records["eeg"].to_decimal(u.mV)])

    def _fit_curve(self, x):
        """(model curve in target units, scale, offset) with the nuisance scale/baseline solved by least squares."""
        y = jnp.asarray(self.recording.values, x.dtype)
        if self.scale:
            xm = x - x.mean()
            s = jnp.sum(xm * (y - y.mean())) / jnp.maximum(jnp.sum(xm * xm), jnp.finfo(x.dtype).tiny)
        else:
            s = jnp.asarray(_mv_to(self.recording.unit), x.dtype)
        c = (y - s * x).mean() if self.baseline else jnp.zeros((), x.dtype)
        return s * x + c, s, c

    def model(self, params):
        """The fitted model ERP in the target's units (scale and baseline applied)."""
        return self._fit_curve(self.simulate(params))[0]

    def nuisance(self, params) -> dict:
        """The closed-form scale (target unit per mV) and baseline (target unit) at ``params``."""
        _, s, c = self._fit_curve(self.simulate(params))
        return {"scale": float(s), "baseline": float(c)}

    def __call__(self, params):
        y = jnp.asarray(self.recording.values)
        m = self.model(params)
        var = float(np.var(self.recording.values))
        return jnp.mean((m - y.astype(m.dtype)) ** 2) / (var if var > 0 else 1.0)

    def spec(self) -> dict:
        return {"kind": "erp", "n": self.n_points, "fs_hz": self.recording.fs_hz, "data": digest(self.recording.values),
                "dt_s": self.dt_s, "method": self.method, "transient_steps": self.transient_steps,
                "scale": self.scale, "baseline": self.baseline, "drive": repr(self.drive)}


def erp_target(data: Recording, drive, *, dt=DEFAULT_DT, method: str = DEFAULT_METHOD, transient=1.0 * u.second,
               scale: bool | None = None, baseline: bool = True, dtype=None) -> ERPTarget:
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
    """
    if not isinstance(data, Recording):
        raise TypeError(f"data must be a jr_jax.data.Recording (jr_jax.data.recording(values, sampling_rate)); "
                        f"got {type(data).__name__}.")
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    if drive.is_random:
        raise ValueError("an ERP target needs a deterministic drive (the ERP is the mean response); fit a noisy "
                         "drive's output with spectrum_target.")
    dt_s, _, tr_s, dtype, _ = run_settings(1.0 * u.second, dt, transient, dtype, drive, None)
    every = _steps_per_sample("the ERP target", data.fs_hz, dt_s)
    if data.values.shape[0] < 8:
        raise ValueError(f"the ERP target must have at least 8 samples; got {data.values.shape[0]}.")
    if scale is None:
        scale = data.unit is None
    if data.unit is None and not scale:
        raise ValueError("data in arbitrary units (unit=None) needs scale=True; give the data's unit to fit without "
                         "a scale.")
    return ERPTarget(data, drive, dt_s, method, _n_steps("transient", tr_s, dt_s), every, bool(scale),
                     bool(baseline), dtype)


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
    method: str
    n_steps: int
    transient_steps: int
    every: int
    nperseg: int
    bins: np.ndarray           # indices of freqs in the simulated Welch grid
    scale: bool
    dtype: object = None

    @property
    def n_points(self) -> int:
        return int(self.freqs.shape[0])

    def psd(self, params):
        """Simulated PSD (mV²/Hz) at ``freqs``: the mean over the realisations (traceable)."""
        fs = 1.0 / (self.every * self.dt_s)

        def one(key):
            tr = trace(params, self.drive, n_steps=self.n_steps, dt_s=self.dt_s, key=key, method=self.method,
                       every=self.every, reduce="mean", transient_steps=self.transient_steps, dtype=self.dtype)
            x = tr.records["eeg"].to_decimal(u.mV)
            return welch(x, fs, nperseg=self.nperseg)[1].mantissa[self.bins]

        p = jax.vmap(one)(self.keys).mean(axis=0)
        # undo the window-mean (boxcar of `every` steps) that precedes the PSD: |H(f)|²
        f, m = self.freqs, self.every
        h = np.sin(np.pi * f * m * self.dt_s) / (m * np.sin(np.pi * f * self.dt_s)) if m > 1 else np.ones_like(f)
        return p / jnp.asarray(h ** 2, p.dtype)

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
        return {"log_scale": float(self._residuals(params)[1])}

    def __call__(self, params):
        r, _ = self._residuals(params)
        return jnp.mean(r * r)

    def spec(self) -> dict:
        return {"kind": "psd", "freqs": digest(self.freqs), "data": digest(self.log_psd), "dt_s": self.dt_s,
                "method": self.method, "n_steps": self.n_steps, "transient_steps": self.transient_steps,
                "every": self.every, "realisations": int(self.keys.shape[0]),
                "keys": digest(jax.random.key_data(self.keys)), "scale": self.scale, "drive": repr(self.drive)}


def spectrum_target(data: Recording | Spectrum, drive, *, band=(2.0 * u.Hz, 40.0 * u.Hz), duration=10.0 * u.second,
                    realisations: int = 4, key=None, segment=2.0 * u.second, decimate=2.0 * u.ms, dt=DEFAULT_DT,
                    method: str = DEFAULT_METHOD, transient=1.0 * u.second, scale: bool = True,
                    dtype=None) -> SpectrumTarget:
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
    """
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    if drive.is_random and key is None:
        raise ValueError("this drive is random: pass key=jax.random.key(seed); the realisations use fixed keys drawn "
                         "from it.")
    if not isinstance(realisations, (int, np.integer)) or realisations < 1:
        raise ValueError(f"realisations must be a positive integer; got {realisations!r}.")
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    lo, hi = (float(b.to_decimal(u.Hz)) for b in band)
    if not 0 < lo < hi:
        raise ValueError(f"band must be (low, high) with 0 < low < high; got {band!r}.")
    if isinstance(data, Recording):
        seg_s = float(segment.to_decimal(u.second))
        nps = int(round(seg_s * data.fs_hz))
        if data.values.shape[0] < nps:
            raise ValueError(f"the recording is {data.values.shape[0] / data.fs_hz:.6g} s long, shorter than one Welch "
                             f"segment of {seg_s:.6g} s; pass a longer recording or a shorter segment.")
        if data.fs_hz / 2 < hi:
            raise ValueError(f"the recording's sampling rate {data.fs_hz:.6g} Hz cannot resolve the band up to {hi:.6g} Hz "
                             f"(Nyquist {data.fs_hz / 2:.6g} Hz).")
        p = np.asarray(welch(data.values, data.fs_hz, nperseg=nps)[1].mantissa, np.float64)
        f = np.fft.rfftfreq(nps, 1.0 / data.fs_hz)
        unit = None if data.unit is None else data.unit ** 2 / u.Hz
    elif isinstance(data, Spectrum):
        f, p, unit = data.freqs, data.psd, data.unit
        seg_s = 1.0 / data.df
    else:
        raise TypeError(f"data must be a jr_jax.data.Recording or Spectrum; got {type(data).__name__}.")
    keep = (f >= lo - 1e-9) & (f <= hi + 1e-9)
    if keep.sum() < 3:
        raise ValueError(f"the band {lo:.6g}–{hi:.6g} Hz holds {int(keep.sum())} frequency bins of the target; it needs "
                         f"at least 3.")
    every = _steps_per_sample("the simulated EEG (decimate)", 1.0 / float(decimate.to_decimal(u.second)), dt_s)
    fs_sim = 1.0 / (every * dt_s)
    if fs_sim / 2 < hi:
        raise ValueError(f"decimate = {decimate!r} gives {fs_sim:.6g} Hz, too slow for the band up to {hi:.6g} Hz.")
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
    keys = jax.random.split(key, int(realisations))
    return SpectrumTarget(f[keep].astype(np.float64), np.log(p[keep]), unit, drive, keys, dt_s,
                          method, n_seg * nperseg * every, _n_steps("transient", tr_s, dt_s), every, nperseg,
                          bins, bool(scale), dtype)


# -- unconstrained parametrisation --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Free:
    name: str
    kind: str          # "log" | "bounded" | "shift"
    ref: float         # start value (canonical unit)
    lo: float = 0.0
    hi: float = 0.0

    def to_theta(self, x):
        if self.kind == "log":
            return np.log(x / self.ref)
        if self.kind == "bounded":
            z = (x - self.lo) / (self.hi - self.lo)
            return np.log(z / (1 - z))
        return x - self.ref

    def from_theta(self, t):
        if self.kind == "log":
            return self.ref * jnp.exp(t)
        if self.kind == "bounded":
            return self.lo + (self.hi - self.lo) * jax.nn.sigmoid(t)
        return self.ref + t

    def dvalue_dtheta(self, x):
        """d value / d theta at value x (for the delta method)."""
        if self.kind == "log":
            return x
        if self.kind == "bounded":
            z = (x - self.lo) / (self.hi - self.lo)
            return (self.hi - self.lo) * z * (1 - z)
        return 1.0


def _in_canonical(name, value) -> np.ndarray:
    """The value of field ``name`` as float64 numbers in its canonical unit."""
    unit = CANONICAL_UNITS[name]
    return np.asarray(value.to_decimal(unit) if isinstance(value, u.Quantity) else value, dtype=np.float64)


def _canonical_float(name, value) -> float:
    arr = _in_canonical(name, value)
    if arr.ndim:
        raise ValueError(f"the start value of {name} must be a scalar; got shape {arr.shape}.")
    return float(arr)


def _as_quantity(name, x):
    unit = CANONICAL_UNITS[name]
    return x if unit.is_unitless else u.Quantity(x, unit=unit)


def _parametrisation(start: JRParams, free, bounds) -> tuple:
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
    out = []
    for name in free:
        x0 = _canonical_float(name, getattr(start, name))
        unit = CANONICAL_UNITS[name]
        if name in bounds:
            lo_q, hi_q = bounds[name]
            for q in (lo_q, hi_q):
                check_dim(f"bounds[{name!r}]", q, unit, _FIELDS[name][1])
            lo, hi = (_canonical_float(name, q) for q in (lo_q, hi_q))
            if not lo < x0 < hi:
                raise ValueError(f"bounds for {name} ({_fmt(lo, unit)}, {_fmt(hi, unit)}) exclude the start value "
                                 f"{_fmt(x0, unit)}; widen the bounds or change the start.")
            out.append(_Free(name, "bounded", x0, lo, hi))
        elif _FIELDS[name][2] == 0.0:
            if not x0 > 0:
                raise ValueError(f"{name} starts at {_fmt(x0, unit)}; a positive field is optimised on a log scale and "
                                 f"must start above 0 (or give bounds).")
            out.append(_Free(name, "log", x0))
        else:
            out.append(_Free(name, "shift", x0))
    return tuple(out)


def _fmt(x, unit) -> str:
    return f"{x:.6g}" if unit.is_unitless else f"{x:.6g} {unit}"


def _params_of(start: JRParams, free: tuple, theta) -> JRParams:
    values = {n: getattr(start, n) for n in FIELD_NAMES}
    for i, f in enumerate(free):
        values[f.name] = _as_quantity(f.name, f.from_theta(theta[..., i]))
    return JRParams.tree_unflatten(None, [values[n] for n in FIELD_NAMES])


# -- the result ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns. Parameter values are Quantities in the fields' canonical units.

    params: the best parameters found (lowest loss over all steps and starts).
    loss: their loss. history: loss per step and start, shape (steps, starts); grad_norm likewise (unconstrained
    space). converged / reason: whether a stopping tolerance was met, and which. best_start: its index.
    starts: initial and final values of the free fields per start, with their final losses.
    stderr: Laplace standard errors of the free fields (Quantities; NaN where not identifiable); covariance and
    correlation in the fields' canonical units; hessian_eigenvalues in the unconstrained space; identifiable: True,
    False (a near-zero Hessian eigenvalue) or None (not assessed: laplace=False, or the point is not a minimum).
    nuisance: the closed-form scale/baseline of a built-in target at the optimum.
    """

    params: JRParams
    free: tuple
    loss: float
    history: np.ndarray
    grad_norm: np.ndarray
    converged: bool
    reason: str
    n_steps: int
    best_start: int
    starts: dict
    stderr: dict
    covariance: np.ndarray | None
    correlation: np.ndarray | None
    hessian_eigenvalues: np.ndarray | None
    identifiable: bool | None
    nuisance: dict

    @property
    def values(self) -> dict:
        return {n: getattr(self.params, n) for n in self.free}

    def spread(self, rel_loss: float = 0.1) -> dict:
        """(min, max) of each free field over the starts whose final loss is within (1 + rel_loss) × best, and how
        many they are (the key ``"n"``)."""
        loss = self.starts["loss"]
        ok = loss <= (1 + rel_loss) * np.nanmin(loss) + 1e-30
        out = {"n": int(ok.sum())}
        for i, name in enumerate(self.free):
            vals = self.starts["final"][ok, i]
            out[name] = (_as_quantity(name, float(vals.min())), _as_quantity(name, float(vals.max())))
        return out

    def as_dict(self) -> dict:
        """A JSON-ready summary: loss, convergence, nuisance, and each free field's value and standard error as
        [number, unit] in its canonical unit."""
        def entry(name, q):
            return [float(_in_canonical(name, q)), str(CANONICAL_UNITS[name])]

        return {"loss": self.loss, "converged": self.converged, "reason": self.reason, "steps": self.n_steps,
                "identifiable": self.identifiable, "nuisance": self.nuisance,
                "params": {n: entry(n, getattr(self.params, n)) for n in self.free},
                "stderr": {n: entry(n, self.stderr[n]) for n in self.free if n in self.stderr}}

    def summary(self) -> str:
        lines = [f"loss {self.loss:.4g} after {self.n_steps} steps ({'converged' if self.converged else 'NOT converged'}: "
                 f"{self.reason}); best of {self.starts['loss'].shape[0]} start(s)"]
        for name in self.free:
            v = getattr(self.params, name)
            se = self.stderr.get(name)
            unit = CANONICAL_UNITS[name]
            val = _canonical_float(name, v)
            s = "" if se is None else f" ± {_canonical_float(name, se):.3g}"
            lines.append(f"  {name} = {val:.6g}{s} {'' if unit.is_unitless else unit}")
        if self.identifiable is False:
            lines.append("  warning: the Hessian is near-singular; see hessian_eigenvalues")
        return "\n".join(lines)


# -- fitting ------------------------------------------------------------------------------------------------------

def default_optimizer(learning_rate: float = 0.05, steps: int = 300, clip: float = 1.0):
    """Gradient clipping (global norm ``clip``) then Adam with a cosine decay from ``learning_rate`` to 1 % of it
    over ``steps`` (in the unconstrained space, 0.05 is a 5 % change of a log-scaled parameter)."""
    schedule = optax.cosine_decay_schedule(learning_rate, max(1, steps), alpha=0.01)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(schedule))


OPTIMIZERS = ("adam", "lbfgs")
"""Names accepted by ``fit(optimizer=...)``: ``"adam"`` is :func:`default_optimizer`, ``"lbfgs"`` is
``optax.lbfgs()`` (memory 10, zoom line search: it needs no learning rate)."""


def _optimizer(optimizer, learning_rate, steps):
    """(the optax transformation, its name for the resume specification)."""
    if optimizer is None or optimizer == "adam":
        return default_optimizer(learning_rate, steps), f"default(lr={learning_rate})"
    if optimizer == "lbfgs":
        return optax.lbfgs(), "lbfgs"
    if isinstance(optimizer, str):
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or an optax GradientTransformation; got {optimizer!r}.")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be one of {OPTIMIZERS} or an optax GradientTransformation; "
                        f"got {type(optimizer).__name__}.")
    return optimizer, type(optimizer).__name__


def _stored_value(opt_state) -> bool:
    """Whether the optimiser keeps the loss and gradient at the current point (optax's line searches do)."""
    try:
        return optax.tree_utils.tree_get(opt_state, "value") is not None
    except KeyError:      # more than one entry called "value": do not guess
        return False


class _Progress:
    def __init__(self, total, enabled):
        self.total, self.enabled, self.t0 = total, enabled, _time.perf_counter()

    def update(self, step, loss, best):
        if not self.enabled:
            return
        frac = step / self.total
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        rate = step / max(1e-9, _time.perf_counter() - self.t0)
        sys.stderr.write(f"\rfitting [{bar}] step {step}/{self.total}  loss {loss:.4g}  best {best:.4g}  "
                         f"{rate:.3g} steps/s")
        if step >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _initial_thetas(free, starts, key, spread, start: JRParams) -> np.ndarray:
    """(S, n_free) unconstrained start points: the start itself, then random points."""
    if isinstance(starts, JRParams):
        vals = [np.atleast_1d(_in_canonical(f.name, getattr(starts, f.name))) for f in free]
        n = max(v.shape[0] for v in vals)
        vals = [np.broadcast_to(v, (n,)) for v in vals]
        theta = np.stack([f.to_theta(v) for f, v in zip(free, vals)], axis=-1)
        if not np.all(np.isfinite(theta)):
            raise ValueError("a start point lies outside the bounds or is not positive for a log-scaled field.")
        return theta
    if not isinstance(starts, (int, np.integer)) or starts < 1:
        raise ValueError(f"starts must be a positive integer or a batched JRParams; got {starts!r}.")
    if not spread > 1:
        raise ValueError(f"spread must be > 1 (random starts lie within start / spread … start · spread); got {spread!r}.")
    key = jax.random.key(0) if key is None else key
    z = np.asarray(jax.random.uniform(key, (int(starts) - 1, len(free))), np.float64)   # in [0, 1)
    theta = np.zeros((int(starts), len(free)))
    for i, f in enumerate(free):
        if f.kind == "log":
            theta[1:, i] = (2 * z[:, i] - 1) * math.log(spread)
        elif f.kind == "bounded":
            theta[0, i] = f.to_theta(f.ref)
            q = 0.05 + 0.9 * z[:, i]                       # 5 %–95 % of the interval
            theta[1:, i] = np.log(q / (1 - q))
        else:
            theta[1:, i] = (2 * z[:, i] - 1) * (spread - 1)
    return theta


def _settled(opt, theta, opt_state):
    """``opt_state`` with the dtypes (and weak types) that an update returns, so that the compiled step is not
    compiled a second time after the first step (optax's line-search state starts weakly typed)."""
    def one(s, t):
        return opt.update(t, s, t, value=jnp.zeros((), t.dtype), grad=t, value_fn=lambda x: jnp.sum(x * 0))[1]

    out = jax.eval_shape(jax.vmap(one), opt_state, theta)
    return jax.tree.map(lambda x, o: x if o.weak_type else jax.lax.convert_element_type(x, o.dtype), opt_state, out)


def _spec(objective, start, free, theta0, steps, optimizer_name) -> dict:
    obj = objective.spec() if hasattr(objective, "spec") else {"kind": "callable",
                                                               "name": getattr(objective, "__qualname__", repr(objective))}
    return {"objective": obj, "free": [dataclasses.asdict(f) for f in free],
            "start": {n: _in_canonical(n, getattr(start, n)).tolist() for n in FIELD_NAMES},
            "theta0": np.asarray(theta0).tolist(), "steps": int(steps), "optimizer": optimizer_name}


def _save(path, step, theta, opt_state, best_theta, best_loss, hist, gnorm, stall, done):
    atomic_savez(os.path.join(path, "fit_state.npz"), step=step, theta=np.asarray(theta), best_theta=best_theta,
                 best_loss=best_loss, history=np.asarray(hist[:step]), grad_norm=np.asarray(gnorm[:step]), stall=stall,
                 done=done, **{f"opt_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(opt_state))})


def fit(objective: Callable, *, start: JRParams | None = None, free=DEFAULT_FREE, bounds: dict | None = None,
        steps: int = 300, optimizer=None, learning_rate: float = 0.05, starts=1, spread: float = 2.0, key=None,
        rtol: float = 1e-4, atol: float = 1e-10, patience: int = 30, laplace: bool = True, progress: bool = False,
        out_dir=None, save_every: int = 20, callback=None) -> FitResult:
    """Minimise ``objective(params)`` over the ``free`` fields of ``start`` by gradient descent with optax.

    Args:
      objective: an :func:`erp_target`, a :func:`spectrum_target` or any differentiable ``f(JRParams) -> scalar``.
      start: the initial parameters (default ``JRParams()``); the fields not free keep these values.
      free: field names (a tuple or ``"A,B,a,b"``); default A, B, a, b.
      bounds: ``{name: (low, high)}`` as Quantities; those fields go through a logistic map, so they stay inside.
      steps: maximum optimiser steps.
      optimizer: ``"adam"`` (the default: :func:`default_optimizer` with ``learning_rate``), ``"lbfgs"``
        (``optax.lbfgs()``: for deterministic losses such as the targets with common random numbers, usually far
        fewer steps), or any optax ``GradientTransformation``; those that take extra arguments (line searches) get
        ``value``, ``grad`` and ``value_fn``.
      starts: the number of starts (the start itself, then random points within ``start / spread … start · spread``
        for log-scaled fields, 5–95 % of the interval for bounded ones, drawn from ``key``), or a JRParams whose
        free fields are arrays (one start per entry). All starts run at once under ``vmap``.
      rtol, patience: stop when no start has improved its best loss by more than ``rtol`` (relative) for
        ``patience`` steps; atol: or when every start's loss is below it.
      laplace: estimate standard errors from the Hessian at the optimum (see the README for the assumptions).
      out_dir: a directory where the optimiser state is saved every ``save_every`` steps; calling again with the
        same arguments resumes from the last save (a different specification raises :class:`FitSpecError`).
      callback: ``callback(step, losses)`` after every step (losses: one per start); may raise to stop.
    """
    start = JRParams() if start is None else start
    if not isinstance(start, JRParams):
        raise TypeError(f"start must be a jr_jax.JRParams; got {type(start).__name__}.")
    if not callable(objective):
        raise TypeError(f"objective must be a target (erp_target, spectrum_target) or a function of JRParams; "
                        f"got {objective!r}.")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    free_spec = _parametrisation(start, free, bounds)
    names = tuple(f.name for f in free_spec)
    theta0 = _initial_thetas(free_spec, starts, key, spread, start)
    opt, opt_name = _optimizer(optimizer, learning_rate, steps)
    opt = optax.with_extra_args_support(opt)

    def value(theta):
        return objective(_params_of(start, free_spec, theta))

    value_and_grad = jax.value_and_grad(value)

    def opt_update(g, state, theta, loss):
        return opt.update(g, state, theta, value=loss, grad=g, value_fn=value)

    @jax.jit
    def update(theta, opt_state):
        if theta.shape[0] == 1:   # one start: no vmap (a batch of one costs ~2x in the scanned gradient)
            state0 = jax.tree.map(lambda x: x[0], opt_state)
            if _stored_value(state0):   # the line search already evaluated this point
                vg = optax.value_and_grad_from_state(value)(theta[0], state=state0)
            else:
                vg = value_and_grad(theta[0])
            loss, g = jax.tree.map(lambda x: x[None], vg)
        else:
            loss, g = jax.vmap(value_and_grad)(theta)
        ok = jnp.isfinite(loss)[:, None] & jnp.all(jnp.isfinite(g), axis=-1, keepdims=True)
        g = jnp.where(ok, g, 0.0)
        upd, opt_state = jax.vmap(opt_update)(g, opt_state, theta, loss)
        return optax.apply_updates(theta, upd), opt_state, loss, jnp.linalg.norm(g, axis=-1)

    dtype = jnp.result_type(float)
    theta = jnp.asarray(theta0, dtype)
    opt_state = _settled(opt, theta, jax.vmap(opt.init)(theta))
    n_starts = theta.shape[0]
    hist = np.full((steps, n_starts), np.nan)
    gnorm = np.full((steps, n_starts), np.nan)
    best_loss = np.full(n_starts, np.inf)
    best_theta = np.asarray(theta0, np.float64).copy()
    stall = np.zeros(n_starts, int)
    step, done = 0, ""
    if out_dir is not None:
        open_spec_dir(out_dir, _spec(objective, start, free_spec, theta0, steps, opt_name), FitSpecError, "fit",
                      "fit_spec.json")
        state_path = os.path.join(out_dir, "fit_state.npz")
        if os.path.exists(state_path):
            z = np.load(state_path)
            step, done = int(z["step"]), str(z["done"])
            theta = jnp.asarray(z["theta"], dtype)
            treedef = jax.tree.structure(opt_state)
            opt_state = _settled(opt, theta, jax.tree.unflatten(treedef, [jnp.asarray(z[f"opt_{i}"])
                                                                          for i in range(treedef.num_leaves)]))
            best_theta, best_loss, stall = z["best_theta"], z["best_loss"], z["stall"]
            hist[:step], gnorm[:step] = z["history"], z["grad_norm"]

    bar = _Progress(steps, progress)
    while step < steps and not done:
        th_now = np.asarray(theta, np.float64)
        theta, opt_state, loss, gn = update(theta, opt_state)
        loss, gn = np.asarray(loss, np.float64), np.asarray(gn, np.float64)
        hist[step], gnorm[step] = loss, gn
        better = np.isfinite(loss) & (loss < best_loss * (1 - rtol))
        stall = np.where(better, 0, stall + 1)
        improved = np.isfinite(loss) & (loss < best_loss)
        best_theta[improved], best_loss[improved] = th_now[improved], loss[improved]
        step += 1
        bar.update(step, float(np.nanmin(loss)) if np.isfinite(loss).any() else float("nan"), float(best_loss.min()))
        if not np.isfinite(loss).any():
            done = f"the loss became non-finite at step {step} for every start"
        elif np.all(best_loss < atol):
            done = f"loss below atol = {atol:g} for every start"
        elif np.all(stall >= patience):
            done = f"no start improved its loss by more than rtol = {rtol:g} for {patience} steps"
        if out_dir is not None and (step % save_every == 0 or done or step == steps):
            _save(out_dir, step, theta, opt_state, best_theta, best_loss, hist, gnorm, stall, done)
        if callback is not None:
            callback(step, loss)
    converged = bool(done) and not done.startswith("the loss became")
    reason = done or f"reached steps = {steps} before a tolerance was met"
    if bar.enabled and step < steps:
        sys.stderr.write("\n")

    b = int(np.argmin(best_loss))
    th_best = jnp.asarray(best_theta[b], dtype)
    params = _params_of(start, free_spec, th_best)
    params = JRParams.tree_unflatten(None, [jax.tree.map(lambda x: np.asarray(x, np.float64), getattr(params, n))
                                            for n in FIELD_NAMES])
    x_best = np.array([float(_in_canonical(n, getattr(params, n))) for n in names])
    final = np.stack([[float(f.from_theta(t)) for f, t in zip(free_spec, row)] for row in best_theta])
    initial = np.stack([[float(f.from_theta(t)) for f, t in zip(free_spec, row)] for row in theta0])
    starts_info = {"initial": initial, "final": final, "loss": np.asarray(best_loss, np.float64)}

    stderr, cov, corr, eig, ident = {}, None, None, None, None
    if laplace and np.isfinite(best_loss[b]):
        stderr, cov, corr, eig, ident = _laplace(value, th_best, free_spec, x_best, float(best_loss[b]),
                                                 getattr(objective, "n_points", None))
    nuisance = objective.nuisance(params) if hasattr(objective, "nuisance") else {}
    return FitResult(params, names, float(best_loss[b]), hist[:step], gnorm[:step], converged, reason, step, b,
                     starts_info, stderr, cov, corr, eig, ident, nuisance)


IDENTIFIABILITY_RCOND = 1e-6
"""Eigenvalues of the Hessian (unconstrained space) below this fraction of the largest one count as zero."""


def _laplace(value, theta, free, x_best, loss, n_points):
    """Laplace approximation at the optimum.

    For a built-in target (a mean of n squared residuals, L) the residuals are taken as independent Gaussian with
    variance estimated by L itself: NLL = n·L/(2L*) + const, so Cov(θ) = (2L*/n)·H⁻¹. For a plain function the loss
    is taken as a negative log-likelihood: Cov(θ) = H⁻¹. The covariance of the fields follows by the delta method.
    """
    h = np.asarray(jax.hessian(value)(theta), np.float64)
    h = 0.5 * (h + h.T)
    eig, vec = np.linalg.eigh(h)
    scale = max(abs(eig[-1]), 1e-300)
    ident = bool(eig[0] > IDENTIFIABILITY_RCOND * scale)
    if not ident:
        weakest = vec[:, 0]
        combo = " ".join(f"{c:+.2f}·θ[{f.name}]" for c, f in zip(weakest, free) if abs(c) > 0.05)
        if eig[0] < -IDENTIFIABILITY_RCOND * scale:
            what = (f"the best point is not a local minimum: the Hessian (unconstrained space) has a negative "
                    f"eigenvalue {eig[0]:.3g} (largest {eig[-1]:.3g}) along {combo}. Run more steps, lower the learning "
                    f"rate or use several starts")
        else:
            what = (f"the parameters are not identifiable from this objective: the Hessian's eigenvalues "
                    f"{eig[0]:.3g} … {eig[-1]:.3g} (unconstrained space) are near-singular along {combo}. Fix one of "
                    f"these parameters or add data that separates them")
        warnings.warn(what + "; standard errors are NaN.", NotIdentifiableWarning, stacklevel=3)
        nan = np.full((len(free), len(free)), np.nan)
        minimum = not eig[0] < -IDENTIFIABILITY_RCOND * scale
        return ({f.name: _as_quantity(f.name, float("nan")) for f in free}, nan, nan, eig, False if minimum else None)
    factor = (2.0 * loss / n_points) if n_points else 1.0
    cov_theta = factor * np.linalg.inv(h)
    jac = np.array([f.dvalue_dtheta(x) for f, x in zip(free, x_best)])
    cov = cov_theta * np.outer(jac, jac)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    return {f.name: _as_quantity(f.name, float(s)) for f, s in zip(free, sd)}, cov, corr, eig, True
