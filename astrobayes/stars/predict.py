"""The stellar map applied to real stars: predictions, with flags where they cannot be trusted.

A learned map is only trustworthy where it was trained, and the zero-age main
sequence only describes stars that are on it. :func:`predict_stars` evaluates
a map at each star's mass and [Fe/H] and says, star by star, why a prediction
should not be trusted:

=======================  ==================================================================
flag                     meaning
=======================  ==================================================================
``below_mass_domain``    log10 M below the map's ``log_mass_range``
``above_mass_domain``    log10 M above it
``outside_feh_domain``   a measured [Fe/H] outside the map's ``feh_range``
``no_feh``               no [Fe/H] given: ``default_feh`` (0, solar) was assumed
``not_main_sequence``    log g < ``min_log_g`` (4.0), or a measured radius more than
                         ``max_radius_ratio`` (2) times the map's: a subgiant, giant or
                         pre-main-sequence star, which no zero-age map describes
=======================  ==================================================================

The first three mean the map would extrapolate: those predictions are NaN
unless ``extrapolate=True``. A learned map also scores each star's inputs
against those of its training stars (``ood_p_value``, a conformal p-value
from the network's out-of-distribution reference): the network's own check
that a star is like those it was trained on, beside these flags, which it
leaves as they are. :mod:`~astrobayes.stars.residuals` then compares
measured and predicted R and T_eff for the stars without a domain or
main-sequence flag, and fits each star's age with an evolving map.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import astropy.constants as const
import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from astrobayes import __version__
from astrobayes.estimators.ensemble import DeepEnsemble
from astrobayes.estimators.regression import Regressor
from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.diagnostics.ood import report_ood
from astrobayes.stars.emulator import _check_map
from astrobayes.stars.simulate import luminosity_from_sigma

__all__ = ["DOMAIN_FLAGS", "predict_stars"]

#: the flags of :func:`predict_stars`, in the order of its columns
DOMAIN_FLAGS = ("below_mass_domain", "above_mass_domain", "outside_feh_domain", "no_feh", "not_main_sequence")
#: flags that make a star unusable for a test of the map (``no_feh`` only says what was assumed)
_EXCLUDING = ("below_mass_domain", "above_mass_domain", "outside_feh_domain", "not_main_sequence")
# log10(G M_sun / R_sun^2) in cgs: log g = this + log M - 2 log R (4.438 for the Sun)
_LOG_G_SUN = math.log10((const.G * const.M_sun / const.R_sun ** 2).to_value(u.cm / u.s ** 2))
_ID_COLUMNS = ("system", "component", "star_id", "name")
#: log10(g / cm s^-2) of any star, from red supergiants (~ -1) to white dwarfs (~ 9)
_LOG_G_LIMITS = (-2.0, 10.0)


def _quantity(values, name: str, unit: u.UnitBase, kind: str) -> np.ndarray:
    if not isinstance(values, u.Quantity):
        raise ValueError(f"{name} has no unit; give it one, e.g. {name} = values * u.{unit}, ({kind})")
    mask = getattr(values, "mask", None)  # a MaskedQuantity: masked entries are missing (NaN), not their fill data
    try:
        result = np.asarray((values.unmasked if mask is not None else values).to_value(
            unit, equivalencies=u.temperature()), dtype=np.float64)
    except u.UnitConversionError:
        raise ValueError(f"{name} has unit {values.unit}, which is not {kind}") from None
    return np.where(mask, np.nan, result) if mask is not None else result


def _plain(values, name: str) -> np.ndarray:
    if isinstance(values, u.Quantity):
        if not (values.unit == u.dex or values.unit.is_equivalent(u.one)):
            raise ValueError(f"{name} must be plain numbers, but has unit {values.unit}"
                             + ("; tau is the fractional main-sequence age t / t_MS in [0, 1]: convert an age with "
                                "astrobayes.stars.evolution.fractional_age" if name == "tau" else ""))
        values = values.to_value(u.dex) if values.unit == u.dex else values.to_value(u.one)
    try:
        return np.asarray(np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers, got {type(values).__name__}") from None


_MAP_INPUTS = (["log_mass", "feh"], ["log_mass", "feh", "tau"])


def _domain(stellar_map, log_mass_range, feh_range) -> tuple[dict, list, tuple, tuple]:
    """The map's recorded domain, its inputs, and its mass and [Fe/H] ranges (arguments win)."""
    model = stellar_map.model if isinstance(stellar_map, DeltaMap) else stellar_map
    domain = dict(getattr(model, "stellar_map_domain", None) or {})
    if isinstance(stellar_map, DeltaMap):
        inputs = stellar_map.inputs
        if inputs not in _MAP_INPUTS or stellar_map.outputs != ["log_radius", "log_teff"]:
            raise ValueError(f"stellar_map maps {inputs} → {stellar_map.outputs}; predict_stars needs "
                             "(log_mass, feh[, tau]) → (log_radius, log_teff)")
    elif isinstance(stellar_map, (Regressor, DeepEnsemble)):
        inputs = list(domain.get("inputs", ["log_mass", "feh"]))
        if inputs == ["log_mass", "feh"]:
            _check_map(stellar_map, "stellar_map")
        elif inputs not in _MAP_INPUTS or list(stellar_map.dims.get("x_shape", [])) != [len(inputs)]:
            raise ValueError(f"stellar_map records inputs {inputs} but maps x of shape "
                             f"{stellar_map.dims.get('x_shape')}; predict_stars needs (log_mass, feh[, tau])")
    else:
        raise TypeError(f"stellar_map must be a map from train_stellar_map/load_stellar_map or a DeltaMap such as "
                        f"exact_stellar_delta_map(), got {type(stellar_map).__name__}")
    log_mass_range = log_mass_range if log_mass_range is not None else domain.get("log_mass_range")
    feh_range = feh_range if feh_range is not None else domain.get("feh_range")
    if log_mass_range is None or feh_range is None:
        raise ValueError("stellar_map records no domain (stellar_map_domain): pass log_mass_range= and feh_range= "
                         "(e.g. those of the learned map it is compared with)")
    ranges = []
    for name, value in (("log_mass_range", log_mass_range), ("feh_range", feh_range)):
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a pair of numbers (low, high), got {value!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"{name} must be finite with low < high, got ({low}, {high})")
        trained = domain.get(f"training_{name[:-len('_range')]}_range")  # a learned map's training box
        if trained is not None and not (float(trained[0]) <= low and high <= float(trained[1])):
            raise ValueError(f"{name}=({low:g}, {high:g}) reaches beyond the box the map was trained on "
                             f"({float(trained[0]):.4g}, {float(trained[1]):.4g}): its answers there would be silent "
                             "extrapolations; keep within it (extrapolate=True evaluates, and flags, the stars "
                             "outside the map's own domain)")
        ranges.append((low, high))
    return domain, inputs, ranges[0], ranges[1]


