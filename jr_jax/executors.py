"""Tasks on an executor: a :class:`concurrent.futures.Executor` (e.g. a ``ProcessPoolExecutor``) or a
``dask.distributed.Client``, told apart without importing dask (an optional extra: ``pip install "jr_jax[dask]"``),
submitted at once, awaited as they finish, and a lost worker turned into one clear error.

Dask reruns the tasks of a worker that died on the workers that remain; a process pool whose process died is broken
for good, so its loss ends the call with :class:`WorkerLostError`.
"""

from __future__ import annotations

import concurrent.futures as cf
import sys
from collections.abc import Callable


class WorkerLostError(RuntimeError):
    """The executor lost a worker and cannot finish the tasks: a process of a ``ProcessPoolExecutor`` died, or dask
    gave up on a task whose workers kept dying (``KilledWorker``)."""


def is_dask_client(obj) -> bool:
    """Whether ``obj`` is a ``dask.distributed.Client``. A client exists only once ``distributed`` is imported, so
    this never imports it."""
    dist = sys.modules.get("distributed")
    return dist is not None and isinstance(obj, getattr(dist, "Client", ()))


def check_executor(name: str, executor):
    """``executor`` if it is None, a ``concurrent.futures.Executor`` or a ``dask.distributed.Client``; else a
    TypeError naming ``name``. A ``ProcessPoolExecutor`` that forks its processes is refused (ValueError): JAX is
    multithreaded, and a forked process that runs it deadlocks."""
    if executor is None or is_dask_client(executor):
        return executor
    if not isinstance(executor, cf.Executor):
        raise TypeError(f"{name} must be a concurrent.futures.Executor (e.g. ProcessPoolExecutor) or a "
                        f"dask.distributed.Client; got {type(executor).__name__}.")
    context = getattr(executor, "_mp_context", None)        # the pool's start method; not public API
    if isinstance(executor, cf.ProcessPoolExecutor) and getattr(context, "get_start_method", lambda: "")() == "fork":
        raise ValueError(f"{name} is a ProcessPoolExecutor that forks its processes, and a forked process that runs "
                         f"JAX deadlocks (JAX is multithreaded); got {executor!r}. Create it with "
                         f"mp_context=multiprocessing.get_context('spawn').")
    return executor


def run_tasks(executor, fn: Callable, tasks: dict, *, on_done: Callable, lost: str = "") -> None:
    """Run ``fn(task)`` for every value of ``tasks`` (keyed by a name used in messages) on ``executor`` and call
    ``on_done(result)`` in this thread as each one finishes. The first task that fails cancels those not started
    and raises its own error (with a note naming the task); a lost worker raises :class:`WorkerLostError`, its
    message followed by ``lost`` (what is kept and how to go on)."""
    futures = {}
    if is_dask_client(executor):
        from distributed import KilledWorker, as_completed

        completed, lost_types = as_completed, (KilledWorker,)

        def submit(task):
            return executor.submit(fn, task, pure=False)

        def cancel():
            executor.cancel(list(futures))
    else:
        completed, lost_types = cf.as_completed, (cf.BrokenExecutor,)

        def submit(task):
            return executor.submit(fn, task)

        def cancel():
            for f in futures:
                f.cancel()
    name = None
    try:
        futures.update({submit(task): name for name, task in tasks.items()})     # a broken pool refuses here
        for future in completed(futures):
            name = futures[future]
            on_done(future.result())
    except lost_types as err:
        cancel()
        raise WorkerLostError(f"a worker of the {type(executor).__name__} died before the tasks ended "
                              f"({type(err).__name__}: {err}). {lost}".strip()) from None
    except BaseException as err:
        cancel()
        if name is not None and isinstance(err, Exception):
            err.add_note(f"(raised by the task {name} on {type(executor).__name__})")
        raise
