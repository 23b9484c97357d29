"""The compiled chunk of a sweep, and one chunk as a task: plain, picklable data that any process with jr_jax (a
worker of a process pool or of a Dask cluster) turns into the chunk's features and writes into the sweep's folder.

A chunk is a pure function of the sweep's specification and its index: the specification fixes into how many parts a
chunk is split (the float32 sums of the features depend on the sets per compiled call), so on workers with the same
versions and the same kind of device a chunk gives the same numbers wherever it runs, whatever their cores, and a
chunk computed twice (by a worker lost after its write, and again) is the same file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from functools import partial
from pathlib import Path

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as _drives
from . import monitors
from .batches import cpu_parts, join, split_runs, take
from .loop import run_chunk
from .model import JRState
from .params import JRParams
from .store import SPEC, CheckpointStore, StoreError, stored_spec


class SweepSpecError(ValueError):
    """A resume directory holds a sweep with a different specification."""


# -- the compiled chunk -----------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("solver", "n_tr", "every", "seg_len", "n_seg", "keep", "fs_hz", "independent",
                                   "dtype"))
def sweep_chunk(params, drive, state, index, key, dt_s, *, solver, n_tr, every, seg_len, n_seg, keep, fs_hz,
                 independent, dtype):
    """Run the sets of one chunk (the leading axis of every per-set leaf; they run as the loop's trailing set axis)
    and accumulate their features: ``(accumulators, diverged)``. A documented internal of :func:`jr_jax.sweep`."""
    n = index.shape[0]
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, index) if independent else key

    def run(state, step0, n_windows, ev, variables):
        return run_chunk(params, drive, state, keys, step0, dt_s, solver=solver, n_windows=n_windows, every=ev,
                         variables=variables, reduce="mean", dtype=dtype)

    bad = jnp.zeros((n,), bool)
    if n_tr:
        state, b, _ = run(state, jnp.int32(0), n_tr, 1, ())
        bad = b >= 0

    def segment(carry, k):
        state, acc, bad = carry
        step0 = n_tr + k * (seg_len * every)
        state, b, out = run(state, step0, seg_len, every, ("eeg",))
        acc = monitors.update(acc, out["eeg"].to_decimal(u.mV).T, fs_hz, keep)
        return (state, acc, bad | (b >= 0)), None

    acc = monitors.init((n,), keep, dtype)
    (state, acc, bad), _ = jax.lax.scan(segment, (state, acc, bad), jnp.arange(n_seg, dtype=jnp.int32))
    return acc, bad


@dataclasses.dataclass
class Chunks:
    """The compiled chunk of one sweep and its inputs: ``run(idx)`` computes the features of the sets ``idx``,
    split over the CPU's cores or sharded over the devices."""

    params: JRParams
    drive: _drives.Drive
    state: JRState
    n: int
    key: jax.Array
    dt_s: float
    static: dict
    numbers: np.ndarray | None = None       # the sets' numbers in the sweep (None: row i is set i)
    parts: int | None = None                # calls per chunk (None: one per core, jr_jax.batches.cpu_parts)

    def args(self, idx):
        number = idx if self.numbers is None else self.numbers[idx]
        return (take(self.params, idx, self.n), take(self.drive, idx, self.n), take(self.state, idx, self.n),
                np.asarray(number, np.int32))

    def bytes_per_set(self, m: int) -> float:
        """XLA's accounting of the buffers of a chunk of the first ``m`` sets, per set."""
        mem = sweep_chunk.lower(*self.args(np.arange(m)), self.key, self.dt_s, **self.static).compile()
        mem = mem.memory_analysis()
        return (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes) / m

    def run(self, idx, n_real: int):
        n_dev = jax.device_count()
        if n_dev > 1:     # the sets' values split over the devices, shared values on each
            mesh = jax.sharding.Mesh(np.array(jax.devices()), ("sets",))
            spread = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("sets"))
            whole = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

        def part(sub):
            args = self.args(idx[sub])
            if n_dev > 1:
                args = jax.tree.map(lambda x: jax.device_put(x, spread if np.ndim(x) else whole), args)
            return sweep_chunk(*args, self.key, self.dt_s, **self.static)

        # several devices shard one call instead (each part would need a multiple of the devices' count)
        parts = cpu_parts(len(idx)) if self.parts is None or n_dev > 1 else min(self.parts, len(idx))
        return join(split_runs(part, len(idx), parts), n_real)


# -- one chunk as a task ----------------------------------------------------------------------------------------

def pack_key(key) -> tuple:
    """``(words, impl)`` of a key as NumPy data (``impl`` None for a raw uint32 key), for :func:`unpack_key`."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
    return np.asarray(key), None


def unpack_key(packed: tuple):
    words, impl = packed
    return words if impl is None else jax.random.wrap_key_data(words, impl=impl)


@dataclasses.dataclass(frozen=True)
class ChunkTask:
    """One chunk of a sweep as plain, picklable data (NumPy arrays, the key's words): the chunk's sets in canonical
    units (the last chunk padded with its last set), their numbers in the sweep, and every setting that fixes the
    numbers. :meth:`compute` is the one computation of a chunk, in the calling process or on a worker."""

    name: str
    params: JRParams
    drive: _drives.Drive
    state: JRState
    numbers: np.ndarray
    n_real: int
    key: tuple
    dt_s: float
    static: dict
    freqs: np.ndarray
    features: monitors.Features
    spec: dict
    out_dir: str | None
    x64: bool
    parts: int

    def compute(self) -> dict:
        """``{feature: array}`` of the chunk's sets (the padding dropped), split over the cores or devices."""
        m = len(self.numbers)
        chunks = Chunks(self.params, self.drive, self.state, m, unpack_key(self.key), self.dt_s, self.static,
                         self.numbers, self.parts)
        acc, bad = chunks.run(np.arange(m), self.n_real)
        feats = monitors.finalize(acc, self.freqs, self.features, bad)
        return {k: np.asarray(v.mantissa if isinstance(v, u.Quantity) else v) for k, v in feats.items()}


@contextlib.contextmanager
def _worker_folder(path: Path):
    """A file error of a worker in the sweep's folder, named as one: the folder, the worker, what it needs."""
    try:
        yield
    except StoreError:
        raise                   # names the damaged file already
    except OSError as err:
        raise OSError(f"out_dir {path}: the worker on {socket.gethostname()} (process {os.getpid()}) cannot use "
                      f"this folder ({type(err).__name__}: {err}). Every worker needs it at the same path, shared "
                      f"with the caller and writable.") from err


def compute_chunk(task: ChunkTask) -> str:
    """An executor's task: compute ``task`` and write it into the sweep's folder, unless it is there already (a
    worker lost after its write); returns the chunk's name. The folder must hold the sweep's specification, which
    the caller wrote: a worker that does not see it is not on the shared folder."""
    path = Path(task.out_dir)
    with jax.enable_x64(task.x64), _worker_folder(path):
        if stored_spec(path) is None:
            raise FileNotFoundError(f"{path / SPEC} not found: the caller's folder is not visible here")
        store = CheckpointStore(path, task.spec, error=SweepSpecError, what="sweep")
        if task.name not in store:
            store.save({task.name: task.compute()})
    return task.name
