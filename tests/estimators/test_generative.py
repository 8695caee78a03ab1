"""ConvVAE and WGANGP: learning a known family of images, uncertainty, files, bad input.

The family: 16 × 16 one-channel images of a circular Gaussian blob with a
random centre (uniform in [5, 10] px on both axes), width (σ uniform in
[1, 2.5] px) and amplitude (uniform in [0.5, 2]), plus white noise of
σ = 0.05. Four numbers describe each clean image, so a good model needs
only a few latent coordinates, and because the noise is known exactly the
ELBO has a bound to respect.
"""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import astrobayes
from astrobayes.core import ModelFileError
from astrobayes.estimators.generative import ConvVAE, GANHistory, WGANGP, gradient_penalty

NOISE = 0.05
SIZE = 16


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Train these small models on one thread, as conftest.py does under xdist: with two,
    torch slows down many-fold whenever other processes share the two cores (this file
    once took 6 minutes instead of 10 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n, rng, noise=NOISE):
    """(noisy, clean) images (n, 1, 16, 16), float32."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(float)
    cx, cy = rng.uniform(5, SIZE - 6, (2, n, 1, 1))
    width = rng.uniform(1.0, 2.5, (n, 1, 1))
    amplitude = rng.uniform(0.5, 2.0, (n, 1, 1))
    clean = (amplitude * np.exp(-0.5 * ((xx - cx) ** 2 + (yy - cy) ** 2) / width**2))[:, None]
    noisy = clean + noise * rng.normal(size=clean.shape)
    return noisy.astype(np.float32), clean.astype(np.float32)


def tiny_images(n=64, shape=(1, 8, 8), seed=0):
    images = np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)
    images[..., 2:6, 2:6] += 2.0
    return images


# ---------------------------------------------------------------------- a VAE fitted on the blobs
@pytest.fixture(scope="module")
def vae_fit():
    images, _ = blobs(1000, np.random.default_rng(0))
    held_out, held_out_clean = blobs(500, np.random.default_rng(1))
    vae = ConvVAE(latent_dim=4, base_channels=8)
    # ~850 steps of Adam: about 5 s on one idle CPU core. The tolerances below were checked
    # on ten seeds of data and training (the ranges quoted are theirs).
    vae.fit(images, epochs=30, batch_size=32, learning_rate=3e-3, scheduler="cosine", patience=None, seed=0,
            progress=False)
    return vae, images, held_out, held_out_clean


def test_vae_elbo_improves_and_respects_its_bound(vae_fit):
    vae, images, held_out, clean = vae_fit
    history = vae.history
    # −ELBO per image on the 100 validation images: its standard error is ~2 nats,
    # the improvement ~280 (from −57…−77 after one epoch to −339…−355).
    assert history.val_loss[-1] < history.val_loss[0] - 150
    elbo = vae.elbo(held_out, n_samples=4, seed=0)
    assert elbo.shape == (500,) and np.isfinite(elbo).all()
    # Upper bound: ELBO ≤ log p(x) ≤ max over the 4 blob parameters of log N(x; blob, 0.05²),
    # which exceeds the likelihood of the true blob by χ²₄/2 ≈ 2 nats on average.
    # A missing Jacobian of the standardisation (scale ≈ 0.2) would add ~400 nats.
    true_blob = (-0.5 * ((held_out - clean) / NOISE) ** 2 - math.log(NOISE)
                 - 0.5 * math.log(2 * math.pi)).sum(axis=(1, 2, 3))
    assert elbo.mean() - true_blob.mean() < 2 + 3  # + 3 nats: > 5 standard errors of the mean ELBO
    # Lower side: better than a density of independent Gaussian pixels with the training set's
    # per-pixel mean and variance (≈ 213 nats per image, high because the corner pixels are
    # nearly constant); the fitted ELBOs are 340–354, and the mean of either over 500
    # images has a standard error of ≲ 5 nats.
    mean, var = images.mean(0), images.var(0)
    independent = (-0.5 * (held_out - mean) ** 2 / var - 0.5 * np.log(2 * math.pi * var)).sum(axis=(1, 2, 3))
    assert elbo.mean() > independent.mean() + 60


def test_vae_reconstructs_and_denoises(vae_fit):
    vae, images, held_out, clean = vae_fit
    reconstruction = vae.reconstruct(held_out)
    assert reconstruction.shape == held_out.shape and isinstance(reconstruction, np.ndarray)
    # Baseline: the training set's mean image as the reconstruction of every image
    # (MSE ≈ 0.038, the mean per-pixel variance). The pixel noise alone is 0.0025,
    # 6.6 % of it; the fitted model reaches 7–8 %. 15 % fails a collapsed or
    # untrained model by a factor > 6.
    baseline = ((held_out - images.mean(0)) ** 2).mean()
    assert ((reconstruction - held_out) ** 2).mean() < 0.15 * baseline
    # Denoising at the training noise level: the identity gives ratio 1, the fitted
    # model 0.16–0.24 (after 20 instead of 30 epochs, 0.27–0.61).
    noisy = clean + NOISE * np.random.default_rng(5).normal(size=clean.shape).astype(np.float32)
    ratio = ((vae.denoise(noisy) - clean) ** 2).mean() / ((noisy - clean) ** 2).mean()
    assert ratio < 0.5


def test_vae_latent_uncertainty_means_something(vae_fit):
    vae, images, held_out, clean = vae_fit
    # After fit the training images' latents have mean 0 and E[z²] = 1 per coordinate (exactly, up to float32).
    mean, std = vae.encode(images)
    np.testing.assert_allclose(mean.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose((mean**2 + std**2).mean(0), 1, rtol=1e-4)
    # So the prior has std 1; a training-like image pins its latents down far better (median ≈ 0.05).
    _, std = vae.encode(held_out)
    assert np.median(std) < 0.25
    # The encoder's σ is the right size: for one clean blob seen through 200 noise
    # realisations, the scatter of the posterior mean is close to σ (equal for an exact
    # Gaussian posterior of well-measured parameters; a mean-field q tends to be
    # over-confident, i.e. ratio > 1). Ten seeds gave medians 1.16–1.40. The scatter
    # of 200 draws has a 5 % error, so [0.5, 2] tests the calibration, not the noise.
    rng = np.random.default_rng(7)
    ratios = []
    for i in range(10):
        realisations = clean[i:i + 1] + NOISE * rng.normal(size=(200, 1, SIZE, SIZE)).astype(np.float32)
        mean, std = vae.encode(realisations)
        ratios.append(mean.std(0) / np.sqrt((std**2).mean(0)))
    assert 0.5 < np.median(ratios) < 2.0


def test_vae_samples_match_the_training_flux(vae_fit):
    vae, images, _, _ = vae_fit
    samples = vae.sample(2000, seed=3)
    assert samples.shape == (2000, 1, SIZE, SIZE) and np.isfinite(samples).all()
    flux, data_flux = samples.sum(axis=(1, 2, 3)), images.sum(axis=(1, 2, 3))
    # Total flux of the blobs: mean ≈ 25, std ≈ 15. The sampling error of the difference of
    # the two means (2000 and 1000 images) is 15 √(1/2000 + 1/1000) ≈ 0.6, 2.3 % of the mean;
    # 10 % is > 4σ of it. Ten seeds gave |Δ| ≤ 4.3 %; without the latent standardisation
    # done by fit, the prior draws had ~40 % too little flux. The spread of the fluxes:
    # within 25 % (ten seeds: ≤ 14 %; the sampling error of a std of 1000 fluxes is ~3 %).
    assert abs(flux.mean() - data_flux.mean()) < 0.10 * data_flux.mean()
    assert abs(flux.std() - data_flux.std()) < 0.25 * data_flux.std()
    # noise=True adds the learned pixel noise. It fits the residuals of the decoder, so it is the
    # true 0.05 plus the model's misfit in quadrature: not below 0.05 (minus ~10 % of fitting
    # noise), and for this small, short fit 0.07–0.08 (ten seeds).
    assert 0.045 < vae.noise_scale[0] < 0.15
    noisy = vae.sample(2000, seed=3, noise=True)
    np.testing.assert_allclose((noisy - samples).std(), vae.noise_scale[0], rtol=0.02)


def test_vae_interpolation_and_sampled_reconstructions(vae_fit):
    vae, _, held_out, _ = vae_fit
    path = vae.interpolate(held_out[0], held_out[1, 0], n_steps=5)  # (C, H, W) and (H, W) both accepted
    assert path.shape == (5, 1, SIZE, SIZE)
    ends = vae.denoise(held_out[:2])
    np.testing.assert_allclose(path[[0, -1]], ends, atol=1e-5)
    draws = vae.reconstruct(held_out[:3], n_samples=50, seed=1)
    assert draws.shape == (3, 50, 1, SIZE, SIZE)
    np.testing.assert_array_equal(draws, vae.reconstruct(held_out[:3], n_samples=50, seed=1))
    # draws from q(z | x) scatter around the decoded posterior mean, by little (σ_z ≈ 0.05)
    spread = draws.std(axis=1).mean()
    assert 0 < spread < 0.2 * held_out.std()
    # decode(encode().mean) is the posterior-mean reconstruction
    mean, _ = vae.encode(held_out[:3])
    np.testing.assert_allclose(vae.decode(mean), vae.denoise(held_out[:3]), atol=1e-5)


# ---------------------------------------------------------------------- a WGAN-GP fitted on the blobs
def _image_statistics(images):
    """Mean over images of the peak pixel and of the per-image pixel standard deviation."""
    return np.array([images.max(axis=(1, 2, 3)).mean(), images.std(axis=(1, 2, 3)).mean()])


@pytest.fixture(scope="module")
def gan_fit():
    images, _ = blobs(1000, np.random.default_rng(0))
    gan = WGANGP(latent_dim=16, base_channels=8)
    # Adam steps of 1e-9 leave the weights at their initialisation: the untrained generator.
    gan.fit(images, epochs=1, learning_rate=1e-9, seed=0, progress=False)
    untrained = gan.sample(2000, seed=1)
    # Short and small: 15 epochs = 480 critic and 96 generator steps, ~3 s on one idle core.
    # The paper's learning rate 1e-4 needs ~10× more steps; 1e-3 with β = (0, 0.9) is stable here.
    gan.fit(images, epochs=15, batch_size=32, learning_rate=1e-3, seed=0, progress=False)
    return gan, images, untrained


def test_gan_learns_the_blob_family(gan_fit):
    gan, images, untrained = gan_fit
    history = gan.history
    assert isinstance(history, GANHistory) and history.epochs == 15
    assert np.isfinite(history.wasserstein).all() and np.isfinite(history.gradient_penalty).all()
    # The critic first learns to separate (the estimate rises), then the generator closes
    # the gap: ten seeds peaked in epochs 2–4 with W ≈ 7–13 and ended at 0.36–0.60.
    peak = int(np.argmax(history.wasserstein))
    assert peak < 8 and history.wasserstein[-1] < 0.25 * history.wasserstein[peak]
    samples = gan.sample(2000, seed=1)
    assert samples.shape == (2000, 1, SIZE, SIZE) and np.isfinite(samples).all()
    # Peak pixel (data ≈ 1.2) and per-image pixel std (data ≈ 0.22): the untrained generator
    # makes nearly flat images (≈ 0.17 and 0.02; its total flux is already right, because the
    # standardisation puts its output at the data's mean pixel, so flux would not test anything).
    # Trained, the distance to the data shrinks to ≤ 15 % of the untrained one (ten seeds).
    data, before, after = (_image_statistics(a) for a in (images, untrained, samples))
    assert (abs(after - data) < 0.35 * abs(before - data)).all()


def test_gan_interpolation_and_seeds(gan_fit):
    gan, _, _ = gan_fit
    np.testing.assert_array_equal(gan.sample(4, seed=5), gan.sample(4, seed=5))
    assert not np.array_equal(gan.sample(4, seed=5), gan.sample(4, seed=6))
    path = gan.interpolate(1, 2, n_steps=6)
    assert path.shape == (6, 1, SIZE, SIZE)
    np.testing.assert_allclose(path[0], gan.sample(1, seed=1)[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], gan.sample(1, seed=2)[0], atol=1e-5)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    along = gan.interpolate(z[0], z[1], n_steps=3)
    assert isinstance(along, torch.Tensor)  # torch in → torch out
    torch.testing.assert_close(along[1], gan.generate(((z[0] + z[1]) / 2)[None])[0], atol=1e-5, rtol=1e-5)
    scores = gan.critic_score(torch.as_tensor(gan.sample(3, seed=0)))
    assert isinstance(scores, torch.Tensor) and scores.shape == (3,)


# ---------------------------------------------------------------------- the gradient penalty
def test_gradient_penalty_of_a_linear_critic_is_exact():
    # D(x) = w·x + b has ∇D = w everywhere, so the penalty is λ(‖w‖ − 1)² for any points.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))
    real, fake = torch.randn(7, 1, 8, 8), torch.randn(7, 1, 8, 8) * 3
    w = critic[1].weight
    expected = 10.0 * (w.norm() - 1) ** 2
    penalty = gradient_penalty(critic, real, fake, weight=10.0)
    torch.testing.assert_close(penalty, expected, rtol=1e-5, atol=1e-6)
    # differentiable with respect to the critic: d/dw λ(‖w‖ − 1)² = 2λ(‖w‖ − 1) w/‖w‖
    (grad,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad, 2 * 10.0 * (w.norm() - 1) * w / w.norm(), rtol=1e-4, atol=1e-6)
    # with λ = 0 it vanishes
    assert gradient_penalty(critic, real, fake, weight=0.0).item() == 0.0


def test_gradient_penalty_is_taken_between_real_and_fake():
    # D(x) = ½‖x‖² has ∇D(x̂) = x̂ = ε real + (1 − ε) fake: the penalty checks where x̂ lies.
    class Quadratic(nn.Module):
        def forward(self, x):
            return 0.5 * (x.flatten(1) ** 2).sum(1, keepdim=True)

    g = torch.Generator().manual_seed(1)
    real, fake, eps = torch.randn(5, 2, 8, 8, generator=g), torch.randn(5, 2, 8, 8, generator=g), torch.rand(5, 1, 1, 1)
    mixed = eps * real + (1 - eps) * fake
    expected = 10.0 * ((mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gradient_penalty(Quadratic(), real, fake, 10.0, mixing=eps), expected)


# ---------------------------------------------------------------------- files
@pytest.mark.parametrize("which", ["vae", "gan"])
def test_save_load_round_trip(which, vae_fit, gan_fit, tmp_path):
    model = vae_fit[0] if which == "vae" else gan_fit[0]
    images = vae_fit[2][:20]
    model.save(tmp_path / which)
    loaded = astrobayes.load(tmp_path / which)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    assert loaded.image_shape == model.image_shape
    assert loaded.history.train_loss == model.history.train_loss
    np.testing.assert_array_equal(loaded.sample(10, seed=4), model.sample(10, seed=4))
    if which == "vae":
        for a, b in zip(loaded.encode(images), model.encode(images)):
            np.testing.assert_array_equal(a, b)
        z = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
        np.testing.assert_array_equal(loaded.decode(z), model.decode(z))
        np.testing.assert_array_equal(loaded.elbo(images, seed=1), model.elbo(images, seed=1))
        assert isinstance(ConvVAE.load(tmp_path / which), ConvVAE)
        with pytest.raises(TypeError, match="not a WGANGP"):
            WGANGP.load(tmp_path / which)
    else:
        assert loaded.history.wasserstein == model.history.wasserstein
        np.testing.assert_array_equal(loaded.critic_score(images), model.critic_score(images))


def test_corrupted_and_foreign_files(vae_fit, tmp_path):
    vae = vae_fit[0]
    vae.save(tmp_path / "vae")
    weights = bytearray((tmp_path / "vae.safetensors").read_bytes())
    weights[-5] ^= 0xFF
    (tmp_path / "vae.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ModelFileError, match="checksum"):
        astrobayes.load(tmp_path / "vae")

    (tmp_path / "foreign.json").write_text(json.dumps({"model": "something else"}))
    (tmp_path / "foreign.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(ModelFileError, match="not an astrobayes model"):
        astrobayes.load(tmp_path / "foreign")

    vae.save(tmp_path / "good")
    header = json.loads((tmp_path / "good.json").read_text())
    header["config"]["base_channels"] = 16  # the weights no longer fit the architecture
    (tmp_path / "good.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match="could not be rebuilt"):
        astrobayes.load(tmp_path / "good")
    header["config"]["base_channels"] = 8
    header["image_shape"] = [1, 12, 12]
    (tmp_path / "good.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match="image_shape"):
        astrobayes.load(tmp_path / "good")


# ---------------------------------------------------------------------- shapes, units, seeds
def test_channels_rectangles_and_array_types():
    images = np.random.default_rng(0).normal(size=(40, 2, 8, 16)).astype(np.float32)
    vae = ConvVAE(latent_dim=3, base_channels=4)
    vae.fit(images, epochs=1, progress=False)
    assert vae.image_shape == (2, 8, 16)
    assert vae.reconstruct(images[:3]).shape == (3, 2, 8, 16)
    mean, std = vae.encode(torch.as_tensor(images[:3]))
    assert isinstance(mean, torch.Tensor) and mean.shape == (3, 3) and (std > 0).all()
    assert isinstance(vae.decode(mean), torch.Tensor)
    gan = WGANGP(latent_dim=3, base_channels=4, critic_norm="none")
    gan.fit(images, epochs=1, batch_size=8, progress=False)
    assert gan.sample(2, seed=0).shape == (2, 2, 8, 16)
    # (n, H, W) is one channel
    one = ConvVAE(latent_dim=2, base_channels=4)
    one.fit(images[:, 0], epochs=1, progress=False)
    assert one.image_shape == (1, 8, 16) and one.denoise(images[:2, 0]).shape == (2, 1, 8, 16)


def test_standardisation_inside_the_model_gives_raw_units():
    # Training on a·x + b standardises to the same numbers as training on x, so the
    # reconstructions scale with a and the ELBO drops by exactly H·W·log a (the Jacobian).
    images = tiny_images(200)
    results = []
    for a, b in ((1.0, 0.0), (1000.0, 5000.0)):
        vae = ConvVAE(latent_dim=2, base_channels=4)
        vae.fit(a * images + b, epochs=3, progress=False)
        results.append((vae.denoise(a * images[:20] + b), vae.elbo(a * images[:20] + b, n_samples=4, seed=0)))
    (rec_1, elbo_1), (rec_a, elbo_a) = results
    np.testing.assert_allclose((rec_a - 5000) / 1000, rec_1, atol=1e-3)
    np.testing.assert_allclose(elbo_1 - elbo_a, 64 * math.log(1000), rtol=1e-5)


def test_cpu_fits_are_reproducible_with_a_seed():
    images = tiny_images(64)
    runs = []
    for seed in (3, 3, 4):
        vae = ConvVAE(latent_dim=2, base_channels=4)
        vae.fit(images, epochs=2, seed=seed, progress=False)
        gan = WGANGP(latent_dim=2, base_channels=4)
        gan.fit(images, epochs=2, batch_size=16, n_critic=2, seed=seed, progress=False)
        runs.append((vae.history.train_loss, vae.sample(3, seed=0), gan.history.wasserstein, gan.sample(3, seed=0)))
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][1], runs[2][1]) and not np.array_equal(runs[0][3], runs[2][3])


def test_explicit_validation_images():
    images = tiny_images(80)
    vae = ConvVAE(latent_dim=2, base_channels=4)
    history = vae.fit(images[:60], validation=images[60:], epochs=2, progress=False)
    assert history.n_train == 60 and history.n_val == 20
    with pytest.raises(ValueError, match=r"validation have per-image shape \(C, H, W\) = \(1, 16, 16\)"):
        vae.fit(images, validation=np.zeros((5, 16, 16)), epochs=1, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda(tmp_path):
    images = tiny_images(128, (1, 16, 16))
    vae = ConvVAE(latent_dim=2, base_channels=4)
    vae.fit(images, epochs=2, device="cuda", progress=False)
    assert vae.device.type == "cuda" and vae.history.device.startswith("cuda")
    gan = WGANGP(latent_dim=2, base_channels=4)
    history = gan.fit(images, epochs=2, batch_size=16, device="cuda", progress=False)
    assert gan.device.type == "cuda" and history.device.startswith("cuda")
    for name, model in (("vae", vae), ("gan", gan)):
        samples = model.sample(5, seed=0)
        assert isinstance(samples, np.ndarray) and np.isfinite(samples).all()
        model.save(tmp_path / name)
        loaded = astrobayes.load(tmp_path / name).to("cuda")
        np.testing.assert_allclose(loaded.sample(5, seed=0), samples, atol=1e-5)


# ---------------------------------------------------------------------- bad input
def test_bad_images_are_named(vae_fit):
    vae = vae_fit[0]
    fresh = ConvVAE(latent_dim=2, base_channels=4)
    with pytest.raises(ValueError, match=r"images must be \(n, H, W\) for one channel or \(n, C, H, W\)"):
        fresh.fit(np.zeros((10, 64)), epochs=1)
    with pytest.raises(ValueError, match=r"images must be \(n, H, W\)"):
        fresh.fit(np.zeros((2, 3, 1, 8, 8)), epochs=1)
    for shape in ((10, 1, 12, 12), (10, 1, 4, 4), (10, 16, 24)):
        with pytest.raises(ValueError, match="image_shape .* powers of two >= 8"):
            fresh.fit(np.zeros(shape), epochs=1)
        with pytest.raises(ValueError, match="image_shape"):
            WGANGP().fit(np.zeros(shape), epochs=1)
    bad = tiny_images(20)
    bad[[4, 9], 0, 3, 3] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"images has 2 row\(s\) with NaN or inf \(indices 4, 9\)"):
        fresh.fit(bad, epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        vae.encode(np.full((2, 1, 16, 16), np.nan))
    with pytest.raises(ValueError, match=r"per-image shape \(C, H, W\) = \(1, 8, 8\), but the model was trained on \(1, 16, 16\)"):
        vae.encode(tiny_images(3))
    with pytest.raises(ValueError, match="trained on"):
        vae.denoise(np.zeros((3, 3, 16, 16)))
    with pytest.raises(ValueError, match="empty"):
        vae.reconstruct(np.zeros((0, 1, 16, 16)))
    with pytest.raises(ValueError, match="image_a must be a single image"):
        vae.interpolate(np.zeros((2, 1, 16, 16)), np.zeros((16, 16)))
    with pytest.raises(TypeError, match="images must be numeric"):
        vae.encode(np.array([["a"]]))


def test_bad_counts_latents_and_options(vae_fit, gan_fit):
    vae, gan = vae_fit[0], gan_fit[0]
    for model in (vae, gan):
        for n in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match="n must be a positive integer"):
                model.sample(n)
    with pytest.raises(ValueError, match="n_steps must be at least 2"):
        vae.interpolate(np.zeros((16, 16)), np.zeros((16, 16)), n_steps=1)
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        gan.interpolate(0, 1, n_steps=0)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        vae.reconstruct(np.zeros((2, 16, 16)), n_samples=0)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        vae.elbo(np.zeros((2, 16, 16)), n_samples=-1)
    with pytest.raises(ValueError, match="z has 3 latent coordinate"):
        vae.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="z_b must be one latent vector"):
        gan.interpolate(0, np.zeros((2, 16)))
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        ConvVAE(latent_dim=0)
    with pytest.raises(ValueError, match="beta must be a positive number"):
        ConvVAE(beta=0)
    with pytest.raises(ValueError, match="max_channels"):
        WGANGP(base_channels=64, max_channels=32)
    with pytest.raises(ValueError, match="critic_norm must be 'layer' or 'none'"):
        WGANGP(critic_norm="batch")
    images = tiny_images(16)
    for option, message in (({"n_critic": 0}, "n_critic"), ({"betas": (1.0, 0.9)}, "betas"),
                            ({"betas": 0.5}, "betas"), ({"learning_rate": -1.0}, "learning_rate"),
                            ({"gp_weight": float("nan")}, "gp_weight"), ({"epochs": 0}, "epochs"),
                            ({"device": "tpu"}, "device")):
        with pytest.raises(ValueError, match=message):
            WGANGP(latent_dim=2, base_channels=4).fit(images, **option)
    with pytest.raises(TypeError, match="unknown training option"):
        ConvVAE().fit(images, n_critic=5)
    with pytest.raises(RuntimeError, match="not been fitted"):
        ConvVAE().sample(3)
    with pytest.raises(RuntimeError, match="not been fitted"):
        WGANGP().generate(np.zeros((1, 64)))
