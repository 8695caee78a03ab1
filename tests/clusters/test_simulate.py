"""Mock clusters and halo relations: seeded reproducibility, the cylinder cut, the NFW and mass-function samplers
against analytic CDFs, the published normalisations, velocity dispersions and interloper fractions, bad input.

KS tests run at fixed seeds with the threshold p > 1e-3: with a correct sampler p is uniform, so a given seed fails
with probability 1e-3 (once chosen it passes or fails for good), while a real error in a sampler of 20000 draws (a
wrong normalisation, radii in the wrong unit) moves the KS distance far beyond 1.95/√n and p far below 1e-3. Other
statistical tolerances are stated where they are used.
"""
import astropy.constants as const
import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM
from scipy import stats
from scipy.integrate import quad, trapezoid
from scipy.special import expn

from astrobayes.clusters.halos import (MassFunction, RichnessMassRelation, concentration_duffy08, r200c,
                                       velocity_dispersion_evrard08)
from astrobayes.clusters.simulate import sample_nfw_radii, simulate_clusters

KMS = u.km / u.s


def nfw_m(x):
    """The NFW enclosed-mass shape m(x) = ln(1+x) − x/(1+x)."""
    x = np.asarray(x, dtype=float)
    return np.log1p(x) - x / (1 + x)


def tables_equal(a, b) -> bool:
    return a.colnames == b.colnames and all(np.array_equal(np.asarray(a[c]), np.asarray(b[c])) for c in a.colnames)


# ------------------------------------------------------------------ simulate_clusters: reproducibility and cuts
def test_same_seed_gives_the_same_tables_and_another_seed_does_not():
    members_1, clusters_1 = simulate_clusters(6, seed=11)
    members_2, clusters_2 = simulate_clusters(6, seed=11)
    members_3, clusters_3 = simulate_clusters(6, seed=12)
    assert tables_equal(members_1, members_2) and tables_equal(clusters_1, clusters_2)
    assert not tables_equal(clusters_1, clusters_3)
    assert len(members_1) != len(members_3) or not np.array_equal(members_1["v_los"], members_3["v_los"])
    assert members_1.meta["simulation"]["seed"] == 11


def test_output_columns_units_and_bookkeeping():
    members, clusters = simulate_clusters(8, seed=5)
    assert members.colnames == ["cluster_id", "galaxy_id", "R_proj", "v_los", "is_member"]
    assert members["R_proj"].unit == u.Mpc and members["v_los"].unit == KMS
    assert clusters["sigma_v"].unit == KMS and clusters["r200c"].unit == u.Mpc
    assert clusters["cluster_id"].tolist() == list(range(8))
    np.testing.assert_array_equal(np.unique(members["galaxy_id"]), np.arange(len(members)))
    # the truth counts are those of the member table
    ids, is_member = np.asarray(members["cluster_id"]), np.asarray(members["is_member"])
    np.testing.assert_array_equal(clusters["n_members"], np.bincount(ids[is_member], minlength=8))
    np.testing.assert_array_equal(clusters["n_interlopers"], np.bincount(ids[~is_member], minlength=8))
    assert ((clusters["log_mass"] >= 13.3) & (clusters["log_mass"] <= 15.7)).all()  # TRAINING_MASS_FUNCTION
    np.testing.assert_allclose(clusters["r200c"].value, r200c(clusters["log_mass"]).value, rtol=1e-14)


@pytest.mark.parametrize("aperture, v_cut", [(0.8 * u.Mpc, 1200.0 * KMS), (900.0 * u.kpc, 3.0e6 * u.m / u.s),
                                             (1.6, 2500.0)])
