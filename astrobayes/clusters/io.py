"""Reading member-galaxy catalogs: one row per galaxy, grouped by cluster, with units.

:func:`read_member_catalog` turns an ECSV/FITS/CSV file, an astropy table or a
pandas DataFrame into a :class:`~astropy.table.QTable` with standard column
names and units, so that :mod:`astrobayes.clusters.features` never has to guess:

===============  =======  ====================================================
column           unit     meaning
===============  =======  ====================================================
``cluster_id``            which cluster the galaxy was selected around
``galaxy_id``             the galaxy's identifier (optional; must be unique)
``R_proj``       Mpc      projected (physical) distance from the cluster centre
``v_los``        km/s     line-of-sight velocity in the cluster frame
``v_los_err``    km/s     its 1σ uncertainty (optional)
===============  =======  ====================================================

Catalogs that give redshifts instead of velocities convert them first with
:func:`velocity_from_redshift`, and sky positions with :func:`projected_radius`
(in the domain's one cosmology, :data:`~astrobayes.clusters.halos.COSMOLOGY`, h = 0.7
like the mocks). A field of galaxies with sky positions and redshifts — a
NED/IPAC pipe table such as the shipped Coma field, or any table with
``ra``, ``dec`` and ``redshift`` — is read by :func:`~astrobayes.clusters.fields.read_redshift_field`, and
:func:`~astrobayes.clusters.membership.members_from_field` selects a cluster's
members from it.
Bad input raises a ``ValueError`` naming the column: a missing column, a
velocity or radius without a unit or with a unit of the wrong kind (a velocity
in km or a redshift column passed as a velocity), NaN or masked rows (dropped
only with ``drop_nan=True``, with a warning giving the count), negative radii,
non-positive uncertainties and duplicated galaxy identifiers. Clusters with too
few members are *not* an error here: :func:`~astrobayes.clusters.features.cluster_features`
reports them with a flag.
"""
from __future__ import annotations

import warnings
from pathlib import Path  # noqa: F401  (used by the doctest)

import astropy.constants as const
import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from astrobayes.clusters.halos import COSMOLOGY
from astrobayes.core.tables import check_columns, column_values, native_array, read_table, resolve_unit, write_table
from astrobayes.core.validation import describe_rows

__all__ = ["MAX_REDSHIFT", "MEMBER_COLUMNS", "check_unique_galaxies", "projected_radius", "read_member_catalog",
           "velocity_from_redshift", "write_member_catalog"]

#: standard column → (unit, what it is)
MEMBER_COLUMNS = {
    "R_proj": (u.Mpc, "a length (Mpc, kpc, ...) for a projected radius"),
    "v_los": (u.km / u.s, "a velocity (km/s, m/s, ...)"),
    "v_los_err": (u.km / u.s, "a velocity (km/s, m/s, ...)"),
}

_PROVENANCE = ("catalog_source", "catalog_columns", "dropped_rows")

#: a redshift above this is taken for a velocity cz (km/s) given as a redshift
MAX_REDSHIFT = 20.0


def velocity_from_redshift(redshift, cluster_redshift) -> u.Quantity:
    """Line-of-sight velocity in the cluster frame, v = c (z − z_c) / (1 + z_c), in km/s.

    Parameters
    ----------
    redshift, cluster_redshift : float or array
        Galaxy and cluster redshifts (plain numbers). A value above
        :data:`MAX_REDSHIFT` (a velocity cz in km/s given as a redshift) or a
        Quantity with a velocity unit is refused with a message saying so.

    Examples
    --------
    >>> velocity_from_redshift([0.1010, 0.0990], 0.1)
    <Quantity [ 272.538..., -272.538...] km / s>
    """
    z, z_c = _redshifts(redshift, "redshift"), _redshifts(cluster_redshift, "cluster_redshift")
    if (z_c <= -1).any():
        raise ValueError("cluster_redshift must be > -1")
    try:
        return (const.c * (z - z_c) / (1 + z_c)).to(u.km / u.s)
    except ValueError as err:  # numpy: shapes that do not broadcast
        raise ValueError(f"redshift (shape {z.shape}) and cluster_redshift (shape {z_c.shape}) must be one value "
                         f"each or arrays of one shape ({err})") from None


