"""Data in: arrays, CSV and MNE objects become Recordings and Spectra with their sampling rate, t0 and unit."""

import brainunit as u
import numpy as np
import pytest

from jr_jax import data


def test_recording_from_array_and_quantity():
    rec = data.recording(np.arange(10.0), 250 * u.Hz, u.uvolt, t0=-0.1 * u.second)
    assert rec.fs_hz == 250.0 and rec.unit == u.uvolt
    np.testing.assert_allclose(rec.times, -0.1 + np.arange(10) / 250.0)
    rec = data.recording(np.arange(4.0) * u.mV, 1 * u.kHz)
    assert rec.unit == u.mV and rec.fs_hz == 1000.0


@pytest.mark.parametrize("values, match", [(np.array([1.0, np.nan, 2.0]), "NaN/Inf.*index 1"),
                                           (np.ones((2, 3)), "1-D"), (np.ones(1), "at least 2")])
def test_recording_rejects_bad_values(values, match):
    with pytest.raises(ValueError, match=match):
        data.recording(values, 100 * u.Hz)


def test_recording_rejects_bad_rate():
    with pytest.raises(Exception, match="sampling_rate"):
        data.recording(np.ones(5), 100 * u.second)
    with pytest.raises(ValueError, match="positive"):
        data.recording(np.ones(5), -1 * u.Hz)


def test_csv_time_column(tmp_path):
    t = -0.2 + np.arange(50) / 500.0
    path = tmp_path / "erp.csv"
    np.savetxt(path, np.c_[t, np.sin(t)], delimiter=",", header="time,value", comments="")
    rec = data.read_csv(path, unit=u.uvolt)
    assert abs(rec.fs_hz - 500.0) < 1e-6 and abs(rec.t0 + 0.2) < 1e-12
    np.testing.assert_allclose(rec.values, np.sin(t))
    with pytest.raises(ValueError, match="not"):
        data.read_csv(path, sampling_rate=1000 * u.Hz)


def test_csv_nonuniform_time_and_single_column(tmp_path):
    path = tmp_path / "bad.csv"
    np.savetxt(path, np.c_[[0.0, 0.001, 0.003, 0.004], np.ones(4)], delimiter=",", header="time,v", comments="")
    with pytest.raises(ValueError, match="uniformly"):
        data.read_csv(path)
    one = tmp_path / "one.csv"
    np.savetxt(one, np.arange(6.0))
    with pytest.raises(ValueError, match="sampling_rate"):
        data.read_csv(one)
    assert data.read_csv(one, sampling_rate=100 * u.Hz).values.shape == (6,)


def test_csv_spectrum(tmp_path):
    f = np.arange(0, 50, 0.5)
    path = tmp_path / "psd.csv"
    np.savetxt(path, np.c_[f, 1.0 / (1 + f)], delimiter=",", header="frequency,psd", comments="")
    spec = data.read_csv(path)
    assert isinstance(spec, data.Spectrum) and spec.df == 0.5
    with pytest.raises(ValueError, match="same length"):
        data.spectrum(f, np.ones(3))
    with pytest.raises(ValueError, match="uniformly"):
        data.spectrum(np.r_[f, 60.0], np.ones(f.size + 1))
    with pytest.raises(ValueError, match="positive"):
        data.spectrum(f, np.r_[0.0, np.ones(f.size - 1)])


def test_mne_evoked():
    mne = pytest.importorskip("mne")
    info = mne.create_info(["Cz", "Pz"], sfreq=1000.0, ch_types="eeg")
    x = np.vstack([np.sin(np.arange(300) / 20.0), np.cos(np.arange(300) / 20.0)]) * 1e-6
    evoked = mne.EvokedArray(x, info, tmin=-0.1)
    rec = data.from_mne(evoked, pick="Pz")
    assert rec.unit == u.volt and rec.fs_hz == 1000.0 and abs(rec.t0 + 0.1) < 1e-12
    np.testing.assert_allclose(rec.values, x[1])
    both = data.from_mne(evoked)                     # no pick: all (good) EEG channels, as channels
    assert both.channels == ("Cz", "Pz") and both.values.shape == (300, 2) and both.unit == u.volt
    np.testing.assert_allclose(both.values, x.T)
    with pytest.raises(ValueError, match="not a channel"):
        data.from_mne(evoked, pick="Oz")
    raw = mne.io.RawArray(x[:1], mne.create_info(["Cz"], 250.0, "eeg"), verbose=False)
    rec = data.from_mne(raw)
    assert rec.fs_hz == 250.0 and rec.t0 == 0.0
