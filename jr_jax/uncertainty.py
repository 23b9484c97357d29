"""Standard errors of fitted parameters by the Laplace approximation, and the identifiability check behind them."""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from .parametrisation import FreeField

IDENTIFIABILITY_RCOND = 1e-6
"""Eigenvalues of the Hessian (unconstrained space) below this fraction of the largest one count as zero."""


class NotIdentifiableWarning(UserWarning):
    """The Hessian of the loss at the optimum is (near-)singular: some parameter combination is not determined."""


class LaplaceEstimate(NamedTuple):
    """stderr: per field, a Quantity (NaN where not identifiable); covariance and correlation in the fields'
    canonical units; hessian_eigenvalues in the unconstrained space; identifiable: True, False (a near-zero
    eigenvalue) or None (a negative eigenvalue: the point is not a minimum)."""

    stderr: dict
    covariance: np.ndarray
    correlation: np.ndarray
    hessian_eigenvalues: np.ndarray
    identifiable: bool | None


def laplace(value: Callable, theta, fields: Sequence[FreeField], x_best: np.ndarray, loss: float,
            n_points: int | None, *, stacklevel: int = 2, factor: float | None = None) -> LaplaceEstimate:
    """Laplace approximation at the optimum ``theta`` of ``value(θ)`` (fields' values ``x_best``, loss ``loss``).

    With ``n_points`` (a built-in target: a mean of n squared residuals, L) the residuals are taken as independent
    Gaussian with variance estimated by L itself: NLL = n·L/(2L*) + const, so Cov(θ) = (2L*/n)·H⁻¹. Without it the
    loss is taken as a negative log-likelihood: Cov(θ) = H⁻¹. ``factor`` gives Cov(θ) = factor · H⁻¹ directly (a MAP
    loss whose scale is known, see :meth:`jr_jax.whole_brain.NetworkModel.fit`). The fields' covariance follows by the delta method.
    A near-singular Hessian warns (:class:`NotIdentifiableWarning`; ``stacklevel`` as in ``warnings.warn``, 2 is
    laplace's caller) and gives NaN errors.
    """
    h = np.asarray(jax.hessian(value)(theta), np.float64)
    h = 0.5 * (h + h.T)
    eig, vec = np.linalg.eigh(h)
    scale = max(abs(eig[-1]), 1e-300)
    ident = bool(eig[0] > IDENTIFIABILITY_RCOND * scale)
    if not ident:
        weakest = vec[:, 0]
        combo = " ".join(f"{c:+.2f}·θ[{f.name}]" for c, f in zip(weakest, fields) if abs(c) > 0.05)
        if eig[0] < -IDENTIFIABILITY_RCOND * scale:
            what = (f"the best point is not a local minimum: the Hessian (unconstrained space) has a negative "
                    f"eigenvalue {eig[0]:.3g} (largest {eig[-1]:.3g}) along {combo}. Run more steps, lower the learning "
                    f"rate or use several starts")
        else:
            what = (f"the parameters are not identifiable from this objective: the Hessian's eigenvalues "
                    f"{eig[0]:.3g} … {eig[-1]:.3g} (unconstrained space) are near-singular along {combo}. Fix one of "
                    f"these parameters or add data that separates them")
        warnings.warn(what + "; standard errors are NaN.", NotIdentifiableWarning, stacklevel=stacklevel)
        nan = np.full((len(fields), len(fields)), np.nan)
        minimum = not eig[0] < -IDENTIFIABILITY_RCOND * scale
        return LaplaceEstimate({f.name: f.quantity(float("nan")) for f in fields}, nan, nan, eig,
                               False if minimum else None)
    if factor is None:
        factor = (2.0 * loss / n_points) if n_points else 1.0
    cov_theta = factor * np.linalg.inv(h)
    jac = np.array([f.dvalue_dtheta(x) for f, x in zip(fields, x_best)])
    cov = cov_theta * np.outer(jac, jac)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    return LaplaceEstimate({f.name: f.quantity(float(s)) for f, s in zip(fields, sd)}, cov, corr, eig, True)
