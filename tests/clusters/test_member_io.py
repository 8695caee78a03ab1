"""Member-catalog I/O: standard names, unit conversion, ECSV/FITS/CSV round trips and every bad-input error.

No statistics here: unit conversions are exact powers of ten and are compared at floating-point precision
(rtol 1e-14, a few ulp); the redshift and sky-position helpers are checked against hand computations
(c from astropy.constants, D_A from astropy's FlatLambdaCDM(70, 0.3) — the domain's default — and Planck18,
separations from the spherical law of cosines).
"""
import warnings

import astropy.constants as const
import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.cosmology import FlatLambdaCDM, Planck18
from astropy.table import MaskedColumn, QTable, Table

from astrobayes.clusters.io import (projected_radius, read_member_catalog, velocity_from_redshift,
                                    write_member_catalog)

KMS = u.km / u.s


def sample_members() -> QTable:
    """Two clusters with string ids, odd column names, kpc radii and m/s velocities, plus a passenger column."""
    return QTable({
        "halo": ["A", "A", "A", "B", "B"],
        "gal": [11, 12, 13, 11, 14],                     # galaxy 11 is in both clusters: allowed
        "rp": [120.0, 800.0, 1500.0, 300.0, 45.0] * u.kpc,
        "vz": [-310000.0, 150000.0, 40000.0, 1234.5, -98765.0] * u.m / u.s,
        "e_vz": [30000.0, 40000.0, 25000.0, 50000.0, 60000.0] * u.m / u.s,
        "mag_r": [17.1, 18.2, 19.3, 16.4, 17.5],
    })


def read_sample(table, **kwargs):
    options = {"cluster_id": "halo", "galaxy_id": "gal", "radius": "rp", "velocity": "vz", "velocity_err": "e_vz"}
    options.update(kwargs)
    return read_member_catalog(table, **options)


def members_in_standard_units() -> QTable:
    return QTable({
        "cluster_id": ["A", "A", "B"],
        "galaxy_id": [1, 2, 3],
        "R_proj": [0.1, 0.25, 1.2] * u.Mpc,
        "v_los": [120.0, -340.5, 15.0] * KMS,
        "v_los_err": [30.0, 40.0, 25.0] * KMS,
        "mag_r": [17.0, 18.0, 19.0],
    })


# ------------------------------------------------------------------ conversions and standard names
def test_units_are_converted_exactly_and_columns_get_standard_names():
    raw = sample_members()
    members = read_sample(raw)
    assert members.colnames == ["cluster_id", "galaxy_id", "R_proj", "v_los", "v_los_err", "mag_r"]
    assert members["R_proj"].unit == u.Mpc and members["v_los"].unit == KMS and members["v_los_err"].unit == KMS
    # kpc -> Mpc and m/s -> km/s are exact factors of 1000: compare at a few ulp
    np.testing.assert_allclose(members["R_proj"].value, raw["rp"].value / 1000, rtol=1e-14, atol=0)
    np.testing.assert_allclose(members["v_los"].value, raw["vz"].value / 1000, rtol=1e-14, atol=0)
    np.testing.assert_allclose(members["v_los_err"].value, raw["e_vz"].value / 1000, rtol=1e-14, atol=0)
    assert list(members["cluster_id"]) == ["A", "A", "A", "B", "B"]
    assert list(members["galaxy_id"]) == [11, 12, 13, 11, 14]
    np.testing.assert_array_equal(members["mag_r"], raw["mag_r"])
    assert members.meta["catalog_columns"] == {"cluster_id": "halo", "galaxy_id": "gal", "R_proj": "rp",
                                               "v_los": "vz", "v_los_err": "e_vz"}
    assert members.meta["dropped_rows"] == []
    # the caller's table is left alone
    assert raw.colnames[:3] == ["halo", "gal", "rp"] and raw["rp"].unit == u.kpc


