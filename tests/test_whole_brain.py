"""Whole-brain fitting at the sensors: recovery of hidden values on The Virtual Brain's 76-region connectome with its
65-sensor EEG lead field, gradients against central differences, the sensor-space targets and their bad inputs."""

import warnings

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import connectome, data, drives, leadfield, network, sensor_targets as st, whole_brain as wb
from jr_jax.uncertainty import NotIdentifiableWarning

TRANSIENT = 0.4      # s of rest before the epoch
STIM = "rV2"         # the stimulated region (right secondary visual cortex)
NEIGHBOUR = "rPFCDL"  # one of its strongest connections in the 76-region weights (weight 3, the largest)
TRUTH = {"G": 0.125, "A[rV2]": 3.45, "A[rPFCDL]": 3.1}


def _model(con, lf, coupling=0.1):
    net = network.network(con, coupling=coupling, lead_field=lf)
    drive = drives.constant(90 * u.Hz) + wb.stimulus(net, STIM, 300 * u.Hz, onset=(TRANSIENT + 0.02) * u.second)
    return wb.network_model(net, drive=drive, gain=1e-3)


@pytest.fixture(scope="module")
def recovery():
    """The issue's experiment: 300 ms at 1 kHz after a stimulus into rV2, hidden G and A in rV2 and a neighbour,
    sensor noise of 2 % of the signal's SD; a fit from the defaults (float64)."""
    with jax.enable_x64(True):
        con, lf = connectome.tvb(76), leadfield.tvb_eeg65()
        model = _model(con, lf)
        free, per = ("G",), {"A": [STIM, NEIGHBOUR]}
        par = model.parametrisation(free, per_region=per)
        truth = par.params(jnp.asarray([np.log(TRUTH["G"] / 0.1), np.log(3.45 / 3.25), np.log(3.1 / 3.25)]))
        clean = truth.predict(0.3 * u.second, sampling_rate=1000 * u.Hz, dt=1 * u.ms, transient=TRANSIENT * u.second)
        sd = 0.02 * float(np.std(clean.values))
        noisy = clean.values + sd * np.random.default_rng(7).standard_normal(clean.values.shape)
        rec = data.recording(noisy, 1000 * u.Hz, u.mV, channels=clean.channels)
        target = st.network_erp_target(rec, model, dt=1 * u.ms, transient=TRANSIENT * u.second)
        res = model.fit(target, free=free, per_region=per, optimizer="lbfgs", steps=60, rtol=1e-9, patience=5)
        pred = res.params.predict(0.3 * u.second, sampling_rate=1000 * u.Hz, dt=1 * u.ms,
                                  transient=TRANSIENT * u.second)
        return {"res": res, "target": target, "truth": truth, "truth_loss": float(target(truth)), "clean": clean,
                "sd": sd, "pred": pred}


def test_recovery_on_the_76_region_connectome_within_laplace_errors(recovery):
    res = recovery["res"]
    assert res.identifiable is True
    for name, true in TRUTH.items():
        est = float(np.asarray(u.get_mantissa(res.values[name])))
        se = float(np.asarray(u.get_mantissa(res.stderr[name])))
        assert 0 < se < 0.1 * true, (name, se)
        assert abs(est - true) < 3 * se, (name, est, true, se)
    # the noise floor: the fitted loss is that of the truth itself, within a few percent
    assert res.loss <= recovery["truth_loss"] * 1.001
    # the residual's variance is the added noise's (relative to the data's variance)
    rel_noise = recovery["sd"] ** 2 / float(np.var(recovery["target"].recording.values))
    assert res.loss == pytest.approx(rel_noise, rel=0.1)


def test_fitted_model_predicts_the_clean_response(recovery):
    pred, clean = recovery["pred"], recovery["clean"]
    assert pred.channels == clean.channels
    # the target profiles a baseline per channel: compare the responses about their means
    resid = (pred.values - pred.values.mean(0)) - (clean.values - clean.values.mean(0))
    assert np.abs(resid).max() < 0.01 * np.abs(clean.values - clean.values.mean(0)).max()


