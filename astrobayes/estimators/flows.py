"""Conditional normalising flows q(y | x) built with normflows.

A flow maps standard-normal noise z to y through invertible layers whose
parameters depend on the context, here the output of the feature network
(standardised x → embedding). The density follows from the change of
variables, log q(y | x) = log N(z) + log |det ∂z/∂y| (Papamakarios et al.
2021, JMLR 22, 57, "Normalizing flows for probabilistic modeling and
inference").

Four layer types, each followed by a learned linear mixing of the
dimensions (``nf.flows.LULinearPermute``, Durkan et al. 2019) when y has more
than one column:

* ``"maf"``: masked affine autoregressive layers (Papamakarios et al. 2017);
* ``"nsf"``: autoregressive rational-quadratic splines (Durkan et al. 2019);
  density in one pass, but sampling takes d sequential passes per layer;
* ``"nsf_coupling"``: coupling rational-quadratic splines (Durkan et al.
  2019), one pass in both directions — the choice when many posterior draws
  are needed (e.g. thousands of objects × thousands of draws);
* ``"realnvp"``: affine coupling layers (Dinh et al. 2017). normflows has no
  context-aware affine coupling, so :class:`ConditionalAffineCoupling` is ours.
"""
from __future__ import annotations

import math
import warnings

import normflows as nf
import numpy as np
import torch
from torch import nn

from ..core.seeding import make_generator
from ..core.validation import n_rows
from ..core.serialization import register_estimator
from ..core.standardize import Standardizer
from .base import Estimator, FeatureNetwork, Prediction
from .layers import ACTIVATIONS, make_mlp

__all__ = ["FLOW_TYPES", "ConditionalAffineCoupling", "ConditionalFlow"]

FLOW_TYPES = ("maf", "nsf", "nsf_coupling", "realnvp")


class ConditionalAffineCoupling(nf.flows.Flow):
    """Affine coupling layer whose shift and log-scale depend on a context.

    The dimensions in ``transformed`` move as y_t = z_t · exp(s) + t, with
    (s, t) = conditioner(z_c, context) computed from the other dimensions z_c
    and the context. For one-dimensional y there are no other dimensions and
    the conditioner sees the context alone (a conditional affine map).

    Parameters
    ----------
    features : int
        Number of dimensions of y.
    transformed : sequence of int
        Indices of the dimensions this layer moves (the rest condition it).
    context_features : int
        Size of the context vector.
    hidden : sequence of int
        Hidden widths of the conditioner.
    activation : str
        Conditioner activation.
    max_log_scale : float
        The log-scale is bounded smoothly by ``max_log_scale · tanh(s / max_log_scale)``
        so that one layer can never stretch by more than e^±max_log_scale,
        which keeps early training stable.

    Examples
    --------
    >>> layer = ConditionalAffineCoupling(2, transformed=[1], context_features=3, hidden=(16,))
    >>> z, context = torch.randn(5, 2), torch.randn(5, 3)
    >>> y, log_det = layer(z, context)
    >>> back, inv_log_det = layer.inverse(y, context)
    >>> bool(torch.allclose(back, z, atol=1e-6) and torch.allclose(log_det, -inv_log_det))
    True
    """

    def __init__(self, features: int, transformed, context_features: int, hidden=(64, 64),
                 activation: str = "relu", max_log_scale: float = 3.0):
        super().__init__()
        transformed = sorted(int(i) for i in transformed)
        conditioning = [i for i in range(features) if i not in transformed]
        if not transformed:
            raise ValueError("transformed must name at least one dimension")
        self.register_buffer("transformed", torch.tensor(transformed, dtype=torch.long), persistent=False)
        self.register_buffer("conditioning", torch.tensor(conditioning, dtype=torch.long), persistent=False)
        self.max_log_scale = float(max_log_scale)
        self.conditioner = make_mlp(len(conditioning) + context_features, hidden, 2 * len(transformed), activation)
        # start as the identity map: a deep flow is then well-conditioned at initialisation
        nn.init.zeros_(self.conditioner[-1].weight)
        nn.init.zeros_(self.conditioner[-1].bias)

    def _shift_log_scale(self, z: torch.Tensor, context: torch.Tensor | None):
        if context is None:
            raise ValueError("ConditionalAffineCoupling needs a context tensor (batch, context_features)")
        inputs = torch.cat([z[:, self.conditioning], context], dim=1)
        shift, log_scale = self.conditioner(inputs).chunk(2, dim=1)
        return shift, self.max_log_scale * torch.tanh(log_scale / self.max_log_scale)

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None):
        """Noise side → data side; returns (y, log|det ∂y/∂z|)."""
        shift, log_scale = self._shift_log_scale(z, context)
        out = z.clone()
        out[:, self.transformed] = z[:, self.transformed] * torch.exp(log_scale) + shift
        return out, log_scale.sum(1)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None):
        """Data side → noise side; returns (z, log|det ∂z/∂y|)."""
        shift, log_scale = self._shift_log_scale(y, context)
        out = y.clone()
        out[:, self.transformed] = (y[:, self.transformed] - shift) * torch.exp(-log_scale)
        return out, -log_scale.sum(1)


