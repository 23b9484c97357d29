"""Gradient-based fitting with optax: tune any JRParams fields to an ERP, a spectrum or any differentiable loss.

:func:`fit` minimises ``objective(params)`` in the unconstrained space of :mod:`jr_jax.parametrisation`, from one
or several starts at once (``vmap``), with a stopping rule on the best loss, resumable from a
:class:`jr_jax.store.CheckpointStore`, and Laplace standard errors (:mod:`jr_jax.uncertainty`) at the optimum. The
built-in objectives are :func:`erp_target` and :func:`spectrum_target` (:mod:`jr_jax.targets`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .checks import check_folder, check_key
from .parametrisation import FreeField, Parametrisation
from .params import CANONICAL_UNITS, FIELDS, JRParams
from .progress import Progress, check_progress
from .store import CheckpointStore
from .targets import erp_target, spectrum_target  # noqa: F401 (jr_jax.fitting.erp_target, as before)
from .uncertainty import NotIdentifiableWarning  # noqa: F401 (fit warns with it)
from .uncertainty import laplace as laplace_estimate
from .units import check_bool, check_dim, check_int, check_number, check_range, check_scalar

DEFAULT_FREE = ("A", "B", "a", "b")


class FitSpecError(ValueError):
    """A resume directory holds a fit with a different specification."""


# -- the result ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns. Parameter values are Quantities in the fields' canonical units.

    params: the best parameters found (lowest loss over all steps and starts): a JRParams, or what the
    parametrisation gives (a :class:`jr_jax.whole_brain.NetworkModel` for a network fit).
    free: the free values' names; fields: their :class:`jr_jax.parametrisation.FreeField` (unit, scale).
    loss: their loss. history: loss per step and start, shape (steps, starts); grad_norm likewise (unconstrained
    space). converged / reason: whether a stopping tolerance was met, and which. best_start: its index.
    starts: initial and final values of the free fields per start, with their final losses.
    stderr: Laplace standard errors of the free fields (Quantities; NaN where not identifiable); covariance and
    correlation in the fields' canonical units; hessian_eigenvalues in the unconstrained space; identifiable: True,
    False (a near-zero Hessian eigenvalue) or None (not assessed: laplace=False, or the point is not a minimum).
    nuisance: the closed-form scale/baseline of a built-in target at the optimum.
    """

    params: object
    free: tuple
    fields: tuple
    x: np.ndarray
    loss: float
    history: np.ndarray
    grad_norm: np.ndarray
    converged: bool
    reason: str
    n_steps: int
    best_start: int
    starts: dict
    stderr: dict
    covariance: np.ndarray | None
    correlation: np.ndarray | None
    hessian_eigenvalues: np.ndarray | None
    identifiable: bool | None
    nuisance: dict

    @property
    def values(self) -> dict:
        """Each free value at the optimum, a Quantity in its unit (plain numbers when unitless)."""
        return {f.name: f.quantity(float(x)) for f, x in zip(self.fields, self.x)}

    def spread(self, rel_loss: float = 0.1) -> dict:
        """(min, max) of each free field over the starts whose final loss is within (1 + rel_loss) × best, and how
        many they are (the key ``"n"``)."""
        loss = self.starts["loss"]
        ok = loss <= (1 + rel_loss) * np.nanmin(loss) + 1e-30
        out = {"n": int(ok.sum())}
        for i, f in enumerate(self.fields):
            vals = self.starts["final"][ok, i]
            out[f.name] = (f.quantity(float(vals.min())), f.quantity(float(vals.max())))
        return out

    def as_dict(self) -> dict:
        """A JSON-ready summary: loss, convergence, nuisance, and each free field's value and standard error as
        [number, unit] in its canonical unit."""
        def entry(f, q):
            return [float(f.numbers(q)), str(f.unit)]

        values = self.values
        return {"loss": self.loss, "converged": self.converged, "reason": self.reason, "steps": self.n_steps,
                "identifiable": self.identifiable, "nuisance": self.nuisance,
                "params": {f.name: entry(f, values[f.name]) for f in self.fields},
                "stderr": {f.name: entry(f, self.stderr[f.name]) for f in self.fields if f.name in self.stderr}}

    def summary(self) -> str:
        lines = [f"loss {self.loss:.4g} after {self.n_steps} steps ({'converged' if self.converged else 'NOT converged'}: "
                 f"{self.reason}); best of {self.starts['loss'].shape[0]} start(s)"]
        for f, val in zip(self.fields, self.x):
            se = self.stderr.get(f.name)
            s = "" if se is None else f" ± {float(f.numbers(se)):.3g}"
            lines.append(f"  {f.name} = {float(val):.6g}{s} {'' if f.unit.is_unitless else f.unit}")
        if self.identifiable is False:
            lines.append("  warning: the Hessian is near-singular; see hessian_eigenvalues")
        return "\n".join(lines)


