"""BEAMS against the naive P(Ia) > 0.5 cut: calibration and bias of Ω_m over replicate contaminated samples.

Each replicate simulates ``--n`` supernovae with :func:`astrobayes.supernovae.beams.simulate_hubble_sample` at its
default settings (flat ΛCDM, Ω_m = 0.3, 60 % Ia, contaminants 1.5 mag fainter with 0.8 mag scatter, a calibrated
P(Ia) whose quality falls with redshift; a P > 0.5 cut keeps ~6.5 % contaminants), seeded by the replicate's
index, and fits it twice with emcee (``--steps`` per walker, 32 walkers, started from the Laplace approximation
at the posterior mode):

* BEAMS (:func:`fit_beams`): every object, the two-population mixture weighted by P(Ia);
* naive (:func:`fit_naive`): objects with P(Ia) > 0.5, all fitted as Ia.

It prints, for each: the fraction of replicates whose central 68 % and 95 % intervals of Ω_m contain the truth,
with the binomial 3σ band p ± 3√(p(1 − p)/n) that a calibrated posterior falls in 99.7 % of the time; the mean
posterior median and the mean bias of Ω_m ± their standard errors, the mean posterior std, and the seconds per
fit (wall time, mode search included). Then the coverage of BEAMS's nuisance parameters, and the naive sample's
mean contamination.

Usage::

    .venv/bin/python benchmarks/supernovae_beams.py --markdown benchmarks/results/supernovae_beams.md   # ~10 min, 1 thread
    .venv/bin/python benchmarks/supernovae_beams.py --replicates 5 --steps 2000                          # a quick look
"""
from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np

TRUTHS = {"omega_m": 0.3, "w": -1.0, "abs_mag": -19.3, "sigma_ia": 0.12, "contaminant_offset": 1.5,
          "sigma_contaminant": 0.8}


def _band(n: int, p: float) -> tuple[float, float]:
    half = 3 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)  # a fraction cannot leave [0, 1]


def _coverage_cells(inside: dict[float, np.ndarray]) -> tuple[list[str], bool]:
    cells, ok = [], True
    for level, hits in inside.items():
        low, high = _band(len(hits), level)
        fraction = float(np.mean(hits))
        ok &= low <= fraction <= high
        cells.append(f"{fraction:.3f} [{low:.3f}, {high:.3f}]")
    return cells, ok


def _mean_se(values, sign: str = "+") -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():{sign}.4f} ± {values.std(ddof=1) / math.sqrt(len(values)):.4f}"


def _record(result, seconds: float, warned: int) -> dict:
    row = {"seconds": seconds, "warned": warned, "tau_max": float(np.max(result.autocorr_time))}
    for j, name in enumerate(result.names):
        draws = result.samples[:, j]
        p2, p16, p50, p84, p97 = np.percentile(draws, [2.5, 16, 50, 84, 97.5])
        truth = TRUTHS[name]
        row[name] = {"median": p50, "std": draws.std(ddof=1), "in68": p16 <= truth <= p84,
                     "in95": p2 <= truth <= p97}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=50)
    parser.add_argument("--n", type=int, default=1500, help="supernovae per replicate")
    parser.add_argument("--steps", type=int, default=None, help="steps per walker (default: fit_beams's, 4000)")
    parser.add_argument("--free-w", action="store_true", help="also fit w (longer chains by default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from astrobayes import __version__
    from astrobayes.supernovae.beams import fit_beams, fit_naive, simulate_hubble_sample

    torch.set_num_threads(args.threads)  # (m, n) tensors of ~10⁴ entries: one thread is as fast and immune to load
    lines = [f"astrobayes {__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
             f"--replicates {args.replicates} --n {args.n} --steps {args.steps or 'default'}"
             f"{' --free-w' if args.free_w else ''}", ""]

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    rows = {"BEAMS": [], "naive P(Ia) > 0.5": []}
    contamination, kept = [], []
    start_all = time.perf_counter()
    for seed in range(args.replicates):
        sample = simulate_hubble_sample(args.n, seed=seed)
        cut = sample[sample["p_ia"] > 0.5]
        contamination.append(1 - float(np.mean(cut["is_ia"])))
        kept.append(len(cut))
        for label, fit in (("BEAMS", fit_beams), ("naive P(Ia) > 0.5", fit_naive)):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                result = fit(sample, free_w=args.free_w, n_steps=args.steps, seed=seed, progress=False)
            rows[label].append(_record(result, time.perf_counter() - start, len(caught)))
        print(f"replicate {seed}: Ω_m BEAMS {rows['BEAMS'][-1]['omega_m']['median']:.3f} ± "
              f"{rows['BEAMS'][-1]['omega_m']['std']:.3f}, naive {rows['naive P(Ia) > 0.5'][-1]['omega_m']['median']:.3f}"
              f" ± {rows['naive P(Ia) > 0.5'][-1]['omega_m']['std']:.3f}, contamination {contamination[-1]:.3f} "
              f"({time.perf_counter() - start_all:.0f} s)", flush=True)

    n = args.replicates
    say(f"Ω_m over {n} replicates of {args.n} simulated supernovae (truth Ω_m = {TRUTHS['omega_m']}): fraction of "
        "replicates whose central interval contains the truth, with the binomial 3σ band p ± 3√(p(1−p)/n) in "
        "brackets; mean posterior median and mean bias (median − truth) ± standard error over replicates.")
    say()
    say("| fit | 68 % | 95 % | within 3σ | mean median Ω_m | mean bias | mean posterior std | s per fit | "
        "max τ [steps] | fits that warned |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for label, results in rows.items():
        om = [r["omega_m"] for r in results]
        cells, ok = _coverage_cells({0.68: np.array([r["in68"] for r in om]), 0.95: np.array([r["in95"] for r in om])})
        medians = np.array([r["median"] for r in om])
        say(f"| {label} | {cells[0]} | {cells[1]} | {'yes' if ok else 'NO'} | {_mean_se(medians, '')} | "
            f"{_mean_se(medians - TRUTHS['omega_m'])} | {np.mean([r['std'] for r in om]):.4f} | "
            f"{np.mean([r['seconds'] for r in results]):.1f} | {max(r['tau_max'] for r in results):.0f} | "
            f"{sum(r['warned'] > 0 for r in results)} |")
    say()
    say("Every BEAMS parameter (same replicates):")
    say()
    say("| parameter | truth | 68 % | 95 % | within 3σ | mean bias | mean posterior std |")
    say("|---|---|---|---|---|---|---|")
    for name in rows["BEAMS"][0]:
        if name not in TRUTHS:
            continue
        per = [r[name] for r in rows["BEAMS"]]
        cells, ok = _coverage_cells({0.68: np.array([r["in68"] for r in per]),
                                     0.95: np.array([r["in95"] for r in per])})
        say(f"| {name} | {TRUTHS[name]} | {cells[0]} | {cells[1]} | {'yes' if ok else 'NO'} | "
            f"{_mean_se(np.array([r['median'] for r in per]) - TRUTHS[name])} | "
            f"{np.mean([r['std'] for r in per]):.4f} |")
    say()
    say(f"Naive sample: {np.mean(kept):.0f} of {args.n} objects kept on average, contamination "
        f"{_mean_se(contamination, '')} (mean ± s.e.). Total wall time {time.perf_counter() - start_all:.0f} s.")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
