"""Task definitions and reference posteriors for ``sbi_tasks.py``.

Two tasks of the simulation-based inference benchmark of Lueckmann et al.
(2021, "Benchmarking Simulation-Based Inference", AISTATS, PMLR 130, 343;
the ``sbibm`` package), written from the paper's definitions:

* ``two_moons`` (2 parameters, 2 data): prior U(-1, 1)², a ~ U(-π/2, π/2),
  r ~ N(0.1, 0.01²), p = (r cos a + 0.25, r sin a) and
  x = p + (−|θ₁ + θ₂| / √2, (−θ₁ + θ₂) / √2).
* ``slcp`` (5 parameters, 8 data; "simple likelihood, complex posterior",
  Papamakarios et al. 2019): prior U(-3, 3)⁵, four i.i.d. 2-D Gaussian draws
  with mean (θ₁, θ₂), standard deviations s₁ = θ₃², s₂ = θ₄², correlation
  ρ = tanh(θ₅), flattened to x = (x₁₁, x₁₂, x₂₁, ..., x₄₂). As in sbibm, 10⁻⁶
  is added to the diagonal of the covariance so that it stays positive definite.

sbibm ships fixed observations; we cannot download them, so observations are
made the same way sbibm made them: θ_true drawn from the prior with a fixed
seed and x_obs simulated from it (see :func:`observations`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from astrobayes.inference import BoxUniform, run_emcee

__all__ = [
    "TASKS",
    "observations",
    "prior",
    "reference_posterior",
    "simulate",
    "slcp_log_likelihood",
    "slcp_reference",
    "two_moons_mean_map",
    "two_moons_reference",
]

TASKS = ("two_moons", "slcp")
_BOUNDS = {"two_moons": (-1.0, 1.0, 2), "slcp": (-3.0, 3.0, 5)}
SLCP_EPS = 1e-6  # sbibm's diagonal jitter
TWO_MOONS_R_MEAN, TWO_MOONS_R_STD = 0.1, 0.01


def prior(task: str):
    """The task's BoxUniform prior.

    Example
    -------
    >>> prior("slcp").ndim
    5
    """
    if task not in _BOUNDS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    low, high, dim = _BOUNDS[task]
    return BoxUniform([low] * dim, [high] * dim)


# ------------------------------------------------------------------ simulators
def two_moons_mean_map(theta: np.ndarray) -> np.ndarray:
    """The deterministic part of the two_moons simulator, (−|θ₁+θ₂|/√2, (−θ₁+θ₂)/√2)."""
    theta = np.atleast_2d(theta)
    return np.stack([-np.abs(theta[:, 0] + theta[:, 1]) / math.sqrt(2),
                     (-theta[:, 0] + theta[:, 1]) / math.sqrt(2)], axis=1)


def _moon_offsets(n: int, rng: np.random.Generator) -> np.ndarray:
    """p = (r cos a + 0.25, r sin a) with a ~ U(-π/2, π/2), r ~ N(0.1, 0.01²)."""
    a = rng.uniform(-math.pi / 2, math.pi / 2, size=n)
    r = rng.normal(TWO_MOONS_R_MEAN, TWO_MOONS_R_STD, size=n)
    return np.stack([r * np.cos(a) + 0.25, r * np.sin(a)], axis=1)


def _slcp_moments(theta: np.ndarray):
    """Mean (n, 2) and covariance (n, 2, 2) of one SLCP draw."""
    s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])
    cov = np.empty((len(theta), 2, 2))
    cov[:, 0, 0] = s1 ** 2 + SLCP_EPS
    cov[:, 1, 1] = s2 ** 2 + SLCP_EPS
    cov[:, 0, 1] = cov[:, 1, 0] = rho * s1 * s2
    return theta[:, :2], cov


def simulate(task: str, theta, rng: np.random.Generator) -> np.ndarray:
    """Simulate x for each row of θ (float64 numpy).

    Example
    -------
    >>> simulate("two_moons", np.zeros((3, 2)), np.random.default_rng(0)).shape
    (3, 2)
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    if task == "two_moons":
        return _moon_offsets(len(theta), rng) + two_moons_mean_map(theta)
    if task == "slcp":
        mean, cov = _slcp_moments(theta)
        chol = np.linalg.cholesky(cov)  # (n, 2, 2)
        z = rng.normal(size=(len(theta), 4, 2))
        draws = mean[:, None, :] + np.einsum("nij,nkj->nki", chol, z)
        return draws.reshape(len(theta), 8)
    raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")


def observations(task: str, n: int, seed: int = 1_000_000):
    """sbibm-style fixed observations: θ_true ~ prior (seeded), x_obs ~ simulator(θ_true).

    Observation k uses seed ``seed + k`` for both draws (sbibm's seeds start at
    10⁶ too, but its files were made with pyro's generator, so the values differ).
    Returns (theta_true (n, d), x_obs (n, k)).

    Example
    -------
    >>> theta_true, x_obs = observations("slcp", 2)
    >>> theta_true.shape, x_obs.shape
    ((2, 5), (2, 8))
    """
    thetas, xs = [], []
    for k in range(n):
        rng = np.random.default_rng(seed + k)
        theta = prior(task).sample(1, seed=seed + k).numpy()
        thetas.append(theta[0])
        xs.append(simulate(task, theta, rng)[0])
    return np.array(thetas), np.array(xs)


