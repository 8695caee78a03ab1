"""The Stefan–Boltzmann model with measured (dynamical) masses: mock recovery, the age latent, the predictive check
and bad input."""
import math
import warnings

import astropy.constants as const
import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import QTable, vstack

from astrobayes.inference.priors import JointPrior, LogUniform
from astrobayes.stars.emulator import exact_stellar_delta_map
from astrobayes.stars.evolution import max_fractional_age, ms_log_radius_teff
from astrobayes.stars.grid import log_area_term
from astrobayes.stars.measured_masses import MeasuredMassModel
from astrobayes.stars.model import infer_stefan_boltzmann, stefan_boltzmann_model
from astrobayes.stars.population import StellarPopulation
from astrobayes.stars.simulate import SIGMA_UNIT, default_population, luminosity_from_sigma
from astrobayes.stars.zams import feh_to_metallicity, zams_log_radius_teff

SIGMA_SB = const.sigma_sb.to_value(SIGMA_UNIT)
DOMAIN = ((math.log10(0.5), math.log10(20.0)), (-1.0, 0.15))


def mock_binaries(n, *, evolving=False, luminosity_error=0.05, mass_error=0.01, feh_error=0.1, seed=0):
    """Stars with dynamical masses: Salpeter masses inside the map's domain, [Fe/H] measured for every other star,
    R and T_eff from the ZAMS or (τ uniform up to the age of the Universe) the evolving main sequence."""
    rng = np.random.default_rng(seed)
    truth = StellarPopulation("salpeter", m_min=0.55, m_max=18.0, feh_mean=-0.2, feh_width=0.2,
                              feh_range=DOMAIN[1]).sample(n, rng=rng)
    if evolving:
        tau_max = max_fractional_age(10 ** truth["log_mass"], feh_to_metallicity(truth["feh"]))
        log_radius, log_teff = ms_log_radius_teff(truth["log_mass"], truth["feh"], rng.uniform(size=n) * tau_max)
    else:
        log_radius, log_teff = zams_log_radius_teff(truth["log_mass"], truth["feh"])
    luminosity = luminosity_from_sigma(SIGMA_SB, 10**log_radius, 10**log_teff)
    table = QTable()
    table["system"] = [f"mock{i // 2}" for i in range(n)]
    table["component"] = np.arange(n) % 2 + 1
    table["luminosity"] = luminosity * np.exp(luminosity_error * rng.normal(size=n))
    table["luminosity_err"] = luminosity_error * table["luminosity"]
    table["mass"] = 10 ** truth["log_mass"] * np.exp(mass_error * rng.normal(size=n)) * u.M_sun
    table["mass_err"] = mass_error * table["mass"]
    measured = np.arange(n) % 2 == 0
    table["feh"] = np.where(measured, np.clip(truth["feh"] + feh_error * rng.normal(size=n), *DOMAIN[1]), np.nan)
    table["feh_err"] = np.where(measured, feh_error, np.nan)
    return table


def posterior_moments(model):
    """Median and standard deviation of σ from the model's exact 1-D grid posterior."""
    sigma, density = model.grid_posterior()
    sigma = sigma.to_value(SIGMA_UNIT)
    cdf = np.cumsum(density * np.gradient(sigma))
    mean = np.trapezoid(sigma * density, sigma)
    return np.interp(0.5, cdf / cdf[-1], sigma), math.sqrt(np.trapezoid((sigma - mean) ** 2 * density, sigma))


def test_measured_masses_recover_sigma_on_a_zams_mock():
    """60 stars with 1 % masses and 5 % luminosities: the truth within 3 posterior standard deviations of the median
    (a 99.7 % statement for a calibrated posterior). The posterior is at least as wide as the floor 5 %/√60 that
    the luminosity errors alone set, and several times narrower than from the same luminosities without masses
    (the IMF-only grid model, σ alone free)."""
    catalog = mock_binaries(60, seed=1)
    model = stefan_boltzmann_model(catalog, exact_stellar_delta_map())
    assert isinstance(model, MeasuredMassModel) and not model.has_tau
    median, sd = posterior_moments(model)
    assert abs(median - SIGMA_SB) < 3 * sd
    assert sd / median > 0.05 / math.sqrt(60)
    imf_only = stefan_boltzmann_model(catalog[["luminosity", "luminosity_err"]], exact_stellar_delta_map(),
                                      free=["sigma"])
    sigma = np.linspace(2e-8, 1e-7, 801)
    density = np.exp(imf_only.log_prob(torch.as_tensor(sigma)[:, None]).numpy() - 0.0)
    density /= np.trapezoid(density, sigma)
    mean = np.trapezoid(sigma * density, sigma)
    assert math.sqrt(np.trapezoid((sigma - mean) ** 2 * density, sigma)) > 3 * sd


