"""Metrics for probabilistic classifiers: calibration and temperature scaling, ROC curves and AUC, purity, efficiency.

Pure numpy (torch tensors are accepted and converted). Probabilities are
either (m, K) class probabilities or, for a binary problem, (m,) probabilities
of class 1.

Calibration follows Guo et al. (2017, "On Calibration of Modern Neural
Networks", ICML): the *top-label* confidence max_k p_k is binned into equal-width
bins on [0, 1], and the expected calibration error is the count-weighted mean
of |accuracy − mean confidence| over the bins.
"""
from __future__ import annotations

from typing import NamedTuple

import warnings

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from ..core.validation import as_tensor

__all__ = ["ReliabilityCurve", "PurityEfficiency", "apply_temperature", "expected_calibration_error",
           "fit_temperature", "reliability_curve", "plot_reliability", "roc_auc", "roc_curve", "purity_efficiency"]


class ReliabilityCurve(NamedTuple):
    """Per-bin summary of a reliability diagram (empty bins hold NaN accuracy and confidence)."""

    bin_centres: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    counts: np.ndarray


class PurityEfficiency(NamedTuple):
    """Purity TP / (TP + FP) and efficiency (completeness, recall) TP / (TP + FN)."""

    purity: float | np.ndarray
    efficiency: float | np.ndarray


def _labels(labels, n: int | None = None) -> np.ndarray:
    values = as_tensor(labels, "labels", ndim=1, dtype=torch.long).numpy()
    if n is not None and len(values) != n:
        raise ValueError(f"labels has {len(values)} rows but probabilities has {n}")
    if (values < 0).any():
        raise ValueError(f"labels must be class indices 0..K-1, got {values.min()}")
    return values


