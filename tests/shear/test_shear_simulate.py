"""Gaussian and log-normal κ/γ simulations, spin-2 transforms, noise and footprints (astrobayes.shear.simulate)."""
import doctest
import json

import astropy.units as u
import healpy as hp
import numpy as np
import pytest
from scipy import stats

from astrobayes.shear import simulate as simulate_module
from astrobayes.shear.maps import ShearMap
from astrobayes.shear.simulate import (ShearSimulator, gaussian_alm, gaussian_kappa_map, gaussian_to_lognormal_cl,
                                       kappa_to_shear, lognormal_kappa_map, lognormal_to_gaussian_cl,
                                       shape_noise_sigma, shear_to_kappa, simulate_maps, survey_mask)

NSIDE, LMAX = 32, 64
ELL = np.arange(LMAX + 1)
# a smooth, κ-like spectrum (rms κ ≈ 0.003), zero at ℓ < 2
CL = np.where(ELL >= 2, 1e-4 / (ELL + 10.0) ** 2 * np.exp(-(ELL / 40.0) ** 2), 0.0)
EDGES = np.arange(2, LMAX + 2, 8)  # 8 bands of Δℓ = 8 over 2 ≤ ℓ ≤ 65 (last one partial)


def test_docstring_examples_run():
    assert doctest.testmod(simulate_module, optionflags=doctest.ELLIPSIS).failed == 0


def _band_ratios(spectra):
    """Mean over each band of Ĉ_ℓ / C_ℓ, per map: (n_maps, n_bands)."""
    ratio = spectra[:, 2:] / CL[2:]
    return np.array([ratio[:, a - 2:b - 2].mean(axis=1) for a, b in zip(EDGES[:-1], EDGES[1:])]).T


def _cosmic_variance(n_maps):
    """Variance of a band's mean Ĉ_ℓ/C_ℓ for a full-sky Gaussian field: Σ 2/(2ℓ+1)/Δℓ², over n_maps maps."""
    return np.array([np.sum(2 / (2 * ELL[a:b] + 1)) / (b - a) ** 2 for a, b in zip(EDGES[:-1], EDGES[1:])]) / n_maps


def test_gaussian_maps_recover_input_cl_within_cosmic_variance():
    sim = ShearSimulator(NSIDE, LMAX, sigma_e=0.0, fields=("kappa", "gamma1", "gamma2"))
    maps = sim(np.tile(CL, (4, 1)), seed=11)
    kappa = np.array([hp.anafast(m[0], lmax=LMAX) for m in maps])
    teb = np.array([hp.anafast(m, lmax=LMAX, pol=True) for m in maps])  # TT, EE, BB, ...
    bound = stats.chi2.ppf([0.001, 0.999], len(EDGES) - 1)
    # χ² of the band means against the Gaussian cosmic variance, dof = number of bands; the
    # [0.1%, 99.9%] quantiles: a correct simulator fails with probability 0.2% (fixed seed here).
    for spectra in (kappa, teb[:, 1]):  # κ, and the E-mode of γ (the same field for ℓ ≥ 2)
        chi2 = np.sum((_band_ratios(spectra).mean(axis=0) - 1) ** 2 / _cosmic_variance(len(maps)))
        assert bound[0] < chi2 < bound[1], chi2
    assert np.allclose(teb[:, 0, 2:], kappa[:, 2:], rtol=1e-6)  # E of γ ≡ κ
    assert teb[:, 2].max() < 1e-8 * teb[:, 1].max()  # no B-mode


def test_pixel_window_multiplies_the_harmonics():
    window = np.exp(-(np.arange(LMAX + 1) / 50.0) ** 2)
    plain = gaussian_kappa_map(CL, NSIDE, seed=4)
    smoothed = gaussian_kappa_map(CL, NSIDE, seed=4, pixwin=window)
    expected = hp.almxfl(hp.map2alm_lsq(plain, LMAX, LMAX)[0], window)
    assert np.allclose(hp.map2alm_lsq(smoothed, LMAX, LMAX)[0], expected, atol=1e-12)


