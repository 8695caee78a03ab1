"""Neural likelihood estimation (NLE): learn q(x | θ) from simulations, sample the posterior with MCMC.

Draw θ from the prior, simulate x, and fit a conditional density estimator
q(x | θ) on the pairs (Papamakarios, Sterratt & Murray 2019, "Sequential
neural likelihood"; Lueckmann et al. 2019). Unlike NPE the learned object is
the *likelihood* of one observation, so n i.i.d. observations of the same
object combine exactly as in a hand-written likelihood:

    log L(θ) = Σ_i log q(x_i | θ),

and the posterior π(θ) L(θ) is sampled with :func:`run_emcee`. This suits
problems where the number of observations varies (10 or 1000 stars of one
cluster) or the prior changes after training: neither needs retraining.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from astrobayes.core.serialization import load as load_estimator
from astrobayes.core.validation import as_tensor
from astrobayes.inference.priors import JointPrior, prior_from_config, prior_to_config
from astrobayes.inference.simulations import (DENSITY_TYPES, SimulationTrainer, check_density_estimator, read_sidecar,
                                              sidecar_errors, write_sidecar)
from astrobayes.inference.sampling import MCMCResult, run_emcee

__all__ = ["DENSITY_TYPES", "NLE", "Likelihood"]

#: largest number of (observation, θ) pairs evaluated in one network call; bounds memory for big n_obs · m
MAX_PAIRS = 65536


def _is_torch(value) -> bool:
    return isinstance(value, torch.Tensor)


# ------------------------------------------------------------ likelihood
class Likelihood:
    """Learned likelihood q(x | θ) of one observation, with the prior it was trained under.

    Parameters
    ----------
    estimator : ConditionalFlow or MixtureDensityNetwork
        Fitted with y = x (data vectors) and conditioning input = θ.
    prior : JointPrior
        The simulation prior; its support limits where the likelihood is
        trusted and it is the default prior of :meth:`posterior`.

    Examples
    --------
    >>> import numpy as np
    >>> from astrobayes.inference.priors import Normal
    >>> prior = JointPrior([Normal(0.0, 1.0, name="mu")])
    >>> simulator = lambda theta, rng: theta + 0.5 * rng.normal(size=theta.shape)
    >>> nle = NLE(prior, density="mdn", n_components=1, hidden=(16,))
    >>> likelihood = nle.simulate_and_train(simulator, 500, seed=0, epochs=3, progress=False)
    >>> x_obs = np.array([[0.3], [0.1], [0.5]])  # three i.i.d. observations
    >>> likelihood.log_likelihood(x_obs, np.array([[0.0], [0.3]])).shape
    (2,)
    """

    def __init__(self, estimator, prior: JointPrior):
        check_density_estimator(estimator, prior)
        shape = tuple(estimator.dims["x_shape"])
        if shape != (prior.ndim,) or estimator.dims.get("x_masked"):
            raise ValueError(f"estimator is conditioned on inputs of shape {shape}, but the prior has "
                             f"{prior.ndim} parameters")
        self.estimator, self.prior = estimator, prior

    @property
    def data_dim(self) -> int:
        """Number of columns of one observation x."""
        return int(self.estimator.dims["y_dim"])

    # -------------------------------------------------------------- inputs
    def _observations(self, x_obs) -> torch.Tensor:
        """x_obs as (n_obs, dx) float32; a 1-D array is one observation, or n scalar ones when dx = 1."""
        tensor = as_tensor(x_obs, "x_obs", ndim=(1, 2))
        if tensor.ndim == 1:
            tensor = tensor[:, None] if self.data_dim == 1 else tensor[None]
        if tensor.shape[1] != self.data_dim:
            raise ValueError(f"x_obs must have {self.data_dim} column(s) (the simulated data), got shape "
                             f"{tuple(tensor.shape)}")
        return tensor

    def _theta(self, theta, allow_nonfinite: bool = False) -> torch.Tensor:
        """θ as (m, d) float64; a 1-D array is one parameter set, or m values when d = 1."""
        tensor = as_tensor(theta, "theta", ndim=(1, 2), dtype=torch.float64, allow_nonfinite=allow_nonfinite)
        if tensor.ndim == 1:
            tensor = tensor[:, None] if self.prior.ndim == 1 else tensor[None]
        if tensor.shape[1] != self.prior.ndim:
            raise ValueError(f"theta must have {self.prior.ndim} column(s) ({self.prior.names}), got shape "
                             f"{tuple(tensor.shape)}")
        return tensor

    # -------------------------------------------------------------- density
    def _sum_log_q(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Σ_i log q(x_i | θ_j) for checked x (n, dx) and θ (m, d) → float64 (m,)."""
        n, m = x.shape[0], theta.shape[0]
        # every (θ_j, x_i) pair is one row of one network call; chunks of θ keep at most MAX_PAIRS rows
        rows_per_chunk = max(1, MAX_PAIRS // n)
        theta32 = theta.to(torch.float32)
        out = []
        with torch.no_grad():
            for start in range(0, m, rows_per_chunk):
                block = theta32[start:start + rows_per_chunk]
                k = block.shape[0]
                pairs_x = x.repeat(k, 1)  # x_0..x_{n-1}, x_0..x_{n-1}, ...
                pairs_theta = block.repeat_interleave(n, dim=0)  # θ_0 n times, θ_1 n times, ...
                logq = self.estimator.log_prob(pairs_x, pairs_theta)
                out.append(logq.reshape(k, n).double().sum(dim=1))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def log_likelihood(self, x_obs, theta):
        """log L(θ) = Σ_i log q(x_i | θ) over i.i.d. observations, for each parameter set.

        Parameters
        ----------
        x_obs : array-like (n_obs, dx) or (dx,)
            The observations of one object, assumed independent given θ
            (for dx = 1 a 1-D array holds n_obs scalar observations).
        theta : array-like (m, d) or (d,)
            Parameter sets (for d = 1 a 1-D array holds m values). Must be
            finite; use :meth:`log_posterior_fn` for −inf outside the support.

        Returns
        -------
        numpy.ndarray or torch.Tensor (m,), float64
            A tensor when ``theta`` is a tensor. Evaluated under no_grad in
            chunks of at most ``MAX_PAIRS`` (observation, θ) pairs.
        """
        values = self._sum_log_q(self._observations(x_obs), self._theta(theta))
        return values if _is_torch(theta) else values.numpy()

    def log_posterior_fn(self, x_obs, prior: JointPrior | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A log-posterior log π(θ) + log L(θ) for :func:`run_emcee`.

        The returned callable maps θ (m, d) to float64 (m,). Rows outside the
        support of the analysis prior or of the training prior (or
        non-finite) get −inf without evaluating the network there: the
        likelihood was never trained on them.

        Parameters
        ----------
        x_obs : array-like (n_obs, dx)
            Observations, checked once here.
        prior : JointPrior, optional
            Prior of the analysis (default: the training prior), e.g. a
            narrower or informative one; no retraining is needed. The
            posterior is truncated to the training prior's support.
        """
        x = self._observations(x_obs)
        prior = self.prior if prior is None else prior
        if not isinstance(prior, JointPrior) or prior.ndim != self.prior.ndim:
            raise ValueError(f"prior must be a JointPrior over {self.prior.ndim} parameters, got {prior!r}")

        def log_posterior(theta) -> torch.Tensor:
            theta = self._theta(theta, allow_nonfinite=True)
            log_prior = torch.as_tensor(prior.log_prob(theta), dtype=torch.float64)
            # q was trained only inside the simulation prior's support: outside it the likelihood is unknown
            inside = torch.isfinite(log_prior) & torch.as_tensor(self.prior.support_check(theta))
            result = torch.full_like(log_prior, -math.inf)
            if inside.any():
                result[inside] = log_prior[inside] + self._sum_log_q(x, theta[inside])
            return result

        return log_posterior

    def posterior(self, x_obs, n_steps: int = 2000, seed: int | None = 0, prior: JointPrior | None = None,
                  **emcee_options) -> MCMCResult:
        """Sample p(θ | x_obs) ∝ π(θ) Π_i q(x_i | θ) with :func:`run_emcee`.

        Parameters
        ----------
        x_obs : array-like (n_obs, dx)
            I.i.d. observations of one object.
        n_steps, seed : int
            Passed to :func:`run_emcee` (aim for ≥ 50 autocorrelation times).
        prior : JointPrior, optional
            Analysis prior (default: the training prior); starts the walkers.
        **emcee_options
            Other :func:`run_emcee` options (``n_walkers``, ``progress``, ...).
        """
        prior = self.prior if prior is None else prior
        return run_emcee(self.log_posterior_fn(x_obs, prior), prior, n_steps=n_steps, seed=seed, **emcee_options)

    # -------------------------------------------------------------- files
    def save(self, path) -> None:
        """Write the estimator (``path.safetensors`` + ``path.json``) and ``path.likelihood.json`` (the prior)."""
        self.estimator.save(path)
        write_sidecar(path, "likelihood", {"kind": "NLE likelihood", "prior": prior_to_config(self.prior)})

    @classmethod
    def load(cls, path) -> Likelihood:
        """Load a likelihood written by :meth:`save`."""
        estimator = load_estimator(path)
        sidecar = read_sidecar(path, "likelihood")
        with sidecar_errors(path, "likelihood"):
            return cls(estimator, prior_from_config(sidecar["prior"]))

    def __repr__(self) -> str:
        return f"Likelihood({self.estimator!r}, parameters={self.prior.names})"


# ------------------------------------------------------------ trainer
class NLE(SimulationTrainer):
    """Neural likelihood estimation trainer.

    Parameters
    ----------
    prior : JointPrior
        Simulation prior; training θ must lie in its support.
    density : {"nsf", "nsf_coupling", "maf", "realnvp", "mdn"}
        Density estimator for q(x | θ): a :class:`ConditionalFlow` of that type
        or a :class:`MixtureDensityNetwork` (fastest, fine for near-Gaussian noise).
    **estimator_options
        Passed to the estimator (``n_transforms``, ``hidden_features`` for
        flows; ``n_components``, ``hidden`` for the MDN).

    Examples
    --------
    >>> import numpy as np
    >>> from astrobayes.inference.priors import Normal
    >>> prior = JointPrior([Normal(0.0, 1.0, name="mu")])
    >>> simulator = lambda theta, rng: theta + 0.5 * rng.normal(size=theta.shape)
    >>> nle = NLE(prior, density="mdn", n_components=1, hidden=(16,))
    >>> likelihood = nle.simulate_and_train(simulator, 500, seed=0, epochs=3, progress=False)
    >>> result = likelihood.posterior(np.array([[0.2], [0.4]]), n_steps=1500, progress=False)
    >>> result.summary()["name"].tolist()
    ['mu']
    """

    def __init__(self, prior: JointPrior, density: str = "nsf", **estimator_options):
        if "embedding" in estimator_options:
            raise ValueError("embedding: NLE conditions on θ, which needs no embedding network")
        super().__init__(prior, density, **estimator_options)

    def append_simulations(self, theta, x) -> NLE:
        """Add simulated pairs (θ_i, x_i); θ (n, d) inside the prior support, x (n, dx) data vectors."""
        tensor = self._check_theta(theta)
        data = as_tensor(x, "x", ndim=(1, 2))
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[0] != tensor.shape[0]:
            raise ValueError(f"theta has {tensor.shape[0]} rows but x has {data.shape[0]}")
        if self._x and data.shape[1] != self._x[0].shape[1]:
            raise ValueError(f"x has {data.shape[1]} columns, earlier simulations had {self._x[0].shape[1]}")
        self._theta.append(tensor)
        self._x.append(data)
        return self

    def train(self, config=None, **training_options) -> Likelihood:
        """Fit q(x | θ) on all appended simulations (TrainingConfig fields as keywords) → Likelihood."""
        self.estimator.fit(self._all_theta(), torch.cat(self._x), config, **training_options)
        return Likelihood(self.estimator, self.prior)
