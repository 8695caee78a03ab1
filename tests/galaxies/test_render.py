"""The Sérsic renderer against analytic profiles, exact moment identities and finite differences."""
import math

import numpy as np
import pytest
import torch
from scipy.special import gammaincinv

from astrobayes.galaxies.render import (SersicRenderer, add_noise, axis_ratio_angle, check_psf, ellipticity_components,
                                        gaussian_psf, moffat_psf, render_sersic, sersic_b, sersic_enclosed_fraction)


def _moments(image):
    """Unweighted centroid and second moments (Qxx, Qyy, Qxy) of (m, H, W) images."""
    m, height, width = image.shape
    y, x = np.mgrid[:height, :width]
    flux = image.sum(axis=(1, 2))
    xc = (image * x).sum(axis=(1, 2)) / flux
    yc = (image * y).sum(axis=(1, 2)) / flux
    dx, dy = x[None] - xc[:, None, None], y[None] - yc[:, None, None]
    qxx = (image * dx**2).sum(axis=(1, 2)) / flux
    qyy = (image * dy**2).sum(axis=(1, 2)) / flux
    qxy = (image * dx * dy).sum(axis=(1, 2)) / flux
    return xc, yc, qxx, qyy, qxy


@pytest.mark.parametrize("n", [0.5, 1.0, 2.0, 4.0, 6.0])
def test_sersic_b_matches_the_exact_half_light_condition(n):
    exact = gammaincinv(2 * n, 0.5)
    # Ciotti & Bertin's series is asymptotic in 1/n: ~4e-4 at n = 0.5, < 3e-5 from n = 1 on
    assert abs(sersic_b(n) - exact) / exact < (1e-3 if n < 1 else 3e-5)
    assert sersic_enclosed_fraction(1.0, n) == pytest.approx(0.5, abs=2e-4)


