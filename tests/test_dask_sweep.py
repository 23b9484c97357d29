"""Sweeps on an executor: a real dask LocalCluster of two worker processes (started here, no mock) and a process
pool compute the chunks into one shared folder, and the features equal the in-process sweep's bit for bit, also
when a worker or the client is killed mid-sweep and the sweep resumes. Bad executors, folders the workers cannot
use and scheduler addresses that do not answer are named."""

import concurrent.futures as cf
import logging
import multiprocessing
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import brainunit as u
import jax
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import cli

distributed = pytest.importorskip("distributed")

ROOT = pathlib.Path(__file__).parents[1]
SIG = u.Hz * u.second ** 0.5
# 256 sets in 8 chunks; independent keys, so each chunk needs the right set numbers for its noise
DESIGN = jr.grid(A=np.linspace(2.5, 4.5, 16) * u.mV, B=np.linspace(18.0, 26.0, 16) * u.mV,
                 drive=jr.drives.white_noise(150 * u.Hz, 20 * SIG))
KW = dict(duration=2 * u.second, transient=0.5 * u.second, chunk_size=32, key=jax.random.key(5), keys="independent")
N_CHUNKS = 8
SPAWN = multiprocessing.get_context("spawn")      # a forked process that runs JAX deadlocks


@pytest.fixture(scope="module")
def reference():
    """The one-process sweep: the numbers every executor must give."""
    return jr.sweep(DESIGN, **KW)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as c:
        yield c


def assert_identical(res, ref):
    assert res.complete and res.computed.all() and res.chunk_size == ref.chunk_size
    assert set(res.features) == set(ref.features)
    for name in ref.features:
        got, want = np.asarray(u.get_mantissa(res.features[name])), np.asarray(u.get_mantissa(ref.features[name]))
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


class Sizes:
    """A progress meter that records each update (sets of one finished chunk)."""

    def __init__(self):
        self.sizes = []

    def update(self, n):
        self.sizes.append(n)


def test_dask_sweep_equals_the_in_process_sweep_bit_for_bit(client, reference, tmp_path):
    bar = Sizes()
    res = jr.sweep(DESIGN, out_dir=tmp_path, executor=client, progress=bar, **KW)
    assert_identical(res, reference)
    assert bar.sizes == [32] * N_CHUNKS                      # one update per finished task
    assert len(list(tmp_path.glob("chunk_*.npz"))) == N_CHUNKS
    # the workers computed the chunks: each compiled the chunk itself
    compiled = client.run(lambda: sys.modules["jr_jax.sweep_chunks"].sweep_chunk._cache_size())
    assert len(compiled) == 2 and all(n >= 1 for n in compiled.values()), compiled


class KillABusyWorker(Sizes):
    """When the first chunk is reported, SIGKILL the process of a dask worker that is running a task."""

    def __init__(self, client, folder):
        super().__init__()
        self.client, self.folder, self.killed = client, folder, None

    def update(self, n):
        super().update(n)
        if self.killed is None:
            busy = [w for w, keys in self.client.processing().items() if keys]
            pid = self.client.run(os.getpid)[busy[0]]
            self.killed = (pid, len(list(self.folder.glob("chunk_*.npz"))))
            os.kill(pid, signal.SIGKILL)


def test_a_worker_killed_mid_sweep_is_replaced_and_the_features_are_identical(client, reference, tmp_path):
    bar = KillABusyWorker(client, tmp_path)
    res = jr.sweep(DESIGN, out_dir=tmp_path, executor=client, progress=bar, **KW)
    pid, done_at_kill = bar.killed
    assert done_at_kill < N_CHUNKS                  # the kill came mid-sweep
    assert pid not in client.run(os.getpid).values()
    assert_identical(res, reference)
    assert sum(bar.sizes) == 256


_CLIENT = """
import os, signal, sys
import brainunit as u, jax, numpy as np
import jr_jax as jr
from distributed import Client
from tests.test_dask_sweep import DESIGN, KW

class Die:
    def update(self, n):
        os.kill(os.getpid(), signal.SIGKILL)        # no clean-up, as a killed job

with Client(sys.argv[1]) as client:
    jr.sweep(DESIGN, out_dir=sys.argv[2], executor=client, progress=Die(), **KW)
"""


def _wait_until_idle(client, limit_s=60.0):
    end = time.monotonic() + limit_s
    while any(client.run(lambda dask_worker: dask_worker.state.executing_count).values()):
        assert time.monotonic() < end, "the workers did not finish the killed client's tasks"
        time.sleep(0.05)


