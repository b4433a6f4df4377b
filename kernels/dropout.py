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
def _dropout(A, D, key, p):
    """``D = A * mask / (1 - p)``, the mask drawn from ``key``; ``D`` may be ``A``
    (in place, as the gradient through the mask is). Unit ``(i, j)`` has index
    ``i * n_out + j``."""
    scale = A.dtype.type(1.0 / (1.0 - p))
    zero = A.dtype.type(0)
    n, m = A.shape
    for i in range(n):
        for j in range(m):
            keep = _dropout_keep(key, i * m + j, p)
            D[i, j] = A[i, j] * scale if keep else zero


@jit
def dropout_forward(A, D, key, p):
    """``D = A * mask / (1 - p)``, the mask drawn from ``key``; ``A`` is kept."""
    _dropout(A, D, key, p)


@jit
def dropout_backward(d, key, p):
    """``d *= mask / (1 - p)`` in place: the gradient through the same mask."""
    _dropout(d, d, key, p)


dropout_key = public(_dropout_key)
