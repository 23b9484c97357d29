"""Parameter sweeps: many parameter sets as the set axis of the one compiled simulation, features instead of
trajectories, chunks sized for the device, split over a CPU's cores or sharded over all devices, and results on
disk that resume.

A sweep runs every set with :func:`jr_jax.simulate`'s loop (same integrator, same random numbers): with
``keys="common"`` (the default) every set sees the noise that ``simulate(..., key=key)`` would draw, so a set's
result is exactly that of a single simulation; ``keys="independent"`` gives set i the key ``fold_in(key, i)``.
"""

from __future__ import annotations

import dataclasses
import sys
import time as _time
from functools import partial
from pathlib import Path
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as _drives
from . import monitors
from ._batch import batch_size, cpu_parts, initial_states, join, map_sets, split_runs, take
from ._store import atomic_savez, digest, open_spec_dir, stored_spec
from ._units import check_dim
from .integrators import get_method
from .model import JRState
from .params import CANONICAL_UNITS, FIELD_NAMES, JRParams
from .simulate import DEFAULT_DT, DEFAULT_METHOD, _n_steps, _run_chunk, run_settings

SPEC_VERSION = 1


class SweepSpecError(ValueError):
    """A resume directory holds a sweep with a different specification."""


# -- designs ----------------------------------------------------------------------------------------------------

class Design(NamedTuple):
    """Parameter sets to sweep: ``params`` and ``drive`` whose fields are scalars (shared) or arrays of one length
    (one value per set); ``axes`` the swept values (per grid axis, or per set for a random design); ``shape`` the
    grid's shape (``(n,)`` for a random design)."""

    params: JRParams
    drive: _drives.Drive
    axes: dict
    shape: tuple

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def take(self, index) -> "Design":
        """The sets at ``index`` as a flat design, e.g. ``design.take(np.arange(rank, design.size, n_ranks))`` for
        one process's share of a sweep split over hosts."""
        n = self.size
        keep = np.arange(n)[index]

        def sl(x):
            return x[keep] if np.ndim(x) == 1 and np.shape(x)[0] == n else x

        axes = {k: (v[keep] if np.shape(u.get_mantissa(v)) == (n,) else v) for k, v in self.axes.items()}
        return Design(jax.tree.map(sl, self.params), jax.tree.map(sl, self.drive), axes, (len(keep),))


_P_FIELD = {_drives.Constant: "value", _drives.WhiteNoise: "mu"}


def _assign(params: JRParams, drive, name: str, values):
    """Set the swept quantity ``name`` (a JRParams field, or ``p`` = the drive's mean) to ``values``."""
    if name == "p":
        field = _P_FIELD.get(type(drive))
        if field is None:
            raise ValueError(f"the axis 'p' sets the mean input of a constant or white-noise drive; the drive is "
                             f"{type(drive).__name__}. Build the drives yourself and pass them to sweep().")
        check_dim("axis p", values, u.Hz, "np.linspace(50, 350, 64) * u.Hz")
        return params, dataclasses.replace(drive, **{field: values})
    if name not in FIELD_NAMES:
        raise ValueError(f"unknown sweep axis {name!r}: use a JRParams field {list(FIELD_NAMES)} or 'p'.")
    return params.replace(**{name: values}), drive


def _axis_values(name, values):
    q = values if isinstance(values, u.Quantity) else u.Quantity(np.asarray(values, dtype=np.float64))
    if np.ndim(q.mantissa) != 1 or np.size(q.mantissa) == 0:
        raise ValueError(f"axis {name!r} needs a non-empty 1-D array of values; got shape {np.shape(q.mantissa)}.")
    return q