def test_lognormal_transform_and_maps():
    shift = 0.01  # σ_κ/λ ≈ 0.33: clearly skewed
    cl_gaussian = lognormal_to_gaussian_cl(CL, shift)
    # the transform pair inverts up to the ℓ > lmax part of ξ_G (< 1e-4 of the peak here)
    assert np.abs(gaussian_to_lognormal_cl(cl_gaussian, shift) - CL).max() < 1e-4 * CL.max()
    n = 16
    maps = lognormal_kappa_map(np.tile(CL, (n, 1)), NSIDE, shift=shift, seed=5)
    assert maps.min() > -shift
    variance_g = np.clip(cl_gaussian, 0, None) @ (2 * ELL + 1) / (4 * np.pi)
    # one-point skewness of λ(e^{G−σ²/2} − 1); tolerance: 4 standard errors of the mean over the maps
    skewness = (np.exp(variance_g) + 2) * np.sqrt(np.expm1(variance_g))
    per_map = stats.skew(maps, axis=1)
    assert abs(per_map.mean() - skewness) < 4 * per_map.std(ddof=1) / np.sqrt(n)
    # E[Ĉ_ℓ] = the input C_ℓ up to the transform's truncation; the non-Gaussian field has a larger
    # variance than cosmic variance, so each band's mean is tested against its own scatter over the
    # 16 maps: |t| < 4.5 (Student t, 15 dof: two-sided p = 4e-4 per band, 0.3% for all 8 bands).
    ratios = _band_ratios(np.array([hp.anafast(m, lmax=LMAX) for m in maps]))
    t = (ratios.mean(axis=0) - 1) / (ratios.std(axis=0, ddof=1) / np.sqrt(n))
    assert np.abs(t).max() < 4.5, t
    with pytest.raises(ValueError, match="shift is too small"):
        lognormal_to_gaussian_cl(np.r_[0.0, 1e-3, np.zeros(9)], 0.01)  # ξ(π) = −3C₁/4π < −λ²


def test_kappa_shear_round_trip_on_a_band_limited_map():
    kappa = gaussian_kappa_map(CL[:33], 16, seed=2)  # band-limited at lmax = 2·nside, no ℓ < 2
    g1, g2 = kappa_to_shear(kappa)
    kappa_e, kappa_b = shear_to_kappa(g1, g2, return_b=True)
    assert np.abs(kappa_e - kappa).max() < 1e-9 * np.abs(kappa).max()
    assert np.abs(kappa_b).max() < 1e-9 * np.abs(kappa).max()
    ring = np.array(kappa_to_shear(kappa))
    nested = np.array(kappa_to_shear(hp.reorder(kappa, r2n=True), nest=True))
    assert np.allclose(hp.reorder(nested, n2r=True), ring, atol=1e-12)


def test_shear_of_a_blob_matches_the_flat_sky_kaiser_squires_limit():
    """Axisymmetric κ = e^{−r²/2s²}: flat-sky γ_t = κ̄(<r) − κ(r), γ_× = 0, in the east/north frame."""
    nside, width, lon0, lat0 = 64, np.radians(2.5), np.radians(30.0), np.radians(20.0)
    lon, lat = np.radians(hp.pix2ang(nside, np.arange(12 * nside ** 2), lonlat=True))
    r = np.arccos(np.clip(np.sin(lat) * np.sin(lat0) + np.cos(lat) * np.cos(lat0) * np.cos(lon - lon0), -1, 1))
    g1, g2 = kappa_to_shear(np.exp(-r ** 2 / (2 * width ** 2)))
    d = lon0 - lon
    angle = np.arctan2(np.sin(d) * np.cos(lat0), np.cos(lat) * np.sin(lat0) - np.sin(lat) * np.cos(lat0) * np.cos(d))
    rotated = (g1 + 1j * g2) * np.exp(-2j * (np.pi / 2 - angle))
    ring = (r > np.radians(1.0)) & (r < np.radians(6.0))
    x2 = (r[ring] / width) ** 2
    expected = 2 / x2 * -np.expm1(-x2 / 2) - np.exp(-x2 / 2)
    assert np.abs(-rotated.real[ring] - expected).max() < 2e-3  # curvature, band limit
    assert np.abs(rotated.imag[ring]).max() < 2e-3


