"""Every kernel of ``fastnn.kernels`` against tests/reference.py.

The reference runs in float64 on the very same inputs (upcast), so a float32 kernel
is compared with the exact answer, within ``TOL[float32]``. Dense layers are tested
on both code paths (hand-written loops and BLAS) and through the dispatcher, on
shapes at both ends of the switch, forward and backward separately (STYLE #2).
"""

import warnings
from functools import cache

import numba
import numpy as np
import pytest

from fastnn import kernels

import reference as ref
from conftest import assert_close

ACTS = list(ref.ACTIVATIONS)

PATHS = {
    "loops": (kernels.dense_forward_loops, kernels.dense_backward_loops),
    "blas": (kernels.dense_forward_blas, kernels.dense_backward_blas),
    "dispatch": (kernels.dense_forward, kernels.dense_backward),
}

# (n_samples, n_in, n_out)
SHAPES = [
    (1, 5, 3),  # batch of one
    (7, 1, 4),  # one input
    (9, 6, 1),  # one output
    (4, 2, 4),  # XOR, hidden layer
    (4, 4, 1),  # XOR, output layer
    (64, 784, 128),  # MNIST-like, hidden
    (64, 128, 10),  # MNIST-like, output
    (256, 512, 512),  # large, square
    (8, 64, 2048),  # wide
]


# With NUMBA_DISABLE_JIT=1 (the coverage run, STYLE #11) the loop kernels run as
# plain Python, about a microsecond per multiply-add: large shapes are skipped there.
MAX_MACS_WITHOUT_JIT = 20_000


def skip_if_slow_without_jit(shape, path):
    """Skip a test of the loop kernels on a large shape when JIT is disabled."""
    n_samples, n_in, n_out = shape
    if (
        numba.config.DISABLE_JIT
        and path != "blas"
        and n_samples * n_in * n_out > MAX_MACS_WITHOUT_JIT
    ):
        pytest.skip("loop kernel too slow as plain Python (NUMBA_DISABLE_JIT=1)")


def shape_id(shape):
    return "x".join(map(str, shape))


def up(a):
    """Upcast to float64 for the reference."""
    return a.astype(np.float64)


def nan_filled(shape, dtype):
    """An output buffer that shows any element a kernel forgot to write."""
    return np.full(shape, np.nan, dtype=dtype)


