"""Per-object importance proposals for marginalising latents in a hierarchical model.

Draws shared by all objects from a broad proposal q₀ (the maps' training
domain) waste most of their weight: one star's luminosity pins its mass to a
few per cent of the mass range, so only that fraction of the draws counts.
:func:`defensive_proposal` fits, per object, a Gaussian to the pilot
importance weights and mixes it with q₀,

    q_i(z) = (1 − ε) · TN(z; m_i, (c·s_i)², domain) + ε · q₀(z),

a *defensive* mixture (Hesterberg 1995, Technometrics 37, 185): the ε·q₀
part bounds every weight p/q_i by p/(ε q₀), so the estimator can never be
worse than 1/ε times plain sampling from q₀, while the Gaussian part puts
most draws where the object's likelihood is. The truncated normal TN is
diagonal and restricted to q₀'s box, so its density is exact.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from astrobayes.core.seeding import make_generator
from astrobayes.inference.priors import JointPrior

__all__ = ["defensive_proposal"]


def defensive_proposal(pilot: torch.Tensor, pilot_log_weights: torch.Tensor, base: JointPrior, n_draws: int,
                       seed: int | None = 0, inflate: float = 2.0, defensive: float = 0.1):
    """Per-object draws from a defensive mixture fitted to pilot importance weights.

    Parameters
    ----------
    pilot : tensor (K₀, d)
        Draws from ``base`` (q₀).
    pilot_log_weights : tensor (N, K₀)
        Unnormalised log importance weights of every pilot draw for each
        object; rows that are all -inf fall back to q₀ alone.
    base : JointPrior
        q₀; its bounds are the domain.
    n_draws : int
        Draws per object.
    inflate : float
        Factor on the weighted standard deviation (c above): wider than the
        pilot's estimate, because the pilot mixes over hyperparameters and
        is itself noisy.
    defensive : float
        ε, the weight of q₀ in the mixture.

    Returns
    -------
    draws : tensor (N, n_draws, d) float64
    log_q : tensor (N, n_draws) float64
        log q_i of each draw.

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
    n_objects, (k0, dim) = pilot_log_weights.shape[0], pilot.shape
    low, high = torch.as_tensor(base.low), torch.as_tensor(base.high)

    usable = torch.isfinite(pilot_log_weights).any(dim=1)
    weights = torch.softmax(torch.where(usable[:, None], pilot_log_weights, 0.0), dim=1)  # (N, K₀)
    mean = weights @ pilot
    spread = (weights @ pilot**2 - mean**2).clamp_min(0).sqrt()
    # a floor at the pilot's own resolution: the spacing of K₀ draws of q₀ in d dimensions
    floor = pilot.std(dim=0) * k0 ** (-1.0 / dim)
    scale = torch.maximum(inflate * spread, floor)
    gaussian = Normal(mean[:, None, :], scale[:, None, :])
    lo_cdf, hi_cdf = gaussian.cdf(low), gaussian.cdf(high)  # (N, 1, d)
    box_mass = (hi_cdf - lo_cdf).clamp_min(1e-300)

    generator = make_generator(seed)
    u = torch.rand((n_objects, n_draws, dim), generator=generator, dtype=torch.float64)
    u = (lo_cdf + u * box_mass).clamp(1e-15, 1 - 1e-15)
    local = gaussian.icdf(u).clamp(low, high)
    broad = base.sample((n_objects, n_draws), seed=int(torch.randint(2**62, (1,), generator=generator)))
    from_base = torch.rand((n_objects, n_draws), generator=generator, dtype=torch.float64) < defensive
    from_base |= ~usable[:, None]
    draws = torch.where(from_base[..., None], broad, local)

    log_local = (gaussian.log_prob(draws) - torch.log(box_mass)).sum(-1)
    log_base = base.log_prob(draws)
    mixture = torch.logaddexp(math.log1p(-defensive) + log_local, math.log(defensive) + log_base) \
        if defensive < 1 else log_base
    log_q = torch.where(usable[:, None], mixture, log_base)
    return draws, log_q
