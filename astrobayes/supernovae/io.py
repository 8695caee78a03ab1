"""Supernova lightcurves: SNANA text files, long-format tables, and the :class:`Lightcurves` collection.

A :class:`Lightcurves` object holds two astropy tables:

``observations`` — one row per photometric point, grouped by object and sorted in time:

================  =====  ===========================================================
column            unit   meaning
================  =====  ===========================================================
``object_id``            which supernova (str)
``time``          d      observation epoch (MJD for SNANA data)
``band``                 filter name (str, one of ``bands``)
``flux``          any    calibrated flux (SNANA ``FLUXCAL``: zero point 27.5 AB mag)
``flux_err``      same   its 1σ uncertainty (> 0), in the unit of ``flux``
================  =====  ===========================================================

``meta`` — one row per object: ``object_id``, ``n_obs``, ``redshift`` and
``redshift_err`` (NaN where unknown), ``type_code`` (the SNANA/SPCC type,
−9 when unknown) and ``label`` (``"Ia"``, ``"II"``, ``"Ibc"`` or ``""``),
plus whatever else the source gave (the spectroscopic flag, host photo-z).

Fluxes keep the unit they come with (none for FLUXCAL); an error in another
unit is converted to the flux's, and magnitudes are refused. Bad input raises a
``ValueError`` that names the column or file: an unknown or empty band, an
empty object id, a non-positive or non-finite flux error, a NaN flux or time,
an object without observations, an object id given twice, a flux in mag. Unsorted times are not an
error: each lightcurve is sorted (stably) in time, which is the documented
handling. ``drop_invalid=True`` drops bad rows instead and warns with the count.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"snid": ["a", "a", "b", "b"], "mjd": [10.0, 11.0, 5.0, 3.0],
...                       "filter": ["g", "r", "g", "g"], "f": [1.0, 2.0, 3.0, 4.0], "e": [0.1] * 4})
>>> lcs = read_lightcurve_table(frame, object_id="snid", time="mjd", band="filter", flux="f", flux_err="e")
>>> len(lcs), lcs.bands
(2, ('g', 'r'))
>>> lcs["b"]["time"].value.tolist()   # sorted in time
[3.0, 5.0]
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from astrobayes.core.paths import SOURCES_KEY, check_not_input, read_sources
from astrobayes.core.tables import check_columns, column_values, native_array, read_table, write_table

__all__ = ["CLASS_NAMES", "TYPE_CLASSES", "Lightcurves", "class_of_type", "read_lightcurve_table",
           "read_lightcurves", "write_lightcurves"]

#: SNANA / SPCC type codes and the three classes of the challenge (Kessler et al. 2010).
TYPE_CLASSES = {1: "Ia", 2: "II", 21: "II", 22: "II", 23: "II", 3: "Ibc", 32: "Ibc", 33: "Ibc"}
#: class names in label order (label 0 is Ia)
CLASS_NAMES = ("Ia", "II", "Ibc")

_OBS_COLUMNS = ("object_id", "time", "band", "flux", "flux_err")


def class_of_type(codes) -> np.ndarray:
    """Class name (``"Ia"``, ``"II"``, ``"Ibc"``, or ``""`` when unknown) of SNANA type codes.

    Examples
    --------
    >>> class_of_type([1, 22, 33, -9]).tolist()
    ['Ia', 'II', 'Ibc', '']
    """
    codes = np.atleast_1d(np.asarray(codes))
    return np.array([TYPE_CLASSES.get(int(c), "") for c in codes], dtype="<U3")


class Lightcurves:
    """A collection of multi-band supernova lightcurves with per-object metadata.

    Build one with :func:`~astrobayes.supernovae.snana.read_snana`, :func:`read_lightcurve_table`,
    :func:`read_lightcurves` or :func:`~astrobayes.supernovae.simulate.simulate_lightcurves`
    rather than directly; the constructor checks and sorts its input (see the
    module docstring for the columns).

    Parameters
    ----------
    observations : astropy.table.Table
        Long format: ``object_id``, ``time`` [d], ``band``, ``flux``, ``flux_err``.
    meta : astropy.table.Table, optional
        One row per object with ``object_id``; missing objects get default rows
        (redshift NaN, type −9), extra columns are kept.
    bands : sequence of str, optional
        The allowed bands, in channel order; a band outside them is an error.
        Default: the bands present, sorted.
    drop_invalid : bool
        Drop rows with a NaN/inf value or a non-positive flux error (and objects
        left empty) with a warning, instead of raising.
    """

    def __init__(self, observations: Table, meta: Table | None = None, bands: Sequence[str] | None = None,
                 drop_invalid: bool = False, source: str = "lightcurves"):
        if not isinstance(observations, Table):
            raise TypeError(f"observations must be an astropy Table, got {type(observations).__name__}")
        missing = [c for c in _OBS_COLUMNS if c not in observations.colnames]
        if missing:
            raise ValueError(f"observations lack column(s) {missing}; expected {list(_OBS_COLUMNS)}")
        ids = _string_column(observations, "object_id", source)
        band = np.char.strip(_string_column(observations, "band", source))
        time = _float_column(observations, "time", u.day)
        flux, flux_err, flux_unit = _flux_columns(observations)
        if len(ids) == 0:
            raise ValueError(f"{source}: no observations (an empty lightcurve collection)")

        present = sorted(set(band.tolist()))
        if bands is None:
            bands = present
        else:
            if isinstance(bands, str):
                bands = list(bands)
            bands = [str(b) for b in bands]
            if len(set(bands)) != len(bands):
                raise ValueError(f"bands has repeated names: {bands}")
            unknown = sorted(set(present) - set(bands))
            if unknown:
                where = ids[np.isin(band, unknown)][:3].tolist()
                raise ValueError(f"column 'band' of {source} holds unknown band(s) {unknown} (e.g. objects {where}); "
                                 f"allowed: {bands}. Pass bands= with every filter used, or remove those rows")
        self.bands = tuple(bands)

        bad = ~(np.isfinite(time) & np.isfinite(flux) & np.isfinite(flux_err) & (flux_err > 0))
        if bad.any():
            # say which problem each column has: a zero or negative error is not a NaN, and is fixed differently
            with np.errstate(invalid="ignore"):
                reasons = {("time", "NaN or inf"): ~np.isfinite(time), ("flux", "NaN or inf"): ~np.isfinite(flux),
                           ("flux_err", "zero or negative"): flux_err <= 0,
                           ("flux_err", "NaN or inf"): ~np.isfinite(flux_err)}
            said = "; ".join(f"column {name!r}: {int(r.sum())} row(s) {what}"
                             for (name, what), r in reasons.items() if r.any())
            if not drop_invalid:
                raise ValueError(f"{source} has invalid observations ({said}; e.g. object {str(ids[bad][0])!r}). "
                                 "Flux errors must be positive and finite; pass drop_invalid=True to drop these rows")
            warnings.warn(f"dropped {int(bad.sum())} invalid observation(s) from {source} ({said})", UserWarning,
                          stacklevel=3)
            keep = ~bad
            ids, band, time, flux, flux_err = ids[keep], band[keep], time[keep], flux[keep], flux_err[keep]

        meta = self._merge_meta(meta, ids, drop_invalid, source)
        position = {oid: i for i, oid in enumerate(meta["object_id"].tolist())}
        stray = sorted(set(ids.tolist()) - set(position))
        if stray:
            raise ValueError(f"observations of {source} have object_id(s) missing from meta: {stray[:5]}")
        rank = np.array([position[i] for i in ids], dtype=np.int64)
        order = np.lexsort((time, rank))  # stable: by object (meta order), then time
        self.observations = Table({"object_id": ids[order], "time": time[order] * u.day, "band": band[order],
                                   "flux": flux[order], "flux_err": flux_err[order]},
                                  meta=dict(observations.meta))
        if flux_unit is not None:
            self.observations["flux"].unit = self.observations["flux_err"].unit = flux_unit
        counts = np.bincount(rank, minlength=len(meta))
        meta["n_obs"] = counts
        self.meta = meta
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._position = position

    # ---------------------------------------------------------------- building
    @staticmethod
    def _merge_meta(meta, ids, drop_invalid: bool, source: str) -> Table:
        seen = list(dict.fromkeys(ids.tolist()))  # object order of first appearance
        if meta is None:
            meta = Table({"object_id": np.array(seen, dtype=str)})
        else:
            if not isinstance(meta, Table):
                raise TypeError(f"meta must be an astropy Table, got {type(meta).__name__}")
            if "object_id" not in meta.colnames:
                raise ValueError("meta needs an 'object_id' column")
            meta = Table(meta, copy=True)
            meta["object_id"] = native_array(meta["object_id"]).astype(str)
            values, counts = np.unique(meta["object_id"], return_counts=True)
            if (counts > 1).any():
                raise ValueError(f"column 'object_id' of the metadata of {source} repeats object(s) "
                                 f"{values[counts > 1][:5].tolist()}; each object must appear once")
        empty = sorted(set(meta["object_id"].tolist()) - set(seen))
        if empty:
            if not drop_invalid:
                raise ValueError(f"{source}: {len(empty)} object(s) have no (valid) observations, e.g. {empty[:5]}; "
                                 "an empty lightcurve cannot be classified (pass drop_invalid=True to drop them)")
            warnings.warn(f"dropped {len(empty)} object(s) of {source} without valid observations, e.g. {empty[:3]}",
                          UserWarning, stacklevel=4)
            meta = meta[~np.isin(meta["object_id"], empty)]
        for name, default in (("redshift", np.nan), ("redshift_err", np.nan)):
            if name not in meta.colnames:
                meta[name] = np.full(len(meta), default)
        if "type_code" not in meta.colnames:
            meta["type_code"] = np.full(len(meta), -9, dtype=np.int64)
        if "label" not in meta.colnames:
            meta["label"] = class_of_type(meta["type_code"])
        return meta

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.meta)

    def __repr__(self) -> str:
        return (f"<Lightcurves: {len(self)} objects, {len(self.observations)} observations, "
                f"bands {''.join(self.bands) if all(len(b) == 1 for b in self.bands) else list(self.bands)}>")

    @property
    def ids(self) -> np.ndarray:
        """Object identifiers in collection order."""
        return np.asarray(self.meta["object_id"])

    @property
    def labels(self) -> np.ndarray:
        """Class names per object (``""`` where unknown)."""
        return np.asarray(self.meta["label"])

    def __getitem__(self, object_id) -> Table:
        """The observations of one object (a Table), by identifier."""
        key = str(object_id)
        if key not in self._position:
            raise KeyError(f"no object {key!r} in this collection")
        i = self._position[key]
        return self.observations[self._offsets[i]:self._offsets[i + 1]]

    def arrays(self):
        """Per-object slices into the observation columns: (offsets, time, band index, flux, flux_err) as numpy."""
        band_index = {b: i for i, b in enumerate(self.bands)}
        bands = np.array([band_index[b] for b in self.observations["band"]], dtype=np.int64)
        return (self._offsets, np.asarray(self.observations["time"].value if hasattr(self.observations["time"], "value")
                                          else self.observations["time"], dtype=float),
                bands, np.asarray(self.observations["flux"], dtype=float),
                np.asarray(self.observations["flux_err"], dtype=float))

    def select(self, which) -> Lightcurves:
        """A new collection with some objects: a boolean mask over objects, integer positions or identifiers."""
        which = np.asarray(which)
        if which.dtype == bool:
            if which.shape != (len(self),):
                raise ValueError(f"a boolean selection must have one entry per object ({len(self)}), "
                                 f"got shape {which.shape}")
            rows = np.flatnonzero(which)
        elif which.dtype.kind in "iu":
            rows = np.arange(len(self))[which.astype(np.int64)]  # numpy's rules: negative from the end
        else:
            missing = [str(w) for w in which if str(w) not in self._position]
            if missing:
                raise KeyError(f"no object(s) {missing[:5]} in this collection")
            rows = np.array([self._position[str(w)] for w in which], dtype=np.int64)
        if len(rows) == 0:
            raise ValueError("the selection is empty")
        obs_rows = np.concatenate([np.arange(self._offsets[i], self._offsets[i + 1]) for i in rows])
        return Lightcurves(self.observations[obs_rows], self.meta[rows], bands=self.bands, source="the selection")

    def truncate(self, days, since: str = "first") -> Lightcurves:
        """Partial lightcurves: only the observations within ``days`` of each object's first observation.

        ``since="first"`` counts from the first observation, ``"first_detection"``
        from the first point with flux/flux_err > 5 — what a survey has seen
        ``days`` after it started following (or found) the object. ``days`` is
        one number or one per object (``inf`` keeps a whole lightcurve). Objects
        keep at least their first observation. Used for the early-classification
        test of Charnock & Moss (2017) and for training on partial lightcurves.
        """
        days = np.broadcast_to(np.asarray(days, dtype=float), (len(self),)) if np.ndim(days) == 0 else \
            np.asarray(days, dtype=float)
        if days.shape != (len(self),):
            raise ValueError(f"days must be one number or one per object ({len(self)}), got shape {days.shape}")
        if np.isnan(days).any() or (days < 0).any():
            raise ValueError("days must be >= 0 (inf keeps a whole lightcurve)")
        if since not in ("first", "first_detection"):
            raise ValueError(f"since must be 'first' or 'first_detection', got {since!r}")
        offsets, time, _, flux, flux_err = self.arrays()
        counts = np.diff(offsets)
        obj = np.repeat(np.arange(len(self)), counts)
        if since == "first":
            start = time[offsets[:-1]]
        else:
            detected = flux / flux_err > 5
            start = np.full(len(self), np.inf)
            np.minimum.at(start, obj[detected], time[detected])
            start = np.where(np.isfinite(start), start, time[offsets[:-1]])
        keep = time <= start[obj] + days[obj]
        keep[offsets[:-1]] = True
        meta = self.meta.copy()
        return Lightcurves(self.observations[keep], meta, bands=self.bands, source="the truncated lightcurves")

    def to_pandas(self):
        """The observations as a pandas DataFrame joined with the per-object metadata."""
        obs = self.observations.to_pandas()
        return obs.merge(self.meta.to_pandas(), on="object_id", how="left")

    def plot(self, object_ids=None, n: int = 4, axes=None, colors: dict | None = None):
        """Plot flux vs time (relative to the first observation) per band, one panel per object.

        Parameters
        ----------
        object_ids : sequence, optional
            Which objects; default the first ``n``.
        axes : sequence of matplotlib Axes, optional

        Returns
        -------
        list of matplotlib Axes
        """
        import matplotlib.pyplot as plt

        ids = list(self.ids[:n]) if object_ids is None else [str(i) for i in np.atleast_1d(object_ids)]
        if axes is None:
            _, axes = plt.subplots(1, len(ids), figsize=(3.6 * len(ids), 3), squeeze=False)
            axes = axes[0]
        default = dict(zip("ugrizy", ("violet", "tab:green", "tab:red", "darkred", "black", "grey")))
        colors = {**default, **(colors or {})}
        for ax, oid in zip(axes, ids):
            lc = self[oid]
            t0 = lc["time"].value.min()
            for k, b in enumerate(self.bands):
                sel = lc["band"] == b
                ax.errorbar(lc["time"].value[sel] - t0, lc["flux"][sel], lc["flux_err"][sel], fmt="o", ms=3,
                            color=colors.get(b, f"C{k}"), label=b)
            row = self.meta[self._position[oid]]
            z = row["redshift"]
            title = f"{oid}" + (f"  {row['label']}" if row["label"] else "") + (f"  z={z:.2f}" if np.isfinite(z) else "")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("days since first observation")
        axes[0].set_ylabel("flux")
        axes[0].legend(fontsize=7)
        return list(axes)


def _string_column(table: Table, name: str, source: str) -> np.ndarray:
    """A column as str; a masked, None or empty entry is an error naming the column."""
    column = table[name]
    missing = np.ma.getmaskarray(column) if np.ma.isMaskedArray(column) else np.zeros(len(column), dtype=bool)
    values = native_array(np.ma.getdata(column)).astype(str)
    missing |= np.isin(np.char.strip(values), ("", "None", "nan"))
    if missing.any():
        raise ValueError(f"column {name!r} of {source} is empty or missing in {int(missing.sum())} row(s) "
                         f"(first: row {int(np.flatnonzero(missing)[0])})")
    return values


def _flux_columns(table: Table) -> tuple[np.ndarray, np.ndarray, u.UnitBase | None]:
    """Flux and error as floats in one unit (returned; None when unit-less): the error is converted to the flux's
    unit; magnitudes are refused."""
    units = {name: getattr(table[name], "unit", None) for name in ("flux", "flux_err")}
    units = {name: (None if unit in (None, u.one) else u.Unit(unit)) for name, unit in units.items()}
    flux, _ = column_values(table, "flux", "observation")
    flux_err, _ = column_values(table, "flux_err", "observation")
    for name, unit in units.items():
        if unit is not None and (isinstance(unit, u.FunctionUnitBase) or unit.is_equivalent(u.mag)):
            raise ValueError(f"column {name!r} is in {unit}: give linear fluxes (e.g. SNANA FLUXCAL, or nJy), "
                             "not magnitudes")
    if (units["flux"] is None) != (units["flux_err"] is None):
        which = "flux" if units["flux"] is not None else "flux_err"
        raise ValueError(f"column {which!r} has a unit ({units[which]}) but the other flux column has none; give "
                         "both in the same (or convertible) units, or neither")
    if units["flux"] is not None and units["flux"] != units["flux_err"]:
        try:
            flux_err = (flux_err * units["flux_err"]).to_value(units["flux"])
        except u.UnitConversionError:
            raise ValueError(f"column 'flux_err' is in {units['flux_err']}, which does not convert to the unit of "
                             f"'flux' ({units['flux']})") from None
    return flux, flux_err, units["flux"]


def _float_column(table: Table, name: str, unit) -> np.ndarray:
    column = table[name]
    if unit is not None and getattr(column, "unit", None) not in (None, u.one):
        try:
            return np.asarray(u.Quantity(column).to_value(unit), dtype=float)
        except u.UnitConversionError:
            raise ValueError(f"column {name!r} has unit {column.unit}, which is not a time (days)") from None
    values, _ = column_values(table if isinstance(table, Table) else Table(table), name, "observation")
    return values


# ---------------------------------------------------------------------- long tables
def read_lightcurve_table(source, *, object_id: str = "object_id", time: str = "time", band: str = "band",
                          flux: str = "flux", flux_err: str = "flux_err", meta=None, bands=None,
                          time_unit=None, format: str | None = None, drop_invalid: bool = False) -> Lightcurves:
    """Read long-format lightcurves (one row per observation) from CSV/ECSV/FITS, an astropy Table or pandas.

    Parameters
    ----------
    source : path, Table or pandas.DataFrame
    object_id, time, band, flux, flux_err : str
        The columns holding each quantity (renamed to these standard names).
    meta : path, Table or DataFrame, optional
        Per-object metadata with the same ``object_id`` column name (e.g.
        ``redshift``, ``redshift_err``, ``type_code``, ``label``).
    bands : sequence of str, optional
        Allowed filters, in channel order.
    time_unit : unit, optional
        Unit of a unit-less time column (CSV); default days.
    format : str, optional
        astropy format when the suffix does not say.
    drop_invalid : bool
        Drop invalid rows with a warning instead of raising.

    Returns
    -------
    Lightcurves
    """
    table, described = read_table(source, format, what="lightcurve table")
    requested = {"object_id": object_id, "time": time, "band": band, "flux": flux, "flux_err": flux_err}
    check_columns(table, requested, {k: k for k in requested}, described, what="lightcurve table")
    for standard, name in requested.items():
        if standard != name:
            table.rename_column(name, standard)
    t = table["time"]
    unit = getattr(t, "unit", None)
    try:
        values = np.asarray(getattr(t, "value", t), dtype=float)
    except (ValueError, TypeError):
        raise ValueError(f"column {time!r} (time) must be numeric, got values such as {str(t[0])!r}") from None
    if unit in (None, u.one):
        unit = u.Unit(time_unit) if time_unit is not None else u.day
    try:
        days = (values * u.Unit(unit)).to_value(u.day)
    except u.UnitConversionError:
        raise ValueError(f"column {time!r} has unit {unit}, which is not a time") from None
    # ids, bands and fluxes go to Lightcurves as they are (masks and units included): it checks them
    obs = Table({"object_id": table["object_id"], "time": days * u.day, "band": table["band"],
                 "flux": table["flux"], "flux_err": table["flux_err"]})
    meta_table = None
    if meta is not None:
        meta_table, meta_described = read_table(meta, None, what="lightcurve metadata")
        if object_id in meta_table.colnames and object_id != "object_id":
            meta_table.rename_column(object_id, "object_id")
        if "object_id" not in meta_table.colnames:
            raise ValueError(f"the metadata from {meta_described} has no column {object_id!r} (the object_id column "
                             f"of the observations); it has {meta_table.colnames}")
        if native_array(meta_table["object_id"]).dtype.kind == "f":
            raise ValueError(f"column {object_id!r} of the metadata holds floating-point numbers; ids must be "
                             "integers or strings, as in the observations (1.0 and 1 would not match)")
        meta_table = Table(meta_table)
        if "label" in meta_table.colnames:
            meta_table["label"] = _label_strings(meta_table["label"])
    return Lightcurves(obs, meta_table, bands=bands, drop_invalid=drop_invalid, source=described)


def write_lightcurves(lightcurves: Lightcurves, path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a collection as two ECSV files: ``<path>`` (observations) and ``<stem>_meta.ecsv``.

    ``.ecsv.gz`` names are compressed. Read them back with :func:`read_lightcurves`.
    Neither file may be one the collection was read from (a ValueError, even with ``overwrite``).
    """
    if not isinstance(lightcurves, Lightcurves):
        raise TypeError(f"lightcurves must be a Lightcurves collection, got {type(lightcurves).__name__}")
    path = Path(path)
    meta_path = _meta_path(path)
    sources = read_sources(lightcurves.observations.meta) + read_sources(lightcurves.meta.meta)
    for source in list(sources):
        try:  # a file written by write_lightcurves comes with its metadata file
            sources.append(_meta_path(Path(source)))
        except ValueError:
            pass
    for p in (path, meta_path):
        check_not_input(p, sources, argument="path", what="lightcurve file the collection was read from")
    for p in (path, meta_path):
        if p.exists() and not overwrite:
            raise FileExistsError(f"{str(p)!r} exists; pass overwrite=True to replace it")
    obs = lightcurves.observations.copy()
    obs.meta.pop(SOURCES_KEY, None)
    obs.meta["bands"] = list(lightcurves.bands)
    per_object = lightcurves.meta.copy(copy_data=False)
    per_object.meta.pop(SOURCES_KEY, None)
    if str(path).endswith(".gz"):
        import gzip

        for table, target in ((obs, path), (per_object, meta_path)):
            with gzip.open(target, "wt") as handle:
                table.write(handle, format="ascii.ecsv")
    else:
        write_table(obs, path, overwrite=overwrite, format="ascii.ecsv")
        write_table(per_object, meta_path, overwrite=overwrite, format="ascii.ecsv")
    return path, meta_path


