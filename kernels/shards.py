"""The sum of per-shard gradients, for data-parallel training steps.

A batch cut into shards gives one gradient buffer per shard (``grads[s]``, each the
gradient of its shard's mean loss); the batch's gradient is their sum weighted by each
shard's share of the batch, taken in shard order so that its bits do not depend on
how the work was spread over threads. See ``fastnn._shards``.
"""

from .config import jit
from .views import _view


@jit
def sum_shards(grads, scales, out):
    """``out = sum_s scales[s] * grads[s]``, summed in order of ``s``.

    Parameters
    ----------
    grads : ndarray of shape (n_shards, n_params)
        Each shard's gradients (at least one shard).
    scales : ndarray of shape (n_shards,)
        Each shard's weight, of ``grads``' dtype.
    out : ndarray of shape (n_params,)
        Receives the sum.
    """
    n = out.shape[0]
    first = _view(grads, 0, (n,))  # 1-D views of the rows: the loops vectorize
    scale = scales[0]
    for i in range(n):
        out[i] = scale * first[i]
    for s in range(1, grads.shape[0]):
        shard = _view(grads, s * n, (n,))
        scale = scales[s]
        for i in range(n):
            out[i] += scale * shard[i]
