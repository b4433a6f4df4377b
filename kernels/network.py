"""Whole-network kernels: forward, loss + gradients, a training step, epochs of fit.

A network is described by three things:

``params`` : ndarray of shape (n_params,)
    One flat buffer. Layer ``l`` keeps ``W`` (row-major, ``(n_in, n_out)``) at
    ``params[off:off + n_in * n_out]`` and ``b`` right after it.
``layout`` : int64 ndarray of shape (n_layers, 4)
    One row per layer: ``n_in, n_out, off, act``.
``work`` : ndarray of shape (>= 2 * n_samples * sum(n_out),)
    Workspace: the layers' outputs, then their deltas, for a batch of ``n_samples``.
    See :func:`workspace_size`.

All views into these buffers are made inside the kernels (slicing + reshape) and
allocate nothing, so a training step costs no heap allocation whatever the depth.
"""

import numpy as np

from .activations import IDENTITY, SIGMOID, SOFTMAX
from .config import jit
from .dense import dense_backward, dense_forward
from .losses import (
    BCE,
    CROSS_ENTROPY,
    bce_loss,
    cross_entropy_loss,
    mse_loss,
    sigmoid_bce_delta,
    softmax_cross_entropy_delta,
)
from .optimizers import optimizer_update

N_IN, N_OUT, OFFSET, ACT = range(4)


def workspace_size(layout, n_samples):
    """Length of the ``work`` buffer the kernels need for a batch of ``n_samples``."""
    return 2 * n_samples * int(np.sum(layout[:, N_OUT]))


@jit
def layer_params(params, layout, layer):
    """Views ``W`` of shape (n_in, n_out) and ``b`` of shape (n_out,) of one layer."""
    n_in = layout[layer, N_IN]
    n_out = layout[layer, N_OUT]
    off = layout[layer, OFFSET]
    W = params[off : off + n_in * n_out].reshape((n_in, n_out))
    b = params[off + n_in * n_out : off + n_in * n_out + n_out]
    return W, b


@jit
def _total_outputs(layout):
    total = 0
    for layer in range(layout.shape[0]):
        total += layout[layer, N_OUT]
    return total


@jit
def network_forward(params, layout, X, work):
    """Run every layer on ``X``; returns a view of the last layer's output.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
    layout : int64 ndarray of shape (n_layers, 4)
    X : ndarray of shape (n_samples, n_in)
    work : ndarray of shape (>= workspace_size(layout, n_samples),)
        The layers' outputs are written to its first ``n_samples * sum(n_out)``
        entries, layer after layer.

    Returns
    -------
    ndarray of shape (n_samples, n_out), a view into ``work``.
    """
    n = X.shape[0]
    prev = X
    start = 0
    for layer in range(layout.shape[0]):
        W, b = layer_params(params, layout, layer)
        n_out = W.shape[1]
        out = work[start : start + n * n_out].reshape((n, n_out))
        dense_forward(prev, W, b, layout[layer, ACT], out)
        prev = out
        start += n * n_out
    return prev


@jit
def _loss_delta(P, Y, loss, act, D):
    if loss == BCE and act == SIGMOID:
        return sigmoid_bce_delta(P, Y, D), IDENTITY
    if loss == CROSS_ENTROPY and act == SOFTMAX:
        return softmax_cross_entropy_delta(P, Y, D), IDENTITY
    if loss == BCE:
        return bce_loss(P, Y, D), act
    if loss == CROSS_ENTROPY:
        return cross_entropy_loss(P, Y, D), act
    return mse_loss(P, Y, D), act


