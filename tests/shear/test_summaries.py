"""Summary statistics of HEALPix κ / γ maps: band powers, peaks, Minkowski functionals."""
import healpy as hp
import numpy as np
import pytest

from astrobayes.shear.summaries import (ell_bins, find_peaks, gaussian_minkowski, minkowski_functionals,
                                        peak_counts, pseudo_cl, summary_statistics)


def toy_cl(lmax):
    """The toy convergence spectrum 1e-9 (ℓ + 10)⁻¹."""
    return 1e-9 / (np.arange(lmax + 1) + 10.0)


def gaussian_maps(nside, n, seed, lmax=None):
    lmax = 3 * nside - 1 if lmax is None else lmax
    np.random.seed(seed)
    return np.stack([hp.synfast(toy_cl(lmax), nside, lmax=lmax) for _ in range(n)])


def binned_theory(cl, edges):
    ell = np.arange(len(cl))
    return np.array([np.average(cl[lo:hi], weights=2 * ell[lo:hi] + 1) for lo, hi in zip(edges[:-1], edges[1:])])


def band_sigma(edges, n_maps, f_sky=1.0):
    """Relative cosmic-variance σ of a band power averaged over n maps: √(2 / (f_sky Σ(2ℓ+1) n))."""
    modes = np.array([np.sum(2 * np.arange(lo, hi) + 1) for lo, hi in zip(edges[:-1], edges[1:])])
    return np.sqrt(2 / (f_sky * modes * n_maps))


# ---------------------------------------------------------------------------- band powers
def test_ell_bins():
    edges = ell_bins(95, 8, kind="log")
    assert edges[0] == 2 and edges[-1] == 96 and np.all(np.diff(edges) >= 1) and len(edges) == 9
    assert np.array_equal(ell_bins(11, 10, kind="log"), np.arange(2, 13))  # one multipole per bin
    assert np.allclose(np.diff(ell_bins(101, 4, kind="linear")), 25)
    with pytest.raises(ValueError, match="cannot make"):
        ell_bins(5, 10)
    with pytest.raises(ValueError, match="kind"):
        ell_bins(50, 4, kind="quadratic")


def test_full_sky_band_powers_match_input_spectrum():
    nside, n = 32, 4
    maps = gaussian_maps(nside, n, seed=0)
    bp = pseudo_cl(maps, bins=6)
    assert bp.power.shape == (n, 6) and bp.spectra == ("kk",) and bp.edges[-1] == 2 * nside + 1
    theory = binned_theory(toy_cl(2 * nside), bp.edges)
    # 4σ of the cosmic variance of the 4-map mean, plus 2 % for the iter=0 transform
    tolerance = 4 * band_sigma(bp.edges, n) + 0.02
    assert np.all(np.abs(bp.power.mean(0) / theory - 1) < tolerance)
    assert np.all((bp.ell >= bp.edges[:-1]) & (bp.ell < bp.edges[1:]))
    # NEST input with nest=True gives the same numbers; one map in, one row of bands out
    nest_maps = maps[:, hp.nest2ring(nside, np.arange(maps.shape[1]))]
    assert np.allclose(pseudo_cl(nest_maps, bins=bp.edges, nest=True).power, bp.power, rtol=1e-10)
    assert np.allclose(pseudo_cl(maps[0], bins=bp.edges).power, bp.power[0])


def test_fsky_correction_and_noise_removal_on_a_cut_sky():
    nside, n = 32, 6
    npix = hp.nside2npix(nside)
    theta, _ = hp.pix2ang(nside, np.arange(npix))
    mask = np.abs(np.pi / 2 - theta) > np.radians(20)  # a ±20° "galactic" cut, f_sky ≈ 0.66
    rng = np.random.default_rng(1)
    sigma_noise = 2 * np.sqrt(toy_cl(0)[0] / hp.nside2pixarea(nside))  # noise ≈ signal at low ℓ
    maps = gaussian_maps(nside, n, seed=1) + sigma_noise * rng.normal(size=(n, npix))
    noise_power = sigma_noise ** 2 * hp.nside2pixarea(nside)  # white-noise C_ℓ (sr)
    bp = pseudo_cl(maps, mask, bins=ell_bins(2 * nside, 5, lmin=8), remove_noise=noise_power)
    theory = binned_theory(toy_cl(2 * nside), bp.edges)
    signal_to_total = theory / (theory + noise_power)
    # cosmic variance of signal + noise on 66 % of the sky, 4σ; 10 % for the un-deconvolved mode coupling
    tolerance = 4 * band_sigma(bp.edges, n, mask.mean()) / signal_to_total + 0.10
    assert np.all(np.abs(bp.power.mean(0) / theory - 1) < tolerance)
    raw = pseudo_cl(maps, mask, bins=bp.edges)
    assert np.all(raw.power.mean(0) > 1.3 * theory)  # without the subtraction, noise dominates


