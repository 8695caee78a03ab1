"""Measured stars against the stellar map: residual statistics, a figure, and each star's best main-sequence age.

Given :func:`~astrobayes.stars.predict.predict_stars`'s table for stars with a
measured radius and temperature (DEBCat's eclipsing binaries, say),

* :func:`summarize_residuals` gives the median, the robust scatter
  (1.4826 × MAD) and the fraction above the map of Δlog R and Δlog T_eff;
* :func:`plot_residuals` draws them against mass and [Fe/H];
* :func:`fit_fractional_age` fits, with an evolving map (inputs log_mass, feh,
  tau), each star's fractional main-sequence age τ, and says which stars no τ
  explains: those the model cannot describe at all.
"""
from __future__ import annotations

import math

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from astrobayes import __version__
from astrobayes.stars.predict import _domain, _evaluate, _quantity, predict_stars

__all__ = ["fit_fractional_age", "summarize_residuals", "plot_residuals"]

#: χ² with 2 degrees of freedom exceeded with the probability of a 3σ Gaussian deviation (0.27 %): 11.83
_CHI2_3SIGMA_2DOF = -2.0 * math.log(math.erfc(3.0 / math.sqrt(2.0)))


def fit_fractional_age(stars, stellar_map, *, n_tau: int = 201, model_error: float = 0.0, warn: bool = True,
                       **options) -> QTable:
    """Each star's best-fitting fractional main-sequence age τ under an evolving map, and whether any τ fits.

    For every star inside the map's domain, χ²(τ) = (Δlog R / s_R)² + (Δlog T_eff / s_T)²
    on ``n_tau`` values of τ evenly spaced over [0, 1], with s² the measurement
    error of the logarithm squared plus ``model_error``². A star whose
    smallest χ² exceeds 11.83 — the 2-degree-of-freedom χ² exceeded with the
    probability of a 3σ Gaussian deviation, 0.27 % — is one that *no* main-sequence
    age explains.

    Parameters
    ----------
    stars : Table/QTable
        Measured stars: ``mass``, ``radius``/``radius_err``, ``teff``/``teff_err``
        (and ``feh``, ``log_g`` where known), as from :func:`~astrobayes.stars.debcat.read_debcat`.
    stellar_map : Regressor, DeepEnsemble or DeltaMap
        An evolving map with inputs (log_mass, feh, tau).
    n_tau : int
        τ grid points (201: a step of 0.005).
    model_error : float
        The map's own error in dex, added in quadrature to both measurement
        errors (0: measurement errors only).
    warn : bool
        Passed to :func:`~astrobayes.stars.predict.predict_stars`.
    **options
        Other :func:`~astrobayes.stars.predict.predict_stars` options (``default_feh``, ``log_mass_range``, ...).

    Returns
    -------
    QTable
        :func:`~astrobayes.stars.predict.predict_stars`'s table at each star's best τ (column ``tau``;
        NaN where the star was not predicted), plus ``tau_low`` and ``tau_high``
        (the grid's range with χ² ≤ χ²_min + 1), ``chi2`` (χ²_min) and
        ``explained`` (χ²_min ≤ 11.83; False where there is no prediction).

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import QTable
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> evolving = exact_stellar_delta_map(model="evolving")  # Hurley, Pols & Tout (2000)
    >>> stars = QTable({"mass": [1.0, 1.0] * u.solMass, "feh": [0.0, 0.0], "radius": [1.1, 0.6] * u.solRad,
    ...                 "radius_err": [0.01, 0.01] * u.solRad, "teff": [5700, 5600] * u.K,
    ...                 "teff_err": [60, 60] * u.K})
    >>> fitted = fit_fractional_age(stars, evolving, log_mass_range=(-0.3, 1.3), feh_range=(-1, 0.15))
    >>> fitted["explained"].tolist()  # 0.6 R_sun is far below the 1 M_sun ZAMS (0.89 R_sun)
    [True, False]
    """
    if isinstance(n_tau, bool) or not isinstance(n_tau, (int, np.integer)) or n_tau < 2:
        raise ValueError(f"n_tau must be an integer ≥ 2, got {n_tau!r}")
    if isinstance(model_error, bool) or not isinstance(model_error, (int, float)) or not model_error >= 0:
        raise ValueError(f"model_error must be a number ≥ 0 (dex), got {model_error!r}")
    if not isinstance(stars, Table):
        raise TypeError(f"stars must be a catalogue of measured stars (an astropy Table), got {type(stars).__name__}")
    missing = [name for name in ("radius", "radius_err", "teff", "teff_err") if name not in stars.colnames]
    if missing:
        raise ValueError(f"fit_fractional_age compares measured radii and temperatures: stars lacks {missing}")
    _, inputs, _, _ = _domain(stellar_map, options.get("log_mass_range"), options.get("feh_range"))
    if "tau" not in inputs:
        raise ValueError(f"stellar_map has inputs {inputs}: fit_fractional_age needs an evolving map (with tau)")
    if "tau" in options:
        raise TypeError("fit_fractional_age fits each star's tau: leave out tau= (predict_stars takes a given tau)")
    base = predict_stars(stars, stellar_map, tau=0.0, warn=False, **options)
    usable = np.isfinite(base["radius"].value)
    errors = {}
    for name in ("radius", "teff"):
        unit = u.solRad if name == "radius" else u.K
        value, error = _quantity(stars[name], f"column {name!r}", unit, name), \
            _quantity(stars[f"{name}_err"], f"column '{name}_err'", unit, name)
        bad = np.flatnonzero(usable & ~(error > 0))
        if bad.size:
            raise ValueError(f"column '{name}_err' must be positive where the star is predicted (rows "
                             f"{bad[:10].tolist()})")
        errors[name] = np.hypot(error / (value * math.log(10.0)), model_error)

    grid = np.linspace(0.0, 1.0, int(n_tau))
    n_use = int(usable.sum())
    log_radius, log_teff = _evaluate(stellar_map, {
        "log_mass": np.repeat(np.log10(base["mass"].to_value(u.solMass))[usable, None], n_tau, axis=1),
        "feh": np.repeat(np.asarray(base["feh"])[usable, None], n_tau, axis=1),
        "tau": np.broadcast_to(grid, (n_use, n_tau)).copy()})
    chi2 = (((np.log10(base["measured_radius"].to_value(u.solRad))[usable, None] - log_radius)
             / errors["radius"][usable, None]) ** 2
            + ((np.log10(base["measured_teff"].to_value(u.K))[usable, None] - log_teff)
               / errors["teff"][usable, None]) ** 2)
    best = np.argmin(chi2, axis=1)
    chi2_min = chi2[np.arange(n_use), best]
    near = chi2 <= chi2_min[:, None] + 1.0
    tau_best = np.zeros(len(base))
    tau_best[usable] = grid[best]
    out = predict_stars(stars, stellar_map, tau=tau_best, warn=warn, **options)
    for name, values in (("tau", grid[best]), ("tau_low", np.where(near, grid, np.inf).min(axis=1)),
                         ("tau_high", np.where(near, grid, -np.inf).max(axis=1)), ("chi2", chi2_min)):
        column = np.full(len(base), np.nan)
        column[usable] = values
        out[name] = column
    out["explained"] = np.zeros(len(base), dtype=bool)
    out["explained"][usable] = chi2_min <= _CHI2_3SIGMA_2DOF
    out["tau_low"].info.description = "lowest tau on the grid with chi2 <= chi2_min + 1"
    out["tau_high"].info.description = "highest tau on the grid with chi2 <= chi2_min + 1"
    out["chi2"].info.description = "smallest chi2 of log R and log T_eff over tau (2 degrees of freedom)"
    out["explained"].info.description = f"chi2 <= {_CHI2_3SIGMA_2DOF:.2f}: some tau fits within 3 sigma"
    out.meta.update({"n_tau": int(n_tau), "model_error": float(model_error), "chi2_threshold": _CHI2_3SIGMA_2DOF})
    return out


