"""Writes notebooks/02_fitting.ipynb (kept as a script so the notebook's source is reviewable). Run from the repo root."""

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Fitting A, B, a, b by gradient descent\n\n"
       "Two synthetic targets with a known truth: an evoked response (ERP) with measurement noise, and a resting-state "
       "spectrum. `jr.fit` differentiates through the simulation (checkpointed per block of steps), optimises with "
       "optax in log space, and returns standard errors from the Hessian at the optimum (Laplace approximation)."),
    code("import brainunit as u\nimport jax\nimport matplotlib.pyplot as plt\nimport numpy as np\n\n"
         "import jr_jax as jr\nfrom jr_jax import data, drives\nfrom jr_jax import fitting as F"),
    md("## ERP: a pulse on a resting column\n\n"
       "Background input 60 Hz (below the first Hopf point, so the column rests), a 200 Hz gamma-shaped pulse 50 ms "
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
         "    print(f'{name}: fitted {got:8.3f}, truth {want:6.2f}, error {(got - want) / float(res.stderr[name].mantissa):+.2f} SE')\n"
         "print(np.round(res.correlation, 2))\n"
         "t = np.arange(150) / 500\n"
         "plt.plot(t, noisy, '.', color='0.6', label='target (noisy)')\n"
         "plt.plot(t, clean, 'k', label='truth')\n"
         "plt.plot(t, np.asarray(jax.jit(target.model)(res.params)), 'C3--', label='fitted')\n"
         "plt.plot(t, np.asarray(jax.jit(target.model)(jr.JRParams())), 'C0:', label='start (defaults)')\n"
         "plt.xlabel('time in epoch (s)'); plt.ylabel('EEG (mV)'); plt.legend(); plt.show()"),
    md("## The loss landscape over (A, B)\n\n"
       "The loss is a plain JAX function of the parameters, so a grid of it is one `vmap` (a, b at the fitted values):"),
    code("A = np.linspace(3.0, 4.2, 25); B = np.linspace(20, 30, 25)\n"
         "AA, BB = np.meshgrid(A, B, indexing='ij')\n"
         "loss_AB = jax.jit(jax.vmap(lambda a_, b_: target(res.params.replace(A=a_ * u.mV, B=b_ * u.mV))))\n"
         "landscape = np.asarray(loss_AB(AA.ravel(), BB.ravel())).reshape(AA.shape)\n"
         "cs = plt.contourf(AA, BB, np.log10(landscape), 30, cmap='viridis'); plt.colorbar(cs, label='log10 loss')\n"
         "plt.plot(3.6, 25, 'w*', ms=14, label='truth'); plt.plot(3.25, 22, 'wo', label='start')\n"
         "plt.plot(float(res.params.A.mantissa), float(res.params.B.mantissa), 'r+', ms=14, label='fit')\n"
         "plt.xlabel('A (mV)'); plt.ylabel('B (mV)'); plt.legend(); plt.show()"),
    md("## Spectrum: resting EEG driven by noise\n\n"
       "The target is the Welch PSD of a 60 s simulated recording of the truth (its own noise); the model's PSD is the "
       "mean over K = 2 realisations of 4 s with fixed keys, so the loss is deterministic and differentiable. The "
       "spectrum's shape fixes the time constants a and b well (the gains much less: see the README); here a and b "
       "are fitted with A, B at the truth. Small settings so that the notebook runs in seconds on a CPU."),
    code("noise = drives.white_noise(60 * u.Hz, 30 * u.Hz * u.second ** 0.5)\n"
         "rec = jr.simulate(truth, duration=60 * u.second, dt=1 * u.ms, drive=noise, key=jax.random.key(123),\n"
         "                  transient=1 * u.second, record=jr.Record(every=2, reduce='mean'))\n"
         "measured = data.recording(np.asarray(rec.eeg.mantissa), 500 * u.Hz, u.mV)\n"
         "spec = F.spectrum_target(measured, noise, duration=4 * u.second, realisations=2, key=jax.random.key(7),\n"
         "                         dt=1 * u.ms, transient=0.5 * u.second, segment=1 * u.second)\n"
         "start = truth.replace(a=100 * u.Hz, b=50 * u.Hz)\n"
         "res_s = F.fit(spec, start=start, free=('a', 'b'), steps=150)\n"
         "print(res_s.summary())\n"
         "plt.semilogy(spec.freqs, np.exp(spec.log_psd), 'k', label='target (60 s recording)')\n"
         "plt.semilogy(spec.freqs, np.asarray(jax.jit(spec.model)(res_s.params)), 'C3--', label='fitted')\n"
         "plt.semilogy(spec.freqs, np.asarray(jax.jit(spec.model)(start)), 'C0:', label='start')\n"
         "plt.xlabel('frequency (Hz)'); plt.ylabel('PSD (mV²/Hz)'); plt.legend(); plt.show()"),
    md("The standard errors here assume independent residuals across frequency bins; Hann segments with 50 % "
       "overlap correlate neighbouring bins, so treat them as a lower bound."),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
nbf.write(nb, "notebooks/02_fitting.ipynb")
