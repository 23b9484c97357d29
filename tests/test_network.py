"""Networks: independence without coupling, the delay's lag, an independent reference, gradients, loaders, bad input."""

import dataclasses
import zipfile

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import connectome as C
from jr_jax import drives
from jr_jax import network as N

MS = u.ms


def _eeg(result):
    return np.asarray(result.eeg.mantissa, np.float64)


def test_zero_coupling_gives_independent_columns():
    """G = 0: column i is the single column with its own parameters and key split(key, N)[i] (float64; the
    vectorised and the scalar run may round differently, so equality to 1e-9 relative over 0.5 s of noisy alpha)."""
    with jax.enable_x64(True):
        con = C.example(6)
        net = N.network(con, coupling=0.0)
        params = jr.JRParams(A=jnp.linspace(3.0, 3.6, 6) * u.mV, b=jnp.linspace(45.0, 60.0, 6) * u.Hz)
        drive = drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5)
        key = jax.random.key(3)
        keys = jax.random.split(key, 6)
        for method in ("rk4", "strang"):
            res = jr.simulate(params, duration=0.5 * u.second, drive=drive, key=key, network=net, method=method,
                              dtype=jnp.float64)
            for i in range(6):
                one = jr.simulate(jr.JRParams(A=params.A[i], b=params.b[i]), duration=0.5 * u.second, drive=drive,
                                  key=keys[i], method=method, dtype=jnp.float64)
                np.testing.assert_allclose(_eeg(res)[:, i], _eeg(one), rtol=1e-9, atol=1e-9, err_msg=method)


# -- an independent reference: Heun with exact history samples, in NumPy ------------------------------------------

def _reference(K, tau_s, p, G, rule, F=None, beta=0.0, T=0.2, dt=2e-5):
    """The network written out from the equations (defaults A = 3.25 mV, B = 22 mV, a = 100 Hz, b = 50 Hz, C = 135),
    Heun's method at dt = 20 µs; the delays are multiples of dt, so delayed rates are stored samples (the stage at
    t + dt reads step n + 1 − k, or the stage's own state when k = 0). History before t = 0: the initial rate."""
    e0, v0, r, c = 2.5, 6.0, 0.56, 135.0
    A, B, a, b = 3.25, 22.0, 100.0, 50.0
    S = lambda v: 2 * e0 / (1 + np.exp(r * (v0 - v)))  # noqa: E731
    n = K.shape[0]
    k = np.rint(tau_s / dt).astype(int)
    assert np.allclose(k * dt, tau_s)
    steps = int(round(T / dt))
    pre = (lambda y: S(y[0])) if rule == "pyramidal" else (lambda y: S(y[1] - y[2]))
    y = np.zeros((6, n))
    hist = np.zeros((steps + 1, n))
    hist[0] = pre(y)
    cols = np.arange(n)[None, :]

    def f(y, m):
        idx = m - k
        delayed = np.where(idx < 0, hist[0][cols], hist[np.clip(idx, 0, steps), cols])
        delayed = np.where(k == 0, pre(y)[cols], delayed)
        coupling = G * np.sum(K * delayed, axis=1)
        p_in = p + (coupling if rule == "afferent" else 0.0)
        q = coupling if rule == "pyramidal" else 0.0
        if F is not None:
            p_in = p_in + beta * F @ S(y[1] - y[2])
        d = np.empty_like(y)
        d[:3] = y[3:]
        d[3] = A * a * (S(y[1] - y[2]) + q) - 2 * a * y[3] - a * a * y[0]
        d[4] = A * a * (p_in + 0.8 * c * S(c * y[0])) - 2 * a * y[4] - a * a * y[1]
        d[5] = B * b * 0.25 * c * S(0.25 * c * y[0]) - 2 * b * y[5] - b * b * y[2]
        return d

    out = np.zeros((steps, n))
    for m in range(steps):
        k1 = f(y, m)
        k2 = f(y + dt * k1, m + 1)
        y = y + dt / 2 * (k1 + k2)
        hist[m + 1] = pre(y)
        out[m] = y[1] - y[2]
    return out


K3 = np.array([[0.0, 1.0, 0.5], [0.8, 0.0, 0.0], [0.3, 1.2, 0.0]])
TAU3 = np.array([[0.0, 5e-3, 12.24e-3], [7.52e-3, 0.0, 0.0], [3.1e-3, 9.98e-3, 0.0]])   # 12.24 ms = 61.2 steps of 0.2 ms
P3 = np.array([100.0, 150.0, 220.0])


