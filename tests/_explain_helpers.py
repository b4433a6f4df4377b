"""Helpers shared by the tests of ``fastnn.explain``."""

import numpy as np

import fastnn
from fastnn import explain

METHODS = ["input_gradients", "gradient_x_input", "integrated_gradients"]
SIZES = [5, 7, 6, 3]  # two hidden layers
IG_STEPS = 8  # for parity with the reference: few steps keep the reference quick


def make_model(hidden="tanh", output="softmax", dtype=np.float64, sizes=SIZES, seed=0):
    """A model with random weights and biases (not trained: explanations don't care)."""
    model = fastnn.MLP(sizes, hidden=hidden, output=output, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for b in model.biases:
        b[...] = 0.3 * rng.standard_normal(b.shape)
    return model


def call(method, model, X, target=None, **kwargs):
    if method == "integrated_gradients":
        kwargs.setdefault("steps", IG_STEPS)
    return getattr(explain, method)(model, X, target=target, **kwargs)


def data(rng, n=6, n_in=SIZES[0], dtype=np.float64):
    return rng.standard_normal((n, n_in)).astype(dtype)
