"""Truncated sequential NPE: spend the simulations where one observation's posterior lives.

Deistler, Gonçalves & Macke (2022, NeurIPS, "Truncated proposals for
scalable and hassle-free simulation-based inference", arXiv:2210.04815):
after each round of NPE, the prior is truncated to the highest-probability
region (HPR) of the current estimate q(θ | x_obs),

    HPR = {θ : log q(θ | x_obs) ≥ t},  t = the ε-quantile of log q over draws from q,

and the next round's θ are drawn from the prior restricted to it. Because the
truncated prior is *proportional to the prior* inside the region, the plain
NPE maximum-likelihood loss on all simulations so far still converges to the
true posterior there (their Sec. 3) — no importance weights or proposal
corrections (SNPE-A/B/C) are needed. Outside the region the estimate is not
trained, but the true posterior has only about ε of its mass there.

The returned :class:`~astrobayes.inference.npe.Posterior` carries the
*original* prior, so its support, ``log_prob`` and
``reweighted_log_likelihood`` keep their meaning; it is focused on ``x_obs``
and should not be used amortized for other observations.
"""
from __future__ import annotations

import math

import numpy as np
from astropy.table import Table
from scipy import special
from tqdm.auto import tqdm

from astrobayes.core.validation import as_inputs
from astrobayes.estimators.training import show_progress, training_config
from astrobayes.inference.npe import NPE, Posterior
from astrobayes.inference.priors import JointPrior, LogUniform, Normal, Uniform

__all__ = ["TruncatedPrior", "truncated_sequential_npe"]


# ------------------------------------------------- one component, cut to an interval
def _cdf(component, value: np.ndarray) -> np.ndarray:
    if isinstance(component, Uniform):
        return np.clip((value - component.low) / (component.high - component.low), 0.0, 1.0)
    if isinstance(component, LogUniform):
        span = math.log(component.high / component.low)
        return np.clip(np.log(np.maximum(value, component.low) / component.low) / span, 0.0, 1.0)
    if isinstance(component, Normal):
        return special.ndtr((value - component.loc) / component.scale)
    raise TypeError(f"cannot truncate a {type(component).__name__} prior (Uniform, LogUniform, Normal only)")


def _interval_mass(component, low: float, high: float) -> float:
    """Prior probability of [low, high] for one parameter."""
    if isinstance(component, Normal) and (low - component.loc) > 0:
        # upper tail: difference of survival functions keeps its precision where the CDF is ≈ 1
        z_low, z_high = (np.array([low, high]) - component.loc) / component.scale
        return float(special.ndtr(-z_low) - special.ndtr(-z_high))
    return float(_cdf(component, np.float64(high)) - _cdf(component, np.float64(low)))


