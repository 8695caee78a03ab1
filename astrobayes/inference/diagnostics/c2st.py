"""Classifier two-sample test (Lopez-Paz & Oquab 2017; as in sbibm, Lueckmann et al. 2021).

The accuracy of a classifier telling two sample sets apart: 0.5 when they
come from the same distribution.
"""
from __future__ import annotations

import numpy as np

from ...estimators.classifier import Classifier
from ...estimators.training import TrainingConfig, training_config
from ._checks import _array, _positive_int

__all__ = ["c2st"]


def _stratified_folds(labels: np.ndarray, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled test-index sets with each class split evenly over the folds."""
    folds = [[] for _ in range(n_folds)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        for k, chunk in enumerate(np.array_split(members, n_folds)):
            folds[k].append(chunk)
    return [np.concatenate(fold) for fold in folds]


def c2st(samples_p, samples_q, seed: int = 0, n_folds: int = 5, hidden=None,
         config: TrainingConfig | None = None, **changes) -> float:
    """Classifier two-sample test accuracy, as in the sbibm benchmark.

    Both sample sets are z-scored with the mean and standard deviation of
    ``samples_p`` (the reference), labelled 0 and 1, and a ReLU MLP with two
    hidden layers of 10·d units is trained and scored by shuffled, stratified
    ``n_folds``-fold cross-validation. The result is the mean held-out
    accuracy: 0.5 when the two sets come from the same distribution, 1 when
    they are fully separable.

    sbibm (Lueckmann et al. 2021) uses scikit-learn's
    ``MLPClassifier(activation="relu", hidden_layer_sizes=(10 d, 10 d),
    max_iter=1000, solver="adam")``. Here the network is astrobayes'
    :class:`~astrobayes.estimators.Classifier` trained by the common training
    loop: Adam at learning rate 1e-3, batches of 200 (sklearn's default), at
    most 500 epochs with early stopping on a 10 % validation split of each
    training fold (patience 20, best weights restored). sklearn instead stops
    when the *training* loss stalls; scores therefore agree with sbibm's to
    within the fold-to-fold noise, not digit for digit.

    Parameters
    ----------
    samples_p : array-like (n, d)
        Reference samples (e.g. from the true posterior).
    samples_q : array-like (m, d)
        Samples to test (e.g. from an estimated posterior).
    seed : int
        Seeds the folds and the training of fold k (with seed + k).
    n_folds : int
    hidden : sequence of int, optional
        Hidden widths; default (10 d, 10 d).
    config : TrainingConfig, optional
        Replaces the training defaults above; keyword arguments change single fields.

    Returns
    -------
    float
        Mean held-out classification accuracy.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p, q = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [4.0, 0.0]
    >>> bool(c2st(p, q, epochs=50) > 0.9)
    True
    """
    reference = _array(samples_p, "samples_p", 2)
    other = _array(samples_q, "samples_q", 2)
    if reference.shape[1] != other.shape[1]:
        raise ValueError(f"samples_p has {reference.shape[1]} dimension(s) but samples_q has {other.shape[1]}")
    n_folds = _positive_int(n_folds, "n_folds", 2)
    if min(len(reference), len(other)) < 2 * n_folds:
        raise ValueError(f"c2st with {n_folds} folds needs at least {2 * n_folds} samples in each set")
    dim = reference.shape[1]
    scale = reference.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a constant column of p carries no scale; leave it unscaled
    inputs = (np.concatenate([reference, other]) - reference.mean(axis=0)) / scale
    labels = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(other), dtype=int)]
    defaults = training_config(epochs=500, batch_size=200, learning_rate=1e-3, validation_fraction=0.1,
                               patience=20, progress=False)
    config = training_config(config or defaults, **changes)
    hidden = tuple(hidden) if hidden is not None else (10 * dim, 10 * dim)
    accuracies = []
    for k, test in enumerate(_stratified_folds(labels, n_folds, np.random.default_rng(seed))):
        train = np.setdiff1d(np.arange(len(labels)), test)
        classifier = Classifier(hidden=hidden, n_classes=2, activation="relu")
        classifier.fit(inputs[train], labels[train], training_config(config, seed=seed + k))
        accuracies.append(np.mean(classifier.predict_class(inputs[test]) == labels[test]))
    return float(np.mean(accuracies))
