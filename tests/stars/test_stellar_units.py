"""Values no star has are refused with the unit mistake that usually causes them (read_stellar_catalog).

Before, watts labelled solLum (1e26 "L_sun") were read as they were, and the
hierarchical model then said only that no σ could make those catalogue rows.
"""
import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable

from astrobayes.stars.io import PLAUSIBLE_RANGES, read_stellar_catalog


def _catalog(**columns) -> QTable:
    table = QTable({"L": [1.0, 2.0] * u.solLum, "e_L": [0.1, 0.1] * u.solLum})
    table.update(columns)
    return table


def _read(table, **kwargs):
    return read_stellar_catalog(table, luminosity="L", luminosity_err="e_L", **kwargs)


@pytest.mark.parametrize("columns, kwargs, message", [
    ({"L": [3.828e26, 1.0] * u.solLum}, {}, r"column 'L' \(luminosity\) has 1 value\(s\) no star has \(e\.g\. "
                                            r"3\.828e\+26 solLum in rows 0;.*luminosities in W or erg/s labelled solLum"),
    ({"L": [3.828e26, 7.6e26], "e_L": [1e25, 1e25]}, {"luminosity_unit": "solLum"},
     r"labelled solLum: give the column its true unit \(or pass luminosity_unit= for a column without one\)"),
    ({"L": [1.0, 2.0] * u.W, "e_L": [0.1, 0.1] * u.W}, {}, r"luminosities in solLum labelled W or erg/s"),
    ({"T": [3.76, 3.8] * u.K, "e_T": [0.01, 0.01] * u.K}, {"teff": "T", "teff_err": "e_T"},
     r"column 'T' \(teff\).*log10\(Teff\) or kK labelled K"),
    ({"R": [6.957e5, 1e3] * u.solRad, "e_R": [1.0, 1.0] * u.solRad}, {"radius": "R", "radius_err": "e_R"},
     r"column 'R' \(radius\).*radii in km or m labelled solRad"),
])
def test_values_no_star_has_suggest_the_unit_mistake(columns, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _read(_catalog(**columns), **kwargs)


def test_the_plausible_ranges_hold_real_stars():
    # the Sun, a brown dwarf, an O supergiant, a white dwarf and a red supergiant are all accepted
    table = QTable({"L": [1.0, 1e-6, 1e6, 1e-3, 2e5] * u.solLum, "e_L": [0.01] * 5 * u.solLum,
                    "T": [5772.0, 500.0, 40000.0, 25000.0, 3500.0] * u.K, "e_T": [50.0] * 5 * u.K,
                    "R": [1.0, 0.1, 20.0, 0.012, 1000.0] * u.solRad, "e_R": [0.01] * 5 * u.solRad})
    catalog = _read(table, teff="T", teff_err="e_T", radius="R", radius_err="e_R")
    assert len(catalog) == 5
    for standard, (low, high) in PLAUSIBLE_RANGES.items():
        values = catalog[standard].value
        assert np.all((values >= low) & (values <= high))
