"""Stellar population densities: normalisation, sampler/density agreement, torch broadcasting, bad input.

Tolerances: the normalisation integrals are done with scipy.integrate.quad on smooth integrands, whose own error
estimates are below 1e-10, so |∫ p − 1| < 1e-8 leaves two orders of margin and still catches any wrong Jacobian or
normaliser (those are O(1) effects). Sampler checks are one-sample KS tests of draws against the CDF obtained by
integrating the density numerically (trapezoid on 200 001 points, CDF error < 1e-8, negligible against the KS
statistic's ~1/√n); with a correct sampler p is uniform, so a fixed seed fails p > 1e-3 with probability 1e-3.
"""
import math

import astropy.units as u
import numpy as np
import pytest
import torch
from scipy import integrate, stats

from astrobayes.stars.population import (
    KROUPA_BREAKS,
    SALPETER_SLOPE,
    StellarPopulation,
    kroupa_imf_log_prob,
    metallicity_log_prob,
    powerlaw_imf_log_prob,
    sample_kroupa_imf,
    sample_metallicity,
    sample_powerlaw_imf,
)

SLOPES = [-0.5, 0.0, 0.7, 1.0, 1.0 + 1e-7, 1.3, SALPETER_SLOPE, 3.5]


def integral(log_density, low, high, breaks=()):
    points = [b for b in breaks if low < b < high] or None
    value, error = integrate.quad(lambda x: math.exp(log_density(x)), low, high, points=points, limit=200,
                                  epsabs=1e-12, epsrel=1e-12)
    assert error < 1e-9
    return value


def ks_pvalue(draws, log_density, low, high):
    """KS p-value of draws against the CDF of exp(log_density) on [low, high], integrated numerically."""
    grid = np.linspace(low, high, 200_001)
    density = np.exp(log_density(grid))
    cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    cdf /= cdf[-1]
    return stats.kstest(draws, lambda x: np.interp(x, grid, cdf)).pvalue


# ------------------------------------------------------------------ power-law IMF
@pytest.mark.parametrize("slope", SLOPES)
@pytest.mark.parametrize("limits", [(0.1, 100.0), (0.8, 1.2), (0.01, 300.0)])
def test_powerlaw_imf_is_normalised_in_log_mass(slope, limits):
    low, high = np.log10(limits)
    assert abs(integral(lambda x: powerlaw_imf_log_prob(x, slope, *limits), low, high) - 1) < 1e-8


def test_powerlaw_imf_matches_closed_form_and_alpha_one_limit():
    log_mass = np.linspace(-1, 2, 7)
    mass = 10**log_mass
    # Salpeter: p(log10 M) = ln10 M^(1-α) (1-α) / (b^(1-α) - a^(1-α))
    beta = 1 - SALPETER_SLOPE
    expected = np.log(np.log(10) * mass**beta * beta / (100.0**beta - 0.1**beta))
    np.testing.assert_allclose(powerlaw_imf_log_prob(log_mass, SALPETER_SLOPE, 0.1, 100.0), expected, rtol=1e-12)
    # α = 1: uniform in log M over 3 dex
    np.testing.assert_allclose(powerlaw_imf_log_prob(log_mass, 1.0, 0.1, 100.0), -np.log(3.0), rtol=1e-14)
    # next to α = 1: |d log p / dα| = |E[ln M] − ln M| ≤ ln(1000) ≈ 6.9, so a step of 1e-9 moves it by < 7e-9
    for step in (1e-9, -1e-9):
        np.testing.assert_allclose(powerlaw_imf_log_prob(log_mass, 1.0 + step, 0.1, 100.0), -np.log(3.0),
                                   atol=7e-9)


def test_powerlaw_imf_support():
    values = powerlaw_imf_log_prob(np.array([-1.0 - 1e-9, -1.0, 2.0, 2.0 + 1e-9, np.nan]), 2.35, 0.1, 100.0)
    assert np.isneginf(values[[0, 3, 4]]).all() and np.isfinite(values[[1, 2]]).all()
    # Quantity limits in other mass units are converted to M_sun
    assert powerlaw_imf_log_prob(0.5, 2.35, 0.1 * u.Msun, (100 * u.Msun).to(u.kg)) == pytest.approx(
        powerlaw_imf_log_prob(0.5, 2.35, 0.1, 100.0), rel=1e-12)


