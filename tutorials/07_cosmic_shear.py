# %% [markdown]
# # Cosmic shear on the sphere: from a masked noisy map to S₈, two ways
#
# Weak lensing by large-scale structure shears the images of distant galaxies
# by about a per cent. Averaged in HEALPix pixels, the shapes give a noisy map
# of the shear (γ₁, γ₂), or of the convergence κ, over the survey footprint;
# its statistics measure how clumpy matter is, S₈ = σ₈ √(Ω_m / 0.3). This
# tutorial:
#
# 1. computes the convergence power spectrum C_ℓ(Ω_m, σ₈) (Eisenstein & Hu
#    1998 transfer function, halofit, Limber) and checks it against iCosmo;
# 2. simulates a masked, noisy log-normal κ map and its shear, looks at them
#    with ``mollview``, writes and re-reads a HEALPix FITS file, and inverts
#    the shear back to κ (Kaiser–Squires on the sphere);
# 3. measures pseudo-C_ℓ band powers and compares them with the model;
# 4. route A: a neural emulator of the band powers inside a Gaussian
#    likelihood (covariance from simulations) sampled with emcee;
# 5. route B: neural posterior estimation from the whole map through a
#    HEALPix graph-convolution network;
# 6. compares both posteriors on the same map and checks their calibration on
#    held-out simulations.
#
# Everything here is simulated: astrobayes ships no real shear catalogue, so
# the shear domain is demonstrated on simulations (``catalog_to_maps`` turns a
# real shape catalogue into the same ``ShearMap``).
#
# Run it with ``python tutorials/07_cosmic_shear.py`` (about 5 minutes on 2
# CPU cores). Figures go to ``ASTROBAYES_TUTORIAL_OUTPUT`` (default
# ``tutorial-output/``); ``ASTROBAYES_FAST=1`` makes everything smaller.

# %%
import os
import tempfile
import time
import warnings
from pathlib import Path

import astropy.units as u
import healpy as hp
import matplotlib.pyplot as plt
import numpy as np

from astrobayes import shear
from astrobayes.inference.diagnostics import expected_coverage, plot_coverage

