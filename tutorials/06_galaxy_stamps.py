# %% [markdown]
# # Galaxy stamps: Sérsic posteriors from pixels, and generative models of real galaxies
#
# A galaxy stamp is a few hundred to a few thousand noisy pixels; what an
# astronomer wants from it is a handful of structural numbers — total flux,
# half-light radius, Sérsic index, shape — with honest error bars, and, for
# survey simulations, new galaxies that look like the real ones. This
# tutorial:
#
# 1. reads stamps from FITS (a real COSMOS galaxy with its PSF), cuts a stamp
#    around a position, keeps units, WCS and noise, and normalises pixels
#    reversibly;
# 2. renders PSF-convolved Sérsic galaxies with astrobayes' differentiable
#    torch renderer — the forward model;
# 3. trains an amortized posterior (NPE: a CNN embedding + a spline flow) on
#    simulated stamps and checks its calibration on held-out ones;
# 4. fits the same stamp with emcee, the renderer inside a Gaussian pixel
#    likelihood, and compares the two posteriors (and their speed);
# 5. fits the real COSMOS galaxy with its real PSF;
# 6. infers a population's size–luminosity relation from many stamps;
# 7. trains a VAE and a WGAN-GP on real Hubble Deep Field stamps and compares
#    the morphology of generated galaxies with held-out real ones.
#
# Run it with `python tutorials/06_galaxy_stamps.py` (about 30 minutes on 2
# CPU cores). Figures go to `ASTROBAYES_TUTORIAL_OUTPUT` (default
# `tutorial-output/`); `ASTROBAYES_FAST=1` makes everything smaller.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from astrobayes import galaxies as gal
from astrobayes.galaxies.generate import train_generative
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


