"""Gradient-refined MAP of Posterior.map on the conjugate Gaussian model.

Model (as in test_npe.py): θ ~ N(0, I₂), x = θ + N(0, σ² I), σ = 0.5, so the
posterior is N(0.8 x, 0.2 I): mode 0.8 x, width √0.2 ≈ 0.447 per parameter.
"""
import math

import numpy as np
import pytest
import torch

from astrobayes.inference.npe import NPE, Posterior
from astrobayes.inference.posterior_mode import differentiable_log_prob, refine_mode
from astrobayes.inference.priors import BoxUniform, JointPrior, Normal

SIGMA = 0.5
SHRINK = 1.0 / (1.0 + SIGMA**2)
POST_STD = math.sqrt(SIGMA**2 / (1.0 + SIGMA**2))
N_DRAWS = 100  # the draw-based start; small, so that its error is clearly visible
# Optimisation tolerance, in posterior widths: the refinement's last 10 cosine-decayed Adam steps sum to
# Σ_{j≤10} 0.1 · (1 − cos(π j / 100)) / 2 < 0.01 widths, so once converged it stays within 0.01 of the mode.
OPT_TOL = 0.01


def simulator(theta, rng):
    return theta + SIGMA * rng.normal(size=theta.shape)


def gaussian_prior():
    return JointPrior([Normal(0.0, 1.0, name="a"), Normal(0.0, 1.0, name="b")])


@pytest.fixture(scope="module")
def single_gaussian():
    """A one-component MDN: its mode for each x is exactly the component mean."""
    npe = NPE(gaussian_prior(), density="mdn", n_components=1, hidden=(32, 32))
    return npe.simulate_and_train(simulator, 3000, seed=0, epochs=30, progress=False)


@pytest.fixture(scope="module")
def observations():
    return simulator(gaussian_prior().sample(200, seed=5).numpy(), np.random.default_rng(6))


def test_refined_map_reaches_the_network_mode(single_gaussian, observations):
    x = observations[:20]
    start = single_gaussian.map(x, n_draws=N_DRAWS, seed=1, refine=False)
    refined = single_gaussian.map(x, n_draws=N_DRAWS, seed=1)
    mode = single_gaussian.estimator.components(x).means[:, 0]
    width = np.sqrt(np.diagonal(single_gaussian.estimator.components(x).covariances[:, 0], axis1=1, axis2=2))
    refined_error = np.abs(refined - mode) / width
    start_error = np.abs(start - mode) / width
    # measured: refined ≤ 6e-4 widths, draw-based 0.03–0.23 widths
    assert refined_error.max() < OPT_TOL
    # For a Gaussian q the best of n draws has Mahalanobis r² = min of n χ²₂ ~ Exp(mean 2/n), so
    # P(r < 0.01) = 1 − exp(−n · 0.01² / 2) = 0.5 % per object: the refined point wins for every object
    # (chance that any of 20 draw-based starts is within OPT_TOL: < 10 %, and the refined error is ~20× smaller).
    assert (refined_error.max(1) < start_error.max(1)).all()


def test_refined_map_is_closer_to_the_analytic_mode(single_gaussian, observations):
    start = single_gaussian.map(observations, n_draws=N_DRAWS, seed=2, refine=False)
    refined = single_gaussian.map(observations, n_draws=N_DRAWS, seed=2)
    exact = SHRINK * observations
    start_sq = (((start - exact) / POST_STD) ** 2).sum(1)
    refined_sq = (((refined - exact) / POST_STD) ** 2).sum(1)
    # With b the network's mode bias and e the draw-based error, d_start² − d_refined² = 2 b·e + e², whose mean
    # is E[e²] = 2/n = 0.02 (see above). Its spread per object is ≤ √(0.02² + (2 |b| √(0.01))²) ≤ 0.054 for
    # |b| ≤ 0.25 widths (the approximation allowance of test_npe.py), so the mean over 200 objects has standard
    # error ≤ 0.0038: a gain of 0.02 is > 5 standard errors above zero.
    gain = float(np.mean(start_sq - refined_sq))
    assert gain > 0, f"refinement moved the MAP away from the analytic mode on average (gain {gain:.4f})"


