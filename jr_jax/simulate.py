"""simulate(): the Jansen–Rit column run with ``lax.scan`` under ``jit``, in chunks, with what to keep chosen by ``record``."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time as _time
from functools import partial
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import _rng
from . import drives as _drives
from ._batch import (batch_size, cpu_parts, initial_states, is_batched, join, set_leaves, split_runs, split_sets,
                     take)
from ._store import atomic_savez, digest, open_spec_dir
from ._units import check_dim, fmt_seconds
from .integrators import draw_noise, get_method
from .model import STATE_NAMES, STATE_UNITS, JRState, observable, pack, unpack
from .network import Network, NetworkState, check_delays_fit, check_params
from .params import JRParams, canonical

DEFAULT_METHOD = "rk4"
DEFAULT_DT = 0.5 * u.ms
VARIABLES = ("eeg",) + STATE_NAMES
_UNITS = {"eeg": u.mV, **dict(zip(STATE_NAMES, STATE_UNITS))}


class SimulationError(FloatingPointError):
    """The state became NaN or infinite during a run."""


class RunSpecError(ValueError):
    """``out_dir`` holds a run with a different specification."""


@dataclasses.dataclass(frozen=True)
class Record:
    """What a simulation keeps.

    variables: names among ``"eeg", "y0" … "y5"``; an empty tuple keeps nothing (memory independent of duration).
    every: keep one value per window of this many steps.
    reduce: ``"sample"`` keeps the value at the end of each window, ``"mean"`` the average over the window's steps
        (a temporal-average monitor; its time stamp is the window's centre).
    """

    variables: tuple = ("eeg",)
    every: int = 1
    reduce: str = "sample"

    def __post_init__(self):
        variables = (self.variables,) if isinstance(self.variables, str) else tuple(self.variables)
        object.__setattr__(self, "variables", variables)
        bad = [v for v in variables if v not in VARIABLES]
        if bad:
            raise ValueError(f"Record.variables must be among {VARIABLES}; got {bad}.")
        if len(set(variables)) != len(variables):
            raise ValueError(f"Record.variables has duplicates: {variables}.")
        if not isinstance(self.every, (int, np.integer)) or self.every < 1:
            raise ValueError(f"Record.every must be a positive integer number of steps; got {self.every!r}.")
        if self.reduce not in ("sample", "mean"):
            raise ValueError(f"Record.reduce must be 'sample' or 'mean'; got {self.reduce!r}.")


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """Output of :func:`simulate`. ``time`` and each recorded variable are Quantities of shape (n_records,) (each
    variable (n_records, n) for a batch of n sets or a network of n columns)."""

    time: u.Quantity
    variables: dict
    final_state: JRState
    dt: u.Quantity
    method: str
    record: Record

    def __getattr__(self, name):
        if name in VARIABLES:
            if name in self.variables:
                return self.variables[name]
            raise AttributeError(f"'{name}' was not recorded; pass record=Record(variables=(..., '{name}')) "
                                 f"(recorded: {tuple(self.variables)}).")
        raise AttributeError(name)

    @property
    def sampling_rate(self) -> u.Quantity:
        return 1 / (self.dt * self.record.every)


def _zero_noise_key():
    return jax.random.key(0)


def _set_keys(key) -> bool:
    """Whether ``key`` is one key per set (a typed key array with an axis, or raw uint32 keys of shape (n, 2))."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    return jnp.ndim(key) > (0 if typed else 1)


BLOCK_STEPS = 256
"""Steps per block of the compiled loop. The state is checked for NaN/Inf once per block (a check every step would
double the cost of a step); the random numbers are drawn vectorised per block or per chunk (one draw per step costs
~10× more on a CPU). They depend only on the key and the global step index, not on the blocks or chunks."""

CHECKPOINT_BLOCK_STEPS = 128
"""Steps per block with ``checkpoint`` (gradients): reverse mode stores one state per block and recomputes the
block's steps. Shorter than BLOCK_STEPS because of XLA's CPU runtime, which runs a loop body's kernels in order
only when they are few or their buffers are at most 512 bytes, and otherwise through its thread pool: the backward
loop of a 256-step block handles 256-float (1 KiB) arrays and went through the pool. With 128-step blocks the
gradient of W3 (10 s, EEG of every step) took 0.10 s instead of 0.25–0.27 s, and 0.12 s instead of 0.17 s with the
EEG kept as 2 ms means; the stored memory (EEG kept every 4 steps) grew from 1.15 to 1.74 bytes per step, records
included."""


def _block_windows(n_windows: int, every: int, block_steps: int = BLOCK_STEPS) -> int:
    """Windows per block: about ``block_steps`` steps, preferably a divisor of n_windows (no tail loop)."""
    target = min(n_windows, max(1, block_steps // every))
    for g in range(target, max(1, target // 2) - 1, -1):
        if n_windows % g == 0:
            return g
    return target


_is_q = lambda x: isinstance(x, u.Quantity)  # noqa: E731

N_STATE = len(STATE_UNITS)
RIDE_MAX = 64
"""Parameter and drive values (at most this many numbers) that travel in the loop's carry, see :func:`_riders`."""


def _riders(tree, dtype):
    """Put the small ``dtype`` leaves of ``tree`` into one vector that rides in the scan carry beside the state.

    XLA on a CPU hoists every loop-invariant product of the parameters (A·a, a², 2a, dt·…: about 70 of them for
    RK4) out of the time loop and then passes each to the step's kernels as its own buffer; resolving those buffers
    costs more than the step's arithmetic (a single column ran 2.5× slower with traced parameters than with
    constants). Values that arrive through the carry cannot be hoisted, so the kernels read one vector.

    Returns ``(inputs, vector)``: ``inputs(v)`` rebuilds ``tree`` from the vector ``v`` and the other leaves.
    """
    leaves, treedef = jax.tree.flatten(tree)
    picked, total = [], 0
    for i, x in enumerate(leaves):
        if jnp.result_type(x) == dtype and total + np.size(x) <= RIDE_MAX:
            picked.append(i)
            total += int(np.size(x))
    vector = (jnp.concatenate([jnp.ravel(jnp.asarray(leaves[i], dtype)) for i in picked]) if picked
              else jnp.zeros((0,), dtype))

    def inputs(v):
        out, o = list(leaves), 0
        for i in picked:
            n = int(np.size(leaves[i]))
            out[i] = v[o:o + n].reshape(np.shape(leaves[i]))
            o += n
        return jax.tree.unflatten(treedef, out)

    return inputs, vector


@partial(jax.jit, static_argnames=("method", "n_windows", "every", "variables", "reduce", "dtype", "checkpoint",
                                   "single"))
def _run_chunk(params, drive, state, key, step0, dt_s, *, method, n_windows, every, variables, reduce, dtype,
               checkpoint=False, network=None, single=False):
    """Advance ``n_windows * every`` steps from global step ``step0``.

    Returns (state, bad, records) where ``bad`` is, per column, the first window of the first block that ended with
    a non-finite state (−1 if none). The state travels through the loop packed (:func:`jr_jax.model.pack`), shape
    (6,) plus any set axis of the parameters, drive and state, which stays last (records (n_windows, n)); the random
    numbers of step i come from the key ``fold_in(key, i)`` and are drawn vectorised (``vmap`` over the steps); a
    ``key`` with a set axis (one key per set) draws each set's own numbers.
    With ``checkpoint``, each block is a ``jax.checkpoint``: reverse-mode differentiation then stores one state per
    block of CHECKPOINT_BLOCK_STEPS steps and recomputes the steps of a block when it needs them, so the memory of a
    gradient grows with the number of blocks, not of steps.

    ``single`` (set by :func:`simulate` only: one column, no set axis, never under ``vmap`` or ``grad``) lays the loop out for
    XLA's CPU runtime, where a step's few scalar kernels cost more to launch than to run: the parameters ride in the
    carry (:func:`_riders`), an optimisation barrier makes the record read the stored new state (the step's kernels
    then form a chain, which the runtime executes in order instead of through its thread pool), and the random
    numbers of the whole chunk are drawn at once (even with the fused draws of :mod:`jr_jax._rng`, drawing per block
    cost 0.7–0.8 ms more per 10 s of W1). Together 2–3× faster for one column. Under ``vmap`` the same layout was 3× slower
    (1024 sets), as it was with a set axis (1024 sets riding as rows of the carry: 200–250 ms against 70–74 ms per 2 s),
    and its random numbers would take batch × steps memory, and under ``grad`` it stores the riding
    parameters at every step (2–3× slower), so :func:`trace` and the sweeps keep the plain loop; the numbers are the
    same either way.

    With a ``network`` (:class:`jr_jax.network.Network`), ``state`` is a :class:`jr_jax.network.NetworkState`: the
    carry holds the packed columns and the ring buffer of delayed rates, each integrator stage gets the network's
    input, and column i draws its noise from ``jax.random.split(key, N)[i]`` exactly as a single column would from
    that key.
    """
    p = canonical(params, dtype)
    dt = u.Quantity(jnp.asarray(dt_s, dtype), unit=u.second)
    step = get_method(method).step
    random = drive.is_random

    one_column = single and network is None and not checkpoint
    if network is None:
        if not _set_keys(key):
            def noise_of(i):
                return draw_noise(method, _rng.fold_in(key, i), dt, p, drive)
        else:                       # one key per set (the set axis of params, drive and state has the keys' length)
            values, rebuild = split_sets((p, drive))
            sets = [jnp.broadcast_to(x, key.shape) for x in values]

            def noise_of(i):
                return jax.vmap(lambda k, v: draw_noise(method, _rng.fold_in(k, i), dt, *rebuild(v)))(key, sets)

        if one_column:
            inputs, ride = _riders((p, drive), dtype)

            def advance(y, i, noise):
                pi, di = inputs(y[N_STATE:])
                y = jnp.concatenate([pack(step(unpack(y[:N_STATE]), i.astype(dtype) * dt, dt, pi, di, noise)),
                                     y[N_STATE:]])
                return jax.lax.optimization_barrier(y)

            columns = lambda c: c[:N_STATE]  # noqa: E731
            carry0 = jnp.concatenate([pack(state), ride])
        else:
            def advance(y, i, noise):
                return pack(step(unpack(y), i.astype(dtype) * dt, dt, p, drive, noise))

            columns = lambda c: c  # noqa: E731
            carry0 = pack(state)
    else:
        col_keys = jax.random.split(key, network.n_regions)
        p_cols = jax.tree.map(lambda x: jnp.broadcast_to(x, (network.n_regions,)), p)

        def noise_of(i):
            return jax.vmap(lambda k, pc: draw_noise(method, _rng.fold_in(k, i), dt, pc, drive))(col_keys, p_cols)

        prep = network.prepare(dt.mantissa, state.history.shape[0], dtype)

        def advance(c, i, noise):
            y, hist = c
            hook = network.input_at(hist, i, prep, p)
            y = pack(step(unpack(y), i.astype(dtype) * dt, dt, p, drive, noise, hook))
            return y, network.push(hist, i + 1, unpack(y), p)

        columns = lambda c: c[0]  # noqa: E731
        n_buf = state.history.shape[0]      # ring slot of step m: m mod n_buf (a NetworkState keeps "now" in row 0)
        carry0 = (pack(state.columns), jnp.roll(state.history, step0 % n_buf, axis=0))

    def obs(c):
        state = unpack(columns(c))
        return {name: observable(state, name) for name in variables}

    def window(y, i0, noise):
        """``every`` steps from global step i0 with their random numbers (leading axis ``every``)."""
        if every == 1:
            y = advance(y, i0, jax.tree.map(lambda x: x[0], noise, is_leaf=_is_q))
            return y, obs(y)

        def inner(c, xs):
            y, acc = c
            j, nz = xs
            y = advance(y, i0 + j, nz)
            if reduce == "mean":
                acc = jax.tree.map(lambda a, b: a + b, acc, obs(y), is_leaf=_is_q)
            return (y, acc), None

        acc0 = {name: u.Quantity(jnp.zeros(columns(y).shape[1:], dtype), unit=_UNITS[name]) for name in variables}
        (y, acc), _ = jax.lax.scan(inner, (y, acc0 if reduce == "mean" else {}), (jnp.arange(every), noise),
                                   length=every)
        return y, ({n: a / every for n, a in acc.items()} if reduce == "mean" else obs(y))

    def blocks(carry, w_first, n_blocks, gw):
        """n_blocks blocks of gw windows from chunk window w_first; records get shape (n_blocks * gw, ...)."""
        def block(carry, w0):
            if chunk_noise is not None:
                noise = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, w0 * every, gw * every), chunk_noise)
            else:
                steps = step0 + w0 * every + jnp.arange(gw * every, dtype=jnp.int32)
                noise = jax.vmap(noise_of)(steps) if random else noise_of(step0)
            noise = jax.tree.map(lambda x: x.reshape((gw, every) + x.shape[1:]), noise, is_leaf=_is_q)

            def win(y, xs):
                w, nz = xs
                return window(y, step0 + w * every, nz)

            y, bad = carry
            y, out = jax.lax.scan(win, y, (w0 + jnp.arange(gw, dtype=jnp.int32), noise), length=gw)
            bad = jnp.where((bad < 0) & ~jnp.all(jnp.isfinite(columns(y)), axis=0), w0, bad)
            return (y, bad), out

        if checkpoint:
            block = jax.checkpoint(block, prevent_cse=False)
        carry, out = jax.lax.scan(block, carry, w_first + gw * jnp.arange(n_blocks, dtype=jnp.int32))
        return carry, jax.tree.map(lambda x: x.reshape((n_blocks * gw,) + x.shape[2:]), out, is_leaf=_is_q)

    gw = _block_windows(n_windows, every, CHECKPOINT_BLOCK_STEPS if checkpoint else BLOCK_STEPS)
    chunk_noise = None
    if random and one_column:
        chunk_noise = jax.vmap(noise_of)(step0 + jnp.arange(n_windows * every, dtype=jnp.int32))
    n_blocks, tail = divmod(n_windows, gw)
    carry, out = blocks((carry0, jnp.full(columns(carry0).shape[1:], -1, jnp.int32)), 0, n_blocks, gw)
    if tail:
        carry, out_tail = blocks(carry, n_blocks * gw, 1, tail)
        out = jax.tree.map(lambda a, b: u.math.concatenate([a, b]), out, out_tail, is_leaf=_is_q)
    y, bad = carry
    if network is None:
        final = unpack(columns(y))
    else:
        final = type(state)(unpack(y[0]), jnp.roll(y[1], -((step0 + n_windows * every) % n_buf), axis=0))
    return final, bad, out


class Trace(NamedTuple):
    """Output of :func:`trace`: the state after the transient, the records (Quantities, leading axis = records) and
    the final state."""

    start: JRState
    records: dict
    final: JRState


def trace(params: JRParams, drive, *, n_steps: int, dt_s: float, key=None, method: str = DEFAULT_METHOD,
          every: int = 1, reduce: str = "sample", variables: tuple = ("eeg",), transient_steps: int = 0,
          initial_state: JRState | None = None, dtype=None, checkpoint: bool = True, network=None) -> Trace:
    """The pure core of :func:`simulate`, for use under ``jit``, ``grad`` and ``vmap`` (losses, fitting).

    The same compiled loop as :func:`simulate` (same steps, same random numbers for the same key), with no host-side
    checks: a NaN is not stopped here but propagates into the result. Record ``i`` is the state after
    ``transient_steps + (i + 1)·every`` steps (``reduce="mean"``: the mean over that window). With ``checkpoint``
    (default) gradients store one state per block of CHECKPOINT_BLOCK_STEPS steps (see ``_run_chunk``). Parameters
    (and drive fields) may have a set axis, shape (n,): the sets then run as the trailing axis of the one loop and the
    records get a trailing set axis, (n_records, n). Each set gets what :func:`simulate` gives it alone; ``jax.vmap``
    over the sets computes the same steps to float32 rounding but puts the set axis first, so a step reads each
    set's six state values apart (W2, 1024 sets: 1.3–1.6× slower than one thread of this loop). With a
    ``network`` (:func:`jr_jax.network.network`) the records have a trailing column axis and the states are
    :class:`jr_jax.network.NetworkState`.
    """
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    key = _zero_noise_key() if key is None else key
    state = JRState.zeros((), dtype) if initial_state is None else initial_state
    if network is not None and not isinstance(state, NetworkState):
        state = network.initial_state(state, params, dt_s, dtype)
    elif network is None:       # parameters with a set axis: the state gets it too
        shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in set_leaves((params, drive, state))))
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, shape), state)
    cfg = dict(method=get_method(method).name, dtype=dtype, checkpoint=checkpoint, reduce=reduce, network=network)
    if n_steps % every:
        raise ValueError(f"n_steps = {n_steps} is not a multiple of every = {every}.")
    if transient_steps:
        state, _, _ = _run_chunk(params, drive, state, key, jnp.int32(0), dt_s, n_windows=transient_steps, every=1,
                                 variables=(), **cfg)
    final, _, records = _run_chunk(params, drive, state, key, jnp.int32(transient_steps), dt_s,
                                   n_windows=n_steps // every, every=every, variables=tuple(variables), **cfg)
    return Trace(state, records, final)


def run_settings(duration, dt, transient, dtype, drive, key):
    """Checked run settings shared by simulate() and sweep(): (dt, duration, transient) in seconds, the dtype and a
    key (a fixed one for deterministic drives)."""
    check_dim("duration", duration, u.second, "10. * u.second")
    check_dim("dt", dt, u.second, "0.5 * u.ms")
    check_dim("transient", transient, u.second, "1. * u.second")
    dt_s = float(dt.to_decimal(u.second))
    if not (dt_s > 0 and math.isfinite(dt_s)):
        raise ValueError(f"dt must be a positive finite time; got {dt!r}.")
    dur_s, tr_s = float(duration.to_decimal(u.second)), float(transient.to_decimal(u.second))
    if not dur_s > 0:
        raise ValueError(f"duration must be positive; got {duration!r}.")
    if tr_s < 0:
        raise ValueError(f"transient must be >= 0; got {transient!r}.")
    dtype = jnp.dtype(dtype) if dtype is not None else jnp.result_type(float)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError('dtype=float64 needs 64-bit JAX: call jax.config.update("jax_enable_x64", True) first.')
    if drive.is_random and key is None:
        raise ValueError("this drive is random: pass key=jax.random.key(seed) (the same key gives the same run).")
    return dt_s, dur_s, tr_s, dtype, (_zero_noise_key() if key is None else key)


def _n_steps(name, duration, dt_s):
    n = duration / dt_s
    n_int = int(round(n))
    if abs(n - n_int) > 1e-6 * max(1.0, n):
        raise ValueError(f"{name} ({fmt_seconds(duration)}) must be a whole number of steps of dt = {fmt_seconds(dt_s)}; "
                         f"it is {n:.6g} steps.")
    return n_int


def _check_state(state, dtype):
    if not isinstance(state, JRState):
        raise TypeError(f"initial_state must be a jr_jax.JRState; got {type(state).__name__}.")
    out = []
    for name, value in zip(STATE_NAMES, state):
        unit = _UNITS[name]
        check_dim(f"initial_state.{name}", value, unit, f"0. * u.{'mV' if unit == u.mV else 'mV / u.second'}")
        out.append(u.Quantity(jnp.asarray(value.to_decimal(unit), dtype), unit=unit))
    return JRState(*out)


def _run_spec(params, drive, key, dt_s, n_tr, method, record, dtype, network, state) -> dict:
    """What fixes a run's numbers (not its duration): compared on resume."""
    return {"params": digest(params), "drive": [type(drive).__name__, digest(drive)],
            "key": digest(jax.random.key_data(key)), "dt_s": dt_s, "transient_steps": n_tr, "method": method,
            "record": [list(record.variables), record.every, record.reduce], "dtype": str(jnp.dtype(dtype)),
            "network": None if network is None else [network.rule, network.max_delay_s, digest(network)],
            "initial_state": digest(state)}


class _RunStore:
    """The chunks of a run on disk: spec.json, state.npz (state and global step after the last chunk) and
    records_00000.npz, … (one per recorded chunk)."""

    def __init__(self, path, spec):
        self.path = os.fspath(open_spec_dir(path, spec, RunSpecError, "run"))
        self.n_saved = 0

    def resume(self, state, n_windows, every, variables):
        """(state, global step, windows recorded, record pieces) from disk, or the start when nothing is saved."""
        path = os.path.join(self.path, "state.npz")
        if not os.path.exists(path):
            return state, 0, 0, []
        z = np.load(path)
        leaves, treedef = jax.tree.flatten(state)
        state = jax.tree.unflatten(treedef, [jnp.asarray(z[f"s{i}"], x.dtype) for i, x in enumerate(leaves)])
        step, self.n_saved = int(z["step"]), int(z["n_chunks"])
        pieces, w = [], 0
        for k in range(self.n_saved):
            r = np.load(os.path.join(self.path, f"records_{k:05d}.npz"))
            pieces.append({name: u.Quantity(r[name], unit=_UNITS[name]) for name in variables})
            w += int(r["n_windows"])
        if w > n_windows:
            raise RunSpecError(f"{self.path} already holds {w} records, more than this duration's {n_windows}; "
                               f"pass at least that duration (or another out_dir).")
        return state, step, w, pieces

    def save(self, state, step, records, n_windows=0):
        if records is not None:
            atomic_savez(os.path.join(self.path, f"records_{self.n_saved:05d}.npz"), n_windows=n_windows,
                         **{k: np.asarray(v.mantissa) for k, v in records.items()})
            self.n_saved += 1
        atomic_savez(os.path.join(self.path, "state.npz"), step=step, n_chunks=self.n_saved,
                     **{f"s{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))})


class _Progress:
    def __init__(self, total_s, enabled, label="simulating"):
        self.total, self.enabled, self.label = total_s, enabled, label
        self.t0 = _time.perf_counter()

    def update(self, done_s):
        if not self.enabled:
            return
        frac = min(1.0, done_s / self.total) if self.total > 0 else 1.0
        elapsed = _time.perf_counter() - self.t0
        rate = done_s / elapsed if elapsed > 0 else float("inf")
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        sys.stderr.write(f"\r{self.label} [{bar}] {100 * frac:5.1f}%  {done_s:.3g}/{self.total:.3g} s simulated, "
                         f"{rate:.3g} s/s")
        if frac >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()


def simulate(params: JRParams, *, duration, dt=DEFAULT_DT, drive=None, method: str = DEFAULT_METHOD, key=None,
             record: Record | tuple | str = Record(), initial_state: JRState | None = None, transient=0.0 * u.second,
             chunk_steps: int | None = None, progress: bool = False, dtype=None,
             check_finite: bool = True, network: Network | None = None, out_dir=None) -> SimulationResult:
    """Simulate one Jansen–Rit column, a batch of independent columns (one per parameter set), or a network.

    Args:
      params: :class:`JRParams`. Scalar fields: one column. Fields (and drive fields) with one value per set, shape
        (n,): a batch of n independent columns; set i gives exactly what simulate() gives for set i alone with the
        same key (the same noise for every set). The sets run as the loop's trailing axis, split over the CPU's
        cores. With a network, a field may instead have one value per column.
      duration: simulated time to record (Quantity, e.g. ``10 * u.second``); a whole number of steps.
      dt: step (default 0.5 ms).
      drive: input p(t) from :mod:`jr_jax.drives` (default ``constant(220 Hz)``).
      method: ``"rk4"`` (default), ``"heun"``, ``"strang"`` or ``"euler"`` — see :mod:`jr_jax.integrators`.
      key: ``jax.random.key`` — required when the drive is random; the same key gives the same run.
      record: :class:`Record`, or a tuple of variable names (kept every step).
      initial_state: :class:`JRState` (default all zeros).
      transient: simulated time run first and not recorded (the recorded ``time`` continues after it).
      chunk_steps: steps per compiled chunk (default: whole run up to 2**18 steps; ~50 chunks with ``progress``).
        Memory on the device is bounded by one chunk; the random numbers do not depend on the chunking.
      progress: print a progress bar on stderr.
      dtype: float dtype of the run (default float32; float64 needs ``jax.config.update("jax_enable_x64", True)``).
      check_finite: stop with :class:`SimulationError` when the state becomes NaN/Inf.
      network: a :func:`jr_jax.network.network`: simulate its N columns coupled (records get a column axis; the
        drive's mean may have one value per column; column i's noise comes from ``jax.random.split(key, N)[i]``).

      out_dir: a directory where each finished chunk's records and the state after it are saved (atomically).
        Calling again with the same arguments resumes after the last saved chunk, with a longer ``duration``
        extends the run; the result is the same as one uninterrupted run (the drive's time and the random numbers
        follow the global step). Arguments other than ``duration``, ``chunk_steps``, ``progress`` that differ from
        the saved run raise :class:`RunSpecError` and change nothing on disk.

    Returns:
      :class:`SimulationResult` with ``time`` (s), the recorded variables (mV or mV/s, shape (n_records,), or
      (n_records, n) for a batch, (n_records, N) for a network) and ``final_state`` (a :class:`jr_jax.network.NetworkState` for a network: pass it back as
      ``initial_state`` to continue the run, history included).
    """
    if not isinstance(params, JRParams):
        raise TypeError(f"params must be a jr_jax.JRParams; got {type(params).__name__}.")
    if network is not None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be built with jr_jax.network.network(); got {type(network).__name__}.")
        check_params(params, network.n_regions)
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives (e.g. drives.constant(220 * u.Hz)); got {drive!r}.")
    if network is not None:
        network.check_noise(drive)
    n_sets = batch_size(params, drive) if network is None and is_batched(params, drive) else None
    method = get_method(method).name
    if not isinstance(record, Record):
        record = Record(variables=record)
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    n_steps, n_tr = _n_steps("duration", dur_s, dt_s), _n_steps("transient", tr_s, dt_s)
    every = record.every
    if n_steps % every:
        raise ValueError(f"duration is {n_steps} steps, not a multiple of Record.every = {every}.")
    if n_sets is not None:
        state = initial_states(initial_state, n_sets, dtype)
    elif initial_state is None:
        zero = np.zeros((), dtype)
        state = JRState(*(u.Quantity(zero, unit=unit) for unit in STATE_UNITS))
    elif isinstance(initial_state, NetworkState):
        if network is None:
            raise TypeError("initial_state is a NetworkState: pass the network= it came from.")
        n_buf = network.buffer_steps(dt_s)
        if initial_state.history.shape != (n_buf, network.n_regions):
            raise ValueError(f"initial_state.history has shape {initial_state.history.shape}; this network and dt "
                             f"need {(n_buf, network.n_regions)}.")
        state = NetworkState(_check_state(initial_state.columns, dtype),
                             jnp.asarray(initial_state.history, dtype))
    else:
        state = _check_state(initial_state, dtype)
    if network is not None:
        check_delays_fit(network)
        if not isinstance(state, NetworkState):
            n = network.n_regions
            if any(np.shape(x.mantissa) not in ((), (n,)) for x in state):
                raise ValueError(f"initial_state fields must be scalars or have shape ({n},) for a network of {n} "
                                 f"columns.")
            state = network.initial_state(state, params, dt_s, dtype)

    n_windows = n_steps // every
    if chunk_steps is None:
        chunk_w = max(1, -(-n_windows // 50)) if progress else max(1, min(n_windows, 2 ** 18 // every))
    else:
        if chunk_steps < every:
            raise ValueError(f"chunk_steps must be >= Record.every = {every}; got {chunk_steps}.")
        chunk_w = chunk_steps // every
    # one dtype for every number, so that ints, floats and arrays of new values reuse the compiled run
    # (host numbers through NumPy: a jnp.asarray per leaf would cost ~1 ms per call)
    params, drive = jax.tree.map(lambda x: jnp.asarray(x, dtype) if isinstance(x, jax.Array) else np.asarray(x, dtype),
                                 (params, drive))
    bar = _Progress(tr_s + dur_s, progress)
    cfg = dict(method=method, dtype=dtype)

    parts = 1 if n_sets is None else cpu_parts(n_sets)

    def run(state, step0, n_w, ev, variables):
        def call(args):
            return _run_chunk(*args, key, np.int32(step0), dt_s, n_windows=n_w, every=ev, variables=variables,
                              reduce=record.reduce, network=network, single=n_sets is None, **cfg)

        if n_sets is None:
            state, bad, out = call((params, drive, state))
        else:           # a batch: the set axis last everywhere, split over the CPU's cores
            state, bad, out = join(split_runs(lambda i: call(take((params, drive, state), i, n_sets)), n_sets, parts),
                                   n_sets, axis=-1)
        if check_finite:
            bad = np.asarray(bad)
            if (bad >= 0).any():
                first = int(bad[bad >= 0].min())
                end = min(first + _block_windows(n_w, ev), n_w)
                t0, t1 = (step0 + first * ev) * dt_s, (step0 + end * ev) * dt_s
                which = "" if bad.ndim == 0 else \
                    f" in {'set' if n_sets is not None else 'column'}(s) {np.flatnonzero(bad >= 0)[:10].tolist()}"
                raise SimulationError(
                    f"the state became NaN/Inf{which} between t = {fmt_seconds(t0)} and t = {fmt_seconds(t1)} "
                    f"(method {method!r}, dt = {fmt_seconds(dt_s)}). Likely causes: dt too large for these "
                    f"parameters (try a smaller dt or method='strang'), or a parameter out of range "
                    f"(A={params.A!r}, B={params.B!r}, a={params.a!r}, b={params.b!r}, C={params.C!r}).")
        return state, out

    store = None if out_dir is None else _RunStore(out_dir, _run_spec(params, drive, key, dt_s, n_tr, method, record,
                                                                     dtype, network, state))
    step0, w_done, pieces = 0, 0, []
    if store is not None:
        state, step, w_done, pieces = store.resume(state, n_windows, every, record.variables)
        step0 = min(step, n_tr)              # the recorded windows start after the transient
        bar.update(step * dt_s)

    # transient: nothing recorded
    tr_chunk = max(1, chunk_w * every)
    while step0 < n_tr:
        n = min(tr_chunk, n_tr - step0)
        state, _ = run(state, step0, n, 1, ())
        step0 += n
        if store is not None:
            store.save(state, step0, None)
        bar.update(step0 * dt_s)

    while w_done < n_windows:
        n_w = min(chunk_w, n_windows - w_done)
        state, out = run(state, step0 + w_done * every, n_w, every, record.variables)
        pieces.append(out)
        w_done += n_w
        if store is not None:
            store.save(state, step0 + w_done * every, out, n_w)
        bar.update((step0 + w_done * every) * dt_s)

    if len(pieces) == 1:
        variables = pieces[0]
    else:
        variables = {name: u.Quantity(np.concatenate([np.asarray(p[name].mantissa) for p in pieces]),
                                      unit=pieces[0][name].unit) for name in record.variables}
    w = np.arange(1, n_windows + 1 if record.variables else 1, dtype=np.float64)
    t_rec = (n_tr + w * every) * dt_s
    if record.reduce == "mean":
        t_rec = t_rec - (every - 1) / 2 * dt_s
    return SimulationResult(time=u.Quantity(t_rec.astype(dtype), unit=u.second), variables=variables,
                            final_state=state, dt=dt_s * u.second, method=method, record=record)
