"""jr_jax side by side with the simulators a user would pick instead: workloads W1–W4 (and W5 on a GPU).

Every system gets the same work: the Jansen–Rit equations with A = 3.25 mV, B = 22 mV, a = 100 /s, b = 50 /s,
C = 135, e0 = 2.5 /s, v0 = 6 mV, r = 0.56 /mV; dt = 0.5 ms; the brainmass tutorial's drive p = 120 Hz + white noise of intensity
σ = 30 Hz·√s (a step sees SD σ/√dt), with the random numbers drawn inside the timed call; float32.

* W1: one column, 10 s (20 000 steps), the EEG (y1 − y2) of every step kept.
* W2: 1024 sets with A ∈ [2.5, 4.5] mV and B ∈ [15, 30] mV, 2 s each, the EEG of every step kept; and the same with
  only features kept (jr_jax.sweep's monitors; the peers have no feature monitors, so only jr_jax runs that row).
* W3: the value and gradient of a spectral loss (squared log-PSD misfit, Welch 2 s Hann segments, 1–40 Hz, written
  once here in jax.numpy and applied to each simulator's EEG) with respect to A, B, a, b through 10 s.
* W4: a 76-region network (jr_jax's example connectome: tract lengths 1.2 × the straight distance, 3 m/s, delays
  up to ~59 ms), the Jansen & Rit 1995 / TVB coupling p_i += G Σ_j K_ij S(y1_j − y2_j)(t − τ_ij) with G = 10, the
  tutorial's drive in every column, 10 s, the EEG of every column kept as 2 ms means. The connectome goes to the
  peers as arrays (a file written by the parent), so that no peer's process imports jr_jax.
* W5 (only when a GPU is present): 10^5 and 10^6 sets, 10 s each, features only.

The systems (each runs in its own fresh subprocess: jrnmm switches JAX to 64 bits on import, vbjax prints a banner,
brainstate keeps global settings; a subprocess also gives each its own peak memory):

* ``jr_jax``: ``jr.simulate`` (W1, default RK4; W2 EEG with the 1024 sets as its batch; W4 with ``network=``, RK4
  and, as a second row, Heun), ``jr.sweep`` (W2 features, W5), ``jax.value_and_grad`` through ``jr.trace``
  (W3, checkpointed). Both W2 calls split the batch
  over the CPU's cores; W2 also reports them as one part (``jr_jax one part``) and ``jax.vmap`` of
  ``jr.trace`` (``jr_jax vmap(trace)``), what a user who writes the batch with ``vmap`` gets.
* ``numba``: a plain loop of the same equations and the same RK4 written here, scalar state, ``np.random`` normals
  drawn per step (W2: ``prange`` over the sets on all cores; W4: the delayed rates read by linear interpolation
  at each stage's time, as jr_jax reads them). The reference for how fast this hardware goes.
* ``brainmass-tutorial``: brainmass as its Jansen–Rit tutorial writes it — a new ``JansenRitStep`` (the tutorial calls it
  ``JansenRitModel``), ``init_all_states`` and ``brainstate.transform.for_loop`` per call, its default integrator
  (``exp_euler``) and its per-step input ``normal(120, 30/√dt)``.
* ``brainmass-jit``: the same model inside ``brainstate.transform.jit`` (compiled once), with ``method="rk4"``. W4:
  brainmass's ``Network`` couples one state variable of a node, which cannot express S(y1 − y2) onto the
  excitatory input, so the benchmark writes the coupling (delays rounded to whole steps, held over the step, a ring
  buffer in a ``brainstate.State``) around the same compiled ``JansenRitStep``.
* ``vbjax``: its ``jr_dfun`` in its own stochastic Heun loop ``make_sde`` (units ms, noise on y4 of intensity
  A·a·σ), normals from ``jax.random`` inside the jitted call; W4: its delay loop ``make_sdde`` (stochastic Heun,
  delays rounded to whole steps) with the coupling read from its history buffer, run in chunks of 100 steps by
  its ``make_continuation``.
* ``jrnmm``: its Strang-splitting ``simulate`` (noise on y4 of intensity A·a·σ; its extra noise on y3, y5 set to
  1e-6), switched back to float32 after import, inside ``jax.jit``. No networks (W4: not applicable).
* ``tvb`` (W4 only): The Virtual Brain's ``Simulator`` with the same connectome, speed, dt and coupling (its
  ``JansenRit`` with v0 = 6 mV, μ = 120 Hz; ``SigmoidalJansenRit`` with a = G; ``HeunStochastic`` with additive
  noise on y4 of the same intensity; a 2 ms ``TemporalAverage``), in float64, as TVB computes.

Reported per system and workload: the first call (compilation included), the median of the following calls, the
compile time (first minus median), the peak resident memory of the process above its level before the system's
imports (so the packages it loads count), and the ratio of the median to jr_jax's. Run:
``python benchmarks/peers.py [W1 W2 W3 W4 W5]`` (peers from ``pip install -e .[bench]``; a missing peer is reported
as such).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

DT = 5e-4
A0, B0, a0, b0, C0, E0, V0, R0 = 3.25, 22.0, 100.0, 50.0, 135.0, 2.5, 6.0, 0.56
MU, SIGMA = 120.0, 30.0
N_SETS = 1024
SYSTEMS = ("jr_jax", "numba", "brainmass-tutorial", "brainmass-jit", "vbjax", "jrnmm", "tvb")
W4_REGIONS, W4_G, W4_SPEED, W4_SECONDS, W4_EVERY = 76, 10.0, 3.0, 10.0, 4     # speed in m/s; EEG means of 4 steps
W4_FILE = "JR_JAX_W4_CONNECTOME"        # environment variable: the .npz with the connectome's arrays
VBJAX_W4_CHUNK = 100                    # steps per chunk of vbjax's make_continuation (100: 8.2 s, 500: 10.1 s,
                                        # 2000: 10.4 s per 10 s in one run; the whole run as one buffer: 105 s)


W5_SETS, W5_SECONDS = (100_000, 1_000_000), 10.0


def design(n=N_SETS):
    rng = np.random.default_rng(0)
    return rng.uniform(2.5, 4.5, n).astype(np.float32), rng.uniform(15.0, 30.0, n).astype(np.float32)


def w5_design(n):
    """W5's n sets: (A in mV, B in mV), uniform over the ranges of W2, drawn with seed n."""
    rng = np.random.default_rng(n)
    return rng.uniform(2.5, 4.5, n), rng.uniform(15, 30, n)


