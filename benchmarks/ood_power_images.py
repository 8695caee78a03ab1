"""Out-of-distribution checks on images and maps: calibration and power of the per-object p-value, and the MMD test.

For two image-like domains, with their networks trained small but as the domain benchmarks train them:

* **galaxies** — the Sérsic structural posterior of ``benchmarks/galaxies_structure.py``
  (:func:`~astrobayes.galaxies.train_structure_posterior` on the default
  :class:`~astrobayes.galaxies.StampSimulator`: 32 × 32 stamps, Gaussian PSF of FWHM 2.5 px, noise σ = 1);
* **shear** — the amortized posteriors of :mod:`astrobayes.shear.inference` on the survey of
  ``benchmarks/shear_inference.py`` (nside 32, a 5000 deg² cap, log-normal κ, σ_e = 0.26, n_gal = 10 arcmin⁻²):
  (b) NPE on log band powers, (c) on band powers + peaks + Minkowski functionals (summary level), and
  (d) on the map through the HEALPix graph network (map level),

it prints

1. calibration: on fresh in-distribution simulations (never trained on), the fraction of objects with
   ``ood_p_value`` ≤ α for α = 0.05 and 0.01, with the binomial 3σ band α ± 3√(α(1 − α)/n), for the default
   reference (``"gaussian"``, the Mahalanobis distance, fitted by ``fit`` on the training rows and calibrated
   on its validation rows), for ``est.fit_ood(fresh, method="knn")`` and for
   ``est.fit_ood(fresh, method="gaussian")`` (both on a separate set of fresh simulations, one per object, on a
   copy of the estimator);
2. power: the fraction of shifted objects flagged at α = 0.01 and 0.05, per reference — galaxies: real Hubble
   Deep Field stamps, one real COSMOS galaxy (binned, PSF-matched and re-noised to the model's set-up; one galaxy,
   many non-independent variants), Sérsic stamps with a neighbour galaxy, stamps with extra noise; shear: maps
   whose sources have a mean redshift higher by 0.3 and 0.6, Student-t (3 d.o.f.) shape noise of the same
   variance, and iCosmo's C_ℓ from ``catalogs/shear/`` (as maps simulated from it, and as its binned
   expectation fed to the band-power posterior);
3. population test: :func:`~astrobayes.inference.diagnostics.mmd_test` on context vectors
   (``est.network.features`` of the inputs) of a fresh sample of n objects against those of held-out
   simulations: the false-positive rate at α = 0.05 over in-distribution replicates with its binomial 3σ band,
   and the power against two shifts per domain.

The p-values come from the contexts computed once per input set (``reference.p_value(contexts)``, what
``est.ood_p_value`` does); the script checks that they equal ``est.ood_p_value`` and, on the real HDF stamps,
the ``ood_p_value`` column of :meth:`StructurePosterior.summary <astrobayes.galaxies.StructurePosterior.summary>`.

Usage::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ood_power_images.py --quick          # minutes
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ood_power_images.py \\
        --markdown benchmarks/results/ood_power_images.md                                          # ~25 min
"""
from __future__ import annotations

import argparse
import copy
import math
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ALPHAS = (0.01, 0.05)
MMD_ALPHA = 0.05
FULL = dict(galaxy_train=12000, galaxy_epochs=12, galaxy_calibration=4000, galaxy_reference=5000, galaxy_shift=1000,
            cosmos_noise=4, shear_train=6000, map_train=4000, map_epochs=10, shear_calibration=2000,
            shear_reference=2000, shear_shift=1000, icosmo_maps=500, galaxy_mmd_n=100, shear_mmd_n=25,
            mmd_reference=1000, replicates=100, permutations=200)
QUICK = dict(galaxy_train=3000, galaxy_epochs=4, galaxy_calibration=1000, galaxy_reference=1500, galaxy_shift=200,
             cosmos_noise=1, shear_train=1500, map_train=1500, map_epochs=3, shear_calibration=500,
             shear_reference=500, shear_shift=200, icosmo_maps=100, galaxy_mmd_n=50, shear_mmd_n=20,
             mmd_reference=400, replicates=20, permutations=100)
METHODS = ("gaussian (default, fitted by fit)", "knn (fresh sims)", "gaussian (fresh sims)")


def _band(n: int, p: float) -> tuple[float, float]:
    half = 3 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def _contexts(est, x) -> torch.Tensor:
    """The context vectors network.features(x) (what est.ood_p_value scores), one pass."""
    return est._batched(est.network.features, est._check_x(x))


