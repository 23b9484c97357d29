"""Analysis of Jansen–Rit output and of the model itself: spectra, cycle measures, equilibria, linear stability."""

from __future__ import annotations

from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .model import JRState, firing_rates, rhs
from .params import JRParams, canonical

ALPHA_BAND = (8.0, 13.0)


def _values(x, unit=None):
    if isinstance(x, u.Quantity):
        return np.asarray(x.to_decimal(unit) if unit is not None else x.mantissa, dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


# -- spectra ----------------------------------------------------------------------------------------------------

def welch(x, fs, nperseg: int | None = None, overlap: float = 0.5):
    """One-sided Welch power spectral density (Hann window, constant detrend per segment, density scaling).

    Args:
      x: 1-D signal (Quantity or array) — the last axis is time; leading axes are kept.
      fs: sampling rate (Quantity in Hz).
      nperseg: segment length in samples (default: 2 s of data, at most the whole signal).
    Returns:
      (freqs, psd): frequencies in Hz and the PSD in unit(x)²/Hz, as Quantities. Differentiable (jnp).
    """
    fs_hz = float(fs.to_decimal(u.Hz)) if isinstance(fs, u.Quantity) else float(fs)
    unit = x.unit if isinstance(x, u.Quantity) else u.UNITLESS
    xv = x.mantissa if isinstance(x, u.Quantity) else jnp.asarray(x)
    n = xv.shape[-1]
    nperseg = min(n, int(round(2.0 * fs_hz))) if nperseg is None else int(nperseg)
    if not 2 <= nperseg <= n:
        raise ValueError(f"welch: nperseg must be between 2 and the signal length {n}; got {nperseg}.")
    step = max(1, int(round(nperseg * (1 - overlap))))
    starts = np.arange(0, n - nperseg + 1, step)
    idx = starts[:, None] + np.arange(nperseg)[None, :]
    seg = xv[..., idx]                                          # (..., n_seg, nperseg)
    seg = seg - seg.mean(axis=-1, keepdims=True)
    win = jnp.asarray(np.hanning(nperseg + 1)[:-1] if nperseg > 1 else np.ones(1), dtype=seg.dtype)  # periodic Hann
    spec = jnp.abs(jnp.fft.rfft(seg * win, axis=-1)) ** 2 / (fs_hz * jnp.sum(win ** 2))
    scale = np.full(spec.shape[-1], 2.0)
    scale[0] = 1.0
    if nperseg % 2 == 0:
        scale[-1] = 1.0
    psd = (spec * scale).mean(axis=-2)
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs_hz)
    return u.Quantity(jnp.asarray(freqs), unit=u.Hz), u.Quantity(psd, unit=unit ** 2 / u.Hz)


def band_power(freqs, psd, band):
    """Integrated power of ``psd`` over ``band`` = (low, high) in Hz (plain numbers or Quantities)."""
    f = _values(freqs, u.Hz)
    lo, hi = (float(b.to_decimal(u.Hz)) if isinstance(b, u.Quantity) else float(b) for b in band)
    p = _values(psd)
    m = (f >= lo) & (f <= hi)
    df = f[1] - f[0]
    return float(p[..., m].sum(axis=-1) * df)


def dominant_frequency(freqs, psd, fmin: float = 0.5):
    """Frequency (Hz) of the PSD maximum above ``fmin``, refined by a parabola through the peak bin and neighbours."""
    f = _values(freqs, u.Hz)
    p = _values(psd)
    m = np.nonzero(f >= fmin)[0]
    k = m[np.argmax(p[m])]
    if 0 < k < len(f) - 1:
        a, b, c = np.log(p[k - 1: k + 2] + 1e-300)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
        return float(f[k] + shift * (f[1] - f[0]))
    return float(f[k])


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
    xv = _values(x)
    dt_s = float(dt.to_decimal(u.second)) if isinstance(dt, u.Quantity) else float(dt)
    lo, hi = _extremes(xv, None if dx is None else _values(dx), dt_s)
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
    total = band_power(freqs, psd, (0.5, float(_values(freqs)[-1])))
    x = _values(eeg, u.mV)
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
