"""Tout et al. (1996) ZAMS fits: values, physical trends, backends, units and bad input."""
import itertools
import math

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy import constants
from astropy.table import QTable

from astrobayes.stars.zams import (FEH_RANGE, LOG_MASS_RANGE, MASS_RANGE, METALLICITY_RANGE, Z_SUN_MODEL,
                                   feh_to_metallicity, zams_log_radius_teff, zams_luminosity, zams_radius,
                                   zams_table, zams_teff)


def test_solar_mass_star_matches_the_quoted_zams_sun():
    # The 1 M_sun, Z = 0.02 ZAMS star of Tout et al.'s fits is usually quoted as
    # L = 0.698 L_sun and R = 0.888 R_sun (three significant figures). The
    # tolerance is half a unit in the last quoted digit: the rounding of the quote.
    assert abs(zams_luminosity(1.0) - 0.698) <= 5e-4
    assert abs(zams_radius(1.0) - 0.888) <= 5e-4
    # The same numbers from the coefficients' constant terms (ζ_Z = 0 at Z = 0.02),
    # written out by hand as an independent evaluation of eqs. (1) and (2).
    luminosity = (0.39704170 + 8.52762600) / (0.00025546 + 1 + 5.43288900 + 5.56357900 + 0.78866060 + 0.00586685)
    radius = ((1.71535900 + 6.59778800 + 10.08855000 + 1.01249500 + 0.07490166)
              / (0.01077422 + 3.08223400 + 17.84778000 + 1 + 0.00022582))
    assert zams_luminosity(1.0) == pytest.approx(luminosity, rel=1e-14)
    assert zams_radius(1.0) == pytest.approx(radius, rel=1e-14)


def test_teff_is_the_stefan_boltzmann_temperature():
    mass = np.array([0.3, 1.0, 5.0, 40.0])
    luminosity = zams_luminosity(mass, 0.004) * constants.L_sun
    radius = zams_radius(mass, 0.004) * constants.R_sun
    expected = ((luminosity / (4 * np.pi * constants.sigma_sb * radius ** 2)) ** 0.25).to_value(u.K)
    np.testing.assert_allclose(zams_teff(mass, 0.004), expected, rtol=1e-12)
    # the ZAMS Sun is cooler than today's 5772 K Sun: it was fainter and smaller
    assert 5500 < zams_teff(1.0) < 5700


@pytest.mark.parametrize("metallicity", [1e-4, 1e-3, 0.004, 0.01, 0.02, 0.03])
def test_luminosity_rises_monotonically_with_mass(metallicity):
    mass = np.geomspace(*MASS_RANGE, 2000)
    assert np.all(np.diff(zams_luminosity(mass, metallicity)) > 0)
    assert np.all(np.diff(zams_teff(mass, metallicity)) > 0)


def test_metal_poor_stars_are_hotter_and_below_ten_solar_masses_brighter():
    # Fewer metals → lower (bound-free) opacity → a more compact, hotter star.
    # Up to ~10 M_sun it is also more luminous; above that the electron-scattering
    # opacity dominates and the higher hydrogen fraction of the metal-poor
    # mixture (Y = 0.24 + 2Z in the underlying Pols et al. models) lowers L
    # slightly, so the luminosity check stops at 10 M_sun. Checked over the
    # interior of the Z range: the quartic fits' extremes (Z = 1e-4, 0.03) are
    # where Tout et al.'s fits are least constrained.
    mass = np.geomspace(0.1, 100, 400)
    low_mass = mass <= 10
    metallicities = [1e-3, 3e-3, 0.01, 0.02]
    for poor, rich in itertools.pairwise(metallicities):
        assert np.all(zams_teff(mass, poor) > zams_teff(mass, rich)), (poor, rich)
        assert np.all(zams_luminosity(mass[low_mass], poor) > zams_luminosity(mass[low_mass], rich)), (poor, rich)


def test_torch_and_numpy_agree_and_torch_is_differentiable():
    mass = np.geomspace(0.1, 100, 50)
    metallicity = np.geomspace(1e-4, 0.03, 50)
    for function in (zams_luminosity, zams_radius, zams_teff):
        expected = function(mass, metallicity)
        got = function(torch.tensor(mass), torch.tensor(metallicity))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    # float32 in → float32 out, computed in float64 inside (M^19.5 overflows float32 at 100 M_sun)
    assert torch.isfinite(zams_radius(torch.tensor([100.0]))).all()
    assert zams_radius(torch.tensor([100.0])).dtype == torch.float32
    # the gradient of log L against log M is the local mass–luminosity slope, ≈ 4–5 near 1 M_sun
    log_mass = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    torch.log10(zams_luminosity(10 ** log_mass)).sum().backward()
    assert 3.5 < float(log_mass.grad) < 6


