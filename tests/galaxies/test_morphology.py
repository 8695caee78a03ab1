"""Tests of galaxy morphology measurements and their two-sample comparison (astrobayes.galaxies.morphology).

The images are built here from analytic profiles sampled at pixel centres: for
a Gaussian with σ ≳ 1 pixel, sums over the pixel grid equal the integrals to
far better than 1e-6 (the error falls like exp(−2π²σ²)), so moments are exact
and what is left in the radii is the discreteness of the circular aperture on
the pixel lattice, whose size is stated where it sets a tolerance.
"""
import warnings

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import Table
from scipy.optimize import brentq

from astrobayes.galaxies import morphology
from astrobayes.galaxies.morphology import (
    compare_morphology,
    ks_critical_value,
    measure_morphology,
    plot_morphology,
    shuffled_baseline,
)

GAUSSIAN_C = 2.5 * np.log10(np.log(5) / np.log(1.25))  # 5 log10(r80/r20), r_p = σ √(−2 ln(1 − p)): 2.1452


def gaussian(size, sigma, q=1.0, angle=0.0, centre=None, flux=1.0):
    """Elliptical Gaussian of major-axis σ, axis ratio q, major axis at ``angle`` (rad) from +x towards +y."""
    y, x = np.mgrid[:size, :size].astype(float)
    cx, cy = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    along = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    across = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    image = np.exp(-0.5 * ((along / sigma) ** 2 + (across / (q * sigma)) ** 2))
    return flux * image / image.sum()


def exponential_disk(size, scale, centre, oversample=8):
    """Face-on exponential disk, each pixel the mean of oversample² sub-pixel samples (tames the central cusp)."""
    y, x = np.mgrid[:size, :size].astype(float)
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    image = sum(np.exp(-np.hypot(x + dx - centre[0], y + dy - centre[1]) / scale) for dx in offsets for dy in offsets)
    return image / oversample ** 2


def random_galaxies(n, rng, size=32, sigma=(1.8, 3.0), noise=0.002):
    """A population of noisy elliptical Gaussians: the stand-in for real (or generated) stamps."""
    stamps = np.empty((n, size, size))
    for i in range(n):
        stamps[i] = gaussian(size, rng.uniform(*sigma), q=rng.uniform(0.4, 1.0), angle=rng.uniform(0, np.pi),
                             centre=(size - 1) / 2 + rng.uniform(-0.5, 0.5, 2), flux=rng.lognormal(0.0, 0.3))
    return stamps + rng.normal(0.0, noise, stamps.shape)


# ---------------------------------------------------------------------- sizes and concentration
def test_half_light_radius_of_a_circular_gaussian():
    rng = np.random.default_rng(0)
    for sigma, tolerance in ((3.0, 0.006), (6.0, 0.003)):
        centres = 31.5 + rng.uniform(-0.5, 0.5, (12, 2))
        table = measure_morphology(np.array([gaussian(64, sigma, centre=c) for c in centres]))
        assert table["valid"].all()
        # lattice discreteness: over 40 random sub-pixel centres the largest r50 error was 0.41 % for σ = 3
        # and 0.24 % for σ = 6 (0.5 % / 0.3 % allowed); r20, the smallest radius, 1.3 % / 0.3 %
        for fraction, column in ((0.5, "r50"), (0.2, "r20"), (0.8, "r80")):
            expected = sigma * np.sqrt(-2 * np.log(1 - fraction))
            allowed = tolerance * (2.5 if column == "r20" else 1.0)
            np.testing.assert_allclose(table[column].value, expected, rtol=allowed, err_msg=f"{column}, σ = {sigma}")
        assert table["r50"].unit == u.pix


def test_sub_pixel_interpolation_is_not_a_step_function():
    # growing σ by 1 % grows r50 by 1 % (a radius snapped to pixel-centre radii would not move, or jump)
    sigmas = np.linspace(4.0, 4.2, 11)
    r50 = measure_morphology(np.array([gaussian(64, s, centre=(31.2, 31.7)) for s in sigmas]))["r50"].value
    np.testing.assert_allclose(r50 / (sigmas * np.sqrt(2 * np.log(2))), 1.0, rtol=0.004)
    assert np.all(np.diff(r50) > 0)


