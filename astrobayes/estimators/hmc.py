"""Hamiltonian Monte Carlo over all the weights of a small network.

The gold standard of Bayesian neural networks for small problems (Neal 1996,
"Bayesian Learning for Neural Networks"): draws from the exact posterior
p(w, σ | D) ∝ p(D | w, σ) p(w) p(σ) of a small MLP, rather than an
approximation of it. HMC (Duane et al. 1987; Neal 2011, "MCMC using
Hamiltonian dynamics") proposes by integrating Hamilton's equations with the
leapfrog scheme, using the gradient of the log posterior (torch autograd,
full batch), and accepts with a Metropolis test on the energy error.

The step size is tuned during warm-up by dual averaging towards a target
acceptance probability (Hoffman & Gelman 2014, JMLR 15, 1593, section 3.2),
and a diagonal mass matrix is estimated from the middle of the warm-up (as
Stan does). Sampling starts from the maximum a posteriori weights found with
the one training loop, so the warm-up can be short.

Cost grows with the number of training points times the number of leapfrog
steps: this is a tool for ≲ 10⁴ points and ≲ 10⁴ weights.
"""
from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from ..core.seeding import make_generator
from ..core.serialization import register_estimator
from ..core.standardize import Standardizer
from ..core.validation import n_rows
from .base import FeatureNetwork
from .bayesian import FlatMLP, WeightMixture, _n_train
from .layers import hidden_sizes
from .training import TrainingConfig, show_progress, training_config

__all__ = ["HMCBNN", "HMCResult", "hamiltonian_monte_carlo"]

#: prior std of log σ (σ: the noise in standardised units of y); wide, so the data decide
_LOG_NOISE_PRIOR_STD = 2.0
#: an energy error this large means the trajectory flew off (a divergence)
_DIVERGENCE = 1000.0


class HMCResult(NamedTuple):
    """What :func:`hamiltonian_monte_carlo` returns."""

    samples: torch.Tensor  #: (n_samples, P) kept draws
    acceptance_rate: float  #: fraction of accepted proposals after warm-up
    step_size: float  #: the (adapted) leapfrog step size used after warm-up
    n_divergent: int  #: trajectories after warm-up whose energy error exceeded 1000
    inverse_mass: torch.Tensor  #: (P,) diagonal inverse mass matrix used after warm-up


class _DualAveraging:
    """Step-size adaptation of Hoffman & Gelman (2014), eq. (6) and Algorithm 5."""

    def __init__(self, step_size: float, target: float, gamma: float = 0.05, t0: float = 10.0, kappa: float = 0.75):
        self.mu = math.log(10 * step_size)  # bias the search towards larger steps
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.count, self.h_bar, self.log_step_bar = 0, 0.0, 0.0

    def update(self, accept_prob: float) -> float:
        self.count += 1
        weight = 1.0 / (self.count + self.t0)
        self.h_bar = (1 - weight) * self.h_bar + weight * (self.target - accept_prob)
        log_step = self.mu - math.sqrt(self.count) / self.gamma * self.h_bar
        eta = self.count ** -self.kappa
        self.log_step_bar = eta * log_step + (1 - eta) * self.log_step_bar
        return math.exp(log_step)

    @property
    def final(self) -> float:
        return math.exp(self.log_step_bar)


