"""BEAMS Hubble-diagram fit: distances against astropy, the mixture likelihood by hand, input checks, the
calibration of the simulated P(Ia), and a seeded recovery in which BEAMS finds Ω_m and the naive cut does not.

Statistical tolerances are stated where they are used.
"""
from __future__ import annotations

import math
import warnings

import astropy.units as u
import matplotlib
import numpy as np
import pytest
import torch
from astropy.cosmology import FlatwCDM
from astropy.table import Table
from scipy import stats

from astrobayes.inference.priors import JointPrior, Normal, Uniform
from astrobayes.supernovae.beams import (BEAMSModel, distance_modulus, fit_beams, fit_naive, plot_hubble_diagram,
                                         simulate_hubble_sample)

matplotlib.use("Agg")

TRUE_OMEGA_M = 0.3


# ------------------------------------------------------------------ distance_modulus
@pytest.mark.parametrize("omega_m", [0.05, 0.3, 0.62, 0.95])
@pytest.mark.parametrize("w", [-2.0, -1.0, -0.7, -0.4])
def test_distance_modulus_matches_astropy(omega_m, w):
    z = np.concatenate([[0.01, 1.5], np.random.default_rng(0).uniform(0.01, 1.5, 200)])
    reference = FlatwCDM(H0=70, Om0=omega_m, w0=w, Tcmb0=0).distmod(z).to_value(u.mag)
    # the quadrature is good to ~1e-7 mag; 1e-6 leaves room for astropy's own adaptive-quadrature error
    np.testing.assert_allclose(distance_modulus(z, omega_m, w), reference, rtol=0, atol=1e-6)


def test_distance_modulus_h0_only_shifts_by_5_log10():
    z = np.array([0.05, 0.5, 1.2])
    shift = distance_modulus(z, 0.3, h0=67.0) - distance_modulus(z, 0.3)
    np.testing.assert_allclose(shift, -5 * np.log10(67.0 / 70.0), atol=1e-12)


def test_distance_modulus_is_vectorised_over_cosmologies():
    z = np.linspace(0.02, 1.4, 7)
    omega_m, w = np.array([0.1, 0.3, 0.5]), np.array([-1.5, -1.0, -0.6])
    grid = distance_modulus(z, omega_m, w)
    assert grid.shape == (3, 7) and isinstance(grid, np.ndarray)
    for row, (om, ww) in enumerate(zip(omega_m, w)):
        np.testing.assert_allclose(grid[row], distance_modulus(z, om, ww), atol=1e-12)
    assert distance_modulus(z, 0.3, w).shape == (3, 7)  # scalar Ω_m broadcast against w
    assert distance_modulus(0.5, 0.3).shape == ()
    as_torch = distance_modulus(z, torch.tensor(omega_m), torch.tensor(w))
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float64
    np.testing.assert_allclose(as_torch.numpy(), grid, atol=1e-12)


def test_distance_modulus_of_a_walker_batch_is_each_walker_s():
    # one call for all walkers (no loop over them); its speed is a benchmark's business, not a timed test's
    rng = np.random.default_rng(1)
    z, omega_m, w = rng.uniform(0.01, 1.5, 2000), torch.as_tensor(rng.uniform(0.1, 0.9, 64)), \
        torch.as_tensor(rng.uniform(-2, -0.5, 64))
    batch = torch.as_tensor(distance_modulus(z, omega_m, w))
    assert batch.shape == (64, 2000)
    for k in (0, 31, 63):
        one = torch.as_tensor(distance_modulus(z, omega_m[k:k + 1], w[k:k + 1]))
        torch.testing.assert_close(batch[k:k + 1], one.reshape(1, -1))


@pytest.mark.parametrize("kwargs, match", [
    ({"z": [0.1, 0.0], "omega_m": 0.3}, "z must"),
    ({"z": [0.1, np.nan], "omega_m": 0.3}, "z must"),
    ({"z": [[0.1]], "omega_m": 0.3}, "z must"),
    ({"z": [0.1], "omega_m": 1.2}, "omega_m"),
    ({"z": [0.1], "omega_m": 0.3, "w": np.inf}, "w must"),
    ({"z": [0.1], "omega_m": [0.3, 0.4], "w": [-1.0, -1.0, -1.0]}, "broadcast"),
    ({"z": [0.1], "omega_m": 0.3, "h0": -70.0}, "h0"),
])
def test_distance_modulus_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distance_modulus(**kwargs)


