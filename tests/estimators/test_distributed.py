"""Data-parallel training (torch.distributed, gloo on the CPU) against one process.

Tolerances: 2 processes compute each global batch's mean gradient as the
share-weighted mean of two half-batch gradients, so the sums run in another
order; float32 rounding (eps 1.2e-7) then differs by ~1e-7 relative per step
and can grow through the 48 Adam steps. Measured (torch 2.13 CPU): at most
5e-8 (training loss), 3e-7 (validation loss) and 2e-7 (weights, relative to
each tensor's largest entry). rtol 1e-4 leaves room for other BLAS builds
while staying far below the effect of changing the global batch to 32 or 128
rows (0.6 and 2.0 relative, checked below, so the comparison can fail).
fit_distributed itself also checks that both ranks end bit-identical.
"""
import socket

import numpy as np
import pytest
import torch
from torch import nn

from astrobayes.estimators import Regressor, TrainingConfig, distributed_context, fit_distributed, fit_module

RTOL = 1e-4
OPTIONS = {"epochs": 6, "batch_size": 64, "learning_rate": 1e-2, "seed": 0, "patience": None, "progress": False,
           "device": "cpu"}


def _data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = np.sin(x[:, :1]) + x[:, 1:2] * x[:, 2:] + 0.1 * rng.normal(size=(n, 1))
    return x, y


def _max_relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.fixture(scope="module")
def single_and_parallel():
    x, y = _data()
    single = Regressor(hidden=(16, 16))
    single.fit(x, y, **OPTIONS)
    parallel = Regressor(hidden=(16, 16))
    # 461 training rows: the last global batch of 13 rows splits 6 / 7 between the ranks
    fit_distributed(parallel, x, y, world_size=2, backend="gloo", threads=1, **OPTIONS)
    return single, parallel


def test_two_gloo_processes_follow_the_single_process_loss_curve(single_and_parallel):
    single, parallel = single_and_parallel
    one, two = single.history, parallel.history
    assert (two.n_train, two.n_val, two.epochs) == (one.n_train, one.n_val, one.epochs) == (461, 51, 6)
    assert _max_relative(two.train_loss, one.train_loss) < RTOL
    assert _max_relative(two.val_loss, one.val_loss) < RTOL
    assert two.best_epoch == one.best_epoch and two.learning_rate == one.learning_rate
    # the losses fell: the comparison is between curves that moved
    assert one.train_loss[-1] < 0.5 * one.train_loss[0]


def test_two_gloo_processes_end_with_the_single_process_weights(single_and_parallel):
    single, parallel = single_and_parallel
    weights_one, weights_two = single.network.state_dict(), parallel.network.state_dict()
    assert weights_one.keys() == weights_two.keys()
    for name, value in weights_one.items():
        scale = value.abs().max().clamp_min(1e-3)  # relative to the layer's largest weight
        assert (weights_two[name] - value).abs().max() / scale < RTOL, name
    x, _ = _data(50, seed=1)
    np.testing.assert_allclose(parallel.predict(x).mean, single.predict(x).mean, rtol=RTOL, atol=RTOL)


def test_a_different_global_batch_changes_the_curve_beyond_the_tolerance(single_and_parallel):
    """The control: the tolerance above can tell two global batch sizes apart."""
    single, _ = single_and_parallel
    x, y = _data()
    for batch_size in (32, 128):
        other = Regressor(hidden=(16, 16)).fit(x, y, **{**OPTIONS, "batch_size": batch_size})
        assert _max_relative(other.train_loss, single.history.train_loss) > 100 * RTOL
        assert _max_relative(other.val_loss, single.history.val_loss) > 100 * RTOL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fit_module_in_a_one_process_group_matches_plain_training():
    """The hook inside fit_module, in this process: a gloo group of one, plain nn.Module."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=g)
    y = x[:, :1] * x[:, 1:] + 0.1 * torch.randn(300, 1, generator=g)
    results = []
    for distributed in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
        config = TrainingConfig(epochs=4, batch_size=40, seed=1, progress=False, device="cpu",
                                distributed=distributed)
        if distributed:
            torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}",
                                                 rank=0, world_size=1)
        try:
            history = fit_module(model, lambda xb, yb, net=model: ((net(xb) - yb) ** 2).mean(), (x, y), config)
        finally:
            if distributed:
                torch.distributed.destroy_process_group()
        results.append((history, torch.cat([p.detach().flatten() for p in model.parameters()])))
    (plain, plain_weights), (grouped, grouped_weights) = results
    assert _max_relative(grouped.train_loss, plain.train_loss) < 1e-5
    assert _max_relative(grouped.val_loss, plain.val_loss) < 1e-5
    torch.testing.assert_close(grouped_weights, plain_weights, rtol=1e-5, atol=1e-6)


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_bad_arguments_are_clear_errors(no_torchrun):
    x, y = _data(64)
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        fit_distributed(Regressor(hidden=(4,)), x, y, world_size=0)
    with pytest.raises(ValueError, match="world_size"):
        fit_distributed(Regressor(hidden=(4,)), x, y, world_size=1.5)
    with pytest.raises(ValueError, match="backend must be 'gloo', 'nccl'"):
        fit_distributed(Regressor(hidden=(4,)), x, y, backend="mpi")
    with pytest.raises(ValueError, match=r"batch_size \(1\) is the global batch"):
        fit_distributed(Regressor(hidden=(4,)), x, y, world_size=2, batch_size=1)
    with pytest.raises(ValueError, match="threads"):
        fit_distributed(Regressor(hidden=(4,)), x, y, threads=0)
    with pytest.raises(TypeError, match="estimator must be an astrobayes Estimator"):
        fit_distributed(nn.Linear(3, 1), x, y)
    with pytest.raises(TypeError, match="unknown training option"):
        fit_distributed(Regressor(hidden=(4,)), x, y, epoch=3)
    with pytest.raises(ValueError, match="nccl"):
        fit_distributed(Regressor(hidden=(4,)), x, y, backend="nccl", device="cpu")


def test_distributed_training_outside_a_group_says_how_to_launch(no_torchrun):
    x, y = _data(64)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        Regressor(hidden=(4,)).fit(x, y, epochs=1, progress=False, device="cpu", distributed=True)
    no_torchrun.setenv("RANK", "0")
    no_torchrun.setenv("WORLD_SIZE", "1")
    no_torchrun.setenv("MASTER_ADDR", "127.0.0.1")
    no_torchrun.setenv("MASTER_PORT", str(_free_port()))
    with pytest.raises(ValueError, match="backend must be"):
        distributed_context("cpu", backend="mpi")
    with pytest.raises(ValueError, match="nccl.*CUDA"):
        distributed_context("cpu", backend="nccl")
    no_torchrun.setenv("RANK", "1")
    with pytest.raises(ValueError, match="RANK < WORLD_SIZE"):
        distributed_context("cpu")
    assert not torch.distributed.is_initialized()
