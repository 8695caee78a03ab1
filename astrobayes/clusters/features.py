"""From member galaxies to per-cluster inputs: robust dispersions, radius statistics, phase-space images, sets.

All functions take the member table of :func:`~astrobayes.clusters.io.read_member_catalog`
(or of :func:`~astrobayes.clusters.simulate.simulate_clusters`) and work on all
clusters at once: members are grouped by ``cluster_id`` with pandas, and every
statistic is computed on padded (cluster × member) arrays in chunks of clusters
of similar size (medians by one sort per chunk, not a loop over rows), so a
catalog of 10⁵ clusters takes seconds, and 2×10⁴ survey-sampled mocks of up to
1500 galaxies (6×10⁶ galaxies) about half a minute.

* :func:`gapper_dispersion` — the gapper estimator of the velocity dispersion
  (Wainer & Thissen 1976; Beers, Flynn & Gebhardt 1990), robust for few members;
* :func:`cluster_features` — one row per cluster: members, gapper and biweight
  dispersions (the biweight of ``astropy.stats``, computed for all rows at once), a 3σ-clipped standard
  deviation, biweight velocity centre, radius statistics, the fraction of high-velocity galaxies, and flags;
* :func:`phase_space_images` — the smoothed density of galaxies in projected
  phase space (R_proj, v_los), the input of the CNN of Ho et al. (2019);
* :func:`member_sets` — padded (R_proj, v_los) sets with masks, for a DeepSet.

Clusters with fewer than ``min_members`` galaxies are kept: their statistics are
NaN and their ``flags`` say ``too_few_members``; a warning gives the count.
Clusters whose members all (or, for the robust dispersions, most) share one
velocity — a dispersion of zero, which no real cluster has — are flagged
``no_velocity_spread``, with a warning naming them.
"""
from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pandas as pd
import torch
from astropy.stats import sigma_clip
from astropy.table import QTable, Table

from astrobayes.clusters.io import check_unique_galaxies
from astrobayes.clusters.simulate import DEFAULT_APERTURE, DEFAULT_V_CUT
from astrobayes.core.tables import native_array
from astrobayes.core.validation import Masked

__all__ = ["DEFAULT_MIN_MEMBERS", "FEATURE_NAMES", "MAX_CLUSTER_RADIUS", "MAX_CLUSTER_VELOCITY", "MIN_CLUSTER_VELOCITY",
           "cluster_features", "feature_matrix", "gapper_dispersion", "interloper_rejection", "match_clusters",
           "member_sets",
           "phase_space_images"]

#: fewer members than this and a cluster's statistics are NaN and flagged
DEFAULT_MIN_MEMBERS = 3

#: columns of :func:`cluster_features` that :func:`feature_matrix` passes to the networks (logs where positive)
FEATURE_NAMES = ("log_n_members", "log_sigma_gapper", "log_sigma_biweight", "log_sigma_clipped", "R_mean",
                 "R_median", "R_std", "high_velocity_fraction")

#: |v_los| above this (km/s) cannot be a velocity in a cluster's frame: a unit or frame mistake
MAX_CLUSTER_VELOCITY = 10000.0
#: every |v_los| below this (km/s) in a catalogue whose velocities differ: redshifts labelled as velocities
MIN_CLUSTER_VELOCITY = 1.0
#: R_proj above this (Mpc) is no cluster member's projected radius: a unit mistake (kpc labelled Mpc)
MAX_CLUSTER_RADIUS = 100.0

_CHUNK = 20000  # clusters per padded block
_CELLS = 2_000_000  # padded cells per block (16 MB per array)


