"""The ``jr-jax`` commands themselves: each takes the parsed options, calls :mod:`jr_jax` and writes its results to
files. Imported by :func:`jr_jax.cli.main` only once the options are parsed, so that ``--help`` and a mistaken option
need no JAX."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import inspect
import json
import sys
from pathlib import Path

import brainunit as u
import jax
import numpy as np

import jr_jax as jr
import jr_jax.plot
import jr_jax.regimes
from jr_jax.cli_options import message

MESSAGE_ERRORS = (ValueError, TypeError, OSError, KeyError, MemoryError, jr.SimulationError,
                  jr.executors.WorkerLostError)
"""Errors reported in one line (exit status 2): mistakes in options, files and parameters, a run that diverges, a
job too big for the memory. Anything else is a bug and shows its traceback."""

KEEP_FOLDER_ERRORS = (jr.StoreError, jr.RunSpecError, jr.sweeps.SweepSpecError, jr.fitting.FitSpecError)
"""Errors after which the output folder is left alone: it holds another job's checkpoints, is damaged, or another
process is using it, so what it holds is not this run's to remove (the store refuses before writing)."""

DASK_INSTALL = 'pip install "jr_jax[dask]" (in a clone: pip install -e ".[dask]")'

UNITS = {"uv": u.uvolt, "mv": u.mV, "v": u.volt, "none": None}   # --unit of a fit's target values
UNIT_LABELS = {"uv": "µV", "mv": "mV", "v": "V", "none": "arbitrary units"}


def default_of(func, name):
    """The library's default of ``name`` in ``func``'s signature."""
    return inspect.signature(func).parameters[name].default


def library_defaults() -> dict:
    """The library's defaults in the form of :data:`jr_jax.cli_options.LIBRARY_DEFAULTS` (which the tests compare)."""
    def q(func, name, unit):
        return float(default_of(func, name).to_decimal(unit))

    p_lo, p_hi = default_of(jr.analysis.bifurcations, "p_range")
    b_lo, b_hi = default_of(jr.spectrum_target, "band")
    return {"dt_ms": float(jr.DEFAULT_DT.to_decimal(u.ms)), "method": jr.DEFAULT_METHOD,
            "methods": tuple(sorted(jr.solvers.SOLVERS)),
            "fields": tuple(f.name for f in dataclasses.fields(jr.JRParams)),
            "sweep_transient_s": q(jr.sweep, "transient", u.second),
            "p_range_hz": (float(p_lo.to_decimal(u.Hz)), float(p_hi.to_decimal(u.Hz))),
            "n_regions": default_of(jr.connectome.example, "n_regions"),
            "speed_m_s": q(jr.network.network, "speed", u.meter / u.second),
            "rule": default_of(jr.network.network, "rule"), "rules": tuple(jr.network.RULES),
            "field_gain": default_of(jr.network.network, "field_gain"), "free": tuple(default_of(jr.fit, "free")),
            "steps": default_of(jr.fit, "steps"), "starts": default_of(jr.fit, "starts"),
            "optimizer": default_of(jr.fit, "optimizer"), "optimizers": tuple(jr.fitting.OPTIMIZERS),
            "learning_rate": default_of(jr.fit, "learning_rate"), "width_ms": q(jr.drives.pulse, "width", u.ms),
            "band_hz": (float(b_lo.to_decimal(u.Hz)), float(b_hi.to_decimal(u.Hz))),
            "psd_duration_s": q(jr.spectrum_target, "duration", u.second),
            "realisations": default_of(jr.spectrum_target, "realisations"),
            "erp_transient_s": q(jr.erp_target, "transient", u.second),
            "psd_transient_s": q(jr.spectrum_target, "transient", u.second),
            "network_values": tuple(jr.whole_brain.NETWORK_VALUES),
            "network_free": tuple(default_of(jr.whole_brain.NetworkModel.fit, "free")),
            "network_gain": default_of(jr.whole_brain.network_model, "gain"),
            "stimulus_width_ms": q(jr.whole_brain.stimulus, "width", u.ms),
            "network_erp_transient_s": q(jr.sensor_targets.network_erp_target, "transient", u.second),
            "tvb_sizes": tuple(jr.connectome.TVB_SIZES), "tvb_mapped": tuple(jr.leadfield.TVB_MAPPED)}


