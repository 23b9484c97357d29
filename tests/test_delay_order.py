"""The order of the delayed read (jr_jax.history): RK4 with the cubic Hermite read converges at fourth order in a
delayed network, with the linear read at second, against an independent reference (tests/reference.py); the Hermite
read is exact for a cubic history, differentiable in the speed and carried over by a continued run, and a bad
``interpolation=`` is named."""

import dataclasses
import functools

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import connectome as C
from jr_jax import drives, history
from jr_jax import network as N
from jr_jax.model import STATE_UNITS, JRState
from tests import reference as R

# A 4-node network, afferent rule, G = 20: delays m_ij·τ0 with τ0 = π/3 ms (2.09–7.33 ms, never a whole number of
# steps), inputs 100–220 Hz plus a smooth rise 60·(1 − cos 2π·10 Hz·t), from the network's rest. From rest, with a
# smooth input, the history is smooth across t = 0 and so are the solution's breaking points (t = τ_ij); from a
# kinked start they fall inside steps and blur the asymptotic order of either read.
K4 = np.array([[0, 1.0, 0.5, 0.3], [0.8, 0, 0.6, 0], [0.3, 1.2, 0, 0.7], [0.5, 0, 0.9, 0]])
LAGS4 = np.array([[0, 2, 5, 3], [3, 0, 4, 0], [7, 2, 0, 6], [4, 0, 3, 0]])
TAU0 = np.pi / 3 * 1e-3
P4 = np.array([100.0, 150.0, 220.0, 180.0])
RISE, F_RISE, G4, T4 = 60.0, 10.0, 20.0, 0.05
T_CMP = np.arange(1, int(round(T4 / 2e-4)) + 1) * 2e-4        # compared every 0.2 ms (a multiple of every dt)


@functools.lru_cache(maxsize=1)
def reference():
    """(rest state (6, N), EEG (len(T_CMP), N)) of the problem above by the method of steps with DOP853 (float64)."""
    z0 = R.network_rest(K4, P4, G4)
    p_of_t = lambda t: P4[None] + RISE * (1 - np.cos(2 * np.pi * F_RISE * np.asarray(t)))[:, None]  # noqa: E731
    return z0, R.solve_delayed(K4, LAGS4, TAU0, p_of_t, G4, T_CMP, y_init=z0)


def error(interpolation: str, dt_s: float) -> float:
    """The largest EEG difference (mV) from the reference of RK4 at dt with this read (float64; call under x64)."""
    z0, ref = reference()
    net = N.network(C.Connectome(K4), coupling=G4, delays=LAGS4 * TAU0 * u.second, interpolation=interpolation)
    drive = drives.sinusoid((P4 + RISE) * u.Hz, RISE * u.Hz, F_RISE * u.Hz, -np.pi / 2)
    init = JRState(*(u.Quantity(z0[i], unit=unit) for i, unit in enumerate(STATE_UNITS)))
    res = jr.simulate(jr.JRParams(), duration=T4 * u.second, dt=dt_s * u.second, network=net, drive=drive,
                      initial_state=init, dtype=jnp.float64)
    stride = int(round(2e-4 / dt_s))
    return float(np.abs(np.asarray(res.eeg.mantissa)[stride - 1::stride] - ref).max())


def test_hermite_read_has_fourth_order_and_linear_second(x64):
    """Largest EEG error over 50 ms from dt = 0.1 to 0.05 ms, measured: Hermite 9.3e-11 → 5.8e-12 mV (order
    4.0), linear 1.3e-6 → 3.2e-7 mV (order 2.0)."""
    orders = {}
    for read in history.READS:
        e1, e2 = error(read, 1e-4), error(read, 5e-5)
        orders[read] = np.log2(e1 / e2)
    assert orders["hermite"] >= 3.5, orders
    assert 1.7 <= orders["linear"] <= 2.3, orders


