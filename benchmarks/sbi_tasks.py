"""astrobayes NPE against sbi's default NPE on two sbibm tasks (two_moons, slcp).

For each task (definitions in ``sbi_tasks_reference.py``, after Lueckmann et
al. 2021, AISTATS, PMLR 130, 343) the script

1. draws 10⁴ simulations (θ from the prior, x from the simulator; one seed,
   the *same* pairs for both methods);
2. trains astrobayes :class:`~astrobayes.inference.NPE` with the fixed
   settings in :data:`ASTROBAYES_SETTINGS` and sbi's ``NPE`` (NPE-C) with
   sbi's defaults (MAF, 5 transforms, 50 hidden units; batch 200, learning
   rate 5·10⁻⁴, 10 % validation, stop after 20 epochs without improvement);
3. draws 10⁴ posterior samples per observation from each (per observation,
   as a user would; both reject draws outside the prior box);
4. scores each against 10⁴ reference draws (exact for two_moons, a long
   emcee run for slcp) with :func:`astrobayes.inference.diagnostics.c2st`
   (0.5 = indistinguishable from the reference).

Wall time is training + sampling (``time.perf_counter``), with the same
number of torch threads for both (``--threads``). Reference sampling and
C2ST are not timed. Observations are sbibm-style: θ_true drawn from the
prior with fixed seeds and x_obs simulated from it (sbibm's own files cannot
be downloaded here), so the numbers are comparable in kind, not digit for
digit, with the sbibm paper.

Run::

    .venv/bin/python benchmarks/sbi_tasks.py --markdown sbi_tasks.md
    .venv/bin/python benchmarks/sbi_tasks.py --quick          # smoke run, ~2 minutes

sbi is a benchmark-only extra (``pip install -e ".[bench]"``); without it
the script runs astrobayes alone and says so.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sbi_tasks_reference as tasks

import astrobayes
from astrobayes.inference import NPE
from astrobayes.inference.diagnostics import c2st

#: astrobayes NPE settings, fixed for every task and observation (never tuned per observation).
#: How they were chosen: on *development* seeds (``--seed 1 --observation-seed 2000000``,
#: 3 observations; the reported run uses other seeds) we compared five settings, all with a
#: 5-transform, 50-unit flow (sbi's size): NSF at batch 256 / lr 1e-3 / patience 20 (the
#: library defaults), NSF 512 / 2e-3 / 20, NSF 1024 / 3e-3 / 20, NSF 1024 / 3e-3 / 10 and
#: MAF 512 / 2e-3 / 20. NSF beat MAF on both tasks (dev C2ST two_moons 0.58 vs 0.65, slcp 0.90
#: vs 0.96); batches of 512-1024 take 2-5x fewer optimiser steps per epoch at similar C2ST, and
#: patience 10 halved the epochs for +0.01 C2ST on two_moons. We took the fastest NSF setting.
#: Dev numbers are in benchmarks/README.md (sbi_tasks section).
ASTROBAYES_SETTINGS = {
    "density": "nsf",
    "estimator": {"n_transforms": 5, "hidden_features": 50, "n_blocks": 2, "n_bins": 8},
    "training": {"batch_size": 1024, "learning_rate": 3e-3, "validation_fraction": 0.1, "patience": 10,
                 "epochs": 500, "scheduler": "plateau"},
}


#: the library's own defaults (``NPE(prior)``, ``train()``), for the optional comparison row
LIBRARY_DEFAULTS = {"density": "nsf", "estimator": {}, "training": {}}


def run_astrobayes(task, theta, x, x_obs, n_draws, seed, settings=None):
    """Train astrobayes NPE and draw n_draws per observation → (draws list, train s, sample s, epochs)."""
    settings = ASTROBAYES_SETTINGS if settings is None else settings
    start = time.perf_counter()
    npe = NPE(tasks.prior(task), density=settings["density"], **settings["estimator"])
    posterior = npe.append_simulations(theta, x).train(seed=seed, progress=False, device="cpu",
                                                       **settings["training"])
    trained = time.perf_counter()
    draws = [posterior.sample(n_draws, obs, seed=seed + k) for k, obs in enumerate(x_obs)]
    done = time.perf_counter()
    epochs = npe.estimator.history.epochs if npe.estimator.history is not None else None
    return draws, trained - start, done - trained, epochs


class _NoTracker:
    """sbi's tracker protocol doing nothing: by default sbi writes TensorBoard logs to ./sbi-logs."""

    log_dir = None

    def log_metric(self, name, value, step=None):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


