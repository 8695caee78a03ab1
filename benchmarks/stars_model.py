"""Cost of one emcee step of the Stefan–Boltzmann hierarchical model, for 10³–10⁵ stars.

``--method grid`` (the default, what ``infer_stefan_boltzmann`` uses for a
catalogue of luminosities): for each N the script simulates a field, builds
``stefan_boltzmann_model(field, map, free=FREE_PARAMETERS)`` — a
:class:`~astrobayes.stars.grid.LuminosityGridModel`, whose build is the only
place the map runs (twice: a coarse look at ℓ's slopes, then the grid) — and
times R calls of ``model.log_prob`` on 16 walkers (population parameters
drawn from the prior, σ within ±10 % of the truth), asserting
that the map runs zero times during them.

``--method importance`` times the importance-sampling route
(:class:`~astrobayes.inference.hierarchical.HierarchicalModel`, needed when
T_eff or R are measured too), as follows.
For each field size N the script simulates a field (``simulate_field``),
builds ``stefan_boltzmann_model(field, map, free=FREE_PARAMETERS, n_draws=K)``,
times the one-off cache build (pilot draws, two defensive-proposal fits: the
only place the stellar map runs) and then R calls of ``model.log_prob`` on a
batch of 16 walkers (emcee's half-ensemble for 32 walkers) at hyperparameters
drawn from the prior. It asserts that the map runs zero times during those
calls. emcee evaluates each walker once per step in two half-ensemble calls,
so a full run costs n_steps × n_walkers / 16 such calls (2 × n_steps for 32).

The adaptive cache build holds pilot weights of 16 × N × 4096 float64 values
(0.5 GB per 1000 stars), so it is made in chunks of ``--chunk`` stars (one
model per chunk, different seeds, caches concatenated). Beyond
``--max-build`` stars, the catalogue and the per-star draws of the stars
already built are both repeated (star i is star i mod max-build): the tensors
have the shapes and typical values of an N-star model, so the timing is that
of one (draws repeated against N *different* stars would have mismatched,
hugely negative log-weights, whose cost need not be typical), but the noise
figure of such a duplicated catalogue is left out.

Usage::

    .venv/bin/python benchmarks/stars_model.py --markdown stars_model.md
    .venv/bin/python benchmarks/stars_model.py --quick           # N = 1000, 3000, 3 repeats
    .venv/bin/python benchmarks/stars_model.py --exact           # exact ZAMS map instead of a network
    .venv/bin/python benchmarks/stars_model.py --method importance --draws 128
"""
from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TRAINING = {"n_train": 8000, "hidden": (64, 64, 64), "epochs": 100, "batch_size": 128}
WALKERS = 16


def _rss_mib() -> float:
    """Current resident set size (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class _RSSWatcher(threading.Thread):
    """Samples the current RSS every 5 ms (torch releases the GIL), keeping the maximum."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self._done = _rss_mib(), threading.Event()

    def run(self):
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def _delta_map(map_path: str | None):
    from astrobayes.stars.emulator import (
        exact_stellar_delta_map,
        load_stellar_map,
        stellar_delta_map,
    )
    return exact_stellar_delta_map() if map_path is None else stellar_delta_map(load_stellar_map(map_path))


def _time_calls(model, delta, theta, where: str) -> dict:
    """One untimed warm-up call on theta[0], then one timed call per theta[1:]; the map must not run."""
    import torch

    model.log_prob(theta[0])  # warm-up: one-time allocations are not timed
    delta.reset_counters()
    base, watcher = _rss_mib(), _RSSWatcher()
    watcher.start()
    times = []
    for batch in theta[1:]:
        t = time.perf_counter()
        values = model.log_prob(batch)
        times.append(time.perf_counter() - t)
        assert torch.isfinite(values).all(), f"log_prob is not finite {where}"
    peak = max(watcher.stop() - base, 0.0)
    assert delta.n_calls == 0, f"the stellar map ran {delta.n_calls} times during log_prob calls"
    return {"call_peak_mib": peak, "map_calls_timed": delta.n_calls, "call_s": float(np.median(times)),
            "call_range": (min(times), max(times)), "repeats": len(times)}


