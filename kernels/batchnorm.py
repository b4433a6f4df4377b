"""Batch normalization between a dense layer's matmul and its activation.

It matches PyTorch's ``BatchNorm1d``: ``Y = gamma * H + beta`` with
``H = (Z - mean) * inv_std`` and ``inv_std = 1 / sqrt(var + eps)``. In training the
mean and the biased variance are the batch's, and the running mean and the *unbiased*
variance move as ``running = (1 - momentum) * running + momentum * batch``; in
inference they are the running ones. ``gamma`` and ``beta`` are learned.

Both behaviours share one forward (:func:`_batch_norm_normalize` after the statistics)
and one backward (:func:`_batch_norm_backward`), so gradients in inference mode are
exact too: there the statistics are constants and ``dZ = gamma * inv_std * dY``.
"""

import numpy as np

from .config import internal, public


@internal
def _batch_norm_stats(Z, mean, inv_std, eps, running, momentum, update):
    """The batch mean and ``1 / sqrt(var + eps)`` (biased variance) of each column
    of ``Z``, of shape (n_samples, n_out), into ``mean`` and ``inv_std``.

    When ``update`` is true the running statistics ``running`` (shape (2, n_out):
    mean, variance) move towards the batch's as PyTorch's do, with the unbiased
    variance. Sums are accumulated in float64.
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


@internal
def _batch_norm_running(running, eps, mean, inv_std):
    """The running statistics as ``mean`` and ``inv_std``, for inference."""
    for j in range(mean.shape[0]):
        mean[j] = running[0, j]
        inv_std[j] = 1.0 / np.sqrt(running[1, j] + eps)


@internal
def _batch_norm_normalize(Z, H, mean, inv_std, gamma):
    """``H = (Z - mean) * inv_std`` and ``Z = gamma * H`` in place; the caller adds
    ``beta`` as the bias of the activation pass."""
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            h = (Z[i, j] - mean[j]) * inv_std[j]
            H[i, j] = h
            Z[i, j] = gamma[j] * h


@internal
def _batch_norm_backward(d, H, gamma, inv_std, d_gamma, d_beta, batch_stats):
    """Batch-normalization backward, in place.

    On entry ``d`` = dL/dY for ``Y = gamma * H + beta``; on exit dL/dZ. With
    ``batch_stats`` (training: the statistics depend on ``Z``) it is
    ``gamma * inv_std / n * (n d - sum(d) - H * sum(d * H))`` column-wise; without
    (inference) ``gamma * inv_std * d``. Writes ``d_gamma = sum(d * H)`` and
    ``d_beta = sum(d)`` unless they are empty.
    """
    n, n_out = d.shape
    params_too = d_gamma.size != 0
    for j in range(n_out):
        s = 0.0
        sz = 0.0
        if params_too or batch_stats:
            for i in range(n):
                s += d[i, j]
                sz += d[i, j] * H[i, j]
        if params_too:
            d_beta[j] = s
            d_gamma[j] = sz
        k = gamma[j] * inv_std[j]
        if batch_stats:
            k = k / n
            for i in range(n):
                d[i, j] = k * (n * d[i, j] - s - H[i, j] * sz)
        else:
            for i in range(n):
                d[i, j] *= k


batch_norm_stats = public(_batch_norm_stats)
batch_norm_running = public(_batch_norm_running)
batch_norm_normalize = public(_batch_norm_normalize)
batch_norm_backward = public(_batch_norm_backward)
