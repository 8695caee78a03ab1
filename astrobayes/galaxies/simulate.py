"""Mock galaxy stamps: a Sérsic population through a PSF, with pixel noise and known truths.

The simulator behind structural-parameter inference: θ (see
:data:`~astrobayes.galaxies.render.PARAMETERS`) → a noisy (H, W) stamp. One
:class:`StampSimulator` describes one observing set-up — stamp shape, PSF,
background noise, pixel scale — and both the amortized posterior and the
per-galaxy MCMC likelihood are built from the same one, so the two routes
answer the same question.

Examples
--------
>>> simulator = StampSimulator((24, 24), psf_fwhm=2.0, noise_sigma=1.0)
>>> stamps, truth = simulate_stamps(3, simulator, seed=1)
>>> stamps.data.shape, truth.colnames[:4]
((3, 24, 24), ['log10_flux', 'log10_r_half', 'sersic_n', 'e1'])
"""
from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable

from astrobayes.inference.priors import JointPrior, Uniform

from .io import _as_pixel_scale
from .render import PARAMETERS, SersicRenderer, axis_ratio_angle, check_psf, gaussian_psf

__all__ = ["structural_prior", "StampSimulator", "simulate_stamps", "signal_to_noise", "truth_table",
           "stamp_features"]


def structural_prior(*, log10_flux=(2.0, 3.5), r_half=(1.0, 8.0), sersic_n=(0.5, 5.0), e_max: float = 0.5,
                     centroid: float = 1.5) -> JointPrior:
    """The box prior over the renderer's parameters used for simulation and training.

    Parameters
    ----------
    log10_flux : (float, float)
        Range of log₁₀ total flux, in the image's flux units (with the
        default noise σ = 1 per pixel, S/N ≈ 10–300 for mid-sized galaxies).
    r_half : (float, float)
        Range of the circularised half-light radius [pixels]; uniform in log₁₀.
    sersic_n : (float, float)
        Range of the Sérsic index.
    e_max : float
        e₁ and e₂ are each uniform in [−e_max, e_max] (e_max < 1/√2 keeps |e| < 1).
    centroid : float
        x₀ and y₀ are uniform within ±centroid pixels of the stamp centre.

    Examples
    --------
    >>> structural_prior().names
    ['log10_flux', 'log10_r_half', 'sersic_n', 'e1', 'e2', 'x0', 'y0']
    """
    if not 0 < e_max < 1 / math.sqrt(2):
        raise ValueError(f"e_max must lie in (0, 1/√2) so that |e| < 1 in the whole box, got {e_max}")
    if r_half[0] <= 0:
        raise ValueError(f"r_half must be positive, got {r_half}")
    return JointPrior([
        Uniform(*log10_flux, name="log10_flux"),
        Uniform(math.log10(r_half[0]), math.log10(r_half[1]), name="log10_r_half"),
        Uniform(*sersic_n, name="sersic_n"),
        Uniform(-e_max, e_max, name="e1"),
        Uniform(-e_max, e_max, name="e2"),
        Uniform(-centroid, centroid, name="x0", unit=u.pix),
        Uniform(-centroid, centroid, name="y0", unit=u.pix),
    ])


