"""Bayesian neural networks: a distribution over the weights, not one setting.

:class:`VariationalBNN` is Bayes by backprop (Blundell et al. 2015, "Weight
Uncertainty in Neural Networks", ICML): a factorised Gaussian q(w) = Π N(μ_i, s_i²)
over every weight of the head, fitted by maximising the evidence lower bound

    ELBO = E_q[log p(D | w)] − KL(q ‖ p),

i.e. by minimising, per training row, NLL + KL / N_train with one
reparameterised weight draw per mini-batch. Predictions are the equal-weight
mixture over ``n_samples`` weight draws.

The pieces shared with :class:`~astrobayes.estimators.hmc.HMCBNN` live here
as well: :class:`FlatMLP` (an MLP evaluated for many weight vectors at once)
and :class:`WeightMixture` (predictions from a set of weight vectors).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.seeding import make_generator
from ..core.serialization import register_estimator
from ..core.standardize import Standardizer
from ..core.validation import n_rows
from .base import Estimator, FeatureNetwork, Prediction
from .ensemble import Uncertainty, component_choice, mixture_log_prob, mixture_moments
from .layers import ACTIVATIONS, hidden_sizes
from .training import TrainingConfig, training_config

__all__ = ["VariationalBNN", "FlatMLP", "WeightMixture"]

_LOG_2PI = math.log(2 * math.pi)
#: initial posterior std of each weight, as a fraction of its prior std: small,
#: so that training starts close to an ordinary network (Blundell et al. 2015)
_INITIAL_STD_FRACTION = 0.05


class FlatMLP:
    """A fully connected network whose weights are one flat vector, for many vectors at once.

    Layout per layer: the (out, in) weight matrix, then the bias. Calling it
    with weights (S, P) and inputs (b, in) returns (S, b, out): the network
    under each of S weight settings (posterior draws), in one batched matmul.

    Examples
    --------
    >>> mlp = FlatMLP(1, (8,), 2)
    >>> mlp(torch.zeros(5, mlp.n_params), torch.ones(3, 1)).shape
    torch.Size([5, 3, 2])
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, activation: str = "silu"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        widths = [int(in_features), *(int(h) for h in hidden), int(out_features)]
        if min(widths) < 1:
            raise ValueError(f"hidden layer sizes must be positive, got {tuple(hidden)}")
        self.shapes = list(zip(widths[:-1], widths[1:]))  # (fan_in, fan_out) per layer
        self.n_params = sum(i * o + o for i, o in self.shapes)
        self.activation = ACTIVATIONS[activation]()

    def prior_scale(self, prior_std: float) -> torch.Tensor:
        """Prior std per weight: prior_std / sqrt(fan_in) for matrices, prior_std for biases.

        The fan-in scaling (Neal 1996) keeps the prior over *functions* of the
        same size whatever the layer widths.
        """
        parts = []
        for fan_in, fan_out in self.shapes:
            parts += [torch.full((fan_in * fan_out,), prior_std / math.sqrt(fan_in)), torch.full((fan_out,), prior_std)]
        return torch.cat(parts)

    def initial_weights(self) -> torch.Tensor:
        """A draw like the usual initialisation: N(0, 1/fan_in) matrices, zero biases (global torch RNG)."""
        parts = []
        for fan_in, fan_out in self.shapes:
            parts += [torch.randn(fan_in * fan_out) / math.sqrt(fan_in), torch.zeros(fan_out)]
        return torch.cat(parts)

    def __call__(self, weights: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        draws = weights.shape[0]
        h = inputs.expand(draws, *inputs.shape)
        offset = 0
        for layer, (fan_in, fan_out) in enumerate(self.shapes):
            matrix = weights[:, offset:offset + fan_in * fan_out].view(draws, fan_out, fan_in)
            offset += fan_in * fan_out
            bias = weights[:, offset:offset + fan_out].unsqueeze(1)
            offset += fan_out
            h = torch.baddbmm(bias, h, matrix.transpose(1, 2))
            if layer < len(self.shapes) - 1:
                h = self.activation(h)
        return h


class WeightMixture(Estimator):
    """Predictions from a finite set of weight vectors: an equal-weight mixture of Gaussians.

    Subclasses implement ``_weight_draws()`` → (S, P) and
    ``_component_gaussians(x, draws)`` → raw-unit means and σ, each (S, b, d).
    """

    prediction_batch_size = 256  # S × batch × width activations must fit in memory

    def _weight_draws(self) -> torch.Tensor:
        raise NotImplementedError

    def _component_gaussians(self, x, draws) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _over_draws(self, fn, *arrays) -> torch.Tensor:
        draws = self._weight_draws().to(self.device)
        return self._batched(lambda xb, *rest: fn(*self._component_gaussians(xb, draws), *rest), *arrays)

    def log_prob(self, y, x):
        """log of the mixture density (1/S) Σ_s N(y | μ_s(x), σ_s(x)²), (m,), raw units of y."""
        self._require_fitted()
        inputs, target = self._check_x(x), self._check_y(y)
        target, inputs = self._broadcast(target, inputs)

        def fn(mean, sigma, yb):
            component = (-0.5 * ((yb - mean) / sigma) ** 2 - torch.log(sigma) - 0.5 * _LOG_2PI).sum(-1)
            return mixture_log_prob(component)

        return self._output(self._over_draws(fn, inputs, target), x)

    def _moments(self, x) -> torch.Tensor:
        inputs = self._check_x(x)
        return self._over_draws(lambda mean, sigma: torch.stack(
            [*mixture_moments(mean, sigma), sigma.pow(2).mean(0).sqrt()], 1), inputs)

    def predict(self, x) -> Prediction:
        """Mixture mean and standard deviation (law of total variance), each (m, d)."""
        self._require_fitted()
        moments = self._moments(x)
        return Prediction(self._output(moments[:, 0], x), self._output(moments[:, 1], x))

    def uncertainty(self, x) -> Uncertainty:
        """Noise (aleatoric) and weight (epistemic) parts of the predictive spread, each (m, d)."""
        self._require_fitted()
        moments = self._moments(x)
        return Uncertainty(self._output(moments[:, 3], x), self._output(moments[:, 2], x))

    def sample(self, n: int, x, seed: int | None = None):
        """``n`` draws per row of x: (m, n, d). Draw j of every row uses the same weight vector."""
        self._require_fitted()
        n = self._check_n(n)
        inputs = self._check_x(x)
        generator = make_generator(seed)
        choice = None

        def fn(mean, sigma):
            nonlocal choice
            if choice is None:
                choice = component_choice(mean.shape[0], n, generator).to(mean.device)
            mean, sigma = mean[choice].transpose(0, 1), sigma[choice].transpose(0, 1)  # (b, n, d)
            return mean + sigma * torch.randn(mean.shape, generator=generator).to(mean.device)

        return self._output(self._over_draws(fn, inputs), x)

    def interval(self, x, level: float = 0.9):
        """Central predictive interval per row and column: ``(lower, upper)``, each (m, d).

        Quantiles (1 ∓ level)/2 of the Gaussian mixture, found by bisection on
        its distribution function (exact up to 2⁻⁴⁰ of the bracket).
        """
        self._require_fitted()
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        inputs = self._check_x(x)
        probs = torch.tensor([(1 - level) / 2, (1 + level) / 2])

        def fn(mean, sigma):
            target = probs.to(mean)[:, None, None]
            low = (mean - 10 * sigma).min(0).values.expand(2, -1, -1).clone()
            high = (mean + 10 * sigma).max(0).values.expand(2, -1, -1).clone()
            for _ in range(40):
                mid = (low + high) / 2
                cdf = torch.special.ndtr((mid[:, None] - mean) / sigma).mean(1)  # (2, b, d)
                below = cdf < target
                low, high = torch.where(below, mid, low), torch.where(below, high, mid)
            return ((low + high) / 2).transpose(0, 1)  # (b, 2, d)

        both = self._over_draws(fn, inputs)
        return self._output(both[:, 0], x), self._output(both[:, 1], x)

    # ------------------------------------------------------------ files


def _n_train(n: int, config: TrainingConfig) -> int:
    """Rows left for training after the loop's validation split (as fit_module computes it)."""
    if config.validation_fraction > 0 and n >= 10:
        return n - max(1, int(round(config.validation_fraction * n)))
    return n


class _VariationalNetwork(nn.Module):
    def __init__(self, features: FeatureNetwork, head: FlatMLP, y_dim: int, prior_std: float, heteroscedastic: bool):
        super().__init__()
        self.features = features
        self.head = head
        self.y_scaler = Standardizer(y_dim)
        self.y_dim = y_dim
        self.heteroscedastic = heteroscedastic
        prior = head.prior_scale(prior_std)
        self.register_buffer("prior_scale", prior)
        self.weight_mean = nn.Parameter(head.initial_weights())
        # std = softplus(rho) stays positive without constraints
        self.weight_rho = nn.Parameter(torch.log(torch.expm1(_INITIAL_STD_FRACTION * prior)))
        # homoscedastic variant: one learned log σ per output (a point estimate)
        self.log_noise = nn.Parameter(torch.full((y_dim,), math.log(0.1))) if not heteroscedastic else None

    def weight_std(self) -> torch.Tensor:
        return F.softplus(self.weight_rho)

    def draw(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``count`` reparameterised weight draws (S, P): μ + s ⊙ ε."""
        eps = torch.randn((count, self.weight_mean.shape[0]), generator=generator)
        return self.weight_mean + self.weight_std() * eps.to(self.weight_mean)

    def kl(self) -> torch.Tensor:
        """KL(q ‖ p) for factorised Gaussians, summed over the weights."""
        std, prior = self.weight_std(), self.prior_scale
        return (torch.log(prior / std) + (std ** 2 + self.weight_mean ** 2) / (2 * prior ** 2) - 0.5).sum()

    def forward(self, x, weights):
        """Standardised means and σ, each (S, b, d), for weight draws (S, P)."""
        out = self.head(weights, self.features(x))
        if self.heteroscedastic:
            mean, raw = out.split(self.y_dim, dim=-1)
            return mean, F.softplus(raw) + 1e-4
        return out, self.log_noise.exp().expand_as(out)


@register_estimator
class VariationalBNN(WeightMixture):
    """Bayes-by-backprop regression: a Gaussian posterior over every weight of the head.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths of the Bayesian head.
    prior_std : float
        Prior N(0, prior_std² / fan_in) on each weight matrix entry and
        N(0, prior_std²) on each bias, in standardised units of x and y.
    n_samples : int
        Weight draws S whose mixture forms the predictions.
    heteroscedastic : bool
        True: the network predicts σ(x) as well; False: one learned noise σ per output.
    activation : str
        ``"silu"``, ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"elu"``.
    embedding : nn.Module, optional
        Deterministic network in front of the head (point-estimated weights).
    seed : int or None
        Seeds the S prediction draws, so that ``predict``/``log_prob`` are
        deterministic; None draws new weights on every call.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (500, 1)); y = x + 0.1 * rng.normal(size=x.shape)
    >>> bnn = VariationalBNN(hidden=(32,), n_samples=50)
    >>> _ = bnn.fit(x, y, epochs=50, learning_rate=1e-2, progress=False)
    >>> bnn.predict(np.array([[0.0], [4.0]])).std.shape
    (2, 1)
    """

    def __init__(self, hidden: Sequence[int] = (64, 64), prior_std: float = 1.0, n_samples: int = 100,
                 heteroscedastic: bool = True, activation: str = "silu", embedding: nn.Module | None = None,
                 seed: int | None = 0):
        super().__init__(embedding)
        self.hidden = hidden_sizes(hidden)
        if not (isinstance(prior_std, (int, float)) and math.isfinite(prior_std) and prior_std > 0):
            raise ValueError(f"prior_std must be a positive number, got {prior_std!r}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        self.prior_std = float(prior_std)
        self.n_samples = int(n_samples)
        self.heteroscedastic = bool(heteroscedastic)
        self.activation = activation
        self.seed = None if seed is None else int(seed)
        FlatMLP(1, self.hidden, 1, activation)  # validate the options now
        self._n_train = 1

    def get_config(self) -> dict:
        return {"hidden": list(self.hidden), "prior_std": self.prior_std, "n_samples": self.n_samples,
                "heteroscedastic": self.heteroscedastic, "activation": self.activation,
                "embedding": self._embedding_config(), "seed": self.seed}

    def _build(self) -> nn.Module:
        y_dim = self.dims["y_dim"]
        features = FeatureNetwork(self.dims["x_features"], self._fresh_embedding())
        head = FlatMLP(self._context_dim(), self.hidden, y_dim * (2 if self.heteroscedastic else 1), self.activation)
        return _VariationalNetwork(features, head, y_dim, self.prior_std, self.heteroscedastic)

    def fit(self, x, y, config: TrainingConfig | None = None, validation=None, *, ood: bool | str = True, **changes):
        """Maximise the ELBO with the one training loop (see :meth:`Estimator.fit`)."""
        config = training_config(config, **changes)
        # the KL term is shared by all N_train rows: its weight per row is 1 / N_train
        n = n_rows(self._check_x(x))
        self._n_train = n if validation is not None else _n_train(n, config)
        return super().fit(x, y, config, validation=validation, ood=ood)

    def _loss(self, x, y):
        net = self.network
        # one draw per mini-batch while training (Blundell et al.); a few for a steadier validation loss
        weights = net.draw(1 if net.training else 8)
        mean, sigma = net(x, weights)
        y_std = net.y_scaler(y)
        nll = (0.5 * ((y_std - mean) / sigma) ** 2 + torch.log(sigma) + 0.5 * _LOG_2PI).sum(-1).mean()
        return nll + net.kl() / self._n_train

    def _weight_draws(self) -> torch.Tensor:
        with torch.no_grad():
            return self.network.draw(self.n_samples, make_generator(self.seed))

    def _component_gaussians(self, x, draws):
        mean, sigma = self.network(x, draws)
        scaler = self.network.y_scaler
        return scaler.inverse(mean.flatten(0, 1)).view_as(mean), sigma * scaler.scale
