"""Compiled input checks: the rules for valid data, written once.

The Python layer calls :func:`check_batch` on every training call. It allocates
nothing and stops at the first bad value (``np.isfinite(X).all()`` would allocate a
boolean array as large as ``X``), and it says where the first bad value is, so the
Python layer's messages need no rule of their own.

Targets are valid when finite; for BCE, in ``[0, 1]``; for cross-entropy, rows that
are non-negative and sum to 1 within :data:`PROBABILITY_TOLERANCE` (one-hot or
probability rows).
"""

import numpy as np

from .config import internal, jit, public
from .losses import BCE, CROSS_ENTROPY

OK = 0
X_NOT_FINITE = 1
Y_NOT_FINITE = 2
OUT_OF_RANGE = 3  # BCE targets outside [0, 1]
NOT_DISTRIBUTION = 4  # cross-entropy rows negative or not summing to 1

#: How far from 1 the sum of a cross-entropy target row may be.
PROBABILITY_TOLERANCE = 1e-3


@internal
def _all_finite(A):
    """Whether every entry of the C-contiguous 2-D ``A`` is finite, in one pass that
    LLVM vectorizes: ``x * 0`` is 0 for finite ``x`` and NaN for NaN and inf (the
    project's fast-math flags let LLVM reassociate the sum, not assume finite
    values, so neither the product nor the sum can be folded away)."""
    flat = A.reshape(A.size)
    acc = A.dtype.type(0)
    zero = A.dtype.type(0)
    for i in range(flat.shape[0]):
        acc += flat[i] * zero
    return acc == 0


@internal
def _first_not_finite(A):
    """``(i, j)`` of the first entry of the 2-D ``A`` that is NaN or inf, or
    ``(-1, -1)``."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if not np.isfinite(A[i, j]):
                return i, j
    return -1, -1


@internal
def _check_targets(Y, loss):
    """Check 2-D targets ``Y`` for the loss code ``loss``.

    Returns ``(status, i, j)``: ``OK``, or the first problem and where it is
    (``j = -1`` for a row that is not a distribution).
    """
    for i in range(Y.shape[0]):
        total = 0.0
        for j in range(Y.shape[1]):
            y = Y[i, j]
            if not np.isfinite(y):
                return Y_NOT_FINITE, i, j
            if loss == BCE and (y < 0 or y > 1):
                return OUT_OF_RANGE, i, j
            if loss == CROSS_ENTROPY and y < 0:
                return NOT_DISTRIBUTION, i, -1
            total += y
        if loss == CROSS_ENTROPY and abs(total - 1.0) > PROBABILITY_TOLERANCE:
            return NOT_DISTRIBUTION, i, -1
    return OK, -1, -1


check_targets = public(_check_targets)


@jit
def check_batch(X, Y, loss):
    """Check inputs ``X`` (finite) and targets ``Y`` (see :func:`check_targets`) of
    one training call; returns ``(status, i, j)``, the position in ``X`` for
    ``X_NOT_FINITE`` and in ``Y`` otherwise. ``X`` is C-contiguous."""
    if not _all_finite(X):
        i, j = _first_not_finite(X)
        return X_NOT_FINITE, i, j
    return _check_targets(Y, loss)
