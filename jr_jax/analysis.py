"""Analysis of Jansen–Rit output and of the model itself: cycle measures, equilibria, linear stability, bifurcations.

The spectral helpers live in :mod:`jr_jax.spectra` and are importable from here too.
"""

from __future__ import annotations

import contextlib
import sys
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .units import check_dim
from .model import JRState, eeg, firing_rates, rhs, sigmoid
from .params import JRParams, canonical
# the spectral helpers stay importable from here (jr_jax.analysis.welch, ...)
from .spectra import ALPHA_BAND, band_power, dominant_frequency, float_values, peak_share, periodicity, welch  # noqa: F401
from .designs import grid
from .monitors import Features, n_freq
from .sweeps import sweep


class CycleStats(NamedTuple):
    peak_to_peak: float   # same unit as the signal's mantissa
    frequency: float      # Hz, from upward crossings of the signal's midrange
    n_cycles: int


def _extremes(x, dx, dt):
    """(min, max) of a sampled trace, refined between samples.

    With the time derivative ``dx`` the extremes come from cubic Hermite interpolation at the zero of ``dx``
    (error O(dt⁴)); without it, from a parabola through the extreme sample and its neighbours.
    """
    if dx is None:
        def vertex(k):
            if 0 < k < len(x) - 1:
                a, b, c = x[k - 1], x[k], x[k + 1]
                denom = a - 2 * b + c
                if denom != 0:
                    return float(b - (a - c) ** 2 / (8 * denom))
            return float(x[k])
        return vertex(np.argmin(x)), vertex(np.argmax(x))
    k = np.nonzero(np.sign(dx[:-1]) * np.sign(dx[1:]) < 0)[0]
    if len(k) == 0:
        return float(x.min()), float(x.max())
    s = dx[k] / (dx[k] - dx[k + 1])                        # zero of dx, linear in the step
    h00, h10 = 2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s
    h01, h11 = -2 * s ** 3 + 3 * s ** 2, s ** 3 - s ** 2
    vals = h00 * x[k] + h10 * dt * dx[k] + h01 * x[k + 1] + h11 * dt * dx[k + 1]
    return float(min(vals.min(), x.min())), float(max(vals.max(), x.max()))


def cycle_stats(x, dt, dx=None) -> CycleStats:
    """Peak-to-peak amplitude and frequency of a periodic trace (after its transient).

    The extremes are refined between samples (see ``dx``: the trace's time derivative, in the trace's unit per
    second, e.g. y4 − y5 for the EEG), so the amplitude does not depend on dt through the sampling grid.
    The frequency is (number of complete cycles) / (time between the first and last upward crossing of the
    midrange (max+min)/2), crossings located by linear interpolation. Returns frequency 0 for a trace without
    at least two crossings (a fixed point).
    """
    xv = float_values(x)
    dt_s = float(dt.to_decimal(u.second)) if isinstance(dt, u.Quantity) else float(dt)
    lo, hi = _extremes(xv, None if dx is None else float_values(dx), dt_s)
    mid = 0.5 * (lo + hi)
    s = xv - mid
    up = np.nonzero((s[:-1] < 0) & (s[1:] >= 0))[0]
    if len(up) < 2:
        return CycleStats(float(hi - lo), 0.0, 0)
    tc = (up + (-s[up]) / (s[up + 1] - s[up])) * dt_s
    return CycleStats(float(hi - lo), float((len(tc) - 1) / (tc[-1] - tc[0])), len(tc) - 1)


class TraceSummary(NamedTuple):
    dominant_frequency: float  # Hz (Welch)
    mean: float                # mV
    std: float                 # mV
    peak_to_peak: float        # mV (max − min)
    alpha_share: float         # power in 8–13 Hz / power in 0.5 Hz … Nyquist


def summarize(eeg, fs, nperseg: int | None = None) -> TraceSummary:
    """The numbers of the regime table for one EEG trace (Quantity in mV)."""
    freqs, psd = welch(eeg, fs, nperseg)
    total = band_power(freqs, psd, (0.5, float(float_values(freqs)[-1])))
    x = float_values(eeg, u.mV)
    return TraceSummary(dominant_frequency(freqs, psd), float(x.mean()), float(x.std()), float(x.max() - x.min()),
                        band_power(freqs, psd, ALPHA_BAND) / total if total > 0 else float("nan"))


# -- equilibria and linear stability ------------------------------------------------------------------------------

