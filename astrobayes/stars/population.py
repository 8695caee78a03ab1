"""Stellar population models: initial mass functions and metallicity distributions.

These are the p(z | α) of the stellar hierarchical model, with per-star
latents ``log_mass`` = log10(M / M_sun) and ``feh`` = [Fe/H], and
hyperparameters α such as the IMF slope or the mean metallicity. Densities
are written in torch so that they broadcast over (walkers, stars, draws)
with hyperparameters shaped (m, 1, 1), exactly as
:class:`~astrobayes.inference.hierarchical.HierarchicalModel` calls them;
the samplers use a numpy ``Generator`` and serve the mock-catalogue
simulator.

Every density is normalised on its own domain: the IMF on
[m_min, m_max] and, when limits are given, the metallicity distribution on
[feh_min, feh_max]. A hierarchical model needs this, because a population
that leaks probability outside the learned map's domain would bias the
hyperparameters (see ``tutorials/02_delta_maps_in_hierarchical_models.py``).

Inputs keep their type: torch in → torch out (float64), otherwise numpy.
Out-of-domain latents give ``-inf``; invalid hyperparameters (m_min ≥ m_max,
non-positive masses or widths) raise ``ValueError``. With free mass limits in
a hierarchical model, give them non-overlapping prior ranges so that
m_min < m_max holds everywhere.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import astropy.units as u
import numpy as np
import torch
from scipy import stats

__all__ = ["KROUPA_BREAKS", "KROUPA_SLOPES", "SALPETER_SLOPE", "StellarPopulation", "kroupa_imf_log_prob",
           "metallicity_log_prob", "powerlaw_imf_log_prob", "sample_kroupa_imf", "sample_metallicity",
           "sample_powerlaw_imf"]

#: Salpeter (1955, ApJ 121, 161): dN/dM ∝ M^-2.35
SALPETER_SLOPE = 2.35
#: Kroupa (2001, MNRAS 322, 231, eq. 2): α = 0.3 below 0.08 M_sun, 1.3 on 0.08–0.5 M_sun, 2.3 above
KROUPA_SLOPES = (0.3, 1.3, 2.3)
#: the break masses of the Kroupa (2001) IMF, in M_sun
KROUPA_BREAKS = (0.08, 0.5)

_LN10 = math.log(10.0)


# --------------------------------------------------------------------- helpers
def _tensor(value, name: str, unit: u.UnitBase | None = None) -> torch.Tensor:
    """A float64 tensor from a number, array or tensor; Quantities only where a unit is documented."""
    if isinstance(value, u.Quantity):
        if unit is None:
            raise TypeError(f"{name} must be plain numbers, got a Quantity with unit {value.unit}")
        try:
            value = value.to_value(unit)
        except u.UnitConversionError:
            raise ValueError(f"{name} has unit {value.unit}, which cannot be converted to {unit}") from None
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got {type(value).__name__} of dtype {array.dtype}")
    return torch.as_tensor(array, dtype=torch.float64)


def _output(result: torch.Tensor, *inputs):
    """Torch in → torch out; otherwise numpy (a float for scalar input)."""
    if any(isinstance(value, torch.Tensor) for value in inputs):
        return result
    array = result.numpy()
    return float(array) if array.ndim == 0 else array


def _check_limits(m_min: torch.Tensor, m_max: torch.Tensor) -> None:
    if not (torch.isfinite(m_min).all() and torch.isfinite(m_max).all()):
        raise ValueError("m_min and m_max must be finite")
    if (m_min <= 0).any():
        raise ValueError(f"m_min must be a positive mass in M_sun, got {m_min.min().item():g}")
    if (m_min >= m_max).any():
        bad = torch.broadcast_tensors(m_min, m_max)
        pick = bad[0] >= bad[1]
        raise ValueError(f"m_min must be smaller than m_max, got m_min={bad[0][pick][0].item():g} "
                         f"≥ m_max={bad[1][pick][0].item():g}")


def _check_finite(value: torch.Tensor, name: str, positive: bool = False) -> None:
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite, got {value[~torch.isfinite(value)].reshape(-1)[0].item()}")
    if positive and not (value > 0).all():
        raise ValueError(f"{name} must be positive, got {value.min().item():g}")


def _log_expm1_over_x(x: torch.Tensor) -> torch.Tensor:
    """log((e^x − 1) / x), exact 0 at x = 0 and free of overflow for large |x|.

    The power-law normaliser ∫ M^-α dM over [a, b] equals
    a^β ln(b/a) (e^x − 1)/x with β = 1 − α and x = β ln(b/a); written this way
    α = 1 (x = 0) is the ordinary limit ln(b/a), not a special case that
    loses precision next to it.
    """
    zero = x == 0
    safe = torch.where(zero, torch.ones_like(x), x)
    positive = safe > 0
    # x > 0: e^x − 1 = e^x (1 − e^-x); x < 0: 1 − e^x = −expm1(x); both avoid overflow and cancellation
    big = safe + torch.log(-torch.expm1(-safe.abs())) - torch.log(safe.abs())
    small = torch.log(-torch.expm1(safe)) - torch.log(-safe)
    return torch.where(zero, torch.zeros_like(x), torch.where(positive, big, small))


def _log_segment_integral(slope, low, high) -> torch.Tensor:
    """log ∫_low^high M^-slope dM (−inf for an empty segment, high ≤ low)."""
    width = torch.log(high / low).clamp(min=0.0)
    beta = 1.0 - slope
    return beta * torch.log(low) + torch.log(width) + _log_expm1_over_x(beta * width)


def _rng(rng) -> np.random.Generator:
    if rng is None or isinstance(rng, (int, np.integer, np.random.Generator)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an integer seed or None, got {type(rng).__name__}")


def _count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def _scalar(value, name: str, unit: u.UnitBase | None = None) -> float:
    tensor = _tensor(value, name, unit)
    if tensor.ndim != 0:
        raise TypeError(f"{name} must be a single number for sampling, got shape {tuple(tensor.shape)}")
    _check_finite(tensor, name)
    return float(tensor)


def _sample_segment(u01: np.ndarray, slope: float, low: float, high: float) -> np.ndarray:
    """Inverse CDF of dN/dM ∝ M^-slope on [low, high]: log10 M for uniform draws u01."""
    width = math.log(high / low)
    x = (1.0 - slope) * width
    if x == 0.0:  # α = 1: uniform in log M
        log_ratio = u01 * width
    elif x > 0:  # written as x + log(u + (1 − u) e^-x) so that a steep segment cannot overflow
        log_ratio = (x + np.log(u01 + (1 - u01) * math.exp(-x))) / (1.0 - slope)
    else:
        log_ratio = np.log1p(u01 * math.expm1(x)) / (1.0 - slope)
    return (math.log(low) + log_ratio) / _LN10


# ------------------------------------------------------------------ power law
def powerlaw_imf_log_prob(log_mass, slope=SALPETER_SLOPE, m_min=0.1, m_max=100.0):
    """Log-density in log10(M / M_sun) of the power-law IMF dN/dM ∝ M^-slope on [m_min, m_max].

    p(log10 M) = M ln(10) M^-α / ∫ M^-α dM, normalised for every α
    (α = 1 included, where the normaliser is ln(m_max / m_min)).

    Parameters
    ----------
    log_mass : float, array or tensor
        log10 of the stellar mass in M_sun.
    slope : float or tensor
        α; Salpeter (1955) is 2.35.
    m_min, m_max : float, tensor or Quantity
        Mass limits, in M_sun for plain numbers.

    Returns
    -------
    float, ndarray or tensor
        Broadcast shape of the inputs; ``-inf`` outside [m_min, m_max].

    Examples
    --------
    >>> round(powerlaw_imf_log_prob(0.0, slope=1.0, m_min=0.1, m_max=10.0), 6)  # uniform in log M over 2 dex
    -0.693147
    """
    values = _tensor(log_mass, "log_mass")
    alpha = _tensor(slope, "slope")
    low, high = _tensor(m_min, "m_min", u.Msun), _tensor(m_max, "m_max", u.Msun)
    _check_finite(alpha, "slope")
    _check_limits(low, high)
    log_m = values * _LN10
    # compared in log10, the latents' own scale, so that log_mass = log10(m_min) exactly is inside; NaN is outside
    inside = (values >= torch.log10(low)) & (values <= torch.log10(high))
    log_density = (1.0 - alpha) * log_m + math.log(_LN10) - _log_segment_integral(alpha, low, high)
    return _output(torch.where(inside, log_density, -math.inf), log_mass, slope, m_min, m_max)


def sample_powerlaw_imf(n: int, slope=SALPETER_SLOPE, m_min=0.1, m_max=100.0, rng=None) -> np.ndarray:
    """Draw log10(M / M_sun) from dN/dM ∝ M^-slope on [m_min, m_max] by the inverse CDF.

    Examples
    --------
    >>> draws = sample_powerlaw_imf(1000, 2.35, 0.1, 100.0, rng=1)
    >>> bool(draws.min() >= -1.0 and draws.max() <= 2.0)
    True
    """
    n = _count(n)
    slope = _scalar(slope, "slope")
    low, high = _scalar(m_min, "m_min", u.Msun), _scalar(m_max, "m_max", u.Msun)
    _check_limits(torch.tensor(low), torch.tensor(high))
    draws = _sample_segment(_rng(rng).uniform(size=n), slope, low, high)
    return np.clip(draws, math.log10(low), math.log10(high))  # rounding must not step outside the limits


# ------------------------------------------------------------------ broken power law (Kroupa)
def _broken_powerlaw_pieces(slopes, breaks, low, high):
    """Per segment: slope, edges clipped to [m_min, m_max], log continuity factor, log (unnormalised) share of stars."""
    if len(slopes) != len(breaks) + 1:
        raise ValueError(f"slopes must have one more entry than breaks, got {len(slopes)} slopes and "
                         f"{len(breaks)} breaks")
    if any(b <= 0 for b in breaks) or list(breaks) != sorted(breaks) or len(set(breaks)) != len(breaks):
        raise ValueError(f"breaks must be positive and strictly increasing masses, got {list(breaks)}")
    slopes = [_tensor(s, "slopes") for s in slopes]
    for slope in slopes:
        _check_finite(slope, "slopes")
    edges = [-math.inf, *breaks, math.inf]
    pieces, log_k = [], torch.zeros((), dtype=torch.float64)
    for j, alpha in enumerate(slopes):
        if j > 0:  # continuity at the break b: k_j b^-α_j = k_{j-1} b^-α_{j-1}
            log_k = log_k + (alpha - slopes[j - 1]) * math.log(breaks[j - 1])
        lower = torch.clamp(low, min=edges[j]) if j > 0 else low
        upper = torch.minimum(high, torch.maximum(torch.clamp(high, max=edges[j + 1]), lower))
        lower, upper = torch.broadcast_tensors(lower, upper)
        log_share = log_k + _log_segment_integral(alpha, lower, upper)
        pieces.append((alpha, lower, upper, log_k, log_share))
    return pieces


def kroupa_imf_log_prob(log_mass, m_min=0.08, m_max=100.0, *, slopes=KROUPA_SLOPES, breaks=KROUPA_BREAKS):
    """Log-density in log10(M / M_sun) of a broken power-law IMF, Kroupa (2001) by default.

    dN/dM ∝ M^-α_j between consecutive ``breaks``, continuous at each break,
    normalised on [m_min, m_max]. Kroupa (2001, MNRAS 322, 231, eq. 2):
    α = 0.3 (M < 0.08 M_sun), 1.3 (0.08–0.5 M_sun), 2.3 (M > 0.5 M_sun).

    Parameters
    ----------
    log_mass : float, array or tensor
        log10 of the stellar mass in M_sun.
    m_min, m_max : float, tensor or Quantity
        Mass limits, in M_sun for plain numbers.
    slopes : sequence of float or tensor
        α of each segment, low mass first; any may be a tensor hyperparameter.
    breaks : sequence of float
        Break masses in M_sun, increasing.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.linspace(np.log10(0.08), 2.0, 20001)
    >>> density = np.exp(kroupa_imf_log_prob(grid, 0.08, 100.0))
    >>> round(float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(grid))), 4)
    1.0
    """
    values = _tensor(log_mass, "log_mass")
    low, high = _tensor(m_min, "m_min", u.Msun), _tensor(m_max, "m_max", u.Msun)
    _check_limits(low, high)
    pieces = _broken_powerlaw_pieces(slopes, breaks, low, high)
    log_norm = torch.logsumexp(torch.stack(torch.broadcast_tensors(*[p[4] for p in pieces])), dim=0)
    log_m = values * _LN10
    result = torch.full(torch.broadcast_shapes(values.shape, log_norm.shape), -math.inf, dtype=torch.float64)
    for j, (alpha, _, _, log_k, _) in enumerate(pieces):
        in_segment = torch.ones_like(log_m, dtype=torch.bool)
        if j > 0:
            in_segment &= values >= math.log10(breaks[j - 1])
        if j < len(breaks):
            in_segment &= values < math.log10(breaks[j])
        result = torch.where(in_segment, log_k + (1.0 - alpha) * log_m, result)
    inside = (values >= torch.log10(low)) & (values <= torch.log10(high))
    result = torch.where(inside, result + math.log(_LN10) - log_norm, -math.inf)
    return _output(result, log_mass, m_min, m_max, *slopes)


def sample_kroupa_imf(n: int, m_min=0.08, m_max=100.0, rng=None, *, slopes=KROUPA_SLOPES,
                      breaks=KROUPA_BREAKS) -> np.ndarray:
    """Draw log10(M / M_sun) from the broken power-law IMF of :func:`kroupa_imf_log_prob`.

    A segment is chosen by its share of the stars, then the mass by the
    inverse CDF inside it.

    Examples
    --------
    >>> draws = sample_kroupa_imf(2000, 0.08, 100.0, rng=3)
    >>> bool(0.5 < np.mean(draws < np.log10(0.5)) < 0.8)  # most stars are below 0.5 M_sun
    True
    """
    n = _count(n)
    low, high = _scalar(m_min, "m_min", u.Msun), _scalar(m_max, "m_max", u.Msun)
    slopes = [_scalar(s, "slopes") for s in slopes]
    _check_limits(torch.tensor(low), torch.tensor(high))
    pieces = _broken_powerlaw_pieces(slopes, breaks, torch.tensor(low), torch.tensor(high))
    log_fraction = torch.stack([p[4] for p in pieces])
    fraction = torch.softmax(log_fraction, dim=0).numpy()
    generator = _rng(rng)
    segment = generator.choice(len(pieces), size=n, p=fraction)
    u01 = generator.uniform(size=n)
    draws = np.empty(n)
    for j, (alpha, lower, upper, _, _) in enumerate(pieces):
        chosen = segment == j
        if chosen.any():
            draws[chosen] = _sample_segment(u01[chosen], float(alpha), float(lower), float(upper))
    return np.clip(draws, math.log10(low), math.log10(high))


# ------------------------------------------------------------------ metallicity
def _log_normal_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Φ(b) − Φ(a)) for standardised limits a < b, accurate in either tail."""
    # in the upper tail Φ(b) − Φ(a) = Φ(−a) − Φ(−b): reflect so that both logs stay far from log(1)
    flip = a > 0
    low, high = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_high, log_low = torch.special.log_ndtr(high), torch.special.log_ndtr(low)
    return log_high + torch.log(-torch.expm1(log_low - log_high))