def test_shape_noise_level_mask_and_seeds():
    mask = survey_mask(16, "cap", area=5000 * u.deg ** 2)
    sim = ShearSimulator(16, sigma_e=0.3, n_gal=5 / u.arcmin ** 2, mask=mask, fields=("gamma1", "gamma2"))
    sigma = 0.3 / np.sqrt(5 * hp.nside2pixarea(16, degrees=True) * 3600)
    assert sim.noise_sigma == pytest.approx(sigma)
    assert shape_noise_sigma(16, 0.3, 5 * 3600 / u.deg ** 2) == pytest.approx(sigma)
    noise = sim(np.zeros(33), seed=0)
    observed = noise[:, mask]
    # sample std of N normals: relative error 1/√(2N); 5σ
    assert abs(observed.std() / sigma - 1) < 5 / np.sqrt(2 * observed.size)
    assert np.all(noise[:, ~mask] == 0.0) and (noise[0] != 0).mean() == pytest.approx(mask.mean())
    assert mask.mean() == pytest.approx(5000 / 41252.96, abs=0.01)
    # seeds: same seed → same maps; a batch equals a loop sharing one generator
    cls = np.tile(CL[:33], (3, 1)) * np.array([[0.5], [1.0], [2.0]])
    assert np.array_equal(sim(cls, seed=7), sim(cls, seed=7))
    assert not np.array_equal(sim(cls, seed=7), sim(cls, seed=8))
    rng = np.random.default_rng(9)
    loop = np.array([sim(c, rng) for c in cls])
    assert np.array_equal(sim(cls, np.random.default_rng(9), progress=True), loop)
    assert np.array_equal(sim(cls, seed=7)[0], sim(cls[0], seed=7))


def test_config_json_round_trip_nest_and_spectrum_callable():
    mask = survey_mask(8, "stripe", lat_range=(-40, 10), nest=True)
    sim = ShearSimulator(8, 20, lognormal=True, shift=0.02, mask=mask, nest=True, fields=("kappa", "gamma1", "gamma2"),
                         pixwin=np.ones(21), coord="E")
    again = ShearSimulator.from_config(json.loads(json.dumps(sim.get_config())))
    assert np.array_equal(again.mask, mask)
    assert np.array_equal(again(CL[:21], seed=1), sim(CL[:21], seed=1))
    ring = ShearSimulator(8, 20, lognormal=True, shift=0.02, mask=hp.reorder(mask.astype(float), n2r=True) == 1,
                          fields=("kappa", "gamma1", "gamma2"), pixwin=np.ones(21))
    assert np.allclose(hp.reorder(sim(CL[:21], seed=1), n2r=True), ring(CL[:21], seed=1))
    template = CL[:21] / CL[:21].max()
    driven = ShearSimulator(8, 20, sigma_e=0.0, spectrum=lambda theta: theta[0] * template)
    theta = np.array([[1e-5], [2e-5]])
    assert np.array_equal(driven(theta, seed=3), ShearSimulator(8, 20, sigma_e=0.0)(theta * template, seed=3))
    assert ShearSimulator.from_config(driven.get_config(), spectrum=driven.spectrum)(theta[0], seed=0).shape == (1, 768)


def test_simulate_maps_returns_shear_maps():
    sim = ShearSimulator(8, fields=("kappa", "gamma1", "gamma2"), mask=survey_mask(8, "band", b_cut=20.0))
    one = simulate_maps(CL[:17], sim, seed=2)
    assert isinstance(one, ShearMap) and one.fields == ("kappa", "gamma1", "gamma2", "n_gal", "noise")
    assert np.all(one.noise[one.mask] == sim.noise_sigma) and one.meta["seed"] == 2
    batch = simulate_maps(np.tile(CL[:17], (2, 1)), sim, seed=2)
    assert len(batch) == 2 and np.array_equal(batch[0].gamma2, sim(np.tile(CL[:17], (2, 1)), seed=2)[0, 2])


