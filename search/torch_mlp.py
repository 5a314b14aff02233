"""Torch multilayer perceptrons behind the scikit-learn estimator interface.

They fit into the same pipelines, cross-validation and parity checks as the scikit-learn
families; ``inference_module()`` is what ``torch.onnx`` exports. The network is a fragment
graph (``fragments``): ``linear_act`` blocks and an ``mlp_head``, built by
``fragments.build``, so a trial names its architecture and a search can predict its latency
from the fragments' measured costs before training it. Dropout is a training detail that
inference drops, so it wraps the hidden blocks during training and is not in the graph. The exported module computes
the same outputs as a scikit-learn classifier converted with ZipMap off (``label`` and
``probabilities``) or regressor (``variable``), so every model is read back the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from torch import nn


def mlp_architecture(n_in: int, n_out: int, n_layers: int, width: int):
    """The network as a fragment graph: ``n_layers`` ReLU ``linear_act`` blocks of ``width``
    and a head giving ``n_out`` logits (or values)."""
    from fragments.blocks import LinearAct, MLPHead
    from fragments.graph import chain

    return chain([LinearAct(out=width) for _ in range(n_layers)] + [MLPHead(out=n_out, softmax=False)],
                 (n_in,))


def _network(n_in: int, n_out: int, n_layers: int, width: int, dropout: float, seed: int):
    """(trainable module, its architecture graph)."""
    from fragments.build import build

    graph = mlp_architecture(n_in, n_out, n_layers, width)
    body = build(graph, seed=seed)
    if dropout > 0:
        for name, module in list(body.nodes.items()):
            if int(name) != body.output:
                body.nodes[name] = nn.Sequential(module, nn.Dropout(dropout))
    return body, graph


class _ClassifierOutput(nn.Module):
    def __init__(self, body: nn.Module, classes: np.ndarray):
        super().__init__()
        self.body = body
        self.register_buffer("classes", torch.as_tensor(classes, dtype=torch.int64))

    def forward(self, x):
        probabilities = torch.softmax(self.body(x), dim=1)
        return self.classes[torch.argmax(probabilities, dim=1)], probabilities


class _RegressorOutput(nn.Module):
    def __init__(self, body: nn.Module, mean: float, std: float):
        super().__init__()
        self.body = body
        self.mean, self.std = mean, std

    def forward(self, x):
        return self.body(x) * self.std + self.mean


class _TorchMLP(BaseEstimator):
    def __init__(self, n_layers: int = 2, width: int = 64, dropout: float = 0.0,
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, epochs: int = 50,
                 batch_size: int = 64, random_state: int = 0, n_threads: int | None = None):
        self.n_layers = n_layers
        self.width = width
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_threads = n_threads

    def _train(self, X, target: torch.Tensor, n_out: int, loss_fn) -> nn.Module:
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.n_features_in_ = X.shape[1]
        threads_before = torch.get_num_threads()
        if self.n_threads:
            torch.set_num_threads(self.n_threads)
        try:
            # A private RNG stream: the seed decides initialisation, dropout and batch order
            # without touching the caller's torch random state.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.random_state)
                body, self.architecture_ = _network(X.shape[1], n_out, self.n_layers, self.width,
                                                    self.dropout, self.random_state)
                optimizer = torch.optim.Adam(body.parameters(), lr=self.learning_rate,
                                             weight_decay=self.weight_decay)
                body.train()
                for _ in range(self.epochs):
                    for batch in torch.randperm(len(X)).split(self.batch_size):
                        optimizer.zero_grad()
                        loss_fn(body(X[batch]), target[batch]).backward()
                        optimizer.step()
        finally:
            torch.set_num_threads(threads_before)
        return body.eval()

    def _forward(self, X):
        with torch.no_grad():
            return self.module_(torch.as_tensor(np.asarray(X, dtype=np.float32)))

    def inference_module(self) -> nn.Module:
        return self.module_


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):
    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        body = self._train(X, torch.as_tensor(codes, dtype=torch.int64), len(self.classes_),
                           nn.CrossEntropyLoss())
        self.module_ = _ClassifierOutput(body, self.classes_).eval()
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self._forward(X)[1].numpy()

    def predict(self, X) -> np.ndarray:
        return self._forward(X)[0].numpy()


class TorchMLPRegressor(RegressorMixin, _TorchMLP):
    def fit(self, X, y):
        y = np.asarray(y, dtype=np.float64)
        # Training on a standardised target keeps one learning rate sensible for any scale;
        # the exported module undoes it, so it predicts in the target's units.
        mean, std = float(y.mean()), float(y.std()) or 1.0
        target = torch.as_tensor(((y - mean) / std).astype(np.float32)).unsqueeze(1)
        body = self._train(X, target, 1, nn.MSELoss())
        self.module_ = _RegressorOutput(body, mean, std).eval()
        return self

    def predict(self, X) -> np.ndarray:
        return self._forward(X).numpy().ravel()
