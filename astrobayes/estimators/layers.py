"""Small building blocks shared by the estimators."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from torch import nn

from ..core.limits import check_parameter_count, short_repr

__all__ = ["ACTIVATIONS", "hidden_sizes", "make_mlp", "reset_parameters"]

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU}


def hidden_sizes(hidden, name: str = "hidden") -> tuple[int, ...]:
    """Hidden layer widths as a tuple of ints; a string, a bool or a non-integer width is a TypeError/ValueError.

    >>> hidden_sizes([64, 64])
    (64, 64)
    >>> hidden_sizes("64")
    Traceback (most recent call last):
    ...
    TypeError: hidden must be a sequence of layer widths such as (64, 64), got the str '64'
    """
    if isinstance(hidden, (str, bytes, bool)) or not isinstance(hidden, Iterable):
        raise TypeError(f"{name} must be a sequence of layer widths such as (64, 64), got the "
                        f"{type(hidden).__name__} {short_repr(hidden)}")
    sizes = tuple(hidden)
    if any(isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 for size in sizes):
        raise ValueError(f"{name} layer widths must be positive integers, got {short_repr(sizes)}")
    return tuple(int(size) for size in sizes)


def make_mlp(in_features: int, hidden: Sequence[int], out_features: int, activation: str = "silu",
             dropout: float = 0.0) -> nn.Sequential:
    """Fully connected network ``in → hidden... → out`` (no activation at the end).

    ``dropout`` > 0 puts a dropout layer after every hidden activation (as MC
    dropout needs).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if any(isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 for size in hidden):
        raise ValueError(f"hidden layer sizes must be positive integers, got {short_repr(tuple(hidden))}")
    widths = [int(in_features), *(int(size) for size in hidden), int(out_features)]
    # counted before any layer exists: an absurd width is refused instead of allocating terabytes
    check_parameter_count(sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])),
                          f"an MLP of layer widths {widths[0]} → {short_repr(tuple(hidden))} → {widths[-1]}",
                          hint="use smaller hidden layer widths (or fewer outputs: components, classes)")
    layers: list[nn.Module] = []
    width = int(in_features)
    for size in hidden:
        layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    layers.append(nn.Linear(width, int(out_features)))
    return nn.Sequential(*layers)


def reset_parameters(module: nn.Module) -> nn.Module:
    """Re-draw the initial weights of every sub-module that knows how."""
    for sub in module.modules():
        if sub is not module and hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
    return module
