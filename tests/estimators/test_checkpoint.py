"""Checkpoints and resume of the one training loop: interrupted-and-resumed runs end bit-identical on the CPU."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from astrobayes.core import ModelFileError
from astrobayes.core.checkpoint import read_checkpoint, write_checkpoint
from astrobayes.estimators import (DeepEnsemble, Regressor, TrainingConfig, TrainingInterrupted, checkpointing,
                                   fit_module)

# A Regressor with dropout (torch's global generator), the plateau schedule, a validation split and early
# stopping: every piece of state a resumed run has to get back.
DATA_SEED, N_ROWS = 0, 300
OPTIONS = dict(epochs=25, batch_size=64, learning_rate=0.01, seed=3, patience=4, progress=False)
STEPS_PER_EPOCH = 5  # 270 training rows in batches of 64


def _data():
    rng = np.random.default_rng(DATA_SEED)
    x = rng.normal(size=(N_ROWS, 2)).astype(np.float32)
    return x, (x[:, :1] ** 2 + 0.1 * rng.normal(size=(N_ROWS, 1))).astype(np.float32)


def _regressor():
    return Regressor(hidden=(16, 16), dropout=0.1)


def _same_run(model, reference):
    a, b = model.network.state_dict(), reference.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "weights differ"
    h, r = model.history, reference.history
    assert (h.train_loss, h.val_loss, h.learning_rate) == (r.train_loss, r.val_loss, r.learning_rate)
    assert (h.best_epoch, h.stopped_early, h.n_train, h.n_val) == (r.best_epoch, r.stopped_early, r.n_train, r.n_val)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run."""
    model = _regressor()
    model.fit(*_data(), **OPTIONS)
    return model


class _sigterm_at_steps:
    """Send this process SIGTERM right after the given (1-based) optimiser steps; ``steps`` counts them all."""

    def __init__(self, *at_steps):
        self.at_steps, self.steps = set(at_steps), 0

    def _hook(self, optimizer, args, kwargs):
        self.steps += 1
        if self.steps in self.at_steps:
            signal.raise_signal(signal.SIGTERM)

    def __enter__(self):
        self.handle = register_optimizer_step_post_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_interrupted_twice_and_resumed_in_process_is_bit_identical(reference, tmp_path):
    path = tmp_path / "run"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    # The run stops early after epoch 21 (best: 17): one interrupt at a random step of epochs 2-10, one in
    # epochs 18-20, where the early-stopping counter is running
    assert reference.history.stopped_early and reference.history.epochs == 21
    rng = np.random.default_rng(11)
    first = int(rng.integers(STEPS_PER_EPOCH + 1, 10 * STEPS_PER_EPOCH + 1))
    with pytest.raises(TrainingInterrupted) as stop, _sigterm_at_steps(first):
        _regressor().fit(*_data(), checkpoint=path, **OPTIONS)
    assert stop.value.epoch == (first - 1) // STEPS_PER_EPOCH + 1  # the epoch of the signal is finished
    assert f"checkpoint kept at {path}.json" in str(stop.value) and "resume=True" in str(stop.value)
    assert isinstance(stop.value, KeyboardInterrupt)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert json.loads((tmp_path / "run.json").read_text())["epoch"] == stop.value.epoch

    second = (int(rng.integers(18, 21)) - stop.value.epoch - 1) * STEPS_PER_EPOCH + int(rng.integers(1, 6))
    with pytest.raises(TrainingInterrupted) as stop, _sigterm_at_steps(second):
        _regressor().fit(*_data(), checkpoint=path, resume=True, **OPTIONS)
    assert read_checkpoint(path)[0]["state"]["loop"]["stale"] > 0
    model = _regressor()
    model.fit(*_data(), checkpoint=path, resume=True, **OPTIONS)
    _same_run(model, reference)
    # exactly one pair is left: no temporary file, no superseded weights
    assert _files(tmp_path) == ["run.e%05d.safetensors" % reference.history.epochs, "run.json"]


