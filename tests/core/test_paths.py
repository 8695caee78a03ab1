"""check_not_input: an output that is an input under another name is refused; other paths are not."""
import os

import pytest

from astrobayes.core.paths import SOURCES_KEY, check_not_input, read_sources, remember_sources


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "cat.ecsv"
    path.write_text("precious\n")
    return path


def _refused(output, inputs, **kwargs):
    with pytest.raises(ValueError, match="refusing to write over an input") as info:
        check_not_input(output, inputs, **kwargs)
    return str(info.value)


def test_the_same_path_and_a_relative_spelling(catalog, monkeypatch):
    message = _refused(catalog, [catalog])
    assert str(catalog) in message
    monkeypatch.chdir(catalog.parent.parent)
    message = _refused("./data/x/../cat.ecsv", [catalog], argument="--output", what="input catalogue")
    assert "--output './data/x/../cat.ecsv' is the input catalogue" in message and str(catalog) in message
    _refused(catalog, ["data/./cat.ecsv"])


def test_symlinked_file_and_symlinked_folder(catalog, tmp_path):
    link = tmp_path / "link.ecsv"
    link.symlink_to(catalog)
    _refused(link, [catalog])
    _refused(catalog, [link])
    folder_link = tmp_path / "alias"
    folder_link.symlink_to(catalog.parent, target_is_directory=True)
    _refused(folder_link / "cat.ecsv", [catalog])
    # an output that does not exist yet, in a symlinked folder, is still compared by where it would land
    sidecar = catalog.parent / "model.prior.json"
    _refused(folder_link / "model.prior.json", [sidecar])
    check_not_input(folder_link / "other.ecsv", [catalog, sidecar])


def test_hard_link(catalog, tmp_path):
    twin = tmp_path / "twin.ecsv"
    os.link(catalog, twin)
    assert _refused(twin, [catalog]).startswith(f"output {str(twin)!r} is the input")


def test_home_is_expanded(catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(catalog.parent))
    _refused("~/cat.ecsv", [catalog])
    _refused(catalog, ["~/cat.ecsv"])
    check_not_input("~/new.ecsv", [catalog])


def test_folders(catalog, tmp_path):
    # an output folder replaced as a whole must not hold an input
    assert "is a folder that holds" in _refused(catalog.parent, [catalog])
    # an existing file inside an input folder (e.g. a folder of SNANA files) is refused; a new one is not
    other = catalog.parent / "other.DAT"
    other.write_text("x")
    assert "existing file in the input folder" in _refused(other, [catalog.parent])
    check_not_input(catalog.parent / "new.ecsv", [catalog.parent])


def test_unrelated_paths_pass(catalog, tmp_path):
    check_not_input(tmp_path / "out.ecsv", [catalog, None, tmp_path / "missing.json"])
    check_not_input(tmp_path / "data" / "cat.ecsv.bak", [catalog])
    check_not_input(tmp_path / "out.ecsv", [])


def test_sources_recorded_in_meta(catalog, monkeypatch):
    monkeypatch.chdir(catalog.parent)
    meta = remember_sources({"other": 1}, ["cat.ecsv"])
    assert meta[SOURCES_KEY] == [str(catalog.resolve())] and meta["other"] == 1
    assert read_sources(meta) == [str(catalog.resolve())]
    assert read_sources({}) == [] and read_sources(None) == [] and read_sources({SOURCES_KEY: 3}) == []
    _refused(catalog, read_sources(meta))
