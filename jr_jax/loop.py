"""The compiled loop: ``run_chunk`` advances a run by a whole number of record windows under ``jit``.

One loop serves every use. What differs between one column, a batch of parameter sets and a network is held by a
*layout*, a small object with one interface:

* ``carry(state, step0)``: the loop's carry at the chunk's start (global step ``step0``); ``columns(carry)``: the packed state (6, …) in it (what
  is observed and checked for NaN); ``final(carry, step)``: the state to hand back;
* ``advance(carry, i, noise)``: one solver step from global step ``i``;
* ``noise(i)``: the random numbers of global step ``i`` (from ``fold_in(key, i)``: they depend on the key and the
  step only, never on the chunking); ``chunk_noise``: whether to draw a whole chunk's numbers at once.

:class:`Sets` is the plain layout (one column, or sets as a trailing axis); :class:`Column` lays one column out for
XLA's CPU runtime; :class:`Coupled` carries a network's ring buffer of delayed rates.
"""

from __future__ import annotations

from functools import partial

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import rng
from .batches import split_sets
from .history import from_ring, to_ring
from .model import STATE_UNITS, JRState, observable, pack, unpack
from .network import NetworkState
from .params import canonical

N_STATE = len(STATE_UNITS)
UNITS = {"eeg": u.mV, **dict(zip(JRState._fields, STATE_UNITS))}

BLOCK_STEPS = 256
"""Steps per block: the state is checked for NaN/Inf once per block (a check every step would double a step's
cost), and the random numbers are drawn vectorised per block (one draw per step costs far more on a CPU)."""

CHECKPOINT_BLOCK_STEPS = 128
"""Steps per block under ``checkpoint``: reverse mode stores one state per block and recomputes its steps. Half of
BLOCK_STEPS so that the backward loop's arrays stay small enough for XLA's CPU runtime to run its kernels in order
rather than through its thread pool (README, Benchmarks)."""

RIDE_MAX = 64
"""At most this many parameter and drive values ride in :class:`Column`'s carry."""


def _is_q(x) -> bool:
    return isinstance(x, u.Quantity)


