"""Importance sampling with an NPE posterior as the proposal: exact posteriors at the cost of likelihood calls.

An amortized posterior q(θ | x) is fast but only as good as its training; when
the likelihood p(x | θ) can be evaluated (a renderer, an emulator), q is an
excellent importance proposal: weights w = p(x | θ) π(θ) / q(θ | x) turn its
draws into draws from the exact posterior, and the effective sample size
ESS = (Σw)² / Σw² says how well q covered it (Dax et al. 2023, PRL 130,
171403, "neural importance sampling").

The proposal is a *defensive* mixture (Hesterberg 1995, Technometrics 37,
185), q_mix = (1 − ε) q(θ | x) + ε N(μ, c² Σ), with μ and Σ the mean and
covariance of the network's draws: a flow that is too narrow, or slightly
off, leaves the Gaussian's heavier coverage to catch the posterior's tails,
and no weight can exceed p/(ε N). Draws are split deterministically between
the two components and weighted by the mixture density (Owen & Zhou 2000,
JASA 95, 135), which keeps the estimator unbiased. Both components are
densities on all of ℝᵈ; draws outside the prior's support get zero weight, so
no truncation constant is needed.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ImportanceResult", "importance_sample"]


@dataclass
class ImportanceResult:
    """Weighted draws from one observation's posterior.

    Attributes
    ----------
    draws : numpy.ndarray (K, d)
        Proposal draws.
    log_weights : numpy.ndarray (K,)
        Self-normalised log weights (logsumexp = 0); −inf outside the support.
    ess : float
        Effective sample size (Σw)² / Σw²; intervals from the weights carry
        Monte Carlo error ~ 1/√ess.
    log_evidence : float
        log of the mean unnormalised weight (of the last round): log p(x) when
        the target is the normalised likelihood × prior.
    rounds : int
        Proposal rounds run (see :func:`importance_sample`).
    """

    draws: np.ndarray
    log_weights: np.ndarray
    ess: float
    log_evidence: float
    rounds: int = 1

    def resample(self, n: int, seed: int | None = 0) -> np.ndarray:
        """``n`` draws (n, d) picked with probability ∝ weight (with replacement: duplicates when ess < n)."""
        rng = np.random.default_rng(seed)
        return self.draws[rng.choice(len(self.draws), size=n, p=np.exp(self.log_weights))]

    def quantile(self, q) -> np.ndarray:
        """Weighted quantiles per parameter: shape (len(q), d) for a sequence q in [0, 1]."""
        q = np.atleast_1d(np.asarray(q, dtype=float))
        weights = np.exp(self.log_weights)
        kept = weights > 0  # draws outside the support carry no weight and must not anchor the interpolation
        draws, weights = self.draws[kept], weights[kept]
        out = np.empty((len(q), self.draws.shape[1]))
        for j in range(self.draws.shape[1]):
            order = np.argsort(draws[:, j])
            cumulative = np.cumsum(weights[order])
            # midpoint rule: a draw's quantile is the weight below it plus half its own
            position = cumulative - 0.5 * weights[order]
            out[:, j] = np.interp(q, position, draws[order, j])
        return out


def _gaussian_log_pdf(theta: np.ndarray, mean: np.ndarray, cholesky: np.ndarray) -> np.ndarray:
    standard = np.linalg.solve(cholesky, (theta - mean).T).T
    log_det = np.sum(np.log(np.diag(cholesky)))
    return -0.5 * np.sum(standard ** 2, axis=1) - log_det - 0.5 * theta.shape[1] * math.log(2 * math.pi)


def _weighted_moments(draws: np.ndarray, log_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    weights = np.exp(log_weights - np.logaddexp.reduce(log_weights))
    mean = weights @ draws
    centred = draws - mean
    return mean, (centred * weights[:, None]).T @ centred


class _Proposal:
    """(1 − ε) · first + ε · second, two of {network, Gaussian}, with deterministic draw counts."""

    def __init__(self, posterior, x_obs, plain, gaussian, defensive: float, network_first: bool):
        self.posterior, self.x_obs, self.plain = posterior, x_obs, plain
        self.mean, self.cholesky = gaussian
        self.share_network = 1 - defensive if network_first else defensive

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        n_net = min(n - 1, max(1, int(round(self.share_network * n))))
        self.share_network = n_net / n  # the deterministic-mixture weights use the split actually drawn
        net = np.asarray(self.posterior.estimator.sample(n_net, self.plain, seed=int(rng.integers(2**31))),
                         dtype=np.float64).reshape(n_net, -1)
        gauss = self.mean + rng.standard_normal((n - n_net, len(self.mean))) @ self.cholesky.T
        return np.concatenate([net, gauss])

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        log_net = self.posterior.log_prob(theta, self.x_obs)  # the untruncated network density, as drawn from
        return np.logaddexp(math.log(self.share_network) + log_net,
                            math.log1p(-self.share_network) + _gaussian_log_pdf(theta, self.mean, self.cholesky))


def _laplace(log_target, start: np.ndarray, steps: int = 40) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Mode, inverse negative Hessian and log_target at the mode, by damped Newton steps from ``start``."""
    theta = torch.as_tensor(start, dtype=torch.float64)

    def value(t):
        return log_target(t[None])[0]

    try:
        current = float(value(theta))
        for _ in range(steps):
            gradient = torch.autograd.functional.jacobian(value, theta)
            hessian = torch.autograd.functional.hessian(value, theta)
            eigenvalues, vectors = torch.linalg.eigh(-0.5 * (hessian + hessian.T))
            if not torch.isfinite(eigenvalues).all():
                return None
            # saddle-free Newton (Dauphin et al. 2014): curvature magnitudes, so that directions of the wrong
            # sign far from the mode are climbed, not descended
            floor = eigenvalues.abs().max() * 1e-8
            step = vectors @ ((vectors.T @ gradient) / torch.clamp(eigenvalues.abs(), min=floor))
            for scale in (1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.003):
                trial = theta + scale * step
                new = float(value(trial))
                if new > current:
                    break
            else:
                break
            converged = new - current < 1e-6
            theta, current = trial, new
            if converged:
                break
        hessian = torch.autograd.functional.hessian(value, theta)
        variances, axes = torch.linalg.eigh(torch.linalg.inv(-0.5 * (hessian + hessian.T)))
        if not torch.isfinite(variances).all() or (variances <= 0).any():
            return None
        # the quadratic must describe the target: one standard deviation along each principal axis should
        # cost about ½ nat (a kink or a float32-noisy Hessian gives absurd widths; then moments are used);
        # a step that leaves the support (−inf) is fine, the prior box truncates the Gaussian there
        offsets = torch.sqrt(variances)[:, None] * axes.T
        with torch.no_grad():
            drops = current - log_target(torch.cat([theta + offsets, theta - offsets]))
        if not torch.all((drops > 0.05) & ((drops < 5.0) | torch.isinf(drops))):
            return None
        covariance = (axes * variances) @ axes.T
    except RuntimeError:  # log_target is not differentiable
        return None
    return theta.detach().numpy(), covariance.detach().numpy(), current


