"""Stamps: construction and checks, slicing, FITS reading and writing, cutting with WCS, reversible scaling."""
import json
import warnings

import astropy.units as u
import matplotlib
import numpy as np
import pytest
import torch
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import Table
from astropy.wcs import WCS

from astrobayes.core.paths import SOURCES_KEY, read_sources
from astrobayes.galaxies.io import (
    Stamps,
    StampScaler,
    cut_stamps,
    read_stamps,
    write_stamps,
)

matplotlib.use("Agg")


def tan_wcs(shape=(120, 100), scale_arcsec=0.05, rotation_deg=30.0) -> WCS:
    """A rotated gnomonic WCS around (150°, 2°) for an image of ``shape`` (rows, columns)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    wcs.wcs.cd = scale_arcsec / 3600 * np.array([[-c, s], [s, c]])
    return wcs


@pytest.fixture
def sky_image():
    """An image (120 rows × 100 columns) of three Gaussian galaxies on unit noise, with its WCS."""
    rng = np.random.default_rng(42)
    rows, cols = np.mgrid[:120, :100]
    image = rng.normal(0.0, 1.0, (120, 100))
    for x, y in ((30.2, 40.7), (70.0, 80.0), (50.5, 20.5)):
        image += 80 * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 2.5 ** 2))
    return image, tan_wcs()


@pytest.fixture
def stamps(sky_image):
    image, wcs = sky_image
    positions = Table({"x": [30.2, 70.0, 50.5, 2.0], "y": [40.7, 80.0, 20.5, 3.0], "name": ["a", "b", "c", "corner"]})
    out = cut_stamps(image, positions, 15, wcs=wcs, noise=np.ones_like(image))
    out.unit = u.adu
    return out


# ------------------------------------------------------------------ construction
def test_constructor_masks_nan_and_broadcasts_noise():
    data = np.ones((3, 6, 5))
    data[0, 1, 1] = np.nan
    mask = np.zeros(data.shape, dtype=bool)
    mask[2, 0, 0] = True
    stamps = Stamps(data, mask=mask, noise=0.5, pixel_scale=0.03 * u.arcsec)
    assert len(stamps) == 3 and stamps.shape == (6, 5)
    assert stamps.mask[0, 1, 1] and stamps.mask[2, 0, 0] and stamps.mask.sum() == 2
    assert np.isnan(stamps.data[2, 0, 0]) and np.isnan(stamps.noise[2, 0, 0])   # masked pixels are stored as NaN
    assert stamps.noise[1, 3, 3] == 0.5 and stamps.pixel_scale == 0.03 * u.arcsec / u.pix
    assert stamps.meta["id"].tolist() == [0, 1, 2]
    masked = Stamps(np.ma.masked_array(np.ones((2, 3, 3)), mask=np.eye(3, dtype=bool)[None].repeat(2, 0)))
    assert masked.mask.sum() == 6 and np.isnan(masked.data[0, 1, 1])
    single = Stamps(np.zeros((4, 4)) * u.adu)
    assert len(single) == 1 and single.unit == u.adu
    assert "3 stamps of 6×5 pixels" in repr(stamps)


@pytest.mark.parametrize("data, match", [(np.ones(5), "data must be"), (np.ones((2, 2, 3, 3)), "data must be"),
                                         (np.full((2, 3, 3), np.inf), "inf")])
def test_constructor_refuses_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        Stamps(data)


def test_constructor_refuses_bad_noise_meta_wcs_and_scale():
    data = np.ones((2, 4, 4))
    with pytest.raises(ValueError, match="noise has shape"):
        Stamps(data, noise=np.ones((3, 3)))
    noise = np.ones((2, 4, 4))
    noise[1, 2, 2] = 0.0
    with pytest.raises(ValueError, match=r"noise must be .* stamp\(s\) 1"):
        Stamps(data, noise=noise)
    masked = np.zeros(data.shape, dtype=bool)
    masked[1, 2, 2] = True
    assert Stamps(data, noise=noise, mask=masked).noise is not None   # a bad noise under a mask is fine
    with pytest.raises(ValueError, match="meta has 3 rows"):
        Stamps(data, meta=Table({"id": [1, 2, 3]}))
    with pytest.raises(ValueError, match="wcs has 1 entries"):
        Stamps(data, wcs=[tan_wcs()])
    with pytest.raises(ValueError, match="pixel_scale"):
        Stamps(data, pixel_scale=3 * u.kg)


def test_empty_stamp_is_an_error_or_dropped_with_a_warning():
    data = np.ones((4, 3, 3))
    data[1] = np.nan
    data[3] = np.nan
    with pytest.raises(ValueError, match=r"stamp\(s\) 1, 3 have no valid pixel"):
        Stamps(data)
    with pytest.warns(UserWarning, match=r"dropped 2 empty stamp\(s\).*1, 3"):
        kept = Stamps(data, drop_empty=True, wcs=tan_wcs())
    assert len(kept) == 2 and kept.meta["id"].tolist() == [0, 2] and len(kept.wcs) == 2


def test_slicing_subsets_everything(stamps):
    for key, expected in ((1, [1]), (slice(1, 3), [1, 2]), (np.array([3, 0]), [3, 0]),
                          (np.array([True, False, True, False]), [0, 2]), (-1, [3])):
        part = stamps[key]
        assert part.meta["id"].tolist() == expected
        assert np.array_equal(part.data, stamps.data[expected], equal_nan=True)
        assert np.array_equal(part.noise, stamps.noise[expected], equal_nan=True)
        assert np.array_equal(part.mask, stamps.mask[expected])
        assert len(part.wcs) == len(expected) and part.unit == stamps.unit
    with pytest.raises(ValueError, match="empty"):
        stamps[2:2]
    with pytest.raises(IndexError):
        stamps[np.array([True, False])]
    with pytest.raises(IndexError):
        stamps[7]


def test_filled_and_tensor(stamps):
    corner = stamps[3]
    assert corner.mask.any() and not np.isnan(corner.filled()).any()
    assert (corner.filled(-9.0)[corner.mask] == -9.0).all()
    tensor = stamps.to_tensor()
    assert tensor.shape == (4, 1, 15, 15) and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()


def test_plot_returns_a_figure(stamps):
    import matplotlib.pyplot as plt

    figure = stamps.plot(3, ncols=2)
    assert isinstance(figure, matplotlib.figure.Figure) and len(figure.axes) == 4
    plt.close(figure)
    with pytest.raises(ValueError, match="stretch"):
        stamps.plot(stretch="cubic")


# ------------------------------------------------------------------ cutting
def test_cut_stamps_keeps_the_wcs(sky_image):
    image, wcs = sky_image
    sky = wcs.pixel_to_world([30.2, 70.0, 50.5], [40.7, 80.0, 20.5])
    stamps = cut_stamps(image, sky, 15, wcs=wcs)
    assert stamps.pixel_scale.to_value(u.arcsec / u.pix) == pytest.approx(0.05)
    for k in range(len(stamps)):
        centre = stamps.wcs[k].pixel_to_world(stamps.meta["x_stamp"][k], stamps.meta["y_stamp"][k])
        assert centre.separation(sky[k]).to_value(u.arcsec) < 1e-6
    assert np.allclose(stamps.meta["ra"], sky.ra.deg) and np.allclose(stamps.meta["dec"], sky.dec.deg)
    # an integer position: the stamp is the image's slice
    exact = cut_stamps(image, [[70, 80]], 5, wcs=wcs)
    assert np.array_equal(exact.data[0], image[78:83, 68:73])


def test_cut_stamps_positions_sizes_and_inputs(sky_image):
    image, wcs = sky_image
    by_pixels = cut_stamps(image, Table({"x": [30.2], "y": [40.7], "id": [17]}), 15, wcs=wcs)
    sky = wcs.pixel_to_world(30.2, 40.7)
    by_radec = cut_stamps(image, Table({"ra": [sky.ra.deg], "dec": [sky.dec.deg]}), 15, wcs=wcs)
    assert by_pixels.meta["id"][0] == 17
    assert np.array_equal(by_pixels.data, by_radec.data)
    assert cut_stamps(image, sky, 0.75 * u.arcsec, wcs=wcs).shape == (15, 15)
    hdu = fits.ImageHDU(image, header=wcs.to_header())
    hdu.header["BUNIT"] = "adu"
    from_hdu = cut_stamps(hdu, sky, 15)
    assert from_hdu.unit == u.adu and np.array_equal(from_hdu.data, by_pixels.data)
    ccd = CCDData(image, unit="electron", wcs=wcs, uncertainty=StdDevUncertainty(np.full(image.shape, 2.0)))
    from_ccd = cut_stamps(ccd, sky, 15)
    assert from_ccd.unit == u.electron and np.all(from_ccd.noise == 2.0) and from_ccd.wcs is not None


def test_cut_stamps_edges_and_errors(sky_image):
    image, _ = sky_image
    corner = cut_stamps(image, [[1.0, 2.0]], 11)
    assert corner.mask[0, :3].all() and np.isnan(corner.data[0, 0, 0]) and not corner.mask[0, 8, 8]
    with pytest.raises(ValueError, match=r"positions row\(s\) 1 give stamps entirely outside"):
        cut_stamps(image, [[50.0, 50.0], [500.0, 50.0]], 11)
    with pytest.raises(ValueError, match=r"row\(s\) 0 give stamps crossing"):
        cut_stamps(image, [[1.0, 2.0]], 11, mode="strict")
    with pytest.raises(ValueError, match="wcs"):
        cut_stamps(image, SkyCoord(150 * u.deg, 2 * u.deg), 11)
    with pytest.raises(ValueError, match="wcs"):
        cut_stamps(image, [[5.0, 5.0]], 1 * u.arcsec)
    with pytest.raises(ValueError, match="positions must be"):
        cut_stamps(image, np.ones((3, 3)), 11)
    with pytest.raises(ValueError, match="size"):
        cut_stamps(image, [[5.0, 5.0]], 0)
    with pytest.raises(ValueError, match="image must be 2-D"):
        cut_stamps(np.ones((2, 30, 30)), [[5.0, 5.0]], 5)
    with pytest.raises(ValueError, match="noise has shape"):
        cut_stamps(image, [[5.0, 5.0]], 5, noise=np.ones((3, 3)))


# ------------------------------------------------------------------ FITS
def assert_same_stamps(a: Stamps, b: Stamps):
    assert np.array_equal(a.data, b.data, equal_nan=True) and np.array_equal(a.mask, b.mask)
    assert (a.noise is None) == (b.noise is None)
    if a.noise is not None:
        assert np.array_equal(a.noise, b.noise, equal_nan=True)
    assert a.unit == b.unit and a.pixel_scale == b.pixel_scale
    assert a.meta.colnames == b.meta.colnames
    for name in a.meta.colnames:
        assert np.array_equal(np.asarray(a.meta[name]), np.asarray(b.meta[name])), name
        assert getattr(a.meta[name], "unit", None) == getattr(b.meta[name], "unit", None), name
    assert (a.wcs is None) == (b.wcs is None)
    if a.wcs is not None:
        grid = np.array([[0.0, 0.0], [7.3, 2.1], [14.0, 14.0]]).T
        for wa, wb in zip(a.wcs, b.wcs):
            assert np.allclose(wa.pixel_to_world_values(*grid), wb.pixel_to_world_values(*grid), rtol=0, atol=1e-12)


def test_write_then_read_round_trips_exactly(stamps, tmp_path):
    stamps.meta.meta.update({"survey": "mock", "rms": 1.0, "bands": ["r"]})
    path = write_stamps(stamps, tmp_path / "stamps.fits")
    again = read_stamps(path)
    assert_same_stamps(stamps, again)
    assert {k: v for k, v in again.meta.meta.items() if k != SOURCES_KEY} == stamps.meta.meta
    assert read_sources(again.meta.meta) == [str(path.resolve())]  # write_stamps refuses to write over it
    assert again.meta["name"].dtype.kind == "U"
    assert again.meta["name"].tolist() == ["a", "b", "c", "corner"]
    plain = Stamps(np.arange(18.0).reshape(2, 3, 3))
    assert_same_stamps(plain, read_stamps(write_stamps(plain, tmp_path / "plain.fits")))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_stamps(stamps, path)
    write_stamps(stamps[:2], path, overwrite=True)
    assert len(read_stamps(path)) == 2


def test_write_refuses_the_file_it_was_read_from(stamps, tmp_path):
    path = write_stamps(stamps, tmp_path / "stamps.fits")
    original = path.read_bytes()
    again = read_stamps(path)
    (tmp_path / "link.fits").symlink_to(path)
    for subset, target in ((again, path), (again[:2], tmp_path / "link.fits")):  # the data may be memory-mapped
        with pytest.raises(ValueError, match="is the FITS file the stamps were read from"):
            write_stamps(subset, target, overwrite=True)
    assert path.read_bytes() == original
    write_stamps(again, tmp_path / "copy.fits")  # elsewhere is fine; the record of the source is not written
    assert SOURCES_KEY not in fits.getheader(tmp_path / "copy.fits", "META").get("METAJSON", "")


def cutout_hdu(value: float, shape=(9, 9), name=None) -> fits.ImageHDU:
    hdu = fits.ImageHDU(np.full(shape, value), header=tan_wcs(shape, 0.03).to_header(), name=name)
    hdu.header["BUNIT"] = "ELECTRONS/S"
    return hdu


def test_read_single_cutouts_image_hdus_and_cubes(tmp_path):
    one = fits.PrimaryHDU(np.arange(81.0).reshape(9, 9), header=tan_wcs((9, 9), 0.03).to_header())
    one.header["BUNIT"] = "adu"
    one.writeto(tmp_path / "one.fits")
    single = read_stamps(tmp_path / "one.fits")
    assert len(single) == 1 and single.unit == u.adu and single.wcs[0].has_celestial
    assert single.pixel_scale.to_value(u.arcsec / u.pix) == pytest.approx(0.03)
    assert single.meta["source"][0].endswith("one.fits") and single.meta["hdu"][0] == 0

    several = fits.HDUList([fits.PrimaryHDU(), cutout_hdu(1.0), cutout_hdu(2.0), cutout_hdu(3.0)])
    from_hdus = read_stamps(several)
    assert len(from_hdus) == 3 and from_hdus.unit == u.electron / u.s
    assert from_hdus.meta["hdu"].tolist() == [1, 2, 3]

    header = tan_wcs((9, 9), 0.03).to_header()
    cube = fits.HDUList([fits.PrimaryHDU(np.stack([np.full((9, 9), v) for v in (1.0, 2.0, 3.0)]), header=header)])
    cube[0].header["CTYPE3"] = "STAMP"
    cube[0].header["BUNIT"] = "electron / s"
    from_cube = read_stamps(cube)
    assert np.array_equal(from_cube.data, from_hdus.data)
    assert from_cube.meta["plane"].tolist() == [0, 1, 2] and from_cube.wcs[2].naxis == 2
    centre = (4.0, 4.0)
    assert np.allclose(from_cube.wcs[1].pixel_to_world_values(*centre), from_hdus.wcs[1].pixel_to_world_values(*centre))

    several.writeto(tmp_path / "several.fits")
    cube.writeto(tmp_path / "cube.fits")
    both = read_stamps([tmp_path / "several.fits", tmp_path / "cube.fits"])
    assert len(both) == 6 and both.meta["id"].tolist() == list(range(6))
    chosen = read_stamps(tmp_path / "several.fits", hdu=[3, 1])
    assert chosen.data[:, 0, 0].tolist() == [3.0, 1.0]


def test_read_mask_and_noise_hdus():
    data = np.ones((2, 5, 5))
    mask = np.zeros((2, 5, 5), dtype=np.uint8)
    mask[0, 1, 1] = 4   # a bitmask: any set bit is bad
    hdul = fits.HDUList([fits.PrimaryHDU(data), fits.ImageHDU(mask, name="DQ"), fits.ImageHDU(data * 0.1, name="ERR")])
    stamps = read_stamps(hdul, mask_hdu="DQ", noise_hdu="ERR")
    assert stamps.mask.sum() == 1 and stamps.mask[0, 1, 1] and np.nanmax(stamps.noise) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="mask_hdu"):
        read_stamps(fits.HDUList([fits.PrimaryHDU(data), fits.ImageHDU(np.zeros((3, 3)), name="DQ")]), mask_hdu="DQ")


def test_read_errors_name_file_and_hdu(tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(7))]).writeto(tmp_path / "line.fits")
    with pytest.raises(ValueError, match=r"HDU 1 of .*line\.fits \(hdu\) holds 1-D data"):
        read_stamps(tmp_path / "line.fits")
    with pytest.raises(ValueError, match=r"HDU 0 \(PRIMARY\) of the HDUList \(hdu\) holds 4-D data"):
        read_stamps(fits.HDUList([fits.PrimaryHDU(np.ones((2, 2, 4, 4)))]))
    table = fits.BinTableHDU(Table({"a": [1, 2]}), name="CAT")
    with pytest.raises(ValueError, match=r"HDU 1 \(CAT\) of the HDUList \(hdu\) is a BinTableHDU, not image data"):
        read_stamps(fits.HDUList([fits.PrimaryHDU(), table]), hdu=1)
    with pytest.raises(ValueError, match=r"holds no image HDU \(HDU 0 \(PRIMARY\): PrimaryHDU \(empty\)"):
        read_stamps(fits.HDUList([fits.PrimaryHDU(), table]))
    with pytest.raises(ValueError, match="hdu='NOPE'"):
        read_stamps(fits.HDUList([fits.PrimaryHDU(np.ones((3, 3)))]), hdu="NOPE")
    mixed = fits.HDUList([fits.PrimaryHDU(), cutout_hdu(1.0, name="SMALL"), cutout_hdu(1.0, (11, 11), name="BIG")])
    with pytest.raises(ValueError, match=r"\(9, 9\) from HDU 1 \(SMALL\) .* but \(11, 11\) from HDU 2 \(BIG\)"):
        read_stamps(mixed)
    fits.HDUList([fits.PrimaryHDU(np.ones((9, 9)))]).writeto(tmp_path / "nine.fits")
    fits.HDUList([fits.PrimaryHDU(np.ones((11, 11)))]).writeto(tmp_path / "eleven.fits")
    with pytest.raises(ValueError, match=r"\(9, 9\) from HDU 0 .*nine\.fits but \(11, 11\) from HDU 0 .*eleven\.fits"):
        read_stamps([tmp_path / "nine.fits", tmp_path / "eleven.fits"])
    blank = fits.HDUList([fits.PrimaryHDU(), cutout_hdu(1.0, name="GOOD"), cutout_hdu(np.nan, name="BLANK")])
    with pytest.raises(ValueError, match=r"1 stamp\(s\) have no valid pixel .*HDU 2 \(BLANK\) of the HDUList"):
        read_stamps(blank)
    with pytest.warns(UserWarning, match=r"dropped 1 empty stamp"):
        assert len(read_stamps(blank, drop_empty=True)) == 1
    with pytest.raises(FileNotFoundError):
        read_stamps(tmp_path / "missing.fits")


def test_unreadable_bunit_warns_and_gives_no_unit():
    hdu = fits.PrimaryHDU(np.ones((4, 4)))
    hdu.header["BUNIT"] = "furlongs per fortnight"
    with pytest.warns(UserWarning, match="BUNIT"):
        assert read_stamps(fits.HDUList([hdu])).unit is None


# ------------------------------------------------------------------ damaged files (found by tests/fuzz)
def _card(raw: bytes, keyword: str, value: bytes) -> bytes:
    """``raw`` with the header card ``keyword`` rewritten to ``value`` (80 bytes)."""
    start = raw.index(keyword.encode().ljust(8))
    return raw[:start] + (keyword.encode().ljust(8) + b"= " + value).ljust(80) + raw[start + 80:]


def test_truncated_or_damaged_fits_names_the_file(tmp_path):
    """Astropy's own errors (a reshape error, VerifyError, KeyError, AssertionError) used to escape without the
    file name; a truncated file is now refused as truncated."""
    fits.HDUList([fits.PrimaryHDU(np.arange(400.0).reshape(20, 20))]).writeto(tmp_path / "whole.fits")
    raw = (tmp_path / "whole.fits").read_bytes()
    path = tmp_path / "cut short.fits"
    path.write_bytes(raw[:4000])  # the header and a third of the pixels
    with pytest.raises(ValueError, match=r"cut short\.fits is truncated .*copy or download it again"):
        read_stamps(path)
    for keyword, value in (("BITPIX", b"'eight'"), ("NAXIS1", b"'twenty'"), ("NAXIS", b"7")):
        path.write_bytes(_card(raw, keyword, value))
        with pytest.raises(ValueError, match=r"cut short\.fits"):
            read_stamps(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"cut short\.fits is not a readable FITS file"):
        read_stamps(path)
    with pytest.raises(ValueError, match="is a folder"):
        read_stamps(tmp_path)


def test_incomplete_write_stamps_file_is_refused(stamps, tmp_path):
    """A write_stamps file cut at an HDU boundary used to be read without its mask, noise and metadata."""
    raw = write_stamps(stamps, tmp_path / "full.fits").read_bytes()
    with fits.open(tmp_path / "full.fits") as hdul:
        mask_start = hdul.fileinfo(1)["hdrLoc"]
        meta_start = hdul.fileinfo(len(hdul) - 1)["hdrLoc"]
    for cut, missing in ((mask_start, "MASK and META"), (meta_start, "META")):
        (tmp_path / "part.fits").write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=rf"part\.fits is a write_stamps file without its {missing} HDU"):
            read_stamps(tmp_path / "part.fits")
    (tmp_path / "part.fits").write_bytes(_card(raw, "PIXSCALE", b"-0.5"))
    with pytest.raises(ValueError, match=r"part\.fits: PIXSCALE = -0.5 is not a positive number"):
        read_stamps(tmp_path / "part.fits")


def test_inf_pixels_and_bad_noise_name_the_hdu():
    """These were refused by Stamps with a stamp index only, not the file and HDU they came from."""
    cube = np.ones((2, 5, 5))
    cube[1, 2, 2] = np.inf
    with pytest.raises(ValueError, match=r"1 stamp\(s\) have inf pixels: HDU 0 \(PRIMARY\) of the HDUList, plane 1"):
        read_stamps(fits.HDUList([fits.PrimaryHDU(cube)]))
    noise = np.full((2, 5, 5), 0.1)
    noise[0, 0, 0] = -1.0
    hdul = fits.HDUList([fits.PrimaryHDU(np.ones((2, 5, 5))), fits.ImageHDU(noise, name="NOISE")])
    with pytest.raises(ValueError, match=r"noise map of 1 stamp\(s\) .*HDU 0 \(PRIMARY\) of the HDUList, plane 0"):
        read_stamps(hdul, hdu=0, noise_hdu="NOISE")
    with pytest.raises(TypeError, match="mask_hdu must be an HDU index or EXTNAME"):
        read_stamps(hdul, mask_hdu=1.5)


def test_cut_stamps_far_outside_or_from_an_empty_image():
    """Found by tests/fuzz: a position of 1e308 overflowed inside Cutout2D (OverflowError)."""
    with pytest.raises(ValueError, match=r"positions row\(s\) 0 give stamps entirely outside the image"):
        cut_stamps(np.ones((5, 5)), [[1e308, -1e308]], 3)
    with pytest.raises(ValueError, match=r"image must be 2-D and non-empty, got shape \(0, 0\)"):
        cut_stamps(np.ones((0, 0)), [[1.0, 1.0]], 3)


def test_pixel_scale_errors_say_what_to_pass():
    with pytest.raises(TypeError, match="pixel_scale must be a number"):
        Stamps(np.ones((4, 4)), pixel_scale="fast")
    with pytest.raises(ValueError, match=r"pixel_scale is in pix / arcsec.*inverse, 0.0333333 arcsec / pix"):
        Stamps(np.ones((4, 4)), pixel_scale=30 * u.pix / u.arcsec)


# ------------------------------------------------------------------ scaling
@pytest.mark.parametrize("kind", ["flux", "asinh", "linear"])
def test_scaler_inverts_exactly_on_arrays_and_stamps(kind, stamps):
    rng = np.random.default_rng(3)
    array = rng.normal(0.0, 1.0, (6, 12, 12)) + 50 * rng.random((6, 1, 1)) * np.exp(-np.arange(12) / 3.0)
    array[0, 0, 0] = np.nan
    scaler = StampScaler(kind).fit(array)
    scaled = scaler.transform(array)
    assert np.isnan(scaled[0, 0, 0]) and np.isfinite(scaled[1:]).all()
    restored = StampScaler.from_dict(json.loads(json.dumps(scaler.to_dict()))).inverse_transform(
        scaled, flux=scaler.flux_)
    assert np.allclose(restored, array, rtol=1e-12, atol=1e-12, equal_nan=True)

    positive = Stamps(np.abs(stamps.filled(1.0)) + 0.1, noise=stamps.noise, mask=stamps.mask, wcs=stamps.wcs,
                      meta=stamps.meta, unit=stamps.unit)
    scaler = StampScaler(kind)
    out = scaler.fit_transform(positive)
    assert isinstance(out, Stamps) and out.unit is None and np.array_equal(out.mask, positive.mask)
    if kind == "asinh":
        assert out.noise is None   # non-linear: a per-pixel σ no longer applies
    else:
        factor = np.asarray(out.meta["scaler_flux"])[:, None, None] if kind == "flux" else scaler.scale_
        assert np.allclose(out.noise * factor, positive.noise, equal_nan=True)
    back = scaler.inverse_transform(out)
    assert back.unit == u.adu and back.meta.colnames == positive.meta.colnames
    assert np.allclose(back.data, positive.data, rtol=1e-12, atol=1e-12, equal_nan=True)
    if kind != "asinh":
        assert np.allclose(back.noise, positive.noise, rtol=1e-12, equal_nan=True)


def test_scaler_fits_a_global_noise_level_and_refuses_bad_input():
    rng = np.random.default_rng(0)
    noise_only = rng.normal(0.0, 3.0, (200, 16, 16))
    assert StampScaler("asinh").fit(noise_only).noise_level_ == pytest.approx(3.0, rel=0.03)  # ~20,000 edge pixels
    assert StampScaler("asinh", noise_level=2.0).fit(noise_only).noise_level_ == 2.0
    with pytest.raises(RuntimeError, match="not fitted"):
        StampScaler("linear").transform(noise_only)
    with pytest.raises(ValueError, match=r"stamp\(s\) 1 have zero total flux"):
        StampScaler("flux").transform(np.stack([np.ones((4, 4)), np.zeros((4, 4))]))
    with pytest.raises(ValueError, match="kind"):
        StampScaler("log")
    with pytest.raises(ValueError, match="noise_level"):
        StampScaler("asinh").fit(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="format"):
        StampScaler.from_dict({"kind": "flux"})


def test_no_warnings_reading_a_written_file(stamps, tmp_path):
    path = write_stamps(stamps, tmp_path / "quiet.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_stamps(path)
