"""``jr-jax fit-network`` end to end on The Virtual Brain's 76-region connectome and 63-sensor lead field: an evoked
CSV simulated from a known coupling, three optimiser steps, fit.json against the library's own loss, the figures,
a resumed run; and each bad input one error line (exit 2) naming its option, before anything is fitted.

The problem is small (100 ms at 1 kHz after a 0.1 s transient, dt = 1 ms, Euler steps, G free) so that the two runs
take about 35 s on two CPU cores: compiling the fit and its Hessian is most of it."""

import json
import subprocess
import sys

import numpy as np
import pytest

import jr_jax as jr
from jr_jax import cli

TRANSIENT, T0, FS = 0.1, -0.02, 1000.0     # s of rest, the epoch's first time (s), samples per s
TRUE_G, START_G = 0.13, 0.1                 # the coupling that made the data; the command's default start
STIM = "rV2"


def _write_csv(path, t, values, channels):
    np.savetxt(path, np.c_[t, values], delimiter=",", header="time," + ",".join(channels), comments="", fmt="%.9g")


@pytest.fixture(scope="module")
def evoked(tmp_path_factory):
    """evoked.csv (63 channels from G = 0.13, stimulus at time 0) and the loss of the command's start model on it,
    computed with the library (the CLI's defaults: p = 90 Hz, peak 300 Hz, width 5 ms, gain 1, G = 0.1)."""
    import brainunit as u

    from jr_jax import connectome, data, drives, leadfield, network, sensor_targets as st, whole_brain as wb

    folder = tmp_path_factory.mktemp("fit_network")
    con, lf = connectome.tvb(76), leadfield.tvb_eeg65()

    def model(g):
        net = network.network(con, coupling=g, lead_field=lf)
        drive = drives.constant(90 * u.Hz) + wb.stimulus(net, STIM, 300 * u.Hz, onset=(TRANSIENT - T0) * u.second)
        return wb.network_model(net, drive=drive)

    clean = model(TRUE_G).predict(0.099 * u.second, sampling_rate=FS * u.Hz, dt=1 * u.ms, method="euler",
                                  transient=TRANSIENT * u.second)
    t = T0 + np.arange(clean.values.shape[0]) / FS
    _write_csv(folder / "evoked.csv", t, clean.values, clean.channels)
    # the recording as the command reads it back (9 significant digits), in arbitrary units: a scale is profiled
    table = np.loadtxt(folder / "evoked.csv", delimiter=",", skiprows=1)
    rec = data.recording(table[:, 1:], FS * u.Hz, None, t0=T0, channels=clean.channels)
    start = model(START_G)
    target = st.network_erp_target(rec, start, dt=1 * u.ms, method="euler", transient=TRANSIENT * u.second)
    return {"folder": folder, "csv": folder / "evoked.csv", "start_loss": float(target(start)),
            "channels": clean.channels, "t": t, "values": clean.values, "n_regions": con.n_regions}


def _argv(ev, out, *extra):
    return ["fit-network", "--target", str(ev["csv"]), "--connectome", "tvb:76", "--lead-field", "tvb:eeg65",
            "--stimulus", STIM, "--free", "G", "--steps", "3", "--dt", "1", "--method", "euler", "--transient",
            str(TRANSIENT), "--out", str(out), "--quiet", *extra]


@pytest.fixture(scope="module")
def fitted(evoked):
    out = evoked["folder"] / "out"
    assert cli.main(_argv(evoked, out)) == 0
    return out


def test_fit_json_holds_the_settings_and_a_loss_below_the_start(fitted, evoked):
    doc = json.loads((fitted / "fit.json").read_text())
    assert doc["command"] == "fit-network"
    s = doc["settings"]
    assert s["channels"] == list(evoked["channels"]) and len(s["channels"]) == 63
    assert s["n_regions"] == 76 and s["stimulus"] == [STIM] and s["free"] == ["G"] and s["per_region"] == {}
    assert s["scale"] is True and s["unit"] is None and s["t0_s"] == pytest.approx(T0)
    assert (s["coupling"], s["p_hz"], s["stimulus_peak_hz"], s["gain"]) == (START_G, 90.0, [300.0], 1.0)
    history = np.loadtxt(fitted / "history.csv", delimiter=",")
    assert history.shape == (3,) and doc["steps"] == 3
    # the first step's loss is the start's, as the library computes it; the fit then goes down
    assert history[0] == pytest.approx(evoked["start_loss"], rel=1e-3)
    assert np.isfinite(doc["loss"]) and doc["loss"] < 0.5 * evoked["start_loss"]
    assert set(doc["params"]) == {"G"} and set(doc["stderr"]) == {"G"}
    g, se = doc["params"]["G"][0], doc["stderr"]["G"][0]
    assert START_G < g < TRUE_G + 0.01 and 0 < se < 0.01, (g, se)    # three steps of adam move G towards 0.13
    assert doc["identifiable"] is True and doc["warnings"] == []
    assert len(doc["nuisance"]["baseline"]) == 63


