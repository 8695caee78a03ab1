"""Member selection: a cylinder around a cluster in a redshift field, and interloper rejection for many clusters.

A spectroscopic field around a cluster holds its members and galaxies in
front of and behind it. :func:`members_from_field` turns such a field (from
:func:`~astrobayes.clusters.fields.read_redshift_field`) into the member table of
:func:`~astrobayes.clusters.io.read_member_catalog`: projected radii and
line-of-sight velocities about a centre and a redshift, a cylinder
R_proj ≤ ``aperture``, |v_los| ≤ ``v_cut`` (the one the mocks are cut with), and
then :func:`reject_interlopers`, which works on the already-centred members of
any number of clusters — the mocks of :func:`~astrobayes.clusters.simulate.simulate_clusters`
as well as real ones, so that networks are trained on what they are applied to.
The methods:

* ``"shifting_gapper"`` (Fadda et al. 1996, ApJ 473, 670):
  the galaxies of a cluster are split into radial bins holding at least
  ``bin_members`` (15) galaxies and at least ``bin_width`` wide (0.4 h⁻¹ Mpc, i.e.
  0.571 Mpc at h = 0.7); in each bin the velocities are sorted, and galaxies
  separated from the main body by a gap larger than ``velocity_gap`` (1000 km/s)
  are rejected. The main body is the group of the bin that contains the
  cluster's median velocity (or is nearest to it). Repeated until nothing changes.
* ``"sigma_clip"`` (Yahil & Vidal 1977, ApJ 214, 347): galaxies further than
  ``n_sigma`` (3) standard deviations from the biweight centre (Beers, Flynn & Gebhardt 1990)
  of the cluster's velocities are rejected, repeated until nothing changes.
* ``"none"``: the cylinder alone.

The default is ``"sigma_clip"``: on the mocks it rejects ten times as many
interlopers as the gapper for the same loss of members
(``benchmarks/results/clusters_membership.md``).

Everything runs on all clusters at once, on flat arrays sorted by (cluster, value),
and each pass revisits only the clusters that lost a galaxy in the last one: 10⁵
mock clusters (5.6 × 10⁶ galaxies) take about 10 s. Clusters with fewer than 3
galaxies are left as they are.

What they can and cannot do: both only see velocities, so an interloper whose
velocity lies within the cluster's own spread stays (on the default mocks, whose
interlopers are uniform within ±``v_cut``, ~24 % of galaxies are interlopers and
most of them look like members). A fixed 1000 km/s gap rarely opens in a rich,
densely sampled field, so the gapper removes little there — on Coma within a
±4000 km/s cut it keeps the wings that 3σ clipping removes
(``benchmarks/results/clusters_membership.md``).
"""
from __future__ import annotations

import warnings

import astropy.constants as const
import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table

from astrobayes import __version__
from astrobayes.clusters.features import MAX_CLUSTER_VELOCITY, _members
from astrobayes.clusters.halos import COSMOLOGY, DEFAULT_H, describe_cosmology
from astrobayes.clusters.fields import read_redshift_field
from astrobayes.clusters.io import projected_radius, velocity_from_redshift
from astrobayes.clusters.simulate import DEFAULT_APERTURE, DEFAULT_V_CUT
from astrobayes.core.paths import SOURCES_KEY

__all__ = ["DEFAULT_REJECTION", "GAPPER_BIN_MEMBERS", "GAPPER_BIN_WIDTH", "GAPPER_VELOCITY_GAP", "REJECTION_METHODS",
           "members_from_field", "reject_interlopers"]

#: interloper rejections :func:`reject_interlopers` knows
REJECTION_METHODS = ("shifting_gapper", "sigma_clip", "none")
#: the default, for real clusters and for the mocks the networks are trained on
DEFAULT_REJECTION = "sigma_clip"
#: the velocity gap that separates interlopers from the main body (Fadda et al. 1996)
GAPPER_VELOCITY_GAP = 1000.0 * u.km / u.s
#: fewest galaxies in a radial bin of the shifting gapper (Fadda et al. 1996)
GAPPER_BIN_MEMBERS = 15
#: narrowest radial bin of the shifting gapper: 0.4 h⁻¹ Mpc (Fadda et al. 1996) at h = 0.7
GAPPER_BIN_WIDTH = 0.4 / DEFAULT_H * u.Mpc

