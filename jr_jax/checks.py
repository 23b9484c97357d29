"""Checks of a run's settings, shared by ``simulate``, ``trace``, ``sweep`` and the fitting targets: the settings
themselves (:func:`run_settings`), keys, initial states, and the budget a run may use (:func:`check_budget`)."""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .units import check_dim, check_range, fmt_seconds, is_concrete
from .model import STATE_NAMES, STATE_UNITS, JRState
from .network import NetworkState
from .params import FIELD_NAMES, JRParams


class RunSettings(NamedTuple):
    """Checked settings: step, duration and transient in seconds, the float dtype and the key."""

    dt_s: float
    duration_s: float
    transient_s: float
    dtype: np.dtype
    key: jax.Array


def zero_key():
    """The key of a deterministic run (its random numbers are never used)."""
    return jax.random.key(0)


def check_key(key, name: str = "key"):
    """``key`` if it is one ``jax.random`` key (a typed key of shape (), or a raw uint32 key of shape (2,) from
    ``jax.random.PRNGKey``); None passes. One key drives every column and set of a run."""
    if key is None:
        return None
    dtype, shape = getattr(key, "dtype", None), np.shape(key)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if shape == ():
            return key
        raise ValueError(f"{name} must be one key, shape (); got keys of shape {shape}. One key drives the whole run "
                         f"(each set and column draws its own numbers from it).")
    if dtype == np.uint32 and shape in ((2,), (4,)):     # a raw key: threefry (2 words) or rbg (4 words)
        return key
    raise TypeError(f"{name} must be a jax.random.key(seed); got {type(key).__name__} {key!r}.")


def check_folder(name: str, value):
    """``value`` if it is None or a path (str or os.PathLike) of a folder."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or pathlib.Path); got {type(value).__name__} {value!r}.")
    return value


def check_dtype(dtype) -> np.dtype:
    """The run's float dtype: float32 (default) or float64 (with 64-bit JAX on)."""
    if dtype is None:
        return jnp.result_type(float)
    try:
        checked = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}.") from None
    if checked not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64 (float16 is too coarse and too narrow for the model's "
                         f"rates of change, an integer type cannot hold the state); got {dtype!r}.")
    if checked == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError('dtype=float64 needs 64-bit JAX: call jax.config.update("jax_enable_x64", True) first.')
    return checked


def _seconds(name: str, value, example: str) -> float:
    """One concrete, finite time in seconds."""
    check_dim(name, value, u.second, example)
    if not isinstance(value.mantissa, (int, float)):      # a plain Python number needs neither check
        if not is_concrete(value):
            raise TypeError(f"{name} must be a concrete time, not a traced value: it fixes the number of steps.")
        shape = np.shape(value.mantissa)
        if shape != ():
            raise ValueError(f"{name} must be one time; got shape {shape}.")
    x = float(value.to_decimal(u.second))
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite time; got {value!r}.")
    return x


def run_settings(duration, dt, transient, dtype, drive, key) -> RunSettings:
    """Check the settings of a run (named in the errors) and return them in seconds; a deterministic drive without a
    key gets :func:`zero_key`."""
    dur_s = _seconds("duration", duration, "10. * u.second")
    dt_s = _seconds("dt", dt, "0.5 * u.ms")
    tr_s = _seconds("transient", transient, "1. * u.second")
    if not dt_s > 0:
        raise ValueError(f"dt must be a positive finite time; got {dt!r}.")
    if not dur_s > 0:
        raise ValueError(f"duration must be positive; got {duration!r}.")
    if tr_s < 0:
        raise ValueError(f"transient must be >= 0; got {transient!r}.")
    dtype = check_dtype(dtype)
    key = check_key(key)
    if drive.is_random and key is None:
        raise ValueError("this drive is random: pass key=jax.random.key(seed) (the same key gives the same run).")
    return RunSettings(dt_s, dur_s, tr_s, dtype, zero_key() if key is None else key)


def whole_steps(name: str, duration_s: float, dt_s: float) -> int:
    """``duration_s / dt_s`` as a whole number of steps (at least one when ``duration_s`` > 0), or a ValueError
    naming ``name``."""
    n = duration_s / dt_s
    if not math.isfinite(n):
        raise ValueError(f"{name} ({fmt_seconds(duration_s)}) is {n} steps of dt = {fmt_seconds(dt_s)}; use a larger "
                         f"dt or a shorter {name}.")
    n_int = int(round(n))
    if abs(n - n_int) > 1e-6 * max(1.0, n) or (n_int == 0 and n > 0):
        raise ValueError(f"{name} ({fmt_seconds(duration_s)}) must be a whole number of steps of dt = "
                         f"{fmt_seconds(dt_s)}; it is {n:.6g} steps.")
    return n_int


def column_state(state, dtype, shapes: tuple | None = None, what: str = "") -> JRState:
    """``initial_state`` of one column or a network: a :class:`JRState` of Quantities, each field checked (unit,
    real and, when concrete, finite numbers; with ``shapes``, a shape among them, ``what`` saying which) before it
    is converted to ``dtype``."""
    if not isinstance(state, JRState):
        raise TypeError(f"initial_state must be a jr_jax.JRState; got {type(state).__name__}.")
    for name, value, unit in zip(STATE_NAMES, state, STATE_UNITS):
        check_dim(f"initial_state.{name}", value, unit, f"0. * u.{'mV' if unit == u.mV else 'mV / u.second'}")
        check_range(f"initial_state.{name}", value, unit)
    if shapes is not None:
        state_shapes(state, shapes, what)
    return JRState(*(u.Quantity(jnp.asarray(value.to_decimal(unit), dtype), unit=unit)
                     for value, unit in zip(state, STATE_UNITS)))


