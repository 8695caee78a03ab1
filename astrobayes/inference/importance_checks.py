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

from astrobayes.core.limits import memory_bytes
from astrobayes.core.validation import as_tensor
from astrobayes.inference.sampling import MCMCResult
from astrobayes.inference.diagnostics._checks import _positive_int

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

    def object_check(self, alphas, *, alpha: float = 0.01, n_population: int = 8192, max_alphas: int = 200,
                     seed: int = 0) -> Table:
        """Per-object posterior predictive check: can the population model explain each object?

        For each of (at most ``max_alphas``, evenly spaced) posterior draws
        α_s of the hyperparameters, a latent z_i^s is drawn from object i's
        conditional posterior p(z_i | d_i, α_s) (its fixed importance draws,
        resampled by their weights) and compared with the population through
        the discrepancy T(z, α) = log p(z | α): the tail probability
        P_{z ~ p(z | α_s)}[T(z, α_s) ≤ T(z_i^s, α_s)] is estimated with
        ``n_population`` proposal draws weighted by p(z | α_s)/q(z). The
        object's p-value is its mean over s (Gelman, Meng & Stern 1996,
        Statistica Sinica 6, 733). A small p-value says the object's data
        put its latents where the population model rarely puts any — an
        outlier, an object of another kind, or a population model too
        narrow. The data of the object also shaped α, so the check is
        conservative (p-values pile up towards 1/2 rather than 0).

        Parameters
        ----------
        alphas : array-like (S, h)
            Posterior draws of the hyperparameters (e.g. ``result.samples``);
            a 1-D array of length h is one draw.
        alpha : float
            Objects with p ≤ ``alpha`` are flagged.
        n_population : int
            Proposal draws that represent p(z | α); with the ``alphas`` used
            they must fit in half this machine's memory (~64 bytes each).
        max_alphas : int
            Use at most this many of ``alphas``.
        seed : int
            Seeds the proposal draws and the resampling.

        Returns
        -------
        astropy.table.Table
            ``object`` (row of the data), ``p_value``, ``flagged``; meta
            ``alpha``, ``n_alphas``, ``n_population`` and
            ``min_population_ess`` (effective proposal draws behind the tail
            probabilities at the worst α_s: below ~100 they are coarse —
            widen the population draws or narrow the proposal).

        Examples
        --------
        >>> import numpy as np, torch
        >>> from astrobayes.inference import DeltaMap, HierarchicalModel
        >>> from astrobayes.inference.priors import JointPrior, Normal, Uniform
        >>> y = np.r_[np.random.default_rng(1).normal(0.0, 1.0, 40), 9.0]  # one object far out
        >>> model = HierarchicalModel(
        ...     JointPrior([Normal(0.0, 2.0, name="mu")]),
        ...     population=lambda lat, hyp: torch.distributions.Normal(hyp["mu"], 1.0).log_prob(lat["z"]),
        ...     measurement=lambda d, pred, hyp: torch.distributions.Normal(pred["f"], 0.1).log_prob(d["y"]),
        ...     data={"y": y}, proposal=JointPrior([Uniform(-12.0, 12.0, name="z")]),
        ...     delta_maps=DeltaMap(lambda z: z, inputs=["z"], outputs=["f"]))
        >>> check = model.object_check(np.random.default_rng(2).normal(0.2, 0.15, (100, 1)), alpha=0.001)
        >>> np.flatnonzero(check["flagged"]).tolist()  # y = 9 at 8.8σ; the next lowest, y = -2.7, has p = 0.005
        [40]
        """
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
                or not 0 < alpha < 1:
            raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
        n_population = _positive_int(n_population, "n_population", 100)
        max_alphas = _positive_int(max_alphas, "max_alphas", 1)
        seed = _positive_int(seed, "seed", 0)  # torch would take a negative seed, numpy would not
        draws = as_tensor(alphas, "alphas", ndim=(1, 2), dtype=torch.float64)
        if draws.shape[-1] != self.hyperprior.ndim:
            raise ValueError(f"alphas must have shape (S, {self.hyperprior.ndim}): one row per posterior draw of "
                             f"the hyperparameters {self.hyperprior.names}, got {tuple(draws.shape)}")
        theta = self._theta(draws)
        if len(theta) > max_alphas:
            theta = theta[np.linspace(0, len(theta) - 1, max_alphas).round().astype(int)]
        # the population draws' discrepancies, weights, order and tail masses: ~8 (S, M) float64 arrays at once
        needed = 64.0 * len(theta) * float(n_population)
        available = memory_bytes() or 2**36  # unknown: assume 64 GiB
        if needed > available / 2:
            raise ValueError(f"n_population = {n_population:,} with {len(theta)} hyperparameter draw(s) would hold "
                             f"about {needed / 2**30:,.1f} GiB at once on a machine with {available / 2**30:,.1f} "
                             "GiB; lower n_population or max_alphas")
        if not torch.isfinite(self.log_prob(theta)).all():
            raise ValueError("alphas holds hyperparameters outside the prior (log posterior -inf): pass posterior "
                             "draws, e.g. result.samples")
        generator = torch.Generator().manual_seed(int(seed))
        # p(z | α_s) represented by proposal draws with weights p/q: sorted discrepancies and their tail masses
        population = self.proposal.sample((int(n_population),), seed=int(seed))  # (M, dz)
        latents = {name: population[None, None, :, j] for j, name in enumerate(self.latent_names)}
        shape = (len(theta), 1, len(population))
        t_population = self._checked(self.population(latents, self._hyper(theta)), shape, "population", theta)[:, 0]
        log_w = t_population - self.proposal.log_prob(population)[None, :]
        weights = torch.softmax(log_w, dim=-1)  # (S, M)
        ess = 1.0 / (weights ** 2).sum(-1)
        order = torch.argsort(t_population, dim=-1)
        t_sorted = torch.gather(t_population, 1, order).contiguous()
        tail = torch.cumsum(torch.gather(weights, 1, order), dim=-1)  # P[T ≤ t_sorted[:, m]]
        cache = self._draws()
        k = cache["log_q"].shape[-1]
        step = max(1, self.max_elements // (len(theta) * k))
        p_values = []
        for start in range(0, self.n_objects, step):
            rows = slice(start, min(start + step, self.n_objects))
            log_weights = self._log_weights(theta, rows, cache)  # (S, n_b, K)
            n_b = log_weights.shape[1]
            picked = torch.multinomial(torch.softmax(log_weights, -1).reshape(-1, k), 1,
                                       generator=generator).reshape(len(theta), n_b)
            pick = rows if cache["per_object"] else slice(0, 1)
            chosen = {}
            for name in self.latent_names:
                values = cache["predicted"][name][pick].expand(n_b, k)  # (n_b, K)
                chosen[name] = torch.gather(values[None].expand(len(theta), n_b, k), 2, picked[..., None])
            t_object = self._checked(self.population(chosen, self._hyper(theta)), (len(theta), n_b, 1),
                                     "population", theta)[..., 0]  # (S, n_b)
            where = torch.searchsorted(t_sorted, t_object.contiguous(), right=True)  # draws with T ≤ T(z_i)
            below = torch.where(where > 0, torch.gather(tail, 1, (where - 1).clamp_min(0)),
                                torch.zeros_like(t_object))
            p_values.append(below.mean(0))
        p = torch.cat(p_values).numpy()
        table = Table({"object": np.arange(self.n_objects), "p_value": p, "flagged": p <= alpha})
        table["p_value"].info.description = ("posterior predictive p-value of the object's latents under the "
                                             "population model (discrepancy log p(z | α)): small = the population "
                                             "rarely makes such an object")
        table.meta.update({"alpha": float(alpha), "n_alphas": len(theta), "n_population": int(n_population),
                           "min_population_ess": float(ess.min())})
        flagged = int((p <= alpha).sum())
        if flagged:
            warnings.warn(f"{flagged} of {self.n_objects} objects are not explained by the population model at "
                          f"α = {alpha:g} (p_value ≤ {alpha:g}; about {100 * alpha:g} % of objects drawn from it "
                          "would be flagged by chance, fewer since their data also fit α)", UserWarning,
                          stacklevel=2)
        if float(ess.min()) < 100:
            warnings.warn(f"the population draws behind the object check have an effective size of only "
                          f"{float(ess.min()):.0f} at some α: its p-values are coarse (raise n_population)",
                          UserWarning, stacklevel=2)
        return table

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
