"""MixtureDensityNetwork: accuracy on a known bimodal p(y | x), consistency, files, bad input."""
import numpy as np
import pytest
import torch

import astrobayes
from astrobayes.estimators.mdn import MixtureDensityNetwork

try:  # tests/estimators as a package or as a plain directory on sys.path
    from . import bimodal
except ImportError:
    import bimodal

# Recipe shared with test_flows.py: 20 000 training pairs (10 % of them for
# validation), batch 512, cosine learning-rate schedule, best weights restored.
N_TRAIN, N_HELD_OUT = 20_000, 20_000
RECIPE = {"batch_size": 512, "learning_rate": 3e-3, "scheduler": "cosine", "patience": None, "seed": 0, "progress": False}


def held_out_scores(model, dim, n_train=N_TRAIN, **fit_options):
    """Fit on the bimodal problem; return (NLL − H, its SE, paired gap, its SE) on held-out pairs."""
    x, y = bimodal.sample(n_train, np.random.default_rng(1), dim)
    model.fit(x, y, **{**RECIPE, **fit_options})
    x_test, y_test = bimodal.sample(N_HELD_OUT, np.random.default_rng(2), dim)
    log_q = model.log_prob(y_test, x_test)
    log_p = bimodal.log_prob(y_test, x_test)
    n = len(log_q)
    excess = -log_q.mean() - bimodal.conditional_entropy(dim)
    gap = log_p - log_q  # per-pair log p/q: its mean estimates KL(p || q) ≥ 0
    return excess, log_q.std(ddof=1) / np.sqrt(n), gap.mean(), gap.std(ddof=1) / np.sqrt(n)


def assert_fits_bimodal(scores):
    """The acceptance criterion: held-out NLL and paired gap within 0.05 nats of the truth."""
    excess, excess_se, gap, gap_se = scores
    # With 20 000 held-out pairs the standard error of the mean NLL is ~0.007
    # nats (2-D; 0.005 for 1-D) and that of the paired gap ~0.001: the 0.05-nat
    # criterion is then resolved at > 5σ, which this assertion makes sure of.
    assert excess_se < 0.01 and gap_se < 0.01
    assert excess < 0.05, f"held-out NLL exceeds the true conditional entropy by {excess:.4f} ± {excess_se:.4f}"
    assert gap < 0.05, f"paired KL estimate {gap:.4f} ± {gap_se:.4f} nats"
    # A KL divergence is never negative: a gap below −4σ means q is not a
    # normalised density (e.g. a forgotten Jacobian), not a good fit.
    assert gap > -4 * gap_se


# ---------------------------------------------------------------------- the reference problem
def test_bimodal_reference_is_consistent():
    """Quadrature entropy, Monte Carlo entropy and the normalisation of the exact density agree."""
    for dim in (1, 2):
        exact = bimodal.conditional_entropy(dim)
        estimate, se = bimodal.monte_carlo_entropy(400_000, np.random.default_rng(5), dim)
        assert abs(estimate - exact) < 4 * se  # 4σ of a 400 000-draw mean (se ≈ 0.0015)
    # ∫ p(y | x) dy = 1 on a grid: the trapezoid error on ±(d + 12σ) is < 1e-8.
    t = np.linspace(-6, 6, 6001)
    for x0 in (-0.9, 0.0, 0.7):
        density = np.exp(bimodal.log_prob(t[:, None], np.full((t.size, 1), x0)))
        assert abs(np.trapezoid(density, t) - 1) < 1e-6
        # truly bimodal: the density at the midpoint is far below the peaks
        centre = 0.5 * x0
        assert density[np.argmin(abs(t - centre))] < 0.2 * density.max()


# ---------------------------------------------------------------------- accuracy (acceptance)
@pytest.mark.parametrize("dim", [2, 1])
def test_mdn_fits_bimodal_density(dim):
    model = MixtureDensityNetwork(n_components=5, hidden=(64, 64))
    assert_fits_bimodal(held_out_scores(model, dim, epochs=30))


# ---------------------------------------------------------------------- a small fitted model
@pytest.fixture(scope="module")
def fitted():
    x, y = bimodal.sample(2000, np.random.default_rng(0), 2)
    model = MixtureDensityNetwork(n_components=3, hidden=(32, 32))
    model.fit(x, y, epochs=5, progress=False)
    return model, x[:50], y[:50]


def test_components_distribution_and_log_prob_agree(fitted):
    model, x, y = fitted
    weights, means, covariances = model.components(x)
    assert weights.shape == (50, 3) and means.shape == (50, 3, 2) and covariances.shape == (50, 3, 2, 2)
    np.testing.assert_allclose(weights.sum(1), 1, atol=1e-6)
    assert (np.linalg.eigvalsh(covariances) > 0).all()
    # mixture density by hand from the components
    by_hand = np.log(sum(
        weights[:, k] * np.exp([_gaussian_log_pdf(y[i], means[i, k], covariances[i, k]) for i in range(50)])
        for k in range(3)))
    np.testing.assert_allclose(model.log_prob(y, x), by_hand, rtol=1e-4, atol=1e-4)
    dist = model.distribution(torch.as_tensor(x, dtype=torch.float32))
    assert isinstance(dist, torch.distributions.Distribution) and dist.batch_shape == (50,)
    np.testing.assert_allclose(dist.log_prob(torch.as_tensor(y, dtype=torch.float32)).numpy(), by_hand,
                               rtol=1e-4, atol=1e-4)
    # torch in → torch out
    assert isinstance(model.log_prob(torch.as_tensor(y), torch.as_tensor(x)), torch.Tensor)


