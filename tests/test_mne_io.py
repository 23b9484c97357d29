"""MNE in and out: sensor EEG becomes an MNE Evoked or Raw with a montage (to_mne) and comes back with its values,
names and times (from_mne); multi-channel Recordings check their channels, and picks name what is missing."""

import dataclasses
import subprocess
import sys

import brainunit as u
import numpy as np
import pytest

from jr_jax import data, export

mne = pytest.importorskip("mne")


@dataclasses.dataclass(frozen=True)
class ToyLeadField:
    """What to_mne reads of a lead field: sensor names and positions (m, head coordinates)."""

    sensors: tuple
    positions: np.ndarray


NAMES = ("Fz", "C3", "Cz", "C4", "Pz", "Oz")
POSITIONS = np.array([[0.0, 0.06, 0.07], [-0.07, 0.0, 0.065], [0.0, 0.0, 0.1], [0.07, 0.0, 0.065],
                      [0.0, -0.06, 0.07], [0.0, -0.1, 0.02]])
LF = ToyLeadField(NAMES, POSITIONS)
FS = 500.0


def sensor_eeg(n=100):
    """(n, 6) numbers in mV: a 10 Hz sine scaled by 1 … 6 per sensor, plus the sensor's index."""
    t = np.arange(n) / FS
    return np.sin(2 * np.pi * 10 * t)[:, None] * np.arange(1.0, 7.0) + np.arange(6.0)


def test_evoked_round_trip_values_names_positions_and_times():
    x = sensor_eeg()
    evoked = export.to_mne(x * u.mV, LF, sampling_rate=FS * u.Hz, t0=-0.1 * u.second)
    assert isinstance(evoked, mne.EvokedArray) and evoked.nave == 1
    assert evoked.ch_names == list(NAMES) and evoked.info["sfreq"] == FS
    assert evoked.times[0] == pytest.approx(-0.1) and evoked.times[1] - evoked.times[0] == pytest.approx(0.002)
    assert evoked.data[3, 0] == pytest.approx(3.0e-3)          # C4 at t0: 0 + 3 mV = 0.003 V
    assert evoked.data[5, 0] == pytest.approx(5.0e-3)
    montage = evoked.get_montage().get_positions()
    assert montage["coord_frame"] == "head"
    np.testing.assert_allclose([montage["ch_pos"][n] for n in NAMES], POSITIONS)
    rec = data.from_mne(evoked)
    assert rec.channels == NAMES and rec.unit == u.volt and rec.fs_hz == FS and rec.t0 == pytest.approx(-0.1)
    assert rec.values[0, 3] == pytest.approx(0.003) and rec.values.shape == (100, 6)
    np.testing.assert_allclose(rec.values * 1e3, x, rtol=1e-12, atol=1e-15)     # V back to mV
    np.testing.assert_allclose(rec.channel("Oz").values, x[:, 5] * 1e-3)


def test_raw_round_trip_with_times_and_a_list_pick():
    x = sensor_eeg()
    times = (1.0 + np.arange(100) / FS) * u.second          # e.g. result.time after a 1 s transient
    raw = export.to_mne(x * u.mV, LF, times=times, kind="raw")
    assert isinstance(raw, mne.io.RawArray) and raw.info["sfreq"] == pytest.approx(FS)
    assert raw.first_time == pytest.approx(1.0)             # MNE's raw.times start at 0; the offset is first_time
    rec = data.from_mne(raw, pick=["Oz", "Fz"])
    assert rec.channels == ("Oz", "Fz")
    np.testing.assert_allclose(rec.values, x[:, [5, 0]] * 1e-3)


def test_recording_in_is_matched_by_name_and_converted():
    rec = data.recording(np.array([[10.0, -20.0], [30.0, 40.0], [0.0, 5.0]]), 250 * u.Hz, u.uvolt, t0=0.2,
                         channels=["Pz", "C3"])
    evoked = export.to_mne(rec, LF)
    assert evoked.ch_names == ["Pz", "C3"] and evoked.times[0] == pytest.approx(0.2)
    np.testing.assert_allclose(evoked.data, [[10e-6, 30e-6, 0.0], [-20e-6, 40e-6, 5e-6]])
    np.testing.assert_allclose(list(evoked.get_montage().get_positions()["ch_pos"]["C3"]), POSITIONS[1])
    back = data.from_mne(evoked)
    np.testing.assert_allclose(back.values * 1e6, rec.values, atol=1e-9)


