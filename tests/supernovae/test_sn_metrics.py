"""Tests of the supernova classification metrics and the early-epoch cut (astrobayes.supernovae.evaluate)."""
import numpy as np
import pandas as pd
import pytest

from astrobayes.estimators.metrics import expected_calibration_error, roc_auc
from astrobayes.supernovae.evaluate import classification_metrics, early_epoch, roc_curve
from astrobayes.supernovae.io import read_lightcurve_table


def _binary(tp, fp, fn, tn):
    """Probabilities (Ia, non-Ia) and labels with a given confusion; distinct P(Ia) values, so no ties."""
    rng = np.random.default_rng(tp + 10 * fp + 100 * fn + 1000 * tn)
    labels = np.array([0] * tp + [1] * fp + [0] * fn + [1] * tn)
    called_ia = np.array([True] * (tp + fp) + [False] * (fn + tn))
    p_ia = np.where(called_ia, rng.uniform(0.55, 0.99, len(labels)), rng.uniform(0.01, 0.45, len(labels)))
    return np.stack([p_ia, 1 - p_ia], axis=1), labels


# ---------------------------------------------------------------------- classification_metrics
def test_metrics_of_a_hand_made_confusion():
    probs, labels = _binary(tp=6, fp=2, fn=3, tn=9)
    m = classification_metrics(probs, labels)
    assert m["n"] == 20
    assert m["accuracy"] == pytest.approx(15 / 20)
    assert m["purity_ia"] == pytest.approx(6 / 8)
    assert m["efficiency_ia"] == pytest.approx(6 / 9)
    # SNPhotCC figure of merit: efficiency × TP / (TP + 3 FP) = (6/9)(6/12)
    assert m["f1_spcc"] == pytest.approx(6 / 9 * 6 / (6 + 3 * 2))
    assert m["f1_spcc"] < m["efficiency_ia"] * m["purity_ia"]  # false Ia cost three times
    assert m["auc"] == m["auc_ia"] == pytest.approx(roc_auc(probs[:, 0], (labels == 0).astype(int)))
    assert m["ece"] == pytest.approx(expected_calibration_error(probs, labels, 15))


def test_metrics_with_ia_second():
    probs, labels = _binary(tp=4, fp=1, fn=2, tn=5)
    flipped = classification_metrics(probs[:, ::-1], 1 - labels, class_names=("non-Ia", "Ia"))
    straight = classification_metrics(probs, labels)
    for name in ("accuracy", "purity_ia", "efficiency_ia", "f1_spcc", "auc_ia", "auc"):
        assert flipped[name] == pytest.approx(straight[name]), name
    assert straight["f1_spcc"] == pytest.approx(4 / 6 * 4 / (4 + 3))


def test_metrics_three_classes():
    # columns Ia, II, Ibc; rows: true Ia, II, Ibc with a known argmax each
    probs = np.array([[0.7, 0.2, 0.1],   # Ia  → Ia   (TP)
                      [0.6, 0.3, 0.1],   # Ia  → Ia   (TP)
                      [0.2, 0.7, 0.1],   # Ia  → II   (FN)
                      [0.5, 0.4, 0.1],   # II  → Ia   (FP)
                      [0.1, 0.8, 0.1],   # II  → II
                      [0.1, 0.3, 0.6],   # II  → Ibc
                      [0.2, 0.2, 0.6],   # Ibc → Ibc
                      [0.1, 0.6, 0.3]])  # Ibc → II
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    m = classification_metrics(probs, labels, class_names=("Ia", "II", "Ibc"))
    assert m["accuracy"] == pytest.approx(4 / 8)
    assert m["purity_ia"] == pytest.approx(2 / 3) and m["efficiency_ia"] == pytest.approx(2 / 3)
    assert m["f1_spcc"] == pytest.approx(2 / 3 * 2 / (2 + 3))
    one_vs_rest = [roc_auc(probs[:, k], (labels == k).astype(int)) for k in range(3)]
    assert m["auc"] == pytest.approx(np.mean(one_vs_rest))
    assert m["auc_ia"] == pytest.approx(one_vs_rest[0])


def test_metrics_when_nothing_is_called_ia():
    probs, labels = _binary(tp=0, fp=0, fn=4, tn=6)
    m = classification_metrics(probs, labels)
    assert m["efficiency_ia"] == 0 and np.isnan(m["purity_ia"]) and np.isnan(m["f1_spcc"])
    probs, labels = _binary(tp=0, fp=3, fn=4, tn=3)
    m = classification_metrics(probs, labels)
    assert m["purity_ia"] == 0 and m["f1_spcc"] == 0


def test_metrics_errors():
    probs, labels = _binary(3, 1, 1, 3)
    with pytest.raises(ValueError, match="Ia"):
        classification_metrics(probs, labels, class_names=("A", "B"))
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(probs, labels, class_names=("Ia", "II", "Ibc"))
    with pytest.raises(ValueError, match="rows"):
        classification_metrics(probs, labels[:-1])


