# %% [markdown]
# # A learned map inside a hierarchical model
#
# A network trained to imitate an expensive model (stellar evolution, a
# Boltzmann code, an image renderer) gives a *point* prediction y = f(x). We
# do not pretend that it is a probability distribution. Instead it enters a
# Bayesian hierarchical model as a Dirac delta, δ_D(y − f(x)), and every
# uncertainty stays in the parts of the model that are honest distributions:
# the population of objects and the measurement errors.
#
# This tutorial:
#
# 1. trains a network on a galaxy mass–size relation (our "expensive model");
# 2. simulates a catalogue of 200 galaxies with noisy masses and sizes;
# 3. infers the population (mean and spread of log stellar mass) and a
#    global size offset with `HierarchicalModel`, marginalising the 200
#    true masses by importance sampling — emcee sees only 3 parameters, and
#    the network is never run during the MCMC;
# 4. checks the marginal mode against the joint mode (every true mass
#    sampled explicitly) on a handful of galaxies.
#
# Run it with `python tutorials/02_delta_maps_in_hierarchical_models.py`.
# Figures go to `ASTROBAYES_TUTORIAL_OUTPUT` (default `tutorial-output/`);
# `ASTROBAYES_FAST=1` makes everything smaller for the test suite.

# %%
import os
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import torch
from astropy.table import QTable
from torch.distributions import Normal

from astrobayes import Regressor
from astrobayes.inference import DeltaMap, HierarchicalModel, JointPrior, Uniform

FAST = os.environ.get("ASTROBAYES_FAST", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("ASTROBAYES_TUTORIAL_OUTPUT", "tutorial-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
N_STEPS = 150 if FAST else 5000
ADAPT_STEPS = 100 if FAST else 300  # sample()'s pilot chain (300: its default)


def save_figure(fig, name):
    """Save a figure of this tutorial and say where it went."""
    path = OUTPUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


# %% [markdown]
# ## 1. The "expensive" model and its network
#
# Late-type galaxies follow a curved mass–size relation. We use the broken
# power law of Shen et al. (2003, MNRAS 343, 978, their eq. 18),
# R = γ M^α (1 + M/M₀)^(β−α), with α = 0.14, β = 0.39, γ = 0.1 kpc and
# M₀ = 3.98 × 10¹⁰ M_sun: shallow at low mass, steeper above M₀. Pretend that
# it is costly to evaluate and train a small network on it over the range
# where we will use it, 10⁸·⁵–10¹¹·⁵ M_sun (a little beyond, because a network
# is least accurate at the edge of its training data).

# %%
LOG_MASS_RANGE = (8.5, 11.5)


def log_size(log_mass):
    """log₁₀(R_e / kpc) of the broken power law above."""
    mass = 10.0**log_mass
    return np.log10(0.1 * mass**0.14 * (1 + mass / 3.98e10) ** (0.39 - 0.14))


rng = np.random.default_rng(42)
train_mass = rng.uniform(LOG_MASS_RANGE[0] - 0.3, LOG_MASS_RANGE[1] + 0.3, size=(4000, 1))
network = Regressor(hidden=(64, 64), activation="tanh")
network.fit(train_mass, log_size(train_mass), epochs=40 if FAST else 400, learning_rate=3e-3,
            validation_fraction=0.0, seed=0, progress=None)

grid = np.linspace(*LOG_MASS_RANGE, 500)[:, None]
error = network.predict(grid).mean[:, 0] - log_size(grid)[:, 0]
print(f"network error over the range: max |Δ log R| = {np.abs(error).max():.4f} dex")
fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6, 5), height_ratios=(2, 1))
top.plot(grid, log_size(grid), "k-", label="Shen et al. (2003) form")
top.plot(grid, network.predict(grid).mean, "C1--", label="network")
top.set_ylabel("log R_e [kpc]")
top.legend()
bottom.plot(grid, error, "C1-")
bottom.set_xlabel("log M* [M_sun]")
bottom.set_ylabel("network − model [dex]")
save_figure(fig, "02_network_vs_model")

# %% [markdown]
# ## 2. A catalogue to analyse
#
# 200 galaxies with log M* ~ N(μ, w²), μ = 10.2, w = 0.4. Their sizes follow
# the relation shifted by a global offset a = 0.08 dex (say, a calibration
# difference between two surveys). We observe log M* to 0.15 dex and
# log R_e to 0.05 dex. The catalogue is an astropy table with units.

# %%
TRUTH = {"mu": 10.2, "width": 0.4, "offset": 0.08}
n_galaxies = 200
true_mass = rng.normal(TRUTH["mu"], TRUTH["width"], n_galaxies)
catalog = QTable({
    "log_mass": (true_mass + 0.15 * rng.normal(size=n_galaxies)) * u.dex(u.Msun),
    "log_mass_err": np.full(n_galaxies, 0.15) * u.dex,
    "log_size": (log_size(true_mass) + TRUTH["offset"] + 0.05 * rng.normal(size=n_galaxies)) * u.dex(u.kpc),
    "log_size_err": np.full(n_galaxies, 0.05) * u.dex,
})
print(catalog[:3])

