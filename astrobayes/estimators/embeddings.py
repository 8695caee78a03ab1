"""Embedding networks: turn tables, images, sequences and sets into a feature vector.

An estimator puts its embedding between the input standardisation and its
head (``Regressor(embedding=CNNEmbedding(1))``). Each embedding has an
``output_dim`` attribute and a ``get_config()`` with its JSON-able constructor
arguments, and is registered with :func:`~astrobayes.core.register_module`, so
an estimator holding one can be saved and loaded without pickle.

* :class:`MLPEmbedding` — (n, d) tables.
* :class:`CNNEmbedding` — (n, C, L) spectra/lightcurves on a grid or (n, C, H, W) images.
* :class:`RNNEmbedding` — ordered, variable-length sequences (``Masked``, left-aligned),
  e.g. irregularly observed supernova lightcurves.
* :class:`DeepSetEmbedding` — unordered, variable-size sets (``Masked``), e.g. the
  members of a galaxy cluster (Zaheer et al. 2017, "Deep Sets").
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..core.serialization import register_module
from ..core.validation import Masked
from .layers import ACTIVATIONS, make_mlp

__all__ = ["MLPEmbedding", "CNNEmbedding", "RNNEmbedding", "DeepSetEmbedding"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _widths(values, name: str, allow_empty: bool = False) -> tuple[int, ...]:
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = (values,)
    try:
        widths = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {values!r}") from None
    if not widths and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return tuple(_positive_int(w, f"each entry of {name}") for w in widths)


def _activation(name) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


def _as_masked(x, in_channels: int, owner: str) -> Masked:
    """A ``Masked`` pair from ``Masked`` input or a fully observed (n, L, C) tensor."""
    if isinstance(x, Masked):
        values, mask = x.values, x.mask.bool()
    elif isinstance(x, torch.Tensor) and x.ndim == 3:
        values = x
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    else:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner} expects Masked(values (n, L, C), mask (n, L)) or an (n, L, C) tensor, got {shape}")
    if values.ndim != 3 or mask.shape != values.shape[:2]:
        raise ValueError(f"{owner}: values must be (n, L, C) and mask (n, L), got {tuple(values.shape)} "
                         f"and {tuple(mask.shape)}")
    if values.shape[-1] != in_channels:
        raise ValueError(f"{owner} was built for in_channels={in_channels}, but the input has "
                         f"{values.shape[-1]} channel(s) (last axis of values)")
    return Masked(values, mask)


@register_module
class MLPEmbedding(nn.Module):
    """Fully connected embedding of (n, d) inputs.

    Parameters
    ----------
    in_features : int
        Number of input columns d.
    output_dim : int
        Size of the feature vector.
    hidden : sequence of int
        Hidden-layer widths.
    activation : str
        ``"silu"``, ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"elu"``.

    Examples
    --------
    >>> MLPEmbedding(5, output_dim=8)(torch.randn(3, 5)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_features: int, output_dim: int = 32, hidden: Sequence[int] = (64,),
                 activation: str = "silu"):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.output_dim = _positive_int(output_dim, "output_dim")
        self.hidden = _widths(hidden, "hidden", allow_empty=True)
        self.activation = _activation(activation)
        self.net = make_mlp(self.in_features, self.hidden, self.output_dim, self.activation)

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "output_dim": self.output_dim, "hidden": list(self.hidden),
                "activation": self.activation}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"MLPEmbedding expects an (n, d) tensor, got {shape}")
        if x.shape[1] != self.in_features:
            raise ValueError(f"MLPEmbedding was built for in_features={self.in_features}, "
                             f"but the input has {x.shape[1]} column(s)")
        return self.net(x)