def test_pandas_dataframe_with_units_given():
    frame = pd.DataFrame({"halo": [7, 7, 9], "r_kpc": [120.0, 800.0, 300.0], "vz": [-310.0, 150.0, 40.0],
                          "dv": [20.0, 30.0, 25.0]})
    members = read_member_catalog(frame, cluster_id="halo", radius="r_kpc", velocity="vz", velocity_err="dv",
                                  radius_unit="kpc", velocity_unit="km/s")
    assert members.colnames == ["cluster_id", "R_proj", "v_los", "v_los_err"]
    np.testing.assert_allclose(members["R_proj"].to_value(u.Mpc), [0.12, 0.8, 0.3], rtol=1e-14)
    np.testing.assert_allclose(members["v_los"].to_value(KMS), [-310.0, 150.0, 40.0], rtol=0)
    # velocity_unit applies to the uncertainty too
    np.testing.assert_allclose(members["v_los_err"].to_value(KMS), [20.0, 30.0, 25.0], rtol=0)
    assert members.meta["catalog_source"] == "a pandas DataFrame"
    # m/s given for a unit-less column
    slow = read_member_catalog(frame, cluster_id="halo", radius="r_kpc", velocity="vz", radius_unit=u.kpc,
                               velocity_unit=u.m / u.s)
    np.testing.assert_allclose(slow["v_los"].to_value(KMS), [-0.31, 0.15, 0.04], rtol=1e-14)


def test_a_unit_given_for_a_column_that_already_has_another_is_an_error():
    with pytest.raises(ValueError, match="column 'rp' already has unit kpc.*radius_unit='Mpc'"):
        read_sample(sample_members(), radius_unit="Mpc")
    # the same unit as the column's own is harmless
    members = read_sample(sample_members(), radius_unit="kpc")
    assert members["R_proj"].unit == u.Mpc


def test_without_optional_columns_only_the_three_standard_columns_appear():
    table = QTable({"cluster_id": [1, 1], "R_proj": [0.1, 0.2] * u.Mpc, "v_los": [10.0, -20.0] * KMS})
    members = read_member_catalog(table)
    assert members.colnames == ["cluster_id", "R_proj", "v_los"]
    assert members.meta["catalog_source"] == "an astropy QTable"


# ------------------------------------------------------------------ round trips
def test_ecsv_round_trip_keeps_values_units_and_provenance(tmp_path):
    members = read_member_catalog(members_in_standard_units(), galaxy_id="galaxy_id", velocity_err="v_los_err")
    path = tmp_path / "members.ecsv"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ECSV keeps units: no warning
        write_member_catalog(members, path)
    back = read_member_catalog(path, galaxy_id="galaxy_id", velocity_err="v_los_err")
    assert back.colnames == members.colnames
    for name in ("R_proj", "v_los", "v_los_err"):
        assert back[name].unit == members[name].unit
        np.testing.assert_array_equal(back[name].value, members[name].value)
    assert list(back["cluster_id"]) == ["A", "A", "B"] and list(back["galaxy_id"]) == [1, 2, 3]
    np.testing.assert_array_equal(back["mag_r"], members["mag_r"])
    assert back.meta["catalog_source"] == str(path)
    with pytest.raises(OSError, match="already exists"):
        write_member_catalog(members, path)
    write_member_catalog(members, path, overwrite=True)


def test_fits_round_trip_keeps_units(tmp_path):
    members = read_member_catalog(members_in_standard_units(), velocity_err="v_los_err")
    path = tmp_path / "members.fits"
    write_member_catalog(members, path)  # the provenance dicts cannot go into a FITS header and are left out
    back = read_member_catalog(path, velocity_err="v_los_err")
    for name in ("R_proj", "v_los", "v_los_err"):
        assert back[name].unit == members[name].unit
        np.testing.assert_array_equal(back[name].value, members[name].value)
    assert np.asarray(back["cluster_id"]).astype(str).tolist() == ["A", "A", "B"]
    np.testing.assert_array_equal(np.asarray(back["galaxy_id"]), [1, 2, 3])


def test_fits_round_trip_with_integer_galaxy_ids(tmp_path):
    members = read_member_catalog(members_in_standard_units(), galaxy_id="galaxy_id")
    path = tmp_path / "members.fits"
    write_member_catalog(members, path)
    back = read_member_catalog(path, galaxy_id="galaxy_id")
    np.testing.assert_array_equal(np.asarray(back["galaxy_id"]), [1, 2, 3])


