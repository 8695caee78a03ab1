"""Redshift fields: galaxies with sky positions and redshifts, from NED/IPAC pipe tables or any table.

:func:`read_redshift_field` reads the text NED writes for a query (free-text
header lines, then ``No.|Object Name|RA|DEC|Type|Velocity|Redshift|...`` and one
``|``-separated row per object) — such as the field around the Coma cluster
shipped as :data:`COMA_FIELD` (``catalogs/clusters/README.md`` gives its
provenance and caveats) — or a table with ``ra``, ``dec`` and ``redshift``,
into a QTable with units. :func:`~astrobayes.clusters.membership.members_from_field`
selects a cluster's members from it. A damaged file is an error that names the
file and the line.
"""
from __future__ import annotations

import re
from pathlib import Path

import astropy.constants as const
import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from astrobayes.clusters.io import _redshifts
from astrobayes.core.paths import remember_sources
from astrobayes.core.tables import column_values, native_array, read_table
from astrobayes.core.validation import describe_rows

__all__ = ["COMA_CENTRE", "COMA_FIELD", "read_redshift_field"]

#: the NED redshift field around the Coma cluster shipped in ``catalogs/clusters/`` (see its README)
COMA_FIELD = Path(__file__).resolve().parents[2] / "catalogs" / "clusters" / "coma_ned_field.txt"
#: NED's J2000 position of Abell 1656, the Coma cluster (the centre used by the catalog's README check)
COMA_CENTRE = SkyCoord(194.953 * u.deg, 27.981 * u.deg)

#: header field of a NED pipe table → column of :func:`read_redshift_field`
_NED_COLUMNS = {"No.": "ned_row", "Object Name": "name", "RA": "ra", "DEC": "dec", "Type": "object_type",
                "Velocity": "cz", "Redshift": "redshift", "Redshift Flag": "redshift_flag",
                "Magnitude and Filter": "magnitude"}
_NED_REQUIRED = ("Object Name", "RA", "DEC", "Redshift")
#: accepted names (any case) of the columns of a field given as a table
_FIELD_ALIASES = {"ra": ("ra", "raj2000"), "dec": ("dec", "dej2000", "decj2000"), "redshift": ("redshift", "z"),
                  "name": ("name", "object name", "object_name"), "object_type": ("object_type", "type"),
                  "magnitude": ("magnitude", "mag"), "band": ("band", "filter"), "cz": ("cz", "velocity"),
                  "redshift_flag": ("redshift_flag", "redshift flag")}
_TABLE_SUFFIXES = (".ecsv", ".fits", ".fit", ".fts", ".csv", ".hdf5", ".h5", ".vot", ".xml", ".gz")
_MAGNITUDE = re.compile(r"([+-]?\d+(?:\.\d*)?)\s*([A-Za-z_]*)\s*:?")


