"""Configuration files of ``astrobayes train``: sections of keyword arguments, read from TOML and checked.

A recipe's configuration is a set of TOML tables (*sections*). Each section
lists the keyword arguments of one domain function (``[simulate]`` →
:func:`~astrobayes.clusters.simulate_clusters`, ``[train]`` →
:func:`~astrobayes.clusters.train_mass_model`, ...) plus options of the
recipe itself; the allowed keys, their defaults and their types come from the
function signatures, so a file can only say what the library can do.
Quantities are written as strings with a unit (``area = "5000 deg2"``).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "Section", "section_options", "read_config", "parse_override", "resolve_config",
           "format_config", "config_json"]

#: keyword arguments set by the command line (--seed, --device), never by a file
CONTROLLED = ("seed", "device", "progress")
#: training-loop options a ``training=True`` section accepts besides its function's own
_TRAINING_SKIP = CONTROLLED + ("distributed", "config")
#: type names a configurable annotation may mention (others are objects a TOML file cannot hold)
_PLAIN_TYPES = {"int", "float", "str", "bool", "None", "tuple", "list", "dict", "Sequence", "Mapping"}
_UNSET = object()


class ConfigError(ValueError):
    """A configuration that cannot be run: unknown section or key, wrong type, invalid TOML."""


@dataclass(frozen=True)
class Section:
    """One table of a recipe's configuration.

    Parameters
    ----------
    name : str
        The TOML table name.
    help : str
        One line for ``--print-config`` and ``--help``.
    target : callable, optional
        The function whose keyword arguments the section holds.
    defaults : dict
        The recipe's defaults, overriding the target's.
    own : dict
        Options of the recipe itself: name → (default, help).
    training : bool
        Also accept the training-loop options of
        :class:`~astrobayes.estimators.TrainingConfig` (epochs, batch_size, ...).
    skip : tuple of str
        Target arguments a file may not set (data, objects).
    """

    name: str
    help: str
    target: Callable | None = None
    defaults: dict = field(default_factory=dict)
    own: dict = field(default_factory=dict)
    training: bool = False
    skip: tuple = ()


def _configurable(parameter: inspect.Parameter) -> bool:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        # unannotated: plain defaults only (None could stand for an object: not from a file)
        return parameter.default is not inspect.Parameter.empty and parameter.default is not None
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", str(annotation)))
    return names <= _PLAIN_TYPES


def training_options(section: Section) -> set:
    """The training-loop keys of a section left to its function when a file does not set them."""
    from astrobayes.estimators.training import TrainingConfig

    if not section.training:
        return set()
    names = {f.name for f in dataclasses.fields(TrainingConfig)} - set(_TRAINING_SKIP)
    return names - set(section.defaults) - set(section.own) - set(_target_options(section))


def _target_options(section: Section) -> dict:
    options = {}
    if section.target is not None:
        for name, parameter in inspect.signature(section.target).parameters.items():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            if name in CONTROLLED or name in section.skip or not _configurable(parameter):
                continue
            options[name] = _UNSET if parameter.default is inspect.Parameter.empty else parameter.default
    return options


def section_options(section: Section) -> dict:
    """Every key the section accepts → its default (``_UNSET`` where it has none; None where it is optional).

    Training-loop keys (``training=True``) carry the :class:`~astrobayes.estimators.TrainingConfig`
    default, which fixes their type; unset, they are not passed (see :func:`training_options`).
    """
    from astrobayes.estimators.training import TrainingConfig

    options = _target_options(section)
    if section.training:
        for f in dataclasses.fields(TrainingConfig):
            if f.name not in _TRAINING_SKIP:
                options.setdefault(f.name, f.default)
    options.update({name: default for name, (default, _) in section.own.items()})
    options.update(section.defaults)
    return options


def read_config(path) -> dict:
    """Read a TOML file; a ValueError names the file and the line of a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the configuration file {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None


def parse_override(text: str) -> tuple[str, str, object]:
    """``section.key=value`` → (section, key, value); the value is read as TOML, else taken as a string.

    Examples
    --------
    >>> parse_override("train.epochs=5")
    ('train', 'epochs', 5)
    >>> parse_override("survey.area=2000 deg2")
    ('survey', 'area', '2000 deg2')
    """
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set takes SECTION.KEY=VALUE (e.g. train.epochs=5), got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key.strip(), value


def _kind(default) -> str:
    from astropy import units as u

    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, (tuple, list)):
        return "a list"
    if isinstance(default, u.Quantity):
        return f'a quantity in {default.unit.physical_type} units (e.g. "{default}")'
    return "a value"