def grid(*, base: JRParams | None = None, drive=None, **axes) -> Design:
    """The cartesian product of the given axes, e.g. ``grid(A=np.linspace(2, 10, 64) * u.mV, B=...)``.

    Axis names are JRParams fields or ``p`` (the mean of a constant or white-noise drive; default drive
    ``constant(220 Hz)``). The first axis varies slowest (``result.grid(name)`` has shape ``(len(ax1), len(ax2), …)``).
    """
    if not axes:
        raise ValueError("grid() needs at least one axis, e.g. grid(B=np.linspace(10, 60, 32) * u.mV).")
    params = JRParams() if base is None else base
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    vals = {name: _axis_values(name, v) for name, v in axes.items()}
    shape = tuple(len(v.mantissa) for v in vals.values())
    mesh = np.meshgrid(*[np.asarray(v.mantissa) for v in vals.values()], indexing="ij")
    for (name, v), m in zip(vals.items(), mesh):
        params, drive = _assign(params, drive, name, u.Quantity(m.ravel(), unit=v.unit))
    return Design(params, drive, vals, shape)


def random_design(n: int, *, key, base: JRParams | None = None, drive=None, log=(), **bounds) -> Design:
    """``n`` sets drawn uniformly (or log-uniformly for the names in ``log``) within ``bounds``, e.g.
    ``random_design(1000, key=jax.random.key(0), A=(2 * u.mV, 10 * u.mV), a=(50 * u.Hz, 200 * u.Hz), log=("a",))``."""
    if int(n) < 1:
        raise ValueError(f"random_design needs n >= 1 sets; got {n}.")
    params = JRParams() if base is None else base
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    unknown = set(log) - set(bounds)
    if unknown:
        raise ValueError(f"log names {sorted(unknown)} have no bounds.")
    axes = {}
    for i, (name, (lo, hi)) in enumerate(bounds.items()):
        unit = lo.unit if isinstance(lo, u.Quantity) else u.UNITLESS
        lo_v = float(u.Quantity(lo).to_decimal(unit))
        hi_v = float(u.Quantity(hi).to_decimal(unit))
        if not lo_v < hi_v:
            raise ValueError(f"bounds for {name!r} must be (low, high) with low < high; got ({lo}, {hi}).")
        z = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (int(n),), dtype=jnp.float32), np.float64)
        if name in log:
            if lo_v <= 0:
                raise ValueError(f"log-uniform {name!r} needs positive bounds; got ({lo}, {hi}).")
            v = np.exp(np.log(lo_v) + z * (np.log(hi_v) - np.log(lo_v)))
        else:
            v = lo_v + z * (hi_v - lo_v)
        axes[name] = u.Quantity(v, unit=unit)
        params, drive = _assign(params, drive, name, axes[name])
    return Design(params, drive, axes, (int(n),))


# -- batching helpers -------------------------------------------------------------------------------------------

def _canonical_leaves(params: JRParams, drive, dtype):
    """(params, drive) with every field in canonical units as a NumPy array: one value per set where the design
    varies it, a scalar where every set shares it. Shared values stay scalars in the compiled chunk: broadcast to
    one per set, the products of parameters that XLA hoists out of the loop became per-set arrays that every step
    read (67 in the loop body of a 4096-set chunk instead of 9; W2's features took 41–43 ms instead of 37–39 ms,
    bit-identical)."""
    fields = {}
    for name in FIELD_NAMES:
        v = getattr(params, name)
        unit = CANONICAL_UNITS[name]
        m = v.to_decimal(unit) if isinstance(v, u.Quantity) and not unit.is_unitless else u.get_mantissa(v)
        fields[name] = np.asarray(m, dtype) if unit.is_unitless else u.Quantity(np.asarray(m, dtype), unit=unit)
    params = JRParams.tree_unflatten(None, [fields[k] for k in FIELD_NAMES])
    drive = map_sets(lambda x: np.asarray(x, dtype), drive)
    return params, drive


# -- the compiled chunk -----------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("method", "n_tr", "every", "seg_len", "n_seg", "keep", "fs_hz", "independent",
                                   "dtype"))
