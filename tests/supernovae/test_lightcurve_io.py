"""Tests of the supernova lightcurve readers and the Lightcurves collection (astrobayes.supernovae.io)."""
import os
import re
import shutil
import tarfile
import warnings

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from astrobayes.supernovae import SPCC_CATALOG, SPCC_SAMPLE, SPCC_TRUTH
from astrobayes.supernovae.io import (Lightcurves, class_of_type, read_lightcurve_table, read_lightcurves,
                                      write_lightcurves)
from astrobayes.supernovae.snana import read_snana, read_truth_key
from astrobayes.supernovae.simulate import simulate_lightcurves

SAMPLE_FILES = sorted(SPCC_SAMPLE.glob("*.DAT"))
ONE_FILE = SPCC_SAMPLE / "DES_SN185754.DAT"


# ---------------------------------------------------------------------- helpers
def _header_value(text, key):
    """The first value of ``KEY:`` in an SNANA file, parsed independently of the package."""
    match = re.search(rf"^\s*{re.escape(key)}:\s*(\S+)", text, flags=re.MULTILINE)
    return None if match is None else match.group(1)


def _obs_rows(text):
    varlist = re.search(r"^\s*VARLIST:(.*)$", text, flags=re.MULTILINE).group(1).split()
    rows = [line.split(":", 1)[1].split() for line in text.splitlines() if line.strip().startswith("OBS:")]
    return varlist, rows


def _truth_rows():
    lines = [line.split() for line in SPCC_TRUTH.read_text().splitlines() if line.strip() and not line.startswith("#")]
    header, body = lines[0], lines[1:]
    return [dict(zip(header, row)) for row in body]


def _frame(**overrides):
    """A small long-format DataFrame with non-standard column names (two objects, unsorted times)."""
    frame = pd.DataFrame({"snid": ["a", "a", "a", "b", "b"], "mjd": [12.0, 10.0, 11.0, 5.0, 3.0],
                          "flt": ["g", "r", "g", "r", "g"], "f": [1.0, 2.0, 3.0, 4.0, 5.0],
                          "e": [0.1, 0.2, 0.3, 0.4, 0.5]})
    for name, value in overrides.items():
        frame[name] = value
    return frame


_NAMES = dict(object_id="snid", time="mjd", band="flt", flux="f", flux_err="e")


def _read_frame(frame, **kw):
    return read_lightcurve_table(frame, **_NAMES, **kw)


@pytest.fixture(scope="module")
def sample():
    return read_snana(SPCC_SAMPLE)


@pytest.fixture(scope="module")
def sample_truth():
    return read_snana(SPCC_SAMPLE, truth=SPCC_TRUTH)


@pytest.fixture(scope="module")
def catalog():
    return read_lightcurves(SPCC_CATALOG)


def _assert_same_collection(a, b, skip_meta=()):
    assert a.bands == b.bands
    assert a.observations.colnames == b.observations.colnames
    for name in a.observations.colnames:
        assert np.array_equal(np.asarray(a.observations[name]), np.asarray(b.observations[name])), name
    assert a.observations["time"].unit == b.observations["time"].unit
    assert [c for c in a.meta.colnames if c not in skip_meta] == [c for c in b.meta.colnames if c not in skip_meta]
    for name in a.meta.colnames:
        if name in skip_meta:
            continue
        x, y = np.asarray(a.meta[name]), np.asarray(b.meta[name])
        assert x.dtype.kind == y.dtype.kind, name
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), name
        else:
            assert np.array_equal(x, y), name


# ---------------------------------------------------------------------- SNANA files
def test_sample_has_twelve_objects_with_griz(sample):
    assert len(SAMPLE_FILES) == 12
    assert len(sample) == 12
    assert sample.bands == ("g", "r", "i", "z")
    assert set(np.asarray(sample.observations["band"])) == {"g", "r", "i", "z"}
    assert sample.observations["time"].unit == u.day
    assert sample.observations.meta["flux_zeropoint_mag"] == 27.5
    expected_ids = sorted(_header_value(p.read_text(), "SNID") for p in SAMPLE_FILES)
    assert sorted(sample.ids.tolist()) == expected_ids


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_nobs_header_equals_number_of_observations(sample, path):
    text = path.read_text()
    snid, nobs = _header_value(text, "SNID"), int(_header_value(text, "NOBS"))
    row = sample.meta[sample.ids.tolist().index(snid)]
    assert row["n_obs"] == nobs == len(sample[snid])
    # the header's REDSHIFT_FINAL value (z +- err) and SNTYPE
    z, _, z_err = re.search(r"REDSHIFT_FINAL:\s*(\S+)\s*(\+-)\s*(\S+)", text).group(1, 2, 3)
    assert row["redshift"] == pytest.approx(float(z), abs=0, rel=1e-12)
    assert row["redshift_err"] == pytest.approx(float(z_err), rel=1e-12)
    assert row["sntype"] == int(_header_value(text, "SNTYPE"))
    assert bool(row["spectroscopic"]) == (int(_header_value(text, "SNTYPE")) != -9)


