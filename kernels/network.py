"""Whole-network kernels: forward, backward, loss, a training step, epochs of fit.

The arguments come grouped in tuples (STYLE #14):

``net = (params, layout, config, stats)`` or ``(params, layout, config, stats, path)``
    The network, laid out as :mod:`fastnn.kernels.layout` describes. ``path``,
    :data:`~fastnn.kernels.dense.BLAS` or :data:`~fastnn.kernels.dense.LOOPS`, is
    the dense layers' path for every layer, read from the tuple's type: compiled for
    one path, a kernel holds none of the other's code (and compiles faster). Without
    it, each call chooses by its rows (:func:`~fastnn.kernels.dense.path_for`).
``optim = (code, hyper, state, step)``
    The optimizer (see :mod:`fastnn.kernels.optimizers`); ``step`` is an int64 array
    of shape (1,) holding the step count.
``data = (X, Y, sample_weight)``
    A batch: inputs of shape (n_samples, n_in), targets of shape (n_samples, n_out)
    (one-hot rows for cross-entropy) and per-sample loss weights of shape
    (n_samples,), or of shape (0,) for none (see :func:`loss_delta`).
``scratch = (grads, work, backup)``
    Gradients laid out like ``params``; the workspace, at least
    ``layout.workspace_size(layout, n_samples)`` entries; and a buffer that receives
    the parameters from before an update, or an empty one for none.

``mode`` is ``INFERENCE`` (running statistics, no dropout), ``TRAINING`` (batch
statistics, dropout) or ``TRAINING_UPDATE`` (the same, and the running statistics
move). Dropout masks are drawn from ``(seed, step, layer)``, ``step`` being the
optimizer's step count, so the gradients (:func:`train_step` outside
``TRAINING_UPDATE``) see the masks the next step will use. Views into the buffers are
made inside the kernels (:mod:`.views`) and allocate nothing, so a training step
costs no heap allocation whatever the depth.
"""

import numpy as np

