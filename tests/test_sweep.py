"""Sweeps: designs, equality with single simulations, features, sharding, resume, memory, bad inputs."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

import jr_jax as jr
from jr_jax import monitors
from jr_jax import sweeps as S

SIG = u.Hz * u.second ** 0.5
ROOT = pathlib.Path(__file__).parents[1]
SCALARS = ("mean", "std", "skewness", "min", "max", "dominant_frequency", "alpha_share", "peak_share")


def _noisy_design():
    return jr.grid(A=np.array([3.0, 3.25, 3.6]) * u.mV, B=np.array([20.0, 24.0]) * u.mV,
                  drive=jr.drives.white_noise(150 * u.Hz, 20 * SIG))


def _values(res, name):
    return np.asarray(u.get_mantissa(res.features[name]), np.float64)


def test_grid_is_the_cartesian_product_first_axis_slowest():
    d = jr.grid(A=np.array([3.0, 4.0, 5.0]) * u.mV, p=np.array([100.0, 200.0]) * u.Hz)
    assert d.shape == (3, 2) and d.size == 6
    np.testing.assert_allclose(np.asarray(d.params.A.to_decimal(u.mV)), [3, 3, 4, 4, 5, 5])
    np.testing.assert_allclose(np.asarray(d.drive.value.to_decimal(u.Hz)), [100, 200] * 3)
    share = d.take(np.arange(1, 6, 2))             # one host's share of three
    assert share.shape == (3,)
    np.testing.assert_allclose(np.asarray(share.params.A.to_decimal(u.mV)), [3, 4, 5])
    np.testing.assert_allclose(np.asarray(share.drive.value.to_decimal(u.Hz)), [200, 200, 200])


def test_random_design_respects_bounds_and_log_scale():
    d = jr.random_design(4000, key=jax.random.key(1), A=(2 * u.mV, 10 * u.mV), a=(10 * u.Hz, 1000 * u.Hz), log=("a",))
    A = np.asarray(d.params.A.to_decimal(u.mV))
    a = np.asarray(d.params.a.to_decimal(u.Hz))
    assert A.min() >= 2 and A.max() <= 10 and a.min() >= 10 and a.max() <= 1000
    # log-uniform: the median is the geometric mean of the bounds (100 Hz), not the arithmetic one (505 Hz)
    assert np.median(a) == pytest.approx(100.0, rel=0.1)
    assert np.mean(A) == pytest.approx(6.0, rel=0.03)


def _simulate_features(params, drive, key, duration, transient, features=None):
    features = features or monitors.Features()
    res = jr.simulate(params, duration=duration, drive=drive, key=key, transient=transient,
                      record=jr.Record(("eeg",), every=4, reduce="mean"))
    return monitors.from_trace(res.eeg, res.sampling_rate, features)


@pytest.mark.parametrize("keys", ["common", "independent"])
def test_sweep_entry_equals_single_simulation(keys):
    d = _noisy_design()
    key = jax.random.key(7)
    res = S.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=key, keys=keys, chunk_size=4)
    assert res.complete and res.features["mean"].shape == (6,)
    for i in (0, 3, 5):
        params = jr.JRParams(A=d.params.A[i], B=d.params.B[i])
        k = key if keys == "common" else jax.random.fold_in(key, i)
        ref = _simulate_features(params, d.drive, k, 2 * u.second, 0.5 * u.second)
        for name in SCALARS:
            assert _values(res, name)[i] == pytest.approx(float(u.get_mantissa(ref[name])), rel=2e-4, abs=2e-5), name
        np.testing.assert_allclose(_values(res, "psd")[i], np.asarray(ref["psd"].mantissa), rtol=2e-3, atol=1e-7)


def test_features_against_numpy_and_scipy():
    fs, T = 500.0, 8.0
    t = np.arange(int(fs * T)) / fs
    rng = np.random.default_rng(0)
    x = 3.0 + 2.0 * np.sin(2 * np.pi * 10.0 * t) + 0.1 * rng.standard_normal(t.size)
    f = monitors.from_trace(u.Quantity(x, unit=u.mV), fs * u.Hz)
    assert float(f["mean"].to_decimal(u.mV)) == pytest.approx(x.mean(), rel=1e-5)
    assert float(f["std"].to_decimal(u.mV)) == pytest.approx(x.std(), rel=1e-4)
    assert float(f["min"].to_decimal(u.mV)) == pytest.approx(x.min(), rel=1e-6)
    assert float(f["max"].to_decimal(u.mV)) == pytest.approx(x.max(), rel=1e-6)
    d = x - x.mean()
    assert float(f["skewness"].mantissa) == pytest.approx(np.mean(d ** 3) / x.std() ** 3, abs=2e-3)
    assert float(f["dominant_frequency"].to_decimal(u.Hz)) == pytest.approx(10.0, abs=0.05)
    assert float(f["alpha_share"].mantissa) > 0.99
    fr, ref = signal.welch(x, fs=fs, window="hann", nperseg=1000, noverlap=0, detrend="constant")
    keep = fr <= 100.0
    np.testing.assert_allclose(np.asarray(f["psd"].to_decimal(u.mV ** 2 / u.Hz)), ref[keep], rtol=1e-3, atol=1e-7)
    # band power of a sinusoid of amplitude 2: its variance, 2 mV²
    assert float(f["power_alpha"].to_decimal(u.mV ** 2)) == pytest.approx(2.0, rel=0.02)


def test_features_of_many_sets_are_finalized_block_by_block_in_place(monkeypatch):
    # six traces on a (2, 3) grid of sets, finalized two sets at a time: each set keeps its own sinusoid's mean
    # and frequency (blocks that crossed rows would swap them), and the blocks change no bit of any feature
    fs, T = 500.0, 4.0
    t = np.arange(int(fs * T)) / fs
    freq = np.array([[6.0, 9.0, 11.0], [17.0, 21.0, 25.0]])
    offset = np.arange(6.0).reshape(2, 3)
    x = offset[..., None] + 2.0 * np.sin(2 * np.pi * freq[..., None] * t)
    whole = monitors.from_trace(u.Quantity(x, unit=u.mV), fs * u.Hz)
    monkeypatch.setattr(monitors, "FINALIZE_BLOCK", 2)
    blocks = monitors.from_trace(u.Quantity(x, unit=u.mV), fs * u.Hz)
    np.testing.assert_allclose(np.asarray(blocks["mean"].to_decimal(u.mV)), offset, atol=1e-4)
    np.testing.assert_allclose(np.asarray(blocks["dominant_frequency"].to_decimal(u.Hz)), freq, atol=0.05)
    assert blocks["psd"].shape == (2, 3, whole["psd"].shape[-1]) and blocks["diverged"].shape == (2, 3)
    for k in whole:
        np.testing.assert_array_equal(np.asarray(u.get_mantissa(blocks[k])), np.asarray(u.get_mantissa(whole[k])))


def test_diverged_sets_are_flagged_not_fatal():
    params = jr.JRParams(A=np.array([3.25, 3.25]) * u.mV, a=np.array([100.0, 100.0]) * u.Hz)
    res = S.sweep(params, drive=jr.drives.constant(220 * u.Hz), duration=1 * u.second, transient=0 * u.second)
    assert not res.features["diverged"].any()
    huge = S.sweep(jr.JRParams(A=np.array([3.25, 3.25]) * u.mV), drive=jr.drives.constant(220 * u.Hz),
                   duration=1 * u.second, transient=0 * u.second, dt=40 * u.ms,
                   features=monitors.Features(decimate=40 * u.ms, segment=1 * u.second))
    assert huge.features["diverged"].all()
    assert np.isnan(_values(huge, "mean")).all()


def test_memory_does_not_grow_with_simulated_time():
    """Compiled temporary memory of one chunk, 2 s against 100 s of features (XLA's own accounting)."""
    d = jr.grid(A=np.linspace(3, 4, 16) * u.mV)
    cp, cd = S.canonical_leaves(d.params, d.drive, np.float32)
    cs = S.initial_states(None, 16, np.float32)
    sizes = []
    for n_seg in (1, 50):
        c = S.sweep_chunk.lower(cp, cd, cs, np.arange(16, dtype=np.int32), jax.random.key(0), 5e-4, solver=jr.solvers.RK4(),
                                 n_tr=0, every=4, seg_len=1000, n_seg=n_seg, keep=201, fs_hz=500.0,
                                 independent=False, dtype=jnp.float32).compile()
        sizes.append(c.memory_analysis().temp_size_in_bytes)
    trajectory_bytes = 16 * 50 * 4000 * 4      # what keeping the 100 s EEG at every step would take
    assert sizes[1] <= 1.05 * sizes[0] + 4096, sizes
    assert sizes[1] < trajectory_bytes / 10, sizes


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"params.A: 3.*params.B: 4"):
        S.sweep(jr.JRParams(A=np.ones(3) * 3 * u.mV, B=np.ones(4) * 22 * u.mV), duration=1 * u.second)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        jr.grid(A=np.array([]) * u.mV)
    with pytest.raises(ValueError, match="unknown sweep axis 'Q'"):
        jr.grid(Q=np.ones(3))
    with pytest.raises(ValueError, match="whole number"):
        S.sweep(jr.grid(A=np.ones(2) * 3 * u.mV), duration=3 * u.second)
    with pytest.raises(ValueError, match="random: pass key"):
        S.sweep(_noisy_design(), duration=2 * u.second)
    with pytest.raises(ValueError, match="max_chunks needs out_dir"):
        S.sweep(jr.grid(A=np.ones(2) * 3 * u.mV), duration=2 * u.second, max_chunks=1)
    with pytest.raises(ValueError, match="chunk_size must be a positive number of sets; got 0"):
        S.sweep(jr.grid(A=np.ones(2) * 3 * u.mV), duration=2 * u.second, chunk_size=0)