def test_quadrature_matches_a_dense_integral():
    """One star, ZAMS map: the tabulated log-likelihood agrees with brute-force quadrature on a dense (ln M, [Fe/H])
    grid to 3e-3 nats within 5 nats of its peak, and to 1 % of the drop in the tails (20 nats down), where the
    Gaussian treatment of the 1 % mass error (exact for ℓ linear in ln M) shows."""
    population = default_population()
    lum, r, mass, s, feh, e = 1.3, 0.02, 1.1, 0.01, -0.1, 0.1
    model = MeasuredMassModel(JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]), population, [lum], [r], [mass],
                              [s], [feh], [e], exact_stellar_delta_map(), *DOMAIN)
    ln_m = math.log(mass) + s * np.linspace(-8, 8, 801)
    z = np.linspace(*DOMAIN[1], 1151)
    lm, zz = np.meshgrid(ln_m / math.log(10), z, indexing="ij")
    ell = log_area_term(*[torch.as_tensor(v) for v in zams_log_radius_teff(lm, zz)]).numpy()
    log_w = (-0.5 * ((ln_m[:, None] - math.log(mass)) / s) ** 2 - 0.5 * ((zz - feh) / e) ** 2
             + population({"log_mass": torch.as_tensor(lm), "feh": torch.as_tensor(zz)}, {}).numpy())
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    sigma = np.array([3.5e-8, 4.6e-8, 5.2e-8, 5.67e-8, 6.3e-8, 7.1e-8, 9e-8])
    x = math.log(lum) - np.log(sigma)[:, None, None] - ell
    dense = np.log((weights * np.exp(-0.5 * (x / r) ** 2)).sum(axis=(1, 2)) / (r * math.sqrt(2 * math.pi) * lum))
    tabulated = model.object_log_likelihood(torch.as_tensor(sigma)[:, None])[:, 0].numpy()
    drop = dense.max() - dense
    assert drop.max() > 15
    core = drop < 5
    assert core.sum() >= 4 and np.all(np.abs(tabulated - dense)[core] < 3e-3), tabulated - dense
    assert np.all(np.abs(tabulated - dense) < 3e-3 + 0.01 * drop), tabulated - dense


def test_age_latent_recovers_sigma_and_the_zams_map_is_biased_high():
    """24 stars from the evolving main sequence (τ uniform up to the age of the Universe), 10 % luminosities: the
    model with the τ latent puts the truth within 3 posterior standard deviations; the ZAMS map, which has no age,
    explains the evolved stars' extra light with a larger σ, more than 3 of its standard deviations above the
    truth."""
    catalog = mock_binaries(24, evolving=True, luminosity_error=0.1, seed=2)
    evolving = stefan_boltzmann_model(catalog, exact_stellar_delta_map(model="evolving"))
    assert evolving.has_tau
    median, sd = posterior_moments(evolving)
    assert abs(median - SIGMA_SB) < 3 * sd
    zams_median, zams_sd = posterior_moments(stefan_boltzmann_model(catalog, exact_stellar_delta_map()))
    assert (zams_median - SIGMA_SB) / zams_sd > 3


def test_predictive_check_flags_a_star_the_model_cannot_make():
    """40 ZAMS stars and one made 3× too bright (an unresolved companion, or a star off the main sequence): the
    bright one is flagged "brighter" with p < 0.01, and the others are flagged no more often than a 3σ binomial
    bound allows for p-values that are uniform under the model (0.01 × 40 = 0.4 expected, ≤ 3 allowed)."""
    catalog = mock_binaries(41, seed=3)
    catalog["luminosity"][40] *= 3
    catalog["luminosity_err"][40] *= 3
    result = infer_stefan_boltzmann(catalog, exact_stellar_delta_map(), n_steps=1000, progress=False)
    assert result.mcmc.meta["method"] == "measured_mass" and result.mcmc.names == ["sigma"]
    check = result.predictive_check(alpha=0.01)
    assert check["name"][40] == "mock20 1" and check["flag"][40] == "brighter" and check["p_value"][40] < 0.01
    assert np.sum(check["flag"][:40] != "") <= 3
    assert check["predicted_luminosity"].unit == u.L_sun and check.meta["n_flagged"] >= 1
    assert np.all(check["predicted_p16"] < check["predicted_p84"])