# %% [markdown]
# ## 3. The hierarchical model
#
# * hyperparameters α = (μ, w, a) with flat priors;
# * one latent per galaxy, its true log mass z, with population N(μ, w²)
#   truncated to the network's range (the model must be normalised where
#   the latents live; `importance_diagnostics` reports the population mass
#   that the proposal covers, and the sampler warns when some is lost);
# * the delta map z → log R_e, the network;
# * the measurement: Gaussian errors on both observed columns.
#
# The functions receive dicts of tensors that broadcast against each other,
# so ordinary elementwise code works for any number of walkers, galaxies and
# importance draws. The proposal over z is the network's trusted range.

# %%
size_map = DeltaMap(network, inputs=["z"], outputs=["log_size_model"])


def population(latents, hyper):
    # normalised on the map's range: mass of p(z | α) outside it would otherwise be silently lost
    gaussian = Normal(hyper["mu"], hyper["width"])
    inside = gaussian.cdf(torch.tensor(LOG_MASS_RANGE[1])) - gaussian.cdf(torch.tensor(LOG_MASS_RANGE[0]))
    return gaussian.log_prob(latents["z"]) - torch.log(inside)


def measurement(data, predicted, hyper):
    mass_term = Normal(predicted["z"], data["log_mass_err"]).log_prob(data["log_mass"])
    size_term = Normal(predicted["log_size_model"] + hyper["offset"], data["log_size_err"]).log_prob(data["log_size"])
    return mass_term + size_term


hyperprior = JointPrior([Uniform(9.0, 11.0, name="mu", unit=u.dex(u.Msun)),
                         Uniform(0.05, 1.0, name="width", unit=u.dex),
                         Uniform(-0.5, 0.5, name="offset", unit=u.dex)])
model = HierarchicalModel(hyperprior, population, measurement, catalog,
                          proposal=JointPrior([Uniform(*LOG_MASS_RANGE, name="z")]), delta_maps=size_map,
                          n_draws=64 if FAST else 256)
print(model)

# %% [markdown]
# Before sampling, look at the importance sampling at the true
# hyperparameters: how many effective draws each galaxy gets, and whether the
# proposal covers the population. `sample()` first runs a short pilot chain
# and refits each galaxy's proposal to its draws; after that the draws are
# fixed and emcee never calls the network. After the run it checks the
# importance sampling again at the posterior median, including how much its
# Monte Carlo noise could move the posterior (`result.meta`).

# %%
diagnostics = model.importance_diagnostics([TRUTH["mu"], TRUTH["width"], TRUTH["offset"]])
print(f"effective draws per galaxy: min {diagnostics['ess'].min():.0f}, median {np.median(diagnostics['ess']):.0f}"
      f" of {model.n_draws}; population inside the proposal: {diagnostics['population_mass'][0]:.3f}")
calls_before = size_map.n_calls
result = model.sample(n_steps=N_STEPS, adapt_steps=ADAPT_STEPS, seed=1)
evaluations = result.meta["n_steps"] * result.meta["n_walkers"]
print(f"network calls inside model.sample(): {size_map.n_calls - calls_before} (the two refits of the proposals "
      f"after the short pilot chain) for {evaluations} walker log-probabilities; it had run {calls_before} times "
      f"before, on {size_map.n_rows} masses in all")
print(f"acceptance {result.mean_acceptance:.2f}, τ = {np.round(result.autocorr_time, 1)} steps")
print({key: round(result.meta[key], 3) for key in ("min_ess", "log_likelihood_noise")})
print(result.summary())
save_figure(result.corner(truths=[TRUTH["mu"], TRUTH["width"], TRUTH["offset"]]), "02_population_corner")

# %% [markdown]
# ## 4. Marginal versus joint, on five galaxies
#
# With only a handful of objects we can also let emcee sample every true mass
# explicitly (`mode="joint"`). Both modes target the same posterior, so their
# hyperparameter posteriors must agree up to Monte Carlo error.

# %%
few = HierarchicalModel(hyperprior, population, measurement, catalog[:5],
                        proposal=JointPrior([Uniform(*LOG_MASS_RANGE, name="z")]), delta_maps=size_map)
marginal = few.sample("marginal", n_steps=N_STEPS, adapt_steps=ADAPT_STEPS, seed=2)
joint = few.sample("joint", n_steps=2 * N_STEPS, seed=3)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
for index, axis in enumerate(axes):
    low, high = hyperprior.low[index], hyperprior.high[index]
    bins = np.linspace(low, high, 40)
    axis.hist(marginal.samples[:, index], bins=bins, density=True, histtype="step", lw=2, label="marginal")
    axis.hist(joint.samples[:, index], bins=bins, density=True, histtype="step", lw=2, ls="--", label="joint")
    axis.set_xlabel(hyperprior.labels()[index])
axes[0].legend()
save_figure(fig, "02_marginal_vs_joint")
for name in hyperprior.names:
    print(f"{name:7s} marginal {np.median(marginal[name].value):+.3f}   joint {np.median(joint[name].value):+.3f}")
