"""Non-linear matter power spectrum: halofit (Smith et al. 2003, revised by Takahashi et al. 2012).

Halofit writes Δ²_NL = Δ²_Q + Δ²_H, a quasi-linear and a one-halo term (Smith et al. 2003, MNRAS
341, 1311, appendix C, eqs. C1–C18), whose coefficients depend on three numbers per redshift, all
read off the Gaussian-filtered linear variance σ²(R, z) = ∫ d ln k Δ²_L(k, z) exp(−k²R²):

* the non-linear scale k_σ = 1/R_σ where σ(R_σ, z) = 1;
* the effective index n_eff = −3 − d ln σ²/d ln R at R_σ;
* the curvature C = −d² ln σ²/d ln R² at R_σ.

Since σ(R, z) = D(z) σ(R, 0), one table of ln σ²(R, 0) and its first three ln R-derivatives per
cosmology (exact integrals on a grid uniform in ln R, 3·10⁻⁴ ≤ R ≤ 50 Mpc/h, step 0.1, each a matrix
product with the tabulated Δ²) serves every redshift: the root ln σ²(R_σ, 0) = −2 ln D(z) is found
by bracketing on the grid and Newton iterations on the cubic Hermite interpolant, vectorised over
cosmologies and redshifts. A root outside the grid (σ_G < 1 at R = 3·10⁻⁴ Mpc/h, so k_σ > 3000
h/Mpc, only at z ≳ 10) is clamped to its end; the non-linear correction is then negligible anyway.

``"smith03"``: the original coefficients, with f₁,₂,₃(Ω_m(z)) of the flat (Ω_m + Ω_Λ = 1) branch.
``"takahashi12"``: the revised coefficients (Takahashi et al. 2012, ApJ 761, 152, eqs. A6–A13),
including their (1 + w) Ω_de(z) terms; better at k ≳ 1 h/Mpc. For w ≠ −1 the Smith fit is used
unchanged, as is common (it was calibrated on ΛCDM only).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .background import dark_energy_fraction, growth_at, hermite
from .power import LN_K_MIN, LN_K_STEP, N_K, LinearPower, redshift_array, cosmology_batch, wavenumbers

__all__ = ["nonlinear_power", "HALOFIT_MODELS"]

#: the accepted values of ``nonlinear``/``model``
HALOFIT_MODELS = ("smith03", "takahashi12")
#: the ln R grid [R in Mpc/h] of the Gaussian-filtered variance
_LN_R_MIN, _LN_R_STEP, _N_R = math.log(3e-4), 0.1, 121


def check_model(model, name: str = "model", allow_none: bool = False):
    """``model`` if it is one of :data:`HALOFIT_MODELS` (or None where allowed); ValueError naming it otherwise."""
    if (model is None and allow_none) or model in HALOFIT_MODELS:
        return model
    allowed = ", ".join(repr(m) for m in HALOFIT_MODELS + ((None,) if allow_none else ()))
    raise ValueError(f"{name} must be one of {allowed}; got {model!r}")


@lru_cache(maxsize=1)
def _gaussian_kernels() -> np.ndarray:
    """(4, N_R, N_K) weights: σ² and its first three ln R-derivatives as matrix products with Δ²(k).

    With u = k²R², d/d ln R = 2u d/du, so the kernels are e^{−u} times 1, −2u, 4u² − 4u and
    −8u³ + 24u² − 8u, times the trapezoid weights in ln k.
    """
    ln_k = LN_K_MIN + LN_K_STEP * np.arange(N_K)
    ln_r = _LN_R_MIN + _LN_R_STEP * np.arange(_N_R)
    u = np.exp(2 * (ln_r[:, None] + ln_k[None, :]))
    e = np.exp(-u)
    weights = np.full(N_K, LN_K_STEP)
    weights[[0, -1]] *= 0.5
    return np.stack([e, -2 * u * e, (4 * u * u - 4 * u) * e, (-8 * u**3 + 24 * u * u - 8 * u) * e]) * weights


def halofit_scales(linear: LinearPower, growth: np.ndarray):
    """ln k_σ [h/Mpc], n_eff and C, each (m, n_z), for the growth factors D(z) (m, n_z) of the batch."""
    delta2 = np.exp(linear.ln_delta2)  # (m, N_K)
    s0, s1, s2, s3 = (delta2 @ kernel.T for kernel in _gaussian_kernels())  # (m, N_R) each
    ln_s = np.log(s0)
    d1 = s1 / s0  # d ln σ²/d ln R
    d2 = s2 / s0 - d1 * d1  # d² ln σ²/d ln R²
    d3 = s3 / s0 - s2 * s1 / s0**2 - 2 * d1 * d2  # its derivative, for the Hermite interpolation of d2
    target = -2 * np.log(growth)  # ln σ²(R_σ, 0) = −2 ln D
    # ln σ² decreases with R: the bracket starts at the last node still above the target
    above = (ln_s[:, None, :] > target[:, :, None]).sum(axis=-1)
    index = np.clip(above - 1, 0, _N_R - 2)
    take = lambda a, i: np.take_along_axis(a, i, axis=1)  # noqa: E731
    f0, f1, g0, g1 = take(ln_s, index), take(ln_s, index + 1), take(d1, index), take(d1, index + 1)
    step = _LN_R_STEP
    t = np.clip((target - f0) / (f1 - f0), 0.0, 1.0)
    for _ in range(4):  # Newton on the cubic Hermite interpolant of ln σ² within the bracket
        t2, t3 = t * t, t * t * t
        value = ((2 * t3 - 3 * t2 + 1) * f0 + step * (t3 - 2 * t2 + t) * g0 + (3 * t2 - 2 * t3) * f1
                 + step * (t3 - t2) * g1)
        slope = (6 * t2 - 6 * t) * (f0 - f1) + step * ((3 * t2 - 4 * t + 1) * g0 + (3 * t2 - 2 * t) * g1)
        t = np.clip(t - (value - target) / slope, 0.0, 1.0)
    ln_r = _LN_R_MIN + step * (index + t)
    n_eff = -3 - hermite(_LN_R_MIN, step, d1, d2, ln_r, per_row=True)
    curvature = -hermite(_LN_R_MIN, step, d2, d3, ln_r, per_row=True)
    return -ln_r, n_eff, curvature


def halofit_delta2(ln_delta2_lin, ln_k, ln_k_sigma, n_eff, curvature, omega_m_z, omega_de_z, w, model):
    """Δ²_NL from Δ²_L (given as its log) at ln k [h/Mpc]; the other arguments broadcast against ln k."""
    n, c_ = n_eff, curvature
    if model == "smith03":
        ln_a = math.log(10) * (1.4861 + 1.8369 * n + 1.6762 * n**2 + 0.7940 * n**3 + 0.1670 * n**4 - 0.6206 * c_)
        ln_b = math.log(10) * (0.9463 + 0.9466 * n + 0.3084 * n**2 - 0.9400 * c_)
        ln_c = math.log(10) * (-0.2807 + 0.6669 * n + 0.3214 * n**2 - 0.0793 * c_)
        gamma = 0.8649 + 0.2989 * n + 0.1631 * c_
        alpha = 1.3884 + 0.3700 * n - 0.1452 * n**2
        beta = 0.8291 + 0.9854 * n + 0.3401 * n**2
        mu = 10 ** (-3.5442 + 0.1908 * n)
        nu = 10 ** (0.9589 + 1.2857 * n)
    else:
        de = omega_de_z * (1 + w)
        ln_a = math.log(10) * (1.5222 + 2.8553 * n + 2.3706 * n**2 + 0.9903 * n**3 + 0.2250 * n**4
                               - 0.6038 * c_ + 0.1749 * de)
        ln_b = math.log(10) * (-0.5642 + 0.5864 * n + 0.5716 * n**2 - 1.5474 * c_ + 0.2279 * de)
        ln_c = math.log(10) * (0.3698 + 2.0404 * n + 0.8161 * n**2 + 0.5869 * c_)
        gamma = 0.1971 - 0.0843 * n + 0.8460 * c_
        alpha = np.abs(6.0835 + 1.3373 * n - 0.1959 * n**2 - 5.5274 * c_)
        beta = 2.0379 - 0.7354 * n + 0.3157 * n**2 + 1.2490 * n**3 + 0.3980 * n**4 - 0.1682 * c_
        mu = 0.0
        nu = 10 ** (5.2105 + 3.6902 * n)
    ln_om = np.log(omega_m_z)
    f1, f2, ln_f3 = np.exp(-0.0307 * ln_om), np.exp(-0.0585 * ln_om), 0.0743 * ln_om  # flat branch
    ln_y = ln_k - ln_k_sigma
    y = np.exp(ln_y)
    delta2_lin = np.exp(ln_delta2_lin)
    quasi_linear = (delta2_lin * np.exp(beta * np.log1p(delta2_lin)) / (1 + alpha * delta2_lin)
                    * np.exp(-y / 4 - y * y / 8))  # C2
    with np.errstate(over="ignore"):  # y → 0: ν/y² → ∞ and the one-halo term → 0
        one_halo = (np.exp(ln_a + 3 * f1 * ln_y)
                    / (1 + np.exp(ln_b + f2 * ln_y) + np.exp((3 - gamma) * (ln_c + ln_f3 + ln_y)))
                    / (1 + mu / y + nu / (y * y)))  # C3–C4
    return quasi_linear + one_halo


def nonlinear_power(k, z, omega_m, sigma8, *, omega_b=0.045, h=0.7, n_s=0.96, w=-1.0, wiggles=True,
                    model="smith03") -> np.ndarray:
    """Non-linear matter power spectrum P_NL(k, z) from halofit applied to the EH98 linear spectrum.

    Parameters
    ----------
    k : float or array (n_k,)
        Wavenumbers in h/Mpc, > 0.
    z : float or array (n_z,)
        Redshifts, 0 ≤ z ≤ 999.
    omega_m, sigma8, omega_b, h, n_s, w, wiggles
        As in :func:`~astrobayes.shear.power.linear_power` (all parameters broadcast together).
    model : {"smith03", "takahashi12"}
        Halofit of Smith et al. (2003) or its revision by Takahashi et al. (2012).

    Returns
    -------
    ndarray, shape ``batch + z.shape + k.shape``
        P_NL in (Mpc/h)³.

    Examples
    --------
    >>> from astrobayes.shear import linear_power
    >>> k = np.array([0.001, 1.0, 10.0])
    >>> boost = nonlinear_power(k, 0.0, 0.3, 0.8) / linear_power(k, 0.0, 0.3, 0.8)
    >>> boost.round(2)  # → 1 on large scales, ≫ 1 on small ones
    array([ 1.  ,  5.48, 32.01])
    """
    wavenumber = wavenumbers(k)
    redshift = redshift_array(z)
    model = check_model(model)
    shape, p = cosmology_batch(omega_m, sigma8, omega_b, h, n_s, w)
    linear = LinearPower(p, wiggles=bool(wiggles))
    ln_k = np.log(np.atleast_1d(wavenumber))
    x = np.log1p(np.atleast_1d(redshift))
    growth = growth_at(x, p["omega_m"], p["w"])  # (m, n_z)
    ln_k_sigma, n_eff, curvature = halofit_scales(linear, growth)
    fraction = dark_energy_fraction(x, p["omega_m"], p["w"])  # (m, n_z)
    ln_delta2 = linear.ln_delta2_exact(ln_k)[:, None, :] + 2 * np.log(growth)[:, :, None]
    col = lambda a: a[:, :, None]  # noqa: E731
    delta2 = halofit_delta2(ln_delta2, ln_k, col(ln_k_sigma), col(n_eff), col(curvature), col(1 - fraction),
                            col(fraction), p["w"][:, :, None], model)
    power = delta2 * 2 * np.pi**2 / np.exp(3 * ln_k)
    return power.reshape(shape + redshift.shape + wavenumber.shape)
