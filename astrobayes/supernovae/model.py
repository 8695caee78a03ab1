"""Recurrent supernova classifiers with calibrated probabilities, and :func:`classify`.

:func:`train_classifier` builds the network of Charnock & Moss (2017): stacked
(by default bidirectional) LSTM or GRU layers over the epoch sequences of
:func:`~astrobayes.supernovae.features.build_sequences`, then a small dense
head with softmax — the project's :class:`~astrobayes.estimators.Classifier`
with an :class:`~astrobayes.estimators.RNNEmbedding`. Uncertainty comes from
Monte Carlo dropout (``estimator="mc_dropout"``) or a deep ensemble
(``estimator="ensemble"``); probabilities are then calibrated by temperature
scaling (Guo et al. 2017) on objects held out from training.

The task is either ``"binary"`` (classes ``("Ia", "non-Ia")``) or
``"three"`` (``("Ia", "II", "Ibc")``, the SNPhotCC types).

The network also keeps an out-of-distribution reference: the context vectors
(recurrent summaries) of its training objects, each built once as
:func:`classify` builds an object — not the augmented copies it trained on,
which are neither one per object nor made like real inputs. :func:`classify`
reports every object's conformal ``ood_p_value`` against it from the same
network pass as the probabilities.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from astropy.table import Table

from astrobayes import __version__
from astrobayes.core.serialization import ModelFileError, read_json
from astrobayes.core.serialization import load as load_estimator
from astrobayes.estimators import Classifier, DeepEnsemble, MCDropout, RNNEmbedding
from astrobayes.estimators.metrics import apply_temperature as _apply_temperature
from astrobayes.estimators.metrics import fit_temperature
from astrobayes.estimators.ood import MIN_HELD_OUT
from astrobayes.inference.diagnostics.ood import report_ood

from .features import SequenceConfig, build_sequences
from .io import Lightcurves

__all__ = ["TASKS", "ESTIMATORS", "SupernovaClassifier", "classify", "fit_temperature", "load_classifier",
           "task_labels", "train_classifier"]

#: class names per task; label k is ``TASKS[task][k]``
TASKS = {"binary": ("Ia", "non-Ia"), "three": ("Ia", "II", "Ibc")}
ESTIMATORS = ("single", "mc_dropout", "ensemble")
_FORMAT = "astrobayes.supernovae.classifier/1"


def task_labels(lightcurves: Lightcurves, task: str) -> np.ndarray:
    """Integer labels of the objects for a task (``"binary"``: 0 = Ia, 1 = non-Ia; ``"three"``: Ia, II, Ibc).

    Raises a ValueError naming the objects whose class is unknown.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    names = np.asarray(lightcurves.labels).astype(str)
    unknown = ~np.isin(names, ("Ia", "II", "Ibc"))
    if unknown.any():
        raise ValueError(f"column 'label' of the metadata is unknown for {int(unknown.sum())} object(s) "
                         f"(e.g. {lightcurves.ids[unknown][:3].tolist()}); training and evaluation need the class "
                         "of every object (read a truth key with read_snana(..., truth=...))")
    if task == "binary":
        return (names != "Ia").astype(np.int64)
    return np.array([TASKS["three"].index(n) for n in names], dtype=np.int64)


