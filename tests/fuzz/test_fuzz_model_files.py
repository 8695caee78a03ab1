"""Fuzz the model-file reader (``astrobayes.load`` / ``read_model``) and the prior sidecar of a posterior.

Seeds are small models of several classes (a regressor, a mixture density
network with an MLP embedding, a flow, a classifier, a deep ensemble) saved
by the package itself. They are damaged by truncation and byte flips of
either file (also with the checksum rewritten to match, as a hostile author
would), by replacing any one entry of a real JSON header with a value of the
wrong type, a negative, huge, tiny or unicode one, by deleting entries, and
by deep nesting. ``load`` may accept the damage (the model must then still
answer, or refuse with a documented error) or refuse it with a documented
exception whose message names the file.
"""
import hashlib
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import astrobayes
from astrobayes.core.serialization import ModelFileError, model_paths

DOCUMENTED = (ValueError, TypeError, FileNotFoundError, ModelFileError)
NASTY_VALUES = [None, True, False, 0, -1, -(10**6), 10**30, 2**63, 1e308, -1e308, 1e-320, float("nan"), float("inf"),
                -float("inf"), "", "64", "nan", "Ω", "\u200b", "𝒢" * 50, "x" * 10_000, [], [0], [-1], [1e400],
                ["a"], [[[]]], {}, {"class": "Regressor"}, {"a": {"b": {}}}, list(range(2000))]


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err!r}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message[:500]}"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """name → (header dict, weights bytes, x for a quick prediction)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 2)).astype(np.float32)
    y = np.column_stack([x.sum(1), x[:, 0] - x[:, 1]]).astype(np.float32)
    models = {
        "regressor": (astrobayes.Regressor(hidden=(4,)), y),
        "mdn": (astrobayes.MixtureDensityNetwork(n_components=2, hidden=(4,),
                                                 embedding=astrobayes.MLPEmbedding(2, output_dim=3, hidden=(4,))), y),
        "flow": (astrobayes.ConditionalFlow("realnvp", n_transforms=2, hidden_features=4), y),
        "classifier": (astrobayes.Classifier(hidden=(4,)), (y[:, 0] > 0).astype(int)),
        "ensemble": (astrobayes.DeepEnsemble(astrobayes.Regressor(hidden=(3,)), n_members=2), y),
    }
    folder = tmp_path_factory.mktemp("fuzz_models")
    out = {}
    for name, (model, target) in models.items():
        model.fit(x, target, epochs=1, progress=False, seed=0)
        model.save(folder / name)
        weights, config = model_paths(folder / name)
        out[name] = (json.loads(config.read_text()), weights.read_bytes(), x)
    return out


def _write(folder: Path, header, weights: bytes, header_text: str | bytes | None = None) -> Path:
    stem = folder / "model"
    (folder / "model.safetensors").write_bytes(weights)
    text = json.dumps(header, allow_nan=True) if header_text is None else header_text
    (folder / "model.json").write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    return stem


def _load_and_use(stem: Path, x) -> None:
    """Load; a model that loads must answer on x, or refuse with a documented error naming an argument."""
    try:
        model = astrobayes.load(stem)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, str(stem))
        return
    try:
        model.predict(x[:3])
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "x", "model", "trained")


