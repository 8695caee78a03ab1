"""Galaxy stamps: the :class:`Stamps` collection, FITS reading and writing, cutting from a large image, scaling.

A :class:`Stamps` object holds n same-shape two-dimensional images ("postage
stamps") and what is known about each of them:

===============  =====================  ===================================================
attribute        shape / type           meaning
===============  =====================  ===================================================
``data``         float64 (n, H, W)      pixel values; NaN wherever ``mask`` is True
``mask``         bool (n, H, W)         True = bad pixel (the astropy convention); NaN
                                        input pixels are always masked
``noise``        float64 (n, H, W)      per-pixel 1σ uncertainty (> 0 where unmasked, NaN
                 or None                where masked), in ``unit``
``wcs``          list or None           one :class:`astropy.wcs.WCS` (or None) per stamp
``meta``         astropy Table          one row per stamp; always has ``id``
``unit``         astropy unit or None   unit of the pixel values (e.g. from ``BUNIT``)
``pixel_scale``  Quantity or None       arcsec / pix
===============  =====================  ===================================================

Pixel (i, j) of a stamp is row i (y) and column j (x), as in FITS with
``origin="lower"``; positions are zero-based (x, y) pixel coordinates, as in
:class:`astropy.nddata.Cutout2D` and :meth:`astropy.wcs.WCS.world_to_pixel`.

Files written by :func:`write_stamps` hold the cube in the primary HDU
(``EXTNAME = 'STAMPS'``, keyword ``STAMPFMT = 'astrobayes.stamps'``), a ``MASK``
image (uint8, 1 = bad), a ``NOISE`` image when there is one, and a ``META``
binary table with the per-stamp table plus a ``wcs_header`` string column: the
header text of each stamp's WCS (``WCS.to_header(relax=True)``, SIP included),
empty where a stamp has none; the table's own ``meta`` dictionary is stored as
JSON in its ``METAJSON`` keyword. Storing one WCS per row, rather than one in the
cube's header, keeps cutouts from different places of the sky in one file.

Bad input raises a ``ValueError`` naming the argument, or the file and HDU it
came from: an HDU that is not a 2-D image or a 3-D cube, stamps of different
shapes, an inf pixel, a non-positive noise, a stamp with no valid pixel
(``drop_empty=True`` drops those with a warning instead).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> image = rng.normal(0.0, 1.0, (64, 64))
>>> stamps = cut_stamps(image, [[10.0, 20.0], [40.0, 62.5]], 16)
>>> stamps
<Stamps: 2 stamps of 16×16 pixels, 112 masked pixels>
>>> int(stamps.mask[1].sum()), stamps[0].shape   # the rows beyond the top edge are masked
(112, (16, 16))
>>> scaler = StampScaler("linear").fit(stamps)
>>> back = scaler.inverse_transform(scaler.transform(stamps))
>>> bool(np.allclose(back.filled(), stamps.filled()))
True
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.wcs import WCS, FITSFixedWarning

from astrobayes.core.fitsfiles import reading_fits
from astrobayes.core.paths import SOURCES_KEY, check_not_input, read_sources, remember_sources

__all__ = ["StampScaler", "Stamps", "cut_stamps", "read_stamps", "write_stamps"]

_FORMAT = "astrobayes.stamps"
_FORMAT_VERSION = 1
_PIXEL_SCALE_UNIT = u.arcsec / u.pix


def _describe(indices, limit: int = 10) -> str:
    """"3, 7, ... (12 more)": indices for an error message."""
    indices = [int(i) for i in indices]
    more = f", ... ({len(indices) - limit} more)" if len(indices) > limit else ""
    return ", ".join(map(str, indices[:limit])) + more


class Stamps:
    """A collection of n same-shape 2-D stamps with mask, noise, WCS and per-stamp metadata.

    Parameters
    ----------
    data : array-like or Quantity, shape (n, H, W) or (H, W)
        Pixel values; NaN (or a numpy masked array's mask) marks a bad pixel,
        inf is an error. A 2-D array is one stamp. A Quantity gives its unit
        (converted to ``unit`` when both are given).
    mask : array-like of bool, optional
        True (or non-zero) = bad pixel; same shape as ``data``. NaN pixels are
        masked whatever it says, and masked pixels are stored as NaN.
    noise : array-like, optional
        1σ per pixel, broadcastable to ``data`` (a number, an (H, W) map or the
        full cube), in the unit of ``data``; finite and > 0 wherever unmasked.
    wcs : WCS or sequence of (WCS or None), optional
        One WCS shared by all stamps, or one per stamp.
    meta : astropy Table, optional
        One row per stamp; an ``id`` column (0 … n−1) is added when absent.
    unit : str or astropy unit, optional
        Unit of the pixel values.
    pixel_scale : float or Quantity, optional
        Angular size of a pixel: arcsec / pix, or arcsec (a float is arcsec / pix).
    drop_empty : bool
        Drop stamps without a single valid pixel (with a warning naming them)
        instead of raising a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.ones((3, 8, 8)); data[1, 0, 0] = np.nan
    >>> stamps = Stamps(data, noise=0.1, pixel_scale=0.03)
    >>> len(stamps), stamps.shape, int(stamps.mask.sum()), stamps.pixel_scale
    (3, (8, 8), 1, <Quantity 0.03 arcsec / pix>)
    >>> stamps[[0, 2]].meta["id"].tolist()
    [0, 2]
    """

    def __init__(self, data, mask=None, noise=None, wcs=None, meta: Table | None = None, unit=None,
                 pixel_scale=None, drop_empty: bool = False):
        unit = _as_unit(unit, "unit")
        if isinstance(data, u.Quantity):
            if unit is None:
                unit, data = data.unit, data.value
            else:
                try:
                    data = data.to_value(unit)
                except u.UnitConversionError:
                    raise ValueError(f"data are in {data.unit}, which does not convert to unit={unit}") from None
        if np.ma.isMaskedArray(data):  # a numpy masked array's mask is a bad-pixel mask too
            data = np.ma.filled(np.ma.asarray(data, dtype=np.float64), np.nan)
        data = _float_array(data, "data")
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3 or 0 in data.shape:
            raise ValueError(f"data must be one 2-D stamp (H, W) or a 3-D stack (n, H, W) of them, got shape "
                             f"{data.shape}")
        infinite = np.isinf(data).any(axis=(1, 2))
        if infinite.any():
            raise ValueError(f"data has inf pixels in stamp(s) {_describe(np.flatnonzero(infinite))}; pixel values "
                             "must be finite, or NaN for a bad pixel")
        bad = np.isnan(data)
        if mask is not None:
            given = np.asarray(mask)
            if given.ndim == 2:
                given = given[None]
            if given.shape != data.shape:
                raise ValueError(f"mask has shape {np.shape(mask)} but data has {data.shape}")
            if given.dtype.kind not in "biu":
                raise TypeError(f"mask must be boolean (True = bad pixel), got dtype {given.dtype}")
            bad |= given != 0
        data[bad] = np.nan
        if noise is not None:
            noise = _noise_cube(noise, data.shape, unit, bad)

        wcs = _wcs_list(wcs, len(data))
        meta = _meta_table(meta, len(data))
        empty = bad.all(axis=(1, 2))
        if empty.any():
            where = np.flatnonzero(empty)
            if not drop_empty:
                raise ValueError(f"stamp(s) {_describe(where)} have no valid pixel (all NaN or masked); pass "
                                 "drop_empty=True to drop them")
            if empty.all():
                raise ValueError("every stamp is empty (all pixels NaN or masked)")
            warnings.warn(f"dropped {len(where)} empty stamp(s) (all pixels NaN or masked): indices "
                          f"{_describe(where)}", UserWarning, stacklevel=2)
            keep = ~empty
            data, bad, meta = data[keep], bad[keep], meta[keep]
            noise = None if noise is None else noise[keep]
            wcs = None if wcs is None else [w for w, k in zip(wcs, keep) if k]
        self.data, self.mask, self.noise, self.wcs, self.meta = data, bad, noise, wcs, meta
        self.unit = unit
        self.pixel_scale = _as_pixel_scale(pixel_scale)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of every stamp."""
        return tuple(int(s) for s in self.data.shape[1:])

    def __repr__(self) -> str:
        height, width = self.shape
        said = [f"{len(self)} stamp{'s' if len(self) != 1 else ''} of {height}×{width} pixels"]
        if self.mask.any():
            said.append(f"{int(self.mask.sum())} masked pixels")
        if self.unit is not None:
            said.append(f"unit {self.unit}")
        if self.pixel_scale is not None:
            said.append(f"{self.pixel_scale.value:g} arcsec/pix")
        if self.noise is not None:
            said.append("noise")
        if self.wcs is not None:
            said.append("WCS")
        return f"<Stamps: {', '.join(said)}>"

    def __getitem__(self, key) -> Stamps:
        """Stamps selected by an integer (a collection of one), a slice, integer positions or a boolean mask."""
        n = len(self)
        if isinstance(key, (int, np.integer)):
            if not -n <= int(key) < n:
                raise IndexError(f"stamp index {int(key)} is out of range for {n} stamps")
            index = np.array([int(key) % n])
        elif isinstance(key, slice):
            index = np.arange(n)[key]
        else:
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (n,):
                    raise IndexError(f"a boolean selection needs one entry per stamp ({n}), got shape {key.shape}")
                index = np.flatnonzero(key)
            elif key.dtype.kind in "iu" and key.ndim == 1:
                index = np.arange(n)[key]
            else:
                raise TypeError(f"stamps are selected by an int, a slice, integer positions or a boolean mask, got "
                                f"{key.dtype} of shape {key.shape}")
        if index.size == 0:
            raise ValueError("the selection is empty")
        return self._take(index)

    def _take(self, index: np.ndarray) -> Stamps:
        """A subset without re-checking what is already valid."""
        out = Stamps.__new__(Stamps)
        out.data, out.mask = self.data[index], self.mask[index]
        out.noise = None if self.noise is None else self.noise[index]
        out.wcs = None if self.wcs is None else [copy.deepcopy(self.wcs[i]) for i in index]
        out.meta = self.meta[index]
        out.unit, out.pixel_scale = self.unit, self.pixel_scale
        return out

    def filled(self, value: float = 0.0) -> np.ndarray:
        """The data (n, H, W) with masked pixels replaced by ``value``."""
        return np.where(self.mask, value, self.data)

    def to_tensor(self, fill: float = 0.0):
        """A float32 torch tensor (n, 1, H, W) for a convolutional network, masked pixels set to ``fill``.

        Examples
        --------
        >>> Stamps(np.ones((2, 4, 4))).to_tensor().shape
        torch.Size([2, 1, 4, 4])
        """
        import torch

        return torch.from_numpy(self.filled(fill).astype(np.float32)[:, None])

    def plot(self, n: int = 16, *, stretch: str = "asinh", ncols: int | None = None, axes=None,
             percent: float = 99.5, cmap: str = "gray"):
        """Show the first ``n`` stamps in a grid, each with its own stretch; masked pixels are blank.

        Parameters
        ----------
        n : int
            How many stamps.
        stretch : {"asinh", "linear", "sqrt", "log"}
            Intensity stretch (:func:`astropy.visualization.simple_norm`), between
            the ``percent`` central percentiles of each stamp's valid pixels.
        ncols : int, optional
            Columns of the grid (default: about √n).
        axes : sequence of matplotlib Axes, optional
            Where to draw; at least ``n`` of them.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        from astropy.visualization import simple_norm

        if stretch not in ("asinh", "linear", "sqrt", "log"):
            raise ValueError(f"stretch must be 'asinh', 'linear', 'sqrt' or 'log', got {stretch!r}")
        count = min(int(n), len(self))
        if count < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if axes is None:
            ncols = int(ncols) if ncols else int(np.ceil(np.sqrt(count)))
            nrows = int(np.ceil(count / ncols))
            figure, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.6 * nrows), squeeze=False)
        axes = np.ravel(axes)
        if len(axes) < count:
            raise ValueError(f"axes holds {len(axes)} Axes for {count} stamps")
        figure = axes[0].figure
        for k, ax in enumerate(axes):
            ax.set_axis_off()
            if k >= count:
                continue
            image = self.data[k]
            norm = simple_norm(image[~self.mask[k]], stretch=stretch, percent=percent)
            ax.imshow(image, origin="lower", norm=norm, cmap=cmap, interpolation="nearest")
            ax.set_title(str(self.meta["id"][k]), fontsize=7)
        return figure


# ---------------------------------------------------------------------- checks
def _float_array(value, name: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}") from None
    return array


def _as_unit(unit, name: str):
    if unit is None:
        return None
    try:
        return u.Unit(unit)
    except (ValueError, TypeError):
        raise ValueError(f"{name}={unit!r} is not a unit astropy understands") from None


def _as_pixel_scale(pixel_scale):
    if pixel_scale is None:
        return None
    try:
        value = u.Quantity(pixel_scale)
    except (TypeError, ValueError):
        raise TypeError(f"pixel_scale must be a number (arcsec / pix) or an angle per pixel Quantity, got "
                        f"{pixel_scale!r}") from None
    if value.unit == u.one:
        value = value * _PIXEL_SCALE_UNIT
    elif value.unit.is_equivalent(u.arcsec):
        value = value / u.pix
    if value.ndim == 0 and value.unit.is_equivalent(1 / _PIXEL_SCALE_UNIT):
        raise ValueError(f"pixel_scale is in {value.unit}, pixels per angle: pass its inverse, "
                         f"{1 / value.to(1 / _PIXEL_SCALE_UNIT):.6g}")
    if value.ndim != 0 or not value.unit.is_equivalent(_PIXEL_SCALE_UNIT):
        raise ValueError(f"pixel_scale must be one angle per pixel (e.g. 0.03 * u.arcsec / u.pix), got {pixel_scale!r}")
    value = value.to(_PIXEL_SCALE_UNIT)
    if not (np.isfinite(value.value) and value.value > 0):
        raise ValueError(f"pixel_scale must be positive, got {value}")
    return value


def _noise_cube(noise, shape, unit, bad) -> np.ndarray:
    if isinstance(noise, u.Quantity):
        if unit is None:
            raise ValueError(f"noise is in {noise.unit} but the data have no unit; give both or neither")
        try:
            noise = noise.to_value(unit)
        except u.UnitConversionError:
            raise ValueError(f"noise is in {noise.unit}, which does not convert to the data unit {unit}") from None
    noise = _float_array(noise, "noise")
    try:
        noise = np.array(np.broadcast_to(noise, shape), dtype=np.float64)
    except ValueError:
        raise ValueError(f"noise has shape {noise.shape}, which does not broadcast to the data's {shape} (give a "
                         "number, an (H, W) map, or one map per stamp)") from None
    invalid = ~bad & ~(np.isfinite(noise) & (noise > 0))
    if invalid.any():
        where = np.flatnonzero(invalid.any(axis=(1, 2)))
        raise ValueError(f"noise must be finite and > 0 at every unmasked pixel; it is not in stamp(s) "
                         f"{_describe(where)}")
    noise[bad] = np.nan
    return noise


def _wcs_list(wcs, n: int):
    if wcs is None:
        return None
    if isinstance(wcs, WCS):
        return [copy.deepcopy(wcs) for _ in range(n)]
    wcs = list(wcs)
    if len(wcs) != n:
        raise ValueError(f"wcs has {len(wcs)} entries for {n} stamps")
    for i, w in enumerate(wcs):
        if w is not None and not isinstance(w, WCS):
            raise TypeError(f"wcs[{i}] must be an astropy.wcs.WCS or None, got {type(w).__name__}")
    return None if all(w is None for w in wcs) else wcs


def _meta_table(meta, n: int) -> Table:
    if meta is None:
        return Table({"id": np.arange(n)})
    if not isinstance(meta, Table):
        raise TypeError(f"meta must be an astropy Table with one row per stamp, got {type(meta).__name__}")
    if len(meta) != n:
        raise ValueError(f"meta has {len(meta)} rows for {n} stamps")
    meta = Table(meta, copy=True)
    if "id" not in meta.colnames:
        meta.add_column(np.arange(n), name="id", index=0)
    return meta


# ---------------------------------------------------------------------- FITS
_UNIT_WORDS = {"electrons": "electron", "counts": "count", "cps": "count / s", "e-": "electron", "photons": "photon"}


def _parse_unit(text, where: str):
    """A BUNIT string as an astropy unit, or None (with a warning) when astropy cannot read it."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    for candidate, form in ((text, "generic"), (text, "fits"), (text.lower(), "generic")):
        try:
            return u.Unit(candidate, format=form)
        except ValueError:
            pass
    words = text.lower()
    for word, replacement in _UNIT_WORDS.items():
        words = words.replace(word, replacement)
    try:
        return u.Unit(words)
    except ValueError:
        warnings.warn(f"BUNIT {text!r} of {where} is not a unit astropy understands; the stamps get unit None",
                      UserWarning, stacklevel=4)
        return None


def _header_wcs(header, hdul=None):
    """The 2-D (celestial when there is one) WCS of an image header, or None when it defines none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, fobj=hdul)
    if wcs.naxis != 2:
        wcs = wcs.celestial if wcs.has_celestial else wcs.sub([1, 2])
    if not any(str(c).strip() for c in wcs.wcs.ctype):
        return None
    return wcs


def _wcs_pixel_scale(wcs_list):
    """arcsec / pix shared by all celestial WCSs (square pixels, equal to 1e-6), else None."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    scales = []
    for w in wcs_list or []:
        if w is None or not w.has_celestial:
            return None
        sx, sy = proj_plane_pixel_scales(w.celestial)
        if abs(sx - sy) > 1e-3 * max(sx, sy):
            return None
        scales.append(0.5 * (sx + sy) * 3600.0)
    if not scales or np.ptp(scales) > 1e-6 * max(scales):
        return None
    return float(np.mean(scales)) * _PIXEL_SCALE_UNIT


def _hdu_label(hdul, index: int) -> str:
    name = hdul[index].name
    return f"HDU {index}" + (f" ({name})" if name else "")


def _hdu_index(hdul, key, name: str, argument: str) -> int:
    if isinstance(key, (int, np.integer)):
        if not 0 <= int(key) < len(hdul):
            raise ValueError(f"{argument}={int(key)} but {name} has HDUs 0 to {len(hdul) - 1}")
        return int(key)
    if isinstance(key, str):
        try:
            return hdul.index_of(key)
        except KeyError:
            names = [h.name for h in hdul]
            raise ValueError(f"{argument}={key!r}: {name} has no HDU of that name (it has {names})") from None
    raise TypeError(f"{argument} must be an HDU index or EXTNAME (or a list of them), got {key!r}")


def _image_cube(hdul, index: int, name: str, argument: str) -> np.ndarray:
    """The data of one image HDU as (n, H, W) float64; anything else is a ValueError naming file and HDU."""
    hdu = hdul[index]
    where = f"{_hdu_label(hdul, index)} of {name}"
    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
        said = f"{where} ({argument}) is a {type(hdu).__name__}, not image data; stamps are 2-D images or 3-D cubes"
        raise ValueError(said)  # noqa: TRY004 -- a bad file, not a bad argument type
    if hdu.data is None:
        raise ValueError(f"{where} ({argument}) is empty: it has no data")
    data = np.array(hdu.data, dtype=np.float64)
    if data.ndim not in (2, 3):
        raise ValueError(f"{where} ({argument}) holds {data.ndim}-D data of shape {data.shape}; stamps are 2-D images "
                         "(H, W) or 3-D cubes (n, H, W)")
    return data[None] if data.ndim == 2 else data


def _selected(hdul, key, name: str, argument: str) -> list[int]:
    keys = key if isinstance(key, (list, tuple)) else [key]
    return [_hdu_index(hdul, k, name, argument) for k in keys]


def _read_one(source, hdu, mask_hdu, noise_hdu) -> dict:
    """One FITS source as a dict of stamp parts, with a label per stamp for error messages."""
    if isinstance(source, fits.HDUList):
        name = "the HDUList"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no FITS file at {str(path)!r}")
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a folder, not a FITS file")
        name = str(path)
    else:
        raise TypeError(f"source must be a FITS path, an astropy HDUList or a list of paths, got "
                        f"{type(source).__name__}")
    with reading_fits(name):
        if isinstance(source, fits.HDUList):
            return _read_hdul(source, name, hdu, mask_hdu, noise_hdu)
        with fits.open(path, memmap=False) as hdul:
            return _read_hdul(hdul, name, hdu, mask_hdu, noise_hdu)


def _read_hdul(hdul, name: str, hdu, mask_hdu, noise_hdu) -> dict:
    if hdu is None and hdul[0].header.get("STAMPFMT") == _FORMAT:
        return _read_stamp_file(hdul, name)
    exclude = set()
    for argument, key in (("mask_hdu", mask_hdu), ("noise_hdu", noise_hdu)):
        if key is not None:
            exclude.update(_selected(hdul, key, name, argument))
    if hdu is None:
        chosen = [i for i, h in enumerate(hdul) if i not in exclude and isinstance(h, (fits.PrimaryHDU, fits.ImageHDU))
                  and not (h.data is None and i == 0)]
        if not chosen:
            said = ", ".join(f"{_hdu_label(hdul, i)}: {type(h).__name__}" + (" (empty)" if getattr(h, "data", 1) is None
                                                                            else "") for i, h in enumerate(hdul))
            raise ValueError(f"{name} holds no image HDU ({said}); pass hdu= to choose one")
    else:
        chosen = _selected(hdul, hdu, name, "hdu")
    cubes, labels, wcs, units = [], [], [], []
    for index in chosen:
        cube = _image_cube(hdul, index, name, "hdu")
        if cubes and cube.shape[1:] != cubes[0].shape[1:]:
            raise ValueError(f"stamps of different shapes: {cubes[0].shape[1:]} from {labels[0]} but "
                             f"{cube.shape[1:]} from {_hdu_label(hdul, index)} of {name}")
        header = hdul[index].header
        cubes.append(cube)
        planes = [f"{_hdu_label(hdul, index)} of {name}" + (f", plane {k}" if len(cube) > 1 else "")
                  for k in range(len(cube))]
        labels += planes
        header_wcs = _header_wcs(header, hdul)
        wcs += [copy.deepcopy(header_wcs) for _ in range(len(cube))]
        units.append(_parse_unit(header.get("BUNIT"), f"{_hdu_label(hdul, index)} of {name}"))
    if len({str(unit) for unit in units}) > 1:
        raise ValueError(f"the image HDUs of {name} have different BUNIT ({sorted({str(x) for x in units})})")
    data = np.concatenate(cubes)
    meta = Table({"source": [name] * len(data),
                  "hdu": np.concatenate([[i] * len(c) for i, c in zip(chosen, cubes)]).astype(np.int64),
                  "plane": np.concatenate([np.arange(len(c)) for c in cubes]).astype(np.int64)})
    parts = {"data": data, "mask": None, "noise": None, "wcs": wcs, "meta": meta, "unit": units[0],
             "pixel_scale": None, "labels": labels, "name": name}
    for argument, key in (("mask_hdu", mask_hdu), ("noise_hdu", noise_hdu)):
        if key is None:
            continue
        indices = _selected(hdul, key, name, argument)
        extra = np.concatenate([_image_cube(hdul, i, name, argument) for i in indices])
        if extra.shape != data.shape:
            raise ValueError(f"{argument} ({', '.join(_hdu_label(hdul, i) for i in indices)} of {name}) has shape "
                             f"{extra.shape}, but the stamps (hdu) have {data.shape}")
        if argument == "mask_hdu":
            parts["mask"] = extra != 0
        else:
            parts["noise"] = extra
    return parts


def _read_stamp_file(hdul, name: str) -> dict:
    """A file written by :func:`write_stamps`; a part missing or of the wrong shape is a ValueError naming the file."""
    names = [h.name for h in hdul]
    missing = [part for part in ("MASK", "META") if part not in names]
    if missing:  # write_stamps always writes both: the file was cut short or edited
        raise ValueError(f"{name} is a write_stamps file without its {' and '.join(missing)} HDU(s) (it has "
                         f"{names}): it is incomplete or truncated; write it again")
    if hdul[0].data is None:
        raise ValueError(f"{name} is a write_stamps file whose stamp cube (HDU 0) is empty")
    data = np.array(hdul[0].data, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{name}: the stamp cube (HDU 0) has shape {data.shape}, not (n, H, W)")
    mask = np.array(hdul["MASK"].data) != 0
    noise = np.array(hdul["NOISE"].data, dtype=np.float64) if "NOISE" in names else None
    for part, values in (("MASK", mask), ("NOISE", noise)):
        if values is not None and values.shape != data.shape:
            raise ValueError(f"{name}: the {part} HDU has shape {values.shape} but the stamp cube {data.shape}")
    meta = Table.read(hdul, hdu="META")
    if len(meta) != len(data):
        raise ValueError(f"{name}: the META table has {len(meta)} rows for {len(data)} stamps")
    described = hdul["META"].header.get("METAJSON")
    try:
        meta.meta = json.loads(described) if described is not None else {}
    except (TypeError, ValueError):
        raise ValueError(f"{name}: the METAJSON keyword of the META HDU is not valid JSON") from None
    if not isinstance(meta.meta, dict):
        raise ValueError(f"{name}: the METAJSON keyword of the META HDU is not a JSON object")
    wcs = [None] * len(data)
    if "wcs_header" in meta.colnames:
        wcs = [_stamp_wcs(text, name, row) for row, text in enumerate(np.asarray(meta["wcs_header"]))]
        meta.remove_column("wcs_header")
    header = hdul[0].header
    scale = header.get("PIXSCALE")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"{name}: PIXSCALE = {scale!r} is not a positive number of arcsec / pix")
        scale = float(scale) * _PIXEL_SCALE_UNIT
    return {"data": data, "mask": mask, "noise": noise, "wcs": wcs, "meta": meta,
            "unit": _parse_unit(header.get("BUNIT"), name), "labels": [f"{name}, stamp {k}" for k in range(len(data))],
            "pixel_scale": scale, "name": name}


def _stamp_wcs(text, name: str, row: int):
    """One stamp's WCS from the header text in the META table of a write_stamps file, or None when empty."""
    text = text.decode("ascii", "replace") if isinstance(text, bytes) else str(text)
    if not text.strip():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            return WCS(fits.Header.fromstring(text))
    except Exception as err:  # noqa: BLE001 -- astropy.wcs raises many types (wcslib errors) on bad text
        raise ValueError(f"{name}: the WCS of stamp {row} (META column wcs_header) cannot be read "
                         f"({type(err).__name__}: {err})") from None


def read_stamps(source, *, hdu=None, mask_hdu=None, noise_hdu=None, drop_empty: bool = False) -> Stamps:
    """Read stamps from FITS: a 2-D cutout, several 2-D image HDUs, a 3-D cube, or a file of :func:`write_stamps`.

    Parameters
    ----------
    source : path, astropy.io.fits.HDUList, or list of paths
        A list is read file by file (the same ``hdu`` arguments for each) and
        concatenated in order.
    hdu : int, str or list of them, optional
        The image HDU(s) holding the stamps, by index or EXTNAME. Default: every
        image HDU with data except those named by ``mask_hdu`` and ``noise_hdu``
        (an empty primary HDU and table HDUs are skipped); each 2-D HDU is one
        stamp and each 3-D HDU (n, H, W) is n stamps.
    mask_hdu, noise_hdu : int, str or list of them, optional
        HDU(s) holding a mask (non-zero = bad pixel, so a bitmask with any bit
        set is bad) and a 1σ noise map, with the same total shape as the stamps.
    drop_empty : bool
        Drop stamps with no valid pixel (with a warning) instead of raising.

    Returns
    -------
    Stamps
        ``meta`` has ``id``, ``source`` (file name), ``hdu`` (index) and ``plane``
        (index within a cube); ``wcs`` comes from each header (the celestial 2-D
        part of a cube's), ``unit`` from ``BUNIT`` (None with a warning when
        astropy cannot read it) and ``pixel_scale`` from the WCS when every stamp
        has the same one. A :func:`write_stamps` file gives back exactly what was
        written.

    Examples
    --------
    >>> from astropy.io import fits
    >>> hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((5, 5))), fits.ImageHDU(np.zeros((5, 5)))])
    >>> stamps = read_stamps(hdul)
    >>> len(stamps), stamps.meta["hdu"].tolist()
    (2, [1, 2])
    """
    sources = list(source) if isinstance(source, (list, tuple)) and not isinstance(source, fits.HDUList) else [source]
    if not sources:
        raise ValueError("source is an empty list of files")
    for argument, key in (("hdu", hdu), ("mask_hdu", mask_hdu), ("noise_hdu", noise_hdu)):
        keys = key if isinstance(key, (list, tuple)) else [key]
        if key is not None and (not keys or not all(isinstance(k, (int, np.integer, str)) and not isinstance(k, bool)
                                                    for k in keys)):
            raise TypeError(f"{argument} must be an HDU index or EXTNAME (or a list of them), got {key!r}")
    parts = [_read_one(s, hdu, mask_hdu, noise_hdu) for s in sources]
    labels = [label for part in parts for label in part["labels"]]
    first = parts[0]
    for part in parts[1:]:
        if part["data"].shape[1:] != first["data"].shape[1:]:
            raise ValueError(f"stamps of different shapes: {first['data'].shape[1:]} from {first['labels'][0]} but "
                             f"{part['data'].shape[1:]} from {part['labels'][0]}")
        if str(part["unit"]) != str(first["unit"]):
            raise ValueError(f"{first['name']} is in {first['unit']} but {part['name']} in {part['unit']}")
    with_noise = [p["noise"] is not None for p in parts]
    if any(with_noise) and not all(with_noise):
        lacking = [p["name"] for p, has in zip(parts, with_noise) if not has]
        raise ValueError(f"some sources have a noise map and others not (none in {lacking}); read them separately")
    data = np.concatenate([p["data"] for p in parts])
    mask = np.concatenate([np.isnan(p["data"]) | (False if p["mask"] is None else p["mask"]) for p in parts])
    empty = np.flatnonzero(mask.all(axis=(1, 2)))
    if empty.size and not drop_empty:
        raise ValueError(f"{empty.size} stamp(s) have no valid pixel (all NaN or masked): {_labels(labels, empty)}. "
                         "Pass drop_empty=True to drop them")
    noise = np.concatenate([p["noise"] for p in parts]) if all(with_noise) else None
    # the checks of Stamps, made here so that the message names the file, HDU and plane
    infinite = np.flatnonzero(np.isinf(data).any(axis=(1, 2)))
    if infinite.size:
        raise ValueError(f"{infinite.size} stamp(s) have inf pixels: {_labels(labels, infinite)}. Pixel values must be "
                         "finite; mark bad pixels in a mask HDU (mask_hdu=) or with NaN")
    if noise is not None:
        invalid = np.flatnonzero((~mask & ~(np.isfinite(noise) & (noise > 0))).any(axis=(1, 2)))
        if invalid.size:
            raise ValueError(f"the noise map of {invalid.size} stamp(s) is not finite and > 0 at every unmasked pixel: "
                             f"{_labels(labels, invalid)}")
    wcs = [w for p in parts for w in p["wcs"]]
    names = ", ".join(p["name"] for p in parts)
    try:
        meta = vstack([p["meta"] for p in parts], metadata_conflicts="silent") if len(parts) > 1 else first["meta"]
    except (ValueError, TypeError) as err:
        raise ValueError(f"the META tables of {names} cannot be joined ({err}); read the files separately") from None
    if "id" not in meta.colnames:
        meta.add_column(np.arange(len(data)), name="id", index=0)
    scales = {None if p["pixel_scale"] is None else float(p["pixel_scale"].value) for p in parts}
    scale = first["pixel_scale"] if len(scales) == 1 and None not in scales else _wcs_pixel_scale(wcs)
    files = [s for s in sources if isinstance(s, (str, os.PathLike))]
    if files:  # write_stamps refuses to write over them
        remember_sources(meta.meta, files)
    try:
        return Stamps(data, mask=mask, noise=noise, wcs=wcs, meta=meta, unit=first["unit"], pixel_scale=scale,
                      drop_empty=drop_empty)
    except (ValueError, TypeError) as err:  # checked above; what is left still names the source
        raise ValueError(f"{names}: {err}") from None


def _labels(labels, indices, limit: int = 5) -> str:
    """"HDU 1 of a.fits; HDU 2 of a.fits; ... (3 more)": where the stamps of ``indices`` came from."""
    said = "; ".join(labels[i] for i in indices[:limit])
    return said + (f"; ... ({len(indices) - limit} more)" if len(indices) > limit else "")


def write_stamps(stamps: Stamps, path, overwrite: bool = False) -> Path:
    """Write stamps to one FITS file that :func:`read_stamps` reads back exactly.

    The cube goes to the primary HDU, then ``MASK``, ``NOISE`` (when there is
    one) and a ``META`` table whose ``wcs_header`` column holds each stamp's
    WCS as header text (see the module docstring). Meta columns must be types
    that FITS tables hold (numbers, strings, fixed-shape arrays). A file the
    stamps were read from is never written over (a ValueError, even with
    ``overwrite``): it may still be memory-mapped under them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> stamps = Stamps(np.arange(32.0).reshape(2, 4, 4), noise=1.0, unit="adu")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_stamps(stamps, pathlib.Path(folder) / "stamps.fits")
    ...     again = read_stamps(path)
    >>> bool((again.data == stamps.data).all()), again.unit
    (True, Unit("adu"))
    """
    if not isinstance(stamps, Stamps):
        raise TypeError(f"stamps must be a Stamps collection, got {type(stamps).__name__}")
    check_not_input(path, read_sources(stamps.meta.meta), argument="path", what="FITS file the stamps were read from")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    primary = fits.PrimaryHDU(stamps.data)
    primary.header["EXTNAME"] = "STAMPS"
    primary.header["STAMPFMT"] = (_FORMAT, "written by astrobayes.galaxies.write_stamps")
    primary.header["STAMPVER"] = (_FORMAT_VERSION, "format version")
    if stamps.unit is not None:
        try:
            primary.header["BUNIT"] = stamps.unit.to_string("fits")
        except ValueError:
            primary.header["BUNIT"] = stamps.unit.to_string()
    if stamps.pixel_scale is not None:
        primary.header["PIXSCALE"] = (float(stamps.pixel_scale.to_value(_PIXEL_SCALE_UNIT)), "[arcsec/pix]")
    hdus = [primary, fits.ImageHDU(stamps.mask.astype(np.uint8), name="MASK")]
    if stamps.noise is not None:
        hdus.append(fits.ImageHDU(stamps.noise, name="NOISE"))
    meta = Table(stamps.meta, copy=True)
    if "wcs_header" in meta.colnames:
        raise ValueError("meta has a column 'wcs_header', which write_stamps uses for the WCS; rename it")
    if stamps.wcs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # to_header warns about keywords it leaves out (e.g. DATE-OBS fixes)
            meta["wcs_header"] = [w.to_header(relax=True).tostring() if w is not None else "" for w in stamps.wcs]
    meta.meta.pop(SOURCES_KEY, None)
    try:
        described = json.dumps(dict(meta.meta))
    except TypeError:
        described = None
        warnings.warn("the meta table's meta dictionary is not JSON-serialisable and is not written", UserWarning,
                      stacklevel=2)
    meta.meta = {}
    try:
        table = fits.table_to_hdu(meta)
    except (ValueError, TypeError) as err:
        raise ValueError(f"meta cannot be stored in a FITS table ({err})") from None
    table.name = "META"
    if described is not None:
        table.header["METAJSON"] = described  # a long string: no comment, which would be cut
    hdus.append(table)
    fits.HDUList(hdus).writeto(path, overwrite=overwrite)
    return path


# ---------------------------------------------------------------------- cutting
def _large_image(image, wcs, noise, mask):
    """(data, wcs, noise, mask, unit) from an array, an image HDU, a Quantity or NDData/CCDData."""
    from astropy.nddata import NDData, StdDevUncertainty

    unit = None
    if isinstance(image, NDData):
        data, unit = image.data, image.unit
        if wcs is None and image.wcs is not None:
            wcs = image.wcs if isinstance(image.wcs, WCS) else getattr(image.wcs, "low_level_wcs", None)
            if not isinstance(wcs, WCS):
                raise TypeError(f"the image's wcs is a {type(image.wcs).__name__}; pass an astropy WCS as wcs=")
        if mask is None and image.mask is not None:
            mask = image.mask
        if noise is None and image.uncertainty is not None:
            sigma = image.uncertainty.represent_as(StdDevUncertainty)
            noise = sigma.array if sigma.unit is None or unit is None else sigma.quantity.to_value(unit)
    elif isinstance(image, (fits.PrimaryHDU, fits.ImageHDU)):
        data = image.data
        if data is None:
            raise ValueError("image is an empty HDU (no data)")
        if wcs is None:
            wcs = _header_wcs(image.header)
        unit = _parse_unit(image.header.get("BUNIT"), "the image HDU")
    elif isinstance(image, u.Quantity):
        data, unit = image.value, image.unit
    else:
        data = image
    data = _float_array(data, "image")
    if data.ndim != 2 or 0 in data.shape:
        raise ValueError(f"image must be 2-D and non-empty, got shape {data.shape}")
    bad = ~np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != data.shape:
            raise ValueError(f"mask has shape {mask.shape} but image has {data.shape}")
        bad |= mask != 0
    data[bad] = np.nan
    if noise is not None:
        noise = _float_array(noise.to_value(unit) if isinstance(noise, u.Quantity) and unit is not None else noise,
                             "noise")
        if noise.shape != data.shape:
            raise ValueError(f"noise has shape {noise.shape} but image has {data.shape}")
    if wcs is not None and not isinstance(wcs, WCS):
        raise TypeError(f"wcs must be an astropy.wcs.WCS, got {type(wcs).__name__}")
    return data, wcs, noise, bad, unit


def _pixel_positions(positions, wcs):
    """(x, y) pixel arrays, a table of extra columns to carry, from a SkyCoord, a Table or an (n, 2) array."""
    from astropy.coordinates import SkyCoord

    extra = None
    if isinstance(positions, Table):
        extra = positions
        names = positions.colnames
        if "x" in names and "y" in names:
            x = np.asarray(u.Quantity(positions["x"]).value, dtype=float)
            y = np.asarray(u.Quantity(positions["y"]).value, dtype=float)
            sky = None
        elif "ra" in names and "dec" in names:
            ra, dec = (u.Quantity(positions[c], u.deg) if getattr(positions[c], "unit", None) else
                       np.asarray(positions[c], dtype=float) * u.deg for c in ("ra", "dec"))
            sky = SkyCoord(ra, dec)
        else:
            raise ValueError(f"positions table needs columns 'x' and 'y' (pixels) or 'ra' and 'dec', has {names}")
    elif isinstance(positions, SkyCoord):
        sky = positions.reshape(-1) if not positions.isscalar else positions.reshape(1)
    else:
        xy = _float_array(positions, "positions")
        if xy.ndim == 1 and xy.shape == (2,):
            xy = xy[None]
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"positions must be (n, 2) pixel coordinates (x, y), a SkyCoord or a Table, got shape "
                             f"{xy.shape}")
        x, y, sky = xy[:, 0], xy[:, 1], None
    if sky is not None:
        if wcs is None:
            raise ValueError("positions are sky coordinates but there is no WCS: pass wcs= (or an image HDU/NDData "
                             "that has one)")
        x, y = (np.atleast_1d(np.asarray(c, dtype=float)) for c in wcs.world_to_pixel(sky))
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if bad.size:
        raise ValueError(f"positions row(s) {_describe(bad)} are not finite (or fall off the WCS projection)")
    if len(x) == 0:
        raise ValueError("positions is empty")
    return x, y, extra


