"""Continuation in p, Hopf and fold points against an independent computation, regime labels."""

import brainunit as u
import jax
import numpy as np
import pytest
from scipy.optimize import brentq, fsolve

import jr_jax as jr
from jr_jax import analysis, monitors

from . import reference as R

P = dict(R.DEFAULTS)


def _reduced(y0, p):
    """Independent scalar reduction: g(y0, p) = y0 − (A/a) S(y1 − y2) at the rest state with pyramidal potential y0."""
    A, B, a, b, C = P["A"], P["B"], P["a"], P["b"], P["C"]
    y1 = A / a * (p + 0.8 * C * R.sig(C * y0))
    y2 = B / b * 0.25 * C * R.sig(0.25 * C * y0)
    return y0 - A / a * R.sig(y1 - y2)


def _ref_fold(y0_guess, p_guess):
    h = 1e-7

    def eqs(z):
        y0, p = z
        return [_reduced(y0, p), (_reduced(y0 + h, p) - _reduced(y0 - h, p)) / (2 * h)]

    y0, p = fsolve(eqs, [y0_guess, p_guess], xtol=1e-13)
    return p


def _ref_jacobian(y, p):
    J = np.zeros((6, 6))
    for k in range(6):
        h = np.zeros(6)
        h[k] = 1e-6 * max(1.0, abs(y[k]))
        J[:, k] = (R.rhs(y + h, p) - R.rhs(y - h, p)) / (2 * h[k])
    return J


def _ref_pair(p, branch):
    """Real part and |Im| of the rightmost complex eigenvalue pair at the rest state on ``branch`` (−1: upper)."""
    lam = np.linalg.eigvals(_ref_jacobian(R.equilibria(p)[branch], p))
    lam = lam[np.abs(lam.imag) > 1e-6]
    k = np.argmax(lam.real)
    return lam[k].real, abs(lam[k].imag)


@pytest.fixture(scope="module")
def points():
    with jax.enable_x64(True):
        return analysis.bifurcations(jr.JRParams(), (0 * u.Hz, 400 * u.Hz))


def test_bifurcation_kinds_in_0_to_400_hz(points):
    assert [b.kind for b in points] == ["hopf", "fold", "hopf"]


def test_fold_against_independent_reduced_solve(points):
    fold = next(b for b in points if b.kind == "fold")
    p_ref = _ref_fold(0.02, 113.0)
    assert float(fold.p.to_decimal(u.Hz)) == pytest.approx(p_ref, abs=1e-4)
    # and the count of rest states changes there (6-D root solve)
    assert len(R.equilibria(p_ref - 1.0)) == 3 and len(R.equilibria(p_ref + 1.0)) == 1


@pytest.mark.parametrize("index, bracket", [(0, (85.0, 95.0)), (2, (300.0, 330.0))])
def test_hopf_against_independent_linearisation(points, index, bracket):
    hopf = points[index]
    p_ref = brentq(lambda p: _ref_pair(p, -1)[0], *bracket, xtol=1e-6)
    assert float(hopf.p.to_decimal(u.Hz)) == pytest.approx(p_ref, abs=2e-3)
    f_ref = _ref_pair(p_ref, -1)[1] / (2 * np.pi)
    assert float(hopf.frequency.to_decimal(u.Hz)) == pytest.approx(f_ref, rel=1e-4)


def test_equilibrium_curve_stability_matches_simulation():
    """Where the curve says the only rest state is stable, a simulation from nearby settles there."""
    curve = analysis.equilibrium_curve(jr.JRParams(), 1000)
    p = np.asarray(curve.p.to_decimal(u.Hz))
    k = np.argmin(np.abs(p - 50.0))
    assert curve.stable[k]
    res = jr.simulate(jr.JRParams(), duration=0.5 * u.second, transient=3 * u.second,
                      drive=jr.drives.constant(float(p[k]) * u.Hz))
    assert float(res.eeg[-1].to_decimal(u.mV)) == pytest.approx(float(curve.eeg[k].to_decimal(u.mV)), abs=1e-3)


def test_bad_p_range():
    with pytest.raises(ValueError, match="low < high"):
        analysis.bifurcations(jr.JRParams(), (300 * u.Hz, 100 * u.Hz))
    with pytest.raises(jr.UnitError):
        analysis.bifurcations(jr.JRParams(), (0 * u.mV, 100 * u.Hz))


def _features(drive, params=None, seconds=6.0, key=0):
    res = jr.simulate(params or jr.JRParams(), duration=seconds * u.second, drive=drive, key=jax.random.key(key),
                      transient=1 * u.second, record=jr.Record(("eeg",), every=4, reduce="mean"))
    return monitors.from_trace(res.eeg, res.sampling_rate)


