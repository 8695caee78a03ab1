"""Input checks and plotting helpers shared by the diagnostics modules."""
from __future__ import annotations

import numpy as np
import torch

from ...core.validation import as_tensor


def _array(value, name: str, ndim) -> np.ndarray:
    return as_tensor(value, name, ndim=ndim, dtype=torch.float64).numpy()


def _truth_and_draws(prior_samples, posterior_samples) -> tuple[np.ndarray, np.ndarray]:
    """(N, d) true parameters and (N, L, d) posterior draws; 1-D / 2-D input means d = 1."""
    theta = _array(prior_samples, "prior_samples", (1, 2))
    theta = theta[:, None] if theta.ndim == 1 else theta
    draws = _array(posterior_samples, "posterior_samples", (2, 3))
    if draws.ndim == 2:
        if theta.shape[1] != 1:
            raise ValueError(f"posterior_samples has shape {draws.shape}; with {theta.shape[1]} parameters "
                             "it must be (N, L, d)")
        draws = draws[..., None]
    if draws.shape[0] != theta.shape[0]:
        raise ValueError(f"mismatched lengths: prior_samples has {theta.shape[0]} rows, "
                         f"posterior_samples has {draws.shape[0]}")
    if draws.shape[2] != theta.shape[1]:
        raise ValueError(f"prior_samples has {theta.shape[1]} parameter(s) but posterior_samples has {draws.shape[2]}")
    return theta, draws


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _axes(ax, n: int, width: float = 3.2):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, n, figsize=(width * n, width), squeeze=False)
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if len(axes) != n:
        raise ValueError(f"ax must hold one Axes per parameter ({n}), got {len(axes)}")
    return axes
