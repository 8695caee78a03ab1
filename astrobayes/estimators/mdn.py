"""Mixture density network: q(y | x) as a mixture of K full-covariance Gaussians.

Bishop (1994, "Mixture Density Networks", NCRG/94/004): a network maps x to
the weights, means and covariances of a Gaussian mixture, and is trained by
minimising the mean negative log-likelihood of the training pairs. Unlike a
regression (one mean, one width) it can represent multi-modal and skewed
p(y | x), e.g. the degenerate solutions of a photometric redshift.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal
from torch.nn import functional as F

from ..core.seeding import make_generator
from ..core.serialization import register_estimator
from ..core.standardize import Standardizer
from .base import Estimator, FeatureNetwork, Prediction
from .layers import hidden_sizes, make_mlp

__all__ = ["MixtureComponents", "MixtureDensityNetwork"]

#: smallest diagonal entry of a Cholesky factor, in standardised units of y
#: (keeps every component's covariance positive definite and its density finite)
_MIN_SCALE = 1e-3


class MixtureComponents(NamedTuple):
    """The mixture per object, in the units of y.

    ``weights`` (m, K) sum to 1; ``means`` (m, K, d); ``covariances`` (m, K, d, d).
    """

    weights: object
    means: object
    covariances: object


class _MixtureNetwork(nn.Module):
    def __init__(self, features: FeatureNetwork, head: nn.Module, y_dim: int, n_components: int):
        super().__init__()
        self.features = features
        self.head = head
        self.y_scaler = Standardizer(y_dim)
        self.y_dim = y_dim
        self.n_components = n_components
        rows, cols = torch.tril_indices(y_dim, y_dim)
        self.register_buffer("tril_rows", rows, persistent=False)
        self.register_buffer("tril_cols", cols, persistent=False)

    def forward(self, x):
        """Logits (n, K), means (n, K, d) and Cholesky factors (n, K, d, d), standardised units."""
        k, d = self.n_components, self.y_dim
        n_tril = d * (d + 1) // 2
        out = self.head(self.features(x))
        logits, means, tril = out.split([k, k * d, k * n_tril], dim=-1)
        means = means.reshape(-1, k, d)
        tril = tril.reshape(-1, k, n_tril)
        diagonal = self.tril_rows == self.tril_cols
        # softplus + floor: a positive diagonal makes L a valid Cholesky factor
        tril = torch.where(diagonal, F.softplus(tril) + _MIN_SCALE, tril)
        factor = tril.new_zeros(tril.shape[0], k, d, d)
        factor[..., self.tril_rows, self.tril_cols] = tril
        return logits, means, factor

    def raw(self, x):
        """Logits, means and Cholesky factors in the units of raw y."""
        logits, means, factor = self(x)
        scaler = self.y_scaler
        return logits, scaler.inverse(means.reshape(-1, self.y_dim)).reshape(means.shape), scaler.scale[:, None] * factor


def _mixture(logits, means, factor, validate: bool | None = None) -> MixtureSameFamily:
    return MixtureSameFamily(Categorical(logits=logits, validate_args=validate),
                             MultivariateNormal(means, scale_tril=factor, validate_args=validate),
                             validate_args=validate)


@register_estimator
class MixtureDensityNetwork(Estimator):
    """q(y | x) as a mixture of ``n_components`` Gaussians with full covariances.

    Parameters
    ----------
    n_components : int
        Number of Gaussian components K.
    hidden : sequence of int
        Widths of the hidden layers of the head.
    embedding : nn.Module, optional
        Network in front of the head (e.g. an astrobayes CNN or DeepSet embedding).
    activation : str
        ``"silu"``, ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"elu"``.

    Notes
    -----
    Each component's covariance is L Lᵀ with L lower-triangular; the diagonal
    of L is softplus(·) + 10⁻³ (standardised units), so covariances stay
    positive definite. The loss is the mean negative log-likelihood.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (2000, 1))
    >>> y = np.where(rng.random((2000, 1)) < 0.5, -1.0, 1.0) + 0.1 * rng.normal(size=(2000, 1))
    >>> mdn = MixtureDensityNetwork(n_components=3, hidden=(32, 32))
    >>> _ = mdn.fit(x, y, epochs=30, progress=False)
    >>> weights, means, covariances = mdn.components(np.array([[0.0]]))
    >>> weights.shape, means.shape, covariances.shape
    ((1, 3), (1, 3, 1), (1, 3, 1, 1))
    >>> mdn.sample(100, np.array([[0.0]]), seed=1).shape
    (1, 100, 1)
    """

    def __init__(self, n_components: int = 5, hidden: Sequence[int] = (64, 64), embedding: nn.Module | None = None,
                 activation: str = "silu"):
        super().__init__(embedding)
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        self.n_components = n_components
        self.hidden = hidden_sizes(hidden)
        self.activation = activation
        make_mlp(1, self.hidden, 1, activation)  # validate the options now

    def get_config(self) -> dict:
        return {"n_components": self.n_components, "hidden": list(self.hidden),
                "embedding": self._embedding_config(), "activation": self.activation}

    def _build(self) -> nn.Module:
        k, d = self.n_components, self.dims["y_dim"]
        features = FeatureNetwork(self.dims["x_features"], self._fresh_embedding())
        head = make_mlp(self._context_dim(), self.hidden, k * (1 + d + d * (d + 1) // 2), self.activation)
        return _MixtureNetwork(features, head, d, k)

    def _loss(self, x, y):
        # Standardised units: the Jacobian of the standardisation is a constant.
        mixture = _mixture(*self.network(x), validate=False)
        return -mixture.log_prob(self.network.y_scaler(y)).mean()

    # ------------------------------------------------------------------ density
    def log_prob(self, y, x):
        """log q(y | x) per row in the units of raw y; one row of x or y is broadcast against many."""
        self._require_fitted()
        inputs, target = self._check_x(x), self._check_y(y)
        target, inputs = self._broadcast(target, inputs)

        def fn(xb, yb):
            return _mixture(*self.network.raw(xb), validate=False).log_prob(yb)

        return self._output(self._batched(fn, inputs, target), x)

    def _packed_components(self, inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weights (m, K), means (m, K, d) and Cholesky factors (m, K, d, d), raw units, on the CPU."""
        k, d = self.n_components, self.dims["y_dim"]

        def fn(xb):
            logits, means, factor = self.network.raw(xb)
            return torch.cat([torch.softmax(logits, -1), means.flatten(1), factor.flatten(1)], dim=1)

        packed = self._batched(fn, inputs)
        weights, means, factor = packed.split([k, k * d, k * d * d], dim=1)
        return weights, means.reshape(-1, k, d), factor.reshape(-1, k, d, d)

    def components(self, x) -> MixtureComponents:
        """Weights (m, K), means (m, K, d) and covariance matrices (m, K, d, d) in the units of y."""
        self._require_fitted()
        weights, means, factor = self._packed_components(self._check_x(x))
        covariances = factor @ factor.transpose(-1, -2)
        return MixtureComponents(*(self._output(t, x) for t in (weights, means, covariances)))

    def distribution(self, x) -> MixtureSameFamily:
        """q(y | x) as a torch ``MixtureSameFamily`` with batch shape (m,), in the units of y."""
        self._require_fitted()
        weights, means, factor = self._packed_components(self._check_x(x))
        return MixtureSameFamily(Categorical(probs=weights), MultivariateNormal(means, scale_tril=factor))

    def sample(self, n: int, x, seed: int | None = None):
        """``n`` draws from q(y | x) per row of x: shape (m, n, d); ``seed`` makes them reproducible."""
        self._require_fitted()
        n = self._check_n(n)
        weights, means, factor = self._packed_components(self._check_x(x))
        generator = make_generator(seed)
        rows = torch.arange(weights.shape[0])[:, None]
        draws = []
        # chunks of rows keep the (rows, n, d, d) gather of Cholesky factors small
        step = max(1, 2**20 // (n * factor.shape[-1] ** 2))
        for start in range(0, weights.shape[0], step):
            chunk = slice(start, start + step)
            which = torch.multinomial(weights[chunk], n, replacement=True, generator=generator)  # (r, n)
            noise = torch.randn(which.shape + (means.shape[-1], 1), generator=generator)
            index = rows[: which.shape[0]]
            draws.append(means[chunk][index, which] + (factor[chunk][index, which] @ noise).squeeze(-1))
        return self._output(torch.cat(draws, dim=0), x)

    def predict(self, x) -> Prediction:
        """Mixture mean and standard deviation per row (law of total variance), each (m, d)."""
        self._require_fitted()
        weights, means, factor = self._packed_components(self._check_x(x))
        mean = (weights[..., None] * means).sum(1)
        within = (weights[..., None] * (factor**2).sum(-1)).sum(1)  # Σ_k w_k diag(L_k L_kᵀ)
        between = (weights[..., None] * (means - mean[:, None]) ** 2).sum(1)
        return Prediction(self._output(mean, x), self._output((within + between).sqrt(), x))
