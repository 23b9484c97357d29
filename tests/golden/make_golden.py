"""Record the golden outputs of tests/test_golden.py: ``python tests/golden/make_golden.py``.

The outputs were recorded from the code before the core was reorganised into solver objects, one loop module and
one store; the test checks that the reorganised code gives them bit for bit (float32, this kind of machine).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def outputs() -> dict:
    """Every golden output, as NumPy arrays, computed through the public API only."""
    import brainunit as u
    import jax

    import jr_jax as jr
    from jr_jax import connectome, data, drives, network

    key = jax.random.key(0)
    noisy = drives.white_noise(120.0 * u.Hz, 30.0 * u.Hz * u.second ** 0.5)
    out = {}
    # W1 of benchmarks/peers.py: one column, 10 s, RK4, the EEG of every step
    out["w1_eeg"] = jr.simulate(jr.JRParams(), duration=10 * u.second, drive=noisy, key=key).eeg.mantissa
    # a 1024-set batch (W2's design), 0.5 s, the EEG of every step
    rng = np.random.default_rng(0)
    A, B = rng.uniform(2.5, 4.5, 1024).astype(np.float32), rng.uniform(15.0, 30.0, 1024).astype(np.float32)
    out["batch_eeg"] = jr.simulate(jr.JRParams(A=A * u.mV, B=B * u.mV), duration=0.5 * u.second, drive=noisy,
                                   key=key).eeg.mantissa
    # a sweep's features: 8 x 8 grid in (A, B), 2 s after a 0.5 s transient
    design = jr.grid(A=np.linspace(2.5, 4.5, 8) * u.mV, B=np.linspace(15.0, 30.0, 8) * u.mV, drive=noisy)
    res = jr.sweep(design, duration=2 * u.second, transient=0.5 * u.second, key=key)
    for k, v in res.features.items():
        out[f"sweep_{k}"] = u.get_mantissa(v)
    # an ERP fit's loss history (Adam, 25 steps)
    transient = 0.5 * u.second
    erp_drive = drives.constant(60.0 * u.Hz) + drives.pulse(transient + 0.05 * u.second, 200.0 * u.Hz, 5.0 * u.ms)
    dummy = data.recording(np.arange(150.0), 500.0 * u.Hz, u.mV)
    truth = jr.JRParams(A=3.6 * u.mV, B=25.0 * u.mV, a=90.0 * u.Hz, b=55.0 * u.Hz)
    target_values = np.asarray(jr.erp_target(dummy, erp_drive, transient=transient).simulate(truth), np.float64)
    target = jr.erp_target(data.recording(target_values, 500.0 * u.Hz, u.mV), erp_drive, transient=transient)
    out["erp_fit_history"] = jr.fit(target, steps=25, laplace=False).history
    # a 16-region delayed network, RK4, 1 s, EEG kept as 2 ms means
    net = network.network(connectome.example(16), coupling=10.0)
    out["network_eeg"] = jr.simulate(jr.JRParams(), duration=1 * u.second, drive=noisy, key=key, network=net,
                                     record=jr.Record(("eeg",), every=4, reduce="mean")).eeg.mantissa
    # Strang splitting with noise, 2 s, every state variable
    out["strang_states"] = np.stack([
        jr.simulate(jr.JRParams(), duration=2 * u.second, drive=noisy, key=key, method="strang",
                    record=("y0", "y1", "y2", "y3", "y4", "y5")).variables[n].mantissa
        for n in ("y0", "y1", "y2", "y3", "y4", "y5")])
    return {k: np.asarray(v) for k, v in out.items()}


def sha256(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes()).hexdigest()


if __name__ == "__main__":
    outs = outputs()
    np.savez_compressed(HERE / "golden.npz", **outs)
    for k, v in outs.items():
        print(f"{k:24s} {str(v.dtype):8s} {str(v.shape):16s} {sha256(v)[:16]}")
    sys.exit(0)