def _draw_in_interval(component, low: float, high: float, unit_draws: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from one prior component restricted to [low, high]."""
    if isinstance(component, Uniform):
        draws = low + (high - low) * unit_draws
    elif isinstance(component, LogUniform):
        draws = np.exp(math.log(low) + math.log(high / low) * unit_draws)
    elif isinstance(component, Normal):
        z_low, z_high = (low - component.loc) / component.scale, (high - component.loc) / component.scale
        flip = z_low > 0  # sample the mirror image in the lower tail, where ndtr/ndtri are precise
        if flip:
            z_low, z_high = -z_high, -z_low
        p_low, p_high = special.ndtr(z_low), special.ndtr(z_high)
        z = special.ndtri(p_low + (p_high - p_low) * unit_draws)
        draws = component.loc + component.scale * (-z if flip else z)
    else:
        raise TypeError(f"cannot truncate a {type(component).__name__} prior (Uniform, LogUniform, Normal only)")
    return np.clip(draws, low, high)  # rounding in exp/ndtri must not step outside the interval


# ------------------------------------------------------------ the truncated prior
class TruncatedPrior:
    """The prior restricted to the highest-probability region of q(θ | x_obs).

    Draws come from the prior cut to a bounding box of the region (exact
    inverse-CDF draws per parameter), and are kept where
    log q(θ | x_obs) ≥ ``threshold`` — so they follow the prior restricted to
    the region, as truncated sequential NPE requires.

    Parameters
    ----------
    posterior : Posterior
        Current estimate; its prior is the one being truncated.
    x_obs : array-like
        The one observation the region is for.
    quantile : float
        ε: the region keeps the 1 − ε most probable mass of q (Deistler et
        al. 2022 use 10⁻⁴). ``n_draws`` must be at least 1/ε for the quantile
        to be resolved.
    n_draws : int
        Posterior draws that set the threshold and the box.
    margin : float
        The box is the range of the draws widened by this fraction of that
        range on each side (cut at the prior bounds): the region's contour
        reaches a little beyond the draws that define its level.
    min_acceptance : float
        Smallest acceptable fraction of box draws inside the region.
    seed : int, optional

    Attributes
    ----------
    threshold : float
        The level t of log q.
    low, high : numpy.ndarray (d,)
        The bounding box.
    box_fraction : float
        Prior mass of the box.
    prior_fraction : float
        Prior mass of the region: box mass × fraction of box draws accepted
        so far (relative Monte Carlo error √((1 − a)/(a · N)) after N proposals
        with acceptance a).

    Examples
    --------
    >>> from astrobayes.inference.priors import BoxUniform
    >>> prior = BoxUniform([-5.0], [5.0])
    >>> theta = prior.sample(1000, seed=0).numpy(); x = theta + 0.3 * np.random.default_rng(0).normal(size=theta.shape)
    >>> posterior = NPE(prior, density="mdn", n_components=1, hidden=(16,)).append_simulations(theta, x).train(
    ...     epochs=30, batch_size=50, progress=False)
    >>> region = TruncatedPrior(posterior, np.array([1.0]), seed=0)
    >>> region.sample(200, seed=1).shape
    (200, 1)
    >>> round(region.prior_fraction, 1)  # exact: 2 · 3.89 · 0.3 / 10 = 0.23 (|z| < 3.89 holds 1 − 10⁻⁴)
    0.2
    """

    #: proposals evaluated at once while sampling (bounds memory)
    chunk_size = 200_000

    def __init__(self, posterior: Posterior, x_obs, quantile: float = 1e-4, n_draws: int = 10_000,
                 margin: float = 0.5, min_acceptance: float = 1e-3, seed: int | None = None):
        if not isinstance(posterior, Posterior):
            raise TypeError(f"posterior must be a Posterior, got {type(posterior).__name__}")
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
        if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
            raise ValueError(f"n_draws must be an integer of at least 2, got {n_draws!r}")
        if not (margin >= 0 and math.isfinite(margin)):
            raise ValueError(f"margin must be a non-negative number, got {margin!r}")
        if not 0 < min_acceptance < 1:
            raise ValueError(f"min_acceptance must be in (0, 1), got {min_acceptance!r}")
        inputs, single = posterior._observations(x_obs)
        if not single and inputs.shape[0] != 1:
            raise ValueError("x_obs must be one observation: the truncated region belongs to one x_obs")
        self.posterior, self.prior, self.x_obs = posterior, posterior.prior, inputs
        self.quantile, self.min_acceptance = float(quantile), float(min_acceptance)
        seeds = np.random.SeedSequence(seed).spawn(2)
        draws = posterior.sample(int(n_draws), posterior._plain(inputs), seed=_int_seed(seeds[0]))[0]
        draws = draws[np.isfinite(draws).all(axis=1)]
        if draws.shape[0] < 2:
            raise RuntimeError("the posterior gave no draws inside the prior support for x_obs")
        self.threshold = float(np.quantile(self._log_q(draws), quantile))
        span = draws.max(axis=0) - draws.min(axis=0)
        self.low = np.maximum(draws.min(axis=0) - margin * span, self.prior.low)
        self.high = np.minimum(draws.max(axis=0) + margin * span, self.prior.high)
        self.box_fraction = float(np.prod([_interval_mass(c, lo, hi) for c, lo, hi in
                                           zip(self.prior.components, self.low, self.high)]))
        self._proposed, self._accepted = 0, 0
        # a first batch of proposals measures the acceptance (and fails early when it is hopeless)
        self._propose(max(int(n_draws), 1000), np.random.default_rng(seeds[1]))

    def _log_q(self, theta: np.ndarray) -> np.ndarray:
        return self.posterior.log_prob(theta, self.posterior._plain(self.x_obs))

    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        unit_draws = rng.random((n, self.prior.ndim))
        theta = np.column_stack([_draw_in_interval(c, lo, hi, unit_draws[:, i]) for i, (c, lo, hi) in
                                 enumerate(zip(self.prior.components, self.low, self.high))])
        keep = self._log_q(theta) >= self.threshold
        self._proposed += n
        self._accepted += int(keep.sum())
        if self.acceptance < self.min_acceptance:
            raise RuntimeError(f"only {self.acceptance:.2e} of the prior draws in the region's bounding box fall "
                               f"inside the region (minimum {self.min_acceptance:g}): the posterior estimate is "
                               "too irregular to truncate; use more simulations per round or a larger quantile")
        return theta[keep]

    @property
    def acceptance(self) -> float:
        return self._accepted / max(self._proposed, 1)

    @property
    def prior_fraction(self) -> float:
        return self.box_fraction * self.acceptance

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` draws (n, d) from the prior restricted to the region."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        rng = np.random.default_rng(seed)
        kept, total = [], 0
        while total < n:
            # enough proposals for what is missing at the acceptance seen so far, in bounded chunks
            k = int(min(math.ceil(1.2 * (n - total) / max(self.acceptance, self.min_acceptance)) + 16,
                        self.chunk_size))
            accepted = self._propose(k, rng)
            kept.append(accepted)
            total += accepted.shape[0]
        return np.concatenate(kept)[:n]

    def __repr__(self) -> str:
        return (f"TruncatedPrior(threshold={self.threshold:.3g}, prior_fraction={self.prior_fraction:.3g}, "
                f"parameters={self.prior.names})")


def _int_seed(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1)[0])


# ------------------------------------------------------------ the rounds
def truncated_sequential_npe(prior: JointPrior, simulator, x_obs, n_rounds: int = 3,
                             simulations_per_round: int = 1000, *, density: str = "nsf", embedding=None,
                             estimator_options: dict | None = None, quantile: float = 1e-4,
                             region_draws: int = 10_000, seed: int | None = None, config=None,
                             **training_options) -> Posterior:
    """Truncated sequential neural posterior estimation (TSNPE) for one observation.

    Round 1 simulates from the prior; every round trains NPE (plain maximum
    likelihood) on all simulations so far, and the next round draws θ from
    the prior truncated to the highest-probability region of q(θ | x_obs)
    (:class:`TruncatedPrior`). See the module docstring for why the plain
    loss stays valid (Deistler, Gonçalves & Macke 2022).

    Parameters
    ----------
    prior : JointPrior
        The prior; the returned posterior keeps it.
    simulator : callable
        ``simulator(theta, rng) -> x`` with θ a numpy array (n, d) and ``rng``
        a ``numpy.random.Generator``.
    x_obs : array-like
        The observation (shape of one simulated x).
    n_rounds : int
        Rounds of simulate → train (1 is plain NPE).
    simulations_per_round : int
    density : {"nsf", "nsf_coupling", "maf", "realnvp", "mdn"}
    embedding : nn.Module, optional
    estimator_options : dict, optional
        Options of the density estimator (e.g. ``{"n_transforms": 3}``).
    quantile : float
        ε of the region (the region holds 1 − ε of q's mass).
    region_draws : int
        Posterior draws that set each region's threshold (≥ 1/ε).
    seed : int, optional
        Seeds prior/region draws, the simulator's generators and (unless
        ``config``/``training_options`` set one) training.
    config : TrainingConfig, optional
    **training_options
        TrainingConfig fields (``epochs``, ``progress``, ...). With
        ``progress`` on, a bar over rounds shows each region's prior fraction.

    Returns
    -------
    Posterior
        Trained in the last round, with the original prior, and a ``rounds``
        astropy Table: ``round``, ``n_simulations``, ``total_simulations``,
        ``log_q_threshold`` (NaN in round 1), ``prior_fraction`` (prior mass
        of the region that round's θ came from; 1 in round 1),
        ``acceptance`` (fraction of bounding-box proposals in the region) and
        ``best_val_loss``.

    Examples
    --------
    >>> from astrobayes.inference.priors import BoxUniform
    >>> prior = BoxUniform([-10.0, -10.0], [10.0, 10.0])
    >>> simulator = lambda theta, rng: theta + 0.1 * rng.normal(size=theta.shape)
    >>> posterior = truncated_sequential_npe(prior, simulator, np.array([1.0, -2.0]), n_rounds=2,
    ...                                      simulations_per_round=500, density="mdn",
    ...                                      estimator_options={"n_components": 1, "hidden": (16,)},
    ...                                      seed=0, epochs=30, batch_size=50, progress=False)
    >>> posterior.rounds["round"].tolist(), bool(posterior.rounds["prior_fraction"][1] < 1)
    ([1, 2], True)
    """
    if not isinstance(prior, JointPrior):
        raise TypeError(f"prior must be a JointPrior, got {type(prior).__name__}")
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}")
    for name, value in {"n_rounds": n_rounds, "simulations_per_round": simulations_per_round}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    if isinstance(region_draws, bool) or not isinstance(region_draws, (int, np.integer)) or region_draws < 2:
        raise ValueError(f"region_draws must be an integer of at least 2, got {region_draws!r}")
    if estimator_options is not None and not isinstance(estimator_options, dict):
        raise TypeError(f"estimator_options must be a dict, got {type(estimator_options).__name__}")
    as_inputs(x_obs, "x_obs")  # finite numbers before any simulation is spent
    shown = show_progress(training_config(config, **training_options).progress)
    npe = NPE(prior, density=density, embedding=embedding, **(estimator_options or {}))
    rounds, region, posterior = [], None, None
    bar = tqdm(np.random.SeedSequence(seed).spawn(n_rounds), desc="TSNPE rounds", disable=not shown, unit="round")
    for index, round_seeds in enumerate(bar):
        draw_seed, sim_seed, train_seed, region_seed = (_int_seed(s) for s in round_seeds.spawn(4))
        n = int(simulations_per_round)
        theta = prior.sample(n, seed=draw_seed).numpy() if region is None else region.sample(n, seed=draw_seed)
        x = simulator(theta, np.random.default_rng(sim_seed))
        if index == 0:
            _check_observation_shape(x_obs, x)
        npe.append_simulations(theta, x)
        options = dict(training_options)
        if config is None and seed is not None:
            options.setdefault("seed", train_seed)
        rounds.append({"round": index + 1, "n_simulations": n, "total_simulations": npe.n_simulations,
                       "log_q_threshold": math.nan if region is None else region.threshold,
                       "prior_fraction": 1.0 if region is None else region.prior_fraction,
                       "acceptance": 1.0 if region is None else region.acceptance})
        posterior = npe.train(config, **options)
        rounds[-1]["best_val_loss"] = float(npe.estimator.history.best_val_loss)
        if index < n_rounds - 1:
            region = TruncatedPrior(posterior, x_obs, quantile=quantile, n_draws=int(region_draws), seed=region_seed)
            bar.set_postfix(next_prior_fraction=f"{region.prior_fraction:.2e}")
    posterior.rounds = Table(rows=rounds, names=list(rounds[0]),
                             meta={"method": "TSNPE (Deistler, Goncalves & Macke 2022)", "quantile": quantile,
                                   "seed": seed, "density": density})
    return posterior


def _check_observation_shape(x_obs, x) -> None:
    """x_obs must look like one simulated x (or one row of them)."""
    simulated = np.shape(x[0]) if not isinstance(x, tuple) else None
    if simulated is None:
        return  # (values, mask) pairs: the posterior checks them against the trained model
    shape = np.shape(x_obs)
    if shape not in (simulated, (1, *simulated)) and not (np.size(x_obs) == 1 and math.prod(simulated) == 1):
        raise ValueError(f"x_obs has shape {shape}, but one simulated x has shape {simulated}")
