"""Fuzz the option values of ``astrobayes apply``, ``train`` and ``inspect`` (run in-process through ``main``).

Each example gives one to three options random values: numbers (negative,
huge, tiny, inf, NaN), unicode and empty strings, comma lists, paths that
do not exist, are folders or start with ``~``. The command must finish with
exit status 0 or 2 (a usage error), never 1 or a traceback, and a refusal is
one line on stderr. ``train`` runs its recipe's checks for real but the
training itself is replaced by a stub (seconds of simulation per example
would make the suite too slow; what follows the checks is tested elsewhere).
"""
import contextlib
import dataclasses
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import given
from hypothesis import strategies as st

import astrobayes
from astrobayes.cli import main
from astrobayes.recipes import DOMAINS, Trained
from astrobayes.recipes.domains import _recipes

NASTY = ["", " ", "-1", "0", "1", "2", "-0", "1e400", "-1e400", "inf", "nan", "1e-320", "99999999999999999999999",
         "0.5", "1,2", ",", ",,", "a,a", "a,b", "b,a", "a,b,c", "id", "id,id", "Ω", "é,ü", "\u200b", "𝒢", "-",
         "--", "--help", "~", "~/nothing", ".", "..", "/", "/dev/null", "cat.ecsv", "out.csv", "x.fits",
         "x.parquet", "x.ecsv", "cpu", "cuda", "auto", "CPU", "none", "None", "a\nb", "%s", "{}"]
# (no lone surrogates: pytest's captured stderr is strict where a terminal's is backslashreplace)
APPLY_OPTIONS = ["--columns", "--names", "--draws", "--samples", "--quantiles", "--batch-size", "--device", "--seed",
                 "--id-columns", "--format"]
APPLY_FLAGS = ["--keep-columns", "--overwrite"]
TRAIN_OPTIONS = ["--config", "--set", "--seed", "--device", "--output", "--checkpoint"]
TRAIN_FLAGS = ["--overwrite", "--resume"]


def option_value():
    return st.sampled_from(NASTY) | st.integers().map(str) | st.floats().map(repr) | st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16)


def run_main(argv: list[str], capsys) -> int:
    """``main(argv)`` with warnings silenced; its exit status, after :func:`check_exit` has read its stderr."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(argv)
    check_exit(status, capsys.readouterr().err)
    return status


def check_exit(status: int, err: str) -> None:
    """0 or a usage error (2) with one line on stderr; never a traceback."""
    assert "Traceback" not in err, err
    assert status in (0, 2), f"exit status {status}: {err}"
    if status == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"{len(lines)} lines on stderr: {err}"
        assert lines[0].startswith("astrobayes"), lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A catalogue (id, a, b), a regressor and an NPE posterior (mixture density network) trained on (a, b)."""
    from astrobayes.inference import NPE, BoxUniform

    folder = tmp_path_factory.mktemp("cli_fuzz")
    rng = np.random.default_rng(0)
    prior = BoxUniform([0.0, 0.0], [1.0, 2.0], names=["a_par", "b_par"])
    theta = prior.sample((64,), seed=0).numpy()
    posterior = NPE(prior, density="mdn", n_components=2, hidden=(4,)).append_simulations(theta, theta + 0.1).train(
        epochs=1, progress=False, seed=0)
    posterior.save(folder / "post")
    regressor = astrobayes.Regressor(hidden=(4,))
    regressor.fit(theta, theta[:, :1], epochs=1, progress=False)
    regressor.save(folder / "reg")
    Table({"id": np.arange(6), "a": rng.normal(size=6), "b": rng.normal(size=6)}).write(folder / "cat.ecsv")
    return folder


@given(model=st.sampled_from(["post", "reg"]), options=st.lists(st.sampled_from(APPLY_OPTIONS), min_size=1,
                                                                   max_size=3, unique=True),
       flags=st.lists(st.sampled_from(APPLY_FLAGS), unique=True), data=st.data())
def test_fuzz_apply_options(files, capsys, model, options, flags, data):
    argv = ["apply", str(files / model), str(files / "cat.ecsv")]
    if data.draw(st.integers(0, 5)) == 0:  # now and then a hostile model or catalogue path
        argv[data.draw(st.sampled_from([1, 2]))] = data.draw(option_value())
    # relative paths in the options land in the example's own folder, never in the working tree
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        argv.append(str(Path(tmp) / data.draw(st.sampled_from(["out.ecsv", "out.fits", "out.csv", "Ω ü.ecsv"]))))
        if "--columns" not in options:
            argv += ["--columns", "a,b"]
        for option in options:
            argv += [option, data.draw(option_value())]
        argv += flags
        status = run_main(argv, capsys)
        if status == 0:
            assert Path(argv[3]).is_file() or argv[3].endswith(".csv") or "--format" in options


@given(path=option_value() | st.sampled_from(["post", "post.json", "post.safetensors", "reg", "cat.ecsv", "."]))
def test_fuzz_inspect_paths(files, capsys, path):
    capsys.readouterr()
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        status = main(["inspect", str(files / path) if path in ("post", "post.json", "post.safetensors", "reg",
                                                                "cat.ecsv", ".") else path])
    check_exit(status, capsys.readouterr().err)


@pytest.fixture(scope="module")
def stub_training():
    """Each recipe's work (simulate, train, test) replaced by a stub that saves a one-line file."""
    def run(config, ctx):
        return Trained(lambda path: Path(f"{path}.json").write_text("{}\n"), {"checked": 1.0})

    with pytest.MonkeyPatch.context() as patch:
        for domain, rec in list(_recipes().items()):
            patch.setitem(_recipes(), domain, dataclasses.replace(rec, run=run))
        yield


@given(domain=st.sampled_from(DOMAINS), options=st.lists(st.sampled_from(TRAIN_OPTIONS), min_size=1, max_size=3,
                                                         unique=True),
       flags=st.lists(st.sampled_from(TRAIN_FLAGS), unique=True), data=st.data())
def test_fuzz_train_options(stub_training, capsys, domain, options, flags, data):
    # relative --output / --checkpoint paths land in the example's own folder, never in the working tree
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        argv = ["train", domain]
        if "--output" not in options:
            argv += ["--output", str(Path(tmp) / "model")]
        for option in options:
            value = data.draw(option_value() | st.sampled_from(["train.epochs=3", "train.hidden=[4]",
                                                                "test.n_grid=3", "data.inputs=maps"]))
            if option in ("--output", "--checkpoint", "--config") and data.draw(st.booleans()):
                value = str(Path(tmp) / value.replace("/", "_")) if value.strip() else value
            argv += [option, value]
        argv += flags
        status = run_main(argv, capsys)
