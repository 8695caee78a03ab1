"""Tests of the calibration diagnostics on a conjugate Gaussian problem with a known posterior.

θ ~ N(0, 1), x | θ ~ N(θ, σ²) per parameter, so the exact posterior is
N(x / (1 + σ²), σ² / (1 + σ²)). Each diagnostic must pass the exact posterior
and fail a deliberately wrong one, so that none of them can pass blindly.
"""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from astrobayes.inference.diagnostics import (
    c2st,
    expected_coverage,
    plot_coverage,
    plot_ppc,
    plot_sbc_ranks,
    plot_tarp,
    posterior_predictive_check,
    sbc_ranks,
    sbc_uniformity,
    tarp,
    tarp_distance,
)

matplotlib.use("Agg")  # plots are drawn off-screen

N_SIMS, N_DRAWS, SIGMA = 1000, 99, 1.0
POSTERIOR_SD = np.sqrt(SIGMA**2 / (1 + SIGMA**2))


def conjugate(seed: int, n_sims: int = N_SIMS, n_draws: int = N_DRAWS, dim: int = 2,
              width: float = 1.0, bias: float = 0.0):
    """True θ (n, d) and posterior draws (n, L, d); ``width`` scales the posterior std, ``bias`` shifts it (in stds)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n_sims, dim))
    x = theta + SIGMA * rng.normal(size=(n_sims, dim))
    mean = x / (1 + SIGMA**2) + bias * POSTERIOR_SD
    draws = mean[:, None, :] + width * POSTERIOR_SD * rng.normal(size=(n_sims, n_draws, dim))
    return theta, draws


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------- SBC
def test_sbc_ranks_count_draws_below_truth():
    theta = np.array([[0.0, 1.0]])
    draws = np.array([[[-1.0, 0.5], [0.5, 2.0], [-2.0, 3.0]]])
    assert sbc_ranks(theta, draws).tolist() == [[2, 1]]
    # 1-D input means a single parameter.
    assert sbc_ranks([0.0, 5.0], [[-1.0, 1.0], [1.0, 2.0]]).tolist() == [[1], [2]]


def test_sbc_ranks_break_ties_uniformly():
    # Every draw equals θ: the rank must be uniform on 0..L, not always 0.
    theta = np.zeros((2000, 1))
    ranks = sbc_ranks(theta, np.zeros((2000, 9, 1)), seed=3)
    assert ranks.min() == 0 and ranks.max() == 9
    # Mean of a discrete uniform on 0..9 is 4.5 with sd sqrt((10² − 1) / 12) = 2.87; 3σ for 2000 ranks is 0.19.
    assert abs(ranks.mean() - 4.5) < 3 * 2.87 / np.sqrt(2000)
    assert np.array_equal(ranks, sbc_ranks(theta, np.zeros((2000, 9, 1)), seed=3))


def test_sbc_exact_posterior_passes():
    theta, draws = conjugate(seed=1)
    result = sbc_uniformity(sbc_ranks(theta, draws), N_DRAWS)
    # Family-wise level 1 %: a correct posterior fails with probability <= 1 % (Bonferroni over 2·d tests).
    assert result.passed(alpha=0.01)
    assert result.n_bins == 20  # N // 10 = 100 capped at 20: 50 expected ranks per bin
    table = result.as_table(names=["a", "b"])
    assert list(table["parameter"]) == ["a", "b"] and table.meta["n_draws"] == N_DRAWS


@pytest.mark.parametrize("wrong", [{"width": 0.5}, {"bias": 0.5}, {"width": 1.5}],
                         ids=["over-confident", "biased", "under-confident"])
def test_sbc_miscalibrated_posterior_fails(wrong):
    theta, draws = conjugate(seed=2, **wrong)
    result = sbc_uniformity(sbc_ranks(theta, draws), N_DRAWS)
    assert not result.passed(alpha=0.01)
    # With 1000 simulations these misfits are gross: halving the width puts ~50 % of the truths outside
    # the central 68 % interval, so the chi-square p-value is astronomically small, not borderline.
    assert np.all(result.chi2_pvalue < 1e-6)


def test_sbc_uniformity_checks_ranks():
    with pytest.raises(ValueError, match="ranks must lie in 0..n_draws=9"):
        sbc_uniformity([[0], [10]], n_draws=9)
    with pytest.raises(ValueError, match="n_draws"):
        sbc_uniformity([[0], [1]], n_draws=0)
    with pytest.raises(ValueError, match="alpha"):
        sbc_uniformity(np.arange(100)[:, None] % 10, n_draws=9).passed(alpha=1.5)


# ---------------------------------------------------------------------- coverage
@pytest.mark.parametrize("method", ["central", "hpd"])
def test_coverage_of_exact_posterior_within_binomial_band(method):
    theta, draws = conjugate(seed=3)
    result = expected_coverage(theta, draws, method=method)
    # Under the exact posterior each coverage value is a Binomial(N, level) fraction: 3σ pointwise band,
    # plus 1/(L+1) for the discreteness of the central interval's ends set by L = 99 draws (the HPD rank
    # is jittered to be exactly uniform, so for it the extra term is only slack).
    band = 3 * np.sqrt(result.levels * (1 - result.levels) / N_SIMS)[:, None] + 1 / (N_DRAWS + 1)
    assert result.coverage.shape == (19, 2) and result.n == N_SIMS
    assert np.all(np.abs(result.coverage - result.levels[:, None]) < band)


def test_over_confident_posterior_under_covers_as_predicted():
    width = 0.5
    theta, draws = conjugate(seed=4, width=width)
    result = expected_coverage(theta, draws)
    # A central interval of a posterior whose std is `width` times too small holds the truth with probability
    # 2 Φ(width · z) − 1, z = Φ⁻¹((1 + level) / 2): compare within the same binomial band as above.
    predicted = 2 * stats.norm.cdf(width * stats.norm.ppf((1 + result.levels) / 2)) - 1
    band = 3 * np.sqrt(predicted * (1 - predicted) / N_SIMS) + 1 / (N_DRAWS + 1)
    assert np.all(np.abs(result.coverage - predicted[:, None]) < band[:, None])
    under = result.levels[:, None] - 3 * np.sqrt(result.levels * (1 - result.levels) / N_SIMS)[:, None]
    assert np.all(result.coverage[1:] < under[1:])  # below the band everywhere except at the lowest level
    # For a symmetric unimodal posterior the HPD interval is the central one: same prediction, same band.
    hpd = expected_coverage(theta, draws, method="hpd")
    assert np.all(np.abs(hpd.coverage - predicted[:, None]) < band[:, None])


def test_hpd_coverage_of_bimodal_posterior():
    # Uninformative data: the exact posterior is the bimodal prior 0.5 N(−3, 0.5²) + 0.5 N(3, 0.5²) itself.
    rng = np.random.default_rng(15)

    def bimodal(*shape):
        return rng.choice([-3.0, 3.0], size=shape) + 0.5 * rng.normal(size=shape)

    theta, draws = bimodal(N_SIMS, 1), bimodal(N_SIMS, N_DRAWS, 1)
    hpd = expected_coverage(theta, draws, method="hpd")
    # Same binomial 3σ band (+1/(L+1)) as for the Gaussian case: the HPD rank is exact for any posterior.
    band = 3 * np.sqrt(hpd.levels * (1 - hpd.levels) / N_SIMS)[:, None] + 1 / (N_DRAWS + 1)
    assert np.all(np.abs(hpd.coverage - hpd.levels[:, None]) < band)
    # Too narrow modes (std 0.25 instead of 0.5) are over-confident: the 50 % HPD region is each mode
    # ± 0.674 · 0.25, which holds a truth of spread 0.5 with probability 2 Φ(0.337) − 1 = 0.26 — far below
    # the band's lower edge 0.5 − 3 sqrt(0.25 / N) = 0.45 (KDE smoothing widens the region a little).
    narrow = rng.choice([-3.0, 3.0], size=(N_SIMS, N_DRAWS, 1)) + 0.25 * rng.normal(size=(N_SIMS, N_DRAWS, 1))
    assert expected_coverage(theta, narrow, levels=[0.5], method="hpd").coverage[0, 0] < 0.5 - 3 * np.sqrt(0.25 / N_SIMS)


def test_coverage_bad_input():
    theta, draws = conjugate(seed=5, n_sims=20, n_draws=10)
    with pytest.raises(ValueError, match="levels"):
        expected_coverage(theta, draws, levels=[0.5, 1.0])
    with pytest.raises(ValueError, match="method"):
        expected_coverage(theta, draws, method="shortest")
    bad = theta.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="prior_samples has 1 row"):
        expected_coverage(bad, draws)
    with pytest.raises(ValueError, match="mismatched lengths"):
        expected_coverage(theta[:10], draws)
    with pytest.raises(ValueError, match="parameter"):
        expected_coverage(theta[:, :1], draws)
    with pytest.raises(ValueError, match="posterior_samples must have 2 or 3 dimension"):
        expected_coverage(theta, draws[0, 0])


# ---------------------------------------------------------------------- TARP
def tarp_null_bound(n_sims: int) -> float:
    # Under the exact posterior the (jittered) credibilities are exactly U(0, 1), so max |ECP − α| over the
    # grid is at most the KS statistic, whose 99 % critical value is 1.63/√N (0.052 for N = 1000).
    return 1.63 / np.sqrt(n_sims)


def test_tarp_exact_posterior_on_diagonal():
    theta, draws = conjugate(seed=6)
    alpha, ecp = tarp(theta, draws, seed=0)
    assert alpha.shape == ecp.shape == (101,)
    assert ecp[0] == 0 and ecp[-1] == 1
    assert tarp_distance(alpha, ecp) < tarp_null_bound(N_SIMS)


@pytest.mark.parametrize("width", [0.5, 2.0], ids=["over-confident", "under-confident"])
def test_tarp_miscalibrated_posterior_off_diagonal(width):
    theta, draws = conjugate(seed=7, width=width)
    alpha, ecp = tarp(theta, draws, seed=0)
    assert tarp_distance(alpha, ecp) > 2 * tarp_null_bound(N_SIMS)
    middle = alpha == 0.5
    # Over-confident: the truth sits outside most of the (too small) posterior ball, so ECP(0.5) < 0.5;
    # under-confident the other way round.
    assert (ecp[middle] < 0.5) if width < 1 else (ecp[middle] > 0.5)


def test_tarp_bad_input():
    theta, draws = conjugate(seed=8, n_sims=20, n_draws=10)
    constant = theta.copy()
    constant[:, 1] = 1.0
    with pytest.raises(ValueError, match="single value"):
        tarp(constant, draws)
    with pytest.raises(ValueError, match="n_references"):
        tarp(theta, draws, n_references=0)
    with pytest.raises(ValueError, match="mismatched lengths"):
        tarp_distance([0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="kind"):
        tarp_distance([0.0, 1.0], [0.0, 1.0], kind="median")


# ---------------------------------------------------------------------- C2ST
def test_c2st_same_distribution_is_chance():
    rng = np.random.default_rng(9)
    n = 1000
    accuracy = c2st(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), seed=0)
    # Under the null each of the 2n held-out points is classified correctly with probability 1/2 whatever
    # the classifier learned, so the mean accuracy has std sqrt(0.25 / (2n)) = 0.011: 3σ bound.
    assert abs(accuracy - 0.5) < 3 * np.sqrt(0.25 / (2 * n))


def test_c2st_shifted_gaussians_reach_bayes_accuracy():
    rng = np.random.default_rng(10)
    n, shift = 1000, 3.0
    p = rng.normal(size=(n, 2))
    q = rng.normal(size=(n, 2)) + [shift, 0.0]
    accuracy = c2st(p, q, seed=0)
    # Bayes-optimal accuracy for two unit Gaussians a distance Δ apart is Φ(Δ/2) = 0.933.
    bayes = stats.norm.cdf(shift / 2)
    # Held-out accuracy of a fixed rule scatters by sqrt(p(1−p)/(2n)) = 0.0056 (3σ: 0.017). Nothing beats
    # the Bayes rule beyond that; below it we also allow the excess risk of a boundary learned from 1600
    # points, O(d/n) ≈ 0.001-0.01 for a linear boundary in 2-D, so 0.01.
    spread = 3 * np.sqrt(bayes * (1 - bayes) / (2 * n))
    assert bayes - spread - 0.01 < accuracy < bayes + spread


def test_c2st_seeded_and_checked():
    rng = np.random.default_rng(11)
    p, q = rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 1.0
    assert c2st(p, q, seed=4, epochs=20) == c2st(p, q, seed=4, epochs=20)
    with pytest.raises(ValueError, match="dimension"):
        c2st(p, q[:, :1])
    with pytest.raises(ValueError, match="samples_q has 1 row"):
        c2st(p, np.where(np.arange(100)[:, None] == 5, np.nan, q))
    with pytest.raises(ValueError, match="at least 10 samples"):
        c2st(p[:4], q)
    with pytest.raises(ValueError, match="n_folds"):
        c2st(p, q, n_folds=1)


# ---------------------------------------------------------------------- posterior predictive checks
def ppc_experiment(rng, noise_true: float, n_obs: int = 30, n_rep: int = 200):
    """One observed data set of n_obs points around a common θ; replicates from the conjugate posterior predictive."""
    theta = rng.normal()
    observed = theta + noise_true * rng.normal(size=n_obs)
    # Model: θ ~ N(0, 1), x_j ~ N(θ, σ²), σ = SIGMA. Posterior of θ after n_obs points is Gaussian.
    post_var = 1 / (1 + n_obs / SIGMA**2)
    post_mean = post_var * observed.sum() / SIGMA**2
    theta_rep = post_mean + np.sqrt(post_var) * rng.normal(size=n_rep)
    simulated = theta_rep[:, None] + SIGMA * rng.normal(size=(n_rep, n_obs))
    return posterior_predictive_check(observed, simulated, {"std": np.std, "mean": np.mean})


def test_ppc_true_model_uniform_wrong_model_extreme():
    rng = np.random.default_rng(12)
    # The sample std does not depend on θ, so under the true model its posterior predictive p-value is
    # exactly U(0, 1) (up to the 1/200 grid of the replicate count). KS at the 1 % level.
    true_p = np.array([ppc_experiment(rng, SIGMA)["std"].p_value for _ in range(200)])
    assert stats.kstest(true_p, "uniform").pvalue > 0.01
    # Data with twice the assumed noise: the observed variance is 4× the replicated one, an F(29, 29) ratio
    # exceeding 4 with probability ~1e-4, so nearly every p-value is 0 and KS rejects overwhelmingly.
    wrong_p = np.array([ppc_experiment(rng, 2 * SIGMA)["std"].p_value for _ in range(200)])
    assert stats.kstest(wrong_p, "uniform").pvalue < 1e-6
    assert np.mean(wrong_p < 0.01) > 0.95


def test_ppc_single_callable_and_two_sided():
    rng = np.random.default_rng(13)
    observed = rng.normal(size=20)
    simulated = rng.normal(size=(100, 20))
    one = posterior_predictive_check(observed, simulated, np.mean)
    assert set(one) == {"T"} and one["T"].replicated.shape == (100,)
    assert one["T"].observed == pytest.approx(observed.mean())
    two = posterior_predictive_check(observed, simulated, np.mean, two_sided=True)["T"].p_value
    upper = one["T"].p_value
    assert two == pytest.approx(min(1.0, 2 * min(upper, np.mean(one["T"].replicated <= one["T"].observed))))
    # An observed value far above every replicate: one-sided p = 0, two-sided p = 0.
    extreme = posterior_predictive_check(observed + 100, simulated, np.mean, two_sided=True)["T"]
    assert extreme.p_value == 0.0


def test_ppc_bad_input():
    observed, simulated = np.zeros(10), np.zeros((5, 10))
    with pytest.raises(ValueError, match="simulated must have shape"):
        posterior_predictive_check(observed, simulated[:, :9], np.mean)
    with pytest.raises(TypeError, match="statistic"):
        posterior_predictive_check(observed, simulated, {"mean": 3.0})
    with pytest.raises(ValueError, match="NaN"):
        posterior_predictive_check(observed, simulated, lambda data: np.nan)
    with pytest.raises(ValueError, match="observed has 1 row"):
        posterior_predictive_check(np.r_[np.nan, observed[1:]], simulated, np.mean)


# ---------------------------------------------------------------------- plots
def test_plots_produce_figures():
    theta, draws = conjugate(seed=14, n_sims=200, n_draws=49)
    axes = plot_sbc_ranks(sbc_ranks(theta, draws), 49, names=["a", "b"])
    assert len(axes) == 2 and axes[0].get_title() == "a" and axes[0].figure is not None
    coverage = expected_coverage(theta, draws)
    ax = plot_coverage(coverage.levels, coverage.coverage, coverage.n)
    assert len(ax.lines) == 3  # diagonal + one curve per parameter
    alpha, ecp = tarp(theta, draws)
    assert plot_tarp(alpha, ecp, n=200).get_ylabel() == "expected coverage"
    assert plot_tarp(alpha, ecp).get_xlabel() == "credibility level α"
    checks = posterior_predictive_check(theta[:, 0], draws[:, :, 0].T, {"mean": np.mean, "std": np.std})
    ppc_axes = plot_ppc(checks)
    assert [a.get_xlabel() for a in ppc_axes] == ["mean", "std"]
    with pytest.raises(ValueError, match="one Axes per parameter"):
        plot_sbc_ranks(sbc_ranks(theta, draws), 49, ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="coverage has"):
        plot_coverage([0.1, 0.5], [0.1], n=10)
