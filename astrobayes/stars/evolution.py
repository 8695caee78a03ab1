"""Main-sequence evolution: L, R and T_eff at a fractional main-sequence age (Hurley, Pols & Tout 2000).

The zero-age model of :mod:`astrobayes.stars.zams` has no age. Hurley, Pols &
Tout (2000, MNRAS 315, 543; "HPT00"), the analytic formulae behind SSE/BSE,
extend the same Tout et al. (1996) ZAMS fits with time (their Section 5.1 and
Appendix A). With τ = t / t_MS (their eq. 11),

    log10(L/L_ZAMS) = α_L τ + β_L τ^η + (log10(L_TMS/L_ZAMS) − α_L − β_L) τ²
                      − ΔL (τ1² − τ2²)                                         (eq. 12)
    log10(R/R_ZAMS) = α_R τ + β_R τ^10 + γ τ^40 + (log10(R_TMS/R_ZAMS) − α_R − β_R − γ) τ³
                      − ΔR (τ1³ − τ2³)                                         (eq. 13)

where t_MS = max(t_hook, x t_BGB) (eqs. 4–7), L_TMS and R_TMS are the
terminal-main-sequence values (eqs. 8, 9), ΔL and ΔR the "hook" of stars above
M_hook ≈ 1 M_sun (eqs. 1, 14–17) and α, β, γ, η shape the track (eqs. 18–23);
every coefficient is a function of M and of Z through the Appendix A
polynomials in ζ = log10(Z / 0.02) (:mod:`astrobayes.stars._hpt00`, with the
cross-checks of the numbers). t_MS and the ZAMS reproduce SSE's own numbers
(1 M_sun, Z = 0.02: t_MS = 11003.13 Myr, L = 0.6977 L_sun, R = 0.8882 R_sun;
see the tests).

**Why fractional age.** Everything is parameterised by τ ∈ [0, 1], not by the
age: the domain of the learned map is then a box, and a post-main-sequence
star cannot be asked for by construction. τ = 0 is exactly the ZAMS of
:mod:`~astrobayes.stars.zams` (same code, same numbers), τ = 1 the terminal
main sequence. :func:`main_sequence_lifetime` gives t_MS in Myr and
:func:`fractional_age` converts an age.

**Low-mass stars.** t_MS exceeds the age of the Universe below about
0.94 M_sun at Z = 0.02 (0.80 M_sun at Z = 1e-4): for them only τ ≤ t_Universe / t_MS is reachable
(:func:`max_fractional_age`). The box stays [0, 1] — the formulae are defined
there — and the cap belongs in the *prior* on τ of a hierarchical model, not in
the model itself. The MS fits of HPT00 were made to models of 0.5–50 M_sun;
0.1–0.5 M_sun and 50–100 M_sun are their extrapolation (which SSE uses), and
real M dwarfs are larger than any such model (radius inflation, e.g. CM Dra).

**Where the printed paper and SSE differ**, this module follows SSE, Hurley's
own implementation, and says so: β'_R between 1 M_sun and a74 is interpolated
over (a74 − 1) — the printed (a74 − 1.06) makes β_R jump at a74; γ for
M ≤ 1 uses |M − a78|^a79 (a negative base with a non-integer power otherwise)
and is floored at 0. The 1.5 R_ZAMS floor on R_TMS is applied for M < 0.5 as
printed (SSE applies it up to a17; over 0.5 ≤ M ≤ a17 it never binds for
1e-4 ≤ Z ≤ 0.03, see the tests). x of eq. (6) is the paper's. HPT00's floor
for partly degenerate low-mass stars, R ≥ 0.0258 (1 + X)^(5/3) M^(−1/3) below
M_hook − 0.3 (eq. 24), is *not* applied: it would lift the ZAMS itself above
Tout et al.'s below ~0.15 M_sun (by up to 3 % at Z = 0.02 and 31 % at
Z = 1e-4, at 0.1 M_sun), breaking τ = 0 ≡ ZAMS, while such stars evolve by
< 0.1 % within the age of the Universe (τ ≤ 0.004 at 0.1 M_sun).

numpy in gives numpy out and torch in gives torch out (float64 inside,
differentiable in mass, metallicity and τ), like :mod:`~astrobayes.stars.zams`.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable

from astrobayes import __version__
from astrobayes.stars._hpt00 import A as _A
from astrobayes.stars._hpt00 import C1_RTMS
from astrobayes.stars.zams import (_LOG10_TEFF_SCALE, _TEFF_SCALE_K, FEH_RANGE, LOG_MASS_RANGE, MASS_RANGE,
                                   METALLICITY_RANGE, Z_SUN_MODEL, _as_array, _check_finite, _check_range,
                                   _luminosity, _numpy, _radius, feh_to_metallicity)

__all__ = ["TAU_RANGE", "AGE_OF_UNIVERSE", "main_sequence_lifetime", "fractional_age", "max_fractional_age",
           "ms_luminosity", "ms_radius", "ms_teff", "ms_log_radius_teff", "ms_table"]

#: the fractional main-sequence age τ = t / t_MS: ZAMS to terminal main sequence
TAU_RANGE = (0.0, 1.0)
#: Planck Collaboration (2020, A&A 641, A6), Table 2 (TT,TE,EE+lowE+lensing+BAO): 13.787 ± 0.020 Gyr
AGE_OF_UNIVERSE = 13.787 * u.Gyr
_MODEL_NAME = "Hurley, Pols & Tout (2000, MNRAS 315, 543) main sequence on the Tout et al. (1996) ZAMS"
_TINY = 1e-300   # keeps the bases of fractional powers positive in branches torch.where discards
_HOOK_EPSILON = 0.01  # ε of HPT00 eq. (15)


# --------------------------------------------------------------------------- backend helpers
def _tensors(*values):
    device = next(v.device for v in values if isinstance(v, torch.Tensor))
    return [torch.as_tensor(v, dtype=torch.float64, device=device) for v in values]


def _maximum(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.maximum(*_tensors(a, b))
    return np.maximum(a, b)


def _minimum(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.minimum(*_tensors(a, b))
    return np.minimum(a, b)


def _where(condition, a, b):
    if isinstance(condition, torch.Tensor):  # the condition lends its device when a and b are plain numbers
        return torch.where(condition, *_tensors(a, b, condition)[:2])
    return np.where(condition, a, b)


def _log10(x):
    return torch.log10(x) if isinstance(x, torch.Tensor) else np.log10(x)


def _fraction(numerator, denominator):
    """numerator / denominator clipped to [tiny, 1]: the position inside an interpolation interval."""
    return _minimum(_maximum(numerator / _maximum(denominator, _TINY), _TINY), 1.0)


# --------------------------------------------------------------------------- HPT00 Section 5.1
def _coefficients(zeta, metallicity) -> dict:
    """The a_n of Appendix A at each star's ζ, with the Appendix's special cases applied."""
    a = {n: c0 + zeta * (c1 + zeta * (c2 + zeta * (c3 + zeta * c4))) for n, (c0, c1, c2, c3, c4) in _A.items()}
    sigma = _log10(metallicity)  # σ = log10 Z
    zeta2 = zeta * zeta
    a[11], a[12] = a[11] * a[14], a[12] * a[14]
    a[17] = 10.0 ** _maximum(0.097 - 0.1072 * (sigma + 3.0),
                             _maximum(0.097, _minimum(0.1461, 0.1461 + 0.1237 * (sigma + 2.0))))
    a[18], a[19] = a[18] * a[20], a[19] * a[20]
    a[33] = _maximum(0.6355 - 0.4192 * zeta, _maximum(1.25, _minimum(1.4, 1.5135 + 0.3769 * zeta)))
    a[42] = _minimum(1.25, _maximum(1.1, a[42]))
    a[44] = _minimum(1.3, _maximum(0.45, a[44]))
    a[49] = _maximum(a[49], 0.145)
    a[50] = _minimum(a[50], 0.306 + 0.053 * zeta)
    a[51] = _minimum(a[51], 0.3625 + 0.062 * zeta)
    a[52] = _maximum(a[52], 0.9)
    a[53] = _maximum(a[53], 1.0)
    a[52] = _where(metallicity > 0.01, _minimum(a[52], 1.0), a[52])
    a[53] = _where(metallicity > 0.01, _minimum(a[53], 1.1), a[53])
    a[57] = _maximum(0.6355 - 0.4192 * zeta, _maximum(1.25, _minimum(1.4, a[57])))
    a[62] = _maximum(0.065, a[62])
    a[63] = _where(metallicity < 0.004, _minimum(0.055, a[63]), a[63])
    a[64] = _maximum(0.091, _minimum(0.121, a[64]))
    a[66] = _maximum(a[66], _minimum(1.6, -0.308 - 1.046 * zeta))
    a[66] = _maximum(0.8, _minimum(0.8 - 2.0 * zeta, a[66]))
    a[68] = _maximum(0.9, _minimum(a[68], 1.0))
    a[64] = _where(a[68] > a[66], _alpha_r_mid(a[66], a), a[64])
    a[68] = _minimum(a[68], a[66])
    a[72] = _where(metallicity > 0.01, _maximum(a[72], 0.95), a[72])
    a[74] = _maximum(1.4, _minimum(a[74], 1.6))
    a[75] = _maximum(_maximum(1.0, _minimum(a[75], 1.27)), 0.6355 - 0.4192 * zeta)
    a[76] = _maximum(a[76], -0.1015564 - 0.2161264 * zeta - 0.05182516 * zeta2)
    a[77] = _maximum(-0.3868776 - 0.5457078 * zeta - 0.1463472 * zeta2, _minimum(0.0, a[77]))
    a[78] = _maximum(0.0, _minimum(a[78], 7.454 + 9.046 * zeta))
    a[79] = _minimum(a[79], _maximum(2.0, -13.3 - 18.6 * zeta))
    a[80] = _maximum(0.0585542, a[80])
    a[81] = _minimum(1.5, _maximum(0.4, a[81]))
    a["hook"] = 1.0185 + 0.16015 * zeta + 0.0892 * zeta2                                      # M_hook, eq. (1)
    a["x"] = _maximum(0.95, _minimum(0.95 - 0.03 * (zeta + 0.30103), 0.99))                 # eq. (6)
    return a


def _lifetimes(m, a):
    """t_BGB (eq. 4), t_hook (eq. 7) and t_MS (eq. 5), in Myr."""
    t_bgb = (a[1] + a[2] * m ** 4 + a[3] * m ** 5.5 + m ** 7) / (a[4] * m ** 2 + a[5] * m ** 7)
    mu = _maximum(0.5, 1.0 - 0.01 * _maximum(a[6] / m ** a[7], a[8] + a[9] / m ** a[10]))
    t_hook = mu * t_bgb
    return t_hook, _maximum(t_hook, a["x"] * t_bgb)


def _luminosity_tms(m, a):
    """L_TMS / L_sun, eq. (8)."""
    return (a[11] * m ** 3 + a[12] * m ** 4 + a[13] * m ** (a[16] + 1.8)) / (a[14] + a[15] * m ** 5 + m ** a[16])


def _radius_tms(m, a, radius_zams):
    """R_TMS / R_sun, eqs. (9a), (9b), joined linearly over a17 ≤ M ≤ a17 + 0.1."""
    def low(mass):
        return (a[18] + a[19] * mass ** a[21]) / (a[20] + mass ** a[22])

    def high(mass):
        return (C1_RTMS * mass ** 3 + a[23] * mass ** a[26] + a[24] * mass ** (a[26] + 1.5)) / (a[25] + mass ** 5)

    upper = a[17] + 0.1
    joined = low(a[17]) + (high(upper) - low(a[17])) * (m - a[17]) / 0.1
    radius = _where(m <= a[17], low(m), _where(m >= upper, high(m), joined))
    return _where(m < 0.5, _maximum(radius, 1.5 * radius_zams), radius)


def _alpha_l(m, a):
    """α_L, eq. (19)."""
    def high(mass):
        return (a[45] + a[46] * mass ** a[48]) / (mass ** 0.4 + a[47] * mass ** 1.9)

    return _where(m < 0.5, a[49],
                  _where(m < 0.7, a[49] + 5.0 * (0.3 - a[49]) * (m - 0.5),
                  _where(m < a[52], 0.3 + (a[50] - 0.3) * (m - 0.7) / (a[52] - 0.7),
                  _where(m < a[53], a[50] + (a[51] - a[50]) * _fraction(m - a[52], a[53] - a[52]),
                  _where(m < 2.0, a[51] + (high(2.0) - a[51]) * (m - a[53]) / (2.0 - a[53]), high(m))))))


def _beta_l(m, a):
    """β_L, eq. (20)."""
    beta = _maximum(0.0, a[54] - a[55] * m ** a[56])
    at_a57 = _maximum(0.0, a[54] - a[55] * a[57] ** a[56])
    return _where((m > a[57]) & (beta > 0), _maximum(0.0, at_a57 - 10.0 * (m - a[57]) * at_a57), beta)


def _eta(m, metallicity):
    """η, eq. (18): 10, or for Z ≤ 0.0009 rising to 20 between 1 and 1.1 M_sun."""
    ramp = _minimum(_maximum(10.0 + 100.0 * (m - 1.0), 10.0), 20.0)
    return _where(metallicity > 0.0009, 10.0 + 0.0 * m, ramp)


def _delta_l(m, a):
    """ΔL, the luminosity hook, eq. (16)."""
    def high(mass):
        return _minimum(a[34] / mass ** a[35], a[36] / mass ** a[37])

    rising = high(a[33]) * _fraction(m - a["hook"], a[33] - a["hook"]) ** 0.4
    return _where(m <= a["hook"], 0.0, _where(m < a[33], rising, high(m)))


def _delta_r(m, a):
    """ΔR, the radius hook, eq. (17)."""
    def high(mass):
        return (a[38] + a[39] * mass ** 3.5) / (a[40] * mass ** 3 + mass ** a[41]) - 1.0

    rising = a[43] * _fraction(m - a["hook"], a[42] - a["hook"]) ** 0.5
    bridge = a[43] + (high(2.0) - a[43]) * _fraction(m - a[42], 2.0 - a[42]) ** a[44]
    return _where(m <= a["hook"], 0.0, _where(m <= a[42], rising, _where(m < 2.0, bridge, high(m))))


def _alpha_r_mid(m, a):
    return a[58] * m ** a[60] / (a[59] + m ** a[61])


def _alpha_r(m, a):
    """α_R, eq. (21)."""
    return _where(m < 0.5, a[62],
                  _where(m < 0.65, a[62] + (a[63] - a[62]) * (m - 0.5) / 0.15,
                  _where(m < a[68], a[63] + (a[64] - a[63]) * (m - 0.65) / (a[68] - 0.65),
                  _where(m < a[66], a[64] + (_alpha_r_mid(a[66], a) - a[64]) * _fraction(m - a[68], a[66] - a[68]),
                  _where(m <= a[67], _alpha_r_mid(m, a), _alpha_r_mid(a[67], a) + a[65] * (m - a[67]))))))


def _beta_r(m, a):
    """β_R = β'_R − 1, eq. (22); (a74 − 1) in the first interpolation as in SSE (see the module notes)."""
    def mid(mass):
        return a[69] * mass ** 3.5 / (a[70] + mass ** a[71])

    beta_prime = _where(m <= 1.0, 1.06,
                        _where(m < a[74], 1.06 + (a[72] - 1.06) * (m - 1.0) / (a[74] - 1.0),
                        _where(m < 2.0, a[72] + (mid(2.0) - a[72]) * (m - a[74]) / (2.0 - a[74]),
                        _where(m <= 16.0, mid(m), mid(16.0) + a[73] * (m - 16.0)))))
    return beta_prime - 1.0


