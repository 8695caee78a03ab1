"""Catalogue scale: a 10⁶-row photo-z catalogue through ``astrobayes apply``, and objects/s on 1, 2 and N workers.

On a synthetic photometric-redshift problem (z ~ U(0, 3) → four noisy
colours u−g, g−r, r−i, i−z whose smooth, non-monotonic dependence on z
makes p(z | colours) bimodal for some objects) it prints:

1. the training of a 5-component ``MixtureDensityNetwork`` (exact, batched
   summaries) and of an NPE ``Posterior`` with an MDN density (summaries from
   seeded per-row draws), with their training times;
2. the writing of a ``--rows`` catalogue (objid, ra, dec, four colours;
   0.1 % of the objects miss one colour) as Parquet, with its file size;
3. the command line end to end, ``python -m astrobayes apply MODEL
   catalog.parquet out.parquet --columns ...`` in a subprocess with
   ``OMP_NUM_THREADS=--threads``: wall time, objects/s and the child's peak
   resident memory; the output is re-read, its row count and objid order
   checked, and a random sample of rows compared with ``apply_estimator`` in
   memory (the script fails if they differ by more than float32 rounding);
4. throughput in objects/s for both models, in memory with 1 and 2 torch
   threads and with ``dask_apply`` on a ``LocalCluster`` of W single-threaded
   worker processes (the model load and cluster start-up are outside the
   timing: every worker loads the models and runs a small piece first), in
   Dask's default worker environment and without its
   ``MALLOC_TRIM_THRESHOLD_=65536`` (which makes every temporary array above
   64 KiB a fresh memory mapping and halves the MDN's rate);
5. objects/s of the MDN in memory at several catalogue sizes, and the
   exponent b of time ∝ objects^b between the smallest and largest size.

It ends with one Markdown table per part. Seeds are fixed.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/catalog_scale.py --markdown benchmarks/results/catalog_scale.md
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/catalog_scale.py --quick     # smoke run, about a minute
"""
from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLOURS = ["u_g", "g_r", "r_i", "i_z"]
#: redshifts at which the 4000 Å break sits between the two bands of each colour
BREAK_Z = np.array([0.25, 0.75, 1.30, 1.90])
NOISE = 0.15  # magnitudes per colour (faint galaxies): ~10 % of true posteriors are bimodal
MISSING = 0.001  # fraction of catalogue objects with one colour missing (NaN)
SUMMARIES = ["z_mean", "z_std", "z_q16", "z_q50", "z_q84"]
TOLERANCE = 1e-5  # largest |CLI − in-memory| accepted: float32 rounding of the network, on z ≤ 3


# ---------------------------------------------------------------------- the problem
def simulate(n: int, rng: np.random.Generator, noise: float = NOISE):
    """(z, colours): z ~ U(0, 3), a galaxy type t ~ U(0, 1), colours (n, 4) float32.

    Each colour rises by a bump of height 0.4 + 1.2 t while the 4000 Å break
    crosses its pair of bands (``BREAK_Z``), on top of a slow oscillating
    continuum; u−g jumps by 2 mag once the Lyman break enters u (z ≳ 2.4).
    A red galaxy off the bump and a blue one on it look alike, and so do
    z ≈ 0 and z ≈ 2.2 (no break in any pair), hence bimodal posteriors.
    """
    z = rng.uniform(0.0, 3.0, n)
    t = rng.uniform(0.0, 1.0, n)
    amplitude = 0.4 + 1.2 * t
    k = np.arange(4)
    bumps = np.exp(-0.5 * ((z[:, None] - BREAK_Z) / 0.3) ** 2)
    colours = 0.2 + 0.1 * k + amplitude[:, None] * bumps + 0.15 * np.sin(1.7 * z[:, None] + k)
    colours[:, 0] += 2.0 / (1.0 + np.exp(-(z - 2.4) / 0.1))
    colours += noise * rng.normal(size=colours.shape)
    return z, colours.astype(np.float32)


