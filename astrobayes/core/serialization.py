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
import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import torch

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ModelFileError", "register_estimator", "register_module", "estimator_class",
    "json_safe",
    "module_from_config", "model_paths", "write_model", "read_model", "load",
]

FORMAT = "astrobayes-model"
FORMAT_VERSION = 1

_ESTIMATORS: dict[str, type] = {}
_MODULES: dict[str, type] = {}


class ModelFileError(ValueError):
    """A file that is not a readable astrobayes model."""


def register_estimator(cls: type) -> type:
    """Class decorator: make ``cls`` loadable by :func:`load`."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def estimator_class(name: str) -> type:
    """The registered estimator class called ``name`` (ModelFileError if none)."""
    if name not in _ESTIMATORS:
        raise ModelFileError(f"unknown estimator class {name!r}; known: {sorted(_ESTIMATORS)}")
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
    keyword arguments.
    """
    _MODULES[cls.__name__] = cls
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
    name = spec.get("class")
    if name not in _MODULES:
        raise ModelFileError(f"model file names an unknown module class {name!r}; known: {sorted(_MODULES)}")
    return _MODULES[name](**spec.get("config", {}))


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, config)`` paths for a model saved under ``path``.

    ``path`` may be the stem (``"runs/mdn"``) or either file of the pair.
    """
    path = Path(path)
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
    try:
        header = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{config_path} is not an astrobayes model file (not valid JSON: {err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{config_path} is not an astrobayes model file (no 'format': '{FORMAT}' entry)")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has model format version {version!r}; this astrobayes reads versions up to "
            f"{FORMAT_VERSION} — upgrade astrobayes"
        )
    if header.get("class") not in _ESTIMATORS:
        raise ModelFileError(f"{config_path} names an unknown estimator class {header.get('class')!r}; "
                             f"known: {sorted(_ESTIMATORS)}")
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
    try:
        return cls._from_state(header, tensors)
    except ModelFileError:
        raise
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ModelFileError(f"{model_paths(path)[1]} could not be rebuilt as {header['class']}: {err}") from None
