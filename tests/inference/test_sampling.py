"""The emcee glue: statistics against an analytic Gaussian, warnings, seeding, errors, tables and plots."""
import importlib.util
import math
import warnings

import astropy.units as u
import emcee
import matplotlib
import numpy as np
import pytest
import torch

from astrobayes.inference.priors import BoxUniform, JointPrior, Normal, Uniform
from astrobayes.inference.sampling import MCMCResult, run_emcee

matplotlib.use("Agg")

# most runs here are deliberately short; the warning itself is tested in test_short_chain_warns_...
pytestmark = pytest.mark.filterwarnings("ignore:the chain is only:RuntimeWarning")

# correlated 2-D Gaussian target with a known mean and covariance
MEAN = np.array([1.0, -2.0])
STD = np.array([0.5, 2.0])
RHO = 0.8
COV = np.outer(STD, STD) * np.array([[1.0, RHO], [RHO, 1.0]])
PRECISION = torch.as_tensor(np.linalg.inv(COV))


def gaussian_log_prob(theta):
    offset = theta - torch.as_tensor(MEAN)
    return -0.5 * ((offset @ PRECISION) * offset).sum(dim=1)


PRIOR = JointPrior([Normal(0.0, 5.0, name="radius", unit="kpc"), Normal(0.0, 5.0, name="log_mass")])


@pytest.fixture(scope="module")
def long_run():
    # τ ≈ 30 steps for this target (measured over seeds 0-2), so 4000 steps ≈ 130 τ: no short-chain warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_emcee(gaussian_log_prob, PRIOR, n_steps=4000, seed=0)
    return result, caught


def effective_size(result: MCMCResult, tau: np.ndarray) -> np.ndarray:
    # thinned draws are still correlated over τ/thin of them; never more independent than draws
    return len(result.samples) / np.maximum(tau / result.thin, 1.0)


def test_mean_matches_analytic_within_monte_carlo_error(long_run):
    result, _ = long_run
    n_eff = effective_size(result, result.autocorr_time)
    standard_error = STD / np.sqrt(n_eff)  # σ sqrt(τ / N), τ from the chain itself
    assert np.all(np.abs(result.samples.mean(axis=0) - MEAN) < 4 * standard_error)


def test_covariance_matches_analytic_within_monte_carlo_error(long_run):
    result, _ = long_run
    kept = result.chain[result.burn_in:]
    centred = kept - kept.reshape(-1, 2).mean(axis=0)
    sample_cov = np.cov(result.samples.T)
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        # a covariance entry is the mean of the products (x_i - m_i)(x_j - m_j); its standard error is
        # std(product) sqrt(τ_product / N) with τ_product estimated from the chain of products itself
        product = centred[:, :, i] * centred[:, :, j]
        tau_product = emcee.autocorr.integrated_time(product[:, :, None], tol=0)[0]
        standard_error = product.std() / np.sqrt(effective_size(result, np.array([tau_product]))[0])
        assert abs(sample_cov[i, j] - COV[i, j]) < 4 * standard_error, (i, j, sample_cov[i, j], standard_error)


def test_run_reports_diagnostics_and_no_warning_for_a_long_chain(long_run):
    result, caught = long_run
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert result.chain.shape == (4000, 32, 2) and result.log_prob.shape == (4000, 32)
    assert result.acceptance_fraction.shape == (32,) and 0.2 < result.mean_acceptance < 0.9
    assert result.autocorr_time.shape == (2,) and np.all(result.autocorr_time > 1)
    assert result.burn_in == math.ceil(2 * result.autocorr_time.max())
    assert result.thin == max(1, math.floor(0.5 * result.autocorr_time.min()))
    # emcee keeps steps burn_in + thin - 1, burn_in + 2 thin - 1, ...
    expected_rows = 32 * len(range(result.burn_in + result.thin - 1, 4000, result.thin))
    assert result.samples.shape == (expected_rows, 2)
    assert result.seconds > 0