def test_concentration_of_a_gaussian_and_of_an_exponential_disk():
    assert GAUSSIAN_C == pytest.approx(2.1452, abs=1e-4)
    rng = np.random.default_rng(1)
    centres = 47.5 + rng.uniform(-0.5, 0.5, (6, 2))
    gaussians = measure_morphology(np.array([gaussian(96, 5.0, centre=c) for c in centres]))
    # σ = 4 to 6 gave C within ± 0.01 of the analytic value over random centres
    np.testing.assert_allclose(gaussians["concentration"], GAUSSIAN_C, atol=0.02)

    # exponential disk: the flux within r is 1 − (1 + r/h) exp(−r/h)
    x20, x50, x80 = (brentq(lambda t, p=p: 1 - (1 + t) * np.exp(-t) - p, 1e-6, 50) for p in (0.2, 0.5, 0.8))
    disk_c = 5 * np.log10(x80 / x20)
    assert disk_c == pytest.approx(2.80, abs=0.005)
    disks = measure_morphology(np.array([exponential_disk(96, 4.0, c) for c in centres]))
    # the 96-pixel aperture holds all but 0.01 % of the flux (radius 12 h); averaging over the pixel adds
    # ~1/12 pixel² to the profile's variance, a +0.2 % on r50 for h = 4
    np.testing.assert_allclose(disks["r50"].value, x50 * 4.0, rtol=0.01)
    np.testing.assert_allclose(disks["concentration"], disk_c, atol=0.02)
    assert disks["concentration"].mean() > gaussians["concentration"].mean() + 0.5


# ---------------------------------------------------------------------- shape and centre
@pytest.mark.parametrize("moments", ["adaptive", "unweighted"])
@pytest.mark.parametrize("q, angle_deg", [(0.5, 30.0), (0.8, -50.0), (0.3, 95.0), (1.0, 0.0)])
def test_ellipticity_of_an_elliptical_gaussian(q, angle_deg, moments):
    angle = np.deg2rad(angle_deg)
    row = measure_morphology(gaussian(64, 5.0, q=q, angle=angle, centre=(31.3, 32.1))[None], moments=moments)[0]
    # distortion of a Gaussian with axis ratio q: |e| = (1 − q²)/(1 + q²) at twice the position angle;
    # unweighted moments of a point-sampled Gaussian ≥ 6σ inside the aperture are exact, and so are
    # adaptive ones, whose matched weight is the Gaussian's own covariance
    magnitude = (1 - q ** 2) / (1 + q ** 2)
    assert row["e1"] == pytest.approx(magnitude * np.cos(2 * angle), abs=1e-6)
    assert row["e2"] == pytest.approx(magnitude * np.sin(2 * angle), abs=1e-6)
    assert row["ellipticity"] == pytest.approx(magnitude, abs=1e-6)
    assert row["axis_ratio"] == pytest.approx(q, abs=1e-5)
    if q < 1:
        recovered = 0.5 * np.arctan2(row["e2"], row["e1"])
        assert np.cos(2 * (recovered - angle)) == pytest.approx(1.0, abs=1e-9)  # same axis, modulo 180°


def test_adaptive_moments_resist_noise():
    rng = np.random.default_rng(7)
    q, angle = 0.5, np.deg2rad(20.0)
    image = gaussian(32, 2.5, q=q, angle=angle, centre=(15.2, 15.9), flux=1.0)
    noisy = image + rng.normal(0.0, 0.002, (200, 32, 32))  # S/N ≈ 30 within r50
    adaptive = measure_morphology(noisy)
    unweighted = measure_morphology(noisy, moments="unweighted")
    assert adaptive["valid"].all()
    magnitude = (1 - q ** 2) / (1 + q ** 2)
    # 200 realisations with a scatter of 0.018 in e1 and 0.04 px in x: the means are good to 5 × σ/√200
    assert np.mean(adaptive["ellipticity"]) == pytest.approx(magnitude, abs=0.007)
    assert np.std(adaptive["e1"]) < 0.03
    assert np.mean(adaptive["x_centroid"]) == pytest.approx(15.2, abs=0.015)
    # the same noise over ~800 unweighted pixels swamps the r² moments: half the stamps come out invalid
    valid = unweighted["valid"]
    assert valid.mean() < 0.9 and np.std(unweighted["e1"][valid]) > 5 * np.std(adaptive["e1"])


