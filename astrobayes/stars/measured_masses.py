"""Stars with measured masses (eclipsing binaries): σ from luminosities, with each star's mass as data.

For star i with a measured luminosity L̂_i (log-normal error r_i), a dynamical
mass M̂_i (log-normal error s_i) and, where measured, a metallicity Ẑ_i ± e_i,

    p(L̂_i | M̂_i, Ẑ_i, σ) = ∫ N(ln L̂_i; ln σ + ℓ(M, Z, τ), r_i) p(M, Z, τ | M̂_i, Ẑ_i) dM dZ dτ / L̂_i ,

with ℓ = ln(4π R² T⁴ / L_sun) from the stellar map (R, T) = f(M, Z[, τ]) and

    p(M, Z, τ | M̂, Ẑ) ∝ N(ln M̂; ln M, s) p_IMF(M) · N(Ẑ; Z, e) p(Z) · p(τ),

the posterior of the star's latents given its own mass and metallicity under
the (fixed) population; a star without [Fe/H] takes the population's p(Z).
The age τ = t / t_MS (0 on the ZAMS, 1 at the end of the main sequence) is a
latent when the map has a ``tau`` input (an evolving map). Its prior is that
of constant star formation over the age of the Universe: a star seen on the
main sequence has an age uniform on [0, min(t_MS, t_Universe)], so τ is
uniform on [0, τ_max] with τ_max = min(1, t_Universe / t_MS(M, Z))
(:func:`~astrobayes.stars.evolution.max_fractional_age`; below ~0.9 M_sun no
star has had time to reach τ = 1). ``tau_prior="uniform"`` drops the cap.

The integrals are done once, when the model is built, by quadrature:

1. **Mass.** The measured mass pins ln M to ±s (a median 0.9 % in DEBCat).
   Across that width the IMF is an exponential tilt e^{β ln M} (β its local
   slope), which turns N(ln M̂, s) into N(ln M̂ + β s², s) exactly. ℓ's mean and
   variance under that Gaussian come from a 3-point Gauss–Hermite rule
   (exact for ℓ quadratic in ln M over ±√3 s), and the mass integral becomes a
   Gaussian of width ρ = √(r² + Var ℓ) in ln L̂: no mass nodes, however small s.
2. **[Fe/H] and τ.** Composite 3-point Gauss–Legendre cells: [Fe/H] on the
   map's domain ∩ Ẑ ± 6e (measured, weighted by measurement × population) or
   the whole domain (missing, weighted by the population); τ on [0, τ_max].
   Cells are split where neighbouring nodes differ in ℓ by more than a fraction
   of their width ρ (half a width without τ, one width with it), so that the
   node sum of Gaussians is a smooth function of σ; the splitting adapts to the
   end-of-main-sequence hook, where ℓ jumps within a few % of τ. Stars are
   grouped by luminosity error (factors of 2), so that the most precise star
   does not refine every star's grid.
3. **σ.** Each star's log-likelihood is tabulated on a grid of ln σ spanning
   the prior (spacing a quarter of the narrowest ρ); log p(σ | data) is a cubic
   spline through the table's column sums. The map never runs again, so an
   emcee step, or the exact 1-D posterior on the grid, costs microseconds.

Why this and not the luminosity-only grid (:mod:`~astrobayes.stars.grid`):
that model integrates over the IMF on one (log M, [Fe/H]) grid fine enough for
the most precise luminosity in the catalogue (node spacing ∝ r_min on both
axes, so the cost grows as 1/r_min²), and recomputes the population on every
node for every walker. DEBCat's best luminosity (0.006 dex) makes that grid
2040 × 438 nodes, 13× a 5 %-error mock field, and a default run 25–45 minutes;
measured masses make the mass integral analytic and σ the only free parameter.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable, Table
from scipy.interpolate import CubicSpline

from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.priors import JointPrior
from astrobayes.inference.sampling import MCMCResult, run_emcee
from astrobayes.stars.grid import log_area_term
from astrobayes.stars.simulate import SIGMA_UNIT

__all__ = ["MeasuredMassModel", "TAU_PRIORS"]

_LN10 = math.log(10.0)
_LN_SQRT_2PI = 0.5 * math.log(2 * math.pi)
#: τ priors: uniform in age up to min(t_MS, age of the Universe) (constant star formation), or uniform on [0, 1]
TAU_PRIORS = ("age_of_universe", "uniform")
#: 3-point Gauss–Hermite rule for a standard normal: nodes and weights
_GH_NODES = (-math.sqrt(3.0), 0.0, math.sqrt(3.0))
_GH_WEIGHTS = (1 / 6, 2 / 3, 1 / 6)
#: a measured [Fe/H] is integrated over ±this many errors (inside the map's domain)
_FEH_SIGMAS = 6.0
#: most 3-point cells per latent axis, most map evaluations, most ln σ grid points
_MAX_CELLS = 512
_MAX_MAP_ROWS = 2**25
#: rows per call of the map (bounds the memory of its temporaries)
_MAP_BLOCK_ROWS = 2**17
#: neighbouring quadrature nodes may differ in ℓ by at most this many of their widths: without τ a star's ℓ
#: spread is narrow (its [Fe/H] alone) and needs 0.5; with τ it is broad and 1 suffices. Halving either moves
#: the median σ on DEBCat by < 0.02 posterior standard deviations (0.06 and 0.15 for 1.0 and 1.5 without τ)
_MAX_STEP = {False: 0.5, True: 1.0}
#: [Fe/H] nodes with less than this share of a star's probability need not be resolved
_NEGLIGIBLE = 1e-6
_MAX_SIGMA_POINTS = 20001


def _composite_legendre(low: torch.Tensor, high: torch.Tensor,
                        edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """3-point Gauss–Legendre cells between ``edges`` (0 … 1, as fractions of [low, high]) per row: (N, 3 cells)."""
    nodes, weights = (torch.as_tensor(v) for v in np.polynomial.legendre.leggauss(3))
    half = 0.5 * edges.diff()
    fraction = ((edges[:-1] + half)[:, None] + half[:, None] * nodes).reshape(1, -1)
    width = (high - low)[:, None]
    return low[:, None] + width * fraction, width * (half[:, None] * weights).reshape(1, -1)


def _split(edges: torch.Tensor, steps: torch.Tensor) -> torch.Tensor | None:
    """Cells whose nodes are more than one width apart in ℓ split into as many parts as needed; None if none is.

    ``steps`` (3 cells − 1,) is the largest step, in widths, from each node to the next one.
    """
    n_cells = len(edges) - 1
    worst = torch.nn.functional.pad(steps, (0, 1)).reshape(n_cells, 3).max(dim=1).values
    parts = torch.where(worst > 1.0, torch.ceil(1.1 * worst), torch.ones_like(worst)).long()
    if not (parts > 1).any():
        return None
    pieces = [edges[c] + (edges[c + 1] - edges[c]) * torch.arange(int(parts[c]), dtype=torch.float64) / int(parts[c])
              for c in range(n_cells)]
    return torch.cat([*pieces, edges[-1:]])


def _star_names(catalog) -> list[str]:
    """A name per row: "system component" (DEBCat), else the name or star_id column, else "row i"."""
    if "system" in catalog.colnames:
        if "component" in catalog.colnames:
            return [f"{s} {c}" for s, c in zip(catalog["system"], catalog["component"])]
        return [str(s) for s in catalog["system"]]
    for column in ("name", "star_id"):
        if column in catalog.colnames:
            return [str(value) for value in catalog[column]]
    return [f"row {i}" for i in range(len(catalog))]


def _check_unique(catalog, names: Sequence[str]) -> None:
    """Refuse a star listed twice (the same system and component, name or star_id): its light would count twice."""
    if "system" in catalog.colnames:
        columns = ["system", "component"] if "component" in catalog.colnames else ["system"]
    else:
        columns = [c for c in ("name", "star_id") if c in catalog.colnames][:1]
    if not columns:  # no id column: rows cannot be told apart, nor compared
        return
    rows: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        rows.setdefault(name, []).append(i)
    repeated = {name: found for name, found in rows.items() if len(found) > 1}
    if repeated:
        shown = "; ".join(f"{name!r} (rows {found})" for name, found in list(repeated.items())[:8])
        more = f" and {len(repeated) - 8} more" if len(repeated) > 8 else ""
        hint = (" (a table of stars with a 'system' column needs a 'component' column to tell a system's stars "
                "apart)" if columns == ["system"] else "")
        raise ValueError(f"catalog column{'s' if len(columns) > 1 else ''} {' + '.join(map(repr, columns))} "
                         f"name{'' if len(columns) > 1 else 's'} {len(repeated)} star(s) more than once: "
                         f"{shown}{more}; each star must appear once, or its luminosity counts twice{hint}")


def _not_main_sequence(catalog, mass: np.ndarray, feh: np.ndarray, inside: np.ndarray, stellar_map: DeltaMap,
                       feh_range: Sequence[float], min_log_g: float, max_radius_ratio: float) -> np.ndarray:
    """The ``not_main_sequence`` flag of :func:`~astrobayes.stars.predict.predict_stars`, per star.

    log g (the ``log_g`` column, else from the mass and a ``radius`` column) below ``min_log_g``, or a measured
    radius above ``max_radius_ratio`` times the map's largest main-sequence radius (its τ = 1 radius for an
    evolving map, the ZAMS radius otherwise) for the stars ``inside`` the map's domain. Unknown log g: not flagged.
    """
    from astrobayes.stars.predict import _LOG_G_LIMITS, _LOG_G_SUN

    radius = _column(catalog, "radius", u.R_sun) if "radius" in catalog.colnames else np.full(len(mass), np.nan)
    log_g = np.full(len(mass), np.nan)
    if "log_g" in catalog.colnames:
        log_g = _column(catalog, "log_g", u.dex)
        if np.any((log_g < _LOG_G_LIMITS[0]) | (log_g > _LOG_G_LIMITS[1])):
            raise ValueError(f"catalog column 'log_g' reaches {np.nanmin(log_g):g} to {np.nanmax(log_g):g}, beyond "
                             f"the {_LOG_G_LIMITS[0]:g} to {_LOG_G_LIMITS[1]:g} of any star: it must be "
                             "log10(g / cm s^-2) (the Sun 4.44), not g")
    with np.errstate(invalid="ignore", divide="ignore"):
        from_radius = _LOG_G_SUN + np.log10(mass) - 2 * np.log10(np.where(radius > 0, radius, np.nan))
    log_g = np.where(np.isfinite(log_g), log_g, from_radius)
    flag = log_g < min_log_g
    check = np.flatnonzero(inside & np.isfinite(radius) & (radius > 0))
    if check.size:
        inputs = {"log_mass": torch.as_tensor(np.log10(mass[check])),
                  "feh": torch.as_tensor(np.where(np.isfinite(feh[check]), feh[check],
                                                  min(max(0.0, feh_range[0]), feh_range[1]))),
                  "tau": torch.ones(check.size, dtype=torch.float64)}
        out = stellar_map({name: inputs[name] for name in stellar_map.inputs})
        map_radius = 10.0 ** out["log_radius"].detach().numpy().astype(np.float64)
        flag[check] |= radius[check] > max_radius_ratio * map_radius
    return flag


def _describe(names: Sequence[str], rows: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(names[i] if names[i] == f"row {i}" else f"{names[i]} (row {i})" for i in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{len(rows)} star(s): {shown}{more}"


def _column(catalog, name: str, unit: u.UnitBase) -> np.ndarray:
    """A catalogue column in ``unit`` as float64, NaN where masked; [Fe/H] may be plain numbers (dex)."""
    column = catalog[name]
    if isinstance(column, u.Quantity):
        try:
            values = column.to_value(unit) if column.unit != u.dimensionless_unscaled or unit != u.dex else column.value
        except u.UnitConversionError:
            raise ValueError(f"catalog column {name!r} has unit {column.unit}, which cannot be converted to "
                             f"{unit}") from None
    elif unit == u.dex:
        values = column
    else:
        raise ValueError(f"catalog column {name!r} has no unit; expected {unit} (give it a unit, e.g. "
                         f"catalog[{name!r}] = values * u.{unit.to_string()})")
    if np.ma.isMaskedArray(values) or hasattr(column, "mask"):
        values = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"catalog column {name!r} is not numeric") from None


class MeasuredMassModel:
    """p(σ | L̂, M̂, Ẑ) for stars with measured luminosities and masses, by quadrature tabulated in ln σ.

    Built by :func:`~astrobayes.stars.model.stefan_boltzmann_model` when the
    catalogue has ``mass``/``mass_err`` columns; the module docstring gives
    the method. σ is the only free parameter: the population (IMF and
    metallicity distribution) is held at its fixed values, which with masses
    known to ~1 % matter only for the metallicity of stars without one.

    Parameters
    ----------
    hyperprior : JointPrior
        The prior of σ alone (a parameter named ``sigma``, W m⁻² K⁻⁴), on a finite range.
    population : callable
        ``population(latents, {}) -> log p(log_mass, feh)`` elementwise, e.g. a
        :class:`~astrobayes.stars.population.StellarPopulation` (its fixed values are used).
    luminosity, luminosity_error : array (N,)
        L̂_i in L_sun and r_i, the 1σ error of ln L̂_i.
    mass, mass_error : array (N,)
        M̂_i in M_sun and s_i, the 1σ error of ln M̂_i.
    feh, feh_error : array (N,)
        Measured [Fe/H] and its 1σ error in dex; NaN where not measured.
    stellar_map : DeltaMap
        (log_mass, feh[, tau]) → (log_radius, log_teff).
    log_mass_range, feh_range : (float, float)
        The map's domain; every M̂ and measured [Fe/H] must lie inside it.
    tau_prior : {"age_of_universe", "uniform"}
        Prior of τ = t / t_MS when the map has a ``tau`` input: uniform on
        [0, min(1, t_Universe / t_MS)] (constant star formation since the Big
        Bang; default) or uniform on [0, 1].
    names : sequence of str, optional
        A name per star (e.g. "CM_Dra 1") for messages and the predictive check.
    max_elements : int
        Bound on stars × nodes × σ points handled at once when tabulating.

    Raises
    ------
    ValueError
        Non-positive or NaN luminosities, masses or their errors, a measured
        [Fe/H] without an error, or a star outside the map's domain, naming
        the stars.

    Examples
    --------
    Two solar-type stars with 1 % masses and 5 % luminosities, seen through the exact ZAMS map:

    >>> import torch
    >>> from astrobayes.inference.priors import LogUniform
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> from astrobayes.stars.simulate import default_population
    >>> model = MeasuredMassModel(JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]), default_population(),
    ...                           [0.7, 1.5], [0.05, 0.05], [1.0, 1.2], [0.01, 0.01], [0.0, float("nan")],
    ...                           [0.1, float("nan")], exact_stellar_delta_map(), (-0.3, 1.3), (-1.0, 0.15))
    >>> model.log_prob(torch.tensor([[5.67e-8], [2e-8]])).argmax().item()
    0
    """

    def __init__(self, hyperprior: JointPrior, population: Callable, luminosity, luminosity_error, mass, mass_error,
                 feh, feh_error, stellar_map: DeltaMap, log_mass_range: Sequence[float], feh_range: Sequence[float],
                 *, tau_prior: str = "age_of_universe", names: Sequence[str] | None = None, max_elements: int = 2**22):
        if not isinstance(hyperprior, JointPrior) or hyperprior.names != ["sigma"]:
            raise ValueError("hyperprior must be a JointPrior over 'sigma' alone: with measured masses σ is the only "
                             f"free parameter (got {getattr(hyperprior, 'names', hyperprior)!r})")
        low, high = float(hyperprior.low[0]), float(hyperprior.high[0])
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
            raise ValueError(f"the σ prior must have a finite positive range to tabulate, got [{low}, {high}]")
        if not callable(population):
            raise TypeError(f"population must be callable, got {type(population).__name__}")
        if not isinstance(stellar_map, DeltaMap):
            raise TypeError(f"stellar_map must be a DeltaMap, got {type(stellar_map).__name__}")
        if tau_prior not in TAU_PRIORS:
            raise ValueError(f"tau_prior must be one of {TAU_PRIORS}, got {tau_prior!r}")
        if isinstance(max_elements, bool) or not isinstance(max_elements, (int, np.integer)) or max_elements < 1:
            raise ValueError(f"max_elements must be a positive integer, got {max_elements!r}")
        arrays = {}
        for arg, value in (("luminosity", luminosity), ("luminosity_error", luminosity_error), ("mass", mass),
                           ("mass_error", mass_error), ("feh", feh), ("feh_error", feh_error)):
            arrays[arg] = np.asarray(value, dtype=np.float64)
            if arrays[arg].ndim != 1 or len(arrays[arg]) != len(arrays["luminosity"]) or not len(arrays[arg]):
                raise ValueError(f"{arg} must be a non-empty 1-D array as long as luminosity, got shape "
                                 f"{arrays[arg].shape}")
        self.names = [f"row {i}" for i in range(len(arrays["mass"]))] if names is None else [str(n) for n in names]
        if len(self.names) != len(arrays["mass"]):
            raise ValueError(f"names has {len(self.names)} entries for {len(arrays['mass'])} stars")
        for arg in ("luminosity", "luminosity_error", "mass", "mass_error"):
            bad = np.flatnonzero(~(np.isfinite(arrays[arg]) & (arrays[arg] > 0)))
            if bad.size:
                raise ValueError(f"{arg} must be finite and positive; it is not for {self._named(bad)}")
        measured = np.isfinite(arrays["feh"])
        bad = np.flatnonzero(measured & ~(np.isfinite(arrays["feh_error"]) & (arrays["feh_error"] > 0)))
        if bad.size:
            raise ValueError(f"a measured feh needs a positive feh_error; it has none for {self._named(bad)}")
        self.log_mass_range, self.feh_range = tuple(map(float, log_mass_range)), tuple(map(float, feh_range))
        log_mass = np.log10(arrays["mass"])
        outside = (log_mass < self.log_mass_range[0]) | (log_mass > self.log_mass_range[1]) | (
            measured & ((arrays["feh"] < self.feh_range[0]) | (arrays["feh"] > self.feh_range[1])))
        if outside.any():
            raise ValueError(f"{self._named(np.flatnonzero(outside))} lie outside the map's domain (log M "
                             f"{self.log_mass_range}, [Fe/H] {self.feh_range}); remove them or pass "
                             "outside_domain='drop' to stefan_boltzmann_model")
        self.hyperprior, self.population, self.stellar_map = hyperprior, population, stellar_map
        self.tau_prior = tau_prior
        self.has_tau = "tau" in stellar_map.inputs
        self.max_elements = int(max_elements)
        self.n_objects = len(log_mass)
        self.dropped: dict[str, str] = {}  # filled by from_catalog: star name → why it was left out
        self.feh_without_error: list[str] = []
        self.unused_columns: list[str] = []
        self._ln_l = torch.as_tensor(np.log(arrays["luminosity"]))
        self._r = torch.as_tensor(arrays["luminosity_error"])
        self._ln_mass = torch.as_tensor(np.log(arrays["mass"]))
        self._s = torch.as_tensor(arrays["mass_error"])
        self._feh, self._feh_err = torch.as_tensor(arrays["feh"]), torch.as_tensor(arrays["feh_error"])
        self._build_nodes()
        self._tabulate(low, high)

    @classmethod
    def from_catalog(cls, catalog, stellar_map: DeltaMap, hyperprior: JointPrior, population: Callable,
                     log_mass_range: Sequence[float], feh_range: Sequence[float], *, outside_domain: str = "raise",
                     tau_prior: str = "age_of_universe", off_main_sequence: str = "drop", min_log_g: float = 4.0,
                     max_radius_ratio: float = 2.0) -> MeasuredMassModel:
        """The model for a catalogue with ``luminosity``, ``mass`` (and optional ``feh``) columns and their errors.

        Called by :func:`~astrobayes.stars.model.stefan_boltzmann_model`, whose
        docstring describes the columns. ``outside_domain="drop"`` leaves out,
        with a warning, the stars whose mass or measured [Fe/H] lies outside
        the map's domain (``model.dropped`` names them and says why); the
        default refuses them. A measured [Fe/H] without an error is not a
        measurement: such stars take the population's metallicity, with a
        warning (``model.feh_without_error``). ``teff`` and ``radius`` columns
        are not used in the likelihood (``model.unused_columns``).

        Stars off the main sequence, which no main-sequence map describes, are
        flagged as :func:`~astrobayes.stars.predict.predict_stars` flags them
        (``not_main_sequence``): log g (the ``log_g`` column, else from
        ``mass`` and ``radius``) below ``min_log_g``, or a measured ``radius``
        above ``max_radius_ratio`` times the map's (at τ = 1, the end of the
        main sequence, for an evolving map). ``off_main_sequence="drop"``
        (default) leaves them out with a warning naming them (in
        ``model.dropped``), "raise" refuses them, "keep" fits them anyway.
        A star listed twice (the same ``system`` and ``component``, ``name``
        or ``star_id``) is refused.

        Examples
        --------
        >>> import astropy.units as u
        >>> from astropy.table import QTable
        >>> from astrobayes.inference.priors import LogUniform
        >>> from astrobayes.stars.emulator import exact_stellar_delta_map
        >>> from astrobayes.stars.simulate import default_population
        >>> binaries = QTable({"system": ["A", "A", "B"], "component": [1, 2, 1],
        ...                    "luminosity": [1.5, 0.7, 0.02] * u.L_sun, "luminosity_err": [0.1, 0.05, 0.002] * u.L_sun,
        ...                    "mass": [1.2, 1.0, 0.3] * u.M_sun, "mass_err": [0.01, 0.01, 0.003] * u.M_sun})
        >>> model = MeasuredMassModel.from_catalog(binaries, exact_stellar_delta_map(),
        ...                                        JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]),
        ...                                        default_population(), (-0.3, 1.3), (-1.0, 0.15),
        ...                                        outside_domain="drop")
        >>> model.n_objects, model.dropped
        (2, {'B 1': 'below_mass_domain'})
        """
        if not isinstance(catalog, Table):
            raise TypeError(f"catalog must be an astropy Table/QTable (e.g. read_debcat()), got "
                            f"{type(catalog).__name__}")
        if outside_domain not in ("raise", "drop"):
            raise ValueError(f"outside_domain must be 'raise' or 'drop', got {outside_domain!r}")
        if off_main_sequence not in ("drop", "raise", "keep"):
            raise ValueError(f"off_main_sequence must be 'drop', 'raise' or 'keep', got {off_main_sequence!r}")
        for arg, value in (("min_log_g", min_log_g), ("max_radius_ratio", max_radius_ratio)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
                raise TypeError(f"{arg} must be a finite number, got {value!r}")
        if max_radius_ratio <= 1:
            raise ValueError(f"max_radius_ratio must be above 1 (a multiple of the map's radius), got "
                             f"{max_radius_ratio!r}")
        missing = [c for c in ("luminosity", "luminosity_err", "mass", "mass_err") if c not in catalog.colnames]
        if missing:
            raise ValueError(f"catalog lacks columns {missing}; measured masses need luminosity, luminosity_err "
                             f"[L_sun], mass and mass_err [M_sun] (it has {catalog.colnames})")
        names = _star_names(catalog)
        _check_unique(catalog, names)
        values = {}
        for column, unit in (("luminosity", u.L_sun), ("luminosity_err", u.L_sun), ("mass", u.M_sun),
                             ("mass_err", u.M_sun)):
            values[column] = _column(catalog, column, unit)
            bad = np.flatnonzero(~(np.isfinite(values[column]) & (values[column] > 0)))
            if bad.size:
                hint = (" (DEBCat gives no log L for 37 systems: keep the rows with "
                        "np.isfinite(catalog['luminosity']))" if column.startswith("luminosity") else "")
                raise ValueError(f"catalog column {column!r} must be finite and positive; it is not for "
                                 f"{_describe(names, bad)}{hint}")
        if ("feh" in catalog.colnames) != ("feh_err" in catalog.colnames):
            raise ValueError("catalog has one of 'feh' and 'feh_err' without the other; give both (NaN where a "
                             "star has no measured [Fe/H])")
        if "feh" in catalog.colnames:
            feh, feh_err = _column(catalog, "feh", u.dex), _column(catalog, "feh_err", u.dex)
            negative = np.flatnonzero(feh_err <= 0)
            if negative.size:
                raise ValueError(f"catalog column 'feh_err' must be positive; it is not for "
                                 f"{_describe(names, negative)}")
        else:
            feh = feh_err = np.full(len(catalog), np.nan)
        no_error = np.flatnonzero(np.isfinite(feh) & ~np.isfinite(feh_err))
        if no_error.size:
            warnings.warn(f"{_describe(names, no_error)} have a [Fe/H] without an error; they take the population's "
                          "metallicity distribution instead", UserWarning, stacklevel=3)
            feh = np.where(np.isfinite(feh_err), feh, np.nan)
        log_mass = np.log10(values["mass"])
        reasons = np.full(len(catalog), "", dtype=object)
        reasons[log_mass < log_mass_range[0]] = "below_mass_domain"
        reasons[log_mass > log_mass_range[1]] = "above_mass_domain"
        reasons[(reasons == "") & ((feh < feh_range[0]) | (feh > feh_range[1]))] = "outside_feh_domain"
        outside = np.flatnonzero(reasons != "")
        if outside.size and outside_domain == "raise":
            raise ValueError(f"{_describe(names, outside)} lie outside the map's domain (log M "
                             f"{tuple(log_mass_range)}, "
                             f"[Fe/H] {tuple(feh_range)}): remove them, or pass outside_domain='drop' to leave them "
                             "out of the inference")
        if outside.size:
            warnings.warn(f"leaving out {_describe(names, outside)}: outside the map's domain (log M "
                          f"{tuple(log_mass_range)}, [Fe/H] {tuple(feh_range)})", UserWarning, stacklevel=3)
        if off_main_sequence != "keep":
            evolved = np.flatnonzero((reasons == "") & _not_main_sequence(
                catalog, values["mass"], feh, reasons == "", stellar_map, feh_range, min_log_g, max_radius_ratio))
            why = (f"not on the main sequence (flag not_main_sequence: log g < {min_log_g:g}, or a radius above "
                   f"{max_radius_ratio:g} times the map's): subgiants and giants are outside a main-sequence map's "
                   "domain")
            if evolved.size and off_main_sequence == "raise":
                raise ValueError(f"{_describe(names, evolved)} are {why}; remove them, or pass "
                                 "off_main_sequence='drop' to leave them out of the inference")
            if evolved.size:
                warnings.warn(f"leaving out {_describe(names, evolved)}: {why} (off_main_sequence='keep' fits them "
                              "anyway)", UserWarning, stacklevel=3)
            reasons[evolved] = "not_main_sequence"
            outside = np.flatnonzero(reasons != "")
        keep = reasons == ""
        if not keep.any():
            raise ValueError("no star of the catalogue lies inside the map's domain and on the main sequence")
        model = cls(hyperprior, population, values["luminosity"][keep],
                    (values["luminosity_err"] / values["luminosity"])[keep], values["mass"][keep],
                    (values["mass_err"] / values["mass"])[keep], feh[keep], feh_err[keep], stellar_map,
                    log_mass_range, feh_range, tau_prior=tau_prior, names=[names[i] for i in np.flatnonzero(keep)])
        model.dropped = {names[i]: reasons[i] for i in outside}
        model.feh_without_error = [names[i] for i in no_error]
        model.unused_columns = [c for c in ("teff", "radius") if c in catalog.colnames]
        return model

    def _named(self, rows: np.ndarray) -> str:
        return _describe(self.names, rows)

    # ------------------------------------------------------------------ quadrature nodes, once
    def _population(self, log_mass: torch.Tensor, feh: torch.Tensor) -> torch.Tensor:
        log_mass, feh = torch.broadcast_tensors(log_mass, feh)
        value = torch.as_tensor(self.population({"log_mass": log_mass, "feh": feh}, {}), dtype=torch.float64)
        if torch.isnan(value).any():
            raise ValueError("population returned NaN for latents inside the map's domain")
        return torch.broadcast_to(value, log_mass.shape)

    def _mass_points(self, stars: torch.Tensor) -> torch.Tensor:
        """log10 M at the 3 Gauss–Hermite points of each star's IMF-tilted mass Gaussian, (n, 3), in the domain."""
        ln_mass, s = self._ln_mass[stars], self._s[stars]
        log_mass = ln_mass / _LN10
        feh_mid = torch.full_like(log_mass, 0.5 * sum(self.feh_range))
        step = 0.01
        # β = d ln p / d ln M, the IMF's local slope; 0 where the finite difference leaves its support
        up, down = (self._population(log_mass + sign * step / _LN10, feh_mid) for sign in (1, -1))
        beta = torch.where(torch.isfinite(up) & torch.isfinite(down), (up - down) / (2 * step),
                           torch.zeros_like(up))
        centre = ln_mass + beta * s**2
        points = (centre[:, None] + s[:, None] * torch.as_tensor(_GH_NODES)) / _LN10
        # a star within √3 s of the domain's edge is evaluated at the edge
        return points.clamp(*self.log_mass_range)

    def _feh_nodes(self, stars: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[Fe/H] nodes and normalised log weights per star, (n, 3 cells) each."""
        feh, feh_err = self._feh[stars], self._feh_err[stars]
        measured = torch.isfinite(feh)
        f_lo, f_hi = self.feh_range
        centre, error = torch.nan_to_num(feh), torch.nan_to_num(feh_err, nan=1.0)
        low = torch.where(measured, (centre - _FEH_SIGMAS * error).clamp(f_lo, f_hi), torch.full_like(centre, f_lo))
        high = torch.where(measured, (centre + _FEH_SIGMAS * error).clamp(f_lo, f_hi), torch.full_like(centre, f_hi))
        nodes, weights = _composite_legendre(low, high, edges)
        log_w = torch.log(weights) + self._population(self._ln_mass[stars, None] / _LN10, nodes)
        log_w = log_w + torch.where(measured[:, None], -0.5 * ((nodes - centre[:, None]) / error[:, None]) ** 2, 0.0)
        total = torch.logsumexp(log_w, dim=1, keepdim=True)
        empty = ~torch.isfinite(total[:, 0])
        if empty.any():
            raise ValueError(f"the population gives no weight to the [Fe/H] of "
                             f"{self._named(stars[empty].numpy())}")
        return nodes, log_w - total

    def _tau_nodes(self, stars: torch.Tensor, feh: torch.Tensor,
                   edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """τ nodes and normalised log weights for every star and [Fe/H] node, (n, n_feh, 3 cells) each."""
        n, n_feh = feh.shape
        if not self.has_tau:
            return torch.zeros(n, n_feh, 1, dtype=torch.float64), torch.zeros(n, n_feh, 1, dtype=torch.float64)
        if self.tau_prior == "uniform":
            tau_max = torch.ones(n * n_feh, dtype=torch.float64)
        else:
            from astrobayes.stars.evolution import max_fractional_age
            from astrobayes.stars.zams import feh_to_metallicity

            mass = torch.exp(self._ln_mass[stars])[:, None].expand(n, n_feh).reshape(-1)
            tau_max = torch.as_tensor(np.asarray(max_fractional_age(
                mass.numpy(), np.asarray(feh_to_metallicity(feh.reshape(-1).numpy())), check=False), dtype=np.float64))
        nodes, weights = _composite_legendre(torch.zeros_like(tau_max), tau_max, edges)
        shape = (n, n_feh, nodes.shape[1])
        return nodes.reshape(shape), torch.log(weights / tau_max[:, None]).reshape(shape)

    def _moments(self, stars: torch.Tensor, feh: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of ℓ and the width √(r² + Var ℓ) over each star's mass Gaussian, at every ([Fe/H], τ) node:
        (n, n_feh, n_tau) each. The map runs in blocks of stars, so that its temporaries stay small."""
        n, n_feh, n_tau = tau.shape
        points = self._mass_points(stars)
        per_star = 3 * n_feh * n_tau
        block = max(1, _MAP_BLOCK_ROWS // per_star)
        ell = []
        for start in range(0, n, block):
            rows = slice(start, start + block)
            shape = (len(points[rows]), 3, n_feh, n_tau)
            inputs = {"log_mass": points[rows, :, None, None].expand(shape),
                      "feh": feh[rows, None, :, None].expand(shape), "tau": tau[rows, None].expand(shape)}
            out = self.stellar_map({name: inputs[name].reshape(-1) for name in self.stellar_map.inputs})
            ell.append(log_area_term(out["log_radius"], out["log_teff"]).reshape(shape))
        ell = torch.cat(ell)
        weights = torch.as_tensor(_GH_WEIGHTS, dtype=torch.float64)[None, :, None, None]
        mean = (weights * ell).sum(dim=1)
        variance = ((weights * (ell - mean[:, None]) ** 2).sum(dim=1)).clamp(min=0.0)
        return mean, torch.sqrt(self._r[stars, None, None] ** 2 + variance)

    def _nodes(self, stars: torch.Tensor, edges: dict) -> tuple[torch.Tensor, ...]:
        feh, feh_log_w = self._feh_nodes(stars, edges["feh"])
        tau, tau_log_w = self._tau_nodes(stars, feh, edges["tau"])
        return feh, feh_log_w, tau, tau_log_w

    @staticmethod
    def _steps(mean: torch.Tensor, width: torch.Tensor, dim: int, feh_weight: torch.Tensor) -> torch.Tensor:
        """Largest distance in ℓ from each node to the next along ``dim`` (1: [Fe/H], 2: τ), in the narrower of
        their widths, among nodes that carry weight: [Fe/H] nodes below ``_NEGLIGIBLE`` of a star's probability
        (the far wings of its metallicity distribution) need no resolving."""
        narrow = torch.minimum(width.narrow(dim, 1, width.shape[dim] - 1), width.narrow(dim, 0, width.shape[dim] - 1))
        steps = mean.diff(dim=dim).abs() / narrow
        carries = feh_weight >= _NEGLIGIBLE  # (n, n_feh)
        carries = (carries[:, 1:] | carries[:, :-1]) if dim == 1 else carries
        steps = torch.where(carries[:, :, None], steps, torch.zeros_like(steps))
        return steps.amax(dim=tuple(d for d in range(3) if d != dim))

    def _quadrature(self, stars: torch.Tensor) -> tuple[dict, tuple]:
        """Cells on the [Fe/H] and τ axes for these stars, split until neighbouring nodes are within
        ``_MAX_STEP`` widths in ℓ, and the nodes, weights and ℓ moments on them.

        Each axis is first refined on a cross-section of at most 4 nodes of the other (cheap); the full grid
        is then evaluated, checked, and refined again only if a step is still too large."""
        edges = {"feh": torch.linspace(0, 1, 5, dtype=torch.float64),
                 "tau": torch.linspace(0, 1, 5 if self.has_tau else 2, dtype=torch.float64)}
        axes = {"feh": 1, "tau": 2} if self.has_tau else {"feh": 1}
        max_step = _MAX_STEP[self.has_tau]

        def too_big(candidate: dict) -> bool:
            rows = 27 * len(stars) * (len(candidate["feh"]) - 1) * (len(candidate["tau"]) - 1)
            return max(len(e) for e in candidate.values()) > _MAX_CELLS + 1 or rows > _MAX_MAP_ROWS

        def splits(mean, width, feh_weight, only=None) -> dict:
            found = {}
            for axis, dim in axes.items():
                if only is None or axis == only:
                    split = _split(edges[axis], self._steps(mean, width, dim, feh_weight) / max_step)
                    if split is not None:
                        found[axis] = split
            return found

        for _ in range(8):
            feh, feh_log_w, tau, _ = self._nodes(stars, edges)
            feh_weight = torch.exp(feh_log_w)
            refined = {}
            for axis in axes:
                if axis == "tau":  # τ cells from a few [Fe/H] nodes
                    pick = torch.linspace(0, feh.shape[1] - 1, min(4, feh.shape[1])).round().long()
                    mean, width = self._moments(stars, feh[:, pick], tau[:, pick])
                    refined |= splits(mean, width, feh_weight[:, pick], "tau")
                else:  # [Fe/H] cells from a few τ nodes
                    pick = torch.linspace(0, tau.shape[2] - 1, min(4, tau.shape[2])).round().long()
                    mean, width = self._moments(stars, feh, tau[:, :, pick])
                    refined |= splits(mean, width, feh_weight, "feh")
            if not refined or too_big(edges | refined):
                break
            edges.update(refined)
        for attempt in range(3):
            feh, feh_log_w, tau, tau_log_w = self._nodes(stars, edges)
            mean, width = self._moments(stars, feh, tau)
            refined = splits(mean, width, torch.exp(feh_log_w))
            if not refined:
                break
            if attempt == 2 or too_big(edges | refined):
                warnings.warn("the [Fe/H]/τ quadrature reached its size limit before every pair of neighbouring "
                              f"nodes was within {max_step} widths in ℓ; the likelihood may ripple in σ",
                              RuntimeWarning, stacklevel=4)
                break
            edges.update(refined)
        return edges, (feh_log_w, tau_log_w, mean, width)

    def _build_nodes(self) -> None:
        """Quadrature nodes for groups of stars with similar luminosity errors (each group's error sets how
        fine its cells must be, so one very precise star does not refine everyone's grid)."""
        group = torch.floor(torch.log2(self._r / self._r.min())).long().clamp(max=4)
        self._groups = []
        for g in torch.unique(group).tolist():
            stars = torch.nonzero(group == g)[:, 0]
            edges, (feh_log_w, tau_log_w, mean, width) = self._quadrature(stars)
            self._groups.append({"stars": stars, "mean": mean.reshape(len(stars), -1),
                                 "width": width.reshape(len(stars), -1),
                                 "log_w": (feh_log_w[:, :, None] + tau_log_w).reshape(len(stars), -1),
                                 "cells": {axis: len(e) - 1 for axis, e in edges.items()}})
        self.n_cells = [grp["cells"] for grp in self._groups]
        self.n_nodes = sum(grp["mean"].numel() for grp in self._groups)

    # ------------------------------------------------------------------ the ln σ table, once
    def _star_log_likelihood(self, group: dict, ln_sigma: torch.Tensor, rows: slice) -> torch.Tensor:
        """log p(L̂_i | M̂_i, Ẑ_i, σ) for a group's stars ``rows`` at every ln σ: (n_rows, len(ln_sigma))."""
        ln_l = self._ln_l[group["stars"][rows]]
        x = ln_l[:, None, None] - ln_sigma[None, None, :] - group["mean"][rows, :, None]  # (n, K, G)
        width = group["width"][rows, :, None]
        terms = group["log_w"][rows, :, None] - 0.5 * (x / width) ** 2 - torch.log(width)
        return torch.logsumexp(terms, dim=1) - _LN_SQRT_2PI - ln_l[:, None]

    def _tabulate(self, low: float, high: float) -> None:
        spacing = min(float(group["width"].min()) for group in self._groups) / 4
        n_points = min(_MAX_SIGMA_POINTS, max(65, math.ceil((math.log(high) - math.log(low)) / spacing) + 1))
        self.ln_sigma = torch.linspace(math.log(low), math.log(high), n_points, dtype=torch.float64)
        self.table = torch.empty((self.n_objects, n_points), dtype=torch.float64)  # (N, G)
        for group in self._groups:
            step = max(1, self.max_elements // (group["mean"].shape[1] * n_points))
            for start in range(0, len(group["stars"]), step):
                rows = slice(start, start + step)
                self.table[group["stars"][rows]] = self._star_log_likelihood(group, self.ln_sigma, rows)
        x = self.ln_sigma.numpy()
        self._total_spline = CubicSpline(x, self.table.sum(dim=0).numpy())
        self._star_spline = CubicSpline(x, self.table.T.numpy())

    # ------------------------------------------------------------------ per σ
    def _ln_sigma(self, theta) -> np.ndarray:
        theta = self.hyperprior.as_batch(theta)
        sigma = theta[:, 0]
        if not (sigma > 0).all():
            raise ValueError("sigma must be positive")
        return torch.log(sigma).numpy()

    def object_log_likelihood(self, theta) -> torch.Tensor:
        """log p(L̂_i | M̂_i, Ẑ_i, σ) per star, (m, N), from the table (σ inside the prior range)."""
        return torch.as_tensor(self._star_spline(self._ln_sigma(theta)))

    def log_prob(self, theta) -> torch.Tensor:
        """log π(σ) + Σ_i log p(L̂_i | M̂_i, Ẑ_i, σ), (m,); -inf outside the prior."""
        return self.hyperprior.log_posterior(
            theta, lambda inside: torch.as_tensor(self._total_spline(self._ln_sigma(inside))))

    def grid_posterior(self, n_points: int = 20001) -> tuple[u.Quantity, np.ndarray]:
        """The 1-D posterior without sampling: σ on a fine grid and its normalised density (per W m⁻² K⁻⁴).

        ``n_points`` (at least 2) grid points span the tabulated prior range, evenly in ln σ.

        Examples
        --------
        >>> import numpy as np
        >>> from astrobayes.stars.emulator import exact_stellar_delta_map
        >>> from astrobayes.stars.simulate import default_population
        >>> from astrobayes.inference.priors import LogUniform
        >>> model = MeasuredMassModel(JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]), default_population(),
        ...                           [0.7], [0.05], [1.0], [0.01], [0.0], [0.1], exact_stellar_delta_map(),
        ...                           (-0.3, 1.3), (-1.0, 0.15))
        >>> sigma, density = model.grid_posterior()
        >>> round(float(np.trapezoid(density, sigma.value)), 6)
        1.0
        """
        if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 2:
            raise ValueError(f"n_points must be an integer of at least 2 (a density on a grid needs two points to "
                             f"normalise), got {n_points!r}")
        sigma = torch.exp(torch.linspace(float(self.ln_sigma[0]), float(self.ln_sigma[-1]), int(n_points),
                                         dtype=torch.float64))
        log_post = self.log_prob(sigma[:, None]).numpy()
        density = np.exp(log_post - log_post.max())
        density /= np.trapezoid(density, sigma.numpy())
        return sigma.numpy() * SIGMA_UNIT, density

    def sample(self, *, n_walkers: int | None = None, n_steps: int = 3000, seed: int | None = 0,
               progress: bool | None = None) -> MCMCResult:
        """Sample σ with emcee (:func:`~astrobayes.inference.sampling.run_emcee`) on the tabulated posterior.

        Warns when the posterior reaches an end of the σ prior (its density there above 1e-3 of its peak):
        the stars are then far from the model, or the prior too narrow.
        """
        result = run_emcee(self.log_prob, self.hyperprior, n_walkers=n_walkers, n_steps=n_steps, seed=seed,
                           progress=progress)
        total = self.table.sum(dim=0)
        if float(torch.maximum(total[0], total[-1]) - total.max()) > math.log(1e-3):
            low, high = torch.exp(self.ln_sigma[[0, -1]]).tolist()
            warnings.warn(f"the σ posterior reaches the end of its prior [{low:.3g}, {high:.3g}] W m⁻² K⁻⁴: the "
                          "stars are far from the model (check the map and predictive_check) or the prior is too "
                          "narrow", RuntimeWarning, stacklevel=2)
        result.meta.update(method="measured_mass", n_objects=self.n_objects, tau_latent=self.has_tau,
                           tau_prior=self.tau_prior if self.has_tau else None, n_cells=self.n_cells,
                           sigma_grid_points=len(self.ln_sigma), n_dropped=len(self.dropped),
                           dropped=dict(self.dropped), unused_columns=list(self.unused_columns))
        return result

    # ------------------------------------------------------------------ posterior predictive check
    def predictive_check(self, sigma, *, alpha: float = 0.01, max_draws: int = 400, seed: int = 0) -> QTable:
        """Per-star posterior predictive check of the luminosity.

        For each star, the predictive distribution of a repeated measurement
        ln L̂_rep given its measured mass and [Fe/H] (a mixture over the
        quadrature nodes, each a Gaussian of width √(r² + Var ℓ)), averaged over
        posterior draws of σ, is compared with the measured ln L̂: the p-value
        is the two-sided tail probability 2 min(P, 1 − P), P = Pr(L̂_rep > L̂).

        Parameters
        ----------
        sigma : Quantity or array
            Posterior draws of σ (W m⁻² K⁻⁴ for plain numbers), e.g. ``result.sigma``.
        alpha : float
            Stars with p < alpha are flagged; a model that explains every star
            flags about ``alpha × N`` of them by chance.
        max_draws : int
            At most this many σ draws (chosen at random with ``seed``) are averaged over.

        Returns
        -------
        QTable
            One row per star: ``name``, ``mass``, ``luminosity``, the predictive
            median and 16/84 % quantiles ``predicted_luminosity``, ``predicted_p16``,
            ``predicted_p84`` [L_sun], ``p_value`` and ``flag`` ("brighter"/"fainter"
            than the model allows, "" otherwise). ``meta`` holds alpha, the number
            flagged and the number expected by chance.

        Raises
        ------
        ValueError
            ``sigma`` in a unit other than W m⁻² K⁻⁴ (a ``UnitConversionError``),
            empty or not positive; ``alpha`` not in (0, 1); ``max_draws`` < 1.
        """
        if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
            raise ValueError(f"alpha must be a probability between 0 and 1, got {alpha!r}")
        if isinstance(max_draws, bool) or not isinstance(max_draws, (int, np.integer)) or max_draws < 1:
            raise ValueError(f"max_draws must be a positive integer, got {max_draws!r}")
        try:
            draws = np.atleast_1d(u.Quantity(sigma, SIGMA_UNIT).value).astype(np.float64)
        except u.UnitsError:
            # a UnitConversionError is a ValueError too, as the module's other unit messages are
            raise u.UnitConversionError(f"sigma has unit {sigma.unit}; it must be in W m^-2 K^-4 (draws of the "
                                        "Stefan-Boltzmann constant, e.g. result.sigma)") from None
        except (TypeError, ValueError):
            raise ValueError(f"sigma must be posterior draws of σ (a Quantity in W m^-2 K^-4 or numbers), got "
                             f"{type(sigma).__name__}") from None
        if draws.ndim != 1 or not len(draws) or not (np.isfinite(draws) & (draws > 0)).all():
            raise ValueError("sigma must be a non-empty 1-D set of positive posterior draws")
        if len(draws) > max_draws:
            draws = np.random.default_rng(seed).choice(draws, max_draws, replace=False)
        ln_sigma = torch.log(torch.as_tensor(draws))
        centre = float(torch.median(ln_sigma))
        upper = torch.empty(self.n_objects, dtype=torch.float64)
        quantiles = np.empty((self.n_objects, 3))
        for group in self._groups:
            for row, star in enumerate(group["stars"].tolist()):
                # nodes with less than 1e-12 of the star's probability change nothing here
                keep = group["log_w"][row] > math.log(1e-12)
                weights = torch.exp(group["log_w"][row, keep])
                weights = weights / weights.sum()
                mean, width = group["mean"][row, keep], group["width"][row, keep]
                # P(ln L̂_rep > ln L̂) = Σ_k w_k Φ((ln σ + m_k − ln L̂) / ρ_k), averaged over σ draws
                z = (ln_sigma[:, None] + mean - self._ln_l[star]) / width
                upper[star] = (weights * torch.special.ndtr(z)).sum(dim=1).mean()
                # predictive quantiles at the median σ: the mixture's CDF, on a grid half its narrowest width apart
                spread = mean + centre
                low, high = float((spread - 6 * width).min()), float((spread + 6 * width).max())
                n_grid = min(4001, max(101, math.ceil(2 * (high - low) / float(width.min())) + 1))
                grid = torch.linspace(low, high, n_grid, dtype=torch.float64)
                cdf = (weights[:, None] * torch.special.ndtr((grid[None] - spread[:, None]) / width[:, None])).sum(0)
                quantiles[star] = np.interp([0.5, 0.16, 0.84], cdf.numpy(), grid.numpy())
        p_value = (2 * torch.minimum(upper, 1 - upper)).clamp(0.0, 1.0).numpy()
        table = QTable()
        table["name"] = self.names
        table["mass"] = torch.exp(self._ln_mass).numpy() * u.M_sun
        table["luminosity"] = torch.exp(self._ln_l).numpy() * u.L_sun
        table["predicted_luminosity"] = np.exp(quantiles[:, 0]) * u.L_sun
        table["predicted_p16"] = np.exp(quantiles[:, 1]) * u.L_sun
        table["predicted_p84"] = np.exp(quantiles[:, 2]) * u.L_sun
        table["p_value"] = p_value
        flags = np.where(p_value < alpha, np.where(upper.numpy() < 0.5, "brighter", "fainter"), "")
        table["flag"] = flags.astype(str)
        descriptions = {
            "mass": "measured (dynamical) mass", "luminosity": "measured luminosity",
            "predicted_luminosity": "median of the posterior predictive luminosity at the median sigma",
            "predicted_p16": "16th percentile of the predictive luminosity",
            "predicted_p84": "84th percentile of the predictive luminosity",
            "p_value": "two-sided posterior predictive p-value of the measured luminosity",
            "flag": "'brighter'/'fainter': the star is brighter/fainter than the model allows at p < alpha"}
        for name, text in descriptions.items():
            table[name].info.description = text
        from astrobayes import __version__
        table.meta.update(alpha=alpha, n_flagged=int((p_value < alpha).sum()), expected_by_chance=alpha * len(p_value),
                          n_sigma_draws=len(draws), tau_latent=self.has_tau, astrobayes_version=__version__)
        return table

    def __repr__(self) -> str:
        return (f"MeasuredMassModel(stars={self.n_objects}, tau_latent={self.has_tau}, "
                f"nodes={self.n_nodes}, sigma grid={len(self.ln_sigma)})")