def _probabilities(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    """(m, K) probabilities and checked labels; (m,) input is P(class 1) of a binary problem."""
    probs = as_tensor(probabilities, "probabilities", ndim=(1, 2), dtype=torch.float64).numpy()
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    if ((probs < 0) | (probs > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    # float32 softmax sums to 1 within ~1e-6; 1e-3 tolerates rounding, not logits.
    if np.abs(probs.sum(axis=1) - 1).max() > 1e-3:
        raise ValueError("each row of probabilities must sum to 1 (pass softmax outputs, not logits)")
    target = _labels(labels, len(probs))
    if target.max() >= probs.shape[1]:
        raise ValueError(f"labels holds class {target.max()} but probabilities has {probs.shape[1]} columns")
    return probs, target


def _check_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def reliability_curve(probabilities, labels, n_bins: int = 15) -> ReliabilityCurve:
    """Accuracy against confidence of the top label in equal-width bins.

    Parameters
    ----------
    probabilities : array-like (m, K) or (m,)
        Class probabilities, or P(class 1) for a binary problem.
    labels : array-like (m,)
        True class labels 0..K-1.
    n_bins : int
        Number of equal-width confidence bins on [0, 1].

    Returns
    -------
    ReliabilityCurve
        ``bin_centres``, ``accuracy`` (fraction of correct top labels),
        ``confidence`` (mean top-label probability) and ``counts``, each (n_bins,).

    Examples
    --------
    >>> curve = reliability_curve([0.9, 0.9, 0.3, 0.3], [1, 0, 0, 0], n_bins=5)
    >>> curve.counts.tolist()
    [0, 0, 0, 2, 2]
    >>> curve.accuracy[3:].tolist()
    [1.0, 0.5]
    """
    probs, target = _probabilities(probabilities, labels)
    n_bins = _check_bins(n_bins)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == target).astype(float)
    # Bin b holds confidences in [b/B, (b+1)/B); confidence 1 goes to the last bin.
    which = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, weights=correct, minlength=n_bins) / counts
        mean_confidence = np.bincount(which, weights=confidence, minlength=n_bins) / counts
    centres = (np.arange(n_bins) + 0.5) / n_bins
    return ReliabilityCurve(centres, accuracy, mean_confidence, counts)


def expected_calibration_error(probabilities, labels, n_bins: int = 15) -> float:
    """Top-label expected calibration error, Σ_b (n_b / n) |accuracy_b − confidence_b|.

    Even perfectly calibrated probabilities give ECE > 0 on a finite sample:
    roughly sqrt(2/π) · sqrt(p(1 − p) · B / n) for n points in B occupied bins.

    Parameters
    ----------
    probabilities : array-like (m, K) or (m,)
        Class probabilities, or P(class 1) for a binary problem.
    labels : array-like (m,)
        True class labels.
    n_bins : int
        Number of equal-width confidence bins.

    Returns
    -------
    float

    Examples
    --------
    >>> round(expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]), 6)
    0.4
    """
    curve = reliability_curve(probabilities, labels, n_bins)
    used = curve.counts > 0
    weights = curve.counts[used] / curve.counts.sum()
    return float(np.sum(weights * np.abs(curve.accuracy[used] - curve.confidence[used])))


def plot_reliability(probabilities, labels, n_bins: int = 15, ax=None):
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    Parameters
    ----------
    probabilities, labels, n_bins
        As for :func:`reliability_curve`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_reliability([0.8, 0.3, 0.6, 0.9], [1, 0, 0, 1], n_bins=5)
    >>> ax.get_xlabel()
    'confidence (top-label probability)'
    """
    import matplotlib.pyplot as plt

    curve = reliability_curve(probabilities, labels, n_bins)
    ece = expected_calibration_error(probabilities, labels, n_bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    used = curve.counts > 0
    width = 1.0 / len(curve.bin_centres)
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="perfect calibration")
    ax.bar(curve.bin_centres[used], curve.accuracy[used], width=width, edgecolor="k", alpha=0.6,
           label=f"accuracy (ECE = {ece:.3f})")
    ax.plot(curve.confidence[used], curve.accuracy[used], "o", color="C3", ms=4, label="mean confidence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-label probability)")
    ax.set_ylabel("accuracy")
    ax.legend(frameon=False, loc="upper left")
    return ax


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of a binary classifier, from ranks.

    Equal to the probability that a random positive scores higher than a
    random negative (the Mann–Whitney U statistic / (n₊ n₋)); tied scores
    count one half, via average ranks.

    Parameters
    ----------
    scores : array-like (m,)
        Any score that increases with the probability of class 1.
    labels : array-like (m,)
        0 (negative) or 1 (positive); both must occur.

    Returns
    -------
    float

    Examples
    --------
    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    >>> roc_auc([0.5, 0.5], [0, 1])
    0.5
    """
    values = as_tensor(scores, "scores", ndim=1, dtype=torch.float64).numpy()
    target = _labels(labels, len(values))
    if target.max() > 1:
        raise ValueError("roc_auc needs binary labels 0/1")
    n_pos = int(target.sum())
    n_neg = len(target) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("labels must contain both classes 0 and 1 for an AUC")
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    # Average rank (1-based) over each run of tied scores.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = 0.5 * (start + 1 + end)
    u_statistic = ranks[target == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u_statistic / (n_pos * n_neg))


def purity_efficiency(probabilities, labels, threshold=0.5, positive_class: int = 1) -> PurityEfficiency:
    """Purity and efficiency of selecting objects with P(positive) ≥ ``threshold``.

    Purity is the fraction of selected objects that are truly positive
    (precision); efficiency, also called completeness, the fraction of true
    positives that are selected (recall).

    Parameters
    ----------
    probabilities : array-like (m, K) or (m,)
        Class probabilities, or P(class 1) for a binary problem.
    labels : array-like (m,)
        True class labels.
    threshold : float or array-like
        Selection threshold(s) on P(positive_class); an array gives a
        purity–efficiency curve.
    positive_class : int
        The class being selected.

    Returns
    -------
    PurityEfficiency
        Floats for a scalar threshold, arrays otherwise. Purity is NaN where
        nothing is selected.

    Examples
    --------
    >>> purity_efficiency([0.9, 0.8, 0.7, 0.2], [1, 0, 1, 1], threshold=0.5)
    PurityEfficiency(purity=0.6666666666666666, efficiency=0.6666666666666666)
    """
    probs, target = _probabilities(probabilities, labels)
    if isinstance(positive_class, bool) or not isinstance(positive_class, (int, np.integer)) \
            or not 0 <= positive_class < probs.shape[1]:
        raise ValueError(f"positive_class must be a class index 0..{probs.shape[1] - 1}, got {positive_class!r}")
    thresholds = np.asarray(threshold, dtype=float)
    if thresholds.ndim > 1 or not np.all(np.isfinite(thresholds)):
        raise ValueError(f"threshold must be a finite number or a 1-d array, got {threshold!r}")
    positive = target == positive_class
    if not positive.any():
        raise ValueError(f"labels contain no object of positive_class {positive_class}")
    selected = probs[:, positive_class][None, :] >= np.atleast_1d(thresholds)[:, None]
    true_positive = (selected & positive).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = true_positive / selected.sum(axis=1)
    efficiency = true_positive / positive.sum()
    if thresholds.ndim == 0:
        return PurityEfficiency(float(purity[0]), float(efficiency[0]))
    return PurityEfficiency(purity, efficiency)


def roc_curve(scores, positive) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates for every threshold on ``scores`` (``positive`` is a boolean array).

    Examples
    --------
    >>> fpr, tpr = roc_curve([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores and positive must be 1-D of the same length, got {scores.shape}, {positive.shape}")
    if positive.all() or not positive.any():
        raise ValueError("positive must contain both True and False for a ROC curve")
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(positive[order])
    fp = np.cumsum(~positive[order])
    # one point per distinct threshold: the last item of each run of tied scores
    last = np.r_[np.flatnonzero(np.diff(scores[order]) != 0), len(scores) - 1]
    tp, fp = tp[last], fp[last]
    return (np.concatenate([[0.0], fp / fp[-1]]), np.concatenate([[0.0], tp / tp[-1]]))


def fit_temperature(probabilities, labels) -> float:
    """The temperature T minimising the NLL of softmax(log p / T) on held-out objects (Guo et al. 2017).

    Works on any probabilities — one network's, the mean of an ensemble or of
    MC-dropout passes — so the same calibration serves every estimator
    (:meth:`~astrobayes.estimators.Classifier.calibrate` does the same for one
    network's logits inside its file). A temperature at the edge of the search
    range [0.05, 20] warns: the probabilities then carry next to no
    information about the labels.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> logit = rng.normal(0, 2, 20000); y = (rng.uniform(size=20000) < 1 / (1 + np.exp(-logit))).astype(int)
    >>> over = 1 / (1 + np.exp(-3 * logit))            # three times too confident
    >>> T = fit_temperature(np.stack([1 - over, over], 1), y)
    >>> bool(abs(T - 3) < 0.2)   # the maximum-likelihood T has a sampling error of a few per cent here
    True
    """
    probs = np.clip(np.asarray(probabilities, dtype=float), 1e-12, 1.0)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probabilities must be (n, K) with one row per label, got {probs.shape} and {labels.shape}")
    log_p = np.log(probs)

    def nll(log_t):
        scaled = log_p / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return -(scaled[np.arange(len(labels)), labels] - log_norm).mean()

    low, high = np.log(0.05), np.log(20.0)
    best = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    if high - best.x < 1e-3:
        warnings.warn(f"the fitted temperature {np.exp(best.x):.3g} sits at the edge of the search range [0.05, 20]: "
                      "the probabilities carry (almost) no information about the labels (an untrained network?)",
                      RuntimeWarning, stacklevel=2)
    elif best.x - low < 1e-3:
        warnings.warn(f"the fitted temperature {np.exp(best.x):.3g} sits at the edge of the search range [0.05, 20]: "
                      "the held-out labels are perfectly separated by these probabilities, so any sharper T fits "
                      "them better; T is not constrained (use more, or harder, held-out objects)",
                      RuntimeWarning, stacklevel=2)
    return float(np.exp(best.x))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row: probabilities (m, K) at temperature T (T > 1 softens, T < 1 sharpens).

    For a network's own softmax output this equals softmax(logits / T).

    Examples
    --------
    >>> apply_temperature(np.array([[0.8, 0.2]]), 1.0).round(3).tolist()
    [[0.8, 0.2]]
    >>> apply_temperature(np.array([[0.8, 0.2]]), 2.0).round(3).tolist()
    [[0.667, 0.333]]
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    log_p = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    log_p -= log_p.max(axis=1, keepdims=True)
    out = np.exp(log_p)
    return out / out.sum(axis=1, keepdims=True)