def test_centroid_peak_and_centre_choices():
    image = gaussian(48, 3.0, q=0.7, angle=0.4, centre=(20.3, 26.8), flux=50.0)
    table = measure_morphology(np.stack([image, image]), centre="centroid")
    assert table["x_centroid"][0] == pytest.approx(20.3, abs=1e-6)
    assert table["y_centroid"][0] == pytest.approx(26.8, abs=1e-6)
    assert table["flux"][0] == pytest.approx(50.0, rel=1e-6)
    assert table["peak"][0] == pytest.approx(image.max())
    assert table.meta["centre"] == "centroid"
    # the centroid is a first moment whatever the centre of the aperture; radii change with the centre
    by_peak = measure_morphology(image[None], centre="peak")[0]
    by_stamp = measure_morphology(image[None], centre="stamp")[0]
    assert by_peak["x_centroid"] == pytest.approx(20.3, abs=1e-6)
    assert by_peak["r50"] == pytest.approx(table["r50"][0], rel=0.05)
    assert by_stamp["r50"] > table["r50"][0] + 2  # the galaxy sits (3.2, 3.3) pixels from the stamp centre


def test_asymmetry_of_symmetric_and_lopsided_images():
    symmetric = [gaussian(64, 4.0, q=0.6, angle=0.3, centre=c) for c in ((31.5, 31.5), (31.0, 32.0), (30.8, 32.35))]
    values = measure_morphology(np.array(symmetric))["asymmetry"]
    # a centre on a pixel corner or centre: exact pixel permutation, A = 0 to rounding
    assert values[0] == pytest.approx(0.0, abs=1e-12) and values[1] == pytest.approx(0.0, abs=1e-12)
    # off the grid: the shared bilinear shift leaves A ≈ 0.0004 for σ = 4 (0.001 for σ = 3)
    assert values[2] < 0.003
    lopsided = gaussian(64, 4.0, centre=(31.5, 31.5)) + gaussian(64, 2.0, centre=(39.0, 33.0), flux=0.3)
    asymmetry = measure_morphology(lopsided[None])["asymmetry"][0]
    assert asymmetry > 0.1
    assert 0 <= asymmetry <= 1
    # about the stamp centre a symmetric galaxy cancels exactly, and a clump of flux f away from its mirror
    # image gives Σ|I − I₁₈₀| = 2 f over 2 Σ|I| = 2 (1 + f): A = f / (1 + f)
    for f in (0.1, 0.5):
        clumpy = gaussian(64, 4.0) + gaussian(64, 1.5, centre=(40.0, 36.0), flux=f)
        row = measure_morphology(clumpy[None], centre="stamp")[0]
        assert row["asymmetry"] == pytest.approx(f / (1 + f), rel=1e-9)


# ---------------------------------------------------------------------- bad pixels, background, invalid stamps
def test_nan_and_masked_pixels_are_ignored():
    image = gaussian(64, 4.0, q=0.7, angle=0.5, centre=(31.5, 31.5), flux=10.0)
    clean = measure_morphology(image[None])[0]
    # NaN where the galaxy has no light: nothing changes, nothing turns NaN
    holes = image.copy()
    holes[2:5, 60] = np.nan
    holed = measure_morphology(holes[None])[0]
    for name in morphology.MORPHOLOGY_STATISTICS:
        assert holed[name] == pytest.approx(clean[name], rel=1e-9, abs=1e-12), name
    # a pixel pair symmetric about the centre: the centroid stays put and the image stays symmetric
    pair = image.copy()
    pair[28, 27] = pair[35, 36] = np.nan
    paired = measure_morphology(pair[None])[0]
    assert paired["x_centroid"] == pytest.approx(31.5, abs=1e-9)
    assert paired["y_centroid"] == pytest.approx(31.5, abs=1e-9)
    assert paired["asymmetry"] == pytest.approx(0.0, abs=1e-12)
    assert paired["valid"]
    # a cosmic ray, masked three ways, is as if it were not there
    hit = image.copy()
    hit[20, 40] = 1e4
    ray = np.zeros((64, 64), bool)
    ray[20, 40] = True

    class StampsLike:  # duck-typed like astrobayes.galaxies.io.Stamps
        data = hit[None]
        mask = ray[None]

    flagged_nan = hit.copy()
    flagged_nan[20, 40] = np.nan
    for masked in (measure_morphology(hit[None], mask=ray[None]), measure_morphology(hit[None], mask=ray),
                   measure_morphology(StampsLike()), measure_morphology(flagged_nan[None])):
        assert masked["r50"][0] == pytest.approx(
            measure_morphology(np.where(ray, 0.0, image)[None])["r50"][0], rel=1e-12)
    assert measure_morphology(hit[None])["r50"][0] != pytest.approx(clean["r50"], rel=0.01)