def _stamp_shape(size, wcs) -> tuple[int, int]:
    if isinstance(size, u.Quantity):
        if size.unit.is_equivalent(u.pix):
            size = size.to_value(u.pix)
        elif size.unit.is_equivalent(u.deg):
            if wcs is None or not wcs.has_celestial:
                raise ValueError(f"size={size} is an angle but there is no celestial wcs to turn it into pixels")
            scale = _wcs_pixel_scale([wcs])
            if scale is None:
                raise ValueError("size is an angle but the WCS pixels are not square; give size in pixels")
            size = (size / (scale * u.pix)).to_value(u.one)
        else:
            raise ValueError(f"size must be a number of pixels or an angle, got {size}")
    try:
        shape = np.rint(np.asarray(size, dtype=float)).reshape(-1)
    except (TypeError, ValueError):
        shape = np.zeros(0)
    if shape.size == 1:
        shape = np.repeat(shape, 2)
    if shape.size != 2 or not np.isfinite(shape).all() or (shape < 1).any():
        raise ValueError(f"size must be a positive number of pixels (or (ny, nx)), got {size!r}")
    return int(shape[0]), int(shape[1])


def cut_stamps(image, positions, size, *, wcs=None, noise=None, mask=None, mode: str = "partial",
               ids=None) -> Stamps:
    """Cut same-size stamps from a large image around positions, with :class:`astropy.nddata.Cutout2D`.

    Parameters
    ----------
    image : 2-D array, Quantity, fits.ImageHDU/PrimaryHDU, or NDData/CCDData
        An HDU gives its header WCS and ``BUNIT``; NDData its ``wcs``, ``unit``,
        ``mask`` and ``uncertainty`` (as 1σ noise).
    positions : SkyCoord, (n, 2) array of (x, y) pixels, or Table
        A Table uses columns ``x``, ``y`` (pixels) or else ``ra``, ``dec`` (deg
        when unit-less); its other columns are carried into ``meta``. Sky
        positions need a WCS.
    size : int, (ny, nx), or Quantity
        Stamp size in pixels, or an angle (needs a celestial WCS with square pixels).
    wcs : astropy.wcs.WCS, optional
        Overrides the image's own.
    noise, mask : 2-D arrays, optional
        1σ map and bad-pixel mask (True = bad) of the image.
    mode : {"partial", "strict"}
        ``"partial"``: pixels beyond the image edge are NaN and masked;
        ``"strict"``: a stamp crossing the edge is an error. A stamp entirely
        outside the image is an error in both.
    ids : sequence, optional
        Identifiers for ``meta["id"]`` (default the Table's ``id`` column, else 0 … n−1).

    Returns
    -------
    Stamps
        ``meta``: ``id``, ``x``, ``y`` (position in the image), ``x_stamp``,
        ``y_stamp`` (the same position in stamp pixels), ``ra``, ``dec`` [deg]
        when there is a celestial WCS, then the positions table's other
        columns. Each stamp has its cutout's WCS (a shifted copy of the image's).

    Examples
    --------
    >>> stamps = cut_stamps(np.arange(100.0).reshape(10, 10), [[2, 3], [7, 7]], 3)
    >>> stamps.data[0].tolist()
    [[21.0, 22.0, 23.0], [31.0, 32.0, 33.0], [41.0, 42.0, 43.0]]
    """
    from astropy.nddata import Cutout2D, NoOverlapError, PartialOverlapError

    if mode not in ("partial", "strict"):
        raise ValueError(f"mode must be 'partial' or 'strict', got {mode!r}")
    data, wcs, noise, bad, unit = _large_image(image, wcs, noise, mask)
    x, y, extra = _pixel_positions(positions, wcs)
    shape = _stamp_shape(size, wcs)
    stamps, masks, noises, wcs_list, inside, outside, crossing = [], [], [], [], [], [], []
    for row, (xi, yi) in enumerate(zip(x, y)):
        if not (-shape[1] <= xi <= data.shape[1] + shape[1] and -shape[0] <= yi <= data.shape[0] + shape[0]):
            outside.append(row)  # far off: Cutout2D would overflow converting 1e308 to a C long
            continue
        try:
            cut = Cutout2D(data, (xi, yi), shape, wcs=wcs, mode=mode, fill_value=np.nan, copy=True)
        except NoOverlapError:
            outside.append(row)
            continue
        except PartialOverlapError:
            crossing.append(row)
            continue
        stamp_mask = np.ones(shape, dtype=bool)
        stamp_mask[cut.slices_cutout] = bad[cut.slices_original]
        stamps.append(cut.data)
        masks.append(stamp_mask)
        if noise is not None:
            stamp_noise = np.full(shape, np.nan)
            stamp_noise[cut.slices_cutout] = noise[cut.slices_original]
            noises.append(stamp_noise)
        wcs_list.append(cut.wcs)
        inside.append(cut.input_position_cutout)
    if outside:
        raise ValueError(f"positions row(s) {_describe(outside)} give stamps entirely outside the image of shape "
                         f"{data.shape}")
    if crossing:
        raise ValueError(f"positions row(s) {_describe(crossing)} give stamps crossing the image edge (mode='strict'); "
                         "use mode='partial' to keep them with the outside pixels masked")
    n = len(stamps)
    if ids is None:
        ids = np.asarray(extra["id"]) if extra is not None and "id" in extra.colnames else np.arange(n)
    ids = np.asarray(ids)
    if ids.shape != (n,):
        raise ValueError(f"ids has shape {ids.shape} for {n} positions")
    inside = np.asarray(inside, dtype=float)
    meta = Table({"id": ids, "x": x, "y": y, "x_stamp": inside[:, 0], "y_stamp": inside[:, 1]})
    if wcs is not None and wcs.has_celestial:
        sky = wcs.celestial.pixel_to_world(x, y)
        meta["ra"], meta["dec"] = sky.icrs.ra.to(u.deg), sky.icrs.dec.to(u.deg)
    if extra is not None:
        for name in extra.colnames:
            if name not in meta.colnames:
                meta[name] = extra[name]
    return Stamps(np.array(stamps), mask=np.array(masks), noise=np.array(noises) if noise is not None else None,
                  wcs=wcs_list if wcs is not None else None, meta=meta, unit=unit,
                  pixel_scale=_wcs_pixel_scale([wcs]) if wcs is not None else None)


