"""TARP: joint coverage of distance balls around random reference points.

Lemos et al. 2023, "Sampling-Based Accuracy Testing of Posterior Estimators
for General Inference", ICML.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import _array, _positive_int, _truth_and_draws
from .coverage import plot_coverage

__all__ = ["TARPResult", "plot_tarp", "tarp", "tarp_distance"]


class TARPResult(NamedTuple):
    """Expected coverage probability ``ecp`` of TARP balls at credibility levels ``alpha``."""

    alpha: np.ndarray
    ecp: np.ndarray


def tarp(prior_samples, posterior_samples, n_references: int = 1, n_alpha: int = 101, seed: int | None = 0,
         normalize: bool = True) -> TARPResult:
    """Joint calibration by Tests of Accuracy with Random Points (Lemos et al. 2023).

    For each simulation a reference point θ_r is drawn uniformly over the
    parameter box; the credibility of the true θ is the fraction f of
    posterior draws closer to θ_r than θ is. The expected coverage
    ECP(α) = P(f < α) equals α for every α if and only if the posterior is
    exact (their Theorem 3), so ECP tests all parameters jointly.

    Parameters
    ----------
    prior_samples : array-like (N, d)
    posterior_samples : array-like (N, L, d)
    n_references : int
        Reference points per simulation; ECP averages over all N · n_references.
    n_alpha : int
        Points of the α grid on [0, 1].
    seed : int or None
        Seeds the reference points and the jitter that makes the credibility continuous.
    normalize : bool
        Rescale every parameter to [0, 1] with the min and max of
        ``prior_samples`` first, so distances do not depend on units.

    Returns
    -------
    TARPResult
        ``alpha`` (n_alpha,) and ``ecp`` (n_alpha,). Over-confident posteriors
        give an S-shaped curve, under-confident ones the mirror image, and
        biased ones a curve below the diagonal.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(300, 2))
    >>> alpha, ecp = tarp(theta, rng.normal(size=(300, 100, 2)))   # posterior = prior: calibrated
    >>> bool(tarp_distance(alpha, ecp) < 0.15)
    True
    """
    theta, draws = _truth_and_draws(prior_samples, posterior_samples)
    n_references = _positive_int(n_references, "n_references")
    n_alpha = _positive_int(n_alpha, "n_alpha", 2)
    if normalize:
        low, high = theta.min(axis=0), theta.max(axis=0)
        if np.any(high <= low):
            raise ValueError("prior_samples has a parameter with a single value; it cannot be normalised "
                             "(pass normalize=False or drop the fixed parameter)")
        theta, draws = (theta - low) / (high - low), (draws - low) / (high - low)
        box_low, box_high = np.zeros(theta.shape[1]), np.ones(theta.shape[1])
    else:
        box_low, box_high = theta.min(axis=0), theta.max(axis=0)
    rng = np.random.default_rng(seed)
    credibility = []
    for _ in range(n_references):
        reference = rng.uniform(box_low, box_high, size=theta.shape)
        true_distance = np.linalg.norm(theta - reference, axis=-1)
        draw_distance = np.linalg.norm(draws - reference[:, None, :], axis=-1)
        closer = np.sum(draw_distance < true_distance[:, None], axis=1)
        # (count + u) / (L + 1), u ~ U(0, 1), is exactly U(0, 1) for an exact posterior, so ECP(0) = 0,
        # ECP(1) = 1 and no 1/L grid offsets the curve (Lemos et al. use count / L).
        credibility.append((closer + rng.uniform(size=closer.shape)) / (draws.shape[1] + 1))
    credibility = np.concatenate(credibility)
    alpha = np.linspace(0, 1, n_alpha)
    ecp = np.mean(credibility[None, :] < alpha[:, None], axis=1)
    return TARPResult(alpha, ecp)


def tarp_distance(alpha, ecp, kind: str = "max") -> float:
    """Deviation of a TARP curve from the diagonal: ``max`` or ``mean`` of |ECP(α) − α|.

    Examples
    --------
    >>> tarp_distance([0.0, 0.5, 1.0], [0.0, 0.6, 1.0])
    0.09999999999999998
    """
    alpha, ecp = _array(alpha, "alpha", 1), _array(ecp, "ecp", 1)
    if len(alpha) != len(ecp):
        raise ValueError(f"mismatched lengths: alpha has {len(alpha)} rows, ecp has {len(ecp)}")
    if kind not in ("max", "mean"):
        raise ValueError(f"kind must be 'max' or 'mean', got {kind!r}")
    deviation = np.abs(ecp - alpha)
    return float(deviation.max() if kind == "max" else deviation.mean())


def plot_tarp(alpha, ecp, n: int | None = None, ax=None, label: str = "TARP"):
    """Plot ECP against credibility level α, with the binomial 3σ band when ``n`` is given.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_tarp([0.0, 0.5, 1.0], [0.0, 0.55, 1.0], n=100)
    >>> ax.get_ylabel()
    'expected coverage'
    """
    alpha, ecp = _array(alpha, "alpha", 1), _array(ecp, "ecp", 1)
    ax = plot_coverage(alpha, ecp, n, names=[label], ax=ax) if n is not None else _plain_tarp(alpha, ecp, ax, label)
    ax.set_xlabel("credibility level α")
    ax.set_ylabel("expected coverage")
    return ax


def _plain_tarp(alpha, ecp, ax, label):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="0.4", ls="--", lw=1)
    ax.plot(alpha, ecp, label=label)
    ax.legend(frameon=False, loc="upper left")
    return ax
