"""Helpers shared by the tests of ``fastnn.sklearn`` (which import it after
``pytest.importorskip("sklearn")``)."""

import numpy as np
from sklearn import neural_network

from fastnn.sklearn import MLPClassifier, MLPRegressor


def _data(kind, n=40, n_features=4, seed=0):
    """X and y for one kind of target: binary, multiclass, multilabel, regression
    (one output) or regression2 (two outputs)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features))
    score = X @ rng.standard_normal((n_features, 3))
    if kind == "binary":
        y = (score[:, 0] > 0).astype(int)
    elif kind == "multiclass":
        y = score.argmax(axis=1)
    elif kind == "multilabel":
        y = (score > 0).astype(int)
    elif kind == "regression":
        y = score[:, 0]
    else:
        y = score[:, :2]
    return X, y


def _estimator(kind, **params):
    cls = MLPRegressor if kind.startswith("regression") else MLPClassifier
    return cls(**{"hidden_layer_sizes": (3,), "random_state": 0, **params})


def _partial_fit(est, X, y, kind):
    if kind in ("binary", "multiclass"):
        return est.partial_fit(X, y, classes=np.unique(y))
    return est.partial_fit(X, y)


KINDS = ["binary", "multiclass", "multilabel", "regression", "regression2"]


def _sklearn_twin(est):
    """scikit-learn's estimator with the same parameters."""
    cls = getattr(neural_network, type(est).__name__)
    params = est.get_params()
    params.pop("class_weight", None)
    return cls(**params)
