"""Posterior predictive checks (Gelman, Meng & Stern 1996)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from ._checks import _array, _axes

__all__ = ["PPCResult", "plot_ppc", "posterior_predictive_check"]


class PPCResult(NamedTuple):
    """One test statistic: its ``observed`` value, the ``replicated`` values and the p-value."""

    observed: float
    replicated: np.ndarray
    p_value: float


def posterior_predictive_check(observed, simulated, statistic: Callable | Mapping[str, Callable],
                               two_sided: bool = False) -> dict[str, PPCResult]:
    """Posterior predictive p-values of test statistics (Gelman, Meng & Stern 1996).

    Parameters
    ----------
    observed : array-like (n_obs, ...)
        The observed data set.
    simulated : array-like (n_rep, n_obs, ...)
        Replicated data sets, each simulated at one posterior draw.
    statistic : callable or dict of name → callable
        T(data) → float, applied to ``observed`` and to each replicate.
    two_sided : bool
        Report 2 · min(P(T_rep ≥ T_obs), P(T_rep ≤ T_obs)) (capped at 1)
        instead of the one-sided P(T_rep ≥ T_obs).

    Returns
    -------
    dict of str → PPCResult
        Keyed by the statistic's name (``"T"`` for a single callable). A
        p-value near 0 (or 1 one-sided) says the model cannot reproduce T.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> checks = posterior_predictive_check(rng.normal(0, 3, size=50), rng.normal(size=(200, 50)),
    ...                                     {"std": np.std})
    >>> checks["std"].p_value
    0.0
    """
    data = _array(observed, "observed", None)
    replicates = _array(simulated, "simulated", None)
    if replicates.ndim != data.ndim + 1 or replicates.shape[1:] != data.shape:
        raise ValueError(f"simulated must have shape (n_rep, {', '.join(map(str, data.shape))}) to match observed, "
                         f"got {replicates.shape}")
    statistics = dict(statistic) if isinstance(statistic, Mapping) else {"T": statistic}
    if not statistics or not all(callable(fn) for fn in statistics.values()):
        raise TypeError("statistic must be a callable or a non-empty dict of name -> callable")
    results = {}
    for name, fn in statistics.items():
        t_obs = float(fn(data))
        t_rep = np.array([float(fn(replicate)) for replicate in replicates])
        if not np.isfinite(t_obs) or not np.all(np.isfinite(t_rep)):
            raise ValueError(f"statistic {name!r} returned NaN or inf")
        upper = float(np.mean(t_rep >= t_obs))
        p_value = min(1.0, 2 * min(upper, float(np.mean(t_rep <= t_obs)))) if two_sided else upper
        results[name] = PPCResult(t_obs, t_rep, p_value)
    return results


def plot_ppc(results: Mapping[str, PPCResult], ax=None) -> np.ndarray:
    """Histogram of each replicated statistic with the observed value marked.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rng = np.random.default_rng(0)
    >>> checks = posterior_predictive_check(rng.normal(size=30), rng.normal(size=(100, 30)), {"mean": np.mean})
    >>> len(plot_ppc(checks))
    1
    """
    if not isinstance(results, Mapping) or not all(isinstance(r, PPCResult) for r in results.values()):
        raise TypeError("results must be the dict returned by posterior_predictive_check")
    axes = _axes(ax, len(results))
    for panel, (name, result) in zip(axes, results.items()):
        panel.hist(result.replicated, bins="auto", color="C0", alpha=0.6, label="replicated")
        panel.axvline(result.observed, color="C3", lw=2, label="observed")
        panel.set_xlabel(name)
        panel.set_title(f"p = {result.p_value:.3f}")
    axes[0].set_ylabel("count")
    axes[0].legend(frameon=False, fontsize="small")
    return axes
