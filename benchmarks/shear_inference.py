"""Cosmic shear on HEALPix: the C_ℓ model against iCosmo, simulation and summary speed, and both inference routes.

It prints:

1. the C_ℓ model (EH98 with wiggles, Smith et al. 2003 halofit, Smail n(z) with median z = 1) against the
   iCosmo table shipped in ``catalogs/shear/`` (Ω_m = 0.25, σ₈ = 0.8, h = 0.7, n_s = 0.96; Ω_b = 0.045 assumed):
   max and median |ratio − 1| per ℓ range, and C_ℓ spectra per second;
2. speed at each ``--nside``: log-normal κ maps simulated per second (with shape noise and the footprint), and
   per-map cost of band powers, peak counts + Minkowski functionals, and the HEALPix network's forward pass;
3. inference on a ``--nside`` survey (spherical cap of ``--area`` deg², n_gal = 10 arcmin⁻², σ_e = 0.26,
   log-normal κ): ``--train`` simulations from the uniform prior Ω_m ∈ [0.15, 0.5], σ₈ ∈ [0.5, 1.1] train
   (a) the band-power emulator used in a Gaussian likelihood with emcee (covariance from ``--fiducial`` maps at
   Ω_m = 0.3, σ₈ = 0.8), (b) NPE on log band powers, (c) NPE on band powers + peaks + Minkowski functionals,
   and (d) NPE on the map through the HEALPix graph network (``--map-epochs`` > 0). On ``--test`` held-out
   simulations: coverage of the central 68 % / 95 % S₈ intervals with the binomial 3σ band, and the mean S₈
   posterior standard deviation per route (the ratio to route (a) is the "at least as tight" check).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shear_inference.py --workers 14 --markdown benchmarks/results/shear.md
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shear_inference.py --speed-nside 16 --nside 16 --train 500 \\
        --test 20 --fiducial 100 --map-epochs 1
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _band(n: int, p: float) -> tuple[float, float]:
    half = 3 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed-nside", type=int, nargs="*", default=[64, 128], help="none: skip the speed part")
    parser.add_argument("--speed-maps", type=int, default=50, help="maps per speed measurement")
    parser.add_argument("--nside", type=int, default=32, help="resolution of the inference survey")
    parser.add_argument("--area", type=float, default=5000.0, help="footprint in deg²")
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--fiducial", type=int, default=1000, help="maps for the band-power covariance")
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--mcmc-steps", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=300, help="emulator and summary-NPE epochs (early stopping)")
    parser.add_argument("--map-epochs", type=int, default=30, help="map-level NPE epochs (0: skip)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for the simulations and the per-map emcee fits of route (a); with N > 1 "
                             "the simulations come in N chunks with their own seeds (another, equally valid "
                             "training set than with 1)")
    parser.add_argument("--batch-size", type=int, default=128, help="NPE batch size on summaries")
    parser.add_argument("--map-batch-size", type=int, default=64, help="NPE batch size on maps")
    parser.add_argument("--device", default="auto", help="device for network training and the forward-pass timing")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import astropy.units as u

    from astrobayes.core.device import resolve_device
    from astrobayes.estimators.healpix import HealpixEmbedding
    from astrobayes.shear import convergence_cl, read_icosmo_reference
    from astrobayes.shear.inference import (BandPowerLikelihood, ShearSurvey, s8, shear_prior,
                                            train_band_power_emulator, train_shear_posterior)

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    say(f"# Cosmic shear: {args.threads} thread(s), torch {torch.__version__}{gpu}\n")

    # 1. C_ℓ model ------------------------------------------------------------------------------
    ell, reference = read_icosmo_reference()
    ratio = convergence_cl(ell, 0.25, 0.8, omega_b=0.045) / reference
    say("## 1. C_ℓ model against iCosmo (Ω_b = 0.045 assumed)\n")
    say("| ℓ range | max \\|ratio − 1\\| | median \\|ratio − 1\\| |")
    say("|---|---|---|")
    for low, high in ((10, 100), (100, 1000), (1000, 10000)):
        rows = (ell >= low) & (ell <= high)
        say(f"| {low}–{high} | {np.abs(ratio[rows] - 1).max():.4f} | {np.median(np.abs(ratio[rows] - 1)):.4f} |")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    convergence_cl(np.arange(2, 257), rng.uniform(0.15, 0.5, 1000), rng.uniform(0.5, 1.1, 1000))
    say(f"\n{1000 / (time.perf_counter() - start):.0f} spectra/s (ℓ = 2–256, batches of 1000)\n")

    # 2. speed ------------------------------------------------------------------------------------
    if args.speed_nside:
        say(f"## 2. Speed (log-normal κ maps with noise on a {args.area:.0f} deg² cap; {args.speed_maps} maps each)\n")
        say("| nside | maps/s | band powers/s | band powers + peaks + Minkowski/s | HEALPix net forward maps/s "
            "(batch 32) |")
        say("|---:|---:|---:|---:|---:|")
    prior = shear_prior()
    device = resolve_device(args.device)
    repeats = 20 if device.type == "cuda" else 1
    for nside in args.speed_nside:
        survey = ShearSurvey(nside, area=args.area * u.deg ** 2)
        theta = prior.sample(args.speed_maps, seed=1).numpy()
        start = time.perf_counter()
        maps = survey.maps(theta, seed=2)
        map_rate = len(maps) / (time.perf_counter() - start)
        start = time.perf_counter()
        survey.band_powers(maps)
        cl_rate = len(maps) / (time.perf_counter() - start)
        start = time.perf_counter()
        survey.summaries(maps[: max(1, len(maps) // 5)])
        summary_rate = max(1, len(maps) // 5) / (time.perf_counter() - start)
        network = HealpixEmbedding(nside, channels=(8, 16, 32), order=3, output_dim=32).eval().to(device)
        batch = torch.as_tensor(survey.nest_maps(maps[:32]), dtype=torch.float32, device=device)
        with torch.no_grad():
            network(batch)
            _synchronize(device)
            start = time.perf_counter()
            for _ in range(repeats):
                network(batch)
            _synchronize(device)
        net_rate = repeats * len(batch) / (time.perf_counter() - start)
        say(f"| {nside} | {map_rate:.1f} | {cl_rate:.0f} | {summary_rate:.1f} | {net_rate:.1f} ({device.type}) |")
    if args.speed_nside:
        say()

    # 3. inference --------------------------------------------------------------------------------
    if not args.train:
        return _write(args, lines)
    survey = ShearSurvey(args.nside, area=args.area * u.deg ** 2)
    say(f"## 3. Inference: {survey}, {args.train} training simulations, {args.test} held-out\n")
    start = time.perf_counter()
    _FITS["survey"] = survey
    theta = prior.sample(args.train, seed=10).numpy()
    maps, band_powers, summaries = _simulate(theta, 11, args.workers)
    say(f"simulating and summarising the training set on {args.workers} process(es): "
        f"{time.perf_counter() - start:.0f} s")
    test_theta = prior.sample(args.test, seed=20).numpy()
    test_maps, test_bp, test_summaries = _simulate(test_theta, 21, args.workers)
    truth = s8(test_theta)

    routes: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    emulator = train_band_power_emulator(theta, band_powers, epochs=args.epochs)
    fiducial = survey.band_powers(survey.maps(np.tile([0.3, 0.8], (args.fiducial, 1)), seed=12))
    likelihood = BandPowerLikelihood(emulator, fiducial, prior)
    say(f"emulator trained, and {args.fiducial} fiducial maps simulated for the covariance, in "
        f"{time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    emulator.to("cpu")  # one small batch per emcee step: the CPU is faster than a kernel launch, and forks safely
    _FITS.update(band_powers=test_bp, likelihood=likelihood, steps=args.mcmc_steps, draws=args.draws)
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            draws = pool.map(_fit_one, range(args.test))
    else:
        draws = [_fit_one(k) for k in range(args.test)]
    routes["(a) band-power emulator + emcee"] = s8(np.stack(draws))
    seconds["(a) band-power emulator + emcee"] = (time.perf_counter() - start) * args.workers / args.test
    say(f"(a) emcee fits ({args.mcmc_steps} steps × 32 walkers) of {args.test} maps on {args.workers} process(es): "
        f"{time.perf_counter() - start:.0f} s")

    def npe_route(name, x_train, x_test, **options):
        start = time.perf_counter()
        posterior = train_shear_posterior(theta, x_train, prior, device=args.device, **options)
        trained = time.perf_counter() - start
        history = posterior.estimator.history
        start = time.perf_counter()
        routes[name] = s8(posterior.sample(args.draws, x_test, seed=0))
        seconds[name] = (time.perf_counter() - start) / args.test
        say(f"{name}: trained in {trained:.0f} s ({len(history.train_loss)} epochs on {history.device}, best "
            f"{history.best_epoch + 1})")

    npe_route("(b) NPE on log band powers", np.log(band_powers), np.log(test_bp), epochs=args.epochs,
              batch_size=args.batch_size)
    scaled = np.c_[np.log(band_powers), summaries[:, band_powers.shape[1]:]]
    scaled_test = np.c_[np.log(test_bp), test_summaries[:, band_powers.shape[1]:]]
    npe_route("(c) NPE on band powers + peaks + Minkowski", scaled, scaled_test, epochs=args.epochs,
              batch_size=args.batch_size)
    if args.map_epochs:
        sigma = survey.simulator.noise_sigma
        npe_route("(d) NPE on the map (HEALPix graph network)", survey.nest_maps(maps) / sigma,
                  survey.nest_maps(test_maps) / sigma, nside=args.nside, mask=survey.mask, epochs=args.map_epochs,
                 batch_size=args.map_batch_size)

    say("\n| route | S₈ 68 % coverage | S₈ 95 % coverage | mean S₈ posterior std | ratio to (a) | sampling s per map (a: wall × processes) |")
    say("|---|---|---|---|---|---|")
    base = np.mean(np.std(routes["(a) band-power emulator + emcee"], axis=1))
    for name, values in routes.items():
        cells = []
        for level in (0.68, 0.95):
            lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)], axis=1)
            fraction = np.mean((truth >= lo) & (truth <= hi))
            low, high = _band(args.test, level)
            cells.append(f"{fraction:.3f} [{low:.3f}, {high:.3f}]")
        width = np.mean(np.std(values, axis=1))
        say(f"| {name} | {cells[0]} | {cells[1]} | {width:.4f} | {width / base:.2f} | {seconds[name]:.3g} |")
    say()
    _write(args, lines)


_FITS: dict = {}


def _simulate_chunk(job: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta, seed = job
    survey = _FITS["survey"]
    maps = survey.maps(theta, seed=seed)
    return maps.astype(np.float32), survey.band_powers(maps), survey.summaries(maps)


def _simulate(theta: np.ndarray, seed: int, workers: int):
    """Maps, band powers and summaries of ``theta``; with workers > 1, in chunks seeded seed·1000 + k."""
    if workers <= 1:
        return _simulate_chunk((theta, seed))
    jobs = [(chunk, seed * 1000 + k) for k, chunk in enumerate(np.array_split(theta, workers)) if len(chunk)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_simulate_chunk, jobs)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def _fit_one(k: int) -> np.ndarray:
    """One held-out map's emcee fit (a module-level function, so that forked workers can run it)."""
    from astrobayes.shear.inference import fit_band_powers

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = fit_band_powers(_FITS["band_powers"][k], _FITS["likelihood"], n_steps=_FITS["steps"], seed=k,
                                 progress=False)
    return result.samples[np.random.default_rng(k).choice(len(result.samples), _FITS["draws"])]


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _write(args, lines) -> None:
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