@pytest.mark.parametrize("slope", [1.0, SALPETER_SLOPE, -0.5])
def test_powerlaw_sampler_matches_density(slope):
    draws = sample_powerlaw_imf(4000, slope, 0.1, 100.0, rng=np.random.default_rng(11))
    assert draws.shape == (4000,) and draws.min() >= -1.0 and draws.max() <= 2.0
    assert ks_pvalue(draws, lambda x: powerlaw_imf_log_prob(x, slope, 0.1, 100.0), -1.0, 2.0) > 1e-3


def test_ks_check_detects_a_wrong_slope():
    # the sampler test can fail: Salpeter draws against an α = 1.35 density. The two CDFs differ by up to 0.43 over
    # 0.1–100 M_sun, far above the 1.95/√4000 ≈ 0.03 of the 0.1 % level, so p is astronomically small.
    draws = sample_powerlaw_imf(4000, SALPETER_SLOPE, 0.1, 100.0, rng=11)
    assert ks_pvalue(draws, lambda x: powerlaw_imf_log_prob(x, 1.35, 0.1, 100.0), -1.0, 2.0) < 1e-10


def test_samplers_are_reproducible_with_a_seed():
    assert np.array_equal(sample_powerlaw_imf(5, rng=3), sample_powerlaw_imf(5, rng=3))
    assert np.array_equal(sample_kroupa_imf(5, rng=3), sample_kroupa_imf(5, rng=3))
    assert not np.array_equal(sample_metallicity(5, rng=3), sample_metallicity(5, rng=4))
    assert sample_powerlaw_imf(0, rng=1).shape == (0,)


# ------------------------------------------------------------------ Kroupa IMF
@pytest.mark.parametrize("limits", [(0.01, 150.0), (0.08, 100.0), (0.1, 0.3), (0.2, 100.0), (0.6, 50.0),
                                    (0.01, 0.05)])
def test_kroupa_imf_is_normalised(limits):
    low, high = np.log10(limits)
    value = integral(lambda x: kroupa_imf_log_prob(x, *limits), low, high, breaks=np.log10(KROUPA_BREAKS))
    assert abs(value - 1) < 1e-8


def test_kroupa_imf_slopes_and_continuity():
    # inside each segment d log p / d log10 M = (1 − α_j) ln 10 (the M ln10 Jacobian adds the 1)
    for centre, alpha in ((np.log10(0.03), 0.3), (np.log10(0.2), 1.3), (1.0, 2.3)):
        step = 1e-3
        slope = (kroupa_imf_log_prob(centre + step, 0.01, 100.0)
                 - kroupa_imf_log_prob(centre - step, 0.01, 100.0)) / (2 * step)
        assert slope == pytest.approx((1 - alpha) * np.log(10), rel=1e-9)
    # continuous at the breaks: a jump would be O(1); across ±1e-9 dex the smooth change is < 1e-8
    for brk in np.log10(KROUPA_BREAKS):
        assert abs(kroupa_imf_log_prob(brk - 1e-9, 0.01, 100.0) - kroupa_imf_log_prob(brk + 1e-9, 0.01, 100.0)) < 1e-8


def test_kroupa_reduces_to_a_power_law_above_its_last_break():
    log_mass = np.linspace(np.log10(0.6), np.log10(50), 9)
    np.testing.assert_allclose(kroupa_imf_log_prob(log_mass, 0.6, 50.0), powerlaw_imf_log_prob(log_mass, 2.3, 0.6, 50.0),
                               rtol=1e-12)


@pytest.mark.parametrize("limits", [(0.01, 100.0), (0.1, 100.0)])
def test_kroupa_sampler_matches_density(limits):
    draws = sample_kroupa_imf(4000, *limits, rng=np.random.default_rng(5))
    low, high = np.log10(limits)
    assert draws.min() >= low and draws.max() <= high
    assert ks_pvalue(draws, lambda x: kroupa_imf_log_prob(x, *limits), low, high) > 1e-3