def test_one_file_against_direct_text_parse(sample):
    text = ONE_FILE.read_text()
    varlist, rows = _obs_rows(text)
    col = {name: varlist.index(name) for name in ("MJD", "FLT", "FLUXCAL", "FLUXCALERR")}
    mjd = np.array([float(r[col["MJD"]]) for r in rows])
    order = np.argsort(mjd, kind="stable")
    lc = sample["185754"]
    assert np.array_equal(lc["time"].value, mjd[order])
    assert lc["band"].tolist() == [rows[i][col["FLT"]] for i in order]
    assert np.array_equal(np.asarray(lc["flux"]), np.array([float(rows[i][col["FLUXCAL"]]) for i in order]))
    assert np.array_equal(np.asarray(lc["flux_err"]), np.array([float(rows[i][col["FLUXCALERR"]]) for i in order]))
    row = sample.meta[sample.ids.tolist().index("185754")]
    assert row["redshift"] == 0.66133 and row["redshift_err"] == 0.01120  # REDSHIFT_FINAL: 0.66133 +- 0.01120
    assert row["host_photoz"] == 0.6613 and row["host_photoz_err"] == 0.0112
    assert row["mwebv"] == 0.0713
    assert row["type_code"] == -9 and row["label"] == ""


def test_simulation_truth_is_not_read(sample):
    assert "SIM_MAG" in ONE_FILE.read_text()  # the file does carry the truth
    for name in sample.meta.colnames:
        assert not name.lower().startswith(("sim", "true")), name
    assert sample.observations.colnames == ["object_id", "time", "band", "flux", "flux_err"]
    # the redshift is REDSHIFT_FINAL (0.66133), not SIM_REDSHIFT (0.6477)
    assert sample.meta["redshift"][sample.ids.tolist().index("185754")] != pytest.approx(0.6477, abs=1e-3)


def test_truth_key_fills_in_photometric_types(sample, sample_truth):
    truth = {row["SNID"]: row for row in _truth_rows()}
    assert set(truth) == set(sample.ids.tolist())
    n_photometric = 0
    for row_before, row in zip(sample.meta, sample_truth.meta):
        assert row["object_id"] == row_before["object_id"]
        key = truth[row["object_id"]]
        if row_before["sntype"] == -9:
            n_photometric += 1
            assert row_before["type_code"] == -9 and row_before["label"] == ""
            assert row["type_code"] == int(key["TRUE_TYPE"])
        else:
            assert row["type_code"] == row_before["type_code"] == int(key["SNTYPE_OBS"])
        assert row["label"] == key["CLASS3"]
    assert n_photometric == 6
    # the observations do not change with the truth key
    for name in sample.observations.colnames:
        assert np.array_equal(np.asarray(sample.observations[name]), np.asarray(sample_truth.observations[name]))


def test_read_truth_key():
    key = read_truth_key(SPCC_TRUTH)
    assert len(key) == 12 and {"object_id", "true_type", "class3", "file"} <= set(key.colnames)
    assert key["object_id"].dtype.kind == "U"
    assert dict(zip(key["object_id"], key["true_type"]))["185754"] == 22
    assert class_of_type(key["true_type"]).tolist() == key["class3"].tolist()


def test_truth_key_with_repeated_snid(tmp_path):
    lines = SPCC_TRUTH.read_text().splitlines()
    (tmp_path / "KEY").write_text("\n".join(lines + [lines[-1]]))
    with pytest.raises(ValueError, match="185754|807189"):
        read_truth_key(tmp_path / "KEY")


def test_truth_key_missing_an_object(tmp_path):
    lines = [line for line in SPCC_TRUTH.read_text().splitlines() if not line.startswith("185754 ")]
    (tmp_path / "KEY").write_text("\n".join(lines))
    with pytest.raises(ValueError, match="185754"):
        read_snana(SPCC_SAMPLE, truth=tmp_path / "KEY")


def test_truth_key_missing_message_lists_plain_ids(tmp_path):
    lines = [line for line in SPCC_TRUTH.read_text().splitlines() if not line.startswith("185754 ")]
    (tmp_path / "KEY").write_text("\n".join(lines))
    with pytest.raises(ValueError) as info:
        read_snana(SPCC_SAMPLE, truth=tmp_path / "KEY")
    assert "['185754']" in str(info.value)


def test_truth_key_of_photometric_objects_only_is_enough(sample):
    key = read_truth_key(SPCC_TRUTH)
    key = key[key["sntype_obs"] == -9]
    lcs = read_snana(SPCC_SAMPLE, truth=key)
    spectroscopic = np.asarray(sample.meta["spectroscopic"])
    assert np.array_equal(np.asarray(lcs.meta["type_code"])[spectroscopic],
                          np.asarray(sample.meta["type_code"])[spectroscopic])


@pytest.mark.parametrize("mode, suffix", [("w:gz", ".tar.gz"), ("w", ".tar")])
def test_tar_archive_equals_folder(sample, tmp_path, mode, suffix):
    archive = tmp_path / f"sample{suffix}"
    with tarfile.open(archive, mode) as tar:
        for path in sorted(SPCC_SAMPLE.iterdir()):
            tar.add(path, arcname=f"SIMGEN_PUBLIC_DES/{path.name}")
    from_tar = read_snana(archive)
    _assert_same_collection(sample, from_tar, skip_meta=("file",))
    assert all(name.startswith(f"{archive.name}:SIMGEN_PUBLIC_DES/DES_SN") for name in from_tar.meta["file"])


