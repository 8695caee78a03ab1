"""Fuzz the TOML configurations of ``astrobayes train DOMAIN``: the file reader and the checks before any work.

Seeds are the five default configurations (``--print-config``). Every key a
section accepts (also those the defaults leave commented out) is given values
of the wrong type: negative, huge and tiny numbers, inf and NaN, unicode and
empty strings, quantities in the wrong unit, arrays, inline tables, TOML
dates. The files themselves are truncated and byte-flipped. Reading,
resolving and checking (everything ``train_domain`` does before its first
simulation) must accept the value or refuse it with a ConfigError (a
ValueError) naming the file, or the section and the key.
"""
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from astrobayes.core.serialization import ModelFileError
from astrobayes.recipes import DOMAINS, ConfigError, default_config, parse_override, read_config, recipe, resolve_config
from astrobayes.recipes.config import section_options, tomllib

DOCUMENTED = (ValueError, TypeError, FileNotFoundError, ModelFileError)
#: TOML spellings of hostile values (each must parse as ``v = LITERAL``)
NASTY_TOML = ["-1", "0", "1", "-9223372036854775808", "9223372036854775807", "1e400", "-1e400", "inf", "-inf", "nan",
              "1e-320", "0.5", "2.5", "true", "false", '""', '" "', '"none"', '"Ω"', '"\\u0000"', '"𝒢𝒢𝒢"',
              '"nan Mpc"', '"1e400 km/s"', '"5000 deg2"', '"50 km/s"', '"1.6 Mpc"', '"-1 Mpc"', '"2 kg"', '"Mpc"',
              '"[1, 2] Mpc"', "[]", "[1]", "[0, 0]", "[-1, -1]", "[1e400]", "[10000000, 10000000]", '["a", "b"]',
              "[[1]]", "[true]", "{}", "{a = 1}", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27",
              "0x7fffffffffffffff", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]"]
DEFAULTS = {domain: default_config(domain) for domain in DOMAINS}


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err!r}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message[:500]}"


def _check_before_work(domain: str, tables: dict, overrides=()):
    """What ``train_domain`` does before any work: resolve the tables and run the recipe's own checks."""
    rec = recipe(domain)
    resolved = resolve_config(rec.sections, tables, overrides)
    if rec.check is not None:
        rec.check(resolved)
    return resolved


def _keys(domain: str) -> list:
    return [(section.name, key) for section in recipe(domain).sections for key in section_options(section)]


def _toml_literal():
    return st.sampled_from(NASTY_TOML) | st.integers().map(str) | st.floats(allow_nan=False).map(repr).filter(
        lambda text: "inf" not in text) | st.text(max_size=12).map(lambda t: '"' + t.encode(
            "unicode_escape").decode("ascii").replace('"', '\\"').replace("\\x", "\\u00") + '"')


@given(data=st.data(), domain=st.sampled_from(DOMAINS))
def test_fuzz_config_values(data, domain):
    """One key of one section set to a hostile value, in a file next to the defaults."""
    section, key = data.draw(st.sampled_from(_keys(domain)))
    literal = data.draw(_toml_literal())
    try:
        value = tomllib.loads(f"v = {literal}")["v"]
    except (tomllib.TOMLDecodeError, ValueError):  # a text the strategy escaped badly: the string itself
        value = literal
    tables = tomllib.loads(DEFAULTS[domain])
    tables.setdefault(section, {})[key] = value
    try:
        _check_before_work(domain, tables)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, f"[{section}]", key)


@given(data=st.data(), domain=st.sampled_from(DOMAINS))
def test_fuzz_config_set_option(data, domain):
    """``--set SECTION.KEY=VALUE`` with a hostile value (parsed as TOML, else taken as text)."""
    section, key = data.draw(st.sampled_from(_keys(domain)))
    raw = data.draw(_toml_literal() | st.text(max_size=30))
    try:
        override = parse_override(f"{section}.{key}={raw}")
        _check_before_work(domain, {}, [override])
    except Exception as err:  # noqa: BLE001
        check_refusal(err, f"[{section}]", key, "--set")


@st.composite
def damaged_config(draw, domain: str) -> bytes:
    data = DEFAULTS[domain].encode()
    for how in draw(st.lists(st.sampled_from(["truncate", "flip", "insert", "duplicate"]), min_size=1, max_size=3)):
        if how == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif how == "flip" and data:
            raw = bytearray(data)
            for _ in range(draw(st.integers(1, 6))):
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
            data = bytes(raw)
        elif how == "insert":
            k = draw(st.integers(0, len(data)))
            data = data[:k] + draw(st.sampled_from([b"[", b"]", b"=", b'"', b"\n[x]\n", b"\xff", b"\x00", b"[[a]]\n",
                                                    "é".encode(), b"#", b"\nz = 1\n"])) + data[k:]
        else:
            lines = data.split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[:k + 1] + lines[k:])
    return data


@given(data=st.data(), domain=st.sampled_from(DOMAINS), name=st.sampled_from(["c.toml", "ünï cødé.toml"]))
def test_fuzz_config_file_bytes(data, domain, name):
    """A damaged configuration file: refused naming the file (syntax) or the section and key (values)."""
    content = data.draw(damaged_config(domain))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            tables = read_config(path)
        except Exception as err:  # noqa: BLE001
            check_refusal(err, str(path))
            return
    try:
        _check_before_work(domain, tables)
    except Exception as err:  # noqa: BLE001
        assert isinstance(err, ConfigError), f"undocumented {type(err).__name__} escaped: {err!r}"
        assert "[" in str(err) or "section" in str(err), str(err)


@given(domain=st.sampled_from(DOMAINS), depth=st.integers(1, 3000), bracket=st.sampled_from(["[", "{a = "]),
       digits=st.integers(1, 6000), where=st.sampled_from(["file", "set"]))
def test_fuzz_config_nesting_and_long_numbers(domain, depth, bracket, digits, where):
    """Deeply nested arrays / inline tables and integers of thousands of digits, in a file or in --set."""
    section, key = _keys(domain)[depth % len(_keys(domain))]
    closing = "]" if bracket == "[" else "}"
    literal = bracket * depth + "9" * digits + closing * depth
    if where == "set":
        try:
            _check_before_work(domain, {}, [parse_override(f"{section}.{key}={literal}")])
        except Exception as err:  # noqa: BLE001
            check_refusal(err, f"[{section}]", key, "--set")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deep.toml"
        path.write_text(f"[{section}]\n{key} = {literal}\n")
        try:
            _check_before_work(domain, read_config(path))
        except Exception as err:  # noqa: BLE001
            check_refusal(err, str(path), f"[{section}]")
