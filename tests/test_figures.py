"""What the figures and the command's messages tell a reader: axis labels with units, titles that state what was
held fixed and whether a claim held, the limit-cycle branches of the bifurcation diagram, a help that needs no JAX."""

import csv
import subprocess
import sys

import brainunit as u
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import analysis, cli, cli_commands, cli_options, plot

from . import reference as R


@pytest.fixture
def figures(monkeypatch):
    """The figures a command saves, by file name (kept open for inspection instead of written)."""
    import matplotlib

    matplotlib.use("Agg")
    saved = {}
    monkeypatch.setattr(cli_commands, "save", lambda fig, path, dpi: saved.__setitem__(path.name, fig))
    return saved


def test_limit_cycle_extrema_at_220_hz_lie_on_the_limit_cycle(capsys):
    """At p = 220 Hz the only rest state is an unstable focus: runs started beside it reach the limit cycle, whose
    extremes come from an independent DOP853 solution after a transient."""
    t, y = R.solve(8.0, 1e-4)
    e = (y[1] - y[2])[t > 4.0]
    ref_min, ref_max = e.min(), e.max()
    ptp = ref_max - ref_min
    assert ptp == pytest.approx(2.9467, abs=5e-3)
    ex = analysis.limit_cycle_extrema(jr.JRParams(), np.array([220.0]) * u.Hz, progress=True)
    for start in analysis.START_NAMES:
        lo, hi = (float(ex[start][k].to_decimal(u.mV)[0]) for k in ("min", "max"))
        assert abs(lo - ref_min) <= 0.02 * ptp and abs(hi - ref_max) <= 0.02 * ptp, (start, lo, hi)
    err = capsys.readouterr().err
    assert "EEG min/max from the zero state" in err and "highest rest state + 0.5 mV in y1" in err


def test_limit_cycle_extrema_refuse_an_unknown_start():
    with pytest.raises(ValueError, match="initial_states"):
        analysis.limit_cycle_extrema(jr.JRParams(), np.array([220.0]) * u.Hz, initial_states=("high",))


def test_bifurcation_diagram_names_its_simulated_branches():
    import matplotlib

    matplotlib.use("Agg")
    curve = analysis.equilibrium_curve(jr.JRParams(), 200)
    extrema = {"p": np.array([100.0, 220.0]) * u.Hz,
               **{s: {"min": np.array([6.0, 6.1]) * u.mV, "max": np.array([7.0, 9.0]) * u.mV}
                  for s in analysis.START_NAMES}}
    ax = plot.bifurcation_diagram(curve, extrema)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("simulated EEG min/max" in t for t in texts) == 3, texts
    assert ax.get_ylabel() == "EEG = y1 − y2 (mV)" and ax.get_xlabel() == "input p (Hz)"


def test_regime_figure_time_in_seconds_transient_marked_claim_in_title(tmp_path, figures):
    assert cli.main(["regimes", "--only", "classic_alpha", "--out", str(tmp_path), "--quiet"]) == 0
    fig = figures["classic_alpha.png"]
    assert fig._suptitle.get_text().endswith("claim holds")
    assert fig.axes[3].get_xlabel() == "time (s)"
    assert fig.axes[0].get_xlim()[1] == pytest.approx(10.0, abs=0.01)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"first {jr.regimes.MEASURE_AFTER:g} s: transient, not measured"]


def test_regime_figure_says_when_a_claim_fails():
    import matplotlib

    matplotlib.use("Agg")
    res = jr.simulate(jr.JRParams(), duration=2 * u.second, drive=jr.drives.constant(220 * u.Hz),
                      record=jr.Record(("y0", "y1", "y2", "eeg")))
    fig = plot.regime_figure(res, "a title", claim_holds=False)
    assert fig._suptitle.get_text() == "a title — claim does NOT hold"


def test_sweep_map_title_plain_labels_and_resume_notice(tmp_path, figures, capsys):
    argv = ["sweep", "--param", "A=3:4:2", "--param", "B=20:24:2", "--duration", "2", "--transient", "0.5",
            "--chunk-size", "2", "--out", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    title = figures["regime_map.png"].axes[0].get_title()
    assert title == "p = 220 Hz, σ = 0 Hz·√s; 2 s per set after a 0.5 s transient"
    err = capsys.readouterr().err
    assert "np.str_" not in err and "labels: " in err and "resuming" not in err
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert f"resuming: 4 of 4 sets already done in {tmp_path / 'chunks'}" in err


def test_network_figure_names_regions_and_fc_csv_has_labels(tmp_path, figures, capsys):
    argv = ["network", "--connectome", "example:4", "--duration", "1", "--out", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    labels = list(jr.connectome.example(4).labels)
    fig = figures["network.png"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == labels
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == labels
    assert fig.axes[0].get_ylabel() == "EEG PSD (mV²/Hz)"
    rows = list(csv.reader(open(tmp_path / "fc.csv")))
    assert rows[0] == ["region"] + labels and [r[0] for r in rows[1:]] == labels
    fc = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(np.diag(fc), 1.0, atol=1e-6)
    assert "resuming" not in capsys.readouterr().err
    assert cli.main(argv[:4] + ["2"] + argv[5:]) == 0          # extends the run: resumes from the saved state
    assert "resuming: " in capsys.readouterr().err


@pytest.mark.parametrize("kind, unit, label", [("erp", "µV", "ERP (µV)"), ("psd", "mV", "PSD (mV²/Hz)"),
                                               ("psd", "arbitrary units", "PSD (arbitrary units)")])
def test_fit_figure_y_label_has_the_unit(kind, unit, label):
    fig = plot.fit_figure(kind, np.arange(1.0, 5.0), np.ones(4), np.ones(4), unit)
    assert fig.axes[0].get_ylabel() == label
    assert cli_commands.UNIT_LABELS["uv"] == "µV" and set(cli_commands.UNIT_LABELS) == set(cli_options.UNIT_NAMES)


def test_help_defaults_table_equals_the_library():
    assert cli_options.LIBRARY_DEFAULTS == cli_commands.library_defaults()


def test_help_and_a_mistake_import_no_jax():
    """``jr-jax --help`` (each command's too) and a mistaken option answer without importing JAX, brainunit,
    matplotlib or the simulator."""
    code = ("import sys, contextlib, io\nfrom jr_jax import cli\n"
            "for argv in (['--help'], ['sweep', '--help'], ['fit', '--help'], ['sweep', '--dt', '0'], "
            "['fit-network', '--help'], ['fit-network', '--target', 'x.csv', '--stimulus', 'rV2', '--free', 'H']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.redirect_stderr(io.StringIO()):\n"
            "        cli.main(argv)\n"
            "print(sorted(m for m in ('jax', 'brainunit', 'matplotlib', 'jr_jax.simulation') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