def test_border_background_is_subtracted():
    image = gaussian(64, 3.0, centre=(31.2, 31.9), flux=20.0)
    clean = measure_morphology(image[None])[0]
    lifted = measure_morphology((image + 0.05)[None], background="border")[0]
    # the border ring lies ≥ 9σ from the galaxy, where it is 0 to 1e-18: its median is the pedestal
    assert lifted["background"] == pytest.approx(0.05, abs=1e-12)
    for name in ("flux", "r50", "concentration", "ellipticity", "asymmetry"):
        assert lifted[name] == pytest.approx(clean[name], rel=1e-9, abs=1e-12), name
    given = measure_morphology(np.stack([image + 0.05, image + 0.1]), background=[0.05, 0.1])
    np.testing.assert_allclose(given["flux"], 20.0, rtol=1e-9)
    # without subtraction a pedestal inflates the flux and the radii
    assert measure_morphology((image + 0.05)[None])["r50"][0] > clean["r50"] * 2


def test_empty_or_negative_stamps_are_flagged_not_raised():
    good = gaussian(32, 2.5, flux=3.0)
    all_nan = np.full((32, 32), np.nan)
    stamps = np.stack([good, np.zeros((32, 32)), -good, all_nan, good])
    table = measure_morphology(stamps)
    assert list(table["valid"]) == [True, False, False, False, True]
    for name in ("r50", "concentration", "ellipticity", "asymmetry", "x_centroid"):
        assert np.isnan(table[name][1:4]).all(), name
        assert np.isfinite(table[name][[0, 4]]).all(), name
    assert table["flux"][2] == pytest.approx(-3.0, rel=1e-9)  # kept: it says why the stamp is invalid
    assert table.meta["n_invalid"] == 3


def test_input_forms_agree():
    stamps = random_galaxies(5, np.random.default_rng(2))
    reference = measure_morphology(stamps)
    for other in (stamps[:, None], torch.from_numpy(stamps), torch.from_numpy(stamps[:, None]).float(),
                  stamps * u.nJy):
        table = measure_morphology(other)
        for name in ("flux", "r50", "e1", "asymmetry"):
            np.testing.assert_allclose(np.asarray(table[name]), np.asarray(reference[name]), rtol=1e-5)
    assert measure_morphology(stamps * u.nJy)["flux"].unit == u.nJy


def test_chunks_do_not_change_the_answer(monkeypatch):
    stamps = random_galaxies(7, np.random.default_rng(3))
    whole = measure_morphology(stamps)
    monkeypatch.setattr(morphology, "_CHUNK_PIXELS", 3 * 32 * 32)  # three stamps at a time
    chunked = measure_morphology(stamps)
    for name in morphology.MORPHOLOGY_STATISTICS:  # equal but for the order of BLAS sums
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------- comparisons
@pytest.fixture(scope="module")
def populations():
    rng = np.random.default_rng(4)
    real = measure_morphology(random_galaxies(400, rng))
    same = measure_morphology(random_galaxies(400, rng))
    bigger = measure_morphology(random_galaxies(400, rng, sigma=(2.2, 3.6)))  # sizes × 1.2
    return real, same, bigger


