import pytest
import torch

from astrobayes.core import cuda_available, make_generator, resolve_device, seed_everything


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if cuda_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(cuda_available(), reason="this machine has a GPU, so 'cuda' is valid")
def test_explicit_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize("bad", ["tpu", "cuda:x"])
def test_unknown_device_names(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


def test_device_type_error():
    with pytest.raises(TypeError, match="device"):
        resolve_device(3)


def test_seed_everything_reproduces_torch_and_numpy():
    import numpy as np

    seed_everything(11)
    a, na = torch.randn(5), np.random.rand(3)
    seed_everything(11)
    b, nb = torch.randn(5), np.random.rand(3)
    assert torch.equal(a, b) and (na == nb).all()
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)


def test_private_generator_is_independent_of_global_state():
    g1, g2 = make_generator(4), make_generator(4)
    torch.manual_seed(0)
    x = torch.rand(3, generator=g1)
    torch.rand(100)
    assert torch.equal(x, torch.rand(3, generator=g2))


@pytest.mark.gpu
def test_cuda_tensor_roundtrip():
    device = resolve_device("cuda")
    assert torch.ones(3, device=device).sum().item() == 3.0
