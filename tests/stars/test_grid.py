"""The exact-quadrature marginal likelihood of the stars (LuminosityGridModel)."""
import math
import warnings

import numpy as np
import pytest
import torch

from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.priors import JointPrior, LogUniform, Uniform
from astrobayes.stars.emulator import DEFAULT_FEH_RANGE, DEFAULT_LOG_MASS_RANGE, exact_stellar_delta_map
from astrobayes.stars.grid import LuminosityGridModel, log_area_term
from astrobayes.stars.model import stefan_boltzmann_model
from astrobayes.stars.population import StellarPopulation
from astrobayes.stars.simulate import default_population, simulate_field
from astrobayes.stars.zams import zams_log_radius_teff

SIGMA_SB = 5.670374419e-8
HYPERPRIOR = JointPrior([LogUniform(1e-8, 1e-7, name="sigma"), Uniform(0.5, 4.0, name="imf_slope")])


def _grid_model(field, maps=None, population=None, hyperprior=HYPERPRIOR):
    lum = field["luminosity"].value
    return LuminosityGridModel(hyperprior, population or default_population(), lum,
                               field["luminosity_err"].value / lum, maps or exact_stellar_delta_map(),
                               DEFAULT_LOG_MASS_RANGE, DEFAULT_FEH_RANGE)


def test_grid_likelihood_matches_brute_force_monte_carlo():
    """Per-star log p(L̂ | σ, α) against a plain average over 400 000 population draws pushed through the exact
    ZAMS model: they agree within 4 Monte Carlo standard errors plus 2e-3 (the grid's own error is ~1e-4)."""
    field = simulate_field(40, seed=5)
    model = _grid_model(field)
    theta = torch.tensor([[SIGMA_SB, 2.35], [4.5e-8, 1.8]])
    grid = model.object_log_likelihood(theta)
    lum, r = field["luminosity"].value, field["luminosity_err"].value / field["luminosity"].value
    population = default_population()
    for row, (sigma, slope) in enumerate(theta.tolist()):
        draws = population.sample(400_000, rng=row, imf_slope=slope)
        ell = log_area_term(*map(torch.as_tensor, zams_log_radius_teff(draws["log_mass"], draws["feh"]))).numpy()
        for i in range(0, 40, 8):
            x = (np.log(lum[i]) - np.log(sigma) - ell) / r[i]
            density = np.exp(-0.5 * x**2) / (r[i] * math.sqrt(2 * math.pi) * lum[i])
            error = density.std() / density.mean() / math.sqrt(len(density))
            assert abs(float(grid[row, i]) - math.log(density.mean())) < 4 * error + 2e-3


def test_log_probability_is_smooth_in_sigma():
    """Deterministic quadrature: over ±6 % in σ (±5 posterior widths for 2000 stars) log p departs from a quartic
    by less than 0.01 nats; importance sampling at K = 256 wobbles by ~1 nat here."""
    field = simulate_field(2000, seed=1)
    model = _grid_model(field, hyperprior=JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]))
    offsets = np.linspace(-0.06, 0.06, 61)
    log_p = model.log_prob(torch.tensor(SIGMA_SB * np.exp(offsets))[:, None]).numpy()
    residual = log_p - np.polyval(np.polyfit(offsets, log_p, 4), offsets)
    assert np.abs(residual).max() < 0.01
    assert abs(offsets[np.argmax(log_p)]) < 0.03  # peaks near the truth (the posterior width is ~0.011)


def test_map_runs_only_when_the_model_is_built():
    delta = exact_stellar_delta_map()
    model = _grid_model(simulate_field(50, seed=2), maps=delta)
    calls = delta.n_calls
    model.log_prob(HYPERPRIOR.sample(16, seed=0))
    model.log_prob(HYPERPRIOR.sample(16, seed=1))
    assert delta.n_calls == calls == 2  # a coarse look at the slopes, then the grid


