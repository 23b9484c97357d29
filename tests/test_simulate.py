import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import JRParams, Record, SimulationError, UnitError, drives

NOISY = drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5)


def _eeg(res):
    return np.asarray(res.eeg.to_decimal(u.mV))


def test_result_has_units_and_time_axis():
    res = jr.simulate(JRParams(), duration=0.1 * u.second, record=("eeg", "y0", "y3"))
    assert res.eeg.shape == (200,) and res.time.shape == (200,)
    assert float(res.time[0].to_decimal(u.ms)) == pytest.approx(0.5)
    assert float(res.time[-1].to_decimal(u.second)) == pytest.approx(0.1)
    assert u.get_dim(res.y3) == u.get_dim(u.mV / u.second) and u.get_dim(res.eeg) == u.get_dim(u.mV)
    with pytest.raises(AttributeError, match="'y1' was not recorded"):
        res.y1


def test_no_recompilation_for_new_parameters_or_key():
    compiled = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: compiled.append(event) if event.endswith("backend_compile_duration") else None)
    kw = dict(duration=0.0615 * u.second, drive=NOISY, record=("eeg",))      # a length no other test compiles
    jr.simulate(JRParams(), key=jax.random.key(0), **kw)
    assert compiled                                     # the listener sees compilations
    n = len(compiled)
    a = jr.simulate(JRParams(A=3.5 * u.mV, b=45 * u.Hz), key=jax.random.key(1), **kw)
    b = jr.simulate(JRParams(B=25 * u.mV), key=jax.random.key(2), drive=drives.white_noise(90 * u.Hz, 5 * u.Hz *
                    u.second ** 0.5), duration=0.0615 * u.second, record=("eeg",))
    assert len(compiled) == n
    assert not np.allclose(_eeg(a), _eeg(b))


def test_same_key_same_run_and_other_key_other_run():
    kw = dict(duration=0.2 * u.second, drive=NOISY)
    a = jr.simulate(JRParams(), key=jax.random.key(3), **kw)
    b = jr.simulate(JRParams(), key=jax.random.key(3), **kw)
    c = jr.simulate(JRParams(), key=jax.random.key(4), **kw)
    np.testing.assert_array_equal(_eeg(a), _eeg(b))
    assert np.max(np.abs(_eeg(a) - _eeg(c))) > 1e-3


@pytest.mark.parametrize("method", ["rk4", "strang"])
def test_chunking_and_transient_do_not_change_the_run(method):
    kw = dict(drive=NOISY, key=jax.random.key(5), method=method)
    whole = jr.simulate(JRParams(), duration=0.3 * u.second, **kw)
    chunked = jr.simulate(JRParams(), duration=0.3 * u.second, chunk_steps=70, progress=False, **kw)
    np.testing.assert_allclose(_eeg(chunked), _eeg(whole), rtol=1e-6, atol=1e-6)
    split = jr.simulate(JRParams(), duration=0.2 * u.second, transient=0.1 * u.second, **kw)
    np.testing.assert_allclose(_eeg(split), _eeg(whole)[200:], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(split.time.to_decimal(u.second)), np.asarray(whole.time.to_decimal(
        u.second))[200:], rtol=1e-6)


def test_record_subsampling_and_temporal_mean():
    full = jr.simulate(JRParams(), duration=0.2 * u.second, record=("eeg", "y0"))
    sub = jr.simulate(JRParams(), duration=0.2 * u.second, record=Record(("eeg",), every=8))
    avg = jr.simulate(JRParams(), duration=0.2 * u.second, record=Record(("eeg", "y0"), every=8, reduce="mean"))
    np.testing.assert_allclose(_eeg(sub), _eeg(full)[7::8], rtol=1e-6)
    np.testing.assert_allclose(_eeg(avg), _eeg(full).reshape(-1, 8).mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(avg.y0.mantissa), np.asarray(full.y0.mantissa).reshape(-1, 8).mean(1),
                               rtol=1e-5)
    t_full = np.asarray(full.time.to_decimal(u.second))
    np.testing.assert_allclose(np.asarray(avg.time.to_decimal(u.second)), t_full.reshape(-1, 8).mean(1), rtol=1e-6)


