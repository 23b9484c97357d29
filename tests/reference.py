"""An independent reference: the Jansen–Rit equations written out in NumPy from the published form, sharing no code
with jr_jax. Used by the tests and by benchmarks/integrator_accuracy.py. Units: mV, s, Hz."""

from __future__ import annotations

import numpy as np

DEFAULTS = dict(A=3.25, B=22.0, a=100.0, b=50.0, C=135.0, e0=2.5, v0=6.0, r=0.56)


def sig(v, e0=2.5, v0=6.0, r=0.56):
    return 2 * e0 / (1 + np.exp(r * (v0 - v)))


def rhs(y, p, A=3.25, B=22.0, a=100.0, b=50.0, C=135.0, e0=2.5, v0=6.0, r=0.56):
    y0, y1, y2, y3, y4, y5 = y
    S = lambda v: sig(v, e0, v0, r)  # noqa: E731
    return np.array([y3, y4, y5,
                     A * a * S(y1 - y2) - 2 * a * y3 - a * a * y0,
                     A * a * (p + 0.8 * C * S(C * y0)) - 2 * a * y4 - a * a * y1,
                     B * b * 0.25 * C * S(0.25 * C * y0) - 2 * b * y5 - b * b * y2])


def equilibria(p, **kw):
    """All rest states by a 6-D root solve (scipy.optimize.fsolve) from many starts, deduplicated."""
    from scipy.optimize import fsolve

    prm = dict(DEFAULTS, **kw)
    roots = []
    for y0 in np.linspace(0.0, 2 * prm["e0"] * prm["A"] / prm["a"] + 0.01, 60):
        start = np.array([y0, prm["A"] / prm["a"] * (p + 0.8 * prm["C"] * sig(prm["C"] * y0)),
                          prm["B"] / prm["b"] * 0.25 * prm["C"] * sig(0.25 * prm["C"] * y0), 0, 0, 0])
        sol, info, ier, _ = fsolve(lambda y: rhs(y, p, **kw), start, full_output=True, xtol=1e-13)
        if ier == 1 and np.max(np.abs(rhs(sol, p, **kw))) < 1e-6:
            if not any(abs(sol[0] - r[0]) < 1e-7 for r in roots):
                roots.append(sol)
    return np.array(sorted(roots, key=lambda s: s[0]))


def solve(t_end, dt_out, p_of_t=lambda t: 220.0, y_init=None, rtol=1e-12, **kw):
    """Tight-tolerance solution (DOP853) sampled every dt_out; returns (t, y[6, n])."""
    from scipy.integrate import solve_ivp

    n = int(round(t_end / dt_out))
    t_eval = np.arange(n + 1) * dt_out
    sol = solve_ivp(lambda t, y: rhs(y, p_of_t(t), **kw), (0, t_end), np.zeros(6) if y_init is None else y_init,
                    method="DOP853", rtol=rtol, atol=rtol, t_eval=t_eval)
    return sol.t, sol.y


def _network_rhs(z, rate_in, p_in, prm):
    """d/dt of stacked column states z (..., 6, N) whose excitatory input is p_in (..., N) Hz."""
    A, B, a, b, C = (prm[k] for k in ("A", "B", "a", "b", "C"))
    S = lambda v: sig(v, prm["e0"], prm["v0"], prm["r"])  # noqa: E731
    d = np.empty_like(z)
    d[..., :3, :] = z[..., 3:, :]
    d[..., 3, :] = A * a * rate_in - 2 * a * z[..., 3, :] - a * a * z[..., 0, :]
    d[..., 4, :] = A * a * (p_in + 0.8 * C * S(C * z[..., 0, :])) - 2 * a * z[..., 4, :] - a * a * z[..., 1, :]
    d[..., 5, :] = B * b * 0.25 * C * S(0.25 * C * z[..., 0, :]) - 2 * b * z[..., 5, :] - b * b * z[..., 2, :]
    return d


