"""Every estimator class trains, predicts, samples and round-trips on a device.

The CPU case always runs (it also checks this test); the CUDA case is marked
``gpu`` and runs where torch sees a GPU.
"""
import numpy as np
import pytest

import astrobayes
from astrobayes import (HMCBNN, Classifier, ConditionalFlow, DeepEnsemble, DeepSetEmbedding, MCDropout,
                        MixtureDensityNetwork, Regressor, RNNEmbedding, VariationalBNN)

FACTORIES = {
    "regressor": lambda: Regressor(hidden=(16,), heteroscedastic=True),
    "classifier": lambda: Classifier(hidden=(16,)),
    "mdn": lambda: MixtureDensityNetwork(n_components=2, hidden=(16,)),
    "flow_maf": lambda: ConditionalFlow("maf", n_transforms=2, hidden_features=16),
    "flow_nsf": lambda: ConditionalFlow("nsf", n_transforms=2, hidden_features=16),
    "flow_realnvp": lambda: ConditionalFlow("realnvp", n_transforms=2, hidden_features=16),
    "ensemble": lambda: DeepEnsemble(Regressor(hidden=(8,)), n_members=2),
    "mc_dropout": lambda: MCDropout(Regressor(hidden=(16,), dropout=0.1), n_passes=5),
    "variational": lambda: VariationalBNN(hidden=(16,), n_samples=5),
    "hmc": lambda: HMCBNN(hidden=(8,), n_samples=10, n_warmup=20, n_leapfrog=5),
    "rnn": lambda: Regressor(hidden=(8,), embedding=RNNEmbedding(2, output_dim=8, hidden_size=8)),
    "deepset": lambda: Regressor(hidden=(8,), embedding=DeepSetEmbedding(2, output_dim=8, hidden=(8,))),
}


def _data(name, rng, n=256):
    if name in ("rnn", "deepset"):
        values = rng.normal(size=(n, 6, 2))
        lengths = rng.integers(1, 7, n)
        mask = np.arange(6)[None, :] < lengths[:, None]
        return (values, mask), (values[..., 0] * mask).sum(1, keepdims=True) / lengths[:, None]
    x = rng.normal(size=(n, 2))
    if name == "classifier":
        return x, (x[:, 0] > 0).astype(int)
    return x, np.c_[x.sum(1), x[:, 0] - x[:, 1]] if name.startswith(("flow", "mdn")) else x[:, :1] * 2


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_estimator_runs_on_device_and_round_trips(name, device, tmp_path):
    rng = np.random.default_rng(0)
    x, y = _data(name, rng)
    model = FACTORIES[name]()
    model.fit(x, y, epochs=2, device=device, progress=False)
    head = (x[0][:5], x[1][:5]) if isinstance(x, tuple) else x[:5]
    mean, std = model.predict(head)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    log_q = model.log_prob(y[:5], head)
    assert log_q.shape == (5,) and np.all(np.isfinite(log_q))
    draws = model.sample(3, head, seed=1)
    assert draws.shape[:2] == (5, 3)
    model.save(tmp_path / name)
    # compared on the same device: seeded MC-dropout masks come from that device's random stream
    loaded = astrobayes.load(tmp_path / name).to(device)
    np.testing.assert_allclose(loaded.log_prob(y[:5], head), log_q, rtol=1e-5, atol=1e-5)