def read_redshift_field(source, *, galaxies_only: bool = True) -> QTable:
    """Galaxies with sky positions and redshifts: a NED/IPAC pipe table (such as :data:`COMA_FIELD`) or a table.

    A NED query saved as text — free-text header lines, then the header row
    ``No.|Object Name|RA|DEC|Type|Velocity|Redshift|...``, then one row of
    ``|``-separated, space-padded fields per object — is parsed directly. Any
    other table (an astropy Table/QTable, a pandas DataFrame, or an ECSV/FITS/CSV
    file) needs the columns ``ra`` and ``dec`` (angle Quantities, or numbers in
    degrees; ``RAJ2000``/``DEJ2000`` are accepted) and ``redshift`` (or ``z``),
    names in any case, and may have ``name``, ``object_type`` (``type``),
    ``magnitude`` (``mag``), ``band``, ``cz`` (``velocity``, km/s) and ``redshift_flag``.

    Parameters
    ----------
    source : str, path, astropy Table/QTable or pandas DataFrame
    galaxies_only : bool
        Keep only NED type ``G`` (galaxies), dropping pairs, groups, stars,
        sources seen in one band only and so on; ``meta["dropped_types"]`` counts
        what was dropped, by type. Rows without a type (a table without
        ``object_type``, or a blank one) are kept.

    Returns
    -------
    QTable
        ``name``, ``ra`` [deg], ``dec`` [deg], ``redshift``, ``cz`` [km/s] (NED's
        heliocentric velocity, or c·z), ``object_type``, ``redshift_flag``,
        ``magnitude`` [mag] (NaN where blank) and ``band`` (its filter letter,
        ``""`` when none is given), and for NED text ``ned_row`` (the file's
        ``No.``). ``meta`` records ``catalog_source``, the absolute path read (under
        :data:`~astrobayes.core.paths.SOURCES_KEY`, so that writers refuse to write
        over it), ``query_date`` (from NED's ``queryDateTime`` header line, if any),
        ``n_read`` and ``dropped_types``.

    Raises
    ------
    ValueError
        A file with no NED header row (nor a table suffix), a row with the wrong
        number of fields (its line number is given), RA, Dec, redshift or
        magnitude that are not numbers, declinations beyond ±90 deg, redshifts that
        are velocities; for tables, a missing ``ra``/``dec``/``redshift`` column.

    Examples
    --------
    >>> field = read_redshift_field(COMA_FIELD)
    >>> len(field), field.meta["n_read"], field.meta["query_date"]
    (2129, 2171, '2026-05-18T03:35:50PDT')
    >>> row = field[field["name"] == "NGC 4874"][0]
    >>> row["cz"], row["magnitude"], str(row["band"])
    (<Quantity 7167. km / s>, <Quantity 12.7 mag>, 'b')
    """
    if not isinstance(galaxies_only, bool):
        raise TypeError(f"galaxies_only must be True or False, got {galaxies_only!r}")
    if isinstance(source, (str, Path)) or hasattr(source, "__fspath__"):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no redshift field at {str(path)!r}") if not path.exists() else \
                ValueError(f"{str(path)!r} is a folder, not a redshift field")
        field = _read_ned_text(path)
        if field is None:
            if not str(path).lower().endswith(_TABLE_SUFFIXES):
                raise ValueError(f"{str(path)!r} has no NED header row ('No.|Object Name|RA|DEC|Type|Velocity|"
                                 "Redshift|...'): save the NED query result as text with its header, or give a "
                                 "table (ECSV, FITS, CSV) with columns ra, dec and redshift")
            table, described = read_table(path, None, "redshift field")
            field = _field_from_table(table, described)
        remember_sources(field.meta, [path])
    else:
        table, described = read_table(source, None, "redshift field")
        field = _field_from_table(table, described)
    field.meta["n_read"] = len(field)
    dropped = {}
    if galaxies_only and "object_type" in field.colnames:
        types = np.char.strip(np.asarray(field["object_type"], dtype=str))
        other = (types != "G") & (types != "")           # a row without a type is kept
        kinds, counts = np.unique(types[other], return_counts=True)
        dropped = {str(k): int(c) for k, c in zip(kinds, counts)}
        field = field[~other]
    field.meta["dropped_types"] = dropped
    if len(field) == 0:
        raise ValueError(f"the redshift field from {field.meta['catalog_source']} has no "
                         f"{'galaxies (type G)' if galaxies_only else 'rows'}"
                         + ("; pass galaxies_only=False to keep every object type" if dropped else ""))
    return field