def _equilibrium_from_y0(y0, params, p):
    """The unique rest state (y1, y2 and the zero derivatives) belonging to a pyramidal potential y0 (mV)."""
    zero_mv = 0.0 * y0
    trial = JRState(y0, zero_mv, zero_mv, zero_mv / u.second, zero_mv / u.second, zero_mv / u.second)
    _, to_exc, to_inh = firing_rates(trial, params, p)
    y1 = params.A / params.a * to_exc
    y2 = params.B / params.b * to_inh
    return JRState(y0, y1, y2, trial.y3, trial.y4, trial.y5)


def _residual(y0, params, p):
    state = _equilibrium_from_y0(y0, params, p)
    to_pyr, _, _ = firing_rates(state, params, p)
    return params.A / params.a * to_pyr - y0


def equilibria(params: JRParams, p, n_grid: int = 4001) -> JRState:
    """All rest states for a constant input ``p`` (Hz): a :class:`JRState` whose fields have one entry per branch.

    At rest y0 = (A/a)·S(y1 − y2), y1 = (A/a)(p + C2 S(C1 y0)), y2 = (B/b) C4 S(C3 y0); eliminating y1 and y2 leaves one
    equation in y0 on the interval [0, 2 e0 A/a], whose roots are bracketed on a grid and polished by bisection.
    """
    params = canonical(params)
    if isinstance(p, u.Quantity):
        p = u.Quantity(jnp.asarray(p.to_decimal(u.Hz), dtype=params.A.mantissa.dtype), unit=u.Hz)
    y_max = float((2 * params.e0 * params.A / params.a).to_decimal(u.mV))
    if y_max == 0.0:
        roots = np.zeros(1)
    else:
        grid = jnp.linspace(0.0, y_max, n_grid) * u.mV
        f = np.asarray(_residual(grid, params, p).to_decimal(u.mV))
        lo_idx = np.nonzero(np.sign(f[:-1]) * np.sign(f[1:]) <= 0)[0]
        lo = jnp.asarray(np.asarray(grid.mantissa)[lo_idx])
        hi = jnp.asarray(np.asarray(grid.mantissa)[lo_idx + 1])
        f_lo = jnp.asarray(f[lo_idx])

        def bisect(carry, _):
            lo, hi, f_lo = carry
            mid = 0.5 * (lo + hi)
            f_mid = _residual(mid * u.mV, params, p).to_decimal(u.mV)
            left = jnp.sign(f_mid) == jnp.sign(f_lo)
            return (jnp.where(left, mid, lo), jnp.where(left, hi, mid), jnp.where(left, f_mid, f_lo)), None

        (lo, hi, _), _ = jax.lax.scan(bisect, (lo, hi, f_lo), None, length=60)
        roots = np.unique(np.round(np.asarray(0.5 * (lo + hi)), 12))
        # neighbouring brackets can hold the same root when it sits on a grid point
        keep = np.concatenate([[True], np.diff(roots) > 1e-9 * max(1.0, y_max)]) if len(roots) else roots
        roots = roots[keep]
    return _equilibrium_from_y0(u.Quantity(jnp.asarray(roots), unit=u.mV), params, p)


def jacobian(state: JRState, params: JRParams, p):
    """Jacobian of the right-hand side at ``state`` (6×6, in units of 1/s for the canonical mV, mV/s state)."""
    params = canonical(params)
    units = [s.unit for s in state]

    def f(x):
        st = JRState(*[u.Quantity(x[i], unit=units[i]) for i in range(6)])
        d = rhs(st, params, p)
        return jnp.stack([d[i].to_decimal(units[i] / u.second) for i in range(6)])

    x0 = jnp.stack([jnp.asarray(s.mantissa, dtype=jnp.result_type(float)) for s in state])
    return jax.jacfwd(f)(x0)


def eigenvalues(state: JRState, params: JRParams, p) -> np.ndarray:
    """Eigenvalues (1/s, complex) of the Jacobian at ``state``: negative real parts = stable."""
    return np.linalg.eigvals(np.asarray(jacobian(state, params, p), dtype=np.float64))


# -- continuation and bifurcations in the input p -------------------------------------------------------------

class EquilibriumCurve(NamedTuple):
    """All rest states for constant input, as one curve parametrised by y0 (ordered by y0, so every branch and the
    folds between them are included). ``stable`` from the Jacobian's eigenvalues."""

    y0: u.Quantity          # mV
    p: u.Quantity           # Hz: the input for which this point is a rest state
    eeg: u.Quantity         # mV: y1 − y2 at rest
    eigenvalues: np.ndarray  # (n, 6) complex, 1/s
    stable: np.ndarray      # (n,) bool


class Bifurcation(NamedTuple):
    kind: str               # "hopf" or "fold"
    p: u.Quantity           # Hz
    eeg: u.Quantity         # mV at the bifurcation point
    frequency: u.Quantity | None   # Hz, Hopf only: |Im λ| / 2π


