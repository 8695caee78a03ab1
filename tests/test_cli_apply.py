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


# ------------------------------------------------------------------ never write over an input
def _refused_before_work(argv, capsys, *names):
    """exit 2, one line on stderr naming every one of ``names``."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing to write over an input" in err, err
    for name in names:
        assert name in err, (name, err)
    return err


def test_output_that_is_the_input_catalogue_is_refused(npe_path, catalog_path, tmp_path, monkeypatch, capsys):
    import os

    original = catalog_path.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "linked.ecsv").symlink_to(catalog_path)
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    os.link(catalog_path, tmp_path / "twin.ecsv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    run = ["apply", str(npe_path), "stars.ecsv"]
    for output in ("stars.ecsv", "./sub/../stars.ecsv", str(catalog_path), "linked.ecsv", "alias/stars.ecsv",
                   "twin.ecsv", "~/stars.ecsv"):
        for overwrite in ([], ["--overwrite"]):
            _refused_before_work(run + [output, "--columns", "m_obs,colour"] + overwrite, capsys,
                                 "the input catalogue", "'stars.ecsv'")
    # the catalogue named through a symlinked folder and ~, the output plainly
    _refused_before_work(["apply", str(npe_path), "~/alias/stars.ecsv", "stars.ecsv", "--overwrite"], capsys)
    assert catalog_path.read_bytes() == original and _leftovers(tmp_path) == []


def test_output_that_is_a_model_file_is_refused(npe_path, catalog_path, tmp_path, capsys):
    files = {p: p.read_bytes() for p in npe_path.parent.iterdir()}
    assert {p.name for p in files} >= {"npe.json", "npe.safetensors", "npe.prior.json"}
    for target in files:
        _refused_before_work(["apply", str(npe_path), str(catalog_path), str(target), "--format", "ecsv",
                              "--overwrite", "--columns", "m_obs,colour"], capsys, "the model file", str(target))
    assert {p: p.read_bytes() for p in npe_path.parent.iterdir()} == files


def test_domain_models_never_write_over_their_catalogues(tmp_path, capsys):
    # refused before the model is read: marker files make these a cluster model and a supernova classifier
    for suffix in (".json", ".safetensors", ".cluster_mass.json"):
        (tmp_path / f"clusters{suffix}").write_text("{}")
    (tmp_path / "sn").mkdir()
    (tmp_path / "sn" / "classifier.json").write_text("{}")
    for name in ("members.ecsv", "lcs.ecsv", "lcs_meta.ecsv"):
        (tmp_path / name).write_text(f"# {name}\n")
    for model, catalog, output, said in (
            ("clusters", "members.ecsv", "members.ecsv", "the input catalogue"),
            ("clusters", "members.ecsv", "clusters.cluster_mass.json", "the model file"),
            ("sn", "lcs.ecsv", "lcs_meta.ecsv", "the input catalogue"),  # the lightcurve file's partner
            ("sn", "lcs.ecsv", "sn/classifier.json", "in the model folder")):
        _refused_before_work(["apply", str(tmp_path / model), str(tmp_path / catalog), str(tmp_path / output),
                              "--overwrite", "--format", "ecsv"], capsys, said)
    assert (tmp_path / "lcs_meta.ecsv").read_text() == "# lcs_meta.ecsv\n"
    assert (tmp_path / "sn" / "classifier.json").read_text() == "{}"


# ------------------------------------------------------------------ options naming columns
@pytest.mark.parametrize("options, said", [
    (["--columns", "M_OBS,colour"], "no column 'M_OBS', named by --columns (did you mean 'm_obs'?)"),
    (["--columns", "m_obs,m_obs"], "--columns names 'm_obs' more than once"),
    (["--columns", ",,"], "--columns ',,' names nothing"),
    (["--columns", "m_obs,colour", "--id-columns", "sourceid"],
     "no column 'sourceid', named by --id-columns (did you mean 'source_id'?)"),
    (["--columns", "m_obs,colour", "--id-columns", " "], "--id-columns ' ' names nothing"),
    # --keep-columns used to make --id-columns (even a column that does not exist) silently ignored
    (["--columns", "m_obs,colour", "--id-columns", "nope", "--keep-columns"], "give one of them"),
    # a wrong count of --names used to be blamed on the model file
    (["--columns", "m_obs,colour", "--names", "a,b"], "--names: names must list 1 output name"),
    (["--columns", "m_obs,colour", "--names", "mu"], None),
])
def test_options_naming_columns(npe_path, catalog_path, tmp_path, options, said, capsys):
    output = tmp_path / "out.ecsv"
    status = main(["apply", str(npe_path), str(catalog_path), str(output), "--draws", "8"] + options)
    err = capsys.readouterr().err.strip()
    if said is None:
        assert status == 0 and "mu_mean" in Table.read(output).colnames
        return
    assert status == 2 and said in err and len(err.splitlines()) == 1, err
    assert not output.exists()


# ------------------------------------------------------------------ hostile inputs: one line, exit 2, no output
def test_hostile_inputs_get_one_line(npe_path, catalog_path, tmp_path, monkeypatch, capsys):
    import os

    (tmp_path / "empty.ecsv").write_text("")
    Table({"m_obs": np.zeros(0), "colour": np.zeros(0)}).write(tmp_path / "zero.ecsv")
    Table({"m_öbs": [0.1], "cölour": [0.2]}).write(tmp_path / "unicode.ecsv")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.json").mkdir()  # a model path that is a folder
    good = [str(npe_path), str(catalog_path)]
    cases = [
        (["apply", str(npe_path), str(tmp_path / "empty.ecsv"), "o.ecsv"], "is an empty file (0 bytes)"),
        (["apply", str(npe_path), str(tmp_path / "zero.ecsv"), "o.ecsv"], "has no rows"),
        (["apply", *good, str(tmp_path / "folder"), "--overwrite"], "is a folder; name a file in it"),
        (["apply", *good, str(tmp_path / "no" / "o.ecsv")], "the output folder"),
        (["apply", str(npe_path), str(tmp_path / "unicode.ecsv"), "o.ecsv", "--columns", "m_obs,cölour"],
         "no column 'm_obs', named by --columns (did you mean 'm_öbs'?)"),
        (["apply", str(tmp_path / "folder"), str(catalog_path), "o.ecsv"], "cannot use"),
        (["apply", str(tmp_path / "folder.json"), str(catalog_path), "o.ecsv"], "cannot use"),
        (["apply", "", str(catalog_path), "o.ecsv"], "the model path is empty"),
        (["apply", *good, ""], "the output path is empty"),
    ]
    monkeypatch.chdir(tmp_path)
    for argv, said in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert said in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "o.ecsv").exists() and _leftovers(tmp_path) == []
    # a folder it may not write in (checked with os.access: this may run as root, who may write anywhere)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(tmp_path / "folder") else
                        real_access(path, mode))
    assert main(["apply", *good, str(tmp_path / "folder" / "o.ecsv")]) == 2
    assert "is not writable" in capsys.readouterr().err
    # unicode column names that exist work
    assert main(["apply", str(npe_path), str(tmp_path / "unicode.ecsv"), "u.ecsv", "--columns", "m_öbs,cölour",
                 "--draws", "8", "--keep-columns"]) == 0
    assert Table.read(tmp_path / "u.ecsv").colnames[:2] == ["m_öbs", "cölour"]


# ------------------------------------------------------------------ interrupts
def test_an_interrupt_anywhere_is_one_line_and_status_130(npe_path, catalog_path, tmp_path, monkeypatch, capsys):
    import astrobayes.catalog
    import astrobayes.cli

    class Stopped(KeyboardInterrupt):
        pass

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    argv = ["apply", str(npe_path), str(catalog_path), str(tmp_path / "out.ecsv"), "--columns", "m_obs,colour"]
    monkeypatch.setattr(astrobayes.catalog, "load_catalog_model", interrupt)  # while reading the model
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == "astrobayes apply: interrupted"
    monkeypatch.setattr(astrobayes.cli, "build_parser", interrupt)  # before the arguments are even parsed
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == "astrobayes apply: interrupted"

    def stop(*args, **kwargs):
        raise Stopped("interrupted after epoch 3 of 9; checkpoints kept in ck/\n")

    monkeypatch.setattr(astrobayes.cli, "build_parser", stop)  # a message of its own is what is printed
    assert main(["train", "stars"]) == 130
    assert capsys.readouterr().err.strip() == "astrobayes train: interrupted after epoch 3 of 9; checkpoints kept in ck/"
    assert not (tmp_path / "out.ecsv").exists() and _leftovers(tmp_path) == []


def test_start_up_does_not_import_torch():
    # so that an interrupt while the command starts lands inside main(), which turns it into one line
    import subprocess
    import sys

    code = "import sys, astrobayes.cli; astrobayes.cli.build_parser(); print(sorted({'torch', 'astropy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("option, said", [
    (["--draws", str(10**15)], "n_draws (--draws) = 1,000,000,000,000,000 would hold"),  # was numpy's MemoryError
    (["--samples", str(10**15)], "n (--samples) = 1,000,000,000,000,000 would hold"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),  # was "batch_size must be ..."
    (["--draws", "1"], "--draws must be at least 2"),
    (["--quantiles", ""], "--quantiles '' names nothing"),  # was numpy's "need at least one array to stack"
    (["--quantiles", "0.5,0.5"], "--quantiles names '0.5' more than once"),
])
def test_option_values_found_by_fuzzing(npe_path, catalog_path, tmp_path, option, said, capsys):
    output = tmp_path / "out.ecsv"
    assert main(["apply", str(npe_path), str(catalog_path), str(output), "--columns", "m_obs,colour"] + option) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert not output.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("output, names, said", [
    ("out.fits", "\x08", "printable text in ASCII"),  # was a FITS header ValueError (exit 1) after the work
    ("out.fits", "μ", "printable text in ASCII"),
    ("out.ecsv", "a\tb", "printable text"),
])
def test_output_names_a_format_cannot_hold_exit_2_before_work(npe_path, catalog_path, tmp_path, output, names, said,
                                                              capsys):
    # found by tests/fuzz/test_fuzz_cli_options.py
    assert main(["apply", str(npe_path), str(catalog_path), str(tmp_path / output), "--columns", "m_obs,colour",
                 "--names", names]) == 2
    err = capsys.readouterr().err
    assert said in err and "--names" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / output).exists()


@pytest.mark.parametrize("model", [".", "/", ".."])
def test_model_path_that_names_no_model_exits_2(model, catalog_path, tmp_path, capsys):
    # found by tests/fuzz/test_fuzz_cli_options.py: "." was a ValueError from pathlib (exit 1)
    assert main(["apply", model, str(catalog_path), str(tmp_path / "out.ecsv")]) == 2
    err = capsys.readouterr().err
    assert "names no model" in err and len(err.strip().splitlines()) == 1