_CHILD = """
import os, sys, numpy as np, brainunit as u, jax, json
import jr_jax as jr
from jr_jax import sweeps as S
{setup}
d = jr.grid(A=np.linspace(3.0, 3.6, 4) * u.mV, B=np.array([20.0, 24.0]) * u.mV,
           drive=jr.drives.white_noise(150 * u.Hz, 20 * u.Hz * u.second ** 0.5))
res = S.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=jax.random.key(3), chunk_size={chunk},
              out_dir={out!r}, progress={progress})
print(json.dumps({{"devices": jax.device_count(),
                  "mean": np.asarray(res.features["mean"].mantissa).tolist(),
                  "psd": np.asarray(res.features["psd"].mantissa).tolist()}}))
"""


def _child(setup="", chunk=2, out=None, env_extra=None, progress="False"):
    env = dict(os.environ, **(env_extra or {}))
    code = textwrap.dedent(_CHILD.format(setup=setup, chunk=chunk, out=out, progress=progress))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def _reference(tmp_path):
    d = jr.grid(A=np.linspace(3.0, 3.6, 4) * u.mV, B=np.array([20.0, 24.0]) * u.mV,
               drive=jr.drives.white_noise(150 * u.Hz, 20 * SIG))
    return S.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=jax.random.key(3), chunk_size=2,
                   out_dir=tmp_path / "reference")


