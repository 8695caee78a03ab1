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
        assert len(table) == n and table.colnames[0] == key
        assert table.meta["astrobayes"]["domain"] == domain and len(table.meta["astrobayes"]["model_sha256"]) == 64
        assert ("seed" in table.meta["astrobayes"]) == (domain == "galaxies")  # the only one that draws
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
