"""Shared fixtures and the one tolerance table of the test suite."""

import numpy as np
import pytest

# The test suite's tolerances, in one table. Keyed by dtype: a kernel against
# tests/reference.py, through ``assert_close``, whose ``atol`` is relative to the size
# of the whole result: an element of a matmul is a sum of many terms, and its rounding
# error scales with the size of the terms, not with the (possibly small, cancelled) sum
# itself.
#
# Keyed by name: every other comparison, named by what it compares, with why it is not
# the kernel's. Each is ``{"rtol": ..., "atol": ...}`` for
# ``np.testing.assert_allclose(comp, ref, **TOL[name])``, ``atol`` absolute; an entry
# itself keyed by dtype is read with ``tolerance(dtype, name)``; ``pytest.approx``
# takes the ``rtol`` as ``rel``.
TOL = {
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
    # -- float64, the same maths done another way: rounding only, far below the
    # kernel's (which allows for BLAS against NumPy, and for float32).
    # Sums in another order or in blocks, a fused formula against the chain rule, fit's
    # epoch bookkeeping against train_step by hand, a weight against repeated rows.
    "reordered": {"rtol": 1e-12, "atol": 0.0},
    # The same for parameters and gradients, with a floor for entries near zero.
    "reordered_params": {"rtol": 1e-12, "atol": 1e-14},
    # One update against its formula ``p - lr * g``, and integrated gradients with one
    # step against ``(x - baseline)`` times the midpoint's gradient: one multiply-add.
    "one_update": {"rtol": 1e-12, "atol": 1e-15},
    # Three updates with weight decay against reference.sgd_step / adam_step.
    "decayed_updates": {"rtol": 1e-10, "atol": 1e-12},
    # A weighted batch's gradient against the repeated rows' (sums of other lengths).
    "weighted_gradient": {"rtol": 1e-10, "atol": 1e-14},
    # -- float64 against PyTorch in float64: the same maths through other kernels, over
    # a few steps.
    "torch": {"rtol": 1e-10, "atol": 0.0},
    # ... parameters and running means, with a floor for entries near zero
    "torch_params": {"rtol": 1e-10, "atol": 1e-14},
    # ... predictions, and parameters after weight decay
    "torch_outputs": {"rtol": 1e-10, "atol": 1e-12},
    # ... batch norm's beta, which starts at zero (NumPy's default rtol)
    "torch_beta": {"rtol": 1e-7, "atol": 1e-12},
    # ... the loss of one forward pass through batch norm
    "torch_loss": {"rtol": 1e-12, "atol": 0.0},
    # -- float64 against scikit-learn, or training computed two ways over a few epochs.
    # loss_curve_ against scikit-learn's loss written out in NumPy.
    "sklearn_loss": {"rtol": 1e-10, "atol": 0.0},
    # loss_curve_ against scikit-learn's own; weights of two against a halved penalty.
    "sklearn_epochs": {"rtol": 1e-9, "atol": 0.0},
    # -- float64 central differences: truncation O(eps**2) plus cancellation
    # O(ulp / eps), so loose against TOL and set by the step eps.
    # tests/reference.py's gradients, eps = 1e-5.
    "fd_reference": {"rtol": 1e-6, "atol": 1e-9},
    # explain's input gradients (eps = 1e-6) and batch norm's backward (eps = 1e-5).
    "fd_inputs": {"rtol": 1e-6, "atol": 1e-8},
    # A model's gradients through its whole loss, parameter by parameter, eps = 1e-6.
    "fd_params": {"rtol": 1e-5, "atol": 1e-8},
    # An SGD step of fastnn.sklearn against -lr times scikit-learn's objective's
    # gradient, eps = 1e-6.
    "fd_sklearn_step": {"rtol": 1e-6, "atol": 1e-10},
    # -- other dtypes and other sources of error.
    # Predicting one row against the same row of a batch (other BLAS paths), in both
    # dtypes.
    "row_in_batch": {"rtol": 1e-5, "atol": 0.0},
    # float32 dropout's scale 1 / (1 - p): one rounding.
    "dropout_scale": {"rtol": 1e-6, "atol": 0.0},
    # The standard deviation of random initial weights: sampling error, about
    # 1 / sqrt(2 n) for n draws (He: 200,000 draws; Glorot: 1,000 in the output layer).
    "init_std_he": {"rtol": 0.02, "atol": 0.0},
    "init_std_glorot": {"rtol": 0.05, "atol": 0.0},
    # train_step over several steps against reference.sgd_step / adam_step: parameters,
    # loss and moments, with an absolute floor (not TOL's scaled one) as the parameters
    # are of order one.
    "optimizer": {
        np.float32: {"rtol": 1e-4, "atol": 1e-6},
        np.float64: {"rtol": 1e-10, "atol": 0.0},
    },
    # ... gradients and Adam's second moments, which may be near zero: a floor of 1e-12.
    "optimizer_grads": {
        np.float32: {"rtol": 1e-4, "atol": 1e-6 + 1e-12},
        np.float64: {"rtol": 1e-10, "atol": 1e-12},
    },
    "optimizer_v": {
        np.float32: {"rtol": 1e-4, "atol": 1e-12},
        np.float64: {"rtol": 1e-10, "atol": 1e-12},
    },
    # A weighted loss against the weighted average of per-row losses ...
    "weighted_loss": {
        np.float32: {"rtol": 2e-5, "atol": 0.0},
        np.float64: {"rtol": 1e-10, "atol": 0.0},
    },
    # ... and gradients, whose entries cancel more.
    "weighted_average_gradient": {
        np.float32: {"rtol": 2e-4, "atol": 2e-5},
        np.float64: {"rtol": 1e-9, "atol": 1e-10},
    },
    # A sharded step's gradient against its shards' gradients summed in float64: the
    # kernel sums in the model's dtype, one rounding per shard of terms up to ~0.1
    # (the floor for entries where the shards' terms cancel).
    "shard_sum": {
        np.float32: {"rtol": 1e-6, "atol": 2e-8},
        np.float64: {"rtol": 1e-14, "atol": 5e-17},
    },
    # Integrated gradients' completeness, |sum(attr) - (f(x) - f(baseline))|, steps=200
    # on smooth networks: the midpoint rule's error is at most 4e-6 in float64; float32
    # adds the rounding of 200 accumulated gradients.
    "ig_completeness": {
        np.float32: {"rtol": 0.0, "atol": 1e-4},
        np.float64: {"rtol": 0.0, "atol": 1e-5},
    },
    # The benchmarks' tracked error against tests/reference.py (a maximum over a whole
    # workload, not one comparison).
    "bench_error": {
        np.float32: {"rtol": 0.0, "atol": 1e-3},
        np.float64: {"rtol": 0.0, "atol": 1e-9},
    },
}


