"""The main job (jr-jax regimes) and the notebooks, run as a user would."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jr_jax import cli

from . import reference as R

ROOT = Path(__file__).resolve().parents[1]


def test_regimes_command_writes_figures_and_a_truthful_table(tmp_path):
    assert cli.main(["regimes", "--out", str(tmp_path), "--only", "classic_alpha,sinusoid", "--quiet"]) == 0
    assert (tmp_path / "classic_alpha.png").stat().st_size > 10_000
    assert (tmp_path / "sinusoid.png").exists() and (tmp_path / "regimes.md").exists()
    rows = {r["regime"]: r for r in csv.DictReader(open(tmp_path / "regimes.csv"))}
    # the classic cycle's frequency from an independent DOP853 solution of the reference equations
    t, y = R.solve(6.0, 1e-4)
    eeg = y[1] - y[2]
    e = eeg[t > 1.0]
    up = (e[:-1] < e.mean()) & (e[1:] >= e.mean())
    f_ref = (up.sum() - 1) / ((t[t > 1.0][1:][up][-1]) - (t[t > 1.0][1:][up][0]))
    assert float(rows["classic_alpha"]["dominant frequency (Hz)"]) == pytest.approx(f_ref, abs=0.3)  # Welch: 0.5 Hz bins
    assert float(rows["sinusoid"]["dominant frequency (Hz)"]) == pytest.approx(10.0, abs=0.05)
    assert rows["classic_alpha"]["claim holds"] == "yes"


def test_sweep_command_writes_maps_and_resumes(tmp_path):
    argv = ["sweep", "--param", "A=3:4:3", "--param", "B=20:24:2", "--duration", "2", "--transient", "0.5",
            "--chunk-size", "2", "--out", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    for name in ("features.npz", "features.csv", "regime_map.png", "dominant_frequency.png"):
        assert (tmp_path / name).exists(), name
    rows = list(csv.DictReader(open(tmp_path / "features.csv")))
    assert [(float(r["A"]), float(r["B"])) for r in rows] == [(a, b) for a in (3.0, 3.5, 4.0) for b in (20.0, 24.0)]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "chunks").glob("chunk_*.npz")}
    assert len(stamps) == 3
    assert cli.main(argv) == 0                      # the second run loads every chunk
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "chunks").glob("chunk_*.npz")} == stamps
    assert list(csv.DictReader(open(tmp_path / "features.csv"))) == rows


def test_bifurcation_command(tmp_path):
    assert cli.main(["bifurcation", "--p-range", "50:350", "--n-sim", "0", "--out", str(tmp_path), "--quiet"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "bifurcations.csv")))
    assert [r["kind"] for r in rows] == ["hopf", "fold", "hopf"]
    assert float(rows[1]["p (Hz)"]) == pytest.approx(113.586, abs=1e-3)   # the fold checked in test_bifurcations
    assert (tmp_path / "bifurcation.png").stat().st_size > 10_000


def test_cli_fit_erp_and_resume(tmp_path):
    """jr-jax fit on a CSV ERP simulated from known parameters: outputs written; a second run resumes (no new steps)."""
    import brainunit as u
    import numpy as np

    import jr_jax as jr
    from jr_jax import data, drives
    from jr_jax import fitting as F

    truth = jr.JRParams(A=3.6 * u.mV, B=25.0 * u.mV)
    transient = 1.0 * u.second
    drive = drives.constant(60.0 * u.Hz) + drives.pulse(transient + 0.1 * u.second, 200.0 * u.Hz, 5.0 * u.ms)
    x = np.asarray(F.erp_target(data.recording(np.zeros(150), 500 * u.Hz, u.mV), drive,
                                transient=transient).simulate(truth))
    t = -0.1 + np.arange(150) / 500.0          # the epoch starts 100 ms before the stimulus
    np.savetxt(tmp_path / "erp.csv", np.c_[t, x * 1e3], delimiter=",", header="time,value", comments="")
    args = ["fit", "--target", str(tmp_path / "erp.csv"), "--kind", "erp", "--free", "A,B", "--unit", "uV",
            "--steps", "40", "--out", str(tmp_path / "out"), "--quiet"]
    assert cli.main(args) == 0
    out = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert out["steps"] <= 40 and out["loss"] < 0.05 and set(out["params"]) == {"A", "B"}
    assert (tmp_path / "out" / "fit.png").stat().st_size > 10_000
    state = tmp_path / "out" / "state" / json.loads((tmp_path / "out" / "state" / "manifest.json").read_text())[
        "fit_state"]["file"]
    before = state.stat().st_mtime_ns
    assert cli.main(args) == 0                 # resumes from the saved, finished state
    assert state.stat().st_mtime_ns == before
    assert cli.main(args[:-5] + ["--steps", "50", "--out", str(tmp_path / "out"), "--quiet"]) == 2


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_notebook_executes(notebook):
    """Each notebook runs without error in its reduced mode (JR_JAX_NOTEBOOK_QUICK=1: shorter runs, smaller grids),
    which still checks every statement the notebook makes; the stored copies are executed at full size."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    saved = {k: os.environ.get(k) for k in ("MPLBACKEND", "JR_JAX_NOTEBOOK_QUICK")}
    os.environ.update(MPLBACKEND="Agg", JR_JAX_NOTEBOOK_QUICK="1")   # the kernel inherits this environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "jr_jax.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "regimes" in out.stdout


