"""Flat wCDM background for cosmic shear: comoving distance and linear growth, vectorised in numpy.

Radiation is neglected and the dark-energy equation of state w is constant, so

    E(z)² = H(z)²/H0² = Ω_m (1+z)³ + (1 − Ω_m)(1+z)^(3(1+w)).

Both quantities are computed for a whole batch of cosmologies at once on grids shared by the batch:

* the comoving distance χ = (c/H0) ∫ dz/E on a uniform grid in x = ln(1+z), with the fourth-order
  trapezoid + Euler–Maclaurin rule of :mod:`astrobayes.supernovae.cosmology` (re-written here in
  numpy rather than imported: the shear code is numpy throughout, the Limber integral needs χ and E
  on its own nodes rather than at arbitrary redshifts, and the supernova class is private to that
  domain). :class:`astropy.cosmology.FlatwCDM` with ``Tcmb0=0`` is the reference (tests: < 1e-7);
* the linear growth D(z) from the growth ODE in ln a, integrated with RK4 (the equation is linear,
  so every step is a 2 × 2 matrix, all computed at once), normalised to D(0) = 1. For w = −1 it
  agrees with the Heath (1977) integral to < 1e-6 (tests).

Distances are in Mpc/h internally (then H0 drops out: c/H0 = 2997.92458 Mpc/h); the public
:func:`comoving_distance` returns Mpc.
"""
from __future__ import annotations

import math

import astropy.units as u
import numpy as np

__all__ = ["comoving_distance", "growth_factor", "HUBBLE_DISTANCE"]

#: c/H0 in Mpc/h (c = 299792.458 km/s, H0 = 100 h km/s/Mpc)
HUBBLE_DISTANCE = 2997.92458
#: step in x = ln(1+z) of the public distance grid (error < 1e-9 relative, fourth order)
_DISTANCE_STEP = 0.01
#: the growth ODE starts at a = 1e-3 with the first-order dark-energy correction (error O(Ω_de(a)²))
_GROWTH_LN_A_START = math.log(1e-3)
#: RK4 steps of the growth ODE from a = 1e-3 to 1 (step 0.058 in ln a; error < 1e-6 against Heath for Ω_m ≥ 0.05)
_GROWTH_STEPS = 120


