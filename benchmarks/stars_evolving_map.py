"""Accuracy and training cost of the evolving stellar map f(log M, [Fe/H], τ) → (log R, log T_eff) (issue 21).

``train_stellar_map(model="evolving")`` with its DEFAULT settings (20 000
points in 0.1–30 M_sun, −1 ≤ [Fe/H] ≤ 0.15, 0 ≤ τ ≤ 1; three hidden layers of
64; 150 epochs, batch 512, learning rate 5e-3, cosine schedule) is trained once
on one torch thread and compared with the exact Hurley, Pols & Tout (2000)
model (:func:`astrobayes.stars.ms_log_radius_teff`) on a held-out grid of
64 × 64 masses and metallicities at 21 fractional ages (86 016 stars, none of
them a training point). It prints the median, 95th, 99th percentile and maximum
of |ΔR/R| and |ΔT_eff/T_eff|, over the whole grid, away from the
end-of-main-sequence hook (τ ≤ 0.95) and by mass band, and the wall-clock
and CPU time of the training. ``--tuned`` adds a separately labelled row with
a larger network trained longer (not the default).

Usage (the numbers in results/stars_evolving_map.md)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/stars_evolving_map.py --tuned \\
        --markdown benchmarks/results/stars_evolving_map.md   # ~2 min (load ~6 on the shared 2 cores)
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def _summary(errors, mask) -> dict:
    out = {}
    for quantity in ("radius", "teff"):
        absolute = np.abs(np.asarray(errors[f"{quantity}_rel_error"]))[mask]
        out[quantity] = [np.median(absolute), np.percentile(absolute, 95), np.percentile(absolute, 99), absolute.max()]
    return out


def _rows(label: str, errors) -> list[str]:
    tau = np.asarray(errors["tau"])
    log_mass = np.asarray(errors["log_mass"])
    masks = [("all τ", np.ones_like(tau, dtype=bool)), ("τ ≤ 0.95", tau <= 0.95), ("τ = 1 (TMS)", tau == 1.0)]
    for low, high in [(0.1, 0.5), (0.5, 2.0), (2.0, 30.0)]:
        masks.append((f"{low:g}–{high:g} M_sun, τ ≤ 0.95", (tau <= 0.95) & (log_mass >= np.log10(low) - 1e-9)
                      & (log_mass <= np.log10(high) + 1e-9)))
    rows = []
    for name, mask in masks:
        stats = _summary(errors, mask)
        cells = " | ".join(f"{100 * v:.2g}" for quantity in ("radius", "teff") for v in stats[quantity])
        rows.append(f"| {label} | {name} | {int(mask.sum())} | {cells} |")
    return rows


def _train(label: str, **options):
    import torch

    torch.set_num_threads(1)
    from astrobayes.stars import stellar_map_errors, train_stellar_map

    wall, cpu = time.perf_counter(), time.process_time()
    stellar_map = train_stellar_map(model="evolving", progress=False, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    errors = stellar_map_errors(stellar_map)  # 64 × 64 × 21 grid over the map's domain
    return label, wall, cpu, errors


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuned", action="store_true", help="also train a larger network for longer (labelled)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    import torch.optim  # noqa: F401  (torch's one-off optimiser import, kept out of the timing)

    start, load = time.perf_counter(), os.getloadavg()[0]
    runs = [_train("default")]
    if args.tuned:
        runs.append(_train("tuned: hidden (128, 128, 128), 400 epochs", hidden=(128, 128, 128), epochs=400))
    header = ("| map | stars | n | R median % | R p95 % | R p99 % | R max % | T median % | T p95 % | T p99 % "
              "| T max % |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = ["Evolving stellar map vs the exact Hurley, Pols & Tout (2000) main sequence: relative errors in "
             "percent on a held-out 64 × 64 × 21 grid (0.1–30 M_sun, −1 ≤ [Fe/H] ≤ 0.15, τ = 0, 0.05, …, 1).", ""]
    for label, wall, cpu, _ in runs:
        lines.append(f"- {label}: trained in {wall:.0f} s wall, {cpu:.0f} s CPU (one torch thread)")
    lines += ["", header]
    for label, _, _, errors in runs:
        lines += _rows(label, errors)
    lines += ["", f"Command: `OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/stars_evolving_map.py"
              f"{' --tuned' if args.tuned else ''} --markdown ...`; machine: {platform.machine()}, "
              f"{platform.processor() or 'cpu'}, shared 2-core VM (1-min load average {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end); total run time {time.perf_counter() - start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