def _feh_limits(feh_min, feh_max) -> tuple[float, float]:
    """Truncation limits as floats, ±inf where None."""
    lower = -math.inf if feh_min is None else _scalar(feh_min, "feh_min")
    upper = math.inf if feh_max is None else _scalar(feh_max, "feh_max")
    if not lower < upper:
        raise ValueError(f"feh_min must be smaller than feh_max, got {lower:g} ≥ {upper:g}")
    return lower, upper


def metallicity_log_prob(feh, mean=0.0, width=0.2, feh_min=None, feh_max=None):
    """Log-density of [Fe/H] ~ N(mean, width²), optionally truncated to [feh_min, feh_max].

    With limits, the density is renormalised on them by Φ(b) − Φ(a), so that
    it integrates to one on the stellar map's domain.

    Parameters
    ----------
    feh : float, array or tensor
        [Fe/H] in dex.
    mean, width : float or tensor
        Mean and standard deviation of [Fe/H], in dex.
    feh_min, feh_max : float or None
        Truncation limits in dex (either may be None for no limit).

    Examples
    --------
    >>> round(metallicity_log_prob(0.0, 0.0, 1.0), 6)  # −log √(2π)
    -0.918939
    >>> round(metallicity_log_prob(0.0, 0.0, 1.0, feh_min=0.0), 6)  # half a normal: twice the density
    -0.225791
    """
    values = _tensor(feh, "feh")
    loc, scale = _tensor(mean, "mean"), _tensor(width, "width")
    _check_finite(loc, "mean")
    _check_finite(scale, "width", positive=True)
    lower, upper = _feh_limits(feh_min, feh_max)
    z = (values - loc) / scale
    result = -0.5 * z**2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)
    if math.isfinite(lower) or math.isfinite(upper):
        result = result - _log_normal_mass((lower - loc) / scale, (upper - loc) / scale)
    inside = (values >= lower) & (values <= upper)
    return _output(torch.where(inside, result, -math.inf), feh, mean, width)