def parameter(name: str, value, *, low: float = -np.inf, high: float = np.inf, low_open: bool = False,
              high_open: bool = False) -> np.ndarray:
    """``value`` as a float64 array, checked finite and inside [low, high] (open where asked); ValueError naming it.

    Quantities with a unit are refused (TypeError): the units of these functions are fixed and documented
    (k in h/Mpc, not 1/Mpc), so a silent conversion could be a wrong answer.
    """
    if isinstance(value, u.Quantity) and value.unit != u.dimensionless_unscaled:
        raise TypeError(f"{name} takes plain numbers in the documented unit, got a Quantity in {value.unit}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    below = (array <= low) if low_open else (array < low)
    above = (array >= high) if high_open else (array > high)
    if below.any() or above.any():
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        bad = array[below | above].ravel()[0]
        raise ValueError(f"{name} must lie in {interval}, got {bad:g}")
    return array


def broadcast_parameters(**arrays: np.ndarray) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Broadcast named parameter arrays; returns (batch shape, {name: flat (m, 1) column})."""
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        raise ValueError(f"the cosmological parameters do not broadcast: {shapes}") from None
    return shape, {k: np.broadcast_to(v, shape).reshape(-1, 1) for k, v in arrays.items()}


def check_w(w) -> np.ndarray:
    """w, constant, ≤ −1/3 (the growth ODE starts in matter domination; see _GROWTH_LN_A_START)."""
    return parameter("w", w, high=-1 / 3)


def dark_energy_fraction(x: np.ndarray, omega_m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Ω_de(z) = (1 − Ω_m)(1+z)^(3(1+w)) / E², written so that Ω_m = 1 gives 0 without 0/0."""
    return (1 - omega_m) / ((1 - omega_m) + omega_m * np.exp(-3 * w * x))


def comoving_nodes(step: float, n_nodes: int, omega_m: np.ndarray, w: np.ndarray):
    """χ/(c/H0) and E at the nodes x_i = i·step, i < n_nodes, for (m, 1) columns: two (m, n_nodes) arrays.

    χ = ∫₀ˣ f dx with f = (1+z)/E; trapezoid plus its Euler–Maclaurin end correction
    h²/12 (f'_i − f'_{i+1}), with the exact f' = f (1 − ½ d ln E²/dx): fourth order.
    """
    x = step * np.arange(n_nodes)
    matter = omega_m * np.exp(3 * x)
    dark = (1 - omega_m) * np.exp(3 * (1 + w) * x)
    e_sq = matter + dark
    f = np.exp(x) / np.sqrt(e_sq)
    df = f * (1 - 1.5 * (matter + (1 + w) * dark) / e_sq)
    steps = 0.5 * step * (f[:, :-1] + f[:, 1:]) + step**2 / 12 * (df[:, :-1] - df[:, 1:])
    chi = np.concatenate([np.zeros_like(f[:, :1]), np.cumsum(steps, axis=1)], axis=1)
    return chi, np.sqrt(e_sq)


def hermite(x0: float, step: float, values: np.ndarray, slopes: np.ndarray, x: np.ndarray, *,
            per_row: bool = False) -> np.ndarray:
    """Cubic Hermite interpolation on the uniform nodes x0 + i·step of (m, n) values with their x-derivatives.

    ``x`` is shared by all rows (any shape; result (m,) + x.shape) or, with ``per_row``, has shape
    (m, ...) with its own points for each row (result x.shape). Points off the grid extrapolate the
    end cubics.
    """
    n = values.shape[1]
    position = (np.asarray(x, dtype=np.float64) - x0) / step
    index = np.clip(np.floor(position).astype(np.intp), 0, n - 2)
    t = position - index
    t2, t3 = t * t, t * t * t
    h00, h10, h01, h11 = 2 * t3 - 3 * t2 + 1, step * (t3 - 2 * t2 + t), 3 * t2 - 2 * t3, step * (t3 - t2)
    if per_row:
        flat = index.reshape(len(index), -1)
        take = lambda a, i: np.take_along_axis(a, i, axis=1).reshape(index.shape)  # noqa: E731
        return (h00 * take(values, flat) + h10 * take(slopes, flat) + h01 * take(values, flat + 1)
                + h11 * take(slopes, flat + 1))
    return h00 * values[:, index] + h10 * slopes[:, index] + h01 * values[:, index + 1] + h11 * slopes[:, index + 1]


def growth_nodes(omega_m: np.ndarray, w: np.ndarray):
    """Suppression g = D/a and dg/d ln a on the uniform ln a grid of the growth ODE, for (m, 1) columns.

    With Ω_de(a) the dark-energy fraction, the linear growth equation
    D'' + (2 + d ln H/d ln a) D' − (3/2) Ω_m(a) D = 0 (' = d/d ln a) becomes, for g = D/a,

        g'' + (5/2 − (3/2) w Ω_de) g' + (3/2)(1 − w) Ω_de g = 0,

    started at a = 1e-3 on the growing mode g = 1 + c Ω_de, c = −(3/2)(1 − w)/(3w(3w − 5/2))
    (c = −2/11 for Λ, the familiar 1 − 2/11 (Ω_Λ/Ω_m) a³). Returns (ln a nodes, g, g'), unnormalised.
    """
    ln_a = np.linspace(_GROWTH_LN_A_START, 0.0, _GROWTH_STEPS + 1)
    step = ln_a[1] - ln_a[0]
    half_nodes = np.linspace(_GROWTH_LN_A_START, 0.0, 2 * _GROWTH_STEPS + 1)
    fraction = dark_energy_fraction(-half_nodes, omega_m, w)  # (m, 2N+1); x = ln(1+z) = −ln a
    # y' = A y with y = (g, g'), A = [[0, 1], [p, q]]
    p = -1.5 * (1 - w) * fraction
    q = -(2.5 - 1.5 * w * fraction)
    a_mat = np.zeros(p.shape + (2, 2))
    a_mat[..., 0, 1] = 1.0
    a_mat[..., 1, 0] = p
    a_mat[..., 1, 1] = q
    start, middle, end = a_mat[:, :-1:2], a_mat[:, 1::2], a_mat[:, 2::2]
    eye = np.eye(2)
    k1 = start
    k2 = middle @ (eye + 0.5 * step * k1)
    k3 = middle @ (eye + 0.5 * step * k2)
    k4 = end @ (eye + step * k3)
    transfer = eye + step / 6 * (k1 + 2 * k2 + 2 * k3 + k4)  # (m, N, 2, 2): one RK4 step of a linear ODE
    c = -1.5 * (1 - w[:, 0]) / (3 * w[:, 0] * (3 * w[:, 0] - 2.5))
    g = np.empty((len(omega_m), _GROWTH_STEPS + 1))
    dg = np.empty_like(g)
    g[:, 0] = 1 + c * fraction[:, 0]
    dg[:, 0] = -3 * w[:, 0] * c * fraction[:, 0]
    for i in range(_GROWTH_STEPS):
        m = transfer[:, i]
        g[:, i + 1] = m[:, 0, 0] * g[:, i] + m[:, 0, 1] * dg[:, i]
        dg[:, i + 1] = m[:, 1, 0] * g[:, i] + m[:, 1, 1] * dg[:, i]
    return ln_a, g, dg


def growth_at(x: np.ndarray, omega_m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """D(z)/D(0) at x = ln(1+z) (shared, any shape, or per row), for (m, 1) columns."""
    ln_a, g, dg = growth_nodes(omega_m, w)
    step = ln_a[1] - ln_a[0]
    suppression = hermite(ln_a[0], step, g, dg, -np.asarray(x))
    return suppression * np.exp(-np.asarray(x)) / g[:, -1].reshape((-1,) + (1,) * (suppression.ndim - 1))


def _redshifts(z) -> np.ndarray:
    redshift = parameter("z", z, low=0.0)
    if redshift.ndim > 1:
        raise ValueError(f"z must be a number or a 1-D array, got shape {redshift.shape}")
    return redshift


def comoving_distance(z, omega_m, *, w=-1.0, h=0.7) -> np.ndarray:
    """Line-of-sight comoving distance χ(z) = (c/H0) ∫₀ᶻ dz'/E(z') of flat wCDM cosmologies, in Mpc.

    E(z)² = Ω_m (1+z)³ + (1 − Ω_m)(1+z)^(3(1+w)), radiation neglected. Fourth-order quadrature on a
    grid shared by all redshifts and cosmologies (see the module); agrees with
    :meth:`astropy.cosmology.FlatwCDM.comoving_distance` (``Tcmb0=0``) to < 1e-7 relative.

    Parameters
    ----------
    z : float or array (n,)
        Redshifts, ≥ 0.
    omega_m : float or array
        Matter density today Ω_m, in (0, 1].
    w : float or array
        Dark-energy equation of state (constant), ≤ −1/3; broadcast against ``omega_m`` and ``h``.
    h : float or array
        H0 / (100 km/s/Mpc), > 0.

    Returns
    -------
    ndarray, shape ``broadcast(omega_m, w, h).shape + z.shape``
        χ in Mpc.

    Examples
    --------
    >>> round(float(comoving_distance(1.0, 0.3, h=0.7)), 1)  # astropy FlatLambdaCDM(70, 0.3, Tcmb0=0): 3303.8 Mpc
    3303.8
    >>> comoving_distance([0.5, 1.0], [0.25, 0.3, 0.35], w=-0.9).shape
    (3, 2)
    """
    redshift = _redshifts(z)
    shape, p = broadcast_parameters(omega_m=parameter("omega_m", omega_m, low=0, high=1, low_open=True),
                                    w=check_w(w), h=parameter("h", h, low=0, low_open=True))
    x = np.log1p(redshift)
    n_steps = max(8, math.ceil(x.max() / _DISTANCE_STEP))
    step = max(x.max(), 1e-3) / n_steps
    chi, e = comoving_nodes(step, n_steps + 1, p["omega_m"], p["w"])
    f = np.exp(step * np.arange(n_steps + 1)) / e  # dχ/dx
    chi = hermite(0.0, step, chi, f, x) * HUBBLE_DISTANCE / p["h"].reshape((-1,) + (1,) * x.ndim)
    return chi.reshape(shape + redshift.shape)


def growth_factor(z, omega_m, *, w=-1.0) -> np.ndarray:
    """Linear growth factor D(z) of flat wCDM cosmologies, normalised to D(0) = 1.

    Solves the growth ODE in ln a for the whole batch at once (RK4 from a = 1e-3; see the module):
    agrees with the Heath (1977) integral D ∝ E(a) ∫₀ᵃ da'/(a' E(a'))³ for w = −1 to < 1e-6.

    Parameters
    ----------
    z : float or array (n,)
        Redshifts, ≥ 0 (up to z = 999, where the integration starts).
    omega_m : float or array
        Matter density today Ω_m, in (0, 1].
    w : float or array
        Dark-energy equation of state (constant), ≤ −1/3; broadcast against ``omega_m``.

    Returns
    -------
    ndarray, shape ``broadcast(omega_m, w).shape + z.shape``
        D(z)/D(0), dimensionless.

    Examples
    --------
    >>> round(float(growth_factor(1.0, 0.3)), 4)  # flat ΛCDM, Ω_m = 0.3
    0.6118
    >>> round(float(growth_factor(1.0, 1.0)), 12)  # Einstein–de Sitter: D = a
    0.5
    """
    redshift = _redshifts(z)
    if redshift.max() > 999:
        raise ValueError(f"z must be ≤ 999 (the growth integration starts at a = 1e-3), got {redshift.max():g}")
    shape, p = broadcast_parameters(omega_m=parameter("omega_m", omega_m, low=0, high=1, low_open=True),
                                    w=check_w(w))
    growth = growth_at(np.log1p(redshift), p["omega_m"], p["w"])
    return growth.reshape(shape + redshift.shape)
