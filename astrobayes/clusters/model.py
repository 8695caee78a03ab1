"""Dynamical cluster masses with neural networks: training, posteriors on a mass grid, and the σ–M baseline.

A :class:`ClusterMassModel` is a trained astrobayes estimator together with
what it needs to be used on a real catalog: which inputs it reads (summary
features, member sets for a DeepSet, or phase-space images for a CNN), the
mass function of the simulations it was trained on (its prior — needed to
reweight), the range of the training features (to flag clusters outside it),
and the cylinder. It also records how its training galaxies were cleaned of
interlopers and how many redshifts its richest training cluster had:
:meth:`ClusterMassModel.prepare` cleans a catalog the same way (and refuses one
cleaned another way), and — for a model trained on survey-sampled mocks, whose
count carries no mass — cuts a cluster richer than any training cluster down to a
random sub-sample rather than extrapolate. It is saved as the estimator's
safetensors + JSON plus a ``.cluster_mass.json`` sidecar; the estimator's
files hold its out-of-distribution reference (the network's summaries of the
training clusters), against which :meth:`ClusterMassModel.posteriors` scores
each cluster in the same pass as its posterior.

The posterior of a network trained on simulations drawn from a mass function
π_train is q(log M | x) ≈ p(x | M) π_train(M) / p(x). Everything downstream is
done on a grid of log₁₀M over the training range, where one dimension makes
the integrals exact: percentiles, reweighting to another prior
(:func:`~astrobayes.clusters.reweight.reweight`) and the hierarchical model
(:mod:`astrobayes.clusters.hierarchical`).

The baseline every paper compares against, a power law σ = σ_p (M/M_p)^b
fitted to the training clusters and inverted, is :class:`SigmaMassBaseline`.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import torch
from astropy.table import QTable, Table

from astrobayes.clusters.features import (_check_scales, cluster_features, feature_matrix, interloper_rejection,
                                          match_clusters, member_sets, phase_space_images)
from astrobayes.clusters.halos import MassFunction
from astrobayes.clusters.massgrid import check_grid, normalise
from astrobayes.clusters.membership import DEFAULT_REJECTION, REJECTION_METHODS, reject_interlopers
from astrobayes.clusters.simulate import DEFAULT_APERTURE, DEFAULT_V_CUT
from astrobayes.core.serialization import load
from astrobayes.core.validation import Masked
from astrobayes.estimators import (CNNEmbedding, ConditionalFlow, DeepEnsemble, DeepSetEmbedding, MCDropout,
                                   MixtureDensityNetwork, Regressor)
from astrobayes.inference.simulations import read_sidecar, write_sidecar

__all__ = ["DEFAULT_TRAINING_CLUSTERS", "ESTIMATORS", "INPUTS", "ClusterMassModel", "SigmaMassBaseline",
           "load_mass_model", "train_mass_model"]

#: estimator kinds :func:`train_mass_model` builds
ESTIMATORS = ("mdn", "regressor", "flow", "ensemble", "mc_dropout")
#: what the network reads: summary features, member sets (DeepSet), phase-space images (CNN)
INPUTS = ("features", "members", "images")

#: how many default mocks (:func:`~astrobayes.clusters.simulate.simulate_clusters`) the default model is
#: trained on: ``astrobayes train clusters`` and the benchmarks use it with :func:`train_mass_model`'s defaults
DEFAULT_TRAINING_CLUSTERS = 20000

_SIDECAR = "cluster_mass"
_GRID_POINTS = 401


def _estimator(kind: str, inputs: str, hidden, n_components: int, n_members: int):
    embedding = None
    if inputs == "members":
        embedding = DeepSetEmbedding(2, output_dim=32, hidden=(64, 64))
    elif inputs == "images":
        embedding = CNNEmbedding(1, output_dim=32, dim=2, channels=(8, 16))
    if kind == "mdn":
        return MixtureDensityNetwork(n_components=n_components, hidden=hidden, embedding=embedding)
    if kind == "regressor":
        return Regressor(hidden=hidden, embedding=embedding)
    if kind == "flow":
        # the mass function's tail puts 10^15.5 M_sun clusters ~5 standard deviations above the mean log M: the
        # splines must reach that far (outside ±tail_bound they are the identity, which cannot move density there)
        return ConditionalFlow(n_transforms=3, hidden_features=hidden[0], embedding=embedding, tail_bound=8.0,
                               n_bins=16)
    if kind == "ensemble":
        return DeepEnsemble(MixtureDensityNetwork(n_components=n_components, hidden=hidden, embedding=embedding),
                            n_members=n_members)
    if kind == "mc_dropout":
        return MCDropout(Regressor(hidden=hidden, heteroscedastic=True, dropout=0.1, embedding=embedding),
                         n_passes=50)
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got {kind!r}")


@dataclass
class ClusterMassModel:
    """A trained mass estimator with its inputs, training prior and domain (see the module docstring).

    Use :func:`train_mass_model` to make one and :func:`load_mass_model` to read one.
    """

    estimator: object
    kind: str
    inputs: str
    training_prior: MassFunction
    feature_range: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    # ------------------------------------------------------------ inputs
    def select(self, members: QTable) -> QTable:
        """The galaxies inside the cylinder the network was trained on (R_proj ≤ aperture, |v_los| ≤ v_cut).

        The network has only seen cylinder-selected members, so a catalog with
        a wider selection must be cut the same way; a warning counts the
        galaxies left out.
        """
        if isinstance(members, Table) and not isinstance(members, QTable):
            members = QTable(members)  # a Table's unit columns become Quantities, so that the cut below applies
        radius, velocity = members["R_proj"], members["v_los"]
        if not (isinstance(radius, u.Quantity) and isinstance(velocity, u.Quantity)
                and radius.unit.is_equivalent(u.Mpc) and velocity.unit.is_equivalent(u.km / u.s)):
            return members  # cluster_features names the problem
        radius, velocity = radius.to_value(u.Mpc), velocity.to_value(u.km / u.s)
        # before the cut: m/s labelled km/s would otherwise be cut to (nearly) nothing and reported as too few members
        _check_scales(np.ma.filled(np.ma.asarray(radius, dtype=float), np.nan),
                      np.ma.filled(np.ma.asarray(velocity, dtype=float), np.nan))
        inside = (radius <= self.settings["aperture_Mpc"]) & (np.abs(velocity) <= self.settings["v_cut_km_s"])
        if not inside.all():
            warnings.warn(f"{int((~inside).sum())} of {len(members)} galaxies lie outside the cylinder the network "
                          f"was trained on (R_proj ≤ {self.settings['aperture_Mpc']:g} Mpc, |v_los| ≤ "
                          f"{self.settings['v_cut_km_s']:g} km/s) and are left out", UserWarning, stacklevel=3)
            members = members[inside]
        return members

    def clean(self, members: QTable) -> QTable:
        """The galaxies cleaned of interlopers the way the training mocks were (``settings["interloper_rejection"]``).

        A member table that records no rejection (``meta["membership"]``, written by
        :func:`~astrobayes.clusters.membership.reject_interlopers` and ``members_from_field``),
        or records ``"none"`` (the bare cylinder), is cleaned with the model's method; one
        cleaned with another method is refused: the network has never seen such inputs.
        """
        self._check_selection(getattr(members, "meta", {}) or {})
        method = self.settings.get("interloper_rejection", "none")  # models saved before issue 21: none
        done = interloper_rejection(members)
        if done == method:
            return members
        if done == "none":
            return reject_interlopers(members, method=method)
        raise ValueError(f"the members were cleaned of interlopers with {done!r}, but this model was trained on mocks "
                         f"cleaned with {method!r}: select them again with members_from_field(..., "
                         f"rejection={method!r}), or give the bare cylinder (rejection='none') and let the model "
                         "clean it")

    def _check_selection(self, meta) -> None:
        """Refuse members selected in a narrower cylinder or with another h than the training mocks.

        A wider cylinder is cut down by :meth:`select`; a narrower one, or radii computed with
        another Hubble constant, gives features the network has never seen for that mass.
        """
        trained = {"aperture_Mpc": (self.settings.get("aperture_Mpc"), "Mpc", "aperture"),
                   "v_cut_km_s": (self.settings.get("v_cut_km_s"), "km/s", "v_cut")}
        for key, (model_value, unit, argument) in trained.items():
            given = meta.get(key)
            if model_value is None or not isinstance(given, (int, float)):
                continue
            if given < model_value * (1 - 1e-6):
                raise ValueError(f"the members were selected within {key.split('_')[0]} = {given:g} {unit}, but the "
                                 f"model was trained on mocks cut at {model_value:g} {unit}: select them again with "
                                 f"members_from_field(..., {argument}={model_value:g} * u.{unit.replace('/', ' / u.')}) "
                                 "(a wider cylinder is cut to the model's)")
        cosmology = meta.get("cosmology")
        model_h = self.settings.get("h", 0.7)
        if isinstance(cosmology, dict) and isinstance(cosmology.get("h"), (int, float)) \
                and abs(cosmology["h"] - model_h) > 1e-6:
            raise ValueError(f"the members' projected radii were computed with h = {cosmology['h']:g} "
                             f"({cosmology.get('name', 'a cosmology')}), but the model's mocks use h = {model_h:g}: "
                             "select them again with members_from_field(..., cosmology=None) (the clusters "
                             "domain's COSMOLOGY)")

    def subsample(self, members: QTable) -> QTable:
        """Clusters with more galaxies than any training cluster, randomly cut down to that many (with a warning).

        Only for models trained on survey-sampled mocks (``settings["max_galaxies"]``), whose
        count carries no mass information: a random sub-sample of a cluster is distributed like
        a cluster observed with fewer redshifts, so the estimate stays inside the training domain
        at the cost of a little precision. The draw is seeded (``settings["subsample_seed"]``).
        """
        limit = self.settings.get("max_galaxies")
        if not limit or not isinstance(members, QTable) or "cluster_id" not in members.colnames:
            return members
        codes, ids = pd.factorize(np.asarray(members["cluster_id"]))
        counts = np.bincount(codes, minlength=ids.size)
        if counts.max(initial=0) <= limit:
            return members
        rng = np.random.default_rng(self.settings.get("subsample_seed", 0))
        order = np.lexsort((rng.random(codes.size), codes))
        rank = np.empty(codes.size, dtype=np.int64)
        rank[order] = np.arange(codes.size) - np.concatenate([[0], np.cumsum(counts)[:-1]])[codes[order]]
        rich = counts > limit
        warnings.warn(f"{int(rich.sum())} cluster(s) have more galaxies than any training cluster ({limit}): "
                      f"{', '.join(f'{i} ({c})' for i, c in zip(ids[rich][:5], counts[rich][:5]))}"
                      f"{', ...' if rich.sum() > 5 else ''}; each is cut to a random {limit} of them (a sub-sample "
                      "of a cluster is a cluster observed with fewer redshifts)", UserWarning, stacklevel=3)
        return members[rank < limit]

    def prepare(self, members: QTable, features: QTable | None = None):
        """(features table, network inputs, usable rows) for a member catalog made like the training inputs.

        The galaxies are cut to the training cylinder (:meth:`select`), cleaned of interlopers as the
        training mocks were (:meth:`clean`) and, for survey-trained models, clusters richer than any
        training cluster are sub-sampled (:meth:`subsample`). ``features``, when given, must come from
        ``cluster_features`` of the same members after these steps (their ``meta["interloper_rejection"]``
        is checked); they are recomputed where a cluster had to be sub-sampled.
        """
        if {"R_proj", "v_los"} <= set(getattr(members, "colnames", ())):
            members = self.select(members)
        members = self.clean(members)
        before = len(members) if hasattr(members, "__len__") else None
        members = self.subsample(members)
        if features is not None and before is not None and len(members) != before:
            features = None
        method = self.settings.get("interloper_rejection", "none")
        if features is not None and features.meta.get("interloper_rejection", "none") != method:
            raise ValueError(f"features were computed from members cleaned with "
                             f"{features.meta.get('interloper_rejection', 'none')!r}, but the model expects "
                             f"{method!r}: leave features=None, or compute them with "
                             "cluster_features(model.clean(model.select(members)))")
        if features is None:
            features = cluster_features(members, min_members=self.settings.get("min_members", 3))
        usable = features["flags"] == ""
        aperture = self.settings["aperture_Mpc"] * u.Mpc
        v_cut = self.settings["v_cut_km_s"] * u.km / u.s
        if self.inputs == "features":
            x = feature_matrix(features)
        elif self.inputs == "members":
            x = member_sets(members, aperture=aperture, v_cut=v_cut, max_members=self.settings.get("max_members"))
        else:
            x = phase_space_images(members, aperture=aperture, v_cut=v_cut,
                                   shape=tuple(self.settings.get("image_shape", (24, 24))))
        return features, x, np.asarray(usable)

    def posteriors(self, members: QTable, grid=None, features: QTable | None = None, *, return_ood: bool = False):
        """(features, usable, log q(log₁₀M | x) on ``grid`` for the usable clusters) for a member catalog.

        ``usable`` marks the rows of ``features`` with enough members; the
        posterior array has one row per usable cluster, in that order. With
        ``return_ood=True`` a fourth item holds each usable cluster's OOD
        p-value (see :meth:`log_posterior_grid`).
        """
        features, x, usable = self.prepare(members, features)
        return (features, usable) + _as_tuple(self.log_posterior_grid(_take_rows(x, np.flatnonzero(usable)), grid,
                                                                      return_ood=return_ood))

    def outside_training(self, features: QTable) -> np.ndarray:
        """True for clusters whose summary features fall outside the training range (extrapolation)."""
        matrix = feature_matrix(features)
        low, high = (np.asarray(v) for v in zip(*self.feature_range))
        with np.errstate(invalid="ignore"):
            return ((matrix < low) | (matrix > high)).any(axis=1)

    # ------------------------------------------------------------ densities on the grid
    def grid(self, n: int = _GRID_POINTS) -> np.ndarray:
        """The log₁₀M grid over the training range on which posteriors are evaluated."""
        return self.training_prior.grid(n)

    def log_posterior_grid(self, x, grid: np.ndarray | None = None, batch: int = 2**17, *,
                           return_ood: bool = False):
        """log q(log₁₀M | x) on ``grid`` for every cluster: (n_clusters, n_grid), normalised on the grid.

        For the MSE regressor (a point estimate) this is a Gaussian with the
        residual scatter of the training set — its mean is biased (see the tutorial).

        With ``return_ood=True`` the result is ``(log_q, ood_p_value)``: each
        cluster's conformal p-value that the network's summary of it is like
        those of the training clusters, from the context vectors of this same
        pass (:meth:`~astrobayes.estimators.Estimator.recording_context`); NaN
        when the estimator has no reference (``estimator.ood_note`` says why).
        """
        grid = self.grid() if grid is None else check_grid(grid)
        n = x.values.shape[0] if isinstance(x, Masked) else len(x)
        # the network sees each cluster once per grid point, in a row (MC dropout: once per pass, pass by pass)
        every = 1 if self.kind == "mc_dropout" else grid.size
        recording = (self.estimator.recording_context(every=every, limit=n) if return_ood and n
                     and self.estimator.ood is not None else contextlib.nullcontext())
        with recording as recorded:
            log_q = self._log_q_grid(x, grid, n, batch)
        if not return_ood:
            return log_q
        return log_q, (recorded.p_value() if recorded is not None else np.full(n, np.nan))

    def _log_q_grid(self, x, grid: np.ndarray, n: int, batch: int) -> np.ndarray:
        if self.kind == "mc_dropout":
            return normalise(self._dropout_log_q(x, grid), grid)
        out = np.empty((n, grid.size))
        per_batch = max(1, batch // grid.size)
        y = torch.as_tensor(grid, dtype=torch.float32)[:, None]
        for start in range(0, n, per_batch):
            stop = min(n, start + per_batch)
            if isinstance(x, Masked):
                rows = Masked(x.values[start:stop].repeat_interleave(grid.size, 0),
                              x.mask[start:stop].repeat_interleave(grid.size, 0))
            else:
                rows = torch.as_tensor(np.asarray(x[start:stop]), dtype=torch.float32).repeat_interleave(grid.size, 0)
            with torch.no_grad():
                log_q = self.estimator.log_prob(y.repeat(stop - start, 1), rows)
            out[start:stop] = torch.as_tensor(log_q).double().reshape(stop - start, grid.size).numpy()
        return normalise(out, grid)

    def _dropout_log_q(self, x, grid: np.ndarray) -> np.ndarray:
        """MC dropout: T passes per cluster (not per grid point), then the T-Gaussian mixture on the grid.

        Repeating a cluster once per grid point would give every grid point its
        own dropout masks, i.e. a jagged density; here each cluster's T (mean, σ)
        pairs are drawn once, with the estimator's fixed seed.
        """
        inputs = self.estimator._checked(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        with torch.no_grad():
            means, stds = self.estimator._predictions(inputs)        # (T, n, 1) each, in log10 M
        means = means[..., 0].double().cpu().numpy()[..., None]
        stds = stds[..., 0].double().cpu().numpy()[..., None]
        log_normal = -0.5 * ((grid - means) / stds) ** 2 - np.log(stds) - 0.5 * np.log(2 * np.pi)
        peak = log_normal.max(axis=0)
        return peak + np.log(np.exp(log_normal - peak).mean(axis=0))

    # ------------------------------------------------------------ files
    def save(self, path) -> None:
        """The estimator's safetensors + JSON, and ``path.cluster_mass.json`` with inputs, prior and domain."""
        self.estimator.save(path)
        write_sidecar(path, _SIDECAR, {"kind": self.kind, "inputs": self.inputs,
                                       "training_prior": self.training_prior.to_dict(),
                                       "feature_range": self.feature_range, "settings": self.settings})


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _take_rows(x, rows: np.ndarray):
    """Rows of network inputs: an array, or a ``Masked`` set."""
    if isinstance(x, Masked):
        index = torch.as_tensor(rows)
        return Masked(x.values[index], x.mask[index])
    return x[rows]