def test_cylinder_selection(aperture, v_cut):
    members, _ = simulate_clusters(40, seed=7, aperture=aperture, v_cut=v_cut, velocity_error=50.0 * KMS)
    aperture_mpc = u.Quantity(aperture, u.Mpc).to_value(u.Mpc)
    v_cut_kms = u.Quantity(v_cut, KMS).to_value(KMS)
    assert (members["R_proj"].to_value(u.Mpc) <= aperture_mpc).all()
    assert (np.abs(members["v_los"].to_value(KMS)) <= v_cut_kms).all()
    assert (members["R_proj"].value >= 0).all()
    # the cut does bite: galaxies come close to both edges (40 clusters of ~40 galaxies fill the cylinder)
    assert members["R_proj"].to_value(u.Mpc).max() > 0.9 * aperture_mpc
    assert np.abs(members["v_los"].to_value(KMS)).max() > 0.9 * v_cut_kms
    assert members.meta["simulation"]["aperture_Mpc"] == pytest.approx(aperture_mpc)
    assert members.meta["simulation"]["v_cut_km_s"] == pytest.approx(v_cut_kms)


# ------------------------------------------------------------------ NFW radii
def test_nfw_radii_follow_the_truncated_nfw_cdf():
    rng = np.random.default_rng(20240601)
    n, x_max = 20000, 8.0
    x = sample_nfw_radii(np.full(n, x_max), rng)
    assert x.shape == (n,) and (x > 0).all() and (x <= x_max).all()
    result = stats.kstest(x, lambda t: nfw_m(np.clip(t, 0, x_max)) / nfw_m(x_max))
    assert result.pvalue > 1e-3, result


def test_nfw_radii_with_a_different_truncation_per_draw():
    # m(x)/m(x_max) of each draw is uniform on [0, 1] whatever its own x_max (probability integral transform)
    rng = np.random.default_rng(7)
    x_max = rng.uniform(0.5, 30.0, 20000)
    x = sample_nfw_radii(x_max, rng)
    assert (x <= x_max).all()
    assert stats.kstest(nfw_m(x) / nfw_m(x_max), "uniform").pvalue > 1e-3
    # the median of m(x)/m(x_max) is 1/2: the half-mass radius, solved here by bisection, splits the draws evenly;
    # binomial standard error of a fraction from 20000 draws is 0.0035, allow 5 of them
    one = sample_nfw_radii(np.full(20000, 10.0), np.random.default_rng(8))
    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if nfw_m(mid) < 0.5 * nfw_m(10.0) else (lo, mid)
    assert abs((one < lo).mean() - 0.5) < 5 * 0.0035


# ------------------------------------------------------------------ mass function
def schechter_cdf(log_mass, slope, log_mass_star, low, high):
    """CDF of p(log10 M) ∝ x^(−α) e^(−x), x = M/M*: ∫ x^(−α−1) e^(−x) dx = Γ(−α, ·), Γ(−α, x) = x^(−α) E_{1+α}(x)."""
    def upper(x):  # integer 1 + α only
        return x ** (-slope) * expn(round(1 + slope), x)

    x_low, x_high = 10.0 ** (low - log_mass_star), 10.0 ** (high - log_mass_star)
    x = 10.0 ** (np.clip(log_mass, low, high) - log_mass_star)
    return (upper(x_low) - upper(x)) / (upper(x_low) - upper(x_high))


@pytest.mark.parametrize("slope", [1.0, 0.0])
def test_schechter_mass_function_is_normalised_and_sampled_correctly(slope):
    hmf = MassFunction(slope=slope)
    grid = hmf.grid()
    assert grid[0] == 13.5 and grid[-1] == 15.5
    # the package normalises with a trapezoid on its own grid: that trapezoid is 1 to round-off, and adaptive
    # quadrature of the same density agrees to the trapezoid's O(h²) error (h = 5e-4 dex: < 1e-6)
    assert trapezoid(np.exp(hmf.log_prob(grid)), grid) == pytest.approx(1.0, abs=1e-12)
    assert quad(lambda m: np.exp(hmf.log_prob(m)), 13.5, 15.5, epsabs=1e-12)[0] == pytest.approx(1.0, abs=1e-6)
    # the shape is the Schechter form: differences of log p are −α Δln x − Δx
    m1, m2 = 13.7, 15.1
    x1, x2 = 10 ** (m1 - 14.8), 10 ** (m2 - 14.8)
    assert hmf.log_prob(m2) - hmf.log_prob(m1) == pytest.approx(-slope * np.log(x2 / x1) - (x2 - x1), rel=1e-12)
    assert np.isneginf(hmf.log_prob([13.49, 15.51])).all()
    draws = hmf.sample(20000, np.random.default_rng(99))
    assert ((draws >= 13.5) & (draws <= 15.5)).all()
    result = stats.kstest(draws, lambda m: schechter_cdf(m, slope, 14.8, 13.5, 15.5))
    assert result.pvalue > 1e-3, result
    # the analytic CDF is the one the density integrates to (checks the helper above, not the package)
    assert schechter_cdf(14.5, slope, 14.8, 13.5, 15.5) == pytest.approx(
        quad(lambda m: np.exp(hmf.log_prob(m)), 13.5, 14.5, epsabs=1e-12)[0], abs=1e-6)


