"""jr_jax: a differentiable, unit-aware Jansen–Rit neural mass simulator in JAX."""

from . import analysis, drives, integrators, model
from ._units import UnitError
from .model import JRState, eeg, rhs, sigmoid
from .params import JRParams
from .simulate import Record, SimulationError, SimulationResult, simulate

__all__ = ["JRParams", "JRState", "Record", "SimulationError", "SimulationResult", "UnitError", "analysis", "drives",
           "eeg", "integrators", "model", "rhs", "sigmoid", "simulate"]
__version__ = "0.1.0"
