"""Why a spline-flow NPE can train slower on a GPU than on one CPU core: seconds per epoch and a profile.

Trains the shear summary NPE (``nsf_coupling``, 4 transforms, 64 hidden units: the
``train_shear_posterior`` default) and a plain 64×64 Regressor on 20,000 rows of a
10-feature toy problem, batch 512 (40 steps per epoch, 3 epochs), on CUDA when torch
sees a GPU and on the CPU; then profiles one CUDA epoch of the NPE with
``torch.profiler`` and prints the operators by self CPU time (kernel launches, and
``aten::nonzero``, a host-device synchronisation, show where the time goes).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/flow_launch_overhead.py
"""
import time

import numpy as np
import torch

from astrobayes import Regressor
from astrobayes.shear.inference import shear_prior, train_shear_posterior


def main() -> None:
    prior = shear_prior()
    theta = prior.sample(20000, seed=0).numpy()
    x = np.random.default_rng(0).normal(size=(20000, 10)) + theta @ np.ones((2, 10))
    devices = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]
    for device in devices:
        start = time.perf_counter()
        train_shear_posterior(theta, x, prior, epochs=3, batch_size=512, patience=100, device=device)
        print(f"NPE nsf_coupling {device}: {(time.perf_counter() - start) / 3:.3f} s/epoch (40 steps)", flush=True)
        start = time.perf_counter()
        Regressor(hidden=(64, 64)).fit(theta, x, epochs=3, batch_size=512, device=device, progress=False)
        print(f"Regressor {device}: {(time.perf_counter() - start) / 3:.3f} s/epoch", flush=True)
    if "cuda" in devices:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            train_shear_posterior(theta, x, prior, epochs=1, batch_size=512, patience=100, device="cuda")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60))


if __name__ == "__main__":
    main()