def stamp_features(images, noise_sigma: float) -> np.ndarray:
    """The network's view of a stamp: asinh(image / σ), shape (m, 1, H, W), float32.

    In units of the per-pixel noise, linear near the noise level and
    logarithmic in bright cores, so that faint and bright galaxies share one
    input scale. A fixed bijection: nothing is lost.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (H, W), (m, H, W) or (m, 1, H, W), got shape {images.shape}")
    return np.arcsinh(images / noise_sigma).astype(np.float32)[:, None]


def signal_to_noise(noiseless, sigma) -> np.ndarray:
    """Matched-filter S/N of each noiseless model stamp, √Σ (model/σ)², shape (m,).

    Examples
    --------
    >>> float(signal_to_noise(np.full((1, 4, 4), 2.0), 1.0)[0])
    8.0
    """
    noiseless = np.asarray(noiseless, dtype=float)
    noiseless = noiseless[None] if noiseless.ndim == 2 else noiseless
    return np.sqrt(np.sum((noiseless / np.asarray(sigma, dtype=float)) ** 2, axis=(-2, -1)))


class StampSimulator:
    """One observing set-up: stamp shape, PSF, background noise and pixel scale.

    Parameters
    ----------
    shape : (int, int)
        Stamp shape (H, W).
    psf : 2-D array, optional
        PSF image at the stamp's pixel scale; default a Gaussian of
        ``psf_fwhm`` pixels.
    psf_fwhm : float
        FWHM [pixels] of the default Gaussian PSF.
    noise_sigma : float
        Background-dominated Gaussian noise per pixel, in the flux units.
    pixel_scale : Quantity or float, optional
        Angle per pixel (e.g. ``0.03 * u.arcsec / u.pix``; a bare number is
        arcsec per pixel); lets tables give sizes in arcsec.
    oversample : int
        Sub-pixel samples per side for the renderer.
    prior : JointPrior, optional
        Prior over :data:`~astrobayes.galaxies.render.PARAMETERS` (in that
        order); default :func:`structural_prior`.

    Examples
    --------
    >>> simulator = StampSimulator((16, 16), psf_fwhm=2.0)
    >>> theta = simulator.prior.sample(2, seed=0).numpy()
    >>> simulator(theta, np.random.default_rng(0)).shape
    (2, 1, 16, 16)
    """

    def __init__(self, shape=(32, 32), psf=None, psf_fwhm: float = 2.5, noise_sigma: float = 1.0,
                 pixel_scale=None, oversample: int = 3, prior: JointPrior | None = None):
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
            raise ValueError(f"shape must be the stamp size (H, W) in pixels, got {shape!r}")
        try:
            self.shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise ValueError(f"shape must be the stamp size (H, W) in whole pixels, got {shape!r}") from None
        self.psf = check_psf(psf) if psf is not None else gaussian_psf(psf_fwhm)
        if isinstance(noise_sigma, bool) or not np.isscalar(noise_sigma) or not noise_sigma > 0:
            raise ValueError(f"noise_sigma must be a positive number, got {noise_sigma!r}")
        self.noise_sigma = float(noise_sigma)
        self.pixel_scale = _as_pixel_scale(pixel_scale)  # a bare number is arcsec per pixel
        if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) or oversample < 1:
            raise ValueError(f"oversample must be a positive integer, got {oversample!r}")
        self.oversample = int(oversample)
        self.prior = prior if prior is not None else structural_prior()
        if list(self.prior.names) != list(PARAMETERS):
            raise ValueError(f"prior must be over {list(PARAMETERS)} in that order, got {self.prior.names}")
        self.renderer = SersicRenderer(self.shape, psf=self.psf, oversample=self.oversample)

    def get_config(self) -> dict:
        """JSON-able description (the PSF as nested lists), enough to rebuild the simulator."""
        from astrobayes.inference.priors import prior_to_config

        return {"shape": list(self.shape), "psf": self.psf.tolist(), "noise_sigma": self.noise_sigma,
                "pixel_scale": None if self.pixel_scale is None else float(self.pixel_scale.value),
                "oversample": self.oversample, "prior": prior_to_config(self.prior)}

    @classmethod
    def from_config(cls, config: dict) -> StampSimulator:
        from astrobayes.inference.priors import prior_from_config

        scale = config.get("pixel_scale")
        return cls(config["shape"], psf=np.asarray(config["psf"]), noise_sigma=config["noise_sigma"],
                   pixel_scale=None if scale is None else scale * u.arcsec / u.pix,
                   oversample=config["oversample"], prior=prior_from_config(config["prior"]))

    def noiseless(self, theta, batch_size: int = 1024) -> np.ndarray:
        """Rendered model stamps (m, H, W), float64, without noise."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = np.empty((theta.shape[0],) + self.shape)
        with torch.no_grad():
            for start in range(0, theta.shape[0], batch_size):
                rows = torch.as_tensor(theta[start:start + batch_size], dtype=torch.float32)
                out[start:start + batch_size] = self.renderer(rows).double().numpy()
        return out

    def __call__(self, theta, rng: np.random.Generator) -> np.ndarray:
        """Noisy stamps (m, 1, H, W) float32 for θ (m, 7): the ``simulator(theta, rng)`` of NPE."""
        images = self.noiseless(theta)
        images += self.noise_sigma * rng.standard_normal(images.shape)
        return images.astype(np.float32)[:, None]

    def __repr__(self) -> str:
        return (f"StampSimulator(shape={self.shape}, psf={self.psf.shape}, noise_sigma={self.noise_sigma:g}, "
                f"pixel_scale={self.pixel_scale})")


def truth_table(theta, simulator: StampSimulator | None = None) -> QTable:
    """θ (m, 7) → a QTable of the renderer's parameters plus derived flux, r½, q, position angle and S/N.

    Sizes are in pixels, and also in arcsec when the simulator has a pixel scale.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    table = QTable({name: theta[:, k] for k, name in enumerate(PARAMETERS)})
    table["x0"].unit = table["y0"].unit = u.pix
    table["flux"] = 10.0 ** theta[:, 0]
    table["r_half"] = 10.0 ** theta[:, 1] * u.pix
    q, phi = axis_ratio_angle(theta[:, 3], theta[:, 4])
    table["q"] = q
    table["position_angle"] = np.degrees(phi) * u.deg
    if simulator is not None:
        if simulator.pixel_scale is not None:
            table["r_half_arcsec"] = (table["r_half"] * simulator.pixel_scale).to(u.arcsec)
        table["snr"] = signal_to_noise(simulator.noiseless(theta), simulator.noise_sigma)
    return table


def simulate_stamps(n: int, simulator: StampSimulator | None = None, *, theta=None, seed: int | None = 0):
    """Draw n galaxies from the simulator's prior (or take ``theta``), render and add noise.

    Returns
    -------
    stamps : Stamps
        The noisy stamps with a constant noise map and the truths in ``meta``.
    truth : QTable
        :func:`truth_table` of the drawn parameters (with S/N).
    """
    from .io import Stamps

    simulator = simulator if simulator is not None else StampSimulator()
    if theta is None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        theta = simulator.prior.sample(int(n), seed=seed).numpy()
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    images = simulator(theta, np.random.default_rng(seed))[:, 0].astype(float)
    truth = truth_table(theta, simulator)
    noise = np.full(images.shape, simulator.noise_sigma)
    stamps = Stamps(images, noise=noise, meta=QTable({"id": np.arange(len(theta))}),
                    pixel_scale=simulator.pixel_scale)
    return stamps, truth