def test_nothing_recorded_keeps_only_the_final_state():
    res = jr.simulate(JRParams(), duration=1 * u.second, record=())
    assert res.variables == {} and res.time.shape == (0,)
    full = jr.simulate(JRParams(), duration=1 * u.second, record=("eeg",))
    assert float(jr.eeg(res.final_state).to_decimal(u.mV)) == pytest.approx(float(_eeg(full)[-1]), rel=1e-6)


def test_divergence_stops_with_a_clear_error():
    with pytest.raises(SimulationError, match=r"NaN/Inf between t = .* dt too large"):
        jr.simulate(JRParams(a=2000 * u.Hz), duration=0.5 * u.second, dt=2 * u.ms, method="euler")


def test_float64_on_request(x64):
    res = jr.simulate(JRParams(), duration=0.01 * u.second, dtype="float64")
    assert res.eeg.mantissa.dtype == jnp.float64


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(duration=1.0), UnitError, ["duration", "second"]),
    (dict(duration=1 * u.second, dt=0.5), UnitError, ["dt", "plain number 0.5"]),
    (dict(duration=1 * u.mV), UnitError, ["duration", "mV"]),
    (dict(duration=1.00025 * u.second), ValueError, ["whole number of steps"]),
    (dict(duration=1 * u.second, drive=NOISY), ValueError, ["key=jax.random.key"]),
    (dict(duration=1 * u.second, method="leapfrog"), ValueError, ["method must be one of", "leapfrog"]),
    (dict(duration=1 * u.second, record=("v",)), ValueError, ["Record.variables", "'v'"]),
    (dict(duration=1 * u.second, drive=220), TypeError, ["drive must be built with jr_jax.drives"]),
    (dict(duration=-1 * u.second), ValueError, ["duration must be positive"]),
])
def test_bad_arguments_are_clear_errors(kwargs, exc, words):
    with pytest.raises(exc) as err:
        jr.simulate(JRParams(), **kwargs)
    for w in words:
        assert w in str(err.value)


def test_gradient_flows_through_the_scan():
    """d(mean EEG)/dA by autodiff equals a central finite difference (float32, relative 2 %)."""
    def mean_eeg(A):
        res = jr.simulate(JRParams(A=A * u.mV), duration=0.1 * u.second, drive=drives.constant(150 * u.Hz),
                          check_finite=False)
        return jnp.mean(res.eeg.mantissa)

    g = jax.grad(mean_eeg)(3.25)
    h = 1e-2
    fd = (mean_eeg(3.25 + h) - mean_eeg(3.25 - h)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=2e-2)


def test_an_interrupted_run_resumes_and_a_finished_one_extends(tmp_path, monkeypatch):
    """out_dir: a run killed after its second chunk, run again, ends identical to an uninterrupted run; a longer
    duration extends a finished run; another specification is refused and leaves the directory as it was."""
    drive = drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5) + drives.pulse(0.6 * u.second, 100 * u.Hz)
    kw = dict(drive=drive, key=jax.random.key(4), transient=0.1 * u.second, chunk_steps=300)
    whole = jr.simulate(jr.JRParams(), duration=1.0 * u.second, **kw)

    class Dying:
        """A progress meter that stops the job at its second update (after the transient and one recorded chunk)."""
        calls = 0

        def update(self, n):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        jr.simulate(jr.JRParams(), duration=1.0 * u.second, out_dir=tmp_path, progress=Dying(), **kw)
    assert len(list(tmp_path.glob("records_*.npz"))) == 1          # transient chunk, then one recorded chunk
    resumed = jr.simulate(jr.JRParams(), duration=1.0 * u.second, out_dir=tmp_path, **kw)
    np.testing.assert_array_equal(np.asarray(resumed.eeg.mantissa), np.asarray(whole.eeg.mantissa))
    longer = jr.simulate(jr.JRParams(), duration=1.5 * u.second, **kw)
    extended = jr.simulate(jr.JRParams(), duration=1.5 * u.second, out_dir=tmp_path, **kw)
    np.testing.assert_array_equal(np.asarray(extended.eeg.mantissa), np.asarray(longer.eeg.mantissa))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    with pytest.raises(jr.RunSpecError, match="differs in \\['params'\\]"):
        jr.simulate(jr.JRParams(A=3.0 * u.mV), duration=1.5 * u.second, out_dir=tmp_path, **kw)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("method", ["rk4", "heun", "euler", "strang"])
