"""Dropout masks, fused into a dense layer's epilogue and its gradient.

Masks come from a counter-based hash of ``(seed, step, layer, sample, unit)``:
the backward pass recomputes the forward pass's mask instead of storing it, and the
same seed gives the same masks. Dropout is inverted: kept units are scaled by
``1 / (1 - p)`` in training, so inference needs no change.
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


dropout_key = public(_dropout_key)
