"""The convergence power spectrum chain: distances, growth, EH98 P(k), halofit, n(z), Limber — and iCosmo."""
import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import FlatwCDM
from scipy.integrate import quad, simpson, solve_ivp

import astrobayes.shear.cosmology as shear_cosmology
from astrobayes.shear import (ICOSMO_REFERENCE, comoving_distance, convergence_cl, growth_factor, linear_power,
                              nonlinear_power, read_icosmo_reference, smail_nz)

#: the iCosmo fiducial model (catalogs/shear/README.md); Ω_b is not stated there, 0.045 is our choice
ICOSMO = dict(omega_m=0.25, sigma8=0.8, omega_b=0.045, h=0.7, n_s=0.96, w=-1.0, z_median=1.0)


@pytest.mark.parametrize("omega_m, w, h", [(0.05, -1.0, 0.7), (0.25, -1.0, 0.7), (0.3, -0.5, 0.6),
                                           (0.6, -2.0, 0.8), (1.0, -1.0, 0.7), (0.3, -1 / 3, 0.7)])
def test_comoving_distance_matches_astropy(omega_m, w, h):
    z = np.linspace(0.01, 6.0, 40)
    reference = FlatwCDM(100 * h, omega_m, w0=w, Tcmb0=0).comoving_distance(z).to_value("Mpc")
    np.testing.assert_allclose(comoving_distance(z, omega_m, w=w, h=h), reference, rtol=1e-5)  # measured < 1e-8


def test_comoving_distance_broadcasts():
    chi = comoving_distance([0.5, 1.0], np.array([0.25, 0.3, 0.35]), w=np.array([-1.0, -0.9, -0.8]))
    assert chi.shape == (3, 2)
    np.testing.assert_allclose(chi[1], comoving_distance([0.5, 1.0], 0.3, w=-0.9), rtol=1e-12)
    assert comoving_distance(0.0, 0.3) == 0.0


def _heath(z, omega_m):
    """Heath (1977): D(a) ∝ E(a) ∫₀ᵃ da'/(a' E(a'))³ for flat ΛCDM, normalised to D(0) = 1."""
    e = lambda a: np.sqrt(omega_m / a**3 + 1 - omega_m)  # noqa: E731
    growth = lambda a: e(a) * quad(lambda b: (b * e(b)) ** -3, 0, a, epsabs=0, epsrel=1e-12)[0]  # noqa: E731
    return np.array([growth(1 / (1 + zi)) for zi in z]) / growth(1.0)


@pytest.mark.parametrize("omega_m", [0.05, 0.25, 0.6, 1.0])
def test_growth_matches_heath_integral(omega_m):
    z = np.array([0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0])
    np.testing.assert_allclose(growth_factor(z, omega_m), _heath(z, omega_m), rtol=1e-5)  # measured ≤ 6e-7


@pytest.mark.parametrize("omega_m, w", [(0.05, -2.0), (0.3, -0.7), (0.3, -1 / 3)])
def test_growth_for_w_matches_an_adaptive_ode_solution(omega_m, w):
    """Against scipy's adaptive solver of D'' + (2 + d ln H/d ln a) D' = 3/2 Ω_m(a) D from a = 1e-8."""
    def rhs(ln_a, y):
        a = np.exp(ln_a)
        e2 = omega_m / a**3 + (1 - omega_m) * a ** (-3 * (1 + w))
        om_a = omega_m / a**3 / e2
        dln_h = -1.5 * (om_a + (1 + w) * (1 - om_a))
        return [y[1], -(2 + dln_h) * y[1] + 1.5 * om_a * y[0]]

    solution = solve_ivp(rhs, [np.log(1e-8), 0], [1e-8, 1e-8], rtol=1e-11, atol=1e-20, dense_output=True)
    z = np.array([0.0, 0.5, 1.0, 3.0, 10.0])
    reference = solution.sol(-np.log1p(z))[0] / solution.sol(0.0)[0]
    np.testing.assert_allclose(growth_factor(z, omega_m, w=w), reference, rtol=1e-5)  # measured ≤ 2e-6


