"""Choosing the torch device a model trains and predicts on."""
from __future__ import annotations

import torch

__all__ = ["resolve_device", "cuda_available"]


def cuda_available() -> bool:
    """Return True when torch can see at least one CUDA device."""
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a user's device request into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device or None
        ``"auto"`` (or None) picks the first CUDA device when there is one and
        the CPU otherwise.  Asking explicitly for CUDA on a machine without a
        GPU is an error rather than a silent fall-back to the CPU.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if cuda_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {type(device).__name__}")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device={device!r} is not a valid torch device ({err})") from None
    if resolved.type == "cuda":
        if not cuda_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA GPU is visible to torch "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use device='auto' or 'cpu'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif resolved.type not in ("cpu", "mps"):
        raise ValueError(f"device={device!r}: astrobayes supports 'cpu' and 'cuda' devices")
    return resolved
