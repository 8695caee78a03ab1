"""Fuzzing the training-checkpoint reader: damaged or hand-edited checkpoints, resumed by ``fit_module``.

A resume either continues training or raises one of the documented errors
(ModelFileError, FileNotFoundError, a ValueError) naming the checkpoint file;
never a raw torch, numpy or JSON traceback.
"""
import json
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from astrobayes.core import ModelFileError
from astrobayes.estimators import TrainingConfig, TrainingInterrupted, fit_module

_g = torch.Generator().manual_seed(0)
X = torch.randn(40, 2, generator=_g)
Y = X.sum(1, keepdim=True)


def _fit(checkpoint, resume, interrupt_at=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.1), nn.Linear(4, 1))
    calls = [0]

    def loss(xb, yb):
        calls[0] += 1
        if calls[0] == interrupt_at:
            signal.raise_signal(signal.SIGTERM)
        return ((model(xb) - yb) ** 2).mean()

    config = TrainingConfig(epochs=4, batch_size=16, seed=0, progress=False, checkpoint=checkpoint, resume=resume)
    return fit_module(model, loss, (X, Y), config)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint after epoch 2 of 4 (36 training rows: 3 batches an epoch)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    with pytest.raises(TrainingInterrupted):
        _fit(folder / "run", False, interrupt_at=5)
    return folder


def _paths(value, path=()):
    """Every place in a JSON document, as a key path."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, path + (index,))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)

mutations = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(["json", "weights"]), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.sampled_from(["json", "weights"]), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("replace"), st.integers(0, 10**6), json_values),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),  # two values trade places
)


def _mutate(folder: Path, mutation) -> None:
    json_path = folder / "run.json"
    header = json.loads(json_path.read_text())
    weights_path = folder / header["weights_file"]
    kind = mutation[0]
    if kind in ("truncate", "flip"):
        path = json_path if mutation[1] == "json" else weights_path
        data = bytearray(path.read_bytes())
        position = min(int(mutation[2] * len(data)), len(data) - 1)
        if kind == "truncate":
            del data[position:]
        else:
            data[position] ^= mutation[3]
        path.write_bytes(bytes(data))
        return
    places = [p for p in _paths(header) if p]
    place = places[mutation[1] % len(places)]
    parent = header
    for key in place[:-1]:
        parent = parent[key]
    if kind == "replace":
        parent[place[-1]] = mutation[2]
    elif kind == "delete":
        del parent[place[-1]]
    else:
        other = places[mutation[2] % len(places)]
        if other[:len(place)] == place or place[:len(other)] == other:
            return  # one inside the other
        other_parent = header
        for key in other[:-1]:
            other_parent = other_parent[key]
        parent[place[-1]], other_parent[other[-1]] = other_parent[other[-1]], parent[place[-1]]
    json_path.write_text(json.dumps(header))


@given(mutation=mutations)
def test_a_damaged_checkpoint_resumes_or_is_refused_by_name(saved, mutation):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for item in saved.iterdir():
            shutil.copy(item, folder / item.name)
        _mutate(folder, mutation)
        try:
            history = _fit(folder / "run", True)
        except (ModelFileError, FileNotFoundError, ValueError) as err:
            assert "run.json" in str(err) or "run.e0" in str(err), str(err)
        else:
            assert history.epochs == 4
