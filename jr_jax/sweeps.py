"""Parameter sweeps: many parameter sets as the set axis of the one compiled simulation, features instead of
trajectories, chunks sized for the device, split over a CPU's cores or sharded over all devices, results on disk
that resume, and chunks as tasks of an executor (a process pool, a Dask cluster) that share one folder.

A sweep runs every set with :func:`jr_jax.simulate`'s loop (same integrator, same random numbers): with
``keys="common"`` (the default) every set sees the noise that ``simulate(..., key=key)`` would draw, so a set's
result is exactly that of a single simulation; ``keys="independent"`` gives set i the key ``fold_in(key, i)``.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import brainunit as u
import jax
import numpy as np

from . import drives as _drives
from . import monitors
from .batches import batch_size, cpu_parts, initial_states, map_sets
from .checks import check_budget as check_run_budget
from .checks import check_folder, finite_leaves, run_settings, whole_steps
from .designs import Design
from .devices import check_gpu_extra
from .executors import check_executor, run_tasks
from .model import JRState
from .params import CANONICAL_UNITS, FIELD_NAMES, JRParams
from .progress import Progress, check_progress
from .simulation import DEFAULT_DT, DEFAULT_METHOD
from .solvers import Solver, solver as get_solver
from .store import CheckpointStore, digest, stored_spec
from .sweep_chunks import Chunks, ChunkTask, compute_chunk, pack_key
from .sweep_chunks import SweepSpecError, sweep_chunk  # noqa: F401  (part of this module's interface)
from .units import check_bool, check_int

SPEC_VERSION = 1


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


def _cpu_split(out_dir, chunk: int) -> tuple[int, bool]:
    """(calls per chunk, whether the specification holds it): the split stored in a resumed folder, or one call per
    core of this process (one on a GPU). It is stored because the features' float32 sums depend on the sets per
    call, so that every chunk of a sweep, wherever it runs, is split alike. A folder written before the split was
    stored keeps this process's split."""
    stored = None if out_dir is None else stored_spec(out_dir)
    if stored is not None and "cpu_parts" not in stored:
        return cpu_parts(chunk), False
    return (cpu_parts(chunk) if stored is None else int(stored["cpu_parts"])), True


def _chunk_size(chunk_size, out_dir, chunks: Chunks) -> int:
    """Sets per chunk: the one stored in a resumed folder, the one given, or sized to the device's memory."""
    if chunk_size is not None:
        size = check_int("chunk_size", chunk_size, what="a positive number of sets")
    else:
        stored = stored_spec(out_dir)
        if stored is not None and "chunk_size" in stored:       # a resumed sweep keeps its chunks
            size = int(stored["chunk_size"])
        else:
            free = free_device_bytes()
            size = CPU_CHUNK if free is None else chunk_for_memory(chunks.bytes_per_set(min(chunks.n, PROBE_SETS)),
                                                                   free, jax.device_count())
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


def _compute_here(tasks, store, table, bar) -> None:
    """Compute the chunks in this process, each written to ``store`` (if any) and put in ``table`` as it ends."""
    for make, (lo, hi) in tasks:
        task = make()
        part = task.compute()
        if store is not None:
            store.save({task.name: part})
        table.put(lo, hi, part)
        bar.update(hi - lo)


def _compute_on(executor, tasks, store, bar) -> None:
    """Compute the chunks as tasks of ``executor``: each worker writes its chunk into the shared folder."""
    size, jobs = {}, {}
    for make, (lo, hi) in tasks:
        task = make()
        size[task.name], jobs[task.name] = hi - lo, task
    run_tasks(executor, compute_chunk, jobs, on_done=lambda name: bar.update(size[name]),
              lost=f"The chunks that finished are kept in {store.path}: call sweep again with the same arguments "
                   f"(and a working executor) to compute the rest.")
    missing = sorted(set(jobs) - set(store.manifest()))
    if missing:
        listed = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
        raise OSError(f"out_dir {store.path}: the workers wrote {listed} but this folder does not list them: the "
                      f"workers see another folder at that path. Every worker needs out_dir at the same path, on a "
                      f"file system shared with this process.")


def _fill_from_store(table, bounds, store) -> None:
    """Put every finished chunk of ``store`` that ``table`` lacks (checked against the manifest's checksums)."""
    finished = store.manifest()
    for c, (lo, hi) in enumerate(bounds):
        name = f"chunk_{c:05d}"
        if name in finished and not table.computed[lo:hi].all():
            table.put(lo, hi, store.load(name))


# -- the sweep --------------------------------------------------------------------------------------------------

