"""Out-of-distribution checks on three domains: calibration, power on real shifts, the population test, cost (issue 22).

Every estimator keeps an out-of-distribution reference of its training inputs'
context vectors (``network.features``: standardised inputs through the
embedding) and gives each object a conformal ``ood_p_value``
(:mod:`astrobayes.estimators.ood`). This script measures, for the supernova
classifier (SNPhotCC, ``catalogs/supernovae``), the cluster mass model (the
project's mocks; Coma from ``catalogs/clusters``) and the stellar map (its
simulations; DEBCat from ``catalogs/stars``):

1. **calibration** — on held-out in-distribution objects (never trained on),
   the fraction with ``ood_p_value`` ≤ α for α = 0.05 and 0.01, against the
   binomial 3σ band α ± 3·sqrt(α(1 − α)/n), for the default score
   (``"gaussian"``, the Mahalanobis distance fitted by ``Estimator.fit``) and the
   k-NN score (``est.fit_ood(x, method="knn")`` on the training objects, one
   row per object);
2. **power** — the fraction flagged at α = 0.05 and 0.01 for shifted inputs:
   supernovae with a sparser cadence, more noise, a band missing, or a host
   redshift above the training range; mocks with extra interlopers or a
   merging group, and the real Coma cluster; DEBCat main-sequence stars and
   giants, and simulated stars outside the training box;
3. **population test** — :func:`~astrobayes.inference.diagnostics.mmd_test` of
   n objects' context vectors against the training contexts: the rejection
   rate at α = 0.05 over in-distribution replicates (with its binomial 3σ band)
   and over replicates of shifted samples;
4. **cost** — µs per object of the default OOD score against the network's
   prediction alone (supernova classifier and cluster mass model, 1 thread).

The models are deliberately small (few epochs; the sizes are printed in the
output): the point is the behaviour of the OOD checks, not the accuracy of the
networks. Seeds are fixed.

Usage::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ood_power.py --quick
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ood_power.py \\
        --markdown benchmarks/results/ood_power.md

``--quick`` is a smoke run (about 1.5 minutes: smaller training sets, a few epochs,
20 population replicates of 50 objects); the full mode takes about 4–6 minutes on one core.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clusters_coma import _machine  # noqa: E402  (the same machine line as the Coma benchmark)

ALPHAS = (0.05, 0.01)
HOST_Z = ("host_photoz", "host_photoz_err")  # the SNPhotCC host photo-z, as benchmarks/supernovae_spcc.py uses


@dataclass
class Sizes:
    """Everything the run's cost depends on (printed in the header)."""

    sn_epochs: int = 20
    sn_augment: int = 2
    sn_train_share: float = 0.6   # of the objects with host z below the cut
    sn_z_cut: float = 0.8
    cl_train: int = 10000
    cl_test: int = 2000
    cl_epochs: int = 50
    st_train: int = 5000
    st_test: int = 5000
    st_epochs: int = 30
    replicates: int = 100
    mmd_n: int = 100
    mmd_permutations: int = 200
    mmd_reference_rows: int = 500
    cost_repeats: int = 11


QUICK = Sizes(sn_epochs=3, sn_augment=1, cl_train=1500, cl_test=600, cl_epochs=5, st_train=2000, st_test=2000,
              st_epochs=3, replicates=20, mmd_n=50, mmd_permutations=100, mmd_reference_rows=300, cost_repeats=6)


# ---------------------------------------------------------------------------- statistics
def band(alpha: float, n: int) -> tuple[float, float]:
    """Binomial 3σ band of the fraction of n objects with p ≤ α."""
    half = 3 * math.sqrt(alpha * (1 - alpha) / n)
    return max(0.0, alpha - half), alpha + half


def flagged(p, alpha: float) -> float:
    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    return float((p <= alpha).mean()) if p.size else math.nan


def contexts_and_p(est, x):
    """(context vectors, default p-values) of inputs x from one pass of ``network.features``."""
    with est.recording_context() as recorded:
        p = est.ood_p_value(x)
    return recorded.contexts, np.asarray(p, dtype=float)


