"""Halo relations behind the mock clusters: mass function, size, concentration, velocity dispersion, richness.

Masses are M₂₀₀c (the mass inside the radius R₂₀₀c that encloses 200 times the
critical density) in M_sun, written as ``log_mass = log10(M200c / M_sun)``;
lengths are in Mpc and velocities in km/s, at redshift z ≈ 0 with the Hubble
parameter ``h`` (default 0.7) exposed wherever a relation depends on it.

* :class:`MassFunction` — the abundance of halos, dn/dlog₁₀M, normalised on a
  log-mass range: a Schechter form dn/dlnM ∝ (M/M*)^(−α) exp(−M/M*) whose default
  falls steeply, as halo mass functions do (counts per 0.25-dex bin drop by
  about three decades from 10^13.5 to 10^15.5 M_sun), or flat in log M (the prior astronomers usually
  want to quote masses under). It is also the prior a network trained on the
  mock learns, which is why it can be swapped afterwards
  (:mod:`astrobayes.clusters.reweight`).
* :func:`r200c` — R₂₀₀c from M₂₀₀c.
* :func:`concentration_duffy08` — c₂₀₀ = 5.71 (M/2×10¹² h⁻¹M_sun)^−0.084 at z = 0,
  the full-sample NFW fit of Duffy et al. (2008, MNRAS 390, L64).
* :func:`velocity_dispersion_evrard08` — σ_DM = 1082.9 km/s (h M/10¹⁵ M_sun)^0.3361,
  the dark-matter virial scaling of Evrard et al. (2008, ApJ 672, 122) at z = 0.
* :class:`RichnessMassRelation` — ln λ = ln A + B ln(M/M_pivot) with a log-normal
  scatter: the mass–observable relation that
  :mod:`astrobayes.clusters.hierarchical` infers.
* :data:`COSMOLOGY` — the one cosmology of the clusters domain, flat ΛCDM with
  H₀ = 70 km/s/Mpc (h = 0.7, the mocks' ``h``) and Ω_m = 0.3: projected radii of real
  galaxies (:func:`~astrobayes.clusters.io.projected_radius`) use it, so that a real
  aperture in Mpc is the mocks' aperture.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import astropy.constants as const
import astropy.units as u
import numpy as np
from astropy.cosmology import FlatLambdaCDM
from scipy.integrate import trapezoid

__all__ = ["COSMOLOGY", "DEFAULT_H", "DEFAULT_LOG_MASS_RANGE", "describe_cosmology", "from_h_inverse", "to_h_inverse",
           "MassFunction", "RichnessMassRelation", "concentration_duffy08", "r200c",
           "velocity_dispersion_evrard08"]

#: log10(M200c / M_sun) range of the mocks and of the trained networks
DEFAULT_LOG_MASS_RANGE = (13.5, 15.5)

#: H₀ / (100 km/s/Mpc) of the mocks' halo relations (R200c, concentration, σ(M)) and of :data:`COSMOLOGY`
DEFAULT_H = 0.7
#: the clusters domain's cosmology: distances to real clusters (projected radii) and the mocks share h = 0.7
COSMOLOGY = FlatLambdaCDM(H0=100.0 * DEFAULT_H, Om0=0.3, name="astrobayes.clusters.COSMOLOGY")

_GRID_POINTS = 4001  # log-mass grid for normalising and inverting the mass function (spacing 5e-4 dex)


def describe_cosmology(cosmology=None) -> dict:
    """A JSON-able record of an astropy cosmology for a table's ``meta``: name, class, H0, h, Om0 (and Ode0, Tcmb0).

    Examples
    --------
    >>> describe_cosmology()
    {'name': 'astrobayes.clusters.COSMOLOGY', 'class': 'FlatLambdaCDM', 'H0_km_s_Mpc': 70.0, 'h': 0.7, 'Om0': 0.3, 'Ode0': 0.7, 'Tcmb0_K': 0.0}
    """
    cosmology = COSMOLOGY if cosmology is None else cosmology
    if not hasattr(cosmology, "H0"):
        raise TypeError(f"cosmology must be an astropy cosmology, got {type(cosmology).__name__}")
    h0 = float(cosmology.H0.to_value(u.km / u.s / u.Mpc))
    return {"name": str(cosmology.name), "class": type(cosmology).__name__, "H0_km_s_Mpc": h0,
            "h": round(h0 / 100.0, 10), "Om0": float(cosmology.Om0), "Ode0": round(float(cosmology.Ode0), 10),
            "Tcmb0_K": float(cosmology.Tcmb0.to_value(u.K))}


def to_h_inverse(log_mass, h: float = DEFAULT_H) -> np.ndarray:
    """log₁₀(M / (h⁻¹ M_sun)) from log₁₀(M / M_sun): add log₁₀ h, to set our masses beside papers quoting h⁻¹ M_sun.

    Our masses (the mocks, :func:`~astrobayes.clusters.reweight.estimate_mass`) are in M_sun at h = 0.7;
    a mass quoted as 10^X h⁻¹ M_sun is 10^(X − log₁₀ h) M_sun. Only the unit changes: the mass
    definition (M200c) and the radius it encloses stay as they are.

    Parameters
    ----------
    log_mass : float or array
        log₁₀(M / M_sun).
    h : float
        H₀ / (100 km/s/Mpc) of the masses (default 0.7, that of the mocks).

    Examples
    --------
    >>> round(float(to_h_inverse(15.255)), 3)            # Ho et al. 2022 quote Coma as 10^15.10 h⁻¹ M_sun
    15.1
    >>> round(float(from_h_inverse(15.10)), 3)           # ... which is 10^15.255 M_sun at h = 0.7
    15.255
    """
    return _log_masses(log_mass, "log_mass") + np.log10(_little_h(h))


def from_h_inverse(log_mass_h, h: float = DEFAULT_H) -> np.ndarray:
    """log₁₀(M / M_sun) from log₁₀(M / (h⁻¹ M_sun)): subtract log₁₀ h (the reverse of :func:`to_h_inverse`).

    Examples
    --------
    >>> round(float(from_h_inverse(15.10, h=0.7)), 3)
    15.255
    """
    return _log_masses(log_mass_h, "log_mass_h") - np.log10(_little_h(h))


def _little_h(h) -> float:
    """h = H₀ / (100 km/s/Mpc), refused when it is H₀ itself (70) or no plausible value."""
    h = _finite(h, "h", positive=True)
    if not 0.3 <= h <= 1.5:
        raise ValueError(f"h must be H0 / (100 km/s/Mpc), between 0.3 and 1.5, got {h:g}"
                         + (f"; for H0 = {h:g} km/s/Mpc give h={h / 100:g}" if 30 <= h <= 150 else ""))
    return h


def _log_masses(values, name: str) -> np.ndarray:
    """log₁₀ masses as floats: a Quantity, text, NaN or a linear mass (1e15) is refused, naming ``name``."""
    if isinstance(values, u.Quantity) or isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be log10 of a mass (plain numbers such as 15.1), got {values!r:.60}")
    try:
        log_mass = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be log10 of a mass (plain numbers such as 15.1), got {values!r:.60}") from None
    if not np.isfinite(log_mass).all():
        raise ValueError(f"{name} has NaN or inf values")
    if log_mass.size and (log_mass.min() < 8 or log_mass.max() > 17):
        raise ValueError(f"{name} must be log10(M), between 8 and 17, got {log_mass.min():g}–{log_mass.max():g}"
                         "; is it a mass rather than its log10? (take np.log10 first)")
    return log_mass


def _check_range(log_mass_range, name: str = "log_mass_range") -> tuple[float, float]:
    try:
        low, high = (float(v) for v in log_mass_range)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers (low, high) in log10(M/M_sun), got {log_mass_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high, got {log_mass_range!r}")
    if not (10 <= low and high <= 17):
        raise ValueError(f"{name}={log_mass_range!r} is outside 10–17 in log10(M/M_sun); give log10 masses, "
                         "not masses")
    return low, high


def _finite(value, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return value


@dataclass(frozen=True)
class MassFunction:
    """The distribution of halo masses, p(log₁₀M), on ``log_mass_range``.

    Parameters
    ----------
    kind : {"schechter", "flat"}
        ``"schechter"``: dn/dlnM ∝ (M/M*)^(−slope) exp(−M/M*); ``"flat"``:
        uniform in log₁₀M.
    slope : float
        The low-mass power-law slope α (Schechter only).
    log_mass_star : float
        log₁₀ of the exponential cut-off mass M* in M_sun (Schechter only).
    log_mass_range : (float, float)
        The range on which p(log₁₀M) is normalised.

    Examples
    --------
    >>> hmf = MassFunction()
    >>> masses = hmf.sample(5, np.random.default_rng(0))
    >>> bool(((masses >= 13.5) & (masses <= 15.5)).all())
    True
    >>> from scipy.integrate import trapezoid
    >>> round(float(trapezoid(np.exp(hmf.log_prob(hmf.grid())), hmf.grid())), 6)
    1.0
    """

    kind: str = "schechter"
    slope: float = 1.0
    log_mass_star: float = 14.8
    log_mass_range: tuple[float, float] = DEFAULT_LOG_MASS_RANGE

    def __post_init__(self):
        if self.kind not in ("schechter", "flat"):
            raise ValueError(f"kind must be 'schechter' or 'flat', got {self.kind!r}")
        object.__setattr__(self, "log_mass_range", _check_range(self.log_mass_range))
        object.__setattr__(self, "slope", _finite(self.slope, "slope"))
        object.__setattr__(self, "log_mass_star", _finite(self.log_mass_star, "log_mass_star"))

    def to_dict(self) -> dict:
        """JSON-able parameters (``MassFunction(**d)`` rebuilds it)."""
        out = asdict(self)
        out["log_mass_range"] = list(self.log_mass_range)
        return out

    def grid(self, n: int = _GRID_POINTS) -> np.ndarray:
        """An even grid of log₁₀M over the range, ends included."""
        return np.linspace(*self.log_mass_range, n)

    def _unnormalised(self, log_mass: np.ndarray) -> np.ndarray:
        if self.kind == "flat":
            return np.zeros_like(log_mass)
        x = 10.0 ** (log_mass - self.log_mass_star)
        return -self.slope * np.log(x) - x  # dn/dlnM and dn/dlog10M differ by a constant

    def log_prob(self, log_mass) -> np.ndarray:
        """log p(log₁₀M), normalised on the range; −inf outside it."""
        log_mass = np.asarray(log_mass, dtype=float)
        grid = self.grid()
        log_norm = np.log(trapezoid(np.exp(self._unnormalised(grid)), grid))
        inside = (log_mass >= self.log_mass_range[0]) & (log_mass <= self.log_mass_range[1])
        out = np.full(log_mass.shape, -np.inf)
        out[inside] = self._unnormalised(log_mass[inside]) - log_norm
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of log₁₀M by inverting the tabulated CDF (linear within 5×10⁻⁴ dex)."""
        grid = self.grid()
        density = np.exp(self._unnormalised(grid))
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
        return np.interp(rng.random(int(n)) * cdf[-1], cdf, grid)


