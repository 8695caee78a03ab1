"""Shared pytest set-up: GPU tests skip with a reason where no GPU is present."""
import os

import pytest
import torch

# Two xdist workers on a 2-core machine: one torch thread each avoids
# oversubscription (which makes small-model training several times slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; torch sees none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