def run_sbi(task, theta, x, x_obs, n_draws, seed):
    """Train sbi's default NPE and draw n_draws per observation → (draws list, train s, sample s)."""
    from sbi.inference import NPE as SbiNPE
    from sbi.utils import BoxUniform as SbiBoxUniform

    prior = tasks.prior(task)
    torch.manual_seed(seed)
    start = time.perf_counter()
    sbi_prior = SbiBoxUniform(torch.as_tensor(prior.low, dtype=torch.float32),
                              torch.as_tensor(prior.high, dtype=torch.float32))
    # no TensorBoard files (the one departure from sbi's defaults; it only saves sbi time)
    try:
        inference = SbiNPE(prior=sbi_prior, show_progress_bars=False, tracker=_NoTracker())
    except TypeError:  # older sbi versions have no tracker argument
        inference = SbiNPE(prior=sbi_prior, show_progress_bars=False)
    estimator = inference.append_simulations(torch.as_tensor(theta, dtype=torch.float32),
                                             torch.as_tensor(x, dtype=torch.float32)).train()
    posterior = inference.build_posterior(estimator)
    trained = time.perf_counter()
    draws = [posterior.sample((n_draws,), x=torch.as_tensor(obs, dtype=torch.float32),
                              show_progress_bars=False).numpy().astype(np.float64) for obs in x_obs]
    done = time.perf_counter()
    epochs = inference._summary.get("epochs_trained", [None])[-1]
    return draws, trained - start, done - trained, epochs


def sbi_version() -> str | None:
    try:
        import sbi
    except Exception as error:  # noqa: BLE001 -- any import failure (also a broken install) means: astrobayes alone
        print(f"# sbi is not importable ({type(error).__name__}: {error}); running astrobayes only")
        return None
    return sbi.__version__


def benchmark(args) -> list[dict]:
    methods = {"astrobayes NPE": run_astrobayes}
    if args.library_defaults:
        methods["astrobayes NPE (library defaults)"] = functools.partial(run_astrobayes, settings=LIBRARY_DEFAULTS)
    if args.sbi_version is not None and not args.no_sbi:
        methods["sbi NPE (default)"] = run_sbi
    rows = []
    for task in args.tasks:
        _, x_obs = tasks.observations(task, args.observations, seed=args.observation_seed)
        start = time.perf_counter()
        references = [tasks.reference_posterior(task, obs, args.draws, seed=k) for k, obs in enumerate(x_obs)]
        print(f"# {task}: {len(x_obs)} observations, references in {time.perf_counter() - start:.1f} s", flush=True)
        theta = tasks.prior(task).sample(args.simulations, seed=args.seed).numpy()
        x = tasks.simulate(task, theta, np.random.default_rng(args.seed))
        # repeats alternate the order of the methods, so that a slow spell of a shared machine does not
        # always fall on the same one; C2ST uses the draws of the first repeat (seeds are fixed, so the
        # fits repeat exactly), the table the median wall time
        times = {name: [] for name in methods}
        results = {}
        for repeat in range(args.repeats):
            order = list(methods) if repeat % 2 == 0 else list(methods)[::-1]
            for name in order:
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                with warnings.catch_warnings():
                    # sbi's and normflows' deprecation chatter; other warnings (e.g. low acceptance) stay visible
                    warnings.simplefilter("ignore", DeprecationWarning)
                    warnings.simplefilter("ignore", FutureWarning)
                    draws, train_s, sample_s, epochs = methods[name](task, theta, x, x_obs, args.draws, args.seed)
                times[name].append((train_s, sample_s))
                results.setdefault(name, (draws, epochs))
                print(f"# {task:9s} {name:33s} repeat {repeat + 1}: train {train_s:.1f} s ({epochs} epochs)  "
                      f"sample {sample_s:.1f} s  (load before: {load:.2f})", flush=True)
        for name in methods:
            draws, epochs = results[name]
            scores = [c2st(ref, q[np.isfinite(q).all(1)], seed=k) for k, (ref, q) in enumerate(zip(references, draws))]
            train_s, sample_s = np.median(np.array(times[name]), axis=0)
            rows.append({"task": task, "method": name, "c2st": np.array(scores), "train_s": train_s,
                         "sample_s": sample_s, "wall_s": train_s + sample_s, "epochs": epochs,
                         "all_wall_s": [sum(t) for t in times[name]]})
            print(f"# {task:9s} {name:33s} C2ST {np.round(scores, 3)}  wall times "
                  f"{', '.join(f'{t:.1f}' for t in rows[-1]['all_wall_s'])} s", flush=True)
    return rows


