"""Accuracy of each integrator on the deterministic p = 220 Hz limit cycle (default parameters).

Reference: scipy's DOP853 at rtol = atol = 1e-12 in float64, on the NumPy equations of tests/reference.py (no jr_jax code).
Measured on the EEG (y1 − y2) over t ∈ [T0, T0 + T] after the transient: peak-to-peak amplitude (extremes refined by
cubic Hermite interpolation at the zero of the derivative) and frequency (from upward midrange crossings). Run: python benchmarks/integrator_accuracy.py
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import brainunit as u
import jax

import jr_jax as jr
from jr_jax.analysis import cycle_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import reference as reference_model  # noqa: E402  (the independent NumPy equations)

T0, T = 5.0, 10.0
P_IN = 220.0


def reference(dt_s=1e-4):
    t, y = reference_model.solve(T0 + T, dt_s, p_of_t=lambda t: P_IN)
    eeg, deeg = y[1] - y[2], y[4] - y[5]
    keep = t >= T0 - 1e-12
    return cycle_stats(eeg[keep][1:], dt_s, deeg[keep][1:])


def measure(method, dt_ms, dtype=None):
    dt = dt_ms * u.ms
    res = jr.simulate(jr.JRParams(), duration=T * u.second, transient=T0 * u.second, dt=dt,
                      drive=jr.drives.constant(P_IN * u.Hz), method=method, dtype=dtype,
                      record=("eeg", "y4", "y5"))
    deeg = (res.y4 - res.y5).to_decimal(u.mV / u.second)
    return cycle_stats(res.eeg.to_decimal(u.mV), dt_ms * 1e-3, deeg)


def main():
    t = time.time()
    ref = reference()
    print(f"reference (DOP853, rtol=1e-12, {time.time() - t:.1f} s): peak-to-peak = {ref.peak_to_peak:.6f} mV, "
          f"frequency = {ref.frequency:.6f} Hz")
    print(f"machine: {platform.processor() or platform.machine()}, jax {jax.__version__}, backend "
          f"{jax.default_backend()}\n")
    for label, dtype in (("float32", None), ("float64", "float64")):
        if dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        print(f"### {label}\n")
        print("| method | dt (ms) | peak-to-peak (mV) | rel. error p2p | frequency (Hz) | rel. error freq |")
        print("|---|---|---|---|---|---|")
        for method in ("euler", "heun", "rk4", "strang"):
            for dt_ms in (0.1, 0.5, 1.0):
                s = measure(method, dt_ms, dtype)
                print(f"| {method} | {dt_ms} | {s.peak_to_peak:.5f} | {abs(s.peak_to_peak / ref.peak_to_peak - 1):.1e} "
                      f"| {s.frequency:.5f} | {abs(s.frequency / ref.frequency - 1):.1e} |")
        print()


if __name__ == "__main__":
    main()
