import warnings

import numpy as np
import pytest
import torch

import astrobayes
from astrobayes.estimators.classifier import Classifier
from astrobayes.estimators.metrics import (expected_calibration_error, plot_reliability, purity_efficiency,
                                           reliability_curve, roc_auc)

N_BINS = 15


def _finite_sample_ece(true_probabilities, n_bins=N_BINS):
    """ECE that perfectly calibrated probabilities show from label noise alone.

    In a bin with n_b points of top-label confidence c_i, the accuracy has
    standard deviation sqrt(mean c(1 − c) / n_b), so E|accuracy − confidence|
    = sqrt(2/π) · sqrt(mean c(1 − c) / n_b); weighting by n_b / n gives
    ~ sqrt(2/π) · sqrt(p(1 − p) · B / n) for B occupied bins.
    """
    probs = np.asarray(true_probabilities)
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    top = probs.max(axis=1)
    which = np.minimum((top * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(which):
        c = top[which == b]
        total += len(c) / len(top) * np.sqrt(2 / np.pi) * np.sqrt(np.mean(c * (1 - c)) / len(c))
    return total


def _softmax(logits):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class LogisticProblem:
    """p(y = 1 | x) = sigmoid(w·x + b), x ~ N(0, I₂)."""

    w, b = np.array([2.0, -1.0]), 0.3

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def draw(self, n):
        x = self.rng.normal(size=(n, 2))
        p = 1 / (1 + np.exp(-(x @ self.w + self.b)))
        return x, p, (self.rng.uniform(size=n) < p).astype(int)


@pytest.fixture(scope="module")
def logistic_fit():
    problem = LogisticProblem(seed=1)
    train, calibration, held_out = problem.draw(4000), problem.draw(2000), problem.draw(20000)
    clf = Classifier(hidden=(32, 32))
    clf.fit(train[0], train[2], epochs=100, progress=False, seed=0)
    clf.calibrate(calibration[0], calibration[2])
    return clf, held_out


def test_temperature_scaled_classifier_has_ece_below_003_on_logistic_problem(logistic_fit):
    clf, (x, p_true, labels) = logistic_fit
    noise_floor = _finite_sample_ece(p_true)
    ece = expected_calibration_error(clf.predict_proba(x), labels)
    ece_truth = expected_calibration_error(p_true, labels)
    print(f"ECE model {ece:.4f}, true probabilities {ece_truth:.4f}, finite-sample expectation {noise_floor:.4f}, "
          f"T = {clf.temperature:.3f}")
    # 20000 held-out points in 15 bins: label noise alone gives ECE ~ 0.007,
    # so the 0.03 bound is about 4x the noise floor...
    assert noise_floor < 0.03 / 3
    assert ece <= 0.03
    # ...and it does discriminate: the same model made 3x over-confident fails it.
    sharpened = _softmax(3 * clf.logits(x, calibrated=False))
    assert expected_calibration_error(sharpened, labels) > 0.03


def test_classifier_outputs_are_consistent(logistic_fit):
    clf, (x, _, labels) = logistic_fit
    x, labels = x[:500], labels[:500]
    probs = clf.predict_proba(x)
    assert probs.shape == (500, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    mean, std = clf.predict(x)
    assert np.array_equal(mean, probs) and np.allclose(std, np.sqrt(probs * (1 - probs)))
    assert np.array_equal(clf.predict_class(x), probs.argmax(1))
    assert np.allclose(clf.log_prob(labels, x), np.log(probs[np.arange(500), labels]), atol=1e-5)
    dist = clf.distribution(torch.as_tensor(x, dtype=torch.float32))
    assert torch.allclose(dist.probs, torch.as_tensor(probs), atol=1e-6)
    # One x against both labels: the probabilities exponentiate to 1.
    both = clf.log_prob(np.array([0, 1]), x[:1])
    assert abs(np.exp(both).sum() - 1) < 1e-5
    draws = clf.sample(4000, x[:1], seed=2)
    assert draws.shape == (1, 4000) and set(np.unique(draws)) <= {0, 1}
    # Binomial: the fraction of class-1 draws has σ = sqrt(p(1-p)/4000) ≤ 0.008; 4σ bound.
    assert abs(draws.mean() - probs[0, 1]) < 4 * np.sqrt(probs[0, 1] * probs[0, 0] / 4000) + 1e-9
    assert np.array_equal(clf.sample(10, x[:3], seed=5), clf.sample(10, x[:3], seed=5))


def test_three_class_softmax_problem_is_calibrated():
    rng = np.random.default_rng(7)
    weights = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    offsets = np.array([0.2, 0.0, -0.2])

    def draw(n):
        x = rng.normal(size=(n, 2))
        p = _softmax(x @ weights.T + offsets)
        labels = (rng.uniform(size=(n, 1)) > p.cumsum(1)).sum(1)
        return x, p, labels

    (x_train, _, y_train), (x_cal, _, y_cal), (x, p_true, labels) = draw(4000), draw(2000), draw(20000)
    clf = Classifier(hidden=(32, 32))
    clf.fit(x_train, y_train, epochs=100, progress=False, seed=0)
    assert clf.dims["n_classes"] == 3
    clf.calibrate(x_cal, y_cal)
    probs = clf.predict_proba(x)
    noise_floor = _finite_sample_ece(p_true)
    ece = expected_calibration_error(probs, labels)
    print(f"3-class ECE {ece:.4f}, finite-sample expectation {noise_floor:.4f}, T = {clf.temperature:.3f}")
    assert noise_floor < 0.03 / 3
    assert ece <= 0.03
    assert probs.shape == (20000, 3)


def test_overfitted_model_learns_temperature_above_one_and_ece_drops():
    problem = LogisticProblem(seed=3)
    (x_small, _, y_small), (x_cal, _, y_cal), (x, p_true, labels) = problem.draw(40), problem.draw(2000), \
        problem.draw(5000)
    # A wide net trained to (near) zero training loss on 40 points, no early stopping: over-confident.
    clf = Classifier(hidden=(128, 128))
    history = clf.fit(x_small, y_small, epochs=300, learning_rate=1e-2, batch_size=40, validation_fraction=0,
                      patience=None, progress=False, seed=0)
    assert history.train_loss[-1] < 0.01
    before = expected_calibration_error(clf.predict_proba(x), labels)
    raw_logits = clf.logits(x, calibrated=False)
    clf.calibrate(x_cal, y_cal)
    after = expected_calibration_error(clf.predict_proba(x), labels)
    noise_floor = _finite_sample_ece(p_true)
    print(f"T = {clf.temperature:.2f}; ECE before {before:.3f}, after {after:.3f}; noise floor {noise_floor:.4f}")
    assert clf.temperature > 1
    # The drop must exceed what label noise could fake: 3x the finite-sample ECE of 5000 points.
    assert after < before - 3 * noise_floor
    # Temperature only rescales logits: the predicted class never changes.
    assert np.allclose(clf.logits(x), raw_logits / clf.temperature, rtol=1e-5, atol=1e-5)
    assert np.array_equal(clf.predict_class(x), raw_logits.argmax(1))


def test_save_load_keeps_probabilities_and_temperature(tmp_path, logistic_fit):
    clf, (x, _, _) = logistic_fit
    assert clf.temperature != 1.0  # calibrate() moved it, so the round trip is tested
    clf.save(tmp_path / "clf")
    loaded = astrobayes.load(tmp_path / "clf")
    assert isinstance(loaded, Classifier)
    assert loaded.temperature == clf.temperature
    assert np.array_equal(loaded.predict_proba(x[:1000]), clf.predict_proba(x[:1000]))
    assert Classifier.load(tmp_path / "clf").dims["n_classes"] == 2


def test_refit_resets_temperature_and_accepts_new_classes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    clf = Classifier(hidden=(8,))
    clf.fit(x, (x[:, 0] > 0).astype(int), epochs=2, progress=False)
    clf.network.log_temperature.fill_(0.5)
    clf.fit(x, np.digitize(x[:, 0], [-0.5, 0.5]), epochs=2, progress=False)
    assert clf.temperature == 1.0 and clf.dims["n_classes"] == 3


def test_bad_labels_and_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    labels = (x[:, 0] > 0).astype(int)
    clf = Classifier(hidden=(8,))
    with pytest.raises(ValueError, match="y must hold class labels"):
        clf.fit(x, labels - 1, epochs=1, progress=False)
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        clf.fit(x, labels + 0.5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="y holds label 2"):
        Classifier(hidden=(8,), n_classes=2).fit(x, labels * 2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least two classes"):
        clf.fit(x, np.zeros(100, dtype=int), epochs=1, progress=False)
    bad_x = x.copy()
    bad_x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"x has 1 row\(s\) with NaN"):
        clf.fit(bad_x, labels, epochs=1, progress=False)
    with pytest.raises(ValueError, match="n_classes"):
        Classifier(n_classes=1)
    with pytest.raises(RuntimeError, match="not been fitted"):
        clf.predict_proba(x)
    clf.fit(x, labels, epochs=1, progress=False)
    with pytest.raises(ValueError, match="y holds label 5"):
        clf.log_prob(np.array([5]), x[:1])
    with pytest.raises(ValueError, match="y_cal must hold class labels"):
        clf.calibrate(x, -labels)
    with pytest.raises(ValueError, match="mismatched lengths"):
        clf.calibrate(x[:50], labels)
    with pytest.raises(ValueError, match="x has 1 row"):
        clf.predict_proba(bad_x)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        clf.sample(0, x)


def test_labels_of_one_class_are_refused_whichever_class_it_is():
    # labels all 1 used to train silently (n_classes inferred as 2, class 0 never seen)
    x = np.random.default_rng(1).normal(size=(40, 2))
    for n_classes in (None, 3):
        with pytest.raises(ValueError, match="y holds only class 1; a classifier needs examples of at least two"):
            Classifier(hidden=(4,), n_classes=n_classes).fit(x, np.ones(40, dtype=int), epochs=1, progress=False)


@pytest.mark.parametrize("n_classes, labels, absent", [(3, [0, 1], r"\[2\] of the 3 classes"),   # declared, unseen
                                                       (None, [0, 2], r"\[1\] of the 3 classes")])  # a gap in labels
def test_a_class_without_training_examples_is_named_in_a_warning(n_classes, labels, absent):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2))
    y = np.asarray(labels)[rng.integers(0, len(labels), 60)]
    clf = Classifier(hidden=(4,), n_classes=n_classes)
    with pytest.warns(UserWarning, match=absent + r".*no training example.*almost zero probability"):
        clf.fit(x, y, epochs=1, progress=False)
    assert clf.dims["n_classes"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every class present: no warning
        Classifier(hidden=(4,), n_classes=2).fit(x, (x[:, 0] > 0).astype(int), epochs=1, progress=False)


# ---------------------------------------------------------------------------- metrics
def test_ece_of_perfectly_calibrated_constant_predictions_is_zero():
    # 70 % of the objects with p = 0.7 are class 1: accuracy 0.7 = confidence 0.7.
    labels = np.r_[np.ones(70, int), np.zeros(30, int)]
    assert expected_calibration_error(np.full(100, 0.7), labels) == pytest.approx(0, abs=1e-12)
    two_columns = np.tile([0.3, 0.7], (100, 1))
    assert expected_calibration_error(two_columns, labels) == pytest.approx(0, abs=1e-12)
    # Half the p = 0.9 objects right (gap 0.4), all p = 0.6 right (gap 0.4): ECE 0.4.
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]) == pytest.approx(0.4)


