"""Mock fields and the Stefan–Boltzmann hierarchical model (exact stellar map; the learned one is tested in
test_emulator.py)."""
import math

import astropy.constants as const
import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable

from astrobayes.stars.emulator import exact_stellar_delta_map
from astrobayes.stars.model import infer_stefan_boltzmann, stefan_boltzmann_model
from astrobayes.stars.simulate import SIGMA_UNIT, luminosity_from_sigma, simulate_field

SIGMA_SB = const.sigma_sb.to_value(SIGMA_UNIT)


def test_simulated_field_obeys_its_own_stefan_boltzmann_law():
    field = simulate_field(300, sigma=2 * const.sigma_sb, teff_error=0.01, seed=4)
    assert field["luminosity"].unit == u.L_sun and field["teff"].unit == u.K
    # L = σ 4πR²T⁴ written out with astropy's constants, independently of simulate.luminosity_from_sigma
    expected = (2 * const.sigma_sb * 4 * np.pi * field["true_radius"] ** 2 * field["true_teff"] ** 4).to(u.L_sun)
    assert np.allclose(field["true_luminosity"], expected, rtol=1e-12)
    assert u.allclose(luminosity_from_sigma(SIGMA_SB, 1 * u.R_sun, 5772 * u.K), 1 * u.L_sun, rtol=0.01)  # the Sun
    # twice the physical σ: twice the ZAMS luminosity of the same star
    zams_l = (4 * np.pi * const.sigma_sb * field["true_radius"] ** 2 * field["true_teff"] ** 4).to(u.L_sun)
    assert np.allclose(field["true_luminosity"] / zams_l, 2.0, rtol=1e-10)
    # log-normal errors: ln L̂ − ln L ~ N(0, r) with r = luminosity_err / luminosity = 0.05
    r = (field["luminosity_err"] / field["luminosity"]).value
    assert np.allclose(r, 0.05, rtol=1e-12)
    pulls = np.log((field["luminosity"] / field["true_luminosity"]).value) / r
    # 300 standard-normal pulls: mean within 4/√300, std within 4·√(1/(2·300)) of 1
    assert abs(pulls.mean()) < 4 / math.sqrt(300) and abs(pulls.std() - 1) < 4 / math.sqrt(600)
    assert field.meta["sigma"] == 2 * const.sigma_sb


@pytest.mark.filterwarnings("ignore:the chain is only:RuntimeWarning")  # ≈ 22 τ, knowingly (see below)
def test_sigma_posterior_contains_the_physical_value():
    """200 stars, σ only, grid quadrature: the truth within 3 posterior standard deviations (a 99.7 % statement
    for a calibrated posterior; benchmarks/stars_coverage.py checks the calibration over 100 fields). 300 steps of
    32 walkers (τ ≈ 14, burn-in 2τ: ≈ 620 effective draws) put the median within ≈ 0.05 posterior std of the
    converged chain's, negligible against the 3-std bound."""
    field = simulate_field(200, seed=11)
    result = infer_stefan_boltzmann(field, exact_stellar_delta_map(), free=["sigma"], n_steps=300, progress=False)
    draws = result.sigma.to_value(SIGMA_UNIT)
    assert abs(np.median(draws) - SIGMA_SB) < 3 * draws.std()
    assert result.mcmc.meta["method"] == "grid" and result.mcmc.meta["population_mass"] == pytest.approx(1, abs=1e-3)
    assert result.summary()["name"].tolist() == ["sigma"] and result.sigma.unit == SIGMA_UNIT
    assert "sigma" in repr(result)


@pytest.mark.slow  # about 1 minute on one core
def test_importance_method_with_measured_temperatures():
    """200 stars with 5 % luminosities and 1 % temperatures: the importance-sampling route (the grid cannot take
    T_eff) puts the truth within 3 posterior standard deviations and reports small Monte Carlo noise."""
    field = simulate_field(200, teff_error=0.01, seed=11)
    result = infer_stefan_boltzmann(field, exact_stellar_delta_map(), free=["sigma"], n_draws=256, n_steps=1000,
                                    progress=False)
    draws = result.sigma.to_value(SIGMA_UNIT)
    assert result.mcmc.meta["draws"] == "adaptive"
    assert abs(np.median(draws) - SIGMA_SB) < 3 * draws.std()
    assert result.mcmc.meta["log_likelihood_noise"] < 0.5


def test_model_input_errors_are_named():
    field = simulate_field(10, seed=0)
    delta = exact_stellar_delta_map()
    with pytest.raises(ValueError, match="'luminosity' and 'luminosity_err'"):
        stefan_boltzmann_model(field[["star_id"]], delta)
    bare = QTable({"luminosity": field["luminosity"].value, "luminosity_err": field["luminosity_err"].value})
    with pytest.raises(ValueError, match="'luminosity' has no unit"):
        stefan_boltzmann_model(bare, delta)
    with pytest.raises(TypeError, match="catalog must be an astropy Table"):
        stefan_boltzmann_model({"luminosity": [1.0]}, delta)
    with pytest.raises(ValueError, match="including 'sigma'"):
        stefan_boltzmann_model(field, delta, free=["imf_slope"])
    no_err = field.copy()
    no_err["teff"] = field["true_teff"]
    with pytest.raises(ValueError, match="'teff' has no 'teff_err'"):
        stefan_boltzmann_model(no_err, delta)
    with pytest.raises(ValueError, match="n_stars"):
        simulate_field(0)
    with pytest.raises(ValueError, match="luminosity_error"):
        simulate_field(5, luminosity_error=1.5)
