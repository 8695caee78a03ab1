"""Generative models of images: a convolutional VAE and a Wasserstein GAN with gradient penalty.

Both models take images as (n, C, H, W) arrays, or (n, H, W) for a single
channel, with H and W powers of two ≥ 8 (e.g. 32 × 32 or 64 × 64), and
always return (n, C, H, W). The images are standardised per channel inside
the model (a shift and scale fitted on the training images), so a saved model
takes and returns raw pixel values. Files are the usual safetensors + JSON
pair, read back with ``astrobayes.load``.

* :class:`ConvVAE` — variational autoencoder (Kingma & Welling 2014): an
  approximate posterior q(z | x) per image, a decoder p(x | z) and an ELBO in
  nats. Trained with the one training loop.
* :class:`WGANGP` — Wasserstein GAN with gradient penalty (Gulrajani et al.
  2017) on a DCGAN-style architecture (Radford et al. 2016). Adversarial
  training has two players, so it has its own loop here, built from the
  shared device, seeding and progress pieces.

Both architectures halve the grid with 4 × 4, stride-2 convolutions until
the shorter side is 4 pixels, doubling the channels each time (``base_channels``,
capped at ``max_channels``), and mirror that with transposed convolutions.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..core.device import resolve_device
from ..core.limits import network_size_guard
from ..core.seeding import make_generator, seed_everything
from ..core.paths import check_not_input
from ..core.serialization import model_paths, register_estimator, write_model
from ..core.standardize import Standardizer
from ..core.validation import as_tensor
from .base import Prediction
from .training import History, TrainingConfig, fit_module, show_progress, training_config

__all__ = ["ConvVAE", "WGANGP", "GANHistory", "gradient_penalty"]

_LOG_2PI = math.log(2 * math.pi)
#: smallest pixel noise σ of the VAE likelihood, in standardised units
#: (a noiseless training set would otherwise drive σ → 0 and the ELBO → ∞)
_MIN_NOISE = 1e-3


# ---------------------------------------------------------------------------- building blocks
def _check_image_shape(image_shape) -> tuple[int, int, int]:
    c, h, w = (int(s) for s in image_shape)
    if c < 1:
        raise ValueError(f"image_shape (C, H, W) = {(c, h, w)}: images need at least one channel")
    if any(side < 8 or side & (side - 1) for side in (h, w)):
        raise ValueError(f"image_shape (C, H, W) = {(c, h, w)}: H and W must be powers of two >= 8 "
                         "(e.g. 32 x 32 or 64 x 64); crop or pad the images")
    return c, h, w


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _widths(image_shape, base_channels: int, max_channels: int) -> list[int]:
    """Channels of each stride-2 block: enough blocks to bring the shorter side down to 4 pixels."""
    n_blocks = int(math.log2(min(image_shape[1:]))) - 2
    return [min(base_channels * 2**i, max_channels) for i in range(n_blocks)]


def _downsampler(in_channels: int, widths: list[int], layer_norm: bool) -> nn.Sequential:
    """Strided 4 × 4 convolutions with LeakyReLU(0.2), flattened at the end."""
    layers: list[nn.Module] = []
    width = in_channels
    for i, out in enumerate(widths):
        layers.append(nn.Conv2d(width, out, 4, stride=2, padding=1))
        if layer_norm and i > 0:  # GroupNorm with one group normalises over (C, H, W) per image
            layers.append(nn.GroupNorm(1, out))
        layers.append(nn.LeakyReLU(0.2))
        width = out
    return nn.Sequential(*layers, nn.Flatten())


class _Upsampler(nn.Module):
    """z → linear → coarse grid → transposed 4 × 4 convolutions → 3 × 3 convolution to C channels."""

    def __init__(self, latent_dim: int, widths: list[int], image_shape, batch_norm: bool):
        super().__init__()
        channels, height, width = image_shape
        n = len(widths)
        self.grid = (widths[-1], height >> n, width >> n)
        self.project = nn.Linear(latent_dim, int(np.prod(self.grid)))
        coarse_to_fine = widths[::-1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(coarse_to_fine, coarse_to_fine[1:] + coarse_to_fine[-1:]):
            layers += [nn.BatchNorm2d(c_in) if batch_norm else nn.Identity(),
                       nn.ReLU() if batch_norm else nn.LeakyReLU(0.2),
                       nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        # a final stride-1 convolution smooths the checkerboard of the last transposed convolution;
        # no squashing non-linearity: standardised pixels are not bounded
        layers += [nn.BatchNorm2d(widths[0]) if batch_norm else nn.Identity(),
                   nn.ReLU() if batch_norm else nn.LeakyReLU(0.2),
                   nn.Conv2d(widths[0], channels, 3, padding=1)]
        self.blocks = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z).view(-1, *self.grid))


class _ImageModel:
    """What both models share: image checks, batching on the model's device, files."""

    history_class = History
    prediction_batch_size = 512

    def __init__(self, latent_dim: int, base_channels: int, max_channels: int):
        self.latent_dim = _positive_int(latent_dim, "latent_dim")
        self.base_channels = _positive_int(base_channels, "base_channels")
        self.max_channels = _positive_int(max_channels, "max_channels")
        if self.max_channels < self.base_channels:
            raise ValueError(f"max_channels ({max_channels}) must be >= base_channels ({base_channels})")
        self.network: nn.Module | None = None
        self.history: History | None = None
        self.image_shape: tuple[int, int, int] | None = None

    def get_config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"latent_dim": self.latent_dim, "base_channels": self.base_channels,
                "max_channels": self.max_channels}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"

    # ------------------------------------------------------------------ checks
    def _require_fitted(self):
        if self.network is None:
            raise RuntimeError(f"this {type(self).__name__} has not been fitted yet: call fit(images) "
                               "or astrobayes.load(path)")

    def _check_images(self, images, name: str = "images") -> torch.Tensor:
        tensor = as_tensor(images, name)
        if tensor.ndim not in (3, 4):
            raise ValueError(f"{name} must be (n, H, W) for one channel or (n, C, H, W), got shape "
                             f"{tuple(tensor.shape)}")
        if tensor.ndim == 3:
            tensor = tensor[:, None]
        shape = tuple(tensor.shape[1:])
        if self.image_shape is None:
            _check_image_shape(shape)
        elif shape != self.image_shape:
            raise ValueError(f"{name} have per-image shape (C, H, W) = {shape}, but the model was trained on "
                             f"{self.image_shape}")
        return tensor

    def _check_image(self, image, name: str) -> torch.Tensor:
        """One image as (C, H, W), (H, W) for one channel or (1, C, H, W): returned as (1, C, H, W)."""
        given = as_tensor(image, name, ndim=(2, 3, 4))
        tensor = given.reshape((1,) * (4 - given.ndim) + tuple(given.shape))
        if tensor.shape[0] != 1:
            raise ValueError(f"{name} must be a single image (C, H, W), got shape {tuple(given.shape)}")
        return self._check_images(tensor, name)

    def _check_latents(self, z, name: str = "z") -> torch.Tensor:
        tensor = as_tensor(z, name, ndim=(1, 2))
        if tensor.ndim == 1:
            tensor = tensor[None]
        if tensor.shape[1] != self.latent_dim:
            raise ValueError(f"{name} has {tensor.shape[1]} latent coordinate(s) per row, the model has "
                             f"latent_dim={self.latent_dim}")
        return tensor

    @staticmethod
    def _output(tensor: torch.Tensor, like):
        return tensor if isinstance(like, torch.Tensor) else tensor.numpy()

    # ------------------------------------------------------------------ devices and batches
    @property
    def device(self) -> torch.device:
        self._require_fitted()
        return next(self.network.buffers()).device

    def to(self, device):
        """Move the fitted model to ``device`` ("auto", "cpu", "cuda")."""
        self._require_fitted()
        self.network.to(resolve_device(device))
        return self

    def _batched(self, fn, data: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """``fn`` on chunks of rows on the model's device, concatenated on the CPU."""
        device, size = self.device, size or self.prediction_batch_size
        self.network.eval()
        with torch.no_grad():
            return torch.cat([fn(data[i:i + size].to(device)).to("cpu") for i in range(0, len(data), size)])

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _fresh_network(self, images: torch.Tensor, seed) -> nn.Module:
        """A newly initialised network for ``images`` with the standardisation fitted on them."""
        seed_everything(seed)
        self.image_shape = tuple(images.shape[1:])
        with network_size_guard(f"{type(self).__name__}{self.get_config()} on images of shape {self.image_shape}"):
            network = self._build()
        with torch.no_grad():
            network.scaler.fit(images)
        return network

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Write ``path.safetensors`` (weights) and ``path.json`` (configuration); read with ``astrobayes.load``.

        The files a model was loaded from are not written over (a ValueError): save it under a new path.
        """
        self._require_fitted()
        for target in model_paths(path):
            check_not_input(target, getattr(self, "_read_from", ()), argument="path",
                            what="model file this model was loaded from")
        scaler = self.network.scaler
        extra = {"image_shape": list(self.image_shape),
                 "standardization": {"scaler": {"shift": scaler.shift.tolist(), "scale": scaler.scale.tolist()}},
                 "history": self.history.to_dict() if self.history is not None else None}
        write_model(path, type(self).__name__, self.get_config(), dict(self.network.state_dict()), extra)

    @classmethod
    def _from_state(cls, header: dict, tensors: dict):
        model = cls(**header["config"])
        model.image_shape = _check_image_shape(header["image_shape"])
        model.network = model._build()
        model.network.load_state_dict(tensors)  # strict: a RuntimeError names missing or unexpected weights
        model.network.eval()
        model.history = cls.history_class.from_dict(header.get("history"))
        return model

    @classmethod
    def load(cls, path):
        """Load a model saved with :meth:`save` (same as ``astrobayes.load``)."""
        from ..core.serialization import load_as

        return load_as(cls, path)


# ---------------------------------------------------------------------------- variational autoencoder
class _VAENetwork(nn.Module):
    def __init__(self, image_shape, latent_dim: int, widths: list[int]):
        super().__init__()
        channels, height, width = image_shape
        n = len(widths)
        self.scaler = Standardizer(channels)
        self.encoder = _downsampler(channels, widths, layer_norm=False)
        self.posterior = nn.Linear(widths[-1] * (height >> n) * (width >> n), 2 * latent_dim)
        self.decoder = _Upsampler(latent_dim, widths, image_shape, batch_norm=False)
        #: log σ of the pixel noise per channel, standardised units (learned, as in Rybkin et al. 2021)
        self.log_noise = nn.Parameter(torch.zeros(channels))

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x) for raw images."""
        mean, log_var = self.posterior(self.encoder(self.scaler(images))).chunk(2, dim=-1)
        return mean, log_var.clamp(-20.0, 10.0)

    def noise(self) -> torch.Tensor:
        """σ of the pixel noise per channel, standardised units."""
        return self.log_noise.exp().clamp(min=_MIN_NOISE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x | z) in raw units."""
        return self.scaler.inverse(self.decoder(z))

    def elbo_terms(self, images: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E_q[log p(x | z)] (nats per raw image, Monte Carlo over eps (k, n, d)) and KL(q ‖ N(0, I))."""
        x = self.scaler(images)
        mean, log_var = self.encode(images)
        std = torch.exp(0.5 * log_var)
        k, n = eps.shape[:2]
        predicted = self.decoder((mean + std * eps).flatten(0, 1)).view(k, n, *x.shape[1:])
        sigma = self.noise()
        channels, height, width = x.shape[1:]
        squared = (((x - predicted) / sigma.view(1, 1, -1, 1, 1)) ** 2).sum(dim=(2, 3, 4)).mean(0)
        # Gaussian normalisation plus the Jacobian of the standardisation: nats per image in raw pixel units
        norm = height * width * (torch.log(sigma).sum() + self.scaler.log_abs_det()) + 0.5 * x[0].numel() * _LOG_2PI
        kl = 0.5 * (mean**2 + std**2 - log_var - 1).sum(dim=-1)
        return -0.5 * squared - norm, kl


@register_estimator
class ConvVAE(_ImageModel):
    """Convolutional variational autoencoder of images (Kingma & Welling 2014).

    The encoder maps an image x to a diagonal Gaussian q(z | x) = N(μ(x),
    diag σ²(x)) over ``latent_dim`` latent coordinates; the decoder maps z to
    the mean of p(x | z), a Gaussian whose pixel noise σ_pix is learned, one
    value per channel (a "calibrated decoder", Rybkin et al. 2021, ICML). The
    prior is p(z) = N(0, I). Training maximises the evidence lower bound

        ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)) ≤ log p(x),

    reported in nats per image in raw pixel units (the Jacobian of the
    standardisation included), so ELBOs of different models of the same
    images can be compared.

    Parameters
    ----------
    latent_dim : int
        Number of latent coordinates.
    base_channels, max_channels : int
        Channels of the first stride-2 convolution, doubled at each further
        block up to ``max_channels``. A 32 × 32 image has 3 blocks
        (32, 64, 128 channels by default), a 64 × 64 image 4.
    beta : float
        Weight of the KL term in the training loss (β-VAE, Higgins et al.
        2017); β > 1 favours disentangled latents, β < 1 sharper
        reconstructions. With β ≠ 1 the training loss is not −ELBO, but
        :meth:`elbo` always reports the true (β = 1) ELBO.

    Notes
    -----
    Encoder: 4 × 4 stride-2 convolutions with LeakyReLU(0.2), until the
    shorter side is 4 pixels, then a linear layer to (μ, log σ²). Decoder
    (DCGAN-like, no normalisation layers): linear → 4-pixel grid → transposed
    4 × 4 stride-2 convolutions with LeakyReLU → a 3 × 3 convolution to C
    channels, without output non-linearity. σ_pix is floored at 10⁻³ in
    standardised units. The training loss of :meth:`fit` is −ELBO per image
    (one reparametrised draw of z per image), through the one training loop.
    After training, each latent coordinate is shifted and scaled so that
    q(z | x) over the training images has mean 0 and E[z²] = 1: an exact
    reparametrisation that leaves reconstructions unchanged and can only
    raise the ELBO, and without which draws from the prior of a briefly
    trained model can miss the training images' latents badly (blobs with
    40 % too little flux in the tests).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).normal(size=(64, 8, 8))  # 64 one-channel 8 × 8 images
    >>> vae = ConvVAE(latent_dim=2, base_channels=4)
    >>> history = vae.fit(images, epochs=2, progress=False)
    >>> mean, std = vae.encode(images[:3])          # q(z | x): the latent position and its uncertainty
    >>> mean.shape, std.shape
    ((3, 2), (3, 2))
    >>> vae.decode(mean).shape, vae.reconstruct(images[:3], n_samples=5, seed=0).shape
    ((3, 1, 8, 8), (3, 5, 1, 8, 8))
    >>> vae.elbo(images[:3]).shape, vae.sample(4, seed=1).shape, vae.interpolate(images[0], images[1], 5).shape
    ((3,), (4, 1, 8, 8), (5, 1, 8, 8))
    """

    def __init__(self, latent_dim: int = 16, base_channels: int = 32, max_channels: int = 256, beta: float = 1.0):
        super().__init__(latent_dim, base_channels, max_channels)
        if not (_is_number(beta) and beta > 0):
            raise ValueError(f"beta must be a positive number, got {beta!r}")
        self.beta = float(beta)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta": self.beta}

    def _build(self) -> nn.Module:
        widths = _widths(self.image_shape, self.base_channels, self.max_channels)
        return _VAENetwork(self.image_shape, self.latent_dim, widths)

    def _loss(self, images: torch.Tensor) -> torch.Tensor:
        eps = torch.randn((1, images.shape[0], self.latent_dim), device=images.device)
        log_likelihood, kl = self.network.elbo_terms(images, eps)
        return -(log_likelihood - self.beta * kl).mean()

    def fit(self, images, config: TrainingConfig | None = None, validation=None, **training_options) -> History:
        """Train on ``images`` by maximising the ELBO.

        Parameters
        ----------
        images : array-like (n, C, H, W) or (n, H, W)
            Raw training images; H and W powers of two ≥ 8.
        config : TrainingConfig, optional
            Options of the one training loop; keyword arguments override single
            fields (``epochs=50, batch_size=128, device="cuda", progress=False``).
            A random ``validation_fraction`` of the images is held out for early
            stopping and the best weights are restored.
        validation : array-like, optional
            Explicit validation images instead of the random split.

        Returns
        -------
        History
            −ELBO per image (nats; with β ≠ 1 the β-weighted loss) per epoch;
            also kept as ``self.history``.
        """
        config = training_config(config, **training_options)
        self.network, self.image_shape = None, None  # a refit may use images of another shape
        data = self._check_images(images)
        if validation is not None:
            self.image_shape = tuple(data.shape[1:])
            validation = (self._check_images(validation, "validation"),)
        network = self._fresh_network(data, config.seed)
        self.network = network
        self.history = fit_module(network, self._loss, (data,), config, validation_data=validation,
                                  description="fit ConvVAE")
        self._standardize_latents(data)
        return self.history

    @torch.no_grad()
    def _standardize_latents(self, images: torch.Tensor) -> None:
        """Shift and scale each latent coordinate so that the training images' q(z | x) has mean 0 and E[z²] = 1.

        z' = a (z − c) with the decoder reading z = z'/a + c is an exact
        reparametrisation: reconstructions do not change, and c = E[μ],
        a⁻² = E[(μ − c)² + σ²] minimise the KL term over such maps, so the
        ELBO can only rise. Gradient descent reaches this slowly (the decoder
        and encoder biases have to move together), and until it does, draws
        from the prior N(0, I) land where few training images' latents are.
        """
        posterior, project = self.network.posterior, self.network.decoder.project
        device = posterior.weight.device
        mean, std = (t.to(device, torch.float64) for t in self.encode(images))
        shift = mean.mean(dim=0)
        scale = ((mean - shift) ** 2 + std**2).mean(dim=0).rsqrt()
        d = self.latent_dim
        weight, bias = posterior.weight.double(), posterior.bias.double()
        weight[:d] *= scale[:, None]
        bias[:d] = scale * (bias[:d] - shift)
        bias[d:] += 2 * torch.log(scale)  # log σ'² = log σ² + 2 log a
        posterior.weight.copy_(weight)
        posterior.bias.copy_(bias)
        project.bias.add_((project.weight.double() @ shift).to(project.bias.dtype))
        project.weight.div_(scale.to(project.weight.dtype))

    # ------------------------------------------------------------------ latent space
    def encode(self, images) -> Prediction:
        """q(z | x) per image: ``mean`` and ``std``, each (n, latent_dim).

        ``std`` is the latent-space uncertainty: small where the image pins
        down its latent position, close to the prior's 1 where it does not
        (after :meth:`fit` the training images' latents have mean 0 and
        E[z²] = 1 per coordinate). It is learned for images like the training
        images only: an encoder is no outlier detector, and an image unlike
        any of them can get a confident, meaningless position.
        """
        self._require_fitted()
        data = self._check_images(images)

        def fn(batch):
            mean, log_var = self.network.encode(batch)
            return torch.cat([mean, torch.exp(0.5 * log_var)], dim=1)

        mean, std = self._batched(fn, data).split(self.latent_dim, dim=1)
        return Prediction(self._output(mean, images), self._output(std, images))

    def decode(self, z):
        """Mean of p(x | z), raw units: (m, C, H, W) for latents ``z`` (m, latent_dim)."""
        self._require_fitted()
        return self._output(self._batched(self.network.decode, self._check_latents(z)), z)

    def reconstruct(self, images, n_samples: int | None = None, seed: int | None = None):
        """Decoded images from q(z | x).

        ``n_samples=None`` decodes the posterior mean μ(x): (n, C, H, W).
        An integer k decodes k draws z ~ q(z | x) per image: (n, k, C, H, W),
        whose spread shows what the latent uncertainty means in pixel space.
        """
        self._require_fitted()
        data = self._check_images(images)
        if n_samples is None:
            return self._output(self._batched(lambda b: self.network.decode(self.network.encode(b)[0]), data), images)
        k = _positive_int(n_samples, "n_samples")
        generator = make_generator(seed)

        def fn(batch):
            mean, log_var = self.network.encode(batch)
            eps = torch.randn((len(batch), k, self.latent_dim), generator=generator).to(batch.device)
            z = mean[:, None] + torch.exp(0.5 * log_var)[:, None] * eps
            return self.network.decode(z.flatten(0, 1)).view(len(batch), k, *self.image_shape)

        return self._output(self._batched(fn, data, max(1, self.prediction_batch_size // k)), images)

    def denoise(self, images):
        """The decoded posterior mean of each image: (n, C, H, W), raw units.

        This is a reconstruction: it keeps what the latent space can describe
        and loses the rest. Pixel noise goes, but so do fine details and
        anything unlike the training images (a cosmic ray, a neighbour),
        and the result is smoother than the truth.
        """
        return self.reconstruct(images)

    def elbo(self, images, n_samples: int = 1, seed: int | None = None):
        """ELBO per image in nats (raw pixel units), averaged over ``n_samples`` draws of z: (n,)."""
        self._require_fitted()
        data = self._check_images(images)
        k = _positive_int(n_samples, "n_samples")
        generator = make_generator(seed)

        def fn(batch):
            eps = torch.randn((k, len(batch), self.latent_dim), generator=generator).to(batch.device)
            log_likelihood, kl = self.network.elbo_terms(batch, eps)
            return log_likelihood - kl

        return self._output(self._batched(fn, data, max(1, self.prediction_batch_size // k)), images)

    @property
    def noise_scale(self) -> np.ndarray:
        """The learned pixel noise σ per channel, raw units: (C,)."""
        self._require_fitted()
        with torch.no_grad():
            return (self.network.noise() * self.network.scaler.scale).cpu().numpy()

    def sample(self, n: int, seed: int | None = None, noise: bool = False) -> np.ndarray:
        """``n`` images from the model, (n, C, H, W): decoded z ~ N(0, I).

        ``noise=True`` adds the learned pixel noise, giving draws of x from
        p(x) rather than the noiseless means of p(x | z).
        """
        self._require_fitted()
        n = _positive_int(n, "n")
        generator = make_generator(seed)
        images = self._batched(self.network.decode, torch.randn((n, self.latent_dim), generator=generator))
        if noise:
            sigma = torch.as_tensor(self.noise_scale).view(1, -1, 1, 1)
            images = images + sigma * torch.randn(images.shape, generator=generator)
        return images.numpy()

    def interpolate(self, image_a, image_b, n_steps: int = 8):
        """Decoded images along the straight line between the latent means of two images: (n_steps, C, H, W).

        The first and last images are the reconstructions of ``image_a`` and
        ``image_b`` (single images, (C, H, W) or (H, W)).
        """
        self._require_fitted()
        n_steps = _positive_int(n_steps, "n_steps")
        if n_steps < 2:
            raise ValueError(f"n_steps must be at least 2, got {n_steps}")
        ends = torch.cat([self._check_image(image_a, "image_a"), self._check_image(image_b, "image_b")])
        mean = self.encode(ends).mean
        t = torch.linspace(0, 1, n_steps)[:, None]
        return self._output(self._batched(self.network.decode, (1 - t) * mean[0] + t * mean[1]), image_a)


# ---------------------------------------------------------------------------- Wasserstein GAN
def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     mixing: torch.Tensor | None = None) -> torch.Tensor:
    """The WGAN-GP penalty λ E[(‖∇ D(x̂)‖₂ − 1)²] at x̂ = ε x_real + (1 − ε) x_fake.

    Gulrajani et al. (2017, eq. 3) enforce the 1-Lipschitz constraint of the
    Wasserstein critic softly, on random points between real and generated
    samples, with ε ~ U[0, 1] per sample.

    Parameters
    ----------
    critic : nn.Module
        Maps a batch to one score per sample; must treat samples independently
        (no batch normalisation), or the per-sample gradients are wrong.
    real, fake : torch.Tensor
        Batches of the same shape (n, ...).
    weight : float
        λ.
    mixing : torch.Tensor, optional
        ε, broadcastable to ``real``; drawn uniformly when not given.

    Returns
    -------
    torch.Tensor
        The scalar penalty, differentiable with respect to the critic's parameters.

    Examples
    --------
    A linear critic D(x) = w·x has gradient w everywhere, so the penalty is λ(‖w‖ − 1)²:

    >>> critic = nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    >>> round(gradient_penalty(critic, torch.randn(5, 2), torch.randn(5, 2)).item(), 4)  # 10 (5 − 1)²
    160.0
    """
    if mixing is None:
        mixing = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    with torch.enable_grad():
        mixed = (mixing * real.detach() + (1 - mixing) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    # the tiny constant keeps the gradient of the norm finite where ∇D = 0
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(dim=1) + 1e-12)
    return weight * ((norm - 1) ** 2).mean()


@dataclass
class GANHistory(History):
    """Adversarial training per epoch.

    ``train_loss`` (also ``critic_loss``) is the critic's loss
    D(fake) − D(real) + penalty, ``wasserstein`` the critic's estimate
    E[D(real)] − E[D(fake)] of the Wasserstein-1 distance between the data
    and the generator (standardised pixel units; it should fall as the
    generator improves), ``gradient_penalty`` the penalty term and
    ``generator_loss`` −E[D(fake)], each averaged over the epoch's steps.
    """

    generator_loss: list[float] = field(default_factory=list)
    wasserstein: list[float] = field(default_factory=list)
    gradient_penalty: list[float] = field(default_factory=list)

    @property
    def critic_loss(self) -> list[float]:
        return self.train_loss

    @classmethod
    def from_dict(cls, entry: dict | None) -> "GANHistory | None":
        if not entry:
            return None
        # strict JSON stored NaN (an epoch without a generator step) as None
        entry = {key: [math.nan if v is None else v for v in value] if isinstance(value, list) else value
                 for key, value in entry.items()}
        return super().from_dict(entry)

    def plot(self, ax=None):
        """Plot the Wasserstein estimate, the penalty and both losses against epoch; return the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        epochs = np.arange(1, self.epochs + 1)
        for values, label in ((self.wasserstein, "Wasserstein estimate"), (self.gradient_penalty, "gradient penalty"),
                              (self.train_loss, "critic loss"), (self.generator_loss, "generator loss")):
            ax.plot(epochs, values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("value")
        ax.legend(frameon=False)
        return ax


class _GANNetwork(nn.Module):
    def __init__(self, image_shape, latent_dim: int, widths: list[int], layer_norm: bool):
        super().__init__()
        channels, height, width = image_shape
        n = len(widths)
        self.scaler = Standardizer(channels)
        self.generator = _Upsampler(latent_dim, widths, image_shape, batch_norm=True)
        self.critic = nn.Sequential(_downsampler(channels, widths, layer_norm),
                                    nn.Linear(widths[-1] * (height >> n) * (width >> n), 1))


def _check_options(epochs, batch_size, n_critic, learning_rate, betas, gp_weight) -> tuple[float, float]:
    for name, value in {"epochs": epochs, "batch_size": batch_size, "n_critic": n_critic}.items():
        _positive_int(value, name)
    if not (_is_number(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if not (_is_number(gp_weight) and gp_weight >= 0):
        raise ValueError(f"gp_weight must be a number >= 0, got {gp_weight!r}")
    try:
        beta1, beta2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}") from None
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    return beta1, beta2


@register_estimator
class WGANGP(_ImageModel):
    """Wasserstein GAN with gradient penalty on a DCGAN-style architecture.

    A generator G maps z ~ N(0, I) to images; a critic D scores images, and
    E[D(real)] − E[D(G(z))] estimates the Wasserstein-1 distance between the
    data and the generator, provided D is 1-Lipschitz, which a gradient
    penalty enforces softly (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville
    2017, "Improved Training of Wasserstein GANs", NeurIPS, arXiv:1704.00028;
    see :func:`gradient_penalty`). The defaults of :meth:`fit` are the
    paper's (Algorithm 1): λ = 10, n_critic = 5 critic steps per generator
    step, Adam with learning rate 10⁻⁴ and β = (0, 0.9), batches of 64.

    Unlike the VAE, a GAN has no likelihood: it can make sharp images, but
    gives no ELBO and no encoder, and its training curves say little about
    sample quality. Check samples against the data with summary statistics.

    Parameters
    ----------
    latent_dim : int
        Dimension of z.
    base_channels, max_channels : int
        Channels of the critic's first stride-2 convolution (and of the
        generator's last), doubled per block up to ``max_channels``, as in
        DCGAN (Radford, Metz & Chintala 2016, ICLR, arXiv:1511.06434).
    critic_norm : {"layer", "none"}
        Normalisation in the critic after its first block. Batch normalisation
        would couple the samples of a batch and invalidate the per-sample
        gradient penalty; "layer" (the paper's recommendation) normalises
        each image over (C, H, W) with a per-channel affine (GroupNorm with
        one group).

    Notes
    -----
    Generator: linear → 4-pixel grid → [batch norm → ReLU → transposed 4 × 4
    stride-2 convolution] per block → batch norm → ReLU → 3 × 3 convolution to
    C channels. The output has no squashing non-linearity: it lives on the
    standardised pixel scale, where the brightest pixels of sharply peaked
    images sit many standard deviations above the mean and a tanh would clip
    them.
    Critic: 4 × 4 stride-2 convolutions with LeakyReLU(0.2), then a linear
    layer to one score.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).normal(size=(64, 1, 8, 8))
    >>> gan = WGANGP(latent_dim=4, base_channels=4)
    >>> history = gan.fit(images, epochs=2, batch_size=16, progress=False)
    >>> len(history.wasserstein), gan.sample(3, seed=0).shape
    (2, (3, 1, 8, 8))
    >>> gan.interpolate(1, 2, n_steps=4).shape   # between the latents drawn with seeds 1 and 2
    (4, 1, 8, 8)
    """

    history_class = GANHistory

    def __init__(self, latent_dim: int = 64, base_channels: int = 64, max_channels: int = 256,
                 critic_norm: str = "layer"):
        super().__init__(latent_dim, base_channels, max_channels)
        if critic_norm not in ("layer", "none"):
            raise ValueError(f"critic_norm must be 'layer' or 'none', got {critic_norm!r}")
        self.critic_norm = critic_norm

    def get_config(self) -> dict:
        return {**super().get_config(), "critic_norm": self.critic_norm}

    def _build(self) -> nn.Module:
        widths = _widths(self.image_shape, self.base_channels, self.max_channels)
        return _GANNetwork(self.image_shape, self.latent_dim, widths, self.critic_norm == "layer")

    def fit(self, images, epochs: int = 50, batch_size: int = 64, learning_rate: float = 1e-4,
            betas: tuple[float, float] = (0.0, 0.9), n_critic: int = 5, gp_weight: float = 10.0,
            seed: int | None = 0, device: str = "auto", progress: bool | None = None) -> GANHistory:
        """Train generator and critic on ``images``.

        Each mini-batch of real images makes one critic step; every
        ``n_critic``-th critic step is followed by one generator step, so an
        epoch (one pass over the images) has about n / (batch_size · n_critic)
        generator steps. There is no validation split or early stopping: the
        critic's loss is not a measure of sample quality.

        Parameters
        ----------
        images : array-like (n, C, H, W) or (n, H, W)
            Raw training images; H and W powers of two ≥ 8.
        epochs, batch_size : int
            Passes over the images and images per critic step.
        learning_rate, betas
            Adam options of both players.
        n_critic : int
            Critic steps per generator step.
        gp_weight : float
            λ of the gradient penalty.
        seed : int or None
            Seeds the initial weights, the batch order and the latent draws
            (identical results on the CPU).
        device : str
            "auto" (CUDA when present), "cpu" or "cuda"; images are moved to it
            one batch at a time.
        progress : bool or None
            tqdm bar; None shows it only when stderr is a terminal.

        Returns
        -------
        GANHistory
            Also kept as ``self.history``.
        """
        betas = _check_options(epochs, batch_size, n_critic, learning_rate, betas, gp_weight)
        device = resolve_device(device)
        self.network, self.image_shape = None, None
        data = self._check_images(images)
        network = self._fresh_network(data, seed).to(device)
        critic_optimizer = torch.optim.Adam(network.critic.parameters(), lr=learning_rate, betas=betas)
        generator_optimizer = torch.optim.Adam(network.generator.parameters(), lr=learning_rate, betas=betas)
        order_generator = make_generator(seed)
        history = GANHistory(device=str(device), n_train=len(data))
        from tqdm.auto import tqdm

        bar = tqdm(range(epochs), desc="fit WGANGP", disable=not show_progress(progress), leave=False, unit="epoch")
        step, start_time = 0, time.perf_counter()
        for epoch in bar:
            network.train()
            critic_sums = torch.zeros(3, device=device)  # critic loss, Wasserstein estimate, penalty
            generator_sum, generator_steps, critic_steps = torch.zeros((), device=device), 0, 0
            order = torch.randperm(len(data), generator=order_generator)
            for first in range(0, len(data), batch_size):
                real = network.scaler(data[order[first:first + batch_size]].to(device, non_blocking=True))
                with torch.no_grad():
                    fake = network.generator(torch.randn((len(real), self.latent_dim), device=device))
                scores = network.critic(torch.cat([real, fake]))
                wasserstein = scores[:len(real)].mean() - scores[len(real):].mean()
                penalty = gradient_penalty(network.critic, real, fake, gp_weight)
                critic_loss = penalty - wasserstein
                if not torch.isfinite(critic_loss):
                    raise RuntimeError(f"fit WGANGP: the critic loss became {critic_loss.item()} at epoch {epoch + 1}; "
                                       "try a smaller learning_rate or check the images")
                critic_optimizer.zero_grad(set_to_none=True)
                critic_loss.backward()
                critic_optimizer.step()
                critic_sums += torch.stack([critic_loss, wasserstein, penalty]).detach()
                critic_steps += 1
                step += 1
                if step % n_critic == 0:
                    network.critic.requires_grad_(False)  # the generator step needs no critic gradients
                    generated = network.generator(torch.randn((batch_size, self.latent_dim), device=device))
                    generator_loss = -network.critic(generated).mean()
                    generator_optimizer.zero_grad(set_to_none=True)
                    generator_loss.backward()
                    generator_optimizer.step()
                    network.critic.requires_grad_(True)
                    generator_sum += generator_loss.detach()
                    generator_steps += 1
            critic_loss, wasserstein, penalty = (critic_sums / critic_steps).tolist()
            history.train_loss.append(critic_loss)
            history.wasserstein.append(wasserstein)
            history.gradient_penalty.append(penalty)
            history.generator_loss.append(generator_sum.item() / generator_steps if generator_steps else math.nan)
            history.learning_rate.append(learning_rate)
            bar.set_postfix(W=f"{wasserstein:.4g}", GP=f"{penalty:.3g}")
        bar.close()
        history.seconds = time.perf_counter() - start_time
        network.eval()
        self.network, self.history = network, history
        return history

    # ------------------------------------------------------------------ generation
    def generate(self, z):
        """Images G(z), raw units: (m, C, H, W) for latents ``z`` (m, latent_dim)."""
        self._require_fitted()
        network = self.network
        return self._output(self._batched(lambda b: network.scaler.inverse(network.generator(b)),
                                          self._check_latents(z)), z)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` generated images, (n, C, H, W), from z ~ N(0, I) drawn with ``seed``."""
        self._require_fitted()
        n = _positive_int(n, "n")
        return self.generate(torch.randn((n, self.latent_dim), generator=make_generator(seed))).numpy()

    def critic_score(self, images):
        """The critic's score D(x) per image: (n,).

        Only differences of scores mean something: the mean score of one set
        of images minus that of another estimates their Wasserstein-1
        distance (standardised pixel units), as long as the critic is
        near-optimal for them, i.e. for the training images and the generator's.
        """
        self._require_fitted()
        data = self._check_images(images)
        network = self.network
        return self._output(self._batched(lambda b: network.critic(network.scaler(b))[:, 0], data), images)

    def _latent(self, value, name: str) -> torch.Tensor:
        """One latent vector (1, latent_dim) from a vector or an integer seed."""
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return torch.randn((1, self.latent_dim), generator=make_generator(int(value)))
        latent = self._check_latents(value, name)
        if len(latent) != 1:
            raise ValueError(f"{name} must be one latent vector ({self.latent_dim},) or an integer seed, "
                             f"got {len(latent)} rows")
        return latent

    def interpolate(self, z_a, z_b, n_steps: int = 8):
        """Images along the straight line from ``z_a`` to ``z_b``: (n_steps, C, H, W).

        ``z_a`` and ``z_b`` are latent vectors (latent_dim,) or integer seeds;
        a seed s stands for the latent ``sample(1, seed=s)`` was made from.
        """
        self._require_fitted()
        n_steps = _positive_int(n_steps, "n_steps")
        if n_steps < 2:
            raise ValueError(f"n_steps must be at least 2, got {n_steps}")
        a, b = self._latent(z_a, "z_a"), self._latent(z_b, "z_b")
        t = torch.linspace(0, 1, n_steps)[:, None]
        images = self.generate((1 - t) * a + t * b)
        return images if isinstance(z_a, torch.Tensor) else images.numpy()
