"""A whole-brain model fitted at the sensors: one object a user holds to predict, fit and lesion.

A :class:`NetworkModel` is a pytree of everything a sensor-space prediction depends on — the network (connectome,
delays, global coupling G, conduction speed, lead field), the columns' :class:`jr_jax.JRParams` (each field one
value or one per region), the drive (background and stimulus) and a lead-field gain — so a fit moves through it as
through any parameter set: :class:`NetworkParametrisation` maps the fit's unconstrained coordinates θ onto a model,
and :func:`jr_jax.fit` (multi-start, L-BFGS/Adam, resume, Laplace errors) runs unchanged. The sensor-space
objectives are in :mod:`jr_jax.sensor_targets`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as drv
from .checks import check_budget as check_run_budget, run_settings, whole_steps
from .data import Recording, recording
from .model import eeg
from .network import Network, check_params, lesion as lesion_network, region_indices
from .parametrisation import FreeField, as_quantity, free_field
from .params import CANONICAL_UNITS, FIELD_NAMES, FIELDS, JRParams
from .simulation import DEFAULT_DT, DEFAULT_METHOD, Record, trace
from .solvers import Solver, solver as get_solver
from .store import digest
from .units import check_dim, check_range, check_scalar

NETWORK_VALUES = {"G": (u.UNITLESS, "2.0", "the global coupling scale of the network"),
                  "speed": (u.meter / u.second, "3. * u.meter / u.second", "the conduction speed"),
                  "stimulus": (u.UNITLESS, "1.0", "a factor on the peaks of the drive's pulses"),
                  "gain": (u.UNITLESS, "1.0", "a factor on the lead field")}
"""The values of a network model, beside the JRParams fields, that a fit can free: ``name: (unit, example,
meaning)``. All are positive (log-scaled unless bounded)."""


def stimulus(network: Network, regions, peak, onset, width=5.0 * u.ms, order: float = 7.0) -> drv.Drive:
    """A gamma-shaped pulse (:func:`jr_jax.drives.pulse`) into ``regions`` only: ``peak`` (Hz) is one value for all of
    them or one per region listed; every other region gets none. Add it to a background drive."""
    if not isinstance(network, Network):
        raise TypeError(f"network must be built with jr_jax.network.network(); got {type(network).__name__}.")
    idx = region_indices(tuple(network.labels), regions, "stimulus regions")
    check_dim("peak", peak, u.Hz, "300. * u.Hz")
    values = np.atleast_1d(np.asarray(peak.to_decimal(u.Hz), np.float64))
    if values.shape not in ((1,), (len(idx),)):
        raise ValueError(f"peak must be one value or one per stimulated region ({len(idx)}); got shape {values.shape}.")
    full = np.zeros(network.n_regions)
    full[idx] = values
    return drv.pulse(onset, full * u.Hz, width, order)


def _scale_pulses(drive, factor):
    """``drive`` with the peak of every pulse multiplied by ``factor``."""
    return jax.tree.map(lambda d: dataclasses.replace(d, peak=d.peak * factor) if isinstance(d, drv.Pulse) else d,
                        drive, is_leaf=lambda d: isinstance(d, drv.Pulse))


def has_pulse(drive) -> bool:
    """Whether ``drive`` holds a pulse (a stimulus)."""
    found = []
    jax.tree.map(lambda d: found.append(isinstance(d, drv.Pulse)), drive, is_leaf=lambda d: isinstance(d, drv.Pulse))
    return any(found)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class NetworkModel:
    """A network with its columns' parameters, its drive and a lead-field gain; build with :func:`network_model`.

    Every field is data (a pytree leaf or a pytree), so ``grad`` and ``vmap`` go through all of them."""

    network: Network
    params: JRParams
    drive: drv.Drive
    gain: jax.Array

    @property
    def labels(self) -> tuple:
        """The regions' labels."""
        return tuple(self.network.labels)

    @property
    def sensors(self) -> tuple | None:
        """The lead field's sensor names (None without names)."""
        return self.network.sensor_names

    def region_eeg(self, n_samples: int, *, every: int, dt_s: float, method: Solver, transient_steps: int,
                   dtype=None, key=None, reduce: str = "sample", check_budget: bool = True):
        """The regions' EEG y1 − y2 (mV numbers, (n_samples, N)) at t = transient + k·every·dt, k = 0 … n_samples − 1
        (with ``reduce="mean"``: the mean of each window of ``every`` steps ending there; traceable)."""
        tr = trace(self.params, duration=(n_samples - 1) * every * dt_s * u.second, dt=dt_s * u.second,
                   drive=self.drive, key=key, method=method, record=Record(("eeg",), every, reduce),
                   transient=transient_steps * dt_s * u.second, network=self.network, dtype=dtype,
                   check_budget=check_budget)
        first = eeg(tr.start_state.columns).to_decimal(u.mV)[None]
        return jnp.concatenate([first, tr.eeg.to_decimal(u.mV)])

    def to_sensors(self, x, rows=None):
        """Sensor EEG = gain · L · x for region EEG numbers ``x`` (…, N); ``rows`` picks lead-field rows."""
        if self.network.lead_field is None:
            raise ValueError("this network has no lead field: build it with network(..., lead_field=...).")
        lead = jnp.asarray(self.network.lead_field, x.dtype)
        lead = lead if rows is None else lead[np.asarray(rows)]
        return self.gain.astype(x.dtype) * (x @ lead.T)

    def predict(self, duration, *, sampling_rate=1000.0 * u.Hz, dt=DEFAULT_DT, method: str | Solver = DEFAULT_METHOD,
                transient=1.0 * u.second, key=None, dtype=None) -> Recording:
        """Sensor EEG (mV, one channel per sensor) sampled at ``sampling_rate`` for ``duration`` after ``transient``
        (whose time is t = 0 of the recording)."""
        if self.network.lead_field is None:
            raise ValueError("predict gives sensor EEG: build the network with network(..., lead_field=...).")
        dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, self.drive, key)
        check_dim("sampling_rate", sampling_rate, u.Hz, "1000. * u.Hz")
        fs = float(sampling_rate.to_decimal(u.Hz))
        every = int(round(1.0 / (fs * dt_s)))
        if every < 1 or abs(every * fs * dt_s - 1) > 1e-6:
            raise ValueError(f"sampling_rate {fs:.6g} Hz: its interval must be a whole number of steps of dt = "
                             f"{dt_s * 1e3:.6g} ms.")
        n = int(round(dur_s * fs)) + 1
        x = self.region_eeg(n, every=every, dt_s=dt_s, method=get_solver(method),
                            transient_steps=whole_steps("transient", tr_s, dt_s), dtype=dtype, key=key)
        names = self.sensors or tuple(f"S{i + 1}" for i in range(self.network.lead_field.shape[0]))
        return recording(np.asarray(self.to_sensors(x), np.float64), fs * u.Hz, u.mV, channels=tuple(names))

    def lesion(self, regions) -> "NetworkModel":
        """The model with ``regions`` cut from the network (:func:`jr_jax.network.lesion`)."""
        return dataclasses.replace(self, network=lesion_network(self.network, regions))

    def parametrisation(self, free=("G",), *, per_region=None, bounds=None, priors=None,
                        prior_weight: float = 0.0) -> "NetworkParametrisation":
        """The map from a fit's coordinates to models like this one (see :class:`NetworkParametrisation`)."""
        return NetworkParametrisation(self, free, per_region=per_region, bounds=bounds, priors=priors,
                                      prior_weight=prior_weight)

    def fit(self, target, *, free=("G",), per_region=None, bounds=None, priors=None, noise=None, **options):
        """Fit ``target`` (a :mod:`jr_jax.sensor_targets` objective) from this model; returns a
        :class:`jr_jax.FitResult` whose ``params`` is the fitted :class:`NetworkModel`.

        free, per_region, bounds, priors: as :class:`NetworkParametrisation`; with priors the fit is a MAP estimate
        whose weight of the priors is :func:`prior_weight_for` (the Laplace errors use the same scale). noise: for
        priors with an evoked-response target, the sensor noise's standard deviation in the recording's unit (the
        resting-state targets take the weight from their data's sampling statistics and refuse it). options: those
        of :func:`jr_jax.fit` (steps, optimizer, starts, out_dir, laplace, …)."""
        from .fitting import fit

        weight = 0.0
        if priors:
            weight = prior_weight_for(target, noise)
        elif noise is not None:
            raise ValueError("noise weighs priors against the data; pass priors= as well (or leave noise out).")
        par = self.parametrisation(free, per_region=per_region, bounds=bounds, priors=priors, prior_weight=weight)
        return fit(target, parametrisation=par, **options)