def test_a_gain_beside_a_profiled_scale_is_not_identifiable():
    """A lead-field gain and the target's profiled scale are the same factor: the Hessian is singular along the gain."""
    con = connectome.example(6)
    lf = leadfield.LeadField(_lead(6, 4), ("C3", "C4", "O1", "O2"), np.eye(4, 3) * 0.09, con.labels)
    model = _model_small(con, lf)
    rec = model.predict(0.1 * u.second, sampling_rate=500 * u.Hz, dt=1 * u.ms, transient=0.2 * u.second)
    target = st.network_erp_target(rec, model, dt=1 * u.ms, transient=0.2 * u.second, scale=True)
    with pytest.warns(NotIdentifiableWarning, match=r"θ\[gain\]"):
        res = model.fit(target, free=("gain", "G"), steps=1)
    assert res.identifiable is False


# -- gradients ----------------------------------------------------------------------------------------------------

def _lead(n_regions, n_sensors):
    return np.random.default_rng(3).normal(size=(n_sensors, n_regions))


def _model_small(con, lf, coupling=2.0):
    net = network.network(con, coupling=coupling, lead_field=lf, max_delay=80 * u.ms)
    drive = drives.constant(90 * u.Hz) + wb.stimulus(net, [0], 300 * u.Hz, onset=0.22 * u.second)
    return wb.network_model(net, drive=drive)


def test_gradient_matches_central_differences_through_delays_regions_and_gain(x64):
    con = connectome.example(6)
    lf = leadfield.LeadField(_lead(6, 3), ("Fz", "Cz", "Pz"), np.eye(3) * 0.09, con.labels)
    model = _model_small(con, lf)
    rec = model.predict(0.1 * u.second, sampling_rate=1000 * u.Hz, dt=0.5 * u.ms, transient=0.2 * u.second)
    y = rec.values * 1.1 + 0.05 * np.sin(np.arange(rec.values.shape[0]))[:, None]
    rec = data.recording(y, 1000 * u.Hz, u.mV, channels=rec.channels)
    target = st.network_erp_target(rec, model, dt=0.5 * u.ms, transient=0.2 * u.second)
    par = model.parametrisation(("G", "speed", "gain", "stimulus"), per_region={"A": [0, 2], "b": [1]})
    theta = jnp.asarray([0.1, -0.2, 0.05, 0.1, 0.03, -0.04, 0.02])
    f = jax.jit(lambda t: target(par.params(t)))
    g = np.asarray(jax.grad(lambda t: target(par.params(t)))(theta))
    eps = 1e-5
    fd = np.array([(f(theta.at[i].add(eps)) - f(theta.at[i].add(-eps))) / (2 * eps) for i in range(theta.size)])
    assert np.all(np.abs(g) > 1e-8), g
    np.testing.assert_allclose(g, fd, rtol=2e-5, atol=1e-10)


def test_parametrisation_sets_the_values_it_names(x64):
    con = connectome.example(4)
    lf = leadfield.LeadField(_lead(4, 2), ("A1", "A2"), np.eye(2, 3), con.labels)
    model = _model_small(con, lf)
    par = model.parametrisation(("G", "gain"), per_region={"A": [con.labels[1], 3]})
    assert par.names == ("G", "gain", f"A[{con.labels[1]}]", f"A[{con.labels[3]}]")
    m = par.params(jnp.log(jnp.asarray([2.0, 3.0, 1.5, 0.5])))
    assert float(m.network.coupling) == pytest.approx(4.0)
    assert float(m.gain) == pytest.approx(3.0)
    np.testing.assert_allclose(np.asarray(m.params.A.to_decimal(u.mV)), [3.25, 3.25 * 1.5, 3.25, 3.25 * 0.5])
    # the stimulus factor multiplies the pulse's peak (only the stimulated region has one)
    par2 = model.parametrisation(("stimulus",))
    m2 = par2.params(jnp.asarray([np.log(2.0)]))
    t = 0.22 + 7 * 0.005       # the pulse's peak
    np.testing.assert_allclose(np.asarray(m2.drive.mean(t * u.second).to_decimal(u.Hz)), [690, 90, 90, 90])


