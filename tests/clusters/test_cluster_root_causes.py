"""Errors that name the root cause: no velocity spread, redshifts read as velocities, kpc read as Mpc, and the
damaged inputs that fuzzing (tests/fuzz/test_fuzz_clusters.py) found.
"""
import gzip
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable

from astrobayes.clusters import (cluster_features, feature_matrix, projected_radius, read_member_catalog,
                                 simulate_clusters, train_mass_model, velocity_from_redshift, write_member_catalog)

KMS = u.km / u.s


def _members(velocities: dict) -> QTable:
    """One row per galaxy: cluster id → its members' velocities (km/s), radii 0.1, 0.2, ... Mpc."""
    ids = np.concatenate([[cid] * len(v) for cid, v in velocities.items()])
    v_los = np.concatenate([np.asarray(v, dtype=float) for v in velocities.values()])
    return QTable({"cluster_id": ids, "R_proj": 0.1 * np.arange(1, ids.size + 1) * u.Mpc, "v_los": v_los * KMS})


def test_clusters_without_velocity_spread_are_flagged_and_named():
    # was: a NaN feature row, reported downstream as "x has ... row(s) with NaN or inf"
    members = _members({7: [300.0] * 4, 8: [120.0, 120.0, 120.0, 120.0, 900.0], 9: [-400.0, 10.0, 350.0, 600.0]})
    with pytest.warns(UserWarning, match=r"2 of 3 cluster\(s\) have no velocity spread.*cluster_id 7, 8\)"):
        features = cluster_features(members)
    assert features["flags"].tolist() == ["no_velocity_spread", "no_velocity_spread", ""]
    matrix = feature_matrix(features)
    assert np.isnan(matrix[:2]).all() and np.isfinite(matrix[2]).all()


def test_redshifts_read_as_velocities_are_named_with_the_fix():
    members = _members({1: [0.101, 0.0995, 0.1003], 2: [0.2, 0.2004, 0.1999]})
    with pytest.raises(ValueError, match=r"spans only ±0.2 km/s.*redshifts labelled km/s.*velocity_from_redshift"):
        cluster_features(members)


def test_radii_in_kpc_labelled_mpc_are_named_with_the_fix():
    members = _members({1: [-300.0, 20.0, 450.0]})
    members["R_proj"] = [120.0, 480.0, 900.0] * u.Mpc
    with pytest.raises(ValueError, match=r"column 'R_proj' reaches 900 Mpc.*kpc labelled Mpc"):
        cluster_features(members)


@pytest.mark.parametrize("redshift, cluster_redshift, message", [
    ([30100.0, 29900.0], 0.1, r"redshift reaches 30100.*divide them by c"),              # cz in km/s
    ([0.1, 0.2] * KMS, 0.1, "redshift has unit km / s, so it is not a redshift"),
    (["0.1", "x"], 0.1, "redshift must be numbers"),                                   # was: numpy's float() error
    ([0.1, 0.2], 30000.0, "cluster_redshift reaches 30000"),
    ([0.1, 0.2, 0.3], [0.1, 0.2], r"redshift \(shape \(3,\)\) and cluster_redshift \(shape \(2,\)\)"),
])
def test_velocity_from_redshift_names_the_argument(redshift, cluster_redshift, message):
    with pytest.raises(ValueError, match=message):
        velocity_from_redshift(redshift, cluster_redshift)


@pytest.mark.parametrize("kwargs, message", [
    ({"dec": 100.0}, r"dec must be finite and within ±90 deg"),        # was: astropy's Latitude error, no argument
    ({"ra": "east"}, "ra must be an angle"),
    ({"cluster_redshift": -0.5}, "cluster_redshift must be > 0"),      # was: a negative radius, with a warning
    ({"ra": [150.0, 150.1, 150.2], "dec": [2.0, 2.1]}, "single values or arrays of one shape"),
])
def test_projected_radius_names_the_argument(kwargs, message):
    arguments = dict(ra=150.01, dec=2.0, cluster_ra=150.0, cluster_dec=2.0, cluster_redshift=0.1) | kwargs
    with pytest.raises(ValueError, match=message):
        projected_radius(**arguments)


def test_truncated_compressed_member_catalog_names_the_file(tmp_path):
    # was: EOFError / zlib.error from the gzip layer of astropy's reader
    plain = tmp_path / "members.ecsv"
    write_member_catalog(_members({1: [100.0, -50.0, 20.0]}), plain)
    data = gzip.compress(plain.read_bytes())
    for name, damaged in (("cut", data[: len(data) // 2]), ("flip", data[:20] + bytes([data[20] ^ 0xFF]) + data[21:])):
        path = tmp_path / f"members_{name}.ecsv.gz"
        path.write_bytes(damaged)
        with pytest.raises(ValueError, match=rf"could not read .*members_{name}\.ecsv\.gz"):
            read_member_catalog(path, format="ascii.ecsv")


def test_training_without_usable_clusters_is_explained():
    members, truth = simulate_clusters(3, seed=1)
    members = members[members["cluster_id"] == members["cluster_id"][0]]  # one cluster: nothing to learn from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=r"only 1 of 1 training cluster\(s\) have at least 3 members"):
            train_mass_model(members, truth, epochs=1, progress=False)
