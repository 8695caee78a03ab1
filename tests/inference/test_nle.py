"""NLE on the conjugate Gaussian model with i.i.d. observations: posterior via emcee, sums, support, files, errors.

Model: θ ~ N(0, I₂), x_i | θ ~ N(θ, σ² I), σ = 0.5, n = 10 i.i.d. observations. Per dimension the posterior is
Gaussian with precision 1 + n/σ² = 41 and mean (Σ_i x_i / σ²) / 41, i.e. std 1/√41 ≈ 0.156.
"""
import math
import warnings

import numpy as np
import pytest
import torch

from astrobayes.inference.nle import NLE, Likelihood
from astrobayes.inference.priors import BoxUniform, JointPrior, Normal

SIGMA = 0.5
N_OBS = 10
N_SIMS = 5000
PRECISION = 1.0 + N_OBS / SIGMA**2
POST_STD = 1.0 / math.sqrt(PRECISION)
THETA_TRUE = np.array([0.7, -0.4])
X_OBS = THETA_TRUE + SIGMA * np.random.default_rng(1).normal(size=(N_OBS, 2))
POST_MEAN = X_OBS.sum(axis=0) / SIGMA**2 / PRECISION
# Approximation allowance for the posterior mean, in posterior std: a 0.25 σ bias moves the coverage of the
# 68 % interval by 1.5 % (Φ(0.75) − Φ(−1.25) = 0.668), the same budget as the NPE tests.
APPROX_MEAN = 0.25
# Allowance for the posterior std: 10 % relative (a 10 % too wide/narrow Gaussian changes 68 % coverage by ~5 %).
APPROX_STD = 0.10

OPTIONS = {"nsf": {"n_transforms": 2, "hidden_features": 32},
           "mdn": {"n_components": 1, "hidden": (32, 32)}}
_TRAINED: dict = {}


def simulator(theta, rng):
    return theta + SIGMA * rng.normal(size=theta.shape)


def gaussian_prior():
    return JointPrior([Normal(0.0, 1.0, name="a", unit="km/s"), Normal(0.0, 1.0, name="b")])


def trained(density: str) -> Likelihood:
    """One trained likelihood per density for the whole module (training dominates the runtime)."""
    if density not in _TRAINED:
        nle = NLE(gaussian_prior(), density=density, **OPTIONS[density])
        _TRAINED[density] = nle.simulate_and_train(simulator, N_SIMS, seed=0, epochs=40, progress=False)
    return _TRAINED[density]


@pytest.fixture(scope="module")
def mdn_likelihood():
    return trained("mdn")


@pytest.mark.parametrize("density", ["mdn", "nsf"])
def test_posterior_recovers_conjugate_gaussian(density):
    # 64 walkers × 400 steps: one call per half-ensemble costs about the same for 32 rows as for 16, and 64 walkers
    # mix in fewer steps (τ ≈ 15–20 against ≈ 27 for 32), so ≈ 20 τ and ≥ 1000 effective draws (32 × 1500: ≈ 1700)
    # at a fifth of the cost; the Monte Carlo parts of both tolerances below follow from the measured τ
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the chain is only", RuntimeWarning)  # < 50 τ, knowingly (see above)
        result = trained(density).posterior(X_OBS, n_walkers=64, n_steps=400, seed=0, progress=False)
    assert result.names == ["a", "b"]
    kept = result.chain.shape[1] * (result.chain.shape[0] - result.burn_in)  # walker-steps after burn-in
    tau = result.autocorr_time
    # Monte Carlo standard error of an MCMC mean: std · √(τ / N) with N the post-burn-in walker-steps.
    mc_se = POST_STD * np.sqrt(tau / kept)
    mean_tol = 3 * mc_se + APPROX_MEAN * POST_STD
    np.testing.assert_array_less(np.abs(result.samples.mean(0) - POST_MEAN), mean_tol)
    # Relative standard error of a sample std from N/τ effectively independent Gaussian draws: √(τ / (2N)).
    std_rtol = 3 * np.sqrt(tau / (2 * kept)) + APPROX_STD
    np.testing.assert_array_less(np.abs(result.samples.std(0) / POST_STD - 1), std_rtol)


