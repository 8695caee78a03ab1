"""ShearMap container, HEALPix FITS I/O and catalogue binning (astrobayes.shear.maps)."""
import doctest
import warnings

import astropy.units as u
import healpy as hp
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import QTable, Table

from astrobayes.shear import maps as maps_module
from astrobayes.shear.maps import ShearMap, catalog_to_maps, read_maps, write_maps
from astrobayes.shear.simulate import kappa_to_shear, shear_to_kappa


def test_docstring_examples_run():
    assert doctest.testmod(maps_module, optionflags=doctest.ELLIPSIS).failed == 0


def _example(nside=4, nest=False, seed=0):
    rng = np.random.default_rng(seed)
    npix = 12 * nside ** 2
    mask = rng.random(npix) < 0.7
    return ShearMap(kappa=rng.normal(size=npix), gamma1=rng.normal(size=npix), gamma2=rng.normal(size=npix),
                    mask=mask, nest=nest, coord="G", weight=rng.random(npix) + 0.5,
                    n_gal=rng.integers(1, 9, npix).astype(float), noise=rng.random(npix) + 0.1)


# ---------------------------------------------------------------- container
def test_validation_errors():
    with pytest.raises(ValueError, match=r"gamma1 has 3072 pixels \(nside 16\) but nside=32 needs 12288"):
        ShearMap(gamma1=np.zeros(3072), gamma2=np.zeros(3072), nside=32)
    with pytest.raises(ValueError, match=r"kappa has 100 pixels along its last axis, no nside.*nearest HEALPix "
                                         r"sizes are 48 \(nside 2\) and 192 \(nside 4\)"):
        ShearMap(kappa=np.zeros(100))
    with pytest.raises(ValueError, match="power of 2"):
        ShearMap(kappa=np.zeros(12 * 9), nside=3)
    with pytest.raises(ValueError, match="pair"):
        ShearMap(gamma1=np.zeros(12))
    with pytest.raises(ValueError, match="all-masked map"):
        ShearMap(kappa=np.zeros(12), mask=np.zeros(12, bool))
    with pytest.raises(ValueError, match=r"kappa has 1 NaN/inf value\(s\) or hp.UNSEEN in observed pixels"):
        ShearMap(kappa=np.r_[np.nan, np.zeros(11)])
    with pytest.raises(ValueError, match="UNSEEN in observed"):
        ShearMap(kappa=np.r_[hp.UNSEEN, np.zeros(11)], mask=np.ones(12, bool))
    with pytest.raises(ValueError, match="coord"):
        ShearMap(kappa=np.zeros(12), coord="X")
    with pytest.raises(ValueError, match="mask must be boolean"):
        ShearMap(kappa=np.zeros(12), mask=np.full(12, 0.5))
    with pytest.raises(ValueError, match="n_gal must be >= 0"):
        ShearMap(kappa=np.zeros(12), n_gal=-np.ones(12))


def test_masked_pixels_become_zero_and_unseen_means_masked():
    kappa = np.r_[np.nan, hp.UNSEEN, np.arange(10.0)]
    m = ShearMap(kappa=kappa, mask=np.arange(12) >= 2)
    assert m.kappa[:2].tolist() == [0.0, 0.0] and np.isnan(kappa[0])  # input untouched
    assert ShearMap(kappa=kappa[1:].tolist() + [1.0]).mask.tolist() == [False] + [True] * 11
    assert m.fsky == pytest.approx(10 / 12)


def test_reordering_matches_healpy():
    ring = _example()
    nested = ring.to_nest()
    assert nested.nest and np.array_equal(nested.kappa, hp.reorder(ring.kappa, r2n=True))
    assert np.array_equal(nested.mask, hp.reorder(ring.mask.astype(float), r2n=True) == 1)
    back = nested.to_ring()
    for name in ring.fields + ("mask",):
        assert np.array_equal(getattr(back, name), getattr(ring, name))


