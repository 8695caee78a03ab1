"""Priors: normalisation, support, sampling, units and argument checks."""
import math

import astropy.units as u
import numpy as np
import pytest
import torch
from scipy import integrate

from astrobayes.inference.priors import BoxUniform, JointPrior, LogUniform, Normal, Uniform


def density(prior):
    return lambda x: float(np.exp(prior.log_prob(x)))


@pytest.mark.parametrize("prior, lo, hi", [
    (Uniform(-1.0, 3.0), -5.0, 5.0),
    (LogUniform(0.01, 100.0), 0.001, 200.0),
    (Normal(2.0, 0.5), -np.inf, np.inf),
])
def test_one_dimensional_priors_integrate_to_one(prior, lo, hi):
    # quad's own error estimate is < 1e-8 for these smooth pieces (break points at the bounds),
    # so 1e-6 leaves room only for a wrong normalisation constant, not for quadrature error
    points = None if not np.isfinite(lo) else [prior.low, prior.high]
    total, error = integrate.quad(density(prior), lo, hi, points=points, limit=200)
    assert error < 1e-8
    assert total == pytest.approx(1.0, abs=1e-6)


def test_log_prob_is_minus_inf_outside_support_never_nan():
    prior = JointPrior([Uniform(0, 1, name="a"), LogUniform(1, 10, name="b"), Normal(0, 1, name="c")])
    theta = np.array([[0.5, 2.0, 0.0],      # inside
                      [-0.1, 2.0, 0.0],     # a below
                      [0.5, 10.5, 0.0],     # b above
                      [0.5, 0.0, 0.0],      # b at zero: log would be -inf/NaN without the support check
                      [np.nan, 2.0, 0.0],   # NaN is not in any support
                      [0.5, 2.0, np.inf]])  # Normal at infinity
    log_p = prior.log_prob(theta)
    assert isinstance(log_p, np.ndarray) and log_p.shape == (6,)
    assert np.isfinite(log_p[0])
    assert np.all(log_p[1:] == -np.inf)
    assert prior.support_check(theta).tolist() == [True, False, False, False, False, False]
    torch_log_p = prior.log_prob(torch.as_tensor(theta))
    assert isinstance(torch_log_p, torch.Tensor) and not torch.isnan(torch_log_p).any()


def test_joint_log_prob_is_sum_of_components_and_keeps_float32():
    a, b = Uniform(0, 4, name="a"), Normal(1, 2, name="b")
    prior = JointPrior([a, b])
    theta = torch.tensor([[1.0, 0.0], [3.0, 2.5]], dtype=torch.float32)
    expected = a.log_prob(theta[:, 0]) + b.log_prob(theta[:, 1])
    got = prior.log_prob(theta)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    assert float(got[0]) == pytest.approx(-math.log(4) - math.log(2) - 0.5 * math.log(2 * math.pi) - 0.125, rel=1e-6)


def test_joint_prior_is_a_torch_distribution_with_names_units_and_bounds():
    prior = JointPrior([LogUniform(1e13, 1e15, name="M200", unit="solMass"), Normal(5, 1), Uniform(0, 1, unit="kpc")])
    assert isinstance(prior, torch.distributions.Distribution)
    assert prior.event_shape == torch.Size([3]) and prior.ndim == 3
    assert prior.names == ["M200", "theta_1", "theta_2"]
    assert prior.units == [u.solMass, u.dimensionless_unscaled, u.kpc]
    np.testing.assert_array_equal(prior.low, [1e13, -np.inf, 0.0])
    np.testing.assert_array_equal(prior.high, [1e15, np.inf, 1.0])
    assert prior.labels() == ["M200 [solMass]", "theta_1", "theta_2 [kpc]"]
    assert prior.sample((7,)).shape == (7, 3) and prior.sample(7).shape == (7, 3)
    assert prior.sample((2, 5)).shape == (2, 5, 3)
    assert JointPrior([prior, Normal(0, 1, name="extra")]).names[-1] == "extra"


def test_samples_are_inside_support_and_seeded():
    prior = BoxUniform([-1.0, 10.0], [1.0, 20.0])
    draws = prior.sample(5000, seed=3)
    assert bool(prior.support_check(draws).all())
    torch.testing.assert_close(draws, prior.sample(5000, seed=3))
    assert not torch.equal(draws, prior.sample(5000, seed=4))
    # each coordinate uniform: mean within 4 standard errors (width / sqrt(12 n))
    se = torch.tensor([2.0, 10.0]) / math.sqrt(12 * 5000)
    assert (draws.mean(0).float() - torch.tensor([0.0, 15.0])).abs().max() < 4 * se.max()


