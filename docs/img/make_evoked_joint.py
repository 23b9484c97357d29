"""Make docs/img/evoked_joint.png: a simulated visual evoked response of TVB's 76-region network, seen by the
63 working sensors of TVB's 65-sensor EEG cap, as an MNE joint plot (butterfly + topomaps).

Run from the repository root: ``.venv/bin/python docs/img/make_evoked_joint.py`` (needs the mne and tvb extras).
"""

import dataclasses
import sys
from pathlib import Path

import brainunit as u
import jax
import matplotlib
import mne
import numpy as np

matplotlib.use("Agg")

import jr_jax as jr  # noqa: E402
from jr_jax import connectome, drives, export, leadfield, network  # noqa: E402

OUT = Path(__file__).with_name("evoked_joint.png")
DT = 0.5 * u.ms
REST_P = 90.0 * u.Hz          # below the alpha limit cycle's onset: each column rests, and the pulse rings out
COUPLING = 0.02               # G; TVB's weights are unnormalised (row sums up to 71)
PEAK = 200.0 * u.Hz           # the pulse's peak into rV1
LF_MAX = 5e-3                 # TVB's gain states no unit: scaled so that its largest entry is 5e-3 (sensor mV per
                              # region mV), which gives a VEP of a few µV
TRANSIENT, BASELINE, AFTER = 2.0, 0.1, 0.5    # s: settle, before the stimulus, after it


def main():
    con = connectome.tvb(76)
    lf = leadfield.tvb_eeg65()
    lf = dataclasses.replace(lf, matrix=lf.matrix * (LF_MAX / np.abs(lf.matrix).max()))
    net = network.network(con, coupling=COUPLING, lead_field=lf)
    peak = np.where(np.array(con.labels) == "rV1", PEAK.to_decimal(u.Hz), 0.0) * u.Hz
    onset = (TRANSIENT + BASELINE) * u.second
    drive = drives.constant(REST_P) + drives.pulse(onset, peak)
    res = jr.simulate(jr.JRParams(), duration=(BASELINE + AFTER) * u.second, dt=DT, drive=drive, network=net,
                      transient=TRANSIENT * u.second, key=jax.random.key(0))
    sensors = net.sensors(res.eeg)                                    # (time, 63) mV
    evoked = export.to_mne(sensors, lf, sampling_rate=1 / DT, t0=-BASELINE * u.second)
    evoked.apply_baseline((None, 0.0), verbose=False)
    mne.set_log_level("WARNING")
    fig = evoked.plot_joint(times=[0.05, 0.08, 0.12, 0.19], show=False,
                            title="Simulated VEP: a pulse into rV1, TVB 76 regions → 63 EEG sensors")
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