@pytest.mark.parametrize("rule,G,beta", [("afferent", 20.0, 0.0), ("afferent", 20.0, 5.0), ("pyramidal", 30.0, 0.0)])
def test_three_columns_match_an_independent_reference(rule, G, beta):
    """Three columns with integer and fractional delays (in steps of jr_jax's dt), the field ψ on or off, both
    rules, against the NumPy reference above. Both discretise the same delay equations, so their difference must
    shrink with dt: at dt = 0.1 ms it is below 2e-4 mV (measured ≤ 6e-5) and at least 3× smaller than at 0.4 ms
    (measured 4.5–6×), while the coupling itself moves the EEG by more than 10 mV."""
    with jax.enable_x64(True):
        con = C.Connectome(K3, None, (), u.Quantity(np.array([[0, 0, 0], [10, 0, 0], [0, 25, 0.0]]), unit=u.mmeter))
        F = N.field_kernel(con, 20 * u.mmeter) if beta else None
        ref = _reference(K3, TAU3, P3, G, rule, F, beta)
        errs, effect = [], None
        for dt in (0.4e-3, 0.1e-3):
            runs = []
            for g in (G, 0.0):
                net = N.network(con, coupling=g, delays=TAU3 * u.second, rule=rule, field=F, field_gain=beta)
                runs.append(_eeg(jr.simulate(jr.JRParams(), duration=0.2 * u.second, dt=dt * u.second, network=net,
                                             drive=drives.constant(P3 * u.Hz), dtype=jnp.float64)))
            stride = int(round(dt / 2e-5))
            errs.append(np.abs(runs[0] - ref[stride - 1::stride]).max())
            effect = np.abs(runs[0] - runs[1]).max()
    assert effect > 10.0
    assert errs[1] < 2e-4
    assert errs[1] < errs[0] / 3


def test_a_solver_with_stages_at_thirds_runs_a_delayed_network():
    """Kutta's 3/8 rule reads the delayed rates at t + dt/3 and t + 2dt/3 (the network takes the stage times from the
    solver): against the same NumPy reference it converges as RK4 does, with fractional delays and the field on."""
    with jax.enable_x64(True):
        con = C.Connectome(K3, None, (), u.Quantity(np.array([[0, 0, 0], [10, 0, 0], [0, 25, 0.0]]), unit=u.mmeter))
        F = N.field_kernel(con, 20 * u.mmeter)
        ref = _reference(K3, TAU3, P3, 20.0, "afferent", F, 5.0)
        net = N.network(con, coupling=20.0, delays=TAU3 * u.second, field=F, field_gain=5.0)
        errs = {}
        for method in (jr.solvers.Kutta38(), "rk4"):
            for dt in (0.4e-3, 0.1e-3):
                x = _eeg(jr.simulate(jr.JRParams(), duration=0.2 * u.second, dt=dt * u.second, network=net,
                                     drive=drives.constant(P3 * u.Hz), dtype=jnp.float64, method=method))
                stride = int(round(dt / 2e-5))
                errs[str(method), dt] = np.abs(x - ref[stride - 1::stride]).max()
    k38 = str(jr.solvers.Kutta38())
    assert errs[k38, 0.1e-3] < 2e-4 and errs[k38, 0.1e-3] < errs[k38, 0.4e-3] / 3, errs
    assert errs[k38, 0.1e-3] == pytest.approx(errs["rk4", 0.1e-3], rel=0.5), errs


# -- the lag of a delayed interaction ------------------------------------------------------------------------------

def _two_column_response(tau_ms, dt_ms=0.5):
    """Column 0 drives column 1 only; both rest at p = 60 Hz; a sharp pulse (peak 3.5 ms after its onset) hits
    column 0 at t = 1.1 s (after a 1 s transient that settles everything). Returns (time (s), column 1's EEG minus its rest)."""
    con = C.Connectome(np.array([[0.0, 0.0], [1.0, 0.0]]))
    net = N.network(con, coupling=5.0, delays=np.full((2, 2), tau_ms * 1e-3) * u.second)
    drive = drives.constant(60 * u.Hz) + drives.pulse(1.1 * u.second, np.array([500.0, 0.0]) * u.Hz, 0.5 * MS)
    res = jr.simulate(jr.JRParams(), duration=0.3 * u.second, dt=dt_ms * MS, drive=drive, network=net,
                      transient=1.0 * u.second, dtype=jnp.float64)
    x = _eeg(res)[:, 1]
    return np.asarray(res.time.mantissa), x - x[0]