def run_size(n_stars: int, map_path: str | None, draws: int, repeats: int, chunk: int, max_build: int,
             max_elements: int | None = None) -> dict:
    """Build the model for one field size and time its log_prob (one process per size)."""
    import torch

    from astrobayes.stars.model import FREE_PARAMETERS, stefan_boltzmann_model
    from astrobayes.stars.simulate import simulate_field

    built = min(n_stars, max_build)
    field = simulate_field(built, seed=1)
    if built < n_stars:  # the catalogue repeats the built stars, so that each tiled draw set meets its own star
        field = field[np.arange(n_stars) % built]
    delta = _delta_map(map_path)
    model = stefan_boltzmann_model(field, delta, free=FREE_PARAMETERS, n_draws=draws, seed=0)
    rss0, peak0 = _rss_mib(), _peak_rss_mib()
    start = time.perf_counter()
    caches = []
    for i, s in enumerate(range(0, built, chunk)):
        part = stefan_boltzmann_model(field[s:s + chunk], delta, free=FREE_PARAMETERS, n_draws=draws, seed=1000 * i)
        caches.append(part._draws())
    build_s = time.perf_counter() - start
    calls, rows = delta.n_calls, delta.n_rows
    tiles = -(-n_stars // built)  # tiling repeats the built stars' draws (timing only; see the docstring)
    model._cache = {"predicted": {name: torch.cat([c["predicted"][name] for c in caches]).repeat(tiles, 1)[:n_stars]
                                  for name in caches[0]["predicted"]},
                    "log_q": torch.cat([c["log_q"] for c in caches]).repeat(tiles, 1)[:n_stars],
                    "fixed_log_likelihood": None, "per_object": True,
                    "proposal_draws": caches[0]["proposal_draws"]}
    del caches
    if max_elements:  # walkers × stars × draws per block of log_prob (memory and cache locality)
        model.max_elements = max_elements
    result = {"n": n_stars, "built": built, "build_s": build_s, "map_calls_build": calls, "map_rows_build": rows,
              "build_peak_mib": max(_peak_rss_mib() - peak0, 0.0), "cache_mib": _rss_mib() - rss0}
    if built == n_stars:  # Monte Carlo noise of log p(d | σ) − log p(d | 1.02 σ), truth elsewhere
        truth = np.array([field.meta["sigma"].value, 2.35, -0.2, 0.2])
        shifted = truth * np.array([1.02, 1, 1, 1])
        result["noise"] = model.log_likelihood_noise(truth, shifted)
        # what sample() does after its pilot chain: refit the proposals to posterior-like α (here σ within ±2 %)
        model.adapt(np.tile(truth, (16, 1)) * np.column_stack([np.linspace(0.98, 1.02, 16), np.ones((16, 3))]))
        result["noise_adapted"] = model.log_likelihood_noise(truth, shifted)
    theta = model.hyperprior.sample(WALKERS * (repeats + 1), seed=7).reshape(repeats + 1, WALKERS, -1)
    return result | _time_calls(model, delta, theta, "at a prior draw")


def run_size_grid(n_stars: int, map_path: str | None, repeats: int) -> dict:
    """Build the grid model for one field size and time its log_prob (one process per size)."""
    import torch

    from astrobayes.stars.model import FREE_PARAMETERS, stefan_boltzmann_model
    from astrobayes.stars.simulate import simulate_field

    field = simulate_field(n_stars, seed=1)
    delta = _delta_map(map_path)
    peak0 = _peak_rss_mib()
    start = time.perf_counter()
    model = stefan_boltzmann_model(field, delta, free=FREE_PARAMETERS, method="grid")
    result = {"n": n_stars, "built": n_stars, "build_s": time.perf_counter() - start, "map_calls_build": delta.n_calls,
              "map_rows_build": delta.n_rows, "build_peak_mib": max(_peak_rss_mib() - peak0, 0.0), "cache_mib": 0.0,
              "grid": f"{model.grid_shape[0]}×{model.grid_shape[1]}, {model.n_bins} bins"}
    theta = model.hyperprior.sample(WALKERS * (repeats + 1), seed=7).reshape(repeats + 1, WALKERS, -1)
    # σ within ±10 % of the truth (far from it the field is impossible and log_prob is -inf; the cost is the same)
    sigma = field.meta["sigma"].value * torch.exp(torch.linspace(-0.1, 0.1, theta[..., 0].numel()))
    theta[..., 0] = sigma[torch.randperm(len(sigma), generator=torch.Generator().manual_seed(7))].reshape(
        theta[..., 0].shape)
    return result | _time_calls(model, delta, theta, "near the true σ")


def _environment() -> dict:
    import torch

    from astrobayes import __version__
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"torch": str(torch.__version__), "astrobayes": __version__, "cpu": cpu, "cpus": os.cpu_count()}


