"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788).

The rank of the true θ among L posterior draws is uniform on 0..L when the
posterior is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from ...core.validation import as_tensor
from ._checks import _axes, _positive_int, _truth_and_draws

__all__ = ["SBCResult", "plot_sbc_ranks", "sbc_ranks", "sbc_uniformity"]


def sbc_ranks(prior_samples, posterior_samples, seed: int | None = 0) -> np.ndarray:
    """Rank of each true parameter among its posterior draws (Talts et al. 2018).

    Parameters
    ----------
    prior_samples : array-like (N, d)
        True parameters θ_i drawn from the prior.
    posterior_samples : array-like (N, L, d)
        L draws from the posterior given data simulated at θ_i. Draws should be
        (close to) independent: thin MCMC chains first, since autocorrelation
        makes the ranks non-uniform even for a correct sampler.
    seed : int or None
        Breaks ties (draws equal to θ_i, e.g. from discrete parameters) at random.

    Returns
    -------
    numpy.ndarray (N, d) of int
        Number of draws below θ_i, in 0..L; uniform if the posterior is exact.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sbc_ranks(rng.normal(size=(5, 2)), rng.normal(size=(5, 99, 2))).shape
    (5, 2)
    """
    theta, draws = _truth_and_draws(prior_samples, posterior_samples)
    below = (draws < theta[:, None, :]).sum(axis=1)
    ties = (draws == theta[:, None, :]).sum(axis=1)
    # A tied draw is below θ with probability 1/2 each way: a uniform extra in 0..ties keeps the ranks uniform.
    extra = np.floor(np.random.default_rng(seed).uniform(size=ties.shape) * (ties + 1)).astype(int)
    return below + extra


