"""``simulate`` and ``trace``: a Jansen–Rit column, a batch of parameter sets or a network, run by the one compiled
loop (:mod:`jr_jax.loop`) and kept as a :class:`Record` says.

``simulate`` is the host-side job: it checks its inputs, plans chunks, runs them (a batch split over the CPU's
cores), stops on NaN, saves to a checkpoint folder and shows progress. ``trace`` is the same loop as a pure
function, for use under ``jit``, ``grad`` and ``vmap``. Both return a :class:`SimulationResult`.
"""

from __future__ import annotations

import dataclasses
import functools

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from . import drives as _drives
from .batches import batch_size, cpu_parts, initial_states, is_batched, join, set_leaves, split_runs, take
from .checks import check_budget as check_run_budget
from .checks import check_folder, column_state, finite_leaves, run_settings, unconverted_state, whole_steps
from .devices import check_gpu_extra
from .loop import UNITS, block_windows, run_chunk
from .model import STATE_NAMES, STATE_UNITS, JRState
from .network import Network, NetworkState, check_delays_fit, check_params
from .params import JRParams
from .progress import Progress, check_progress
from .solvers import DEFAULT_METHOD, Solver, solver as get_solver
from .store import CheckpointStore, digest
from .units import check_bool, check_int, check_range, fmt_seconds

