"""Zero-age main-sequence luminosity, radius and temperature (Tout et al. 1996).

The stellar model of the stars domain: the analytic fits of Tout, Pols,
Eggleton & Han (1996, MNRAS 281, 257) to ZAMS models over
0.1 ≤ M/M_sun ≤ 100 and 1e-4 ≤ Z ≤ 0.03,

    L/L_sun = (α M^5.5 + β M^11) / (γ + M^3 + δ M^5 + ε M^7 + ζ M^8 + η M^9.5)      (their eq. 1)
    R/R_sun = (θ M^2.5 + ι M^6.5 + κ M^11 + λ M^19 + μ M^19.5)
              / (ν + ξ M^2 + o M^8.5 + M^18.5 + π M^19.5)                            (their eq. 2)

with M in M_sun and every coefficient a quartic polynomial in
log10(Z / 0.02) (their eq. 3 and Tables 1 and 2; ν does not depend on Z).
Z = 0.02 is Tout et al.'s solar calibration, so [Fe/H] maps to
Z = 0.02 · 10^[Fe/H] here (``Z_SUN_MODEL``). Hurley, Pols & Tout (2000,
MNRAS 315, 543) use exactly these fits as the ZAMS of SSE/BSE.

In astrobayes this plays the "expensive simulator" that a network learns
(:mod:`astrobayes.stars.emulator`); numpy in gives numpy out and torch in gives
torch out (differentiable), so the exact model can also stand in for the
learned map inside a hierarchical model.
"""
from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import torch
from astropy import constants
from astropy.table import QTable

__all__ = ["Z_SUN_MODEL", "MASS_RANGE", "METALLICITY_RANGE", "LOG_MASS_RANGE", "FEH_RANGE", "zams_luminosity",
           "zams_radius", "zams_teff", "zams_table", "zams_log_radius_teff", "feh_to_metallicity"]

#: Tout et al.'s solar metallicity: their coefficients are polynomials in log10(Z / 0.02)
Z_SUN_MODEL = 0.02
#: validity of the fits in M / M_sun (Tout et al. 1996, abstract and Section 3)
MASS_RANGE = (0.1, 100.0)
#: validity of the fits in Z (Tout et al. 1996)
METALLICITY_RANGE = (1e-4, 0.03)
#: the same validity in the learned map's inputs: log10(M / M_sun) and [Fe/H] = log10(Z / 0.02)
LOG_MASS_RANGE = (math.log10(MASS_RANGE[0]), math.log10(MASS_RANGE[1]))
FEH_RANGE = (math.log10(METALLICITY_RANGE[0] / Z_SUN_MODEL), math.log10(METALLICITY_RANGE[1] / Z_SUN_MODEL))

# Tout et al. (1996) Table 1: rows α, β, γ, δ, ε, ζ, η of eq. (1); columns are the
# coefficients of 1, ζ_Z, ζ_Z², ζ_Z³, ζ_Z⁴ with ζ_Z = log10(Z / 0.02).
# Values as printed in the paper, and identical in SSE/BSE (Hurley et al. 2000),
# COMPAS (src/constants.h, L_COEFF) and several independent ports.
_LUMINOSITY_COEFFICIENTS = (
    (0.39704170, -0.32913574, 0.34776688, 0.37470851, 0.09011915),      # α
    (8.52762600, -24.41225973, 56.43597107, 37.06152575, 5.45624060),   # β
    (0.00025546, -0.00123461, -0.00023246, 0.00045519, 0.00016176),     # γ
    (5.43288900, -8.62157806, 13.44202049, 14.51584135, 3.39793084),    # δ
    (5.56357900, -10.32345224, 19.44322980, 18.97361347, 4.16903097),   # ε
    (0.78866060, -2.90870942, 6.54713531, 4.05606657, 0.53287322),      # ζ
    (0.00586685, -0.01704237, 0.03872348, 0.02570041, 0.00383376),      # η
)
# Tout et al. (1996) Table 2: rows θ, ι, κ, λ, μ, ν, ξ, o, π of eq. (2).
_RADIUS_COEFFICIENTS = (
    (1.71535900, 0.62246212, -0.92557761, -1.16996966, -0.30631491),    # θ
    (6.59778800, -0.42450044, -12.13339427, -10.73509484, -2.51487077),  # ι
    (10.08855000, -7.11727086, -31.67119479, -24.24848322, -5.33608972),  # κ
    (1.01249500, 0.32699690, -0.00923418, -0.03876858, -0.00412750),    # λ
    (0.07490166, 0.02410413, 0.07233664, 0.03040467, 0.00197741),       # μ
    (0.01077422, 0.0, 0.0, 0.0, 0.0),                                   # ν (independent of Z)
    (3.08223400, 0.94472050, -2.15200882, -2.49219496, -0.63848738),    # ξ
    (17.84778000, -7.45345690, -48.96066856, -40.05386135, -9.09331816),  # o
    (0.00022582, -0.00186899, 0.00388783, 0.00142402, -0.00007671),     # π
)

