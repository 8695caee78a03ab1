"""Hierarchical Bayesian models with learned delta-function maps, sampled with emcee.

The model, for objects i = 1..N with data d_i, per-object latents z_i and
hyperparameters α:

    p(α | d) ∝ π(α) ∏_i ∫ p(d_i | f(z_i), z_i, α) p(z_i | α) dz_i

where f is a trained network wrapped in a :class:`DeltaMap` (the
δ_D(y − f(z)) of Sellentin's lectures). Two ways to handle the latents:

* **marginal** (default; any N): each integral is an importance-sampling
  average over K *fixed* draws z_k ~ q(z) from a proposal,
  p(d_i | α) ≈ (1/K) Σ_k p(d_i | f(z_k), z_k, α) p(z_k | α) / q(z_k).
  f(z_k) is computed once and cached: an MCMC step over α only changes the
  importance weights, never re-runs the network. Fixed draws (common random
  numbers) make log p(α | d) a deterministic function, as emcee needs.
* **joint** (a handful of objects): emcee samples (α, z_1..z_N) together and
  the map runs at every step. Exact up to MCMC error; the reference that the
  marginal mode is checked against.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from astrobayes.core.validation import numeric_columns
from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.importance import defensive_proposal
from astrobayes.inference.importance_checks import ImportanceChecks
from astrobayes.inference.priors import JointPrior
from astrobayes.inference.sampling import MCMCResult, run_emcee

__all__ = ["HierarchicalModel"]

#: hyperparameter draws from the prior over which the adaptive pilot weights are mixed
_N_PILOT_HYPER = 16


class HierarchicalModel(ImportanceChecks):
    """Population-level inference with per-object latents and learned delta maps.

    Parameters
    ----------
    hyperprior : JointPrior
        Prior π(α) of the hyperparameters, with names and units.
    population : callable
        ``population(latents, hyper) -> log p(z | α)``. Both arguments are
        dicts of tensors keyed by name; every tensor broadcasts to
        (walkers, objects, draws), so ordinary elementwise torch code works
        (hyperparameters have shape (m, 1, 1)). Must be normalised over z.
    measurement : callable or None
        ``measurement(data, predicted, hyper) -> log p(d | f(z), z, α)``,
        with ``data`` the per-object columns (shape (1, objects, 1)) and
        ``predicted`` the latents and every delta-map output.
    data : astropy Table/QTable, pandas DataFrame or dict of columns
        One row per object. Quantity columns are passed as values in their
        own unit (``model.data_units`` records them).
    proposal : JointPrior
        q(z) over the latents (its names are the latent names). It defines
        the domain where the maps are trusted (their training range) and
        must cover where p(z | α) has mass: mass outside is lost, and
        :meth:`importance_diagnostics` reports it.
    delta_maps : DeltaMap or list of DeltaMap
        Maps evaluated, in order, on the latents (and earlier maps' outputs).
    n_draws : int
        K, importance draws per object.
    draws : {"adaptive", "shared", "per_object"}
        How the fixed latent draws are made. ``"adaptive"`` (default): a
        pilot of ``n_pilot`` draws from the proposal, weighted per object
        over a few hyperparameter draws from the prior, fixes a defensive
        per-object proposal (see :func:`~astrobayes.inference.importance.defensive_proposal`)
        from which K draws per object are made; the maps run
        n_pilot + N·K times, once. ``"shared"``: K proposal draws shared by
        all objects (the maps run K times; fine when each object's
        likelihood is broad). ``"per_object"``: K independent proposal
        draws per object.
    n_pilot : int
        Pilot draws for ``draws="adaptive"``.
    seed : int
        Seeds the fixed draws.
    max_elements : int
        Bound on walkers × objects × draws handled at once. Small blocks
        (2¹⁸ values, 2 MB per float64 temporary) stay in cache and keep the
        cost linear in the number of objects (``benchmarks/stars_model.py``).

    Examples
    --------
    A population of N(μ, 0.5²) latents seen through y = 2z + 1 with noise 0.3:

    >>> import numpy as np, torch
    >>> from astrobayes.inference.priors import Normal, Uniform
    >>> rng = np.random.default_rng(1)
    >>> z = rng.normal(0.4, 0.5, 50); data = {"y": 2 * z + 1 + rng.normal(0, 0.3, 50)}
    >>> line = DeltaMap(lambda x: 2 * x + 1, inputs=["z"], outputs=["f"])
    >>> model = HierarchicalModel(
    ...     JointPrior([Normal(0.0, 2.0, name="mu")]),
    ...     population=lambda lat, hyp: torch.distributions.Normal(hyp["mu"], 0.5).log_prob(lat["z"]),
    ...     measurement=lambda d, pred, hyp: torch.distributions.Normal(pred["f"], 0.3).log_prob(d["y"]),
    ...     data=data, proposal=JointPrior([Uniform(-4.0, 4.0, name="z")]), delta_maps=line)
    >>> result = model.sample(n_steps=1000, progress=False)
    >>> bool(abs(np.median(result.samples[:, 0]) - 0.4) < 0.3)
    True
    >>> line.n_calls  # pilot draws, 2 proposal fits, 2 refits after a short pilot chain; never in the MCMC
    5
    """

    def __init__(self, hyperprior: JointPrior, population: Callable, measurement: Callable | None, data,
                 proposal: JointPrior, delta_maps: DeltaMap | Sequence[DeltaMap] = (), *, n_draws: int = 256,
                 draws: str = "adaptive", n_pilot: int = 4096, seed: int = 0, max_elements: int = 2**18,
                 _from_posterior: bool = False):
        for arg, value in (("hyperprior", hyperprior), ("proposal", proposal)):
            if not isinstance(value, JointPrior):
                raise TypeError(f"{arg} must be a JointPrior, got {type(value).__name__}")
        for arg, value in (("population", population), ("measurement", measurement)):
            if not callable(value) and not (arg == "measurement" and _from_posterior):
                raise TypeError(f"{arg} must be callable, got {type(value).__name__}")
        if isinstance(delta_maps, DeltaMap):
            delta_maps = [delta_maps]
        if not all(isinstance(m, DeltaMap) for m in delta_maps):
            raise TypeError("delta_maps must be a DeltaMap or a list of DeltaMap")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer (the fixed draws need one), got {seed!r}")
        if draws not in ("adaptive", "shared", "per_object"):
            raise ValueError(f"draws must be 'adaptive', 'shared' or 'per_object', got {draws!r}")
        for arg, value, least in (("n_draws", n_draws, 1), ("n_pilot", n_pilot, 10 * proposal.ndim),
                                  ("max_elements", max_elements, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{arg} must be an integer >= {least}, got {value!r}")
        self.hyperprior, self.proposal = hyperprior, proposal
        self.population, self.measurement = population, measurement
        self.delta_maps = list(delta_maps)
        self.n_draws, self.draws, self.n_pilot, self.seed = int(n_draws), draws, int(n_pilot), seed
        self.max_elements = int(max_elements)
        self.data, self.data_units = numeric_columns(data, "data")
        self.n_objects = len(next(iter(self.data.values()))) if self.data else None
        self.latent_names = list(proposal.names)
        self._check_names()
        self._cache: dict | None = None
        self._prior_fitted: dict | None = None  # the adaptive draws fitted at prior α: adapt() refits from these

    def _check_names(self) -> None:
        seen = {name: "latent" for name in self.latent_names}
        for delta in self.delta_maps:
            unknown = [n for n in delta.inputs if n not in seen]
            if unknown:
                raise ValueError(f"{delta!r} needs inputs {unknown}, which are neither latents "
                                 f"{self.latent_names} nor outputs of an earlier map")
            for name in delta.outputs:
                if name in seen:
                    raise ValueError(f"delta-map output {name!r} clashes with a {seen[name]} of the same name")
                seen[name] = "delta-map output"
        clash = set(self.hyperprior.names) & set(seen)
        if clash:
            raise ValueError(f"hyperparameter names {sorted(clash)} clash with latent or map-output names")

    # ------------------------------------------------------------------ the cache
    def _apply_maps(self, latents: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        predicted = dict(latents)
        for delta in self.delta_maps:
            predicted.update(delta({name: predicted[name] for name in delta.inputs}))
        return predicted

    def _make_cache(self, draws: torch.Tensor, log_q: torch.Tensor) -> dict:
        latents = {name: draws[..., j] for j, name in enumerate(self.latent_names)}
        return {"predicted": self._apply_maps(latents), "log_q": log_q, "fixed_log_likelihood": None,
                "per_object": draws.shape[0] > 1 or self.n_objects == 1}

    def _draws(self) -> dict:
        """Fixed latent draws (S, K, dz), log q (S, K) and every map output, computed once."""
        if self._cache is None:
            if self.draws == "adaptive":
                # pilot: shared draws, weights per object mixed over hyperparameters drawn from the prior
                pilot = self.proposal.sample((1, self.n_pilot), seed=self.seed)
                pilot_cache = self._make_cache(pilot, self.proposal.log_prob(pilot))
                pilot_cache["proposal_draws"] = pilot
                cache = self._adapted(pilot_cache, self.hyperprior.sample(_N_PILOT_HYPER, seed=self.seed + 1))
                self._prior_fitted = cache
            else:
                sets = self.n_objects if self.draws == "per_object" else 1
                draws = self.proposal.sample((sets, self.n_draws), seed=self.seed)
                cache = self._make_cache(draws, self.proposal.log_prob(draws))
                cache["proposal_draws"] = draws  # draws of q itself: the population-mass check uses them
            self._cache = cache  # only once complete: a failure above leaves no half-built cache behind
        return self._cache

    def _adapted(self, pilot_cache: dict, alphas: torch.Tensor, iterations: int = 2, first_round: int = 0) -> dict:
        """A new cache of defensive per-object draws fitted to the pilot's weights, mixed over ``alphas``.

        Each iteration refits to the weights of the previous one's draws,
        which resolve a narrow likelihood far better than the broad pilot.
        """
        for iteration in range(iterations):
            # reduced over α chunk by chunk: the full (α, N, K₀) array would need 16·N·K₀ floats
            step = max(1, self.max_elements // (len(alphas) * pilot_cache["log_q"].shape[-1]))
            log_w = torch.cat([torch.logsumexp(self._log_weights(alphas, slice(s, s + step), pilot_cache), dim=0)
                               for s in range(0, self.n_objects, step)])  # (N, K₀)
            pilot = torch.stack([pilot_cache["predicted"][name] for name in self.latent_names], dim=-1)
            draws, log_q = defensive_proposal(pilot, log_w, self.proposal, self.n_draws,
                                              seed=self.seed + 2 * (first_round + iteration + 1))
            cache = self._make_cache(draws, log_q)
            cache["proposal_draws"] = pilot_cache["proposal_draws"]
            pilot_cache = cache
        return cache

    def adapt(self, alphas) -> None:
        """Refit the per-object proposals to hyperparameters ``alphas`` (m, h), e.g. draws of a pilot chain.

        With the first, prior-based proposals an object whose latents move
        with the hyperparameters (a star's mass with σ, for fixed L̂) gets a
        proposal wide enough for the whole prior range, and few effective
        draws where the posterior is. Refitting to α from a short pilot chain
        concentrates the draws there. The new draws are fixed again, so the
        log-probability stays deterministic; only the draws (and the maps, once
        more on N·K rows) change. Only for ``draws="adaptive"``.
        """
        if self.draws != "adaptive":
            raise ValueError(f"adapt() needs draws='adaptive', this model has draws={self.draws!r}")
        alphas = self._theta(alphas)
        cache = self._draws()
        # always from the prior-fitted draws, with fixed seeds: the same α give the same draws, whatever ran before
        self._cache = self._adapted(self._prior_fitted or cache, alphas, first_round=2)

    def _all_log_weights(self, theta: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """Log importance weights of every object, (m, N, K), in memory-bounded chunks."""
        cache = cache or self._draws()
        step = max(1, self.max_elements // (len(theta) * cache["log_q"].shape[-1]))
        return torch.cat([self._log_weights(theta, slice(s, s + step), cache)
                          for s in range(0, self.n_objects, step)], 1)

    def _hyper(self, theta: torch.Tensor, extra_dims: int = 2) -> dict[str, torch.Tensor]:
        shape = (len(theta),) + (1,) * extra_dims
        return {name: theta[:, j].reshape(shape) for j, name in enumerate(self.hyperprior.names)}

    def _checked(self, value, shape, what: str, theta: torch.Tensor, full_objects: bool = False) -> torch.Tensor:
        """A user function's output as (walkers, objects, draws): 3-D, broadcastable, no NaN."""
        value = torch.as_tensor(value, dtype=torch.float64)
        objects_ok = not full_objects or value.shape[1:2] == shape[1:2]
        if value.ndim != 3 or not objects_ok:
            raise ValueError(f"{what} must return one value per (walker, object, draw), shape {shape} or "
                             f"broadcastable to it, got shape {tuple(value.shape)} (did it sum over an axis?)")
        try:
            value = torch.broadcast_to(value, shape)
        except RuntimeError:
            raise ValueError(f"{what} returned shape {tuple(value.shape)}, which does not broadcast to "
                             f"(walkers, objects, draws) = {shape}") from None
        nan = torch.isnan(value)
        if nan.any():
            walker = int(torch.nonzero(nan)[0, 0])
            point = ", ".join(f"{n}={v:.6g}" for n, v in zip(self.hyperprior.names, theta[walker].tolist()))
            raise ValueError(f"{what} returned NaN at hyperparameters ({point}); return -inf for impossible "
                             "values instead")
        return value

    def _log_weights(self, theta: torch.Tensor, rows: slice, cache: dict | None = None) -> torch.Tensor:
        """log [p(d_i | z_k, α) p(z_k | α) / q(z_k)] for objects ``rows``: (m, n_b, K)."""
        cache = cache or self._draws()
        pick = rows if cache["per_object"] else slice(0, 1)
        predicted = {name: value[pick][None] for name, value in cache["predicted"].items()}
        latents = {name: predicted[name] for name in self.latent_names}
        hyper = self._hyper(theta)
        n_b = len(range(*rows.indices(self.n_objects)))
        shape = (len(theta), n_b, cache["log_q"].shape[-1])
        log_w = self._checked(self.population(latents, hyper), shape, "population", theta) - cache["log_q"][pick][None]
        if cache["fixed_log_likelihood"] is not None:
            return log_w + cache["fixed_log_likelihood"][rows][None]
        data = {name: value[rows].reshape(1, -1, 1) for name, value in self.data.items()}
        return log_w + self._checked(self.measurement(data, predicted, hyper), shape, "measurement", theta,
                                     full_objects=True)

    def _theta(self, theta) -> torch.Tensor:
        return self.hyperprior.as_batch(theta)

    def object_log_likelihood(self, theta) -> torch.Tensor:
        """log p(d_i | α) per object, (m, N), by importance sampling over the fixed draws."""
        theta = self._theta(theta)
        k = self._draws()["log_q"].shape[-1]
        step = max(1, self.max_elements // (len(theta) * k))
        pieces = [torch.logsumexp(self._log_weights(theta, slice(s, s + step)), dim=-1)
                  for s in range(0, self.n_objects, step)]
        return torch.cat(pieces, dim=1) - math.log(k)

    def log_prob(self, theta) -> torch.Tensor:
        """Marginal log-posterior of the hyperparameters (up to a constant), (m,); -inf outside the prior."""
        return self.hyperprior.log_posterior(theta, lambda inside: self.object_log_likelihood(inside).sum(dim=1))

    # ------------------------------------------------------------------ joint mode
    @property
    def joint_names(self) -> list[str]:
        """Parameter names in joint mode: the hyperparameters, then ``<latent>[i]`` object by object."""
        return self.hyperprior.names + [f"{name}[{i}]" for i in range(self.n_objects) for name in self.latent_names]

    def joint_log_prob(self, params) -> torch.Tensor:
        """log p(α, z_1..z_N | d) up to a constant; params (m, h + N·dz). The maps run on every call."""
        if self.measurement is None:
            raise ValueError("joint mode needs a measurement function (this model was built from posterior draws)")
        params = torch.as_tensor(params, dtype=torch.float64)
        h, dz = self.hyperprior.ndim, len(self.latent_names)
        if params.ndim != 2 or params.shape[1] != h + self.n_objects * dz:
            raise ValueError(f"params must have shape (m, {h + self.n_objects * dz}), got {tuple(params.shape)}")
        theta, z = params[:, :h], params[:, h:].reshape(len(params), self.n_objects, dz)
        log_prior = self.hyperprior.log_prob(theta)
        inside = self.proposal.support_check(z).all(dim=1)
        out = torch.full((len(params),), -math.inf, dtype=torch.float64)
        ok = torch.isfinite(log_prior) & inside
        if ok.any():
            m = int(ok.sum())
            latents = {name: z[ok][..., j, None] for j, name in enumerate(self.latent_names)}
            hyper = self._hyper(theta[ok])
            data = {name: value.reshape(1, -1, 1) for name, value in self.data.items()}
            shape = (m, self.n_objects, 1)
            terms = self._checked(self.population(latents, hyper), shape, "population", theta[ok]) + \
                self._checked(self.measurement(data, self._apply_maps(latents), hyper), shape, "measurement",
                              theta[ok], full_objects=True)
            out[ok] = log_prior[ok] + terms.sum(dim=(1, 2))
        return out

    def _joint_start(self, n_walkers: int, rng: np.random.Generator) -> np.ndarray:
        """Walkers at α ~ π(α), each latent resampled from the cached draws by its importance weight."""
        cache, found = self._draws(), []
        for _ in range(100):
            theta = self.hyperprior.sample(n_walkers, seed=int(rng.integers(2**63)))
            log_w = self._all_log_weights(theta)
            gumbel = -torch.log(-torch.log(torch.from_numpy(rng.uniform(1e-300, 1, size=tuple(log_w.shape)))))
            pick = torch.argmax(log_w + gumbel, dim=-1)  # (walkers, objects): one draw per object
            objects = torch.arange(self.n_objects) if cache["per_object"] else torch.zeros(self.n_objects, dtype=int)
            z = torch.stack([cache["predicted"][name][objects[None], pick] for name in self.latent_names], -1)
            params = torch.cat([theta, z.reshape(n_walkers, -1)], dim=1)
            found.append(params[torch.isfinite(self.joint_log_prob(params))])
            if sum(len(f) for f in found) >= n_walkers:
                return torch.cat(found)[:n_walkers].numpy()
        raise RuntimeError("could not find starting points with finite joint log-probability; check that the "
                           "measurement is finite for latents inside the proposal")

    # ------------------------------------------------------------------ sampling
    def sample(self, mode: str = "marginal", *, n_walkers: int | None = None, n_steps: int = 3000,
               seed: int | None = 0, progress: bool | None = None, min_ess: float = 20.0,
               adapt_steps: int = 300) -> MCMCResult:
        """Sample the hyperparameters (``mode="marginal"``) or everything (``mode="joint"``) with emcee.

        Marginal mode with ``draws="adaptive"`` first runs a pilot chain of
        ``adapt_steps`` steps and refits the proposals to its draws
        (:meth:`adapt`; 0 skips this). It warns when, at the posterior
        median, an object's importance sampling has fewer than ``min_ess``
        effective draws, the Monte Carlo noise of the log-likelihood could
        move the posterior, or the proposal misses part of the population;
        those numbers are stored in ``result.meta``. Joint mode has
        h + N·dz parameters and is meant for a handful of objects.
        """
        if isinstance(adapt_steps, bool) or not isinstance(adapt_steps, (int, np.integer)) or adapt_steps < 0:
            raise ValueError(f"adapt_steps must be a non-negative integer, got {adapt_steps!r}")
        if mode == "marginal":
            if self.draws == "adaptive" and adapt_steps > 0:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "the chain is only", RuntimeWarning)  # a pilot, knowingly short
                    pilot = run_emcee(self.log_prob, self.hyperprior, n_walkers=n_walkers, n_steps=int(adapt_steps),
                                      seed=seed, progress=progress)
                rng = np.random.default_rng(None if seed is None else seed + 1)
                self.adapt(pilot.samples[rng.choice(len(pilot.samples), _N_PILOT_HYPER, replace=False)])
            result = run_emcee(self.log_prob, self.hyperprior, n_walkers=n_walkers, n_steps=n_steps, seed=seed,
                               progress=progress)
            self._warn_importance(result, min_ess)
        elif mode == "joint":
            ndim = len(self.joint_names)
            if ndim > 60:
                warnings.warn(f"joint mode with {ndim} parameters will mix slowly under emcee; use the marginal "
                              "mode for more than a handful of objects", RuntimeWarning, stacklevel=2)
            n_walkers = n_walkers or max(2 * ndim + 2, 32)
            start = self._joint_start(n_walkers, np.random.default_rng(seed))
            units = self.hyperprior.units + [c.unit for _ in range(self.n_objects) for c in self.proposal.components]
            result = run_emcee(self.joint_log_prob, start, n_steps=n_steps, seed=seed, progress=progress,
                               names=self.joint_names, units=units)
        else:
            raise ValueError(f"mode must be 'marginal' or 'joint', got {mode!r}")
        result.meta.update(mode=mode, n_draws=self.n_draws, draws=self.draws, n_objects=self.n_objects)
        return result

    # ------------------------------------------------------------------ from an amortized posterior
    @classmethod
    def from_posterior(cls, posterior, x_obs, hyperprior: JointPrior, population: Callable, *, n_draws: int = 1024,
                       seed: int = 0, max_elements: int = 2**18) -> HierarchicalModel:
        """Population inference from an amortized posterior trained under a simulation prior π_train.

        For each object, draws θ_ik ~ q(θ | x_i) stand in for the latents and
        p(x_i | α) ∝ (1/K) Σ_k p(θ_ik | α) / π_train(θ_ik) (Hogg, Myers & Bovy
        2010, ApJ 725, 2166): the network runs once, when the draws are made.
        ``population(latents, hyper)`` is keyed by the posterior's parameter
        names. Joint mode is not available for such a model.
        """
        draws = np.asarray(posterior.sample(n_draws, x_obs, seed=seed), dtype=np.float64)
        if draws.ndim == 2:
            draws = draws[None]
        if getattr(posterior, "rounds", None) is not None and draws.shape[0] > 1:
            raise ValueError("this posterior was trained by truncated sequential NPE for one observation; it is "
                             "not valid for other objects (train an amortized NPE for a population)")
        if np.isnan(draws).any():
            raise ValueError("the posterior could not draw inside its prior for some objects (NaN rows); "
                             "check those x_obs against the training simulations")
        model = cls(hyperprior, population, None, None, posterior.prior, n_draws=n_draws, draws="per_object",
                    seed=seed, max_elements=max_elements, _from_posterior=True)
        model.n_objects = draws.shape[0]
        draws = torch.from_numpy(draws)
        log_train = posterior.prior.log_prob(draws)
        model._cache = {"predicted": {name: draws[..., j] for j, name in enumerate(model.latent_names)},
                        "log_q": torch.zeros_like(log_train), "fixed_log_likelihood": -log_train, "per_object": True}
        return model

    def __repr__(self) -> str:
        return (f"HierarchicalModel(hyperparameters={self.hyperprior.names}, latents={self.latent_names}, "
                f"objects={self.n_objects}, n_draws={self.n_draws}, maps={len(self.delta_maps)})")
