"""Whole-network kernels: forward, loss + gradients, a training step, epochs of fit.

A network is described by four arrays:

``params`` : ndarray of shape (n_params,)
    One flat buffer. Layer ``l`` keeps ``W`` (row-major, ``(n_in, n_out)``) at
    ``params[off:off + n_in * n_out]``, then ``b`` (``n_out``), then, with batch
    normalization, ``gamma`` and ``beta`` (``n_out`` each).
``layout`` : int64 ndarray of shape (n_layers, 6)
    One row per layer: ``n_in, n_out, off, act, norm, stats_off`` (``norm`` is 1 for
    batch normalization between the matmul and the activation; ``stats_off`` is where
    its running mean and variance start in ``stats``).
``config`` : float64 ndarray of shape (n_layers, 3)
    Per layer: the dropout rate applied to its output in training, and batch
    normalization's momentum and eps.
``stats`` : ndarray of shape (n_stats,)
    Running means and variances of the batch-normalized layers (``2 * n_out`` each).

``work`` is a workspace of :func:`workspace_size` entries for a batch of ``n_samples``:
per layer, its output ``A``, its delta ``D``, its output after dropout ``Ad``, its
normalized pre-activation ``H`` and two vectors of batch statistics. All views into
these buffers are made inside the kernels (slicing + reshape) and allocate nothing, so
a training step costs no heap allocation whatever the depth.

``mode`` is ``INFERENCE`` (running statistics, no dropout), ``TRAINING`` (batch
statistics, dropout) or ``TRAINING_UPDATE`` (the same, and the running statistics
move). Dropout masks are drawn from ``(seed, step, layer)``, ``step`` being the
optimizer's step count, so the gradients (:func:`train_step` outside
``TRAINING_UPDATE``) see the masks the next step will use.
"""

import numpy as np

from .activations import IDENTITY, SIGMOID, SOFTMAX
from .config import inlined, internal, jit, public
from .dense import (
    _activation_dropout_grad,
    _dense_backward_dropout,
    _dense_forward_dropout,
    _epilogue_row,
)
from .losses import (
    BCE,
    CROSS_ENTROPY,
    _bce_loss,
    _cross_entropy_loss,
    _mse_loss,
    _sigmoid_bce_delta,
    _softmax_cross_entropy_delta,
)
from .normalization import (
    _batch_norm_backward,
    _batch_norm_inference,
    _batch_norm_train,
    _dropout_key,
)
from .optimizers import _optimizer_update

N_IN, N_OUT, OFFSET, ACT, NORM, STATS = range(6)
DROPOUT, BN_MOMENTUM, BN_EPS = range(3)
INFERENCE, TRAINING, TRAINING_UPDATE = range(3)
# IDENTITY as a run-time value: a literal argument would make Numba compile a second,
# literal-specialized copy of _dense_forward_dropout and below (measured: +4 s cold).
_NO_ACTIVATION = np.array([IDENTITY])


def workspace_size(layout, n_samples):
    """Length of the ``work`` buffer the kernels need for a batch of ``n_samples``."""
    n_out = layout[:, N_OUT]
    return int(np.sum(4 * n_samples * n_out + 2 * n_out))


@internal
def _layer_params(params, layout, layer):
    """Views ``W`` of shape (n_in, n_out) and ``b`` of shape (n_out,) of one layer.

    Also works on a gradient buffer laid out like ``params``.
    """
    n_in = layout[layer, N_IN]
    n_out = layout[layer, N_OUT]
    off = layout[layer, OFFSET]
    W = params[off : off + n_in * n_out].reshape((n_in, n_out))
    b = params[off + n_in * n_out : off + n_in * n_out + n_out]
    return W, b


@internal
def _norm_params(params, layout, layer):
    """Views ``gamma`` and ``beta`` of a batch-normalized layer."""
    n_out = layout[layer, N_OUT]
    start = layout[layer, OFFSET] + (layout[layer, N_IN] + 1) * n_out
    return params[start : start + n_out], params[start + n_out : start + 2 * n_out]


layer_params = public(_layer_params)
norm_params = public(_norm_params)


