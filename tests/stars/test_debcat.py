"""DEBCat shipped and read; the stellar map's predictions on real stars, with their domain flags.

Reader checks are exact (the file's own numbers) or reproduce the consistency checks of
catalogs/stars/README.md; flag checks use the exact Tout et al. model (no training) or a
2-epoch map (where only the recorded domain matters).
"""
import hashlib
import warnings

import astropy.units as u
import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from astropy.table import QTable, vstack
from astropy.utils.masked import Masked

from astrobayes.stars import simulate_field, stefan_boltzmann_model, write_stellar_catalog
from astrobayes.stars.debcat import DEBCAT_PATH, read_debcat
from astrobayes.stars.emulator import exact_stellar_delta_map, stellar_delta_map, train_stellar_map
from astrobayes.stars.evolution import ms_log_radius_teff
from astrobayes.stars.predict import DOMAIN_FLAGS, predict_stars
from astrobayes.stars.residuals import fit_fractional_age, plot_residuals, summarize_residuals
from astrobayes.stars.zams import zams_log_radius_teff

matplotlib.use("Agg")
DOMAIN = {"log_mass_range": (np.log10(0.5), np.log10(20.0)), "feh_range": (-1.0, 0.15)}


@pytest.fixture(scope="module")
def debcat():
    return read_debcat()


@pytest.fixture(scope="module")
def tiny_map():
    return train_stellar_map(n_train=500, hidden=(8,), epochs=2, progress=False)


def star(debcat, system, component):
    return debcat[(debcat["system"] == system) & (debcat["component"] == component)][0]


# ------------------------------------------------------------------ the shipped file and the reader
def test_shipped_file_is_the_documented_copy():
    assert hashlib.sha256(DEBCAT_PATH.read_bytes()).hexdigest() == \
        "378875e64505bc1409575260be5b9d03060be77638eb74e0f2ece61c7e170182"


def test_one_row_per_star_with_units(debcat):
    assert len(debcat) == 524 and len(set(debcat["system"])) == 262
    assert list(debcat["component"][:4]) == [1, 2, 1, 2] and debcat["system"][0] == debcat["system"][1]
    units = {"mass": u.solMass, "mass_err": u.solMass, "radius": u.solRad, "radius_err": u.solRad, "teff": u.K,
             "teff_err": u.K, "luminosity": u.solLum, "luminosity_err": u.solLum, "period": u.day}
    for name, unit in units.items():
        assert debcat[name].unit == unit, name
    # README: masses 0.106–27.3 M_sun, all present; log L missing for 37 systems, [M/H] for 125
    assert debcat["mass"].min().to_value(u.solMass) == pytest.approx(0.106, abs=5e-4)
    assert debcat["mass"].max().to_value(u.solMass) == pytest.approx(27.3, abs=0.05)
    assert np.isfinite(debcat["mass"]).all() and np.isfinite(debcat["radius"]).all()
    assert np.isnan(debcat["luminosity"]).sum() == 2 * 37 and np.isnan(debcat["feh"]).sum() == 2 * 125
    assert not np.any(np.asarray(debcat["feh"]) == -9.99) and not np.any(debcat["log_luminosity"] == -9.99)
    assert debcat.meta["catalog_source"] == str(DEBCAT_PATH) and "Southworth" in debcat.meta["citation"]
    assert any("computed from R and T_eff" in caveat for caveat in debcat.meta["caveats"])


def test_known_systems(debcat):
    masses = {("CM_Dra", 1): 0.2310, ("CM_Dra", 2): 0.2141, ("AI_Phe", 1): 1.1937, ("AI_Phe", 2): 1.2439,
              ("V1143_Cyg", 1): 1.361, ("V1143_Cyg", 2): 1.332}
    for (system, component), mass in masses.items():
        # DEBCat rounds log M to 4 decimals: 1e-4 dex is 2.3e-4 relative
        assert star(debcat, system, component)["mass"].to_value(u.solMass) == pytest.approx(mass, rel=3e-4)
    sun_like = star(debcat, "V530_Ori", 1)
    assert sun_like["radius"].to_value(u.solRad) == pytest.approx(0.980, rel=3e-4)
    assert sun_like["teff"].to_value(u.K) == pytest.approx(5984, rel=3e-4)
    assert sun_like["feh"] == pytest.approx(-0.12) and sun_like["log_luminosity"] == pytest.approx(0.016)
    # a linear error is ln(10)·value·(log error): the error of ln(value), as the stars model reads it
    cm_dra = star(debcat, "CM_Dra", 1)
    assert (cm_dra["mass_err"] / cm_dra["mass"]).to_value(u.one) == pytest.approx(np.log(10) * 0.0017, rel=1e-12)
    # V1143 Cyg's [M/H] error is written -9.00 beside a missing [M/H]: both missing
    assert np.isnan(star(debcat, "V1143_Cyg", 1)["feh"]) and np.isnan(star(debcat, "V1143_Cyg", 1)["feh_err"])


