"""Tests of the parametric supernova lightcurve simulator."""
import numpy as np
import pytest
from astropy.table import Table
from scipy import stats

from astrobayes.supernovae.io import Lightcurves
from astrobayes.supernovae.simulate import (CLASS_MODELS, SEASON_START_MJD, bazin_flux, bazin_peak_time,
                                            simulate_lightcurves, true_flux)


@pytest.fixture(scope="module")
def sample():
    return simulate_lightcurves(2000, seed=11)


def _per_object(lcs, values):
    offsets = lcs.arrays()[0]
    return np.add.reduceat(np.asarray(values, dtype=float), offsets[:-1])


# ---------------------------------------------------------------------- the Bazin form
@pytest.mark.parametrize("tau_rise, tau_fall", [(2.0, 20.0), (5.0, 85.0), (3.0, 7.0), (1.0, 1.6)])
def test_bazin_maximum_where_the_formula_says(tau_rise, tau_fall):
    t = np.linspace(-50.0, 100.0, 300001)  # grid step 5e-4 d
    f = bazin_flux(t, 3.0, 10.0, tau_rise, tau_fall)
    assert abs(t[np.argmax(f)] - bazin_peak_time(10.0, tau_rise, tau_fall)) < 1e-3


def test_bazin_shape():
    assert bazin_flux(10.0, 3.0, 10.0, 2.0, 20.0) == pytest.approx(1.5)  # half the amplitude at t0
    with np.errstate(over="raise"):  # no overflow long before the rise
        assert bazin_flux(-1e5, 1.0, 0.0, 2.0, 20.0) == 0.0
    # late times: an exponential decline with e-folding time tau_fall
    late = bazin_flux(np.array([200.0, 220.0]), 1.0, 0.0, 2.0, 20.0)
    assert np.log(late[0] / late[1]) == pytest.approx(1.0, rel=1e-9)
    # broadcasting: times (n, 1) against parameters (3,)
    assert bazin_flux(np.zeros((4, 1)), 1.0, 0.0, np.array([1.0, 2.0, 3.0]), 30.0).shape == (4, 3)
    with pytest.raises(ValueError, match="tau_rise"):
        bazin_flux(0.0, 1.0, 0.0, -1.0, 20.0)
    with pytest.raises(ValueError, match="tau_fall must exceed tau_rise"):
        bazin_peak_time(0.0, 5.0, 4.0)


# ---------------------------------------------------------------------- the collection
def test_same_seed_same_lightcurves():
    a, b = simulate_lightcurves(50, seed=4), simulate_lightcurves(50, seed=4)
    for name in a.observations.colnames:
        assert np.array_equal(np.asarray(a.observations[name]), np.asarray(b.observations[name]))
    for name in a.meta.colnames:
        assert np.array_equal(np.asarray(a.meta[name]), np.asarray(b.meta[name]))
    c = simulate_lightcurves(50, seed=5)
    assert not np.array_equal(np.asarray(a.meta["true_redshift"]), np.asarray(c.meta["true_redshift"]))


def test_format(sample):
    assert isinstance(sample, Lightcurves) and len(sample) == 2000 and sample.bands == ("g", "r", "i", "z")
    obs, meta = sample.observations, sample.meta
    assert obs["time"].unit == "d" and obs.meta["flux_zeropoint_mag"] == 27.5
    assert (np.asarray(obs["flux_err"]) > 0).all() and np.isfinite(np.asarray(obs["flux"])).all()
    offsets, time, _, _, _ = sample.arrays()
    same_object = np.diff(np.repeat(np.arange(len(sample)), np.diff(offsets))) == 0
    assert (np.diff(time)[same_object] > 0).all()  # sorted in time, no two points at once
    assert time.min() >= SEASON_START_MJD and time.max() <= SEASON_START_MJD + 181
    assert set(np.asarray(meta["label"])) == {"Ia", "II", "Ibc"}
    codes = {"Ia": 1, "II": 2, "Ibc": 3}
    assert all(codes[lab] == code for lab, code in zip(meta["label"], meta["type_code"]))
    for name in ("true_redshift", "true_distmod", "true_peak_mjd", "true_tau_rise", "true_peak_mag_g",
                 "true_peak_mjd_z"):
        assert name in meta.colnames
    assert (np.asarray(meta["redshift"]) > 0).all() and (np.asarray(meta["redshift_err"]) > 0).all()
    assert meta.meta["simulation"]["seed"] == 11


