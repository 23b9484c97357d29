"""Fitting: gradients against finite differences, recovery of known parameters, Laplace errors, resume, bad input."""

import json

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import data, drives
from jr_jax import fitting as F
from jr_jax.parametrisation import Parametrisation
from jr_jax.store import stored_spec

TRUTH = jr.JRParams(A=3.6 * u.mV, B=25.0 * u.mV, a=90.0 * u.Hz, b=55.0 * u.Hz)
TRANSIENT = 0.5 * u.second
ERP_DRIVE = drives.constant(60.0 * u.Hz) + drives.pulse(TRANSIENT + 0.05 * u.second, 200.0 * u.Hz, 5.0 * u.ms)


def erp_of(params, n=150, fs=500.0, dtype=None):
    """A synthetic ERP target (0.3 s at 500 Hz) simulated from ``params``."""
    dummy = data.recording(np.arange(float(n)), fs * u.Hz, u.mV)
    x = np.asarray(F.erp_target(dummy, ERP_DRIVE, transient=TRANSIENT, dtype=dtype).simulate(params), np.float64)
    return data.recording(x, fs * u.Hz, u.mV)


# -- the built-in losses ------------------------------------------------------------------------------------------

def test_erp_samples_match_simulate():
    """Sample k of the ERP model is simulate()'s EEG at t = transient + k/fs (record k-1 of a run with every=4)."""
    rec = erp_of(TRUTH)
    sim = jr.simulate(TRUTH, duration=0.3 * u.second, drive=ERP_DRIVE, transient=TRANSIENT, record=jr.Record(every=4))
    np.testing.assert_array_equal(rec.values[1:], np.asarray(sim.eeg.mantissa)[:-1])


def test_erp_nuisance_scale_and_baseline_are_least_squares():
    """A target = 7·EEG − 3 (arbitrary units) is fitted exactly at the truth, with scale 7 and baseline −3."""
    rec = erp_of(TRUTH)
    scaled = data.recording(7.0 * rec.values - 3.0, rec.sampling_rate)
    tgt = F.erp_target(scaled, ERP_DRIVE, transient=TRANSIENT)
    assert tgt.scale and tgt.baseline
    assert float(tgt(TRUTH)) < 1e-10
    nu = tgt.nuisance(TRUTH)
    assert abs(nu["scale"] - 7.0) < 1e-4 and abs(nu["baseline"] + 3.0) < 1e-3
    # a target in µV is compared with the model converted to µV
    in_uv = data.recording(rec.values * 1e3, rec.sampling_rate, u.uvolt)
    assert float(F.erp_target(in_uv, ERP_DRIVE, transient=TRANSIENT)(TRUTH)) < 1e-10


def _central_difference(f, x, h):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _theta_loss(target, start=jr.JRParams()):
    par = Parametrisation(start, F.DEFAULT_FREE, None)
    return lambda th: target(par.params(th))


def _spectrum_target(psd_params, drive, **kw):
    """A spectrum target computed by the model itself from ``psd_params`` with the fit's own keys."""
    settings = dict(duration=2.0 * u.second, realisations=2, key=jax.random.key(7), dt=1.0 * u.ms,
                    transient=TRANSIENT, segment=1.0 * u.second, **kw)
    f = np.arange(1.0, 251.0)
    full = F.spectrum_target(data.spectrum(f, np.ones_like(f)), drive, **{**settings, "band": (1 * u.Hz, 249 * u.Hz)})
    psd = np.asarray(jax.jit(full.psd)(psd_params), np.float64)
    return F.spectrum_target(data.spectrum(full.freqs, psd, u.mV ** 2 / u.Hz), drive, **settings)


NOISE = drives.white_noise(60.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5)


@pytest.mark.parametrize("kind", ["erp", "psd"])
def test_gradient_matches_finite_differences(kind):
    """d loss / d θ by AD against central differences with h = 1e-6, float64 (the difference falls as h² from
    h = 1e-4 down to ~1e-9 at h = 1e-6, so the bound below is the finite difference's own error)."""
    with jax.enable_x64(True):
        if kind == "erp":
            tgt = F.erp_target(erp_of(TRUTH, dtype=jnp.float64), ERP_DRIVE, transient=TRANSIENT, dtype=jnp.float64)
        else:
            tgt = _spectrum_target(TRUTH, NOISE, dtype=jnp.float64)
        loss = _theta_loss(tgt)
        th = jnp.array([0.05, -0.1, 0.08, -0.03])
        g = np.asarray(jax.grad(loss)(th))
        fd = _central_difference(lambda x: float(loss(jnp.asarray(x))), np.asarray(th), 1e-6)
    rel = np.abs(g - fd) / np.abs(fd).max()
    assert rel.max() < 1e-6, (g, fd)