# ------------------------------------------------------------------ simulate_hubble_sample
def test_simulated_sample_columns_units_and_seed():
    a, b, c = (simulate_hubble_sample(300, seed=s) for s in (4, 4, 5))
    assert a.colnames == ["z", "mag", "mag_err", "p_ia", "is_ia"]
    assert a["mag"].unit == u.mag and a["mag_err"].unit == u.mag
    assert a["is_ia"].dtype == bool
    assert all(np.array_equal(np.asarray(a[col]), np.asarray(b[col])) for col in a.colnames)
    assert not np.array_equal(np.asarray(a["mag"]), np.asarray(c["mag"]))
    assert a.meta["simulation"]["seed"] == 4 and a.meta["simulation"]["omega_m"] == 0.3
    assert ((a["z"] >= 0.02) & (a["z"] <= 1.0)).all() and ((a["p_ia"] >= 0) & (a["p_ia"] <= 1)).all()


def test_simulated_p_ia_is_calibrated():
    sample = simulate_hubble_sample(40000, seed=7)
    p, is_ia = np.asarray(sample["p_ia"]), np.asarray(sample["is_ia"])
    edges = np.linspace(0, 1, 11)
    which = np.digitize(p, edges[1:-1])
    for k in range(10):
        in_bin = which == k
        n = in_bin.sum()
        expected = p[in_bin].mean()
        # the Ia count in a bin is a sum of Bernoulli(p_i): its std is sqrt(Σ p_i (1 - p_i)); allow 4σ over 10 bins
        tolerance = 4 * math.sqrt(np.sum(p[in_bin] * (1 - p[in_bin]))) / n
        assert abs(is_ia[in_bin].mean() - expected) < tolerance, (k, n, is_ia[in_bin].mean(), expected)


def test_naive_cut_is_contaminated_more_at_high_redshift():
    sample = simulate_hubble_sample(40000, seed=8)
    kept = sample[sample["p_ia"] > 0.5]
    z, contaminant = np.asarray(kept["z"]), ~np.asarray(kept["is_ia"])
    # the default settings promise 5-10 % contamination (6.5 % expected; n ≈ 22000 makes the error ~0.2 %)
    assert 0.05 < contaminant.mean() < 0.08
    assert contaminant[z < 0.3].mean() < 0.02 < 0.10 < contaminant[z > 0.8].mean()


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must"), ({"n": 10, "ia_fraction": 1.0}, "ia_fraction"), ({"n": 10, "sigma_ia": -0.1}, "sigma_ia"),
    ({"n": 10, "z_range": (0.5, 0.1)}, "z_range"), ({"n": 10, "mag_err_floor": 0.0}, "mag_err_floor"),
    ({"n": 10, "omega_m": np.nan}, "omega_m"),
])
def test_simulate_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_hubble_sample(**kwargs)


# ------------------------------------------------------------------ the likelihood by hand
def _one_sn(p_ia=0.7):
    return Table({"z": [0.42], "mag": [42.1 - 19.3 + 0.2] * u.mag, "mag_err": [0.09] * u.mag, "p_ia": [p_ia]})


def test_log_prob_is_the_two_population_mixture_for_one_supernova():
    theta = np.array([0.27, -19.25, 0.13, 1.4, 0.7])
    model = BEAMSModel(_one_sn())
    mu = FlatwCDM(H0=70, Om0=0.27, Tcmb0=0).distmod(0.42).value
    m, err = 42.1 - 19.3 + 0.2, 0.09
    log_ia = math.log(0.7) + stats.norm.logpdf(m, mu - 19.25, math.hypot(0.13, err))
    log_cc = math.log(0.3) + stats.norm.logpdf(m, mu - 19.25 + 1.4, math.hypot(0.7, err))
    log_prior = -math.log(1.0) - math.log(4.0) - math.log(2.0) - math.log(7.0) - math.log(3.0)
    expected = np.logaddexp(log_ia, log_cc) + log_prior
    np.testing.assert_allclose(model.log_prob(theta[None]), [expected], rtol=0, atol=1e-6)


