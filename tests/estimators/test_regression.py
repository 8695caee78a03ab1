import numpy as np
import pytest
import torch

from astrobayes.core import cuda_available
from astrobayes.estimators.regression import Regressor


def _sigma(x):
    # Smooth and varying sevenfold over the range: what the variant must follow.
    return 0.1 * np.exp(x) + 0.03


@pytest.fixture(scope="module")
def heteroscedastic_fit():
    rng = np.random.default_rng(42)
    x = rng.uniform(-1, 1, (20000, 1))
    y = np.sin(2 * x) + _sigma(x) * rng.normal(size=x.shape)
    reg = Regressor(hidden=(64, 64), heteroscedastic=True)
    reg.fit(x, y, epochs=60, batch_size=512, progress=False, seed=1)
    return reg, x, y


def test_heteroscedastic_regressor_recovers_sigma_within_10_percent(heteroscedastic_fit):
    reg, _, _ = heteroscedastic_fit
    # Interior points (the edges have half the neighbours). A local σ estimated
    # from k points has relative error 1/sqrt(2k); the net pools roughly the
    # ~1000 points within |Δx| < 0.05, i.e. ~2 %, so the 10 % bound
    # is a 5σ statement, not a tuned one.
    grid = np.linspace(-0.9, 0.9, 19)[:, None]
    mean, std = reg.predict(grid)
    relative = np.abs(std / _sigma(grid) - 1)
    assert relative.max() < 0.10, relative.round(3).ravel()
    assert np.abs(mean - np.sin(2 * grid)).max() < 0.1


def test_sampling_matches_predict_and_log_prob_matches_distribution(heteroscedastic_fit):
    reg, x, y = heteroscedastic_fit
    point = np.array([[0.5]])
    draws = reg.sample(4000, point, seed=3)
    assert draws.shape == (1, 4000, 1)
    mean, std = reg.predict(point)
    # Standard error of a mean of 4000 draws: std / sqrt(4000) ~ 0.016 std; 4σ bound.
    assert abs(draws.mean() - mean[0, 0]) < 4 * std[0, 0] / np.sqrt(4000)
    # Standard error of the sample std: std / sqrt(2 * 4000); 4σ bound.
    assert abs(draws.std() / std[0, 0] - 1) < 4 / np.sqrt(8000)
    dist = reg.distribution(torch.as_tensor(x[:5], dtype=torch.float32))
    assert torch.allclose(dist.log_prob(torch.as_tensor(y[:5], dtype=torch.float32)),
                          reg.log_prob(torch.as_tensor(y[:5]), torch.as_tensor(x[:5])), atol=1e-5)


def test_log_prob_broadcasts_one_x_against_many_y(heteroscedastic_fit):
    reg, _, _ = heteroscedastic_fit
    ys = np.linspace(-1, 1, 7)[:, None]
    many = reg.log_prob(ys, np.array([[0.2]]))
    assert many.shape == (7,)
    assert np.allclose(many, [reg.log_prob(v[None], np.array([[0.2]]))[0] for v in ys], atol=1e-6)
    with pytest.raises(ValueError, match="must match"):
        reg.log_prob(ys, np.zeros((3, 1)))


def test_mse_regressor_predicts_the_mean_of_a_bimodal_target():
    # y = ±1 with equal probability, independent of x: the MSE optimum is the
    # conditional mean 0, a value y never takes (the seeds' lesson).
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4000, 1))
    y = rng.choice([-1.0, 1.0], size=(4000, 1)) + 0.05 * rng.normal(size=(4000, 1))
    reg = Regressor(hidden=(16,))
    reg.fit(x, y, epochs=30, progress=False)
    mean, std = reg.predict(np.linspace(-0.8, 0.8, 5)[:, None])
    # Sample-mean noise: 1/sqrt(4000) = 0.016; the fit adds a little; 0.1 is ~6σ.
    assert np.abs(mean).max() < 0.1
    # The residual scale is measured after the fit: ≈ 1 (the ±1 spread).
    assert std[0, 0] == pytest.approx(1.0, abs=0.05)


def test_save_load_roundtrip_is_identical(heteroscedastic_fit, tmp_path):
    import astrobayes

    reg, x, y = heteroscedastic_fit
    reg.save(tmp_path / "het")
    loaded = astrobayes.load(tmp_path / "het")
    assert np.array_equal(loaded.predict(x[:50]).std, reg.predict(x[:50]).std)
    assert np.array_equal(loaded.log_prob(y[:50], x[:50]), reg.log_prob(y[:50], x[:50]))
    assert np.array_equal(loaded.sample(3, x[:4], seed=1), reg.sample(3, x[:4], seed=1))
    assert loaded.history.epochs == reg.history.epochs


def test_bad_input_gets_named_errors():
    reg = Regressor(hidden=(4,))
    with pytest.raises(RuntimeError, match="has not been fitted"):
        reg.predict(np.zeros((2, 1)))
    x, y = np.zeros((20, 2)), np.zeros((20, 1))
    y[[4, 9, 17]] = np.nan
    with pytest.raises(ValueError, match=r"y has 3 row\(s\) with NaN or inf \(indices 4, 9, 17\)"):
        reg.fit(x, y)
    with pytest.raises(ValueError, match="x has 20, y has 19 rows"):
        reg.fit(x, np.zeros((19, 1)))
    with pytest.raises(ValueError, match="x is empty"):
        reg.fit(np.zeros((0, 2)), np.zeros((0, 1)))
    with pytest.raises(ValueError, match="activation"):
        Regressor(activation="swish")
    reg.fit(x, np.zeros((20, 1)), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"per-object shape \(3,\).*\(2,\)"):
        reg.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y has 2 column"):
        reg.log_prob(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        reg.sample(0, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="need an embedding"):
        Regressor().fit(np.zeros((5, 3, 4)), np.zeros((5, 1)))


@pytest.mark.gpu
def test_regressor_trains_on_cuda(tmp_path):
    assert cuda_available()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 3))
    y = x.sum(1, keepdims=True)
    reg = Regressor(hidden=(64,))
    history = reg.fit(x, y, epochs=20, device="cuda", progress=False)
    assert history.device.startswith("cuda") and reg.device.type == "cuda"
    mean, _ = reg.predict(x[:100])
    assert np.abs(mean - y[:100]).mean() < 0.1
    reg.save(tmp_path / "gpu")
    import astrobayes

    assert astrobayes.load(tmp_path / "gpu").device.type == "cpu"