@pytest.mark.parametrize("n,log_r", [(0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (4.0, 0.0), (4.0, 0.5), (6.0, 0.0)])
@pytest.mark.parametrize("x0", [0.0, 1 / 75, 0.3])
def test_pixels_match_a_finely_integrated_rendering(n, log_r, x0):
    # x0 = 0 puts the cusp on a pixel centre, 1/75 on a sub-pixel sample of a uniform 75-per-side grid
    theta = torch.tensor([[3.0, log_r, n, 0.3, -0.2, x0, -0.4]], dtype=torch.float64)
    fast = SersicRenderer((97, 97), dtype=torch.float64)(theta)
    reference = SersicRenderer((97, 97), oversample=16, core_oversample=45, cusp_cells=400,
                               dtype=torch.float64)(theta)
    assert float(fast.sum()) == pytest.approx(float(reference.sum()), rel=3e-3)
    assert float((fast - reference).abs().max() / reference.max()) < 6e-3


@pytest.mark.parametrize("n", [0.5, 1.0])
def test_compact_profiles_hold_their_analytic_flux(n):
    # r½ = 1 px and q = 1: the stamp's inscribed circle of radius 48 px holds all but ~1e-9 of the light
    theta = torch.tensor([[3.0, 0.0, n, 0.0, 0.0, 0.2, -0.1]], dtype=torch.float64)
    reference = SersicRenderer((97, 97), oversample=16, core_oversample=45, cusp_cells=400,
                               dtype=torch.float64)(theta)
    assert float(reference.sum()) == pytest.approx(1000.0 * sersic_enclosed_fraction(47.0, n), rel=2e-3)


@pytest.mark.parametrize("n", [1.0, 4.0, 6.0])
def test_a_centred_round_galaxy_is_symmetric_on_an_even_stamp(n):
    image = render_sersic([[3.0, 0.0, n, 0.0, 0.0, 0.0, 0.0]], shape=(32, 32))[0]
    centre = image[15:17, 15:17]   # the cusp sits on the corner the four central pixels share
    assert np.allclose(centre, centre[0, 0], rtol=1e-6)
    assert np.allclose(image, image.T, rtol=1e-9)
    # the refined blocks are centred on the nearest pixel, not on the corner: the 180° mismatch at
    # their edge must stay well below the renderer's accuracy (6e-3 of the peak, test above)
    assert np.abs(image - image[::-1, ::-1]).max() < 1e-3 * image.max()


def test_round_exponential_profile_and_half_light_radius():
    r_half = 6.0
    image = render_sersic([[4.0, math.log10(r_half), 1.0, 0.0, 0.0, 0.0, 0.0]], shape=(129, 129))[0]
    y, x = np.mgrid[:129, :129]
    radius = np.hypot(x - 64, y - 64)
    # half the total flux lies inside r½ (aperture sum on pixel centres: discretisation ~1 %)
    assert image[radius < r_half].sum() / 1e4 == pytest.approx(0.5, abs=0.015)
    # the pixel values follow the analytic intensity away from the core (pixel integration of a
    # smooth profile is second order: < 1 % here)
    b = sersic_b(1.0)
    analytic = 1e4 * b**2 / (2 * math.pi * r_half**2) * np.exp(-b * radius / r_half)
    ring = (radius > 3) & (radius < 25)
    assert np.allclose(image[ring], analytic[ring], rtol=0.01)


def test_ellipticity_orientation_and_axis_ratio_from_moments():
    # n = 0.5 is a Gaussian, whose unweighted moments give q exactly
    q, angle = 0.5, math.radians(30.0)
    e1, e2 = ellipticity_components(q, angle)
    image = render_sersic([[3.0, math.log10(4.0), 0.5, e1, e2, 1.2, -0.7]], shape=(81, 81), oversample=5)
    xc, yc, qxx, qyy, qxy = (float(v[0]) for v in _moments(image))
    assert (xc, yc) == pytest.approx((40 + 1.2, 40 - 0.7), abs=1e-3)
    # remove the pixel box's variance 1/12 from the pixel-integrated moments
    qxx, qyy = qxx - 1 / 12, qyy - 1 / 12
    trace, diff = qxx + qyy, math.hypot(qxx - qyy, 2 * qxy)
    measured_q = math.sqrt((trace - diff) / (trace + diff))
    measured_angle = 0.5 * math.atan2(2 * qxy, qxx - qyy)
    assert measured_q == pytest.approx(q, abs=2e-3)
    assert math.degrees(measured_angle) == pytest.approx(30.0, abs=0.2)
    q_back, phi_back = axis_ratio_angle(e1, e2)
    assert (float(q_back), float(phi_back)) == pytest.approx((q, angle))


def test_psf_convolution_adds_second_moments_and_keeps_flux():
    psf = moffat_psf(3.0, beta=3.0)
    theta = [[3.0, math.log10(3.0), 1.5, 0.2, 0.1, 0.3, 0.2]]
    sharp = render_sersic(theta, shape=(121, 121))
    blurred = render_sersic(theta, shape=(121, 121), psf=psf)
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=1e-6)
    sx, sy, sxx, syy, sxy = _moments(sharp)
    bx, by, bxx, byy, bxy = _moments(blurred)
    # a centred, symmetric PSF moves no light: the centroid stays put
    assert (float(bx[0]), float(by[0])) == pytest.approx((float(sx[0]), float(sy[0])), abs=1e-6)
    _, _, pxx, pyy, pxy = _moments(psf[None])
    # moments of a discrete convolution add exactly (the stamp holds both to < 1e-3 of their flux)
    assert float(bxx[0]) == pytest.approx(float(sxx[0] + pxx[0]), rel=2e-3)
    assert float(byy[0]) == pytest.approx(float(syy[0] + pyy[0]), rel=2e-3)
    assert float(bxy[0]) == pytest.approx(float(sxy[0] + pxy[0]), abs=2e-3)


