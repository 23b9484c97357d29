"""Features of the EEG accumulated online, segment by segment, so that a sweep keeps O(sets) numbers, not O(sets × time).

The EEG is first averaged over windows of ``Features.decimate`` (an anti-aliasing boxcar; 2 ms by default, so the
features see a 500 Hz signal). Each segment of ``Features.segment`` (2 s by default) of that signal updates, per set:
shifted power sums (mean, SD, skewness), the minimum and maximum, and a Hann-windowed periodogram; the Welch PSD
is the mean periodogram over the (non-overlapping) segments. :func:`finalize` turns the sums into the features:

=====================  ======  ===========================================================================
``mean``, ``std``       mV      of the window-averaged EEG
``min``, ``max``        mV      extremes of the window-averaged EEG; ``peak_to_peak`` = max − min
``skewness``            1       third standardised moment: ≈ 0 for sinusoids and Gaussian noise, large and
                                positive for one-sided spikes (the *spike index* used by the regime labels)
``psd``                 mV²/Hz  Welch PSD up to ``fmax`` (axis ``freqs``)
``dominant_frequency``  Hz      PSD maximum above 0.5 Hz, parabola-refined on the log-PSD
``power_<band>``        mV²     band power for each of ``bands``
``alpha_share``         1       power in 8–13 Hz / power above 0.5 Hz
``peak_share``          1       power within ±1 Hz of the dominant frequency / power above 0.5 Hz
``diverged``            bool    the state became NaN/Inf (every other feature is then NaN)
=====================  ======  ===========================================================================
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import brainunit as u
import jax.numpy as jnp
import numpy as np

from .batches import usable_cores
from .units import check_dim, check_number, check_range, check_scalar, fmt_seconds
from .spectra import ALPHA_BAND, band_power, dominant_frequency, peak_share, welch

DEFAULT_BANDS = (("delta", 1.0, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0), ("beta", 13.0, 30.0),
                 ("gamma", 30.0, 80.0))


@dataclasses.dataclass(frozen=True)
class Features:
    """Which features a sweep computes and how (see the module docstring)."""

    decimate: u.Quantity = dataclasses.field(default_factory=lambda: 2.0 * u.ms)
    segment: u.Quantity = dataclasses.field(default_factory=lambda: 2.0 * u.second)
    fmax: u.Quantity = dataclasses.field(default_factory=lambda: 100.0 * u.Hz)
    bands: tuple = DEFAULT_BANDS

    def __post_init__(self):
        for name, unit, example in (("decimate", u.second, "2. * u.ms"), ("segment", u.second, "2. * u.second"),
                                    ("fmax", u.Hz, "100. * u.Hz")):
            value = getattr(self, name)
            check_dim(f"Features.{name}", value, unit, example)
            check_range(f"Features.{name}", check_scalar(f"Features.{name}", value), unit, low=0.0, low_inclusive=False)
        if not isinstance(self.bands, (tuple, list)):
            raise TypeError(f"Features.bands must be a tuple of (name, low_Hz, high_Hz); got {self.bands!r}.")
        for band in self.bands:
            ok = isinstance(band, (tuple, list)) and len(band) == 3 and isinstance(band[0], str)
            if ok:
                low = check_number(f"Features.bands[{band[0]!r}] low", band[1], low=0.0)
                ok = low < check_number(f"Features.bands[{band[0]!r}] high", band[2])
            if not ok:
                raise ValueError(f"Features.bands entries must be (name, low_Hz, high_Hz) with low < high; got {band!r}.")

    def layout(self, dt_s: float, duration_s: float) -> tuple[int, int, int]:
        """(steps per window, windows per segment, segments) for step dt_s and a recorded duration; checks that
        they divide evenly."""
        every = _whole(self.decimate.to_decimal(u.second) / dt_s, f"Features.decimate ({self.decimate}) / dt "
                                                                  f"({fmt_seconds(dt_s)})")
        seg_s = min(float(self.segment.to_decimal(u.second)), duration_s)
        seg_len = _whole(seg_s / (every * dt_s), f"the segment ({fmt_seconds(seg_s)}) / Features.decimate")
        n_seg = _whole(duration_s / seg_s, f"duration ({fmt_seconds(duration_s)}) / segment ({fmt_seconds(seg_s)})")
        if seg_len < 8:
            raise ValueError(f"a feature segment must hold at least 8 windows; it holds {seg_len} "
                             f"(segment {fmt_seconds(seg_s)}, decimate {self.decimate}).")
        return every, seg_len, n_seg

    def to_dict(self) -> dict:
        return {"decimate_s": float(self.decimate.to_decimal(u.second)),
                "segment_s": float(self.segment.to_decimal(u.second)),
                "fmax_hz": float(self.fmax.to_decimal(u.Hz)), "bands": [list(b) for b in self.bands]}


def _whole(x: float, what: str) -> int:
    n = int(round(x))
    if n < 1 or abs(x - n) > 1e-6 * max(1.0, x):
        raise ValueError(f"{what} must be a whole number ≥ 1; it is {x:.6g}.")
    return n


class Accumulator(NamedTuple):
    """Running sums per set (leading axes = the sets); plain arrays in mV."""

    n: jnp.ndarray        # samples seen
    shift: jnp.ndarray    # first sample (the sums are of x − shift, for float32 accuracy)
    s1: jnp.ndarray
    s2: jnp.ndarray
    s3: jnp.ndarray
    lo: jnp.ndarray
    hi: jnp.ndarray
    psd_sum: jnp.ndarray  # sum of segment periodograms, (..., n_freq)
    n_seg: jnp.ndarray


def init(shape, n_freq: int, dtype) -> Accumulator:
    z = jnp.zeros(shape, dtype)
    return Accumulator(z, z, z, z, z, jnp.full(shape, jnp.inf, dtype), jnp.full(shape, -jnp.inf, dtype),
                       jnp.zeros(tuple(shape) + (n_freq,), dtype), z)


def n_freq(seg_len: int, fs_hz: float, fmax_hz: float) -> int:
    """Number of PSD bins kept (0 … fmax) for segments of seg_len samples at fs_hz."""
    return int(np.sum(np.fft.rfftfreq(seg_len, 1.0 / fs_hz) <= fmax_hz + 1e-9))


def update(acc: Accumulator, seg, fs_hz: float, keep: int) -> Accumulator:
    """Add one segment ``seg`` (..., L) of window-averaged EEG in mV (jnp, traceable)."""
    shift = jnp.where(acc.n == 0, seg[..., 0], acc.shift)
    d = seg - shift[..., None]
    _, psd = welch(seg, fs_hz, nperseg=seg.shape[-1])
    return Accumulator(acc.n + seg.shape[-1], shift, acc.s1 + d.sum(-1), acc.s2 + (d * d).sum(-1),
                       acc.s3 + (d * d * d).sum(-1), jnp.minimum(acc.lo, seg.min(-1)), jnp.maximum(acc.hi, seg.max(-1)),
                       acc.psd_sum + psd.mantissa[..., :keep], acc.n_seg + 1)


FINALIZE_BLOCK = 8192
"""Sets finalized together: NumPy's temporaries then stay in the processor's cache (for 10^6 sets at once they
are 0.4 GB each, and finalizing took seconds)."""


def finalize(acc: Accumulator, freqs, features: Features, diverged=None) -> dict:
    """The features (Quantities, see the module docstring) from an accumulator; computed on the host in float64,
    :data:`FINALIZE_BLOCK` sets at a time (every feature is a function of its own set's sums alone)."""
    a = {k: np.asarray(v) for k, v in acc._asdict().items()}
    lead = a["n"].shape
    a = {k: v.reshape((-1,) + v.shape[len(lead):]) for k, v in a.items()}
    bad = np.zeros(a["n"].shape, bool) if diverged is None else np.asarray(diverged, bool).reshape(-1)
    n = len(bad)

    def block(lo):
        return _finalize_block({k: v[lo:lo + FINALIZE_BLOCK] for k, v in a.items()}, freqs, features,
                               bad[lo:lo + FINALIZE_BLOCK])

    starts = range(0, max(n, 1), FINALIZE_BLOCK)
    with ThreadPoolExecutor(max_workers=min(len(starts), usable_cores())) as pool:   # NumPy frees the GIL
        blocks = list(pool.map(block, starts))
    out = {}
    for k, first in blocks[0].items():
        vals = np.concatenate([b[k].mantissa if k != "diverged" else b[k] for b in blocks])
        vals = vals.reshape(lead + vals.shape[1:])
        out[k] = vals if k == "diverged" else u.Quantity(vals, unit=first.unit)
    return out


def _finalize_block(a: dict, freqs, features: Features, bad) -> dict:
    """:func:`finalize` of the sets of one block (``a``: the accumulator's arrays, leading axis the sets)."""
    a = {k: np.asarray(v, dtype=np.float64) for k, v in a.items()}
    n = a["n"]
    m1, m2, m3 = a["s1"] / n, a["s2"] / n, a["s3"] / n
    var = np.maximum(m2 - m1 ** 2, 0.0)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = (m3 - 3 * m1 * m2 + 2 * m1 ** 3) / std ** 3
    psd = a["psd_sum"] / a["n_seg"][..., None]
    f = np.asarray(freqs, dtype=np.float64)
    f_dom = dominant_frequency(f, psd)
    total = band_power(f, psd, (0.5, f[-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = band_power(f, psd, ALPHA_BAND) / total
    out = {"mean": (a["shift"] + m1) * u.mV, "std": std * u.mV, "skewness": u.Quantity(skew),
           "min": a["lo"] * u.mV, "max": a["hi"] * u.mV, "peak_to_peak": (a["hi"] - a["lo"]) * u.mV,
           "psd": psd * u.mV ** 2 / u.Hz, "dominant_frequency": f_dom * u.Hz,
           "alpha_share": u.Quantity(alpha), "peak_share": u.Quantity(peak_share(f, psd, f_dom))}
    for name, lo, hi in features.bands:
        out[f"power_{name}"] = band_power(f, psd, (lo, hi)) * u.mV ** 2
    bad = bad | ~np.isfinite(a["s2"])
    for k, v in out.items():
        vals = np.array(v.mantissa, dtype=np.float64)
        vals[bad] = np.nan
        out[k] = u.Quantity(vals, unit=v.unit)
    out["diverged"] = bad
    return out


def from_trace(eeg, fs, features: Features | None = None) -> dict:
    """The same features for a recorded, window-averaged EEG trace (Quantity in mV, sampled at ``fs``): the trace is
    cut into segments of ``features.segment`` (a trailing partial segment is dropped)."""
    features = Features() if features is None else features
    fs_hz = float(fs.to_decimal(u.Hz))
    x = jnp.asarray(eeg.to_decimal(u.mV))
    seg_len = int(round(float(features.segment.to_decimal(u.second)) * fs_hz))
    seg_len = min(seg_len, x.shape[-1])
    keep = n_freq(seg_len, fs_hz, float(features.fmax.to_decimal(u.Hz)))
    acc = init(x.shape[:-1], keep, x.dtype)
    for k in range(x.shape[-1] // seg_len):
        acc = update(acc, x[..., k * seg_len:(k + 1) * seg_len], fs_hz, keep)
    return finalize(acc, np.fft.rfftfreq(seg_len, 1.0 / fs_hz)[:keep], features)
