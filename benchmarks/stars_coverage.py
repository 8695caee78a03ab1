"""Calibration of the Stefan–Boltzmann σ posterior over replicate mock fields (issue 4).

For each field size N (200 and 2000 stars by default) the script simulates
``--replicates`` fields with the physical σ and the default population
(power-law IMF of slope 2.35 on 0.5–20 M_sun, [Fe/H] ~ N(−0.2, 0.2²)
truncated to −1…+0.15), infers σ and the IMF slope with
:func:`astrobayes.stars.infer_stefan_boltzmann` (exact-quadrature marginal
likelihood, emcee, the exact ZAMS map so that only the inference is tested;
the learned map is compared in ``stars_ablation.py``), and records where the
truth falls in each posterior.

It prints, per N and parameter: the fraction of fields whose central 68 % and
95 % intervals contain the truth, with the binomial 3σ band
n·p ± 3√(n p (1 − p)) that a calibrated posterior falls in 99.7 % of the
time; the mean posterior standard deviation, and the ratio of the widths
between the two N against √(N₂/N₁).

Replicates run in ``--workers`` processes (one torch thread each) and are
appended to ``--out`` as JSON lines, so an interrupted run resumes.

Usage::

    .venv/bin/python benchmarks/stars_coverage.py                       # 100 × (200, 2000) stars, ~70 min on 2 cores
    .venv/bin/python benchmarks/stars_coverage.py --replicates 20 --sizes 200   # a quick look
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import time
import warnings
from pathlib import Path

import numpy as np

TRUTH_SLOPE = 2.35


def _one(task: tuple[int, int, int, list[str]]) -> dict:
    n_stars, seed, n_steps, free = task
    import torch

    torch.set_num_threads(1)
    from astrobayes.stars import exact_stellar_delta_map, infer_stefan_boltzmann, simulate_field
    from astrobayes.stars.simulate import SIGMA_UNIT

    field = simulate_field(n_stars, seed=seed)
    truths = {"sigma": field.meta["sigma"].to_value(SIGMA_UNIT), "imf_slope": TRUTH_SLOPE}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer_stefan_boltzmann(field, exact_stellar_delta_map(), free=free, n_steps=n_steps, seed=seed,
                                        progress=False)
    row = {"n_stars": n_stars, "seed": seed, "seconds": time.perf_counter() - start,
           "warnings": [str(w.message)[:120] for w in caught]}
    tau = result.mcmc.autocorr_time
    for j, name in enumerate(result.mcmc.names):
        draws = result.mcmc.samples[:, j]
        row[name] = {"truth": truths[name], "median": float(np.median(draws)), "std": float(draws.std()),
                     "rank": float(np.mean(draws < truths[name])), "n_draws": len(draws),
                     "tau": float(np.asarray(tau)[j])}
    return row


def _band(n: int, p: float) -> tuple[float, float]:
    half = 3 * math.sqrt(n * p * (1 - p))
    return max(0.0, (n * p - half) / n), min(1.0, (n * p + half) / n)  # a fraction cannot leave [0, 1]


def summarise(rows: list[dict], free: list[str]) -> str:
    lines = ["| N stars | parameter | fields | 68 % coverage | 95 % coverage | mean posterior std (/ truth) | "
             "median seconds |", "|---|---|---|---|---|---|---|"]
    widths = {}
    for n_stars in sorted({r["n_stars"] for r in rows}):
        subset = [r for r in rows if r["n_stars"] == n_stars]
        for name in free:
            ranks = np.array([r[name]["rank"] for r in subset])
            cells = []
            for level in (0.68, 0.95):
                covered = np.mean(np.abs(ranks - 0.5) < level / 2)
                low, high = _band(len(ranks), level)
                flag = "" if low <= covered <= high else " **outside**"
                cells.append(f"{covered:.3f} (band {low:.3f}–{high:.3f}){flag}")
            std = np.mean([r[name]["std"] for r in subset])
            widths[(n_stars, name)] = std
            relative = std / np.mean([r[name]["truth"] for r in subset])
            lines.append(f"| {n_stars} | {name} | {len(subset)} | {cells[0]} | {cells[1]} | {std:.4g} ({relative:.2%}) | "
                         f"{np.median([r['seconds'] for r in subset]):.1f} |")
    sizes = sorted({r["n_stars"] for r in rows})
    lines.append("")
    for n_stars in sizes:
        subset = [r for r in rows if r["n_stars"] == n_stars]
        for name in free:
            counts = np.histogram([r[name]["rank"] for r in subset], bins=5, range=(0, 1))[0]
            taus = [r[name]["tau"] for r in subset]
            lines.append(f"N={n_stars} {name}: truth ranks in five bins of 0.2: {'/'.join(map(str, counts))}; "
                         f"τ {min(taus):.1f}–{max(taus):.1f} steps")
    if len(sizes) == 2:
        lines.append("")
        for name in free:
            ratio = widths[(sizes[0], name)] / widths[(sizes[1], name)]
            lines.append(f"posterior width ratio {name}: std(N={sizes[0]}) / std(N={sizes[1]}) = {ratio:.2f}; "
                         f"√({sizes[1]}/{sizes[0]}) = {math.sqrt(sizes[1] / sizes[0]):.2f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--n-steps", type=int, default=1000)
    parser.add_argument("--free", default="sigma,imf_slope")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/results/stars_coverage.jsonl")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    free = args.free.split(",")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = []
    if out.exists():
        done = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    have = {(r["n_stars"], r["seed"]) for r in done}
    tasks = [(n, args.first_seed + i, args.n_steps, free) for i in range(args.replicates) for n in args.sizes
             if (n, args.first_seed + i) not in have]
    print(f"{len(done)} replicates on file, {len(tasks)} to run with {args.workers} workers")
    with mp.get_context("spawn").Pool(args.workers) as pool, out.open("a") as sink:
        for k, row in enumerate(pool.imap_unordered(_one, tasks), 1):
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            done.append(row)
            print(f"[{k}/{len(tasks)}] N={row['n_stars']} seed={row['seed']} {row['seconds']:.0f} s "
                  f"sigma rank {row['sigma']['rank']:.3f}", flush=True)
    rows = [r for r in done if r["n_stars"] in args.sizes and r["seed"] < args.first_seed + args.replicates]
    table = summarise(rows, free)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
