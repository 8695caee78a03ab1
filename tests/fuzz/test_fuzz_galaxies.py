"""Fuzz the galaxy-stamp readers: FITS stamps, cutouts, the Stamps container and the scaler.

Seeds are a small :func:`write_stamps` file (3 stamps of 8 × 8 with mask,
noise, WCS, unit and pixel scale), a plain FITS cube with mask and noise HDUs,
and the shipped COSMOS PSF image (``catalogs/galaxies``, 101 × 101), damaged by
truncation, byte flips (anywhere, or in the header), header cards rewritten to
hostile values (BITPIX, NAXIS, sizes, BUNIT, PIXSCALE, EXTNAME, unicode) and
empty files. A reader may accept the damage (then its output must be sane:
mask and data agree, no inf, noise finite and positive where unmasked) or
refuse it with a documented exception naming the file or the argument.
"""
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

try:  # tests/fuzz as a package or as a plain directory on sys.path
    from .fuzz_damage import set_card
except ImportError:
    from fuzz_damage import set_card
from astrobayes.galaxies import (COSMOS_GALAXY_PSF, Stamps, StampScaler, cut_stamps, detect_sources, read_stamps,
                                 write_stamps)

DOCUMENTED = (ValueError, TypeError, FileNotFoundError)
NASTY_TEXT = ["é", "Ω", "\u200b", "\ufeff", "𝒢", "\x00", "'", "''", "/", "=", "\r", "\t", "中文", " " * 70]
NASTY_NUMBERS = ["0", "-1", "1", "3", "7", "-64", "-32", "64", "999", "99999999999", "1E400", "NAN", "-0", "T", "'8'",
                 "2.5", ""]
CARDS = ["BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "BUNIT", "PIXSCALE", "EXTNAME", "STAMPFMT", "METAJSON",
         "TFIELDS", "TFORM1", "TTYPE1", "PCOUNT", "GCOUNT", "CTYPE1", "CDELT1", "SIMPLE", "END", "XTENSION"]


def _stamp_file_bytes(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("seed")
    rng = np.random.default_rng(3)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.0, 2.0], [4.5, 4.5], [-0.03 / 3600, 0.03 / 3600]
    data = rng.normal(0.0, 1.0, (3, 8, 8))
    data[1, 0, :3] = np.nan
    stamps = Stamps(data, noise=0.5, wcs=wcs, unit="electron / s", pixel_scale=0.03)
    return write_stamps(stamps, folder / "stamps.fits").read_bytes()