def test_default_mass_function_falls_steeply():
    hmf = MassFunction()
    # the module says counts per 0.25 dex drop by about three decades from 10^13.5 to 10^15.5
    drop = hmf.log_prob(13.625) - hmf.log_prob(15.375)
    assert 2.5 < drop / np.log(10) < 3.5


def test_flat_mass_function_is_uniform():
    hmf = MassFunction(kind="flat", log_mass_range=(14.0, 15.0))
    np.testing.assert_allclose(hmf.log_prob([14.0, 14.3, 15.0]), 0.0, atol=1e-12)  # log(1 / 1 dex)
    wide = MassFunction(kind="flat", log_mass_range=(13.0, 16.0))
    np.testing.assert_allclose(wide.log_prob([13.0, 15.9]), -np.log(3.0), rtol=1e-12)
    draws = hmf.sample(20000, np.random.default_rng(3))
    assert stats.kstest(draws, "uniform", args=(14.0, 1.0)).pvalue > 1e-3
    assert MassFunction(**hmf.to_dict()) == hmf


def test_mass_function_errors():
    with pytest.raises(ValueError, match="kind must be 'schechter' or 'flat'"):
        MassFunction(kind="tinker")
    with pytest.raises(ValueError, match="low < high"):
        MassFunction(log_mass_range=(15.0, 14.0))
    with pytest.raises(ValueError, match="outside 10–17.*not masses"):
        MassFunction(log_mass_range=(1e13, 1e15))
    with pytest.raises(ValueError, match="outside 10–17"):
        MassFunction(log_mass_range=(9.0, 12.0))
    with pytest.raises(ValueError, match="two numbers"):
        MassFunction(log_mass_range=(14.0,))
    with pytest.raises(ValueError, match="finite"):
        MassFunction(log_mass_range=(14.0, np.inf))
    with pytest.raises(TypeError, match="slope must be a number"):
        MassFunction(slope="1")
    with pytest.raises(ValueError, match="log_mass_star must be a finite"):
        MassFunction(log_mass_star=np.nan)


# ------------------------------------------------------------------ halo relations
@pytest.mark.parametrize("h", [0.7, 1.0, 0.6774])
def test_r200c_encloses_200_times_the_critical_density(h):
    log_mass = np.array([13.5, 14.5, 15.5])
    radius = r200c(log_mass, h=h)
    assert radius.unit == u.Mpc
    rho_crit = 3 * (100 * h * KMS / u.Mpc) ** 2 / (8 * np.pi * const.G)
    mass = (200 * rho_crit * 4 * np.pi / 3 * radius**3).to_value(u.M_sun)
    np.testing.assert_allclose(np.log10(mass), log_mass, rtol=1e-13)
    # astropy's own critical density (any Ω: ρ_c at z = 0 depends on H0 only)
    rho_astropy = FlatLambdaCDM(H0=100 * h, Om0=0.3).critical_density0
    np.testing.assert_allclose((200 * rho_astropy * 4 * np.pi / 3 * radius**3).to_value(u.M_sun), 10**log_mass,
                               rtol=1e-10)
    # R ∝ M^(1/3)
    assert (r200c(15.0, h=h) / r200c(12.0, h=h)).value == pytest.approx(10.0, rel=1e-12)


