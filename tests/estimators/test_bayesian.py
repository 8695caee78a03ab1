import math

import numpy as np
import pytest
import torch

import astrobayes
from astrobayes.estimators.bayesian import _INITIAL_STD_FRACTION, FlatMLP, VariationalBNN

NOISE = 0.1
INSIDE = np.linspace(-0.9, 0.9, 37)[:, None]
OUTSIDE = np.concatenate([np.linspace(-3, -2, 11), np.linspace(2, 3, 11)])[:, None]


def gap_data(n=300, seed=0):
    """Training x only in [-1, 1]; y = sin(3x) + N(0, 0.1²) — the same constant noise everywhere."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    return x, np.sin(3 * x) + NOISE * rng.normal(size=x.shape)


@pytest.fixture(scope="module")
def variational():
    x, y = gap_data()
    # a learned constant noise σ, so that any growth of the spread is weight uncertainty
    model = VariationalBNN(hidden=(64, 64), heteroscedastic=False, n_samples=100)
    model.fit(x, y, epochs=500, batch_size=64, learning_rate=3e-3, patience=None, progress=False, seed=0)
    return model, x, y


def test_variational_bnn_spread_is_larger_away_from_the_training_data(variational):
    model, _, _ = variational
    # Same criterion as for the ensembles (tests/estimators/test_ensemble.py): the true
    # noise is constant and so is the model's noise term, so a model without weight
    # uncertainty gives a ratio of 1; > 1.5 needs an epistemic spread outside larger
    # than the whole spread inside.
    ratio = model.predict(OUTSIDE).std.mean() / model.predict(INSIDE).std.mean()
    assert ratio > 1.5
    # the weight (epistemic) part is what grows; the noise part is constant by construction
    inside, outside = model.uncertainty(INSIDE), model.uncertainty(OUTSIDE)
    assert np.allclose(inside.aleatoric, outside.aleatoric.mean())
    assert outside.epistemic.mean() > 2 * inside.epistemic.mean()


def test_predictions_are_deterministic_for_a_fixed_seed(variational):
    model, x, y = variational
    assert np.array_equal(model.predict(OUTSIDE).std, model.predict(OUTSIDE).std)
    assert np.array_equal(model.log_prob(y[:9], x[:9]), model.log_prob(y[:9], x[:9]))
    fresh = VariationalBNN(hidden=(64, 64), heteroscedastic=False, seed=None)
    fresh.dims, fresh.network = model.dims, model.network
    assert not np.array_equal(fresh.predict(OUTSIDE).std, fresh.predict(OUTSIDE).std)


def test_interval_is_the_mixture_quantile(variational):
    model, _, _ = variational
    point = np.array([[2.5]])
    lower, upper = model.interval(point, level=0.9)
    draws = model.sample(40000, point, seed=1)[0, :, 0]
    # fraction of 40000 mixture draws below the 5 % quantile: binomial sd sqrt(0.05·0.95/40000) = 0.0011; 4σ
    assert abs((draws < lower[0, 0]).mean() - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 40000)
    assert abs((draws > upper[0, 0]).mean() - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 40000)
    mean, std = model.predict(point)
    assert abs(draws.mean() - mean[0, 0]) < 4 * std[0, 0] / math.sqrt(40000)


def test_kl_term_matches_torch_distributions(variational):
    model, _, _ = variational
    net = model.network
    q = torch.distributions.Normal(net.weight_mean, net.weight_std())
    p = torch.distributions.Normal(torch.zeros_like(net.prior_scale), net.prior_scale)
    assert net.kl().item() == pytest.approx(torch.distributions.kl_divergence(q, p).sum().item(), rel=1e-4)
    # The KL term pulls unconstrained weights from their initial std (5 % of the prior's)
    # towards the prior; with the wrong sign or weight it would not: a mechanism check.
    assert (net.weight_std() / net.prior_scale).max() > 2 * _INITIAL_STD_FRACTION


def test_flat_mlp_equals_the_layered_network():
    torch.manual_seed(0)
    layers = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    flat = torch.cat([p.detach().flatten() for p in layers.parameters()])
    mlp = FlatMLP(3, (5,), 2, activation="tanh")
    assert mlp.n_params == flat.numel()
    x = torch.randn(7, 3)
    out = mlp(torch.stack([flat, 2 * flat]), x)
    assert out.shape == (2, 7, 2)
    assert torch.allclose(out[0], layers(x), atol=1e-6)


def test_heteroscedastic_variant_save_load_roundtrip(tmp_path):
    x, y = gap_data(200, seed=3)
    model = VariationalBNN(hidden=(16,), n_samples=20)
    model.fit(x, y, epochs=5, progress=False, validation_fraction=0.0)  # no validation: NaN-free header
    model.save(tmp_path / "vbnn")
    loaded = astrobayes.load(tmp_path / "vbnn")
    assert np.array_equal(loaded.predict(OUTSIDE).mean, model.predict(OUTSIDE).mean)
    assert np.array_equal(loaded.sample(3, INSIDE, seed=5), model.sample(3, INSIDE, seed=5))
    assert np.array_equal(loaded.interval(INSIDE)[1], model.interval(INSIDE)[1])
    assert loaded.history.epochs == 5


def test_save_load_roundtrip_is_identical(variational, tmp_path):
    model, x, y = variational
    model.save(tmp_path / "vbnn")
    loaded = astrobayes.load(tmp_path / "vbnn")
    assert repr(loaded) == repr(model)
    assert np.array_equal(loaded.predict(OUTSIDE).std, model.predict(OUTSIDE).std)
    assert np.array_equal(loaded.log_prob(y[:9], x[:9]), model.log_prob(y[:9], x[:9]))
    assert np.array_equal(loaded.sample(4, INSIDE, seed=2), model.sample(4, INSIDE, seed=2))


def test_bad_input_is_refused(variational):
    model, x, y = variational
    with pytest.raises(ValueError, match="prior_std"):
        VariationalBNN(prior_std=0.0)
    with pytest.raises(ValueError, match="n_samples"):
        VariationalBNN(n_samples=0)
    with pytest.raises(ValueError, match="activation"):
        VariationalBNN(activation="sigmoidal")
    with pytest.raises(ValueError, match="level"):
        model.interval(INSIDE, level=1.5)
    bad = y[:20].copy()
    bad[3] = np.inf
    with pytest.raises(ValueError, match="y has 1 row"):
        VariationalBNN(hidden=(4,)).fit(x[:20], bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="column"):
        model.log_prob(np.zeros((3, 2)), x[:3])
