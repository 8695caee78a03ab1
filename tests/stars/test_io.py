"""Stellar catalog I/O: unit conversion, standard names, round trips through ECSV/FITS/CSV, and every bad-input error.

No statistics here: conversions are checked against the IAU 2015 nominal values (L_sun = 3.828e26 W,
R_sun = 6.957e8 m, exact by definition) to floating-point precision.
"""
import warnings

import astropy.constants as const
import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.table import MaskedColumn, QTable, Table

from astrobayes.stars.io import read_stellar_catalog, write_stellar_catalog


def sample_catalog() -> QTable:
    """Three stars in SI units with odd column names, plus columns that must survive untouched."""
    return QTable({
        "source_id": np.array([101, 102, 103]),
        "L_bol": [3.828e26, 7.656e26, 1.914e26] * u.W,
        "e_L_bol": [3.828e25, 3.828e25, 1.914e25] * u.W,
        "Teff": [5772.0, 6500.0, 4500.0] * u.K,
        "R": [6.957e5, 1.3914e6, 3.4785e5] * u.km,
        "plx": [10.0, -0.3, 2.5] * u.mas,
        "e_plx": [0.1, 0.2, 0.1] * u.mas,
        "G": [5.0, 6.1, 7.2] * u.mag,
    })


def read_sample(table, **kwargs):
    options = {"luminosity": "L_bol", "luminosity_err": "e_L_bol", "teff": "Teff", "radius": "R", "parallax": "plx",
               "parallax_err": "e_plx"}
    options.update(kwargs)
    return read_stellar_catalog(table, **options)


# ------------------------------------------------------------------ conversions and standard names
def test_si_luminosities_become_solar_and_columns_get_standard_names():
    catalog = read_sample(sample_catalog())
    assert catalog["luminosity"].unit == u.solLum and catalog["luminosity_err"].unit == u.solLum
    # 3.828e26 W is exactly one nominal solar luminosity, and astropy.constants uses the same value
    np.testing.assert_allclose(catalog["luminosity"].value, [1.0, 2.0, 0.5], rtol=1e-14)
    np.testing.assert_allclose(catalog["luminosity_err"].value, [0.1, 0.1, 0.05], rtol=1e-14)
    assert (const.L_sun / (1 * u.solLum)).decompose().value == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(catalog["radius"].to_value(u.solRad), [1.0, 2.0, 0.5], rtol=1e-14)
    assert catalog["radius"].unit == u.solRad and catalog["teff"].unit == u.K and catalog["parallax"].unit == u.mas
    assert catalog["parallax"][1] < 0  # negative parallaxes are measurements, not errors
    assert catalog.colnames == ["source_id", "luminosity", "luminosity_err", "teff", "radius", "parallax",
                                "parallax_err", "G"]
    assert list(catalog["source_id"]) == [101, 102, 103] and catalog["G"].unit == u.mag
    assert catalog.meta["catalog_columns"]["luminosity"] == "L_bol" and catalog.meta["dropped_rows"] == []


def test_erg_per_second_and_columns_without_units_are_converted():
    table = Table({"lum": [3.828e33, 3.828e34], "lum_err": [3.828e32, 3.828e32]})  # CSV-like: no units
    catalog = read_stellar_catalog(table, luminosity="lum", luminosity_err="lum_err", luminosity_unit="erg/s")
    np.testing.assert_allclose(catalog["luminosity"].value, [1.0, 10.0], rtol=1e-14)


def test_the_input_table_is_not_modified():
    table = sample_catalog()
    read_sample(table)
    assert "L_bol" in table.colnames and table["L_bol"].unit == u.W


def test_pandas_dataframe_with_units_given():
    frame = pd.DataFrame({"L": [1.0, 2.0], "L_err": [0.1, 0.2], "Teff": [5772.0, 6000.0], "name": ["a", "b"]})
    catalog = read_stellar_catalog(frame, luminosity="L", luminosity_err="L_err", teff="Teff",
                                   luminosity_unit=u.solLum, teff_unit="K")
    assert catalog["luminosity"].unit == u.solLum and catalog["teff"].unit == u.K
    assert list(catalog["name"]) == ["a", "b"]
    with pytest.raises(ValueError, match="column 'L' .*has no unit.*luminosity_unit="):
        read_stellar_catalog(frame, luminosity="L", luminosity_err="L_err")


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("suffix", ["ecsv", "fits"])
def test_round_trip_keeps_values_and_units(tmp_path, suffix):
    catalog = read_sample(sample_catalog())
    path = tmp_path / f"stars.{suffix}"
    write_stellar_catalog(catalog, path)
    again = read_stellar_catalog(path, teff="teff", radius="radius", parallax="parallax", parallax_err="parallax_err")
    assert again.colnames == catalog.colnames
    for name in catalog.colnames:
        assert getattr(again[name], "unit", None) == getattr(catalog[name], "unit", None), name
        np.testing.assert_array_equal(np.asarray(again[name]), np.asarray(catalog[name]), err_msg=name)
    with pytest.raises(OSError):  # an existing file is not replaced silently
        write_stellar_catalog(catalog, path)
    write_stellar_catalog(catalog, path, overwrite=True)


