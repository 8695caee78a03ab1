"""Fuzz the member-catalogue reader and everything a cluster catalogue passes through on its way to a mass.

Catalogues come from memory and from damaged ECSV/CSV/FITS files: unicode,
integer, float and missing cluster ids, wrong units (a redshift read as a
velocity, m/s labelled km/s, a length for a velocity), empty catalogues,
clusters of one member and clusters whose members share one velocity.
Accepted catalogues go on through ``cluster_features``, ``feature_matrix``,
``member_sets``, ``phase_space_images`` and ``estimate_mass``; every refusal
must be a documented exception naming the file, column or argument.
"""
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Column, Table
from hypothesis import given, settings
from hypothesis import strategies as st

try:  # tests/fuzz as a package or as a plain directory on sys.path
    from .fuzz_damage import damage_file
except ImportError:
    from fuzz_damage import damage_file
from astrobayes.clusters import (cluster_features, estimate_mass, feature_matrix, member_sets, phase_space_images,
                                 projected_radius, read_member_catalog, simulate_clusters, train_mass_model,
                                 velocity_from_redshift)
from astrobayes.core.serialization import ModelFileError

DOCUMENTED = (ValueError, TypeError, FileNotFoundError, ModelFileError)
NAMES = {"cluster_id": "halo", "galaxy_id": "gal", "R_proj": "rp", "v_los": "vz", "v_los_err": "e_vz"}
ARGUMENTS = ("cluster_id", "galaxy_id", "radius", "velocity", "velocity_err", "radius_unit", "velocity_unit",
             "drop_nan", "members", "R_proj", "v_los", "v_los_err")


def check_refusal(err: BaseException, *names: str) -> None:
    """The exception is a documented one and its message names one of ``names``."""
    assert isinstance(err, DOCUMENTED), f"undocumented {type(err).__name__} escaped: {err}"
    message = str(err)
    assert any(name in message for name in names), f"message names none of {names}: {message}"


hostile = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e-320, 1e308, 0.1, 3e5])
cluster_ids = st.sampled_from([1, 2, 3]) | st.sampled_from(["A", "Ω", "", "nan", "𝒢 7"]) | st.floats(allow_nan=True)
plausible = {"halo": st.sampled_from([1, 2, 3]), "gal": st.integers(0, 10**6), "rp": st.floats(0.0, 2.0),
             "vz": st.floats(-2500, 2500), "e_vz": st.floats(10, 200)}
units = {"rp": ["Mpc", "Mpc", "kpc", "km / s", "", "foo"], "vz": ["km / s", "km / s", "m / s", "km", "", "dex"],
         "e_vz": ["km / s", "km / s", "m / s", ""]}


@st.composite
def member_tables(draw):
    """A member catalogue with some damage; columns plausible or hostile, sometimes one shared velocity."""
    n = draw(st.integers(0, 12))
    names = draw(st.sampled_from([("halo", "rp", "vz"), ("halo", "gal", "rp", "vz", "e_vz")]))
    table = Table()
    right_units = draw(st.integers(0, 2)) > 0  # two tables in three have every unit right
    for name in names:
        # one column in four is hostile, so that some catalogues pass and the steps after reading run
        strategy = (cluster_ids if name == "halo" else hostile) if draw(st.integers(0, 3)) == 0 else plausible[name]
        values = [draw(strategy) for _ in range(n)]
        if name in units:
            unit = units[name][0] if right_units else draw(st.sampled_from(units[name]))
            table[name] = Column(np.array(values, dtype=float), unit=unit or None)
        else:
            kinds = {type(v) for v in values}
            table[name] = np.array(values, dtype=str if str in kinds else float if float in kinds else int)
    scenario = draw(st.sampled_from(["none", "none", "one_velocity", "redshifts", "drop", "text"]))
    if scenario == "one_velocity" and n:
        table["vz"] = Column(np.full(n, draw(st.floats(-500, 500))), unit="km / s")
    elif scenario == "redshifts" and n:
        table["vz"] = Column(draw(st.floats(0.01, 0.5)) + np.linspace(-0.005, 0.005, n), unit="km / s")
    elif scenario == "drop":
        table.remove_column(draw(st.sampled_from(names)))
    elif scenario == "text" and n:
        table[draw(st.sampled_from(names))] = [draw(st.sampled_from(["1.0", "x", "", "Ω"])) for _ in range(n)]
    return table, names


def _read(source, names, **options):
    arguments = {"cluster_id": "halo", "radius": "rp", "velocity": "vz"}
    if "gal" in names:
        arguments.update(galaxy_id="gal", velocity_err="e_vz")
    return read_member_catalog(source, **arguments, **options)


