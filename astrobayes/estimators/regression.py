"""Regression: a point estimate, and a heteroscedastic Gaussian variant.

Minimising the mean squared error is maximum likelihood under a Gaussian with
fixed unit width; the network then predicts the *mean* of p(y | x), which is
a biased summary when p(y | x) is skewed or multi-modal (the reason for MDNs
and flows). The heteroscedastic variant predicts a width σ(x) as well and
minimises the full Gaussian negative log-likelihood.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..core.seeding import make_generator
from ..core.serialization import register_estimator
from ..core.standardize import Standardizer
from .base import Estimator, FeatureNetwork, Prediction
from .layers import hidden_sizes, make_mlp

__all__ = ["Regressor"]

_LOG_2PI = math.log(2 * math.pi)


class _RegressionNetwork(nn.Module):
    def __init__(self, features: FeatureNetwork, head: nn.Module, y_dim: int, heteroscedastic: bool):
        super().__init__()
        self.features = features
        self.head = head
        self.y_scaler = Standardizer(y_dim)
        self.y_dim = y_dim
        self.heteroscedastic = heteroscedastic
        # σ of the residuals in standardised units, for the plain (MSE) variant:
        # estimated after training so that log_prob and sample are honest.
        self.register_buffer("residual_scale", torch.ones(y_dim))

    def forward(self, x):
        """Standardised mean and σ, each (n, y_dim)."""
        out = self.head(self.features(x))
        if self.heteroscedastic:
            mean, raw = out.split(self.y_dim, dim=-1)
            return mean, F.softplus(raw) + 1e-4
        return out, self.residual_scale.expand_as(out)


@register_estimator
class Regressor(Estimator):
    """Neural regression of y on x, optionally with a learned noise level σ(x).

    Parameters
    ----------
    hidden : sequence of int
        Widths of the hidden layers of the head.
    heteroscedastic : bool
        False: mean-squared-error fit (Gaussian likelihood with σ = 1 in
        standardised units); σ is then a single residual scale per output,
        measured on the training data after the fit.
        True: predict σ(x) too and minimise the Gaussian NLL.
    embedding : nn.Module, optional
        Network in front of the head (e.g. :class:`CNNEmbedding`).
    activation : str
        ``"silu"``, ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"elu"``.
    dropout : float
        Dropout after every hidden layer (active only while training).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (2000, 1)); y = 2 * x + 0.1 * rng.normal(size=x.shape)
    >>> reg = Regressor(hidden=(32,), heteroscedastic=True)
    >>> _ = reg.fit(x, y, epochs=30, progress=False)
    >>> mean, std = reg.predict(np.array([[0.5]]))
    >>> bool(abs(mean[0, 0] - 1.0) < 0.1)
    True
    """

    def __init__(self, hidden: Sequence[int] = (64, 64), heteroscedastic: bool = False,
                 embedding: nn.Module | None = None, activation: str = "silu", dropout: float = 0.0):
        super().__init__(embedding)
        self.hidden = hidden_sizes(hidden)
        self.heteroscedastic = bool(heteroscedastic)
        self.activation = activation
        self.dropout = float(dropout)
        make_mlp(1, self.hidden, 1, activation, dropout)  # validate the options now

    def get_config(self) -> dict:
        return {"hidden": list(self.hidden), "heteroscedastic": self.heteroscedastic,
                "embedding": self._embedding_config(), "activation": self.activation, "dropout": self.dropout}

    def _build(self) -> nn.Module:
        y_dim = self.dims["y_dim"]
        features = FeatureNetwork(self.dims["x_features"], self._fresh_embedding())
        head = make_mlp(self._context_dim(), self.hidden, y_dim * (2 if self.heteroscedastic else 1),
                        self.activation, self.dropout)
        return _RegressionNetwork(features, head, y_dim, self.heteroscedastic)

    def _gaussian_nll(self, x, y_std) -> torch.Tensor:
        mean, sigma = self.network(x)
        return (0.5 * ((y_std - mean) / sigma) ** 2 + torch.log(sigma) + 0.5 * _LOG_2PI).sum(-1)

    def _loss(self, x, y):
        y_std = self.network.y_scaler(y)
        if self.heteroscedastic:
            return self._gaussian_nll(x, y_std).mean()
        mean, _ = self.network(x)
        return 0.5 * ((y_std - mean) ** 2).sum(-1).mean()

    def _after_fit(self, x, y, config) -> None:
        if self.heteroscedastic:
            return
        net = self.network
        residuals = self._batched(lambda xb, yb: net.y_scaler(yb) - net(xb)[0], x, y)
        net.residual_scale.copy_(residuals.pow(2).mean(0).sqrt().clamp_min(1e-6).to(net.residual_scale))

    def _raw_mean_sigma(self, x):
        mean, sigma = self.network(x)
        scaler = self.network.y_scaler
        return scaler.inverse(mean), sigma * scaler.scale

    def log_prob(self, y, x):
        """Gaussian log density of ``y`` given ``x``, summed over the columns of y.

        One row of x is broadcast against many rows of y and vice versa.
        """
        self._require_fitted()
        inputs, target = self._check_x(x), self._check_y(y)
        target, inputs = self._broadcast(target, inputs)

        def fn(xb, yb):
            mean, sigma = self._raw_mean_sigma(xb)
            return (-0.5 * ((yb - mean) / sigma) ** 2 - torch.log(sigma) - 0.5 * _LOG_2PI).sum(-1)

        return self._output(self._batched(fn, inputs, target), x)

    def sample(self, n: int, x, seed: int | None = None):
        """Draws from N(μ(x), σ(x)²): shape (m, n, y_dim)."""
        self._require_fitted()
        n = self._check_n(n)
        inputs = self._check_x(x)
        generator = make_generator(seed)

        def fn(xb):
            mean, sigma = self._raw_mean_sigma(xb)
            noise = torch.randn((mean.shape[0], n, mean.shape[1]), generator=generator).to(mean.device)
            return mean[:, None, :] + sigma[:, None, :] * noise

        return self._output(self._batched(fn, inputs), x)

    def predict(self, x) -> Prediction:
        """Mean μ(x) and standard deviation σ(x) in the units of y, each (m, y_dim)."""
        self._require_fitted()
        inputs = self._check_x(x)
        both = self._batched(lambda xb: torch.stack(self._raw_mean_sigma(xb), 0).transpose(0, 1), inputs)
        return Prediction(self._output(both[:, 0], x), self._output(both[:, 1], x))

    def distribution(self, x) -> torch.distributions.Distribution:
        """q(y | x) as a torch ``Independent(Normal)`` over the columns of y (torch in, torch out)."""
        self._require_fitted()
        inputs = self._check_x(x)
        both = self._batched(lambda xb: torch.stack(self._raw_mean_sigma(xb), 0).transpose(0, 1), inputs)
        return torch.distributions.Independent(torch.distributions.Normal(both[:, 0], both[:, 1]), 1)
