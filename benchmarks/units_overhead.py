"""Do units cost anything at run time? jr_jax against the same code on bare arrays.

Workload W1 of the benchmark plan: one column, 10 s at dt = 0.5 ms, the brainmass tutorial's noisy drive (mean 120 Hz,
σ = 30 Hz·√s), EEG kept every step, float32, the default RK4.

"Bare" is jr_jax's code path transcribed line by line with the units removed (numbers in mV, s, Hz): the same
sigmoid, firing rates, PSP kernels, RK4 in increment form on the packed 6-vector, the same blocks of steps whose
random numbers are drawn at once from fold_in(key, step) (jr_jax.rng, jax.random's stream in fused integer
arithmetic), the same NaN check per block. The two must give the same
EEG. The script reports:

* the primitives in the jaxpr of one RK4 step, unit-aware and bare: brainunit works at trace time, so the program
  XLA compiles should be the same;
* the run time after compilation of jr.simulate end to end (with its Python-side checks and result assembly), of
  the compiled unit-aware loop alone (the call simulate makes) and of the bare transcription, over 40 interleaved
  runs each: the minimum (timing noise on a shared machine only adds time, so the minimum is the stable estimate of
  the cost) and the median, with the ratios of the minima.

Run: python benchmarks/units_overhead.py
"""

from __future__ import annotations

import collections
import platform
import time

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import jr_jax as jr
from jr_jax import rng as _rng
from jr_jax.loop import block_windows, run_chunk
from jr_jax.params import canonical
from jr_jax.model import STATE_UNITS
from jr_jax.solvers import RK4

DT = 0.5e-3
N = 20000
MU, SIGMA = 120.0, 30.0
FIELDS = ("A", "B", "a", "b", "C", "c1", "c2", "c3", "c4", "e0", "v0", "r")


# -- jr_jax transcribed without units -------------------------------------------------------------------------

def sigmoid(v, prm):
    return 2 * prm["e0"] / (1 + jnp.exp(prm["r"] * (prm["v0"] - v)))


def rhs(s, prm, p):
    C = prm["C"]
    to_pyr = sigmoid(s[1] - s[2], prm)
    to_exc = p + C * prm["c2"] * sigmoid(C * prm["c1"] * s[0], prm)
    to_inh = C * prm["c4"] * sigmoid(C * prm["c3"] * s[0], prm)

    def psp(y, dy, rate, gain, k):
        return gain * k * rate - 2 * k * dy - k * k * y

    return (s[3], s[4], s[5], psp(s[0], s[3], to_pyr, prm["A"], prm["a"]), psp(s[1], s[4], to_exc, prm["A"], prm["a"]),
            psp(s[2], s[5], to_inh, prm["B"], prm["b"]))


def increment(y, prm, p, dt):
    d = rhs(tuple(y[i] for i in range(6)), prm, p)
    return jnp.stack([jnp.asarray(dt * x) for x in d])


def pack(s):
    return jnp.stack([jnp.asarray(x) for x in s])


def unpack(y):
    return tuple(y[i] for i in range(6))


def bare_rk4(s, t, dt, prm, mean, xi):
    """jr_jax.solvers.RK4 without units (the drive's mean is constant, as in white_noise)."""
    y = pack(s)
    drive_mean = lambda t: mean  # noqa: E731
    p_mid = drive_mean(t + dt / 2) + xi
    k1 = increment(y, prm, drive_mean(t) + xi, dt)
    k2 = increment(y + k1 / 2, prm, p_mid, dt)
    k3 = increment(y + k2 / 2, prm, p_mid, dt)
    k4 = increment(y + k3, prm, drive_mean(t + dt) + xi, dt)
    return unpack(y + (k1 + 2 * k2 + 2 * k3 + k4) / 6)