from .activations import IDENTITY, SIGMOID, SOFTMAX
from .batchnorm import (
    _batch_norm_backward,
    _batch_norm_normalize,
    _batch_norm_running,
    _batch_norm_stats,
)
from .checks import _all_finite, _first_not_finite
from .config import inlined, internal, jit, public
from .dense import (
    _activation_dropout_grad,
    _backward_blas,
    _backward_loops,
    _dense_backward_dropout,
    _dense_forward_dropout,
    _epilogue,
    _forward_blas,
    _forward_loops,
    _pick,
)
from .dropout import _dropout_key
from .layout import (
    ACT,
    BN_EPS,
    BN_MOMENTUM,
    DROPOUT,
    N_IN,
    N_OUT,
    NORM,
    STATS,
    _layer_params,
    _norm_params,
    _rows_that_fit,
    _slab,
    _slab_size,
    _slab_start,
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
from .optimizers import _optimizer_update
from .views import _owned, _view

INFERENCE, TRAINING, TRAINING_UPDATE = range(3)
# IDENTITY as a run-time value: a literal argument would make Numba compile a second,
# literal-specialized copy of the dense forward kernels and below.
_NO_ACTIVATION = np.array([IDENTITY])


@internal
def _dropout_rate(config, layer, mode):
    return config[layer, DROPOUT] if mode != INFERENCE else 0.0


@inlined
def _network_forward(net, X, work, mode, seed, step):
    """Run every layer on ``X``; returns a view of the last layer's output.

    Parameters
    ----------
    net : tuple (params, layout, config, stats)
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
    params, layout, config, stats = net[0], net[1], net[2], net[3]
    forward = _pick(net, _forward_blas, _forward_loops, _dense_forward_dropout)
    n = X.shape[0]
    prev = X
    start = np.int64(0)  # not 0: a literal would compile _slab twice
    for layer in range(layout.shape[0]):
        n_out = layout[layer, N_OUT]
        A, _, Ad, H, mean, inv_std = _slab(work, start, n, n_out)
        W, b = _layer_params(params, layout, layer)
        act = layout[layer, ACT]
        p = _dropout_rate(config, layer, mode)
        key = _dropout_key(seed, step, layer) if p > 0 else np.uint64(0)
        if layout[layer, NORM] == 0:
            forward(prev, W, b, act, A, Ad, key, p)
        else:
            gamma, beta = _norm_params(params, layout, layer)
            so = layout[layer, STATS]
            running = _view(stats, so, (2, n_out))
            eps = config[layer, BN_EPS]
            no_dropout = np.uint64(0)
            forward(prev, W, b, _NO_ACTIVATION[0], A, A, no_dropout, 0.0)
            if mode == INFERENCE:
                _batch_norm_running(running, eps, mean, inv_std)
            else:
                momentum = config[layer, BN_MOMENTUM]
                update = mode == TRAINING_UPDATE
                _batch_norm_stats(A, mean, inv_std, eps, running, momentum, update)
            _batch_norm_normalize(A, H, mean, inv_std, gamma)
            _epilogue(A, beta, act, Ad, key, p)
        prev = Ad if p > 0 else A
        start += _slab_size(n, n_out)
    return prev


@jit
def network_forward(net, X, work, mode, seed, step):
    """:func:`_network_forward`, for Python and ``@njit`` code: the returned view of
    ``work`` holds a reference to it (:func:`~.views._owned`)."""
    return _owned(_network_forward(net, X, work, mode, seed, step), work)


@inlined
def _network_backward(net, grads, X, work, last_act, mode, masks, dX):
    """Backpropagate the last layer's delta, already in its slab of ``work``, down
    to the input; the inverse walk of :func:`_network_forward` (run it first, in the
    same ``mode``).

    Parameters
    ----------
    net : tuple (params, layout, config, stats)
    grads : ndarray of shape (n_params,) or (0,)
        Receives the gradients of every parameter; when empty only the input
        gradient is computed (what the explanations need).
    X : ndarray of shape (n_samples, n_in)
        The input the forward pass ran on.
    work : ndarray
        The workspace of that forward pass, with dL/d(output) in the last layer's
        ``D``; every layer's ``D`` is overwritten with its dL/dZ.
    last_act : int
        The activation the last layer's delta must still go through (``IDENTITY``
        when it already holds dL/dZ).
    mode : int
        The forward pass's mode: batch statistics and dropout in training.
    masks : tuple (seed, step)
        The dropout masks of the forward pass.
    dX : ndarray of shape (n_samples, n_in) or (0, 0)
        Receives dL/dX unless empty.
    """
    params, layout, config = net[0], net[1], net[2]
    seed, step = masks
    backward = _pick(net, _backward_blas, _backward_loops, _dense_backward_dropout)
    n = X.shape[0]
    n_layers = layout.shape[0]
    params_too = grads.size != 0
    no_dw = _view(work, 0, (0, 0))
    no_db = _view(work, 0, (0,))
    start = _slab_start(layout, n, n_layers - 1)
    for layer in range(n_layers - 1, -1, -1):
        n_out = layout[layer, N_OUT]
        A, D, _, H, _, inv_std = _slab(work, start, n, n_out)
        act = last_act if layer == n_layers - 1 else layout[layer, ACT]
        p = _dropout_rate(config, layer, mode)
        key = _dropout_key(seed, step, layer) if p > 0 else np.uint64(0)
        W, _ = _layer_params(params, layout, layer)
        dW, db = _layer_params(grads, layout, layer) if params_too else (no_dw, no_db)
        if layout[layer, NORM] != 0:
            _activation_dropout_grad(A, D, act, key, p)
            gamma, _ = _norm_params(params, layout, layer)
            d_gamma, d_beta = (
                _norm_params(grads, layout, layer) if params_too else (no_db, no_db)
            )
            _batch_norm_backward(D, H, gamma, inv_std, d_gamma, d_beta,
                                 mode != INFERENCE)  # fmt: skip
            act = IDENTITY
            p = 0.0  # the mask is already applied
        inp, d_in = X, dX
        if layer > 0:
            n_in = layout[layer, N_IN]
            start = start - _slab_size(n, n_in)
            A_in, d_in, Ad_in, _, _, _ = _slab(work, start, n, n_in)
            inp = Ad_in if _dropout_rate(config, layer - 1, mode) > 0 else A_in
        backward(inp, W, A, D, act, dW, db, d_in, key, p)


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


@internal
def _output_delta(layout, work, n):
    """The last layer's delta ``D`` in the workspace for ``n`` rows."""
    last = layout.shape[0] - 1
    return _slab(work, _slab_start(layout, n, last), n, layout[last, N_OUT])[1]