def _potential(log_prob_fn: Callable, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """U = −log p(θ) and its gradient, by autograd."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        value = -log_prob_fn(theta)
        (grad,) = torch.autograd.grad(value, theta)
    return value.detach(), grad


def _leapfrog(potential, theta, momentum, grad, step, n_steps, inverse_mass):
    momentum = momentum - 0.5 * step * grad
    for i in range(n_steps):
        theta = theta + step * inverse_mass * momentum
        value, grad = potential(theta)
        if not torch.isfinite(value):
            break
        momentum = momentum - (step if i < n_steps - 1 else 0.5 * step) * grad
    return theta, momentum, value, grad


def _energy(value, momentum, inverse_mass) -> float:
    return float(value + 0.5 * (inverse_mass * momentum ** 2).sum())


def _log_accept(h0: float, h1: float) -> float:
    return h0 - h1 if math.isfinite(h1) else -math.inf


def _reasonable_step(potential, theta, value, grad, inverse_mass, generator, step: float = 0.1) -> float:
    """Double or halve the step until one leapfrog step's acceptance crosses 1/2 (Hoffman & Gelman, Alg. 4)."""
    def log_ratio(eps):
        momentum = _momentum(inverse_mass, generator)
        _, new_momentum, new_value, _ = _leapfrog(potential, theta, momentum, grad, eps, 1, inverse_mass)
        return _log_accept(_energy(value, momentum, inverse_mass), _energy(new_value, new_momentum, inverse_mass))

    def good(eps):
        return log_ratio(eps) > math.log(0.5)

    if good(step):
        for _ in range(60):
            if not good(2 * step):
                break
            step *= 2
    else:
        for _ in range(60):
            step /= 2
            if good(step):
                break
    return step


def _momentum(inverse_mass, generator):
    z = torch.randn(inverse_mass.shape, generator=generator, dtype=torch.float64).to(inverse_mass)
    return z / inverse_mass.sqrt()


def _mass_windows(n_warmup: int) -> list[int]:
    """Ends of the mass-matrix windows: sizes b, 2b, 4b filling warm-up 15 %–75 % (Stan's doubling scheme).

    Each window's variance estimate is made under the previous (better)
    metric, so a window that started too close to the initial mode is
    corrected by the next one.
    """
    start, end = int(0.15 * n_warmup), int(0.75 * n_warmup)
    if end - start < 20:
        return []
    base = (end - start) / 7
    return [start + round(base), start + round(3 * base), end]


def hamiltonian_monte_carlo(log_prob_fn: Callable[[torch.Tensor], torch.Tensor], initial: torch.Tensor, *,
                            n_samples: int = 200, n_warmup: int = 500, thin: int = 1, n_leapfrog: int = 50,
                            step_size: float | None = None, target_accept: float = 0.8, jitter: bool = True,
                            adapt_mass: bool = True, seed: int | None = None, progress: bool | None = None,
                            description: str = "HMC") -> HMCResult:
    """Draw from exp(log_prob_fn(θ)) with HMC, adapting the step size and a diagonal mass matrix.

    Parameters
    ----------
    log_prob_fn : callable
        θ (P,) → scalar log density (up to a constant), differentiable by autograd.
    initial : tensor (P,)
        Starting point (a mode is ideal); its dtype and device are used throughout.
    n_samples, n_warmup, thin : int
        Kept draws, warm-up iterations (discarded) and iterations per kept draw.
    n_leapfrog : int
        Leapfrog steps per trajectory; with ``jitter`` drawn uniformly from
        [n_leapfrog/2, 3 n_leapfrog/2] each iteration, which avoids periodic
        trajectories that would return to their start.
    step_size : float, optional
        Fixed step size; None adapts it by dual averaging during warm-up.
    target_accept : float
        Mean acceptance probability the step-size adaptation aims for.
    adapt_mass : bool
        Estimate a diagonal inverse mass matrix (the posterior variances) in
        three growing windows of warm-up iterations 15 %–75 %; the step size
        is re-tuned after each.
    seed : int or None
        Seeds momenta, jitter and accept decisions.
    progress : bool or None
        tqdm bar; None shows it only when stderr is a terminal.

    Returns
    -------
    HMCResult

    Examples
    --------
    >>> result = hamiltonian_monte_carlo(lambda t: -0.5 * (t ** 2).sum(), torch.zeros(3, dtype=torch.float64),
    ...                                  n_samples=500, n_warmup=200, seed=1, progress=False)
    >>> result.samples.shape, bool(abs(result.samples.var(0).mean() - 1) < 0.25)
    (torch.Size([500, 3]), True)
    """
    from tqdm.auto import tqdm

    _check_sampler_options(n_samples, n_warmup, thin, n_leapfrog, step_size, target_accept)

    generator = make_generator(seed)
    potential = lambda t: _potential(log_prob_fn, t)  # noqa: E731
    theta = initial.detach().clone()
    value, grad = potential(theta)
    if not torch.isfinite(value):
        raise ValueError("the log density is not finite at the initial point")
    inverse_mass = torch.ones_like(theta)
    adapt_step = step_size is None
    step = _reasonable_step(potential, theta, value, grad, inverse_mass, generator) if adapt_step else step_size
    adaptation = _DualAveraging(step, target_accept) if adapt_step else None
    window_ends = _mass_windows(n_warmup) if adapt_mass else []
    window_start = int(0.15 * n_warmup)
    window_draws: list[torch.Tensor] = []

    kept, accepted, divergent = [], 0, 0
    total = n_warmup + n_samples * thin
    bar = tqdm(range(total), desc=description, disable=not show_progress(progress), leave=False, unit="it")
    for iteration in bar:
        n_steps = n_leapfrog
        if jitter:
            low, high = max(1, math.ceil(n_leapfrog / 2)), max(1, math.floor(1.5 * n_leapfrog))
            n_steps = int(torch.randint(low, high + 1, (1,), generator=generator))
        momentum = _momentum(inverse_mass, generator)
        h0 = _energy(value, momentum, inverse_mass)
        proposal = _leapfrog(potential, theta, momentum, grad, step, n_steps, inverse_mass)
        h1 = _energy(proposal[2], proposal[1], inverse_mass) if torch.isfinite(proposal[2]) else math.inf
        log_accept = _log_accept(h0, h1)
        is_accepted = math.log(float(torch.rand((), generator=generator, dtype=torch.float64))) < log_accept
        if is_accepted:
            theta, _, value, grad = proposal
        warming = iteration < n_warmup
        if warming:
            if adaptation is not None:
                step = adaptation.update(min(1.0, math.exp(min(log_accept, 0.0))))
            if window_ends and window_start <= iteration < window_ends[-1]:
                window_draws.append(theta)
            if iteration + 1 in window_ends and len(window_draws) > 1:
                draws = torch.stack(window_draws)
                window_draws = []
                count = draws.shape[0]
                # Stan's regularisation: shrink towards 1e-3 so a short window cannot give a zero variance
                inverse_mass = count / (count + 5.0) * draws.var(0) + 1e-3 * 5.0 / (count + 5.0)
                if adapt_step:
                    step = _reasonable_step(potential, theta, value, grad, inverse_mass, generator, step)
                    adaptation = _DualAveraging(step, target_accept)
            if iteration == n_warmup - 1 and adaptation is not None:
                step = adaptation.final
        else:
            accepted += is_accepted
            divergent += (h1 - h0) > _DIVERGENCE
            if (iteration - n_warmup + 1) % thin == 0:
                kept.append(theta)
        if iteration % 10 == 0:
            bar.set_postfix(step=f"{step:.3g}", accept=f"{accepted / max(1, iteration + 1 - n_warmup):.2f}",
                            phase="warm-up" if warming else "sampling")
    bar.close()
    return HMCResult(torch.stack(kept), accepted / (n_samples * thin), step, divergent, inverse_mass)


class _HMCNetwork(nn.Module):
    """Standardisers, the MAP parameters and the stored draws; parameters are [weights..., log σ]."""

    def __init__(self, features: FeatureNetwork, head: FlatMLP, y_dim: int, prior_std: float, n_samples: int):
        super().__init__()
        self.features = features
        self.head = head
        self.y_scaler = Standardizer(y_dim)
        self.y_dim = y_dim
        self.n_weights = head.n_params
        self.register_buffer("prior_scale", head.prior_scale(prior_std))
        self.map_params = nn.Parameter(torch.cat([head.initial_weights(), torch.zeros(y_dim)]))
        self.register_buffer("samples", torch.zeros(n_samples, head.n_params + y_dim))

    def forward(self, x_std, params):
        """Standardised means and σ, each (S, b, d), for parameter vectors (S, P + d)."""
        mean = self.head(params[:, :self.n_weights], x_std)
        return mean, params[:, self.n_weights:].exp()[:, None, :].expand_as(mean)

    def log_prior(self, params):
        weights, log_noise = params[..., :self.n_weights], params[..., self.n_weights:]
        return (-0.5 * (weights / self.prior_scale.to(params)) ** 2).sum(-1) \
            - 0.5 * ((log_noise / _LOG_NOISE_PRIOR_STD) ** 2).sum(-1)


def _gaussian_log_likelihood(mean, sigma, y_std):
    """Σ log N(y | mean, σ²) up to the constant −½ log 2π per value."""
    return (-0.5 * ((y_std - mean) / sigma) ** 2 - torch.log(sigma)).sum((-1, -2))


@register_estimator
class HMCBNN(WeightMixture):
    """Regression with a small MLP whose weights and noise σ are sampled by HMC.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths (keep the network small: every weight is sampled).
    prior_std : float
        Prior N(0, prior_std² / fan_in) on weight matrix entries and N(0, prior_std²)
        on biases, in standardised units of x and y. log σ ~ N(0, 2²).
    n_samples : int
        Posterior draws kept; predictions are their equal-weight mixture.
    n_warmup, thin, n_leapfrog, step_size, target_accept, jitter, adapt_mass
        Sampler settings, see :func:`hamiltonian_monte_carlo`.
    activation : str
        ``"tanh"`` (smooth, the classic choice of Neal 1996), ``"silu"``, ...

    Attributes
    ----------
    acceptance_rate, adapted_step_size, n_divergent, sampling_seconds
        Sampler diagnostics of the last fit (also in the saved JSON).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (100, 1)); y = x + 0.1 * rng.normal(size=x.shape)
    >>> bnn = HMCBNN(hidden=(8,), n_samples=50, n_warmup=100)
    >>> _ = bnn.fit(x, y, epochs=300, progress=False)
    >>> bnn.predict(np.array([[0.0]])).mean.shape, 0 < bnn.acceptance_rate <= 1
    ((1, 1), True)
    """

    def __init__(self, hidden: Sequence[int] = (32,), prior_std: float = 1.0, n_samples: int = 200,
                 n_warmup: int = 500, thin: int = 2, n_leapfrog: int = 50, step_size: float | None = None,
                 target_accept: float = 0.8, jitter: bool = True, adapt_mass: bool = True, activation: str = "tanh"):
        super().__init__(None)
        self.hidden = hidden_sizes(hidden)
        if not (isinstance(prior_std, (int, float)) and math.isfinite(prior_std) and prior_std > 0):
            raise ValueError(f"prior_std must be a positive number, got {prior_std!r}")
        self.prior_std = float(prior_std)
        # checked now rather than after the MAP fit
        _check_sampler_options(n_samples, n_warmup, thin, n_leapfrog, step_size, target_accept)
        self.n_samples, self.n_warmup, self.thin, self.n_leapfrog = int(n_samples), int(n_warmup), int(thin), \
            int(n_leapfrog)
        self.step_size = None if step_size is None else float(step_size)
        self.target_accept = float(target_accept)
        self.jitter, self.adapt_mass = bool(jitter), bool(adapt_mass)
        self.activation = activation
        FlatMLP(1, self.hidden, 1, activation)  # validate the options now
        self._n_train = 1
        self.acceptance_rate = math.nan
        self.adapted_step_size = math.nan
        self.n_divergent = 0
        self.sampling_seconds = math.nan

    def get_config(self) -> dict:
        return {"hidden": list(self.hidden), "prior_std": self.prior_std, "n_samples": self.n_samples,
                "n_warmup": self.n_warmup, "thin": self.thin, "n_leapfrog": self.n_leapfrog,
                "step_size": self.step_size, "target_accept": self.target_accept, "jitter": self.jitter,
                "adapt_mass": self.adapt_mass, "activation": self.activation}

    def _build(self) -> nn.Module:
        features = FeatureNetwork(self.dims["x_features"], None)
        head = FlatMLP(self._context_dim(), self.hidden, self.dims["y_dim"], self.activation)
        return _HMCNetwork(features, head, self.dims["y_dim"], self.prior_std, self.n_samples)

    def fit(self, x, y, config: TrainingConfig | None = None, validation=None, *, ood: bool | str = True, **changes):
        """Find the MAP weights with the one training loop, then run HMC from there.

        Without a ``config`` the MAP stage runs full-batch (``batch_size`` = n,
        no validation split, 1000 epochs of Adam at learning rate 0.01 with
        cosine decay); keyword arguments override single options. The
        sampler uses ``config.seed``, ``config.device`` and ``config.progress``.

        Returns
        -------
        History
            Of the MAP stage.
        """
        n = n_rows(self._check_x(x))
        if config is None:
            config = TrainingConfig(epochs=1000, batch_size=max(1, n), learning_rate=1e-2, validation_fraction=0.0,
                                    patience=None, scheduler="cosine")
        config = training_config(config, **changes)
        self._n_train = n if validation is not None else _n_train(n, config)
        return super().fit(x, y, config, validation=validation, ood=ood)

    def _loss(self, x, y):
        # −log posterior per training row, estimated on a mini-batch: the prior is spread over N_train rows
        net = self.network
        params = net.map_params[None]
        mean, sigma = net(net.features(x), params)
        log_lik = _gaussian_log_likelihood(mean, sigma, net.y_scaler(y)) / x.shape[0]
        return -(log_lik + net.log_prior(params)[0] / self._n_train).squeeze()

    def _after_fit(self, x, y, config: TrainingConfig) -> None:
        net = self.network
        device = next(net.parameters()).device  # where fit_module trained it (cuda:LOCAL_RANK under torchrun)
        with torch.no_grad():
            x_std = net.features(x.to(device)).double()
            y_std = net.y_scaler(y.to(device)).double()

        def log_posterior(theta):
            params = theta[None]
            mean, sigma = net(x_std, params)
            return _gaussian_log_likelihood(mean, sigma, y_std) + net.log_prior(params)[0]

        start = time.perf_counter()
        seed = None if config.seed is None else config.seed + 1  # a stream apart from the MAP fit's
        result = hamiltonian_monte_carlo(
            log_posterior, net.map_params.detach().double(), n_samples=self.n_samples, n_warmup=self.n_warmup,
            thin=self.thin, n_leapfrog=self.n_leapfrog, step_size=self.step_size, target_accept=self.target_accept,
            jitter=self.jitter, adapt_mass=self.adapt_mass, seed=seed, progress=config.progress,
            description="HMC over the weights")
        net.samples.copy_(result.samples.to(net.samples))
        self.acceptance_rate, self.adapted_step_size = result.acceptance_rate, result.step_size
        self.n_divergent, self.sampling_seconds = result.n_divergent, time.perf_counter() - start

    def _weight_draws(self) -> torch.Tensor:
        return self.network.samples

    def _component_gaussians(self, x, draws):
        net = self.network
        mean, sigma = net(net.features(x), draws)
        return net.y_scaler.inverse(mean.flatten(0, 1)).view_as(mean), sigma * net.y_scaler.scale

    def _sampler_header(self) -> dict:
        return {"acceptance_rate": self.acceptance_rate, "adapted_step_size": self.adapted_step_size,
                "n_divergent": int(self.n_divergent), "sampling_seconds": self.sampling_seconds}

    def _extra_header(self) -> dict:
        header = super()._extra_header()
        header["hmc"] = self._sampler_header()
        return header

    @classmethod
    def _from_state(cls, header: dict, tensors: dict):
        header = dict(header)
        stats = header.pop("hmc", None) or {}
        model = super()._from_state(header, tensors)
        for name, value in stats.items():
            setattr(model, name, math.nan if value is None else value)
        return model


def _check_sampler_options(n_samples, n_warmup, thin, n_leapfrog, step_size, target_accept) -> None:
    for name, value in {"n_samples": n_samples, "thin": thin, "n_leapfrog": n_leapfrog}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(n_warmup, bool) or not isinstance(n_warmup, (int, np.integer)) or n_warmup < 0:
        raise ValueError(f"n_warmup must be a non-negative integer, got {n_warmup!r}")
    if step_size is not None and not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive number or None, got {step_size!r}")
    if not (isinstance(target_accept, (int, float)) and 0 < target_accept < 1):
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
