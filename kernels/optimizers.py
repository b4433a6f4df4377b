"""Optimizer updates over flat parameter buffers: one fused loop per layer segment.

PyTorch's update rules, weight decay included. ``hyper`` is a float64 array of
hyperparameters laid out as ``HYPER_FIELDS``; ``state`` has shape ``(2, n_params)``
(SGD: row 0 is the momentum buffer; Adam/AdamW: rows 0 and 1 are the first and second
moments); ``step`` is an int64 array of length 1 holding the number of updates so far.
The kernels take them as one tuple, ``optim = (code, hyper, state, step)``.
``layout`` is the network's (see :mod:`fastnn.kernels.layout`): weight decay applies
to each layer's ``W`` and, when ``decay_bias`` is set, to its ``b`` (and batch
normalization's ``gamma`` and ``beta``).
"""

import numpy as np

from .config import internal, public
from .layout import N_IN, N_OUT, NORM, OFFSET
from .views import _view

SGD = 0
ADAM = 1
ADAMW = 2

#: Order of the entries of ``hyper``.
HYPER_FIELDS = (
    "lr", "momentum", "nesterov", "beta1", "beta2", "eps", "weight_decay", "decay_bias",
)  # fmt: skip
LR, MOMENTUM, NESTEROV, BETA1, BETA2, EPS, WEIGHT_DECAY, DECAY_BIAS = range(
    len(HYPER_FIELDS)
)


@internal
def _optimizer_update(optim, params, grads, layout, backup):
    """One update of every parameter by the optimizer ``optim``.

    ``SGD``: ``g += wd p``; ``buf = momentum buf + g`` (``buf`` starts at zero, which
    equals PyTorch's ``buf = g`` on the first step); the direction is ``buf``, or
    ``g + momentum buf`` with Nesterov; ``p -= lr direction``.

    ``ADAM``: ``g += wd p``; ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    ``ADAMW``: the same without the ``g += wd p``, after ``p *= 1 - lr wd`` (decoupled).

    Parameters
    ----------
    optim : tuple (code, hyper, state, step)
        ``code`` is ``SGD``, ``ADAM`` or ``ADAMW``; ``hyper`` the float64
        hyperparameters (see ``HYPER_FIELDS``); ``state`` of shape (2, n_params) is
        updated in place; ``step``, an int64 array of shape (1,), is incremented.
    params, grads : ndarray of shape (n_params,)
        Parameters (updated in place) and their gradients.
    layout : int64 ndarray of shape (n_layers, 6)
        The network's layout: where each layer's ``W`` and ``b`` (and ``gamma``,
        ``beta``) are.
    backup : ndarray of shape (n_params,) or (0,)
        When not empty, receives the parameters from before the update.
    """
    opt, hyper, state, step = optim
    step[0] += 1
    dtype = params.dtype.type
    one = dtype(1)
    lr = dtype(hyper[LR])
    momentum = dtype(hyper[MOMENTUM])
    nesterov = hyper[NESTEROV] != 0
    t = step[0]
    beta1, beta2 = hyper[BETA1], hyper[BETA2]
    step_size = dtype(hyper[LR] / (1.0 - beta1**t))
    inv_sqrt_bc2 = dtype(1.0 / np.sqrt(1.0 - beta2**t))
    b1, b2, eps = dtype(beta1), dtype(beta2), dtype(hyper[EPS])
    keep = backup.size != 0
    n_segments = 2 * layout.shape[0]
    for segment in range(n_segments):
        # even segments are a layer's W; odd ones its b (and gamma, beta), see
        # fastnn.kernels.layout (inline: a helper costs compile time, numba#9566)
        layer = segment // 2
        lo = layout[layer, OFFSET]
        mid = lo + layout[layer, N_IN] * layout[layer, N_OUT]
        hi = mid + layout[layer, N_OUT] * (1 + 2 * layout[layer, NORM])
        a, b = (lo, mid) if segment % 2 == 0 else (mid, hi)
        decay = hyper[WEIGHT_DECAY] if segment % 2 == 0 or hyper[DECAY_BIAS] else 0.0
        # The loops run over views from index 0 and have no branch inside: over
        # range(lo, hi), Numba's negative-index handling stayed in the loop and LLVM
        # did not vectorize (Adam: 2.4 ns a parameter in float32 against 0.29).
        size = (b - a,)
        p = _view(params, a, size)
        g = _view(grads, a, size)
        m = _view(state, a, size)
        v = _view(state, state.shape[1] + a, size)
        if keep:
            # a loop, not ``backup[a:b] = p``: slice assignment compiles Numba's
            # shape-mismatch message formatter (2 s cold) into every caller
            saved = _view(backup, a, size)
            for i in range(p.shape[0]):
                saved[i] = p[i]
        wd = dtype(decay)
        if opt == ADAMW:
            shrink = dtype(1.0 - hyper[LR] * decay)
            for i in range(p.shape[0]):
                p[i] *= shrink
            wd = dtype(0)
        if opt == SGD:
            if momentum == 0:
                for i in range(p.shape[0]):
                    p[i] -= lr * (g[i] + wd * p[i])
            elif nesterov:
                for i in range(p.shape[0]):
                    gi = g[i] + wd * p[i]
                    bi = momentum * m[i] + gi
                    m[i] = bi
                    p[i] -= lr * (gi + momentum * bi)
            else:
                for i in range(p.shape[0]):
                    bi = momentum * m[i] + g[i] + wd * p[i]
                    m[i] = bi
                    p[i] -= lr * bi
        else:
            for i in range(p.shape[0]):
                gi = g[i] + wd * p[i]
                mi = b1 * m[i] + (one - b1) * gi
                vi = b2 * v[i] + (one - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] -= step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


optimizer_update = public(_optimizer_update)
