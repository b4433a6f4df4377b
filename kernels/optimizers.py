"""Optimizer updates over flat parameter buffers: one fused loop per layer segment.

PyTorch's update rules, weight decay included. ``hyper`` is a float64 array of
hyperparameters laid out as ``HYPER_FIELDS``; ``state`` has shape ``(2, n_params)``
(SGD: row 0 is the momentum buffer; Adam/AdamW: rows 0 and 1 are the first and second
moments); ``step`` is an int64 array of length 1 holding the number of updates so far.
``layout`` is the network's (see :mod:`fastnn.kernels.network`): weight decay applies
to each layer's ``W`` and, when ``decay_bias`` is set, to its ``b`` (and batch
normalization's ``gamma`` and ``beta``).
"""

import numpy as np

from .config import jit

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


# The update loops below run over slices, from index 0, with no branch inside: with
# loops over range(lo, hi), Numba's negative-index handling stayed in the loop and
# LLVM did not vectorize them (Adam: 2.4 ns a parameter in float32 against 0.29).


@jit
def _sgd_range(params, grads, buf, lr, momentum, nesterov, wd, backup):
    if backup.size != 0:
        backup[:] = params
    if momentum == 0:
        for i in range(params.shape[0]):
            params[i] -= lr * (grads[i] + wd * params[i])
    elif nesterov:
        for i in range(params.shape[0]):
            g = grads[i] + wd * params[i]
            b = momentum * buf[i] + g
            buf[i] = b
            params[i] -= lr * (g + momentum * b)
    else:
        for i in range(params.shape[0]):
            b = momentum * buf[i] + grads[i] + wd * params[i]
            buf[i] = b
            params[i] -= lr * b


@jit
def _adam_range(params, grads, m, v, coef, wd, decoupled, backup):
    # coef = (step_size, 1 / sqrt(1 - beta2**t), beta1, beta2, eps, 1 - lr * wd)
    step_size, inv_sqrt_bc2, b1, b2, eps, shrink = coef
    one = params.dtype.type(1)
    if backup.size != 0:
        backup[:] = params
    coupled = wd
    if decoupled:
        coupled = params.dtype.type(0)
        for i in range(params.shape[0]):
            params[i] *= shrink
    for i in range(params.shape[0]):
        g = grads[i] + coupled * params[i]
        mi = b1 * m[i] + (one - b1) * g
        vi = b2 * v[i] + (one - b2) * g * g
        m[i] = mi
        v[i] = vi
        params[i] -= step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


@jit
def _sgd_segment(params, grads, state, backup, a, b, lr, momentum, nesterov, wd):
    kept = backup[a:b] if backup.size != 0 else backup
    _sgd_range(params[a:b], grads[a:b], state[0, a:b], lr, momentum, nesterov, wd,
               kept)  # fmt: skip


@jit
def _adam_segment(params, grads, state, backup, a, b, coef, wd, decoupled):
    kept = backup[a:b] if backup.size != 0 else backup
    _adam_range(params[a:b], grads[a:b], state[0, a:b], state[1, a:b], coef, wd,
                decoupled, kept)  # fmt: skip


@jit
def optimizer_update(opt, params, grads, state, step, hyper, layout, backup):
    """One update of every parameter by the optimizer with code ``opt``.

    ``SGD``: ``g += wd p``; ``buf = momentum buf + g`` (``buf`` starts at zero, which
    equals PyTorch's ``buf = g`` on the first step); the direction is ``buf``, or
    ``g + momentum buf`` with Nesterov; ``p -= lr direction``.

    ``ADAM``: ``g += wd p``; ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    ``ADAMW``: the same without the ``g += wd p``, after ``p *= 1 - lr wd`` (decoupled).

    Parameters
    ----------
    opt : int
        ``SGD``, ``ADAM`` or ``ADAMW``.
    params, grads : ndarray of shape (n_params,)
        Parameters (updated in place) and their gradients.
    state : ndarray of shape (2, n_params)
        Optimizer state, updated in place.
    step : int64 ndarray of shape (1,)
        Incremented by one.
    hyper : float64 ndarray
        Hyperparameters, see ``HYPER_FIELDS``.
    layout : int64 ndarray of shape (n_layers, 6)
        The network's layout: where each layer's ``W`` and ``b`` (and ``gamma``,
        ``beta``) are.
    backup : ndarray of shape (n_params,) or (0,)
        When not empty, receives the parameters from before the update.
    """
    step[0] += 1
    dtype = params.dtype.type
    lr = hyper[LR]
    wd = dtype(hyper[WEIGHT_DECAY])
    wd_bias = wd if hyper[DECAY_BIAS] != 0 else dtype(0)
    if opt == SGD:
        momentum = dtype(hyper[MOMENTUM])
        nesterov = hyper[NESTEROV] != 0
    else:
        t = step[0]
        beta1, beta2 = hyper[BETA1], hyper[BETA2]
        coef = (
            dtype(lr / (1.0 - beta1**t)),
            dtype(1.0 / np.sqrt(1.0 - beta2**t)),
            dtype(beta1),
            dtype(beta2),
            dtype(hyper[EPS]),
            dtype(1.0 - lr * hyper[WEIGHT_DECAY]),
        )
        coef_bias = coef[:5] + (dtype(1.0 - lr * wd_bias),)
    for layer in range(layout.shape[0]):
        lo = layout[layer, 2]
        mid = lo + layout[layer, 0] * layout[layer, 1]
        hi = mid + layout[layer, 1] * (1 + 2 * layout[layer, 4])  # b, gamma, beta
        if opt == SGD:
            _sgd_segment(params, grads, state, backup, lo, mid, dtype(lr), momentum,
                         nesterov, wd)  # fmt: skip
            _sgd_segment(params, grads, state, backup, mid, hi, dtype(lr), momentum,
                         nesterov, wd_bias)  # fmt: skip
        else:
            _adam_segment(params, grads, state, backup, lo, mid, coef, wd, opt == ADAMW)
            _adam_segment(params, grads, state, backup, mid, hi, coef_bias, wd_bias,
                          opt == ADAMW)  # fmt: skip