def test_published_normalisations():
    for h in (0.7, 1.0):
        # Evrard et al. (2008): σ_DM = 1082.9 km/s at M200c = 1e15 h⁻¹ M_sun, slope 0.3361
        sigma = velocity_dispersion_evrard08(15.0 - np.log10(h), h=h)
        assert sigma.unit == KMS and sigma.value == pytest.approx(1082.9, rel=1e-12)
        ratio = velocity_dispersion_evrard08(15.3 - np.log10(h), h=h) / sigma
        assert ratio.value == pytest.approx(10 ** (0.3 * 0.3361), rel=1e-12)
        # Duffy et al. (2008), full sample at z = 0: c200 = 5.71 at 2e12 h⁻¹ M_sun, slope −0.084
        assert concentration_duffy08(np.log10(2e12 / h), h=h) == pytest.approx(5.71, rel=1e-12)
        assert concentration_duffy08(np.log10(2e14 / h), h=h) == pytest.approx(5.71 * 100**-0.084, rel=1e-12)


def test_richness_mass_relation():
    relation = RichnessMassRelation(log_norm=np.log(30.0), slope=1.1, scatter=0.3, pivot_log_mass=14.5)
    assert relation.mean_ln_richness(14.5) == pytest.approx(np.log(30.0), rel=1e-14)
    assert relation.mean_ln_richness(15.5) - relation.mean_ln_richness(14.5) == pytest.approx(1.1 * np.log(10))
    ln_lambda = np.log(relation.sample(np.full(20000, 15.0), np.random.default_rng(0)))
    # 20000 log-normal draws: standard errors scatter/√n = 0.0021 on the mean and scatter/√(2n) = 0.0015 on the
    # standard deviation; allow 5 of each
    assert abs(ln_lambda.mean() - relation.mean_ln_richness(15.0)) < 5 * 0.3 / np.sqrt(20000)
    assert abs(ln_lambda.std(ddof=1) - 0.3) < 5 * 0.3 / np.sqrt(2 * 20000)
    assert RichnessMassRelation(**relation.to_dict()) == relation
    with pytest.raises(ValueError, match="scatter must be a finite positive"):
        RichnessMassRelation(scatter=0.0)
    with pytest.raises(TypeError, match="slope must be a number"):
        RichnessMassRelation(slope=True)


# ------------------------------------------------------------------ velocities and interlopers
# a cylinder that keeps every member (no truncation of R or v), no interlopers, no σ scatter, many members
WIDE = {"interloper_ratio": 0.0, "velocity_scatter": 0.0, "members_at_pivot": 2000.0, "aperture": 100.0 * u.Mpc,
        "v_cut": 1e5 * KMS, "sampling": "richness"}


def test_member_velocities_have_the_evrard_dispersion():
    log_mass = np.full(10, 14.5)
    members, clusters = simulate_clusters(log_mass=log_mass, anisotropy=0.0, seed=21, **WIDE)
    sigma = velocity_dispersion_evrard08(14.5).to_value(KMS)
    np.testing.assert_allclose(clusters["sigma_v"].to_value(KMS), sigma, rtol=1e-14)  # velocity_scatter = 0
    assert members["is_member"].all() and members.meta["simulation"]["mass_function"] == "given"
    v = members["v_los"].to_value(KMS)
    assert v.size > 15000
    # isotropic Gaussian velocities: the sample standard deviation has standard error σ/√(2N) (≈ 0.5% here);
    # allow 5 of them
    assert abs(v.std(ddof=1) / sigma - 1) < 5 / np.sqrt(2 * v.size)
    assert abs(v.mean()) < 5 * sigma / np.sqrt(v.size)
    # per cluster too, with a per-cluster tolerance (≈ 1.6% standard error each)
    for k in range(10):
        vk = v[members["cluster_id"] == k]
        assert abs(vk.std(ddof=1) / sigma - 1) < 5 / np.sqrt(2 * vk.size)