def test_log_likelihood_is_sum_over_observations(mdn_likelihood):
    theta = np.random.default_rng(3).normal(size=(7, 2))
    total = mdn_likelihood.log_likelihood(X_OBS, theta)
    assert total.shape == (7,) and total.dtype == np.float64
    explicit = np.array([mdn_likelihood.estimator.log_prob(X_OBS, np.repeat(t[None], N_OBS, 0)).sum() for t in theta])
    # float32 network: per-pair log-probs agree to ~1e-6 relative; 10 terms of magnitude ~1 sum to ~1e-5
    np.testing.assert_allclose(total, explicit, rtol=1e-5, atol=1e-4)
    # The learned log-likelihood error ε(θ) = log L_q − log L_true must be nearly flat across the posterior: a
    # slope s shifts a Gaussian posterior's mean by s·σ_post², so the APPROX_MEAN budget allows s < 0.25 / σ_post,
    # i.e. a change of at most 2 · 0.25 = 0.5 nats between θ = mean ± σ_post along each axis.
    def error(points):
        true = -0.5 * (((X_OBS[None] - points[:, None]) / SIGMA) ** 2).sum(-1).sum(1)
        true -= N_OBS * 2 * math.log(SIGMA * math.sqrt(2 * math.pi))
        return mdn_likelihood.log_likelihood(X_OBS, points) - true

    for axis in range(2):
        step = np.eye(2)[axis] * POST_STD
        change = np.diff(error(np.stack([POST_MEAN - step, POST_MEAN + step])))
        assert abs(change[0]) < 2 * APPROX_MEAN
    # torch in → torch out, and memory chunking gives the same numbers
    import astrobayes.inference.nle as nle_module

    as_torch = mdn_likelihood.log_likelihood(X_OBS, torch.as_tensor(theta))
    assert isinstance(as_torch, torch.Tensor)
    old = nle_module.MAX_PAIRS
    try:
        nle_module.MAX_PAIRS = 25  # two θ rows per chunk
        chunked = mdn_likelihood.log_likelihood(X_OBS, theta)
    finally:
        nle_module.MAX_PAIRS = old
    np.testing.assert_allclose(chunked, total, rtol=1e-6)
    # one observation, one parameter set given as 1-D arrays
    single = mdn_likelihood.log_likelihood(X_OBS[0], theta[0])
    np.testing.assert_allclose(single, mdn_likelihood.estimator.log_prob(X_OBS[:1], theta[:1]), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:the chain is only:RuntimeWarning")  # 200 steps: a support check, not a fit
def test_network_not_evaluated_outside_support():
    # box prior: the likelihood must never be asked about θ outside it (it was never trained there)
    prior = BoxUniform([-1.0, -1.0], [1.0, 1.0], names=["a", "b"])
    likelihood = NLE(prior, density="mdn", n_components=1, hidden=(8,)).simulate_and_train(
        simulator, 300, seed=0, epochs=2, progress=False)
    seen = []
    original = likelihood.estimator.log_prob

    def counting(y, x):
        seen.append(np.asarray(x))
        return original(y, x)

    likelihood.estimator.log_prob = counting
    fn = likelihood.log_posterior_fn(X_OBS[:3])
    theta = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.5, float("nan")], [-0.5, 0.9]], dtype=torch.float64)
    values = fn(theta)
    assert values.dtype == torch.float64 and values.shape == (4,)
    assert torch.isinf(values[1]) and torch.isinf(values[2]) and torch.isfinite(values[[0, 3]]).all()
    evaluated = np.concatenate(seen)
    assert len(evaluated) == 2 * 3  # two in-support θ times three observations
    assert (np.abs(evaluated) <= 1.0).all()
    seen.clear()
    assert torch.isinf(fn(theta[1:2])).all() and not seen  # nothing inside: no network call at all
    result = likelihood.posterior(X_OBS[:3], n_steps=200, seed=0, progress=False)
    assert (np.abs(result.chain) <= 1.0).all()
    assert (np.abs(np.concatenate(seen)) <= 1.0).all()
    # an analysis prior wider than the training box is truncated to the box, still without network calls outside
    seen.clear()
    wide = likelihood.log_posterior_fn(X_OBS[:3], prior=JointPrior([Normal(0.0, 3.0), Normal(0.0, 3.0)]))
    values = wide(torch.tensor([[0.2, 0.1], [1.5, 0.0]], dtype=torch.float64))
    assert torch.isfinite(values[0]) and torch.isinf(values[1])
    assert (np.abs(np.concatenate(seen)) <= 1.0).all() and len(np.concatenate(seen)) == 3
    # a narrower analysis prior confines the chain without retraining
    narrow = BoxUniform([0.0, 0.0], [0.5, 0.5], names=["a", "b"])
    result = likelihood.posterior(X_OBS[:3], n_steps=200, seed=0, progress=False, prior=narrow)
    assert ((result.chain >= 0.0) & (result.chain <= 0.5)).all()


