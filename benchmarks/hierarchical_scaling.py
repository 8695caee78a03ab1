"""Hierarchical-model emcee evaluations per second against the number of objects.

Prints machine facts, then one Markdown table row per number of objects N
(default 10², 10³, 10⁴, 10⁵) and the exponent b of time ∝ Nᵇ between the
smallest and the largest N (and between the two largest), for

(a) vectorised calls of the marginal log-posterior ``model.log_prob`` on a
    batch of ``--walkers`` walker positions, an (m, d) tensor: evaluations/s =
    walkers × calls / seconds (median of ``--repeats`` timed calls, after one
    untimed call that builds the cache; the calls are timed in rounds over
    all N, so that a change of load on a shared machine hits every N alike);
(b) a short emcee run through the project's driver
    (:func:`astrobayes.inference.sampling.run_emcee`, ``--walkers`` walkers,
    which evaluates half of the ensemble per call): evaluations/s = walkers ×
    steps / seconds of ``run_mcmc`` (``MCMCResult.seconds``), and
    object-evaluations/s = N × evaluations/s. A 3-step warm-up run comes
    first and is not timed; neither are the starting walkers' evaluations.

The model is the one of ``tutorials/02_delta_maps_in_hierarchical_models.py``:
a :class:`~astrobayes.inference.hierarchical.HierarchicalModel` of N galaxies
with true log stellar masses z_i ~ N(μ, w²) (truncated to the map's range
8.5–11.5), a learned size map z → log R_e (a ``Regressor`` (64, 64) trained
on the broken power law of Shen et al. 2003) wrapped in a ``DeltaMap``, a
global size offset a, and Gaussian errors of 0.15 dex on mass and 0.05 dex
on size; hyperparameters (μ, w, a). The latents are marginalised by
importance sampling over K = ``--draws`` fixed draws per object (``draws=
"per_object"``, see below), so every evaluation costs walkers × N × K
elementwise terms and the network never runs during (a) or (b) — the script
asserts this. Data are simulated with fixed seeds at μ = 10.2, w = 0.4,
a = 0.08; walkers start in a small ball around these values, so that almost
every emcee proposal lies inside the prior (outside it the likelihood is not
computed at all; the table counts how many evaluations did compute it).

The per-call cost is the same for any per-object draws (K of them for each
object); the library default ``draws="adaptive"`` adds a one-off build of
about 16 × N × n_pilot terms, which at 10⁵ objects takes minutes, so the
build here uses ``"per_object"`` proposal draws (``--draw-mode adaptive``,
with n_pilot = 1024, to change it; the build time is reported, not part of
either rate). At N beyond
``--max-object-steps`` / (walkers × ``--steps``), emcee runs fewer steps (at least
``--min-steps``): the rate per evaluation hardly depends on the run length.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hierarchical_scaling.py --markdown benchmarks/results/hierarchical_scaling.md
    .venv/bin/python benchmarks/hierarchical_scaling.py --quick           # smoke run, ~20 s
    .venv/bin/python benchmarks/hierarchical_scaling.py --objects 1000 10000 --draws 128 --steps 500
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

TRUTH = {"mu": 10.2, "width": 0.4, "offset": 0.08}
LOG_MASS_RANGE = (8.5, 11.5)
MASS_ERROR, SIZE_ERROR = 0.15, 0.05


def _log_size(log_mass):
    """log₁₀(R_e / kpc) of the broken power law of Shen et al. (2003), as in tutorial 02."""
    mass = 10.0**log_mass
    return np.log10(0.1 * mass**0.14 * (1 + mass / 3.98e10) ** (0.39 - 0.14))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def train_map(epochs: int):
    """The tutorial's size map: a Regressor (64, 64) on 4000 points of the Shen et al. relation."""
    from astrobayes import Regressor
    from astrobayes.inference import DeltaMap

    rng = np.random.default_rng(42)
    x = rng.uniform(LOG_MASS_RANGE[0] - 0.3, LOG_MASS_RANGE[1] + 0.3, size=(4000, 1))
    network = Regressor(hidden=(64, 64), activation="tanh")
    start = time.perf_counter()
    network.fit(x, _log_size(x), epochs=epochs, learning_rate=3e-3, validation_fraction=0.0, seed=0, progress=False)
    seconds = time.perf_counter() - start
    grid = np.linspace(*LOG_MASS_RANGE, 500)[:, None]
    error = float(np.abs(network.predict(grid).mean[:, 0] - _log_size(grid)[:, 0]).max())
    return DeltaMap(network, inputs=["z"], outputs=["log_size_model"]), seconds, error