def _p_of_y0(y0, params):
    """Input p (Hz) for which the rest state has pyramidal potential y0 (mV), from inverting the sigmoid:
    y1 − y2 = S⁻¹(a y0 / A), y1 = (A/a)(p + C2 S(C1 y0)), y2 = (B/b) C4 S(C3 y0)."""
    rate = params.a * y0 / params.A
    v = params.v0 - u.math.log(2 * params.e0 / rate - 1) / params.r
    y2 = params.B / params.b * params.C4 * sigmoid(params.C3 * y0, params)
    y1 = v + y2
    return params.a / params.A * y1 - params.C2 * sigmoid(params.C1 * y0, params)


@jax.jit
def _curve_core(y0_mv, params):
    y0 = u.Quantity(y0_mv, unit=u.mV)
    p = _p_of_y0(y0, params)
    eq = _equilibrium_from_y0(y0, params, p)
    jac = jax.vmap(lambda s, q: jacobian(s, params, q))(eq, p)
    return p.to_decimal(u.Hz), eeg(eq).to_decimal(u.mV), jac


def _curve_points(y0_mv, params):
    """(p in Hz, EEG in mV, eigenvalues) at pyramidal potentials y0_mv (NumPy array, mV)."""
    p, e, jac = _curve_core(jnp.asarray(y0_mv, dtype=jnp.result_type(float)), params)
    lam = np.linalg.eigvals(np.asarray(jac, dtype=np.float64))
    return np.asarray(p, np.float64), np.asarray(e, np.float64), lam


def _hopf_pair(lam, tol=1e-6):
    """(largest real part among complex-conjugate eigenvalue pairs, |Im| of that pair); NaN where there is none."""
    complex_ = np.abs(lam.imag) > tol * np.maximum(1.0, np.abs(lam))
    re = np.where(complex_, lam.real, -np.inf)
    k = np.argmax(re, axis=-1)
    best = np.take_along_axis(re, k[..., None], -1)[..., 0]
    im = np.abs(np.take_along_axis(lam.imag, k[..., None], -1)[..., 0])
    ok = np.isfinite(best)
    return np.where(ok, best, np.nan), np.where(ok, im, np.nan)


def equilibrium_curve(params: JRParams, n: int = 4000) -> EquilibriumCurve:
    """The curve of rest states for every constant input p (continuation in p, parametrised by y0).

    y0 runs over (0, 2 e0 A/a) on a grid denser near both ends; p(y0) is explicit, so every branch is found and
    a fold is where p(y0) turns back. Works in float64 when JAX's x64 is enabled (recommended for the Hopf
    frequencies), float32 otherwise.
    """
    params = canonical(params)
    y_max = float((2 * params.e0 * params.A / params.a).to_decimal(u.mV))
    s = (1 - np.cos(np.linspace(0.0, np.pi, n + 2)[1:-1])) / 2          # Chebyshev-like: dense near the ends
    y0 = y_max * s
    p, e, lam = _curve_points(y0, params)
    stable = np.all(lam.real < 0, axis=-1)
    return EquilibriumCurve(y0 * u.mV, p * u.Hz, e * u.mV, lam, stable)


