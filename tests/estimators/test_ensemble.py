import math
import numpy as np
import pytest
import torch

import astrobayes
from astrobayes.estimators.ensemble import DeepEnsemble, MCDropout, mixture_log_prob, mixture_moments
from astrobayes.estimators.regression import Regressor

NOISE = 0.1


def gap_data(n=300, seed=0):
    """Training x only in [-1, 1]; y = sin(3x) + N(0, 0.1²) — the same constant noise everywhere."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    return x, np.sin(3 * x) + NOISE * rng.normal(size=x.shape)


INSIDE = np.linspace(-0.9, 0.9, 37)[:, None]
OUTSIDE = np.concatenate([np.linspace(-3, -2, 11), np.linspace(2, 3, 11)])[:, None]

# Why 1.5 is a meaningful threshold (not a tuned one): the true noise is the same
# everywhere and every model in these tests has a *constant* noise term, so a model
# blind to its weight uncertainty would report the same std inside and outside
# (ratio 1, up to the ~4 % error of a noise level estimated from 300 points,
# 1/sqrt(2·300)). A ratio above 1.5 needs an extra (epistemic) spread outside of at
# least sqrt(1.5² − 1) ≈ 1.1 times the whole spread inside, i.e. larger than the noise.
RATIO = 1.5


def spread_ratio(model):
    return float(model.predict(OUTSIDE).std.mean() / model.predict(INSIDE).std.mean())


@pytest.fixture(scope="module")
def ensemble():
    x, y = gap_data()
    model = DeepEnsemble(Regressor(hidden=(32, 32)), n_members=5)
    # 300 epochs at 3e-3: the members converge (the noise level is recovered, see below)
    model.fit(x, y, epochs=300, batch_size=64, learning_rate=3e-3, progress=False, seed=0)
    return model, x, y


@pytest.fixture(scope="module")
def dropout_model():
    x, y = gap_data()
    # Wide layers: MC dropout approximates a Gaussian-process posterior as the width grows
    # (Gal & Ghahramani 2016), which is the regime where its uncertainty claim is made.
    model = MCDropout(Regressor(hidden=(128, 128), dropout=0.1), n_passes=100)
    model.fit(x, y, epochs=300, batch_size=64, progress=False, seed=0)
    return model, x, y


def test_deep_ensemble_spread_is_larger_away_from_the_training_data(ensemble):
    model, _, _ = ensemble
    assert len(model.members) == 5 and len(model.history) == 5
    # different seeds → different members (independent initialisations)
    a, b = (m.predict(OUTSIDE).mean for m in model.members[:2])
    assert not np.allclose(a, b)
    assert spread_ratio(model) > RATIO
    # inside the data the epistemic part is well below the noise level
    parts = model.uncertainty(INSIDE)
    assert parts.epistemic.mean() < 0.5 * NOISE
    assert parts.aleatoric.mean() == pytest.approx(NOISE, rel=0.2)  # residual scale of 270 points: ±4 %, plus fit error


def test_mc_dropout_spread_is_larger_away_from_the_training_data(dropout_model):
    model, _, _ = dropout_model
    assert spread_ratio(model) > RATIO


def test_mixture_maths_matches_the_members(ensemble):
    model, x, y = ensemble
    xs, ys = torch.as_tensor(x[:20], dtype=torch.float32), torch.as_tensor(y[:20], dtype=torch.float32)
    member_lp = torch.stack([m.log_prob(ys, xs) for m in model.members])
    expected = torch.log(member_lp.exp().mean(0))
    assert torch.allclose(model.log_prob(ys, xs), expected, atol=1e-5)
    preds = [m.predict(xs) for m in model.members]
    means, stds = torch.stack([p.mean for p in preds]), torch.stack([p.std for p in preds])
    second_moment = (stds ** 2 + means ** 2).mean(0)
    mean, std = model.predict(xs)
    assert torch.allclose(mean, means.mean(0), atol=1e-6)
    assert torch.allclose(std ** 2, second_moment - means.mean(0) ** 2, atol=1e-5)


def test_ensemble_samples_follow_the_mixture(ensemble):
    model, _, _ = ensemble
    point = np.array([[2.5]])  # outside: members disagree, the mixture is wide and non-Gaussian
    draws = model.sample(8000, point, seed=4)
    assert draws.shape == (1, 8000, 1)
    mean, std = model.predict(point)
    # standard error of the mean of 8000 draws is std/sqrt(8000); 4σ bound
    assert abs(draws.mean() - mean[0, 0]) < 4 * std[0, 0] / math.sqrt(8000)
    # the std of 8000 draws of a (possibly non-Gaussian) mixture: ~ std·sqrt((κ − 1)/(4n)); κ ≤ 5 → 4σ ≈ 0.045
    assert draws.std() / std[0, 0] == pytest.approx(1, abs=0.045)
    assert np.array_equal(draws, model.sample(8000, point, seed=4))


def test_mixture_helpers_on_known_numbers():
    lp = torch.log(torch.tensor([[0.1, 0.5], [0.3, 0.5]]))
    assert torch.allclose(mixture_log_prob(lp).exp(), torch.tensor([0.2, 0.5]))
    mean, std, epistemic = mixture_moments(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [3.0]]))
    assert mean.item() == 1.0 and epistemic.item() == 1.0
    assert std.item() == pytest.approx(math.sqrt((1 + 9) / 2 + 1))


def test_mc_dropout_is_deterministic_and_leaves_the_global_stream_alone(dropout_model):
    model, _, _ = dropout_model
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = model.predict(OUTSIDE)
    after = torch.rand(3)
    assert torch.equal(before, after)
    assert np.array_equal(first.std, model.predict(OUTSIDE).std)
    assert not model.network.training  # dropout layers back in eval mode
    # different seeds → different masks (the passes really are stochastic)
    other = MCDropout(Regressor(hidden=(128, 128), dropout=0.1), n_passes=100, seed=7)
    other._set_model(model.model)
    assert not np.array_equal(first.std, other.predict(OUTSIDE).std)


@pytest.mark.parametrize("which", ["ensemble", "dropout_model"])
def test_save_load_roundtrip_is_identical(which, request, tmp_path):
    model, x, y = request.getfixturevalue(which)
    model.save(tmp_path / "model")
    loaded = astrobayes.load(tmp_path / "model")
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.predict(OUTSIDE).std, model.predict(OUTSIDE).std)
    assert np.array_equal(loaded.log_prob(y[:10], x[:10]), model.log_prob(y[:10], x[:10]))
    assert np.array_equal(loaded.sample(7, INSIDE, seed=2), model.sample(7, INSIDE, seed=2))
    assert repr(loaded) == repr(model)
    histories = loaded.history if isinstance(loaded.history, list) else [loaded.history]
    assert all(h.epochs > 0 for h in histories)
    if which == "ensemble":  # one file, every member's tensors under its own prefix
        from safetensors import safe_open

        with safe_open(str(tmp_path / "model.safetensors"), "pt") as handle:
            prefixes = {name.split(".")[0] for name in handle.keys()}
        assert prefixes == {f"member{i}" for i in range(5)}


def test_bad_input_is_refused(ensemble):
    model, x, y = ensemble
    with pytest.raises(ValueError, match="dropout"):
        MCDropout(Regressor(hidden=(8,)))
    with pytest.raises(ValueError, match="n_members"):
        DeepEnsemble(Regressor(), n_members=0)
    with pytest.raises(ValueError, match="n_passes"):
        MCDropout(Regressor(dropout=0.1), n_passes=0)
    with pytest.raises(TypeError, match="estimator"):
        DeepEnsemble("Regressor")
    with pytest.raises(TypeError, match="ensemble"):
        DeepEnsemble(DeepEnsemble(Regressor()))
    bad = x[:5].copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="x has 1 row"):
        model.predict(bad)
    with pytest.raises(ValueError, match="y"):
        DeepEnsemble(Regressor(hidden=(4,)), n_members=2).fit(x[:20], np.full((20, 1), np.nan), epochs=1,
                                                                  progress=False)
    with pytest.raises(RuntimeError, match="not been fitted"):
        DeepEnsemble(Regressor()).predict(x)


def test_deep_ensemble_of_classifiers_averages_probabilities(tmp_path):
    classifier = pytest.importorskip("astrobayes.estimators.classifier")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 2))
    labels = (rng.uniform(size=1500) < 1 / (1 + np.exp(-3 * x[:, 0]))).astype(int)
    model = DeepEnsemble(classifier.Classifier(hidden=(16,)), n_members=3)
    model.fit(x, labels, epochs=30, learning_rate=1e-2, progress=False, seed=0)
    grid = np.array([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    probs, spread = model.predict(grid)
    members = np.stack([m.predict(grid).mean for m in model.members])
    assert np.allclose(probs, members.mean(0), atol=1e-6) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(spread, np.sqrt(probs * (1 - probs)), atol=1e-6)
    # truth p(1 | x0) = 1/(1 + e^(-3 x0)): 0.047, 0.5, 0.953; 1500 points pin these to a few per cent
    assert np.allclose(probs[:, 1], 1 / (1 + np.exp(-3 * grid[:, 0])), atol=0.08)
    lp = model.log_prob(np.array([1, 1, 1]), grid)
    assert np.allclose(np.exp(lp), probs[:, 1], atol=1e-5)
    draws = model.sample(4000, grid[1:2], seed=0)
    assert draws.shape == (1, 4000)
    # binomial: std of the mean of 4000 labels at p ≈ 0.5 is 0.008; 4σ bound
    assert abs(draws.mean() - probs[1, 1]) < 4 * 0.5 / math.sqrt(4000)
    model.save(tmp_path / "clf")
    loaded = astrobayes.load(tmp_path / "clf")
    assert np.array_equal(loaded.predict(grid).mean, probs)


def test_member_predictions_stack_the_components():
    from astrobayes.estimators import Classifier, DeepEnsemble, MCDropout

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    labels = (x[:, 0] > 0).astype(int)
    ensemble = DeepEnsemble(Classifier(hidden=(8,)), n_members=3)
    ensemble.fit(x, labels, epochs=3, seed=0, progress=False)
    members = ensemble.member_predictions(x[:7])
    assert members.mean.shape == (3, 7, 2)
    np.testing.assert_allclose(members.mean.mean(0), ensemble.predict(x[:7]).mean, atol=1e-6)
    np.testing.assert_allclose(members.mean[1], ensemble.members[1].predict_proba(x[:7]), atol=1e-6)
    dropout = MCDropout(Classifier(hidden=(16,), dropout=0.3), n_passes=5, seed=1)
    dropout.fit(x, labels, epochs=3, seed=0, progress=False)
    passes = dropout.member_predictions(x[:7]).mean
    assert passes.shape == (5, 7, 2)
    np.testing.assert_array_equal(passes, dropout.member_predictions(x[:7]).mean)  # seeded masks: repeatable
    assert np.ptp(passes[:, :, 0], axis=0).max() > 0  # the passes differ