# ---------------------------------------------------------------------- scaling
class StampScaler:
    """A reversible normalisation of stamp pixel values, for feeding networks and reading their output back.

    ``kind="flux"``: each stamp divided by its own total (NaN-ignoring) flux F;
    the totals of the last :meth:`transform` are kept in ``flux_`` (and, for
    Stamps, in the ``scaler_flux`` meta column) so that :meth:`inverse_transform`
    restores them, or pass ``flux=`` for new stamps (e.g. a generative model's).

    ``kind="asinh"``: y = asinh(x / (softening · σ)), linear within σ of zero and
    logarithmic for bright pixels. σ is a global robust noise level:
    ``noise_level`` when given, else :func:`astropy.stats.mad_std` of the pixels
    within ``border`` of every stamp's edge (background-subtracted stamps are assumed).

    ``kind="linear"``: y = (x − shift) / scale, by default the mean and
    standard deviation of all valid pixels.

    Works on arrays (n, H, W) and on :class:`Stamps` (returns Stamps). NaN stays
    NaN. For Stamps the noise map follows the linear kinds (divided by F or by
    ``scale``); for ``asinh`` it is dropped (set to None): the transform is
    non-linear, so a per-pixel σ no longer describes the scaled values. The unit
    is removed and restored by the inverse.

    Parameters
    ----------
    kind : {"flux", "asinh", "linear"}
    softening : float
        Multiple of σ where ``asinh`` turns from linear to logarithmic.
    noise_level, shift, scale : float, optional
        Fixed values instead of fitted ones.
    border : int
        Width in pixels of the edge strip that measures σ.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stamps = rng.normal(0.0, 2.0, (100, 16, 16))
    >>> scaler = StampScaler("asinh").fit(stamps)
    >>> round(scaler.noise_level_, 1)   # the σ of the pixels within 2 of the edges
    2.0
    >>> y = scaler.transform(stamps)
    >>> bool(np.allclose(StampScaler.from_dict(scaler.to_dict()).inverse_transform(y), stamps))
    True
    """

    kinds = ("flux", "asinh", "linear")

    def __init__(self, kind: str = "asinh", *, softening: float = 1.0, noise_level: float | None = None,
                 shift: float | None = None, scale: float | None = None, border: int = 2):
        if kind not in self.kinds:
            raise ValueError(f"kind must be one of {self.kinds}, got {kind!r}")
        if not (np.isfinite(softening) and softening > 0):
            raise ValueError(f"softening must be positive, got {softening}")
        if noise_level is not None and not (np.isfinite(noise_level) and noise_level > 0):
            raise ValueError(f"noise_level must be positive, got {noise_level}")
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be positive, got {scale}")
        if int(border) < 1:
            raise ValueError(f"border must be >= 1 pixel, got {border}")
        self.kind, self.softening, self.border = kind, float(softening), int(border)
        self.noise_level, self.shift, self.scale = noise_level, shift, scale
        self.noise_level_ = None if noise_level is None else float(noise_level)
        self.shift_ = None if shift is None else float(shift)
        self.scale_ = None if scale is None else float(scale)
        self.unit_ = None
        self.flux_ = None

    def __repr__(self) -> str:
        fitted = {"asinh": f"noise_level_={self.noise_level_}", "linear": f"shift_={self.shift_}, scale_={self.scale_}",
                  "flux": "per-stamp totals"}[self.kind]
        return f"StampScaler({self.kind!r}, {fitted})"

    @staticmethod
    def _values(x) -> np.ndarray:
        values = x.data if isinstance(x, Stamps) else _float_array(x, "x")
        if values.ndim not in (2, 3):
            raise ValueError(f"x must be stamps (n, H, W) or one stamp (H, W), got shape {values.shape}")
        if np.isinf(values).any():
            raise ValueError("x has inf values; pixel values must be finite or NaN")
        return values

    def fit(self, x) -> StampScaler:
        """Measure the global σ (asinh) or shift and scale (linear) from stamps; record their unit."""
        values = self._values(x)
        self.unit_ = x.unit if isinstance(x, Stamps) else None
        if self.kind == "asinh" and self.noise_level is None:
            stack = values[None] if values.ndim == 2 else values
            edge = np.zeros(stack.shape[1:], dtype=bool)
            edge[:self.border], edge[-self.border:], edge[:, :self.border], edge[:, -self.border:] = (True,) * 4
            from astropy.stats import mad_std

            pixels = stack[:, edge].ravel()
            sigma = float(mad_std(pixels, ignore_nan=True))
            if not (np.isfinite(sigma) and sigma > 0):  # e.g. integer-valued borders with a zero MAD
                sigma = float(np.nanstd(pixels))
            if not (np.isfinite(sigma) and sigma > 0):
                raise ValueError("the stamp borders have no scatter to measure the noise level from; pass noise_level=")
            self.noise_level_ = sigma
        if self.kind == "linear":
            if self.shift is None:
                self.shift_ = float(np.nanmean(values))
            if self.scale is None:
                scale = float(np.nanstd(values))
                if not (np.isfinite(scale) and scale > 0):
                    raise ValueError("the stamps are constant: no scale to fit; pass scale=")
                self.scale_ = scale
        return self

    def fit_transform(self, x):
        """:meth:`fit`, then :meth:`transform`."""
        return self.fit(x).transform(x)

    def _check_fitted(self):
        if (self.kind == "asinh" and self.noise_level_ is None) or \
                (self.kind == "linear" and (self.shift_ is None or self.scale_ is None)):
            raise RuntimeError(f"this {self.kind!r} StampScaler is not fitted: call fit() first (or give its values)")

    def transform(self, x):
        """Scaled stamps: an array like ``x``, or Stamps for Stamps."""
        self._check_fitted()
        values = self._values(x)
        factor = None
        if self.kind == "flux":
            total = np.nansum(values, axis=(-2, -1))
            bad = np.flatnonzero(~(np.isfinite(np.atleast_1d(total)) & (np.atleast_1d(total) != 0)))
            if bad.size:
                raise ValueError(f"stamp(s) {_describe(bad)} have zero total flux: they cannot be flux-normalised")
            self.flux_ = np.atleast_1d(total).copy()
            if isinstance(x, Stamps) and self.unit_ is None:
                self.unit_ = x.unit
            factor = np.asarray(total)[..., None, None]
        elif self.kind == "linear":
            factor = self.scale_
        scaled = (np.arcsinh(values / (self.softening * self.noise_level_)) if self.kind == "asinh" else
                  (values - (self.shift_ if self.kind == "linear" else 0.0)) / factor)
        if not isinstance(x, Stamps):
            return scaled
        noise = None if x.noise is None or self.kind == "asinh" else x.noise / np.abs(factor)
        out = _replace(x, scaled, noise, None)
        if self.kind == "flux":
            out.meta["scaler_flux"] = self.flux_
        return out

    def inverse_transform(self, y, flux=None):
        """Undo :meth:`transform`. For ``kind="flux"``, ``flux`` gives the totals (default: ``scaler_flux`` of
        Stamps, else those of the last transform)."""
        self._check_fitted()
        values = self._values(y)
        factor = None
        if self.kind == "flux":
            if flux is None:
                flux = np.asarray(y.meta["scaler_flux"]) if isinstance(y, Stamps) and "scaler_flux" in y.meta.colnames \
                    else self.flux_
            if flux is None:
                raise ValueError("kind='flux' needs the stamps' total fluxes: pass flux= (one per stamp)")
            flux = _float_array(flux, "flux").reshape(-1)
            n = 1 if values.ndim == 2 else len(values)
            if flux.shape != (n,):
                raise ValueError(f"flux has {flux.size} values for {n} stamps")
            factor = flux[0] if values.ndim == 2 else flux[:, None, None]
            restored = values * factor
        elif self.kind == "linear":
            factor = self.scale_
            restored = values * factor + self.shift_
        else:
            restored = np.sinh(values) * (self.softening * self.noise_level_)
        if not isinstance(y, Stamps):
            return restored
        noise = None if y.noise is None or factor is None else y.noise * np.abs(factor)
        out = _replace(y, restored, noise, self.unit_)
        if "scaler_flux" in out.meta.colnames:
            out.meta.remove_column("scaler_flux")
        return out

    def to_dict(self) -> dict:
        """The settings and fitted values as JSON-able plain types."""
        return {"format": "astrobayes.StampScaler", "version": 1, "kind": self.kind, "softening": self.softening,
                "border": self.border, "noise_level": self.noise_level_, "shift": self.shift_, "scale": self.scale_,
                "unit": None if self.unit_ is None else self.unit_.to_string()}

    @classmethod
    def from_dict(cls, values: dict) -> StampScaler:
        """A scaler from :meth:`to_dict` output."""
        if not isinstance(values, dict) or values.get("format") != "astrobayes.StampScaler":
            raise ValueError("not a StampScaler dictionary (its 'format' entry is not 'astrobayes.StampScaler')")
        scaler = cls(values["kind"], softening=values["softening"], noise_level=values["noise_level"],
                     shift=values["shift"], scale=values["scale"], border=values.get("border", 2))
        scaler.unit_ = _as_unit(values.get("unit"), "unit")
        return scaler


def _replace(stamps: Stamps, data: np.ndarray, noise, unit) -> Stamps:
    """A copy of ``stamps`` with new pixel values (masked pixels stay NaN), noise and unit."""
    out = stamps._take(np.arange(len(stamps)))
    out.data = np.where(stamps.mask, np.nan, data)
    out.noise, out.unit = noise, unit
    return out
