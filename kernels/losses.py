"""Loss kernels: the loss value returned, its gradient written to a caller's buffer.

Means follow DESIGN.md: MSE and BCE average over every element of the output;
cross-entropy averages ``-sum(y * log p)`` over samples. Logarithms are clamped at -100
and the BCE denominator at 1e-12, as PyTorch's ``BCELoss`` does, so outputs that are
exactly 0 or 1 give a finite loss. The loss is accumulated in float64 and returned as a
float; gradients keep the dtype of ``P``.

The fused forms (:func:`sigmoid_bce_delta`, :func:`softmax_cross_entropy_delta`) write
dL/dZ for the layer's pre-activation directly as ``(P - Y) / N``, never dividing by
``P``: the stable, exact gradient of the sigmoid+BCE and softmax+cross-entropy pairs.
"""

import numpy as np

from .config import internal, public

LOG_MIN = -100.0
EPSILON = 1e-12

MSE = 0
BCE = 1
CROSS_ENTROPY = 2

#: Name -> code, for the Python layer.
LOSSES = {"mse": MSE, "bce": BCE, "cross_entropy": CROSS_ENTROPY}


@internal
def _clamped_log(p):
    return max(np.log(p), LOG_MIN)


@internal
def _mse_loss(P, Y, dP):
    """Mean squared error ``mean((P - Y)**2)`` over all elements.

    Parameters
    ----------
    P, Y : ndarray of shape (n_samples, n_out)
        Predictions and targets.
    dP : ndarray of shape (n_samples, n_out)
        Overwritten with dL/dP = ``2 (P - Y) / P.size``.

    Returns
    -------
    float
    """
    n_samples, n_out = P.shape
    scale = P.dtype.type(2.0 / P.size)
    total = 0.0
    for i in range(n_samples):
        for j in range(n_out):
            d = P[i, j] - Y[i, j]
            total += d * d
            dP[i, j] = scale * d
    return total / P.size


@internal
def _bce_loss(P, Y, dP):
    """Binary cross-entropy ``-mean(y log p + (1 - y) log(1 - p))`` over all elements.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_out)
        Probabilities in [0, 1] (sigmoid outputs).
    Y : ndarray of shape (n_samples, n_out)
        Targets in [0, 1].
    dP : ndarray of shape (n_samples, n_out)
        Overwritten with dL/dP = ``(P - Y) / max(P (1 - P), 1e-12) / P.size``.

    Returns
    -------
    float
    """
    n_samples, n_out = P.shape
    one = P.dtype.type(1)
    inv_n = P.dtype.type(1.0 / P.size)
    total = 0.0
    for i in range(n_samples):
        for j in range(n_out):
            p = P[i, j]
            y = Y[i, j]
            total -= y * _clamped_log(p) + (one - y) * _clamped_log(one - p)
            dP[i, j] = (p - y) / max(p * (one - p), EPSILON) * inv_n
    return total / P.size


@internal
def _cross_entropy_loss(P, Y, dP):
    """Cross-entropy ``-sum(Y * log P) / n_samples``.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
        Class probabilities (softmax outputs).
    Y : ndarray of shape (n_samples, n_classes)
        One-hot (or probability) targets.
    dP : ndarray of shape (n_samples, n_classes)
        Overwritten with dL/dP = ``-Y / max(P, 1e-12) / n_samples``.

    Returns
    -------
    float
    """
    n_samples, n_out = P.shape
    inv_n = P.dtype.type(1.0 / n_samples)
    total = 0.0
    for i in range(n_samples):
        for j in range(n_out):
            p = P[i, j]
            y = Y[i, j]
            total -= y * _clamped_log(p)
            dP[i, j] = -y / max(p, EPSILON) * inv_n
    return total / n_samples


@internal
def _sigmoid_bce_delta(P, Y, dZ):
    """Binary cross-entropy on sigmoid outputs, with the fused gradient.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_out)
        Sigmoid outputs.
    Y : ndarray of shape (n_samples, n_out)
        Targets in [0, 1].
    dZ : ndarray of shape (n_samples, n_out)
        Overwritten with dL/dZ = ``(P - Y) / P.size`` for the sigmoid's input Z.

    Returns
    -------
    float
        The same value as :func:`bce_loss`.
    """
    n_samples, n_out = P.shape
    one = P.dtype.type(1)
    inv_n = P.dtype.type(1.0 / P.size)
    total = 0.0
    for i in range(n_samples):
        for j in range(n_out):
            p = P[i, j]
            y = Y[i, j]
            total -= y * _clamped_log(p) + (one - y) * _clamped_log(one - p)
            dZ[i, j] = (p - y) * inv_n
    return total / P.size


@internal
def _softmax_cross_entropy_delta(P, Y, dZ):
    """Cross-entropy on softmax outputs, with the fused gradient.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
        Softmax outputs.
    Y : ndarray of shape (n_samples, n_classes)
        One-hot (or probability) targets; each row sums to 1.
    dZ : ndarray of shape (n_samples, n_classes)
        Overwritten with dL/dZ = ``(P - Y) / n_samples`` for the softmax's input Z.

    Returns
    -------
    float
        The same value as :func:`cross_entropy_loss`.
    """
    n_samples, n_out = P.shape
    inv_n = P.dtype.type(1.0 / n_samples)
    total = 0.0
    for i in range(n_samples):
        for j in range(n_out):
            p = P[i, j]
            y = Y[i, j]
            total -= y * _clamped_log(p)
            dZ[i, j] = (p - y) * inv_n
    return total / n_samples


mse_loss = public(_mse_loss)
bce_loss = public(_bce_loss)
cross_entropy_loss = public(_cross_entropy_loss)
sigmoid_bce_delta = public(_sigmoid_bce_delta)
softmax_cross_entropy_delta = public(_softmax_cross_entropy_delta)