def test_delay_arrives_with_the_right_lag():
    """Column 1 stays at rest until the pulse's onset + τ, for an integer (20 ms = 40 steps) and a fractional
    (20.25 ms = 40.5 steps) delay. A delay 4 ms longer (8 steps) shifts column 1's response by exactly 8 samples; one
    4.25 ms longer moves the response's peak by 4.25 ms (to 0.01 ms, parabolic peak interpolation)."""
    with jax.enable_x64(True):
        t, base = _two_column_response(20.0)
        _, shifted = _two_column_response(24.0)
        _, frac = _two_column_response(20.25)
        _, frac_shift = _two_column_response(24.5)
    onset = 1.1
    for x, tau in ((base, 20e-3), (frac, 20.25e-3)):
        before = t < onset + tau - 1e-9
        assert np.abs(x[before]).max() < 1e-12
        assert np.abs(x[(t > onset + tau) & (t < onset + tau + 1.5e-3)]).max() > 1e-9    # 1000x the rest's noise
    np.testing.assert_allclose(shifted[8:], base[:-8], atol=1e-9 * np.abs(base).max())

    def peak_time(x):
        i = int(np.argmax(np.abs(x)))
        y0, y1, y2 = np.abs(x[i - 1:i + 2])
        return t[i] + 0.5e-3 * 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)

    assert abs(peak_time(shifted) - peak_time(base) - 4e-3) < 1e-8
    assert abs(peak_time(frac_shift) - peak_time(frac) - 4.25e-3) < 1e-5
    assert abs(peak_time(frac) - peak_time(base) - 0.25e-3) < 1e-5


# -- gradients, vmap, continuation ---------------------------------------------------------------------------------

def _loss_of(net, n_steps=400, dtype=None):
    drive = drives.constant(np.array([90.0, 120.0, 150.0, 180.0]) * u.Hz)
    tr = jr.trace(jr.JRParams(), duration=n_steps * 0.5 * u.ms, drive=drive, network=net, record=jr.Record(every=4),
                  dtype=dtype)
    x = tr.eeg.to_decimal(u.mV)
    return jnp.mean((x - x.mean(axis=0)) ** 2)


def test_gradients_wrt_coupling_and_speed_match_finite_differences():
    """d loss / dG and d loss / d speed by AD against central differences (h = 1e-5 relative, float64). The delays
    (tract length / speed, in steps) are fractional, so the speed acts only through the interpolation weights."""
    with jax.enable_x64(True):
        con = C.example(4)
        net = N.network(con, coupling=8.0, speed=5 * u.meter / u.second, max_delay=40 * MS)
        steps = np.asarray(net.delays().to_decimal(u.second)) / 5e-4
        frac = steps[con.weights > 0] % 1
        assert np.all((frac > 0.01) & (frac < 0.99))

        def by_g(g):
            return _loss_of(dataclasses.replace(net, coupling=g), dtype=jnp.float64)

        def by_v(v):
            return _loss_of(dataclasses.replace(net, speed=u.Quantity(v, unit=u.meter / u.second)), dtype=jnp.float64)

        for f, x0 in ((by_g, 8.0), (by_v, 5.0)):
            g_ad = float(jax.grad(f)(jnp.float64(x0)))
            h = 1e-5 * x0
            g_fd = (float(f(jnp.float64(x0 + h))) - float(f(jnp.float64(x0 - h)))) / (2 * h)
            assert abs(g_ad) > 1e-8
            assert abs(g_ad - g_fd) < 1e-5 * abs(g_fd)


