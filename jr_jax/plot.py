"""Matplotlib figures: the four panels y0, y1, y2, EEG of the brainmass Jansen–Rit tutorial plus the spectrum, the
bifurcation diagram and sweep maps."""

from __future__ import annotations

import brainunit as u
import numpy as np

from .analysis import REGIME_LABELS, label_regimes
from .spectra import welch


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


def bifurcation_diagram(curve, extrema=None, points=(), p_range=None, ax=None):
    """EEG against constant input p: rest states (solid = stable, dashed = unstable) from
    :func:`jr_jax.analysis.equilibrium_curve`, limit-cycle minima and maxima from simulation
    (:func:`jr_jax.analysis.limit_cycle_extrema`) and the bifurcation points. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.5), constrained_layout=True)
    p = np.asarray(curve.p.to_decimal(u.Hz))
    e = np.asarray(curve.eeg.to_decimal(u.mV))
    for stable, style in ((True, "-"), (False, "--")):
        y = np.where(curve.stable == stable, e, np.nan)
        ax.plot(p, y, style, color="k", lw=1.2, label="stable rest" if stable else "unstable rest")
    if extrema is not None:
        pv = np.asarray(extrema["p"].to_decimal(u.Hz))
        for name, color in (("rest", "tab:blue"), ("high", "tab:red")):
            if name in extrema:
                for k in ("min", "max"):
                    ax.plot(pv, np.asarray(extrema[name][k].to_decimal(u.mV)), ".", ms=3, color=color,
                            label=f"simulated min/max (start: {name})" if k == "max" else None)
    for b in points:
        pb, eb = float(b.p.to_decimal(u.Hz)), float(b.eeg.to_decimal(u.mV))
        label = f"{b.kind} p = {pb:.2f} Hz" + (f", {float(b.frequency.to_decimal(u.Hz)):.2f} Hz" if b.frequency is not None else "")
        ax.plot(pb, eb, "o" if b.kind == "hopf" else "s", ms=7, mfc="none", label=label)
    if p_range is not None:
        ax.set_xlim(*(float(q.to_decimal(u.Hz)) for q in p_range))
    ax.set_xlabel("input p (Hz)")
    ax.set_ylabel("EEG = y1 − y2 (mV)")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def regime_map(result, x: str, y: str, feature: str | None = None, ax=None):
    """A 2-D map over the grid axes ``x`` and ``y`` of a sweep: regime labels
    (:func:`jr_jax.analysis.label_regimes`) when ``feature`` is None, else that scalar feature. Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    names = list(result.design.axes)
    if sorted((x, y)) != sorted(names) or len(names) != 2:
        raise ValueError(f"regime_map needs a 2-D grid over ({x!r}, {y!r}); the sweep's axes are {names}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
    xv, yv = (result.design.axes[n] for n in (x, y))
    if feature is None:
        labels = label_regimes(result.features).reshape(result.design.shape)
        kinds = list(REGIME_LABELS) + ["diverged"]
        data = np.vectorize(kinds.index)(labels).astype(float)
        cmap = ListedColormap(["#dddddd", "#f4a81d", "#c0392b", "#8e44ad", "#2980b9", "#000000"])
        vmin, vmax = -0.5, len(kinds) - 0.5
    else:
        data = np.asarray(u.get_mantissa(result.grid(feature)), float)
        cmap, vmin, vmax = "viridis", None, None
    if names[0] == x:
        data = data.T
    mesh = ax.pcolormesh(np.asarray(xv.mantissa), np.asarray(yv.mantissa), data, cmap=cmap, vmin=vmin, vmax=vmax,
                         shading="nearest")
    bar = plt.colorbar(mesh, ax=ax)
    if feature is None:
        bar.set_ticks(range(len(kinds)))
        bar.set_ticklabels(kinds)
    else:
        unit = result.features[feature].unit if isinstance(result.features[feature], u.Quantity) else ""
        bar.set_label(f"{feature} ({unit})")
    ax.set_xlabel(f"{x} ({xv.unit})")
    ax.set_ylabel(f"{y} ({yv.unit})")
    return ax
