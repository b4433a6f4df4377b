"""Explanation kernels: gradients of one output activation with respect to the input.

The explained quantity is an *output activation* in inference mode (what
``MLP.predict`` returns: running batch-norm statistics, no dropout), not a loss: for
sample ``i`` with target unit ``t = target[i]`` it is ``f(x) = A_L[i, t]``, the
network's output for that unit (a softmax probability, a sigmoid or tanh output, or the
identity output). Its gradient is backpropagated from a one-hot ``d_out`` at the last
layer through every layer's activation (the output activation too, softmax by its exact
row-wise Jacobian-vector product) down to ``dX`` of the first layer, by the backward
walk of the training step (:mod:`fastnn.kernels.network`) in inference mode, told to
skip the parameters' gradients. A batch-normalized layer is, in inference, a fixed
affine map per unit, so its delta is multiplied by ``gamma / sqrt(var + eps)``.

Each kernel runs the whole batch in one call, in blocks of rows: a block's forward
pass, and for integrated gradients all of its path points, run with the block's
activations in cache. Arguments:

``net`` : tuple (params, layout, config, stats)
    The network (:mod:`fastnn.kernels.layout`); only read.
``work`` : ndarray of shape (>= workspace_size(layout, block),)
    Scratch: the network's workspace for a block of rows (the layers' outputs and
    deltas), then a block of path points and its input gradient. Blocks have as many
    rows as fit.
``target`` : int64 ndarray of shape (n_samples,)
    The unit explained for each row, in ``0..n_out-1``; a negative entry means the
    predicted unit (argmax of the output at ``X``, the first on ties) and is
    overwritten with it.

Like every kernel these take C-contiguous arrays of one dtype, allocate nothing and
validate nothing; :mod:`fastnn.explain` is the checked interface.
"""

import numpy as np

from .config import internal, jit, public
from .layout import ACT, N_IN, _rows_that_fit, _slab_start
from .layout import workspace_size as network_workspace_size
from .network import INFERENCE, _infer, _network_backward, _output_delta, _rows
from .views import _view


def workspace_size(layout, n_rows):
    """Length of the ``work`` buffer for blocks of ``n_rows`` rows: the network's
    workspace, then a block's path points and input gradients."""
    per_block = 2 * int(n_rows) * int(layout[0, N_IN])
    return network_workspace_size(layout, n_rows) + per_block


@internal
def _resolve_targets(P, target, start):
    """Replace negative ``target[start + r]`` with the argmax of ``P[r]``."""
    for r in range(P.shape[0]):
        if target[start + r] < 0:
            best = 0
            for j in range(1, P.shape[1]):
                if P[r, j] > P[r, best]:
                    best = j
            target[start + r] = best


@internal
def _backward_from_target(net, X, work, target, start, dX):
    """``dX[r] = d A_L[r, target[start + r]] / d X[r]`` after an inference forward
    pass of ``X`` into the network workspace ``work``."""
    layout = net[1]
    D = _output_delta(layout, work, X.shape[0])
    zero = D.dtype.type(0)
    for r in range(D.shape[0]):
        for j in range(D.shape[1]):
            D[r, j] = zero
        D[r, target[start + r]] = D.dtype.type(1)
    no_grads = work[:0]  # the parameters' gradients are not wanted
    act = layout[layout.shape[0] - 1, ACT]
    masks = (np.int64(0), np.int64(0))  # no dropout in inference
    _network_backward(net, no_grads, X, work, act, np.int64(INFERENCE), masks, dX)


@internal
def _block(layout, work, m, n_in):
    """The views of ``work`` for a block of ``m`` rows: network workspace, path, dX."""
    size = _slab_start(layout, m, layout.shape[0])
    net_work = work[:size]
    path = _view(work, size, (m, n_in))
    dX = _view(work, size + m * n_in, (m, n_in))
    return net_work, path, dX


@internal
def _input_gradients(net, X, target, work, out):
    """Gradient of each row's target output activation with respect to its input.

    Parameters
    ----------
    net, target, work
        See the module docstring.
    X : ndarray of shape (n_samples, n_in)
    out : ndarray of shape (n_samples, n_in)
        Overwritten with ``d A_L[i, target[i]] / d X[i, k]``.

    Returns
    -------
    out
    """
    n, n_in = X.shape
    block = _rows_that_fit(net[1], work.shape[0], 2 * n_in)
    for start in range(0, n, block):
        m = min(block, n - start)
        xb = _rows(X, start, m)
        net_work, _, _ = _block(net[1], work, m, n_in)
        _resolve_targets(_infer(net, xb, net_work), target, start)
        _backward_from_target(net, xb, net_work, target, start, _rows(out, start, m))
    return out


input_gradients = public(_input_gradients)


@jit
def gradient_x_input(net, X, target, work, out):
    """Gradient × input: :func:`input_gradients` multiplied by ``X`` element-wise.

    Same parameters; ``out`` is overwritten with ``X * d A_L[i, target[i]] / d X``.
    """
    _input_gradients(net, X, target, work, out)
    for i in range(X.shape[0]):
        for k in range(X.shape[1]):
            out[i, k] *= X[i, k]
    return out


@jit
def integrated_gradients(net, X, baseline, target, steps, work, out):
    """Integrated gradients along the straight path from ``baseline`` to ``X``.

    ``out[i, k] = (X[i, k] - x0[k]) * mean_s g_s[i, k]`` where ``x0`` is the
    baseline row, ``g_s = d A_L[i, t] / d X`` at the path point
    ``x0 + alpha_s (X[i] - x0)`` and ``alpha_s = (s + 1/2) / steps`` for
    ``s = 0..steps-1``: the midpoint rule, whose error in the completeness sum
    ``sum_k out[i, k] = f(X[i]) - f(x0)`` falls as ``1 / steps**2``.

    Parameters
    ----------
    net, target, work
        See the module docstring. Negative targets are resolved at ``X`` (not along
        the path).
    X : ndarray of shape (n_samples, n_in)
    baseline : ndarray of shape (n_samples, n_in) or (1, n_in)
        One baseline per row, or one shared by all rows.
    steps : int
        Number of path points, at least 1.
    out : ndarray of shape (n_samples, n_in)
        Overwritten with the attributions; also used to accumulate the gradients.

    Returns
    -------
    out
    """
    n, n_in = X.shape
    dtype = out.dtype.type
    shared = baseline.shape[0] == 1
    block = _rows_that_fit(net[1], work.shape[0], 2 * n_in)
    scale = dtype(1.0 / steps)
    for start in range(0, n, block):
        m = min(block, n - start)
        xb = _rows(X, start, m)
        ob = _rows(out, start, m)
        net_work, path, dX = _block(net[1], work, m, n_in)
        resolve = False
        for r in range(m):
            resolve = resolve or target[start + r] < 0
        if resolve:
            _resolve_targets(_infer(net, xb, net_work), target, start)
        for r in range(m):
            for k in range(n_in):
                ob[r, k] = dtype(0)
        for s in range(steps):
            alpha = dtype((s + 0.5) / steps)
            for r in range(m):
                x0 = baseline[0] if shared else baseline[start + r]
                for k in range(n_in):
                    path[r, k] = x0[k] + alpha * (xb[r, k] - x0[k])
            _infer(net, path, net_work)
            _backward_from_target(net, path, net_work, target, start, dX)
            for r in range(m):
                for k in range(n_in):
                    ob[r, k] += dX[r, k]
        for r in range(m):
            x0 = baseline[0] if shared else baseline[start + r]
            for k in range(n_in):
                ob[r, k] = (xb[r, k] - x0[k]) * (ob[r, k] * scale)
    return out
