"""jr_jax: a differentiable, unit-aware Jansen–Rit neural mass simulator in JAX."""

from . import analysis, connectome, data, drives, fitting, integrators, model, monitors, network
from ._units import UnitError
from .model import JRState, eeg, rhs, sigmoid
from .fitting import FitResult, erp_target, fit, spectrum_target
from .params import JRParams
from .network import Network, NetworkState
from .simulate import Record, RunSpecError, SimulationError, SimulationResult, simulate
from .sweeps import Design, SweepResult, grid, random_design, sweep

__all__ = ["Design", "FitResult", "JRParams", "JRState", "Network", "NetworkState", "Record", "RunSpecError",
           "SimulationError", "SimulationResult", "SweepResult", "UnitError", "analysis", "connectome", "data", "drives",
           "eeg", "erp_target", "fit", "fitting", "grid", "integrators", "model", "monitors", "network",
           "random_design", "rhs", "sigmoid", "simulate", "spectrum_target", "sweep"]
__version__ = "0.1.0"
