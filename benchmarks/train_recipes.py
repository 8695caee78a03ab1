"""Cost of ``astrobayes train DOMAIN`` against the number of simulations (or objects), with held-out quality.

For each domain the recipe runs from its defaults with one size changed —
the number of training simulations (clusters, galaxy stamps, shear maps),
training stars (the stellar map) or labelled SNPhotCC objects (supernovae,
half of them held out) — and the script prints, per run: the size, training
examples, wall time of the whole recipe (simulation + training + held-out
check), training time and epochs (early stopping decides how many), and the
recipe's own held-out metrics. The exponent b of time ∝ sizeᵇ between the
smallest and the largest size closes each table: b < 1 where early stopping
ends larger runs in fewer epochs, or fixed costs (the held-out check) weigh.

Each run is ``train_domain`` — what ``astrobayes train`` calls — with
``--seed`` and one thread (``--threads``); held-out sets are the recipe's
defaults unless changed below (``EXTRA``), the same for every size.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_recipes.py --markdown benchmarks/results/train_recipes.md
    .venv/bin/python benchmarks/train_recipes.py --quick          # smoke run, ~10 s
    .venv/bin/python benchmarks/train_recipes.py --domains clusters --sizes 1000 4000
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

#: domain → (the option that sets the size, default sizes, other options for every run)
SCALING = {
    "stars": ("train.n_train", [2000, 5000, 20000], {}),
    "clusters": ("simulate.n_clusters", [2500, 5000, 10000, 20000], {}),
    "shear": ("data.n_simulations", [1000, 2000, 4000], {"test.n_maps": 200}),
    "galaxies": ("train.n_simulations", [2500, 5000, 10000], {"train.epochs": 30, "test.n_stamps": 300}),
    "supernovae": ("data.max_objects", [1000, 2000, 4000], {"train.epochs": 30}),
}
#: tiny runs for --quick (seconds each)
QUICK = {
    "stars": ("train.n_train", [300, 600], {"train.epochs": 2, "test.n_grid": 8}),
    "clusters": ("simulate.n_clusters", [300, 600], {"train.epochs": 2, "test.n_clusters": 50}),
    "shear": ("data.n_simulations", [100, 200], {"survey.nside": 8, "survey.n_bins": 3, "train.epochs": 2,
                                                  "test.n_maps": 20, "test.n_draws": 50}),
    "galaxies": ("train.n_simulations", [200, 400], {"train.epochs": 1, "train.embedding_dim": 8,
                                                      "train.hidden_features": 16, "test.n_stamps": 20,
                                                      "test.n_draws": 40}),
    "supernovae": ("data.max_objects", [80, 160], {"train.epochs": 1, "train.augment": 1}),
}


def _headline(domain: str, metrics: dict) -> dict:
    """The few held-out numbers each domain's table shows."""
    def spread(prefix):
        values = [v for k, v in metrics.items() if k.startswith(prefix) and not k.endswith("_band")]
        return f"{min(values):.3f}–{max(values):.3f}"

    if domain == "stars":
        return {"max rel. error R": f"{metrics['rel_error_radius_max']:.2e}",
                "max rel. error Teff": f"{metrics['rel_error_teff_max']:.2e}"}
    if domain == "clusters":
        return {"bias [dex]": f"{metrics['median_bias_dex']:+.3f}", "scatter [dex]": f"{metrics['scatter_dex']:.3f}",
                "68 % coverage": f"{metrics['coverage_68']:.3f}"}
    if domain == "shear":
        return {"median σ(S₈)": f"{metrics['sigma_S8_median']:.4f}", "68 % cov. S₈": f"{metrics['coverage_68_S8']:.3f}",
                "95 % cov. S₈": f"{metrics['coverage_95_S8']:.3f}"}
    if domain == "galaxies":
        return {"68 % coverage (7 params)": spread("coverage_68_"), "95 % coverage": spread("coverage_95_")}
    return {"accuracy": f"{metrics['accuracy']:.3f}", "AUC": f"{metrics['auc']:.3f}",
            "ECE": f"{metrics['ece']:.3f}"}


def _bands(metrics: dict) -> str:
    parts = [f"{k.split('_')[1]} % band [{v[0]:.3f}, {v[1]:.3f}]" for k, v in metrics.items() if k.endswith("_band")]
    return "; ".join(parts)


def run(domains, sizes=None, *, quick=False, seed=0, device="cpu") -> list[str]:
    from astrobayes.recipes import train_domain

    table = QUICK if quick else SCALING
    lines = []
    for domain in domains:
        key, default_sizes, extra = table[domain]
        section, option = key.split(".")
        rows, times = [], []
        bands = ""
        for size in sizes or default_sizes:
            overrides = [(section, option, int(size))] + [(*k.split("."), v) for k, v in extra.items()]
            with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                report = train_domain(domain, Path(folder) / "model", overrides=overrides, seed=seed,
                                      device=device, progress=False, log=lambda text: None)
                seconds = time.perf_counter() - start
            training = report["training"] or {}
            times.append((int(size), seconds))
            headline = _headline(domain, report["metrics"])
            bands = _bands(report["metrics"]) or bands
            rows.append([f"{int(size):,}", f"{report['n_train']:,}", f"{seconds:.1f}",
                         f"{training.get('seconds', math.nan):.1f}", str(training.get("epochs", "–")),
                         *headline.values()])
            print(f"  {domain} {key}={size}: {seconds:.1f} s", file=sys.stderr, flush=True)
        header = [key, "training examples", "recipe [s]", "training [s]", "epochs", *headline]
        lines += [f"### {domain}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        (n0, t0), (n1, t1) = times[0], times[-1]
        if n1 > n0:
            lines += ["", f"time ∝ size^{math.log(t1 / t0) / math.log(n1 / n0):.2f} between {n0:,} and {n1:,}"
                      + (f"; binomial 3σ bands of the coverage: {bands}" if bands else "")]
        lines.append("")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", nargs="+", default=list(SCALING), choices=list(SCALING))
    parser.add_argument("--sizes", nargs="+", type=int, help="sizes for every domain given (default: per domain)")
    parser.add_argument("--quick", action="store_true", help="tiny runs, a smoke test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from astrobayes import __version__

    head = [f"# `astrobayes train`: cost against the number of simulations ({_dt.date.today()})", "",
            f"astrobayes {__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
            f"{platform.machine()}, {args.threads} torch thread(s), device {args.device}, seed {args.seed}"
            + (" — QUICK smoke run, not a measurement" if args.quick else ""), "",
            "Command: `" + " ".join(["OMP_NUM_THREADS=1", ".venv/bin/python", "benchmarks/train_recipes.py"]
                                    + (argv if argv is not None else sys.argv[1:])) + "`", ""]
    lines = head + run(args.domains, args.sizes, quick=args.quick, seed=args.seed, device=args.device)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