_MIN_GALAXIES = 3       # fewer galaxies in a cluster and no rejection is attempted
_MAX_ITERATIONS = 50
_MAX_UNCOVERED = 0.05   # warn when more of the aperture's area than this lies beyond the field's galaxies
_START_GALAXIES = 25    # the redshift estimate starts from the median redshift of this many galaxies nearest the centre
_C_KMS = const.c.to_value(u.km / u.s)


def _positive(value, unit, name: str) -> float:
    """A positive Quantity in ``unit`` (or a plain number taken in ``unit``) as a float."""
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be one value, got {np.size(value)} ({value!r:.80})")
    if isinstance(value, u.Quantity):
        if not value.unit.is_equivalent(unit):
            raise ValueError(f"{name} must be in units of {unit.physical_type} (e.g. {unit}), got {value.unit}")
        value = value.to_value(unit)
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a Quantity in {unit} or a number (taken in {unit}), got "
                        f"{type(value).__name__}")
    value = float(np.asarray(value))
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and positive, got {value!r}")
    return value


def _iterate(codes: np.ndarray, n_groups: int, step) -> np.ndarray:
    """Apply ``step`` (galaxy rows → which survive) until nothing changes; only clusters that lost a galaxy go again."""
    keep = np.ones(codes.size, dtype=bool)
    active = np.bincount(codes, minlength=n_groups) >= _MIN_GALAXIES   # smaller clusters are left as they are
    for _ in range(_MAX_ITERATIONS):
        rows = np.flatnonzero(keep & active[codes])
        if rows.size == 0:
            break
        removed = rows[~step(rows)]
        if removed.size == 0:
            break
        keep[removed] = False
        active[:] = False
        active[codes[removed]] = True
    return keep


def _grouped_sort(code: np.ndarray, values: np.ndarray, n_groups: int):
    """(order, counts, starts): ``order`` sorts by (group, value) with one argsort of a composite key."""
    offset = values.min()
    span = float(values.max() - offset) + 1.0
    order = np.argsort(code * span + (values - offset), kind="stable")
    counts = np.bincount(code, minlength=n_groups)
    return order, counts, np.concatenate([[0], np.cumsum(counts)[:-1]])