def test_same_generator_passes_and_a_shifted_one_fails(populations):
    real, same, bigger = populations
    critical = ks_critical_value(400, 400, alpha=0.001)
    assert critical == pytest.approx(np.sqrt(-np.log(0.0005) / 2) * np.sqrt(2 / 400))
    alike = compare_morphology(real, same, labels=("real", "model"))
    assert list(alike["statistic"]) == ["flux", "r50", "ellipticity", "concentration", "asymmetry"]
    # each of the five statistics exceeds the α = 0.001 critical value with probability 0.001
    assert (alike["ks_statistic"] < critical).all()
    assert (alike["ks_pvalue"] > 0.001).all()
    assert (alike["n_reference"] == 400).all() and (alike["n_other"] == 400).all()
    assert alike.meta["labels"] == ["real", "model"]
    unlike = compare_morphology(real, bigger)
    r50 = unlike[unlike["statistic"] == "r50"][0]
    assert r50["ks_statistic"] > critical and r50["ks_pvalue"] < 1e-6
    assert r50["mean_other"] == pytest.approx(1.2 * r50["mean_reference"], rel=0.03)
    assert r50["wasserstein"] == pytest.approx(r50["mean_other"] - r50["mean_reference"], rel=0.1)
    same_r50 = alike[alike["statistic"] == "r50"][0]
    assert r50["wasserstein_scaled"] > 5 * same_r50["wasserstein_scaled"]
    # the scaled distance is the distance in units of the reference's spread
    spread = np.std(np.asarray(real["r50"])[real["valid"]], ddof=1)
    assert r50["wasserstein_scaled"] == pytest.approx(r50["wasserstein"] / spread)


def test_stamps_are_measured_on_the_fly():
    rng = np.random.default_rng(5)
    stamps_a, stamps_b = random_galaxies(30, rng), random_galaxies(30, rng)
    from_stamps = compare_morphology(stamps_a, stamps_b, statistics=("r50", "flux"),
                                     measure_options={"background": "border"})
    from_tables = compare_morphology(measure_morphology(stamps_a, background="border"),
                                     measure_morphology(stamps_b, background="border"), statistics=("r50", "flux"))
    np.testing.assert_allclose(from_stamps["ks_statistic"], from_tables["ks_statistic"])
    np.testing.assert_allclose(from_stamps["wasserstein"], from_tables["wasserstein"])


def test_invalid_rows_are_dropped_counted_and_warned(populations):
    real, same, _ = populations
    spoiled = same.copy()
    spoiled["valid"][:40] = False  # 10 %
    with pytest.warns(UserWarning, match=r"model: 40 of 400 stamps \(10%\) are invalid"):
        table = compare_morphology(real, spoiled, labels=("real", "model"))
    assert table.meta["n_invalid"] == {"real": 0, "model": 40}
    assert (table["n_other"] == 360).all()
    spoiled["valid"][:40] = True
    spoiled["valid"][:4] = False  # 1 %: dropped quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (compare_morphology(real, spoiled)["n_other"] == 396).all()


def test_sample_size_subsampling_is_seeded(populations):
    real, same, _ = populations
    first = compare_morphology(real, same, sample_size=150, seed=7)
    again = compare_morphology(real, same, sample_size=150, seed=7)
    other = compare_morphology(real, same, sample_size=150, seed=8)
    assert (first["n_reference"] == 150).all() and (first["n_other"] == 150).all()
    np.testing.assert_array_equal(first["ks_statistic"], again["ks_statistic"])
    np.testing.assert_array_equal(first["wasserstein"], again["wasserstein"])
    assert not np.array_equal(first["wasserstein"], other["wasserstein"])
    assert first.meta["sample_size"] == 150 and first.meta["seed"] == 7
    matched = compare_morphology(real, same[:250], sample_size="min")
    assert (matched["n_reference"] == 250).all() and (matched["n_other"] == 250).all()


def test_shuffled_baseline_is_a_noise_floor(populations):
    real, _, bigger = populations
    floor = shuffled_baseline(real, n_splits=12, seed=3)
    assert list(floor["statistic"]) == ["flux", "r50", "ellipticity", "concentration", "asymmetry"]
    assert (floor["n_reference"] == 200).all() and (floor["n_other"] == 200).all()
    for name in ("ks_statistic", "ks_pvalue", "wasserstein", "wasserstein_scaled"):
        assert (floor[f"{name}_std"] > 0).all(), name
    # halves of one population: KS below the α = 0.001 critical value, on average well below
    assert (floor["ks_statistic"] < ks_critical_value(200, 200)).all()
    assert floor.meta["n_splits"] == 12
    np.testing.assert_array_equal(shuffled_baseline(real, n_splits=12, seed=3)["wasserstein"], floor["wasserstein"])
    # a population with 20 % larger galaxies, at the halves' sample size, sits far above the floor in r50
    model = compare_morphology(real, bigger, sample_size=200, seed=1)
    r50 = np.flatnonzero(floor["statistic"] == "r50")[0]
    assert model["wasserstein_scaled"][r50] > floor["wasserstein_scaled"][r50] + 5 * floor["wasserstein_scaled_std"][r50]