def test_topomap_and_joint_plot_run():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evoked = export.to_mne(sensor_eeg() * u.mV, LF, sampling_rate=FS * u.Hz)
    fig = evoked.plot_topomap(times=[0.02, 0.05], show=False)
    assert len(fig.axes) >= 2
    fig = evoked.plot_joint(times=[0.025], show=False)
    assert len(fig.axes) >= 2
    plt.close("all")


def test_from_mne_takes_good_eeg_channels_only():
    info = mne.create_info(["Fz", "Cz", "EOG1", "Pz", "STI"], 200.0, ["eeg", "eeg", "eog", "eeg", "stim"])
    info["bads"] = ["Cz"]
    x = np.arange(50.0).reshape(5, 10) * 1e-6
    raw = mne.io.RawArray(x, info, verbose=False)
    rec = data.from_mne(raw)
    assert rec.channels == ("Fz", "Pz")
    np.testing.assert_allclose(rec.values, x[[0, 3]].T)
    assert data.from_mne(raw, pick=["Cz", "Fz"]).channels == ("Cz", "Fz")     # an explicit pick keeps a bad one
    assert data.from_mne(raw, pick="EOG1").values.shape == (10,)
    info = mne.create_info(["EOG1", "STI"], 200.0, ["eog", "stim"])
    with pytest.raises(ValueError, match="no good EEG channel"):
        data.from_mne(mne.io.RawArray(np.zeros((2, 10)), info, verbose=False))
    with pytest.raises(ValueError, match="different units"):
        data.from_mne(raw, pick=["Fz", "STI"])


@pytest.mark.parametrize("pick, match", [("Oz", "not a channel"), (7, "index below 5"), ([], "non-empty list"),
                                         (["Fz", "Fz"], "unique"), (["Fz", "Xx"], "'Xx' is not a channel")])
def test_from_mne_bad_picks(pick, match):
    info = mne.create_info(["Fz", "Cz", "EOG1", "Pz", "STI"], 200.0, ["eeg", "eeg", "eog", "eeg", "stim"])
    raw = mne.io.RawArray(np.zeros((5, 10)), info, verbose=False)
    with pytest.raises(ValueError, match=match):
        data.from_mne(raw, pick=pick)


@pytest.mark.parametrize("values, channels, err, match", [
    (np.ones((5, 3)), ["a", "b"], ValueError, r"shape \(time, 2\) for 2 channel.*got shape \(5, 3\)"),
    (np.ones(5), ["a"], ValueError, r"shape \(time, 1\)"),
    (np.ones((1, 2)), ["a", "b"], ValueError, "at least 2 samples"),
    (np.ones((5, 2)), ["a", "a"], ValueError, r"unique; \['a'\]"),
    (np.ones((5, 2)), ["a", " "], ValueError, "non-empty strings"),
    (np.ones((5, 1)), "a", TypeError, "list of channel names"),
    (np.ones((5, 1)), [], ValueError, "at least one channel"),
])
def test_multichannel_recording_rejects(values, channels, err, match):
    with pytest.raises(err, match=match):
        data.recording(values, 100 * u.Hz, channels=channels)


def test_multichannel_nan_names_channel_and_sample():
    x = np.ones((10, 3))
    x[7, 1], x[9, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"channel 'Pz' contains 2 NaN/Inf value\(s\), the first at sample index 7"):
        data.recording(x, 100 * u.Hz, channels=["Cz", "Pz", "Oz"])


def test_pick_and_channel():
    x = np.arange(12.0).reshape(4, 3)
    rec = data.recording(x * u.mV, 100 * u.Hz, channels=("Cz", "Pz", "Oz"), t0=-0.01)
    two = rec.pick(["Oz", "Cz"])
    assert two.channels == ("Oz", "Cz") and two.unit == u.mV and two.t0 == -0.01
    np.testing.assert_array_equal(two.values, x[:, [2, 0]])
    one = rec.channel("Pz")
    assert one.channels is None and one.values.shape == (4,)
    np.testing.assert_array_equal(one.values, x[:, 1])
    with pytest.raises(ValueError, match=r"\['Fp1', 'T7'\] is/are not channel"):
        rec.pick(["Cz", "Fp1", "T7"])
    with pytest.raises(ValueError, match="unique"):
        rec.pick(["Cz", "Cz"])
    with pytest.raises(TypeError, match="one channel name"):
        rec.channel(0)
    with pytest.raises(ValueError, match="one unnamed channel"):
        data.recording(np.ones(4), 100 * u.Hz).pick(["Cz"])


