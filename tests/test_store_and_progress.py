"""The one checkpoint store and the one progress meter, as simulate, sweep and fit use them."""

import io
import json

import brainunit as u
import jax
import numpy as np
import pytest
from tqdm import tqdm

import jr_jax as jr
from jr_jax.store import CheckpointStore, StoreError

NOISY = jr.drives.white_noise(120 * u.Hz, 30 * u.Hz * u.second ** 0.5)


class SpecError(ValueError):
    pass


def test_store_round_trip_spec_check_and_manifest(tmp_path):
    store = CheckpointStore(tmp_path, {"a": 1, "b": [1, 2]}, error=SpecError, what="job")
    assert "x" not in store
    store.save({"x": {"v": np.arange(3.0)}, "y": {"w": np.ones(2, bool)}}, {"x": {"n": 3}})
    again = CheckpointStore(tmp_path, {"a": 1, "b": [1, 2]}, error=SpecError)
    assert "x" in again and again.meta("x")["n"] == 3
    np.testing.assert_array_equal(again.load("x")["v"], np.arange(3.0))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(SpecError, match=r"differs in \['b'\]"):
        CheckpointStore(tmp_path, {"a": 1, "b": [1, 3]}, error=SpecError)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert not list(tmp_path.glob("*.tmp"))          # no temporary file is left behind


def test_a_file_the_manifest_does_not_list_is_not_read_and_a_changed_one_is_named(tmp_path):
    store = CheckpointStore(tmp_path, {}, error=SpecError)
    np.savez(tmp_path / "orphan.npz", v=np.zeros(2))     # as a write killed before the manifest: not finished
    assert "orphan" not in store
    store.save({"x": {"v": np.arange(3.0)}})
    np.savez(tmp_path / "x.npz", v=np.arange(3.0) + 1)
    with pytest.raises(StoreError, match="x.npz is damaged or was replaced"):
        store.load("x")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="manifest.json is damaged"):
        store.manifest()


def test_a_sweep_chunk_replaced_by_another_is_detected(tmp_path):
    d = jr.grid(A=np.linspace(3.0, 3.6, 4) * u.mV)
    jr.sweep(d, duration=2 * u.second, transient=0 * u.second, chunk_size=2, out_dir=tmp_path)
    (tmp_path / "chunk_00001.npz").write_bytes((tmp_path / "chunk_00000.npz").read_bytes())
    with pytest.raises(StoreError, match="chunk_00001.npz"):
        jr.sweep(d, duration=2 * u.second, transient=0 * u.second, chunk_size=2, out_dir=tmp_path)


def test_the_rate_leaves_out_the_compiling_chunk_and_a_resume_says_so(tmp_path):
    """The first chunk (which compiles) counts as done before the clock starts: tqdm's ``initial`` holds it, so its
    average rate is that of the later chunks; a resumed run starts its bar at what was done and says so."""
    kw = dict(duration=1 * u.second, drive=NOISY, key=jax.random.key(0), chunk_steps=400, out_dir=tmp_path)
    bar = tqdm(total=None, file=io.StringIO())
    jr.simulate(jr.JRParams(), progress=bar, **kw)
    assert (bar.n, bar.initial, bar.total) == (2000, 400, 2000)
    bar = tqdm(total=None, file=io.StringIO())
    jr.simulate(jr.JRParams(), progress=bar, **dict(kw, duration=1.5 * u.second))
    assert (bar.n, bar.initial, bar.total) == (3000, 2400, 3000)      # 2000 resumed + 400 compiled anew
    assert "resumed: 2000 of 3000 steps done" in bar.desc


def test_fit_and_sweep_drive_the_same_meter(tmp_path):
    counts = {}

    class Meter:
        def __init__(self, name):
            self.name = name

        def update(self, n):
            counts[self.name] = counts.get(self.name, 0) + n

    jr.sweep(jr.grid(A=np.linspace(3.0, 3.6, 6) * u.mV), duration=2 * u.second, chunk_size=4, progress=Meter("sweep"))
    target = lambda p: (p.A.to_decimal(u.mV) - 3.0) ** 2  # noqa: E731
    jr.fit(target, free=("A",), steps=5, rtol=0, laplace=False, progress=Meter("fit"))
    assert counts == {"sweep": 6, "fit": 5}
    with pytest.raises(TypeError, match="progress must be True, False or a tqdm-compatible object"):
        jr.simulate(jr.JRParams(), duration=0.1 * u.second, progress="yes")


# -- damaged folders, for each store -------------------------------------------------------------------------------

def _run(out, A=3.25):
    return jr.simulate(jr.JRParams(A=A * u.mV), duration=0.2 * u.second, drive=NOISY, key=jax.random.key(0),
                       chunk_steps=100, out_dir=out)