def _bisect(f, lo, hi, iters=60):
    f_lo = f(lo)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        if np.sign(f_mid) == np.sign(f_lo):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def bifurcations(params: JRParams, p_range=(0.0 * u.Hz, 400.0 * u.Hz), n: int = 4000) -> list[Bifurcation]:
    """Hopf and fold (saddle-node) bifurcations of the rest states as the constant input p varies in ``p_range``.

    Folds are the turning points of p(y0) on :func:`equilibrium_curve`; Hopf points are where a complex pair of
    Jacobian eigenvalues (``jax.jacfwd`` of the one right-hand side) crosses the imaginary axis. Each is refined by
    bisection in y0. Returns points sorted by p, each with its kind, p, the EEG there and, for Hopf, the frequency
    |Im λ|/2π of the oscillation that is born.
    """
    check_dim("p_range[0]", p_range[0], u.Hz, "0. * u.Hz")
    check_dim("p_range[1]", p_range[1], u.Hz, "400. * u.Hz")
    p_lo, p_hi = (float(q.to_decimal(u.Hz)) for q in p_range)
    if not p_lo < p_hi:
        raise ValueError(f"p_range must be (low, high) with low < high; got {p_range}.")
    params = canonical(params)
    curve = equilibrium_curve(params, n)
    y0 = np.asarray(curve.y0.to_decimal(u.mV), np.float64)
    p = np.asarray(curve.p.to_decimal(u.Hz), np.float64)
    points = []

    def at(y):
        pp, e, lam = _curve_points(np.array([y]), params)
        return pp[0], e[0], lam[0]

    dp = np.diff(p)
    for k in np.nonzero(np.sign(dp[:-1]) * np.sign(dp[1:]) < 0)[0]:   # p(y0) turns between y0[k] and y0[k + 2]
        def slope(y, h=1e-7 * max(1.0, y0[-1])):
            return at(y + h)[0] - at(y - h)[0]
        y = _bisect(slope, y0[k], y0[k + 2])
        pp, e, _ = at(y)
        points.append(Bifurcation("fold", pp * u.Hz, e * u.mV, None))

    h, im = _hopf_pair(curve.eigenvalues)
    crossing = np.isfinite(h[:-1]) & np.isfinite(h[1:]) & (np.sign(h[:-1]) * np.sign(h[1:]) < 0)
    # the same pair must cross continuously: a jump (two real eigenvalues meeting and turning complex with a
    # positive real part) is not a Hopf point
    crossing &= np.abs(h[1:] - h[:-1]) < 0.1 * np.minimum(im[:-1], im[1:])
    for k in np.nonzero(crossing)[0]:
        y = _bisect(lambda y: _hopf_pair(at(y)[2][None])[0][0], y0[k], y0[k + 1])
        pp, e, lam = at(y)
        freq = _hopf_pair(lam[None])[1][0] / (2 * np.pi)
        points.append(Bifurcation("hopf", pp * u.Hz, e * u.mV, freq * u.Hz))
    points = [b for b in points if p_lo <= float(b.p.to_decimal(u.Hz)) <= p_hi]
    return sorted(points, key=lambda b: float(b.p.to_decimal(u.Hz)))


class _Described:
    """A tqdm bar whose description keeps saying what is computed (the sweep adds its own words in brackets)."""

    def __init__(self, bar, what: str):
        object.__setattr__(self, "_bar", bar)
        object.__setattr__(self, "_what", what)

    def __getattr__(self, name):
        return getattr(self._bar, name)

    def __setattr__(self, name, value):
        setattr(self._bar, name, value)

    def set_description(self, desc):
        self._bar.set_description(f"{self._what} [{desc}]")


@contextlib.contextmanager
def _described(progress, what: str, total: int):
    """``progress`` for one sweep of :func:`limit_cycle_extrema`: True becomes a bar named by ``what``."""
    if progress is not True:
        yield progress
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="sets", desc=what, file=sys.stderr, dynamic_ncols=True)
    try:
        yield _Described(bar, what)
    finally:
        bar.close()


START_NAMES = ("zero", "above", "below")
"""Initial states of :func:`limit_cycle_extrema`: the zero state, and the highest rest state at each p with y1
raised or lowered by ``offset``."""


def limit_cycle_extrema(params: JRParams, p_values, *, duration=4.0 * u.second, transient=4.0 * u.second,
                        initial_states=START_NAMES, offset=0.5 * u.mV, **sweep_kw):
    """Minimum and maximum of the EEG after a transient, for each constant input in ``p_values``, from simulation
    (the attractors of the bifurcation diagram: stable rest states and limit cycles). Returns a dict: ``p`` and,
    per initial state, ``min`` and ``max`` arrays in mV.

    ``"zero"`` starts from the zero state; ``"above"`` and ``"below"`` from the highest rest state at that p with
    y1 moved by +``offset`` and −``offset``: a trajectory started exactly on an unstable focus would stay there,
    one started beside it leaves for the limit cycle, and beside a stable rest state it returns to it."""
    check_dim("offset", offset, u.mV, "0.5 * u.mV")
    unknown = [n for n in initial_states if n not in START_NAMES]
    if unknown:
        raise ValueError(f"initial_states entries must be in {START_NAMES}; got {unknown}.")
    results = {"p": p_values}
    progress = sweep_kw.pop("progress", False)
    tops = None
    for name in initial_states:
        design = grid(base=params, p=p_values)
        init = None
        if name != "zero":
            if tops is None:
                tops = [jax.tree.map(lambda q: q[-1], equilibria(params, q),
                                     is_leaf=lambda x: isinstance(x, u.Quantity)) for q in p_values]
                tops = JRState(*(u.math.stack([getattr(t, f) for t in tops]) for f in JRState._fields))
            init = tops._replace(y1=tops.y1 + (offset if name == "above" else -offset))
        what = {"zero": "EEG min/max from the zero state",
                "above": f"EEG min/max from the highest rest state + {offset} in y1",
                "below": f"EEG min/max from the highest rest state − {offset} in y1"}[name]
        with _described(progress, what, design.size) as bar:
            res = sweep(design, duration=duration, transient=transient, initial_state=init, progress=bar, **sweep_kw)
        results[name] = {"min": res.features["min"], "max": res.features["max"]}
    return results


