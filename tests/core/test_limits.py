"""Bounds on what a file, a configuration or constructor options may ask for (issue 20).

Every refusal here must come before torch allocates the absurd network: a
build that allocated 10¹² weights would fail with MemoryError (not the
ValueError expected) or not end. How fast a refusal is belongs to benchmarks.
"""

import numpy as np
import pytest
import torch

from astrobayes.core import limits
from astrobayes.core.limits import (check_parameter_count, nesting_depth, network_size_guard, parameter_limit,
                                    short_repr)
from astrobayes.estimators import CNNEmbedding, ConditionalFlow, MixtureDensityNetwork, Regressor, RNNEmbedding

X = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
Y = np.column_stack([X.sum(1), X[:, 0]]).astype(np.float32)


def _refused(make, match: str):
    # No wall-clock bound here (speed lives in benchmarks): a build that were not refused before allocating
    # would ask for terabytes or build 10^18 layers, and this test would fail with MemoryError or never end.
    with pytest.raises(ValueError, match=match):
        make()


def test_constructor_options_asking_for_terabytes_are_refused_at_construction():
    _refused(lambda: Regressor(hidden=(10**6, 10**6)),
                     r"layer widths 1 → \(1000000, 1000000\) → 1 gives a network of 1,000,004,000,001 parameters "
                     r"\(about 16 TB to train\); the limit is 1,000,000,000 parameters")
    _refused(lambda: RNNEmbedding(3, hidden_size=10**6),
                     r"RNNEmbedding\(3, hidden_size=1000000\) needs more than")
    _refused(lambda: CNNEmbedding(1, channels=(10**5, 10**5)), "CNNEmbedding")


def test_layer_counts_in_the_billions_are_refused_by_the_tensor_limit():
    # each layer is small: the parameter limit alone would let this build layer after layer for hours
    _refused(lambda: RNNEmbedding(3, hidden_size=4, num_layers=10**18),
                     "more than 5,000 weight tensors")
    _refused(lambda: ConditionalFlow("realnvp", n_transforms=10**18).fit(X, Y, epochs=1,
                                                                                              progress=False),
                     "more than 5,000 weight tensors")


@pytest.mark.parametrize("make", [
    lambda: ConditionalFlow("nsf", hidden_features=10**6),  # normflows layers: only the guard sees them
    lambda: MixtureDensityNetwork(n_components=10**9, hidden=(8,)),  # the output layer's width
])
def test_fit_refuses_a_network_too_large_before_building_it(make):
    estimator = make()
    _refused(lambda: estimator.fit(X, Y, epochs=1, progress=False), "parameters")
    assert estimator.network is None


def test_the_limit_follows_this_machines_memory(monkeypatch):
    monkeypatch.setattr(limits, "memory_bytes", lambda: 16 * 10**6)  # a 16 MB machine: 10⁶ trainable parameters
    assert parameter_limit() == 10**6 and parameter_limit(4) == 4 * 10**6
    with pytest.raises(ValueError, match=r"limit here is 1,000,000 parameters \(16 bytes each in this machine's "
                                         r"16 MB of memory\)"):
        check_parameter_count(2 * 10**6, "a network")
    check_parameter_count(10**6, "a network")
    monkeypatch.setattr(limits, "memory_bytes", lambda: None)  # unknown: the documented limit
    assert parameter_limit() == limits.MAX_PARAMETERS


def test_guard_counts_requests_and_refuses_the_one_that_passes_the_limit():
    with network_size_guard("a test", limit=1000) as guard:
        torch.nn.Linear(10, 10)  # 110 elements
        torch.zeros(5, 6)  # 30
    assert (guard.total, guard.tensors) == (140, 3)
    with pytest.raises(ValueError, match="a test needs more than 1,010 parameters"):
        with network_size_guard("a test", limit=1000):
            torch.nn.Linear(10, 10)
            torch.empty((30, 30))
    # the guard is gone after its block: no lasting cost, no false refusals
    assert torch.empty(2000, 2000).numel() == 4 * 10**6


def test_nesting_depth_skips_strings_and_escapes():
    assert nesting_depth('{"a": [1, {"b": [[]]}]}') == 5
    assert nesting_depth('["[[[", "\\"[[", {"k]": "}}"}]') == 2
    assert nesting_depth(b"") == 0 and nesting_depth("1") == 0
    assert nesting_depth("[" * 10**5) == 10**5


def test_short_repr_bounds_messages_about_hostile_values():
    assert len(short_repr("x" * 10**6)) < 80
    assert len(short_repr(list(range(10**5)))) < 80
    nested = []
    for _ in range(10**4):
        nested = [nested]
    assert short_repr(nested) == "[[[[[...]]]]]"  # four levels shown, however deep