def network_model(network: Network, params: JRParams | None = None, drive=None, gain=1.0) -> NetworkModel:
    """A :class:`NetworkModel`: ``params`` (default ``JRParams()``; each field a scalar or one value per region),
    ``drive`` (default ``constant(220 Hz)``; add :func:`stimulus` for an evoked response) and ``gain`` on the lead
    field."""
    if not isinstance(network, Network):
        raise TypeError(f"network must be built with jr_jax.network.network(); got {type(network).__name__}.")
    params = JRParams() if params is None else params
    if not isinstance(params, JRParams):
        raise TypeError(f"params must be a jr_jax.JRParams; got {type(params).__name__}.")
    check_params(params, network.n_regions)
    drive = drv.constant(220.0 * u.Hz) if drive is None else drive
    if not isinstance(drive, drv.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    network.check_noise(drive)
    check_range("gain", check_scalar("gain", gain), u.UNITLESS, low=0.0, low_inclusive=False)
    return NetworkModel(network, params, drive, jnp.asarray(gain, dtype=float))


def prior_weight_for(target, noise=None) -> float:
    """The weight w of the priors' Σ z² beside ``target``'s loss (the negative log-posterior is then 1/(2w) times
    loss + w·Σ z²): from the sensor noise ``noise`` for :func:`jr_jax.sensor_targets.network_erp_target`, from the
    data's own sampling statistics for ``network_spectrum_target`` and ``fc_target`` (no ``noise``)."""
    weigh = getattr(target, "prior_weight", None)
    if not callable(weigh):
        raise ValueError(f"priors need a target that weighs them against its data (sensor_targets."
                         f"network_erp_target, network_spectrum_target or fc_target); got {type(target).__name__}.")
    return float(weigh(noise))


# -- the parametrisation ------------------------------------------------------------------------------------------

def _start_numbers(model: NetworkModel, name: str) -> np.ndarray:
    """The start value(s) of ``name`` as float64 numbers in its unit (one per region for a JRParams field)."""
    if name in FIELDS:
        v = getattr(model.params, name)
        x = np.asarray(v.to_decimal(CANONICAL_UNITS[name]) if isinstance(v, u.Quantity) else v, np.float64)
        return np.broadcast_to(x, (model.network.n_regions,)).copy()
    if name == "G":
        return np.asarray(model.network.coupling, np.float64)
    if name == "speed":
        if model.network.speed is None:
            raise ValueError("speed is free but the network was built with delays=, not tract lengths and a speed.")
        return np.asarray(model.network.speed.to_decimal(u.meter / u.second), np.float64)
    if name == "stimulus":
        if not has_pulse(model.drive):
            raise ValueError("stimulus is free but the drive has no pulse (add whole_brain.stimulus(...)).")
        return np.asarray(1.0)
    return np.asarray(model.gain, np.float64)


def _names(x, what: str) -> tuple:
    names = tuple(s.strip() for s in x.split(",")) if isinstance(x, str) else tuple(x)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what} must be names (a tuple, or a string like 'G,A'); got {x!r}.")
    return names


