"""Writes notebooks/02_fitting.ipynb (kept as a script so the notebook's source is reviewable). Run from the repo root; it executes the notebook at full size and writes it with its outputs."""

import sys
from pathlib import Path

import nbformat as nbf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _build import KERNELSPEC, QUICK_CELL, execute_and_write  # noqa: E402

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Fitting A, B, a, b by gradient descent\n\n"
       "Two synthetic targets with a known truth: an evoked response (ERP) with measurement noise, and a resting-state "
       "spectrum driven by noise. `jr.fit` differentiates through the simulation (checkpointed per block of steps), optimises with "
       "optax in log space, and returns standard errors from the Hessian at the optimum (Laplace approximation)."),
    code(QUICK_CELL + "\nimport brainunit as u\nimport jax\nimport matplotlib.pyplot as plt\nimport numpy as np\n\n"
         "import jr_jax as jr\nfrom jr_jax import data, drives\nfrom jr_jax import fitting as F"),
    md("## ERP: a pulse on a resting column\n\n"
       "Background input 60 Hz: the column starts on its lower resting branch, which for the truth ends at a fold at "
       "p = 71.5 Hz (a limit cycle coexists with it, so this is a rest that a large kick could leave), a 200 Hz gamma-shaped pulse 50 ms "
       "into a 0.3 s epoch sampled at 500 Hz. The target is the truth's ERP plus white noise of SD 0.3 mV."),
    code("truth = jr.JRParams(A=3.6 * u.mV, B=25 * u.mV, a=90 * u.Hz, b=55 * u.Hz)\n"
         "transient = 0.5 * u.second\n"
         "drive = drives.constant(60 * u.Hz) + drives.pulse(transient + 0.05 * u.second, 200 * u.Hz, 5 * u.ms)\n"
         "blank = data.recording(np.zeros(150), 500 * u.Hz, u.mV)\n"
         "clean = np.asarray(F.erp_target(blank, drive, transient=transient).simulate(truth))\n"
         "noisy = clean + np.random.default_rng(0).normal(0, 0.3, clean.shape)\n"
         "target = F.erp_target(data.recording(noisy, 500 * u.Hz, u.mV), drive, transient=transient)\n"
         "res = F.fit(target, steps=200)\n"
         "print(res.summary())\n"
         "print('truth: A = 3.6 mV, B = 25 mV, a = 90 Hz, b = 55 Hz;  baseline fitted:', res.nuisance)"),
    md("The errors are consistent with the standard errors (the truth lies within a few of them); the correlation "
       "matrix shows which combinations trade off:"),
    code("for name in res.free:\n"
         "    got, want = float(getattr(res.params, name).mantissa), float(getattr(truth, name).mantissa)\n"
         "    z = (got - want) / float(res.stderr[name].mantissa)\n"
         "    print(f'{name}: fitted {got:8.3f}, truth {want:6.2f}, error {z:+.2f} SE')\n"
         "    assert abs(z) < 3, (name, z)   # the truth lies within a few standard errors\n"
         "print(np.round(res.correlation, 2))\n"
         "t = np.arange(150) / 500\n"
         "plt.plot(t, noisy, '.', color='0.6', label='target (noisy)')\n"
         "plt.plot(t, clean, 'k', label='truth')\n"
         "plt.plot(t, np.asarray(jax.jit(target.model)(res.params)), 'C3--', label='fitted')\n"
         "plt.plot(t, np.asarray(jax.jit(target.model)(jr.JRParams())), 'C0:', label='start (defaults)')\n"
         "plt.xlabel('time in epoch (s)'); plt.ylabel('EEG (mV)'); plt.legend(); plt.show()"),
    md("## The loss landscape over (A, B)\n\n"
       "The loss is a plain JAX function of the parameters, so a grid of it is one `vmap` (a, b at the fitted values):"),
    code("n = 9 if QUICK else 25   # grid points per axis\n"
         "A = np.linspace(3.0, 4.2, n); B = np.linspace(20, 30, n)\n"
         "AA, BB = np.meshgrid(A, B, indexing='ij')\n"
         "loss_AB = jax.jit(jax.vmap(lambda a_, b_: target(res.params.replace(A=a_ * u.mV, B=b_ * u.mV))))\n"
         "landscape = np.asarray(loss_AB(AA.ravel(), BB.ravel())).reshape(AA.shape)\n"
         "cs = plt.contourf(AA, BB, np.log10(landscape), 30, cmap='viridis'); plt.colorbar(cs, label='log10 loss')\n"
         "plt.plot(3.6, 25, 'w*', ms=14, label='truth'); plt.plot(3.25, 22, 'wo', label='start')\n"
         "plt.plot(float(res.params.A.mantissa), float(res.params.B.mantissa), 'r+', ms=14, label='fit')\n"
         "plt.xlabel('A (mV)'); plt.ylabel('B (mV)'); plt.legend(); plt.show()"),
    md("## Spectrum: EEG driven by noise, all four of A, B, a, b\n\n"
       "The target is the Welch PSD (1–100 Hz) of a 120 s simulated recording of a second truth (A = 3 mV, "
       "B = 24 mV, a = 90 Hz, b = 55 Hz) with its own noise; the model's PSD is the mean over K = 2 realisations of "
       "4 s with fixed keys, so the loss is deterministic and differentiable, and L-BFGS (`optimizer='lbfgs'`) "
       "minimises it in a few steps. The input p = 500 Hz lies above the upper Hopf point of both the truth and the "
       "start, so the only attractor is a damped ~11 Hz focus. At p = 60 Hz the truth is bistable (rest and a "
       "limit cycle), noise switches between them, and the spectral loss has local minima: see the README."),
    code("truth_s = jr.JRParams(A=3.0 * u.mV, B=24.0 * u.mV, a=90.0 * u.Hz, b=55.0 * u.Hz)\n"
         "print([(b.kind, round(float(b.p.to_decimal(u.Hz)), 1)) for b in jr.analysis.bifurcations(truth_s, "
         "p_range=(0 * u.Hz, 800 * u.Hz))])\n"
         "noise = drives.white_noise(500 * u.Hz, 30 * u.Hz * u.second ** 0.5)\n"
         "rec = jr.simulate(truth_s, duration=(30 if QUICK else 120) * u.second, dt=1 * u.ms, drive=noise, key=jax.random.key(123),\n"
         "                  transient=1 * u.second, record=jr.Record(every=2, reduce='mean'))\n"
         "measured = data.recording(np.asarray(rec.eeg.mantissa), 500 * u.Hz, u.mV)\n"
         "spec = F.spectrum_target(measured, noise, duration=4 * u.second, realisations=2, key=jax.random.key(7),\n"
         "                         dt=1 * u.ms, transient=0.5 * u.second, segment=1 * u.second,\n"
         "                         band=(1 * u.Hz, 100 * u.Hz), scale=False)\n"
         "res_s = F.fit(spec, optimizer='lbfgs', steps=60, patience=5, laplace=False)   # errors: see the README\n"
         "print(res_s.summary())\n"
         "start = jr.JRParams()\n"
         "plt.semilogy(spec.freqs, np.exp(spec.log_psd), 'k', label='target (120 s recording)')\n"
         "plt.semilogy(spec.freqs, np.asarray(jax.jit(spec.model)(res_s.params)), 'C3--', label='fitted')\n"
         "plt.semilogy(spec.freqs, np.asarray(jax.jit(spec.model)(start)), 'C0:', label='start (defaults)')\n"
         "plt.xlabel('frequency (Hz)'); plt.ylabel('PSD (mV²/Hz)'); plt.legend(); plt.show()"),
    md("`laplace=True` (the default, skipped here to keep the notebook quick) adds standard errors; for spectra they "
       "assume independent residuals across frequency bins, and Hann segments with 50 % overlap correlate "
       "neighbouring bins, so treat them as a lower bound."),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
execute_and_write(nb, "02_fitting.ipynb")