def test_the_read_skips_absent_pairs_and_pairs_all_keeps_every_weight_differentiable():
    """On a sparse connectome the delayed read visits the connected pairs only (pairs="connected", the default):
    the same result as visiting every pair (both reads, float64), a zero gradient for a weight that is absent, and with
    pairs="all" that weight's gradient matches central differences. Weights set where the connectome had none are
    refused rather than ignored."""
    with jax.enable_x64(True):
        k4 = np.array([[0.0, 1.0, 0.5, 0.0], [0.8, 0.0, 0.0, 0.6], [0.3, 1.2, 0.0, 0.0], [0.0, 0.0, 0.9, 0.0]])
        lengths = np.array([[0, 9, 14, 6], [11, 0, 12, 8], [7, 13, 0, 10], [5, 9, 12, 0.0]]) * u.mmeter
        con = C.Connectome(k4, lengths)
        absent = (1, 2)
        for read in ("linear", "hermite"):
            nets = [N.network(con, coupling=15.0, max_delay=20 * MS, interpolation=read, pairs=p)
                    for p in ("connected", "all")]
            assert nets[0].senders == ((1, 2), (0, 3), (0, 1), (2,)) and nets[1].senders is None
            runs = [float(_loss_of(n, dtype=jnp.float64)) for n in nets]
            assert abs(runs[0] - runs[1]) < 1e-12 * abs(runs[1])

        def by_w(net, x):
            return _loss_of(dataclasses.replace(net, weights=net.weights.at[absent].set(x)), dtype=jnp.float64)

        sparse, dense = (N.network(con, coupling=15.0, max_delay=20 * MS, pairs=p) for p in ("connected", "all"))
        assert float(jax.grad(lambda x: by_w(sparse, x))(0.0)) == 0.0
        g_ad = float(jax.grad(lambda x: by_w(dense, x))(0.0))
        h = 1e-6
        g_fd = (float(by_w(dense, h)) - float(by_w(dense, -h))) / (2 * h)
        assert abs(g_ad) > 1e-6 and abs(g_ad - g_fd) < 1e-5 * abs(g_fd)
        outside = dataclasses.replace(sparse, weights=sparse.weights.at[absent].set(0.5))
        with pytest.raises(ValueError, match=r"nonzero where its connectome had none \(row 1, column 2.*pairs=\"all\""):
            jr.simulate(jr.JRParams(), duration=5 * MS, network=outside)
        with pytest.raises(ValueError, match="nonzero where its connectome had none"):   # G traced, weights concrete
            jax.grad(lambda g: _loss_of(dataclasses.replace(outside, coupling=g)))(15.0)
    with pytest.raises(ValueError, match=r"pairs must be one of \('connected', 'all'\).*got 'dense'"):
        N.network(con, pairs="dense")


def test_the_read_carried_to_the_next_step_equals_the_read_summed_again():
    """With a deterministic drive and stages at both ends of the step, the read at a step's start is the previous
    step's read at its end, carried; a random drive of zero intensity sums it again (the path the independent
    reference tests check). Delays of 0, fractions of a step, whole steps and more, a region that receives from none,
    the per-receiver layout against every pair, chunked at 37 steps: equal to rounding (float64)."""
    k = np.zeros((6, 6))
    for i, j in ((1, 0), (2, 0), (2, 1), (3, 2), (4, 3), (5, 4), (3, 3), (0, 5)):   # receiver 0 from 5 only; self 3
        k[i, j] = 0.5 + 0.1 * i + 0.05 * j
    steps = np.array([0.4, 1.0, 2.7, 3.3, 0.0, 5.5])                  # delays in steps of 0.1 ms, by sender
    tau = np.where(k > 0, steps[None, :] * 1e-4, 0.0)
    runs = {}
    with jax.enable_x64(True):
        con = C.Connectome(k)
        for method in ("heun", "rk4", "kutta38"):
            for pairs in ("connected", "all"):
                net = N.network(con, coupling=20.0, delays=tau * u.second, pairs=pairs)
                for name, drive, key in (("carried", drives.constant(120 * u.Hz), None),
                                         ("summed", drives.white_noise(120 * u.Hz, 0 * u.Hz * u.second ** 0.5),
                                          jax.random.key(0))):
                    runs[method, pairs, name] = _eeg(jr.simulate(
                        jr.JRParams(), duration=20 * MS, dt=0.1 * MS, drive=drive, key=key, network=net,
                        method=method, chunk_steps=37, dtype=jnp.float64))
            ref = runs[method, "all", "summed"]
            assert np.abs(ref - ref[:, [0]]).max() > 0.1             # the coupling moves the regions apart
            for pairs in ("connected", "all"):
                for name in ("carried", "summed"):
                    np.testing.assert_allclose(runs[method, pairs, name], ref, rtol=1e-12, atol=1e-12,
                                               err_msg=f"{method} {pairs} {name}")