# ------------------------------------------------------------------ metallicity
@pytest.mark.parametrize("mean, width, feh_min, feh_max", [(0.0, 0.2, -1.0, 0.5), (0.3, 0.2, -1.0, 0.1),
                                                           (-3.0, 0.2, -1.0, 0.5), (0.0, 0.3, -0.2, None),
                                                           (-0.5, 0.5, None, None)])
def test_metallicity_is_normalised(mean, width, feh_min, feh_max):
    # (-3, 0.2) on [-1, 0.5] is 10σ away: the normaliser Φ(b) − Φ(a) ~ 1e-23 must come from the tail formula
    low = feh_min if feh_min is not None else mean - 12 * width
    high = feh_max if feh_max is not None else mean + 12 * width
    assert abs(integral(lambda x: metallicity_log_prob(x, mean, width, feh_min, feh_max), low, high) - 1) < 1e-8
    if feh_min is not None:
        assert np.isneginf(metallicity_log_prob(feh_min - 1e-6, mean, width, feh_min, feh_max))


def test_metallicity_untruncated_equals_normal():
    feh = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(metallicity_log_prob(feh, -0.1, 0.3), stats.norm.logpdf(feh, -0.1, 0.3), rtol=1e-12)


@pytest.mark.parametrize("mean, width, feh_min, feh_max", [(0.0, 0.3, -1.0, 0.5), (0.4, 0.3, -1.0, 0.2)])
def test_metallicity_sampler_matches_density(mean, width, feh_min, feh_max):
    draws = sample_metallicity(4000, mean, width, feh_min, feh_max, rng=np.random.default_rng(2))
    assert draws.min() >= feh_min and draws.max() <= feh_max
    assert ks_pvalue(draws, lambda x: metallicity_log_prob(x, mean, width, feh_min, feh_max), feh_min, feh_max) > 1e-3


# ------------------------------------------------------------------ torch broadcasting, as HierarchicalModel calls
def test_densities_broadcast_over_walkers_stars_draws():
    walkers, stars, draws = 3, 5, 7
    generator = torch.Generator().manual_seed(0)
    log_mass = (torch.rand(1, stars, draws, generator=generator, dtype=torch.float64) * 2.5 - 1.0)
    feh = torch.rand(1, stars, draws, generator=generator, dtype=torch.float64) - 0.5
    slope = torch.tensor([1.0, 2.35, 3.0], dtype=torch.float64).reshape(walkers, 1, 1)
    m_min = torch.tensor([0.1, 0.2, 0.09], dtype=torch.float64).reshape(walkers, 1, 1)
    mean = torch.tensor([0.0, -0.2, 0.1], dtype=torch.float64).reshape(walkers, 1, 1)
    results = {
        "powerlaw": (powerlaw_imf_log_prob(log_mass, slope, m_min, 100.0),
                     lambda w, x: powerlaw_imf_log_prob(x, float(slope[w]), float(m_min[w]), 100.0)),
        "kroupa": (kroupa_imf_log_prob(log_mass, m_min, 100.0, slopes=(0.3, 1.3, slope)),
                   lambda w, x: kroupa_imf_log_prob(x, float(m_min[w]), 100.0, slopes=(0.3, 1.3, float(slope[w])))),
        "feh": (metallicity_log_prob(feh, mean, 0.3, -1.0, 0.5),
                lambda w, x: metallicity_log_prob(x, float(mean[w]), 0.3, -1.0, 0.5)),
    }
    for name, (batched, scalar) in results.items():
        assert isinstance(batched, torch.Tensor) and batched.dtype == torch.float64, name
        assert batched.shape == (walkers, stars, draws), name
        inputs = feh if name == "feh" else log_mass
        for w in range(walkers):
            np.testing.assert_allclose(batched[w].numpy(), scalar(w, inputs[0].numpy()), rtol=1e-12, err_msg=name)