def test_hermite_weights_read_a_cubic_history_exactly(x64):
    """Samples and slopes of a cubic in time at whole steps (and the stage's own at t + c·dt) give back the cubic at
    t + c·dt − τ for every stage and delays of 0, a fraction of a step (inside the current step), and several."""
    d = jnp.array([[0.0, 0.3, 0.7], [1.0, 1.45, 2.5], [3.0, 0.5, 2.99]])
    gk = jnp.array([[1.0, 2.0, 0.5], [0.3, 1.0, 1.5], [2.0, 0.7, 1.0]])
    dt, step = 1e-3, 10
    coef = np.array([[0.3, -1.2, 0.8, 2.0], [1.1, 0.4, -0.6, 0.2], [-0.5, 0.9, 0.3, -1.0]])   # per column j
    f = lambda t: sum(coef[:, k] * (t / 4e-3) ** k for k in range(4))                       # noqa: E731
    df = lambda t: sum(k * coef[:, k] * (t / 4e-3) ** (k - 1) / 4e-3 for k in range(1, 4))  # noqa: E731
    lo = jnp.floor(-d)
    for c in (0.0, 1 / 3, 0.5, 1.0):
        planes, own = history.hermite_weights(d, lo, c, gk, dt, jnp.float64)
        t_k = (step + np.asarray(lo)[None] + np.arange(3)[:, None, None]) * dt      # (3, N, N) sample times
        vals, slopes = f(t_k), df(t_k)                   # [k, i, j]: column j's cubic at plane k of pair (i, j)
        t_c = (step + c) * dt
        got = (np.sum(np.asarray(planes) * np.stack([vals, slopes], -1), axis=(0, 2, 3))
               + np.einsum("ijq,jq->i", np.asarray(own), np.stack([f(t_c), df(t_c)], -1)))
        t_read = (step + c - np.asarray(d)) * dt
        want = np.sum(np.asarray(gk) * f(t_read), axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"c = {c}")


def _loss_of(net, n_steps=200):
    drive = drives.constant(np.array([90.0, 120.0, 150.0, 180.0]) * u.Hz)
    tr = jr.trace(jr.JRParams(), duration=n_steps * 0.5 * u.ms, drive=drive, network=net, record=jr.Record(every=1),
                  dtype=jnp.float64)
    x = tr.eeg.to_decimal(u.mV)
    return jnp.mean((x - x.mean(axis=0)) ** 2)


def test_gradient_wrt_speed_through_the_hermite_read_matches_finite_differences(x64):
    """d loss / d speed by AD against central differences (h = 1e-5 relative, float64); the delays are fractional
    numbers of steps, so the speed acts through the Hermite weights."""
    con = C.example(4)
    net = N.network(con, coupling=8.0, speed=5 * u.meter / u.second, max_delay=40 * u.ms, interpolation="hermite")
    frac = (np.asarray(net.delays().to_decimal(u.second)) / 5e-4)[con.weights > 0] % 1
    assert np.all((frac > 0.01) & (frac < 0.99))

    def by_v(v):
        return _loss_of(dataclasses.replace(net, speed=u.Quantity(v, unit=u.meter / u.second)))

    g_ad = float(jax.grad(by_v)(jnp.float64(5.0)))
    h = 5e-5
    g_fd = (float(by_v(jnp.float64(5.0 + h))) - float(by_v(jnp.float64(5.0 - h)))) / (2 * h)
    assert abs(g_ad) > 1e-8
    assert abs(g_ad - g_fd) < 1e-5 * abs(g_fd), (g_ad, g_fd)


def test_a_hermite_run_continues_from_its_final_state_with_its_history():
    """The final state carries the rates and their derivatives (buffer steps, 2, N): two halves equal one run."""
    net = N.network(C.example(4), coupling=10.0, interpolation="hermite")
    drive = drives.constant(110 * u.Hz)
    whole = jr.simulate(jr.JRParams(), duration=0.2 * u.second, drive=drive, network=net)
    first = jr.simulate(jr.JRParams(), duration=0.1 * u.second, drive=drive, network=net)
    dt_s = float(first.dt.to_decimal(u.second))
    assert first.final_state.history.shape == net.history_shape(dt_s) == (net.buffer_steps(dt_s), 2, 4)
    second = jr.simulate(jr.JRParams(), duration=0.1 * u.second, drive=drive, network=net,
                         initial_state=first.final_state)
    np.testing.assert_allclose(np.concatenate([first.eeg.mantissa, second.eeg.mantissa]), whole.eeg.mantissa,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", ["cubic", "Hermite", None, 3, ("linear",)])
def test_a_bad_interpolation_is_named(bad):
    with pytest.raises(ValueError, match=r"interpolation must be one of \('linear', 'hermite'\).*got"):
        N.network(C.example(4), interpolation=bad)