def test_spin2_e_modes_come_out_as_ee():
    nside = 32
    lmax = 3 * nside - 1
    np.random.seed(2)
    zero = np.zeros(lmax + 1)
    _, g1, g2 = hp.synfast([zero, toy_cl(lmax), zero, zero], nside, lmax=lmax, new=True)  # TT, EE, BB, TE
    bp = pseudo_cl(np.stack([g1, g2]), spin=2, bins=5)
    assert bp.power.shape == (3, 5) and bp.spectra == ("EE", "BB", "EB")
    theory = binned_theory(toy_cl(2 * nside), bp.edges)
    assert np.all(np.abs(bp.power[0] / theory - 1) < 4 * band_sigma(bp.edges, 1) + 0.02)
    # a pure E field on the full sky: B and EB are numerical noise only (measured ~1e-3 of EE)
    assert np.all(np.abs(bp.power[1:]) < 0.02 * theory)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, npix\)"):
        pseudo_cl(g1, spin=2)


# ---------------------------------------------------------------------------- peaks
def test_find_peaks_on_handmade_maps():
    nside = 8
    npix = hp.nside2npix(nside)
    kappa = np.zeros(npix)
    seven = np.flatnonzero((hp.get_all_neighbours(nside, np.arange(npix)) < 0).any(0))
    assert len(seven) == 24  # 3 pixels with only 7 neighbours around each of the 8 face corners at ±41.8°
    kappa[[100, seven[0]]] = 1.0
    plateau = np.append(hp.get_all_neighbours(nside, 500)[:1], 500)
    kappa[plateau] = 2.0  # two equal neighbours: neither is strictly higher, no peak
    assert set(np.flatnonzero(find_peaks(kappa))) == {100, seven[0]}
    # a peak next to the footprint edge is dropped, one inside is kept
    mask = np.ones(npix, bool)
    mask[hp.get_all_neighbours(nside, 100)[0]] = False
    assert set(np.flatnonzero(find_peaks(kappa, mask))) == {seven[0]}
    # NEST in, NEST out
    nest = kappa[hp.nest2ring(nside, np.arange(npix))]
    assert np.array_equal(np.flatnonzero(find_peaks(nest, nest=True)), np.sort(hp.ring2nest(nside, [100, seven[0]])))


def test_peak_counts_match_a_plain_histogram():
    nside = 32
    maps = gaussian_maps(nside, 3, seed=3)
    mask = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))[0] < np.radians(100)
    edges = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    counts = peak_counts(maps, mask, thresholds=edges, nside=nside)
    assert counts.shape == (3, 5) and counts.sum() > 100
    for m, row in zip(maps, counts):
        masked = np.where(mask, m, 0.0)
        rms = np.sqrt(np.mean(masked[mask] ** 2))
        heights = masked[find_peaks(masked, mask)] / rms
        assert np.array_equal(row, np.histogram(heights, edges)[0])
    absolute = peak_counts(maps, mask, thresholds=edges * 1e-4, sigma=None)
    fixed = peak_counts(maps, mask, thresholds=edges, sigma=1e-4)
    assert np.array_equal(absolute, fixed)
    # smoothing removes small-scale peaks
    assert peak_counts(maps, mask, thresholds=edges, smoothing_fwhm=np.radians(3)).sum() < 0.7 * counts.sum()
    with pytest.raises(ValueError, match="nside=16"):
        peak_counts(maps, mask, thresholds=edges, nside=16)


# ---------------------------------------------------------------------------- Minkowski functionals
NU = np.linspace(-2.5, 2.5, 11)


def test_v0_is_the_exact_area_fraction():
    nside = 32
    maps = gaussian_maps(nside, 2, seed=4)
    mask = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))[0] > np.radians(60)
    mf = minkowski_functionals(maps, mask, NU)
    for m, v0, s0 in zip(maps, mf.v0, mf.sigma0):
        rms = np.sqrt(np.mean(m[mask] ** 2))
        assert s0 == pytest.approx(rms, rel=1e-12)
        assert np.array_equal(v0, np.mean(m[mask][None] > NU[:, None] * rms, axis=1))
    absolute = minkowski_functionals(maps, mask, NU * 1e-4, sigma=None)
    assert np.allclose(absolute.v0, minkowski_functionals(maps, mask, NU, sigma=1e-4).v0)


def test_minkowski_functionals_of_gaussian_maps_match_theory():
    # 8 full-sky maps at nside 64. The per-map scatter about the Gaussian
    # expectation, measured over 16 seeds, is at most 0.007 (V0), 1.4 % of
    # max V1 and 3.9 % of max |V2| over these thresholds; the 8-map mean has
    # 1/√8 of it, and the tolerances are ≈ 4 standard errors of that mean.
    maps = gaussian_maps(64, 8, seed=10)
    mf = minkowski_functionals(maps, None, NU)
    v0, v1, v2 = gaussian_minkowski(NU, mf.sigma0, mf.sigma1, bin_width=NU[1] - NU[0])
    assert np.abs((mf.v0 - v0).mean(0)).max() < 0.01
    assert np.abs((mf.v1 - v1).mean(0)).max() < 0.02 * v1.max()
    assert np.abs((mf.v2 - v2).mean(0)).max() < 0.06 * np.abs(v2).max()
    # a lognormal field of the same maps fails the same test by far (measured deviations 15-40 %)
    skewed = np.exp(maps / maps.std() * 0.5)
    skewed -= skewed.mean(1, keepdims=True)
    mf = minkowski_functionals(skewed, None, NU)
    _, _, v2 = gaussian_minkowski(NU, mf.sigma0, mf.sigma1, bin_width=NU[1] - NU[0])
    assert np.abs((mf.v2 - v2).mean(0)).max() > 0.15 * np.abs(v2).max()


