"""Neural posterior estimation (NPE): learn p(θ | x) from simulations.

Draw θ from the prior, simulate x, and fit a conditional density estimator
q(θ | x) on the pairs (Papamakarios & Murray 2016; Greenberg et al. 2019).
The fitted :class:`Posterior` is *amortized*: one network serves every
observation, so a catalogue of 10⁵ objects is one batched call.

Bounded priors: a flow or mixture puts some mass outside the prior box, so
:meth:`Posterior.sample` rejects out-of-support draws (the posterior is zero
there) and reports ``acceptance_rate``. The sampled density is then the
*truncated* q(θ | x) / A(x), with A(x) the in-support mass; see
:meth:`Posterior.log_prob` for how A(x) is handled.
"""
from __future__ import annotations

import math
import warnings

import astropy.units as u
import numpy as np
import torch
from astropy.table import Table

from astrobayes.core.serialization import load as load_estimator
from astrobayes.core.validation import (
    Masked,
    as_inputs,
    as_tensor,
    index_inputs,
    n_rows,
)
from astrobayes.inference.posterior_mode import refine_mode
from astrobayes.inference.priors import JointPrior, prior_from_config, prior_to_config
from astrobayes.inference.simulations import (DENSITY_TYPES, SimulationTrainer, check_density_estimator, read_sidecar,
                                              sidecar_errors, write_sidecar)

__all__ = ["DENSITY_TYPES", "NPE", "Posterior"]


