# %% [markdown]
# # Which σ do the stars imply? The Stefan–Boltzmann law with a learned stellar map
#
# Sellentin's worked example ("Bay(e)sics for deep learning"): a field of
# main-sequence stars has measured luminosities L̂. Each star obeys
# L = σ · 4πR² · T⁴, and its radius and temperature follow from its mass M and
# metallicity Z through stellar structure, (R, T) = f(M, Z). Which
# Stefan–Boltzmann constant σ do the luminosities imply?
#
#     P(σ | L̂) ∝ ∫ δ_D(L − σ A T⁴) P(A, T) G(L̂ | L) dA dT dL,
#     P(A, T) = ∫ δ_D[(A, T) − f(M, Z)] P(Z) P(M) dZ dM.
#
# f is a neural network trained on a stellar model; it enters as a Dirac
# delta, and every uncertainty stays in the honest distributions: the initial
# mass function P(M), the metallicity distribution P(Z) and the measurement
# error G. This tutorial:
#
# 1. trains the network on the Tout et al. (1996) zero-age main-sequence fits
#    and maps its errors;
# 2. simulates a field of stars with the physical σ;
# 3. infers σ and the IMF slope, with the network and with the exact model;
# 4. shows what goes wrong when a poorly trained network is trusted, and what a
#    deep ensemble of networks does about it;
# 5. frees the metallicity distribution too;
# 6. reads a catalogue from disk, as you would your own.
#
# Run it with `python tutorials/03_stefan_boltzmann.py` (about 15 minutes on
# 2 CPU cores). Figures go to `ASTROBAYES_TUTORIAL_OUTPUT` (default
# `tutorial-output/`); `ASTROBAYES_FAST=1` makes everything smaller.

# %%
import os
import tempfile
from pathlib import Path

import astropy.constants as const
import matplotlib.pyplot as plt
import numpy as np

from astrobayes import stars
from astrobayes.stars.simulate import SIGMA_UNIT