class NetworkParametrisation:
    """Unconstrained coordinates θ ↦ a :class:`NetworkModel`.

    Args:
      model: the model at θ = 0; what is not free keeps its values.
      free: global values: JRParams fields (one value for every region) and ``G``, ``speed``, ``stimulus``,
        ``gain`` (see ``NETWORK_VALUES``).
      per_region: JRParams fields free in each region: ``("A", "b")`` for every region, or ``{"A": regions}`` for
        some (labels or indices); their coordinates are named ``"A[label]"``.
      bounds: ``{name: (low, high)}`` in the value's unit (for a per-region field: each region's).
      priors: ``{name: (mean, sd)}``: a Gaussian prior on the coordinate θ — the mean in the value's unit, the sd in
        θ's (a plain number: for a log-scaled value the sd of its logarithm, 0.2 ≈ 20 %).
      prior_weight: the weight w of Σ((θ − θ_mean)/sd)² in the loss (> 0 with priors; :meth:`NetworkModel.fit`
        sets it with :func:`prior_weight_for`). The negative log-posterior is then 1/(2w) times the loss (priors
        included), so the Laplace covariance is 2w·H⁻¹ (``covariance_factor``).
    """

    def __init__(self, model: NetworkModel, free=("G",), *, per_region=None, bounds=None, priors=None,
                 prior_weight: float = 0.0):
        if not isinstance(model, NetworkModel):
            raise TypeError(f"model must be a NetworkModel (whole_brain.network_model); got {type(model).__name__}.")
        free = _names(free, "free")
        known = FIELD_NAMES + tuple(NETWORK_VALUES)
        per = {} if per_region is None else per_region
        per = dict(per) if isinstance(per, Mapping) else {n: None for n in _names(per, "per_region")}
        bad = [n for n in free if n not in known] + [n for n in per if n not in FIELD_NAMES]
        if bad:
            raise ValueError(f"unknown free values {bad}: free takes {list(known)}; per_region takes JRParams fields "
                             f"{list(FIELD_NAMES)}.")
        both = sorted(set(free) & set(per))
        if both or len(set(free)) != len(free) or not (free or per):
            raise ValueError(f"free and per_region must name each value once and at least one; got free={list(free)}, "
                             f"per_region={list(per)}.")
        bounds, priors = dict(bounds or {}), dict(priors or {})
        stray = [k for k in list(bounds) + list(priors) if k not in free and k not in per]
        if stray:
            raise ValueError(f"bounds or priors given for {stray}, which are not free.")
        if priors and not (np.ndim(prior_weight) == 0 and np.isfinite(prior_weight) and prior_weight > 0):
            raise ValueError(f"priors need prior_weight > 0 (whole_brain.prior_weight_for(target, ...), which "
                             f"NetworkModel.fit uses); got prior_weight={prior_weight!r}.")
        if not priors and prior_weight != 0:
            raise ValueError(f"prior_weight={prior_weight!r} weighs priors, and no priors are given.")
        for name, pair in bounds.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"bounds[{name!r}] must be a pair (low, high) in the value's unit; got {pair!r}.")
        self.start, self.prior_weight = model, float(prior_weight)
        if "speed" in free and model.network.speed is not None:
            bounds["speed"] = _speed_bounds(model, bounds.get("speed"))
        labels, entries = model.labels, []
        for name in free:
            entries.append((self._field(model, name, name, None, bounds), name, None))
        for name, regions in per.items():
            idx = range(model.network.n_regions) if regions is None else region_indices(labels, regions,
                                                                                          f"per_region[{name!r}]")
            for i in idx:
                entries.append((self._field(model, name, f"{name}[{labels[i]}]", i, bounds), name, i))
        self.fields: tuple[FreeField, ...] = tuple(e[0] for e in entries)
        self._targets = tuple((e[1], e[2]) for e in entries)
        self._prior = self._priors(priors)

    @staticmethod
    def _field(model, name, label, index, bounds) -> FreeField:
        x = _start_numbers(model, name)
        x0 = float(x if index is None and x.ndim == 0 else x[index] if index is not None else x[0])
        if name in FIELDS:
            if index is None and np.ptp(x) > 0:
                raise ValueError(f"{name} differs between regions in the start model; free it per region "
                                 f"(per_region=({name!r},)) or start from one value.")
            unit, positive, example = CANONICAL_UNITS[name], FIELDS[name][2] == 0.0, FIELDS[name][1]
        else:
            unit, positive, example = NETWORK_VALUES[name][0], True, NETWORK_VALUES[name][1]
        return free_field(label, x0, unit, positive, bounds.get(name), example)

    def _priors(self, priors: dict):
        """(mask, θ means, sds) arrays over the coordinates, or None without priors."""
        if not priors:
            return None
        mean, sd = np.zeros(len(self.fields)), np.ones(len(self.fields))
        mask = np.zeros(len(self.fields))
        for i, (f, (name, _)) in enumerate(zip(self.fields, self._targets)):
            if name not in priors:
                continue
            pair = priors[name]
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"priors[{name!r}] must be a pair (mean, sd); got {pair!r}.")
            check_dim(f"priors[{name!r}] mean", pair[0], f.unit, f"({f.quantity(f.ref)!r}, 0.2)")
            s = pair[1]
            if isinstance(s, (u.Quantity, str, bool)) or not (np.ndim(s) == 0 and 0 < float(s) < np.inf):
                raise ValueError(f"priors[{name!r}] sd must be one positive plain number (the sd of θ, e.g. 0.2 for a "
                                 f"log-scaled value); got {s!r}.")
            m = float(f.to_theta(f.numbers(pair[0])))
            if not np.isfinite(m):
                raise ValueError(f"priors[{name!r}] mean {pair[0]!r} lies outside {f.name}'s range.")
            mean[i], sd[i], mask[i] = m, float(s), 1.0
        return mask, mean, sd

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def covariance_factor(self) -> float | None:
        """Cov(θ) = factor · H⁻¹ at a MAP optimum (2·prior_weight); None without priors (the target's own rule)."""
        return 2.0 * self.prior_weight if self._prior is not None else None

    def params(self, theta) -> NetworkModel:
        """The model at ``theta`` (one entry per coordinate; traceable)."""
        m = self.start
        values = {n: getattr(m.params, n) for n in FIELD_NAMES}
        net, drive, gain = m.network, m.drive, m.gain
        per: dict[str, list] = {}
        for i, (f, (name, index)) in enumerate(zip(self.fields, self._targets)):
            x = f.from_theta(theta[..., i])
            if index is not None:
                per.setdefault(name, []).append((index, x))
            elif name in FIELDS:
                values[name] = f.quantity(x)
            elif name == "G":
                net = dataclasses.replace(net, coupling=x)
            elif name == "speed":
                net = dataclasses.replace(net, speed=u.Quantity(x, unit=u.meter / u.second))
            elif name == "stimulus":
                drive = _scale_pulses(drive, x)
            else:
                gain = x
        for name, items in per.items():
            base = jnp.asarray(_start_numbers(m, name))
            idx = np.array([i for i, _ in items])
            vals = jnp.stack([x for _, x in items])
            values[name] = as_quantity(name, base.astype(vals.dtype).at[idx].set(vals))
        params = JRParams.tree_unflatten(None, [values[n] for n in FIELD_NAMES])
        return NetworkModel(net, params, drive, jnp.asarray(gain))

    def penalty(self, theta):
        """prior_weight · Σ ((θ − θ_mean) / sd)² over the coordinates with a prior (0 without priors)."""
        if self._prior is None:
            return 0.0
        mask, mean, sd = (jnp.asarray(a, theta.dtype) for a in self._prior)
        return self.prior_weight * jnp.sum(mask * ((theta - mean) / sd) ** 2)

    def spec(self) -> dict:
        """What fixes the map from θ, JSON-ready."""
        prior = None if self._prior is None else [a.tolist() for a in self._prior]
        return {"free": [f.spec() for f in self.fields], "model": digest(self.start), "prior": prior,
                "prior_weight": self.prior_weight}

    def __repr__(self) -> str:
        return f"NetworkParametrisation({', '.join(self.names)})"