def test_numpy_in_numpy_out():
    assert isinstance(powerlaw_imf_log_prob(np.zeros(3)), np.ndarray)
    assert isinstance(powerlaw_imf_log_prob(0.0), float)
    assert isinstance(metallicity_log_prob(torch.zeros(2)), torch.Tensor)


# ------------------------------------------------------------------ StellarPopulation
def test_stellar_population_is_the_product_of_its_parts():
    population = StellarPopulation("kroupa", m_min=0.1, m_max=50.0, feh_mean=-0.1, feh_width=0.25,
                                   feh_range=(-1.0, 0.4))
    latents = {"log_mass": torch.linspace(-1, 1.6, 6)[None, :, None],
               "feh": torch.linspace(-0.9, 0.3, 6)[None, :, None]}
    hyper = {"imf_slope": torch.tensor([2.0, 2.7]).reshape(2, 1, 1),
             "feh_mean": torch.tensor([0.0, -0.3]).reshape(2, 1, 1),
             "not_a_population_parameter": torch.zeros(2, 1, 1)}
    value = population(latents, hyper)
    assert value.shape == (2, 6, 1)
    expected = (kroupa_imf_log_prob(latents["log_mass"], 0.1, 50.0, slopes=(0.3, 1.3, hyper["imf_slope"]))
                + metallicity_log_prob(latents["feh"], hyper["feh_mean"], 0.25, -1.0, 0.4))
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    # without hyper the fixed values are used
    fixed = population.log_prob({"log_mass": 0.0, "feh": 0.0})
    expected = kroupa_imf_log_prob(0.0, 0.1, 50.0) + metallicity_log_prob(0.0, -0.1, 0.25, -1.0, 0.4)
    assert fixed == pytest.approx(expected, rel=1e-12)


def test_stellar_population_sample_follows_its_settings():
    population = StellarPopulation("salpeter", m_min=0.5, m_max=20.0, feh_range=(-1.0, 0.5))
    stars = population.sample(4000, rng=7, feh_mean=-0.4)
    assert stars["log_mass"].shape == stars["feh"].shape == (4000,)
    low, high = np.log10([0.5, 20.0])
    assert ks_pvalue(stars["log_mass"], lambda x: powerlaw_imf_log_prob(x, 2.35, 0.5, 20.0), low, high) > 1e-3
    assert ks_pvalue(stars["feh"], lambda x: metallicity_log_prob(x, -0.4, 0.2, -1.0, 0.5), -1.0, 0.5) > 1e-3


