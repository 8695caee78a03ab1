"""Linear matter power spectrum: Eisenstein & Hu (1998) transfer function, primordial tilt, σ₈ normalisation.

P_L(k, z) = A k^(n_s) T(k)² D(z)², with T the fitting formula of Eisenstein & Hu (1998, ApJ 496,
605; "EH98"), either the full one with baryon acoustic oscillations (their eqs. 2–24) or the
zero-baryon shape with the baryon-suppressed Γ_eff (their §4.2, eqs. 26–31, "no wiggles"), D the
growth factor of :mod:`~astrobayes.shear.background` and A fixed so that the top-hat variance at
R = 8 Mpc/h is σ₈². Each spectrum (wiggles or not) is normalised to σ₈ on its own.

**Units**: k in h/Mpc, P in (Mpc/h)³, the dimensionless Δ²(k) = k³ P / (2π²). The CMB temperature
of the transfer function is T_CMB = 2.7255 K (Fixsen 2009); massive neutrinos are not modelled.

For speed every cosmology's Δ²(k, z=0) is tabulated once on a grid uniform in ln k (10⁻⁵–10⁵ h/Mpc,
step 0.02, cubic Hermite interpolation; error < 1e-4 on the wiggles), which serves the σ₈ integral, the
Gaussian-filtered variances of halofit (:mod:`~astrobayes.shear.halofit`) and the Limber integral.
:func:`linear_power` evaluates the formula itself at the requested k.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .background import broadcast_parameters, check_w, growth_at, hermite, parameter

__all__ = ["linear_power", "eisenstein_hu_transfer"]

#: CMB temperature today [K] (Fixsen 2009, ApJ 707, 916)
T_CMB = 2.7255
#: the ln k grid of the tabulated spectra [k in h/Mpc]
LN_K_MIN, LN_K_STEP, N_K = math.log(1e-5), 0.02, 1152


def cosmology_batch(omega_m, sigma8, omega_b, h, n_s, w) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Check and broadcast the parameters of :func:`linear_power`: (batch shape, {name: (m, 1) column})."""
    shape, p = broadcast_parameters(
        omega_m=parameter("omega_m", omega_m, low=0, high=1, low_open=True),
        sigma8=parameter("sigma8", sigma8, low=0, low_open=True),
        omega_b=parameter("omega_b", omega_b, low=0, low_open=True),
        h=parameter("h", h, low=0, low_open=True),
        n_s=parameter("n_s", n_s),
        w=check_w(w))
    if (p["omega_b"] >= p["omega_m"]).any():
        raise ValueError("omega_b must be smaller than omega_m (the EH98 transfer function needs cold dark matter)")
    return shape, p