def _sweep(out, A=3.0):
    return jr.sweep(jr.grid(A=np.linspace(A, 3.6, 4) * u.mV), duration=0.5 * u.second, transient=0 * u.second,
                    chunk_size=2, out_dir=out)


def _fit(out, A=3.0):
    target = lambda p: (p.A.to_decimal(u.mV) - A) ** 2 + (p.B.to_decimal(u.mV) - 20.0) ** 2  # noqa: E731
    return jr.fit(target, free=("A", "B"), steps=6, save_every=2, rtol=0, laplace=False, out_dir=out)


JOBS = {"run": (_run, "records_00001"), "sweep": (_sweep, "chunk_00001"), "fit": (_fit, "fit_state")}


def _listed(folder, name):
    return folder / json.loads((folder / "manifest.json").read_text())[name]["file"]


def _damage(kind, how, folder, other):
    job, victim = JOBS[kind]
    path = _listed(folder, victim)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "swapped":        # another file in its place (the fit: the other folder's state)
        donor = {"run": folder, "sweep": folder, "fit": other}[kind]
        path.write_bytes(_listed(donor, {"run": "records_00000", "sweep": "chunk_00000", "fit": victim}[kind])
                         .read_bytes())
    elif how == "foreign":        # a file and its manifest entry copied from a folder of another specification
        foreign = _listed(other, victim)
        (folder / foreign.name).write_bytes(foreign.read_bytes())
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest[victim] = json.loads((other / "manifest.json").read_text())[victim]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif how == "missing":
        path.unlink()
    elif how == "no spec":
        (folder / "spec.json").unlink()
        return "no spec.json"
    elif how == "garbage manifest":
        (folder / "manifest.json").write_text("garbage")
        return "manifest.json is damaged"
    return victim


@pytest.mark.parametrize("kind", sorted(JOBS))
@pytest.mark.parametrize("how", ["truncated", "swapped", "foreign", "missing", "no spec", "garbage manifest"])
def test_a_damaged_folder_is_named_never_used(tmp_path, kind, how):
    job, _ = JOBS[kind]
    job(tmp_path / "a")
    job(tmp_path / "b", 3.1)                   # another specification
    named = _damage(kind, how, tmp_path / "a", tmp_path / "b")
    with pytest.raises(StoreError, match=named):
        job(tmp_path / "a")


def test_two_processes_on_one_folder_both_end_correct(tmp_path):
    """Two sweeps started together on one folder: each writes every chunk it does not find finished, with its own
    temporary files, and the manifest is updated under a lock; both end with the one-process result."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import json, numpy as np, brainunit as u, jax, jr_jax as jr
        d = jr.grid(A=np.linspace(3.0, 3.6, 8) * u.mV, drive=jr.drives.white_noise(150 * u.Hz, 20 * u.Hz * u.second ** 0.5))
        r = jr.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=jax.random.key(3), chunk_size=2,
                     out_dir={str(tmp_path / 'shared')!r})
        print(json.dumps(np.asarray(r.features["mean"].mantissa).tolist()))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    d = jr.grid(A=np.linspace(3.0, 3.6, 8) * u.mV, drive=jr.drives.white_noise(150 * u.Hz, 20 * u.Hz * u.second ** 0.5))
    one = jr.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=jax.random.key(3), chunk_size=2)
    for out, _ in outs:
        np.testing.assert_array_equal(np.asarray(json.loads(out.strip().splitlines()[-1])),
                                      np.asarray(one.features["mean"].mantissa))
    resumed = jr.sweep(d, duration=2 * u.second, transient=0.5 * u.second, key=jax.random.key(3), chunk_size=2,
                       out_dir=tmp_path / "shared")
    np.testing.assert_array_equal(np.asarray(resumed.features["mean"].mantissa), np.asarray(one.features["mean"].mantissa))
    assert not list((tmp_path / "shared").glob("*.tmp"))


def test_a_second_process_on_a_running_jobs_folder_fails_at_once_naming_the_holder(tmp_path):
    """A run holds its folder: another process asking for it gets StoreBusyError at once, naming the folder and the
    holder's process id; when the holder ends, the folder is free again."""
    import subprocess
    import sys
    import textwrap
    import time

    code = textwrap.dedent(f"""
        import sys, time
        from jr_jax.store import CheckpointStore
        with CheckpointStore({str(tmp_path)!r}, {{"job": 1}}, what="run", exclusive=True):
            print("holding", flush=True)
            time.sleep(30)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.perf_counter()
        with pytest.raises(jr.StoreBusyError, match=f"{tmp_path}.*process {holder.pid}"):
            CheckpointStore(tmp_path, {"job": 1}, what="run", exclusive=True)
        assert time.perf_counter() - t0 < 5                      # at once, not after the holder
    finally:
        holder.kill()
        holder.wait()
    with CheckpointStore(tmp_path, {"job": 1}, what="run", exclusive=True):     # the kernel released the lock
        pass