def _speed_bounds(model: NetworkModel, given):
    """Bounds of a free speed: slower speeds lengthen the delays, which must stay within the ring buffer
    (``max_delay``), else they would be clipped inside the compiled run."""
    net = model.network
    conn = np.asarray(net.weights) != 0
    longest_mm = float(np.asarray(net.lengths_mm)[conn].max()) if net.lengths_mm is not None and conn.any() else 0.0
    v_min = longest_mm * 1e-3 / net.max_delay_s if net.max_delay_s > 0 else np.inf
    v0 = float(np.asarray(net.speed.to_decimal(u.meter / u.second))) if net.speed is not None else 0.0
    if given is not None:
        check_dim("bounds['speed']", given[0], u.meter / u.second, "(1. * u.meter / u.second, 10. * u.meter / u.second)")
        lo = float(np.asarray(given[0].to_decimal(u.meter / u.second)))
        if lo < v_min * (1 - 1e-9):
            raise ValueError(f"bounds['speed'] start at {lo:.6g} m/s, below {v_min:.6g} m/s, the slowest speed whose "
                             f"delays fit the network's max_delay ({net.max_delay_s * 1e3:.6g} ms); raise max_delay.")
        return given
    if not v_min < v0:
        raise ValueError(f"speed is free, but the network's max_delay ({net.max_delay_s * 1e3:.6g} ms) holds no delay "
                         f"longer than at the start speed {v0:.6g} m/s: build it with network(..., max_delay=...) "
                         f"(e.g. twice its longest delay) or give bounds['speed'].")
    return (v_min * u.meter / u.second, 100.0 * v0 * u.meter / u.second)


def check_run(what: str, n_samples: int, every: int, dt_s: float, transient_steps: int, n_regions: int,
              realisations: int, dtype, check: bool) -> None:
    """The budget of one loss evaluation of a network target (steps, and the records it keeps)."""
    check_run_budget(what, steps=transient_steps + (n_samples - 1) * every, dt_s=dt_s, check=check,
                     record_bytes=realisations * n_samples * n_regions * np.dtype(dtype).itemsize,
                     records=f"{realisations} × {n_samples:,} samples × {n_regions} regions",
                     advice="Use a shorter transient or duration, or a larger dt")