# -- regime labels ----------------------------------------------------------------------------------------------

REGIME_LABELS = ("rest", "alpha", "spike_wave", "spike_like", "periodic", "irregular")
PERIODIC = 0.9
"""Periodicity (:func:`jr_jax.spectra.periodicity`, the autocorrelation at the dominant period) from which an
oscillation counts as a limit cycle: deterministic cycles reach 0.99, noise-driven broadband runs stay below 0.6."""
LABEL_CRITERIA = {
    "rest": "EEG SD < 0.2 mV (no oscillation beyond small noise-driven fluctuations)",
    "alpha": "dominant frequency in 8–13 Hz, ≥ 50 % of the power in 8–13 Hz and peak-to-peak < 15 mV",
    "spike_wave": "peak-to-peak ≥ 15 mV, dominant frequency in 2–5 Hz and ≥ 40 % of the power within ±1 Hz of it "
                  "or periodic (regular large discharges at the spike–wave rate)",
    "spike_like": "peak-to-peak ≥ 15 mV and ≥ 40 % of the power within ±1 Hz of the dominant frequency (or "
                  "periodic), outside 2–5 Hz; or any periodic oscillation below 8 Hz (slow spike-like cycle)",
    "periodic": f"periodicity ≥ {PERIODIC} (autocorrelation at the dominant period): a limit cycle that fits none "
                "of the above, e.g. a fast one",
    "irregular": "anything else: broadband or intermittent activity",
}


def _default_freqs(n_bins: int):
    """The PSD frequencies of the default :class:`jr_jax.monitors.Features`, if they have ``n_bins`` bins."""
    feats = Features()
    fs = 1.0 / float(feats.decimate.to_decimal(u.second))
    seg_len = int(round(float(feats.segment.to_decimal(u.second)) * fs))
    keep = n_freq(seg_len, fs, float(feats.fmax.to_decimal(u.Hz)))
    return np.fft.rfftfreq(seg_len, 1.0 / fs)[:keep] if keep == n_bins else None


def label_regimes(features, freqs=None) -> np.ndarray:
    """Regime label per set from sweep features (``std``, ``peak_to_peak``, ``dominant_frequency``,
    ``alpha_share``, ``peak_share`` and, for the periodicity, ``psd``), by the criteria in ``LABEL_CRITERIA``,
    applied in the order of ``REGIME_LABELS``; diverged sets get ``"diverged"``.

    ``features``: a :class:`jr_jax.sweeps.SweepResult` (its features and frequencies are used) or its features.
    ``freqs``: the PSD's frequencies (``SweepResult.freqs``), needed with non-default features; default: those of
    the default :class:`jr_jax.monitors.Features`. Without ``psd`` (or a frequency axis for it) nothing counts as
    periodic."""
    if hasattr(features, "features") and hasattr(features, "freqs"):      # a SweepResult
        features, freqs = features.features, (features.freqs if freqs is None else freqs)

    def val(name, unit=None):
        v = features[name]
        return np.asarray(v.to_decimal(unit) if unit is not None else u.get_mantissa(v), np.float64)

    sd, ptp = val("std", u.mV), val("peak_to_peak", u.mV)
    f, alpha, peak = val("dominant_frequency", u.Hz), val("alpha_share"), val("peak_share")
    periodic = np.zeros(sd.shape, bool)
    if "psd" in features:
        psd = val("psd")
        freqs = _default_freqs(psd.shape[-1]) if freqs is None else float_values(freqs, u.Hz)
        if freqs is not None:
            periodic = np.nan_to_num(periodicity(freqs, psd, f)) >= PERIODIC
    big = ptp >= 15.0
    regular = (peak >= 0.4) | periodic
    sw_band = (f >= 2.0) & (f <= 5.0)
    out = np.full(sd.shape, "irregular", dtype=object)
    rules = [("rest", sd < 0.2), ("alpha", (f >= 8) & (f <= 13) & (alpha >= 0.5) & ~big),
             ("spike_wave", big & regular & sw_band), ("spike_like", (big & regular & ~sw_band) | (periodic & (f < 8))),
             ("periodic", periodic)]
    done = np.zeros(sd.shape, bool)
    for name, mask in rules:
        out[mask & ~done] = name
        done |= mask
    if "diverged" in features:
        out[np.asarray(features["diverged"], bool)] = "diverged"
    return out.astype(str)