# T_eff = (L / (4π σ_SB R²))^(1/4) = T_scale · (L/L_sun)^(1/4) / (R/R_sun)^(1/2),
# T_scale ≈ 5772 K with astropy's (IAU 2015 nominal) L_sun and R_sun.
_TEFF_SCALE_K = float(((constants.L_sun / (4 * math.pi * constants.sigma_sb * constants.R_sun ** 2)) ** 0.25)
                      .to_value(u.K))
_LOG10_TEFF_SCALE = math.log10(_TEFF_SCALE_K)


# --------------------------------------------------------------------------- inputs
def _as_array(value, name: str, unit: u.UnitBase | None):
    """``value`` as a float64 numpy array or torch tensor (Quantities converted to ``unit``)."""
    # numpy reads None as NaN: a missing argument would surface as a puzzling "contains NaN"
    if value is None or (isinstance(value, (list, tuple)) and any(v is None for v in _flatten(value))):
        raise TypeError(f"{name} must be a number, an array of numbers or a tensor, got None"
                        + (" inside a sequence" if value is not None else ""))
    if isinstance(value, u.Quantity):
        target = unit if unit is not None else u.dimensionless_unscaled
        try:
            value = value.to_value(target)
        except u.UnitConversionError:
            raise ValueError(f"{name} has unit {value.unit}, which cannot be converted to "
                             f"{target.to_string() or 'a dimensionless number'}") from None
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {value.dtype}")
        return value
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, an array of numbers or a tensor, got "
                        f"{type(value).__name__}") from None
    return array


def _flatten(values):
    """The items of nested lists/tuples."""
    for item in values:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _check_finite(values, name: str) -> None:
    array = _numpy(values)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf ({int(np.sum(~np.isfinite(array)))} value(s))")


def _check_range(values, name: str, low: float, high: float, what: str) -> None:
    array = _numpy(values)
    outside = (array < low) | (array > high)
    if np.any(outside):
        raise ValueError(f"{name} must lie within {what} [{low:g}, {high:g}] where the Tout et al. (1996) fits are "
                         f"valid; {int(outside.sum())} value(s) outside, from {array.min():.6g} to {array.max():.6g} "
                         "(pass check=False to extrapolate at your own risk)")


def _prepare(mass, metallicity, check: bool, mass_name: str = "mass", metallicity_name: str = "metallicity"):
    """Checked (mass, metallicity) in a common backend, broadcast, float64; plus how to return results."""
    mass = _as_array(mass, mass_name, u.solMass)
    metallicity = _as_array(metallicity, metallicity_name, None)
    use_torch = isinstance(mass, torch.Tensor) or isinstance(metallicity, torch.Tensor)
    if use_torch:
        # float64 inside: M^19.5 reaches 1e39 at 100 M_sun, beyond float32's range
        floats = [t.dtype for t in (mass, metallicity) if isinstance(t, torch.Tensor) and t.is_floating_point()]
        out_dtype = torch.promote_types(*floats) if len(floats) == 2 else (floats[0] if floats else torch.float64)
        device = next(t.device for t in (mass, metallicity) if isinstance(t, torch.Tensor))
        mass = torch.as_tensor(mass, dtype=torch.float64, device=device)
        metallicity = torch.as_tensor(metallicity, dtype=torch.float64, device=device)
        try:
            mass, metallicity = torch.broadcast_tensors(mass, metallicity)
        except RuntimeError:
            raise ValueError(f"{mass_name} (shape {tuple(mass.shape)}) and {metallicity_name} (shape "
                             f"{tuple(metallicity.shape)}) do not broadcast together") from None
        finish = (lambda t: t.to(out_dtype))
    else:
        try:
            mass, metallicity = np.broadcast_arrays(mass, metallicity)
        except ValueError:
            raise ValueError(f"{mass_name} (shape {mass.shape}) and {metallicity_name} (shape {metallicity.shape}) "
                             "do not broadcast together") from None
        finish = (lambda a: a[()])  # 0-d arrays come back as numpy scalars
    _check_finite(mass, mass_name)
    _check_finite(metallicity, metallicity_name)
    if check:
        _check_range(mass, mass_name, *MASS_RANGE, "the mass range (M_sun)")
        _check_range(metallicity, metallicity_name, *METALLICITY_RANGE, "the metallicity range Z")
    elif np.any(_numpy(metallicity) <= 0) or np.any(_numpy(mass) <= 0):
        raise ValueError(f"{mass_name} and {metallicity_name} must be positive, even with check=False")
    return mass, metallicity, use_torch, finish


