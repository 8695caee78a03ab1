"""Per-object importance proposals for marginalising latents in a hierarchical model.

Draws shared by all objects from a broad proposal q₀ (the maps' training
domain) waste most of their weight: one star's luminosity pins its mass to a
few per cent of the mass range, so only that fraction of the draws counts.
:func:`defensive_proposal` fits, per object, a Gaussian to the pilot
importance weights and mixes it with q₀,

    q_i(z) = (1 − ε) · N(z; m_i, c² S_i) + ε · q₀(z),

a *defensive* mixture (Hesterberg 1995, Technometrics 37, 185): the ε·q₀
part bounds every weight p/q_i by p/(ε q₀), so the estimator can never be
worse than 1/ε times plain sampling from q₀, while the Gaussian part puts
most draws where the object's likelihood is. The Gaussian has the full
covariance S_i of the pilot weights (a star's luminosity ties its mass to
its metallicity along a tilted ridge), inflated by c. Its draws that fall
outside q₀'s domain get zero weight (log q = +inf) — the integrand vanishes
there — so no truncation constant is needed. For log-uniform components
(masses, luminosities over decades) the Gaussian lives in log z, with the
Jacobian 1/z in the density.
"""
from __future__ import annotations

import math

import torch

from astrobayes.core.seeding import make_generator
from astrobayes.inference.priors import JointPrior, LogUniform

__all__ = ["defensive_proposal"]


def defensive_proposal(pilot: torch.Tensor, pilot_log_weights: torch.Tensor, base: JointPrior, n_draws: int,
                       seed: int | None = 0, inflate: float = 1.5, defensive: float = 0.1):
    """Per-object draws from a defensive mixture fitted to pilot importance weights.

    Parameters
    ----------
    pilot : tensor (K₀, d) or (N, K₀, d)
        Pilot draws: shared by all objects (e.g. from ``base``) or one set per
        object (e.g. from an earlier defensive proposal).
    pilot_log_weights : tensor (N, K₀)
        Unnormalised log importance weights of every pilot draw for each
        object; rows that are all -inf fall back to q₀ alone.
    base : JointPrior
        q₀; its bounds are the domain.
    n_draws : int
        Draws per object.
    inflate : float
        Factor on the weighted standard deviations (c above): wider than the
        pilot's estimate, because the pilot is itself noisy.
    defensive : float
        ε, the weight of q₀ in the mixture.

    Returns
    -------
    draws : tensor (N, n_draws, d) float64
    log_q : tensor (N, n_draws) float64
        log q_i of each draw; +inf marks a draw that must get zero weight.

    Examples
    --------
    >>> from astrobayes.inference.priors import BoxUniform
    >>> base = BoxUniform([-5.0], [5.0])
    >>> pilot = base.sample(2000, seed=0)
    >>> log_w = -0.5 * ((pilot[:, 0] - torch.tensor([[1.0], [-2.0]])) / 0.1) ** 2  # two objects
    >>> draws, log_q = defensive_proposal(pilot, log_w, base, 500)
    >>> draws.shape, [round(float(v), 1) for v in draws[:, :, 0].median(dim=1).values]
    (torch.Size([2, 500, 1]), [1.0, -2.0])
    """
    if not 0 < defensive <= 1:
        raise ValueError(f"defensive must be in (0, 1], got {defensive!r}")
    if inflate <= 0:
        raise ValueError(f"inflate must be positive, got {inflate!r}")
    pilot, pilot_log_weights = pilot.to(torch.float64), pilot_log_weights.to(torch.float64)
    if pilot.ndim == 2:
        pilot = pilot[None]
    n_objects, (k0, dim) = pilot_log_weights.shape[0], pilot.shape[1:]
    if pilot.shape[0] not in (1, n_objects) or pilot_log_weights.shape[1] != k0:
        raise ValueError(f"pilot of shape {tuple(pilot.shape)} does not match pilot_log_weights of shape "
                         f"{tuple(pilot_log_weights.shape)}")
    if k0 < 2:
        raise ValueError(f"pilot needs at least 2 draws, got {k0}")
    # work in log z for log-uniform components: there a Gaussian fits what the data pin down
    logged = torch.tensor([isinstance(c, LogUniform) for c in base.components])
    low, high = torch.as_tensor(base.low), torch.as_tensor(base.high)
    low, high = torch.where(logged, torch.log(low), low), torch.where(logged, torch.log(high), high)
    pilot_t = torch.where(logged, torch.log(pilot), pilot)

    usable = torch.isfinite(pilot_log_weights).any(dim=1)
    weights = torch.softmax(torch.where(usable[:, None], pilot_log_weights, 0.0), dim=1)  # (N, K₀)
    mean = torch.einsum("nk,nkd->nd", weights, pilot_t.expand(n_objects, -1, -1))
    centred = pilot_t - mean[:, None]
    covariance = torch.einsum("nk,nkd,nke->nde", weights, centred, centred)
    # a floor at the pilot's own resolution (the spacing of K₀ draws in d dimensions) keeps the covariance
    # positive definite when one pilot draw carries all the weight
    floor = pilot_t.std(dim=1) * k0 ** (-1.0 / dim)  # (1 or N, d)
    covariance = inflate**2 * covariance + torch.diag_embed(floor.expand(n_objects, -1) ** 2)
    cholesky = torch.linalg.cholesky(covariance)  # (N, d, d)

    generator = make_generator(seed)
    noise = torch.randn((n_objects, n_draws, dim), generator=generator, dtype=torch.float64)
    local_t = mean[:, None] + noise @ cholesky.transpose(1, 2)
    inside = ((local_t >= low) & (local_t <= high)).all(dim=-1)
    local = torch.where(logged, torch.exp(local_t), local_t)
    broad = base.sample((n_objects, n_draws), seed=int(torch.randint(2**62, (1,), generator=generator)))
    from_base = torch.rand((n_objects, n_draws), generator=generator, dtype=torch.float64) < defensive
    from_base |= ~usable[:, None]
    # a Gaussian draw outside the domain stands in at the nearest inside point with zero weight (log q = +inf):
    # the integrand p(z | α) vanishes there, so dropping it keeps the estimator unbiased
    local = local.clamp(torch.as_tensor(base.low), torch.as_tensor(base.high))
    draws = torch.where(from_base[..., None], broad, local)
    outside = ~from_base & ~inside

    draws_t = torch.where(logged, torch.log(draws), draws)
    solved = torch.linalg.solve_triangular(cholesky[:, None], (draws_t - mean[:, None])[..., None], upper=False)
    log_gauss = (-0.5 * solved.squeeze(-1).pow(2).sum(-1) - torch.diagonal(cholesky, dim1=-2, dim2=-1).log().sum(-1)[:, None]
                 - 0.5 * dim * math.log(2 * math.pi))
    log_local = log_gauss - torch.where(logged, draws_t, torch.zeros_like(draws_t)).sum(-1)  # Jacobian of t = log z
    log_base = base.log_prob(draws)
    mixture = torch.logaddexp(math.log1p(-defensive) + log_local, math.log(defensive) + log_base) \
        if defensive < 1 else log_base
    log_q = torch.where(usable[:, None], mixture, log_base)
    log_q = torch.where(outside & usable[:, None], math.inf, log_q)
    return draws, log_q