def sweep(design, *, duration, dt=DEFAULT_DT, drive=None, method: str | Solver = DEFAULT_METHOD, key=None,
          keys: str = "common", transient=1.0 * u.second, features: monitors.Features | None = None,
          initial_state: JRState | None = None, chunk_size: int | None = None, out_dir=None, progress=False,
          dtype=None, max_chunks: int | None = None, check_budget: bool = True, executor=None) -> SweepResult:
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
      executor: a ``dask.distributed.Client`` or a ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``
        that spawns its processes): each missing chunk is one task (:func:`compute_chunk`) that writes into
        ``out_dir``, which every worker must see at the same path; the features are then read from there. They
        equal this process's bit for bit on the same kind of device (a chunk is split into the calls the
        specification holds, whatever the worker's cores). Needs ``out_dir``.

    Every argument is checked (type, unit, shape, finiteness, range) before anything is compiled; the errors name it.
    """
    params, drive, the_design = _design_of(design, drive)
    if not isinstance(keys, str) or keys not in ("common", "independent"):
        raise ValueError(f"keys must be 'common' or 'independent'; got {keys!r}.")
    features = monitors.Features() if features is None else features
    if not isinstance(features, monitors.Features):
        raise TypeError(f"features must be a jr_jax.monitors.Features; got {type(features).__name__}.")
    check_gpu_extra(stacklevel=3)
    check_executor("executor", executor)
    for name, value in (("max_chunks", max_chunks), ("executor", executor)):
        if value is not None and out_dir is None:
            raise ValueError(f"{name} needs out_dir, the folder where the finished chunks are kept; got out_dir=None.")
    if max_chunks is not None:
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
    chunks = Chunks(cparams, cdrive, initial_states(initial_state, n, np.dtype(dtype)), n, key, dt_s, static)
    chunk = _chunk_size(chunk_size, out_dir, chunks)
    # the hash sees one value per set, however the values are held
    hashed = map_sets(lambda x: np.broadcast_to(x, (n,)), (cparams, cdrive))
    spec = {"version": SPEC_VERSION, "n_sets": n, "chunk_size": chunk, "duration_s": dur_s, "dt_s": dt_s,
            "transient_s": tr_s, "method": solver.spec(), "dtype": str(np.dtype(dtype)), "keys": keys,
            "key": np.asarray(jax.random.key_data(key)).ravel().tolist(), "features": features.to_dict(),
            "drive": type(drive).__name__, "design_sha256": digest((hashed[0], (hashed[1], chunks.state)))}
    parts, stored = _cpu_split(out_dir, chunk)
    if stored:
        spec["cpu_parts"] = parts
    store = None if out_dir is None else CheckpointStore(out_dir, spec, error=SweepSpecError, what="sweep")
    common = dict(key=pack_key(key), dt_s=dt_s, static=static, freqs=freqs, features=features, spec=spec, parts=parts,
                  out_dir=None if out_dir is None else str(Path(out_dir).absolute()), x64=jax.config.jax_enable_x64)
    table = _Table(n, _feature_units(features), keep)
    _run_chunks(chunks, chunk, common, store, table, executor=executor, max_chunks=max_chunks, progress=progress)
    return SweepResult(table.features(), u.Quantity(freqs, unit=u.Hz), the_design, table.computed,
                       bool(table.computed.all()), chunk)


def _run_chunks(chunks: Chunks, chunk: int, common: dict, store, table: _Table, *, executor, max_chunks, progress):
    """Compute the chunks that ``store`` does not hold (at most ``max_chunks``), here or on ``executor``, and fill
    ``table`` with every chunk: those computed here as they end, the others from ``store``."""
    n = chunks.n
    bounds = [(c * chunk, min((c + 1) * chunk, n)) for c in range(-(-n // chunk))]
    finished = {} if store is None else store.manifest()
    todo = [c for c in range(len(bounds)) if f"chunk_{c:05d}" not in finished][:max_chunks]
    tasks = [(partial(_task, chunks, c, chunk, common), bounds[c]) for c in todo]
    done = sum(hi - lo for c, (lo, hi) in enumerate(bounds) if f"chunk_{c:05d}" in finished)
    with Progress(progress, total=n, unit="sets", desc="sweep", done=done) as bar:
        if executor is None:
            _compute_here(tasks, store, table, bar)
        else:
            _compute_on(executor, tasks, store, bar)
    if store is not None:
        _fill_from_store(table, bounds, store)


def _task(chunks: Chunks, c: int, chunk: int, common: dict) -> ChunkTask:
    """The task of chunk ``c``: its sets taken from the whole design (the last chunk padded with its last set)."""
    lo, n = c * chunk, chunks.n
    idx = np.minimum(np.arange(lo, lo + chunk), n - 1)
    params, drive, state, numbers = chunks.args(idx)
    return ChunkTask(f"chunk_{c:05d}", params, drive, state, numbers, min(lo + chunk, n) - lo, **common)