@internal
def _slab_size(n, n_out):
    return 4 * n * n_out + 2 * n_out


@internal
def _slab(work, start, n, n_out):
    """One layer's workspace: A, D, Ad (dropped out), H (n, n_out) and two vectors."""
    nn = n * n_out
    blocks = work[start : start + 4 * nn].reshape((4, n, n_out))  # 1 reshape, not 4
    u = work[start + 4 * nn : start + 4 * nn + n_out]
    v = work[start + 4 * nn + n_out : start + 4 * nn + 2 * n_out]
    return blocks[0], blocks[1], blocks[2], blocks[3], u, v


@internal
def _slab_start(layout, n, layer):
    """Where layer ``layer``'s slab starts in the workspace for ``n`` rows; with
    ``layer = n_layers``, the size of that workspace."""
    start = 0
    for before in range(layer):
        start += _slab_size(n, layout[before, N_OUT])
    return start


@internal
def _rows_that_fit(layout, work_size, extra_per_row):
    """How many rows (at least 1) a workspace of ``work_size`` entries holds, each
    row taking ``extra_per_row`` entries besides the network's slabs."""
    n_layers = layout.shape[0]
    fixed = _slab_start(layout, 0, n_layers)
    per_row = _slab_start(layout, 1, n_layers) - fixed + extra_per_row
    return max(1, (work_size - fixed) // per_row)


@internal
def _dropout_rate(config, layer, mode):
    return config[layer, DROPOUT] if mode != INFERENCE else 0.0


@inlined
def _network_forward(params, layout, config, stats, X, work, mode, seed, step):
    """Run every layer on ``X``; returns a view of the last layer's output.

    Parameters
    ----------
    params, layout, config, stats
        The network (see the module docstring).
    X : ndarray of shape (n_samples, n_in)
    work : ndarray of shape (>= workspace_size(layout, n_samples),)
    mode : int
        ``INFERENCE``, ``TRAINING`` or ``TRAINING_UPDATE``.
    seed, step : int
        Select the dropout masks.

    Returns
    -------
    ndarray of shape (n_samples, n_out), a view into ``work``.
    """
    n = X.shape[0]
    prev = X
    start = np.int64(0)  # not 0: a literal would compile _slab twice
    for layer in range(layout.shape[0]):
        n_out = layout[layer, N_OUT]
        A, _, Ad, H, u, v = _slab(work, start, n, n_out)
        W, b = _layer_params(params, layout, layer)
        act = layout[layer, ACT]
        p = _dropout_rate(config, layer, mode)
        key = _dropout_key(seed, step, layer) if p > 0 else np.uint64(0)
        if layout[layer, NORM] == 0:
            _dense_forward_dropout(prev, W, b, act, A, Ad, key, p)
        else:
            gamma, beta = _norm_params(params, layout, layer)
            so = layout[layer, STATS]
            running = stats[so : so + 2 * n_out].reshape((2, n_out))
            eps = config[layer, BN_EPS]
            no_dropout = np.uint64(0)
            _dense_forward_dropout(prev, W, b, _NO_ACTIVATION[0], A, A, no_dropout, 0.0)
            if mode == INFERENCE:
                _batch_norm_inference(A, running, gamma, beta, eps, u, v)
                shift = v
            else:
                _batch_norm_train(A, H, u, v, eps, running, config[layer, BN_MOMENTUM],
                                 mode == TRAINING_UPDATE)  # fmt: skip
                for i in range(n):
                    for j in range(n_out):
                        A[i, j] = gamma[j] * H[i, j]
                shift = beta
            for i in range(n):
                _epilogue_row(A, i, shift, act, Ad, key, p)
        prev = Ad if p > 0 else A
        start += _slab_size(n, n_out)
    return prev


network_forward = public(_network_forward)


@internal
def _loss_and_delta(P, Y, loss, act, D):
    if loss == BCE and act == SIGMOID:
        return _sigmoid_bce_delta(P, Y, D), IDENTITY
    if loss == CROSS_ENTROPY and act == SOFTMAX:
        return _softmax_cross_entropy_delta(P, Y, D), IDENTITY
    if loss == BCE:
        return _bce_loss(P, Y, D), act
    if loss == CROSS_ENTROPY:
        return _cross_entropy_loss(P, Y, D), act
    return _mse_loss(P, Y, D), act


@inlined
def _loss_delta(P, Y, loss, act, D, sample_weight):
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
        return _loss_and_delta(P, Y, loss, act, D)
    n, n_out = P.shape
    total = 0.0
    back = act
    for i in range(n):
        rows = slice(i, i + 1)
        value, back = _loss_and_delta(P[rows], Y[rows], loss, act, D[rows])
        w = sample_weight[i]
        total += w * value
        scale = w / n
        for j in range(n_out):
            D[i, j] *= scale
    return total / n, back


loss_delta = public(_loss_delta)


@jit
def network_loss(
    params, layout, config, stats, X, Y, sample_weight, loss, work, mode, seed, step
):
    """The loss of the network on ``(X, Y)``, as :func:`train_step` computes it.

    Arguments as for :func:`train_step`, ``step`` being the step count itself (an
    int); the running statistics are not updated whatever ``mode`` says.
    """
    if mode == TRAINING_UPDATE:
        mode = TRAINING
    P = _network_forward(params, layout, config, stats, X, work, mode, seed, step)
    n, n_out = P.shape
    D = _slab(work, _slab_start(layout, n, layout.shape[0] - 1), n, n_out)[1]
    value, _ = _loss_delta(
        P, Y, loss, layout[layout.shape[0] - 1, ACT], D, sample_weight
    )
    return value


@inlined
def _train_step(
    params, grads, state, step, layout, config, stats, X, Y, sample_weight, loss, opt,
    hyper, work, mode, seed, backup,
):  # fmt: skip
    """One training step on the batch ``(X, Y)``, or its gradients only.

    Forward, loss and backward fill ``grads`` (laid out like ``params``). In mode
    ``TRAINING_UPDATE`` the running statistics of batch normalization move and the
    optimizer with code ``opt`` then updates ``params`` (see
    :func:`~fastnn.kernels.optimizers.optimizer_update`); in the other modes nothing
    but ``grads`` and ``work`` is written. A whole step and the gradients alone are one
    compiled function, so that a model compiles one of them, not two.

    Parameters
    ----------
    params, grads : ndarray of shape (n_params,)
    state : ndarray of shape (2, n_params)
        The optimizer's state.
    step : int64 ndarray of shape (1,)
        The optimizer's step count (it also selects the dropout masks).
    layout, config, stats
        The network (see the module docstring).
    X : ndarray of shape (n_samples, n_in)
    Y : ndarray of shape (n_samples, n_out)
        Targets (one-hot rows for cross-entropy).
    sample_weight : ndarray of shape (n_samples,) or (0,)
        Per-sample weights of the loss (see :func:`loss_delta`); empty for none.
    loss, opt : int
        Loss code (``MSE``, ``BCE``, ``CROSS_ENTROPY``) and optimizer code.
    hyper : float64 ndarray
        The optimizer's hyperparameters.
    work : ndarray of shape (>= workspace_size(layout, n_samples),)
    mode : int
        ``TRAINING_UPDATE`` for a step; ``TRAINING`` or ``INFERENCE`` for gradients
        with dropout and batch statistics, or without.
    seed : int
        Selects the dropout masks.
    backup : ndarray of shape (n_params,) or (0,)
        When not empty, receives the parameters from before the update.

    Returns
    -------
    float
        The loss before any update. When it is not finite, backward and the update
        are skipped: ``params``, ``grads`` and ``state`` are left as they were (the
        running statistics of batch normalization have moved).
    """
    n = X.shape[0]
    n_layers = layout.shape[0]
    P = _network_forward(params, layout, config, stats, X, work, mode, seed, step[0])
    start = _slab_start(layout, n, n_layers - 1)
    n_out = layout[n_layers - 1, N_OUT]
    D = _slab(work, start, n, n_out)[1]
    value, last_act = _loss_delta(
        P, Y, loss, layout[n_layers - 1, ACT], D, sample_weight
    )
    if not np.isfinite(value):
        return value
    no_dx = work[:0].reshape((0, 0))
    for layer in range(n_layers - 1, -1, -1):
        n_out = layout[layer, N_OUT]
        A, D, _, H, _, inv_std = _slab(work, start, n, n_out)
        act = last_act if layer == n_layers - 1 else layout[layer, ACT]
        p = _dropout_rate(config, layer, mode)
        key = _dropout_key(seed, step[0], layer) if p > 0 else np.uint64(0)
        W, _ = _layer_params(params, layout, layer)
        dW, db = _layer_params(grads, layout, layer)
        if layout[layer, NORM] != 0:
            _activation_dropout_grad(A, D, act, key, p)
            gamma, _ = _norm_params(params, layout, layer)
            d_gamma, d_beta = _norm_params(grads, layout, layer)
            _batch_norm_backward(D, H, gamma, inv_std, d_gamma, d_beta)
            act = IDENTITY
            p = 0.0  # the mask is already applied
        if layer > 0:
            n_in = layout[layer, N_IN]
            start = start - _slab_size(n, n_in)
            A_in, D_in, Ad_in, _, _, _ = _slab(work, start, n, n_in)
            inp = Ad_in if _dropout_rate(config, layer - 1, mode) > 0 else A_in
            _dense_backward_dropout(inp, W, A, D, act, dW, db, D_in, key, p)
        else:
            _dense_backward_dropout(X, W, A, D, act, dW, db, no_dx, key, p)
    if mode == TRAINING_UPDATE:
        _optimizer_update(opt, params, grads, state, step, hyper, layout, backup)
    return value


train_step = public(_train_step)


@internal
def _gather_rows(src, order, start, dst):
    for r in range(dst.shape[0]):
        i = order[start + r]
        for k in range(src.shape[1]):
            dst[r, k] = src[i, k]


@jit
def fit_epochs(
    params, grads, state, step, layout, config, stats, X, Y, sample_weight, order,
    batch_size, loss, opt, hyper, work, batch, backup, restorable, seed, epoch_losses,
):  # fmt: skip
    """Several epochs of mini-batch training in one call.

    Parameters
    ----------
    params, grads, state, step, layout, config, stats, loss, opt, hyper, seed
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
            value = _train_step(
                params, grads, state, step, layout, config, stats, xb, yb, wb, loss,
                opt, hyper, work, np.int64(TRAINING_UPDATE), seed, backup,
            )  # fmt: skip
            if not np.isfinite(value):
                epoch_losses[epoch] = value
                if restorable:
                    for i in range(params.shape[0]):  # not params[:] = (see _copy_rows)
                        params[i] = backup[i]
                return epoch
            restorable = True
            total += value * m
        epoch_losses[epoch] = total / n
    return -1


@internal
def _copy_rows(src, dst, start):
    """``dst[start:start + len(src)] = src`` as a loop: slice assignment would compile
    Numba's shape-mismatch message formatter (about 2 s cold) into the caller."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[start + i, j] = src[i, j]


@jit
def predict_blocks(params, layout, config, stats, X, work, out):
    """Inference over ``X`` in blocks of rows; writes the output into ``out``.

    Parameters
    ----------
    params, layout, config, stats
        The network.
    X : ndarray of shape (n_samples, n_in)
    work : ndarray
        Workspace for as many rows at a time as fit (at least
        ``workspace_size(layout, 1)``).
    out : ndarray of shape (n_samples, n_out)
    """
    n, n_in = X.shape
    block = _rows_that_fit(layout, work.shape[0], 0)
    flat_x = X.reshape(n * n_in)
    for start in range(0, n, block):
        m = min(block, n - start)
        xb = flat_x[start * n_in : (start + m) * n_in].reshape((m, n_in))
        P = _network_forward(
            params,
            layout,
            config,
            stats,
            xb,
            work,
            np.int64(INFERENCE),
            np.int64(0),
            np.int64(0),
        )
        _copy_rows(P, out, start)
    return out
