"""NPE draws reweighted to the exact posterior: conjugate Gaussian model with a deliberately rough network.

Model: θ ~ N(0, I₂), x = θ + N(0, σ² I). For σ = 0.5 the posterior is
N(0.8 x, 0.2 I). The network is a 2-component MDN trained for 3 epochs only,
so its own posterior is off; importance sampling must still recover the exact
moments, within the Monte Carlo error of its effective sample size.
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from astrobayes.inference.npe import NPE
from astrobayes.inference.npe_importance import ImportanceResult, importance_sample
from astrobayes.inference.priors import JointPrior, Normal

SIGMA = 0.5
X_OBS = np.array([1.0, -1.5])


def _prior():
    return JointPrior([Normal(0.0, 1.0, name="a"), Normal(0.0, 1.0, name="b")])


@pytest.fixture(scope="module")
def rough_posterior():
    def simulator(theta, rng):
        return theta + SIGMA * rng.normal(size=theta.shape)

    npe = NPE(_prior(), density="mdn", n_components=2, hidden=(16,))
    return npe.simulate_and_train(simulator, 2000, seed=0, epochs=3, progress=False)


def _log_target(x, sigma):
    prior = _prior()

    def log_target(theta: torch.Tensor) -> torch.Tensor:
        residual = (torch.as_tensor(x, dtype=torch.float64) - theta) / sigma
        return prior.log_prob(theta) - 0.5 * (residual ** 2).sum(-1)

    return log_target


def _exact(x, sigma):
    shrink = 1.0 / (1.0 + sigma ** 2)
    return shrink * np.asarray(x), math.sqrt(sigma ** 2 * shrink)


def test_recovers_the_exact_posterior(rough_posterior):
    result = importance_sample(rough_posterior, X_OBS, _log_target(X_OBS, SIGMA), 4003, seed=1)
    assert isinstance(result, ImportanceResult) and result.rounds == 1
    assert result.ess > 100  # the rough network still covers the posterior (the tolerances below scale with ess)
    mean, std = _exact(X_OBS, SIGMA)
    weights = np.exp(result.log_weights)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    # Monte Carlo error of a self-normalised mean ≈ std/√ess; 4σ
    assert np.all(np.abs(weights @ result.draws - mean) < 4 * std / math.sqrt(result.ess))
    # a q-quantile's error ≈ √(q(1−q)) / (φ(z_q) √ess) std; 4σ
    for q in (0.16, 0.5, 0.84):
        z = stats.norm.ppf(q)
        tolerance = 4 * math.sqrt(q * (1 - q)) / stats.norm.pdf(z) * std / math.sqrt(result.ess)
        assert np.all(np.abs(result.quantile([q])[0] - (mean + z * std)) < tolerance)
    draws = result.resample(3000, seed=0)
    assert draws.shape == (3000, 2) and np.all(np.abs(draws.mean(0) - mean) < 4 * std / math.sqrt(result.ess) + 0.05)


def test_evidence_of_the_conjugate_model(rough_posterior):
    """With a normalised likelihood × prior, the mean weight estimates p(x) = N(x; 0, (1 + σ²) I)."""
    norm = -2 * math.log(SIGMA * math.sqrt(2 * math.pi))

    def log_target(theta):
        return _log_target(X_OBS, SIGMA)(theta) + norm

    result = importance_sample(rough_posterior, X_OBS, log_target, 4000, seed=2)
    exact = stats.multivariate_normal(np.zeros(2), (1 + SIGMA ** 2) * np.eye(2)).logpdf(X_OBS)
    # relative error of a mean of weights ≈ 1/√ess; 4σ
    assert abs(result.log_evidence - exact) < 4 / math.sqrt(result.ess)


def test_narrow_posterior_is_found_by_the_laplace_round(rough_posterior):
    """σ = 0.01: the exact posterior is ~45× narrower than the network's; one round keeps almost nothing."""
    sigma = 0.01
    x = np.array([0.3, -0.2])
    with pytest.warns(UserWarning, match="effective sample size"):
        plain = importance_sample(rough_posterior, x, _log_target(x, sigma), 2000, seed=3, max_rounds=1)
    assert plain.ess < 50
    result = importance_sample(rough_posterior, x, _log_target(x, sigma), 2000, seed=3)
    assert result.rounds >= 2 and result.ess > 500
    mean, std = _exact(x, sigma)
    assert np.all(np.abs(np.exp(result.log_weights) @ result.draws - mean) < 4 * std / math.sqrt(result.ess))


def test_quantiles_ignore_draws_outside_the_support():
    # three equally weighted draws and one of zero weight far away: the 90 % quantile is the top draw
    result = ImportanceResult(np.array([[0.0], [1.0], [2.0], [100.0]]),
                              np.array([-np.log(3.0)] * 3 + [-np.inf]), 3.0, 0.0)
    assert result.quantile([0.9])[0, 0] == pytest.approx(2.0)
    assert result.quantile([0.0])[0, 0] == pytest.approx(0.0)


def test_bad_input(rough_posterior):
    target = _log_target(X_OBS, SIGMA)
    with pytest.raises(ValueError, match="n_proposals"):
        importance_sample(rough_posterior, X_OBS, target, 5)
    with pytest.raises(ValueError, match="defensive"):
        importance_sample(rough_posterior, X_OBS, target, 100, defensive=1.0)
    with pytest.raises(ValueError, match="inflate"):
        importance_sample(rough_posterior, X_OBS, target, 100, inflate=0.5)
    with pytest.raises(ValueError, match="max_rounds"):
        importance_sample(rough_posterior, X_OBS, target, 100, max_rounds=0)
    with pytest.raises(ValueError, match="one observation"):
        importance_sample(rough_posterior, np.zeros((3, 2)), target, 100)
    with pytest.raises(ValueError, match="NaN"):
        importance_sample(rough_posterior, X_OBS, lambda theta: torch.where(theta[:, 0] < 0, torch.nan, 0.0), 100)
    with pytest.raises(ValueError, match="zero posterior density"):
        importance_sample(rough_posterior, X_OBS, lambda theta: torch.full((len(theta),), -math.inf), 100)