# --------------------------------------------------------------------------- the fits
def _log10(x, use_torch: bool):
    return torch.log10(x) if use_torch else np.log10(x)


def _coefficients(table, zeta):
    """Each row's quartic in ζ_Z = log10(Z / 0.02), evaluated by Horner's rule."""
    return [c0 + zeta * (c1 + zeta * (c2 + zeta * (c3 + zeta * c4))) for c0, c1, c2, c3, c4 in table]


def _luminosity(mass, zeta):
    a, b, g, d, e, z, h = _coefficients(_LUMINOSITY_COEFFICIENTS, zeta)
    m = mass
    return (a * m ** 5.5 + b * m ** 11) / (g + m ** 3 + d * m ** 5 + e * m ** 7 + z * m ** 8 + h * m ** 9.5)


def _radius(mass, zeta):
    th, io, ka, la, mu, nu, xi, om, pi = _coefficients(_RADIUS_COEFFICIENTS, zeta)
    m = mass
    return ((th * m ** 2.5 + io * m ** 6.5 + ka * m ** 11 + la * m ** 19 + mu * m ** 19.5)
            / (nu + xi * m ** 2 + om * m ** 8.5 + m ** 18.5 + pi * m ** 19.5))


def zams_luminosity(mass, metallicity=Z_SUN_MODEL, *, check: bool = True):
    """ZAMS luminosity L / L_sun from Tout et al. (1996), eq. (1) and Table 1.

    Parameters
    ----------
    mass : float, array, torch.Tensor or Quantity
        Stellar mass in M_sun (a Quantity is converted to solMass).
    metallicity : float, array or torch.Tensor
        Metal mass fraction Z (Z_sun = 0.02 in this calibration); broadcast
        against ``mass``.
    check : bool
        Refuse values outside 0.1 ≤ M ≤ 100 and 1e-4 ≤ Z ≤ 0.03 (ValueError).

    Returns
    -------
    numpy array (or scalar) or torch.Tensor
        L / L_sun, the backend of the input (torch if either input is torch).

    Examples
    --------
    >>> round(float(zams_luminosity(1.0)), 3)
    0.698
    """
    mass, metallicity, use_torch, finish = _prepare(mass, metallicity, check)
    return finish(_luminosity(mass, _log10(metallicity / Z_SUN_MODEL, use_torch)))


def zams_radius(mass, metallicity=Z_SUN_MODEL, *, check: bool = True):
    """ZAMS radius R / R_sun from Tout et al. (1996), eq. (2) and Table 2.

    Parameters are those of :func:`zams_luminosity`.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(float(zams_radius(1.0 * u.solMass)), 3)
    0.888
    """
    mass, metallicity, use_torch, finish = _prepare(mass, metallicity, check)
    return finish(_radius(mass, _log10(metallicity / Z_SUN_MODEL, use_torch)))


def zams_teff(mass, metallicity=Z_SUN_MODEL, *, check: bool = True):
    """ZAMS effective temperature in K: T_eff = (L / (4π σ_SB R²))^(1/4).

    L and R from :func:`zams_luminosity` and :func:`zams_radius`; σ_SB, L_sun
    and R_sun from ``astropy.constants``. Parameters as for
    :func:`zams_luminosity`.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(zams_teff([1.0, 10.0], 0.02), -1)
    array([ 5600., 25090.])
    """
    mass, metallicity, use_torch, finish = _prepare(mass, metallicity, check)
    zeta = _log10(metallicity / Z_SUN_MODEL, use_torch)
    luminosity, radius = _luminosity(mass, zeta), _radius(mass, zeta)
    return finish(_TEFF_SCALE_K * luminosity ** 0.25 / radius ** 0.5)


def feh_to_metallicity(feh):
    """Z = 0.02 · 10^[Fe/H], the conversion used throughout ``astrobayes.stars``.

    Assumes a solar-scaled mixture and Tout et al.'s solar Z = 0.02.

    Examples
    --------
    >>> float(feh_to_metallicity(0.0))
    0.02
    """
    if isinstance(feh, torch.Tensor):
        return Z_SUN_MODEL * 10.0 ** feh
    if feh is None:
        raise TypeError("feh must be a number, an array of numbers or a tensor, got None")
    try:
        return Z_SUN_MODEL * np.power(10.0, feh)
    except TypeError:
        raise TypeError(f"feh must be a number, an array of numbers or a tensor, got {type(feh).__name__}") from None