def tolerance(dtype, name=None):
    """Return the ``{"rtol": ..., "atol": ...}`` entry of ``TOL`` for ``dtype``: the
    kernel's, or that of the dtype-keyed entry ``name``."""
    table = TOL if name is None else TOL[name]
    return table[np.dtype(dtype).type]


def assert_close(comp, ref, dtype, err_msg=""):
    """Assert that a kernel's result matches the reference within ``TOL[dtype]``.

    Each element must satisfy ``|comp - ref| <= atol * scale + rtol * |ref|``, where
    ``scale = max(1, max(|ref|))``: the absolute tolerance grows with the magnitude
    of the result, so float32 sums of hundreds of terms (``X.T @ dZ`` over a batch
    of 256 is of order 10) may be off by their rounding error where they cancel.

    Parameters
    ----------
    comp : ndarray or float
        The kernel's result.
    ref : ndarray or float
        The reference result, of the same shape.
    dtype : dtype-like
        The dtype the computation ran in; selects the tolerance.
    err_msg : str, optional
        Extra text for the failure message.
    """
    tol = tolerance(dtype)
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    np.testing.assert_allclose(
        comp, ref, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=err_msg
    )


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """Each dtype the kernels support."""
    return request.param


@pytest.fixture
def rng():
    """A freshly seeded generator, so every test sees the same data."""
    return np.random.default_rng(12345)


def run_with_allocation_stats(script):
    """Run ``script`` in a fresh interpreter with Numba's allocation counters on.

    ``NUMBA_NRT_STATS`` must be set before Numba starts, hence the subprocess. Returns
    its standard output; fails the test, with both outputs, if it exits non-zero.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