def test_csv_round_trip_warns_and_needs_the_units_again(tmp_path):
    members = read_member_catalog(members_in_standard_units(), galaxy_id="galaxy_id", velocity_err="v_los_err")
    path = tmp_path / "members.csv"
    with pytest.warns(UserWarning, match=r"CSV keeps no units.*R_proj \[Mpc\].*v_los \[km / s\]"):
        write_member_catalog(members, path)
    with pytest.raises(ValueError, match=r"column 'R_proj' \(R_proj\) has no unit.*radius_unit="):
        read_member_catalog(path, galaxy_id="galaxy_id", velocity_err="v_los_err")
    with pytest.raises(ValueError, match=r"column 'v_los' \(v_los\) has no unit.*velocity_unit="):
        read_member_catalog(path, radius_unit="Mpc")
    back = read_member_catalog(path, galaxy_id="galaxy_id", velocity_err="v_los_err", radius_unit="Mpc",
                               velocity_unit="km/s")
    assert back.colnames == members.colnames
    for name in ("R_proj", "v_los", "v_los_err"):
        assert back[name].unit == members[name].unit
        np.testing.assert_array_equal(back[name].value, members[name].value)
    assert list(back["cluster_id"]) == ["A", "A", "B"]
    # CSV read back in other units is converted
    in_kpc = read_member_catalog(path, radius_unit="kpc", velocity_unit="km/s")
    np.testing.assert_allclose(in_kpc["R_proj"].to_value(u.Mpc), members["R_proj"].value / 1000, rtol=1e-14)


# ------------------------------------------------------------------ bad input
def test_missing_velocity_column_is_named():
    table = sample_members()
    table.remove_column("vz")
    with pytest.raises(ValueError, match=r"no velocity column 'vz'.*available columns.*pass velocity=<name>"):
        read_sample(table)


@pytest.mark.parametrize("unit", [u.km, u.Mpc])
def test_velocity_with_a_length_unit_is_refused(unit):
    table = sample_members()
    table["vz"] = table["vz"].value * unit
    with pytest.raises(ValueError, match=r"column 'vz' has unit .*which is not a velocity"):
        read_sample(table)


def test_velocity_without_unit_is_refused_and_names_velocity_unit():
    table = sample_members()
    table["vz"] = table["vz"].value  # e.g. a redshift or a bare number
    with pytest.raises(ValueError, match=r"column 'vz' \(v_los\) has no unit.*velocity_unit="):
        read_sample(table)


def test_radius_with_a_velocity_unit_is_refused():
    table = sample_members()
    table["rp"] = table["rp"].value * KMS
    with pytest.raises(ValueError, match=r"column 'rp' has unit km / s, which is not a length"):
        read_sample(table)


def test_negative_radius_is_refused_with_its_row():
    table = sample_members()
    table["rp"][3] = -1 * u.kpc
    with pytest.raises(ValueError, match=r"column 'rp' \(R_proj\) has 1 negative projected radii \(rows 3\)"):
        read_sample(table)


@pytest.mark.parametrize("bad", [0.0, -5.0])
def test_non_positive_velocity_uncertainty_is_refused(bad):
    table = sample_members()
    table["e_vz"][1] = bad * u.m / u.s
    with pytest.raises(ValueError, match=r"column 'e_vz' \(v_los_err\) has 1 non-positive uncertainties \(rows 1\)"):
        read_sample(table)


def test_nan_rows_raise_or_are_dropped_with_a_warning_giving_count_and_rows():
    table = sample_members()
    table["vz"][1] = np.nan * u.m / u.s
    table["rp"][4] = np.nan * u.kpc
    with pytest.raises(ValueError, match=r"2 of 5 row\(s\) with NaN.*rows 1, 4.*drop_nan=True"):
        read_sample(table)
    with pytest.warns(UserWarning, match=r"dropping 2 of 5 row\(s\) with NaN.*\(rows 1, 4\)"):
        members = read_sample(table, drop_nan=True)
    assert len(members) == 3 and members.meta["dropped_rows"] == [1, 4]
    assert list(members["galaxy_id"]) == [11, 13, 11]
    assert np.isfinite(members["v_los"]).all() and np.isfinite(members["R_proj"]).all()
    with pytest.raises(TypeError, match="drop_nan"):
        read_sample(table, drop_nan="yes")


def test_masked_velocity_counts_as_missing():
    table = Table({"cluster_id": [1, 1, 2], "R_proj": [0.1, 0.2, 0.3],
                   "v_los": MaskedColumn([1.0, 2.0, 3.0], mask=[False, True, False])})
    table["R_proj"].unit, table["v_los"].unit = u.Mpc, KMS
    with pytest.raises(ValueError, match=r"1 of 3 row\(s\).*masked.*rows 1"):
        read_member_catalog(table)
    with pytest.warns(UserWarning, match="dropping 1 of 3"):
        members = read_member_catalog(table, drop_nan=True)
    np.testing.assert_array_equal(members["v_los"].to_value(KMS), [1.0, 3.0])


