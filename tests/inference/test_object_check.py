"""HierarchicalModel.object_check: the per-object posterior predictive check of issue 22.

Latents z_i ~ N(μ, 1) seen through y = z + N(0, 0.02²): with α fixed at the
truth the check's p-value is the two-sided tail of z_i, uniform for objects
from the population; the tolerance is the binomial 3σ band.
"""
import numpy as np
import pytest
import torch

from astrobayes.inference import DeltaMap, HierarchicalModel
from astrobayes.inference.priors import JointPrior, Normal, Uniform

NOISE = 0.02


def _model(y):
    return HierarchicalModel(
        JointPrior([Normal(0.0, 2.0, name="mu")]),
        population=lambda lat, hyp: torch.distributions.Normal(hyp["mu"], 1.0).log_prob(lat["z"]),
        measurement=lambda d, pred, hyp: torch.distributions.Normal(pred["f"], NOISE).log_prob(d["y"]),
        data={"y": y}, proposal=JointPrior([Uniform(-10.0, 10.0, name="z")]),
        delta_maps=DeltaMap(lambda z: z, inputs=["z"], outputs=["f"]), n_draws=256, seed=0)


def test_objects_from_the_population_are_flagged_at_the_nominal_rate_and_outliers_always():
    rng = np.random.default_rng(0)
    n, n_out = 600, 12
    y = np.r_[rng.normal(0.0, 1.0, n) + NOISE * rng.normal(size=n), 6.0 + rng.uniform(0, 2, n_out)]
    check = _model(y).object_check(np.zeros((20, 1)), alpha=0.05, seed=1)
    flagged = np.asarray(check["flagged"])
    band = 3 * np.sqrt(0.05 * 0.95 / n)
    assert abs(flagged[:n].mean() - 0.05) <= band, flagged[:n].mean()
    assert flagged[n:].all()
    # the p-value is the two-sided normal tail of the object's latent (up to the Monte Carlo of 8192 draws)
    from scipy.stats import norm

    exact = 2 * norm.sf(np.abs(y[:n]))
    assert np.max(np.abs(np.asarray(check["p_value"])[:n] - exact)) < 0.05
    assert check.meta["min_population_ess"] > 1000


def test_bad_arguments_are_named():
    model = _model(np.zeros(5))
    with pytest.raises(ValueError, match="alpha must be"):
        model.object_check(np.zeros((3, 1)), alpha=1.5)
    with pytest.raises(ValueError, match="n_population must be"):
        model.object_check(np.zeros((3, 1)), n_population=10)
    with pytest.raises(ValueError, match=r"alphas must have shape \(S, 1\).*got \(3, 2\)"):
        model.object_check(np.zeros((3, 2)))
    for alphas, match in ((0.0, "alphas must have 1 or 2 dimension"), (np.empty((0, 1)), "alphas is empty"),
                          ([[0.0], [np.nan]], r"alphas has 1 row\(s\) with NaN or inf \(indices 1\)"),
                          ([["a"]], "alphas must be numeric"), (np.zeros(3), r"alphas must have shape \(S, 1\)")):
        with pytest.raises((TypeError, ValueError), match=match):
            model.object_check(alphas)
    for seed in (None, "a", 1.7):
        with pytest.raises(ValueError, match="seed must be an integer"):
            model.object_check(np.zeros((3, 1)), seed=seed)
    # 10⁹ population draws × 3 α: ~180 GiB, refused before a byte is allocated (it was killed for memory)
    with pytest.raises(ValueError, match="n_population = 1,000,000,000 with 3 hyperparameter draw.*GiB"):
        model.object_check(np.zeros((3, 1)), n_population=10**9)
    # numpy scalars are numbers too
    check = model.object_check(np.zeros((3, 1)), alpha=np.float32(0.05), n_population=np.int64(4096))
    assert check.meta["alpha"] == pytest.approx(0.05) and len(check) == 5