def test_log_prob_with_free_w_and_the_naive_single_population():
    sn = _one_sn()
    theta = np.array([0.35, -0.8, -19.3, 0.15])
    naive = BEAMSModel(sn["z", "mag", "mag_err"], free_w=True, contaminants=False)
    assert naive.names == ["omega_m", "w", "abs_mag", "sigma_ia"]
    mu = FlatwCDM(H0=70, Om0=0.35, w0=-0.8, Tcmb0=0).distmod(0.42).value
    expected = stats.norm.logpdf(42.1 - 19.3 + 0.2, mu - 19.3, math.hypot(0.15, 0.09)) \
        - math.log(1.0) - math.log(2.2) - math.log(4.0) - math.log(2.0)
    np.testing.assert_allclose(naive.log_prob(theta[None]), [expected], rtol=0, atol=1e-6)
    # BEAMS with P(Ia) = 1 is the same likelihood: the contaminant parameters then only add their prior
    beams = BEAMSModel(_one_sn(p_ia=1.0), free_w=True)
    full = np.concatenate([theta, [1.0, 0.5]])
    np.testing.assert_allclose(beams.log_prob(full[None]), [expected - math.log(7.0) - math.log(3.0)], atol=1e-9)


def test_log_prob_batches_types_and_prior_edges():
    sample = simulate_hubble_sample(50, seed=3)
    model = BEAMSModel(sample)
    theta = np.array([[0.3, -19.3, 0.12, 1.5, 0.8], [0.31, -19.2, 0.2, 1.0, 1.0], [0.3, -19.3, -0.1, 1.5, 0.8],
                      [1.01, -19.3, 0.12, 1.5, 0.8]])
    values = model.log_prob(theta)
    assert isinstance(values, np.ndarray) and values.shape == (4,)
    assert np.isfinite(values[:2]).all() and np.isneginf(values[2:]).all()
    single = [model.log_prob(row[None])[0] for row in theta[:2]]
    np.testing.assert_allclose(values[:2], single, rtol=1e-12)
    as_torch = model.log_prob(torch.as_tensor(theta))
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float64
    # P(Ia) of exactly 0 or 1 gives a -inf mixture weight, which must not turn into NaN
    sample["p_ia"][:5] = 0.0
    sample["p_ia"][5:10] = 1.0
    assert np.isfinite(BEAMSModel(sample).log_prob(theta[:1])).all()


def test_arrays_and_table_give_the_same_model():
    sample = simulate_hubble_sample(40, seed=9)
    from_table = BEAMSModel(sample)
    from_arrays = BEAMSModel(np.asarray(sample["z"]), sample["mag"].to_value(u.mag), sample["mag_err"],
                             np.asarray(sample["p_ia"]))
    theta = np.array([[0.3, -19.3, 0.12, 1.5, 0.8]])
    np.testing.assert_allclose(from_table.log_prob(theta), from_arrays.log_prob(theta), rtol=1e-14)


def test_priors_can_be_replaced_by_name():
    sample = simulate_hubble_sample(40, seed=9)
    model = BEAMSModel(sample, priors={"omega_m": Normal(0.3, 0.02)})
    assert model.names[0] == "omega_m" and isinstance(model.prior.components[0], Normal)
    with pytest.raises(ValueError, match="unknown parameter"):
        BEAMSModel(sample, priors={"Om0": Uniform(0, 1)})
    with pytest.raises(ValueError, match="priors must be a JointPrior over"):
        BEAMSModel(sample, priors=JointPrior([Uniform(0, 1, name="omega_m")]))