def _label_strings(column) -> np.ndarray:
    """Class names as plain strings; masked or missing entries (an empty label in ECSV/CSV) become ``""``."""
    values = np.ma.filled(np.ma.asarray(column).astype(str), "") if np.ma.is_masked(column) else \
        native_array(np.asarray(column)).astype(str)
    return np.where(np.isin(values, ("--", "nan", "None")), "", values)


def _meta_path(path: Path) -> Path:
    name = path.name
    for suffix in (".ecsv.gz", ".ecsv"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + "_meta" + suffix)
    raise ValueError(f"lightcurve files are ECSV: the name must end in .ecsv or .ecsv.gz, got {name!r}")


def read_lightcurves(path) -> Lightcurves:
    """Read a collection written by :func:`write_lightcurves` (observations + ``_meta`` file, ECSV or ECSV.gz).

    Examples
    --------
    >>> from astrobayes.supernovae import SPCC_CATALOG
    >>> lcs = read_lightcurves(SPCC_CATALOG)
    >>> lcs.observations["time"].unit
    Unit("d")
    """
    path = Path(path)
    meta_path = _meta_path(path)
    for p in (path, meta_path):
        if not p.exists():
            raise FileNotFoundError(f"no lightcurve file at {str(p)!r}")
    obs, _ = read_table(path, "ascii.ecsv", what="lightcurve file")
    meta, _ = read_table(meta_path, "ascii.ecsv", what="lightcurve metadata file")
    if "object_id" not in meta.colnames:
        raise ValueError(f"the metadata file {str(meta_path)!r} has no column 'object_id' (it has {meta.colnames}); "
                         "was it written by write_lightcurves?")
    meta["object_id"] = native_array(meta["object_id"]).astype(str)
    if "label" in meta.colnames:
        meta["label"] = _label_strings(meta["label"])
    bands = obs.meta.get("bands")
    if bands is not None and (isinstance(bands, (str, bytes)) or not isinstance(bands, (list, tuple))
                              or not all(isinstance(b, str) for b in bands)):
        raise ValueError(f"the 'bands' entry of the header of {str(path)!r} should be a list of band names, got "
                         f"{bands!r}; the file is damaged")
    return Lightcurves(obs, meta, bands=bands, source=str(path))