def _with_scaling(lines: list[str], results: list[dict]) -> str:
    for a, b in itertools.pairwise(results):
        lines.append(f"\nN {a['n']:,} → {b['n']:,} (×{b['n'] / a['n']:g}): time per call ×{b['call_s'] / a['call_s']:.2f}.")
    return "\n".join(lines) + "\n"


def to_markdown_grid(results: list[dict], env: dict, args, map_label: str, loads: list[str]) -> str:
    lines = [(f"CPU: {env['cpu']} ({env['cpus']} CPUs); torch {env['torch']}, astrobayes {env['astrobayes']}; "
              f"{args.threads} torch thread(s); map: {map_label}; method: grid quadrature, free σ, IMF slope, "
              f"[Fe/H] mean and width; {WALKERS} walkers per call, median of R calls; "
              f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC; 1-minute load average before each size: "
              f"{', '.join(loads)}."), "",
             "| stars N | walker log-probs / s | s per call (min–max) | µs per walker·star | map calls in calls | R "
             "| build [s] | map calls / rows in build | grid | peak RSS +MiB build / calls "
             "| 3000 steps × 32 walkers [min] |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in results:
        lines.append(f"| {r['n']:,} | {WALKERS / r['call_s']:,.0f} | {r['call_s']:.4f} ({r['call_range'][0]:.3g}–"
                     f"{r['call_range'][1]:.3g}) | {1e6 * r['call_s'] / (WALKERS * r['n']):.2f} "
                     f"| {r['map_calls_timed']} | {r['repeats']} | {r['build_s']:.2f} "
                     f"| {r['map_calls_build']} / {r['map_rows_build']:,} | {r['grid']} "
                     f"| {r['build_peak_mib']:.0f} / {r['call_peak_mib']:.0f} | {6000 * r['call_s'] / 60:.1f} |")
    return _with_scaling(lines, results)


def to_markdown(results: list[dict], env: dict, args, map_label: str, loads: list[str]) -> str:
    lines = [(f"CPU: {env['cpu']} ({env['cpus']} CPUs); torch {env['torch']}, astrobayes {env['astrobayes']}; "
             f"{args.threads} torch thread(s); map: {map_label}; K = {args.draws} draws per star, "
             f"{WALKERS} walkers per call, max_elements {args.max_elements or 'default'}, median of R calls; {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC;"
             f" 1-minute load average before each size: {', '.join(loads)}."), "",
             ("| stars N | walker log-probs / s | s per call (min–max) | ns per walker·star·draw | map calls in calls | R "
             "| cache build [s] (stars built) | map calls / rows in build | peak RSS +MiB build / cache held / calls "
             "| MC noise σ vs 1.02σ, prior / refitted draws [nats] |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        elements = WALKERS * r["n"] * args.draws
        noise = f"{r['noise']:.2f} / {r['noise_adapted']:.2f}" if "noise" in r else "— (tiled)"
        lines.append(f"| {r['n']:,} | {WALKERS / r['call_s']:,.1f} | {r['call_s']:.4f} ({r['call_range'][0]:.3g}–{r['call_range'][1]:.3g}) "
                     f"| {1e9 * r['call_s'] / elements:.1f} | {r['map_calls_timed']} | {r['repeats']} "
                     f"| {r['build_s']:.1f} ({r['built']:,}) | {r['map_calls_build']} / {r['map_rows_build']:,} "
                     f"| {r['build_peak_mib']:.0f} / {r['cache_mib']:.0f} / {r['call_peak_mib']:.0f} | {noise} |")
    return _with_scaling(lines, results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stars", type=int, nargs="+", default=[1000, 10000, 100000], help="field sizes N")
    parser.add_argument("--method", choices=["grid", "importance"], default="grid",
                        help="per-star integrals by grid quadrature (default) or importance sampling")
    parser.add_argument("--draws", type=int, default=128, help="importance draws per star K (default 128)")
    parser.add_argument("--repeats", type=int, default=10, help="timed log_prob calls per size (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--exact", action="store_true", help="use the exact ZAMS model instead of a trained map")
    parser.add_argument("--chunk", type=int, default=2000, help="stars per cache-building chunk (memory bound)")
    parser.add_argument("--max-build", type=int, default=10000, help="stars with their own draws; more are tiled")
    parser.add_argument("--max-elements", type=int, help="HierarchicalModel.max_elements (default: its own)")
    parser.add_argument("--quick", action="store_true", help="N = 1000, 3000 and 3 repeats (smoke run)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # JSON: one size, in its own process
    args = parser.parse_args(argv)
    if args.quick:
        args.stars, args.repeats = [1000, 3000], 3
    import torch
    torch.set_num_threads(args.threads)
    if args.worker:
        n, map_path = json.loads(args.worker)
        if args.method == "grid":
            print(json.dumps(run_size_grid(n, map_path, args.repeats)))
            return 0
        print(json.dumps(run_size(n, map_path, args.draws, args.repeats, args.chunk, args.max_build,
                                  args.max_elements)))
        return 0
    env = _environment()
    with tempfile.TemporaryDirectory() as tmp:
        map_path, map_label = None, "exact Tout et al. ZAMS fits"
        if not args.exact:
            from astrobayes.stars.emulator import save_stellar_map, train_stellar_map
            start = time.perf_counter()
            stellar_map = train_stellar_map(**TRAINING, seed=0, progress=False)
            map_path = str(Path(tmp) / "zams_map")
            save_stellar_map(stellar_map, map_path)
            map_label = (f"Regressor {TRAINING['hidden']} trained once on {TRAINING['n_train']} ZAMS points, "
                         f"{TRAINING['epochs']} epochs, batch {TRAINING['batch_size']} "
                         f"({time.perf_counter() - start:.0f} s)")
        print(f"map: {map_label}", file=sys.stderr)
        results, loads = [], []
        for n in args.stars:
            loads.append(f"{os.getloadavg()[0]:.2f}")
            command = [sys.executable, __file__, "--worker", json.dumps([n, map_path]), "--method", args.method,
                       "--draws", str(args.draws),
                       "--repeats", str(args.repeats), "--threads", str(args.threads), "--chunk", str(args.chunk),
                       "--max-build", str(args.max_build)] + (["--max-elements", str(args.max_elements)]
                                                              if args.max_elements else [])
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return 1
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  N={n}: {results[-1]['call_s']:.4f} s per call (load {loads[-1]})", file=sys.stderr)
    table = (to_markdown_grid if args.method == "grid" else to_markdown)(results, env, args, map_label, loads)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