# ---------------------------------------------------------------------- roc_curve
def test_roc_curve_docstring_example():
    fpr, tpr = roc_curve([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("seed, n, shift", [(0, 50, 0.0), (1, 300, 1.0), (2, 1000, 2.5), (3, 7, -1.0)])
def test_roc_curve_area_equals_roc_auc(seed, n, shift):
    rng = np.random.default_rng(seed)
    positive = rng.uniform(size=n) < 0.4
    positive[:2] = [True, False]
    scores = rng.normal(size=n) + shift * positive  # continuous: no ties
    assert len(np.unique(scores)) == n
    fpr, tpr = roc_curve(scores, positive)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert len(fpr) == len(tpr) == n + 1
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    # each step moves one object: 1/n₋ to the right or 1/n₊ up
    steps = np.stack([np.diff(fpr) * (~positive).sum(), np.diff(tpr) * positive.sum()], axis=1)
    assert np.allclose(np.sort(steps, axis=1), [[0.0, 1.0]] * n)
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    assert area == pytest.approx(roc_auc(scores, positive.astype(int)), abs=1e-12)


def test_roc_curve_perfect_and_reversed():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    positive = np.array([True, True, True, False, False])
    fpr, tpr = roc_curve(scores, positive)
    assert [0.0, 1.0] in np.stack([fpr, tpr], axis=1).tolist()  # the corner
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(1.0)
    fpr, tpr = roc_curve(-scores, positive)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(0.0)


def test_roc_curve_errors():
    with pytest.raises(ValueError, match="both"):
        roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="same length"):
        roc_curve([0.1, 0.2, 0.3], [True, False])


def test_roc_curve_with_tied_scores():
    scores = np.array([0.5, 0.5, 0.2, 0.9])
    positive = np.array([False, True, False, True])
    fpr, tpr = roc_curve(scores, positive)
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    assert area == pytest.approx(roc_auc(scores, positive.astype(int)))


# ---------------------------------------------------------------------- early_epoch
def _early_epoch_example():
    # object "a": S/N = flux / 1; detections (S/N > 4) marked *; the 6th falls on MJD night 103 at 103.30
    rows = [(100.10, "g", 5.0),   # 1*
            (100.12, "r", 4.0),   # S/N exactly 4: not a detection
            (100.14, "i", 6.0),   # 2*
            (101.20, "g", 8.0),   # 3*
            (101.22, "r", 1.0),
            (102.15, "z", 9.0),   # 4*
            (102.17, "g", 7.0),   # 5*
            (103.30, "r", 12.0),  # 6*  → keep up to the end of MJD 103
            (103.31, "i", 0.5),
            (103.99, "z", 11.0),  # same night
            (104.00, "g", 10.0),  # next night: cut
            (106.10, "r", 9.0)]
    frame = pd.DataFrame({"snid": "a", "mjd": [r[0] for r in rows], "flt": [r[1] for r in rows],
                          "f": [r[2] for r in rows], "e": 1.0})
    # object "b": only five detections, so its whole lightcurve stays
    frame_b = pd.DataFrame({"snid": "b", "mjd": [200.1, 201.1, 202.1, 203.1, 204.1, 205.1, 230.0],
                            "flt": "g", "f": [10.0, 10.0, 3.0, 10.0, 10.0, 10.0, 1.0], "e": 1.0})
    shuffled = pd.concat([frame, frame_b]).sample(frac=1.0, random_state=0)  # order must not matter
    return read_lightcurve_table(shuffled, object_id="snid", time="mjd", band="flt", flux="f", flux_err="e")


def test_early_epoch_nights_run_from_local_noon():
    lcs = _early_epoch_example()
    # with nights from UT midnight (night_start=0) MJD 103.99 shares the 6th detection's night (103.30); at
    # Cerro Tololo (default 0.7) a new night starts at 103.7
    assert early_epoch(lcs, night_start=0.0)["a"]["time"].value.max() == pytest.approx(103.99)
    assert early_epoch(lcs)["a"]["time"].value.max() == pytest.approx(103.31)
    with pytest.raises(ValueError, match="night_start"):
        early_epoch(lcs, night_start=1.5)
    with pytest.raises(TypeError, match="Lightcurves"):
        early_epoch(lcs.observations)


def test_early_epoch_keeps_the_night_of_the_sixth_detection():
    lcs = _early_epoch_example()
    early = early_epoch(lcs, night_start=0.0)
    assert early["a"]["time"].value.tolist() == pytest.approx(
        [100.10, 100.12, 100.14, 101.20, 101.22, 102.15, 102.17, 103.30, 103.31, 103.99])
    assert np.asarray(early["a"]["flux"]).tolist() == [5.0, 4.0, 6.0, 8.0, 1.0, 9.0, 7.0, 12.0, 0.5, 11.0]
    assert len(early["b"]) == len(lcs["b"]) == 7
    assert early.meta["n_obs"].tolist() == [10, 7] and lcs.meta["n_obs"].tolist() == [12, 7]
    assert early.bands == lcs.bands


def test_early_epoch_options():
    lcs = _early_epoch_example()
    # the 3rd detection of "a" is at 101.20: keep MJD 100 and 101; "b" (3rd at 203.1, the 202.1 point is S/N 3)
    third = early_epoch(lcs, n_detections=3, night_start=0.0)
    assert third["a"]["time"].value.max() == pytest.approx(101.22)
    assert third["b"]["time"].value.max() == pytest.approx(203.1)
    # a higher S/N threshold: detections of "a" at S/N > 7 are 8, 9, 12, 11, 10, 9 → the 6th at 106.10 (all kept)
    assert len(early_epoch(lcs, snr=7.0, night_start=0.0)["a"]) == 12
    assert len(early_epoch(lcs, n_detections=5, snr=7.0, night_start=0.0)["a"]) == 11
    with pytest.raises(ValueError, match="n_detections"):
        early_epoch(lcs, n_detections=0)
