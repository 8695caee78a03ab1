import math

import numpy as np
import pytest
import torch
from torch import nn

from astrobayes.core import cuda_available
from astrobayes.estimators.training import History, TrainingConfig, fit_module, training_config


def _line_data(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    return x, 3 * x + 0.1 * torch.randn(n, 1, generator=g)


def _mse(model):
    return lambda xb, yb: ((model(xb) - yb) ** 2).mean()


def test_fit_module_learns_and_reports_history():
    x, y = _line_data()
    torch.manual_seed(0)  # the initial weights: hypothesis's pytest plugin leaves torch's global generator elsewhere
    model = nn.Linear(1, 1)
    config = TrainingConfig(epochs=60, learning_rate=0.05, progress=False, patience=None)
    history = fit_module(model, _mse(model), (x, y), config)
    assert isinstance(history, History)
    assert history.epochs == 60 and len(history.val_loss) == 60 and history.n_val == 40
    assert model.weight.item() == pytest.approx(3.0, abs=0.05)
    # The noise variance 0.01 is the floor of the MSE; within 3x of it means converged.
    assert history.best_val_loss < 0.03
    assert history.samples_per_second > 0


def test_cpu_training_is_reproducible_with_a_seed():
    x, y = _line_data()
    weights = []
    for _ in range(2):
        torch.manual_seed(123)  # irrelevant: the config's seed decides
        model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        history = fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=5, seed=7, progress=False))
        weights.append((torch.cat([p.flatten() for p in model.parameters()]), history.train_loss))
    assert torch.equal(weights[0][0], weights[1][0])
    assert weights[0][1] == weights[1][1]


def test_early_stopping_restores_the_best_weights():
    # A wide net on 30 noisy points with explicit validation data over-fits:
    # the validation loss rises after its minimum, so training stops early and
    # the weights at the minimum must come back.
    g = torch.Generator().manual_seed(3)
    x, xv = torch.randn(30, 1, generator=g), torch.randn(200, 1, generator=g)
    y, yv = torch.randn(30, 1, generator=g), torch.randn(200, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
    config = TrainingConfig(epochs=2000, learning_rate=3e-3, patience=25, scheduler="none", progress=False,
                            batch_size=30, clip_grad_norm=None)
    history = fit_module(model, _mse(model), (x, y), config, validation_data=(xv, yv))
    assert history.stopped_early and history.epochs < 2000
    assert history.best_epoch == int(np.argmin(history.val_loss))
    assert history.epochs == history.best_epoch + 1 + 25
    with torch.no_grad():
        restored = ((model(xv) - yv) ** 2).mean().item()
    assert restored == pytest.approx(history.best_val_loss, rel=1e-5)
    assert restored < history.val_loss[-1]


@pytest.mark.parametrize("scheduler", ["plateau", "cosine", "none"])
def test_schedulers(scheduler):
    x, y = _line_data(100)
    model = nn.Linear(1, 1)
    history = fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=10, scheduler=scheduler, progress=False))
    if scheduler == "cosine":
        assert history.learning_rate[-1] < history.learning_rate[0]
    if scheduler == "none":
        assert len(set(history.learning_rate)) == 1


def test_non_finite_loss_is_a_clear_error():
    x, y = _line_data(50)
    model = nn.Linear(1, 1)
    with pytest.raises(RuntimeError, match="loss became nan at epoch 1"):
        fit_module(model, lambda xb, yb: model(xb).sum() * math.nan, (x, y), TrainingConfig(progress=False))