@cache
def _layer(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    n_samples, n_in, n_out = shape
    X = rng.standard_normal((n_samples, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = (0.1 * rng.standard_normal(n_out)).astype(dtype)
    d_out = rng.standard_normal((n_samples, n_out)).astype(dtype)
    return X, W, b, d_out


def layer(shape, dtype):
    """Inputs of one dense layer: fresh copies of data drawn once per shape and
    dtype.

    Returns
    -------
    X : ndarray of shape (n_samples, n_in)
        Standard normal.
    W : ndarray of shape (n_in, n_out)
        Standard normal over ``sqrt(n_in)``, so ``Z`` is of order 1.
    b : ndarray of shape (n_out,)
        Small.
    d_out : ndarray of shape (n_samples, n_out)
        Standard normal, a stand-in for dL/dA.
    """
    return tuple(a.copy() for a in _layer(tuple(shape), np.dtype(dtype).type))


def test_activation_codes_match_reference():
    assert kernels.ACTIVATIONS == ref.ACTIVATIONS
    for name, code in ref.ACTIVATIONS.items():
        assert getattr(kernels, name.upper()) == code
    assert kernels.LEAKY_SLOPE == ref.LEAKY_SLOPE


def test_shapes_cover_both_sides_of_the_blas_switch():
    rows = [n for n, _, _ in SHAPES]
    assert min(rows) <= kernels.LOOP_MAX_ROWS < max(rows)


# ---------------------------------------------------------------------------------
# Dense layer
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("act", ACTS)
def test_dense_forward(shape, path, act, dtype):
    forward, _ = PATHS[path]
    skip_if_slow_without_jit(shape, path)
    X, W, b, _ = layer(shape, dtype)
    out = nan_filled((shape[0], shape[2]), dtype)

    result = forward(X, W, b, ref.ACTIVATIONS[act], out)

    assert result.dtype == dtype
    assert np.shares_memory(result, out)
    assert_close(out, ref.dense_forward(up(X), up(W), up(b), act), dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("act", ACTS)
def test_dense_backward(shape, path, act, dtype):
    _, backward = PATHS[path]
    skip_if_slow_without_jit(shape, path)
    X, W, b, d_out = layer(shape, dtype)
    # Both sides get the same forward output, so relu's mask cannot differ where
    # a float32 Z rounds across 0.
    out = ref.dense_forward(X, W, b, act)
    dZ, dW, db, dX = ref.dense_backward(up(X), up(W), up(out), up(d_out), act)

    out_before = out.copy()
    d = d_out.copy()
    dW_comp = nan_filled(W.shape, dtype)
    db_comp = nan_filled(b.shape, dtype)
    dX_comp = nan_filled(X.shape, dtype)
    backward(X, W, out, d, ref.ACTIVATIONS[act], dW_comp, db_comp, dX_comp)

    np.testing.assert_array_equal(out, out_before)
    assert_close(d, dZ, dtype, "d_out must hold dL/dZ")
    assert_close(dW_comp, dW, dtype, "dW")
    assert_close(db_comp, db, dtype, "db")
    assert_close(dX_comp, dX, dtype, "dX")


@pytest.mark.parametrize("shape", [(4, 2, 4), (64, 784, 128)], ids=shape_id)
@pytest.mark.parametrize("path", list(PATHS))
def test_dense_backward_without_dX(shape, path, dtype):
    """The first layer passes an empty dX; dW and db are still written."""
    _, backward = PATHS[path]
    skip_if_slow_without_jit(shape, path)
    X, W, b, d_out = layer(shape, dtype)
    out = ref.dense_forward(X, W, b, "tanh")
    dZ, dW, db, _ = ref.dense_backward(up(X), up(W), up(out), up(d_out), "tanh")

    d = d_out.copy()
    dW_comp = nan_filled(W.shape, dtype)
    db_comp = nan_filled(b.shape, dtype)
    backward(X, W, out, d, kernels.TANH, dW_comp, db_comp, np.empty((0, 0), dtype))

    assert_close(d, dZ, dtype, "d_out must hold dL/dZ")
    assert_close(dW_comp, dW, dtype, "dW")
    assert_close(db_comp, db, dtype, "db")


# ---------------------------------------------------------------------------------
# Extreme inputs
# ---------------------------------------------------------------------------------


def identity_layer(Z, dtype):
    """Inputs of a layer whose pre-activation is exactly ``Z``: ``Z @ I + 0``."""
    Z = np.ascontiguousarray(Z, dtype=dtype)
    n = Z.shape[1]
    return Z, np.eye(n, dtype=dtype), np.zeros(n, dtype=dtype)


@pytest.mark.parametrize("path", list(PATHS))
def test_sigmoid_of_huge_inputs_is_finite(path, dtype):
    forward, _ = PATHS[path]
    X, W, b = identity_layer([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype)
    out = nan_filled(X.shape, dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        forward(X, W, b, kernels.SIGMOID, out)
    assert np.all((out >= 0) & (out <= 1))
    np.testing.assert_array_equal(out[0, [0, 2, 4]], [0.0, 0.5, 1.0])
    assert_close(out, ref.dense_forward(up(X), up(W), up(b), "sigmoid"), dtype)


@pytest.mark.parametrize("path", list(PATHS))
def test_softmax_of_huge_inputs_is_finite_and_normalised(path, dtype):
    forward, _ = PATHS[path]
    Z = [[1000.0, 999.0, -1000.0], [1000.0, 1000.0, 1000.0], [-1000.0, 0.0, 1000.0]]
    X, W, b = identity_layer(Z, dtype)
    out = nan_filled(X.shape, dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        forward(X, W, b, kernels.SOFTMAX, out)
    assert np.all(np.isfinite(out))
    assert_close(out.sum(axis=1), np.ones(3), dtype)
    assert_close(out, ref.dense_forward(up(X), up(W), up(b), "softmax"), dtype)


@pytest.mark.parametrize("shape", [(4, 2, 4), (64, 128, 10)], ids=shape_id)
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("act", ACTS)
def test_nan_in_input_propagates(shape, path, act, dtype):
    """A NaN in a row of X makes that row of the output NaN and leaves the other
    rows finite: fastmath must not let the compiler assume there are no NaNs."""
    forward, _ = PATHS[path]
    skip_if_slow_without_jit(shape, path)
    X, W, b, _ = layer(shape, dtype)
    X[1, 0] = np.nan
    out = nan_filled((shape[0], shape[2]), dtype)
    forward(X, W, b, ref.ACTIVATIONS[act], out)
    assert np.all(np.isnan(out[1]))
    assert np.all(np.isfinite(np.delete(out, 1, axis=0)))


# ---------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------

LOSS_SHAPES = [(1, 1), (1, 5), (9, 1), (7, 4), (64, 10)]

# name: (kernel, reference, activation that produces P, target kind)
LOSSES = {
    "mse": (kernels.mse_loss, ref.mse, "identity", "real"),
    "bce": (kernels.bce_loss, ref.bce, "sigmoid", "binary"),
    "cross_entropy": (
        kernels.cross_entropy_loss,
        ref.cross_entropy,
        "softmax",
        "one_hot",
    ),
    "sigmoid_bce_delta": (
        kernels.sigmoid_bce_delta,
        ref.sigmoid_bce_delta,
        "sigmoid",
        "binary",
    ),
    "softmax_cross_entropy_delta": (
        kernels.softmax_cross_entropy_delta,
        ref.softmax_cross_entropy_delta,
        "softmax",
        "one_hot",
    ),
}


def loss_inputs(rng, shape, act, target, dtype):
    """Predictions ``P = act(Z)`` for standard normal ``Z``, and targets.

    Returns
    -------
    P : ndarray of shape (n_samples, n_out)
    Y : ndarray of shape (n_samples, n_out)
        Standard normal (``"real"``), 0 or 1 (``"binary"``) or one-hot rows.
    """
    n_samples, n_out = shape
    P = ref.activation(rng.standard_normal(shape), act)
    if target == "real":
        Y = rng.standard_normal(shape)
    elif target == "binary":
        Y = rng.integers(0, 2, shape).astype(np.float64)
    else:
        Y = np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    return P.astype(dtype), Y.astype(dtype)


@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss(name, shape, dtype, rng):
    kernel, reference, act, target = LOSSES[name]
    P, Y = loss_inputs(rng, shape, act, target, dtype)
    loss_ref, grad_ref = reference(up(P), up(Y))

    grad = nan_filled(shape, dtype)
    loss = kernel(P, Y, grad)

    assert isinstance(loss, float | np.floating)  # np.floating: NUMBA_DISABLE_JIT=1
    assert_close(loss, loss_ref, dtype, "loss")
    assert_close(grad, grad_ref, dtype, "gradient")


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "mse"])
def test_loss_clamps_saturated_probabilities(name, dtype):
    """P of exactly 0 or 1 gives a finite loss (log clamped at -100, as PyTorch
    does) and a finite gradient."""
    kernel, reference, _, target = LOSSES[name]
    P = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [1.0, 0.0, 0.0]], dtype=dtype)
    if target == "binary":
        Y = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=dtype)
    else:
        Y = np.eye(3, dtype=dtype)[[0, 0, 1]]
    loss_ref, grad_ref = reference(up(P), up(Y))

    grad = nan_filled(P.shape, dtype)
    loss = kernel(P, Y, grad)

    assert np.isfinite(loss)
    assert np.all(np.isfinite(grad))
    assert_close(loss, loss_ref, dtype, "loss")
    assert_close(grad, grad_ref, dtype, "gradient")
