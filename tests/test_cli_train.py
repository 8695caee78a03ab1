"""``astrobayes train DOMAIN``: configurations, the five recipes at tiny sizes, refusals, atomic output.

Also ``astrobayes apply`` with the domain models that read lightcurves, member catalogues and stamps.
"""
import json
import tomllib

import numpy as np
import pytest
from astropy.table import Table

from astrobayes.catalog.io import read_catalog
from astrobayes.cli import main
from astrobayes.recipes import DOMAINS, ConfigError, Context, default_config, recipe, resolve_config, train_domain

#: tiny sizes: each recipe runs in seconds (statistics are not judged here, the wiring is)
TINY = {
    "supernovae": ["data.max_objects=120", "train.epochs=1", "train.augment=1", "train.hidden_size=4"],
    "clusters": ["simulate.n_clusters=300", "train.epochs=2", "test.n_clusters=60", "train.hidden=[8]"],
    "galaxies": ["train.n_simulations=200", "train.epochs=1", "train.embedding_dim=8", "train.hidden_features=16",
                 "train.n_transforms=1", "test.n_stamps=20", "test.n_draws=40"],
    "shear": ["survey.nside=8", "survey.n_bins=3", "data.n_simulations=120", "train.epochs=2", "test.n_maps=20",
              "test.n_draws=50"],
    "stars": ["train.n_train=300", "train.epochs=2", "train.hidden=[8]", "test.n_grid=6"],
}


def _train(domain, output, *extra):
    argv = ["train", domain, "--output", str(output)]
    for item in TINY[domain] + list(extra):
        argv += ["--set", item]
    return main(argv)


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("domain", DOMAINS)
def test_printed_config_is_the_default(domain, capsys):
    assert main(["train", domain, "--print-config"]) == 0
    text = capsys.readouterr().out
    sections = recipe(domain).sections
    assert resolve_config(sections, tomllib.loads(text)) == resolve_config(sections, {})
    assert f"astrobayes train {domain}" in text.splitlines()[0]


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_recipe_trains_saves_and_reports(domain, tmp_path, capsys):
    output = tmp_path / "model"
    assert _train(domain, output) == 0
    out = capsys.readouterr().out
    assert f"Wrote the {domain} model to {output}" in out
    report = json.loads((tmp_path / "model.train.json").read_text())
    assert report["domain"] == domain and report["seed"] == 0
    assert report["metrics"] and report["n_train"] > 0
    assert report["command"].startswith(f"astrobayes train {domain} --output")
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert main(["inspect", str(output)]) == 0  # the network, its checksum, and the report's held-out metrics
    shown = capsys.readouterr().out
    assert "checksum       OK" in shown and f"trained by     astrobayes train {domain}" in shown
    assert "held out       n_" in shown
    if domain == "supernovae":
        from astrobayes.supernovae import load_classifier

        assert load_classifier(output).task == "binary"
        assert report["metrics"]["n_test"] == 60 and 0 <= report["metrics"]["accuracy"] <= 1
        from astrobayes.supernovae import SPCC_SAMPLE  # the shipped SNANA files, read as a folder by ``apply``

        assert main(["apply", str(output), str(SPCC_SAMPLE), str(tmp_path / "snana.ecsv")]) == 0
        assert len(read_catalog(tmp_path / "snana.ecsv")) == 12
    else:
        assert (tmp_path / "model.json").exists() and (tmp_path / "model.safetensors").exists()
    if domain in ("galaxies", "shear"):
        band = report["metrics"]["coverage_68_band"]
        assert 0 < band[0] < 0.68 < band[1] < 1
    if domain == "shear":  # band powers: a row-wise posterior that ``apply`` runs on a catalogue of them
        assert report["config"]["survey"]["area"] == "5000.0 deg2"
        rng = np.random.default_rng(0)
        table = Table(rng.lognormal(-18, 0.5, size=(5, 3)), names=["b0", "b1", "b2"])
        table.write(tmp_path / "bp.ecsv", overwrite=True)
        assert main(["apply", str(output), str(tmp_path / "bp.ecsv"), str(tmp_path / "s.ecsv"),
                     "--columns", "b0,b1,b2", "--draws", "50"]) == 0
        assert {"omega_m_q50", "sigma8_q50"} <= set(read_catalog(tmp_path / "s.ecsv").colnames)


