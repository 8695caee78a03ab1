"""Generative models of galaxy stamps: a convolutional VAE and a WGAN-GP, in the stamps' own pixel units.

The networks (:class:`~astrobayes.estimators.ConvVAE`,
:class:`~astrobayes.estimators.WGANGP`) are general image models; this module
puts a galaxy-aware layer around them:

* stamps go through a reversible :class:`~astrobayes.galaxies.StampScaler`
  (asinh by default: linear at the noise level, logarithmic in bright cores)
  and come back in their own units;
* the training set can be augmented by the eight rotations and reflections of
  the square (:func:`dihedral_augment`) — a galaxy on the sky has no preferred
  orientation or handedness, and small real samples (a few hundred HDF stamps)
  need it;
* generated and reconstructed galaxies come back as :class:`Stamps`, ready
  for :func:`~astrobayes.galaxies.compare_morphology`.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y, x = np.mgrid[:16, :16]
>>> blobs = np.exp(-((x - 7.5) ** 2 + (y - 7.5) ** 2) / (2 * rng.uniform(1, 3, (40, 1, 1)) ** 2)) * 50
>>> blobs = blobs + rng.normal(0, 1, blobs.shape)
>>> generator = train_generative(blobs, "vae", epochs=2, progress=False, latent_dim=4)
>>> generator.sample(3, seed=0).data.shape
(3, 16, 16)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from astrobayes.core.serialization import load as load_model
from astrobayes.estimators.generative import WGANGP, ConvVAE

from .io import Stamps, StampScaler

__all__ = ["dihedral_augment", "GalaxyGenerator", "train_generative", "load_generator"]

KINDS = {"vae": ConvVAE, "wgan": WGANGP}


def dihedral_augment(images) -> np.ndarray:
    """The 8 rotations/reflections of each square stamp: (n, H, W) → (8n, H, W), originals first.

    Examples
    --------
    >>> dihedral_augment(np.arange(4.0).reshape(1, 2, 2)).shape
    (8, 2, 2)
    """
    images = np.asarray(getattr(images, "data", images), dtype=float)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"dihedral_augment needs square stamps (n, H, H), got shape {images.shape}")
    rotations = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    return np.concatenate(rotations + [r[:, :, ::-1] for r in rotations])


def _pixels(stamps) -> tuple[np.ndarray, Stamps | None]:
    if isinstance(stamps, Stamps):
        if stamps.mask.any():
            raise ValueError(f"stamps have {int(stamps.mask.sum())} masked/NaN pixels; generative models need "
                             f"complete stamps (fill or drop them first, e.g. stamps.filled(0.0))")
        return stamps.data, stamps
    images = np.asarray(stamps, dtype=float)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"stamps must be a Stamps or an (n, H, W) array, got shape {images.shape}")
    if not np.all(np.isfinite(images)):
        raise ValueError("stamps contain NaN or infinite pixels; generative models need complete stamps")
    return images, None


class GalaxyGenerator:
    """A trained generative model of stamps with its pixel scaling.

    Parameters
    ----------
    model : ConvVAE or WGANGP
        Trained on scaled stamps (n, 1, H, W).
    scaler : StampScaler
        The fitted scaling between pixel values and the model's inputs.
    unit, pixel_scale : optional
        Carried over to generated :class:`Stamps`.
    """

    def __init__(self, model, scaler: StampScaler, unit=None, pixel_scale=None):
        if not isinstance(model, tuple(KINDS.values())):
            raise TypeError(f"model must be a ConvVAE or a WGANGP, got {type(model).__name__}")
        self.model, self.scaler = model, scaler
        self.unit, self.pixel_scale = unit, pixel_scale

    @property
    def kind(self) -> str:
        return "vae" if isinstance(self.model, ConvVAE) else "wgan"

    def _stamps(self, scaled: np.ndarray, meta=None) -> Stamps:
        pixels = self.scaler.inverse_transform(np.asarray(scaled, dtype=float)[:, 0])
        return Stamps(pixels, unit=self.unit, pixel_scale=self.pixel_scale, meta=meta)

    def sample(self, n: int, seed: int | None = None) -> Stamps:
        """n new galaxies in pixel units (the VAE's decoder mean; the WGAN's generator output)."""
        return self._stamps(self.model.sample(n, seed=seed))

    def _vae_only(self, what: str) -> ConvVAE:
        if self.kind != "vae":
            raise TypeError(f"{what} needs an encoder: only the VAE has one (this is a {self.kind})")
        return self.model

    def encode(self, stamps):
        """Latent mean and standard deviation per stamp (the VAE's uncertainty in latent space)."""
        images, _ = _pixels(stamps)
        return self._vae_only("encode").encode(self.scaler.transform(images)[:, None])

    def reconstruct(self, stamps) -> Stamps:
        """Decoded posterior means: reconstructions, and de-noised versions of noisy stamps (they smooth)."""
        images, original = _pixels(stamps)
        vae = self._vae_only("reconstruct")
        meta = None if original is None else original.meta.copy()
        return self._stamps(vae.reconstruct(self.scaler.transform(images)[:, None]), meta=meta)

    def interpolate(self, a, b, n_steps: int = 8) -> Stamps:
        """Galaxies along a straight line in latent space: between two stamps (VAE) or two seeds/vectors (WGAN)."""
        if self.kind == "vae":
            first, _ = _pixels(np.asarray(getattr(a, "data", a), dtype=float).reshape(1, *np.shape(a)[-2:]))
            second, _ = _pixels(np.asarray(getattr(b, "data", b), dtype=float).reshape(1, *np.shape(b)[-2:]))
            path = self.model.interpolate(self.scaler.transform(first)[:, None], self.scaler.transform(second)[:, None],
                                          n_steps=n_steps)
        else:
            path = self.model.interpolate(a, b, n_steps=n_steps)
        return self._stamps(np.asarray(path))

    def save(self, path) -> None:
        """The network (``path.safetensors`` + ``path.json``) and ``path.scaler.json``."""
        self.model.save(path)
        Path(f"{path}.scaler.json").write_text(json.dumps({
            "kind": self.kind, "scaler": self.scaler.to_dict(),
            "unit": None if self.unit is None else str(self.unit),
            "pixel_scale": None if self.pixel_scale is None else float(self.pixel_scale.value)}))

    def __repr__(self) -> str:
        return f"GalaxyGenerator({self.kind}, {self.scaler!r}, image_shape={self.model.image_shape})"


def load_generator(path) -> GalaxyGenerator:
    """Read a :class:`GalaxyGenerator` written by :meth:`GalaxyGenerator.save`."""
    import astropy.units as u

    sidecar = Path(f"{path}.scaler.json")
    if not sidecar.exists():
        raise FileNotFoundError(f"{sidecar} is missing: a GalaxyGenerator is saved as {path}.safetensors, "
                                f"{path}.json and {path}.scaler.json")
    info = json.loads(sidecar.read_text())
    model = load_model(path)
    scale = info.get("pixel_scale")
    return GalaxyGenerator(model, StampScaler.from_dict(info["scaler"]),
                           unit=None if info.get("unit") is None else u.Unit(info["unit"]),
                           pixel_scale=None if scale is None else scale * u.arcsec / u.pix)


def train_generative(stamps, kind: str = "vae", *, augment: bool = True, scaling: str = "asinh", seed: int = 0,
                     model_options: dict | None = None, **fit_options) -> GalaxyGenerator:
    """Fit a VAE or a WGAN-GP to galaxy stamps.

    Parameters
    ----------
    stamps : Stamps or (n, H, W) array
        Complete square stamps with sides a power of two (e.g. 32 or 64).
    kind : {"vae", "wgan"}
    augment : bool
        Train on the 8 rotations/reflections of every stamp (:func:`dihedral_augment`).
    scaling : {"asinh", "linear"}
        The :class:`StampScaler` kind between pixels and the network.
    model_options : dict, optional
        Constructor arguments of the network (e.g. ``latent_dim``); the
        shortcut ``latent_dim=`` also works as a keyword.
    **fit_options
        Passed to the model's ``fit`` (``epochs``, ``batch_size``, ``device``, ``progress``, ...).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if scaling == "flux":
        raise ValueError("scaling='flux' divides out each stamp's own flux, which a generator could not restore "
                         "for new galaxies; use 'asinh' or 'linear'")
    images, original = _pixels(stamps)
    model_options = dict(model_options or {})
    if "latent_dim" in fit_options:
        model_options["latent_dim"] = fit_options.pop("latent_dim")
    scaler = StampScaler(scaling).fit(images)
    training = dihedral_augment(images) if augment else images
    scaled = scaler.transform(training)[:, None]
    model = KINDS[kind](**model_options)
    model.fit(scaled, seed=seed, **fit_options)
    return GalaxyGenerator(model, scaler, unit=None if original is None else original.unit,
                           pixel_scale=None if original is None else original.pixel_scale)