class References:
    """The default reference of a trained estimator and two refitted on fresh in-distribution inputs."""

    def __init__(self, est, fresh, seed: int):
        self.est = est
        copied = copy.deepcopy(est)
        self.refs = {METHODS[0]: est.ood}
        self.refs[METHODS[1]] = copied.fit_ood(fresh, method="knn", seed=seed)
        self.refs[METHODS[2]] = copied.fit_ood(fresh, method="gaussian", seed=seed)

    def p_values(self, x) -> dict[str, np.ndarray]:
        contexts = _contexts(self.est, x)
        return {name: ref.p_value(contexts) for name, ref in self.refs.items()}


def _calibration(say, p: dict[str, np.ndarray]) -> None:
    say("| reference | n | α | fraction p ≤ α | 3σ band | inside |")
    say("|---|---:|---:|---:|---|---|")
    for name, values in p.items():
        n = len(values)
        for alpha in ALPHAS:
            low, high = _band(n, alpha)
            fraction = float(np.mean(values <= alpha))
            say(f"| {name} | {n} | {alpha} | {fraction:.4f} | [{low:.4f}, {high:.4f}] | "
                f"{'yes' if low <= fraction <= high else '**no**'} |")
    say()


def _power_header(say) -> None:
    say("| input | n | " + " | ".join(f"{m}: p ≤ {a}" for m in METHODS for a in ALPHAS) + " |")
    say("|---|---:|" + "---:|" * (len(METHODS) * len(ALPHAS)))


def _power_row(say, label: str, p: dict[str, np.ndarray]) -> None:
    n = len(next(iter(p.values())))
    cells = [f"{np.mean(p[m] <= a):.3f}" for m in METHODS for a in ALPHAS]
    say(f"| {label} | {n} | " + " | ".join(cells) + " |")


def _mmd_rows(say, label: str, samples: list[np.ndarray], reference: np.ndarray, permutations: int,
              null: bool) -> None:
    from astrobayes.inference.diagnostics import mmd_test

    p = np.array([mmd_test(s, reference, n_permutations=permutations, seed=r).p_value for r, s in enumerate(samples)])
    fraction = float(np.mean(p <= MMD_ALPHA))
    low, high = _band(len(samples), MMD_ALPHA)
    band = f"[{low:.3f}, {high:.3f}] {'inside' if low <= fraction <= high else '**outside**'}" if null else "–"
    say(f"| {label} | {len(samples)} | {len(samples[0])} | {len(reference)} | {permutations} | {fraction:.3f} | "
        f"{band} | {np.median(p):.3f} |")


def _mmd_header(say) -> None:
    say(f"| sample | replicates | n per replicate | reference rows | permutations | fraction p ≤ {MMD_ALPHA} "
        "| 3σ band of the false-positive rate | median p |")
    say("|---|---:|---:|---:|---:|---:|---|---:|")


def _chunks(array, n: int, replicates: int) -> list:
    return [array[r * n:(r + 1) * n] for r in range(replicates)]


