"""Cosmic-shear maps on the HEALPix sphere: the :class:`ShearMap` container, FITS I/O, catalogue binning.

In memory a map is a float64 array (..., npix), RING order unless ``nest=True``;
the footprint is a boolean ``mask`` (npix,), True = observed; masked pixels hold
0.0 in memory and ``hp.UNSEEN`` in files.

Sign convention. Shear and ellipticity components refer to the local frame x =
east (increasing RA or longitude), y = north: γ₁ > 0 stretches along the RA
axis, γ₂ > 0 along north-east. Around a mass (κ > 0) the shear is tangential,
γ_t = −Re[γ e^{−2iφ}] > 0 with φ the position angle from x towards y. In this
frame (γ₁, γ₂) are exactly the (Q, U) of healpy's spin-2 transforms when the
E-mode is E_ℓm = −√[(ℓ+2)(ℓ−1)/(ℓ(ℓ+1))] κ_ℓm (see :mod:`.simulate`). HEALPix's
polarisation (COSMO) convention differs from the IAU one in the sign of U
(γ₂ here): a catalogue whose e₂ is measured with x pointing west (RA increasing
to the left of an image), or a map made with IAU-convention tools, needs its
γ₂ negated (``flip_e2=True`` in :func:`catalog_to_maps`). Tests check the
tangential pattern of a κ peak against the flat-sky Kaiser–Squires limit.

Examples
--------
>>> import numpy as np
>>> maps = ShearMap(kappa=np.arange(12.0), mask=np.arange(12) < 6)
>>> maps
<ShearMap nside=1 RING C: kappa; fsky=0.500>
>>> maps.kappa[6:].tolist()
[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
"""
from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path

import astropy.units as u
import healpy as hp
import numpy as np
from astropy.io import fits

from astrobayes.core.fitsfiles import reading_fits
from astrobayes.core.paths import check_not_input, read_sources, remember_sources

__all__ = ["ShearMap", "read_maps", "write_maps", "catalog_to_maps", "MAP_FIELDS", "PIXEL_FIELDS"]

#: signal maps; hp.UNSEEN in one of them marks an unobserved pixel in files
MAP_FIELDS = ("kappa", "gamma1", "gamma2")
#: per-pixel bookkeeping: summed weight, galaxy count, 1σ shape noise per component
PIXEL_FIELDS = ("weight", "n_gal", "noise")
_COORDS = ("C", "G", "E")


def _implied_nside(npix: int) -> str:
    """"nside 4" for 192 pixels; for a length that is no HEALPix size, the nearest sizes that are."""
    nside = (npix / 12) ** 0.5
    if nside.is_integer() and hp.isnsideok(int(nside), nest=True):
        return f"nside {int(nside)}"
    below = 2 ** max(0, math.floor(math.log2(max(nside, 1.0))))
    near = [f"{12 * n * n} (nside {n})" for n in (below, 2 * below) if 12 * n * n != npix]
    return f"no nside: not 12·nside² with nside a power of 2; the nearest HEALPix sizes are {' and '.join(near)}"


def _is_healpix_size(npix: int) -> bool:
    """True for 12·nside² with nside a power of 2 (the sizes both orderings allow)."""
    return bool(hp.isnpixok(npix)) and npix > 0 and hp.isnsideok(hp.npix2nside(npix), nest=True)


#: largest |value| of a κ or γ map accepted: squares of larger ones, summed over pixels, overflow float64
_LARGEST_VALUE = 1e100


def _check_magnitude(values: np.ndarray, name: str) -> None:
    """Refuse values whose power overflows float64 (the transforms would return NaN without an error)."""
    largest = float(np.abs(values).max(initial=0.0))
    if largest > _LARGEST_VALUE:
        raise ValueError(f"{name} has values up to {largest:.3g}: convergence and shear are dimensionless "
                         f"(|κ| ≲ 1); values above {_LARGEST_VALUE:.0e} overflow the band powers — are the maps in other units?")


