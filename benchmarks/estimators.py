"""Training throughput and peak memory of every astrobayes estimator.

Prints a Markdown table (the source of the numbers in README's "Performance"
section). Each estimator runs in its own Python process so that its peak
memory is its own and a crash or a missing module cannot stop the others.

Usage::

    python benchmarks/estimators.py                      # all, device "auto"
    python benchmarks/estimators.py --only mdn --epochs 10
    python benchmarks/estimators.py --device cuda --n 65536 --markdown perf.md

Throughput is training rows per second of wall time, from the training
histories (rows × epochs / seconds, no validation split, after a one-epoch
warm-up fit on 64 rows; for an ensemble, the fit of all its members). HMC
over network weights has no epochs: its throughput is rows × leapfrog steps per second of sampling (each
step is one gradient over all rows, like one epoch of full-batch training).
Peak memory is the increase of the process's peak resident set size during
``fit`` on the CPU (``resource.getrusage``), and ``torch.cuda.max_memory_allocated``
on a GPU.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HMC_MAX_ROWS = 4096

# Name → (what it is, the data it trains on). Builders live in _build().
CASES = {
    "regressor": ("Regressor (MSE)", "tabular 8 → 2"),
    "regressor_hetero": ("Regressor (heteroscedastic)", "tabular 8 → 2"),
    "classifier": ("Classifier (3 classes)", "tabular 8 → 3 labels"),
    "mdn": ("MixtureDensityNetwork (5 components)", "tabular 8 → 2"),
    "flow_maf": ("ConditionalFlow (maf, 5 transforms)", "tabular 8 → 2"),
    "flow_nsf": ("ConditionalFlow (nsf, 5 transforms)", "tabular 8 → 2"),
    "flow_realnvp": ("ConditionalFlow (realnvp, 5 transforms)", "tabular 8 → 2"),
    "deep_ensemble": ("DeepEnsemble (5 × Regressor)", "tabular 8 → 2"),
    "mc_dropout": ("MCDropout (Regressor, p = 0.1)", "tabular 8 → 2"),
    "variational_bnn": ("VariationalBNN", "tabular 8 → 2"),
    "hmc_bnn": ("HMCBNN (hidden 32; 150 iterations × 20 leapfrog steps)", "tabular 8 → 2, ≤ 4096 rows"),
    "rnn_regressor": ("Regressor + RNNEmbedding (GRU)", "sequences ≤ 40 steps × 2"),
    "deepset_regressor": ("Regressor + DeepSetEmbedding", "sets ≤ 30 members × 3"),
    "cnn_regressor": ("Regressor + CNNEmbedding", "images 1 × 32 × 32"),
}


def _tabular(n: int, rng: np.random.Generator, labels: bool = False):
    x = rng.normal(size=(n, 8)).astype(np.float32)
    signal = np.stack([np.sin(x[:, 0]) + x[:, 1] * x[:, 2], np.tanh(x[:, 3] - x[:, 4])], axis=1)
    if labels:
        return x, np.digitize(signal[:, 0] + 0.3 * rng.normal(size=n), [-0.5, 0.5])
    return x, (signal + 0.1 * rng.normal(size=signal.shape)).astype(np.float32)


def _padded(n: int, length: int, channels: int, rng: np.random.Generator):
    """Variable-length objects, observed entries first, padding masked out."""
    values = rng.normal(size=(n, length, channels)).astype(np.float32)
    counts = rng.integers(length // 4, length + 1, size=n)
    mask = np.arange(length)[None, :] < counts[:, None]
    target = np.where(mask, values[..., 0], 0).sum(1) / counts + 0.05 * rng.normal(size=n)
    return (values, mask), target[:, None].astype(np.float32)


def _build(name: str, n: int, rng: np.random.Generator):
    """(estimator, x, y) for one benchmark case; imports only what the case needs."""
    from astrobayes.estimators.regression import Regressor

    if name in ("regressor", "regressor_hetero"):
        return (Regressor(hidden=(64, 64), heteroscedastic=name == "regressor_hetero"), *_tabular(n, rng))
    if name == "classifier":
        from astrobayes.estimators.classifier import Classifier
        return (Classifier(hidden=(64, 64)), *_tabular(n, rng, labels=True))
    if name == "mdn":
        from astrobayes.estimators.mdn import MixtureDensityNetwork
        return (MixtureDensityNetwork(n_components=5, hidden=(64, 64)), *_tabular(n, rng))
    if name.startswith("flow_"):
        from astrobayes.estimators.flows import ConditionalFlow
        return (ConditionalFlow(flow=name[len("flow_"):], n_transforms=5, hidden_features=64), *_tabular(n, rng))
    if name == "deep_ensemble":
        from astrobayes.estimators.ensemble import DeepEnsemble
        return (DeepEnsemble(Regressor(hidden=(64, 64), heteroscedastic=True), n_members=5), *_tabular(n, rng))
    if name == "mc_dropout":
        from astrobayes.estimators.ensemble import MCDropout
        return (MCDropout(Regressor(hidden=(64, 64), dropout=0.1), n_passes=100), *_tabular(n, rng))
    if name == "variational_bnn":
        from astrobayes.estimators.bayesian import VariationalBNN
        return (VariationalBNN(hidden=(64, 64)), *_tabular(n, rng))
    if name == "hmc_bnn":
        from astrobayes.estimators.hmc import HMCBNN
        sampler = {"n_warmup": 100, "n_samples": 50, "thin": 1, "n_leapfrog": 20}  # throughput barely depends on these
        # Full-batch gradients at every leapfrog step: HMC is meant for <~ 10^4 rows.
        return (HMCBNN(hidden=(32,), **sampler), *_tabular(min(n, HMC_MAX_ROWS), rng))
    from astrobayes.estimators import embeddings

    if name == "rnn_regressor":
        x, y = _padded(n, 40, 2, rng)
        return Regressor(hidden=(64,), embedding=embeddings.RNNEmbedding(in_channels=2)), x, y
    if name == "deepset_regressor":
        x, y = _padded(n, 30, 3, rng)
        return Regressor(hidden=(64,), embedding=embeddings.DeepSetEmbedding(in_channels=3)), x, y
    if name == "cnn_regressor":
        images = rng.normal(size=(n, 1, 32, 32)).astype(np.float32)
        target = images[:, 0, 8:24, 8:24].mean(axis=(1, 2))[:, None]
        return Regressor(hidden=(64,), embedding=embeddings.CNNEmbedding(in_channels=1, dim=2)), images, target
    raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(CASES)}")


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _throughput(model, result, n: int, epochs: int, wall: float) -> tuple[float, str]:
    """Training throughput and its unit (see the module docstring)."""
    if hasattr(model, "sampling_seconds"):
        # HMC has no epochs. Each leapfrog step is one gradient over all rows,
        # like one epoch of full-batch training, so count rows × leapfrog steps
        # (jitter draws the steps around n_leapfrog, which is their mean).
        steps = (model.n_warmup + model.n_samples * model.thin) * model.n_leapfrog
        return n * steps / model.sampling_seconds, "rows·leapfrog steps/s (HMC sampling)"
    histories = result if isinstance(result, (list, tuple)) else [result]
    if all(hasattr(h, "samples_per_second") for h in histories):
        # An ensemble trains its members one after the other: dataset rows per
        # second of the whole fit, so that rows × epochs / throughput is its fit time.
        rows = sum(h.n_train * h.epochs for h in histories) / len(histories)
        return rows / sum(h.seconds for h in histories), "rows/s"
    return n * epochs / wall, "rows/s (wall time of fit)"


def run_case(name: str, device: str, epochs: int, n: int) -> dict:
    """Train one case in this process and measure it; never raises for a missing module."""
    import torch

    from astrobayes.core.device import resolve_device

    resolved = resolve_device(device)
    rng = np.random.default_rng(12345)
    try:
        warm_model, warm_x, warm_y = _build(name, 64, rng)
    except ImportError as err:
        return {"name": name, "skipped": f"module not available ({err})"}
    model, x, y = _build(name, n, rng)
    options = {"epochs": epochs, "seed": 0, "device": str(resolved), "progress": False, "validation_fraction": 0.0}
    if name == "hmc_bnn":  # full-batch MAP fit first (its own defaults, fewer epochs), then sampling
        options = {"epochs": 200, "seed": 0, "device": str(resolved), "progress": False}
    # A tiny fit first: one-time costs (lazy library loading, kernel selection,
    # allocator pools) are then neither timed nor counted as the model's memory.
    warm_model.fit(warm_x, warm_y, **{**options, "epochs": 1})
    del warm_model
    if resolved.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(resolved)
        before = torch.cuda.memory_allocated(resolved) / 2**20
    else:
        before = _peak_rss_mib()
    start = time.perf_counter()
    result = model.fit(x, y, **options)
    if resolved.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(resolved) / 2**20 if resolved.type == "cuda" else _peak_rss_mib()) - before
    rate, unit = _throughput(model, result, len(y), epochs, wall)
    return {"name": name, "throughput": rate, "unit": unit, "peak_mib": max(peak, 0.0), "fit_seconds": wall}


def _environment(device: str) -> dict:
    import torch

    from astrobayes import __version__
    from astrobayes.core.device import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        name = torch.cuda.get_device_name(resolved)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {"device": f"{resolved} ({name})", "torch": str(torch.__version__), "astrobayes": __version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count()}


def to_markdown(results: list[dict], env: dict, epochs: int, n: int) -> str:
    memory = "peak GPU memory allocated" if env["device"].startswith("cuda") else "peak RSS increase"
    lines = [f"Device: {env['device']}; torch {env['torch']}, astrobayes {env['astrobayes']}; "
             f"{env['threads']} torch thread(s) of {env['cpus']} CPUs; n = {n} rows, {epochs} epoch(s); "
             f"{_dt.date.today().isoformat()}.", "",
             f"| estimator | data | training throughput | {memory} (MiB) | fit time (s) |",
             "|---|---|---:|---:|---:|"]
    for r in results:
        label, data = CASES[r["name"]]
        if "skipped" in r or "failed" in r:
            lines.append(f"| {label} | {data} | {r.get('skipped') or r.get('failed')} | | |")
        else:
            lines.append(f"| {label} | {data} | {r['throughput']:,.0f} {r['unit']} | {r['peak_mib']:.0f} "
                         f"| {r['fit_seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per estimator (default 5)")
    parser.add_argument("--n", type=int, default=16384, help="training rows per estimator (default 16384)")
    parser.add_argument("--only", action="append", choices=list(CASES), metavar="NAME",
                        help=f"run only this case (repeatable): {', '.join(CASES)}")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--worker", choices=list(CASES), help=argparse.SUPPRESS)  # one case, JSON out
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.n < 16:
        parser.error("--epochs must be >= 1 and --n >= 16")
    if args.worker:
        print(json.dumps(run_case(args.worker, args.device, args.epochs, args.n)))
        return 0

    env = _environment(args.device)
    print(f"benchmarking on {env['device']} with {env['threads']} thread(s)", file=sys.stderr)
    results, failed = [], False
    for name in args.only or list(CASES):
        command = [sys.executable, __file__, "--worker", name, "--device", args.device,
                   "--epochs", str(args.epochs), "--n", str(args.n)]
        done = subprocess.run(command, capture_output=True, text=True)
        try:
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            result, failed = {"name": name, "failed": f"failed: {last}"}, True
        if "skipped" in result:
            print(f"  {name}: skipped, {result['skipped']}", file=sys.stderr)
        elif "failed" not in result:
            print(f"  {name}: {result['throughput']:,.0f} {result['unit']}", file=sys.stderr)
        else:
            print(f"  {name}: {result['failed']}", file=sys.stderr)
        results.append(result)
    table = to_markdown(results, env, args.epochs, args.n)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