def test_normal_samples_match_mean_and_std():
    draws = Normal(3.0, 0.2).sample(4000, seed=0).numpy()
    # 4σ bounds: SE(mean) = σ/√n = 0.0032, SE(std) ≈ σ/√(2n) = 0.0022
    assert abs(draws.mean() - 3.0) < 4 * 0.2 / math.sqrt(4000)
    assert abs(draws.std(ddof=1) - 0.2) < 4 * 0.2 / math.sqrt(2 * 4000)


def test_log_uniform_density_is_proportional_to_one_over_theta():
    prior = LogUniform(1.0, 1e4)
    x = np.array([1.0, 3.0, 100.0, 9000.0])
    np.testing.assert_allclose(prior.log_prob(x) + np.log(x), -np.log(np.log(1e4)), rtol=1e-12)
    draws = prior.sample(4000, seed=1).numpy()
    # one decade in four each: binomial fraction 1/4, 4σ = 4 sqrt(0.25 * 0.75 / 4000) = 0.027
    for decade in range(4):
        fraction = np.mean((draws >= 10.0**decade) & (draws < 10.0 ** (decade + 1)))
        assert abs(fraction - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 4000)


def test_quantity_bounds_are_converted_and_recorded():
    prior = Uniform(1 * u.kpc, 3000 * u.pc, name="radius")
    assert prior.unit == u.kpc and (prior.low, prior.high) == (1.0, 3.0)
    in_pc = Uniform(1 * u.kpc, 3000 * u.pc, unit="pc")
    assert (in_pc.low, in_pc.high) == pytest.approx((1000.0, 3000.0))
    assert float(prior.log_prob(2500 * u.pc)) == pytest.approx(-math.log(2.0))
    normal = Normal(1 * u.km / u.s, 100 * u.m / u.s)
    assert normal.unit == u.km / u.s and normal.scale == pytest.approx(0.1)
    box = BoxUniform([0, 1] * u.Msun, [2, 3] * u.Msun, names=["m1", "m2"])
    assert box.units == [u.Msun, u.Msun]
    with pytest.raises(ValueError, match="high has unit s"):
        Uniform(1 * u.kpc, 3 * u.s)
    with pytest.raises(TypeError, match="theta is an astropy Quantity"):
        box.log_prob([[1.0, 2.0]] * u.Msun)


@pytest.mark.parametrize("make, error, match", [
    (lambda: Uniform(1.0, 1.0), ValueError, "low must be smaller than high"),
    (lambda: Uniform(2.0, 1.0), ValueError, "low must be smaller than high"),
    (lambda: Uniform(np.nan, 1.0), ValueError, "low must be finite"),
    (lambda: Uniform("a", 1.0), TypeError, "low must be a number"),
    (lambda: Uniform([0.0, 1.0], 2.0), TypeError, "low must be a single number"),
    (lambda: LogUniform(0.0, 1.0), ValueError, "low must be positive"),
    (lambda: LogUniform(-1.0, 1.0), ValueError, "low must be positive"),
    (lambda: Normal(0.0, 0.0), ValueError, "std must be positive"),
    (lambda: Normal(0.0, -1.0), ValueError, "std must be positive"),
    (lambda: Normal(0.0, 1.0, unit="parsnips"), ValueError, "unit is not a unit"),
    (lambda: JointPrior([Uniform(0, 1, name="z"), Normal(0, 1, name="z")]), ValueError, "priors: duplicate .*'z'"),
    (lambda: JointPrior([]), ValueError, "priors is empty"),
    (lambda: JointPrior([Uniform(0, 1), 3.0]), TypeError, r"priors\[1\]"),
    (lambda: JointPrior(Uniform(0, 1)), TypeError, "priors must be a list"),
    (lambda: BoxUniform([0, 0], [1, 1], names=["a", "a"]), ValueError, "names has duplicate"),
    (lambda: BoxUniform([0, 0], [1, 1, 1]), ValueError, "low has 2 entries but high has 3"),
    (lambda: BoxUniform([0, 0], [1, 1], names=["a"]), ValueError, "names must be a list of 2"),
    (lambda: BoxUniform([0, 0], [1, 1]).log_prob(np.zeros((4, 3))), ValueError, r"theta must have shape \(\.\.\., 2\)"),
])
def test_bad_arguments_raise_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()
