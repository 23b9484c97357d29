"""The Jansen–Rit right-hand side: one definition for every integrator, batch and network.

State ``y0, y1, y2`` are the mean membrane potentials (mV) contributed by the pyramidal, excitatory and inhibitory
synaptic kernels, ``y3, y4, y5`` their time derivatives (mV/s):

    y0'' = A a S(y1 − y2)            − 2a y0' − a² y0
    y1'' = A a [p + C2 S(C1 y0)]     − 2a y1' − a² y1
    y2'' = B b C4 S(C3 y0)           − 2b y2' − b² y2

with S(v) = 2 e0 / (1 + exp(r (v0 − v))). Each line is a second-order PSP kernel (d/dt + k)² y = G k · rate driven
by a firing rate (Hz); :func:`firing_rates` gives the three rates and :func:`psp_acceleration` applies the kernel, so
the splitting integrator can treat the linear kernel exactly while using the same model.
"""

from __future__ import annotations

from typing import NamedTuple

import brainunit as u
import jax.numpy as jnp

from .params import JRParams


class JRState(NamedTuple):
    """State of a column (a pytree). Potentials in mV, their derivatives in mV/s; any leading batch shape."""

    y0: u.Quantity
    y1: u.Quantity
    y2: u.Quantity
    y3: u.Quantity
    y4: u.Quantity
    y5: u.Quantity

    @classmethod
    def zeros(cls, shape=(), dtype=None) -> "JRState":
        z = jnp.zeros(shape, dtype=dtype)
        mv, mvs = u.Quantity(z, unit=u.mV), u.Quantity(z, unit=u.mV / u.second)
        return cls(mv, mv, mv, mvs, mvs, mvs)


STATE_NAMES = JRState._fields
STATE_UNITS = (u.mV, u.mV, u.mV, u.mV / u.second, u.mV / u.second, u.mV / u.second)


def pack(state: JRState):
    """The state as one array of shape (6, ...) in mV and mV/s (plain numbers; the units are those of STATE_UNITS).

    Integrators do their vector algebra (y + h·k) on this packed form: XLA then fuses a whole step into a few
    kernels, where six separate scalars would cost one kernel each. Packing and unpacking happen at trace time.
    """
    return jnp.stack([jnp.asarray(x.to_decimal(unit)) for x, unit in zip(state, STATE_UNITS)])


def unpack(y) -> JRState:
    """Inverse of :func:`pack`: a JRState of Quantities from an array of shape (6, ...) in mV and mV/s."""
    return JRState(*(u.Quantity(y[i], unit=unit) for i, unit in enumerate(STATE_UNITS)))


def sigmoid(v, params: JRParams):
    """Population firing rate S(v) = 2 e0 / (1 + exp(r (v0 − v))) in Hz for a potential ``v`` in mV."""
    return 2 * params.e0 / (1 + u.math.exp(params.r * (params.v0 - v)))


def firing_rates(state: JRState, params: JRParams, p, q=None):
    """The three firing rates (Hz) that drive the pyramidal, excitatory and inhibitory PSP kernels.

    ``p`` is the external pulse density onto the excitatory interneurons (Hz); ``q`` (Hz, optional) an extra pulse
    density onto the pyramidal kernel (the pyramidal network coupling, see :mod:`jr_jax.network`).
    """
    to_pyr = sigmoid(state.y1 - state.y2, params)
    if q is not None:
        to_pyr = to_pyr + q
    to_exc = p + params.C2 * sigmoid(params.C1 * state.y0, params)
    to_inh = params.C4 * sigmoid(params.C3 * state.y0, params)
    return to_pyr, to_exc, to_inh


def psp_acceleration(y, dy, rate, gain, k):
    """Second derivative of a PSP kernel (d/dt + k)² y = gain · k · rate."""
    return gain * k * rate - 2 * k * dy - k * k * y


def rhs(state: JRState, params: JRParams, p, q=None) -> JRState:
    """Time derivative of ``state`` for external input ``p`` (Hz) and optional pyramidal input ``q`` (Hz).
    Pure; works on any broadcastable shapes (a network is a state with a column axis)."""
    to_pyr, to_exc, to_inh = firing_rates(state, params, p, q)
    return JRState(
        state.y3,
        state.y4,
        state.y5,
        psp_acceleration(state.y0, state.y3, to_pyr, params.A, params.a),
        psp_acceleration(state.y1, state.y4, to_exc, params.A, params.a),
        psp_acceleration(state.y2, state.y5, to_inh, params.B, params.b),
    )


def eeg(state: JRState):
    """The EEG observable y1 − y2 (mV): net excitatory minus inhibitory PSP on the pyramidal cells."""
    return state.y1 - state.y2


def observable(state: JRState, name: str):
    """A named variable of the state (``"eeg"`` or ``"y0"`` … ``"y5"``)."""
    return eeg(state) if name == "eeg" else getattr(state, name)
