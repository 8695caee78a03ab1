"""Generative models of real galaxy stamps: VAE and WGAN-GP against a shuffled-real baseline, and VAE de-noising.

Part 1, real data: the Hubble Deep Field stamps shipped in ``catalogs/galaxies`` (32 × 32, sources detected at
3σ, isolated; :func:`astrobayes.galaxies.hubble_deep_field`) are split at random into a training half and a
held-out half. A :class:`~astrobayes.estimators.ConvVAE` and a :class:`~astrobayes.estimators.WGANGP` are trained
on the training half (8 rotations/reflections each, asinh scaling), and as many galaxies as the held-out half
are drawn from each. Morphology (flux, r50, ellipticity, concentration, asymmetry; adaptive moments;
:func:`astrobayes.galaxies.measure_morphology`) of the generated sets is compared with the held-out half by the
two-sample KS statistic and the Wasserstein-1 distance in units of the real standard deviation. The
baseline is the same comparison between two random halves of the real stamps (mean ± std over
``--splits`` splits, :func:`~astrobayes.galaxies.shuffled_baseline`): a generator as good as new real data
would sit inside it. ``KS crit`` is the two-sample KS statistic that two samples from one law exceed with
probability 0.001 at these sizes.

Part 2, simulations: a VAE trained on noisy rendered Sérsic stamps de-noises held-out ones; printed is the rms
of (reconstruction − noiseless truth) over that of (noisy − truth).

Usage::

    .venv/bin/python benchmarks/galaxies_generative.py --markdown benchmarks/results/galaxies_generative.md
    .venv/bin/python benchmarks/galaxies_generative.py --vae-epochs 5 --wgan-epochs 2 --splits 3   # a quick look
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

STATISTICS = ("flux", "r50", "ellipticity", "concentration", "asymmetry")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vae-epochs", type=int, default=300)
    parser.add_argument("--wgan-epochs", type=int, default=200)
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--simulated", type=int, default=3000, help="noisy rendered stamps for the de-noising part")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--figure", type=Path, default=None, help="write a PNG of real, VAE and WGAN stamps")
    parser.add_argument("--part", choices=("all", "real", "denoise"), default="all")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    if args.part in ("all", "real"):
        _real_part(args, say)
    if args.part in ("all", "denoise"):
        _denoise_part(args, say)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


def _real_part(args, say) -> None:
    from astrobayes.galaxies import compare_morphology, hubble_deep_field, ks_critical_value, measure_morphology
    from astrobayes.galaxies import shuffled_baseline
    from astrobayes.galaxies.generate import train_generative

    stamps = hubble_deep_field(32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(stamps))
    half = len(stamps) // 2
    train, held_out = stamps[order[:half]], stamps[order[half:2 * half]]
    say(f"# Generative models of {len(stamps)} Hubble Deep Field stamps (32 × 32): {half} to train, {half} held out")
    say(f"torch {torch.__version__}, {args.threads} thread(s)\n")

    generators, timings = {}, {}
    for kind, epochs in (("vae", args.vae_epochs), ("wgan", args.wgan_epochs)):
        start = time.perf_counter()
        options = {"epochs": epochs, "device": args.device, "progress": False}
        if kind == "vae":
            options.update(patience=50)
            generators[kind] = train_generative(train, "vae", seed=0, **options)
        else:
            generators[kind] = train_generative(train, "wgan", seed=0, model_options={"base_channels": 32}, **options)
        history = generators[kind].model.history
        timings[kind] = (time.perf_counter() - start, len(history.train_loss), history.device)
        say(f"{kind}: {timings[kind][1]} epochs of {8 * half} augmented stamps in {timings[kind][0]:.0f} s "
            f"({timings[kind][0] / timings[kind][1]:.2f} s per epoch on {timings[kind][2]})")
    say()

    real_table = measure_morphology(held_out)
    tables = {"VAE": measure_morphology(generators["vae"].sample(half, seed=1)),
              "WGAN": measure_morphology(generators["wgan"].sample(half, seed=1))}
    baseline = shuffled_baseline(stamps[order[:2 * half]], n_splits=args.splits, seed=0, statistics=STATISTICS)
    scores = {label: compare_morphology(real_table, table, statistics=STATISTICS) for label, table in tables.items()}
    critical = ks_critical_value(half, half)
    say(f"## Held-out real vs generated ({half} each; KS crit = {critical:.3f} at α = 0.001)\n")
    say("| statistic | KS real/real | KS VAE | KS WGAN | W₁/σ real/real | W₁/σ VAE | W₁/σ WGAN |")
    say("|---|---|---:|---:|---|---:|---:|")
    for row, statistic in enumerate(STATISTICS):
        base = baseline[list(baseline["statistic"]).index(statistic)]
        cells = [f"{base['ks_statistic']:.3f} ± {base['ks_statistic_std']:.3f}"]
        cells += [f"{scores[label]['ks_statistic'][row]:.3f}" for label in tables]
        cells += [f"{base['wasserstein_scaled']:.3f} ± {base['wasserstein_scaled_std']:.3f}"]
        cells += [f"{scores[label]['wasserstein_scaled'][row]:.3f}" for label in tables]
        say(f"| {statistic} | " + " | ".join(cells) + " |")
    say()
    say("| statistic | mean real | mean VAE | mean WGAN |")
    say("|---|---:|---:|---:|")
    for row, statistic in enumerate(STATISTICS):
        real_mean = scores["VAE"]["mean_reference"][row]
        say(f"| {statistic} | {real_mean:.3f} | " + " | ".join(f"{scores[label]['mean_other'][row]:.3f}"
                                                          for label in tables) + " |")
    say()

    # VAE latent uncertainty on held-out real stamps
    mean, std = generators["vae"].encode(held_out)
    active = int(np.sum(np.var(mean, axis=0) > 0.01))
    say(f"VAE latent space: {active} of {mean.shape[1]} dimensions active (variance of the mean > 0.01); median "
        f"encoder std {np.median(std):.3f} on held-out galaxies (prior: 1)\n")

    if args.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = {"real (held out)": held_out.data[:8], "VAE": generators["vae"].sample(8, seed=3).data,
                "WGAN": generators["wgan"].sample(8, seed=3).data}
        figure, axes = plt.subplots(3, 8, figsize=(12, 4.8))
        for i, (label, images) in enumerate(rows.items()):
            for j in range(8):
                axes[i, j].imshow(np.arcsinh(images[j] / 5.0), origin="lower", cmap="gray", vmin=-1, vmax=4)
                axes[i, j].set_xticks([])
                axes[i, j].set_yticks([])
            axes[i, 0].set_ylabel(label)
        figure.tight_layout()
        figure.savefig(args.figure, dpi=90)


def _denoise_part(args, say) -> None:
    from astrobayes.galaxies import StampSimulator, simulate_stamps
    from astrobayes.galaxies.generate import train_generative

    simulator = StampSimulator()
    noisy, truth = simulate_stamps(args.simulated + 500, simulator, seed=7)
    theta = np.stack([np.asarray(truth[name]) for name in
                      ("log10_flux", "log10_r_half", "sersic_n", "e1", "e2", "x0", "y0")], axis=1)
    clean = simulator.noiseless(theta)
    start = time.perf_counter()
    vae = train_generative(noisy[:args.simulated], "vae", seed=0, epochs=min(args.vae_epochs, 100), patience=20,
                           augment=False, device=args.device, progress=False)
    seconds = time.perf_counter() - start
    test = noisy[args.simulated:]
    denoised = vae.reconstruct(test).data
    ratio = math.sqrt(np.mean((denoised - clean[args.simulated:]) ** 2)) / math.sqrt(
        np.mean((test.data - clean[args.simulated:]) ** 2))
    say(f"## De-noising: VAE on {args.simulated} noisy simulated stamps ({seconds:.0f} s)\n")
    say(f"rms(reconstruction − truth) / rms(noisy − truth) = {ratio:.3f} over 500 held-out stamps")


if __name__ == "__main__":
    main()
