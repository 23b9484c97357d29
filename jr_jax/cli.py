"""The ``jr-jax`` command: parses options, calls :mod:`jr_jax` and writes its results to files.

Every numerical default that the library has is read from the library; the few choices that belong to the command
alone are in ``CLI_DEFAULTS``. Ordinary mistakes (a bad option, a missing file, parameters the library rejects) end
with ``jr-jax <command>: <message>`` on stderr and exit status 2.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import brainunit as u
import jax
import matplotlib
import numpy as np
from matplotlib.figure import Figure

import jr_jax as jr
import jr_jax.plot
import jr_jax.regimes
from jr_jax.cli_options import default_of, parser

UNITS = {"uv": u.uvolt, "mv": u.mV, "v": u.volt, "none": None}   # --unit of a fit's target values


def _range(text: str, option: str, unit: str, example: str) -> tuple[float, float]:
    """low:high -> (low, high), low < high; a malformed value names its option."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise ValueError(f"{option} must look like low:high in {unit}, e.g. {example}; got {text!r}") from None
    if not lo < hi:
        raise ValueError(f"{option} must have low < high; got {text!r}")
    return lo, hi


def _axes(specs: list[str]) -> dict:
    """The --param options (NAME=low:high:n) as grid axes, each in its field's unit."""
    defaults = jr.JRParams()
    axes = {}
    for spec in specs:
        try:
            name, rng = spec.split("=")
            lo, hi, n = rng.split(":")
            name, lo, hi, n = name.strip(), float(lo), float(hi), int(n)
        except ValueError:
            raise ValueError(f"--param must look like NAME=low:high:n, e.g. A=2:10:64; got {spec!r}") from None
        if name in axes:
            raise ValueError(f"--param {name} given twice; give each axis once")
        if n < 1:
            raise ValueError(f"--param {name} needs n >= 1 values; got {n}")
        # p is the drive's mean rate, not a JRParams field; unknown names go to jr.grid, which lists the known ones
        field = getattr(defaults, name, None) if name != "p" else 1.0 * u.Hz
        values = np.linspace(lo, hi, n)
        axes[name] = values * field.unit if isinstance(field, u.Quantity) else values
    if not axes:
        raise ValueError("give at least one --param NAME=low:high:n")
    return axes


def _drive(p_hz: float, sigma: float):
    """Constant input p, or white noise around it when sigma > 0."""
    p = p_hz * u.Hz
    return jr.drives.white_noise(p, sigma * u.Hz * u.second ** 0.5) if sigma > 0 else jr.drives.constant(p)


def _step(args) -> dict:
    """dt and method as the library takes them; --dt is checked here because the command divides by it."""
    if not (args.dt > 0 and math.isfinite(args.dt)):
        raise ValueError(f"--dt must be a positive step in ms; got {args.dt:g}")
    return {"dt": args.dt * u.ms, "method": args.method}


def _save(fig, path: Path, dpi: int) -> None:
    """Write a figure and release it (pyplot holds the figures it made until they are closed)."""
    import matplotlib.pyplot as plt  # here, after main() has chosen the Agg backend

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _regimes(args) -> int:
    out, step = Path(args.out), _step(args)
    presets = jr.regimes.presets()
    names = list(presets) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in presets]
    if unknown:
        raise ValueError(f"--only: unknown regime(s) {unknown}; known: {list(presets)}")
    key = jax.random.key(args.seed)
    results = {}
    for i, name in enumerate(names, 1):
        reg = presets[name]
        print(f"[{i}/{len(names)}] {reg.title}", file=sys.stderr)
        res = jr.simulate(reg.params, duration=reg.duration, drive=reg.drive, key=jax.random.fold_in(key, i),
                          record=jr.Record(("y0", "y1", "y2", "eeg")), progress=not args.quiet, **step)
        results[name] = res
        _save(jr.plot.regime_figure(res, reg.title), out / f"{name}.png", 110)
    header = ["regime", "source", "claim", "dominant frequency (Hz)", "EEG mean (mV)", "EEG SD (mV)",
              "EEG peak-to-peak (mV)", "alpha share (8–13 Hz)", "power within ±1 Hz of peak", "criterion",
              "claim holds"]
    table = []
    for m in jr.regimes.measure(results):
        reg = presets[m.name]
        table.append([m.name, reg.source, reg.claim, f"{m.dominant_frequency:.2f}", f"{m.mean:.2f}", f"{m.std:.2f}",
                      f"{m.peak_to_peak:.2f}", f"{m.alpha_share:.2f}", f"{m.peak_share:.2f}", reg.criterion,
                      "yes" if m.claim_holds else "NO"])
    with open(out / "regimes.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header] + table)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    note = (f"\nMeasured by jr_jax on t > {jr.regimes.MEASURE_AFTER:g} s of each run; method {args.method}, "
            f"dt = {args.dt:g} ms, seed {args.seed}, float32, backend {jax.default_backend()}.\n")
    (out / "regimes.md").write_text("\n".join(md) + "\n" + note)
    print("\n".join(md) + "\n" + note)
    print(f"figures and tables written to {out}/", file=sys.stderr)
    return 0


