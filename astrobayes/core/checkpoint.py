"""Training checkpoints: safetensors + JSON, written atomically, no pickle.

A checkpoint saved under ``runs/fit`` is a pair, like a model file (see
:mod:`astrobayes.core.serialization`):

* ``runs/fit.e00007.safetensors`` — every tensor: the network, the best
  weights so far, the optimiser's moments, the random-number-generator states;
* ``runs/fit.json`` — everything else: the epoch, the optimiser's and the
  scheduler's plain values, the early-stopping counters, the history, the
  fingerprint of the run (options, network, data) and the SHA-256 of the
  weights file.

The JSON file is the commit point. A save writes a *new* weights file (its name
carries the epoch), then replaces the JSON through a temporary file and
``os.replace``, and only then deletes the previous weights file. Killed at any
moment, the folder holds the last good pair, possibly beside an orphan that the
next save removes; never a half-written file under a name that is read.

Python state (dicts, lists, tuples, non-finite floats, dicts with integer keys,
as in ``optimizer.state_dict()``) is stored losslessly by :func:`pack_state`
and :func:`unpack_state`: tensors go to the safetensors file, the rest to JSON
with small tags (``{"__tuple__": [...]}``, ``{"__float__": "inf"}``).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import re
import signal
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from .serialization import ModelFileError

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_path", "write_checkpoint", "read_checkpoint", "pack_state",
           "unpack_state", "tensor_digest", "rng_states", "set_rng_states", "DeferredInterrupts"]

CHECKPOINT_FORMAT = "astrobayes-checkpoint"
CHECKPOINT_VERSION = 1
#: a checkpoint's JSON holds counters, small state and a history: far below this (a hostile file is refused)
MAX_JSON_BYTES = 64 * 2**20


def checkpoint_path(path) -> Path:
    """The JSON file of the checkpoint saved under ``path`` (a stem, or the ``.json`` file itself)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path, got {type(path).__name__}")
    try:
        os.fsencode(path)
    except UnicodeError:
        raise ValueError(f"checkpoint {str(path)!r} cannot be a file name on this system; choose another") from None
    path = Path(path).expanduser()
    if path.suffix == ".json":
        path = path.with_suffix("")
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a folder; give a file stem inside it, e.g. {path / 'fit'}")
    return path.with_name(path.name + ".json")


def _weights_pattern(json_path: Path) -> re.Pattern:
    return re.compile(re.escape(json_path.stem) + r"\.e\d+b?\.safetensors")


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through a temporary file in the same folder, flushed to disk, then renamed."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_checkpoint(path, header: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Write a checkpoint pair atomically (see the module notes); return the JSON path.

    ``header`` must hold ``"epoch"`` (an int, used in the weights file name)
    and JSON-able values only (see :func:`pack_state`).
    """
    from safetensors.torch import save

    from .. import __version__

    json_path = checkpoint_path(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    previous = None
    if json_path.exists():
        try:
            previous = json.loads(json_path.read_text()).get("weights_file")
        except (OSError, ValueError, AttributeError, RecursionError):  # a damaged JSON is replaced below
            previous = None
    weights = save({name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()},
                   metadata={"format": CHECKPOINT_FORMAT})
    weights_path = json_path.with_name(f"{json_path.stem}.e{int(header['epoch']):05d}.safetensors")
    if previous == weights_path.name:  # never rewrite the file the current JSON points at
        weights_path = weights_path.with_name(weights_path.stem + "b.safetensors")
    _write_atomically(weights_path, weights)
    full = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "astrobayes_version": __version__,
            "torch_version": torch.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **header, "weights_file": weights_path.name, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    _write_atomically(json_path, (json.dumps(full, allow_nan=False) + "\n").encode())
    # the new pair is committed: the old weights file and orphans of interrupted saves can go
    pattern = _weights_pattern(json_path)
    for stale in json_path.parent.iterdir():
        if stale.name != weights_path.name and (pattern.fullmatch(stale.name) or stale.name == previous):
            stale.unlink(missing_ok=True)
    return json_path


def read_checkpoint(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and verify a checkpoint pair: ``(header, tensors)``.

    Raises
    ------
    FileNotFoundError
        When there is no checkpoint at ``path``.
    ModelFileError
        When the files are not an astrobayes checkpoint, are truncated or
        were modified, or come from a newer format version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    json_path = checkpoint_path(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: {json_path} does not exist")
    if json_path.stat().st_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{json_path} is larger than a checkpoint's JSON can be "
                             f"({MAX_JSON_BYTES // 2**20} MiB); it is not an astrobayes checkpoint")
    try:
        header = json.loads(json_path.read_bytes())
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(f"{json_path} is not an astrobayes checkpoint (not valid JSON: "
                             f"{type(err).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{json_path} is not an astrobayes checkpoint (no 'format': '{CHECKPOINT_FORMAT}')")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ModelFileError(f"{json_path} has checkpoint format version {version!r}; this astrobayes reads "
                             f"versions up to {CHECKPOINT_VERSION}")
    name = header.get("weights_file")
    if not isinstance(name, str) or not _weights_pattern(json_path).fullmatch(name):
        raise ModelFileError(f"{json_path} names no weights file of its own ({name!r})")
    weights_path = json_path.with_name(name)
    try:
        data = weights_path.read_bytes()
    except OSError as err:
        raise ModelFileError(f"{json_path} refers to {weights_path}, which cannot be read "
                             f"({err.strerror or type(err).__name__})") from None
    if hashlib.sha256(data).hexdigest() != header.get("weights_sha256"):
        raise ModelFileError(f"{weights_path} does not match the checksum recorded in {json_path.name}: "
                             "it was modified or truncated")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as err:
        raise ModelFileError(f"{weights_path} is not a readable safetensors file ({err})") from None
    return header, tensors


# ------------------------------------------------------------------ lossless state <-> JSON + tensors
def pack_state(value, tensors: dict[str, torch.Tensor], prefix: str):
    """``value`` as JSON-able data; its tensors go into ``tensors`` under names starting with ``prefix``.

    Examples
    --------
    >>> tensors = {}
    >>> pack_state({0: (1.5, float("inf")), "w": torch.ones(2)}, tensors, "opt")
    {'__items__': [[0, {'__tuple__': [1.5, {'__float__': 'inf'}]}], ['w', {'__tensor__': 'opt.w'}]]}
    >>> unpack_state(_, tensors)[0]
    (1.5, inf)
    """
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value
        return {"__tensor__": prefix}
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, (np.integer, np.floating)):
        return pack_state(value.item(), tensors, prefix)
    if isinstance(value, tuple):
        return {"__tuple__": [pack_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [pack_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: pack_state(v, tensors, f"{prefix}.{k}") for k, v in value.items()}
        return {"__items__": [[pack_state(k, tensors, f"{prefix}.key{i}"), pack_state(v, tensors, f"{prefix}.{k}")]
                              for i, (k, v) in enumerate(value.items())]}
    raise TypeError(f"a checkpoint cannot hold {type(value).__name__} (at {prefix})")


def unpack_state(value, tensors: dict[str, torch.Tensor]):
    """Inverse of :func:`pack_state`; a ModelFileError for a reference to a tensor that is not there."""
    if isinstance(value, list):
        return [unpack_state(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__tensor__"}:
        if value["__tensor__"] not in tensors:
            raise ModelFileError(f"the checkpoint has no tensor {value['__tensor__']!r}")
        return tensors[value["__tensor__"]]
    if set(value) == {"__float__"}:
        return float(value["__float__"])
    if set(value) == {"__tuple__"}:
        return tuple(unpack_state(v, tensors) for v in value["__tuple__"])
    if set(value) == {"__items__"}:
        return {unpack_state(k, tensors): unpack_state(v, tensors) for k, v in value["__items__"]}
    return {k: unpack_state(v, tensors) for k, v in value.items()}


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes (its shape and dtype are not included)."""
    raw = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(memoryview(raw.numpy())).hexdigest()