# ------------------------------------------------------------------------------------------- galaxies
def galaxies(say, s: dict) -> None:
    from astropy.stats import mad_std
    from scipy.ndimage import gaussian_filter

    from astrobayes import galaxies as gal

    simulator = gal.StampSimulator()
    prior = simulator.prior
    say(f"## Galaxies: {simulator}\n")
    start = time.perf_counter()
    posterior = gal.train_structure_posterior(simulator, s["galaxy_train"], seed=0, epochs=s["galaxy_epochs"],
                                              progress=False)
    est = posterior.posterior.estimator
    history = est.history
    say(f"NPE (CNN embedding → 5-layer spline flow, the defaults) trained on {s['galaxy_train']} simulations, "
        f"{len(history.train_loss)} epochs, best validation loss {history.best_val_loss:.3f}, "
        f"{time.perf_counter() - start:.0f} s; default reference: {est.ood!r}\n")

    def noisy(noiseless, sigma, seed):
        return noiseless + sigma * np.random.default_rng(seed).standard_normal(noiseless.shape)

    start = time.perf_counter()
    fresh = posterior.features(gal.simulate_stamps(s["galaxy_reference"], simulator, seed=4048)[0].data)
    refs = References(est, fresh, seed=1)
    held_out = posterior.features(gal.simulate_stamps(s["galaxy_calibration"], simulator, seed=2024)[0].data)
    contexts_held_out = _contexts(est, held_out)
    p_held = {name: ref.p_value(contexts_held_out) for name, ref in refs.refs.items()}
    check = np.asarray(est.ood_p_value(held_out[:64]))
    assert np.allclose(check, p_held[METHODS[0]][:64]), "p-values differ from est.ood_p_value"
    say(f"### 1. Calibration on {len(held_out)} fresh simulated stamps (knn / gaussian refitted on "
        f"{len(fresh)} other fresh stamps: {refs.refs[METHODS[1]]!r})\n")
    _calibration(say, p_held)

    # 2. power ---------------------------------------------------------------------------------
    say("### 2. Power: fraction flagged\n")
    _power_header(say)
    _power_row(say, "fresh simulated stamps (in distribution)", p_held)
    hdf = gal.hubble_deep_field(32)
    rms = float(hdf.meta.meta["rms"])
    hdf_scaled = gal.Stamps(hdf.data / rms, noise=hdf.noise / rms, meta=hdf.meta)
    p_hdf = refs.p_values(posterior.features(hdf_scaled))
    _power_row(say, f"real Hubble Deep Field stamps (32 px, ÷ sky rms {rms:.2f})", p_hdf)
    hdf_flux = np.log10(np.clip(hdf_scaled.data.sum(axis=(1, 2)), 1e-3, None))
    low_flux, high_flux = float(prior.low[0]), float(prior.high[0])
    inside = (hdf_flux >= low_flux) & (hdf_flux <= high_flux)
    _power_row(say, f"… those with log₁₀(sum / rms) inside the prior's {low_flux:g}–{high_flux:g}",
               {m: v[inside] for m, v in p_hdf.items()})
    # the domain function on a few of them (its rejection sampling is slow where the flow's mass leaves the prior)
    summary_start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        every = np.arange(0, len(hdf_scaled), len(hdf_scaled) // 20)[:20]  # brightest first: every 20th
        table = posterior.summary(hdf_scaled[every], n_samples=20, seed=0)
    summary_seconds = time.perf_counter() - summary_start
    assert np.allclose(np.asarray(table["ood_p_value"]), p_hdf[METHODS[0]][every]), "summary's ood_p_value differs"

    # the one real COSMOS galaxy, binned by b, matched to the model's PSF, scaled to log10 F = 3 and re-noised to σ = 1
    big, _ = gal.cosmos_galaxy()
    image, variants = big.data[0], []
    psf_fwhm_native = 0.1 / 0.03  # ACS F814W PSF ≈ 0.1 arcsec FWHM, in 0.03 arcsec pixels
    rng = np.random.default_rng(99)
    for b in (6, 8, 10, 12):
        m = image.shape[0] // b
        binned = image[:m * b, :m * b].reshape(m, b, m, b).sum(axis=(1, 3))
        extra = math.sqrt(max(simulator_fwhm(simulator) ** 2 - (psf_fwhm_native / b) ** 2, 0.0)) / 2.3548
        smooth = gaussian_filter(binned, extra)
        centre = np.array(np.unravel_index(np.argmax(gaussian_filter(binned, 2)), binned.shape))
        cut = smooth[centre[0] - 16:centre[0] + 16, centre[1] - 16:centre[1] + 16]
        edge = np.ones(smooth.shape, bool)
        edge[4:-4, 4:-4] = False
        scale = 1000.0 / cut.sum()
        own = mad_std(smooth[edge]) * scale
        for k in range(8):
            oriented = np.rot90(cut if k < 4 else cut.T, k % 4) * scale
            for _ in range(s["cosmos_noise"]):
                variants.append(oriented + math.sqrt(max(1 - own ** 2, 0.0)) * rng.standard_normal(cut.shape))
    p_cosmos = refs.p_values(posterior.features(np.array(variants)))
    _power_row(say, "one real COSMOS galaxy: binned 6/8/10/12×, PSF-matched, log₁₀ F = 3, 8 orientations", p_cosmos)

    theta = prior.sample(s["galaxy_shift"], seed=301).numpy()
    base = simulator.noiseless(theta)
    for separation in (4.0, 8.0, 12.0):
        for ratio in (0.25, 1.0):
            p_nb = refs.p_values(posterior.features(noisy(base + neighbours(simulator, theta, separation, ratio, 302),
                                                          1.0, 303)))
            _power_row(say, f"Sérsic + neighbour at {separation:g} px, flux ratio {ratio:g}", p_nb)
    for factor in (1.2, 1.5, 2.0):
        _power_row(say, f"Sérsic, noise σ × {factor:g}", refs.p_values(posterior.features(noisy(base, factor, 304))))
    say(f"\nHDF stamps: log₁₀(sum / rms) 5/50/95th percentiles {np.percentile(hdf_flux, [5, 50, 95]).round(2)} "
        f"(the prior's log₁₀ F: 2–3.5). StructurePosterior.summary(every 20th HDF stamp, n_samples=20): "
        f"ood_flagged = {table.meta['ood_flagged']} of {len(table)}, its ood_p_value equal to the default "
        f"reference's, {summary_seconds:.0f} s, warnings: "
        + "; ".join(sorted({str(w.message)[:120] + '…' for w in caught})) + ". "
        f"COSMOS: {len(variants)} stamps of one galaxy (r½ ≈ 3–6 binned px), not independent.\n")

    # 3. MMD -----------------------------------------------------------------------------------
    n, replicates, permutations = s["galaxy_mmd_n"], s["replicates"], s["permutations"]
    reference = contexts_held_out[:s["mmd_reference"]].numpy()
    say(f"### 3. Population test (mmd_test on context vectors; reference: {len(reference)} held-out simulated stamps)\n")
    _mmd_header(say)
    null = posterior.features(gal.simulate_stamps(n * replicates, simulator, seed=5000)[0].data)
    _mmd_rows(say, "fresh simulated stamps (false-positive rate)", _chunks(_contexts(est, null).numpy(), n, replicates),
              reference, permutations, null=True)
    theta = prior.sample(n * replicates, seed=5001).numpy()
    base = simulator.noiseless(theta)
    shifts = {"Sérsic, noise σ × 1.2": noisy(base, 1.2, 5002),
              "Sérsic + neighbour at 12 px, flux ratio 0.25": noisy(base + neighbours(simulator, theta, 12.0, 0.25, 5003),
                                                                    1.0, 5004)}
    for label, images in shifts.items():
        _mmd_rows(say, label, _chunks(_contexts(est, posterior.features(images)).numpy(), n, replicates), reference,
                  permutations, null=False)
    hdf_contexts = _contexts(est, posterior.features(hdf_scaled)).numpy()
    draws = [hdf_contexts[np.random.default_rng(6000 + r).choice(len(hdf_contexts), n, replace=False)]
             for r in range(replicates)]
    _mmd_rows(say, f"real HDF stamps (n drawn from {len(hdf_contexts)} without replacement; replicates overlap)",
              draws, reference, permutations, null=False)
    say(f"\n{time.perf_counter() - start:.0f} s for the galaxy checks after training\n")


def simulator_fwhm(simulator) -> float:
    """FWHM [px] of the simulator's PSF, from its second moment (a Gaussian's exactly)."""
    psf = simulator.psf / simulator.psf.sum()
    rows, cols = np.indices(psf.shape)
    cy, cx = (psf * rows).sum(), (psf * cols).sum()
    variance = 0.5 * (psf * ((rows - cy) ** 2 + (cols - cx) ** 2)).sum()
    return 2.3548 * math.sqrt(variance)


def neighbours(simulator, theta, separation: float, ratio: float, seed: int) -> np.ndarray:
    """Noiseless neighbour galaxies: a prior draw at ``separation`` px from each primary, ``ratio`` × its flux."""
    other = simulator.prior.sample(len(theta), seed=seed).numpy()
    angle = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(theta))
    other[:, 0] = theta[:, 0] + math.log10(ratio)
    other[:, 5] = theta[:, 5] + separation * np.cos(angle)
    other[:, 6] = theta[:, 6] + separation * np.sin(angle)
    return simulator.noiseless(other)


