"""Fuzz the supernova readers: SNANA text files, truth keys, long lightcurve tables, ECSV collections, sequences.

Seeds are the twelve shipped SNANA files (``catalogs/supernovae/snana_sample``),
damaged by truncation, byte flips, deleted or repeated lines, unicode and
extreme numbers. A reader may accept the damage (then its output must be
sane: finite times, positive finite errors, one row of metadata per object)
or refuse it with a documented exception naming the file, column or argument.
"""
import math
import tarfile

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st

from astrobayes.core.serialization import ModelFileError
from astrobayes.supernovae import SPCC_SAMPLE, SPCC_TRUTH
from astrobayes.supernovae.features import SequenceConfig, build_sequences
from astrobayes.supernovae.io import Lightcurves, read_lightcurve_table, read_lightcurves, write_lightcurves
from astrobayes.supernovae.snana import read_snana, read_truth_key

DOCUMENTED = (ValueError, TypeError, FileNotFoundError, ModelFileError)
SEEDS = sorted(SPCC_SAMPLE.glob("*.DAT"))
SEED_BYTES = [path.read_bytes() for path in SEEDS]
NASTY_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e-320", "0", "-0", "-9", "9e307", "", "--",
                 "1,5", "0x10", "٣", "１", "∞", "None"]
NASTY_TEXT = ["é", "Ω", "\u200b", "\ufeff", "𝒢", "\x00", "#", ":", "OBS:", "VARLIST:", "\r", "\t", "中文"]


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message}"


def check_lightcurves(lcs: Lightcurves) -> None:
    """What every successfully read collection guarantees."""
    offsets, time, band, flux, flux_err = lcs.arrays()
    assert len(lcs) == len(lcs.meta) >= 1 and offsets[-1] == len(time)
    assert np.isfinite(time).all() and np.isfinite(flux).all()
    assert (np.isfinite(flux_err) & (flux_err > 0)).all()
    assert (np.diff(offsets) >= 1).all()
    assert all(str(oid).strip() for oid in lcs.ids)


# ---------------------------------------------------------------------- damaged SNANA files
def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@st.composite
def damaged_snana(draw) -> bytes:
    """One shipped SNANA file with one to three kinds of damage."""
    data = SEED_BYTES[draw(st.integers(0, len(SEED_BYTES) - 1))]
    for how in draw(st.lists(st.sampled_from(["truncate", "flip", "delete_line", "repeat_line", "unicode",
                                              "number", "empty"]), min_size=1, max_size=3)):
        if how == "empty":
            data = draw(st.sampled_from([b"", b"\n", b"   ", b"\xff\xfe"]))
        elif how == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif how == "flip" and data:
            raw = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
            data = bytes(raw)
        elif how in ("delete_line", "repeat_line"):
            lines = _lines(data)
            k = draw(st.integers(0, len(lines) - 1))
            lines = lines[:k] + lines[k + 1:] if how == "delete_line" else lines[:k + 1] + lines[k:]
            data = b"\n".join(lines)
        elif how == "unicode":
            k = draw(st.integers(0, len(data)))
            data = data[:k] + draw(st.sampled_from(NASTY_TEXT)).encode() + data[k:]
        elif how == "number":
            # replace one whitespace-separated token of an OBS row or of a header value by an extreme number
            lines = _lines(data)
            rows = [i for i, line in enumerate(lines) if line.startswith((b"OBS:", b"SNTYPE", b"REDSHIFT_FINAL",
                                                                         b"MWEBV", b"NOBS", b"HOST_GALAXY_PHOTO-Z"))]
            if rows:
                i = draw(st.sampled_from(rows))
                tokens = lines[i].split()
                j = draw(st.integers(1, max(1, len(tokens) - 1))) if len(tokens) > 1 else 0
                tokens[j] = draw(st.sampled_from(NASTY_NUMBERS)).encode()
                lines[i] = b" ".join(tokens)
                data = b"\n".join(lines)
    return data


@given(data=damaged_snana(), name=st.sampled_from(["DES_SN000001.DAT", "ÜNICODE_Ω.DAT", "with space.DAT"]))
def test_fuzz_read_snana_file(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    try:
        lcs = read_snana(path)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, str(path), name)
    else:
        check_lightcurves(lcs)
        assert lcs.meta["file"][0] == str(path)