class _DensityDirection(nf.flows.Flow):
    """Run a layer written in the data → noise convention inside normflows' noise → data one.

    ``nf.flows.MaskedAffineAutoregressive`` keeps nflows' orientation, so in
    normflows its one-pass direction is sampling and evaluating the density
    takes d sequential passes, an inverse autoregressive flow in effect.
    Swapping the directions gives the MAF of Papamakarios et al. (2017): the
    density (what training evaluates) in one pass, sampling in d passes.
    """

    def __init__(self, layer: nf.flows.Flow):
        super().__init__()
        self.layer = layer

    def forward(self, z, context=None):
        return self.layer.inverse(z, context=context)

    def inverse(self, y, context=None):
        return self.layer(y, context=context)


class _FlowNetwork(nn.Module):
    def __init__(self, features: FeatureNetwork, flow: nf.ConditionalNormalizingFlow, y_dim: int):
        super().__init__()
        self.features = features
        self.flow = flow
        self.y_scaler = Standardizer(y_dim)
        self.y_dim = y_dim

    def standardized_log_prob(self, x, y_std):
        return self.flow.log_prob(y_std, context=self.features(x))

    def log_prob(self, x, y):
        """log q(y | x) in raw units: the standardisation's Jacobian is subtracted."""
        return self.standardized_log_prob(x, self.y_scaler(y)) - self.y_scaler.log_abs_det()

    def sample(self, x, n: int, generator: torch.Generator):
        """(rows, n, d) draws in raw units; the context of each row is repeated n times."""
        noise = torch.randn((n_rows(x) * n, self.y_dim), generator=generator)
        return self.transform_noise(x, noise, n).reshape(-1, n, self.y_dim)

    def transform_noise(self, x, noise: torch.Tensor, counts) -> torch.Tensor:
        """Draws (N, d) in raw units from standard-normal base noise (N, d).

        ``counts`` (an int, or one per row of x summing to N) says how many
        consecutive noise rows belong to each row of x. Whoever supplies the
        noise decides the random streams (e.g. one per catalogue row).
        """
        features = self.features(x)
        try:  # checked on the host: no device synchronisation
            counts = np.broadcast_to(np.asarray(counts, dtype=np.int64), (features.shape[0],))
        except ValueError:
            raise ValueError(f"counts must be one number or one per input row ({features.shape[0]}), "
                             f"got {np.shape(counts)}") from None
        total = int(counts.sum())
        if total != noise.shape[0]:
            raise ValueError(f"counts give {total} noise rows, but noise has {noise.shape[0]}")
        # a copy: broadcast_to gives a read-only view, which torch warns about on stderr
        context = features.repeat_interleave(torch.as_tensor(counts.copy(), device=features.device), dim=0,
                                             output_size=total)
        base = self.flow.q0  # fixed standard normal, see _build
        y_std = self.flow.forward(base.loc + torch.exp(base.log_scale) * noise.to(context), context=context)
        return self.y_scaler.inverse(y_std)