def test_udgrade_weighted_mean_over_observed_children():
    fine = _example(nside=8, nest=True)
    coarse = fine.udgrade(4)
    w = (fine.weight * fine.mask).reshape(-1, 4)
    expected = (w * fine.kappa.reshape(-1, 4)).sum(1) / np.where(w.sum(1) > 0, w.sum(1), 1)
    assert np.array_equal(coarse.mask, fine.mask.reshape(-1, 4).any(1))
    assert np.allclose(coarse.kappa[coarse.mask], expected[coarse.mask])
    assert coarse.n_gal.sum() == fine.n_gal[fine.mask].sum()
    # unit weights on a full sky: the same as healpy's ud_grade; RING in → RING out
    full = ShearMap(kappa=np.arange(768.0))
    assert np.allclose(full.udgrade(4).kappa, hp.ud_grade(full.kappa, 4))
    assert full.udgrade(4).nest is False
    # upgrading copies values, splits counts; degrading back restores them
    up = coarse.udgrade(16)
    assert up.n_gal.sum() == pytest.approx(coarse.n_gal.sum())
    again = up.udgrade(4)
    assert np.allclose(again.kappa, coarse.kappa) and np.array_equal(again.mask, coarse.mask)
    # noise = σ_e/√N_eff: a child with a quarter of the galaxies is twice as noisy, and back again
    noisy = ShearMap(kappa=np.zeros(48), noise=np.full(48, 0.1), n_gal=np.full(48, 8.0), nest=True)
    assert np.allclose(noisy.udgrade(4).noise, 0.2)
    assert np.allclose(noisy.udgrade(4).udgrade(2).noise, 0.1)
    assert not fine.udgrade(4, min_coverage=1.0).mask.sum() > coarse.mask.sum()


def test_plot_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = _example().plot("gamma2", cmap="viridis")
    assert isinstance(figure, matplotlib.figure.Figure)
    plt.close("all")
    with pytest.raises(ValueError, match="index="):
        ShearMap(kappa=np.zeros((2, 12))).plot()


# ---------------------------------------------------------------- FITS
@pytest.mark.parametrize("nest", [False, True])
def test_write_read_round_trip_exact(tmp_path, nest):
    original = _example(nest=nest)
    write_maps(tmp_path / "m.fits", original)
    back = read_maps(tmp_path / "m.fits")
    assert back.nest is nest and back.coord == "G" and back.fields == original.fields
    for name in original.fields + ("mask",):
        assert np.array_equal(getattr(back, name), getattr(original, name)), name
    raw = hp.read_map(tmp_path / "m.fits", field=0, nest=None)
    assert np.all(raw[~original.mask] == hp.UNSEEN)
    assert read_maps(tmp_path / "m.fits", nest=not nest).nest is (not nest)
    with pytest.raises(OSError):
        write_maps(tmp_path / "m.fits", original)


def test_write_refuses_a_file_the_maps_were_read_from(tmp_path, monkeypatch):
    write_maps(tmp_path / "m.fits", _example())
    original = (tmp_path / "m.fits").read_bytes()
    monkeypatch.chdir(tmp_path)
    back = read_maps("m.fits").to_nest()  # derived maps keep the record of their source
    for target in ("m.fits", tmp_path / "m.fits", "./x/../m.fits"):
        with pytest.raises(ValueError, match="is the map file the maps were read from"):
            write_maps(target, back, overwrite=True)
    assert (tmp_path / "m.fits").read_bytes() == original
    write_maps("elsewhere.fits", back)


def test_read_separate_files_with_boolean_mask(tmp_path):
    m = _example()
    hp.write_map(tmp_path / "g1.fits", np.where(m.mask, m.gamma1, hp.UNSEEN), dtype=np.float64)
    hp.write_map(tmp_path / "g2.fits", m.gamma2, dtype=np.float64)  # no UNSEEN: the mask file decides
    hp.write_map(tmp_path / "mask.fits", m.mask, dtype=np.bool_)
    back = read_maps([tmp_path / "g1.fits", tmp_path / "g2.fits", tmp_path / "mask.fits"],
                     fields=("gamma1", "gamma2", "mask"))
    assert np.array_equal(back.mask, m.mask) and np.array_equal(back.gamma2, m.gamma2) and back.coord == "C"


