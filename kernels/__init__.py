"""fastnn.kernels: fused Numba kernels for dense layers, losses and training steps.

Every public kernel is an ``@njit(nogil=True, cache=True)`` function (flags in
:mod:`fastnn.kernels.config`) that can be called from Python *or from your own
``@njit`` code*. The private ones (a leading underscore) are compiled without a
Python entry point, to compile faster: call them from compiled code only (from
Python they raise ``TypeError``).

Kernels take C-contiguous float32 or float64 arrays of one dtype, write into outputs
that the caller allocated, allocate nothing and validate nothing: shapes, dtypes and
contiguity are the caller's responsibility (the :mod:`fastnn` model layer checks them
once, at its boundary).

Conventions
-----------
A dense layer has weights ``W`` of shape ``(n_in, n_out)`` and bias ``b`` of shape
``(n_out,)``; on a batch ``X`` of shape ``(n_samples, n_in)`` it computes
``Z = X @ W + b`` and ``A = f(Z)``.

Activation codes (integers): ``IDENTITY``, ``SIGMOID``, ``TANH``, ``RELU``,
``LEAKY_RELU`` (slope ``LEAKY_SLOPE = 0.01``), ``SOFTMAX`` (row-wise). ``ACTIVATIONS``
maps names to codes.

Dense layers
------------
dense_forward(X, W, b, act, out) -> out
    ``out[:] = act(X @ W + b)``. ``out`` has shape ``(n_samples, n_out)``.
dense_backward(X, W, out, d_out, act, dW, db, dX) -> None
    Given ``out`` from the forward pass and ``d_out`` = dL/d(out), overwrites
    ``d_out`` with dL/dZ, writes ``dW = X.T @ dZ`` unless ``dW.size == 0``,
    ``db = dZ.sum(0)`` unless ``db.size == 0`` and ``dX = dZ @ W.T`` unless
    ``dX.size == 0`` (pass
    ``np.empty((0, 0), dtype)`` for the first layer, or for ``dW`` when only input
    gradients are wanted). For ``SOFTMAX`` this is the exact row-wise Jacobian-vector
    product. Derivatives come from the output ``out``; no pre-activation is stored.

dense_forward_dropout(X, W, b, act, out, dropped, key, p) -> out
    :func:`dense_forward` with inverted dropout at rate ``p`` fused into the
    epilogue: ``dropped`` receives the output after dropout. Masks come from ``key``
    (``dropout.dropout_key(seed, step, layer)``), so backward recomputes them.
dense_backward_dropout(X, W, out, d_out, act, dW, db, dX, key, p) -> None
    Its gradient: ``d_out`` is the gradient with respect to the output after
    dropout.

Both pick one of two paths by the batch's rows (``LOOP_MAX_ROWS``): fused loops for a
few rows (``dense_forward_loops``, ``dense_backward_loops``) or ``np.dot`` into the
output plus
one fused pass (``dense_forward_blas``, ``dense_backward_blas``). The four are public,
with the same signatures, for testing and for callers who know their shapes.

Whole networks, batch normalization, optimizers
-----------------------------------------------
``fastnn.kernels.network`` runs whole networks kept in one flat parameter buffer:
``network_forward``, ``network_loss``, ``train_step`` (a whole step, or the gradients
alone), ``fit_epochs`` and ``predict_blocks``. They take their arguments grouped in
tuples: the network ``net = (params, layout, config, stats)``, whose layout
``fastnn.kernels.layout`` describes (and computes: counts, offsets, views, workspace
sizes), the optimizer ``optim = (code, hyper, state, step)`` and a batch
``data = (X, Y, sample_weight)``; see their docstrings. ``fastnn.MLP.network`` and
``fastnn.MLP.step_arguments`` give them for a model. ``dropout`` holds the dropout
masks, ``batchnorm`` batch normalization (PyTorch's ``BatchNorm1d``), ``optimizers``
the fused SGD, Adam and AdamW updates, ``explain`` input gradients, gradient × input
and integrated gradients over a whole batch, ``blas`` the guard that keeps the
BLAS they call on one thread, and ``vmath`` the exp, sigmoid and tanh built from
arithmetic that LLVM vectorizes (Numba's ``math.exp`` and ``math.tanh`` are scalar
libm calls), which every epilogue uses. ``views`` makes the views into the flat
buffers, which cost no reference counting.

Losses
------
Each returns the loss as a float (accumulated in float64) and writes a gradient into a
caller-allocated buffer of the shape of ``P``. Means as in PyTorch: MSE and BCE over all
elements, cross-entropy over samples. Logs are clamped at -100 (as ``BCELoss``).

mse_loss(P, Y, dP) -> float
    ``mean((P - Y)**2)``; ``dP = 2 (P - Y) / P.size``.
bce_loss(P, Y, dP) -> float
    ``-mean(Y log P + (1 - Y) log(1 - P))``;
    ``dP = (P - Y) / max(P (1 - P), 1e-12) / P.size``.
cross_entropy_loss(P, Y, dP) -> float
    ``-sum(Y log P) / n_samples`` for one-hot ``Y``; ``dP = -Y / max(P, 1e-12) / n``.
sigmoid_bce_delta(P, Y, dZ) -> float
    BCE on sigmoid outputs; writes ``dZ = (P - Y) / P.size``, the gradient for the
    sigmoid's input, without dividing by ``P``.
softmax_cross_entropy_delta(P, Y, dZ) -> float
    Cross-entropy on softmax outputs; writes ``dZ = (P - Y) / n_samples``.

Example
-------
A two-layer forward pass inside your own compiled function::

    import numpy as np
    from numba import njit
    from fastnn import kernels as K

    @njit
    def predict(X, W1, b1, W2, b2, hidden, out):
        K.dense_forward(X, W1, b1, K.RELU, hidden)
        return K.dense_forward(hidden, W2, b2, K.SOFTMAX, out)
"""

from .activations import (
    ACTIVATIONS,
    IDENTITY,
    LEAKY_RELU,
    LEAKY_SLOPE,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
    activation_grad_row,
    bias_activation_row,
)
from .dense import (
    LOOP_MAX_ROWS,
    dense_backward,
    dense_backward_blas,
    dense_backward_dropout,
    dense_backward_loops,
    dense_forward,
    dense_forward_blas,
    dense_forward_dropout,
    dense_forward_loops,
)
from .losses import (
    BCE,
    CROSS_ENTROPY,
    LOSSES,
    MSE,
    bce_loss,
    cross_entropy_loss,
    mse_loss,
    sigmoid_bce_delta,
    softmax_cross_entropy_delta,
)

__all__ = [
    "ACTIVATIONS",
    "BCE",
    "CROSS_ENTROPY",
    "IDENTITY",
    "LEAKY_RELU",
    "LEAKY_SLOPE",
    "LOOP_MAX_ROWS",
    "LOSSES",
    "MSE",
    "RELU",
    "SIGMOID",
    "SOFTMAX",
    "TANH",
    "activation_grad_row",
    "bias_activation_row",
    "bce_loss",
    "cross_entropy_loss",
    "dense_backward",
    "dense_backward_blas",
    "dense_backward_dropout",
    "dense_backward_loops",
    "dense_forward",
    "dense_forward_blas",
    "dense_forward_dropout",
    "dense_forward_loops",
    "mse_loss",
    "sigmoid_bce_delta",
    "softmax_cross_entropy_delta",
]