def test_survey_masks():
    npix = 12 * 32 ** 2
    band_c = survey_mask(32, "band", b_cut=30.0, coord="C")
    band_g = survey_mask(32, "band", b_cut=30.0, coord="G")
    assert band_c.mean() == pytest.approx(0.5, abs=0.01) and band_g.mean() == pytest.approx(0.5, abs=0.01)
    assert band_c[hp.ang2pix(32, 192.86, 27.13, lonlat=True)]  # the Galactic north pole (ICRS)
    assert not band_c[hp.ang2pix(32, 266.40, -28.94, lonlat=True)]  # the Galactic centre
    stripe = survey_mask(32, "stripe", lat_range=(-30, 30) * u.deg)
    assert stripe.mean() == pytest.approx(0.5, abs=0.02)
    assert survey_mask(32, "full").all() and survey_mask(32, "full").shape == (npix,)
    with pytest.raises(ValueError, match="kind"):
        survey_mask(32, "circle")
    with pytest.raises(ValueError, match="area"):
        survey_mask(32, "cap", area=5e4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="lmax=64 needs 65"):
        ShearSimulator(32)(CL[:40])
    with pytest.raises(ValueError, match=r">= 0 \(first bad ℓ: 3\)"):
        gaussian_alm(np.r_[0, 0, 1, -1.0])
    with pytest.raises(ValueError, match="lmax must lie"):
        ShearSimulator(8, 30)
    with pytest.raises(ValueError, match="pair"):
        ShearSimulator(8, fields=("gamma1",))
    with pytest.raises(ValueError, match="fields"):
        ShearSimulator(8, fields=("shear",))
    with pytest.raises(ValueError, match="all-masked"):
        ShearSimulator(8, mask=np.zeros(768, bool))
    with pytest.raises(ValueError, match=r"mask has 100 pixels \(no nside.*\) but nside=8 needs 768"):
        ShearSimulator(8, mask=np.ones(100, bool))
    # healpy's "Wrong pixel number (it is not 12*nside**2)" named no argument (found by tests/fuzz)
    with pytest.raises(ValueError, match=r"kappa has 190 pixels .*nearest HEALPix sizes are 48 \(nside 2\) and 192"):
        kappa_to_shear(np.zeros(190))
    with pytest.raises(ValueError, match="gamma1 has 190 pixels"):
        shear_to_kappa(np.zeros(190), np.zeros(190))
    with pytest.raises(ValueError, match=r"mask has 48 pixels \(nside 2\) but gamma1 and gamma2 have 192"):
        shear_to_kappa(np.zeros(192), np.zeros(192), mask=np.ones(48, bool))
    with pytest.raises(ValueError, match="hp.UNSEEN in observed pixels; pass mask="):
        shear_to_kappa(np.full(192, hp.UNSEEN), np.zeros(192))
    with pytest.raises(ValueError, match=r"kappa has values up to 2.5e\+154"):
        kappa_to_shear(np.r_[2.5e154, np.zeros(11)])  # the shear came back NaN without an error
    g1, _ = kappa_to_shear(np.zeros((1, 2, 48)))  # stacks of any depth (healpy's "bad number of pixels" before)
    assert g1.shape == (1, 2, 48)
    with pytest.raises(ValueError, match="shift"):
        ShearSimulator(8, lognormal=True, shift=0.0)
    with pytest.raises(ValueError, match="n_gal"):
        shape_noise_sigma(8, 0.26, -1.0)
    with pytest.raises(ValueError, match="pixwin"):
        ShearSimulator(8, pixwin=np.ones(3))
    with pytest.raises(ValueError, match="not a ShearSimulator"):
        ShearSimulator.from_config({"nside": 8})