def r200c(log_mass, h: float = 0.7) -> u.Quantity:
    """R₂₀₀c in Mpc for log₁₀(M200c/M_sun): M = (4π/3) 200 ρ_c R³ with ρ_c = 3H₀²/8πG, H₀ = 100 h km/s/Mpc.

    Examples
    --------
    >>> r200c(15.0)       # about 2 Mpc for a 10^15 M_sun cluster
    <Quantity 2.06... Mpc>
    """
    rho_crit = 3 * (100 * h * u.km / u.s / u.Mpc) ** 2 / (8 * np.pi * const.G)
    mass = 10.0 ** np.asarray(log_mass, dtype=float) * u.M_sun
    return ((3 * mass / (4 * np.pi * 200 * rho_crit)) ** (1 / 3)).to(u.Mpc)


def concentration_duffy08(log_mass, h: float = 0.7) -> np.ndarray:
    """NFW concentration c₂₀₀ at z = 0 from Duffy et al. (2008), full relaxed+unrelaxed sample.

    Examples
    --------
    >>> round(float(concentration_duffy08(14.5)), 2)
    3.85
    """
    mass_h = 10.0 ** np.asarray(log_mass, dtype=float) * h  # in h⁻¹ M_sun
    return 5.71 * (mass_h / 2e12) ** -0.084


