"""The model against the sanity limits of the Jansen–Rit reference summary, analytic results and an independent root solve."""

import brainunit as u
import jax
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import JRParams, analysis, drives

from . import reference as R

S0 = 5.0 / (1 + np.exp(0.56 * 6.0))  # S(0) in Hz with the default sigmoid


def _run(params, p, seconds, **kw):
    return jr.simulate(params, duration=seconds * u.second, drive=drives.constant(p * u.Hz),
                       record=("y0", "y1", "y2", "eeg"), **kw)


def test_rhs_units_and_value_against_reference():
    state = jr.JRState(0.1 * u.mV, 12.0 * u.mV, 9.0 * u.mV, 3.0 * u.mV / u.second, -2.0 * u.mV / u.second,
                       1.0 * u.mV / u.second)
    d = jr.rhs(state, JRParams(), 150 * u.Hz)
    assert u.get_dim(d.y0) == u.get_dim(u.mV / u.second)
    assert u.get_dim(d.y3) == u.get_dim(u.mV / u.second ** 2)
    got = [float(d[i].to_decimal(unit)) for i, unit in enumerate([u.mV / u.second] * 3 + [u.mV / u.second ** 2] * 3)]
    want = R.rhs(np.array([0.1, 12.0, 9.0, 3.0, -2.0, 1.0]), 150.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_C0_no_input_matches_analytic_relaxation():
    """The Jansen–Rit reference summary says 'C = 0: each population relaxes to zero'. With the equations as written, y1 and y2 do, but
    y0 relaxes to (A/a)·S(0) because S(0) = 2e0/(1 + e^{r v0}) ≠ 0: y0(t) = (A/a) S(0) (1 − e^{−at}(1 + at))."""
    res = _run(JRParams(C=0.0), 0.0, 0.2)
    t = np.asarray(res.time.to_decimal(u.second))
    y0 = np.asarray(res.y0.to_decimal(u.mV))
    analytic = 3.25 / 100 * S0 * (1 - np.exp(-100 * t) * (1 + 100 * t))
    np.testing.assert_allclose(y0, analytic, rtol=1e-4, atol=1e-9)
    assert np.max(np.abs(np.asarray(res.y1.mantissa))) == 0.0
    assert np.max(np.abs(np.asarray(res.y2.mantissa))) == 0.0
    assert y0[-1] == pytest.approx(3.25 / 100 * S0, rel=1e-4)   # 5.46 µV, not zero


def test_A0_no_excitation_rest_is_not_zero():
    """A = 0: y0, y1 → 0, but the inhibitory kernel still sees C4·S(0), so y2 → (B/b) C4 S(0) = 2.49 mV, EEG = −y2."""
    res = _run(JRParams(A=0 * u.mV), 220.0, 1.0, transient=2 * u.second)
    eeg = np.asarray(res.eeg.to_decimal(u.mV))
    want = -22.0 / 50.0 * 0.25 * 135 * S0
    np.testing.assert_allclose(eeg, want, rtol=1e-4)
    assert float(np.max(np.abs(np.asarray(res.y0.mantissa)))) == 0.0


@pytest.mark.parametrize("p", [120.0, 220.0, 320.0])
def test_B0_saturates_without_oscillation(p):
    """B = 0: excitation runs away only up to the sigmoid's saturation: a single high rest state, no oscillation,
    with y1 ≤ (A/a)(p + 2 e0 C2)."""
    res = _run(JRParams(B=0 * u.mV), p, 1.0, transient=3 * u.second)
    eeg = np.asarray(res.eeg.to_decimal(u.mV))
    ref = R.equilibria(p, B=0.0)
    assert len(ref) == 1
    np.testing.assert_allclose(eeg, ref[0][1] - ref[0][2], rtol=1e-4)
    assert eeg.max() <= 3.25 / 100 * (p + 5.0 * 108.0)
    assert np.ptp(eeg) < 1e-4


def test_linear_limit_is_critically_damped_not_oscillatory():
    """The Jansen–Rit reference summary: 'small y, sigmoid linearised: three decoupled damped oscillators with frequencies ~a, ~b'. With the
    populations decoupled (C = 0, and A a S'(0) small) each kernel (d/dt + k)² is critically damped: eigenvalues
    −a, −a, −a, −a, −b, −b, all real — relaxation with rates a and b, no oscillation."""
    p0 = JRParams(C=0.0, A=0.0 * u.mV)
    eig = analysis.eigenvalues(jr.JRState.zeros(), p0, 0 * u.Hz)
    np.testing.assert_allclose(np.sort(eig.real), [-100] * 4 + [-50] * 2, rtol=1e-3)
    assert np.max(np.abs(eig.imag)) < 1.0


@pytest.mark.parametrize("p", [0.0, 60.0, 100.0, 120.0, 220.0, 320.0])
def test_equilibria_match_independent_root_solve(p):
    eq = analysis.equilibria(JRParams(), p * u.Hz)
    ref = R.equilibria(p)
    assert len(eq.y0) == len(ref)
    for name, i in (("y0", 0), ("y1", 1), ("y2", 2)):
        np.testing.assert_allclose(np.asarray(getattr(eq, name).to_decimal(u.mV)), ref[:, i], rtol=2e-4, atol=1e-6)


def test_hopf_between_89_and_90_hz():
    """The upper rest state loses stability between p = 89 and 90 Hz (linearisation of the reference equations)."""
    def max_re(p):
        eq = analysis.equilibria(JRParams(), p * u.Hz)
        top = jax.tree.map(lambda q: q[-1], eq, is_leaf=lambda x: isinstance(x, u.Quantity))
        return analysis.eigenvalues(top, JRParams(), p * u.Hz).real.max()

    def ref_max_re(p):
        y = R.equilibria(p)[-1]
        J = np.zeros((6, 6))
        for k in range(6):
            h = np.zeros(6)
            h[k] = 1e-6 * max(1.0, abs(y[k]))
            J[:, k] = (R.rhs(y + h, p) - R.rhs(y - h, p)) / (2 * h[k])
        return np.linalg.eigvals(J).real.max()

    for p in (85.0, 95.0):
        assert max_re(p) == pytest.approx(ref_max_re(p), abs=0.05)
    assert ref_max_re(89.0) < 0 < ref_max_re(90.0)
    assert max_re(89.0) < 0 < max_re(90.0)
