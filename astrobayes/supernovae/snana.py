"""SNANA lightcurve text files (the SNPhotCC format of Kessler et al. 2010) and SNPhotCC truth keys.

One file per supernova: ``KEY: value`` header lines (``SNID``, ``SNTYPE``,
``FILTERS``, ``REDSHIFT_FINAL: z +- err``, ``HOST_GALAXY_PHOTO-Z``, ...), a
``VARLIST`` line and ``OBS:`` rows. :func:`read_snana` reads files, folders and
tar archives of them into a :class:`~astrobayes.supernovae.io.Lightcurves`
collection; simulation truth (``SIM_*``) is never read.
"""
from __future__ import annotations

import fnmatch
import os
import tarfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from astrobayes.core.tables import native_array

from .io import Lightcurves, class_of_type

__all__ = ["read_snana", "read_truth_key"]


def _parse_snana(text: str, where: str) -> tuple[dict, list]:
    """Header keys and OBS rows of one SNANA text file."""
    header: dict = {}
    varlist = None
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "OBS":
            if varlist is None:
                raise ValueError(f"{where}: an OBS row comes before the VARLIST line")
            fields = value.split()
            if len(fields) != len(varlist):
                raise ValueError(f"{where}: OBS row has {len(fields)} values but VARLIST names {len(varlist)}: {line!r}")
            rows.append(fields)
        elif key == "VARLIST":
            varlist = value.split()
            header["VARLIST"] = varlist
        elif key not in header:
            header[key] = value.strip()
    if varlist is None:
        raise ValueError(f"{where}: not an SNANA lightcurve file (no VARLIST line)")
    for needed in ("MJD", "FLT", "FLUXCAL", "FLUXCALERR"):
        if needed not in varlist:
            raise ValueError(f"{where}: VARLIST lacks {needed} (has {varlist})")
    if "SNID" not in header:
        raise ValueError(f"{where}: no SNID header key")
    if header.get("NOBS") and _header_number(header, "NOBS", "0", where, int) != len(rows):
        raise ValueError(f"{where}: NOBS says {header['NOBS'].split()[0]} but the file has {len(rows)} OBS rows")
    return header, rows


def _value_and_error(text: str | None) -> tuple[float, float]:
    """'0.3502 +- 0.0468 (CMB)' → (0.3502, 0.0468); missing or −9 → NaN."""
    if not text:
        return np.nan, np.nan
    parts = text.replace("+-", " ").split()
    try:
        value = float(parts[0])
        error = float(parts[1]) if len(parts) > 1 else np.nan
    except (ValueError, IndexError):
        return np.nan, np.nan
    if value <= -9:
        return np.nan, np.nan
    return value, error


def _header_number(header: dict, key: str, default: str, where: str, kind):
    """The first word of a header value as a number; a clear error naming the file and key otherwise."""
    text = (header.get(key) or default).split()[0]
    try:
        value = float(text)
        if kind is int and value != int(value):
            raise ValueError
        return kind(value)
    except (ValueError, OverflowError):  # OverflowError: int(inf)
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{where}: header key {key} should be {what}, got {text!r}") from None


# what a truncated or corrupted (compressed) tar archive raises while it is read
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def _is_tarfile(path: Path) -> bool:
    """Whether ``path`` opens as a tar archive (a damaged one too, so that its damage is reported as such)."""
    try:
        return tarfile.is_tarfile(path)
    except _ARCHIVE_ERRORS:  # a truncated .tar.gz can fail inside the gzip layer before tarfile decides
        return True