def test_stefan_boltzmann_consistency_of_the_catalogued_luminosities(debcat):
    # README: 2 log R + 4 log(T/5772 K) - log L has median ≈ 0.001 dex in size, standard deviation ≈ 0.011 dex
    # for the 225 primaries with log L (L was computed from R and T_eff, not measured)
    primaries = debcat[(debcat["component"] == 1) & np.isfinite(debcat["log_luminosity"])]
    offset = 2 * primaries["log_radius"] + 4 * (primaries["log_teff"] - np.log10(5772.0)) - primaries["log_luminosity"]
    assert len(primaries) == 225
    assert abs(np.median(offset)) < 0.002 and np.std(offset) == pytest.approx(0.011, abs=0.001)


def test_main_sequence_cut(debcat):
    main = read_debcat(main_sequence=True)
    assert len(main) == int(np.sum(debcat["log_g"] >= 4.0)) == 344
    assert main["log_g"].min() >= 4.0 and "180 dropped" in main.meta["selection"]
    assert len(read_debcat(main_sequence=True, min_log_g=4.5)) == int(np.sum(debcat["log_g"] >= 4.5))
    in_mass_range = (main["mass"] >= 0.5 * u.solMass) & (main["mass"] <= 20 * u.solMass)
    assert in_mass_range.sum() == 318  # the count


def test_written_catalogue_refuses_to_overwrite_the_shipped_file(debcat):
    with pytest.raises(ValueError, match="refusing to write over"):
        write_stellar_catalog(debcat, DEBCAT_PATH, format="ascii.ecsv", overwrite=True)


# ------------------------------------------------------------------ bad files
def lines():
    return DEBCAT_PATH.read_text().splitlines()


def write(tmp_path, text_lines, name="debs.dat"):
    path = tmp_path / name
    path.write_text("\n".join(text_lines) + "\n")
    return path


def test_missing_mass_names_the_system(tmp_path):
    text = lines()
    fields = text[3].split()  # CM_Dra
    fields[6] = "-9.9900"
    text[3] = " ".join(fields)
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=r"CM_Dra.*drop_missing_mass=True"):
        read_debcat(path)
    with pytest.warns(UserWarning, match=r"dropping 1 system.*CM_Dra"):
        dropped = read_debcat(path, drop_missing_mass=True)
    assert len(dropped) == 522 and "CM_Dra" not in set(dropped["system"])
    assert dropped.meta["dropped_systems"] == ["CM_Dra"]


@pytest.mark.parametrize("change, message", [
    (lambda text: text[:5] + [text[5].rsplit(maxsplit=1)[0]] + text[6:], r"line 6 has 27 fields.*28"),
    (lambda text: text[:2] + [text[2].replace("1.748", "1.7x8")] + text[3:], r"line 3 .*'period' is '1.7x8'"),
    (lambda text: ["System,M1,M2", "a,1,2"], "not a DEBCat table"),
    (lambda text: text[:1], "no data rows"),
    (lambda text: text[:2] + [text[2].replace(" 0.0032 ", " -0.0032 ", 1)] + text[3:], "negative uncertainties"),
    (lambda text: text[:2] + [text[2].replace(" 0.0032 ", " 9.0032 ", 1)] + text[3:], "log_mass_err_1 of system NGTS"),
    (lambda text: text[:2] + [text[2].replace("-0.7597", " 9.7597", 1)] + text[3:],
     r"log\(M1\) of system NGTS_J052218.2-250710.4 is 9.7597, outside"),
    (lambda text: text[:2] + [text[2].replace(" 1.748", "-1.748", 1)] + text[3:], "period P.d. of system NGTS"),
    # hostile-input regressions: a system counted twice was read twice; the [M/H] message said "[M of system"
    (lambda text: text + [text[3]], r"line 264: system 'CM_Dra' is listed twice \(first on line 4\)"),
    (lambda text: text[:3] + [text[3].replace("-0.3000  0.1200", "-6.0000  0.1200")] + text[4:],
     r"debs.dat: \[M/H\] of system CM_Dra is -6, outside"),
])
def test_bad_files_are_refused_with_the_line(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        read_debcat(write(tmp_path, change(lines())))


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="no DEBCat table"):
        read_debcat(tmp_path / "absent.dat")
    with pytest.raises(ValueError, match="folder"):
        read_debcat(tmp_path)
    with pytest.raises(TypeError, match="source must be the path"):
        read_debcat(42)
    with pytest.raises(TypeError, match="main_sequence must be True or False"):
        read_debcat(main_sequence="yes")
    binary = tmp_path / "binary.dat"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not plain ASCII"):
        read_debcat(binary)