def test_config_validation():
    with pytest.raises(TypeError, match="unknown training option"):
        training_config(epoch=3)
    for bad in ({"epochs": 0}, {"batch_size": -1}, {"learning_rate": 0.0}, {"validation_fraction": 1.0},
                {"optimizer": "sgd"}, {"scheduler": "step"}, {"patience": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainingConfig(**bad)
    with pytest.raises(TypeError, match="TrainingConfig"):
        training_config({"epochs": 3})


def test_history_plot():
    import matplotlib

    matplotlib.use("Agg")
    history = History(train_loss=[3.0, 2.0, 1.5], val_loss=[3.1, 2.2, 2.0], best_epoch=2)
    ax = history.plot()
    assert len(ax.lines) == 3


def test_only_selected_parameters_are_trained():
    x, y = _line_data(100)
    model = nn.Linear(1, 1)
    bias_before = model.bias.detach().clone()
    fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=3, progress=False), parameters=[model.weight])
    assert torch.equal(model.bias.detach(), bias_before)


@pytest.mark.gpu
def test_training_runs_on_cuda_with_mixed_precision():
    assert cuda_available()
    x, y = _line_data(2000)
    model = nn.Sequential(nn.Linear(1, 32), nn.SiLU(), nn.Linear(32, 1))
    history = fit_module(model, _mse(model), (x, y),
                         TrainingConfig(epochs=40, device="cuda", mixed_precision=True, progress=False))
    assert history.device.startswith("cuda")
    assert next(model.parameters()).device.type == "cuda"
    assert history.best_val_loss < 0.05


def test_explicit_validation_rows_replace_the_random_split():
    """fit(validation=(x, y)) trains on every row of x and validates on the given rows only."""
    from astrobayes.estimators import Regressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = x[:, :1] + 0.1 * rng.normal(size=(300, 1))
    x_val, y_val = x[:50] + 5.0, y[:50] + 5.0  # far from the training rows: a large validation loss
    model = Regressor(hidden=(8,))
    history = model.fit(x, y, validation=(x_val, y_val), epochs=3, patience=None, seed=0, progress=False)
    assert history.n_train == 300 and history.n_val == 50
    plain = Regressor(hidden=(8,)).fit(x, y, epochs=3, patience=None, seed=0, progress=False)
    assert plain.n_val == 30 and plain.n_train == 270  # the default 10 % split
    assert min(history.val_loss) > 2 * max(plain.val_loss)
    with pytest.raises(TypeError, match="validation"):
        model.fit(x, y, validation=x_val, epochs=1, progress=False)
    with pytest.raises(ValueError):
        model.fit(x, y, validation=(x_val, y_val[:10]), epochs=1, progress=False)


# ------------------------------------------------------------------ too little data
def test_one_row_or_none_is_refused():
    for n in (0, 1):
        x, y = torch.zeros(n, 1), torch.zeros(n, 1)
        model = nn.Linear(1, 1)
        with pytest.raises(ValueError, match=f"the training data have {n} rows?; a fit needs at least 2"):
            fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=1, progress=False))


def test_too_few_rows_for_a_validation_split_warn_and_train_on_all():
    x, y = _line_data(7)
    model = nn.Linear(1, 1)
    with pytest.warns(UserWarning, match="only 7 rows.*no validation, so early stopping and best-weights restore "
                                         "are off"):
        history = fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=3, progress=False))
    assert history.n_train == 7 and history.n_val == 0 and history.val_loss == []
    import warnings

    with warnings.catch_warnings():  # asking for no split is not warned about
        warnings.simplefilter("error")
        fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=1, validation_fraction=0.0, progress=False))


def test_a_split_or_validation_data_that_leave_nothing_are_refused():
    x, y = _line_data(10)
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="validation_fraction=0.9 of 10 rows leaves 1 for training"):
        fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=1, validation_fraction=0.9, progress=False))
    with pytest.raises(ValueError, match="the validation data have no rows"):
        fit_module(model, _mse(model), (x, y), TrainingConfig(epochs=1, progress=False),
                   validation_data=(x[:0], y[:0]))


def test_an_estimator_fit_on_one_row_is_refused():
    from astrobayes.estimators import Regressor

    with pytest.raises(ValueError, match=r"fit Regressor: .*1 row"):
        Regressor(hidden=(4,)).fit(np.ones((1, 2)), np.ones((1, 1)), epochs=1, progress=False)