def test_write_refuses_the_file_it_was_read_from(tmp_path, monkeypatch):
    path = tmp_path / "stars.ecsv"
    write_stellar_catalog(read_sample(sample_catalog()), path)
    original = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    catalog = read_stellar_catalog("stars.ecsv", teff="teff", radius="radius", parallax="parallax",
                                   parallax_err="parallax_err")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match=r"path 'sub/\.\./stars.ecsv' is the file the table was read from"):
        write_stellar_catalog(catalog[:2], "sub/../stars.ecsv", overwrite=True)
    assert path.read_bytes() == original


def test_round_trip_through_csv_with_units_given(tmp_path):
    catalog = read_sample(sample_catalog())
    path = tmp_path / "stars.csv"
    with pytest.warns(UserWarning, match="CSV keeps no units.*luminosity \\[solLum\\]"):
        write_stellar_catalog(catalog, path)
    with pytest.raises(ValueError, match="column 'luminosity' .*has no unit"):
        read_stellar_catalog(path)
    again = read_stellar_catalog(path, teff="teff", radius="radius", luminosity_unit="solLum", teff_unit="K",
                                 radius_unit="solRad")
    for name in ("luminosity", "luminosity_err", "teff", "radius"):
        assert again[name].unit == catalog[name].unit
        # CSV writes decimal text: %.17g-style output reproduces float64 exactly
        np.testing.assert_allclose(again[name].value, catalog[name].value, rtol=1e-15, err_msg=name)


def test_masked_entries_count_as_missing(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("L,L_err\n1.0,0.1\n,0.1\n2.0,\n3.0,0.2\n")  # rows 1 and 2 have empty fields
    with pytest.raises(ValueError, match="2 of 4 row\\(s\\) with NaN, inf or masked.*rows 1, 2"):
        read_stellar_catalog(path, luminosity="L", luminosity_err="L_err", luminosity_unit="solLum")
    table = Table({"L": MaskedColumn([1.0, 2.0], mask=[False, True], unit=u.solLum), "L_err": [0.1, 0.1] * u.solLum})
    with pytest.raises(ValueError, match="rows 1"):
        read_stellar_catalog(table, luminosity="L", luminosity_err="L_err")


# ------------------------------------------------------------------ bad input
def test_missing_luminosity_column_names_it_and_lists_the_columns():
    table = sample_catalog()
    with pytest.raises(ValueError, match="no luminosity column 'luminosity'.*available columns.*'L_bol'"):
        read_stellar_catalog(table)
    with pytest.raises(ValueError, match="no luminosity_err column 'sigma_L'"):
        read_stellar_catalog(table, luminosity="L_bol", luminosity_err="sigma_L")
    catalog = read_stellar_catalog(table, luminosity="L_bol", luminosity_err=None)
    assert "luminosity_err" not in catalog.colnames


@pytest.mark.parametrize("values, rows", [([1.0, -2.0, 3.0], "rows 1"), ([0.0, 1.0, -1e-3], "rows 0, 2")])
def test_non_positive_luminosities_are_refused_with_their_rows(values, rows):
    table = QTable({"L": values * u.solLum, "L_err": [0.1, 0.1, 0.1] * u.solLum})
    with pytest.raises(ValueError, match=f"column 'L' \\(luminosity\\) has .*non-positive values \\({rows}\\)"):
        read_stellar_catalog(table, luminosity="L", luminosity_err="L_err")


def test_luminosities_without_units_are_refused():
    table = QTable({"luminosity": [1.0, 2.0], "luminosity_err": [0.1, 0.1] * u.solLum})
    with pytest.raises(ValueError, match="column 'luminosity' \\(luminosity\\) has no unit.*luminosity_unit='solLum'"):
        read_stellar_catalog(table)
    # a dimensionless Quantity is no more a luminosity than a bare number
    table["luminosity"] = [1.0, 2.0] * u.dimensionless_unscaled
    with pytest.raises(ValueError, match="has no unit"):
        read_stellar_catalog(table)


@pytest.mark.parametrize("column, unit, match", [
    ("luminosity", u.K, "column 'luminosity' has unit K, which is not a luminosity"),
    ("luminosity_err", u.m, "column 'luminosity_err' has unit m, which is not a luminosity uncertainty"),
    ("teff", u.W, "column 'teff' has unit W, which is not a temperature"),
    ("teff", u.deg_C, "column 'teff' has unit deg_C, which is not a temperature"),
    ("radius", u.s, "column 'radius' has unit s, which is not a radius"),
])
def test_wrong_units_name_the_column_and_unit(column, unit, match):
    table = QTable({"luminosity": [1.0, 2.0] * u.solLum, "luminosity_err": [0.1, 0.1] * u.solLum,
                    "teff": [5000.0, 6000.0] * u.K, "radius": [1.0, 1.0] * u.solRad})
    table[column] = table[column].value * unit
    with pytest.raises(ValueError, match=match):
        read_stellar_catalog(table, teff="teff", radius="radius")


def test_unit_argument_conflicting_with_the_column_unit_is_refused():
    with pytest.raises(ValueError, match="already has unit W, but luminosity_unit='solLum'"):
        read_sample(sample_catalog(), luminosity_unit="solLum")
    with pytest.raises(ValueError, match="luminosity_unit='furlong per fortnight' is not a unit"):
        read_stellar_catalog(Table({"luminosity": [1.0], "luminosity_err": [0.1]}),
                             luminosity_unit="furlong per fortnight")


def test_logarithmic_luminosities_are_refused():
    table = QTable({"luminosity": u.Dex([0.0, 1.0], u.dex(u.solLum)), "luminosity_err": [0.1, 0.1] * u.solLum})
    with pytest.raises(ValueError, match="logarithmic unit"):
        read_stellar_catalog(table)


def test_nan_rows_raise_unless_dropped_with_a_warning():
    table = sample_catalog()
    table["L_bol"][0] = np.nan * u.W
    table["Teff"][2] = np.nan * u.K
    with pytest.raises(ValueError, match="2 of 3 row\\(s\\) with NaN.*\\['L_bol', 'Teff'\\].*rows 0, 2.*drop_nan=True"):
        read_sample(table)
    with pytest.warns(UserWarning, match="dropping 2 of 3 row\\(s\\)"):
        catalog = read_sample(table, drop_nan=True)
    assert list(catalog["source_id"]) == [102] and catalog.meta["dropped_rows"] == [0, 2]
    # NaN in a column that is not asked for is none of the reader's business
    table = sample_catalog()
    table["G"][1] = np.nan * u.mag
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_sample(table)) == 3