def test_velocity_bias_scales_the_dispersion_exactly():
    _, plain = simulate_clusters(log_mass=[14.0, 15.0], seed=1, velocity_bias=1.0)
    _, biased = simulate_clusters(log_mass=[14.0, 15.0], seed=1, velocity_bias=1.2)
    np.testing.assert_allclose(biased["sigma_v"].value, 1.2 * plain["sigma_v"].value, rtol=1e-14)


@pytest.mark.parametrize("beta", [-1.0, 0.5, 0.9])
def test_anisotropic_orbits_keep_the_one_dimensional_dispersion(beta):
    # σ_los² = σ_r² (μ² + (1−β)(1−μ²)) with μ uniform in [−1, 1], so ⟨σ_los²⟩ = σ_r² (3−2β)/3 = σ² when
    # σ_r² = 3σ²/(3−2β). v is a scale mixture of Gaussians, not Gaussian: the standard error of mean(v²) is taken
    # from the sample itself, std(v²)/√N (≈ 0.7% of σ²); allow 5 of them.
    members, _ = simulate_clusters(log_mass=np.full(10, 14.5), anisotropy=beta, seed=22, **WIDE)
    sigma = velocity_dispersion_evrard08(14.5).to_value(KMS)
    v2 = members["v_los"].to_value(KMS) ** 2
    assert abs(v2.mean() - sigma**2) < 5 * v2.std(ddof=1) / np.sqrt(v2.size)


def test_anisotropy_shows_in_projected_phase_space():
    # radial orbits (β > 0) put the large velocities along the line of sight near the projected centre, tangential
    # ones (β < 0) at the projected edge; isotropic orbits have the same σ_los everywhere in this model. The ratio
    # σ(R < 0.2 R200c) / σ(R > R200c) has a standard error ≈ √(1/2N_in + 1/2N_out) ≈ 0.011 here; the bounds below
    # are ≥ 5 of those from the values these seeds give (0.89, 0.98, 1.43), and far from 1 for β ≠ 0.
    ratios = {}
    for beta in (-1.0, 0.0, 0.9):
        members, clusters = simulate_clusters(log_mass=np.full(20, 14.5), anisotropy=beta, seed=3, **WIDE)
        radius = members["R_proj"].to_value(u.Mpc) / clusters["r200c"].to_value(u.Mpc)[0]
        v = members["v_los"].to_value(KMS)
        inner, outer = v[radius < 0.2], v[radius > 1.0]
        ratios[beta] = inner.std() / outer.std()
        if beta == 0.0:
            assert abs(ratios[beta] - 1) < 5 * np.sqrt(1 / (2 * inner.size) + 1 / (2 * outer.size))
    assert ratios[0.9] > 1.2 and ratios[-1.0] < 0.95


def test_interlopers_all_inside_a_cylinder_that_holds_every_member():
    # Every member lies inside 2 R200c ≈ 2.9 Mpc of a 10^14.5 cluster and within ±20000 km/s (30σ), so the cut keeps
    # all members and all interlopers: N_members ~ Poisson(Σ expected), N_interlopers ~ Poisson(ratio Σ expected),
    # and the interloper fraction is ratio/(1+ratio) with a binomial standard error √(f(1−f)/N) ≈ 0.008 at N ≈ 2500.
    n, ratio = 50, 0.25
    members, clusters = simulate_clusters(log_mass=np.full(n, 14.5), interloper_ratio=ratio, aperture=3.0 * u.Mpc,
                                          v_cut=20000.0 * KMS, seed=31, sampling="richness")
    assert (clusters["r200c"].to_value(u.Mpc) * 2 < 3.0).all()
    expected = 40.0 * n  # members_at_pivot at the pivot mass 10^14.5
    is_member = np.asarray(members["is_member"])
    assert abs(is_member.sum() - expected) < 5 * np.sqrt(expected)
    assert abs((~is_member).sum() - ratio * expected) < 5 * np.sqrt(ratio * expected)
    fraction = (~is_member).mean()
    f = ratio / (1 + ratio)
    assert abs(fraction - f) < 5 * np.sqrt(f * (1 - f) / len(members))
    # interlopers are uniform in projected area and in velocity: ⟨R²⟩ = a²/2 and ⟨|v|⟩ = v_cut/2
    r_int = members["R_proj"][~is_member].to_value(u.Mpc)
    v_int = members["v_los"][~is_member].to_value(KMS)
    assert abs(np.mean(r_int**2) / 9.0 - 0.5) < 5 * np.sqrt(1 / 12 / r_int.size)          # R²/a² ~ U(0, 1)
    assert abs(np.mean(np.abs(v_int)) / 20000.0 - 0.5) < 5 * np.sqrt(1 / 12 / v_int.size)  # |v|/v_cut ~ U(0, 1)


