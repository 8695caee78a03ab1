"""Bounds on what a file or a configuration may ask of this machine.

A model file, a sidecar or a training configuration is data that someone
else may have written. Reading it must not exhaust the memory or the stack:
JSON and TOML are read only up to a size and a nesting depth, and a network
described by a file or a configuration is refused *before* its weights are
allocated when it would have more parameters than :data:`MAX_PARAMETERS` or
than this machine's memory can train.

The limits are module attributes; a user with a genuinely larger model can
raise them (``astrobayes.core.limits.MAX_PARAMETERS = 5 * 10**9``).
"""
from __future__ import annotations

import math
import os
import re
import reprlib
from contextlib import contextmanager

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

__all__ = ["MAX_JSON_BYTES", "MAX_TOML_BYTES", "MAX_NESTING", "MAX_PARAMETERS", "MAX_TENSORS", "TRAINING_BYTES_PER_PARAMETER",
           "memory_bytes", "parameter_limit", "check_parameter_count", "network_size_guard", "nesting_depth",
           "short_repr"]

#: largest JSON model header or sidecar read (32 MiB). A header holds constructor options, two numbers per input
#: feature of standardisation and ~76 bytes per epoch of training history: a regressor trained 100 epochs writes
#: 8 kB, an ensemble of five 44 kB, and a history of 100,000 epochs would be 8 MB, so real files stay far below it.
MAX_JSON_BYTES = 32 * 2**20
#: largest TOML configuration read (1 MiB); ``astrobayes train DOMAIN --print-config`` writes about 2 kB.
MAX_TOML_BYTES = 2**20
#: deepest nesting of lists and objects/tables in JSON and TOML. Model headers nest at most 7 levels (an
#: ensemble's member specification with its embedding's configuration), configurations 3.
MAX_NESTING = 32
#: most parameters of one network built from a file, a configuration or constructor options: 10⁹ float32
#: weights are 4 GB, 16 GB while training (weights, gradients, two Adam moments). astrobayes' own networks
#: have 10³-10⁶.
MAX_PARAMETERS = 10**9
#: most weight tensors (factory calls) one network build may create: a layer count of 10¹⁸ (``num_layers``,
#: ``n_transforms``) adds small layers one by one, each under the parameter limit, for hours. The recipes'
#: networks have 16-134 tensors (the galaxies' CNN + five spline transforms: 134; a flow has ~25 per transform,
#: so 5,000 allows 200 transforms). Refusing a count of 10¹⁸ takes at most ~3 s.
MAX_TENSORS = 5_000
#: bytes per parameter while training with Adam (float32 weights, gradients and two moment estimates)
TRAINING_BYTES_PER_PARAMETER = 16

# the factory functions through which torch modules allocate their weights and buffers
_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                        torch.empty_strided, torch.normal})


