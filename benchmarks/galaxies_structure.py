"""Sérsic structural inference from stamps: NPE calibration, accuracy vs S/N, NPE vs per-galaxy emcee, population fits.

The set-up is the default :class:`~astrobayes.galaxies.StampSimulator`: 32 × 32 stamps, a Gaussian PSF of
FWHM 2.5 px, Gaussian background noise σ = 1 per pixel, and the box prior of
:func:`~astrobayes.galaxies.structural_prior` (log₁₀ F ∈ [2, 3.5], r½ ∈ [1, 8] px log-uniform, n ∈ [0.5, 5],
e₁, e₂ ∈ [−0.5, 0.5], centroid within ±1.5 px). It prints:

1. training: simulations, seconds, epochs and the best validation loss of the NPE (CNN with a flattened last
   feature map → 5-layer neural spline flow);
2. calibration over ``--test`` held-out stamps: the fraction of stamps whose central 68 % / 95 % intervals
   contain the truth, per parameter, with the binomial 3σ band p ± 3√(p(1 − p)/n);
3. accuracy vs signal-to-noise: rms of (posterior median − truth) and the mean posterior standard deviation per
   parameter in S/N bins (matched-filter S/N of the noiseless stamp);
2b. NPE + importance sampling (:meth:`~astrobayes.galaxies.StructurePosterior.importance_sample`: the NPE's
   draws reweighted by the renderer's pixel likelihood, adaptive rounds for narrow posteriors) over the first
   ``--importance-test`` held-out stamps: coverage from the weighted quantiles, effective sample sizes;
4. NPE against per-galaxy emcee (:func:`~astrobayes.galaxies.fit_stamp_mcmc`, the renderer inside a Gaussian
   pixel likelihood, MAP start, ``--mcmc-steps`` × 32 walkers) on ``--mcmc`` stamps: C2ST accuracy between the
   two posteriors per stamp (0.5 = indistinguishable), also for NPE + importance sampling and for the emcee
   chain's two halves (the reference's noise floor), and stamps per second for all routes;
5. the size–luminosity population model over ``--populations`` replicates of ``--population-size`` galaxies on
   log₁₀ r½ = 0.45 + 0.3 (log₁₀ F − 2.75) + N(0, 0.1²), fitted from ``--population-draws`` NPE draws per
   galaxy: coverage of (a, b, σ) and mean bias.

Usage::

    .venv/bin/python benchmarks/galaxies_structure.py --markdown benchmarks/results/galaxies_structure.md
    .venv/bin/python benchmarks/galaxies_structure.py --train 5000 --epochs 3 --test 200 --mcmc 1 --populations 2
"""
from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

SNR_BINS = (0.0, 10.0, 20.0, 40.0, 80.0, 160.0, np.inf)
RELATION = {"a": 0.45, "b": 0.3, "sigma": 0.1}


def _band(n: int, p: float) -> tuple[float, float]:
    half = 3 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def _coverage_table(say, names, true: np.ndarray, interval) -> bool:
    """Print per-parameter 68 %/95 % coverage with the 3σ band; interval(level) → (2, m, d) bounds. All in band?"""
    say("| parameter | 68 % coverage | 95 % coverage |")
    say("|---|---|---|")
    bounds = {level: interval(level) for level in (0.68, 0.95)}
    all_ok = True
    for k, name in enumerate(names):
        cells = []
        for level, (lo, hi) in bounds.items():
            fraction = float(np.mean((true[:, k] >= lo[:, k]) & (true[:, k] <= hi[:, k])))
            low, high = _band(len(true), level)
            all_ok &= low <= fraction <= high
            cells.append(f"{fraction:.3f} [{low:.3f}, {high:.3f}]")
        say(f"| {name} | {cells[0]} | {cells[1]} |")
    return all_ok