def _map_nside(values: np.ndarray, name: str) -> int:
    """The nside of maps (..., npix), or a ValueError that blames ``name``'s length and gives the nearest sizes."""
    if values.ndim == 0:
        raise ValueError(f"{name} must be a map (..., npix), got a scalar")
    npix = values.shape[-1]
    if not _is_healpix_size(npix):
        raise ValueError(f"{name} has {npix} pixels along its last axis, {_implied_nside(npix)}")
    return int(hp.npix2nside(npix))


def _check_map_memory(nside: int, n_maps: int, argument: str = "nside") -> None:
    """Refuse, before allocating, ``n_maps`` float64 maps at ``nside`` that would not fit in this machine's memory."""
    from astrobayes.core.limits import memory_bytes

    needed, memory = 8 * n_maps * 12 * nside ** 2, memory_bytes()
    if memory is not None and needed > memory:
        raise ValueError(f"{argument}={nside} needs about {needed / 2**30:.3g} GiB for {n_maps} maps of "
                         f"{12 * nside ** 2:,} pixels, more than this machine's {memory / 2**30:.3g} GiB: use a "
                         "smaller nside")


def _check_nside(nside) -> int:
    if isinstance(nside, bool) or not isinstance(nside, (int, np.integer)) or not hp.isnsideok(int(nside), nest=True):
        raise ValueError(f"nside must be a power of 2 (1, 2, 4, ...), got {nside!r}")
    return int(nside)


def _as_mask(mask, npix: int, name: str = "mask", grid: str = "the maps have") -> np.ndarray:
    """A boolean footprint (npix,); ``grid`` says what fixes npix, for the message when the mask's length differs."""
    array = np.asarray(mask)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one footprint of shape ({npix},), got shape {array.shape}")
    if array.shape != (npix,):
        said = f"{npix}" if "nside" in grid else f"{npix} (nside {hp.npix2nside(npix)})"
        raise ValueError(f"{name} has {array.size} pixels ({_implied_nside(array.size)}) but {grid} {said}: the "
                         "mask and the maps must be on one grid (hp.ud_grade one of them)")
    if array.dtype != bool:
        if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (True = observed) or 0/1, got dtype {array.dtype}")
        array = array != 0
    return array.copy()


