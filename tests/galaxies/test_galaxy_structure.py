"""Structural inference: the pixel likelihood, MAP and emcee fits, a small NPE, and the size–luminosity model."""
import math

import astropy.units as u
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import truncnorm

from astrobayes.galaxies.render import PARAMETERS
from astrobayes.inference.priors import JointPrior, Normal
from astrobayes.galaxies.simulate import (StampSimulator, signal_to_noise, simulate_stamps, stamp_features,
                                          structural_prior, truth_table)
from astrobayes.galaxies.structure import (SizeLuminosityModel, StructurePosterior, find_map, fit_size_luminosity,
                                           fit_stamp_mcmc, posterior_table, simulate_size_luminosity,
                                           stamp_log_posterior, train_structure_posterior)


@pytest.fixture(scope="module")
def small():
    return StampSimulator((16, 16), psf_fwhm=2.0, noise_sigma=1.0, pixel_scale=0.2 * u.arcsec / u.pix,
                          prior=structural_prior(r_half=(1.0, 4.0), centroid=1.0))


@pytest.fixture(scope="module")
def small_posterior(small):
    torch.manual_seed(0)
    from astrobayes.estimators.embeddings import CNNEmbedding

    embedding = CNNEmbedding(1, output_dim=16, channels=(16, 32), pooling="flatten", input_size=(16, 16))
    return train_structure_posterior(small, 4000, seed=0, epochs=10, progress=False, n_transforms=2,
                                     hidden_features=16, embedding=embedding)


def _theta(table):
    return np.stack([np.asarray(table[name]) for name in PARAMETERS], axis=1)


def test_simulated_stamps_and_truth_table(small):
    stamps, truth = simulate_stamps(50, small, seed=2)
    assert stamps.data.shape == (50, 16, 16)
    assert np.allclose(stamps.noise, 1.0)
    assert truth["r_half"].unit == u.pix and truth["r_half_arcsec"].unit == u.arcsec
    assert np.allclose(truth["r_half_arcsec"].value, 0.2 * truth["r_half"].value)
    # noise is N(0, 1) around the noiseless model
    residual = stamps.data - small.noiseless(_theta(truth))
    assert np.std(residual) == pytest.approx(1.0, rel=4 / math.sqrt(2 * residual.size))
    assert np.allclose(truth["snr"], signal_to_noise(small.noiseless(_theta(truth)), 1.0))
    assert np.all((truth["q"] > 0) & (truth["q"] <= 1))


def test_log_posterior_is_the_gaussian_pixel_likelihood(small):
    stamps, truth = simulate_stamps(1, small, seed=4)
    theta = _theta(truth)
    mask = np.zeros((16, 16), bool)
    mask[0, :5] = True
    sigma = np.full((16, 16), 2.0)
    sigma[8:, :] = 0.5
    log_post = stamp_log_posterior(stamps.data[0], small, sigma=sigma, mask=mask)
    model = small.noiseless(theta)[0]
    good = ~mask
    expected = (-0.5 * np.sum(((stamps.data[0] - model) / sigma)[good] ** 2)
                - 0.5 * np.sum(np.log(2 * math.pi * sigma[good] ** 2))
                + float(small.prior.log_prob(torch.as_tensor(theta))[0]))
    value = float(log_post(torch.as_tensor(theta))[0])
    # the same float32 rendering on both sides; only the float64 sums differ
    assert value == pytest.approx(expected, abs=1e-6)
    outside = theta.copy()
    outside[0, 2] = 9.0
    assert float(log_post(torch.as_tensor(outside))[0]) == -math.inf
    with pytest.raises(ValueError, match="no usable pixels"):
        stamp_log_posterior(np.full((16, 16), np.nan), small)
    with pytest.raises(ValueError, match="image is"):
        stamp_log_posterior(np.zeros((8, 8)), small)