def _sweep_chunk(params, drive, state, index, key, dt_s, *, method, n_tr, every, seg_len, n_seg, keep, fs_hz,
                 independent, dtype):
    """Run the sets of one chunk (leading axis of every leaf; they run as the loop's trailing set axis) and
    accumulate their features."""
    n = index.shape[0]
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, index) if independent else key

    def run(state, step0, n_windows, ev, variables):
        return _run_chunk(params, drive, state, keys, step0, dt_s, method=method, n_windows=n_windows, every=ev,
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


# -- results ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Features per set (``features[name]``: Quantity of shape (n_sets, ...); also as attributes), the PSD's
    ``freqs``, the ``design``, ``complete`` (False when ``max_chunks`` stopped the sweep early: the sets not
    computed yet are NaN and ``computed`` is False for them) and the ``chunk_size`` it ran in."""

    features: dict
    freqs: u.Quantity
    design: Design
    computed: np.ndarray
    complete: bool
    chunk_size: int

    def __getattr__(self, name):
        feats = self.__dict__.get("features", {})
        if name in feats:
            return feats[name]
        raise AttributeError(name)

    def grid(self, name: str):
        """Feature ``name`` reshaped to the design's grid shape (plus the feature's own trailing axes)."""
        v = self.features[name]
        mant = v.mantissa if isinstance(v, u.Quantity) else np.asarray(v)
        out = np.asarray(mant).reshape(tuple(self.design.shape) + np.shape(mant)[1:])
        return u.Quantity(out, unit=v.unit) if isinstance(v, u.Quantity) else out


def _feature_units(features: monitors.Features) -> dict:
    mv = u.mV
    units = {"mean": mv, "std": mv, "skewness": u.UNITLESS, "min": mv, "max": mv, "peak_to_peak": mv,
             "psd": mv ** 2 / u.Hz, "dominant_frequency": u.Hz, "alpha_share": u.UNITLESS, "peak_share": u.UNITLESS}
    units.update({f"power_{b[0]}": mv ** 2 for b in features.bands})
    return units


# -- resume directory -------------------------------------------------------------------------------------------

class _Bar:
    def __init__(self, n_chunks, n_sets, enabled):
        self.n_chunks, self.n_sets, self.enabled = n_chunks, n_sets, enabled
        self.t0, self.sets = _time.perf_counter(), 0

    def update(self, done, new_sets):
        if not self.enabled:
            return
        self.sets += new_sets
        el = _time.perf_counter() - self.t0
        frac = done / self.n_chunks
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        rate = self.sets / el if el > 0 else float("inf")
        sys.stderr.write(f"\rsweep [{bar}] {done}/{self.n_chunks} chunks, {rate:.4g} sets/s")
        if done >= self.n_chunks:
            sys.stderr.write("\n")
        sys.stderr.flush()


# -- chunk size -------------------------------------------------------------------------------------------------

CPU_CHUNK = 4096
"""Default sets per chunk on a device that reports no memory (a CPU): with the default features ~17 kB of XLA
buffers per set, 70 MB per chunk, split over the cores."""

MEMORY_FRACTION = 0.5
"""On a device that reports its memory (a GPU), the default chunk's buffers take at most this share of the free
memory of the fullest device (the rest is headroom for the results, the next chunk's inputs and fragmentation)."""

MAX_CHUNK_PER_DEVICE = 1 << 20
"""Upper bound of the default chunk per device, so that a resumable sweep still writes to disk every few seconds."""

PROBE_SETS = 256
"""Sets of the probe chunk whose compiled memory gives the bytes per set; the default chunk per device is a
multiple of it."""


def _free_device_bytes() -> int | None:
    """The free memory of the fullest local device (its allocator's limit less what is in use), or None where the
    backend does not report one (a CPU)."""
    free = []
    for d in jax.local_devices():
        stats = d.memory_stats()
        if not stats or "bytes_limit" not in stats:
            return None
        free.append(int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    return min(free)


def chunk_for_memory(bytes_per_set: float, free_bytes: float, n_devices: int = 1) -> int:
    """Sets per chunk such that each device's share takes at most ``MEMORY_FRACTION`` of ``free_bytes``: a multiple
    of ``PROBE_SETS`` per device (fewer sets only when that many do not fit), at most ``MAX_CHUNK_PER_DEVICE``."""
    per_device = int(MEMORY_FRACTION * free_bytes // bytes_per_set)
    if per_device < 1:
        raise MemoryError(f"one parameter set of this sweep needs {bytes_per_set / 1e6:.3g} MB of device memory, and "
                          f"{MEMORY_FRACTION:g} of the {free_bytes / 1e6:.3g} MB free is less; free device memory, "
                          f"shorten features.segment (its samples are kept per set) or pass chunk_size.")
    if per_device >= PROBE_SETS:
        per_device -= per_device % PROBE_SETS
    return min(per_device, MAX_CHUNK_PER_DEVICE) * n_devices


# -- the sweep --------------------------------------------------------------------------------------------------

def sweep(design, *, duration, dt=DEFAULT_DT, drive=None, method: str = DEFAULT_METHOD, key=None,
          keys: str = "common", transient=1.0 * u.second, features: monitors.Features | None = None,
          initial_state: JRState | None = None, chunk_size: int | None = None, out_dir=None, progress: bool = False,
          dtype=None, max_chunks: int | None = None) -> SweepResult:
    """Simulate every parameter set of ``design`` and return its features.

    Args:
      design: a :class:`Design` (from :func:`grid` / :func:`random_design`) or a :class:`JRParams` whose fields are
        scalars or 1-D arrays of one length (then ``drive`` may be batched the same way).
      duration: recorded time per set, a whole number of feature segments (``features.segment``, 2 s; a shorter
        duration is one segment). ``transient`` (default 1 s) runs first and is not measured.
      dt, method, dtype: as in :func:`jr_jax.simulate`.
      key: ``jax.random.key`` (required for a random drive); ``keys``: ``"common"`` or ``"independent"``.
      features: :class:`jr_jax.monitors.Features`.
      initial_state: :class:`JRState` whose fields are scalars or one value per set (default: all zeros).
      chunk_size: sets per compiled chunk, rounded up to a multiple of the device count; memory is bounded by one
        chunk. Default: on a device that reports its memory (a GPU), the most sets whose compiled chunk (XLA's
        own accounting of a 256-set probe, scaled) takes at most half of the free memory, in multiples of 256
        per device, at most 2^20 per device; on a CPU 4096 (``CPU_CHUNK``). A resumed sweep keeps the chunk
        size stored in ``out_dir``.
      out_dir: directory for a resumable sweep: the specification and each finished chunk are written there; a
        second call with the same specification loads what is done and computes the rest; a different
        specification raises :class:`SweepSpecError` and overwrites nothing.
      progress: progress bar (chunks, sets per second) on stderr.
      max_chunks: compute at most this many new chunks in this call (for time-sliced jobs; needs ``out_dir``).
    """
    if isinstance(design, Design):
        if drive is not None:
            raise ValueError("pass the drive inside the Design (grid(..., drive=...)), not also to sweep().")
        params, drive, the_design = design.params, design.drive, design
    elif isinstance(design, JRParams):
        params = design
        drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
        the_design = None
    else:
        raise TypeError(f"design must be a jr_jax.Design or a JRParams; got {type(design).__name__}.")
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    if keys not in ("common", "independent"):
        raise ValueError(f"keys must be 'common' or 'independent'; got {keys!r}.")
    features = monitors.Features() if features is None else features
    if not isinstance(features, monitors.Features):
        raise TypeError(f"features must be a jr_jax.monitors.Features; got {type(features).__name__}.")
    method = get_method(method).name
    n = batch_size(params, drive)
    if the_design is None:
        the_design = Design(params, drive, {}, (n,))
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    every, seg_len, n_seg = features.layout(dt_s, dur_s)
    n_tr = _n_steps("transient", tr_s, dt_s)
    if max_chunks is not None and out_dir is None:
        raise ValueError("max_chunks needs out_dir, where the finished chunks are kept for the next call.")

    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive number of sets; got {chunk_size!r}.")
    fs_hz = 1.0 / (every * dt_s)
    freqs_all = np.fft.rfftfreq(seg_len, 1.0 / fs_hz)
    keep = monitors.n_freq(seg_len, fs_hz, float(features.fmax.to_decimal(u.Hz)))
    freqs = freqs_all[:keep]

    cparams, cdrive = _canonical_leaves(params, drive, np.dtype(dtype))
    cstate = initial_states(initial_state, n, np.dtype(dtype))
    static = dict(method=method, n_tr=n_tr, every=every, seg_len=seg_len, n_seg=n_seg, keep=keep, fs_hz=fs_hz,
                  independent=keys == "independent", dtype=dtype)

    def chunk_args(idx):
        return take(cparams, idx, n), take(cdrive, idx, n), take(cstate, idx, n), np.asarray(idx, np.int32)

    # the hash sees one value per set, however the values are held
    hash_params, hash_drive = map_sets(lambda x: np.broadcast_to(x, (n,)), (cparams, cdrive))
    n_dev = jax.device_count()
    stored = stored_spec(out_dir) if chunk_size is None else None
    if stored is not None and "chunk_size" in stored:       # a resumed sweep keeps its chunks
        chunk_size = int(stored["chunk_size"])
    elif chunk_size is None:
        free = _free_device_bytes()
        if free is None:
            chunk_size = CPU_CHUNK
        else:                       # XLA's accounting of a probe chunk's buffers, per set
            m = min(n, PROBE_SETS)
            mem = _sweep_chunk.lower(*chunk_args(np.arange(m)), key, dt_s, **static).compile().memory_analysis()
            bytes_per_set = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes) / m
            chunk_size = chunk_for_memory(bytes_per_set, free, n_dev)
    chunk = min(int(chunk_size), n)
    chunk = -(-chunk // n_dev) * n_dev
    n_chunks = -(-n // chunk)
    spec = {"version": SPEC_VERSION, "n_sets": n, "chunk_size": chunk, "duration_s": dur_s, "dt_s": dt_s,
            "transient_s": tr_s, "method": method, "dtype": str(np.dtype(dtype)), "keys": keys,
            "key": np.asarray(jax.random.key_data(key)).ravel().tolist(), "features": features.to_dict(),
            "drive": type(drive).__name__, "design_sha256": digest((hash_params, (hash_drive, cstate)))}
    out_path = None if out_dir is None else Path(out_dir)
    if out_path is not None:
        open_spec_dir(out_path, spec, SweepSpecError, "sweep")

    sharding = None
    if n_dev > 1:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("sets",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("sets"))
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    units = _feature_units(features)
    names = list(units) + ["diverged"]
    store = {k: None for k in names}
    computed = np.zeros(n, bool)
    bar = _Bar(n_chunks, n, progress)
    new = 0
    for c in range(n_chunks):
        lo, hi = c * chunk, min((c + 1) * chunk, n)
        path = None if out_path is None else out_path / f"chunk_{c:05d}.npz"
        if path is not None and path.exists():
            with np.load(path) as z:
                part = {k: z[k] for k in names}
        elif max_chunks is not None and new >= max_chunks:
            continue
        else:
            idx = np.minimum(np.arange(lo, lo + chunk), n - 1)       # the last chunk is padded with its last set

            def run_part(sub):
                args = chunk_args(idx[sub])
                if sharding is not None:        # the sets' values split over the devices, shared values on each
                    args = jax.tree.map(lambda x: jax.device_put(x, sharding if np.ndim(x) else replicated), args)
                return _sweep_chunk(*args, key, dt_s, **static)

            acc, bad = join(split_runs(run_part, chunk, cpu_parts(chunk)), hi - lo)
            feats = monitors.finalize(acc, freqs, features, bad)
            part = {k: np.asarray(v.mantissa if isinstance(v, u.Quantity) else v) for k, v in feats.items()}
            if path is not None:
                atomic_savez(path, **part)
            new += 1
        for k in names:
            if store[k] is None:
                fill = False if k == "diverged" else np.nan
                store[k] = np.full((n,) + part[k].shape[1:], fill, dtype=part[k].dtype)
            store[k][lo:hi] = part[k]
        computed[lo:hi] = True
        bar.update(c + 1, hi - lo)
    if store["mean"] is None:
        store = {k: np.full((n, keep) if k == "psd" else (n,), np.nan) for k in names}
        store["diverged"] = np.zeros(n, bool)
    out = {k: (u.Quantity(store[k], unit=units[k]) if k in units else store[k]) for k in names}
    return SweepResult(out, u.Quantity(freqs, unit=u.Hz), the_design, computed, bool(computed.all()), chunk)
