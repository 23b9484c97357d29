"""jr_jax: a differentiable, unit-aware Jansen–Rit neural mass simulator in JAX."""

from . import analysis, drives, integrators, model, monitors
from ._units import UnitError
from .model import JRState, eeg, rhs, sigmoid
from .params import JRParams
from .simulate import Record, SimulationError, SimulationResult, simulate
from .sweeps import Design, SweepResult, grid, random_design, sweep

__all__ = ["Design", "JRParams", "JRState", "Record", "SimulationError", "SimulationResult", "SweepResult", "UnitError",
           "analysis", "drives", "eeg", "grid", "integrators", "model", "monitors", "random_design", "rhs", "sigmoid",
           "simulate", "sweep"]
__version__ = "0.1.0"
