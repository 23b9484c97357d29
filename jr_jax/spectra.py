"""Spectra of sampled signals: the Welch PSD (differentiable) and the numbers read off it.

Shared by the analysis functions, the sweep monitors, the plots, the regime table and the spectral fitting target.
"""

from __future__ import annotations

import brainunit as u
import jax.numpy as jnp
import numpy as np

ALPHA_BAND = (8.0, 13.0)
"""The alpha band (Hz) of ``alpha_share``: the regime labels and the sweep features use it."""


def float_values(x, unit=None) -> np.ndarray:
    """A Quantity (in ``unit``, or its own unit when None) or an array as float64 NumPy numbers."""
    if isinstance(x, u.Quantity):
        return np.asarray(x.to_decimal(unit) if unit is not None else x.mantissa, dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


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
    """Integrated power of ``psd`` over ``band`` = (low, high) in Hz (plain numbers or Quantities).

    ``psd`` may have leading axes (one spectrum per set); the result then has them too."""
    f = float_values(freqs, u.Hz)
    lo, hi = (float(b.to_decimal(u.Hz)) if isinstance(b, u.Quantity) else float(b) for b in band)
    p = float_values(psd)
    m = (f >= lo) & (f <= hi)
    out = p[..., m].sum(axis=-1) * (f[1] - f[0])
    return float(out) if np.ndim(out) == 0 else out


def dominant_frequency(freqs, psd, fmin: float = 0.5):
    """Frequency (Hz) of the PSD maximum above ``fmin``, refined by a parabola through the log-PSD at the peak bin
    and its neighbours. ``psd`` may have leading axes."""
    f = float_values(freqs, u.Hz)
    p = float_values(psd)
    m = np.nonzero(f >= fmin)[0]
    flat = p.reshape(-1, p.shape[-1])
    k = m[np.argmax(flat[:, m], axis=-1)]
    inner = (k > 0) & (k < len(f) - 1)
    kc = np.clip(k, 1, len(f) - 2)
    rows = np.arange(flat.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b, c = (np.log(flat[rows, kc + d] + 1e-300) for d in (-1, 0, 1))
        denom = a - 2 * b + c
        shift = np.where(inner & (denom != 0), 0.5 * (a - c) / denom, 0.0)
    out = (f[k] + shift * (f[1] - f[0])).reshape(p.shape[:-1])
    return float(out) if out.ndim == 0 else out


def peak_share(freqs, psd, f_peak, half_width: float = 1.0):
    """Fraction of the power above 0.5 Hz that lies within ±half_width Hz of ``f_peak`` (1 for a pure rhythm, small
    for a broadband signal). ``psd`` and ``f_peak`` may have matching leading axes."""
    f = float_values(freqs, u.Hz)
    p = float_values(psd)
    df = f[1] - f[0]
    fp = np.asarray(f_peak, dtype=np.float64)[..., None]
    near = (np.abs(f - fp) <= half_width) & (f >= 0.5)
    total = p[..., f >= 0.5].sum(axis=-1) * df
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (p * near).sum(axis=-1) * df / total
    return float(out) if np.ndim(out) == 0 else out


def periodicity(freqs, psd, f_peak, span=(0.8, 1.25)):
    """Normalised autocorrelation at the period 1/``f_peak`` (its highest value for lags in ``span`` × the period),
    read off a Welch PSD of Hann-windowed segments: about 1 for a limit cycle, near 0 for broadband noise.

    The autocorrelation is the cosine transform of the PSD, divided by that of the periodic Hann window,
    (2 + cos(2πτ/L))/3 for segments of L = 1/Δf seconds, so that the window's taper does not lower it. NaN where
    the period is longer than L/2 (too few cycles per segment to tell) or the PSD has no power. ``psd`` and
    ``f_peak`` may have matching leading axes."""
    f = float_values(freqs, u.Hz)
    p = float_values(psd)
    fp = np.asarray(f_peak, dtype=np.float64)
    flat, fp_flat = p.reshape(-1, p.shape[-1]), fp.reshape(-1)
    out = np.full(fp_flat.shape, np.nan)
    seg = 1.0 / (f[1] - f[0])
    for lo in range(0, len(fp_flat), 1024):              # blocks: the cosine table is (sets, lags, freqs)
        q, rows = fp_flat[lo:lo + 1024], flat[lo:lo + 1024]
        with np.errstate(divide="ignore", invalid="ignore"):
            taus = np.nan_to_num(1.0 / q)[:, None] * np.linspace(span[0], span[1], 46)
            c = np.einsum("sf,slf->sl", rows, np.cos(2 * np.pi * f * taus[..., None]))
            r = c / rows.sum(axis=-1, keepdims=True) / ((2 + np.cos(2 * np.pi * taus / seg)) / 3)
        r = np.where((taus > 0) & (taus <= seg / 2) & np.isfinite(r), r, -np.inf)
        best = r.max(axis=-1)
        out[lo:lo + 1024] = np.where(np.isfinite(best), best, np.nan)
    out = out.reshape(fp.shape)
    return float(out) if out.ndim == 0 else out
