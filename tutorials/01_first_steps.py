# %% [markdown]
# # From a simulation to a calibrated neural posterior
#
# This tutorial walks through the core loop of astrobayes on a problem small
# enough to run on a laptop in a minute or two:
#
# 1. simulate parameters θ and data x from a model we control;
# 2. see why a network trained with the mean squared error is *not* a posterior;
# 3. learn the full posterior p(θ | x) with a mixture density network (MDN);
# 4. check that its credible intervals have the coverage they claim;
# 5. train a classifier, calibrate it with temperature scaling and draw its
#    reliability diagram;
# 6. save the model and load it back safely (safetensors + JSON, no pickle).
#
# Run it with `python tutorials/01_first_steps.py`. Every step saves a figure
# into the folder named by the environment variable `ASTROBAYES_TUTORIAL_OUTPUT`
# (default `tutorial-output/`). `ASTROBAYES_FAST=1` shrinks the simulations
# and the training so the test suite can run the whole tutorial quickly; the
# numbers are then noisier, but the lessons hold.

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import astrobayes
from astrobayes.estimators.classifier import Classifier
from astrobayes.estimators.mdn import MixtureDensityNetwork
from astrobayes.estimators.metrics import expected_calibration_error, plot_reliability
from astrobayes.estimators.regression import Regressor

