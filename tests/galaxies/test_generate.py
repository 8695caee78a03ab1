"""The galaxy-stamp wrapper around the VAE and the WGAN: units in and out, augmentation, files, errors."""
import astropy.units as u
import numpy as np
import pytest

from astrobayes.galaxies.generate import GalaxyGenerator, dihedral_augment, load_generator, train_generative
from astrobayes.galaxies.io import Stamps


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:16, :16]
    widths = rng.uniform(1.0, 3.0, (60, 1, 1))
    images = 200.0 * np.exp(-((x - 7.5) ** 2 + (y - 7.5) ** 2) / (2 * widths**2)) + rng.normal(0, 2.0, (60, 16, 16))
    return Stamps(images, unit=u.electron / u.s, pixel_scale=0.05 * u.arcsec / u.pix)


def test_dihedral_augment_gives_the_eight_symmetries():
    image = np.arange(9.0).reshape(1, 3, 3)
    augmented = dihedral_augment(image)
    assert augmented.shape == (8, 3, 3)
    assert np.array_equal(augmented[0], image[0])
    # all eight are different for an image without symmetry, and each is a rotation/reflection
    assert len({a.tobytes() for a in augmented}) == 8
    assert np.array_equal(augmented[1], np.rot90(image[0])) and np.array_equal(augmented[4], image[0][:, ::-1])
    with pytest.raises(ValueError, match="square"):
        dihedral_augment(np.zeros((2, 4, 6)))


def test_vae_wrapper_round_trips_units_and_files(blobs, tmp_path):
    generator = train_generative(blobs, "vae", epochs=3, progress=False, latent_dim=4, seed=0)
    samples = generator.sample(5, seed=1)
    assert isinstance(samples, Stamps) and samples.data.shape == (5, 16, 16)
    assert samples.unit == u.electron / u.s and samples.pixel_scale == blobs.pixel_scale
    # the asinh scaling is inverted: generated pixels live on the stamps' scale, not on asinh's
    assert np.abs(samples.data).max() > 10.0
    reconstructed = generator.reconstruct(blobs[:4])
    assert reconstructed.data.shape == (4, 16, 16) and list(reconstructed.meta["id"]) == list(blobs.meta["id"][:4])
    mean, std = generator.encode(blobs[:4])
    assert mean.shape == std.shape == (4, 4) and np.all(std > 0)
    assert generator.interpolate(blobs.data[0], blobs.data[1], n_steps=3).data.shape == (3, 16, 16)
    generator.save(tmp_path / "vae")
    loaded = load_generator(tmp_path / "vae")
    assert isinstance(loaded, GalaxyGenerator) and loaded.kind == "vae"
    assert np.array_equal(loaded.sample(3, seed=2).data, generator.sample(3, seed=2).data)
    with pytest.raises(FileNotFoundError, match="scaler.json"):
        load_generator(tmp_path / "missing")


def test_wgan_wrapper_and_errors(blobs):
    generator = train_generative(blobs, "wgan", epochs=1, progress=False, seed=0, augment=False,
                                 model_options={"base_channels": 8, "latent_dim": 8})
    assert generator.sample(4, seed=0).data.shape == (4, 16, 16)
    assert generator.interpolate(0, 1, n_steps=4).data.shape == (4, 16, 16)
    with pytest.raises(TypeError, match="only the VAE"):
        generator.encode(blobs[:2])
    with pytest.raises(ValueError, match="scaling='flux'"):
        train_generative(blobs, "vae", scaling="flux", epochs=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        train_generative(blobs, "diffusion")
    holed = blobs.data[:5].copy()
    holed[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="masked/NaN"):
        train_generative(Stamps(holed), "vae", epochs=1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_generative(holed, "vae", epochs=1)