def test_map_and_emcee_recover_a_bright_galaxy(small):
    theta = np.array([[3.3, 0.35, 1.5, 0.2, -0.1, 0.3, -0.2]])
    stamps, _ = simulate_stamps(1, small, theta=theta, seed=7)
    log_post = stamp_log_posterior(stamps.data[0], small)
    best = find_map(log_post, small.prior, n_starts=500, steps=100, seed=0)
    initial = best + 1e-3 * np.random.default_rng(0).standard_normal((16, 7))
    with pytest.warns(RuntimeWarning, match="chain is only"):
        result = fit_stamp_mcmc(stamps, small, n_walkers=16, n_steps=400, seed=0, progress=False, initial=initial)
    draws = result.samples
    assert draws.shape[1] == 7 and result.names == list(PARAMETERS)
    mean, std = draws.mean(axis=0), draws.std(axis=0)
    # a single noisy stamp: the truth within 4 posterior standard deviations, MAP close to the mean
    assert np.all(np.abs(mean - theta[0]) < 4 * std)
    assert np.all(np.abs(best - mean) < 3 * std)


def test_npe_posterior_tracks_the_truth_and_round_trips(small, small_posterior, tmp_path):
    stamps, truth = simulate_stamps(200, small, seed=11)
    draws = small_posterior.sample(stamps, 200, seed=1)
    assert draws.shape == (200, 200, 7)
    median = np.median(draws, axis=1)
    # a small network (4000 stamps, 10 epochs) for the wiring; accuracy and calibration are measured by
    # benchmarks/galaxies_structure.py. Even this one must rank fluxes and find centroids.
    assert np.all(np.isfinite(draws))
    for k in (0, 5, 6):
        assert np.corrcoef(median[:, k], _theta(truth)[:, k])[0, 1] > 0.8
    table = small_posterior.summary(stamps[:3], n_samples=300)
    assert len(table) == 3 and table["r_half_arcsec"].unit == u.arcsec
    assert np.all(table["r_half_lo"] <= table["r_half"]) and np.all(table["r_half"] <= table["r_half_hi"])
    small_posterior.save(tmp_path / "structure")
    loaded = StructurePosterior.load(tmp_path / "structure")
    assert np.array_equal(loaded.sample(stamps[:4], 20, seed=3), small_posterior.sample(stamps[:4], 20, seed=3))
    assert loaded.simulator.shape == small.shape and np.allclose(loaded.simulator.psf, small.psf)
    with pytest.raises(ValueError, match="built for"):
        small_posterior.sample(np.zeros((2, 20, 20)), 5)
    bad = stamps.data[:2].copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="fit_stamp_mcmc"):
        small_posterior.sample(bad, 5)
    with pytest.raises(FileNotFoundError, match="simulator.json"):
        StructurePosterior.load(tmp_path / "nothing")


def test_importance_sampling_corrects_the_rough_network(small, small_posterior):
    # the small network is rough; reweighted by the renderer's likelihood its draws are exact posteriors.
    # The contract: a stamp either gets an effective sample size ≥ 50 and then the truth lies within
    # 4 posterior std of the weighted mean, or a warning says the proposal failed — never a quiet wrong answer
    stamps, truth = simulate_stamps(4, small, seed=21)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = small_posterior.importance_sample(stamps, 1500, seed=0, progress=False)
    warned = sum("effective sample size" in str(w.message) for w in caught)
    good = 0
    for result, theta in zip(results, _theta(truth)):
        if result.ess < 50:
            continue
        good += 1
        weights = np.exp(result.log_weights)
        mean = weights @ result.draws
        std = np.sqrt(weights @ (result.draws - mean) ** 2)
        assert np.all(np.abs(mean - theta) < 4 * std)
        lo, hi = result.quantile([0.025, 0.975])
        assert np.all(lo < hi)
    assert warned == 4 - good and good >= 2


def test_posterior_table_derived_quantities(small):
    draws = np.broadcast_to(np.array([2.0, 0.5, 1.0, 0.0, 0.5, 0.0, 0.0]), (2, 10, 7))
    table = posterior_table(draws, small)
    assert table["flux"][0] == pytest.approx(100.0)
    assert table["q"][0] == pytest.approx(1 / 3)
    assert table["position_angle"][0].to_value(u.deg) == pytest.approx(45.0)