def test_only_nan_rows_leaves_nothing_usable():
    table = QTable({"cluster_id": [1, 2], "R_proj": [np.nan, 0.1] * u.Mpc, "v_los": [1.0, np.nan] * KMS})
    with pytest.warns(UserWarning, match="dropping 2 of 2"), pytest.raises(ValueError, match="no usable rows"):
        read_member_catalog(table, drop_nan=True)


def test_nan_cluster_id_is_refused_like_other_nan_rows():
    table = QTable({"cluster_id": [1.0, np.nan, 2.0], "R_proj": [0.1, 0.2, 0.3] * u.Mpc,
                    "v_los": [1.0, 2.0, 3.0] * KMS})
    with pytest.raises(ValueError, match=r"1 of 3 row\(s\) with NaN.*rows 1"):
        read_member_catalog(table)


def test_duplicated_galaxy_in_one_cluster_names_galaxy_and_cluster():
    table = sample_members()
    table["gal"][2] = 12  # galaxy 12 twice in cluster A (rows 1 and 2)
    with pytest.raises(ValueError, match=r"column 'gal' \(galaxy_id\) has 1 galaxy id\(s\) listed more than once"
                                         r".*galaxy 12 of cluster 'A' in rows 1, 2"):
        read_sample(table)


def test_duplicated_string_galaxy_ids_are_named():
    table = QTable({"cl": [5, 5, 6], "name": ["g1", "g1", "g1"], "R_proj": [0.1, 0.2, 0.3] * u.Mpc,
                    "v_los": [1.0, 2.0, 3.0] * KMS})
    with pytest.raises(ValueError, match=r"galaxy 'g1' of cluster 5 in rows 0, 1"):
        read_member_catalog(table, cluster_id="cl", galaxy_id="name")


def test_the_same_galaxy_in_two_clusters_is_allowed():
    members = read_sample(sample_members())  # galaxy 11 is in clusters A and B
    assert sorted(members["cluster_id"][members["galaxy_id"] == 11]) == ["A", "B"]


def test_nonexistent_file_and_wrong_source_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="no member catalog at"):
        read_member_catalog(tmp_path / "missing.ecsv")
    with pytest.raises(FileNotFoundError):
        read_member_catalog(str(tmp_path / "missing.csv"))
    for source in ([1, 2, 3], {"cluster_id": [1]}, np.zeros(3), 42):
        with pytest.raises(TypeError, match=f"source must be a path.*got {type(source).__name__}"):
            read_member_catalog(source)


def test_unreadable_file_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "garbage.fits"
    path.write_bytes(b"this is not a FITS file")
    with pytest.raises(ValueError, match="could not read .*garbage.fits"):
        read_member_catalog(path)


def test_a_column_name_used_twice_or_a_standard_name_clash():
    table = sample_members()
    with pytest.raises(ValueError, match=r"column\(s\) \['vz'\] were given for more than one quantity"):
        read_sample(table, velocity_err="vz")
    table["v_los"] = table["vz"]
    with pytest.raises(ValueError, match="already has a column 'v_los' besides 'vz'"):
        read_sample(table)


def test_write_refuses_non_tables(tmp_path):
    with pytest.raises(TypeError, match="table must be an astropy Table"):
        write_member_catalog({"cluster_id": [1]}, tmp_path / "x.ecsv")


def test_write_refuses_the_file_it_was_read_from(tmp_path):
    path = tmp_path / "members.ecsv"
    write_member_catalog(read_member_catalog(members_in_standard_units()), path)
    original = path.read_bytes()
    members = read_member_catalog(path)
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    for target in (path, tmp_path / "alias" / "members.ecsv"):  # also through a symlinked folder
        with pytest.raises(ValueError, match="is the file the table was read from.*refusing to write over"):
            write_member_catalog(members[members["cluster_id"] == "A"], target, overwrite=True)
    assert path.read_bytes() == original
    write_member_catalog(members, tmp_path / "copy.ecsv")  # anywhere else is fine, and the record is not written
    assert "astrobayes_read_from" not in Table.read(tmp_path / "copy.ecsv").meta


