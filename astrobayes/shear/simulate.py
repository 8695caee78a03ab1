"""Mock convergence and shear maps on the HEALPix sphere: Gaussian and log-normal fields, noise, footprints.

The angular power spectrum is an input — an array C_ℓ (ℓ = 0 … lmax) or a
callable θ → C_ℓ — so this module does not depend on a cosmology model.

* Gaussian κ: a_ℓm drawn from a :class:`numpy.random.Generator` (healpy's
  ``synalm`` uses numpy's global generator), then ``hp.alm2map``.
* Log-normal κ (Hilbert et al. 2011, A&A 536, A85; Xavier et al. 2016, MNRAS
  459, 3693): κ = λ[exp(G − σ_G²/2) − 1] with G Gaussian of correlation
  ξ_G(θ) = ln[1 + ξ_κ(θ)/λ²]; the Legendre transforms C_ℓ ↔ ξ(θ) are done on a
  Gauss–Legendre grid. The shift λ is about |κ_min|, of order 0.01–0.02 for
  sources at z_s ≈ 1 (it grows with z_s and depends on cosmology and smoothing);
  :data:`DEFAULT_SHIFT` = 0.015.
* κ → γ through spin-2 harmonics: E_ℓm = −f_ℓ κ_ℓm, B_ℓm = 0, f_ℓ =
  √[(ℓ+2)(ℓ−1)/(ℓ(ℓ+1))] (from κ = ½ð̄ðψ, γ = ½ððψ), then ``hp.alm2map_spin``
  gives (Q, U) = (γ₁, γ₂) in the east/north frame of :mod:`.maps` (γ₁ > 0 along
  RA, tangential shear around a κ peak). :func:`shear_to_kappa` inverts it
  (spherical Kaiser–Squires) with ``hp.map2alm_lsq``.

Examples
--------
>>> import numpy as np
>>> cl = np.r_[0.0, 0.0, 1e-5 / np.arange(2, 33) ** 2]
>>> simulator = ShearSimulator(16, fields=("gamma1", "gamma2"), sigma_e=0.0)
>>> simulator(cl, seed=1).shape
(2, 3072)
"""
from __future__ import annotations

import functools
import warnings

import astropy.units as u
import healpy as hp
import numpy as np

from .maps import ShearMap, _as_mask, _check_magnitude, _check_nside, _map_nside

__all__ = ["DEFAULT_SHIFT", "gaussian_alm", "gaussian_kappa_map", "lognormal_kappa_map", "lognormal_to_gaussian_cl",
           "gaussian_to_lognormal_cl", "kappa_to_shear", "shear_to_kappa", "shape_noise_sigma", "survey_mask",
           "ShearSimulator", "simulate_maps"]

