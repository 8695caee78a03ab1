"""The ``astrobayes`` command: info, inspect (good and bad files) and the quick demo."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from astropy.table import Table

from astrobayes import __version__
from astrobayes.cli import main
from astrobayes.core.device import resolve_device
from astrobayes.demo import run_demo, run_supernova_demo
from astrobayes.estimators.regression import Regressor

DEMO_ROWS = ["Regressor (MSE)", "Regressor (heteroscedastic)", "MixtureDensityNetwork", "ConditionalFlow (nsf)"]
DEMO_COLUMNS = {"estimator", "model_file", "nll", "nll_err", "entropy", "kl_gap", "kl_gap_err", "coverage_90",
                "train_seconds", "epochs", "reload_identical"}
DEMO_PLOTS = ["densities.png", "training_histories.png", "calibration.png"]


@pytest.fixture
def saved_model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    model = Regressor(hidden=(8,))
    model.fit(x, x[:, :1] + 0.1 * rng.normal(size=(200, 1)), epochs=3, patience=None, progress=False)
    path = tmp_path / "tiny"
    model.save(path)
    return path


def test_info_lists_versions_and_the_device_auto_picks(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for package in ("astrobayes", "torch", "normflows", "emcee", "astropy", "healpy"):
        assert package in out
    assert __version__ in out and torch.__version__ in out
    assert f"device 'auto' picks: {resolve_device('auto')}" in out


def test_inspect_summarises_a_saved_model(saved_model, capsys):
    assert main(["inspect", str(saved_model)]) == 0
    out = capsys.readouterr().out
    assert "Regressor" in out
    assert '"hidden": [8]' in out
    assert '"x_shape": [2]' in out
    assert "3 epoch(s)" in out  # patience=None: exactly the 3 epochs asked for
    assert "checksum       OK" in out
    assert "out of distr.  no reference: no out-of-distribution reference: it was to be fitted on 200 row(s)" in out


def test_inspect_shows_the_out_of_distribution_reference(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    model = Regressor(hidden=(8,))
    model.fit(x, x[:, :1], epochs=2, progress=False)
    model.save(tmp_path / "m")
    assert main(["inspect", str(tmp_path / "m")]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("out of distr."))
    assert "gaussian reference (Mahalanobis distance) of 2-d context vectors, fitted on 400 training rows" in line
    assert "calibrated on 100 held-out rows" in line and "q95 " in line


def test_inspect_describes_a_damaged_ood_entry_without_failing(tmp_path, capsys):
    from astrobayes.core.serialization import read_model, write_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    model = Regressor(hidden=(8,))
    model.fit(x, x[:, :1], epochs=1, progress=False)
    model.save(tmp_path / "m")
    header, tensors = read_model(tmp_path / "m")
    keep = {"format", "format_version", "astrobayes_version", "torch_version", "created", "class", "config",
            "weights_file", "weights_sha256"}
    extra = {k: v for k, v in header.items() if k not in keep}
    ood = extra["ood"]
    cases = [("yes", "damaged entry (a str, not a dict): loading this model will fail"),
             ([1, 2], "damaged entry (a list, not a dict)"),
             (dict(ood, method="foo"), "damaged entry (unknown method 'foo')"),
             # quantiles that are not {level: score}: were a ValueError or an AttributeError traceback
             (dict(ood, calibration_score_quantiles={"median": 1.0, "0.95": 2.5}), "(their scores: q95 2.5)"),
             (dict(ood, calibration_score_quantiles=[1.0, 2.0]), "(their scores: not recorded)"),
             (dict(ood, calibration_score_quantiles="high"), "(their scores: not recorded)")]
    for entry, expected in cases:
        write_model(tmp_path / "damaged", header["class"], header["config"], tensors, dict(extra, ood=entry))
        assert main(["inspect", str(tmp_path / "damaged")]) == 0
        line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("out of distr."))
        assert expected in line, (entry, line)


def test_inspect_accepts_either_file_of_the_pair(saved_model, capsys):
    assert main(["inspect", str(saved_model) + ".safetensors"]) == 0
    assert main(["inspect", str(saved_model) + ".json"]) == 0


def test_inspect_refuses_tampered_weights_with_exit_code_2(saved_model):
    weights = saved_model.with_name(saved_model.name + ".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    # A real process: the exit status and stderr the user sees, with no traceback.
    done = subprocess.run([sys.executable, "-m", "astrobayes.cli", "inspect", str(saved_model)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "checksum" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_inspect_refuses_a_foreign_file(tmp_path, capsys):
    (tmp_path / "other.json").write_text(json.dumps({"hello": "world"}))
    (tmp_path / "other.safetensors").write_bytes(b"\x00" * 64)
    assert main(["inspect", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "not an astrobayes model file" in err


def test_inspect_missing_file_is_exit_code_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_demo_on_missing_gpu_fails_with_a_clear_message(tmp_path, capsys):
    assert main(["demo", "--quick", "--device", "cuda", "--output", str(tmp_path / "out")]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# The normal suite runs the demo's code at smaller sizes than --quick (half the training set and epochs of the
# bimodal part, the same 1000 held-out points and 100 draws; four supernova epochs on one copy of each
# lightcurve instead of six on two); the README's `astrobayes demo --quick` runs under -m slow.
SMALL_DEMO = {"n_train": 2000, "epochs": 20}
SMALL_SUPERNOVA_DEMO = {"epochs": 4, "augment": 1}


@pytest.fixture(scope="module", params=["small", pytest.param("quick", marks=pytest.mark.slow)])
def quick_demo(request, tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    if request.param == "quick":  # the README's command, as a user types it
        assert main(["demo", "--quick", "--output", str(output), "--seed", "0"]) == 0
    else:
        run_demo(output, quick=True, seed=0, progress=False, sizes=SMALL_DEMO)
        run_supernova_demo(output, quick=True, seed=0, progress=False, sizes=SMALL_SUPERNOVA_DEMO)
    return request.param, output


def test_quick_demo_writes_table_plots_and_models(quick_demo):
    size, output = quick_demo
    table = Table.read(output / "estimators.ecsv")
    assert list(table["estimator"]) == DEMO_ROWS
    assert DEMO_COLUMNS <= set(table.colnames)
    expected = {"n_train": 4000, "n_test": 1000, "max_epochs": 40, "n_draws_for_pit": 100}
    if size == "small":
        expected.update(n_train=SMALL_DEMO["n_train"], max_epochs=SMALL_DEMO["epochs"])
    assert {key: table.meta[key] for key in expected} == expected
    assert table["train_seconds"].unit == "s"
    assert table.meta["seed"] == 0 and table.meta["astrobayes_version"] == __version__
    assert table.meta["device"] == str(resolve_device("auto"))
    assert all(table["reload_identical"])
    assert np.all(table["epochs"] >= 1)
    for name in DEMO_PLOTS:
        assert (output / name).stat().st_size > 10_000, name  # a drawn figure, not an empty canvas
    for model_file in table["model_file"]:
        assert (output / f"{model_file}.safetensors").exists() and (output / f"{model_file}.json").exists()


def test_quick_demo_shows_the_mdn_beating_mse_regression(quick_demo):
    _, output = quick_demo
    table = Table.read(output / "estimators.ecsv")
    row = {name: i for i, name in enumerate(table["estimator"])}
    mse, mdn = table[row["Regressor (MSE)"]], table[row["MixtureDensityNetwork"]]
    # The lesson of the demo: a Gaussian about the mean cannot describe two
    # redshift branches. 5σ of the (unpaired, hence conservative) standard
    # error of the NLL difference over the 1000 held-out points.
    margin = 5 * np.hypot(mse["nll_err"], mdn["nll_err"])
    assert mse["nll"] - mdn["nll"] > margin, (mse["nll"], mdn["nll"], margin)
    # The true conditional entropy is the floor every model's NLL sits above
    # (KL >= 0); the paired estimate may dip below 0 by sampling noise only (4σ).
    assert np.all(table["kl_gap"] > -4 * table["kl_gap_err"])
    # A density estimator that learned p(y|x) covers 90 % of truths with its
    # 90 % interval: 4σ binomial bound for 1000 points (0.038) plus 0.01 for
    # the PIT being estimated from 100 draws per point (both runs use these sizes).
    assert table.meta["n_test"] == 1000 and table.meta["n_draws_for_pit"] == 100
    assert abs(mdn["coverage_90"] - 0.9) < 0.048


def test_quick_demo_classifies_the_shipped_supernovae(quick_demo):
    size, output = quick_demo
    folder = output / "supernovae"
    table = Table.read(folder / "classification.ecsv")
    assert len(table) == 2000  # half of the 4000-object SNPhotCC subset
    assert {"object_id", "p_Ia", "p_Ia_std", "predicted", "true_label", "redshift"} <= set(table.colnames)
    np.testing.assert_allclose(table["p_Ia"] + table["p_non-Ia"], 1.0, atol=1e-6)
    metrics = Table.read(folder / "metrics.ecsv")
    sizes = SMALL_SUPERNOVA_DEMO if size == "small" else {"epochs": 6, "augment": 2}
    assert {key: metrics.meta[key] for key in sizes} == sizes
    # Even four short epochs separate Ia from the rest far better than chance (AUC 0.5): the AUC's standard
    # error with ~600 Ia and ~1400 others is below 0.01.
    assert metrics["auc"][0] > 0.85
    for name in ("roc_reliability.png", "lightcurves.png"):
        assert (folder / name).stat().st_size > 10_000, name
    assert (folder / "model" / "classifier.json").exists()


@pytest.mark.parametrize("run", [run_demo, run_supernova_demo])
@pytest.mark.parametrize("sizes, error, match", [
    ({"n_layers": 3}, ValueError, "sizes has unknown key"),
    ({"epochs": 0}, ValueError, r"sizes\['epochs'\] must be a positive integer, got 0"),
    ({"epochs": 2.5}, ValueError, r"sizes\['epochs'\] must be a positive integer"),
    ({"epochs": True}, ValueError, r"sizes\['epochs'\] must be a positive integer"),
    ([("epochs", 2)], TypeError, "sizes must be a dict or None, got list"),
])
def test_demo_sizes_are_known_keys_with_positive_integers(run, sizes, error, match, tmp_path):
    with pytest.raises(error, match=match):
        run(tmp_path / "out", quick=True, sizes=sizes)
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize("argv", [["apply", "m", "c", "o", "--draws", "abc"], ["train", "stars", "--seed", "x"],
                                  ["frobnicate"], ["apply", "m"], ["train", "nowhere"]])
def test_usage_errors_are_one_line(argv, capsys):
    # argparse printed its usage block and the error on two or more lines
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("astrobayes") and "--help" in err


@pytest.mark.parametrize("path", ["", ".", "/", "a\nb"])
def test_inspect_paths_that_name_no_model_exit_2_on_one_line(path, capsys):
    # found by tests/fuzz/test_fuzz_cli_options.py: "" was a ValueError (exit 1), a newline split the message
    assert main(["inspect", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("astrobayes inspect:")