def load_mass_model(path) -> ClusterMassModel:
    """Load a model written by :meth:`ClusterMassModel.save` (never unpickles anything).

    Examples
    --------
    >>> import os, tempfile
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(300, seed=0)
    >>> model = train_mass_model(members, truth, epochs=1, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "cluster_mdn")
    >>> model.save(path)                      # cluster_mdn.safetensors, .json and .cluster_mass.json
    >>> load_mass_model(path).training_prior == model.training_prior
    True
    """
    try:
        meta = read_sidecar(path, _SIDECAR)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the cluster-mass description ({_SIDECAR}.json beside the model) is "
                                "missing; was this saved with ClusterMassModel.save?") from None
    prior = meta["training_prior"]
    prior["log_mass_range"] = tuple(prior["log_mass_range"])
    return ClusterMassModel(load(path), meta["kind"], meta["inputs"], MassFunction(**prior),
                            [tuple(r) for r in meta["feature_range"]], meta["settings"])


def _training_prior(truth: QTable, training_prior) -> MassFunction:
    if training_prior is not None:
        if not isinstance(training_prior, MassFunction):
            raise TypeError(f"training_prior must be a MassFunction, got {type(training_prior).__name__}")
        return training_prior
    spec = truth.meta.get("simulation", {}).get("mass_function")
    if not isinstance(spec, dict):
        raise ValueError("training_prior is needed: the clusters' masses were not drawn by simulate_clusters from a "
                         "MassFunction, so pass the mass function (the prior) they were drawn from")
    spec = dict(spec, log_mass_range=tuple(spec["log_mass_range"]))
    return MassFunction(**spec)