def sample_metallicity(n: int, mean=0.0, width=0.2, feh_min=None, feh_max=None, rng=None) -> np.ndarray:
    """Draw [Fe/H] from N(mean, width²), truncated to [feh_min, feh_max] when limits are given.

    Examples
    --------
    >>> draws = sample_metallicity(500, -0.1, 0.3, feh_min=-1.0, feh_max=0.3, rng=0)
    >>> bool(draws.min() >= -1.0 and draws.max() <= 0.3)
    True
    """
    n = _count(n)
    loc, scale = _scalar(mean, "mean"), _scalar(width, "width")
    _check_finite(torch.tensor(scale), "width", positive=True)
    lower, upper = _feh_limits(feh_min, feh_max)
    a, b = (lower - loc) / scale, (upper - loc) / scale
    return stats.truncnorm.rvs(a, b, loc=loc, scale=scale, size=n, random_state=_rng(rng))


# ------------------------------------------------------------------ the population of a stellar field
class StellarPopulation:
    """The population p(log_mass, feh | α) of a stellar field: an IMF times a metallicity distribution.

    Call it as ``population(latents, hyper)`` inside a
    :class:`~astrobayes.inference.hierarchical.HierarchicalModel`: any of
    the hyperparameter names ``imf_slope``, ``m_min``, ``m_max``,
    ``feh_mean``, ``feh_width`` found in ``hyper`` overrides the fixed value
    given here, so the same object serves a model with a free IMF slope and
    one with a free metallicity.

    Parameters
    ----------
    imf : {"salpeter", "kroupa", "powerlaw"}
        "salpeter" and "powerlaw" are dN/dM ∝ M^-imf_slope (Salpeter's
        2.35 by default); "kroupa" is the Kroupa (2001) broken power law, with
        ``imf_slope`` the slope above 0.5 M_sun (2.3 by default).
    imf_slope : float or None
        None takes the named IMF's value.
    m_min, m_max : float or Quantity
        Mass limits in M_sun; keep them inside the stellar map's domain.
    feh_mean, feh_width : float
        Mean and spread of [Fe/H], in dex.
    feh_range : (float, float) or None
        Truncation of the metallicity distribution, usually the map's
        [Fe/H] domain; None for an untruncated normal.

    Examples
    --------
    >>> import torch
    >>> population = StellarPopulation("salpeter", m_min=0.5, m_max=20.0, feh_range=(-1.0, 0.5))
    >>> latents = {"log_mass": torch.zeros(1, 3, 4), "feh": torch.zeros(1, 3, 4)}
    >>> population(latents, {"feh_mean": torch.tensor([0.0, -0.2]).reshape(2, 1, 1)}).shape
    torch.Size([2, 3, 4])
    >>> stars = population.sample(100, rng=0)
    >>> sorted(stars), stars["log_mass"].shape
    (['feh', 'log_mass'], (100,))
    """

    #: hyperparameter names understood in ``hyper``
    HYPERPARAMETERS = ("imf_slope", "m_min", "m_max", "feh_mean", "feh_width")

    def __init__(self, imf: str = "salpeter", *, imf_slope: float | None = None, m_min=0.1, m_max=100.0,
                 feh_mean: float = 0.0, feh_width: float = 0.2, feh_range: Sequence[float] | None = None):
        defaults = {"salpeter": SALPETER_SLOPE, "kroupa": KROUPA_SLOPES[-1], "powerlaw": None}
        if imf not in defaults:
            raise ValueError(f"imf must be 'salpeter', 'kroupa' or 'powerlaw', got {imf!r}")
        if imf_slope is None:
            if imf == "powerlaw":
                raise ValueError("imf='powerlaw' needs imf_slope")
            imf_slope = defaults[imf]
        self.imf = imf
        self.fixed = {"imf_slope": _scalar(imf_slope, "imf_slope"), "m_min": _scalar(m_min, "m_min", u.Msun),
                      "m_max": _scalar(m_max, "m_max", u.Msun), "feh_mean": _scalar(feh_mean, "feh_mean"),
                      "feh_width": _scalar(feh_width, "feh_width")}
        _check_limits(torch.tensor(self.fixed["m_min"]), torch.tensor(self.fixed["m_max"]))
        _check_finite(torch.tensor(self.fixed["feh_width"]), "feh_width", positive=True)
        if feh_range is not None and len(feh_range) != 2:
            raise ValueError(f"feh_range must be (feh_min, feh_max), got {feh_range!r}")
        self.feh_range = None if feh_range is None else _feh_limits(*feh_range)

    def _values(self, hyper: Mapping | None) -> dict:
        values = dict(self.fixed)
        for name, value in (hyper or {}).items():
            if name in values:
                values[name] = value
        return values

    def _imf_log_prob(self, log_mass, values):
        if self.imf == "kroupa":
            return kroupa_imf_log_prob(log_mass, values["m_min"], values["m_max"],
                                       slopes=(*KROUPA_SLOPES[:-1], values["imf_slope"]))
        return powerlaw_imf_log_prob(log_mass, values["imf_slope"], values["m_min"], values["m_max"])

    def log_prob(self, latents: Mapping, hyper: Mapping | None = None):
        """log p(log_mass) + log p(feh) for latents ``{"log_mass": ..., "feh": ...}`` (broadcast shape)."""
        missing = [name for name in ("log_mass", "feh") if name not in latents]
        if missing:
            raise ValueError(f"latents must hold 'log_mass' and 'feh'; missing {missing}")
        values = self._values(hyper)
        return (self._imf_log_prob(latents["log_mass"], values)
                + metallicity_log_prob(latents["feh"], values["feh_mean"], values["feh_width"], *(self.feh_range or (None, None))))

    __call__ = log_prob

    def sample(self, n: int, rng=None, **hyper) -> dict[str, np.ndarray]:
        """Draw ``n`` stars: ``{"log_mass": (n,), "feh": (n,)}``; keyword hyperparameters override the fixed ones."""
        unknown = sorted(set(hyper) - set(self.HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; known: {list(self.HYPERPARAMETERS)}")
        values = self._values(hyper)
        generator = _rng(rng)
        if self.imf == "kroupa":
            log_mass = sample_kroupa_imf(n, values["m_min"], values["m_max"], generator,
                                         slopes=(*KROUPA_SLOPES[:-1], values["imf_slope"]))
        else:
            log_mass = sample_powerlaw_imf(n, values["imf_slope"], values["m_min"], values["m_max"], generator)
        feh = sample_metallicity(n, values["feh_mean"], values["feh_width"], *(self.feh_range or (None, None)),
                                 rng=generator)
        return {"log_mass": log_mass, "feh": feh}

    def __repr__(self) -> str:
        fixed = ", ".join(f"{k}={v:g}" for k, v in self.fixed.items())
        return f"StellarPopulation(imf={self.imf!r}, {fixed}, feh_range={self.feh_range})"
