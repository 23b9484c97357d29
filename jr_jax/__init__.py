"""jr_jax: a differentiable, unit-aware Jansen–Rit neural mass simulator in JAX."""

from . import analysis, data, drives, fitting, integrators, model, monitors
from ._units import UnitError
from .model import JRState, eeg, rhs, sigmoid
from .fitting import FitResult, erp_target, fit, spectrum_target
from .params import JRParams
from .simulate import Record, SimulationError, SimulationResult, simulate
from .sweeps import Design, SweepResult, grid, random_design, sweep

__all__ = ["Design", "FitResult", "JRParams", "JRState", "Record", "SimulationError", "SimulationResult", "SweepResult",
           "UnitError", "analysis", "data", "drives", "eeg", "erp_target", "fit", "fitting", "grid", "integrators",
           "model", "monitors", "random_design", "rhs", "sigmoid", "simulate", "spectrum_target", "sweep"]
__version__ = "0.1.0"