@settings(max_examples=max(1, settings().max_examples // 4))  # lower: each example writes and reads a tar archive
@given(data=damaged_snana(), cut=st.floats(0.0, 1.0))
def test_fuzz_read_snana_truncated_archive(tmp_path, data, cut):
    """A folder of one damaged and two intact files, archived and then truncated."""
    folder = tmp_path / "sample"
    folder.mkdir(exist_ok=True)
    (folder / "DAMAGED.DAT").write_bytes(data)
    for seed in SEEDS[:2]:
        (folder / seed.name).write_bytes(seed.read_bytes())
    archive = tmp_path / "sample.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="sample")
    whole = archive.read_bytes()
    archive.write_bytes(whole[:int(cut * len(whole))] if cut < 1 else whole)
    try:
        lcs = read_snana(archive)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(archive), "DAMAGED.DAT")
    else:
        check_lightcurves(lcs)


@given(data=st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_fuzz_read_snana_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "RANDOM.DAT"
    path.write_bytes(data)
    try:
        check_lightcurves(read_snana(path))
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path))


@st.composite
def damaged_truth_key(draw) -> bytes:
    lines = _lines(SPCC_TRUTH.read_bytes())
    for how in draw(st.lists(st.sampled_from(["delete", "repeat", "token", "truncate"]), min_size=1, max_size=3)):
        if not lines:
            break
        k = draw(st.integers(0, len(lines) - 1))
        if how == "delete":
            del lines[k]
        elif how == "repeat":
            lines.insert(k, lines[k])
        elif how == "token":
            tokens = lines[k].split() or [b""]
            tokens[draw(st.integers(0, len(tokens) - 1))] = draw(st.sampled_from(NASTY_NUMBERS + NASTY_TEXT)).encode()
            lines[k] = b" ".join(tokens)
        else:
            lines[k] = lines[k][:draw(st.integers(0, len(lines[k])))]
    return b"\n".join(lines)


@given(data=damaged_truth_key())
def test_fuzz_read_truth_key(tmp_path, data):
    path = tmp_path / "TRUTH.KEY"
    path.write_bytes(data)
    try:
        key = read_truth_key(path)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path))
        return
    assert {"object_id", "true_type"} <= set(key.colnames)
    assert len(set(key["object_id"])) == len(key)
    # and as the truth of read_snana: either used or refused naming the key
    try:
        check_lightcurves(read_snana(SPCC_SAMPLE, truth=path))
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "truth key", str(path), "TRUE_TYPE")


# ---------------------------------------------------------------------- long lightcurve tables
_NAMES = dict(object_id="snid", time="mjd", band="flt", flux="f", flux_err="e")
finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, -0.0, 1e-320, 1e308])
ids = st.sampled_from(["a", "b", "SN 1987A", "Ω", "", " ", "nan", "None", "𝒢"]) | st.integers(-3, 3)
bands = st.sampled_from(["g", "r", "i", "z", "Y", "", " g", "Ω", "gg"])


@st.composite
def lightcurve_frames(draw):
    """A long-format DataFrame with some damage: odd values, a dropped column, a column of the wrong dtype."""
    n = draw(st.integers(0, 8))
    # each column is either plausible or hostile, so that some tables pass and the checks after reading run
    plausible = {"snid": st.sampled_from(["a", "b", "SN 1987A", "Ω"]), "mjd": st.floats(50000, 60000),
                 "flt": st.sampled_from("griz"), "f": st.floats(-100, 1000), "e": st.floats(0.01, 10)}
    hostile = {"snid": ids, "mjd": finite_or_not, "flt": bands, "f": finite_or_not, "e": finite_or_not}
    chosen = {name: hostile[name] if draw(st.integers(0, 3)) == 0 else plausible[name] for name in plausible}
    frame = pd.DataFrame({name: [draw(values) for _ in range(n)] for name, values in chosen.items()})
    if n and not all(isinstance(v, int) for v in frame["snid"]):
        frame["snid"] = frame["snid"].astype(str)
    change = draw(st.sampled_from(["none", "none", "none", "drop", "strings", "bytes", "objects"]))
    column = draw(st.sampled_from(list(_NAMES.values())))
    if change == "drop":
        frame = frame.drop(columns=column)
    elif change == "strings":
        frame[column] = [draw(st.sampled_from(["1.0", "x", "", "1e5", "Ω"])) for _ in range(n)]
    elif change == "bytes":
        frame[column] = [b"\xff" for _ in range(n)]
    elif change == "objects":
        frame[column] = pd.Series([None] * n, dtype=object)
    return frame


