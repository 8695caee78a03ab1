"""The richness–mass hierarchical model: exact quadrature, recovery with known likelihoods, errors."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from astrobayes.clusters import MassFunction, RichnessMassModel, RichnessMassRelation, infer_richness_mass


def _catalog(n: int, seed: int, measurement: float = 0.15, grid=None):
    """Masses from the mass function, richnesses from the default relation, and Gaussian dynamical likelihoods.

    Each cluster's "dynamical mass" is m_obs ~ N(m_true, measurement²); its likelihood on the
    grid is exactly N(m_obs; m, measurement²) — a stand-in for the network that makes the test
    depend on the hierarchical model only.
    """
    rng = np.random.default_rng(seed)
    mass_function = MassFunction(log_mass_range=(13.5, 15.5))
    masses = mass_function.sample(n, rng)
    richness = RichnessMassRelation().sample(masses, rng)
    observed = masses + measurement * rng.standard_normal(n)
    grid = np.linspace(13.5, 15.5, 101) if grid is None else grid
    loglike = -0.5 * ((grid[None, :] - observed[:, None]) / measurement) ** 2
    return mass_function, grid, loglike, richness, observed


def test_log_likelihood_matches_direct_integration():
    mass_function, grid, loglike, richness, observed = _catalog(3, seed=1, grid=np.linspace(13.5, 15.5, 2001))
    model = RichnessMassModel(loglike, grid, richness, mass_function=mass_function)
    theta = np.array([3.3, 0.9, 0.3])
    total = 0.0
    for lam, m_obs in zip(richness, observed):
        def integrand(m, lam=lam, m_obs=m_obs):
            mean = theta[0] + theta[1] * math.log(10) * (m - 14.5)
            return (math.exp(-0.5 * ((m - m_obs) / 0.15) ** 2) * stats.norm.pdf(math.log(lam), mean, theta[2])
                    * math.exp(mass_function.log_prob(np.array([m]))[0]))
        value, _ = integrate.quad(integrand, 13.5, 15.5, points=[m_obs], limit=200)
        total += math.log(value)
    # trapezoid on a 2001-point grid of smooth integrands: error ≪ 1e-5 relative
    assert float(model.log_likelihood(theta[None])[0]) == pytest.approx(total, abs=1e-4)


def test_free_mass_function_prior_is_normalised_and_matches_fixed_one():
    mass_function, grid, loglike, richness, _ = _catalog(20, seed=2)
    fixed = RichnessMassModel(loglike, grid, richness, mass_function=mass_function)
    free = RichnessMassModel(loglike, grid, richness, mass_function=mass_function, free_mass_function=True)
    theta = torch.tensor([[3.4, 1.0, 0.25, mass_function.slope]], dtype=torch.float64)
    density = np.exp(free._log_mass_prior(theta)[0].numpy())
    assert integrate.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-12)
    # at the true slope the free model's mass function is the fixed one; the fixed one is normalised on a
    # 4001-point grid, the free one on the model's 101 points (step 0.02 dex): the trapezoid rule's h²/12 · f''
    # error on this density is ~2e-4 per cluster, so 20 clusters agree to 20 × 5e-4
    assert float(free.log_likelihood(theta)[0]) == pytest.approx(float(fixed.log_likelihood(theta[:, :3])[0]),
                                                                   abs=20 * 5e-4)
    assert free.names[-1] == "mass_function_slope"


@pytest.mark.parametrize("n_rep", [20, pytest.param(50, marks=pytest.mark.slow)])
def test_recovers_relation_with_known_likelihoods_at_nominal_rate(n_rep):
    """50 catalogs of 100 clusters: the 68 % intervals of (ln A, B, σ) contain the truth at the nominal rate.

    With 50 replicates and p = 0.68, a calibrated posterior gives between 50p − 3√(50 p(1−p)) = 24.1 and 43.9
    hits (3σ binomial band); the 95 % intervals at least 42.9. Every replicate has a fixed seed.
    The normal suite runs the first 20 replicates with their own bands (7.3–19.9 hits at 68 %, ≥ 16.1 at 95 %:
    95 % intervals half as wide as they should be cover ≈ 68 % and would give ≈ 13.6); the 50-replicate run is
    ``slow``, and benchmarks/clusters_mass.py checks the same calibration on 50 catalogs with network likelihoods.
    The grid has 41 points (0.05 dex): the integrands are Gaussians of width ≥ 0.1 dex, on which the
    trapezoid rule is accurate to far better than the posterior widths.
    Chains: 32 walkers × 200 steps (τ ≈ 20–26 steps measured for 32 walkers, against ≈ 33 for 16), ≈ 150 steps
    after the 2τ burn-in, so ≈ 190 effective draws: a 2.5 % (16 %) quantile is then itself off by ≈ 1.1 % (2.7 %)
    in probability, far inside the bands (half-widths 15 % and 31 % of 20 replicates). About as many effective
    draws as 16 walkers × 500 steps gave (≈ 210), in 400 rather than 1000 log-probability calls.
    """
    relation = RichnessMassRelation()
    truth = np.array([relation.log_norm, relation.slope, relation.scatter])
    hits68, hits95 = np.zeros(3), np.zeros(3)
    for rep in range(n_rep):
        mass_function, grid, loglike, richness, _ = _catalog(100, seed=100 + rep, grid=np.linspace(13.5, 15.5, 41))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short chains warn about τ; percentiles need far fewer steps
            result = infer_richness_mass(loglike, grid, richness, mass_function=mass_function, n_steps=200,
                                         n_walkers=32, seed=rep, progress=False)
        lo68, hi68, lo95, hi95 = np.percentile(result.samples, [16, 84, 2.5, 97.5], axis=0)
        hits68 += (truth > lo68) & (truth < hi68)
        hits95 += (truth > lo95) & (truth < hi95)
    band68 = 3 * math.sqrt(n_rep * 0.68 * 0.32)
    band95 = 3 * math.sqrt(n_rep * 0.95 * 0.05)
    assert np.all(np.abs(hits68 - n_rep * 0.68) <= band68), hits68
    assert np.all(hits95 >= n_rep * 0.95 - band95), hits95


def test_result_has_names_and_meta():
    mass_function, grid, loglike, richness, _ = _catalog(40, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = infer_richness_mass(loglike, grid, richness, richness_err=0.1 * richness,
                                     mass_function=mass_function, n_steps=100, progress=False)
    assert result.names == ["log_norm", "slope", "scatter"]
    assert result.meta["pivot_log_mass"] == 14.5
    assert len(result.summary()) == 3


@pytest.mark.parametrize("change, message", [
    (dict(richness=np.array([10.0, -1.0])), "richness must be finite and positive"),
    (dict(richness=np.array([10.0])), "one value per cluster"),
    (dict(grid=np.array([13.5, 14.0, 15.5])), "evenly spaced"),
    (dict(log_likelihood=np.full((2, 5), -np.inf)), "-inf everywhere"),
    (dict(richness_err=np.array([1.0, 0.0])), "richness_err"),
    (dict(mass_function="schechter"), "MassFunction"),
])
def test_bad_input(change, message):
    grid = np.linspace(13.5, 15.5, 5)
    arguments = dict(log_likelihood=np.zeros((2, 5)), grid=grid, richness=np.array([10.0, 20.0]), richness_err=None,
                     mass_function=MassFunction())
    arguments.update(change)
    mass_function = arguments.pop("mass_function")
    with pytest.raises((ValueError, TypeError), match=message):
        RichnessMassModel(**arguments, mass_function=mass_function)