def test_priors_pull_a_weak_value_to_the_prior_mean(x64):
    """MAP: a prior with a tiny sd holds a value at its mean although the data prefer another."""
    con = connectome.example(4)
    lf = leadfield.LeadField(_lead(4, 3), ("Fz", "Cz", "Pz"), np.eye(3), con.labels)
    model = _model_small(con, lf)
    truth = model.parametrisation(("G",)).params(jnp.asarray([np.log(1.5)]))
    rec = truth.predict(0.1 * u.second, sampling_rate=500 * u.Hz, dt=1 * u.ms, transient=0.2 * u.second)
    target = st.network_erp_target(rec, model, dt=1 * u.ms, transient=0.2 * u.second)
    assert float(target(truth)) < 1e-12 < float(target(model))          # the data alone want G = 3
    held = model.fit(target, free=("G",), priors={"G": (2.0, 1e-3)}, noise=1.0 * u.mV, learning_rate=1e-4, steps=3)
    assert float(held.values["G"]) == pytest.approx(2.0, rel=2e-3)
    # a prior this tight dominates the posterior: the sd of log G is the prior's, so the error of G is 2.0 × 1e-3
    assert float(held.stderr["G"]) == pytest.approx(2.0e-3, rel=0.1)


def test_lesion_keeps_the_model_and_cuts_the_region():
    con = connectome.example(4)
    lf = leadfield.LeadField(_lead(4, 2), ("A1", "A2"), np.eye(2, 3), con.labels)
    model = _model_small(con, lf)
    cut = model.lesion(con.labels[0])
    w = np.asarray(cut.network.weights)
    assert np.all(w[0] == 0) and np.all(w[:, 0] == 0)
    np.testing.assert_array_equal(w[1:, 1:], np.asarray(model.network.weights)[1:, 1:])
    assert cut.params is model.params and cut.drive is model.drive


# -- bad input ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    con = connectome.example(4)
    lf = leadfield.LeadField(_lead(4, 3), ("Fz", "Cz", "Pz"), np.eye(3), con.labels)
    model = _model_small(con, lf)
    rec = data.recording(np.zeros((50, 3)) + np.arange(50)[:, None], 500 * u.Hz, u.mV, channels=("Fz", "Cz", "Pz"))
    return con, lf, model, rec


def test_channels_that_do_not_match_the_sensors_are_named(small):
    con, lf, model, rec = small
    bad = data.recording(rec.values, 500 * u.Hz, u.mV, channels=("Fz", "Cz", "Oz"))
    with pytest.raises(ValueError, match=r"missing from the recording: \['Pz'\].*not among the network's sensors: "
                                         r"\['Oz'\]"):
        st.network_erp_target(bad, model, dt=1 * u.ms, transient=0.2 * u.second)
    reordered = data.recording(rec.values, 500 * u.Hz, u.mV, channels=("Pz", "Fz", "Cz"))
    assert list(st.network_erp_target(reordered, model, dt=1 * u.ms).rows) == [2, 0, 1]


def test_a_stimulus_region_that_does_not_exist(small):
    con, lf, model, rec = small
    with pytest.raises(ValueError, match="'V9' is not a region of this network"):
        wb.stimulus(model.network, "V9", 300 * u.Hz, onset=0.1 * u.second)
    with pytest.raises(ValueError, match=r"indices in \[0, 4\)"):
        wb.stimulus(model.network, 7, 300 * u.Hz, onset=0.1 * u.second)


def test_per_region_values_of_the_wrong_length(small):
    con, lf, model, rec = small
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        wb.network_model(model.network, jr.JRParams(A=np.full(3, 3.25) * u.mV))
    with pytest.raises(ValueError, match="one per stimulated region"):
        wb.stimulus(model.network, [0, 1], np.array([1.0, 2.0, 3.0]) * u.Hz, onset=0.1 * u.second)


