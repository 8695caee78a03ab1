"""The five training recipes: what each domain simulates (or reads), trains, checks on held-out data and saves.

Each recipe returns a :class:`Trained`: a function that writes the model,
the held-out metrics, the training history and the number of training
examples. Held-out data always come from random streams of their own,
derived from the command's ``--seed``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import ConfigError, Section

__all__ = ["DOMAINS", "SUMMARIES", "Context", "Trained", "Recipe", "recipe"]

#: the domains ``astrobayes train`` knows, in the order of the package's adapters
DOMAINS = ("supernovae", "clusters", "galaxies", "shear", "stars")
#: domain → (one line, a paragraph): the help of ``astrobayes train DOMAIN``, readable without importing torch
SUMMARIES = {
    "supernovae": ("classify supernova lightcurves (Ia or not) with a recurrent network",
        "Train the bidirectional recurrent classifier of astrobayes.supernovae on the SNPhotCC DES "
        "lightcurves shipped in catalogs/supernovae/ (or on simulated ones), calibrate its probabilities "
        "by temperature scaling, and report accuracy, AUC, purity and efficiency on held-out objects."),
    "clusters": ("dynamical masses of galaxy clusters from their member galaxies",
        "Simulate clusters with known masses (flat in log M) and the galaxies a spectroscopic survey "
        "measured in their cylinders (a number of redshifts independent of the mass), reject interlopers "
        "as on real data, train a network for p(log10 M200c | members), and report the bias, "
        "scatter and 68 % coverage of the masses of held-out clusters (posteriors under the training prior)."),
    "galaxies": ("Sérsic structural parameters of galaxy stamps by neural posterior estimation",
        "Simulate PSF-convolved Sérsic galaxies with noise for one observing set-up, train an "
        "amortized posterior (CNN embedding + spline flow) for the seven structural parameters, and "
        "report the 68 % / 95 % coverage on held-out stamps."),
    "shear": ("Ω_m and σ₈ (and S₈) from cosmic-shear convergence maps",
        "Simulate noisy log-normal convergence maps on a HEALPix footprint over the prior, summarise "
        "them (band powers, + peaks and Minkowski functionals, or the maps themselves through a "
        "HEALPix graph network), train a neural posterior, and report the coverage on held-out maps."),
    "stars": ("the emulated stellar map (log M, [Fe/H]) → (log R, log Teff) for hierarchical models",
        "Train the network that replaces the Tout et al. (1996) ZAMS fits inside the Stefan–Boltzmann "
        "hierarchical model, and report its relative errors on a grid against the exact fits."),
}


@dataclass
class Context:
    """What the command line sets: seed, device, progress bars and where messages go."""

    seed: int = 0
    device: str = "auto"
    progress: bool | None = None
    log: Callable[[str], None] = print

    def seeds(self, k: int) -> list[int]:
        """``k`` independent integer seeds derived from ``seed`` (simulations, held-out data, ...)."""
        return [int(s) for s in np.random.SeedSequence(self.seed).generate_state(k)]


@dataclass
class Trained:
    """A trained domain model and what its recipe measured."""

    save: Callable[[object], None]
    metrics: dict
    history: object = None
    n_train: int = 0
    notes: list = field(default_factory=list)


@dataclass(frozen=True)
class Recipe:
    """How ``astrobayes train DOMAIN`` builds a model."""

    domain: str
    summary: str
    description: str
    sections: list
    run: Callable
    folder: bool = False
    usage: str = ""
    #: checks a resolved configuration before any work (choices, counts); raises ConfigError
    check: Callable | None = None


def _band(n: int, level: float) -> list[float]:
    """Where the coverage of n calibrated intervals at ``level`` falls with 99.73 % probability (binomial 3σ)."""
    from scipy import stats

    lo, hi = stats.binom.interval(0.9973, n, level)
    return [float(lo / n), float(hi / n)]


def _coverage(truth: np.ndarray, draws: np.ndarray, names) -> dict:
    """Empirical coverage of the central 68 % and 95 % intervals, per parameter, with the binomial 3σ bands."""
    from astrobayes.inference.diagnostics import expected_coverage

    result = expected_coverage(truth, draws, levels=[0.68, 0.95])
    n = result.n
    out = {"n_test": n}
    for level, row in zip((68, 95), result.coverage):
        out[f"coverage_{level}_band"] = _band(n, level / 100)
        for name, value in zip(names, row):
            out[f"coverage_{level}_{name}"] = float(value)
    return out


# ------------------------------------------------------------------ checks before any work
def _choice(config: dict, section: str, key: str, choices, optional: bool = False) -> None:
    value = config[section].get(key)
    if (value is None and optional) or value in choices:
        return
    raise ConfigError(f"[{section}] {key} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _at_least(config: dict, section: str, key: str, minimum: int, optional: bool = False) -> None:
    value = config[section].get(key)
    if (value is None and optional) or (isinstance(value, int) and value >= minimum):
        return
    raise ConfigError(f"[{section}] {key} must be an integer ≥ {minimum}, got {value!r}")


def _training_loop(config: dict, section: str) -> None:
    """The training-loop keys a file set, checked by :class:`~astrobayes.estimators.TrainingConfig` itself."""
    import dataclasses

    from astrobayes.estimators.training import TrainingConfig

    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    given = {k: v for k, v in config[section].items() if k in names}
    try:
        TrainingConfig(**given)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[{section}] {err}") from None


def _check_network(section: str, build: Callable[[], object]) -> None:
    """Build a section's network templates with small stand-in inputs, to refuse absurd sizes before any work.

    ``build`` runs under :func:`~astrobayes.core.limits.network_size_guard`; the networks the recipe trains
    later are at least this large, so a width that would need terabytes is a ConfigError now, not a failed
    allocation after the simulations.
    """
    from astrobayes.core.limits import network_size_guard

    try:
        with network_size_guard("the configured network"):
            build()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[{section}] {err}") from None


def _stand_in(estimator, y_dim: int, x_shape) -> None:
    """Build ``estimator``'s network for inputs of per-object shape ``x_shape`` and ``y_dim`` targets."""
    estimator.dims = {"x_shape": list(x_shape), "x_features": int(x_shape[0]), "x_masked": False, "y_dim": y_dim,
                      "n_classes": y_dim}
    estimator._build()