@pytest.mark.parametrize("density, options, epochs", [
    ("mdn", {"n_components": 2, "hidden": (32,)}, 10),
    ("nsf", {"n_transforms": 2, "hidden_features": 16}, 5),
])
def test_refinement_never_lowers_log_q(density, options, epochs, observations):
    # deliberately under-trained estimators: their log q is irregular, the guard must still hold
    posterior = NPE(gaussian_prior(), density=density, **options).simulate_and_train(
        simulator, 1000, seed=3, epochs=epochs, progress=False)
    x = observations[:30]
    start = posterior.map(x, n_draws=N_DRAWS, seed=4, refine=False)
    refined = posterior.map(x, n_draws=N_DRAWS, seed=4, steps=50)
    before, after = posterior.log_prob(start, x), posterior.log_prob(refined, x)
    assert (after >= before).all()
    assert np.mean(after - before) > 0  # and it does climb


def test_refinement_is_clipped_to_the_prior_box(single_gaussian, observations):
    x = observations[7]
    _, means, covariances = single_gaussian.estimator.components(x[None])
    mu, cov = means[0, 0].astype(np.float64), covariances[0, 0].astype(np.float64)
    # a box whose upper bound on θ₀ lies half a width below the network mode: the constrained maximum of a
    # Gaussian is on that face, θ₀ = b, with θ₁ at its conditional mode μ₁ + Σ₁₀ / Σ₀₀ (b − μ₀)
    bound = mu[0] - 0.5 * math.sqrt(cov[0, 0])
    boxed = Posterior(single_gaussian.estimator, BoxUniform([-10.0, -10.0], [bound, 10.0]))
    refined = boxed.map(x, n_draws=N_DRAWS, seed=5)
    assert refined[0] == bound  # clipped exactly onto the face, still inside the support
    assert boxed.prior.support_check(refined[None])[0]
    conditional = mu[1] + cov[1, 0] / cov[0, 0] * (bound - mu[0])
    assert abs(refined[1] - conditional) < OPT_TOL * math.sqrt(cov[1, 1])


def test_differentiable_log_prob_matches_the_public_one(single_gaussian, observations):
    estimator = single_gaussian.estimator
    grads_before = [None if p.grad is None else p.grad.clone() for p in estimator.network.parameters()]
    theta = torch.tensor(SHRINK * observations[:5], dtype=torch.float32, requires_grad=True)
    logq = differentiable_log_prob(estimator, estimator._check_x(observations[:5]), theta)
    np.testing.assert_allclose(logq.detach().numpy(), estimator.log_prob(theta.detach().numpy(), observations[:5]),
                               rtol=1e-6, atol=1e-6)
    (gradient,) = torch.autograd.grad(logq.sum(), theta)
    assert torch.isfinite(gradient).all() and (gradient != 0).any()
    # autograd.grad reaches θ only: the network's .grad buffers (left over from training) are untouched
    for before, parameter in zip(grads_before, estimator.network.parameters()):
        assert (before is None and parameter.grad is None) or torch.equal(before, parameter.grad)


def test_bad_input(single_gaussian, observations):
    x = observations[0]
    with pytest.raises(ValueError, match="steps"):
        single_gaussian.map(x, steps=0)
    with pytest.raises(TypeError, match="refine"):
        single_gaussian.map(x, refine="yes")
    estimator = single_gaussian.estimator
    inputs = estimator._check_x(observations[:2])
    low, high = np.full(2, -np.inf), np.full(2, np.inf)
    with pytest.raises(ValueError, match="shape"):
        refine_mode(estimator, inputs, np.zeros((3, 2)), np.ones((3, 2)), low, high)
    with pytest.raises(ValueError, match="width"):
        refine_mode(estimator, inputs, np.zeros((2, 2)), np.zeros((2, 2)), low, high)
    with pytest.raises(TypeError, match="ConditionalFlow or MixtureDensityNetwork"):
        differentiable_log_prob(object(), inputs, torch.zeros(2, 2))


def test_refined_map_on_set_valued_data():
    # x = a padded set of 2..6 measurements θ + N(0, σ²) with a mask: the refinement runs through the embedding
    try:
        from .set_data import set_valued_posterior
    except ImportError:  # pytest's rootdir-relative import mode
        from set_data import set_valued_posterior

    posterior, values, mask = set_valued_posterior(SIGMA, epochs=5)
    sets = (values[:8], mask[:8])
    start = posterior.map(sets, n_draws=N_DRAWS, seed=0, refine=False)
    refined = posterior.map(sets, n_draws=N_DRAWS, seed=0)
    assert refined.shape == (8, 1) and posterior.map((values[0], mask[0]), seed=0).shape == (1,)
    mode = posterior.estimator.components(sets).means[:, 0]  # one component: the mode is its mean
    width = np.sqrt(posterior.estimator.components(sets).covariances[:, 0, :, 0])
    assert (np.abs(refined - mode) / width).max() < OPT_TOL
    assert (posterior.log_prob(refined, sets) >= posterior.log_prob(start, sets)).all()
