"""The ``jr-jax`` command's options: one parser, its common options declared once, the library's defaults from
``LIBRARY_DEFAULTS`` and the few choices that belong to the command alone from ``CLI_DEFAULTS``.

This module imports neither JAX nor the library, so that ``jr-jax --help`` and a mistaken option answer at once;
``LIBRARY_DEFAULTS`` is therefore a table, which the tests compare with the library
(:func:`jr_jax.cli_commands.library_defaults`).

Each option's value is checked as it is parsed (a positive duration, a whole number of starts, low < high, a known
integrator), so a nonsensical value is a :class:`CommandLineError` naming the option before anything runs.
"""

from __future__ import annotations

import argparse
import math

CLI_DEFAULTS = {
    "seed": 0,                 # a fixed seed, so that the same command writes the same files
    "sweep_p": 220.0,          # Hz: Jansen & Rit's mean input (120–320 Hz), where the default column cycles at alpha
    "sweep_sigma": 0.0,        # Hz·√s: a deterministic drive, so that each set's features are its own limit set
    "sweep_duration": 4.0,     # s: two of the features' 2 s spectral segments per set
    "n_sim": 80,               # simulated p values for the diagram's limit-cycle branches (0: none)
    "network_p": 120.0,        # Hz: the mean input of the brainmass Jansen–Rit tutorial's baseline
    "network_sigma": 30.0,     # Hz·√s: that baseline's noise intensity
    "network_coupling": 10.0,  # G: the coupling of the network notebook and the network benchmark
    "network_duration": 10.0,  # s: long enough for 0.5 Hz Welch spectra and stable correlations
    "network_transient": 1.0,  # s: drops the approach from the zero state (simulate records from t = 0)
    "record_ms": 2.0,          # ms: 500 Hz EEG, far above the 40 Hz the figure shows
    "field_length": 0.0,       # mm: 0 leaves the field feedback off
    "fit_p": 60.0,             # Hz: a resting column for ERPs (the stimulus rides on it)
    "fit_sigma": 0.0,          # Hz·√s: a deterministic drive for spectra unless asked
    "onset": 0.1,              # s: stimulus time in an epoch whose time column starts at 0
    "peak": 200.0,             # Hz: stimulus pulse peak, enough to evoke a response from rest
    "fit_network_coupling": 0.1,   # G: the start of the whole-brain examples (TVB's 76-region weights reach 3)
    "fit_network_p": 90.0,         # Hz: the background input of the whole-brain examples (a column at rest)
    "stimulus_peak": 300.0,        # Hz: a pulse that evokes a response in the stimulated region from that rest
    "onset_ms": 0.0,               # ms: the stimulus at time 0 of the target's time axis (MNE's convention)
    "scheduler_timeout": 10.0,     # s: a dask scheduler that has not answered by then is not there
}


LIBRARY_DEFAULTS = {
    "dt_ms": 0.5,                              # jr.DEFAULT_DT
    "method": "rk4",                           # jr.DEFAULT_METHOD
    "methods": ("euler", "heun", "kutta38", "rk4", "strang"),       # jr.solvers.SOLVERS
    "fields": ("A", "B", "a", "b", "C", "c1", "c2", "c3", "c4", "e0", "v0", "r"),   # jr.JRParams
    "sweep_transient_s": 1.0,                  # jr.sweep
    "p_range_hz": (0.0, 400.0),                # jr.analysis.bifurcations
    "n_regions": 16,                           # jr.connectome.example
    "speed_m_s": 3.0,                          # jr.network.network
    "rule": "afferent",
    "rules": ("afferent", "pyramidal"),        # jr.network.RULES
    "field_gain": 0.0,
    "free": ("A", "B", "a", "b"),              # jr.fit
    "steps": 300,
    "starts": 1,
    "optimizer": None,                         # the library chooses
    "optimizers": ("adam", "lbfgs"),           # jr.fitting.OPTIMIZERS
    "learning_rate": 0.05,
    "width_ms": 5.0,                           # jr.drives.pulse
    "band_hz": (2.0, 40.0),                    # jr.spectrum_target
    "psd_duration_s": 10.0,
    "realisations": 4,
    "erp_transient_s": 1.0,                    # jr.erp_target
    "psd_transient_s": 1.0,                    # jr.spectrum_target
    "network_values": ("G", "speed", "stimulus", "gain"),   # jr.whole_brain.NETWORK_VALUES
    "network_free": ("G",),                    # jr.whole_brain.NetworkModel.fit
    "network_gain": 1.0,                       # jr.whole_brain.network_model
    "stimulus_width_ms": 5.0,                  # jr.whole_brain.stimulus
    "network_erp_transient_s": 1.0,            # jr.sensor_targets.network_erp_target
    "tvb_sizes": (66, 68, 76, 96, 192),        # jr.connectome.TVB_SIZES
    "tvb_mapped": (76, 192),                   # jr.leadfield.TVB_MAPPED: the sizes tvb:eeg65 maps onto
}
"""The library's defaults that the options show and use, as plain numbers and names (checked against the library by
tests/test_bad_files_and_cli.py)."""