def test_scalar_parameter_and_data_conventions():
    prior = JointPrior([Normal(0.0, 1.0, name="mu")])
    likelihood = NLE(prior, density="mdn", n_components=1, hidden=(8,)).simulate_and_train(
        simulator, 300, seed=0, epochs=2, progress=False)
    x = np.array([0.1, 0.4, -0.2])  # dx = 1: three scalar observations
    theta = np.array([0.0, 0.5])  # d = 1: two parameter values
    values = likelihood.log_likelihood(x, theta)
    assert values.shape == (2,)
    np.testing.assert_allclose(values, likelihood.log_likelihood(x[:, None], theta[:, None]), rtol=1e-7)


def test_save_load_round_trip(mdn_likelihood, tmp_path):
    path = tmp_path / "likelihood"
    mdn_likelihood.save(path)
    loaded = Likelihood.load(path)
    assert loaded.prior.names == ["a", "b"] and loaded.prior.units[0].to_string() == "km / s"
    theta = np.random.default_rng(4).normal(size=(5, 2))
    np.testing.assert_array_equal(loaded.log_likelihood(X_OBS, theta), mdn_likelihood.log_likelihood(X_OBS, theta))
    fn_a, fn_b = loaded.log_posterior_fn(X_OBS), mdn_likelihood.log_posterior_fn(X_OBS)
    np.testing.assert_array_equal(fn_a(torch.as_tensor(theta)).numpy(), fn_b(torch.as_tensor(theta)).numpy())
    (tmp_path / "likelihood.likelihood.json").unlink()
    with pytest.raises(FileNotFoundError, match="prior description"):
        Likelihood.load(path)


def test_bad_input(mdn_likelihood):
    theta = np.zeros((2, 2))
    with pytest.raises(ValueError, match="x_obs must have 2 column"):
        mdn_likelihood.log_likelihood(np.zeros((4, 3)), theta)
    with pytest.raises(ValueError, match="theta must have 2 column"):
        mdn_likelihood.log_likelihood(X_OBS, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x_obs"):
        mdn_likelihood.log_likelihood(np.array([[0.0, np.nan]]), theta)
    with pytest.raises(ValueError, match="theta"):
        mdn_likelihood.log_likelihood(X_OBS, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="x_obs"):
        mdn_likelihood.log_posterior_fn(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="prior must be a JointPrior over 2"):
        mdn_likelihood.log_posterior_fn(X_OBS, prior=JointPrior([Normal(0.0, 1.0)]))
    nle = NLE(gaussian_prior(), density="mdn")
    with pytest.raises(ValueError, match="density"):
        NLE(gaussian_prior(), density="gmm")
    with pytest.raises(TypeError, match="prior"):
        NLE(Normal(0.0, 1.0), density="mdn")
    with pytest.raises(RuntimeError, match="no simulations"):
        nle.train()
    with pytest.raises(ValueError, match="theta has 3 rows but x has 2"):
        nle.append_simulations(np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="theta must have 2 columns"):
        nle.append_simulations(np.zeros((3, 1)), np.zeros((3, 2)))
    box = NLE(BoxUniform([0.0], [1.0]), density="mdn")
    with pytest.raises(ValueError, match="outside the prior support"):
        box.append_simulations(np.array([[0.5], [1.5]]), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="n_simulations"):
        nle.simulate_and_train(simulator, 0)