@jit
def network_loss(net, data, loss, work, mode, seed, step):
    """The loss of the network on ``data``, as :func:`train_step` computes it.

    Arguments as for :func:`train_step`, ``step`` being the step count itself (an
    int); the running statistics are not updated whatever ``mode`` says.
    """
    X, Y, sample_weight = data
    if mode == TRAINING_UPDATE:
        mode = TRAINING
    P = _network_forward(net, X, work, mode, seed, step)
    act = net[1][net[1].shape[0] - 1, ACT]
    D = _output_delta(net[1], work, X.shape[0])
    return _loss_delta(P, Y, loss, act, D, sample_weight)[0]


@inlined
def _train_step(net, optim, data, scratch, loss, mode, seed):
    """One training step on a batch, or its gradients only.

    Forward, loss and backward fill ``grads`` (laid out like ``params``). In mode
    ``TRAINING_UPDATE`` the running statistics of batch normalization move and the
    optimizer then updates ``params`` (see
    :func:`~fastnn.kernels.optimizers.optimizer_update`); in the other modes nothing
    but ``grads`` and ``work`` is written. A whole step and the gradients alone are one
    compiled function, so that a model compiles one of them, not two.

    Parameters
    ----------
    net : tuple (params, layout, config, stats)
    optim : tuple (code, hyper, state, step)
        The step count ``step[0]`` also selects the dropout masks.
    data : tuple (X, Y, sample_weight)
    scratch : tuple (grads, work, backup)
        ``backup``, when not empty, receives the parameters from before the update.
    loss : int
        Loss code (``MSE``, ``BCE``, ``CROSS_ENTROPY``).
    mode : int
        ``TRAINING_UPDATE`` for a step; ``TRAINING`` or ``INFERENCE`` for gradients
        with dropout and batch statistics, or without.
    seed : int
        Selects the dropout masks.

    Returns
    -------
    float
        The loss before any update. When it is not finite, backward and the update
        are skipped: ``params``, ``grads`` and the optimizer's state are left as they
        were (the running statistics of batch normalization have moved).
    """
    params, layout = net[0], net[1]
    X, Y, sample_weight = data
    grads, work, backup = scratch
    step = optim[3]
    n = X.shape[0]
    last = layout.shape[0] - 1
    P = _network_forward(net, X, work, mode, seed, step[0])
    # _output_delta's line, written here: one more helper under the step costs
    # cold compile time (numba#9566); the other callers share _output_delta
    D = _slab(work, _slab_start(layout, n, last), n, layout[last, N_OUT])[1]
    act = layout[last, ACT]
    value, last_act = _loss_delta(P, Y, loss, act, D, sample_weight)
    if not np.isfinite(value):
        return value
    no_dx = _view(work, 0, (0, 0))
    _network_backward(net, grads, X, work, last_act, mode, (seed, step[0]), no_dx)
    if mode == TRAINING_UPDATE:
        _optimizer_update(optim, params, grads, layout, backup)
    return value


train_step = public(_train_step)


