"""DEBCat, Southworth's catalogue of detached eclipsing binaries, as a stellar catalogue with units.

DEBCat (Southworth 2015, ASP Conf. Ser. 496, 164) lists binaries whose
*dynamical* masses and radii are known to about 2 % or better. A copy of its
machine-readable table ``debs.dat`` (the 2021-02-04 snapshot: 262 systems,
524 stars) ships in ``catalogs/stars/`` (:data:`DEBCAT_PATH`; provenance in
``catalogs/stars/README.md``). :func:`read_debcat` turns its one-row-per-system
table of log10 values, with −9.99 for a missing value, into one row per star
with the column names and units of :func:`~astrobayes.stars.io.read_stellar_catalog`
plus ``mass``/``mass_err``, so that it goes straight into the stars functions.

Two caveats travel with the table (in ``meta["caveats"]``):

* DEBCat's log L is *computed* from R and T_eff with the nominal σ; it is not
  an independent measurement, so σ inferred from these luminosities alone is
  circular (it returns the σ used to build the column);
* the catalogue holds subgiants and giants too (e.g. TZ For A, R = 8.3 R_sun):
  ``main_sequence=True`` keeps the stars with log g ≥ 4.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import QTable

from astrobayes import __version__
from astrobayes.core.paths import remember_sources

__all__ = ["DEBCAT_PATH", "DEBCAT_CITATION", "read_debcat"]

#: the copy of DEBCat's ``debs.dat`` shipped with astrobayes (262 systems, 2021-02-04 snapshot)
DEBCAT_PATH = Path(__file__).resolve().parents[2] / "catalogs" / "stars" / "debs.dat"
DEBCAT_CITATION = ("Southworth J., 2015, 'DEBCat: A Catalog of Detached Eclipsing Binary Stars', "
                   "ASP Conf. Ser. 496, 164 (arXiv:1411.1219)")
_CAVEATS = [
    "log L is computed from R and T_eff with the nominal Stefan-Boltzmann constant, not measured independently: "
    "sigma inferred from these luminosities alone returns the sigma used to build them",
    "subgiants and giants are included (e.g. TZ For A, OGLE-SMC-ECL-1492); cut on log g >= 4 for the main sequence",
    "[M/H] is given for about half of the systems, one value per system (both stars), and is used as [Fe/H]; "
    "an [M/H] error of 0 means none was quoted and is read as missing",
    "2021-02-04 snapshot with 262 systems; the live catalogue (keele.ac.uk/jkt/debcat) has grown since",
]
_MISSING = -9.99
_N_FIELDS = 28
# the numeric fields after System, SpT1, SpT2 (file columns 4-28), in order
_NUMERIC = ("period", "v_mag", "b_v",
            "log_mass_1", "log_mass_err_1", "log_mass_2", "log_mass_err_2",
            "log_radius_1", "log_radius_err_1", "log_radius_2", "log_radius_err_2",
            "log_g_1", "log_g_err_1", "log_g_2", "log_g_err_2",
            "log_teff_1", "log_teff_err_1", "log_teff_2", "log_teff_err_2",
            "log_luminosity_1", "log_luminosity_err_1", "log_luminosity_2", "log_luminosity_err_2",
            "feh", "feh_err")
# log10 values no star has (stars span ~0.08–300 M_sun, 0.08–2000 R_sun, 2000–100000 K): a damaged file
_PLAUSIBLE = {"log_mass": (-1.5, 2.5), "log_radius": (-1.5, 3.5), "log_teff": (3.3, 5.0), "log_g": (-1.0, 6.5),
              "log_luminosity": (-6.0, 7.0), "feh": (-5.0, 1.5)}
# DEBCat's own column names, for messages and meta["catalog_columns"]
_ORIGINAL = {"log_mass": "log(M1)/log(M2)", "log_radius": "log(R1)/log(R2)", "log_g": "log_g1/log_g2",
             "log_teff": "log(Teff1)/log(Teff2)", "log_luminosity": "log(L1)/log(L2)", "feh": "[M/H]",
             "period": "P(d)", "v_mag": "V", "b_v": "B-V"}
# log10 quantity → (linear column, unit, description of the linear column)
_LINEAR = {"log_mass": ("mass", u.solMass, "dynamical mass"),
           "log_radius": ("radius", u.solRad, "radius"),
           "log_teff": ("teff", u.K, "effective temperature"),
           "log_luminosity": ("luminosity", u.solLum, "luminosity, computed by DEBCat from R and T_eff")}


def _source_path(source) -> Path:
    if source is None:
        return DEBCAT_PATH
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be the path of a DEBCat table (debs.dat) or None for the shipped copy, got "
                        f"{type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no DEBCat table at {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a DEBCat table (debs.dat)")
    return path


def _parse(path: Path) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Names, spectral types 1 and 2, and the (n_systems, 25) numeric fields with −9.99 as NaN."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r} is not a DEBCat table: it is not plain ASCII text") from None
    header = next((line for line in lines if line.strip()), "")
    if not (header.lstrip().startswith("#") and "System" in header and "log(M1)" in header):
        raise ValueError(f"{str(path)!r} is not a DEBCat table: its first line should be the header "
                         f"'# System SpT1 SpT2 P(d) V B-V log(M1) error ...', got {header[:60]!r}")
    names, types_1, types_2, rows, first_line = [], [], [], [], {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != _N_FIELDS:
            raise ValueError(f"{path.name} line {number} has {len(fields)} fields, a DEBCat row has {_N_FIELDS} "
                             f"(System, SpT1, SpT2 and 25 numbers): {line[:60].strip()!r}...")
        try:
            rows.append([float(value) for value in fields[3:]])
        except ValueError:
            bad = next(i for i, value in enumerate(fields[3:]) if not _is_number(value))
            raise ValueError(f"{path.name} line {number} ({fields[0]}): column {_NUMERIC[bad]!r} is "
                             f"{fields[3 + bad]!r}, not a number (missing values are -9.99)") from None
        if fields[0] in first_line:  # both stars of a system counted twice
            raise ValueError(f"{path.name} line {number}: system {fields[0]!r} is listed twice (first on line "
                             f"{first_line[fields[0]]}); remove the duplicate row")
        first_line[fields[0]] = number
        names.append(fields[0])
        types_1.append("" if fields[1].lower() == "none" else fields[1])
        types_2.append("" if fields[2].lower() == "none" else fields[2])
    if not rows:
        raise ValueError(f"{str(path)!r} has a DEBCat header but no data rows")
    values = np.array(rows, dtype=np.float64)
    values[np.isclose(values, _MISSING, rtol=0, atol=1e-6) | ~np.isfinite(values)] = np.nan
    return names, types_1, types_2, values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_debcat(source=None, *, main_sequence: bool = False, min_log_g: float = 4.0,
                drop_missing_mass: bool = False) -> QTable:
    """Read DEBCat into one row per star, with units.

    Parameters
    ----------
    source : str, path or None
        A DEBCat ``debs.dat`` table; None (default) reads the shipped copy
        :data:`DEBCAT_PATH` (262 systems, 524 stars).
    main_sequence : bool
        Keep only stars with log g ≥ ``min_log_g`` (and a known log g); how
        many were dropped is in ``meta["selection"]``.
    min_log_g : float
        log10(g / cm s⁻²) of the main-sequence cut (4.0: the Sun has 4.44,
        the end of a solar-mass star's main sequence about 4.0).
    drop_missing_mass : bool
        A system whose log M (or its error) is −9.99 for either star is an
        error; True drops those systems with a ``UserWarning`` naming them.

    Returns
    -------
    QTable
        One row per star, component 1 then 2 of each system, in file order:
        ``system``, ``component`` (1 or 2), ``spectral_type`` ("" where DEBCat
        has none), ``period`` [d], ``v_mag`` and ``b_v`` [mag] (of the
        system), and for each of mass [solMass], radius [solRad], teff [K] and
        luminosity [solLum]: DEBCat's ``log_<name>`` and ``log_<name>_err``
        (dex) and the linear ``<name>`` and ``<name>_err``, then ``log_g``
        and ``log_g_err`` (cgs, dex), ``feh`` and ``feh_err`` (DEBCat's [M/H],
        used as [Fe/H]). A linear error is ln(10)·value·(log error), so that
        ``<name>_err / <name>`` is exactly the 1σ error of ln(value), the
        log-normal convention of :mod:`astrobayes.stars.model`. Missing values
        (−9.99 in the file: log L for 37 systems, [M/H] for 125) are NaN.
        ``meta`` holds ``catalog_source`` (the path), ``citation``,
        ``caveats``, ``selection`` and ``dropped_systems``.

    Raises
    ------
    ValueError
        A file that is not a DEBCat table, a row without 28 fields or with a
        field that is not a number (naming the line), a missing mass (naming
        the systems; see ``drop_missing_mass``), a negative uncertainty, a
        system listed twice, a ``min_log_g`` no star has.

    Examples
    --------
    >>> stars = read_debcat()
    >>> len(stars), len(set(stars["system"]))
    (524, 262)
    >>> cm_dra = stars[stars["system"] == "CM_Dra"]
    >>> cm_dra["mass"].round(4)
    <Quantity [0.231 , 0.2141] solMass>
    >>> len(read_debcat(main_sequence=True))
    344
    """
    for name, value in (("main_sequence", main_sequence), ("drop_missing_mass", drop_missing_mass)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    if isinstance(min_log_g, bool) or not isinstance(min_log_g, (int, float)) or not math.isfinite(min_log_g):
        raise TypeError(f"min_log_g must be a number (log10 g in cgs, e.g. 4.0), got {min_log_g!r}")
    if not _PLAUSIBLE["log_g"][0] <= min_log_g <= _PLAUSIBLE["log_g"][1]:
        raise ValueError(f"min_log_g={min_log_g!r} is outside the {_PLAUSIBLE['log_g'][0]:g} to "
                         f"{_PLAUSIBLE['log_g'][1]:g} any star has: it is log10(g / cm s^-2) (the Sun 4.44), not g")
    path = _source_path(source)
    names, types_1, types_2, values = _parse(path)
    field = {name: values[:, i] for i, name in enumerate(_NUMERIC)}

    negative = np.zeros(len(names), dtype=bool)
    for name in (n for n in _NUMERIC if "_err" in n):
        value = name.replace("_err", "")
        # the error of a missing value is itself missing, whatever is written there (V1143 Cyg has -9.00
        # beside a -9.99 [M/H])
        field[name] = np.where(np.isnan(field[value]), np.nan, field[name])
        negative |= field[name] < 0
        too_large = np.flatnonzero(field[name] > 1.0)
        if too_large.size:
            raise ValueError(f"{path.name}: the {name} of system {names[too_large[0]]} is "
                             f"{field[name][too_large[0]]:g} dex, a factor 10 or more; DEBCat's errors are a few "
                             "per cent (is the file damaged?)")
    if negative.any():
        shown = [names[i] for i in np.flatnonzero(negative)[:5]]
        raise ValueError(f"{path.name}: negative uncertainties for system(s) {shown}; DEBCat errors are positive "
                         "(missing values are -9.99)")
    for name, (low, high) in _PLAUSIBLE.items():
        for component in ((1, 2) if name != "feh" else (0,)):
            values = field[f"{name}_{component}"] if component else field[name]
            outside = np.flatnonzero((values < low) | (values > high))
            if outside.size:
                column = _ORIGINAL[name].split("/")[component - 1] if component else _ORIGINAL[name]
                raise ValueError(f"{path.name}: {column} of system "
                                 f"{names[outside[0]]} is {values[outside[0]]:g}, outside the {low:g} to {high:g} any "
                                 f"star has ({outside.size} such row(s)); is the file damaged?")
    not_positive = np.flatnonzero(field["period"] <= 0)
    if not_positive.size:
        raise ValueError(f"{path.name}: the period P(d) of system {names[not_positive[0]]} is "
                         f"{field['period'][not_positive[0]]:g} d; an orbital period is positive")
    # DEBCat writes 0.00 where a paper quoted no [M/H] error: a zero error would claim an exact metallicity
    field["feh_err"] = np.where(field["feh_err"] == 0, np.nan, field["feh_err"])

    no_mass = np.zeros(len(names), dtype=bool)
    for name in ("log_mass_1", "log_mass_err_1", "log_mass_2", "log_mass_err_2"):
        no_mass |= ~np.isfinite(field[name]) | ((field[name] <= 0) if "_err" in name else False)
    dropped_systems = [names[i] for i in np.flatnonzero(no_mass)]
    if dropped_systems:
        message = (f"{len(dropped_systems)} system(s) without a dynamical mass and its error for both stars "
                   f"(-9.99 in log(M1)/log(M2) or their errors): {dropped_systems[:10]}"
                   f"{' ...' if len(dropped_systems) > 10 else ''}")
        if not drop_missing_mass:
            raise ValueError(f"{path.name} has {message}; the mass is what DEBCat measures, so these are an error: "
                             "fix the file, or pass drop_missing_mass=True to drop those systems")
        warnings.warn(f"dropping {message}", UserWarning, stacklevel=2)
        if no_mass.all():
            raise ValueError(f"{path.name}: no system has a dynamical mass")

    keep = np.flatnonzero(~no_mass)
    n_stars = 2 * keep.size
    table = QTable()
    table["system"] = np.repeat(np.array(names, dtype=str)[keep], 2)
    table["component"] = np.tile(np.array([1, 2]), keep.size)
    table["spectral_type"] = np.array([t for i in keep for t in (types_1[i], types_2[i])], dtype=str)

    def per_star(name: str) -> np.ndarray:
        # interleave component 1 and 2 of each kept system
        return np.column_stack([field[f"{name}_1"][keep], field[f"{name}_2"][keep]]).reshape(n_stars)

    table["period"] = np.repeat(field["period"][keep], 2) * u.day
    table["v_mag"] = np.repeat(field["v_mag"][keep], 2) * u.mag
    table["b_v"] = np.repeat(field["b_v"][keep], 2) * u.mag
    for log_name, (linear, unit, what) in _LINEAR.items():
        log_value, log_error = per_star(log_name), per_star(f"{log_name}_err")
        table[f"log_{linear}"] = log_value
        table[f"log_{linear}_err"] = log_error
        table[linear] = 10.0 ** log_value * unit
        table[f"{linear}_err"] = math.log(10.0) * 10.0 ** log_value * log_error * unit
        table[f"log_{linear}"].info.description = f"log10 of the {what} as in DEBCat [{unit}] (dex)"
        table[f"log_{linear}_err"].info.description = f"1-sigma error of log_{linear} (dex)"
        table[linear].info.description = f"{what} (NaN where DEBCat has -9.99)"
        table[f"{linear}_err"].info.description = (f"1-sigma error of {linear}: ln(10) * {linear} * "
                                                   f"log_{linear}_err, so {linear}_err/{linear} is the error of "
                                                   f"ln({linear})")
    table["log_g"] = per_star("log_g")
    table["log_g_err"] = per_star("log_g_err")
    table["feh"] = np.repeat(field["feh"][keep], 2)
    table["feh_err"] = np.repeat(field["feh_err"][keep], 2)
    descriptions = {"system": "DEBCat system name (spaces as _)", "component": "1 = primary, 2 = secondary",
                    "spectral_type": "DEBCat spectral type ('' where none is given)",
                    "period": "orbital period", "v_mag": "apparent V magnitude of the system",
                    "b_v": "B-V colour of the system", "log_g": "log10(g / (cm s^-2)), surface gravity",
                    "log_g_err": "1-sigma error of log_g (dex)",
                    "feh": "DEBCat [M/H] of the system, used as [Fe/H] (dex; NaN where not measured)",
                    "feh_err": "1-sigma error of feh (dex; NaN where none was quoted)"}
    for name, description in descriptions.items():
        table[name].info.description = description

    selection = f"all {n_stars} stars of {keep.size} systems"
    if main_sequence:
        on = np.isfinite(table["log_g"]) & (table["log_g"] >= min_log_g)
        selection = (f"main_sequence: kept {int(on.sum())} of {n_stars} stars with log g >= {min_log_g:g} "
                     f"({int((~on).sum())} dropped)")
        table = table[on]
    table.meta.update({
        "catalog_source": str(path), "catalog": "DEBCat (detached eclipsing binaries)", "citation": DEBCAT_CITATION,
        "catalog_columns": dict(_ORIGINAL), "caveats": list(_CAVEATS), "selection": selection,
        "dropped_systems": dropped_systems, "missing_value": _MISSING, "astrobayes_version": __version__,
    })
    remember_sources(table.meta, [path])  # writers refuse to write over it
    return table
