"""Bad input around the real-sky conventions: h, log masses, mock settings, and members selected unlike the mocks."""
import astropy.units as u
import numpy as np
import pytest

from astrobayes.clusters import COMA_CENTRE, COMA_FIELD, members_from_field, simulate_clusters
from astrobayes.clusters.halos import MassFunction, from_h_inverse, to_h_inverse
from astrobayes.clusters.model import ClusterMassModel


def test_h_conversions_refuse_linear_masses_h_as_h0_and_non_numbers():
    assert to_h_inverse(15.255) == pytest.approx(15.255 + np.log10(0.7))
    np.testing.assert_allclose(from_h_inverse(to_h_inverse([14.0, 15.0], h=0.68), h=0.68), [14.0, 15.0])
    with pytest.raises(ValueError, match="log_mass must be log10"):
        to_h_inverse(1e15)
    with pytest.raises(ValueError, match="give h=0.7"):
        from_h_inverse(15.1, h=70)
    for bad in (None, "15", 1e15 * u.M_sun):
        with pytest.raises(TypeError, match="log_mass must be log10"):
            to_h_inverse(bad)
    with pytest.raises(ValueError, match="NaN"):
        to_h_inverse(np.nan)


@pytest.mark.parametrize("options, error, match", [
    ({"n_redshifts": (10, 10**9)}, ValueError, "n_redshifts reaches"),
    ({"h": 70}, ValueError, "h must be H0"),
    ({"seed": "a"}, TypeError, "seed must be an integer")])
def test_simulator_refuses_impossible_settings_before_any_work(options, error, match):
    with pytest.raises(error, match=match):
        simulate_clusters(3, **options)


def _model(**settings):
    return ClusterMassModel(None, "mdn", "features", MassFunction("flat", log_mass_range=(13.3, 15.7)), [],
                            {"aperture_Mpc": 1.6, "v_cut_km_s": 2500.0, "h": 0.7, "interloper_rejection": "none",
                             **settings})


def test_members_selected_in_a_narrower_cylinder_or_another_cosmology_are_refused():
    from astropy.cosmology import Planck18
    model = _model()
    narrow = members_from_field(COMA_FIELD, COMA_CENTRE, aperture=0.5 * u.Mpc, rejection="none")
    with pytest.raises(ValueError, match="within aperture = 0.5 Mpc"):
        model.clean(narrow)
    slow = members_from_field(COMA_FIELD, COMA_CENTRE, v_cut=1000 * u.km / u.s, rejection="none")
    with pytest.raises(ValueError, match="v_cut=2500"):
        model.clean(slow)
    planck = members_from_field(COMA_FIELD, COMA_CENTRE, cosmology=Planck18, rejection="none")
    with pytest.raises(ValueError, match="h = 0.6766"):
        model.clean(planck)
    wide = members_from_field(COMA_FIELD, COMA_CENTRE, aperture=2.0 * u.Mpc, rejection="none")
    assert len(model.clean(wide)) == len(wide)  # a wider cylinder is cut later by select()


def test_velocities_in_the_wrong_unit_are_named_before_the_cylinder_cut():
    """m/s values labelled km/s used to be cut away by the training cylinder (|v_los| ≤ 2500 km/s) and end in
    "members is empty"; plain numbers in m/s said only that a Quantity was needed."""
    from astropy.table import QTable, Table

    from astrobayes.clusters.reweight import estimate_mass

    members, _ = simulate_clusters(3, seed=0)
    members = members[np.abs(members["v_los"]) > 5 * u.km / u.s]  # none would survive the cut in m/s
    mislabelled = members.copy()
    mislabelled["v_los"] = members["v_los"].to_value(u.m / u.s) * u.km / u.s
    for rejection in ("none", "shifting_gapper"):
        with pytest.raises(ValueError, match=r"'v_los' reaches \|v\| = .* Are they in m/s labelled km/s"):
            estimate_mass(mislabelled, _model(interloper_rejection=rejection))
    plain = QTable(members)
    plain["v_los"] = members["v_los"].to_value(u.m / u.s)
    with pytest.raises(ValueError, match=r"Quantity in km / s .* plain numbers reach 2.4.e\+06.*if they are m/s"):
        estimate_mass(plain, _model())
    kpc = QTable(members)
    kpc["R_proj"] = members["R_proj"].to_value(u.kpc) * u.Mpc
    with pytest.raises(ValueError, match="Are the radii in kpc labelled Mpc"):
        _model().select(kpc)
    # a Table with unit columns is cut like a QTable (it used to pass uncut)
    wide = Table(QTable(members))
    wide["v_los"][0] = 3000.0
    with pytest.warns(UserWarning, match="1 of .* galaxies lie outside the cylinder"):
        assert len(_model().select(wide)) == len(members) - 1


def test_every_column_of_estimate_mass_has_a_description():
    from astrobayes.clusters import train_mass_model
    from astrobayes.clusters.reweight import estimate_mass

    members, truth = simulate_clusters(100, seed=0)
    model = train_mass_model(members, truth, epochs=1, progress=False)
    masses = estimate_mass(members[members["cluster_id"] < 3], model, prior="flat")
    missing = [name for name in masses.colnames if not masses[name].info.description]
    assert not missing, missing
    assert masses["mass_median"].info.description.startswith("median M200c [M_sun], h = 0.7")
