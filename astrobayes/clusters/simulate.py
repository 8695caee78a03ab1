"""Mock galaxy-cluster member catalogs with known masses.

:func:`simulate_clusters` is the simulator that every network in
:mod:`astrobayes.clusters` is trained and tested on when no simulation catalog
(such as the MultiDark mocks of Ho et al. 2019) is given. Each cluster is made
in five steps, all seeded and all with their parameters exposed:

1. a mass log₁₀(M200c/M_sun) from a :class:`~astrobayes.clusters.halos.MassFunction`
   (or given by the caller); by default :data:`TRAINING_MASS_FUNCTION`, flat in
   log₁₀M on 10^13.3–10^15.7 M_sun, so that a cluster as massive as Coma
   (10^15.26 M_sun) is as well represented as a group (the steep Schechter form
   leaves a few clusters in 10⁴ near 10^15.3 M_sun); masses are quoted under any
   mass function by reweighting (:func:`~astrobayes.clusters.reweight.reweight`);
2. how many galaxies of the cluster's field have a redshift — the spectroscopic
   *sampling*, see below — and independently an optical richness λ from a
   :class:`~astrobayes.clusters.halos.RichnessMassRelation`;
3. member positions from an NFW profile (Duffy et al. 2008 concentration, with
   log-normal scatter) truncated at ``truncation · R200c``, projected along the line
   of sight;
4. line-of-sight velocities from Gaussian radial and tangential components with a
   constant orbit anisotropy β = 1 − σ_t²/σ_r², normalised so that the
   one-dimensional dispersion is the Evrard et al. (2008) σ(M) times a velocity
   bias and a log-normal scatter (the dispersion does not vary with radius: a
   simplification of a Jeans solution);
5. interlopers — fore- and background galaxies uniform in projected area and in
   velocity, ``interloper_ratio`` of them per galaxy of the cluster's population
   (by default a ratio drawn for each cluster uniformly on 0–0.5, so that a network
   learns to read the contamination from the velocity distribution rather than
   assume one: with many redshifts the tails show it; the contamination does not
   change with mass on average, while in real catalogs it is worse for poor
   clusters) — and a cylinder selection R_proj ≤ ``aperture``,
   |v_los| ≤ ``v_cut`` like that of Ho et al. (2019); our defaults are 1.6 Mpc
   (physical, h = 0.7) and 2500 km/s.

Spectroscopic sampling
----------------------
How many galaxies of a real cluster have a redshift is set by the survey — its
depth, fibre collisions, how many nights it had — far more than by the cluster:
Coma has ~1,200 redshifts inside 1.6 Mpc because it is the nearest rich cluster,
not because it is ten times as massive as a cluster at z = 0.1 with 100. A mock
whose member count rises with mass teaches a network to read the mass from the
count, and on real data the answer then follows the number of galaxies handed in.
Two samplings are offered:

* ``sampling="survey"`` (default): each cluster's galaxy population is taken to be
  deep enough that a survey can reach any number of redshifts (a fainter magnitude
  limit adds galaxies from the same phase-space distribution: no luminosity
  segregation is modelled), and the survey measures ``n`` redshifts inside the
  cylinder with ``n`` drawn log-uniformly from ``n_redshifts`` (default 10–1500,
  which covers Coma's count after member selection) *independently of the mass*.
  The ``n`` galaxies are a random sample of the cylinder's population — cluster
  members and interlopers in the proportion the cylinder holds them, 1 member
  of the truncated NFW halo to ``interloper_ratio`` interlopers before the cut,
  as in the richness sampling — so the count tells a network how precisely the
  dispersion is measured, never the mass; and a random sub-sample of a mock
  cluster is distributed exactly like a mock cluster observed with fewer
  redshifts, which is what makes the estimates stable under sub-sampling.
* ``sampling="richness"``: the number of members inside ``truncation · R200c`` is
  Poisson with mean ``members_at_pivot · (M/M_pivot)^members_slope`` and the
  interlopers Poisson with ``interloper_ratio`` times that mean — the mocks of
  astrobayes ≤ 0.1 (and of catalogs whose count is complete to a fixed
  luminosity, where the count *is* a richness). On these mocks a network learns
  the mass from the count (0.155 dex rms from the count alone, issue 21).

Velocities are relative to the cluster's true mean; the features recentre them
on the members' own biweight location (statistics) or median (images and sets),
as one must for real data.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import QTable
from scipy.special import lambertw

from astrobayes.clusters.halos import (DEFAULT_H, MassFunction, RichnessMassRelation, concentration_duffy08,
                                       r200c, velocity_dispersion_evrard08)

__all__ = ["DEFAULT_APERTURE", "DEFAULT_INTERLOPER_RATIO", "DEFAULT_N_REDSHIFTS", "DEFAULT_V_CUT", "SAMPLINGS",
           "TRAINING_MASS_FUNCTION", "simulate_clusters", "sample_nfw_radii"]

#: default cylinder: projected radius and line-of-sight velocity cut
DEFAULT_APERTURE = 1.6 * u.Mpc
DEFAULT_V_CUT = 2500.0 * u.km / u.s
#: the default mocks' masses: flat in log10(M200c/M_sun) on a range 0.2 dex wider than the quoted 13.5–15.5
TRAINING_MASS_FUNCTION = MassFunction("flat", log_mass_range=(13.3, 15.7))
#: the spectroscopic samplings of :func:`simulate_clusters` (see the module docstring)
SAMPLINGS = ("survey", "richness")
#: redshifts per cluster inside the cylinder (survey sampling): log-uniform on this range, independent of mass
DEFAULT_N_REDSHIFTS = (10, 1500)
#: interlopers per galaxy of a cluster's population: a ratio drawn uniformly on this range for each cluster
DEFAULT_INTERLOPER_RATIO = (0.0, 0.5)


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


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


#: the most redshifts one mock cluster may have (``n_redshifts``): 10⁴, several times Coma's
MAX_REDSHIFTS_PER_CLUSTER = 10_000


def _count_range(n_redshifts) -> tuple[int, int]:
    ok = (isinstance(n_redshifts, (tuple, list)) and len(n_redshifts) == 2
          and all(_is_number(v) and np.isfinite(v) and float(v) == int(v) for v in n_redshifts))
    low, high = (int(v) for v in n_redshifts) if ok else (0, 0)
    if not ok or not 2 <= low <= high:
        raise ValueError(f"n_redshifts must be two integers (low, high) with 2 ≤ low ≤ high, got {n_redshifts!r}")
    if high > MAX_REDSHIFTS_PER_CLUSTER:
        raise ValueError(f"n_redshifts reaches {high}; no cluster has more than {MAX_REDSHIFTS_PER_CLUSTER} measured "
                         "redshifts in its cylinder (Coma, the richest nearby, has ~1,300)")
    return low, high


def _ratio_range(interloper_ratio) -> tuple[float, float]:
    values = interloper_ratio if isinstance(interloper_ratio, (tuple, list)) else (interloper_ratio, interloper_ratio)
    ok = len(values) == 2 and all(_is_number(v) for v in values)
    low, high = (float(v) for v in values) if ok else (0.0, 0.0)
    if not ok or not 0 <= low <= high or not np.isfinite(high):
        raise ValueError(f"interloper_ratio must be a non-negative number or a range (low, high) with "
                         f"0 ≤ low ≤ high, got {interloper_ratio!r}")
    return low, high


def _members_of(owner, conc, radius, sigma, truncation, anisotropy, rng):
    """(R_proj, v_los) of members of clusters ``owner``: NFW radius, isotropic direction, anisotropic velocities."""
    r = sample_nfw_radii(truncation * conc[owner], rng) * (radius / conc)[owner]
    mu = rng.uniform(-1.0, 1.0, owner.size)                       # cos(angle to the line of sight)
    r_proj = r * np.sqrt(1.0 - mu**2)
    sigma_r2 = 3.0 * sigma[owner] ** 2 / (3.0 - 2.0 * anisotropy)
    sigma_los = np.sqrt(sigma_r2 * (mu**2 + (1.0 - anisotropy) * (1.0 - mu**2)))
    return r_proj, sigma_los * rng.standard_normal(owner.size)


_MAX_ROUNDS = 100   # rounds of candidate draws in the survey sampling before giving up
_MIN_RATE = 0.02    # the smallest fraction of candidates assumed to land in the cylinder when sizing a round


def _survey(counts, conc, radius, sigma, truncation, anisotropy, interloper_ratio, aperture, v_cut, error, rng):
    """``counts[i]`` galaxies of cluster i drawn at random from the cylinder's population (members + interlopers).

    Candidates are drawn from the population before the cut — a member of the truncated halo with
    probability 1/(1 + ratio), else an interloper — in rounds until each cluster has enough inside the
    cylinder; a random ``counts[i]`` of those are kept (a random subset of independent draws).
    """
    n = counts.size
    found = np.zeros(n, dtype=np.int64)
    rate = np.ones(n)                       # the fraction of candidates that land in the cylinder, learned per round
    pieces = []
    for _ in range(_MAX_ROUNDS):
        if not (short := found < counts).any():
            break
        need = np.where(short, counts - found, 0)
        draws = np.where(short, np.ceil(1.2 * need / rate).astype(np.int64) + 8, 0)
        owner = np.repeat(np.arange(n), draws)
        is_member = rng.random(owner.size) < 1.0 / (1.0 + interloper_ratio[owner])
        r_all = np.empty(owner.size)
        v_all = np.empty(owner.size)
        r_all[is_member], v_all[is_member] = _members_of(owner[is_member], conc, radius, sigma, truncation,
                                                         anisotropy, rng)
        n_int = int((~is_member).sum())
        r_all[~is_member] = aperture * np.sqrt(rng.random(n_int))
        v_all[~is_member] = rng.uniform(-v_cut, v_cut, n_int)
        v_all += error * rng.standard_normal(owner.size)
        keep = (r_all <= aperture) & (np.abs(v_all) <= v_cut)
        kept = np.bincount(owner[keep], minlength=n)
        rate = np.where(short, np.clip(kept / np.maximum(draws, 1), _MIN_RATE, 1.0), rate)
        found += kept
        pieces.append((owner[keep], r_all[keep], v_all[keep], is_member[keep]))
    else:
        raise ValueError(f"the cylinder (aperture {aperture:g} Mpc, v_cut {v_cut:g} km/s) keeps almost none of the "
                         f"galaxies of {int((found < counts).sum())} cluster(s): after {_MAX_ROUNDS} rounds of draws "
                         "they still lack the redshifts n_redshifts asks for; widen the cylinder or allow interlopers")
    owner, r_all, v_all, is_member = (np.concatenate(parts) for parts in zip(*pieces))
    order = np.lexsort((rng.random(owner.size), owner))          # a random order within each cluster
    rank = np.arange(owner.size) - np.searchsorted(owner[order], owner[order])
    chosen = order[rank < counts[owner[order]]]
    return owner[chosen], r_all[chosen], v_all[chosen], is_member[chosen]


def simulate_clusters(n_clusters: int | None = None, *, log_mass=None, mass_function: MassFunction | None = None,
                      richness: RichnessMassRelation | None = None, sampling: str = "survey",
                      n_redshifts: tuple[int, int] = DEFAULT_N_REDSHIFTS, members_at_pivot: float = 40.0,
                      members_slope: float = 0.7, pivot_log_mass: float = 14.5, truncation: float = 2.0,
                      concentration_scatter: float = 0.1, velocity_bias: float = 1.0,
                      velocity_scatter: float = 0.04, anisotropy: float = 0.25,
                      interloper_ratio: float | tuple[float, float] = DEFAULT_INTERLOPER_RATIO,
                      aperture=DEFAULT_APERTURE, v_cut=DEFAULT_V_CUT, velocity_error=0.0, h: float = DEFAULT_H,
                      seed: int | None = None) -> tuple[QTable, QTable]:
    """Simulate clusters and their observed (cylinder-selected) galaxies with redshifts.

    Parameters
    ----------
    n_clusters : int
        Number of clusters, with masses drawn from ``mass_function``; or give ``log_mass``.
    log_mass : array, optional
        log₁₀(M200c/M_sun) of each cluster, instead of drawing them.
    mass_function : MassFunction
        Default: :data:`TRAINING_MASS_FUNCTION`, flat in log₁₀M on 13.3–15.7.
    richness : RichnessMassRelation
        The optical richness λ given the mass (default ln λ = ln 30 + ln(M/10^14.5 M_sun), scatter 0.25).
    sampling : {"survey", "richness"}
        How many galaxies have a redshift (see the module docstring): ``"survey"``, a number inside
        the cylinder drawn log-uniformly from ``n_redshifts`` independently of the mass;
        ``"richness"``, a Poisson number of members that grows with mass (the old mocks).
    n_redshifts : (int, int)
        Survey sampling: the range of the number of galaxies (members and interlopers) inside the cylinder.
    members_at_pivot, members_slope, pivot_log_mass : float
        Richness sampling: the mean number of members inside ``truncation · R200c`` (before the
        cylinder cut) at the pivot mass, and its power-law slope with mass.
    truncation : float
        Members are placed out to this many R200c.
    concentration_scatter : float
        Log-normal scatter of c₂₀₀ at fixed mass, in dex.
    velocity_bias, velocity_scatter : float
        σ_galaxies = velocity_bias · σ_Evrard(M) · exp(N(0, velocity_scatter²)).
    anisotropy : float
        Orbit anisotropy β = 1 − σ_t²/σ_r² (0 isotropic, → 1 radial); must be < 1.
    interloper_ratio : float or (float, float)
        Interlopers per galaxy of the cluster's population inside ``truncation · R200c``
        (before the cut); they are uniform in projected area within the aperture and in
        velocity within ±v_cut. A pair (low, high): a ratio drawn uniformly in that range
        for each cluster (default 0–0.5). (Richness sampling: their number is Poisson with
        the ratio times the expected members; the old mocks used 0.25.)
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
        ``concentration``, ``interloper_ratio``. ``meta["simulation"]`` records every parameter.

    Examples
    --------
    >>> members, clusters = simulate_clusters(3, seed=1)
    >>> len(clusters), members.colnames
    (3, ['cluster_id', 'galaxy_id', 'R_proj', 'v_los', 'is_member'])
    >>> bool((members["R_proj"] <= 1.6 * u.Mpc).all())
    True
    >>> counts = np.bincount(members["cluster_id"])          # survey sampling: 10–1500 redshifts each
    >>> bool(((counts >= 10) & (counts <= 1500)).all())
    True
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
    if not (_is_number(h) and 0.3 <= float(h) <= 1.5):
        raise ValueError(f"h must be H0 / (100 km/s/Mpc), between 0.3 and 1.5, got {h!r}")
    rng = np.random.default_rng(seed)
    mass_function = TRAINING_MASS_FUNCTION if mass_function is None else mass_function
    richness = RichnessMassRelation() if richness is None else richness
    if not isinstance(mass_function, MassFunction):
        raise TypeError(f"mass_function must be a MassFunction, got {type(mass_function).__name__}")
    if not isinstance(richness, RichnessMassRelation):
        raise TypeError(f"richness must be a RichnessMassRelation, got {type(richness).__name__}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    count_range = _count_range(n_redshifts)
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
    for name, value in (("concentration_scatter", concentration_scatter), ("velocity_scatter", velocity_scatter)):
        if not float(value) >= 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")
    ratio_range = _ratio_range(interloper_ratio)

    masses = _log_masses(n_clusters, log_mass, mass_function, rng)
    n = masses.size
    lam = richness.sample(masses, rng)
    # a fixed ratio draws nothing, so that the old mocks' random streams are unchanged
    ratio = (np.full(n, ratio_range[0]) if ratio_range[0] == ratio_range[1]
             else rng.uniform(ratio_range[0], ratio_range[1], n))
    if sampling == "richness":
        expected = members_at_pivot * 10.0 ** (members_slope * (masses - pivot_log_mass))
        n_true = rng.poisson(expected)
        n_int = rng.poisson(ratio * expected)
    else:  # the survey's count, independent of the mass
        low, high = count_range
        n_target = np.minimum(np.floor(np.exp(rng.uniform(np.log(low), np.log(high + 1.0), n))), high).astype(np.int64)

    radius = r200c(masses, h=h).to_value(u.Mpc)
    conc = concentration_duffy08(masses, h=h) * 10.0 ** (concentration_scatter * rng.standard_normal(n))
    sigma = (velocity_bias * velocity_dispersion_evrard08(masses, h=h).to_value(u.km / u.s)
             * np.exp(velocity_scatter * rng.standard_normal(n)))

    if sampling == "richness":
        owner = np.repeat(np.arange(n), n_true)
        r_proj, v_member = _members_of(owner, conc, radius, sigma, truncation, anisotropy, rng)
        owner_int = np.repeat(np.arange(n), n_int)
        r_int = aperture_mpc * np.sqrt(rng.random(owner_int.size))
        v_int = rng.uniform(-v_cut_kms, v_cut_kms, owner_int.size)
        cluster = np.concatenate([owner, owner_int])
        r_all = np.concatenate([r_proj, r_int])
        v_all = np.concatenate([v_member, v_int]) + error_kms * rng.standard_normal(cluster.size)
        is_member = np.concatenate([np.ones(owner.size, bool), np.zeros(owner_int.size, bool)])
        keep = (r_all <= aperture_mpc) & (np.abs(v_all) <= v_cut_kms)
        cluster, r_all, v_all, is_member = (a[keep] for a in (cluster, r_all, v_all, is_member))
    else:
        cluster, r_all, v_all, is_member = _survey(n_target, conc, radius, sigma, truncation, anisotropy,
                                                   ratio, aperture_mpc, v_cut_kms, error_kms, rng)
    order = np.lexsort((~is_member, cluster))  # grouped by cluster, members first
    cluster, r_all, v_all, is_member = (a[order] for a in (cluster, r_all, v_all, is_member))

    members = QTable({"cluster_id": cluster.astype(np.int64), "galaxy_id": np.arange(cluster.size, dtype=np.int64),
                      "R_proj": r_all * u.Mpc, "v_los": v_all * u.km / u.s, "is_member": is_member})
    observed_members = np.bincount(cluster[is_member], minlength=n)
    observed_interlopers = np.bincount(cluster[~is_member], minlength=n)
    clusters = QTable({"cluster_id": np.arange(n, dtype=np.int64), "log_mass": masses, "richness": lam,
                       "n_members": observed_members, "n_interlopers": observed_interlopers,
                       "sigma_v": sigma * u.km / u.s, "r200c": radius * u.Mpc, "concentration": conc,
                       "interloper_ratio": ratio})
    clusters["log_mass"].description = "log10(M200c / M_sun), the truth"
    parameters = {"mass_function": mass_function.to_dict() if log_mass is None else "given",
                  "richness": richness.to_dict(), "sampling": sampling, "n_redshifts": list(count_range),
                  "members_at_pivot": members_at_pivot,
                  "members_slope": members_slope, "pivot_log_mass": pivot_log_mass, "truncation": truncation,
                  "concentration_scatter": concentration_scatter, "velocity_bias": velocity_bias,
                  "velocity_scatter": velocity_scatter, "anisotropy": anisotropy,
                  "interloper_ratio": (ratio_range[0] if ratio_range[0] == ratio_range[1] else list(ratio_range)),
                  "aperture_Mpc": aperture_mpc, "v_cut_km_s": v_cut_kms,
                  "velocity_error_km_s": error_kms, "h": h, "seed": seed}
    members.meta["simulation"] = clusters.meta["simulation"] = parameters
    return members, clusters
