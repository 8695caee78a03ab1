import json

import numpy as np
import pytest

import astrobayes
from astrobayes.core import ModelFileError


@pytest.fixture(scope="module")
def saved_regressor(tmp_path_factory):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    reg = astrobayes.Regressor(hidden=(8,))
    reg.fit(x, x[:, :1] * 2, epochs=3, progress=False)
    path = tmp_path_factory.mktemp("model") / "reg"
    reg.save(path)
    return reg, path, x


def test_files_are_safetensors_plus_json(saved_regressor):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    assert header["format"] == "astrobayes-model" and header["format_version"] == 1
    assert header["class"] == "Regressor"
    assert set(header["standardization"]) == {"features.x_scaler", "y_scaler"}
    assert path.with_suffix(".safetensors").read_bytes()[:8]  # safetensors header length prefix
    assert b"pickle" not in path.with_suffix(".safetensors").read_bytes()
    # The real check: safetensors itself reads the file, with our format tag and
    # exactly the network's tensors in it.
    from safetensors import safe_open

    reg = saved_regressor[0]
    with safe_open(str(path.with_suffix(".safetensors")), framework="pt") as handle:
        assert handle.metadata() == {"format": "astrobayes-model", "class": "Regressor"}
        assert set(handle.keys()) == set(reg.network.state_dict())


def test_load_accepts_stem_or_either_file(saved_regressor):
    reg, path, x = saved_regressor
    for name in (path, str(path) + ".json", str(path) + ".safetensors"):
        loaded = astrobayes.load(name)
        assert np.array_equal(loaded.predict(x).mean, reg.predict(x).mean)


def test_tampered_weights_are_detected(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    target = tmp_path / "reg"
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"reg{suffix}").write_bytes(path.with_suffix(suffix).read_bytes())
    weights = bytearray(target.with_suffix(".safetensors").read_bytes())
    weights[-3] ^= 0xFF
    target.with_suffix(".safetensors").write_bytes(bytes(weights))
    with pytest.raises(ModelFileError, match="checksum"):
        astrobayes.load(target)


