"""Networks of Jansen–Rit columns: connectome coupling with conduction delays, field feedback, EEG lead field.

A :class:`Network` is a pytree (weights, delays, coupling scale, speed, field and lead field are leaves, so ``grad``
and ``vmap`` go through them) that :func:`jr_jax.simulate` and :func:`jr_jax.trace` take as
``network=``. The columns are the one model (:func:`jr_jax.model.rhs`) with a column axis; every integrator stage
adds the network's input to p (and, for the pyramidal rule, to the pyramidal kernel).

Coupling rules (``rule=``), K = weights (row i receives from column j), G = the global coupling scale:

* ``"afferent"`` (Jansen & Rit 1995, The Virtual Brain): p_i += G Σ_j K_ij S(y1_j − y2_j)(t − τ_ij), an afferent pulse
  density (Hz) onto the excitatory interneurons of column i.
* ``"pyramidal"`` (the Jansen–Rit reference summary): y0_i'' = A a [S(y1_i − y2_i) + G Σ_j K_ij S(y0_j(t − τ_ij))] − 2a y0_i' − a² y0_i.
  The summary writes the sum added to y0'' itself; a pulse density (Hz) cannot be added to an acceleration (mV/s²), so
  it enters the pyramidal kernel like S(y1 − y2): the summary's K_ij is A·a·G·K_ij here (units mV/s).

Field feedback (the Jansen–Rit reference summary's ψ): ψ_i = Σ_j F_ij S(y1_j − y2_j)(t), instantaneous, with F from the centres' distances
(:func:`field_kernel`), adds β ψ_i (Hz) to p_i.

Delays: the presynaptic rates of the last ⌈max_delay / dt⌉ + 2 steps are kept in a ring buffer in the scan carry
(with ``interpolation="hermite"`` also their time derivatives). A stage at time t + c·dt reads column j's rate at
t + c·dt − τ_ij by interpolation between stored steps (:mod:`jr_jax.history`: linear, second order, or cubic
Hermite, fourth order); when that time is inside the current step (τ_ij < c·dt; τ = 0 is instantaneous coupling) it
interpolates between the step's start and the stage's own state. The result is continuous and piecewise smooth in
τ, hence differentiable with respect to the weights, G and the conduction speed. Before t = 0 the history is the
initial state's rate (constant). The read visits the connectome's connected pairs only (``pairs="connected"``, laid
out per receiver when that is at most half of the columns) or every pair (``pairs="all"``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .units import check_dim, check_range, check_real, check_scalar, is_concrete
from .connectome import Connectome
from .leadfield import LeadField
from .history import (READS, flat_places, hermite_weights, linear_weights, past_sums, rate_and_slope, sample_sums,
                      write_row)
from .model import JRState, eeg, sigmoid
from .params import FIELD_NAMES

RULES = ("afferent", "pyramidal")
PAIRS = ("connected", "all")
DEFAULT_SPEED = 3.0 * u.meter / u.second


class NetworkState(NamedTuple):
    """The state of a network: the columns (a :class:`JRState` with fields of shape (N,)) and the recent presynaptic
    rates (Hz, shape (buffer steps, N); with Hermite interpolation (buffer steps, 2, N): the rates and their time
    derivatives in Hz/s): row 0 is the current state's rate, row −j (i.e. buffer steps − j) the rate j steps
    earlier. Inside the scan the rows travel flat, as a ring buffer (:func:`jr_jax.history.to_ring`)."""

    columns: JRState
    history: jax.Array


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """Build with :func:`network`. Leaves: weights (N, N), lengths_mm (N, N) or None, speed (m/s) or None,
    delays_s (N, N) or None, coupling (G), field (N, N) or None, field_gain (β), lead_field (M, N) or None.
    Static: rule, max_delay_s (sets the ring buffer), labels, sensor_names (the lead field's sensors, or None),
    interpolation (the delayed read, :mod:`jr_jax.history`), senders (per receiving column, the columns it reads:
    the connectome's nonzero weights; None: all columns)."""

    weights: jax.Array
    lengths_mm: jax.Array | None
    speed: u.Quantity | None
    delays_s: jax.Array | None
    coupling: jax.Array
    field: jax.Array | None
    field_gain: jax.Array
    lead_field: jax.Array | None
    rule: str
    max_delay_s: float
    labels: tuple
    sensor_names: tuple | None = None
    interpolation: str = "linear"
    senders: tuple | None = None

    def tree_flatten(self):
        return ((self.weights, self.lengths_mm, self.speed, self.delays_s, self.coupling, self.field,
                 self.field_gain, self.lead_field), (self.rule, self.max_delay_s, self.labels, self.sensor_names,
                                                     self.interpolation, self.senders))

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    @property
    def n_regions(self) -> int:
        return int(self.weights.shape[-1])

    def delays(self) -> u.Quantity:
        """τ_ij (s), (N, N): lengths / speed, or the delays given."""
        return u.Quantity(self._delays_s(), unit=u.second)

    def _delays_s(self):
        if self.delays_s is not None:
            return self.delays_s
        return self.lengths_mm * 1e-3 / self.speed.to_decimal(u.meter / u.second)

    def buffer_steps(self, dt_s: float) -> int:
        """Rows of the ring buffer for a step dt: ⌈max_delay / dt⌉ + 2."""
        return int(math.ceil(self.max_delay_s / dt_s - 1e-9)) + 2

    def history_shape(self, dt_s: float) -> tuple:
        """The shape of :attr:`NetworkState.history` for a step dt: (rows, N), or (rows, 2, N) for Hermite."""
        return (self.buffer_steps(dt_s),) + ((2,) if self.interpolation == "hermite" else ()) + (self.n_regions,)

    # -- the pieces the loop calls (see jr_jax.loop.Coupled) ------------------------------------------

    def presynaptic(self, state: JRState, params) -> jax.Array:
        """The rate (Hz, mantissa) each column sends: S(y1 − y2), or S(y0) for the pyramidal rule."""
        v = state.y0 if self.rule == "pyramidal" else eeg(state)
        return sigmoid(v, params).to_decimal(u.Hz)

    def samples(self, state: JRState, params) -> jax.Array:
        """What the history stores of ``state``: its rate (N,), or for Hermite its rate and dS/dt (2, N)."""
        if self.interpolation == "linear":
            return self.presynaptic(state, params)
        v, dv = (state.y0, state.y3) if self.rule == "pyramidal" else (eeg(state), state.y4 - state.y5)
        return jnp.stack(rate_and_slope(v, dv, params))

    def initial_state(self, state: JRState, params, dt_s: float, dtype) -> NetworkState:
        """A :class:`NetworkState` whose history holds the initial state's rate at every stored step (Hermite: with
        dS/dt = 0 before t = 0 and the state's own dS/dt at t = 0)."""
        cols = JRState(*(u.Quantity(jnp.broadcast_to(jnp.asarray(x.mantissa, dtype), (self.n_regions,)), unit=x.unit)
                         for x in state))
        h = _samples(self, cols, params).astype(dtype)
        if self.interpolation == "linear":
            return NetworkState(cols, jnp.broadcast_to(h, (self.buffer_steps(dt_s), self.n_regions)))
        before = jnp.broadcast_to(h * jnp.asarray([[1], [0]], dtype), self.history_shape(dt_s))
        return NetworkState(cols, before.at[0].set(h))

    def push(self, history, step, state: JRState, params, copies: int):
        """Store the samples of ``state`` (the state at global step ``step``) in the loop's flat buffer ``history``
        (:func:`jr_jax.history.to_ring`), in each of its copies of that row."""
        return write_row(history, self.samples(state, params).astype(history.dtype).reshape(-1), step, copies)

    def links(self) -> tuple[np.ndarray, np.ndarray]:
        """The pairs the delayed read visits, laid out (receiver, slot): the senders' indices (N, slots) and a 0/1
        mask of the visited ones. With :attr:`senders` and no receiver reading more than half of the columns, each
        receiver's senders padded to the largest in-degree (the read then costs the in-degree, not N); else every
        column in order."""
        n = self.n_regions
        slots = 0 if self.senders is None else max(1, max(len(s) for s in self.senders))
        if self.senders is None or slots > n // 2:
            return np.tile(np.arange(n, dtype=np.int32), (n, 1)), self.visited()
        cols, mask = np.zeros((n, slots), np.int32), np.zeros((n, slots))
        for i, s in enumerate(self.senders):
            cols[i, :len(s)], mask[i, :len(s)] = s, 1.0
        return cols, mask

    def visited(self) -> np.ndarray:
        """(N, N) 0/1: the pairs the delayed read visits (:attr:`senders`)."""
        if self.senders is None:
            return np.ones((self.n_regions,) * 2)
        keep = np.zeros((self.n_regions,) * 2)
        for i, s in enumerate(self.senders):
            keep[i, list(s)] = 1.0
        return keep

    def read_weights(self) -> jax.Array:
        """G·K restricted to the pairs the read visits."""
        gk = self.coupling * self.weights
        return gk if self.senders is None else gk * self.visited()

    def prepare(self, dt_s, n_buf: int, dtype, stages, carry: bool = True, copies: int = 2) -> dict:
        """Per-run constants of the delayed read (traceable; computed once, outside the loop).

        With d_ij = τ_ij / dt steps and l_ij = ⌊−d_ij⌋, a stage at c·dt after the step's start reads column j at
        step + c − d_ij, which lies between the stored samples step + l_ij + {0, 1, 2} (c ≤ 1). For each stage
        fraction c the read is a weighted sum of those three samples, or, when c − d_ij ≥ 0 (the read falls inside the
        current step), of the step's start (the sample at step + 0, one of the three) and the stage's own state
        (:mod:`jr_jax.history`). The pairs are laid out (receiver, slot) over :meth:`links`. Returned: each
        sample's flat place ``base`` (receiver, plane, slot; :func:`~jr_jax.history.to_ring`) and the matrices
        G·K_ij·weight: linear, ``planes`` (receiver, stage, plane × slot) for every distinct c at once and, per c,
        its index there and the stage rates' (N, N) matrix; Hermite, ``planes`` (receiver, stage, rate|slope ×
        plane × slot) and, per c, its index there and the stage's own (receiver, rate|slope × sender) matrix."""
        cols, mask = self.links()
        d_full = jnp.clip(self._delays_s().astype(dtype) / dt_s, 0.0, n_buf - 2)
        gk_full = self.read_weights().astype(dtype)
        receivers = np.arange(self.n_regions)[:, None]
        d, gk = d_full[receivers, cols], gk_full[receivers, cols] * jnp.asarray(mask, dtype)
        lo = jnp.floor(-d)
        lo_full = jnp.floor(-d_full)
        out = {"copies": copies}
        if copies not in (1, 2):
            raise ValueError(f"copies must be 1 or 2 (the ring buffer's rows once or twice over); got {copies!r}.")
        offsets = lo.astype(jnp.int32)[:, None, :] + jnp.arange(3, dtype=jnp.int32)[None, :, None]
        # each sample's flat place at a step ≡ 0 (mod rows) (see to_ring); a step adds (step mod rows) rows
        width = self.n_regions * (1 if self.interpolation == "linear" else 2)
        out["base"] = (offsets + n_buf - 2) * width + jnp.asarray(cols, jnp.int32)[:, None, :]
        if self.interpolation == "linear":
            at_start = (jnp.arange(3)[:, None, None] == -lo[None]).astype(dtype)    # the plane of step + 0
            cs = tuple(dict.fromkeys(stages))
            # with stages at 0 and 1, a step's read at its start is the last step's read at its end: carried over
            carry = carry and 0 in cs and 1 in cs
            summed = tuple(c for c in cs if not (carry and c == 0))
            planes = []
            for k, c in enumerate(summed):
                past, start, _ = linear_weights(d, lo, c, gk, dtype)
                planes.append(jnp.stack(past) + at_start * start[None])
                out[c] = (k, linear_weights(d_full, lo_full, c, gk_full, dtype)[2])
            w = jnp.transpose(jnp.stack(planes), (2, 0, 1, 3))                      # (i, stage, plane, slot)
            out["planes"] = w.reshape(w.shape[:2] + (-1,))
            if carry:
                out[0], out["carried"] = (None, out[1][1]), out[1][0]
            return out
        n = self.n_regions
        planes = []
        for k, c in enumerate(dict.fromkeys(stages)):
            past, _ = hermite_weights(d, lo, c, gk, dt_s, dtype)
            _, own = hermite_weights(d_full, lo_full, c, gk_full, dt_s, dtype)
            planes.append(jnp.transpose(past, (1, 3, 0, 2)).reshape(n, -1))   # (i, rate|slope × plane × slot)
            out[c] = (k, jnp.transpose(own, (0, 2, 1)).reshape(n, 2 * n))
        out["planes"] = jnp.stack(planes, axis=1)                                # (i, stage, samples)
        return out

    def first_read(self, history, step, prep):
        """What a run starting at global step ``step`` carries into its first step (see :meth:`input_at`): the
        delayed read at the end of step − 1 without its stage term, or None."""
        return None if "carried" not in prep else self._past(history, step - 1, prep)[prep["carried"]]

    def _past(self, history, step, prep):
        """The linear read's past sums at every summed stage of global step ``step``, (stages, N)."""
        n = self.n_regions
        # all stages' reads at once, one flat index per sample
        flat = flat_places(prep["base"], history.shape[0], step, prep["copies"], n)
        return past_sums(prep["planes"], history[flat].reshape(n, -1))

    def input_at(self, history, step, prep, params, carried=None):
        """The coupling hook of one integrator step from global step ``step``, ``hook(state, c) -> (dp, q)`` in Hz
        at the stage time (step + c)·dt for that stage's state, from the flat ring buffer ``history`` (see
        :meth:`push`; flat, so that the gradient adds each step's read into the buffer's cotangent in place), and
        what the next step carries. With stages at 0 and 1 (linear read) the read at a step's start is the last
        step's read at its end, ``carried`` (:meth:`first_read`; the solver evaluates c = 0 at the step's start
        state): one sum over the pairs fewer per step. ``prep`` from :meth:`prepare`."""
        n = self.n_regions
        if self.interpolation == "linear":
            past = self._past(history, step, prep)

            def read(state, c):
                k, w_stage = prep[c]
                return (carried if k is None else past[k]) + w_stage @ self.presynaptic(state, params).astype(
                    history.dtype)
        else:
            rate = flat_places(prep["base"], history.shape[0], step, prep["copies"], 2 * n)
            # (i, rate|slope, plane, slot), gathered once per step; plain sums, so forward mode works through them
            samples = jnp.stack([history[rate], history[rate + n]], axis=1)
            past = sample_sums(prep["planes"], samples.reshape(n, -1))

            def read(state, c):
                k, own = prep[c]
                return past[k] + own @ self.samples(state, params).astype(history.dtype).reshape(2 * n)

        def hook(state, c):
            if c not in prep:
                raise ValueError(f"the solver evaluated the network's input at stage {c} of the step, which is not "
                                 f"among its stages {tuple(k for k in prep if not isinstance(k, str))}: list every "
                                 f"stage in its stages = (...).")
            x = u.Quantity(read(state, c), unit=u.Hz)
            dp, q = (None, x) if self.rule == "pyramidal" else (x, None)
            if self.field is not None:
                psi = self.field.astype(history.dtype) @ sigmoid(eeg(state), params).to_decimal(u.Hz)
                fb = u.Quantity(self.field_gain * psi, unit=u.Hz)
                dp = fb if dp is None else dp + fb
            return dp, q

        return hook, (None if "carried" not in prep else past[prep["carried"]])

    def check_noise(self, drive):
        """Column noise is drawn per column from one intensity: the drive's random part must be a scalar."""
        sigma = drive.sigma
        if sigma is not None and np.ndim(u.get_mantissa(sigma)) != 0:
            raise ValueError(f"the drive's noise intensity must be one value for all columns (each column draws its own "
                             f"noise); got shape {np.shape(u.get_mantissa(sigma))}. Per-column means are fine.")

    def sensors(self, eeg_regions, *, noise=None, key=None) -> u.Quantity:
        """Sensor EEG = L · (y1 − y2) for region EEG of shape (..., N) (a Quantity in mV), shape (..., M); with
        ``noise`` (mV, an SD) independent Gaussian sensor noise drawn from ``key``."""
        if self.lead_field is None:
            raise ValueError("this network has no lead field: pass lead_field=... to jr_jax.network.network().")
        check_dim("eeg_regions", eeg_regions, u.mV, "result.eeg")
        if noise is not None:
            check_dim("noise", noise, u.mV, "0.01 * u.mV")
            check_range("noise", noise, u.mV, low=0.0)
            if key is None:
                raise ValueError("sensor noise needs key=jax.random.key(seed).")
        x = eeg_regions.to_decimal(u.mV)
        if x.shape[-1] != self.n_regions:
            raise ValueError(f"eeg_regions must end with the {self.n_regions} regions; got shape {x.shape}.")
        out = x @ jnp.asarray(self.lead_field, x.dtype).T
        if noise is not None:
            out = out + noise.to_decimal(u.mV) * jax.random.normal(key, out.shape, out.dtype)
        return u.Quantity(out, unit=u.mV)


@jax.jit
def _samples(net: Network, state: JRState, params):
    # compiled: brainunit formats both operands of an eager − into its error message, 30 ms for 76 columns
    return net.samples(state, params)


def field_kernel(connectome: Connectome, length=20.0 * u.mmeter) -> np.ndarray:
    """F_ij = exp(−d_ij / length) from the distances between region centres (1 on the diagonal)."""
    check_dim("length", length, u.mmeter, "20. * u.mmeter")
    check_range("length", length, u.mmeter, low=0.0, low_inclusive=False)
    d = np.asarray(connectome.distances().to_decimal(u.mmeter))
    return np.exp(-d / float(length.to_decimal(u.mmeter)))


def _matrix(name, x, shape):
    m = np.asarray(check_real(name, x), dtype=np.float64)
    if m.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {m.shape}.")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be finite.")
    return m


def network(connectome: Connectome, *, coupling=1.0, speed=DEFAULT_SPEED, delays=None, rule: str = "afferent",
            field=None, field_gain=0.0, lead_field=None, max_delay=None, interpolation: str = "linear",
            pairs: str = "connected") -> Network:
    """A network of Jansen–Rit columns on ``connectome``.

    Args:
      connectome: a :class:`jr_jax.connectome.Connectome` (weights, tract lengths, …).
      coupling: the global scale G (dimensionless).
      speed: conduction speed (default 3 m/s); delays are ``lengths / speed``.
      delays: (N, N) delays (Quantity in s) instead of lengths and speed; 0 = instantaneous.
      rule: ``"afferent"`` (Jansen & Rit 1995 / TVB) or ``"pyramidal"`` (the Jansen–Rit reference summary); see the module docstring.
      field: (N, N) kernel F of the field ψ (e.g. :func:`field_kernel`); ``field_gain`` is β.
      lead_field: (M, N) lead field L: sensor EEG = L · (y1 − y2) (see :meth:`Network.sensors`), or a
        :class:`jr_jax.leadfield.LeadField` for this connectome's regions (its sensor names are kept).
      max_delay: the longest delay the ring buffer holds (default: the longest delay of a connected pair). Set it
        when you fit or sweep the speed: a delay beyond it is clipped inside ``jit``.
      interpolation: the read of the delayed rates between stored steps (:mod:`jr_jax.history`): ``"linear"``
        (second order) or ``"hermite"`` (cubic Hermite from the rates and their time derivatives: fourth order with
        RK4, twice the buffer, about twice the wall time of a 76-region step on two cores; docs "Solvers").
      pairs: the pairs the delayed read visits: ``"connected"`` (those with a nonzero weight in ``connectome``; on
        a sparse connectome the read costs its largest in-degree, not N; a gradient with respect to the weights
        covers these pairs only, and traced weights elsewhere are ignored) or ``"all"`` (every pair: for a gradient
        with respect to every weight, or to stack networks of different connectomes for ``vmap``).

    Every argument is checked (type, unit, shape, finiteness, range); the errors name it.
    """
    if not isinstance(connectome, Connectome):
        raise TypeError(f"connectome must be a jr_jax.connectome.Connectome; got {type(connectome).__name__}.")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}.")
    if not isinstance(interpolation, str) or interpolation not in READS:
        raise ValueError(f"interpolation must be one of {READS} (the read of the delayed rates); got "
                         f"{interpolation!r}.")
    if not isinstance(pairs, str) or pairs not in PAIRS:
        raise ValueError(f"pairs must be one of {PAIRS} (the pairs the delayed read visits); got {pairs!r}.")
    n = connectome.n_regions
    check_range("coupling", check_scalar("coupling", coupling), u.UNITLESS)
    check_range("field_gain", check_scalar("field_gain", field_gain), u.UNITLESS)
    lengths_mm = speed_q = delays_s = None
    if delays is not None:
        check_dim("delays", delays, u.second, "delays_ms * u.ms")
        delays_s = _matrix("delays", delays.to_decimal(u.second), (n, n))
        if np.any(delays_s < 0):
            raise ValueError(f"delays must be >= 0; got min {delays_s.min():.6g} s.")
        tau = delays_s
    else:
        if connectome.lengths is None:
            raise ValueError("the connectome has no tract lengths: pass delays=... (a Quantity in s, shape (N, N)).")
        check_dim("speed", speed, u.meter / u.second, "3. * u.meter / u.second")
        check_range("speed", speed, u.meter / u.second, low=0.0, low_inclusive=False)
        if np.ndim(u.get_mantissa(speed)) != 0:
            raise ValueError(f"speed must be one value; got shape {np.shape(u.get_mantissa(speed))}.")
        lengths_mm = np.asarray(connectome.lengths.to_decimal(u.mmeter))
        speed_q = u.Quantity(jnp.asarray(speed.to_decimal(u.meter / u.second)), unit=u.meter / u.second)
        tau = lengths_mm * 1e-3 / float(speed.to_decimal(u.meter / u.second))
    longest = _longest_delay(tau, connectome.weights)
    if max_delay is None:
        max_s = longest
    else:
        check_dim("max_delay", max_delay, u.second, "100. * u.ms")
        check_range("max_delay", check_scalar("max_delay", max_delay), u.second, low=0.0)
        max_s = float(max_delay.to_decimal(u.second))
        if longest > max_s * (1 + 1e-9):
            raise ValueError(f"a delay of {longest * 1e3:.6g} ms exceeds max_delay = {max_s * 1e3:.6g} ms; raise max_delay.")
    field_m = None if field is None else _matrix("field", field, (n, n))
    lead = None
    sensor_names = None
    if isinstance(lead_field, LeadField):
        lead_field.check_regions(connectome.labels)
        lead_field, sensor_names = lead_field.matrix, lead_field.sensors
    if lead_field is not None:
        lead = np.asarray(check_real("lead_field", lead_field), dtype=np.float64)
        if lead.ndim != 2 or lead.shape[1] != n:
            raise ValueError(f"lead_field must have shape (M, {n}) (sensors × regions); got {lead.shape}.")
        if not np.all(np.isfinite(lead)):
            raise ValueError("lead_field must be finite.")
    return Network(jnp.asarray(connectome.weights), None if lengths_mm is None else jnp.asarray(lengths_mm), speed_q,
                   None if delays_s is None else jnp.asarray(delays_s), jnp.asarray(coupling, dtype=float),
                   None if field_m is None else jnp.asarray(field_m), jnp.asarray(field_gain, dtype=float),
                   None if lead is None else jnp.asarray(lead), rule, max_s, connectome.labels, sensor_names,
                   interpolation=interpolation, senders=_senders(connectome.weights) if pairs == "connected" else None)