def _redshifts(values, argument: str) -> np.ndarray:
    """Redshifts as floats; a velocity, text, NaN or a value beyond any galaxy's is an error naming ``argument``."""
    unit = getattr(values, "unit", None)
    if unit is not None and u.Unit(unit).physical_type not in ("dimensionless", "redshift"):
        raise ValueError(f"{argument} has unit {unit}, so it is not a redshift; velocities relative to the cluster "
                         "go straight into the v_los column (read_member_catalog)")
    try:
        z = np.asarray(getattr(values, "value", values), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be numbers (redshifts), got {values!r:.80}") from None
    if not np.isfinite(z).all():
        raise ValueError(f"{argument} must be finite, got {int((~np.isfinite(z)).sum())} NaN or inf value(s)")
    if z.size and z.max() > MAX_REDSHIFT:
        raise ValueError(f"{argument} reaches {z.max():.6g}, beyond any galaxy's redshift: if these are recession "
                         "velocities cz in km/s, divide them by c = 299792.458 km/s (or use them as velocities)")
    return z


def projected_radius(ra, dec, cluster_ra, cluster_dec, cluster_redshift, cosmology=None) -> u.Quantity:
    """Projected physical distance from the cluster centre, in Mpc: angular separation × D_A(z_c).

    Parameters
    ----------
    ra, dec, cluster_ra, cluster_dec : Quantity (angles) or float (degrees)
        Declinations within ±90 deg.
    cluster_redshift : float or array
        Positive (at z ≤ 0 the angular-diameter distance is zero or negative).
    cosmology : astropy.cosmology.Cosmology, optional
        Default: :data:`~astrobayes.clusters.halos.COSMOLOGY`, flat ΛCDM with
        H₀ = 70 km/s/Mpc and Ω_m = 0.3 — the h = 0.7 of the mocks, so that an
        aperture in Mpc means the same on real and simulated clusters (Planck18,
        h = 0.677, gives radii 3 % larger).

    Examples
    --------
    >>> projected_radius(150.01, 2.0, 150.0, 2.0, 0.1)       # 36 arcsec at z = 0.1
    <Quantity 0.06635... Mpc>
    """
    cosmology = COSMOLOGY if cosmology is None else cosmology
    if not hasattr(cosmology, "angular_diameter_distance"):
        raise TypeError(f"cosmology must be an astropy cosmology (e.g. astropy.cosmology.FlatLambdaCDM), got "
                        f"{type(cosmology).__name__}")
    angles = {}
    for argument, value, limit in (("ra", ra, None), ("dec", dec, 90.0), ("cluster_ra", cluster_ra, None),
                                   ("cluster_dec", cluster_dec, 90.0)):
        try:
            angle = u.Quantity(value, u.deg)
        except (u.UnitsError, TypeError, ValueError):
            raise ValueError(f"{argument} must be an angle (a Quantity in deg, rad, ... or numbers in degrees), got "
                             f"{value!r:.80}") from None
        if not np.isfinite(angle.value).all() or (limit is not None and (np.abs(angle.to_value(u.deg)) > limit).any()):
            raise ValueError(f"{argument} must be finite" + (" and within ±90 deg (a declination)" if limit else ""))
        angles[argument] = angle
    z_c = _redshifts(cluster_redshift, "cluster_redshift")
    if (z_c <= 0).any():  # D_A(z ≤ 0) is zero or negative: no projected distance
        raise ValueError(f"cluster_redshift must be > 0 for a projected radius, got {z_c.min():g}")
    try:
        separation = SkyCoord(angles["ra"], angles["dec"]).separation(
            SkyCoord(angles["cluster_ra"], angles["cluster_dec"]))
        return (separation.to_value(u.rad) * cosmology.angular_diameter_distance(z_c)).to(u.Mpc)
    except ValueError as err:  # shapes that do not broadcast
        raise ValueError(f"ra, dec, cluster_ra, cluster_dec and cluster_redshift must be single values or arrays "
                         f"of one shape ({err})") from None


def read_member_catalog(source, *, cluster_id: str = "cluster_id", radius: str = "R_proj",
                        velocity: str = "v_los", velocity_err: str | None = None, galaxy_id: str | None = None,
                        radius_unit=None, velocity_unit=None, format: str | None = None,
                        drop_nan: bool = False) -> QTable:
    """Read a member-galaxy catalog into a QTable with standard column names and units.

    Parameters
    ----------
    source : str, path, astropy Table/QTable or pandas DataFrame
        A file (ECSV, FITS or CSV) or a table in memory, one row per galaxy.
    cluster_id, radius, velocity : str
        Names of the cluster identifier, projected radius and line-of-sight
        velocity columns in ``source``.
    velocity_err, galaxy_id : str or None
        Names of optional velocity-uncertainty and galaxy-identifier columns.
        Galaxy identifiers must be unique within a cluster.
    radius_unit, velocity_unit : str or Unit
        Units for columns that carry none (CSV, DataFrame), e.g.
        ``velocity_unit="km/s"``; the velocity unit also applies to its
        uncertainty. A unit given for a column that has another is an error.
    format : str or None
        Passed to :meth:`astropy.table.QTable.read`.
    drop_nan : bool
        Drop rows with NaN or masked values in the columns above (with a
        ``UserWarning`` saying how many) instead of raising.

    Returns
    -------
    QTable
        ``cluster_id``, ``galaxy_id`` (if given), ``R_proj`` [Mpc], ``v_los``
        [km/s], ``v_los_err`` [km/s] (if given); other columns unchanged.
        ``meta["catalog_source"]``, ``meta["catalog_columns"]`` (standard
        name → original name) and ``meta["dropped_rows"]`` record provenance.

    Raises
    ------
    ValueError
        Missing column, missing or wrong unit, NaN rows (unless ``drop_nan``),
        negative radii, non-positive uncertainties, duplicated galaxy ids.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"halo": [7, 7, 9], "r_kpc": [120.0, 800.0, 300.0], "vz": [-310.0, 150.0, 40.0]})
    >>> members = read_member_catalog(raw, cluster_id="halo", radius="r_kpc", velocity="vz",
    ...                               radius_unit="kpc", velocity_unit="km/s")
    >>> members["R_proj"]
    <Quantity [0.12, 0.8 , 0.3 ] Mpc>
    >>> members.colnames
    ['cluster_id', 'R_proj', 'v_los']
    """
    table, described = read_table(source, format, "member catalog")
    if not isinstance(drop_nan, bool):
        raise TypeError(f"drop_nan must be True or False, got {drop_nan!r}")
    requested = {"cluster_id": cluster_id, "galaxy_id": galaxy_id, "R_proj": radius, "v_los": velocity,
                 "v_los_err": velocity_err}
    arguments = {"cluster_id": "cluster_id", "galaxy_id": "galaxy_id", "R_proj": "radius", "v_los": "velocity",
                 "v_los_err": "velocity_err"}
    requested = {standard: name for standard, name in requested.items() if name is not None}
    check_columns(table, requested, arguments, described, "member catalog")

    units = {"R_proj": (radius_unit, "radius_unit"), "v_los": (velocity_unit, "velocity_unit"),
             "v_los_err": (velocity_unit, "velocity_unit")}
    columns = {}
    for standard, (given, given_arg) in units.items():
        if standard not in requested:
            continue
        name = requested[standard]
        values, unit = column_values(table, name, row="galaxy")
        target, kind = MEMBER_COLUMNS[standard]
        unit = resolve_unit(name, standard, unit, given, given_arg, target, kind)
        columns[standard] = (values * unit).to(target)

    bad = np.zeros(len(table), dtype=bool)
    for quantity in columns.values():
        bad |= ~np.isfinite(quantity.value)
    for standard in ("cluster_id", "galaxy_id"):
        if standard in requested:
            column = table[requested[standard]]
            bad |= np.ma.getmaskarray(column)
            if np.asarray(column).dtype.kind == "f":
                bad |= ~np.isfinite(np.ma.getdata(column))
    dropped = np.flatnonzero(bad)
    if dropped.size:
        message = (f"{dropped.size} of {len(table)} row(s) with NaN, inf or masked values in the columns "
                   f"{sorted(requested.values())} (rows {describe_rows(dropped)})")
        if not drop_nan:
            raise ValueError(f"the member catalog has {message}; pass drop_nan=True to drop them")
        warnings.warn(f"dropping {message}", UserWarning, stacklevel=2)
    keep = ~bad
    if not keep.any():
        raise ValueError(f"the member catalog from {described} has no usable rows ({len(table)} row(s) read)")
    rows = np.flatnonzero(keep)

    negative = rows[columns["R_proj"].value[keep] < 0]
    if negative.size:
        raise ValueError(f"column {radius!r} (R_proj) has {negative.size} negative projected radii "
                         f"(rows {describe_rows(negative)})")
    if "v_los_err" in columns:
        nonpositive = rows[columns["v_los_err"].value[keep] <= 0]
        if nonpositive.size:
            raise ValueError(f"column {velocity_err!r} (v_los_err) has {nonpositive.size} non-positive "
                             f"uncertainties (rows {describe_rows(nonpositive)})")

    out = table[keep] if dropped.size else table
    if "galaxy_id" in requested:
        check_unique_galaxies(out[requested["cluster_id"]], out[requested["galaxy_id"]], requested["galaxy_id"], rows)
    for standard, name in requested.items():
        position = out.colnames.index(name)
        column = columns[standard][keep] if standard in columns else out[name]
        out.remove_column(name)
        out.add_column(column, name=standard, index=position)
    order = ["cluster_id", "galaxy_id", "R_proj", "v_los", "v_los_err"]
    standard_first = [c for c in order if c in out.colnames] + [c for c in out.colnames if c not in order]
    out = out[standard_first]
    out.meta["catalog_source"] = described
    out.meta["catalog_columns"] = dict(requested)
    out.meta["dropped_rows"] = [int(i) for i in dropped]
    return out


def check_unique_galaxies(cluster_ids, galaxy_ids, column: str = "galaxy_id", rows=None) -> None:
    """Raise a ValueError naming them when a galaxy id appears twice in one cluster (a galaxy counted twice).

    ``rows`` are the row numbers to quote (default 0, 1, ...). The same id in
    two different clusters is allowed (overlapping cylinders).

    Examples
    --------
    >>> check_unique_galaxies([1, 1, 2], [10, 11, 10])       # fine: galaxy 10 is in two clusters
    >>> check_unique_galaxies([1, 1], [10, 10])
    Traceback (most recent call last):
    ...
    ValueError: column 'galaxy_id' (galaxy_id) has 1 galaxy id(s) listed more than once within a cluster: galaxy 10 of cluster 1 in rows 0, 1; a galaxy counted twice within a cluster biases its dispersion
    """
    cluster_ids, galaxy_ids = native_array(cluster_ids), native_array(galaxy_ids)
    rows = np.arange(len(cluster_ids)) if rows is None else np.asarray(rows)
    frame = pd.DataFrame({"cluster": cluster_ids, "galaxy": galaxy_ids, "row": rows})
    repeated = frame[frame.duplicated(["cluster", "galaxy"], keep=False)]
    if len(repeated):
        groups = list(repeated.groupby(["cluster", "galaxy"], sort=False)["row"])
        shown = "; ".join(f"galaxy {g!r} of cluster {c!r} in rows {describe_rows(r.to_numpy(), 4)}"
                          for (c, g), r in groups[:5])
        more = f" ({len(groups) - 5} more)" if len(groups) > 5 else ""
        raise ValueError(f"column {column!r} (galaxy_id) has {len(groups)} galaxy id(s) listed more than once "
                         f"within a cluster: {shown}{more}; a galaxy counted twice within a cluster biases its "
                         "dispersion")


def write_member_catalog(table, path, *, overwrite: bool = False, format: str | None = None) -> None:
    """Write a member catalog; ECSV and FITS keep the units, CSV does not (a warning says so).

    Examples
    --------
    >>> import tempfile
    >>> members = QTable({"cluster_id": [1, 1], "R_proj": [0.2, 0.5] * u.Mpc, "v_los": [100., -50.] * u.km / u.s})
    >>> path = Path(tempfile.mkdtemp()) / "members.ecsv"
    >>> write_member_catalog(members, path)
    >>> read_member_catalog(path)["v_los"]
    <Quantity [100., -50.] km / s>
    """
    write_table(table, path, overwrite=overwrite, format=format, provenance_keys=_PROVENANCE,
                reader_hint=", e.g. read_member_catalog(path, radius_unit='Mpc', velocity_unit='km/s')")