def test_truncated_and_foreign_files(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    truncated = path.with_suffix(".safetensors").read_bytes()[:40]
    (tmp_path / "t.safetensors").write_bytes(truncated)
    import hashlib

    header_t = dict(header, weights_sha256=hashlib.sha256(truncated).hexdigest())
    (tmp_path / "t.json").write_text(json.dumps(header_t))
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        astrobayes.load(tmp_path / "t")

    (tmp_path / "f.json").write_text('{"hello": 1}')
    (tmp_path / "f.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelFileError, match="not an astrobayes model"):
        astrobayes.load(tmp_path / "f")

    (tmp_path / "g.json").write_text("\x80not json")
    (tmp_path / "g.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        astrobayes.load(tmp_path / "g")

    with pytest.raises(FileNotFoundError, match="no astrobayes model"):
        astrobayes.load(tmp_path / "missing")


def test_unknown_class_and_newer_format(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    (tmp_path / "u.safetensors").write_bytes(path.with_suffix(".safetensors").read_bytes())
    (tmp_path / "u.json").write_text(json.dumps(dict(header, **{"class": "os.system"})))
    with pytest.raises(ModelFileError, match="unknown estimator class 'os.system'"):
        astrobayes.load(tmp_path / "u")
    (tmp_path / "u.json").write_text(json.dumps(dict(header, format_version=99)))
    with pytest.raises(ModelFileError, match="upgrade astrobayes"):
        astrobayes.load(tmp_path / "u")


def test_architecture_mismatch_is_a_model_file_error(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    header["config"]["hidden"] = [16]
    (tmp_path / "m.safetensors").write_bytes(path.with_suffix(".safetensors").read_bytes())
    (tmp_path / "m.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match="could not be rebuilt"):
        astrobayes.load(tmp_path / "m")


def test_class_specific_load_checks_type(saved_regressor):
    _, path, _ = saved_regressor
    assert isinstance(astrobayes.Regressor.load(path), astrobayes.Regressor)


def test_model_trained_without_validation_saves_and_loads(tmp_path):
    # best_val_loss is NaN without a validation split; strict JSON has no NaN.
    x = np.random.default_rng(0).normal(size=(50, 1))
    reg = astrobayes.Regressor(hidden=(4,))
    reg.fit(x, x, epochs=2, validation_fraction=0.0, progress=False)
    reg.save(tmp_path / "noval")
    loaded = astrobayes.load(tmp_path / "noval")
    assert np.isnan(loaded.history.best_val_loss)
    assert loaded.history.train_loss == reg.history.train_loss


def test_save_refuses_the_files_a_model_was_loaded_from(saved_regressor, tmp_path):
    import shutil

    _, path, x = saved_regressor
    for suffix in (".json", ".safetensors"):
        shutil.copy(path.with_suffix(suffix), tmp_path / f"reg{suffix}")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    loaded = astrobayes.load(tmp_path / "reg.json")
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    for target in (tmp_path / "reg", tmp_path / "reg.safetensors", tmp_path / "alias" / "reg"):
        with pytest.raises(ValueError, match="is the model file this model was loaded from"):
            loaded.save(target)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    loaded.save(tmp_path / "reg_copy")  # under a new path it saves, and the copy loads and saves anywhere else
    np.testing.assert_array_equal(astrobayes.load(tmp_path / "reg_copy").predict(x).mean, loaded.predict(x).mean)


# ---------------------------------------------------------------------- bounds (issue 20; found by tests/fuzz)
def _copy_model(source, folder, name="h", header=None, header_text=None):
    (folder / f"{name}.safetensors").write_bytes(source.with_suffix(".safetensors").read_bytes())
    text = header_text if header_text is not None else json.dumps(header)
    (folder / f"{name}.json").write_text(text)
    return folder / name


def test_deeply_nested_header_is_a_model_file_error_not_a_recursion_error(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    deep = "[" * 100_000 + "]" * 100_000  # json.loads raised a raw RecursionError on this
    stem = _copy_model(path, tmp_path, header_text=json.dumps(dict(header, history="@")).replace('"@"', deep))
    with pytest.raises(ModelFileError, match=r"h\.json .*nests lists/objects 100001 levels deep; the limit is 32"):
        astrobayes.load(stem)
    # brackets inside strings are text, not nesting
    stem = _copy_model(path, tmp_path, "s", dict(header, note="[[[[" * 50))
    assert isinstance(astrobayes.load(stem), astrobayes.Regressor)


def test_numbers_python_cannot_hold_name_the_file(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    text = json.dumps(header)
    cases = {
        "digits": text.replace('"format_version": 1', '"format_version": ' + "9" * 5000),  # int() digit limit
        "infinite": json.dumps(dict(header, config=dict(header["config"], hidden=[1e400]))),  # int(inf)
        "huge": text.replace('"dropout": 0.0', '"dropout": 1' + "0" * 400),  # float(10**400)
    }
    for name, content in cases.items():
        stem = _copy_model(path, tmp_path, name, header_text=content)
        with pytest.raises(ModelFileError, match=f"{name}.json"):
            astrobayes.load(stem)


def test_member_errors_of_an_ensemble_name_the_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2))
    ensemble = astrobayes.DeepEnsemble(astrobayes.Regressor(hidden=(3,)), n_members=2)
    ensemble.fit(x, x[:, :1], epochs=1, progress=False)
    ensemble.save(tmp_path / "ens")
    header = json.loads((tmp_path / "ens.json").read_text())
    header["config"]["estimator"]["class"] = None  # was "unknown estimator class None", no file named
    (tmp_path / "ens.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match=r"ens\.json .*unknown estimator class None"):
        astrobayes.load(tmp_path / "ens")


def test_header_asking_for_a_larger_network_than_its_weights_is_refused_before_building(saved_regressor, tmp_path):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    header["config"]["hidden"] = [20_000, 20_000]  # 4·10⁸ weights (1.6 GB): under the global limit, not in the file
    stem = _copy_model(path, tmp_path, header=header)
    with pytest.raises(ModelFileError, match=r"h\.json \(Regressor\) needs more than .* the weights file holds only"):
        astrobayes.load(stem)  # refused from the header, before the 1.6 GB are allocated and initialised
    header["config"]["hidden"] = [10**6, 10**6]  # 10¹² weights: above MAX_PARAMETERS
    stem = _copy_model(path, tmp_path, "g", header)
    with pytest.raises(ModelFileError, match=r"g\.json could not be rebuilt.*1,000,004,000,001 parameters"):
        astrobayes.load(stem)


def test_oversized_json_header_is_refused_before_parsing(saved_regressor, tmp_path, monkeypatch):
    from astrobayes.core import limits

    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    stem = _copy_model(path, tmp_path, header=dict(header, padding="x" * 5000))
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", 4096)
    with pytest.raises(ModelFileError, match=r"h\.json .* bytes, above the 4,096-byte limit"):
        astrobayes.load(stem)


@pytest.mark.parametrize("entry, value, message", [
    ("format_version", True, "format version True"), ("format_version", 0, "format version 0"),
    ("class", ["Regressor"], r"unknown estimator class \['Regressor'\]"),
    ("config", "hidden", "'config' entry must be a dict"), ("weights_sha256", 5, "'weights_sha256' entry must be"),
])
def test_header_entries_of_the_wrong_type(saved_regressor, tmp_path, entry, value, message):
    _, path, _ = saved_regressor
    header = json.loads(path.with_suffix(".json").read_text())
    stem = _copy_model(path, tmp_path, header=dict(header, **{entry: value}))
    with pytest.raises(ModelFileError, match=message):
        astrobayes.load(stem)


@pytest.mark.parametrize("path", ["", ".", "/", ".."])
def test_model_paths_refuse_paths_that_name_no_model(path):
    from astrobayes.core.serialization import model_paths

    with pytest.raises(ValueError, match="names no model; give its path stem"):
        model_paths(path)


def test_tensor_limit_of_a_load_scales_with_the_tensors_stored(tmp_path, monkeypatch):
    # an ensemble of many networks holds more tensors than one network may have: its file still loads
    from astrobayes.core import limits

    x = np.random.default_rng(0).normal(size=(40, 2))
    ensemble = astrobayes.DeepEnsemble(astrobayes.Regressor(hidden=(3,)), n_members=3)
    ensemble.fit(x, x[:, :1], epochs=1, progress=False)
    ensemble.save(tmp_path / "ens")
    monkeypatch.setattr(limits, "MAX_TENSORS", 8)  # below the 27 tensors the ensemble holds (9 per member)
    assert len(astrobayes.load(tmp_path / "ens").members) == 3
    header = json.loads((tmp_path / "ens.json").read_text())
    header["config"]["estimator"]["config"]["hidden"] = [1] * 200  # 200 layers the weights do not hold
    (tmp_path / "ens.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match=r"ens\.json \(DeepEnsemble\) needs more than 62 weight tensors .* 27 tensors"):
        astrobayes.load(tmp_path / "ens")