def _gamma(m, a):
    """γ, eq. (23), floored at 0 as in SSE."""
    def low(mass):
        return a[76] + a[77] * abs(mass - a[78]) ** a[79]

    at_one = _maximum(0.0, low(1.0 + 0.0 * m))
    rising = at_one + (a[80] - at_one) * _fraction(m - 1.0, a[75] - 1.0) ** a[81]
    at_a75 = _where(a[75] > 1.0, a[80], at_one)
    gamma = _where(m <= 1.0, low(m), _where(m <= a[75], rising, at_a75 - 10.0 * (m - a[75]) * at_a75))
    return _where(m > a[75] + 0.1, 0.0, _maximum(gamma, 0.0))


def _evolve(mass, metallicity, tau):
    """log10 L/L_sun, log10 R/R_sun and t_MS [Myr] at fractional age τ (all inputs float64, same shape)."""
    zeta = _log10(metallicity / Z_SUN_MODEL)
    # the ZAMS exactly as zams.zams_log_radius_teff computes it, so that τ = 0 reproduces it bit for bit
    log_l_zams = _log10(_luminosity(mass, zeta))
    log_r_zams = _log10(_radius(mass, zeta))
    a = _coefficients(zeta, metallicity)
    t_hook, t_ms = _lifetimes(mass, a)
    time_over_hook = tau * t_ms / t_hook
    tau1 = _minimum(1.0, time_over_hook)                                                          # eq. (14)
    tau2 = _maximum(0.0, _minimum(1.0, (time_over_hook - (1.0 - _HOOK_EPSILON)) / _HOOK_EPSILON))  # eq. (15)

    alpha, beta = _alpha_l(mass, a), _beta_l(mass, a)
    log_l_tms = _log10(_luminosity_tms(mass, a)) - log_l_zams
    log_l = log_l_zams + (alpha * tau + beta * tau ** _eta(mass, metallicity)
                          + (log_l_tms - alpha - beta) * tau ** 2 - _delta_l(mass, a) * (tau1 ** 2 - tau2 ** 2))

    alpha, beta, gamma = _alpha_r(mass, a), _beta_r(mass, a), _gamma(mass, a)
    log_r_tms = _log10(_radius_tms(mass, a, 10.0 ** log_r_zams)) - log_r_zams
    log_r = log_r_zams + (alpha * tau + beta * tau ** 10 + gamma * tau ** 40
                          + (log_r_tms - alpha - beta - gamma) * tau ** 3 - _delta_r(mass, a) * (tau1 ** 3 - tau2 ** 3))
    return log_l, log_r, t_ms


