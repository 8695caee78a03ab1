"""The Coma cluster's dynamical M200c with the default models, beside the literature (issue 21).

Everything is trained with the library's defaults — ``DEFAULT_TRAINING_CLUSTERS`` (20 000) mocks of
:func:`~astrobayes.clusters.simulate_clusters` (masses flat in log M on 13.3–15.7, a survey whose number
of redshifts, 10–1500, does not depend on the mass, interloper ratio 0–0.5 per cluster) and
:func:`~astrobayes.clusters.train_mass_model` (MDN, interloper rejection ``DEFAULT_REJECTION``) — exactly what
``astrobayes train clusters`` trains. Coma's members come from the shipped NED field through
:func:`~astrobayes.clusters.members_from_field` with its defaults (centre: NED's Abell 1656, 1.6 Mpc,
2500 km/s, ``DEFAULT_REJECTION``). The script prints, and writes to ``--markdown`` with a figure beside it:

1. Coma's selected members and their features against the training range (``outside_training``);
2. calibration of the default MDN and deep ensemble on held-out default mocks (68 / 95 % coverage,
   binomial 3σ bands);
3. stability under random sub-sampling on held-out mocks: bias and scatter of log M at sampling
   fractions 1, 0.5, 0.25, 0.1, for the default (survey) mocks and the old count-tracking mocks;
4. Coma's M200c (median, 68 %) from the MDN, the deep ensemble and the σ–M power law, under the
   training prior and the Schechter mass function; the old count-tracking MDN for contrast;
5. the spread over ``--subsamples`` random member sub-samples at 50, 100 and 200 members, other
   apertures (1.0 and 2.29 Mpc = 1.6 h⁻¹ Mpc, each with an MDN trained on mocks cut the same way),
   other centres (NGC 4874, NGC 4889, the X-ray centre);
6. the literature side by side, in both conventions, and what the mocks leave out.

Usage (the results file records the machine and the run time)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/clusters_coma.py \
        --markdown benchmarks/results/clusters_coma.md

Last run: 382 s with one torch thread on the project's shared 2-core AMD EPYC VM (647 s on a busier
turn). Text below the ``<!-- notes -->`` line of an existing results file is kept on a rerun.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# literature values of Coma's mass: (label, log10 M, +err, -err, unit, definition / note)
LITERATURE = [
    ("Ho et al. 2022 (Nat. Astron. 6, 936), dynamics + CNN", 15.10, 0.15, 0.15, "h-1",
     "M200c within r200c = 1.78 ± 0.03 h⁻¹ Mpc"),
    ("Kubo et al. 2007 (ApJ 671, 1466), SDSS weak lensing", math.log10(1.88e15), math.log10(2.53 / 1.88),
     math.log10(1.88 / 1.32), "h-1", "M200 = 1.88 (+0.65/−0.56) × 10¹⁵ h⁻¹ M_sun (NFW fit)"),
    ("Gavazzi et al. 2009 (A&A 498, L33), CFHT weak lensing", math.log10(5.1e14), math.log10(9.4 / 5.1),
     math.log10(5.1 / 3.0), "h70-1", "M200c = 5.1 (+4.3/−2.1) × 10¹⁴ h70⁻¹ M_sun"),
]
H = 0.7


def _band(n: int, p: float) -> tuple[float, float]:
    half = 3 * math.sqrt(n * p * (1 - p))
    return (n * p - half) / n, (n * p + half) / n


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def _thin(members, fraction, rng):
    return members[rng.random(len(members)) < fraction]


def _summary(table) -> tuple[float, float, float]:
    row = table[0]
    return float(row["log_mass_p16"]), float(row["log_mass_median"]), float(row["log_mass_p84"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=None, help="training mocks (default DEFAULT_TRAINING_CLUSTERS)")
    parser.add_argument("--test", type=int, default=2000, help="held-out mocks for the calibration")
    parser.add_argument("--per-mass", type=int, default=200, help="held-out mocks per mass for sub-sampling")
    parser.add_argument("--subsamples", type=int, default=50, help="random sub-samples of Coma per size")
    parser.add_argument("--skip-apertures", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()

    import torch

    from astrobayes import __version__
    from astrobayes.clusters import (COMA_CENTRE, COMA_FIELD, DEFAULT_TRAINING_CLUSTERS, FEATURE_NAMES, MassFunction,
                                     SigmaMassBaseline, cluster_features, estimate_mass, feature_matrix, grid_cdf,
                                     match_clusters, members_from_field, read_redshift_field, reweight,
                                     simulate_clusters, to_h_inverse, train_mass_model)
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    n_train = DEFAULT_TRAINING_CLUSTERS if args.train is None else args.train
    lines = [f"astrobayes {__version__}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)", ""]

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    # ------------------------------------------------------------------ Coma's members
    field = read_redshift_field(COMA_FIELD)
    coma_raw = members_from_field(field, COMA_CENTRE, rejection="none")
    coma = members_from_field(field, COMA_CENTRE)
    coma_features = cluster_features(coma)
    say("## Coma's members")
    say("")
    say(f"NED field: {len(field)} galaxies; centre NED's Abell 1656 ({COMA_CENTRE.ra.deg:.3f}, "
        f"{COMA_CENTRE.dec.deg:.3f}) deg; redshift {coma.meta['redshift']:.5f} ({coma.meta['redshift_source']}); "
        f"cylinder R_proj ≤ {coma.meta['aperture_Mpc']:.2f} Mpc (h = 0.7), |v_los| ≤ {coma.meta['v_cut_km_s']:g} km/s: "
        f"{coma.meta['n_cylinder']} galaxies, {coma.meta['n_rejected']} rejected by "
        f"{coma.meta['membership']['method']}, "
        f"{len(coma)} members; σ_gapper = {coma_features['sigma_gapper'][0]:.0f}, σ_biweight = "
        f"{coma_features['sigma_biweight'][0]:.0f}.")

    # ------------------------------------------------------------------ training
    say("")
    say("## Training (library defaults)")
    say("")
    t0 = time.perf_counter()
    members, truth = simulate_clusters(n_train, seed=0)
    say(f"{n_train} default mocks, {len(members)} galaxies: {time.perf_counter() - t0:.0f} s to simulate")
    models, seconds = {}, {}
    for label, kwargs in (("MDN", {}), ("deep ensemble (5 MDNs)", {"estimator": "ensemble"})):
        t0 = time.perf_counter()
        models[label] = train_mass_model(members, truth, progress=False, **kwargs)
        seconds[label] = time.perf_counter() - t0
        say(f"- {label}: trained in {seconds[label]:.0f} s (interloper rejection, features and training)")
    mdn = models["MDN"]
    train_features, _, usable = mdn.prepare(members)
    train_mass = match_clusters(train_features, truth, "log_mass")
    baseline = SigmaMassBaseline.fit(train_mass[usable], train_features["sigma_gapper"][usable])
    say(f"- σ–M power law (gapper σ) fitted to the same mocks: slope {baseline.slope:.3f} (Evrard et al. 2008 "
        f"dark matter: 0.336), scatter {baseline.scatter:.3f} dex in σ")
    old_members, old_truth = simulate_clusters(n_train, sampling="richness", interloper_ratio=0.25, seed=0)
    t0 = time.perf_counter()
    old = train_mass_model(old_members, old_truth, interloper_rejection="none", progress=False)
    say(f"- for contrast, the old count-tracking mocks (sampling='richness', interloper ratio 0.25, no rejection, "
        f"same masses): MDN trained in {time.perf_counter() - t0:.0f} s")

    # ------------------------------------------------------------------ inside the training domain
    say("")
    say("Coma's features against the range of the default MDN's training features:")
    say("")
    say("| feature | Coma | training min | training max | inside |")
    say("|---|---:|---:|---:|---|")
    for name, value, (low, high) in zip(FEATURE_NAMES, feature_matrix(mdn.prepare(coma)[0])[0], mdn.feature_range):
        say(f"| {name} | {value:.3f} | {low:.3f} | {high:.3f} | {'yes' if low <= value <= high else 'NO'} |")
    say(f"\n`outside_training` for Coma: {bool(mdn.outside_training(mdn.prepare(coma)[0])[0])} (default MDN); "
        f"{bool(old.outside_training(old.prepare(coma_raw)[0])[0])} (old count-tracking MDN, "
        f"at most {int(10 ** old.feature_range[0][1])} galaxies per training cluster).")

    # ------------------------------------------------------------------ calibration
    say("")
    say("## Calibration on held-out default mocks")
    say("")
    test_members, test_truth = simulate_clusters(args.test, seed=1)
    say("| estimator | clusters | bias [dex] | scatter [dex] | 68 % | 95 % | within 3σ |")
    say("|---|---:|---:|---:|---|---|---|")
    grid = np.linspace(13.5, 15.5, 401)
    for label, model in models.items():
        features, usable, log_post = model.posteriors(test_members, grid)
        truth_used = match_clusters(features, test_truth, "log_mass")[usable]
        inside = (truth_used > grid[0]) & (truth_used < grid[-1])  # the quoted range: truths outside it have cdf 0/1
        cdf = grid_cdf(log_post[inside], grid, truth_used[inside])
        median = np.asarray(estimate_mass(test_members, model)["log_mass_median"])[usable][inside]
        cells, ok = [], True
        for level in (0.68, 0.95):
            hit = float(np.mean((cdf > (1 - level) / 2) & (cdf < (1 + level) / 2)))
            low, high = _band(len(cdf), level)
            ok &= low <= hit <= high
            cells.append(f"{hit:.3f} [{low:.3f}, {high:.3f}]")
        residual = median - truth_used[inside]
        say(f"| {label} | {len(cdf)} | {residual.mean():+.3f} | {residual.std():.3f} | " + " | ".join(cells)
            + f" | {'yes' if ok else 'NO'} |")

    # ------------------------------------------------------------------ sub-sampling on mocks
    say("")
    say("## Stability under random sub-sampling (held-out mocks)")
    say("")
    say(f"{args.per_mass} clusters per mass; each galaxy kept with probability f; posterior medians under a flat "
        "prior on the whole training range 13.3–15.7 (so no quoting edge pulls them). Default mocks: 400 redshifts "
        "per cluster before sub-sampling; old mocks: the count their mass gives. Cells: bias / scatter of "
        "log10(M_est/M_true) [dex] (clusters with an estimate).")
    say("")
    fractions = (1.0, 0.5, 0.25, 0.1)
    say("| mocks and model | true log M | " + " | ".join(f"f = {f:g}" for f in fractions) + " |")
    say("|---|---:|" + "---|" * len(fractions))
    rng = np.random.default_rng(7)
    for label, model, kwargs in (("default (survey) mocks, default MDN", mdn, {"n_redshifts": (400, 400)}),
                                 ("old count-tracking mocks and MDN", old,
                                  {"sampling": "richness", "interloper_ratio": 0.25})):
        for log_mass in (13.8, 14.3, 14.8, 15.3):
            held, held_truth = simulate_clusters(log_mass=np.full(args.per_mass, log_mass), seed=int(log_mass * 10),
                                                 **kwargs)
            cells = []
            for fraction in fractions:
                sample = held if fraction == 1 else _thin(held, fraction, rng)
                table = estimate_mass(sample, model, prior="flat", log_mass_range=(13.3, 15.7))
                median = np.asarray(table["log_mass_median"], dtype=float)
                median = median[np.isfinite(median)] - log_mass
                cells.append(f"{median.mean():+.3f} / {median.std():.3f} (n={median.size})")
            say(f"| {label} | {log_mass:.1f} | " + " | ".join(cells) + " |")

    # ------------------------------------------------------------------ Coma's mass
    say("")
    say("## Coma's M200c")
    say("")
    say("Median and 68 % interval; log10(M200c / M_sun) at h = 0.7, and log10(M200c / h⁻¹ M_sun) (= the former + "
        "log10 0.7 = −0.155). 'training prior': flat in log M on the quoted 13.5–15.5 (the default mocks' masses); "
        "'mass function': the Schechter form `MassFunction()` (steep, α = 1, M* = 10^14.8), by reweighting.")
    say("")
    say("| estimator | prior | members used | log M [M_sun, h = 0.7] | log M [h⁻¹ M_sun] | flags |")
    say("|---|---|---:|---|---|---|")
    schechter = MassFunction()
    results = {}

    def row(label, prior_label, n, low, mid, high, flags=""):
        results[(label, prior_label)] = (low, mid, high)
        h_mid = float(to_h_inverse(mid))
        say(f"| {label} | {prior_label} | {n} | {mid:.2f} (+{high - mid:.2f}/−{mid - low:.2f}) | {h_mid:.2f} "
            f"(+{high - mid:.2f}/−{mid - low:.2f}) | {flags} |")

    for label, model in {**models, "old count-tracking MDN": old}.items():
        source = coma_raw if model is old else coma
        for prior_label, prior in (("training", "training"), ("mass function", schechter)):
            table = estimate_mass(source, model, prior=prior)
            row(label, prior_label, int(table["n_members"][0]), *_summary(table), table["flags"][0])
    sigma_mass, sigma_error = baseline.predict(coma_features["sigma_gapper"])
    row("σ–M power law (gapper σ)", "none (inverted fit)", len(coma), float(sigma_mass[0] - sigma_error[0]),
        float(sigma_mass[0]), float(sigma_mass[0] + sigma_error[0]))

    # ------------------------------------------------------------------ robustness
    say("")
    say(f"### Random sub-samples of Coma's cylinder ({args.subsamples} per size, training prior)")
    say("")
    say("| model | members drawn | mean of medians | spread (std) of medians | mean 68 % half-width |")
    say("|---|---:|---:|---:|---:|")
    subsample_medians = {}
    for label, model in (("default MDN", mdn), ("old count-tracking MDN", old)):
        for size in (50, 100, 200):
            medians, widths = [], []
            for _ in range(args.subsamples):
                pick = np.sort(rng.choice(len(coma_raw), size, replace=False))
                low, mid, high = _summary(estimate_mass(coma_raw[pick], model))
                medians.append(mid)
                widths.append((high - low) / 2)
            subsample_medians[(label, size)] = medians
            say(f"| {label} | {size} | {np.mean(medians):.3f} | {np.std(medians):.3f} | {np.mean(widths):.3f} |")
    # the same sub-sampling on mock clusters like Coma: with fewer galaxies the contamination of a cylinder is less
    # well measured, and the posterior leans on the mocks' own spread of interloper ratios (0–0.5 per cluster)
    say("")
    say(f"The same on mock clusters like Coma (log M = 15.0, {len(coma_raw)} redshifts; {args.per_mass // 4} "
        "clusters; default MDN): mean of the medians minus the true log M, by interloper ratio of the mock.")
    say("")
    sizes = (50, 100, 200, len(coma_raw))
    say("| mock interloper ratio | " + " | ".join(f"{n} members" for n in sizes) + " |")
    say("|---|" + "---:|" * len(sizes))
    for ratio_label, ratio in (("0 (a clean cylinder)", 0.0), ("0–0.5 (the default)", (0.0, 0.5))):
        held, _ = simulate_clusters(log_mass=np.full(args.per_mass // 4, 15.0), n_redshifts=(len(coma_raw),) * 2,
                                    interloper_ratio=ratio, seed=15)
        order = rng.random(len(held))
        rank = pd.Series(order).groupby(np.asarray(held["cluster_id"])).rank(method="first").to_numpy()
        cells = []
        for size in sizes:
            median = np.asarray(estimate_mass(held[rank <= size], mdn)["log_mass_median"], dtype=float)
            cells.append(f"{np.nanmean(median) - 15.0:+.3f}")
        say(f"| {ratio_label} | " + " | ".join(cells) + " |")

    say("")
    say("### Other centres (default MDN, training prior)")
    say("")
    centres = [("Abell 1656, NED (the default)", COMA_CENTRE),
               ("NGC 4874, NED position from the shipped field", SkyCoord(194.89883 * u.deg, 27.95926 * u.deg)),
               ("NGC 4889, NED/SIMBAD 13h00m08.13s +27°58′37″ (not in the field)",
                SkyCoord("13h00m08.13s", "+27d58m37.0s")),
               ("X-ray: RXC J1259.7+2756 (Böhringer et al. 2000), the designation's 12h59.7m +27°56′ (±1′)",
                SkyCoord("12h59m42s", "+27d56m00s"))]
    say("| centre | RA, Dec [deg] | members | σ_gapper [km/s] | log M [M_sun, h = 0.7] |")
    say("|---|---|---:|---:|---|")
    for label, centre in centres:
        selected = members_from_field(field, centre)
        low, mid, high = _summary(estimate_mass(selected, mdn))
        sigma = cluster_features(selected)["sigma_gapper"][0].to_value(u.km / u.s)
        say(f"| {label} | {centre.ra.deg:.4f}, {centre.dec.deg:.4f} | {len(selected)} | {sigma:.0f} | "
            f"{mid:.2f} (+{high - mid:.2f}/−{mid - low:.2f}) |")

    if not args.skip_apertures:
        say("")
        say("### Other apertures (an MDN trained, with the defaults, on mocks cut to the same cylinder)")
        say("")
        say("| aperture | members | log M [M_sun, h = 0.7] | log M [h⁻¹ M_sun] | training |")
        say("|---|---:|---|---|---|")
        for aperture in (1.0, 1.6, 1.6 / H):
            if aperture == 1.6:
                model, note = mdn, "the default MDN"
            else:
                t0 = time.perf_counter()
                cut_members, cut_truth = simulate_clusters(n_train, aperture=aperture * u.Mpc, seed=0)
                model = train_mass_model(cut_members, cut_truth, progress=False)
                note = f"{time.perf_counter() - t0:.0f} s"
            selected = members_from_field(field, COMA_CENTRE, aperture=aperture * u.Mpc)
            low, mid, high = _summary(estimate_mass(selected, model))
            say(f"| {aperture:.2f} Mpc ({aperture * H:.2f} h⁻¹ Mpc) | {len(selected)} | {mid:.2f} "
                f"(+{high - mid:.2f}/−{mid - low:.2f}) | {float(to_h_inverse(mid)):.2f} | {note} |")

    # ------------------------------------------------------------------ literature
    say("")
    say("## Literature, in both conventions")
    say("")
    say("A mass quoted in h⁻¹ M_sun is converted to M_sun at h = 0.7 by subtracting log10 0.7 (adding 0.155 dex); "
        "one in h70⁻¹ M_sun is already at h = 0.7 and in h⁻¹ M_sun after adding log10 0.7. Only the unit changes: "
        "each mass keeps its own definition (M200c; Kubo et al.'s M200 is read here as 200 × critical as well).")
    say("")
    say("| source | as published | log M [M_sun, h = 0.7] | log M [h⁻¹ M_sun] |")
    say("|---|---|---|---|")
    literature = []
    for label, value, plus, minus, unit, note in LITERATURE:
        at_h = value - math.log10(H) if unit == "h-1" else value
        literature.append((label, at_h, plus, minus))
        say(f"| {label} | {note} | {at_h:.2f} (+{plus:.2f}/−{minus:.2f}) | {float(to_h_inverse(at_h)):.2f} "
            f"(+{plus:.2f}/−{minus:.2f}) |")

    say("")
    say(f"Run time: {time.perf_counter() - started:.0f} s on {_machine()}.")
    say(f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} {' '.join(['python'] + sys.argv)}`")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        figure = args.markdown.with_suffix(".png")
        _plot(mdn, models["deep ensemble (5 MDNs)"], baseline, coma, coma_raw, coma_features, schechter, literature,
              subsample_medians, figure, reweight)
        lines.append(f"\nFigure: `{figure.name}` (left: Coma's posteriors and the literature; right: the cylinder's "
                     "galaxies in projected phase space).")
        text = args.markdown.read_text() if args.markdown.exists() else ""
        notes = text[text.index("<!-- notes -->"):] if "<!-- notes -->" in text else "<!-- notes -->\n"
        args.markdown.write_text("# Coma's dynamical mass (benchmarks/clusters_coma.py)\n\n" + "\n".join(lines)
                                 + "\n\n" + notes)
        print(f"wrote {args.markdown} and {figure}")


def _plot(mdn, ensemble, baseline, coma, coma_raw, coma_features, schechter, literature, subsample_medians, path,
          reweight) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(13.5, 15.5, 401)
    fig, (ax, ax_phase) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    for label, model in (("MDN", mdn), ("deep ensemble", ensemble)):
        _, _, log_post = model.posteriors(coma, grid)
        ax.plot(grid, np.exp(log_post[0]), label=f"{label}, training prior (flat)")
        mf = reweight(log_post, grid, model.training_prior, schechter)
        ax.plot(grid, np.exp(mf[0]), ls="--", label=f"{label}, mass-function prior")
    mean, error = (float(v[0]) for v in baseline.predict(coma_features["sigma_gapper"]))
    ax.plot(grid, np.exp(-0.5 * ((grid - mean) / error) ** 2) / (error * np.sqrt(2 * np.pi)), color="0.5",
            label="σ–M power law (gapper σ)")
    top = ax.get_ylim()[1]
    for i, (label, value, plus, minus) in enumerate(literature):
        y = top * (0.92 - 0.08 * i)
        ax.errorbar([value], [y], xerr=[[minus], [plus]], fmt="s", capsize=3, label=label.split(" (")[0])
    for (label, size), medians in subsample_medians.items():
        if label == "default MDN" and size == 100:
            ax.plot(medians, np.full(len(medians), top * 0.02), "|", color="k", ms=8,
                    label="default MDN, medians of 100-member sub-samples")
    ax.set(xlabel="log10(M200c / M_sun), h = 0.7", ylabel="posterior density", title="Coma: M200c")
    ax.legend(fontsize=6.5, loc="center left")
    kept = np.isin(np.asarray(coma_raw["galaxy_id"]), np.asarray(coma["galaxy_id"]))
    ax_phase.plot(coma_raw["R_proj"].value[kept], coma_raw["v_los"].value[kept], ".", ms=2.5, label="members")
    if (~kept).any():
        ax_phase.plot(coma_raw["R_proj"].value[~kept], coma_raw["v_los"].value[~kept], "x", ms=4, color="C3",
                      label=f"rejected ({coma.meta['membership']['method']})")
    ax_phase.set(xlabel="R_proj [Mpc]", ylabel="v_los [km/s]",
                 title=f"Coma's cylinder: {len(coma_raw)} galaxies, {len(coma)} members")
    ax_phase.legend(fontsize=7)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