def _unit_hint(column, name: str) -> str:
    """For a column of plain numbers: what their size says about their unit ("" when nothing useful)."""
    if isinstance(column, u.Quantity):
        return ""
    try:
        largest = float(np.nanmax(np.abs(np.ma.filled(np.ma.asarray(column, dtype=float), np.nan))))
    except (TypeError, ValueError):
        return ""
    if name == "v_los" and largest > MAX_CLUSTER_VELOCITY:
        return (f"; its plain numbers reach {largest:.3g}, beyond the {MAX_CLUSTER_VELOCITY:g} km/s of any cluster "
                "frame: if they are m/s, give them that unit, e.g. members['v_los'] = values * u.m / u.s")
    if name == "R_proj" and largest > MAX_CLUSTER_RADIUS:
        return (f"; its plain numbers reach {largest:.3g}, beyond the {MAX_CLUSTER_RADIUS:g} Mpc of any member: if "
                "they are kpc, give them that unit, e.g. members['R_proj'] = values * u.kpc")
    return ""


def _check_scales(radius: np.ndarray, velocity: np.ndarray) -> None:
    """Refuse radii [Mpc] and velocities [km/s] no cluster member has: a unit or frame mistake (NaN ignored).

    Called before anything is cut by radius or velocity (e.g. the training cylinder of
    :meth:`~astrobayes.clusters.model.ClusterMassModel.select`), so that velocities in m/s labelled
    km/s are named as such rather than cut away to an empty catalogue.
    """
    with np.errstate(invalid="ignore"):
        fastest = np.nanmax(np.abs(velocity), initial=0.0)
        widest = np.nanmax(radius, initial=0.0)
    if fastest > MAX_CLUSTER_VELOCITY:
        raise ValueError(f"column 'v_los' reaches |v| = {fastest:.3g} km/s; velocities in the cluster "
                         f"frame are below {MAX_CLUSTER_VELOCITY:g} km/s. Are they in m/s labelled km/s, or "
                         "recession velocities not relative to the cluster (see velocity_from_redshift)?")
    if widest > MAX_CLUSTER_RADIUS:
        raise ValueError(f"column 'R_proj' reaches {widest:.3g} Mpc; members lie within {MAX_CLUSTER_RADIUS:g} "
                         "Mpc of their cluster's centre. Are the radii in kpc labelled Mpc, or comoving distances "
                         "rather than projected radii (see projected_radius)?")


