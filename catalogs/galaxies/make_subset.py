"""Make the files of catalogs/galaxies/ from the original downloads.

Run from the repository root::

    python catalogs/galaxies/make_subset.py [SOURCE_DIR]

SOURCE_DIR (default ``/work/shared/data/galaxies``) holds the originals: the
Hubble Deep Field JPEG of scikit-image 0.26.0 (``skimage/data/hubble_deep_field.jpg``)
and five files of GalSim's ``examples/data`` (commit ee177aa5). The GalSim FITS
files are copied unchanged (their MD5 sums are checked). The JPEG is decoded
once, here, into an 8-bit luminance image stored losslessly as a RICE-compressed
FITS file: decoding it at run time instead would tie the pixel values to the
JPEG library of each installation (libjpeg versions differ in the last bit).

Luminance: L = round(0.299 R + 0.587 G + 0.114 B) (ITU-R BT.601 weights, as
Pillow's "L" mode), clipped to 0–255, stored as uint8. The rows are flipped so
that the image, shown with ``origin="lower"`` as FITS images are, looks like the
JPEG does in a browser.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

HERE = Path(__file__).resolve().parent
COPIED = {  # name -> MD5 of the GalSim original
    "real_galaxy_catalog_23.5_example.fits": "6af7725912a2ed37753d2403f48e470d",
    "real_galaxy_catalog_23.5_example_fits.fits": "68bfb8db02e0491c72be07fe3a1b768f",
    "real_galaxy_PSF_images.fits": "f1745d261468126ae768a307770810fa",
    "147246.0_150.416558_1.998697_masknoise.fits": "b5bbd521005336d57e4345157d8c1af3",
    "147246.0_150.416558_1.998697.psf.fits": "49523347eff5a8b8741ba3419de0a94f",
}
JPEG = ("hubble_deep_field.jpg", "bfc42613c8edb720cf7d1343693787a4")
HDF_FITS = "hubble_deep_field_gray.fits"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def luminance(jpeg: Path) -> np.ndarray:
    """The JPEG as 8-bit BT.601 luminance, rows flipped to FITS order (row 0 at the bottom)."""
    from PIL import Image

    with Image.open(jpeg) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    gray = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    return np.clip(gray, 0, 255).astype(np.uint8)[::-1]


def main(source: Path) -> None:
    for name, expected in COPIED.items():
        found = md5(source / name)
        if found != expected:
            raise SystemExit(f"{source / name} has MD5 {found}, expected {expected}: not the GalSim original")
        shutil.copyfile(source / name, HERE / name)
    jpeg = source / JPEG[0]
    if md5(jpeg) != JPEG[1]:
        raise SystemExit(f"{jpeg} is not the scikit-image 0.26.0 hubble_deep_field.jpg (MD5 differs)")
    import PIL
    import PIL.features

    gray = luminance(jpeg)
    primary = fits.PrimaryHDU()
    header = primary.header
    header["ORIGIN"] = "astrobayes catalogs/galaxies/make_subset.py"
    header["TELESCOP"] = "HST"
    header["OBJECT"] = "Hubble Deep Field (part)"
    header["SRCFILE"] = (JPEG[0], "scikit-image 0.26.0 skimage/data")
    header["SRCMD5"] = (JPEG[1], "MD5 of the source JPEG")
    header["DECODER"] = (f"Pillow {PIL.__version__} libjpeg {PIL.features.version('jpg')}", "JPEG decoder")
    header["COMMENT"] = "8-bit luminance L = round(0.299 R + 0.587 G + 0.114 B) of an RGB JPEG,"
    header["COMMENT"] = "rows flipped so that origin='lower' shows it as the JPEG looks."
    header["COMMENT"] = "Pixel values are stretched, compressed display counts: NOT photometric."
    header["COMMENT"] = "No WCS and no pixel scale are known for this rendering."
    header["COMMENT"] = "Image credit: NASA, the Hubble Deep Field team (public domain)."
    image = fits.CompImageHDU(gray, compression_type="RICE_1", name="LUMINANCE")
    fits.HDUList([primary, image]).writeto(HERE / HDF_FITS, overwrite=True)
    check = fits.getdata(HERE / HDF_FITS, "LUMINANCE")
    assert np.array_equal(check, gray), "the compressed image does not read back exactly"
    for path in sorted(HERE.glob("*.fits")):
        print(f"{path.name:50s} {path.stat().st_size:>10,d} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data/galaxies"))
