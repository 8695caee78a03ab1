"""Both inference routes of astrobayes.shear on a small survey (nside 16): wiring, recovery, errors.

Calibration over many held-out maps and the S₈ comparison between routes are
measured by benchmarks/shear_inference.py; here the networks are small and
the checks are that each route finds a cosmology it was given and that the
pieces fit together (emulator ↔ likelihood ↔ emcee, summaries/maps ↔ NPE), and
that estimate_cosmology flags the maps unlike the training simulations.
"""
import warnings

import astropy.units as u
import numpy as np
import pytest
import torch

from astrobayes.shear.inference import (BandPowerLikelihood, ShearSurvey, estimate_cosmology, fit_band_powers, s8,
                                        shear_prior, train_band_power_emulator, train_shear_posterior)

TRUTH = np.array([0.3, 0.8])


@pytest.fixture(scope="module")
def survey():
    return ShearSurvey(16, area=20000 * u.deg ** 2, n_bins=5, n_gal=30 / u.arcmin ** 2)


@pytest.fixture(scope="module")
def training(survey):
    theta = shear_prior().sample(1500, seed=0).numpy()
    maps = survey.maps(theta, seed=1)
    return theta, maps, survey.band_powers(maps)


@pytest.fixture(scope="module")
def summary_posterior(training):
    theta, _, band_powers = training
    # 20 epochs: the S₈ posterior is then 0.096 wide (0.086 after 40) and its mean 0.65 of that from the truth
    return train_shear_posterior(theta, np.log(band_powers), shear_prior(), epochs=20)


@pytest.fixture(scope="module")
def map_posterior(survey, training):
    theta, maps, _ = training
    nest = survey.nest_maps(maps) / survey.simulator.noise_sigma
    return train_shear_posterior(theta, nest, shear_prior(), nside=16, mask=survey.mask, epochs=5, batch_size=64)


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


def test_npe_routes_on_summaries_and_maps(survey, training, summary_posterior, map_posterior):
    theta, maps, band_powers = training
    prior = shear_prior()
    observed = survey.maps(TRUTH[None], seed=12)
    draws = summary_posterior.sample(1000, np.log(survey.band_powers(observed))[0], seed=0)
    assert abs(s8(draws).mean() - s8(TRUTH)) < 3 * s8(draws).std()
    # the map-level network: a few epochs on 1500 maps must already learn S₈ better than the prior's spread
    # (after 5 epochs its S₈ spread is 0.62 of the prior's, after 8 0.55)
    nest = survey.nest_maps(maps) / survey.simulator.noise_sigma
    draws = map_posterior.sample(500, survey.nest_maps(observed)[0] / survey.simulator.noise_sigma, seed=0)
    assert draws.shape == (500, 2) and np.all(np.isfinite(draws))
    assert s8(draws).std() < s8(prior.sample(5000, seed=1).numpy()).std()
    with pytest.raises(ValueError, match="nside is required"):
        train_shear_posterior(theta[:10], nest[:10], prior)
    with pytest.raises(ValueError, match="summaries"):
        train_shear_posterior(theta[:10], np.zeros(10), prior)


def test_estimate_cosmology_reports_whether_each_map_is_like_the_simulations(survey, training, summary_posterior,
                                                                            map_posterior):
    theta = shear_prior().sample(100, seed=20).numpy()
    maps = survey.maps(theta, seed=21)
    summaries = np.log(survey.band_powers(maps))
    scale = survey.simulator.noise_sigma
    # 100 fresh maps from the prior, like the training ones: the fraction at p <= α is α within 3σ of the binomial
    # spread of both the maps and the n_cal calibration rows, plus the conformal discreteness 1 / (n_cal + 1).
    # Measured on 200 maps: 0.5 % (summaries) and 0 % (maps) at α = 0.01, 4.5 % and 3.5 % at α = 0.05
    for posterior, x in ((summary_posterior, summaries), (map_posterior, survey.nest_maps(maps) / scale)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a map flagged by chance
            table = estimate_cosmology(x, posterior, n_draws=200)
        p, n_cal = np.asarray(table["ood_p_value"]), posterior.estimator.ood.n_calibration
        for alpha in (0.01, 0.05):
            band = 3 * np.sqrt(alpha * (1 - alpha) * (1 / 100 + 1 / n_cal)) + 1 / (n_cal + 1)
            assert np.mean(p <= alpha) <= alpha + band, (alpha, np.mean(p <= alpha))
        np.testing.assert_array_equal(p, posterior.estimator.ood_p_value(x.astype(np.float32)))
    assert len(table) == 100 and table.colnames[:3] == ["omega_m_p16", "omega_m_median", "omega_m_p84"]
    assert np.all(table["s8_p16"] <= table["s8_median"]) and np.all(table["s8_median"] <= table["s8_p84"])
    assert table["ood_p_value"].info.description.startswith("conformal p-value")
    assert table.meta["ood_alpha"] == 0.01 and "ood_note" not in table.meta
    # power 10 times that of any simulation, and (map network) 10 times the shape noise: every map flagged.
    # The noise is ~100 times below the signal at nside 16, so the band powers barely see 10 times more of it
    # (measured p 0.1-0.5): a difference only the map-level network's summary picks up (measured p = 1/301).
    # Few draws: the flow puts almost no mass inside the prior for them, and rejection sampling is slow there
    noisy = ShearSurvey(16, area=20000 * u.deg ** 2, n_bins=5, n_gal=30 / u.arcmin ** 2, sigma_e=10 * 0.26)
    assert np.array_equal(noisy.mask, survey.mask)
    for posterior, x in ((summary_posterior, summaries[:3] + np.log(10.0)),
                         (map_posterior, survey.nest_maps(noisy.maps(theta[:3], seed=22)) / scale)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = estimate_cosmology(x, posterior, n_draws=20)
        assert np.all(table["ood_p_value"] <= 0.01) and table.meta["ood_flagged"] == 3
        messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        assert any(m.startswith("3 of 3 maps are unlike the training simulations at α = 0.01") for m in messages)
    # one map without the leading axis is one row; a posterior without a reference gives NaN and says why
    assert len(estimate_cosmology(summaries[0], summary_posterior, n_draws=50)) == 1
    theta_train, _, band_powers = training
    small = train_shear_posterior(theta_train[:200], np.log(band_powers[:200]), shear_prior(), epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = estimate_cosmology(summaries[:3] + np.log(10.0), small, n_draws=20)
    assert np.isnan(table["ood_p_value"]).all() and "fewer than the 300" in table.meta["ood_note"]
    assert table.meta["ood_flagged"] == 0 and not any("unlike the training" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match=r"observed must be one observation of shape \(5,\)"):
        estimate_cosmology(summaries[:, :3], summary_posterior)
    with pytest.raises(TypeError, match="posterior must be a Posterior"):
        estimate_cosmology(summaries, summary_posterior.estimator)