def eisenstein_hu_transfer(k, omega_m, omega_b, h, *, wiggles: bool = True) -> np.ndarray:
    """Matter transfer function T(k) of Eisenstein & Hu (1998), with or without baryon wiggles.

    Parameters
    ----------
    k : array
        Wavenumbers in 1/Mpc (**not** h/Mpc), broadcast against the parameters.
    omega_m, omega_b, h : float or array
        Matter and baryon densities today (Ω_m, Ω_b) and H0 / (100 km/s/Mpc).
    wiggles : bool
        True: the full fitting formula with baryon acoustic oscillations (EH98 eqs. 2–24);
        False: the zero-baryon shape with the effective shape parameter Γ_eff (§4.2, eqs. 26–31).

    Returns
    -------
    ndarray
        T(k), dimensionless, → 1 as k → 0.

    Examples
    --------
    >>> k = np.array([1e-4, 0.1, 1.0])
    >>> eisenstein_hu_transfer(k, 0.3, 0.045, 0.7).round(4)
    array([0.9998, 0.0879, 0.0027])
    """
    k = np.asarray(k, dtype=np.float64)
    theta = T_CMB / 2.7
    om_h2 = omega_m * h * h
    ob_h2 = omega_b * h * h
    f_b = omega_b / omega_m
    if not wiggles:
        s = 44.5 * np.log(9.83 / om_h2) / np.sqrt(1 + 10 * ob_h2**0.75)  # eq. 26, Mpc
        alpha_gamma = 1 - 0.328 * np.log(431 * om_h2) * f_b + 0.38 * np.log(22.3 * om_h2) * f_b**2  # eq. 31
        gamma_eff = omega_m * h * (alpha_gamma + (1 - alpha_gamma) / (1 + (0.43 * k * s) ** 4))  # eq. 30
        q = k / h * theta**2 / gamma_eff  # eq. 28
        big_l = np.log(2 * math.e + 1.8 * q)
        big_c = 14.2 + 731 / (1 + 62.5 * q)
        return big_l / (big_l + big_c * q * q)  # eq. 29
    f_c = 1 - f_b
    z_eq = 2.50e4 * om_h2 * theta**-4  # eq. 2
    k_eq = 7.46e-2 * om_h2 * theta**-2  # eq. 3, 1/Mpc
    b1 = 0.313 * om_h2**-0.419 * (1 + 0.607 * om_h2**0.674)
    b2 = 0.238 * om_h2**0.223
    z_d = 1291 * om_h2**0.251 / (1 + 0.659 * om_h2**0.828) * (1 + b1 * ob_h2**b2)  # eq. 4
    r_eq = 31.5 * ob_h2 * theta**-4 * (1e3 / z_eq)  # eq. 5
    r_d = 31.5 * ob_h2 * theta**-4 * (1e3 / z_d)
    s = (2 / (3 * k_eq) * np.sqrt(6 / r_eq)
         * np.log((np.sqrt(1 + r_d) + np.sqrt(r_d + r_eq)) / (1 + np.sqrt(r_eq))))  # eq. 6, sound horizon
    k_silk = 1.6 * ob_h2**0.52 * om_h2**0.73 * (1 + (10.4 * om_h2) ** -0.95)  # eq. 7
    q = k / (13.41 * k_eq)  # eq. 10
    a1 = (46.9 * om_h2) ** 0.670 * (1 + (32.1 * om_h2) ** -0.532)
    a2 = (12.0 * om_h2) ** 0.424 * (1 + (45.0 * om_h2) ** -0.582)
    alpha_c = a1**-f_b * a2 ** -(f_b**3)  # eq. 11
    bb1 = 0.944 / (1 + (458 * om_h2) ** -0.708)
    bb2 = (0.395 * om_h2) ** -0.0266
    beta_c = 1 / (1 + bb1 * (f_c**bb2 - 1))  # eq. 12
    log_q = np.log(np.e + 1.8 * q)

    def shape(alpha, beta_log):  # eqs. 19–20, T̃0(k, α, β); beta_log = ln(e + 1.8 β q)
        return beta_log / (beta_log + (14.2 / alpha + 386 / (1 + 69.9 * q**1.08)) * q * q)

    log_bq = np.log(np.e + 1.8 * beta_c * q)
    ks = k * s
    f = 1 / (1 + (ks / 5.4) ** 4)  # eq. 18
    t_cdm = f * shape(1.0, log_bq) + (1 - f) * shape(alpha_c, log_bq)  # eq. 17
    y = (1 + z_eq) / (1 + z_d)
    sqrt_1y = np.sqrt(1 + y)
    g_y = y * (-6 * sqrt_1y + (2 + 3 * y) * np.log((sqrt_1y + 1) / (sqrt_1y - 1)))  # eq. 15
    alpha_b = 2.07 * k_eq * s * (1 + r_d) ** -0.75 * g_y  # eq. 14
    beta_b = 0.5 + f_b + (3 - 2 * f_b) * np.sqrt((17.2 * om_h2) ** 2 + 1)  # eq. 24
    beta_node = 8.41 * om_h2**0.435  # eq. 23
    with np.errstate(divide="ignore", over="ignore"):  # k → 0: the ratios → ∞ and their terms → 0, as they should
        s_tilde = s / np.cbrt(1 + (beta_node / ks) ** 3)  # eq. 22
        t_baryon = (shape(1.0, log_q) / (1 + (ks / 5.2) ** 2)
                    + alpha_b / (1 + (beta_b / ks) ** 3) * np.exp(-((k / k_silk) ** 1.4))) * np.sinc(k * s_tilde / np.pi)
    return f_b * t_baryon + f_c * t_cdm  # eq. 16


@lru_cache(maxsize=1)
def _grid():
    """The ln k nodes and their trapezoid weights in ln k, and the top-hat weights W²(k·8 Mpc/h) of σ₈."""
    ln_k = LN_K_MIN + LN_K_STEP * np.arange(N_K)
    weights = np.full(N_K, LN_K_STEP)
    weights[[0, -1]] *= 0.5
    x = 8.0 * np.exp(ln_k)
    tophat = np.where(x < 1e-3, 1 - x * x / 10, 3 * (np.sin(x) - x * np.cos(x)) / np.maximum(x, 1e-3) ** 3)
    return ln_k, weights, weights * tophat**2


