"""Gradients in inference behaviour (``model.eval()``) match finite differences.

In inference, batch normalization is a fixed affine map per unit (running
statistics), and dropout is off; the gradients of every parameter, batch
normalization's ``gamma`` and ``beta`` included, are those of that function.
"""

import numpy as np
import pytest

import fastnn
from fastnn.kernels.layout import param_views


def _numeric_gradient(model, X, Y, flat, eps=1e-6):
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = model.loss(X, Y)
        flat[i] = old - eps
        minus = model.loss(X, Y)
        flat[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_eval_gradients_with_batch_norm_match_finite_differences(hidden):
    rng = np.random.default_rng(0)
    model = fastnn.MLP([3, 5, 4, 2], hidden=hidden, loss="mse", batch_norm=True,
                       dropout=0.3, dtype="float64", seed=0)  # fmt: skip
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    for _ in range(3):  # running statistics away from (0, 1), gamma away from 1
        model.train_step(X, Y)
    model.eval()
    loss, dW, db = model.gradients(X, Y)
    assert loss == model.loss(X, Y)
    numeric = _numeric_gradient(model, X, Y, model.params)
    analytic = model.grads.copy()  # laid out like params: W, b, gamma, beta
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    weights, biases = param_views(model.grads, model.layout)
    for returned, kept in zip(dW + db, weights + biases, strict=True):
        np.testing.assert_array_equal(returned, kept)