def _senders(weights) -> tuple | None:
    """Per receiver, the columns with a nonzero weight (None when every pair has one)."""
    w = np.asarray(weights) != 0
    if w.all():
        return None
    return tuple(tuple(int(j) for j in np.flatnonzero(row)) for row in w)


def region_indices(labels: tuple, regions, what: str = "regions") -> list[int]:
    """Indices of ``regions`` (labels or indices, one or a sequence) among ``labels``; an unknown one raises."""
    items = [regions] if isinstance(regions, (str, int, np.integer)) else list(regions)
    if not items:
        raise ValueError(f"{what} must name at least one region; got none.")
    out = []
    for r in items:
        if isinstance(r, str):
            if r not in labels:
                near = [lab for lab in labels if r.lower() in lab.lower()][:6]
                raise ValueError(f"{what}: {r!r} is not a region of this network"
                                 + (f" (similar: {near})" if near else f" (labels: {list(labels)[:8]}…)") + ".")
            out.append(labels.index(r))
        elif isinstance(r, (int, np.integer)) and not isinstance(r, bool) and 0 <= r < len(labels):
            out.append(int(r))
        else:
            raise ValueError(f"{what} must be region labels or indices in [0, {len(labels)}); got {r!r}.")
    if len(set(out)) != len(out):
        raise ValueError(f"{what} names a region twice: {items}.")
    return out