def test_figures_and_the_fitted_csv(fitted, evoked):
    for name in ("sensors.png", "topomap.png", "regions.png"):
        assert (fitted / name).stat().st_size > 10_000, name
    rows = np.loadtxt(fitted / "fitted.csv", delimiter=",", skiprows=1)
    header = (fitted / "fitted.csv").read_text().splitlines()[0].split(",")
    assert header == ["time"] + list(evoked["channels"])
    np.testing.assert_allclose(rows[:, 0], evoked["t"], atol=1e-9)
    y = evoked["values"]
    assert np.abs(rows[:, 1:] - y).max() < 0.1 * np.abs(y - y.mean(0)).max()


def test_a_second_run_resumes(fitted, evoked, capsys):
    state = fitted / "state" / json.loads((fitted / "state" / "manifest.json").read_text())["fit_state"]["file"]
    before, doc = state.stat().st_mtime_ns, json.loads((fitted / "fit.json").read_text())
    capsys.readouterr()
    assert cli.main(_argv(evoked, fitted)) == 0
    assert "resuming: 3 of 3 steps already done" in capsys.readouterr().err
    assert state.stat().st_mtime_ns == before
    again = json.loads((fitted / "fit.json").read_text())
    assert again["loss"] == doc["loss"] and again["params"] == doc["params"]
    # more steps: a different fit, refused in this folder (its checkpoints are kept)
    assert cli.main(_argv(evoked, fitted)[:-3] + ["--steps", "4", "--out", str(fitted), "--quiet"]) == 2
    assert state.exists()


# -- bad inputs ---------------------------------------------------------------------------------------------------

def _bad_files(ev):
    """Files the mistakes point at: a channel renamed, no time column, a lead field of the wrong shape, a .fif."""
    folder = ev["folder"]
    channels = ("Xx1",) + tuple(ev["channels"][1:])
    _write_csv(folder / "renamed.csv", ev["t"], ev["values"], channels)
    np.savetxt(folder / "notime.csv", ev["values"][:, :3], delimiter=",", header="Fp1,Fp2,F4", comments="")
    np.savetxt(folder / "lead.csv", np.ones((3, 76)), delimiter=",")
    np.save(folder / "lead.npy", np.ones((63, 76)))
    (folder / "garbage.fif").write_bytes(b"not a fif file at all")


MISTAKES = [
    (["--connectome", "tvb:77"], ["--connectome", "expected tvb:N with N one of 66, 68, 76, 96, 192", "'tvb:77'"]),
    (["--connectome", "nowhere"], ["--connectome", "expected tvb:N", "got 'nowhere'", "no such file"]),
    (["--connectome", "example:8"], ["--lead-field", "tvb:eeg65 maps onto TVB's connectomes of 76 or 192",
                                     "has 8"]),
    (["--stimulus", "rV9"], ["--stimulus: 'rV9' is not a region of this network", "labels"]),
    (["--stimulus", "V2"], ["--stimulus: 'V2' is not a region", "similar", "rV2"]),
    (["--target", "{dir}/renamed.csv"], ["--target {dir}/renamed.csv", "['Xx1']",
                                         "not sensors of --lead-field tvb:eeg65", "expected names among its 63"]),
    (["--target", "{dir}/notime.csv"], ["--target: {dir}/notime.csv", "expected a header 'time'", "'Fp1,Fp2,F4'"]),
    (["--target", "{dir}/missing.csv"], ["--target: {dir}/missing.csv: No such file"]),
    (["--target", "{dir}/garbage.fif"], ["--target", "{dir}/garbage.fif"]),
    (["--target", "{dir}/garbage.fif", "--unit", "uV"], ["--unit applies to a CSV target", "--unit uv"]),
    (["--lead-field", "{dir}/lead.csv"], ["--lead-field", "expected a matrix of shape (63, 76)", "got shape (3, 76)"]),
    (["--lead-field", "eeg65"], ["--lead-field", "expected tvb:eeg65, a .npy file or a .csv file", "'eeg65'"]),
    (["--free", "G,H"], ["argument --free", "got 'G,H'"]),
    (["--free", "G:rV2"], ["argument --free", "(at 'G:rV2')"]),
    (["--free", "A:"], ["argument --free", "(at 'A:')"]),
    (["--free", "A:rV2+rV2"], ["argument --free", "a region twice"]),
    (["--free", "G,G"], ["argument --free", "each name once"]),
    (["--free", "A:rV9"], ["--free: A:rV9: 'rV9' is not a region"]),
    (["--free", "G,gain"], ["--free gain", "the target's scale is fitted"]),
    (["--stimulus-peak", "300,200"], ["--stimulus-peak", "one per stimulated region (1)"]),
    (["--stimulus-peak", "-3"], ["argument --stimulus-peak", "got '-3'"]),
    (["--onset-ms", "500"], ["--onset-ms 500", "expected a time within the simulation", "79 ms"]),
    (["--coupling", "-1"], ["argument --coupling"]),
]