def _snana_sources(source, pattern: str):
    """Yield (name, text) for every SNANA file in a file, directory, tar archive or list of those."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no SNANA lightcurve file, directory or archive at {str(path)!r}")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and fnmatch.fnmatch(p.name, pattern))
            if not files:
                raise ValueError(f"no files matching {pattern!r} under {str(path)!r}")
            for p in files:
                yield str(p), p.read_text(errors="replace")
        elif _is_tarfile(path):
            try:
                with tarfile.open(path) as archive:
                    found = False
                    for member in archive:
                        if member.isfile() and fnmatch.fnmatch(Path(member.name).name, pattern):
                            found = True
                            text = archive.extractfile(member).read().decode(errors="replace")
                            yield f"{path.name}:{member.name}", text
            except _ARCHIVE_ERRORS as err:
                raise ValueError(f"the archive {str(path)!r} is damaged or truncated ({type(err).__name__}: {err}); "
                                 "unpack what is left or download it again") from None
            if not found:
                raise ValueError(f"no members matching {pattern!r} in the archive {str(path)!r}")
        else:
            yield str(path), path.read_text(errors="replace")
    elif isinstance(source, Iterable):
        for item in source:
            yield from _snana_sources(item, pattern)
    else:
        raise TypeError(f"source must be a path (file, directory or tar archive) or a list of paths, "
                        f"got {type(source).__name__}")


def read_snana(source, *, pattern: str = "*.DAT", truth=None, bands: Sequence[str] | None = None,
               max_objects: int | None = None, drop_invalid: bool = False, progress: bool | None = None
               ) -> Lightcurves:
    """Read SNANA-format lightcurve text files (as in the SNPhotCC of Kessler et al. 2010).

    Each file has ``KEY: value`` header lines (``SNID``, ``SNTYPE``,
    ``FILTERS``, ``REDSHIFT_FINAL: z +- err``, ``HOST_GALAXY_PHOTO-Z``, ...),
    a ``VARLIST`` line and ``OBS:`` rows with at least ``MJD FLT FLUXCAL
    FLUXCALERR``. Simulation truth (``SIM_*`` keys, the ``SIM_MAG`` column) is
    never read: a classifier must not see it.

    Parameters
    ----------
    source : path or list of paths
        A ``.DAT`` file, a directory (searched recursively), a ``.tar``/``.tar.gz``
        archive of them, or a list of those.
    pattern : str
        File-name pattern inside directories and archives.
    truth : path or Table, optional
        A truth key (see :func:`read_truth_key`; a table needs ``SNID`` or
        ``object_id`` and ``TRUE_TYPE``) whose type fills in that of every
        unlabelled (``SNTYPE = -9``) object. Spectroscopic objects keep their
        ``SNTYPE`` even where the key says otherwise.
    bands : sequence of str, optional
        Allowed filters; default the ``FILTERS`` header of the files.
    max_objects : int, optional
        Stop after this many files.
    drop_invalid : bool
        Drop observations with non-positive flux errors instead of raising.
    progress : bool or None
        tqdm progress bar; None shows it only when stderr is a terminal.

    Returns
    -------
    Lightcurves
        ``meta`` has ``object_id`` (the SNID), ``type_code`` (SNTYPE, or the
        truth key's type), ``label``, ``spectroscopic`` (SNTYPE ≠ −9),
        ``redshift``/``redshift_err`` (``REDSHIFT_FINAL``: the spectroscopic
        redshift where there is one, else the host photo-z), ``host_photoz``,
        ``host_photoz_err``, ``mwebv`` and ``file``.

    Examples
    --------
    >>> from astrobayes.supernovae import SPCC_SAMPLE
    >>> lcs = read_snana(SPCC_SAMPLE)
    >>> lcs.bands, len(lcs) > 0
    (('g', 'r', 'i', 'z'), True)
    """
    from tqdm.auto import tqdm

    from astrobayes.estimators.training import show_progress

    ids, times, flts, fluxes, errors = [], [], [], [], []
    meta_rows = []
    filters = None
    seen: dict = {}
    for name, text in tqdm(_snana_sources(source, pattern), desc="read SNANA files", unit=" files",
                           disable=not show_progress(progress)):
        header, rows = _parse_snana(text, name)
        snid = header["SNID"].split()[0]
        if snid in seen:
            raise ValueError(f"SNID {snid} appears twice: in {seen[snid]} and {name}; object ids must be unique")
        seen[snid] = name
        file_filters = header.get("FILTERS", "").split()[0] if header.get("FILTERS") else None
        if file_filters and filters is None:
            filters = file_filters
        var = header["VARLIST"]
        cols = [var.index(k) for k in ("MJD", "FLT", "FLUXCAL", "FLUXCALERR")]
        block = np.array(rows, dtype=object).reshape(len(rows), len(var)) if rows else np.empty((0, len(var)), object)
        ids.append(np.full(len(rows), snid, dtype=object))
        for target, key, column in ((times, "MJD", 0), (fluxes, "FLUXCAL", 2), (errors, "FLUXCALERR", 3)):
            try:
                target.append(block[:, cols[column]].astype(float))
            except ValueError as err:
                raise ValueError(f"{name}: column {key} of the OBS rows holds a value that is not a number "
                                 f"({err})") from None
        flts.append(block[:, cols[1]].astype(str))
        z, z_err = _value_and_error(header.get("REDSHIFT_FINAL"))
        hz, hz_err = _value_and_error(header.get("HOST_GALAXY_PHOTO-Z"))
        sntype = _header_number(header, "SNTYPE", "-9", name, int)
        mwebv = _header_number(header, "MWEBV", "nan", name, float)
        meta_rows.append((snid, sntype, z, z_err, hz, hz_err, mwebv, name))
        if max_objects is not None and len(meta_rows) >= max_objects:
            break
    if not meta_rows:
        raise ValueError(f"no SNANA files read from {source!r}")
    names = ("object_id", "sntype", "redshift", "redshift_err", "host_photoz", "host_photoz_err", "mwebv", "file")
    meta = Table(rows=meta_rows, names=names)
    meta["object_id"] = meta["object_id"].astype(str)
    meta["spectroscopic"] = meta["sntype"] != -9
    meta["type_code"] = np.asarray(meta["sntype"], dtype=np.int64)
    if truth is not None:
        key = _truth_table(truth, "truth") if isinstance(truth, Table) else read_truth_key(truth)
        true_type = dict(zip(native_array(key["object_id"]).astype(str).tolist(), np.asarray(key["true_type"])))
        unlabelled = np.asarray(meta["sntype"]) == -9
        snids = meta["object_id"].tolist()
        unknown = [oid for oid, blind in zip(snids, unlabelled) if blind and oid not in true_type]
        if unknown:
            raise ValueError(f"the truth key lacks {len(unknown)} unlabelled (SNTYPE = -9) object(s), e.g. "
                             f"{unknown[:5]}")
        meta["type_code"] = [int(true_type[oid]) if blind else int(code)
                             for oid, blind, code in zip(snids, unlabelled, meta["sntype"])]
    meta["label"] = class_of_type(meta["type_code"])
    observations = Table({"object_id": np.concatenate(ids).astype(str), "time": np.concatenate(times) * u.day,
                          "band": np.concatenate(flts), "flux": np.concatenate(fluxes),
                          "flux_err": np.concatenate(errors)},
                         meta={"flux_zeropoint_mag": 27.5, "source": str(source)})
    if bands is None and filters is not None:
        bands = list(filters)
    return Lightcurves(observations, meta, bands=bands, drop_invalid=drop_invalid, source=f"SNANA files {source!s}")


def read_truth_key(path) -> Table:
    """Read an SPCC truth key (whitespace-separated, ``#`` comments, a header row with ``SNID`` and ``TRUE_TYPE``).

    Returns a Table with ``object_id`` and ``true_type`` (plus the key's other columns, lower-cased).

    Examples
    --------
    >>> from astrobayes.supernovae import SPCC_TRUTH
    >>> key = read_truth_key(SPCC_TRUTH)
    >>> {"object_id", "true_type"} <= set(key.colnames)
    True
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no truth key at {str(path)!r}")
    try:
        table = Table.read(path, format="ascii.basic", comment="#", delimiter=" ", guess=False)
    except (ValueError, TypeError, IndexError, KeyError, OSError) as err:  # astropy's parsers raise all of these
        raise ValueError(f"could not read the truth key {str(path)!r} ({type(err).__name__}: {err}); it should be "
                         "whitespace-separated columns under a header row with SNID and TRUE_TYPE") from None
    return _truth_table(table, repr(str(path)))


def _truth_table(table: Table, described: str) -> Table:
    """A truth key with lower-case columns, ``SNID`` renamed ``object_id`` (str), checked for repeats."""
    table = Table(table, copy=True)
    lower = {name: name.lower() for name in table.colnames}
    table.rename_columns(list(lower), list(lower.values()))
    if "snid" in table.colnames and "object_id" not in table.colnames:
        table.rename_column("snid", "object_id")
    if "object_id" not in table.colnames or "true_type" not in table.colnames:
        raise ValueError(f"{described} is not a truth key: it needs SNID (or object_id) and TRUE_TYPE columns, "
                         f"has {table.colnames}")
    table["object_id"] = native_array(table["object_id"]).astype(str)
    true_type = native_array(np.ma.getdata(table["true_type"]))
    if len(table) and (np.ma.is_masked(table["true_type"]) or true_type.dtype.kind not in "iu"):
        found = "missing values" if np.ma.is_masked(table["true_type"]) else f"values such as {true_type[0].item()!r}"
        raise ValueError(f"column 'TRUE_TYPE' of {described} must hold integer SNANA type codes (1 Ia, 2x II, "
                         f"3x Ibc), got {found}")
    values, counts = np.unique(table["object_id"], return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"column 'SNID' of {described} repeats {values[counts > 1][:5].tolist()}")
    return table