def _where(where, predictions) -> np.ndarray:
    """The stars selected by ``where`` (one boolean per row), or the table's ``in_domain``."""
    if where is None:
        return np.asarray(predictions["in_domain"], dtype=bool)
    values = np.asarray(where)
    if values.dtype != bool:  # indices or 0/1 would be cast to booleans and select the wrong stars
        raise TypeError(f"where must be booleans, one per star, got dtype {values.dtype}; for row numbers use "
                        "np.isin(np.arange(len(predictions)), rows)")
    if values.shape != (len(predictions),):
        raise ValueError(f"where must be one boolean per star ({len(predictions)}), got shape {values.shape}")
    return values


def summarize_residuals(predictions: QTable, *, where=None) -> QTable:
    """Median, robust scatter and fraction above the map of Δlog R and Δlog T_eff.

    Parameters
    ----------
    predictions : QTable
        From :func:`~astrobayes.stars.predict.predict_stars` on measured stars.
    where : boolean array, optional
        Stars to include; by default those ``in_domain`` (no flag but ``no_feh``).

    Returns
    -------
    QTable
        One row per quantity (``log_radius``, ``log_teff``): ``n_stars``,
        ``median`` and ``robust_scatter`` (1.4826 × median absolute deviation)
        [dex], and ``fraction_above`` (measured above the map).

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import QTable
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> from astrobayes.stars.predict import predict_stars
    >>> stars = QTable({"mass": [1.0, 1.0] * u.solMass, "feh": [0.0, 0.0], "radius": [0.8, 1.0] * u.solRad,
    ...                 "teff": [5000.0, 6000.0] * u.K})
    >>> predictions = predict_stars(stars, exact_stellar_delta_map(), log_mass_range=(-0.3, 1.3),
    ...                             feh_range=(-1.0, 0.15))
    >>> summarize_residuals(predictions)["fraction_above"].tolist()
    [0.5, 0.5]
    """
    if not isinstance(predictions, Table) or "in_domain" not in predictions.colnames:
        raise TypeError("predictions must be the QTable returned by predict_stars")
    where = _where(where, predictions)
    rows = []
    for quantity in ("radius", "teff"):
        column = f"delta_log_{quantity}"
        if column not in predictions.colnames:
            continue
        values = np.asarray(predictions[column].to_value(u.dex))[where]
        values = values[np.isfinite(values)]
        median = float(np.median(values)) if values.size else float("nan")
        scatter = 1.4826 * float(np.median(np.abs(values - median))) if values.size else float("nan")
        rows.append((f"log_{quantity}", values.size, median, scatter,
                     float(np.mean(values > 0)) if values.size else float("nan")))
    if not rows:
        raise ValueError("predictions has no residual columns: predict_stars needs measured 'radius' or 'teff'")
    table = QTable(rows=rows, names=("quantity", "n_stars", "median", "robust_scatter", "fraction_above"))
    table["median"].unit = table["robust_scatter"].unit = u.dex
    table = QTable(table)
    for name, shown in (("median", "+.4f"), ("robust_scatter", ".4f"), ("fraction_above", ".3f")):
        table[name].info.format = shown
    table["median"].info.description = "median of log10(measured) - log10(map)"
    table["robust_scatter"].info.description = "1.4826 x median absolute deviation of the residuals"
    table["fraction_above"].info.description = "fraction of stars whose measured value exceeds the map's"
    table.meta.update({"model": predictions.meta.get("model"), "astrobayes_version": __version__})
    return table