@jit
def loss_delta(P, Y, loss, act, D, sample_weight):
    """Loss of the output ``P`` against ``Y``, and the delta for the last layer.

    Writes into ``D`` the fused dL/dZ = ``(P - Y) / N`` for sigmoid + BCE and softmax +
    cross-entropy, and dL/dP otherwise. Returns ``(loss value, act)``, where ``act`` is
    the activation code backward must still differentiate through (``IDENTITY`` when
    ``D`` already holds dL/dZ).

    ``sample_weight`` of shape (n_samples,) scales each sample's term of the mean:
    the loss becomes ``sum_i w_i loss_i / n_samples`` (pass weights with mean 1 for a
    weighted average). Pass an empty array for the plain mean.
    """
    if sample_weight.size == 0:
        return _loss_delta(P, Y, loss, act, D)
    n, n_out = P.shape
    total = 0.0
    back = act
    for i in range(n):
        rows = slice(i, i + 1)
        value, back = _loss_delta(P[rows], Y[rows], loss, act, D[rows])
        w = sample_weight[i]
        total += w * value
        scale = w / n
        for j in range(n_out):
            D[i, j] *= scale
    return total / n, back


@jit
def network_gradients(params, grads, layout, X, Y, loss, work, sample_weight):
    """Forward, loss and backward: fills ``grads`` (laid out like ``params``).

    Parameters
    ----------
    params, grads : ndarray of shape (n_params,)
    layout : int64 ndarray of shape (n_layers, 4)
    X : ndarray of shape (n_samples, n_in)
    Y : ndarray of shape (n_samples, n_out)
        Targets (one-hot rows for cross-entropy).
    loss : int
        Loss code (``MSE``, ``BCE``, ``CROSS_ENTROPY``).
    work : ndarray of shape (>= workspace_size(layout, n_samples),)
    sample_weight : ndarray of shape (n_samples,) or (0,)
        Per-sample weights of the loss (see :func:`loss_delta`); empty for none.

    Returns
    -------
    float
        The loss before any update. When it is not finite, backward is skipped and
        ``grads`` is left as it was.
    """
    n = X.shape[0]
    n_layers = layout.shape[0]
    total = n * _total_outputs(layout)
    acts = work[:total]
    deltas = work[total : 2 * total]
    P = network_forward(params, layout, X, acts)
    n_out = P.shape[1]
    end = total
    D = deltas[end - n * n_out : end].reshape((n, n_out))
    value, last_act = loss_delta(
        P, Y, loss, layout[n_layers - 1, ACT], D, sample_weight
    )
    if not np.isfinite(value):
        return value
    no_dx = deltas[:0].reshape((0, 0))
    for layer in range(n_layers - 1, -1, -1):
        n_out = layout[layer, N_OUT]
        n_in = layout[layer, N_IN]
        start = end - n * n_out
        out = acts[start:end].reshape((n, n_out))
        D = deltas[start:end].reshape((n, n_out))
        act = last_act if layer == n_layers - 1 else layout[layer, ACT]
        W, _ = layer_params(params, layout, layer)
        dW, db = layer_params(grads, layout, layer)
        if layer > 0:
            inp = acts[start - n * n_in : start].reshape((n, n_in))
            dX = deltas[start - n * n_in : start].reshape((n, n_in))
            dense_backward(inp, W, out, D, act, dW, db, dX)
        else:
            dense_backward(X, W, out, D, act, dW, db, no_dx)
        end = start
    return value


@jit
def train_step(
    params, grads, state, step, layout, X, Y, sample_weight, loss, opt, hyper, work
):
    """One optimizer step on the batch ``(X, Y)``; returns the loss before it.

    :func:`network_gradients`, then :func:`~fastnn.kernels.optimizers.optimizer_update`
    with optimizer code ``opt``, ``state`` of shape (2, n_params), ``step`` an int64
    array of length 1 and ``hyper`` the float64 hyperparameters. When the loss is not
    finite nothing is updated.
    """
    value = network_gradients(params, grads, layout, X, Y, loss, work, sample_weight)
    if np.isfinite(value):
        optimizer_update(opt, params, grads, state, step, hyper, layout, params[:0])
    return value


@jit
def _gather_rows(src, order, start, dst):
    for r in range(dst.shape[0]):
        i = order[start + r]
        for k in range(src.shape[1]):
            dst[r, k] = src[i, k]