@settings(max_examples=40, deadline=None)
@given(offset=st.integers(0, 64752), byte=st.integers(0, 255), cut=st.integers(0, 200))
def test_damaged_files_are_read_or_refused_clearly(tmp_path_factory, offset, byte, cut):
    # one byte set anywhere and the end cut off: either a catalogue that keeps the reader's guarantees, or a
    # ValueError naming the file
    data = bytearray(DEBCAT_PATH.read_bytes())
    data[offset] = byte
    path = tmp_path_factory.mktemp("damaged") / "debs.dat"
    path.write_bytes(bytes(data[:len(data) - cut]))
    try:
        catalog = read_debcat(path)
    except ValueError as err:
        assert "debs.dat" in str(err)
        return
    assert len(catalog) % 2 == 0 and len(catalog) >= 2
    for name in ("mass", "mass_err"):
        assert np.all(np.isfinite(catalog[name])) and np.all(catalog[name] > 0)
    assert np.nanmax(catalog["mass"].to_value(u.solMass)) < 10 ** 2.5


# ------------------------------------------------------------------ predictions and domain flags
def test_flags_on_debcat_count_what_the_catalogue_holds(debcat):
    with pytest.warns(UserWarning, match=r"of 524 stars, \d+ below_mass_domain, .*no_feh: \[Fe/H\] = 0 assumed"):
        predicted = predict_stars(debcat, exact_stellar_delta_map(), **DOMAIN)
    mass = debcat["mass"].to_value(u.solMass)
    feh = np.asarray(debcat["feh"])
    expected = {"below_mass_domain": mass < 0.5, "above_mass_domain": mass > 20.0,
                "outside_feh_domain": (feh < -1.0) | (feh > 0.15), "no_feh": np.isnan(feh),
                "not_main_sequence": (np.asarray(debcat["log_g"]) < 4.0)
                | (debcat["radius"].to_value(u.solRad) > 2 * predicted["radius"].to_value(u.solRad))}
    for name in DOMAIN_FLAGS:
        np.testing.assert_array_equal(predicted[name], expected[name], err_msg=name)
    assert predicted.meta["flag_counts"] == {name: int(v.sum()) for name, v in expected.items()}
    outside = expected["below_mass_domain"] | expected["above_mass_domain"] | expected["outside_feh_domain"]
    assert np.isnan(predicted["radius"][outside]).all() and np.isfinite(predicted["radius"][~outside]).all()
    # CM Dra (0.23 M_sun) is below the default domain; V530 Ori A is a main-sequence star with measured [M/H]
    assert predicted["flags"][(debcat["system"] == "CM_Dra") & (debcat["component"] == 1)][0] == "below_mass_domain"
    v530 = (predicted["system"] == "V530_Ori") & (predicted["component"] == 1)
    assert predicted["flags"][v530][0] == "" and predicted["in_domain"][v530][0]
    # the prediction at the star's mass and [Fe/H] is the exact ZAMS one, and the residual is measured − map
    log_radius, _ = zams_log_radius_teff(np.log10(1.00369), -0.12)
    assert predicted["radius"][v530][0].to_value(u.solRad) == pytest.approx(10 ** log_radius, rel=1e-3)
    assert predicted["delta_log_radius"][v530][0].to_value(u.dex) == pytest.approx(
        np.log10(0.98) - log_radius, abs=5e-4)