def test_read_errors(tmp_path):
    npix = 192
    hp.write_map(tmp_path / "ring.fits", np.ones(npix), nest=False)
    hp.write_map(tmp_path / "nest.fits", np.ones(npix), nest=True)
    with pytest.raises(ValueError, match=r"ORDERING.*ring\.fits has RING.*nest\.fits has NESTED"):
        read_maps([tmp_path / "ring.fits", tmp_path / "nest.fits"], fields=("gamma1", "gamma2"))
    columns = fits.ColDefs([fits.Column("KAPPA", "D", array=np.ones(npix))])
    fits.BinTableHDU.from_columns(columns).writeto(tmp_path / "plain.fits")
    with pytest.raises(ValueError, match="no ORDERING keyword"):
        read_maps(tmp_path / "plain.fits")
    assert read_maps(tmp_path / "plain.fits", nest=True).nest is True
    fits.BinTableHDU.from_columns([fits.Column("KAPPA", "D", array=np.ones(1000))],
                                  header=fits.Header([("ORDERING", "RING")])).writeto(tmp_path / "bad.fits")
    with pytest.raises(ValueError, match="1000 pixels"):
        read_maps(tmp_path / "bad.fits")
    with pytest.raises(ValueError, match="not all ShearMap fields"):
        hp.write_map(tmp_path / "named.fits", np.ones(npix), column_names=["TEMPERATURE"])
        read_maps(tmp_path / "named.fits")
    hp.write_map(tmp_path / "gal.fits", np.ones(npix), coord="G")
    with pytest.raises(ValueError, match="COORDSYS"):
        read_maps(tmp_path / "gal.fits", fields="kappa", coord="C")
    hp.write_map(tmp_path / "cover.fits", np.full(npix, 0.5))
    with pytest.raises(ValueError, match="0/1"):
        read_maps([tmp_path / "ring.fits", tmp_path / "cover.fits"], fields=("kappa", "mask"))
    hp.write_map(tmp_path / "small.fits", np.ones(48))
    with pytest.raises(ValueError, match="NSIDE"):
        read_maps([tmp_path / "ring.fits", tmp_path / "small.fits"], fields=("gamma1", "gamma2"))


# ---------------------------------------------------------------- damaged files (found by tests/fuzz)
def _card(raw: bytes, keyword: str, value: bytes) -> bytes:
    """``raw`` with the header card ``keyword`` rewritten to ``value`` (80 bytes)."""
    start = raw.index(keyword.encode().ljust(8))
    return raw[:start] + (keyword.encode().ljust(8) + b"= " + value).ljust(80) + raw[start + 80:]


def test_damaged_map_files_name_the_file(tmp_path):
    """Raw OSError, TypeError ('buffer is too small'), IndexError, KeyError, VerifyError and AssertionError from
    astropy and healpy used to escape; each is now a ValueError naming the file."""
    write_maps(tmp_path / "good.fits", ShearMap(kappa=np.arange(48.0), mask=np.arange(48) > 2))
    raw = (tmp_path / "good.fits").read_bytes()
    path = tmp_path / "bad map.fits"
    path.write_bytes(raw[:7000])  # inside the table's data
    with pytest.raises(ValueError, match=r"bad map\.fits is truncated"):
        read_maps(path)
    path.write_bytes(raw[:2880])  # the primary HDU only
    with pytest.raises(ValueError, match=r"hdu=1 but .*bad map\.fits has only HDU\(s\) 0 to 0 .*truncated\?"):
        read_maps(path)
    for keyword, value, said in (("TTYPE1", b"0", "not a readable HEALPix FITS file"),  # astropy asserts
                                 ("TFORM1", b"'Q'", "not a readable HEALPix FITS file"),
                                 ("NSIDE", b"4", r"the header says NSIDE = 4 but its columns hold 48 pixels"),
                                 ("ORDERING", b"'NENTED'", "is neither RING nor NESTED")):
        path.write_bytes(_card(raw, keyword, value))
        with pytest.raises(ValueError, match=rf"bad map\.fits.*{said}"):
            read_maps(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"bad map\.fits is not a readable HEALPix FITS file"):
        read_maps(path)
    with pytest.raises(TypeError, match="hdu must be the index"):
        read_maps(tmp_path / "good.fits", hdu="1")


