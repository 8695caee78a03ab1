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
radii, and non-positive uncertainties.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io.registry import IORegistryError
from astropy.table import QTable, Table

from astrobayes.core.validation import describe_rows

__all__ = ["STANDARD_UNITS", "read_stellar_catalog", "write_stellar_catalog"]

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


def _as_qtable(source, format: str | None) -> tuple[QTable, str]:
    """The source as a new QTable, and a short description of where it came from."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no stellar catalog at {str(path)!r}")
        try:
            return QTable.read(path, format=format), str(path)
        except (OSError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, IORegistryError) as err:
            # astropy raises many kinds for unreadable files; say which file and why
            raise ValueError(f"could not read {str(path)!r} as a table ({type(err).__name__}: {err}); "
                             "ECSV, FITS and CSV are supported, pass format= if the suffix is unusual") from None
    if isinstance(source, Table):
        return QTable(source, copy=True), f"an astropy {type(source).__name__}"
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):  # a pandas DataFrame
        return QTable.from_pandas(source), "a pandas DataFrame"
    raise TypeError(f"source must be a path to an ECSV/FITS/CSV file, an astropy Table/QTable or a pandas "
                    f"DataFrame, got {type(source).__name__}")


def _column_values(table: QTable, name: str) -> tuple[np.ndarray, u.UnitBase | None]:
    """Float values of a column (NaN where masked) and its unit (None when it has none)."""
    column = table[name]
    unit = getattr(column, "unit", None)
    if isinstance(column, u.Quantity):
        mask = np.asarray(getattr(column, "mask", False))
        column = getattr(column, "unmasked", column).value
    else:
        mask = np.ma.getmaskarray(column)
        column = np.ma.getdata(column)
    array = np.asarray(column)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"column {name!r} must be numeric, got dtype {array.dtype} (e.g. {array.flat[0]!r})")
    if array.ndim != 1:
        raise ValueError(f"column {name!r} must hold one number per star, got shape {array.shape}")
    values = array.astype(np.float64)
    values[np.broadcast_to(mask, values.shape)] = np.nan
    if unit is not None and u.Unit(unit) == u.dimensionless_unscaled:
        unit = None  # a dimensionless number is as unit-less as a CSV column
    return values, unit


def _resolve_unit(name: str, standard: str, unit, given, given_arg: str) -> u.UnitBase:
    """The unit of a column: its own, else the one given as ``<quantity>_unit=``, else an error."""
    target, kind, _ = STANDARD_UNITS[standard]
    if given is not None:
        try:
            given = u.Unit(given)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{given_arg}={given!r} is not a unit astropy understands ({err})") from None
    if unit is None:
        if given is None:
            quantity = standard.removesuffix("_err")
            raise ValueError(f"column {name!r} ({standard}) has no unit; CSV files and DataFrames carry none. "
                             f"Pass {given_arg}= (e.g. {given_arg}={target.to_string()!r}) or use a table with "
                             f"units (ECSV, FITS, QTable) for the {quantity} columns")
        unit = given
    elif given is not None and u.Unit(unit) != given:
        raise ValueError(f"column {name!r} already has unit {unit}, but {given_arg}={given.to_string()!r} was "
                         "given; drop the argument or fix the column's unit")
    unit = u.Unit(unit) if not isinstance(unit, u.UnitBase) else unit
    if isinstance(unit, u.UnrecognizedUnit):
        raise ValueError(f"column {name!r} has unit {unit.to_string()!r}, which astropy does not recognise; "  # noqa: TRY004
                         f"expected {kind}")
    if isinstance(unit, u.FunctionUnitBase):
        raise ValueError(f"column {name!r} has the logarithmic unit {unit}; give {standard} as linear values "  # noqa: TRY004
                         f"in {target} (convert the uncertainty consistently)")
    # no temperature equivalency: an offset scale (deg_C) would shift uncertainties too
    if not unit.is_equivalent(target):
        raise ValueError(f"column {name!r} has unit {unit}, which is not {kind}")
    return unit


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
        ``drop_nan``), non-positive values or uncertainties.

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
    table, described = _as_qtable(source, format)
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
    for standard, (name, _, _) in requested.items():
        if not isinstance(name, str):
            raise TypeError(f"{standard} must be a column name or None, got {name!r}")
        if name not in table.colnames:
            raise ValueError(f"the catalog from {described} has no {standard} column {name!r}; available columns: "
                             f"{table.colnames}" + (f" (pass {standard}=<name>)" if standard == name else ""))
    names = [spec[0] for spec in requested.values()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"column(s) {repeated} were given for more than one quantity")
    for standard, (name, _, _) in requested.items():
        if standard in table.colnames and standard != name:
            raise ValueError(f"the catalog already has a column {standard!r} besides {name!r}, which is to be "
                             f"renamed {standard!r}; rename or remove one of them first")

    columns = {}
    for standard, (name, given, given_arg) in requested.items():
        values, unit = _column_values(table, name)
        unit = _resolve_unit(name, standard, unit, given, given_arg)
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
    if not isinstance(table, Table):
        raise TypeError(f"table must be an astropy Table or QTable, got {type(table).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name, got {type(path).__name__}")
    path = Path(path)
    is_csv = (format or "").endswith("csv") if format else path.suffix.lower() == ".csv"
    with_units = [name for name in table.colnames if getattr(table[name], "unit", None) not in (None, u.one)]
    if is_csv and with_units:
        units = ", ".join(f"{name} [{table[name].unit}]" for name in with_units)
        warnings.warn(f"CSV keeps no units; reading {path.name} back needs them given again ({units}), e.g. "
                      "read_stellar_catalog(path, luminosity_unit='solLum'). ECSV and FITS keep them.",
                      UserWarning, stacklevel=2)
    # FITS headers cannot hold the provenance dicts and lists (nor keys this long), CSV no meta at all; ECSV keeps them
    out = table.copy(copy_data=False)
    if not (format or path.suffix.lower()).endswith("ecsv"):
        for key in ("catalog_source", "catalog_columns", "dropped_rows"):
            out.meta.pop(key, None)
    out.write(path, format=format, overwrite=overwrite)
