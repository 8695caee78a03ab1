"""Cost of the out-of-distribution p-value in ``astrobayes apply``: a 10⁶-row catalogue with and without it.

Issue 22 asks that the per-object OOD score add at most 20 % to ``apply``'s
time per object. On the photometric-redshift problem of
``benchmarks/catalog_scale.py`` (z ~ U(0, 3) → four noisy colours) this
script trains one 5-component ``MixtureDensityNetwork`` (hidden 64-64) and one
``Regressor`` (hidden 64-64), and saves each three times with the *same
weights*: without an OOD reference, with the default reference
(``method="gaussian"``, the Mahalanobis distance of the 64-d context vector)
and with the k-nearest-neighbour reference (``method="knn"``). Then it times

1. the command line end to end, ``python -m astrobayes apply MODEL
   catalog.parquet out.parquet`` on a ``--rows`` catalogue, in a subprocess with
   ``OMP_NUM_THREADS=--threads`` (interpreter start, imports, reading and
   writing included), ``--repeats`` times per model in alternating order; the
   median wall time of each, and the added time per object and in per cent;
2. ``apply_estimator`` in memory on ``--memory-rows`` rows (best of
   ``--repeats``), for all three references, with the same breakdown.

The OOD column is checked on the way: with the default reference, the fraction
of the (in-distribution) catalogue rows flagged at α = 0.01 and 0.05.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ood_cost.py --markdown benchmarks/results/ood_cost.md
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ood_cost.py --quick     # smoke run, under a minute
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_scale import COLOURS, simulate, write_catalogue  # noqa: E402  (the same catalogue and simulator)

REFERENCES = ("none", "gaussian", "knn")


def _train(kind: str, n: int, epochs: int, seed: int):
    import astrobayes

    rng = np.random.default_rng(seed)
    z, colours = simulate(n, rng)
    if kind == "mdn":
        model = astrobayes.MixtureDensityNetwork(n_components=5, hidden=(64, 64))
    else:
        model = astrobayes.Regressor(hidden=(64, 64))
    start = time.perf_counter()
    model.fit(colours, z[:, None].astype(np.float32), epochs=epochs, seed=seed, progress=False, ood=False)
    seconds = time.perf_counter() - start
    return model, colours, seconds


def _save_three(model, colours, folder: Path, name: str, seed: int) -> dict[str, Path]:
    paths = {}
    for reference in REFERENCES:
        if reference == "none":
            model._set_ood(None, "saved without a reference for this benchmark")
        else:
            model.fit_ood(colours, method=reference, seed=seed)
        path = folder / f"{name}_{reference}"
        model.save(path)
        paths[reference] = path
    return paths


def _cli_seconds(model: Path, catalog: Path, output: Path, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    command = [sys.executable, "-m", "astrobayes", "apply", str(model), str(catalog), str(output),
               "--columns", ",".join(COLOURS), "--names", "z", "--device", "cpu", "--overwrite"]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="catalogue rows for the command line")
    parser.add_argument("--memory-rows", type=int, default=200_000, help="rows for the in-memory timing")
    parser.add_argument("--train", type=int, default=20_000, help="training simulations")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10⁵ rows, 2 repeats, 5 epochs")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.memory_rows, args.train, args.epochs, args.repeats = 100_000, 50_000, 5000, 5, 2

    import pandas as pd
    import torch

    import astrobayes
    from astrobayes.catalog import apply_estimator

    torch.set_num_threads(args.threads)
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"astrobayes {astrobayes.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
        f"Python {platform.python_version()} on {platform.machine()}; CPUs {os.cpu_count()}; torch threads "
        f"{args.threads}; {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC; 1-min load average "
        f"{os.getloadavg()[0]:.1f}")
    say(f"options: --rows {args.rows} --memory-rows {args.memory_rows} --train {args.train} --epochs {args.epochs} "
        f"--repeats {args.repeats} --threads {args.threads} --seed {args.seed}")
    cli_rows, memory_rows = [], []
    with tempfile.TemporaryDirectory(prefix="ood_cost_") as tmp:
        folder = Path(tmp)
        catalog_path = folder / "catalog.parquet"
        write_catalogue(catalog_path, args.rows, seed=args.seed + 1)
        catalog = pd.read_parquet(catalog_path).iloc[:args.memory_rows]
        for kind in ("mdn", "regressor"):
            model, colours, seconds = _train(kind, args.train, args.epochs, args.seed)
            paths = _save_three(model, colours, folder, kind, args.seed)
            label = "MixtureDensityNetwork (5 components, hidden 64-64)" if kind == "mdn" else \
                "Regressor (hidden 64-64)"
            say(f"\ntrained {label}: {args.train} simulations, {args.epochs} epochs, {seconds:.1f} s; saved with "
                f"the same weights and no / gaussian / knn OOD reference")
            # 1. the command line, alternating order so that a drifting machine load hits all alike
            times = {reference: [] for reference in ("none", "gaussian")}
            for repeat in range(args.repeats):
                for reference in (("none", "gaussian") if repeat % 2 == 0 else ("gaussian", "none")):
                    times[reference].append(_cli_seconds(paths[reference], catalog_path,
                                                         folder / f"out_{kind}_{reference}.parquet", args.threads))
            out = pd.read_parquet(folder / f"out_{kind}_gaussian.parquet")
            base, with_ood = statistics.median(times["none"]), statistics.median(times["gaussian"])
            added = (with_ood - base) / args.rows * 1e6
            say(f"$ OMP_NUM_THREADS={args.threads} python -m astrobayes apply {kind}_REFERENCE catalog.parquet "
                f"out.parquet --columns {','.join(COLOURS)} --names z --device cpu --overwrite")
            say(f"  {args.rows} rows, median of {args.repeats}: no reference {base:.2f} s "
                f"({base / args.rows * 1e6:.2f} µs/object), gaussian reference {with_ood:.2f} s; the OOD p-value "
                f"adds {added:.2f} µs/object, {100 * (with_ood - base) / base:+.1f} %")
            if "ood_p_value" in out:
                p = out["ood_p_value"].to_numpy()
                say(f"  ood_p_value of the in-distribution catalogue: {np.mean(p <= 0.01):.4f} flagged at α = 0.01, "
                    f"{np.mean(p <= 0.05):.4f} at α = 0.05 (NaN on {int(np.isnan(p).sum())} rows with a missing "
                    "colour)")
            cli_rows.append((label, args.rows, base, with_ood, added, 100 * (with_ood - base) / base))
            # 2. in memory
            best = {}
            for reference in REFERENCES:
                model_loaded = astrobayes.load(paths[reference])
                durations = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        apply_estimator(catalog, model_loaded, COLOURS, names=["z"], device="cpu")
                    durations.append(time.perf_counter() - start)
                best[reference] = min(durations)
            for reference in REFERENCES:
                extra = (best[reference] - best["none"]) / len(catalog) * 1e6
                share = 100 * (best[reference] - best["none"]) / best["none"]
                say(f"  in memory, {len(catalog)} rows, best of {args.repeats}: {reference} reference "
                    f"{best[reference]:.2f} s ({best[reference] / len(catalog) * 1e6:.2f} µs/object; "
                    f"{extra:+.2f} µs/object, {share:+.1f} %)")
                memory_rows.append((label, reference, len(catalog), best[reference], extra, share))
    say("\n### 1. `astrobayes apply` end to end (median wall time)\n")
    say("| model | rows | no reference [s] | gaussian reference [s] | added [µs/object] | added [%] |")
    say("|---|---:|---:|---:|---:|---:|")
    for label, rows, base, with_ood, added, share in cli_rows:
        say(f"| {label} | {rows} | {base:.2f} | {with_ood:.2f} | {added:.2f} | {share:+.1f} |")
    say("\n### 2. `apply_estimator` in memory (best time)\n")
    say("| model | OOD reference | rows | seconds | added [µs/object] | added [%] |")
    say("|---|---|---:|---:|---:|---:|")
    for label, reference, rows, seconds, extra, share in memory_rows:
        say(f"| {label} | {reference} | {rows} | {seconds:.2f} | {extra:+.2f} | {share:+.1f} |")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
