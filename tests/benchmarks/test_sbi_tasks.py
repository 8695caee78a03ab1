"""Smoke tests of the sbibm task definitions used by benchmarks/sbi_tasks.py (no sbi needed)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import sbi_tasks_reference as tasks


def _moon_polar(x_obs, theta):
    """(r, a) of p = x − g(θ) − (0.25, 0): the simulator's radius and angle that reproduce x_obs from θ."""
    p = x_obs - tasks.two_moons_mean_map(theta) - np.array([0.25, 0.0])
    return np.hypot(p[:, 0], p[:, 1]), np.arctan2(p[:, 1], p[:, 0])


def test_two_moons_reference_reproduces_x_obs():
    _, x_obs = tasks.observations("two_moons", 3)
    for k, obs in enumerate(x_obs):
        draws = tasks.two_moons_reference(obs, 10_000, seed=k)
        assert draws.shape == (10_000, 2)
        assert (np.abs(draws) <= 1).all()  # inside the prior box
        r, a = _moon_polar(obs, draws)
        # every draw must be explained by simulator noise: angle in [-π/2, π/2] (exactly, up to rounding)
        assert (np.abs(a) <= math.pi / 2 + 1e-9).all()
        # and radius r ~ N(0.1, 0.01²): P(|z| > 6) · 10⁴ draws ≈ 2·10⁻⁵, so no draw may lie 6σ out
        assert (np.abs(r - 0.1) < 6 * 0.01).all()


def test_two_moons_reference_radius_distribution():
    # far from the box edges (θ near the origin-symmetric centre) no draw is rejected by the prior, so the
    # accepted radii are exactly N(0.1, 0.01²); a KS test at 10⁴ draws rejects at p < 10⁻³ by chance 0.1 % of runs
    obs = tasks.simulate("two_moons", np.array([[0.3, 0.2]]), np.random.default_rng(5))[0]
    draws = tasks.two_moons_reference(obs, 10_000, seed=0)
    r, _ = _moon_polar(obs, draws)
    assert stats.kstest(r, stats.norm(0.1, 0.01).cdf).pvalue > 1e-3
    # both branches θ₁ + θ₂ ≷ 0 are equally likely here (both lie inside the box):
    # binomial(10⁴, ½) has σ = 50, so a 4σ bound is 200
    assert abs(int((draws.sum(1) > 0).sum()) - 5000) < 200


def test_two_moons_reference_matches_importance_sampling():
    # an independent check of the inversion: the posterior mean from prior draws weighted by the
    # analytic likelihood f_a(a) f_r(r) / r (the polar Jacobian); the tolerance is 5 combined standard errors
    obs = tasks.simulate("two_moons", np.array([[0.3, 0.2]]), np.random.default_rng(5))[0]
    exact = tasks.two_moons_reference(obs, 10_000, seed=1)
    prior_draws = tasks.prior("two_moons").sample(400_000, seed=2).numpy()
    r, a = _moon_polar(obs, prior_draws)
    weights = np.where(np.abs(a) <= math.pi / 2, stats.norm(0.1, 0.01).pdf(r) / r, 0.0)
    weights /= weights.sum()
    mean_is = weights @ prior_draws
    ess = 1.0 / np.sum(weights ** 2)
    se = np.sqrt(exact.var(0) / len(exact) + exact.var(0) / ess)
    assert ess > 500  # enough weight for the standard error formula to mean something
    assert (np.abs(exact.mean(0) - mean_is) < 5 * se).all()


def test_slcp_log_likelihood_matches_scipy():
    rng = np.random.default_rng(0)
    theta = tasks.prior("slcp").sample(20, seed=1).numpy()
    x_obs = tasks.simulate("slcp", theta[:1], rng)[0]
    ours = tasks.slcp_log_likelihood(torch.as_tensor(theta), x_obs).numpy()
    for row, value in zip(theta, ours):
        s1, s2, rho = row[2] ** 2, row[3] ** 2, math.tanh(row[4])
        cov = [[s1 ** 2 + 1e-6, rho * s1 * s2], [rho * s1 * s2, s2 ** 2 + 1e-6]]
        direct = stats.multivariate_normal(row[:2], cov).logpdf(x_obs.reshape(4, 2)).sum()
        # float64 evaluation of the same formula: agreement to rounding (relative 1e-8 is generous)
        assert value == pytest.approx(direct, rel=1e-8, abs=1e-8)


def test_slcp_simulator_moments():
    # 20 000 rows of four draws from one θ: the sample covariance of 80 000 points has relative
    # standard error ≈ sqrt(2 / 80 000) ≈ 0.005 on the variances; 5σ → 0.025
    theta = np.array([[0.5, -1.0, 1.2, -0.8, 0.7]])
    x = tasks.simulate("slcp", np.repeat(theta, 20_000, axis=0), np.random.default_rng(3)).reshape(-1, 2)
    s1, s2, rho = 1.2 ** 2, 0.8 ** 2, math.tanh(0.7)
    cov = np.cov(x.T)
    assert cov[0, 0] == pytest.approx(s1 ** 2, rel=0.025)
    assert cov[1, 1] == pytest.approx(s2 ** 2, rel=0.025)
    # the correlation's standard error is (1 − ρ²) / sqrt(n) = 0.635 / 283 ≈ 0.0022; 5σ ≈ 0.011
    assert cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]) == pytest.approx(rho, abs=0.011)
    # the mean: standard error s / sqrt(80 000); 5σ
    assert np.abs(x.mean(0) - theta[0, :2]).max() < 5 * max(s1, s2) / math.sqrt(len(x))


def test_observations_are_fixed_and_inside_the_prior():
    theta_a, x_a = tasks.observations("slcp", 3)
    _, x_b = tasks.observations("slcp", 3)
    np.testing.assert_array_equal(x_a, x_b)
    assert (np.abs(theta_a) <= 3).all() and x_a.shape == (3, 8)


def test_unknown_task_is_a_value_error():
    with pytest.raises(ValueError, match="task"):
        tasks.prior("gaussian_linear")
    with pytest.raises(ValueError, match="task"):
        tasks.simulate("sir", np.zeros((1, 2)), np.random.default_rng(0))
