"""The ``jr-jax`` command."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def _regimes(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import brainunit as u
    import jax
    import matplotlib.pyplot as plt

    from . import regimes
    from .plot import regime_figure
    from .simulate import Record, simulate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    presets = regimes.presets()
    names = list(presets) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in presets]
    if unknown:
        print(f"unknown regime(s) {unknown}; known: {list(presets)}", file=sys.stderr)
        return 2
    key = jax.random.key(args.seed)
    results = {}
    for i, name in enumerate(names, 1):
        reg = presets[name]
        print(f"[{i}/{len(names)}] {reg.title}", file=sys.stderr)
        res = simulate(reg.params, duration=reg.duration, dt=args.dt * u.ms, drive=reg.drive, method=args.method,
                       key=jax.random.fold_in(key, i), record=Record(("y0", "y1", "y2", "eeg")),
                       progress=not args.quiet)
        results[name] = res
        fig = regime_figure(res, reg.title)
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
    rows = regimes.measure(results)
    header = ["regime", "source", "claim", "dominant frequency (Hz)", "EEG mean (mV)", "EEG SD (mV)",
              "EEG peak-to-peak (mV)", "alpha share (8–13 Hz)", "power within ±1 Hz of peak", "criterion",
              "claim holds"]
    table = []
    for m in rows:
        reg = presets[m.name]
        table.append([m.name, reg.source, reg.claim, f"{m.dominant_frequency:.2f}", f"{m.mean:.2f}", f"{m.std:.2f}",
                      f"{m.peak_to_peak:.2f}", f"{m.alpha_share:.2f}", f"{m.peak_share:.2f}", reg.criterion,
                      "yes" if m.claim_holds else "NO"])
    with open(out / "regimes.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header] + table)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    note = (f"\nMeasured by jr_jax on t > {regimes.MEASURE_AFTER:g} s of each run; method {args.method}, "
            f"dt = {args.dt} ms, seed {args.seed}, float32, backend {jax.default_backend()}.\n")
    (out / "regimes.md").write_text("\n".join(md) + "\n" + note)
    print("\n".join(md) + "\n" + note)
    print(f"figures and tables written to {out}/", file=sys.stderr)
    return 0


def _axis(spec: str):
    """NAME=low:high:n -> (name, values)."""
    try:
        name, rng = spec.split("=")
        lo, hi, n = rng.split(":")
        return name.strip(), float(lo), float(hi), int(n)
    except ValueError:
        raise SystemExit(f"--param must look like NAME=low:high:n (e.g. A=2:10:64); got {spec!r}.") from None


_AXIS_UNITS = {"A": "mV", "B": "mV", "v0": "mV", "a": "Hz", "b": "Hz", "e0": "Hz", "p": "Hz", "r": "1/mV"}


def _sweep(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import brainunit as u
    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from . import drives
    from .analysis import label_regimes
    from .plot import regime_map
    from .sweeps import grid, sweep

    units = {"mV": u.mV, "Hz": u.Hz, "1/mV": u.mV ** -1}
    axes = {}
    for spec in args.param:
        name, lo, hi, n = _axis(spec)
        unit = units.get(_AXIS_UNITS.get(name, ""), None)
        vals = np.linspace(lo, hi, n)
        axes[name] = vals * unit if unit is not None else vals
    if not axes:
        raise SystemExit("give at least one --param NAME=low:high:n")
    p = args.p * u.Hz
    drive = drives.white_noise(p, args.sigma * u.Hz * u.second ** 0.5) if args.sigma > 0 else drives.constant(p)
    design = grid(drive=drive, **axes)
    out = Path(args.out)
    res = sweep(design, duration=args.duration * u.second, transient=args.transient * u.second, dt=args.dt * u.ms,
                method=args.method, key=jax.random.key(args.seed), chunk_size=args.chunk_size, out_dir=out / "chunks",
                progress=not args.quiet)
    labels = label_regimes(res.features)
    scalars = [k for k, v in res.features.items() if k != "psd" and np.ndim(u.get_mantissa(v)) == 1]
    save = {k: np.asarray(u.get_mantissa(res.features[k])) for k in res.features}
    save.update({f"axis_{k}": np.asarray(u.get_mantissa(v)) for k, v in design.axes.items()})
    np.savez(out / "features.npz", freqs=np.asarray(res.freqs.mantissa), labels=labels, **save)
    mesh = np.meshgrid(*[np.asarray(u.get_mantissa(v)) for v in design.axes.values()], indexing="ij")
    with open(out / "features.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(design.axes) + ["label"] + scalars)
        for i in range(design.size):
            w.writerow([f"{m.ravel()[i]:.6g}" for m in mesh] + [labels[i]] +
                       [f"{float(np.asarray(u.get_mantissa(res.features[k]))[i]):.6g}" for k in scalars])
    names = list(design.axes)
    if len(names) == 2:
        for feature, fname in ((None, "regime_map.png"), ("dominant_frequency", "dominant_frequency.png"),
                               ("peak_to_peak", "peak_to_peak.png")):
            ax = regime_map(res, names[0], names[1], feature)
            ax.figure.savefig(out / fname, dpi=110)
            plt.close(ax.figure)
    counts = {k: int((labels == k).sum()) for k in sorted(set(labels))}
    print(f"{design.size} sets, labels: {counts}; written to {out}/", file=sys.stderr)
    return 0


def _bifurcation(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import brainunit as u
    import jax
    import numpy as np

    from . import analysis
    from .params import JRParams
    from .plot import bifurcation_diagram

    lo, hi = (float(x) for x in args.p_range.split(":"))
    p_range = (lo * u.Hz, hi * u.Hz)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = JRParams()
    with jax.enable_x64(True):
        points = analysis.bifurcations(params, p_range)
        curve = analysis.equilibrium_curve(params)
    extrema = None
    if args.n_sim > 0:
        extrema = analysis.limit_cycle_extrema(params, np.linspace(max(lo, 0.0), hi, args.n_sim) * u.Hz,
                                               progress=not args.quiet)
    with open(out / "bifurcations.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "p (Hz)", "EEG (mV)", "frequency (Hz)"])
        for b in points:
            freq = "" if b.frequency is None else f"{float(b.frequency.to_decimal(u.Hz)):.6f}"
            w.writerow([b.kind, f"{float(b.p.to_decimal(u.Hz)):.6f}", f"{float(b.eeg.to_decimal(u.mV)):.6f}", freq])
            print(f"{b.kind:5s} p = {float(b.p.to_decimal(u.Hz)):10.4f} Hz  EEG = {float(b.eeg.to_decimal(u.mV)):8.4f} mV"
                  + ("" if b.frequency is None else f"  frequency = {float(b.frequency.to_decimal(u.Hz)):.4f} Hz"))
    ax = bifurcation_diagram(curve, extrema, points, p_range)
    ax.figure.savefig(out / "bifurcation.png", dpi=120)
    print(f"written to {out}/", file=sys.stderr)
    return 0


def _fit(args) -> int:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import brainunit as u
    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from . import data, drives
    from . import fitting

    units = {"uv": u.uvolt, "mv": u.mV, "v": u.volt, "none": None}
    if args.unit.lower() not in units:
        print(f"--unit must be one of uV, mV, V, none; got {args.unit!r}", file=sys.stderr)
        return 2
    unit = units[args.unit.lower()]
    fs = None if args.sampling_rate is None else args.sampling_rate * u.Hz
    try:
        target_data = data.read_csv(args.target, sampling_rate=fs, unit=unit)
        transient = args.transient * u.second
        if args.kind == "erp":
            if not isinstance(target_data, data.Recording):
                raise ValueError(f"{args.target} holds a spectrum; --kind erp needs a time series.")
            onset = -target_data.t0 if target_data.t0 < 0 else args.onset
            drive = drives.constant(args.p * u.Hz) + drives.pulse(transient + onset * u.second, args.peak * u.Hz,
                                                                  args.width * u.ms)
            target = fitting.erp_target(target_data, drive, dt=args.dt * u.ms, transient=transient)
        else:
            lo, hi = (float(x) for x in args.band.split(":"))
            drive = (drives.white_noise(args.p * u.Hz, args.sigma * u.Hz * u.second ** 0.5) if args.sigma > 0
                     else drives.constant(args.p * u.Hz))
            target = fitting.spectrum_target(target_data, drive, band=(lo * u.Hz, hi * u.Hz),
                                             duration=args.duration * u.second, realisations=args.realisations,
                                             key=jax.random.key(args.seed), dt=args.dt * u.ms, transient=transient)
        out = Path(args.out)
        res = fitting.fit(target, free=args.free, steps=args.steps, starts=args.starts, key=jax.random.key(args.seed),
                          optimizer=args.optimizer, learning_rate=args.lr, progress=not args.quiet,
                          out_dir=out / "state")
    except (ValueError, TypeError) as err:
        print(f"jr-jax fit: {err}", file=sys.stderr)
        return 2
    (out / "fit.json").write_text(json.dumps(res.as_dict(), indent=1))
    np.savetxt(out / "history.csv", res.history, delimiter=",", header="loss per step (one column per start)")
    model = np.asarray(jax.jit(target.model)(res.params))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if args.kind == "erp":
        ax.plot(target_data.times, target_data.values, "k", label="target")
        ax.plot(target_data.times, model, "C3--", label="fitted model")
        ax.set_xlabel("time (s)")
    else:
        ax.semilogy(target.freqs, np.exp(target.log_psd), "k", label="target")
        ax.semilogy(target.freqs, model, "C3--", label="fitted model")
        ax.set_xlabel("frequency (Hz)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fit.png", dpi=110)
    print(res.summary())
    print(f"written to {out}/", file=sys.stderr)
    return 0


def _network(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import brainunit as u
    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from . import connectome, drives, network
    from .analysis import band_power, dominant_frequency, welch
    from .params import JRParams
    from .simulate import Record, simulate

    try:
        if args.connectome.startswith("example"):
            n = int(args.connectome.split(":")[1]) if ":" in args.connectome else 16
            con = connectome.example(n)
        elif args.connectome.endswith(".npz"):
            con = connectome.load_npz(args.connectome)
        else:
            con = connectome.load_tvb(args.connectome)
        field = None if args.field_length <= 0 else network.field_kernel(con, args.field_length * u.mmeter)
        lead = None if args.lead_field is None else np.loadtxt(args.lead_field, delimiter=",", ndmin=2)
        net = network.network(con, coupling=args.coupling, speed=args.speed * u.meter / u.second, rule=args.rule,
                              field=field, field_gain=args.field_gain, lead_field=lead)
        drive = (drives.white_noise(args.p * u.Hz, args.sigma * u.Hz * u.second ** 0.5) if args.sigma > 0
                 else drives.constant(args.p * u.Hz))
        out = Path(args.out)
        every = max(1, int(round(args.record_ms / args.dt)))
        res = simulate(JRParams(), duration=args.duration * u.second, dt=args.dt * u.ms, drive=drive,
                       method=args.method, key=jax.random.key(args.seed), network=net,
                       record=Record(("eeg",), every=every, reduce="mean"), transient=args.transient * u.second,
                       chunk_steps=max(every, int(round(1000.0 / args.dt)) // every * every), progress=not args.quiet,
                       out_dir=out / "state")
    except (ValueError, TypeError) as err:
        print(f"jr-jax network: {err}", file=sys.stderr)
        return 2
    x = np.asarray(res.eeg.to_decimal(u.mV))
    fs = float(res.sampling_rate.to_decimal(u.Hz))
    arrays = {"time_s": np.asarray(res.time.to_decimal(u.second)), "eeg_mV": x, "labels": np.asarray(con.labels)}
    if lead is not None:
        arrays["sensors_mV"] = np.asarray(net.sensors(res.eeg).to_decimal(u.mV))
    np.savez(out / "network.npz", **arrays)
    freqs, psd = welch(x.T, fs, nperseg=min(x.shape[0], int(2 * fs)))
    f, pw = np.asarray(freqs.mantissa), np.asarray(psd.mantissa)
    fc = np.corrcoef(x.T)
    with open(out / "regions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["region", "dominant frequency (Hz)", "EEG SD (mV)", "alpha share (8–13 Hz)"])
        for i, lab in enumerate(con.labels):
            total = band_power(f, pw[i], (0.5, fs / 2))
            w.writerow([lab, f"{dominant_frequency(f, pw[i]):.3f}", f"{x[:, i].std():.4f}",
                        f"{band_power(f, pw[i], (8.0, 13.0)) / total:.3f}"])
    np.savetxt(out / "fc.csv", fc, delimiter=",", fmt="%.6f")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    m = (f > 0) & (f <= 40)
    a1.semilogy(f[m], pw[:, m].T, lw=0.7)
    a1.set_xlabel("frequency (Hz)")
    a1.set_ylabel("EEG PSD per region (mV²/Hz)")
    im = a2.imshow(fc, vmin=-1, vmax=1, cmap="RdBu_r")
    a2.set_title("functional connectivity (EEG correlation)")
    fig.colorbar(im, ax=a2)
    fig.savefig(out / "network.png", dpi=110)
    print(f"{con.n_regions} regions, {args.duration:g} s: mean FC (off-diagonal) "
          f"{(fc.sum() - np.trace(fc)) / (fc.size - len(fc)):.3f}; written to {out}/", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="jr-jax", description="Jansen–Rit neural mass simulations in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("regimes", help="simulate the named regimes; write one figure each and a table (md, csv)")
    p.add_argument("--out", default="regimes_out", help="output folder (default: regimes_out)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", default="rk4", help="integrator: rk4 (default), heun, strang, euler")
    p.add_argument("--dt", type=float, default=0.5, help="step in ms (default 0.5, as in seed 000)")
    p.add_argument("--only", default="", help="comma-separated regime names (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_regimes)

    p = sub.add_parser("sweep", help="a resumable grid sweep with features, regime labels and maps")
    p.add_argument("--param", action="append", default=[], help="NAME=low:high:n, a JRParams field or p (repeatable)")
    p.add_argument("--p", type=float, default=220.0, help="mean input in Hz when p is not swept (default 220)")
    p.add_argument("--sigma", type=float, default=0.0, help="white-noise intensity in Hz·√s (default 0)")
    p.add_argument("--duration", type=float, default=4.0, help="recorded seconds per set (default 4)")
    p.add_argument("--transient", type=float, default=1.0, help="seconds discarded first (default 1)")
    p.add_argument("--dt", type=float, default=0.5, help="step in ms (default 0.5)")
    p.add_argument("--method", default="rk4", help="integrator (default rk4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=None, help="sets per compiled chunk (default: sized to a GPU's free memory; 4096 on a CPU)")
    p.add_argument("--out", default="sweep_out", help="output folder; run again to resume (default sweep_out)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("bifurcation", help="Hopf and fold points in p and the bifurcation diagram")
    p.add_argument("--p-range", default="0:400", help="low:high in Hz (default 0:400)")
    p.add_argument("--n-sim", type=int, default=80, help="simulated p values for limit-cycle extrema (default 80)")
    p.add_argument("--out", default="bifurcation_out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_bifurcation)

    p = sub.add_parser("network", help="simulate a connectome of columns (resumable); spectra, FC, sensors")
    p.add_argument("--connectome", default="example:16", help="TVB zip or folder, .npz, or example[:N] (default "
                                                              "example:16)")
    p.add_argument("--coupling", type=float, default=10.0, help="global coupling scale G (default 10)")
    p.add_argument("--speed", type=float, default=3.0, help="conduction speed in m/s (default 3)")
    p.add_argument("--rule", default="afferent", help="afferent (JR 1995 / TVB, default) or pyramidal (seed 001)")
    p.add_argument("--field-length", type=float, default=0.0, help="field ψ kernel length in mm (default 0: off)")
    p.add_argument("--field-gain", type=float, default=0.0, help="field feedback β (default 0)")
    p.add_argument("--lead-field", default=None, help="CSV of the (M, N) lead field: also write sensor EEG")
    p.add_argument("--p", type=float, default=120.0, help="mean input in Hz (default 120)")
    p.add_argument("--sigma", type=float, default=30.0, help="white-noise intensity in Hz·√s (default 30)")
    p.add_argument("--duration", type=float, default=10.0, help="recorded seconds (default 10; run again with a "
                                                                "longer one to extend)")
    p.add_argument("--transient", type=float, default=1.0, help="seconds discarded first (default 1)")
    p.add_argument("--dt", type=float, default=0.5, help="step in ms (default 0.5)")
    p.add_argument("--record-ms", type=float, default=2.0, help="EEG averaged over windows of this length (default 2)")
    p.add_argument("--method", default="rk4", help="integrator (default rk4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="network_out", help="output folder; run again to resume (default network_out)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_network)

    p = sub.add_parser("fit", help="fit JRParams fields to an ERP or a spectrum (resumable)")
    p.add_argument("--target", required=True, help="CSV: time,value (ERP or signal), frequency,psd, or one column")
    p.add_argument("--kind", choices=("erp", "psd"), required=True, help="time-domain ERP or log-spectrum fit")
    p.add_argument("--free", default="A,B,a,b", help="comma-separated JRParams fields to fit (default A,B,a,b)")
    p.add_argument("--out", default="fit_out", help="output folder; run again to resume (default fit_out)")
    p.add_argument("--unit", default="none", help="unit of the target values: uV, mV, V or none (default none: "
                                                   "a scale is fitted)")
    p.add_argument("--sampling-rate", type=float, default=None, help="Hz, for a CSV without a time column")
    p.add_argument("--p", type=float, default=60.0, help="mean input in Hz (default 60: rest, for ERPs)")
    p.add_argument("--sigma", type=float, default=0.0, help="psd: white-noise intensity in Hz·√s (default 0)")
    p.add_argument("--onset", type=float, default=0.1, help="erp: stimulus time in s from the epoch start when the "
                                                            "time column does not start before 0 (default 0.1)")
    p.add_argument("--peak", type=float, default=200.0, help="erp: stimulus pulse peak in Hz (default 200)")
    p.add_argument("--width", type=float, default=5.0, help="erp: pulse width in ms (default 5)")
    p.add_argument("--band", default="2:40", help="psd: low:high Hz (default 2:40)")
    p.add_argument("--duration", type=float, default=10.0, help="psd: simulated seconds per realisation (default 10)")
    p.add_argument("--realisations", type=int, default=4, help="psd: noise realisations per loss (default 4)")
    p.add_argument("--transient", type=float, default=1.0, help="seconds simulated before the epoch (default 1)")
    p.add_argument("--dt", type=float, default=0.5, help="step in ms (default 0.5)")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps (default 300)")
    p.add_argument("--starts", type=int, default=1, help="number of starts (default 1)")
    p.add_argument("--optimizer", default="adam",
                   help="adam (clipped, cosine schedule; default) or lbfgs (line search, no learning rate)")
    p.add_argument("--lr", type=float, default=0.05, help="adam's learning rate (default 0.05)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_fit)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
