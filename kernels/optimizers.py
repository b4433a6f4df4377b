"""Optimizer updates over flat parameter buffers: one fused loop each.

PyTorch's update rules. ``hyper`` is a float64 array of hyperparameters laid out as
``HYPER_FIELDS``; ``state`` has shape ``(2, n_params)`` (SGD: row 0 is the momentum
buffer; Adam: rows 0 and 1 are the first and second moments); ``step`` is an int64
array of length 1 holding the number of updates done so far.
"""

import numpy as np

from .config import jit

SGD = 0
ADAM = 1

#: Order of the entries of ``hyper``.
HYPER_FIELDS = ("lr", "momentum", "nesterov", "beta1", "beta2", "eps")
LR, MOMENTUM, NESTEROV, BETA1, BETA2, EPS = range(len(HYPER_FIELDS))


@jit
def sgd_update(params, grads, state, step, hyper, backup):
    """SGD with optional (Nesterov) momentum, as ``torch.optim.SGD`` (no dampening).

    ``buf = momentum * buf + g`` (``buf`` starts at zero, which equals PyTorch's
    ``buf = g`` on the first step); the step direction is ``buf``, or
    ``g + momentum * buf`` with Nesterov; ``p -= lr * direction``.

    Parameters
    ----------
    params, grads : ndarray of shape (n_params,)
        Parameters (updated in place) and their gradients.
    state : ndarray of shape (2, n_params)
        Row 0 is the momentum buffer (updated in place); row 1 is unused.
    step : ndarray of shape (1,), int64
        Incremented by one.
    hyper : ndarray of float64
        Hyperparameters, see ``HYPER_FIELDS``.
    backup : ndarray of shape (n_params,) or (0,)
        When not empty, receives the parameters from before the update.
    """
    lr = params.dtype.type(hyper[LR])
    momentum = params.dtype.type(hyper[MOMENTUM])
    keep = backup.size != 0
    buf = state[0]
    step[0] += 1
    if momentum == 0:
        for i in range(params.shape[0]):
            if keep:
                backup[i] = params[i]
            params[i] -= lr * grads[i]
    elif hyper[NESTEROV] != 0:
        for i in range(params.shape[0]):
            if keep:
                backup[i] = params[i]
            g = grads[i]
            buf[i] = momentum * buf[i] + g
            params[i] -= lr * (g + momentum * buf[i])
    else:
        for i in range(params.shape[0]):
            if keep:
                backup[i] = params[i]
            buf[i] = momentum * buf[i] + grads[i]
            params[i] -= lr * buf[i]


@jit
def adam_update(params, grads, state, step, hyper, backup):
    """Adam with bias correction, as ``torch.optim.Adam``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    Parameters as :func:`sgd_update`; ``state`` rows are ``m`` and ``v``.
    """
    step[0] += 1
    t = step[0]
    beta1, beta2 = hyper[BETA1], hyper[BETA2]
    dtype = params.dtype.type
    b1, b2 = dtype(beta1), dtype(beta2)
    one = dtype(1)
    step_size = dtype(hyper[LR] / (1.0 - beta1**t))
    inv_sqrt_bc2 = dtype(1.0 / np.sqrt(1.0 - beta2**t))
    eps = dtype(hyper[EPS])
    keep = backup.size != 0
    m = state[0]
    v = state[1]
    for i in range(params.shape[0]):
        if keep:
            backup[i] = params[i]
        g = grads[i]
        m[i] = b1 * m[i] + (one - b1) * g
        v[i] = b2 * v[i] + (one - b2) * g * g
        params[i] -= step_size * m[i] / (np.sqrt(v[i]) * inv_sqrt_bc2 + eps)


@jit
def optimizer_update(opt, params, grads, state, step, hyper, backup):
    """Dispatch on the optimizer code ``opt`` (``SGD`` or ``ADAM``)."""
    if opt == ADAM:
        adam_update(params, grads, state, step, hyper, backup)
    else:
        sgd_update(params, grads, state, step, hyper, backup)