def plot_residuals(predictions, *, where=None):
    """Δlog R and Δlog T_eff against mass and [Fe/H]: a 2×2 figure, one colour per map.

    Parameters
    ----------
    predictions : QTable or dict of str → QTable
        From :func:`~astrobayes.stars.predict.predict_stars`; a dict labels several maps on one figure.
    where : boolean array, optional
        Stars to show (one per row); by default each table's ``in_domain``.
        Open symbols: [Fe/H] assumed (``no_feh``); lines: running medians
        in 8 bins of equal star counts.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import QTable
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> from astrobayes.stars.predict import predict_stars
    >>> stars = QTable({"mass": [1.0, 2.0] * u.solMass, "radius": [1.0, 1.7] * u.solRad,
    ...                 "teff": [5800.0, 9000.0] * u.K})
    >>> predictions = predict_stars(stars, exact_stellar_delta_map(), log_mass_range=(-0.3, 1.3),
    ...                             feh_range=(-1.0, 0.15), warn=False)
    >>> len(plot_residuals(predictions).axes)
    4
    """
    import matplotlib.pyplot as plt

    tables = predictions if isinstance(predictions, dict) else {"map": predictions}
    if not tables:
        raise ValueError("predictions is an empty dict: give predict_stars's table, or a dict label → table")
    figure, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col", sharey="row", layout="constrained")
    for colour, (label, table) in zip(("C0", "C3", "C2", "C1", "C4"), tables.items()):
        if not isinstance(table, Table) or "in_domain" not in table.colnames:
            raise TypeError(f"predictions[{label!r}] must be a QTable returned by predict_stars")
        shown = _where(where, table)
        assumed = np.asarray(table["no_feh"], dtype=bool)
        x_values = {"log10(M / M_sun)": np.log10(table["mass"].to_value(u.solMass)), "[Fe/H]": np.asarray(table["feh"])}
        for row, quantity in enumerate(("radius", "teff")):
            if f"delta_log_{quantity}" not in table.colnames:
                continue
            residual = table[f"delta_log_{quantity}"].to_value(u.dex)
            for column, (xlabel, x) in enumerate(x_values.items()):
                ax = axes[row, column]
                ax.scatter(x[shown & ~assumed], residual[shown & ~assumed], s=12, color=colour,
                           label=f"{label} ([Fe/H] measured)" if row == column == 0 else None)
                ax.scatter(x[shown & assumed], residual[shown & assumed], s=12, facecolors="none", edgecolors=colour,
                           label=f"{label} ([Fe/H] = {table.meta.get('default_feh', 0):g} assumed)"
                           if row == column == 0 else None)
                # running median in bins of equal star counts, so a trend with mass or [Fe/H] shows
                finite = shown & np.isfinite(residual) & np.isfinite(x)
                if finite.sum() >= 16:
                    edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, 9)))
                    which = np.clip(np.digitize(x[finite], edges[1:-1]), 0, len(edges) - 2)
                    centres = [np.median(x[finite][which == k]) for k in range(len(edges) - 1) if np.any(which == k)]
                    medians = [np.median(residual[finite][which == k]) for k in range(len(edges) - 1)
                               if np.any(which == k)]
                    ax.plot(centres, medians, color=colour, lw=2)
                ax.axhline(0.0, color="0.5", lw=1, ls="--")
                ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("Δlog R = log R_measured − log R_map [dex]")
    axes[1, 0].set_ylabel("Δlog T_eff [dex]")
    axes[0, 0].legend(fontsize=7)
    return figure
