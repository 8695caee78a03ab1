"""Tests of the out-of-distribution score and the MMD misspecification test.

Training summaries are N(0, I); every tolerance below is derived from the
sample sizes (binomial 3σ bands) or from an analytic oracle, as said beside it.
"""
import doctest
import json

import numpy as np
import pytest
import torch
from scipy import stats

from astrobayes.core.serialization import ModelFileError, model_paths
from astrobayes.inference.diagnostics import MMDResult, OODReference, mmd_test
from astrobayes.estimators import ood as reference_module
from astrobayes.inference.diagnostics import ood as ood_module

DIM, N_FIT, N_QUERY = 4, 5000, 2000


@pytest.fixture(scope="module")
def reference():
    return OODReference.fit(np.random.default_rng(0).normal(size=(N_FIT, DIM)), seed=0)


@pytest.fixture(scope="module")
def fresh():
    return np.random.default_rng(1).normal(size=(N_QUERY, DIM))


def test_split_sizes(reference):
    # 20 % of 5000 rows held out to calibrate, the other 4000 (below the 20 000 cap) are the reference
    assert (reference.n_calibration, reference.n_reference, reference.n_features) == (1000, 4000, DIM)
    capped = OODReference.fit(np.random.default_rng(2).normal(size=(3000, 2)), max_reference=500,
                              max_calibration=200)
    assert (capped.n_calibration, capped.n_reference) == (200, 500)
    small = OODReference.fit(np.random.default_rng(2).normal(size=(200, 2)))  # 20 % would be 40: the minimum is 100
    assert (small.n_calibration, small.n_reference) == (100, 100)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_in_distribution_objects_are_flagged_at_rate_alpha(reference, fresh, alpha):
    flagged = reference.flag(fresh, alpha=alpha).mean()
    # Given the calibration set, the flag rate of fresh objects is itself random around α (conformal validity is
    # marginal over calibration sets), with variance ≈ α(1-α)/n_cal; the n query objects add binomial variance
    # α(1-α)/n. 3σ of both together, plus the conformal discreteness 1/(n_cal + 1).
    n_cal = reference.n_calibration
    band = 3 * np.sqrt(alpha * (1 - alpha) * (1 / N_QUERY + 1 / n_cal)) + 1 / (n_cal + 1)
    assert abs(flagged - alpha) <= band, (flagged, alpha, band)


def test_p_values_are_conformal(reference, fresh):
    p = reference.p_value(fresh)
    n_cal = reference.n_calibration
    assert p.min() >= 1 / (n_cal + 1) and p.max() <= 1
    assert np.allclose(p * (n_cal + 1), np.round(p * (n_cal + 1)))  # (1 + count) / (n_cal + 1)
    # the calibration scores themselves: the j-th largest has p = j / (n_cal + 1) without ties
    calibration = np.sort(reference.calibration_scores.numpy().astype(float))
    assert reference._p_values(calibration[-1:])[0] == 2 / (n_cal + 1)


def test_scores_are_kth_neighbour_distances(reference, fresh):
    from scipy.spatial import cKDTree

    standardised = (fresh[:50] - reference.mean.numpy()) / reference.scale.numpy()
    exact = cKDTree(reference.reference.double().numpy()).query(standardised, k=reference.k)[0][:, -1]
    assert np.allclose(reference.score(fresh[:50]), exact, atol=1e-4)  # float32 distances
    # chunking does not change the answer
    chunk = reference_module._CHUNK_ELEMENTS
    try:
        reference_module._CHUNK_ELEMENTS = 7 * reference.n_reference
        assert np.allclose(reference.score(fresh[:50]), exact, atol=1e-4)
    finally:
        reference_module._CHUNK_ELEMENTS = chunk


@pytest.mark.parametrize("shift", [3.0, 5.0])
def test_shifted_objects_are_flagged(reference, fresh, shift):
    shifted = fresh + np.r_[shift, np.zeros(DIM - 1)]
    flagged = reference.flag(shifted, alpha=0.05).mean()
    # Oracle: for N(0, I) the k-NN distance ranks objects as the density does, so an ideal score flags an object
    # when |x|² > χ²_4(0.95). Each shifted object is x = z + shift·e1, |x|² ~ noncentral χ²_4(λ = shift²):
    # power 0.66 for 3σ (a single object 3σ off in one of four dimensions often lands inside the bulk, so no
    # per-object score can flag > 0.9 of them) and 0.989 for 5σ. The k-NN estimate of the level set (4000
    # reference rows, k = 10) is within 0.08 of the oracle (0.011 of it is the binomial 1σ of 2000 objects).
    oracle = stats.ncx2(DIM, shift**2).sf(stats.chi2(DIM).ppf(0.95))
    assert abs(flagged - oracle) < 0.08, (flagged, oracle)
    if shift == 5.0:
        assert flagged > 0.9


