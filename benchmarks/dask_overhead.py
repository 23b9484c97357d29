"""Scale-out overhead: one sweep through a Dask LocalCluster of two single-threaded worker processes against the
in-process jr.sweep (which splits each chunk over the cores itself), on the same machine in the same run.

Each set: --duration seconds (default 2 s, one feature segment) after a 0.5 s transient at dt = 0.5 ms, the
brainmass tutorial's noisy drive (mean 120 Hz, σ = 30 Hz·√s), common random numbers, RK4, float32, (A, B) varied,
features only, 10^5 sets in chunks of 4096 (the CPU default). Both paths write their chunks into a fresh out_dir, so
that the difference is the engine's. Each Dask worker computes its chunk on one core (--worker-parts 1: the Dask
runs are started with JR_JAX_CPU_PARTS=1, and the sweep's specification, which keeps the calls per chunk, passes that
on to the workers): two workers fill the two cores as the in-process sweep's two threads do.

Each path runs twice: the first run includes compilation (for Dask, the workers' import of JAX and their own
compilation; the cluster's start is reported apart), the second is warm (new values, same shapes). The features of
the two paths are compared bit for bit; they are expected equal only when the Dask runs split a chunk into as many
calls as the in-process sweep (--worker-parts equal to the cores), since a set's mean and SD can differ in the last
float32 bits between splits. Reported as JSON (stdout, or --out FILE): wall times, sets/s, column-steps/s,
the ratio Dask / in-process of each run, the machine, the date and the command.

Run: python benchmarks/dask_overhead.py [--quick] [--sets N] [--duration S] [--chunk-size N] [--worker-parts N]
[--out FILE]
(--quick: 2000 sets in chunks of 250, to check that it runs.)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import brainunit as u
import jax
import numpy as np

import jr_jax as jr

DT_MS, TRANSIENT_S = 0.5, 0.5


def design(n: int, seed: int):
    """n random (A, B) sets; another seed gives new values of the same shapes (a warm run)."""
    rng = np.random.default_rng(seed)
    return jr.JRParams(A=rng.uniform(2.5, 4.5, n) * u.mV, B=rng.uniform(15, 30, n) * u.mV)


def timed(n: int, seed: int, folder: Path, **kw) -> tuple[float, jr.SweepResult]:
    t = time.perf_counter()
    res = jr.sweep(design(n, seed), out_dir=folder, **kw)
    return time.perf_counter() - t, res


def run(args) -> dict:
    from dask.distributed import Client, LocalCluster

    import dask
    import distributed

    kw = dict(duration=args.duration * u.second, transient=TRANSIENT_S * u.second, dt=DT_MS * u.ms,
              drive=jr.drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5), key=jax.random.key(0),
              chunk_size=args.chunk_size)
    steps = round((args.duration + TRANSIENT_S) / (DT_MS * 1e-3))
    out = {"command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                       "jax": jax.__version__, "backend": jax.default_backend(), "dask": dask.__version__,
                       "distributed": distributed.__version__},
           "workload": {"sets": args.sets, "duration_s": args.duration, "transient_s": TRANSIENT_S, "dt_ms": DT_MS,
                        "steps_per_set": steps, "method": "rk4", "dtype": "float32", "features_only": True},
           "runs": {}}
    with tempfile.TemporaryDirectory(prefix="dask_overhead_") as tmp:
        tmp = Path(tmp)
        results = {}
        for seed in (1, 2):
            results[("in_process", seed)] = timed(args.sets, seed, tmp / f"in_process_{seed}", **kw)
        t = time.perf_counter()
        before = os.environ.get(jr.batches.PARTS_ENV)
        os.environ[jr.batches.PARTS_ENV] = str(args.worker_parts)     # kept in the Dask sweeps' specification
        try:
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                out["dask_cluster_start_s"] = round(time.perf_counter() - t, 3)
                for seed in (1, 2):
                    results[("dask", seed)] = timed(args.sets, seed, tmp / f"dask_{seed}", executor=client, **kw)
        finally:
            if before is None:
                os.environ.pop(jr.batches.PARTS_ENV)
            else:
                os.environ[jr.batches.PARTS_ENV] = before
    chunk = results[("in_process", 1)][1].chunk_size
    out["workload"].update(chunk_size=chunk, chunks=-(-args.sets // chunk))
    out["parts_per_chunk"] = {"in_process": jr.batches.cpu_parts(chunk), "dask_worker": args.worker_parts}
    for seed, run_name in ((1, "first (compile included)"), (2, "warm")):
        row = {}
        for path in ("in_process", "dask"):
            wall, res = results[(path, seed)]
            assert res.complete
            row[path] = {"wall_s": round(wall, 3), "sets_per_s": round(args.sets / wall, 1),
                         "column_steps_per_s": float(f"{args.sets * steps / wall:.4g}")}
        row["dask_over_in_process"] = round(row["dask"]["wall_s"] / row["in_process"]["wall_s"], 3)
        a, b = results[("in_process", seed)][1], results[("dask", seed)][1]
        row["identical_features"] = all(
            np.array_equal(np.asarray(u.get_mantissa(a.features[k])), np.asarray(u.get_mantissa(b.features[k])),
                           equal_nan=True) for k in a.features)
        out["runs"][run_name] = row
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=None, help="parameter sets (default 100000; --quick: 2000)")
    ap.add_argument("--duration", type=float, default=2.0, help="recorded seconds per set (default 2)")
    ap.add_argument("--chunk-size", type=int, default=None, help="sets per chunk (default 4096; --quick: 250)")
    ap.add_argument("--worker-parts", type=int, default=1,
                    help="calls per chunk in the Dask runs (JR_JAX_CPU_PARTS of their specification; default 1)")
    ap.add_argument("--quick", action="store_true", help="a small run that checks the script")
    ap.add_argument("--out", default=None, help="write the JSON here instead of stdout")
    args = ap.parse_args()
    args.sets = args.sets or (2000 if args.quick else 100_000)
    args.chunk_size = args.chunk_size or (250 if args.quick else jr.sweeps.CPU_CHUNK)
    text = json.dumps(run(args), indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"written to {args.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