def test_reliability_curve_bins_by_top_label_confidence():
    curve = reliability_curve([[0.1, 0.9], [0.95, 0.05], [0.45, 0.55], [0.2, 0.8]], [1, 1, 0, 1], n_bins=10)
    assert curve.counts.sum() == 4
    assert curve.counts[9] == 2 and curve.accuracy[9] == 0.5 and curve.confidence[9] == pytest.approx(0.925)
    assert curve.counts[5] == 1 and curve.accuracy[5] == 0.0
    assert np.isnan(curve.accuracy[0]) and np.allclose(curve.bin_centres, np.arange(10) / 10 + 0.05)
    # Confidence exactly 1 lands in the last bin, not past it.
    assert reliability_curve([1.0], [1], n_bins=4).counts.tolist() == [0, 0, 0, 1]


def test_roc_auc_perfect_reversed_tied_and_random():
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    scores = np.arange(100.0)
    assert roc_auc(scores, labels) == 1.0
    assert roc_auc(-scores, labels) == 0.0
    assert roc_auc(np.ones(100), labels) == 0.5
    # Pairs (positive, negative): (.5,.5) tie → ½, (.5,.2), (.8,.5), (.8,.2) → 1: 3.5 / 4.
    assert roc_auc([0.5, 0.5, 0.2, 0.8], [1, 0, 0, 1]) == 0.875
    rng = np.random.default_rng(0)
    random_labels = rng.integers(0, 2, 4000)
    auc = roc_auc(rng.uniform(size=4000), random_labels)
    n1 = random_labels.sum()
    n0 = 4000 - n1
    # Mann–Whitney null: σ(AUC) = sqrt((n0 + n1 + 1) / (12 n0 n1)) ≈ 0.009; 4σ bound.
    assert abs(auc - 0.5) < 4 * np.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="binary"):
        roc_auc([0.1, 0.2], [0, 2])


