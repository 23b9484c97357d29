"""W6 (issue 22): one value-and-gradient of a sensor-space ERP loss through the 76-region delayed network, jr_jax side
by side with neurofe 0.1.0 (PyTorch).

The problem, the same for both tools:

* TVB's 76-region connectome (``connectivity_76.zip`` of tvb-data: weights as stored, tract lengths in mm) and its
  65-sensor EEG lead field reduced to the regions (``projection_eeg_65_surface_16k.npy``, the vertices of each region
  of ``regionMapping_16k_76.txt`` summed): ``jr_jax.connectome.tvb(76)`` and ``jr_jax.leadfield.tvb_eeg65()``, or
  the same read here from tvb-data where jr_jax lacks them. TVB's file holds no data for two of the 65 sensors (IO1,
  IO2: rows of NaN); they are left out for both tools (as ``tvb_eeg65`` does), 63 sensors remain. neurofe divides
  every row of its lead field by the row's norm, so an empty row would turn its whole EEG into NaN. The arrays reach
  the peer as a file written by the parent, so that its process needs only numpy and torch.
* An evoked-response epoch: ``EPOCH_MS`` (300 ms), dt = 0.1 ms (3000 steps), float32, starting from rest, a
  gamma-shaped stimulus pulse (``drives.pulse``: onset 20 ms, width 5 ms, order 7, peak 300 Hz) into one region
  (``STIM_REGION``, right V1) and nothing into the others.
* The loss: the mean squared error of the sensor EEG, one sample per ms (the end of each 1 ms window: neurofe's
  output rate), against a target simulated with the same tool at other parameter values (``TARGET``). No noise.
* The gradient: with respect to the global coupling G, the conduction speed v and the excitatory gain A of every
  region (76 values), at ``START``.

The systems, each in its own fresh subprocess (its own compile cache and peak memory):

* ``jr_jax`` (this venv): ``jax.jit(jax.value_and_grad(loss))`` where the loss builds ``JRParams(A=A)`` and the
  network with ``dataclasses.replace(net, coupling=G, speed=v)`` (``jr_jax.network.network`` on the connectome with
  ``lead_field=``, rule "afferent", ``max_delay`` for 2 m/s so that v can move) and calls ``jr.trace(...,
  method="rk4" | "euler", dtype=float32, record=Record(("eeg",), every=10))``; the sensors are ``net.sensors``.
  A constant 120 Hz drive to every column plus the pulse. Delays: exact, fractional (each stage reads the ring
  buffer by linear interpolation), differentiable in v. The gradient is checkpointed per block (jr.trace's
  default). Compile time is ``lower().compile()`` of the whole value-and-gradient, timed on its own.
* ``neurofe`` (the peer venv, ``--peer-python``): ``neurofe.JansenRit(sc, leadfield, dist, step_size=1e-4,
  tr=1e-3, batch_size=epoch in ms, fit_connectivity=False)`` with ``g``, ``mu`` (its conduction speed) and ``A`` (one
  value per region) as fitted ``Par``; one call of the model's ``forward`` over the whole epoch (its own fits
  back-propagate windows of ``batch_size`` = 50 ms), MSE, ``loss.backward()``. Its integrator is Euler; its delays are
  ``(dist / mu).type(torch.int64)`` whole TRs (1 ms), read once per TR and held over the TR's 10 steps, so no gradient
  reaches mu (reported). Its other parameters are its defaults, noise ``std_in`` 0; the pulse enters its pyramidal
  input. Eager PyTorch: no compilation; "compile" is the first call minus the median.

Reported: compile time, the median (min–max) of ``--repeats`` timed value-and-gradient calls, the process's peak
resident memory (VmHWM: interpreter, libraries, compiler and all), the peak of the gradient calls alone above the
resident memory just before them (VmHWM started afresh there, after compilation, through /proc/self/clear_refs),
the ratio of neurofe's median to each row's median, and (jr_jax) XLA's temporary buffer size of the compiled
gradient (its working memory as XLA plans it).

Run: ``.venv/bin/python benchmarks/network_gradient.py [--repeats 5] [--quick] [--peer-python PATH]``. The peer:
``python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install torch==2.13.0`` (a CPU build; install it
first so that neurofe does not pull another), then ``/work/bench-venv/bin/pip install neurofe==0.1.0``.
``--quick`` runs a 40 ms epoch (a smoke check, not a measurement; the pulse is then in its rise).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

EPOCH_MS, QUICK_EPOCH_MS = 300, 40
DT_MS = 0.1
STEPS_PER_SAMPLE = 10                   # one EEG sample per ms, as neurofe's tr = 1 ms gives
STIM_REGION = "rV1"
ONSET_MS, WIDTH_MS, ORDER, PEAK_HZ = 20.0, 5.0, 7.0, 300.0
P_HZ = 120.0                            # jr_jax's constant background drive
START = dict(G=0.5, speed=3.0, A=3.25)  # G is jr_jax's coupling scale; neurofe's g starts at its default, below
TARGET = dict(G=0.6, speed=4.0, A=3.5)
SLOWEST = 2.0                           # m/s: jr_jax's ring buffer holds the delays down to this speed
NEUROFE_G = (1000.0, 1200.0)            # neurofe's lateral gain g: its default (start), target
PEER_PYTHON = "/work/bench-venv/bin/python"
FILE_ENV = "JR_JAX_W6_PROBLEM"          # the .npz with the problem's arrays


def _rss_mb():
    """(peak, current) resident memory of this process in MB, from /proc (VmHWM starts afresh at exec)."""
    try:
        with open("/proc/self/status") as f:
            kv = {ln.split(":")[0]: int(ln.split()[1]) for ln in f if ln.startswith(("VmHWM:", "VmRSS:"))}
        return kv["VmHWM"] / 1024, kv["VmRSS"] / 1024
    except (OSError, KeyError, ValueError):
        m = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return m, m


_PEAK = [0.0]      # the process's peak before the last _reset_peak


def _reset_peak():
    """Start VmHWM afresh at the current RSS (Linux: writing 5 to clear_refs), keeping the peak so far in _PEAK;
    False where that is not possible."""
    _PEAK[0] = max(_PEAK[0], _rss_mb()[0])
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _stats(times):
    return dict(median_s=float(np.median(times)), min_s=float(np.min(times)), max_s=float(np.max(times)),
                repeats=len(times))


def pulse_hz(t_s):
    """The stimulus (Hz) at times t_s: peak·(τ/n)ⁿ·e^(n−τ), τ = (t − onset)/width ≥ 0, as jr_jax.drives.pulse."""
    tau = np.maximum((t_s - ONSET_MS * 1e-3) / (WIDTH_MS * 1e-3), 0.0)
    return np.where(tau > 0, PEAK_HZ * np.exp(ORDER * np.log(np.maximum(tau, 1e-30) / ORDER) + ORDER - tau), 0.0)


# -- the problem's arrays (parent, jr_jax's venv) ------------------------------------------------------------------

def problem_arrays():
    """(weights (N, N), tract lengths mm (N, N), lead field (M, N), labels, where they came from)."""
    import brainunit as u

    from jr_jax import connectome
    if hasattr(connectome, "tvb"):
        con, src = connectome.tvb(76), "jr_jax.connectome.tvb(76)"
    else:
        import tvb_data
        con = connectome.load_tvb(os.path.join(os.path.dirname(tvb_data.__file__), "connectivity",
                                               "connectivity_76.zip"))
        src = "tvb_data connectivity_76.zip"
    try:
        from jr_jax import leadfield as _lf
        lead = np.asarray(u.get_mantissa(_lf.tvb_eeg65().matrix), dtype=np.float64)
        src += " + jr_jax.leadfield.tvb_eeg65()"
    except (ImportError, AttributeError):
        import tvb_data
        d = os.path.dirname(tvb_data.__file__)
        proj = np.load(os.path.join(d, "projectionMatrix", "projection_eeg_65_surface_16k.npy"))
        regions = np.loadtxt(os.path.join(d, "regionMapping", "regionMapping_16k_76.txt")).astype(int)
        lead = np.zeros((proj.shape[0], con.n_regions))
        for r in range(con.n_regions):                     # sum each region's vertices; NaN entries skipped
            lead[:, r] = np.nansum(proj[:, regions == r], axis=1)
        src += " + tvb_data projection_eeg_65_surface_16k (regionMapping_16k_76)"
    lead = np.where(np.isfinite(lead), lead, 0.0)
    kept = np.abs(lead).sum(axis=1) > 0                    # sensors with data (TVB's file: 63 of 65)
    dropped = f", {int((~kept).sum())} sensors without data dropped here" if not kept.all() else ""
    return (con.weights, np.asarray(con.lengths.to_decimal(u.mmeter)), lead[kept], con.labels, src + dropped)


def _load():
    z = np.load(os.environ[FILE_ENV])
    return z["weights"], z["lengths_mm"], z["lead"], int(z["stim"]), int(z["epoch_ms"])


# -- jr_jax ------------------------------------------------------------------------------------------------------

def jr_jax_run(method, repeats):
    import dataclasses

    import brainunit as u
    import jax
    import jax.numpy as jnp

    import jr_jax as jr
    from jr_jax import connectome, drives, network

    weights, lengths, lead, stim, epoch_ms = _load()
    con = connectome.Connectome(weights, lengths * u.mmeter)
    longest = float(lengths[weights > 0].max())
    net = network.network(con, coupling=START["G"], speed=START["speed"] * u.meter / u.second, lead_field=lead,
                          max_delay=longest / SLOWEST * u.ms)
    peak = np.zeros(con.n_regions)
    peak[stim] = PEAK_HZ
    drive = drives.constant(P_HZ * u.Hz) + drives.pulse(ONSET_MS * u.ms, peak * u.Hz, WIDTH_MS * u.ms, ORDER)
    rec = jr.Record(("eeg",), every=STEPS_PER_SAMPLE)

    def sensors(G, v, A):
        n = dataclasses.replace(net, coupling=G, speed=u.Quantity(v, unit=u.meter / u.second))
        res = jr.trace(jr.JRParams(A=A * u.mV), duration=epoch_ms * u.ms, dt=DT_MS * u.ms, drive=drive, network=n,
                       method=method, dtype=jnp.float32, record=rec)
        return n.sensors(res.eeg).to_decimal(u.mV)

    def loss(G, v, A, target):
        return jnp.mean((sensors(G, v, A) - target) ** 2)

    f32 = jnp.float32
    target = jax.block_until_ready(jax.jit(sensors)(f32(TARGET["G"]), f32(TARGET["speed"]),
                                                    jnp.full(con.n_regions, TARGET["A"], f32)))
    args = (f32(START["G"]), f32(START["speed"]), jnp.full(con.n_regions, START["A"], f32), target)
    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    t = time.perf_counter()
    compiled = vg.lower(*args).compile()
    compile_s = time.perf_counter() - t
    try:
        temp_mb = compiled.memory_analysis().temp_size_in_bytes / 2**20
    except Exception:  # noqa: BLE001 - a backend without memory analysis
        temp_mb = float("nan")
    reset, before = _reset_peak(), _rss_mb()[1]         # the calls' own peak, without the compiler's
    t = time.perf_counter()
    value, grads = jax.block_until_ready(compiled(*args))
    first_s = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t)
    g_G, g_v, g_A = (np.asarray(g) for g in grads)
    run_peak = _rss_mb()[0]
    return dict(compile_s=compile_s, first_run_s=first_s, **_stats(times), peak_mb=max(_PEAK[0], run_peak),
                grad_mb=run_peak - before, grad_mb_clean=reset, xla_temp_mb=temp_mb, loss=float(value),
                grads=dict(G=float(g_G), speed=float(g_v), A_norm=float(np.linalg.norm(g_A))),
                finite=bool(np.isfinite(value) and np.isfinite(g_G) and np.isfinite(g_v) and np.isfinite(g_A).all()),
                versions={"jax": jax.__version__, "jaxlib": __import__("jaxlib").__version__})


# -- neurofe -----------------------------------------------------------------------------------------------------

def neurofe_run(repeats):
    import importlib.metadata

    import torch

    import neurofe

    weights, lengths, lead, stim, epoch_ms = _load()
    n = weights.shape[0]
    torch.manual_seed(0)
    np.random.seed(0)
    sub = int(round(1.0 / DT_MS))                          # steps per TR (1 ms)

    def model_at(g, speed, A):
        params = neurofe.JRParams(
            g=neurofe.Par(g, g, 1.0, True),
            mu=neurofe.Par(speed - 0.1, speed - 0.1, 1.0, True),    # its speed is 0.1 + relu(mu)
            A=neurofe.Par(np.full((n, 1), A), np.full((n, 1), A), np.full((n, 1), 0.1), True),
            std_in=neurofe.Par(0.0),
            lm=neurofe.Par(lead))
        return neurofe.JansenRit(sc=weights, leadfield=lead, dist=lengths, step_size=DT_MS * 1e-3, tr=1e-3,
                                 batch_size=epoch_ms, fit_connectivity=False, param=params)

    # the stimulus (node, step in TR, TR, population): the pulse at each step's start, into the pyramidal input,
    # divided by its gain k (5 + relu(5) = 10 by default) so that k·u is the pulse in Hz
    t_s = (np.arange(epoch_ms * sub) * DT_MS * 1e-3).reshape(epoch_ms, sub).T
    ext = np.zeros((n, sub, epoch_ms, 3), np.float32)
    ext[stim, :, :, 0] = pulse_hz(t_s) / 10.0
    external = torch.tensor(ext)
    target_model = model_at(NEUROFE_G[1], TARGET["speed"], TARGET["A"])
    hx = target_model.get_initial_state() * 0
    hE = target_model.get_initial_delay_state() * 0
    with torch.no_grad():
        target = target_model(external, hx, hE)[0]["eeg"].clone()
    model = model_at(NEUROFE_G[0], START["speed"], START["A"])
    leaves = (model.param.g.val, model.param.mu.val, model.param.A.val)

    def call():
        for p in leaves:
            p.grad = None
        out, _ = model(external, hx, hE)
        loss = torch.mean((out["eeg"] - target) ** 2)
        loss.backward()
        return loss

    reset, before = _reset_peak(), _rss_mb()[1]
    t = time.perf_counter()
    value = call()
    first_s = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    g, mu, A = leaves
    run_peak = _rss_mb()[0]
    peak_mb = max(_PEAK[0], run_peak) if reset else run_peak
    st = _stats(times)
    finite = bool(torch.isfinite(value) and g.grad is not None and torch.isfinite(g.grad)
                  and A.grad is not None and torch.isfinite(A.grad).all())
    return dict(compile_s=max(first_s - st["median_s"], 0.0), first_run_s=first_s, **st, peak_mb=peak_mb,
                grad_mb=run_peak - before, grad_mb_clean=reset, loss=float(value),
                grads=dict(G=None if g.grad is None else float(g.grad),
                           speed=None if mu.grad is None else float(mu.grad),
                           A_norm=None if A.grad is None else float(A.grad.norm())),
                finite=finite, threads=torch.get_num_threads(),
                versions={"torch": torch.__version__, "neurofe": importlib.metadata.version("neurofe")})


# -- parent ------------------------------------------------------------------------------------------------------

CONFIGS = (("jr_jax", "rk4"), ("jr_jax", "euler"), ("neurofe", "euler"))
DELAYS = {"jr_jax": "exact, fractional (interpolated per stage), ∂/∂v", "neurofe": "whole 1 ms TRs, no ∂/∂v"}


def child(system, method, repeats):
    try:
        out = jr_jax_run(method, repeats) if system == "jr_jax" else neurofe_run(repeats)
    except Exception as e:  # noqa: BLE001 - a peer that fails is reported, not fatal
        out = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
    print(json.dumps(out))


def run_child(python, system, method, repeats, env):
    proc = subprocess.run([python, os.path.abspath(__file__), "--child", system, method, str(repeats)],
                          capture_output=True, text=True, timeout=3600, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1][:200]}


def _git_rev():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "?"


def main(args):
    import jax

    epoch_ms = QUICK_EPOCH_MS if args.quick else args.epoch_ms
    weights, lengths, lead, labels, source = problem_arrays()
    stim = labels.index(STIM_REGION) if STIM_REGION in labels else 0
    tmp = tempfile.TemporaryDirectory()                  # removed when main returns
    path = os.path.join(tmp.name, "w6.npz")
    np.savez(path, weights=weights, lengths_mm=lengths, lead=lead, stim=stim, epoch_ms=epoch_ms)
    env = dict(os.environ, **{FILE_ENV: path})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                    env.get("PYTHONPATH")) if p)
    conn = weights > 0
    print(f"# W6: value and gradient of a sensor ERP loss, {weights.shape[0]}-region network with delays"
          f"{' (--quick: a smoke check, not a measurement)' if args.quick else ''}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; command: "
          f"{' '.join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv])}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; python {platform.python_version()}, "
          f"JAX backend {jax.default_backend()}; jr_jax at {_git_rev()}")
    print(f"problem: {source}; {weights.shape[0]} regions, {int(conn.sum())} connections, tract lengths "
          f"{lengths[conn].min():.1f}–{lengths[conn].max():.1f} mm (delays up to "
          f"{lengths[conn].max() / START['speed']:.1f} ms at {START['speed']} m/s); {lead.shape[0]} sensors; epoch "
          f"{epoch_ms} ms, dt {DT_MS} ms ({int(round(epoch_ms / DT_MS))} steps), float32; pulse into {labels[stim]}; "
          f"MSE of the sensor EEG sampled every 1 ms; gradient in G, v and A (one per region); "
          f"{args.repeats} timed repeats")
    rows = []
    for system, method in CONFIGS:
        python = sys.executable if system == "jr_jax" else args.peer_python
        if system != "jr_jax" and not os.path.exists(python):
            res = {"error": f"not measured: no peer python at {python} (see this script's docstring; "
                            f"--peer-python PATH)"}
        else:
            res = run_child(python, system, method, args.repeats, env)
        print(f"  {system} {method}: {'error' if 'error' in res else 'done'}", file=sys.stderr)
        rows.append((system, method, res))
    versions = {}
    for _, _, r in rows:
        versions.update(r.get("versions", {}))
    ref = next((r for s, _, r in rows if s == "neurofe" and "error" not in r), None)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
          + (f"; torch threads {ref['threads']}" if ref else ""))
    print("\n| tool | method | delays | compile (s) | value and gradient (s): median (min–max) | peak RSS (MB) | "
          "the calls' peak above their start (MB) | neurofe / this |")
    print("|---|---|---|---|---|---|---|---|")
    for system, method, r in rows:
        if "error" in r:
            print(f"| {system} | {method} | {DELAYS[system]} | — | — | — | — | {r['error']} |")
            continue
        ratio = f"{ref['median_s'] / r['median_s']:.1f}×" if ref else "—"
        extra = f", XLA temp {r['xla_temp_mb']:.0f}" if "xla_temp_mb" in r else ""
        extra += "" if r.get("grad_mb_clean") else " (compilation included: VmHWM could not be reset)"
        print(f"| {system} | {method} | {DELAYS[system]} | {r['compile_s']:.2f} | {r['median_s']:.3f} "
              f"({r['min_s']:.3f}–{r['max_s']:.3f}) | {r['peak_mb']:.0f} | {r['grad_mb']:.0f}{extra} | {ratio} |")
    print("\nchecks (loss; ∂/∂G, ∂/∂v, |∂/∂A|; all finite):")
    for system, method, r in rows:
        if "error" not in r:
            g = r["grads"]
            fmt = (lambda x: "none" if x is None else f"{x:.4g}")
            print(f"  {system} {method}: loss {r['loss']:.5g}; {fmt(g['G'])}, {fmt(g['speed'])}, {fmt(g['A_norm'])}; "
                  f"{r['finite']}; first run after compile {r['first_run_s']:.3f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--repeats", type=int, default=5, help="timed calls after the first (default 5)")
        ap.add_argument("--quick", action="store_true", help=f"a {QUICK_EPOCH_MS} ms epoch: a smoke check")
        ap.add_argument("--epoch-ms", type=int, default=EPOCH_MS, help=f"epoch length in ms (default {EPOCH_MS})")
        ap.add_argument("--peer-python", default=PEER_PYTHON, help=f"neurofe's python (default {PEER_PYTHON})")
        main(ap.parse_args())