def test_one_column_layout_gives_the_plain_loops_run(x64, method):
    """simulate() lays its loop out differently (parameters in the carry, the chunk's noise drawn at once, see
    jr_jax.loop.Column); trace() and the sweeps run the plain loop. Same steps, same numbers: in float64 the two
    agree to rounding, with a transient, a temporal mean and a drive whose mean and noise both act."""
    params = JRParams(A=3.4 * u.mV, b=48 * u.Hz)
    kw = dict(dt=0.5 * u.ms, drive=NOISY, method=method, key=jax.random.key(3), dtype="float64")
    res = jr.simulate(params, duration=0.4 * u.second, transient=0.05 * u.second,
                      record=Record(("eeg", "y0"), every=4, reduce="mean"), **kw)
    tr = jr.trace(params, duration=0.4 * u.second, transient=0.05 * u.second,
                  record=Record(("eeg", "y0"), every=4, reduce="mean"), **kw)
    for name in ("eeg", "y0"):
        a, b = np.asarray(getattr(res, name).mantissa), np.asarray(tr.variables[name].mantissa)
        assert np.abs(a).max() > 0.1
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(res.final_state.y1.mantissa), np.asarray(tr.final_state.y1.mantissa), rtol=1e-12)


@pytest.mark.parametrize("method", ["rk4", "strang", jr.solvers.Kutta38()])
def test_a_batch_of_sets_gives_each_sets_single_run(x64, method):
    """Parameters (and the drive's mean) with one value per set run as the loop's set axis: each set's records and
    final state are those of simulate() with that set alone and the same key (in float64, to rounding)."""
    A, b, mu = np.array([3.0, 3.25, 3.6, 4.1, 3.4]), np.array([40.0, 50.0, 55.0, 45.0, 60.0]), np.arange(5) * 20.0 + 90
    drive = drives.white_noise(mu * u.Hz, 30 * u.Hz * u.second ** 0.5)
    kw = dict(duration=0.3 * u.second, transient=0.05 * u.second, method=method, key=jax.random.key(5),
              dtype="float64", record=Record(("eeg", "y4"), every=2, reduce="mean"))
    res = jr.simulate(JRParams(A=A * u.mV, b=b * u.Hz), drive=drive, **kw)
    assert res.eeg.shape == (300, 5) and res.final_state.y0.shape == (5,) and res.time.shape == (300,)
    assert res.eeg.mantissa.dtype == np.float64          # the parts' threads keep the caller's 64-bit setting
    for i in range(5):
        one = jr.simulate(JRParams(A=A[i] * u.mV, b=b[i] * u.Hz),
                          drive=drives.white_noise(mu[i] * u.Hz, 30 * u.Hz * u.second ** 0.5), **kw)
        for name in ("eeg", "y4"):
            ref = np.asarray(getattr(one, name).mantissa)
            assert np.abs(ref).max() > 0.1
            np.testing.assert_allclose(np.asarray(getattr(res, name).mantissa)[:, i], ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(res.final_state.y1.mantissa)[i], float(one.final_state.y1.mantissa),
                                   rtol=1e-12)


def test_a_batch_split_over_cores_is_the_whole_batchs_run(monkeypatch):
    """On a CPU the sets are split into equal parts that run on separate threads (the last part padded); the
    split changes nothing, bit for bit."""
    params = JRParams(A=np.linspace(3.0, 4.0, 7) * u.mV, B=np.linspace(18.0, 26.0, 7) * u.mV)
    kw = dict(duration=0.2 * u.second, drive=NOISY, key=jax.random.key(1))
    runs = []
    for parts in (1, 2, 3):
        monkeypatch.setenv(jr.batches.PARTS_ENV, str(parts))
        runs.append(jr.simulate(params, **kw))
    for r in runs[1:]:
        np.testing.assert_array_equal(_eeg(r), _eeg(runs[0]))
        np.testing.assert_array_equal(np.asarray(r.final_state.y5.mantissa), np.asarray(runs[0].final_state.y5.mantissa))


