"""Fuzz the cosmic-shear readers: HEALPix FITS maps, the ShearMap container, summaries and catalogue binning.

Seeds are small :func:`write_maps` files (nside 2 with κ, γ₁, γ₂ and a mask;
nside 4 κ in NESTED order) and a healpy-written IDL-style file, damaged by
truncation, byte flips, header cards rewritten to hostile values (ORDERING,
NSIDE, COORDSYS, TTYPE, TFORM, NAXIS2, unicode) and empty files; then tables
with columns of arbitrary length, arrays and masks of arbitrary sizes and
values (NaN, hp.UNSEEN, huge), and galaxy catalogues with odd columns and
units. A reader may accept the damage (its ShearMap is then sane: 12·nside²
pixels, finite observed values, an observed pixel) or refuse it with a
documented exception naming the file, column or argument.
"""
import warnings

import astropy.units as u
import healpy as hp
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

try:  # tests/fuzz as a package or as a plain directory on sys.path
    from .fuzz_damage import set_card
except ImportError:
    from fuzz_damage import set_card
from astrobayes.shear import (ShearMap, catalog_to_maps, find_peaks, kappa_to_shear, minkowski_functionals,
                              peak_counts, pseudo_cl, read_maps, shear_to_kappa, write_maps)

DOCUMENTED = (ValueError, TypeError, FileNotFoundError)
NASTY_TEXT = ["é", "Ω", "\u200b", "\ufeff", "𝒢", "\x00", "'", "''", "/", "=", "中文", " " * 70]
NASTY_VALUES = ["0", "-1", "1", "3", "5", "64", "99999999999", "1E400", "NAN", "T", "F", "'RING'", "'NESTED'",
                "'NEST'", "'ring'", "'NENTED'", "'GALACTIC'", "'X'", "'1D'", "'1024D'", "'D'", "'E'", "'J'", "'L'",
                "'KAPPA'", "'PIXEL'", "'MASK'", "''", ""]
CARDS = ["ORDERING", "NSIDE", "COORDSYS", "TTYPE1", "TTYPE2", "TFORM1", "TFORM2", "TFIELDS", "NAXIS1", "NAXIS2",
         "INDXSCHM", "PIXTYPE", "FIRSTPIX", "LASTPIX", "XTENSION", "BITPIX", "NAXIS", "SIMPLE", "END", "OBJECT"]


