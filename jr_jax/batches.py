"""Batches of parameter sets: their size, and their split over the cores of a CPU.

A batch runs as a trailing set axis of the one compiled loop (the packed state is (6, n)). On a CPU, XLA runs a
call on the thread that makes it, so one such loop keeps one core busy: :func:`split_runs` runs equal parts of a
batch as separate calls on separate threads, one per core; each part computes exactly what it would inside the
whole batch, since the sets never interact.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import brainunit as u
import jax
import numpy as np

from .units import check_dim, check_range
from .drives import Table
from .model import STATE_UNITS, JRState
from .params import FIELD_NAMES


def _is_table(x) -> bool:
    return isinstance(x, Table)


def split_sets(tree):
    """``(values, rebuild)``: the leaves of ``tree`` that may hold one value per set (all but a drive's tables of
    samples), and ``rebuild(new_values)``, ``tree`` with new values in their places and the tables kept."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_table)
    per_set = [not _is_table(x) for x in leaves]

    def rebuild(values):
        it = iter(values)
        return jax.tree.unflatten(treedef, [next(it) if s else x for x, s in zip(leaves, per_set)])

    return [x for x, s in zip(leaves, per_set) if s], rebuild


def set_leaves(tree) -> list:
    return split_sets(tree)[0]


def map_sets(fn, tree):
    """``fn`` applied to every leaf of ``tree`` that may hold one value per set (a drive's tables stay as they are)."""
    values, rebuild = split_sets(tree)
    return rebuild([fn(x) for x in values])


def _named_set_leaves(params, drive):
    named = [(f"params.{n}", x) for n, x in zip(FIELD_NAMES, jax.tree.leaves(params))]
    paths, _ = jax.tree_util.tree_flatten_with_path(drive, is_leaf=_is_table)
    return named + [("drive" + jax.tree_util.keystr(p), x) for p, x in paths if not _is_table(x)]


def batch_size(params, drive) -> int:
    """Number of sets in (params, drive): every non-scalar field must be 1-D of the same length (1 if none is)."""
    sizes = {}
    for name, leaf in _named_set_leaves(params, drive):
        shape = np.shape(leaf)
        if shape == ():
            continue
        if len(shape) != 1:
            raise ValueError(f"{name} must be a scalar or a 1-D array (one value per set); got shape {shape}.")
        sizes[name] = shape[0]
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"batched fields must all have the same length; got {listing}.")
    n = next(iter(sizes.values()), 1)
    if n == 0:
        raise ValueError("the batch is empty (fields of length 0).")
    return n


def is_batched(params, drive) -> bool:
    return any(np.ndim(leaf) for leaf in set_leaves((params, drive)))


def initial_states(state, n: int, dtype) -> JRState:
    """``initial_state`` for a batch of ``n`` sets (None: zeros), each field checked (unit, real and finite numbers,
    shape) and broadcast to shape (n,)."""
    if state is None:
        return JRState(*(u.Quantity(np.zeros(n, dtype), unit=unit) for unit in STATE_UNITS))
    if not isinstance(state, JRState):
        raise TypeError(f"initial_state must be a jr_jax.JRState; got {type(state).__name__}.")
    out = []
    for name, value, unit in zip(JRState._fields, state, STATE_UNITS):
        check_dim(f"initial_state.{name}", value, unit, f"np.zeros(n) * u.{'mV' if unit == u.mV else 'mV / u.second'}")
        check_range(f"initial_state.{name}", value, unit)
        m = np.asarray(value.to_decimal(unit), dtype)
        if m.shape not in ((), (n,)):
            raise ValueError(f"initial_state.{name} must be a scalar or have one value per set ({n}); got shape "
                             f"{m.shape}.")
        out.append(u.Quantity(np.broadcast_to(m, (n,)), unit=unit))
    return JRState(*out)


PARTS_ENV = "JR_JAX_CPU_PARTS"
"""Environment variable: split a batch into this many parts instead of one per core (a CPU backend only)."""


def cpu_parts(n: int) -> int:
    """Into how many parts to split a batch of ``n`` sets: the CPU cores this process may use (or ``PARTS_ENV``), on
    a CPU backend with one device (with several devices :func:`jr_jax.sweep` shards the batch instead; a GPU runs it
    whole)."""
    if jax.default_backend() != "cpu" or jax.device_count() > 1:
        return 1
    if os.environ.get(PARTS_ENV):
        value = os.environ[PARTS_ENV]
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{PARTS_ENV} must be a positive whole number of parts; got {value!r}.")
        return min(n, int(value))
    return max(1, min(n, usable_cores()))


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def part_indices(n: int, parts: int):
    """``parts`` index arrays of one length covering 0..n-1 (the last padded with its last set, so that every part
    reuses one compiled run); cut the results back with :func:`join`."""
    size = -(-n // parts)
    return [np.minimum(np.arange(k * size, (k + 1) * size), n - 1) for k in range(parts)]


def take(tree, idx, n: int):
    """The sets ``idx`` of every leaf with a leading axis of length ``n`` (other leaves are shared)."""
    return map_sets(lambda x: x[idx] if np.ndim(x) and np.shape(x)[0] == n else x, tree)


def split_runs(fn, n: int, parts: int):
    """``[fn(idx) for idx in part_indices(n, parts)]``, the calls made on ``parts`` threads (XLA on a CPU runs a
    call on the thread that makes it: two calls from one thread run one after the other). The caller's 64-bit
    setting and default device, which JAX keeps per thread when set by a context manager, hold on every thread."""
    idx = part_indices(n, parts)
    if parts == 1:
        return [fn(idx[0])]
    x64, device = jax.config.jax_enable_x64, jax.config.jax_default_device

    def call(i):
        with jax.enable_x64(x64), jax.default_device(device):
            return jax.block_until_ready(fn(i))

    with ThreadPoolExecutor(max_workers=parts) as pool:
        return list(pool.map(call, idx))


def join(results, n: int, axis: int = 0):
    """Concatenate the parts' arrays (a list of equal pytrees) along ``axis`` and drop the padding (to ``n`` sets)."""
    def cat(*xs):
        x = np.concatenate([np.asarray(a) for a in xs], axis=axis) if len(xs) > 1 else np.asarray(xs[0])
        return x[(slice(None),) * (axis % x.ndim) + (slice(0, n),)] if x.shape[axis] != n else x
    return jax.tree.map(cat, *results)
