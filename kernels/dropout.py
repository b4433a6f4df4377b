"""Dropout and batch normalization, fused into a dense layer's epilogue and gradient.

Dropout masks come from a counter-based hash of ``(seed, step, layer, sample, unit)``:
the backward pass recomputes the forward pass's mask instead of storing it, and the
same seed gives the same masks. Dropout is inverted: kept units are scaled by
``1 / (1 - p)`` in training, so inference needs no change.

Batch normalization matches PyTorch's ``BatchNorm1d``: in training, the batch mean and
biased variance normalize ``Z``; the running mean and the *unbiased* variance are
updated as ``running = (1 - momentum) * running + momentum * batch``; inference uses
the running statistics. ``gamma`` and ``beta`` are learned.
"""

import numpy as np

from .config import internal, jit, public

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@internal
def _splitmix64(x):
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@internal
def _dropout_key(seed, step, layer):
    """A 64-bit key for the masks of one layer at one training step."""
    k = _splitmix64(np.uint64(seed))
    k = _splitmix64(k ^ np.uint64(step))
    return _splitmix64(k ^ np.uint64(layer))


@internal
def _dropout_keep(key, index, p):
    """Whether unit ``index`` (sample * n_out + unit) is kept under rate ``p``."""
    u = (_splitmix64(np.uint64(key) ^ np.uint64(index)) >> np.uint64(11)) * _TO_UNIT
    return u >= p


@internal
def _dropout_row(a, out, key, base, p):
    """``out = a * mask / (1 - p)`` for one row; unit ``j`` has index ``base + j``."""
    scale = a.dtype.type(1.0 / (1.0 - p))
    zero = a.dtype.type(0)
    for j in range(a.shape[0]):
        out[j] = a[j] * scale if _dropout_keep(key, base + j, p) else zero


@internal
def _dropout_grad_row(d, key, base, p):
    """``d *= mask / (1 - p)`` in place for one row: the gradient through the mask."""
    _dropout_row(d, d, key, base, p)


@jit
def dropout_forward(A, D, key, p):
    """``D = A * mask / (1 - p)``, the mask drawn from ``key``; ``A`` is kept."""
    for i in range(A.shape[0]):
        _dropout_row(A[i], D[i], key, i * A.shape[1], p)


@jit
def dropout_backward(d, key, p):
    """``d *= mask / (1 - p)`` in place: the gradient through the same mask."""
    for i in range(d.shape[0]):
        _dropout_grad_row(d[i], key, i * d.shape[1], p)


@internal
def _batch_norm_train(Z, Zhat, mean, inv_std, eps, running, momentum, update):
    """Normalize ``Z`` by its batch statistics: ``Zhat = (Z - mean) * inv_std``.

    Parameters
    ----------
    Z, Zhat : ndarray of shape (n_samples, n_out)
        Input, and where its normalized values go.
    mean, inv_std : ndarray of shape (n_out,)
        Receive the batch mean and ``1 / sqrt(var + eps)`` (biased variance).
    eps, momentum : float
    running : ndarray of shape (2, n_out)
        Running mean and variance. When ``update`` is true they move towards the
        batch's as PyTorch does: ``(1 - momentum) * running + momentum * batch``, with
        the unbiased variance.
    update : bool

    Sums are accumulated in float64.
    """
    n, n_out = Z.shape
    m = running.dtype.type(momentum)
    one = running.dtype.type(1)
    unbias = n / (n - 1.0) if n > 1 else 1.0
    for j in range(n_out):
        total = 0.0
        for i in range(n):
            total += Z[i, j]
        mu = total / n
        sq = 0.0
        for i in range(n):
            d = Z[i, j] - mu
            sq += d * d
        var = sq / n
        mean[j] = mu
        inv_std[j] = 1.0 / np.sqrt(var + eps)
        if update:
            running[0, j] = (one - m) * running[0, j] + m * mu
            running[1, j] = (one - m) * running[1, j] + m * (var * unbias)
    for i in range(n):
        for j in range(n_out):
            Zhat[i, j] = (Z[i, j] - mean[j]) * inv_std[j]


@internal
def _batch_norm_inference(Z, running, gamma, beta, eps, scale, shift):
    """Fold the running statistics into a scale and a shift: ``Z *= scale`` in place.

    Writes ``scale = gamma / sqrt(running_var + eps)`` and
    ``shift = beta - running_mean * scale`` into the ``(n_out,)`` buffers; the caller
    adds ``shift`` as the bias of the activation pass.
    """
    n, n_out = Z.shape
    for j in range(n_out):
        scale[j] = gamma[j] / np.sqrt(running[1, j] + eps)
        shift[j] = beta[j] - running[0, j] * scale[j]
    for i in range(n):
        for j in range(n_out):
            Z[i, j] *= scale[j]


@internal
def _batch_norm_backward(d, Zhat, gamma, inv_std, d_gamma, d_beta):
    """Exact batch-norm backward, in place.

    On entry ``d`` = dL/dY for ``Y = gamma * Zhat + beta``; on exit dL/dZ:
    ``gamma * inv_std / n * (n d - sum(d) - Zhat * sum(d * Zhat))``, column-wise.
    Writes ``d_gamma = sum(d * Zhat)`` and ``d_beta = sum(d)``.
    """
    n, n_out = d.shape
    for j in range(n_out):
        s = 0.0
        sz = 0.0
        for i in range(n):
            s += d[i, j]
            sz += d[i, j] * Zhat[i, j]
        d_beta[j] = s
        d_gamma[j] = sz
        k = gamma[j] * inv_std[j] / n
        for i in range(n):
            d[i, j] = k * (n * d[i, j] - s - Zhat[i, j] * sz)


dropout_key = public(_dropout_key)
batch_norm_train = public(_batch_norm_train)
batch_norm_inference = public(_batch_norm_inference)
batch_norm_backward = public(_batch_norm_backward)