def build_model(n: int, size_map, draws: int, draw_mode: str, seed: int):
    """Tutorial 02's HierarchicalModel on N simulated galaxies (seeded by ``seed``)."""
    import torch
    from torch.distributions import Normal

    from astrobayes.inference import HierarchicalModel, JointPrior, Uniform

    rng = np.random.default_rng(seed)
    true_mass = np.clip(rng.normal(TRUTH["mu"], TRUTH["width"], n), *LOG_MASS_RANGE)
    data = {"log_mass": true_mass + MASS_ERROR * rng.normal(size=n), "log_mass_err": np.full(n, MASS_ERROR),
            "log_size": _log_size(true_mass) + TRUTH["offset"] + SIZE_ERROR * rng.normal(size=n),
            "log_size_err": np.full(n, SIZE_ERROR)}
    low, high = torch.tensor(LOG_MASS_RANGE[0]), torch.tensor(LOG_MASS_RANGE[1])

    def population(latents, hyper):
        gaussian = Normal(hyper["mu"], hyper["width"])
        return gaussian.log_prob(latents["z"]) - torch.log(gaussian.cdf(high) - gaussian.cdf(low))

    def measurement(data, predicted, hyper):
        mass = Normal(predicted["z"], data["log_mass_err"]).log_prob(data["log_mass"])
        size = Normal(predicted["log_size_model"] + hyper["offset"], data["log_size_err"]).log_prob(data["log_size"])
        return mass + size

    hyperprior = JointPrior([Uniform(9.0, 11.0, name="mu"), Uniform(0.05, 1.0, name="width"),
                             Uniform(-0.5, 0.5, name="offset")])
    options = {"n_pilot": 1024} if draw_mode == "adaptive" else {}
    return HierarchicalModel(hyperprior, population, measurement, data,
                             proposal=JointPrior([Uniform(*LOG_MASS_RANGE, name="z")]), delta_maps=size_map,
                             n_draws=draws, draws=draw_mode, seed=seed, **options)


def _near_truth(n: int, rng: np.random.Generator) -> np.ndarray:
    """n hyperparameter points in a small ball around the truth (all inside the prior)."""
    centre = np.array([TRUTH["mu"], TRUTH["width"], TRUTH["offset"]])
    return centre + np.array([0.02, 0.02, 0.005]) * rng.standard_normal((n, 3))


def build(n: int, size_map, args) -> dict:
    """Build the N-object model and its cache of fixed draws (the only place the map runs); time it."""
    import torch

    start = time.perf_counter()
    model = build_model(n, size_map, args.draws, args.draw_mode, args.seed)
    theta = torch.from_numpy(_near_truth(args.walkers, np.random.default_rng(args.seed + 1)))
    with torch.no_grad():
        values = model.log_prob(theta)  # builds the cache and warms up
    if not torch.isfinite(values).all():
        raise RuntimeError(f"log_prob is not finite near the truth for N = {n}")
    return {"n": n, "model": model, "theta": theta, "build_s": time.perf_counter() - start,
            "times": [], "cpu_times": []}


def time_call(row: dict) -> None:
    """(a) One timed vectorised log_prob call on the batch of walkers (wall and process CPU time)."""
    import torch

    with torch.no_grad():
        start, cpu_start = time.perf_counter(), time.process_time()
        row["model"].log_prob(row["theta"])
        row["times"].append(time.perf_counter() - start)
        row["cpu_times"].append(time.process_time() - cpu_start)