def test_size_luminosity_model_recovers_the_relation():
    # exact per-galaxy posteriors under the uniform training prior: a Gaussian measurement of
    # log r (0.05 dex) and of log F (0.02 dex), truncated to the box
    prior = structural_prior()
    rng = np.random.default_rng(3)
    n, k = 200, 64
    a, b, sigma = 0.45, 0.3, 0.1
    low, high = float(prior.low[1]), float(prior.high[1])
    log_f = rng.uniform(2.0, 3.5, n)
    mean = a + b * (log_f - 2.75)
    log_r = truncnorm.rvs((low - mean) / sigma, (high - mean) / sigma, loc=mean, scale=sigma, random_state=rng)
    observed_r = log_r + 0.05 * rng.standard_normal(n)
    draws = np.empty((n, k, 7))
    draws[:] = prior.sample(n * k, seed=1).numpy().reshape(n, k, 7)
    draws[:, :, 0] = log_f[:, None] + 0.02 * rng.standard_normal((n, k))
    lo = (low - observed_r) / 0.05
    hi = (high - observed_r) / 0.05
    draws[:, :, 1] = truncnorm.rvs(lo[:, None], hi[:, None], loc=observed_r[:, None], scale=0.05, size=(n, k),
                                   random_state=rng)
    # 300 steps of 32 walkers (τ ≈ 24, burn-in 2τ: ≈ 330 effective draws) put each median within ≈ 0.07 posterior
    # std of the converged chain's: nothing against the 4-std bound below
    with pytest.warns(RuntimeWarning, match="chain is only"):
        result = fit_size_luminosity(draws, prior, n_steps=300, seed=0, progress=False)
    samples = result.samples
    for j, truth in enumerate((a, b, sigma)):
        assert abs(np.median(samples[:, j]) - truth) < 4 * samples[:, j].std()
    model = SizeLuminosityModel(draws, prior)
    assert float(model.log_prob(torch.tensor([[0.45, 0.3, 0.9]]))[0]) == -math.inf
    with pytest.raises(ValueError, match="Uniform prior on log10_r_half"):
        SizeLuminosityModel(draws, JointPrior([*prior.components[:1], Normal(0.4, 0.2, name="log10_r_half"),
                                               *prior.components[2:]]))
    with pytest.raises(ValueError, match="draws must be"):
        SizeLuminosityModel(draws[:, :, :3], prior)
    draws[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SizeLuminosityModel(draws, prior)


def test_size_luminosity_weights_match_the_truncated_integral():
    # one galaxy whose exact posterior in log r is N(obs, s²) truncated to the box, under a uniform
    # training prior: log p(x | α) must equal log ∫ N(obs; r, s) TN(r; μ(α), σ, [lo, hi]) dr up to a
    # constant, here with μ near the lower edge and σ wide so that the truncation matters
    from scipy.integrate import quad
    from scipy.stats import norm

    prior = structural_prior()
    low, high = float(prior.low[1]), float(prior.high[1])
    obs, s, log_f = 0.08, 0.05, 3.25
    draws = np.zeros((1, 100_000, 7))
    draws[0, :, 0] = log_f
    draws[0, :, 1] = truncnorm.rvs((low - obs) / s, (high - obs) / s, loc=obs, scale=s, size=100_000,
                                   random_state=np.random.default_rng(0))
    model = SizeLuminosityModel(draws, prior)
    alphas = [(0.05, 0.3, 0.3), (0.1, 0.0, 0.2), (0.3, 0.5, 0.4), (0.02, 0.0, 0.1)]
    ours = model.log_prob(torch.tensor(alphas, dtype=torch.float64)).numpy()  # uniform hyperprior: a constant
    exact = []
    for a, b, sigma in alphas:
        mu = a + b * (log_f - 2.75)
        # the truncated density, normalised in log space on the tail where it is small
        log_mass = (norm.logsf(low, mu, sigma) + math.log1p(-math.exp(norm.logsf(high, mu, sigma)
                                                                      - norm.logsf(low, mu, sigma)))
                    if mu < low else
                    norm.logcdf(high, mu, sigma) + math.log1p(-math.exp(norm.logcdf(low, mu, sigma)
                                                                         - norm.logcdf(high, mu, sigma))))
        peak = norm.logpdf(high, mu, sigma) if mu > high else 0.0   # factored out to keep quad in range
        value, _ = quad(lambda r: norm.pdf(obs, r, s) * math.exp(norm.logpdf(r, mu, sigma) - peak), low, high,
                        points=[obs], epsabs=0, epsrel=1e-10, limit=200)
        exact.append(math.log(value) + peak - log_mass)
    difference = ours - np.array(exact)
    # 1e5 draws: Monte Carlo error of the average ~ 1e-3 relative
    assert np.ptp(difference) < 0.01
    # a relation whose mean, 0.45 + 1.9 · 0.5 = 1.4, lies 10 σ above the box: a plain cdf difference
    # underflows to 0 there, and dividing by a clamped zero once made it the *most* likely relation
    extreme = float(model.log_prob(torch.tensor([[0.45, 1.9, 0.05]], dtype=torch.float64))[0])
    assert np.isfinite(extreme) and extreme < ours.min() - 50


def test_population_simulation_follows_the_relation(small):
    stamps, truth = simulate_size_luminosity(2000, StampSimulator((16, 16)), a=0.45, b=0.3, sigma=0.1, seed=5)
    x, y = np.asarray(truth["log10_flux"]) - 2.75, np.asarray(truth["log10_r_half"])
    slope, intercept = np.polyfit(x, y, 1)
    # truncation at 0 and 0.9 dex trims < 0.1 % of the mass at these settings; the OLS standard
    # errors are 0.1/(0.433 √2000) ≈ 0.005 (slope) and 0.0022 (intercept): tolerances ≈ 3σ and 4.5σ
    assert slope == pytest.approx(0.3, abs=0.015) and intercept == pytest.approx(0.45, abs=0.01)
    assert np.std(y - (intercept + slope * x)) == pytest.approx(0.1, rel=0.06)


def test_stamps_of_another_pixel_scale_are_refused(small):
    """The posterior was trained on sizes in pixels of 0.2 arcsec: stamps of 0.05 arcsec/pix would be misread."""
    from astrobayes.galaxies import Stamps
    from astrobayes.galaxies.structure import _images_and_sigma

    stamps = Stamps(np.zeros((2, 16, 16)), pixel_scale=0.05)
    with pytest.raises(ValueError, match=r"stamps have 0.05 arcsec / pix but the model was trained for 0.2 arcsec"):
        _images_and_sigma(stamps, small)
    stamps.pixel_scale = 0.2 * u.arcsec / u.pix
    assert _images_and_sigma(stamps, small)[0].shape == (2, 16, 16)


def test_features_and_bad_input(small):
    assert stamp_features(np.zeros((16, 16)), 1.0).shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="images must be"):
        stamp_features(np.zeros((2, 3, 16, 16)), 1.0)
    with pytest.raises(ValueError, match="noise_sigma"):
        StampSimulator((16, 16), noise_sigma=0.0)
    with pytest.raises(ValueError, match="pixel_scale"):
        StampSimulator((16, 16), pixel_scale=3 * u.kg)
    with pytest.raises(ValueError, match=r"pixel_scale is in pix / arcsec.*inverse"):
        StampSimulator((16, 16), pixel_scale=5 * u.pix / u.arcsec)
    with pytest.raises(ValueError, match=r"shape must be the stamp size \(H, W\) in pixels, got '32'"):
        StampSimulator("32")  # was read as (3, 2) and blamed on the renderer's minimum size
    with pytest.raises(ValueError, match="e_max"):
        structural_prior(e_max=0.9)
    with pytest.raises(ValueError, match="n must be"):
        simulate_stamps(0, small)
    assert truth_table(np.zeros((1, 7)))["q"][0] == 1.0


