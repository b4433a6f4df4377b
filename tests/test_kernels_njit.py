"""Kernels compose inside a user's @njit code and allocate nothing when hot."""

import textwrap

import numba
import numpy as np
import pytest
from numba import njit

from fastnn import kernels as K

from conftest import run_with_allocation_stats


@njit
def _two_layer_step(X, Y, W1, b1, W2, b2, H, P, dH, dP, dW1, db1, dW2, db2, no_dx):
    K.dense_forward(X, W1, b1, K.TANH, H)
    K.dense_forward(H, W2, b2, K.SOFTMAX, P)
    loss = K.softmax_cross_entropy_delta(P, Y, dP)
    K.dense_backward(H, W2, P, dP, K.IDENTITY, dW2, db2, dH)
    K.dense_backward(X, W1, H, dH, K.TANH, dW1, db1, no_dx)
    return loss


def test_kernels_compose_inside_user_njit(dtype, rng):
    import reference

    n, n_in, n_hid, n_out = 5, 3, 6, 4
    X = rng.standard_normal((n, n_in)).astype(dtype)
    Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    W1 = rng.standard_normal((n_in, n_hid)).astype(dtype)
    W2 = rng.standard_normal((n_hid, n_out)).astype(dtype)
    b1 = rng.standard_normal(n_hid).astype(dtype)
    b2 = rng.standard_normal(n_out).astype(dtype)
    H, dH = np.empty((n, n_hid), dtype), np.empty((n, n_hid), dtype)
    P, dP = np.empty((n, n_out), dtype), np.empty((n, n_out), dtype)
    dW1, db1 = np.empty_like(W1), np.empty_like(b1)
    dW2, db2 = np.empty_like(W2), np.empty_like(b2)
    no_dx = np.empty((0, 0), dtype)

    loss = _two_layer_step(
        X, Y, W1, b1, W2, b2, H, P, dH, dP, dW1, db1, dW2, db2, no_dx
    )

    f64 = [a.astype(np.float64) for a in (X, Y, W1, b1, W2, b2)]
    ref_loss, ref_dW, ref_db = reference.mlp_loss_and_gradients(
        f64[0],
        f64[1],
        [f64[2], f64[4]],
        [f64[3], f64[5]],
        [K.TANH, K.SOFTMAX],
        "cross_entropy",
    )
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss, ref_loss, rtol=rtol)
    for comp, ref in zip(
        (dW1, db1, dW2, db2),
        (ref_dW[0], ref_db[0], ref_dW[1], ref_db[1]),
        strict=True,
    ):
        assert comp.dtype == dtype
        np.testing.assert_allclose(comp, ref, rtol=rtol, atol=rtol * 10)


