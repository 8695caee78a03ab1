import numpy as np
import pandas as pd
import pytest
import torch

from astrobayes.core import Masked, Standardizer, as_inputs, as_tensor, check_same_length


def test_nan_rows_are_named_with_indices():
    y = np.zeros((20, 2))
    y[[4, 9, 17], 1] = np.nan
    with pytest.raises(ValueError, match=r"y has 3 row\(s\) with NaN or inf \(indices 4, 9, 17\)"):
        as_tensor(y, "y")


def test_inf_and_long_lists_are_truncated():
    y = np.full((30, 1), np.inf)
    with pytest.raises(ValueError, match=r"20 more"):
        as_tensor(y, "y")


def test_shape_type_and_emptiness_checks():
    with pytest.raises(ValueError, match="x is empty"):
        as_tensor(np.zeros((0, 3)), "x")
    with pytest.raises(ValueError, match="x must have 2 dimension"):
        as_tensor(np.zeros((3, 3, 3)), "x", ndim=2)
    with pytest.raises(TypeError, match="x must be numeric"):
        as_tensor(np.array(["a", "b"]), "x")
    with pytest.raises(TypeError, match="x is required"):
        as_tensor(None, "x")
    with pytest.raises(ValueError, match="scalar"):
        as_tensor(3.0, "x")


def test_quantities_are_refused_with_advice():
    import astropy.units as u

    with pytest.raises(TypeError, match=r"Quantity with unit km / s.*to_value"):
        as_tensor([1.0, 2.0] * u.km / u.s, "velocity")


def test_pandas_and_torch_inputs():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert as_tensor(frame, "x").shape == (2, 2)
    assert as_tensor(torch.ones(3, dtype=torch.float64), "x").dtype == torch.float32


def test_labels():
    assert as_tensor([0.0, 1.0, 2.0], "y", dtype=torch.long).dtype == torch.long
    with pytest.raises(ValueError, match="integer class labels"):
        as_tensor([0.5, 1.0], "y", dtype=torch.long)


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="x has 3, y has 4 rows"):
        check_same_length(x=torch.zeros(3, 1), y=torch.zeros(4, 1))


def test_masked_inputs_zero_padding_and_reject_bad_observed_values():
    values = np.random.default_rng(0).normal(size=(3, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    values[0, 3] = np.nan  # padding may hold anything
    checked = as_inputs((values, mask))
    assert isinstance(checked, Masked)
    assert torch.all(checked.values[0, 2:] == 0)
    values[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 object\(s\) with NaN or inf in observed entries \(indices 1\)"):
        as_inputs((values, mask))
    with pytest.raises(ValueError, match="no observed entries"):
        as_inputs((np.zeros((2, 3, 1)), np.array([[1, 0, 0], [0, 0, 0]], bool)))
    with pytest.raises(ValueError, match="mask has"):
        as_inputs((np.zeros((2, 3, 1)), np.ones((2, 4), bool)))


def test_standardizer_roundtrip_and_jacobian():
    data = torch.tensor([[1.0, 100.0], [3.0, 300.0], [5.0, 200.0]])
    scaler = Standardizer(2).fit(data)
    z = scaler(data)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(2), atol=1e-5)
    assert torch.allclose(scaler.inverse(z), data, atol=1e-4)
    assert torch.isclose(scaler.log_abs_det(), torch.log(data.std(0, unbiased=False)).sum())


def test_standardizer_constant_feature_and_images():
    scaler = Standardizer(1).fit(torch.full((10, 1), 7.0))
    assert torch.isfinite(scaler(torch.full((2, 1), 7.0))).all()
    images = torch.randn(8, 3, 5, 5) * torch.tensor([1.0, 10.0, 100.0]).view(1, 3, 1, 1)
    scaled = Standardizer(3).fit(images)(images)
    assert torch.allclose(scaled.transpose(0, 1).reshape(3, -1).std(1, unbiased=False), torch.ones(3), atol=1e-4)


def test_standardizer_masked_uses_observed_entries_only():
    values = torch.tensor([[[1.0], [3.0], [1000.0]]])
    mask = torch.tensor([[True, True, False]])
    scaler = Standardizer(1).fit(Masked(values, mask))
    assert scaler.shift.item() == pytest.approx(2.0)
    out = scaler(Masked(values, mask))
    assert out.values[0, 2, 0] == 0  # padding stays zero