def test_bad_input_names_the_star():
    catalog = mock_binaries(6, seed=4)
    delta = exact_stellar_delta_map()
    missing = catalog.copy()
    missing["mass"][3] = np.nan * u.M_sun
    with pytest.raises(ValueError, match=r"'mass' must be finite and positive.*mock1 2 \(row 3\)"):
        stefan_boltzmann_model(missing, delta)
    zero_error = catalog.copy()
    zero_error["mass_err"][2] = 0 * u.M_sun
    with pytest.raises(ValueError, match=r"'mass_err'.*mock1 1 \(row 2\)"):
        stefan_boltzmann_model(zero_error, delta)
    no_luminosity = catalog.copy()
    no_luminosity["luminosity"][0] = np.nan * u.L_sun
    with pytest.raises(ValueError, match=r"'luminosity'.*mock0 1.*np.isfinite"):
        stefan_boltzmann_model(no_luminosity, delta)
    with pytest.raises(ValueError, match="lacks columns \\['mass_err'\\]"):
        stefan_boltzmann_model(catalog[["luminosity", "luminosity_err", "mass"]], delta, method="measured_mass")
    bare = catalog.copy()
    bare["mass"] = bare["mass"].value
    with pytest.raises(ValueError, match="'mass' has no unit"):
        stefan_boltzmann_model(bare, delta)
    with pytest.raises(ValueError, match="only free parameter"):
        stefan_boltzmann_model(catalog, delta, free=["sigma", "imf_slope"])
    with pytest.raises(ValueError, match="needs each star's measured mass"):
        stefan_boltzmann_model(catalog[["luminosity", "luminosity_err"]], exact_stellar_delta_map(model="evolving"))


def test_stars_outside_the_domain_are_refused_or_dropped_on_request():
    catalog = mock_binaries(6, seed=5)
    catalog["mass"][1] = 0.2 * u.M_sun  # an M dwarf below the map's 0.5 M_sun
    catalog["mass_err"][1] = 0.002 * u.M_sun
    catalog["feh"][4] = -1.5  # a metal-poor star below [Fe/H] = -1
    catalog["feh_err"][4] = 0.1
    delta = exact_stellar_delta_map()
    with pytest.raises(ValueError, match=r"2 star\(s\): mock0 2 \(row 1\), mock2 1 \(row 4\) lie outside the map's "
                                         r"domain.*outside_domain='drop'"):
        stefan_boltzmann_model(catalog, delta)
    with pytest.warns(UserWarning, match="leaving out 2 star"):
        model = stefan_boltzmann_model(catalog, delta, outside_domain="drop")
    assert model.n_objects == 4
    assert model.dropped == {"mock0 2": "below_mass_domain", "mock2 1": "outside_feh_domain"}
    with pytest.raises(ValueError, match="outside_domain must be"):
        stefan_boltzmann_model(catalog, delta, outside_domain="clip")