def _gaussian(mean: np.ndarray, covariance: np.ndarray, inflate: float):
    d = len(mean)
    covariance = covariance * inflate ** 2
    return mean, np.linalg.cholesky(covariance + 1e-12 * np.trace(covariance) / d * np.eye(d))


def importance_sample(posterior, x_obs, log_target, n_proposals: int = 4000, *, defensive: float = 0.1,
                      inflate: float = 2.0, seed: int | None = 0, min_ess: float = 50.0,
                      max_rounds: int = 3, laplace: bool = True) -> ImportanceResult:
    """Reweight an NPE posterior's draws for one observation to the exact posterior.

    Round 1 draws from (1 − ε) q(θ | x) + ε N(μ, c² Σ) (μ, Σ from the
    network's draws). When its effective sample size is below ``min_ess`` —
    typically a bright object whose posterior is far narrower than the
    network can resolve, so few of its draws land inside it — the next round
    draws from (1 − ε) N(μ', c'² Σ') + ε q(θ | x) with c' = √c: with
    ``laplace=True`` (and a log_target differentiable in torch) N(μ', Σ') is
    the Laplace approximation at the mode found by Newton steps from the
    best-weighted draw, otherwise the weighted mean and covariance of the
    previous round's draws (shrunk towards the last proposal's covariance by
    1/ESS, so a round with a handful of effective draws cannot collapse the
    next); the Laplace fit starts from the three best-weighted draws and keeps
    the highest mode. And so on for at most
    ``max_rounds`` rounds (adaptive importance sampling; Cappé et al. 2004,
    JCGS 13, 907). Only the last round's draws are returned: conditional on
    its proposal they are an ordinary importance sample (the choice to stop
    is made on that round's own ESS, a small selection effect). From round 2
    on the network is only the ε share, so weights are bounded by p/(ε q)
    only where the network has mass; the ESS is the check.

    Parameters
    ----------
    posterior : Posterior
        Trained NPE posterior (its network is the proposal; its prior the support).
    x_obs : array-like
        One observation, in the form ``posterior.sample`` takes.
    log_target : callable
        log p(x_obs | θ) + log π(θ) up to a constant, for an (m, d) float64
        tensor, returning (m,); −inf outside the support.
    n_proposals : int
        Proposal draws K per round; the cost is K calls of ``log_target``
        (batched) per round.
    defensive : float in (0, 1)
        ε, the share of draws from the component that is not the main one.
    inflate : float
        c, the factor on the network draws' standard deviations for the Gaussian.
    min_ess : float
        Target effective sample size: another round is run below it, and a
        warning is given when the last round is still below it.
    max_rounds : int
        At most this many rounds (1: plain importance sampling with the network).
    laplace : bool
        Adapt with a Laplace approximation (needs gradients of log_target);
        falls back to weighted moments when it fails.

    Returns
    -------
    ImportanceResult
        With ``rounds``, the number of rounds run.

    Examples
    --------
    >>> result = importance_sample(posterior, x, log_target, n_proposals=4000)  # doctest: +SKIP
    >>> lo, hi = result.quantile([0.16, 0.84])                                  # doctest: +SKIP
    """
    if isinstance(n_proposals, bool) or not isinstance(n_proposals, int) or n_proposals < 10:
        raise ValueError(f"n_proposals must be an integer ≥ 10, got {n_proposals!r}")
    if not 0.0 < defensive < 1.0:
        raise ValueError(f"defensive must lie in (0, 1), got {defensive!r}")
    if not inflate >= 1.0:
        raise ValueError(f"inflate must be ≥ 1, got {inflate!r}")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
    inputs, single = posterior._observations(x_obs)
    if not single:
        raise ValueError("importance_sample takes one observation; loop over a catalogue")
    plain = posterior._plain(inputs)
    rng = np.random.default_rng(seed)
    pilot = np.asarray(posterior.estimator.sample(4 * len(posterior.prior.names) ** 2 + 200, plain,
                                                  seed=int(rng.integers(2**31))), dtype=np.float64)
    pilot = pilot.reshape(-1, pilot.shape[-1])
    proposal = _Proposal(posterior, x_obs, plain,
                         _gaussian(pilot.mean(axis=0), np.atleast_2d(np.cov(pilot, rowvar=False)), inflate),
                         defensive, network_first=True)
    for round_ in range(1, max_rounds + 1):
        draws = proposal.draw(n_proposals, rng)
        log_w = np.full(len(draws), -np.inf)
        inside = np.asarray(posterior.prior.support_check(draws), dtype=bool)
        if inside.any():
            with torch.no_grad():
                log_p = np.asarray(log_target(torch.as_tensor(draws[inside], dtype=torch.float64)),
                                   dtype=np.float64)
            if np.isnan(log_p).any():
                raise ValueError(f"log_target returned NaN for {int(np.isnan(log_p).sum())} of {int(inside.sum())} "
                                 "draws inside the support; it must return finite values or -inf")
            log_w[inside] = log_p - proposal.log_prob(draws[inside])
        finite = np.isfinite(log_w)
        if not finite.any():
            raise ValueError("every proposal draw has zero posterior density: the network's proposal misses the "
                             "likelihood entirely (is x_obs from the set-up the posterior was trained for?)")
        total = np.logaddexp.reduce(log_w[finite])
        normalised = log_w - total
        ess = float(math.exp(-np.logaddexp.reduce(2 * normalised[finite])))
        if ess >= min_ess or round_ == max_rounds:
            break
        mean, covariance = _weighted_moments(draws[finite], normalised[finite])
        # a handful of effective draws gives a degenerate covariance: shrink towards the last proposal's
        covariance = covariance + (proposal.cholesky @ proposal.cholesky.T) / max(ess, 1.0)
        if laplace:
            modes = [fit for start in draws[np.argsort(normalised)[::-1][:3]]
                     if (fit := _laplace(log_target, start)) is not None]
            if modes:
                mean, covariance, _ = max(modes, key=lambda fit: fit[2])
        proposal = _Proposal(posterior, x_obs, plain, _gaussian(mean, covariance, math.sqrt(inflate)), defensive,
                             network_first=False)
    if ess < min_ess:
        warnings.warn(f"importance sampling kept an effective sample size of only {ess:.1f} of {n_proposals} "
                      f"draws after {round_} round(s): the NPE proposal covers this posterior poorly; raise "
                      "n_proposals or max_rounds", UserWarning, stacklevel=2)
    return ImportanceResult(draws, normalised, ess, float(total - math.log(n_proposals)), round_)
