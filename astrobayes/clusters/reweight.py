"""Posteriors on a log-mass grid: percentiles, swapping the prior, and :func:`estimate_mass`.

A network trained on clusters drawn from a mass function π_train learns
q(log M | x) ∝ p(x | M) π_train(M). Divided by π_train it is a likelihood of
each cluster's mass, up to a constant; multiplied by another prior π_new it is
the posterior an astronomer would have got by training under π_new — the
"reweight the predictions for a desired prior" step of Lanusse's tutorial on
the Ho et al. (2019) cluster catalog:

    log p_new(log M | x) = log q(log M | x) − log π_train(log M) + log π_new(log M) + const.

This is exact where q is exact; where π_train has few training clusters
(the high-mass tail of a steep mass function) q is poorly learned, and the
ratio π_new/π_train magnifies its errors. :func:`estimate_mass` flags such
clusters (``sparse_training``), and clusters whose network summary is unlike
those of the training mocks (``ood``: ``ood_p_value`` ≤ 0.01).
"""
from __future__ import annotations


import astropy.units as u
import numpy as np
from astropy.table import QTable

from astrobayes import __version__
from astropy.cosmology import FlatLambdaCDM

from astrobayes.clusters.halos import COSMOLOGY, DEFAULT_H, DEFAULT_LOG_MASS_RANGE, MassFunction, describe_cosmology
from astrobayes.clusters.simulate import DEFAULT_APERTURE, DEFAULT_V_CUT
from astrobayes.clusters.massgrid import check_grid, grid_cdf, grid_quantiles, normalise
from astrobayes.clusters.model import ClusterMassModel
from astrobayes.inference.diagnostics.ood import OOD_ALPHA, report_ood

__all__ = ["dynamical_log_likelihoods", "estimate_mass", "log_likelihood_grid", "mass_conventions", "quoting_range",
           "reweight"]

_EDGE = 0.1        # dex: posterior mass this close to the range's ends raises the prior_edge flag
_MIN_TRAINING = 20  # training clusters within ±0.05 dex of the median, below which sparse_training is raised


def reweight(log_post: np.ndarray, grid: np.ndarray, training_prior: MassFunction, prior: MassFunction) -> np.ndarray:
    """Posteriors under ``prior`` from posteriors learned under ``training_prior``, on the same grid.

    Examples
    --------
    >>> grid = np.linspace(13.5, 15.5, 201)
    >>> steep = MassFunction()                      # the training mass function
    >>> log_post = normalise(steep.log_prob(grid)[None, :] - 0.5 * ((grid - 15.0) / 0.1) ** 2, grid)
    >>> flat = reweight(log_post, grid, steep, MassFunction("flat"))
    >>> round(float(grid_quantiles(flat, grid, [0.5])[0, 0]), 3)   # the likelihood's own centre
    15.0
    """
    for name, value in (("training_prior", training_prior), ("prior", prior)):
        if not isinstance(value, MassFunction):
            raise TypeError(f"{name} must be a MassFunction (e.g. MassFunction('flat')), got {type(value).__name__}")
    grid = _checked(log_post, grid)
    _inside(grid, training_prior, "training_prior")
    with np.errstate(divide="ignore"):
        shift = prior.log_prob(grid) - training_prior.log_prob(grid)
    return normalise(log_post + shift[None, :], grid)


def log_likelihood_grid(log_post: np.ndarray, grid: np.ndarray, training_prior: MassFunction) -> np.ndarray:
    """log p(x | log M) + const per cluster: the learned posterior divided by the training prior.

    Normalised on the grid as a function of log M (the constant does not
    matter to a hierarchical model, whose parameters it does not involve).

    Examples
    --------
    >>> grid = np.linspace(13.5, 15.5, 201)
    >>> steep = MassFunction()
    >>> log_post = normalise(steep.log_prob(grid)[None, :] - 0.5 * ((grid - 15.0) / 0.1) ** 2, grid)
    >>> loglike = log_likelihood_grid(log_post, grid, steep)
    >>> round(float(grid[np.argmax(loglike[0])]), 2)
    15.0
    """
    if not isinstance(training_prior, MassFunction):
        raise TypeError(f"training_prior must be a MassFunction, got {type(training_prior).__name__}")
    grid = _checked(log_post, grid)
    _inside(grid, training_prior, "training_prior")
    return normalise(log_post - training_prior.log_prob(grid)[None, :], grid)