# ------------------------------------------------------------ posterior
class Posterior:
    """Amortized posterior q(θ | x) with prior-support rejection.

    Parameters
    ----------
    estimator : ConditionalFlow or MixtureDensityNetwork
        Fitted with y = θ and x = data.
    prior : JointPrior
        The training (simulation) prior π_train; its bounds define the support.
    min_acceptance : float
        :meth:`sample` warns when any observation's fraction of in-support
        draws is below this (default 0.1: each accepted draw costs more than 10 proposals,
        and the network has put much mass where the prior forbids it, which
        usually means x_obs is unlike the training simulations).
    max_rounds : int
        Rejection rounds per chunk; objects still short of ``n`` draws after
        that get NaN rows (and a warning), so one bad object does not stop a
        catalogue-wide call.

    Attributes
    ----------
    acceptance_rate : float or None
        Accepted / proposed draws in the last :meth:`sample` call.
    object_acceptance : numpy.ndarray or None
        The same per observation (m,).

    Examples
    --------
    >>> from astrobayes.inference.priors import BoxUniform
    >>> prior = BoxUniform([-2.0], [2.0])
    >>> theta = prior.sample(500, seed=0).numpy(); x = theta + 0.3 * np.random.default_rng(0).normal(size=theta.shape)
    >>> npe = NPE(prior, density="mdn", n_components=2, hidden=(16,))
    >>> posterior = npe.append_simulations(theta, x).train(epochs=3, progress=False)
    >>> posterior.sample(50, np.array([0.5]), seed=1).shape
    (50, 1)
    """

    def __init__(self, estimator, prior: JointPrior, min_acceptance: float = 0.1, max_rounds: int = 100):
        check_density_estimator(estimator, prior)
        if estimator.dims["y_dim"] != prior.ndim:
            raise ValueError(f"estimator models {estimator.dims['y_dim']} parameters but prior has {prior.ndim}")
        if isinstance(min_acceptance, bool) or not 0 <= min_acceptance < 1:
            raise ValueError(f"min_acceptance must be in [0, 1), got {min_acceptance!r}")
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)) or max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer (rejection rounds), got {max_rounds!r}")
        self.estimator, self.prior = estimator, prior
        self.min_acceptance, self.max_rounds = float(min_acceptance), int(max_rounds)
        self.acceptance_rate: float | None = None
        self.object_acceptance: np.ndarray | None = None
        #: per-round record (an astropy Table) when built by truncated_sequential_npe, else None
        self.rounds = None
        self._bounded = bool(np.isfinite(prior.low).any() or np.isfinite(prior.high).any())

    # -------------------------------------------------------------- inputs
    def _observations(self, x_obs) -> tuple[torch.Tensor | Masked, bool]:
        """x_obs as rows and whether a single observation (no leading axis) was given."""
        shape = tuple(self.estimator.dims["x_shape"])
        if self.estimator.dims.get("x_masked") and isinstance(x_obs, (tuple, list, Masked)) and len(x_obs) == 2:
            values, mask = x_obs
            if np.ndim(values) == 2:  # one set/sequence (L, C) with its mask (L,)
                return as_inputs((values[None], mask[None]), "x_obs"), True
        inputs = as_inputs(x_obs, "x_obs")
        if isinstance(inputs, Masked):
            return inputs, False
        if inputs.ndim == 0:
            inputs = inputs.reshape(1)
        single = inputs.ndim == len(shape) and not (shape == (1,) and inputs.shape[0] > 1)
        if single:
            inputs = inputs[None]
        elif shape == (1,) and inputs.ndim == 1:
            inputs = inputs[:, None]  # m scalar observations
        return inputs, single

    def _theta(self, theta) -> torch.Tensor:
        # float64 so that support checks at the prior bounds are not moved by float32 rounding
        tensor = as_tensor(theta, "theta", ndim=(1, 2), dtype=torch.float64, allow_nonfinite=True)
        tensor = tensor[None] if tensor.ndim == 1 else tensor
        if tensor.shape[1] != self.prior.ndim:
            raise ValueError(f"theta must have {self.prior.ndim} columns ({self.prior.names}), got shape "
                             f"{tuple(tensor.shape)}")
        return tensor

    # -------------------------------------------------------------- sampling
    def sample(self, n: int, x_obs, seed: int | None = None, batch_size: int = 1024):
        """Posterior draws inside the prior support.

        Parameters
        ----------
        n : int
            Accepted draws per observation.
        x_obs : array-like
            One observation (shape of one training x, e.g. (k,)) or m of them
            ((m, k)); a ``(values, mask)`` pair for set/sequence data.
        seed : int, optional
            Makes the draws reproducible.
        batch_size : int
            Observations handled together. Each rejection round proposes k
            draws for every unfinished object of the chunk, k ≈ 1.2 · (draws
            still needed) / (that object's acceptance so far), at most 20 n
            and at most ``max_proposals`` (4·10⁶) proposals in all.

        Returns
        -------
        numpy.ndarray
            (n, d) for one observation, (m, n, d) for m observations. Sets
            ``acceptance_rate`` and ``object_acceptance``; warns when any
            object's acceptance is below ``min_acceptance``, and fills with
            NaN (with a warning) objects still short after ``max_rounds``.
        """
        n = self.estimator._check_n(n)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        inputs, single = self._observations(x_obs)
        seeds = np.random.SeedSequence(seed)
        m = n_rows(inputs)
        out = np.full((m, n, self.prior.ndim), np.nan)
        proposed, accepted = np.zeros(m), np.zeros(m)
        for start in range(0, m, batch_size):
            rows = np.arange(start, min(start + batch_size, m))
            self._sample_chunk(n, inputs, rows, out, proposed, accepted, seeds.spawn(1)[0])
        self.object_acceptance = accepted / np.maximum(proposed, 1)
        self.acceptance_rate = float(accepted.sum() / max(proposed.sum(), 1))
        low = self.object_acceptance < self.min_acceptance
        if low.any():
            warnings.warn(f"{int(low.sum())} of {m} observation(s) had fewer than {self.min_acceptance:.0%} of their "
                          f"posterior draws inside the prior support (lowest {self.object_acceptance.min():.1%}, "
                          f"overall {self.acceptance_rate:.1%}); see posterior.object_acceptance. Such x_obs "
                          "may lie outside the training simulations", UserWarning, stacklevel=2)
        short = np.isnan(out).any(axis=(1, 2))
        if short.any():
            warnings.warn(f"{int(short.sum())} observation(s) got fewer than {n} in-support draws after "
                          f"{self.max_rounds} rounds; their missing draws are NaN", UserWarning, stacklevel=2)
        return out[0] if single else out

    #: upper bound on proposals (objects × draws) held at once in one rejection round
    max_proposals = 4_000_000

    def _sample_chunk(self, n, inputs, rows, out, proposed, accepted, seeds: np.random.SeedSequence):
        filled = np.zeros(len(rows), dtype=int)
        for _ in range(self.max_rounds):
            todo = np.flatnonzero(filled < n)
            if todo.size == 0:
                return
            # enough proposals for the neediest object at its own acceptance so far (floored at 0.1 %),
            # at most 20 n per object and round and bounded in memory
            need = n - filled[todo]
            seen = proposed[rows[todo]]
            rate = np.where(seen > 0, accepted[rows[todo]] / np.maximum(seen, 1), 1.0)
            k = math.ceil(1.2 * np.max(need / np.maximum(rate, 1e-3))) + 1
            k = int(max(min(k, 20 * n, self.max_proposals // todo.size), need.max()))
            round_seed = int(seeds.spawn(1)[0].generate_state(1)[0])
            draws = self.estimator.sample(k, index_inputs(inputs, torch.as_tensor(rows[todo])), seed=round_seed)
            draws = np.asarray(draws.numpy() if isinstance(draws, torch.Tensor) else draws, dtype=np.float64)
            ok = np.asarray(self.prior.support_check(draws)) if self._bounded else np.isfinite(draws).all(-1)
            # vectorised fill: the first `need` accepted draws of each object go to its next free slots
            rank = ok.cumsum(axis=1)
            take = ok & (rank <= need[:, None])
            obj, col = np.nonzero(take)
            out[rows[todo[obj]], filled[todo[obj]] + rank[obj, col] - 1] = draws[obj, col]
            filled[todo] += take.sum(axis=1)
            proposed[rows[todo]] += k
            accepted[rows[todo]] += ok.sum(axis=1)

    # -------------------------------------------------------------- density
    def log_prob(self, theta, x_obs, normalize_truncation: bool = False, n_draws: int = 2000,
                 seed: int | None = 0) -> np.ndarray:
        """log q(θ | x): −inf outside the prior support.

        By default this is the *untruncated* network density, whose mass
        inside the support is A(x) ≤ 1; it differs from the density that
        :meth:`sample` draws from by the constant −log A(x) per observation.
        With ``normalize_truncation=True``, log A(x) is estimated from
        ``n_draws`` network draws per observation and subtracted (relative
        Monte Carlo error ≈ sqrt((1 − A) / (A · n_draws))), giving a
        normalised density on the support.

        Parameters
        ----------
        theta : array-like (k, d) or (d,)
        x_obs : array-like
            One observation (paired with every θ) or k observations (row by row).

        Returns
        -------
        numpy.ndarray (k,)
        """
        values = self._theta(theta).numpy()
        inputs, _ = self._observations(x_obs)
        inside = np.asarray(self.prior.support_check(values))
        # the network never sees out-of-support (possibly infinite) θ: a finite in-support stand-in takes its place
        stand_in = np.clip(0.0, self.prior.low, self.prior.high)
        safe = np.where(inside[:, None], values, np.where(np.isfinite(stand_in), stand_in, 0.0))
        logq = np.asarray(self.estimator.log_prob(safe, self._plain(inputs)), dtype=np.float64)
        logq = np.where(inside, logq, -np.inf)
        if normalize_truncation and self._bounded:
            draws = np.asarray(self.estimator.sample(n_draws, self._plain(inputs), seed=seed), dtype=np.float64)
            acceptance = np.asarray(self.prior.support_check(draws)).mean(axis=1)
            with np.errstate(divide="ignore"):
                logq = logq - np.log(acceptance)
        return logq

    @staticmethod
    def _plain(inputs):
        return (inputs.values, inputs.mask) if isinstance(inputs, Masked) else inputs

    def reweighted_log_likelihood(self, theta, x_obs) -> np.ndarray:
        """Interim-prior likelihood term log q(θ | x) − log π_train(θ).

        For an amortized posterior trained under the simulation prior π_train,
        p(x | θ) ∝ q(θ | x) / π_train(θ) up to a factor that depends on x only
        (Bayes' theorem). In a hierarchical model over many objects, each
        object's likelihood of population parameters α is then the average of
        p(θ | α) / π_train(θ) over posterior draws (Hogg, Myers & Bovy 2010,
        ApJ 725, 2166). The x-only factor cancels in any inference of α or θ.
        The untruncated log q is used (truncation is another x-only factor);
        outside the prior support the result is −inf.
        """
        values = self._theta(theta).numpy()
        logq = self.log_prob(values, x_obs)
        inside = np.isfinite(logq)
        logp = np.asarray(self.prior.log_prob(values), dtype=np.float64)
        return np.where(inside, logq - np.where(inside, logp, 0.0), -np.inf)

    def map(self, x_obs, n_draws: int = 1000, seed: int | None = 0, refine: bool = True,
            steps: int = 100) -> np.ndarray:
        """Maximum a posteriori estimate: the θ of highest log q(θ | x) in the prior support.

        Parameters
        ----------
        x_obs : array-like
            One observation or m of them (as for :meth:`sample`).
        n_draws, seed : int
            The start is the best of ``n_draws`` seeded posterior draws per
            observation, within about (posterior width) / n_draws^(1/d) of the mode.
        refine : bool
            Then climb log q by gradient ascent through the network, clipped
            to the prior support (:func:`~astrobayes.inference.posterior_mode.refine_mode`);
            the refined point is kept only where its log q is not below the start's.
        steps : int
            Ascent steps (one forward and backward pass each, all objects at once).

        Returns
        -------
        numpy.ndarray
            (d,) for one observation, (m, d) for m; NaN rows for observations
            without any in-support draw.
        """
        if not isinstance(refine, (bool, np.bool_)):
            raise TypeError(f"refine must be True or False, got {refine!r}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        inputs, single = self._observations(x_obs)
        draws = self.sample(n_draws, self._plain(inputs), seed=seed)  # (m, n, d)
        m = draws.shape[0]
        repeated = index_inputs(inputs, torch.arange(m).repeat_interleave(n_draws))
        flat = np.nan_to_num(draws.reshape(m * n_draws, -1), nan=np.inf)
        logq = self.log_prob(flat, self._plain(repeated)).reshape(m, n_draws)
        best = draws[np.arange(m), np.argmax(logq, axis=1)]
        if refine:
            best = self._refine_map(inputs, best, draws, int(steps))
        return best[0] if single else best

    def _refine_map(self, inputs, best: np.ndarray, draws: np.ndarray, steps: int) -> np.ndarray:
        rows = np.flatnonzero(np.isfinite(best).all(axis=1))
        if rows.size == 0:
            return best
        chosen = index_inputs(inputs, torch.as_tensor(rows))
        # step sizes in units of each object's posterior width; one draw (or a collapsed posterior) has no
        # spread, and then the width of the training θ (the y standardisation) stands in for it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            width = np.nanstd(draws[rows], axis=1)
        fallback = self.estimator.network.y_scaler.scale.detach().cpu().double().numpy()
        width = np.where(np.isfinite(width) & (width > 0), width, fallback)
        refined = refine_mode(self.estimator, self.estimator._check_x(self._plain(chosen)), best[rows], width,
                              self.prior.low, self.prior.high, steps)
        # the public log q decides, so the refined MAP never scores below the best draw
        before = self.log_prob(best[rows], self._plain(chosen))
        after = self.log_prob(refined, self._plain(chosen))
        out = best.copy()
        out[rows] = np.where((after >= before)[:, None], refined, best[rows])
        return out

    def summary(self, x_obs, n_draws: int = 4000, seed: int | None = 0) -> Table:
        """Posterior quantiles per parameter for one observation, as an astropy Table.

        Columns: ``parameter``, ``unit``, ``median``, ``q16``, ``q84``,
        ``q2.5``, ``q97.5`` (the 68 % and 95 % central intervals), from
        ``n_draws`` seeded draws.
        """
        inputs, single = self._observations(x_obs)
        if not single and n_rows(inputs) != 1:
            raise ValueError("summary takes one observation; loop or use sample() for many")
        draws = self.sample(n_draws, self._plain(inputs), seed=seed)[0]
        q = np.percentile(draws, [50, 16, 84, 2.5, 97.5], axis=0)
        units = [un.to_string() if un != u.dimensionless_unscaled else "" for un in self.prior.units]
        return Table({"parameter": self.prior.names, "unit": units, "median": q[0], "q16": q[1], "q84": q[2],
                      "q2.5": q[3], "q97.5": q[4]})

    # -------------------------------------------------------------- files
    def save(self, path) -> None:
        """Write the estimator (``path.safetensors`` + ``path.json``) and ``path.prior.json``."""
        self.estimator.save(path)
        write_sidecar(path, "prior", {"prior": prior_to_config(self.prior), "min_acceptance": self.min_acceptance,
                                      "max_rounds": self.max_rounds})

    @classmethod
    def load(cls, path) -> Posterior:
        """Load a posterior written by :meth:`save`."""
        estimator = load_estimator(path)
        sidecar = read_sidecar(path, "prior")
        with sidecar_errors(path, "prior"):
            return cls(estimator, prior_from_config(sidecar["prior"]),
                       min_acceptance=sidecar["min_acceptance"], max_rounds=sidecar["max_rounds"])

    def __repr__(self) -> str:
        return f"Posterior({self.estimator!r}, parameters={self.prior.names})"


# ------------------------------------------------------------ trainer
class NPE(SimulationTrainer):
    """Neural posterior estimation trainer.

    Parameters
    ----------
    prior : JointPrior
        Simulation prior; training θ must lie in its support.
    density : {"nsf", "nsf_coupling", "maf", "realnvp", "mdn"}
        Conditional density estimator: a :class:`ConditionalFlow` of that
        type or a :class:`MixtureDensityNetwork`.
    embedding : nn.Module, optional
        Summary network for x (images, sets, sequences).
    **estimator_options
        Passed to the estimator (e.g. ``n_transforms``, ``hidden_features``
        for flows; ``n_components``, ``hidden`` for the MDN).

    Examples
    --------
    >>> from astrobayes.inference.priors import Normal
    >>> prior = JointPrior([Normal(0.0, 1.0, name="mu")])
    >>> simulator = lambda theta, rng: theta + 0.5 * rng.normal(size=theta.shape)
    >>> npe = NPE(prior, density="mdn", n_components=1, hidden=(16,))
    >>> posterior = npe.simulate_and_train(simulator, 500, seed=0, epochs=3, progress=False)
    >>> posterior.sample(10, np.array([[0.2], [1.0]]), seed=0).shape
    (2, 10, 1)
    """

    def __init__(self, prior: JointPrior, density: str = "nsf", embedding=None, **estimator_options):
        super().__init__(prior, density, embedding=embedding, **estimator_options)

    def append_simulations(self, theta, x) -> NPE:
        """Add simulated pairs (θ_i, x_i); θ must have ``prior.ndim`` columns and lie in the support."""
        tensor = self._check_theta(theta)
        inputs = as_inputs(x, "x")
        if n_rows(inputs) != tensor.shape[0]:
            raise ValueError(f"theta has {tensor.shape[0]} rows but x has {n_rows(inputs)}")
        if self._x and isinstance(inputs, Masked) != isinstance(self._x[0], Masked):
            raise TypeError("x: cannot mix (values, mask) pairs and plain arrays across append_simulations calls")
        self._theta.append(tensor)
        self._x.append(inputs)
        return self

    def _stacked_x(self):
        if isinstance(self._x[0], Masked):
            return (torch.cat([m.values for m in self._x]), torch.cat([m.mask for m in self._x]))
        return torch.cat([x.to(torch.float32) if x.is_floating_point() else x for x in self._x])

    def train(self, config=None, min_acceptance: float = 0.1, **training_options) -> Posterior:
        """Fit the estimator on all appended simulations (TrainingConfig fields as keywords) → Posterior."""
        theta = self._all_theta()
        self.estimator.fit(self._stacked_x(), theta, config, **training_options)
        return Posterior(self.estimator, self.prior, min_acceptance=min_acceptance)
