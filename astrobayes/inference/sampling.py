"""The one emcee glue: vectorised torch log-probabilities in, a labelled result out.

:func:`run_emcee` drives :class:`emcee.EnsembleSampler` with
``vectorize=True``: every step hands a whole batch of walker positions to the
log-probability as one float64 torch tensor under ``torch.no_grad()``, so a
neural likelihood or a hierarchical model runs once per batch, not once per
walker. Every run reports the acceptance fraction and the integrated
autocorrelation time τ, chooses burn-in and thinning from τ, and warns when the
chain is too short (< 50 τ) for τ itself to be trusted (Foreman-Mackey et al.
2013; emcee's autocorrelation tutorial).
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import astropy.units as u
import emcee
import numpy as np
import torch
from astropy.table import Table

from astrobayes.inference.priors import JointPrior, _ParameterPrior

__all__ = ["run_emcee", "MCMCResult"]

#: a chain needs about this many autocorrelation times before τ, burn-in and errors are reliable
MIN_TAU_MULTIPLE = 50
#: rounds of prior draws before giving up on finding starting points with finite log-probability
_MAX_INIT_ROUNDS = 100


@dataclass(repr=False)
class MCMCResult:
    """Output of :func:`run_emcee`.

    Attributes
    ----------
    chain : ndarray (n_steps, n_walkers, ndim)
        Every position, burn-in included.
    log_prob : ndarray (n_steps, n_walkers)
    samples : ndarray (n_samples, ndim)
        Flat posterior draws after discarding ``burn_in`` steps and keeping every ``thin``-th step.
    names, units : list
        Parameter names and astropy units.
    acceptance_fraction : ndarray (n_walkers,)
        Per walker; ``mean_acceptance`` is their mean (0.2-0.5 is healthy for the stretch move).
    autocorr_time : ndarray (ndim,)
        Integrated autocorrelation time τ per parameter, in steps.
    burn_in, thin : int
    seconds : float
        Wall time of the run.
    meta : dict
        seed, n_walkers, n_steps and other run settings.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from astrobayes.inference.priors import Uniform
    >>> prior = Uniform(0.0, 2.0, name="redshift")
    >>> result = run_emcee(lambda theta: prior.log_prob(theta[:, 0]), prior, n_steps=2000)
    >>> result["redshift"].shape == (len(result.samples),)
    True
    >>> figure = result.corner(truths=[1.0])
    >>> traces = result.trace_plot()
    >>> idata = result.to_arviz()  # doctest: +SKIP
    """

    chain: np.ndarray
    log_prob: np.ndarray
    samples: np.ndarray
    names: list[str]
    units: list[u.UnitBase]
    acceptance_fraction: np.ndarray
    autocorr_time: np.ndarray
    burn_in: int
    thin: int
    seconds: float
    meta: dict = field(default_factory=dict)

    @property
    def mean_acceptance(self) -> float:
        return float(np.mean(self.acceptance_fraction))

    def __repr__(self) -> str:
        return (f"MCMCResult(parameters={self.names}, samples={len(self.samples)}, "
                f"acceptance={self.mean_acceptance:.2f}, tau={np.round(self.autocorr_time, 1).tolist()}, "
                f"burn_in={self.burn_in}, thin={self.thin})")

    @property
    def _kept_steps(self) -> slice:
        # emcee's get_chain(discard=, thin=) convention, so that ``samples`` and these steps agree
        return slice(self.burn_in + self.thin - 1, None, self.thin)

    @property
    def ndim(self) -> int:
        return len(self.names)

    def labels(self) -> list[str]:
        """Axis labels "name [unit]" (no brackets for dimensionless parameters)."""
        return [f"{n} [{un}]" if un != u.dimensionless_unscaled else n for n, un in zip(self.names, self.units)]

    def __getitem__(self, name: str) -> u.Quantity:
        """Posterior draws of one parameter as a Quantity: ``result["mass"]``."""
        if name not in self.names:
            raise KeyError(f"no parameter {name!r}; parameters are {self.names}")
        return self.samples[:, self.names.index(name)] * self.units[self.names.index(name)]

    def summary(self) -> Table:
        """One row per parameter: median, central 68 % and 95 % intervals, mean, std and τ.

        Parameters usually have different units (a mass and a concentration), and
        an astropy column holds a single unit, so the statistics are plain numbers
        *in each row's own unit*, given in the ``unit`` column, the way a paper's
        parameter table is read. ``meta`` records seed, walkers, steps, burn-in,
        thinning, mean acceptance and the astrobayes version.

        Examples
        --------
        >>> from astrobayes.inference.priors import Normal
        >>> prior = Normal(10.0, 1.0, name="distance", unit="kpc")
        >>> result = run_emcee(lambda theta: prior.log_prob(theta[:, 0]), prior, n_steps=3000)
        >>> table = result.summary()
        >>> str(table["unit"][0]), round(float(table["median"][0]))
        ('kpc', 10)
        """
        from astrobayes import __version__

        q = np.percentile(self.samples, [50, 16, 84, 2.5, 97.5], axis=0)
        table = Table()
        table["name"] = self.names
        table["unit"] = [un.to_string() for un in self.units]
        for row, column in enumerate(["median", "p16", "p84", "p2.5", "p97.5"]):
            table[column] = q[row]
        table["mean"] = self.samples.mean(axis=0)
        table["std"] = self.samples.std(axis=0, ddof=1)
        table["tau"] = self.autocorr_time
        for column in table.colnames[2:-1]:
            table[column].format = ".5g"
        table["tau"].format = ".1f"
        table["tau"].description = "integrated autocorrelation time [steps]"
        table.meta.update(self.meta)
        table.meta.update({"burn_in": self.burn_in, "thin": self.thin, "n_samples": len(self.samples),
                           "acceptance": self.mean_acceptance, "astrobayes_version": __version__})
        return table

    def corner(self, truths=None, **kwargs):
        """Corner plot of ``samples`` with the ``corner`` package, axes labelled "name [unit]".

        Parameters
        ----------
        truths : sequence, dict name → value, or None
            Reference values (Quantities are converted to the parameter's unit).
        **kwargs
            Passed to :func:`corner.corner` (e.g. ``quantiles=[0.16, 0.5, 0.84]``).
        """
        try:
            import corner
        except ImportError:
            raise ImportError("corner plots need the 'corner' package: pip install astrobayes[plot]") from None
        if truths is not None:
            if isinstance(truths, dict):
                unknown = set(truths) - set(self.names)
                if unknown:
                    raise ValueError(f"truths has unknown parameter(s) {sorted(unknown)}; parameters are {self.names}")
                truths = [truths.get(name) for name in self.names]
            if len(truths) != self.ndim:
                raise ValueError(f"truths must have {self.ndim} entries, got {len(truths)}")
            truths = [t.to_value(un) if isinstance(t, u.Quantity) else t for t, un in zip(truths, self.units)]
        kwargs.setdefault("labels", self.labels())
        if self.ndim == 1 and truths is not None:
            # corner 2.3 fails to overplot truths on a single-parameter figure, so draw the line here
            figure = corner.corner(self.samples, **kwargs)
            if truths[0] is not None:
                figure.axes[0].axvline(truths[0], color=kwargs.get("truth_color", "#4682b4"))
            return figure
        return corner.corner(self.samples, truths=truths, **kwargs)

    def trace_plot(self):
        """Walker traces per parameter with the burn-in marked; returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(self.ndim, 1, figsize=(7, 1.8 * self.ndim + 0.6), sharex=True, squeeze=False)
        for i, (ax, label) in enumerate(zip(axes[:, 0], self.labels())):
            ax.plot(self.chain[:, :, i], color="k", alpha=0.15, lw=0.5)
            ax.axvline(self.burn_in, color="C3", ls="--", lw=1)
            ax.set_ylabel(label)
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        return fig

    def to_arviz(self):
        """The post-burn-in chain as arviz ``InferenceData`` (walkers as chains)."""
        if self.meta.get("pooled_runs"):
            raise ValueError(f"this result pools {self.meta['pooled_runs']} independent runs; arviz would read their "
                             "walkers as chains of one run (and its R-hat as non-convergence): convert each run "
                             "separately")
        try:
            import arviz
        except ImportError:
            raise ImportError("to_arviz needs the 'arviz' package: pip install astrobayes[viz]") from None
        kept = self.chain[self._kept_steps]  # (draw, walker, ndim)
        posterior = {name: kept[:, :, i].T for i, name in enumerate(self.names)}
        stats = {"lp": self.log_prob[self._kept_steps].T}
        return arviz.from_dict(posterior=posterior, sample_stats=stats,
                               attrs={"units": [un.to_string() for un in self.units], **self.meta})


# --------------------------------------------------------------------- helpers
def _describe_points(theta: np.ndarray, names: list[str], limit: int = 3) -> str:
    rows = [", ".join(f"{n}={v:.6g}" for n, v in zip(names, point)) for point in theta[:limit]]
    more = f" (and {len(theta) - limit} more)" if len(theta) > limit else ""
    return "; ".join(f"({r})" for r in rows) + more


def _batched_log_prob(log_prob_fn: Callable, names: list[str], batch_size: int | None) -> Callable:
    """Wrap the user's function: numpy (m, ndim) → float64 tensor batches under no_grad → numpy (m,)."""

    def evaluate(coords: np.ndarray) -> np.ndarray:
        coords = np.asarray(coords, dtype=np.float64)
        step = len(coords) if batch_size is None else batch_size
        pieces = []
        with torch.no_grad():
            for start in range(0, len(coords), step):
                theta = torch.from_numpy(np.ascontiguousarray(coords[start:start + step]))
                value = log_prob_fn(theta)
                value = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else \
                    np.asarray(value, dtype=np.float64)
                if value.shape != (len(theta),):
                    raise ValueError(f"log_prob_fn must return one log-probability per row, shape ({len(theta)},), "
                                     f"for input of shape {tuple(theta.shape)}; got shape {value.shape}")
                pieces.append(value)
        log_prob = np.concatenate(pieces)
        bad = np.isnan(log_prob) | (log_prob == np.inf)
        if bad.any():
            raise ValueError(f"log_prob_fn returned NaN or +inf at {int(bad.sum())} point(s): "
                             f"{_describe_points(coords[bad], names)}; return -inf for impossible parameters")
        return log_prob

    return evaluate


def _initial_from_prior(prior: JointPrior, evaluate: Callable, n_walkers: int, rng: np.random.Generator):
    found = []
    n_found = 0
    for _ in range(_MAX_INIT_ROUNDS):
        draws = prior.sample(n_walkers, seed=int(rng.integers(2**63))).numpy()
        keep = draws[np.isfinite(evaluate(draws))]
        found.append(keep)
        n_found += len(keep)
        if n_found >= n_walkers:
            return np.concatenate(found)[:n_walkers]
    raise RuntimeError(f"only {n_found} of {_MAX_INIT_ROUNDS * n_walkers} prior draws had a finite log-probability, "
                       f"fewer than the {n_walkers} walkers needed; check that log_prob_fn is finite inside the "
                       "prior's support, or pass starting positions as an (n_walkers, ndim) array")


def _initial_from_array(initial, evaluate: Callable, n_walkers: int | None, names: list[str]) -> np.ndarray:
    if isinstance(initial, torch.Tensor):
        initial = initial.detach().cpu().numpy()
    initial = np.array(initial, dtype=np.float64)
    if initial.ndim != 2:
        raise ValueError(f"prior_or_initial must be a prior or an (n_walkers, ndim) array, got shape {initial.shape}")
    if n_walkers is not None and n_walkers != len(initial):
        raise ValueError(f"n_walkers={n_walkers} but prior_or_initial has {len(initial)} rows")
    if not np.isfinite(initial).all():
        raise ValueError("prior_or_initial has NaN or inf starting positions")
    log_prob = evaluate(initial)
    if not np.isfinite(log_prob).all():
        bad = ~np.isfinite(log_prob)
        raise ValueError(f"prior_or_initial: log_prob_fn is -inf at {int(bad.sum())} starting position(s): "
                         f"{_describe_points(initial[bad], names)}")
    return initial


def _choose_burn_in_thin(tau: np.ndarray, n_steps: int) -> tuple[int, int]:
    if not np.isfinite(tau).all():
        return n_steps // 2, 1
    burn_in = math.ceil(2 * float(np.max(tau)))
    thin = max(1, math.floor(0.5 * float(np.min(tau))))
    # keep at least half the chain: a too-short run has already been warned about
    return min(burn_in, n_steps // 2), thin


# --------------------------------------------------------------------- the glue
def run_emcee(
    log_prob_fn: Callable[[torch.Tensor], torch.Tensor],
    prior_or_initial,
    *,
    n_walkers: int | None = None,
    n_steps: int = 2000,
    seed: int | None = 0,
    progress: bool | None = None,
    names: list[str] | None = None,
    units: list | None = None,
    batch_size: int | None = None,
) -> MCMCResult:
    """Sample a log-posterior with emcee's affine-invariant ensemble sampler.

    Parameters
    ----------
    log_prob_fn : callable
        The log-*posterior* (prior included, emcee's convention): takes a
        float64 CPU tensor of shape (m, ndim) and returns m log-probabilities
        (tensor or array). m is at most ``n_walkers`` (emcee moves half the
        ensemble at a time) or ``batch_size``. It runs under
        ``torch.no_grad()``; cast/move the tensor inside if your model is
        float32 or on a GPU. Return ``-inf`` for impossible parameters; NaN is
        an error.
    prior_or_initial : JointPrior, one-parameter prior, or array (n_walkers, ndim)
        A prior is only used to start the walkers (draws with finite
        log-probability) and to name the parameters; an array gives the
        starting positions, which must all have finite log-probability.
    n_walkers : int, optional
        Default ``max(2 ndim + 2, 32)``, or the rows of the initial array.
    n_steps : int
        Steps per walker. Aim for at least 50 τ; a shorter run warns.
    seed : int or None
        Seeds ``np.random.default_rng``, which draws the starting walkers and
        seeds emcee's own (legacy ``RandomState``) generator: same seed, same chain.
    progress : bool or None
        tqdm progress bar; None shows it only when stderr is a terminal.
    names, units : list, optional
        Parameter names and units; default from the prior, else
        ``theta_<i>`` and dimensionless.
    batch_size : int, optional
        Largest number of rows per ``log_prob_fn`` call (to bound memory).

    Returns
    -------
    MCMCResult

    Examples
    --------
    >>> from astrobayes.inference.priors import BoxUniform
    >>> prior = BoxUniform([-5.0, -5.0], [5.0, 5.0], names=["a", "b"])
    >>> def log_posterior(theta):
    ...     return prior.log_prob(theta) - 0.5 * (theta**2).sum(dim=1)
    >>> result = run_emcee(log_posterior, prior, n_steps=3000, seed=1)
    >>> result.samples.shape[1], bool(abs(result.samples.mean()) < 0.1)
    (2, True)
    >>> result.summary()["name"].tolist()
    ['a', 'b']
    """
    from astrobayes.estimators.training import show_progress

    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be callable, got {type(log_prob_fn).__name__}")
    for arg, value, minimum in (("n_steps", n_steps, 1), ("n_walkers", n_walkers, 2), ("batch_size", batch_size, 1)):
        if value is None and arg != "n_steps":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")

    if isinstance(prior_or_initial, _ParameterPrior):
        prior_or_initial = JointPrior([prior_or_initial])
    prior = prior_or_initial if isinstance(prior_or_initial, JointPrior) else None
    if prior is not None:
        ndim = prior.ndim
    else:
        shape = np.shape(prior_or_initial)
        if len(shape) != 2:
            raise ValueError(f"prior_or_initial must be a prior or an (n_walkers, ndim) array, got shape {shape}")
        ndim = shape[1]
    names = list(names) if names is not None else (prior.names if prior else [f"theta_{i}" for i in range(ndim)])
    if len(names) != ndim or len(set(names)) != ndim:
        raise ValueError(f"names must be {ndim} distinct strings, got {names}")
    if units is None:
        units = prior.units if prior else [None] * ndim
    if len(units) != ndim:
        raise ValueError(f"units must have {ndim} entries, got {len(units)}")
    units = [u.dimensionless_unscaled if un is None else u.Unit(un) for un in units]

    rng = np.random.default_rng(seed)
    evaluate = _batched_log_prob(log_prob_fn, names, batch_size)
    if prior is not None:
        n_walkers = n_walkers or max(2 * ndim + 2, 32)
        initial = _initial_from_prior(prior, evaluate, n_walkers, rng)
    else:
        initial = _initial_from_array(prior_or_initial, evaluate, n_walkers, names)
        n_walkers = len(initial)
    if n_walkers < 2 * ndim:
        raise ValueError(f"n_walkers must be at least 2 * ndim = {2 * ndim} for emcee's stretch move, got {n_walkers}")

    sampler = emcee.EnsembleSampler(n_walkers, ndim, evaluate, vectorize=True)
    # emcee 3.1 keeps a legacy RandomState; seed it from our Generator so one seed fixes the whole run
    state = emcee.State(initial, random_state=np.random.RandomState(int(rng.integers(2**32))).get_state())
    start = time.perf_counter()
    sampler.run_mcmc(state, n_steps, progress=show_progress(progress))
    seconds = time.perf_counter() - start

    tau = np.asarray(sampler.get_autocorr_time(tol=0), dtype=float)
    if not np.isfinite(tau).all():
        warnings.warn("the autocorrelation time could not be estimated (a walker never moved?); "
                      f"burn-in set to half the chain ({n_steps // 2} steps)", RuntimeWarning, stacklevel=2)
    elif n_steps < MIN_TAU_MULTIPLE * tau.max():
        worst = names[int(np.argmax(tau))]
        warnings.warn(f"the chain is only {n_steps} steps = {n_steps / tau.max():.1f} τ (τ = {tau.max():.1f} steps "
                      f"for {worst!r}); at least {MIN_TAU_MULTIPLE} τ = {math.ceil(MIN_TAU_MULTIPLE * tau.max())} "
                      "steps are needed to trust τ, the burn-in and the error bars: increase n_steps",
                      RuntimeWarning, stacklevel=2)
    burn_in, thin = _choose_burn_in_thin(tau, n_steps)
    meta = {"sampler": f"emcee {emcee.__version__} EnsembleSampler (stretch move)", "seed": seed,
            "n_walkers": n_walkers, "n_steps": n_steps}
    return MCMCResult(
        chain=sampler.get_chain(), log_prob=sampler.get_log_prob(),
        samples=sampler.get_chain(discard=burn_in, thin=thin, flat=True),
        names=names, units=units, acceptance_fraction=np.asarray(sampler.acceptance_fraction),
        autocorr_time=tau, burn_in=burn_in, thin=thin, seconds=seconds, meta=meta)