def test_priors_with_the_wrong_unit_or_without_noise(small):
    con, lf, model, rec = small
    target = st.network_erp_target(rec, model, dt=1 * u.ms, transient=0.2 * u.second)
    with pytest.raises(Exception, match=r"priors\['A'\] mean"):
        model.parametrisation(("A",), priors={"A": (3.0 * u.Hz, 0.2)}, prior_weight=1e-3)
    with pytest.raises(ValueError, match=r"priors\['A'\] sd"):
        model.parametrisation(("A",), priors={"A": (3.0 * u.mV, 0.2 * u.mV)}, prior_weight=1e-3)
    with pytest.raises(ValueError, match="priors need noise="):
        model.fit(target, free=("A",), priors={"A": (3.0 * u.mV, 0.2)})
    with pytest.raises(ValueError, match="not free"):
        model.parametrisation(("A",), priors={"B": (20.0 * u.mV, 0.2)}, prior_weight=1e-3)


def test_a_lead_field_with_nan_is_refused(small):
    con, lf, model, rec = small
    m = _lead(4, 3)
    m[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        leadfield.LeadField(m, ("Fz", "Cz", "Pz"), np.eye(3), con.labels)
    with pytest.raises(ValueError, match="lead_field must be finite"):
        network.network(con, lead_field=m)


def test_unknown_free_values_and_free_speed_without_lengths(small):
    con, lf, model, rec = small
    with pytest.raises(ValueError, match=r"unknown free values \['H'\]"):
        model.parametrisation(("H",))
    with pytest.raises(ValueError, match="free and per_region must name each value once"):
        model.parametrisation(("A",), per_region=("A",))
    net = network.network(con, delays=np.full((4, 4), 5.0) * u.ms, lead_field=lf)
    with pytest.raises(ValueError, match="speed is free but the network was built with delays="):
        wb.network_model(net).parametrisation(("speed",))


# -- resting state: spectra and functional connectivity ------------------------------------------------------------

def _resting_model(coupling=2.0):
    con = connectome.example(4)
    lf = leadfield.LeadField(_lead(4, 3), ("Fz", "Cz", "Pz"), np.eye(3), con.labels)
    net = network.network(con, coupling=coupling, lead_field=lf, max_delay=80 * u.ms)
    return wb.network_model(net, drive=drives.white_noise(120 * u.Hz, 20 * u.Hz * u.second ** 0.5))


def test_correlation_and_band_pass_against_numpy():
    x = np.random.default_rng(0).normal(size=(3, 500))
    np.testing.assert_allclose(np.asarray(st.correlation(jnp.asarray(x))), np.corrcoef(x), atol=1e-6)
    t = np.arange(1000) / 500.0
    sig = np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 60 * t)
    out = np.asarray(st.band_pass(jnp.asarray(sig), 500.0, (8.0, 12.0)))
    np.testing.assert_allclose(out, np.sin(2 * np.pi * 10 * t), atol=1e-5)


def test_network_spectrum_target_psd_is_scipys_welch_of_the_same_run(x64):
    from scipy.signal import welch as scipy_welch

    model = _resting_model()
    key = jax.random.key(3)
    data_rec = model.predict(4 * u.second, sampling_rate=500 * u.Hz, dt=1 * u.ms, transient=0.5 * u.second, key=key)
    target = st.network_spectrum_target(data_rec, model, duration=4 * u.second, realisations=1, key=key,
                                        segment=1 * u.second, decimate=2 * u.ms, dt=1 * u.ms,
                                        transient=0.5 * u.second)
    # the same run by hand: the target's one key, windows of 2 steps averaged, sensors = L · EEG
    res = jr.simulate(model.params, duration=(target.run.n_samples - 1) * 2 * u.ms, dt=1 * u.ms, drive=model.drive,
                      key=jax.random.split(key, 1)[0], network=model.network, transient=0.5 * u.second,
                      record=jr.Record(("eeg",), 2, "mean"))
    first = np.asarray((res.start_state.columns.y1 - res.start_state.columns.y2).to_decimal(u.mV))[None]
    eeg = np.concatenate([first, np.asarray(res.eeg.to_decimal(u.mV))])
    sens = eeg @ np.asarray(model.network.lead_field).T
    f, p = scipy_welch(sens.T, fs=500.0, window="hann", nperseg=500, noverlap=250, detrend="constant")
    h = np.asarray(jr.targets.boxcar_power(target.freqs, 2, 1e-3))
    want = p[:, np.rint(target.freqs).astype(int)] / h
    np.testing.assert_allclose(np.asarray(target.psd(model)), want, rtol=1e-6)
    assert float(target(model)) < 0.5      # its own spectrum, other noise: close