def test_no_feh_uses_the_default_and_extrapolate_evaluates_outside(tiny_map):
    masses = [0.3, 1.0, 30.0] * u.solMass
    # 0.3 and 30 M_sun lie beyond the training box too: the OOD check flags them in a line of its own
    with pytest.warns(UserWarning, match="3 no_feh"), pytest.warns(UserWarning, match="2 of 3 stars are unlike"):
        predicted = predict_stars(masses, tiny_map)  # the map's own domain, 0.5–20 M_sun
    assert predicted["flags"].tolist() == ["below_mass_domain,no_feh", "no_feh", "above_mass_domain,no_feh"]
    assert np.all(np.asarray(predicted["feh"]) == 0.0) and predicted.meta["seed"] == 0
    assert np.isnan(predicted["teff"][[0, 2]]).all() and np.isfinite(predicted["teff"][1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        everywhere = predict_stars(masses, tiny_map, feh=[-0.1, 0.0, 0.5], extrapolate=True, warn=False)
    assert np.isfinite(everywhere["teff"]).all() and everywhere["outside_feh_domain"].tolist() == [False, False, True]
    # the luminosity is 4πR²σT⁴ of the predicted radius and temperature
    expected = (4 * np.pi * everywhere["radius"] ** 2 * 5.670374419e-8 * u.W / u.m ** 2 / u.K ** 4
                * everywhere["teff"] ** 4).to_value(u.solLum)
    np.testing.assert_allclose(everywhere["luminosity"].to_value(u.solLum), expected, rtol=1e-6)


def test_log_g_from_mass_and_radius_flags_an_inflated_star():
    # no log_g column: log g = 4.438 + log M − 2 log R. A 1 M_sun star of 1.3 R_sun has log g 4.21 (main
    # sequence); of 2.5 R_sun, log g 3.64 and R ≈ 2.8× the ZAMS radius: not on the main sequence
    stars = QTable({"mass": [1.0, 1.0] * u.solMass, "feh": [0.0, 0.0], "radius": [1.3, 2.5] * u.solRad})
    predicted = predict_stars(stars, exact_stellar_delta_map(), **DOMAIN, warn=False)
    np.testing.assert_allclose(predicted["log_g"], [4.438 - 2 * np.log10(1.3), 4.438 - 2 * np.log10(2.5)], atol=1e-3)
    assert predicted["not_main_sequence"].tolist() == [False, True]
    # the radius criterion on its own (a log g that looks fine)
    stars["log_g"] = [4.4, 4.4]
    assert predict_stars(stars, exact_stellar_delta_map(), **DOMAIN, warn=False)["not_main_sequence"].tolist() == \
        [False, True]


def test_ood_p_value_scores_each_star_against_the_training_stars(tiny_map, tmp_path):
    # 400 stars drawn as the training stars were (uniform in the training box): conformal p-values, so the
    # fraction at p <= α is α within 3σ of the binomial spread of both the stars and the n_cal calibration rows
    # (the reference's own sampling), plus the conformal discreteness 1 / (n_cal + 1)
    domain = tiny_map.stellar_map_domain
    rng = np.random.default_rng(7)
    log_mass = rng.uniform(*domain["training_log_mass_range"], 400)
    feh = rng.uniform(*domain["training_feh_range"], 400)
    table = predict_stars(10 ** log_mass * u.solMass, tiny_map, feh=feh, extrapolate=True, warn=False)
    p = np.asarray(table["ood_p_value"])
    n_cal = tiny_map.ood.n_calibration
    for alpha in (0.01, 0.05):
        band = 3 * np.sqrt(alpha * (1 - alpha) * (1 / 400 + 1 / n_cal)) + 1 / (n_cal + 1)
        assert abs(np.mean(p <= alpha) - alpha) <= band, (alpha, np.mean(p <= alpha))
    # the p-values come from the prediction's own pass: the same as a separate pass of the network
    np.testing.assert_allclose(p, tiny_map.ood_p_value(np.column_stack([log_mass, feh]).astype(np.float32)))
    assert table["ood_p_value"].info.description.startswith("conformal p-value")
    assert table.meta["ood_alpha"] == 0.01 and table.meta["ood_flagged"] == int(np.sum(p <= 0.01))
    assert "ood_note" not in table.meta
    # 50 M_sun, and [Fe/H] = +3: far outside the training box, flagged, also when not predicted (a pass of their
    # own); the domain flags stay what they were, and the OOD check adds no flag of its own
    stars = QTable({"mass": [1.0, 50.0, 1.0] * u.solMass, "feh": [0.0, 0.0, 3.0]})
    with pytest.warns(UserWarning, match="1 above_mass_domain, 1 outside_feh_domain"), \
            pytest.warns(UserWarning, match=r"^2 of 3 stars are unlike the training simulations at α = 0.01"):
        far = predict_stars(stars, tiny_map)
    assert far["flags"].tolist() == ["", "above_mass_domain", "outside_feh_domain"]
    assert far["ood_p_value"][0] > 0.01 and np.all(far["ood_p_value"][1:] <= 0.01) and far.meta["ood_flagged"] == 2
    assert np.isnan(far["radius"][1:]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warn=False keeps both warnings back
        quiet = predict_stars(stars, tiny_map, warn=False)
    np.testing.assert_array_equal(quiet["ood_p_value"], far["ood_p_value"])
    # through the learned map's DeltaMap too; an exact map has no reference
    via_delta = predict_stars(stars, stellar_delta_map(tiny_map), warn=False)
    np.testing.assert_array_equal(via_delta["ood_p_value"], far["ood_p_value"])
    exact = predict_stars(stars, exact_stellar_delta_map(), **DOMAIN, warn=False)
    assert np.isnan(exact["ood_p_value"]).all() and "not a network" in exact.meta["ood_note"]
    # a map saved before OOD references: it still predicts; the column is NaN and meta says why, with no warning
    from astrobayes.core.serialization import read_model, write_model
    from astrobayes.stars.emulator import load_stellar_map, save_stellar_map

    path = tmp_path / "old_map"
    save_stellar_map(tiny_map, path)
    header, tensors = read_model(path)
    kept = {k: v for k, v in header.items() if k not in ("format", "format_version", "astrobayes_version",
                                                        "torch_version", "created", "class", "config",
                                                        "weights_file", "weights_sha256", "ood", "ood_note")}
    write_model(path, header["class"], header["config"],
                {k: t for k, t in tensors.items() if not k.startswith("ood.")}, kept)
    old = load_stellar_map(path)
    assert old.ood is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the domain flags' warning
        again = predict_stars(stars, old)
    assert np.isnan(again["ood_p_value"]).all() and "without out-of-distribution" in again.meta["ood_note"]
    assert again.meta["ood_flagged"] == 0
    np.testing.assert_array_equal(again["radius"], far["radius"])


@pytest.mark.parametrize("call, error, message", [
    (lambda m: predict_stars(QTable({"M": [1.0] * u.solMass}), m), ValueError, "needs a 'mass' column"),
    (lambda m: predict_stars(QTable({"mass": [1.0]}), m), ValueError, "'mass' has no unit"),
    (lambda m: predict_stars([1.0] * u.K, m), ValueError, "not a mass"),
    (lambda m: predict_stars([1.0, -2.0] * u.solMass, m), ValueError, r"positive and finite.*rows \[1\]"),
    (lambda m: predict_stars([1.0, 2.0], m), TypeError, "Quantity"),
    (lambda m: predict_stars([1.0] * u.solMass, m, default_feh=0.5), ValueError, "default_feh=0.5 is outside"),
    (lambda m: predict_stars(QTable({"mass": [1.0] * u.solMass, "feh": [0.0]}), m, feh=0.0), ValueError,
     "feh= is for masses"),
    (lambda m: predict_stars([1.0] * u.solMass, exact_stellar_delta_map()), ValueError, "pass log_mass_range"),
    (lambda m: predict_stars([1.0] * u.solMass, "zams"), TypeError, "stellar_map must be"),
])
def test_predict_stars_bad_input(tiny_map, call, error, message):
    with pytest.raises(error, match=message):
        call(tiny_map)


def test_hostile_inputs_to_predictions_and_residuals(tiny_map, debcat):
    # regressions from a hostile-input probe: each was accepted silently, or refused with the wrong reason
    with pytest.raises(ValueError, match=r"min_log_g=40\.0 is outside .* not g"):
        read_debcat(main_sequence=True, min_log_g=40.0)
    masses = [0.8, 1.0, 2.0] * u.solMass
    with pytest.raises(ValueError, match=r"feh must be one value or one per star \(3\), got 2"):
        predict_stars(masses, tiny_map, feh=[0.0, 0.1])
    evolving = exact_stellar_delta_map(model="evolving")
    with pytest.raises(ValueError, match="tau must be plain numbers, but has unit Gyr.*fractional_age"):
        predict_stars(masses, evolving, tau=4.6 * u.Gyr, **DOMAIN)
    with pytest.raises(ValueError, match=r"e\.g\. 1\.0000001 \(rows \[0, 1, 2\]\)"):
        predict_stars(masses, evolving, tau=1.0000001, **DOMAIN)
    # a learned map asked for a domain wider than its training box would extrapolate silently
    with pytest.raises(ValueError, match=r"log_mass_range=\(-1, 1\.3\) reaches beyond the box the map was trained on"):
        predict_stars(masses, tiny_map, log_mass_range=(-1.0, 1.3))
    stars = debcat[:6]
    as_g = QTable(stars)
    as_g["log_g"] = 10 ** as_g["log_g"]
    with pytest.raises(ValueError, match=r"column 'log_g' reaches .* not g"):
        predict_stars(as_g, tiny_map, warn=False)
    celsius = QTable(stars)
    celsius["teff"] = stars["teff"].to(u.deg_C, equivalencies=u.temperature())
    np.testing.assert_allclose(predict_stars(celsius, tiny_map, warn=False)["measured_teff"].to_value(u.K),
                               stars["teff"].to_value(u.K), rtol=1e-12)
    masked = QTable(stars)
    masked["mass"] = Masked(stars["mass"], mask=[False, True, False, False, False, False])
    with pytest.raises(ValueError, match=r"mass must be positive and finite; 1 star\(s\) are not \(rows \[1\]\)"):
        predict_stars(masked, tiny_map, warn=False)
    predicted = predict_stars(stars, exact_stellar_delta_map(), **DOMAIN, warn=False)
    with pytest.raises(TypeError, match="where must be booleans"):
        summarize_residuals(predicted, where=np.arange(6))  # indices, cast to booleans, picked rows 1-5
    with pytest.raises(ValueError, match=r"one boolean per star \(6\)"):
        plot_residuals(predicted, where=[True])
    with pytest.raises(ValueError, match="empty dict"):
        plot_residuals({})
    with pytest.raises(TypeError, match="leave out tau="):
        fit_fractional_age(stars, evolving, tau=0.5, **DOMAIN)


def test_learned_delta_map_refuses_to_extrapolate(tiny_map):
    delta = stellar_delta_map(tiny_map)
    inside = delta({"log_mass": torch.tensor([0.0, 1.3]), "feh": torch.tensor([0.0, -1.0])})
    assert inside["log_radius"].shape == (2,)
    # CM Dra's mass (0.23 M_sun) is below the training box 0.45–24 M_sun
    with pytest.raises(ValueError, match=r"trained on log_mass in \[-0.3811, 1.381\].*extrapolate for 1 value"):
        delta({"log_mass": torch.tensor([0.0, np.log10(0.231)]), "feh": torch.tensor([0.0, 0.0])})
    with pytest.raises(ValueError, match=r"feh in \[-1.058, 0.1761\]"):
        delta({"log_mass": torch.tensor([0.0]), "feh": torch.tensor([0.3])})


def test_hierarchical_model_refuses_a_domain_beyond_the_learned_map(tiny_map):
    # a user's wider mass range would have the network evaluated where it was never trained: refused, not extrapolated
    field = simulate_field(50, seed=1)
    with pytest.raises(ValueError, match=r"trained on log_mass in \[-0.3811, 1.381\] and would extrapolate"):
        stefan_boltzmann_model(field, tiny_map, log_mass_range=(-1.0, 1.3))


def test_residual_summary_and_figure(debcat):
    predicted = predict_stars(debcat, exact_stellar_delta_map(), **DOMAIN, warn=False)
    summary = summarize_residuals(predicted)
    used = np.asarray(predicted["in_domain"])
    radius = predicted["delta_log_radius"].to_value(u.dex)[used]
    assert summary["n_stars"].tolist() == [used.sum(), used.sum()]
    assert summary["median"][0].to_value(u.dex) == pytest.approx(np.median(radius))
    assert summary["robust_scatter"][0].to_value(u.dex) == pytest.approx(
        1.4826 * np.median(np.abs(radius - np.median(radius))))
    assert summary["fraction_above"][0] == pytest.approx(np.mean(radius > 0))
    figure = plot_residuals({"exact ZAMS": predicted})
    assert len(figure.axes) == 4 and sum(len(ax.collections) for ax in figure.axes) == 8
    with pytest.raises(TypeError, match="predict_stars"):
        summarize_residuals(debcat)


def evolving_map():
    return exact_stellar_delta_map(model="evolving")


def test_fractional_age_fit_recovers_the_age_of_a_model_star():
    # stars built from the HPT00 model at known τ, with 1 % radius and temperature errors: the best τ is the true
    # one within the grid step where the track moves fast enough; a star 30 % smaller than any model is not explained
    tau = np.array([0.1, 0.5, 0.9])
    log_mass, feh = np.log10([1.2, 3.0, 8.0]), np.array([0.0, -0.3, 0.1])
    log_radius, log_teff = ms_log_radius_teff(log_mass, feh, tau)
    stars = QTable({"mass": 10 ** log_mass * u.solMass, "feh": feh, "radius": 10 ** log_radius * u.solRad,
                    "radius_err": 0.01 * 10 ** log_radius * u.solRad, "teff": 10 ** log_teff * u.K,
                    "teff_err": 0.01 * 10 ** log_teff * u.K})
    stars.add_row({"mass": 1.0 * u.solMass, "feh": 0.0, "radius": 0.6 * u.solRad, "radius_err": 0.006 * u.solRad,
                   "teff": 5600 * u.K, "teff_err": 56 * u.K})
    fitted = fit_fractional_age(stars, evolving_map(), **DOMAIN, warn=False)
    np.testing.assert_allclose(fitted["tau"][:3], tau, atol=0.005)  # the grid step
    np.testing.assert_allclose(fitted["chi2"][:3], 0.0, atol=0.1)
    assert fitted["explained"].tolist() == [True, True, True, False]
    assert np.all(fitted["tau_low"] <= fitted["tau"]) and np.all(fitted["tau"] <= fitted["tau_high"])
    # the table is predict_stars' at the best τ
    np.testing.assert_allclose(fitted["radius"][:3].to_value(u.solRad), 10 ** ms_log_radius_teff(
        log_mass, feh, np.asarray(fitted["tau"][:3]))[0], rtol=1e-12)
    with pytest.raises(ValueError, match="needs an evolving map"):
        fit_fractional_age(stars, exact_stellar_delta_map(), **DOMAIN)
    with pytest.raises(ValueError, match="pass tau="):
        predict_stars(stars, evolving_map(), **DOMAIN)
    with pytest.raises(ValueError, match=r"tau must lie in \[0, 1\]"):
        predict_stars(stars, evolving_map(), tau=1.5, **DOMAIN)
    with pytest.raises(ValueError, match="lacks \\['teff_err'\\]"):
        fit_fractional_age(stars[["mass", "radius", "radius_err", "teff"]], evolving_map(), **DOMAIN)


def test_measured_mass_model_leaves_out_debcat_giants(debcat):
    """DEBCat's red giants (log g 1.5-2.3, e.g. ASAS J061016-3321.3) are inside the map's mass range but off the
    main sequence: the measured-mass model leaves them out, naming them, as predict_stars flags them."""
    usable = debcat[np.isfinite(debcat["luminosity"]) & (debcat["mass"] > 0.8 * u.M_sun)
                    & (debcat["mass"] < 2 * u.M_sun) & ~(debcat["feh"] > 0.15) & ~(debcat["feh"] < -1.0)]
    giants = usable[usable["system"] == "ASAS_J061016-3321.3"]
    dwarfs = usable[usable["log_g"] > 4.3][:4]
    assert len(giants) == 2 and np.all(giants["log_g"] < 2.4) and len(dwarfs) == 4
    catalog = vstack([dwarfs, giants])
    with pytest.warns(UserWarning, match=r"leaving out 2 star\(s\): ASAS_J061016-3321.3 1 \(row 4\), "
                                         r"ASAS_J061016-3321.3 2 \(row 5\): not on the main sequence"):
        model = stefan_boltzmann_model(catalog, exact_stellar_delta_map(), **DOMAIN)
    assert model.n_objects == 4
    assert set(model.dropped.values()) == {"not_main_sequence"}
    flagged = predict_stars(catalog, exact_stellar_delta_map(), warn=False, **DOMAIN)["not_main_sequence"]
    assert flagged.tolist() == [False] * 4 + [True] * 2