class Report:
    """Collects printed lines (for --markdown) and the results of each domain."""

    def __init__(self):
        self.lines: list[str] = []
        self.calibration: list[tuple] = []   # (domain, method, n, n_calibration, {alpha: fraction})
        self.population: list[tuple] = []    # (domain, sample, pool, n, replicates, rejected, in_distribution)
        self.population_reference: list[str] = []  # what each domain's samples are tested against
        self.cost: list[tuple] = []          # (model, what, best µs/object, median µs/object)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def power_table(self, title: str, rows: list[tuple], extra: str | None = None,
                    names: tuple[str, str] = ("gaussian", "knn")) -> None:
        """rows: (label, n, extra value or None, p of the first score, p of the second)."""
        self.say(f"### {title}")
        self.say()
        head = "| input | n |" + (f" {extra} |" if extra else "")
        head += "".join(f" {name} p ≤ {a:g} |" for name in names for a in ALPHAS)
        self.say(head)
        self.say("|---|---:|" + ("---:|" if extra else "") + "---:|---:|---:|---:|")
        for label, n, value, p_gauss, p_knn in rows:
            cells = [f"{100 * flagged(p, a):.1f} %" for p in (p_gauss, p_knn) for a in ALPHAS]
            middle = f" {value} |" if extra else ""
            self.say(f"| {label} | {n} |{middle} " + " | ".join(cells) + " |")
        self.say()


def population(report: Report, domain: str, reference, samples: dict, sizes: Sizes, in_distribution: str) -> None:
    """mmd_test of replicate samples (n rows drawn without replacement from each pool) against ``reference``."""
    from astrobayes.inference.diagnostics import mmd_test

    for label, pool in samples.items():
        pool = np.asarray(pool, dtype=np.float64)
        n = min(sizes.mmd_n, int(0.8 * len(pool)))
        rng = np.random.default_rng(7)
        rejected = 0
        for replicate in range(sizes.replicates):
            rows = rng.choice(len(pool), n, replace=False)
            result = mmd_test(pool[rows], reference, n_permutations=sizes.mmd_permutations,
                              max_rows=sizes.mmd_reference_rows, seed=replicate)
            rejected += result.p_value <= 0.05
        report.population.append((domain, label, len(pool), n, sizes.replicates, rejected / sizes.replicates,
                                  label == in_distribution))


def best_times(functions: dict, repeats: int) -> dict:
    """(best, median) wall time of each function over ``repeats`` rounds, the functions interleaved within each
    round, in reversed order every other round (on a shared machine, load that comes and goes then hits them
    alike)."""
    seconds = {name: [] for name in functions}
    for round_ in range(repeats):
        names = list(functions) if round_ % 2 == 0 else list(functions)[::-1]  # no function always runs first
        for name in names:
            start = time.perf_counter()
            functions[name]()
            seconds[name].append(time.perf_counter() - start)
    return {name: (min(times), float(np.median(times))) for name, times in seconds.items()}


# ---------------------------------------------------------------------------- supernovae
def _rebuilt(lcs, observations, drop_invalid: bool = False):
    from astrobayes.supernovae import Lightcurves

    return Lightcurves(observations, lcs.meta, bands=lcs.bands, drop_invalid=drop_invalid, source="the shifted set")


def sn_drop_epochs(lcs, keep_every: int, window: float):
    """Keep epochs 0, k, 2k, ... of each object (an epoch: observations grouped as build_sequences groups them)."""
    from astrobayes.supernovae.features import group_epochs

    offsets, time_, band_index, _, _ = lcs.arrays()
    keep = np.zeros(len(time_), dtype=bool)
    for i in range(len(lcs)):
        lo, hi = offsets[i], offsets[i + 1]
        groups = group_epochs(time_[lo:hi] - time_[lo], band_index[lo:hi], window)
        keep[lo:hi] = groups % keep_every == 0
    return _rebuilt(lcs, lcs.observations[keep])


def sn_noisier(lcs, factor: float, rng):
    """Flux errors ×factor and the flux scattered by the extra noise, so the total scatter is ×factor."""
    obs = lcs.observations.copy()
    err = np.asarray(obs["flux_err"], dtype=float)
    obs["flux"] = np.asarray(obs["flux"], dtype=float) + math.sqrt(factor ** 2 - 1) * err * rng.standard_normal(len(err))
    obs["flux_err"] = factor * err
    return _rebuilt(lcs, obs)


def sn_drop_band(lcs, band_name: str):
    return _rebuilt(lcs, lcs.observations[np.asarray(lcs.observations["band"]) != band_name], drop_invalid=True)


