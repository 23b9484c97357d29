"""Memory and time of one gradient of a spectral loss of (A, B, a, b) against the simulated horizon, with and without
the per-block ``jax.checkpoint`` of jr_jax.trace (which keeps long horizons within memory).

Memory is XLA's compiled temporary buffer size for the whole gradient (``memory_analysis().temp_size_in_bytes``);
time is the minimum of 3 calls after compilation. RK4, dt = 0.5 ms, float32, the noisy drive of the brainmass
Jansen–Rit tutorial (120 Hz, σ = 30 Hz·√s), EEG averaged over 2 ms windows, Welch PSD with 2 s segments, log-PSD
error over 2–40 Hz.
Run: .venv/bin/python benchmarks/fit_horizon.py
"""

import platform
import time

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import jr_jax as jr
from jr_jax import fitting as F
from jr_jax.parametrisation import Parametrisation
from jr_jax.spectra import welch

DT = 5e-4
EVERY = 4
DRIVE = jr.drives.white_noise(120.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5)
PAR = Parametrisation(jr.JRParams(), F.DEFAULT_FREE, None)


def loss_fn(seconds, checkpoint):
    n = int(round(seconds / DT))

    def loss(theta):
        p = PAR.params(theta)
        x = jr.trace(p, duration=n * DT * u.second, drive=DRIVE, key=jax.random.key(0),
                     record=jr.Record(every=EVERY, reduce="mean"), checkpoint=checkpoint).eeg.mantissa
        nperseg = int(round(2.0 / (EVERY * DT)))
        _, psd = welch(x, 1.0 / (EVERY * DT), nperseg=nperseg)
        f = np.fft.rfftfreq(nperseg, EVERY * DT)
        band = (f >= 2) & (f <= 40)
        return jnp.mean(jnp.log(psd.mantissa[band]) ** 2)

    return jax.jit(jax.grad(loss))


def main():
    print(f"machine: {platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s); jax {jax.__version__}")
    print("| horizon (s) | steps | temp memory, checkpointed | temp memory, plain | time/gradient, checkpointed "
          "| time/gradient, plain | compile, checkpointed |")
    print("|---|---|---|---|---|---|---|")
    theta = jnp.zeros(4)
    for seconds in (2.0, 5.0, 10.0, 20.0, 40.0):
        row = [f"{seconds:g}", f"{int(seconds / DT)}"]
        mem, times, compile_s = [], [], None
        for ck in (True, False):
            g = loss_fn(seconds, ck)
            t0 = time.perf_counter()
            compiled = g.lower(theta).compile()
            if ck:
                compile_s = time.perf_counter() - t0
            mem.append(compiled.memory_analysis().temp_size_in_bytes)
            jax.block_until_ready(compiled(theta))
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(theta + 1e-3))
                best = min(best, time.perf_counter() - t0)
            times.append(best)
        row += [f"{mem[0] / 2**20:.2f} MiB", f"{mem[1] / 2**20:.2f} MiB", f"{times[0]:.3f} s", f"{times[1]:.3f} s",
                f"{compile_s:.1f} s"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