def _convert(where: str, default, value):
    """Check ``value`` against the type of ``default`` and convert it (lists → tuples, strings → Quantity)."""
    from astropy import units as u

    bad = ConfigError(f"{where} must be {_kind(default)}, got {value!r}")
    if default is None or default is _UNSET:
        return tuple(value) if isinstance(value, list) else value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(default, (tuple, list)):
        if not isinstance(value, list):
            raise bad
        return type(default)(value)
    if isinstance(default, u.Quantity):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad
        try:
            quantity = u.Quantity(value) if isinstance(value, str) else value * default.unit
            return quantity.to(default.unit)
        except (TypeError, ValueError, u.UnitsError):
            raise bad from None
    return value


def resolve_config(sections: list[Section], config: dict | None = None, overrides=()) -> dict:
    """Merge defaults, a file's tables and ``--set`` overrides; check every key and value.

    Raises
    ------
    ValueError
        For an unknown section or key (the message lists the valid ones), a
        value of the wrong type, a key set by the command line (seed, device),
        or a required key left unset.
    """
    by_name = {s.name: s for s in sections}
    config = dict(config or {})
    for section, key, value in overrides:
        table = config.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] is a value in the file, not a table")
        table[key] = value
    resolved = {}
    for name in config:
        if name not in by_name:
            raise ConfigError(f"unknown section [{name}]; the sections are {', '.join(by_name)}")
        if not isinstance(config[name], dict):
            raise ConfigError(f"{name} must be a table [{name}] of options, got {config[name]!r}")
    for section in sections:
        options = section_options(section)
        given = config.get(section.name, {})
        values = {}
        for key, value in given.items():
            where = f"[{section.name}] {key}"
            if key in CONTROLLED:
                raise ConfigError(f"{where}: the {key} is set on the command line (--{key}), not in the file")
            if key not in options:
                raise ConfigError(f"{where} is not an option; [{section.name}] takes {', '.join(sorted(options))}")
            values[key] = _convert(where, options[key], value)
        inherited = training_options(section)
        for key, default in options.items():
            if key not in values and key not in inherited:
                if default is _UNSET:
                    raise ConfigError(f"[{section.name}] {key} is required")
                values[key] = default
        resolved[section.name] = values
    return resolved


def _toml_value(value) -> str:
    from astropy import units as u

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, u.Quantity):
        return json.dumps(f"{value.value:g} {value.unit.to_string()}")
    if isinstance(value, float):
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else "nan" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")


def _target_name(target) -> str:
    """``astrobayes.clusters.simulate_clusters`` rather than the defining module, where the package exports it."""
    import importlib

    package = target.__module__.rpartition(".")[0]
    if package and getattr(importlib.import_module(package), target.__qualname__, None) is target:
        return f"{package}.{target.__qualname__}"
    return f"{target.__module__}.{target.__qualname__}"


def format_config(sections: list[Section], title: str) -> str:
    """The default configuration as commented TOML (what ``--print-config`` writes)."""
    lines = [f"# {line}" if line else "#" for line in title.splitlines()]
    lines.append("# Every key is optional: a file sets only what it changes. Seed and device come from the command")
    lines.append("# line (--seed, --device); quantities are strings with a unit; unset options are commented out.")
    for section in sections:
        lines += ["", f"[{section.name}]", f"# {section.help}"]
        if section.target is not None:
            lines.append(f"# (keyword arguments of {_target_name(section.target)}"
                         + (", and the training loop's" if section.training else "") + ")")
        helps = {name: text for name, (_, text) in section.own.items()}
        inherited = training_options(section)
        for key, default in section_options(section).items():
            comment = f"  # {helps[key]}" if key in helps else ""
            if key in inherited:
                lines.append(f"# {key} = {_toml_value(default)}  # training loop; unset: the function's default")
            elif default is None or default is _UNSET:
                lines.append(f"# {key} = ...{comment}")
            else:
                lines.append(f"{key} = {_toml_value(default)}{comment}")
    return "\n".join(lines) + "\n"


def config_json(resolved: dict) -> dict:
    """The resolved configuration in JSON-safe form (quantities as strings), for reports."""
    from astropy import units as u

    def safe(value):
        if isinstance(value, u.Quantity):
            return f"{value.value:g} {value.unit.to_string()}"
        if isinstance(value, (tuple, list)):
            return [safe(v) for v in value]
        if isinstance(value, dict):
            return {str(k): safe(v) for k, v in value.items()}
        return value

    return {name: {key: safe(v) for key, v in table.items()} for name, table in resolved.items()}
