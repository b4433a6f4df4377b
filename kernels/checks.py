"""Compiled input checks for the Python layer's fast path: no temporaries.

``np.isfinite(X).all()`` allocates a boolean array as large as ``X``; these loops
allocate nothing and stop at the first bad value.
"""

import numpy as np

from .config import internal, jit, public
from .losses import BCE, CROSS_ENTROPY

OK = 0
NOT_FINITE = 1
OUT_OF_RANGE = 2  # BCE targets outside [0, 1]
NOT_DISTRIBUTION = 3  # cross-entropy rows negative or not summing to 1


@internal
def _check_finite(A):
    """``OK`` if every entry of the 2-D array ``A`` is finite, else ``NOT_FINITE``."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if not np.isfinite(A[i, j]):
                return NOT_FINITE
    return OK


@internal
def _check_targets(Y, loss):
    """Check 2-D targets ``Y`` for the loss code ``loss``; returns a status code.

    Finite everywhere; in [0, 1] for BCE; for cross-entropy non-negative rows whose
    sum is within 1e-3 of 1 (one-hot or probability rows).
    """
    for i in range(Y.shape[0]):
        total = 0.0
        for j in range(Y.shape[1]):
            y = Y[i, j]
            if not np.isfinite(y):
                return NOT_FINITE
            if loss == BCE and (y < 0 or y > 1):
                return OUT_OF_RANGE
            if loss == CROSS_ENTROPY and y < 0:
                return NOT_DISTRIBUTION
            total += y
        if loss == CROSS_ENTROPY and abs(total - 1.0) > 1e-3:
            return NOT_DISTRIBUTION
    return OK


check_finite = public(_check_finite)
check_targets = public(_check_targets)


@jit
def check_batch(X, Y, loss):
    """:func:`check_finite` on ``X``, then :func:`check_targets` on ``Y``: one call."""
    status = _check_finite(X)
    if status != OK:
        return status
    return _check_targets(Y, loss)