def test_fc_target_prefers_the_true_coupling_and_has_exact_gradients(x64):
    truth = _resting_model(coupling=4.0)
    res = jr.simulate(truth.params, duration=8 * u.second, dt=1 * u.ms, drive=truth.drive, key=jax.random.key(1),
                      network=truth.network, transient=0.5 * u.second, record=jr.Record(("eeg",), 4, "mean"))
    rec = data.recording(np.asarray(res.eeg.to_decimal(u.mV)), 250 * u.Hz, u.mV, channels=truth.labels)
    start = _resting_model(coupling=2.0)
    target = st.fc_target(rec, start, space="regions", band=(4 * u.Hz, 30 * u.Hz), duration=8 * u.second,
                          realisations=2, key=jax.random.key(5), decimate=4 * u.ms, dt=1 * u.ms,
                          transient=0.5 * u.second)
    assert target.n_points == 6
    par = start.parametrisation(("G",))
    f = jax.jit(lambda t: target(par.params(t)))
    losses = {g: float(f(jnp.asarray([np.log(g / 2.0)]))) for g in (0.5, 4.0, 16.0)}
    assert losses[4.0] < losses[0.5] and losses[4.0] < losses[16.0], losses
    th = jnp.asarray([0.3])
    g = float(jax.grad(lambda t: target(par.params(t)))(th)[0])
    fd = float((f(th + 1e-5) - f(th - 1e-5)) / 2e-5)
    assert g == pytest.approx(fd, rel=1e-4)


def test_resting_targets_refuse_bad_channels_and_a_missing_key():
    model = _resting_model()
    rec = data.recording(np.random.default_rng(0).normal(size=(2000, 3)), 250 * u.Hz, u.mV, channels=("Fz", "Cz", "Pz"))
    with pytest.raises(ValueError, match="pass key="):
        st.fc_target(rec, model, duration=2 * u.second, dt=1 * u.ms, decimate=4 * u.ms)
    with pytest.raises(ValueError, match="channels do not match the network's regions"):
        st.network_spectrum_target(rec, model, space="regions", key=jax.random.key(0), duration=2 * u.second)
    with pytest.raises(ValueError, match="space must be one of"):
        st.fc_target(rec, model, space="sources", key=jax.random.key(0))


def test_priors_need_a_weight_and_a_free_speed_needs_room_in_the_buffer(small):
    con, lf, model, rec = small
    with pytest.raises(ValueError, match="priors need prior_weight > 0"):
        model.parametrisation(("G",), priors={"G": (2.0, 0.5)})
    with pytest.raises(ValueError, match=r"bounds\['G'\] must be a pair"):
        model.parametrisation(("G",), bounds={"G": 5.0})
    tight = wb.network_model(network.network(con, lead_field=lf), drive=model.drive)   # max_delay = longest delay
    with pytest.raises(ValueError, match="speed is free, but the network's max_delay"):
        tight.parametrisation(("speed",))
    f = model.parametrisation(("speed",)).fields[0]          # max_delay 80 ms leaves room: bounded below
    lengths = np.asarray(con.lengths.to_decimal(u.meter))
    assert f.kind == "bounded" and f.lo == pytest.approx(lengths[np.asarray(con.weights) != 0].max() / 0.08)


def test_targets_need_the_right_drive(small):
    con, lf, model, rec = small
    with pytest.raises(ValueError, match="the drive has no stimulus"):
        st.network_erp_target(rec, model.network, drives.constant(90 * u.Hz), dt=1 * u.ms)
    with pytest.raises(ValueError, match="the drive must be random"):
        st.fc_target(rec, model, key=jax.random.key(0))