# -- fitting ------------------------------------------------------------------------------------------------------

def default_optimizer(learning_rate: float = 0.05, steps: int = 300, clip: float = 1.0):
    """Gradient clipping (global norm ``clip``) then Adam with a cosine decay from ``learning_rate`` to 1 % of it
    over ``steps`` (in the unconstrained space, 0.05 is a 5 % change of a log-scaled parameter)."""
    schedule = optax.cosine_decay_schedule(learning_rate, max(1, steps), alpha=0.01)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(schedule))


OPTIMIZERS = ("adam", "lbfgs")
"""Names accepted by ``fit(optimizer=...)``: ``"adam"`` is :func:`default_optimizer`, ``"lbfgs"`` is
``optax.lbfgs()`` (memory 10, zoom line search: it needs no learning rate)."""


def _optimizer(optimizer, learning_rate, steps):
    """(the optax transformation, its name for the resume specification)."""
    if optimizer is None or optimizer == "adam":
        return default_optimizer(learning_rate, steps), f"default(lr={learning_rate})"
    if optimizer == "lbfgs":
        return optax.lbfgs(), "lbfgs"
    if isinstance(optimizer, str):
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or an optax GradientTransformation; got {optimizer!r}.")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be one of {OPTIMIZERS} or an optax GradientTransformation; "
                        f"got {type(optimizer).__name__}.")
    return optimizer, type(optimizer).__name__


def _stored_value(opt_state) -> bool:
    """Whether the optimiser keeps the loss and gradient at the current point (optax's line searches do)."""
    try:
        return optax.tree_utils.tree_get(opt_state, "value") is not None
    except KeyError:      # more than one entry called "value": do not guess
        return False


def _initial_thetas(par, starts, key, spread: float) -> np.ndarray:
    """(S, n_free) unconstrained start points: the start itself, then random points."""
    free: tuple[FreeField, ...] = par.fields
    if isinstance(starts, JRParams):
        if not isinstance(par, Parametrisation):
            raise TypeError("starts may be a batched JRParams only for a fit of JRParams fields; give a number of starts.")
        theta = par.start_thetas(starts)
        if not np.all(np.isfinite(theta)):
            raise ValueError("a start point lies outside the bounds or is not positive for a log-scaled field.")
        return theta
    if not isinstance(starts, (int, np.integer)) or starts < 1:
        raise ValueError(f"starts must be a positive integer or a batched JRParams; got {starts!r}.")
    if not spread > 1:
        raise ValueError(f"spread must be > 1 (random starts lie within start / spread … start · spread); got {spread!r}.")
    key = jax.random.key(0) if key is None else key
    z = np.asarray(jax.random.uniform(key, (int(starts) - 1, len(free))), np.float64)   # in [0, 1)
    theta = np.zeros((int(starts), len(free)))
    for i, f in enumerate(free):
        if f.kind == "log":
            theta[1:, i] = (2 * z[:, i] - 1) * math.log(spread)
        elif f.kind == "bounded":
            theta[0, i] = f.to_theta(f.ref)
            q = 0.05 + 0.9 * z[:, i]                       # 5 %–95 % of the interval
            theta[1:, i] = np.log(q / (1 - q))
        else:
            theta[1:, i] = (2 * z[:, i] - 1) * (spread - 1)
    return theta