def _sweep(args) -> int:
    out, step = Path(args.out), _step(args)
    design = jr.grid(drive=_drive(args.p, args.sigma), **_axes(args.param))
    res = jr.sweep(design, duration=args.duration * u.second, transient=args.transient * u.second,
                   key=jax.random.key(args.seed), chunk_size=args.chunk_size, out_dir=out / "chunks",
                   progress=not args.quiet, **step)
    labels = jr.analysis.label_regimes(res.features)
    out.mkdir(parents=True, exist_ok=True)
    mantissas = {k: np.asarray(u.get_mantissa(v)) for k, v in res.features.items()}
    scalars = [k for k, v in mantissas.items() if k != "psd" and v.ndim == 1]
    axes = {k: np.asarray(u.get_mantissa(v)) for k, v in design.axes.items()}
    np.savez(out / "features.npz", freqs=np.asarray(res.freqs.mantissa), labels=labels, **mantissas,
             **{f"axis_{k}": v for k, v in axes.items()})
    mesh = [m.ravel() for m in np.meshgrid(*axes.values(), indexing="ij")]
    with open(out / "features.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(axes) + ["label"] + scalars)
        for i in range(design.size):
            w.writerow([f"{m[i]:.6g}" for m in mesh] + [labels[i]] + [f"{float(mantissas[k][i]):.6g}" for k in scalars])
    names = list(axes)
    if len(names) == 2:
        for feature, fname in ((None, "regime_map.png"), ("dominant_frequency", "dominant_frequency.png"),
                               ("peak_to_peak", "peak_to_peak.png")):
            _save(jr.plot.regime_map(res, names[0], names[1], feature).figure, out / fname, 110)
    counts = {str(k): int((labels == k).sum()) for k in sorted(set(labels))}
    print(f"{design.size} sets, labels: {counts}; written to {out}/", file=sys.stderr)
    return 0


def _bifurcation(args) -> int:
    out, step = Path(args.out), _step(args)
    lo, hi = _range(args.p_range, "--p-range", "Hz", "0:400")
    p_range = (lo * u.Hz, hi * u.Hz)
    params = jr.JRParams()
    with jax.enable_x64(True):  # the continuation and its eigenvalues need double precision near the folds
        points = jr.analysis.bifurcations(params, p_range)
        curve = jr.analysis.equilibrium_curve(params)
    extrema = None
    if args.n_sim > 0:
        extrema = jr.analysis.limit_cycle_extrema(params, np.linspace(max(lo, 0.0), hi, args.n_sim) * u.Hz,
                                                  key=jax.random.key(args.seed), progress=not args.quiet, **step)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bifurcations.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "p (Hz)", "EEG (mV)", "frequency (Hz)"])
        for b in points:
            p, e = float(b.p.to_decimal(u.Hz)), float(b.eeg.to_decimal(u.mV))
            freq = None if b.frequency is None else float(b.frequency.to_decimal(u.Hz))
            w.writerow([b.kind, f"{p:.6f}", f"{e:.6f}", "" if freq is None else f"{freq:.6f}"])
            print(f"{b.kind:5s} p = {p:10.4f} Hz  EEG = {e:8.4f} mV"
                  + ("" if freq is None else f"  frequency = {freq:.4f} Hz"))
    _save(jr.plot.bifurcation_diagram(curve, extrema, points, p_range).figure, out / "bifurcation.png", 120)
    print(f"written to {out}/", file=sys.stderr)
    return 0