@given(frame=lightcurve_frames(), allowed=st.none() | st.sampled_from(["griz", ("g", "r"), ["Ω"], ()]),
       drop_invalid=st.booleans())
def test_fuzz_read_lightcurve_table_from_memory(frame, allowed, drop_invalid):
    names = set(_NAMES.values()) | {"bands", "band", "time", "flux", "flux_err", "object_id"}
    try:
        lcs = read_lightcurve_table(frame, **_NAMES, bands=allowed, drop_invalid=drop_invalid)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, *names)
        return
    check_lightcurves(lcs)
    try:
        seq = build_sequences(lcs, SequenceConfig(bands=lcs.bands, use_redshift=False))
    except Exception as err:  # noqa: BLE001  (extreme but finite values may overflow float32: named there)
        check_refusal(err, "channel(s)")
    else:
        assert np.isfinite(seq.values).all(), "sequences of accepted lightcurves hold NaN or inf"


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: every example writes and parses a file
@given(frame=lightcurve_frames(), suffix=st.sampled_from([".csv", ".ecsv"]), cut=st.floats(0.2, 1.0))
def test_fuzz_read_lightcurve_table_from_file(tmp_path, frame, suffix, cut):
    path = tmp_path / f"lightcurves{suffix}"
    try:
        Table.from_pandas(frame).write(path, overwrite=True, format="ascii.ecsv" if suffix == ".ecsv" else "ascii.csv")
    except Exception:  # noqa: BLE001  (astropy cannot write some damaged frames: nothing to read then)
        return
    whole = path.read_bytes()
    path.write_bytes(whole[:math.ceil(cut * len(whole))])
    try:
        lcs = read_lightcurve_table(path, **_NAMES, time_unit="d")
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path), *_NAMES.values(), "band", "flux_err", "time", "object_id")
    else:
        check_lightcurves(lcs)


@pytest.fixture(scope="module")
def written_collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("collection")
    lcs = read_snana(SEEDS[:3])
    obs, meta = write_lightcurves(lcs, folder / "three.ecsv")
    return obs.read_bytes(), meta.read_bytes()


@given(which=st.sampled_from(["observations", "meta"]), cut=st.just(0) | st.integers(0, 4000), flips=st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4))
def test_fuzz_read_lightcurves_collection(tmp_path, written_collection, which, cut, flips):
    obs_bytes, meta_bytes = written_collection
    path, meta_path = tmp_path / "three.ecsv", tmp_path / "three_meta.ecsv"
    damaged = bytearray(obs_bytes if which == "observations" else meta_bytes)
    for position, value in flips:
        damaged[position % len(damaged)] = value
    damaged = bytes(damaged[: len(damaged) - cut])
    path.write_bytes(damaged if which == "observations" else obs_bytes)
    meta_path.write_bytes(damaged if which == "meta" else meta_bytes)
    try:
        lcs = read_lightcurves(path)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path), str(meta_path))
    else:
        check_lightcurves(lcs)


@given(redshift=finite_or_not, redshift_err=finite_or_not, window=finite_or_not,
       normalise=st.sampled_from(["object", "band", "none", "bogus"]))
def test_fuzz_build_sequences_metadata_and_options(redshift, redshift_err, window, normalise):
    frame = pd.DataFrame({"snid": ["a", "a", "b"], "mjd": [1.0, 2.0, 3.0], "flt": ["g", "r", "g"],
                          "f": [1.0, 2.0, 3.0], "e": [0.1, 0.1, 0.1]})
    meta = Table({"snid": ["a", "b"], "redshift": [redshift, 0.1], "redshift_err": [redshift_err, 0.01]})
    try:
        lcs = read_lightcurve_table(frame, **_NAMES, meta=meta)
        seq = build_sequences(lcs, SequenceConfig(bands=("g", "r"), group_window=window, normalise=normalise))
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "redshift", "group_window", "normalise", "channel(s)")
    else:
        assert np.isfinite(seq.values).all()