def test_network_command_extends_a_run_and_writes_sensors(tmp_path):
    """jr-jax network: 1 s then extended to 2 s in one folder equals 2 s in another; a lead field gives sensors."""
    import numpy as np

    lead = tmp_path / "lead.csv"
    np.savetxt(lead, np.eye(2, 4), delimiter=",")
    args = ["network", "--connectome", "example:4", "--quiet", "--lead-field", str(lead)]
    assert cli.main(args + ["--duration", "1", "--out", str(tmp_path / "a")]) == 0
    assert cli.main(args + ["--duration", "2", "--out", str(tmp_path / "a")]) == 0
    assert cli.main(args + ["--duration", "2", "--out", str(tmp_path / "b")]) == 0
    a, b = np.load(tmp_path / "a" / "network.npz"), np.load(tmp_path / "b" / "network.npz")
    np.testing.assert_array_equal(a["eeg_mV"], b["eeg_mV"])
    assert a["eeg_mV"].shape == (1000, 4)
    np.testing.assert_allclose(a["sensors_mV"], a["eeg_mV"][:, :2], rtol=1e-6)
    assert (tmp_path / "a" / "network.png").stat().st_size > 10_000
    assert cli.main(["network", "--connectome", "example:4", "--speed", "-1", "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("argv, named", [
    (["sweep", "--param", "Q=1:2:3"], "'Q'"),
    (["sweep", "--param", "A=3:4"], "--param"),
    (["sweep", "--param", "A=3:4:2", "--param", "A=5:6:2"], "--param A given twice"),
    (["sweep", "--param", "A=3:4:2", "--method", "rk5"], "'rk5'"),
    (["regimes", "--only", "sinusoid", "--dt", "0"], "--dt"),
    (["bifurcation", "--p-range", "400:0", "--n-sim", "0"], "--p-range"),
    (["fit", "--target", "{tmp}/missing.csv", "--kind", "erp"], "missing.csv"),
    (["fit", "--target", "{tmp}/erp.csv", "--kind", "psd", "--band", "abc"], "--band"),
    (["network", "--connectome", "example:x"], "--connectome"),
])
def test_a_bad_argument_is_one_line_exit_2_and_no_folder(tmp_path, capsys, argv, named):
    """An ordinary mistake: exit status 2, one ``error:`` line on stderr naming the argument, no traceback, no output
    folder."""
    import numpy as np

    np.savetxt(tmp_path / "erp.csv", np.c_[np.arange(50) / 500.0, np.zeros(50)], delimiter=",",
               header="time,value", comments="")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(tmp_path / "out"), "--quiet"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"jr-jax {argv[0]}: error: ") and named in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_sweep_help_shows_the_library_defaults(capsys):
    """The help's dt and transient come from the library (jr.DEFAULT_DT, jr.sweep's signature), not from literals."""
    import inspect

    import brainunit as u

    import jr_jax as jr

    with pytest.raises(SystemExit) as done:
        cli.main(["sweep", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    dt = f"{float(jr.DEFAULT_DT.to_decimal(u.ms)):g} ms"
    transient = inspect.signature(jr.sweep).parameters["transient"].default
    assert f"{dt})" in text.split("--dt DT ")[1].split("--method")[0]
    assert f"{float(transient.to_decimal(u.second)):g} s)" in text.split("--transient TRANSIENT ")[1].split("--chunk")[0]
    assert jr.DEFAULT_METHOD in text.split("--method METHOD ")[1].split("--quiet")[0]
