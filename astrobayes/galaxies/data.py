"""The real galaxy data shipped in ``catalogs/galaxies/``: the Hubble Deep Field and GalSim's COSMOS sample.

Two data sets (provenance, licences and every column in
``catalogs/galaxies/README.md``):

* **Hubble Deep Field** (HST WFPC2; NASA, public domain), as the 872 × 1000
  8-bit luminance of a display JPEG. :func:`hubble_deep_field` detects its
  galaxies and cuts them into stamps: the training set of the generative
  models. The pixel values are stretched, compressed display counts, *not*
  photometry: use these stamps for shapes and textures, never for fluxes.
* **COSMOS** (HST ACS F814W, 0.03 arcsec / pix): GalSim's 100-galaxy example
  of the real-galaxy catalog with its Sérsic fits (:func:`read_cosmos_catalog`),
  the 100 matching PSF images (:func:`read_cosmos_psfs`), and one galaxy image
  with its own PSF (:func:`cosmos_galaxy`). Their fluxes are count rates,
  electron / s, with the AB zero point 25.94 of the ACS F814W header
  (PHOTFLAM, PHOTPLAM).

Sources are found by :func:`detect_sources`, a plain threshold-and-label
detector (no deblending) that any image can use.

Examples
--------
>>> catalog = read_cosmos_catalog()
>>> len(catalog), catalog["sersic_r_half"].unit
(100, Unit("arcsec"))
"""
from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table

from astrobayes.galaxies.io import Stamps, cut_stamps, read_stamps

__all__ = ["CATALOG_DIR", "COSMOS_CATALOG", "COSMOS_FITS", "COSMOS_FLUX_UNIT", "COSMOS_GALAXY", "COSMOS_GALAXY_PSF",
           "COSMOS_PIXEL_SCALE", "COSMOS_PSFS", "HDF_IMAGE", "cosmos_galaxy", "detect_sources", "hubble_deep_field",
           "read_cosmos_catalog", "read_cosmos_psfs", "sersic_total_flux"]

#: the folder of the shipped galaxy data, in the source checkout
CATALOG_DIR = Path(__file__).resolve().parents[2] / "catalogs" / "galaxies"
#: 8-bit luminance of the Hubble Deep Field JPEG (FITS, extension ``LUMINANCE``)
HDF_IMAGE = CATALOG_DIR / "hubble_deep_field_gray.fits"
#: GalSim's real-galaxy catalog of 100 COSMOS galaxies (I < 23.5)
COSMOS_CATALOG = CATALOG_DIR / "real_galaxy_catalog_23.5_example.fits"
#: the parametric (Sérsic, bulge + disk) fits to the same galaxies
COSMOS_FITS = CATALOG_DIR / "real_galaxy_catalog_23.5_example_fits.fits"
#: 100 PSF images, HDU i for catalog row i
COSMOS_PSFS = CATALOG_DIR / "real_galaxy_PSF_images.fits"
#: one COSMOS galaxy (IDENT 147246), 543 × 543 pixels, neighbours replaced by noise
COSMOS_GALAXY = CATALOG_DIR / "147246.0_150.416558_1.998697_masknoise.fits"
#: its PSF, 101 × 101 pixels
COSMOS_GALAXY_PSF = CATALOG_DIR / "147246.0_150.416558_1.998697.psf.fits"

#: COSMOS ACS pixel scale (the catalog's PIXEL_SCALE, 0.03 to float32 precision)
COSMOS_PIXEL_SCALE = 0.03 * u.arcsec / u.pix
#: unit of COSMOS pixel values and fluxes: the drizzled count rate (D00xOUUN = 'cps' in the image header)
COSMOS_FLUX_UNIT = u.electron / u.s


