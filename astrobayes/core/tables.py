"""Catalogs at the boundary: reading tables from files or memory, column values and units.

Every domain reader (stars, clusters, ...) accepts the same sources — an
ECSV/FITS/CSV file, an astropy Table/QTable or a pandas DataFrame — and needs
the same three checks: that a column is numeric and one number per row, that
it has a unit of the right kind (or one given by the caller for unit-less CSV
columns), and that the file could be read at all. They live here once.
"""
from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io.registry import IORegistryError
from astropy.table import QTable, Table

from .paths import SOURCES_KEY, check_not_input, read_sources, remember_sources

__all__ = ["read_table", "check_columns", "column_values", "native_array", "resolve_unit", "write_table",
           "did_you_mean"]


def did_you_mean(name: str, names) -> str:
    """A hint naming the entries of ``names`` closest to ``name`` (``""`` when none is close).

    Examples
    --------
    >>> did_you_mean("G_R", ["g_r", "r_i", "source_id"])
    " (did you mean 'g_r'?)"
    >>> did_you_mean("redshift", ["ra", "dec"])
    ''
    """
    import difflib

    names = [str(n) for n in names]
    by_case = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(str(name).casefold(), list(by_case), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(by_case[c]) for c in close)}?)" if close else ""


def read_table(source, format: str | None, what: str = "catalog") -> tuple[QTable, str]:
    """The source as a new QTable, and a short description of where it came from.

    Examples
    --------
    >>> import pandas as pd
    >>> table, described = read_table(pd.DataFrame({"a": [1, 2]}), None)
    >>> described, table["a"].tolist()
    ('a pandas DataFrame', [1, 2])
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no {what} at {str(path)!r}")
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a folder, not a {what} file (ECSV, FITS or CSV)")
        try:
            table = QTable.read(path, format=format)
        except (OSError, EOFError, zlib.error, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError,
                IORegistryError) as err:  # EOFError, zlib.error: a truncated or corrupted .gz file
            # astropy raises many kinds for unreadable files; say which file and why, in one line (the format
            # registry's message goes on with a table of every format)
            said = (str(err).strip().splitlines() or [""])[0]
            raise ValueError(f"could not read {str(path)!r} as a table ({type(err).__name__}: {said}); "
                             "ECSV, FITS and CSV are supported, pass format= if the suffix is unusual") from None
        remember_sources(table.meta, [path])  # its writers refuse to write over it
        return table, str(path)
    if isinstance(source, Table):
        return QTable(source, copy=True), f"an astropy {type(source).__name__}"
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):  # a pandas DataFrame
        return QTable.from_pandas(source), "a pandas DataFrame"
    raise TypeError(f"source must be a path to an ECSV/FITS/CSV file, an astropy Table/QTable or a pandas "
                    f"DataFrame, got {type(source).__name__}")


def check_columns(table: QTable, requested: dict, arguments: dict, described: str, what: str = "catalog") -> None:
    """Check the columns a reader was asked to standardise: present, each used once, no clash with a standard name.

    ``requested`` maps a standard name to the user's column name, ``arguments``
    a standard name to the reader's argument that names it.
    """
    for standard, name in requested.items():
        argument = arguments[standard]
        if not isinstance(name, str):
            raise TypeError(f"{argument} must be a column name, got {name!r}")
        if name not in table.colnames:
            raise ValueError(f"the {what} from {described} has no {argument} column {name!r}"
                             f"{did_you_mean(name, table.colnames)}; available columns: {table.colnames} "
                             f"(rename the column, or pass {argument}=<name>)")
    names = list(requested.values())
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"column(s) {repeated} were given for more than one quantity")
    for standard, name in requested.items():
        if standard in table.colnames and standard != name:
            raise ValueError(f"the {what} already has a column {standard!r} besides {name!r}, which is to be "
                             f"renamed {standard!r}; rename or remove one of them first")


def column_values(table: QTable, name: str, row: str = "row") -> tuple[np.ndarray, u.UnitBase | None]:
    """Float values of a column (NaN where masked) and its unit (None when it has none or is dimensionless).

    ``row`` names what a row is ("star", "galaxy") for the error message.
    """
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
        example = f" (e.g. {array.flat[0]!r})" if array.size else ""
        raise ValueError(f"column {name!r} must be numeric, got dtype {array.dtype}{example}")
    if array.ndim != 1:
        raise ValueError(f"column {name!r} must hold one number per {row}, got shape {array.shape}")
    values = array.astype(np.float64)
    values[np.broadcast_to(mask, values.shape)] = np.nan
    if unit is not None and u.Unit(unit) == u.dimensionless_unscaled:
        unit = None  # a dimensionless number is as unit-less as a CSV column
    return values, unit


def native_array(column) -> np.ndarray:
    """A column as a native-byte-order array, bytes decoded to str (FITS stores big-endian integers and
    byte strings, which pandas refuses or treats as different keys).

    Examples
    --------
    >>> native_array(np.array([1, 2], dtype=">i8")).dtype.byteorder
    '='
    >>> native_array(np.array([b"A1"]))
    array(['A1'], dtype='<U2')
    """
    array = np.asarray(column)
    if array.dtype.kind == "S":
        return np.char.decode(array, "utf-8")
    if array.dtype.byteorder not in ("=", "|"):
        return array.astype(array.dtype.newbyteorder("="))
    return array


def resolve_unit(name: str, quantity: str, unit, given, given_arg: str, target: u.UnitBase,
                 kind: str) -> u.UnitBase:
    """The unit of column ``name``: its own, else the one given as ``given_arg=``, else an error.

    Parameters
    ----------
    name : str
        The column's name in the user's table.
    quantity : str
        What it holds, in the package's words (``"luminosity"``, ``"velocity"``).
    unit, given : unit or None
        The column's own unit and the one passed by the caller.
    given_arg : str
        The argument through which a unit can be given (``"velocity_unit"``).
    target : Unit
        The unit the column is converted to; any equivalent unit is accepted.
    kind : str
        Words for the expected kind, e.g. ``"a velocity (km/s)"``.
    """
    if given is not None:
        try:
            given = u.Unit(given)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{given_arg}={given!r} is not a unit astropy understands ({err})") from None
    if unit is None:
        if given is None:
            raise ValueError(f"column {name!r} ({quantity}) has no unit; CSV files and DataFrames carry none. "
                             f"Pass {given_arg}= (e.g. {given_arg}={target.to_string()!r}) or use a table with "
                             f"units (ECSV, FITS, QTable)")
        unit = given
    elif given is not None and u.Unit(unit) != given:
        raise ValueError(f"column {name!r} already has unit {unit}, but {given_arg}={given.to_string()!r} was "
                         "given; drop the argument or fix the column's unit")
    unit = u.Unit(unit) if not isinstance(unit, u.UnitBase) else unit
    if isinstance(unit, u.UnrecognizedUnit):
        raise ValueError(f"column {name!r} has unit {unit.to_string()!r}, which astropy does not recognise; "  # noqa: TRY004
                         f"expected {kind}")
    if isinstance(unit, u.FunctionUnitBase):
        raise ValueError(f"column {name!r} has the logarithmic unit {unit}; give {quantity} as linear values "  # noqa: TRY004
                         f"in {target} (convert the uncertainty consistently)")
    # no equivalencies: an offset scale (deg_C) or a spectral conversion would be a silent guess
    if not unit.is_equivalent(target):
        raise ValueError(f"column {name!r} has unit {unit}, which is not {kind}")
    return unit


def write_table(table, path, *, overwrite: bool, format: str | None, provenance_keys=(), reader_hint: str = "") -> None:
    """Write a table; ECSV and FITS keep the units, CSV does not (a warning says so).

    ``provenance_keys`` are ``meta`` entries (dicts, lists) that only ECSV can
    hold; they are left out of FITS and CSV files. ``reader_hint`` ends the CSV
    warning with how to read the file back.
    """
    if not isinstance(table, Table):
        raise TypeError(f"table must be an astropy Table or QTable, got {type(table).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name, got {type(path).__name__}")
    check_not_input(path, read_sources(table.meta), argument="path", what="file the table was read from")
    path = Path(path)
    kind = (format or path.suffix).lower()
    is_csv = kind.endswith("csv") and not kind.endswith("ecsv")  # "ascii.ecsv" keeps its units
    with_units = [name for name in table.colnames if getattr(table[name], "unit", None) not in (None, u.one)]
    if is_csv and with_units:
        units = ", ".join(f"{name} [{table[name].unit}]" for name in with_units)
        warnings.warn(f"CSV keeps no units; reading {path.name} back needs them given again ({units}){reader_hint}. "
                      "ECSV and FITS keep them.", UserWarning, stacklevel=3)
    # FITS headers cannot hold the provenance dicts and lists (nor keys this long), CSV no meta at all; ECSV keeps them
    out = table.copy(copy_data=False)
    out.meta.pop(SOURCES_KEY, None)
    if not (format or path.suffix.lower()).endswith("ecsv"):
        for key in provenance_keys:
            out.meta.pop(key, None)
    out.write(path, format=format, overwrite=overwrite)