def test_labels_of_known_settings():
    from jr_jax.regimes import presets

    reg = presets()
    cases = {"rest": _features(jr.drives.constant(50 * u.Hz)),
             "alpha": _features(jr.drives.constant(220 * u.Hz)),
             "spike_wave": _features(reg["spike_wave"].drive, reg["spike_wave"].params)}
    for expected, f in cases.items():
        assert analysis.label_regimes(f).item() == expected, (expected, {k: f[k] for k in ("std", "peak_to_peak",
                                                                                          "dominant_frequency")})


def test_label_rules_on_synthetic_features():
    def feats(std, ptp, f, alpha, peak):
        return {"std": np.array([std]) * u.mV, "peak_to_peak": np.array([ptp]) * u.mV,
                "dominant_frequency": np.array([f]) * u.Hz, "alpha_share": np.array([alpha]),
                "peak_share": np.array([peak]), "diverged": np.array([False])}

    assert analysis.label_regimes(feats(0.1, 0.3, 10, 0.9, 0.9))[0] == "rest"
    assert analysis.label_regimes(feats(1.0, 3.0, 10, 0.9, 0.9))[0] == "alpha"
    assert analysis.label_regimes(feats(8.0, 35.0, 3.5, 0.1, 0.6))[0] == "spike_wave"
    assert analysis.label_regimes(feats(8.0, 35.0, 6.5, 0.1, 0.6))[0] == "spike_like"
    assert analysis.label_regimes(feats(8.0, 35.0, 3.5, 0.1, 0.2))[0] == "irregular"


def test_deterministic_limit_cycles_are_never_irregular():
    """The slow spike-like cycles at p = 120 and 130 Hz (2.4 and 3.2 Hz, ≈10 mV, perfectly periodic) are labelled
    spike_like, the 10.9 Hz cycle at 220 Hz alpha."""
    for p, expected in ((120, "spike_like"), (130, "spike_like"), (220, "alpha")):
        f = _features(jr.drives.constant(p * u.Hz), seconds=8.0)
        freqs = np.fft.rfftfreq(1000, 1 / 500)[:f["psd"].shape[-1]]
        assert analysis.periodicity(freqs, f["psd"], f["dominant_frequency"].to_decimal(u.Hz)) > 0.98
        assert analysis.label_regimes(f).item() == expected, p


def test_noise_driven_broadband_runs_stay_irregular():
    from jr_jax.regimes import presets

    reg = presets()
    for name in ("irregular", "alpha"):        # the tutorial's noisy settings: broadband, far from periodic
        f = _features(reg[name].drive, reg[name].params, seconds=8.0)
        freqs = np.fft.rfftfreq(1000, 1 / 500)[:f["psd"].shape[-1]]
        assert analysis.periodicity(freqs, f["psd"], f["dominant_frequency"].to_decimal(u.Hz)) < 0.3, name
        assert analysis.label_regimes(f).item() == "irregular", name


@pytest.mark.parametrize("c, expected", [(68, {"irregular"}), (128, {"alpha"}), (135, {"alpha"}),
                                         (270, {"spike_like"}), (675, {"spike_like", "spike_wave"}),
                                         (1350, {"irregular"})])
def test_labels_follow_jansen_rit_1995_fig3(c, expected):
    """Jansen & Rit (1995), Fig. 3, uniform 120–320 Hz input: C = 68 and 1350 noise-like, 128 and 135 alpha,
    270 and 675 spike-like (slow, large, regular)."""
    f = _features(jr.drives.uniform(120 * u.Hz, 320 * u.Hz), jr.JRParams(C=float(c)), seconds=8.0)
    assert analysis.label_regimes(f).item() in expected, {k: float(u.get_mantissa(f[k])) for k in
                                                          ("std", "peak_to_peak", "dominant_frequency")}


def test_periodic_label_for_a_cycle_outside_the_named_bands():
    fs, t = 500.0, np.arange(8000) / 500.0
    f = monitors.from_trace(u.Quantity(np.sin(2 * np.pi * 20.0 * t), unit=u.mV), fs * u.Hz)
    assert analysis.label_regimes(f).item() == "periodic"
    f = monitors.from_trace(u.Quantity(np.sin(2 * np.pi * 3.3 * t) ** 15, unit=u.mV), fs * u.Hz)
    assert analysis.label_regimes(f).item() == "spike_like"
    rng = np.random.default_rng(0)
    f = monitors.from_trace(u.Quantity(rng.standard_normal(t.size), unit=u.mV), fs * u.Hz)
    assert analysis.label_regimes(f).item() == "irregular"
