"""Helpers shared by several test files: a small model with every kind of state, its
data, and state comparisons."""

import numpy as np

import fastnn

# -- a model with batch normalization and dropout, and data for it ------------------

N, N_IN, N_OUT = 6, 4, 3
_rng = np.random.default_rng(7)
X = _rng.standard_normal((N, N_IN))
Y = {
    "mse": _rng.standard_normal((N, N_OUT)),
    "bce": _rng.random((N, N_OUT)),
    "cross_entropy": np.array([0, 1, 2, 0, 1, 2]),
}
ONE_HOT = np.eye(N_OUT)[Y["cross_entropy"]]
NAN, INF = float("nan"), float("inf")
MSE, BCE, CE = "mse", "bce", "cross_entropy"


def build(loss="cross_entropy", optimizer=None, dtype="float64"):
    """A model with batch normalization and dropout, two Adam steps in, so that
    every part of its state (parameters, moments, step count, running statistics,
    shuffling RNG) is non-trivial."""
    model = fastnn.MLP(
        [N_IN, 5, N_OUT], hidden="tanh", loss=loss, dtype=dtype, seed=0,
        optimizer=optimizer or fastnn.Adam(lr=0.01), dropout=0.2, batch_norm=True,
    )  # fmt: skip
    for _ in range(2):
        model.train_step(X, Y[loss])
    return model


def assert_same_state(model, twin):
    """Everything a call may change, compared bit for bit."""
    np.testing.assert_array_equal(model.params, twin.params)
    np.testing.assert_array_equal(model.optimizer.state, twin.optimizer.state)
    np.testing.assert_array_equal(model.optimizer.step, twin.optimizer.step)
    np.testing.assert_array_equal(model.optimizer.hyper, twin.optimizer.hyper)
    np.testing.assert_array_equal(model.running_stats, twin.running_stats)
    assert model._rng.bit_generator.state == twin._rng.bit_generator.state
    assert model.training == twin.training


def put(array, index, value, dtype=float):
    """A copy of ``array`` as ``dtype`` with ``array[index] = value``."""
    array = np.array(array, dtype=dtype)
    array[index] = value
    return array


def snapshot(model):
    """Copies of everything a failed call must leave alone."""
    opt = model.optimizer
    return (model.params.copy(), opt.state.copy(), opt.step.copy())


def assert_unchanged(model, saved):
    params, state, step = saved
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.optimizer.state, state)
    np.testing.assert_array_equal(model.optimizer.step, step)
