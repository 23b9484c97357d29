"""The GPU path checked in one unattended run: correctness against the CPU, the memory-sized chunk, W5, W2 and W4.

Run on a machine with an NVIDIA GPU (``pip install -e ".[cuda12]"``), as one command:

    python benchmarks/gpu_check.py --out $OUT/gpu_check.json

It writes the JSON results (machine, device, versions, date, command, each step's numbers and status) after every
step, and a Markdown summary next to it (``gpu_check.md``); a step that fails is recorded with its error and the
run goes on. ``--budget-s`` (default 450) bounds the run: a heavy step that would not fit in what is left is
recorded as skipped, so that the whole run is sized for under 8 minutes on an H200. ``--only`` reruns some steps.
``--smoke`` runs every step at tiny sizes; on a machine without a GPU the CPU stands in for it (what
tests/test_gpu_check.py runs).

The steps:

* ``batch``, ``network``: W2's 1024-set batch (``jr.simulate``, float32, RK4, 2 s) and a 16-region network (the
  example connectome, W4's coupling and speed, 2 s) on the GPU and on the CPU. They agree to float32 rounding when,
  for the set (or region) that differs most and for the median one, |GPU − CPU| ≤ ULP_MARGIN × |CPU′ − CPU| +
  TOL_FLOOR × scale, where CPU′ is the CPU run with A and B one float32 ulp higher (how far float32 rounding alone
  moves each set: near a bifurcation a set's spike times move, elsewhere a few ulps) and scale is the largest |CPU|
  value of the run.
* ``resume``: a sweep whose first chunks are written on the CPU (``max_chunks``) and completed on the GPU from the
  same folder: the loaded rows are bitwise those of a CPU-only sweep, the rest agree with a GPU-only sweep, and each
  feature of the whole result agrees with the GPU-only sweep under the same tolerance.
* ``chunk``: the chunk the sweep sizes from the device's free memory (XLA's accounting of a 256-set probe, as
  ``jr.sweep`` does), with memory-heavy features (the EEG kept at every step, 16 s segments) so that memory and
  not the 2^20 cap bounds it: the sweep's own choice equals ``chunk_for_memory`` of the probe, the chosen chunk's
  compiled buffers fit in the free memory and it runs, and XLA's memory analysis of the next multiple of 256 sets
  (compiled, not run) exceeds the free memory; ``oom`` runs that one, last.
* ``w5_small``, ``w5_large``: W5 (peers.py) through ``jr.sweep``: wall time end to end (compilation included) and
  column-steps per second (sets × steps / s; the 10^5 run twice, the second without compilation); the 10^6 run
  only if the 10^5 one predicts that it fits the budget.
* ``W2``, ``W4``: jr_jax's rows of peers.py on the GPU (at most 3 timed repeats each).
* ``oom``: the over-size chunk run: XLA's RESOURCE_EXHAUSTED is expected; then a small run checks that the GPU still
  works (``--no-oom`` leaves it out).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]    # peers.py beside it; jr_jax from this checkout, installed or not
import peers  # noqa: E402  (the workloads' definitions)

ULP_MARGIN = 10.0
TOL_FLOOR = 1e-5
TOLERANCE = (f"per quantity, for the worst and for the median set: |GPU - CPU| <= {ULP_MARGIN:g} x |CPU(A, B + 1 "
             f"float32 ulp) - CPU| + {TOL_FLOOR:g} x max|CPU|")
GOAL_RATE, GOAL_1E6_S = 1e10, 300.0
FULL = dict(batch_sets=peers.N_SETS, batch_s=2.0, net_regions=16, net_s=2.0, resume_sets=1024, resume_chunk=256,
            resume_cpu_chunks=2, resume_s=2.0, heavy_segment_s=16.0, heavy_fmax=10.0, w5_sets=peers.W5_SETS,
            w5_s=peers.W5_SECONDS, w2_sets=peers.N_SETS, w4_regions=peers.W4_REGIONS, w4_s=peers.W4_SECONDS,
            max_repeats=3)
SMOKE = dict(batch_sets=64, batch_s=0.2, net_regions=4, net_s=0.2, resume_sets=64, resume_chunk=16,
             resume_cpu_chunks=2, resume_s=0.2, heavy_segment_s=0.2, heavy_fmax=10.0, w5_sets=(64, 128), w5_s=0.2,
             w2_sets=16, w4_regions=4, w4_s=0.2, max_repeats=1)
STAND_IN_FREE_SETS = 700
"""On a CPU (no free memory reported) the chunk step pretends that this many probe sets' worth of memory is free."""


