"""Standardisation that lives inside a model, so saved models take raw data."""
from __future__ import annotations

import torch
from torch import nn

from .validation import Masked

__all__ = ["Standardizer"]


class Standardizer(nn.Module):
    """Shift-and-scale per feature (per channel for images and sequences).

    The statistics are buffers: they travel with the weights into the
    safetensors file, so a loaded model applies exactly the transformation it
    was trained with.

    Parameters
    ----------
    num_features : int
        Size of the feature axis: the last axis of a (n, d) table or of
        padded (n, length, channels) sequences, axis 1 of (n, C, ...) images.
    enabled : bool
        False makes this an identity (used e.g. for class labels).

    Examples
    --------
    >>> s = Standardizer(2)
    >>> s.fit(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
    Standardizer(num_features=2, enabled=True)
    >>> s(torch.tensor([[1.0, 20.0]]))
    tensor([[0., 0.]])
    """

    def __init__(self, num_features: int, enabled: bool = True):
        super().__init__()
        self.num_features = int(num_features)
        self.enabled = bool(enabled)
        self.register_buffer("shift", torch.zeros(self.num_features))
        self.register_buffer("scale", torch.ones(self.num_features))

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, enabled={self.enabled}"

    def _shape(self, data: torch.Tensor) -> tuple[int, ...]:
        # (n, d) and (n, L, C): the feature axis is last; (n, C, ...) images and
        # 1-D CNN inputs: the channel axis is 1.
        if data.ndim == 2:
            return (1, self.num_features)
        return (1, self.num_features) + (1,) * (data.ndim - 2)

    @torch.no_grad()
    def fit(self, data: torch.Tensor | Masked) -> "Standardizer":
        """Estimate shift and scale from training data."""
        if not self.enabled:
            return self
        if isinstance(data, Masked):
            observed = data.values[data.mask]  # (n_observed, C)
        elif data.ndim == 2:
            observed = data
        else:
            observed = data.transpose(0, 1).reshape(self.num_features, -1).T
        if observed.shape[-1] != self.num_features:
            raise ValueError(f"expected {self.num_features} features, got shape {tuple(observed.shape)}")
        observed = observed.double()
        shift = observed.mean(dim=0)
        scale = observed.std(dim=0, unbiased=False) if observed.shape[0] > 1 else torch.ones_like(shift)
        # A constant feature carries no information; dividing by 0 would make NaN.
        scale = torch.where(scale > 1e-12 * (1 + shift.abs()), scale, torch.ones_like(scale))
        self.shift.copy_(shift.to(self.shift.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))
        return self

    def _transform(self, data, fn):
        if isinstance(data, Masked):
            values = fn(data.values, self.shift, self.scale)
            return Masked(values * data.mask[..., None], data.mask)
        if data.ndim == 2:
            return fn(data, self.shift, self.scale)
        shape = self._shape(data)
        return fn(data, self.shift.view(shape), self.scale.view(shape))

    def forward(self, data):
        """Raw → standardised."""
        if not self.enabled:
            return data
        return self._transform(data, lambda d, m, s: (d - m) / s)

    def inverse(self, data):
        """Standardised → raw."""
        if not self.enabled:
            return data
        return self._transform(data, lambda d, m, s: d * s + m)

    def log_abs_det(self) -> torch.Tensor:
        """log |d raw / d standardised| summed over features (a density's Jacobian)."""
        if not self.enabled:
            return torch.zeros((), device=self.scale.device)
        return torch.log(self.scale).sum()