def _settled(opt, theta, opt_state):
    """``opt_state`` with the dtypes (and weak types) that an update returns, so that the compiled step is not
    compiled a second time after the first step (optax's line-search state starts weakly typed)."""
    def one(s, t):
        return opt.update(t, s, t, value=jnp.zeros((), t.dtype), grad=t, value_fn=lambda x: jnp.sum(x * 0))[1]

    out = jax.eval_shape(jax.vmap(one), opt_state, theta)
    return jax.tree.map(lambda x, o: x if o.weak_type else jax.lax.convert_element_type(x, o.dtype), opt_state, out)


def _spec(objective: Callable, par, theta0: np.ndarray, steps: int, optimizer_name: str) -> dict:
    """Everything that fixes a fit's numbers, JSON-able: a resumed fit must find the same in its store."""
    if hasattr(objective, "spec"):
        obj = objective.spec()
    else:       # a plain function is known by its name and its value at the first start
        obj = {"kind": "callable", "name": getattr(objective, "__qualname__", repr(objective)),
               "value_at_start": float(objective(par.params(jnp.asarray(theta0[0]))))}
    return {"objective": obj, "parametrisation": par.spec(), "theta0": np.asarray(theta0).tolist(),
            "steps": int(steps), "optimizer": optimizer_name}