def lesion(net: Network, regions) -> Network:
    """A "virtual dissection": a new network in which ``regions`` (indices, or labels of the connectome) neither
    receive from nor send to any other region (their rows and columns of the weights set to zero). Everything else,
    the ring buffer's length and the field ψ included, is kept, so a lesioned network reuses the compiled run."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be built with jr_jax.network.network(); got {type(net).__name__}.")
    index = region_indices(tuple(net.labels), regions)
    keep = np.ones(net.n_regions, bool)
    keep[index] = False
    mask = jnp.asarray(np.outer(keep, keep), jnp.asarray(net.weights).dtype)
    return dataclasses.replace(net, weights=net.weights * mask)


def check_params(params, n: int):
    """Every JRParams field must be a scalar or have shape (N,) (one value per column)."""
    bad = {f: np.shape(u.get_mantissa(getattr(params, f))) for f in FIELD_NAMES
           if np.shape(u.get_mantissa(getattr(params, f))) not in ((), (n,))}
    if bad:
        raise ValueError(f"with a network of {n} columns every JRParams field must be a scalar or have shape ({n},); "
                         f"got {bad}.")


def _longest_delay(tau_s, weights) -> float:
    """The longest delay (s) between connected columns (0 without connections)."""
    conn = np.asarray(weights) != 0
    return float(np.asarray(tau_s)[conn].max()) if conn.any() else 0.0


def check_delays_fit(net: Network):
    """Host-side checks of a network before a run: concrete weights only where its read visits (also when other
    leaves are traced), and delays within the ring buffer (skipped under tracing, where they are clipped)."""
    if net.senders is not None and is_concrete(net.weights):
        outside = (np.asarray(net.weights) != 0) & (net.visited() == 0)
        if outside.any():
            i, j = np.argwhere(outside)[0]
            raise ValueError(f"the network's weights are nonzero where its connectome had none (row {i}, column {j}, "
                             f"of {int(outside.sum())}); its delayed read visits only the connectome's "
                             f"pairs: build it with network(connectome_with_these_weights) or pairs=\"all\".")
    if not is_concrete(net):
        return
    with jax.ensure_compile_time_eval():     # concrete leaves inside a jit (e.g. a fit of A only) are computed here
        longest = _longest_delay(net._delays_s(), net.weights)
    if longest > net.max_delay_s * (1 + 1e-6) + 1e-12:
        raise ValueError(f"a delay of {longest * 1e3:.6g} ms exceeds the network's max_delay = "
                         f"{net.max_delay_s * 1e3:.6g} ms (the ring buffer); build it with a larger max_delay.")