FAST = os.environ.get("ASTROBAYES_FAST", "0") not in ("", "0")
OUTPUT = Path(os.environ.get("ASTROBAYES_TUTORIAL_OUTPUT", "tutorial-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
N_SIMULATIONS = 4000 if FAST else 30000
TRAINING = {"epochs": 40 if FAST else 300, "seed": 1, "progress": None}


def save_figure(fig, name):
    """Save a figure of this tutorial and say where it went."""
    path = OUTPUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")


# %% [markdown]
# ## 1. A simulator with a degeneracy
#
# Our toy galaxy has one parameter, its redshift z, drawn from a flat prior
# on [0, 2]. We observe two numbers:
#
# * a **colour** that rises and falls with redshift, as a colour does when the
#   4000 Å break moves through a pair of filters — so most colours are
#   produced by *two* redshifts;
# * a **magnitude** that grows slowly with redshift and is very noisy, so it
#   only gently prefers one of the two solutions.
#
# Because we wrote the simulator, we also know the exact posterior p(z | x)
# (prior × likelihood on a fine grid): a reference to judge the networks by.

# %%
COLOUR_NOISE, MAGNITUDE_NOISE = 0.05, 0.8


def colour_of(z):
    return 0.4 + 1.2 * np.exp(-(((z - 0.9) / 0.35) ** 2))


def magnitude_of(z):
    return 21.0 + 2.0 * z


def simulate(n, rng):
    """Redshifts from the prior and their noisy (colour, magnitude)."""
    z = rng.uniform(0.0, 2.0, n)
    x = np.stack([colour_of(z) + COLOUR_NOISE * rng.normal(size=n),
                  magnitude_of(z) + MAGNITUDE_NOISE * rng.normal(size=n)], axis=1)
    return z[:, None], x


Z_GRID = np.linspace(0.0, 2.0, 801)


def exact_posterior(x_row):
    """p(z | x) on Z_GRID: flat prior times the Gaussian likelihood of both observables."""
    log_like = (-0.5 * ((x_row[0] - colour_of(Z_GRID)) / COLOUR_NOISE) ** 2
                - 0.5 * ((x_row[1] - magnitude_of(Z_GRID)) / MAGNITUDE_NOISE) ** 2)
    density = np.exp(log_like - log_like.max())
    return density / (density.sum() * (Z_GRID[1] - Z_GRID[0]))  # normalised on the uniform grid


rng = np.random.default_rng(2024)
z_train, x_train = simulate(N_SIMULATIONS, rng)
z_test, x_test = simulate(2000, rng)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].scatter(z_train[:3000, 0], x_train[:3000, 0], s=2, alpha=0.3)
axes[0].set(xlabel="redshift z", ylabel="colour", title="most colours come from two redshifts")
axes[1].scatter(z_train[:3000, 0], x_train[:3000, 1], s=2, alpha=0.3, color="C1")
axes[1].set(xlabel="redshift z", ylabel="magnitude", title="the magnitude barely helps")
save_figure(fig, "01_simulations")

# %% [markdown]
# ## 2. A network trained with the mean squared error predicts the mean
#
# Training a network is maximum likelihood. Minimising the mean squared error
# is maximising a Gaussian likelihood of fixed width, so the network
# converges to the posterior **mean** E[z | x]. When the posterior has two
# peaks, the mean lies between them — at a redshift the data actually rule
# out. (`Regressor` also reports one residual width for all objects, so its
# "uncertainty" cannot tell an easy object from a degenerate one.)

# %%
regressor = Regressor(hidden=(64, 64))
regressor.fit(x_train, z_train, **TRAINING)
mean_z, width_z = regressor.predict(x_test)

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(z_test[:, 0], mean_z[:, 0], s=3, alpha=0.4)
ax.plot([0, 2], [0, 2], "k:")
ax.set(xlabel="true redshift", ylabel="MSE-network prediction", title="predictions pile up between the branches")
save_figure(fig, "02_mse_predictions")
print(f"MSE network: one residual width for every object, {width_z[0, 0]:.3f}")

# %% [markdown]
# ## 3. Learning the whole posterior with a mixture density network
#
# An MDN outputs the weights, means and widths of a Gaussian mixture for
# each x and is trained by maximising log q(z | x) over the simulations.
# Let us compare its posterior with the exact one for three held-out
# galaxies, and mark the MSE network's prediction.

# %%
mdn = MixtureDensityNetwork(n_components=4, hidden=(64, 64))
mdn.fit(x_train, z_train, **TRAINING)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
for ax, index in zip(axes, (0, 1, 2)):
    x_row = x_test[index]
    ax.fill_between(Z_GRID, exact_posterior(x_row), color="0.85", label="exact posterior")
    ax.plot(Z_GRID, np.exp(mdn.log_prob(Z_GRID[:, None], x_row[None, :])), "C2", label="MDN")
    ax.axvline(mean_z[index, 0], color="C3", ls="--", label="MSE network")
    ax.axvline(z_test[index, 0], color="k", label="true z")
    ax.set(xlabel="redshift z", yticks=[], title=f"colour {x_row[0]:.2f}, magnitude {x_row[1]:.1f}")
axes[0].legend(frameon=False, fontsize=8)
save_figure(fig, "03_posteriors")

# The mean log-likelihood of held-out truths compares density estimators
# on the same footing (higher is better); its standard error is std/sqrt(n).
for name, model in (("MSE network", regressor), ("MDN", mdn)):
    log_q = model.log_prob(z_test, x_test)
    print(f"{name:12s} held-out mean log q(z|x) = {log_q.mean():.3f} ± {log_q.std() / np.sqrt(len(log_q)):.3f} nats")

# %% [markdown]
# ## 4. Is the posterior calibrated?
#
# A posterior can look right and still be over- or under-confident. Over
# many held-out simulations, the true z should fall inside the central 70 %
# credible interval 70 % of the time, inside the 90 % interval 90 % of the
# time, and so on. Equivalently, the probability integral transform
# PIT = Q(z_true | x) — the posterior mass below the truth — should be
# uniform. We estimate both from 500 posterior draws per galaxy.

# %%
levels = np.linspace(0.0, 1.0, 21)


def coverage_curve(model):
    draws = model.sample(500, x_test, seed=3)[:, :, 0]
    pit = (draws < z_test).mean(axis=1)
    return pit, np.array([(np.abs(pit - 0.5) <= level / 2).mean() for level in levels])


fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
axes[0].plot(levels, levels, "k:", label="ideal")
for name, model, colour in (("MSE network", regressor, "C3"), ("MDN", mdn, "C2")):
    pit, covered = coverage_curve(model)
    axes[0].plot(levels, covered, color=colour, label=name)
    axes[1].hist(pit, bins=20, range=(0, 1), density=True, histtype="step", color=colour, label=name)
    print(f"{name:12s} fraction of truths inside the 70% interval: {covered[np.isclose(levels, 0.7)][0]:.3f}, "
          f"inside the 90% interval: {covered[np.isclose(levels, 0.9)][0]:.3f}")
axes[0].set(xlabel="nominal credibility", ylabel="fraction of truths inside", title="coverage")
axes[1].axhline(1, color="k", ls=":")
axes[1].set(xlabel="PIT", ylabel="density", title="PIT histogram (flat = calibrated)")
axes[0].legend(frameon=False)
save_figure(fig, "04_calibration")

# %% [markdown]
# With 2000 held-out galaxies, the binomial standard error of a coverage
# near 0.9 is sqrt(0.9 × 0.1 / 2000) ≈ 0.007, so departures of a few
# hundredths from the diagonal are real. The MSE network's single Gaussian
# can have roughly the right *overall* coverage while its PIT histogram is
# far from flat: it is too wide for easy galaxies and misplaced for
# degenerate ones. Coverage is necessary, not sufficient; compare the
# held-out log-likelihoods too.
#
# ## 5. A classifier, calibrated by temperature scaling
#
# Often the question is a yes/no one: *is this galaxy beyond z = 1?* A
# classifier answers with a probability. Networks trained hard on few
# examples become over-confident; temperature scaling (Guo et al. 2017)
# divides the logits by one number T fitted on held-out data, which changes
# the probabilities but never their ranking. To see it at work we train on
# only 500 simulations for 200 epochs without early stopping — a recipe for
# over-fitting — then fit T on 2000 *other* simulations, and judge both
# versions on the test set with a reliability diagram and the expected
# calibration error (ECE).

# %%
beyond_train = (z_train[:, 0] > 1.0).astype(int)
beyond_test = (z_test[:, 0] > 1.0).astype(int)
classifier = Classifier(hidden=(128, 128))
classifier.fit(x_train[:500], beyond_train[:500], epochs=200, patience=None, validation_fraction=0.0,
               seed=1, progress=None)
raw = classifier.predict_proba(x_test)  # temperature 1 until calibrated
classifier.calibrate(x_train[-2000:], beyond_train[-2000:])
calibrated = classifier.predict_proba(x_test)

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
plot_reliability(raw, beyond_test, n_bins=10, ax=axes[0])
axes[0].set_title("before calibration (T = 1)")
plot_reliability(calibrated, beyond_test, n_bins=10, ax=axes[1])
axes[1].set_title(f"after temperature scaling (T = {classifier.temperature:.2f})")
save_figure(fig, "05_reliability")
print(f"temperature T = {classifier.temperature:.3f} (T > 1 means the raw network was over-confident)")
print(f"ECE before {expected_calibration_error(raw, beyond_test, 10):.4f}, "
      f"after {expected_calibration_error(calibrated, beyond_test, 10):.4f}")

# %% [markdown]
# ## 6. Saving and loading a model safely
#
# `save(path)` writes two files: `path.safetensors` holds the weights (a
# format that cannot execute code when read, unlike a pickle or
# `torch.load`), and `path.json` holds everything else in readable form —
# the class, its configuration, the standardisation applied to x and z, the
# training history and the SHA-256 checksum of the weights.
# `astrobayes.load(path)` rebuilds the model; standardisation lives inside
# it, so it works on raw data straight away.

# %%
model_path = OUTPUT / "models" / "redshift_mdn"
mdn.save(model_path)
header = json.loads(model_path.with_suffix(".json").read_text())
print("saved:", header["class"], header["config"], "trained for", len(header["history"]["train_loss"]), "epochs")

reloaded = astrobayes.load(model_path)
same = np.array_equal(reloaded.log_prob(z_test, x_test), mdn.log_prob(z_test, x_test))
print("reloaded model gives identical log-probabilities:", same)

# A weights file that was modified after saving is refused, with a clear message.
weights = model_path.with_suffix(".safetensors")
tampered = bytearray(weights.read_bytes())
tampered[-1] ^= 0xFF
weights.write_bytes(bytes(tampered))
try:
    astrobayes.load(model_path)
except astrobayes.ModelFileError as err:
    print("refused:", err)
mdn.save(model_path)  # restore the good file

fig, ax = plt.subplots(figsize=(5, 3.5))
reloaded.history.plot(ax=ax)
ax.set_title("training history, read back from the model file")
save_figure(fig, "06_history_from_file")

# %% [markdown]
# ## Where next
#
# * `astrobayes demo` repeats steps 2–3 with a normalising flow as well and
#   writes a table of held-out scores.
# * The same `fit` / `log_prob` / `sample` / `predict` calls work for every
#   estimator: flows, ensembles, Bayesian networks, and networks with
#   embeddings for lightcurves, member catalogs and images.