def _selected_fraction(clusters, rng) -> float:
    """The fraction of a cluster's population (members inside 2 R200c) that the default cylinder keeps.

    Computed independently of the simulator: NFW radii by inverting m(x)/m(x_max) on a fine grid, isotropic
    projection, Gaussian velocities with each cluster's true σ against the 2500-km/s cut (anisotropy 0).
    """
    kept = []
    for c, r200, sigma in zip(clusters["concentration"], clusters["r200c"].to_value(u.Mpc),
                              clusters["sigma_v"].to_value(KMS)):
        x_max = 2.0 * c
        grid = np.linspace(0.0, x_max, 4001)
        x = np.interp(rng.random(4000), nfw_m(grid) / nfw_m(x_max), grid)
        mu = rng.uniform(-1, 1, x.size)
        r_proj = x * r200 / c * np.sqrt(1 - mu**2)
        v = sigma * rng.standard_normal(x.size)
        kept.append(np.mean((r_proj <= 1.6) & (np.abs(v) <= 2500.0)))
    return float(np.mean(kept))


def test_interloper_fraction_under_the_default_cylinder():
    # At 10^15 M_sun, 2 R200c ≈ 4.1 Mpc reaches well beyond the 1.6-Mpc aperture: only a fraction f_sel of the
    # members survive the cut, while every interloper does (they are drawn inside the cylinder). f_sel is computed
    # here independently: NFW radii by inverting m(x)/m(x_max) on a fine grid, isotropic projection, Gaussian
    # velocities with each cluster's true σ against the 2500-km/s cut (anisotropy 0, so σ_los = σ everywhere).
    # The expected interloper fraction is ratio/(ratio + f_sel). The tolerance is loose: 5 binomial standard errors
    # of the observed fraction (≈ 0.004 at N ≈ 12000) plus 0.005 for the Monte-Carlo error of f_sel and the
    # grid inversion.
    n, ratio = 150, 0.25
    members, clusters = simulate_clusters(log_mass=np.full(n, 15.0), interloper_ratio=ratio, anisotropy=0.0, seed=41,
                                          sampling="richness")
    f_sel = _selected_fraction(clusters, np.random.default_rng(0))
    assert 0.3 < f_sel < 0.9  # the aperture really cuts
    expected_members = 40.0 * 10 ** (0.7 * 0.5) * n  # members_at_pivot (M/M_pivot)^0.7 at 0.5 dex above the pivot
    is_member = np.asarray(members["is_member"])
    assert abs((~is_member).sum() - ratio * expected_members) < 5 * np.sqrt(ratio * expected_members)
    assert abs(is_member.sum() - f_sel * expected_members) < 5 * np.sqrt(f_sel * expected_members) + 0.01 * (
        f_sel * expected_members)
    expected_fraction = ratio / (ratio + f_sel)
    fraction = (~is_member).mean()
    tolerance = 5 * np.sqrt(expected_fraction * (1 - expected_fraction) / len(members)) + 0.005
    assert abs(fraction - expected_fraction) < tolerance


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="n_clusters must be a positive integer, got 0"):
        simulate_clusters(0)
    with pytest.raises(ValueError, match="n_clusters must be a positive integer, got None"):
        simulate_clusters()
    with pytest.raises(ValueError, match="n_clusters must be a positive integer"):
        simulate_clusters(2.5)
    with pytest.raises(ValueError, match="n_clusters must be a positive integer"):
        simulate_clusters(True)
    for beta in (1.0, 1.5, np.nan):
        with pytest.raises(ValueError, match="anisotropy β must be < 1"):
            simulate_clusters(2, anisotropy=beta)
    with pytest.raises(ValueError, match="aperture must be in units of length"):
        simulate_clusters(2, aperture=1000.0 * KMS)
    with pytest.raises(ValueError, match="v_cut must be in units of speed"):
        simulate_clusters(2, v_cut=1.6 * u.Mpc)
    with pytest.raises(ValueError, match="aperture and v_cut must be positive"):
        simulate_clusters(2, aperture=0.0 * u.Mpc)
    with pytest.raises(TypeError, match="aperture must be a number in Mpc or a Quantity"):
        simulate_clusters(2, aperture="1.6 Mpc")
    with pytest.raises(ValueError, match="log_mass must be log10.*between 10 and 17"):
        simulate_clusters(log_mass=[1e14, 1e15])
    with pytest.raises(ValueError, match="log_mass must be log10.*between 10 and 17"):
        simulate_clusters(log_mass=[9.5])
    with pytest.raises(ValueError, match="log_mass must be a 1-D array of finite"):
        simulate_clusters(log_mass=[14.0, np.nan])
    with pytest.raises(ValueError, match="n_clusters=3 disagrees with the 2 masses in log_mass"):
        simulate_clusters(3, log_mass=[14.0, 15.0])
    _, clusters = simulate_clusters(2, log_mass=[14.0, 15.0], seed=0)  # consistent: fine
    np.testing.assert_array_equal(clusters["log_mass"], [14.0, 15.0])
    with pytest.raises(ValueError, match="members_at_pivot must be positive"):
        simulate_clusters(2, members_at_pivot=0)
    for ratio in (-0.1, (0.3, 0.1), (0.1, 0.2, 0.3), "0.2", (0.0, np.inf)):
        with pytest.raises(ValueError, match="interloper_ratio must be a non-negative number or a range"):
            simulate_clusters(2, interloper_ratio=ratio)
    with pytest.raises(ValueError, match="sampling must be one of"):
        simulate_clusters(2, sampling="magnitude")
    for counts in ((1, 10), (20, 10), (10.5, 20), 100, (10, 20, 30)):
        with pytest.raises(ValueError, match="n_redshifts must be two integers"):
            simulate_clusters(2, n_redshifts=counts)
    # a cylinder too thin to hold the redshifts asked for ends with the cause, not a memory blow-up
    with pytest.raises(ValueError, match="keeps almost none of the galaxies of 2 cluster"):
        simulate_clusters(2, aperture=0.001 * u.Mpc, interloper_ratio=0.0, n_redshifts=(50, 50), seed=0)
    with pytest.raises(TypeError, match="mass_function must be a MassFunction"):
        simulate_clusters(2, mass_function="flat")
    with pytest.raises(TypeError, match="richness must be a RichnessMassRelation"):
        simulate_clusters(2, richness={"slope": 1.0})


