"""Cluster features: the gapper against a direct loop, per-cluster statistics against astropy/numpy applied to each
cluster alone, phase-space images and member sets against hand-placed galaxies, and the bad-input errors.

Deterministic comparisons use rtol 1e-12 (float64 round-off of sums over ≤ 40 values; the padded, vectorised code
adds in another order). Statistical checks state their tolerance where they are made.
"""
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.stats import biweight_location, biweight_scale, sigma_clip
from astropy.table import QTable, Table

from astrobayes.clusters.features import (FEATURE_NAMES, cluster_features, feature_matrix, gapper_dispersion,
                                          member_sets, phase_space_images)
from astrobayes.clusters.io import read_member_catalog, write_member_catalog

KMS = u.km / u.s
SIZES = {"c": 12, "a": 7, "b": 1, "d": 2, "e": 40}   # b and d have fewer than min_members = 3


def gapper_loop(x) -> float:
    """σ_G = √π / (n(n−1)) Σ_{i=1}^{n−1} i (n−i) (x_(i+1) − x_(i)), written out with a plain loop."""
    x = sorted(float(v) for v in x)
    n = len(x)
    total = 0.0
    for i in range(1, n):
        total += i * (n - i) * (x[i] - x[i - 1])
    return np.sqrt(np.pi) * total / (n * (n - 1))


def hand_built_members(id_kind: str = "str", seed: int = 0) -> QTable:
    """Five clusters of 12, 7, 1, 2 and 40 galaxies, rows shuffled, ids strings or (unsorted) ints."""
    rng = np.random.default_rng(seed)
    names = np.repeat(list(SIZES), list(SIZES.values()))
    ids = names if id_kind == "str" else np.array([{"c": 30, "a": -2, "b": 5, "d": 100, "e": 7}[k] for k in names])
    n = ids.size
    velocity = rng.normal(0.0, 600.0, n) + np.repeat(rng.normal(0, 300, len(SIZES)), list(SIZES.values()))
    velocity[np.flatnonzero(names == "e")[:2]] = [4000.0, -3500.0]  # interloper-like outliers in the big cluster
    table = QTable({"cluster_id": ids, "galaxy_id": np.arange(n), "R_proj": rng.uniform(0.0, 1.5, n) * u.Mpc,
                    "v_los": velocity * KMS})
    return table[rng.permutation(n)]