def _members(members) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unique cluster ids, group code per galaxy, R_proj [Mpc], v_los [km/s]) from a member table."""
    if isinstance(members, Table) and not isinstance(members, QTable):
        members = QTable(members)  # a Table with units: its columns become Quantities
    if not isinstance(members, QTable):
        raise TypeError(f"members must be the QTable of read_member_catalog or simulate_clusters, got "
                        f"{type(members).__name__}")
    for name, unit in (("cluster_id", None), ("R_proj", u.Mpc), ("v_los", u.km / u.s)):
        if name not in members.colnames:
            raise ValueError(f"members has no {name!r} column (available: {members.colnames}); read the catalog "
                             "with read_member_catalog, which names and checks the columns")
        if unit is not None and not (isinstance(members[name], u.Quantity) and members[name].unit.is_equivalent(unit)):
            raise ValueError(f"column {name!r} must be a Quantity in {unit} (read the catalog with "
                             f"read_member_catalog){_unit_hint(members[name], name)}")
    if len(members) == 0:
        raise ValueError("members is empty")
    cluster_ids = native_array(members["cluster_id"])
    if cluster_ids.dtype.kind == "f" and np.isnan(cluster_ids).any():
        raise ValueError("column 'cluster_id' has NaN values; every galaxy needs the cluster it belongs to")
    codes, ids = pd.factorize(cluster_ids, sort=True)
    radius = np.ma.filled(np.ma.masked_array(members["R_proj"].to_value(u.Mpc), dtype=float), np.nan)
    velocity = np.ma.filled(np.ma.masked_array(members["v_los"].to_value(u.km / u.s), dtype=float), np.nan)
    for name, values in (("R_proj", radius), ("v_los", velocity)):
        if not np.isfinite(values).all():
            raise ValueError(f"column {name!r} has NaN, inf or masked values; read the catalog with "
                             "read_member_catalog(..., drop_nan=True)")
    if (radius < 0).any():
        raise ValueError(f"column 'R_proj' has {int((radius < 0).sum())} negative projected radii")
    _check_scales(radius, velocity)
    if np.ptp(velocity) > 0 and np.abs(velocity).max() < MIN_CLUSTER_VELOCITY:
        raise ValueError(f"column 'v_los' spans only ±{np.abs(velocity).max():.3g} km/s, far below any cluster's "
                         f"velocity dispersion (hundreds of km/s). Are these redshifts labelled km/s? Convert them "
                         "with velocity_from_redshift(z, cluster_redshift) and read the result as v_los")
    if "galaxy_id" in members.colnames:  # read_member_catalog checks this only when told which column holds ids
        check_unique_galaxies(cluster_ids, members["galaxy_id"])
    return np.asarray(ids), codes, radius, velocity


def _padded(codes: np.ndarray, values: list[np.ndarray], n_groups: int):
    """Yield (group slice, padded arrays with NaN) in chunks of clusters; members sorted by the first value.

    A chunk holds at most ``_CHUNK`` clusters and about ``_CELLS`` padded cells, so that one rich
    cluster among thousands of poor ones does not make every row as wide as it is.
    """
    by_value = np.argsort(values[0], kind="stable")     # = np.lexsort((values[0], codes)), twice as fast
    order = by_value[np.argsort(codes[by_value], kind="stable")]
    codes = codes[order]
    values = [value[order] for value in values]
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)])
    first = 0
    while first < n_groups:
        last = min(first + _CHUNK, n_groups)
        width = max(int(counts[first:last].max(initial=0)), 1)
        if width * (last - first) > _CELLS:
            last = first + max(1, _CELLS // width)
            width = max(int(counts[first:last].max(initial=0)), 1)
        rank = np.arange(starts[first], starts[last]) - starts[codes[starts[first]:starts[last]]]
        rows = codes[starts[first]:starts[last]] - first
        blocks = []
        for value in values:
            block = np.full((last - first, width), np.nan)
            block[rows, rank] = value[starts[first]:starts[last]]
            blocks.append(block)
        yield slice(first, last), counts[first:last], blocks
        first = last


def _row_median(block: np.ndarray, counts: np.ndarray, presorted: bool = False) -> np.ndarray:
    """The median of each row of a NaN-padded block holding ``counts`` values per row (one vectorised sort).

    ``np.nanmedian`` over rows loops in Python (``apply_along_axis``); sorting puts the NaNs last,
    so the middle one or two values are picked by index.
    """
    ordered = block if presorted else np.sort(block, axis=1)
    low, high = np.maximum(counts - 1, 0)[:, None] // 2, counts[:, None] // 2
    middle = 0.5 * (np.take_along_axis(ordered, low, 1) + np.take_along_axis(ordered, high, 1))
    return np.where(counts > 0, middle[:, 0], np.nan)


def _biweight(sorted_block: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(biweight location, biweight scale) of each row of a NaN-padded, row-sorted block.

    The same estimators as ``astropy.stats.biweight_location`` (c = 6) and ``biweight_scale``
    (c = 9, about that location, ``modify_sample_size=True``; Beers, Flynn & Gebhardt 1990), with
    the median absolute deviation about the median, row by row without a Python loop.
    """
    median = _row_median(sorted_block, counts, presorted=True)
    mad = _row_median(np.abs(sorted_block - median[:, None]), counts)
    valid = np.isfinite(sorted_block)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = sorted_block - median[:, None]
        u = d / (6.0 * mad[:, None])
        inside = valid & (np.abs(u) < 1)
        weight = np.where(inside, (1 - u**2) ** 2, 0.0)
        location = median + (np.where(inside, d, 0.0) * weight).sum(axis=1) / weight.sum(axis=1)
        location = np.where(mad == 0, median, location)
        d = sorted_block - location[:, None]
        u2 = (d / (9.0 * mad[:, None])) ** 2
        inside = valid & (u2 < 1)
        f1 = np.where(inside, d * d * (1.0 - u2) ** 4, 0.0).sum(axis=1)
        f2 = np.abs(np.where(inside, (1.0 - u2) * (1.0 - 5.0 * u2), 0.0).sum(axis=1)) ** 2
        variance = np.where(mad == 0, 0.0, inside.sum(axis=1) * f1 / f2)
    return location, np.sqrt(variance)


