"""Probabilistic classification with temperature scaling.

The network outputs K logits and is trained by minimising the cross-entropy,
which *is* the negative log-likelihood of a categorical distribution
p(label | x) = softmax(logits(x)) — for K = 2 the Bernoulli likelihood of
logistic regression. A binary problem is therefore a two-class softmax.

Networks trained this way are often over-confident on new data (Guo et al.
2017, "On Calibration of Modern Neural Networks", ICML). Temperature scaling
fixes that with one number fitted on held-out data: every probability output
uses softmax(logits / T), and T > 0 is chosen to minimise the held-out
negative log-likelihood. T leaves the ranking of classes (and hence the
predicted class and ROC curves) unchanged.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..core.seeding import make_generator
from ..core.serialization import register_estimator
from ..core.validation import as_tensor, check_same_length
from .base import Estimator, FeatureNetwork, Prediction
from .layers import hidden_sizes, make_mlp
from .training import History, TrainingConfig, fit_module, training_config

__all__ = ["Classifier"]


class _ClassifierNetwork(nn.Module):
    def __init__(self, features: FeatureNetwork, head: nn.Module):
        super().__init__()
        self.features = features
        self.head = head
        # log T as a buffer: saved with the weights, never touched by the main fit.
        self.register_buffer("log_temperature", torch.zeros(1))

    def forward(self, x) -> torch.Tensor:
        """Raw (uncalibrated) logits, (n, K)."""
        return self.head(self.features(x))

    def calibrated_logits(self, x) -> torch.Tensor:
        return self(x) * torch.exp(-self.log_temperature)


class _TemperatureScaling(nn.Module):
    """logits → logits / T with T = exp(log_temperature), the one parameter fitted by calibrate()."""

    def __init__(self):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(1))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * torch.exp(-self.log_temperature)


@register_estimator
class Classifier(Estimator):
    """Neural classifier returning calibrated class probabilities p(label | x).

    Parameters
    ----------
    hidden : sequence of int
        Widths of the hidden layers of the head.
    n_classes : int, optional
        Number of classes K; labels are 0..K-1. Inferred as max(label) + 1
        when None (pass it when the training set may miss the last class).
    embedding : nn.Module, optional
        Network in front of the head (e.g. :class:`CNNEmbedding` for stamps).
    activation : str
        ``"silu"``, ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"elu"``.
    dropout : float
        Dropout after every hidden layer (active only while training).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 2))
    >>> labels = (rng.uniform(size=2000) < 1 / (1 + np.exp(-3 * x[:, 0]))).astype(int)
    >>> clf = Classifier(hidden=(16,))
    >>> _ = clf.fit(x[:1500], labels[:1500], epochs=30, learning_rate=1e-2, progress=False)
    >>> _ = clf.calibrate(x[1500:], labels[1500:])
    >>> clf.predict_proba(np.array([[0.0, 0.0]])).shape
    (1, 2)
    >>> bool(0.8 < clf.temperature < 1.25)  # a well-trained model needs little correction
    True
    """

    _label_targets = True

    def __init__(self, hidden: Sequence[int] = (64, 64), n_classes: int | None = None,
                 embedding: nn.Module | None = None, activation: str = "silu", dropout: float = 0.0):
        super().__init__(embedding)
        self.hidden = hidden_sizes(hidden)
        if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(n_classes, int)
                                      or n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2 or None, got {n_classes!r}")
        self.n_classes = n_classes
        self.activation = activation
        self.dropout = float(dropout)
        make_mlp(1, self.hidden, 2, activation, dropout)  # validate the options now

    def get_config(self) -> dict:
        return {"hidden": list(self.hidden), "n_classes": self.n_classes, "embedding": self._embedding_config(),
                "activation": self.activation, "dropout": self.dropout}

    # ------------------------------------------------------------------ checks
    def _check_y(self, y, name: str = "y") -> torch.Tensor:
        labels = as_tensor(y, name, ndim=(1, 2), dtype=torch.long)
        if labels.ndim == 2:
            if labels.shape[1] != 1:
                raise ValueError(f"{name} must be one class label per object, got shape {tuple(labels.shape)}")
            labels = labels[:, 0]
        if (labels < 0).any():
            raise ValueError(f"{name} must hold class labels 0..K-1, got {int(labels.min())}")
        n_classes = self.dims.get("n_classes", self.n_classes)
        if n_classes is not None and (labels >= n_classes).any():
            raise ValueError(f"{name} holds label {int(labels.max())}, but this classifier has {n_classes} "
                             f"classes (labels 0..{n_classes - 1})")
        return labels

    def _infer_dims(self, x, y) -> dict:
        dims = super()._infer_dims(x, y)
        n_classes = self.n_classes if self.n_classes is not None else int(y.max()) + 1
        present = torch.unique(y).tolist()
        if n_classes < 2 or len(present) < 2:
            raise ValueError(f"y holds only class {present[0]}; a classifier needs examples of at least two classes "
                             "(pass n_classes if the training set misses some)")
        absent = sorted(set(range(n_classes)) - set(present))
        if absent:
            # cross-entropy then drives their logits down everywhere: the network learns "never this class"
            warnings.warn(f"class(es) {absent} of the {n_classes} classes (labels 0..{n_classes - 1}) have no "
                          "training example: the classifier will give them almost zero probability everywhere. "
                          "Add examples of them, or renumber the labels without them and pass a smaller n_classes",
                          UserWarning, stacklevel=3)
        dims["n_classes"] = n_classes
        return dims

    # ------------------------------------------------------------------ fitting
    def _build(self) -> nn.Module:
        features = FeatureNetwork(self.dims["x_features"], self._fresh_embedding())
        head = make_mlp(self._context_dim(), self.hidden, self.dims["n_classes"], self.activation, self.dropout)
        return _ClassifierNetwork(features, head)

    def _loss(self, x, labels):
        # Cross-entropy = mean negative log-likelihood of the categorical model.
        return F.cross_entropy(self.network(x), labels)

    def calibrate(self, x_cal, y_cal, config: TrainingConfig | None = None, **changes) -> History:
        """Fit the temperature T on held-out data by minimising its negative log-likelihood.

        The network is fixed; its logits on ``x_cal`` are computed once and
        the single parameter log T is optimised full-batch by the common
        training loop (200 epochs of Adam at learning rate 0.05, no
        validation split, no early stopping). Use data *not* seen in
        training, otherwise T inherits the training set's over-confidence.

        Parameters
        ----------
        x_cal : array-like or ``(values, mask)``
            Calibration inputs.
        y_cal : array-like (m,)
            Their class labels.
        config : TrainingConfig, optional
            Replaces the calibration defaults above; keyword arguments
            (``epochs=500``, ``device="cpu"``) change single fields of either.

        Returns
        -------
        History
            Calibration NLL per epoch; the result is ``self.temperature``.
        """
        self._require_fitted()
        inputs, labels = self._check_x(x_cal, "x_cal"), self._check_y(y_cal, "y_cal")
        check_same_length(x_cal=inputs, y_cal=labels)
        network = self.network
        logits = self._batched(lambda xb: network(xb), inputs)
        defaults = training_config(epochs=200, batch_size=len(labels), learning_rate=0.05,
                                   validation_fraction=0.0, patience=None, progress=False,
                                   device=self.device.type)
        config = training_config(config or defaults, **changes)
        scaling = _TemperatureScaling()
        history = fit_module(scaling, lambda lb, yb: F.cross_entropy(scaling(lb), yb), (logits, labels), config,
                             parameters=[scaling.log_temperature], description="calibrate temperature")
        with torch.no_grad():
            network.log_temperature.copy_(scaling.log_temperature.detach().to(network.log_temperature))
        return history

    @property
    def temperature(self) -> float:
        """The calibration temperature T (1 until :meth:`calibrate` is run)."""
        self._require_fitted()
        return float(torch.exp(self.network.log_temperature).item())

    def _extra_header(self) -> dict:
        header = super()._extra_header()
        header["temperature"] = self.temperature  # readable copy; the weights file holds the value used
        return header

    # ------------------------------------------------------------------ outputs
    def logits(self, x, calibrated: bool = True):
        """Logits per class, (m, K); divided by the temperature unless ``calibrated=False``."""
        self._require_fitted()
        inputs = self._check_x(x)
        network = self.network
        fn = network.calibrated_logits if calibrated else network
        return self._output(self._batched(fn, inputs), x)

    def _probabilities(self, inputs) -> torch.Tensor:
        network = self.network
        return self._batched(lambda xb: torch.softmax(network.calibrated_logits(xb), dim=-1), inputs)

    def predict_proba(self, x):
        """Calibrated class probabilities p(label = k | x), shape (m, K)."""
        self._require_fitted()
        return self._output(self._probabilities(self._check_x(x)), x)

    def predict(self, x) -> Prediction:
        """Probabilities (m, K) as the mean and the Bernoulli spread sqrt(p(1 − p)) of each class indicator."""
        self._require_fitted()
        probs = self._probabilities(self._check_x(x))
        return Prediction(self._output(probs, x), self._output(torch.sqrt(probs * (1 - probs)), x))

    def predict_class(self, x):
        """Most probable class label per row, shape (m,)."""
        self._require_fitted()
        network = self.network
        labels = self._batched(lambda xb: network(xb).argmax(dim=-1), self._check_x(x))
        return self._output(labels, x)

    def log_prob(self, y, x):
        """log p(label = y | x) per row, shape (m,); one row of x broadcasts against many labels."""
        self._require_fitted()
        inputs, labels = self._check_x(x), self._check_y(y)
        labels, inputs = self._broadcast(labels, inputs)
        network = self.network

        def fn(xb, yb):
            log_p = torch.log_softmax(network.calibrated_logits(xb), dim=-1)
            return log_p.gather(1, yb[:, None])[:, 0]

        return self._output(self._batched(fn, inputs, labels), x)

    def sample(self, n: int, x, seed: int | None = None):
        """``n`` class labels drawn from p(label | x) per row of x: shape (m, n)."""
        self._require_fitted()
        n = self._check_n(n)
        probs = self._probabilities(self._check_x(x))
        draws = torch.multinomial(probs, n, replacement=True, generator=make_generator(seed))
        return self._output(draws, x)

    def distribution(self, x) -> torch.distributions.Categorical:
        """p(label | x) as a torch ``Categorical`` with calibrated logits (torch in, torch out)."""
        self._require_fitted()
        network = self.network
        logits = self._batched(network.calibrated_logits, self._check_x(x))
        return torch.distributions.Categorical(logits=logits)
