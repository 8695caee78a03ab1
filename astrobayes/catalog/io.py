"""Reading and writing catalogues by file suffix, with provenance, never leaving partial files.

ECSV and FITS go through :class:`astropy.table.Table` (units per column,
provenance in ``meta``); CSV and Parquet through pandas (units and
provenance in a ``# astrobayes:`` JSON header line for CSV, in the Parquet
schema metadata under ``astrobayes``).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.paths import SOURCES_KEY, check_not_input, read_sources, remember_sources

__all__ = ["FORMATS", "catalog_format", "read_catalog", "write_catalog", "id_columns"]

FORMATS = ("ecsv", "fits", "csv", "parquet")
_SUFFIXES = {".ecsv": "ecsv", ".fits": "fits", ".fit": "fits", ".fts": "fits", ".fits.gz": "fits",
             ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: provenance keys as 8-character FITS header keywords
_FITS_KEYS = {"astrobayes_version": "ABVERSN", "model": "ABMODEL", "model_class": "ABCLASS",
              "model_sha256": "ABSHA256", "created": "ABDATE", "command": "ABCMD", "seed": "ABSEED",
              "n_draws": "ABDRAWS", "columns": "ABCOLS", "catalog": "ABINPUT", "ood_alpha": "ABOODA",
              "ood_flagged": "ABOODN", "ood_note": "ABOODNOT"}


def catalog_format(path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format named by the suffix of ``path`` (ValueError when unknown).

    Examples
    --------
    >>> catalog_format("dr1/galaxies.fits.gz"), catalog_format("x.dat", "csv")
    ('fits', 'csv')
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        return fmt
    name = Path(path).name.lower()
    for suffix, found in sorted(_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return found
    raise ValueError(f"cannot tell the format of {str(path)!r} from its suffix; use .ecsv, .fits, .csv or "
                     ".parquet (or give the format)")


def read_catalog(path, fmt: str | None = None):
    """An astropy Table (ECSV, FITS) or a pandas DataFrame (CSV, Parquet).

    The table's ``meta`` (the DataFrame's ``attrs``) records the file, so
    that :func:`write_catalog` refuses to write over it.
    """
    fmt = catalog_format(path, fmt)
    if not Path(path).exists():
        raise FileNotFoundError(f"no catalogue at {str(path)!r}")
    if fmt in ("ecsv", "fits"):
        from astropy.table import Table

        table = Table.read(path, format="ascii.ecsv" if fmt == "ecsv" else "fits")
        remember_sources(table.meta, [path])
        return table
    if fmt == "csv":
        with open(path) as handle:  # skip only the leading '# ...' lines (the provenance), never a '#' in a value
            header = 0
            for line in handle:
                if not line.startswith("#"):
                    break
                header += 1
        frame = pd.read_csv(path, skiprows=header)
    else:
        frame = pd.read_parquet(path)
    remember_sources(frame.attrs, [path])
    return frame


def id_columns(names) -> list[str]:
    """The columns that look like object identifiers (``id``, ``*_id``, ``objid``, ``snid``, ``name``, ...).

    Examples
    --------
    >>> id_columns(["source_id", "ra", "dec", "g", "SNID"])
    ['source_id', 'SNID']
    """
    known = {"id", "objid", "objectid", "snid", "name", "object", "source", "target", "galaxy", "star"}
    return [n for n in names if n.lower() in known or n.lower().endswith("_id")]


def write_catalog(path, summaries: pd.DataFrame, passed, fmt: str, provenance: dict, units: dict[str, str],
                  samples: dict[str, np.ndarray] | None = None) -> Path:
    """Write passed-through input columns + summary columns to ``path`` atomically.

    The file is written to a hidden temporary file in the same folder and
    renamed onto ``path`` only when complete; on any failure the temporary
    file is removed and ``path`` is left as it was.

    Parameters
    ----------
    summaries : pandas.DataFrame
        From :func:`~astrobayes.catalog.apply_estimator` (same row order as ``passed``).
    passed : astropy Table, pandas DataFrame or None
        Input columns copied to the output (e.g. object ids).
    fmt : {"ecsv", "fits", "csv", "parquet"}
    provenance : dict
        Recorded in the file's metadata.
    units : dict
        Unit string per summary column ("" or absent: none).
    samples : dict, optional
        ``{column name: (m, K) array}`` of per-object draws (not for CSV).

    Raises
    ------
    ValueError
        When ``path`` is the file ``passed`` was read from by :func:`read_catalog`
        (see :func:`~astrobayes.core.paths.check_not_input`), before anything is written.
    """
    from astropy.table import Table

    if passed is not None:
        check_not_input(path, read_sources(passed.meta if isinstance(passed, Table) else passed.attrs),
                        argument="path", what="catalogue the passed columns were read from")
    path = Path(path)
    samples = samples or {}
    if samples and fmt == "csv":
        raise ValueError("a CSV file cannot hold per-object draws (--samples); write ECSV, FITS or Parquet")
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        if fmt in ("ecsv", "fits"):
            if passed is None:
                table = Table()
            elif isinstance(passed, Table):
                table = Table(passed, copy=True)
            else:
                table = Table.from_pandas(passed.reset_index(drop=True))
            table.meta = {} if passed is None or not isinstance(passed, Table) else dict(passed.meta)
            table.meta.pop(SOURCES_KEY, None)
            for name in summaries.columns:
                table[name] = summaries[name].to_numpy()
                if units.get(name):
                    table[name].unit = units[name]
            for name, values in samples.items():
                table[name] = values
                if units.get(name):
                    table[name].unit = units[name]
            if fmt == "ecsv":
                table.meta["astrobayes"] = provenance
                table.write(tmp, format="ascii.ecsv", overwrite=True)
            else:
                for key, short in _FITS_KEYS.items():
                    if key in provenance:
                        value = provenance[key]
                        table.meta[short] = value if isinstance(value, (int, float)) else str(value)
                table.write(tmp, format="fits", overwrite=True)
        else:
            frame = summaries.reset_index(drop=True)
            if passed is not None:
                if isinstance(passed, Table):  # the copied columns keep their units in the metadata too
                    units = {**{n: str(passed[n].unit) for n in passed.colnames if passed[n].unit is not None},
                             **units}
                    passed = passed.to_pandas()
                frame = pd.concat([passed.reset_index(drop=True), frame], axis=1)
            frame.attrs = {}  # read_catalog's record of its source is not the output's
            for name, values in samples.items():
                frame[name] = list(values)
            record = dict(provenance, units={k: v for k, v in units.items() if v})
            if fmt == "csv":
                with open(tmp, "w") as out:
                    out.write(f"# astrobayes: {json.dumps(record)}\n")
                    frame.to_csv(out, index=False)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                arrow = pa.Table.from_pandas(frame, preserve_index=False)
                metadata = dict(arrow.schema.metadata or {})
                metadata[b"astrobayes"] = json.dumps(record).encode()
                pq.write_table(arrow.replace_schema_metadata(metadata), tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; the output gets the usual permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