def memory_bytes() -> int | None:
    """Physical memory of this machine (or of its container's cgroup, if lower) in bytes; None where unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            text = handle.read().strip()
        if text.isdigit():
            total = min(total, int(text))
    except OSError:
        pass
    return int(total) if total > 0 else None


def parameter_limit(bytes_per_parameter: int = TRAINING_BYTES_PER_PARAMETER) -> int:
    """Most parameters a network may have here: :data:`MAX_PARAMETERS`, or less where memory is smaller.

    Parameters
    ----------
    bytes_per_parameter : int
        Memory each parameter needs: 16 while training with Adam, 4 to evaluate a float32 network.

    Examples
    --------
    >>> 0 < parameter_limit() <= MAX_PARAMETERS
    True
    """
    memory = memory_bytes()
    if memory is None:
        return MAX_PARAMETERS
    return int(min(MAX_PARAMETERS, memory // bytes_per_parameter))


def _bytes_text(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def _limit_text(limit: int, bytes_per_parameter: int) -> str:
    if limit >= MAX_PARAMETERS:
        return f"the limit is {limit:,} parameters (astrobayes.core.limits.MAX_PARAMETERS)"
    return (f"the limit here is {limit:,} parameters ({bytes_per_parameter} bytes each in this machine's "
            f"{_bytes_text(memory_bytes() or 0)} of memory)")


def check_parameter_count(n_parameters: int, what: str, bytes_per_parameter: int = TRAINING_BYTES_PER_PARAMETER,
                          hint: str = "use smaller layer widths") -> None:
    """Refuse a network of ``n_parameters`` above :func:`parameter_limit` with a ValueError naming ``what``.

    Examples
    --------
    >>> check_parameter_count(10**12, "hidden=(1000000, 1000000)")
    Traceback (most recent call last):
    ...
    ValueError: hidden=(1000000, 1000000) gives a network of 1,000,000,000,000 parameters ...
    """
    limit = parameter_limit(bytes_per_parameter)
    if n_parameters > limit:
        raise ValueError(f"{what} gives a network of {n_parameters:,} parameters (about "
                         f"{_bytes_text(n_parameters * bytes_per_parameter)} to "
                         f"{'train' if bytes_per_parameter >= TRAINING_BYTES_PER_PARAMETER else 'hold'}); "
                         f"{_limit_text(limit, bytes_per_parameter)}: {hint}")


def _requested_elements(args, kwargs) -> int:
    """Elements a factory call asks for: its first size-like argument (a sequence, or leading integers)."""
    size = kwargs.get("size")
    if size is None:
        for value in args:
            if isinstance(value, (tuple, list, torch.Size)):
                size = value
                break
        else:
            size = [a for a in args if isinstance(a, int) and not isinstance(a, bool)] if args and all(
                isinstance(a, int) and not isinstance(a, bool) for a in args) else ()
    try:
        return math.prod(max(int(s), 0) for s in size)
    except (TypeError, ValueError, OverflowError):
        return 0


class _SizeGuard(TorchFunctionMode):
    """Counts the elements torch factory functions are asked for; refuses the call that would pass the limit."""

    def __init__(self, what: str, limit: int, bytes_per_parameter: int, reason: str | None, hint: str,
                 error: type, max_tensors: int | None):
        super().__init__()
        self.max_tensors = max_tensors
        self.what, self.limit, self.reason, self.hint, self.error = what, limit, reason, hint, error
        self.bytes_per_parameter = bytes_per_parameter
        self.total = self.tensors = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES:
            self.total += _requested_elements(args, kwargs)
            self.tensors += 1
            most = MAX_TENSORS if self.max_tensors is None else self.max_tensors
            if self.tensors > most:
                raise self.error(f"{self.what} needs more than {most:,} weight tensors (layers, transforms); "
                                 f"{self.reason or 'the limit is astrobayes.core.limits.MAX_TENSORS'}: "
                                 f"{self.hint if self.reason else 'use fewer layers'}")
            if self.total > self.limit:
                reason = self.reason or _limit_text(self.limit, self.bytes_per_parameter)
                raise self.error(f"{self.what} needs more than {self.total:,} parameters (at least "
                                 f"{_bytes_text(self.total * self.bytes_per_parameter)}); {reason}: {self.hint}")
        return func(*args, **kwargs)


@contextmanager
def network_size_guard(what: str, limit: int | None = None, bytes_per_parameter: int = TRAINING_BYTES_PER_PARAMETER,
                       reason: str | None = None,
                       hint: str = "use smaller layer widths (hidden sizes, channels, components)",
                       error: type = ValueError, max_tensors: int | None = None):
    """Build torch modules inside this block; a build that asks for more than ``limit`` elements is refused.

    A build that creates more than :data:`MAX_TENSORS` tensors (absurd layer counts) is refused too.
    The count covers every tensor torch's factory functions (``torch.empty``, ``zeros``, ``randn``...)
    are asked for inside the block, and the refusal happens *before* the tensor that passes the limit is
    allocated, so a configuration asking for terabytes costs nothing.

    Parameters
    ----------
    what : str
        Names the network or its source in the message (``"Regressor(hidden=...)"``, a file).
    limit : int, optional
        Most elements; default :func:`parameter_limit` for ``bytes_per_parameter``.
    reason : str, optional
        Says why the limit is what it is, in place of the default wording.
    hint : str
        What to do about it.
    error : exception class
        Raised on refusal (ValueError; ModelFileError for files).
    max_tensors : int, optional
        Most tensors the block may create; default :data:`MAX_TENSORS`.

    Examples
    --------
    >>> with network_size_guard("a test network", limit=1000):
    ...     torch.nn.Linear(10, 10)
    Linear(in_features=10, out_features=10, bias=True)
    >>> with network_size_guard("a wide network", limit=1000):
    ...     torch.nn.Linear(1000, 1000)
    Traceback (most recent call last):
    ...
    ValueError: a wide network needs more than 1,000,000 parameters ...
    """
    guard = _SizeGuard(what, parameter_limit(bytes_per_parameter) if limit is None else int(limit),
                       bytes_per_parameter, reason, hint, error, max_tensors)
    with guard:
        yield guard


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def nesting_depth(text: str | bytes) -> int:
    """How deeply ``[...]`` and ``{...}`` nest in JSON text, counted without recursion (strings skipped).

    Examples
    --------
    >>> nesting_depth('{"a": [[1, 2], {"b": "[[[["}]}')
    3
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    data = _JSON_STRING.sub(b"", data)
    codes = np.frombuffer(data, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(codes, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(steps).max(initial=0))


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters (and a few levels), for messages about hostile files.

    Examples
    --------
    >>> short_repr("x" * 100, 10)
    "'xx...xxx'"
    >>> short_repr([[[[[1]]]]])
    '[[[[...]]]]'
    """
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxstring, shortener.maxother = 4, limit, limit
    shortener.maxlist = shortener.maxdict = shortener.maxtuple = 8
    return shortener.repr(value)
