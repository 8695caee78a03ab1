"""Survey-sampled mocks and the mass model trained on them: estimates that do not follow the member count,
interloper rejection applied as in training, rich clusters sub-sampled, and one set of defaults.

Statistical tolerances are stated where they are used; KS tests at fixed seeds use p > 1e-3 as in
test_simulate.py.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from scipy import stats

from astrobayes.clusters import (DEFAULT_REJECTION, DEFAULT_TRAINING_CLUSTERS, cluster_features, estimate_mass,
                                 reject_interlopers, simulate_clusters, train_mass_model)
from astrobayes.clusters.features import interloper_rejection


def _thin(members, fraction: float, seed: int):
    """Each galaxy kept with probability ``fraction``: the survey had fewer redshifts."""
    return members[np.random.default_rng(seed).random(len(members)) < fraction]


def _medians_by_cluster(members, model, ids) -> np.ndarray:
    """Posterior medians in the order of ``ids`` (NaN where a cluster lost too many galaxies)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = estimate_mass(members, model, prior="training")
    out = np.full(ids.size, np.nan)
    out[np.searchsorted(ids, np.asarray(table["cluster_id"]))] = table["log_mass_median"]
    return out


@pytest.fixture(scope="module")
def tiny():
    """A small survey-trained MDN: enough to check the machinery, not its accuracy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        members, truth = simulate_clusters(400, n_redshifts=(10, 200), seed=0)
        return train_mass_model(members, truth, epochs=2, hidden=(16,), progress=False)


def test_a_thinned_mock_cluster_looks_like_one_observed_with_fewer_redshifts():
    # The survey sampling draws the galaxies of a cylinder independently, so keeping each with probability f gives
    # the features of a cluster observed with Binomial(n, f) redshifts: the estimate of a network trained on such
    # mocks cannot change with sub-sampling except through precision. 400 clusters at 10^14.8 with 320 redshifts
    # thinned to 1/4, against 400 simulated with 80: two-sample KS of each continuous feature at p > 1e-3 (the
    # fraction of high-velocity galaxies, k/n, is discrete: KS does not apply). A sampling whose interloper fraction
    # or radial distribution changed with the count would fail it.
    log_mass = np.full(400, 14.8)
    full, _ = simulate_clusters(log_mass=log_mass, n_redshifts=(320, 320), seed=61)
    fewer, _ = simulate_clusters(log_mass=log_mass, n_redshifts=(80, 80), seed=62)
    thinned = cluster_features(_thin(full, 0.25, seed=1))
    direct = cluster_features(fewer)
    for name in ("sigma_gapper", "sigma_biweight", "sigma_clipped", "R_mean", "R_median", "R_std"):
        assert stats.ks_2samp(np.asarray(thinned[name]), np.asarray(direct[name])).pvalue > 1e-3, name


@pytest.mark.slow
def test_estimates_are_stable_under_random_sub_sampling_and_were_not_before():
    # 200 held-out clusters at 10^14.5 (the middle of the flat training prior, so no prior edge pulls a broad
    # posterior) with 300 redshifts; each galaxy kept with probability f. Under invariance the mean change of the
    # posterior median is 0 within its standard error sd/√n: allow 4 of them (3 fractions: a calibrated model fails
    # with probability 2e-4). A model trained on the old count-tracking mocks must fail the same bound at f = 1/4
    # (it moves by ≈ −0.4 dex: the count fell by 4). ~1 minute on one core.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        members, truth = simulate_clusters(10000, n_redshifts=(10, 300), seed=0)
        survey = train_mass_model(members, truth, epochs=60, progress=False)
        old_members, old_truth = simulate_clusters(10000, sampling="richness", interloper_ratio=0.25, seed=0)
        old = train_mass_model(old_members, old_truth, epochs=60, progress=False, interloper_rejection="none")
    for model, kwargs, fractions in ((survey, {"n_redshifts": (300, 300)}, (0.5, 0.25, 0.1)),
                                     (old, {"sampling": "richness", "interloper_ratio": 0.25}, (0.25,))):
        test_members, test_truth = simulate_clusters(log_mass=np.full(200, 14.5), seed=3, **kwargs)
        ids = np.asarray(test_truth["cluster_id"])
        full = _medians_by_cluster(test_members, model, ids)
        for fraction in fractions:
            change = _medians_by_cluster(_thin(test_members, fraction, seed=1), model, ids) - full
            change = change[np.isfinite(change)]
            bound = 4 * change.std(ddof=1) / np.sqrt(change.size)
            if model is survey:
                assert abs(change.mean()) < bound, (fraction, change.mean(), bound)
            else:
                assert change.mean() < -bound, (fraction, change.mean(), bound)


def test_the_model_cleans_members_as_its_training_mocks_were_cleaned(tiny):
    assert tiny.settings["interloper_rejection"] == DEFAULT_REJECTION
    assert tiny.settings["sampling"] == "survey"
    members, _ = simulate_clusters(4, n_redshifts=(40, 120), seed=5)
    assert interloper_rejection(members) == "none"
    # a bare cylinder is cleaned by the model, so it gives what the cleaned table gives
    cleaned = reject_interlopers(members, method=DEFAULT_REJECTION)
    np.testing.assert_array_equal(estimate_mass(members, tiny)["log_mass_median"],
                                  estimate_mass(cleaned, tiny)["log_mass_median"])
    _, _, usable = tiny.prepare(members)
    features, _, _ = tiny.prepare(members)
    assert features.meta["interloper_rejection"] == DEFAULT_REJECTION and usable.all()
    # a table cleaned another way is refused, naming both methods and the fix
    other = next(method for method in ("shifting_gapper", "sigma_clip") if method != DEFAULT_REJECTION)
    with pytest.raises(ValueError, match=rf"cleaned of interlopers with '{other}'.*'{DEFAULT_REJECTION}'.*rejection="):
        estimate_mass(reject_interlopers(members, method=other), tiny)
    # so are features computed from the bare cylinder
    with pytest.raises(ValueError, match=r"features were computed from members cleaned with 'none'"):
        tiny.posteriors(members, features=cluster_features(members))
    with pytest.raises(ValueError, match="interloper_rejection must be one of"):
        train_mass_model(members, simulate_clusters(4, n_redshifts=(40, 120), seed=5)[1], interloper_rejection="gap")


def test_clusters_richer_than_any_training_cluster_are_sub_sampled_with_a_warning(tiny):
    limit = tiny.settings["max_galaxies"]
    assert 150 <= limit <= 200  # the richest training cluster after cleaning (n_redshifts up to 200)
    members, _ = simulate_clusters(log_mass=[15.0, 14.0], n_redshifts=(600, 600), interloper_ratio=0.0, seed=6)
    with pytest.warns(UserWarning, match=rf"2 cluster\(s\) have more galaxies than any training cluster \({limit}\)"):
        table = estimate_mass(members, tiny)
    assert (table["n_members"] == limit).all()
    assert "outside_training" not in "".join(table["flags"])
    # the draw is seeded: the same answer twice
    with pytest.warns(UserWarning):
        again = estimate_mass(members, tiny)
    np.testing.assert_array_equal(table["log_mass_median"], again["log_mass_median"])


def test_recipe_defaults_are_the_library_defaults():
    # "defaults are the product": `astrobayes train clusters` with no configuration trains what
    # train_mass_model(*simulate_clusters(DEFAULT_TRAINING_CLUSTERS)) trains
    from astrobayes.recipes import recipe, resolve_config

    config = resolve_config(recipe("clusters").sections, {})

    def defaults(function):
        return {name: p.default for name, p in inspect.signature(function).parameters.items()
                if p.default is not inspect.Parameter.empty}

    for section, function in (("simulate", simulate_clusters), ("train", train_mass_model)):
        library = defaults(function)
        for key, value in config[section].items():
            if section == "simulate" and key == "n_clusters":
                assert value == DEFAULT_TRAINING_CLUSTERS
                continue
            expected = library[key]
            if isinstance(expected, (tuple, list)):
                expected, value = list(expected), list(value)
            assert value == expected, (section, key)
    assert config["simulate"]["sampling"] == "survey" and config["train"]["interloper_rejection"] == DEFAULT_REJECTION


@pytest.mark.parametrize("setting, message", [
    ('simulate.sampling="magnitude"', "[simulate] sampling must be one of survey, richness"),
    ('train.interloper_rejection="gap"', "[train] interloper_rejection must be one of"),
])
def test_recipe_refuses_unknown_sampling_and_rejection_before_any_work(setting, message, tmp_path, capsys):
    from astrobayes.cli import main

    assert main(["train", "clusters", "--output", str(tmp_path / "m"), "--set", setting]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "simulating" not in captured.out