FAST = os.environ.get("ASTROBAYES_FAST", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("ASTROBAYES_TUTORIAL_OUTPUT", "tutorial-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)


def save_figure(fig, name):
    """Save a figure of this tutorial and say where it went."""
    path = OUTPUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


# %% [markdown]
# ## 1. The convergence power spectrum
#
# ``convergence_cl`` integrates the non-linear matter power spectrum along the
# line of sight, weighted by the lensing efficiency of a Smail n(z) with median
# redshift 1. astrobayes ships iCosmo's spectrum for Ω_m = 0.25, σ₈ = 0.8 as an
# independent check (``catalogs/shear/``).

# %%
ell, reference = shear.read_icosmo_reference()
model = shear.convergence_cl(ell, 0.25, 0.8, omega_b=0.045)
print(f"C_ℓ against iCosmo, ℓ = {ell.min():.0f}–{ell.max():.0f}: max |ratio − 1| = "
      f"{np.abs(model / reference - 1).max():.4f}")

fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True, height_ratios=(3, 1))
for omega_m, sigma8 in ((0.25, 0.8), (0.3, 0.7), (0.3, 0.9), (0.4, 0.8)):
    top.loglog(ell, ell * (ell + 1) * shear.convergence_cl(ell, omega_m, sigma8) / (2 * np.pi),
               label=f"Ω_m = {omega_m}, σ₈ = {sigma8}")
top.loglog(ell, ell * (ell + 1) * reference / (2 * np.pi), "k:", label="iCosmo (Ω_m = 0.25, σ₈ = 0.8)")
top.set_ylabel("ℓ(ℓ+1) C_ℓ / 2π")
top.legend(fontsize=8)
bottom.semilogx(ell, model / reference - 1)
bottom.axhline(0, color="k", lw=0.5)
bottom.set_xlabel("multipole ℓ")
bottom.set_ylabel("astrobayes / iCosmo − 1")
save_figure(fig, "07_power_spectrum")

# %% [markdown]
# ## 2. A masked, noisy shear map
#
# ``ShearSimulator`` draws a log-normal κ map for a spectrum, turns it into
# shear through spin-2 harmonics, adds shape noise σ_e / √(n_gal A_pix) per
# pixel and component, and applies the footprint. Here: a 5000 deg² cap,
# n_gal = 10 arcmin⁻², σ_e = 0.26. A pixel of nside 64 (0.84 deg²) averages
# some 30,000 galaxies, so the noise per pixel is a fraction of the signal;
# at the arcminute pixels of a real analysis it dominates.

# %%
nside = 32 if FAST else 64
lmax = 2 * nside
footprint = shear.survey_mask(nside, "cap", area=5000 * u.deg ** 2)
simulator = shear.ShearSimulator(nside, lmax, lognormal=True, sigma_e=0.26, n_gal=10 / u.arcmin ** 2,
                                 mask=footprint, fields=("kappa", "gamma1", "gamma2"))
noiseless = shear.ShearSimulator(nside, lmax, lognormal=True, sigma_e=0.0, mask=footprint,
                                 fields=("kappa", "gamma1", "gamma2"))
cl_true = np.zeros(lmax + 1)
cl_true[2:] = shear.convergence_cl(np.arange(2, lmax + 1), 0.3, 0.8)
clean = noiseless(cl_true[None], seed=7)[0]
noisy = simulator(cl_true[None], seed=7)[0]  # the same seed: the same sky, plus noise
observed = shear.ShearMap(kappa=noisy[0], gamma1=noisy[1], gamma2=noisy[2], mask=footprint,
                          meta={"cosmology": "Ω_m = 0.3, σ₈ = 0.8"})
print(observed, f"noise per pixel σ = {simulator.noise_sigma:.4f}")

fig = plt.figure(figsize=(11, 6.5))
hp.mollview(np.where(footprint, clean[0], hp.UNSEEN), fig=fig.number, sub=(2, 2, 1), title="κ (no noise)")
hp.mollview(np.where(footprint, noisy[0], hp.UNSEEN), fig=fig.number, sub=(2, 2, 2), title="κ with shape noise")
hp.mollview(np.where(footprint, clean[1], hp.UNSEEN), fig=fig.number, sub=(2, 2, 3), title="γ₁ (no noise)")
hp.mollview(np.where(footprint, noisy[1], hp.UNSEEN), fig=fig.number, sub=(2, 2, 4), title="γ₁ with shape noise")
save_figure(fig, "07_maps")

# FITS round trip: masked pixels are written as hp.UNSEEN, the footprint as a logical column
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "shear_map.fits"
    shear.write_maps(path, observed)
    reread = shear.read_maps(path)
print("read back:", reread, "identical:", np.array_equal(reread.gamma1, observed.gamma1))

# Kaiser–Squires on the sphere: the E-mode convergence of the noiseless shear
kappa_e = shear.shear_to_kappa(clean[1], clean[2], mask=footprint)
inner = shear.survey_mask(nside, "cap", area=2500 * u.deg ** 2)  # away from the edges, where E/B leak
print(f"κ from the shear vs the input κ, inner half of the footprint: correlation "
      f"{np.corrcoef(kappa_e[inner], clean[0][inner])[0, 1]:.3f}")

# %% [markdown]
# ## 3. Band powers
#
# ``pseudo_cl`` measures the power of the masked map and divides by the
# observed sky fraction; it does not deconvolve the mask's mode coupling, so
# the band powers are used as simulation-calibrated summaries below. Shape
# noise adds a flat σ² A_pix.

# %%
survey = shear.ShearSurvey(nside, area=5000 * u.deg ** 2)
bands = shear.pseudo_cl(noisy[0], footprint, lmax=lmax, bins=survey.edges)
bands_clean = shear.pseudo_cl(clean[0], footprint, lmax=lmax, bins=survey.edges)
ell_all = np.arange(lmax + 1)
noise_level = simulator.noise_sigma ** 2 * hp.nside2pixarea(nside)
fsky = footprint.mean()
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(ell_all[2:], cl_true[2:], "k", label="model C_ℓ")
ax.loglog(ell_all[2:], cl_true[2:] + noise_level, "k--", label="model + shape noise")
scatter = np.sqrt(2 / ((2 * bands.ell + 1) * np.diff(bands.edges) * fsky))  # Gaussian cosmic variance
ax.errorbar(bands.ell, bands_clean.power, bands_clean.power * scatter, fmt="o", label="noiseless map")
ax.errorbar(bands.ell, bands.power, bands.power * scatter, fmt="s", label="noisy map")
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.set_xlabel("multipole ℓ")
ax.set_ylabel("C_ℓ^κκ")
ax.legend(fontsize=8)
save_figure(fig, "07_band_powers")

# %% [markdown]
# ## 4. Training simulations
#
# The inference survey is coarser (nside 32, or 16 in fast mode) so that
# thousands of maps take a minute. Ω_m and σ₈ are drawn from a uniform prior;
# each simulation gives a noisy κ map, its band powers, and (for route B) the
# map itself in NEST order.

# %%
nside_fit = 16 if FAST else 32
survey = shear.ShearSurvey(nside_fit, area=5000 * u.deg ** 2, n_bins=6 if FAST else 10)
prior = shear.shear_prior()
n_train = 200 if FAST else 6000
start = time.perf_counter()
theta = prior.sample(n_train, seed=1).numpy()
maps = survey.maps(theta, seed=2, progress=not FAST)
band_powers = survey.band_powers(maps)
print(f"{n_train} maps and their band powers in {time.perf_counter() - start:.0f} s")

truth = np.array([0.3, 0.8])
observed_map = survey.maps(truth[None], seed=3)
observed_bp = survey.band_powers(observed_map)
print(f"the 'observed' map: S₈ = {shear.s8(truth):.3f}")

# %% [markdown]
# ## 5. Route A: emulator + Gaussian likelihood + emcee
#
# A network learns the mean log band powers as a function of (Ω_m, σ₈): a
# deterministic map used inside a Gaussian likelihood, whose covariance comes
# from simulations at one fiducial cosmology (with the Hartlap correction for
# the inverse of a noisy covariance).

# %%
emulator = shear.train_band_power_emulator(theta, band_powers, epochs=5 if FAST else 300)
fiducial = survey.band_powers(survey.maps(np.tile([0.3, 0.8], (50 if FAST else 500, 1)), seed=4))
likelihood = shear.BandPowerLikelihood(emulator, fiducial, prior)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # emcee's autocorrelation warning on short chains
    chain = shear.fit_band_powers(observed_bp[0], likelihood, n_steps=100 if FAST else 3000, seed=0,
                                  progress=not FAST)
s8_emcee = shear.s8(chain.samples)
print(f"route A: S₈ = {s8_emcee.mean():.3f} ± {s8_emcee.std():.3f}")

# %% [markdown]
# ## 6. Route B: NPE from the whole map
#
# ``train_shear_posterior`` puts a HEALPix graph-convolution network
# (Chebyshev filters on the pixel-neighbour graph, NEST pooling; in the spirit
# of DeepSphere) in front of a spline flow, and trains both to give
# q(Ω_m, σ₈ | map). The network only sees the footprint. Maps are divided by
# the noise level so that pixel values are of order one. Here it sees 6,000
# maps for 30 epochs, which is short: expect it to be calibrated but wider
# than route A. ``benchmarks/shear_inference.py`` trains it on 10⁴ maps for
# 80 epochs, and then its S₈ intervals are 7 % narrower than the emulator's
# over 200 held-out maps.

# %%
scale = survey.simulator.noise_sigma
start = time.perf_counter()
map_posterior = shear.train_shear_posterior(theta, survey.nest_maps(maps) / scale, prior, nside=nside_fit,
                                            mask=survey.mask, epochs=1 if FAST else 30, batch_size=64)
print(f"map-level NPE trained in {time.perf_counter() - start:.0f} s "
      f"on {map_posterior.estimator.history.device}")
draws_npe = map_posterior.sample(4000, survey.nest_maps(observed_map) / scale, seed=0)[0]
s8_npe = shear.s8(draws_npe)
print(f"route B: S₈ = {s8_npe.mean():.3f} ± {s8_npe.std():.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.scatter(*chain.samples[::10].T, s=2, alpha=0.3, label="A: emulator + emcee")
left.scatter(*draws_npe[::4].T, s=2, alpha=0.3, label="B: map NPE")
left.plot(*truth, "k*", ms=12, label="truth")
left.set_xlabel("Ω_m")
left.set_ylabel("σ₈")
legend = left.legend(fontsize=8)
for handle in legend.legend_handles[:2]:  # the scatter points are tiny; enlarge them in the legend only
    handle.set_sizes([20])
bins = np.linspace(0.5, 1.1, 60)
right.hist(s8_emcee, bins, density=True, histtype="step", label="A: emulator + emcee")
right.hist(s8_npe, bins, density=True, histtype="step", label="B: map NPE")
right.axvline(shear.s8(truth), color="k", ls=":", label="truth")
right.set_xlabel("S₈ = σ₈ √(Ω_m / 0.3)")
right.legend(fontsize=8)
save_figure(fig, "07_posteriors")

# %% [markdown]
# ## 7. Calibration on held-out simulations
#
# One posterior says little about calibration: over many simulations from the
# prior, the true S₈ must fall inside the 68 % interval 68 % of the time.
# Amortized NPE makes this cheap; each emcee fit costs seconds, so route A is
# checked on fewer maps here (``benchmarks/shear_inference.py`` runs 200 for
# both routes).

# %%
n_test = 10 if FAST else 200
test_theta = prior.sample(n_test, seed=5).numpy()
test_maps = survey.maps(test_theta, seed=6)
npe_draws = shear.s8(map_posterior.sample(1000, survey.nest_maps(test_maps) / scale, seed=1))
n_emcee = 2 if FAST else 40
test_bp = survey.band_powers(test_maps[:n_emcee])
emcee_draws = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    for k in range(n_emcee):
        fit = shear.fit_band_powers(test_bp[k], likelihood, n_steps=100 if FAST else 2000, seed=k, progress=False)
        emcee_draws.append(shear.s8(fit.samples[np.random.default_rng(k).choice(len(fit.samples), 1000)]))
truth_s8 = shear.s8(test_theta)[:, None]
coverage_npe = expected_coverage(truth_s8, npe_draws[..., None])
coverage_emcee = expected_coverage(truth_s8[:n_emcee], np.stack(emcee_draws)[..., None])
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
plot_coverage(coverage_npe.levels, coverage_npe.coverage, n=n_test, names=["S₈ (map NPE)"], ax=left)
plot_coverage(coverage_emcee.levels, coverage_emcee.coverage, n=n_emcee, names=["S₈ (emulator + emcee)"], ax=right)
save_figure(fig, "07_coverage")
print(f"mean posterior std of S₈: map NPE {npe_draws.std(axis=1).mean():.4f} over {n_test} maps, "
      f"emcee {np.mean([d.std() for d in emcee_draws]):.4f} over {n_emcee}")