@pytest.mark.parametrize("wiggles", [True, False])
def test_sigma8_of_the_normalised_spectrum(wiggles):
    """σ₈ recomputed from linear_power itself, by Simpson's rule on a 16× finer ln k grid than the internal one."""
    ln_k = np.linspace(np.log(1e-5), np.log(100.0), 20001)
    k = np.exp(ln_k)
    x = 8.0 * k
    window = 3 * (np.sin(x) - x * np.cos(x)) / x**3
    power = linear_power(k, 0.0, 0.3, 0.83, omega_b=0.05, n_s=0.97, wiggles=wiggles)
    variance = simpson(k**3 * power / (2 * np.pi**2) * window**2, x=ln_k)
    assert np.sqrt(variance) == pytest.approx(0.83, rel=1e-6)  # measured 5e-9


@pytest.mark.parametrize("omega_m, omega_b", [(0.25, 0.045), (0.3, 0.05)])
def test_wiggles_oscillate_around_the_no_wiggle_spectrum(omega_m, omega_b):
    k = np.geomspace(0.05, 0.3, 200)
    ratio = (linear_power(k, 0.0, omega_m, 0.8, omega_b=omega_b)
             / linear_power(k, 0.0, omega_m, 0.8, omega_b=omega_b, wiggles=False))
    assert np.abs(ratio - 1).max() < 0.10  # measured 0.098 and 0.077: BAO of ±5-10 % at f_b ≈ 0.17
    assert np.abs(ratio - 1).max() > 0.02  # they are there
    assert abs(ratio.mean() - 1) < 0.01
    assert np.count_nonzero(np.diff(np.sign(ratio - 1))) >= 4  # about two periods of 2π/s ≈ 0.06 h/Mpc in the range


def test_linear_power_shapes_and_growth():
    k = np.geomspace(1e-3, 1.0, 5)
    power = linear_power(k, [0.0, 1.0], np.array([0.25, 0.3, 0.35]), 0.8)
    assert power.shape == (3, 2, 5)
    d1 = growth_factor(1.0, np.array([0.25, 0.3, 0.35]))
    np.testing.assert_allclose(power[:, 1] / power[:, 0], (d1**2)[:, None] * np.ones(5), rtol=1e-12)


@pytest.mark.parametrize("model", ["smith03", "takahashi12"])
def test_nonlinear_boost_goes_to_one_on_large_scales(model):
    k = np.array([1e-4, 1e-3, 1.0, 10.0])
    boost = nonlinear_power(k, [0.0, 2.0], 0.3, 0.8, model=model) / linear_power(k, [0.0, 2.0], 0.3, 0.8)
    # halofit's quasi-linear term carries exp(−k/4k_σ), k_σ ≈ 0.3 h/Mpc today: 1 − boost ≈ k/(4 k_σ)
    assert (np.abs(boost[:, :2] - 1) < [1e-4, 1e-3]).all()  # measured 7e-5 and 6.5e-4
    assert (boost[0, 2:] > 3).all() and (boost[1, 2:] > boost[1, 1]).all()
    assert boost[0, 3] > boost[1, 3]  # more non-linear today than at z = 2


def test_smail_nz_is_normalised_with_the_stated_median():
    assert quad(smail_nz, 0, np.inf, args=(0.8,))[0] == pytest.approx(1.0, rel=1e-8)
    assert quad(smail_nz, 0, 0.8, args=(0.8,))[0] == pytest.approx(0.5, abs=2e-4)  # 1.412 is rounded


def test_tabulated_nz_reproduces_smail():
    ell = np.geomspace(10, 1e4, 20)
    z = np.linspace(0, 6, 2001)
    tabulated = convergence_cl(ell, 0.25, 0.8, nz=(z, 3.0 * smail_nz(z, 1.0)))  # any normalisation
    np.testing.assert_allclose(tabulated, convergence_cl(ell, 0.25, 0.8), rtol=1e-4)  # measured 1e-5