def block_windows(n_windows: int, every: int, block_steps: int = BLOCK_STEPS) -> int:
    """Windows per block: about ``block_steps`` steps, preferably a divisor of n_windows (no tail loop)."""
    target = min(n_windows, max(1, block_steps // every))
    for g in range(target, max(1, target // 2) - 1, -1):
        if n_windows % g == 0:
            return g
    return target


def per_set_keys(key) -> bool:
    """Whether ``key`` is one key per set (a typed key array with an axis, or raw uint32 keys of shape (n, 2))."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    return jnp.ndim(key) > (0 if typed else 1)


# -- layouts ------------------------------------------------------------------------------------------------------

class Sets:
    """The packed state (6, …), any set axis of the parameters, drive and state last. A key with a set axis gives
    each set its own random numbers; one key gives every set the numbers a single run would draw."""

    chunk_noise = False

    def __init__(self, solver, params, drive, dt, key, dtype):
        self.solver, self.params, self.drive, self.dt, self.key, self.dtype = solver, params, drive, dt, key, dtype
        self.sets = None
        if per_set_keys(key):           # each set's values beside its key, for a vmap over the sets
            values, rebuild = split_sets((params, drive))
            self.sets = ([jnp.broadcast_to(x, key.shape) for x in values], rebuild)

    def noise(self, i):
        if self.sets is None:
            return self.solver.noise(rng.fold_in(self.key, i), self.dt, self.params, self.drive)
        values, rebuild = self.sets
        return jax.vmap(lambda k, v: self.solver.noise(rng.fold_in(k, i), self.dt, *rebuild(v)))(self.key, values)

    def carry(self, state, step0):
        return pack(state)

    def columns(self, carry):
        return carry

    def final(self, carry, step):
        return unpack(carry)

    def advance(self, y, i, noise):
        return pack(self.solver.step(unpack(y), i.astype(self.dtype) * self.dt, self.dt, self.params, self.drive,
                                     noise))


class Column(Sets):
    """One column (no set axis), laid out for XLA's CPU runtime, where a step's few scalar kernels cost more to
    launch than to run: the parameters ride in the carry (:func:`riders`), an optimisation barrier after each step
    makes the step's kernels one chain (run in order rather than through the thread pool), and a chunk's random
    numbers are drawn at once. Only for a plain ``simulate`` of one column: under ``vmap`` or ``grad``, or with a
    set axis, the plain :class:`Sets` layout is faster (README, Benchmarks); the numbers are the same."""

    chunk_noise = True

    def __init__(self, solver, params, drive, dt, key, dtype):
        super().__init__(solver, params, drive, dt, key, dtype)
        self.inputs, self.ride = riders((params, drive), dtype)

    def carry(self, state, step0):
        return jnp.concatenate([pack(state), self.ride])

    def columns(self, carry):
        return carry[:N_STATE]

    def final(self, carry, step):
        return unpack(carry[:N_STATE])

    def advance(self, y, i, noise):
        p, d = self.inputs(y[N_STATE:])
        y = jnp.concatenate([pack(self.solver.step(unpack(y[:N_STATE]), i.astype(self.dtype) * self.dt, self.dt, p,
                                                   d, noise)), y[N_STATE:]])
        return jax.lax.optimization_barrier(y)


def riders(tree, dtype):
    """Put the small ``dtype`` leaves of ``tree`` (at most RIDE_MAX numbers) into one vector that rides in the carry.

    Why: XLA on a CPU hoists every loop-invariant product of the parameters out of the loop and passes each to the
    step's kernels as its own buffer, which costs more than the step's arithmetic; values from the carry cannot be
    hoisted, so the kernels read one vector. Returns ``(inputs, vector)``: ``inputs(v)`` rebuilds ``tree``.
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


class Coupled(Sets):
    """A network (:class:`jr_jax.network.Network`): the carry holds the packed columns (6, N), the ring buffer of
    delayed rates, flat, twice over or once under ``checkpoint`` (:func:`jr_jax.history.to_ring`), and the
    read carried to the next step (or None); each solver stage gets the network's input at that stage's time.
    Column i draws its noise from ``jax.random.split(key, N)[i]``, as a single column would from that key."""

    def __init__(self, solver, params, drive, dt, key, dtype, network, history_shape, checkpoint):
        super().__init__(solver, params, drive, dt, key, dtype)
        self.network, self.history_shape = network, history_shape
        self.copies = 1 if checkpoint else 2          # see jr_jax.history.to_ring
        self.col_keys = jax.random.split(key, network.n_regions)
        self.p_cols = jax.tree.map(lambda x: jnp.broadcast_to(x, (network.n_regions,)), params)
        # measured on a CPU: with a random drive, carrying the read from step to step costs more than it saves
        self.prep = network.prepare(dt.mantissa, history_shape[0], dtype, solver.stages, carry=not drive.is_random,
                                    copies=self.copies)

    def noise(self, i):
        return jax.vmap(lambda k, pc: self.solver.noise(rng.fold_in(k, i), self.dt, pc, self.drive))(self.col_keys,
                                                                                                     self.p_cols)

    def carry(self, state, step0):
        hist = to_ring(state.history, step0, self.copies)
        return pack(state.columns), hist, self.network.first_read(hist, step0, self.prep)

    def columns(self, carry):
        return carry[0]

    def final(self, carry, step):
        return NetworkState(unpack(carry[0]), from_ring(carry[1], step, self.history_shape, self.copies))

    def advance(self, c, i, noise):
        y, hist, carried = c
        hook, carried = self.network.input_at(hist, i, self.prep, self.params, carried)
        y = pack(self.solver.step(unpack(y), i.astype(self.dtype) * self.dt, self.dt, self.params, self.drive, noise,
                                  hook))
        return y, self.network.push(hist, i + 1, unpack(y), self.params, self.copies), carried


# -- the loop -----------------------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("solver", "n_windows", "every", "variables", "reduce", "dtype", "checkpoint",
                                   "single"))
def run_chunk(params, drive, state, key, step0, dt_s, *, solver, n_windows, every, variables, reduce, dtype,
              checkpoint=False, network=None, single=False):
    """Advance ``n_windows * every`` steps from global step ``step0``; returns ``(state, bad, records)``.

    ``bad`` is, per column, the first window of the first block that ended with a non-finite state (−1 if none);
    ``records[name]`` has a leading axis of ``n_windows`` (the value at each window's end, or its mean with
    ``reduce="mean"``) and the state's trailing set or column axis. With ``checkpoint`` each block is a
    ``jax.checkpoint``: a gradient stores one state per block, not per step. ``single`` (one column, not under
    ``vmap`` or ``grad``) selects the :class:`Column` layout; a ``network`` the :class:`Coupled` one.
    """
    p = canonical(params, dtype)
    dt = u.Quantity(jnp.asarray(dt_s, dtype), unit=u.second)
    if network is not None:
        layout = Coupled(solver, p, drive, dt, key, dtype, network, state.history.shape, checkpoint)
    else:
        layout = (Column if single and not checkpoint else Sets)(solver, p, drive, dt, key, dtype)
    carry0 = layout.carry(state, step0)
    records = _Records(layout, variables, every, reduce, dtype)
    gw = block_windows(n_windows, every, CHECKPOINT_BLOCK_STEPS if checkpoint else BLOCK_STEPS)
    chunk_noise = None
    if drive.is_random and layout.chunk_noise:
        chunk_noise = jax.vmap(layout.noise)(step0 + jnp.arange(n_windows * every, dtype=jnp.int32))
    blocks = partial(_blocks, layout, records, step0, every, chunk_noise, drive.is_random, checkpoint)
    n_blocks, tail = divmod(n_windows, gw)
    carry, out = blocks((carry0, jnp.full(layout.columns(carry0).shape[1:], -1, jnp.int32)), 0, n_blocks, gw)
    if tail:
        carry, out_tail = blocks(carry, n_blocks * gw, 1, tail)
        out = jax.tree.map(lambda a, b: u.math.concatenate([a, b]), out, out_tail, is_leaf=_is_q)
    y, bad = carry
    return layout.final(y, step0 + n_windows * every), bad, out


class _Records:
    """What a window of ``every`` steps keeps: the named variables at its end, or their mean over its steps."""

    def __init__(self, layout, variables, every, reduce, dtype):
        self.layout, self.variables, self.every, self.reduce, self.dtype = layout, variables, every, reduce, dtype

    def observe(self, carry):
        state = unpack(self.layout.columns(carry))
        return {name: observable(state, name) for name in self.variables}

    def window(self, y, i0, noise):
        """``every`` steps from global step i0 with their random numbers (leading axis ``every``)."""
        advance = self.layout.advance
        if self.every == 1:
            y = advance(y, i0, jax.tree.map(lambda x: x[0], noise, is_leaf=_is_q))
            return y, self.observe(y)
        mean = self.reduce == "mean"

        def inner(c, xs):
            y, acc = c
            j, nz = xs
            y = advance(y, i0 + j, nz)
            if mean:
                acc = jax.tree.map(lambda a, b: a + b, acc, self.observe(y), is_leaf=_is_q)
            return (y, acc), None

        shape = self.layout.columns(y).shape[1:]
        acc0 = {n: u.Quantity(jnp.zeros(shape, self.dtype), unit=UNITS[n]) for n in self.variables} if mean else {}
        (y, acc), _ = jax.lax.scan(inner, (y, acc0), (jnp.arange(self.every), noise), length=self.every)
        return y, ({n: a / self.every for n, a in acc.items()} if mean else self.observe(y))


def _blocks(layout, records, step0, every, chunk_noise, random, checkpoint, carry, w_first, n_blocks, gw):
    """``n_blocks`` blocks of ``gw`` windows from chunk window ``w_first``; records get shape (n_blocks·gw, …)."""
    def block(carry, w0):
        if chunk_noise is not None:
            noise = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, w0 * every, gw * every), chunk_noise)
        else:
            steps = step0 + w0 * every + jnp.arange(gw * every, dtype=jnp.int32)
            noise = jax.vmap(layout.noise)(steps) if random else layout.noise(step0)
        noise = jax.tree.map(lambda x: x.reshape((gw, every) + x.shape[1:]), noise, is_leaf=_is_q)

        def win(y, xs):
            w, nz = xs
            return records.window(y, step0 + w * every, nz)

        y, bad = carry
        y, out = jax.lax.scan(win, y, (w0 + jnp.arange(gw, dtype=jnp.int32), noise), length=gw)
        bad = jnp.where((bad < 0) & ~jnp.all(jnp.isfinite(layout.columns(y)), axis=0), w0, bad)
        return (y, bad), out

    if checkpoint:
        block = jax.checkpoint(block, prevent_cse=False)
    carry, out = jax.lax.scan(block, carry, w_first + gw * jnp.arange(n_blocks, dtype=jnp.int32))
    return carry, jax.tree.map(lambda x: x.reshape((n_blocks * gw,) + x.shape[2:]), out, is_leaf=_is_q)
