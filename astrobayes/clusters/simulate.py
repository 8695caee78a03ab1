"""Mock galaxy-cluster member catalogs with known masses.

:func:`simulate_clusters` is the simulator that every network in
:mod:`astrobayes.clusters` is trained and tested on when no simulation catalog
(such as the MultiDark mocks of Ho et al. 2019) is given. Each cluster is made
in five steps, all seeded and all with their parameters exposed:

1. a mass log₁₀(M200c/M_sun) from a :class:`~astrobayes.clusters.halos.MassFunction`
   (or given by the caller);
2. a number of spectroscopic members, Poisson with mean
   ``members_at_pivot · (M/M_pivot)^members_slope``, and independently an optical
   richness λ from a :class:`~astrobayes.clusters.halos.RichnessMassRelation`;
3. member positions from an NFW profile (Duffy et al. 2008 concentration, with
   log-normal scatter) truncated at ``truncation · R200c``, projected along the line
   of sight;
4. line-of-sight velocities from Gaussian radial and tangential components with a
   constant orbit anisotropy β = 1 − σ_t²/σ_r², normalised so that the
   one-dimensional dispersion is the Evrard et al. (2008) σ(M) times a velocity
   bias and a log-normal scatter (the dispersion does not vary with radius: a
   simplification of a Jeans solution);
5. interlopers — fore- and background galaxies uniform in projected area and in
   velocity, their mean number a fixed ratio of the expected members (so the
   contamination does not change with mass; in real catalogs it is worse for
   poor clusters) — and a cylinder selection R_proj ≤ ``aperture``,
   |v_los| ≤ ``v_cut`` like that of Ho et al. (2019); our defaults are 1.6 Mpc
   and 2500 km/s.

Velocities are relative to the cluster's true mean; the features recentre them
on the members' own biweight location (statistics) or median (images and sets),
as one must for real data.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import QTable
from scipy.special import lambertw

from astrobayes.clusters.halos import (MassFunction, RichnessMassRelation, concentration_duffy08,
                                       r200c, velocity_dispersion_evrard08)

__all__ = ["DEFAULT_APERTURE", "DEFAULT_V_CUT", "simulate_clusters", "sample_nfw_radii"]

#: default cylinder: projected radius and line-of-sight velocity cut
DEFAULT_APERTURE = 1.6 * u.Mpc
DEFAULT_V_CUT = 2500.0 * u.km / u.s


def _nfw_enclosed(x):
    return np.log1p(x) - x / (1 + x)


def sample_nfw_radii(x_max, rng: np.random.Generator) -> np.ndarray:
    """3-D radii in units of the scale radius r_s, one per entry of ``x_max``, from NFW profiles truncated there.

    Inverts the enclosed mass m(x) = ln(1+x) − x/(1+x) exactly: with p = u·m(x_max),
    1 + x = −1/W₀(−e^(−1−p)), W₀ the principal branch of the Lambert W function.
    For members out to t·R200c of a halo of concentration c, x_max = t·c.

    Examples
    --------
    >>> x = sample_nfw_radii(np.full(10000, 8.0), np.random.default_rng(1))
    >>> bool((x > 0).all() and (x <= 8.0).all())
    True
    """
    x_max = np.asarray(x_max, dtype=float)
    if not (np.isfinite(x_max).all() and (x_max > 0).all()):
        raise ValueError("x_max must be finite and positive")
    p = rng.random(x_max.shape) * _nfw_enclosed(x_max)
    w = lambertw(-np.exp(-1.0 - p), 0).real
    return np.minimum(-1.0 / w - 1.0, x_max)


def _quantity(value, unit, name: str) -> float:
    if isinstance(value, u.Quantity):
        if not value.unit.is_equivalent(unit):
            raise ValueError(f"{name} must be in units of {unit.physical_type} (e.g. {unit}), got {value.unit}")
        value = value.to_value(unit)
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in {unit} or a Quantity, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return value


def _log_masses(n_clusters, log_mass, mass_function: MassFunction, rng) -> np.ndarray:
    if log_mass is not None:
        masses = np.atleast_1d(np.asarray(log_mass, dtype=float))
        if masses.ndim != 1 or not np.isfinite(masses).all():
            raise ValueError("log_mass must be a 1-D array of finite log10(M200c/M_sun) values")
        if (masses < 10).any() or (masses > 17).any():
            raise ValueError("log_mass must be log10(M200c/M_sun), between 10 and 17; got values outside")
        if n_clusters is not None and n_clusters != masses.size:
            raise ValueError(f"n_clusters={n_clusters} disagrees with the {masses.size} masses in log_mass")
        return masses
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    return mass_function.sample(int(n_clusters), rng)


def simulate_clusters(n_clusters: int | None = None, *, log_mass=None, mass_function: MassFunction | None = None,
                      richness: RichnessMassRelation | None = None, members_at_pivot: float = 40.0,
                      members_slope: float = 0.7, pivot_log_mass: float = 14.5, truncation: float = 2.0,
                      concentration_scatter: float = 0.1, velocity_bias: float = 1.0,
                      velocity_scatter: float = 0.04, anisotropy: float = 0.25, interloper_ratio: float = 0.25,
                      aperture=DEFAULT_APERTURE, v_cut=DEFAULT_V_CUT, velocity_error=0.0, h: float = 0.7,
                      seed: int | None = None) -> tuple[QTable, QTable]:
    """Simulate clusters and their observed (cylinder-selected) member galaxies.

    Parameters
    ----------
    n_clusters : int
        Number of clusters, with masses drawn from ``mass_function``; or give ``log_mass``.
    log_mass : array, optional
        log₁₀(M200c/M_sun) of each cluster, instead of drawing them.
    mass_function : MassFunction
        Default: the Schechter form on 10^13.5–10^15.5 M_sun.
    richness : RichnessMassRelation
        The optical richness λ given the mass (default ln λ = ln 30 + ln(M/10^14.5 M_sun), scatter 0.25).
    members_at_pivot, members_slope, pivot_log_mass : float
        Mean number of spectroscopic members inside ``truncation · R200c`` (before the
        cylinder cut) at the pivot mass, and its power-law slope with mass.
    truncation : float
        Members are placed out to this many R200c.
    concentration_scatter : float
        Log-normal scatter of c₂₀₀ at fixed mass, in dex.
    velocity_bias, velocity_scatter : float
        σ_galaxies = velocity_bias · σ_Evrard(M) · exp(N(0, velocity_scatter²)).
    anisotropy : float
        Orbit anisotropy β = 1 − σ_t²/σ_r² (0 isotropic, → 1 radial); must be < 1.
    interloper_ratio : float
        Mean number of interlopers per expected member (Poisson); they are uniform
        in projected area within the aperture and in velocity within ±v_cut.
    aperture, v_cut : Quantity
        The cylinder (default 1.6 Mpc, physical, and 2500 km/s).
    velocity_error : Quantity or float
        Gaussian redshift-measurement error added to each velocity (km/s for a float).
    h : float
        H₀ / (100 km/s/Mpc), used by R200c, the concentration and σ(M).
    seed : int, optional

    Returns
    -------
    members : QTable
        One row per observed galaxy: ``cluster_id``, ``galaxy_id``, ``R_proj`` [Mpc],
        ``v_los`` [km/s], and the truth ``is_member`` (False for interlopers).
    clusters : QTable
        One row per cluster with the truth: ``cluster_id``, ``log_mass``, ``richness`` (λ),
        ``n_members``/``n_interlopers`` (observed, after the cylinder cut),
        ``sigma_v`` [km/s] (the dispersion the members were drawn with), ``r200c`` [Mpc],
        ``concentration``. ``meta["simulation"]`` records every parameter.

    Examples
    --------
    >>> members, clusters = simulate_clusters(3, seed=1)
    >>> len(clusters), members.colnames
    (3, ['cluster_id', 'galaxy_id', 'R_proj', 'v_los', 'is_member'])
    >>> bool((members["R_proj"] <= 1.6 * u.Mpc).all())
    True
    """
    rng = np.random.default_rng(seed)
    mass_function = MassFunction() if mass_function is None else mass_function
    richness = RichnessMassRelation() if richness is None else richness
    if not isinstance(mass_function, MassFunction):
        raise TypeError(f"mass_function must be a MassFunction, got {type(mass_function).__name__}")
    if not isinstance(richness, RichnessMassRelation):
        raise TypeError(f"richness must be a RichnessMassRelation, got {type(richness).__name__}")
    aperture_mpc = _quantity(aperture, u.Mpc, "aperture")
    v_cut_kms = _quantity(v_cut, u.km / u.s, "v_cut")
    error_kms = _quantity(velocity_error, u.km / u.s, "velocity_error")
    if aperture_mpc <= 0 or v_cut_kms <= 0:
        raise ValueError("aperture and v_cut must be positive")
    anisotropy = float(anisotropy)
    if not anisotropy < 1:
        raise ValueError(f"anisotropy β must be < 1, got {anisotropy}")
    for name, value in (("members_at_pivot", members_at_pivot), ("truncation", truncation), ("h", h),
                        ("velocity_bias", velocity_bias)):
        if not float(value) > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    for name, value in (("concentration_scatter", concentration_scatter), ("velocity_scatter", velocity_scatter),
                        ("interloper_ratio", interloper_ratio)):
        if not float(value) >= 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")

    masses = _log_masses(n_clusters, log_mass, mass_function, rng)
    n = masses.size
    lam = richness.sample(masses, rng)
    expected = members_at_pivot * 10.0 ** (members_slope * (masses - pivot_log_mass))
    n_true = rng.poisson(expected)
    n_int = rng.poisson(interloper_ratio * expected)

    radius = r200c(masses, h=h).to_value(u.Mpc)
    conc = concentration_duffy08(masses, h=h) * 10.0 ** (concentration_scatter * rng.standard_normal(n))
    sigma = (velocity_bias * velocity_dispersion_evrard08(masses, h=h).to_value(u.km / u.s)
             * np.exp(velocity_scatter * rng.standard_normal(n)))

    # members: NFW radius, isotropic direction, projection; v_los from (v_r, v_t) with anisotropy β
    owner = np.repeat(np.arange(n), n_true)
    r = sample_nfw_radii(truncation * conc[owner], rng) * (radius / conc)[owner]
    mu = rng.uniform(-1.0, 1.0, owner.size)                       # cos(angle to the line of sight)
    r_proj = r * np.sqrt(1.0 - mu**2)
    sigma_r2 = 3.0 * sigma[owner] ** 2 / (3.0 - 2.0 * anisotropy)
    sigma_los = np.sqrt(sigma_r2 * (mu**2 + (1.0 - anisotropy) * (1.0 - mu**2)))
    v_member = sigma_los * rng.standard_normal(owner.size)

    owner_int = np.repeat(np.arange(n), n_int)
    r_int = aperture_mpc * np.sqrt(rng.random(owner_int.size))
    v_int = rng.uniform(-v_cut_kms, v_cut_kms, owner_int.size)

    cluster = np.concatenate([owner, owner_int])
    r_all = np.concatenate([r_proj, r_int])
    v_all = np.concatenate([v_member, v_int]) + error_kms * rng.standard_normal(cluster.size)
    is_member = np.concatenate([np.ones(owner.size, bool), np.zeros(owner_int.size, bool)])
    keep = (r_all <= aperture_mpc) & (np.abs(v_all) <= v_cut_kms)
    order = np.lexsort((~is_member[keep], cluster[keep]))  # grouped by cluster, members first
    cluster, r_all, v_all, is_member = (a[keep][order] for a in (cluster, r_all, v_all, is_member))

    members = QTable({"cluster_id": cluster.astype(np.int64), "galaxy_id": np.arange(cluster.size, dtype=np.int64),
                      "R_proj": r_all * u.Mpc, "v_los": v_all * u.km / u.s, "is_member": is_member})
    observed_members = np.bincount(cluster[is_member], minlength=n)
    observed_interlopers = np.bincount(cluster[~is_member], minlength=n)
    clusters = QTable({"cluster_id": np.arange(n, dtype=np.int64), "log_mass": masses, "richness": lam,
                       "n_members": observed_members, "n_interlopers": observed_interlopers,
                       "sigma_v": sigma * u.km / u.s, "r200c": radius * u.Mpc, "concentration": conc})
    clusters["log_mass"].description = "log10(M200c / M_sun), the truth"
    parameters = {"mass_function": mass_function.to_dict() if log_mass is None else "given",
                  "richness": richness.to_dict(), "members_at_pivot": members_at_pivot,
                  "members_slope": members_slope, "pivot_log_mass": pivot_log_mass, "truncation": truncation,
                  "concentration_scatter": concentration_scatter, "velocity_bias": velocity_bias,
                  "velocity_scatter": velocity_scatter, "anisotropy": anisotropy,
                  "interloper_ratio": interloper_ratio, "aperture_Mpc": aperture_mpc, "v_cut_km_s": v_cut_kms,
                  "velocity_error_km_s": error_kms, "h": h, "seed": seed}
    members.meta["simulation"] = clusters.meta["simulation"] = parameters
    return members, clusters
