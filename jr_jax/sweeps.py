"""Parameter sweeps: many parameter sets as the set axis of the one compiled simulation, features instead of
trajectories, chunks sized for the device, split over a CPU's cores or sharded over all devices, and results on
disk that resume.

A sweep runs every set with :func:`jr_jax.simulate`'s loop (same integrator, same random numbers): with
``keys="common"`` (the default) every set sees the noise that ``simulate(..., key=key)`` would draw, so a set's
result is exactly that of a single simulation; ``keys="independent"`` gives set i the key ``fold_in(key, i)``.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as _drives
from . import monitors
from .batches import batch_size, cpu_parts, initial_states, join, map_sets, split_runs, take
from .checks import check_budget as check_run_budget
from .checks import check_folder, finite_leaves, run_settings, whole_steps
from .designs import Design
from .loop import run_chunk
from .model import JRState
from .params import CANONICAL_UNITS, FIELD_NAMES, JRParams
from .progress import Progress, check_progress
from .simulation import DEFAULT_DT, DEFAULT_METHOD
from .solvers import Solver, solver as get_solver
from .store import CheckpointStore, digest, stored_spec
from .units import check_bool, check_int

SPEC_VERSION = 1


class SweepSpecError(ValueError):
    """A resume directory holds a sweep with a different specification."""


# -- batching helpers -------------------------------------------------------------------------------------------

def canonical_leaves(params: JRParams, drive, dtype):
    """(params, drive) with every field in canonical units as a NumPy array: one value per set where the design
    varies it, a scalar where every set shares it. Shared values stay scalars so that the products of parameters
    XLA hoists out of the loop stay scalars too, instead of per-set arrays that every step reads."""
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

@partial(jax.jit, static_argnames=("solver", "n_tr", "every", "seg_len", "n_seg", "keep", "fs_hz", "independent",
                                   "dtype"))
def sweep_chunk(params, drive, state, index, key, dt_s, *, solver, n_tr, every, seg_len, n_seg, keep, fs_hz,
                 independent, dtype):
    """Run the sets of one chunk (the leading axis of every per-set leaf; they run as the loop's trailing set axis)
    and accumulate their features: ``(accumulators, diverged)``. A documented internal of :func:`sweep`."""
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

    def to_xarray(self):
        """The features as an ``xarray.Dataset`` over the grid's axes (else ``set``), the PSD also over ``frequency``
        (:func:`jr_jax.export.sweep_dataset`). Needs ``pip install jr_jax[xarray]``."""
        from .export import sweep_dataset
        return sweep_dataset(self)


def _feature_units(features: monitors.Features) -> dict:
    mv = u.mV
    units = {"mean": mv, "std": mv, "skewness": u.UNITLESS, "min": mv, "max": mv, "peak_to_peak": mv,
             "psd": mv ** 2 / u.Hz, "dominant_frequency": u.Hz, "alpha_share": u.UNITLESS, "peak_share": u.UNITLESS}
    units.update({f"power_{b[0]}": mv ** 2 for b in features.bands})
    return units


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


def free_device_bytes() -> int | None:
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

def _design_of(design, drive):
    """(params, drive, Design or None) from a Design or a batched JRParams."""
    if isinstance(design, Design):
        if drive is not None:
            raise ValueError("pass the drive inside the Design (grid(..., drive=...)), not also to sweep().")
        params, drive, the_design = design.params, design.drive, design
        if not isinstance(params, JRParams):
            raise TypeError(f"design.params must be a jr_jax.JRParams; got {type(params).__name__}.")
    elif isinstance(design, JRParams):
        params, drive, the_design = design, (_drives.constant(220.0 * u.Hz) if drive is None else drive), None
    else:
        raise TypeError(f"design must be a jr_jax.Design or a JRParams; got {type(design).__name__}.")
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives; got {drive!r}.")
    finite_leaves("params", params)
    finite_leaves("drive", drive)
    return params, drive, the_design


@dataclasses.dataclass
class _Chunks:
    """The compiled chunk of one sweep and its inputs: ``run(idx)`` computes the features of the sets ``idx``,
    split over the CPU's cores or sharded over the devices."""

    params: JRParams
    drive: _drives.Drive
    state: JRState
    n: int
    key: jax.Array
    dt_s: float
    static: dict

    def args(self, idx):
        return (take(self.params, idx, self.n), take(self.drive, idx, self.n), take(self.state, idx, self.n),
                np.asarray(idx, np.int32))

    def bytes_per_set(self) -> float:
        """XLA's accounting of a probe chunk's buffers, per set."""
        m = min(self.n, PROBE_SETS)
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

        return join(split_runs(part, len(idx), cpu_parts(len(idx))), n_real)


def _chunk_size(chunk_size, out_dir, chunks: _Chunks) -> int:
    """Sets per chunk: the one stored in a resumed folder, the one given, or sized to the device's memory."""
    if chunk_size is not None:
        size = check_int("chunk_size", chunk_size, what="a positive number of sets")
    else:
        stored = stored_spec(out_dir)
        if stored is not None and "chunk_size" in stored:       # a resumed sweep keeps its chunks
            size = int(stored["chunk_size"])
        else:
            free = free_device_bytes()
            size = CPU_CHUNK if free is None else chunk_for_memory(chunks.bytes_per_set(), free, jax.device_count())
    n_dev = jax.device_count()
    return -(-min(size, chunks.n) // n_dev) * n_dev


class _Table:
    """The features of all sets, filled chunk by chunk (NaN, and ``computed`` False, where not computed)."""

    def __init__(self, n: int, units: dict, keep: int):
        self.n, self.units, self.keep = n, units, keep
        self.names = list(units) + ["diverged"]
        self.columns = {}
        self.computed = np.zeros(n, bool)

    def put(self, lo: int, hi: int, part: dict):
        for k in self.names:
            if k not in self.columns:
                fill = False if k == "diverged" else np.nan
                self.columns[k] = np.full((self.n,) + part[k].shape[1:], fill, dtype=part[k].dtype)
            self.columns[k][lo:hi] = part[k]
        self.computed[lo:hi] = True

    def features(self) -> dict:
        cols = self.columns or {k: np.full((self.n, self.keep) if k == "psd" else (self.n,), np.nan)
                                for k in self.names} | {"diverged": np.zeros(self.n, bool)}
        return {k: (u.Quantity(cols[k], unit=self.units[k]) if k in self.units else cols[k]) for k in self.names}


def sweep(design, *, duration, dt=DEFAULT_DT, drive=None, method: str | Solver = DEFAULT_METHOD, key=None,
          keys: str = "common", transient=1.0 * u.second, features: monitors.Features | None = None,
          initial_state: JRState | None = None, chunk_size: int | None = None, out_dir=None, progress=False,
          dtype=None, max_chunks: int | None = None, check_budget: bool = True) -> SweepResult:
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
      out_dir: a checkpoint folder (:mod:`jr_jax.store`): the specification and each finished chunk are written
        there; a second call with the same specification loads what is done and computes the rest; a different
        specification raises :class:`SweepSpecError` and overwrites nothing.
      progress: True for a progress bar (sets) on stderr, or any tqdm-compatible object.
      max_chunks: compute at most this many new chunks in this call (for time-sliced jobs; needs ``out_dir``).
      check_budget: refuse (:class:`jr_jax.checks.BudgetError`, before anything is compiled) more than
        ``jr_jax.checks.MAX_STEPS`` (10⁹) steps per set, or a features table larger than
        ``jr_jax.checks.MEMORY_FRACTION`` (half) of the host's available memory; False runs it anyway.

    Every argument is checked (type, unit, shape, finiteness, range) before anything is compiled; the errors name it.
    """
    params, drive, the_design = _design_of(design, drive)
    if not isinstance(keys, str) or keys not in ("common", "independent"):
        raise ValueError(f"keys must be 'common' or 'independent'; got {keys!r}.")
    features = monitors.Features() if features is None else features
    if not isinstance(features, monitors.Features):
        raise TypeError(f"features must be a jr_jax.monitors.Features; got {type(features).__name__}.")
    if max_chunks is not None:
        if out_dir is None:
            raise ValueError("max_chunks needs out_dir, where the finished chunks are kept for the next call.")
        check_int("max_chunks", max_chunks, low=0, what="a whole number of chunks >= 0")
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, what="a positive number of sets")
    check_folder("out_dir", out_dir)
    check_budget = check_bool("check_budget", check_budget)
    solver = get_solver(method)
    check_progress(progress)
    n = batch_size(params, drive)
    the_design = Design(params, drive, {}, (n,)) if the_design is None else the_design
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    every, seg_len, n_seg = features.layout(dt_s, dur_s)
    fs_hz = 1.0 / (every * dt_s)
    keep = monitors.n_freq(seg_len, fs_hz, float(features.fmax.to_decimal(u.Hz)))
    n_tr, n_feat = whole_steps("transient", tr_s, dt_s), len(_feature_units(features))
    check_run_budget("sweep", steps=n_tr + n_seg * seg_len * every, dt_s=dt_s, record_bytes=n * (n_feat + keep) * 8,
                     records=f"{n:,} sets × {n_feat - 1 + keep} feature values, 8 bytes each",
                     advice="Sweep fewer sets per call (design.take(...))", check=check_budget)
    freqs = np.fft.rfftfreq(seg_len, 1.0 / fs_hz)[:keep]
    cparams, cdrive = canonical_leaves(params, drive, np.dtype(dtype))
    static = dict(solver=solver, n_tr=n_tr, every=every, seg_len=seg_len,
                  n_seg=n_seg, keep=keep, fs_hz=fs_hz, independent=keys == "independent", dtype=dtype)
    chunks = _Chunks(cparams, cdrive, initial_states(initial_state, n, np.dtype(dtype)), n, key, dt_s, static)
    chunk = _chunk_size(chunk_size, out_dir, chunks)
    n_chunks = -(-n // chunk)
    # the hash sees one value per set, however the values are held
    hashed = map_sets(lambda x: np.broadcast_to(x, (n,)), (cparams, cdrive))
    spec = {"version": SPEC_VERSION, "n_sets": n, "chunk_size": chunk, "duration_s": dur_s, "dt_s": dt_s,
            "transient_s": tr_s, "method": solver.spec(), "dtype": str(np.dtype(dtype)), "keys": keys,
            "key": np.asarray(jax.random.key_data(key)).ravel().tolist(), "features": features.to_dict(),
            "drive": type(drive).__name__, "design_sha256": digest((hashed[0], (hashed[1], chunks.state)))}
    store = None if out_dir is None else CheckpointStore(out_dir, spec, error=SweepSpecError, what="sweep")
    finished = {} if store is None else store.manifest()
    table = _Table(n, _feature_units(features), keep)
    bounds = [(c * chunk, min((c + 1) * chunk, n)) for c in range(n_chunks)]
    done = sum(hi - lo for c, (lo, hi) in enumerate(bounds) if f"chunk_{c:05d}" in finished)
    new = 0
    with Progress(progress, total=n, unit="sets", desc="sweep", done=done) as bar:
        for c, (lo, hi) in enumerate(bounds):
            name = f"chunk_{c:05d}"
            if name in finished:
                table.put(lo, hi, store.load(name))
                continue
            if max_chunks is not None and new >= max_chunks:
                continue
            idx = np.minimum(np.arange(lo, lo + chunk), n - 1)       # the last chunk is padded with its last set
            acc, bad = chunks.run(idx, hi - lo)
            feats = monitors.finalize(acc, freqs, features, bad)
            part = {k: np.asarray(v.mantissa if isinstance(v, u.Quantity) else v) for k, v in feats.items()}
            if store is not None:
                store.save({name: part})
            table.put(lo, hi, part)
            new += 1
            bar.update(hi - lo)
    return SweepResult(table.features(), u.Quantity(freqs, unit=u.Hz), the_design, table.computed,
                       bool(table.computed.all()), chunk)