def unconverted_state(state, network):
    """``trace``'s initial state (a JRState, or a NetworkState with its network), checked but not converted: its
    numbers go into the run as given."""
    if isinstance(state, NetworkState):
        if network is None:
            raise TypeError("initial_state is a NetworkState: pass the network= it came from.")
        check_range("initial_state.history", state.history, u.UNITLESS)
        columns = state.columns
    elif isinstance(state, JRState):
        columns = state
    else:
        raise TypeError(f"initial_state must be a jr_jax.JRState{' or NetworkState' if network else ''}; got "
                        f"{type(state).__name__}.")
    for name, value, unit in zip(STATE_NAMES, columns, STATE_UNITS):
        check_dim(f"initial_state.{name}", value, unit, f"0. * u.{'mV' if unit == u.mV else 'mV / u.second'}")
        check_range(f"initial_state.{name}", value, unit)
    return state


def state_shapes(state: JRState, shapes: tuple, what: str):
    """A ValueError naming the first field of ``state`` whose shape is not among ``shapes`` (``what`` says which)."""
    for name, x in zip(STATE_NAMES, state):
        if np.shape(x.mantissa) not in shapes:
            raise ValueError(f"initial_state.{name} must be {what}; got shape {np.shape(x.mantissa)}.")


def _path_name(path) -> str:
    """``.terms[1].onset`` for a pytree path (a Quantity's own flattening is left out)."""
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(f".{k.name}")
        elif isinstance(k, (jax.tree_util.SequenceKey, jax.tree_util.DictKey)):
            parts.append(f"[{k.idx if isinstance(k, jax.tree_util.SequenceKey) else repr(k.key)}]")
    return "".join(parts)


def finite_leaves(name: str, tree) -> None:
    """A ValueError naming the first leaf of ``tree`` (a JRParams, a drive) that holds a NaN or an infinity; traced
    leaves are skipped. Catches values set past the constructors' checks (``jax.tree.map``, ``dataclasses.replace``)."""
    if isinstance(tree, JRParams):
        named = [(f".{n}", getattr(tree, n)) for n in FIELD_NAMES]
    else:
        named = [(_path_name(p), x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]
    for path, leaf in named:
        m = u.get_mantissa(leaf)
        if isinstance(m, float):                    # the common case, checked without NumPy's overhead
            finite = math.isfinite(m)
        elif not is_concrete(m):
            continue
        else:
            x = np.asarray(m)
            finite = x.dtype.kind not in "fc" or bool(np.all(np.isfinite(x)))
        if not finite:
            raise ValueError(f"{name}{path} must be finite; got {leaf!r}.")


# -- the budget ---------------------------------------------------------------------------------------------------

SMALL_RECORDS = 1 << 26
"""Records smaller than this (64 MiB) never exceed the budget: the available memory is not read for them."""


class BudgetError(ValueError):
    """A run would take more steps or keep more records than the budget allows (see :func:`check_budget`)."""


MAX_STEPS = 10 ** 9
"""Steps per column (transient included) beyond which ``simulate``, ``sweep`` and ``trace`` refuse a run unless
they are given ``check_budget=False``: such a run takes hours and, when it records, grows memory all along."""

MEMORY_FRACTION = 0.5
"""The records a run would keep may take at most this share of the available memory (the host's; the device's for
``trace`` on a device that reports it) unless ``check_budget=False``."""


def available_memory(where: str = "host") -> int | None:
    """Bytes of memory available: on the host (``MemAvailable`` of /proc/meminfo, else the free pages sysconf
    reports), or on the default device (its allocator's limit less what is in use; None where the backend does not
    report one, e.g. a CPU). None when unknown."""
    if where == "device":
        try:
            stats = jax.local_devices()[0].memory_stats() or {}
        except Exception:           # a backend without memory statistics
            return None
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)) if "bytes_limit" in stats else None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _fmt_count(n: int) -> str:
    return f"{n:,}" if n < 10 ** 15 else f"{float(n):.3g}"


def _fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_budget(what: str, *, steps: int, dt_s: float, record_bytes: int, records: str, advice: str,
                 on_device: bool = False, check: bool = True) -> None:
    """Refuse, with :class:`BudgetError`, a run of more than :data:`MAX_STEPS` steps per column or whose records
    (``record_bytes``, described by ``records``) would take more than :data:`MEMORY_FRACTION` of the available memory.
    ``advice`` says how to keep less; ``check=False`` (the callers' ``check_budget=False``) lets any run through."""
    if not check:
        return
    if steps > MAX_STEPS:
        raise BudgetError(f"{what} would run {_fmt_count(steps)} steps per column ({fmt_seconds(steps * dt_s)} at dt = "
                          f"{fmt_seconds(dt_s)}), more than jr_jax.checks.MAX_STEPS = {_fmt_count(MAX_STEPS)}. Use a larger dt "
                          f"or a shorter duration and transient, or pass check_budget=False to run it anyway.")
    if record_bytes < SMALL_RECORDS:
        return
    avail, where = (available_memory("device"), "on the device") if on_device else (None, "")
    if avail is None:
        avail, where = available_memory("host"), "on this host"
    if avail is not None and record_bytes > MEMORY_FRACTION * avail:
        raise BudgetError(f"{what} would keep {_fmt_bytes(record_bytes)} of records ({records}), more than "
                          f"{MEMORY_FRACTION:g} of the {_fmt_bytes(avail)} of memory available {where} "
                          f"(jr_jax.checks.MEMORY_FRACTION). {advice}, or pass check_budget=False to run it anyway.")