def measure(row: dict, size_map, args) -> dict:
    """Summarise (a) and time (b), a short emcee run through run_emcee."""
    import torch

    from astrobayes.inference.sampling import run_emcee

    n, model, times = row["n"], row["model"], row["times"]
    calls_before = size_map.n_calls
    row["call_s"] = statistics.median(times)
    row["call_range"] = (min(times), max(times))
    row["cpu_call_s"] = statistics.median(row["cpu_times"])
    row["batch_rate"] = args.walkers / row["call_s"]

    # (b) emcee through run_emcee; counts the walkers whose likelihood was computed (inside the prior)
    counted = {"rows": 0, "inside": 0}

    def log_prob(batch):
        counted["rows"] += len(batch)
        counted["inside"] += int(torch.isfinite(model.hyperprior.log_prob(batch)).sum())
        return model.log_prob(batch)

    steps = min(args.steps, max(args.min_steps, math.ceil(args.max_object_steps / (args.walkers * n))))
    initial = _near_truth(args.walkers, np.random.default_rng(args.seed + 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the chain is only", RuntimeWarning)  # short on purpose
        warnings.filterwarnings("ignore", "the autocorrelation time could not", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)  # τ of a 3-step chain
        warm = run_emcee(log_prob, initial, n_steps=3, seed=args.seed, progress=False)
        counted.update(rows=0, inside=0)
        result = run_emcee(log_prob, warm.chain[-1], n_steps=steps, seed=args.seed + 3, progress=False)
    evaluations = steps * args.walkers
    # the starting walkers are evaluated before the timer starts (by run_emcee's check, then by emcee)
    untimed = counted["rows"] - evaluations
    if not 0 <= untimed <= 2 * args.walkers:
        raise RuntimeError(f"expected {evaluations} timed evaluations, counted {counted['rows']} in all")
    row.update(steps=steps, emcee_s=result.seconds, emcee_rate=evaluations / result.seconds,
               inside=(counted["inside"] - untimed) / evaluations, acceptance=result.mean_acceptance)
    row["object_rate"] = n * row["emcee_rate"]
    row["map_calls"] = size_map.n_calls - calls_before
    if row["map_calls"]:
        raise RuntimeError(f"the delta map ran {row['map_calls']} times during the timed calls (it should be cached)")
    row["ns_per_term"] = 1e9 * row["call_s"] / (args.walkers * n * args.draws)
    row["load"] = _load()
    return row


def _exponent(rows: list[dict], key: str, first: int = 0, last: int = -1) -> float:
    a, b = rows[first], rows[last]
    return math.log(b[key] / a[key]) / math.log(b["n"] / a["n"])


def _growth(exponent: float) -> str:
    if exponent < 0.9:
        return "sublinear: a fixed per-call cost still weighs at the small N"
    if exponent <= 1.1:
        return "linear in N"
    return "superlinear"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[100, 1000, 10000, 100000],
                        help="numbers of objects N (default 100 1000 10000 100000)")
    parser.add_argument("--walkers", type=int, default=32, help="walkers per batch in (a) and in emcee (default 32)")
    parser.add_argument("--draws", type=int, default=32, help="importance draws K per object (default 32)")
    parser.add_argument("--draw-mode", choices=["per_object", "adaptive", "shared"], default="per_object",
                        help="how the fixed draws are made (default per_object; the per-call cost of adaptive is "
                             "the same, its build much longer)")
    parser.add_argument("--repeats", type=int, default=5, help="timed log_prob calls per N in (a) (default 5)")
    parser.add_argument("--steps", type=int, default=200, help="emcee steps per N in (b) (default 200)")
    parser.add_argument("--max-object-steps", type=float, default=3.2e7,
                        help="cap on walkers × steps × N per emcee run; larger N run fewer steps (default 3.2e7: "
                             "200 steps × 32 walkers up to N = 5000, 100 at 10⁴, 10 at 10⁵)")
    parser.add_argument("--min-steps", type=int, default=10, help="emcee steps at least (default 10)")
    parser.add_argument("--map-epochs", type=int, default=60, help="training epochs of the size map (default 60)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, draws and chains (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (~20 s): N = 100, 1000, 10000, 100 steps, 3 repeats, cap 3.2e6")
    parser.add_argument("--markdown", type=Path, help="also write the output to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.objects, args.steps, args.repeats, args.max_object_steps = [100, 1000, 10000], 100, 3, 3.2e6
        args.map_epochs = min(args.map_epochs, 30)
    if min(args.objects) < 1 or args.walkers < 6 or args.walkers % 2 or args.draws < 1 or args.repeats < 1 \
            or args.steps < 1 or args.min_steps < 1 or args.threads < 1:
        parser.error("--objects, --draws, --repeats, --steps, --min-steps, --threads must be >= 1; "
                     "--walkers even and >= 6")
    args.objects = sorted(set(args.objects))

    import emcee
    import torch

    from astrobayes import __version__

    torch.set_num_threads(args.threads)
    now = _dt.datetime.now(_dt.timezone.utc)
    header = (f"CPU: {_cpu_name()} ({os.cpu_count()} CPUs); torch {torch.__version__}, emcee {emcee.__version__}, "
              f"astrobayes {__version__}; {torch.get_num_threads()} torch thread(s); "
              f"{now:%Y-%m-%d %H:%M} UTC; 1-minute load average at start {_load()}")
    print(header, flush=True)
    size_map, train_s, map_error = train_map(args.map_epochs)
    setup = (f"Model: tutorial 02's HierarchicalModel (hyperparameters μ, w, a; one latent per object, log M*; "
             f"DeltaMap = Regressor (64, 64) trained {args.map_epochs} epochs in {train_s:.1f} s, max error "
             f"{map_error:.3f} dex); K = {args.draws} importance draws per object ({args.draw_mode}); "
             f"(a) median of {args.repeats} log_prob calls on {args.walkers} walkers, timed in rounds over N; "
             f"(b) run_emcee with {args.walkers} walkers (half-ensemble calls of {args.walkers // 2}), up to {args.steps} steps, "
             f"after a 3-step warm-up run. --objects {' '.join(map(str, args.objects))}, seed {args.seed}.")
    print(setup, flush=True)

    rows = []
    for n in args.objects:
        rows.append(build(n, size_map, args))
        print(f"  N = {n:,}: model and cache built in {rows[-1]['build_s']:.2f} s", file=sys.stderr, flush=True)
    calls_before = size_map.n_calls
    for _ in range(args.repeats):  # (a) in rounds over N: a change of load on a shared machine hits every N alike
        for row in rows:
            time_call(row)
    if size_map.n_calls != calls_before:
        raise RuntimeError("the delta map ran during the timed log_prob calls (it should be cached)")
    for row in rows:
        measure(row, size_map, args)
        row.pop("model")
        print(f"  N = {row['n']:,}: (a) {row['batch_rate']:,.0f} evaluations/s, (b) {row['emcee_rate']:,.0f} "
              f"evaluations/s over {row['steps']} steps, {row['object_rate']:.3g} object-evaluations/s",
              file=sys.stderr, flush=True)

    lines = [(f"| objects N | (a) evaluations / s | (a) s per call of {args.walkers} (min–max) "
              "| (a) CPU s per call | ns per walker·object·draw | (b) emcee steps | (b) evaluations / s "
              "| (b) object-evaluations / s | inside prior | acceptance | build [s] | map calls timed | load |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['batch_rate']:,.0f} | {r['call_s']:.4g} ({r['call_range'][0]:.3g}–"
                     f"{r['call_range'][1]:.3g}) | {r['cpu_call_s']:.4g} | {r['ns_per_term']:.1f} | {r['steps']} "
                     f"| {r['emcee_rate']:,.0f} | {r['object_rate']:.3g} | {r['inside']:.3f} | {r['acceptance']:.2f} | {r['build_s']:.2f} "
                     f"| {r['map_calls']} | {r['load']} |")
    summary = []
    if len(rows) >= 2:
        for r in rows:
            r["eval_time"], r["emcee_time"] = 1 / r["batch_rate"], 1 / r["emcee_rate"]
        b_a, b_b = _exponent(rows, "eval_time"), _exponent(rows, "emcee_time")
        b_cpu = _exponent(rows, "cpu_call_s")
        span = f"N = {rows[0]['n']:,} → {rows[-1]['n']:,}"
        summary.append(f"Time per evaluation ∝ N^b, {span}: b = {b_a:.2f} for (a) batched log_prob "
                       f"({_growth(b_a)}; b = {b_cpu:.2f} on the process's CPU time), b = {b_b:.2f} for (b) "
                       f"emcee ({_growth(b_b)}).")
        if len(rows) >= 3:
            top = f"N = {rows[-2]['n']:,} → {rows[-1]['n']:,}"
            summary.append(f"Between the two largest, {top}: b = {_exponent(rows, 'eval_time', -2):.2f} (a; "
                           f"{_exponent(rows, 'cpu_call_s', -2):.2f} on CPU time), "
                           f"{_exponent(rows, 'emcee_time', -2):.2f} (b).")
        summary += ["", ("An evaluation costs walkers × N × K elementwise terms (population, measurement, "
                         "log-sum-exp over the K draws) in blocks of 2¹⁸ elements; the map is cached and never "
                         "runs in them, so the expected growth is linear in N (and in K) once fixed per-call costs "
                         "are small. A full run costs steps × walkers evaluations: divide by the (b) rate.")]
    body = "\n".join(["", *lines, "", *summary]) + "\n"
    print(body)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(header + "\n\n" + setup + "\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
