"""How good is a supernova classifier: accuracy, AUC, purity/efficiency, the SNPhotCC F1, calibration, early epochs.

The figure of merit of the Supernova Photometric Classification Challenge
(Kessler et al. 2010, eq. 3), used by Charnock & Moss (2017), penalises false
Type Ia with a weight W = 3:

    F1 = [TP / (TP + FN)] · [TP / (TP + W · FP)]

with Ia the positive class and the most probable class as the prediction.
For three classes the AUC is the unweighted mean of the one-vs-rest AUCs, as in
Charnock & Moss.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table

from astrobayes.estimators.metrics import expected_calibration_error, roc_auc, roc_curve  # noqa: F401 (roc_curve re-exported)

from .io import Lightcurves
from .model import SupernovaClassifier, task_labels

__all__ = ["classification_metrics", "early_epoch", "partial_lightcurve_performance", "plot_partial_performance",
           "plot_roc", "roc_curve"]


def classification_metrics(probabilities, labels, class_names: Sequence[str] = ("Ia", "non-Ia"),
                           n_bins: int = 15) -> dict:
    """Accuracy, AUC, Ia purity/efficiency, the SNPhotCC F1 (W = 3) and the expected calibration error.

    Parameters
    ----------
    probabilities : array (n, K)
        Class probabilities, columns in ``class_names`` order.
    labels : array (n,)
        True labels 0..K−1.
    class_names : sequence of str
        Must contain ``"Ia"``.

    Returns
    -------
    dict
        ``accuracy``, ``auc`` (Ia vs rest for two classes; mean one-vs-rest for
        more), ``auc_ia`` (P(Ia) as the score of Ia vs the rest), ``purity_ia``,
        ``efficiency_ia``, ``f1_spcc``, ``ece``, ``n``.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    >>> m = classification_metrics(p, [0, 1, 1, 1])
    >>> m["accuracy"], m["purity_ia"], m["efficiency_ia"], round(m["f1_spcc"], 3)
    (0.75, 0.5, 1.0, 0.25)
    """
    probs = np.asarray(probabilities, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    names = list(class_names)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"probabilities must be (n, {len(names)}) for classes {names}, got shape {probs.shape}")
    if len(labels) != len(probs):
        raise ValueError(f"labels has {len(labels)} rows but probabilities has {len(probs)}")
    if "Ia" not in names:
        raise ValueError(f"class_names must contain 'Ia', got {names}")
    ia = names.index("Ia")
    # the prediction is the most probable class (as in Charnock & Moss), not P(Ia) >= 0.5 as in
    # estimators.metrics.purity_efficiency: the two differ for three classes
    predicted = probs.argmax(axis=1)
    is_ia, called_ia = labels == ia, predicted == ia
    tp = int((is_ia & called_ia).sum())
    fp = int((~is_ia & called_ia).sum())
    fn = int((is_ia & ~called_ia).sum())
    efficiency = tp / (tp + fn) if tp + fn else np.nan
    purity = tp / (tp + fp) if tp + fp else np.nan
    f1 = efficiency * tp / (tp + 3 * fp) if (tp + 3 * fp) and tp + fn else np.nan
    auc_ia = roc_auc(probs[:, ia], is_ia.astype(int))
    if len(names) == 2:
        auc = auc_ia
    else:
        auc = float(np.mean([roc_auc(probs[:, k], (labels == k).astype(int)) for k in range(len(names))
                             if 0 < (labels == k).sum() < len(labels)]))
    return {"n": int(len(labels)), "accuracy": float((predicted == labels).mean()), "auc": float(auc),
            "auc_ia": float(auc_ia), "purity_ia": float(purity), "efficiency_ia": float(efficiency),
            "f1_spcc": float(f1), "ece": expected_calibration_error(probs, labels, n_bins)}


def early_epoch(lightcurves: Lightcurves, n_detections: int = 6, snr: float = 4.0,
                night_start: float = 0.7) -> Lightcurves:
    """The SNPhotCC "early epoch" lightcurves: data up to the night of the ``n_detections``-th point with S/N > ``snr``.

    Kessler et al. (2010) and Charnock & Moss (2017) use the first six
    observations with S/N > 4 and the data taken on the night of the sixth.
    Objects with fewer detections keep their whole lightcurve.

    A night runs from local noon to local noon: ``night_start`` is the MJD
    fraction of local noon (0.7 for Cerro Tololo, longitude −70.8°, where DES
    observes; 0.5 − longitude/360° elsewhere). Note that S/N > 4 here follows
    the challenge, while :meth:`Lightcurves.truncate` counts from the first
    S/N > 5 point.
    """
    if not isinstance(lightcurves, Lightcurves):
        raise TypeError(f"lightcurves must be a Lightcurves collection, got {type(lightcurves).__name__}")
    if int(n_detections) < 1:
        raise ValueError(f"n_detections must be >= 1, got {n_detections}")
    if not 0 <= night_start < 1:
        raise ValueError(f"night_start must be a fraction of a day in [0, 1), got {night_start}")
    offsets, time, _, flux, flux_err = lightcurves.arrays()
    keep = np.ones(len(time), dtype=bool)
    for i in range(len(lightcurves)):
        lo, hi = offsets[i], offsets[i + 1]
        detected = np.flatnonzero(flux[lo:hi] / flux_err[lo:hi] > snr)
        if len(detected) >= n_detections:
            # the local noon after that detection ends its night
            night_end = np.floor(time[lo + detected[n_detections - 1]] - night_start) + 1.0 + night_start
            keep[lo:hi] = time[lo:hi] < night_end
    return type(lightcurves)(lightcurves.observations[keep], lightcurves.meta.copy(), bands=lightcurves.bands,
                             source="the early-epoch lightcurves")


def partial_lightcurve_performance(model: SupernovaClassifier, lightcurves: Lightcurves,
                                   days: Sequence[float] = (10, 20, 30, 40, 60, 80, 120),
                                   since: str = "first_detection") -> Table:
    """Metrics of ``model`` on lightcurves cut ``days`` after the first observation (or detection).

    Returns a Table with one row per cut: ``days``, the median number of
    observations kept, and the columns of :func:`classification_metrics`; a
    last row with ``days`` = inf holds the full lightcurves.
    """
    labels = task_labels(lightcurves, model.task)
    rows = []
    for d in list(days) + [np.inf]:
        cut = lightcurves if not np.isfinite(d) else lightcurves.truncate(d, since=since)
        probs = model.predict_proba(cut)
        metrics = classification_metrics(probs, labels, model.class_names)
        rows.append({"days": float(d), "median_observations": float(np.median(cut.meta["n_obs"])), **metrics})
    table = Table(rows=rows)
    table.meta["since"] = since
    return table


def plot_roc(probabilities, labels, class_names=("Ia", "non-Ia"), ax=None, label=None):
    """ROC curve of Ia against the rest; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ia = list(class_names).index("Ia")
    probs = np.asarray(probabilities)
    fpr, tpr = roc_curve(probs[:, ia], np.asarray(labels) == ia)
    auc = roc_auc(probs[:, ia], (np.asarray(labels) == ia).astype(int))
    ax.plot(fpr, tpr, label=f"{label + ': ' if label else ''}AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set_xlabel("false-positive rate (non-Ia called Ia)")
    ax.set_ylabel("true-positive rate (Ia efficiency)")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_partial_performance(table: Table, ax=None, metrics=("accuracy", "auc")):
    """Metrics against the number of days of lightcurve seen (from :func:`partial_lightcurve_performance`)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    finite = np.isfinite(table["days"])
    for name in metrics:
        line, = ax.plot(table["days"][finite], table[name][finite], "o-", label=name)
        ax.axhline(table[name][~finite][0], color=line.get_color(), ls="--", lw=1)
    ax.set_xlabel(f"days since {table.meta.get('since', 'first').replace('_', ' ')} (dashed: full lightcurve)")
    ax.legend(fontsize=8)
    return ax
