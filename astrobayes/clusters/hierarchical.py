"""The richness–mass relation of a cluster catalog, calibrated with dynamical masses and sampled with emcee.

Each cluster i has an optical richness λ̂ᵢ (e.g. a red-sequence count) and
member-galaxy dynamics xᵢ. A mass network trained under a mass function
π_train gives, divided by π_train, the dynamical likelihood p(xᵢ | M) on a grid
of log₁₀M (:func:`~astrobayes.clusters.reweight.log_likelihood_grid`). With
the relation ln λ | M ~ N(ln A + B ln(M/M_pivot), σ²_lnλ + δᵢ²) (δᵢ the
measurement error of ln λ̂ᵢ) and the population's mass function p(M | ψ), the
hyperparameters θ = (ln A, B, σ_lnλ) have the likelihood

    p({λ̂, x} | θ) = ∏ᵢ ∫ p(xᵢ | M) N(ln λ̂ᵢ; ln A + B ln(M/M_pivot), σ² + δᵢ²) p(M | ψ) dlog₁₀M,

computed by quadrature on the grid — exact, with no Monte Carlo noise, and
no network call during sampling. With ``free_mass_function=True`` the
mass-function slope α is a fourth parameter (p(M | α) normalised on the grid).

The dynamics and the richness are assumed independent at fixed mass; real
catalogs can violate this (projection effects raise both), which would bias B.
Clusters too poor for a dynamical likelihood (fewer than three members) are
left out; that selection depends on the dynamics only, so it does not bias the
richness–mass parameters, but with a free mass-function slope the selection
probability depends on α and is not modelled here: α comes out biased
towards the masses that were kept.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from astrobayes.clusters.halos import MassFunction
from astrobayes.clusters.massgrid import check_grid, trapezoid_weights
from astrobayes.inference.priors import JointPrior, Uniform
from astrobayes.inference.sampling import MCMCResult, run_emcee

__all__ = ["RichnessMassModel", "infer_richness_mass"]

_LN10 = math.log(10.0)


class RichnessMassModel:
    """The hierarchical log-posterior of the richness–mass relation (see the module docstring).

    Parameters
    ----------
    log_likelihood : array (n_clusters, n_grid)
        log p(xᵢ | log₁₀M) + const on ``grid``.
    grid : array (n_grid,)
        Evenly spaced log₁₀(M/M_sun).
    richness : array (n_clusters,)
        Observed richness λ̂ (positive).
    richness_err : array, optional
        1σ uncertainty of λ̂ (enters as δ = err/λ̂ in ln λ).
    mass_function : MassFunction
        The population's mass function (fixed, or its slope free).
    free_mass_function : bool
        Sample the mass-function slope α too.
    pivot_log_mass : float
        log₁₀M_pivot of the relation.
    priors : JointPrior, optional
        Default: uniform ln A ∈ [0, 8], B ∈ [0, 3], σ_lnλ ∈ [0.01, 2] (and α ∈ [−1, 3]).

    Examples
    --------
    >>> grid = np.linspace(13.5, 15.5, 101)
    >>> loglike = -0.5 * ((grid[None, :] - np.array([[14.0], [15.0]])) / 0.1) ** 2
    >>> model = RichnessMassModel(loglike, grid, np.array([10.0, 90.0]), mass_function=MassFunction("flat"))
    >>> model.names
    ['log_norm', 'slope', 'scatter']
    >>> model.log_prob(np.array([[3.4, 1.0, 0.2], [3.4, -1.0, 0.2]])).shape
    torch.Size([2])
    """

    def __init__(self, log_likelihood, grid, richness, richness_err=None, *, mass_function: MassFunction,
                 free_mass_function: bool = False, pivot_log_mass: float = 14.5, priors: JointPrior | None = None):
        grid = check_grid(grid)
        loglike = np.asarray(log_likelihood, dtype=float)
        richness = np.asarray(richness, dtype=float)
        if loglike.ndim != 2 or loglike.shape[1] != grid.size:
            raise ValueError(f"log_likelihood must have shape (n_clusters, {grid.size}), got {loglike.shape}")
        if richness.shape != (loglike.shape[0],):
            raise ValueError(f"richness must hold one value per cluster ({loglike.shape[0]}), got {richness.shape}")
        if not (np.isfinite(richness).all() and (richness > 0).all()):
            raise ValueError("richness must be finite and positive for every cluster")
        if np.isnan(loglike).any() or not np.isfinite(loglike).any(axis=1).all():
            raise ValueError("log_likelihood has NaN rows or rows that are -inf everywhere")
        delta2 = np.zeros_like(richness)
        if richness_err is not None:
            err = np.asarray(richness_err, dtype=float)
            if err.shape != richness.shape or not (np.isfinite(err).all() and (err > 0).all()):
                raise ValueError("richness_err must be finite, positive and one per cluster")
            delta2 = (err / richness) ** 2
        if not isinstance(mass_function, MassFunction):
            raise TypeError(f"mass_function must be a MassFunction, got {type(mass_function).__name__}")
        if free_mass_function and mass_function.kind != "schechter":
            raise ValueError("free_mass_function=True frees the Schechter slope; give a Schechter MassFunction")
        with np.errstate(divide="ignore"):
            log_mass_function = mass_function.log_prob(grid)
        if not np.isfinite(log_mass_function).any():
            raise ValueError(f"the grid {grid[0]:.2f}–{grid[-1]:.2f} lies outside the mass function's range "
                             f"{mass_function.log_mass_range}")
        self.mass_function = mass_function
        self.free_mass_function = bool(free_mass_function)
        self.pivot_log_mass = float(pivot_log_mass)
        self.names = ["log_norm", "slope", "scatter"] + (["mass_function_slope"] if free_mass_function else [])
        if priors is None:
            parts = [Uniform(0.0, 8.0, name="log_norm"), Uniform(0.0, 3.0, name="slope"),
                     Uniform(0.01, 2.0, name="scatter")]
            if free_mass_function:
                parts.append(Uniform(-1.0, 3.0, name="mass_function_slope"))
            priors = JointPrior(parts)
        if not isinstance(priors, JointPrior) or priors.ndim != len(self.names):
            raise ValueError(f"priors must be a JointPrior over {self.names}")
        self.priors = priors
        weights = trapezoid_weights(grid)
        self._grid = torch.as_tensor(grid)
        self._x = torch.as_tensor(_LN10 * (grid - self.pivot_log_mass))            # ln(M / M_pivot)
        self._log_weights = torch.as_tensor(np.log(weights))
        self._loglike = torch.as_tensor(loglike) + self._log_weights  # quadrature weights folded in
        self._ln_richness = torch.as_tensor(np.log(richness))
        self._delta2 = torch.as_tensor(delta2)
        self._log_mass_function = torch.as_tensor(log_mass_function)

    def _log_mass_prior(self, theta: torch.Tensor) -> torch.Tensor:
        """log p(log₁₀M | ψ) on the grid, (m, n_grid)."""
        if not self.free_mass_function:
            return self._log_mass_function.expand(len(theta), -1)
        x = 10.0 ** (self._grid - self.mass_function.log_mass_star)
        unnormalised = -theta[:, 3:4] * torch.log(x) - x
        # normalised with the same trapezoid weights the integral over the grid uses
        return unnormalised - torch.logsumexp(unnormalised + self._log_weights, dim=1, keepdim=True)

    def log_likelihood(self, theta) -> torch.Tensor:
        """log p(data | θ) for a batch (m, ndim) of hyperparameters."""
        theta = self.priors.as_batch(theta)
        mean = theta[:, 0:1] + theta[:, 1:2] * self._x                               # (m, G)
        var = theta[:, 2:3, None] ** 2 + self._delta2[None, :, None]                  # (m, n, 1)
        resid = self._ln_richness[None, :, None] - mean[:, None, :]                   # (m, n, G)
        log_richness = -0.5 * resid**2 / var - 0.5 * torch.log(2 * math.pi * var)
        integrand = self._loglike[None] + log_richness + self._log_mass_prior(theta)[:, None, :]
        return torch.logsumexp(integrand, dim=2).sum(dim=1)

    def log_prob(self, theta) -> torch.Tensor:
        """log prior + log likelihood (−inf outside the prior), for emcee."""
        return self.priors.log_posterior(theta, self.log_likelihood)


def infer_richness_mass(log_likelihood, grid, richness, richness_err=None, *, mass_function: MassFunction,
                        free_mass_function: bool = False, pivot_log_mass: float = 14.5,
                        priors: JointPrior | None = None, n_steps: int = 2000, n_walkers: int = 32,
                        seed: int | None = 0, progress: bool | None = None) -> MCMCResult:
    """Sample the richness–mass relation with emcee (see :class:`RichnessMassModel` for the arguments).

    Returns
    -------
    MCMCResult
        With ``summary()``, ``corner()`` and ``to_arviz()``; the parameters are
        ``log_norm`` (ln A), ``slope`` (B), ``scatter`` (σ_lnλ) and, when free,
        ``mass_function_slope``.

    Examples
    --------
    >>> grid = np.linspace(13.5, 15.5, 101)
    >>> truth = np.array([13.8, 14.2, 14.6, 15.0])
    >>> loglike = -0.5 * ((grid[None, :] - truth[:, None]) / 0.05) ** 2
    >>> result = infer_richness_mass(loglike, grid, 30 * 10 ** (truth - 14.5), mass_function=MassFunction("flat"),
    ...                              n_steps=200, progress=False)
    >>> result.names
    ['log_norm', 'slope', 'scatter']
    """
    model = RichnessMassModel(log_likelihood, grid, richness, richness_err, mass_function=mass_function,
                              free_mass_function=free_mass_function, pivot_log_mass=pivot_log_mass, priors=priors)
    result = run_emcee(model.log_prob, model.priors, n_walkers=n_walkers, n_steps=n_steps, seed=seed,
                       progress=progress)
    result.meta["model"] = "richness-mass relation: ln λ = log_norm + slope ln(M / M_pivot), scatter in ln λ"
    result.meta["pivot_log_mass"] = pivot_log_mass
    return result
