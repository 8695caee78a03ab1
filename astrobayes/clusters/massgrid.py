"""Densities of log₁₀M tabulated on an even grid: trapezoid weights, normalisation, CDF and quantiles.

Everything in :mod:`astrobayes.clusters` that integrates over a cluster's mass
does it here, on one dimension, where the trapezoid rule is exact enough and
has no Monte Carlo noise.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_grid", "grid_cdf", "grid_quantiles", "normalise", "trapezoid_weights"]


def check_grid(grid, name: str = "grid") -> np.ndarray:
    """An evenly spaced, increasing 1-D grid of at least 3 finite points, as float64 (else a ValueError)."""
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size < 3 or not np.isfinite(grid).all():
        raise ValueError(f"{name} must be a 1-D array of at least 3 finite log10 masses")
    step = np.diff(grid)
    if not (step > 0).all() or not np.allclose(step, step[0], rtol=1e-6, atol=0):
        raise ValueError(f"{name} must be evenly spaced and increasing")
    return grid


def trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """Weights w with ∫ f ≈ Σ w f on an even grid (half weights at the ends).

    Examples
    --------
    >>> trapezoid_weights(np.array([0.0, 0.5, 1.0]))
    array([0.25, 0.5 , 0.25])
    """
    weights = np.full(grid.size, grid[1] - grid[0])
    weights[[0, -1]] *= 0.5
    return weights


def normalise(log_density: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Log densities (n, n_grid) shifted so that each row integrates to one on the grid.

    Examples
    --------
    >>> grid = np.linspace(0, 1, 11)
    >>> out = normalise(np.zeros((1, 11)), grid)
    >>> round(float((np.exp(out) @ trapezoid_weights(grid))[0]), 12)
    1.0
    """
    log_density = np.atleast_2d(np.asarray(log_density, dtype=float))
    peak = np.max(log_density, axis=1, keepdims=True)
    if not np.isfinite(peak).all():
        raise ValueError("a density is zero (or NaN) everywhere on the grid; is the grid outside the prior's range?")
    log_norm = peak + np.log(np.exp(log_density - peak) @ trapezoid_weights(grid))[:, None]
    return log_density - log_norm


def _cdf(log_post: np.ndarray, grid: np.ndarray) -> np.ndarray:
    density = np.exp(np.atleast_2d(log_post))
    steps = 0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(grid)
    cdf = np.concatenate([np.zeros((len(density), 1)), np.cumsum(steps, axis=1)], axis=1)
    return cdf / cdf[:, -1:]


def grid_quantiles(log_post: np.ndarray, grid: np.ndarray, q) -> np.ndarray:
    """Quantiles (n_clusters, len(q)) of posteriors tabulated on a grid (linear interpolation of the CDF).

    Examples
    --------
    >>> grid = np.linspace(-5, 5, 2001)
    >>> log_post = -0.5 * grid[None, :] ** 2 - 0.5 * np.log(2 * np.pi)
    >>> np.round(grid_quantiles(log_post, grid, [0.16, 0.84]), 2)
    array([[-0.99,  0.99]])
    """
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if not ((q >= 0) & (q <= 1)).all():
        raise ValueError(f"quantiles must lie in [0, 1], got {q}")
    cdf = _cdf(log_post, check_grid(grid))
    return np.stack([np.interp(q, row, grid) for row in cdf])


def grid_cdf(log_post: np.ndarray, grid: np.ndarray, values) -> np.ndarray:
    """The posterior CDF at ``values`` (one per cluster): the rank statistic of coverage tests.

    A central interval of credibility c contains the value when (1 − c)/2 < CDF < (1 + c)/2.

    Examples
    --------
    >>> grid = np.linspace(-5, 5, 2001)
    >>> log_post = np.repeat(-0.5 * grid[None, :] ** 2, 2, axis=0)
    >>> np.round(grid_cdf(log_post, grid, [0.0, 1.0]), 3)
    array([0.5  , 0.841])
    """
    cdf = _cdf(log_post, check_grid(grid))
    values = np.asarray(values, dtype=float)
    if values.shape != (len(cdf),):
        raise ValueError(f"values must hold one number per posterior ({len(cdf)}), got shape {values.shape}")
    return np.array([np.interp(v, grid, row) for v, row in zip(values, cdf)])