def _cube_file_bytes(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("seed")
    rng = np.random.default_rng(4)
    hdul = fits.HDUList([fits.PrimaryHDU(rng.normal(size=(2, 6, 6)).astype(np.float32)),
                         fits.ImageHDU((rng.random((2, 6, 6)) < 0.1).astype(np.uint8), name="MASK"),
                         fits.ImageHDU(np.full((2, 6, 6), 0.3), name="NOISE")])
    hdul[0].header["BUNIT"] = "adu"
    hdul.writeto(folder / "cube.fits")
    return (folder / "cube.fits").read_bytes()


class Seeds(list):
    """(bytes, read_stamps keywords) of each seed file; a short repr keeps failure reports readable."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed FITS files>"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return Seeds([(_stamp_file_bytes(tmp_path_factory), {}),
                  (_cube_file_bytes(tmp_path_factory), {"hdu": 0, "mask_hdu": "MASK", "noise_hdu": "NOISE"}),
                  (COSMOS_GALAXY_PSF.read_bytes(), {})])


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err!r}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message}"


def check_stamps(stamps: Stamps) -> None:
    """What every Stamps collection guarantees."""
    assert len(stamps) >= 1 and stamps.data.ndim == 3 and stamps.mask.shape == stamps.data.shape
    assert not np.isinf(stamps.data).any()
    assert np.array_equal(np.isnan(stamps.data), stamps.mask)
    assert not stamps.mask.all(axis=(1, 2)).any()
    if stamps.noise is not None:
        unmasked = stamps.noise[~stamps.mask]
        assert (np.isfinite(unmasked) & (unmasked > 0)).all()
    assert len(stamps.meta) == len(stamps)
    if stamps.pixel_scale is not None:
        assert stamps.pixel_scale.unit == u.arcsec / u.pix and stamps.pixel_scale.value > 0


@st.composite
def damaged_fits(draw, seeds) -> tuple[bytes, dict]:
    """One seed file with one to three kinds of damage, and the keywords to read it with."""
    data, options = seeds[draw(st.integers(0, len(seeds) - 1))]
    for how in draw(st.lists(st.sampled_from(["truncate", "flip", "header_flip", "card", "unicode", "empty"]),
                             min_size=1, max_size=3)):
        if how == "empty":
            data = draw(st.sampled_from([b"", b"\x00" * 2880, b" " * 2880, b"SIMPLE  =                    T"]))
        elif how == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif how in ("flip", "header_flip") and data:
            raw = bytearray(data)
            top = min(len(raw), 2880) if how == "header_flip" else len(raw)
            for _ in range(draw(st.integers(1, 6))):
                raw[draw(st.integers(0, top - 1))] = draw(st.integers(0, 255))
            data = bytes(raw)
        elif how == "card":
            data = set_card(data, draw(st.sampled_from(CARDS)), draw(st.sampled_from(NASTY_NUMBERS + NASTY_TEXT)))
        elif how == "unicode":
            data = set_card(data, draw(st.sampled_from(["BUNIT", "EXTNAME", "OBJECT", "STAMPFMT", "CTYPE1"])),
                             "'" + draw(st.sampled_from(NASTY_TEXT) | st.text(max_size=12)) + "'")
    return data, options


@given(data=st.data(), name=st.sampled_from(["stamps.fits", "ünïcode Ω.fits", "with space.fits"]))
def test_fuzz_read_stamps_damaged_file(tmp_path, seeds, data, name):
    raw, options = data.draw(damaged_fits(seeds))
    path = tmp_path / name
    path.write_bytes(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unreadable BUNIT warns; that is documented behaviour
            stamps = read_stamps(path, **options)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, str(path))
    else:
        check_stamps(stamps)


image_dtypes = st.sampled_from([np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64])
pixels = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, 1e-320, -1e308, 1e308])


@st.composite
def image_hdus(draw):
    """An HDUList of 1-3 image HDUs of arbitrary small shapes (0-4 dimensions), dtypes and values."""
    hdus = [fits.PrimaryHDU()]
    for _ in range(draw(st.integers(1, 3))):
        dtype = draw(image_dtypes)
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
        if np.issubdtype(dtype, np.floating):
            values = draw(hnp.arrays(dtype, shape, elements=pixels.map(lambda v: float(np.float32(v)) if dtype ==
                                                                          np.float32 else v)))
        else:
            values = draw(hnp.arrays(dtype, shape))
        hdus.append(fits.ImageHDU(values if values.ndim else None))
    if draw(st.booleans()):
        hdus[1].header["BUNIT"] = draw(st.sampled_from(["adu", "electron/s", "ELECTRONS", "cps", "Jy", "parsec",
                                                        "furlong", "", "e-/s", "count", "mag"]))
    return fits.HDUList(hdus)


@given(hdul=image_hdus(), keywords=st.sampled_from([{}, {"hdu": 1}, {"hdu": [1, 2]}, {"hdu": 5}, {"hdu": "NOPE"},
                                                     {"hdu": 1, "mask_hdu": 2}, {"hdu": 1, "noise_hdu": 2},
                                                     {"hdu": 1.5}, {"drop_empty": True}]))
def test_fuzz_read_stamps_arbitrary_images(tmp_path, hdul, keywords):
    path = tmp_path / "images.fits"
    hdul.writeto(path, overwrite=True)
    for source, label in ((path, str(path)), (fits.open(path), "the HDUList")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stamps = read_stamps(source, **keywords)
        except Exception as err:  # noqa: BLE001
            check_refusal(err, label, *keywords)
        else:
            check_stamps(stamps)


# ---------------------------------------------------------------------- in memory: Stamps, cut_stamps, the scaler
small_arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
                          elements=pixels)
sizes = st.sampled_from([1, 3, 4, 0, -2, 2.5, np.nan, (3, 5), (0, 2), "4", "big", None, [1, 2, 3], 4 * u.pix,
                         0.1 * u.arcsec, 3 * u.kg, True])


@given(data=small_arrays, mask=st.none() | small_arrays.map(lambda a: a > 0), noise=st.none() | small_arrays,
       pixel_scale=st.sampled_from([None, 0.03, -1.0, 0.0, np.nan, 0.03 * u.arcsec, 0.03 * u.deg / u.pix,
                                    30 * u.pix / u.arcsec, 1 * u.m, "0.03", "fast"]),
       unit=st.sampled_from([None, "adu", "Ω", "electron / s", "not a unit"]))
def test_fuzz_stamps_constructor(data, mask, noise, pixel_scale, unit):
    try:
        stamps = Stamps(data, mask=mask, noise=noise, pixel_scale=pixel_scale, unit=unit)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "data", "mask", "noise", "pixel_scale", "unit", "stamp")
    else:
        check_stamps(stamps)


@given(image=small_arrays, positions=st.sampled_from([[[1.0, 1.0]], [[0.0, 0.0], [2.5, 3.5]], [[np.nan, 1.0]],
                                                      [[100.0, 100.0]], [], [1.0, 2.0], [[1.0, 2.0, 3.0]], "centre",
                                                      [[1e308, -1e308]]]),
       size=sizes, mode=st.sampled_from(["partial", "strict", "sloppy"]),
       noise=st.none() | small_arrays, mask=st.none() | small_arrays.map(lambda a: a > 0))
def test_fuzz_cut_stamps(image, positions, size, mode, noise, mask):
    try:
        stamps = cut_stamps(image, positions, size, mode=mode, noise=noise, mask=mask)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "image", "positions", "size", "mode", "noise", "mask", "stamp")
    else:
        check_stamps(stamps)


@given(image=small_arrays, nsigma=st.sampled_from([3.0, 0.0, -1.0, np.nan, np.inf, "3", True, 1e-300]),
       min_area=st.sampled_from([1, 5, 0, -1, 2.5, "5"]), border=st.sampled_from([0, 1, -1, 1.5, 10**12]),
       mask=st.none() | small_arrays.map(lambda a: a > 0))
def test_fuzz_detect_sources(image, nsigma, min_area, border, mask):
    try:
        sources = detect_sources(image, nsigma=nsigma, min_area=min_area, border=border, mask=mask)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "image", "nsigma", "min_area", "border", "mask")
    else:
        height, width = image.shape
        assert np.all((sources["x"] >= 0) & (sources["x"] <= width - 1))
        assert np.all((sources["y"] >= 0) & (sources["y"] <= height - 1))
        assert (np.asarray(sources["area"]) >= min_area).all()


@given(x=small_arrays, kind=st.sampled_from(["flux", "asinh", "linear", "log"]),
       softening=st.sampled_from([1.0, 0.0, -1.0, np.nan, 1e-300]), border=st.sampled_from([1, 2, 0, 100]),
       flux=st.none() | small_arrays)
def test_fuzz_stamp_scaler(x, kind, softening, border, flux):
    try:
        scaler = StampScaler(kind, softening=softening, border=border)
        scaled = scaler.fit_transform(x)
        back = scaler.inverse_transform(scaled, flux=flux)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "kind", "softening", "border", "x", "flux", "stamp", "noise_level", "scale")
    else:
        assert back.shape == x.shape
        finite = np.isfinite(x)
        assert np.array_equal(np.isnan(back), ~finite) or flux is not None


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: each example writes and reads a FITS file
@given(data=small_arrays, unit=st.sampled_from([None, "adu", "electron / s", "mag", "Jy / beam"]),
       pixel_scale=st.sampled_from([None, 0.03, 1e-30, 1e30]))
def test_fuzz_write_read_round_trip(tmp_path, data, unit, pixel_scale):
    """Whatever Stamps accepts, write_stamps writes and read_stamps gives back exactly."""
    try:
        stamps = Stamps(data, unit=unit, pixel_scale=pixel_scale)
    except (ValueError, TypeError):
        return
    path = write_stamps(stamps, tmp_path / "round.fits", overwrite=True)
    again = read_stamps(path)
    assert np.array_equal(again.data, stamps.data, equal_nan=True)
    assert np.array_equal(again.mask, stamps.mask) and again.unit == stamps.unit
    assert (again.pixel_scale is None) == (stamps.pixel_scale is None)
