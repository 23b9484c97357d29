"""Convergence orders of every integrator, deterministic (against a tight DOP853 reference on independent
equations) and strong (on a shared Brownian path, against a fine-step solution on the same path)."""

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import drives, solvers
from jr_jax.params import canonical

from . import reference as R

T_END = 0.2


def _slopes(dts, errs):
    return np.diff(np.log(errs)) / np.diff(np.log(dts))


@pytest.mark.parametrize("method, order, dt_max", [("euler", 1, 0.1e-3), ("heun", 2, 1e-3), ("rk4", 4, 0.5e-3),
                                                   ("strang", 2, 1e-3), (solvers.Kutta38(), 4, 0.5e-3)])
def test_deterministic_order(method, order, dt_max, x64):
    """Error at t = 0.2 s with a time-dependent drive p(t) = 220 + 50 sin(2π·5 t) Hz (exercises the drive at
    the integrator's stages), dt = dt_max·(1, 1/2, 1/4, 1/8) (Euler is asymptotic only below 0.1 ms). Kutta's 3/8 rule
    (stages at 1/3 and 2/3) is passed as a Solver object, as a user's own solver would be."""
    drive = drives.sinusoid(220 * u.Hz, 50 * u.Hz, 5 * u.Hz)
    t, y = R.solve(T_END, 1e-3, p_of_t=lambda t: 220 + 50 * np.sin(2 * np.pi * 5 * t))
    ref = y[:, -1]
    dts = dt_max * np.array([1.0, 0.5, 0.25, 0.125])
    errs = []
    for dt in dts:
        res = jr.simulate(jr.JRParams(), duration=T_END * u.second, dt=dt * u.second, drive=drive, method=method,
                          dtype="float64", record=())
        fs = res.final_state
        got = np.array([float(fs[i].mantissa) for i in range(6)])
        scale = np.array([1, 1, 1, 100, 100, 100.0])   # mV and mV/s on comparable footing
        errs.append(np.max(np.abs(got - ref) / scale))
    slopes = _slopes(dts, errs)
    # the observed order on the two finest halvings (asymptotic regime)
    assert np.all(np.abs(slopes[1:] - order) < 0.35), (method, errs, slopes)


def _explicit_noise(dw_coarse, sigma, dt):
    return solvers.ExplicitNoise(sigma * u.Quantity(dw_coarse, unit=u.second ** 0.5) / dt)


def _strang_noise(dw_fine, dtb, m, a):
    """Stochastic convolutions of each half step, built from the fine Brownian increments (midpoint sums)."""
    half = m // 2
    s = (np.arange(half) + 0.5) * dtb                # midpoints inside a half step
    h = half * dtb
    wy = jnp.asarray((h - s) * np.exp(-a * (h - s)))
    wv = jnp.asarray((1 - a * (h - s)) * np.exp(-a * (h - s)))
    w = dw_fine.reshape(-1, 2, half)
    jy, jv = w @ wy, w @ wv                         # (n_steps, 2)
    zero = u.Quantity(jnp.zeros(jy.shape[0]), unit=u.Hz)
    s15, s05 = u.second ** 1.5, u.second ** 0.5
    return solvers.SplitNoise(zero, u.Quantity(jy[:, 0], unit=s15), u.Quantity(jv[:, 0], unit=s05),
                                  u.Quantity(jy[:, 1], unit=s15), u.Quantity(jv[:, 1], unit=s05))


def _integrate(method, dw_fine, dtb, m, params, drive):
    """Integrate with step m·dtb on the path whose fine increments are dw_fine; returns y1 at the end (mV)."""
    step = solvers.solver(method).step
    n = dw_fine.shape[0] // m
    dt = m * dtb * u.second
    sigma = drive.sigma
    if method == "strang":
        noise = _strang_noise(dw_fine, dtb, m, 100.0)
    else:
        noise = _explicit_noise(dw_fine.reshape(n, m).sum(axis=1), sigma, dt)

    def body(state, xs):
        i, nz = xs
        return step(state, i * dt, dt, params, drive, nz), None

    state, _ = jax.lax.scan(body, jr.JRState.zeros(dtype=jnp.float64), (jnp.arange(n, dtype=jnp.float64), noise))
    return state.y1.mantissa