# ------------------------------------------------------------------------------------------- shear
def shear(say, s: dict) -> None:
    import astropy.units as u
    from scipy.special import gamma

    from astrobayes.shear.cosmology import ICOSMO_REFERENCE
    from astrobayes.shear.inference import ShearSurvey, shear_prior, train_shear_posterior

    area = 5000.0 * u.deg ** 2
    survey = ShearSurvey(32, area=area)
    clean = ShearSurvey(32, area=area, sigma_e=0.0)
    prior = shear_prior()
    sigma = survey.simulator.noise_sigma
    observed = survey.mask
    # Smail n(z) ∝ z² exp[−(z/z₀)^1.5], z₀ = z_median / 1.412: mean = z₀ Γ(8/3) / Γ(2)
    mean_per_median = gamma(8 / 3) / 1.412
    say(f"## Shear: {survey}; Smail n(z) with median 1.0 (mean {mean_per_median:.4f})\n")

    def inputs(maps):
        """Log band powers, band powers + peaks + Minkowski, and NEST maps / σ: the three posteriors' inputs."""
        band = np.log(survey.band_powers(maps))
        summaries = survey.summaries(maps)
        return {"(b)": band, "(c)": np.c_[band, summaries[:, band.shape[1]:]],
                "(d)": (survey.nest_maps(maps) / sigma).astype(np.float32)}

    def t_noise(theta, seed, nu=None):
        """Noise-free maps plus shape noise of variance σ²: Gaussian (nu None) or Student-t with nu d.o.f."""
        maps = clean.maps(theta, seed=seed)
        rng = np.random.default_rng(seed + 1)
        noise = rng.standard_normal(maps.shape) if nu is None else rng.standard_t(nu, maps.shape) / math.sqrt(
            nu / (nu - 2))
        return maps + sigma * noise * observed

    def z_shift(delta):
        return ShearSurvey(32, area=area, z_median=1.0 + delta / mean_per_median)

    start = time.perf_counter()
    theta = prior.sample(s["shear_train"], seed=10).numpy()
    train = inputs(survey.maps(theta, seed=11))
    say(f"{s['shear_train']} training maps simulated and summarised in {time.perf_counter() - start:.0f} s\n")
    posteriors = {}
    for key, label in (("(b)", "NPE on log band powers"), ("(c)", "NPE on band powers + peaks + Minkowski"),
                       ("(d)", "NPE on the map (HEALPix graph network)")):
        start = time.perf_counter()
        if key == "(d)":
            m = s["map_train"]
            posteriors[key] = train_shear_posterior(theta[:m], train[key][:m], prior, nside=32, mask=observed,
                                                    epochs=s["map_epochs"], batch_size=64)
        else:
            posteriors[key] = train_shear_posterior(theta, train[key], prior, epochs=300, batch_size=128)
        est = posteriors[key].estimator
        say(f"- {key} {label}: {len(est.history.train_loss)} epochs, {time.perf_counter() - start:.0f} s; "
            f"default reference {est.ood!r}")
    say()

    start = time.perf_counter()
    fresh = inputs(survey.maps(prior.sample(s["shear_reference"], seed=40).numpy(), seed=41))
    refs = {key: References(p.estimator, fresh[key], seed=1) for key, p in posteriors.items()}
    held = inputs(survey.maps(prior.sample(s["shear_calibration"], seed=20).numpy(), seed=21))
    for key, p in posteriors.items():
        check = np.asarray(p.estimator.ood_p_value(held[key][:32]))
        assert np.allclose(check, refs[key].p_values(held[key][:32])[METHODS[0]]), "p-values differ"

    # shifted inputs --------------------------------------------------------------------------
    n = s["shear_shift"]
    shifted = {}
    for delta in (0.3, 0.6):
        shifted[f"sources' mean redshift + {delta}"] = inputs(z_shift(delta).maps(prior.sample(n, seed=30).numpy(),
                                                                                 seed=31))
    shifted["Gaussian shape noise added to noise-free maps (control)"] = inputs(t_noise(
        prior.sample(n, seed=32).numpy(), 33))
    shifted["Student-t (3 d.o.f.) shape noise, same variance"] = inputs(t_noise(prior.sample(n, seed=34).numpy(), 35,
                                                                                nu=3))
    ell_table, cl_table = np.loadtxt(ICOSMO_REFERENCE).T
    ell = np.arange(survey.lmax + 1)
    cl = np.zeros(survey.lmax + 1)
    cl[2:] = np.exp(np.interp(np.log(ell[2:]), np.log(ell_table), np.log(cl_table)))  # ℓ < 10: the ℓ = 10 value
    icosmo_maps = survey.simulator(np.tile(cl, (s["icosmo_maps"], 1)), seed=36)[:, 0]
    shifted["maps simulated from iCosmo's C_ℓ (Ω_m 0.25, σ₈ 0.8: in the prior)"] = inputs(icosmo_maps)
    edges = survey.edges
    weights = 2 * ell + 1.0
    noise_power = sigma ** 2 * 4 * np.pi / (12 * 32 ** 2)
    expected = np.array([np.sum((weights * cl)[lo:hi]) / np.sum(weights[lo:hi]) for lo, hi in zip(edges[:-1],
                                                                                                   edges[1:])])
    icosmo_vector = np.log(expected + noise_power)[None]

    for key, label in (("(b)", "log band powers"), ("(c)", "band powers + peaks + Minkowski"),
                       ("(d)", "the map (HEALPix network)")):
        say(f"### {key} NPE on {label}\n")
        say(f"1. Calibration on {len(held[key])} fresh simulated maps (refitted references on {len(fresh[key])} "
            f"other fresh maps: {refs[key].refs[METHODS[1]]!r})\n")
        p_held = refs[key].p_values(held[key])
        _calibration(say, p_held)
        say("2. Power: fraction flagged\n")
        _power_header(say)
        _power_row(say, "fresh simulated maps (in distribution)", p_held)
        for name, data in shifted.items():
            _power_row(say, name, refs[key].p_values(data[key]))
        if key == "(b)":
            p_vector = refs[key].p_values(icosmo_vector)
            say("\niCosmo's C_ℓ binned into the posterior's band-power bins, plus the white-noise power "
                f"σ² Ω_pix = {noise_power:.3g} sr (no mask coupling, no cosmic variance: the expectation, one "
                "vector): p-values " + ", ".join(f"{m} {p_vector[m][0]:.4f}" for m in METHODS))
        say()
    say(f"{time.perf_counter() - start:.0f} s for the simulations and per-object checks after training\n")

    # 3. MMD -----------------------------------------------------------------------------------
    start = time.perf_counter()
    n, replicates, permutations = s["shear_mmd_n"], s["replicates"], s["permutations"]
    total = n * replicates
    null = inputs(survey.maps(prior.sample(total, seed=50).numpy(), seed=51))
    shifts = {"sources' mean redshift + 0.3": inputs(z_shift(0.3).maps(prior.sample(total, seed=52).numpy(), seed=53)),
              "Student-t (3 d.o.f.) shape noise": inputs(t_noise(prior.sample(total, seed=54).numpy(), 55, nu=3))}
    for key, p in posteriors.items():
        est = p.estimator
        reference = _contexts(est, held[key][:s["mmd_reference"]]).numpy()
        say(f"### 3. Population test, {key} (mmd_test on context vectors; reference: {len(reference)} held-out "
            f"simulated maps)\n")
        _mmd_header(say)
        _mmd_rows(say, "fresh simulated maps (false-positive rate)", _chunks(_contexts(est, null[key]).numpy(), n,
                                                                              replicates), reference, permutations,
                  null=True)
        notes = []
        for label, data in shifts.items():
            _mmd_rows(say, label, _chunks(_contexts(est, data[key]).numpy(), n, replicates), reference, permutations,
                      null=False)
            flagged = {m: float(np.mean(v <= 0.01)) for m, v in refs[key].p_values(data[key]).items()}
            notes.append(f"- {label}: the same {total} maps one by one, fraction with ood_p_value ≤ 0.01: "
                         + ", ".join(f"{m} {v:.3f}" for m, v in flagged.items()))
        say()
        for note in notes:
            say(note)
        say()
    say(f"{time.perf_counter() - start:.0f} s for the population tests\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument("--only", choices=("galaxies", "shear"), default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL

    import astropy
    import healpy

    import astrobayes

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    say(f"# OOD checks on images and maps ({'--quick' if args.quick else 'full'})\n")
    say(f"astrobayes {astrobayes.__version__} (git {commit}), torch {torch.__version__}, numpy {np.__version__}, "
        f"astropy {astropy.__version__}, healpy {healpy.__version__}, Python {platform.python_version()}; "
        f"{args.threads} thread(s); sizes: " + ", ".join(f"{k}={v}" for k, v in sizes.items())
        + f"; α = {ALPHAS}; MMD at α = {MMD_ALPHA}\n")
    say(f"Command: `{' '.join(['python'] + sys.argv)}`\n")
    start = time.perf_counter()
    if args.only in (None, "galaxies"):
        galaxies(say, sizes)
    if args.only in (None, "shear"):
        shear(say, sizes)
    say(f"total {time.perf_counter() - start:.0f} s")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