def _fit_target(args):
    """(target data, objective) for --kind erp or psd; options are checked before the file is read."""
    step = _step(args)
    if args.unit.lower() not in UNITS:
        raise ValueError(f"--unit must be one of uV, mV, V, none; got {args.unit!r}")
    band = _range(args.band, "--band", "Hz", "2:40")
    kind_target = jr.erp_target if args.kind == "erp" else jr.spectrum_target
    transient = (default_of(kind_target, "transient") if args.transient is None else args.transient * u.second)
    fs = None if args.sampling_rate is None else args.sampling_rate * u.Hz
    data = jr.data.read_csv(args.target, sampling_rate=fs, unit=UNITS[args.unit.lower()])
    if args.kind == "erp":
        if not isinstance(data, jr.data.Recording):
            raise ValueError(f"--target {args.target} holds a spectrum; --kind erp needs a time series")
        onset = (-data.t0 if data.t0 < 0 else args.onset) * u.second   # a time column before 0 puts the stimulus at 0
        drive = jr.drives.constant(args.p * u.Hz) + jr.drives.pulse(transient + onset, args.peak * u.Hz,
                                                                     args.width * u.ms)
        return data, jr.erp_target(data, drive, transient=transient, **step)
    return data, jr.spectrum_target(data, _drive(args.p, args.sigma), band=(band[0] * u.Hz, band[1] * u.Hz),
                                    duration=args.duration * u.second, realisations=args.realisations,
                                    key=jax.random.key(args.seed), transient=transient, **step)


def _fit(args) -> int:
    out = Path(args.out)
    data, target = _fit_target(args)
    res = jr.fit(target, free=args.free, steps=args.steps, starts=args.starts,
                 key=jax.random.key(args.seed), optimizer=args.optimizer, learning_rate=args.lr,
                 progress=not args.quiet, out_dir=out / "state")
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.json").write_text(json.dumps(res.as_dict(), indent=1))
    np.savetxt(out / "history.csv", res.history, delimiter=",", header="loss per step (one column per start)")
    model = np.asarray(jax.jit(target.model)(res.params))
    fig = Figure(figsize=(7, 3.5), layout="tight")
    ax = fig.subplots()
    if args.kind == "erp":
        ax.plot(data.times, data.values, "k", label="target")
        ax.plot(data.times, model, "C3--", label="fitted model")
        ax.set_xlabel("time (s)")
    else:
        ax.semilogy(target.freqs, np.exp(target.log_psd), "k", label="target")
        ax.semilogy(target.freqs, model, "C3--", label="fitted model")
        ax.set_xlabel("frequency (Hz)")
    ax.legend()
    _save(fig, out / "fit.png", 110)
    print(res.summary())
    print(f"written to {out}/", file=sys.stderr)
    return 0


def _connectome(spec: str):
    """--connectome: example[:N], a .npz, or a TVB zip or folder."""
    if spec.startswith("example"):
        head, _, n = spec.partition(":")
        if head != "example" or (n and not n.isdigit()):
            raise ValueError(f"--connectome example takes a number of regions, e.g. example:16; got {spec!r}")
        return jr.connectome.example(int(n)) if n else jr.connectome.example()
    return jr.connectome.load_npz(spec) if spec.endswith(".npz") else jr.connectome.load_tvb(spec)