class Seeds(list):
    """Bytes of each seed file; a short repr keeps failure reports readable."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed HEALPix files>"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seed")
    rng = np.random.default_rng(5)
    write_maps(folder / "all.fits", ShearMap(kappa=rng.normal(size=48), gamma1=rng.normal(size=48),
                                             gamma2=rng.normal(size=48), mask=np.arange(48) % 5 != 0))
    write_maps(folder / "nest.fits", ShearMap(kappa=rng.normal(size=192), nest=True, coord="G"))
    hp.write_map(str(folder / "idl.fits"), rng.normal(size=(2, 48)), column_names=["KAPPA", "NOISE"],
                 fits_IDL=True, dtype=np.float32)
    return Seeds((folder / name).read_bytes() for name in ("all.fits", "nest.fits", "idl.fits"))


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err!r}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message}"


def check_map(shear_map: ShearMap) -> None:
    """What every ShearMap guarantees."""
    assert shear_map.npix == 12 * shear_map.nside ** 2 and hp.isnsideok(shear_map.nside, nest=True)
    assert shear_map.mask.shape == (shear_map.npix,) and shear_map.mask.dtype == bool and shear_map.mask.any()
    for name in shear_map.fields:
        values = getattr(shear_map, name)
        assert values.shape[-1] == shear_map.npix
        assert np.isfinite(values[..., shear_map.mask]).all()
        assert (values[..., ~shear_map.mask] == 0).all()


@st.composite
def damaged_fits(draw, seeds) -> bytes:
    data = seeds[draw(st.integers(0, len(seeds) - 1))]
    for how in draw(st.lists(st.sampled_from(["truncate", "flip", "header_flip", "card", "empty"]), min_size=1,
                             max_size=3)):
        if how == "empty":
            data = draw(st.sampled_from([b"", b"\x00" * 2880, b" " * 5760, b"SIMPLE  =                    T"]))
        elif how == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif how in ("flip", "header_flip") and data:
            raw = bytearray(data)
            top = min(len(raw), 5760) if how == "header_flip" else len(raw)  # primary + table header
            for _ in range(draw(st.integers(1, 6))):
                raw[draw(st.integers(0, top - 1))] = draw(st.integers(0, 255))
            data = bytes(raw)
        elif how == "card":
            data = set_card(data, draw(st.sampled_from(CARDS)),
                             draw(st.sampled_from(NASTY_VALUES) | st.sampled_from(NASTY_TEXT).map("'{}'".format)))
    return data


@given(data=st.data(), name=st.sampled_from(["kappa.fits", "ünïcode Ω.fits", "with space.fits"]),
       keywords=st.sampled_from([{}, {"nest": True}, {"nest": False}, {"fields": ["kappa"]}, {"coord": "G"},
                                 {"hdu": 2}, {"hdu": 0}, {"fields": ["gamma1", "gamma2"]}]))
def test_fuzz_read_maps_damaged_file(tmp_path, seeds, data, name, keywords):
    path = tmp_path / name
    path.write_bytes(data.draw(damaged_fits(seeds)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shear_map = read_maps(path, **keywords)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, str(path), *keywords)
    else:
        check_map(shear_map)


map_values = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([hp.UNSEEN, 0.0, 1e308])


@st.composite
def map_tables(draw):
    """A binary table of 1-3 columns of one arbitrary length (rarely a HEALPix size) and dtype, odd headers."""
    n = draw(st.sampled_from([0, 1, 11, 12, 13, 47, 48, 100, 108, 192]))
    columns = []
    for k in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(["KAPPA", "GAMMA1", "GAMMA2", "MASK", "NOISE", "N_GAL", "WEIGHT", "PIXEL",
                                     "SIGNAL", "kappa"]))
        dtype = draw(st.sampled_from(["D", "E", "J", "L", "B"]))
        if dtype == "L":
            values = draw(hnp.arrays(bool, n))
        elif dtype in "DE":
            values = draw(hnp.arrays(np.float64, n, elements=map_values))
        else:
            values = draw(hnp.arrays(np.int32 if dtype == "J" else np.uint8, n))
        columns.append(fits.Column(name=f"{name}{k}" if any(c.name == name for c in columns) else name,
                                   format=dtype, array=values))
    table = fits.BinTableHDU.from_columns(columns)
    for key, options in (("ORDERING", ["RING", "NESTED", "NEST", "ring", "", "HEALPIX"]),
                         ("NSIDE", [1, 2, 4, 3, -1, 0, "two"]), ("COORDSYS", ["C", "G", "E", "Q", "X", ""])):
        if draw(st.booleans()):  # (non-ASCII header values are the business of the damaged-file test)
            table.header[key] = draw(st.sampled_from(options))
    return fits.HDUList([fits.PrimaryHDU(), table])


@given(hdul=map_tables(), keywords=st.sampled_from([{}, {"nest": False}, {"fields": ["kappa"]},
                                                     {"fields": ["mask", "kappa"], "nest": True}]))
def test_fuzz_read_maps_arbitrary_tables(tmp_path, hdul, keywords):
    path = tmp_path / "table.fits"
    hdul.writeto(path, overwrite=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shear_map = read_maps(path, **keywords)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path), *keywords)
    else:
        check_map(shear_map)


# ---------------------------------------------------------------------- in memory
lengths = st.sampled_from([0, 1, 11, 12, 13, 47, 48, 100, 108, 192])
maps = lengths.flatmap(lambda n: hnp.arrays(np.float64, st.sampled_from([(n,), (2, n), (1, 2, n)]),
                                            elements=map_values))
masks = st.none() | lengths.flatmap(lambda n: hnp.arrays(st.sampled_from([bool, np.float64, np.int8]), n,
                                                         elements=st.integers(0, 1)))
NAMES = ("kappa", "gamma1", "gamma2", "mask", "nside", "coord", "maps", "bins", "thresholds", "sigma", "lmax",
         "noise", "weight", "n_gal")


@given(kappa=maps, mask=masks, nside=st.sampled_from([None, 1, 2, 4, 3, 0, -2, 2.0, "2", True, 2**40]),
       nest=st.booleans(), coord=st.sampled_from(["C", "g", "X", 1, None]), with_shear=st.booleans())
def test_fuzz_shear_map(kappa, mask, nside, nest, coord, with_shear):
    fields = {"gamma1": kappa, "gamma2": -kappa} if with_shear else {"kappa": kappa}
    try:
        shear_map = ShearMap(mask=mask, nside=nside, nest=nest, coord=coord, **fields)
        check_map(shear_map)
        shear_map = shear_map.udgrade(shear_map.nside * 2).udgrade(max(1, shear_map.nside // 2))
    except Exception as err:  # noqa: BLE001
        check_refusal(err, *NAMES)
    else:
        check_map(shear_map)


@given(kappa=maps, mask=masks, which=st.sampled_from(["pseudo_cl", "find_peaks", "peak_counts", "minkowski",
                                                      "kappa_to_shear", "shear_to_kappa"]),
       bins=st.sampled_from([2, 3, 10, 0, 2.5, "4", [2, 3, 5], [5, 3]]), nest=st.booleans())
def test_fuzz_summaries_and_transforms(kappa, mask, which, bins, nest):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # healpy's own deprecation and accuracy warnings
            if which == "pseudo_cl":
                out = pseudo_cl(kappa, mask, bins=bins, nest=nest).power
            elif which == "find_peaks":
                out = find_peaks(kappa, mask, nest=nest)
            elif which == "peak_counts":
                out = peak_counts(kappa, mask, thresholds=[-1.0, 0.0, 1.0], nest=nest, sigma=None)
            elif which == "minkowski":
                out = minkowski_functionals(kappa, mask, thresholds=[-1.0, 0.0, 1.0], nest=nest, sigma=None).v0
            elif which == "kappa_to_shear":
                out = np.stack(kappa_to_shear(kappa, nest=nest))
            else:
                out = shear_to_kappa(kappa, -kappa, mask=mask, nest=nest)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, *NAMES)
    else:
        assert np.isfinite(np.asarray(out, dtype=float)).all()


columns = st.sampled_from(["ra", "dec", "e1", "e2", "w", "RA", "Ω", "e 1"])
column_values = st.sampled_from([
    [10.0, 200.0, 359.9], [0.0, -89.0, 89.9], [0.1, -0.3, 2.0], [np.nan, 1.0, 2.0], [1e308, -1e308, 0.0],
    [100.0, -100.0, 0.0], ["a", "b", "c"], [True, False, True], [1, 2, 3], [1e-320, 0.0, -0.0]])
units = st.sampled_from([None, u.deg, u.rad, u.arcsec, u.m, u.dimensionless_unscaled, u.mag])


@given(names=st.lists(columns, min_size=0, max_size=6, unique=True), data=st.data(),
       nside=st.sampled_from([1, 2, 4, 3, 0, 2**25, "4"]), drop_invalid=st.booleans(),
       weight=st.sampled_from([None, "w", "missing"]))
def test_fuzz_catalog_to_maps(names, data, nside, drop_invalid, weight):
    catalog = Table()
    for name in names:
        catalog[name] = data.draw(column_values)
        catalog[name].unit = data.draw(units) if catalog[name].dtype.kind == "f" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # |e| > 1 and dropped rows warn by design
            shear_map = catalog_to_maps(catalog, nside, weight=weight, drop_invalid=drop_invalid)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "nside", "ra", "dec", "e1", "e2", "weight", "catalog", "galax")
    else:
        check_map(shear_map)


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: each example writes and reads a FITS file
@given(kappa=hnp.arrays(np.float64, st.sampled_from([12, 48]), elements=st.floats(-1e300, 1e300)),
       nest=st.booleans(), coord=st.sampled_from(["C", "G", "E"]), cut=st.integers(0, 11))
def test_fuzz_write_read_round_trip(tmp_path, kappa, nest, coord, cut):
    """Whatever ShearMap accepts, write_maps writes and read_maps gives back exactly."""
    mask = np.arange(kappa.size) >= cut
    original = ShearMap(kappa=kappa, mask=mask, nest=nest, coord=coord)
    path = tmp_path / "round.fits"
    write_maps(path, original, overwrite=True)
    again = read_maps(path)
    assert again.nest == nest and again.coord == coord and np.array_equal(again.mask, original.mask)
    assert np.array_equal(again.kappa, original.kappa)
