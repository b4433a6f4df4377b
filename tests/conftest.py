"""Shared fixtures and the one tolerance table of the test suite."""

import numpy as np
import pytest

# Tolerances for comparing a kernel with tests/reference.py, by dtype. ``atol`` is
# relative to the size of the whole result (see ``assert_close``): an element of a
# matmul is a sum of many terms, and its rounding error scales with the size of the
# terms, not with the (possibly small, cancelled) sum itself.
TOL = {
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
}


def tolerance(dtype):
    """Return the ``{"rtol": ..., "atol": ...}`` entry of ``TOL`` for ``dtype``."""
    return TOL[np.dtype(dtype).type]


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