def _network(args) -> int:
    out, step = Path(args.out), _step(args)
    if not args.record_ms > 0:
        raise ValueError(f"--record-ms must be a positive window in ms; got {args.record_ms:g}")
    con = _connectome(args.connectome)
    field = None if args.field_length <= 0 else jr.network.field_kernel(con, args.field_length * u.mmeter)
    lead = None if args.lead_field is None else np.loadtxt(args.lead_field, delimiter=",", ndmin=2)
    net = jr.network.network(con, coupling=args.coupling, speed=args.speed * u.meter / u.second, rule=args.rule,
                             field=field, field_gain=args.field_gain, lead_field=lead)
    every = max(1, int(round(args.record_ms / args.dt)))
    chunk_steps = max(every, int(round(1000.0 / args.dt)) // every * every)   # about 1 s of whole windows per save
    res = jr.simulate(jr.JRParams(), duration=args.duration * u.second, drive=_drive(args.p, args.sigma),
                      key=jax.random.key(args.seed), network=net, transient=args.transient * u.second,
                      record=jr.Record(("eeg",), every=every, reduce="mean"), chunk_steps=chunk_steps,
                      progress=not args.quiet, out_dir=out / "state", **step)
    x = np.asarray(res.eeg.to_decimal(u.mV))
    fs = float(res.sampling_rate.to_decimal(u.Hz))
    arrays = {"time_s": np.asarray(res.time.to_decimal(u.second)), "eeg_mV": x, "labels": np.asarray(con.labels)}
    if lead is not None:
        arrays["sensors_mV"] = np.asarray(net.sensors(res.eeg).to_decimal(u.mV))
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "network.npz", **arrays)
    freqs, psd = jr.analysis.welch(x.T, fs, nperseg=min(x.shape[0], int(2 * fs)))
    f, pw = np.asarray(freqs.mantissa), np.asarray(psd.mantissa)
    fc = np.corrcoef(x.T)
    with open(out / "regions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["region", "dominant frequency (Hz)", "EEG SD (mV)", "alpha share (8–13 Hz)"])
        for i, lab in enumerate(con.labels):
            total = jr.analysis.band_power(f, pw[i], (0.5, fs / 2))
            w.writerow([lab, f"{jr.analysis.dominant_frequency(f, pw[i]):.3f}", f"{x[:, i].std():.4f}",
                        f"{jr.analysis.band_power(f, pw[i], (8.0, 13.0)) / total:.3f}"])
    np.savetxt(out / "fc.csv", fc, delimiter=",", fmt="%.6f")
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    m = (f > 0) & (f <= 40)
    a1.semilogy(f[m], pw[:, m].T, lw=0.7)
    a1.set_xlabel("frequency (Hz)")
    a1.set_ylabel("EEG PSD per region (mV²/Hz)")
    im = a2.imshow(fc, vmin=-1, vmax=1, cmap="RdBu_r")
    a2.set_title("functional connectivity (EEG correlation)")
    fig.colorbar(im, ax=a2)
    _save(fig, out / "network.png", 110)
    print(f"{con.n_regions} regions, {args.duration:g} s: mean FC (off-diagonal) "
          f"{(fc.sum() - np.trace(fc)) / (fc.size - len(fc)):.3f}; written to {out}/", file=sys.stderr)
    return 0


# -- the parser: one function per subcommand ----------------------------------------------------------------

COMMANDS = {"regimes": _regimes, "sweep": _sweep, "bifurcation": _bifurcation, "network": _network, "fit": _fit}


# -- running a command ---------------------------------------------------------------------------------------

def _message(err: BaseException) -> str:
    """One line for an error: a file error names its file; KeyError's quotes are dropped."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    elif isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def _remove_empty_dirs(top: Path) -> None:
    """Remove ``top`` and the folders under it if none of them holds a file (rmdir refuses anything else)."""
    if not top.is_dir():
        return
    for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(Path(w[0]).parts)):
        try:
            Path(folder).rmdir()
        except OSError:
            return


def main(argv=None) -> int:
    """The ``jr-jax`` command: 0 on success, 2 for an ordinary mistake (one line on stderr)."""
    args = parser().parse_args(argv)
    matplotlib.use("Agg")  # the command writes figures to files; chosen before any figure is made
    out = Path(args.out)
    existed = out.exists()
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError, KeyError, jr.SimulationError) as err:
        if not existed:  # a run that failed before writing anything leaves no folder behind
            _remove_empty_dirs(out)
        print(f"jr-jax {args.command}: {_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