def test_the_buffer_held_once_or_twice_over_gives_the_same_run_and_history():
    """A simulation's loop holds the delayed rates twice over (reads without a modulo), a checkpointed loop
    (``trace``, what gradients run) once: the same EEG and final history. Both reads, per receiver (a sparse
    connectome) and over every column, delays of 0, a fraction of a step, whole steps and the buffer's longest, a
    transient and chunks that divide neither the run nor the buffer's rows, and a continuation (float64)."""
    k = np.zeros((6, 6))
    for i, j in ((1, 0), (2, 0), (2, 1), (3, 2), (4, 3), (5, 4), (3, 3), (0, 5)):   # in-degree at most 2
        k[i, j] = 0.5 + 0.1 * i + 0.05 * j
    steps = np.array([0.0, 0.3, 1.0, 4.0, 2.5, 12.0])                 # delays in steps of 0.1 ms, by sender
    tau = np.where(k > 0, steps[None, :] * 1e-4, 0.0)
    with jax.enable_x64(True):
        for n, (interpolation, pairs) in enumerate((("linear", "connected"), ("linear", "all"),
                                                    ("hermite", "connected"))):
            net = N.network(C.Connectome(k), coupling=20.0, delays=tau * u.second, pairs=pairs,
                            interpolation=interpolation, max_delay=1.2 * MS)
            assert net.buffer_steps(1e-4) - 2 == 12                        # the longest delay fills the buffer
            kw = dict(duration=6.1 * MS, dt=0.1 * MS, drive=drives.constant(120 * u.Hz), network=net,
                      dtype=jnp.float64)
            twice = jr.simulate(jr.JRParams(), transient=1.3 * MS, chunk_steps=9, **kw)
            once = jr.trace(jr.JRParams(), transient=1.3 * MS, checkpoint=True, **kw)
            assert np.abs(_eeg(twice) - _eeg(twice)[:, [0]]).max() > 0.005        # the coupling acts
            np.testing.assert_allclose(_eeg(once), _eeg(twice), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(np.asarray(once.final_state.history), np.asarray(twice.final_state.history),
                                       rtol=1e-12, atol=1e-12)
            if n == 0:
                on = jr.simulate(jr.JRParams(), initial_state=twice.final_state, chunk_steps=5, **kw)
                on_once = jr.trace(jr.JRParams(), initial_state=once.final_state, checkpoint=True, **kw)
                np.testing.assert_allclose(_eeg(on_once), _eeg(on), rtol=1e-12, atol=1e-12)


def test_a_network_with_concrete_leaves_inside_jit_runs():
    """Only a column parameter traced (as in a fit of A): the network's leaves are concrete inside jax.jit and its
    delays are checked on the host; the run equals the one outside jit."""
    net = N.network(C.example(4), coupling=5.0)

    def eeg(a):
        return jr.trace(jr.JRParams(A=a * u.mV), duration=10 * MS, network=net).eeg.mantissa

    np.testing.assert_allclose(jax.jit(eeg)(3.4), eeg(3.4), rtol=1e-5, atol=1e-6)


def test_vmap_over_the_coupling_equals_a_loop():
    net = N.network(C.example(4), coupling=1.0)
    gs = jnp.array([0.0, 5.0, 20.0])
    batched = jax.vmap(lambda g: _loss_of(dataclasses.replace(net, coupling=g)))(gs)
    looped = [float(jax.jit(_loss_of)(dataclasses.replace(net, coupling=g))) for g in gs]
    np.testing.assert_allclose(np.asarray(batched), looped, rtol=1e-5)
    assert len(set(np.round(looped, 6))) == 3


def test_a_run_continues_from_its_final_state_with_its_history():
    net = N.network(C.example(4), coupling=10.0)
    drive = drives.constant(110 * u.Hz)
    whole = jr.simulate(jr.JRParams(), duration=0.4 * u.second, drive=drive, network=net)
    first = jr.simulate(jr.JRParams(), duration=0.2 * u.second, drive=drive, network=net)
    second = jr.simulate(jr.JRParams(), duration=0.2 * u.second, drive=drive, network=net,
                         initial_state=first.final_state)
    np.testing.assert_allclose(np.concatenate([_eeg(first), _eeg(second)]), _eeg(whole), rtol=1e-6, atol=1e-6)


# -- lead field ----------------------------------------------------------------------------------------------------

def test_lead_field_projects_regions_to_sensors():
    con = C.example(4)
    L = np.array([[1.0, 0.5, 0.0, -0.2], [0.0, 0.0, 1.0, 1.0]])
    net = N.network(con, coupling=5.0, lead_field=L)
    res = jr.simulate(jr.JRParams(), duration=0.5 * u.second, drive=drives.constant(120 * u.Hz), network=net)
    s = net.sensors(res.eeg)
    np.testing.assert_allclose(np.asarray(s.to_decimal(u.mV)), _eeg(res) @ L.T, rtol=1e-5, atol=1e-5)
    noisy = net.sensors(res.eeg, noise=0.1 * u.mV, key=jax.random.key(0))
    resid = np.asarray((noisy - s).to_decimal(u.mV))
    assert abs(resid.std() - 0.1) < 0.005 and abs(resid.mean()) < 0.005      # 2000 draws: SE of SD ≈ 0.0016


# -- connectomes ---------------------------------------------------------------------------------------------------

def test_tvb_zip_and_npz_round_trip(tmp_path):
    con = C.example(6, seed=2)
    z = tmp_path / "connectivity_6.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("conn/weights.txt", "\n".join(" ".join(f"{v:.17g}" for v in row) for row in con.weights))
        f.writestr("conn/tract_lengths.txt", "\n".join(" ".join(f"{v:.17g}" for v in row)
                                                        for row in np.asarray(con.lengths.mantissa)))
        f.writestr("conn/centres.txt", "\n".join(f"{lab} {x:.17g} {y:.17g} {w:.17g}" for lab, (x, y, w)
                                                 in zip(con.labels, np.asarray(con.centres.mantissa))))
    for loaded in (C.load_tvb(z), None):
        if loaded is None:
            con.save_npz(tmp_path / "c.npz")
            loaded = C.load_npz(tmp_path / "c.npz")
        np.testing.assert_array_equal(loaded.weights, con.weights)
        np.testing.assert_array_equal(np.asarray(loaded.lengths.mantissa), np.asarray(con.lengths.mantissa))
        np.testing.assert_array_equal(np.asarray(loaded.centres.mantissa), np.asarray(con.centres.mantissa))
        assert loaded.labels == con.labels


def test_example_connectome_is_symmetric_and_normalised():
    con = C.example(76)
    w = con.weights
    np.testing.assert_array_equal(w, w.T)
    assert np.all(np.diag(w) == 0) and abs(w.sum(axis=1).max() - 1.0) < 1e-12
    d = np.asarray(con.distances().to_decimal(u.mmeter))
    np.testing.assert_allclose(np.asarray(con.lengths.to_decimal(u.mmeter)), 1.2 * d)


# -- bad input -----------------------------------------------------------------------------------------------------

def test_bad_inputs_are_named():
    con = C.example(4)
    with pytest.raises(ValueError, match="square"):
        C.Connectome(np.ones((3, 4)))
    with pytest.raises(ValueError, match="lengths must be finite and >= 0"):
        C.Connectome(np.ones((2, 2)), u.Quantity(np.array([[0, -1.0], [1, 0]]), unit=u.mmeter))
    with pytest.raises(ValueError, match="lengths must have the shape of weights"):
        C.Connectome(np.ones((2, 2)), u.Quantity(np.ones((3, 3)), unit=u.mmeter))
    with pytest.raises(jr.UnitError, match="speed"):
        N.network(con, speed=3.0)
    with pytest.raises(ValueError, match="speed must be > 0"):
        N.network(con, speed=-3.0 * u.meter / u.second)
    with pytest.raises(ValueError, match="delays must be >= 0"):
        N.network(con, delays=-np.ones((4, 4)) * u.ms)
    with pytest.raises(ValueError, match="delays must have shape \\(4, 4\\)"):
        N.network(con, delays=np.ones((3, 3)) * u.ms)
    with pytest.raises(ValueError, match="lead_field must have shape \\(M, 4\\)"):
        N.network(con, lead_field=np.ones((2, 3)))
    with pytest.raises(ValueError, match="rule must be one of"):
        N.network(con, rule="diffusive")
    with pytest.raises(ValueError, match="exceeds max_delay"):
        N.network(con, max_delay=1 * u.ms)
    net = N.network(con, max_delay=60 * u.ms)
    slow = dataclasses.replace(net, speed=0.5 * u.meter / u.second)
    with pytest.raises(ValueError, match="exceeds the network's max_delay = 60 ms"):
        jr.simulate(jr.JRParams(), duration=0.01 * u.second, network=slow)
    with pytest.raises(ValueError, match="shape \\(4,\\); got \\{'A': \\(3,\\)\\}"):
        jr.simulate(jr.JRParams(A=np.ones(3) * u.mV), duration=0.01 * u.second, network=net)
    with pytest.raises(ValueError, match="noise intensity must be one value"):
        jr.simulate(jr.JRParams(), duration=0.01 * u.second, network=net, key=jax.random.key(0),
                    drive=drives.white_noise(100 * u.Hz, np.ones(4) * u.Hz * u.second ** 0.5))


def test_a_lesioned_region_runs_as_an_isolated_column():
    """network.lesion cuts a region's incoming and outgoing weights: it then runs exactly as a single column with
    its own noise key (column i draws from jax.random.split(key, N)[i]), while the other regions still interact."""
    con = C.example(6)
    net = N.network(con, coupling=10.0)
    drive = drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5)
    key = jax.random.key(7)
    cut = N.lesion(net, [2, con.labels[4]])
    np.testing.assert_array_equal(np.asarray(cut.weights)[[2, 4]], 0.0)
    np.testing.assert_array_equal(np.asarray(cut.weights)[:, [2, 4]], 0.0)
    res = jr.simulate(jr.JRParams(), duration=0.5 * u.second, drive=drive, key=key, network=cut)
    alone = jr.simulate(jr.JRParams(), duration=0.5 * u.second, drive=drive, key=jax.random.split(key, 6)[2])
    np.testing.assert_allclose(_eeg(res)[:, 2], _eeg(alone), rtol=1e-5, atol=1e-5)
    whole = jr.simulate(jr.JRParams(), duration=0.5 * u.second, drive=drive, key=key, network=net)
    assert np.abs(_eeg(whole)[:, 2] - _eeg(alone)).max() > 0.1         # the coupling moved it before the lesion
    with pytest.raises(ValueError, match="regions"):
        N.lesion(net, [6])
    with pytest.raises(ValueError, match="'nowhere' is not a region"):
        N.lesion(net, "nowhere")