@pytest.fixture(scope="module")
def mass_model():
    members, truth = simulate_clusters(100, seed=0)  # a network that runs is enough: its masses are not checked
    return train_mass_model(members, truth, hidden=(8,), n_components=2, epochs=1, progress=False, device="cpu")


def _downstream(members, model) -> None:
    """Every step from members to masses: each succeeds with a sane result or refuses with a named error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # too_few_members / no_velocity_spread / outside the cylinder
            features = cluster_features(members)
            matrix = feature_matrix(features)
            flagged = np.asarray(features["flags"] != "")
            assert np.isfinite(matrix[~flagged]).all(), "an unflagged cluster has non-finite features"
            assert np.isnan(matrix[flagged]).all()
            sets = member_sets(members, max_members=20)
            assert np.isfinite(sets.values.numpy()).all()
            images = phase_space_images(members, shape=(8, 8))
            assert np.isfinite(images).all()
            masses = estimate_mass(members, model)
    except Exception as err:  # noqa: BLE001  (the check is on the kind and message)
        check_refusal(err, *ARGUMENTS)
        return
    # estimate_mass first cuts the members to the training cylinder: a cluster with no member inside has no row
    assert set(np.asarray(masses["cluster_id"]).tolist()) <= set(np.asarray(features["cluster_id"]).tolist())
    no_estimate = np.isnan(np.asarray(masses["log_mass_median"]))
    assert all(flag in ("too_few_members", "no_velocity_spread") for flag in masses["flags"][no_estimate])


@given(spec=member_tables(), drop_nan=st.booleans(),
       given_unit=st.sampled_from([{}, {}, {"velocity_unit": "km/s", "radius_unit": "Mpc"}, {"velocity_unit": "x"}]))
def test_fuzz_member_catalog_to_masses(mass_model, spec, drop_nan, given_unit):
    table, names = spec
    try:
        members = _read(table, names, drop_nan=drop_nan, **given_unit)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, *names, *ARGUMENTS, "astropy Table")
        return
    assert set(members.colnames) >= {"cluster_id", "R_proj", "v_los"}
    assert members["v_los"].unit == u.km / u.s and members["R_proj"].unit == u.Mpc
    assert np.isfinite(members["v_los"].value).all() and (members["R_proj"].value >= 0).all()
    _downstream(members, mass_model)


@settings(max_examples=max(1, settings().max_examples // 2))  # lower: every example writes and parses a file
@given(spec=member_tables(), suffix=st.sampled_from([".ecsv", ".csv", ".fits", ".ecsv.gz"]),
       cut=st.integers(0, 400), flip=st.none() | st.tuples(st.integers(0, 10**6), st.integers(0, 255)))
def test_fuzz_read_member_catalog_from_file(tmp_path, spec, suffix, cut, flip):
    table, names = spec
    path = tmp_path / f"members Ω{suffix}"
    try:
        table.write(path, overwrite=True, format="ascii.ecsv" if suffix == ".ecsv.gz" else None)
    except Exception:  # noqa: BLE001  (astropy cannot write some hostile tables: nothing to read then)
        return
    damage_file(path, compress=suffix == ".ecsv.gz", flip=flip, cut=cut)
    options = {"velocity_unit": "km/s", "radius_unit": "Mpc"} if suffix == ".csv" else {}
    options["format"] = "ascii.ecsv" if suffix == ".ecsv.gz" else None
    try:
        members = _read(path, names, **options)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, str(path), *names, *ARGUMENTS)
    else:
        assert np.isfinite(members["v_los"].value).all()


numbers = (st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.1, 30000.0, -1.0, -2.0])
           | st.lists(st.floats(-0.5, 3.0), max_size=3) | st.text(max_size=3) | st.none())


@given(redshift=numbers, cluster_redshift=numbers,
       unit=st.sampled_from([None, None, u.km / u.s, u.dimensionless_unscaled]))
def test_fuzz_velocity_from_redshift(redshift, cluster_redshift, unit):
    if unit is not None and isinstance(redshift, (float, list)):
        redshift = np.asarray(redshift, dtype=float) * unit
    try:
        velocity = velocity_from_redshift(redshift, cluster_redshift)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "redshift", "cluster_redshift")
    else:
        assert velocity.unit == u.km / u.s and np.isfinite(velocity.value).all()


@given(ra=numbers, dec=numbers, cluster_redshift=numbers)
def test_fuzz_projected_radius(ra, dec, cluster_redshift):
    try:
        radius = projected_radius(ra, dec, 150.0, 2.0, cluster_redshift)
    except Exception as err:  # noqa: BLE001
        check_refusal(err, "ra", "dec", "cluster_redshift")
    else:
        assert radius.unit == u.Mpc and np.isfinite(radius.value).all() and (radius.value >= 0).all()