def write_catalogue(path: Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` objects with objid, ra, dec and the colours, written as Parquet; returns the frame."""
    rng = np.random.default_rng(seed)
    _, colours = simulate(n, rng)
    missing = np.flatnonzero(rng.random(n) < MISSING)
    colours[missing, rng.integers(0, 4, len(missing))] = np.nan  # a non-detection in one band
    frame = pd.DataFrame({"objid": 10**12 + np.arange(n, dtype=np.int64),
                          "ra": rng.uniform(0.0, 360.0, n),
                          "dec": np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))})
    for j, name in enumerate(COLOURS):
        frame[name] = colours[:, j]
    frame.to_parquet(path, index=False)
    return frame


def exact_posterior(colours: np.ndarray, grid: np.ndarray, noise: float = NOISE) -> np.ndarray:
    """Unnormalised true p(z | colours) on ``grid`` (flat prior; the type t integrated out on 41 nodes)."""
    t = np.linspace(0.0, 1.0, 41)
    z, t = np.meshgrid(grid, t, indexing="ij")
    bumps = np.exp(-0.5 * ((z[..., None] - BREAK_Z) / 0.3) ** 2)
    mean = 0.2 + 0.1 * np.arange(4) + (0.4 + 1.2 * t)[..., None] * bumps + 0.15 * np.sin(1.7 * z[..., None]
                                                                                           + np.arange(4))
    mean[..., 0] += 2.0 / (1.0 + np.exp(-(z - 2.4) / 0.1))
    out = np.empty((len(colours), len(grid)))
    for start in range(0, len(colours), 50):
        x = colours[start:start + 50, None, None, :]
        out[start:start + 50] = np.exp(-0.5 * (((x - mean) / noise) ** 2).sum(-1)).mean(-1)
    return out


def bimodal_fraction(pdf: np.ndarray) -> float:
    """Fraction of densities (rows, on a grid) with a second peak ≥ 10 % of the highest."""
    interior = (pdf[:, 1:-1] > pdf[:, :-2]) & (pdf[:, 1:-1] >= pdf[:, 2:])
    strong = interior & (pdf[:, 1:-1] >= 0.1 * pdf.max(axis=1, keepdims=True))
    return float((strong.sum(axis=1) >= 2).mean())


# ---------------------------------------------------------------------- helpers
def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _mib(size_bytes: float) -> float:
    return size_bytes / 2**20


def _children_peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return np.inf
    both = ~np.isnan(a)
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def _warm_worker(paths):
    """Run on each Dask worker: one torch thread, every model loaded into the worker's cache."""
    import torch

    from astrobayes.catalog import cached_model

    torch.set_num_threads(1)
    for path in paths:
        cached_model(path)
    return os.getpid()


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="catalogue rows for the command-line run")
    parser.add_argument("--throughput-rows", type=int, default=200_000, help="rows for the MDN throughput table")
    parser.add_argument("--npe-rows", type=int, default=50_000, help="rows for the NPE throughput table")
    parser.add_argument("--draws", type=int, default=200, help="posterior draws per row for the NPE summaries")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask worker processes")
    parser.add_argument("--partitions-per-worker", type=int, default=4,
                        help="Dask partitions per worker (default 4)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="catalogue sizes for the MDN scaling table")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of the command-line run, and torch threads of the training")
    parser.add_argument("--train", type=int, default=20_000, help="training simulations")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of both models")
    parser.add_argument("--sample", type=int, default=1000, help="output rows checked against memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for models and catalogues (default: a temporary one, removed at the end)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 rows, 5,000 throughput rows, 500 NPE rows, short training")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the printed output here")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.throughput_rows, args.npe_rows = 20_000, 5_000, 500
        args.sizes, args.train, args.epochs = [2_000, 5_000, 20_000], 5_000, 3
    args.sizes = sorted(set(args.sizes))

    import astropy.units as u
    import torch

    import astrobayes
    from astrobayes.catalog import apply_estimator, dask_apply, load_catalog_model
    from astrobayes.inference import NPE, BoxUniform

    torch.set_num_threads(args.threads)
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="catalog_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"astrobayes {astrobayes.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"pandas {pd.__version__}; Python {platform.python_version()} on {platform.machine()}; "
        f"CPUs {os.cpu_count()}; torch threads {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); "
        f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"1-min load average {os.getloadavg()[0]:.1f}")
    say(f"options: --rows {args.rows} --throughput-rows {args.throughput_rows} --npe-rows {args.npe_rows} "
        f"--draws {args.draws} --workers {' '.join(map(str, args.workers))} --sizes "
        f"{' '.join(map(str, args.sizes))} --threads {args.threads} --train {args.train} --epochs {args.epochs}"
        + (" (--quick)" if args.quick else ""))
    say(f"work folder: {workdir}")
    say()

    # ------------------------------------------------------------------ 1. training
    rng = np.random.default_rng(args.seed)
    z_train, x_train = simulate(args.train, rng)
    mdn = astrobayes.MixtureDensityNetwork(n_components=5, hidden=(64, 64))
    history, mdn_seconds = _timed(mdn.fit, x_train, z_train[:, None], epochs=args.epochs, batch_size=256,
                                  device="cpu", seed=args.seed, progress=False)
    mdn_path = workdir / "photoz_mdn"
    mdn.save(mdn_path)
    prior = BoxUniform([0.0], [3.0], names=["z"], units=u.dimensionless_unscaled)
    npe = NPE(prior, density="mdn", n_components=5, hidden=(32, 32))
    npe.append_simulations(z_train[:, None], x_train)
    posterior, npe_seconds = _timed(npe.train, epochs=args.epochs, batch_size=256, device="cpu", seed=args.seed,
                                    progress=False)
    npe_path = workdir / "photoz_npe"
    posterior.save(npe_path)
    _, x_check = simulate(1000, np.random.default_rng(args.seed + 1))
    grid = np.linspace(0.0, 3.0, 301)
    with torch.no_grad():
        dist = mdn.distribution(x_check)
        weights = dist.mixture_distribution.probs.double().numpy()[:, :, None]
        loc = dist.component_distribution.loc.double().numpy()[:, :, :1]
        scale = np.sqrt(dist.component_distribution.covariance_matrix.double().numpy()[:, :, 0, :1])
    mdn_pdf = (weights * np.exp(-0.5 * ((grid - loc) / scale) ** 2) / scale).sum(axis=1)
    bimodal_true, bimodal_mdn = bimodal_fraction(exact_posterior(x_check, grid)), bimodal_fraction(mdn_pdf)
    training_rows = [
        ("MixtureDensityNetwork (5 components, hidden 64-64)", history.epochs, mdn_seconds,
         history.val_loss[-1] if history.val_loss else float("nan")),
        ("NPE Posterior, MDN density (5 components, hidden 32-32), prior z ~ U(0, 3)",
         npe.estimator.history.epochs, npe_seconds,
         npe.estimator.history.val_loss[-1] if npe.estimator.history.val_loss else float("nan")),
    ]
    for name, epochs, seconds, loss in training_rows:
        say(f"trained {name}: {args.train} simulations, {epochs} epochs, {seconds:.1f} s, "
            f"validation loss {loss:.3f}")
    say(f"p(z | colours) on 0 ≤ z ≤ 3 has two or more peaks (the second ≥ 10 % of the highest) for "
        f"{100 * bimodal_true:.1f} % of 1000 fresh objects (exact posterior, on a grid) and for "
        f"{100 * bimodal_mdn:.1f} % according to the MDN")
    say()

    # ------------------------------------------------------------------ 2. catalogue
    catalog_path = workdir / "catalog.parquet"
    frame, write_seconds = _timed(write_catalogue, catalog_path, args.rows, args.seed + 2)
    catalog_mib = _mib(catalog_path.stat().st_size)
    n_missing = int(frame[COLOURS].isna().any(axis=1).sum())
    say(f"catalogue: {args.rows} rows (objid, ra, dec, {', '.join(COLOURS)}; {n_missing} with a missing colour) "
        f"written in {write_seconds:.1f} s, {catalog_path.name} {catalog_mib:.1f} MiB")

    # ------------------------------------------------------------------ 3. command line end to end
    out_path = workdir / "photoz.parquet"
    command = [sys.executable, "-m", "astrobayes", "apply", str(mdn_path), str(catalog_path), str(out_path),
               "--columns", ",".join(COLOURS), "--names", "z", "--device", "cpu", "--overwrite"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    peak_before = _children_peak_kib()
    completed, cli_seconds = _timed(subprocess.run, command, env=env, capture_output=True, text=True)
    peak_after = _children_peak_kib()
    if completed.returncode != 0:
        raise SystemExit(f"the command line failed (exit {completed.returncode}):\n{completed.stderr}")
    if peak_after <= peak_before:
        raise SystemExit("cannot tell the child's peak memory: an earlier child process reached more")
    child_peak_mib = peak_after / 1024
    out_mib = _mib(out_path.stat().st_size)
    cli_rate = args.rows / cli_seconds
    say(f"$ OMP_NUM_THREADS={args.threads} python -m astrobayes apply {mdn_path.name} {catalog_path.name} "
        f"{out_path.name} --columns {','.join(COLOURS)} --names z --device cpu --overwrite")
    say(f"  {completed.stdout.strip()}")
    say(f"  wall time {cli_seconds:.1f} s ({cli_rate:.0f} objects/s, including interpreter start, imports, "
        f"reading and writing); child peak RSS {child_peak_mib:.0f} MiB; output {out_mib:.1f} MiB")

    output = pd.read_parquet(out_path)
    if len(output) != args.rows:
        raise SystemExit(f"the output has {len(output)} rows, the catalogue {args.rows}")
    if not np.array_equal(output["objid"].to_numpy(), frame["objid"].to_numpy()):
        raise SystemExit("the output's objid column is not the catalogue's, in the catalogue's order")
    nan_rows = output[SUMMARIES].isna().any(axis=1).to_numpy()
    if not np.array_equal(nan_rows, frame[COLOURS].isna().any(axis=1).to_numpy()):
        raise SystemExit("the rows with NaN summaries are not those with a missing colour")
    catalog = pd.read_parquet(catalog_path)  # as the command line read it: the row position is the index label
    sample = np.sort(np.random.default_rng(args.seed + 3).choice(args.rows, min(args.sample, args.rows),
                                                                 replace=False))
    model = load_catalog_model(mdn_path, ["z"])
    in_memory = apply_estimator(catalog.iloc[sample], model, COLOURS, device="cpu")
    sample_diff = _max_abs_diff(output[SUMMARIES].to_numpy()[sample], in_memory[SUMMARIES].to_numpy())
    say(f"  re-read: {len(output)} rows, objid in catalogue order, NaN summaries exactly on the {n_missing} "
        f"rows with a missing colour; {len(sample)} random rows recomputed in memory with apply_estimator: "
        f"max |difference| {sample_diff:.2e} over {', '.join(SUMMARIES)}")
    if not sample_diff <= TOLERANCE:
        raise SystemExit(f"the command line's output differs from apply_estimator in memory by {sample_diff:.3g} "
                         f"(more than float32 rounding, {TOLERANCE:g})")
    say()

    # ------------------------------------------------------------------ 4. throughput
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    throughput = []  # (model, how, threads / workers, rows, seconds)
    cases = [("MDN (exact summaries)", mdn_path, catalog.iloc[:args.throughput_rows], {}),
             (f"NPE Posterior ({args.draws} draws per row)", npe_path, catalog.iloc[:args.npe_rows],
              {"n_draws": args.draws})]
    reference = {}
    for label, path, rows, options in cases:
        loaded = load_catalog_model(path, ["z"])
        apply_estimator(rows.iloc[:200], loaded, COLOURS, device="cpu", **options)  # warm-up
        for threads in (1, 2):
            torch.set_num_threads(threads)
            result, seconds = _timed(apply_estimator, rows, loaded, COLOURS, device="cpu", **options)
            reference.setdefault(label, result)
            throughput.append((label, "in memory (apply_estimator)", f"{threads} torch thread(s)", len(rows),
                               seconds))
            say(f"{label}: in memory, {threads} torch thread(s): {len(rows)} rows in {seconds:.2f} s, "
                f"{len(rows) / seconds:.0f} objects/s")
    torch.set_num_threads(args.threads)
    rows = catalog.iloc[:args.throughput_rows]
    x_rows = rows[COLOURS].dropna().to_numpy(dtype=np.float32)

    def network_only():
        with torch.no_grad():
            for start in range(0, len(x_rows), 4096):
                mdn.distribution(x_rows[start:start + 4096])

    torch.set_num_threads(1)
    mdn.distribution(x_rows[:200])  # warm-up
    _, network_seconds = _timed(network_only)
    torch.set_num_threads(args.threads)
    throughput.append(("MDN: network only (distribution(), batches of 4096), no summaries", "in memory",
                       "1 torch thread", len(x_rows), network_seconds))
    say(f"MDN network alone (one forward pass per batch of 4096, 1 thread): {len(x_rows) / network_seconds:.0f} "
        "objects/s; the exact summaries call it twice and then bisect the mixture CDF for each quantile in numpy")

    dask_checks = []
    import dask

    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back to the OS); glibc then
    # maps and unmaps every temporary array above 64 KiB, page faults included. Both environments are timed.
    # The nanny also writes the variable into this process's environment, which later workers inherit whatever
    # the configuration says: the unset case is removed from os.environ before each cluster.
    environments = [("MALLOC_TRIM_THRESHOLD_ unset", {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_":
                                                      None}),
                    ("Dask's default worker environment (MALLOC_TRIM_THRESHOLD_=65536)", {})]
    for (environment, settings), workers in [(e, w) for e in environments for w in args.workers]:
        if settings:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set(settings):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
        try:
            client.run(_warm_worker, [str(mdn_path), str(npe_path)])
            for label, path, rows, options in cases:
                ddf = dd.from_pandas(rows, npartitions=workers * args.partitions_per_worker)
                warm = dd.from_pandas(rows.iloc[:100 * workers], npartitions=workers)
                dask_apply(warm, path, COLOURS, names=["z"], device="cpu", **options).compute()
                result, seconds = _timed(dask_apply(ddf, path, COLOURS, names=["z"], device="cpu",
                                                    **options).compute)
                diff = _max_abs_diff(result.sort_index().to_numpy(), reference[label].to_numpy())
                dask_checks.append((label, workers, diff))
                throughput.append((label, f"dask_apply, LocalCluster, {ddf.npartitions} partitions; {environment}",
                                   f"{workers} worker process(es) × 1 thread", len(rows), seconds))
                say(f"{label}: dask_apply on {workers} worker(s), {ddf.npartitions} partitions, {environment}: "
                    f"{len(rows)} rows in {seconds:.2f} s, {len(rows) / seconds:.0f} objects/s; max |difference| "
                    f"from in memory {diff:.2e}")
        finally:
            client.close()
            cluster.close()
    if any(not diff <= TOLERANCE for _, _, diff in dask_checks):
        raise SystemExit(f"dask_apply differs from apply_estimator in memory: {dask_checks}")
    say()

    # ------------------------------------------------------------------ 5. scaling with the number of objects
    torch.set_num_threads(1)
    scaling = []
    sizes = [n for n in args.sizes if n <= args.rows]
    if len(sizes) < len(args.sizes):
        say(f"(sizes above --rows {args.rows} left out)")
    for n in sizes:
        _, seconds = _timed(apply_estimator, catalog.iloc[:n], model, COLOURS, device="cpu")
        scaling.append((n, seconds))
        say(f"MDN in memory, 1 torch thread: {n} rows in {seconds:.2f} s, {n / seconds:.0f} objects/s")
    exponent = None
    if len(scaling) >= 2:
        (n0, t0), (n1, t1) = scaling[0], scaling[-1]
        exponent = np.log(t1 / t0) / np.log(n1 / n0)
        say(f"time ∝ objects^{exponent:.2f} between {n0} and {n1} rows (1.00 = linear)")
    torch.set_num_threads(args.threads)
    say()

    # ------------------------------------------------------------------ tables
    say(f"### 1. Training (CPU, torch threads {args.threads})")
    say()
    say("| model | simulations | epochs | training time [s] | final validation loss |")
    say("|---|---:|---:|---:|---:|")
    for name, epochs, seconds, loss in training_rows:
        say(f"| {name} | {args.train} | {epochs} | {seconds:.1f} | {loss:.3f} |")
    say()
    say(f"### 2–3. Catalogue through the command line (OMP_NUM_THREADS={args.threads})")
    say()
    say("| rows | catalogue Parquet [MiB] | output Parquet [MiB] | wall time [s] | objects/s | child peak RSS [MiB] "
        "| rows checked in memory | max abs difference |")
    say("|---:|---:|---:|---:|---:|---:|---:|---:|")
    say(f"| {args.rows} | {catalog_mib:.1f} | {out_mib:.1f} | {cli_seconds:.1f} | {cli_rate:.0f} | "
        f"{child_peak_mib:.0f} | {len(sample)} | {sample_diff:.1e} |")
    say()
    say("### 4. Throughput (model load and worker start-up not timed)")
    say()
    say("| model | how | threads / workers | rows | seconds | objects/s |")
    say("|---|---|---|---:|---:|---:|")
    for label, how, threads, n, seconds in throughput:
        say(f"| {label} | {how} | {threads} | {n} | {seconds:.2f} | {n / seconds:.0f} |")
    say()
    say("### 5. Cost against catalogue size (MDN, in memory, 1 torch thread)")
    say()
    say("| rows | seconds | objects/s |")
    say("|---:|---:|---:|")
    for n, seconds in scaling:
        say(f"| {n} | {seconds:.2f} | {n / seconds:.0f} |")
    if exponent is not None:
        say()
        say(f"time ∝ objects^{exponent:.2f} from {scaling[0][0]} to {scaling[-1][0]} rows.")

    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
