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
