"""Reading and writing stellar catalogs: luminosities, temperatures and radii with units.

A stellar catalog arrives as ECSV, FITS or CSV, or as an astropy table or a
pandas DataFrame built elsewhere. :func:`read_stellar_catalog` turns any of
these into a :class:`~astropy.table.QTable` with standard column names and
units, so that the rest of :mod:`astrobayes.stars` never has to guess:

=================  ==========  ==========================================
column             unit        meaning
=================  ==========  ==========================================
``luminosity``     solLum      measured bolometric luminosity L̂
``luminosity_err`` solLum      its 1σ uncertainty (required)
``teff``           K           effective temperature (optional)
``teff_err``       K           its uncertainty (optional)
``radius``         solRad      stellar radius (optional)
``radius_err``     solRad      its uncertainty (optional)
``parallax``       mas         parallax; may be negative (optional)
``parallax_err``   mas         its uncertainty (optional)
=================  ==========  ==========================================

solLum and solRad are astropy's IAU 2015 nominal values (L_sun = 3.828e26 W,
R_sun = 6.957e8 m), the same as ``astropy.constants``. Every other column is
kept as it is. Bad input raises a ``ValueError`` that names the column:
a missing column (listing those available), a value without a unit, a unit
of the wrong kind, NaN or masked rows (dropped only with ``drop_nan=True``,
with a warning saying how many), non-positive luminosities, temperatures or
radii, non-positive uncertainties, and luminosities, temperatures or radii
that no star has (outside :data:`PLAUSIBLE_RANGES`), whose message names the
unit mistake that usually causes them (watts labelled solLum, log Teff as K).
"""
from __future__ import annotations

import warnings
from pathlib import Path  # noqa: F401  (used by the doctest)

import astropy.units as u
import numpy as np
from astropy.table import QTable

from astrobayes.core.tables import check_columns, column_values, read_table, resolve_unit, write_table
from astrobayes.core.validation import describe_rows

__all__ = ["PLAUSIBLE_RANGES", "STANDARD_UNITS", "read_stellar_catalog", "write_stellar_catalog"]

#: standard column name → (unit, what it is, whether it must be positive)
STANDARD_UNITS = {
    "luminosity": (u.solLum, "a luminosity (a power such as solLum, W or erg/s)", True),
    "luminosity_err": (u.solLum, "a luminosity uncertainty (a power such as solLum, W or erg/s)", True),
    "teff": (u.K, "a temperature (K)", True),
    "teff_err": (u.K, "a temperature uncertainty (K)", True),
    "radius": (u.solRad, "a radius (a length such as solRad or km)", True),
    "radius_err": (u.solRad, "a radius uncertainty (a length such as solRad or km)", True),
    "parallax": (u.mas, "a parallax (an angle such as mas)", False),
    "parallax_err": (u.mas, "a parallax uncertainty (an angle such as mas)", True),
}

#: the values a single star can have, in the standard units (from brown dwarfs to the brightest supergiants, from
#: neutron stars to red supergiants, with room to spare); a value outside is a unit labelled wrongly
PLAUSIBLE_RANGES = {"luminosity": (1e-8, 1e10), "teff": (100.0, 1e7), "radius": (1e-6, 1e5)}

# what a value beyond each end of PLAUSIBLE_RANGES usually means
_UNIT_MISTAKES = {
    ("luminosity", "high"): "luminosities in W or erg/s labelled solLum",
    ("luminosity", "low"): "luminosities in solLum labelled W or erg/s",
    ("teff", "high"): "temperatures in a unit other than K",
    ("teff", "low"): "log10(Teff) or kK labelled K",
    ("radius", "high"): "radii in km or m labelled solRad",
    ("radius", "low"): "radii in solRad labelled km or m",
}


