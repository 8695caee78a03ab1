"""The HEALPix graph-convolution embedding: graph, pooling, learning, files, bad input."""
import healpy as hp
import numpy as np
import pytest
import torch

import astrobayes
from astrobayes.core.serialization import module_config, module_from_config
from astrobayes.estimators import ConditionalFlow, Regressor
from astrobayes.estimators.healpix import HealpixEmbedding, healpix_laplacian, healpix_pool, to_nest


def amplitude_maps(nside, n, seed):
    """NEST Gaussian maps of the toy spectrum (ℓ + 10)⁻¹ scaled by A, with log A ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    lmax = 3 * nside - 1
    cl = 1.0 / (np.arange(lmax + 1) + 10.0)
    log_amplitude = rng.uniform(-1, 1, n)
    ring = np.stack([hp.synfast(cl, nside, lmax=lmax) for _ in range(n)]) * np.exp(log_amplitude)[:, None]
    return to_nest(ring)[:, None, :].astype(np.float32), log_amplitude


# ---------------------------------------------------------------------------- graph and pooling
@pytest.mark.parametrize("nside", [1, 2, 8])
def test_laplacian_is_symmetric_and_annihilates_constants(nside):
    combinatorial = healpix_laplacian(nside, kind="combinatorial").to_dense()
    assert torch.equal(combinatorial, combinatorial.T)
    assert (combinatorial @ torch.ones(len(combinatorial), dtype=torch.float64)).abs().max() < 1e-12
    rescaled = healpix_laplacian(nside).to_dense().double()
    assert torch.allclose(rescaled, rescaled.T)
    eigenvalues = torch.linalg.eigvalsh(rescaled)
    # λ_max = 2 bound: the spectrum lies in [-1, 1] (measured top: 0.40 at nside 4, 0.52 at nside 16)
    assert eigenvalues.min() > -1 - 1e-6 and eigenvalues.max() < 1
    normalized = healpix_laplacian(nside, kind="normalized").to_dense().double()
    assert torch.allclose(normalized, torch.eye(len(normalized), dtype=torch.float64) + rescaled, atol=1e-6)
    # 8 neighbours per pixel, 7 for the 24 pixels at the 8 face corners (nside ≥ 2); at nside 1
    # healpy lists some neighbours twice and each of the 12 pixels touches 6 others
    neighbours = (combinatorial != 0).sum(1) - 1
    expected = 12 * nside ** 2 * 8 - 24 if nside >= 2 else 72
    assert int(neighbours.sum()) == expected


def test_laplacian_on_a_footprint_only_joins_observed_pixels():
    nside = 4
    observed = np.zeros(hp.nside2npix(nside), bool)
    observed[:64] = True
    lap = healpix_laplacian(nside, observed, kind="combinatorial").to_dense()
    assert lap[~torch.as_tensor(observed)].abs().max() == 0
    assert (lap @ torch.ones(len(lap), dtype=torch.float64)).abs().max() < 1e-12
    same = healpix_laplacian(nside, np.flatnonzero(observed), kind="combinatorial").to_dense()
    assert torch.equal(lap, same)


def test_nest_pooling_equals_ud_grade():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, hp.nside2npix(16)))
    pooled = healpix_pool(torch.as_tensor(maps)).numpy()
    for m, p in zip(maps, pooled):
        assert np.allclose(p, hp.ud_grade(m, 8, order_in="NEST", order_out="NEST", power=0), atol=1e-12)
    assert np.allclose(healpix_pool(torch.as_tensor(maps), "max").numpy(), maps.reshape(3, -1, 4).max(-1))


def test_to_nest_round_trip():
    ring = np.random.default_rng(1).normal(size=(2, hp.nside2npix(8)))
    nest = to_nest(ring)
    assert np.array_equal(hp.reorder(nest[0], n2r=True), ring[0])
    assert torch.equal(to_nest(torch.as_tensor(ring)), torch.as_tensor(nest))
    assert to_nest(nest, nest=True) is nest
    with pytest.raises(ValueError, match="HEALPix size"):
        to_nest(np.zeros(100))


# ---------------------------------------------------------------------------- learning and files
def test_learns_the_amplitude_of_gaussian_maps_and_round_trips(tmp_path):
    maps, log_amplitude = amplitude_maps(16, 500, seed=0)
    embedding = HealpixEmbedding(16, output_dim=8, channels=(8, 8), order=3)
    reg = Regressor(hidden=(16,), embedding=embedding)
    reg.fit(maps[:400], log_amplitude[:400], epochs=8, learning_rate=3e-3, batch_size=32, progress=False, seed=0)
    prediction = reg.predict(maps[400:]).mean[:, 0]
    correlation = np.corrcoef(prediction, log_amplitude[400:])[0, 1]
    print(f"HealpixEmbedding: held-out correlation with log A = {correlation:.4f}")
    assert correlation > 0.9
    reg.save(tmp_path / "reg")
    loaded = astrobayes.load(tmp_path / "reg")
    assert loaded.embedding.get_config() == embedding.get_config()
    assert np.array_equal(loaded.predict(maps[400:]).mean, reg.predict(maps[400:]).mean)


def test_conditional_flow_with_a_partial_sky_embedding(tmp_path):
    nside = 8
    observed = np.zeros(hp.nside2npix(nside), bool)
    observed[: hp.nside2npix(nside) // 3] = True  # four base pixels, NEST
    maps, log_amplitude = amplitude_maps(nside, 96, seed=1)
    maps[:, :, ~observed] = 0.0
    theta = np.stack([log_amplitude, np.random.default_rng(2).normal(size=96)], axis=1)
    embedding = HealpixEmbedding(nside, output_dim=4, channels=(4, 4), order=2, observed=np.flatnonzero(observed),
                                 pooling="max", batch_norm=True)
    flow = ConditionalFlow(flow="maf", n_transforms=2, hidden_features=8, embedding=embedding)
    flow.fit(maps, theta, epochs=2, progress=False)
    flow.save(tmp_path / "flow")
    loaded = ConditionalFlow.load(tmp_path / "flow")
    assert loaded.embedding.get_config()["observed"] == np.flatnonzero(observed).tolist()
    assert np.allclose(loaded.log_prob(theta[:5], maps[:5]), flow.log_prob(theta[:5], maps[:5]), atol=1e-6)
    # masked pixels cannot change the answer
    junk = maps.copy()
    junk[:, :, ~observed] = 1e3
    assert np.allclose(loaded.log_prob(theta[:5], junk[:5]), flow.log_prob(theta[:5], maps[:5]), atol=1e-5)


def test_config_rebuilds_the_same_network():
    embedding = HealpixEmbedding(8, in_channels=2, output_dim=3, channels=(4,), order=5, activation="silu")
    rebuilt = module_from_config(module_config(embedding))
    rebuilt.load_state_dict(embedding.state_dict())
    assert set(embedding.state_dict()) == set(rebuilt.state_dict())  # Laplacians are not saved
    assert not any(name.startswith(("crow", "col", "value", "mask")) for name in embedding.state_dict())
    x = torch.randn(2, 2, 768)
    assert torch.equal(rebuilt(x), embedding(x))
    assert torch.allclose(embedding.laplacian(0).to_dense(), healpix_laplacian(8).to_dense())


@pytest.mark.gpu
def test_embedding_on_cuda_matches_the_cpu_and_trains():
    """The sparse Laplacians follow the module to the GPU; forward passes agree to float32 rounding."""
    embedding = HealpixEmbedding(8, output_dim=4, channels=(8, 16), order=4, observed=list(range(300)))
    x = torch.randn(16, 1, 768)
    on_cpu = embedding(x)
    on_gpu = embedding.to("cuda")(x.to("cuda"))
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-5)
    maps, log_amplitude = amplitude_maps(16, 500, seed=0)
    reg = Regressor(hidden=(16,), embedding=HealpixEmbedding(16, output_dim=8, channels=(8, 8), order=3))
    history = reg.fit(maps[:400], log_amplitude[:400], epochs=8, learning_rate=3e-3, batch_size=32, device="cuda",
                      progress=False, seed=0)
    assert history.device.startswith("cuda")
    # the same threshold as the CPU test above
    assert np.corrcoef(reg.predict(maps[400:]).mean[:, 0], log_amplitude[400:])[0, 1] > 0.9

# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_error():
    net = HealpixEmbedding(8, output_dim=3, channels=(4,))
    with pytest.raises(ValueError, match="nside=8.*3072 pixels.*NEST"):
        net(torch.randn(2, 1, 3072))
    with pytest.raises(ValueError, match="in_channels=1.*2 channel"):
        net(torch.randn(2, 2, 768))
    with pytest.raises(ValueError, match=r"\(batch, channels, npix\)"):
        net(torch.randn(2, 768))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="nside=8"):
        Regressor(embedding=net).fit(rng.normal(size=(10, 1, 192)), np.zeros(10), epochs=1, progress=False)


@pytest.mark.parametrize("make, match", [
    (lambda: HealpixEmbedding(12), "power of 2"),
    (lambda: HealpixEmbedding(4, channels=(4, 4, 4)), "too small"),
    (lambda: HealpixEmbedding(8, order=0), "order"),
    (lambda: HealpixEmbedding(8, pooling="median"), "pooling"),
    (lambda: HealpixEmbedding(8, batch_norm="yes"), "batch_norm"),
    (lambda: HealpixEmbedding(8, observed=np.zeros(768, bool)), "no pixel"),
    (lambda: HealpixEmbedding(8, observed=[5000]), "observed"),
    (lambda: HealpixEmbedding(8, observed=np.ones(100, bool)), "shape"),
    (lambda: healpix_laplacian(8, kind="random-walk"), "kind"),
])
def test_constructor_arguments_are_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()