def _check_supernovae(config: dict) -> None:
    from astrobayes.supernovae import ESTIMATORS, TASKS

    _choice(config, "data", "source", ("spcc", "simulate"))
    fraction = config["data"]["test_fraction"]
    if not 0 < fraction < 1:
        raise ConfigError(f"[data] test_fraction must be between 0 and 1, got {fraction}")
    _at_least(config, "data", "max_objects", 4, optional=True)
    _at_least(config, "simulate", "n", 4)
    _choice(config, "train", "task", tuple(TASKS))
    _choice(config, "train", "estimator", ESTIMATORS)
    _choice(config, "train", "cell", ("lstm", "gru"))
    _at_least(config, "train", "epochs", 1)
    _at_least(config, "train", "hidden_size", 1)
    _at_least(config, "train", "num_layers", 1)

    def networks():
        from astrobayes.estimators import Classifier, RNNEmbedding

        train = config["train"]
        embedding = RNNEmbedding(in_channels=1, output_dim=2 * train["hidden_size"], hidden_size=train["hidden_size"],
                                 cell=train["cell"], bidirectional=train["bidirectional"], num_layers=train["num_layers"])
        Classifier(hidden=tuple(train["head"]), n_classes=2, embedding=embedding)

    _check_network("train", networks)


def _check_clusters(config: dict) -> None:
    from astrobayes.clusters import ESTIMATORS, INPUTS, REJECTION_METHODS, SAMPLINGS

    _at_least(config, "simulate", "n_clusters", 10)
    _at_least(config, "test", "n_clusters", 10)
    _choice(config, "simulate", "sampling", SAMPLINGS)
    _choice(config, "train", "interloper_rejection", REJECTION_METHODS)
    _choice(config, "train", "estimator", ESTIMATORS)
    _choice(config, "train", "inputs", INPUTS, optional=True)
    _at_least(config, "train", "epochs", 1)
    _at_least(config, "train", "n_components", 1)

    def networks():
        from astrobayes.clusters.model import _estimator
        from astrobayes.estimators import DeepEnsemble, MCDropout

        train = config["train"]
        template = _estimator(train["estimator"], train["inputs"] or "features", tuple(train["hidden"]),
                              train["n_components"], train["n_members"])
        _stand_in(template.estimator if isinstance(template, (DeepEnsemble, MCDropout)) else template, 1, (1,))

    _check_network("train", networks)