def test_list_of_files_and_max_objects(sample):
    two = read_snana([SAMPLE_FILES[3], SAMPLE_FILES[0]])
    assert two.ids.tolist() == [_header_value(SAMPLE_FILES[3].read_text(), "SNID"),
                                _header_value(SAMPLE_FILES[0].read_text(), "SNID")]
    for oid in two.ids:
        assert np.array_equal(np.asarray(two[oid]["flux"]), np.asarray(sample[oid]["flux"]))
    assert len(read_snana(SPCC_SAMPLE, max_objects=3)) == 3


def test_same_snid_in_two_files(tmp_path):
    folder = tmp_path / "dup"
    folder.mkdir()
    shutil.copy(ONE_FILE, folder / "A.DAT")
    shutil.copy(ONE_FILE, folder / "B.DAT")
    with pytest.raises(ValueError, match=r"185754.*A\.DAT.*B\.DAT"):
        read_snana(folder)


def _broken_file(tmp_path, how):
    lines = ONE_FILE.read_text().splitlines()
    varlist = next(i for i, line in enumerate(lines) if line.startswith("VARLIST"))
    first_obs = next(i for i, line in enumerate(lines) if line.startswith("OBS"))
    if how == "obs_before_varlist":
        lines = lines[:varlist] + [lines[first_obs]] + lines[varlist:]
    elif how == "extra_field":
        lines[first_obs + 2] += "  99.0"
    elif how == "missing_field":
        lines[first_obs + 2] = lines[first_obs + 2].rsplit(None, 1)[0]
    elif how == "nobs_mismatch":
        del lines[first_obs + 5]
    elif how == "no_varlist":
        lines = [line for line in lines if not line.startswith(("VARLIST", "OBS"))]
    path = tmp_path / f"BROKEN_{how}.DAT"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("how, message", [("obs_before_varlist", "before the VARLIST"),
                                          ("extra_field", "10 values but VARLIST names 9"),
                                          ("missing_field", "8 values but VARLIST names 9"),
                                          ("nobs_mismatch", "NOBS says 79 but the file has 78"),
                                          ("no_varlist", "VARLIST")])
