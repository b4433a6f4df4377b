"""Explanation kernels: gradients of one output activation with respect to the input.

The explained quantity is an *output activation*, not a loss: for sample ``i`` with
target unit ``t = target[i]`` it is ``f(x) = A_L[i, t]``, the network's output for
that unit (a softmax probability, a sigmoid or tanh output, or the identity output).
Its gradient is backpropagated from a one-hot ``d_out`` at the last layer through
every layer's activation (the output activation too, softmax by its exact row-wise
Jacobian-vector product) with :func:`~fastnn.kernels.dense_backward`, down to ``dX`` of
the first layer. ``dense_backward`` also writes ``dW`` and ``db``; they are not needed
here and go to a scratch buffer laid out like ``params`` (``grads``).

Each kernel runs the whole batch in one call, in blocks of rows: a block's forward
pass, and for integrated gradients all of its path points, run with the block's
activations in cache. Arguments as in :mod:`fastnn.kernels.network`:

``params`` : ndarray of shape (n_params,)
    The flat parameter buffer; only read.
``layout`` : int64 ndarray of shape (n_layers, 4)
    Rows ``n_in, n_out, offset, act``.
``grads`` : ndarray of shape (n_params,)
    Scratch for the ``dW``, ``db`` that ``dense_backward`` writes; overwritten.
``work`` : ndarray of shape (>= workspace_size(layout, block),)
    Scratch for the layers' outputs, their deltas, a block of path points and its
    input gradient. Blocks have ``work.size // workspace_size(layout, 1)`` rows.
``target`` : int64 ndarray of shape (n_samples,)
    The unit explained for each row, in ``0..n_out-1``; a negative entry means the
    predicted unit (argmax of the output at ``X``, the first on ties) and is
    overwritten with it.

Like every kernel these take C-contiguous arrays of one dtype, allocate nothing and
validate nothing; :mod:`fastnn.explain` is the checked interface.
"""

import numpy as np

from .config import jit
from .dense import dense_backward
from .network import ACT, N_IN, N_OUT, layer_params, network_forward


@jit
def _row_size(layout):
    """Workspace entries per row: outputs and deltas of every layer, a path point
    and its gradient."""
    total = 0
    for layer in range(layout.shape[0]):
        total += layout[layer, N_OUT]
    return 2 * total + 2 * layout[0, N_IN]


def workspace_size(layout, n_rows):
    """Length of the ``work`` buffer for blocks of ``n_rows`` rows."""
    return int(n_rows) * int(_row_size(layout))


@jit
def _rows(A, start, m):
    """Rows ``start:start + m`` of the C-contiguous 2-D ``A``, as a C-contiguous view."""
    n_cols = A.shape[1]
    flat = A.reshape(A.shape[0] * n_cols)
    return flat[start * n_cols : (start + m) * n_cols].reshape((m, n_cols))


@jit
def _resolve_targets(P, target, start):
    """Replace negative ``target[start + r]`` with the argmax of ``P[r]``."""
    for r in range(P.shape[0]):
        if target[start + r] < 0:
            best = 0
            for j in range(1, P.shape[1]):
                if P[r, j] > P[r, best]:
                    best = j
            target[start + r] = best


@jit
def _backward_from_target(params, layout, grads, X, acts, deltas, target, start, dX):
    """``dX[r] = d A_L[r, target[start + r]] / d X[r]`` after a forward pass.

    ``acts`` holds the layers' outputs for ``X`` (from ``network_forward``);
    ``deltas`` is scratch of the same length.
    """
    n = X.shape[0]
    n_layers = layout.shape[0]
    end = acts.shape[0]
    n_out = layout[n_layers - 1, N_OUT]
    D = deltas[end - n * n_out : end].reshape((n, n_out))
    zero = D.dtype.type(0)
    one = D.dtype.type(1)
    for r in range(n):
        for j in range(n_out):
            D[r, j] = zero
        D[r, target[start + r]] = one
    for layer in range(n_layers - 1, -1, -1):
        n_out = layout[layer, N_OUT]
        n_in = layout[layer, N_IN]
        begin = end - n * n_out
        out = acts[begin:end].reshape((n, n_out))
        D = deltas[begin:end].reshape((n, n_out))
        W, _ = layer_params(params, layout, layer)
        dW, db = layer_params(grads, layout, layer)
        act = layout[layer, ACT]
        if layer > 0:
            inp = acts[begin - n * n_in : begin].reshape((n, n_in))
            d_inp = deltas[begin - n * n_in : begin].reshape((n, n_in))
            dense_backward(inp, W, out, D, act, dW, db, d_inp)
        else:
            dense_backward(X, W, out, D, act, dW, db, dX)
        end = begin