@dataclass
class SBCResult:
    """Uniformity tests of SBC ranks, one entry per parameter.

    Attributes
    ----------
    n_draws : int
        Posterior draws per simulation L (ranks lie in 0..L).
    n_bins : int
        Bins of the rank histogram used by the chi-square test.
    chi2, chi2_pvalue : numpy.ndarray (d,)
        Pearson chi-square statistic of the rank histogram and its p-value.
    ks, ks_pvalue : numpy.ndarray (d,)
        Kolmogorov–Smirnov statistic of the (jittered) normalised ranks against U(0, 1).
    """

    n_draws: int
    n_bins: int
    chi2: np.ndarray
    chi2_pvalue: np.ndarray
    ks: np.ndarray
    ks_pvalue: np.ndarray

    def passed(self, alpha: float = 0.01) -> bool:
        """True when no test rejects uniformity at family-wise level ``alpha``.

        Bonferroni over all 2·d tests (chi-square and KS for each parameter):
        each p-value is compared with alpha / (2 d).
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        threshold = alpha / (2 * len(self.chi2))
        return bool(np.all(self.chi2_pvalue > threshold) and np.all(self.ks_pvalue > threshold))

    def as_table(self, names=None):
        """The tests as an astropy Table, one row per parameter."""
        from astropy.table import Table

        names = names if names is not None else [f"theta_{i}" for i in range(len(self.chi2))]
        return Table({"parameter": list(names), "chi2": self.chi2, "chi2_pvalue": self.chi2_pvalue,
                      "ks": self.ks, "ks_pvalue": self.ks_pvalue},
                     meta={"n_draws": self.n_draws, "n_bins": self.n_bins})


def _check_ranks(ranks, n_draws) -> tuple[np.ndarray, int]:
    n_draws = _positive_int(n_draws, "n_draws")
    values = as_tensor(ranks, "ranks", ndim=(1, 2), dtype=torch.long).numpy()
    values = values[:, None] if values.ndim == 1 else values
    if values.min() < 0 or values.max() > n_draws:
        raise ValueError(f"ranks must lie in 0..n_draws={n_draws}, got {values.min()}..{values.max()}")
    return values, n_draws


def _rank_bins(n_sims: int, n_draws: int, n_bins: int | None) -> np.ndarray:
    """Integer bin edges over the L + 1 rank values; about 10 expected counts per bin by default."""
    if n_bins is None:
        # Talts et al.: few enough bins that each expects >= ~10 ranks; 20 at most keeps the test powerful.
        n_bins = int(np.clip(min(n_draws + 1, n_sims // 10), 2, 20))
    n_bins = min(_positive_int(n_bins, "n_bins", 2), n_draws + 1)
    return np.unique(np.round(np.linspace(0, n_draws + 1, n_bins + 1)).astype(int))


def sbc_uniformity(ranks, n_draws: int, n_bins: int | None = None, seed: int | None = 0) -> SBCResult:
    """Test SBC ranks for uniformity on 0..L with a chi-square and a KS test.

    Parameters
    ----------
    ranks : array-like (N, d) of int
        Output of :func:`sbc_ranks`.
    n_draws : int
        Posterior draws per simulation L.
    n_bins : int, optional
        Histogram bins for the chi-square test (default: N // 10 clipped to
        2..20 and to L + 1, so about 10 or more ranks are expected per bin).
        Bins that hold unequal numbers of rank values get their exact expected counts.
    seed : int or None
        The KS test compares (rank + u) / (L + 1), u ~ U(0, 1), with U(0, 1):
        the jitter makes the discrete ranks exactly uniform under the null,
        whereas rank / (L + 1) alone is off by up to 1 / (L + 1) and a large N
        would reject a correct posterior.

    Returns
    -------
    SBCResult

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> ranks = rng.integers(0, 100, size=(500, 2))   # L = 99: ranks 0..99
    >>> sbc_uniformity(ranks, n_draws=99).passed(alpha=0.01)
    True
    """
    values, n_draws = _check_ranks(ranks, n_draws)
    n_sims = len(values)
    edges = _rank_bins(n_sims, n_draws, n_bins)
    expected = n_sims * np.diff(edges) / (n_draws + 1)
    rng = np.random.default_rng(seed)
    chi2, chi2_p, ks, ks_p = [], [], [], []
    for column in values.T:
        observed = np.histogram(column, bins=edges)[0]
        test = stats.chisquare(observed, expected)
        chi2.append(test.statistic)
        chi2_p.append(test.pvalue)
        uniform = (column + rng.uniform(size=n_sims)) / (n_draws + 1)
        test = stats.kstest(uniform, "uniform")
        ks.append(test.statistic)
        ks_p.append(test.pvalue)
    return SBCResult(n_draws, len(edges) - 1, np.array(chi2), np.array(chi2_p), np.array(ks), np.array(ks_p))


def plot_sbc_ranks(ranks, n_draws: int, n_bins: int | None = None, names=None, ax=None) -> np.ndarray:
    """Rank histograms with the 99 % binomial band of a uniform histogram.

    Parameters
    ----------
    ranks : array-like (N, d) of int
    n_draws : int
        Posterior draws per simulation L.
    n_bins : int, optional
        As in :func:`sbc_uniformity`.
    names : sequence of str, optional
        Parameter names for the panel titles.
    ax : matplotlib Axes or sequence of Axes, optional
        One per parameter.

    Returns
    -------
    numpy.ndarray of matplotlib Axes (d,)

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> axes = plot_sbc_ranks(np.random.default_rng(0).integers(0, 100, size=(300, 2)), n_draws=99)
    >>> len(axes)
    2
    """
    values, n_draws = _check_ranks(ranks, n_draws)
    n_sims, n_params = values.shape
    edges = _rank_bins(n_sims, n_draws, n_bins)
    probability = np.diff(edges) / (n_draws + 1)
    # Each bin count is Binomial(N, p_bin) under uniformity; the band holds 99 % of it per bin.
    low, high = stats.binom.ppf(0.005, n_sims, probability), stats.binom.ppf(0.995, n_sims, probability)
    axes = _axes(ax, n_params)
    for i, panel in enumerate(axes):
        panel.fill_between(edges, np.r_[low, low[-1]], np.r_[high, high[-1]], step="post", color="0.85",
                           label="99 % band (uniform)")
        panel.hist(values[:, i], bins=edges, histtype="step", color="C0", lw=1.5, label="ranks")
        panel.set_xlim(edges[0], edges[-1])
        panel.set_xlabel("rank of true value")
        panel.set_title(names[i] if names is not None else f"parameter {i}")
    axes[0].set_ylabel("count")
    axes[0].legend(frameon=False, fontsize="small")
    return axes