def test_summary_reports_ood_p_values(small, small_posterior, tmp_path):
    """Each stamp's OOD p-value against the training simulations' CNN embeddings: fresh simulations are flagged at
    about the nominal rate; noise 100 times the trained level, a bright neighbour or a flat image are flagged."""
    from astrobayes.inference.diagnostics.ood import ood_warning

    stamps, _ = simulate_stamps(400, small, seed=31)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = small_posterior.summary(stamps, n_samples=20)
    p = np.asarray(table["ood_p_value"])
    assert table.colnames[-1] == "ood_p_value" and "training simulations" in table["ood_p_value"].info.description
    assert table.meta["ood_alpha"] == 0.01 and table.meta["ood_flagged"] == int((p <= 0.01).sum())
    assert "ood_note" not in table.meta
    np.testing.assert_array_equal(p, small_posterior.posterior.estimator.ood_p_value(stamp_features(stamps.data, 1.0)))
    # the one-line warning when any stamp is flagged, none otherwise
    assert [str(w.message) for w in caught if "unlike the training" in str(w.message)] == \
        [m for m in [ood_warning(p, objects="stamps")] if m]
    # fresh stamps like the training ones: flagged at α = 0.05 within 3σ of the calibration-set and binomial
    # spreads, plus the conformal discreteness 1/(n_cal + 1) (measured 5.75 %)
    n_cal = small_posterior.posterior.estimator.ood.n_calibration
    band = 3 * np.sqrt(0.05 * 0.95 * (1 / len(p) + 1 / n_cal)) + 1 / (n_cal + 1)
    assert abs(np.mean(p <= 0.05) - 0.05) <= band
    # unlike stamps (measured on 20 of each: all at p = 1/801, the smallest there is): pure noise of σ = 100
    # (trained: σ = 1); a galaxy with a neighbour at the prior's top flux 5 px away; a blank and a flat image.
    # Few of them and few draws: the network puts ~0.03 % of their draws inside the prior, so sampling is slow
    rng = np.random.default_rng(0)
    others, _ = simulate_stamps(8, small, seed=32)
    neighbour = small.prior.sample(8, seed=33).numpy()
    neighbour[:, 0], neighbour[:, 5], neighbour[:, 6] = 3.5, 5.0, 4.0   # log10 flux, x0, y0 [pix]
    unlike = np.concatenate([rng.normal(0.0, 100.0, (8, 16, 16)), others.data + small.noiseless(neighbour),
                             np.zeros((1, 16, 16)), np.full((1, 16, 16), 50.0)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(inside the prior support|in-support draws).*")
        warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)  # stamps left without draws
        with pytest.warns(UserWarning, match=r"\d+ of 18 stamps are unlike the training simulations at α = 0.01"):
            flagged = small_posterior.summary(unlike, n_samples=5)
    assert np.mean(np.asarray(flagged["ood_p_value"]) <= 0.01) > 0.9
    assert flagged.meta["ood_flagged"] == int((np.asarray(flagged["ood_p_value"]) <= 0.01).sum())
    # the reference travels with the saved model
    small_posterior.save(tmp_path / "structure")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = StructurePosterior.load(tmp_path / "structure").summary(stamps[:50], n_samples=20)
    np.testing.assert_array_equal(np.asarray(again["ood_p_value"]), p[:50])


def test_summary_without_an_ood_reference(small):
    """Trained on fewer than 300 simulations the network has no reference: NaN p-values, a note, no warning."""
    posterior = train_structure_posterior(small, 250, seed=0, epochs=1, progress=False, n_transforms=1,
                                          hidden_features=8, embedding_dim=8)
    assert posterior.posterior.estimator.ood is None
    stamps, _ = simulate_stamps(5, small, seed=7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = posterior.summary(stamps, n_samples=20)
    assert np.isnan(table["ood_p_value"]).all() and table.meta["ood_flagged"] == 0
    assert "fewer than the 300" in table.meta["ood_note"]
    assert not any("unlike the training" in str(w.message) for w in caught)