@jit
def _block(layout, work, m, n_in):
    """The views of ``work`` for a block of ``m`` rows: outputs, deltas, path, dX."""
    total = 0
    for layer in range(layout.shape[0]):
        total += layout[layer, N_OUT]
    size = m * total
    acts = work[:size]
    deltas = work[size : 2 * size]
    path = work[2 * size : 2 * size + m * n_in].reshape((m, n_in))
    dX = work[2 * size + m * n_in : 2 * size + 2 * m * n_in].reshape((m, n_in))
    return acts, deltas, path, dX


@jit
def input_gradients(params, layout, X, target, work, grads, out):
    """Gradient of each row's target output activation with respect to its input.

    Parameters
    ----------
    params, layout, target, work, grads
        See the module docstring.
    X : ndarray of shape (n_samples, n_in)
    out : ndarray of shape (n_samples, n_in)
        Overwritten with ``d A_L[i, target[i]] / d X[i, k]``.

    Returns
    -------
    out
    """
    n, n_in = X.shape
    block = max(1, work.shape[0] // _row_size(layout))
    for start in range(0, n, block):
        m = min(block, n - start)
        xb = _rows(X, start, m)
        acts, deltas, _, _ = _block(layout, work, m, n_in)
        P = network_forward(params, layout, xb, acts)
        _resolve_targets(P, target, start)
        _backward_from_target(
            params, layout, grads, xb, acts, deltas, target, start, _rows(out, start, m)
        )
    return out


@jit
def gradient_x_input(params, layout, X, target, work, grads, out):
    """Gradient × input: :func:`input_gradients` multiplied by ``X`` element-wise.

    Same parameters; ``out`` is overwritten with ``X * d A_L[i, target[i]] / d X``.
    """
    input_gradients(params, layout, X, target, work, grads, out)
    for i in range(X.shape[0]):
        for k in range(X.shape[1]):
            out[i, k] *= X[i, k]
    return out


@jit
def integrated_gradients(params, layout, X, baseline, target, steps, work, grads, out):
    """Integrated gradients along the straight path from ``baseline`` to ``X``.

    ``out[i, k] = (X[i, k] - x0[k]) * mean_s g_s[i, k]`` where ``x0`` is the
    baseline row, ``g_s = d A_L[i, t] / d X`` at the path point
    ``x0 + alpha_s (X[i] - x0)`` and ``alpha_s = (s + 1/2) / steps`` for
    ``s = 0..steps-1``: the midpoint rule, whose error in the completeness sum
    ``sum_k out[i, k] = f(X[i]) - f(x0)`` falls as ``1 / steps**2``.

    Parameters
    ----------
    params, layout, target, work, grads
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
    block = max(1, work.shape[0] // _row_size(layout))
    scale = dtype(1.0 / steps)
    for start in range(0, n, block):
        m = min(block, n - start)
        xb = _rows(X, start, m)
        ob = _rows(out, start, m)
        acts, deltas, path, dX = _block(layout, work, m, n_in)
        resolve = False
        for r in range(m):
            resolve = resolve or target[start + r] < 0
        if resolve:
            _resolve_targets(network_forward(params, layout, xb, acts), target, start)
        for r in range(m):
            for k in range(n_in):
                ob[r, k] = dtype(0)
        for s in range(steps):
            alpha = dtype((s + 0.5) / steps)
            for r in range(m):
                x0 = baseline[0] if shared else baseline[start + r]
                for k in range(n_in):
                    path[r, k] = x0[k] + alpha * (xb[r, k] - x0[k])
            network_forward(params, layout, path, acts)
            _backward_from_target(
                params, layout, grads, path, acts, deltas, target, start, dX
            )
            for r in range(m):
                for k in range(n_in):
                    ob[r, k] += dX[r, k]
        for r in range(m):
            x0 = baseline[0] if shared else baseline[start + r]
            for k in range(n_in):
                ob[r, k] = (xb[r, k] - x0[k]) * (ob[r, k] * scale)
    return out