def test_log_radius_teff_matches_the_separate_functions_and_broadcasts():
    log_mass = np.linspace(-1, 2, 7)[:, None]
    feh = np.linspace(FEH_RANGE[0], FEH_RANGE[1], 5)[None, :]
    log_radius, log_teff = zams_log_radius_teff(log_mass, feh)
    assert log_radius.shape == log_teff.shape == (7, 5)
    mass, metallicity = 10 ** log_mass, Z_SUN_MODEL * 10 ** feh
    np.testing.assert_allclose(log_radius, np.log10(zams_radius(mass, metallicity, check=False)), atol=1e-12)
    np.testing.assert_allclose(log_teff, np.log10(zams_teff(mass, metallicity, check=False)), atol=1e-12)
    torch_radius, torch_teff = zams_log_radius_teff(torch.tensor(log_mass), torch.tensor(feh))
    np.testing.assert_allclose(torch_radius.numpy(), log_radius, atol=1e-12)
    np.testing.assert_allclose(torch_teff.numpy(), log_teff, atol=1e-12)
    assert feh_to_metallicity(0.0) == pytest.approx(0.02)
    assert FEH_RANGE[1] == pytest.approx(math.log10(1.5)) and LOG_MASS_RANGE == pytest.approx((-1.0, 2.0))


def test_quantity_masses_are_converted_to_solar_masses():
    mass = np.array([0.5, 1.0, 3.0])
    expected = zams_radius(mass, 0.01)
    np.testing.assert_allclose(zams_radius(mass * u.solMass, 0.01), expected, rtol=1e-14)
    np.testing.assert_allclose(zams_radius((mass * u.solMass).to(u.kg), 0.01), expected, rtol=1e-12)
    np.testing.assert_allclose(zams_luminosity(mass * u.solMass, 0.01 * u.dimensionless_unscaled),
                               zams_luminosity(mass, 0.01), rtol=1e-14)


def test_zams_table_has_units_and_consistent_values():
    table = zams_table([0.5, 1.0, 2.0] * u.solMass, [0.001, 0.01, 0.02])
    assert isinstance(table, QTable)
    assert table.colnames == ["mass", "metallicity", "luminosity", "radius", "teff"]
    assert table["mass"].unit == u.solMass and table["luminosity"].unit == u.solLum
    assert table["radius"].unit == u.solRad and table["teff"].unit == u.K
    np.testing.assert_allclose(table["teff"].to_value(u.K), zams_teff([0.5, 1.0, 2.0], [0.001, 0.01, 0.02]))
    assert "Tout" in table.meta["model"]
    assert len(zams_table(1.0)) == 1


@pytest.mark.parametrize("call, message", [
    (lambda: zams_luminosity(0.05), r"mass must lie within .*\[0.1, 100\]"),
    (lambda: zams_radius(150.0), r"mass must lie within"),
    (lambda: zams_teff(1.0, 0.05), r"metallicity must lie within .*\[0.0001, 0.03\]"),
    (lambda: zams_luminosity(1.0, 5e-5), r"metallicity must lie within"),
    (lambda: zams_luminosity([1.0, np.nan]), r"mass contains NaN"),
    (lambda: zams_radius(1.0, torch.tensor([np.inf])), r"metallicity contains NaN or inf"),
    (lambda: zams_luminosity(1.0 * u.m), r"mass has unit m"),
    (lambda: zams_luminosity(1.0, 0.02 * u.kg), r"metallicity has unit kg"),
    (lambda: zams_luminosity([1.0, 2.0], [0.01, 0.02, 0.03]), r"do not broadcast"),
    (lambda: zams_luminosity(-1.0, check=False), r"must be positive"),
    (lambda: zams_log_radius_teff(0.0, 0.3), r"feh must lie within"),
    (lambda: zams_log_radius_teff(2.5, 0.0), r"log_mass must lie within"),
    (lambda: zams_log_radius_teff([0.0, np.nan], 0.0), r"log_mass contains NaN"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="mass must be a number"):
        zams_luminosity("one solar mass")
    with pytest.raises(TypeError, match="torch"):
        zams_table(torch.tensor([1.0]))


def test_check_false_extrapolates_smoothly():
    # just beyond the validity limits the rational fits stay finite and ordered
    luminosity = zams_luminosity(np.array([100.0, 120.0]), 0.02, check=False)
    assert np.all(np.isfinite(luminosity)) and luminosity[1] > luminosity[0]
    assert np.isfinite(zams_log_radius_teff(0.0, 0.3, check=False)[1])
    assert METALLICITY_RANGE == (1e-4, 0.03)