def test_limber_integral_is_converged(monkeypatch):
    ell = np.geomspace(10, 2e4, 30)
    omega_m, sigma8, w = np.array([0.25, 0.4]), np.array([0.8, 0.6]), np.array([-1.0, -0.7])
    default = convergence_cl(ell, omega_m, sigma8, w=w)
    monkeypatch.setattr(shear_cosmology, "_LIMBER_STEP", 0.0025)
    np.testing.assert_allclose(default, convergence_cl(ell, omega_m, sigma8, w=w), rtol=1e-3)  # measured 6e-4


def test_linear_cl_scales_exactly_as_sigma8_squared():
    ell = np.array([2.0, 10.0, 100.0, 1000.0])
    cl = convergence_cl(ell, 0.3, np.array([0.7, 0.9]), nonlinear=None)
    np.testing.assert_allclose(cl[1] / cl[0], (0.9 / 0.7) ** 2, rtol=1e-10)


@pytest.mark.parametrize("model", ["smith03", "takahashi12"])
def test_halofit_cl_scales_as_sigma8_squared_at_low_ell(model):
    ell = np.array([2.0, 5.0, 10.0, 20.0, 30.0, 1000.0])
    cl = convergence_cl(ell, 0.3, np.array([0.7, 0.9]), nonlinear=model)
    ratio = cl[1] / cl[0] / (0.9 / 0.7) ** 2
    np.testing.assert_allclose(ratio[:-1], 1.0, atol=0.01)  # measured ≤ 0.6 %: the quasi-linear corrections
    assert ratio[-1] > 1.2  # while at ℓ = 1000 the non-linear power grows faster than σ₈²


def test_vectorised_call_equals_loop_of_scalar_calls(monkeypatch):
    ell = np.array([10.0, 300.0, 5000.0])
    params = dict(omega_m=np.array([0.2, 0.3, 0.45]), sigma8=np.array([0.9, 0.8, 0.7]),
                  omega_b=np.array([0.04, 0.05, 0.045]), h=np.array([0.65, 0.7, 0.75]),
                  n_s=np.array([0.95, 0.96, 0.98]), w=np.array([-1.2, -1.0, -0.8]))
    monkeypatch.setattr(shear_cosmology, "_CHUNK_POINTS", 1000)  # forces one cosmology per chunk
    batch = convergence_cl(ell, **params)
    assert batch.shape == (3, 3)
    for i in range(3):
        single = convergence_cl(ell, **{k: float(v[i]) for k, v in params.items()})
        assert single.shape == (3,)
        np.testing.assert_allclose(batch[i], single, rtol=1e-12)
    grid = convergence_cl(ell, np.array([0.25, 0.3]), np.array([[0.7], [0.8]]))
    assert grid.shape == (2, 2, 3)
    np.testing.assert_allclose(grid[1, 0], convergence_cl(ell, 0.25, 0.8), rtol=1e-12)


def test_shear_prefactor():
    ell = np.array([1.0, 2.0, 10.0, 1000.0])
    ratio = convergence_cl(ell, 0.3, 0.8, shear_prefactor=True) / convergence_cl(ell, 0.3, 0.8)
    np.testing.assert_allclose(ratio, (ell + 2) * (ell + 1) * ell * (ell - 1) / (ell + 0.5) ** 4, rtol=1e-12)


def test_icosmo_reference_file_matches_its_note():
    assert ICOSMO_REFERENCE.parent.name == "shear" and ICOSMO_REFERENCE.parent.parent.name == "catalogs"
    assert "Ω_m = 0.25" in (ICOSMO_REFERENCE.parent / "README.md").read_text()
    ell, cl = read_icosmo_reference()
    assert ell.shape == cl.shape == (400,)
    assert ell[0] == 10.0 and ell[-1] == pytest.approx(19623.54) and (np.diff(ell) > 0).all()
    assert (cl > 0).all() and (np.diff(cl) < 0).all()