class Run:
    """The state of one check: options, sizes, the two devices, the results so far and the clock."""

    def __init__(self, args):
        import jax
        self.args, self.t0 = args, time.perf_counter()
        self.size = SMOKE if args.smoke else FULL
        self.gpu_present = jax.default_backend() == "gpu"
        self.dev, self.cpu = jax.devices()[0], jax.devices("cpu")[0]
        self.tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        self.results = {}
        self.shared = {}

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.t0)


# -- helpers ----------------------------------------------------------------------------------------------------

def on(device):
    import jax
    return jax.default_device(device)


def drive():
    import brainunit as u
    import jr_jax as jr
    return jr.drives.white_noise(peers.MU * u.Hz, peers.SIGMA * u.Hz * u.second ** 0.5)


def params(A, B):
    import brainunit as u
    import jr_jax as jr
    return jr.JRParams(A=np.asarray(A, np.float32) * u.mV, B=np.asarray(B, np.float32) * u.mV)


def ulp_up(x):
    x = np.asarray(x, np.float32)
    return np.nextafter(x, np.float32(np.inf))


def agreement(dev, ref, nudged, set_axis: int) -> dict:
    """How far ``dev`` is from ``ref``, per set (the largest difference over the other axes), against how far
    ``nudged`` (``ref``'s inputs one ulp off) is from it; see the module docstring."""
    dev, ref, nudged = (np.asarray(x, np.float64) for x in (dev, ref, nudged))
    finite = np.isfinite(ref) & np.isfinite(dev)
    axes = tuple(i for i in range(ref.ndim) if i != set_axis)
    d = np.where(finite, np.abs(dev - ref), 0.0).max(axis=axes, initial=0.0)
    s = np.where(finite & np.isfinite(nudged), np.abs(nudged - ref), 0.0).max(axis=axes, initial=0.0)
    scale = float(np.abs(ref[np.isfinite(ref)]).max(initial=0.0))
    floor = TOL_FLOOR * scale
    tol_worst, tol_median = ULP_MARGIN * float(np.max(s)) + floor, ULP_MARGIN * float(np.median(s)) + floor
    same_nonfinite = bool(np.array_equal(np.isfinite(dev), np.isfinite(ref)))
    worst, median = float(np.max(d)), float(np.median(d))
    return {"scale": scale, "max_abs": worst, "max_rel": worst / scale if scale else 0.0, "median_set_abs": median,
            "ulp_nudge_max_abs": float(np.max(s)), "ulp_nudge_median_set_abs": float(np.median(s)),
            "tolerance_worst": tol_worst, "tolerance_median": tol_median, "same_nonfinite": same_nonfinite,
            "bitwise": bool(np.array_equal(dev, ref, equal_nan=True)),
            "passed": bool(worst <= tol_worst and median <= tol_median and same_nonfinite)}


def difference(r: dict, unit: str) -> str:
    return (f"largest difference GPU vs CPU {r['max_abs']:.3g} {unit} ({r['max_rel']:.2g} of the scale "
            f"{r['scale']:.3g} {unit}; tolerance {r['tolerance_worst']:.3g}), median set {r['median_set_abs']:.3g} "
            f"(tolerance {r['tolerance_median']:.3g})")


def features_of(res) -> dict:
    import brainunit as u
    return {k: np.asarray(v.mantissa if isinstance(v, u.Quantity) else v) for k, v in res.features.items()}


def features_agree(dev: dict, ref: dict, nudged: dict) -> dict:
    per = {k: agreement(dev[k], ref[k], nudged[k], 0) for k in ref if k != "diverged"}
    per["diverged"] = {"differing_sets": int(np.sum(dev["diverged"] != ref["diverged"])),
                       "passed": bool(np.array_equal(dev["diverged"], ref["diverged"]))}
    return {"passed": all(r["passed"] for r in per.values()),
            "worst_feature_rel": max((r["max_rel"], k) for k, r in per.items() if "max_rel" in r),
            "per_feature": per}


# -- (a) correctness --------------------------------------------------------------------------------------------

