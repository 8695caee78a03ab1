"""Supernova classifier throughput: lightcurves classified per second, and training seconds per epoch.

On the shipped 4000-object SNPhotCC subset (repeated to ``--n`` objects):

* preprocessing alone (SNANA-style observations → padded epoch sequences);
* ``classify`` end to end (preprocessing + network + table) for one network,
  a 5-member deep ensemble and MC dropout with 30 passes;
* training seconds per epoch (×5 augmentation of 2000 objects = 10,000 sequences).

Each on the CPU with ``--threads`` torch threads, and on CUDA when torch sees a GPU.

    .venv/bin/python benchmarks/supernovae_speed.py --markdown benchmarks/results/supernovae_speed.md
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np


def _repeated(lcs, n: int, lightcurves_class):
    """The first ``n`` objects of the collection repeated as often as needed, copy k renamed ``<id>_<k>``."""
    from astropy.table import vstack

    copies = int(np.ceil(n / len(lcs)))
    observations, meta = [], []
    for k in range(copies):
        obs, rows = lcs.observations.copy(), lcs.meta.copy()
        obs["object_id"] = [f"{i}_{k}" for i in obs["object_id"]]
        rows["object_id"] = [f"{i}_{k}" for i in rows["object_id"]]
        observations.append(obs)
        meta.append(rows)
    big = lightcurves_class(vstack(observations), vstack(meta), bands=lcs.bands)
    return big.select(np.arange(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="objects to classify")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from astrobayes import __version__
    from astrobayes.supernovae import (HOST_PHOTOZ, SPCC_CATALOG, Lightcurves, build_sequences, classify,
                                       read_lightcurves, train_classifier)

    warnings.filterwarnings("ignore", message=".*RNN module weights.*")
    lines = []

    def say(line=""):
        print(line, flush=True)
        lines.append(line)

    lcs = read_lightcurves(SPCC_CATALOG)
    big = _repeated(lcs, args.n, Lightcurves)
    train = lcs.select(np.arange(2000))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    say(f"astrobayes {__version__}, torch {torch.__version__}; GPU: {gpu}; {args.n} lightcurves "
        f"(the 4000-object subset repeated); median {int(np.median(big.meta['n_obs']))} observations each")
    say()
    say("| device | threads | what | lightcurves / s | training s / epoch |")
    say("|---|---:|---|---:|---:|")
    t0 = time.perf_counter()
    build_sequences(big)
    prep_rate = len(big) / (time.perf_counter() - t0)
    say(f"| cpu | – | preprocessing only (build_sequences) | {prep_rate:.0f} | |")
    for device in devices:
        for threads in (args.threads if device == "cpu" else [args.threads[0]]):
            torch.set_num_threads(threads)
            for estimator, options in (("single", {}), ("ensemble", {"n_members": 5}),
                                       ("mc_dropout", {"n_passes": 30})):
                model = train_classifier(train, estimator=estimator, epochs=3, augment=5, patience=None,
                                         redshift_columns=HOST_PHOTOZ,
                                         device=device, seed=0, progress=False, **options)
                histories = model.estimator.history
                histories = histories if isinstance(histories, list) else [histories]
                members = len(histories)
                per_epoch = sum(h.seconds for h in histories) / sum(h.epochs for h in histories)
                classify(lcs.select(np.arange(200)), model)  # warm-up
                t0 = time.perf_counter()
                classify(big, model)
                rate = len(big) / (time.perf_counter() - t0)
                what = {"single": "classify, one network", "ensemble": "classify, 5-member ensemble",
                        "mc_dropout": "classify, MC dropout (30 passes)"}[estimator]
                epoch_cell = f"{per_epoch:.2f}" + (" (per member)" if members > 1 else "")
                say(f"| {device} | {threads} | {what} | {rate:.0f} | {epoch_cell} |")
    say()
    n_fit = model.meta["n_train"]
    say("Training s / epoch is the training loop's own wall time (History.seconds / epochs: one pass over the "
        f"{5 * n_fit} augmented sequences of {n_fit} training objects plus the validation loss of "
        f"{model.meta['n_validation']}); the network is the default 2-layer bidirectional LSTM with 16 units. "
        "MC dropout runs the whole network once per pass (its dropout is in the dense head only).")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
