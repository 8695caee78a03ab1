"""apply_estimator in memory and with a Dask cluster: same numbers however the rows are partitioned."""
import warnings

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

import astrobayes
from astrobayes.catalog import apply_estimator, cache_info, clear_cache, dask_apply, load_catalog_model
from astrobayes.inference import NPE
from astrobayes.inference.priors import BoxUniform


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny NPE posterior (MDN) and a tiny Regressor, trained on toy Gaussian problems and saved."""
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    prior = BoxUniform([-3.0, 0.0], [3.0, 2.0], names=["mu", "log_sigma"], units=["mag", None])
    theta = prior.sample(1000, seed=0).numpy()
    x = np.column_stack([theta[:, 0] + 0.3 * rng.normal(size=1000), theta[:, 1] + 0.3 * rng.normal(size=1000)])
    posterior = NPE(prior, density="mdn", n_components=2, hidden=(16,)).append_simulations(theta, x).train(
        epochs=3, progress=False)
    posterior.save(folder / "npe")
    reg = astrobayes.Regressor(hidden=(16,))
    reg.fit(x, theta, epochs=3, progress=False)
    reg.save(folder / "reg")
    return {"npe": folder / "npe", "reg": folder / "reg"}


def _catalog(m, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"obj_id": np.arange(m) + 1000, "g": rng.normal(size=m), "r": rng.normal(1.0, 0.3, size=m)})


@pytest.mark.parametrize("name", ["npe", "reg"])
def test_dataframe_and_table_inputs_agree(models, name):
    catalog = _catalog(50)
    a = apply_estimator(catalog, models[name], ["g", "r"], n_draws=100)
    b = apply_estimator(Table.from_pandas(catalog), load_catalog_model(models[name]), ["g", "r"], n_draws=100)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.columns[:5]) == ["mu_mean", "mu_std", "mu_q16", "mu_q50", "mu_q84"] if name == "npe" else True
    assert np.isfinite(a.to_numpy()).all()


@pytest.mark.parametrize("name", ["npe", "reg"])
def test_batching_does_not_change_the_summaries(models, name):
    catalog = _catalog(40)
    a = apply_estimator(catalog, models[name], ["g", "r"], n_draws=100, batch_size=7)
    b = apply_estimator(catalog, models[name], ["g", "r"], n_draws=100, batch_size=4096)
    # each batch goes through batched network calls: float32 matmuls may round differently in the last bits
    pd.testing.assert_frame_equal(a, b, rtol=1e-5, atol=1e-6)


def test_order_does_not_change_draws(models):
    catalog = _catalog(40)
    a = apply_estimator(catalog, models["npe"], ["g", "r"], n_draws=100)
    # a row's summary depends on its index label, not its place among the others
    c = apply_estimator(catalog.iloc[::-1], models["npe"], ["g", "r"], n_draws=100)
    pd.testing.assert_frame_equal(a, c.sort_index(), check_exact=True)


def test_missing_column_and_nan_rows(models):
    catalog = _catalog(5)
    with pytest.raises(ValueError, match="'i_mag'"):
        apply_estimator(catalog, models["reg"], ["g", "i_mag"])
    with pytest.raises(ValueError, match="2 input"):
        apply_estimator(catalog, models["reg"], ["g"])
    catalog.loc[2, "r"] = np.nan
    out = apply_estimator(catalog, models["reg"], ["g", "r"])
    assert out.iloc[2].isna().all() and np.isfinite(out.drop(index=2).to_numpy()).all()
    # a finite sentinel beyond float32's range becomes inf in the network: that row is NaN, the others unchanged
    # (it failed the whole catalogue with "x has 1 row(s) with NaN or inf (indices 0)", an index into one batch)
    catalog.loc[3, "g"] = 1e99
    sentinel = apply_estimator(catalog, models["reg"], ["g", "r"])
    assert sentinel.iloc[[2, 3]].isna().all().all()
    pd.testing.assert_frame_equal(sentinel.drop(index=[2, 3]), out.drop(index=[2, 3]), rtol=1e-5, atol=1e-6)


def test_regressor_quantiles_are_gaussian(models):
    out = apply_estimator(_catalog(10), models["reg"], ["g", "r"], quantiles=(0.5, 0.8413447460685429))
    np.testing.assert_allclose(out["y_0_q50"], out["y_0_mean"])
    np.testing.assert_allclose(out["y_0_q84.1345"], out["y_0_mean"] + out["y_0_std"], rtol=1e-6)


def test_dask_matches_single_process_and_loads_once_per_worker(models):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    catalog = _catalog(3000)
    expected = {name: apply_estimator(catalog, models[name], ["g", "r"], n_draws=50) for name in models}
    ddf = dd.from_pandas(catalog, npartitions=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's start-up chatter (ports, memory limits)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
    try:
        with distributed.Client(cluster) as client:
            client.run(clear_cache)
            for name in models:
                got = dask_apply(ddf, models[name], ["g", "r"], n_draws=50).compute()
                # each row's noise comes from (seed, index label); only float32 rounding of batched network
                # calls differs between partitions (a row from another stream would differ by ~its std)
                pd.testing.assert_frame_equal(got.sort_index(), expected[name], rtol=1e-5, atol=1e-6)
            loads = client.run(cache_info)
    finally:
        cluster.close()
    # 4 partitions × 2 models on 2 workers: each worker read each model file at most once
    assert all(info["loads"] <= 2 for info in loads.values()), loads
    assert sum(info["loads"] for info in loads.values()) >= 2


def test_dask_refuses_non_integer_index(models):
    dd = pytest.importorskip("dask.dataframe")
    catalog = _catalog(6).set_index(pd.Index([f"s{i}" for i in range(6)]))
    lazy = dask_apply(dd.from_pandas(catalog, npartitions=2), models["reg"], ["g", "r"])
    with pytest.raises(ValueError, match="integer index"):
        lazy.compute(scheduler="sync")


def test_repeated_index_labels_are_refused(models):
    catalog = pd.concat([_catalog(3), _catalog(3, seed=2)])  # labels 0, 1, 2 twice: two rows, one stream
    with pytest.raises(ValueError, match="repeated labels"):
        apply_estimator(catalog, models["npe"], ["g", "r"], n_draws=10)


def test_no_quantiles_and_more_draws_than_memory_are_refused_before_work(models):
    from astrobayes.catalog import posterior_draws

    with pytest.raises(ValueError, match="quantiles is empty"):
        apply_estimator(_catalog(3), models["reg"], ["g", "r"], quantiles=())
    with pytest.raises(ValueError, match=r"n_draws \(--draws\) = 10,000,000,000,000 would hold .* GiB of draws"):
        apply_estimator(_catalog(3), models["npe"], ["g", "r"], n_draws=10**13)
    with pytest.raises(ValueError, match=r"n \(--samples\) = 10,000,000,000,000 would hold"):
        posterior_draws(_catalog(3), models["npe"], ["g", "r"], n=10**13)


def test_names_do_not_rename_the_cached_model(models):
    from astrobayes.catalog import cached_model

    clear_cache()
    renamed = apply_estimator(_catalog(3), load_catalog_model(models["reg"]), ["g", "r"], names=["a", "b"])
    assert list(renamed.columns[:1]) == ["a_mean"]
    cached = cached_model(str(models["reg"]))
    apply_estimator(_catalog(3), cached, ["g", "r"], names=["a", "b"])
    assert cached.parameters == ["y_0", "y_1"]


def test_dask_threads_share_one_model_safely(models):
    dd = pytest.importorskip("dask.dataframe")
    catalog = _catalog(200)
    expected = apply_estimator(catalog, models["npe"], ["g", "r"], n_draws=20)
    clear_cache()
    got = dask_apply(dd.from_pandas(catalog, npartitions=8), models["npe"], ["g", "r"], n_draws=20)
    # 4 threads, one cached posterior: the per-row acceptance must still be the row's own
    pd.testing.assert_frame_equal(got.compute(scheduler="threads", num_workers=4).sort_index(), expected,
                                  rtol=1e-5, atol=1e-6)


def test_dask_refuses_partitions_that_restart_their_index(models, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    for k in range(2):
        _catalog(5, seed=k).to_parquet(tmp_path / f"part{k}.parquet")  # each file's rows numbered from 0
    ddf = dd.read_parquet([tmp_path / "part0.parquet", tmp_path / "part1.parquet"])
    with pytest.raises(ValueError, match="divisions are unknown"):
        dask_apply(ddf, models["reg"], ["g", "r"])


def test_write_catalog_refuses_the_catalogue_the_columns_came_from(tmp_path):
    from astrobayes.catalog.io import read_catalog, write_catalog

    summaries = pd.DataFrame({"z_mean": [0.1, 0.2]})
    Table({"id": [1, 2]}).write(tmp_path / "cat.ecsv")
    pd.DataFrame({"id": [1, 2]}).to_csv(tmp_path / "cat.csv", index=False)
    for fmt in ("ecsv", "csv"):
        path = tmp_path / f"cat.{fmt}"
        original = path.read_bytes()
        passed = read_catalog(path)[["id"]]  # a selection of columns keeps the record of its file
        with pytest.raises(ValueError, match=f"path '{path}' is the catalogue the passed columns were read from"):
            write_catalog(path, summaries, passed, fmt, {}, {})
        assert path.read_bytes() == original
        out = write_catalog(tmp_path / f"out.{fmt}", summaries, passed, fmt, {"seed": 1}, {})
        assert "astrobayes_read_from" not in out.read_text()


@pytest.mark.parametrize("name", ["npe", "reg"])
def test_ood_p_value_column_matches_the_estimator_and_flags_far_rows(models, name):
    """apply adds the model's OOD p-value per row: the same numbers as the estimator's own, NaN on bad rows."""
    catalog = _catalog(400)
    catalog.loc[5, "g"] = np.nan
    catalog.loc[7, "g"] = 60.0  # training inputs span about -4 < g < 4
    with pytest.warns(UserWarning, match=r"of 399 rows (is|are) unlike the training simulations at α = 0.01"):
        table = apply_estimator(catalog, str(models[name]), ["g", "r"], n_draws=8)
    assert table.columns[-1] == "ood_p_value"
    p = table["ood_p_value"].to_numpy()
    assert np.isnan(p[5]) and np.isfinite(np.delete(p, 5)).all()
    assert p[7] <= 0.01
    estimator = load_catalog_model(models[name]).estimator
    good = np.delete(np.arange(400), 5)
    expected = estimator.ood_p_value(catalog[["g", "r"]].to_numpy()[good])
    np.testing.assert_allclose(p[good], expected, rtol=0, atol=1e-12)
    # in-distribution rows (the catalogue is drawn inside the training box): few flagged at 0.05; the bound is
    # 4 sigma of a binomial(399, 0.05) above its mean, plus the one far row
    assert (p[good] <= 0.05).sum() <= 399 * 0.05 + 4 * np.sqrt(399 * 0.05 * 0.95) + 1


def test_summary_columns_name_the_ood_column(models):
    from astrobayes.catalog import summary_columns

    assert summary_columns(str(models["reg"]))[-1] == "ood_p_value"