def _paths(value, prefix=()):
    """Every path (tuple of keys/indices) to an entry of a parsed JSON header."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value[:4]):
            yield from _paths(child, prefix + (index,))


@st.composite
def damaged_bytes(draw, data: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "empty", "append"]))
    if how == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "empty":
        return b""
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


# ---------------------------------------------------------------------- damaged files
@given(data=st.data(), name=st.sampled_from(["regressor", "mdn", "flow", "classifier", "ensemble"]),
       target=st.sampled_from(["json", "safetensors", "safetensors+checksum"]))
def test_fuzz_damaged_model_files(seeds, data, name, target):
    """Truncated or flipped bytes in either file; with '+checksum' the header is rewritten to match the damage."""
    header, weights, x = seeds[name]
    header_text = json.dumps(header)
    with tempfile.TemporaryDirectory() as tmp:
        if target == "json":
            stem = _write(Path(tmp), header, weights, data.draw(damaged_bytes(header_text.encode())))
        else:
            damaged = data.draw(damaged_bytes(weights))
            if target == "safetensors+checksum":
                header = dict(header, weights_sha256=hashlib.sha256(damaged).hexdigest())
            stem = _write(Path(tmp), header, damaged)
        _load_and_use(stem, x)


@given(data=st.data(), name=st.sampled_from(["regressor", "mdn", "flow", "classifier", "ensemble"]),
       action=st.sampled_from(["replace", "replace", "replace", "delete", "add"]),
       value=st.sampled_from(NASTY_VALUES) | st.text(max_size=20) | st.integers() | st.floats())
def test_fuzz_hostile_header_entries(seeds, data, name, action, value):
    """Any one entry of a real header replaced by a value of the wrong type, deleted, or given a sibling."""
    header, weights, x = seeds[name]
    header = json.loads(json.dumps(header))  # a deep copy
    path = data.draw(st.sampled_from([p for p in _paths(header) if p]))
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[path[-1]] = value
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent["unexpected_κ"] = value
    else:
        parent.append(value)
    with tempfile.TemporaryDirectory() as tmp:
        _load_and_use(_write(Path(tmp), header, weights), x)


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: each example re-encodes a whole header
@given(depth=st.integers(33, 20_000), where=st.sampled_from(["top", "config", "history"]),
       bracket=st.sampled_from(["[", "{\"k\": "]))
def test_fuzz_deep_nesting(seeds, depth, where, bracket):
    """Deeply nested JSON anywhere: a ModelFileError naming the nesting limit, never a RecursionError."""
    header, weights, _ = seeds["regressor"]
    closing = "]" if bracket == "[" else "}"
    deep = bracket * depth + "0" + closing * depth
    if where == "top":
        text = deep
    else:
        text = json.dumps(dict(header, **{where: "@DEEP@"})).replace('"@DEEP@"', deep)
    with tempfile.TemporaryDirectory() as tmp:
        stem = _write(Path(tmp), header, weights, text)
        with pytest.raises(ModelFileError, match="nests lists/objects .* levels deep") as caught:
            astrobayes.load(stem)
        assert str(stem) in str(caught.value)


@given(number=st.sampled_from(["1e999", "-1e999", "9" * 5000, "-" + "9" * 5000, "1" + "0" * 400, "NaN",
                               "Infinity", "1e-999", "0.0000000000000000000000001"]),
       key=st.sampled_from([("format_version",), ("config", "hidden", 0), ("dims", "y_dim"), ("dims", "x_shape", 0),
                            ("config", "dropout"), ("history", "epochs")]))
def test_fuzz_huge_numbers(seeds, number, key):
    """Numbers JSON can spell but Python cannot hold (5000 digits), or that overflow float and int conversions."""
    header, weights, x = seeds["regressor"]
    header = json.loads(json.dumps(header))
    parent = header
    for part in key[:-1]:
        parent = parent[part]
    parent[key[-1]] = "@NUMBER@"
    text = json.dumps(header).replace('"@NUMBER@"', number)
    with tempfile.TemporaryDirectory() as tmp:
        _load_and_use(_write(Path(tmp), header, weights, text), x)


# ---------------------------------------------------------------------- the prior sidecar of a posterior
@pytest.fixture(scope="module")
def posterior_files(tmp_path_factory):
    from astrobayes.inference import NPE, BoxUniform

    prior = BoxUniform([0.0, 0.0], [1.0, 2.0], names=["a", "b"])
    npe = NPE(prior, density="mdn", n_components=2, hidden=(4,))
    theta = prior.sample((64,), seed=0).numpy()
    posterior = npe.append_simulations(theta, theta + 0.1).train(epochs=1, progress=False, seed=0)
    folder = tmp_path_factory.mktemp("fuzz_posterior")
    posterior.save(folder / "post")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@given(data=st.data(), value=st.sampled_from(NASTY_VALUES), action=st.sampled_from(["replace", "delete", "bytes"]))
def test_fuzz_prior_sidecar(posterior_files, data, value, action):
    """``Posterior.load`` with a damaged ``.prior.json``: refused naming the sidecar, or a working posterior."""
    from astrobayes.inference import Posterior

    sidecar = json.loads(posterior_files["post.prior.json"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in posterior_files.items():
            (Path(tmp) / name).write_bytes(content)
        target = Path(tmp) / "post.prior.json"
        if action == "bytes":
            target.write_bytes(data.draw(damaged_bytes(posterior_files["post.prior.json"])))
        else:
            path = data.draw(st.sampled_from([p for p in _paths(sidecar) if p]))
            parent = sidecar
            for key in path[:-1]:
                parent = parent[key]
            if action == "replace":
                parent[path[-1]] = value
            else:
                del parent[path[-1]]
            target.write_text(json.dumps(sidecar, allow_nan=True))
        try:
            posterior = Posterior.load(Path(tmp) / "post")
        except Exception as err:  # noqa: BLE001
            check_refusal(err, str(target), str(Path(tmp) / "post"))
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                draws = posterior.sample(2, np.array([[0.5, 1.0]], dtype=np.float32), seed=0)
            # a prior too narrow for the network leaves draws unaccepted: NaN, and said so
            assert np.isfinite(draws).all() or any("NaN" in str(w.message) for w in caught)