def test_grid_and_importance_sampling_agree():
    """The two marginalisations of the same model: per-star values within 5 importance-sampling standard errors
    (estimated from the weights) plus 0.01."""
    field = simulate_field(30, seed=3)
    theta = torch.tensor([[SIGMA_SB, 2.35, -0.2, 0.2], [5.0e-8, 2.6, -0.1, 0.3]])
    grid = stefan_boltzmann_model(field, exact_stellar_delta_map(), method="grid").object_log_likelihood(theta)
    importance = stefan_boltzmann_model(field, exact_stellar_delta_map(), method="importance", n_draws=4096)
    values = importance.object_log_likelihood(theta)
    log_w = importance._all_log_weights(theta)
    weights = torch.softmax(log_w, dim=-1)
    standard_error = torch.sqrt((weights**2).sum(-1))  # relative error of the average ≈ 1/√ESS
    assert torch.all((grid - values).abs() < 5 * standard_error + 0.01)


def test_ensemble_members_are_marginalised_as_a_mixture_of_catalogues():
    field = simulate_field(60, seed=4)
    exact = exact_stellar_delta_map()

    def shifted(rows):
        log_radius, log_teff = zams_log_radius_teff(rows[:, 0], rows[:, 1])
        return torch.stack([log_radius, log_teff + 0.01], dim=1)  # 2.3 % hotter: 9.6 % more luminous

    hot = DeltaMap(shifted, inputs=["log_mass", "feh"], outputs=["log_radius", "log_teff"])
    theta = torch.tensor([[SIGMA_SB, 2.35], [SIGMA_SB / 1.096, 2.35]])
    single = [_grid_model(field, maps=m).log_prob(theta) for m in (exact, hot)]
    both = _grid_model(field, maps=[exact, hot]).log_prob(theta)
    assert torch.allclose(both, torch.logsumexp(torch.stack(single), 0) - math.log(2), atol=1e-9)
    # a map 9.6 % too luminous is matched by a σ 9.6 % lower
    assert abs(float(single[1][1] - single[0][0])) < 1.0


def test_population_reaching_beyond_the_domain_is_reported():
    population = StellarPopulation("powerlaw", imf_slope=2.35, m_min=0.3, m_max=20.0, feh_mean=-0.2,
                                   feh_width=0.2, feh_range=DEFAULT_FEH_RANGE)
    model = _grid_model(simulate_field(30, seed=6), population=population,
                        hyperprior=JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]))
    # the fraction of a Salpeter IMF on 0.3–20 M_sun that lies above 0.5 M_sun
    inside = (0.5**-1.35 - 20**-1.35) / (0.3**-1.35 - 20**-1.35)
    assert float(model.population_mass(torch.tensor([[SIGMA_SB]]))[0]) == pytest.approx(inside, rel=2e-3)
    with pytest.warns(RuntimeWarning, match="outside the stellar map's domain"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "the chain is only", RuntimeWarning)  # a short chain, knowingly
            model.sample(n_steps=60, n_walkers=8, progress=False)


def test_bad_inputs_are_named():
    field = simulate_field(10, seed=0)
    lum = field["luminosity"].value
    args = (default_population(), lum, 0.05 * np.ones(10), exact_stellar_delta_map(), DEFAULT_LOG_MASS_RANGE,
            DEFAULT_FEH_RANGE)
    with pytest.raises(ValueError, match="include 'sigma'"):
        LuminosityGridModel(JointPrior([Uniform(0.5, 4.0, name="imf_slope")]), *args)
    with pytest.raises(ValueError, match="fractional_error must be finite and positive"):
        LuminosityGridModel(HYPERPRIOR, args[0], lum, -0.05 * np.ones(10), *args[3:])
    with pytest.raises(ValueError, match="one length"):
        LuminosityGridModel(HYPERPRIOR, args[0], lum, 0.05 * np.ones(9), *args[3:])
    with pytest.raises(TypeError, match="maps must be a DeltaMap"):
        LuminosityGridModel(HYPERPRIOR, args[0], lum, args[2], "zams", *args[4:])
    with pytest.raises(ValueError, match=r"theta must have shape \(m, 2\)"):
        _grid_model(field).log_prob(torch.ones(3))
    with pytest.raises(ValueError, match="need a"):  # 0.01 % errors: a grid far too fine
        LuminosityGridModel(HYPERPRIOR, args[0], lum, 1e-4 * np.ones(10), *args[3:])
    nan_population = lambda latents, hyper: latents["log_mass"] * torch.nan  # noqa: E731
    with pytest.raises(ValueError, match="population returned NaN at hyperparameters"):
        _grid_model(field, population=nan_population).log_prob(HYPERPRIOR.sample(2, seed=0))
    teff_field = simulate_field(10, teff_error=0.01, seed=0)
    with pytest.raises(ValueError, match="method='grid' uses luminosities only"):
        stefan_boltzmann_model(teff_field, exact_stellar_delta_map(), method="grid")
    with pytest.raises(ValueError, match="method must be"):
        stefan_boltzmann_model(field, exact_stellar_delta_map(), method="mcmc")
    with pytest.raises(ValueError, match="map_uncertainty must be"):
        stefan_boltzmann_model(field, exact_stellar_delta_map(), map_uncertainty="std")