def zams_log_radius_teff(log_mass, feh, *, check: bool = True):
    """log10(R / R_sun) and log10(T_eff / K) on the ZAMS: the target of the learned stellar map.

    Parameters
    ----------
    log_mass : float, array or torch.Tensor
        log10(M / M_sun).
    feh : float, array or torch.Tensor
        [Fe/H]; Z = 0.02 · 10^[Fe/H] (Tout et al.'s solar calibration), so the
        validity range 1e-4 ≤ Z ≤ 0.03 is −2.30 ≤ [Fe/H] ≤ 0.176.
    check : bool
        Refuse inputs outside the validity range of the fits.

    Returns
    -------
    (log_radius, log_teff)
        Two arrays (or tensors) of the broadcast shape of the inputs.

    Examples
    --------
    >>> log_radius, log_teff = zams_log_radius_teff([0.0, 1.0], [0.0, -0.5])
    >>> log_radius.round(3), log_teff.round(3)
    (array([-0.051,  0.531]), array([3.748, 4.433]))
    """
    log_mass = _as_array(log_mass, "log_mass", None)
    feh = _as_array(feh, "feh", None)
    _check_finite(log_mass, "log_mass")
    _check_finite(feh, "feh")
    use_torch = isinstance(log_mass, torch.Tensor) or isinstance(feh, torch.Tensor)
    mass = 10.0 ** log_mass if use_torch else np.power(10.0, log_mass)
    metallicity = feh_to_metallicity(feh)
    if check:
        _check_range(log_mass, "log_mass", *LOG_MASS_RANGE, "log10(M/M_sun) range")
        _check_range(feh, "feh", *FEH_RANGE, "[Fe/H] range (Z = 0.02·10^[Fe/H] within 1e-4..0.03)")
    mass, metallicity, use_torch, finish = _prepare(mass, metallicity, False, "log_mass", "feh")
    zeta = _log10(metallicity / Z_SUN_MODEL, use_torch)
    log_luminosity = _log10(_luminosity(mass, zeta), use_torch)
    log_radius = _log10(_radius(mass, zeta), use_torch)
    log_teff = _LOG10_TEFF_SCALE + 0.25 * log_luminosity - 0.5 * log_radius
    return finish(log_radius), finish(log_teff)


def zams_table(mass, metallicity=Z_SUN_MODEL, *, check: bool = True) -> QTable:
    """ZAMS properties as a QTable: mass, metallicity, luminosity, radius, teff.

    Parameters
    ----------
    mass : float, array or Quantity
        M in M_sun (or a mass Quantity).
    metallicity : float or array
        Z, broadcast against ``mass``.
    check : bool
        Refuse values outside the validity range of the fits.

    Returns
    -------
    QTable
        Columns ``mass`` [solMass], ``metallicity`` (Z, dimensionless),
        ``luminosity`` [solLum], ``radius`` [solRad], ``teff`` [K]; ``meta``
        names the model.

    Examples
    --------
    >>> table = zams_table([1.0, 2.0], 0.02)
    >>> table["luminosity"].unit, len(table)
    (Unit("solLum"), 2)
    """
    if isinstance(mass, torch.Tensor) or isinstance(metallicity, torch.Tensor):
        raise TypeError("zams_table builds an astropy table: pass numpy arrays or Quantities, not torch tensors")
    mass_values, z_values, _, _ = _prepare(mass, metallicity, check)
    mass_values, z_values = np.atleast_1d(mass_values).ravel(), np.atleast_1d(z_values).ravel()
    zeta = np.log10(z_values / Z_SUN_MODEL)
    luminosity, radius = _luminosity(mass_values, zeta), _radius(mass_values, zeta)
    table = QTable()
    table["mass"] = mass_values * u.solMass
    table["metallicity"] = z_values * u.dimensionless_unscaled
    table["luminosity"] = luminosity * u.solLum
    table["radius"] = radius * u.solRad
    table["teff"] = _TEFF_SCALE_K * luminosity ** 0.25 / radius ** 0.5 * u.K
    table.meta["model"] = "Tout, Pols, Eggleton & Han (1996, MNRAS 281, 257) ZAMS fits"
    table.meta["z_sun_model"] = Z_SUN_MODEL
    return table