# ------------------------------------------------------------------ references
def two_moons_reference(x_obs, n: int, seed: int = 0) -> np.ndarray:
    """Exact posterior draws for two_moons by inverting the simulator.

    For fixed θ, x − g(θ) = p with g the mean map, and on each side of the
    line θ₁ + θ₂ = 0 the map θ → g(θ) is linear with |det| = 1. Hence
    p(θ | x) ∝ 1[θ in box] · f_p(x − g(θ)), f_p the density of p. Drawing
    p ~ f_p (a, r as in the simulator), setting u = x − p (which must have
    u₁ ≤ 0), picking the branch θ₁ + θ₂ = ±√2 |u₁| with probability ½ each
    (both have density f_p) and θ₂ − θ₁ = √2 u₂, then rejecting θ outside the
    prior box, gives exact draws.

    Example
    -------
    >>> two_moons_reference(np.array([0.0, 0.0]), 5, seed=0).shape
    (5, 2)
    """
    x_obs = np.asarray(x_obs, dtype=np.float64).reshape(2)
    rng = np.random.default_rng(seed)
    kept, total = [], 0
    for _ in range(1000):
        m = 4 * n
        u = x_obs - _moon_offsets(m, rng)
        sign = np.where(rng.random(m) < 0.5, 1.0, -1.0)
        total_sum = sign * math.sqrt(2) * np.abs(u[:, 0])
        difference = math.sqrt(2) * u[:, 1]
        theta = np.stack([(total_sum - difference) / 2, (total_sum + difference) / 2], axis=1)
        ok = (u[:, 0] <= 0) & (np.abs(theta) <= 1).all(axis=1)
        kept.append(theta[ok])
        total += int(ok.sum())
        if total >= n:
            return np.concatenate(kept)[:n]
    raise RuntimeError(f"x_obs={x_obs} is (almost) impossible under the two_moons prior")


def slcp_log_likelihood(theta: torch.Tensor, x_obs) -> torch.Tensor:
    """log p(x_obs | θ) of SLCP for each row of θ (float64 torch), four bivariate normals.

    Example
    -------
    >>> float(slcp_log_likelihood(torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]]), np.zeros(8))[0]) < 0
    True
    """
    theta = torch.as_tensor(theta, dtype=torch.float64)
    x = torch.as_tensor(np.asarray(x_obs, dtype=np.float64).reshape(4, 2))
    s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, torch.tanh(theta[:, 4])
    v11, v22, v12 = s1 ** 2 + SLCP_EPS, s2 ** 2 + SLCP_EPS, rho * s1 * s2
    det = v11 * v22 - v12 ** 2
    d1 = x[None, :, 0] - theta[:, None, 0]  # (m, 4)
    d2 = x[None, :, 1] - theta[:, None, 1]
    # quadratic form with the explicit 2x2 inverse [[v22, -v12], [-v12, v11]] / det
    quad = (v22[:, None] * d1 ** 2 - 2 * v12[:, None] * d1 * d2 + v11[:, None] * d2 ** 2) / det[:, None]
    return -0.5 * quad.sum(1) - 4 * (math.log(2 * math.pi) + 0.5 * torch.log(det))


def slcp_reference(x_obs, n: int, seed: int = 0, n_walkers: int = 64, n_steps: int = 12_000) -> np.ndarray:
    """Reference SLCP posterior draws from a long emcee run on the exact likelihood.

    The likelihood depends on θ₃ and θ₄ only through θ₃² and θ₄², and the
    prior is symmetric, so the posterior has (up to) four mirror-image modes
    (±θ₃, ±θ₄). An ensemble sampler cannot cross between them reliably, so
    we sample the *folded* posterior (θ₃, θ₄ ≥ 0, where it has one mode per
    remaining structure) and then symmetrise explicitly: each draw gets
    independent random signs on θ₃ and θ₄, which is exact because the
    posterior is invariant under both flips. ``n`` draws are picked at random
    from the thinned chain (the chain must hold at least n).
    """
    folded = BoxUniform([-3.0, -3.0, 0.0, 0.0, -3.0], [3.0, 3.0, 3.0, 3.0, 3.0])

    def log_posterior(theta):
        inside = folded.support_check(theta)
        safe = torch.where(inside[:, None], theta, torch.ones_like(theta))
        return torch.where(inside, slcp_log_likelihood(safe, x_obs), torch.tensor(-math.inf, dtype=torch.float64))

    result = run_emcee(log_posterior, folded, n_walkers=n_walkers, n_steps=n_steps, seed=seed, progress=False)
    samples = result.samples
    rng = np.random.default_rng(seed)
    if len(samples) < n:
        raise RuntimeError(f"the thinned chain has {len(samples)} draws, fewer than {n}: raise n_steps")
    draws = samples[rng.choice(len(samples), size=n, replace=False)].copy()
    draws[:, 2:4] *= np.where(rng.random((n, 2)) < 0.5, 1.0, -1.0)
    return draws


def reference_posterior(task: str, x_obs, n: int, seed: int = 0) -> np.ndarray:
    """Reference posterior draws (n, d): exact for two_moons, emcee for slcp.

    Example
    -------
    >>> reference_posterior("two_moons", np.array([0.1, -0.1]), 100).shape
    (100, 2)
    """
    if task == "two_moons":
        return two_moons_reference(x_obs, n, seed)
    if task == "slcp":
        return slcp_reference(x_obs, n, seed)
    raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
