"""Do units cost anything at run time? The compiled unit-aware simulation against the same RK4 on bare arrays.

Workload W1 of the benchmark plan: one column, 10 s at dt = 0.5 ms, the seed's noisy drive (mean 120 Hz,
σ = 30 Hz·√s), EEG kept every step, float32. Both versions draw the same random numbers (fold_in per step) and
must give the same EEG. Reports the median over 7 interleaved rounds of the median of 5 runs, after compilation.
Run: python benchmarks/units_overhead.py
"""

from __future__ import annotations

import platform
import time

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import jr_jax as jr

DT = 0.5e-3
N = 20000
MU, SIGMA = 120.0, 30.0


def bare_run(prm, key):
    """The same model and integrator written on bare float32 arrays (units: mV, s, Hz)."""
    A, B, a, b, C, e0, v0, r = prm

    def S(v):
        return 2 * e0 / (1 + jnp.exp(r * (v0 - v)))

    def f(y, p):
        y0, y1, y2, y3, y4, y5 = y
        return jnp.stack([y3, y4, y5,
                          A * a * S(y1 - y2) - 2 * a * y3 - a * a * y0,
                          A * a * (p + 0.8 * C * S(C * y0)) - 2 * a * y4 - a * a * y1,
                          B * b * 0.25 * C * S(0.25 * C * y0) - 2 * b * y5 - b * b * y2])

    def step(carry, i):
        y, bad = carry
        k = jax.random.fold_in(key, i)
        _, kw = jax.random.split(k)
        xi = SIGMA * (jax.random.normal(kw, ()) * jnp.sqrt(jnp.float32(DT))) / DT
        p = MU + xi
        k1 = f(y, p)
        k2 = f(y + DT / 2 * k1, p)
        k3 = f(y + DT / 2 * k2, p)
        k4 = f(y + DT * k3, p)
        y = y + DT * (k1 / 6 + k2 / 3 + k3 / 3 + k4 / 6)
        bad = jnp.where((bad < 0) & ~jnp.all(jnp.isfinite(y)), i, bad)   # the same NaN watch as jr_jax
        return (y, bad), y[1] - y[2]

    return jax.lax.scan(step, (jnp.zeros(6, jnp.float32), jnp.int32(-1)), jnp.arange(N, dtype=jnp.int32))


def median_time(fn, reps=20):
    jax.block_until_ready(fn())
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main():
    key = jax.random.key(0)
    params = jr.JRParams()
    drive = jr.drives.white_noise(MU * u.Hz, SIGMA * u.Hz * u.second ** 0.5)

    def sim():
        return jr.simulate(params, duration=10 * u.second, drive=drive, key=key).eeg.mantissa

    prm = jnp.array([3.25, 22.0, 100.0, 50.0, 135.0, 2.5, 6.0, 0.56], jnp.float32)
    bare = jax.jit(bare_run)

    t0 = time.perf_counter()
    jax.block_until_ready(sim())
    compile_units = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(bare(prm, key))
    compile_bare = time.perf_counter() - t0

    e_units = np.asarray(sim())
    e_bare = np.asarray(bare(prm, key)[1])
    agree = float(np.max(np.abs(e_units - e_bare)))

    # interleave the two so that load on the machine hits both alike
    t_units, t_bare = [], []
    for _ in range(7):
        t_units.append(median_time(sim, 5))
        t_bare.append(median_time(lambda: bare(prm, key), 5))
    t_units, t_bare = float(np.median(t_units)), float(np.median(t_bare))

    print(f"machine: {platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s), jax {jax.__version__}")
    print("| version | median run (ms) | compile + first run (s) | ns / step |")
    print("|---|---|---|---|")
    print(f"| jr.simulate(), unit-aware, end to end | {t_units * 1e3:.2f} | {compile_units:.2f} | "
          f"{t_units / N * 1e9:.0f} |")
    print(f"| same RK4 on bare arrays | {t_bare * 1e3:.2f} | {compile_bare:.2f} | {t_bare / N * 1e9:.0f} |")
    print(f"\nratio unit-aware / bare: {t_units / t_bare:.2f}; max |EEG difference| = {agree:.2e} mV")


if __name__ == "__main__":
    main()