def test_malformed_file_names_the_file(tmp_path, how, message):
    path = _broken_file(tmp_path, how)
    with pytest.raises(ValueError, match=message) as info:
        read_snana(path)
    assert path.name in str(info.value)
    # also when the bad file sits in a folder among good ones
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(SAMPLE_FILES[1], folder)
    shutil.copy(path, folder)
    with pytest.raises(ValueError, match=re.escape(path.name)):
        read_snana(folder)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_snana(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        read_snana([ONE_FILE, tmp_path / "nowhere.DAT"])
    (tmp_path / "README.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="no files matching"):
        read_snana(tmp_path)
    with pytest.raises(TypeError):
        read_snana(42)


def test_unknown_redshift_is_nan(tmp_path):
    text = re.sub(r"REDSHIFT_FINAL:.*", "REDSHIFT_FINAL:  -9.00000 +- 9.00000  (CMB)", ONE_FILE.read_text())
    (tmp_path / "X.DAT").write_text(text)
    lcs = read_snana(tmp_path / "X.DAT")
    assert np.isnan(lcs.meta["redshift"][0]) and np.isnan(lcs.meta["redshift_err"][0])


def test_snana_unknown_band_with_bands_given():
    with pytest.raises(ValueError, match=r"unknown band\(s\) \['z'\]"):
        read_snana(SPCC_SAMPLE, bands=("g", "r", "i"))
    assert read_snana(SPCC_SAMPLE, bands="zirg", max_objects=1).bands == ("z", "i", "r", "g")


def test_snana_negative_flux_error(tmp_path):
    lines = ONE_FILE.read_text().splitlines()
    obs = [i for i, line in enumerate(lines) if line.startswith("OBS")]
    for i, value in zip(obs[:3], ("-1.0", "0.0", "-3.5")):
        fields = lines[i].split()
        fields[5] = value  # OBS: MJD FLT FIELD FLUXCAL FLUXCALERR ...
        lines[i] = "  ".join(fields)
    path = tmp_path / "NEG.DAT"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match="'flux_err': 3 row"):
        read_snana(path)
    with pytest.warns(UserWarning, match="dropped 3 invalid"):
        lcs = read_snana(path, drop_invalid=True)
    assert len(lcs.observations) == 79 - 3
    assert (np.asarray(lcs.observations["flux_err"]) > 0).all()


# ---------------------------------------------------------------------- bad input to the collection
def test_unknown_band_names_the_band():
    with pytest.raises(ValueError, match=r"unknown band\(s\) \['r'\]"):
        _read_frame(_frame(), bands=("g",))
    with pytest.raises(ValueError, match=r"unknown band\(s\) \['Y'\]"):
        _read_frame(_frame(flt=["g", "r", "g", "Y", "g"]), bands=("g", "r", "i"))
    with pytest.raises(ValueError, match="repeated"):
        _read_frame(_frame(), bands=("g", "r", "g"))
    # the allowed bands set the channel order, present or not
    assert _read_frame(_frame(), bands=("r", "i", "g")).bands == ("r", "i", "g")
    assert _read_frame(_frame()).bands == ("g", "r")


@pytest.mark.parametrize("bad", [0.0, -0.2, np.nan, np.inf])
def test_non_positive_flux_error(bad):
    frame = _frame(e=[0.1, bad, 0.3, bad, 0.5])
    with pytest.raises(ValueError, match="'flux_err': 2 row"):
        _read_frame(frame)
    with pytest.warns(UserWarning, match="dropped 2 invalid observation"):
        lcs = _read_frame(frame, drop_invalid=True)
    assert len(lcs.observations) == 3
    assert np.asarray(lcs.observations["flux_err"]).tolist() == [0.3, 0.1, 0.5]  # a: t=11, 12; b: t=3
    assert lcs.meta["n_obs"].tolist() == [2, 1]


@pytest.mark.parametrize("column, name", [("f", "flux"), ("mjd", "time")])
def test_nan_flux_or_time(column, name):
    values = _frame()[column].to_numpy().copy()
    values[2] = np.nan
    with pytest.raises(ValueError, match=f"column '{name}': 1 row"):
        _read_frame(_frame(**{column: values}))
    with pytest.warns(UserWarning, match="dropped 1 invalid"):
        lcs = _read_frame(_frame(**{column: values}), drop_invalid=True)
    assert len(lcs.observations) == 4 and np.isfinite(np.asarray(lcs.observations[name])).all()


def test_object_left_empty_by_dropping():
    frame = _frame(e=[0.1, 0.2, 0.3, -1.0, -1.0])  # every point of b is bad
    with pytest.warns(UserWarning) as record:
        lcs = _read_frame(frame, drop_invalid=True)
    assert lcs.ids.tolist() == ["a"]
    assert any("dropped 2 invalid" in str(w.message) for w in record)
    # with a meta table the vanished object is named
    meta = pd.DataFrame({"snid": ["a", "b"], "redshift": [0.1, 0.2]})
    with pytest.warns(UserWarning) as record:
        lcs = _read_frame(frame, meta=meta, drop_invalid=True)
    assert lcs.ids.tolist() == ["a"] and lcs.meta["redshift"].tolist() == [0.1]
    assert any("without valid observations" in str(w.message) and "'b'" in str(w.message) for w in record)


def test_empty_lightcurve_in_meta():
    meta = pd.DataFrame({"snid": ["a", "b", "c"], "redshift": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match=r"no \(valid\) observations.*'c'"):
        _read_frame(_frame(), meta=meta)
    with pytest.warns(UserWarning, match=r"dropped 1 object.*'c'"):
        lcs = _read_frame(_frame(), meta=meta, drop_invalid=True)
    assert lcs.ids.tolist() == ["a", "b"]
    assert lcs.meta["redshift"].tolist() == [0.1, 0.2]


def test_no_observations_at_all():
    with pytest.raises(ValueError, match="no observations"):
        _read_frame(_frame().iloc[:0])


def test_observation_of_an_object_missing_from_meta():
    meta = pd.DataFrame({"snid": ["a"], "redshift": [0.1]})
    with pytest.raises(ValueError, match=r"missing from meta.*'b'"):
        _read_frame(_frame(), meta=meta)


def test_duplicated_ids_in_meta():
    meta = pd.DataFrame({"snid": ["a", "b", "a"], "redshift": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match=r"'object_id'.*repeats.*'a'"):
        _read_frame(_frame(), meta=meta)
    with pytest.raises(ValueError, match="repeats"):  # dropping invalid rows does not resolve an ambiguity
        _read_frame(_frame(), meta=meta, drop_invalid=True)


def test_unsorted_times_are_sorted_with_their_flux():
    frame = _frame()
    lcs = _read_frame(frame)
    assert lcs.ids.tolist() == ["a", "b"]  # first appearance
    for oid in ("a", "b"):
        lc = lcs[oid]
        t = lc["time"].value
        assert (np.diff(t) >= 0).all()
        rows = frame[frame["snid"] == oid].sort_values("mjd")
        assert t.tolist() == rows["mjd"].tolist()
        assert np.asarray(lc["flux"]).tolist() == rows["f"].tolist()
        assert np.asarray(lc["flux_err"]).tolist() == rows["e"].tolist()
        assert lc["band"].tolist() == rows["flt"].tolist()


def test_sorting_is_stable_and_follows_meta_order():
    frame = pd.DataFrame({"snid": ["x", "y", "y", "y", "x"], "mjd": [2.0, 7.0, 5.0, 5.0, 1.0],
                          "flt": ["g", "i", "z", "g", "r"], "f": [1.0, 2.0, 3.0, 4.0, 5.0], "e": [1.0] * 5})
    meta = pd.DataFrame({"snid": ["y", "x"], "redshift": [0.5, 0.4]})
    lcs = _read_frame(frame, meta=meta)
    assert lcs.ids.tolist() == ["y", "x"]
    assert lcs.observations["object_id"].tolist() == ["y", "y", "y", "x", "x"]
    assert lcs["y"]["band"].tolist() == ["z", "g", "i"]  # equal times keep their input order
    assert np.asarray(lcs["x"]["flux"]).tolist() == [5.0, 1.0]
    assert lcs.meta["n_obs"].tolist() == [3, 2]


def test_default_meta_columns():
    lcs = _read_frame(_frame())
    assert np.isnan(lcs.meta["redshift"]).all() and np.isnan(lcs.meta["redshift_err"]).all()
    assert lcs.meta["type_code"].tolist() == [-9, -9]
    assert lcs.labels.tolist() == ["", ""]


def test_constructor_checks():
    with pytest.raises(TypeError):
        Lightcurves(_frame())
    with pytest.raises(ValueError, match="flux_err"):
        Lightcurves(Table({"object_id": ["a"], "time": [1.0], "band": ["g"], "flux": [1.0]}))
    bad_time = Table({"object_id": ["a"], "time": [1.0] * u.m, "band": ["g"], "flux": [1.0], "flux_err": [1.0]})
    with pytest.raises(ValueError, match="'time'"):
        Lightcurves(bad_time)
    hours = Table({"object_id": ["a", "a"], "time": [48.0, 12.0] * u.h, "band": ["g", "g"], "flux": [1.0, 2.0],
                   "flux_err": [1.0, 1.0]})
    lc = Lightcurves(hours)
    assert lc.observations["time"].unit == u.day
    assert lc["a"]["time"].value.tolist() == [0.5, 2.0]
    assert np.asarray(lc["a"]["flux"]).tolist() == [2.0, 1.0]
    with pytest.raises(KeyError):
        lc["nope"]


# ---------------------------------------------------------------------- long tables
def test_read_from_pandas_with_renames():
    meta = pd.DataFrame({"snid": ["b", "a"], "redshift": [0.2, 0.1], "type_code": [22, 1], "label": ["II", "Ia"]})
    lcs = _read_frame(_frame(), meta=meta)
    assert lcs.observations.colnames == ["object_id", "time", "band", "flux", "flux_err"]
    assert lcs.ids.tolist() == ["b", "a"]  # the meta order
    assert lcs.labels.tolist() == ["II", "Ia"]
    assert lcs.meta["redshift"].tolist() == [0.2, 0.1]
    assert lcs.observations["time"].unit == u.day
    assert lcs["a"]["time"].value.tolist() == [10.0, 11.0, 12.0]


def test_integer_ids_become_strings():
    frame = _frame(snid=[303, 303, 303, 7, 7])
    lcs = _read_frame(frame)
    assert lcs.ids.tolist() == ["303", "7"]
    assert len(lcs[303]) == 3 and len(lcs["7"]) == 2


def test_read_csv_with_time_unit(tmp_path):
    path = tmp_path / "lc.csv"
    _frame().to_csv(path, index=False)
    in_days = read_lightcurve_table(path, **_NAMES)
    in_hours = read_lightcurve_table(path, **_NAMES, time_unit="h")
    assert in_hours.observations["time"].unit == u.day
    assert np.allclose(in_hours.observations["time"].value, in_days.observations["time"].value / 24.0, rtol=1e-14)
    assert np.array_equal(np.asarray(in_hours.observations["flux"]), np.asarray(in_days.observations["flux"]))
    with pytest.raises(ValueError, match="not a time"):
        read_lightcurve_table(path, **_NAMES, time_unit="m")


def test_time_column_with_unit_is_converted():
    table = Table.from_pandas(_frame())
    table["mjd"].unit = u.h
    lcs = read_lightcurve_table(table, **_NAMES)
    assert lcs["b"]["time"].value.tolist() == pytest.approx([3.0 / 24, 5.0 / 24])


@pytest.mark.parametrize("argument, name", [("flux_err", "err"), ("time", "MJD"), ("object_id", "id")])
def test_missing_column_is_named(argument, name):
    names = {**_NAMES, argument: name}
    with pytest.raises(ValueError, match=f"'{name}'"):
        read_lightcurve_table(_frame(), **names)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_lightcurve_table("/nonexistent/lc.csv")


def test_empty_label_in_csv_meta_stays_empty(tmp_path):
    pd.DataFrame({"snid": ["a", "b"], "label": ["Ia", ""]}).to_csv(tmp_path / "meta.csv", index=False)
    lcs = read_lightcurve_table(_frame(), **_NAMES, meta=tmp_path / "meta.csv")
    assert lcs.labels.tolist() == ["Ia", ""]


# ---------------------------------------------------------------------- write / read
@pytest.mark.parametrize("name", ["lcs.ecsv", "lcs.ecsv.gz"])
@pytest.mark.parametrize("which", ["simulated", "snana"])
def test_round_trip(tmp_path, name, which, sample_truth):
    lcs = simulate_lightcurves(25, seed=3) if which == "simulated" else sample_truth
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ECSV keeps units: no warning
        obs_path, meta_path = write_lightcurves(lcs, tmp_path / name)
    assert obs_path.exists() and meta_path.exists()
    assert meta_path.name == name.replace(".ecsv", "_meta.ecsv")
    if name.endswith(".gz"):
        assert obs_path.read_bytes()[:2] == b"\x1f\x8b"
    back = read_lightcurves(obs_path)
    _assert_same_collection(lcs, back)
    assert back.labels.tolist() == lcs.labels.tolist()
    assert back.observations.meta["flux_zeropoint_mag"] == 27.5
    assert back.observations.meta["bands"] == list(lcs.bands)
    if which == "simulated":
        assert back.meta.meta["simulation"]["seed"] == lcs.meta.meta["simulation"]["seed"]


def test_round_trip_keeps_band_order(tmp_path):
    lcs = _read_frame(_frame(), bands=("r", "z", "g"))
    write_lightcurves(lcs, tmp_path / "x.ecsv")
    assert read_lightcurves(tmp_path / "x.ecsv").bands == ("r", "z", "g")


def test_round_trip_keeps_unknown_labels(tmp_path, sample):
    assert "" in sample.labels.tolist()
    write_lightcurves(sample, tmp_path / "x.ecsv")
    assert read_lightcurves(tmp_path / "x.ecsv").labels.tolist() == sample.labels.tolist()


def test_write_refuses_to_overwrite(tmp_path, sample_truth):
    path = tmp_path / "lcs.ecsv"
    write_lightcurves(sample_truth, path)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_lightcurves(sample_truth, path)
    path.unlink()  # only the _meta file is left: still refused
    with pytest.raises(FileExistsError, match="lcs_meta.ecsv"):
        write_lightcurves(sample_truth, path)
    small = sample_truth.select([0, 1])
    write_lightcurves(small, path, overwrite=True)
    assert len(read_lightcurves(path)) == 2
    gz = tmp_path / "lcs.ecsv.gz"
    write_lightcurves(small, gz)
    with pytest.raises(FileExistsError):
        write_lightcurves(small, gz)


def test_write_refuses_the_files_it_was_read_from(tmp_path, sample_truth):
    for name in ("lcs.ecsv", "lcs.ecsv.gz"):
        path = tmp_path / name
        write_lightcurves(sample_truth, path)
        originals = {p: p.read_bytes() for p in tmp_path.iterdir()}
        read = read_lightcurves(path)
        meta_file = tmp_path / name.replace("lcs", "lcs_meta")
        # the observations file, its metadata file (as either output), a selection of them, a hard link
        os.link(path, tmp_path / f"twin_{name}")
        for lcs, target in ((read, path), (read, meta_file), (read.select([0, 1]), path),
                            (read.truncate(5.0), tmp_path / f"twin_{name}")):
            with pytest.raises(ValueError, match="the lightcurve file the collection was read from"):
                write_lightcurves(lcs, target, overwrite=True)
        (tmp_path / f"twin_{name}").unlink()
        assert {p: p.read_bytes() for p in tmp_path.iterdir()} == originals
        copy = tmp_path / f"copy_{name}"
        write_lightcurves(read, copy)  # elsewhere is fine; the record of the source stays out of the file
        assert "astrobayes_read_from" not in Table.read(copy, format="ascii.ecsv").meta
        assert len(read_lightcurves(copy)) == len(sample_truth)


def test_write_and_read_errors(tmp_path, sample_truth):
    with pytest.raises(ValueError, match="ecsv"):
        write_lightcurves(sample_truth, tmp_path / "lcs.csv")
    with pytest.raises(TypeError):
        write_lightcurves(sample_truth.observations, tmp_path / "lcs.ecsv")
    write_lightcurves(sample_truth, tmp_path / "lcs.ecsv")
    (tmp_path / "lcs_meta.ecsv").unlink()
    with pytest.raises(FileNotFoundError, match="lcs_meta.ecsv"):
        read_lightcurves(tmp_path / "lcs.ecsv")


# ---------------------------------------------------------------------- the shipped catalog
def test_catalog_contents(catalog):
    assert len(catalog) == 4000
    assert catalog.bands == ("g", "r", "i", "z")
    assert catalog.observations["time"].unit == u.day
    assert (np.asarray(catalog.observations["flux_err"]) > 0).all()
    assert np.isfinite(np.asarray(catalog.observations["flux"])).all()
    assert len(np.unique(catalog.ids)) == 4000
    # the n_obs written in the meta file agrees with the observations file
    raw_meta = Table.read(str(SPCC_CATALOG).replace(".ecsv.gz", "_meta.ecsv.gz"), format="ascii.ecsv")
    ids, counts = np.unique(np.asarray(catalog.observations["object_id"]), return_counts=True)
    assert dict(zip(np.asarray(raw_meta["object_id"]).astype(str).tolist(), raw_meta["n_obs"].tolist())) == dict(
        zip(ids.tolist(), counts.tolist()))
    assert len(catalog.observations) == int(catalog.meta["n_obs"].sum())
    labels, counts = np.unique(catalog.labels, return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist())) == {"II": 2271, "Ia": 1208, "Ibc": 521}
    assert class_of_type(catalog.meta["type_code"]).tolist() == catalog.labels.tolist()
    assert np.isfinite(np.asarray(catalog.meta["redshift"])).all()


def test_catalog_holds_all_spectroscopic_objects(catalog):
    spectroscopic = np.asarray(catalog.meta["spectroscopic"])
    assert spectroscopic.sum() == 1103  # the whole SNPhotCC DES spectroscopic (training) sample
    labels, counts = np.unique(catalog.labels[spectroscopic], return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist())) == {"II": 400, "Ia": 559, "Ibc": 144}
    assert (np.asarray(catalog.meta["type_code"])[spectroscopic] != -9).all()
    assert "1103 spectroscopic" in catalog.observations.meta["source"]


def test_catalog_agrees_with_the_snana_sample(catalog, sample_truth):
    in_catalog = [oid for oid in sample_truth.ids if oid in catalog.ids]
    spectroscopic = sample_truth.ids[np.asarray(sample_truth.meta["spectroscopic"])].tolist()
    assert set(spectroscopic) <= set(in_catalog)  # every spectroscopic object is in the subset
    assert len(in_catalog) >= 6
    for oid in in_catalog:
        a, b = sample_truth[oid], catalog[oid]
        assert len(a) == len(b)
        assert np.allclose(a["time"].value, b["time"].value, rtol=0, atol=1e-3)
        assert a["band"].tolist() == b["band"].tolist()
        assert np.allclose(np.asarray(a["flux"]), np.asarray(b["flux"]), rtol=1e-3)
        assert np.allclose(np.asarray(a["flux_err"]), np.asarray(b["flux_err"]), rtol=1e-3)
        ra, rb = (t.meta[t.ids.tolist().index(oid)] for t in (sample_truth, catalog))
        assert ra["redshift"] == pytest.approx(rb["redshift"], abs=1e-5)
        assert (ra["type_code"], ra["label"], bool(ra["spectroscopic"])) == (
            rb["type_code"], rb["label"], bool(rb["spectroscopic"]))


# ---------------------------------------------------------------------- truncate / select
def _hand_made():
    frame = pd.DataFrame({
        "snid": ["a"] * 5 + ["b"] * 4,
        "mjd": [100.0, 103.0, 110.0, 110.5, 120.0, 50.0, 51.0, 70.0, 80.0],
        "flt": ["g", "r", "g", "r", "g", "g", "g", "r", "r"],
        # a: first S/N > 5 at t = 103; b: no detection
        "f": [1.0, 30.0, 40.0, 20.0, 10.0, 1.0, 2.0, 3.0, 4.0],
        "e": [1.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0]})
    return _read_frame(frame)


def test_truncate_since_first():
    lcs = _hand_made()
    cut = lcs.truncate(10)
    assert cut["a"]["time"].value.tolist() == [100.0, 103.0, 110.0]  # 110 is exactly 10 days in
    assert cut["b"]["time"].value.tolist() == [50.0, 51.0]
    assert cut.meta["n_obs"].tolist() == [3, 2]
    assert np.asarray(cut["a"]["flux"]).tolist() == [1.0, 30.0, 40.0]
    zero = lcs.truncate(0)
    assert zero.meta["n_obs"].tolist() == [1, 1]  # at least one observation per object
    assert len(lcs.truncate(1e4).observations) == len(lcs.observations)
    assert lcs.meta["n_obs"].tolist() == [5, 4]  # the original is untouched


def test_truncate_since_first_detection():
    cut = _hand_made().truncate(7.5, since="first_detection")
    assert cut["a"]["time"].value.tolist() == [100.0, 103.0, 110.0, 110.5]  # up to 103 + 7.5
    assert cut["b"]["time"].value.tolist() == [50.0, 51.0]  # no detection: from the first observation


def test_truncate_real_lightcurves(sample):
    cut = sample.truncate(20)
    offsets, time, *_ = sample.arrays()
    for i, oid in enumerate(sample.ids):
        t = time[offsets[i]:offsets[i + 1]]
        t_cut = cut[oid]["time"].value
        assert 1 <= len(t_cut) and t_cut.max() - t[0] <= 20
        assert len(t_cut) == int((t <= t[0] + 20).sum())


def test_truncate_per_object_days():
    lcs = _hand_made()
    cut = lcs.truncate([3.0, np.inf])  # one number per object; inf keeps a whole lightcurve
    assert cut["a"]["time"].value.tolist() == [100.0, 103.0]
    assert cut["b"]["time"].value.tolist() == [50.0, 51.0, 70.0, 80.0]
    assert len(lcs.truncate(np.inf).observations) == len(lcs.observations)
    with pytest.raises(ValueError, match="one per object"):
        lcs.truncate([3.0, 4.0, 5.0])


@pytest.mark.parametrize("days", [-1.0, np.nan, [1.0, -0.5], [np.nan, 1.0]])
def test_truncate_bad_days(days):
    with pytest.raises(ValueError, match="days"):
        _hand_made().truncate(days)


def test_truncate_bad_since():
    with pytest.raises(ValueError, match="since"):
        _hand_made().truncate(5, since="peak")


def test_select(sample):
    by_position = sample.select([4, 1])
    by_id = sample.select([sample.ids[4], sample.ids[1]])
    mask = np.zeros(len(sample), dtype=bool)
    mask[[1, 4]] = True
    by_mask = sample.select(mask)
    assert by_position.ids.tolist() == by_id.ids.tolist() == [sample.ids[4], sample.ids[1]]
    assert by_mask.ids.tolist() == [sample.ids[1], sample.ids[4]]
    for sub in (by_position, by_id, by_mask):
        assert sub.bands == sample.bands
        for oid in sub.ids:
            for name in ("time", "band", "flux", "flux_err"):
                assert np.array_equal(np.asarray(sub[oid][name]), np.asarray(sample[oid][name]))
            i, j = sub.ids.tolist().index(oid), sample.ids.tolist().index(oid)
            assert sub.meta["redshift"][i] == sample.meta["redshift"][j]
    with pytest.raises(ValueError, match="one entry per object"):
        sample.select(mask[:-1])
    with pytest.raises(KeyError, match="nope"):
        sample.select(["nope"])
    with pytest.raises(ValueError, match="empty"):
        sample.select(np.zeros(len(sample), dtype=bool))


def test_select_negative_position(sample):
    try:
        last = sample.select([-1])
    except IndexError:
        return
    assert last.ids.tolist() == [sample.ids[-1]]
    assert len(last.observations) == len(sample[sample.ids[-1]])


# ---------------------------------------------------------------------- units and missing values (review)
def _two_rows(flux_unit=None, err_unit=None, ids=("a", "a"), bands=("g", "r")):
    table = Table({"object_id": list(ids), "time": [1.0, 2.0] * u.d, "band": list(bands)})
    table["flux"] = [1.0, 2.0] * flux_unit if flux_unit is not None else [1.0, 2.0]
    table["flux_err"] = [0.1, 0.2] * err_unit if err_unit is not None else [0.1, 0.2]
    return table


def test_flux_units_are_kept_and_errors_converted():
    lcs = Lightcurves(_two_rows(u.nJy, u.uJy))
    assert lcs.observations["flux"].unit == u.nJy and lcs.observations["flux_err"].unit == u.nJy
    assert np.asarray(lcs.observations["flux_err"]).tolist() == pytest.approx([100.0, 200.0])


@pytest.mark.parametrize("flux_unit, err_unit, match", [
    (u.mag, u.mag, "not magnitudes"), (u.ABmag, u.mag, "not magnitudes"),
    (u.nJy, None, "has a unit"), (u.nJy, u.s, "does not convert")])
def test_bad_flux_units(flux_unit, err_unit, match):
    with pytest.raises(ValueError, match=match):
        Lightcurves(_two_rows(flux_unit, err_unit))


@pytest.mark.parametrize("column, kwargs", [("object_id", {"ids": ("a", None)}), ("band", {"bands": ("g", "")})])
def test_missing_ids_and_bands_are_errors(column, kwargs):
    with pytest.raises(ValueError, match=f"column '{column}'.*empty or missing"):
        Lightcurves(_two_rows(**kwargs))


def test_snana_values_that_are_not_numbers_name_the_file(tmp_path):
    text = (SPCC_SAMPLE / "DES_SN185754.DAT").read_text()
    first_obs = next(line for line in text.splitlines() if line.startswith("OBS:"))
    fields = first_obs.split()
    fields[4] = "x"  # FLUXCAL
    (tmp_path / "bad.DAT").write_text(text.replace(first_obs, " ".join(fields), 1))
    with pytest.raises(ValueError, match="bad.DAT.*FLUXCAL"):
        read_snana(tmp_path / "bad.DAT")
    (tmp_path / "bad.DAT").write_text(text.replace("SNTYPE:  -9", "SNTYPE:  Ia", 1))
    with pytest.raises(ValueError, match="bad.DAT.*SNTYPE"):
        read_snana(tmp_path / "bad.DAT")


def test_table_reader_names_bad_time_and_meta_columns():
    frame = pd.DataFrame({"snid": ["a", "a"], "mjd": ["x", "y"], "band": ["g", "r"], "flux": [1.0, 2.0],
                          "flux_err": [0.1, 0.1]})
    with pytest.raises(ValueError, match="'mjd'.*numeric"):
        read_lightcurve_table(frame, object_id="snid", time="mjd")
    frame["mjd"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="no column 'snid'"):
        read_lightcurve_table(frame, object_id="snid", time="mjd", meta=pd.DataFrame({"SNID": ["a"]}))
    with pytest.raises(ValueError, match="floating-point"):
        read_lightcurve_table(frame.assign(snid=[1, 1]), object_id="snid", time="mjd",
                              meta=pd.DataFrame({"snid": [1.0]}))


def test_table_reader_keeps_flux_units_and_refuses_magnitudes():
    from astropy.table import QTable

    table = QTable({"id": ["a", "a"], "time": [1.0, 2.0] * u.d, "band": ["g", "r"],
                    "f": [1000.0, 2000.0] * u.nJy, "e": [0.1, 0.1] * u.uJy})
    lcs = read_lightcurve_table(table, object_id="id", flux="f", flux_err="e")
    assert lcs.observations["flux"].unit == u.nJy
    assert np.asarray(lcs.observations["flux_err"]).tolist() == pytest.approx([100.0, 100.0])
    table["f"], table["e"] = [20.0, 21.0] * u.mag, [0.1, 0.1] * u.mag
    with pytest.raises(ValueError, match="not magnitudes"):
        read_lightcurve_table(table, object_id="id", flux="f", flux_err="e")


def test_table_reader_refuses_empty_ids_and_bands_in_a_csv(tmp_path):
    path = tmp_path / "lc.csv"
    path.write_text("id,time,band,flux,flux_err\n1,1.0,g,5.0,1.0\n,2.0,g,5.0,1.0\n2,3.0,,5.0,1.0\n")
    with pytest.raises(ValueError, match="column 'object_id'.*empty or missing"):
        read_lightcurve_table(path, object_id="id")
    path.write_text("id,time,band,flux,flux_err\n1,1.0,g,5.0,1.0\n2,3.0,,5.0,1.0\n")
    with pytest.raises(ValueError, match="column 'band'.*empty or missing"):
        read_lightcurve_table(path, object_id="id")


def test_a_truth_key_table_read_by_hand_works():
    raw = Table.read(SPCC_TRUTH, format="ascii.basic", comment="#", delimiter=" ", guess=False)  # SNID, TRUE_TYPE
    by_hand = read_snana(SPCC_SAMPLE, truth=raw)
    from_file = read_snana(SPCC_SAMPLE, truth=SPCC_TRUTH)
    assert by_hand.meta["type_code"].tolist() == from_file.meta["type_code"].tolist()
    with pytest.raises(ValueError, match="not a truth key"):
        read_snana(SPCC_SAMPLE, truth=Table({"id": ["1"], "kind": [1]}))