@pytest.fixture
def nothing_fits(monkeypatch):
    """jr.fit fails the test if called: every mistake must be found before the fit."""
    def fit(*args, **kwargs):
        raise AssertionError("the fit started before the mistake was reported")
    monkeypatch.setattr(jr.fitting, "fit", fit)


@pytest.mark.parametrize("extra, fragments", MISTAKES, ids=[" ".join(e) for e, _ in MISTAKES])
def test_a_mistake_is_one_error_line_exit_2_and_no_folder(evoked, tmp_path, capsys, nothing_fits, extra, fragments):
    _bad_files(evoked)
    folder = str(evoked["folder"])
    argv = _argv(evoked, tmp_path / "new" / "out")
    for i in range(0, len(extra), 2):       # replace the option's value (or add the option)
        name, value = extra[i], extra[i + 1].replace("{dir}", folder)
        argv = argv[:argv.index(name) + 1] + [value] + argv[argv.index(name) + 2:] if name in argv \
            else argv + [name, value]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("jr-jax fit-network: error: "), err
    for fragment in fragments:
        assert fragment.replace("{dir}", folder) in lines[0], (fragment, lines[0])
    assert not (tmp_path / "new").exists()


def test_missing_tvb_data_names_the_extra(evoked, tmp_path, capsys, nothing_fits, monkeypatch):
    monkeypatch.setitem(sys.modules, "tvb_data", None)      # import tvb_data now raises ModuleNotFoundError
    assert cli.main(_argv(evoked, tmp_path / "out")) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("jr-jax fit-network: error: --connectome: ") and 'pip install "jr_jax[tvb]"' in line, line


def test_a_fif_target_and_a_matrix_lead_field_are_read(evoked, tmp_path):
    """A .fif Evoked (MNE's volts, its channels and times) and a .npy lead field whose rows are those channels."""
    import brainunit as u

    from jr_jax import cli_network, data, export, leadfield

    lf = leadfield.tvb_eeg65()
    rec = data.recording(evoked["values"] * 1e-6, FS * u.Hz, u.volt, t0=T0, channels=evoked["channels"])
    export.to_mne(rec, lf).save(tmp_path / "evoked-ave.fif", verbose=False)
    got, info = cli_network.read_target(str(tmp_path / "evoked-ave.fif"), None)
    assert got.channels == evoked["channels"] and got.unit == u.volt and got.t0 == pytest.approx(T0)
    np.testing.assert_allclose(got.values, rec.values, rtol=1e-6)
    assert info["sfreq"] == FS
    _bad_files(evoked)
    args = cli.parser().parse_args(_argv(evoked, tmp_path / "o", "--lead-field", str(evoked["folder"] / "lead.npy")))
    con = jr.connectome.tvb(76)
    lead = cli_network.load_lead_field(args.lead_field, con, args, got.channels)
    net = cli_network.build_network(args, con, lead, got.channels)
    assert net.sensor_names == evoked["channels"] and np.asarray(net.lead_field).shape == (63, 76)


def test_without_mne_a_fif_is_an_error_and_the_topomap_is_skipped(evoked, tmp_path, capsys, nothing_fits,
                                                                    monkeypatch):
    """MNE is optional: a .fif target names the extra to install; a CSV fit only goes without its topomap."""
    from jr_jax import cli_network

    monkeypatch.setitem(sys.modules, "mne", None)          # import mne now raises ImportError
    argv = _argv(evoked, tmp_path / "out")
    argv[argv.index("--target") + 1] = str(tmp_path / "evoked-ave.fif")
    assert cli.main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("jr-jax fit-network: error: --target ") and 'pip install "jr_jax[mne]"' in line, line
    fig, why = cli_network.topomap_figure(None, None, "mV", None, None)
    assert fig is None and "MNE-Python is not installed" in why