# ------------------------------------------------------------------ random-number generators
def rng_states(generator: torch.Generator | None, device: torch.device, tensors: dict, prefix: str = "rng") -> dict:
    """Every random stream a training loop may draw from; the tensors go into ``tensors``.

    torch's global CPU generator (dropout, weight draws), ``generator`` (the
    split and batch order), the CUDA generator of ``device`` when it is a GPU,
    numpy's and Python's global generators.
    """
    tensors[f"{prefix}.torch"] = torch.get_rng_state()
    if generator is not None:
        tensors[f"{prefix}.generator"] = generator.get_state()
    if device.type == "cuda":
        tensors[f"{prefix}.cuda"] = torch.cuda.get_rng_state(device)
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors[f"{prefix}.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, words, gauss = random.getstate()
    tensors[f"{prefix}.python"] = torch.tensor(words, dtype=torch.int64)
    return {"numpy": [kind, int(position), int(has_gauss), float(cached)],
            "python": [version, pack_state(gauss, tensors, f"{prefix}.gauss")]}


def set_rng_states(states: dict, generator: torch.Generator | None, device: torch.device, tensors: dict,
                   prefix: str = "rng") -> None:
    """Inverse of :func:`rng_states`."""
    torch.set_rng_state(tensors[f"{prefix}.torch"])
    if generator is not None:
        generator.set_state(tensors[f"{prefix}.generator"])
    if device.type == "cuda" and f"{prefix}.cuda" in tensors:
        torch.cuda.set_rng_state(tensors[f"{prefix}.cuda"], device)
    kind, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, tensors[f"{prefix}.numpy"].numpy().astype(np.uint32), position, has_gauss, cached))
    version, gauss = states["python"]
    random.setstate((version, tuple(tensors[f"{prefix}.python"].tolist()), unpack_state(gauss, tensors)))


# ------------------------------------------------------------------ signals
class DeferredInterrupts:
    """Within the block, SIGINT and SIGTERM only set :attr:`received` (main thread only).

    The code polls :attr:`received` at clean points (the end of an epoch),
    saves, and stops. A second signal raises KeyboardInterrupt at once. The
    previous handlers come back on exit. Outside the main thread (where Python
    cannot install handlers) the block changes nothing.
    """

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is not None:
            raise KeyboardInterrupt(f"a second {name}: stopped at once")
        self.received = name

    def __enter__(self) -> "DeferredInterrupts":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
