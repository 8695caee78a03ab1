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

import collections.abc
import copy
import dataclasses
import inspect
import json
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "Section", "section_options", "read_config", "parse_override", "resolve_config",
           "format_config", "config_json", "changed_settings"]

#: keyword arguments set by the command line (--seed, --device), never by a file
CONTROLLED = ("seed", "device", "progress")
#: training-loop options a ``training=True`` section accepts besides its function's own (checkpoints: --checkpoint)
_TRAINING_SKIP = CONTROLLED + ("distributed", "config", "checkpoint", "checkpoint_every", "resume")
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
        Options of the recipe itself: name → (default, help) or (default, help, type hint).
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


def section_hints(section: Section) -> dict:
    """Type hints of the section's keys, where known: the target's annotations, TrainingConfig's, the recipe's."""
    from astrobayes.estimators.training import TrainingConfig

    hints = {}
    if section.training:
        hints.update(typing.get_type_hints(TrainingConfig))
    if section.target is not None:
        target = section.target.__init__ if inspect.isclass(section.target) else section.target
        try:
            hints.update(typing.get_type_hints(target))
        except Exception:  # an annotation that does not resolve: fall back to the defaults' types
            pass
    hints.update({name: spec[2] for name, spec in section.own.items() if len(spec) > 2})
    return hints


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
    options.update({name: spec[0] for name, spec in section.own.items()})
    options.update(section.defaults)
    return options


def _short(value) -> str:
    """A value's repr cut to a readable length, for messages (a hostile file may hold megabytes).

    Imported on use: :mod:`astrobayes.core.limits` imports torch, which the command line's start-up avoids.
    """
    from astrobayes.core.limits import short_repr

    return short_repr(value)


