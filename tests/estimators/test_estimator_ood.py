"""The out-of-distribution reference every estimator fits after training, saves and uses (issue 22).

The inputs are x ~ N(0, I₃); the network summarises them through a learned MLP
embedding, so the reference lives in a space the training shaped. Tolerances
are binomial bands derived beside each test.
"""
import json

import numpy as np
import pytest
import torch

import astrobayes
from astrobayes.core.serialization import ModelFileError, model_paths, read_model, write_model
from astrobayes.estimators import (Classifier, DeepEnsemble, MCDropout, MixtureDensityNetwork, MLPEmbedding,
                                   OODReference, Regressor)
from astrobayes.estimators.ood import MIN_OOD_ROWS

N_TRAIN, N_FRESH, DIM = 4000, 4000, 3
_HEADER_KEYS = {"format", "format_version", "astrobayes_version", "torch_version", "created", "class", "config",
                "weights_file", "weights_sha256"}


def _simulate(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM))
    y = x @ np.array([[1.0], [-0.5], [0.25]]) + 0.3 * rng.normal(size=(n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def _regressor() -> Regressor:
    return Regressor(hidden=(16,), embedding=MLPEmbedding(DIM, output_dim=4, hidden=(16,)))


@pytest.fixture(scope="module")
def fitted():
    x, y = _simulate(N_TRAIN, seed=0)
    model = _regressor()
    model.fit(x, y, epochs=20, batch_size=256, progress=False, seed=0)
    return model


def _write_as_before_issue_22(path) -> None:
    """Rewrite a saved model as astrobayes wrote it before OOD references: no ``ood`` tensors or header entries."""
    header, tensors = read_model(path)

    def strip(entry: dict) -> dict:
        entry = {k: v for k, v in entry.items() if k not in ("ood", "ood_note")}
        if "members" in entry:
            entry["members"] = [strip(member) for member in entry["members"]]
        return entry

    extra = {k: v for k, v in strip(header).items() if k not in _HEADER_KEYS}
    weights = {k: t for k, t in tensors.items() if not (k.startswith("ood.") or ".ood." in k)}
    write_model(path, header["class"], header["config"], weights, extra)


# ---------------------------------------------------------------- fitting and files
def test_fit_builds_a_reference_on_the_context_vectors(fitted):
    reference = fitted.ood
    assert isinstance(reference, OODReference) and fitted.ood_note == ""
    # context = the embedding's output (4 numbers); the 400 validation rows (10 %, >= MIN_HELD_OUT), never trained on, calibrate
    assert (reference.n_features, reference.n_calibration, reference.n_reference) == (4, 400, 3600)
    assert reference.get_config()["calibration"] == "held out"


def test_reference_is_saved_and_restored_bit_identically(fitted, tmp_path):
    path = tmp_path / "reg"
    fitted.save(path)
    header = json.loads(model_paths(path)[1].read_text())
    assert header["ood"]["n_calibration"] == 400 and "0.99" in header["ood"]["calibration_score_quantiles"]
    loaded = astrobayes.load(path)
    before, after = fitted.ood.state_dict(), loaded.ood.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert loaded.ood.get_config() == fitted.ood.get_config()
    x, _ = _simulate(200, seed=3)
    assert np.array_equal(loaded.ood_p_value(x), fitted.ood_p_value(x))


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_fresh_in_distribution_inputs_are_flagged_at_rate_alpha(fitted, alpha):
    x, _ = _simulate(N_FRESH, seed=1)
    flagged = np.mean(fitted.ood_p_value(x) <= alpha)
    # Conformal p-values: given the n_cal calibration rows, the flag rate of fresh objects is random around α with
    # variance ≈ α(1−α)/n_cal (the Beta-distributed coverage of a calibration quantile), and the N_FRESH objects
    # add binomial variance α(1−α)/N_FRESH; 3σ of both, plus the conformal slack 1/(n_cal + 1) (P(p ≤ α) lies
    # between α − 1/(n_cal + 1) and α). The calibration rows were trained on: this also checks that a small
    # network trained with early stopping does not pull its own training rows together in context space.
    n_cal = fitted.ood.n_calibration
    band = 3 * np.sqrt(alpha * (1 - alpha) * (1 / N_FRESH + 1 / n_cal)) + 1 / (n_cal + 1)
    assert abs(flagged - alpha) <= band, (flagged, alpha, band)


def test_inputs_far_outside_the_training_set_are_flagged(fitted):
    x, _ = _simulate(500, seed=2)
    x[:, 0] = 12.0  # 12σ off in one input: every object far outside the training cloud
    assert (fitted.ood_p_value(x) <= 0.01).all()
    # torch in, torch out; one object
    p = fitted.ood_p_value(torch.as_tensor(x[:3]))
    assert isinstance(p, torch.Tensor) and p.dtype == torch.float64 and p.shape == (3,)


def test_a_model_file_written_before_ood_references_still_loads(fitted, tmp_path):
    path = tmp_path / "old"
    fitted.save(path)
    _write_as_before_issue_22(path)
    old = astrobayes.load(path)
    x, _ = _simulate(20, seed=4)
    assert np.array_equal(old.predict(x).mean, fitted.predict(x).mean)
    assert old.ood is None and "without out-of-distribution references" in old.ood_note
    with pytest.raises(RuntimeError, match=r"ood_p_value is not available: .*call fit_ood\(x\)"):
        old.ood_p_value(x)
    # the fix the message names: fit a reference on in-distribution inputs and save again
    old.fit_ood(_simulate(1000, seed=5)[0])
    old.save(tmp_path / "renewed")
    assert astrobayes.load(tmp_path / "renewed").ood.n_calibration == 200


def test_damaged_ood_entries_are_model_file_errors(fitted, tmp_path):
    path = tmp_path / "damaged"
    fitted.save(path)
    header, tensors = read_model(path)
    extra = {k: v for k, v in header.items() if k not in _HEADER_KEYS}
    write_model(path, header["class"], header["config"], tensors, dict(extra, ood="yes"))
    with pytest.raises(ModelFileError, match="the header's 'ood' entry must be a dict .* got str"):
        astrobayes.load(path)
    write_model(path, header["class"], header["config"], tensors, dict(extra, ood=None))
    with pytest.raises(ModelFileError, match="header does not describe"):
        astrobayes.load(path)
    no_mean = {k: t for k, t in tensors.items() if k != "ood.mean"}
    write_model(path, header["class"], header["config"], no_mean, extra)
    with pytest.raises(ModelFileError, match=r"lack \['mean'\]"):
        astrobayes.load(path)
    # no reference and an empty reason: the error still says what to do
    weights = {k: t for k, t in tensors.items() if not k.startswith("ood.")}
    write_model(path, header["class"], header["config"], weights, dict(extra, ood=None, ood_note=""))
    with pytest.raises(RuntimeError, match=r"does not say why: call fit_ood\(x\)"):
        astrobayes.load(path).ood_p_value(np.zeros((2, DIM)))


def test_ood_false_and_too_few_rows_leave_a_note():
    x, y = _simulate(1000, seed=6)
    model = Regressor(hidden=(8,))
    model.fit(x, y, epochs=2, progress=False, ood=False)
    assert model.ood is None and "ood=False" in model.ood_note
    with pytest.raises(RuntimeError, match="ood=False"):
        model.ood_p_value(x)
    assert model.fit_ood(x[: MIN_OOD_ROWS - 1]) is None and f"fewer than the {MIN_OOD_ROWS}" in model.ood_note
    assert model.fit_ood(x, max_rows=500).n_calibration == 100 and model.ood_note == ""
    small = Regressor(hidden=(8,))
    small.fit(x[:200], y[:200], epochs=2, progress=False)
    assert small.ood is None and "200 row(s)" in small.ood_note
    with pytest.raises(TypeError, match="ood must be True, False or one of"):
        small.fit(x, y, epochs=1, progress=False, ood="no")
    with pytest.raises(RuntimeError, match="not been fitted"):
        Regressor().ood_p_value(x)


def test_the_training_subsample_is_bounded_and_seeded():
    x, y = _simulate(1000, seed=7)
    model = Regressor(hidden=(8,))
    model.fit(x, y, epochs=1, progress=False)
    first = model.fit_ood(x, max_rows=400, seed=3)
    assert first.meta["n_fit"] == 400
    again = model.fit_ood(x, max_rows=400, seed=3)
    assert torch.equal(first.reference, again.reference)
    with pytest.raises(ValueError, match="max_rows"):
        model.fit_ood(x, max_rows=10)


def test_fit_ood_refuses_too_few_calibration_rows_and_odd_seeds():
    x, y = _simulate(1000, seed=11)
    model = Regressor(hidden=(8,))
    model.fit(x, y, epochs=1, progress=False)
    before = model.ood
    # an explicit calibration set too small to calibrate on was silently replaced by 20 % of x
    with pytest.raises(ValueError, match=r"calibration has 50 row\(s\); at least 100"):
        model.fit_ood(x, calibration=x[:50])
    for seed in ("a", 1.5, -1, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer or None"):
            model.fit_ood(x, seed=seed)
    assert model.ood is before


def test_a_refit_refused_for_bad_input_leaves_the_fitted_model_as_it_was():
    x, y = _simulate(1000, seed=12)
    model = Regressor(hidden=(8,))
    model.fit(x, y, epochs=3, progress=False)
    reference, mean = model.ood, model.predict(x[:20]).mean
    # a bad validation pair used to be found only after a fresh, untrained network had replaced the trained one
    with pytest.raises(ValueError, match="x_val has 10, y_val has 9"):
        model.fit(x, y, epochs=1, progress=False, validation=(x[:10], y[:9]))
    with pytest.raises(ValueError, match="y has 10"):
        model.fit(x, y[:10], epochs=1, progress=False)
    assert np.array_equal(model.predict(x[:20]).mean, mean)
    assert model.ood is reference and model.ood_note == "" and model.dims["x_shape"] == [DIM]


# ---------------------------------------------------------------- one pass: the answer and its p-value
def test_recorded_contexts_give_the_p_values_of_a_separate_pass():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(1500, DIM)).astype(np.float32)
    labels = (x[:, 0] + 0.5 * rng.normal(size=1500) > 0).astype(int)
    classifier = Classifier(hidden=(8,), embedding=MLPEmbedding(DIM, output_dim=4, hidden=(8,)))
    classifier.fit(x, labels, epochs=3, progress=False)
    fresh = rng.normal(size=(300, DIM)).astype(np.float32)
    classifier.prediction_batch_size = 64  # several chunks go through the hook
    with classifier.recording_context() as recorded:
        probs = classifier.predict_proba(fresh)
    assert np.array_equal(probs, classifier.predict_proba(fresh))
    assert np.allclose(recorded.p_value(), classifier.ood_p_value(fresh), rtol=0, atol=1e-12)


def test_recording_every_kth_row_of_a_repeated_grid():
    """A density on a grid of y sees each object once per grid point: keep one context per object."""
    x, y = _simulate(1000, seed=9)
    mdn = MixtureDensityNetwork(n_components=2, hidden=(8,))
    mdn.fit(x, y, epochs=2, progress=False)
    mdn.prediction_batch_size = 100  # chunks that are not a multiple of the grid
    fresh = x[:30]
    grid = np.linspace(-3, 3, 7, dtype=np.float32)[:, None]
    with mdn.recording_context(every=len(grid), limit=len(fresh)) as recorded:
        mdn.log_prob(np.tile(grid, (len(fresh), 1)), np.repeat(fresh, len(grid), axis=0))
    assert np.allclose(recorded.p_value(), mdn.ood_p_value(fresh), rtol=0, atol=1e-12)


def test_mixtures_use_their_first_member(tmp_path):
    x, y = _simulate(800, seed=10)
    ensemble = DeepEnsemble(Regressor(hidden=(8,)), n_members=2)
    ensemble.fit(x, y, epochs=2, progress=False)
    assert ensemble.ood is ensemble.members[0].ood is not None and ensemble.members[1].ood is None
    fresh = x[:50]
    assert np.array_equal(ensemble.ood_p_value(fresh), ensemble.members[0].ood_p_value(fresh))
    ensemble.save(tmp_path / "ensemble")
    loaded = astrobayes.load(tmp_path / "ensemble")
    assert np.array_equal(loaded.ood_p_value(fresh), ensemble.ood_p_value(fresh))
    _write_as_before_issue_22(tmp_path / "ensemble")
    assert astrobayes.load(tmp_path / "ensemble").ood is None

    dropout = MCDropout(Regressor(hidden=(8,), dropout=0.2), n_passes=4)
    dropout.fit(x, y, epochs=2, progress=False)
    # the T passes run the same network: limit keeps the first pass's contexts (the embedding has no dropout)
    with dropout.recording_context(limit=len(fresh)) as recorded:
        dropout.member_predictions(fresh)
    assert np.allclose(recorded.p_value(), dropout.ood_p_value(fresh), rtol=0, atol=1e-12)
    dropout.save(tmp_path / "dropout")
    assert np.array_equal(astrobayes.load(tmp_path / "dropout").ood_p_value(fresh), dropout.ood_p_value(fresh))


def test_recordings_in_two_threads_keep_their_own_rows(fitted):
    """Dask's threaded workers share one model: a recording keeps only its own thread's network calls."""
    import threading

    near, _ = _simulate(300, seed=5)
    far = near + 40.0
    barrier = threading.Barrier(2)
    results = {}

    def work(name, x):
        with fitted.recording_context() as recorder:
            for start in range(0, len(x), 50):
                barrier.wait()  # the two threads' batches interleave inside both blocks
                fitted.predict(x[start:start + 50])
        results[name] = recorder.p_value()

    threads = [threading.Thread(target=work, args=(name, x)) for name, x in (("near", near), ("far", far))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(results["near"], fitted.ood_p_value(near))
    np.testing.assert_array_equal(results["far"], fitted.ood_p_value(far))
    assert (results["far"] <= 0.01).all()