def test_a_finished_run_is_restored_without_training(reference, tmp_path):
    model = _regressor()
    model.fit(*_data(), checkpoint=tmp_path / "run", **OPTIONS)
    _same_run(model, reference)
    again = _regressor()
    with _sigterm_at_steps() as counter:
        again.fit(*_data(), checkpoint=tmp_path / "run", resume=True, **OPTIONS)
    assert counter.steps == 0
    _same_run(again, reference)


def test_mismatched_or_missing_checkpoints_are_refused(tmp_path):
    x, y = _data()
    options = dict(OPTIONS, epochs=2)
    _regressor().fit(x, y, checkpoint=tmp_path / "run", **options)
    cases = [(dict(options, learning_rate=0.02), _regressor(), x, "other training options .learning_rate: 0.01 "),
             (options, Regressor(hidden=(8,), dropout=0.1), x, "another network .*head"),
             (options, _regressor(), x + 1, r"other training data \(data\[0\]: the same shape but other values"),
             (options, _regressor(), x[:-1], r"data\[0\].shape: \[300, 2\] in the checkpoint, \[299, 2\] now")]
    for changed, model, inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            model.fit(inputs, y[:len(inputs)], checkpoint=tmp_path / "run", resume=True, **changed)
    with pytest.raises(FileExistsError, match="resume=True"):  # a new run never overwrites a checkpoint
        _regressor().fit(x, y, checkpoint=tmp_path / "run", **options)
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*other.json"):
        _regressor().fit(x, y, checkpoint=tmp_path / "other", resume=True, **options)
    with pytest.raises(ValueError, match="checkpoint .* cannot be a file name"):  # lone surrogates
        _regressor().fit(x, y, checkpoint=tmp_path / "\udd49\uda3c", **options)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        TrainingConfig(resume=True)
    for bad, error in (({"checkpoint_every": 0}, ValueError), ({"resume": "yes", "checkpoint": "a"}, TypeError),
                       ({"checkpoint": 3}, TypeError), ({"checkpoint": "a", "distributed": True}, ValueError)):
        with pytest.raises(error, match=next(iter(bad))):
            TrainingConfig(**bad)