def test_constant_column(fresh):
    summaries = np.random.default_rng(3).normal(size=(1000, 3))
    summaries[:, 2] = 7.0  # e.g. a dead unit of an embedding
    model = OODReference.fit(summaries)
    assert model.scale[2] == 1.0
    inside = np.c_[fresh[:200, :2], np.full(200, 7.0)]
    outside = np.c_[fresh[:200, :2], np.full(200, 12.0)]
    assert model.flag(inside).mean() < 0.15
    assert model.flag(outside).all()


def test_save_load_round_trip(reference, fresh, tmp_path):
    path = tmp_path / "ood"
    reference.save(path)
    loaded = OODReference.load(path)
    assert np.array_equal(loaded.p_value(fresh), reference.p_value(fresh))
    header = json.loads(model_paths(path)[1].read_text())
    assert header["class"] == "OODReference"
    assert header["config"]["n_calibration"] == 1000 and "0.95" in header["config"]["calibration_score_quantiles"]
    # in-memory state, as a domain model would keep it inside its own files
    again = OODReference.from_state(reference.get_config(), reference.state_dict())
    assert np.array_equal(again.score(fresh), reference.score(fresh))
    with pytest.raises(ValueError, match="loaded from"):
        loaded.save(path)
    model_paths(path)[0].write_bytes(model_paths(path)[0].read_bytes()[:-8])
    with pytest.raises(ModelFileError):
        OODReference.load(path)


def test_bad_input_names_the_argument(reference):
    rng = np.random.default_rng(4)
    bad = rng.normal(size=(500, 2))
    bad[17, 1] = np.nan
    with pytest.raises(ValueError, match=r"summaries has 1 row\(s\) with NaN or inf \(indices 17\)"):
        OODReference.fit(bad)
    with pytest.raises(ValueError, match="summaries has 150 row"):
        OODReference.fit(rng.normal(size=(150, 2)))
    with pytest.raises(ValueError, match="summaries must have 2 dimension"):
        OODReference.fit(rng.normal(size=(500, 2, 2)))
    with pytest.raises(ValueError, match="calibration_fraction"):
        OODReference.fit(rng.normal(size=(500, 2)), calibration_fraction=1.5)
    with pytest.raises(ValueError, match="k must be"):
        OODReference.fit(rng.normal(size=(500, 2)), k=0)
    with pytest.raises(ValueError, match="x has 3 feature.*fitted on summaries with 4"):
        reference.score(rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match=r"x has 1 row\(s\) with NaN"):
        reference.p_value([[0.0, np.inf, 0.0, 0.0]])
    with pytest.raises(ValueError, match="alpha must be"):
        reference.flag(np.zeros((2, DIM)), alpha=1.0)
    with pytest.raises(ValueError, match="below 1/\\(n_calibration \\+ 1\\)"):
        reference.flag(np.zeros((2, DIM)), alpha=1e-4)
    with pytest.raises(TypeError, match="x is an astropy Quantity"):
        import astropy.units as u
        reference.score(np.zeros((2, DIM)) * u.mag)
    for seed in (None, "a", -1, 1.5):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            OODReference.fit(rng.normal(size=(500, 2)), seed=seed)
    with pytest.raises(ValueError, match="summaries has 0 columns"):
        OODReference.fit(np.empty((500, 0)))
    # spreads that float64 cannot hold: refused, not standardised to a constant that makes every p-value 1
    with pytest.raises(ValueError, match=r"too large to standardise .*column\(s\) \[0, 1\]"):
        OODReference.fit(rng.normal(size=(500, 2)) * 1e200)
    with pytest.raises(ValueError, match=r"too small to standardise .*column\(s\) \[1\]"):
        OODReference.fit(rng.normal(size=(500, 2)) * [1.0, 1e-200])
    with pytest.raises(TypeError, match="tensors must be a dict"):
        OODReference.from_state(reference.get_config(), None)
    # one object as a 1-D row, and torch input
    assert reference.score(np.zeros(DIM)).shape == (1,)
    assert np.array_equal(reference.score(torch.zeros(3, DIM)), reference.score(np.zeros((3, DIM))))


