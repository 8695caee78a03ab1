"""Fuzz the stellar-catalogue reader and the model that consumes its output.

Catalogues come from memory (QTable, pandas) and from damaged ECSV/CSV/FITS
files: missing columns, wrong units (a temperature for a luminosity, watts
labelled solLum, log Teff), negative/NaN/huge/tiny values, text in numeric
columns, empty tables and unicode names. Accepted catalogues must hold
positive finite standard columns in the standard units; refused ones must
raise a documented exception naming the file, column or argument.
"""

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.table import Column, QTable, Table
from hypothesis import given, settings
from hypothesis import strategies as st

try:  # tests/fuzz as a package or as a plain directory on sys.path
    from .fuzz_damage import damage_file
except ImportError:
    from fuzz_damage import damage_file
from astrobayes.core.serialization import ModelFileError
from astrobayes.stars.emulator import exact_stellar_delta_map
from astrobayes.stars.io import STANDARD_UNITS, read_stellar_catalog
from astrobayes.stars.model import stefan_boltzmann_model

DOCUMENTED = (ValueError, TypeError, FileNotFoundError, ModelFileError)
COLUMNS = {"luminosity": "L", "luminosity_err": "e_L", "teff": "Teff", "teff_err": "e_Teff", "radius": "R",
           "radius_err": "e_R"}
ARGUMENTS = ("luminosity_unit", "teff_unit", "radius_unit", "drop_nan")


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message}"


def check_catalog(catalog: QTable) -> None:
    """What every accepted catalogue guarantees."""
    assert len(catalog) >= 1
    for standard in catalog.meta["catalog_columns"]:
        column = catalog[standard]
        assert column.unit == STANDARD_UNITS[standard][0]
        assert np.isfinite(column.value).all() and (column.value > 0).all()


# plausible values (in the unit they are labelled with) and hostile ones
plausible = {"L": st.floats(0.01, 1e5), "e_L": st.floats(1e-3, 10), "Teff": st.floats(3000, 40000),
             "e_Teff": st.floats(10, 500), "R": st.floats(0.1, 100), "e_R": st.floats(0.01, 1)}
hostile = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e-320, 1e308, 3.828e26])
units = {"L": ["solLum", "W", "erg / s", "K", "mag", "", "foo", "solLum2"],
         "Teff": ["K", "deg_C", "solLum", "", "kK", "dex(K)"], "R": ["solRad", "km", "m", "", "s", "pc"]}


@st.composite
def stellar_tables(draw):
    n = draw(st.integers(0, 6))
    names = draw(st.sampled_from([("L", "e_L"), ("L", "e_L", "Teff", "e_Teff"), ("L", "e_L", "R", "e_R"),
                                  tuple(COLUMNS.values())]))
    table = Table()
    right_units = draw(st.integers(0, 2)) > 0  # two tables in three have every unit right
    for name in names:
        # one column in four is hostile, so that some tables pass and the checks after reading run
        strategy = hostile if draw(st.integers(0, 3)) == 0 else plausible[name]
        values = [draw(strategy) for _ in range(n)]
        base = name.removeprefix("e_")
        unit = units[base][0] if right_units else draw(st.sampled_from(units[base]))
        table[name] = Column(np.array(values, dtype=float), unit=unit or None)
    change = draw(st.sampled_from(["none", "none", "none", "drop", "text", "masked", "rename"]))
    column = draw(st.sampled_from(names))
    if change == "drop":
        table.remove_column(column)
    elif change == "text":
        table[column] = [draw(st.sampled_from(["1.0", "x", "", "Ω"])) for _ in range(n)]
    elif change == "masked" and n:
        table[column] = np.ma.masked_array(np.asarray(table[column], dtype=float),
                                           mask=[draw(st.booleans()) for _ in range(n)])
    elif change == "rename":
        table.rename_column(column, draw(st.sampled_from(["Ω_" + column, column.lower() + " ", "𝒢"])))
    return table, names