def step_batch(run: Run) -> dict:
    """W2's batch of sets through jr.simulate on the GPU and the CPU."""
    import brainunit as u
    import jax
    import jr_jax as jr
    n, dur = run.size["batch_sets"], run.size["batch_s"]
    A, B = peers.design(n)

    def eeg(device, A, B):
        with on(device):
            t = time.perf_counter()
            res = jr.simulate(params(A, B), duration=dur * u.second, drive=drive(), key=jax.random.key(0))
            out = np.asarray(res.eeg.to_decimal(u.mV))
            return out, time.perf_counter() - t

    (ref, t_cpu), (dev, t_dev), (nudged, _) = eeg(run.cpu, A, B), eeg(run.dev, A, B), eeg(run.cpu, ulp_up(A), ulp_up(B))
    r = agreement(dev, ref, nudged, set_axis=1)
    r.update(sets=n, steps=ref.shape[0], first_call_s={"device": t_dev, "cpu": t_cpu})
    r["summary"] = f"{n} sets x {ref.shape[0]} steps: {difference(r, 'mV')}"
    return r


def step_network(run: Run) -> dict:
    """A network of the example connectome through jr.simulate on the GPU and the CPU."""
    import brainunit as u
    import jax
    import jr_jax as jr
    from jr_jax import connectome, network
    n, dur = run.size["net_regions"], run.size["net_s"]
    net = network.network(connectome.example(n), coupling=peers.W4_G, speed=peers.W4_SPEED * u.meter / u.second)

    def eeg(device, A):
        with on(device):
            res = jr.simulate(jr.JRParams(A=float(A) * u.mV), duration=dur * u.second, drive=drive(),
                              key=jax.random.key(0), network=net)
            return np.asarray(res.eeg.to_decimal(u.mV))

    A = np.float32(peers.A0)
    ref, dev, nudged = eeg(run.cpu, A), eeg(run.dev, A), eeg(run.cpu, ulp_up(A))
    r = agreement(dev, ref, nudged, set_axis=1)
    r.update(regions=n, steps=ref.shape[0])
    r["summary"] = f"{n} regions x {ref.shape[0]} steps: {difference(r, 'mV')}"
    return r


def step_resume(run: Run) -> dict:
    """A sweep begun on the CPU (max_chunks) and completed on the GPU from the same folder."""
    import brainunit as u
    import jax
    import jr_jax as jr
    n, chunk, k, dur = (run.size[x] for x in ("resume_sets", "resume_chunk", "resume_cpu_chunks", "resume_s"))
    A, B = peers.design(n)
    folder = run.tmp / "resume"

    def sweep(device, A, B, **kw):
        with on(device):
            return jr.sweep(params(A, B), duration=dur * u.second, transient=0.5 * u.second, drive=drive(),
                            key=jax.random.key(0), **kw)

    part = sweep(run.cpu, A, B, out_dir=folder, max_chunks=k, chunk_size=chunk)
    resumed = sweep(run.dev, A, B, out_dir=folder)             # the stored chunk size
    dev_only, cpu_only = sweep(run.dev, A, B, chunk_size=chunk), sweep(run.cpu, A, B, chunk_size=chunk)
    nudged = sweep(run.cpu, ulp_up(A), ulp_up(B), chunk_size=chunk)
    fr, fd, fc, fn = (features_of(x) for x in (resumed, dev_only, cpu_only, nudged))
    cut = k * chunk
    cpu_rows = all(np.array_equal(fr[x][:cut], fc[x][:cut], equal_nan=True) for x in fr)
    dev_rows = features_agree({x: v[cut:] for x, v in fr.items()}, {x: v[cut:] for x, v in fd.items()},
                              {x: v[cut:] for x, v in fn.items()})
    dev_rows_bitwise = all(np.array_equal(fr[x][cut:], fd[x][cut:], equal_nan=True) for x in fr)
    whole = features_agree(fr, fd, fn)
    ok = (int(part.computed.sum()) == cut and not part.complete and resumed.complete and
          resumed.chunk_size == chunk and cpu_rows and dev_rows["passed"] and whole["passed"])
    return {"passed": bool(ok), "sets": n, "chunk": chunk, "chunks_on_cpu": k, "cpu_rows_bitwise": cpu_rows,
            "device_rows_bitwise": dev_rows_bitwise, "device_rows_agree": dev_rows["passed"],
            "resumed_vs_device_only": whole, "compared": "every feature of every set (psd at every frequency)",
            "summary": f"{k} of {-(-n // chunk)} chunks on the CPU: loaded rows bitwise {cpu_rows}, GPU rows bitwise "
                       f"{dev_rows_bitwise}; worst feature vs GPU-only {whole['worst_feature_rel'][1]} "
                       f"{whole['worst_feature_rel'][0]:.2g} of its scale"}