def test_stars_report_is_reproduced_by_the_saved_map(tmp_path):
    from astrobayes.stars import load_stellar_map, stellar_map_errors

    assert _train("stars", tmp_path / "zams") == 0
    report = json.loads((tmp_path / "zams.train.json").read_text())
    summary = stellar_map_errors(load_stellar_map(tmp_path / "zams"), n_grid=6).meta["summary"]
    assert report["metrics"]["rel_error_radius_max"] == pytest.approx(summary["radius"]["max"], rel=1e-6)
    assert report["metrics"]["rel_error_teff_median"] == pytest.approx(summary["teff"]["median"], rel=1e-6)
    # the saved map runs through ``apply`` with its recorded input columns
    Table({"log_mass": [0.0, 0.5], "feh": [0.0, -0.5]}).write(tmp_path / "stars.ecsv")
    assert main(["apply", str(tmp_path / "zams"), str(tmp_path / "stars.ecsv"), str(tmp_path / "out.ecsv")]) == 0
    assert np.isfinite(read_catalog(tmp_path / "out.ecsv")["log_radius_mean"]).all()


def test_same_seed_same_model_other_seed_other_model(tmp_path):
    assert _train("clusters", tmp_path / "a") == 0
    assert _train("clusters", tmp_path / "b") == 0
    assert main(["train", "clusters", "--output", str(tmp_path / "c"), "--seed", "1"]
                + sum((["--set", s] for s in TINY["clusters"]), [])) == 0
    metrics = {n: json.loads((tmp_path / f"{n}.train.json").read_text())["metrics"] for n in "abc"}
    assert metrics["a"] == metrics["b"]
    assert metrics["a"]["scatter_dex"] != metrics["c"]["scatter_dex"]


def test_clusters_report_matches_the_saved_model_on_the_same_held_out_clusters(tmp_path):
    from astrobayes.clusters import estimate_mass, load_mass_model, simulate_clusters

    assert _train("clusters", tmp_path / "mass", "simulate.interloper_ratio=0.1") == 0
    report = json.loads((tmp_path / "mass.train.json").read_text())
    assert report["config"]["simulate"]["interloper_ratio"] == 0.1
    test_seed = Context(seed=0).seeds(2)[1]
    members, truth = simulate_clusters(60, interloper_ratio=0.1, seed=test_seed)
    masses = estimate_mass(members, load_mass_model(tmp_path / "mass"), prior="training")
    true = dict(zip(np.asarray(truth["cluster_id"]), np.asarray(truth["log_mass"])))
    log_m = np.array([true[c] for c in np.asarray(masses["cluster_id"])])
    inside = (log_m >= masses["log_mass_p16"]) & (log_m <= masses["log_mass_p84"])
    assert report["metrics"]["coverage_68"] == pytest.approx(float(np.mean(inside)))


