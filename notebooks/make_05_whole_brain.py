"""Writes notebooks/05_whole_brain.ipynb (kept as a script so the notebook's source is reviewable). Run from the repo root; it executes the notebook at full size and writes it with its outputs."""

import sys
from pathlib import Path

import nbformat as nbf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _build import KERNELSPEC, QUICK_CELL, execute_and_write  # noqa: E402

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# A whole brain fitted at the sensors\n\n"
       "The Virtual Brain's 76-region connectome with its 63-sensor EEG lead field (both from the `tvb-data` "
       "package, no download), one Jansen–Rit column per region, a pulse into the right secondary visual cortex "
       "(rV2). The evoked response at the sensors is simulated from hidden values — the global coupling G and the "
       "excitatory gain A in rV2 and in its strongest neighbour, the right dorsolateral prefrontal cortex (rPFCDL) — "
       "with sensor noise, and fitted back from the defaults with `NetworkModel.fit`: gradients go through the "
       "delays, the 76 columns and the lead field. Then a virtual lesion, and a combination that the sensors "
       "cannot separate. Double precision throughout (the Laplace errors need it)."),
    code(QUICK_CELL + "\nimport warnings\n\n"
         "import brainunit as u\nimport jax\nimport jax.numpy as jnp\nimport matplotlib.pyplot as plt\n"
         "import mne\nimport numpy as np\nfrom IPython.display import Markdown, display\n\n"
         "mne.set_log_level('WARNING')\n"
         "jax.config.update('jax_enable_x64', True)\n\n"
         "from jr_jax import connectome, data, drives, export, leadfield, network, sensor_targets as st\n"
         "from jr_jax import whole_brain as wb\nfrom jr_jax.uncertainty import NotIdentifiableWarning\n\n"
         "# the quick version (the test suite's) fits a 100 ms epoch with Euler steps; the full one 300 ms with RK4\n"
         "EPOCH, TRANSIENT = (0.2, 0.2) if QUICK else (0.3, 0.4)    # s\n"
         "METHOD, STEPS = ('euler', 60) if QUICK else ('rk4', 60)\n"
         "RUN = dict(dt=1 * u.ms, method=METHOD, transient=TRANSIENT * u.second)"),
    md("## The model\n\n"
       "`network_model` holds everything a sensor-space prediction depends on: the network (weights, tract lengths "
       "and a conduction speed of 3 m/s, G), the columns' `JRParams` (each field one value or one per region), the "
       "drive (90 Hz of background input everywhere, a 300 Hz pulse into rV2 20 ms into the epoch) and a gain on "
       "the lead field (TVB's gain file states no unit, so the sensors' amplitude is arbitrary: tens of mV with "
       "10⁻³, as in the tests)."),
    code("con, lf = connectome.tvb(76), leadfield.tvb_eeg65()\n"
         "net = network.network(con, coupling=0.1, lead_field=lf)\n"
         "drive = drives.constant(90 * u.Hz) + wb.stimulus(net, 'rV2', 300 * u.Hz, onset=(TRANSIENT + 0.02) * u.second)\n"
         "model = wb.network_model(net, drive=drive, gain=1e-3)\n"
         "w = con.weights[con.labels.index('rV2')]\n"
         "print(f'{con.n_regions} regions, {lf.n_sensors} sensors; rV2 receives from',\n"
         "      [con.labels[j] for j in np.argsort(w)[::-1][:3]], 'with weights', np.sort(w)[::-1][:3])"),
    md("## Hidden values, sensor noise\n\n"
       "The truth: G = 0.125 (the start is 0.1), A = 3.45 mV in rV2 and 3.1 mV in rPFCDL (3.25 mV everywhere at "
       "the start). The fit's parametrisation maps its coordinates θ (logarithms of the ratios to the start) to a "
       "model, so the truth is that map at known θ. Its prediction at 1 kHz gets Gaussian noise of 2 % of the "
       "signal's SD on every sensor."),
    code("free, per = ('G',), {'A': ['rV2', 'rPFCDL']}\n"
         "TRUTH = {'G': 0.125, 'A[rV2]': 3.45, 'A[rPFCDL]': 3.1}\n"
         "par = model.parametrisation(free, per_region=per)\n"
         "truth = par.params(jnp.log(jnp.asarray([0.125 / 0.1, 3.45 / 3.25, 3.1 / 3.25])))\n"
         "clean = truth.predict(EPOCH * u.second, sampling_rate=1000 * u.Hz, **RUN)\n"
         "sd = 0.02 * float(np.std(clean.values))\n"
         "noisy = clean.values + sd * np.random.default_rng(7).standard_normal(clean.values.shape)\n"
         "rec = data.recording(noisy, 1000 * u.Hz, u.mV, channels=clean.channels)\n"
         "target = st.network_erp_target(rec, model, **RUN)\n"
         "print(rec.values.shape, 'samples × sensors; noise SD', round(sd, 4), 'mV')"),
    md("## The fit\n\n"
       "L-BFGS from the start model (`G = 0.1`, `A = 3.25 mV` everywhere) with the objective's defaults: a baseline "
       "per sensor is profiled out, and with data in mV no scale. Standard errors from the Laplace approximation at "
       "the optimum."),
    code("res = model.fit(target, free=free, per_region=per, optimizer='lbfgs', steps=STEPS, rtol=1e-9, patience=5)\n"
         "print(res.summary())\n"
         "rows = ['| value | truth | start | estimate ± SE | (estimate − truth) / SE |', '|---|---|---|---|---|']\n"
         "for name, true in TRUTH.items():\n"
         "    est = float(u.get_mantissa(res.values[name]))\n"
         "    se = float(u.get_mantissa(res.stderr[name]))\n"
         "    start = 0.1 if name == 'G' else 3.25\n"
         "    rows.append(f'| {name} | {true:g} | {start:g} | {est:.4f} ± {se:.4f} | {(est - true) / se:+.2f} |')\n"
         "    assert abs(est - true) < 3 * se, (name, est, true, se)   # recovered within the Laplace errors\n"
         "assert res.identifiable\n"
         "display(Markdown('\\n'.join(rows)))"),
    md("Each estimate lies within its Laplace standard errors of the truth (the last column; the cell asserts "
       "less than 3), and the fitted loss is the noise's share of the data's variance: what the fit leaves is the "
       "noise. A[rV2], the stimulated column's gain, is the sharpest; A[rPFCDL] acts on the sensors only through "
       "what rV2 sends it and returns, and is known least well."),
    code("pred = res.params.predict(EPOCH * u.second, sampling_rate=1000 * u.Hz, **RUN)\n"
         "y, f = rec.values, pred.values - pred.values.mean(0) + rec.values.mean(0)   # the profiled baselines\n"
         "picks = np.argsort(y.var(0))[::-1][:6]\n"
         "t = rec.times * 1e3\n"
         "fig, axes = plt.subplots(2, 3, figsize=(12, 5.5), sharex=True, constrained_layout=True)\n"
         "for ax, k in zip(axes.flat, picks):\n"
         "    ax.plot(t, y[:, k], 'k', lw=0.8, label='target (noisy)')\n"
         "    ax.plot(t, f[:, k], 'tab:red', lw=1.5, ls='--', label='fitted')\n"
         "    ax.set_title(rec.channels[k])\n"
         "for ax in axes[1]:\n"
         "    ax.set_xlabel('time after the epoch start (ms)')\n"
         "axes[0, 0].set_ylabel('mV'); axes[1, 0].set_ylabel('mV'); axes[0, 0].legend()\n"
         "fig.suptitle('the six sensors of largest variance'); plt.show()\n"
         "rel_noise = sd ** 2 / float(np.var(rec.values))\n"
         "print(f'fitted loss {res.loss:.3g}; noise variance / data variance {rel_noise:.3g}')"),
    md("## The fitted response in MNE\n\n"
       "`export.to_mne` turns the prediction into an `mne.EvokedArray` in volts with the lead field's sensor "
       "positions as a montage, so MNE's plots take it as they are (the epoch's time 0 set to the stimulus)."),
    code("evoked = export.to_mne(pred, lf, kind='evoked')\n"
         "evoked.shift_time(-0.02, relative=True)   # the pulse starts 20 ms into the epoch\n"
         "peak = float(evoked.times[np.argmax(evoked.data.std(axis=0))])\n"
         "fig = evoked.plot_joint(times=[peak / 2, peak], title='fitted response (63 sensors)', show=False)\n"
         "plt.show()"),
    md("## A virtual lesion\n\n"
       "`lesion('rPFCDL')` cuts rV2's strongest neighbour out of the fitted network (its incoming and outgoing "
       "weights set to zero). Two things change at the sensors: the resting level, since rPFCDL no longer sends its "
       "resting output, and the evoked response; the second is compared after subtracting each prediction's mean "
       "over the 20 ms before the stimulus, as an ERP analysis would."),
    code("cut = res.params.lesion('rPFCDL')\n"
         "lesioned = cut.predict(EPOCH * u.second, sampling_rate=1000 * u.Hz, **RUN)\n"
         "pre = t < 20                                     # the 20 ms before the stimulus\n"
         "shift = lesioned.values[pre].mean(0) - pred.values[pre].mean(0)\n"
         "intact_erp, lesioned_erp = pred.values - pred.values[pre].mean(0), lesioned.values - lesioned.values[pre].mean(0)\n"
         "change = lesioned_erp - intact_erp\n"
         "k_t, k_s = np.unravel_index(np.argmax(np.abs(change)), change.shape)\n"
         "chi2 = float(np.sum(change ** 2) / sd ** 2)\n"
         "print(f'resting level: up to {np.abs(shift).max():.3f} mV ({rec.channels[int(np.argmax(np.abs(shift)))]})')\n"
         "print(f'evoked response: up to {change[k_t, k_s]:+.3f} mV at {rec.channels[k_s]}, {t[k_t]:.0f} ms '\n"
         "      f'(of a {np.abs(intact_erp).max():.0f} mV response); Σ(change / noise SD)² = {chi2:.0f} over '\n"
         "      f'{change.size} values')\n"
         "assert chi2 > 100   # far beyond the noise in aggregate: the sensors would tell the two networks apart\n"
         "fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)\n"
         "a1.plot(t, intact_erp[:, k_s], label='fitted network')\n"
         "a1.plot(t, lesioned_erp[:, k_s], label='rPFCDL lesioned')\n"
         "a1.plot(t, 10 * change[:, k_s], 'k', lw=0.8, label='10 × (lesioned − intact)')\n"
         "a1.set_xlabel('time after the epoch start (ms)'); a1.set_ylabel('mV, baseline-corrected'); a1.legend()\n"
         "a1.set_title(rec.channels[k_s])\n"
         "diff = export.to_mne(change * u.mV, lf, sampling_rate=1000 * u.Hz)\n"
         "diff.plot_topomap(times=[diff.times[k_t]], axes=a2, colorbar=False, show=False)\n"
         "a2.set_title(f'evoked change, lesioned − intact, at {t[k_t]:.0f} ms'); plt.show()"),
    md("The evoked change is small beside the response (rV2 drives the sensors, and at G = 0.125 its neighbour "
       "returns little), below the noise at any one sample, and frontal, over rPFCDL; summed over the 63 sensors "
       "and the epoch it stands far above the noise, so a fit would separate the two networks."),
    md("## What the sensors cannot separate\n\n"
       "For data in arbitrary units the objective profiles one scale for all sensors (`scale=True`). The lead-field "
       "gain is the same factor: freeing it beside G leaves the loss flat along the gain, the Hessian is singular "
       "there, and the fit says so with a `NotIdentifiableWarning` (standard errors NaN) instead of reporting a "
       "number."),
    code("arbitrary = data.recording(rec.values, 1000 * u.Hz, None, channels=rec.channels)   # no unit\n"
         "scaled = st.network_erp_target(arbitrary, res.params, **RUN)   # scale=True: the default without a unit\n"
         "with warnings.catch_warnings(record=True) as caught:\n"
         "    warnings.simplefilter('always', NotIdentifiableWarning)\n"
         "    both = res.params.fit(scaled, free=('gain', 'G'), steps=2, learning_rate=1e-3)\n"
         "message = next(str(w.message) for w in caught if w.category is NotIdentifiableWarning)\n"
         "print(message)\n"
         "assert both.identifiable is False and 'θ[gain]' in message\n"
         "print({k: float(u.get_mantissa(v)) for k, v in both.stderr.items()})"),
    md("From the command line, `jr-jax fit-network --target evoked.csv --stimulus rV2 --free G,A:rV2+rPFCDL` runs "
       "the same fit on a CSV (a `time` column, then one column per sensor) or an MNE `.fif` file, and writes "
       "`fit.json`, the sensor traces, topomaps and the per-region estimates (docs, \"Command line\")."),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
execute_and_write(nb, "05_whole_brain.ipynb")