def test_spectrum_of_white_noise_filter_matches_welch_of_simulate():
    """The target's PSD of one realisation equals scipy's Welch PSD of simulate()'s window-mean EEG with the same
    key, divided by the boxcar response."""
    signal = pytest.importorskip("scipy.signal")
    settings = dict(duration=2.0 * u.second, realisations=1, key=jax.random.key(3), dt=1.0 * u.ms,
                    transient=TRANSIENT, segment=1.0 * u.second)
    f = np.arange(1.0, 251.0)
    tgt = F.spectrum_target(data.spectrum(f, np.ones_like(f)), NOISE, band=(1 * u.Hz, 100 * u.Hz), **settings)
    psd = np.asarray(tgt.psd(TRUTH), np.float64)
    sim = jr.simulate(TRUTH, duration=2 * u.second, dt=1 * u.ms, drive=NOISE, key=tgt.keys[0], transient=TRANSIENT,
                      record=jr.Record(every=2, reduce="mean"))
    fw, pw = signal.welch(np.asarray(sim.eeg.mantissa, np.float64), fs=500.0, nperseg=500)
    m = np.sinc(fw * 2e-3) ** 2 / np.sinc(fw * 1e-3) ** 2      # |H|² of a 2-sample mean at 1 ms
    sel = (fw >= 1) & (fw <= 100)
    np.testing.assert_allclose(psd, (pw / np.where(m > 0, m, 1))[sel], rtol=2e-3)


# -- recovery -----------------------------------------------------------------------------------------------------
# The targets are noise-free simulations with the fit's own integrator, so the loss is 0 at the truth and the only
# limit on recovery is float32: at the stopping loss L ≤ atol = 1e-10 the distance to the optimum in the unconstrained
# (log) space is about sqrt(2 L / λ_min), with λ_min ≈ 0.5 the smallest Hessian eigenvalue measured at the truth for
# these targets: ~2e-5. We allow 1e-3 relative (a 50x margin).

def test_erp_recovery_from_default_start():
    tgt = F.erp_target(erp_of(TRUTH), ERP_DRIVE, transient=TRANSIENT)
    res = F.fit(tgt, steps=300)
    assert res.converged, res.reason
    for name in F.DEFAULT_FREE:
        got, want = (float(getattr(p, name).mantissa) for p in (res.params, TRUTH))
        assert abs(got / want - 1) < 1e-3, (name, got, want)
    assert res.identifiable and res.hessian_eigenvalues[0] > 0
    assert np.all(np.diff(np.minimum.accumulate(res.history[:, 0])) <= 0)
    assert res.grad_norm.shape == res.history.shape


def test_erp_recovery_multistart_from_far_start():
    """From A, B, a, b each 20–30 % off, four starts at once: the best recovers the truth."""
    far = jr.JRParams(A=2.8 * u.mV, B=31.0 * u.mV, a=115.0 * u.Hz, b=44.0 * u.Hz)
    tgt = F.erp_target(erp_of(TRUTH), ERP_DRIVE, transient=TRANSIENT)
    res = F.fit(tgt, start=far, starts=4, spread=1.3, key=jax.random.key(1), steps=300)
    assert res.starts["initial"].shape == (4, 4) and res.history.shape[1] == 4
    np.testing.assert_allclose(res.starts["initial"][0], [2.8, 31.0, 115.0, 44.0], rtol=1e-6)
    for name in F.DEFAULT_FREE:
        got, want = (float(getattr(p, name).mantissa) for p in (res.params, TRUTH))
        assert abs(got / want - 1) < 1e-3, (name, got, want)
    spread = res.spread()
    assert 1 <= spread["n"] <= 4
    lo, hi = spread["A"]
    assert float(lo.mantissa) <= float(res.params.A.mantissa) <= float(hi.mantissa)


# -- Laplace ------------------------------------------------------------------------------------------------------

def test_laplace_is_exact_for_a_gaussian_likelihood():
    """NLL = ½((A − 3 mV)/0.2 mV)² + ½((b − 40 Hz)/5 Hz)²: the fit gives A = 3 mV ± 0.2 mV and b = 40 Hz ± 5 Hz
    (for a quadratic NLL the Laplace approximation is exact; the log transform enters only through the delta method,
    which is exact at first order at the optimum)."""
    def nll(p):
        return 0.5 * ((p.A.to_decimal(u.mV) - 3.0) / 0.2) ** 2 + 0.5 * ((p.b.to_decimal(u.Hz) - 40.0) / 5.0) ** 2

    res = F.fit(nll, free=("A", "b"), steps=400, learning_rate=0.1)
    assert abs(float(res.params.A.mantissa) - 3.0) < 3e-3 and abs(float(res.params.b.mantissa) - 40.0) < 0.05
    assert abs(float(res.stderr["A"].to_decimal(u.mV)) / 0.2 - 1) < 0.01
    assert abs(float(res.stderr["b"].to_decimal(u.Hz)) / 5.0 - 1) < 0.01
    assert abs(res.correlation[0, 1]) < 1e-3