DEFAULT_DT = 0.5 * u.ms
VARIABLES = ("eeg",) + STATE_NAMES
MAX_CHUNK_STEPS = 2 ** 18
"""Default steps per compiled chunk: memory on the device is bounded by one chunk."""


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
        if isinstance(self.variables, str):
            variables = (self.variables,)
        elif isinstance(self.variables, (tuple, list)):
            variables = tuple(self.variables)
        else:
            raise TypeError(f"Record.variables must be a name or a tuple of names among {VARIABLES}; got "
                            f"{type(self.variables).__name__} {self.variables!r}.")
        object.__setattr__(self, "variables", variables)
        bad = [v for v in variables if not isinstance(v, str) or v not in VARIABLES]
        if bad:
            raise ValueError(f"Record.variables must be among {VARIABLES}; got {bad}.")
        if len(set(variables)) != len(variables):
            raise ValueError(f"Record.variables has duplicates: {variables}.")
        check_int("Record.every", self.every, what="a positive integer number of steps")
        if not isinstance(self.reduce, str) or self.reduce not in ("sample", "mean"):
            raise ValueError(f"Record.reduce must be 'sample' or 'mean'; got {self.reduce!r}.")

    def times(self, n_windows: int, n_transient: int, dt_s: float, dtype) -> u.Quantity:
        """The time stamps of ``n_windows`` records after ``n_transient`` steps (a mean's stamp: its window's centre)."""
        w = np.arange(1, n_windows + 1 if self.variables else 1, dtype=np.float64)
        t = (n_transient + w * self.every) * dt_s
        if self.reduce == "mean":
            t = t - (self.every - 1) / 2 * dt_s
        return u.Quantity(t.astype(dtype), unit=u.second)


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` and :func:`trace` return.

    time: Quantity (n_records,); variables: the recorded variables by name, each (n_records,), or (n_records, n)
    for a batch of n sets or a network of n columns (also as attributes: ``result.eeg``); final_state: the state
    after the run (a :class:`jr_jax.network.NetworkState` for a network: pass it back as ``initial_state`` to
    continue); start_state: the state where the recording starts (after the transient); dt, method, record.
    """

    time: u.Quantity
    variables: dict
    final_state: JRState
    start_state: JRState
    dt: u.Quantity
    method: str
    record: Record

    def tree_flatten(self):         # dt is static: under vmap it stays one step, not one per set
        dt_s = float(self.dt.to_decimal(u.second))
        return (self.time, self.variables, self.final_state, self.start_state), (dt_s, self.method, self.record)

    @classmethod
    def tree_unflatten(cls, aux, children):
        dt_s, method, record = aux
        return cls(*children, dt_s * u.second, method, record)

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

    def to_xarray(self, labels=None):
        """This run as an ``xarray.Dataset`` (time in s, units in attrs; :func:`jr_jax.export.simulation_dataset`);
        ``labels`` name the sets or regions (e.g. ``network.labels``). Needs ``pip install jr_jax[xarray]``."""
        from .export import simulation_dataset
        return simulation_dataset(self, labels)


# -- inputs -------------------------------------------------------------------------------------------------------

def _check_model(params, drive, network) -> _drives.Drive:
    """Type checks of params, drive and network; the default drive ``constant(220 Hz)``."""
    if not isinstance(params, JRParams):
        raise TypeError(f"params must be a jr_jax.JRParams; got {type(params).__name__}.")
    drive = _drives.constant(220.0 * u.Hz) if drive is None else drive
    if not isinstance(drive, _drives.Drive):
        raise TypeError(f"drive must be built with jr_jax.drives (e.g. drives.constant(220 * u.Hz)); got {drive!r}.")
    if network is not None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be built with jr_jax.network.network(); got {type(network).__name__}.")
        check_params(params, network.n_regions)
        network.check_noise(drive)
        check_delays_fit(network)
    finite_leaves("params", params)
    finite_leaves("drive", drive)
    return drive


def _as_record(record) -> Record:
    if isinstance(record, Record):
        return record
    if not isinstance(record, (str, tuple, list)):
        raise TypeError(f"record must be a jr_jax.Record or a tuple of variable names; got {type(record).__name__} "
                        f"{record!r}.")
    return Record(variables=record)


def _record_budget(what: str, record: Record, n_tr: int, n_steps: int, cols: int, dt_s: float, dtype, check: bool,
                   on_device: bool = False):
    """The run's budget (:func:`jr_jax.checks.check_budget`): its steps, and the records it keeps of ``cols``
    columns or sets (plus their time stamps)."""
    n_windows, n_vars, size = n_steps // record.every, len(record.variables), np.dtype(dtype).itemsize
    nbytes = n_windows * (n_vars * cols + 1) * size if n_vars else 0
    check_run_budget(what, steps=n_tr + n_steps, dt_s=dt_s, record_bytes=nbytes, on_device=on_device, check=check,
                     records=f"{n_windows:,} records of {n_vars} variable(s) × {cols} column(s) or set(s), "
                             f"{size} bytes each",
                     advice="Keep less: record=() keeps nothing, Record(every=n) one record per n steps (or record "
                            "fewer variables); or run shorter pieces, each from the last one's result.final_state")


@functools.lru_cache(maxsize=4)
def _zero_state(dtype: np.dtype) -> JRState:
    """The default initial state of one column (built once per dtype: its Quantities are never modified)."""
    return JRState(*(u.Quantity(np.zeros((), dtype), unit=unit) for unit in STATE_UNITS))


def _initial_state(initial_state, params, n_sets, network, dt_s, dtype):
    """The checked initial state: zeros by default; one value per set for a batch; a NetworkState for a network."""
    if n_sets is not None:
        return initial_states(initial_state, n_sets, dtype)
    if initial_state is None:
        state = _zero_state(np.dtype(dtype))
    elif isinstance(initial_state, NetworkState):
        if network is None:
            raise TypeError("initial_state is a NetworkState: pass the network= it came from.")
        n, shape = network.n_regions, network.history_shape(dt_s)
        if np.shape(initial_state.history) != shape:
            raise ValueError(f"initial_state.history has shape {np.shape(initial_state.history)}; this network and dt "
                             f"need {shape}.")
        check_range("initial_state.history", initial_state.history, u.UNITLESS)
        columns = column_state(initial_state.columns, dtype, ((n,),), f"shape ({n},), one value per column")
        return NetworkState(columns, jnp.asarray(initial_state.history, dtype))
    elif network is None:
        return column_state(initial_state, dtype, ((),), "one value for one column (a batch takes its size from the "
                                                         "parameters or the drive: give them one value per set)")
    else:
        n = network.n_regions
        state = column_state(initial_state, dtype, ((), (n,)), f"a scalar or shape ({n},) for a network of {n} columns")
    if network is None:
        return state
    return network.initial_state(state, params, dt_s, dtype)


def _chunk_windows(n_windows: int, every: int, chunk_steps, shown: bool) -> int:
    """Windows per compiled chunk: the whole run up to MAX_CHUNK_STEPS, ~50 chunks when progress is shown."""
    if chunk_steps is None:
        return max(1, -(-n_windows // 50)) if shown else max(1, min(n_windows, MAX_CHUNK_STEPS // every))
    chunk_steps = check_int("chunk_steps", chunk_steps, low=every, what=f"a whole number of steps >= Record.every = "
                                                                         f"{every}")
    return chunk_steps // every


# -- running chunks -----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Chunks:
    """Runs the chunks of one ``simulate`` call: a batch split over the CPU's cores, NaN/Inf caught per block."""

    params: JRParams
    drive: _drives.Drive
    key: jax.Array
    dt_s: float
    solver: Solver
    record: Record
    dtype: np.dtype
    network: Network | None
    n_sets: int | None
    check_finite: bool

    def __call__(self, state, step0: int, n_w: int, every: int, variables: tuple):
        def call(args):
            return run_chunk(*args, self.key, np.int32(step0), self.dt_s, solver=self.solver, n_windows=n_w,
                             every=every, variables=variables, reduce=self.record.reduce, dtype=self.dtype,
                             network=self.network, single=self.n_sets is None)

        if self.n_sets is None:
            state, bad, out = call((self.params, self.drive, state))
        else:       # the set axis last everywhere; equal parts of the batch on separate threads
            n = self.n_sets
            parts = split_runs(lambda i: call(take((self.params, self.drive, state), i, n)), n, cpu_parts(n))
            state, bad, out = join(parts, n, axis=-1)
        if self.check_finite:
            self._check(np.asarray(bad), step0, n_w, every)
        return state, out

    def _check(self, bad, step0, n_w, every):
        if not (bad >= 0).any():
            return
        first = int(bad[bad >= 0].min())
        end = min(first + block_windows(n_w, every), n_w)
        t0, t1 = (step0 + first * every) * self.dt_s, (step0 + end * every) * self.dt_s
        which = "" if bad.ndim == 0 else \
            f" in {'set' if self.n_sets is not None else 'column'}(s) {np.flatnonzero(bad >= 0)[:10].tolist()}"
        p = self.params
        raise SimulationError(
            f"the state became NaN/Inf{which} between t = {fmt_seconds(t0)} and t = {fmt_seconds(t1)} "
            f"(method {self.solver.name!r}, dt = {fmt_seconds(self.dt_s)}). Likely causes: dt too large for these "
            f"parameters (try a smaller dt or method='strang'), or a parameter out of range "
            f"(A={p.A!r}, B={p.B!r}, a={p.a!r}, b={p.b!r}, C={p.C!r}).")


# -- the checkpoint folder ----------------------------------------------------------------------------------------

def _run_spec(chunks: _Chunks, n_tr: int, state) -> dict:
    """What fixes a run's numbers (not its duration): compared on resume."""
    net, rec = chunks.network, chunks.record
    return {"params": digest(chunks.params), "drive": [type(chunks.drive).__name__, digest(chunks.drive)],
            "key": digest(jax.random.key_data(chunks.key)), "dt_s": chunks.dt_s, "transient_steps": n_tr,
            "method": chunks.solver.spec(), "record": [list(rec.variables), rec.every, rec.reduce],
            "dtype": str(jnp.dtype(chunks.dtype)),
            "network": None if net is None else [net.rule, net.max_delay_s, digest(net)], "initial_state": digest(state)}


class _NoFolder:
    """A run without a checkpoint folder: nothing to resume, nothing saved."""

    def resume(self, state, n_windows, variables, n_tr):
        """(state, global step, start state, windows recorded, record pieces) to continue from."""
        return state, 0, (state if n_tr == 0 else None), 0, []

    def save(self, state, step, records=None, n_windows=0, start=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class _RunFolder(_NoFolder):
    """A run in a :class:`jr_jax.store.CheckpointStore` (held by this process while it runs): ``state`` (the state
    and global step after the last chunk), ``start`` (the state after the transient) and ``records_00000``, … (one
    per recorded chunk)."""

    def __init__(self, out_dir, spec):
        self.store = CheckpointStore(out_dir, spec, error=RunSpecError, what="run", exclusive=True)
        self.n_saved = 0

    def __exit__(self, *exc):
        self.store.close()

    @staticmethod
    def _arrays(state) -> dict:
        return {f"s{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}

    @staticmethod
    def _state(like, z):
        leaves, treedef = jax.tree.flatten(like)
        return jax.tree.unflatten(treedef, [jnp.asarray(z[f"s{i}"], x.dtype) for i, x in enumerate(leaves)])

    def resume(self, state, n_windows, variables, n_tr):
        finished = self.store.manifest()        # read once: a long run lists many chunks
        if "state" not in finished:
            return super().resume(state, n_windows, variables, n_tr)
        step, self.n_saved = finished["state"]["step"], finished["state"]["n_chunks"]
        start = (self._state(state, self.store.load("start")) if "start" in finished
                 else state if n_tr == 0 else None)
        pieces, w = [], 0
        for k in range(self.n_saved):
            name = f"records_{k:05d}"
            r = self.store.load(name)
            pieces.append({v: u.Quantity(r[v], unit=UNITS[v]) for v in variables})
            w += finished[name]["n_windows"]
        if w > n_windows:
            raise RunSpecError(f"{self.store.path} already holds {w} records, more than this duration's {n_windows}; "
                               f"pass at least that duration (or another out_dir).")
        return self._state(state, self.store.load("state")), step, start, w, pieces

    def save(self, state, step, records=None, n_windows=0, start=None):
        files, meta = {}, {}
        if start is not None:
            files["start"] = self._arrays(start)
        if records is not None:
            name = f"records_{self.n_saved:05d}"
            files[name], meta[name] = {k: v.mantissa for k, v in records.items()}, {"n_windows": n_windows}
            self.n_saved += 1
        files["state"], meta["state"] = self._arrays(state), {"step": step, "n_chunks": self.n_saved}
        self.store.save(files, meta)


def _run_all(run: _Chunks, folder: _NoFolder, bar: Progress, state, step: int, w_done: int, n_tr: int, n_windows: int,
             chunk_w: int, every: int):
    """The transient (nothing recorded), then the recorded windows, chunk by chunk from where the folder left off;
    returns the final state, the start state (after the transient, if reached here) and the new record pieces."""
    step0, start, pieces = min(step, n_tr), None, []
    while step0 < n_tr:
        n = min(max(1, chunk_w * every), n_tr - step0)
        state, _ = run(state, step0, n, 1, ())
        step0 += n
        start = state if step0 == n_tr else None
        folder.save(state, step0, start=start)
        bar.update(n)
    while w_done < n_windows:           # the recorded windows start after the transient
        n_w = min(chunk_w, n_windows - w_done)
        state, out = run(state, step0 + w_done * every, n_w, every, run.record.variables)
        pieces.append(out)
        w_done += n_w
        folder.save(state, step0 + w_done * every, out, n_w)
        bar.update(n_w * every)
    return state, start, pieces


# -- simulate -----------------------------------------------------------------------------------------------------

def simulate(params: JRParams, *, duration, dt=DEFAULT_DT, drive=None, method: str | Solver = DEFAULT_METHOD,
             key=None, record: Record | tuple | str = Record(), initial_state: JRState | None = None,
             transient=0.0 * u.second, chunk_steps: int | None = None, progress=False, dtype=None,
             check_finite: bool = True, network: Network | None = None, out_dir=None,
             check_budget: bool = True) -> SimulationResult:
    """Simulate one Jansen–Rit column, a batch of independent columns (one per parameter set), or a network.

    Args:
      params: :class:`JRParams`. Scalar fields: one column. Fields (and drive fields) with one value per set, shape
        (n,): a batch of n independent columns; set i gives exactly what simulate() gives for set i alone with the
        same key (the same noise for every set). The sets run as the loop's trailing axis, split over the CPU's
        cores. With a network, a field may instead have one value per column.
      duration: simulated time to record (Quantity, e.g. ``10 * u.second``); a whole number of steps.
      dt: step (default 0.5 ms).
      drive: input p(t) from :mod:`jr_jax.drives` (default ``constant(220 Hz)``).
      method: a :class:`jr_jax.solvers.Solver` or its name: ``"rk4"`` (default), ``"heun"``, ``"strang"``,
        ``"euler"``, ``"kutta38"``.
      key: ``jax.random.key`` — required when the drive is random; the same key gives the same run.
      record: :class:`Record`, or a tuple of variable names (kept every step).
      initial_state: :class:`JRState` (default all zeros).
      transient: simulated time run first and not recorded (the recorded ``time`` continues after it).
      chunk_steps: steps per compiled chunk (default: the whole run up to 2**18 steps; ~50 chunks with
        ``progress``). Memory on the device is bounded by one chunk; the random numbers do not depend on it.
      progress: True for a progress bar (steps) on stderr (tqdm), or any tqdm-compatible object.
      dtype: float dtype of the run (default float32; float64 needs ``jax.config.update("jax_enable_x64", True)``).
      check_finite: stop with :class:`SimulationError` when the state becomes NaN/Inf.
      network: a :func:`jr_jax.network.network`: simulate its N columns coupled (records get a column axis; the
        drive's mean may have one value per column; column i's noise comes from ``jax.random.split(key, N)[i]``).
      out_dir: a checkpoint folder (:mod:`jr_jax.store`): each finished chunk's records and the state after it are
        saved. Calling again with the same arguments resumes after the last saved chunk; with a longer ``duration``
        it extends the run; the result equals one uninterrupted run. Other arguments than ``duration``,
        ``chunk_steps`` and ``progress`` that differ raise :class:`RunSpecError` and change nothing on disk.
      check_budget: refuse (:class:`jr_jax.checks.BudgetError`, before anything is compiled) a run of more than
        ``jr_jax.checks.MAX_STEPS`` (10⁹) steps per column, or whose records would take more than
        ``jr_jax.checks.MEMORY_FRACTION`` (half) of the host's available memory; False runs it anyway.

    Every argument is checked (type, unit, shape, finiteness, range) before anything is compiled; the errors name it.
    """
    check_gpu_extra(stacklevel=3)
    drive = _check_model(params, drive, network)
    n_sets = batch_size(params, drive) if network is None and is_batched(params, drive) else None
    solver, record = get_solver(method), _as_record(record)
    check_finite, check_budget = check_bool("check_finite", check_finite), check_bool("check_budget", check_budget)
    check_folder("out_dir", out_dir)
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    n_steps, n_tr = whole_steps("duration", dur_s, dt_s), whole_steps("transient", tr_s, dt_s)
    every = record.every
    if n_steps % every:
        raise ValueError(f"duration is {n_steps} steps, not a multiple of Record.every = {every}.")
    cols = n_sets or (1 if network is None else network.n_regions)
    _record_budget("simulate", record, n_tr, n_steps, cols, dt_s, dtype, check_budget)
    n_windows = n_steps // every
    chunk_w = _chunk_windows(n_windows, every, chunk_steps, check_progress(progress))
    state = _initial_state(initial_state, params, n_sets, network, dt_s, dtype)
    # one dtype for every number, so that new values of any kind reuse the compiled run (host numbers via NumPy)
    params, drive = jax.tree.map(lambda x: jnp.asarray(x, dtype) if isinstance(x, jax.Array) else np.asarray(x, dtype),
                                 (params, drive))
    run = _Chunks(params, drive, key, dt_s, solver, record, dtype, network, n_sets, check_finite)
    with (_RunFolder(out_dir, _run_spec(run, n_tr, state)) if out_dir is not None else _NoFolder()) as folder:
        state, step, start, w_done, pieces = folder.resume(state, n_windows, record.variables, n_tr)
        with Progress(progress, total=n_tr + n_steps, unit="steps", desc=f"simulating {fmt_seconds(tr_s + dur_s)}",
                      done=step) as bar:
            state, reached, new = _run_all(run, folder, bar, state, step, w_done, n_tr, n_windows, chunk_w, every)
    start, pieces = (start if reached is None else reached), pieces + new
    if len(pieces) == 1:
        variables = pieces[0]
    else:
        variables = {name: u.Quantity(np.concatenate([np.asarray(p[name].mantissa) for p in pieces]),
                                      unit=pieces[0][name].unit) for name in record.variables}
    return SimulationResult(record.times(n_windows, n_tr, dt_s, dtype), variables, state, start, dt_s * u.second,
                            solver.name, record)


# -- trace --------------------------------------------------------------------------------------------------------

def trace(params: JRParams, *, duration, dt=DEFAULT_DT, drive=None, key=None, method: str | Solver = DEFAULT_METHOD,
          record: Record | tuple | str = Record(), initial_state: JRState | NetworkState | None = None,
          transient=0.0 * u.second, network: Network | None = None, dtype=None,
          checkpoint: bool = True, check_budget: bool = True) -> SimulationResult:
    """The pure core of :func:`simulate`, for use under ``jit``, ``grad`` and ``vmap`` (losses, fitting).

    The same arguments and the same compiled loop as :func:`simulate` (the same steps and random numbers for the
    same key); ``duration``, ``dt`` and ``transient`` must be concrete (they fix the number of steps). No host-side
    checks of the run: a NaN that arises in it is not stopped but propagates into the result. With ``checkpoint``
    (default) a gradient stores one state per block of ``jr_jax.loop.CHECKPOINT_BLOCK_STEPS`` steps. Parameters (and
    drive fields) may have a set axis, shape (n,): the sets run as the trailing axis of the one loop and the records
    get a trailing set axis, (n_records, n); ``jax.vmap`` over the sets computes the same numbers with the set axis
    first, which is slower on a CPU.

    The arguments are checked as in :func:`simulate` (values only where they are concrete), and so is the budget
    (``check_budget``; the records are counted against the device's memory where it reports one, else the host's).
    """
    drive = _check_model(params, drive, network)
    solver, record = get_solver(method), _as_record(record)
    checkpoint, check_budget = check_bool("checkpoint", checkpoint), check_bool("check_budget", check_budget)
    dt_s, dur_s, tr_s, dtype, key = run_settings(duration, dt, transient, dtype, drive, key)
    n_steps, n_tr = whole_steps("duration", dur_s, dt_s), whole_steps("transient", tr_s, dt_s)
    if n_steps % record.every:
        raise ValueError(f"duration is {n_steps} steps, not a multiple of Record.every = {record.every}.")
    state = JRState.zeros((), dtype) if initial_state is None else unconverted_state(initial_state, network)
    if network is None:
        leaves = set_leaves((params, drive, state))
        try:
            shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in leaves))
        except ValueError:
            raise ValueError(f"params, drive and initial_state fields must be scalars or share one set axis; got "
                             f"shapes {sorted({jnp.shape(x) for x in leaves})}.") from None
    cols = network.n_regions if network is not None else int(np.prod(shape))
    _record_budget("trace", record, n_tr, n_steps, cols, dt_s, dtype, check_budget, on_device=True)
    if network is not None and not isinstance(state, NetworkState):
        state = network.initial_state(state, params, dt_s, dtype)
    elif network is None:       # parameters with a set axis: the state gets it too
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, shape), state)
    cfg = dict(solver=solver, dtype=dtype, checkpoint=checkpoint, reduce=record.reduce, network=network)
    if n_tr:
        state, _, _ = run_chunk(params, drive, state, key, jnp.int32(0), dt_s, n_windows=n_tr, every=1,
                                variables=(), **cfg)
    final, _, records = run_chunk(params, drive, state, key, jnp.int32(n_tr), dt_s, n_windows=n_steps // record.every,
                                  every=record.every, variables=record.variables, **cfg)
    return SimulationResult(record.times(n_steps // record.every, n_tr, dt_s, dtype), records, final, state,
                            dt_s * u.second, solver.name, record)