def show(ax, image, title, scale=1.0):
    ax.imshow(np.arcsinh(image / scale), origin="lower", cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


# %% [markdown]
# ## 1. Stamps from FITS
#
# `catalogs/galaxies/` ships one HST/ACS F814W COSMOS galaxy (543 × 543
# pixels of 0.03″, noise-padded) with its PSF, from the GalSim real-galaxy
# sample. `cosmos_galaxy()` reads it as a `Stamps` collection — pixel unit,
# pixel scale, WCS and a noise map estimated from the image border — and we
# cut a 128-pixel stamp around the galaxy with `cut_stamps` (astropy's
# `Cutout2D` underneath, so each cutout keeps a correct WCS).

# %%
big, psf_full = gal.cosmos_galaxy()
print(big)
stamp = gal.cut_stamps(big.data[0], np.array([[269.0, 272.0]]), 128, wcs=big.wcs[0], noise=big.noise[0])
sigma = float(np.median(stamp.noise))
print(stamp, f"noise σ = {sigma:.2e} {big.unit}")

with tempfile.TemporaryDirectory() as folder:
    gal.write_stamps(stamp, Path(folder) / "cosmos_stamp.fits")
    again = gal.read_stamps(Path(folder) / "cosmos_stamp.fits")
    assert np.allclose(again.data, stamp.data, equal_nan=True)

# an asinh stretch for networks: linear at the noise level, logarithmic in the core, and reversible
scaler = gal.StampScaler("asinh").fit(stamp)
assert np.allclose(scaler.inverse_transform(scaler.transform(stamp.data)), stamp.data)

hdf = gal.hubble_deep_field(32)
fig, axes = plt.subplots(1, 5, figsize=(13, 2.8))
show(axes[0], stamp.data[0], "COSMOS galaxy (128 px)", scale=sigma)
show(axes[1], psf_full, "its PSF (log)", scale=1e-4)
for k, ax in enumerate(axes[2:]):
    show(ax, hdf.data[k], f"HDF stamp {k}", scale=5.0)
save_figure(fig, "06_stamps")

# %% [markdown]
# ## 2. The forward model: PSF-convolved Sérsic profiles
#
# A `StampSimulator` is one observing set-up: stamp shape, PSF, background
# noise and the prior over the seven parameters (log₁₀ flux, log₁₀ r½ in
# pixels, Sérsic n, ellipticity e₁ and e₂, centroid x₀ and y₀). Its renderer
# integrates the profile over pixels (with a finer grid in the cuspy core),
# convolves with the PSF by FFT and is plain torch, so it is batched and
# differentiable.

# %%
simulator = gal.StampSimulator((32, 32), psf_fwhm=2.5, noise_sigma=1.0, pixel_scale=0.2)
examples = np.array([[3.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0],     # exponential disk, round
                     [3.0, 0.5, 4.0, 0.0, 0.0, 0.0, 0.0],     # de Vaucouleurs
                     [3.0, 0.6, 1.0, 0.4, 0.3, 1.0, -0.5],    # inclined disk, off-centre
                     [2.2, 0.3, 2.0, -0.2, 0.1, 0.0, 0.0]])   # faint
noiseless = simulator.noiseless(examples)
noisy = simulator(examples, np.random.default_rng(1))[:, 0]
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for k in range(4):
    show(axes[0, k], noiseless[k], f"n = {examples[k, 2]:g}, S/N = {gal.signal_to_noise(noiseless[k], 1.0)[0]:.0f}")
    show(axes[1, k], noisy[k], "with noise")
save_figure(fig, "06_forward_model")

# %% [markdown]
# ## 3. Amortized posterior (NPE) and its calibration
#
# We simulate stamps from the prior and train a flow conditioned on a CNN
# embedding of the stamp. The CNN keeps its last feature map flattened
# rather than averaged: a galaxy's centroid and orientation are *where*
# things are in the stamp. The posterior is then checked where the truth is
# known: on held-out simulated stamps, the fraction of truths inside each
# credible region must equal its level.

# %%
n_train, epochs = (1000, 3) if FAST else (50000, 40)
start = time.perf_counter()
posterior = gal.train_structure_posterior(simulator, n_train, seed=0, epochs=epochs, progress=False)
print(f"trained on {n_train} simulations in {time.perf_counter() - start:.0f} s")

test_stamps, test_truth = gal.simulate_stamps(50 if FAST else 1000, simulator, seed=2024)
draws = posterior.sample(test_stamps, 200 if FAST else 500, seed=1)
truth = np.stack([np.asarray(test_truth[name]) for name in gal.PARAMETERS], axis=1)
coverage = expected_coverage(truth, draws)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
plot_coverage(coverage.levels, coverage.coverage, n=len(truth), names=gal.PARAMETERS, ax=ax)
save_figure(fig, "06_npe_coverage")
print(posterior.summary(test_stamps[:3])["flux", "flux_lo", "flux_hi", "r_half_arcsec", "sersic_n", "q"])

# %% [markdown]
# ## 4. The same stamp with emcee
#
# The classical route keeps the renderer as a deterministic map inside a
# Gaussian pixel likelihood: find the maximum a posteriori point with the
# renderer's gradients, then let emcee explore. It is exact for the forward
# model, but costs a full MCMC per galaxy; NPE costs one training run and
# then milliseconds per stamp. C2ST (a classifier trying to tell the two
# sets of draws apart; 0.5 = indistinguishable) measures their agreement.

# %%
from astrobayes.inference.diagnostics import c2st  # noqa: E402

index = int(np.argsort(np.asarray(test_truth["snr"]))[len(truth) // 2])  # a median-S/N stamp
start = time.perf_counter()
mcmc = gal.fit_stamp_mcmc(test_stamps[index], simulator, n_steps=100 if FAST else 4000, seed=0, progress=False)
mcmc_seconds = time.perf_counter() - start
n = min(len(mcmc.samples), 400 if FAST else 2000)
npe_draws = posterior.sample(test_stamps[index], n, seed=5)[0]
reference = mcmc.samples[np.random.default_rng(0).choice(len(mcmc.samples), n, replace=False)]
score = c2st(reference, npe_draws, seed=0, epochs=50 if FAST else 500)  # 500: c2st's default
print(f"emcee: {mcmc_seconds:.0f} s for one stamp; C2ST(emcee, NPE) = {score:.3f}")
fig, axes = plt.subplots(1, 4, figsize=(13, 3))
for ax, (i, j) in zip(axes, [(0, 1), (1, 2), (3, 4), (5, 6)]):
    ax.scatter(reference[:, i], reference[:, j], s=2, alpha=0.3, label="emcee")
    ax.scatter(npe_draws[:, i], npe_draws[:, j], s=2, alpha=0.3, label="NPE")
    ax.plot(truth[index, i], truth[index, j], "k*", ms=12)
    ax.set_xlabel(gal.PARAMETERS[i])
    ax.set_ylabel(gal.PARAMETERS[j])
axes[0].legend(markerscale=4)
save_figure(fig, "06_npe_vs_emcee")

# %% [markdown]
# ## 5. A real galaxy with its real PSF
#
# The COSMOS galaxy is resolved (its half-light radius is tens of pixels),
# so the renderer runs without sub-pixel oversampling outside the core; the
# PSF is cropped to its central 31 pixels (renormalised). The prior is set
# for this galaxy's flux (e⁻/s) and size. A spiral is not a Sérsic profile:
# the residual map shows what a single smooth component leaves behind.

# %%
psf = psf_full[36:67, 36:67]
cosmos_prior = gal.structural_prior(log10_flux=(1.0, 3.0), r_half=(3.0, 80.0), sersic_n=(0.36, 6.0),
                                    e_max=0.6, centroid=8.0)
cosmos = gal.StampSimulator((128, 128), psf=psf, noise_sigma=sigma, pixel_scale=gal.COSMOS_PIXEL_SCALE,
                            oversample=1, prior=cosmos_prior)
fit = gal.fit_stamp_mcmc(stamp, cosmos, n_steps=40 if FAST else 2000, n_walkers=16, seed=0, progress=False)
table = gal.posterior_table(fit.samples[None], cosmos)
print(table["flux", "r_half_arcsec", "r_half_arcsec_lo", "r_half_arcsec_hi", "sersic_n", "q", "position_angle"])
best = np.median(fit.samples, axis=0)
model = cosmos.noiseless(best)[0]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
show(axes[0], stamp.data[0], "COSMOS F814W", scale=sigma)
show(axes[1], model, "Sérsic model (posterior median)", scale=sigma)
axes[2].imshow((stamp.data[0] - model) / sigma, origin="lower", cmap="RdBu_r", vmin=-5, vmax=5)
axes[2].set_title("residual / σ", fontsize=9)
save_figure(fig, "06_cosmos_fit")

# %% [markdown]
# ## 6. A population: the size–luminosity relation
#
# With the amortized posterior, a few hundred stamps cost seconds. Their
# draws, divided by the training prior, become per-galaxy likelihoods for a
# population model — here log₁₀ r½ = a + b (log₁₀ F − 2.75) + N(0, σ²) —
# sampled with emcee.

# %%
population, population_truth = gal.simulate_size_luminosity(50 if FAST else 300, simulator, a=0.45, b=0.3,
                                                            sigma=0.1, seed=7)
population_draws = posterior.sample(population, 64, seed=3)
keep = np.all(np.isfinite(population_draws), axis=(1, 2))
relation = gal.fit_size_luminosity(population_draws[keep], simulator.prior, n_steps=150 if FAST else 2000,
                                   seed=0, progress=False)
for j, name in enumerate(["a", "b", "sigma"]):
    low, mid, high = np.percentile(relation.samples[:, j], [16, 50, 84])
    print(f"{name} = {mid:.3f} (+{high - mid:.3f} / −{mid - low:.3f})   truth {[0.45, 0.3, 0.1][j]}")
fig = relation.corner(truths=[0.45, 0.3, 0.1])
save_figure(fig, "06_size_luminosity")

# %% [markdown]
# ## 7. Generative models of real galaxies
#
# The 410 isolated Hubble Deep Field stamps are split into a training half
# and a held-out half. A convolutional VAE and a WGAN-GP learn the training
# half (with its eight rotations and reflections); we then compare the
# morphology — flux, r50, ellipticity, concentration, asymmetry — of
# generated galaxies with the held-out real ones, next to the distance
# between two random halves of the real set (the best a generator can hope
# for at this sample size). `benchmarks/galaxies_generative.py` runs this at
# full length.

# %%
order = np.random.default_rng(0).permutation(len(hdf))
half = len(hdf) // 2
train_half, held_out = hdf[order[:half]], hdf[order[half:2 * half]]
vae = train_generative(train_half, "vae", epochs=1 if FAST else 300, patience=50, seed=0, progress=False,
                       model_options={"base_channels": 16 if FAST else 32})
wgan = train_generative(train_half, "wgan", epochs=1 if FAST else 200, seed=0, progress=False,
                        model_options={"base_channels": 16 if FAST else 32})
generated = {"VAE": vae.sample(half, seed=1), "WGAN": wgan.sample(half, seed=1)}
for label, images in generated.items():
    table = gal.compare_morphology(held_out, images)
    print(label, dict(zip(table["statistic"], np.round(table["ks_statistic"], 3))))
baseline = gal.shuffled_baseline(hdf[order[:2 * half]], n_splits=5)
print("real/real", dict(zip(baseline["statistic"], np.round(baseline["ks_statistic"], 3))))
fig = gal.plot_morphology({"real (held out)": gal.measure_morphology(held_out),
                           **{label: gal.measure_morphology(images) for label, images in generated.items()}})
save_figure(fig, "06_morphology")

fig, axes = plt.subplots(3, 6, figsize=(10, 5.4))
rows = {"real": held_out.data, "VAE": generated["VAE"].data, "WGAN": generated["WGAN"].data}
for i, (label, images) in enumerate(rows.items()):
    for j in range(6):
        show(axes[i, j], images[j], label if j == 0 else "", scale=5.0)
save_figure(fig, "06_generated")

# latent-space interpolation between two real galaxies, and the VAE's uncertainty about their codes
path = vae.interpolate(held_out.data[0], held_out.data[1], n_steps=6)
mean, std = vae.encode(held_out[:2])
print("latent std of two held-out galaxies (prior std 1):", np.round(np.median(std, axis=1), 3))
fig, axes = plt.subplots(1, 6, figsize=(10, 1.9))
for j in range(6):
    show(axes[j], path.data[j], f"step {j}", scale=5.0)
save_figure(fig, "06_interpolation")