# ------------------------------------------------------------------ redshifts and sky positions
def test_velocity_from_redshift_matches_hand_computation():
    z = np.array([0.1010, 0.0990, 0.1, 0.1234])
    z_c = 0.1
    c_kms = const.c.to_value(KMS)  # 299792.458 km/s, exact by definition
    expected = c_kms * (z - z_c) / (1 + z_c)
    velocity = velocity_from_redshift(z, z_c)
    assert velocity.unit == KMS
    np.testing.assert_allclose(velocity.value, expected, rtol=1e-13, atol=1e-10)
    assert velocity[2].value == 0.0
    # per-galaxy cluster redshifts broadcast
    np.testing.assert_allclose(velocity_from_redshift([0.05, 0.21], [0.05, 0.2]).value,
                               [0.0, c_kms * 0.01 / 1.2], rtol=1e-13, atol=1e-10)
    with pytest.raises(ValueError, match="finite"):
        velocity_from_redshift([0.1, np.nan], 0.1)
    with pytest.raises(ValueError, match="cluster_redshift must be > -1"):
        velocity_from_redshift([0.1], -1.0)


def test_projected_radius_is_separation_times_angular_diameter_distance_at_h_0_7():
    ra = np.array([150.01, 150.0, 150.3, 149.5])
    dec = np.array([2.0, 2.05, 1.8, 2.4])
    ra_c, dec_c, z_c = 150.0, 2.0, 0.1
    # spherical law of cosines, independent of SkyCoord (fine at these > 1 arcsec separations in float64)
    r1, d1, r2, d2 = np.radians(ra), np.radians(dec), np.radians(ra_c), np.radians(dec_c)
    separation = np.arccos(np.clip(np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2), -1, 1))
    # the default is the clusters domain's one cosmology: flat ΛCDM, H0 = 70 km/s/Mpc (the mocks' h), Om0 = 0.3,
    # built here independently of astrobayes
    d_a = FlatLambdaCDM(H0=70, Om0=0.3).angular_diameter_distance(z_c).to_value(u.Mpc)
    radius = projected_radius(ra, dec, ra_c, dec_c, z_c)
    assert radius.unit == u.Mpc
    # arccos loses ~1e-8 relative precision at the smallest (36 arcsec) separation
    np.testing.assert_allclose(radius.value, separation * d_a, rtol=1e-7)
    # angles as Quantities, and another cosmology: Planck18 (h = 0.677) gives radii ~3 % larger at z = 0.1
    other = projected_radius(ra * u.deg, dec * u.deg, ra_c * u.deg, dec_c * u.deg, z_c, cosmology=Planck18)
    np.testing.assert_allclose(other.value, separation * Planck18.angular_diameter_distance(z_c).to_value(u.Mpc),
                               rtol=1e-7)
    assert 1.01 < other.value[0] / radius.value[0] < 1.05
    in_arcmin = projected_radius(ra_c * u.deg + 0.6 * u.arcmin, dec_c * u.deg, ra_c, dec_c, z_c)
    expected = np.radians(0.01 * np.cos(np.radians(dec_c))) * d_a  # small-angle: Δα cos δ
    np.testing.assert_allclose(in_arcmin.value, expected, rtol=1e-6)


def test_one_cosmology_across_readers_mocks_and_mass_conventions():
    from astrobayes.clusters import COSMOLOGY, describe_cosmology, from_h_inverse, simulate_clusters, to_h_inverse

    assert COSMOLOGY.h == 0.7 and COSMOLOGY.Om0 == 0.3          # the mocks' h (simulate_clusters(h=0.7))
    assert simulate_clusters(2, seed=0)[0].meta["simulation"]["h"] == COSMOLOGY.h
    assert describe_cosmology()["H0_km_s_Mpc"] == 70.0
    with pytest.raises(TypeError, match="cosmology"):
        projected_radius(150.01, 2.0, 150.0, 2.0, 0.1, cosmology="Planck18")
    # Ho et al. 2022: 10^15.10 h⁻¹ M_sun is 10^(15.10 − log10 0.7) = 10^15.2549 M_sun at h = 0.7, and back
    assert from_h_inverse(15.10) == pytest.approx(15.10 - np.log10(0.7), abs=1e-12)
    assert to_h_inverse(from_h_inverse(np.array([14.0, 15.1]), h=0.68), h=0.68) == pytest.approx([14.0, 15.1])
    with pytest.raises(ValueError, match="h must be a finite positive"):
        to_h_inverse(15.0, h=-0.7)