def _check_plausible(values, rows, standard: str, spec: tuple, low: float, high: float) -> None:
    """Refuse values no star has, with the unit mistake that usually causes them and how to fix it."""
    name, _, given_arg = spec
    for end, outside in (("low", values < low), ("high", values > high)):
        if outside.any():
            extreme = values[outside].min() if end == "low" else values[outside].max()
            unit = STANDARD_UNITS[standard][0]
            raise ValueError(f"column {name!r} ({standard}) has {int(outside.sum())} value(s) no star has (e.g. "
                             f"{extreme:.4g} {unit} in rows {describe_rows(rows[outside])}; stars lie within "
                             f"{low:g}–{high:g} {unit}). These look like {_UNIT_MISTAKES[standard, end]}: give the "
                             f"column its true unit (or pass {given_arg}= for a column without one)")


def read_stellar_catalog(source, *, luminosity: str = "luminosity", luminosity_err: str | None = "luminosity_err",
                         teff: str | None = None, teff_err: str | None = None, radius: str | None = None,
                         radius_err: str | None = None, parallax: str | None = None,
                         parallax_err: str | None = None, luminosity_unit=None, teff_unit=None, radius_unit=None,
                         parallax_unit=None, format: str | None = None, drop_nan: bool = False) -> QTable:
    """Read a stellar catalog into a QTable with standard column names and units.

    Parameters
    ----------
    source : str, path, astropy Table/QTable or pandas DataFrame
        A file (ECSV, FITS or CSV; the format is guessed from the suffix
        unless ``format`` is given) or a table already in memory.
    luminosity, luminosity_err : str
        Names of the luminosity column and its 1σ uncertainty in ``source``;
        ``luminosity_err=None`` for a catalog without uncertainties.
    teff, teff_err, radius, radius_err, parallax, parallax_err : str or None
        Names of optional columns to validate and standardise.
    luminosity_unit, teff_unit, radius_unit, parallax_unit : str or Unit
        Units for columns that have none (CSV, DataFrame), e.g.
        ``luminosity_unit="W"``; they apply to a value and its uncertainty.
        Giving one for a column that has a different unit is an error.
    format : str or None
        Passed to :meth:`astropy.table.QTable.read`.
    drop_nan : bool
        Drop rows with NaN or masked entries in the columns above (with a
        ``UserWarning`` saying how many) instead of raising.

    Returns
    -------
    QTable
        Renamed columns ``luminosity`` [solLum], ``luminosity_err``
        [solLum], and where asked ``teff``/``teff_err`` [K],
        ``radius``/``radius_err`` [solRad], ``parallax``/``parallax_err``
        [mas]; other columns unchanged. ``meta["catalog_source"]`` and
        ``meta["catalog_columns"]`` (standard name → original name) record
        the provenance, ``meta["dropped_rows"]`` the dropped row indices.

    Raises
    ------
    ValueError
        Missing column, missing or wrong unit, NaN rows (unless
        ``drop_nan``), non-positive values or uncertainties, values outside
        :data:`PLAUSIBLE_RANGES` (a unit labelled wrongly: the message says which).

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import QTable
    >>> raw = QTable({"L": [3.828e26, 7.656e26] * u.W, "L_err": [1e25, 2e25] * u.W, "name": ["a", "b"]})
    >>> catalog = read_stellar_catalog(raw, luminosity="L", luminosity_err="L_err")
    >>> catalog["luminosity"]
    <Quantity [1., 2.] solLum>
    >>> catalog.colnames
    ['luminosity', 'luminosity_err', 'name']
    """
    table, described = read_table(source, format, "stellar catalog")
    if not isinstance(drop_nan, bool):
        raise TypeError(f"drop_nan must be True or False, got {drop_nan!r}")
    requested = {"luminosity": (luminosity, luminosity_unit, "luminosity_unit"),
                 "luminosity_err": (luminosity_err, luminosity_unit, "luminosity_unit"),
                 "teff": (teff, teff_unit, "teff_unit"), "teff_err": (teff_err, teff_unit, "teff_unit"),
                 "radius": (radius, radius_unit, "radius_unit"), "radius_err": (radius_err, radius_unit, "radius_unit"),
                 "parallax": (parallax, parallax_unit, "parallax_unit"),
                 "parallax_err": (parallax_err, parallax_unit, "parallax_unit")}
    requested = {standard: spec for standard, spec in requested.items() if spec[0] is not None}
    if not isinstance(luminosity, str):
        raise TypeError(f"luminosity must be a column name, got {luminosity!r}")
    check_columns(table, {standard: spec[0] for standard, spec in requested.items()},
                  {standard: standard for standard in requested}, described, "stellar catalog")

    columns = {}
    for standard, (name, given, given_arg) in requested.items():
        values, unit = column_values(table, name, row="star")
        target, kind, _ = STANDARD_UNITS[standard]
        unit = resolve_unit(name, standard, unit, given, given_arg, target, kind)
        columns[standard] = (values * unit).to(STANDARD_UNITS[standard][0])

    bad = np.zeros(len(table), dtype=bool)
    for quantity in columns.values():
        bad |= ~np.isfinite(quantity.value)
    dropped = np.flatnonzero(bad)
    if dropped.size:
        involved = [requested[s][0] for s, q in columns.items() if not np.isfinite(q.value).all()]
        message = (f"{dropped.size} of {len(table)} row(s) with NaN, inf or masked values in column(s) {involved} "
                   f"(rows {describe_rows(dropped)})")
        if not drop_nan:
            raise ValueError(f"the catalog has {message}; pass drop_nan=True to drop them")
        warnings.warn(f"dropping {message}", UserWarning, stacklevel=2)
    keep = ~bad
    if not keep.any():
        raise ValueError(f"the catalog from {described} has no usable rows ({len(table)} row(s) read, "
                         f"{dropped.size} dropped for NaN/masked values)")
    original_rows = np.flatnonzero(keep)

    for standard, quantity in columns.items():
        if not STANDARD_UNITS[standard][2]:
            continue
        rows = original_rows[quantity.value[keep] <= 0]
        if rows.size:
            what = "uncertainties" if standard.endswith("_err") else "values"
            raise ValueError(f"column {requested[standard][0]!r} ({standard}) has {rows.size} non-positive "
                             f"{what} (rows {describe_rows(rows)}); {standard} must be positive")
    for standard, (low, high) in PLAUSIBLE_RANGES.items():
        if standard in columns:
            _check_plausible(columns[standard].value[keep], original_rows, standard, requested[standard], low, high)

    out = table[keep] if dropped.size else table
    for standard, quantity in columns.items():
        name = requested[standard][0]
        position = out.colnames.index(name)
        out.remove_column(name)
        out.add_column(quantity[keep], name=standard, index=position)
    out.meta["catalog_source"] = described
    out.meta["catalog_columns"] = {standard: spec[0] for standard, spec in requested.items()}
    out.meta["dropped_rows"] = [int(i) for i in dropped]
    return out


def write_stellar_catalog(table, path, *, overwrite: bool = False, format: str | None = None) -> None:
    """Write a stellar catalog; ECSV and FITS keep the units, CSV does not (a warning says so).

    Parameters
    ----------
    table : QTable or Table
        Usually the output of :func:`read_stellar_catalog`.
    path : str or path
        Output file; the format follows the suffix unless ``format`` is given.
    overwrite : bool
        Replace an existing file.

    Examples
    --------
    >>> import tempfile, astropy.units as u
    >>> from astropy.table import QTable
    >>> catalog = QTable({"luminosity": [1.0, 2.0] * u.solLum, "luminosity_err": [0.1, 0.1] * u.solLum})
    >>> path = Path(tempfile.mkdtemp()) / "stars.ecsv"
    >>> write_stellar_catalog(catalog, path)
    >>> read_stellar_catalog(path)["luminosity"]
    <Quantity [1., 2.] solLum>
    """
    write_table(table, path, overwrite=overwrite, format=format,
                provenance_keys=("catalog_source", "catalog_columns", "dropped_rows"),
                reader_hint=", e.g. read_stellar_catalog(path, luminosity_unit='solLum')")
