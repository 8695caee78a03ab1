"""Model files: weights in safetensors, everything else in JSON beside them.

No pickle is involved anywhere: ``torch.load`` of an untrusted file can run
arbitrary code, a safetensors file cannot. A model saved as ``model`` becomes

* ``model.safetensors`` — the tensors, with ``{"format": "astrobayes-model"}``
  in the safetensors metadata;
* ``model.json`` — format version, astrobayes/torch versions, the class name,
  the constructor configuration, standardisation statistics in readable form
  and the SHA-256 of the weights file (so a tampered or truncated weights file
  is detected before it is used).
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import torch

from . import limits
from .limits import check_parameter_count, nesting_depth, network_size_guard, short_repr

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ModelFileError", "register_estimator", "register_module", "estimator_class",
    "json_safe", "read_json",
    "module_from_config", "model_paths", "write_model", "read_model", "load",
]

FORMAT = "astrobayes-model"
FORMAT_VERSION = 1

class _Registry(dict):
    """Classes by name. The estimators register themselves when :mod:`astrobayes.estimators` is imported, which a
    lookup makes sure of: core never imports them at module level (they import core), and ``import astrobayes``
    imports them only on first use."""

    def _complete(self) -> None:
        import astrobayes.estimators  # noqa: F401  (a no-op once imported, also while it is being imported)

    def __contains__(self, name) -> bool:
        self._complete()
        return super().__contains__(name)

    def __getitem__(self, name):
        self._complete()
        return super().__getitem__(name)

    def __iter__(self):
        self._complete()
        return super().__iter__()


_ESTIMATORS: dict[str, type] = _Registry()
_MODULES: dict[str, type] = _Registry()


class ModelFileError(ValueError):
    """A file that is not a readable astrobayes model."""


def register_estimator(cls: type) -> type:
    """Class decorator: make ``cls`` loadable by :func:`load`."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def estimator_class(name: str) -> type:
    """The registered estimator class called ``name`` (ModelFileError if none)."""
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ModelFileError(f"unknown estimator class {short_repr(name)}; known: {sorted(_ESTIMATORS)}")
    return _ESTIMATORS[name]


def json_safe(value):
    """Replace non-finite floats by None, recursively: strict JSON has no NaN."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def register_module(cls: type) -> type:
    """Class decorator for configurable torch modules (e.g. embeddings).

    The class must implement ``get_config()`` returning JSON-able constructor
    keyword arguments. Its construction is guarded by
    :func:`~astrobayes.core.limits.network_size_guard`: options asking for an
    absurd number of weights (``RNNEmbedding(3, hidden_size=10**6)``) raise a
    ValueError before torch allocates them.
    """
    _MODULES[cls.__name__] = cls
    init = cls.__init__
    if getattr(init, "_size_guarded", False):  # a subclass of a registered module: its parent's init is guarded
        return cls

    @functools.wraps(init)
    def guarded_init(self, *args, **kwargs):
        options = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
        with network_size_guard(f"{type(self).__name__}({', '.join(options)})"):
            init(self, *args, **kwargs)

    guarded_init._size_guarded = True
    cls.__init__ = guarded_init
    return cls


def module_config(module) -> dict | None:
    """``{"class": name, "config": {...}}`` for a registered module, None for None."""
    if module is None:
        return None
    name = type(module).__name__
    if name not in _MODULES or not hasattr(module, "get_config"):
        raise TypeError(
            f"{name} cannot be saved: use an astrobayes embedding (MLPEmbedding, CNNEmbedding, "
            f"RNNEmbedding, DeepSetEmbedding) or register your module with astrobayes.core.register_module"
        )
    return {"class": name, "config": module.get_config()}


def module_from_config(spec: dict | None):
    """Rebuild a registered module from :func:`module_config` output."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ModelFileError(f"a module specification must be {{'class': name, 'config': {{...}}}}, "
                             f"got {short_repr(spec)}")
    name = spec.get("class")
    if not isinstance(name, str) or name not in _MODULES:
        raise ModelFileError(f"model file names an unknown module class {short_repr(name)}; known: {sorted(_MODULES)}")
    return _MODULES[name](**spec.get("config", {}))


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, config)`` paths for a model saved under ``path``.

    ``path`` may be the stem (``"runs/mdn"``) or either file of the pair.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):  # "", ".", "/", "..": a folder, not a model's name
        raise ValueError(f"the model path {str(path)!r} names no model; give its path stem, e.g. models/mdn")
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_model(path: str | Path, class_name: str, config: dict, tensors: dict[str, torch.Tensor],
                extra: dict | None = None) -> Path:
    """Write a model file pair; return the JSON path."""
    from safetensors.torch import save_file

    from .. import __version__

    weights_path, config_path = model_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    flat = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    save_file(flat, str(weights_path), metadata={"format": FORMAT, "class": class_name})
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "astrobayes_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "class": class_name,
        "config": config,
        "weights_file": weights_path.name,
        "weights_sha256": _sha256(weights_path),
    }
    if extra:
        header.update(extra)
    config_path.write_text(json.dumps(json_safe(header), indent=2, allow_nan=False) + "\n")
    return config_path