def test_agreement_with_icosmo():
    """Our C_ℓ against iCosmo's for its fiducial model (Ω_b = 0.045 assumed), band by band.

    Measured max |ratio − 1|: 1.3 % for 10 ≤ ℓ ≤ 100, 0.56 % for 100–1000, 0.58 % for 1000–10⁴ (0.5 % to
    2·10⁴). The tolerances are what the unknowns allow: Ω_b (±0.001 moves C_ℓ by 1.2 % at ℓ < 100 and
    0.4 % at ℓ > 1000 since σ₈ is fixed), the Limber wavenumber ((ℓ + ½)/χ here; ℓ/χ raises C_ℓ by 1 %
    at ℓ ≲ 100 and brings those to 0.4 %) and T_CMB of the transfer function (2.7255 K here; 2.728 K
    moves C_ℓ by 0.3 %).
    """
    ell, reference = read_icosmo_reference()
    params = {k: v for k, v in ICOSMO.items() if k not in ("omega_m", "sigma8")}
    ratio = convergence_cl(ell, ICOSMO["omega_m"], ICOSMO["sigma8"], nonlinear="smith03", wiggles=True,
                           **params) / reference
    for low, high, tolerance in [(10, 100, 0.02), (100, 1000, 0.01), (1000, 1e4, 0.01), (1e4, 2e4, 0.01)]:
        band = (ell >= low) & (ell <= high)
        assert np.abs(ratio[band] - 1).max() < tolerance, (low, high)
    assert abs(np.median(ratio) - 1) < 0.01


@pytest.mark.parametrize("kwargs, name", [
    (dict(ell=[-1.0, 10.0]), "ell"),
    (dict(ell=[np.nan]), "ell"),
    (dict(ell=[[10.0]]), "ell"),
    (dict(omega_m=0.0), "omega_m"),
    (dict(omega_m=1.2), "omega_m"),
    (dict(omega_m=np.nan), "omega_m"),
    (dict(sigma8=0.0), "sigma8"),
    (dict(sigma8=-0.8), "sigma8"),
    (dict(omega_b=0.3), "omega_b"),
    (dict(omega_b=-0.01), "omega_b"),
    (dict(h=0.0), "h"),
    (dict(n_s=np.inf), "n_s"),
    (dict(w=0.0), "w"),
    (dict(z_median=0.0), "z_median"),
    (dict(z_median=[1.0, 2.0]), "z_median"),
    (dict(nz=([0.0, 2.0, 1.0], [0.0, 1.0, 1.0])), "nz redshifts"),
    (dict(nz=([0.0, 1.0, 2.0], [0.0, -1.0, 1.0])), "nz values"),
    (dict(nz=([0.0, 1.0, 2.0], [0.0, 0.0, 0.0])), "nz values"),
    (dict(nz=([0.0, 1.0, 2.0], [0.0, 1.0])), "nz"),
    (dict(nz=([0.0, 1.0, 2.0], [0.0, 1.0, 1.0]), z_median=1.0), "either"),
    (dict(nonlinear="halofit"), "nonlinear"),
    (dict(omega_m=[0.2, 0.3], sigma8=[0.7, 0.8, 0.9]), "broadcast"),
])
def test_convergence_cl_rejects_bad_input(kwargs, name):
    arguments = dict(ell=[10.0, 100.0], omega_m=0.3, sigma8=0.8) | kwargs
    with pytest.raises(ValueError, match=name):
        convergence_cl(arguments.pop("ell"), arguments.pop("omega_m"), arguments.pop("sigma8"), **arguments)


def test_power_and_background_reject_bad_input():
    with pytest.raises(ValueError, match="k"):
        linear_power([0.0, 1.0], 0.0, 0.3, 0.8)
    with pytest.raises(ValueError, match="z"):
        nonlinear_power(1.0, -0.5, 0.3, 0.8)
    with pytest.raises(ValueError, match="model"):
        nonlinear_power(1.0, 0.0, 0.3, 0.8, model="peacock")
    with pytest.raises(ValueError, match="z"):
        comoving_distance([np.nan], 0.3)
    with pytest.raises(ValueError, match="omega_m"):
        growth_factor(1.0, -0.3)
    with pytest.raises(ValueError, match="z_median"):
        smail_nz(1.0, -1.0)
    with pytest.raises(TypeError, match="k takes plain numbers"):
        linear_power(0.1 * u.Mpc**-1, 0.0, 0.3, 0.8)