def velocity_dispersion_evrard08(log_mass, h: float = 0.7) -> u.Quantity:
    """The one-dimensional dark-matter velocity dispersion of Evrard et al. (2008) at z = 0, in km/s.

    Examples
    --------
    >>> velocity_dispersion_evrard08(15.0)
    <Quantity 960.56... km / s>
    """
    mass_h = 10.0 ** np.asarray(log_mass, dtype=float) * h / 1e15
    return 1082.9 * mass_h ** 0.3361 * u.km / u.s


@dataclass(frozen=True)
class RichnessMassRelation:
    """ln λ = ln A + B ln(M / M_pivot) + ε, ε ~ N(0, scatter²): an optical richness λ given the mass.

    Parameters
    ----------
    log_norm : float
        ln A, the mean ln λ at the pivot mass.
    slope : float
        B.
    scatter : float
        The intrinsic log-normal scatter σ_lnλ at fixed mass.
    pivot_log_mass : float
        log₁₀(M_pivot / M_sun).

    Examples
    --------
    >>> relation = RichnessMassRelation()
    >>> round(float(relation.mean_ln_richness(14.5)), 3) == round(relation.log_norm, 3)
    True
    """

    log_norm: float = float(np.log(30.0))
    slope: float = 1.0
    scatter: float = 0.25
    pivot_log_mass: float = 14.5

    def __post_init__(self):
        object.__setattr__(self, "log_norm", _finite(self.log_norm, "log_norm"))
        object.__setattr__(self, "slope", _finite(self.slope, "slope"))
        object.__setattr__(self, "scatter", _finite(self.scatter, "scatter", positive=True))
        object.__setattr__(self, "pivot_log_mass", _finite(self.pivot_log_mass, "pivot_log_mass"))

    def to_dict(self) -> dict:
        return asdict(self)

    def mean_ln_richness(self, log_mass) -> np.ndarray:
        """⟨ln λ | M⟩."""
        return self.log_norm + self.slope * np.log(10.0) * (np.asarray(log_mass, dtype=float) - self.pivot_log_mass)

    def sample(self, log_mass, rng: np.random.Generator) -> np.ndarray:
        """λ for each mass."""
        mean = self.mean_ln_richness(log_mass)
        return np.exp(mean + self.scatter * rng.standard_normal(mean.shape))
