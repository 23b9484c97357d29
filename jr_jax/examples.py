"""Example data that the package makes itself, so that every example has a file to read: an ERP CSV simulated from
known parameters, and a plausible EEG lead field."""

from __future__ import annotations

import math
from pathlib import Path

import brainunit as u
import numpy as np

from . import drives
from .data import recording
from .params import JRParams
from .targets import erp_target


def erp_csv(path, *, params=None, p=60.0, peak=200.0, width=5.0, onset=0.1, duration=0.3,
                    sampling_rate=500.0, transient=1.0, noise=0.0, seed: int = 0):
    """Write an ERP simulated from known parameters to a CSV file, as ``jr-jax fit --kind erp`` and
    :func:`jr_jax.data.read_csv` reads it, and return its path (a :class:`pathlib.Path`).

    The column rests at a constant input ``p`` (Hz) for ``transient`` seconds from the zero state; the epoch then
    starts (time 0 of the file) and a :func:`jr_jax.drives.pulse` of ``peak`` Hz and ``width`` ms starts ``onset``
    seconds into it (the CLI's defaults: 60 Hz, 200 Hz, the library's 5 ms, 0.1 s, and ``erp_target``'s 1 s
    transient). The file has a header ``time,eeg_uV`` and ``duration · sampling_rate`` rows: time in seconds from
    the epoch start, the EEG (y1 − y2) in µV, plus Gaussian measurement noise of SD ``noise`` µV drawn with
    ``seed``. ``params`` defaults to the truth the fitting tests recover: ``JRParams(A=3.6 mV, B=25 mV, a=90 Hz,
    b=55 Hz)``. RK4 at dt = 0.5 ms (``sampling_rate`` must make the sample interval a whole number of steps).
    """
    if params is None:
        params = JRParams(A=3.6 * u.mV, B=25.0 * u.mV, a=90.0 * u.Hz, b=55.0 * u.Hz)
    fs, dt = float(sampling_rate), 0.5e-3
    every = round(1.0 / (fs * dt))
    if every < 1 or not math.isclose(every * dt * fs, 1.0, rel_tol=1e-9):
        raise ValueError(f"sampling_rate={sampling_rate!r} Hz: its interval must be a whole number of 0.5 ms steps "
                         f"(e.g. 500, 1000 or 2000 Hz).")
    n = int(round(duration * fs))
    if n < 8:
        raise ValueError(f"duration={duration!r} s at {fs:g} Hz gives {n} samples; an ERP needs at least 8.")
    drive = drives.constant(p * u.Hz) + drives.pulse((transient + onset) * u.second, peak * u.Hz, width * u.ms)
    # the objective's own simulation, so the file's samples are exactly what erp_target compares with
    target = erp_target(recording(np.arange(n, dtype=np.float64), fs * u.Hz), drive, dt=dt * u.second,
                           transient=transient * u.second)
    eeg_uv = np.asarray(target.simulate(params), dtype=np.float64) * 1000.0
    if noise:
        eeg_uv = eeg_uv + np.random.default_rng(seed).normal(0.0, float(noise), eeg_uv.shape)
    times = np.arange(eeg_uv.shape[0]) / fs
    path = Path(path)
    np.savetxt(path, np.column_stack([times, eeg_uv]), delimiter=",", header="time,eeg_uV", comments="",
               fmt="%.9g")
    return path


def lead_field(n_sensors: int = 32, n_regions: int = 16, seed: int = 0) -> np.ndarray:
    """A plausible (``n_sensors``, ``n_regions``) EEG lead field, generated here (no head model, no download).

    Regions are current dipoles at random points 40–70 mm from the centre of a sphere, oriented radially
    (pyramidal cells point to the surface); sensors lie on the upper part of a sphere of 95 mm. Each entry is the
    potential of a unit dipole in an infinite homogeneous conductor, (d · (s − r)) / |s − r|³, and the whole
    matrix is scaled so that its largest magnitude is 1: sensor EEG (mV) = L · region EEG (mV), the form
    :func:`jr_jax.network.network` takes as ``lead_field``. Deterministic in ``seed``.
    """
    for name, n in (("n_sensors", n_sensors), ("n_regions", n_regions), ("seed", seed)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} integer; "
                             f"got {n!r}.")
    rng = np.random.default_rng(seed)

    def directions(n, z_min):
        z = rng.uniform(z_min, 1.0, n)
        phi = rng.uniform(0.0, 2 * np.pi, n)
        s = np.sqrt(1.0 - z ** 2)
        return np.column_stack([s * np.cos(phi), s * np.sin(phi), z])

    sensors = 95.0 * directions(n_sensors, -0.2)                  # mm, the upper part of the head
    orient = directions(n_regions, -1.0)
    regions = rng.uniform(40.0, 70.0, (n_regions, 1)) * orient    # mm, radial dipoles
    diff = sensors[:, None, :] - regions[None, :, :]              # (M, N, 3)
    lead = np.einsum("mnk,nk->mn", diff, orient) / np.linalg.norm(diff, axis=-1) ** 3
    return lead / np.abs(lead).max()