def _medians(sorted_values: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Median per group of values sorted by (group, value); NaN for empty groups."""
    medians = np.full(counts.size, np.nan)
    has = counts > 0
    low, high = starts[has] + (counts[has] - 1) // 2, starts[has] + counts[has] // 2
    medians[has] = 0.5 * (sorted_values[low] + sorted_values[high])
    return medians


def _biweight_locations(code, velocity, n_groups) -> np.ndarray:
    """Biweight location per group (Beers et al. 1990; tuning constant 6, as astropy's biweight_location)."""
    order, counts, starts = _grouped_sort(code, velocity, n_groups)
    median = _medians(velocity[order], counts, starts)
    deviation = np.abs(velocity - median[code])
    order_d, _, _ = _grouped_sort(code, deviation, n_groups)
    mad = _medians(deviation[order_d], counts, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_ = (velocity - median[code]) / (6.0 * mad[code])
        weight = np.where(np.abs(u_) < 1, (1 - u_**2) ** 2, 0.0)
        shift = (np.bincount(code, weight * (velocity - median[code]), n_groups)
                 / np.bincount(code, weight, n_groups))
    return median + np.where(np.isfinite(shift), shift, 0.0)   # MAD = 0: the median, as astropy returns


def _clip_keep(codes, velocity, n_groups, n_sigma) -> np.ndarray:
    """Iterative n_sigma clipping of each cluster's velocities about their biweight centre: which galaxies survive."""
    def step(rows):
        code, v = codes[rows], velocity[rows]
        centre = _biweight_locations(code, v, n_groups)
        d = v - centre[code]
        n = np.bincount(code, minlength=n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.sqrt(np.bincount(code, (d - (np.bincount(code, d, n_groups) / n)[code]) ** 2, n_groups)
                             / (n - 1))
        survive = np.abs(d) <= n_sigma * spread[code]
        left = np.bincount(code, survive, n_groups)
        return survive | (left < _MIN_GALAXIES)[code]       # never clip a cluster below 3 galaxies
    return _iterate(codes, n_groups, step)


def _radial_bins(key, code, counts, starts, bin_members, bin_width) -> np.ndarray:
    """Bin number of each galaxy, sorted by ``key`` = (cluster, R_proj) composite; bins never straddle clusters."""
    bin_start = np.zeros(key.size, dtype=bool)
    clusters = np.flatnonzero(counts > 0)
    start, end = starts[clusters], starts[clusters] + counts[clusters]
    while start.size:
        bin_start[start] = True
        stop = np.maximum(start + bin_members, np.searchsorted(key, key[start] + bin_width, side="left"))
        more = end - stop >= bin_members     # enough left for another full bin; else the rest joins this one
        start, end = stop[more], end[more]
    return np.cumsum(bin_start) - 1


def _gapper_keep(codes, radius, velocity, n_groups, gap, bin_members, bin_width) -> np.ndarray:
    """Shifting gapper (Fadda et al. 1996): which galaxies survive."""
    def step(rows):
        code, r, v = codes[rows], radius[rows], velocity[rows]
        order_v, counts, starts = _grouped_sort(code, v, n_groups)
        centre = _medians(v[order_v], counts, starts)
        # radial bins: ≥ bin_members galaxies and ≥ bin_width wide
        span = float(r.max()) + bin_width + 1.0
        key = code * span + r
        order_r = np.argsort(key, kind="stable")
        bins = np.empty(code.size, dtype=np.int64)
        bins[order_r] = _radial_bins(key[order_r], code[order_r], counts, starts, bin_members, bin_width)
        # velocity groups within each bin: a new group after each gap wider than `gap`
        offset = float(v.min())
        by_velocity = np.argsort(bins * (float(v.max()) - offset + 1.0) + (v - offset), kind="stable")
        b, vs, cs = bins[by_velocity], v[by_velocity], code[by_velocity]
        new_group = np.concatenate([[True], (b[1:] != b[:-1]) | (np.diff(vs) > gap)])
        last = np.concatenate([new_group[1:], [True]])
        low, high, group_bin = vs[new_group], vs[last], b[new_group]
        c = centre[cs[new_group]]
        distance = np.maximum(np.maximum(low - c, c - high), 0.0)   # 0 for the group holding the centre
        first_of_bin = np.flatnonzero(np.concatenate([[True], group_bin[1:] != group_bin[:-1]]))
        nearest = np.minimum.reduceat(distance, first_of_bin)
        main = distance <= np.repeat(nearest, np.diff(np.append(first_of_bin, group_bin.size)))
        survive = np.empty(code.size, dtype=bool)
        survive[by_velocity] = main[np.cumsum(new_group) - 1]
        return survive
    return _iterate(codes, n_groups, step)


def reject_interlopers(members: QTable, *, method: str = DEFAULT_REJECTION, velocity_gap=GAPPER_VELOCITY_GAP,
                       bin_members: int = GAPPER_BIN_MEMBERS, bin_width=GAPPER_BIN_WIDTH, n_sigma: float = 3.0,
                       keep_rejected: bool = False) -> QTable:
    """Remove interlopers from the centred members of many clusters at once.

    Parameters
    ----------
    members : QTable
        From :func:`~astrobayes.clusters.io.read_member_catalog`,
        :func:`~astrobayes.clusters.simulate.simulate_clusters` or
        ``members_from_field(..., rejection="none")``: ``cluster_id``,
        ``R_proj`` [Mpc] and ``v_los`` [km/s] about each cluster's centre and redshift.
    method : {"shifting_gapper", "sigma_clip", "none"}
        See the module's description.
    velocity_gap : Quantity
        Shifting gapper: the gap that separates interlopers (default 1000 km/s).
    bin_members : int
        Shifting gapper: fewest galaxies in a radial bin (default 15).
    bin_width : Quantity
        Shifting gapper: narrowest radial bin (default 0.4 h⁻¹ Mpc = 0.571 Mpc).
    n_sigma : float
        Sigma clipping: the threshold in standard deviations (default 3).
    keep_rejected : bool
        Return every row, with a boolean column ``interloper`` (True where
        rejected), instead of the kept rows only.

    Returns
    -------
    QTable
        The kept rows in their original order (or all rows, see ``keep_rejected``),
        columns unchanged; ``meta["membership"]`` records the method, its
        parameters and the counts (``n_galaxies``, ``n_rejected``).

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(200, seed=1)
    >>> kept = reject_interlopers(members, method="sigma_clip")
    >>> purity = lambda t: float(np.mean(t["is_member"]))
    >>> purity(kept) > purity(members)
    True
    >>> kept.meta["membership"]["method"]
    'sigma_clip'
    """
    if method not in REJECTION_METHODS:
        raise ValueError(f"method must be one of {REJECTION_METHODS}, got {method!r}")
    if not isinstance(keep_rejected, bool):
        raise TypeError(f"keep_rejected must be True or False, got {keep_rejected!r}")
    gap = _positive(velocity_gap, u.km / u.s, "velocity_gap")
    width = _positive(bin_width, u.Mpc, "bin_width")
    if isinstance(bin_members, bool) or not isinstance(bin_members, (int, np.integer)) or bin_members < 2:
        raise ValueError(f"bin_members must be an integer ≥ 2, got {bin_members!r}")
    n_sigma = _positive(n_sigma, u.dimensionless_unscaled, "n_sigma")
    ids, codes, radius, velocity = _members(members)
    if method == "shifting_gapper":
        keep = _gapper_keep(codes, radius, velocity, ids.size, gap, int(bin_members), width)
        parameters = {"velocity_gap_km_s": gap, "bin_members": int(bin_members), "bin_width_Mpc": width,
                      "reference": "Fadda et al. 1996, ApJ 473, 670"}
    elif method == "sigma_clip":
        keep = _clip_keep(codes, velocity, ids.size, n_sigma)
        parameters = {"n_sigma": n_sigma, "centre": "biweight location", "scale": "standard deviation",
                      "reference": "Yahil & Vidal 1977, ApJ 214, 347"}
    else:
        keep = np.ones(codes.size, dtype=bool)
        parameters = {}
    if isinstance(members, Table) and not isinstance(members, QTable):
        members = QTable(members)
    out = members.copy() if keep_rejected else members[keep]
    if keep_rejected:
        out["interloper"] = ~keep
        out["interloper"].info.description = f"rejected as an interloper by {method}"
    out.meta = dict(members.meta)
    out.meta["membership"] = {"method": method, **parameters, "n_galaxies": int(codes.size),
                              "n_rejected": int((~keep).sum()), "n_clusters": int(ids.size)}
    return out


def _centre(centre) -> SkyCoord:
    if isinstance(centre, SkyCoord):
        if not centre.isscalar:
            raise ValueError(f"centre must be one position, got a SkyCoord of shape {centre.shape}")
        return SkyCoord(centre.icrs.ra, centre.icrs.dec)
    if isinstance(centre, (tuple, list)) and len(centre) == 2:
        ra, dec = centre
        if not (isinstance(ra, u.Quantity) and isinstance(dec, u.Quantity)):
            raise TypeError(f"centre is {centre!r:.80}: give units, e.g. (194.953 * u.deg, 27.981 * u.deg) or "
                            "SkyCoord(194.953, 27.981, unit='deg'); bare numbers could be degrees, hours or radians")
        if not (ra.unit.is_equivalent(u.deg) and dec.unit.is_equivalent(u.deg)):
            raise ValueError(f"centre must be two angles (ra, dec), got units {ra.unit} and {dec.unit}")
        if not (np.ndim(ra) == 0 and np.ndim(dec) == 0 and np.isfinite(ra.value) and np.isfinite(dec.value)):
            raise ValueError(f"centre must be one finite (ra, dec) position, got {centre!r:.80}")
        if abs(dec.to_value(u.deg)) > 90:
            raise ValueError(f"centre's declination {dec} is beyond ±90 deg")
        return SkyCoord(ra, dec)
    raise TypeError(f"centre must be a SkyCoord or an (ra, dec) pair of angle Quantities, got "
                    f"{type(centre).__name__}")


def _field(field) -> QTable:
    """A table read by read_redshift_field (or rows of one) as it is; anything else through it, checked."""
    if (isinstance(field, QTable) and "dropped_types" in field.meta
            and all(c in field.colnames for c in ("ra", "dec", "redshift"))
            and isinstance(field["ra"], u.Quantity) and isinstance(field["dec"], u.Quantity)):
        return field
    return read_redshift_field(field)


def _angle_of(aperture, redshift: float, cosmology) -> float:
    """The aperture as an angle in degrees at ``redshift`` (an angle stays an angle)."""
    if aperture.unit.is_equivalent(u.deg):
        return float(aperture.to_value(u.deg))
    distance = cosmology.angular_diameter_distance(redshift)
    return float(np.degrees((aperture / distance).to_value(u.dimensionless_unscaled)))


def _given_redshift(redshift) -> float:
    if isinstance(redshift, u.Quantity) and not redshift.unit.is_equivalent(u.dimensionless_unscaled):
        raise ValueError(f"redshift has unit {redshift.unit}, so it is not a redshift; give z (cz / c)")
    if isinstance(redshift, (bool, str, bytes)):  # a string would be parsed, units and all ("0.02 Mpc" → 0.02)
        raise TypeError(f"redshift must be a number, got {redshift!r}")
    try:
        z_c = float(u.Quantity(redshift).value)
    except (TypeError, ValueError):
        raise TypeError(f"redshift must be a number, got {redshift!r:.80}") from None
    if not (np.isfinite(z_c) and 0 < z_c < 20):
        raise ValueError(f"redshift must be a cluster redshift between 0 and 20, got {z_c!r} (a velocity cz in km/s "
                         "must be divided by c = 299792.458 km/s)")
    return z_c


def _estimated_redshift(separation, z, aperture, v_cut, cosmology) -> tuple[float, str]:
    """The cluster's redshift from the galaxies near the centre (see :func:`members_from_field`)."""
    nearest = np.argsort(separation)[:_START_GALAXIES]
    z_c = float(np.median(z[nearest]))
    if not z_c > 0:
        raise ValueError(f"the {nearest.size} galaxies nearest the centre have a median redshift {z_c:.4g} ≤ 0; "
                         "give the cluster's redshift")
    for _ in range(_MAX_ITERATIONS):
        v = _C_KMS * (z - z_c) / (1 + z_c)
        inside = (separation <= _angle_of(aperture, z_c, cosmology)) & (np.abs(v) <= v_cut)
        if inside.sum() < _MIN_GALAXIES:
            raise ValueError(f"could not estimate the cluster's redshift: only {int(inside.sum())} galaxies lie in "
                             f"the cylinder about z = {z_c:.5f}; give redshift=")
        kept = _clip_keep(np.zeros(int(inside.sum()), dtype=np.int64), v[inside], 1, 3.0)
        shift = float(_biweight_locations(np.zeros(int(kept.sum()), dtype=np.int64), v[inside][kept], 1)[0])
        z_c += shift * (1 + z_c) / _C_KMS
        if abs(shift) < 0.1:
            break
    return float(z_c), ("estimated: biweight centre of the 3-sigma-clipped velocities in the cylinder, iterated "
                        f"from the median redshift of the {nearest.size} galaxies nearest the centre")


def members_from_field(field, centre, redshift=None, *, aperture=DEFAULT_APERTURE, v_cut=DEFAULT_V_CUT,
                       cosmology=None, cluster_id=0, rejection: str = DEFAULT_REJECTION) -> QTable:
    """A cluster's members from a redshift field: cylinder about a centre, then interloper rejection.

    Parameters
    ----------
    field : QTable, table or path
        From :func:`~astrobayes.clusters.io.read_redshift_field` (anything it reads is accepted).
    centre : SkyCoord or (Quantity, Quantity)
        The cluster's centre; (ra, dec) as angle Quantities. Bare numbers are refused.
    redshift : float, optional
        The cluster's redshift. If None it is estimated: start from the median
        redshift of the 25 galaxies nearest the centre, then take the biweight
        centre of the 3σ-clipped velocities in the cylinder and iterate until it
        moves by less than 0.1 km/s (``meta["redshift_source"]`` says which).
    aperture : Quantity
        Projected radius of the cylinder (default 1.6 Mpc, the mocks'; physical, at
        ``cosmology``), or an angle.
    v_cut : Quantity
        Half-length of the cylinder in rest-frame velocity (default 2500 km/s).
    cosmology : astropy cosmology, optional
        Default :data:`~astrobayes.clusters.halos.COSMOLOGY` (h = 0.7, like the mocks).
    cluster_id : int or str
        The ``cluster_id`` of every row.
    rejection : {"shifting_gapper", "sigma_clip", "none"}
        The interloper rejection (:func:`reject_interlopers`, default parameters);
        use the one the mass network was trained with.

    Returns
    -------
    QTable
        ``cluster_id``, ``galaxy_id`` (the row of ``field``), ``R_proj`` [Mpc],
        ``v_los`` [km/s, cluster rest frame], and from the field ``name``, ``ra``,
        ``dec``, ``redshift``, ``magnitude``, ``band`` — the member-catalog format of
        :func:`~astrobayes.clusters.io.read_member_catalog`. ``meta`` records
        ``centre``, ``redshift``, ``redshift_source``, ``cosmology``, ``aperture_Mpc``,
        ``aperture_deg``, ``v_cut_km_s``, ``aperture_uncovered_fraction`` (the share of
        the aperture's area beyond the field's galaxies; a UserWarning above 5 %),
        ``membership`` (method and parameters) and the counts ``n_field``,
        ``n_aperture``, ``n_cylinder``, ``n_rejected``, ``n_members``.

    Raises
    ------
    TypeError
        A centre without units.
    ValueError
        A centre outside the field, no galaxy within the aperture (the nearest
        one's distance is given), a redshift that puts no galaxy within
        ``v_cut``, fewer than 3 galaxies left, a galaxy name twice in the cylinder.

    Examples
    --------
    >>> from astrobayes.clusters import COMA_CENTRE, COMA_FIELD
    >>> coma = members_from_field(COMA_FIELD, COMA_CENTRE)
    >>> round(coma.meta["redshift"], 4), len(coma) > 1000
    (0.0233, True)
    """
    cosmology = COSMOLOGY if cosmology is None else cosmology
    if not hasattr(cosmology, "angular_diameter_distance"):
        raise TypeError(f"cosmology must be an astropy cosmology, got {type(cosmology).__name__}")
    if rejection not in REJECTION_METHODS:
        raise ValueError(f"rejection must be one of {REJECTION_METHODS}, got {rejection!r}")
    if isinstance(cluster_id, bool) or not isinstance(cluster_id, (int, np.integer, str)):
        raise TypeError(f"cluster_id must be one integer or string (the cluster_id of every row), got "
                        f"{cluster_id!r:.80}")
    position = _centre(centre)
    if not isinstance(aperture, u.Quantity):
        aperture = _positive(aperture, u.Mpc, "aperture") * u.Mpc
    elif aperture.unit.is_equivalent(u.deg):
        aperture = _positive(aperture, u.deg, "aperture") * u.deg
    else:
        aperture = _positive(aperture, u.Mpc, "aperture") * u.Mpc
    v_cut = _positive(v_cut, u.km / u.s, "v_cut")
    if v_cut > MAX_CLUSTER_VELOCITY:
        raise ValueError(f"v_cut = {v_cut:g} km/s is beyond any cluster's velocity range (≤ {MAX_CLUSTER_VELOCITY:g})")
    field = _field(field)
    coords = SkyCoord(field["ra"], field["dec"])
    separation = coords.separation(position).to_value(u.deg)
    # the field's footprint: its galaxies' mean direction and the largest distance from it
    mean = SkyCoord(*np.mean(coords.cartesian.xyz.value, axis=1), representation_type="cartesian")
    mean = SkyCoord(mean.represent_as("spherical").lon, mean.represent_as("spherical").lat)
    reach = float(coords.separation(mean).to_value(u.deg).max())
    if position.separation(mean).to_value(u.deg) > reach:
        raise ValueError(f"centre ({position.ra.deg:.4f}, {position.dec.deg:.4f}) deg lies outside the field, whose "
                         f"{len(field)} galaxies lie within {reach:.3g} deg of ({mean.ra.deg:.4f}, {mean.dec.deg:.4f}) "
                         f"deg (RA {field['ra'].to_value(u.deg).min():.2f}–{field['ra'].to_value(u.deg).max():.2f}, "
                         f"Dec {field['dec'].to_value(u.deg).min():.2f}–{field['dec'].to_value(u.deg).max():.2f}); "
                         "is the centre in degrees (not hours), and is it the right field?")
    z = np.asarray(field["redshift"], dtype=float)
    z_c = None if redshift is None else _given_redshift(redshift)
    nearest = int(np.argmin(separation))
    z_near = float(z[nearest]) if z_c is None else z_c
    if z_near > 0 and separation[nearest] > _angle_of(aperture, z_near, cosmology):
        distance = (np.radians(separation[nearest]) * cosmology.angular_diameter_distance(z_near)).to(u.Mpc)
        raise ValueError(f"no galaxy of the field lies within the aperture ({aperture:.4g}) of the centre "
                         f"({position.ra.deg:.4f}, {position.dec.deg:.4f}) deg: the nearest, "
                         f"{field['name'][nearest] if 'name' in field.colnames else nearest}, is "
                         f"{separation[nearest] * 60:.3g} arcmin away ({distance:.3g} at z = {z_near:.4g})")
    if z_c is None:
        z_c, source = _estimated_redshift(separation, z, aperture, v_cut, cosmology)
    else:
        source = "given"
    aperture_deg = _angle_of(aperture, z_c, cosmology)
    in_aperture = separation <= aperture_deg
    # a field that stops short of the aperture's edge gives an incomplete cylinder: the farthest galaxy from the
    # centre in each of 16 directions, and the share of the aperture's area beyond it
    sector = np.floor(position.position_angle(coords).to_value(u.deg) / 22.5).astype(np.int64) % 16
    reach_by_sector = np.zeros(16)
    np.maximum.at(reach_by_sector, sector, separation)
    uncovered = float(np.mean(1.0 - np.minimum(reach_by_sector / aperture_deg, 1.0) ** 2))
    if uncovered > _MAX_UNCOVERED:
        warnings.warn(f"about {uncovered:.0%} of the aperture ({aperture:.4g} = {aperture_deg:.3g} deg about the "
                      "centre) lies beyond the field's galaxies (in some directions the farthest is "
                      f"{reach_by_sector.min():.3g} deg away): the cylinder is incomplete, so the member count and dispersion describe part of the "
                      "cluster; use a smaller aperture, a centre further inside the field, or a larger field "
                      "(meta['aperture_uncovered_fraction'])", UserWarning, stacklevel=2)
    if not in_aperture.any():
        raise ValueError(f"no galaxy of the field lies within the aperture ({aperture:.4g} = {aperture_deg * 60:.3g} "
                         f"arcmin at z = {z_c:.4g}) of the centre: the nearest is {separation.min() * 60:.3g} "
                         "arcmin away")
    v = _C_KMS * (z - z_c) / (1 + z_c)
    cylinder = in_aperture & (np.abs(v) <= v_cut)
    if not cylinder.any():
        z_in = z[in_aperture]
        raise ValueError(f"redshift {z_c:.5g} puts none of the {int(in_aperture.sum())} galaxies within the aperture "
                         f"inside |v_los| ≤ {v_cut:g} km/s: their redshifts span {z_in.min():.4f}–{z_in.max():.4f} "
                         f"(median {np.median(z_in):.4f}); give the cluster's redshift, or leave redshift=None")
    rows = np.flatnonzero(cylinder)
    if "name" in field.colnames:  # a field stacked from two reads, say: the reader's own check is bypassed
        names = np.asarray(field["name"][rows], dtype=str)
        names, counts = np.unique(names[names != ""], return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"the cylinder holds {int((counts > 1).sum())} galaxy name(s) more than once "
                             f"({', '.join(repr(str(n)) for n in names[counts > 1][:5])}): a galaxy counted twice "
                             "biases the member count and the dispersion; remove the duplicate rows of the field")
    if rows.size < _MIN_GALAXIES:
        raise ValueError(f"only {rows.size} galaxies lie in the cylinder (R_proj ≤ {aperture:.4g}, |v_los| ≤ {v_cut:g} "
                         f"km/s about z = {z_c:.5g}); a velocity dispersion needs at least 3: widen the aperture or "
                         "check the centre and redshift")
    radius = projected_radius(field["ra"][rows], field["dec"][rows], position.ra, position.dec, z_c,
                              cosmology=cosmology)
    members = QTable({"cluster_id": np.full(rows.size, cluster_id), "galaxy_id": rows.astype(np.int64),
                      "R_proj": radius, "v_los": velocity_from_redshift(z[rows], z_c)})
    for name in ("name", "ra", "dec", "redshift", "magnitude", "band"):
        if name in field.colnames:
            members[name] = field[name][rows]
    members["R_proj"].info.description = "projected distance from the centre (physical, at the cluster's redshift)"
    members["v_los"].info.description = "line-of-sight velocity in the cluster's rest frame, c (z - z_c) / (1 + z_c)"
    members = reject_interlopers(members, method=rejection)
    if len(members) < _MIN_GALAXIES:
        raise ValueError(f"only {len(members)} galaxies are left in the cylinder (R_proj ≤ {aperture:.4g}, |v_los| ≤ "
                         f"{v_cut:g} km/s about z = {z_c:.5g}) after interloper rejection; a velocity dispersion needs "
                         "at least 3: widen the aperture or check the centre and redshift")
    membership = members.meta.get("membership", {"method": rejection})
    aperture_mpc = (np.radians(aperture_deg) * cosmology.angular_diameter_distance(z_c)).to_value(u.Mpc)
    members.meta = {"catalog_source": field.meta.get("catalog_source"),
                    "centre": {"ra_deg": float(position.ra.deg), "dec_deg": float(position.dec.deg)},
                    "redshift": z_c, "redshift_source": source, "cosmology": describe_cosmology(cosmology),
                    "aperture_Mpc": float(aperture_mpc), "aperture_deg": float(aperture_deg), "v_cut_km_s": v_cut,
                    "aperture_uncovered_fraction": uncovered,
                    "membership": membership, "n_field": len(field), "n_aperture": int(in_aperture.sum()),
                    "n_cylinder": int(rows.size), "n_rejected": int(rows.size - len(members)),
                    "n_members": len(members), "astrobayes_version": __version__}
    if SOURCES_KEY in field.meta:
        members.meta[SOURCES_KEY] = list(field.meta[SOURCES_KEY])  # writers refuse to write over the field's file
    return members