# -- (b) the chunk sized by free memory -------------------------------------------------------------------------

def heavy_setup(run: Run, n: int) -> tuple:
    """(JRParams of n sets, the sweep's keyword arguments) of the chunk step: the EEG kept at every step."""
    import brainunit as u
    import jax
    from jr_jax import monitors
    seg = run.size["heavy_segment_s"]
    feats = monitors.Features(decimate=peers.DT * u.second, segment=seg * u.second,
                              fmax=run.size["heavy_fmax"] * u.Hz)
    A, B = peers.w5_design(n)
    return params(A, B), dict(duration=seg * u.second, transient=0 * u.second, features=feats, drive=drive(),
                              key=jax.random.key(0))


def chunk_bytes(the_params, n_sets: int, *, duration, transient, features, drive, key, dt=None, method="rk4",
                dtype="float32") -> int:
    """XLA's accounting (arguments + outputs + temporaries) of ``sweeps.sweep_chunk`` compiled for ``n_sets`` sets,
    composed from public functions as ``jr.sweep`` composes its probe (sweeps.py keeps that step inside sweep)."""
    import brainunit as u
    import jr_jax as jr
    from jr_jax import batches, checks, monitors, solvers, sweeps
    dt_s, dur_s, tr_s, dtype, key = checks.run_settings(duration, jr.DEFAULT_DT if dt is None else dt, transient,
                                                        dtype, drive, key)
    every, seg_len, n_seg = features.layout(dt_s, dur_s)
    fs_hz = 1.0 / (every * dt_s)
    keep = monitors.n_freq(seg_len, fs_hz, float(features.fmax.to_decimal(u.Hz)))
    n = batches.batch_size(the_params, drive)
    cparams, cdrive = sweeps.canonical_leaves(the_params, drive, np.dtype(dtype))
    idx = np.arange(n_sets) % n
    args = batches.take((cparams, cdrive, batches.initial_states(None, n, np.dtype(dtype))), idx, n)
    static = dict(solver=solvers.solver(method), n_tr=checks.whole_steps("transient", tr_s, dt_s), every=every,
                  seg_len=seg_len, n_seg=n_seg, keep=keep, fs_hz=fs_hz, independent=False, dtype=dtype)
    m = sweeps.sweep_chunk.lower(*args, idx.astype(np.int32), key, dt_s, **static).compile().memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def step_chunk(run: Run) -> dict:
    """The chunk chosen from the free memory runs; the next size whose buffers exceed the free memory is found."""
    import jax
    import jr_jax as jr
    from jr_jax import sweeps
    probe = sweeps.PROBE_SETS
    with on(run.dev):
        p, kw = heavy_setup(run, probe)
        m1, m2 = chunk_bytes(p, probe, **kw), chunk_bytes(p, 2 * probe, **kw)
        bps = m1 / probe
        free = sweeps.free_device_bytes()
        stand_in = free is None
        free = int(bps * STAND_IN_FREE_SETS) if stand_in else free
        n_dev = jax.device_count()
        chosen = sweeps.chunk_for_memory(bps, free, n_dev)
        per_set = (m2 - m1) / probe                                   # the buffers' growth per set
        nxt = int(-(-(free - (m1 - per_set * probe)) // per_set))
        nxt = -(-nxt // probe) * probe
        mem_next = chunk_bytes(p, nxt, **kw)
        for _ in range(8):                                            # the linear guess fell short
            if mem_next > free:
                break
            nxt += probe
            mem_next = chunk_bytes(p, nxt, **kw)
        mem_chosen = chunk_bytes(p, chosen, **kw)
        p_big, kw_big = heavy_setup(run, nxt)
        patch = (contextlib.nullcontext() if not stand_in else
                 _patched(sweeps, "free_device_bytes", lambda: free))
        with patch:
            own = jr.sweep(p_big, out_dir=run.tmp / "probe", max_chunks=0, check_budget=False, **kw_big).chunk_size
        t = time.perf_counter()
        res = jr.sweep(heavy_setup(run, chosen)[0], chunk_size=chosen, check_budget=False, **kw)
        ran_s = time.perf_counter() - t
    finite = float(np.isfinite(np.asarray(res.features["std"].mantissa)).mean())
    stats = run.dev.memory_stats() or {}
    run.shared["oom"] = (nxt, mem_next, free)
    steps = round(run.size["heavy_segment_s"] / peers.DT)
    same = abs(own - chosen) <= probe * n_dev           # the free memory may move between the two readings
    ok = same and mem_chosen <= free and mem_next > free and finite > 0.99 and res.chunk_size == chosen
    return {"passed": bool(ok), "free_bytes": free, "free_is_stand_in": stand_in, "devices": n_dev,
            "probe_bytes_per_set": bps, "bytes_per_extra_set": per_set, "memory_fraction": sweeps.MEMORY_FRACTION,
            "chosen_chunk": chosen, "sweep_chose": own, "chosen_chunk_bytes": mem_chosen,
            "next_chunk": nxt, "next_chunk_bytes": mem_next, "next_exceeds_free": mem_next > free,
            "chosen_ran_s": ran_s, "chosen_column_steps_per_s": chosen * steps / ran_s, "finite_share": finite,
            "peak_bytes_in_use": stats.get("peak_bytes_in_use"), "steps_per_set": steps,
            "summary": f"free {free / 2**30:.3g} GiB{' (stand-in)' if stand_in else ''}, {bps / 1e3:.3g} kB/set: "
                       f"chunk {chosen:,} ({mem_chosen / 2**30:.3g} GiB; the sweep chose {own:,}) ran in "
                       f"{ran_s:.3g} s (compilation included); the next, {nxt:,}, needs {mem_next / 2**30:.3g} GiB"}


@contextlib.contextmanager
def _patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def step_oom(run: Run) -> dict:
    """The over-size chunk run: the allocation is expected to fail; the device must still work after it."""
    import jax
    import jax.numpy as jnp
    import jr_jax as jr
    if "oom" not in run.shared:
        raise RuntimeError("the chunk step did not find the over-size chunk (see its error)")
    nxt, mem_next, free = run.shared["oom"]
    p, kw = heavy_setup(run, nxt)
    error = None
    with on(run.dev):
        try:
            jr.sweep(p, chunk_size=nxt, check_budget=False, **kw)
        except Exception as e:   # noqa: BLE001 - XLA's XlaRuntimeError, whatever its module
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        usable = float(jax.block_until_ready(jnp.arange(10.0).sum())) == 45.0
    exhausted = error is not None and "RESOURCE_EXHAUSTED" in error
    out = {"next_chunk": nxt, "next_chunk_bytes": mem_next, "free_bytes": free, "error": error,
           "resource_exhausted": exhausted, "device_usable_after": usable}
    if not run.gpu_present:
        out.update(status="n/a", summary=f"{nxt:,} sets ran on the CPU (no allocator limit to exceed)")
    else:
        out.update(passed=exhausted and usable, summary=f"{nxt:,} sets: {'RESOURCE_EXHAUSTED' if exhausted else error}"
                                                        f"; device usable after: {usable}")
    return out


# -- (c) throughput ---------------------------------------------------------------------------------------------

def w5_run(run: Run, n: int, twice: bool) -> dict:
    import brainunit as u
    import jax
    import jr_jax as jr
    A, B = peers.w5_design(n)
    steps = round(run.size["w5_s"] / peers.DT)
    times, res = [], None
    with on(run.dev):
        for i in range(2 if twice else 1):     # the second call: the chunk of the first, so no probe is compiled
            t = time.perf_counter()
            res = jr.sweep(params(A, B), duration=run.size["w5_s"] * u.second, transient=0 * u.second,
                           drive=drive(), key=jax.random.key(0), chunk_size=res.chunk_size if i else None)
            times.append(time.perf_counter() - t)
    finite = float(np.isfinite(np.asarray(res.features["mean"].mantissa)).mean())
    out = {"sets": n, "steps": steps, "chunk": res.chunk_size, "end_to_end_s": times[0],
           "column_steps_per_s_end_to_end": n * steps / times[0], "finite_share": finite,
           "status": "ok" if finite > 0.99 else "fail"}
    if twice:
        out.update(run_s=times[1], compile_s=max(times[0] - times[1], 0.0), column_steps_per_s=n * steps / times[1])
    rate = out.get("column_steps_per_s", out["column_steps_per_s_end_to_end"])
    out["summary"] = f"{n:,} sets x {steps:,} steps: {times[0]:.3g} s end to end, {rate:.3g} column-steps/s"
    return out


def step_w5_small(run: Run) -> dict:
    out = w5_run(run, run.size["w5_sets"][0], twice=True)
    run.shared["w5"] = out
    return out


def w5_large_need(run: Run) -> float:
    """Seconds the larger W5 run is predicted to take (the smaller run's compile time plus its run time scaled)."""
    small = run.shared.get("w5")
    if small is None:
        return float("inf")
    n0, n1 = run.size["w5_sets"]
    return small["compile_s"] + small["run_s"] * n1 / n0 + 30.0


def step_w5_large(run: Run) -> dict:
    out = w5_run(run, run.size["w5_sets"][1], twice=False)
    small = run.shared["w5"]
    # the smaller run measured the compilation; without it this run's rate is its steady rate
    run_s = max(out["end_to_end_s"] - small["compile_s"], 1e-9)
    out["column_steps_per_s_less_compile"] = out["sets"] * out["steps"] / run_s
    rate = max(out["column_steps_per_s_less_compile"], small["column_steps_per_s"])
    out["goals"] = {f"column-steps/s >= {GOAL_RATE:.0e}": rate >= GOAL_RATE,
                    f"{out['sets']:,} sets end to end < {GOAL_1E6_S:g} s": out["end_to_end_s"] < GOAL_1E6_S}
    out["summary"] += f" ({out['column_steps_per_s_less_compile']:.3g} less the compilation)"
    return out


def peers_rows(run: Run, workload: str) -> dict:
    """jr_jax's rows of ``workload`` from peers.py, on the device (sizes patched down in smoke mode)."""
    from jr_jax import batches
    timed, design, seconds = peers._timed, peers.design, peers.W4_SECONDS
    parts = os.environ.get(batches.PARTS_ENV)
    cap = run.size["max_repeats"]
    peers._timed = lambda call, repeats: timed(call, min(repeats, cap))
    if run.args.smoke:
        peers.design = lambda n=run.size["w2_sets"]: design(n)
        peers.W4_SECONDS = run.size["w4_s"]
    try:
        if workload == "W4":
            peers.write_w4_connectome(str(run.tmp), run.size["w4_regions"])
        with on(run.dev):
            rows = peers.jr_jax_runs(workload)
    finally:
        peers._timed, peers.design, peers.W4_SECONDS = timed, design, seconds
        if parts is None:
            os.environ.pop(batches.PARTS_ENV, None)     # peers' W2 sets it for its "one part" rows
        else:
            os.environ[batches.PARTS_ENV] = parts
    rows = {workload: rows} if "median_s" in rows else rows
    text = "; ".join(f"{k.replace('|', ' ')}: median {r['median_s']:.4g} s" for k, r in rows.items())
    return {"status": "ok", "rows": rows, "summary": text}


# -- the run ----------------------------------------------------------------------------------------------------

STEPS = (  # name, function, seconds that must be left to start it (a number, or a function of the run)
    ("batch", step_batch, 0.0),
    ("network", step_network, 0.0),
    ("resume", step_resume, 0.0),
    ("chunk", step_chunk, 60.0),
    ("w5_small", step_w5_small, 60.0),
    ("w5_large", step_w5_large, w5_large_need),
    ("W2", lambda run: peers_rows(run, "W2"), 60.0),
    ("W4", lambda run: peers_rows(run, "W4"), 120.0),
    ("oom", step_oom, 20.0),
)


def environment(run: Run) -> dict:
    import jax
    import jaxlib
    import jr_jax as jr
    from jr_jax import devices
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        devices.check_gpu_extra()
    smi = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    git = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = subprocess.run(["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=20).stdout.strip() or None
    return {"command": shlex.join(["python"] + sys.argv), "date": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"), "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                         "python": platform.python_version()},
            "jax": jax.__version__, "jaxlib": jaxlib.__version__, "jr_jax": jr.__version__, "git": git,
            "device": devices.describe(), "gpu": run.gpu_present, "cuda_plugin": devices.cuda_plugin(),
            "gpu_extra_warning": [str(w.message) for w in caught] or None, "nvidia_smi": smi,
            "xla_env": {k: v for k, v in os.environ.items() if k.startswith(("XLA_", "JAX_"))},
            "smoke": run.args.smoke, "budget_s": run.args.budget_s, "sizes": run.size, "tolerance": TOLERANCE}


def do_step(run: Run, name, fn, need) -> dict:
    need_s = need(run) if callable(need) else need
    if need_s == float("inf"):
        return {"status": "skipped", "reason": "its time is predicted from an earlier step, which did not run"}
    if need_s > 0 and run.left() < need_s:
        return {"status": "skipped", "reason": f"needs about {need_s:.0f} s; {max(run.left(), 0):.0f} s of the "
                                               f"{run.args.budget_s:g} s budget left"}
    t = time.perf_counter()
    try:
        out = fn(run)
        out.setdefault("status", "pass" if out.pop("passed", True) else "fail")
    except Exception as e:   # noqa: BLE001 - recorded; the run goes on to the next step
        out = {"status": "error", "error": f"{type(e).__name__}: {e}"[:2000],
               "traceback": traceback.format_exc()[-4000:]}
    out["seconds"] = time.perf_counter() - t
    return out


def markdown(results: dict) -> str:
    d = results["device"]
    lines = [f"# GPU check {results['date']}", "",
             f"`{results['command']}`: {', '.join(d['kinds'])} ({d['backend']}, {d['count']} device(s)), "
             f"jax {results['jax']}, jr_jax {results['jr_jax']} ({results['git']}), "
             f"{'smoke sizes' if results['smoke'] else 'full sizes'}, total {results.get('total_s', 0):.0f} s.", ""]
    if not results["gpu"]:
        lines += ["**No GPU**: the CPU stood in for it.", ""]
    lines += [f"Tolerance: {results['tolerance']}.", "", "| step | status | s | result |", "|---|---|---|---|"]
    for name, r in results["steps"].items():
        text = r.get("summary") or r.get("reason") or r.get("error", "")
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', 0):.1f} | {text.replace('|', '/')} |")
    goals = results["steps"].get("w5_large", {}).get("goals")
    if goals:
        lines += ["", "W5 goals: " + "; ".join(f"{k}: {'met' if v else 'not met'}" for k, v in goals.items())]
    return "\n".join(lines) + "\n"


def write(results: dict, out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    os.replace(tmp, out)
    out.with_suffix(".md").write_text(markdown(results))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_results.json", help="the JSON results file (a .md summary beside it)")
    ap.add_argument("--budget-s", type=float, default=450.0, help="skip heavy steps that would end after this")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes; the CPU stands in where there is no GPU")
    ap.add_argument("--only", help="comma-separated step names to run (default: all): " +
                    ", ".join(s[0] for s in STEPS))
    ap.add_argument("--no-oom", action="store_true", help="leave out the run that exhausts the device's memory")
    args = ap.parse_args(argv)
    only = None if args.only is None else [s.strip() for s in args.only.split(",")]
    unknown = sorted(set(only or ()) - {s[0] for s in STEPS})
    if unknown:
        ap.error(f"--only: unknown steps {unknown}; the steps are {[s[0] for s in STEPS]}")
    run = Run(args)
    try:
        return check(run, only)
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)


def check(run: Run, only) -> int:
    args, out = run.args, Path(run.args.out)
    run.results = environment(run) | {"steps": {}}
    print(f"{run.results['device']['kinds']} ({run.results['device']['backend']}), jax {run.results['jax']}"
          + ("" if run.gpu_present else ": no GPU, the CPU stands in for it"), flush=True)
    if not run.gpu_present and not args.smoke:
        run.results["error"] = "no GPU: JAX's default backend is the CPU (run with --smoke to check on a CPU)"
        write(run.results, out)
        print(run.results["error"], file=sys.stderr)
        return 2
    for name, fn, need in STEPS:
        if (only is not None and name not in only) or (name == "oom" and args.no_oom):
            continue
        r = do_step(run, name, fn, need)
        run.results["steps"][name] = r
        run.results["total_s"] = time.perf_counter() - run.t0
        write(run.results, out)
        print(f"{name}: {r['status']} ({r.get('seconds', 0):.1f} s) "
              f"{r.get('summary') or r.get('reason') or r.get('error', '')}", flush=True)
    print(f"\n{markdown(run.results)}\nwritten: {out} and {out.with_suffix('.md')}")
    return 0 if all(r["status"] not in ("fail", "error") for r in run.results["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
