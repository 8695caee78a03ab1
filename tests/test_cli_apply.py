"""``astrobayes apply``: round trip, refusals with exit status 2, no partial output left behind."""
import json

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

import astrobayes
from astrobayes.catalog import apply_estimator
from astrobayes.catalog.io import read_catalog
from astrobayes.cli import main
from astrobayes.inference import NPE
from astrobayes.inference.priors import BoxUniform


@pytest.fixture(scope="module")
def npe_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_models")
    rng = np.random.default_rng(0)
    prior = BoxUniform([-3.0], [3.0], names=["distance_modulus"], units=["mag"])
    theta = prior.sample(500, seed=0).numpy()
    x = np.column_stack([theta[:, 0] + 0.2 * rng.normal(size=500), rng.normal(size=500)])
    posterior = NPE(prior, density="mdn", n_components=1, hidden=(8,)).append_simulations(theta, x).train(
        epochs=2, progress=False)
    posterior.save(folder / "npe")
    return folder / "npe"


@pytest.fixture
def catalog_path(tmp_path):
    rng = np.random.default_rng(2)
    table = Table({"source_id": np.arange(30) + 7, "m_obs": rng.normal(size=30), "colour": rng.normal(size=30)})
    table["m_obs"].unit = "mag"
    path = tmp_path / "stars.ecsv"
    table.write(path)
    return path


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_round_trip_ecsv(npe_path, catalog_path, tmp_path):
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour",
                 "--draws", "64", "--samples", "3", "--seed", "5"]) == 0
    got = Table.read(output)
    expected = apply_estimator(Table.read(catalog_path), npe_path, ["m_obs", "colour"], n_draws=64, seed=5)
    assert got.colnames[0] == "source_id" and "m_obs" not in got.colnames
    for name in expected.columns:
        np.testing.assert_array_equal(np.asarray(got[name]), expected[name].to_numpy())
    assert str(got["distance_modulus_mean"].unit) == "mag"
    assert got["distance_modulus_samples"].shape == (30, 3)
    meta = got.meta["astrobayes"]
    assert meta["seed"] == 5 and meta["astrobayes_version"] == astrobayes.__version__
    assert len(meta["model_sha256"]) == 64 and "--draws 64" in meta["command"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_other_formats(npe_path, catalog_path, tmp_path, suffix):
    output = tmp_path / f"out{suffix}"
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour",
                 "--draws", "16", "--keep-columns"]) == 0
    got = Table.read(output).to_pandas() if suffix == ".fits" else read_catalog(output)
    expected = apply_estimator(Table.read(catalog_path), npe_path, ["m_obs", "colour"], n_draws=16)
    source = Table.read(catalog_path)
    for name in ("source_id", "m_obs", "colour"):
        np.testing.assert_array_equal(got[name].to_numpy(), np.asarray(source[name]))
    for name in expected.columns:
        np.testing.assert_allclose(got[name].to_numpy(), expected[name].to_numpy(), rtol=1e-15)
    if suffix == ".fits":
        assert str(Table.read(output)["distance_modulus_mean"].unit) == "mag"
    else:
        if suffix == ".csv":
            header = json.loads(output.read_text().splitlines()[0].removeprefix("# astrobayes: "))
        else:
            import pyarrow.parquet as pq

            header = json.loads(pq.read_schema(output).metadata[b"astrobayes"])
        assert header["units"]["distance_modulus_mean"] == "mag"
        assert header["units"]["m_obs"] == "mag"  # a copied column keeps its unit


def test_csv_values_with_a_hash_survive(npe_path, tmp_path):
    catalog = tmp_path / "named.csv"
    pd.DataFrame({"name": ["NGC#1", "M 31"], "m_obs": [0.1, 0.2], "colour": [1.0, 2.0]}).to_csv(catalog, index=False)
    output = tmp_path / "out.csv"
    assert main(["apply", str(npe_path), str(catalog), str(output), "--columns", "m_obs,colour", "--draws", "8"]) == 0
    got = read_catalog(output)
    assert list(got["name"]) == ["NGC#1", "M 31"] and np.isfinite(got["distance_modulus_mean"]).all()


@pytest.mark.parametrize("option", [["--draws", "1"], ["--quantiles", "0,1.5"], ["--quantiles", "0.5,0.5"],
                                    ["--batch-size", "0"], ["--seed", "-1"], ["--samples", "-2"]])
def test_bad_option_values_exit_2_before_writing(npe_path, catalog_path, tmp_path, option, capsys):
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour", *option]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not output.exists() and _leftovers(tmp_path) == []


def test_output_column_already_in_the_catalogue(npe_path, tmp_path, capsys):
    catalog = tmp_path / "clash.ecsv"
    Table({"m_obs": [0.1], "colour": [1.0], "distance_modulus_mean": [3.0]}).write(catalog)
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(npe_path), str(catalog), str(output), "--columns", "m_obs,colour",
                 "--keep-columns"]) == 2
    assert "distance_modulus_mean" in capsys.readouterr().err and not output.exists()


def test_existing_output_is_left_untouched(npe_path, catalog_path, tmp_path, capsys):
    output = tmp_path / "out.ecsv"
    output.write_text("precious\n")
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour"]) == 2
    assert output.read_text() == "precious\n"
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and len(err.splitlines()) == 1
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour",
                 "--draws", "8", "--overwrite"]) == 0
    assert "distance_modulus_mean" in Table.read(output).colnames


def test_missing_column(npe_path, catalog_path, tmp_path, capsys):
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,g_r"]) == 2
    assert "'g_r'" in capsys.readouterr().err
    assert not output.exists() and _leftovers(tmp_path) == []


def test_wrong_model_file(catalog_path, tmp_path, capsys):
    bogus = tmp_path / "bogus"
    (tmp_path / "bogus.json").write_text('{"format": "something-else"}')
    (tmp_path / "bogus.safetensors").write_bytes(b"not tensors")
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(bogus), str(catalog_path), str(output), "--columns", "m_obs,colour"]) == 2
    assert main(["apply", str(tmp_path / "absent"), str(catalog_path), str(output)]) == 2
    assert "cannot use" in capsys.readouterr().err
    assert not output.exists() and _leftovers(tmp_path) == []


def test_failure_while_writing_leaves_no_temporary_file(npe_path, catalog_path, tmp_path, monkeypatch):
    import astropy.table

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(astropy.table.Table, "write", broken)
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour",
                 "--draws", "8"]) == 1
    assert not output.exists() and _leftovers(tmp_path) == []


def test_python_dash_m_help():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "astrobayes", "apply", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "posterior mean" in done.stdout
