"""dask_apply on an LSDB catalogue: HEALPix partitions, the _healpix_29 index as row key, same numbers as in memory."""
import numpy as np
import pandas as pd
import pytest

import astrobayes
from astrobayes.catalog import apply_estimator, dask_apply
from astrobayes.inference import NPE
from astrobayes.inference.priors import BoxUniform

lsdb = pytest.importorskip("lsdb")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lsdb_models")
    rng = np.random.default_rng(0)
    prior = BoxUniform([0.0], [3.0], names=["z"])
    theta = prior.sample(800, seed=0).numpy()
    x = np.column_stack([theta[:, 0] + 0.2 * rng.normal(size=800), rng.normal(size=800)])
    NPE(prior, density="nsf", n_transforms=1, hidden_features=8).append_simulations(theta, x).train(
        epochs=2, progress=False).save(folder / "npe")
    reg = astrobayes.Regressor(hidden=(8,))
    reg.fit(x, theta, epochs=2, progress=False)
    reg.save(folder / "reg")
    return folder


def _sky(n=600, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"objid": np.arange(n), "ra": rng.uniform(0, 360, n),
                         "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                         "c1": rng.uniform(0, 3, n), "c2": rng.normal(size=n)})


@pytest.mark.parametrize("name", ["npe", "reg"])
def test_lsdb_catalogue_matches_in_memory_by_healpix_index(saved, name):
    sky = _sky()
    catalog = lsdb.from_dataframe(sky, ra_column="ra", dec_column="dec", lowest_order=1,
                                  partition_rows=100)
    assert catalog.get_healpix_pixels() and len(catalog.get_healpix_pixels()) > 1
    lazy = dask_apply(catalog, saved / name, ["c1", "c2"], n_draws=100, seed=2)
    got = lazy.compute()
    # the same rows in memory, keyed by the same _healpix_29 index: each row's stream follows its index
    frame = catalog.compute()
    expected = apply_estimator(frame, saved / name, ["c1", "c2"], n_draws=100, seed=2)
    assert len(got) == len(sky)
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), rtol=1e-5, atol=1e-6,
                                  check_index_type=False)