def read_json(path: str | Path, what: str = "an astrobayes model file", error: type = None):
    """Parse a JSON file with bounds: at most :data:`~astrobayes.core.limits.MAX_JSON_BYTES` and
    :data:`~astrobayes.core.limits.MAX_NESTING` levels of lists/objects, checked before parsing.

    Parameters
    ----------
    path : path
        The file (its existence is the caller's to check).
    what : str
        What the file should be, for messages ("an astrobayes model file", "a prior description").
    error : exception class, optional
        Raised for a file that is too large, too deep or not JSON (default :class:`ModelFileError`).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "deep.json")
    >>> _ = open(path, "w").write("[" * 100 + "]" * 100)
    >>> read_json(path)
    Traceback (most recent call last):
    ...
    astrobayes.core.serialization.ModelFileError: ... nests lists/objects 100 levels deep; the limit is 32 ...
    """
    error = ModelFileError if error is None else error
    path = Path(path)
    size = path.stat().st_size
    if size > limits.MAX_JSON_BYTES:
        raise error(f"{path} is not {what}: {size:,} bytes, above the {limits.MAX_JSON_BYTES:,}-byte limit for "
                    "JSON headers (astrobayes.core.limits.MAX_JSON_BYTES; real ones are a few kB)")
    data = path.read_bytes()
    depth = nesting_depth(data)
    if depth > limits.MAX_NESTING:
        raise error(f"{path} is not {what}: it nests lists/objects {depth} levels deep; the limit is "
                    f"{limits.MAX_NESTING} (astrobayes.core.limits.MAX_NESTING)")
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, integers of >4300 digits
        raise error(f"{path} is not {what} (not valid JSON: {str(err)[:200]})") from None


def read_model(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and verify a model file pair: ``(header, tensors)``.

    Raises
    ------
    FileNotFoundError
        When either file is missing.
    ModelFileError
        When the files are not an astrobayes model, were modified after
        saving, are truncated, or come from a newer format version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path, config_path = model_paths(path)
    for p in (config_path, weights_path):
        if not p.exists():
            raise FileNotFoundError(f"no astrobayes model at {path}: {p} does not exist")
        if not p.is_file():
            raise ModelFileError(f"{p} is not a file: an astrobayes model is a .json and a .safetensors file")
    header = read_json(config_path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{config_path} is not an astrobayes model file (no 'format': '{FORMAT}' entry)")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
        raise ModelFileError(
            f"{config_path} has model format version {short_repr(version)}; this astrobayes reads versions 1 to "
            f"{FORMAT_VERSION}" + (" — upgrade astrobayes" if newer else " (the file is damaged)")
        )
    name = header.get("class")
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ModelFileError(f"{config_path} names an unknown estimator class {short_repr(name)}; "
                             f"known: {sorted(_ESTIMATORS)}")
    for key, kind in (("config", dict), ("weights_sha256", str)):
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"{config_path} is damaged: its {key!r} entry must be a {kind.__name__}, "
                                 f"got {short_repr(header.get(key))}")
    try:  # a weights file too large for this machine is refused before it is read (even to hash it)
        check_parameter_count(weights_path.stat().st_size // 4, f"{weights_path} ({weights_path.stat().st_size:,} "
                              "bytes of float32 weights)", bytes_per_parameter=4, hint="it is no model this "
                              "machine can hold")
    except ValueError as err:
        raise ModelFileError(str(err)) from None
    if _sha256(weights_path) != header.get("weights_sha256"):
        raise ModelFileError(f"{weights_path} does not match the checksum recorded in {config_path.name}: "
                             "the weights were modified, truncated or belong to another model")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{weights_path} is not a readable safetensors file ({err})") from None
    return header, tensors


def load_as(cls: type, path: str | Path):
    """:func:`load`, refusing a file that holds anything but a ``cls`` (the ``Cls.load(path)`` of each estimator)."""
    model = load(path)
    if not isinstance(model, cls):
        raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
    return model


def load(path: str | Path):
    """Load any astrobayes estimator saved with ``save(path)``.

    Examples
    --------
    >>> import astrobayes, numpy as np, tempfile, os
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 1), np.random.rand(64, 1), epochs=2, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "reg")
    >>> reg.save(path)
    >>> type(astrobayes.load(path)).__name__
    'Regressor'
    """
    header, tensors = read_model(path)
    cls: Callable = estimator_class(header["class"])
    config_path = model_paths(path)[1]
    # The network the header describes must fit the weights stored beside it: a header asking for a far larger
    # one is refused before torch allocates it (building creates at most one tensor per stored one).
    stored = sum(int(t.numel()) for t in tensors.values())
    try:
        with network_size_guard(f"{config_path} ({header['class']})", limit=2 * stored + 10**6,
                                max_tensors=2 * len(tensors) + limits.MAX_TENSORS, bytes_per_parameter=4,
                                error=ModelFileError,
                                reason=f"the weights file holds only {stored:,} values in {len(tensors):,} tensors",
                                hint="the header does not describe these weights (damaged or altered)"):
            model = cls._from_state(header, tensors)
    except ModelFileError as err:
        if str(config_path) in str(err):
            raise
        raise ModelFileError(f"{config_path} could not be rebuilt as {header['class']}: {err}") from None
    except (LookupError, TypeError, RuntimeError, ValueError, AttributeError, ArithmeticError) as err:
        raise ModelFileError(f"{config_path} could not be rebuilt as {header['class']}: "
                             f"{type(err).__name__}: {str(err)[:300]}") from None
    # save() refuses to write over the files the model came from (astrobayes.core.paths.check_not_input)
    model._read_from = [str(p) for p in model_paths(path)]
    return model