def test_class_fractions_after_selection(sample):
    # the class of each kept object is a multinomial draw: 3σ binomial bound for n = 2000
    n = len(sample)
    for name, p in {"Ia": 0.25, "II": 0.6, "Ibc": 0.15}.items():
        observed = np.mean(sample.labels == name)
        assert abs(observed - p) < 3 * np.sqrt(p * (1 - p) / n), name
    only_ia = simulate_lightcurves(30, class_fractions={"Ia": 1.0}, seed=1)
    assert set(only_ia.labels) == {"Ia"}


@pytest.mark.parametrize("min_detections", [2, 5])
def test_every_object_is_detected(min_detections, sample):
    lcs = sample if min_detections == 2 else simulate_lightcurves(300, min_detections=5, seed=3)
    snr = np.asarray(lcs.observations["flux"]) / np.asarray(lcs.observations["flux_err"])
    assert _per_object(lcs, snr > 5).min() >= min_detections


def test_noise_is_gaussian_with_the_quoted_errors():
    # without the selection (which favours upward fluctuations) the residuals are exactly N(0, 1)
    lcs = simulate_lightcurves(300, min_detections=0, seed=7)
    obs = lcs.observations
    pull = (np.asarray(obs["flux"]) - true_flux(lcs)) / np.asarray(obs["flux_err"])
    n = len(pull)
    assert abs(pull.mean()) < 4 / np.sqrt(n)              # 4σ of the mean
    assert abs(pull.std() - 1) < 4 / np.sqrt(2 * n)       # 4σ of a Gaussian sample's std
    assert stats.kstest(pull[:20000], "norm").pvalue > 1e-4


def test_selection_and_truth_are_physical(sample):
    meta = sample.meta
    z = np.asarray(meta["true_redshift"])
    assert z.min() >= 0.05 and z.max() <= 1.2
    # the faint classes are found nearer than the Ia
    assert np.median(z[sample.labels == "II"]) < np.median(z[sample.labels == "Ia"])
    # the photo-z scatter is 0.03 (1+z); 10 % tolerance is ~ 5σ of a 2000-object std (plus the truncation at 0)
    scatter = np.std((np.asarray(meta["redshift"]) - z) / (1 + z))
    assert scatter == pytest.approx(0.03, rel=0.1)
    # time dilation: observer-frame decline times grow with redshift (Ia, log-normal scatter 0.25)
    ia = sample.labels == "Ia"
    rest = np.asarray(meta["true_tau_fall"])[ia] / (1 + z[ia])
    assert np.median(rest) == pytest.approx(CLASS_MODELS["Ia"].tau_fall[0], rel=0.1)
    assert set(meta.meta["simulation"]["detection_efficiency"]) == {"Ia", "II", "Ibc"}


def test_true_flux_needs_a_simulated_collection():
    plain = Lightcurves(Table({"object_id": ["a"], "time": [1.0], "band": ["g"], "flux": [1.0],
                               "flux_err": [0.1]}))
    with pytest.raises(ValueError, match="truth column"):
        true_flux(plain)


@pytest.mark.parametrize("kwargs, argument", [
    ({"n": 0}, "n must"), ({"n": 2.5}, "n must"), ({"n": True}, "n must"),
    ({"class_fractions": {"Ia": 0.5, "II": 0.4}}, "class_fractions must sum to 1"),
    ({"class_fractions": {"Ia": 1.2, "II": -0.2}}, "class_fractions must be positive"),
    ({"class_fractions": {"Ia": 0.5, "SLSN": 0.5}}, "class_fractions names unknown"),
    ({"bands": ("g", "u")}, "bands: no colour"), ({"bands": ("g", "g")}, "bands must"),
    ({"cadence_days": (7, 4)}, "cadence_days"), ({"cadence_days": 0.5}, "cadence_days"),
    ({"z_max": 0.01}, "z_max"), ({"season_days": -1}, "season_days"), ({"min_detections": -1}, "min_detections"),
    ({"photoz_scatter": float("nan")}, "photoz_scatter"),
])
def test_bad_arguments(kwargs, argument):
    kwargs = {"n": 10, **kwargs}
    with pytest.raises(ValueError, match=argument):
        simulate_lightcurves(seed=0, **kwargs)
