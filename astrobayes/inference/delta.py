"""Learned deterministic maps y = f(x): the "delta functions" of a hierarchical model.

A network trained to reproduce an expensive model (stellar structure, a
power-spectrum code, an image renderer) is a point map, not a distribution.
Inside a Bayesian hierarchical model it enters as δ_D(y − f(x)): the
predicted observables are *exactly* f of the latent inputs, and all the
uncertainty stays in the parts of the model that are honest probability
distributions (Sellentin's "replace a BNN with an NN in a δ_D"). The
:class:`DeltaMap` here wraps such a network with named inputs and outputs and
counts how often it is run, so a hierarchical model can prove that it caches.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["DeltaMap"]


def _names(value, arg: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"{arg} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{arg} has duplicate names: {list(value)}")
    return list(value)


class DeltaMap:
    """A trained deterministic map from named inputs to named outputs.

    Parameters
    ----------
    model : Estimator, torch.nn.Module or callable
        An astrobayes estimator with ``predict`` (its mean prediction is the
        map, e.g. a :class:`~astrobayes.Regressor`), a torch module taking an
        (n, len(inputs)) float tensor, or any function of an (n, len(inputs))
        float64 tensor returning (n, len(outputs)) values.
    inputs : list of str
        Names of the quantities fed to the map, in the column order the model
        was trained on (e.g. ``["log_mass", "feh"]``).
    outputs : list of str
        Names of the map's output columns (e.g. ``["log_radius", "log_teff"]``).
    batch_size : int
        Rows per forward pass for a plain torch module (estimators batch
        themselves).

    Attributes
    ----------
    n_calls : int
        How many times the map has been evaluated (one per :meth:`__call__`).
    n_rows : int
        How many input rows it has processed in all.

    Examples
    --------
    >>> import torch
    >>> square = DeltaMap(lambda x: x**2, inputs=["x"], outputs=["x2"])
    >>> square({"x": torch.tensor([1.0, 2.0, 3.0])})["x2"]
    tensor([1., 4., 9.], dtype=torch.float64)
    >>> square.n_calls, square.n_rows
    (1, 3)
    """

    def __init__(self, model, inputs: Sequence[str], outputs: Sequence[str], batch_size: int = 65536):
        self.inputs = _names(inputs, "inputs")
        self.outputs = _names(outputs, "outputs")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        if hasattr(model, "predict") and hasattr(model, "network"):
            model._require_fitted()
            expected = model.dims.get("x_shape")
            if expected is not None and list(expected) != [len(self.inputs)]:
                raise ValueError(f"inputs names {len(self.inputs)} quantities but the estimator was trained on "
                                 f"x of per-row shape {tuple(expected)}")
            self._evaluate = self._from_estimator(model)
        elif isinstance(model, nn.Module):
            self._evaluate = self._from_module(model)
        elif callable(model):
            self._evaluate = model
        else:
            raise TypeError(f"model must be an estimator, a torch module or a function, got {type(model).__name__}")
        self.model = model
        self.n_calls = 0
        self.n_rows = 0

    @staticmethod
    def _from_estimator(estimator) -> Callable:
        def evaluate(x: torch.Tensor) -> torch.Tensor:
            return estimator.predict(x.to(torch.float32)).mean
        return evaluate

    def _from_module(self, module: nn.Module) -> Callable:
        def evaluate(x: torch.Tensor) -> torch.Tensor:
            parameter = next(iter(module.parameters()), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            dtype = parameter.dtype if parameter is not None else torch.float32
            pieces = []
            # evaluation mode: dropout or batch-norm statistics would make the map random
            was_training = module.training
            module.eval()
            try:
                with torch.no_grad():
                    for start in range(0, len(x), self.batch_size):
                        pieces.append(module(x[start:start + self.batch_size].to(device, dtype)).cpu())
            finally:
                module.train(was_training)
            return torch.cat(pieces) if pieces else torch.empty(0, len(self.outputs))
        return evaluate

    def __call__(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Evaluate the map on named inputs of any common shape S → named outputs of shape S (float64).

        Raises
        ------
        ValueError
            When an input is missing, the inputs' shapes differ, or the model
            returns the wrong number of columns or non-finite values.
        """
        missing = [name for name in self.inputs if name not in values]
        if missing:
            raise ValueError(f"the delta map needs inputs {self.inputs}; missing {missing}")
        tensors = [torch.as_tensor(values[name], dtype=torch.float64) for name in self.inputs]
        shape = tensors[0].shape
        if any(t.shape != shape for t in tensors):
            raise ValueError(f"inputs {self.inputs} have different shapes: {[tuple(t.shape) for t in tensors]}")
        rows = torch.stack([t.reshape(-1) for t in tensors], dim=1)
        with torch.no_grad():
            out = self._evaluate(rows)
        out = torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out).to("cpu", torch.float64)
        if out.ndim == 1 and len(self.outputs) == 1:
            out = out[:, None]
        if out.shape != (len(rows), len(self.outputs)):
            raise ValueError(f"the delta map's model returned shape {tuple(out.shape)} for {len(rows)} input rows; "
                             f"expected ({len(rows)}, {len(self.outputs)}) for outputs {self.outputs}")
        bad = ~torch.isfinite(out).all(dim=1)
        if bad.any():
            first = rows[bad][0].tolist()
            raise ValueError(f"the delta map returned NaN or inf for {int(bad.sum())} input row(s), e.g. "
                             + ", ".join(f"{n}={v:.6g}" for n, v in zip(self.inputs, first)))
        self.n_calls += 1
        self.n_rows += len(rows)
        return {name: out[:, j].reshape(shape) for j, name in enumerate(self.outputs)}

    def reset_counters(self) -> None:
        """Set ``n_calls`` and ``n_rows`` back to zero."""
        self.n_calls = 0
        self.n_rows = 0

    def __repr__(self) -> str:
        return f"DeltaMap({type(self.model).__name__}, inputs={self.inputs}, outputs={self.outputs})"