def _network(stellar_map) -> Regressor | DeepEnsemble | None:
    """The network behind a learned map (also inside a DeltaMap); None for an exact map."""
    model = stellar_map.model if isinstance(stellar_map, DeltaMap) else stellar_map
    return model if isinstance(model, (Regressor, DeepEnsemble)) else None


def _evaluate(stellar_map, values: dict, *, ood: bool = False) -> tuple[np.ndarray, ...]:
    """log R and log T_eff for named input arrays of one shape.

    With ``ood=True`` also each row's OOD p-value, from the context vectors of
    the same pass of the network (NaN for an exact map or a network without a reference).
    """
    shape = values["log_mass"].shape
    n = values["log_mass"].size
    network = _network(stellar_map)
    recording = network.recording_context(limit=n) if ood and n and network is not None \
        and network.ood is not None else contextlib.nullcontext()
    with recording as recorded:
        if n == 0:
            log_radius, log_teff = np.empty(shape), np.empty(shape)
        elif isinstance(stellar_map, DeltaMap):
            import torch

            out = stellar_map({name: torch.as_tensor(v) for name, v in values.items()})
            log_radius, log_teff = out["log_radius"].numpy().reshape(shape), out["log_teff"].numpy().reshape(shape)
        else:
            rows = np.column_stack([np.ravel(v) for v in values.values()]).astype(np.float32)
            predicted = np.asarray(stellar_map.predict(rows).mean, dtype=np.float64)
            log_radius, log_teff = predicted[:, 0].reshape(shape), predicted[:, 1].reshape(shape)
    if not ood:
        return log_radius, log_teff
    p_value = recorded.p_value().reshape(shape) if recorded is not None else np.full(shape, np.nan)
    return log_radius, log_teff, p_value