def _theta(truth, names) -> np.ndarray:
    return np.stack([np.asarray(truth[name], dtype=float) for name in names], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=50000, help="training simulations")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--test", type=int, default=1000, help="held-out stamps for calibration")
    parser.add_argument("--draws", type=int, default=1000, help="NPE draws per stamp")
    parser.add_argument("--mcmc", type=int, default=10, help="stamps fitted with emcee")
    parser.add_argument("--mcmc-steps", type=int, default=4000)
    parser.add_argument("--importance", type=int, default=4000,
                        help="proposals per stamp for NPE + importance sampling (0: skip that route)")
    parser.add_argument("--importance-test", type=int, default=500,
                        help="held-out stamps for the calibration of NPE + importance sampling")
    parser.add_argument("--populations", type=int, default=30)
    parser.add_argument("--population-size", type=int, default=300)
    parser.add_argument("--population-draws", type=int, default=64, help="NPE draws per galaxy in the population fit")
    parser.add_argument("--population-steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", type=Path, default=None,
                        help="reuse a posterior saved here (trained and saved there when it does not exist)")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from astrobayes.galaxies import (PARAMETERS, StampSimulator, StructurePosterior, fit_size_luminosity,
                                     fit_stamp_mcmc, simulate_size_luminosity, simulate_stamps,
                                     train_structure_posterior)
    from astrobayes.inference.diagnostics import c2st

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    simulator = StampSimulator()
    say(f"# Galaxy structure: {simulator}, {args.threads} thread(s), torch {torch.__version__}")
    say()

    # 1. training --------------------------------------------------------------------------------
    start = time.perf_counter()
    theta = simulator.prior.sample(2000, seed=123).numpy()
    simulator.noiseless(theta)
    render_rate = 2000 / (time.perf_counter() - start)
    if args.model is not None and Path(f"{args.model}.simulator.json").exists():
        posterior = StructurePosterior.load(args.model)
        say(f"loaded the posterior from {args.model}")
    else:
        start = time.perf_counter()
        posterior = train_structure_posterior(simulator, args.train, seed=0, epochs=args.epochs,
                                              device=args.device, progress=False)
        history = posterior.posterior.estimator.history
        say(f"## 1. Training\n\n{args.train} simulations, {len(history.train_loss)} epochs (best {history.best_epoch}), "
            f"best validation loss {history.best_val_loss:.3f}, {time.perf_counter() - start:.0f} s in all "
            f"({history.seconds / len(history.train_loss):.1f} s per epoch on {history.device}); "
            f"rendering {render_rate:.0f} noiseless stamps/s")
        if args.model is not None:
            posterior.save(args.model)
    say()

    # 2. calibration -----------------------------------------------------------------------------
    stamps, truth = simulate_stamps(args.test, simulator, seed=2024)
    start = time.perf_counter()
    draws = posterior.sample(stamps, args.draws, seed=1)
    npe_seconds = time.perf_counter() - start
    true = _theta(truth, PARAMETERS)
    say(f"## 2. Calibration over {args.test} held-out stamps ({args.draws} draws each, "
        f"{args.test / npe_seconds:.0f} stamps/s)\n")

    def npe_interval(level):
        return np.percentile(draws, [50 * (1 - level), 50 * (1 + level)], axis=1)  # (2, m, 7)

    all_ok = _coverage_table(say, PARAMETERS, true, npe_interval)
    say(f"\nall inside their 3σ bands: {all_ok}\n")

    # 2b. NPE + importance sampling ---------------------------------------------------------------
    if args.importance and args.importance_test:
        m = min(args.importance_test, args.test)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = posterior.importance_sample(stamps[:m], args.importance, seed=3, progress=False)
        is_seconds = time.perf_counter() - start
        ess = np.array([r.ess for r in results])
        rounds = np.array([r.rounds for r in results])
        say(f"## 2b. NPE + importance sampling: calibration over the first {m} held-out stamps "
            f"({args.importance} renderer calls per round, {m / is_seconds:.2f} stamps/s)\n")
        say(f"effective sample size: median {np.median(ess):.0f}, 5th percentile {np.percentile(ess, 5):.0f}, "
            f"min {ess.min():.1f}; rounds 1/2/3: {np.sum(rounds == 1)}/{np.sum(rounds == 2)}/{np.sum(rounds >= 3)}; "
            f"{sum('effective sample size' in str(w.message) for w in caught)} stamp(s) warned of ESS < 50\n")

        def weighted_interval(level):
            return np.stack([r.quantile([0.5 * (1 - level), 0.5 * (1 + level)]) for r in results], axis=1)

        is_ok = _coverage_table(say, PARAMETERS, true[:m], weighted_interval)
        say(f"\nall inside their 3σ bands: {is_ok}\n")

    # 3. accuracy vs S/N ---------------------------------------------------------------------------
    median = np.median(draws, axis=1)
    spread = np.std(draws, axis=1)
    snr = np.asarray(truth["snr"])
    say("## 3. Accuracy vs S/N: rms(median − truth) / mean posterior std\n")
    say("| S/N | stamps | log₁₀ F [dex] | log₁₀ r½ [dex] | n | e₁, e₂ | x₀, y₀ [px] |")
    say("|---|---:|---|---|---|---|---|")
    groups = {"F": [0], "r": [1], "n": [2], "e": [3, 4], "x": [5, 6]}
    for low, high in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        rows = (snr >= low) & (snr < high)
        if rows.sum() < 5:
            continue
        cells = []
        for columns in groups.values():
            rms = math.sqrt(np.mean((median[rows][:, columns] - true[rows][:, columns]) ** 2))
            cells.append(f"{rms:.3f} / {np.mean(spread[rows][:, columns]):.3f}")
        label = f"{low:.0f}–{high:.0f}" if np.isfinite(high) else f"> {low:.0f}"
        say(f"| {label} | {rows.sum()} | " + " | ".join(cells) + " |")
    say()

    # 4. NPE vs emcee ----------------------------------------------------------------------------
    if args.mcmc:
        say(f"## 4. NPE vs per-galaxy emcee ({args.mcmc} stamps, {args.mcmc_steps} steps × 32 walkers)\n")
        say("C2ST columns: NPE draws, NPE + importance sampling (IS) draws resampled by weight, and the emcee "
            "chain's first half against its second half (the reference's own noise floor). The IS comparison "
            "uses as many draws as its effective sample size (at most 4000) on both sides, because "
            "resampling beyond it repeats draws, which a classifier can learn.\n")
        say("| stamp | S/N | emcee draws | max τ | emcee s | C2ST NPE | IS ESS | IS s | C2ST IS (draws) "
            "| C2ST emcee halves |")
        say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        scores, is_scores, floors, seconds, is_took = [], [], [], [], []
        chosen = np.arange(args.mcmc)
        for index in chosen:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = fit_stamp_mcmc(stamps[int(index)], simulator, n_steps=args.mcmc_steps, seed=int(index),
                                        progress=False)
            took = result.meta["seconds_including_map"]
            chain = result.samples
            n = min(len(chain), 4000)
            rng = np.random.default_rng(int(index))
            reference = chain[rng.choice(len(chain), n, replace=False)]
            ours = posterior.sample(stamps[int(index)], n, seed=int(index))[0]
            score = c2st(reference, ours, seed=0)
            half = len(chain) // 2
            floor = c2st(chain[:half], chain[half:2 * half], seed=0)
            scores.append(score)
            floors.append(floor)
            seconds.append(took)
            short = " (short chain)" if any("chain is only" in str(w.message) for w in caught) else ""
            is_cells = "– | – | –"
            if args.importance:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    weighted = posterior.importance_sample(stamps[int(index)], args.importance, seed=int(index),
                                                           progress=False)[0]
                is_took.append(time.perf_counter() - start)
                n_is = int(min(n, weighted.ess))
                if n_is >= 20:
                    is_score = c2st(reference[:n_is], weighted.resample(n_is, seed=int(index)), seed=0)
                    is_scores.append(is_score)
                    is_cells = f"{weighted.ess:.0f} | {is_took[-1]:.1f} | {is_score:.3f} ({n_is})"
                else:
                    is_cells = f"{weighted.ess:.0f} | {is_took[-1]:.1f} | – (ESS < 20)"
            say(f"| {index} | {snr[index]:.1f} | {n} | {np.max(result.autocorr_time):.0f}{short} | {took:.0f} | "
                f"{score:.3f} | {is_cells} | {floor:.3f} |")
        say(f"\nC2ST NPE mean {np.mean(scores):.3f}, max {np.max(scores):.3f}; emcee halves mean {np.mean(floors):.3f}"
            + (f"; NPE + IS mean {np.mean(is_scores):.3f}, max {np.max(is_scores):.3f}" if is_scores else ""))
        say(f"\nemcee {np.mean(seconds):.0f} s per stamp ({1 / np.mean(seconds):.4f} stamps/s) vs NPE "
            f"{args.test / npe_seconds:.0f} stamps/s ({args.draws} draws each): "
            f"{args.test / npe_seconds * np.mean(seconds):.0f}× faster"
            + (f"; NPE + IS {np.mean(is_took):.1f} s per stamp ({np.mean(seconds) / np.mean(is_took):.1f}× faster "
               "than emcee)" if is_took else "") + "\n")

    # 5. size–luminosity population ---------------------------------------------------------------
    if args.populations:
        say(f"## 5. Size–luminosity relation: {args.populations} populations × {args.population_size} galaxies\n")
        hits = {(name, level): [] for name in RELATION for level in (0.68, 0.95)}
        medians = {name: [] for name in RELATION}
        start = time.perf_counter()
        for replicate in range(args.populations):
            pop_stamps, _ = simulate_size_luminosity(args.population_size, simulator, seed=10_000 + replicate,
                                                     **RELATION)
            pop_draws = posterior.sample(pop_stamps, args.population_draws, seed=replicate)
            keep = np.all(np.isfinite(pop_draws), axis=(1, 2))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = fit_size_luminosity(pop_draws[keep], simulator.prior, n_steps=args.population_steps,
                                             seed=replicate, progress=False)
            for j, name in enumerate(RELATION):
                samples = result.samples[:, j]
                medians[name].append(np.median(samples))
                for level in (0.68, 0.95):
                    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
                    hits[(name, level)].append(lo <= RELATION[name] <= hi)
        say("| parameter | truth | mean median ± s.e. | 68 % coverage | 95 % coverage |")
        say("|---|---:|---|---|---|")
        for name, value in RELATION.items():
            values = np.asarray(medians[name])
            cells = []
            for level in (0.68, 0.95):
                low, high = _band(args.populations, level)
                cells.append(f"{np.mean(hits[(name, level)]):.2f} [{low:.2f}, {high:.2f}]")
            say(f"| {name} | {value} | {values.mean():.4f} ± {values.std(ddof=1) / math.sqrt(len(values)):.4f} | "
                f"{cells[0]} | {cells[1]} |")
        say(f"\n{(time.perf_counter() - start) / args.populations:.1f} s per population (NPE draws + emcee)")

    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
