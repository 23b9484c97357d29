"""Writes notebooks/03_sweeps.ipynb (kept as a script so the notebook's source is reviewable). Run from the repo root; it executes the notebook at full size and writes it with its outputs."""

import sys
from pathlib import Path

import nbformat as nbf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _build import KERNELSPEC, QUICK_CELL, execute_and_write  # noqa: E402

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Sweeps and bifurcations with jr_jax\n\n"
       "Where does the Jansen–Rit column change behaviour? This notebook finds the rest states and their "
       "bifurcations in the input p, draws the classic bifurcation diagram, and maps regimes over (A, B) and "
       "(p, B) with `jr.sweep`, which runs many parameter sets as the set axis of one compiled simulation (split "
       "over the CPU's cores) and keeps features (mean, SD, extremes, Welch PSD, dominant frequency, band powers, skewness) instead of traces."),
    code(QUICK_CELL + "\nimport brainunit as u\nimport jax\nimport matplotlib.pyplot as plt\nimport numpy as np\n\n"
         "import jr_jax as jr\nfrom jr_jax import analysis\nfrom jr_jax.plot import bifurcation_diagram, regime_map"),
    md("## Bifurcations in p (float64 for the linear algebra)"),
    code("with jax.enable_x64(True):\n"
         "    points = analysis.bifurcations(jr.JRParams(), (0 * u.Hz, 400 * u.Hz))\n"
         "    curve = analysis.equilibrium_curve(jr.JRParams())\n"
         "for b in points:\n"
         "    print(b.kind, b.p, b.eeg, b.frequency)\n"
         "kinds = [b.kind for b in points]\n"
         "assert kinds == ['hopf', 'fold', 'hopf'], kinds"),
    md("Limit-cycle extrema from simulation (a sweep over p, started from zero and from the highest rest state nudged up and down in y1, so that a run leaves an unstable rest state):"),
    code("extrema = analysis.limit_cycle_extrema(jr.JRParams(), np.linspace(0, 400, 21 if QUICK else 41) * u.Hz)\n"
         "ax = bifurcation_diagram(curve, extrema, points, (0 * u.Hz, 400 * u.Hz))\nplt.show()"),
    md("## Regime map over (A, B) at p = 220 Hz\n\n"
       "Labels follow documented criteria (`analysis.LABEL_CRITERIA`):"),
    code("for k, v in analysis.LABEL_CRITERIA.items():\n    print(f'{k:11s} {v}')"),
    code("n = 9 if QUICK else 16   # grid points per axis\n"
         "ab = jr.grid(A=np.linspace(2, 8, n) * u.mV, B=np.linspace(10, 40, n) * u.mV)\n"
         "res_ab = jr.sweep(ab, duration=4 * u.second, transient=1 * u.second)\n"
         "fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)\n"
         "regime_map(res_ab, 'A', 'B', ax=axes[0])\nregime_map(res_ab, 'A', 'B', 'dominant_frequency', ax=axes[1])\n"
         "plt.show()\n"
         "labels = analysis.label_regimes(res_ab.features, res_ab.freqs).reshape(ab.shape)\n"
         "iA, iB = np.argmin(np.abs(np.linspace(2, 8, n) - 3.25)), np.argmin(np.abs(np.linspace(10, 40, n) - 22))\n"
         "print('default gains (A = 3.25 mV, B = 22 mV) ->', labels[iA, iB])"),
    md("## Regime map over (p, B)"),
    code("pb = jr.grid(p=np.linspace(0, 400, n) * u.Hz, B=np.linspace(10, 40, n) * u.mV)\n"
         "res_pb = jr.sweep(pb, duration=4 * u.second, transient=1 * u.second)\n"
         "ax = regime_map(res_pb, 'p', 'B')\nplt.show()"),
    md("## A GPU-size sweep, run small here\n\n"
       "The same call scales to 10⁵–10⁶ sets on a GPU (`chunk_size` sets per compiled chunk, sharded over all "
       "devices). With `out_dir` every finished chunk is written to disk, so an interrupted sweep resumes; "
       "`max_chunks` computes only part of it now. Here: 64 random sets in chunks of 16 (32 in chunks of 8 in the quick mode), computed in two calls."),
    code("import tempfile\n"
         "size, chunk = (32, 8) if QUICK else (64, 16)\n"
         "design = jr.random_design(size, key=jax.random.key(0), A=(2 * u.mV, 8 * u.mV), B=(10 * u.mV, 40 * u.mV),\n"
         "                          a=(50 * u.Hz, 200 * u.Hz), log=('a',))\n"
         "folder = tempfile.mkdtemp()\n"
         "part = jr.sweep(design, duration=2 * u.second, chunk_size=chunk, out_dir=folder, max_chunks=2)\n"
         "print('first call: computed', part.computed.sum(), 'of', design.size)\n"
         "full = jr.sweep(design, duration=2 * u.second, chunk_size=chunk, out_dir=folder)\n"
         "print('second call: complete =', full.complete)\n"
         "assert full.complete and np.array_equal(np.asarray(full.features['mean'].mantissa)[:2 * chunk],\n"
         "                                        np.asarray(part.features['mean'].mantissa)[:2 * chunk])\n"
         "plt.scatter(np.asarray(design.params.A.mantissa), np.asarray(design.params.B.mantissa),\n"
         "            c=np.asarray(full.features['dominant_frequency'].mantissa), cmap='viridis')\n"
         "plt.colorbar(label='dominant frequency (Hz)'); plt.xlabel('A (mV)'); plt.ylabel('B (mV)'); plt.show()"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
execute_and_write(nb, "03_sweeps.ipynb")