# ------------------------------------------------------------------ survey sampling
def test_survey_counts_are_log_uniform_and_independent_of_mass():
    # The number of galaxies in the cylinder must carry no mass information. Spearman's ρ between count and mass
    # over n clusters is, under independence, close to N(0, 1/(n−1)): |ρ| < 4/√(n−1) = 0.057 fails a correct
    # simulator with probability 6e-5 (0.13 for n = 1000). The richness sampling, whose count grows as M^0.7, must
    # fail the same bound (ρ ≈ 0.8 there), so the test can tell the two apart. The counts are log-uniform on
    # 10–1500: log(count + U(0, 1)) is uniform on [ln 10, ln 1501), and a KS test at the fixed seed has p > 1e-3
    # (see the module docstring).
    n = 1000
    survey_members, survey = simulate_clusters(n, n_redshifts=(10, 1500), seed=51)
    counts = np.bincount(np.asarray(survey_members["cluster_id"]), minlength=n)
    assert counts.min() >= 10 and counts.max() <= 1500
    np.testing.assert_array_equal(counts, survey["n_members"] + survey["n_interlopers"])
    bound = 4 / np.sqrt(n - 1)
    assert abs(stats.spearmanr(counts, survey["log_mass"]).statistic) < bound
    jittered = np.log(counts + np.random.default_rng(0).random(n))
    assert stats.kstest(jittered, stats.uniform(np.log(10), np.log(1501 / 10)).cdf).pvalue > 1e-3
    _, richness = simulate_clusters(2000, sampling="richness", interloper_ratio=0.25, seed=52)
    rich_counts = richness["n_members"] + richness["n_interlopers"]
    assert stats.spearmanr(rich_counts, richness["log_mass"]).statistic > 4 / np.sqrt(1999)
    assert survey.meta["simulation"]["sampling"] == "survey"
    assert survey.meta["simulation"]["n_redshifts"] == [10, 1500]


