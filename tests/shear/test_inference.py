"""Both inference routes of astrobayes.shear on a small survey (nside 16): wiring, recovery, errors.

Calibration over many held-out maps and the S₈ comparison between routes are
measured by benchmarks/shear_inference.py; here the networks are small and
the checks are that each route finds a cosmology it was given and that the
pieces fit together (emulator ↔ likelihood ↔ emcee, summaries/maps ↔ NPE).
"""
import astropy.units as u
import numpy as np
import pytest
import torch

from astrobayes.shear.inference import (BandPowerLikelihood, ShearSurvey, fit_band_powers, s8, shear_prior,
                                        train_band_power_emulator, train_shear_posterior)

TRUTH = np.array([0.3, 0.8])


@pytest.fixture(scope="module")
def survey():
    return ShearSurvey(16, area=20000 * u.deg ** 2, n_bins=5, n_gal=30 / u.arcmin ** 2)


@pytest.fixture(scope="module")
def training(survey):
    theta = shear_prior().sample(1500, seed=0).numpy()
    maps = survey.maps(theta, seed=1)
    return theta, maps, survey.band_powers(maps)


def test_forward_model(survey):
    cl = survey.spectra(np.array([[0.3, 0.8], [0.3, 0.4]]))
    assert cl.shape == (2, survey.lmax + 1) and np.all(cl[:, :2] == 0)
    # C_ℓ ∝ σ₈² holds in the linear regime and approximately with halofit at these low ℓ (< 2nside = 32)
    ratio = cl[0, 2:] / cl[1, 2:]
    assert np.all((ratio > 3.6) & (ratio < 4.6))
    maps = survey.maps(TRUTH[None], seed=3)
    assert maps.shape == (1, 12 * 16 ** 2) and np.all(maps[0, ~survey.mask] == 0)
    assert np.array_equal(maps, survey.maps(TRUTH[None], seed=3))
    assert survey.nest_maps(maps).shape == (1, 1, 12 * 16 ** 2)
    assert np.isclose(s8(TRUTH), 0.8) and np.isclose(s8([0.6, 0.8]), 0.8 * np.sqrt(2))
    with pytest.raises(ValueError, match="2 columns"):
        survey.spectra(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2 parameters"):
        s8(np.zeros((3, 3)))


def test_emulator_route_recovers_the_cosmology(survey, training):
    theta, _, band_powers = training
    emulator = train_band_power_emulator(theta, band_powers, epochs=150)
    # the emulator predicts the mean band powers: at the truth it must be within the scatter of 200 maps
    fiducial = survey.band_powers(survey.maps(np.tile(TRUTH, (200, 1)), seed=2))
    predicted = emulator.predict(TRUTH[None]).mean[0]
    logs = np.log(fiducial)
    assert np.all(np.abs(np.asarray(predicted) - logs.mean(0)) < 0.5 * logs.std(0))
    likelihood = BandPowerLikelihood(emulator, fiducial, shear_prior())
    assert 0 < likelihood.hartlap < 1
    observed = survey.band_powers(survey.maps(TRUTH[None], seed=11))[0]
    result = fit_band_powers(observed, likelihood, n_steps=1200, progress=False)
    # S₈ is the combination the band powers measure: the truth must lie within 3 posterior std
    values = s8(result.samples)
    assert abs(values.mean() - s8(TRUTH)) < 3 * values.std()
    log_posterior = likelihood.log_posterior(observed)
    assert log_posterior(torch.tensor([[0.05, 0.8]], dtype=torch.float64))[0] == -np.inf
    with pytest.raises(ValueError, match="simulations"):
        BandPowerLikelihood(emulator, fiducial[:5], shear_prior())
    with pytest.raises(ValueError, match="positive"):
        train_band_power_emulator(theta[:10], -band_powers[:10])


def test_npe_routes_on_summaries_and_maps(survey, training):
    theta, maps, band_powers = training
    prior = shear_prior()
    observed = survey.maps(TRUTH[None], seed=12)
    summaries = np.log(band_powers)
    # 20 epochs: the S₈ posterior is then 0.096 wide (0.086 after 40) and its mean 0.65 of that from the truth
    posterior = train_shear_posterior(theta, summaries, prior, epochs=20)
    draws = posterior.sample(1000, np.log(survey.band_powers(observed))[0], seed=0)
    assert abs(s8(draws).mean() - s8(TRUTH)) < 3 * s8(draws).std()
    # the map-level network: a few epochs on 1500 maps must already learn S₈ better than the prior's spread
    # (after 5 epochs its S₈ spread is 0.62 of the prior's, after 8 0.55)
    nest = survey.nest_maps(maps) / survey.simulator.noise_sigma
    map_posterior = train_shear_posterior(theta, nest, prior, nside=16, mask=survey.mask, epochs=5,
                                          batch_size=64)
    draws = map_posterior.sample(500, survey.nest_maps(observed)[0] / survey.simulator.noise_sigma, seed=0)
    assert draws.shape == (500, 2) and np.all(np.isfinite(draws))
    assert s8(draws).std() < s8(prior.sample(5000, seed=1).numpy()).std()
    with pytest.raises(ValueError, match="nside is required"):
        train_shear_posterior(theta[:10], nest[:10], prior)
    with pytest.raises(ValueError, match="summaries"):
        train_shear_posterior(theta[:10], np.zeros(10), prior)