def test_metallicity_without_an_error_is_not_a_measurement():
    catalog = mock_binaries(4, seed=6)
    catalog["feh_err"][0] = np.nan
    with pytest.warns(UserWarning, match=r"mock0 1 \(row 0\) have a \[Fe/H\] without an error"):
        model = stefan_boltzmann_model(catalog, exact_stellar_delta_map())
    assert model.feh_without_error == ["mock0 1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="one of 'feh' and 'feh_err'"):
            stefan_boltzmann_model(catalog[["luminosity", "luminosity_err", "mass", "mass_err", "feh"]],
                                   exact_stellar_delta_map())


@pytest.mark.filterwarnings("ignore:the chain is only")
def test_a_posterior_at_the_end_of_the_prior_is_reported():
    """Stars 3× brighter than any σ in the prior (1e-8–1e-7) allows: the posterior piles up at the prior's end,
    and sampling says so."""
    catalog = mock_binaries(10, seed=7)
    catalog["luminosity"] *= 3
    catalog["luminosity_err"] *= 3
    model = stefan_boltzmann_model(catalog, exact_stellar_delta_map())
    with pytest.warns(RuntimeWarning, match="reaches the end of its prior"):
        model.sample(n_steps=200, progress=False)


def test_giants_are_flagged_and_left_out_by_default():
    """A 1.5 M_sun star of 10 R_sun (log g 2.6 from its mass and radius: a red giant) and one with a catalogued
    log g of 2.0 are ``not_main_sequence`` as predict_stars flags them: left out with a warning naming them,
    refused on request, fitted when asked. Below a lower ``min_log_g`` the giant is still caught by its radius,
    more than twice the map's."""
    catalog = mock_binaries(6, seed=8)
    catalog["radius"] = np.ones(6) * u.R_sun
    catalog["log_g"] = np.full(6, np.nan)
    catalog["mass"][2], catalog["mass_err"][2], catalog["radius"][2] = 1.5 * u.M_sun, 0.015 * u.M_sun, 10 * u.R_sun
    catalog["log_g"][4] = 2.0
    delta = exact_stellar_delta_map()
    with pytest.warns(UserWarning, match=r"leaving out 2 star\(s\): mock1 1 \(row 2\), mock2 1 \(row 4\): not on the "
                                         r"main sequence"):
        model = stefan_boltzmann_model(catalog, delta)
    assert model.n_objects == 4 and model.dropped == {"mock1 1": "not_main_sequence", "mock2 1": "not_main_sequence"}
    with pytest.raises(ValueError, match=r"mock1 1 \(row 2\).*not on the main sequence.*off_main_sequence='drop'"):
        stefan_boltzmann_model(catalog, delta, off_main_sequence="raise")
    with pytest.warns(UserWarning, match=r"leaving out 1 star\(s\): mock1 1 \(row 2\)"):
        assert stefan_boltzmann_model(catalog, delta, min_log_g=1.5).n_objects == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stefan_boltzmann_model(catalog, delta, off_main_sequence="keep").n_objects == 6
        assert stefan_boltzmann_model(mock_binaries(6, seed=8), delta).n_objects == 6  # no log g, no radius: kept
    with pytest.raises(ValueError, match="off_main_sequence must be"):
        stefan_boltzmann_model(catalog, delta, off_main_sequence="clip")
    grams = catalog.copy()
    grams["log_g"] = np.full(6, 2.7e4)  # g in cm s^-2, not its log
    with pytest.raises(ValueError, match="column 'log_g' reaches .* not g"):
        stefan_boltzmann_model(grams, delta)


def test_a_star_listed_twice_is_refused_naming_it():
    catalog = mock_binaries(4, seed=9)
    twice = vstack([catalog, catalog[2:3]])
    with pytest.raises(ValueError, match=r"'system' \+ 'component' name 1 star\(s\) more than once: 'mock1 1' "
                                         r"\(rows \[2, 4\]\)"):
        stefan_boltzmann_model(twice, exact_stellar_delta_map())
    named = QTable({"name": ["a", "b", "a"], "luminosity": [1.0, 1.2, 1.0] * u.L_sun,
                    "luminosity_err": [0.05, 0.06, 0.05] * u.L_sun, "mass": [1.0, 1.05, 1.0] * u.M_sun,
                    "mass_err": [0.01, 0.01, 0.01] * u.M_sun})
    with pytest.raises(ValueError, match=r"'name' names 1 star\(s\) more than once: 'a' \(rows \[0, 2\]\)"):
        stefan_boltzmann_model(named, exact_stellar_delta_map())
    systems_only = catalog.copy()
    systems_only.remove_column("component")
    with pytest.raises(ValueError, match="needs a 'component' column"):
        stefan_boltzmann_model(systems_only, exact_stellar_delta_map())


def test_predictive_check_and_grid_posterior_refuse_bad_arguments():
    model = stefan_boltzmann_model(mock_binaries(4, seed=10), exact_stellar_delta_map())
    with pytest.raises(ValueError, match=r"sigma has unit m; it must be in W m\^-2 K\^-4"):
        model.predictive_check(5.67e-8 * u.m)
    with pytest.raises(ValueError, match="sigma must be posterior draws"):
        model.predictive_check("a lot")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="max_draws must be a positive integer"):
            model.predictive_check([5.67e-8] * u.W / u.m**2 / u.K**4, max_draws=bad)
    for bad in (1, 0, -5, 10.0, None):
        with pytest.raises(ValueError, match="n_points must be an integer of at least 2"):
            model.grid_posterior(n_points=bad)
    sigma, density = model.grid_posterior(n_points=2)
    assert np.all(np.isfinite(density)) and len(sigma) == 2


def test_measured_mass_model_is_exported():
    import astrobayes.stars as stars

    assert stars.MeasuredMassModel is MeasuredMassModel and "MeasuredMassModel" in stars.__all__
    assert "Examples" in MeasuredMassModel.__doc__