def _arrays(**changes):
    base = {"sample": np.array([0.1, 0.5, 0.9]), "mag": np.array([19.0, 22.5, 24.0]),
            "mag_err": np.array([0.05, 0.08, 0.12]), "p_ia": np.array([0.9, 0.5, 0.2])}
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, match", [
    ({"mag": np.array([19.0, 22.5])}, "same length"),
    ({"mag": np.array([19.0, np.nan, 24.0])}, "mag has 1 NaN"),
    ({"mag_err": np.array([0.05, 0.0, 0.1])}, "mag_err must be positive"),
    ({"p_ia": np.array([0.9, 1.2, 0.2])}, r"p_ia must be in \[0, 1\]"),
    ({"sample": np.array([0.1, -0.5, 0.9])}, "z must be positive"),
    ({"p_ia": None}, "p_ia must be given"),
    ({"mag": np.array([19.0, 22.5, 24.0]) * u.Jy}, "mag must be in magnitudes"),
])
def test_model_bad_input(changes, match):
    with pytest.raises(ValueError, match=match):
        BEAMSModel(**_arrays(**changes))


def test_model_bad_table():
    sample = simulate_hubble_sample(10, seed=1)
    with pytest.raises(ValueError, match="no column"):
        BEAMSModel(sample["z", "mag", "mag_err"])
    with pytest.raises(ValueError, match="not both"):
        BEAMSModel(sample, mag=np.ones(10))
    with pytest.raises(ValueError, match="threshold"):
        fit_naive(sample, threshold=1.5)


# ------------------------------------------------------------------ recovery
@pytest.fixture(scope="module")
def recovery():
    sample = simulate_hubble_sample(1500, seed=0)
    with warnings.catch_warnings():
        # short chains (750 steps ≈ 20 τ, τ ≈ 35: ≈ 600 effective draws, medians good to ≈ 0.05 posterior std
        # against the 3σ bounds below) to keep the test fast; the benchmark runs long ones
        warnings.simplefilter("ignore", RuntimeWarning)
        beams = fit_beams(sample, n_steps=750, seed=1, progress=False)
        naive = fit_naive(sample, n_steps=750, seed=1, progress=False)
    return sample, beams, naive


def test_beams_recovers_omega_m_and_the_naive_cut_is_biased_low(recovery):
    sample, beams, naive = recovery
    beams_om, naive_om = beams["omega_m"].value, naive["omega_m"].value
    # BEAMS is the exact likelihood of these data: the truth lies within 3σ (fails with probability ~0.3 %)
    assert abs(np.median(beams_om) - TRUE_OMEGA_M) < 3 * beams_om.std()
    truths = {"abs_mag": -19.3, "sigma_ia": 0.12, "contaminant_offset": 1.5, "sigma_contaminant": 0.8}
    for name, truth in truths.items():
        draws = beams[name].value
        assert abs(np.median(draws) - truth) < 3.5 * draws.std(), name
    # The sign of the naive bias, from the physics: (1) contamination of the P > 0.5 cut rises with redshift
    # (the classifier degrades with signal-to-noise), (2) the contaminants are fainter (Δ > 0), so the high-z
    # end of the Hubble diagram is pushed faint relative to the low-z end, and (3) in flat ΛCDM a fainter
    # high-z end (larger distances) means a smaller Ω_m, since μ(z=1) − μ(z=0.1) falls as Ω_m grows.
    kept = sample[sample["p_ia"] > 0.5]
    z, contaminant = np.asarray(kept["z"]), ~np.asarray(kept["is_ia"])
    assert contaminant[z > 0.6].mean() > contaminant[z < 0.4].mean()
    slope = distance_modulus(np.array([0.1, 1.0]), np.array([0.25, 0.35]))
    assert (slope[1, 1] - slope[1, 0]) < (slope[0, 1] - slope[0, 0])
    assert np.median(naive_om) < TRUE_OMEGA_M - naive_om.std()
    assert naive.meta["n_kept"] == len(kept) and beams.meta["n_objects"] == 1500


def test_plot_hubble_diagram_draws_points_and_the_fits(recovery):
    import matplotlib.pyplot as plt

    sample, beams, naive = recovery
    ax = plot_hubble_diagram(sample, beams)
    assert len(ax.lines) == 2 and len(ax.collections) >= 2  # Ia and contaminant curves; error bars and points
    assert ax.get_ylabel().startswith("peak apparent magnitude")
    ax2 = plot_hubble_diagram(sample, naive, ax=plt.subplots()[1])
    assert len(ax2.lines) == 1
    plt.close("all")
