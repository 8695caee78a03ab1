"""Pictures of clusters: projected phase space, predicted against true masses, posteriors on the mass grid."""
from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import QTable

__all__ = ["plot_mass_posteriors", "plot_mass_predictions", "plot_phase_space"]


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax.figure, ax


def plot_phase_space(members: QTable, cluster_ids, *, truth: QTable | None = None, ncols: int = 3):
    """Projected phase space (R_proj, v_los) of a few clusters; interlopers in grey when ``is_member`` is known.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(3, seed=0)
    >>> fig = plot_phase_space(members, [0, 1, 2], truth=truth)
    """
    import matplotlib.pyplot as plt

    cluster_ids = list(np.atleast_1d(cluster_ids))
    if not cluster_ids:
        raise ValueError("cluster_ids must name at least one cluster")
    ncols = min(ncols, len(cluster_ids))
    nrows = -(-len(cluster_ids) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False, sharey=True,
                             constrained_layout=True)
    ids = np.asarray(members["cluster_id"])
    for ax, cluster in zip(axes.flat, cluster_ids):
        rows = members[ids == cluster]
        if len(rows) == 0:
            raise ValueError(f"no members with cluster_id {cluster!r}")
        radius = rows["R_proj"].to_value(u.Mpc)
        velocity = rows["v_los"].to_value(u.km / u.s)
        member = np.asarray(rows["is_member"]) if "is_member" in rows.colnames else np.ones(len(rows), bool)
        ax.scatter(radius[member], velocity[member], s=8, color="C0", label="members")
        if (~member).any():
            ax.scatter(radius[~member], velocity[~member], s=8, color="0.6", marker="x", label="interlopers")
        title = f"cluster {cluster}: {len(rows)} galaxies"
        if truth is not None:
            mass = float(np.asarray(truth["log_mass"])[np.asarray(truth["cluster_id"]) == cluster][0])
            title += f"\nlog10 M = {mass:.2f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(r"$R_{\rm proj}$ [Mpc]")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"$v_{\rm los}$ [km/s]")
    for ax in list(axes.flat)[len(cluster_ids):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    return fig


def plot_mass_predictions(true_log_mass, predictions: dict, *, ax=None, bins=np.arange(13.5, 15.51, 0.125)):
    """Predicted against true log₁₀M for several estimators: running median and 16–84 % band of each.

    ``predictions`` maps a label to an array of predicted log₁₀M (NaN where none).

    Examples
    --------
    >>> truth = np.random.default_rng(0).uniform(13.5, 15.5, 500)
    >>> fig = plot_mass_predictions(truth, {"perfect": truth, "compressed": 14.5 + 0.5 * (truth - 14.5)})
    """
    fig, ax = _axes(ax, (5.5, 4.5))
    truth = np.asarray(true_log_mass, dtype=float)
    centres = 0.5 * (bins[1:] + bins[:-1])
    for i, (label, predicted) in enumerate(predictions.items()):
        predicted = np.asarray(predicted, dtype=float)
        stats = np.full((len(centres), 3), np.nan)
        for j, (low, high) in enumerate(zip(bins[:-1], bins[1:])):
            sel = (truth >= low) & (truth < high) & np.isfinite(predicted)
            if sel.sum() >= 5:
                stats[j] = np.percentile(predicted[sel], [16, 50, 84])
        ax.plot(centres, stats[:, 1], color=f"C{i}", label=label)
        ax.fill_between(centres, stats[:, 0], stats[:, 2], color=f"C{i}", alpha=0.2)
    ax.plot(bins[[0, -1]], bins[[0, -1]], "k--", lw=0.8, label="1:1")
    ax.set(xlabel=r"true $\log_{10}(M_{200c}/M_\odot)$", ylabel=r"predicted $\log_{10}(M_{200c}/M_\odot)$")
    ax.legend(fontsize=8)
    return fig


def plot_mass_posteriors(grid, log_posteriors: dict, *, truth=None, ax=None):
    """Posterior densities of one cluster's log₁₀M on the grid, one curve per label; the truth as a line.

    Examples
    --------
    >>> grid = np.linspace(13.5, 15.5, 201)
    >>> fig = plot_mass_posteriors(grid, {"q": -0.5 * ((grid - 14.2) / 0.1) ** 2 - np.log(0.1 * np.sqrt(2 * np.pi))},
    ...                            truth=14.25)
    """
    fig, ax = _axes(ax, (5.0, 3.5))
    for label, log_post in log_posteriors.items():
        ax.plot(grid, np.exp(np.asarray(log_post, dtype=float)), label=label)
    if truth is not None:
        ax.axvline(truth, color="k", ls=":", label="truth")
    ax.set(xlabel=r"$\log_{10}(M_{200c}/M_\odot)$", ylabel="posterior density")
    ax.legend(fontsize=8)
    return fig