def markdown(rows: list[dict], args) -> str:
    lines = ["| task | method | C2ST (mean ± std) | wall time [s] | train / sample [s] | epochs | ratio to sbi |",
             "|---|---|---|---|---|---|---|"]
    sbi_wall = {r["task"]: r["wall_s"] for r in rows if r["method"].startswith("sbi")}
    for r in rows:
        ratio = f"{r['wall_s'] / sbi_wall[r['task']]:.2f}" if r["task"] in sbi_wall else "n/a"
        spread = r["c2st"].std(ddof=1) if len(r["c2st"]) > 1 else 0.0
        lines.append(f"| {r['task']} | {r['method']} | {r['c2st'].mean():.3f} ± {spread:.3f} | {r['wall_s']:.1f} "
                     f"| {r['train_s']:.1f} / {r['sample_s']:.1f} | {r['epochs']} | {ratio} |")
    load = [f"{v:.2f}" for v in os.getloadavg()] if hasattr(os, "getloadavg") else ["n/a"]
    footer = (f"Wall time: median of {args.repeats} repeat(s). {args.simulations} simulations, "
              f"{args.draws} posterior and reference draws per observation, "
              f"{args.observations} observations per task (C2ST ± its standard deviation over them); "
              f"torch {torch.__version__}, sbi {args.sbi_version or 'not importable (not run)'}, astrobayes "
              f"{astrobayes.__version__}; device cpu ({platform.processor() or platform.machine()}), "
              f"torch threads {args.threads}; 1-minute load average at the start {args.load_at_start}, "
              f"load averages at the end {', '.join(load)}.")
    lines += ["", footer]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=tasks.TASKS, default=list(tasks.TASKS))
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=10_000, help="posterior and reference draws per observation")
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both methods")
    parser.add_argument("--seed", type=int, default=0, help="seeds the simulations and both trainings")
    parser.add_argument("--observation-seed", type=int, default=1_000_000,
                        help="seed of the first observation (observation k uses seed + k)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each training this many times (alternating the order); the table shows medians")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2000 simulations, 2000 draws, 2 observations")
    parser.add_argument("--library-defaults", action="store_true",
                        help="also run astrobayes NPE with the library defaults (NSF 5 x 64, batch 256, lr 1e-3)")
    parser.add_argument("--no-sbi", action="store_true", help="run astrobayes alone")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.quick:
        args.simulations, args.draws, args.observations = 2000, 2000, 2
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.sbi_version = sbi_version()
    # the machine may be shared: the load average says how far the wall times can be trusted
    args.load_at_start = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
    rows = benchmark(args)
    table = markdown(rows, args)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