@dataclasses.dataclass
class _Run:
    """Where the optimisation stands: every start's point and optimiser state, the per-step history, the best point
    so far and the stopping counters. This is what a checkpoint holds."""

    theta: jax.Array           # (starts, n_free), the current points
    opt_state: object
    history: np.ndarray        # (steps, starts) loss per step
    grad_norm: np.ndarray      # (steps, starts)
    best_loss: np.ndarray      # (starts,)
    best_theta: np.ndarray     # (starts, n_free)
    stall: np.ndarray          # (starts,) steps since the last improvement by more than rtol
    dtype: object
    step: int = 0
    done: str = ""             # why it stopped ("" while it runs)

    @classmethod
    def fresh(cls, opt, theta0: np.ndarray, steps: int) -> "_Run":
        dtype = jnp.result_type(float)
        theta = jnp.asarray(theta0, dtype)
        opt_state = _settled(opt, theta, jax.vmap(opt.init)(theta))
        n_starts = theta.shape[0]
        return cls(theta, opt_state, np.full((steps, n_starts), np.nan), np.full((steps, n_starts), np.nan),
                   np.full(n_starts, np.inf), np.asarray(theta0, np.float64).copy(), np.zeros(n_starts, int), dtype)

    def restore(self, z: dict, opt) -> None:
        """Continue from the arrays of :meth:`arrays` (a resumed fit)."""
        self.step, self.done = int(z["step"]), str(z["done"])
        self.theta = jnp.asarray(z["theta"], self.dtype)
        treedef = jax.tree.structure(self.opt_state)
        self.opt_state = _settled(opt, self.theta, jax.tree.unflatten(treedef, [jnp.asarray(z[f"opt_{i}"])
                                                                                for i in range(treedef.num_leaves)]))
        self.best_theta, self.best_loss, self.stall = z["best_theta"], z["best_loss"], z["stall"]
        self.history[:self.step], self.grad_norm[:self.step] = z["history"], z["grad_norm"]

    def arrays(self) -> dict:
        """The state as named arrays, for the checkpoint store."""
        return {"step": self.step, "theta": np.asarray(self.theta), "best_theta": self.best_theta,
                "best_loss": self.best_loss, "history": np.asarray(self.history[:self.step]),
                "grad_norm": np.asarray(self.grad_norm[:self.step]), "stall": self.stall, "done": self.done,
                **{f"opt_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(self.opt_state))}}

    def advance(self, update: Callable, rtol: float) -> np.ndarray:
        """One optimiser step for every start; returns the losses at the points it started from."""
        th_now = np.asarray(self.theta, np.float64)
        self.theta, self.opt_state, loss, gn = update(self.theta, self.opt_state)
        loss, gn = np.asarray(loss, np.float64), np.asarray(gn, np.float64)
        self.history[self.step], self.grad_norm[self.step] = loss, gn
        better = np.isfinite(loss) & (loss < self.best_loss * (1 - rtol))
        self.stall = np.where(better, 0, self.stall + 1)
        improved = np.isfinite(loss) & (loss < self.best_loss)
        self.best_theta[improved], self.best_loss[improved] = th_now[improved], loss[improved]
        self.step += 1
        return loss


def _stop_reason(run: _Run, loss: np.ndarray, rtol: float, atol: float, patience: int) -> str:
    """Why the fit stops after this step, or "" to go on."""
    if not np.isfinite(loss).any():
        return f"the loss became non-finite at step {run.step} for every start"
    if np.all(run.best_loss < atol):
        return f"loss below atol = {atol:g} for every start"
    if np.all(run.stall >= patience):
        return f"no start improved its loss by more than rtol = {rtol:g} for {patience} steps"
    return ""


def _step_function(value: Callable, opt) -> Callable:
    """The compiled step ``(theta, opt_state) -> (theta, opt_state, loss, |grad|)`` for all starts at once."""
    value_and_grad = jax.value_and_grad(value)

    def opt_update(g, state, theta, loss):
        return opt.update(g, state, theta, value=loss, grad=g, value_fn=value)

    @jax.jit
    def update(theta, opt_state):
        if theta.shape[0] == 1:   # one start: no vmap (a batch of one slows the scanned gradient)
            state0 = jax.tree.map(lambda x: x[0], opt_state)
            if _stored_value(state0):   # the line search already evaluated this point
                vg = optax.value_and_grad_from_state(value)(theta[0], state=state0)
            else:
                vg = value_and_grad(theta[0])
            loss, g = jax.tree.map(lambda x: x[None], vg)
        else:
            loss, g = jax.vmap(value_and_grad)(theta)
        ok = jnp.isfinite(loss)[:, None] & jnp.all(jnp.isfinite(g), axis=-1, keepdims=True)
        g = jnp.where(ok, g, 0.0)
        upd, opt_state = jax.vmap(opt_update)(g, opt_state, theta, loss)
        return optax.apply_updates(theta, upd), opt_state, loss, jnp.linalg.norm(g, axis=-1)

    return update


def _checked_start(objective, start: JRParams | None, steps) -> JRParams:
    start = JRParams() if start is None else start
    if not isinstance(start, JRParams):
        raise TypeError(f"start must be a jr_jax.JRParams; got {type(start).__name__}.")
    if not callable(objective):
        raise TypeError(f"objective must be a target (erp_target, spectrum_target) or a function of JRParams; "
                        f"got {objective!r}.")
    check_int("steps", steps, what="a positive integer")
    return start


def _check_parametrisation(objective, par, start, free, bounds) -> None:
    """A ready parametrisation replaces start, free and bounds, and must have what the fit uses."""
    if not callable(objective):
        raise TypeError(f"objective must be a target or a differentiable function; got {objective!r}.")
    missing = [a for a in ("fields", "params", "penalty", "spec") if not hasattr(par, a)]
    if missing:
        raise TypeError(f"parametrisation must have fields, params(θ), penalty(θ) and spec() (see "
                        f"jr_jax.parametrisation); {type(par).__name__} lacks {missing}.")
    given = [n for n, v, d in (("start", start, None), ("free", free, DEFAULT_FREE), ("bounds", bounds, None))
             if v is not d]
    if given:
        raise ValueError(f"parametrisation= replaces start, free and bounds; do not pass {given} as well.")


def _check_free_and_bounds(free, bounds) -> None:
    """Types of ``free`` (names) and ``bounds`` (pairs of single, finite values in each field's unit); the names
    themselves are checked by :class:`jr_jax.parametrisation.Parametrisation`."""
    names = (free,) if isinstance(free, str) else free
    if not isinstance(names, (tuple, list)) or not all(isinstance(f, str) for f in names):
        raise TypeError(f"free must be JRParams field names (a tuple, or a string like 'A,B,a,b'); got {free!r}.")
    if bounds is None:
        return
    if not isinstance(bounds, dict):
        raise TypeError(f"bounds must be a dict {{name: (low, high)}}; got {type(bounds).__name__}.")
    for name, pair in bounds.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"bounds[{name!r}] must be a pair (low, high); got {pair!r}.")
        if name in FIELDS:
            for q in pair:
                check_dim(f"bounds[{name!r}]", q, CANONICAL_UNITS[name], FIELDS[name][1])
                check_range(f"bounds[{name!r}]", check_scalar(f"bounds[{name!r}]", q), CANONICAL_UNITS[name])


def _check_options(starts, spread, key, learning_rate, rtol, atol, patience, laplace, out_dir, save_every,
                   callback) -> None:
    """The types and ranges of :func:`fit`'s settings, before anything runs."""
    if not isinstance(starts, JRParams):
        check_int("starts", starts, what="a positive integer or a batched JRParams")
    check_number("spread", spread)
    check_key(key)
    check_number("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    check_number("rtol", rtol, low=0.0)
    check_number("atol", atol, low=0.0)
    check_int("patience", patience, what="a positive number of steps")
    check_bool("laplace", laplace)
    check_folder("out_dir", out_dir)
    check_int("save_every", save_every, what="a positive number of steps")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function callback(step, losses) or None; got {callback!r}.")


def _result(objective, par, run: _Run, theta0: np.ndarray, value: Callable, steps: int,
            laplace: bool) -> FitResult:
    """The FitResult of a finished run: the best start's point, every start's summary, the Laplace errors."""
    converged = bool(run.done) and not run.done.startswith("the loss became")
    reason = run.done or f"reached steps = {steps} before a tolerance was met"
    b = int(np.argmin(run.best_loss))
    th_best = jnp.asarray(run.best_theta[b], run.dtype)
    params = jax.tree.map(lambda x: np.asarray(x, np.float64) if jnp.issubdtype(jnp.result_type(x), jnp.floating)
                          else x, par.params(th_best))
    x_best = np.array([float(f.from_theta(t)) for f, t in zip(par.fields, run.best_theta[b])])
    final = np.stack([[float(f.from_theta(t)) for f, t in zip(par.fields, row)] for row in run.best_theta])
    initial = np.stack([[float(f.from_theta(t)) for f, t in zip(par.fields, row)] for row in theta0])
    starts_info = {"initial": initial, "final": final, "loss": np.asarray(run.best_loss, np.float64)}
    est = ({}, None, None, None, None)     # stderr, covariance, correlation, eigenvalues, identifiable
    if laplace and np.isfinite(run.best_loss[b]):
        est = laplace_estimate(value, th_best, par.fields, x_best, float(run.best_loss[b]),
                               getattr(objective, "n_points", None), stacklevel=_caller_level(),
                               factor=getattr(par, "covariance_factor", None))
    nuisance = objective.nuisance(params) if hasattr(objective, "nuisance") else {}
    names = tuple(f.name for f in par.fields)
    return FitResult(params, names, par.fields, x_best, float(run.best_loss[b]), run.history[:run.step],
                     run.grad_norm[:run.step],
                     converged, reason, run.step, b, starts_info, *est, nuisance)


def _caller_level() -> int:
    """The ``stacklevel`` for laplace's warning, called from :func:`_result` (this function's caller), that points
    at the first frame outside jr_jax: the user's call of :func:`fit`, or of a method that calls it
    (:meth:`NetworkModel.fit`)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2          # laplace is level 1, _result (its caller) level 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def fit(objective: Callable, *, start: JRParams | None = None, free=DEFAULT_FREE, bounds: dict | None = None,
        steps: int = 300, optimizer=None, learning_rate: float = 0.05, starts=1, spread: float = 2.0, key=None,
        rtol: float = 1e-4, atol: float = 1e-10, patience: int = 30, laplace: bool = True, progress=False,
        out_dir=None, save_every: int = 20, callback: Callable | None = None, parametrisation=None) -> FitResult:
    """Minimise ``objective(params)`` over the ``free`` fields of ``start`` by gradient descent with optax.

    Args:
      objective: an :func:`erp_target`, a :func:`spectrum_target` or any differentiable ``f(JRParams) -> scalar``.
      start: the initial parameters (default ``JRParams()``); the fields not free keep these values.
      free: field names (a tuple or ``"A,B,a,b"``); default A, B, a, b.
      bounds: ``{name: (low, high)}`` as Quantities; those fields go through a logistic map, so they stay inside.
      steps: maximum optimiser steps.
      optimizer: ``"adam"`` (the default: :func:`default_optimizer` with ``learning_rate``), ``"lbfgs"``
        (``optax.lbfgs()``: for deterministic losses such as the targets with common random numbers, usually far
        fewer steps), or any optax ``GradientTransformation``; those that take extra arguments (line searches) get
        ``value``, ``grad`` and ``value_fn``.
      starts: the number of starts (the start itself, then random points within ``start / spread … start · spread``
        for log-scaled fields, 5–95 % of the interval for bounded ones, drawn from ``key``), or a JRParams whose
        free fields are arrays (one start per entry). All starts run at once under ``vmap``.
      rtol, patience: stop when no start has improved its best loss by more than ``rtol`` (relative) for
        ``patience`` steps; atol: or when every start's loss is below it.
      laplace: estimate standard errors from the Hessian at the optimum (see the README for the assumptions); a
        near-singular Hessian warns with :class:`NotIdentifiableWarning`.
      progress: True (a tqdm bar on stderr with the current and best loss), False, or any tqdm-compatible object.
      out_dir: a checkpoint folder (:class:`jr_jax.store.CheckpointStore`) where the optimiser state is saved every
        ``save_every`` steps; calling again with the same arguments resumes from the last save and ends as an
        uninterrupted fit would (a different specification raises :class:`FitSpecError`).
      callback: ``callback(step, losses)`` after every step (losses: one per start); may raise to stop.
      parametrisation: instead of ``start``, ``free`` and ``bounds``, a ready map from θ to what ``objective`` takes
        (see :mod:`jr_jax.parametrisation`), e.g. a whole-brain network's; its ``penalty(θ)`` (a prior) is added
        to the loss, so the fit is a MAP estimate.

    Every argument is checked (type, unit, range) before anything is compiled; the errors name it.
    """
    if parametrisation is None:
        start = _checked_start(objective, start, steps)
    else:
        _check_parametrisation(objective, parametrisation, start, free, bounds)
        check_int("steps", steps, what="a positive integer")
    check_progress(progress)
    _check_free_and_bounds(free, bounds)
    _check_options(starts, spread, key, learning_rate, rtol, atol, patience, laplace, out_dir, save_every, callback)
    par = Parametrisation(start, free, bounds) if parametrisation is None else parametrisation
    opt, opt_name = _optimizer(optimizer, learning_rate, steps)
    theta0 = _initial_thetas(par, starts, key, spread)
    opt = optax.with_extra_args_support(opt)

    def value(theta):
        return objective(par.params(theta)) + par.penalty(theta)

    update = _step_function(value, opt)
    run = _Run.fresh(opt, theta0, steps)
    store = None if out_dir is None else CheckpointStore(out_dir, _spec(objective, par, theta0, steps, opt_name),
                                                         error=FitSpecError, what="fit", exclusive=True)
    with store or contextlib.nullcontext():
        if store is not None and "fit_state" in store:
            run.restore(store.load("fit_state"), opt)
        with Progress(progress, total=steps, unit="steps", desc="fitting", done=run.step) as bar:
            _optimise(run, update, bar, store, steps, rtol, atol, patience, save_every, callback)
    return _result(objective, par, run, theta0, value, steps, laplace)


def _optimise(run: _Run, update: Callable, bar: Progress, store, steps: int, rtol: float, atol: float, patience: int,
              save_every: int, callback) -> None:
    """Optimiser steps until a stopping rule holds or ``steps`` are done, saving to ``store`` as it goes."""
    while run.step < steps and not run.done:
        loss = run.advance(update, rtol)
        now = float(np.nanmin(loss)) if np.isfinite(loss).any() else float("nan")
        bar.update(1, loss=f"{now:.4g}", best=f"{float(run.best_loss.min()):.4g}")
        run.done = _stop_reason(run, loss, rtol, atol, patience)
        if store is not None and (run.step % save_every == 0 or run.done or run.step == steps):
            store.save({"fit_state": run.arrays()})
        if callback is not None:
            callback(run.step, loss)