# ---------------------------------------------------------------- MMD
def test_mmd_statistic_is_unbiased_mmd2():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 0.3
    result = mmd_test(x, y, n_permutations=50)
    pooled = np.r_[x, y]
    pooled = (pooled - pooled.mean(0)) / pooled.std(0)
    squared = ((pooled[:, None] - pooled[None]) ** 2).sum(-1)
    distances = np.sqrt(squared[np.triu_indices(70, 1)])
    assert result.bandwidth == pytest.approx(np.median(distances))
    kernel = np.exp(-squared / (2 * result.bandwidth**2))
    kxx, kyy, kxy = kernel[:40, :40], kernel[40:, 40:], kernel[:40, 40:]
    expected = ((kxx.sum() - 40) / (40 * 39) + (kyy.sum() - 30) / (30 * 29) - 2 * kxy.mean())
    assert result.statistic == pytest.approx(expected, rel=1e-10)
    assert (result.n_observed, result.n_simulated, result.n_permutations) == (40, 30, 50)


def test_mmd_false_positive_rate():
    alpha, replicates, n_perm = 0.05, 200, 100
    rejected = np.mean([mmd_test(np.random.default_rng(100 + i).normal(size=(100, 2)),
                                 np.random.default_rng(10_000 + i).normal(size=(100, 2)),
                                 n_permutations=n_perm, seed=i).p_value <= alpha for i in range(replicates)])
    # the permutation test is exact: P(p ≤ α) = floor(α (n_perm + 1)) / (n_perm + 1) = 5/101 under the null;
    # 3σ binomial band for 200 replicates
    size = np.floor(alpha * (n_perm + 1)) / (n_perm + 1)
    band = 3 * np.sqrt(size * (1 - size) / replicates)
    assert abs(rejected - size) <= band, (rejected, size, band)


def test_mmd_power_against_mean_shift():
    replicates = 30
    rejected = []
    for i in range(replicates):
        rng = np.random.default_rng(200 + i)
        observed = rng.normal(size=(200, 2)) + [0.5, 0.0]
        rejected.append(mmd_test(observed, rng.normal(size=(200, 2)), n_permutations=100, seed=i).p_value <= 0.05)
    # A z-test of the mean of the shifted column has power Φ(0.5 / √(2/200) − 1.96) = 0.999; the median-bandwidth
    # MMD gives up little of it here (it rejects every replicate); > 0.9 of 30 replicates would fail with
    # probability < 1e-3 if its true power were still 0.99.
    assert np.mean(rejected) > 0.9


def test_mmd_options_and_errors():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3000, 2)), rng.normal(size=(50, 2))
    result = mmd_test(x, y, n_permutations=20, max_rows=500, bandwidth=1.0)
    assert isinstance(result, MMDResult) and (result.n_observed, result.n_simulated, result.bandwidth) == (500, 50, 1.0)
    assert mmd_test(rng.normal(size=100), rng.normal(size=80), n_permutations=20).n_observed == 100  # 1-D: d = 1
    same = mmd_test(np.ones((10, 2)), np.ones((12, 2)), n_permutations=20)
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    with pytest.raises(ValueError, match="observed has 2 feature.*simulated has 3"):
        mmd_test(rng.normal(size=(10, 2)), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="simulated needs at least 2 rows"):
        mmd_test(rng.normal(size=(10, 2)), rng.normal(size=(1, 2)))
    with pytest.raises(ValueError, match=r"observed has 1 row\(s\) with NaN"):
        mmd_test([[np.nan, 0.0], [0.0, 0.0]], rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="n_permutations"):
        mmd_test(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), n_permutations=0)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_test(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), bandwidth="scott")
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_test(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), bandwidth=-1.0)


@pytest.mark.parametrize("method", ["gaussian", "knn"])
def test_raw_summaries_with_a_large_offset_keep_their_spread(method):
    """Inputs such as an MJD (60000 ± 0.001) lost their whole spread to float32 in the Mahalanobis score."""
    rng = np.random.default_rng(7)
    offset, spread = 1e6, 1e-3
    reference = OODReference.fit(offset + spread * rng.normal(size=(1500, 2)), method=method, seed=0)
    # N(0, I) calibration scores are continuous: all 300 distinct, as at offset 0
    assert len(np.unique(reference.calibration_scores.numpy())) == reference.n_calibration == 300
    assert reference.p_value([offset + 5 * spread, offset]) <= 1 / 301  # 5σ off: beyond every calibration row
    assert reference.p_value([offset, offset]) > 0.5


