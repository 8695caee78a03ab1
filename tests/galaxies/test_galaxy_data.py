"""The shipped galaxy data: paths, source detection, Hubble Deep Field stamps, the COSMOS catalog and PSFs."""
import astropy.units as u
import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats

from astrobayes.galaxies import data
from astrobayes.galaxies.data import (
    COSMOS_CATALOG,
    COSMOS_FITS,
    COSMOS_GALAXY,
    COSMOS_GALAXY_PSF,
    COSMOS_PSFS,
    HDF_IMAGE,
    cosmos_galaxy,
    detect_sources,
    hubble_deep_field,
    read_cosmos_catalog,
    read_cosmos_psfs,
    sersic_total_flux,
)
from astrobayes.galaxies.io import cut_stamps


def test_paths_exist_and_the_folder_is_small():
    for path in (HDF_IMAGE, COSMOS_CATALOG, COSMOS_FITS, COSMOS_PSFS, COSMOS_GALAXY, COSMOS_GALAXY_PSF):
        assert path.is_file(), path
    assert (data.CATALOG_DIR / "README.md").is_file() and (data.CATALOG_DIR / "make_subset.py").is_file()
    assert sum(p.stat().st_size for p in data.CATALOG_DIR.iterdir()) < 4.2e6


# ------------------------------------------------------------------ detection
def blob_image(seed: int = 7):
    """Six well-separated round Gaussians (σ = 2 px) at sub-pixel positions on unit noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:150, :200]
    truth = np.array([[30.3, 40.6], [100.7, 35.2], [165.1, 50.9], [40.4, 110.5], [110.0, 115.3], [170.6, 112.8]])
    amplitude = np.array([60.0, 15.0, 30.0, 45.0, 25.0, 10.0])
    image = rng.normal(5.0, 1.0, rows.shape)  # a background of 5
    for (x, y), a in zip(truth, amplitude):
        image += a * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 2.0 ** 2))
    return image, truth, amplitude


def test_detect_sources_recovers_gaussian_blobs():
    image, truth, amplitude = blob_image()
    sources = detect_sources(image, nsigma=3.0, min_area=5)
    assert len(sources) == len(truth)
    assert sources.colnames == ["id", "x", "y", "flux", "area", "peak"]
    assert np.all(np.diff(sources["flux"]) <= 0) and sources["id"].tolist() == list(range(6))  # brightest first
    order = np.argsort(-amplitude)
    found = np.column_stack([sources["x"], sources["y"]])
    # centroid scatter per coordinate, measured over 30 noise draws: 0.016 px for the brightest blob (60σ peak),
    # 0.076 px for the faintest (10σ), so 0.3 px is a ≥ 4σ bound
    assert np.abs(found - truth[order]).max() < 0.3
    assert sources.meta["background"] == pytest.approx(5.0, abs=0.05)
    assert sources.meta["rms"] == pytest.approx(1.0, rel=0.05)
    # a noiseless segment above the threshold t = 3 would hold 2πσ²(A − t) of the blob's 2πσ²A; noise pushes
    # a few more boundary pixels over the threshold, so the flux lies between (with 10 % and 5 % margins)
    total = 2 * np.pi * 4.0 * amplitude[order]
    assert np.all(sources["flux"] > 0.9 * total * (1 - 3.0 / amplitude[order]))
    assert np.all(sources["flux"] < 1.05 * total)
    assert np.allclose(sources["peak"], amplitude[order], rtol=0.15)


def test_detect_sources_mask_border_and_errors():
    image, _, _ = blob_image()
    mask = np.zeros(image.shape, dtype=bool)
    mask[100:130, 90:130] = True   # hides the blob at (110.0, 115.3)
    assert len(detect_sources(image, mask=mask)) == 5
    kept = detect_sources(image, border=35)   # only the two blobs at least 35 px from every edge
    assert np.allclose(np.sort(kept["x"]), [40.4, 100.7], atol=0.3)
    with pytest.raises(ValueError, match="image must be 2-D"):
        detect_sources(np.ones((2, 5, 5)))
    with pytest.raises(ValueError, match="mask has shape"):
        detect_sources(image, mask=np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="nsigma"):
        detect_sources(image, nsigma=-1)


# ------------------------------------------------------------------ Hubble Deep Field
@pytest.fixture(scope="module")
def hdf32():
    return hubble_deep_field(32)


def test_hubble_deep_field_stamps(hdf32):
    stamps = hdf32
    assert 300 <= len(stamps) <= 500 and stamps.shape == (32, 32)   # 410 with the defaults
    assert np.isfinite(stamps.data).all() and not stamps.mask.any()
    assert stamps.unit is None and stamps.pixel_scale is None   # display counts: no photometry, no WCS
    rms = stamps.meta.meta["rms"]
    assert 4.0 < rms < 6.0 and np.all(stamps.noise == rms)
    edge = np.zeros((32, 32), dtype=bool)
    edge[:3], edge[-3:], edge[:, :3], edge[:, -3:] = True, True, True, True
    _, median, _ = sigma_clipped_stats(stamps.data[:, edge])
    assert abs(median) < 0.1 * rms   # the background was subtracted
    # isolation: no stamp holds the centre of a brighter kept source
    x, y, flux = (np.asarray(stamps.meta[c], dtype=float) for c in ("x", "y", "flux"))
    inside = (np.abs(x[:, None] - x[None]) < 16) & (np.abs(y[:, None] - y[None]) < 16) & (flux[None] > flux[:, None])
    assert not inside.any()
    # whole stamps: none reaches beyond the 1000 × 872 image (mode="strict" raises if one does)
    cut_stamps(np.ones((872, 1000)), np.column_stack([x, y]), 32, mode="strict")


def test_hubble_deep_field_sizes_and_options(hdf32):
    large = hubble_deep_field(64)
    assert large.shape == (64, 64) and 100 <= len(large) < len(hdf32)   # 176 with the defaults
    assert len(hubble_deep_field(32, isolated=False)) > len(hdf32)
    with pytest.raises(ValueError, match="size"):
        hubble_deep_field(2)
    with pytest.raises(ValueError, match=r"size must be between 4 and 872 pixels"):
        hubble_deep_field(10**6)  # used to try to cut stamps of 10¹² pixels each
    with pytest.raises(TypeError, match="size must be a whole number of pixels"):
        hubble_deep_field("32")


# ------------------------------------------------------------------ COSMOS
@pytest.fixture(scope="module")
def catalog():
    return read_cosmos_catalog()


def test_cosmos_catalog_columns_and_units(catalog):
    assert len(catalog) == 100 and len(set(catalog["IDENT"].tolist())) == 100
    units = {"RA": u.deg, "DEC": u.deg, "MAG": u.mag, "PIXEL_SCALE": u.arcsec / u.pix, "sersic_flux": u.electron / u.s,
             "sersic_r_half": u.arcsec, "sersic_r_half_major": u.arcsec, "sersic_phi": u.rad,
             "NOISE_VARIANCE": (u.electron / u.s) ** 2, "hlr": u.arcsec, "flux": u.electron / u.s}
    for name, unit in units.items():
        assert catalog[name].unit == unit, name
    assert np.allclose(catalog["PIXEL_SCALE"].value, 0.03, rtol=1e-7)
    assert np.all((catalog["RA"] > 149 * u.deg) & (catalog["RA"] < 151 * u.deg))   # the COSMOS field
    assert set(catalog["BAND"]) == {"F814W"} and catalog["viable_sersic"].all()
    n, q = catalog["sersic_n"], catalog["sersic_q"]
    assert np.all((n > 0.29) & (n <= 6.0)) and np.sum(n == 6.0) == 8   # 6 is the fits' upper bound
    assert np.all((q > 0) & (q <= 1))
    assert np.all(np.abs(catalog["sersic_phi"]) <= np.pi * u.rad)
    assert np.all(catalog["sersic_r_half"] <= catalog["sersic_r_half_major"])
    assert np.array_equal(catalog["PSF_HDU"], np.arange(100))


def test_cosmos_sersic_flux_and_radius_match_galsim(catalog):
    derived = catalog["sersic_flux"].value
    galsim = catalog["flux"][:, 0].value
    relative = np.abs(derived / galsim - 1)
    regular = catalog["sersic_n"] >= 0.3
    # measured: ≤ 1.1e-8 (the precision of the stored numbers) where GalSim used the fitted n ...
    assert relative[regular].max() < 1e-6
    # ... and 1.05e-3 for the single fit with n = 0.2989, which GalSim raised to n = 0.3
    assert (~regular).sum() == 1 and relative[~regular].max() < 2e-3
    # circularised radius: 0.03 √q r_hl is GalSim's hlr to 2e-16
    assert np.allclose(catalog["sersic_r_half"].value, catalog["hlr"][:, 0].value, rtol=1e-12, atol=0)
    # e/s with the ACS F814W AB zero point 25.94: MAG_AUTO is an aperture magnitude, a little fainter
    zero_point = np.median(catalog["MAG"].value + 2.5 * np.log10(derived))
    assert 25.9 < zero_point < 26.1


def test_sersic_total_flux_integrates_the_profile():
    from scipy.integrate import quad
    from scipy.special import gammaincinv

    for n in (0.5, 1.0, 2.5, 4.0):
        b = gammaincinv(2 * n, 0.5)
        numeric, _ = quad(lambda r, b=b, n=n: 2 * np.pi * r * np.exp(-b * (r ** (1 / n) - 1)), 0, np.inf, limit=200)
        assert sersic_total_flux(1.0, 1.0, n) == pytest.approx(numeric, rel=1e-6)
    assert sersic_total_flux(2.0, 3.0, 1.0, q=0.5) == pytest.approx(2.0 * 9.0 * 0.5 * sersic_total_flux(1, 1, 1.0))


def check_psf(psf: np.ndarray):
    size = psf.shape[-1]
    assert psf.shape[-2] == size and size % 2 == 1
    assert psf.sum() == pytest.approx(1.0, abs=1e-12) and psf.min() >= 0
    rows, cols = np.indices(psf.shape)
    centre = (size - 1) / 2
    assert abs((psf * cols).sum() - centre) <= 0.5 and abs((psf * rows).sum() - centre) <= 0.5
    peak = np.unravel_index(psf.argmax(), psf.shape)
    assert max(abs(peak[0] - centre), abs(peak[1] - centre)) <= 1


def test_cosmos_psfs_are_centred_and_normalised():
    psfs = read_cosmos_psfs()
    assert psfs.shape == (100, 41, 41)
    for psf in psfs:
        check_psf(psf)


def test_cosmos_galaxy(catalog):
    stamps, psf = cosmos_galaxy()
    assert len(stamps) == 1 and stamps.shape == (543, 543) and stamps.unit == u.electron / u.s
    assert stamps.pixel_scale.to_value(u.arcsec / u.pix) == pytest.approx(0.03, rel=1e-3)
    sigma = stamps.noise[0, 0, 0]
    assert np.sqrt(np.median(catalog["NOISE_VARIANCE"].value)) == pytest.approx(sigma, rel=0.3)
    centre = stamps.wcs[0].pixel_to_world(271, 271)
    target = stamps.meta["ra"][0], stamps.meta["dec"][0]
    assert abs(centre.ra.deg - target[0]) * 3600 < 0.1 and abs(centre.dec.deg - target[1]) * 3600 < 0.1
    check_psf(psf)