@register_estimator
class ConditionalFlow(Estimator):
    """Conditional normalising flow q(y | x) (normflows layers, context = feature network output).

    Parameters
    ----------
    flow : {"nsf", "nsf_coupling", "maf", "realnvp"}
        Layer type: neural spline (autoregressive rational-quadratic),
        masked affine autoregressive, or affine coupling.
    n_transforms : int
        Number of flow layers.
    hidden_features : int
        Width of each layer's conditioner network.
    n_blocks : int
        Residual blocks of the MADE / residual conditioner (``maf``, ``nsf``);
        hidden layers of the coupling conditioner (``realnvp``).
    embedding : nn.Module, optional
        Network in front of the flow that turns x into the context.
    n_bins : int
        Spline bins per dimension (``nsf`` and ``nsf_coupling``).
    tail_bound : float
        The splines act on [−tail_bound, tail_bound] of standardised y and
        are the identity outside (``nsf`` and ``nsf_coupling``).
    activation : str
        Conditioner activation: ``"relu"``, ``"silu"``, ``"tanh"``, ``"gelu"``, ``"elu"``.

    Notes
    -----
    y is standardised inside the model; :meth:`log_prob` is in raw units
    (Jacobian included). For one-dimensional y the affine types (``maf``,
    ``realnvp``) compose affine maps of a Gaussian, so they can only learn a
    conditional *Gaussian*; use ``nsf`` (or an MDN) for skewed or
    multi-modal 1-D targets. Affine layers split a mode only through the
    shift's dependence on the other coordinates, so on multi-modal targets
    they need more layers (``realnvp``) or wider conditioners (``maf``) than
    splines. :meth:`predict` is a Monte Carlo summary of
    ``predict_draws`` = 1000 seeded draws per object, so its mean carries a
    relative error of about std/√1000 ≈ 3 % of the spread.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (2000, 1)); y = np.hstack([x, x**2]) + 0.1 * rng.normal(size=(2000, 2))
    >>> flow = ConditionalFlow("maf", n_transforms=2, hidden_features=16)
    >>> _ = flow.fit(x, y, epochs=5, progress=False)
    >>> flow.sample(10, x[:3], seed=0).shape
    (3, 10, 2)
    >>> flow.log_prob(y[:4], x[:4]).shape
    (4,)
    """

    #: Monte Carlo draws per object behind :meth:`predict`
    predict_draws = 1000
    #: at most this many (object, draw) pairs go through the flow at once
    sample_batch_size = 65536

    def __init__(self, flow: str = "nsf", n_transforms: int = 5, hidden_features: int = 64, n_blocks: int = 2,
                 embedding: nn.Module | None = None, n_bins: int = 8, tail_bound: float = 4.0,
                 activation: str = "relu"):
        super().__init__(embedding)
        if flow not in FLOW_TYPES:
            raise ValueError(f"flow must be one of {list(FLOW_TYPES)}, got {flow!r}")
        for name, value in {"n_transforms": n_transforms, "hidden_features": hidden_features,
                            "n_blocks": n_blocks, "n_bins": n_bins}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (tail_bound > 0 and math.isfinite(tail_bound)):
            raise ValueError(f"tail_bound must be positive, got {tail_bound!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.flow = flow
        self.n_transforms = n_transforms
        self.hidden_features = hidden_features
        self.n_blocks = n_blocks
        self.n_bins = n_bins
        self.tail_bound = float(tail_bound)
        self.activation = activation

    def get_config(self) -> dict:
        return {"flow": self.flow, "n_transforms": self.n_transforms, "hidden_features": self.hidden_features,
                "n_blocks": self.n_blocks, "embedding": self._embedding_config(), "n_bins": self.n_bins,
                "tail_bound": self.tail_bound, "activation": self.activation}

    def _infer_dims(self, x, y) -> dict:
        dims = super()._infer_dims(x, y)
        if dims["y_dim"] == 1 and self.flow == "nsf_coupling":
            raise ValueError("flow='nsf_coupling' needs at least two dimensions of y; use 'nsf'")
        if dims["y_dim"] == 1 and self.flow != "nsf":
            warnings.warn(f"a {self.flow!r} flow on one-dimensional y is a conditional Gaussian (a chain of affine "
                          "maps); use flow='nsf' or MixtureDensityNetwork for skewed or multi-modal targets",
                          UserWarning, stacklevel=3)
        return dims

    def _layer(self, index: int, y_dim: int, context: int) -> nf.flows.Flow:
        act_class = ACTIVATIONS[self.activation]
        if self.flow == "maf":
            act = act_class()  # MADE calls its activation as a function of a tensor
            return _DensityDirection(nf.flows.MaskedAffineAutoregressive(
                y_dim, self.hidden_features, context_features=context, num_blocks=self.n_blocks, activation=act))
        if self.flow == "nsf":
            return nf.flows.AutoregressiveRationalQuadraticSpline(
                y_dim, self.n_blocks, self.hidden_features, num_context_channels=context, num_bins=self.n_bins,
                tail_bound=self.tail_bound, activation=act_class)
        if self.flow == "nsf_coupling":
            if y_dim < 2:
                raise ValueError("flow='nsf_coupling' needs at least two dimensions of y; use 'nsf'")
            return nf.flows.CoupledRationalQuadraticSpline(
                y_dim, self.n_blocks, self.hidden_features, num_context_channels=context, num_bins=self.n_bins,
                tail_bound=self.tail_bound, activation=act_class, reverse_mask=bool(index % 2))
        # realnvp: alternate which half of the dimensions moves; 1-D y always moves
        half = torch.arange(y_dim)
        moves = half[half % 2 == index % 2] if y_dim > 1 else half
        return ConditionalAffineCoupling(y_dim, moves.tolist(), context,
                                         hidden=(self.hidden_features,) * self.n_blocks, activation=self.activation)

    def _build(self) -> nn.Module:
        y_dim = self.dims["y_dim"]
        features = FeatureNetwork(self.dims["x_features"], self._fresh_embedding())
        context = self._context_dim()
        layers: list[nf.flows.Flow] = []
        for index in range(self.n_transforms):
            layers.append(self._layer(index, y_dim, context))
            if y_dim > 1:
                layers.append(nf.flows.LULinearPermute(y_dim))
        # a fixed standard-normal base: the layers already learn any shift and scale
        base = nf.distributions.DiagGaussian(y_dim, trainable=False)
        return _FlowNetwork(features, nf.ConditionalNormalizingFlow(base, layers), y_dim)

    def _loss(self, x, y):
        return -self.network.standardized_log_prob(x, self.network.y_scaler(y)).mean()

    # ------------------------------------------------------------------ density
    def log_prob(self, y, x):
        """log q(y | x) per row in the units of raw y; one row of x or y is broadcast against many."""
        self._require_fitted()
        inputs, target = self._check_x(x), self._check_y(y)
        target, inputs = self._broadcast(target, inputs)
        return self._output(self._batched(self.network.log_prob, inputs, target), x)

    def sample(self, n: int, x, seed: int | None = None):
        """``n`` draws from q(y | x) per row of x: shape (m, n, d); ``seed`` makes them reproducible."""
        self._require_fitted()
        n = self._check_n(n)
        inputs = self._check_x(x)
        generator = make_generator(seed)
        rows = max(1, self.sample_batch_size // n)
        draws = self._batched(lambda xb: self.network.sample(xb, n, generator), inputs, batch_size=rows)
        return self._output(draws, x)

    def predict(self, x) -> Prediction:
        """Mean and standard deviation of ``predict_draws`` seeded draws per row, each (m, d)."""
        draws = self.sample(self.predict_draws, x, seed=0)
        if not isinstance(draws, torch.Tensor):
            return Prediction(draws.mean(1), draws.std(1, ddof=1))
        return Prediction(draws.mean(1), draws.std(1, correction=1))