def network_rest(weights, p, G, **kw):
    """A rest state (6, N) of the afferent-rule network with constant inputs p (N,) (delays play no part at rest):
    the potentials solve y0 = A/a S(y1 − y2), y1 = A/a [p + G K S(y1 − y2) + C2 S(C1 y0)], y2 = B/b C4 S(C3 y0)
    (fsolve, continued in G from the uncoupled columns' highest rests)."""
    from scipy.optimize import fsolve

    prm = dict(DEFAULTS, **kw)
    A, B, a, b, C = (prm[k] for k in ("A", "B", "a", "b", "C"))
    K, p = np.asarray(weights, float), np.asarray(p, float)
    n = K.shape[0]
    S = lambda v: sig(v, prm["e0"], prm["v0"], prm["r"])  # noqa: E731

    def f(x, g):
        y0, y1, y2 = x.reshape(3, n)
        v = S(y1 - y2)
        return x - np.concatenate([A / a * v, A / a * (p + g * K @ v + 0.8 * C * S(C * y0)),
                                   B / b * 0.25 * C * S(0.25 * C * y0)])

    x = np.stack([equilibria(float(q), **kw)[-1][:3] for q in p], axis=1).ravel()
    for g in np.linspace(0.0, G, 41)[1:]:           # continuation in G
        x = fsolve(f, x, args=(g,), xtol=1e-13)
        assert np.abs(f(x, g)).max() < 1e-9, (g, np.abs(f(x, g)).max())
    return np.concatenate([x.reshape(3, n), np.zeros((3, n))])


def solve_delayed(weights, lags, tau0, p_of_t, G, t_out, y_init=None, rtol=1e-13, **kw):
    """A delayed network, afferent rule: p_i(t) += G Σ_j K_ij S(y1_j − y2_j)(t − m_ij τ0), delays whole multiples
    m_ij ≥ 1 of τ0, from ``y_init`` (6, N) (default zeros) with the initial rates as the history before t = 0;
    ``p_of_t(t)`` gives the inputs (len(t), N) at the times t (s).

    Method of steps on segments of length τ0 with every earlier segment integrated again beside the current one, as
    copies of the state over the same local time s: a delayed rate is then a state of the same DOP853 solve, never
    an interpolant, and the breaking points of the delay equation (multiples of τ0) are segment ends. Returns the EEG
    (y1 − y2) at the times ``t_out`` (s, within [0, n τ0]), shape (len(t_out), N)."""
    from scipy.integrate import solve_ivp

    prm = dict(DEFAULTS, **kw)
    S = lambda v: sig(v, prm["e0"], prm["v0"], prm["r"])  # noqa: E731
    K, m = np.asarray(weights, float), np.asarray(lags, int)
    n = K.shape[0]
    assert np.all(m[K != 0] >= 1)
    y0 = np.zeros((6, n)) if y_init is None else np.asarray(y_init, float)
    rest = S(y0[1] - y0[2])[None, None, :]
    t_out = np.asarray(t_out, float)
    n_seg = max(1, int(np.ceil(t_out.max() / tau0 - 1e-9)))
    starts = [y0]
    cols = np.arange(n)[None, None, :]
    for k in range(n_seg):
        src = np.arange(k + 1)[:, None, None] - m[None]                 # (copies, N, N): the copy each pair reads

        def f(s, z, src=src, k=k):
            z = z.reshape(k + 1, 6, n)
            rate = S(z[:, 1] - z[:, 2])
            delayed = np.where(src < 0, rest, rate[np.clip(src, 0, None), cols])
            p_in = p_of_t(np.arange(k + 1) * tau0 + s) + G * np.sum(K * delayed, axis=-1)
            return _network_rhs(z, rate, p_in, prm).ravel()

        sol = solve_ivp(f, (0.0, tau0), np.stack(starts).ravel(), method="DOP853", rtol=rtol, atol=rtol,
                        dense_output=k == n_seg - 1)
        starts.append(sol.y[:, -1].reshape(k + 1, 6, n)[-1])
    seg = np.minimum((t_out / tau0 + 1e-9).astype(int), n_seg - 1)
    z = sol.sol(t_out - seg * tau0).reshape(n_seg, 6, n, len(t_out))
    return z[seg, 1, :, np.arange(len(t_out))] - z[seg, 2, :, np.arange(len(t_out))]
