"""How much the estimates that the resting-state targets compare scatter by sampling alone: a Welch power spectrum
(:func:`jr_jax.spectra.welch`) and a correlation between two autocorrelated signals. They weigh a fit's priors
against the data (:mod:`jr_jax.sensor_targets`)."""

from __future__ import annotations

import numpy as np


def trigamma(x):
    """ψ₁(x) = Σ_k 1/(x + k)² for x > 0: six terms, then ψ₁(x + 6) by its asymptotic series (error < 1e-9)."""
    x = np.asarray(x, np.float64)
    if not np.all(x > 0):
        raise ValueError(f"trigamma needs x > 0; got {float(np.min(x)) if x.size else x!r}.")
    z = 1.0 / (x + 6)
    series = z + z ** 2 / 2 + z ** 3 / 6 - z ** 5 / 30 + z ** 7 / 42 - z ** 9 / 30
    return (1.0 / (x[..., None] + np.arange(6)) ** 2).sum(-1) + series


def welch_segments(n: int, nperseg: int, overlap: float = 0.5) -> float:
    """Welch's (1967) equivalent number of independent segments K_eff of :func:`jr_jax.spectra.welch` on ``n``
    samples: its K Hann segments, ``step`` apart, overlap, so for Gaussian noise var(PSD)/PSD² =
    (1/K)·[1 + 2 Σ_j (1 − j/K)·ρ_j] = 1/K_eff, with ρ_j = (Σ_n w_n w_{n+j·step})² / (Σ_n w_n²)² (1/36 at 50 %)."""
    if not (isinstance(nperseg, (int, np.integer)) and nperseg >= 2 and isinstance(n, (int, np.integer))
            and n >= nperseg):
        raise ValueError(f"welch_segments needs whole numbers n >= nperseg >= 2 (samples, samples per segment); got "
                         f"n={n!r}, nperseg={nperseg!r}.")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap!r}.")
    step = max(1, int(round(nperseg * (1 - overlap))))
    k = (n - nperseg) // step + 1
    w = np.hanning(nperseg + 1)[:-1]
    factor = 1.0
    for j in range(1, min(k, -(-nperseg // step))):
        lag = j * step
        factor += 2 * (1 - j / k) * (np.dot(w[:-lag], w[lag:]) / np.dot(w, w)) ** 2
    return k / factor


def log_psd_variance(k_eff: float, bins, nperseg: int) -> np.ndarray:
    """var(log PSD) of a Welch estimate with ``k_eff`` equivalent segments at the rfft ``bins`` of ``nperseg``: the
    estimate is ≈ PSD·χ²(2K)/(2K), whose log has variance ψ₁(K); at 0 Hz and Nyquist each periodogram is χ²(1), so
    K/2 there."""
    bins = np.asarray(bins)
    real = (bins == 0) | ((nperseg % 2 == 0) & (bins == nperseg // 2))
    return trigamma(np.where(real, k_eff / 2, k_eff))


def lag_product_sums(x, c: float = 5.0) -> np.ndarray:
    """S_ij = Σ_k ρ_i(k)·ρ_j(k) over all lags k for the channels of ``x`` (channels, time), ρ their
    autocorrelations: Bartlett's (1946) var(r_ij) ≈ (1 − r_ij²)²·S_ij / n (channels with a common autocorrelation
    shape; n / S_ij is the effective number of samples). The sample autocorrelations are summed over |k| ≤ M, M
    Sokal's automatic window: per channel the smallest M ≥ c·Σ_{|k|≤M} ρ_i(k)² (all lags if none), the largest of
    those over the channels."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be finite, shaped (channels, time) with at least 2 samples; got shape {x.shape}.")
    x = x - x.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    acf = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n, axis=-1)) ** 2, 2 * n, axis=-1)[:, :n]
    rho = acf / acf[:, :1]
    own = 1 + 2 * np.cumsum(rho[:, 1:] ** 2, axis=-1)          # own[:, M - 1]: Σ_{|k|≤M} ρ²
    ok = np.arange(1, n) >= c * own
    m = max((int(np.argmax(row)) + 1 if row.any() else n - 1) for row in ok)
    r = rho[:, :m + 1]
    return 2 * r @ r.T - np.outer(r[:, 0], r[:, 0])
