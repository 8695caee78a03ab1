"""Mock multi-band supernova lightcurves with known classes, from a parametric (Bazin) model.

:func:`simulate_lightcurves` makes a :class:`~astrobayes.supernovae.io.Lightcurves`
collection in the format of the SNPhotCC (Kessler et al. 2010): fluxes in
SNANA ``FLUXCAL`` units (zero point 27.5 AB mag), a DES-like deep-field
cadence and a host photo-z per object. Each supernova is made in five steps,
all seeded and all with their parameters exposed in :data:`CLASS_MODELS`:

1. a true redshift, uniform in comoving volume and rest-frame time,
   dN/dz ∝ (dV_c/dz)/(1+z) on (0.05, ``z_max``) with Planck18 — a constant
   volumetric rate; the rate evolution with star formation is not modelled;
2. a peak absolute magnitude in the reference band ``r`` from a Gaussian per
   class, the class means of Richardson et al. (2014, AJ 147, 118): normal Ia
   −19.25, II-P −16.75 (we take −16.9 for a II-P-dominated class with some
   brighter II-L), Ib/c ≈ −17.5; at the median redshift of the sample
   (z ≈ 0.3–0.5) observer-frame r samples rest-frame B, so their M_B is the
   right reference. Per band, apparent peak magnitude = M + μ(z) + colour, with
   a per-class colour offset (mag relative to r) and scatter. There are **no
   K-corrections**: the colours are representative observer-frame colours
   whose scatter stands in for their change with redshift;
3. a lightcurve shape per band of the form of Bazin et al. (2009, A&A 499, 653),
   f(t) = A exp(−(t−t0)/τ_fall) / (1 + exp(−(t−t0)/τ_rise)), with log-normal
   rest-frame τ_rise, τ_fall per class stretched by (1+z) (cosmological time
   dilation), and a per-band delay of the peak (redder bands peak later: the
   photosphere cools);
4. a season of ``season_days`` nights from MJD 56535 (the start of DES year 1),
   one visit every ``cadence_days`` nights plus occasional weather gaps, all
   bands on the same night 10–12 minutes apart; the reference-band peak is
   uniform from 50 days before the season to 15 days after it, so some
   lightcurves are caught only rising or only declining;
5. noise flux_err = sqrt((s_band · k_night)² + f_true/gain), with a sky term
   s_band (:data:`SKY_NOISE`: a mag-24 point has S/N ≈ 6 in g, r, i and 4.6 in z) scaled by a
   per-night seeing/moon factor k ~ U(0.8, 1.5), and the source Poisson term;
   the observed flux is f_true + N(0, flux_err²).

The sample is what a survey trigger would keep: objects with at least
``min_detections`` points at S/N > 5. ``class_fractions`` are the fractions
*after* this selection (as SPCC's 24/63/13 % are), so each class is simulated
until it has its share: the class of each kept object is a multinomial draw
with those probabilities. Because the classes differ in brightness, their
redshift distributions after selection differ (faint II and Ibc are found
nearer), as in a real survey. ``meta.meta["simulation"]`` records every
setting and the detection efficiency of each class.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy.table import Table

from astrobayes.supernovae.io import TYPE_CLASSES, Lightcurves, class_of_type

__all__ = ["CLASS_MODELS", "GAIN", "SEASON_START_MJD", "SKY_NOISE", "ClassModel", "bazin_flux", "bazin_peak_time",
           "simulate_lightcurves", "true_flux"]

#: FLUXCAL zero point: flux = 10**(-0.4 (mag - 27.5))
ZERO_POINT = 27.5
#: first night of the season (MJD 56535 = 2013-08-31, the start of DES year 1)
SEASON_START_MJD = 56535.0
#: sky-limited 1σ flux error per band (FLUXCAL), times a per-night factor 0.8–1.5; at its median (1.15) a mag-24 point
#: (flux 25) has S/N ≈ 6 in g, r, i and 4.6 in z, near the single-visit depth of the DES SN fields; z is the
#: shallowest (bright sky, fringing)
SKY_NOISE = {"g": 3.5, "r": 3.0, "i": 3.5, "z": 4.5}
#: FLUXCAL per photo-electron equivalent: the source Poisson variance is flux/GAIN (S/N ≈ 100 at mag 20)
GAIN = 10.0
_LOWEST_REDSHIFT = 0.05
_PEAK_WINDOW = (50.0, 15.0)  # days before / after the season in which the reference peak may fall
_SKY_VARIATION = (0.8, 1.5)  # per-night seeing and moon factor on the sky noise
_WEATHER_GAP = (0.08, 7.0, 15.0)  # probability of a weather gap after a visit, its extra nights (uniform)
_BAND_INTERVAL = 10.0 / 1440.0  # days between consecutive bands of a visit
_MAX_CHUNK = 20000  # candidate lightcurves held in memory at once


@dataclasses.dataclass(frozen=True)
class ClassModel:
    """The parameter distributions of one supernova class.

    Parameters
    ----------
    type_code : int
        SNANA type (1 Ia, 2 II, 3 Ibc); must map to the class name in ``io.TYPE_CLASSES``.
    abs_mag, abs_mag_scatter : float
        Mean and standard deviation of the peak absolute magnitude in the reference band r (AB mag).
    tau_rise, tau_fall : (float, float)
        Median [rest-frame days] and log-normal scatter (in ln) of the Bazin rise and fall times.
    colours : dict
        Band → (mean, scatter) of the peak magnitude relative to r [mag]; r must be (0, 0).
    peak_delays : dict
        Band → (mean, scatter) of the band's peak time after r's [rest-frame days].

    Examples
    --------
    Change a class without touching the defaults:

    >>> import dataclasses
    >>> faint_ia = dataclasses.replace(CLASS_MODELS["Ia"], abs_mag=-18.5)
    >>> lcs = simulate_lightcurves(10, class_models={**CLASS_MODELS, "Ia": faint_ia}, seed=0)
    >>> lcs.meta.meta["simulation"]["class_models"]["Ia"]["abs_mag"]
    -18.5
    """

    type_code: int
    abs_mag: float
    abs_mag_scatter: float
    tau_rise: tuple[float, float]
    tau_fall: tuple[float, float]
    colours: Mapping[str, tuple[float, float]]
    peak_delays: Mapping[str, tuple[float, float]]


#: Default class models. Ia: fast rise and a 15–30 d decline, blue and bright; II (mostly II-P): slower rise
#: and a plateau-like 50–150 d decline, faint with a broad luminosity function; Ibc: Ia-like shape with a
#: faster decline, fainter and redder (more host extinction). Ia and Ibc overlap on purpose, as in real data.
CLASS_MODELS = {
    "Ia": ClassModel(1, -19.25, 0.5, (2.5, 0.2), (20.0, 0.25),
                     {"g": (0.4, 0.2), "r": (0.0, 0.0), "i": (0.1, 0.15), "z": (0.3, 0.2)},
                     {"g": (-2.0, 1.0), "r": (0.0, 0.0), "i": (2.0, 1.0), "z": (3.0, 1.5)}),
    "II": ClassModel(2, -16.9, 1.0, (5.0, 0.4), (85.0, 0.35),
                     {"g": (0.5, 0.3), "r": (0.0, 0.0), "i": (-0.1, 0.2), "z": (-0.1, 0.25)},
                     {"g": (-4.0, 2.0), "r": (0.0, 0.0), "i": (5.0, 3.0), "z": (8.0, 4.0)}),
    "Ibc": ClassModel(3, -17.5, 1.0, (2.5, 0.3), (13.0, 0.3),
                      {"g": (0.8, 0.3), "r": (0.0, 0.0), "i": (-0.2, 0.2), "z": (-0.3, 0.25)},
                      {"g": (-2.0, 1.5), "r": (0.0, 0.0), "i": (2.0, 1.5), "z": (4.0, 2.0)}),
}


# ---------------------------------------------------------------------- the Bazin form
def bazin_flux(t, amplitude, t0, tau_rise, tau_fall) -> np.ndarray:
    """The Bazin et al. (2009) lightcurve A exp(−(t−t0)/τ_fall) / (1 + exp(−(t−t0)/τ_rise)); broadcasts.

    Parameters
    ----------
    t : array-like
        Times [d].
    amplitude : array-like
        A, in the flux unit wanted (it is not the peak flux; see :func:`bazin_peak_time`).
    t0 : array-like
        Time of the rise's mid-point [d].
    tau_rise, tau_fall : array-like
        Rise and fall times [d], positive.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> float(bazin_flux(0.0, 2.0, 0.0, 3.0, 20.0))   # half the amplitude at t0
    1.0
    """
    tau_rise, tau_fall = _positive(tau_rise, "tau_rise"), _positive(tau_fall, "tau_fall")
    x = np.asarray(t, dtype=float) - np.asarray(t0, dtype=float)
    # written with logaddexp so that long before t0 neither exponential overflows
    return np.asarray(amplitude, dtype=float) * np.exp(-x / tau_fall - np.logaddexp(0.0, -x / tau_rise))


def bazin_peak_time(t0, tau_rise, tau_fall) -> np.ndarray:
    """Time of the maximum of the Bazin form, t0 + τ_rise ln(τ_fall/τ_rise − 1); needs τ_fall > τ_rise.

    Examples
    --------
    >>> round(float(bazin_peak_time(0.0, 2.0, 6.0)), 4)   # 2 ln 2
    1.3863
    """
    tau_rise, tau_fall = _positive(tau_rise, "tau_rise"), _positive(tau_fall, "tau_fall")
    if np.any(tau_fall <= tau_rise):
        raise ValueError("tau_fall must exceed tau_rise: otherwise the Bazin form declines at all times "
                         "and has no maximum")
    return np.asarray(t0, dtype=float) + tau_rise * np.log(tau_fall / tau_rise - 1.0)


def _positive(value, name: str) -> np.ndarray:
    value = np.asarray(value, dtype=float)
    if not (np.isfinite(value).all() and (value > 0).all()):
        raise ValueError(f"{name} must be finite and positive")
    return value


def _peak_shape(tau_rise, tau_fall):
    """(t_peak − t0, f(t_peak)/A) of the Bazin form."""
    lag = tau_rise * np.log(tau_fall / tau_rise - 1.0)
    return lag, bazin_flux(lag, 1.0, 0.0, tau_rise, tau_fall)


# ---------------------------------------------------------------------- the simulator
def simulate_lightcurves(n: int, *, class_fractions: Mapping[str, float] | None = None, z_max: float = 1.2,
                         bands: Sequence[str] = ("g", "r", "i", "z"), season_days: float = 180.0,
                         cadence_days: float | tuple[float, float] = (4.0, 7.0), min_detections: int = 2,
                         photoz_scatter: float = 0.03, class_models: Mapping[str, ClassModel] | None = None,
                         sky_noise: Mapping[str, float] | None = None, seed=None) -> Lightcurves:
    """Simulate ``n`` detected supernovae of known class with a DES-like cadence (see the module docstring).

    Parameters
    ----------
    n : int
        Number of objects in the output (after the detection selection).
    class_fractions : dict, optional
        Class name → fraction among the detected objects; positive, summing to 1.
        Default ``{"Ia": 0.25, "II": 0.6, "Ibc": 0.15}``, roughly SPCC's 24/63/13 %.
    z_max : float
        Highest true redshift (the lowest is 0.05).
    bands : sequence of str
        Filters observed at each visit, in channel order; each must be in every class model and in ``sky_noise``.
    season_days : float
        Length of the observing season [d].
    cadence_days : float or (float, float)
        Nights between visits, uniform in (low, high) (≥ 1); a number means a fixed cadence.
    min_detections : int
        Points (any band) at S/N > 5 an object needs to be kept; 0 keeps every object.
    photoz_scatter : float
        Host photo-z error σ_z/(1+z), as the SPCC host photo-z (0.03).
    class_models : dict, optional
        Class name → :class:`ClassModel`; default :data:`CLASS_MODELS`.
    sky_noise : dict, optional
        Band → sky-limited flux error [FLUXCAL]; default :data:`SKY_NOISE`.
    seed : int, optional
        Seed of the numpy generator; the same seed gives the same collection.

    Returns
    -------
    Lightcurves
        ``meta`` has ``object_id``, ``redshift`` and ``redshift_err`` (the host photo-z),
        ``type_code``, ``label`` and the truth: ``true_redshift``, ``true_distmod``,
        ``true_abs_mag`` (r), ``true_peak_mjd`` (r), ``true_tau_rise`` and ``true_tau_fall``
        (observer frame, days) and per band ``true_peak_mag_<band>``, ``true_peak_mjd_<band>``;
        :func:`true_flux` turns them into the noiseless flux of every observation.

    Examples
    --------
    >>> lcs = simulate_lightcurves(20, seed=1)
    >>> len(lcs), lcs.bands
    (20, ('g', 'r', 'i', 'z'))
    >>> sorted(set(lcs.labels)) <= ["II", "Ia", "Ibc"]
    True
    """
    from astrobayes import __version__

    n = _count(n, "n", minimum=1)
    min_detections = _count(min_detections, "min_detections", minimum=0)
    models = dict(CLASS_MODELS if class_models is None else class_models)
    fractions = _check_fractions({"Ia": 0.25, "II": 0.6, "Ibc": 0.15} if class_fractions is None
                                 else class_fractions, models)
    bands = _check_bands(bands, models, SKY_NOISE if sky_noise is None else sky_noise)
    sky = np.array([float((SKY_NOISE if sky_noise is None else sky_noise)[b]) for b in bands])
    z_max = _number(z_max, "z_max", low=_LOWEST_REDSHIFT)
    season_days = _number(season_days, "season_days", low=0.0)
    photoz_scatter = _number(photoz_scatter, "photoz_scatter", low=0.0, inclusive=True)
    low, high = _check_cadence(cadence_days)
    rng = np.random.default_rng(seed)

    counts = rng.multinomial(n, list(fractions.values()))
    kept, efficiency = [], {}
    for name, count in zip(fractions, counts):
        if count == 0:  # possible for a rare class and a small n; its efficiency is then not measured
            efficiency[name] = float("nan")
            continue
        objects, efficiency[name] = _detected(rng, models[name], int(count), bands, sky, z_max, season_days,
                                              (low, high), min_detections)
        objects["type_code"] = np.full(int(count), models[name].type_code)
        kept.append(objects)
    objects = {key: np.concatenate([k[key] for k in kept]) for key in kept[0]}
    order = rng.permutation(n)  # mix the classes
    objects = {key: value[order] for key, value in objects.items()}

    z = objects["redshift"]
    photoz = z + photoz_scatter * (1 + z) * rng.standard_normal(n)
    while photoz_scatter > 0 and (bad := photoz <= 0).any():  # a truncated Gaussian: redraw negative photo-z
        photoz[bad] = z[bad] + photoz_scatter * (1 + z[bad]) * rng.standard_normal(int(bad.sum()))
    width = max(6, len(str(n - 1)))
    ids = np.array([f"SIM{i:0{width}d}" for i in range(n)])
    meta = Table({"object_id": ids, "redshift": photoz, "redshift_err": photoz_scatter * (1 + photoz),
                  "type_code": objects["type_code"], "label": class_of_type(objects["type_code"]),
                  "true_redshift": z, "true_distmod": objects["distmod"], "true_abs_mag": objects["abs_mag"],
                  "true_peak_mjd": objects["peak_mjd"], "true_tau_rise": objects["tau_rise"],
                  "true_tau_fall": objects["tau_fall"]})
    for k, b in enumerate(bands):
        meta[f"true_peak_mag_{b}"] = objects["peak_mag"][:, k]
        meta[f"true_peak_mjd_{b}"] = objects["peak_time"][:, k]
    meta.meta["simulation"] = {
        "model": "Bazin et al. (2009) per band, Richardson et al. (2014) class magnitudes, Planck18, no K-corrections",
        "n": n, "class_fractions": fractions, "z_max": z_max, "bands": list(bands), "season_days": season_days,
        "season_start_mjd": SEASON_START_MJD, "cadence_days": [low, high], "min_detections": min_detections,
        "photoz_scatter": photoz_scatter, "sky_noise": dict(zip(bands, sky.tolist())), "gain": GAIN,
        "class_models": {name: _as_plain(models[name]) for name in fractions},
        "detection_efficiency": efficiency, "seed": _seed_record(seed),
        "astrobayes_version": __version__}

    valid = objects["valid"]
    which = np.nonzero(valid)  # (object, visit, band), in object then time order
    observations = Table({"object_id": ids[which[0]], "time": objects["time"][valid] * u.day,
                          "band": np.asarray(bands)[which[2]], "flux": objects["flux"][valid],
                          "flux_err": objects["flux_err"][valid]},
                         meta={"flux_zeropoint_mag": ZERO_POINT, "source": "simulate_lightcurves"})
    return Lightcurves(observations, meta, bands=bands, source="the simulated lightcurves")


def true_flux(lightcurves: Lightcurves) -> np.ndarray:
    """The noiseless model flux of every observation of a simulated collection, in observation order.

    Uses the ``true_*`` columns of ``lightcurves.meta`` that :func:`simulate_lightcurves`
    writes, so it also works after ``select`` or ``truncate``.

    Examples
    --------
    >>> lcs = simulate_lightcurves(5, seed=2)
    >>> residual = (lcs.observations["flux"] - true_flux(lcs)) / lcs.observations["flux_err"]
    >>> bool(abs(residual.mean()) < 1)
    True
    """
    meta = lightcurves.meta
    needed = ["true_tau_rise", "true_tau_fall"] + [f"true_peak_{q}_{b}" for b in lightcurves.bands
                                                   for q in ("mag", "mjd")]
    missing = [c for c in needed if c not in meta.colnames]
    if missing:
        raise ValueError(f"lightcurves lacks the truth column(s) {missing}: only collections made by "
                         "simulate_lightcurves carry them")
    offsets, time, band, _, _ = lightcurves.arrays()
    obj = np.repeat(np.arange(len(lightcurves)), np.diff(offsets))
    tau_rise, tau_fall = np.asarray(meta["true_tau_rise"], float), np.asarray(meta["true_tau_fall"], float)
    lag, shape = _peak_shape(tau_rise, tau_fall)
    peak_mag = np.stack([np.asarray(meta[f"true_peak_mag_{b}"], float) for b in lightcurves.bands], axis=1)
    peak_mjd = np.stack([np.asarray(meta[f"true_peak_mjd_{b}"], float) for b in lightcurves.bands], axis=1)
    amplitude = 10 ** (-0.4 * (peak_mag - ZERO_POINT)) / shape[:, None]
    return bazin_flux(time, amplitude[obj, band], peak_mjd[obj, band] - lag[obj], tau_rise[obj], tau_fall[obj])


# ---------------------------------------------------------------------- drawing
def _detected(rng, model: ClassModel, count: int, bands, sky, z_max, season_days, cadence, min_detections):
    """Draw candidates of one class in batches until ``count`` are detected.

    Returns the detected objects and the detection efficiency (detected / drawn, over the draws examined).
    """
    parts, need, batch = [], count, max(256, 4 * count)
    drawn = found = 0.0
    while need > 0:
        candidates = _draw_parameters(rng, model, batch, bands, z_max, season_days)
        if min_detections > 0:
            # Objects whose noiseless peak S/N is below 1 in every band, even in the best conditions, would
            # need two ≥ 4σ upward fluctuations to pass: probability < 1e-6, so they are dropped unsimulated.
            peak_flux = 10 ** (-0.4 * (candidates["peak_mag"] - ZERO_POINT))
            best_snr = peak_flux / np.sqrt((sky * _SKY_VARIATION[0]) ** 2 + peak_flux / GAIN)
            candidates = {k: v[(best_snr >= 1.0).any(axis=1)] for k, v in candidates.items()}
        plausible = len(candidates["redshift"])
        examined = found_here = 0
        for start in range(0, plausible, _MAX_CHUNK):
            chunk = {k: v[start:start + _MAX_CHUNK] for k, v in candidates.items()}
            chunk.update(_observe(rng, chunk, sky, season_days, cadence))
            detections = ((chunk["flux"] / chunk["flux_err"] > 5) & chunk["valid"]).sum(axis=(1, 2))
            keep = detections >= min_detections
            examined += len(keep)
            found_here += int(keep.sum())
            parts.append({k: v[keep][:need] for k, v in chunk.items()})
            need -= len(parts[-1]["redshift"])
            if need == 0:
                break
        # the draws this batch stood for: all of it, or the examined share when it stopped early
        drawn += batch * (examined / plausible if plausible else 1.0)
        found += found_here
        if need > 0 and drawn > 1000 * count + 10 ** 6:
            raise RuntimeError(f"only {count - need} of {count} simulated objects were detected after "
                               f"{int(drawn)} draws: lower z_max or min_detections, or lengthen the season")
        rate = max(found_here, 1) / batch
        batch = int(min(max(256, 1.2 * need / rate), 50 * _MAX_CHUNK))
    objects = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return objects, (found / drawn if drawn else float("nan"))


def _draw_parameters(rng, model: ClassModel, m: int, bands, z_max, season_days) -> dict:
    z_grid, cdf, mu_grid = _redshift_tables(z_max)
    z = np.interp(rng.random(m), cdf, z_grid)
    distmod = np.interp(z, z_grid, mu_grid)
    abs_mag = model.abs_mag + model.abs_mag_scatter * rng.standard_normal(m)
    tau_rise = _lognormal(rng, model.tau_rise, m)
    # the Bazin form needs τ_fall > τ_rise for a maximum; the default models never come close to the floor
    tau_fall = np.maximum(_lognormal(rng, model.tau_fall, m), 1.5 * tau_rise)
    colour = np.stack([model.colours[b][0] + model.colours[b][1] * rng.standard_normal(m) for b in bands], axis=1)
    delay = np.stack([model.peak_delays[b][0] + model.peak_delays[b][1] * rng.standard_normal(m) for b in bands],
                     axis=1)
    peak_mjd = rng.uniform(SEASON_START_MJD - _PEAK_WINDOW[0], SEASON_START_MJD + season_days + _PEAK_WINDOW[1], m)
    stretch = 1 + z  # cosmological time dilation
    return {"redshift": z, "distmod": distmod, "abs_mag": abs_mag, "tau_rise": tau_rise * stretch,
            "tau_fall": tau_fall * stretch, "peak_mjd": peak_mjd,
            "peak_mag": (abs_mag + distmod)[:, None] + colour,
            "peak_time": peak_mjd[:, None] + delay * stretch[:, None]}


def _observe(rng, objects: dict, sky, season_days, cadence) -> dict:
    """Cadence, true flux and noisy flux for a chunk of objects: arrays (objects, visits, bands)."""
    m, n_bands = objects["peak_mag"].shape
    low, high = cadence
    visits = int(season_days // low) + 2
    gaps = rng.uniform(low, high, (m, visits))
    gaps[:, 0] = rng.uniform(0.0, high, m)  # the first visit falls anywhere in the first cadence interval
    chance, gap_low, gap_high = _WEATHER_GAP
    gaps += (rng.random((m, visits)) < chance) * rng.uniform(gap_low, gap_high, (m, visits))
    night = np.floor(np.cumsum(gaps, axis=1))  # gaps ≥ 1 night: one visit per night at most
    valid = np.broadcast_to((night <= season_days)[:, :, None], (m, visits, n_bands))
    # a Chilean night is MJD fraction ~0.0–0.4; the bands follow each other 10–12 minutes apart
    time = (SEASON_START_MJD + night + rng.uniform(0.0, 0.35, (m, visits)))[:, :, None] \
        + _BAND_INTERVAL * np.arange(n_bands) + rng.uniform(0.0, 2.0 / 1440.0, (m, visits, n_bands))
    lag, shape = _peak_shape(objects["tau_rise"], objects["tau_fall"])
    amplitude = 10 ** (-0.4 * (objects["peak_mag"] - ZERO_POINT)) / shape[:, None]
    model = bazin_flux(time, amplitude[:, None, :], (objects["peak_time"] - lag[:, None])[:, None, :],
                       objects["tau_rise"][:, None, None], objects["tau_fall"][:, None, None])
    conditions = rng.uniform(*_SKY_VARIATION, (m, visits, 1))
    flux_err = np.sqrt((sky * conditions) ** 2 + np.maximum(model, 0.0) / GAIN)
    flux = model + flux_err * rng.standard_normal(model.shape)
    return {"time": time, "flux": flux, "flux_err": flux_err, "valid": valid.copy()}


def _lognormal(rng, median_scatter, m):
    median, scatter = median_scatter
    return median * np.exp(scatter * rng.standard_normal(m))


@lru_cache(maxsize=8)
def _redshift_tables(z_max: float):
    """Grid of z, the CDF of dN/dz ∝ (dV_c/dz)/(1+z), and μ(z) with Planck18 (interpolated: exact to ~1e-3 mag)."""
    from astropy.cosmology import Planck18

    z = np.linspace(_LOWEST_REDSHIFT, z_max, 1000)
    density = Planck18.differential_comoving_volume(z).value / (1 + z)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(z))])
    return z, cdf / cdf[-1], Planck18.distmod(z).value


# ---------------------------------------------------------------------- argument checks
def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _number(value, name: str, low: float, inclusive: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < low or (value == low and not inclusive):
        raise ValueError(f"{name} must be finite and {'>=' if inclusive else '>'} {low}, got {value}")
    return value


def _check_fractions(fractions, models) -> dict:
    if not isinstance(fractions, Mapping) or not fractions:
        raise ValueError(f"class_fractions must be a non-empty dict of class name → fraction, got {fractions!r}")
    unknown = [name for name in fractions if name not in models]
    if unknown:
        raise ValueError(f"class_fractions names unknown class(es) {unknown}; known: {list(models)}")
    values = {str(k): float(v) for k, v in fractions.items()}
    if not all(np.isfinite(v) and v > 0 for v in values.values()):
        raise ValueError(f"class_fractions must be positive, got {values}")
    if abs(sum(values.values()) - 1.0) > 1e-6:
        raise ValueError(f"class_fractions must sum to 1, got {sum(values.values())}")
    for name in values:
        model = models[name]
        if not isinstance(model, ClassModel) or TYPE_CLASSES.get(model.type_code) != name:
            raise ValueError(f"class_models[{name!r}] must be a ClassModel whose type_code maps to {name!r} "
                             f"in io.TYPE_CLASSES")
    return values


def _check_bands(bands, models, sky_noise) -> tuple:
    if isinstance(bands, str):
        bands = list(bands)
    bands = tuple(str(b) for b in bands)
    if not bands or len(set(bands)) != len(bands):
        raise ValueError(f"bands must be distinct filter names, got {bands}")
    for b in bands:
        missing = [name for name, model in models.items() if b not in model.colours or b not in model.peak_delays]
        if missing or b not in sky_noise:
            raise ValueError(f"bands: no colour/peak-delay model for band {b!r} in class(es) {missing} or no "
                             f"sky noise for it; known bands: {sorted(SKY_NOISE)}")
    return bands


def _check_cadence(cadence) -> tuple[float, float]:
    pair = (cadence, cadence) if np.ndim(cadence) == 0 else tuple(cadence)
    if len(pair) != 2:
        raise ValueError(f"cadence_days must be a number or a (low, high) pair, got {cadence!r}")
    low, high = (_number(c, "cadence_days", low=1.0, inclusive=True) for c in pair)
    if high < low:
        raise ValueError(f"cadence_days must have low <= high, got {cadence!r}")
    return low, high


def _seed_record(seed):
    """The seed as the ECSV header can hold it."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    return repr(seed)


def _as_plain(model: ClassModel) -> dict:
    """A ClassModel as nested dicts and lists (for the ECSV header)."""
    return {"type_code": model.type_code, "abs_mag": model.abs_mag, "abs_mag_scatter": model.abs_mag_scatter,
            "tau_rise": list(model.tau_rise), "tau_fall": list(model.tau_fall),
            "colours": {b: list(v) for b, v in model.colours.items()},
            "peak_delays": {b: list(v) for b, v in model.peak_delays.items()}}
