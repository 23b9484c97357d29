"""Matplotlib figures (the seed's four panels y0, y1, y2, EEG, plus the spectrum)."""

from __future__ import annotations

import brainunit as u
import numpy as np

from .analysis import welch


def regime_figure(result, title: str = "", fmax: float = 40.0):
    """Five stacked panels: y0, y1, y2 and EEG (mV) against time (ms), and the EEG's Welch PSD. Returns the figure."""
    import matplotlib.pyplot as plt

    t_ms = np.asarray(result.time.to_decimal(u.ms))
    fig, axes = plt.subplots(5, 1, figsize=(10, 10), constrained_layout=True)
    for ax, name, label in zip(axes[:4], ("y0", "y1", "y2", "eeg"),
                               ("y0 = M (mV)", "y1 = E (mV)", "y2 = I (mV)", "EEG = y1 − y2 (mV)")):
        ax.plot(t_ms, np.asarray(getattr(result, name).to_decimal(u.mV)), lw=0.6)
        ax.set_ylabel(label)
    axes[3].set_xlabel("time (ms)")
    keep = t_ms > 1000.0
    freqs, psd = welch(result.eeg[keep] if keep.sum() > 16 else result.eeg, result.sampling_rate)
    f = np.asarray(freqs.mantissa)
    m = (f > 0) & (f <= fmax)
    axes[4].semilogy(f[m], np.asarray(psd.mantissa)[m])
    axes[4].axvspan(8, 13, color="orange", alpha=0.15, label="alpha band 8–13 Hz")
    axes[4].set_xlabel("frequency (Hz)")
    axes[4].set_ylabel("EEG PSD (mV²/Hz)")
    axes[4].legend(loc="upper right")
    fig.suptitle(title)
    return fig