def test_damaged_checkpoints_are_a_model_file_error(tmp_path):
    x, y = _data()
    options = dict(OPTIONS, epochs=2)
    _regressor().fit(x, y, checkpoint=tmp_path / "run", **options)
    weights = tmp_path / "run.e00002.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    with pytest.raises(ModelFileError, match="run.e00002.safetensors does not match the checksum"):
        _regressor().fit(x, y, checkpoint=tmp_path / "run", resume=True, **options)
    weights.write_bytes(data)
    # found by fuzzing: a hand-edited JSON without one of Adam's moments gave a raw KeyError in the first step
    header = json.loads((tmp_path / "run.json").read_text())
    header["state"]["optimizer"]["state"]["__items__"][0][1].pop("exp_avg")  # parameter 0's moments
    (tmp_path / "run.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match=r"run.json could not be restored .*optimizer.state\[0\] is not Adam's"):
        _regressor().fit(x, y, checkpoint=tmp_path / "run", resume=True, **options)
    (tmp_path / "run.json").write_text('{"format": "astrobayes-checkpoint", "format_version": 1, "weights_file": '
                                       '"../../etc/passwd"}')
    with pytest.raises(ModelFileError, match="names no weights file of its own"):
        read_checkpoint(tmp_path / "run")
    (tmp_path / "run.json").write_text("[" * 100000)
    with pytest.raises(ModelFileError, match="run.json is not an astrobayes checkpoint"):
        read_checkpoint(tmp_path / "run.json")


def test_saves_are_atomic_and_clean_up_orphans(tmp_path):
    (tmp_path / "run.e00007.safetensors").write_bytes(b"left by a save killed before its JSON was written")
    write_checkpoint(tmp_path / "run", {"epoch": 1}, {"w": torch.ones(3)})
    write_checkpoint(tmp_path / "run", {"epoch": 2}, {"w": torch.full((3,), 2.0)})
    assert _files(tmp_path) == ["run.e00002.safetensors", "run.json"]
    header, tensors = read_checkpoint(tmp_path / "run")
    assert header["epoch"] == 2 and torch.equal(tensors["w"], torch.full((3,), 2.0))


def test_fit_module_resumes_a_bare_module_with_cosine_schedule(tmp_path):
    """fit_module itself (no estimator): a private generator, the cosine schedule, no validation split."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(120, 3, generator=g)
    y = x.sum(1, keepdim=True)

    def run(checkpoint=None, resume=False, interrupt_at=None):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.2), nn.Tanh(), nn.Linear(16, 1))
        calls = [0]

        def loss(xb, yb):
            calls[0] += 1
            if calls[0] == interrupt_at:
                signal.raise_signal(signal.SIGINT)
            return ((model(xb) - yb) ** 2).mean()

        config = TrainingConfig(epochs=12, batch_size=32, scheduler="cosine", validation_fraction=0.0, seed=1,
                                progress=False, checkpoint=checkpoint, resume=resume, checkpoint_every=5)
        return model, fit_module(model, loss, (x, y), config)

    model, history = run()
    with pytest.raises(TrainingInterrupted, match="SIGINT stopped training after epoch 7 of 12"):
        run(tmp_path / "bare", interrupt_at=26)  # 4 batches an epoch: in epoch 7, between two periodic saves
    resumed, resumed_history = run(tmp_path / "bare", resume=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))
    assert resumed_history.train_loss == history.train_loss and resumed_history.learning_rate == history.learning_rate


def test_an_ensemble_checkpoints_each_member(tmp_path):
    x, y = _data()
    options = dict(OPTIONS, epochs=4)
    reference = DeepEnsemble(Regressor(hidden=(8,)), n_members=2)
    reference.fit(x, y, **options)
    ensemble = DeepEnsemble(Regressor(hidden=(8,)), n_members=2)
    # member 0 takes 4 epochs of 5 steps: step 27 is in member 1's second epoch
    with pytest.raises(TrainingInterrupted, match=r"after epoch 2 of 4; checkpoint kept at .*run.member1.json"), \
            _sigterm_at_steps(27):
        ensemble.fit(x, y, checkpoint=tmp_path / "run", **options)
    ensemble = DeepEnsemble(Regressor(hidden=(8,)), n_members=2)
    ensemble.fit(x, y, checkpoint=tmp_path / "run", resume=True, **options)
    for member, expected in zip(ensemble.members, reference.members):
        _same_run(member, expected)


# ------------------------------------------------------------------ a real SIGTERM from outside
CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np, torch
    torch.set_num_threads({threads})
    sys.path.insert(0, {here!r})
    from test_checkpoint import OPTIONS, _data, _regressor
    from astrobayes.estimators import TrainingInterrupted

    model = _regressor()
    loss = model._loss
    def slow(*batch):  # time for the parent to pick its epoch; sleeping changes no number
        time.sleep(0.008)
        return loss(*batch)
    model._loss = slow
    try:
        model.fit(*_data(), checkpoint={path!r}, **OPTIONS)
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        sys.exit(130)
""")


def test_sigterm_from_outside_then_resume_is_bit_identical(reference, tmp_path):
    path = tmp_path / "run"
    kill_at = int(np.random.default_rng(20).integers(2, 10))  # a random epoch, fixed by the seed
    script = CHILD.format(threads=torch.get_num_threads(), here=os.path.dirname(__file__), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            # the JSON is replaced atomically: never seen half-written
            if (tmp_path / "run.json").exists() and json.loads((tmp_path / "run.json").read_text())["epoch"] >= kill_at:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGTERM)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("SIGTERM stopped training after epoch")
    stopped = read_checkpoint(path)[0]["epoch"]
    assert kill_at <= stopped < OPTIONS["epochs"] and not read_checkpoint(path)[0]["finished"]
    model = _regressor()
    model.fit(*_data(), checkpoint=path, resume=True, **OPTIONS)
    _same_run(model, reference)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