class ResumeNotice:
    """The ``progress`` of a resumable job: a tqdm bar (none with --quiet) that also says on stderr, in one line,
    when the job resumes from its folder and how much of it was already done."""

    def __init__(self, quiet: bool, unit: str, folder):
        bar = None
        if not quiet:
            from tqdm.auto import tqdm

            bar = tqdm(file=sys.stderr, unit=unit, dynamic_ncols=True)
        self.__dict__.update(bar=bar, unit=unit, folder=folder, total=0, initial=0, n=0)

    def __getattr__(self, name):
        bar = self.__dict__.get("bar")
        if bar is None:
            raise AttributeError(name)
        return getattr(bar, name)

    def __setattr__(self, name, value):
        setattr(self.bar, name, value) if self.bar is not None else self.__dict__.__setitem__(name, value)

    def update(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def set_description(self, desc):
        if self.initial:
            print(f"resuming: {self.initial} of {self.total} {self.unit} already done in {self.folder}",
                  file=sys.stderr)
        if self.bar is not None:
            self.bar.set_description(desc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def option(name: str, path: str | None = None, extra: tuple = ()):
    """Errors raised inside name the option (and ``path`` unless the message holds it already); a missing optional
    package (ImportError) becomes such an error too, its message naming what to install."""
    try:
        yield
    except (ValueError, TypeError, OSError, KeyError, ImportError) + extra as err:
        text = message(err)
        where = name if path is None or path in text else f"{name} {path}"
        raise ValueError(f"{where}: {text}") from err


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


def save(fig, path: Path, dpi: int) -> None:
    """Write a figure and release it (pyplot holds the figures it made until they are closed)."""
    import matplotlib.pyplot as plt  # here, after main() has chosen the Agg backend

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def run_regimes(args) -> int:
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
    header = ["regime", "source", "claim", "dominant frequency (Hz)", "EEG mean (mV)", "EEG SD (mV)",
              "EEG peak-to-peak (mV)", "alpha share (8–13 Hz)", "power within ±1 Hz of peak", "criterion",
              "claim holds"]
    table = []
    for m in jr.regimes.measure(results):
        reg = presets[m.name]
        save(jr.plot.regime_figure(results[m.name], reg.title, claim_holds=m.claim_holds), out / f"{m.name}.png", 110)
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


@contextlib.contextmanager
def scheduler(address: str | None, timeout: float):
    """A ``dask.distributed.Client`` of the scheduler at ``address`` with at least one worker (None: no address, no
    client), closed afterwards. dask not installed, or a scheduler or worker that does not answer within ``timeout``
    seconds, is a ValueError naming --scheduler."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(f"--scheduler needs dask.distributed, an optional dependency: {DASK_INSTALL}") from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, ValueError) as err:
        raise ValueError(f"--scheduler {address}: no dask scheduler answered within {timeout:g} s ({message(err)}); "
                         f"start one (dask scheduler) or check the address and --scheduler-timeout") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as err:
            raise ValueError(f"--scheduler {address}: no worker joined the scheduler within {timeout:g} s "
                             f"({message(err)}); start workers (dask worker {address})") from None
        yield client
    finally:
        client.close()


def run_sweep(args) -> int:
    out, step = Path(args.out), _step(args)
    design = jr.grid(drive=_drive(args.p, args.sigma), **_axes(args.param))
    with (scheduler(args.scheduler, args.scheduler_timeout) as client,
          ResumeNotice(args.quiet, "sets", out / "chunks") as meter):
        res = jr.sweep(design, duration=args.duration * u.second, transient=args.transient * u.second,
                       key=jax.random.key(args.seed), chunk_size=args.chunk_size, out_dir=out / "chunks",
                       progress=meter, executor=client, **step)
    labels = np.asarray(jr.analysis.label_regimes(res.features, res.freqs)).astype(str)
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
            save(jr.plot.regime_map(res, names[0], names[1], feature, title=sweep_title(args)).figure, out / fname,
                 110)
    counts = ", ".join(f"{k} {int((labels == k).sum())}" for k in sorted(set(labels.tolist())))
    print(f"{design.size} sets, labels: {counts}; written to {out}/", file=sys.stderr)
    return 0


def run_bifurcation(args) -> int:
    out, step = Path(args.out), _step(args)
    lo, hi = args.p_range
    p_range = (lo * u.Hz, hi * u.Hz)
    params = jr.JRParams()
    print("rest states, their stability and bifurcations in p (continuation, float64) ...", file=sys.stderr)
    with jax.enable_x64(True):  # the continuation and its eigenvalues need double precision near the folds
        points = jr.analysis.bifurcations(params, p_range)
        curve = jr.analysis.equilibrium_curve(params)
    extrema = None
    if args.n_sim > 0:
        print(f"limit cycles: EEG min/max at {args.n_sim} values of p from three starts (simulation) ...",
              file=sys.stderr)
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
    save(jr.plot.bifurcation_diagram(curve, extrema, points, p_range).figure, out / "bifurcation.png", 120)
    print(f"written to {out}/", file=sys.stderr)
    return 0


def sweep_title(args) -> str:
    """What the sweep's maps held fixed: the input (unless swept), the noise and the simulated time."""
    swept = [name for name, *_ in args.param]
    p = "p swept" if "p" in swept else f"p = {args.p:g} Hz"
    return (f"{p}, σ = {args.sigma:g} Hz·√s; {args.duration:g} s per set after a {args.transient:g} s transient")


def _fit_target(args):
    """(target data, objective) for --kind erp or psd; options are checked before the file is read."""
    step, band = _step(args), args.band
    kind_target = jr.erp_target if args.kind == "erp" else jr.spectrum_target
    transient = (default_of(kind_target, "transient") if args.transient is None else args.transient * u.second)
    fs = None if args.sampling_rate is None else args.sampling_rate * u.Hz
    with option("--target"):
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


def run_fit(args) -> int:
    out = Path(args.out)
    data, target = _fit_target(args)
    with ResumeNotice(args.quiet, "steps", out / "state") as meter:
        res = jr.fit(target, free=list(args.free), steps=args.steps, starts=args.starts,
                     key=jax.random.key(args.seed), optimizer=args.optimizer, learning_rate=args.lr,
                     progress=meter, out_dir=out / "state")
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.json").write_text(json.dumps(res.as_dict(), indent=1))
    np.savetxt(out / "history.csv", res.history, delimiter=",", header="loss per step (one column per start)")
    model = np.asarray(jax.jit(target.model)(res.params))
    if args.kind == "erp":
        fig = jr.plot.fit_figure("erp", data.times, data.values, model, UNIT_LABELS[args.unit])
    else:
        fig = jr.plot.fit_figure("psd", target.freqs, np.exp(target.log_psd), model, UNIT_LABELS[args.unit])
    save(fig, out / "fit.png", 110)
    print(res.summary())
    print(f"written to {out}/", file=sys.stderr)
    return 0


def load_connectome(spec: str):
    """--connectome: tvb:N, example[:N], a .npz, or a TVB zip or folder."""
    head, colon, rest = spec.partition(":")
    sizes = jr.connectome.TVB_SIZES
    if head == "tvb":
        if not rest.isdigit() or int(rest) not in sizes:
            raise ValueError(f"expected tvb:N with N one of {', '.join(map(str, sizes))}; got {spec!r}")
        return jr.connectome.tvb(int(rest))
    if head == "example":
        if colon and not rest.isdigit():
            raise ValueError(f"expected example or example:N (N regions, e.g. example:16); got {spec!r}")
        return jr.connectome.example(int(rest)) if rest else jr.connectome.example()
    if spec.endswith(".npz"):
        return jr.connectome.load_npz(spec)
    if Path(spec).exists():
        return jr.connectome.load_tvb(spec)
    raise ValueError(f"expected tvb:N (N one of {', '.join(map(str, sizes))}), example[:N], a .npz file or a TVB "
                     f"connectivity zip or folder; got {spec!r}, which is none of these (no such file)")


def run_network(args) -> int:
    out, step = Path(args.out), _step(args)
    every = round(args.record_ms / args.dt)
    if every < 1 or abs(every * args.dt - args.record_ms) > 1e-9 * args.record_ms:
        raise ValueError(f"--record-ms must be a whole number of steps of --dt {args.dt:g} ms; "
                         f"got {args.record_ms:g}")
    with option("--connectome"):
        con = load_connectome(args.connectome)
    field = None if args.field_length == 0 else jr.network.field_kernel(con, args.field_length * u.mmeter)
    lead = None
    if args.lead_field is not None:
        with option("--lead-field"):
            lead = jr.data.read_matrix(args.lead_field)
            if lead.shape[1] != con.n_regions:
                raise ValueError(f"{args.lead_field}: {lead.shape[1]} column(s), but the connectome has "
                                 f"{con.n_regions} regions (one column per region)")
    net = jr.network.network(con, coupling=args.coupling, speed=args.speed * u.meter / u.second, rule=args.rule,
                             field=field, field_gain=args.field_gain, lead_field=lead)
    chunk_steps = max(every, int(round(1000.0 / args.dt)) // every * every)   # about 1 s of whole windows per save
    with ResumeNotice(args.quiet, "steps", out / "state") as meter:
        res = jr.simulate(jr.JRParams(), duration=args.duration * u.second, drive=_drive(args.p, args.sigma),
                          key=jax.random.key(args.seed), network=net, transient=args.transient * u.second,
                          record=jr.Record(("eeg",), every=every, reduce="mean"), chunk_steps=chunk_steps,
                          progress=meter, out_dir=out / "state", **step)
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
    with open(out / "fc.csv", "w", newline="") as fh:       # the EEG correlation matrix, regions named
        w = csv.writer(fh)
        w.writerow(["region"] + list(con.labels))
        w.writerows([lab] + [f"{v:.6f}" for v in row] for lab, row in zip(con.labels, fc))
    save(jr.plot.network_figure(f, pw, fc, con.labels), out / "network.png", 110)
    print(f"{con.n_regions} regions, {args.duration:g} s: mean FC (off-diagonal) "
          f"{(fc.sum() - np.trace(fc)) / (fc.size - len(fc)):.3f}; written to {out}/", file=sys.stderr)
    return 0




COMMANDS = {"regimes": run_regimes, "sweep": run_sweep, "bifurcation": run_bifurcation, "network": run_network,
            "fit": run_fit}
