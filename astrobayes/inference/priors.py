"""Priors over named physical parameters, as torch distributions.

A prior here is a small :class:`torch.distributions.Distribution` that also
knows the *name* and astropy *unit* of each parameter, so that samplers and
result tables can label things the way an astronomer reads them ("mass
[solMass]", not "theta_0"). One-dimensional priors (:class:`Uniform`,
:class:`LogUniform`, :class:`Normal`) are combined into an independent product
with :class:`JointPrior`; :class:`BoxUniform` is the box prior of simulation-
based inference in one call.

Out-of-support points never raise and never give NaN: their log-density is
``-inf``, which is exactly what an MCMC sampler needs to reject them. Inputs
keep their type: numpy in → numpy out, torch in → torch out.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import astropy.units as u
import numpy as np
import torch
from torch.distributions import Distribution, constraints

from astrobayes.core.seeding import make_generator

__all__ = ["Uniform", "LogUniform", "Normal", "JointPrior", "BoxUniform", "prior_to_config", "prior_from_config"]


# --------------------------------------------------------------------- helpers
def _parse_unit(unit, name: str) -> u.UnitBase | None:
    if unit is None:
        return None
    try:
        return u.Unit(unit)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} is not a unit astropy understands: {unit!r} ({err})") from None


def _scalars_in_unit(values: dict, unit) -> tuple[list[float], u.UnitBase]:
    """Turn scalar numbers/Quantities into floats in one unit.

    The unit is ``unit`` when given, otherwise that of the first Quantity;
    bare numbers are read in that unit.
    """
    unit = _parse_unit(unit, "unit")
    if unit is None:
        unit = next((q.unit for q in values.values() if isinstance(q, u.Quantity)), u.dimensionless_unscaled)
    out = []
    for arg, value in values.items():
        if isinstance(value, u.Quantity):
            try:
                value = value.to_value(unit)
            except u.UnitConversionError:
                raise ValueError(f"{arg} has unit {value.unit}, which cannot be converted to the prior's unit "
                                 f"{unit}") from None
        if isinstance(value, bool) or np.ndim(value) != 0:
            raise TypeError(f"{arg} must be a single number, got {value!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{arg} must be a number, got {type(value).__name__}") from None
        if not math.isfinite(value):
            raise ValueError(f"{arg} must be finite, got {value}")
        out.append(value)
    return out, unit


def _as_float_tensor(value, name: str, unit: u.UnitBase | None = None) -> torch.Tensor:
    """Read parameter values as a floating tensor; NaN/inf are allowed (they are out of support)."""
    if isinstance(value, u.Quantity):
        if unit is None:
            raise TypeError(f"{name} is an astropy Quantity; a joint prior has one unit per column, "
                            "pass plain numbers in the units listed in prior.units")
        try:
            value = value.to_value(unit)
        except u.UnitConversionError:
            raise ValueError(f"{name} has unit {value.unit}, which cannot be converted to {unit}") from None
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        return tensor if tensor.is_floating_point() else tensor.to(torch.float64)
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {array.dtype}")
    return torch.as_tensor(array, dtype=torch.float64)


def _like(tensor: torch.Tensor, original):
    return tensor if isinstance(original, torch.Tensor) else tensor.numpy()


def _sample_shape(sample_shape) -> torch.Size:
    if isinstance(sample_shape, (int, np.integer)) and not isinstance(sample_shape, bool):
        if sample_shape < 0:
            raise ValueError(f"sample_shape must be non-negative, got {sample_shape}")
        return torch.Size([int(sample_shape)])
    try:
        return torch.Size(sample_shape)
    except TypeError:
        raise TypeError(f"sample_shape must be an int or a tuple of ints, got {sample_shape!r}") from None


# ----------------------------------------------------------- one parameter
class _ParameterPrior(Distribution):
    """Prior of one scalar parameter with a ``name`` and a ``unit``."""

    arg_constraints: ClassVar[dict] = {}  # bounds are checked in __init__, not by torch
    has_rsample = False

    def __init__(self, low: float, high: float, name: str | None, unit: u.UnitBase):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.name = name
        self.unit = unit
        self.low = float(low)  # -inf / +inf where unbounded
        self.high = float(high)
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size(), validate_args=False)

    # subclasses give the density on the support and a sampler
    def _log_density(self, value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _draw(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    @property
    def support(self):
        return constraints.interval(self.low, self.high)

    def support_check(self, value):
        """True where ``value`` is finite and inside [low, high] (same type as the input)."""
        tensor = _as_float_tensor(value, "value", self.unit)
        return _like(self._inside(tensor), value)

    def _inside(self, tensor: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(tensor) & (tensor >= self.low) & (tensor <= self.high)

    def log_prob(self, value):
        """Log-density per element, in 1/unit; ``-inf`` outside the support (also for NaN).

        Quantities are converted to the prior's unit first.
        """
        tensor = _as_float_tensor(value, "value", self.unit)
        inside = self._inside(tensor)
        # evaluate the density on a safe in-support stand-in so that no NaN/warning is produced outside
        stand_in = torch.where(inside, tensor, torch.as_tensor(self._inner_point(), dtype=tensor.dtype))
        result = torch.where(inside, self._log_density(stand_in), torch.as_tensor(-math.inf, dtype=tensor.dtype))
        return _like(result, value)

    def _inner_point(self) -> float:
        if math.isfinite(self.low) and math.isfinite(self.high):
            return 0.5 * (self.low + self.high)
        return 0.0

    def sample(self, sample_shape=(), seed: int | None = None) -> torch.Tensor:
        """Draws of shape ``sample_shape`` (float64); ``seed`` gives a private generator."""
        shape = _sample_shape(sample_shape)
        generator = make_generator(seed) if seed is not None else None
        return self._draw(shape, generator)

    def _unit_text(self) -> str:
        return "" if self.unit == u.dimensionless_unscaled else f", unit='{self.unit}'"

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"{type(self).__name__}({self._describe()}{name}{self._unit_text()})"

    def _describe(self) -> str:
        return f"low={self.low:g}, high={self.high:g}"


class Uniform(_ParameterPrior):
    """Uniform prior on [low, high].

    Parameters
    ----------
    low, high : float or astropy Quantity
        Bounds, ``low < high``. Quantities are converted to ``unit``; without
        ``unit`` the first Quantity's unit is used and bare numbers are read
        in it.
    name : str, optional
        Parameter name used in tables and plots.
    unit : str or astropy unit, optional
        Unit of the parameter (dimensionless when neither given nor implied).

    Examples
    --------
    >>> import astropy.units as u
    >>> prior = Uniform(1 * u.kpc, 3000 * u.pc, name="radius")
    >>> prior.high, prior.unit
    (3.0, Unit("kpc"))
    >>> round(float(prior.log_prob(2.0)), 4)  # log(1 / 2 kpc)
    -0.6931
    >>> float(prior.log_prob(torch.tensor(5.0)))
    -inf
    """

    def __init__(self, low, high, *, name: str | None = None, unit=None):
        (low, high), unit = _scalars_in_unit({"low": low, "high": high}, unit)
        if not low < high:
            raise ValueError(f"low must be smaller than high, got low={low}, high={high}")
        self._log_width = math.log(high - low)
        super().__init__(low, high, name, unit)

    def _log_density(self, value):
        return torch.full_like(value, -self._log_width)

    def _draw(self, shape, generator):
        unit_draws = torch.rand(shape, generator=generator, dtype=torch.float64)
        return self.low + (self.high - self.low) * unit_draws


class LogUniform(_ParameterPrior):
    """Log-uniform (Jeffreys-like) prior, density ∝ 1/θ on [low, high], ``0 < low < high``.

    Parameters are as for :class:`Uniform`; use it for scale parameters
    spanning decades (masses, luminosities, timescales).

    Examples
    --------
    >>> prior = LogUniform(1e12, 1e15, name="M200", unit="solMass")
    >>> draws = prior.sample(1000, seed=0)
    >>> bool(((draws >= 1e12) & (draws <= 1e15)).all())
    True
    """

    def __init__(self, low, high, *, name: str | None = None, unit=None):
        (low, high), unit = _scalars_in_unit({"low": low, "high": high}, unit)
        if not low > 0:
            raise ValueError(f"low must be positive for a log-uniform prior, got low={low}")
        if not low < high:
            raise ValueError(f"low must be smaller than high, got low={low}, high={high}")
        self._log_low, self._log_high = math.log(low), math.log(high)
        super().__init__(low, high, name, unit)

    def _inner_point(self) -> float:
        return math.sqrt(self.low * self.high)

    def _log_density(self, value):
        return -torch.log(value) - math.log(self._log_high - self._log_low)

    def _draw(self, shape, generator):
        unit_draws = torch.rand(shape, generator=generator, dtype=torch.float64)
        return torch.exp(self._log_low + (self._log_high - self._log_low) * unit_draws)


class Normal(_ParameterPrior):
    """Gaussian prior N(mean, std²) on the whole real line.

    Examples
    --------
    >>> prior = Normal(0.3, 0.05, name="Omega_m")
    >>> round(float(prior.log_prob(torch.tensor(0.3))), 4)  # -log(0.05 sqrt(2π))
    2.0768
    """

    def __init__(self, mean, std, *, name: str | None = None, unit=None):
        (mean, std), unit = _scalars_in_unit({"mean": mean, "std": std}, unit)
        if not std > 0:
            raise ValueError(f"std must be positive, got std={std}")
        self.loc, self.scale = mean, std
        super().__init__(-math.inf, math.inf, name, unit)

    def _log_density(self, value):
        z = (value - self.loc) / self.scale
        return -0.5 * z**2 - math.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def _draw(self, shape, generator):
        return self.loc + self.scale * torch.randn(shape, generator=generator, dtype=torch.float64)

    def _describe(self) -> str:
        return f"mean={self.loc:g}, std={self.scale:g}"


# ----------------------------------------------------------------- joint
class JointPrior(Distribution):
    """Independent product of one-dimensional priors; event shape ``(ndim,)``.

    Parameters
    ----------
    priors : sequence of Uniform, LogUniform, Normal or JointPrior
        One entry per parameter (a JointPrior contributes all of its
        parameters). Unnamed parameters are called ``theta_<index>``.

    Attributes
    ----------
    names : list of str
    units : list of astropy units (dimensionless where none was given)
    ndim : int
    low, high : numpy arrays, ``-inf``/``+inf`` where unbounded

    Examples
    --------
    >>> prior = JointPrior([LogUniform(1e13, 1e15, name="M200", unit="solMass"),
    ...                     Normal(5.0, 1.0, name="concentration")])
    >>> prior.names, prior.ndim
    (['M200', 'concentration'], 2)
    >>> theta = prior.sample(4, seed=1)
    >>> theta.shape, prior.log_prob(theta).shape
    (torch.Size([4, 2]), torch.Size([4]))
    >>> prior.log_prob(np.array([[1e16, 5.0]]))  # outside the mass range
    array([-inf])
    """

    arg_constraints: ClassVar[dict] = {}  # bounds are checked in __init__, not by torch
    has_rsample = False

    def __init__(self, priors: Sequence[_ParameterPrior]):
        if isinstance(priors, (_ParameterPrior, JointPrior)) or not isinstance(priors, Sequence):
            raise TypeError("priors must be a list of one-dimensional priors (Uniform, LogUniform, Normal)")
        components: list[_ParameterPrior] = []
        for index, prior in enumerate(priors):
            if isinstance(prior, JointPrior):
                components.extend(prior.components)
            elif isinstance(prior, _ParameterPrior):
                components.append(prior)
            else:
                raise TypeError(f"priors[{index}] must be Uniform, LogUniform, Normal or JointPrior, "
                                f"got {type(prior).__name__}")
        if not components:
            raise ValueError("priors is empty; give at least one parameter prior")
        names = [p.name if p.name is not None else f"theta_{i}" for i, p in enumerate(components)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"priors: duplicate parameter name(s) {', '.join(map(repr, duplicates))}")
        self.components = components
        self.names = names
        self.units = [p.unit for p in components]
        self.low = np.array([p.low for p in components])
        self.high = np.array([p.high for p in components])
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size([len(components)]), validate_args=False)

    @property
    def ndim(self) -> int:
        return len(self.components)

    @property
    def support(self):
        bounds = torch.as_tensor(self.low), torch.as_tensor(self.high)
        return constraints.independent(constraints.interval(*bounds), 1)

    def _columns(self, theta) -> torch.Tensor:
        tensor = _as_float_tensor(theta, "theta")
        if tensor.ndim == 0 or tensor.shape[-1] != self.ndim:
            raise ValueError(f"theta must have shape (..., {self.ndim}) for parameters {self.names}, "
                             f"got shape {tuple(tensor.shape)}")
        return tensor

    def log_prob(self, theta):
        """Sum of the component log-densities over the last axis; ``-inf`` outside the support."""
        tensor = self._columns(theta)
        total = sum(p.log_prob(tensor[..., i]) for i, p in enumerate(self.components))
        return _like(total, theta)

    def support_check(self, theta):
        """True for rows whose every parameter is finite and inside its bounds."""
        tensor = self._columns(theta)
        inside = torch.stack([p._inside(tensor[..., i]) for i, p in enumerate(self.components)], dim=-1)
        return _like(inside.all(dim=-1), theta)

    def as_batch(self, theta) -> torch.Tensor:
        """``theta`` as a float64 tensor of shape (m, ndim); a ValueError names the expected shape otherwise."""
        theta = torch.as_tensor(theta, dtype=torch.float64)
        if theta.ndim > 2 or theta.numel() == 0 or theta.shape[-1] != self.ndim:
            raise ValueError(f"theta must have shape (m, {self.ndim}) for hyperparameters {self.names}, got "
                             f"{tuple(theta.shape)}")
        return theta.reshape(-1, self.ndim)

    def log_posterior(self, theta, log_likelihood) -> torch.Tensor:
        """log π(θ) + ``log_likelihood(θ)`` for a batch (m, ndim), -inf outside the support, where
        ``log_likelihood`` (a function of a (k, ndim) batch returning (k,)) is never called."""
        theta = self.as_batch(theta)
        log_prior = self.log_prob(theta)
        out = torch.full((len(theta),), -math.inf, dtype=torch.float64)
        ok = torch.isfinite(log_prior)
        if ok.any():
            out[ok] = log_prior[ok] + log_likelihood(theta[ok])
        return out

    def sample(self, sample_shape=(), seed: int | None = None) -> torch.Tensor:
        """Draws of shape ``sample_shape + (ndim,)`` (float64); ``seed`` gives a private generator."""
        shape = _sample_shape(sample_shape)
        generator = make_generator(seed) if seed is not None else None
        return torch.stack([p._draw(shape, generator) for p in self.components], dim=-1)

    def labels(self) -> list[str]:
        """Axis labels "name [unit]" (no brackets for dimensionless parameters)."""
        return [f"{n} [{un}]" if un != u.dimensionless_unscaled else n for n, un in zip(self.names, self.units)]

    def __repr__(self) -> str:
        inner = ", ".join(repr(p) for p in self.components)
        return f"JointPrior([{inner}])"


def BoxUniform(low, high, *, names: Sequence[str] | None = None, units=None) -> JointPrior:
    """Independent uniform prior on a box, the usual prior of simulation-based inference.

    Parameters
    ----------
    low, high : array-like or astropy Quantity, shape (ndim,)
        Lower and upper bounds per parameter (``low < high`` elementwise).
    names : sequence of str, optional
        Parameter names (default ``theta_0, theta_1, ...``).
    units : unit or sequence of units, optional
        One unit for all parameters or one per parameter; by default the unit
        of ``low``/``high`` when they are Quantities, else dimensionless.

    Examples
    --------
    >>> prior = BoxUniform([0.1, 0.6], [0.5, 1.0], names=["Omega_m", "sigma_8"])
    >>> round(float(prior.log_prob(torch.tensor([0.3, 0.8]))), 4)  # -log(0.4 * 0.4)
    1.8326
    """
    def as_list(bounds, arg):
        if isinstance(bounds, u.Quantity):
            return [q for q in np.atleast_1d(bounds)]
        array = np.atleast_1d(np.asarray(bounds, dtype=object))
        if array.ndim != 1:
            raise ValueError(f"{arg} must be one-dimensional (one bound per parameter), got shape {array.shape}")
        return list(array)

    lows, highs = as_list(low, "low"), as_list(high, "high")
    if len(lows) != len(highs):
        raise ValueError(f"low has {len(lows)} entries but high has {len(highs)}")
    ndim = len(lows)
    if names is not None:
        if isinstance(names, str) or len(names) != ndim:
            raise ValueError(f"names must be a list of {ndim} strings, got {names!r}")
        duplicates = sorted({n for n in names if list(names).count(n) > 1})
        if duplicates:
            raise ValueError(f"names has duplicate entries: {', '.join(map(repr, duplicates))}")
    if units is None or isinstance(units, (str, u.UnitBase)):
        units = [units] * ndim
    elif len(units) != ndim:
        raise ValueError(f"units must be one unit or a list of {ndim}, got {units!r}")
    return JointPrior([
        Uniform(lo, hi, name=None if names is None else names[i], unit=units[i])
        for i, (lo, hi) in enumerate(zip(lows, highs))
    ])


# --------------------------------------------------------------------- files
def prior_to_config(prior: JointPrior) -> list[dict]:
    """JSON-able description of a :class:`JointPrior`, one dict per parameter.

    Examples
    --------
    >>> config = prior_to_config(BoxUniform([0.1], [0.5], names=["Omega_m"]))
    >>> config[0]["class"], config[0]["low"], prior_from_config(config).names
    ('Uniform', 0.1, ['Omega_m'])
    """
    out = []
    for p in prior.components:
        entry = {"class": type(p).__name__, "name": p.name, "unit": p.unit.to_string()}
        if isinstance(p, Normal):
            entry.update(mean=p.loc, std=p.scale)
        elif isinstance(p, (Uniform, LogUniform)):
            entry.update(low=p.low, high=p.high)
        else:
            raise TypeError(f"prior component {type(p).__name__} cannot be saved")
        out.append(entry)
    return out


def prior_from_config(config: list[dict]) -> JointPrior:
    """Rebuild a :class:`JointPrior` written by :func:`prior_to_config`."""
    classes = {"Uniform": Uniform, "LogUniform": LogUniform, "Normal": Normal}
    parts = []
    for entry in config:
        cls = classes.get(entry.get("class"))
        if cls is None:
            raise ValueError(f"unknown prior class {entry.get('class')!r} in prior file")
        args = (entry["mean"], entry["std"]) if cls is Normal else (entry["low"], entry["high"])
        parts.append(cls(*args, name=entry["name"], unit=entry["unit"] or None))
    return JointPrior(parts)
