"""Matplotlib figures: the four panels y0, y1, y2, EEG of the brainmass Jansen–Rit tutorial plus the spectrum, the
bifurcation diagram and sweep maps."""

from __future__ import annotations

import brainunit as u
import numpy as np

from .analysis import REGIME_LABELS, label_regimes
from .regimes import MEASURE_AFTER
from .spectra import welch


def regime_figure(result, title: str = "", fmax: float = 40.0, *, claim_holds: bool | None = None,
                  measure_after: float = MEASURE_AFTER):
    """Five stacked panels: y0, y1, y2 and EEG (mV) against time (s), and the Welch PSD of the EEG after
    ``measure_after`` s. The first ``measure_after`` s (the transient from the zero state, left out of the regime
    table) are shaded; ``claim_holds`` (from :func:`jr_jax.regimes.measure`) is stated in the title. Returns the
    figure."""
    import matplotlib.pyplot as plt

    t_s = np.asarray(result.time.to_decimal(u.second))
    fig, axes = plt.subplots(5, 1, figsize=(10, 10), constrained_layout=True)
    for ax, name, label in zip(axes[:4], ("y0", "y1", "y2", "eeg"),
                               ("y0 = M (mV)", "y1 = E (mV)", "y2 = I (mV)", "EEG = y1 − y2 (mV)")):
        ax.plot(t_s, np.asarray(getattr(result, name).to_decimal(u.mV)), lw=0.6)
        ax.axvspan(t_s[0], measure_after, color="0.85", lw=0,
                   label=f"first {measure_after:g} s: transient, not measured" if name == "y0" else None)
        ax.set_ylabel(label)
        ax.set_xlim(t_s[0], t_s[-1])
    axes[0].legend(loc="upper right", fontsize=8)
    axes[3].set_xlabel("time (s)")
    keep = t_s > measure_after
    freqs, psd = welch(result.eeg[keep] if keep.sum() > 16 else result.eeg, result.sampling_rate)
    f = np.asarray(freqs.mantissa)
    m = (f > 0) & (f <= fmax)
    axes[4].semilogy(f[m], np.asarray(psd.mantissa)[m])
    axes[4].axvspan(8, 13, color="orange", alpha=0.15, label="alpha band 8–13 Hz")
    axes[4].set_xlabel("frequency (Hz)")
    axes[4].set_ylabel(f"EEG PSD after {measure_after:g} s (mV²/Hz)")
    axes[4].legend(loc="upper right")
    if claim_holds is not None:
        title = f"{title} — claim {'holds' if claim_holds else 'does NOT hold'}" if title else \
            f"claim {'holds' if claim_holds else 'does NOT hold'}"
    fig.suptitle(title)
    return fig


START_STYLES = {"zero": ("tab:blue", "zero state"), "above": ("tab:red", "highest rest state, y1 raised"),
                "below": ("tab:orange", "highest rest state, y1 lowered")}


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
        for name, (color, start) in START_STYLES.items():
            if name in extrema:
                for k, marker in (("min", "v"), ("max", "^")):
                    ax.plot(pv, np.asarray(extrema[name][k].to_decimal(u.mV)), marker, ms=3, color=color, mfc="none",
                            label=f"simulated EEG min/max (start: {start})" if k == "max" else None)
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


def regime_map(result, x: str, y: str, feature: str | None = None, ax=None, title: str = ""):
    """A 2-D map over the grid axes ``x`` and ``y`` of a sweep: regime labels
    (:func:`jr_jax.analysis.label_regimes`) when ``feature`` is None, else that scalar feature; ``title`` should
    say what was held fixed (input, noise, duration). Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    names = list(result.design.axes)
    if sorted((x, y)) != sorted(names) or len(names) != 2:
        raise ValueError(f"regime_map needs a 2-D grid over ({x!r}, {y!r}); the sweep's axes are {names}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
    xv, yv = (result.design.axes[n] for n in (x, y))
    if feature is None:
        labels = label_regimes(result.features, result.freqs).reshape(result.design.shape)
        kinds = list(REGIME_LABELS) + ["diverged"]
        data = np.vectorize(kinds.index)(labels).astype(float)
        cmap = ListedColormap(["#dddddd", "#f4a81d", "#c0392b", "#8e44ad", "#27ae60", "#2980b9", "#000000"])
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
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def fit_figure(kind: str, x, target, model, unit: str):
    """Target and fitted model of ``jr-jax fit``: an ERP against time (s) or a PSD against frequency (Hz), values in
    ``unit`` (the target's unit, e.g. "µV", or "arbitrary units"). Returns the figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5), layout="tight")
    ax = fig.subplots()
    draw = ax.plot if kind == "erp" else ax.semilogy
    draw(x, target, "k", label="target")
    draw(x, model, "C3--", label="fitted model")
    ax.set_xlabel("time (s)" if kind == "erp" else "frequency (Hz)")
    ax.set_ylabel(f"ERP ({unit})" if kind == "erp" else
                  f"PSD ({unit if unit == 'arbitrary units' else unit + '²/Hz'})")
    ax.legend()
    return fig


def network_figure(freqs, psd, fc, labels, fmax: float = 40.0):
    """``jr-jax network``: each region's EEG PSD (a legend names the regions, up to 12) and the functional
    connectivity matrix with the regions on its axes. ``freqs`` (Hz), ``psd`` (regions × freqs, mV²/Hz) and ``fc``
    are NumPy arrays. Returns the figure."""
    from matplotlib.figure import Figure

    labels = [str(x) for x in labels]
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    m = (freqs > 0) & (freqs <= fmax)
    lines = a1.semilogy(freqs[m], psd[:, m].T, lw=0.7)
    for line, name in zip(lines, labels):
        line.set_label(name)
    a1.set_xlabel("frequency (Hz)")
    a1.set_ylabel("EEG PSD (mV²/Hz)")
    if len(labels) <= 12:
        a1.legend(title="region", fontsize=7, ncol=2)
        a1.set_title("EEG spectrum of each region")
    else:
        a1.set_title(f"EEG spectrum of each region ({len(labels)} lines)")
    im = a2.imshow(fc, vmin=-1, vmax=1, cmap="RdBu_r")
    if len(labels) <= 40:
        a2.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        a2.set_yticks(range(len(labels)), labels, fontsize=7)
    a2.set_xlabel("region")
    a2.set_ylabel("region")
    a2.set_title("functional connectivity (EEG correlation)")
    fig.colorbar(im, ax=a2, label="correlation")
    return fig