@dataclasses.dataclass(eq=False, repr=False)
class ShearMap:
    """Convergence and/or shear maps on one HEALPix grid, with their footprint.

    Parameters
    ----------
    kappa : array (..., npix), optional
        Convergence κ (dimensionless).
    gamma1, gamma2 : arrays (..., npix), optional
        Shear components, given together, in the east/north frame of the module docstring.
    mask : bool array (npix,), optional
        True = observed. Default: every pixel where no map field holds ``hp.UNSEEN``.
    nside : int, optional
        Power of 2; default from the pixel count.
    nest : bool
        NESTED ordering for every array (mask included), else RING.
    coord : {"C", "G", "E"}
        Frame: equatorial, Galactic or ecliptic.
    weight, n_gal, noise : arrays (..., npix), optional
        Summed galaxy weight, galaxy count and 1σ shape noise per component in each pixel.
    meta : dict
        Free-form provenance (not written to FITS).

    Masked pixels are set to 0.0 (a copy is made); NaN or inf in observed pixels is a ValueError.

    Examples
    --------
    >>> m = ShearMap(gamma1=np.zeros(48), gamma2=np.ones(48), mask=np.ones(48, bool), coord="G")
    >>> m.nside, m.fsky, m.to_nest().nest
    (2, 1.0, True)
    """

    kappa: np.ndarray | None = None
    gamma1: np.ndarray | None = None
    gamma2: np.ndarray | None = None
    mask: np.ndarray | None = None
    nside: int | None = None
    nest: bool = False
    coord: str = "C"
    weight: np.ndarray | None = None
    n_gal: np.ndarray | None = None
    noise: np.ndarray | None = None
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if (self.gamma1 is None) != (self.gamma2 is None):
            raise ValueError("gamma1 and gamma2 come as a pair: give both or neither")
        if self.kappa is None and self.gamma1 is None:
            raise ValueError("a ShearMap needs kappa or the pair gamma1, gamma2")
        arrays = {}
        for name in MAP_FIELDS + PIXEL_FIELDS:
            if getattr(self, name) is None:
                continue
            if name in MAP_FIELDS and np.asarray(getattr(self, name)).dtype == bool:
                raise TypeError(f"{name} is a boolean array: is it the footprint? Pass it as mask=")
            try:
                arrays[name] = np.array(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be a numeric array, got {type(getattr(self, name)).__name__}") from None
            if arrays[name].ndim == 0:
                raise ValueError(f"{name} must be a map (..., npix), got a scalar")
        if self.nside is None:
            self.nside = _map_nside(*next((a, n) for n, a in arrays.items()))
        self.nside = _check_nside(self.nside)
        npix = 12 * self.nside ** 2
        for name, array in arrays.items():
            if array.shape[-1] != npix:
                raise ValueError(f"{name} has {array.shape[-1]} pixels ({_implied_nside(array.shape[-1])}) but "
                                 f"nside={self.nside} needs {npix}")
        if self.gamma1 is not None and arrays["gamma1"].shape != arrays["gamma2"].shape:
            raise ValueError(f"gamma1 {arrays['gamma1'].shape} and gamma2 {arrays['gamma2'].shape} differ in shape")
        if not isinstance(self.coord, str) or self.coord.upper() not in _COORDS:
            raise ValueError(f"coord must be one of {_COORDS}, got {self.coord!r}")
        self.coord, self.nest = self.coord.upper(), bool(self.nest)
        if self.mask is None:
            unseen = [np.isclose(arrays[n], hp.UNSEEN, rtol=1e-5, atol=0) for n in MAP_FIELDS if n in arrays]
            self.mask = ~np.any([s.reshape(-1, npix).any(axis=0) for s in unseen], axis=0)
        self.mask = _as_mask(self.mask, npix)
        if not self.mask.any():
            raise ValueError("all-masked map: the mask has no observed pixel")
        for name, array in arrays.items():
            observed = array[..., self.mask]
            bad = ~np.isfinite(observed)
            if bad.any() or (name in MAP_FIELDS and np.isclose(observed, hp.UNSEEN, rtol=1e-5, atol=0).any()):
                raise ValueError(f"{name} has {int(bad.sum())} NaN/inf value(s) or hp.UNSEEN in observed pixels")
            if name in PIXEL_FIELDS and (observed < 0).any():
                raise ValueError(f"{name} must be >= 0, got {observed.min()}")
            array[..., ~self.mask] = 0.0
            setattr(self, name, array)

    npix = property(lambda self: 12 * self.nside ** 2, doc="Number of pixels, 12·nside².")
    fsky = property(lambda self: float(self.mask.mean()), doc="Observed fraction of the sky.")
    fields = property(lambda self: tuple(n for n in MAP_FIELDS + PIXEL_FIELDS if getattr(self, n) is not None),
                      doc="Names of the arrays present, in the order of MAP_FIELDS + PIXEL_FIELDS.")

    def __repr__(self) -> str:
        order = "NEST" if self.nest else "RING"
        return f"<ShearMap nside={self.nside} {order} {self.coord}: {', '.join(self.fields)}; fsky={self.fsky:.3f}>"

    def _reordered(self, index: np.ndarray, nest: bool) -> ShearMap:
        moved = {n: getattr(self, n)[..., index] for n in self.fields}
        return dataclasses.replace(self, mask=self.mask[index], nest=nest, meta=dict(self.meta), **moved)

    def to_nest(self) -> ShearMap:
        """A NESTED-ordered copy."""
        return self._reordered(slice(None) if self.nest else hp.nest2ring(self.nside, np.arange(self.npix)), True)

    def to_ring(self) -> ShearMap:
        """A RING-ordered copy."""
        return self._reordered(hp.ring2nest(self.nside, np.arange(self.npix)) if self.nest else slice(None), False)

    def udgrade(self, nside: int, *, min_coverage: float = 0.0) -> ShearMap:
        """The maps on another grid, with the mask handled explicitly.

        Degrading averages the observed children of each coarse pixel, weighted by
        ``weight`` (else ``n_gal``, else equally); a coarse pixel is observed when a
        fraction > 0 and ≥ ``min_coverage`` of its children is. Counts and weights add;
        ``noise`` combines as √(Σ w²σ²)/Σw. Upgrading copies values and noise to the
        children and splits counts and weights evenly (totals are conserved), so the
        noise of each child is √k times its parent's.

        Examples
        --------
        >>> m = ShearMap(kappa=np.arange(48.0), mask=np.arange(48) != 0, nest=True)
        >>> m.udgrade(1).kappa[:2].tolist()   # pixel 0 masked: mean of 1, 2, 3
        [2.0, 5.5]
        """
        nside = _check_nside(nside)
        _check_map_memory(nside, 2 * len(self.fields) + 2)  # the new maps and their reordered copies
        nested = self.to_nest()
        if nside == self.nside:
            out = nested
        elif nside < self.nside:
            k = (self.nside // nside) ** 2
            children = nested.mask.reshape(-1, k)
            base = nested.weight if nested.weight is not None else nested.n_gal
            w = (np.ones(children.shape) if base is None else base.reshape(base.shape[:-1] + (-1, k))) * children
            total = w.sum(axis=-1)
            total2d = total.reshape(-1, total.shape[-1])
            mask = (children.mean(axis=1) >= min_coverage) & (total2d > 0).all(axis=0)
            safe = np.where(total > 0, total, 1.0)
            values = {}
            for name in nested.fields:
                array = getattr(nested, name).reshape(getattr(nested, name).shape[:-1] + (-1, k))
                if name in ("weight", "n_gal"):
                    values[name] = array.sum(axis=-1)
                elif name == "noise":
                    values[name] = np.sqrt((w ** 2 * array ** 2).sum(axis=-1)) / safe
                else:
                    values[name] = (w * array).sum(axis=-1) / safe
            out = dataclasses.replace(nested, nside=nside, mask=mask, meta=dict(self.meta), **values)
        else:
            k = (nside // self.nside) ** 2
            # a child holds 1/k of the galaxies, so its noise is √k larger (noise = σ_e/√N_eff)
            factor = {"weight": 1.0 / k, "n_gal": 1.0 / k, "noise": math.sqrt(k)}
            values = {n: np.repeat(getattr(nested, n), k, axis=-1) * factor.get(n, 1.0) for n in nested.fields}
            out = dataclasses.replace(nested, nside=nside, mask=np.repeat(nested.mask, k), meta=dict(self.meta),
                                      **values)
        return out if self.nest else out.to_ring()

    def plot(self, field: str | None = None, *, index: int | None = None, **kwargs):
        """Mollweide view of one field (``hp.mollview``); masked pixels grey. Returns the figure.

        ``field`` defaults to kappa, else gamma1; "mask" shows the footprint. ``index``
        picks one map of a stack (..., npix). Other keywords go to ``hp.mollview``.
        """
        import matplotlib.pyplot as plt

        field = field or ("kappa" if self.kappa is not None else "gamma1")
        if field != "mask" and field not in self.fields:
            raise ValueError(f"field must be one of {self.fields + ('mask',)}, got {field!r}")
        values = self.mask.astype(float) if field == "mask" else getattr(self, field)
        values = values[index] if index is not None else values
        if values.ndim != 1:
            raise ValueError(f"{field} holds a stack of shape {values.shape}: pass index= to pick one map")
        kwargs.setdefault("title", field)
        hp.mollview(np.where(self.mask, values, hp.UNSEEN), nest=self.nest, **kwargs)
        return plt.gcf()


# -------------------------------------------------------------------- FITS I/O
def _ordering(header, path: str) -> bool | None:
    value = str(header.get("ORDERING", "")).strip().upper()
    if value in ("RING", "NESTED", "NEST"):
        return value != "RING"
    if value:
        raise ValueError(f"{path}: ORDERING = {value!r} is neither RING nor NESTED")
    return None


def _read_map_file(path: str, hdu: int, wanted, nest) -> dict:
    """One HEALPix FITS table: its ORDERING, COORDSYS, NSIDE and the columns ``wanted`` (default: by name)."""
    known = MAP_FIELDS + PIXEL_FIELDS + ("mask",)
    with fits.open(path, memmap=False) as hdul:
        if hdu >= len(hdul):
            raise ValueError(f"hdu={hdu} but {path} has only HDU(s) 0 to {len(hdul) - 1} (a HEALPix map is a binary "
                             "table, usually HDU 1: is the file truncated?)")
        if not isinstance(hdul[hdu], fits.BinTableHDU):
            kind = type(hdul[hdu]).__name__
            kind = "a damaged or unrecognised HDU" if kind.startswith("_") else f"a {kind}"
            raise ValueError(f"HDU {hdu} of {path} is {kind}, not the binary table of a HEALPix map (pass hdu= to "
                             "choose another)")
        header = hdul[hdu].header
        names = [str(name).strip().lower() for name in hdul[hdu].columns.names]
        rows = int(header.get("NAXIS2", 0))  # sizes from the header: the data are read once, by hp.read_map
        sizes = {rows * int(column.format.repeat) for column in hdul[hdu].columns}
    names = [n for n in names if n != "pixel"]  # the index column of a partial-sky file
    if wanted is None:
        wanted = names
        if any(n not in known for n in names) or len(set(names)) != len(names):
            raise ValueError(f"{path}: columns {names} are not all ShearMap fields; pass fields= to name them")
    if not names:
        raise ValueError(f"{path} has no map column")
    if len(wanted) > len(names):
        raise ValueError(f"{path} has {len(names)} column(s), fewer than the fields {wanted}")
    npix = max(sizes)
    if len(sizes) > 1 or not _is_healpix_size(npix):
        said = f"{npix} pixels" if len(sizes) == 1 else f"{sorted(sizes)} values in different columns"
        raise ValueError(f"{path}: not a full-sky HEALPix map: its columns hold {said} ({_implied_nside(npix)})")
    said_nside = header.get("NSIDE")
    if said_nside is not None and said_nside != hp.npix2nside(npix):
        raise ValueError(f"{path}: the header says NSIDE = {said_nside!r} but its columns hold {npix} pixels "
                         f"({_implied_nside(npix)}); the file is damaged or was written wrongly")
    ordering = _ordering(header, path)
    if ordering is None and nest is None:
        raise ValueError(f"{path} has no ORDERING keyword: pass nest=True or nest=False to say which it is")
    system = str(header.get("COORDSYS", "")).strip().upper()[:1]
    values = hp.read_map(path, field=tuple(range(len(wanted))), hdu=hdu, nest=None, dtype=np.float64)
    return {"path": path, "ORDERING": ordering, "COORDSYS": {"Q": "C"}.get(system, system) or None,
            "NSIDE": hp.npix2nside(np.atleast_2d(values).shape[-1]),
            "columns": dict(zip(wanted, np.atleast_2d(values)))}


def read_maps(path_or_paths, fields=None, hdu: int = 1, *, nest: bool | None = None,
              coord: str | None = None) -> ShearMap:
    """Read HEALPix FITS maps (``hp.read_map``) into a :class:`ShearMap`, checking their headers.

    Parameters
    ----------
    path_or_paths : str, Path or sequence of them
    fields : sequence of str, optional
        What the columns are, among ``MAP_FIELDS + PIXEL_FIELDS + ("mask",)``. One
        file: its first ``len(fields)`` columns; several files: one entry per file,
        each its first column. Default: the column names (as :func:`write_maps` writes them).
    hdu : int
        The binary-table extension.
    nest : bool, optional
        Ordering of the result. None: the files' ORDERING, which must agree. A file
        without an ORDERING keyword is an error unless ``nest`` is given, and is then
        taken to be in that ordering.
    coord : {"C", "G", "E"}, optional
        Expected frame; must match COORDSYS where present (default: the header's, else "C").

    Returns
    -------
    ShearMap
        Unobserved = ``hp.UNSEEN`` in any map column, or 0 in a mask column (0/1 or logical).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "kappa.fits"
    >>> write_maps(path, ShearMap(kappa=np.arange(12.0), mask=np.arange(12) != 3))
    >>> back = read_maps(path)
    >>> back.fields, bool(back.mask[3]), float(back.kappa[5])
    (('kappa',), False, 5.0)
    """
    paths = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    if not paths:
        raise ValueError("no file given")
    bad = [p for p in paths if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise TypeError(f"path_or_paths must be a path or a sequence of paths, got {type(bad[0]).__name__}")
    if isinstance(hdu, bool) or not isinstance(hdu, (int, np.integer)) or hdu < 0:
        raise TypeError(f"hdu must be the index (>= 0) of the binary-table HDU, got {hdu!r}")
    if nest is not None and not isinstance(nest, (bool, np.bool_)):
        raise TypeError(f"nest must be True, False or None, got {nest!r}")
    if coord is not None and (not isinstance(coord, str) or coord.upper() not in _COORDS):
        raise ValueError(f"coord must be one of {_COORDS} or None, got {coord!r}")
    known = MAP_FIELDS + PIXEL_FIELDS + ("mask",)
    if fields is not None:
        fields = [fields] if isinstance(fields, str) else list(fields)
        if any(f not in known for f in fields) or len(set(fields)) != len(fields):
            raise ValueError(f"fields must be distinct names among {known}, got {fields}")
        if len(paths) > 1 and len(fields) != len(paths):
            raise ValueError(f"{len(paths)} files need one field name each, got {len(fields)}")
    files = []  # per file: path, ORDERING (bool or None), COORDSYS letter or None, {field: values}
    for k, path in enumerate(map(str, paths)):
        if not Path(path).exists():
            raise FileNotFoundError(f"no map file at {path!r}")
        if Path(path).is_dir():
            raise ValueError(f"{path!r} is a folder, not a HEALPix FITS file")
        wanted = None if fields is None else fields if len(paths) == 1 else [fields[k]]
        with reading_fits(path, "HEALPix FITS file"):
            files.append(_read_map_file(path, hdu, wanted, nest))
    for key in ("ORDERING", "COORDSYS", "NSIDE"):
        said = [f for f in files if f[key] is not None]
        other = next((f for f in said if f[key] != said[0][key]), None)
        if other is not None:
            show = {True: "NESTED", False: "RING"} if key == "ORDERING" else {}
            raise ValueError(f"files disagree on {key}: {said[0]['path']} has {show.get(said[0][key], said[0][key])}, "
                             f"{other['path']} has {show.get(other[key], other[key])}")
    file_coord = next((f["COORDSYS"] for f in files if f["COORDSYS"]), None)
    if coord is not None and file_coord is not None and coord.upper() != file_coord:
        raise ValueError(f"coord={coord!r} but the file header says COORDSYS {file_coord!r}")
    target = nest if nest is not None else files[0]["ORDERING"]
    nside = files[0]["NSIDE"]
    npix = 12 * nside ** 2
    columns, observed = {}, np.ones(npix, dtype=bool)
    for f in files:
        own = f["ORDERING"] if f["ORDERING"] is not None else target
        index = slice(None) if own == target else \
            hp.nest2ring(nside, np.arange(npix)) if target else hp.ring2nest(nside, np.arange(npix))
        for name, value in f["columns"].items():
            columns[name] = value = value[index]
            unseen = np.isclose(value, hp.UNSEEN, rtol=1e-5, atol=0)
            if name == "mask":
                if not np.isin(value[~unseen], (0, 1)).all():
                    raise ValueError(f"{f['path']}: a mask column holds 0/1 (or logical) values; threshold a "
                                     "coverage map first")
                observed &= (value == 1) & ~unseen
            elif name in MAP_FIELDS:
                observed &= ~unseen
    maps = {n: v for n, v in columns.items() if n != "mask"}
    try:
        return ShearMap(mask=observed, nside=nside, nest=target, coord=(coord or file_coord or "C").upper(),
                        meta=remember_sources({}, [f["path"] for f in files]), **maps)  # write_maps won't write over them
    except ValueError as err:  # e.g. NaN in an observed pixel: say which file(s), and how unobserved ones are marked
        raise ValueError(f"{', '.join(f['path'] for f in files)}: {err} (unobserved pixels are marked with "
                         "hp.UNSEEN or 0 in a MASK column)") from None


def write_maps(path, shear_map: ShearMap, overwrite: bool = False) -> None:
    """Write a :class:`ShearMap` as one HEALPix FITS table (``hp.write_map``), read back by :func:`read_maps`.

    One float64 column per field present (``KAPPA``, ``GAMMA1``, ``GAMMA2``, ``WEIGHT``,
    ``N_GAL``, ``NOISE``; ``hp.UNSEEN`` in masked pixels) and a logical ``MASK``
    column; ORDERING and COORDSYS in the header. Only single maps (npix,) are written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "shear.fits"
    >>> write_maps(path, ShearMap(gamma1=np.ones(12), gamma2=np.zeros(12)))
    >>> read_maps(path).fields
    ('gamma1', 'gamma2')
    """
    if not isinstance(shear_map, ShearMap):
        raise TypeError(f"shear_map must be a ShearMap, got {type(shear_map).__name__}")
    check_not_input(path, read_sources(shear_map.meta), argument="path", what="map file the maps were read from")
    names = shear_map.fields
    stacked = [n for n in names if getattr(shear_map, n).ndim != 1]
    if stacked:
        raise ValueError(f"write_maps writes single maps; {stacked} hold stacks — write them one by one")
    data = [np.where(shear_map.mask, getattr(shear_map, n), hp.UNSEEN) for n in names] + [shear_map.mask]
    hp.write_map(str(path), data, nest=shear_map.nest, coord=shear_map.coord, overwrite=overwrite,
                 dtype=[np.float64] * len(names) + [np.bool_], fits_IDL=False,
                 column_names=[n.upper() for n in names] + ["MASK"])


# -------------------------------------------------------------------- catalogues
def _column(table, name: str, argument: str, described: str) -> tuple[np.ndarray, u.UnitBase | None]:
    from astrobayes.core.tables import column_values

    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a column name, got {name!r}")
    if name not in table.colnames:
        raise ValueError(f"the catalog from {described} has no {argument} column {name!r}; available columns: "
                         f"{table.colnames} (pass {argument}=<name>)")
    return column_values(table, name, "galaxy")


def catalog_to_maps(catalog, nside: int, *, ra: str = "ra", dec: str = "dec", e1: str = "e1", e2: str = "e2",
                    weight: str | None = None, nest: bool = False, coord: str = "C", sigma_e: float | None = None,
                    flip_e2: bool = False, drop_invalid: bool = False) -> ShearMap:
    """Bin a galaxy-shape catalogue into weighted pixel-average shear maps (``np.bincount``).

    Parameters
    ----------
    catalog : astropy Table/QTable, pandas DataFrame or table file
    nside : int
    ra, dec : str
        Position columns, degrees (a Quantity column with an angle unit is converted;
        Dec outside [−90°, 90°] is an error). No frame rotation is done: ``coord``
        names the frame of both positions and shapes.
    e1, e2 : str
        Ellipticity (shear-estimate) columns in the east/north frame (module
        docstring); ``flip_e2=True`` negates e₂ for catalogues measured with x to the west.
    weight : str, optional
        Non-negative per-galaxy weight column (default 1).
    sigma_e : float, optional
        Shape noise per component; default the weighted rms √(Σw²(e₁²+e₂²)/(2Σw²)).
    drop_invalid : bool
        Drop rows with a non-finite position, shape or weight (with a warning and a
        count) instead of raising. |e| > 1 only warns: noisy estimators exceed 1 and
        removing them would bias the mean.

    Returns
    -------
    ShearMap
        ``gamma1``, ``gamma2`` = Σwe/Σw; ``mask`` = pixels with Σw > 0; ``n_gal`` counts;
        ``weight`` = Σw; ``noise`` = σ_e/√N_eff with N_eff = (Σw)²/Σw². ``meta`` holds
        ``sigma_e``, ``n_galaxies`` and ``n_dropped``.

    Examples
    --------
    >>> from astropy.table import Table
    >>> cat = Table({"ra": [10.0, 10.01, 200.0], "dec": [5.0, 5.01, -30.0], "e1": [0.1, 0.3, -0.2],
    ...              "e2": [0.0, 0.2, 0.1]})
    >>> maps = catalog_to_maps(cat, 4)
    >>> int(maps.mask.sum()), sorted(maps.gamma1[maps.mask].round(3).tolist())
    (2, [-0.2, 0.2])
    """
    from astrobayes.core.tables import read_table

    nside = _check_nside(nside)
    _check_map_memory(nside, 10)  # counts, weights, Σw², Σwe₁, Σwe₂ and the ShearMap's copies
    table, described = read_table(catalog, None)
    values = {}
    for argument, name in (("ra", ra), ("dec", dec), ("e1", e1), ("e2", e2)) + ((("weight", weight),) if weight
                                                                               is not None else ()):
        array, unit = _column(table, name, argument, described)
        if argument in ("ra", "dec") and unit is not None:
            if not u.Unit(unit).is_equivalent(u.deg):
                raise ValueError(f"column {name!r} ({argument}) has unit {unit}, not an angle")
            array = (array * unit).to_value(u.deg)
        elif unit is not None:
            raise ValueError(f"column {name!r} ({argument}) must be dimensionless, got unit {unit}")
        values[argument] = array
    values.setdefault("weight", np.ones_like(values["ra"]))
    invalid = ~np.all([np.isfinite(v) for v in values.values()], axis=0)
    if invalid.any():
        bad = [a for a, v in values.items() if not np.isfinite(v).all()]
        if not drop_invalid:
            raise ValueError(f"{int(invalid.sum())} galaxies have non-finite {bad} (first rows "
                             f"{np.flatnonzero(invalid)[:5].tolist()}); pass drop_invalid=True to drop them")
        warnings.warn(f"dropped {int(invalid.sum())} galaxies with non-finite {bad}", UserWarning, stacklevel=2)
        values = {a: v[~invalid] for a, v in values.items()}
    if values["ra"].size == 0:
        raise ValueError("the catalog has no galaxies left to bin")
    if (np.abs(values["dec"]) > 90).any():
        raise ValueError(f"column {dec!r} (dec) has {int((np.abs(values['dec']) > 90).sum())} values outside "
                         "[-90, 90] deg")
    if (values["weight"] < 0).any():
        raise ValueError(f"column {weight!r} (weight) has {int((values['weight'] < 0).sum())} negative weights")
    shape = np.hypot(values["e1"], values["e2"])
    if (shape > 1).any():
        warnings.warn(f"{int((shape > 1).sum())} galaxies have |e| > 1; kept", UserWarning, stacklevel=2)
    w, g1, g2 = values["weight"], values["e1"], -values["e2"] if flip_e2 else values["e2"]
    npix = 12 * nside ** 2
    pixel = hp.ang2pix(nside, values["ra"] % 360.0, values["dec"], lonlat=True, nest=nest)
    count = np.bincount(pixel, minlength=npix).astype(np.float64)
    total, total2 = np.bincount(pixel, w, npix), np.bincount(pixel, w ** 2, npix)
    observed = total > 0
    if not observed.any():
        raise ValueError("every galaxy has zero weight")
    safe = np.where(observed, total, 1.0)
    if sigma_e is None:
        sigma_e = float(np.sqrt(np.sum(w ** 2 * (g1 ** 2 + g2 ** 2)) / (2 * np.sum(w ** 2))))
    noise = sigma_e * np.sqrt(total2) / safe  # σ_e/√N_eff, N_eff = (Σw)²/Σw²
    return ShearMap(gamma1=np.bincount(pixel, w * g1, npix) / safe, gamma2=np.bincount(pixel, w * g2, npix) / safe,
                    mask=observed, nside=nside, nest=nest, coord=coord, weight=total, n_gal=count, noise=noise,
                    meta={"sigma_e": sigma_e, "n_galaxies": int(w.size), "n_dropped": int(invalid.sum())})