def predict_stars(stars, stellar_map, *, feh=None, tau=None, default_feh: float = 0.0, extrapolate: bool = False,
                  min_log_g: float = 4.0, max_radius_ratio: float = 2.0, log_mass_range=None, feh_range=None,
                  warn: bool = True) -> QTable:
    """Radius, T_eff and luminosity of each star from the stellar map, with flags where it cannot be trusted.

    Parameters
    ----------
    stars : Table/QTable or Quantity
        A catalogue with a ``mass`` column [a mass unit] and, where known,
        ``feh`` (NaN where not measured), ``log_g`` (cgs), and measured
        ``radius`` [a length] and ``teff`` [K] (e.g. :func:`~astrobayes.stars.debcat.read_debcat`);
        or just the masses as a Quantity.
    stellar_map : Regressor, DeepEnsemble or DeltaMap
        From :func:`~astrobayes.stars.emulator.train_stellar_map`, or a
        DeltaMap such as :func:`~astrobayes.stars.emulator.exact_stellar_delta_map`
        (pass its domain as ``log_mass_range``/``feh_range``).
    feh : float or array, optional
        [Fe/H] for masses given as a Quantity (a table brings its own ``feh``).
    tau : float or array, optional
        Fractional main-sequence age t / t_MS in [0, 1] (0: ZAMS, 1: end of
        the main sequence), for an evolving map (one with a ``tau`` input),
        which needs it; a table's ``tau`` column otherwise.
        :func:`~astrobayes.stars.residuals.fit_fractional_age` finds each star's best τ instead.
    default_feh : float
        [Fe/H] assumed where none is given (flag ``no_feh``); 0 is solar.
    extrapolate : bool
        Evaluate the map outside its domain too (still flagged); by default
        those predictions are NaN, never a number the map was not trained for.
    min_log_g : float
        Stars with a lower log g are ``not_main_sequence``; log g comes from
        the ``log_g`` column or, without one, from the measured mass and radius.
    max_radius_ratio : float
        Stars with a measured radius above this multiple of the map's are
        ``not_main_sequence`` (2: a factor the main sequence of a star below
        ~10 M_sun does not reach).
    log_mass_range, feh_range : (float, float), optional
        The domain; by default the map's ``stellar_map_domain``.
    warn : bool
        Warn when any star is flagged (see Warns).

    Returns
    -------
    QTable
        The catalogue's ``system``/``component``/``star_id``/``name`` columns
        where present, ``mass`` [solMass], ``feh`` (the value used),
        ``log_g``, the predicted ``radius`` [solRad], ``teff`` [K] and
        ``luminosity`` [solLum] (L = 4πR²σT⁴ with the CODATA σ), and for
        measured stars ``measured_radius``, ``measured_teff`` and the
        residuals ``delta_log_radius``, ``delta_log_teff`` [dex] (measured
        minus map); then one boolean column per flag of :data:`DOMAIN_FLAGS`,
        ``flags`` (their names, comma-separated) and ``in_domain`` (no flag
        but ``no_feh``); ``ood_p_value``: are the star's inputs (mass, [Fe/H]
        and τ as used) like those the network was trained on? (a conformal
        p-value, see :meth:`~astrobayes.estimators.Estimator.ood_p_value`,
        from the prediction's own pass, and for a star outside the domain
        from a pass of its own; small = unlike the training stars; NaN for an
        exact map or a network without a reference — ``meta["ood_note"]``
        says why). ``meta`` records the map, its domain, the settings,
        ``flag_counts``, ``ood_alpha`` and ``ood_flagged`` (stars with
        ``ood_p_value`` ≤ 0.01).

    Warns
    -----
    UserWarning
        With ``warn``: one line counting the stars of each flag, when any is
        flagged; one line counting the stars with ``ood_p_value`` ≤ 0.01, when
        there are any (about 1 % of stars like the training stars are
        flagged by chance).

    Raises
    ------
    ValueError
        Masses without a unit or not positive and finite, a ``default_feh``
        outside the map's domain, ``feh`` given twice.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> exact = exact_stellar_delta_map()
    >>> stars = predict_stars([0.3, 1.0, 30.0] * u.solMass, exact, log_mass_range=(-0.3, 1.3),
    ...                       feh_range=(-1.0, 0.15), warn=False)
    >>> stars["radius"].round(3)
    <Quantity [  nan, 0.888,   nan] solRad>
    >>> stars["flags"].tolist()
    ['below_mass_domain,no_feh', 'no_feh', 'above_mass_domain,no_feh']
    """
    for name, value in (("extrapolate", extrapolate), ("warn", warn)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    for name, value in (("default_feh", default_feh), ("min_log_g", min_log_g), ("max_radius_ratio", max_radius_ratio)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{name} must be a number, got {value!r}")
    if not _LOG_G_LIMITS[0] <= min_log_g <= _LOG_G_LIMITS[1]:
        raise ValueError(f"min_log_g={min_log_g!r} is outside the {_LOG_G_LIMITS[0]:g} to {_LOG_G_LIMITS[1]:g} of any "
                         "star: it is log10(g / cm s^-2) (the Sun 4.44), not g")
    if max_radius_ratio <= 1:
        raise ValueError(f"max_radius_ratio must be above 1 (a multiple of the map's radius), got {max_radius_ratio}")
    domain, inputs, (mass_low, mass_high), (feh_low, feh_high) = _domain(stellar_map, log_mass_range, feh_range)
    if not feh_low <= default_feh <= feh_high:
        raise ValueError(f"default_feh={default_feh:g} is outside the map's [Fe/H] range [{feh_low:g}, {feh_high:g}]")

    table = stars if isinstance(stars, Table) else None
    if table is not None:
        if "mass" not in table.colnames:
            raise ValueError(f"stars needs a 'mass' column (a Quantity in solMass); it has {table.colnames}")
        mass = _quantity(table["mass"], "column 'mass'", u.solMass, "a mass")
        if feh is not None:
            raise ValueError("feh= is for masses given as a Quantity; this table's metallicities are its 'feh' column")
        feh_values = _plain(table["feh"], "column 'feh'") if "feh" in table.colnames else np.full(len(mass), np.nan)
    elif isinstance(stars, u.Quantity):
        mass = np.atleast_1d(_quantity(stars, "stars", u.solMass, "a mass"))
        feh_values = np.full(len(mass), np.nan) if feh is None else _plain(feh, "feh")
        try:
            feh_values = np.broadcast_to(feh_values, mass.shape).astype(np.float64)
        except ValueError:
            raise ValueError(f"feh must be one value or one per star ({len(mass)}), got {feh_values.size}") from None
    else:
        raise TypeError(f"stars must be a catalogue (astropy Table with a 'mass' column) or masses as a Quantity, got "
                        f"{type(stars).__name__}")
    bad = np.flatnonzero(~(np.isfinite(mass) & (mass > 0)))
    if bad.size:
        raise ValueError(f"mass must be positive and finite; {bad.size} star(s) are not (rows {bad[:10].tolist()})")
    if np.isinf(feh_values).any():
        raise ValueError(f"feh has inf values (rows {np.flatnonzero(np.isinf(feh_values))[:10].tolist()})")
    if tau is None and table is not None and "tau" in table.colnames:
        tau = table["tau"]
    if "tau" in inputs:
        if tau is None:
            raise ValueError("stellar_map is an evolving map (inputs log_mass, feh, tau): pass tau=, the fractional "
                             "main-sequence age (0 = ZAMS, 1 = end of the main sequence), or fit each star's with "
                             "fit_fractional_age")
        tau = _plain(tau, "tau")
        try:
            tau = np.broadcast_to(tau, mass.shape).astype(np.float64)
        except ValueError:
            raise ValueError(f"tau must be one value or one per star ({len(mass)}), got {tau.size}") from None
        outside = ~((tau >= 0) & (tau <= 1))
        if outside.any():
            raise ValueError(f"tau must lie in [0, 1] (a fraction of the main-sequence lifetime); {int(outside.sum())} "
                             f"value(s) are not, e.g. {float(tau[outside][0])!r} "
                             f"(rows {np.flatnonzero(outside)[:10].tolist()})")
    elif tau is not None:
        raise ValueError(f"tau= is for an evolving map; this map's inputs are {inputs}")

    def measured(name, unit, kind):
        return _quantity(table[name], f"column {name!r}", unit, kind) if table is not None and name in table.colnames \
            else None

    measured_radius, measured_teff = measured("radius", u.solRad, "a length"), measured("teff", u.K, "a temperature")
    log_mass = np.log10(mass)
    if table is not None and "log_g" in table.colnames:
        log_g = _plain(table["log_g"], "column 'log_g'")
        if np.any((log_g < _LOG_G_LIMITS[0]) | (log_g > _LOG_G_LIMITS[1])):
            raise ValueError(f"column 'log_g' reaches {np.nanmin(log_g):g} to {np.nanmax(log_g):g}, beyond the "
                             f"{_LOG_G_LIMITS[0]:g} to {_LOG_G_LIMITS[1]:g} of any star: it must be log10(g / cm s^-2) "
                             "(the Sun 4.44), not g")
    elif measured_radius is not None:
        log_g = _LOG_G_SUN + log_mass - 2 * np.log10(measured_radius)
    else:
        log_g = np.full(len(mass), np.nan)

    flags = {"below_mass_domain": log_mass < mass_low, "above_mass_domain": log_mass > mass_high,
             "outside_feh_domain": (feh_values < feh_low) | (feh_values > feh_high), "no_feh": np.isnan(feh_values)}
    used_feh = np.where(flags["no_feh"], float(default_feh), feh_values)
    outside = flags["below_mass_domain"] | flags["above_mass_domain"] | flags["outside_feh_domain"]
    evaluate = np.ones(len(mass), dtype=bool) if extrapolate else ~outside
    log_radius, log_teff, ood_p = (np.full(len(mass), np.nan) for _ in range(3))
    inputs_used = {"log_mass": log_mass, "feh": used_feh, **({"tau": tau} if "tau" in inputs else {})}
    values = {name: v[evaluate] for name, v in inputs_used.items()}
    # the OOD p-values of the evaluated stars come from the prediction's own pass of the network
    log_radius[evaluate], log_teff[evaluate], ood_p[evaluate] = _evaluate(stellar_map, values, ood=True)
    network = _network(stellar_map)
    ood_note = ("the stellar map is not a network (an exact model): no out-of-distribution reference"
                if network is None else network.ood_note)
    if network is not None and network.ood is not None and not evaluate.all():
        # the stars outside the domain are not predicted, but their inputs are still scored (a second, small pass)
        skipped = np.column_stack([v[~evaluate] for v in inputs_used.values()]).astype(np.float32)
        ood_p[~evaluate] = network.ood_p_value(skipped)

    with np.errstate(invalid="ignore", divide="ignore"):
        delta_log_radius = np.log10(measured_radius) - log_radius if measured_radius is not None else None
        delta_log_teff = np.log10(measured_teff) - log_teff if measured_teff is not None else None
        too_big = (delta_log_radius > math.log10(max_radius_ratio)) if delta_log_radius is not None else False
        flags["not_main_sequence"] = (log_g < min_log_g) | too_big

    out = QTable()
    for name in _ID_COLUMNS:
        if table is not None and name in table.colnames:
            out[name] = table[name]
    out["mass"] = mass * u.solMass
    out["feh"] = used_feh
    out["feh"].info.description = f"[Fe/H] used for the prediction ({default_feh:g} where no_feh)"
    out["log_g"] = log_g
    out["log_g"].info.description = "log10(g / (cm s^-2)): the catalogue's, or from the measured mass and radius"
    if "tau" in inputs:
        out["tau"] = tau
        out["tau"].info.description = "fractional main-sequence age t / t_MS of the prediction"
    radius, teff = 10.0 ** log_radius * u.solRad, 10.0 ** log_teff * u.K
    out["radius"], out["teff"] = radius, teff
    out["luminosity"] = luminosity_from_sigma(const.sigma_sb, radius, teff)
    out["radius"].info.description = "radius predicted by the map (NaN outside its domain unless extrapolate)"
    out["teff"].info.description = "effective temperature predicted by the map"
    out["luminosity"].info.description = "4 pi R^2 sigma T^4 of the predicted R, T_eff with the CODATA sigma"
    for name, values, residual in (("radius", measured_radius, delta_log_radius),
                                   ("teff", measured_teff, delta_log_teff)):
        if values is not None:
            out[f"measured_{name}"] = values * (u.solRad if name == "radius" else u.K)
            out[f"delta_log_{name}"] = residual * u.dex
            out[f"delta_log_{name}"].info.description = f"log10(measured {name}) - log10(predicted {name})"
    for name in DOMAIN_FLAGS:
        out[name] = np.asarray(flags[name], dtype=bool) & np.ones(len(mass), dtype=bool)
    out["flags"] = np.array([",".join(n for n in DOMAIN_FLAGS if out[n][i]) for i in range(len(mass))], dtype=str)
    out["in_domain"] = ~np.any([np.asarray(out[n]) for n in _EXCLUDING], axis=0)
    counts = {name: int(np.sum(out[name])) for name in DOMAIN_FLAGS}
    out.meta.update({"model": domain.get("model", repr(stellar_map)), "stellar_map_domain": domain,
                     "log_mass_range": [mass_low, mass_high], "feh_range": [feh_low, feh_high],
                     "default_feh": float(default_feh), "min_log_g": float(min_log_g),
                     "max_radius_ratio": float(max_radius_ratio), "extrapolate": extrapolate,
                     "sigma": str(const.sigma_sb), "flag_counts": counts, "seed": domain.get("seed"),
                     "astrobayes_version": __version__})
    flagged = {name: count for name, count in counts.items() if count}
    if warn and flagged:
        nan = "" if extrapolate or not outside.any() else (f"; the {int(outside.sum())} outside the map's domain "
                                                           "are predicted as NaN (extrapolate=True to evaluate them)")
        warnings.warn(f"predict_stars: of {len(mass)} stars, " + ", ".join(f"{c} {n}" for n, c in flagged.items())
                      + (f" (no_feh: [Fe/H] = {default_feh:g} assumed)" if "no_feh" in flagged else "") + nan,
                      UserWarning, stacklevel=2)
    report_ood(out, ood_p, note=ood_note, objects="stars", warn=warn)
    return out