@jit
def fit_epochs(
    params, grads, state, step, layout, X, Y, sample_weight, order, batch_size, loss,
    opt, hyper, work, batch, backup, restorable, epoch_losses,
):  # fmt: skip
    """Several epochs of mini-batch training in one call.

    Parameters
    ----------
    params, grads, state, step, layout, loss, opt, hyper
        As for :func:`train_step`.
    X : ndarray of shape (n_samples, n_in)
    Y : ndarray of shape (n_samples, n_out)
    sample_weight : ndarray of shape (n_samples,) or (0,)
        Per-sample loss weights (mean 1 over the data set for a weighted average);
        empty for none.
    order : int64 ndarray of shape (n_epochs, n_samples)
        Row ``e`` is the order in which epoch ``e`` visits the samples.
    batch_size : int
        Samples per step; the last batch of an epoch may be smaller.
    work : ndarray of shape (>= workspace_size(layout, batch_size),)
    batch : ndarray of shape (>= batch_size * (n_in + n_out + 1),)
        Room for one batch of inputs, targets and weights, gathered in ``order``.
    backup : ndarray of shape (n_params,)
        The parameters from before the latest update (kept up to date here).
    restorable : bool
        Whether ``backup`` already holds the parameters from before the latest update
        (true when an earlier call of the same fit made one).
    epoch_losses : float64 ndarray of shape (n_epochs,)
        Receives each epoch's training loss, the mean of the batch losses weighted by
        batch size.

    Returns
    -------
    int
        -1 when every epoch ran. Otherwise the index of the epoch in which the loss
        became NaN or inf; training stopped there, and ``params`` holds the last
        parameters whose loss was finite (the update before is undone when
        ``backup`` holds its input; the optimizer state is not rolled back).
    """
    n, n_in = X.shape
    n_out = Y.shape[1]
    for epoch in range(order.shape[0]):
        total = 0.0
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            xb = batch[: m * n_in].reshape((m, n_in))
            yb = batch[m * n_in : m * (n_in + n_out)].reshape((m, n_out))
            wb = batch[m * (n_in + n_out) : m * (n_in + n_out) + m]
            _gather_rows(X, order[epoch], start, xb)
            _gather_rows(Y, order[epoch], start, yb)
            if sample_weight.size == 0:
                wb = wb[:0]
            else:
                for r in range(m):
                    wb[r] = sample_weight[order[epoch, start + r]]
            value = network_gradients(params, grads, layout, xb, yb, loss, work, wb)
            if not np.isfinite(value):
                epoch_losses[epoch] = value
                if restorable:
                    params[:] = backup
                return epoch
            optimizer_update(opt, params, grads, state, step, hyper, layout, backup)
            restorable = True
            total += value * m
        epoch_losses[epoch] = total / n
    return -1


@jit
def predict_blocks(params, layout, X, work, out):
    """Forward pass over ``X`` in blocks of rows; writes the output into ``out``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    work : ndarray
        Workspace for ``block = work.size // sum(n_out)`` rows at a time.
    out : ndarray of shape (n_samples, n_out)
    """
    n = X.shape[0]
    n_in = X.shape[1]
    block = max(1, work.shape[0] // _total_outputs(layout))
    flat_x = X.reshape(n * n_in)
    for start in range(0, n, block):
        m = min(block, n - start)
        xb = flat_x[start * n_in : (start + m) * n_in].reshape((m, n_in))
        P = network_forward(params, layout, xb, work)
        out[start : start + m] = P
    return out


@jit
def network_loss(params, layout, X, Y, loss, work, sample_weight):
    """The loss of the network on ``(X, Y)``, as :func:`network_gradients` computes it.

    ``work`` as for :func:`network_gradients`; its delta half is overwritten.
    """
    n = X.shape[0]
    total = n * _total_outputs(layout)
    P = network_forward(params, layout, X, work[:total])
    n_out = P.shape[1]
    D = work[2 * total - n * n_out : 2 * total].reshape((n, n_out))
    value, _ = loss_delta(
        P, Y, loss, layout[layout.shape[0] - 1, ACT], D, sample_weight
    )
    return value
