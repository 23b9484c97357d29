"""The ``jr-jax fit-network`` command: a whole-brain network (:mod:`jr_jax.whole_brain`) fitted to a multi-channel
evoked response at the sensors (:func:`jr_jax.sensor_targets.network_erp_target`), with its figures.

Imported by :func:`jr_jax.cli.main` only once the options are parsed (:mod:`jr_jax.cli_options`), so that ``--help``
needs no JAX. Everything the command reads is checked before anything is compiled — the target file, the connectome,
the lead field, the stimulated regions, the free values — and a mistake names its option, what was expected and
what was given.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import brainunit as u
import jax
import numpy as np

import jr_jax as jr
import jr_jax.connectome
import jr_jax.data
import jr_jax.drives
import jr_jax.export
import jr_jax.leadfield
import jr_jax.network
import jr_jax.sensor_targets
import jr_jax.uncertainty
import jr_jax.whole_brain
from jr_jax.cli_commands import UNIT_LABELS, UNITS, ResumeNotice, load_connectome, option, save
from jr_jax.cli_options import PER_REGION, message

FIGURE_CHANNELS = 6
"""sensors.png draws the target channels of largest variance, this many."""

TIME_HEADS = ("time", "t", "time_s", "times")


# -- reading ------------------------------------------------------------------------------------------------------

def read_evoked_csv(path, unit=None) -> jr.data.Recording:
    """A multi-channel evoked response from a CSV file: a header ``time`` (seconds) then one name per channel, and one
    row of numbers per sample (``#`` starts a comment). The time column must increase evenly; ``unit`` is the
    values' unit (None: arbitrary units). Every error names the file, and the line where one is at fault."""
    where = str(path)
    text = jr.data.decode_text(Path(path).read_bytes(), where)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError(f"{where}: the file is empty; expected a header 'time,<channel>,…' and rows of numbers.")
    header = [c.strip() for c in next(csv.reader([lines[first]]))]
    if len(header) < 2 or header[0].lower() not in TIME_HEADS:
        raise ValueError(f"{where}, line {first + 1}: expected a header 'time' (s) then one name per channel, e.g. "
                         f"time,Fp1,Fp2; got {lines[first][:80]!r}.")
    table = jr.data.parse_matrix("\n" * (first + 1) + "\n".join(lines[first + 1:]), where, ",")
    if table.shape[1] != len(header):
        raise ValueError(f"{where}: the header (line {first + 1}) names {len(header)} columns; the rows hold "
                         f"{table.shape[1]}.")
    if table.shape[0] < 2:
        raise ValueError(f"{where}: expected at least two rows of numbers after the header; got {table.shape[0]}.")
    t = table[:, 0]
    steps = np.diff(t)
    median = float(np.median(steps))
    if not (median > 0 and np.all(np.abs(steps - median) <= jr.data.TIME_STEP_RTOL * median)):
        i = int(np.argmax(np.abs(steps - median))) + 1
        raise ValueError(f"{where}: the time column must increase evenly (s); the step to sample {i} is "
                         f"{steps[i - 1]:.6g} s, the median step {median:.6g} s.")
    fs = (t.size - 1) / (t[-1] - t[0])
    lo, hi = jr.data.SAMPLING_RATE_RANGE_HZ
    if not lo <= fs <= hi:
        raise ValueError(f"{where}: the time column gives a sampling rate of {fs:.6g} Hz, outside {lo:g} Hz–"
                         f"{hi / 1e3:g} kHz; expected times in seconds (milliseconds divided by 1000).")
    try:
        return jr.data.recording(table[:, 1:], fs * u.Hz, unit, t0=float(t[0]), channels=header[1:])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def read_target(path: str, unit_name: str | None):
    """(Recording, MNE info or None) of --target: a CSV (:func:`read_evoked_csv`) or a .fif file's first Evoked."""
    if path.lower().endswith((".fif", ".fif.gz")):
        if unit_name is not None:
            raise ValueError(f"--unit applies to a CSV target; a .fif file carries its unit (MNE keeps volts); got "
                             f"--unit {unit_name} with --target {path}")
        try:
            import mne
        except ImportError:
            raise ValueError(f'--target {path}: a .fif file is read with MNE-Python, an optional dependency; install '
                             f'it with pip install "jr_jax[mne]" (or give a CSV)') from None
        with option("--target", path, (RuntimeError,)):
            with warnings.catch_warnings():      # a name without -ave.fif is still read
                warnings.filterwarnings("ignore", "This filename", RuntimeWarning)
                evoked = mne.read_evokeds(path, verbose=False)[0]
            return jr.data.from_mne(evoked), evoked.info
    with option("--target", path):
        return read_evoked_csv(path, UNITS[unit_name or "none"]), None


def load_lead_field(spec: str, con, args, channels: tuple):
    """--lead-field: a :class:`jr_jax.leadfield.LeadField` (tvb:eeg65) for the target's channels, or a matrix whose
    rows are those channels in order."""
    if spec.startswith("tvb:"):
        mapped = jr.leadfield.TVB_MAPPED
        if spec != "tvb:eeg65":
            raise ValueError(f"expected tvb:eeg65 or a .npy/.csv matrix (channels × regions); got {spec!r}")
        if con.n_regions not in mapped:
            raise ValueError(f"tvb:eeg65 maps onto TVB's connectomes of {' or '.join(map(str, mapped))} regions; "
                             f"--connectome {args.connectome} has {con.n_regions}")
        lf = jr.leadfield.tvb_eeg65(con.n_regions)
        lf.check_regions(con.labels)
        return lf
    if spec.lower().endswith(".npy"):
        m = np.load(spec, allow_pickle=False)
    elif spec.lower().endswith((".csv", ".txt")):
        m = jr.data.read_matrix(spec)
    else:
        raise ValueError(f"expected tvb:eeg65, a .npy file or a .csv file of numbers (channels × regions); got "
                         f"{spec!r}")
    want = (len(channels), con.n_regions)
    if np.ndim(m) != 2 or np.shape(m) != want:
        raise ValueError(f"{spec}: expected a matrix of shape {want}: one row per channel of --target, in its order, "
                         f"one column per region of --connectome {args.connectome}; got shape {np.shape(m)}")
    return np.asarray(m, dtype=np.float64)


def check_channels(rec, lf, spec: str) -> None:
    """The target's channels must be sensors of the lead field (a subset, in any order)."""
    unknown = [c for c in rec.channels if c not in lf.sensors]
    if unknown:
        more = " …" if len(unknown) > 12 else ""
        raise ValueError(f"channel(s) {unknown[:12]}{more} are not sensors of --lead-field {spec}; expected names "
                         f"among its {lf.n_sensors} sensors ({', '.join(lf.sensors[:10])}, …)")


# -- the model ----------------------------------------------------------------------------------------------------

def build_network(args, con, lead, channels: tuple):
    """The network of the options: the LeadField picked to the target's channels, or the matrix named by them."""
    speed = args.speed * u.meter / u.second
    glob, _ = args.free
    # a free speed needs a ring buffer for slower speeds than the start: here down to half of it
    longest = (jr.network.network(con, speed=speed / 2).delays().max() if "speed" in glob else None)
    if isinstance(lead, jr.leadfield.LeadField):
        return jr.network.network(con, coupling=args.coupling, speed=speed, rule=args.rule,
                                  lead_field=lead.select(channels), max_delay=longest)
    net = jr.network.network(con, coupling=args.coupling, speed=speed, rule=args.rule, lead_field=lead,
                             max_delay=longest)
    return dataclasses.replace(net, sensor_names=tuple(channels))


def stimulus_drive(args, net, rec):
    """Background input plus the pulse into --stimulus at --onset-ms on the target's time axis."""
    labels = tuple(net.labels)
    jr.whole_brain.region_indices(labels, args.stimulus, "--stimulus")     # its errors name --stimulus
    start = args.transient + args.onset_ms * 1e-3 - rec.t0      # simulated seconds to the stimulus
    end = args.transient + (rec.values.shape[0] - 1) / rec.fs_hz
    if not 0 <= start <= end:
        raise ValueError(f"--onset-ms {args.onset_ms:g}: expected a time within the simulation, from "
                         f"{(rec.t0 - args.transient) * 1e3:g} ms (the start of --transient) to "
                         f"{(rec.t0 + end - args.transient) * 1e3:g} ms (the target's last sample)")
    with option("--stimulus-peak"):
        pulse = jr.whole_brain.stimulus(net, list(args.stimulus), np.asarray(args.stimulus_peak) * u.Hz,
                                        onset=start * u.second, width=args.stimulus_width * u.ms)
    return jr.drives.constant(args.p * u.Hz) + pulse


def check_free(args, model, scaled: bool) -> None:
    """--free against the network: regions exist, the values can be freed, gain is not a profiled scale's twin."""
    glob, per = args.free
    labels = model.labels
    for name, regions in per.items():
        if regions is not None:
            with option("--free"):
                jr.whole_brain.region_indices(labels, list(regions), f"{name}:{'+'.join(regions)}")
    if "gain" in glob and scaled:
        raise ValueError("--free gain: the target's scale is fitted (a CSV without --unit, or --scale), and gain is "
                         "the same factor; expected a target with a unit (--unit, or a .fif) without --scale, or "
                         "gain not free")
    with option("--free"):
        model.parametrisation(glob, per_region={k: None if v is None else list(v) for k, v in per.items()})


def prepare(args):
    """(recording, MNE info or None, connectome, lead field, target) of the options, each checked."""
    rec, info = read_target(args.target, args.unit)
    with option("--connectome"):
        con = load_connectome(args.connectome)
    with option("--lead-field"):
        lead = load_lead_field(args.lead_field, con, args, rec.channels)
    if isinstance(lead, jr.leadfield.LeadField):
        with option("--target", args.target):
            check_channels(rec, lead, args.lead_field)
    with option("--connectome"):
        net = build_network(args, con, lead, rec.channels)
    model = jr.whole_brain.network_model(net, drive=stimulus_drive(args, net, rec), gain=args.gain)
    with option(f"--target with --dt {args.dt:g} ms and --transient {args.transient:g} s"):
        target = jr.sensor_targets.network_erp_target(rec, model, dt=args.dt * u.ms, method=args.method,
                                                      transient=args.transient * u.second,
                                                      scale=True if args.scale else None)
    check_free(args, model, target.scale)
    return rec, info, con, lead, target


# -- the command --------------------------------------------------------------------------------------------------

def settings(args, rec, con, target) -> dict:
    """The options that fixed the fit, JSON-ready (scale: whether one scale for all channels was fitted)."""
    glob, per = args.free
    return {"target": args.target, "channels": list(rec.channels), "sampling_rate_hz": rec.fs_hz, "t0_s": rec.t0,
            "unit": None if rec.unit is None else str(rec.unit), "connectome": args.connectome,
            "n_regions": con.n_regions, "lead_field": args.lead_field, "stimulus": list(args.stimulus),
            "stimulus_peak_hz": list(args.stimulus_peak), "stimulus_width_ms": args.stimulus_width,
            "onset_ms": args.onset_ms, "free": list(glob),
            "per_region": {k: PER_REGION if v is None else list(v) for k, v in per.items()},
            "coupling": args.coupling, "speed_m_s": args.speed, "rule": args.rule, "gain": args.gain, "p_hz": args.p,
            "scale": bool(target.scale), "dt_ms": args.dt, "method": args.method, "transient_s": args.transient,
            "steps": args.steps, "starts": args.starts, "optimizer": args.optimizer, "learning_rate": args.lr,
            "seed": args.seed}


def run_fit_network(args) -> int:
    out = Path(args.out)
    rec, info, con, lead, target = prepare(args)
    glob, per = args.free
    per_region = {k: None if v is None else list(v) for k, v in per.items()}
    with ResumeNotice(args.quiet, "steps", out / "state") as meter, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", jr.uncertainty.NotIdentifiableWarning)
        res = target.start.fit(target, free=glob, per_region=per_region, steps=args.steps, starts=args.starts,
                               key=jax.random.key(args.seed), optimizer=args.optimizer, learning_rate=args.lr,
                               progress=meter, out_dir=out / "state")
    notes = [str(w.message) for w in caught if issubclass(w.category, jr.uncertainty.NotIdentifiableWarning)]
    out.mkdir(parents=True, exist_ok=True)
    doc = {"command": "fit-network", "settings": settings(args, rec, con, target), **res.as_dict(), "warnings": notes}
    (out / "fit.json").write_text(json.dumps(doc, indent=1))
    np.savetxt(out / "history.csv", res.history, delimiter=",", header="loss per step (one column per start)")
    fitted = np.asarray(jax.jit(target.model)(res.params), np.float64)
    np.savetxt(out / "fitted.csv", np.c_[rec.times, fitted], delimiter=",", comments="", fmt="%.9g",
               header=",".join(("time",) + tuple(rec.channels)))
    label = UNIT_LABELS[args.unit or "none"] if info is None else str(rec.unit)   # a .fif: MNE's volts
    save(sensors_figure(rec, fitted, label, args.onset_ms), out / "sensors.png", 110)
    fig, why = topomap_figure(rec, fitted, label, lead, info)
    if fig is None:
        print(f"topomap.png not drawn: {why}", file=sys.stderr)
    else:
        save(fig, out / "topomap.png", 110)
    save(regions_figure(con, res, per, args.stimulus), out / "regions.png", 110)
    for note in notes:
        print(f"jr-jax fit-network: warning: {note}", file=sys.stderr)
    print(res.summary())
    print(f"written to {out}/", file=sys.stderr)
    return 0


# -- figures ------------------------------------------------------------------------------------------------------

def sensors_figure(rec, fitted: np.ndarray, label: str, onset_ms: float):
    """Fitted against target traces of the FIGURE_CHANNELS channels of largest target variance."""
    import matplotlib.pyplot as plt

    y = np.asarray(rec.values)
    picks = np.sort(np.argsort(y.var(axis=0))[::-1][:FIGURE_CHANNELS])
    cols = min(3, len(picks))
    rows = -(-len(picks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.6 * rows), sharex=True, squeeze=False,
                             constrained_layout=True)
    t = rec.times * 1e3
    for ax, k in zip(axes.flat, picks):
        ax.plot(t, y[:, k], color="black", lw=1.2, label="target")
        ax.plot(t, fitted[:, k], color="tab:red", lw=1.2, ls="--", label="fitted")
        ax.axvline(onset_ms, color="grey", lw=0.8, ls=":")
        ax.set_title(rec.channels[k], fontsize=10)
    for ax in axes.flat[len(picks):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    for ax in axes[:, 0]:
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("sensors: target and fitted (the channels of largest variance; dotted: the stimulus)")
    return fig


def topomap_info(rec, lead, info):
    """MNE info with the channels' positions (from the lead field, the .fif or the standard 10-05 montage), or None."""
    import mne

    if isinstance(lead, jr.leadfield.LeadField):
        return jr.export.to_mne(np.zeros((2, len(rec.channels))) * u.mV, lead.select(rec.channels),
                                sampling_rate=rec.sampling_rate).info
    if info is not None:
        return mne.pick_info(info, [info.ch_names.index(c) for c in rec.channels])
    made = jr.export.to_mne(np.zeros((2, len(rec.channels))) * u.mV, list(rec.channels),
                            sampling_rate=rec.sampling_rate).info
    # MNE 1.13 renamed the standard 10-05 montage (on the Colin27 head); older versions know the first name only
    name = next((m for m in ("colin27_1005", "standard_1005") if m in mne.channels.get_builtin_montages()), None)
    try:
        made.set_montage(name, verbose=False)
    except (ValueError, TypeError):   # a channel not in the montage, or no montage of that name (None)
        return None
    return made if name is not None else None


def topomap_figure(rec, fitted: np.ndarray, label: str, lead, info):
    """(figure, None): MNE topomaps of the target and the fit at the peak of the target's global field power (its SD
    over channels); (None, why) without MNE or without channel positions."""
    import matplotlib.pyplot as plt

    try:
        import mne
    except ImportError:
        return None, 'MNE-Python is not installed (pip install "jr_jax[mne]")'
    where = topomap_info(rec, lead, info)
    if where is None:
        return None, ("the channels have no positions (give a .fif target, --lead-field tvb:eeg65, or standard 10-05 "
                      "channel names)")
    y = np.asarray(rec.values)
    k = int(np.argmax(y.std(axis=1)))
    top = float(max(np.abs(y[k]).max(), np.abs(fitted[k]).max())) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(8.5, 3.8), gridspec_kw={"width_ratios": [1, 1, 0.06]},
                             constrained_layout=True)
    for ax, x, title in ((axes[0], y[k], "target"), (axes[1], fitted[k], "fitted")):
        im, _ = mne.viz.plot_topomap(x, where, axes=ax, vlim=(-top, top), show=False, cmap="RdBu_r")
        ax.set_title(title)
    fig.colorbar(im, cax=axes[2], label=label)
    fig.suptitle(f"at the peak of the global field power, t = {rec.times[k] * 1e3:.0f} ms")
    return fig, None


def regions_figure(con, res, per: dict, stimulus: tuple):
    """Per-region estimates at the regions' centres (x–y, mm; a circle when the connectome has none), one panel per
    field freed per region; the stimulated regions ringed. Without per-region values: the layout and the stimulus."""
    import matplotlib.pyplot as plt

    labels = list(con.labels)
    if con.centres is not None:
        xy = np.asarray(con.centres.to_decimal(u.mmeter))[:, :2]
    else:
        angle = 2 * np.pi * np.arange(len(labels)) / len(labels)
        xy = np.c_[np.cos(angle), np.sin(angle)]
    stim = [labels.index(s) for s in stimulus]
    names = list(per) or [None]
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.6), squeeze=False, constrained_layout=True)
    values = res.values
    for ax, name in zip(axes[0], names):
        ax.scatter(xy[:, 0], xy[:, 1], s=18, color="lightgrey", zorder=1)
        ax.scatter(xy[stim, 0], xy[stim, 1], s=160, facecolors="none", edgecolors="tab:red", lw=1.5, zorder=3,
                   label="stimulated")
        if name is None:
            text = ", ".join(f"{k} = {float(u.get_mantissa(v)):.4g}" for k, v in values.items())
            ax.set_title(f"no per-region values free\n{text}", fontsize=9)
        else:
            idx = [i for i, lab in enumerate(labels) if f"{name}[{lab}]" in values]
            est = [float(u.get_mantissa(values[f"{name}[{labels[i]}]"])) for i in idx]
            sc = ax.scatter(xy[idx, 0], xy[idx, 1], c=est, s=70, cmap="viridis", zorder=2, edgecolors="black",
                            lw=0.5)
            unit = res.fields[res.free.index(f"{name}[{labels[idx[0]]}]")].unit
            fig.colorbar(sc, ax=ax, shrink=0.8, label=f"{name}{'' if unit.is_unitless else f' ({unit})'}")
            for i in idx if len(idx) <= 12 else []:
                ax.annotate(labels[i], xy[i], fontsize=8, xytext=(4, 4), textcoords="offset points")
            ax.set_title(f"{name} per region (grey: not free)", fontsize=10)
        ax.set_xlabel("x (mm)" if con.centres is not None else "")
        ax.set_ylabel("y (mm)" if con.centres is not None else "")
        ax.set_aspect("equal")
        ax.legend(fontsize=8, loc="lower right")
    return fig


COMMANDS = {"fit-network": run_fit_network}