def train_mass_model(members: QTable, truth: QTable, *, estimator: str = "mdn", inputs: str | None = None,
                     training_prior: MassFunction | None = None, hidden=(64, 64), n_components: int = 4,
                     n_members: int = 5, epochs: int = 100, batch_size: int = 512, learning_rate: float = 1e-3,
                     max_members: int | None = None, image_shape=(24, 24),
                     interloper_rejection: str = DEFAULT_REJECTION, seed: int | None = 0,
                     progress: bool | None = None, device: str = "auto") -> ClusterMassModel:
    """Train a network that predicts log₁₀M200c from a cluster's member galaxies.

    Parameters
    ----------
    members, truth : QTable
        Training simulations, e.g. from :func:`~astrobayes.clusters.simulate.simulate_clusters`;
        ``truth`` needs ``cluster_id`` and ``log_mass``.
    estimator : {"mdn", "regressor", "flow", "ensemble", "mc_dropout"}
        ``"mdn"`` (recommended): a Gaussian mixture for p(log M | x);
        ``"regressor"``: MSE, which predicts the posterior *mean* (biased at
        the ends of the mass range); ``"flow"``: a conditional spline flow;
        ``"ensemble"``: ``n_members`` MDNs; ``"mc_dropout"``: a heteroscedastic
        regressor with dropout kept on at prediction.
    inputs : {"features", "members", "images"}
        Summary features (:data:`~astrobayes.clusters.features.FEATURE_NAMES`),
        the member set through a DeepSet, or the phase-space image through a CNN.
        Default: ``"members"`` for the flow, ``"features"`` otherwise.
    training_prior : MassFunction, optional
        The distribution the training masses were drawn from; read from
        ``truth.meta`` when the clusters come from ``simulate_clusters``.
    hidden, n_components, n_members : network sizes.
    epochs, batch_size, learning_rate, seed, progress, device :
        Passed to the training loop (``device="auto"``: CUDA when present).
    max_members, image_shape :
        Sub-sampling of large sets (``inputs="members"``) and image size (``"images"``).
    interloper_rejection : {"shifting_gapper", "sigma_clip", "none"}
        How the training galaxies are cleaned of interlopers
        (:func:`~astrobayes.clusters.membership.reject_interlopers`) before their
        features are taken; recorded, and applied the same way to every catalog
        the model is used on (:meth:`ClusterMassModel.clean`). Default:
        :data:`~astrobayes.clusters.membership.DEFAULT_REJECTION`, the one
        :func:`~astrobayes.clusters.membership.members_from_field` applies to real clusters.

    Returns
    -------
    ClusterMassModel

    Examples
    --------
    >>> from astrobayes.clusters import simulate_clusters
    >>> members, truth = simulate_clusters(400, seed=0)
    >>> model = train_mass_model(members, truth, epochs=2, progress=False)
    >>> model.kind, model.inputs, model.training_prior.kind
    ('mdn', 'features', 'flat')
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    inputs = ("members" if estimator == "flow" else "features") if inputs is None else inputs
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
    if interloper_rejection not in REJECTION_METHODS:
        raise ValueError(f"interloper_rejection must be one of {REJECTION_METHODS}, got {interloper_rejection!r}")
    for column in ("cluster_id", "log_mass"):
        if column not in truth.colnames:
            raise ValueError(f"truth has no {column!r} column; give the cluster table of simulate_clusters")
    prior = _training_prior(truth, training_prior)
    settings = {"aperture_Mpc": float(members.meta.get("simulation", {}).get("aperture_Mpc",
                                                                             DEFAULT_APERTURE.to_value(u.Mpc))),
                "v_cut_km_s": float(members.meta.get("simulation", {}).get("v_cut_km_s",
                                                                           DEFAULT_V_CUT.to_value(u.km / u.s))),
                "max_members": max_members, "image_shape": list(image_shape), "min_members": 3,
                "n_train": 0, "seed": seed, "h": float(members.meta.get("simulation", {}).get("h", 0.7)),
                "interloper_rejection": interloper_rejection,
                "sampling": members.meta.get("simulation", {}).get("sampling"), "max_galaxies": None,
                "subsample_seed": 0}
    model = ClusterMassModel(_estimator(estimator, inputs, tuple(hidden), n_components, n_members), estimator,
                             inputs, prior, [], settings)
    features, x, usable = model.prepare(members)
    log_mass = match_clusters(features, truth, "log_mass")
    missing = int((usable & ~np.isfinite(log_mass)).sum())
    if missing:
        warnings.warn(f"{missing} of {len(features)} clusters in members have no log_mass in truth (no row with "
                      "their cluster_id) and are left out of the training", UserWarning, stacklevel=2)
    usable &= np.isfinite(log_mass)
    if usable.sum() < 2:
        raise ValueError(f"only {int(usable.sum())} of {len(features)} training cluster(s) have at least "
                         f"{settings['min_members']} members with a velocity spread and a log_mass in truth; a mass "
                         "network needs many (simulate more clusters, or check that truth's cluster_id values match "
                         "the members')")
    matrix = feature_matrix(features)[usable]
    model.feature_range = [(float(lo), float(hi)) for lo, hi in zip(matrix.min(0), matrix.max(0))]
    model.settings["n_train"] = int(usable.sum())
    if model.settings["sampling"] == "survey":  # the count carries no mass: richer real clusters may be sub-sampled
        model.settings["max_galaxies"] = int(np.max(np.asarray(features["n_members"])[usable]))
    x_train = _take_rows(x, np.flatnonzero(usable))
    # the k-NN out-of-distribution score: the summary features are few, heavy-tailed and correlated (the three
    # radii move together), and a Gaussian reference misses clusters far along such a direction (members 20 times
    # too compact: 0 % flagged against 65 % for k-NN); its ~25–40 µs per cluster is small beside the mass grid's ~500–1000
    model.estimator.fit(x_train, log_mass[usable, None].astype(np.float32), epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate, seed=seed, progress=progress, device=device, ood="knn")
    return model


@dataclass
class SigmaMassBaseline:
    """The classic power law log₁₀σ = a + b (log₁₀M − pivot), fitted to training clusters and inverted.

    ``scatter`` is the rms residual in log₁₀σ; a mass is quoted as
    (log σ − a)/b + pivot with a Gaussian uncertainty scatter/b in log₁₀M.

    Examples
    --------
    >>> baseline = SigmaMassBaseline.fit(np.array([14.0, 15.0]), np.array([500.0, 1000.0]) * u.km / u.s)
    >>> round(baseline.slope, 4)
    0.301
    >>> log_mass, error = baseline.predict(np.array([707.1]) * u.km / u.s)
    >>> round(float(log_mass[0]), 3)
    14.5
    """

    intercept: float
    slope: float
    scatter: float
    pivot: float = 14.5

    @classmethod
    def fit(cls, log_mass, sigma, pivot: float = 14.5) -> SigmaMassBaseline:
        """Least squares of log₁₀σ on log₁₀M (the physical direction of the scaling relation)."""
        log_mass = np.asarray(log_mass, dtype=float)
        log_sigma = np.log10(u.Quantity(sigma, u.km / u.s).to_value(u.km / u.s))
        ok = np.isfinite(log_mass) & np.isfinite(log_sigma)
        if ok.sum() < 2:
            raise ValueError("SigmaMassBaseline.fit needs at least two clusters with a finite mass and σ")
        slope, intercept = np.polyfit(log_mass[ok] - pivot, log_sigma[ok], 1)
        residual = log_sigma[ok] - (intercept + slope * (log_mass[ok] - pivot))
        return cls(float(intercept), float(slope), float(np.sqrt(np.mean(residual**2))), pivot)

    def predict(self, sigma) -> tuple[np.ndarray, np.ndarray]:
        """(log₁₀M, its 1σ uncertainty) for velocity dispersions ``sigma`` (km/s)."""
        log_sigma = np.log10(u.Quantity(sigma, u.km / u.s).to_value(u.km / u.s))
        log_mass = self.pivot + (log_sigma - self.intercept) / self.slope
        return log_mass, np.full_like(log_mass, self.scatter / abs(self.slope))

    def to_json(self) -> str:
        """The fitted relation as JSON (``SigmaMassBaseline.from_json`` reads it back)."""
        return json.dumps({"intercept": self.intercept, "slope": self.slope, "scatter": self.scatter,
                           "pivot": self.pivot})

    @classmethod
    def from_json(cls, text: str | Path) -> SigmaMassBaseline:
        """A relation from :meth:`to_json`'s text or a file holding it."""
        return cls(**json.loads(Path(text).read_text() if isinstance(text, Path) else text))