def test_sharded_over_four_devices_equals_one_device(tmp_path):
    out = _child(chunk=8, env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=4",
                                     "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["devices"] == 4
    ref = _reference(tmp_path)
    np.testing.assert_allclose(got["mean"], np.asarray(ref.features["mean"].mantissa), rtol=1e-5)
    np.testing.assert_allclose(got["psd"], np.asarray(ref.features["psd"].mantissa), rtol=1e-4, atol=1e-9)


def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    run_dir = tmp_path / "run"
    # the child kills itself (SIGKILL, no clean-up) when its progress meter hears of the second finished chunk
    setup = textwrap.dedent("""
        import signal
        class Killer:
            n = 0
            def update(self, sets):
                self.n += 1
                if self.n == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = _child(setup=setup, chunk=2, out=str(run_dir), progress="Killer()")
    assert out.returncode == -9, (out.returncode, out.stderr[-2000:])
    done = sorted(p.name for p in run_dir.glob("chunk_*.npz"))
    assert done == ["chunk_00000.npz", "chunk_00001.npz"]
    stamps = {p: (run_dir / p).stat().st_mtime_ns for p in done}

    d = jr.grid(A=np.linspace(3.0, 3.6, 4) * u.mV, B=np.array([20.0, 24.0]) * u.mV,
               drive=jr.drives.white_noise(150 * u.Hz, 20 * SIG))
    resumed = S.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=jax.random.key(3), chunk_size=2,
                      out_dir=run_dir)
    assert {p: (run_dir / p).stat().st_mtime_ns for p in done} == stamps      # loaded, not recomputed
    ref = _reference(tmp_path)
    for name in ("mean", "std", "psd", "dominant_frequency"):
        np.testing.assert_array_equal(_values(resumed, name), _values(ref, name))


def test_time_sliced_sweep_and_a_different_spec_in_the_same_dir(tmp_path):
    d = jr.grid(A=np.linspace(3.0, 3.6, 6) * u.mV)
    part = S.sweep(d, duration=2 * u.second, chunk_size=2, out_dir=tmp_path, max_chunks=1)
    assert not part.complete and part.computed.sum() == 2 and np.isnan(_values(part, "mean")[2:]).all()
    full = S.sweep(d, duration=2 * u.second, chunk_size=2, out_dir=tmp_path)
    assert full.complete
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(S.SweepSpecError, match="duration_s"):
        S.sweep(d, duration=4 * u.second, chunk_size=2, out_dir=tmp_path)
    with pytest.raises(S.SweepSpecError, match="design_sha256"):
        S.sweep(jr.grid(A=np.linspace(3.0, 3.7, 6) * u.mV), duration=2 * u.second, chunk_size=2, out_dir=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_same_sets_held_shared_or_per_set_are_one_sweep(tmp_path):
    """B shared by every set (one number) and B given per set (six equal numbers) are the same six sets: the
    second resumes the folder the first began, keeps its chunk, and both give the uninterrupted result bit for bit."""
    a = np.linspace(3.0, 3.6, 6) * u.mV
    shared, per_set = jr.grid(A=a), jr.grid(A=a, B=np.array([22.0]) * u.mV)
    assert np.shape(u.get_mantissa(per_set.params.B)) == (6,) and np.ndim(u.get_mantissa(shared.params.B)) == 0
    S.sweep(shared, duration=2 * u.second, chunk_size=2, out_dir=tmp_path, max_chunks=1)
    first = (tmp_path / "chunk_00000.npz").read_bytes()
    resumed = S.sweep(per_set, duration=2 * u.second, chunk_size=2, out_dir=tmp_path)
    assert resumed.complete and (tmp_path / "chunk_00000.npz").read_bytes() == first
    ref = S.sweep(per_set, duration=2 * u.second, chunk_size=2)
    for name in ("mean", "std", "psd", "dominant_frequency"):
        np.testing.assert_array_equal(_values(resumed, name), _values(ref, name))


def test_resumed_chunks_are_split_as_the_specification_says(tmp_path, monkeypatch):
    """The features' float32 sums depend on the sets per compiled call (here 250 sets whole against two calls of 125
    give different means), so the specification keeps the calls per chunk: a sweep started on one core and resumed
    where the cores are two ends bit-identical to the one-core sweep."""
    rng = np.random.default_rng(1)
    d = jr.JRParams(A=rng.uniform(2.5, 4.5, 500) * u.mV, B=rng.uniform(15.0, 30.0, 500) * u.mV)
    kw = dict(duration=2 * u.second, transient=0.1 * u.second, chunk_size=250, key=jax.random.key(0),
              drive=jr.drives.white_noise(120.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5))

    def run(parts, **more):
        monkeypatch.setenv(jr.batches.PARTS_ENV, str(parts))
        return S.sweep(d, **kw, **more)

    one, two = run(1), run(2)
    assert np.any(_values(one, "mean") != _values(two, "mean"))           # the split matters
    run(1, out_dir=tmp_path, max_chunks=1)
    assert json.loads((tmp_path / "spec.json").read_text())["cpu_parts"] == 1
    resumed = run(2, out_dir=tmp_path)
    assert resumed.complete
    for name in ("mean", "std", "skewness", "psd"):
        np.testing.assert_array_equal(_values(resumed, name), _values(one, name))


def test_chunk_for_memory_arithmetic():
    # half of the free memory, whole multiples of 256 sets per device, at most 2^20 per device
    assert S.chunk_for_memory(1000.0, 1e6, 2) == 2 * 256              # 500 sets fit per device -> 256
    assert S.chunk_for_memory(1000.0, 1.2e6) == 512                    # 600 fit -> 512
    assert S.chunk_for_memory(1000.0, 1e5) == 50                       # fewer than 256 fit: all of them
    assert S.chunk_for_memory(1.0, 1e12, 4) == 4 * 2 ** 20
    with pytest.raises(MemoryError, match=r"needs 1 MB of device memory.*0\.1 MB free"):
        S.chunk_for_memory(1e6, 1e5)


def test_default_chunk_is_sized_to_device_memory_and_kept_on_resume(tmp_path, monkeypatch):
    """Where the device reports its free memory (a GPU), the default chunk is the most sets, in multiples of 256,
    whose compiled chunk takes at most half of it. XLA's own accounting of the chunk compiled at that size and at
    the next multiple is the oracle; a resumed sweep keeps its chunks whatever memory is free then."""
    n, free = 1100, 20e6
    d = jr.grid(A=np.linspace(2.5, 4.5, n) * u.mV)
    kw = dict(duration=2 * u.second, transient=0 * u.second)
    monkeypatch.setattr(S, "free_device_bytes", lambda: free)
    part = S.sweep(d, out_dir=tmp_path, max_chunks=1, **kw)
    chunk = part.chunk_size
    assert chunk % 256 == 0 and part.computed.sum() == chunk < n

    def xla_bytes(m):
        sub = jr.grid(A=np.linspace(2.5, 4.5, m) * u.mV)
        cp, cd = S.canonical_leaves(sub.params, sub.drive, np.float32)
        cs = S.initial_states(None, m, np.float32)
        mem = S.sweep_chunk.lower(cp, cd, cs, np.arange(m, dtype=np.int32), jax.random.key(0), 5e-4, solver=jr.solvers.RK4(),
                                   n_tr=0, every=4, seg_len=1000, n_seg=1, keep=201, fs_hz=500.0, independent=False,
                                   dtype=jnp.float32).compile().memory_analysis()
        return mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes

    assert xla_bytes(chunk) <= free / 2 < xla_bytes(chunk + 256)

    monkeypatch.setattr(S, "free_device_bytes", lambda: 1e12)       # resumed with far more memory free
    full = S.sweep(d, out_dir=tmp_path, **kw)
    assert full.complete and full.chunk_size == chunk
    whole = S.sweep(d, chunk_size=n, **kw)
    for name in ("mean", "std", "psd"):
        np.testing.assert_array_equal(_values(full, name), _values(whole, name))
    with pytest.raises(MemoryError, match="MB of device memory"):
        monkeypatch.setattr(S, "free_device_bytes", lambda: 1e3)
        S.sweep(d, **kw)