def write_w4_connectome(folder, n_regions=W4_REGIONS):
    """Write W4's connectome (jr_jax's example of ``n_regions``) as arrays to ``folder``/w4.npz and point
    ``W4_FILE`` at it, so that every system, in its own process, reads the same arrays."""
    import brainunit as u

    from jr_jax import connectome
    con = connectome.example(n_regions)
    path = os.path.join(folder, "w4.npz")
    np.savez(path, weights=con.weights, lengths_mm=np.asarray(con.lengths.to_decimal(u.mmeter)),
             centres_mm=np.asarray(con.centres.to_decimal(u.mmeter)))
    os.environ[W4_FILE] = path
    return path


def w4_connectome():
    """(weights K (N, N), delays τ in steps of DT (N, N)) of W4, from the file the parent wrote."""
    z = np.load(os.environ[W4_FILE])
    return z["weights"], z["lengths_mm"] * 1e-3 / W4_SPEED / DT


def _means(eeg):
    """The EEG (steps, N) as means over windows of W4_EVERY steps (a jax array)."""
    return eeg.reshape((eeg.shape[0] // W4_EVERY, W4_EVERY) + eeg.shape[1:]).mean(axis=1)


def _rss_mb():
    """This process's peak resident memory (MB). On Linux from VmHWM, which starts afresh at exec: ``ru_maxrss``
    keeps the parent's level across fork and exec, so a child's growth below the parent's size read as 0."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(call, repeats):
    t = time.perf_counter()
    call()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    med = float(np.median(times))
    return dict(first_s=first, median_s=med, compile_s=max(first - med, 0.0), repeats=repeats)


def _block(x):
    import jax
    return jax.block_until_ready(x)


# -- the spectral loss of W3, shared by every differentiable system ------------------------------------------------

def _log_psd(eeg):
    """Welch log-PSD: 2 s Hann segments, 50 % overlap."""
    import jax.numpy as jnp
    seg = int(2.0 / DT)
    n = (eeg.shape[0] - seg) // (seg // 2) + 1
    x = eeg[jnp.arange(seg)[None, :] + (seg // 2) * jnp.arange(n)[:, None]]
    x = (x - x.mean(axis=1, keepdims=True)) * jnp.hanning(seg)
    return jnp.log((jnp.abs(jnp.fft.rfft(x, axis=1)) ** 2).mean(axis=0) + 1e-12)


def spectral_loss(eeg, target_log_psd):
    import jax.numpy as jnp
    f = jnp.fft.rfftfreq(int(2.0 / DT), DT)
    band = (f >= 1.0) & (f <= 40.0)
    return jnp.sum(jnp.where(band, (_log_psd(eeg) - target_log_psd) ** 2, 0.0)) / band.sum()


W3_TRUTH = (3.0, 24.0, 90.0, 55.0)


def _grad_run(eeg_of, repeats=3):
    """Value and gradient of the spectral loss in (A, B, a, b), against the system's own log-PSD at W3_TRUTH."""
    import jax
    import jax.numpy as jnp
    target = jax.lax.stop_gradient(_log_psd(eeg_of(*W3_TRUTH)))
    vg = jax.jit(jax.value_and_grad(lambda th: spectral_loss(eeg_of(th[0], th[1], th[2], th[3]), target)))
    theta = jnp.asarray([A0, B0, a0, b0], jnp.float32)
    r = _timed(lambda: _block(vg(theta)), repeats)
    r["finite"] = bool(np.isfinite(np.asarray(vg(theta)[1])).all())
    return r


# -- jr_jax ------------------------------------------------------------------------------------------------------

def jr_jax_runs(workload):
    import brainunit as u
    import jax
    import jax.numpy as jnp

    import jr_jax as jr

    drive = jr.drives.white_noise(MU * u.Hz, SIGMA * u.Hz * u.second ** 0.5)
    key = jax.random.key(0)
    if workload == "W1":
        return _timed(lambda: _block(jr.simulate(jr.JRParams(), duration=10 * u.second, drive=drive, key=key).eeg),
                      30)
    if workload == "W2":
        params = jr.JRParams(A=design()[0] * u.mV, B=design()[1] * u.mV)

        def eeg():
            return _block(jr.simulate(params, duration=2 * u.second, drive=drive, key=key).eeg.mantissa)

        def feats():
            return _block(jr.sweep(params, duration=2 * u.second, transient=0 * u.second, drive=drive,
                                   key=key).features["mean"].mantissa)

        out = {"W2 EEG": _timed(eeg, 7), "W2 features": _timed(feats, 7)}
        A, B = (jnp.asarray(x) for x in design())
        run = jax.jit(jax.vmap(lambda a, b: jr.trace(jr.JRParams(A=a * u.mV, B=b * u.mV), duration=2 * u.second,
                                                     drive=drive, key=key).eeg.mantissa))
        out["W2 EEG|jr_jax vmap(trace)"] = _timed(lambda: _block(run(A, B)), 7)
        os.environ[jr.batches.PARTS_ENV] = "1"      # the batch whole, on the one thread XLA gives a call
        out["W2 EEG|jr_jax one part"] = _timed(eeg, 7)
        out["W2 features|jr_jax one part"] = _timed(feats, 7)
        return out
    if workload == "W3":
        def eeg_of(A, B, a, b):
            p = jr.JRParams(A=A * u.mV, B=B * u.mV, a=a * u.Hz, b=b * u.Hz)
            return jr.trace(p, duration=10 * u.second, drive=drive, key=key).eeg.mantissa
        return _grad_run(eeg_of)
    if workload == "W4":
        from jr_jax import connectome, network
        z = np.load(os.environ[W4_FILE])
        net = network.network(connectome.Connectome(z["weights"], z["lengths_mm"] * u.mmeter), coupling=W4_G,
                              speed=W4_SPEED * u.meter / u.second)
        rec = jr.Record(("eeg",), every=W4_EVERY, reduce="mean")

        def net_run(method):
            return lambda: _block(jr.simulate(jr.JRParams(), duration=W4_SECONDS * u.second, drive=drive, key=key,
                                              network=net, record=rec, method=method).eeg.mantissa)
        return {"W4": _timed(net_run("rk4"), 3), "W4|jr_jax Heun": _timed(net_run("heun"), 3)}
    if workload == "W5":
        out = {}
        for n in W5_SETS:
            A, B = w5_design(n)
            params = jr.JRParams(A=A * u.mV, B=B * u.mV)
            r = _timed(lambda: _block(jr.sweep(params, duration=W5_SECONDS * u.second, transient=0 * u.second,
                                               drive=drive, key=key).features["mean"].mantissa), 1)
            r["column_steps_per_s"] = n * round(W5_SECONDS / DT) / r["median_s"]
            out[f"W5 {n:.0e} sets"] = r
        return out
    raise ValueError(workload)


# -- numba -------------------------------------------------------------------------------------------------------

def _numba_kernels():
    import numba

    f4 = np.float32

    @numba.njit
    def rate(v):
        return f4(2) * f4(E0) / (f4(1) + np.exp(f4(R0) * (f4(V0) - v)))

    @numba.njit
    def deriv(x0, x1, x2, x3, x4, x5, p, A, B, a, b):
        s12, s0, s3 = rate(x1 - x2), rate(f4(C0) * x0), rate(f4(0.25 * C0) * x0)
        return (x3, x4, x5,
                A * a * s12 - f4(2) * a * x3 - a * a * x0,
                A * a * (p + f4(0.8 * C0) * s0) - f4(2) * a * x4 - a * a * x1,
                B * b * f4(0.25 * C0) * s3 - f4(2) * b * x5 - b * b * x2)

    @numba.njit
    def column(n, A, B, a, b, out):
        dt, h, w = f4(DT), f4(DT / 2), f4(DT / 6)
        sd = SIGMA / np.sqrt(DT)
        y0 = y1 = y2 = y3 = y4 = y5 = f4(0)
        for i in range(n):
            p = f4(MU + sd * np.random.standard_normal())
            k1 = deriv(y0, y1, y2, y3, y4, y5, p, A, B, a, b)
            k2 = deriv(y0 + h * k1[0], y1 + h * k1[1], y2 + h * k1[2], y3 + h * k1[3], y4 + h * k1[4],
                       y5 + h * k1[5], p, A, B, a, b)
            k3 = deriv(y0 + h * k2[0], y1 + h * k2[1], y2 + h * k2[2], y3 + h * k2[3], y4 + h * k2[4],
                       y5 + h * k2[5], p, A, B, a, b)
            k4 = deriv(y0 + dt * k3[0], y1 + dt * k3[1], y2 + dt * k3[2], y3 + dt * k3[3], y4 + dt * k3[4],
                       y5 + dt * k3[5], p, A, B, a, b)
            y0 += w * (k1[0] + f4(2) * k2[0] + f4(2) * k3[0] + k4[0])
            y1 += w * (k1[1] + f4(2) * k2[1] + f4(2) * k3[1] + k4[1])
            y2 += w * (k1[2] + f4(2) * k2[2] + f4(2) * k3[2] + k4[2])
            y3 += w * (k1[3] + f4(2) * k2[3] + f4(2) * k3[3] + k4[3])
            y4 += w * (k1[4] + f4(2) * k2[4] + f4(2) * k3[4] + k4[4])
            y5 += w * (k1[5] + f4(2) * k2[5] + f4(2) * k3[5] + k4[5])
            out[i] = y1 - y2

    @numba.njit
    def one(n):
        out = np.empty(n, np.float32)
        column(n, f4(A0), f4(B0), f4(a0), f4(b0), out)
        return out

    @numba.njit(parallel=True)
    def many(n, As, Bs):
        out = np.empty((As.shape[0], n), np.float32)
        for s in numba.prange(As.shape[0]):
            column(n, As[s], Bs[s], f4(a0), f4(b0), out[s])
        return out

    @numba.njit
    def net(n_steps, K, tau):
        """W4: RK4 on every column; the delayed rates at stage time t + c·dt (c = 0, 1/2, 1) by linear interpolation
        between the stored rates of whole steps (a ring buffer), as jr_jax reads them."""
        n = K.shape[0]
        n_buf = int(np.ceil(tau.max())) + 3
        hist = np.empty((n_buf, n), np.float32)
        hist[:] = rate(f4(0))                       # the history before t = 0: the zero state's rate
        base = np.empty((3, n, n), np.int64)
        frac = np.empty((3, n, n), np.float32)
        for c in range(3):
            x = 0.5 * c - tau
            base[c] = np.floor(x).astype(np.int64)
            frac[c] = (x - np.floor(x)).astype(np.float32)
        y = np.zeros((6, n), np.float32)
        cpl = np.empty((3, n), np.float32)
        out = np.zeros((n_steps // W4_EVERY, n), np.float32)
        dt, h, w = f4(DT), f4(DT / 2), f4(DT / 6)
        sd = SIGMA / np.sqrt(DT)
        for m in range(n_steps):
            for c in range(3):
                for i in range(n):
                    acc = f4(0)
                    for j in range(n):
                        k = m + base[c, i, j]
                        f = frac[c, i, j]
                        acc += K[i, j] * ((f4(1) - f) * hist[k % n_buf, j] + f * hist[(k + 1) % n_buf, j])
                    cpl[c, i] = f4(W4_G) * acc
            for i in range(n):
                p = f4(MU + sd * np.random.standard_normal())
                y0, y1, y2, y3, y4, y5 = y[0, i], y[1, i], y[2, i], y[3, i], y[4, i], y[5, i]
                k1 = deriv(y0, y1, y2, y3, y4, y5, p + cpl[0, i], f4(A0), f4(B0), f4(a0), f4(b0))
                k2 = deriv(y0 + h * k1[0], y1 + h * k1[1], y2 + h * k1[2], y3 + h * k1[3], y4 + h * k1[4],
                           y5 + h * k1[5], p + cpl[1, i], f4(A0), f4(B0), f4(a0), f4(b0))
                k3 = deriv(y0 + h * k2[0], y1 + h * k2[1], y2 + h * k2[2], y3 + h * k2[3], y4 + h * k2[4],
                           y5 + h * k2[5], p + cpl[1, i], f4(A0), f4(B0), f4(a0), f4(b0))
                k4 = deriv(y0 + dt * k3[0], y1 + dt * k3[1], y2 + dt * k3[2], y3 + dt * k3[3], y4 + dt * k3[4],
                           y5 + dt * k3[5], p + cpl[2, i], f4(A0), f4(B0), f4(a0), f4(b0))
                y[0, i] = y0 + w * (k1[0] + f4(2) * k2[0] + f4(2) * k3[0] + k4[0])
                y[1, i] = y1 + w * (k1[1] + f4(2) * k2[1] + f4(2) * k3[1] + k4[1])
                y[2, i] = y2 + w * (k1[2] + f4(2) * k2[2] + f4(2) * k3[2] + k4[2])
                y[3, i] = y3 + w * (k1[3] + f4(2) * k2[3] + f4(2) * k3[3] + k4[3])
                y[4, i] = y4 + w * (k1[4] + f4(2) * k2[4] + f4(2) * k3[4] + k4[4])
                y[5, i] = y5 + w * (k1[5] + f4(2) * k2[5] + f4(2) * k3[5] + k4[5])
                hist[(m + 1) % n_buf, i] = rate(y[1, i] - y[2, i])
                out[m // W4_EVERY, i] += (y[1, i] - y[2, i]) / f4(W4_EVERY)
        return out

    return one, many, net


def numba_runs(workload):
    one, many, net = _numba_kernels()
    if workload == "W1":
        return _timed(lambda: one(20000), 60)
    if workload == "W2":
        A, B = design()
        return {"W2 EEG": _timed(lambda: many(4000, A, B), 5)}
    if workload == "W4":
        K, tau = (x.astype(np.float32) for x in w4_connectome())
        return _timed(lambda: net(int(round(W4_SECONDS / DT)), K, tau), 3)
    return None


# -- brainmass ---------------------------------------------------------------------------------------------------

def _brainmass_setup():
    import brainmass
    import brainstate
    import brainunit as u
    brainstate.environ.set(dt=0.5 * u.ms)
    return brainmass, brainstate, u


def brainmass_tutorial_runs(workload):
    brainmass, brainstate, u = _brainmass_setup()

    def tutorial_style(n_sets, n_steps, **gains):
        node = brainmass.JansenRitStep(n_sets, **gains)
        brainstate.nn.init_all_states(node)

        def step_run(inp):
            eeg = node.update(E_inp=inp)
            return node.M.value, node.E.value, node.I.value, eeg

        dt = brainstate.environ.get_dt()
        inputs = brainstate.random.normal(MU, SIGMA / (dt / u.second) ** 0.5, (n_steps, n_sets)) * u.Hz
        return _block(brainstate.transform.for_loop(step_run, inputs)[3])

    if workload == "W1":
        return _timed(lambda: tutorial_style(1, 20000), 5)
    if workload == "W2":
        A, B = design()
        return {"W2 EEG": _timed(lambda: tutorial_style(N_SETS, 4000, Ae=A * u.mV, Ai=B * u.mV), 3)}
    return None


def brainmass_jit_runs(workload):
    brainmass, brainstate, u = _brainmass_setup()
    import jax

    def compiled(n_sets, n_steps, **gains):
        node = brainmass.JansenRitStep(n_sets, method="rk4", **gains)
        brainstate.nn.init_all_states(node)
        dt = brainstate.environ.get_dt()

        @brainstate.transform.jit
        def run():
            inputs = brainstate.random.normal(MU, SIGMA / (dt / u.second) ** 0.5, (n_steps, n_sets)) * u.Hz
            return brainstate.transform.for_loop(lambda inp: node.update(E_inp=inp), inputs)

        return lambda: _block(run())

    if workload == "W1":
        return _timed(compiled(1, 20000), 60)
    if workload == "W2":
        A, B = design()
        return {"W2 EEG": _timed(compiled(N_SETS, 4000, Ae=A * u.mV, Ai=B * u.mV), 5)}
    if workload == "W3":
        def eeg_of(A, B, a, b):
            node = brainmass.JansenRitStep(1, method="rk4", Ae=A * u.mV, Ai=B * u.mV, be=a * u.Hz, bi=b * u.Hz)
            brainstate.nn.init_all_states(node)
            dt = brainstate.environ.get_dt()
            inputs = (MU + SIGMA / (dt / u.second) ** 0.5 * jax.random.normal(jax.random.key(0), (20000, 1))) * u.Hz
            eeg = brainstate.transform.for_loop(lambda inp: node.update(E_inp=inp), inputs)
            return eeg[:, 0].to_decimal(u.mV)
        return _grad_run(eeg_of)
    if workload == "W4":
        import jax.numpy as jnp
        K, tau = w4_connectome()
        n, n_steps = K.shape[0], int(round(W4_SECONDS / DT))
        lags = jnp.asarray(np.rint(tau).astype(np.int32))
        K = jnp.asarray(K, jnp.float32)
        node = brainmass.JansenRitStep(n, method="rk4")
        brainstate.nn.init_all_states(node)
        n_buf = int(lags.max()) + 2
        hist = brainstate.State(jnp.broadcast_to(node.S(0.0 * u.mV).to_decimal(u.Hz), (n_buf, n)))
        cols = jnp.arange(n)[None, :]
        dt = brainstate.environ.get_dt()

        def step(m, inp):
            cpl = W4_G * jnp.sum(K * hist.value[(m - lags) % n_buf, cols], axis=1)
            node.update(E_inp=(inp + cpl) * u.Hz)
            eeg = (node.E.value - node.I.value).to_decimal(u.mV)
            hist.value = hist.value.at[(m + 1) % n_buf].set(node.S(node.E.value - node.I.value).to_decimal(u.Hz))
            return eeg

        @brainstate.transform.jit
        def run():
            inputs = brainstate.random.normal(MU, SIGMA / (dt / u.second) ** 0.5, (n_steps, n))
            return _means(brainstate.transform.for_loop(step, jnp.arange(n_steps), inputs))

        return _timed(lambda: _block(run()), 3)
    return None


# -- vbjax -------------------------------------------------------------------------------------------------------

def vbjax_runs(workload):
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import vbjax as vb
    import jax
    import jax.numpy as jnp

    dt_ms = DT * 1e3
    g = A0 * (a0 / 1e3) * SIGMA * 1e-3 ** 0.5   # A·a·σ in mV/ms/√ms

    def theta(A=A0, B=B0, a=a0, b=b0):
        return vb.jr_default_theta._replace(A=A, B=B, a=a / 1e3, b=b / 1e3, v0=V0, nu_max=E0 / 1e3, r=R0, J=C0,
                                            mu=MU / 1e3)

    def loop_for(n_steps, shape, th, A):
        sig = jnp.zeros((6,) + shape).at[4].set(g * A / A0)
        _, loop = vb.make_sde(dt_ms, lambda x, p: vb.jr_dfun(x, 0.0, p), sig)

        def run(key):
            zs = jax.random.normal(key, (n_steps, 6) + shape)
            xs = loop(jnp.zeros((6,) + shape), zs, th)
            return xs[:, 1] - xs[:, 2]
        return run

    key = jax.random.key(0)
    if workload == "W1":
        run = jax.jit(loop_for(20000, (), theta(), A0))
        return _timed(lambda: _block(run(key)), 60)
    if workload == "W2":
        A, B = (jnp.asarray(x) for x in design())
        run = jax.jit(loop_for(4000, (N_SETS,), theta(A=A, B=B), A))
        return {"W2 EEG": _timed(lambda: _block(run(key)), 5)}
    if workload == "W3":
        def eeg_of(A, B, a, b):
            return loop_for(20000, (), theta(A, B, a, b), A)(key)
        return _grad_run(eeg_of)
    if workload == "W4":
        K, tau = w4_connectome()
        n, n_steps = K.shape[0], int(round(W4_SECONDS / DT))
        lags = jnp.asarray(np.rint(tau).astype(np.int32))
        nh = int(lags.max())
        K = jnp.asarray(K, jnp.float32)
        cols = jnp.arange(n)[None, :]
        th = theta()

        def dfun(buf, x, t, p):         # t: this step's row of the buffer; rates in 1/ms as vbjax's model has them
            v = buf[t - lags, 1, cols] - buf[t - lags, 2, cols]
            c = W4_G * jnp.sum(K * 2.0 * p.nu_max / (1.0 + jnp.exp(p.r * (p.v0 - v))), axis=1)
            return vb.jr_dfun(x, c, p)

        # make_sdde keeps the whole run in its buffer, which the loop copied at every step (10 s: 105 s); its
        # make_continuation runs it in chunks of a short buffer, as vbjax suggests for long delayed runs
        _, loop = vb.make_sdde(dt_ms, nh, dfun, jnp.zeros((6, n)).at[4].set(g))
        chunk = VBJAX_W4_CHUNK
        step_chunk = vb.make_continuation(loop, chunk, nh, n, 6)

        def net_run(key):
            buf, out = jnp.zeros((nh + 1 + chunk, 6, n)), []
            for k in jax.random.split(key, n_steps // chunk):
                buf, xs = step_chunk(buf, th, k)
                out.append(_means(xs[:, 1] - xs[:, 2]))
            return jnp.concatenate(out)

        return _timed(lambda: _block(net_run(key)), 3)
    return None


# -- jrnmm -------------------------------------------------------------------------------------------------------

def jrnmm_runs(workload):
    import jax
    import jax.numpy as jnp
    import jrnmm
    jax.config.update("jax_enable_x64", False)      # jrnmm turns 64-bit on at import; every system runs float32

    sig = A0 * a0 * SIGMA   # noise on y4, mV/s/√s
    key = jax.random.key(0)
    x0 = jnp.zeros(6)

    def run_for(t_end, **kw):
        return lambda k: jrnmm.simulate(k, dt=DT, t_end=t_end, initial_states=x0, Cs=C0, mus=MU, sigmas=sig,
                                        sigma_4=1e-6, sigma_6=1e-6, **kw)

    if workload == "W1":
        run = jax.jit(run_for(10.0))
        return _timed(lambda: _block(run(key)), 60)
    if workload == "W2":
        A, B = (jnp.asarray(x) for x in design())
        run = jax.jit(jax.vmap(lambda a, b: run_for(2.0, A=a, B=b)(key)))
        return {"W2 EEG": _timed(lambda: _block(run(A, B)), 5)}
    if workload == "W3":
        def eeg_of(A, B, a, b):
            return run_for(10.0, A=A, B=B, a=a, b=b)(key)[0, :, 0]
        return _grad_run(eeg_of)
    return None


# -- The Virtual Brain -------------------------------------------------------------------------------------------

def tvb_runs(workload):
    if workload != "W4":
        return None
    from tvb.simulator.lab import connectivity, coupling, integrators, models, monitors, noise, simulator
    z = np.load(os.environ[W4_FILE])
    n = z["weights"].shape[0]
    conn = connectivity.Connectivity(weights=z["weights"], tract_lengths=z["lengths_mm"], centres=z["centres_mm"],
                                     region_labels=np.array([f"r{i}" for i in range(n)]), speed=np.array([W4_SPEED]))
    conn.configure()
    nsig = np.zeros(6)
    nsig[4] = (A0 * (a0 / 1e3) * SIGMA * 1e-3 ** 0.5) ** 2 / 2     # (A·a·σ)²/2 in ms units
    sim = simulator.Simulator(model=models.JansenRit(v0=np.array([V0]), mu=np.array([MU / 1e3])), connectivity=conn,
                              coupling=coupling.SigmoidalJansenRit(a=np.array([W4_G])),
                              integrator=integrators.HeunStochastic(dt=DT * 1e3, noise=noise.Additive(nsig=nsig)),
                              monitors=(monitors.TemporalAverage(period=DT * 1e3 * W4_EVERY),),
                              simulation_length=W4_SECONDS * 1e3)
    sim.configure()
    return _timed(lambda: sim.run(), 1)


RUNNERS = {"jr_jax": jr_jax_runs, "numba": numba_runs, "brainmass-tutorial": brainmass_tutorial_runs,
           "brainmass-jit": brainmass_jit_runs, "vbjax": vbjax_runs, "jrnmm": jrnmm_runs, "tvb": tvb_runs}
PACKAGES = {"jr_jax": ["jax"], "numba": ["numba"], "brainmass-tutorial": ["brainmass", "brainstate"],
            "brainmass-jit": ["brainmass", "brainstate"], "vbjax": ["vbjax"], "jrnmm": ["jrnmm"],
            "tvb": ["tvb-library"]}


def child(system, workload):
    """Run one system on one workload in this process; print one JSON line."""
    import importlib.metadata
    versions = {}
    for pkg in PACKAGES[system]:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            print(json.dumps({"error": f"{pkg} is not installed (pip install -e .[bench])"}))
            return
    base = _rss_mb()
    try:
        out = RUNNERS[system](workload)
    except Exception as e:  # noqa: BLE001 - a peer that cannot do a workload is reported, not fatal
        print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}", "versions": versions}))
        return
    if out is None:
        print(json.dumps({"error": "not applicable", "versions": versions}))
        return
    if "median_s" in out:
        out = {workload: out}
    for r in out.values():
        r["peak_mb"] = _rss_mb() - base
    print(json.dumps({"results": out, "versions": versions}))


def main(workloads):
    import jax
    gpu = jax.default_backend() == "gpu"
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"JAX backend {jax.default_backend()}, jax {jax.__version__}, python {platform.python_version()}")
    rows, versions = {}, {}
    if "W4" in workloads:
        import tempfile
        write_w4_connectome(tempfile.mkdtemp())
    for workload in workloads:
        if workload == "W5" and not gpu:
            print("W5 needs a GPU; skipped.")
            continue
        for system in (("jr_jax",) if workload == "W5" else SYSTEMS):
            proc = subprocess.run([sys.executable, __file__, "--child", system, workload], capture_output=True,
                                  text=True, timeout=3600)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            res = json.loads(lines[-1]) if lines else {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
            versions.update({k: v for k, v in res.get("versions", {}).items()})
            if "error" in res:        # under the workload's first row (W2: "W2 EEG")
                row = next((r for r in rows if r.split()[0] == workload), workload)
                rows.setdefault(row, {})[system] = res["error"]
            else:
                for name, r in res["results"].items():   # "row|label": a variant of the system in that row
                    row, _, label = name.partition("|")
                    rows.setdefault(row, {})[label or system] = r
            print(f"  {workload} {system}: done", file=sys.stderr)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    print("\n| workload | system | first call (s) | median (s) | compile (s) | peak RSS (MB) | median / jr_jax |")
    print("|---|---|---|---|---|---|---|")
    for name, per in rows.items():
        ref = per.get("jr_jax")
        for system, r in per.items():
            if isinstance(r, str):
                print(f"| {name} | {system} | — | — | — | — | {r} |")
                continue
            ratio = r["median_s"] / ref["median_s"] if isinstance(ref, dict) else float("nan")
            extra = f" ({r['column_steps_per_s']:.3g} column-steps/s)" if "column_steps_per_s" in r else ""
            print(f"| {name} | {system} | {r['first_s']:.3f} | {r['median_s']:.4f} | {r['compile_s']:.3f} | "
                  f"{r['peak_mb']:.0f} | {ratio:.2f}×{extra} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:] or ["W1", "W2", "W3", "W4", "W5"])
