"""Shared pytest set-up: GPU tests skip with a reason where no GPU is present; under xdist the longest tests
start first."""
import os

import pytest
import torch

# Two xdist workers on a 2-core machine: one torch thread each avoids
# oversubscription (which makes small-model training several times slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

#: The longest parts of ``make test``: node-id prefixes (a whole file where its tests share an expensive
#: module fixture, so that they stay together) and their seconds, measured one at a time with ``--durations``
#: on the shared 2-core development machine (busy, so only the ratios matter). Under xdist each worker starts
#: with its share of them, longest first, so that the run does not end on one long test while the other
#: worker idles. A renamed test only loses its place at the front: nothing is ever dropped.
LONG_TESTS = {
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[06_galaxy_stamps.py]": 96,
    "tests/clusters/test_richness_mass.py::test_recovers_relation_with_known_likelihoods_at_nominal_rate[20]": 20,
    "tests/inference/test_hierarchical.py::test_credible_intervals_cover_truth_at_nominal_rate[marginal-20-32-200-25]":
        77,
    "tests/galaxies/test_galaxy_structure.py": 170,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[03_stefan_boltzmann.py]": 69,
    "tests/inference/test_hierarchical.py::test_credible_intervals_cover_truth_at_nominal_rate[joint-5-64-500-15]":
        65,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[05_supernova_classification.py]": 32,
    "tests/estimators/test_hmc.py": 44,
    "tests/test_cli.py": 45,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[02_delta_maps_in_hierarchical_models.py]":
        55,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[04_cluster_masses.py]": 28,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[08_out_of_distribution.py]": 24,
    "tests/inference/test_hierarchical.py::test_recovers_analytic_posterior_with_learned_map[marginal-50]": 24,
    "tests/clusters/test_mass_model.py": 109,
    "tests/supernovae/test_beams.py": 45,
    "tests/stars/test_model.py::test_sigma_posterior_contains_the_physical_value": 40,
    "tests/shear/test_inference.py": 45,
    "tests/inference/test_nle.py::test_posterior_recovers_conjugate_gaussian[nsf]": 27,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[01_first_steps.py]": 20,
    "tests/test_tutorials.py::test_tutorial_runs_and_writes_its_figures[07_cosmic_shear.py]": 16,
    "tests/inference/test_hierarchical.py::test_recovers_analytic_posterior_with_learned_map[joint-5]": 23,
    "tests/estimators/test_flows.py::test_affine_flow_splits_the_modes_in_half_the_epochs[maf]": 44,
    "tests/estimators/test_flows.py::test_flow_fits_bimodal_density[nsf_coupling]": 37,
}


def long_tests_first(items, n_workers: int) -> list:
    """``items`` reordered for ``n_workers`` xdist workers under ``--dist worksteal``.

    worksteal hands worker k the k-th of n contiguous slices of the collection (sizes as it computes them) and
    later moves tests from the end of a busy worker's queue to an idle one. So the LONG_TESTS are shared out
    longest first, each to the worker with the least so far, and put at the head of that worker's slice; the
    other tests keep their order. Under ``--dist load`` the long tests still start early rather than last.
    """
    units: dict[str, list] = {}
    rest = []
    for item in items:
        prefix = next((p for p in LONG_TESTS if item.nodeid == p or item.nodeid.startswith(p + "::")), None)
        if prefix is None:
            rest.append(item)
        else:
            units.setdefault(prefix, []).append(item)
    heads, loads = [[] for _ in range(n_workers)], [0.0] * n_workers
    for prefix in sorted(units, key=LONG_TESTS.get, reverse=True):
        worker = loads.index(min(loads))
        heads[worker] += units[prefix]
        loads[worker] += LONG_TESTS[prefix]
    ordered, remaining = [], len(items)
    for worker, head in enumerate(heads):
        size = remaining // (n_workers - worker)  # worksteal's share for this worker
        remaining -= size
        take = max(0, size - len(head))
        ordered += head + rest[:take]
        rest = rest[take:]
    return ordered + rest


@pytest.hookimpl(trylast=True)  # after `-m "not slow"` has deselected
def pytest_collection_modifyitems(config, items):
    n_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if n_workers > 1:
        items[:] = long_tests_first(items, n_workers)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; torch sees none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
