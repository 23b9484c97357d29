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