def run_supernovae(report: Report, sizes: Sizes) -> None:
    import torch

    from astrobayes.supernovae import (SPCC_CATALOG, build_sequences, classification_metrics, classify,
                                       read_lightcurves, task_labels, train_classifier)

    say = report.say
    started = time.perf_counter()
    lcs = read_lightcurves(SPCC_CATALOG)
    z = np.asarray(lcs.meta["host_photoz"], dtype=float)
    low, high = np.flatnonzero(z < sizes.sn_z_cut), np.flatnonzero(z >= sizes.sn_z_cut)
    order = np.random.default_rng(0).permutation(low)
    n_train = int(round(sizes.sn_train_share * len(low)))
    train_idx, held_idx = np.sort(order[:n_train]), np.sort(order[n_train:])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train_classifier(lcs.select(train_idx), use_redshift=True, redshift_columns=HOST_Z,
                                 epochs=sizes.sn_epochs, augment=sizes.sn_augment, seed=0, progress=False)
    train_s = time.perf_counter() - t0
    est = model.estimator
    gaussian = est.ood
    say("## Supernovae: SNPhotCC classifier (Ia vs non-Ia)")
    say()
    say(f"Data: the shipped SNPhotCC DES subset, {len(lcs)} objects. In distribution: host photo-z < "
        f"{sizes.sn_z_cut:g} ({len(low)} objects); {n_train} of them (seeded) go to `train_classifier` "
        f"(default network: 2-layer bidirectional LSTM, 16 units; host z as input; ×{sizes.sn_augment} augmentation, "
        f"≤ {sizes.sn_epochs} epochs — a small run, {train_s:.0f} s; it trains on "
        f"{model.meta['n_train']} and holds out the rest for early stopping and temperature), {len(held_idx)} held "
        f"out for the tests below. Default OOD reference: {gaussian!r}, fitted by `train_classifier` on its "
        f"{model.meta['n_train']} training objects and calibrated on its "
        f"{model.meta['n_validation'] + model.meta['n_calibration']} held-out ones; k-NN reference: `est.fit_ood(x, method='knn')` on all "
        f"{n_train} objects given to `train_classifier` (one interpolated sequence per object).")
    say()
    held = lcs.select(held_idx)
    rng = np.random.default_rng(22)
    window = model.config.group_window
    sets = {
        "held-out, as observed (reference)": held,
        "every other epoch dropped": sn_drop_epochs(held, 2, window),
        "two of three epochs dropped": sn_drop_epochs(held, 3, window),
        "flux errors and scatter ×3": sn_noisier(held, 3.0, rng),
        "flux errors and scatter ×10": sn_noisier(held, 10.0, rng),
        "band g removed": sn_drop_band(held, "g"),
        "band z removed": sn_drop_band(held, "z"),
        f"host z ≥ {sizes.sn_z_cut:g} (outside training)": lcs.select(high),
    }
    results = {}
    for label, subset in sets.items():
        with warnings.catch_warnings(), est.recording_context() as recorded:
            warnings.simplefilter("ignore")
            table = classify(subset, model)
        p_gauss = np.asarray(table["ood_p_value"], dtype=float)
        check = gaussian.p_value(recorded.contexts)
        assert np.allclose(check, p_gauss, equal_nan=True), "classify's ood_p_value differs from the reference's"
        probs = np.column_stack([np.asarray(table[f"p_{name}"]) for name in model.class_names])
        accuracy = classification_metrics(probs, task_labels(subset, "binary"))["accuracy"]
        results[label] = (recorded.contexts, p_gauss, accuracy, len(subset))

    # cost, default reference in place: the network alone against the network plus its recorded OOD p-values
    torch.set_num_threads(1)
    x_held = build_sequences(held, model.config).masked()
    n = len(held)

    def predict_only():
        est.predict_proba(x_held)

    def predict_with_ood():
        with est.recording_context() as recorded:
            est.predict_proba(x_held)
        recorded.p_value()

    contexts_held = results["held-out, as observed (reference)"][0]
    with est.recording_context() as recorded_held:
        est.predict_proba(x_held)
    timed = {"network prediction alone (`predict_proba` on built sequences)": predict_only,
             "prediction + OOD p-values from the same pass (`recording_context`)": predict_with_ood,
             "OOD p-values from the kept context vectors, after the pass (`recorded.p_value()`)":
                 recorded_held.p_value,
             "default OOD score alone, from the context vectors (gaussian `p_value`)":
                 lambda: gaussian.p_value(contexts_held),
             "sequence building (`build_sequences`), for scale": lambda: build_sequences(held, model.config)}

    # the k-NN reference on the objects given to train_classifier, one interpolated sequence each; and, to tell
    # the method from the rows, a Gaussian reference refitted on those same rows
    x_fit = build_sequences(lcs.select(train_idx), model.config).masked()
    train_contexts, _ = contexts_and_p(est, x_fit)
    gaussian_refit = est.fit_ood(x_fit, method="gaussian", seed=0)
    knn = est.fit_ood(x_fit, method="knn", seed=0)
    timed["k-NN OOD score alone, from the context vectors (for comparison)"] = lambda: knn.p_value(contexts_held)
    for what, seconds in best_times(timed, sizes.cost_repeats).items():
        report.cost.append(("SN classifier", what, *(1e6 * t / n for t in seconds)))
    rows = []
    for label, (ctx, p_gauss, accuracy, count) in results.items():
        rows.append((label, count, f"{100 * accuracy:.1f}", p_gauss, knn.p_value(ctx)))
    reference = rows[0]
    for method, ref, p in (("gaussian (default)", gaussian, reference[3]), ("knn", knn, reference[4]),
                           (f"gaussian refitted on the {n_train} objects, for comparison", gaussian_refit,
                            gaussian_refit.p_value(contexts_held))):
        report.calibration.append(("supernovae", method, reference[1], ref.n_calibration,
                                   {a: flagged(p, a) for a in ALPHAS}))
    report.population_reference.append(
        f"supernovae: the context vectors of the {n_train} objects given to `train_classifier` (interpolated "
        "sequences; the network trained on the augmented copies of 76.5 % of them)")
    report.power_table("2. Power — supernovae: fraction flagged", rows, extra="accuracy %")

    population(report, "supernovae", train_contexts,
               {"held-out, as observed (reference)": results["held-out, as observed (reference)"][0],
                "every other epoch dropped": results["every other epoch dropped"][0],
                "flux errors and scatter ×3": results["flux errors and scatter ×3"][0],
                "band g removed": results["band g removed"][0],
                f"host z ≥ {sizes.sn_z_cut:g} (outside training)":
                    results[f"host z ≥ {sizes.sn_z_cut:g} (outside training)"][0]},
               sizes, "held-out, as observed (reference)")
    say(f"(supernovae: {time.perf_counter() - started:.0f} s)")
    say()