def test_survey_sampling_draws_the_cylinder_population_with_the_richness_mixture():
    # A survey picks galaxies at random from the cylinder's population, in which members of the halo (inside
    # 2 R200c) and interlopers come 1 : ratio before the cut. The cylinder keeps a fraction f_sel of the members and
    # every interloper, so the interloper fraction is ratio/(ratio + f_sel), as in the richness sampling. 150
    # clusters of 300 galaxies: binomial standard error ≈ 0.003; 5 of them plus 0.005 for f_sel's own error.
    n, ratio = 150, 0.25
    members, clusters = simulate_clusters(log_mass=np.full(n, 15.0), interloper_ratio=ratio, anisotropy=0.0,
                                          n_redshifts=(300, 300), seed=42)
    counts = np.bincount(np.asarray(members["cluster_id"]), minlength=n)
    np.testing.assert_array_equal(counts, 300)
    f_sel = _selected_fraction(clusters, np.random.default_rng(0))
    expected = ratio / (ratio + f_sel)
    fraction = 1 - np.mean(members["is_member"])
    assert abs(fraction - expected) < 5 * np.sqrt(expected * (1 - expected) / len(members)) + 0.005
    # members are the halo's own: their velocity dispersion is the cluster's σ (cut at 2500 km/s ≈ 2.6σ here)
    v = members["v_los"].to_value(KMS)[np.asarray(members["is_member"])]
    assert 0.9 < v.std() / np.median(clusters["sigma_v"].to_value(KMS)) < 1.0


def test_interloper_ratio_range_is_drawn_per_cluster():
    # a range gives each cluster its own ratio, uniform on it: mean (a+b)/2 with standard error (b−a)/√(12 n)
    members, clusters = simulate_clusters(2000, interloper_ratio=(0.0, 0.5), n_redshifts=(50, 50), seed=43)
    ratio = np.asarray(clusters["interloper_ratio"])
    assert ratio.min() >= 0 and ratio.max() <= 0.5 and np.ptp(ratio) > 0.45
    assert abs(ratio.mean() - 0.25) < 5 * 0.5 / np.sqrt(12 * 2000)
    # and more interlopers where the ratio is high: Spearman's ρ far beyond its null bound 4/√(n−1)
    assert stats.spearmanr(ratio, clusters["n_interlopers"]).statistic > 0.5
    assert members.meta["simulation"]["interloper_ratio"] == [0.0, 0.5]
    # a fixed ratio draws nothing: the old mocks' streams are unchanged, and every cluster has that ratio
    _, fixed = simulate_clusters(5, interloper_ratio=0.1, seed=1)
    np.testing.assert_array_equal(fixed["interloper_ratio"], 0.1)