class LinearPower:
    """Δ²(k, z=0) of a batch of cosmologies, tabulated on the ln k grid and normalised to σ₈.

    ``params`` are the (m, 1) columns of :func:`cosmology_batch`.
    """

    def __init__(self, params: dict[str, np.ndarray], wiggles: bool = True):
        self.params = params
        self.wiggles = wiggles
        ln_k, _, tophat_weights = _grid()
        shape = self._ln_shape(ln_k)  # ln(k^(3+n_s) T²), unnormalised
        peak = shape.max(axis=1, keepdims=True)  # scale out before exponentiating
        variance = np.exp(shape - peak) @ tophat_weights  # σ²(8 Mpc/h) / e^peak
        self.ln_norm = 2 * np.log(params["sigma8"]) - np.log(variance)[:, None] - peak
        self.ln_delta2 = shape + self.ln_norm  # (m, N_K)
        self.slope = np.gradient(self.ln_delta2, LN_K_STEP, axis=1)  # for the cubic Hermite interpolation

    def _ln_shape(self, ln_k: np.ndarray) -> np.ndarray:
        p = self.params
        k_mpc = np.exp(ln_k) * p["h"]  # EH98 takes k in 1/Mpc
        transfer = eisenstein_hu_transfer(k_mpc, p["omega_m"], p["omega_b"], p["h"], wiggles=self.wiggles)
        return (3 + p["n_s"]) * ln_k + 2 * np.log(np.abs(transfer))

    def ln_delta2_exact(self, ln_k: np.ndarray) -> np.ndarray:
        """ln Δ²(k, 0) from the formula at ln k shared by the batch: (m, n_k)."""
        return self._ln_shape(ln_k) + self.ln_norm

    def ln_delta2_interp(self, ln_k: np.ndarray) -> np.ndarray:
        """ln Δ²(k, 0) interpolated from the table at per-row points ln_k of shape (m, ...)."""
        return hermite(LN_K_MIN, LN_K_STEP, self.ln_delta2, self.slope, ln_k, per_row=True)


def redshift_array(z) -> np.ndarray:
    """z: finite, in [0, 999] (the growth integration starts at a = 1e-3), at most 1-D; ValueError naming ``z``."""
    redshift = parameter("z", z, low=0.0, high=999.0)
    if redshift.ndim > 1:
        raise ValueError(f"z must be a number or a 1-D array, got shape {redshift.shape}")
    return redshift


def wavenumbers(k) -> np.ndarray:
    """k in h/Mpc: finite, > 0, at most 1-D; ValueError naming ``k`` otherwise."""
    wavenumber = parameter("k", k, low=0.0, low_open=True)
    if wavenumber.ndim > 1:
        raise ValueError(f"k must be a number or a 1-D array, got shape {wavenumber.shape}")
    return wavenumber


def linear_power(k, z, omega_m, sigma8, *, omega_b=0.045, h=0.7, n_s=0.96, w=-1.0, wiggles=True) -> np.ndarray:
    """Linear matter power spectrum P_L(k, z) of flat wCDM cosmologies (EH98 transfer, σ₈-normalised).

    P_L(k, z) = A k^(n_s) T(k)² D(z)², T from Eisenstein & Hu (1998), A such that the top-hat
    variance at 8 Mpc/h today is σ₈² (for the wiggle and the no-wiggle T separately).

    Parameters
    ----------
    k : float or array (n_k,)
        Wavenumbers in h/Mpc, > 0.
    z : float or array (n_z,)
        Redshifts, 0 ≤ z ≤ 999.
    omega_m, sigma8 : float or array
        Ω_m in (0, 1] and σ₈ > 0.
    omega_b : float or array
        Ω_b, 0 < Ω_b < Ω_m.
    h : float or array
        H0 / (100 km/s/Mpc).
    n_s : float or array
        Primordial spectral index.
    w : float or array
        Dark-energy equation of state (constant), ≤ −1/3. All parameters broadcast together.
    wiggles : bool
        With baryon acoustic oscillations (the full EH98 formula) or without (EH98 §4.2).

    Returns
    -------
    ndarray, shape ``batch + z.shape + k.shape``
        P_L in (Mpc/h)³, where ``batch`` is the broadcast shape of the parameters.

    Examples
    --------
    >>> k = np.array([0.01, 0.1, 1.0])
    >>> linear_power(k, 0.0, 0.3, 0.8).round(0)
    array([20610.,  5424.,    64.])
    >>> linear_power(k, [0.0, 1.0], [0.25, 0.3], 0.8).shape  # 2 cosmologies, 2 redshifts, 3 k
    (2, 2, 3)
    """
    wavenumber = wavenumbers(k)
    redshift = redshift_array(z)
    shape, p = cosmology_batch(omega_m, sigma8, omega_b, h, n_s, w)
    linear = LinearPower(p, wiggles=bool(wiggles))
    ln_k = np.log(np.atleast_1d(wavenumber))
    ln_delta2 = linear.ln_delta2_exact(ln_k)  # (m, n_k)
    growth = growth_at(np.log1p(np.atleast_1d(redshift)), p["omega_m"], p["w"])  # (m, n_z)
    power = np.exp(ln_delta2[:, None, :] + 2 * np.log(growth)[:, :, None] - 3 * ln_k) * 2 * np.pi**2
    return power.reshape(shape + redshift.shape + wavenumber.shape)