# ---------------------------------------------------------------------------- clusters
def cl_add_interlopers(members, fraction: float, rng, aperture: float, v_cut: float):
    """Add round(fraction × N) galaxies per cluster, uniform in projected area and in velocity within the cylinder."""
    import astropy.units as u
    from astropy.table import QTable, vstack

    ids, counts = np.unique(np.asarray(members["cluster_id"]), return_counts=True)
    extra = np.round(fraction * counts).astype(np.int64)
    owner = np.repeat(ids, extra)
    added = QTable({"cluster_id": owner,
                    "galaxy_id": int(np.max(members["galaxy_id"])) + 1 + np.arange(owner.size, dtype=np.int64),
                    "R_proj": aperture * np.sqrt(rng.random(owner.size)) * u.Mpc,
                    "v_los": rng.uniform(-v_cut, v_cut, owner.size) * u.km / u.s,
                    "is_member": np.zeros(owner.size, dtype=bool)})
    out = vstack([members, added], metadata_conflicts="silent")
    out = out[np.argsort(np.asarray(out["cluster_id"]), kind="stable")]
    out.meta = dict(members.meta)
    return out


def cl_add_group(members, truth, rng, aperture: float, v_cut: float, seed: int, dex: float = 0.5,
                 share: float = 0.3):
    """Merge a second group into every cluster: log M − ``dex``, ``share`` × N galaxies, offset 0.3–1 Mpc, Δv 500–1500 km/s."""
    import astropy.units as u
    from astropy.table import QTable, vstack

    from astrobayes.clusters import simulate_clusters

    group, _ = simulate_clusters(log_mass=np.asarray(truth["log_mass"]) - dex, n_redshifts=(500, 500),
                                 interloper_ratio=0.0, seed=seed)
    main_counts = np.bincount(np.asarray(members["cluster_id"]), minlength=len(truth))
    owner = np.asarray(group["cluster_id"])
    rank = np.empty(owner.size, dtype=np.int64)
    order = np.lexsort((rng.random(owner.size), owner))
    rank[order] = np.arange(owner.size) - np.searchsorted(owner[order], owner[order])
    keep = rank < np.round(share * main_counts[owner])
    owner = owner[keep]
    radius = np.asarray(group["R_proj"].to_value(u.Mpc))[keep]
    angle = rng.uniform(0, 2 * np.pi, owner.size)
    offset = rng.uniform(0.3, 1.0, len(truth))[owner]
    dv = (rng.uniform(500, 1500, len(truth)) * rng.choice([-1, 1], len(truth)))[owner]
    x, y = radius * np.cos(angle) + offset, radius * np.sin(angle)
    r_new = np.hypot(x, y)
    v_new = np.asarray(group["v_los"].to_value(u.km / u.s))[keep] + dv
    inside = (r_new <= aperture) & (np.abs(v_new) <= v_cut)
    added = QTable({"cluster_id": owner[inside],
                    "galaxy_id": int(np.max(members["galaxy_id"])) + 1 + np.arange(int(inside.sum()), dtype=np.int64),
                    "R_proj": r_new[inside] * u.Mpc, "v_los": v_new[inside] * u.km / u.s,
                    "is_member": np.zeros(int(inside.sum()), dtype=bool)})
    out = vstack([members, added], metadata_conflicts="silent")
    out = out[np.argsort(np.asarray(out["cluster_id"]), kind="stable")]
    out.meta = dict(members.meta)
    return out