@pytest.mark.parametrize("method", ["euler", "heun", "rk4", "strang"])
def test_strong_order_on_shared_brownian_path(method, x64):
    """Root-mean-square error of y1 at t = 0.1 s over 32 paths, dt = 1/2, 1/4, 1/8 ms, against stochastic Heun at
    dt/64 on the same paths. Additive noise: strong order 1 for every method."""
    params = canonical(jr.JRParams(), jnp.float64)
    drive = drives.white_noise(220 * u.Hz, 300 * u.Hz * u.second ** 0.5)
    dtb = 0.125e-3 / 16
    n_fine = int(round(0.1 / dtb))
    dw = jax.random.normal(jax.random.key(7), (32, n_fine), dtype=jnp.float64) * np.sqrt(dtb)
    ref = jax.jit(jax.vmap(lambda w: _integrate("heun", w, dtb, 1, params, drive)))(dw)
    ms = [64, 32, 16]
    errs = []
    for m in ms:
        got = jax.jit(jax.vmap(lambda w: _integrate(method, w, dtb, m, params, drive)))(dw)
        errs.append(float(jnp.sqrt(jnp.mean((got - ref) ** 2))))
    slopes = _slopes(np.array(ms) * dtb, errs)
    # asymptotic (finest) observed order ~1; the splitting's O(dt²) deterministic error still shows at 0.5 ms
    assert 0.75 < slopes[-1] < 1.35 and np.all(slopes > 0.75), (method, errs, slopes)


def test_strang_is_exact_for_the_linear_part():
    """With e0 = 0 the sigmoid vanishes and the model is three free PSP kernels: y(t) = e^{−kt}((1 + kt) y(0) + t y'(0)).
    The splitting solves that part exactly, so even dt = 5 ms matches to float32 precision (RK4 at 5 ms does not)."""
    init = jr.JRState(1.0 * u.mV, -2.0 * u.mV, 3.0 * u.mV, 50.0 * u.mV / u.second, 0.0 * u.mV / u.second,
                      -80.0 * u.mV / u.second)
    t = np.arange(1, 21) * 5e-3

    def exact(y, v, k):
        return np.exp(-k * t) * ((1 + k * t) * y + t * v)

    want = np.stack([exact(1.0, 50.0, 100.0), exact(-2.0, 0.0, 100.0), exact(3.0, -80.0, 50.0)])
    errs = {}
    for method in ("strang", "rk4"):
        res = jr.simulate(jr.JRParams(e0=0.0 * u.Hz), duration=0.1 * u.second, dt=5 * u.ms,
                          drive=drives.constant(0 * u.Hz), method=method, initial_state=init, record=("y0", "y1", "y2"))
        got = np.stack([np.asarray(getattr(res, n).to_decimal(u.mV)) for n in ("y0", "y1", "y2")])
        errs[method] = np.max(np.abs(got - want))
    assert errs["strang"] < 1e-6
    assert errs["rk4"] > 100 * errs["strang"]


def test_convolution_covariance_matches_quadrature():
    """The Cholesky factor of the half-step noise reproduces the covariance integrals (numerical quadrature)."""
    for k, h in ((100.0, 0.25e-3), (50.0, 5e-3), (100.0, 20e-3)):
        l11, l21, l22 = solvers.convolution_cholesky(k * u.Hz, h * u.second)
        L = np.array([[float(l11.mantissa), 0], [float(l21.mantissa), float(l22.mantissa)]])
        s = np.linspace(0, h, 200001)
        f = np.stack([s * np.exp(-k * s), (1 - k * s) * np.exp(-k * s)])
        cov = np.array([[np.trapezoid(f[i] * f[j], s) for j in range(2)] for i in range(2)])
        np.testing.assert_allclose(L @ L.T, cov, rtol=2e-4)