def _read_ned_text(path: Path) -> QTable | None:
    """The NED pipe table in ``path`` as a QTable, or None when the file has no NED header row."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        if str(path).lower().endswith(_TABLE_SUFFIXES):
            return None  # binary (FITS, gzip): the table reader's business
        raise ValueError(f"{str(path)!r} is not a text file (a NED pipe table is plain ASCII text)") from None
    header_at = next((i for i, line in enumerate(lines)
                      if line.split("|", 1)[0].strip() == "No." and "Object Name" in line), None)
    if header_at is None:
        return None
    header = [name.strip() for name in lines[header_at].split("|")]
    missing = [name for name in _NED_REQUIRED if name not in header]
    if missing:
        raise ValueError(f"{str(path)!r}: the NED header row (line {header_at + 1}) lacks the field(s) {missing}; "
                         f"it has {header}")
    rows, numbers = [], []
    for i in range(header_at + 1, len(lines)):
        if not lines[i].strip():
            continue
        fields = [value.strip() for value in lines[i].split("|")]
        if len(fields) != len(header):
            raise ValueError(f"{str(path)!r}, line {i + 1}: {len(fields)} '|'-separated fields where the header row "
                             f"(line {header_at + 1}) has {len(header)}; is the row cut short or does a name "
                             f"contain '|'? The line reads {lines[i][:100]!r}")
        rows.append(fields)
        numbers.append(i + 1)
    if not rows:
        raise ValueError(f"{str(path)!r} has a NED header row (line {header_at + 1}) but no data rows")
    columns = dict(zip(header, zip(*rows)))
    line_numbers = np.array(numbers)
    field = QTable()
    for ned, name in _NED_COLUMNS.items():
        if ned not in columns:
            continue
        text = np.array(columns[ned])
        if name in ("ra", "dec", "redshift", "cz", "ned_row"):
            values = _numbers(text, ned, path, line_numbers, blank_ok=name in ("cz", "ned_row"))
            unit = {"ra": u.deg, "dec": u.deg, "cz": u.km / u.s}.get(name)
            if name == "ned_row" and np.isfinite(values).all():
                values = values.astype(np.int64)
            field[name] = values * unit if unit is not None else values
        elif name == "magnitude":
            field["magnitude"], field["band"] = _magnitudes(text, path, line_numbers)
        else:
            field[name] = text
    for name in ("object_type", "redshift_flag"):
        if name not in field.colnames:
            field[name] = np.full(len(field), "")
    query = next((line.split("queryDateTime:", 1)[1].strip() for line in lines[:header_at]
                  if "queryDateTime:" in line), None)
    described = str(path)
    field.meta["query_date"] = query
    field.meta["format"] = "NED pipe table"
    return _standard_field(field, described)


def _numbers(text: np.ndarray, column: str, path: Path, line_numbers: np.ndarray, blank_ok: bool) -> np.ndarray:
    values = np.full(text.size, np.nan)
    for k, value in enumerate(text):
        if value == "" and blank_ok:
            continue
        try:
            values[k] = float(value)
        except ValueError:
            why = " (an object without one: remove the row)" if value == "" else ""
            raise ValueError(f"{str(path)!r}, line {line_numbers[k]}: the {column} field reads {str(value)!r}, not a "
                             f"number{why}") from None
    return values


def _magnitudes(text: np.ndarray, path: Path, line_numbers: np.ndarray) -> tuple[u.Quantity, np.ndarray]:
    """NED's "Magnitude and Filter" ("17.9g", "19.44", "17.3:", "") as magnitudes (NaN if blank) and filter letters."""
    magnitude, band = np.full(text.size, np.nan), np.full(text.size, "", dtype=object)
    for k, value in enumerate(text):
        if not value:
            continue
        match = _MAGNITUDE.fullmatch(value)
        if match is None:
            raise ValueError(f"{str(path)!r}, line {line_numbers[k]}: the Magnitude and Filter field reads "
                             f"{str(value)!r}, not a magnitude followed by a filter letter (e.g. '17.9g')")
        magnitude[k], band[k] = float(match.group(1)), match.group(2)
    return magnitude * u.mag, band.astype(str)


