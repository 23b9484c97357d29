"""Accuracy and cost of the two reads of a delayed network's history (``jr_jax.history``): linear and cubic Hermite.

Accuracy: the largest EEG error over 50 ms of RK4 in float64 at dt = 0.2, 0.1, 0.05, 0.025 ms against the
independent reference of ``tests/test_delay_order.py`` (4 nodes, afferent rule, G = 20, delays m_ij·π/3 ms — never a
whole number of steps —, a smooth input from the network's rest; the reference is the method of steps with scipy's
DOP853 at rtol 1e-13, ``tests/reference.py``), and the observed order log2(e(dt) / e(dt/2)). Then the same problem
with every delay shorter than a step, τ_ij = θ_ij·dt (θ in 0.2–0.9), over 20 ms at dt = 0.2, 0.1, 0.05 ms: the
reads inside the current step, against Hermite at dt/20 for the same delays (whose reads are all past ones, checked
against the independent reference by the first table).

Cost: the time per simulated second of a 76-region network (TVB's connectome ``jr_jax.connectome.tvb(76)``, or
``connectome.example(76)`` without tvb-data), G = 1, speed 3 m/s, rule "afferent", RK4 at dt = 0.1 ms, float32, a
white-noise drive (120 Hz, 30 Hz·√s), the EEG kept as 1 ms means: one call compiles, then the median (min–max) of
``--repeats`` calls of ``--duration`` simulated seconds each, with the ratio Hermite / linear.

Run: ``.venv/bin/python benchmarks/delay_reads.py [--repeats 5] [--duration 1] [--regions 76]``. ``--quick``: two
dt, 16 regions, 20 ms runs, one repeat (a smoke check, not a measurement).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import jr_jax as jr
from jr_jax import connectome, drives, history, network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import test_delay_order as problem  # noqa: E402  (the 4-node problem and its independent reference)

DTS = (2e-4, 1e-4, 5e-5, 2.5e-5)


def accuracy(dts) -> str:
    """The error table: read, dt, largest EEG error, observed order."""
    rows = ["| read | dt (ms) | max EEG error (mV) | observed order |", "|---|---|---|---|"]
    with jax.enable_x64(True):
        for read in history.READS:
            prev = None
            for dt in dts:
                e = problem.error(read, dt)
                order = "" if prev is None else f"{np.log2(prev / e):.2f}"
                rows.append(f"| {read} | {dt * 1e3:g} | {e:.2e} | {order} |")
                prev = e
    return "\n".join(rows)


THETA = np.array([[0, 0.3, 0.7, 0.45], [0.6, 0, 0.2, 0], [0.35, 0.8, 0, 0.55], [0.25, 0, 0.9, 0]])


def _short_delays(read: str, dt: float, tau_s) -> np.ndarray:
    """EEG every 0.2 ms over 20 ms of the 4-node problem with the delays ``tau_s`` (s), float64."""
    z0, _ = problem.reference()
    net = network.network(connectome.Connectome(problem.K4), coupling=problem.G4, delays=tau_s * u.second,
                          interpolation=read)
    drive = drives.sinusoid((problem.P4 + problem.RISE) * u.Hz, problem.RISE * u.Hz, problem.F_RISE * u.Hz,
                            -np.pi / 2)
    init = jr.JRState(*(u.Quantity(z0[i], unit=unit) for i, unit in enumerate(jr.model.STATE_UNITS)))
    x = jr.simulate(jr.JRParams(), duration=0.02 * u.second, dt=dt * u.second, network=net, drive=drive,
                    initial_state=init, dtype=jnp.float64).eeg.mantissa
    stride = int(round(2e-4 / dt))
    return np.asarray(x)[stride - 1::stride]


def within_step(dts) -> str:
    """The error table with every delay shorter than a step (τ = θ·dt): the reads inside the current step."""
    rows = ["| read | dt (ms) | max EEG error (mV) | observed order |", "|---|---|---|---|"]
    with jax.enable_x64(True):
        refs = {dt: _short_delays("hermite", dt / 20, THETA * dt) for dt in dts}
        for read in history.READS:
            prev = None
            for dt in dts:
                e = float(np.abs(_short_delays(read, dt, THETA * dt) - refs[dt]).max())
                order = "" if prev is None else f"{np.log2(prev / e):.2f}"
                rows.append(f"| {read} | {dt * 1e3:g} | {e:.2e} | {order} |")
                prev = e
    return "\n".join(rows)


def the_connectome(n: int):
    try:
        return connectome.tvb(n), f"TVB connectivity_{n}"
    except (ModuleNotFoundError, ValueError):
        return connectome.example(n), f"connectome.example({n}) (synthetic)"


def cost(n: int, duration_s: float, repeats: int) -> str:
    """The cost table: read, compile + first run, wall-clock median (min–max) and median CPU time (all threads;
    steadier than wall-clock on a shared machine) per simulated second, and the ratios to linear."""
    con, name = the_connectome(n)
    drive = drives.white_noise(120.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5)
    rows = [f"{name}, {n} regions, RK4, dt = 0.1 ms, float32, {duration_s:g} s per call, {repeats} calls", "",
            "| read | first call (s) | wall per simulated second: median (min–max) (s) | CPU per simulated second (s) "
            "| ratio to linear (wall, CPU) |", "|---|---|---|---|---|"]
    medians = {}
    for read in history.READS:
        net = network.network(con, coupling=1.0, interpolation=read)

        def run():
            t0, c0 = time.perf_counter(), time.process_time()
            res = jr.simulate(jr.JRParams(), duration=duration_s * u.second, dt=0.1 * u.ms, drive=drive,
                              key=jax.random.key(0), network=net, dtype=jnp.float32,
                              record=jr.Record(("eeg",), every=10, reduce="mean"))
            np.asarray(res.eeg.mantissa)
            return time.perf_counter() - t0, time.process_time() - c0

        first = run()[0]
        wall, cpu = zip(*(run() for _ in range(repeats)))
        wall, cpu = [t / duration_s for t in wall], [t / duration_s for t in cpu]
        medians[read] = statistics.median(wall), statistics.median(cpu)
        ratios = [m / r for m, r in zip(medians[read], medians["linear"])]
        rows.append(f"| {read} | {first:.2f} | {medians[read][0]:.3f} ({min(wall):.3f}–{max(wall):.3f}) | "
                    f"{medians[read][1]:.3f} | {ratios[0]:.2f}, {ratios[1]:.2f} |")
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds per timed call")
    ap.add_argument("--regions", type=int, default=76)
    ap.add_argument("--quick", action="store_true", help="a smoke check: 2 dt, 16 regions, 20 ms, 1 repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.regions = 1, 0.02, 16
    print(f"# {datetime.date.today().isoformat()}; {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} CPUs, {platform.system()}; jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}\n")
    print(accuracy(DTS[:2] if args.quick else DTS), "\n")
    print("Every delay shorter than a step (τ = θ·dt):\n")
    print(within_step(DTS[:2] if args.quick else DTS[:3]), "\n")
    print(cost(args.regions, args.duration, args.repeats))


if __name__ == "__main__":
    main()
