"""jr_jax: a differentiable, unit-aware Jansen–Rit neural mass simulator in JAX."""

import importlib
import importlib.util

_SUBMODULES = ("analysis", "batches", "checks", "connectome", "data", "designs", "devices", "drives", "examples",
               "executors", "export", "fitting", "history", "leadfield", "loop", "model", "monitors", "network",
               "parametrisation", "params", "plot", "progress", "regimes", "rng", "sensor_targets", "simulation",
               "solvers", "spectra", "store", "sweep_chunks", "sweeps", "targets", "uncertainty", "units",
               "whole_brain")
_NAMES = {"Design": "designs", "grid": "designs", "random_design": "designs", "FitResult": "fitting", "fit": "fitting",
          "JRState": "model", "eeg": "model", "rhs": "model", "sigmoid": "model", "Network": "network",
          "NetworkState": "network", "JRParams": "params", "DEFAULT_DT": "simulation", "DEFAULT_METHOD": "simulation",
          "Record": "simulation", "RunSpecError": "simulation", "SimulationError": "simulation",
          "SimulationResult": "simulation", "simulate": "simulation", "trace": "simulation", "BudgetError": "checks",
          "CheckpointStore": "store", "StoreBusyError": "store", "StoreError": "store", "SweepResult": "sweeps",
          "sweep": "sweeps", "erp_target": "targets", "spectrum_target": "targets", "UnitError": "units"}


def __getattr__(name):
    """Submodules and the public names are imported on first use, so that ``jr-jax --help`` needs no JAX."""
    if name in _SUBMODULES or (name.isidentifier() and not name.startswith("_")
                               and importlib.util.find_spec(f"{__name__}.{name}")):
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = sorted(set(_NAMES) | set(_SUBMODULES))
__version__ = "0.1.0"