LIB = LIBRARY_DEFAULTS
UNIT_NAMES = ("uv", "mv", "v", "none")   # --unit of a fit's target values


class CommandLineError(ValueError):
    """A mistake in the command line, found by the parser; ``prog`` is the command it belongs to (``jr-jax sweep``)."""

    def __init__(self, message: str, prog: str):
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`CommandLineError` instead of printing its usage and exiting, so that
    the command reports every mistake the same way (one line); its subcommands' parsers are of this class too."""

    def error(self, message):
        raise CommandLineError(message, self.prog)


def _checked(kind, test, need: str):
    """A ``type=`` for argparse: ``kind(text)`` that must pass ``test``, else an error saying what was needed."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError(f"must be {need}; got {text!r}")
        return value
    return parse


POSITIVE = _checked(float, lambda x: 0 < x < math.inf, "a positive number")
NON_NEGATIVE = _checked(float, lambda x: 0 <= x < math.inf, "a number >= 0")
FINITE = _checked(float, math.isfinite, "a finite number")
POSITIVE_INT = _checked(int, lambda n: n >= 1, "a whole number >= 1")
COUNT = _checked(int, lambda n: n >= 0, "a whole number >= 0")
SEED = _checked(int, lambda n: 0 <= n < 2 ** 63, "a whole number from 0 to 2**63 - 1")
FOLDER = _checked(str, lambda s: bool(s.strip()), "a folder name")


def span(unit: str, example: str):
    """A ``type=`` for low:high in ``unit``: two finite numbers, low < high."""
    def parse(text: str) -> tuple[float, float]:
        try:
            lo, hi = (float(x) for x in text.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must look like low:high in {unit}, e.g. {example}; got {text!r}") \
                from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise argparse.ArgumentTypeError(f"must be finite with low < high, e.g. {example}; got {text!r}")
        return lo, hi
    return parse


def field_names() -> list[str]:
    return list(LIBRARY_DEFAULTS["fields"])


def axis(spec: str) -> tuple[str, float, float, int]:
    """--param NAME=low:high:n: a JRParams field (or p, the drive's mean rate) and n values from low to high."""
    try:
        name, rng = spec.split("=")
        lo, hi, n = rng.split(":")
        name, lo, hi, n = name.strip(), float(lo), float(hi), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like NAME=low:high:n, e.g. A=2:10:64; got {spec!r}") from None
    if name != "p" and name not in field_names():
        raise argparse.ArgumentTypeError(f"unknown name {name!r}; give p or a JRParams field: "
                                         f"{', '.join(field_names())}")
    if n < 1 or not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (n > 1 and lo == hi):
        raise argparse.ArgumentTypeError(f"{name} needs finite low <= high and n >= 1 values (low < high for n > 1); "
                                         f"got {spec!r}")
    return name, lo, hi, n


def free_fields(text: str) -> tuple[str, ...]:
    """--free: comma-separated JRParams fields, each once."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in field_names()]
    if unknown or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must name JRParams fields, each once, from {', '.join(field_names())}; "
                                         f"got {text!r}")
    return names


PER_REGION = "per_region"   # --free NAME:per_region: NAME free in every region


def network_free(text: str) -> tuple[tuple[str, ...], dict]:
    """--free of fit-network: NAME (one value for all regions: a JRParams field, G, speed, stimulus or gain),
    NAME:per_region (a JRParams field free in every region) or NAME:R1+R2 (in regions R1 and R2), comma-separated;
    (global names, {field: None for every region, or a tuple of region labels})."""
    need = (f"must be comma-separated NAME, NAME:{PER_REGION} or NAME:REGION+REGION, NAME a JRParams field "
            f"({', '.join(field_names())}) or, without a region part, one of {', '.join(LIB['network_values'])}; "
            "each name once, e.g. G,A:rV2+rPFCDL")
    glob, per = [], {}
    for item in (x.strip() for x in text.split(",")):
        name, colon, regions = (s.strip() for s in item.partition(":"))
        picked = [r.strip() for r in regions.split("+")]
        known = field_names() if colon else field_names() + list(LIB["network_values"])
        if name not in known or name in glob or name in per or (colon and not all(picked)):
            raise argparse.ArgumentTypeError(f"{need}; got {text!r} (at {item!r})")
        if not colon:
            glob.append(name)
        elif regions == PER_REGION:
            per[name] = None
        elif len(set(picked)) != len(picked):
            raise argparse.ArgumentTypeError(f"{need}; got {text!r} (a region twice in {item!r})")
        else:
            per[name] = tuple(picked)
    return tuple(glob), per


def names_list(text: str) -> tuple[str, ...]:
    """Comma-separated names, each once (region labels)."""
    names = tuple(n.strip() for n in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must be comma-separated region labels, each once, e.g. rV2 or rV2,lV2; "
                                         f"got {text!r}")
    return names


def peaks(text: str) -> tuple[float, ...]:
    """One number, or comma-separated numbers (one per stimulated region), each finite and > 0."""
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(0 < v < math.inf for v in values):
        raise argparse.ArgumentTypeError(f"must be a positive number in Hz, or one per --stimulus region "
                                         f"separated by commas, e.g. 300 or 300,200; got {text!r}")
    return values


def message(err: BaseException) -> str:
    """One line for an error: a file error names its file; KeyError's quotes are dropped."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    elif isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def _common() -> argparse.ArgumentParser:
    """Options of every subcommand."""
    p = Parser(add_help=False)
    p.add_argument("--seed", type=SEED, default=CLI_DEFAULTS["seed"],
                   help=f"random seed of the noise (default {CLI_DEFAULTS['seed']})")
    p.add_argument("--dt", type=POSITIVE, default=LIB["dt_ms"],
                   help=f"integration step in ms (default: the library's {LIB['dt_ms']:g} ms)")
    p.add_argument("--method", default=LIB["method"], choices=LIB["methods"], metavar="METHOD",
                   help=f"integrator: {', '.join(LIB['methods'])} (default: the library's {LIB['method']})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on an error, show the exception with its traceback instead of one line")
    return p


def _out(p, default: str, resumable: bool = False) -> None:
    again = "; run again with the same options to resume" if resumable else ""
    p.add_argument("--out", default=default, type=FOLDER, help=f"output folder (default {default}){again}")


def _add_regimes(sub, common) -> None:
    p = sub.add_parser("regimes", parents=[common],
                       help="simulate the named regimes; write one figure each and a table (md, csv)")
    _out(p, "regimes_out")
    p.add_argument("--only", default="", help="comma-separated regime names (default: all of "
                                              "jr_jax.regimes.presets())")


def _input(p, mean: float, sigma: float, when: str = "") -> None:
    """--p and --sigma: the drive's mean input and white-noise intensity."""
    p.add_argument("--p", type=FINITE, default=mean, help=f"mean input in Hz{when} (default {mean:g})")
    p.add_argument("--sigma", type=NON_NEGATIVE, default=sigma,
                   help=f"white-noise intensity in Hz·√s (default {sigma:g})")


def _add_sweep(sub, common) -> None:
    p = sub.add_parser("sweep", parents=[common], help="a resumable grid sweep with features, regime labels and maps")
    _out(p, "sweep_out", resumable=True)
    p.add_argument("--param", action="append", default=[], type=axis,
                   help="NAME=low:high:n in the field's unit (mV, Hz, 1/mV or none), a JRParams field or p in Hz "
                        "(repeatable, one per axis)")
    _input(p, CLI_DEFAULTS["sweep_p"], CLI_DEFAULTS["sweep_sigma"], " when p is not swept")
    p.add_argument("--duration", type=POSITIVE, default=CLI_DEFAULTS["sweep_duration"],
                   help=f"recorded seconds per set (default {CLI_DEFAULTS['sweep_duration']:g})")
    transient = LIB["sweep_transient_s"]
    p.add_argument("--transient", type=NON_NEGATIVE, default=transient,
                   help=f"seconds simulated and discarded first (default: the library's {transient:g} s)")
    p.add_argument("--chunk-size", type=POSITIVE_INT, default=None,
                   help="sets per compiled chunk (default: the library's, sized to a GPU's free memory)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the chunks on the workers of this dask scheduler (e.g. tcp://host:8786); each worker "
                        "needs jr_jax and --out at the same path (pip install \"jr_jax[dask]\")")
    timeout = CLI_DEFAULTS["scheduler_timeout"]
    p.add_argument("--scheduler-timeout", type=POSITIVE, default=timeout, metavar="SECONDS",
                   help=f"seconds to wait for the scheduler to answer (default {timeout:g})")


def _add_bifurcation(sub, common) -> None:
    p = sub.add_parser("bifurcation", parents=[common], help="Hopf and fold points in p and the bifurcation diagram")
    _out(p, "bifurcation_out")
    default = "{:g}:{:g}".format(*LIB["p_range_hz"])
    p.add_argument("--p-range", default=default, type=span("Hz", "0:400"),
                   help=f"low:high in Hz (default: the library's {default})")
    p.add_argument("--n-sim", type=COUNT, default=CLI_DEFAULTS["n_sim"],
                   help=f"simulated p values for limit-cycle extrema (default {CLI_DEFAULTS['n_sim']}; 0: none)")


def _add_network(sub, common) -> None:
    d = CLI_DEFAULTS
    p = sub.add_parser("network", parents=[common], help="simulate a connectome of columns (resumable); spectra, FC, "
                                                         "sensors")
    _out(p, "network_out", resumable=True)
    n = LIB["n_regions"]
    p.add_argument("--connectome", default="example",
                   help=f"TVB zip or folder, .npz, or example[:N] regions (default: the library's example, N = {n})")
    p.add_argument("--coupling", type=FINITE, default=d["network_coupling"],
                   help=f"global coupling scale G, unitless (default {d['network_coupling']:g})")
    p.add_argument("--speed", type=POSITIVE, default=LIB["speed_m_s"],
                   help=f"conduction speed in m/s (default: the library's {LIB['speed_m_s']:g})")
    p.add_argument("--rule", default=LIB["rule"], choices=LIB["rules"],
                   help="afferent (Jansen & Rit 1995, The Virtual Brain; the library's default) or pyramidal "
                        "(the Jansen–Rit reference summary)")
    p.add_argument("--field-length", type=NON_NEGATIVE, default=d["field_length"],
                   help="length of the field ψ kernel in mm (default 0: no field)")
    gain = LIB["field_gain"]
    p.add_argument("--field-gain", type=FINITE, default=gain,
                   help=f"field feedback gain β, unitless (default: the library's {gain:g})")
    p.add_argument("--lead-field", default=None, help="CSV of the (M, N) lead field: also write sensor EEG in mV")
    _input(p, d["network_p"], d["network_sigma"])
    p.add_argument("--duration", type=POSITIVE, default=d["network_duration"],
                   help=f"recorded seconds (default {d['network_duration']:g}; a longer one extends a run)")
    p.add_argument("--transient", type=NON_NEGATIVE, default=d["network_transient"],
                   help=f"seconds simulated and discarded first (default {d['network_transient']:g})")
    p.add_argument("--record-ms", type=POSITIVE, default=d["record_ms"],
                   help=f"EEG averaged over windows of this many ms, a whole number of steps (default "
                        f"{d['record_ms']:g})")


def _add_fit(sub, common) -> None:
    d = CLI_DEFAULTS
    p = sub.add_parser("fit", parents=[common], help="fit JRParams fields to an ERP or a spectrum (resumable)")
    _out(p, "fit_out", resumable=True)
    p.add_argument("--target", required=True, help="CSV: time (s),value (ERP or signal), frequency (Hz),psd, or "
                                                   "one column")
    p.add_argument("--kind", choices=("erp", "psd"), required=True, help="time-domain ERP or log-spectrum fit")
    free = ",".join(LIB["free"])
    p.add_argument("--free", default=free, type=free_fields,
                   help=f"comma-separated JRParams fields to fit (default: the library's {free})")
    p.add_argument("--unit", default="none", type=str.lower, choices=UNIT_NAMES,
                   help="unit of the target values: uV, mV, V or none (default none: a scale is fitted)")
    p.add_argument("--sampling-rate", type=POSITIVE, default=None, help="in Hz, for a CSV without a time column")
    p.add_argument("--p", type=FINITE, default=d["fit_p"], help=f"mean input in Hz (default {d['fit_p']:g})")
    p.add_argument("--sigma", type=NON_NEGATIVE, default=d["fit_sigma"],
                   help=f"psd: white-noise intensity in Hz·√s (default {d['fit_sigma']:g})")
    p.add_argument("--onset", type=FINITE, default=d["onset"], help="erp: stimulus time in s from the epoch start "
                   f"when the time column does not start before 0 (default {d['onset']:g})")
    p.add_argument("--peak", type=FINITE, default=d["peak"],
                   help=f"erp: stimulus pulse peak in Hz (default {d['peak']:g})")
    p.add_argument("--width", type=POSITIVE, default=LIB["width_ms"],
                   help=f"erp: pulse width in ms (default: the library's {LIB['width_ms']:g})")
    band = "{:g}:{:g}".format(*LIB["band_hz"])
    p.add_argument("--band", default=band, type=span("Hz", "2:40"),
                   help=f"psd: low:high in Hz (default: the library's {band})")
    duration = LIB["psd_duration_s"]
    p.add_argument("--duration", type=POSITIVE, default=duration,
                   help=f"psd: simulated seconds per realisation (default: the library's {duration:g})")
    realisations = LIB["realisations"]
    p.add_argument("--realisations", type=POSITIVE_INT, default=realisations,
                   help=f"psd: noise realisations per loss (default: the library's {realisations})")
    erp_tr, psd_tr = (f"{LIB[k]:g}" for k in ("erp_transient_s", "psd_transient_s"))
    p.add_argument("--transient", type=NON_NEGATIVE, default=None,
                   help=f"seconds simulated before the epoch (default: the library's, {erp_tr} s for erp, {psd_tr} s "
                        "for psd)")
    p.add_argument("--steps", type=POSITIVE_INT, default=LIB["steps"],
                   help=f"optimiser steps (default: the library's {LIB['steps']})")
    p.add_argument("--starts", type=POSITIVE_INT, default=LIB["starts"],
                   help=f"number of starts (default: the library's {LIB['starts']})")
    p.add_argument("--optimizer", default=LIB["optimizer"], choices=LIB["optimizers"],
                   help="adam (clipped, cosine schedule; the library's default) or lbfgs (line search, no learning "
                        "rate)")
    p.add_argument("--lr", type=POSITIVE, default=LIB["learning_rate"],
                   help=f"adam's learning rate (default: the library's {LIB['learning_rate']:g})")


def _add_fit_network(sub, common) -> None:
    d = CLI_DEFAULTS
    p = sub.add_parser("fit-network", parents=[common], help="fit a whole-brain network to a multi-channel evoked "
                                                             "response at the sensors (resumable)")
    _out(p, "fit_network_out", resumable=True)
    p.add_argument("--target", required=True, help="the evoked response: a CSV with a header 'time' (s) then one "
                                                   "column per channel, named; or an MNE .fif file (its first Evoked, "
                                                   "good EEG channels)")
    sizes = ",".join(str(n) for n in LIB["tvb_sizes"])
    p.add_argument("--connectome", default="tvb:76",
                   help=f"tvb:N (The Virtual Brain's connectome, N one of {sizes}; needs jr_jax[tvb]), example[:N], a "
                        ".npz, or a TVB zip or folder (default tvb:76)")
    mapped = " or ".join(f"tvb:{n}" for n in LIB["tvb_mapped"])
    p.add_argument("--lead-field", default="tvb:eeg65",
                   help=f"tvb:eeg65 (TVB's 63-sensor EEG lead field, for --connectome {mapped}; a target may hold a "
                        "subset of its sensors) or a .npy/.csv matrix, one row per target channel in order, one "
                        "column per region (default tvb:eeg65)")
    p.add_argument("--stimulus", required=True, type=names_list, help="REGION[,REGION]: the stimulated region(s)")
    p.add_argument("--stimulus-peak", type=peaks, default=(d["stimulus_peak"],),
                   help=f"pulse peak in Hz, one value or one per region (default {d['stimulus_peak']:g})")
    width = LIB["stimulus_width_ms"]
    p.add_argument("--stimulus-width", type=POSITIVE, default=width,
                   help=f"pulse width in ms (default: the library's {width:g})")
    p.add_argument("--onset-ms", type=FINITE, default=d["onset_ms"],
                   help=f"stimulus time in ms on the target's time axis (default {d['onset_ms']:g}: its time 0)")
    free = ",".join(LIB["network_free"])
    p.add_argument("--free", default=free, type=network_free,
                   help=f"free values, comma-separated: NAME (a JRParams field for all regions, or G, speed, stimulus "
                        f"(a factor on the pulse), gain (on the lead field)), NAME:{PER_REGION} (a field in every "
                        f"region) or NAME:R1+R2 (in those regions), e.g. G,A:rV2+rPFCDL (default: the library's "
                        f"{free})")
    p.add_argument("--coupling", type=NON_NEGATIVE, default=d["fit_network_coupling"],
                   help=f"global coupling G at the start, unitless (default {d['fit_network_coupling']:g})")
    p.add_argument("--speed", type=POSITIVE, default=LIB["speed_m_s"],
                   help=f"conduction speed in m/s (default: the library's {LIB['speed_m_s']:g})")
    p.add_argument("--rule", default=LIB["rule"], choices=LIB["rules"], help="coupling rule (default: the library's "
                                                                             f"{LIB['rule']})")
    p.add_argument("--gain", type=POSITIVE, default=LIB["network_gain"],
                   help=f"factor on the lead field (default: the library's {LIB['network_gain']:g})")
    p.add_argument("--p", type=FINITE, default=d["fit_network_p"],
                   help=f"background input in Hz (default {d['fit_network_p']:g})")
    p.add_argument("--unit", default=None, type=str.lower, choices=UNIT_NAMES,
                   help="unit of a CSV target's values: uV, mV, V or none (default none: one scale for all channels "
                        "is fitted); a .fif carries its unit")
    p.add_argument("--scale", action="store_true",
                   help="fit one scale for all channels even for a target with a unit (do not free gain with it)")
    tr = LIB["network_erp_transient_s"]
    p.add_argument("--transient", type=NON_NEGATIVE, default=tr,
                   help=f"seconds simulated before the target's first sample (default: the library's {tr:g})")
    p.add_argument("--steps", type=POSITIVE_INT, default=LIB["steps"],
                   help=f"optimiser steps (default: the library's {LIB['steps']})")
    p.add_argument("--starts", type=POSITIVE_INT, default=LIB["starts"],
                   help=f"number of starts (default: the library's {LIB['starts']})")
    p.add_argument("--optimizer", default=LIB["optimizer"], choices=LIB["optimizers"],
                   help="adam (the library's default) or lbfgs (line search: fewer steps, each dearer)")
    p.add_argument("--lr", type=POSITIVE, default=LIB["learning_rate"],
                   help=f"adam's learning rate (default: the library's {LIB['learning_rate']:g})")


def parser() -> argparse.ArgumentParser:
    """The ``jr-jax`` argument parser."""
    top = Parser(prog="jr-jax", description="Jansen–Rit neural mass simulations in JAX.")
    top.add_argument("--debug", action="store_true",
                     help="on an error, show the exception with its traceback instead of one line")
    sub = top.add_subparsers(dest="command", required=True)
    common = _common()
    for add in (_add_regimes, _add_sweep, _add_bifurcation, _add_network, _add_fit, _add_fit_network):
        add(sub, common)
    return top