def test_stars_no_sigma_can_explain_are_named():
    field = simulate_field(20, seed=8)
    model = _grid_model(field)
    low, high = model.sigma_range
    assert low < SIGMA_SB < high and low >= 1e-8 * (1 - 1e-9) and high <= 1e-7 * (1 + 1e-9)
    # a 10⁶ L_sun supergiant among ZAMS stars: a 20 M_sun ZAMS star has ~4·10⁴ L_sun, ~7·10⁴ even for σ = 1e-7
    field["luminosity"][3] = 1e6 * field["luminosity"].unit
    field["luminosity_err"][3] = 5e4 * field["luminosity"].unit
    with pytest.raises(ValueError, match=r"catalogue rows \[3\] cannot be made"):
        _grid_model(field)
    # with σ up to 1e-4 a σ exists that makes the supergiant, but then the faint stars cannot be made: the blame
    # goes to the one star outside the σ interval shared by the most stars
    with pytest.raises(ValueError, match=r"catalogue rows \[3\] cannot be made"):
        _grid_model(field, hyperprior=JointPrior([LogUniform(1e-8, 1e-4, name="sigma")]))


def test_narrow_metallicity_at_the_domain_edge_integrates_to_one():
    """The [Fe/H] quadrature (3 Gauss–Legendre nodes per cell) on a 0.02 dex wide distribution cut by the domain
    edge: the population mass on the grid is 1 within 1e-4 (the midpoint rule on 48 cells gave 1.019)."""
    hyperprior = JointPrior([LogUniform(1e-8, 1e-7, name="sigma"), Uniform(-1.0, 0.15, name="feh_mean"),
                             Uniform(0.02, 0.6, name="feh_width")])
    model = _grid_model(simulate_field(30, seed=9), hyperprior=hyperprior)
    theta = torch.tensor([[SIGMA_SB, mean, width] for mean in (-0.98, -0.4, 0.13) for width in (0.02, 0.03, 0.3)])
    assert torch.allclose(model.population_mass(theta), torch.ones(len(theta), dtype=torch.float64), atol=1e-4)


def test_deep_ensemble_members_are_pooled_with_equal_weights():
    from astrobayes.stars import infer_stefan_boltzmann, train_stellar_map

    ensemble = train_stellar_map(n_train=500, hidden=(32, 32), ensemble=2, epochs=60, progress=False, seed=0)
    field = simulate_field(60, seed=10)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the chain is only", RuntimeWarning)
        result = infer_stefan_boltzmann(field, ensemble, free=["sigma"], n_steps=200, n_walkers=8, progress=False)
    assert len(result.members) == 2 and result.mcmc.meta["pooled_runs"] == 2
    n = len(result.mcmc.samples) // 2
    for half, member in zip((result.mcmc.samples[:n], result.mcmc.samples[n:]), result.members):
        assert np.array_equal(half, member.samples[len(member.samples) - n:])  # equal numbers from each member
    assert "pooled over 2 maps" in repr(result)
    with pytest.raises(ValueError, match="pools 2 independent runs"):
        result.mcmc.to_arviz()
    # importance sampling takes one map: the ensemble mean by default, a clear error when the mixture is asked for
    teff_field = simulate_field(10, teff_error=0.01, seed=0)
    assert len(stefan_boltzmann_model(teff_field, ensemble, n_draws=8).delta_maps) == 1
    with pytest.raises(ValueError, match="takes one map"):
        stefan_boltzmann_model(teff_field, ensemble, map_uncertainty="mixture")
    assert len(stefan_boltzmann_model(field, ensemble).maps) == 2  # grid: the mixture of members