def test_wrong_length_map_file_gives_the_nearest_healpix_sizes(tmp_path):
    fits.BinTableHDU.from_columns([fits.Column("KAPPA", "D", array=np.ones(100))],
                                  header=fits.Header([("ORDERING", "RING")])).writeto(tmp_path / "short.fits")
    with pytest.raises(ValueError, match=r"short\.fits: not a full-sky HEALPix map: its columns hold 100 pixels "
                                         r"\(no nside.*nearest HEALPix sizes are 48 \(nside 2\) and 192 \(nside 4\)"):
        read_maps(tmp_path / "short.fits")


def test_nan_in_an_observed_pixel_of_a_file_names_the_file(tmp_path):
    values = np.arange(12.0)
    values[4] = np.nan
    hp.write_map(tmp_path / "nan.fits", values, column_names=["KAPPA"])
    with pytest.raises(ValueError, match=r"nan\.fits: kappa has 1 NaN/inf .* marked with hp\.UNSEEN"):
        read_maps(tmp_path / "nan.fits")


def test_a_mask_on_another_grid_names_both_grids():
    """It used to say only 'mask must have shape (768,)', blaming the mask when the map may be the odd one."""
    with pytest.raises(ValueError, match=r"mask has 192 pixels \(nside 4\) but the maps have 768 \(nside 8\): the "
                                         r"mask and the maps must be on one grid \(hp\.ud_grade one of them\)"):
        ShearMap(kappa=np.zeros(768), mask=np.ones(192, bool))
    with pytest.raises(ValueError, match=r"kappa has 108 pixels along its last axis, no nside"):
        ShearMap(kappa=np.zeros(108))  # 12·3², but nside must be a power of 2
    with pytest.raises(TypeError, match="kappa is a boolean array: is it the footprint"):
        ShearMap(np.ones(12, bool))  # the footprint in kappa's place was taken for a κ map of 0s and 1s


def test_grids_larger_than_memory_are_refused_before_allocating():
    small = ShearMap(kappa=np.zeros(12))
    with pytest.raises(ValueError, match=r"nside=1048576 needs about .* GiB .* more than this machine's"):
        small.udgrade(2**20)
    with pytest.raises(ValueError, match=r"nside=1048576 needs about"):
        catalog_to_maps(Table({"ra": [1.0], "dec": [2.0], "e1": [0.0], "e2": [0.0]}), 2**20)


# ---------------------------------------------------------------- catalogues
def _catalog(nside=8, n=4000, seed=1):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 200, n)  # galaxies at the centres of 200 pixels
    ra, dec = hp.pix2ang(nside, pixels, lonlat=True)
    return Table({"ra": ra, "dec": dec, "e1": rng.normal(0, 0.2, n), "e2": rng.normal(0, 0.2, n),
                  "w": rng.random(n), "pixel": pixels})


def test_catalog_to_maps_known_pixel_averages():
    cat = _catalog()
    maps = catalog_to_maps(cat, 8, weight="w", sigma_e=0.3)
    frame = cat.to_pandas()
    groups = frame.assign(we1=frame.w * frame.e1, we2=frame.w * frame.e2, w2=frame.w ** 2).groupby("pixel").sum()
    pixels = groups.index.to_numpy()
    assert np.array_equal(np.flatnonzero(maps.mask), np.sort(pixels))
    assert np.allclose(maps.gamma1[pixels], groups.we1 / groups.w)
    assert np.allclose(maps.gamma2[pixels], groups.we2 / groups.w)
    assert np.allclose(maps.weight[pixels], groups.w)
    assert np.array_equal(maps.n_gal[pixels], frame.groupby("pixel").size().loc[pixels])
    assert np.allclose(maps.noise[pixels], 0.3 * np.sqrt(groups.w2) / groups.w)
    # unit weights: σ_e/√N with σ_e estimated from the shapes; a pandas DataFrame, RA in radians, NEST
    table = QTable(cat)
    table["ra"] = (cat["ra"] * u.deg).to(u.rad)
    unit = catalog_to_maps(table.to_pandas() if False else table, 8, nest=True)
    sigma_e = np.sqrt(np.mean(cat["e1"] ** 2 + cat["e2"] ** 2) / 2)
    assert unit.meta["sigma_e"] == pytest.approx(sigma_e)
    ring_pixels = hp.nest2ring(8, np.flatnonzero(unit.mask))
    assert np.allclose(unit.noise[unit.mask], sigma_e / np.sqrt(maps.n_gal[ring_pixels]))
    from_pandas = catalog_to_maps(pd.DataFrame({c: np.asarray(cat[c]) for c in cat.colnames}), 8, weight="w")
    assert np.array_equal(from_pandas.gamma1, catalog_to_maps(cat, 8, weight="w").gamma1)
    assert np.array_equal(catalog_to_maps(cat, 8, flip_e2=True).gamma2, -catalog_to_maps(cat, 8).gamma2)


