"""Named settings (presets): the five regimes of the brainmass Jansen–Rit tutorial with exactly its parameters and
drives, plus settings that show the named behaviours where the tutorial's settings do not. Each carries the claim
made for it, and :func:`measure` checks the claim on a simulated trace with a stated, measurable criterion."""

from __future__ import annotations

from typing import Callable, NamedTuple

import brainunit as u
import numpy as np

from . import drives
from .analysis import summarize
from .params import JRParams
from .spectra import peak_share, welch

SIGMA = u.Hz * u.second ** 0.5
MEASURE_AFTER = 1.0  # s: the table's numbers ignore the first second (initial transient from the zero state)


class Regime(NamedTuple):
    name: str
    title: str
    params: JRParams
    drive: drives.Drive
    duration: u.Quantity
    source: str        # where the setting comes from
    claim: str         # what is said of it
    criterion: str     # how the claim is checked
    check: Callable    # (summary, extra) -> bool


def _alpha(s, x):
    return 8.0 <= s.dominant_frequency <= 13.0 and s.alpha_share >= 0.5


def presets() -> dict[str, Regime]:
    """All named settings, in display order."""
    seed = "brainmass tutorial"
    return {r.name: r for r in [
        Regime("alpha", "Alpha-like baseline (brainmass tutorial §1)", JRParams(),
               drives.white_noise(120 * u.Hz, 30 * SIGMA), 10 * u.second, seed,
               "alpha-like rhythm (8–12 Hz)", "dominant frequency in 8–13 Hz and ≥ 50 % of power in 8–13 Hz", _alpha),
        Regime("sinusoid", "10 Hz sinusoidal drive (brainmass tutorial §2)", JRParams(),
               drives.sinusoid(80 * u.Hz, 70 * u.Hz, 10 * u.Hz), 5 * u.second, seed,
               "entrained to the 10 Hz drive", "dominant frequency within 0.25 Hz of 10 Hz",
               lambda s, x: abs(s.dominant_frequency - 10.0) <= 0.25),
        Regime("spike_wave", "Spike–wave-like (brainmass tutorial §3)", JRParams(A=4.5 * u.mV, B=18 * u.mV, b=40 * u.Hz),
               drives.white_noise(90 * u.Hz, 10 * SIGMA), 10 * u.second, seed,
               "spike–wave-like activity", "dominant frequency in 2–5 Hz and peak-to-peak ≥ 15 mV (large slow spikes)",
               lambda s, x: 2.0 <= s.dominant_frequency <= 5.0 and s.peak_to_peak >= 15.0),
        Regime("low_inhibition", "Reduced inhibition (brainmass tutorial §4)", JRParams(B=15 * u.mV, b=40 * u.Hz),
               drives.white_noise(100 * u.Hz, 20 * SIGMA), 10 * u.second, seed,
               "larger oscillation than the alpha baseline, shifted frequency",
               "EEG standard deviation larger than that of 'alpha' in the same run",
               lambda s, x: "alpha" in x and s.std > x["alpha"].std),
        Regime("irregular", "Irregular / noisy (brainmass tutorial §5)", JRParams(),
               drives.white_noise(220 * u.Hz, 80 * SIGMA), 10 * u.second, seed,
               "irregular, broadband dynamics", "< 25 % of the power within ±1 Hz of the spectral peak",
               lambda s, x: x["_broadband"] < 0.25),
        Regime("classic_alpha", "Deterministic alpha cycle, p = 220 Hz", JRParams(),
               drives.constant(220 * u.Hz), 10 * u.second, "Jansen & Rit 1995 (mean of their 120–320 Hz input)",
               "alpha-like limit cycle", "dominant frequency in 8–13 Hz and ≥ 50 % of power in 8–13 Hz", _alpha),
        Regime("jr1995_uniform", "JR 1995 input: uniform 120–320 Hz per step", JRParams(),
               drives.uniform(120 * u.Hz, 320 * u.Hz), 10 * u.second, "Jansen & Rit 1995",
               "alpha-like rhythm", "dominant frequency in 8–13 Hz and ≥ 50 % of power in 8–13 Hz", _alpha),
    ]}


class Measurement(NamedTuple):
    name: str
    dominant_frequency: float
    mean: float
    std: float
    peak_to_peak: float
    alpha_share: float
    peak_share: float
    claim_holds: bool


def measure(results: dict) -> list[Measurement]:
    """Measure each simulated regime (``results``: name -> SimulationResult with eeg) after ``MEASURE_AFTER`` s."""
    regs = presets()
    summaries, extra = {}, {}
    for name, res in results.items():
        t = np.asarray(res.time.to_decimal(u.second))
        eeg = res.eeg[t > MEASURE_AFTER]
        summaries[name] = summarize(eeg, res.sampling_rate)
        freqs, psd = welch(eeg, res.sampling_rate)
        extra[name] = peak_share(freqs, psd, summaries[name].dominant_frequency)
    out = []
    for name, s in summaries.items():
        ctx = dict(summaries, _broadband=extra[name])
        holds = bool(regs[name].check(s, ctx))
        out.append(Measurement(name, s.dominant_frequency, s.mean, s.std, s.peak_to_peak, s.alpha_share,
                               extra[name], holds))
    return out