ALLOCATION_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from numba import njit
    from numba.core.runtime import rtsys
    from fastnn import kernels as K

    @njit
    def loop(steps, X, W, b, act, out, d_out, dW, db, dX, Y):
        total = 0.0
        for _ in range(steps):
            K.dense_forward(X, W, b, act, out)
            total += K.mse_loss(out, Y, d_out)
            K.dense_backward(X, W, out, d_out, act, dW, db, dX)
            total += K.bce_loss(out, Y, d_out) + K.cross_entropy_loss(out, Y, d_out)
            total += K.sigmoid_bce_delta(out, Y, d_out)
            total += K.softmax_cross_entropy_delta(out, Y, d_out)
        return total

    for dtype in (np.float32, np.float64):
        for n, n_in, n_out in ((4, 2, 4), (64, 784, 128)):  # loops and BLAS paths
            rng = np.random.default_rng(0)
            X = rng.random((n, n_in)).astype(dtype)
            W = rng.random((n_in, n_out)).astype(dtype)
            b = np.zeros(n_out, dtype)
            out, d_out, Y = (np.zeros((n, n_out), dtype) for _ in range(3))
            dW, db, dX = np.empty_like(W), np.empty_like(b), np.empty_like(X)
            for act in range(6):
                loop(1, X, W, b, act, out, d_out, dW, db, dX, Y)  # compile
                # Passing arrays in from Python costs one NRT record each per call;
                # the loop body must cost nothing: 1 step and 50 steps count alike.
                counts = []
                for steps in (1, 50):
                    before = rtsys.get_allocation_stats()
                    loop(steps, X, W, b, act, out, d_out, dW, db, dX, Y)
                    after = rtsys.get_allocation_stats()
                    counts.append(after.alloc - before.alloc)
                    assert after.alloc - before.alloc == after.free - before.free
                assert counts[0] == counts[1], (dtype, n, act, counts)
    print("no allocations")
    """
)


def test_kernels_allocate_nothing():
    assert "no allocations" in run_with_allocation_stats(ALLOCATION_SCRIPT)


def test_backward_skips_dW_when_empty(dtype, rng):
    """An empty dW asks for input gradients only; db and dX are unchanged by it."""
    for n, n_in, n_out in ((3, 4, 5), (64, 128, 64)):  # loop and BLAS paths
        X = rng.standard_normal((n, n_in)).astype(dtype)
        W = rng.standard_normal((n_in, n_out)).astype(dtype)
        out = np.tanh(rng.standard_normal((n, n_out))).astype(dtype)
        d = rng.standard_normal((n, n_out)).astype(dtype)
        for backward in (
            K.dense_backward,
            K.dense_backward_loops,
            K.dense_backward_blas,
        ):
            full = [np.empty((n_in, n_out), dtype), np.empty(n_out, dtype),
                    np.empty((n, n_in), dtype)]  # fmt: skip
            skip = [np.empty((0, 0), dtype), np.empty(n_out, dtype),
                    np.empty((n, n_in), dtype)]  # fmt: skip
            backward(X, W, out, d.copy(), K.TANH, *full)
            backward(X, W, out, d.copy(), K.TANH, *skip)
            np.testing.assert_array_equal(skip[1], full[1])
            np.testing.assert_array_equal(skip[2], full[2])


KERNEL_MODULES = ("activations", "batchnorm", "checks", "dense", "dropout", "explain",
                  "layout", "losses", "network", "optimizers")  # fmt: skip


def _dispatchers():
    import importlib

    from numba.core.registry import CPUDispatcher

    for name in KERNEL_MODULES:
        module = importlib.import_module(f"fastnn.kernels.{name}")
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                yield f"{name}.{attr}", value


def test_only_private_kernels_lack_a_python_entry_point():
    """A kernel compiled without its Python wrapper crashes the interpreter when
    Python calls it: every such kernel has a private name, every public name has
    the wrapper (its ``public`` twin, for the internal ones)."""
    kernels = list(_dispatchers())
    if not kernels:
        pytest.skip("kernels are plain functions (NUMBA_DISABLE_JIT=1)")
    internal, public = [], []
    for name, kernel in kernels:
        no_entry = kernel.targetoptions.get("no_cpython_wrapper", False)
        (internal if no_entry else public).append(name)
        if no_entry:
            assert name.split(".")[1].startswith("_"), name
    assert len(internal) > 30 and len(public) > 25, (internal, public)
    # called from Python, an internal kernel refuses, compiled or not (it would crash)
    from fastnn.kernels import activations

    b, out = np.ones(4), np.empty((2, 4))
    # Compiled explicitly: a dense_forward loaded from Numba's disk cache would not
    # compile its callees, so calling it proves nothing about them.
    row = numba.typeof(out[0])
    activations._bias_activation_row.compile((row, row, numba.int64))
    assert activations._bias_activation_row.overloads
    with pytest.raises(TypeError, match="no Python entry point"):
        activations._bias_activation_row(out[0], b, K.SIGMOID)
    # each internal kernel with a public twin: the twin is a separate dispatcher
    from fastnn.kernels import network

    assert network.train_step is not network._train_step
    assert network.train_step.py_func.__code__ is network._train_step.py_func.__code__
    assert network.train_step.__name__ == "train_step"