def test_trace_with_a_set_axis_matches_simulate_and_vmap():
    """trace() takes the same batched parameters (records (n_records, n)); jax.vmap over the sets computes the same
    steps with the sets laid out first, so it agrees to float32 rounding over a short run."""
    A, B = np.linspace(3.0, 4.0, 6), np.linspace(18.0, 26.0, 6)
    tr = jr.trace(JRParams(A=jnp.asarray(A, jnp.float32) * u.mV, B=jnp.asarray(B, jnp.float32) * u.mV), drive=NOISY,
                  duration=0.2 * u.second, key=jax.random.key(2))
    sim = jr.simulate(JRParams(A=A * u.mV, B=B * u.mV), duration=0.2 * u.second, drive=NOISY, key=jax.random.key(2))
    np.testing.assert_array_equal(np.asarray(tr.eeg.mantissa), _eeg(sim))
    vm = jax.vmap(lambda a, b: jr.trace(JRParams(A=a * u.mV, B=b * u.mV), drive=NOISY, duration=0.2 * u.second,
                                        key=jax.random.key(2)).eeg.mantissa)(jnp.asarray(A, jnp.float32),
                                                                             jnp.asarray(B, jnp.float32))
    np.testing.assert_allclose(np.asarray(vm).T, _eeg(sim), rtol=0, atol=1e-3 * np.abs(_eeg(sim)).max())


def test_bad_batches_are_clear_errors():
    with pytest.raises(ValueError, match=r"same length; got params.A: 3, params.B: 4"):
        jr.simulate(JRParams(A=np.ones(3) * 3.25 * u.mV, B=np.ones(4) * 22 * u.mV), duration=0.01 * u.second)
    with pytest.raises(ValueError, match=r"params.A must be a scalar or a 1-D array .* shape \(2, 2\)"):
        jr.simulate(JRParams(A=np.ones((2, 2)) * 3.25 * u.mV), duration=0.01 * u.second)
    with pytest.raises(ValueError, match=r"initial_state.y0 must be a scalar or have one value per set \(3\); "
                                         r"got shape \(2,\)"):
        jr.simulate(JRParams(A=np.ones(3) * 3.25 * u.mV), duration=0.01 * u.second,
                    initial_state=jr.JRState(*(x * np.ones(2) for x in jr.JRState.zeros(()))))
    with pytest.raises(SimulationError, match=r"NaN/Inf in set\(s\) \[1\] between t"):
        jr.simulate(JRParams(a=np.array([100.0, 2000.0, 100.0]) * u.Hz), duration=0.5 * u.second, dt=2 * u.ms,
                    method="euler")


def test_a_drives_table_of_samples_is_not_a_batch():
    """drives.array holds samples along time: a run with it is one column whatever the table's length, and a batch
    of parameter sets shares the table (each set as its own run; also in trace and in a sweep with its own keys)."""
    table = drives.array(np.linspace(100.0, 300.0, 7) * u.Hz, 20 * u.ms) + NOISY
    kw = dict(duration=0.1 * u.second, drive=table, key=jax.random.key(4))
    one = jr.simulate(JRParams(), **kw)
    assert one.eeg.shape == (200,)
    A = np.array([3.0, 3.25, 3.5])
    batch = jr.simulate(JRParams(A=A * u.mV), **kw)
    assert batch.eeg.shape == (200, 3)
    for i in range(3):
        np.testing.assert_allclose(_eeg(batch)[:, i], _eeg(jr.simulate(JRParams(A=A[i] * u.mV), **kw)),
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jr.trace(JRParams(), duration=0.1 * u.second, drive=table,
                                                   key=jax.random.key(4)).eeg.mantissa), _eeg(one),
                               rtol=1e-5, atol=1e-5)
    res = jr.sweep(JRParams(A=A * u.mV), drive=table, duration=0.5 * u.second, transient=0 * u.second,
                   key=jax.random.key(4), keys="independent")
    assert res.features["mean"].shape == (3,)
    for i in range(3):      # set i of a sweep with its own keys: a single run with the key fold_in(key, i)
        single = jr.simulate(JRParams(A=A[i] * u.mV), duration=0.5 * u.second, drive=table,
                             key=jax.random.fold_in(jax.random.key(4), i))
        assert float(res.features["mean"].to_decimal(u.mV)[i]) == pytest.approx(float(np.mean(_eeg(single))),
                                                                              rel=2e-4, abs=2e-5)