def quiet_features(members, **kwargs):
    """cluster_features with the expected too-few-members warning (and astropy's NaN-padding notice) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cluster_features(members, **kwargs)


# ------------------------------------------------------------------ gapper
def test_gapper_matches_a_direct_loop_on_small_random_samples():
    rng = np.random.default_rng(1)
    for n in [2, 3, 4, 5, 7, 10, 16, 33]:
        for _ in range(5):
            x = rng.normal(100.0, 400.0, n) if n % 2 else rng.standard_cauchy(n) * 300.0
            sigma = gapper_dispersion(x * KMS)
            assert sigma.unit == KMS
            assert sigma.value == pytest.approx(gapper_loop(x), rel=1e-12)


def test_gapper_of_two_values_and_units():
    # n = 2: √π / 2 · |x₂ − x₁|
    assert gapper_dispersion([100.0, -300.0]).value == pytest.approx(np.sqrt(np.pi) / 2 * 400.0, rel=1e-15)
    # plain numbers are km/s; m/s are converted; order does not matter
    x = np.array([120.0, -40.0, 310.0, 5.0])
    assert gapper_dispersion(x * 1000 * u.m / u.s).value == pytest.approx(gapper_loop(x), rel=1e-13)
    assert gapper_dispersion(x[::-1]).value == pytest.approx(gapper_loop(x), rel=1e-13)
    # shift invariant, scale equivariant
    assert gapper_dispersion(x + 1e4).value == pytest.approx(gapper_loop(x), rel=1e-10)
    assert gapper_dispersion(3 * x).value == pytest.approx(3 * gapper_loop(x), rel=1e-13)


def test_gapper_is_unbiased_for_gaussian_samples_of_ten():
    # Σ i(n−i) gᵢ is the sum of all pairwise |xᵢ − xⱼ|, and E|X − Y| = 2σ/√π for Gaussians, so E[σ_G] = σ exactly
    # at any n. 4000 replicate samples of n = 10: the mean is within 5 of its standard errors (estimated from the
    # replicates' own scatter, ≈ 0.0039σ), i.e. a 6e-7 two-sided chance of a false failure.
    rng = np.random.default_rng(2)
    sigma = 500.0
    draws = np.array([gapper_dispersion(rng.normal(0.0, sigma, 10)).value for _ in range(4000)]) / sigma
    standard_error = draws.std(ddof=1) / np.sqrt(draws.size)
    assert abs(draws.mean() - 1.0) < 5 * standard_error


def test_gapper_of_a_large_gaussian_sample_is_close_to_sigma():
    # Var(σ_G) ≈ σ²/(2n · 0.978) (the gapper's asymptotic efficiency relative to the standard deviation is 97.8%
    # for Gaussians), so for n = 20000 its standard error is 0.0051σ; allow 5 of them.
    rng = np.random.default_rng(3)
    n, sigma = 20000, 750.0
    estimate = gapper_dispersion(rng.normal(40.0, sigma, n)).value
    assert abs(estimate / sigma - 1) < 5 / np.sqrt(2 * n * 0.978)


def test_gapper_needs_two_finite_values():
    with pytest.raises(ValueError, match="at least two finite values"):
        gapper_dispersion([1.0])
    with pytest.raises(ValueError, match="at least two finite values"):
        gapper_dispersion([1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="velocity must be in km/s"):
        gapper_dispersion([1.0, 2.0] * u.Mpc)


# ------------------------------------------------------------------ cluster_features
@pytest.mark.filterwarnings("ignore:Input data contains invalid values:astropy.utils.exceptions.AstropyUserWarning")
@pytest.mark.parametrize("id_kind", ["str", "int"])
def test_cluster_features_per_cluster_statistics(id_kind):
    members = hand_built_members(id_kind)
    with pytest.warns(UserWarning, match=r"2 of 5 cluster\(s\) have fewer than 3 members") as record:
        features = cluster_features(members)
    ids = np.asarray(members["cluster_id"])
    expected_ids = sorted(set(ids.tolist()))
    assert features["cluster_id"].tolist() == expected_ids  # sorted by cluster_id, one row per cluster
    small = [k for k in expected_ids if (ids == k).sum() < 3]
    message = next(str(w.message) for w in record if "fewer than" in str(w.message))
    assert f"cluster_id {small[0]}, {small[1]}" in message
    for row in features:
        in_cluster = ids == row["cluster_id"]
        v = members["v_los"][in_cluster].to_value(KMS)
        r = members["R_proj"][in_cluster].to_value(u.Mpc)
        assert row["n_members"] == in_cluster.sum()
        if in_cluster.sum() < 3:  # kept, NaN statistics, flagged
            assert row["flags"] == "too_few_members"
            for name in ("v_center", "sigma_gapper", "sigma_biweight", "R_mean", "R_median", "R_std",
                         "high_velocity_fraction"):
                assert np.isnan(u.Quantity(row[name]).value), name
            continue
        assert row["flags"] == ""
        center = biweight_location(v)
        assert row["v_center"].to_value(KMS) == pytest.approx(center, rel=1e-12)
        assert row["sigma_gapper"].to_value(KMS) == pytest.approx(gapper_dispersion(v * KMS).value, rel=1e-12)
        assert row["sigma_gapper"].to_value(KMS) == pytest.approx(gapper_loop(v), rel=1e-12)
        assert row["sigma_biweight"].to_value(KMS) == pytest.approx(
            biweight_scale(v, M=center, modify_sample_size=True), rel=1e-12)
        assert row["R_mean"].to_value(u.Mpc) == pytest.approx(np.mean(r), rel=1e-12)
        assert row["R_median"].to_value(u.Mpc) == pytest.approx(np.median(r), rel=1e-12)
        assert row["R_std"].to_value(u.Mpc) == pytest.approx(np.std(r, ddof=1), rel=1e-12)
        far = np.abs(v - center) > 2.0 * gapper_loop(v)
        assert row["high_velocity_fraction"] == pytest.approx(far.mean(), abs=1e-15)
        clipped = sigma_clip(v, sigma=3.0, maxiters=10, masked=True).std(ddof=1)
        assert row["sigma_clipped"].to_value(KMS) == pytest.approx(clipped, rel=1e-12)
    assert features.meta["min_members"] == 3


def test_clusters_with_exactly_min_members_are_computed():
    members = hand_built_members()
    features = quiet_features(members, min_members=2)
    row = features[features["cluster_id"] == "d"][0]  # 2 members: a dispersion is defined
    v = members["v_los"][members["cluster_id"] == "d"].to_value(KMS)
    assert row["flags"] == "" and row["sigma_gapper"].to_value(KMS) == pytest.approx(gapper_loop(v), rel=1e-12)
    assert features["flags"].tolist().count("too_few_members") == 1  # only the single-galaxy cluster b


@pytest.mark.parametrize("bad", [1, 0, -3, True, False, 2.0, 3.5, "3", None])
def test_min_members_must_be_an_integer_of_at_least_two(bad):
    with pytest.raises(ValueError, match="min_members must be an integer"):
        cluster_features(hand_built_members(), min_members=bad)


def test_dispersions_are_invariant_to_velocity_shifts():
    members = hand_built_members()
    shifted = members.copy()
    # one constant for all, plus a different offset per cluster (recentring is per cluster)
    offsets = {"a": 1234.5, "b": -50.0, "c": -8000.25, "d": 0.0, "e": 333.0}
    shifts = np.array([1000.0 + offsets[k] for k in shifted["cluster_id"]])
    shifted["v_los"] = shifted["v_los"] + shifts * KMS
    before, after = quiet_features(members), quiet_features(shifted)
    ok = before["flags"] == ""
    names = [n for n in ("sigma_gapper", "sigma_biweight", "sigma_clipped") if n in before.colnames]
    for name in names:
        # the shifts are < 10⁴ km/s on dispersions of ~600 km/s: round-off of order 1e-16 · 10⁴/600 per value
        np.testing.assert_allclose(after[name][ok].value, before[name][ok].value, rtol=1e-10)
    np.testing.assert_allclose(after["v_center"][ok].value - before["v_center"][ok].value,
                               [1000.0 + offsets[k] for k in before["cluster_id"][ok]], rtol=1e-10)
    np.testing.assert_array_equal(after["high_velocity_fraction"], before["high_velocity_fraction"])
    np.testing.assert_array_equal(after["R_mean"], before["R_mean"])


def test_row_order_of_the_input_does_not_matter():
    members = hand_built_members()
    again = members[np.random.default_rng(9).permutation(len(members))]
    a, b = quiet_features(members), quiet_features(again)
    for name in a.colnames:
        if name in ("cluster_id", "flags"):
            assert a[name].tolist() == b[name].tolist()
        else:
            np.testing.assert_allclose(u.Quantity(a[name]).value, u.Quantity(b[name]).value, rtol=1e-12)


def test_clean_data_gives_no_warnings():
    members = hand_built_members()
    members = members[np.isin(members["cluster_id"], ["a", "c", "e"])]  # all ≥ min_members: nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cluster_features(members)


# ------------------------------------------------------------------ feature_matrix
def test_feature_matrix_columns_and_nan_rows():
    features = quiet_features(hand_built_members())
    matrix = feature_matrix(features)
    assert matrix.shape == (len(features), len(FEATURE_NAMES))
    assert len(FEATURE_NAMES) == 8
    flagged = features["flags"] == "too_few_members"
    assert np.isnan(matrix[flagged]).all() and np.isfinite(matrix[~flagged]).all()
    for j, name in enumerate(FEATURE_NAMES):
        source = name.removeprefix("log_")
        values = u.Quantity(features[source][~flagged])
        values = values.to_value(KMS if values.unit.is_equivalent(KMS) else
                                 u.Mpc if values.unit.is_equivalent(u.Mpc) else u.one)
        expected = np.log10(values) if name.startswith("log_") else values
        np.testing.assert_allclose(matrix[~flagged, j], expected, rtol=1e-14, err_msg=name)
    assert FEATURE_NAMES[:3] == ("log_n_members", "log_sigma_gapper", "log_sigma_biweight")


def test_feature_matrix_uses_fixed_units():
    features = quiet_features(hand_built_members())
    converted = features.copy()
    converted["sigma_gapper"] = converted["sigma_gapper"].to(u.m / u.s)
    converted["R_mean"] = converted["R_mean"].to(u.kpc)
    np.testing.assert_allclose(feature_matrix(converted), feature_matrix(features), rtol=1e-14)


def test_feature_matrix_names_missing_columns():
    features = quiet_features(hand_built_members())
    features.remove_column("sigma_biweight")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['sigma_biweight'\]"):
        feature_matrix(features)


# ------------------------------------------------------------------ phase-space images
def test_phase_space_images_sum_to_the_galaxy_count_in_cluster_features_order():
    # grid: 2 Mpc / 24 px = 1/12 Mpc per column, 6000 km/s / 24 px = 250 km/s per row. Galaxies sit ≥ 6 pixels from
    # every edge after recentring on the median (R in [0.5, 1.5] Mpc; |v − median| ≤ 1400 < 3000 − 6·250 km/s), so
    # a unit Gaussian kernel sampled at pixel centres sums to 1 up to the tails beyond the grid (P(|Z| > 5.5) ≈ 4e-8)
    # and the Poisson-summation aliasing 2·exp(−2π²) ≈ 5e-9 per axis; the float32 output adds ~1e-7 relative.
    rng = np.random.default_rng(4)
    counts = {"zeta": 5, "alpha": 17, "mid": 1, "beta": 9}
    ids = np.repeat(list(counts), list(counts.values()))
    members = QTable({"cluster_id": ids, "R_proj": rng.uniform(0.5, 1.5, ids.size) * u.Mpc,
                      "v_los": (rng.uniform(-700.0, 700.0, ids.size) + 9000.0 * (ids == "beta")) * KMS})
    members = members[rng.permutation(len(members))]
    images = phase_space_images(members, aperture=2.0 * u.Mpc, v_cut=3000.0 * KMS)
    assert images.shape == (4, 1, 24, 24) and images.dtype == np.float32
    order = quiet_features(members)["cluster_id"].tolist()
    assert order == sorted(counts)
    np.testing.assert_allclose(images.sum(axis=(1, 2, 3), dtype=np.float64), [counts[k] for k in order], rtol=1e-6)
    assert (images >= 0).all()


def test_phase_space_image_of_one_galaxy_peaks_at_its_pixel_and_respects_shape():
    # one cluster of three galaxies at the same place: after recentring v = 0, the centre of the v axis
    members = QTable({"cluster_id": [1, 1, 1], "R_proj": [0.8, 0.8, 0.8] * u.Mpc,
                      "v_los": [500.0, 500.0, 500.0] * KMS})
    images = phase_space_images(members, shape=(10, 16), aperture=2.0 * u.Mpc, v_cut=2500.0 * KMS)
    assert images.shape == (1, 1, 10, 16)
    image = images[0, 0]
    row, column = np.unravel_index(np.argmax(image), image.shape)
    assert column == 6                                        # R = 0.8 Mpc = 6.4 columns of 0.125 Mpc
    assert row in (4, 5)                                      # v = 0 is the boundary between rows 4 and 5 of 10
    np.testing.assert_allclose(image[4], image[5], rtol=1e-6)  # ... and the kernel is symmetric about it
    # without recentring the galaxies sit at v = +500 km/s, one 500-km/s row above the middle
    raw = phase_space_images(members, shape=(10, 16), aperture=2.0 * u.Mpc, v_cut=2500.0 * KMS, recenter=False)[0, 0]
    np.testing.assert_allclose(raw[5], raw[6], rtol=1e-6)
    assert np.argmax(raw.sum(axis=1)) in (5, 6)


def test_a_galaxy_at_zero_radius_keeps_half_its_kernel():
    # pixel centres are at (k + 1/2) pixels, so a galaxy at R = 0 sees the Gaussian at ±1/2, ±3/2, ...: exactly half
    # of the sampled kernel lies at R ≥ 0 by symmetry (the velocity axis is far from its edges)
    members = QTable({"cluster_id": [1, 1], "R_proj": [0.0, 0.0] * u.Mpc, "v_los": [0.0, 0.0] * KMS})
    images = phase_space_images(members)
    assert images.sum(dtype=np.float64) == pytest.approx(2 * 0.5, rel=1e-6)


def test_phase_space_images_bad_arguments():
    members = hand_built_members()
    with pytest.raises(ValueError, match="shape must be two integers"):
        phase_space_images(members, shape=(1, 24))
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        phase_space_images(members, bandwidth=0.0)
    with pytest.raises(ValueError, match="aperture and v_cut must be positive"):
        phase_space_images(members, aperture=0 * u.Mpc)
    with pytest.raises(ValueError, match="aperture must be a length"):
        phase_space_images(members, aperture=1000 * KMS)


# ------------------------------------------------------------------ member sets
def test_member_sets_hold_every_galaxy_scaled_by_the_cylinder():
    members = hand_built_members()
    aperture, v_cut = 2.0 * u.Mpc, 4000.0 * KMS
    sets = member_sets(members, aperture=aperture, v_cut=v_cut)
    order = quiet_features(members)["cluster_id"].tolist()
    values, mask = sets.values.numpy(), sets.mask.numpy()
    assert values.shape == (len(order), max(SIZES.values()), 2) and values.dtype == np.float32
    np.testing.assert_array_equal(mask.sum(axis=1), [SIZES[k] for k in order])
    for i, key in enumerate(order):
        in_cluster = members["cluster_id"] == key
        r = members["R_proj"][in_cluster].to_value(u.Mpc)
        v = members["v_los"][in_cluster].to_value(KMS)
        # float32 storage: compare at 1e-6 relative (plus 1e-7 absolute for velocities near the median)
        np.testing.assert_allclose(np.sort(values[i, mask[i], 0]), np.sort(r / 2.0), rtol=1e-6)
        np.testing.assert_allclose(np.sort(values[i, mask[i], 1]), np.sort((v - np.median(v)) / 4000.0),
                                   rtol=1e-6, atol=1e-7)
        assert (values[i, ~mask[i]] == 0).all()  # padding is zero and masked out


def test_member_sets_max_members_caps_the_length_with_a_seeded_subsample():
    members = hand_built_members()
    sets = member_sets(members, max_members=10, seed=1)
    order = quiet_features(members)["cluster_id"].tolist()
    values, mask = sets.values.numpy(), sets.mask.numpy()
    assert values.shape == (len(order), 10, 2)
    np.testing.assert_array_equal(mask.sum(axis=1), [min(SIZES[k], 10) for k in order])
    big = order.index("e")
    in_e = members["cluster_id"] == "e"
    r_all = members["R_proj"][in_e].to_value(u.Mpc) / 1.6            # default aperture 1.6 Mpc
    chosen = values[big, mask[big], 0]
    # each drawn galaxy is one of the cluster's own (float32 rounding: 1e-6 relative)
    assert all(np.isclose(r_all, x, rtol=1e-6, atol=0).sum() >= 1 for x in chosen)
    assert len(set(np.round(chosen, 6))) == 10                        # without replacement
    # velocities are centred on the median of *all* the cluster's galaxies, not of the subsample
    v_all = members["v_los"][in_e].to_value(KMS)
    centred = (v_all - np.median(v_all)) / 2500.0                      # default v_cut 2500 km/s
    assert all(np.isclose(centred, x, rtol=1e-6, atol=1e-7).any() for x in values[big, mask[big], 1])
    again = member_sets(members, max_members=10, seed=1)
    other = member_sets(members, max_members=10, seed=2)
    assert np.array_equal(again.values.numpy(), values)
    assert not np.array_equal(other.values.numpy()[big], values[big])
    with pytest.raises(ValueError, match="max_members must be a positive integer"):
        member_sets(members, max_members=0)
    with pytest.raises(ValueError, match="max_members must be a positive integer"):
        member_sets(members, max_members=True)


# ------------------------------------------------------------------ bad input
ALL = [cluster_features, phase_space_images, member_sets]


@pytest.mark.parametrize("function", ALL)
def test_a_plain_table_without_units_is_refused(function):
    table = Table({"cluster_id": [1, 1, 1], "R_proj": [0.1, 0.2, 0.3], "v_los": [10.0, -20.0, 5.0]})
    with pytest.raises(ValueError, match="column 'R_proj' must be a Quantity in Mpc"):
        function(table)
    # a Table whose columns carry units is as good as a QTable
    with_units = Table({"cluster_id": [1, 1, 1], "R_proj": [0.1, 0.2, 0.3] * u.Mpc,
                        "v_los": [10.0, -20.0, 5.0] * u.km / u.s})
    function(with_units)
    with pytest.raises(ValueError, match="column 'v_los' must be a Quantity in km / s"):
        function(QTable({"cluster_id": [1, 1, 1], "R_proj": [0.1, 0.2, 0.3] * u.Mpc, "v_los": [10.0, -20.0, 5.0]}))


@pytest.mark.parametrize("function", ALL)
def test_missing_or_wrong_columns_are_named(function):
    members = hand_built_members()
    without = members.copy()
    without.remove_column("v_los")
    with pytest.raises(ValueError, match=r"members has no 'v_los' column"):
        function(without)
    wrong = members.copy()
    wrong["R_proj"] = wrong["R_proj"].value * KMS
    with pytest.raises(ValueError, match="column 'R_proj' must be a Quantity in Mpc"):
        function(wrong)
    with pytest.raises(ValueError, match="members is empty"):
        function(members[:0])
    nan = members.copy()
    nan["v_los"][0] = np.nan * KMS
    with pytest.raises(ValueError, match="column .v_los. has NaN, inf or masked values"):
        function(nan)
    with pytest.raises(TypeError, match="got DataFrame"):
        function(members.to_pandas())


def test_features_of_a_catalog_read_back_from_fits(tmp_path):
    members = hand_built_members("int")
    members = members[members["cluster_id"] != 5]  # no clusters below min_members
    path = tmp_path / "members.fits"
    write_member_catalog(members, path)
    back = read_member_catalog(path)
    np.testing.assert_allclose(quiet_features(back)["sigma_gapper"].value,
                               quiet_features(members)["sigma_gapper"].value, rtol=1e-12)


def test_unit_and_frame_mistakes_and_duplicates_are_named():
    members = hand_built_members()
    in_metres = members.copy()
    in_metres["v_los"] = members["v_los"].to_value(KMS) * 1000 * KMS  # m/s numbers labelled km/s
    with pytest.raises(ValueError, match="v_los.*m/s labelled km/s"):
        cluster_features(in_metres)
    negative = members.copy()
    negative["R_proj"][0] = -0.1 * u.Mpc
    with pytest.raises(ValueError, match="R_proj.*negative"):
        cluster_features(negative)
    from astropy.table import vstack
    doubled = vstack([members, members])
    doubled["galaxy_id"] = np.concatenate([np.arange(len(members))] * 2)
    with pytest.raises(ValueError, match="galaxy_id.*twice within a cluster"):
        cluster_features(doubled)