def run_clusters(report: Report, sizes: Sizes) -> None:
    import torch

    from astrobayes.clusters import (COMA_CENTRE, COMA_FIELD, estimate_mass, grid_quantiles, match_clusters,
                                     members_from_field, read_redshift_field, simulate_clusters, train_mass_model)

    say = report.say
    started = time.perf_counter()
    t0 = time.perf_counter()
    members, truth = simulate_clusters(sizes.cl_train, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train_mass_model(members, truth, epochs=sizes.cl_epochs, seed=0, progress=False)
    train_s = time.perf_counter() - t0
    est = model.estimator
    gaussian = est.ood
    aperture, v_cut = model.settings["aperture_Mpc"], model.settings["v_cut_km_s"]
    say("## Clusters: dynamical mass model (MDN on summary features)")
    say()
    say(f"Training: {sizes.cl_train} default mocks (`simulate_clusters(seed=0)`: log M flat on 13.3–15.7, 10–1500 "
        f"redshifts, interloper ratio 0–0.5 per cluster), `train_mass_model` defaults (MDN, "
        f"{model.settings['interloper_rejection']} rejection) but {sizes.cl_epochs} epochs — a small run, "
        f"{train_s:.0f} s with simulation and features. Default OOD reference: {gaussian!r}. Tests: "
        f"{sizes.cl_test} fresh mocks (`seed=1`), shifted as named; the mass bias is the median of "
        f"(posterior median − true log M) under the training prior.")
    say()
    test_members, test_truth = simulate_clusters(sizes.cl_test, seed=1)
    rng = np.random.default_rng(22)
    sets = {
        "fresh default mocks (reference)": test_members,
        "+30 % interlopers": cl_add_interlopers(test_members, 0.3, rng, aperture, v_cut),
        "+100 % interlopers": cl_add_interlopers(test_members, 1.0, rng, aperture, v_cut),
        "+300 % interlopers": cl_add_interlopers(test_members, 3.0, rng, aperture, v_cut),
        "merging group (log M − 0.5, 30 % of N, 0.3–1 Mpc, 500–1500 km/s)":
            cl_add_group(test_members, test_truth, rng, aperture, v_cut, seed=2),
    }
    grid = model.grid()
    results, inputs = {}, {}
    for label, subset in sets.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            features, x, usable = model.prepare(subset)
        x = inputs[label] = x[usable]
        ctx, p_gauss = contexts_and_p(est, x)
        median = grid_quantiles(model.log_posterior_grid(x, grid), grid, np.array([0.5]))[:, 0]
        bias = float(np.median(median - match_clusters(features, test_truth, "log_mass")[usable]))
        results[label] = (ctx, p_gauss, bias, int(usable.sum()))

    # Coma through the domain function, default reference
    field = read_redshift_field(COMA_FIELD)
    coma = members_from_field(field, COMA_CENTRE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coma_table = estimate_mass(coma, model)
    coma_warnings = [str(w.message) for w in caught]
    _, coma_x, coma_usable = model.prepare(coma)
    coma_ctx, _ = contexts_and_p(est, coma_x[coma_usable])

    # cost, default reference in place
    torch.set_num_threads(1)
    x_ref = inputs["fresh default mocks (reference)"]
    ctx_ref = results["fresh default mocks (reference)"][0]
    n = len(x_ref)
    with est.recording_context(every=grid.size, limit=n) as recorded_ref:
        model.log_posterior_grid(x_ref)
    timed = {"network prediction alone, one pass (`estimator.predict`)": lambda: est.predict(x_ref),
             "posterior on the 401-point grid (`log_posterior_grid`, what `estimate_mass` runs)":
                 lambda: model.log_posterior_grid(x_ref),
             "grid posterior + OOD p-values from the same pass (`return_ood=True`)":
                 lambda: model.log_posterior_grid(x_ref, return_ood=True),
             "OOD p-values from the kept context vectors, after the pass (`recorded.p_value()`)": recorded_ref.p_value,
             f"default OOD score alone, from the context vectors ({gaussian.method} `p_value`)":
                 lambda: gaussian.p_value(ctx_ref)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare_s = best_times({"prepare": lambda: model.prepare(test_members)}, 1)["prepare"]

    # the k-NN reference on the training clusters (one feature row each)
    _, x_train, usable_train = model.prepare(members)
    x_train = x_train[usable_train]
    train_contexts, _ = contexts_and_p(est, x_train)
    # the cluster model's default is the k-NN score (see train_mass_model); the comparison is the Gaussian one
    knn = est.fit_ood(x_train, method="gaussian" if gaussian.method == "knn" else "knn", seed=0)
    timed[f"{knn.method} OOD score alone, from the context vectors (for comparison)"] = lambda: knn.p_value(ctx_ref)
    for what, seconds in best_times(timed, sizes.cost_repeats).items():
        report.cost.append(("cluster MDN", what, *(1e6 * t / n for t in seconds)))
    report.cost.append(("cluster MDN", "features incl. interloper rejection (`prepare`, timed once), for scale",
                        *(1e6 * t / n for t in prepare_s)))
    rows = [(label, count, f"{bias:+.3f}", p_gauss, knn.p_value(ctx))
            for label, (ctx, p_gauss, bias, count) in results.items()]
    reference = rows[0]
    for method, ref, p in ((f"{gaussian.method} (default)", gaussian, reference[3]), (knn.method, knn, reference[4])):
        report.calibration.append(("clusters", method, reference[1], ref.n_calibration,
                                   {a: flagged(p, a) for a in ALPHAS}))
    report.population_reference.append(f"clusters: the feature vectors (standardised) of the {len(x_train)} "
                                       "training mocks")
    report.power_table("2. Power — clusters: fraction flagged", rows, extra="mass bias (dex)",
                       names=(f"{gaussian.method} (default)", knn.method))
    row = coma_table[0]
    say(f"**Coma** (NED field, `members_from_field` defaults: {len(coma)} members, σ_gapper "
        f"{row['sigma_gapper']:.0f}): `estimate_mass` gives log M = {row['log_mass_median']:.2f} "
        f"(+{row['log_mass_p84'] - row['log_mass_median']:.2f} / −{row['log_mass_median'] - row['log_mass_p16']:.2f}), "
        f"ood_p_value ({gaussian.method}, the default) = {row['ood_p_value']:.4f}, {knn.method} p-value = "
        f"{float(knn.p_value(coma_ctx)[0]):.4f}; flags: '{row['flags']}'"
        + (f"; warnings: {coma_warnings}" if coma_warnings else "; no warning") + ".")
    say()
    population(report, "clusters", train_contexts,
               {label: results[label][0] for label in ("fresh default mocks (reference)", "+30 % interlopers",
                                                       "+100 % interlopers",
                                                       "merging group (log M − 0.5, 30 % of N, 0.3–1 Mpc, "
                                                       "500–1500 km/s)")},
               sizes, "fresh default mocks (reference)")
    say(f"(clusters: {time.perf_counter() - started:.0f} s)")
    say()


# ---------------------------------------------------------------------------- stars
def run_stars(report: Report, sizes: Sizes) -> None:
    from astrobayes.stars import predict_stars, read_debcat, train_stellar_map

    say = report.say
    started = time.perf_counter()
    t0 = time.perf_counter()
    stellar_map = train_stellar_map(n_train=sizes.st_train, epochs=sizes.st_epochs, seed=0, progress=False)
    train_s = time.perf_counter() - t0
    gaussian = stellar_map.ood
    domain = stellar_map.stellar_map_domain
    mass_box, feh_box = domain["training_log_mass_range"], domain["training_feh_range"]
    # the training inputs, drawn as train_stellar_map draws them (same seed, same order)
    rng = np.random.default_rng(0)
    x_train = np.column_stack([rng.uniform(*mass_box, sizes.st_train), rng.uniform(*feh_box, sizes.st_train)])
    say("## Stars: the ZAMS stellar map (log M, [Fe/H]) → (log R, log T_eff)")
    say()
    say(f"Training: `train_stellar_map(n_train={sizes.st_train}, epochs={sizes.st_epochs})` (default network, "
        f"{train_s:.0f} s): inputs uniform in log M ∈ [{mass_box[0]:.3f}, {mass_box[1]:.3f}] and [Fe/H] ∈ "
        f"[{feh_box[0]:.3f}, {feh_box[1]:.3f}] (the domain plus a 5 % margin). Default OOD reference: {gaussian!r}. "
        "The map has no embedding: its context vector is the standardised input (log M, [Fe/H]) itself, so the "
        "OOD check sees only mass and metallicity — not the measured radius, T_eff or log g. DEBCat: [Fe/H] = "
        "DEBCat's [M/H], 0 where missing (as `predict_stars` assumes); groups by `predict_stars` flags "
        "(`not_main_sequence`: log g < 4 or R > 2 R_map; domain: 0.5–20 M_sun, −1 ≤ [Fe/H] ≤ 0.15).")
    say()
    fresh = np.random.default_rng(1)
    n = sizes.st_test
    width = mass_box[1] - mass_box[0]

    def box(mass_range, feh_range):
        return np.column_stack([fresh.uniform(*mass_range, n), fresh.uniform(*feh_range, n)])

    stars = read_debcat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = predict_stars(stars, stellar_map, warn=False)
    x_debcat = np.column_stack([np.log10(np.asarray(table["mass"].value, dtype=float)),
                                np.asarray(table["feh"], dtype=float)])
    giant = np.asarray(table["not_main_sequence"], dtype=bool)
    outside = np.zeros(len(table), dtype=bool)
    for flag in ("below_mass_domain", "above_mass_domain", "outside_feh_domain"):
        outside |= np.asarray(table[flag], dtype=bool)
    sets = {
        "simulated, inside the training box (reference)": box(mass_box, feh_box),
        "simulated, log M 0–0.2 dex above the box": box((mass_box[1], mass_box[1] + 0.2), feh_box),
        "simulated, log M 0–0.2 dex below the box": box((mass_box[0] - 0.2, mass_box[0]), feh_box),
        "simulated, [Fe/H] 0–0.5 below the box": box(mass_box, (feh_box[0] - 0.5, feh_box[0])),
        "simulated, [Fe/H] 0–0.3 above the box": box(mass_box, (feh_box[1], feh_box[1] + 0.3)),
        "simulated, log M box widened 30 % upward (23 % outside)": box((mass_box[0], mass_box[1] + 0.3 * width),
                                                                         feh_box),
        "DEBCat main sequence, inside the domain": x_debcat[~giant & ~outside],
        "DEBCat main sequence, outside the domain": x_debcat[~giant & outside],
        "DEBCat not main sequence (giants, subgiants), inside the domain": x_debcat[giant & ~outside],
        "DEBCat not main sequence, outside the domain": x_debcat[giant & outside],
    }
    results = {label: contexts_and_p(stellar_map, x.astype(np.float32)) for label, x in sets.items()}
    train_contexts, _ = contexts_and_p(stellar_map, x_train.astype(np.float32))
    knn = stellar_map.fit_ood(x_train.astype(np.float32), method="knn", seed=0)
    rows = [(label, len(ctx), None, p_gauss, knn.p_value(ctx)) for label, (ctx, p_gauss) in results.items()]
    reference = rows[0]
    for method, ref, p in (("gaussian (default)", gaussian, reference[3]), ("knn", knn, reference[4])):
        report.calibration.append(("stars", method, reference[1], ref.n_calibration,
                                   {a: flagged(p, a) for a in ALPHAS}))
    report.population_reference.append(f"stars: the {sizes.st_train} training inputs (log M, [Fe/H]), standardised")
    report.power_table("2. Power — stars: fraction flagged", rows)
    say(f"DEBCat: {len(table)} stars, {int(giant.sum())} flagged not_main_sequence, {int(outside.sum())} outside "
        f"the map's mass/[Fe/H] domain.")
    say()
    population(report, "stars", train_contexts,
               {label: results[label][0] for label in ("simulated, inside the training box (reference)",
                                                       "simulated, log M box widened 30 % upward (23 % outside)",
                                                       "DEBCat main sequence, inside the domain",
                                                       "DEBCat not main sequence (giants, subgiants), inside the "
                                                       "domain")},
               sizes, "simulated, inside the training box (reference)")
    say(f"(stars: {time.perf_counter() - started:.0f} s)")
    say()


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small models, 20 population replicates")
    parser.add_argument("--domains", nargs="+", choices=("supernovae", "clusters", "stars"),
                        default=["supernovae", "clusters", "stars"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the output to this file")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()

    import torch

    from astrobayes import __version__

    torch.set_num_threads(args.threads)
    report = Report()
    say = report.say
    started = time.perf_counter()
    say("# Out-of-distribution checks: calibration, power, population test, cost (benchmarks/ood_power.py)")
    say()
    say(f"astrobayes {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), CPU; {_machine()}; "
        f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f} at the start; "
        f"mode {'--quick' if args.quick else 'full'}")
    say(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    say(f"sizes: {sizes}")
    say()
    runners = {"supernovae": run_supernovae, "clusters": run_clusters, "stars": run_stars}
    for name in args.domains:
        runners[name](report, sizes)

    say("## 1. Calibration on held-out in-distribution objects")
    say()
    say("Fraction of the n held-out objects with ood_p_value ≤ α; band = α ± 3·sqrt(α(1 − α)/n) (binomial 3σ "
        "over the test objects). A conformal p-value is valid on average over the reference's calibration rows "
        "too: given one set of n_cal calibration rows the rate itself scatters by about sqrt(α(1 − α)/(n_cal + 2)) "
        "(a Beta law), so the second band, α ± 3·sqrt(α(1 − α)(1/n + 1/(n_cal + 2))), is the one a single "
        "fitted reference should fall in.")
    say()
    say("| domain | method | n | n_cal | p ≤ 0.05 | 3σ band | inside | band with n_cal | inside | "
        "p ≤ 0.01 | 3σ band | inside | band with n_cal | inside |")
    say("|---|---|---:|---:|---:|---|---|---|---|---:|---|---|---|---|")
    for domain, method, n, n_cal, fractions in report.calibration:
        cells = []
        for alpha in ALPHAS:
            f = fractions[alpha]
            lo, hi = band(alpha, n)
            half = 3 * math.sqrt(alpha * (1 - alpha) * (1 / n + 1 / (n_cal + 2)))
            wide = (max(0.0, alpha - half), alpha + half)
            cells += [f"{100 * f:.2f} %", f"[{100 * lo:.2f}, {100 * hi:.2f}] %", "yes" if lo <= f <= hi else "**no**",
                      f"[{100 * wide[0]:.2f}, {100 * wide[1]:.2f}] %",
                      "yes" if wide[0] <= f <= wide[1] else "**no**"]
        say(f"| {domain} | {method} | {n} | {n_cal} | " + " | ".join(cells) + " |")
    say()
    say("## 3. Population test (mmd_test on context vectors, α = 0.05)")
    say()
    say(f"Each replicate: n objects drawn without replacement from the pool, tested against the training objects' "
        f"context vectors (subsampled by mmd_test to {sizes.mmd_reference_rows} rows, a fresh subsample per "
        f"replicate), {sizes.mmd_permutations} permutations, bandwidth 'median'. Replicates of one pool overlap, so "
        "they are not independent: the band assumes they are. The reference samples:")
    say()
    for line in report.population_reference:
        say(f"- {line}")
    say()
    say("| domain | sample | pool | n | replicates | rejected at 0.05 | 3σ band (in distribution) |")
    say("|---|---|---:|---:|---:|---:|---|")
    for domain, label, pool, n, replicates, rate, in_distribution in report.population:
        extra = ""
        if in_distribution:
            lo, hi = band(0.05, replicates)
            extra = f"[{100 * lo:.1f}, {100 * hi:.1f}] % — {'inside' if lo <= rate <= hi else '**outside**'}"
        say(f"| {domain} | {label} | {pool} | {n} | {replicates} | {100 * rate:.0f} % | {extra} |")
    say()
    if report.cost:
        say(f"## 4. Cost per object (1 torch thread, {sizes.cost_repeats} interleaved rounds, on the held-out "
            "in-distribution set)")
        say()
        say("On a shared machine the rounds of one call scatter by ~10–20 % or more: a difference between two rows "
            "below that (best or median) is noise. The work the OOD check adds to a prediction is the "
            "`recorded.p_value()` row (scoring the context vectors the pass kept) plus keeping them (a strided "
            "view and a copy of d numbers per object in a forward hook).")
        say()
        say("| model | what | µs / object (best) | µs / object (median) |")
        say("|---|---|---:|---:|")
        for model, what, best, median in report.cost:
            say(f"| {model} | {what} | {best:.1f} | {median:.1f} |")
        say()
    say(f"total {(time.perf_counter() - started) / 60:.1f} min")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(report.lines) + "\n")


if __name__ == "__main__":
    main()