def test_laplace_hessian_matches_finite_differences():
    with jax.enable_x64(True):
        tgt = F.erp_target(erp_of(TRUTH, dtype=jnp.float64), ERP_DRIVE, transient=TRANSIENT, dtype=jnp.float64)
        loss = _theta_loss(tgt, start=TRUTH)
        h = np.asarray(jax.hessian(loss)(jnp.zeros(4)))
        grad = jax.jit(jax.grad(loss))
        fd = np.stack([_central_difference(lambda x: float(grad(jnp.asarray(x))[i]), np.zeros(4), 1e-6)
                       for i in range(4)])
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6 * np.abs(h).max())
    assert np.linalg.eigvalsh(h)[0] > 0.1     # identifiable, the λ_min used in the recovery tolerance above


def test_not_identifiable_warns():
    """A loss that depends on A·B only leaves A/B undetermined: a warning, NaN errors, identifiable False."""
    def loss(p):
        return (p.A.to_decimal(u.mV) * p.B.to_decimal(u.mV) - 80.0) ** 2

    with pytest.warns(F.NotIdentifiableWarning, match="not identifiable"):
        res = F.fit(loss, free="A,B", steps=200, learning_rate=0.05)
    assert res.identifiable is False and np.isnan(float(res.stderr["A"].mantissa))
    assert abs(float(res.params.A.mantissa) * float(res.params.B.mantissa) - 80.0) < 0.1


# -- bounds, resume, bad input ------------------------------------------------------------------------------------

def test_bounds_keep_parameters_inside():
    def loss(p):   # unconstrained optimum at A = 10 mV, outside the bounds
        return (p.A.to_decimal(u.mV) - 10.0) ** 2

    res = F.fit(loss, free=("A",), bounds={"A": (2.0 * u.mV, 4.0 * u.mV)}, steps=200, laplace=False)
    a = float(res.params.A.mantissa)
    assert 3.9 < a < 4.0


def _quadratic(p):
    return ((p.A.to_decimal(u.mV) - 3.0) ** 2 + (p.a.to_decimal(u.Hz) / 100.0 - 0.9) ** 2) * 10.0


def test_interrupted_fit_resumes_to_the_same_result(tmp_path):
    full = F.fit(_quadratic, free=("A", "a"), steps=60, patience=1000, out_dir=tmp_path / "full", laplace=False)

    def stop(step, losses):
        if step == 27:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        F.fit(_quadratic, free=("A", "a"), steps=60, patience=1000, out_dir=tmp_path / "cut", save_every=10,
              callback=stop, laplace=False)
    listed = json.loads((tmp_path / "cut" / "manifest.json").read_text())["fit_state"]["file"]
    assert int(np.load(tmp_path / "cut" / listed)["step"]) == 20
    resumed = F.fit(_quadratic, free=("A", "a"), steps=60, patience=1000, out_dir=tmp_path / "cut", laplace=False)
    np.testing.assert_array_equal(resumed.history, full.history)
    assert float(resumed.params.A.mantissa) == float(full.params.A.mantissa)
    with pytest.raises(F.FitSpecError, match="steps"):
        F.fit(_quadratic, free=("A", "a"), steps=80, out_dir=tmp_path / "cut")
    assert stored_spec(tmp_path / "cut")["steps"] == 60


