"""Checks of the importance sampling inside a :class:`~astrobayes.inference.HierarchicalModel`.

A marginal hierarchical model is only as good as its Monte Carlo integrals
over the per-object latents. Three numbers say how good they are: the
effective number of draws per object, the fraction of the population that
the proposal (the maps' domain) covers, and how far the Monte Carlo noise of
the summed log-likelihood could move the posterior.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from astropy.table import Table

from astrobayes.inference.sampling import MCMCResult

__all__ = ["ImportanceChecks"]


class ImportanceChecks:
    """Mixin of :class:`~astrobayes.inference.HierarchicalModel`: diagnostics of its fixed importance draws."""

    def importance_diagnostics(self, theta) -> Table:
        """Quality of the importance sampling at one hyperparameter vector α, per object.

        Columns: ``ess`` — effective number of draws (Σw)²/Σw² of the
        importance weights (the estimate of p(d_i | α) has relative error
        ≈ 1/√ess); ``population_mass`` — (1/K) Σ p(z_k | α)/q(z_k), the
        fraction of p(z | α) inside the proposal's domain (1 when it is
        covered), with ``population_mass_err`` its Monte Carlo standard error.
        """
        theta = self._theta(theta)[:1]
        log_w = self._all_log_weights(theta)[0]
        ess = torch.exp(2 * torch.logsumexp(log_w, -1) - torch.logsumexp(2 * log_w, -1))
        cache = self._draws()
        if cache["fixed_log_likelihood"] is None:
            draws = cache["proposal_draws"]  # (S, K', dz) from q, S = 1 or N
            latents = {name: draws[None, ..., j] for j, name in enumerate(self.latent_names)}
            log_p = self._checked(self.population(latents, self._hyper(theta)), (1,) + draws.shape[:2], "population",
                                  theta)
            ratio = torch.exp(log_p[0] - self.proposal.log_prob(draws))  # (S, K')
            mass = ratio.mean(-1).expand(self.n_objects)
            err = (ratio.std(-1) / math.sqrt(ratio.shape[-1])).expand(self.n_objects)
        else:  # posterior draws: no proposal density to compare with
            mass = err = torch.full((self.n_objects,), math.nan)
        return Table({"object": np.arange(self.n_objects), "ess": ess.numpy(), "population_mass": mass.numpy(),
                      "population_mass_err": err.numpy()})

    def log_likelihood_noise(self, theta_a, theta_b, n_batches: int = 8) -> float:
        """Monte Carlo standard error of log p̂(d | α_a) − log p̂(d | α_b), summed over all objects.

        The K fixed draws are split into ``n_batches`` independent batches;
        the spread of the batch estimates, divided by √n_batches, is the
        error of the full estimate. Between two points a posterior standard
        deviation apart, an error of δ nats moves the posterior by about
        δ standard deviations. With shared draws it grows with the number of
        objects (every object sees the same draws), which the per-object ESS
        does not show.
        """
        theta = self._theta(np.stack([np.asarray(theta_a, float).ravel(), np.asarray(theta_b, float).ravel()]))
        log_w = self._all_log_weights(theta)  # (2, N, K)
        k = log_w.shape[-1] // n_batches * n_batches
        if k < n_batches:
            raise ValueError(f"n_draws={self.n_draws} is too small to split into {n_batches} batches")
        batches = log_w[..., :k].reshape(2, self.n_objects, n_batches, -1)
        totals = (torch.logsumexp(batches, dim=-1) - math.log(k // n_batches)).sum(dim=1)  # (2, B)
        difference = totals[0] - totals[1]
        return float(difference.std() / math.sqrt(n_batches))

    def _warn_importance(self, result: MCMCResult, min_ess: float) -> None:
        median = np.median(result.samples, axis=0)
        table = self.importance_diagnostics(median)
        shifted = np.clip(median + np.std(result.samples, axis=0), self.hyperprior.low, self.hyperprior.high)
        noise = self.log_likelihood_noise(median, shifted) if self.n_draws >= 16 else math.nan
        result.meta.update(min_ess=float(np.min(table["ess"])),
                           population_mass=float(np.min(table["population_mass"])), log_likelihood_noise=noise)
        if noise > 0.2:
            warnings.warn(f"importance-sampling noise in the log-likelihood is {noise:.2f} nats between the posterior "
                          "median and a point one posterior standard deviation away: the posterior may be shifted by "
                          f"about {noise:.1f} standard deviations; increase n_draws"
                          + (" or use draws='adaptive'" if self.draws == "shared" else ""),
                          RuntimeWarning, stacklevel=3)
        low = np.flatnonzero(table["ess"] < min_ess)
        if low.size:
            warnings.warn(f"importance sampling at the posterior median gives an effective sample size below "
                          f"{min_ess:g} for {low.size} of {self.n_objects} objects (lowest {table['ess'].min():.1f}, "
                          f"objects {', '.join(map(str, low[:5]))}); increase n_draws or use draws='adaptive'",
                          RuntimeWarning, stacklevel=3)
        lost = 1 - table["population_mass"]
        limit = np.maximum(0.02, 3 * table["population_mass_err"])
        if self._cache["fixed_log_likelihood"] is None and np.any(lost > limit):
            warnings.warn(f"the proposal covers only {1 - lost.max():.1%} of p(z | α) at the posterior median: "
                          "widen the proposal (the maps' trusted domain) or narrow the population prior",
                          RuntimeWarning, stacklevel=3)
