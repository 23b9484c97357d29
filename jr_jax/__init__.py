"""jr_jax: a differentiable, unit-aware Jansen–Rit neural mass simulator in JAX."""

from . import (analysis, batches, checks, connectome, data, designs, drives, fitting, loop, model, monitors, network,
               parametrisation, params, plot, progress, regimes, rng, simulation, solvers, spectra, store, sweeps,
               targets, uncertainty, units)
from .designs import Design, grid, random_design
from .fitting import FitResult, fit
from .model import JRState, eeg, rhs, sigmoid
from .network import Network, NetworkState
from .params import JRParams
from .simulation import (DEFAULT_DT, DEFAULT_METHOD, Record, RunSpecError, SimulationError, SimulationResult, simulate,
                         trace)
from .checks import BudgetError
from .store import CheckpointStore, StoreBusyError, StoreError
from .sweeps import SweepResult, sweep
from .targets import erp_target, spectrum_target
from .units import UnitError

__all__ = ["DEFAULT_DT", "DEFAULT_METHOD", "BudgetError", "CheckpointStore", "Design", "FitResult", "JRParams", "JRState", "Network",
           "NetworkState", "Record", "RunSpecError", "SimulationError", "SimulationResult", "StoreBusyError", "StoreError", "SweepResult",
           "UnitError", "analysis", "batches", "checks", "connectome", "data", "designs", "drives", "eeg", "erp_target",
           "fit", "fitting", "grid", "loop", "model", "monitors", "network", "parametrisation", "params", "plot",
           "progress", "random_design", "regimes", "rhs", "rng", "sigmoid", "simulate", "simulation", "solvers",
           "spectra", "spectrum_target", "store", "sweep", "sweeps", "targets", "trace", "uncertainty", "units"]
__version__ = "0.1.0"