def test_shuffled_baseline_measures_stamps_and_subsamples():
    stamps = random_galaxies(40, np.random.default_rng(6))
    floor = shuffled_baseline(stamps, n_splits=4, statistics=["r50", "flux"], sample_size=10)
    assert list(floor["statistic"]) == ["r50", "flux"]
    assert (floor["n_reference"] == 10).all()


def test_plot_morphology_overlays_histograms(populations):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, same, bigger = populations
    fig = plot_morphology({"real": real, "model": same, "bigger": bigger}, statistics=("r50", "ellipticity"))
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlabel() == "r50 [pix]"
    assert len(fig.axes[0].patches) == 3  # one step histogram per set
    _, axes = plt.subplots(1, 2)
    assert plot_morphology({"real": real}, statistics=("r50", "flux"), ax=axes) is axes[0].figure
    with pytest.raises(ValueError, match="ax must hold one axes per statistic"):
        plot_morphology({"real": real}, statistics=("r50",), ax=axes)
    plt.close("all")


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_the_argument_named():
    good = gaussian(16, 2.0)[None]
    with pytest.raises(ValueError, match=r"stamps must be \(n, H, W\).*one stamp\? pass image\[None\]"):
        measure_morphology(good[0])
    with pytest.raises(ValueError, match=r"stamps must be \(n, H, W\) or \(n, 1, H, W\)"):
        measure_morphology(np.zeros((2, 3, 16, 16)))
    with pytest.raises(ValueError, match="stamps is empty"):
        measure_morphology(np.zeros((0, 16, 16)))
    with pytest.raises(ValueError, match=r"mask must have the stamps' shape \(1, 16, 16\)"):
        measure_morphology(good, mask=np.zeros((1, 15, 16), bool))
    with pytest.raises(ValueError, match="centre must be"):
        measure_morphology(good, centre="middle")
    with pytest.raises(ValueError, match="background must be"):
        measure_morphology(good, background="sky")
    with pytest.raises(ValueError, match="background must be a number or one number per stamp"):
        measure_morphology(good, background=[0.0, 1.0])
    with pytest.raises(ValueError, match="max_radius must be a positive"):
        measure_morphology(good, max_radius=0)
    with pytest.raises(TypeError, match="stamps must be numeric"):
        measure_morphology(np.array([[["a"]]]))
    table = measure_morphology(np.concatenate([good] * 6))
    with pytest.raises(ValueError, match=r"statistics has unknown name\(s\) \['sersic_index'\]"):
        compare_morphology(table, table, statistics=("r50", "sersic_index"))
    with pytest.raises(ValueError, match="statistics has unknown"):
        shuffled_baseline(table, statistics="size")
    with pytest.raises(ValueError, match="sample_size 10 exceeds"):
        compare_morphology(table, table, sample_size=10)
    with pytest.raises(ValueError, match="sample_size must be an integer"):
        compare_morphology(table, table, sample_size="half")
    with pytest.raises(ValueError, match="labels must be two names"):
        compare_morphology(table, table, labels="real")
    with pytest.raises(ValueError, match="other: stamps is empty"):
        compare_morphology(table, np.zeros((0, 16, 16)))
    with pytest.raises(ValueError, match="n_splits must be a positive integer"):
        shuffled_baseline(table, n_splits=0)
    with pytest.raises(ValueError, match="needs at least 4 valid stamps"):
        shuffled_baseline(table[:3])
    with pytest.raises(ValueError, match="reference has no valid stamps"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_morphology(measure_morphology(np.zeros((3, 16, 16))), table)
    with pytest.raises(ValueError, match=r"reference table has no column\(s\) \['r50'\]"):
        compare_morphology(Table({"flux": [1.0, 2.0]}), table, statistics=["r50"])