def test_a_killed_client_and_max_chunks_resume_to_the_identical_result(client, reference, tmp_path):
    out = subprocess.run([sys.executable, "-c", _CLIENT, client.scheduler.address, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    _wait_until_idle(client)                # the killed client's tasks that were running may still write
    assert list(tmp_path.glob("chunk_*.npz"))
    part = jr.sweep(DESIGN, out_dir=tmp_path, executor=client, max_chunks=1, **KW)
    done = part.computed.sum()
    assert not part.complete and 32 <= done < 256
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk_*.npz")}
    bar = Sizes()
    res = jr.sweep(DESIGN, out_dir=tmp_path, executor=client, progress=bar, **KW)
    assert_identical(res, reference)
    assert sum(bar.sizes) == 256 - done             # only the missing chunks ran
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in stamps} == stamps      # loaded, not recomputed


def _kill_pool_process(pool):
    class Kill(Sizes):
        def update(self, n):
            super().update(n)
            if len(self.sizes) == 1:
                os.kill(next(iter(pool._processes)), signal.SIGKILL)
    return Kill()


def test_a_process_pool_gives_the_same_features_and_a_lost_process_is_named(reference, tmp_path):
    with cf.ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        res = jr.sweep(DESIGN, out_dir=tmp_path / "whole", executor=pool, **KW)
        assert_identical(res, reference)
        broken = tmp_path / "broken"
        with pytest.raises(jr.executors.WorkerLostError,
                           match=rf"(?s)BrokenProcessPool.*kept in {re.escape(str(broken))}.*call sweep again"):
            jr.sweep(DESIGN, out_dir=broken, executor=pool, progress=_kill_pool_process(pool), **KW)
    kept = len(list(broken.glob("chunk_*.npz")))
    assert 1 <= kept < N_CHUNKS
    assert_identical(jr.sweep(DESIGN, out_dir=broken, **KW), reference)     # resumed in this process


def _no_file_writes():
    """A pool process that can open files but not write a byte into them (a full or read-only disk, as root too)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_bad_executors_and_folders_are_named(client, tmp_path):
    small = DESIGN.take(np.arange(4))
    kw = dict(KW, chunk_size=4)
    for bad, given in ((object(), "object"), ("tcp://127.0.0.1:8786", "str"), (client.cluster, "LocalCluster")):
        with pytest.raises(TypeError, match=rf"executor must be a concurrent.futures.Executor .* or a "
                                            rf"dask.distributed.Client; got {given}"):
            jr.sweep(small, out_dir=tmp_path / "never", executor=bad, **kw)
    with pytest.raises(ValueError, match="executor needs out_dir.*got out_dir=None"):
        jr.sweep(small, executor=client, **kw)
    with pytest.raises(ValueError, match=r"forks its processes.*get_context\('spawn'\)"):
        with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as forking:
            jr.sweep(small, out_dir=tmp_path / "never", executor=forking, **kw)
    assert not (tmp_path / "never").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(jr.StoreError, match=rf"{tmp_path / 'file' / 'out'} cannot be created"):
        jr.sweep(small, out_dir=tmp_path / "file" / "out", executor=client, **kw)
    with cf.ProcessPoolExecutor(1, mp_context=SPAWN, initializer=_no_file_writes) as pool:
        with pytest.raises(OSError, match=rf"out_dir {tmp_path / 'ro'}: the worker on .* cannot use this folder "
                                          rf"\(OSError: .*File too large.*at the same path"):
            jr.sweep(small, out_dir=tmp_path / "ro", executor=pool, **kw)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_scheduler_that_does_not_answer_or_dask_missing_is_one_error_line(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    argv = ["sweep", "--param", "A=3:4:2", "--quiet", "--out", str(tmp_path / "out"), "--scheduler", address]
    start = time.monotonic()
    assert cli.main(argv + ["--scheduler-timeout", "1"]) == 2
    assert time.monotonic() - start < 8
    err = capsys.readouterr().err
    assert err.startswith("jr-jax sweep: error: --scheduler ") and address in err and "within 1 s" in err, err
    assert not (tmp_path / "out").exists()
    # as if dask were not installed (in a process of its own: this one's cluster uses dask)
    code = f"import sys; sys.modules['distributed'] = None; from jr_jax import cli; sys.exit(cli.main({argv!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "--scheduler needs dask.distributed" in out.stderr and 'pip install "jr_jax[dask]"' in out.stderr


def test_cli_sweep_on_the_cluster_equals_the_library(client, tmp_path, capsys):
    argv = ["sweep", "--param", "A=2.5:4.5:12", "--duration", "0.5", "--transient", "0.1", "--chunk-size", "4",
            "--quiet", "--out", str(tmp_path), "--scheduler", client.scheduler.address]
    assert cli.main(argv) == 0, capsys.readouterr().err
    got = np.load(tmp_path / "features.npz")
    ref = jr.sweep(jr.grid(A=np.linspace(2.5, 4.5, 12) * u.mV, drive=jr.drives.constant(220 * u.Hz)),
                   duration=0.5 * u.second, transient=0.1 * u.second, chunk_size=4, key=jax.random.key(0))
    for name in ("mean", "std", "psd", "dominant_frequency"):
        np.testing.assert_array_equal(got[name], np.asarray(u.get_mantissa(ref.features[name])), err_msg=name)
    assert len(list((tmp_path / "chunks").glob("chunk_*.npz"))) == 3