def test_gaussian_minkowski_limits():
    v0, v1, v2 = gaussian_minkowski([-40.0, 0.0, 40.0], 1.0, 10.0)
    assert np.allclose(v0, [1, 0.5, 0]) and np.allclose(v1[[0, 2]], 0)
    # far below every value the excursion set is the whole sphere: χ = 2 over 4π sr
    assert v2[0] == pytest.approx(2 / (4 * np.pi))
    # a narrow bin reproduces the unbinned values
    assert np.allclose(gaussian_minkowski(NU, 1.0, 10.0, bin_width=1e-4)[2], gaussian_minkowski(NU, 1.0, 10.0)[2])


# ---------------------------------------------------------------------------- together, and bad input
def test_summary_statistics_concatenates_the_pieces():
    nside = 16
    maps = gaussian_maps(nside, 3, seed=5)
    s = summary_statistics(maps, cl_bins=4, peak_thresholds=[0, 1, 2], minkowski_thresholds=[-1, 0, 1])
    assert s.values.shape == (3, 4 + 2 + 9) and len(s.names) == 15
    assert np.allclose(s.values[:, :4], pseudo_cl(maps, bins=4).power)
    assert s.names[4:6] == ["peaks[0,1)", "peaks[1,2)"] and s.names[-1] == "V2[nu=1]"
    only = summary_statistics(maps, kinds=["minkowski"], minkowski_thresholds=[-1, 0, 1])
    assert np.allclose(only.values, s.values[:, 6:])
    with pytest.raises(ValueError, match="kinds"):
        summary_statistics(maps, kinds=["bispectrum"])


def test_bad_input_is_a_clear_error():
    kappa = np.zeros(hp.nside2npix(8))
    with pytest.raises(ValueError, match="maps has 700 pixels along its last axis, no nside: not 12·nside²"):
        pseudo_cl(np.zeros(700))
    with pytest.raises(ValueError, match="mask must be a boolean"):
        pseudo_cl(kappa, np.ones(kappa.size))
    with pytest.raises(ValueError, match="no observed pixel"):
        pseudo_cl(kappa, np.zeros(kappa.size, bool))
    bad = kappa.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        find_peaks(bad)
    masked = np.ones(kappa.size, bool)
    masked[3] = False
    assert find_peaks(bad, masked).sum() == 0  # NaN / UNSEEN in masked pixels is fine
    with pytest.raises(ValueError, match="spin"):
        pseudo_cl(kappa, spin=1)
    with pytest.raises(ValueError, match="bin_width"):
        minkowski_functionals(kappa, None, [0.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="thresholds"):
        peak_counts(kappa, thresholds=[1.0, 0.0])
    with pytest.raises(ValueError, match="sigma"):
        peak_counts(kappa, thresholds=[0.0, 1.0], sigma="noise")
    with pytest.raises(ValueError, match="zero everywhere"):
        peak_counts(kappa, thresholds=[0.0, 1.0])


def test_root_causes_of_bad_maps_and_masks():
    """Found by tests/fuzz: messages that blamed the wrong argument, and finite nonsense that gave NaN or worse."""
    kappa = np.random.default_rng(0).normal(0.0, 0.01, hp.nside2npix(4))
    mask = np.ones(kappa.size, bool)
    with pytest.raises(ValueError, match=r"mask has 48 pixels \(nside 2\) but maps has 192 \(nside 4\)"):
        pseudo_cl(kappa, np.ones(48, bool))
    with pytest.raises(TypeError, match="maps is a boolean array: is it the mask"):
        pseudo_cl(mask, kappa)  # the arguments swapped
    unseen = kappa.copy()
    unseen[:5] = hp.UNSEEN  # finite: it used to flow into the band powers as −1.6e30
    with pytest.raises(ValueError, match=r"hp.UNSEEN in 5 observed pixel\(s\).*mask = maps != hp.UNSEEN"):
        pseudo_cl(unseen)
    assert np.isfinite(pseudo_cl(unseen, unseen != hp.UNSEEN, bins=3).power).all()
    with pytest.raises(ValueError, match=r"values up to 1e\+200.*are the maps in other units"):
        pseudo_cl(np.full(48, 1e200), bins=2)  # the power overflowed to NaN without an error
    with pytest.raises(ValueError, match=r"bins=10: between ℓ = 2 and lmax = 8 \(the maps' nside is 4\) there is "
                                         r"room for 1 to 7 bins"):
        pseudo_cl(kappa)  # the default bins at a small nside
    with pytest.raises(TypeError, match="bins must be a number of bins"):
        pseudo_cl(kappa, bins="4")