def _gaussian_log_pdf(y, mean, cov):
    residual = y - mean
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (residual @ np.linalg.solve(cov, residual) + logdet + len(y) * np.log(2 * np.pi))


def test_predict_is_the_mixture_mean_and_std_and_matches_samples(fitted):
    model, x, _ = fitted
    weights, means, covariances = model.components(x[:3])
    mean, std = model.predict(x[:3])
    expected_mean = (weights[..., None] * means).sum(1)
    second = (weights[..., None] * (np.diagonal(covariances, axis1=2, axis2=3) + means**2)).sum(1)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, np.sqrt(second - expected_mean**2), rtol=1e-3)
    draws = model.sample(40_000, x[:3], seed=3)
    assert draws.shape == (3, 40_000, 2)
    # 5σ bound on the mean of 40 000 draws: |Δ| < 5 std / √40 000 = std / 40
    assert (abs(draws.mean(1) - mean) < 5 * std / np.sqrt(40_000)).all()
    # the sample std of 40 000 draws has relative error ≲ √(κ/4n) < 1 % for these
    # light-tailed mixtures; 5 % is > 5σ
    np.testing.assert_allclose(draws.std(1), std, rtol=0.05)


def test_sample_shape_seed_and_broadcast(fitted):
    model, x, y = fitted
    assert model.sample(7, x[:4], seed=1).shape == (4, 7, 2)
    np.testing.assert_array_equal(model.sample(7, x[:4], seed=1), model.sample(7, x[:4], seed=1))
    assert not np.array_equal(model.sample(7, x[:4], seed=1), model.sample(7, x[:4], seed=2))
    # one x row against many y rows
    np.testing.assert_allclose(model.log_prob(y[:5], x[:1]), model.log_prob(y[:5], np.repeat(x[:1], 5, 0)),
                               rtol=1e-6)


def test_save_load_roundtrip(fitted, tmp_path):
    model, x, y = fitted
    model.save(tmp_path / "mdn")
    loaded = astrobayes.load(tmp_path / "mdn")
    assert isinstance(loaded, MixtureDensityNetwork) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.log_prob(y, x), model.log_prob(y, x))
    np.testing.assert_array_equal(loaded.sample(20, x, seed=4), model.sample(20, x, seed=4))
    for a, b in zip(loaded.components(x), model.components(x)):
        np.testing.assert_array_equal(a, b)
    assert MixtureDensityNetwork.load(tmp_path / "mdn").n_components == 3


def test_raw_units():
    """Predictions come back in the units of y, far from the standardised ones."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (4000, 1))
    y = 1000 + 50 * x + 20 * rng.normal(size=x.shape)  # std(y) ≈ 36: a units bug is off by ~36×
    model = MixtureDensityNetwork(n_components=2, hidden=(32,))
    model.fit(x, y, epochs=20, learning_rate=3e-3, progress=False)
    mean, std = model.predict(np.array([[-0.5], [0.5]]))
    # statistical errors of the fitted mean and width from 3600 points are
    # ~20/√3600 ≈ 0.3 and ~20/√7200 ≈ 0.25: 3 and 2 are > 5σ (plus fit error)
    np.testing.assert_allclose(mean[:, 0], [975, 1025], atol=3)
    np.testing.assert_allclose(std[:, 0], [20, 20], atol=2)


def test_one_dimensional_y_normalises():
    x, y = bimodal.sample(2000, np.random.default_rng(0), 1)
    model = MixtureDensityNetwork(n_components=2, hidden=(16,))
    model.fit(x, y[:, 0], epochs=3, progress=False)  # a flat (n,) y is one column
    assert model.sample(5, x[:2]).shape == (2, 5, 1)
    # ∫ q(y | x) dy = 1: a Gaussian mixture on a 12 001-point grid spanning > 10σ
    # beyond every component has trapezoid + truncation error < 1e-6.
    t = np.linspace(-15, 15, 12_001)
    density = np.exp(model.log_prob(t, np.full((t.size, 1), 0.3)))
    assert abs(np.trapezoid(density, t) - 1) < 1e-4


def test_bad_input(fitted):
    model, x, y = fitted
    bad_y = y.copy()
    bad_y[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"y has 2 row\(s\) with NaN"):
        MixtureDensityNetwork(hidden=(4,)).fit(x, bad_y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="y has 3 column"):
        model.log_prob(np.zeros((5, 3)), x[:5])
    with pytest.raises(ValueError, match="x has per-object shape"):
        model.log_prob(y[:5], np.zeros((5, 2)))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(0, x)
    with pytest.raises(ValueError, match="n_components"):
        MixtureDensityNetwork(n_components=0)
    with pytest.raises(ValueError, match="activation"):
        MixtureDensityNetwork(activation="sigmoidal")
    with pytest.raises(RuntimeError, match="not been fitted"):
        MixtureDensityNetwork().log_prob(y, x)