@pytest.mark.parametrize("column, standard", [("e_L_bol", "luminosity_err"), ("e_plx", "parallax_err")])
def test_non_positive_uncertainties_are_refused(column, standard):
    table = sample_catalog()
    table[column][1] = 0 * table[column].unit
    with pytest.raises(ValueError, match=f"column '{column}' \\({standard}\\) has 1 non-positive uncertainties "
                                         "\\(rows 1\\)"):
        read_sample(table)


def test_row_indices_refer_to_the_original_table_after_dropping():
    table = sample_catalog()
    table["Teff"][0] = np.nan * u.K
    table["L_bol"][2] = -1 * u.W
    with pytest.warns(UserWarning, match="dropping 1"), \
            pytest.raises(ValueError, match="non-positive values \\(rows 2\\)"):
        read_sample(table, drop_nan=True)


def test_other_bad_arguments():
    table = sample_catalog()
    with pytest.raises(ValueError, match="were given for more than one quantity"):
        read_sample(table, teff="L_bol")
    with pytest.raises(ValueError, match="already has a column 'luminosity' besides 'L_bol'"):
        table["luminosity"] = table["L_bol"]
        read_sample(table)
    with pytest.raises(ValueError, match="column 'name' must be numeric"):
        read_stellar_catalog(QTable({"name": ["a"], "luminosity_err": [1.0] * u.solLum}), luminosity="name")
    with pytest.raises(TypeError, match="source must be a path"):
        read_stellar_catalog(np.ones(3))
    with pytest.raises(TypeError, match="teff must be a column name"):
        read_sample(sample_catalog(), teff=3)
    with pytest.raises(TypeError, match="drop_nan must be True or False"):
        read_sample(sample_catalog(), drop_nan="yes")
    with pytest.raises(TypeError, match="table must be an astropy Table"):
        write_stellar_catalog({"luminosity": [1.0]}, "stars.ecsv")


def test_empty_catalogs_are_refused():
    empty = QTable({"luminosity": np.zeros(0) * u.solLum, "luminosity_err": np.zeros(0) * u.solLum})
    with pytest.raises(ValueError, match="no usable rows \\(0 row\\(s\\) read"):
        read_stellar_catalog(empty)
    all_nan = QTable({"luminosity": [np.nan] * u.solLum, "luminosity_err": [0.1] * u.solLum})
    with pytest.warns(UserWarning, match="dropping 1 of 1"), pytest.raises(ValueError, match="1 dropped"):
        read_stellar_catalog(all_nan, drop_nan=True)


def test_missing_or_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no stellar catalog at"):
        read_stellar_catalog(tmp_path / "absent.ecsv")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"this is not FITS")
    with pytest.raises(ValueError, match="could not read .*junk.fits"):
        read_stellar_catalog(junk)