def test_hessian_through_the_delays_matches_finite_differences_of_the_gradient():
    """The linear delayed read has its own reverse-mode rule (jr_jax.history.past_sums); forward-over-reverse, as
    jax.hessian and the Laplace errors of a network fit use it, goes through it (float64)."""
    with jax.enable_x64(True):
        net = N.network(C.example(4), coupling=0.5, max_delay=60 * u.ms)

        def loss(th):
            n = dataclasses.replace(net, coupling=th[0], speed=u.Quantity(th[1], unit=u.meter / u.second))
            r = jr.trace(jr.JRParams(), duration=30 * u.ms, dt=0.1 * u.ms, network=n, dtype=jnp.float64,
                         record=jr.Record(("eeg",), every=10))
            return jnp.mean(r.eeg.to_decimal(u.mV) ** 2)

        th, eps = jnp.array([0.5, 3.0]), 1e-5
        h = np.asarray(jax.hessian(loss)(th))
        g = jax.grad(loss)
        fd = np.stack([(g(th + eps * e) - g(th - eps * e)) / (2 * eps) for e in np.eye(2)])
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-12)
    assert np.all(np.abs(h) > 0)


def test_forward_mode_goes_through_the_hermite_read():
    """The Hermite read is plain operations (docs "Networks"): jax.jvp with respect to the speed matches central
    differences (float64), while the linear read's own reverse-mode rule refuses forward mode."""
    with jax.enable_x64(True):
        nets = {r: N.network(C.example(4), coupling=0.5, max_delay=60 * u.ms, interpolation=r)
                for r in ("hermite", "linear")}

        def loss(v, interpolation):
            net = dataclasses.replace(nets[interpolation], speed=u.Quantity(v, unit=u.meter / u.second))
            return _loss_of(net, n_steps=60, dtype=jnp.float64)

        v, eps = 3.0, 1e-5
        _, tangent = jax.jvp(lambda x: loss(x, "hermite"), (v,), (1.0,))
        fd = (loss(v + eps, "hermite") - loss(v - eps, "hermite")) / (2 * eps)
        np.testing.assert_allclose(float(tangent), float(fd), rtol=1e-5)
        assert abs(float(fd)) > 0
        with pytest.raises(TypeError, match="forward-mode"):
            jax.jvp(lambda x: loss(x, "linear"), (v,), (1.0,))