def test_short_chain_warns_with_its_length_in_tau():
    with pytest.warns(RuntimeWarning, match=r"only 150 steps = .* τ .*at least 50 τ"):
        result = run_emcee(gaussian_log_prob, PRIOR, n_steps=150, seed=0)
    assert result.burn_in <= 75  # at most half of a too-short chain is discarded


def test_log_prob_fn_gets_float64_batches_under_no_grad():
    calls = []

    def recording_log_prob(theta):
        calls.append((tuple(theta.shape), theta.dtype, torch.is_grad_enabled()))
        return gaussian_log_prob(theta)

    run_emcee(recording_log_prob, PRIOR, n_walkers=12, n_steps=50, seed=0)
    shapes = {shape for shape, _, _ in calls}
    # the initial evaluation sees all 12 walkers; each stretch-move update proposes for half the ensemble
    assert shapes == {(12, 2), (6, 2)}
    assert {dtype for _, dtype, _ in calls} == {torch.float64}
    assert not any(grad for _, _, grad in calls)

    calls.clear()
    batched = run_emcee(recording_log_prob, PRIOR, n_walkers=12, n_steps=50, seed=0, batch_size=4)
    assert max(shape[0] for shape, _, _ in calls) == 4
    unbatched = run_emcee(gaussian_log_prob, PRIOR, n_walkers=12, n_steps=50, seed=0)
    np.testing.assert_array_equal(batched.chain, unbatched.chain)


def test_same_seed_same_chain_other_seed_other_chain():
    first = run_emcee(gaussian_log_prob, PRIOR, n_steps=60, seed=5)
    second = run_emcee(gaussian_log_prob, PRIOR, n_steps=60, seed=5)
    other = run_emcee(gaussian_log_prob, PRIOR, n_steps=60, seed=6)
    np.testing.assert_array_equal(first.chain, second.chain)
    assert not np.array_equal(first.chain, other.chain)


def test_walkers_start_inside_a_bounded_prior_and_where_log_prob_is_finite():
    prior = BoxUniform([0.0, 0.0], [1.0, 1.0], names=["a", "b"])
    starts = []

    def wedge(theta):
        # finite only on the half of the box with a > b, and uniform there
        if not starts:
            starts.append(theta.clone())
        return torch.where(theta[:, 0] > theta[:, 1], prior.log_prob(theta), -math.inf)

    result = run_emcee(wedge, prior, n_walkers=20, n_steps=40, seed=2)
    assert bool(prior.support_check(starts[0]).all())
    assert np.all(result.chain[:, :, 0] > result.chain[:, :, 1])
    assert np.all((result.chain >= 0) & (result.chain <= 1))


def test_gives_up_when_no_prior_draw_has_finite_log_prob():
    with pytest.raises(RuntimeError, match="had a finite log-probability"):
        run_emcee(lambda theta: torch.full((len(theta),), -math.inf), PRIOR, n_steps=10)


def test_initial_positions_from_an_array():
    rng = np.random.default_rng(0)
    initial = MEAN + 0.1 * rng.standard_normal((10, 2))
    result = run_emcee(gaussian_log_prob, initial, n_steps=30, seed=0, names=["x", "y"], units=["kpc", None])
    assert result.chain.shape == (30, 10, 2) and result.names == ["x", "y"]
    assert result.units == [u.kpc, u.dimensionless_unscaled]
    bad = initial.copy()
    bad[3] = [50.0, 50.0]
    with pytest.raises(ValueError, match=r"prior_or_initial: log_prob_fn is -inf at 1 starting position\(s\): \(x=50"):
        run_emcee(lambda t: torch.where(t[:, 0] < 10, gaussian_log_prob(t), -math.inf), bad,
                  n_steps=10, names=["x", "y"])
    with pytest.raises(ValueError, match="n_walkers=12 but prior_or_initial has 10 rows"):
        run_emcee(gaussian_log_prob, initial, n_walkers=12, n_steps=10)