#: log-normal shift λ for z_s ≈ 1 (order of |κ_min|; Hilbert et al. 2011, Xavier et al. 2016)
DEFAULT_SHIFT = 0.015
_FIELDS = ("kappa", "gamma1", "gamma2")


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _spectra(cl, lmax: int | None, name: str = "cl", negative: bool = False) -> np.ndarray:
    """C_ℓ as float64 (lmax+1,) or (n, lmax+1); entries beyond lmax are ignored."""
    cl = np.asarray(cl, dtype=np.float64)
    if cl.ndim not in (1, 2) or cl.shape[-1] < 1:
        raise ValueError(f"{name} must be C_ℓ (lmax+1,) or a batch (n, lmax+1), got shape {cl.shape}")
    lmax = cl.shape[-1] - 1 if lmax is None else int(lmax)
    if cl.shape[-1] < lmax + 1:
        raise ValueError(f"{name} has {cl.shape[-1]} multipoles but lmax={lmax} needs {lmax + 1} (ℓ = 0 … lmax)")
    cl = cl[..., :lmax + 1]
    if not np.isfinite(cl).all() or (not negative and (cl < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0 (first bad ℓ: "
                         f"{int(np.argwhere(~(cl >= 0) | ~np.isfinite(cl))[0][-1])})")
    return cl


def _shear_factor(lmax: int) -> np.ndarray:
    """f_ℓ = √[(ℓ+2)(ℓ−1)/(ℓ(ℓ+1))], 0 for ℓ < 2."""
    ell = np.arange(lmax + 1, dtype=np.float64)
    return np.sqrt(np.clip((ell + 2) * (ell - 1), 0, None) / np.maximum(ell * (ell + 1), 1))


def _window(pixwin, nside: int, lmax: int, spin: int) -> np.ndarray | None:
    if pixwin is False or pixwin is None:
        return None
    if pixwin is True:
        try:
            return np.asarray(hp.pixwin(nside, pol=True, lmax=lmax)[spin != 0])
        except Exception as err:  # healpy fetches its window files on first use
            raise RuntimeError(f"hp.pixwin({nside}) failed ({type(err).__name__}): healpy downloads its pixel-window "
                               "files on first use; pass pixwin=<array w_ℓ> instead when offline") from None
    window = np.asarray(pixwin, dtype=np.float64)
    if window.ndim != 1 or window.size < lmax + 1:
        raise ValueError(f"pixwin must be True/False or an array w_ℓ of at least lmax+1 = {lmax + 1} values")
    return window[:lmax + 1]


def gaussian_alm(cl, lmax: int | None = None, seed=None) -> np.ndarray:
    """Harmonic coefficients a_ℓm of a Gaussian field with spectrum C_ℓ, healpy's (ℓ, m ≥ 0) ordering.

    ``cl`` (lmax+1,) or (n, lmax+1) → complex (n_alm,) or (n, n_alm); ``lmax`` defaults to
    len(cl) − 1; ``seed``: int, Generator or None. a_ℓ0 ~ N(0, C_ℓ) real, Re and Im a_ℓm ~
    N(0, C_ℓ/2) for m > 0. Two normals are drawn per coefficient, row after row, so a
    batch equals a loop that shares one generator.

    Examples
    --------
    >>> alm = gaussian_alm(np.ones(11), seed=0)
    >>> alm.shape, bool(np.allclose(hp.alm2cl(gaussian_alm(np.ones(65), seed=0))[2:].mean(), 1.0, atol=0.05))
    ((66,), True)
    """
    cl = _spectra(cl, lmax)
    lmax = cl.shape[-1] - 1
    ell, m = hp.Alm.getlm(lmax)
    draws = _rng(seed).standard_normal(cl.shape[:-1] + (ell.size, 2))
    scale = np.sqrt(cl[..., ell] / np.where(m == 0, 1.0, 2.0))
    return scale * (draws[..., 0] + 1j * np.where(m == 0, 0.0, draws[..., 1]))


def gaussian_kappa_map(cl, nside: int, *, lmax: int | None = None, pixwin=False, seed=None,
                       nest: bool = False) -> np.ndarray:
    """A Gaussian convergence map (npix,) or (n, npix) with spectrum C_ℓ, from :func:`gaussian_alm`.

    ``pixwin``: False, True (``hp.pixwin``, whose data healpy downloads once) or an array w_ℓ.

    Examples
    --------
    >>> gaussian_kappa_map(np.full(9, 1e-4), 4, seed=2).shape
    (192,)
    """
    return ShearSimulator(nside, lmax=_spectra(cl, lmax).shape[-1] - 1, sigma_e=0.0, pixwin=pixwin,
                          nest=nest)(cl, seed)[..., 0, :]


@functools.lru_cache(maxsize=8)
def _legendre(lmax: int):
    """Gauss–Legendre nodes μ, weights and P_ℓ(μ) (n_nodes, lmax+1) with n_nodes = 2(lmax+1)."""
    nodes, weights = np.polynomial.legendre.leggauss(2 * (lmax + 1))
    return nodes, weights, np.polynomial.legendre.legvander(nodes, lmax)


def _cl_to_xi(cl: np.ndarray) -> np.ndarray:
    """ξ(μ) = Σ (2ℓ+1)/(4π) C_ℓ P_ℓ(μ) on the Gauss–Legendre nodes."""
    lmax = cl.shape[-1] - 1
    return cl * (2 * np.arange(lmax + 1) + 1) / (4 * np.pi) @ _legendre(lmax)[2].T


def _xi_to_cl(xi: np.ndarray, lmax: int) -> np.ndarray:
    """C_ℓ = 2π ∫ ξ(μ) P_ℓ(μ) dμ by Gauss–Legendre quadrature."""
    _, weights, legendre = _legendre(lmax)
    return 2 * np.pi * (xi * weights) @ legendre


def lognormal_to_gaussian_cl(cl, shift: float = DEFAULT_SHIFT) -> np.ndarray:
    """The spectrum C_ℓ^G of the Gaussian field behind a shifted log-normal κ with spectrum C_ℓ.

    ξ_G = ln(1 + ξ_κ/λ²) (Hilbert et al. 2011, eq. 29). The result can be slightly
    negative where no log-normal field has this C_ℓ; :func:`lognormal_kappa_map` clips it.

    Examples
    --------
    >>> cl = np.r_[0, 0, 1e-5 / np.arange(2, 21) ** 2]
    >>> bool(np.allclose(gaussian_to_lognormal_cl(lognormal_to_gaussian_cl(cl, 0.02), 0.02), cl, atol=1e-12))
    True
    """
    cl = _spectra(cl, None)
    shift = _positive(shift, "shift")
    argument = 1 + _cl_to_xi(cl) / shift ** 2
    if (argument <= 0).any():
        raise ValueError(f"ξ_κ(θ) reaches below −λ² = {-shift ** 2:.3g}: the shift is too small for this C_ℓ")
    return _xi_to_cl(np.log(argument), cl.shape[-1] - 1)


def gaussian_to_lognormal_cl(cl_gaussian, shift: float = DEFAULT_SHIFT) -> np.ndarray:
    """The spectrum of λ[exp(G − σ_G²/2) − 1] for Gaussian G of spectrum C_ℓ^G: ξ_κ = λ²(e^{ξ_G} − 1).

    Examples
    --------
    >>> float(gaussian_to_lognormal_cl(np.zeros(5), 0.01).max())
    0.0
    """
    cl_gaussian = _spectra(cl_gaussian, None, "cl_gaussian", negative=True)
    shift = _positive(shift, "shift")
    return _xi_to_cl(shift ** 2 * np.expm1(_cl_to_xi(cl_gaussian)), cl_gaussian.shape[-1] - 1)


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not np.isscalar(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def lognormal_kappa_map(cl, nside: int, *, shift: float = DEFAULT_SHIFT, lmax: int | None = None, pixwin=False,
                        seed=None, nest: bool = False) -> np.ndarray:
    """A shifted log-normal convergence map with spectrum C_ℓ (up to the ℓ > lmax power of G), κ > −λ.

    Examples
    --------
    >>> kappa = lognormal_kappa_map(np.r_[0, 0, 1e-4 / np.arange(2, 17) ** 2], 8, shift=0.01, seed=0)
    >>> bool(kappa.min() > -0.01)
    True
    """
    return ShearSimulator(nside, lmax=_spectra(cl, lmax).shape[-1] - 1, lognormal=True, shift=shift, sigma_e=0.0,
                          pixwin=pixwin, nest=nest)(cl, seed)[..., 0, :]


def _ring(maps: np.ndarray, nest: bool, back: bool = False) -> np.ndarray:
    """NESTED → RING when ``nest`` (RING → NESTED with ``back``)."""
    index = (hp.nest2ring if back else hp.ring2nest)(hp.npix2nside(maps.shape[-1]), np.arange(maps.shape[-1]))
    return maps[..., index] if nest else maps


def _nest(maps: np.ndarray, nest: bool) -> np.ndarray:
    return _ring(maps, nest, back=True)


def kappa_to_shear(kappa, lmax: int | None = None, *, nest: bool = False, tol: float = 1e-10,
                   maxiter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Shear (γ₁, γ₂) of a convergence map on the sphere: E_ℓm = −f_ℓ κ_ℓm, B = 0, ``hp.alm2map_spin``.

    κ_ℓm come from ``hp.map2alm_lsq`` (exact for a map band-limited to lmax ≤ 2·nside).
    ℓ < 2 of κ (monopole, dipole) make no shear.

    Examples
    --------
    >>> g1, g2 = kappa_to_shear(np.zeros(192))
    >>> g1.shape, float(abs(g2).max())
    ((192,), 0.0)
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    nside = _map_nside(kappa, "kappa")
    if not np.isfinite(kappa).all():
        raise ValueError("kappa has NaN or inf pixels; set unobserved pixels to 0 (the transform needs every pixel)")
    _check_magnitude(kappa, "kappa")
    kappa = _ring(kappa, nest)
    lmax = 2 * nside if lmax is None else int(lmax)
    with np.errstate(invalid="ignore", divide="ignore"):  # healpy's residual ratio for an all-zero map
        klm = np.atleast_2d(hp.map2alm_lsq(kappa.reshape(-1, kappa.shape[-1]), lmax, lmax, pol=False, tol=tol,
                                           maxiter=maxiter)[0])
    gamma = np.array([hp.alm2map_spin([hp.almxfl(a, -_shear_factor(lmax)), 0 * a], nside, 2, lmax) for a in klm])
    gamma = _nest(gamma.reshape(kappa.shape[:-1] + (2, -1)), nest)
    return gamma[..., 0, :], gamma[..., 1, :]


def shear_to_kappa(gamma1, gamma2, lmax: int | None = None, *, mask=None, nest: bool = False,
                   return_b: bool = False, tol: float = 1e-10, maxiter: int = 50):
    """Spherical Kaiser–Squires: the E-mode convergence of a shear map (and the B-mode with ``return_b``).

    ``gamma1``, ``gamma2`` (npix,) → κ_E (npix,) [, κ_B]. E_ℓm, B_ℓm from ``hp.map2alm_lsq``
    (least squares; exact for band-limited maps with ``lmax`` ≤ 2·nside, the default),
    κ_ℓm = −E_ℓm/f_ℓ for ℓ ≥ 2, 0 for ℓ < 2. Pixels outside ``mask`` are zero-filled
    (E/B leakage at the edges) and 0 in the result.

    Examples
    --------
    >>> kappa = shear_to_kappa(*kappa_to_shear(np.zeros(768)))
    >>> float(abs(kappa).max())
    0.0
    """
    if np.ndim(gamma1) != 1 or np.shape(gamma1) != np.shape(gamma2):
        raise ValueError(f"gamma1 and gamma2 must be single maps (npix,) of one shape, got {np.shape(gamma1)}, "
                         f"{np.shape(gamma2)}")
    gamma = np.array([gamma1, gamma2], dtype=np.float64)
    nside = _map_nside(gamma[0], "gamma1")
    lmax = 2 * nside if lmax is None else int(lmax)
    observed = np.ones(gamma.shape[-1], bool) if mask is None else _as_mask(mask, gamma.shape[-1],
                                                                             grid="gamma1 and gamma2 have")
    gamma[:, ~observed] = 0.0
    if not np.isfinite(gamma).all() or np.isclose(gamma, hp.UNSEEN, rtol=1e-5, atol=0).any():
        raise ValueError("gamma1 or gamma2 has NaN, inf or hp.UNSEEN in observed pixels; pass mask= without them "
                         "(True = observed)")
    _check_magnitude(gamma, "gamma1 or gamma2")
    gamma, observed = _ring(gamma, nest), _ring(observed, nest)
    with np.errstate(invalid="ignore", divide="ignore"):  # healpy's residual ratio for an all-zero map
        alm = hp.map2alm_lsq(np.array([np.zeros_like(gamma[0]), *gamma]), lmax, lmax, pol=True, tol=tol,
                             maxiter=maxiter)[0]
    inverse = np.divide(-1.0, _shear_factor(lmax), out=np.zeros(lmax + 1), where=_shear_factor(lmax) > 0)
    kappa = [_nest(np.where(observed, hp.alm2map(hp.almxfl(a, inverse), nside, lmax=lmax), 0.0), nest)
             for a in alm[1:]]
    return tuple(kappa) if return_b else kappa[0]


def shape_noise_sigma(nside: int, sigma_e: float = 0.26, n_gal=10.0 / u.arcmin ** 2):
    """Per-pixel shape noise σ_pix = σ_e/√(n_gal·A_pix), per shear component.

    ``sigma_e``: intrinsic ellipticity dispersion per component; ``n_gal``: galaxy density,
    Quantity or float (per arcmin²), a number or a map (npix,).

    Examples
    --------
    >>> round(shape_noise_sigma(64, 0.26, 10), 5)   # A_pix = 3021.2 arcmin²
    0.0015
    """
    area = hp.nside2pixarea(_check_nside(nside), degrees=True) * 3600.0  # arcmin²
    density = u.Quantity(n_gal, u.arcmin ** -2).value if isinstance(n_gal, u.Quantity) else np.asarray(n_gal, float)
    if not (np.isfinite(density).all() and (density > 0).all()):
        raise ValueError(f"n_gal must be positive, got {n_gal!r}")
    sigma = float(sigma_e) / np.sqrt(density * area)
    return float(sigma) if np.ndim(sigma) == 0 else sigma


def survey_mask(nside: int, kind: str = "cap", *, area=1000.0 * u.deg ** 2, center=(0.0, 0.0), b_cut=20.0,
                lat_range=(-60.0, 0.0), coord: str = "C", nest: bool = False) -> np.ndarray:
    """A simple footprint (npix,) bool, True = observed (pixel centres inside).

    kind : ``"full"``; ``"cap"`` — a spherical cap of ``area`` (deg² or Quantity) around
    ``center`` (lon, lat in deg of the map frame); ``"band"`` — the Galactic cut |b| >
    ``b_cut`` (deg), for a map in frame ``coord``; ``"stripe"`` — ``lat_range`` (deg) in the map frame.

    Examples
    --------
    >>> round(float(survey_mask(64, "cap", area=4 * np.pi * (180 / np.pi) ** 2 / 2).mean()), 3)   # half the sky
    0.501
    >>> round(float(survey_mask(32, "band", b_cut=30.0).mean()), 2)   # 1 − sin 30°
    0.5
    """
    nside = _check_nside(nside)
    npix = 12 * nside ** 2
    if kind == "full":
        return np.ones(npix, dtype=bool)
    if kind == "cap":
        solid = u.Quantity(area, u.deg ** 2).to_value(u.sr)
        if not 0 < solid <= 4 * np.pi:
            raise ValueError(f"area must lie in (0, 41253] deg², got {area!r}")
        radius = np.arccos(1 - solid / (2 * np.pi))
        mask = np.zeros(npix, dtype=bool)
        lon, lat = u.Quantity(center, u.deg).to_value(u.deg)
        mask[hp.query_disc(nside, hp.ang2vec(lon, lat, lonlat=True), radius, nest=nest)] = True
        return mask
    theta, phi = hp.pix2ang(nside, np.arange(npix), nest=nest)
    if kind == "band":
        if coord.upper() != "G":
            theta, phi = hp.Rotator(coord=[coord.upper(), "G"])(theta, phi)
        return np.abs(90.0 - np.degrees(theta)) > float(u.Quantity(b_cut, u.deg).value)
    if kind == "stripe":
        low, high = (float(u.Quantity(v, u.deg).value) for v in lat_range)
        return (90.0 - np.degrees(theta) > low) & (90.0 - np.degrees(theta) < high)
    raise ValueError(f"kind must be 'full', 'cap', 'band' or 'stripe', got {kind!r}")


def _runs(mask: np.ndarray) -> list:
    """[start, stop) runs of True, compact for caps and bands in RING order."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return edges.reshape(-1, 2).tolist()


class ShearSimulator:
    """Gaussian or log-normal κ and γ maps for a spectrum, with shape noise and a footprint.

    Parameters
    ----------
    nside, lmax : int
        lmax defaults to 2·nside (where ``map2alm_lsq`` inverts exactly), at most 3·nside − 1.
    lognormal, shift : bool, float
        Shifted log-normal κ with shift λ instead of Gaussian.
    sigma_e, n_gal : float, Quantity or float
        Shape noise per component (0 = none) and galaxy density (per arcmin² for a float):
        white noise of σ_pix (:func:`shape_noise_sigma`) on every field (for κ, the per-pixel
        noise of a full-sky Kaiser–Squires reconstruction, which is the same).
    mask : bool array (npix,), optional
        Footprint in the output ordering; masked pixels are 0.
    fields : sequence of {"kappa", "gamma1", "gamma2"}
    nest : bool
        NESTED output and mask.
    spectrum : callable, optional
        θ (d,) → C_ℓ (≥ lmax+1 values): the simulator then takes θ instead of C_ℓ.
    pixwin : bool or array w_ℓ
        Pixel window on the synthesised harmonics (True: ``hp.pixwin``, whose files healpy downloads).
    coord : {"C", "G", "E"}

    Examples
    --------
    >>> sim = ShearSimulator(8, fields=("kappa", "gamma1", "gamma2"), mask=survey_mask(8, "cap", area=5000))
    >>> maps = sim(np.tile(np.r_[0, 0, 1e-5 / np.arange(2, 17)], (3, 1)), seed=0)
    >>> maps.shape, float(maps[:, :, ~sim.mask].std())
    ((3, 3, 768), 0.0)
    >>> ShearSimulator.from_config(sim.get_config()).get_config() == sim.get_config()
    True
    """

    def __init__(self, nside: int, lmax: int | None = None, *, lognormal: bool = False, shift: float = DEFAULT_SHIFT,
                 sigma_e: float = 0.26, n_gal=10.0 / u.arcmin ** 2, mask=None, fields=("kappa",), nest: bool = False,
                 spectrum=None, pixwin=False, coord: str = "C"):
        self.nside = _check_nside(nside)
        self.npix = 12 * self.nside ** 2
        self.lmax = 2 * self.nside if lmax is None else int(lmax)
        if not 2 <= self.lmax <= 3 * self.nside - 1:
            raise ValueError(f"lmax must lie in [2, 3·nside − 1 = {3 * self.nside - 1}], got {lmax}")
        self.lognormal, self.shift = bool(lognormal), _positive(shift, "shift")
        if isinstance(sigma_e, bool) or not np.isscalar(sigma_e) or not 0 <= sigma_e < np.inf:
            raise ValueError(f"sigma_e must be a number >= 0, got {sigma_e!r}")
        self.sigma_e = float(sigma_e)
        self.n_gal = float(u.Quantity(n_gal, u.arcmin ** -2).value)
        self.noise_sigma = shape_noise_sigma(self.nside, self.sigma_e, self.n_gal)
        self.fields = tuple(fields)
        if not self.fields or any(f not in _FIELDS for f in self.fields) or len(set(self.fields)) < len(self.fields):
            raise ValueError(f"fields must be distinct names among {_FIELDS}, got {fields!r}")
        if ("gamma1" in self.fields) != ("gamma2" in self.fields):
            raise ValueError(f"gamma1 and gamma2 come as a pair, got fields={fields!r}")
        self.nest, self.coord = bool(nest), str(coord).upper()
        if self.coord not in ("C", "G", "E"):
            raise ValueError(f"coord must be 'C', 'G' or 'E', got {coord!r}")
        self.mask = np.ones(self.npix, bool) if mask is None else _as_mask(mask, self.npix,
                                                                           grid=f"nside={self.nside} needs")
        if not self.mask.any():
            raise ValueError("all-masked map: the mask has no observed pixel")
        self._mask_ring = _ring(self.mask, self.nest)
        if spectrum is not None and not callable(spectrum):
            raise TypeError(f"spectrum must be a callable θ → C_ℓ, got {type(spectrum).__name__}")
        self.spectrum, self.pixwin = spectrum, pixwin
        self._window_kappa = _window(pixwin, self.nside, self.lmax, 0)
        self._window_shear = _window(pixwin, self.nside, self.lmax, 2)

    def __repr__(self) -> str:
        kind = f"log-normal λ={self.shift:g}" if self.lognormal else "Gaussian"
        return (f"ShearSimulator(nside={self.nside}, lmax={self.lmax}, {kind}, fields={self.fields}, "
                f"σ_pix={self.noise_sigma:.3g}, fsky={self.mask.mean():.3f})")

    def get_config(self) -> dict:
        """JSON-able settings; the mask as [start, stop) runs in RING order. A ``spectrum`` callable is not
        stored: give it again to :meth:`from_config`."""
        pixwin = self.pixwin if isinstance(self.pixwin, bool) or self.pixwin is None else \
            np.asarray(self.pixwin, float).tolist()
        return {"format": "astrobayes.ShearSimulator", "version": 1, "nside": self.nside, "lmax": self.lmax,
                "lognormal": self.lognormal, "shift": self.shift, "sigma_e": self.sigma_e, "n_gal": self.n_gal,
                "mask_runs": _runs(self._mask_ring), "fields": list(self.fields), "nest": self.nest,
                "pixwin": pixwin, "coord": self.coord}

    @classmethod
    def from_config(cls, config: dict, spectrum=None) -> ShearSimulator:
        """The simulator of :meth:`get_config` output (with ``spectrum`` when it had one)."""
        if not isinstance(config, dict) or config.get("format") != "astrobayes.ShearSimulator":
            raise ValueError("not a ShearSimulator configuration (its 'format' is not 'astrobayes.ShearSimulator')")
        mask = np.zeros(12 * config["nside"] ** 2, bool)
        for start, stop in config["mask_runs"]:
            mask[start:stop] = True
        return cls(config["nside"], config["lmax"], lognormal=config["lognormal"], shift=config["shift"],
                   sigma_e=config["sigma_e"], n_gal=config["n_gal"], mask=_nest(mask, config["nest"]),
                   fields=config["fields"], nest=config["nest"], spectrum=spectrum, pixwin=config["pixwin"],
                   coord=config["coord"])

    def _spectra(self, spectra) -> np.ndarray:
        if self.spectrum is None:
            return _spectra(spectra, self.lmax)
        theta = np.asarray(spectra, dtype=np.float64)
        rows = [np.asarray(self.spectrum(t), dtype=np.float64) for t in np.atleast_2d(theta)]
        return _spectra(np.array(rows) if theta.ndim == 2 else rows[0], self.lmax, "spectrum(θ)")

    def _gaussian_of(self, cl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """C_ℓ^G (clipped at 0) and σ_G² for log-normal κ of spectrum C_ℓ (rows)."""
        cl_g = np.atleast_2d(lognormal_to_gaussian_cl(cl, self.shift))
        negative = cl_g[:, 2:] < -1e-10 * np.abs(cl_g).max(axis=1, keepdims=True)
        if negative.any():
            warnings.warn(f"C_ℓ^G < 0 at {int(negative.sum())} multipole(s) ≥ 2, clipped to 0: no log-normal field "
                          f"with shift {self.shift:g} has exactly this C_ℓ", UserWarning, stacklevel=3)
        cl_g = np.clip(cl_g, 0.0, None)  # ℓ = 0, 1: ln(1+x) ≤ x makes C_0^G < 0 when C_0 = 0
        return cl_g, cl_g @ (2 * np.arange(self.lmax + 1) + 1) / (4 * np.pi)

    def _one(self, alm: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
        lmax, nside, out = self.lmax, self.nside, {}
        klm = alm
        if self.lognormal:
            kappa = self.shift * np.expm1(hp.alm2map(alm, nside, lmax=lmax) - variance / 2)
            if "gamma1" in self.fields or self._window_kappa is not None:
                klm = hp.map2alm(kappa, lmax=lmax, iter=3)
            if "kappa" in self.fields and self._window_kappa is None:
                out["kappa"] = kappa
        if "kappa" in self.fields and "kappa" not in out:
            window = self._window_kappa
            out["kappa"] = hp.alm2map(klm if window is None else hp.almxfl(klm, window), nside, lmax=lmax)
        if "gamma1" in self.fields or "gamma2" in self.fields:
            factor = -_shear_factor(lmax) * (1.0 if self._window_shear is None else self._window_shear)
            elm = hp.almxfl(klm, factor)
            out["gamma1"], out["gamma2"] = hp.alm2map_spin([elm, np.zeros_like(elm)], nside, 2, lmax)
        maps = np.array([out[f] for f in self.fields])
        if self.noise_sigma:
            maps += self.noise_sigma * rng.standard_normal(maps.shape)
        maps[:, ~self._mask_ring] = 0.0
        return _nest(maps, self.nest)

    def __call__(self, spectra, seed=None, *, progress: bool = False) -> np.ndarray:
        """Maps (n_fields, npix) for one spectrum, (n, n_fields, npix) float64 for a batch (n, lmax+1).

        ``spectra`` are C_ℓ, or θ when the simulator has a ``spectrum`` callable. ``seed``:
        int, None or a Generator (``simulator(theta, rng)`` of NPE). Each map draws its
        a_ℓm then its noise from one generator, so a batch equals a loop sharing it.
        """
        cl = self._spectra(spectra)
        rng = _rng(seed)
        rows = np.atleast_2d(cl)
        variance = np.zeros(len(rows))
        if self.lognormal:
            rows, variance = self._gaussian_of(rows)
        from tqdm.auto import tqdm

        maps = np.empty((len(rows), len(self.fields), self.npix))
        for i in tqdm(range(len(rows)), disable=not progress, desc="shear maps", leave=False):
            maps[i] = self._one(gaussian_alm(rows[i], self.lmax, rng), variance[i], rng)
        return maps if cl.ndim == 2 else maps[0]


def simulate_maps(spectra, simulator: ShearSimulator, *, seed=None, progress: bool = False):
    """Simulated maps as :class:`~astrobayes.shear.maps.ShearMap` (one, or a list for a batch).

    ``n_gal`` holds the expected galaxy count per pixel and ``noise`` σ_pix (when
    σ_e > 0); ``meta`` the seed and the simulator's configuration.

    Examples
    --------
    >>> sim = ShearSimulator(4, fields=("gamma1", "gamma2"), mask=survey_mask(4, "band", coord="G"), coord="G")
    >>> simulate_maps(np.r_[0, 0, np.full(7, 1e-5)], sim, seed=3)
    <ShearMap nside=4 RING G: gamma1, gamma2, n_gal, noise; fsky=0.583>
    """
    maps = simulator(spectra, seed, progress=progress)
    area = hp.nside2pixarea(simulator.nside, degrees=True) * 3600.0
    config = {k: v for k, v in simulator.get_config().items() if k != "mask_runs"}
    made = []
    for stack in np.reshape(maps, (-1,) + maps.shape[-2:]):
        fields = dict(zip(simulator.fields, stack))
        extra = {"n_gal": np.full(simulator.npix, simulator.n_gal * area)}
        if simulator.noise_sigma:
            extra["noise"] = np.full(simulator.npix, simulator.noise_sigma)
        made.append(ShearMap(mask=simulator.mask, nside=simulator.nside, nest=simulator.nest, coord=simulator.coord,
                             meta={"seed": seed if seed is None or isinstance(seed, (int, np.integer)) else None,
                                   "simulator": config},
                             **fields, **extra))
    return made if maps.ndim == 3 else made[0]
