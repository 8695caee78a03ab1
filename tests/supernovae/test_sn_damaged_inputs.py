"""Regression tests for the damaged supernova inputs that fuzzing (tests/fuzz/test_fuzz_supernovae.py) found.

Each test pins one failure: the exception is a documented one (ValueError) and
its message names the file, column or header key, and suggests the fix where
one is known.
"""
import gzip
import tarfile

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from astrobayes.supernovae import SPCC_SAMPLE, SPCC_TRUTH
from astrobayes.supernovae.features import SequenceConfig, build_sequences
from astrobayes.supernovae.io import Lightcurves, read_lightcurves, write_lightcurves
from astrobayes.supernovae.snana import read_snana, read_truth_key

ONE_FILE = SPCC_SAMPLE / "DES_SN185754.DAT"


def _with_header(tmp_path, key: str, value: str):
    lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in ONE_FILE.read_text().splitlines()]
    path = tmp_path / f"HEADER_{key}.DAT"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_truncated_tar_archive_names_the_archive(tmp_path):
    # was: EOFError from the gzip layer, with no file name
    archive = tmp_path / "sample.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(SPCC_SAMPLE, arcname="sample")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"archive .*sample\.tar\.gz.* damaged or truncated"):
        read_snana(archive)


@pytest.mark.parametrize("key, value, message", [
    ("NOBS", "inf", "header key NOBS should be an integer, got 'inf'"),    # was: OverflowError from int(inf)
    ("NOBS", "nan", "header key NOBS should be an integer, got 'nan'"),    # was: int() ValueError, no file name
    ("SNTYPE", "1e400", "header key SNTYPE should be an integer"),         # was: OverflowError
    ("SNTYPE", "1.5", "header key SNTYPE should be an integer, got '1.5'"),  # was: silently read as type 1
])
def test_bad_integer_header_names_the_file_and_key(tmp_path, key, value, message):
    path = _with_header(tmp_path, key, value)
    with pytest.raises(ValueError, match=message) as info:
        read_snana(path)
    assert path.name in str(info.value)


def test_truth_key_with_a_short_row_names_the_file(tmp_path):
    # was: astropy's InconsistentTableError without the file name
    lines = SPCC_TRUTH.read_text().splitlines()
    lines[-1] = " ".join(lines[-1].split()[:5])
    path = tmp_path / "TRUTH.KEY"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"could not read the truth key .*TRUTH\.KEY"):
        read_truth_key(path)
    with pytest.raises(FileNotFoundError, match="no truth key"):
        read_truth_key(tmp_path / "absent.KEY")


def test_truth_key_with_a_non_integer_type_names_the_column(tmp_path):
    # was: int('Ia') / int(nan) ValueError from inside read_snana, naming nothing
    lines = SPCC_TRUTH.read_text().splitlines()
    header = lines[2].split()
    row = lines[3].split()
    row[header.index("TRUE_TYPE")] = "Ia"
    lines[3] = " ".join(row)
    path = tmp_path / "TRUTH.KEY"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"column 'TRUE_TYPE' of .*TRUTH\.KEY.* integer SNANA type codes"):
        read_truth_key(path)


@pytest.fixture
def written(tmp_path):
    return write_lightcurves(read_snana(sorted(SPCC_SAMPLE.glob("*.DAT"))[:2]), tmp_path / "two.ecsv")


@pytest.mark.parametrize("damage", ["yaml", "bytes", "bands"])
def test_damaged_lightcurve_file_names_the_file(written, damage):
    # was: astropy's InconsistentTableError / UnicodeDecodeError / a TypeError from bands, without the file name
    path, _ = written
    text = path.read_bytes()
    if damage == "yaml":
        text = text.replace(b"# datatype:", b"# datatype: [", 1)
    elif damage == "bytes":
        text = text.replace(b"object_id", b"object\xff_id", 1)
    else:
        text = text.replace(b"bands: [g, r, i, z]", b"bands: 7", 1)
        assert b"bands: 7" in text
    path.write_bytes(text)
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
        read_lightcurves(path)


def test_truncated_compressed_lightcurve_file_names_it(tmp_path):
    # was: EOFError from gzip
    path, _ = write_lightcurves(read_snana(sorted(SPCC_SAMPLE.glob("*.DAT"))[:2]), tmp_path / "two.ecsv.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert gzip.decompress(data)  # the file was whole before the cut
    with pytest.raises(ValueError, match=r"could not read .*two\.ecsv\.gz"):
        read_lightcurves(path)


def _two_objects(meta_columns):
    observations = Table({"object_id": ["a", "a", "b"], "time": [1.0, 2.0, 3.0] * u.d, "band": ["g", "r", "g"],
                          "flux": [1.0, 2.0, 3.0], "flux_err": [0.1, 0.1, 0.1]})
    return Lightcurves(observations, Table({"object_id": ["a", "b"], **meta_columns}))


@pytest.mark.parametrize("redshift, message", [
    ([30000.0, 0.1], "reaches 30000.*divide them by c = 299792.458 km/s"),
    ([0.1, 0.2] * u.km / u.s, "has unit km / s, which is not a redshift"),
])
def test_velocity_given_as_redshift_is_named_with_the_fix(redshift, message):
    # was: accepted; the network saw a "redshift" of 30000
    lcs = _two_objects({"redshift": redshift, "redshift_err": [0.01, 0.01]})
    with pytest.raises(ValueError, match=message):
        build_sequences(lcs, SequenceConfig(bands=("g", "r")))


def test_text_redshift_column_is_named():
    # was: numpy's "could not convert string to float" without the column
    lcs = _two_objects({"redshift": ["0.1", "n/a"], "redshift_err": [0.01, 0.01]})
    with pytest.raises(ValueError, match="column 'redshift' must be numeric"):
        build_sequences(lcs, SequenceConfig(bands=("g", "r")))


def test_sequences_beyond_float32_name_the_channels():
    # was: a redshift error of 3e38 became inf in the float32 sequences, silently
    lcs = _two_objects({"redshift": [0.1, 0.2], "redshift_err": [1e300, 0.01]})
    with pytest.raises(ValueError, match=r"1 object\(s\) \(e\.g\. \['a'\]\) overflow float32 in channel\(s\) "
                                         r"\['redshift_err'\]"):
        build_sequences(lcs, SequenceConfig(bands=("g", "r")))
    fine = build_sequences(_two_objects({"redshift": [0.1, 0.2], "redshift_err": [0.01, 0.01]}),
                           SequenceConfig(bands=("g", "r")))
    assert np.isfinite(fine.values).all()


def test_zero_and_nan_flux_errors_are_told_apart():
    # was: both reported as "not finite and > 0"
    observations = Table({"object_id": ["a", "a", "a"], "time": [1.0, 2.0, 3.0] * u.d, "band": ["g", "g", "g"],
                          "flux": [1.0, 2.0, 3.0], "flux_err": [0.0, np.nan, -1.0]})
    with pytest.raises(ValueError, match=r"column 'flux_err': 2 row\(s\) zero or negative; column 'flux_err': 1 "
                                         r"row\(s\) NaN or inf"):
        Lightcurves(observations)
