"""Member selection and interloper rejection: purity and completeness on mocks, Coma's members, speed (issue 21).

Prints, and writes to ``--markdown``:

1. on default mocks of :func:`~astrobayes.clusters.simulate_clusters` (``--clusters`` clusters, seeds
   0..``--seeds``−1): for each rejection of :func:`~astrobayes.clusters.reject_interlopers` with its default
   parameters, the purity (fraction of kept galaxies that are members), completeness (fraction of members
   kept), how many galaxies were rejected and what fraction of those were interlopers — mean and spread over
   the seeds;
2. Coma from the shipped NED field through :func:`~astrobayes.clusters.members_from_field`: the default
   cylinder (1.6 Mpc, ±2500 km/s) and the collection README's selection (1.5°, a ±4000 km/s cut wide enough
   that the rejection decides), members, the estimated redshift and σ_cz = σ(v_los)(1 + z_c), beside
   Colless & Dunn (1996, ApJ 458, 435: cz = 6917 ± 47, σ_cz = 1038 ± 60 km/s);
3. wall time of each rejection on ``--speed-clusters`` mock clusters (count-tracking ``sampling="richness"``
   mocks, ~56 galaxies per cluster, so that 10⁵ clusters fit in memory on a laptop).

Usage (the results file records the machine and the run time)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/clusters_membership.py \
        --markdown benchmarks/results/clusters_membership.md
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import astropy.units as u
import numpy as np

from astrobayes import __version__
from astrobayes.clusters import (COMA_CENTRE, COMA_FIELD, REJECTION_METHODS, members_from_field, reject_interlopers,
                                 simulate_clusters)

KMS = u.km / u.s
C_KMS = 299792.458


def mock_quality(n_clusters: int, seeds: int) -> list[str]:
    rows = {method: [] for method in REJECTION_METHODS}
    for seed in range(seeds):
        members, _ = simulate_clusters(n_clusters, seed=seed)
        n_true = int(members["is_member"].sum())
        for method in REJECTION_METHODS:
            flagged = reject_interlopers(members, method=method, keep_rejected=True)
            rejected = np.asarray(flagged["interloper"])
            truth = np.asarray(flagged["is_member"])
            rows[method].append((truth[~rejected].mean(), truth[~rejected].sum() / n_true, rejected.mean(),
                                 (~truth[rejected]).mean() if rejected.any() else np.nan))
    lines = [f"Default mocks: {n_clusters} clusters × {seeds} seeds (simulate_clusters defaults); mean ± standard "
             "deviation over the seeds.", "",
             "| rejection | purity | completeness | rejected (fraction of galaxies) | interlopers among the rejected |",
             "|---|---|---|---|---|"]
    for method, values in rows.items():
        values = np.array(values)
        cells = [f"{np.mean(column):.4f} ± {np.std(column):.4f}" if np.isfinite(column).all() else "—"
                 for column in values.T]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def coma() -> list[str]:
    lines = ["", "Coma (shipped NED field, centre 194.953°, 27.981°; redshift estimated by members_from_field). "
             "Colless & Dunn 1996: cz = 6917 ± 47 km/s, σ_cz = 1038 ± 60 km/s.", "",
             "| selection | rejection | in cylinder | members | cz_c [km/s] | σ_cz [km/s] |", "|---|---|---|---|---|---|"]
    for label, options in (("default: 1.6 Mpc, ±2500 km/s", {}),
                           ("README: 1.5°, ±4000 km/s", {"aperture": 1.5 * u.deg, "v_cut": 4000 * KMS})):
        for method in REJECTION_METHODS:
            members = members_from_field(COMA_FIELD, COMA_CENTRE, rejection=method, **options)
            z_c = members.meta["redshift"]
            sigma = members["v_los"].std(ddof=1).to_value(KMS) * (1 + z_c)
            lines.append(f"| {label} | {method} | {members.meta['n_cylinder']} | {len(members)} | {z_c * C_KMS:.0f} | "
                         f"{sigma:.0f} |")
    return lines


def speed(n_clusters: int) -> list[str]:
    members, _ = simulate_clusters(n_clusters, sampling="richness", seed=0)
    lines = ["", f"Speed: {n_clusters} mock clusters (sampling='richness'), {len(members)} galaxies, one process.", "",
             "| rejection | wall time [s] |", "|---|---|"]
    for method in REJECTION_METHODS:
        start = time.perf_counter()
        reject_interlopers(members, method=method)
        lines.append(f"| {method} | {time.perf_counter() - start:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--speed-clusters", type=int, default=100000)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    lines = mock_quality(args.clusters, args.seeds) + coma() + speed(args.speed_clusters)
    header = [f"astrobayes {__version__}; {platform.machine()} {platform.node()}, "
              f"{os.cpu_count()} CPUs (shared), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
              f"--clusters {args.clusters} --seeds {args.seeds} --speed-clusters {args.speed_clusters}; "
              f"run time {time.perf_counter() - start:.0f} s", "",
              "Command: `OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/clusters_membership.py "
              "--markdown benchmarks/results/clusters_membership.md`", ""]
    text = "\n".join(header + lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
