"""Dropout masks, fused into a dense layer's epilogue and its gradient.

Masks come from a counter-based hash of ``(seed, step, layer, sample, unit)``:
the backward pass recomputes the forward pass's mask instead of storing it, and the
same seed gives the same masks. Dropout is inverted: kept units are scaled by
``1 / (1 - p)`` in training, so inference needs no change.
"""

import numpy as np

from .config import internal, jit, public
from .views import _view

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_53 = 9007199254740992.0  # 2**53, the count of values of the hash's top 53 bits


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
def _dropout(A, D, key, p):
    """``D = A * mask / (1 - p)``, the mask drawn from ``key``; ``D`` may be ``A``
    (in place, as the gradient through the mask is).

    Unit ``(i, j)`` has index ``i * n_out + j``, its position in memory, and is kept
    when ``u = (splitmix64(key ^ index) >> 11) * 2**-53``, uniform in [0, 1), is at
    least ``p``. The test runs on the integers, as ``h >> 11 >= ceil(p * 2**53)``,
    which is the same test exactly (both sides scaled by a power of two), in one
    loop over the block: no conversion to float, and rows as short as a few units
    do not leave the vectorized loop for its scalar remainder.
    """
    scale = A.dtype.type(1.0 / (1.0 - p))
    zero = A.dtype.type(0)
    threshold = np.uint64(np.ceil(p * _TWO_53))
    key = np.uint64(key)
    size = A.shape[0] * A.shape[1]
    a, d = _view(A, 0, (size,)), _view(D, 0, (size,))
    for t in range(size):
        keep = (_splitmix64(key ^ np.uint64(t)) >> np.uint64(11)) >= threshold
        d[t] = a[t] * scale if keep else zero


@jit
def dropout_forward(A, D, key, p):
    """``D = A * mask / (1 - p)``, the mask drawn from ``key``; ``A`` is kept."""
    _dropout(A, D, key, p)


@jit
def dropout_backward(d, key, p):
    """``d *= mask / (1 - p)`` in place: the gradient through the same mask."""
    _dropout(d, d, key, p)


dropout_key = public(_dropout_key)