FAST = os.environ.get("ASTROBAYES_FAST", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("ASTROBAYES_TUTORIAL_OUTPUT", "tutorial-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
N_STARS = 200 if FAST else 2000
N_STEPS = 300 if FAST else 1500
SIGMA_SB = const.sigma_sb.to_value(SIGMA_UNIT)  # 5.670374419e-8 W m⁻² K⁻⁴ (CODATA 2018, exact)


def save_figure(fig, name):
    """Save a figure of this tutorial and say where it went."""
    path = OUTPUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


def describe(label, result):
    """One line per posterior: median, 68 % interval and the truth's distance in posterior standard deviations."""
    draws = result.sigma.to_value(SIGMA_UNIT)
    low, median, high = np.percentile(draws, [16, 50, 84])
    pull = (median - SIGMA_SB) / draws.std()
    print(f"{label:<34s} σ = {median:.4e} (+{high - median:.1e} −{median - low:.1e}) W m⁻² K⁻⁴, "
          f"truth at {pull:+.2f} std")
    return draws


# %% [markdown]
# ## 1. The stellar model and its network
#
# Tout, Pols, Eggleton & Han (1996, MNRAS 281, 257) fit the zero-age main
# sequence of detailed stellar models with rational functions of mass and
# metallicity, valid for 0.1–100 M_sun and Z = 10⁻⁴–0.03. We treat them as the
# "expensive simulator" and train a network on 20 000 of its stars over
# 0.5–20 M_sun and −1 ≤ [Fe/H] ≤ +0.15. The requirement is a median
# relative error below 1 % in R and in T_eff over that domain.

# %%
stellar_map = stars.train_stellar_map(n_train=4000 if FAST else 20000, epochs=80 if FAST else 300,
                                      progress=False, seed=0)
errors = stars.stellar_map_errors(stellar_map)
for quantity, summary in errors.meta["summary"].items():
    print(f"learned {quantity:<6s}: median |relative error| {summary['median']:.3%}, "
          f"95th percentile {summary['p95']:.3%}, max {summary['max']:.3%}")
save_figure(stars.plot_stellar_map_errors(errors), "stellar_map_errors")

# %% [markdown]
# ## 2. A mock field
#
# Masses from a Salpeter-like power-law IMF (dN/dM ∝ M^−2.35 on 0.5–20 M_sun),
# [Fe/H] ~ N(−0.2, 0.2²) truncated to the map's domain, R and T_eff from the
# exact ZAMS model, L = σ 4πR²T⁴ with the physical σ, and a 5 % log-normal
# error on each luminosity (err / L̂ is the 1σ error of ln L̂).

# %%
field = stars.simulate_field(N_STARS, seed=7)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.hist(np.log10(field["luminosity"].value), bins=40, histtype="step", color="k")
ax.set(xlabel=r"$\log_{10}(\hat L / L_\odot)$", ylabel="stars", title=f"{N_STARS} mock main-sequence stars")
save_figure(fig, "luminosity_function")

# %% [markdown]
# ## 3. σ from the luminosities
#
# `infer_stefan_boltzmann` builds the hierarchical model and samples it with
# emcee. With luminosities only, each star's integral over (M, Z) is done by
# exact quadrature on a fixed grid (`stars.LuminosityGridModel`): the network
# runs once, on the grid, and never during the MCMC, and the log-posterior has
# no Monte Carlo noise. Here the metallicity distribution is taken as known
# (spectroscopic surveys measure it) and σ and the IMF slope are free.
#
# The exact ZAMS model in the same role gives the reference: the ablation the
# issue asks for. The two posteriors should agree within their width.

# %%
options = {"free": ["sigma", "imf_slope"], "n_steps": N_STEPS, "progress": False}
learned = stars.infer_stefan_boltzmann(field, stellar_map, **options)
print(learned.summary())
exact = stars.infer_stefan_boltzmann(field, stars.exact_stellar_delta_map(), **options)
learned_draws = describe("learned map", learned)
exact_draws = describe("exact ZAMS model", exact)
shift = (np.median(learned_draws) - np.median(exact_draws)) / exact_draws.std()
print(f"learned − exact median: {shift:+.2f} posterior standard deviations")
save_figure(learned.corner(truths={"sigma": SIGMA_SB, "imf_slope": 2.35}), "corner_learned_map")

# %% [markdown]
# ## 4. Trusting a network too much
#
# Now a network trained on only 300 stars: its radii and temperatures are off
# by a few per cent, and L ∝ R²T⁴ turns that into ~10 % in luminosity — more
# than the σ posterior of a large field is wide. Used as if it were exact it
# gives a confident, wrong σ. A deep ensemble of five such networks does not
# know the right map either, but the five disagree, and their disagreement is
# an honest measure of the map's error: pooling the five posteriors with
# equal weights (`map_uncertainty="pool"`, the default for an ensemble)
# widens σ's posterior to cover it.
#
# (`map_uncertainty="mixture"` would instead weigh each member by how well it
# fits the whole catalogue. With thousands of stars that picks one member
# outright, and the best-fitting map is not the right one.)

# %%
poor = stars.train_stellar_map(n_train=300, hidden=(32, 32), ensemble=5, epochs=150, progress=False, seed=1)
print(f"poor maps: median |ΔT/T| {stars.stellar_map_errors(poor).meta['summary']['teff']['median']:.2%}")
single = poor.members[0]
single.stellar_map_domain = poor.stellar_map_domain
one = stars.infer_stefan_boltzmann(field, single, **options)
pooled = stars.infer_stefan_boltzmann(field, poor, **options)
mixture = stars.infer_stefan_boltzmann(field, poor, map_uncertainty="mixture", **options)
curves = {"exact model": exact_draws, "one poor network": describe("one poor network, trusted", one),
          "5 poor networks, pooled": describe("5 poor networks, pooled", pooled),
          "5 poor networks, mixture": describe("5 poor networks, evidence mixture", mixture)}
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for (label, draws), colour in zip(curves.items(), ["k", "C3", "C0", "C2"]):
    ax.hist(draws / 1e-8, bins=60, density=True, histtype="step", lw=1.5, color=colour, label=label)
ax.axvline(SIGMA_SB / 1e-8, color="0.5", ls="--", label="CODATA σ")
ax.set(xlabel=r"$\sigma$ [$10^{-8}$ W m$^{-2}$ K$^{-4}$]", ylabel="posterior density")
ax.legend(fontsize=8)
save_figure(fig, "sigma_network_uncertainty")

# %% [markdown]
# ## 5. Metallicity free as well
#
# A star's ZAMS luminosity also depends on its metallicity: metal-poor stars
# of a given mass are hotter and brighter. With the mean and width of [Fe/H]
# free, σ trades off against the mean metallicity, and its posterior widens.
# (The chain mixes more slowly, so it runs longer.)

# %%
four = stars.infer_stefan_boltzmann(field, stellar_map, n_steps=2 * N_STEPS if FAST else 5000, progress=False)
describe("σ, IMF slope, [Fe/H] mean and width", four)
print(four.summary())
save_figure(four.corner(truths={"sigma": SIGMA_SB, "imf_slope": 2.35, "feh_mean": -0.2, "feh_width": 0.2}),
            "corner_four_parameters")

# %% [markdown]
# ## 6. Your own catalogue
#
# `read_stellar_catalog` reads ECSV, FITS or CSV, renames your columns,
# converts units (solLum, W or erg/s for luminosities) and refuses missing
# columns, missing units, non-positive luminosities and NaN rows (which it
# drops only when asked, saying how many). Here the mock field goes through a
# file, as a survey catalogue would.
#
# No real stellar catalogue ships with astrobayes (the project's data folder
# has none for stars), so σ is inferred from mock data only. On real stars the
# model would be biased by what it leaves out: evolved stars (subgiants and
# giants sit above the ZAMS, so they would pull σ up), unresolved binaries
# (up to twice the luminosity), stars outside 0.5–20 M_sun or [Fe/H] −1…+0.15,
# and distance errors correlated across a cluster.

# %%
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "field.ecsv"
    stars.write_stellar_catalog(field[["star_id", "luminosity", "luminosity_err"]], path)
    catalog = stars.read_stellar_catalog(path)
print(catalog[:3])
again = stars.infer_stefan_boltzmann(catalog, stellar_map, **options)
assert np.allclose(again.sigma, learned.sigma)  # the same data, the same seed: the same chain
print("read back from ECSV: the same posterior")