def _checked(log_post, grid) -> np.ndarray:
    grid = check_grid(grid)
    if np.ndim(log_post) != 2 or np.shape(log_post)[1] != grid.size:
        raise ValueError(f"log_post must have shape (n_clusters, {grid.size}) to match the grid, got "
                         f"{np.shape(log_post)}")
    return grid


def _inside(grid: np.ndarray, prior: MassFunction, name: str) -> None:
    low, high = prior.log_mass_range
    if grid[0] < low - 1e-9 or grid[-1] > high + 1e-9:
        raise ValueError(f"the grid {grid[0]:.3f}–{grid[-1]:.3f} reaches outside {name}'s range {low}–{high}, "
                         "where the network learned nothing (its prior is zero there)")


def quoting_range(model: ClusterMassModel, log_mass_range=None) -> tuple[float, float]:
    """The log-mass range results are quoted on: ``log_mass_range`` (default 13.5–15.5) within the training range.

    Networks are best trained on a range a little wider than the one quoted,
    so that the hard edges of the prior are applied exactly here rather than
    learned (a mixture of Gaussians cannot make a sharp edge).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(training_prior=MassFunction(log_mass_range=(13.3, 15.7)))
    >>> quoting_range(model), quoting_range(model, (13.0, 15.0))
    ((13.5, 15.5), (13.3, 15.0))
    """
    if log_mass_range is None:
        low, high = DEFAULT_LOG_MASS_RANGE
    else:
        try:
            low, high = (float(v) for v in log_mass_range)
        except (TypeError, ValueError):
            raise ValueError(f"log_mass_range must be two numbers (low, high), got {log_mass_range!r}") from None
    train_low, train_high = model.training_prior.log_mass_range
    low, high = max(low, train_low), min(high, train_high)
    if not low < high:
        raise ValueError(f"log_mass_range={log_mass_range!r} does not overlap the training range "
                         f"{model.training_prior.log_mass_range}")
    return low, high


def _prior(prior, model: ClusterMassModel, quoted: tuple[float, float]) -> MassFunction:
    if isinstance(prior, MassFunction):
        low, high = prior.log_mass_range
        if low >= quoted[1] or high <= quoted[0]:
            raise ValueError(f"the prior's range {prior.log_mass_range} does not overlap the quoted range {quoted}")
        return prior
    if prior == "training":
        return model.training_prior
    if prior == "flat":
        return MassFunction("flat", log_mass_range=quoted)
    raise ValueError(f"prior must be 'training', 'flat' or a MassFunction, got {prior!r}")


def dynamical_log_likelihoods(members: QTable, model: ClusterMassModel, *, log_mass_range=None,
                              n_grid: int = 101) -> tuple[QTable, np.ndarray, np.ndarray]:
    """(features, grid, log p(xᵢ | log₁₀M) on the grid) for the usable clusters of a member catalog.

    The rows of ``features`` are the clusters with enough members (flags == "").
    These are the per-cluster likelihoods :mod:`astrobayes.clusters.hierarchical` combines.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters, train_mass_model
    >>> members, truth = simulate_clusters(300, seed=0)
    >>> model = train_mass_model(members, truth, epochs=1, progress=False)
    >>> features, grid, loglike = dynamical_log_likelihoods(members, model)
    >>> loglike.shape == (len(features), grid.size)
    True
    """
    grid = np.linspace(*quoting_range(model, log_mass_range), n_grid)
    features, usable, log_post = model.posteriors(members, grid)
    return features[usable], grid, log_likelihood_grid(log_post, grid, model.training_prior)