def test_bad_inputs_are_named():
    rec = erp_of(TRUTH)
    with pytest.raises(ValueError, match="whole number of steps"):
        F.erp_target(data.recording(rec.values, 300 * u.Hz, u.mV), ERP_DRIVE)
    with pytest.raises(ValueError, match="at least 8 samples"):
        F.erp_target(data.recording(rec.values[:5], 500 * u.Hz, u.mV), ERP_DRIVE)
    with pytest.raises(ValueError, match="NaN"):
        data.recording(np.r_[rec.values[:10], np.nan], 500 * u.Hz)
    with pytest.raises(ValueError, match="deterministic"):
        F.erp_target(rec, NOISE)
    with pytest.raises(ValueError, match="shorter than one Welch segment"):
        F.spectrum_target(rec, NOISE, key=jax.random.key(0))          # 0.3 s of data, 2 s segments
    with pytest.raises(ValueError, match="cannot resolve"):
        F.spectrum_target(data.recording(np.random.default_rng(0).normal(size=2000), 50 * u.Hz), NOISE,
                          key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown: \\['Q'\\]"):
        F.fit(_quadratic, free=("A", "Q"))
    with pytest.raises(ValueError, match="bounds for A .* exclude the start value 3.25 mV"):
        F.fit(_quadratic, free=("A",), bounds={"A": (4.0 * u.mV, 5.0 * u.mV)})
    with pytest.raises(jr.UnitError, match="bounds\\['A'\\]"):
        F.fit(_quadratic, free=("A",), bounds={"A": (1.0 * u.Hz, 5.0 * u.Hz)})
    with pytest.raises(ValueError, match="not free parameters"):
        F.fit(_quadratic, free=("A",), bounds={"B": (1.0 * u.mV, 50.0 * u.mV)})
    with pytest.raises(ValueError, match="optimizer must be one of \\('adam', 'lbfgs'\\).*'sgd'"):
        F.fit(_quadratic, free=("A",), optimizer="sgd")


FOCUS_TRUTH = jr.JRParams(A=3.0 * u.mV, B=24.0 * u.mV, a=90.0 * u.Hz, b=55.0 * u.Hz)
FOCUS_NOISE = drives.white_noise(500.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5)


def test_spectrum_recovery_of_A_B_a_b_from_default_and_multistart():
    """All four of A, B, a, b from a noise-driven spectrum (1–100 Hz, same keys as the fit, so the loss is 0 at the
    truth). p = 500 Hz lies above the upper Hopf point of both the truth (399.3 Hz) and the defaults (315.7 Hz) and
    above every fold, so the only attractor is a damped ~11 Hz focus. L-BFGS stops once the loss is below
    atol = 1e-10; with λ_min of the Hessian at the optimum (measured 0.27) that bounds the log-parameter error by
    √(2·1e-10 / λ_min) ≈ 3e-5, asserted as rtol 1e-4 for both starts of one fit: the defaults and a random one."""
    from jr_jax import analysis
    assert [b.kind for b in analysis.bifurcations(FOCUS_TRUTH, p_range=(300 * u.Hz, 700 * u.Hz))] == ["hopf"]
    tgt = _spectrum_target(FOCUS_TRUTH, FOCUS_NOISE, scale=False, band=(1 * u.Hz, 100 * u.Hz))
    truth = [3.0, 24.0, 90.0, 55.0]
    res = F.fit(tgt, optimizer="lbfgs", steps=60, starts=2, spread=1.2, key=jax.random.key(2))
    np.testing.assert_allclose(res.starts["initial"][0], [3.25, 22.0, 100.0, 50.0])    # start 0: the defaults
    assert not np.allclose(res.starts["initial"][1], res.starts["initial"][0], rtol=0.02)
    assert res.converged and res.loss < 1e-10
    assert res.hessian_eigenvalues.min() > 0.1 and res.identifiable
    for i in range(2):
        np.testing.assert_allclose(res.starts["final"][i], truth, rtol=1e-4)


def test_checkpointed_gradient_memory_grows_only_with_records_and_blocks():
    """XLA's temporary memory for the gradient of a 2560- and a 40960-step run (EEG kept every 4 steps): with
    checkpointing the growth is at most that of the recorded EEG (4 bytes per record) plus one state per block of
    CHECKPOINT_BLOCK_STEPS steps (6 floats + a flag), with 50 % slack; without it, the gradient stores every step
    (≥ 20x more growth)."""
    from jr_jax.loop import CHECKPOINT_BLOCK_STEPS

    drive = drives.white_noise(120.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5)
    par = Parametrisation(jr.JRParams(), ("A",), None)

    def temp(n, checkpoint):
        def loss(th):
            tr = jr.trace(par.params(th), duration=n * 0.5 * u.ms, drive=drive, key=jax.random.key(0),
                          record=jr.Record(every=4, reduce="mean"), checkpoint=checkpoint)
            return tr.eeg.mantissa.var()
        return jax.jit(jax.grad(loss)).lower(jnp.zeros(1)).compile().memory_analysis().temp_size_in_bytes

    n0, n1 = 2560, 40960
    grow_ck = temp(n1, True) - temp(n0, True)
    grow_plain = temp(n1, False) - temp(n0, False)
    bound = (n1 - n0) / 4 * 4 + (n1 - n0) / CHECKPOINT_BLOCK_STEPS * (6 * 4 + 4)
    assert grow_ck <= 1.5 * bound, (grow_ck, bound)
    assert grow_plain >= 20 * grow_ck, (grow_plain, grow_ck)
