"""Property tests: dense kernels and losses match the reference on random shapes.

Hypothesis draws the shape, activation, dtype, code path, input scale and a seed;
the data is drawn from the seed with NumPy. Shapes are small, so these exercise the
edges (1-wide layers, batches of one) rather than the BLAS switch; tests/test_parity.py
covers the large shapes.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import kernels

import reference as ref
from conftest import assert_close

PATHS = {
    "loops": (kernels.dense_forward_loops, kernels.dense_backward_loops),
    "blas": (kernels.dense_forward_blas, kernels.dense_backward_blas),
    "dispatch": (kernels.dense_forward, kernels.dense_backward),
}

shapes = st.tuples(
    st.integers(1, 20),  # n_samples
    st.integers(1, 40),  # n_in
    st.integers(1, 40),  # n_out
)
acts = st.sampled_from(list(ref.ACTIVATIONS))
dtypes = st.sampled_from([np.float32, np.float64])
paths = st.sampled_from(list(PATHS))
scales = st.sampled_from([0.01, 1.0, 10.0])  # of the pre-activations
seeds = st.integers(0, 2**32 - 1)


def up(a):
    """Upcast to float64 for the reference."""
    return a.astype(np.float64)


def random_layer(shape, scale, dtype, seed):
    """Inputs of one dense layer with pre-activations of order ``scale``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_in)
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)
    d_out : ndarray of shape (n_samples, n_out)
    """
    rng = np.random.default_rng(seed)
    n_samples, n_in, n_out = shape
    X = rng.standard_normal((n_samples, n_in)).astype(dtype)
    W = (scale * rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = (0.1 * scale * rng.standard_normal(n_out)).astype(dtype)
    d_out = rng.standard_normal((n_samples, n_out)).astype(dtype)
    return X, W, b, d_out


@settings(max_examples=50, deadline=None)
@given(shape=shapes, act=acts, dtype=dtypes, path=paths, scale=scales, seed=seeds)
def test_dense_forward_matches_reference(shape, act, dtype, path, scale, seed):
    forward, _ = PATHS[path]
    X, W, b, _ = random_layer(shape, scale, dtype, seed)
    out = np.full((shape[0], shape[2]), np.nan, dtype=dtype)

    result = forward(X, W, b, ref.ACTIVATIONS[act], out)

    assert result.dtype == dtype
    assert_close(out, ref.dense_forward(up(X), up(W), up(b), act), dtype)


@settings(max_examples=50, deadline=None)
@given(
    shape=shapes,
    act=acts,
    dtype=dtypes,
    path=paths,
    scale=scales,
    seed=seeds,
    with_dX=st.booleans(),
)
def test_dense_backward_matches_reference(
    shape, act, dtype, path, scale, seed, with_dX
):
    _, backward = PATHS[path]
    X, W, b, d_out = random_layer(shape, scale, dtype, seed)
    out = ref.dense_forward(X, W, b, act)  # the same forward output for both sides
    dZ, dW, db, dX = ref.dense_backward(up(X), up(W), up(out), up(d_out), act)

    d = d_out.copy()
    dW_comp = np.full(W.shape, np.nan, dtype=dtype)
    db_comp = np.full(b.shape, np.nan, dtype=dtype)
    dX_comp = np.full(X.shape if with_dX else (0, 0), np.nan, dtype=dtype)
    backward(X, W, out, d, ref.ACTIVATIONS[act], dW_comp, db_comp, dX_comp)

    assert_close(d, dZ, dtype, "d_out must hold dL/dZ")
    assert_close(dW_comp, dW, dtype, "dW")
    assert_close(db_comp, db, dtype, "db")
    if with_dX:
        assert_close(dX_comp, dX, dtype, "dX")


LOSSES = {
    "mse": (kernels.mse_loss, ref.mse),
    "bce": (kernels.bce_loss, ref.bce),
    "cross_entropy": (kernels.cross_entropy_loss, ref.cross_entropy),
    "sigmoid_bce_delta": (kernels.sigmoid_bce_delta, ref.sigmoid_bce_delta),
    "softmax_cross_entropy_delta": (
        kernels.softmax_cross_entropy_delta,
        ref.softmax_cross_entropy_delta,
    ),
}


@settings(max_examples=50, deadline=None)
@given(
    n_samples=st.integers(1, 20),
    n_out=st.integers(1, 40),
    name=st.sampled_from(list(LOSSES)),
    dtype=dtypes,
    seed=seeds,
)
def test_loss_matches_reference(n_samples, n_out, name, dtype, seed):
    kernel, reference = LOSSES[name]
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_samples, n_out))
    if "cross_entropy" in name:
        P = ref.softmax(Z)
        Y = np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    elif "bce" in name:
        P = ref.sigmoid(Z)
        Y = rng.integers(0, 2, Z.shape).astype(np.float64)
    else:
        P, Y = Z, rng.standard_normal(Z.shape)
    P, Y = P.astype(dtype), Y.astype(dtype)
    loss_ref, grad_ref = reference(up(P), up(Y))

    grad = np.full(P.shape, np.nan, dtype=dtype)
    loss = kernel(P, Y, grad)

    assert_close(loss, loss_ref, dtype, "loss")
    assert_close(grad, grad_ref, dtype, "gradient")