def _depth(value) -> int:
    """How deeply tables and arrays nest in a parsed TOML value (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _parse_toml(text: str, source: str) -> dict:
    """``tomllib.loads`` with bounds: nesting (MAX_NESTING levels) and no raw parser errors."""
    from astrobayes.core.limits import MAX_NESTING

    try:
        tables = tomllib.loads(text)
    except RecursionError:  # tomllib recurses once per level of nested arrays / inline tables
        raise ConfigError(f"{source} nests arrays or tables too deeply to read; the limit is {MAX_NESTING} "
                          "levels") from None
    except (tomllib.TOMLDecodeError, ValueError) as err:  # ValueError: an integer of more than 4300 digits
        raise ConfigError(f"{source} is not valid TOML: {str(err)[:300]}") from None
    if _depth(tables) > MAX_NESTING:
        raise ConfigError(f"{source} nests arrays or tables {_depth(tables)} levels deep; the limit is "
                          f"{MAX_NESTING} (astrobayes.core.limits.MAX_NESTING)")
    return tables


def read_config(path) -> dict:
    """Read a TOML file; a ValueError names the file and the line of a syntax error.

    The file is read with bounds: at most :data:`~astrobayes.core.limits.MAX_TOML_BYTES` (the default
    configurations are about 2 kB) and :data:`~astrobayes.core.limits.MAX_NESTING` levels of arrays and tables.
    """
    from astrobayes.core.limits import MAX_TOML_BYTES

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the configuration file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_TOML_BYTES:
        raise ConfigError(f"{path} is {size:,} bytes, above the {MAX_TOML_BYTES:,}-byte limit for a configuration "
                          "(the defaults, --print-config, are about 2 kB): is it the right file?")
    try:
        text = path.read_bytes().decode("utf-8")  # TOML is UTF-8 whatever the locale
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return _parse_toml(text, str(path))


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
    except (tomllib.TOMLDecodeError, ValueError):  # not a TOML value (ValueError: an integer of >4300 digits)
        value = raw.strip()
    except RecursionError:
        raise ConfigError(f"--set {name.strip()}: the value nests arrays or tables too deeply to read") from None
    from astrobayes.core.limits import MAX_NESTING

    if _depth(value) > MAX_NESTING:
        raise ConfigError(f"--set {name.strip()}: the value nests arrays or tables {_depth(value)} levels deep; "
                          f"the limit is {MAX_NESTING}")
    return section, key.strip(), value


@dataclass(frozen=True)
class _QuantityHint:
    """The hint of an unannotated quantity option: a string with a unit convertible to ``unit``.

    ``number=True`` stands for an unannotated number default, which takes a number or a quantity
    string (``velocity_error = "50 km/s"``) and leaves the unit to the domain function.
    """

    unit: object = None
    example: str = '"50 km/s"'
    number: bool = False


def _hint_of(default):
    """A type hint for an unannotated option, from its default (None: anything; the function checks it)."""
    from astropy import units as u

    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return _QuantityHint(number=True)
    if isinstance(default, str):
        return str
    if isinstance(default, u.Quantity):
        return _QuantityHint(default.unit, f'"{_quantity_text(default)}"')
    if isinstance(default, (tuple, list)) and default:
        kinds = [_hint_of(v) for v in default]
        return tuple[kinds[0], ...] if all(k == kinds[0] for k in kinds) else tuple[tuple(kinds)]
    if isinstance(default, (tuple, list)):
        return tuple
    return None


def _describe(hint) -> str:
    """Words for a type hint, for messages."""
    if isinstance(hint, _QuantityHint):
        if hint.number:
            return f"a number or a quantity (a string, e.g. {hint.example})"
        return f"a quantity in {hint.unit.physical_type} units (a string, e.g. {hint.example})"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join('"none"' if a is type(None) else _describe(a) for a in args)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if origin in (tuple, list, collections.abc.Sequence) and args:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin in (dict, collections.abc.Mapping):
        return "a table" + (f" of {_describe(args[1]).removeprefix('an ').removeprefix('a ')}s" if args else "")
    return "a list" if hint in (tuple, list) else getattr(hint, "__name__", str(hint))


def _quantity(where: str, value, example: str):
    """A finite Quantity from a string such as "1.6 Mpc"."""
    from astropy import units as u

    try:
        quantity = u.Quantity(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a quantity with a unit, e.g. {example}, got {_short(value)}") from None
    if not quantity.isscalar:  # astropy reads "[1, 2] Mpc" as an array
        raise ConfigError(f"{where} must be a single quantity with a unit, e.g. {example}, got {_short(value)}")
    if not math.isfinite(float(quantity.value)):
        raise ConfigError(f"{where} must be finite, got {_short(value)}")
    return quantity


def _by_hint(where: str, hint, value, default=None):
    """Check ``value`` against a type hint; lists become tuples."""
    if isinstance(hint, _QuantityHint):
        if hint.number and not isinstance(value, str):
            return _by_hint(where, float, value)
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be {_describe(hint)} (a bare number has no unit), got {_short(value)}")
        quantity = _quantity(where, value, hint.example)
        if hint.unit is None:
            return quantity
        try:
            return quantity.to(hint.unit)
        except Exception:  # astropy's UnitConversionError
            raise ConfigError(f"{where} must be {_describe(hint)}, got {_short(value)}") from None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    bad = ConfigError(f"{where} must be {_describe(hint)}, got {_short(value)}")
    if origin in (Union, types.UnionType):
        for member in args:
            if member is type(None):
                continue
            try:
                return _by_hint(where, member, value, default)
            except ConfigError:
                pass
        raise bad
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        try:
            number = float(value)  # an integer beyond 1.8e308 overflows: not a usable number either
        except OverflowError:
            raise bad from None
        if not math.isfinite(number):
            raise bad
        return number
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if hint in (tuple, list) or origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, list):
            raise bad
        if not args:  # a bare ``tuple``: the default's elements give the type
            element_hint = _hint_of(default) if isinstance(default, (tuple, list)) and default else None
            return tuple(value) if element_hint is None else _by_hint(where, element_hint, value)
        if origin is tuple and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where} must be a list of {len(args)} values, got {_short(value)}")
            return tuple(_by_hint(f"{where}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
        return tuple(_by_hint(f"{where}[{i}]", args[0], v) for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise bad
        return {str(k): _by_hint(f"{where}.{k}", args[1], v) for k, v in value.items()} if args else value
    return value  # another type: the domain function checks it


def _check_value(where: str, hint, default, value):
    if isinstance(value, str) and value.strip().lower() == "none":
        optional = default is None or (typing.get_origin(hint) in (Union, types.UnionType)
                                       and type(None) in typing.get_args(hint))
        if optional:
            return None
        raise ConfigError(f"{where} cannot be none")
    hint = _hint_of(default) if hint is None else hint
    if hint is None:
        return tuple(value) if isinstance(value, list) else value
    return _by_hint(where, hint, value, default)


def _quantity_text(quantity) -> str:
    return f"{float(quantity.value)!r} {quantity.unit.to_string()}"


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
    config = copy.deepcopy(dict(config or {}))
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
            raise ConfigError(f"{name} must be a table [{name}] of options, got {_short(config[name])}")
    for section in sections:
        options, hints = section_options(section), section_hints(section)
        given = config.get(section.name, {})
        values = {}
        for key, value in given.items():
            where = f"[{section.name}] {key}"
            if key in CONTROLLED:
                how = f"with --{key}" if key != "progress" else "by whether the output is a terminal"
                raise ConfigError(f"{where}: the {key} is set on the command line ({how}), not in the file")
            if key not in options:
                raise ConfigError(f"{where} is not an option; [{section.name}] takes {', '.join(sorted(options))}")
            values[key] = _check_value(where, hints.get(key), options[key], value)
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
        return json.dumps(_quantity_text(value))
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
    lines.append("# line (--seed, --device); quantities are strings with a unit; unset options are commented out;")
    lines.append('# "none" unsets an optional value (e.g. patience = "none": no early stopping).')
    for section in sections:
        lines += ["", f"[{section.name}]", f"# {section.help}"]
        if section.target is not None:
            lines.append(f"# (keyword arguments of {_target_name(section.target)}"
                         + (", and the training loop's" if section.training else "") + ")")
        helps = {name: spec[1] for name, spec in section.own.items()}
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
            return _quantity_text(value)
        if isinstance(value, (tuple, list)):
            return [safe(v) for v in value]
        if isinstance(value, dict):
            return {str(k): safe(v) for k, v in value.items()}
        return value

    return {name: {key: safe(v) for key, v in table.items()} for name, table in resolved.items()}


def changed_settings(sections: list[Section], resolved: dict) -> list[str]:
    """``[section] key = value`` for every resolved value that differs from its default (quantities in their units)."""
    lines = []
    for section in sections:
        defaults, inherited = section_options(section), training_options(section)
        for key, value in resolved.get(section.name, {}).items():
            default = defaults.get(key)
            if value is None and default is None:
                continue
            text = "none" if value is None else _toml_value(value)
            if default is _UNSET or default is None or key in inherited \
                    or text != _toml_value(default):
                lines.append(f"[{section.name}] {key} = {text}")
    return lines