def test_catalog_errors_and_warnings():
    cat = _catalog(n=50)
    with pytest.raises(ValueError, match=r"no e2 column 'g2'; available columns: \['ra', 'dec', 'e1', 'e2'"):
        catalog_to_maps(cat, 8, e2="g2")
    with pytest.raises(ValueError, match="no ra column 'RA'"):
        catalog_to_maps(cat, 8, ra="RA")
    bad = cat.copy()
    bad["dec"][3] = 95.0
    with pytest.raises(ValueError, match=r"outside \[-90, 90\]"):
        catalog_to_maps(bad, 8)
    bad = cat.copy()
    bad["e1"][[2, 7]] = np.nan
    with pytest.raises(ValueError, match=r"2 galaxies have non-finite \['e1'\]"):
        catalog_to_maps(bad, 8)
    with pytest.warns(UserWarning, match="dropped 2 galaxies"):
        assert catalog_to_maps(bad, 8, drop_invalid=True).meta["n_dropped"] == 2
    bad = cat.copy()
    bad["w"][0] = -1.0
    with pytest.raises(ValueError, match="negative weights"):
        catalog_to_maps(bad, 8, weight="w")
    bad = cat.copy()
    bad["e1"][0] = 1.5
    with pytest.warns(UserWarning, match=r"1 galaxies have \|e\| > 1"):
        catalog_to_maps(bad, 8)
    qt = QTable(cat)
    qt["dec"] = qt["dec"] * u.km
    with pytest.raises(ValueError, match="not an angle"):
        catalog_to_maps(qt, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        catalog_to_maps(cat, 8)


def test_catalog_sign_convention_with_a_pure_e_pattern():
    """Tangential shear around a κ blob, written in the east/north frame from the flat-sky profile
    γ_t = κ̄(<r) − κ(r), must bin into the shear of :func:`kappa_to_shear` and invert to a positive peak."""
    nside, width, lon0, lat0 = 64, np.radians(3.0), np.radians(40.0), np.radians(-30.0)
    lon, lat = np.radians(hp.pix2ang(nside, np.arange(12 * nside ** 2), lonlat=True))
    r = np.arccos(np.clip(np.sin(lat) * np.sin(lat0) + np.cos(lat) * np.cos(lat0) * np.cos(lon - lon0), -1, 1))
    blob = np.exp(-r ** 2 / (2 * width ** 2))
    x2 = (r / width) ** 2
    gamma_t = np.where(r > 0, 2 / np.maximum(x2, 1e-300) * -np.expm1(-x2 / 2), 0.5) - np.exp(-x2 / 2)
    d = lon0 - lon  # position angle (east of north) of the blob seen from each pixel
    angle = np.arctan2(np.sin(d) * np.cos(lat0), np.cos(lat) * np.sin(lat0) - np.sin(lat) * np.cos(lat0) * np.cos(d))
    phi = np.pi / 2 - angle  # direction towards the blob, from east towards north
    shear = -gamma_t * np.exp(2j * phi)
    near = r < np.radians(25.0)
    cat = Table({"ra": np.degrees(lon[near]), "dec": np.degrees(lat[near]), "e1": shear.real[near],
                 "e2": shear.imag[near]})
    binned = catalog_to_maps(cat, nside)
    g1, g2 = kappa_to_shear(blob)
    inner = r < np.radians(10.0)
    assert np.abs(binned.gamma1 - g1)[inner].max() < 0.01 and np.abs(binned.gamma2 - g2)[inner].max() < 0.01
    kappa_e, kappa_b = shear_to_kappa(binned.gamma1, binned.gamma2, mask=binned.mask, return_b=True)
    centre = np.argmin(r)
    assert kappa_e[centre] > 0.8 and np.abs(kappa_b[inner]).max() < 0.1 * kappa_e[centre]
