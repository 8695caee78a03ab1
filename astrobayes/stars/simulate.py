"""Mock stellar fields with a known Stefan–Boltzmann constant and population.

Masses come from an IMF, metallicities from a normal distribution in [Fe/H]
(:class:`~astrobayes.stars.population.StellarPopulation`), radii and
effective temperatures from the exact ZAMS model (:mod:`astrobayes.stars.zams`,
the "expensive simulator"), and luminosities from L = σ · 4πR² · T⁴ with the σ
of the mock universe — by default the physical one, so that the inference
can be checked against 5.670374419e-8 W m⁻² K⁻⁴.
"""
from __future__ import annotations

import astropy.constants as const
import astropy.units as u
import numpy as np
from astropy.table import QTable

from astrobayes.stars.emulator import DEFAULT_FEH_RANGE, DEFAULT_LOG_MASS_RANGE
from astrobayes.stars.population import StellarPopulation
from astrobayes.stars.zams import zams_log_radius_teff

__all__ = ["SIGMA_UNIT", "default_population", "luminosity_from_sigma", "simulate_field"]

#: the unit in which σ is reported everywhere in astrobayes.stars
SIGMA_UNIT = u.W / u.m**2 / u.K**4


def default_population(imf_slope: float = 2.35, feh_mean: float = -0.2, feh_width: float = 0.2, *,
                       log_mass_range=DEFAULT_LOG_MASS_RANGE, feh_range=DEFAULT_FEH_RANGE) -> StellarPopulation:
    """A power-law IMF and a normal [Fe/H], both normalised on a stellar-map domain (by default the default one)."""
    return StellarPopulation("powerlaw", imf_slope=imf_slope, m_min=10 ** log_mass_range[0],
                             m_max=10 ** log_mass_range[1], feh_mean=feh_mean, feh_width=feh_width,
                             feh_range=feh_range)


def luminosity_from_sigma(sigma, radius, teff) -> u.Quantity:
    """L = σ · 4π R² · T⁴ in L_sun (σ in W m⁻² K⁻⁴ or a Quantity, R in R_sun or a Quantity, T in K)."""
    sigma = u.Quantity(sigma, SIGMA_UNIT)
    radius = u.Quantity(radius, u.R_sun)
    teff = u.Quantity(teff, u.K)
    return (sigma * 4 * np.pi * radius**2 * teff**4).to(u.L_sun)


def _fraction(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction between 0 and 1 (e.g. 0.05 for 5 %), got {value!r}")
    return float(value)


def simulate_field(n_stars: int, *, sigma=const.sigma_sb, population: StellarPopulation | None = None,
                   luminosity_error: float = 0.05, teff_error: float | None = None,
                   radius_error: float | None = None, seed: int | None = None) -> QTable:
    """Simulate a field of main-sequence stars with measured luminosities.

    Parameters
    ----------
    n_stars : int
    sigma : Quantity or float
        The Stefan–Boltzmann constant of the mock universe (W m⁻² K⁻⁴ for a float).
    population : StellarPopulation, optional
        Default :func:`default_population` (Salpeter slope on 0.5–20 M_sun,
        [Fe/H] ~ N(−0.2, 0.2²) truncated to −1…+0.15).
    luminosity_error, teff_error, radius_error : float or None
        Fractional measurement errors r; None leaves that observable out
        (only the luminosity is required). Errors are log-normal, ln(observed)
        = ln(true) + r·ε with ε ~ N(0, 1), as a magnitude error is, and the
        reported ``*_err`` is r × observed (so ``*_err``/value is r again; the
        reported error does not leak the true value).
    seed : int, optional

    Returns
    -------
    QTable
        ``luminosity``, ``luminosity_err`` [L_sun] (and ``teff``/``teff_err`` [K],
        ``radius``/``radius_err`` [R_sun] when asked for), the truths
        ``true_mass`` [M_sun], ``true_feh``, ``true_radius``, ``true_teff``,
        ``true_luminosity``, and in ``meta`` the σ and population used.

    Examples
    --------
    >>> field = simulate_field(100, seed=1)
    >>> field["luminosity"].unit, len(field)
    (Unit("solLum"), 100)
    >>> field.meta["sigma"]  # astropy's CODATA value, by default
    <Quantity 5.67037442e-08 W / (m2 K4)>
    """
    if isinstance(n_stars, bool) or not isinstance(n_stars, (int, np.integer)) or n_stars < 1:
        raise ValueError(f"n_stars must be a positive integer, got {n_stars!r}")
    sigma = u.Quantity(sigma, SIGMA_UNIT)
    if not (sigma.size == 1 and np.isfinite(sigma.value) and sigma.value > 0):
        raise ValueError(f"sigma must be one positive number, got {sigma!r}")
    errors = {name: _fraction(value, name) for name, value in
              (("luminosity_error", luminosity_error), ("teff_error", teff_error), ("radius_error", radius_error))}
    if errors["luminosity_error"] is None:
        raise ValueError("luminosity_error is required: the model is about measured luminosities")
    population = population if population is not None else default_population()
    rng = np.random.default_rng(seed)
    stars = population.sample(int(n_stars), rng=rng)
    log_radius, log_teff = zams_log_radius_teff(stars["log_mass"], stars["feh"])
    radius, teff = 10**log_radius * u.R_sun, 10**log_teff * u.K
    luminosity = luminosity_from_sigma(sigma, radius, teff)

    table = QTable()
    table["star_id"] = np.arange(n_stars)
    for name, truth in (("luminosity", luminosity), ("teff", teff), ("radius", radius)):
        fraction = errors[f"{name}_error"]
        if fraction is None:
            continue
        # log-normal: ln(observed) = ln(truth) + fraction·ε, reported with err = fraction × observed, so that
        # err/observed gives back the error of ln(observed) (a magnitude-like error, 1.0857 × fraction in mag)
        observed = truth * np.exp(fraction * rng.normal(size=n_stars))
        table[name], table[f"{name}_err"] = observed, fraction * observed
    table["true_mass"] = 10 ** stars["log_mass"] * u.M_sun
    table["true_feh"] = stars["feh"]
    table["true_radius"], table["true_teff"], table["true_luminosity"] = radius, teff, luminosity
    table.meta.update(sigma=sigma, population=population.fixed | {"imf": population.imf,
                                                                   "feh_range": population.feh_range},
                      seed=seed, errors=errors)
    return table