def _gapper(sorted_block: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Gapper σ of each row of a NaN-padded, row-sorted block: √π / (n(n−1)) Σ i(n−i) (x₍ᵢ₊₁₎ − x₍ᵢ₎)."""
    gaps = np.diff(sorted_block, axis=1)
    i = np.arange(1, sorted_block.shape[1])[None, :]
    n = counts[:, None].astype(float)
    weights = i * (n - i)
    total = np.nansum(np.where(np.isfinite(gaps), weights * gaps, 0.0), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.pi) * total / (counts * (counts - 1.0))


def gapper_dispersion(velocity) -> u.Quantity:
    """The gapper estimate of the velocity dispersion of one set of velocities.

    σ_G = √π / (n(n−1)) Σᵢ i (n−i) gᵢ, with gᵢ the gaps between the sorted
    velocities (Wainer & Thissen 1976; Beers, Flynn & Gebhardt 1990). It is
    robust to outliers and, for Gaussian velocities, unbiased even for a
    handful of members (Beers et al. 1990 recommend it for n ≲ 15).

    Parameters
    ----------
    velocity : Quantity or array
        Velocities (km/s for plain numbers); at least two.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sigma = gapper_dispersion(rng.normal(0, 500, 20000) * u.km / u.s)
    >>> bool(abs(sigma.to_value(u.km / u.s) / 500 - 1) < 0.02)
    True
    """
    try:
        values = u.Quantity(velocity, u.km / u.s).to_value(u.km / u.s)
    except u.UnitsError:
        raise ValueError(f"velocity must be in km/s or another velocity unit, got {velocity.unit}") from None
    values = np.sort(np.ravel(values))
    if values.size < 2 or not np.isfinite(values).all():
        raise ValueError("velocity must hold at least two finite values")
    return float(_gapper(values[None, :], np.array([values.size]))[0]) * u.km / u.s


def cluster_features(members: QTable, *, min_members: int = DEFAULT_MIN_MEMBERS,
                     high_velocity_threshold: float = 2.0) -> QTable:
    """One row of dynamical statistics per cluster.

    Parameters
    ----------
    members : QTable
        From :func:`~astrobayes.clusters.io.read_member_catalog` or
        :func:`~astrobayes.clusters.simulate.simulate_clusters`.
    min_members : int
        Clusters with fewer galaxies get NaN statistics and the flag
        ``too_few_members`` (a warning gives how many); at least 2.
    high_velocity_threshold : float
        ``high_velocity_fraction`` counts galaxies further than this many
        gapper σ from the biweight centre (interlopers raise it).

    Returns
    -------
    QTable
        ``cluster_id``, ``n_members``, ``v_center`` (biweight location) and
        ``sigma_gapper``, ``sigma_biweight``, ``sigma_clipped`` (standard
        deviation after iterative 3σ clipping, the classic interloper cut) [km/s], ``R_mean``, ``R_median``,
        ``R_std`` [Mpc], ``high_velocity_fraction``, ``flags`` ("",
        "too_few_members", or "no_velocity_spread" for a cluster whose members
        all or mostly share one velocity: a warning names those), sorted by ``cluster_id``.
        ``meta`` records ``min_members`` and ``interloper_rejection`` (see :func:`interloper_rejection`).

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(4, seed=2)
    >>> features = cluster_features(members)
    >>> features.colnames[:4]
    ['cluster_id', 'n_members', 'v_center', 'sigma_gapper']
    """
    if isinstance(min_members, bool) or not isinstance(min_members, (int, np.integer)) or min_members < 2:
        raise ValueError(f"min_members must be an integer ≥ 2 (a dispersion needs two velocities), got {min_members!r}")
    ids, codes, radius, velocity = _members(members)
    n = ids.size
    out = {name: np.full(n, np.nan) for name in ("v_center", "sigma_gapper", "sigma_biweight", "sigma_clipped",
                                                 "R_mean", "R_median", "R_std", "high_velocity_fraction")}
    counts_all = np.bincount(codes, minlength=n)
    # clusters are visited from the poorest to the richest, so that a padded block holds clusters of similar size
    by_size = np.argsort(counts_all, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[by_size] = np.arange(n)
    for rows, counts, (v_block, r_block) in _padded(position[codes], [velocity, radius], n):
        ok = counts >= min_members
        if not ok.any():
            continue
        v_ok, r_ok, n_ok = v_block[ok], r_block[ok], counts[ok]
        center, scale = _biweight(v_ok, n_ok)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-equal velocities give 0/0
            # the NaNs are our padding: mask them first so that astropy does not warn about them
            clipped = sigma_clip(np.ma.masked_invalid(v_ok), sigma=3.0, maxiters=10, axis=1, masked=True)
            clipped = clipped.std(axis=1, ddof=1).filled(np.nan)
        gapper = _gapper(v_ok, n_ok)
        index = by_size[np.flatnonzero(ok) + rows.start]
        out["v_center"][index] = center
        out["sigma_gapper"][index] = gapper
        out["sigma_biweight"][index] = scale
        out["sigma_clipped"][index] = clipped
        out["R_mean"][index] = np.nanmean(r_ok, axis=1)
        out["R_median"][index] = _row_median(r_ok, n_ok)
        out["R_std"][index] = np.nanstd(r_ok, axis=1, ddof=1)
        with np.errstate(invalid="ignore"):
            far = np.abs(v_ok - center[:, None]) > high_velocity_threshold * gapper[:, None]
        out["high_velocity_fraction"][index] = far.sum(axis=1) / n_ok
    few = counts_all < min_members
    if few.any():
        warnings.warn(f"{few.sum()} of {n} cluster(s) have fewer than {min_members} members (cluster_id "
                      f"{', '.join(map(str, ids[few][:10]))}{', ...' if few.sum() > 10 else ''}); their statistics "
                      "are NaN and flagged 'too_few_members'", UserWarning, stacklevel=2)
    # all (gapper) or most (biweight, clipped) members at one velocity: a dispersion of 0, whose log is no input
    with np.errstate(invalid="ignore"):
        spread = ((out["sigma_gapper"] > 0) & (out["sigma_biweight"] > 0) & (out["sigma_clipped"] > 0))
    flat = ~few & ~spread
    if flat.any():
        named = f"{', '.join(map(str, ids[flat][:10]))}{', ...' if flat.sum() > 10 else ''}"
        warnings.warn(f"{flat.sum()} of {n} cluster(s) have no velocity spread: all or most of their members share "
                      f"one v_los (cluster_id {named}). "
                      "They are flagged 'no_velocity_spread' and get no mass; check the catalogue's velocities "
                      "(rounded to the same value, or the cluster's own redshift given to every member?)",
                      UserWarning, stacklevel=2)
    table = QTable({"cluster_id": ids, "n_members": counts_all})
    kms, mpc = u.km / u.s, u.Mpc
    for name, unit in (("v_center", kms), ("sigma_gapper", kms), ("sigma_biweight", kms), ("sigma_clipped", kms),
                       ("R_mean", mpc),
                       ("R_median", mpc), ("R_std", mpc), ("high_velocity_fraction", None)):
        table[name] = out[name] * unit if unit is not None else out[name]
    table["flags"] = np.where(few, "too_few_members", np.where(flat, "no_velocity_spread", ""))
    table.meta["min_members"] = int(min_members)
    # how the galaxies were cleaned of interlopers (reject_interlopers records it), so that a mass model can
    # check that its inputs were made the way its training inputs were
    table.meta["interloper_rejection"] = interloper_rejection(members)
    return table


def interloper_rejection(members) -> str:
    """The interloper rejection a member table went through: ``meta["membership"]["method"]``, else ``"none"``.

    :func:`~astrobayes.clusters.membership.reject_interlopers` (and ``members_from_field``) record it.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters, reject_interlopers
    >>> members, truth = simulate_clusters(3, seed=5)
    >>> interloper_rejection(members), interloper_rejection(reject_interlopers(members, method="sigma_clip"))
    ('none', 'sigma_clip')
    """
    membership = getattr(members, "meta", {}).get("membership")
    method = membership.get("method") if isinstance(membership, dict) else None
    return str(method) if method is not None else "none"


def match_clusters(features: QTable, table: QTable, column: str) -> np.ndarray:
    """``table[column]`` for each row of ``features``, matched on ``cluster_id`` (NaN where ``table`` lacks it).

    Clusters with no galaxy in the cylinder have no row in ``features``; this
    lines a truth or richness table up with it.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(3, seed=5)
    >>> features = cluster_features(members)
    >>> bool(np.allclose(match_clusters(features, truth, "log_mass"), truth["log_mass"]))
    True
    """
    for name, where in (("cluster_id", table), (column, table), ("cluster_id", features)):
        if name not in where.colnames:
            raise ValueError(f"a table has no {name!r} column (available: {where.colnames})")
    ids = pd.Index(native_array(table["cluster_id"]))
    if not ids.is_unique:
        raise ValueError("the table's cluster_id values are not unique")
    position = ids.get_indexer(native_array(features["cluster_id"]))
    values = np.asarray(table[column], dtype=float)
    return np.where(position >= 0, values[position], np.nan)


def feature_matrix(features: QTable) -> np.ndarray:
    """The network inputs (n_clusters, 8) from :func:`cluster_features`, in :data:`FEATURE_NAMES` order and fixed units.

    Counts and dispersions enter as log₁₀ (km/s for σ), radii in Mpc. Rows of
    flagged clusters are NaN.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(4, seed=2)
    >>> feature_matrix(cluster_features(members)).shape
    (4, 8)
    """
    missing = [c for c in ("n_members", "sigma_gapper", "sigma_biweight", "sigma_clipped", "R_mean", "R_median",
                           "R_std", "high_velocity_fraction") if c not in features.colnames]
    if missing:
        raise ValueError(f"features is missing column(s) {missing}; make it with cluster_features()")
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = [np.log10(np.asarray(features["n_members"], dtype=float)),
                   np.log10(features["sigma_gapper"].to_value(u.km / u.s)),
                   np.log10(features["sigma_biweight"].to_value(u.km / u.s)),
                   np.log10(features["sigma_clipped"].to_value(u.km / u.s)),
                   features["R_mean"].to_value(u.Mpc), features["R_median"].to_value(u.Mpc),
                   features["R_std"].to_value(u.Mpc), np.asarray(features["high_velocity_fraction"], dtype=float)]
    matrix = np.column_stack(columns)
    matrix[~np.isfinite(matrix).all(axis=1)] = np.nan
    return matrix


def _cylinder(aperture, v_cut) -> tuple[float, float]:
    try:
        aperture = u.Quantity(aperture, u.Mpc).to_value(u.Mpc)
        v_cut = u.Quantity(v_cut, u.km / u.s).to_value(u.km / u.s)
    except u.UnitsError as err:
        raise ValueError(f"aperture must be a length and v_cut a velocity ({err})") from None
    if not (aperture > 0 and v_cut > 0):
        raise ValueError("aperture and v_cut must be positive")
    return float(aperture), float(v_cut)


def phase_space_images(members: QTable, *, shape: tuple[int, int] = (24, 24), aperture=DEFAULT_APERTURE,
                       v_cut=DEFAULT_V_CUT, bandwidth: float = 1.0, recenter: bool = True) -> np.ndarray:
    """The smoothed number density of galaxies in projected phase space, one image per cluster.

    Each galaxy adds a Gaussian of ``bandwidth`` pixels (in both axes) at
    (R_proj, v_los − the cluster's median velocity) on a grid spanning 0 ≤ R ≤ ``aperture`` (columns)
    and |v| ≤ ``v_cut`` (rows); an image sums to about the number of galaxies
    (less the part of the kernels that falls outside), so richness is kept.

    Returns
    -------
    ndarray, shape (n_clusters, 1, n_v, n_R)
        In the order of ``cluster_features(members)["cluster_id"]``.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(2, seed=3)
    >>> phase_space_images(members).shape
    (2, 1, 24, 24)
    """
    n_v, n_r = (int(s) for s in shape)
    if n_v < 2 or n_r < 2:
        raise ValueError(f"shape must be two integers ≥ 2, got {shape!r}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive (in pixels), got {bandwidth!r}")
    aperture, v_cut = _cylinder(aperture, v_cut)
    ids, codes, radius, velocity = _members(members)
    if recenter:
        centers = np.zeros(ids.size)
        for rows, counts, (v_block,) in _padded(codes, [velocity], ids.size):
            centers[rows] = np.where(counts > 0, np.nanmedian(v_block, axis=1), 0.0)
        velocity = velocity - centers[codes]
    r_pix = (np.arange(n_r) + 0.5) * aperture / n_r
    v_pix = -v_cut + (np.arange(n_v) + 0.5) * 2 * v_cut / n_v
    images = torch.zeros(ids.size, n_v * n_r, dtype=torch.float64)
    for start in range(0, radius.size, 200000):
        r = radius[start:start + 200000, None]
        v = velocity[start:start + 200000, None]
        k_r = np.exp(-0.5 * ((r - r_pix) / (bandwidth * aperture / n_r)) ** 2) / (np.sqrt(2 * np.pi) * bandwidth)
        k_v = np.exp(-0.5 * ((v - v_pix) / (bandwidth * 2 * v_cut / n_v)) ** 2) / (np.sqrt(2 * np.pi) * bandwidth)
        kernel = torch.from_numpy(np.einsum("gv,gr->gvr", k_v, k_r).reshape(len(r), -1))
        images.index_add_(0, torch.from_numpy(codes[start:start + 200000]), kernel)
    return images.reshape(ids.size, 1, n_v, n_r).numpy().astype(np.float32)


def member_sets(members: QTable, *, aperture=DEFAULT_APERTURE, v_cut=DEFAULT_V_CUT, max_members: int | None = None,
                seed: int = 0) -> Masked:
    """Each cluster's galaxies as a padded set of (R_proj/aperture, (v_los − median)/v_cut), with a mask.

    Clusters with more than ``max_members`` galaxies are sub-sampled at random
    (``seed``), so one huge cluster does not set the padding for all.

    Returns
    -------
    Masked
        ``values`` (n_clusters, L, 2) float32 and ``mask`` (n_clusters, L) bool,
        in the order of ``cluster_features(members)["cluster_id"]``.

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(3, seed=4)
    >>> sets = member_sets(members, max_members=50)
    >>> sets.values.shape[0], sets.values.shape[2], int(sets.mask.sum()) <= len(members)
    (3, 2, True)
    """
    aperture, v_cut = _cylinder(aperture, v_cut)
    ids, codes, radius, velocity = _members(members)
    if max_members is not None:
        if isinstance(max_members, bool) or not isinstance(max_members, (int, np.integer)) or max_members < 1:
            raise ValueError(f"max_members must be a positive integer or None, got {max_members!r}")
        shuffle = np.random.default_rng(seed).random(codes.size)
    else:
        shuffle = np.zeros(codes.size)
    blocks_r, blocks_v = [], []
    width = 1
    for rows, counts, (key, r_block, v_block) in _padded(codes, [shuffle, radius, velocity], ids.size):
        v_block = v_block - np.nanmedian(v_block, axis=1, keepdims=True)
        if max_members is not None:
            r_block, v_block = r_block[:, :max_members], v_block[:, :max_members]
        blocks_r.append(r_block)
        blocks_v.append(v_block)
        width = max(width, r_block.shape[1])
    pad = [np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=np.nan) for b in blocks_r + blocks_v]
    r_all = np.concatenate(pad[:len(blocks_r)]) / aperture
    v_all = np.concatenate(pad[len(blocks_r):]) / v_cut
    mask = np.isfinite(r_all)
    values = np.stack([np.nan_to_num(r_all), np.nan_to_num(v_all)], axis=-1).astype(np.float32)
    return Masked(torch.from_numpy(values), torch.from_numpy(mask))