@register_module
class CNNEmbedding(nn.Module):
    """Convolutional embedding of 1-D (n, C, L) or 2-D (n, C, H, W) grids.

    Each block is convolution ("same" padding) → activation → 2× max-pooling
    (skipped once the grid is down to a single pixel along an axis). With
    ``pooling="average"`` (default) adaptive average pooling then reduces any
    grid size to one vector per object, so the same network accepts stamps of
    any size — and is blind to *where* in the stamp a feature sits. With
    ``pooling="flatten"`` the last feature map is flattened instead, which
    keeps positions (needed to infer e.g. a galaxy's centroid) but fixes the
    input grid to ``input_size``.

    Parameters
    ----------
    in_channels : int
        Number of channels C (e.g. photometric bands).
    output_dim : int
        Size of the feature vector.
    dim : {1, 2}
        1 for spectra or binned lightcurves, 2 for images.
    channels : sequence of int
        Output channels of the convolution blocks.
    kernel_size : int
        Width of every convolution kernel.
    activation : str
        Activation after each convolution.
    pooling : {"average", "flatten"}
        How the last feature map becomes a vector (see above).
    input_size : int or sequence of int, optional
        The grid (L,) or (H, W) the network will see; required for
        ``pooling="flatten"``.

    Examples
    --------
    >>> cnn = CNNEmbedding(in_channels=3, output_dim=16, dim=2, channels=(8, 16))
    >>> cnn(torch.randn(4, 3, 32, 32)).shape
    torch.Size([4, 16])
    >>> located = CNNEmbedding(1, output_dim=8, channels=(8, 16), pooling="flatten", input_size=(24, 24))
    >>> located(torch.randn(2, 1, 24, 24)).shape
    torch.Size([2, 8])
    """

    def __init__(self, in_channels: int, output_dim: int = 32, dim: int = 2, channels: Sequence[int] = (16, 32, 64),
                 kernel_size: int = 3, activation: str = "silu", pooling: str = "average",
                 input_size: int | Sequence[int] | None = None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.output_dim = _positive_int(output_dim, "output_dim")
        if dim not in (1, 2) or isinstance(dim, bool):
            raise ValueError(f"dim must be 1 or 2, got {dim!r}")
        self.dim = int(dim)
        self.channels = _widths(channels, "channels")
        self.kernel_size = _positive_int(kernel_size, "kernel_size")
        self.activation = _activation(activation)
        conv = nn.Conv1d if self.dim == 1 else nn.Conv2d
        self.pool = nn.MaxPool1d(2) if self.dim == 1 else nn.MaxPool2d(2)
        self.blocks = nn.ModuleList()
        width = self.in_channels
        for out in self.channels:
            self.blocks.append(nn.Sequential(conv(width, out, self.kernel_size, padding="same"),
                                             ACTIVATIONS[self.activation]()))
            width = out
        if pooling not in ("average", "flatten"):
            raise ValueError(f"pooling must be 'average' or 'flatten', got {pooling!r}")
        self.pooling = pooling
        self.input_size = None
        if input_size is not None:
            sizes = (input_size,) * self.dim if np.isscalar(input_size) else tuple(input_size)
            if len(sizes) != self.dim:
                raise ValueError(f"input_size must give {self.dim} grid size(s), got {input_size!r}")
            self.input_size = tuple(_positive_int(s, "input_size") for s in sizes)
        if pooling == "flatten":
            if self.input_size is None:
                raise ValueError("pooling='flatten' needs input_size, the (H, W) or (L,) grid of the inputs")
            final = list(self.input_size)
            for _ in self.channels:
                if min(final) >= 2:
                    final = [s // 2 for s in final]
            self.global_pool = nn.Identity()
            self.project = nn.Linear(width * int(np.prod(final)), self.output_dim)
        else:
            self.global_pool = nn.AdaptiveAvgPool1d(1) if self.dim == 1 else nn.AdaptiveAvgPool2d(1)
            self.project = nn.Linear(width, self.output_dim)

    def get_config(self) -> dict:
        config = {"in_channels": self.in_channels, "output_dim": self.output_dim, "dim": self.dim,
                  "channels": list(self.channels), "kernel_size": self.kernel_size, "activation": self.activation}
        if self.pooling != "average" or self.input_size is not None:
            config.update(pooling=self.pooling, input_size=None if self.input_size is None else list(self.input_size))
        return config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = "(n, C, L)" if self.dim == 1 else "(n, C, H, W)"
        if not isinstance(x, torch.Tensor) or x.ndim != self.dim + 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"CNNEmbedding(dim={self.dim}) expects {expected} input, got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"CNNEmbedding was built for in_channels={self.in_channels}, but the input has "
                             f"{x.shape[1]} channel(s) (axis 1 of {expected})")
        if self.pooling == "flatten" and tuple(x.shape[2:]) != self.input_size:
            raise ValueError(f"CNNEmbedding(pooling='flatten') was built for grids of {self.input_size}, got "
                             f"{tuple(x.shape[2:])}")
        for block in self.blocks:
            x = block(x)
            if min(x.shape[2:]) >= 2:
                x = self.pool(x)
        return self.project(self.global_pool(x).flatten(1))


@register_module
class RNNEmbedding(nn.Module):
    """Recurrent (GRU or LSTM) embedding of ordered, variable-length sequences.

    Takes ``Masked(values (n, L, C), mask (n, L))`` with the observed steps
    first (left-aligned), or a fully observed (n, L, C) tensor. Sequences are
    packed with their true lengths, so padded steps never enter the
    recurrence. The final hidden state of each direction (of the last layer)
    and log(length) — the number of observations is itself informative — go
    through a linear layer to ``output_dim``.

    Parameters
    ----------
    in_channels : int
        Values per step C (e.g. time, flux, flux error, band).
    output_dim : int
        Size of the feature vector.
    hidden_size : int
        Width of the recurrent state.
    cell : {"gru", "lstm"}
    bidirectional : bool
        Also read each sequence backwards from its last observed step.
    num_layers : int
        Stacked recurrent layers.

    Examples
    --------
    >>> rnn = RNNEmbedding(in_channels=2, output_dim=8, hidden_size=16)
    >>> values = torch.randn(3, 10, 2)
    >>> mask = torch.arange(10) < torch.tensor([[10], [4], [7]])
    >>> rnn(Masked(values, mask)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_channels: int, output_dim: int = 32, hidden_size: int = 64, cell: str = "gru",
                 bidirectional: bool = True, num_layers: int = 1):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.output_dim = _positive_int(output_dim, "output_dim")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell = cell
        self.bidirectional = _flag(bidirectional, "bidirectional")
        self.num_layers = _positive_int(num_layers, "num_layers")
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(self.in_channels, self.hidden_size, num_layers=self.num_layers, batch_first=True,
                       bidirectional=self.bidirectional)
        directions = 2 if self.bidirectional else 1
        self.project = nn.Linear(directions * self.hidden_size + 1, self.output_dim)

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "output_dim": self.output_dim, "hidden_size": self.hidden_size,
                "cell": self.cell, "bidirectional": self.bidirectional, "num_layers": self.num_layers}

    def forward(self, x) -> torch.Tensor:
        values, mask = _as_masked(x, self.in_channels, "RNNEmbedding")
        # A gap inside a sequence would be read as if the steps were adjacent.
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            raise ValueError("RNNEmbedding needs left-aligned sequences: mask must be True for the first "
                             "`length` steps and False after them")
        lengths = mask.sum(dim=1)
        if (lengths == 0).any():
            raise ValueError("RNNEmbedding got a sequence with no observed steps")
        packed = nn.utils.rnn.pack_padded_sequence(values, lengths.to("cpu"), batch_first=True,
                                                   enforce_sorted=False)
        _, state = self.rnn(packed)
        hidden = state[0] if self.cell == "lstm" else state  # (layers * directions, n, hidden)
        directions = 2 if self.bidirectional else 1
        last_layer = hidden[-directions:].transpose(0, 1).reshape(values.shape[0], -1)
        log_length = torch.log(lengths.to(last_layer.dtype))[:, None]
        return self.project(torch.cat([last_layer, log_length], dim=1))


@register_module
class DeepSetEmbedding(nn.Module):
    """Permutation-invariant embedding of unordered, variable-size sets.

    ρ( pool_{i ∈ set} φ(x_i), log N ): φ acts on each member, the masked
    pooling ignores padding wherever it sits, and log N (the number of
    members, e.g. a cluster's richness) is appended because mean and max
    pooling forget it.

    Parameters
    ----------
    in_channels : int
        Values per member C (e.g. line-of-sight velocity, projected radius).
    output_dim : int
        Size of the feature vector.
    hidden : sequence of int
        Widths of φ's layers; ρ has one hidden layer of width ``hidden[-1]``.
    pooling : {"mean", "sum", "max"}
    activation : str

    Examples
    --------
    >>> deepset = DeepSetEmbedding(in_channels=2, output_dim=8, hidden=(16, 16))
    >>> values = torch.randn(3, 20, 2)
    >>> mask = torch.rand(3, 20) < 0.5
    >>> mask[:, 0] = True
    >>> deepset(Masked(values, mask)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_channels: int, output_dim: int = 32, hidden: Sequence[int] = (64, 64),
                 pooling: str = "mean", activation: str = "silu"):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.output_dim = _positive_int(output_dim, "output_dim")
        self.hidden = _widths(hidden, "hidden")
        if pooling not in ("mean", "sum", "max"):
            raise ValueError(f"pooling must be 'mean', 'sum' or 'max', got {pooling!r}")
        self.pooling = pooling
        self.activation = _activation(activation)
        width = self.hidden[-1]
        # φ ends in an activation so that pooling acts on non-linear features.
        self.phi = nn.Sequential(make_mlp(self.in_channels, self.hidden[:-1], width, self.activation),
                                 ACTIVATIONS[self.activation]())
        self.rho = make_mlp(width + 1, (width,), self.output_dim, self.activation)

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "output_dim": self.output_dim, "hidden": list(self.hidden),
                "pooling": self.pooling, "activation": self.activation}

    def forward(self, x) -> torch.Tensor:
        values, mask = _as_masked(x, self.in_channels, "DeepSetEmbedding")
        features = self.phi(values)  # (n, L, width)
        keep = mask[..., None]
        counts = mask.sum(dim=1, keepdim=True).to(features.dtype)  # (n, 1)
        if (counts == 0).any():
            raise ValueError("DeepSetEmbedding got a set with no members")
        # torch.where (not multiplication) so that even NaN in padded slots cannot leak.
        if self.pooling == "max":
            pooled = torch.where(keep, features, torch.full((), -torch.inf, dtype=features.dtype,
                                                            device=features.device)).amax(dim=1)
        else:
            pooled = torch.where(keep, features, torch.zeros((), dtype=features.dtype,
                                                             device=features.device)).sum(dim=1)
            if self.pooling == "mean":
                pooled = pooled / counts
        return self.rho(torch.cat([pooled, torch.log(counts)], dim=1))