def _field_from_table(table: QTable, described: str) -> QTable:
    """A field given as a table: find ra/dec/redshift and the optional columns by their accepted names."""
    by_case = {name.casefold(): name for name in table.colnames}
    found = {standard: next((by_case[a] for a in aliases if a in by_case), None)
             for standard, aliases in _FIELD_ALIASES.items()}
    for standard in ("ra", "dec", "redshift"):
        if found[standard] is None:
            accepted = " or ".join(repr(a) for a in _FIELD_ALIASES[standard])
            raise ValueError(f"the redshift field from {described} has no {standard} column ({accepted}, any case); "
                             f"available columns: {table.colnames}")
    field = QTable()
    for standard, unit in (("ra", u.deg), ("dec", u.deg), ("cz", u.km / u.s)):
        if found[standard] is None:
            continue
        values, given = column_values(table, found[standard], row="galaxy")
        try:
            field[standard] = (values * (given or unit)).to(unit)
        except u.UnitsError:
            raise ValueError(f"column {found[standard]!r} ({standard}) has unit {given}, not {unit.physical_type}"
                             ) from None
    values, given = column_values(table, found["redshift"], row="galaxy")
    if given is not None:
        _redshifts(table[found["redshift"]], f"column {found['redshift']!r} (redshift)")  # a velocity: explain
    field["redshift"] = values
    if found["magnitude"] is not None:
        values, given = column_values(table, found["magnitude"], row="galaxy")
        field["magnitude"] = values * u.mag
    for standard in ("name", "object_type", "band", "redshift_flag"):
        column = found[standard]
        field[standard] = (native_array(table[column]).astype(str) if column is not None
                           else (np.arange(len(table)).astype(str) if standard == "name" else np.full(len(table), "")))
    field.meta["format"] = "table"
    return _standard_field(field, described)


def _standard_field(field: QTable, described: str) -> QTable:
    """Check positions and redshifts, fill what is missing, and put the columns in the standard order."""
    for standard in ("ra", "dec", "redshift"):
        values = u.Quantity(field[standard]).value
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"the redshift field from {described} has {bad.size} row(s) with NaN, inf or missing "
                             f"{standard} (rows {describe_rows(bad)}); remove them first")
    if (np.abs(field["dec"].to_value(u.deg)) > 90).any():
        raise ValueError(f"the redshift field from {described} has declinations beyond ±90 deg: is dec in degrees?")
    ra = field["ra"].to_value(u.deg)
    if ((ra < -180) | (ra > 360)).any():
        bad = np.flatnonzero((ra < -180) | (ra > 360))
        raise ValueError(f"the redshift field from {described} has {bad.size} right ascension(s) outside −180 to 360 "
                         f"deg (rows {describe_rows(bad)}, e.g. {ra[bad[0]]:g}): is ra in degrees, and is the file "
                         "damaged?")
    names = np.asarray(field["name"], dtype=str)
    unique, counts = np.unique(names[names != ""], return_counts=True)
    if (counts > 1).any():
        repeated = unique[counts > 1]
        raise ValueError(f"the redshift field from {described} lists {repeated.size} galaxy name(s) more than once "
                         f"({', '.join(repr(str(n)) for n in repeated[:5])}{', ...' if repeated.size > 5 else ''}): "
                         "a galaxy counted twice biases the member count and the velocity dispersion; remove the "
                         "duplicate rows")
    _redshifts(field["redshift"], f"the redshift column of the field from {described}")
    if (field["redshift"] <= -1).any():
        raise ValueError(f"the redshift field from {described} has redshifts ≤ −1")
    if "cz" not in field.colnames or not np.isfinite(field["cz"].value).all():
        c_z = (const.c * np.asarray(field["redshift"])).to(u.km / u.s)
        field["cz"] = np.where(np.isfinite(field["cz"].value), field["cz"], c_z) if "cz" in field.colnames else c_z
    if "magnitude" not in field.colnames:
        field["magnitude"] = np.full(len(field), np.nan) * u.mag
    if "band" not in field.colnames:
        field["band"] = np.full(len(field), "")
    order = ["name", "ra", "dec", "redshift", "cz", "object_type", "redshift_flag", "magnitude", "band", "ned_row"]
    field = field[[c for c in order if c in field.colnames]]
    descriptions = {"ra": "J2000 right ascension", "dec": "J2000 declination", "redshift": "heliocentric redshift",
                    "cz": "heliocentric recession velocity c z", "magnitude": "apparent magnitude in `band`",
                    "band": "filter of `magnitude`", "object_type": "NED object type (G = galaxy)"}
    for name, text in descriptions.items():
        field[name].info.description = text
    field.meta["catalog_source"] = described
    return field
