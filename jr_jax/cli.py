"""The ``jr-jax`` command: parses options, calls :mod:`jr_jax` and writes its results to files.

Every numerical default that the library has is read from the library; the few choices that belong to the command
alone are in ``CLI_DEFAULTS``. Ordinary mistakes (a bad option, a missing or malformed file, parameters the library
rejects) end with one line ``jr-jax <command>: error: <message>`` on stderr and exit status 2, and leave the output
folder as it was (see :func:`main`); ``--debug`` shows the exception with its traceback instead.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
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
from jr_jax.cli_options import UNITS, CommandLineError, default_of, parser

MESSAGE_ERRORS = (ValueError, TypeError, OSError, KeyError, MemoryError, jr.SimulationError)
"""Errors reported in one line (exit status 2): mistakes in options, files and parameters, a run that diverges, a
job too big for the memory. Anything else is a bug and shows its traceback."""

KEEP_FOLDER_ERRORS = (jr.StoreError, jr.RunSpecError, jr.sweeps.SweepSpecError, jr.fitting.FitSpecError)
"""Errors after which the output folder is left alone: it holds another job's checkpoints, is damaged, or another
process is using it, so what it holds is not this run's to remove (the store refuses before writing)."""


@contextlib.contextmanager
def _option(name: str):
    """Errors raised inside name the option (and keep their own text, which names the file and line)."""
    try:
        yield
    except (ValueError, TypeError, OSError, KeyError) as err:
        raise ValueError(f"{name}: {_message(err)}") from err


def _axes(specs: list[tuple]) -> dict:
    """The --param options (parsed to name, low, high, n) as grid axes, each in its field's unit."""
    defaults = jr.JRParams()
    axes = {}
    for name, lo, hi, n in specs:
        if name in axes:
            raise ValueError(f"--param {name} given twice; give each axis once")
        # p is the drive's mean rate, not a JRParams field
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
    """dt and method as the library takes them (the parser has checked both)."""
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
    lo, hi = args.p_range
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
    step, band = _step(args), args.band
    kind_target = jr.erp_target if args.kind == "erp" else jr.spectrum_target
    transient = (default_of(kind_target, "transient") if args.transient is None else args.transient * u.second)
    fs = None if args.sampling_rate is None else args.sampling_rate * u.Hz
    with _option("--target"):
        data = jr.data.read_csv(args.target, sampling_rate=fs, unit=UNITS[args.unit])
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
    res = jr.fit(target, free=list(args.free), steps=args.steps, starts=args.starts,
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
            raise ValueError(f"example takes a number of regions, e.g. example:16; got {spec!r}")
        return jr.connectome.example(int(n)) if n else jr.connectome.example()
    return jr.connectome.load_npz(spec) if spec.endswith(".npz") else jr.connectome.load_tvb(spec)


def _network(args) -> int:
    out, step = Path(args.out), _step(args)
    every = round(args.record_ms / args.dt)
    if every < 1 or abs(every * args.dt - args.record_ms) > 1e-9 * args.record_ms:
        raise ValueError(f"--record-ms must be a whole number of steps of --dt {args.dt:g} ms; "
                         f"got {args.record_ms:g}")
    with _option("--connectome"):
        con = _connectome(args.connectome)
    field = None if args.field_length == 0 else jr.network.field_kernel(con, args.field_length * u.mmeter)
    lead = None
    if args.lead_field is not None:
        with _option("--lead-field"):
            lead = jr.data.read_matrix(args.lead_field)
            if lead.shape[1] != con.n_regions:
                raise ValueError(f"{args.lead_field}: {lead.shape[1]} column(s), but the connectome has "
                                 f"{con.n_regions} regions (one column per region)")
    net = jr.network.network(con, coupling=args.coupling, speed=args.speed * u.meter / u.second, rule=args.rule,
                             field=field, field_gain=args.field_gain, lead_field=lead)
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


def _new_folders(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first (the run would create them)."""
    new = []
    for folder in (out, *out.parents):
        if folder.exists() or folder.is_symlink():
            break
        new.append(folder)
    return new


def _entries(out: Path) -> set[Path]:
    """What ``out`` holds at its top level (its files, and the folders of the checkpoint stores)."""
    return set(out.iterdir()) if out.is_dir() else set()


def _restore(new_folders: list[Path], before: set[Path], out: Path) -> None:
    """Leave the output as it was before a failed run: folders the run created are removed with their contents;
    in a folder that existed, what the run added at its top level is removed, and what existed is kept (a
    checkpoint folder that existed stays whole: its manifest may list what the run added)."""
    if new_folders:
        shutil.rmtree(out, ignore_errors=True)
        for folder in new_folders[1:]:      # parents created on the way: removed if left empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        return
    for entry in _entries(out) - before:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _parse(argv):
    """The options, or CommandLineError naming the subcommand (arguments left over included)."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:
        raise CommandLineError(f"unrecognized arguments: {' '.join(extra)}", f"{top.prog} {args.command}")
    return args


def main(argv=None) -> int:
    """The ``jr-jax`` command: 0 on success; 2 for an ordinary mistake, reported in one line
    ``jr-jax <command>: error: <message>``, with the output folder left as it was (``--debug``: the exception
    propagates, with its traceback, after the folder is restored). An interrupted run (Ctrl-C) or a bug keeps what
    it wrote, so that the run can resume."""
    try:
        args = _parse(argv)
    except CommandLineError as err:
        print(f"{err.prog}: error: {_message(err)}", file=sys.stderr)
        return 2
    matplotlib.use("Agg")  # the command writes figures to files; chosen before any figure is made
    out = Path(args.out)
    new_folders, before = _new_folders(out), _entries(out)
    try:
        return COMMANDS[args.command](args)
    except MESSAGE_ERRORS as err:
        if not isinstance(err, KEEP_FOLDER_ERRORS):
            _restore(new_folders, before, out)
        if args.debug:
            raise
        print(f"jr-jax {args.command}: error: {_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
