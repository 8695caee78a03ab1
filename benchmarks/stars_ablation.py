"""Exact stellar model vs learned map, and what a network's own error does to σ (issue 4).

Part 1, the ablation: a stellar map is trained as ``train_stellar_map`` does
by default (20 000 ZAMS points, 300 epochs), and on ``--fields`` mock fields
of ``--stars`` stars σ and the IMF slope are inferred twice, with the exact
Tout et al. ZAMS model and with the network as the delta map. It prints the
learned-minus-exact shift of the σ median in units of the exact posterior's
standard deviation (the issue asks that they agree within the width, |shift| < 1).

Part 2, network uncertainty: a deep ensemble of five deliberately poor maps
(300 training points, two hidden layers of 32) on the first field — each
member trusted alone, and the five pooled with equal weights
(``map_uncertainty="pool"``) — with the truth's distance from each median in
posterior standard deviations.

Runs are spread over ``--workers`` processes (one torch thread each).

Usage::

    .venv/bin/python benchmarks/stars_ablation.py --markdown stars_ablation.md   # ~25 min on 2 cores
    .venv/bin/python benchmarks/stars_ablation.py --quick --fields 1 --stars 300 --n-steps 400  # smoke run
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

FREE = ["sigma", "imf_slope"]


def _infer(task: tuple) -> dict:
    kind, map_path, n_stars, seed, n_steps = task
    import torch

    torch.set_num_threads(1)
    from astrobayes.stars import exact_stellar_delta_map, infer_stefan_boltzmann, load_stellar_map, simulate_field
    from astrobayes.stars.simulate import SIGMA_UNIT

    field = simulate_field(n_stars, seed=seed)
    stellar_map = exact_stellar_delta_map() if map_path is None else load_stellar_map(map_path)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = infer_stefan_boltzmann(field, stellar_map, free=FREE, n_steps=n_steps, seed=seed, progress=False)
    draws = result.sigma.to_value(SIGMA_UNIT)
    truth = field.meta["sigma"].to_value(SIGMA_UNIT)
    return {"kind": kind, "seed": seed, "median": float(np.median(draws)), "std": float(draws.std()),
            "pull": float((np.median(draws) - truth) / draws.std()), "seconds": time.perf_counter() - start}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fields", type=int, default=5)
    parser.add_argument("--stars", type=int, default=2000)
    parser.add_argument("--n-steps", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a small learned map (smoke run; not for README)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.workers)
    from astrobayes.stars import save_stellar_map, stellar_map_errors, train_stellar_map

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        good = train_stellar_map(seed=0, progress=False, **({"n_train": 2000, "epochs": 20} if args.quick else {}))
        good_s = time.perf_counter() - start
        good_errors = stellar_map_errors(good).meta["summary"]
        poor = train_stellar_map(n_train=300, hidden=(32, 32), ensemble=5, epochs=150, seed=1, progress=False)
        poor_errors = stellar_map_errors(poor).meta["summary"]
        paths = {"learned": str(Path(tmp) / "good"), "pooled": str(Path(tmp) / "poor")}
        save_stellar_map(good, paths["learned"])
        save_stellar_map(poor, paths["pooled"])
        for k, member in enumerate(poor.members):
            member.stellar_map_domain = poor.stellar_map_domain
            paths[f"member {k}"] = str(Path(tmp) / f"member{k}")
            save_stellar_map(member, paths[f"member {k}"])
        seeds = [100 + i for i in range(args.fields)]
        tasks = [(kind, path, args.stars, seed, args.n_steps) for seed in seeds
                 for kind, path in (("exact", None), ("learned", paths["learned"]))]
        tasks += [(kind, paths[kind], args.stars, seeds[0], args.n_steps)
                  for kind in ["pooled"] + [f"member {k}" for k in range(5)]]
        torch.set_num_threads(1)
        with mp.get_context("spawn").Pool(args.workers) as pool:
            rows = pool.map(_infer, tasks)
    by = {(r["kind"], r["seed"]): r for r in rows}
    lines = [f"Learned map: {good.stellar_map_domain['n_train']} training points, trained in {good_s:.0f} s; median "
             f"|ΔR/R| {good_errors['radius']['median']:.2%}, |ΔT/T| {good_errors['teff']['median']:.2%}. "
             f"{args.stars} stars per field, free σ and IMF slope, {args.n_steps} emcee steps.", "",
             "| field seed | σ exact (median ± std) | σ learned | learned − exact [exact std] | truth pull exact / learned |",
             "|---:|---|---|---:|---|"]
    for seed in seeds:
        e, learned = by[("exact", seed)], by[("learned", seed)]
        lines.append(f"| {seed} | {e['median']:.4e} ± {e['std']:.1e} | {learned['median']:.4e} ± {learned['std']:.1e} "
                     f"| {(learned['median'] - e['median']) / e['std']:+.2f} | {e['pull']:+.2f} / {learned['pull']:+.2f} |")
    lines += ["", f"Poor maps (300 training points, hidden (32, 32)): median |ΔR/R| "
                  f"{poor_errors['radius']['median']:.2%}, |ΔT/T| {poor_errors['teff']['median']:.2%} (ensemble mean); "
                  f"field seed {seeds[0]}.", "",
              "| map | σ median ± std | truth pull [std] |", "|---|---|---:|"]
    for kind in ["exact", "pooled"] + [f"member {k}" for k in range(5)]:
        r = by[(kind, seeds[0])]
        label = {"exact": "exact ZAMS model", "pooled": "5 poor networks, pooled"}.get(kind, f"poor network {kind[-1]} alone")
        lines.append(f"| {label} | {r['median']:.4e} ± {r['std']:.1e} | {r['pull']:+.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
