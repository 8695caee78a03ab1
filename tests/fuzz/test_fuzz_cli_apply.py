"""Fuzz the option values and paths of ``astrobayes apply``.

Every column-naming option gets lists of real, misspelt, repeated, empty and
unicode names; the numeric options negative, zero, huge and tiny values;
``--quantiles`` any text; the output a new name (unicode included), the
input catalogue or a model file under another spelling, a folder, or a path
in a folder that does not exist. The command must either write the output
(exit 0) or refuse with exit 2 and one line on stderr that names the option,
column, file or folder; it never raises, and never changes an input or leaves
a temporary file.
"""
import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import event, given
from hypothesis import strategies as st

import astrobayes
from astrobayes.catalog.io import read_catalog
from astrobayes.cli import main
from astrobayes.inference import NPE
from astrobayes.inference.priors import BoxUniform

COLUMNS = ["source_id", "m_obs", "colour"]


def mostly(valid, hostile):
    """``valid`` seven times in eight, else a draw of ``hostile``: each example changes one or two options."""
    return st.integers(0, 7).flatmap(lambda i: st.just(valid) if i else hostile)


NAMES = st.sampled_from(COLUMNS + ["M_OBS", "m_ob", "colour ", "", " ", "é", "𝒢", "nope", "m_obs,colour", "#"])
NAME_LISTS = st.one_of(st.none(), st.lists(st.one_of(NAMES, st.text(max_size=6)), max_size=4).map(",".join))
NUMBERS = st.one_of(st.integers(-3, 40), st.sampled_from([0, 1, 2, 2**31, 10**12, 10**30]))
QUANTILES = st.one_of(st.none(), st.lists(st.sampled_from(["0.16", "0.5", "0.84", "0", "1", "-0.1", "nan", "inf",
                                                           "1e-320", "0.99999", "x", "", "0.5"]),
                                          max_size=4).map(",".join), st.text(max_size=8))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_apply")
    rng = np.random.default_rng(0)
    regressor = astrobayes.Regressor(hidden=(8,))
    regressor.fit(rng.normal(size=(128, 2)), rng.normal(size=(128, 1)), epochs=1, progress=False)
    regressor.save(folder / "reg")
    prior = BoxUniform([-3.0], [3.0], names=["distance_modulus"], units=["mag"])  # summarised from draws
    theta = prior.sample(200, seed=0).numpy()
    NPE(prior, density="mdn", n_components=1, hidden=(8,)).append_simulations(
        theta, np.column_stack([theta[:, 0], rng.normal(size=200)])).train(epochs=1, progress=False).save(folder / "npe")
    Table({"source_id": np.arange(12), "m_obs": rng.normal(size=12), "colour": rng.normal(size=12)}).write(
        folder / "stars.ecsv")
    (folder / "out_folder").mkdir()
    return folder


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@given(model=st.sampled_from(["reg", "npe"]), columns=mostly("m_obs,colour", NAME_LISTS),
       names=mostly(None, st.sampled_from(["z", "z,z", "", "redshift", "a,b", "é"])),
       id_columns=mostly(None, NAME_LISTS), keep=st.booleans(), quantiles=mostly(None, QUANTILES),
       draws=mostly(100, NUMBERS), samples=mostly(0, NUMBERS), batch_size=mostly(4096, NUMBERS),
       seed=mostly(0, NUMBERS), overwrite=st.booleans(),
       output=mostly("out.ecsv", st.one_of(
           st.sampled_from(["stars.ecsv", "./x/../stars.ecsv", "reg.json", "npe.safetensors", "npe.prior.json",
                            "out_folder", "missing/out.ecsv", "out.txt", "", "out.csv", "out.fits", "out.parquet"]),
           st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
                   min_size=1, max_size=8).map(lambda name: name + ".ecsv"))))
def test_apply_option_values(files, monkeypatch, model, columns, names, id_columns, keep, quantiles, draws, samples,
                             batch_size, seed, overwrite, output):
    monkeypatch.chdir(files)
    before = _snapshot(files)
    argv = ["apply", model, "stars.ecsv", output, f"--draws={draws}", f"--samples={samples}",
            f"--batch-size={batch_size}", f"--seed={seed}"]
    for option, value in (("--columns", columns), ("--names", names), ("--id-columns", id_columns),
                          ("--quantiles", quantiles)):
        if value is not None:
            argv.append(f"{option}={value}")  # "=": a value starting with "-" is still this option's value
    argv += ["--keep-columns"] * keep + ["--overwrite"] * overwrite
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    said = err.getvalue().strip()
    event(f"status {status}")
    written = files / output if output else None
    try:
        if status == 0:
            assert written is not None and written.is_file() and len(read_catalog(written)) == 12, argv
        else:
            assert status == 2, (argv, said)
            assert len(said.splitlines()) == 1 and said.startswith("astrobayes apply: "), (argv, said)
            assert any(word in said for word in ("--", "column", "catalogue", "stars.ecsv", "output", "folder",
                                                 "format", "quantiles", "model")), (argv, said)
        # no input is changed, and no temporary file is left, whatever happened
        after = _snapshot(files)
        assert {name: after[name] for name in before} == before, argv
        assert not [name for name in after if name.endswith(".part")], argv
    finally:
        if status == 0 and written.resolve().parent == files and written.name not in before:
            written.unlink()