# --------------------------------------------------------------------------- inputs
def _as_tau(tau):
    if isinstance(tau, u.Quantity) and not tau.unit.is_equivalent(u.dimensionless_unscaled):
        raise ValueError(f"tau is the fractional main-sequence age t / t_MS, a number in [0, 1], but has unit "
                         f"{tau.unit}; convert an age with fractional_age(age, mass, metallicity)")
    tau = _as_array(tau, "tau", None)
    _check_finite(tau, "tau")
    values = _numpy(tau)
    outside = (values < TAU_RANGE[0]) | (values > TAU_RANGE[1])
    if np.any(outside):
        raise ValueError(f"tau must lie within [0, 1] (the fractional main-sequence age t / t_MS: 0 = ZAMS, "
                         f"1 = terminal main sequence); {int(outside.sum())} value(s) outside, from "
                         f"{float(values[outside].min())!r} to {float(values[outside].max())!r}")
    return tau


def _broadcast(values, names):
    """float64 copies of ``values`` broadcast together, and how to hand results back in the inputs' backend."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if tensors:
        floats = [t.dtype for t in tensors if t.is_floating_point()]
        out_dtype = floats[0] if floats else torch.float64
        for dtype in floats[1:]:
            out_dtype = torch.promote_types(out_dtype, dtype)
        values = [torch.as_tensor(v, dtype=torch.float64, device=tensors[0].device) for v in values]
        try:
            return torch.broadcast_tensors(*values), (lambda t: t.to(out_dtype))
        except RuntimeError:
            pass
    else:
        try:
            return np.broadcast_arrays(*values), (lambda a: a[()])
        except ValueError:
            pass
    shapes = ", ".join(f"{name} {tuple(v.shape)}" for name, v in zip(names, values))
    raise ValueError(f"the inputs do not broadcast together: {shapes}")


def _check_flag(check) -> None:
    if not isinstance(check, (bool, np.bool_)):
        raise TypeError(f"check must be True or False, got {check!r}")


def _prepare(mass, metallicity, tau, check: bool):
    _check_flag(check)
    mass = _as_array(mass, "mass", u.solMass)
    metallicity = _as_array(metallicity, "metallicity", None)
    _check_finite(mass, "mass")
    _check_finite(metallicity, "metallicity")
    if check:
        _check_range(mass, "mass", *MASS_RANGE, "the mass range (M_sun)")
        _check_range(metallicity, "metallicity", *METALLICITY_RANGE, "the metallicity range Z")
    elif np.any(_numpy(metallicity) <= 0) or np.any(_numpy(mass) <= 0):
        raise ValueError("mass and metallicity must be positive, even with check=False")
    return _broadcast((mass, metallicity, _as_tau(tau)), ("mass", "metallicity", "tau"))


def _age_in_myr(age):
    if isinstance(age, u.Quantity):
        try:
            age = age.to_value(u.Myr)
        except u.UnitConversionError:
            raise ValueError(f"age has unit {age.unit}, which is not a time (pass e.g. 4.6 * u.Gyr)") from None
    age = _as_array(age, "age", None)
    _check_finite(age, "age")
    if np.any(_numpy(age) < 0):
        raise ValueError("age must be ≥ 0 (the time since the zero-age main sequence)")
    return age


# --------------------------------------------------------------------------- public functions
def main_sequence_lifetime(mass, metallicity=Z_SUN_MODEL, *, check: bool = True):
    """Main-sequence lifetime t_MS in Myr, HPT00 eqs. (4)–(7).

    t_MS = max(t_hook, x t_BGB): the time to the base of the giant branch
    (eq. 4) times x ≈ 0.95–0.99 (eq. 6), or the end of the hook (eq. 7).

    Parameters
    ----------
    mass : float, array, torch.Tensor or Quantity
        Stellar mass in M_sun (a Quantity is converted to solMass).
    metallicity : float, array or torch.Tensor
        Metal mass fraction Z (Z_sun = 0.02 in this calibration), broadcast against ``mass``.
    check : bool
        Refuse values outside 0.1 ≤ M ≤ 100 and 1e-4 ≤ Z ≤ 0.03 (ValueError).

    Returns
    -------
    numpy array (or scalar) or torch.Tensor
        t_MS in Myr (multiply by ``astropy.units.Myr`` for a Quantity).

    Examples
    --------
    >>> round(float(main_sequence_lifetime(1.0)))  # the Sun's, Z = 0.02
    11003
    """
    (mass, metallicity, _), finish = _prepare(mass, metallicity, 0.0, check)
    return finish(_lifetimes(mass, _coefficients(_log10(metallicity / Z_SUN_MODEL), metallicity))[1])


def fractional_age(age, mass, metallicity=Z_SUN_MODEL, *, check: bool = True):
    """τ = age / t_MS, the input of the evolving model, for a star of known age.

    Parameters
    ----------
    age : Quantity, float, array or torch.Tensor
        Age since the ZAMS; a time Quantity, or a number in Myr.
    mass, metallicity : as for :func:`main_sequence_lifetime`.
    check : bool
        Raise a ValueError when a star would have left the main sequence
        (τ > 1) or the inputs leave the fits' range; False returns τ > 1 as is.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(float(fractional_age(4.57 * u.Gyr, 1.0)), 3)
    0.415
    """
    age = _age_in_myr(age)
    (mass, metallicity, _), _ = _prepare(mass, metallicity, 0.0, check)
    (mass, metallicity, age), finish = _broadcast((mass, metallicity, age), ("mass", "metallicity", "age"))
    tau = age / _lifetimes(mass, _coefficients(_log10(metallicity / Z_SUN_MODEL), metallicity))[1]
    if check and np.any(_numpy(tau) > 1):
        raise ValueError(f"age exceeds the main-sequence lifetime for {int(np.sum(_numpy(tau) > 1))} star(s) "
                         "(τ > 1: they have left the main sequence); pass check=False to get τ anyway")
    return finish(tau)


def max_fractional_age(mass, metallicity=Z_SUN_MODEL, *, age=AGE_OF_UNIVERSE, check: bool = True):
    """The largest reachable τ = min(1, age / t_MS): below ~0.94 M_sun (Z = 0.02) τ = 1 is older than the Universe.

    Meant for the prior on τ of a hierarchical model (the evolving map itself
    is defined on the whole box τ ∈ [0, 1]).

    Examples
    --------
    >>> import numpy as np
    >>> np.round(max_fractional_age([0.5, 1.0, 2.0]), 3)
    array([0.107, 1.   , 1.   ])
    """
    age = _age_in_myr(age)
    (mass, metallicity, _), _ = _prepare(mass, metallicity, 0.0, check)
    (mass, metallicity, age), finish = _broadcast((mass, metallicity, age), ("mass", "metallicity", "age"))
    t_ms = _lifetimes(mass, _coefficients(_log10(metallicity / Z_SUN_MODEL), metallicity))[1]
    return finish(_minimum(1.0, age / t_ms))


def ms_luminosity(mass, metallicity, tau, *, check: bool = True):
    """Luminosity L / L_sun on the main sequence at fractional age τ, HPT00 eq. (12).

    Parameters
    ----------
    mass : float, array, torch.Tensor or Quantity
        Stellar mass in M_sun (a Quantity is converted to solMass).
    metallicity : float, array or torch.Tensor
        Metal mass fraction Z (Z_sun = 0.02 in this calibration).
    tau : float, array or torch.Tensor
        Fractional main-sequence age t / t_MS in [0, 1] (0: ZAMS, 1: terminal
        main sequence); always checked. The three inputs broadcast together.
    check : bool
        Refuse masses and metallicities outside 0.1 ≤ M ≤ 100, 1e-4 ≤ Z ≤ 0.03.

    Returns
    -------
    numpy array (or scalar) or torch.Tensor
        L / L_sun, in the backend of the inputs (torch if any is a tensor).

    Examples
    --------
    >>> [round(float(ms_luminosity(1.0, 0.02, tau)), 3) for tau in (0.0, 0.5, 1.0)]
    [0.698, 1.041, 2.12]
    """
    (mass, metallicity, tau), finish = _prepare(mass, metallicity, tau, check)
    return finish(10.0 ** _evolve(mass, metallicity, tau)[0])


def ms_radius(mass, metallicity, tau, *, check: bool = True):
    """Radius R / R_sun on the main sequence at fractional age τ, HPT00 eqs. (13) and (24).

    Parameters are those of :func:`ms_luminosity`.

    Examples
    --------
    >>> [round(float(ms_radius(1.0, 0.02, tau)), 3) for tau in (0.0, 0.5, 1.0)]
    [0.888, 1.016, 1.624]
    """
    (mass, metallicity, tau), finish = _prepare(mass, metallicity, tau, check)
    return finish(10.0 ** _evolve(mass, metallicity, tau)[1])


def ms_teff(mass, metallicity, tau, *, check: bool = True):
    """Effective temperature in K on the main sequence: T_eff = (L / (4π σ_SB R²))^(1/4).

    Parameters are those of :func:`ms_luminosity`.

    Examples
    --------
    >>> round(float(ms_teff(1.0, 0.02, 0.5)), -1)
    5780.0
    """
    (mass, metallicity, tau), finish = _prepare(mass, metallicity, tau, check)
    log_l, log_r, _ = _evolve(mass, metallicity, tau)
    return finish(10.0 ** (_LOG10_TEFF_SCALE + 0.25 * log_l - 0.5 * log_r))


def ms_log_radius_teff(log_mass, feh, tau, *, check: bool = True):
    """log10(R / R_sun) and log10(T_eff / K) on the evolving main sequence: the target of the evolving map.

    The conventions are those of :func:`~astrobayes.stars.zams.zams_log_radius_teff`
    ([Fe/H] → Z = 0.02 · 10^[Fe/H], numpy in → numpy out, torch in → torch
    out, differentiable), with the fractional age τ as a third input; at
    τ = 0 the two functions agree to the last bit.

    Parameters
    ----------
    log_mass : float, array or torch.Tensor
        log10(M / M_sun), within log10(0.1)..log10(100) when ``check``.
    feh : float, array or torch.Tensor
        [Fe/H], within −2.30..+0.176 (Z = 1e-4..0.03) when ``check``.
    tau : float, array or torch.Tensor
        Fractional main-sequence age t / t_MS in [0, 1] (always checked).
    check : bool
        Refuse log_mass and feh outside the validity range of the fits.

    Returns
    -------
    (log_radius, log_teff)
        Two arrays (or tensors) of the broadcast shape of the inputs.

    Examples
    --------
    >>> log_radius, log_teff = ms_log_radius_teff([0.0, 0.0, 1.0], 0.0, [0.0, 1.0, 0.5])
    >>> log_radius.round(3), log_teff.round(3)
    (array([-0.051,  0.211,  0.72 ]), array([3.748, 3.738, 4.376]))
    """
    _check_flag(check)
    log_mass = _as_array(log_mass, "log_mass", None)
    feh = _as_array(feh, "feh", None)
    _check_finite(log_mass, "log_mass")
    _check_finite(feh, "feh")
    if check:
        _check_range(log_mass, "log_mass", *LOG_MASS_RANGE, "log10(M/M_sun) range")
        _check_range(feh, "feh", *FEH_RANGE, "[Fe/H] range (Z = 0.02·10^[Fe/H] within 1e-4..0.03)")
    # the same arithmetic as zams_log_radius_teff, so that τ = 0 reproduces it exactly
    mass = 10.0 ** log_mass if isinstance(log_mass, torch.Tensor) else np.power(10.0, log_mass)
    metallicity = feh_to_metallicity(feh)
    (mass, metallicity, tau), finish = _broadcast((mass, metallicity, _as_tau(tau)), ("log_mass", "feh", "tau"))
    log_l, log_r, _ = _evolve(mass, metallicity, tau)
    return finish(log_r), finish(_LOG10_TEFF_SCALE + 0.25 * log_l - 0.5 * log_r)


def ms_table(mass, metallicity, tau, *, check: bool = True) -> QTable:
    """Main-sequence properties at fractional age τ as a QTable with units.

    Parameters
    ----------
    mass : float, array or Quantity
        M in M_sun (or a mass Quantity).
    metallicity : float or array
        Z, broadcast against ``mass`` and ``tau``.
    tau : float or array
        Fractional main-sequence age in [0, 1].
    check : bool
        Refuse masses and metallicities outside the validity range of the fits.

    Returns
    -------
    QTable
        Columns ``mass`` [solMass], ``metallicity`` (Z), ``tau``, ``age`` and
        ``ms_lifetime`` [Myr], ``luminosity`` [solLum], ``radius`` [solRad],
        ``teff`` [K]; ``meta`` names the model and the version.

    Examples
    --------
    >>> table = ms_table(1.0, 0.02, [0.0, 0.4154])
    >>> table["age"].to("Gyr").round(2), table["radius"].round(3)
    (<Quantity [0.  , 4.57] Gyr>, <Quantity [0.888, 0.985] solRad>)
    """
    if any(isinstance(v, torch.Tensor) for v in (mass, metallicity, tau)):
        raise TypeError("ms_table builds an astropy table: pass numpy arrays or Quantities, not torch tensors")
    (mass, metallicity, tau), _ = _prepare(mass, metallicity, tau, check)
    mass, metallicity, tau = (np.atleast_1d(v).ravel() for v in (mass, metallicity, tau))
    log_l, log_r, t_ms = _evolve(mass, metallicity, tau)
    table = QTable()
    table["mass"] = mass * u.solMass
    table["metallicity"] = metallicity * u.dimensionless_unscaled
    table["tau"] = tau * u.dimensionless_unscaled
    table["age"] = tau * t_ms * u.Myr
    table["ms_lifetime"] = t_ms * u.Myr
    table["luminosity"] = 10.0 ** log_l * u.solLum
    table["radius"] = 10.0 ** log_r * u.solRad
    table["teff"] = _TEFF_SCALE_K * 10.0 ** (0.25 * log_l - 0.5 * log_r) * u.K
    descriptions = {"tau": "fractional main-sequence age t / t_MS", "age": "time since the ZAMS",
                    "ms_lifetime": "main-sequence lifetime t_MS (HPT00 eq. 5)"}
    for name, text in descriptions.items():
        table[name].info.description = text
    table.meta.update({"model": _MODEL_NAME, "z_sun_model": Z_SUN_MODEL, "astrobayes_version": __version__})
    return table