def test_ood_warning_and_report_ood_refuse_what_is_not_a_p_value():
    from astropy.table import Table

    from astrobayes.inference.diagnostics.ood import ood_warning, report_ood

    for alpha in (0, 2, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match="alpha must be a number strictly between 0 and 1"):
            ood_warning([0.5], alpha=alpha)
    with pytest.raises(ValueError, match=r"p_values must lie in \[0, 1\].*\[5.0, -1.0\]"):
        ood_warning([0.5, 5.0, np.nan, -1.0])
    with pytest.raises(TypeError, match="p_values must be numbers"):
        ood_warning(["low"])
    assert ood_warning([np.nan, np.nan]) is None and ood_warning([]) is None
    table = Table({"name": ["a", "b", "c"]})
    for p in ([0.5, 0.5], 0.5, None):  # a short column, or one number broadcast over every row
        with pytest.raises(ValueError, match=r"one p-value per row of the table \(3\)"):
            report_ood(table, p)
    with pytest.raises(TypeError, match="table must be an astropy Table"):
        report_ood({"name": ["a"]}, [0.5])
    assert "ood_p_value" not in table.colnames
    report_ood(table, [np.nan] * 3)
    assert table.meta["ood_flagged"] == 0 and np.isnan(table["ood_p_value"]).all()


def test_mmd_extreme_bandwidths_seeds_and_overflowing_values():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    # h² under- or overflowed a Python float: ZeroDivisionError / OverflowError. Now a kernel that is the identity
    # (h → 0) or all ones (h → ∞): no labelling tells the samples apart, p = 1
    for bandwidth in (1e-300, 1e300):
        assert mmd_test(x, y, bandwidth=bandwidth, n_permutations=20).p_value == 1.0
    for seed in ("a", -1, 1.5):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            mmd_test(x, y, seed=seed)
    assert mmd_test(x, y, seed=None, n_permutations=20).n_permutations == 20  # None: fresh entropy
    with pytest.raises(ValueError, match="too large to standardise"):  # was p = 1 whatever the samples
        mmd_test(x * 1e200, (y + 5.0) * 1e200)


def test_doctests():
    assert doctest.testmod(ood_module, optionflags=doctest.ELLIPSIS).failed == 0
    assert doctest.testmod(reference_module, optionflags=doctest.ELLIPSIS).failed == 0


def test_c2st_test_rejects_a_shift_and_names_bad_input():
    from astrobayes.inference.diagnostics import c2st_test

    rng = np.random.default_rng(3)
    simulated = rng.normal(size=(400, 2))
    shifted = c2st_test(rng.normal(size=(300, 2)) + [1.0, 0.0], simulated, epochs=30, seed=1)
    assert shifted.n_observed == shifted.n_simulated == 300  # the larger side is cut to the smaller
    # two unit Gaussians 1σ apart: the Bayes classifier is right with probability Φ(1/2) = 0.69
    assert shifted.accuracy > 0.6 and shifted.p_value < 1e-4
    with pytest.raises(ValueError, match="observed has 3 feature"):
        c2st_test(rng.normal(size=(50, 3)), simulated)
    with pytest.raises(ValueError, match="needs at least 10 rows on each side"):
        c2st_test(rng.normal(size=(6, 2)), simulated)
    for seed in (None, "a"):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            c2st_test(rng.normal(size=(50, 2)), simulated, seed=seed)


def test_held_out_calibration_rows_calibrate_alone():
    rng = np.random.default_rng(4)
    reference = OODReference.fit(rng.normal(size=(1000, 3)), calibration=rng.normal(size=(250, 3)),
                                 method="gaussian", seed=0)
    assert (reference.n_reference, reference.n_calibration) == (1000, 250)
    assert reference.get_config()["calibration"] == "held out"
    fresh = reference.p_value(rng.normal(size=(4000, 3)))
    # exchangeable with the calibration rows: flag rate α up to the binomial spread of 4000 draws and the
    # calibration set's own quantile error (±3 sqrt(α(1-α)/250))
    assert abs(np.mean(fresh <= 0.05) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 4000) + 3 * np.sqrt(0.05 * 0.95 / 250)
    with pytest.raises(ValueError, match="calibration has 2 feature"):
        OODReference.fit(rng.normal(size=(1000, 3)), calibration=rng.normal(size=(250, 2)))
    with pytest.raises(ValueError, match="at least 100 calibration rows"):
        OODReference.fit(rng.normal(size=(1000, 3)), calibration=rng.normal(size=(50, 3)))


def test_an_estimator_calibrates_on_its_explicit_validation_rows():
    from astrobayes.estimators import Regressor

    rng = np.random.default_rng(5)
    x, x_val = rng.normal(size=(600, 2)), rng.normal(size=(300, 2))
    model = Regressor(hidden=(8,))
    model.fit(x, x[:, :1], validation=(x_val, x_val[:, :1]), epochs=2, progress=False)
    assert (model.ood.n_reference, model.ood.n_calibration) == (600, 300)
    # fewer than MIN_HELD_OUT = 300 validation rows: 20 % of x calibrate instead
    model.fit(x, x[:, :1], validation=(x_val[:299], x_val[:299, :1]), epochs=2, progress=False)
    assert (model.ood.n_reference, model.ood.n_calibration) == (480, 120)