def mass_conventions(model: ClusterMassModel) -> dict:
    """What a mass from ``model`` means: mass definition, h, cosmology, cylinder and interloper rejection.

    The keys go into the ``meta`` of :func:`estimate_mass` (``mass_definition``, ``h``, ``cosmology``,
    ``aperture_Mpc``, ``v_cut_km_s``, ``membership``) and ``description`` is the text put on its
    mass columns. Masses are M200c — the mass inside the radius enclosing 200 times the critical
    density — in M_sun at the model's h (0.7 unless trained otherwise); convert to h⁻¹ M_sun with
    :func:`~astrobayes.clusters.halos.to_h_inverse`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(settings={"h": 0.7, "aperture_Mpc": 1.6, "v_cut_km_s": 2500.0,
    ...                                   "interloper_rejection": "shifting_gapper"})
    >>> mass_conventions(model)["description"]
    'log10(M200c / M_sun), h = 0.7 (H0 = 70 km/s/Mpc), aperture R_proj ≤ 1.6 Mpc, |v_los| ≤ 2500 km/s, interlopers: shifting_gapper'
    """
    settings = getattr(model, "settings", {}) or {}
    h = float(settings.get("h", DEFAULT_H))
    aperture = float(settings.get("aperture_Mpc", DEFAULT_APERTURE.to_value(u.Mpc)))
    v_cut = float(settings.get("v_cut_km_s", DEFAULT_V_CUT.to_value(u.km / u.s)))
    membership = settings.get("interloper_rejection", settings.get("membership", "none"))
    if isinstance(membership, dict):
        membership = membership.get("method", "none")
    cosmology = describe_cosmology(COSMOLOGY if abs(h - COSMOLOGY.h) < 1e-12 else
                                   FlatLambdaCDM(H0=100.0 * h, Om0=COSMOLOGY.Om0, name=f"FlatLambdaCDM, h = {h:g}"))
    description = (f"log10(M200c / M_sun), h = {h:g} (H0 = {100 * h:g} km/s/Mpc), aperture R_proj ≤ {aperture:g} Mpc, "
                   f"|v_los| ≤ {v_cut:g} km/s, interlopers: {membership}")
    return {"mass_definition": "M200c", "mass_unit": "M_sun", "h": h, "cosmology": cosmology, "aperture_Mpc": aperture,
            "v_cut_km_s": v_cut, "membership": str(membership), "description": description}