def test_convolution_not_correlation_with_an_asymmetric_psf():
    # a PSF whose light sits one pixel to the right of its centre moves the galaxy +1 px in x
    psf = np.zeros((5, 5))
    psf[2, 3] = 1.0
    theta = [[3.0, 0.3, 1.0, 0.1, 0.0, 0.2, 0.1]]
    sharp = render_sersic(theta, shape=(41, 41))[0]
    shifted = render_sersic(theta, shape=(41, 41), psf=psf)[0]
    assert np.allclose(shifted[:, 1:], sharp[:, :-1], atol=1e-12)


def test_light_from_outside_the_stamp_scatters_in():
    theta = [[3.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]]
    psf = gaussian_psf(6.0)
    big = render_sersic(theta, shape=(61, 61), psf=psf)[0]
    small = render_sersic(theta, shape=(21, 21), psf=psf)[0]
    assert np.allclose(small, big[20:41, 20:41], atol=1e-9)


def test_gradients_match_finite_differences():
    renderer = SersicRenderer((16, 16), psf=gaussian_psf(2.0), dtype=torch.float64)
    theta = torch.tensor([[2.5, 0.4, 1.7, 0.15, -0.1, 0.2, -0.3]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: renderer(t).sum(dim=0)[5:11, 5:11], (theta,), eps=1e-6, atol=1e-5)


def test_gaussian_and_moffat_psfs():
    kernel = gaussian_psf(2.5)
    assert kernel.shape == (11, 11) and kernel.sum() == pytest.approx(1.0)
    _, _, qxx, qyy, qxy = _moments(kernel[None])
    sigma = 2.5 / (2 * math.sqrt(2 * math.log(2)))
    assert float(qxx[0]) == pytest.approx(sigma**2 + 1 / 12, rel=0.02)  # pixel box adds 1/12
    assert float(qxy[0]) == pytest.approx(0.0, abs=1e-12)
    moffat = moffat_psf(3.0, beta=2.5, size=41)
    profile = moffat[20, 20:]
    half = np.interp(0.5 * profile[0], profile[::-1], np.arange(21)[::-1])
    assert 2 * half == pytest.approx(3.0, rel=0.08)  # pixel-integrated FWHM is a little wider


def test_noise_models():
    images = np.full((200, 16, 16), 5.0)
    noisy, sigma = add_noise(images, sigma=2.0, seed=0)
    # 51 200 pixels: the sample std has relative standard error 1/sqrt(2N) = 0.3 %
    assert np.std(noisy - images) == pytest.approx(2.0, rel=0.012)
    counts, sigma = add_noise(images, sky=20.0, gain=2.0, seed=1)
    assert np.mean(counts) == pytest.approx(5.0, abs=4 * math.sqrt(12.5 / counts.size))
    assert np.var(counts) == pytest.approx(12.5, rel=0.03)
    assert np.allclose(sigma, math.sqrt(12.5))


def test_bad_input():
    renderer = SersicRenderer((16, 16))
    with pytest.raises(ValueError, match="theta must have shape"):
        renderer(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        renderer(torch.tensor([[2.0, 0.3, float("nan"), 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="sersic_n"):
        renderer(torch.tensor([[2.0, 0.3, 0.1, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="e1² \\+ e2²"):
        renderer(torch.tensor([[2.0, 0.3, 1.0, 0.8, 0.7, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        SersicRenderer((16,))
    with pytest.raises(ValueError, match="psf must be a 2-D"):
        check_psf(np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="psf contains NaN"):
        check_psf(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="positive sum"):
        check_psf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="beta"):
        moffat_psf(2.0, beta=0.9)
    with pytest.raises(ValueError, match="fwhm"):
        gaussian_psf(-1.0)
    with pytest.raises(ValueError, match="either sigma"):
        add_noise(np.zeros((1, 4, 4)), sigma=1.0, sky=1.0, gain=1.0)
    with pytest.raises(ValueError, match="q must lie"):
        ellipticity_components(1.5, 0.0)
    assert check_psf(np.ones((4, 4))).shape == (5, 5)