def test_purity_efficiency_hand_computed():
    probs, labels = [0.9, 0.8, 0.7, 0.2], [1, 0, 1, 1]
    # Selected: the first three; 2 of them positive, 2 of the 3 positives selected.
    assert purity_efficiency(probs, labels) == pytest.approx((2 / 3, 2 / 3))
    curve = purity_efficiency(probs, labels, threshold=[0.1, 0.85, 0.95])
    assert np.allclose(curve.purity[:2], [0.75, 1.0]) and np.isnan(curve.purity[2])
    assert np.allclose(curve.efficiency, [1.0, 1 / 3, 0.0])
    three = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    assert purity_efficiency(three, [2, 0, 0], positive_class=2) == pytest.approx((0.5, 1.0))
    with pytest.raises(ValueError, match="positive_class"):
        purity_efficiency(three, [2, 0, 0], positive_class=3)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="probabilities must lie in"):
        expected_calibration_error([1.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error([[0.5, 0.9]], [0])
    with pytest.raises(ValueError, match="labels has 3 rows"):
        expected_calibration_error([0.2, 0.3], [1, 0, 1])
    with pytest.raises(ValueError, match="labels holds class 2"):
        expected_calibration_error([0.2, 0.3], [1, 2])
    with pytest.raises(ValueError, match="probabilities has 1 row"):
        expected_calibration_error([np.nan], [1])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0.2], [1], n_bins=0)


def test_plot_reliability_draws_bars(logistic_fit):
    import matplotlib

    matplotlib.use("Agg")
    clf, (x, _, labels) = logistic_fit
    ax = plot_reliability(clf.predict_proba(x[:2000]), labels[:2000])
    assert len(ax.patches) > 3
    assert any("ECE" in text.get_text() for text in ax.get_legend().get_texts())
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