def _check_galaxies(config: dict) -> None:
    from astrobayes.galaxies import StampSimulator
    from astrobayes.inference.simulations import DENSITY_TYPES

    _at_least(config, "train", "n_simulations", 10)
    _at_least(config, "test", "n_stamps", 1)
    _at_least(config, "test", "n_draws", 2)
    _choice(config, "train", "density", tuple(DENSITY_TYPES))
    _training_loop(config, "train")
    try:
        simulator = StampSimulator(**config["simulator"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[simulator] {err}") from None

    def networks():
        from astrobayes.estimators import CNNEmbedding
        from astrobayes.inference import NPE

        train = config["train"]
        embedding = CNNEmbedding(1, output_dim=train["embedding_dim"], channels=(16, 32, 64), pooling="flatten",
                                 input_size=simulator.shape)
        npe = NPE(simulator.prior, density=train["density"], embedding=embedding, n_transforms=train["n_transforms"],
                  hidden_features=train["hidden_features"])  # as train_structure_posterior builds it
        _stand_in(npe.estimator, len(simulator.prior.names), (1, *simulator.shape))

    _check_network("train", networks)


def _check_shear(config: dict) -> None:
    from astrobayes.shear import ShearSurvey, shear_prior

    _choice(config, "data", "inputs", _SHEAR_INPUTS)
    _at_least(config, "data", "n_simulations", 10)
    _at_least(config, "test", "n_maps", 1)
    _at_least(config, "test", "n_draws", 2)
    _training_loop(config, "train")
    for section, build in (("survey", ShearSurvey), ("prior", shear_prior)):
        try:
            build(**config[section])
        except (TypeError, ValueError) as err:
            raise ConfigError(f"[{section}] {err}") from None


def _check_stars(config: dict) -> None:
    _at_least(config, "test", "n_grid", 2)
    _training_loop(config, "train")

    def networks():
        from astrobayes.estimators import Regressor

        _stand_in(Regressor(hidden=tuple(config["train"]["hidden"])), 2, (2,))

    _check_network("train", networks)


# ------------------------------------------------------------------ supernovae
def _supernovae(config: dict, ctx: Context) -> Trained:
    from astrobayes.supernovae import (HOST_PHOTOZ, SPCC_CATALOG, classification_metrics, read_lightcurves,
                                       simulate_lightcurves, task_labels, train_classifier)

    data, options = config["data"], dict(config["train"])
    sim_seed, split_seed = ctx.seeds(2)
    if data["source"] == "spcc":
        ctx.log(f"reading the SNPhotCC DES lightcurves in {SPCC_CATALOG.name}")
        lcs = read_lightcurves(SPCC_CATALOG)
        default_z = HOST_PHOTOZ
    elif data["source"] == "simulate":
        ctx.log(f"simulating {config['simulate']['n']} lightcurves")
        lcs = simulate_lightcurves(**config["simulate"], seed=sim_seed)
        default_z = ("redshift", "redshift_err")
    else:
        raise ConfigError(f"[data] source must be 'spcc' (the shipped SNPhotCC subset) or 'simulate', "
                         f"got {data['source']!r}")
    if options.get("redshift_columns") is None:
        options["redshift_columns"] = default_z
    rng = np.random.default_rng(split_seed)
    order = rng.permutation(len(lcs))
    if data["max_objects"] is not None:
        order = order[:int(data["max_objects"])]
    n_test = max(1, int(round(data["test_fraction"] * len(order))))
    test, train = lcs.select(np.sort(order[:n_test])), lcs.select(np.sort(order[n_test:]))
    ctx.log(f"training on {len(train)} objects, testing on {len(test)}")
    model = train_classifier(train, **options, seed=ctx.seed, device=ctx.device, progress=ctx.progress)
    labels = task_labels(test, model.task)
    probs = model.predict_proba(test)
    scores = classification_metrics(probs, labels, tuple(model.class_names))
    metrics = {"n_test": len(test), **{k: float(v) for k, v in scores.items() if k != "n"},
               "temperature": float(model.temperature)}
    return Trained(lambda path: model.save(path, overwrite=True), metrics,
                   getattr(model.estimator, "history", None), len(train))


# ------------------------------------------------------------------ clusters
def _clusters(config: dict, ctx: Context) -> Trained:
    from astrobayes.clusters import estimate_mass, match_clusters, simulate_clusters, train_mass_model

    sim_seed, test_seed = ctx.seeds(2)
    simulate = config["simulate"]
    ctx.log(f"simulating {simulate['n_clusters']} clusters and their members")
    members, truth = simulate_clusters(**simulate, seed=sim_seed)
    model = train_mass_model(members, truth, **config["train"], seed=ctx.seed, device=ctx.device,
                             progress=ctx.progress)
    n_test = config["test"]["n_clusters"]
    ctx.log(f"checking on {n_test} held-out clusters")
    test_members, test_truth = simulate_clusters(**{**simulate, "n_clusters": n_test}, seed=test_seed)
    masses = estimate_mass(test_members, model, prior="training")
    log_m = match_clusters(masses, test_truth, "log_mass")
    median = np.asarray(masses["log_mass_median"], dtype=float)
    lo, hi = (np.asarray(masses[c], dtype=float) for c in ("log_mass_p16", "log_mass_p84"))
    ok = np.isfinite(median)
    residual = median[ok] - log_m[ok]
    inside = (log_m[ok] >= lo[ok]) & (log_m[ok] <= hi[ok])
    metrics = {"n_test": int(ok.sum()), "n_without_estimate": int((~ok).sum()),
               "median_bias_dex": float(np.median(residual)), "scatter_dex": float(np.std(residual)),
               "coverage_68": float(inside.mean()), "coverage_68_band": _band(int(ok.sum()), 0.68)}
    return Trained(model.save, metrics, getattr(model.estimator, "history", None),
                   int(model.settings.get("n_train", 0)))


# ------------------------------------------------------------------ galaxies
def _galaxies(config: dict, ctx: Context) -> Trained:
    from astrobayes.galaxies import PARAMETERS, StampSimulator, train_structure_posterior

    simulator = StampSimulator(**config["simulator"])
    options = dict(config["train"])
    n_sims = options.pop("n_simulations")
    sim_seed, test_seed, draw_seed = ctx.seeds(3)
    ctx.log(f"simulating {n_sims} stamps of {simulator.shape} pixels and training the NPE")
    posterior = train_structure_posterior(simulator, n_sims, seed=sim_seed, device=ctx.device,
                                          progress=ctx.progress, **options)
    n_test, n_draws = config["test"]["n_stamps"], config["test"]["n_draws"]
    theta = simulator.prior.sample((n_test,), seed=test_seed).numpy()
    stamps = simulator(theta, np.random.default_rng(test_seed))
    draws = posterior.sample(stamps, n_draws, seed=draw_seed)
    return Trained(posterior.save, _coverage(theta, draws, PARAMETERS),
                   getattr(posterior.posterior.estimator, "history", None), n_sims)


# ------------------------------------------------------------------ shear
_SHEAR_INPUTS = ("band_powers", "summaries", "maps")


def _shear(config: dict, ctx: Context) -> Trained:
    from astrobayes.shear import ShearSurvey, s8, shear_prior, train_shear_posterior

    survey = ShearSurvey(**config["survey"])
    prior = shear_prior(**config["prior"])
    data = config["data"]
    theta_seed, map_seed, test_theta_seed, test_map_seed, draw_seed = ctx.seeds(5)

    def simulate(n, theta_seed, map_seed):
        theta = prior.sample((n,), seed=theta_seed).numpy()
        maps = survey.maps(theta, seed=map_seed, progress=bool(ctx.progress))
        x = {"band_powers": survey.band_powers, "summaries": survey.summaries,
             "maps": survey.nest_maps}[data["inputs"]](maps)
        return theta, x

    ctx.log(f"simulating {data['n_simulations']} κ maps on {survey!r}")
    theta, x = simulate(data["n_simulations"], theta_seed, map_seed)
    maps_input = data["inputs"] == "maps"
    posterior = train_shear_posterior(theta, x, prior, nside=survey.nside if maps_input else None,
                                      mask=survey.mask if maps_input else None, seed=ctx.seed,
                                      device=ctx.device, progress=ctx.progress, **config["train"])
    n_test = config["test"]["n_maps"]
    ctx.log(f"checking on {n_test} held-out maps")
    theta_t, x_t = simulate(n_test, test_theta_seed, test_map_seed)
    draws = posterior.sample(config["test"]["n_draws"], x_t, seed=draw_seed)
    truth = np.column_stack([theta_t, s8(theta_t)])
    draws = np.concatenate([draws, s8(draws)[..., None]], axis=-1)
    metrics = _coverage(truth, draws, ["omega_m", "sigma8", "S8"])
    metrics["sigma_S8_median"] = float(np.median(np.std(draws[..., 2], axis=1)))
    notes = [f"inputs: {data['inputs']}; band-power edges (ℓ): {np.asarray(survey.edges).tolist()}"]
    return Trained(posterior.save, metrics, getattr(posterior.estimator, "history", None), len(theta), notes)


# ------------------------------------------------------------------ stars
def _stars(config: dict, ctx: Context) -> Trained:
    from astrobayes.stars import save_stellar_map, stellar_map_errors, train_stellar_map

    options = dict(config["train"])
    kind = "evolving main-sequence" if options.get("model") == "evolving" else "ZAMS"
    ctx.log(f"training the stellar map on {options['n_train']} exact {kind} models")
    model = train_stellar_map(**options, seed=ctx.seed, device=ctx.device, progress=ctx.progress)
    errors = stellar_map_errors(model, n_grid=config["test"]["n_grid"])
    metrics = {"n_grid_points": len(errors),
               **{f"rel_error_{k}": float(v) for k, v in _flatten(errors.meta["summary"]).items()}}
    return Trained(lambda path: save_stellar_map(model, path), metrics, getattr(model, "history", None),
                   options["n_train"])


def _flatten(summary, prefix="") -> dict:
    out = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


@functools.lru_cache(maxsize=None)
def _recipes() -> dict:
    from astrobayes.clusters import simulate_clusters, train_mass_model
    from astrobayes.clusters.model import DEFAULT_TRAINING_CLUSTERS
    from astrobayes.galaxies import StampSimulator, train_structure_posterior
    from astrobayes.shear import ShearSurvey, shear_prior
    from astrobayes.supernovae import simulate_lightcurves, train_classifier
    from astrobayes.stars import train_stellar_map

    return {r.domain: r for r in [
        Recipe("supernovae", *SUMMARIES["supernovae"],
               [Section("data", "where the labelled lightcurves come from", own={
                   "source": ("spcc", "'spcc': the shipped SNPhotCC subset; 'simulate': the [simulate] table"),
                   "test_fraction": (0.5, "objects held out for the metrics"),
                   "max_objects": (None, "use a random subset of this many objects", int | None)}),
                Section("simulate", "simulated lightcurves (source = 'simulate')", simulate_lightcurves,
                        defaults={"n": 2000}),
                Section("train", "the classifier and its training", train_classifier, skip=("lightcurves",),
                        defaults={"redshift_columns": None})],
               _supernovae, folder=True, check=_check_supernovae,
               usage="astrobayes.supernovae.load_classifier(PATH); classify(read_lightcurves(FILE), model)"),
        Recipe("clusters", *SUMMARIES["clusters"],
               [Section("simulate", "the training clusters", simulate_clusters,
                        defaults={"n_clusters": DEFAULT_TRAINING_CLUSTERS},
                        skip=("log_mass",)),
                Section("train", "the mass network and its training", train_mass_model,
                        skip=("members", "truth")),
                Section("test", "held-out clusters (same simulation settings)", own={
                    "n_clusters": (2000, "number of held-out clusters")})],
               _clusters, check=_check_clusters, usage="astrobayes.clusters.load_mass_model(PATH); estimate_mass(members, model)"),
        Recipe("galaxies", *SUMMARIES["galaxies"],
               [Section("simulator", "the observing set-up: stamp shape, PSF, noise", StampSimulator),
                Section("train", "simulations, network and training", train_structure_posterior,
                        skip=("simulator",), training=True, defaults={"n_simulations": 20000, "epochs": 50}),
                Section("test", "held-out stamps", own={"n_stamps": (500, "number of held-out stamps"),
                                                        "n_draws": (500, "posterior draws per stamp")})],
               _galaxies, check=_check_galaxies, usage="astrobayes.galaxies.StructurePosterior.load(PATH).summary(read_stamps(FILE))"),
        Recipe("shear", *SUMMARIES["shear"],
               [Section("survey", "the footprint, noise and binning", ShearSurvey, skip=("mask",),
                        defaults={"nside": 32}),
                Section("prior", "uniform prior ranges", shear_prior),
                Section("data", "training simulations", own={
                    "n_simulations": (5000, "simulated maps for training"),
                    "inputs": ("band_powers", "'band_powers', 'summaries' (+ peaks, Minkowski) or 'maps'")}),
                Section("train", "the training loop", training=True),
                Section("test", "held-out maps", own={"n_maps": (200, "number of held-out maps"),
                                                      "n_draws": (1000, "posterior draws per map")})],
               _shear, check=_check_shear, usage="astrobayes apply PATH bandpowers.ecsv out.ecsv --columns ... "
                             "(band-power inputs), or astrobayes.inference.Posterior.load(PATH)"),
        Recipe("stars", *SUMMARIES["stars"],
               [Section("train", "training stars, network and training", train_stellar_map, training=True),
                Section("test", "the error grid", own={"n_grid": (64, "grid points per axis")})],
               _stars, check=_check_stars,
               usage="astrobayes apply PATH stars.ecsv out.ecsv (columns log_mass, feh[, tau]), "
                     "or astrobayes.stars.load_stellar_map(PATH)"),
    ]}


def recipe(domain: str) -> Recipe:
    """The :class:`Recipe` of ``domain`` (one of :data:`DOMAINS`)."""
    if domain not in DOMAINS:
        raise ConfigError(f"domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    return _recipes()[domain]