def test_nan_from_log_prob_fn_names_the_parameters():
    def broken(theta):
        return torch.where(theta[:, 0] > 0, torch.nan, gaussian_log_prob(theta))

    with pytest.raises(ValueError, match=r"log_prob_fn returned NaN or \+inf at \d+ point\(s\): \(radius="):
        run_emcee(broken, PRIOR, n_steps=10, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_steps": 0}, "n_steps must be an integer >= 1"),
    ({"n_walkers": 3}, "n_walkers must be at least 2 \\* ndim = 4"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"names": ["a"]}, "names must be 2 distinct strings"),
    ({"units": ["kpc"]}, "units must have 2 entries"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_emcee(gaussian_log_prob, PRIOR, **{"n_steps": 10, **kwargs})


def test_wrong_output_shape_is_reported():
    with pytest.raises(ValueError, match=r"one log-probability per row"):
        run_emcee(lambda theta: gaussian_log_prob(theta)[:, None], PRIOR, n_steps=10)


def test_summary_table_has_statistics_units_and_provenance(long_run):
    result, _ = long_run
    table = result.summary()
    assert table.colnames == ["name", "unit", "median", "p16", "p84", "p2.5", "p97.5", "mean", "std", "tau"]
    assert table["name"].tolist() == ["radius", "log_mass"]
    assert table["unit"].tolist() == ["kpc", ""]
    np.testing.assert_allclose(table["median"], np.median(result.samples, axis=0))
    np.testing.assert_allclose(table["p97.5"], np.percentile(result.samples, 97.5, axis=0))
    np.testing.assert_allclose(table["tau"], result.autocorr_time)
    assert np.all(table["p2.5"] < table["p16"]) and np.all(table["p16"] < table["median"])
    assert np.all(table["median"] < table["p84"]) and np.all(table["p84"] < table["p97.5"])
    for key in ("seed", "n_walkers", "n_steps", "acceptance", "astrobayes_version", "burn_in", "thin"):
        assert key in table.meta
    assert table.meta["seed"] == 0 and table.meta["n_walkers"] == 32
    radius = result["radius"]
    assert radius.unit == u.kpc and radius.shape == (len(result.samples),)


def test_corner_and_trace_plots(long_run):
    from matplotlib.figure import Figure

    pytest.importorskip("corner")
    result, _ = long_run
    figure = result.corner(truths={"radius": 1000 * u.pc, "log_mass": -2.0})
    assert isinstance(figure, Figure)
    labels = {ax.get_xlabel() for ax in figure.axes} | {ax.get_ylabel() for ax in figure.axes}
    assert "radius [kpc]" in labels and "log_mass" in labels
    with pytest.raises(ValueError, match="truths has unknown parameter"):
        result.corner(truths={"mass": 1.0})
    trace = result.trace_plot()
    assert isinstance(trace, Figure) and len(trace.axes) == 2
    matplotlib.pyplot.close("all")


def test_to_arviz_names_the_extra_when_arviz_is_missing(long_run):
    if importlib.util.find_spec("arviz") is not None:
        pytest.skip("arviz is installed; this checks the message shown without it")
    with pytest.raises(ImportError, match=r"astrobayes\[viz\]"):
        long_run[0].to_arviz()


def test_a_single_parameter_prior_is_accepted():
    prior = Uniform(0.0, 2.0, name="redshift")
    result = run_emcee(lambda t: prior.log_prob(t[:, 0]), prior, n_walkers=8, n_steps=30, seed=0)
    assert result.names == ["redshift"] and result.chain.shape == (30, 8, 1)
    pytest.importorskip("corner")
    figure = result.corner(truths=[1.0])  # corner 2.3 itself cannot overplot truths in 1-D
    assert any(np.allclose(line.get_xdata(), 1.0) for line in figure.axes[0].lines)
    matplotlib.pyplot.close("all")