@pytest.mark.parametrize("setting, message", [
    ("train.epoch=3", "[train] epoch is not an option"),
    ("train.epochs=2.5", "[train] epochs must be an integer"),
    ("simulate.aperture=2 km/s", "[simulate] aperture must be a quantity in length units"),
    ("simulate.aperture=1.6", "(a bare number has no unit)"),
    ("simulate.aperture=nan Mpc", "[simulate] aperture must be finite"),
    ("simulate.members_slope=true", "[simulate] members_slope must be a number"),
    ('train.hidden=["64"]', "[train] hidden[0] must be an integer"),
    ('train.estimator="nope"', "[train] estimator must be one of mdn, regressor"),
    ("train.inputs=3", '[train] inputs must be a string or "none"'),
    ("train.estimator=none", "[train] estimator cannot be none"),
    ("test.n_clusters=0", "[test] n_clusters must be an integer ≥ 10"),
    ("nosuch.key=1", "unknown section [nosuch]"),
    ("train.seed=3", "set on the command line (with --seed)"),
    ("epochs=3", "--set takes SECTION.KEY=VALUE"),
])
def test_bad_settings_exit_2_before_any_work(setting, message, tmp_path, capsys):
    assert main(["train", "clusters", "--output", str(tmp_path / "m"), "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert _entries(tmp_path) == []


def test_bad_config_files(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[train\nepochs = 3\n")
    assert main(["train", "stars", "--config", str(tmp_path / "bad.toml"), "--output", str(tmp_path / "m")]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert main(["train", "stars", "--config", str(tmp_path / "none.toml"), "--output", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "ok.toml").write_text("[train]\nn_train = 300\nepochs = 1\nhidden = [4]\n[test]\nn_grid = 4\n")
    assert main(["train", "stars", "--config", str(tmp_path / "ok.toml"), "--output", str(tmp_path / "m")]) == 0
    report = json.loads((tmp_path / "m.train.json").read_text())
    assert report["config"]["train"]["hidden"] == [4] and report["training"]["epochs"] == 1
    assert main(["train", "stars", "--output", str(tmp_path / "m")]) == 2  # exists, no --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["train", "stars"]) == 2
    assert "--output is required" in capsys.readouterr().err
    assert main(["train", "stars", "--output", str(tmp_path / "no" / "m")]) == 2


def test_overwrite_replaces_every_file_of_the_old_model(tmp_path):
    from astrobayes.catalog import load_catalog_model

    assert _train("shear", tmp_path / "m") == 0
    assert (tmp_path / "m.prior.json").exists()
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--overwrite"]
                + sum((["--set", s] for s in TINY["stars"]), [])) == 0
    assert not (tmp_path / "m.prior.json").exists()  # a stale NPE sidecar would make it load as a posterior
    assert load_catalog_model(tmp_path / "m").columns == ("log_mass", "feh")
    assert json.loads((tmp_path / "m.train.json").read_text())["domain"] == "stars"


def test_choices_and_training_options_are_checked_before_any_work(tmp_path, capsys):
    for domain, setting, message in (("galaxies", 'train.optimizer="sgd"', "[train] optimizer must be"),
                                     ("shear", "survey.nside=12", "[survey] nside must be a power of 2"),
                                     ("shear", 'data.inputs="pixels"', "[data] inputs must be one of"),
                                     ("supernovae", "data.test_fraction=1.5", "[data] test_fraction must be")):
        assert main(["train", domain, "--output", str(tmp_path / "m"), "--set", setting]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--seed", "-1"]) == 2
    assert "--seed must be a non-negative integer" in capsys.readouterr().err
    assert main(["train", "stars", "--output", str(tmp_path / "m.json")]) == 2
    assert "path stem" in capsys.readouterr().err
    assert _entries(tmp_path) == []


def test_none_unsets_an_optional_value(tmp_path, capsys):
    assert _train("stars", tmp_path / "m", "train.patience=none") == 0
    assert "setting [train] patience = none" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.train.json").read_text())["config"]["train"]["patience"] is None


def test_failure_while_saving_leaves_nothing_and_keeps_the_old_model(tmp_path, capsys, monkeypatch):
    import astrobayes.stars

    def broken(model, path):
        path.with_name(path.name + ".json").write_text("{")  # half a model, then the disk fills
        raise OSError("No space left on device")

    assert _train("stars", tmp_path / "old") == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(astrobayes.stars, "save_stellar_map", broken)
    assert _train("stars", tmp_path / "new") == 1
    assert "No space left on device" in capsys.readouterr().err
    assert main(["train", "stars", "--output", str(tmp_path / "old"), "--overwrite"]
                + sum((["--set", s] for s in TINY["stars"]), [])) == 1
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing new, the old model intact


def test_other_models_beside_the_output_are_not_touched(tmp_path):
    (tmp_path / "m.v1.json").write_text("{}")  # another model's files whose names start like the output's
    (tmp_path / "m.v1.cluster_mass.json").write_text("{}")
    assert _train("stars", tmp_path / "m") == 0
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--overwrite"]
                + sum((["--set", s] for s in TINY["stars"]), [])) == 0
    assert (tmp_path / "m.v1.json").exists() and (tmp_path / "m.v1.cluster_mass.json").exists()


def test_overwrite_across_layouts_removes_the_old_folder(tmp_path):
    from astrobayes.catalog.domains import domain_model_kind

    assert _train("supernovae", tmp_path / "m") == 0
    assert domain_model_kind(tmp_path / "m") == "supernovae"
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--overwrite"]
                + sum((["--set", s] for s in TINY["stars"]), [])) == 0
    assert not (tmp_path / "m").exists() and domain_model_kind(tmp_path / "m") is None


def test_train_domain_in_python_refuses_bad_domain_and_existing_output(tmp_path):
    with pytest.raises(ConfigError, match="domain must be one of"):
        train_domain("planets", tmp_path / "m")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(FileExistsError, match="m.json exists"):
        train_domain("stars", tmp_path / "m")
    assert default_config("stars").count("[train]") == 1


# ------------------------------------------------------------------ domain models through ``apply``
def test_apply_runs_domain_models_on_their_catalogues(tmp_path, capsys):
    from astrobayes.clusters import simulate_clusters, write_member_catalog
    from astrobayes.galaxies import StampSimulator, simulate_stamps, write_stamps
    from astrobayes.supernovae import simulate_lightcurves, write_lightcurves

    # trained on simulated lightcurves, which carry "redshift" (the SNPhotCC-trained default reads host_photoz)
    assert _train("supernovae", tmp_path / "supernovae", 'data.source="simulate"', "simulate.n=150") == 0
    for domain in ("clusters", "galaxies"):
        assert _train(domain, tmp_path / domain) == 0
    write_lightcurves(simulate_lightcurves(12, seed=4), tmp_path / "lcs.ecsv")
    write_member_catalog(simulate_clusters(8, seed=5)[0], tmp_path / "members.ecsv")
    write_stamps(simulate_stamps(4, StampSimulator(), seed=6)[0], tmp_path / "stamps.fits")
    runs = {"supernovae": ("lcs.ecsv", "object_id", 12), "clusters": ("members.ecsv", "cluster_id", 8),
            "galaxies": ("stamps.fits", "id", 4)}
    for domain, (catalog, key, n) in runs.items():
        out = tmp_path / f"{domain}_out.ecsv"
        draws = ["--draws", "50"] if domain == "galaxies" else []  # the others draw nothing
        assert main(["apply", str(tmp_path / domain), str(tmp_path / catalog), str(out)] + draws) == 0
        table = read_catalog(out)
        assert len(table) == n and table.colnames[0] == key and "ood_p_value" in table.colnames
        assert table.meta["astrobayes"]["domain"] == domain and len(table.meta["astrobayes"]["model_sha256"]) == 64
        assert ("seed" in table.meta["astrobayes"]) == (domain == "galaxies")  # the only one that draws
        facts = table.meta["astrobayes"]  # the OOD check's count survives into the file
        assert facts["ood_alpha"] == 0.01 and facts["ood_flagged"] == int((table["ood_p_value"] <= 0.01).sum())
    assert read_catalog(tmp_path / "clusters_out.ecsv")["mass_median"].unit == "solMass"
    capsys.readouterr()
    # the wrong catalogue for the model, or row-wise options: exit 2 and nothing written
    for domain, catalog in (("clusters", "lcs.ecsv"), ("galaxies", "members.ecsv"), ("supernovae", "stamps.fits")):
        assert main(["apply", str(tmp_path / domain), str(tmp_path / catalog), str(tmp_path / "x.ecsv")]) == 2
        assert f"cannot apply the {domain} model" in capsys.readouterr().err
    for option in (["--columns", "a,b"], ["--quantiles", "0.05,0.95"], ["--seed", "3"]):
        assert main(["apply", str(tmp_path / "clusters"), str(tmp_path / "members.ecsv"), str(tmp_path / "x.ecsv")]
                    + option) == 2
        assert f"{option[0]} does not apply to a clusters model" in capsys.readouterr().err
    assert not (tmp_path / "x.ecsv").exists()


# ------------------------------------------------------------------ --checkpoint and --resume
#: stars at tiny size, long enough (80 epochs, no early stopping) to be stopped part-way
CHECKPOINTED = TINY["stars"] + ["train.epochs=80", "train.patience=none"]


def _stars_argv(output, *extra):
    argv = ["train", "stars", "--output", str(output)]
    for item in CHECKPOINTED:
        argv += ["--set", item]
    return argv + list(extra)


def test_sigterm_through_the_cli_then_resume_gives_the_same_model_bit_for_bit(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch
    from safetensors.torch import load_file

    checkpoints = tmp_path / "ck"
    kill_at = int(np.random.default_rng(7).integers(3, 20))  # a random epoch, fixed by the seed
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))  # the same arithmetic as this process
    child = subprocess.Popen([sys.executable, "-m", "astrobayes"] + _stars_argv(tmp_path / "m", "--checkpoint",
                                                                                str(checkpoints)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 180
        state = checkpoints / "fit01.json"  # replaced atomically: never read half-written
        while time.monotonic() < deadline and child.poll() is None:
            if state.exists() and json.loads(state.read_text())["epoch"] >= kill_at:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGTERM)
        _, err = child.communicate(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    stopped = json.loads(state.read_text())["epoch"]
    assert kill_at <= stopped < 80
    assert err.strip().splitlines() == [
        f"astrobayes train stars: interrupted by SIGTERM after epoch {stopped} of 80; checkpoints kept in "
        f"{checkpoints}; rerun the same command with --resume to continue"]
    assert _entries(tmp_path) == ["ck"]  # no model, no partial model
    assert main(_stars_argv(tmp_path / "m", "--checkpoint", str(checkpoints), "--resume")) == 0
    assert main(_stars_argv(tmp_path / "reference")) == 0  # uninterrupted, no checkpoints
    resumed, reference = load_file(tmp_path / "m.safetensors"), load_file(tmp_path / "reference.safetensors")
    assert resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in reference)
    reports = [json.loads((tmp_path / f"{name}.train.json").read_text()) for name in ("m", "reference")]
    assert reports[0]["metrics"] == reports[1]["metrics"] and reports[0]["training"]["epochs"] == 80
    assert sorted(p.name for p in checkpoints.iterdir()) == ["fit01.e00080.safetensors", "fit01.json"]


def test_checkpoint_options_are_checked_before_any_work(tmp_path, capsys):
    (tmp_path / "stars.toml").write_text("[train]\nepochs = 2\n")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "fit01.json").write_text("{}")
    cases = [(["--resume"], "--resume needs --checkpoint DIR"),
             (["--checkpoint", str(tmp_path)], f"is the model's folder {tmp_path}; give the checkpoints a folder"),
             (["--checkpoint", str(tmp_path / "m.json")], "is the model file"),
             (["--config", str(tmp_path / "stars.toml"), "--checkpoint", str(tmp_path / "stars.toml")],
              "is the configuration"),
             (["--checkpoint", str(tmp_path / "old")], "holds the checkpoints of an earlier run; pass --resume"),
             (["--checkpoint", str(tmp_path / "none"), "--resume"], "checkpoint folder"),
             # a name no file system takes (lone surrogates) was a raw UnicodeEncodeError
             (["--checkpoint", str(tmp_path / "\uda3c\udd49")], "cannot be a folder name on this system"),
             ]
    for extra, message in cases:
        assert main(_stars_argv(tmp_path / "m", *extra)) == 2
        assert message in capsys.readouterr().err
    assert _entries(tmp_path) == ["old", "stars.toml"]


# ------------------------------------------------------------------ never write over an input
def test_train_outputs_never_write_over_the_configuration_or_shipped_data(tmp_path, monkeypatch, capsys):
    from astrobayes.recipes.run import SHIPPED_DATA, _check_not_inputs

    config = tmp_path / "stars.toml"
    config.write_text(default_config("stars"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "sn").mkdir()
    (tmp_path / "models" / "sn" / "sn.toml").write_text(default_config("supernovae"))
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "m.json").symlink_to(config)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cases = [  # (domain, --config, --output, what the message says)
        ("stars", "stars.toml", "stars.toml", "--output 'stars.toml' is the configuration 'stars.toml'"),
        ("stars", "stars.toml", "./models/../stars.toml", "is the configuration"),
        ("stars", "stars.toml", "alias/stars.toml", "is the configuration"),
        ("stars", "~/stars.toml", "~/stars.toml", "is the configuration"),
        ("stars", "stars.toml", "m", "--output's file 'm.json' is the configuration"),  # m.json links to it
        ("supernovae", "models/sn/sn.toml", "models/sn", "is a folder that holds the configuration"),
        ("stars", None, str(SHIPPED_DATA / "supernovae" / "spcc_des_subset.ecsv.gz"), "shipped data"),
    ]
    for domain, cfg, output, said in cases:
        argv = ["train", domain, "--output", output, "--overwrite"] + (["--config", cfg] if cfg else [])
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert said in err and "refusing to write over an input" in err and len(err.splitlines()) == 1, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert main(["train", "stars", "--output", "."]) == 2 and "does not name the model" in capsys.readouterr().err
    _check_not_inputs(tmp_path / "stars", config)  # a model beside its configuration is fine


# ---------------------------------------------------------------------- bounds on configurations (issue 20)
@pytest.mark.parametrize("domain, setting, message", [
    ("clusters", "train.hidden=[100000,100000,100000]", "[train] an MLP of layer widths 1 → (100000, 100000, 100000)"),
    ("clusters", "train.n_components=1000000000", "parameters"),
    ("supernovae", "train.hidden_size=1000000", "[train] RNNEmbedding("),
    ("supernovae", "train.num_layers=1000000000000000000", "more than 5,000 weight tensors"),  # was a hang
    ("galaxies", "train.hidden_features=100000000", "[train] the configured network needs more than"),
    ("galaxies", "train.embedding_dim=1000000000", "[train] CNNEmbedding("),
    ("stars", "train.hidden=[100000,100000]", "parameters (about 160 GB to train)"),
])
def test_absurd_network_sizes_exit_2_before_any_work(domain, setting, message, tmp_path, capsys):
    assert main(["train", domain, "--output", str(tmp_path / "m"), "--set", setting]) == 2
    out, err = capsys.readouterr()
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert out == ""  # refused by the checks: no simulation or training step was logged
    assert _entries(tmp_path) == []


@pytest.mark.parametrize("content, message", [
    ("[train]\nhidden = " + "[" * 2000 + "]" * 2000 + "\n", "nests arrays or tables too deeply"),  # RecursionError
    # 40 arrays inside the [train] table inside the document: 42 levels
    ("[train]\nhidden = " + "[" * 40 + "]" * 40 + "\n", "nests arrays or tables 42 levels deep; the limit is 32"),
    ("[train]\nepochs = " + "9" * 5000 + "\n", "is not valid TOML: Exceeds the limit (4300 digits)"),  # a raw ValueError
    (b"[train]\nepochs = 3\n\xff\n", "is not valid TOML: not UTF-8 text"),
])
def test_config_files_are_read_with_bounds(content, message, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["train", "stars", "--config", str(path), "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1, err


def test_oversized_config_file_and_set_values_are_refused(tmp_path, capsys, monkeypatch):
    from astrobayes.core import limits

    path = tmp_path / "big.toml"
    path.write_text("# padding\n" * 200)
    monkeypatch.setattr(limits, "MAX_TOML_BYTES", 1000)
    assert main(["train", "stars", "--config", str(path), "--output", str(tmp_path / "m")]) == 2
    assert "above the 1,000-byte limit for a configuration" in capsys.readouterr().err
    # --set: a 5000-digit number is text (then refused by type), deep nesting a one-line refusal
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--set", "train.epochs=" + "9" * 5000]) == 2
    assert "[train] epochs must be an integer, got '9999" in capsys.readouterr().err
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--set",
                 "train.hidden=" + "[" * 3000 + "]" * 3000]) == 2
    assert "--set train.hidden: the value nests arrays or tables too deeply" in capsys.readouterr().err


def test_train_refusals_naming_odd_paths_stay_on_one_line(tmp_path, capsys):
    # found by tests/fuzz/test_fuzz_cli_options.py: a carriage return in --config split the message in two
    assert main(["train", "stars", "--config", "0\r", "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_integer_too_large_for_a_float_is_a_config_error(tmp_path, capsys):
    # found by tests/fuzz/test_fuzz_config.py: math.isfinite(10**308) raised a raw OverflowError
    assert main(["train", "stars", "--output", str(tmp_path / "m"), "--set",
                 f"train.log_mass_range=[0, {'9' * 309}]"]) == 2
    err = capsys.readouterr().err  # the range is optional ("none" is allowed), so the message names the whole list
    assert "[train] log_mass_range" in err and "must be a list of numbers" in err


def test_an_array_where_a_quantity_belongs_is_a_config_error(tmp_path, capsys):
    # found by tests/fuzz/test_fuzz_config.py: astropy read "[1, 2] Mpc" as an array, float() of it a raw TypeError
    assert main(["train", "clusters", "--output", str(tmp_path / "m"), "--set", 'simulate.aperture="[1, 2] Mpc"']) == 2
    assert "[simulate] aperture must be a single quantity" in capsys.readouterr().err
    assert main(["train", "supernovae", "--output", str(tmp_path / "m"), "--set", 'data.test_fraction="[1, 2]"']) == 2
    assert "[data] test_fraction must be a single quantity" in capsys.readouterr().err