def detect_sources(image, *, nsigma: float = 3.0, min_area: int = 5, border: int = 0, mask=None) -> Table:
    """Find sources as connected pixels above a threshold: background + ``nsigma`` × rms.

    The background and rms are the sigma-clipped (3σ, iterated) median and
    standard deviation of the whole image (:func:`astropy.stats.sigma_clipped_stats`),
    so the image should have a roughly uniform background. Pixels above the
    threshold are grouped into 8-connected segments (:func:`scipy.ndimage.label`);
    segments smaller than ``min_area`` pixels are dropped. Touching sources
    merge into one: there is no deblending.

    Parameters
    ----------
    image : 2-D array
        NaN pixels are ignored (masked).
    nsigma : float
        Detection threshold in units of the background rms.
    min_area : int
        Minimum number of pixels of a source.
    border : int
        Drop sources whose centroid lies within this many pixels of the edge.
    mask : 2-D bool array, optional
        True = pixel to ignore.

    Returns
    -------
    astropy.table.Table
        One row per source, brightest first: ``id`` (0 = brightest), ``x``,
        ``y`` (flux-weighted centroid, zero-based pixels, x = column), ``flux``
        (sum of background-subtracted pixels of the segment), ``area`` (pixels),
        ``peak`` (highest background-subtracted pixel). ``meta`` records
        ``background``, ``rms``, ``threshold``, ``nsigma`` and ``min_area``.

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :40]
    >>> image = 100 * np.exp(-((xx - 12.3) ** 2 + (yy - 20.0) ** 2) / 8)
    >>> image += np.random.default_rng(0).normal(0, 1, image.shape)
    >>> sources = detect_sources(image)
    >>> len(sources), round(float(sources["x"][0]), 1), round(float(sources["y"][0]), 1)
    (1, 12.3, 20.0)
    """
    from astropy.stats import sigma_clipped_stats
    from scipy import ndimage

    unit = image.unit if isinstance(image, u.Quantity) else None
    data = np.array(image.value if unit is not None else image, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {data.shape}")
    if np.isinf(data).any():
        raise ValueError("image has inf pixels; mark bad pixels with NaN or mask=")
    bad = np.isnan(data)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != data.shape:
            raise ValueError(f"mask has shape {mask.shape} but image has {data.shape}")
        bad |= mask.astype(bool)
    if bad.all():
        raise ValueError("image has no valid pixel")
    if isinstance(nsigma, bool) or not isinstance(nsigma, (int, float, np.integer, np.floating)) or \
            not (np.isfinite(nsigma) and nsigma > 0):
        raise ValueError(f"nsigma must be a positive number, got {nsigma!r}")
    for name, value, low in (("min_area", min_area, 1), ("border", border, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    _, background, rms = sigma_clipped_stats(data, mask=bad, sigma=3.0, maxiters=10)
    if not rms > 0:
        raise ValueError("the image background has no scatter (rms 0): cannot set a threshold")
    threshold = background + nsigma * rms
    above = (data > threshold) & ~bad
    labels, count = ndimage.label(above, structure=np.ones((3, 3), dtype=int))
    signal = np.where(above, data - background, 0.0)
    index = np.arange(1, count + 1)
    area = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    flux = np.asarray(ndimage.sum(signal, labels, index), dtype=float)
    rows, cols = np.indices(data.shape)
    x = np.asarray(ndimage.sum(signal * cols, labels, index), dtype=float) / np.where(flux > 0, flux, 1.0)
    y = np.asarray(ndimage.sum(signal * rows, labels, index), dtype=float) / np.where(flux > 0, flux, 1.0)
    peak = np.asarray(ndimage.maximum(signal, labels, index), dtype=float) if count else np.zeros(0)
    height, width = data.shape
    keep = (area >= int(min_area)) & (x >= border) & (x <= width - 1 - border) & (y >= border) & \
        (y <= height - 1 - border)
    order = np.argsort(-flux[keep], kind="stable")
    sources = Table({"id": np.arange(int(keep.sum())), "x": x[keep][order], "y": y[keep][order],
                     "flux": flux[keep][order], "area": area[keep][order].astype(np.int64),
                     "peak": peak[keep][order]},
                    meta={"background": float(background), "rms": float(rms), "threshold": float(threshold),
                          "nsigma": float(nsigma), "min_area": int(min_area)})
    sources["x"].unit = sources["y"].unit = u.pix
    sources["area"].unit = u.pix ** 2
    if unit is not None:
        sources["flux"].unit = sources["peak"].unit = unit
    return sources


def hubble_deep_field(size: int = 32, *, nsigma: float = 3.0, min_area: int = 20, isolated: bool = True) -> Stamps:
    """Stamps of the galaxies of the Hubble Deep Field image, centred on each detected source.

    The image is the 8-bit BT.601 luminance of the RGB display JPEG (see the
    catalog README): **its values are stretched, compressed display counts,
    not photometric** — fine for learning galaxy shapes and textures (VAE,
    WGAN), not for fluxes. The sigma-clipped background (13 counts) is
    subtracted, so blank sky is ≈ 0; its rms (≈ 5 counts, correlated by the
    JPEG compression and quantised to whole counts) is the ``noise`` map of
    every stamp and ``meta.meta["rms"]``. No WCS or pixel scale is known.

    Sources come from :func:`detect_sources` (``nsigma``, ``min_area``);
    stamps reaching beyond the image edge are dropped and, with
    ``isolated=True``, so is every stamp that contains the centroid of a
    brighter source. With the defaults there are 410 stamps of 32 × 32
    pixels and 176 of 64 × 64.

    Returns
    -------
    Stamps
        Brightest first; ``meta``: ``id``, ``x``, ``y``, ``x_stamp``,
        ``y_stamp`` and the detection's ``flux``, ``area``, ``peak``.

    Examples
    --------
    >>> stamps = hubble_deep_field(32)
    >>> len(stamps), stamps.shape
    (410, (32, 32))
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be a whole number of pixels, got {size!r}")
    with fits.open(HDF_IMAGE) as hdul:
        image = np.array(hdul["LUMINANCE"].data, dtype=np.float64)
    if not 4 <= size <= min(image.shape):
        raise ValueError(f"size must be between 4 and {min(image.shape)} pixels (the image is {image.shape[1]} × "
                         f"{image.shape[0]}), got {size}")
    size = int(size)
    sources = detect_sources(image, nsigma=nsigma, min_area=min_area)
    background, rms = sources.meta["background"], sources.meta["rms"]
    image -= background
    x, y, flux = (np.asarray(sources[c], dtype=float) for c in ("x", "y", "flux"))
    keep = np.ones(len(sources), dtype=bool)
    if isolated:
        half = size / 2
        for i in range(len(sources)):  # sorted by flux: only earlier rows are brighter
            keep[i] = not np.any((np.abs(x[:i] - x[i]) < half) & (np.abs(y[:i] - y[i]) < half) & (flux[:i] > flux[i]))
    positions = Table(sources[keep], copy=True)
    positions.meta = {}
    stamps = cut_stamps(image, positions, size)
    stamps = stamps[~stamps.mask.any(axis=(1, 2))]  # drop stamps crossing the image edge
    stamps.noise = np.full(stamps.data.shape, rms)
    stamps.meta.meta.update({"source": HDF_IMAGE.name, "background": background, "rms": rms, "nsigma": nsigma,
                             "min_area": min_area, "isolated": isolated})
    return stamps


def sersic_total_flux(intensity, r_half, n, q=1.0):
    """Total flux of an elliptical Sérsic profile from its intensity at the half-light radius.

    F = 2π n e^b b^(−2n) Γ(2n) I_e a² q, with a the *major-axis* half-light
    radius and b = b(n) from P(2n, b) = 1/2 (the regularised incomplete gamma
    function) — Graham & Driver (2005), eq. 4 times the axis ratio q. With a
    circularised radius r = a √q, the same is 2π n e^b b^(−2n) Γ(2n) I_e r².
    Units follow the inputs (intensity × radius²).

    Examples
    --------
    >>> round(float(sersic_total_flux(1.0, 1.0, 1.0)), 4)   # exponential: 2π e^b / b² with b = 1.6783
    11.9485
    """
    from scipy.special import gammainccinv, gammaln

    n = np.asarray(n, dtype=float)
    b = gammainccinv(2 * n, 0.5)
    factor = 2 * np.pi * n * np.exp(b + gammaln(2 * n) - 2 * n * np.log(b))
    return factor * intensity * r_half ** 2 * q


def read_cosmos_catalog() -> QTable:
    """GalSim's 100 COSMOS galaxies joined with their Sérsic fits, with units.

    Columns of the catalog: ``IDENT``, ``RA``, ``DEC`` [deg], ``MAG`` [mag,
    F814W AB], ``BAND``, ``WEIGHT``, ``PIXEL_SCALE`` [arcsec / pix],
    ``NOISE_MEAN`` [e/s], ``NOISE_VARIANCE`` [(e/s)²], ``stamp_flux`` [e/s],
    ``PSF_HDU`` (row of :func:`read_cosmos_psfs`); of the fits: ``mag_auto``
    [mag], ``flux_radius`` [pix], ``zphot``, ``fit_status``, ``fit_mad_s``,
    ``fit_mad_b``, ``fit_dvc_btt``, ``use_bulgefit``, ``viable_sersic`` (bool),
    ``hlr`` [arcsec] and ``flux`` [e/s] (GalSim's derived [Sérsic, bulge,
    disk] radii and [Sérsic, bulge+disk, bulge, disk] fluxes; 0 where unused),
    ``bulgefit`` (GalSim's 16 raw numbers). The Sérsic fit ``sersicfit``
    = [I_hl, r_hl, n, q, boxiness, x0, y0, φ] is unpacked into:

    ======================  =============  ==============================================
    ``sersic_flux``         e / s          total flux, from :func:`sersic_total_flux`
    ``sersic_r_half``       arcsec         circularised half-light radius, r_hl √q × 0.03
    ``sersic_r_half_major`` arcsec         half-light semi-major axis, r_hl × 0.03
    ``sersic_n``                           Sérsic index, 0.2989 … 6 (6 is the fits' upper bound)
    ``sersic_q``                           axis ratio b/a
    ``sersic_phi``          rad            major axis from the image +x axis towards +y
    ``sersic_intensity``    e / (s pix)    I_hl, intensity at the half-light ellipse
    ======================  =============  ==============================================

    Conventions, checked on these files: r_hl is the *semi-major* half-light
    radius in COSMOS pixels, since 0.03 √q r_hl reproduces GalSim's ``hlr``
    (circularised, arcsec) to 2·10⁻¹⁶; the flux with the axis-ratio factor q
    (an elliptical profile of semi-major radius r_hl) reproduces GalSim's
    ``flux[:, 0]`` to 10⁻⁸ (the precision of the stored numbers) for every
    galaxy but one: GalSim raises n below 0.3 to 0.3 (its Sérsic profiles stop
    there) before computing ``flux``, and the one fit with n = 0.2989 differs
    by 0.1 %. ``sersic_flux`` uses the fitted n as it is.

    Examples
    --------
    >>> catalog = read_cosmos_catalog()
    >>> round(float(catalog["sersic_flux"][0].value), 2), catalog["sersic_flux"].unit
    (114.4, Unit("electron / s"))
    """
    galaxies = Table.read(COSMOS_CATALOG)
    fitted = Table.read(COSMOS_FITS)
    if not np.array_equal(np.asarray(galaxies["IDENT"]), np.asarray(fitted["IDENT"])):
        raise ValueError(f"{COSMOS_CATALOG.name} and {COSMOS_FITS.name} list different galaxies (IDENT) or orders")
    flux_unit = COSMOS_FLUX_UNIT
    out = QTable()
    out["IDENT"] = np.asarray(galaxies["IDENT"], dtype=np.int64)
    out["RA"] = np.asarray(galaxies["RA"], dtype=float) * u.deg
    out["DEC"] = np.asarray(galaxies["DEC"], dtype=float) * u.deg
    out["MAG"] = np.asarray(galaxies["MAG"], dtype=float) * u.mag
    out["BAND"] = np.char.strip(np.asarray(galaxies["BAND"]).astype(str))
    out["WEIGHT"] = np.asarray(galaxies["WEIGHT"], dtype=float)
    out["PIXEL_SCALE"] = np.asarray(galaxies["PIXEL_SCALE"], dtype=float) * u.arcsec / u.pix
    out["NOISE_MEAN"] = np.asarray(galaxies["NOISE_MEAN"], dtype=float) * flux_unit
    out["NOISE_VARIANCE"] = np.asarray(galaxies["NOISE_VARIANCE"], dtype=float) * flux_unit ** 2
    out["stamp_flux"] = np.asarray(galaxies["stamp_flux"], dtype=float) * flux_unit
    out["PSF_HDU"] = np.asarray(galaxies["PSF_HDU"], dtype=np.int64)
    out["mag_auto"] = np.asarray(fitted["mag_auto"], dtype=float) * u.mag
    out["flux_radius"] = np.asarray(fitted["flux_radius"], dtype=float) * u.pix
    out["zphot"] = np.asarray(fitted["zphot"], dtype=float)
    for name in ("fit_status", "use_bulgefit"):
        out[name] = np.asarray(fitted[name], dtype=np.int64)
    for name in ("fit_mad_s", "fit_mad_b", "fit_dvc_btt"):
        out[name] = np.asarray(fitted[name], dtype=float)
    out["viable_sersic"] = np.asarray(fitted["viable_sersic"]) != 0
    out["hlr"] = np.asarray(fitted["hlr"], dtype=float) * u.arcsec
    out["flux"] = np.asarray(fitted["flux"], dtype=float) * flux_unit
    out["bulgefit"] = np.asarray(fitted["bulgefit"], dtype=float)

    sersic = np.asarray(fitted["sersicfit"], dtype=float)
    intensity, r_major, index, q, phi = sersic[:, 0], sersic[:, 1], sersic[:, 2], sersic[:, 3], sersic[:, 7]
    scale = COSMOS_PIXEL_SCALE.to_value(u.arcsec / u.pix)
    out["sersic_flux"] = sersic_total_flux(intensity, r_major, index, q) * flux_unit
    out["sersic_r_half"] = r_major * np.sqrt(q) * scale * u.arcsec
    out["sersic_r_half_major"] = r_major * scale * u.arcsec
    out["sersic_n"] = index
    out["sersic_q"] = q
    out["sersic_phi"] = phi * u.rad
    out["sersic_intensity"] = intensity * flux_unit / u.pix
    out.meta.update({"source": f"{COSMOS_CATALOG.name} + {COSMOS_FITS.name} (GalSim examples/data)",
                     "pixel_scale": "0.03 arcsec/pix", "zero_point": "25.94 mag (AB, F814W, for e/s)"})
    return out


def _centred(images, name: str) -> np.ndarray:
    """PSF images on one odd-sized grid, each shifted by whole pixels so that its centroid rounds to the centre
    pixel, padded with zeros and normalised to unit sum."""
    centres = []
    for k, image in enumerate(images):
        total = image.sum()
        if not (np.isfinite(image).all() and total > 0):
            raise ValueError(f"PSF {k} of {name} has non-finite values or a non-positive sum")
        rows, cols = np.indices(image.shape)
        centres.append((int(np.rint((image * rows).sum() / total)), int(np.rint((image * cols).sum() / total))))
    half = max(max(cy, cx, image.shape[0] - 1 - cy, image.shape[1] - 1 - cx)
               for image, (cy, cx) in zip(images, centres))
    size = 2 * half + 1
    out = np.zeros((len(images), size, size))
    for k, (image, (cy, cx)) in enumerate(zip(images, centres)):
        top, left = half - cy, half - cx
        out[k, top:top + image.shape[0], left:left + image.shape[1]] = image
    return out / out.sum(axis=(1, 2), keepdims=True)


def read_cosmos_psfs() -> np.ndarray:
    """The 100 COSMOS PSF images (row i for catalog row i), as one (100, S, S) array.

    The originals are 37 or 39 pixels on a side (0.03 arcsec / pix) with their
    centre up to a pixel off the array's centre, and each sums to 0.959–0.963
    (the wings beyond ~0.6 arcsec are cut). Each is shifted by whole pixels
    (no interpolation, so the pixel values are untouched) to put its centroid
    within half a pixel of the centre pixel (S − 1)/2 of a common odd grid,
    padded with zeros, and normalised to unit sum, so that convolving with it
    keeps a galaxy's flux.

    Examples
    --------
    >>> psfs = read_cosmos_psfs()
    >>> psfs.shape, bool(np.allclose(psfs.sum(axis=(1, 2)), 1.0))
    ((100, 41, 41), True)
    """
    with fits.open(COSMOS_PSFS) as hdul:
        images = [np.array(hdu.data, dtype=np.float64) for hdu in hdul]
    return _centred(images, COSMOS_PSFS.name)


def cosmos_galaxy() -> tuple[Stamps, np.ndarray]:
    """One real COSMOS galaxy (IDENT 147246) as a 543 × 543 stamp, and its PSF.

    The image is in electron / s (the drizzled count rate: the header's BUNIT
    'ELECTRONS' was carried over from the raw exposures, but the drizzle
    output, D00xOUUN, is 'cps', and the header's PHOTFLAM/PHOTPLAM give the AB
    zero point 25.94 that matches the catalog magnitudes of the same pipeline).
    Other objects in the stamp were replaced by noise by the GalSim team. The
    noise map is constant: the :func:`astropy.stats.mad_std` of the pixels
    within 20 of the edge (≈ 0.0026 e/s). The WCS of the header is kept.

    Returns
    -------
    stamps : Stamps
        One stamp; ``meta`` has ``IDENT``, ``ra``, ``dec`` [deg].
    psf : ndarray (S, S)
        Centred and normalised as in :func:`read_cosmos_psfs`.

    Examples
    --------
    >>> stamps, psf = cosmos_galaxy()
    >>> stamps.shape, psf.shape, stamps.unit
    ((543, 543), (103, 103), Unit("electron / s"))
    """
    import warnings

    from astropy.stats import mad_std

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its BUNIT is replaced below
        stamps = read_stamps(COSMOS_GALAXY)
    edge = np.ones(stamps.shape, dtype=bool)
    edge[20:-20, 20:-20] = False
    sigma = float(mad_std(stamps.data[0][edge], ignore_nan=True))
    stamps.unit = COSMOS_FLUX_UNIT
    stamps.noise = np.full(stamps.data.shape, sigma)
    stamps.meta["IDENT"] = [147246]
    stamps.meta["ra"] = [150.416558] * u.deg
    stamps.meta["dec"] = [1.998697] * u.deg
    with fits.open(COSMOS_GALAXY_PSF) as hdul:
        psf = _centred([np.array(hdul[0].data, dtype=np.float64)], COSMOS_GALAXY_PSF.name)[0]
    return stamps, psf