@pytest.mark.parametrize("call, err, match", [
    (lambda x: export.to_mne(x[:, :5] * u.mV, LF, sampling_rate=FS * u.Hz), ValueError,
     r"shape \(time, 6\) for the 6 sensors.*got shape \(100, 5\)"),
    (lambda x: export.to_mne(x.T * u.mV, LF, sampling_rate=FS * u.Hz), ValueError, "transposed"),
    (lambda x: export.to_mne(x * u.mV, LF), ValueError, "needs the sampling rate"),
    (lambda x: export.to_mne(x * u.mV, LF, sampling_rate=FS * u.Hz, kind="epochs"), ValueError,
     r"kind must be one of \('evoked', 'raw'\); got 'epochs'"),
    (lambda x: export.to_mne(x * u.Hz, LF, sampling_rate=FS * u.Hz), Exception, "voltage unit"),
    (lambda x: export.to_mne(x, LF, sampling_rate=FS * u.Hz), TypeError, "Quantity of shape"),
    (lambda x: export.to_mne(x * u.mV, LF, sampling_rate=FS * u.Hz, times=np.arange(100) / FS), ValueError,
     "not both"),
    (lambda x: export.to_mne(x * u.mV, LF, times=np.r_[0.0, np.cumsum(np.ones(99))] ** 2), ValueError,
     "uniformly"),
    (lambda x: export.to_mne(x * u.mV, ToyLeadField(NAMES, POSITIONS * 1e3), sampling_rate=FS * u.Hz), ValueError,
     "millimetres"),
    (lambda x: export.to_mne(x * u.mV, ToyLeadField(NAMES, POSITIONS[:5]), sampling_rate=FS * u.Hz), ValueError,
     r"shape \(6, 3\)"),
    (lambda x: export.to_mne(x * u.mV, object(), sampling_rate=FS * u.Hz), TypeError, "lead field"),
    (lambda x: export.to_mne(data.recording(x, FS * u.Hz, channels=NAMES), LF), Exception, "voltage unit"),
    (lambda x: export.to_mne(data.recording(x, FS * u.Hz, u.mV, channels=NAMES), LF, sampling_rate=FS * u.Hz),
     ValueError, "carries its sampling rate"),
    (lambda x: export.to_mne(data.recording(x[:, :1], FS * u.Hz, u.mV, channels=["T9"]), LF), ValueError,
     r"\['T9'\] are not sensors"),
])
def test_to_mne_errors(call, err, match):
    with pytest.raises(err, match=match):
        call(sensor_eeg())


def test_a_real_leadfield_and_the_head_frame_check():
    from jr_jax import leadfield

    names = ("Fpz", "C3", "C4", "Oz")
    pos = np.array([[0.0, 0.09, 0.04], [-0.07, 0.0, 0.065], [0.07, 0.0, 0.065], [0.0, -0.1, 0.02]])
    lf = leadfield.LeadField(np.ones((4, 2)), names, pos, ("r0", "r1"))
    evoked = export.to_mne(np.ones((3, 4)) * u.uvolt, lf, sampling_rate=100 * u.Hz, nave=20)
    assert evoked.nave == 20 and evoked.data[0, 0] == pytest.approx(1e-6)
    brainstorm = pos[:, [1, 0, 2]] * [1, -1, 1]          # x to the nose, y to the left ear
    with pytest.raises(ValueError, match="MNE's head frame.*become \\(−y, x, z\\)"):
        export.to_mne(np.ones((3, 4)) * u.uvolt, leadfield.LeadField(np.ones((4, 2)), names, brainstorm, ("r0", "r1")),
                      sampling_rate=100 * u.Hz)
    raw = export.to_mne(np.ones((3, 4)) * u.uvolt, list(names), sampling_rate=100 * u.Hz, kind="raw")
    assert raw.get_montage() is None and raw.ch_names == list(names)


def test_to_mne_without_mne_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mne", None)
    with pytest.raises(ImportError, match=r'pip install "jr_jax\[mne\]"'):
        export.to_mne(sensor_eeg() * u.mV, LF, sampling_rate=FS * u.Hz)


def test_importing_jr_jax_does_not_import_mne():
    code = "import sys, jr_jax, jr_jax.data, jr_jax.export; print('mne' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