class SupernovaClassifier:
    """A trained lightcurve classifier: the network, its preprocessing and its temperature.

    Attributes
    ----------
    estimator : Classifier, MCDropout or DeepEnsemble
    config : SequenceConfig
    task : str
    class_names : tuple of str
    temperature : float
        Applied to log(mean probability) of the members/passes; 1 = uncalibrated.
    meta : dict
        Provenance: training set size, seed, fractions, version.
    """

    def __init__(self, estimator, config: SequenceConfig, task: str, temperature: float = 1.0,
                 meta: dict | None = None):
        if task not in TASKS:
            raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
        if not isinstance(config, SequenceConfig):
            raise TypeError(f"config must be a SequenceConfig, got {type(config).__name__}")
        self.estimator = estimator
        self.config = config
        self.task = task
        self.class_names = TASKS[task]
        self.temperature = float(temperature)
        self.meta = dict(meta or {})

    def __repr__(self) -> str:
        return (f"<SupernovaClassifier {self.task} {list(self.class_names)}: {type(self.estimator).__name__}, "
                f"redshift={'yes' if self.config.use_redshift else 'no'}, T={self.temperature:.3f}>")

    def _member_probabilities(self, lightcurves: Lightcurves, sequences=None, ood: bool = False):
        """(members, n, K) probabilities, uncalibrated (one member for a single network).

        With ``ood=True`` also each object's OOD p-value (n,), from the context
        vectors of the same pass (NaN when the network has no reference).
        """
        if not isinstance(lightcurves, Lightcurves):
            raise TypeError(f"lightcurves must be a Lightcurves collection, got {type(lightcurves).__name__}")
        x = (sequences or build_sequences(lightcurves, self.config)).masked()
        n = x.values.shape[0]
        est = self.estimator
        # MC dropout runs the network once per pass: the first pass's contexts are the objects'
        recording = est.recording_context(limit=n) if ood and est.ood is not None else contextlib.nullcontext()
        with torch.no_grad(), recording as recorded:
            if isinstance(est, (DeepEnsemble, MCDropout)):
                means = est.member_predictions(x).mean
                probs = np.asarray(means.cpu() if isinstance(means, torch.Tensor) else means, dtype=float)
            else:
                probs = np.asarray(est.predict_proba(x), dtype=float)[None]
        if not ood:
            return probs
        return probs, (recorded.p_value() if recorded is not None else np.full(n, np.nan))

    def predict_proba(self, lightcurves: Lightcurves, calibrated: bool = True) -> np.ndarray:
        """Class probabilities (n, K): the mean over members/passes, temperature-scaled unless ``calibrated=False``."""
        probs = self._member_probabilities(lightcurves).mean(axis=0)
        return _apply_temperature(probs, self.temperature) if calibrated else probs

    def calibrate(self, lightcurves: Lightcurves) -> float:
        """Fit the temperature on labelled objects *not used in training*; returns and stores T."""
        probs = self.predict_proba(lightcurves, calibrated=False)
        self.temperature = fit_temperature(probs, task_labels(lightcurves, self.task))
        return self.temperature

    # ---------------------------------------------------------------- files
    def save(self, path, overwrite: bool = False) -> Path:
        """Save to a folder: ``network.safetensors`` + ``network.json`` (the estimator) and ``classifier.json``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
        path.mkdir(parents=True, exist_ok=True)
        self.estimator.save(path / "network")
        header = {"format": _FORMAT, "version": __version__, "task": self.task, "temperature": self.temperature,
                  "config": self.config.to_dict(), "meta": self.meta}
        (path / "classifier.json").write_text(json.dumps(header, indent=2))
        return path


def load_classifier(path) -> SupernovaClassifier:
    """Load a classifier saved by :meth:`SupernovaClassifier.save` (no pickle: safetensors + JSON)."""
    path = Path(path)
    header_path = path / "classifier.json"
    if not header_path.exists():
        raise ModelFileError(f"{str(path)!r} is not a saved supernova classifier (no classifier.json)")
    header = read_json(header_path, "a supernova classifier header")  # bounded: size and nesting
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise ModelFileError(f"{str(header_path)!r} has format {found!r}, expected {_FORMAT!r}")
    try:
        config = SequenceConfig.from_dict(header["config"])
        task, temperature = header["task"], float(header["temperature"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{str(header_path)!r} is damaged: {type(err).__name__}: {err}") from None
    estimator = load_estimator(path / "network")
    return SupernovaClassifier(estimator, config, task, temperature, header.get("meta"))


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    k = int(round(fraction * n))
    return np.sort(order[k:]), np.sort(order[:k])


def _every_class_trained(lightcurves: Lightcurves, labels: np.ndarray, class_names: tuple, train_rows: np.ndarray,
                         validation: np.ndarray, calibration: np.ndarray):
    """(train, validation, calibration) rows with at least one training object of every class.

    A rare class can land wholly in the held-out objects by the luck of the
    split; the network would then learn that it never occurs. One held-out
    object of each such class is moved into training, with a warning naming it.
    """
    absent = sorted(set(range(len(class_names))) - set(labels[train_rows].tolist()))
    moved = []
    for k in absent:
        held = validation if (labels[validation] == k).any() else calibration
        row = held[labels[held] == k][0]
        if held is validation:
            validation = validation[validation != row]
        else:
            calibration = calibration[calibration != row]
        train_rows = np.sort(np.append(train_rows, row))
        moved.append(f"{class_names[k]} ({lightcurves.ids[row]})")
    if moved:
        warnings.warn(f"the random split left no training object of class(es) {[class_names[k] for k in absent]}; "
                      f"one held-out object of each was moved into training: {', '.join(moved)}. A class this rare "
                      "gets unreliable probabilities: add labelled objects of it", UserWarning, stacklevel=3)
    return train_rows, validation, calibration


def _augmented(lightcurves: Lightcurves, labels: np.ndarray, config: SequenceConfig, copies: int, noise: bool,
               rng: np.random.Generator, partial_fraction: float = 0.0, partial_days: tuple = (0.0, 100.0)):
    """``copies`` randomly filled (and, with ``noise``, flux-resampled) versions of every object, stacked.

    In each copy a random ``partial_fraction`` of the objects is cut a random
    U(``partial_days``) days after its first detection.
    """
    if copies == 0:
        seq = build_sequences(lightcurves, config)
        return seq.masked(), torch.as_tensor(labels)
    parts = []
    for _ in range(copies):
        source = lightcurves
        if partial_fraction > 0:
            cut = rng.uniform(size=len(lightcurves)) < partial_fraction
            days = np.where(cut, rng.uniform(*partial_days, size=len(lightcurves)), np.inf)
            source = lightcurves.truncate(days, since="first_detection")
        parts.append(build_sequences(source, config, fill="random", noise=noise, seed=rng))
    length = max(p.values.shape[1] for p in parts)
    values = np.concatenate([np.pad(p.values, ((0, 0), (0, length - p.values.shape[1]), (0, 0))) for p in parts])
    mask = np.concatenate([np.pad(p.mask, ((0, 0), (0, length - p.mask.shape[1]))) for p in parts])
    return (type(parts[0].masked())(torch.from_numpy(values), torch.from_numpy(mask)),
            torch.as_tensor(np.tile(labels, copies)))


def train_classifier(lightcurves: Lightcurves, *, task: str = "binary", use_redshift: bool = True,
                     redshift_columns: tuple = ("redshift", "redshift_err"),
                     estimator: str = "single", cell: str = "lstm", hidden_size: int = 16, num_layers: int = 2,
                     bidirectional: bool = True, head: tuple = (32,), dropout: float = 0.2,
                     n_members: int = 5, n_passes: int = 30, augment: int = 5, noise: bool = True,
                     partial_fraction: float = 0.0, partial_days: tuple = (0.0, 100.0),
                     normalise: str = "object", validation_fraction: float = 0.1,
                     calibration_fraction: float = 0.15, epochs: int = 60, batch_size: int = 64,
                     learning_rate: float = 3e-3, patience: int | None = 10, seed: int = 0, device: str = "auto",
                     progress: bool | None = None) -> SupernovaClassifier:
    """Train a recurrent classifier on labelled lightcurves and calibrate its probabilities.

    The objects are split three ways, by object (never by augmented copy):
    ``validation_fraction`` for early stopping, ``calibration_fraction``
    more, and the rest for training; the temperature is fitted on the
    validation and calibration objects together (none of them trained on). Training objects are repeated
    ``augment`` times with random gap filling and (``noise=True``) fluxes
    redrawn within their errors; validation and calibration objects are used
    once, interpolated. A class absent from the data is an error naming it; a
    rare class that the split leaves with no training object gets one of its
    held-out objects moved into training, with a warning naming it.

    Parameters
    ----------
    lightcurves : Lightcurves
        With a known ``label`` for every object.
    task : {"binary", "three"}
    use_redshift : bool
        Append the host redshift and its error to every step.
    redshift_columns : (str, str)
        Which metadata columns those are; ``("host_photoz", "host_photoz_err")``
        for the SNPhotCC data (see :class:`~astrobayes.supernovae.features.SequenceConfig`).
    estimator : {"single", "mc_dropout", "ensemble"}
        One network; one network sampled with dropout on (``n_passes``); or
        ``n_members`` networks with different seeds.
    cell, hidden_size, num_layers, bidirectional
        The recurrent layers (Charnock & Moss: LSTM, 16 units, 2 layers).
    head : tuple of int
        Dense layers after the recurrent embedding.
    dropout : float
        Dropout in the head (needed > 0 for ``"mc_dropout"``).
    augment : int
        Augmented copies per training object (0: none, use the interpolated sequence).
    partial_fraction, partial_days
        In every augmented copy, cut this fraction of the objects a uniform
        random number of days in ``partial_days`` after their first detection
        (S/N > 5), so that the network also learns partial lightcurves; the
        validation and calibration objects stay whole. 0 (default) trains on
        whole lightcurves only.
    normalise : {"object", "band", "none"}
        Flux normalisation (see :mod:`~astrobayes.supernovae.features`).
    epochs, batch_size, learning_rate, patience, seed, device, progress
        Training options (:class:`~astrobayes.estimators.TrainingConfig`).

    Returns
    -------
    SupernovaClassifier

    Examples
    --------
    >>> from astrobayes.supernovae import simulate_lightcurves
    >>> lcs = simulate_lightcurves(300, seed=1)
    >>> model = train_classifier(lcs, epochs=2, augment=1, hidden_size=8, progress=False)
    >>> model.predict_proba(lcs.select(np.arange(5))).shape
    (5, 2)
    """
    if not isinstance(lightcurves, Lightcurves):
        raise TypeError(f"lightcurves must be a Lightcurves collection, got {type(lightcurves).__name__}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if estimator == "mc_dropout" and not dropout > 0:
        raise ValueError("estimator='mc_dropout' needs dropout > 0")
    for name, value in (("validation_fraction", validation_fraction), ("calibration_fraction", calibration_fraction)):
        if not 0 <= value < 0.5:
            raise ValueError(f"{name} must be in [0, 0.5), got {value}")
    if int(augment) < 0:
        raise ValueError(f"augment must be >= 0, got {augment}")
    if not 0 <= partial_fraction <= 1:
        raise ValueError(f"partial_fraction must be in [0, 1], got {partial_fraction}")
    if partial_fraction > 0 and int(augment) == 0:
        raise ValueError("partial_fraction > 0 cuts augmented copies: it needs augment >= 1")
    if len(partial_days) != 2 or not 0 <= partial_days[0] < partial_days[1]:
        raise ValueError(f"partial_days must be (low, high) with 0 <= low < high, got {partial_days}")
    labels = task_labels(lightcurves, task)
    n_classes = len(TASKS[task])
    missing = sorted(set(range(n_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"the training set has no object of class(es) {[TASKS[task][k] for k in missing]}, which "
                         f"task={task!r} needs (classes {list(TASKS[task])}); add labelled objects of that class"
                         + (", or train task='binary' (Ia against the rest)" if task == "three" else ""))
    rng = np.random.default_rng(seed)
    rest, calibration = _split(len(lightcurves), calibration_fraction, rng)
    train_rows, validation = _split(len(rest), validation_fraction, rng)
    train_rows, validation = rest[train_rows], rest[validation]
    train_rows, validation, calibration = _every_class_trained(lightcurves, labels, TASKS[task], train_rows,
                                                               validation, calibration)
    config = SequenceConfig(bands=lightcurves.bands, use_redshift=use_redshift, normalise=normalise,
                            redshift_columns=tuple(redshift_columns))
    train_lcs = lightcurves.select(train_rows)
    x_train, y_train = _augmented(train_lcs, labels[train_rows], config, int(augment), noise, rng,
                                  partial_fraction, tuple(float(d) for d in partial_days))
    fit_options = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed, device=device,
                       progress=progress, patience=patience if len(validation) else None,
                       validation_fraction=0.0, scheduler="plateau" if len(validation) else "cosine")
    validation_pair = None
    if len(validation):
        val_lcs = lightcurves.select(validation)
        validation_pair = (build_sequences(val_lcs, config).masked(), torch.as_tensor(labels[validation]))

    embedding = RNNEmbedding(in_channels=len(config.channels), output_dim=2 * hidden_size, hidden_size=hidden_size,
                             cell=cell, bidirectional=bidirectional, num_layers=num_layers)
    base = Classifier(hidden=tuple(head), n_classes=n_classes, embedding=embedding, dropout=dropout)
    if estimator == "single":
        model = base
    elif estimator == "mc_dropout":
        model = MCDropout(base, n_passes=n_passes, seed=seed)
    else:
        model = DeepEnsemble(base, n_members=n_members)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RNN module weights are not part of single contiguous.*")
        model.fit(x_train, y_train, validation=validation_pair, ood=False, **fit_options)
        # the OOD reference: one sequence per training object, built as classify builds it (the augmented copies are
        # several per object). Its p-values are calibrated on the objects no weight was fitted on (validation and
        # temperature rows): those are exchangeable with fresh objects, training objects sit closer to the reference
        held_out = np.concatenate([validation, calibration]).astype(int)
        model.fit_ood(build_sequences(train_lcs, config).masked(), seed=seed,
                      calibration=build_sequences(lightcurves.select(held_out), config).masked()
                      if len(held_out) >= MIN_HELD_OUT else None)
    meta = {"n_train": int(len(train_rows)), "n_validation": int(len(validation)),
            "n_calibration": int(len(calibration)), "augment": int(augment), "noise": bool(noise),
            "partial_fraction": float(partial_fraction), "partial_days": [float(d) for d in partial_days],
            "estimator": estimator, "cell": cell, "hidden_size": hidden_size, "num_layers": num_layers,
            "bidirectional": bool(bidirectional), "seed": seed,
            "class_counts": np.bincount(labels, minlength=n_classes).tolist()}
    classifier = SupernovaClassifier(model, config, task, meta=meta)
    held_out = np.sort(np.concatenate([calibration, validation]))
    if len(held_out):
        # Guo et al. (2017) fit T on the validation set; the calibration objects add to it (more objects, a
        # less noisy T), and neither was trained on.
        classifier.calibrate(lightcurves.select(held_out))
    return classifier


def classify(lightcurves: Lightcurves, model: SupernovaClassifier) -> Table:
    """Class probabilities and their uncertainty for every object: the astronomer's one call.

    Returns
    -------
    astropy.table.Table
        One row per object: ``object_id``; ``p_<class>`` (the members' mean
        probability, temperature-scaled) and ``p_<class>_std`` (spread of the
        members' probabilities — ensemble networks or dropout passes — before
        calibration; 0 for a single network); ``predicted`` (most probable
        class); ``entropy`` of the calibrated probabilities and
        ``mutual_information`` (nats) between the class and the members, the
        epistemic part, computed on the members before calibration (≥ 0);
        ``n_epochs`` (sequence length); ``ood_p_value``: is the network's
        summary of the lightcurve like those of its training simulations? (a
        conformal p-value, see :meth:`~astrobayes.estimators.Estimator.ood_p_value`;
        small = unlike anything it was trained on; NaN when the model has no
        reference, e.g. trained on fewer than 300 objects — ``meta["ood_note"]``
        says why). ``meta`` records the model's task, temperature and version,
        ``ood_alpha`` and ``ood_flagged`` (objects with ood_p_value ≤ 0.01).

    Warns
    -----
    UserWarning
        One line counting the objects with ``ood_p_value`` ≤ 0.01, when there
        are any (about 1 % of objects like the simulations are flagged by chance).

    Examples
    --------
    >>> from astrobayes.supernovae import simulate_lightcurves
    >>> lcs = simulate_lightcurves(200, seed=2)
    >>> model = train_classifier(lcs, epochs=3, augment=1, hidden_size=8, progress=False)
    >>> table = classify(lcs, model)
    >>> table.colnames[:4]
    ['object_id', 'p_Ia', 'p_Ia_std', 'p_non-Ia']
    """
    if not isinstance(model, SupernovaClassifier):
        raise TypeError(f"model must be a SupernovaClassifier (train_classifier / load_classifier), got "
                        f"{type(model).__name__}")
    sequences = build_sequences(lightcurves, model.config)
    # (members, n, K) before calibration, and the OOD p-values from the same pass of the recurrent network
    members, ood_p = model._member_probabilities(lightcurves, sequences, ood=True)
    probs = _apply_temperature(members.mean(axis=0), model.temperature)
    table = Table({"object_id": lightcurves.ids.copy()})
    for k, name in enumerate(model.class_names):
        table[f"p_{name}"] = probs[:, k]
        table[f"p_{name}_std"] = members[:, :, k].std(axis=0)
    table["predicted"] = np.asarray(model.class_names)[probs.argmax(axis=1)]
    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=-1)

    table["entropy"] = entropy(probs)
    # BALD: H(mean of the members) − mean of their entropies, >= 0 by Jensen; on the members as trained, so that
    # both terms describe the same distributions
    table["mutual_information"] = np.maximum(entropy(members.mean(axis=0)) - entropy(members).mean(axis=0), 0.0)
    table["n_epochs"] = sequences.lengths
    table.meta.update({"task": model.task, "temperature": model.temperature, "astrobayes_version": __version__,
                       "estimator": type(model.estimator).__name__})
    report_ood(table, ood_p, note=model.estimator.ood_note, objects="lightcurves")
    return table