def _read(table, names, **units_given):
    options = {standard: name for standard, name in COLUMNS.items() if name in names}
    return read_stellar_catalog(table, luminosity=options["luminosity"], luminosity_err=options["luminosity_err"],
                                teff=options.get("teff"), teff_err=options.get("teff_err"),
                                radius=options.get("radius"), radius_err=options.get("radius_err"), **units_given)


@given(spec=stellar_tables(), drop_nan=st.booleans(),
       given_unit=st.sampled_from([{}, {}, {"luminosity_unit": "W"}, {"teff_unit": "K"}, {"radius_unit": "bogus"},
                                   {"luminosity_unit": 3}]))
def test_fuzz_read_stellar_catalog_from_memory(spec, drop_nan, given_unit):
    table, names = spec
    try:
        catalog = _read(table, names, drop_nan=drop_nan, **given_unit)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, *names, *COLUMNS, *ARGUMENTS, "column", "astropy Table")
    else:
        check_catalog(catalog)


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: every example writes and parses a file
@given(spec=stellar_tables(), suffix=st.sampled_from([".ecsv", ".csv", ".fits", ".ecsv.gz"]),
       cut=st.integers(0, 400), flip=st.none() | st.tuples(st.integers(0, 10**6), st.integers(0, 255)))
def test_fuzz_read_stellar_catalog_from_file(tmp_path, spec, suffix, cut, flip):
    table, names = spec
    path = tmp_path / f"stars Ω{suffix}"
    try:
        table.write(path, overwrite=True, format="ascii.ecsv" if suffix == ".ecsv.gz" else None)
    except Exception:  # noqa: BLE001  (astropy cannot write some hostile tables: nothing to read then)
        return
    damage_file(path, compress=suffix == ".ecsv.gz", flip=flip, cut=cut)
    options = {"luminosity_unit": "solLum", "teff_unit": "K", "radius_unit": "solRad"} if suffix == ".csv" else {}
    options["format"] = "ascii.ecsv" if suffix == ".ecsv.gz" else None
    try:
        catalog = _read(path, names, **options)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path), *names, *COLUMNS, *ARGUMENTS)
    else:
        check_catalog(catalog)


@pytest.fixture(scope="module")
def exact_map():
    return exact_stellar_delta_map()


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: each accepted catalogue builds a grid model
@given(luminosity=st.lists(st.floats(1e-12, 1e12) | st.floats(0.1, 1e4), min_size=1, max_size=5),
       fractional_error=st.floats(1e-6, 10.0))
def test_fuzz_stellar_model_from_accepted_catalogue(exact_map, luminosity, fractional_error):
    """Whatever the reader accepts, the hierarchical model builds or names the stars it cannot make."""
    table = QTable({"L": np.array(luminosity) * u.solLum,
                    "e_L": np.array(luminosity) * fractional_error * u.solLum})
    try:
        catalog = read_stellar_catalog(table, luminosity="L", luminosity_err="e_L")
        model = stefan_boltzmann_model(catalog, exact_map, free=("sigma",))
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "'L'", "catalogue rows", "luminosity")
        return
    log_p = model.log_prob(np.array([[5.67e-8]]))
    assert np.isfinite(np.asarray(log_p)).all() or np.asarray(log_p).max() == -np.inf


@given(frame=st.fixed_dictionaries({"L": st.lists(st.floats(allow_nan=True) | st.text(max_size=3), max_size=4)}))
def test_fuzz_read_stellar_catalog_from_pandas(frame):
    frame = pd.DataFrame({"L": frame["L"], "e_L": [0.1] * len(frame["L"])})
    try:
        catalog = read_stellar_catalog(frame, luminosity="L", luminosity_err="e_L", luminosity_unit="solLum")
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "'L'", "'e_L'", "catalog")
    else:
        check_catalog(catalog)