def estimate_mass(members: QTable, model: ClusterMassModel, *, prior="training", percentiles=(16, 50, 84),
                  log_mass_range=None) -> QTable:
    """Dynamical masses of every cluster in a member catalog: one row per cluster.

    Parameters
    ----------
    members : QTable
        From :func:`~astrobayes.clusters.io.read_member_catalog` (or a simulation).
    model : ClusterMassModel
        From :func:`~astrobayes.clusters.model.train_mass_model` or ``load_mass_model``.
    prior : "training", "flat" or MassFunction
        The prior on log₁₀M the masses are quoted under: the training mass
        function (what the network learned), flat in log₁₀M over the quoted
        range, or any mass function (by reweighting).
    percentiles : three numbers
        Lower, middle and upper percentiles of the posterior to report.
    log_mass_range : (float, float), optional
        The range the posterior is restricted to (default 13.5–15.5, within the
        training range; see :func:`quoting_range`).

    Returns
    -------
    QTable
        ``cluster_id``, ``n_members``, ``sigma_gapper`` [km/s],
        ``log_mass_p16``, ``log_mass_median``, ``log_mass_p84`` (log₁₀ M200c/M_sun,
        named after ``percentiles``; each column's description states the mass
        definition, h, the cylinder and the interloper rejection, e.g.
        "log10(M200c / M_sun), h = 0.7 (H0 = 70 km/s/Mpc), aperture R_proj ≤ 1.6 Mpc,
        |v_los| ≤ 2500 km/s, ..."), ``mass_median`` [M_sun], and ``flags``:
        comma-separated ``too_few_members`` or ``no_velocity_spread`` (no
        estimate; see :func:`~astrobayes.clusters.features.cluster_features`), ``outside_training``
        (features beyond the training set: extrapolation), ``prior_edge`` (more
        than 16 % of the posterior within 0.1 dex of an end of the mass range),
        ``sparse_training`` (fewer than 20 training clusters within ±0.05 dex of
        the median, so the reweighted posterior leans on a tail the network
        hardly saw), ``ood`` (``ood_p_value`` ≤ 0.01). ``ood_p_value``: is the
        network's summary of the cluster like those of its training mocks? (a
        conformal p-value from the same network pass as the posterior, see
        :meth:`~astrobayes.estimators.Estimator.ood_p_value`; small = unlike
        anything it was trained on; NaN without an estimate, or when the model
        has no reference — ``meta["ood_note"]`` says why; ``outside_training``
        is the coarser check of each summary feature against its training range).
        ``meta`` records the model, prior and version, ``ood_alpha`` and
        ``ood_flagged``, and the
        conventions of :func:`mass_conventions`: ``mass_definition`` ("M200c"),
        ``mass_unit``, ``h``, ``cosmology``, ``aperture_Mpc``, ``v_cut_km_s`` and
        ``membership`` (the interloper rejection the model was trained with).
        For papers quoting h⁻¹ M_sun use :func:`~astrobayes.clusters.halos.to_h_inverse`.

    Warns
    -----
    UserWarning
        One line counting the clusters with ``ood_p_value`` ≤ 0.01, when there
        are any (about 1 % of clusters like the mocks are flagged by chance).

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters, train_mass_model
    >>> members, truth = simulate_clusters(400, seed=0)
    >>> model = train_mass_model(members, truth, epochs=2, progress=False)
    >>> masses = estimate_mass(members[members["cluster_id"] < 3], model, prior="flat")
    >>> masses.colnames[:5]
    ['cluster_id', 'n_members', 'sigma_gapper', 'log_mass_p16', 'log_mass_median']
    """
    if not isinstance(model, ClusterMassModel):
        raise TypeError(f"model must be a ClusterMassModel (train_mass_model / load_mass_model), got "
                        f"{type(model).__name__}")
    quoted = quoting_range(model, log_mass_range)
    chosen = _prior(prior, model, quoted)
    try:
        percentiles = tuple(float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ValueError(f"percentiles must be three increasing numbers between 0 and 100, got {percentiles!r:.80}") from None
    if len(percentiles) != 3 or not 0 < percentiles[0] < percentiles[1] < percentiles[2] < 100:
        raise ValueError(f"percentiles must be three increasing numbers between 0 and 100, got {percentiles!r}")
    grid = np.linspace(*quoted, 401)
    features, usable, log_post, ood_p = model.posteriors(members, grid, return_ood=True)
    n = len(features)
    quantiles = np.full((n, 3), np.nan)
    ood_p_value = np.full(n, np.nan)
    flags = [[] if ok else [str(flag)] for ok, flag in zip(usable, features["flags"])]  # why there is no estimate
    rows = np.flatnonzero(usable)
    if rows.size:
        if chosen != model.training_prior:
            log_post = reweight(log_post, grid, model.training_prior, chosen)
        quantiles[rows] = grid_quantiles(log_post, grid, np.array(percentiles) / 100)
        edge = ((grid_cdf(log_post, grid, np.full(rows.size, grid[0] + _EDGE)) > 0.16)
                | (grid_cdf(log_post, grid, np.full(rows.size, grid[-1] - _EDGE)) < 0.84))
        n_train = model.settings.get("n_train", 0)
        expected = n_train * np.exp(model.training_prior.log_prob(quantiles[rows, 1])) * 0.1
        outside = model.outside_training(features)[rows]
        ood_p_value[rows] = ood_p
        for i, row in enumerate(rows):
            flags[row] += [name for name, hit in (("outside_training", outside[i]), ("prior_edge", edge[i]),
                                                  ("sparse_training", expected[i] < _MIN_TRAINING),
                                                  ("ood", ood_p[i] <= OOD_ALPHA)) if hit]
    names = [f"log_mass_p{p:g}" for p in percentiles]
    names[1] = "log_mass_median" if percentiles[1] == 50 else names[1]
    table = QTable({"cluster_id": features["cluster_id"], "n_members": features["n_members"],
                    "sigma_gapper": features["sigma_gapper"]})
    conventions = mass_conventions(model)
    for name, p, column in zip(names, percentiles, quantiles.T):
        table[name] = column
        table[name].info.description = f"{p:g}th percentile of {conventions['description']}"
    table["mass_median"] = 10 ** quantiles[:, 1] * u.M_sun
    # info.description: on a Quantity column a bare .description is a stray attribute that no writer keeps
    table["mass_median"].info.description = ("median M200c [M_sun]"
                                             + conventions["description"][len("log10(M200c / M_sun)"):])
    table["ood_p_value"] = ood_p_value  # its description and meta: report_ood below
    table["flags"] = [",".join(f) for f in flags]
    for name, text in (("cluster_id", "cluster identifier of the member catalog"),
                       ("n_members", "galaxies left after the training cylinder cut and interloper rejection"),
                       ("sigma_gapper", "gapper estimate of the line-of-sight velocity dispersion of those galaxies"),
                       ("flags", "comma-separated reasons for no estimate (too_few_members, no_velocity_spread) or "
                                 "for caution (outside_training, prior_edge, sparse_training, ood: ood_p_value ≤ "
                                 f"{OOD_ALPHA:g})")):
        table[name].info.description = text
    table.meta.update({"astrobayes_version": __version__, "estimator": model.kind, "inputs": model.inputs,
                       "prior": chosen.to_dict(), "training_prior": model.training_prior.to_dict(),
                       "percentiles": list(percentiles), "log_mass_range": list(quoted),
                       **{key: value for key, value in conventions.items() if key != "description"},
                       "n_train": model.settings.get("n_train"), "training_seed": model.settings.get("seed")})
    if chosen == model.training_prior:
        table.meta["prior"]["log_mass_range"] = list(quoted)  # the training prior, truncated to the quoted range
    report_ood(table, ood_p_value, note=model.estimator.ood_note, objects="clusters")
    return table