def test_population_inside_a_hierarchical_model_peaks_at_the_true_slope():
    """300 stars with masses measured to 0.02 dex: the marginal likelihood of the IMF slope on a grid.

    Fisher information per star for α of a truncated power law is Var(ln M) (an exponential family in ln M), so
    σ_α ≈ 1/√(N Var(ln M)); Salpeter on 0.5–20 M_sun has Var(ln M) = 0.454 (numerical integral), giving
    σ_α ≈ 0.086 for N = 300 (the 0.02 dex noise, 0.046 in ln M against a spread of 0.67, adds < 1 %). The grid
    maximum must lie within 3σ = 0.26 of 2.35. A missing M ln10 Jacobian would shift the peak by 1.
    """
    from astrobayes.inference.hierarchical import HierarchicalModel
    from astrobayes.inference.priors import JointPrior, Uniform

    population = StellarPopulation("salpeter", m_min=0.5, m_max=20.0, feh_range=(-1.0, 0.5))
    truth = population.sample(300, rng=4)
    rng = np.random.default_rng(5)
    data = {"log_mass_obs": truth["log_mass"] + 0.02 * rng.normal(size=300),
            "feh_obs": truth["feh"] + 0.05 * rng.normal(size=300)}

    def measurement(observed, predicted, hyper):
        return (torch.distributions.Normal(predicted["log_mass"], 0.02).log_prob(observed["log_mass_obs"])
                + torch.distributions.Normal(predicted["feh"], 0.05).log_prob(observed["feh_obs"]))

    proposal = JointPrior([Uniform(np.log10(0.5), np.log10(20.0), name="log_mass"), Uniform(-1.0, 0.5, name="feh")])
    model = HierarchicalModel(JointPrior([Uniform(1.0, 4.0, name="imf_slope")]), population, measurement, data,
                              proposal, n_draws=128, n_pilot=2048, seed=0)
    grid = np.linspace(1.5, 3.2, 35)
    log_like = model.log_prob(grid[:, None]).numpy()
    assert np.isfinite(log_like).all()
    peak = grid[np.argmax(log_like)]
    assert abs(peak - SALPETER_SLOPE) < 0.26
    # with the true masses the maximum-likelihood slope moves by only ~σ_α √(1 − Var_true/Var_noisy) ≈ 0.006 (the
    # noise variance is 0.5 % of Var(ln M)), well under the 0.05 grid step: the two grid maxima are at most a step apart
    exact = [powerlaw_imf_log_prob(truth["log_mass"], slope, 0.5, 20.0).sum() for slope in grid]
    assert abs(peak - grid[np.argmax(exact)]) <= 0.05 + 1e-9


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, match", [
    (lambda: powerlaw_imf_log_prob(0.0, 2.35, 10.0, 1.0), "m_min must be smaller than m_max"),
    (lambda: powerlaw_imf_log_prob(0.0, 2.35, 1.0, 1.0), "m_min must be smaller than m_max"),
    (lambda: powerlaw_imf_log_prob(0.0, 2.35, -0.1, 1.0), "m_min must be a positive mass"),
    (lambda: powerlaw_imf_log_prob(0.0, float("nan"), 0.1, 1.0), "slope must be finite"),
    (lambda: powerlaw_imf_log_prob(0.0, 2.35, 0.1 * u.K, 1.0), "m_min has unit K"),
    (lambda: powerlaw_imf_log_prob(0.0, 2.35, torch.tensor([0.1, 5.0]), 2.0), "m_min must be smaller"),
    (lambda: sample_powerlaw_imf(10, 2.35, 0.0, 1.0), "m_min must be a positive mass"),
    (lambda: sample_powerlaw_imf(-1), "n must be a non-negative integer"),
    (lambda: sample_kroupa_imf(10, 5.0, 1.0), "m_min must be smaller"),
    (lambda: kroupa_imf_log_prob(0.0, 0.1, 1.0, slopes=(1.0, 2.0)), "one more entry than breaks"),
    (lambda: kroupa_imf_log_prob(0.0, 0.1, 1.0, breaks=(0.5, 0.08)), "strictly increasing"),
    (lambda: metallicity_log_prob(0.0, 0.0, 0.0), "width must be positive"),
    (lambda: metallicity_log_prob(0.0, 0.0, torch.tensor([0.1, -0.1])), "width must be positive"),
    (lambda: metallicity_log_prob(0.0, 0.0, 0.2, 0.5, -0.5), "feh_min must be smaller than feh_max"),
    (lambda: sample_metallicity(10, 0.0, -0.2), "width must be positive"),
    (lambda: StellarPopulation("chabrier"), "imf must be"),
    (lambda: StellarPopulation("powerlaw"), "needs imf_slope"),
    (lambda: StellarPopulation(m_min=2.0, m_max=1.0), "m_min must be smaller"),
    (lambda: StellarPopulation(feh_range=(0.5, -0.5)), "feh_min must be smaller than feh_max"),
    (lambda: StellarPopulation(feh_width=0.0), "feh_width must be positive"),
    (lambda: StellarPopulation().sample(3, imf_slop=2.0), "unknown hyperparameters"),
    (lambda: StellarPopulation()({"log_mass": torch.zeros(2)}, {}), "missing \\['feh'\\]"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: powerlaw_imf_log_prob(0.0 * u.dex, 2.35, 0.1, 1.0), "log_mass must be plain numbers"),
    (lambda: powerlaw_imf_log_prob("heavy", 2.35, 0.1, 1.0), "log_mass must be numeric"),
    (lambda: sample_powerlaw_imf(10, rng="seed"), "rng must be"),
    (lambda: sample_powerlaw_imf(10, slope=[2.0, 3.0]), "slope must be a single number"),
])
def test_bad_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