def bare_run(prm, key, dt):
    gw = block_windows(N, 1)

    def noise_of(i):
        _, k_white = _rng.split(_rng.fold_in(key, i))
        return (SIGMA * (_rng.normal(k_white, ()) * jnp.sqrt(dt))) / dt

    def block(carry, w0):
        y, bad = carry
        steps = w0 + jnp.arange(gw, dtype=jnp.int32)
        xi = jax.vmap(noise_of)(steps)

        def win(y, xs):
            i, x = xs
            y = pack(bare_rk4(unpack(y), i.astype(jnp.float32) * dt, dt, prm, MU, x))
            return y, {"eeg": y[1] - y[2]}

        y, out = jax.lax.scan(win, y, (steps, xi))
        bad = jnp.where((bad < 0) & ~jnp.all(jnp.isfinite(y)), w0, bad)
        return (y, bad), out

    (y, bad), out = jax.lax.scan(block, (jnp.zeros(6, jnp.float32), jnp.int32(-1)),
                                 gw * jnp.arange(N // gw, dtype=jnp.int32))
    return y, bad, out["eeg"].reshape(-1)


# -- measurement ------------------------------------------------------------------------------------------------

def step_primitives():
    """Primitive counts in the jaxpr of one RK4 step: jr_jax with Quantities, and the bare transcription."""
    params = canonical(jr.JRParams(), jnp.float32)
    drive = jr.drives.white_noise(MU * u.Hz, SIGMA * u.Hz * u.second ** 0.5)
    dt = u.Quantity(jnp.float32(DT), unit=u.second)
    noise = RK4().noise(jax.random.key(0), dt, params, drive)
    state = jr.JRState.zeros(dtype=jnp.float32)
    unit_aware = jax.make_jaxpr(lambda s, n: RK4().step(s, 0.0 * u.second, dt, params, drive, n))(state, noise)
    prm = {f: jnp.float32(u.get_mantissa(getattr(params, f))) for f in FIELDS}
    bare = jax.make_jaxpr(lambda s, x: bare_rk4(s, 0.0, jnp.float32(DT), prm, jnp.float32(MU), x))(
        tuple(jnp.float32(0.0) for _ in range(6)), jnp.float32(0.0))
    count = lambda j: collections.Counter(e.primitive.name for e in j.jaxpr.eqns)  # noqa: E731
    return count(unit_aware), count(bare)


def timed(fn):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def main():
    key = jax.random.key(0)
    params = jr.JRParams()
    drive = jr.drives.white_noise(MU * u.Hz, SIGMA * u.Hz * u.second ** 0.5)

    def sim():
        return jr.simulate(params, duration=10 * u.second, drive=drive, key=key).eeg.mantissa

    # the compiled loop as simulate() calls it
    p32, d32 = jax.tree.map(lambda x: np.asarray(x, np.float32), (params, drive))
    state = jr.JRState(*(u.Quantity(np.float32(0.0), unit=unit) for unit in STATE_UNITS))

    def loop():
        return run_chunk(p32, d32, state, key, np.int32(0), DT, solver=RK4(), n_windows=N, every=1,
                          variables=("eeg",), reduce="sample", dtype=jnp.float32)[2]["eeg"].mantissa

    prm = {f: np.float32(u.get_mantissa(getattr(canonical(params), f))) for f in FIELDS}
    bare = jax.jit(bare_run)

    def run_bare():
        return bare(prm, key, DT)[2]

    t0 = time.perf_counter()
    jax.block_until_ready(sim())
    compile_units = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(run_bare())
    compile_bare = time.perf_counter() - t0
    agree = float(np.max(np.abs(np.asarray(sim()) - np.asarray(run_bare()))))

    jax.block_until_ready(loop())
    agree_loop = float(np.max(np.abs(np.asarray(loop()) - np.asarray(run_bare()))))
    times = {"units": [], "loop": [], "bare": []}
    for _ in range(40):   # interleaved, so that load on the machine hits all alike
        for name, fn in (("units", sim), ("loop", loop), ("bare", run_bare)):
            times[name].append(timed(fn))
    med = {k: float(np.median(v)) for k, v in times.items()}
    t_units, t_loop, t_bare = (float(np.min(times[k])) for k in ("units", "loop", "bare"))
    c_units, c_bare = step_primitives()

    print(f"machine: {platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s), jax {jax.__version__}")
    print(f"jaxpr of one RK4 step: unit-aware {sum(c_units.values())} primitives, bare {sum(c_bare.values())}; "
          f"same multiset: {c_units == c_bare}")
    if c_units != c_bare:
        print("  unit-aware:", dict(c_units), "\n  bare:      ", dict(c_bare))
    print("| version | min run (ms) | median run (ms) | compile + first run (s) | ns / step (min) |")
    print("|---|---|---|---|---|")
    print(f"| jr.simulate(), unit-aware, end to end | {t_units * 1e3:.2f} | {med['units'] * 1e3:.2f} | "
          f"{compile_units:.2f} | {t_units / N * 1e9:.0f} |")
    print(f"| its compiled loop alone, unit-aware | {t_loop * 1e3:.2f} | {med['loop'] * 1e3:.2f} | | "
          f"{t_loop / N * 1e9:.0f} |")
    print(f"| same code on bare arrays | {t_bare * 1e3:.2f} | {med['bare'] * 1e3:.2f} | {compile_bare:.2f} | "
          f"{t_bare / N * 1e9:.0f} |")
    print(f"\nratio of minima, compiled loop unit-aware / bare: {t_loop / t_bare:.2f}; "
          f"end to end / bare: {t_units / t_bare:.2f}")
    print(f"max |EEG difference| from bare: simulate {agree:.2e} mV, loop {agree_loop:.2e} mV")


if __name__ == "__main__":
    main()