@internal
def _gather_rows(src, order, epoch, start, dst):
    for r in range(dst.shape[0]):
        i = order[epoch, start + r]
        for k in range(src.shape[1]):
            dst[r, k] = src[i, k]


@jit
def fit_epochs(net, optim, data, scratch, loss, seed, plan, epoch_losses):
    """Several epochs of mini-batch training in one call.

    Parameters
    ----------
    net, optim, loss, seed
        As for :func:`train_step`.
    data : tuple (X, Y, sample_weight)
        The whole training set; ``sample_weight`` with mean 1 over it for a weighted
        average, or empty for none.
    scratch : tuple (grads, work, backup)
        As for :func:`train_step`, ``work`` sized for ``batch_size`` rows; ``backup``
        of shape (n_params,) is kept holding the parameters from before the latest
        update.
    plan : tuple (order, batch_size, batch, restorable)
        ``order``, an int64 array of shape (n_epochs, n_samples): row ``e`` is the
        order in which epoch ``e`` visits the samples. ``batch_size``: samples per
        step; the last batch of an epoch may be smaller. ``batch``: room for one batch
        of inputs, targets and weights gathered in ``order``, at least
        ``batch_size * (n_in + n_out + 1)`` entries. ``restorable``: whether
        ``backup`` already holds the parameters from before the latest update (true
        when an earlier call of the same fit made one).
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
    params = net[0]
    X, Y, sample_weight = data
    backup = scratch[2]
    order, batch_size, batch, restorable = plan
    n, n_in = X.shape
    n_out = Y.shape[1]
    for epoch in range(order.shape[0]):
        total = 0.0
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            xb = _view(batch, 0, (m, n_in))
            yb = _view(batch, m * n_in, (m, n_out))
            wb = _view(batch, m * (n_in + n_out), (m if sample_weight.size else 0,))
            _gather_rows(X, order, epoch, start, xb)
            _gather_rows(Y, order, epoch, start, yb)
            if sample_weight.size != 0:
                for r in range(m):
                    wb[r] = sample_weight[order[epoch, start + r]]
            value = _train_step(
                net, optim, (xb, yb, wb), scratch, loss, np.int64(TRAINING_UPDATE), seed
            )
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
    Numba's shape-mismatch message formatter into the caller, which costs seconds of
    compile time cold."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[start + i, j] = src[i, j]


@internal
def _rows(A, start, m):
    """Rows ``start:start + m`` of the C-contiguous 2-D ``A``, as a C-contiguous
    view."""
    n_cols = A.shape[1]
    flat = A.reshape(A.shape[0] * n_cols)
    return flat[start * n_cols : (start + m) * n_cols].reshape((m, n_cols))


@internal
def _infer(net, X, work):
    """:func:`_network_forward` in inference mode: what ``predict`` computes."""
    zero = np.int64(0)
    return _network_forward(net, X, work, np.int64(INFERENCE), zero, zero)


@jit
def predict_blocks(net, X, work, out):
    """Inference over ``X`` in blocks of rows; writes the output into ``out``.

    ``X`` is checked first: if it holds NaN or inf, nothing is computed and the flat
    index of the first such entry is returned (the Python layer's finiteness check,
    done here without a temporary).

    Parameters
    ----------
    net : tuple (params, layout, config, stats)
    X : ndarray of shape (n_samples, n_in)
    work : ndarray
        Workspace for as many rows at a time as fit (at least
        ``workspace_size(layout, 1)``).
    out : ndarray of shape (n_samples, n_out)

    Returns
    -------
    int
        -1 when ``out`` was written; else the flat index of the first entry of ``X``
        that is NaN or inf.
    """
    n, n_in = X.shape
    if not _all_finite(X):
        i, j = _first_not_finite(X)
        return i * n_in + j
    block = _rows_that_fit(net[1], work.shape[0], 0)
    for start in range(0, n, block):
        m = min(block, n - start)
        _copy_rows(_infer(net, _rows(X, start, m), work), out, start)
    return -1
