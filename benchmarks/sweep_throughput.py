"""Sweep throughput: column-steps per second for batches of 1, 1024 and 10^5 parameter sets, features only.

Each set: 2 s at dt = 0.5 ms (4000 steps), no transient, the brainmass tutorial's noisy drive (mean 120 Hz, σ = 30 Hz·√s),
common random numbers, default RK4, float32, (A, B) varied. Time after compilation (the first call compiles; the
reported run is a second call with new values). Run: python benchmarks/sweep_throughput.py [max_sets]
"""

from __future__ import annotations

import platform
import sys
import time

import brainunit as u
import jax
import numpy as np

import jr_jax as jr

STEPS = 4000


def design(n, shift=0.0):
    rng = np.random.default_rng(int(shift))
    params = jr.JRParams(A=(rng.uniform(2.5, 4.5, n) + shift * 1e-3) * u.mV, B=rng.uniform(15, 30, n) * u.mV)
    return params


def main():
    max_sets = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    drive = jr.drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5)
    key = jax.random.key(0)
    print(f"machine: {platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s), jax {jax.__version__}")
    print("| sets | chunk | compile + first run (s) | run (s) | column-steps / s |")
    print("|---|---|---|---|---|")
    for n in (1, 1024, 100_000):
        if n > max_sets:
            continue
        kw = dict(drive=drive, duration=2 * u.second, transient=0 * u.second, key=key)
        t = time.perf_counter()
        jr.sweep(design(n), **kw)
        first = time.perf_counter() - t
        t = time.perf_counter()
        res = jr.sweep(design(n, 1.0), **kw)
        run = time.perf_counter() - t
        assert np.isfinite(np.asarray(res.features["mean"].mantissa)).all()
        print(f"| {n} | {res.chunk_size} | {first:.2f} | {run:.2f} | {n * STEPS / run:.3g} |")


if __name__ == "__main__":
    main()
