"""Fused dense-layer kernels: ``out = act(X @ W + b)`` and its gradient.

Two code paths, chosen by the amount of work (:data:`BLAS_MIN_MACS`):

* **loops** — hand-written loops, no BLAS call, the bias and activation applied to each
  output row right after it is computed. Best for small layers and skinny shapes (a
  batch of one), where a BLAS call costs more in overhead than in arithmetic.
* **blas** — ``np.dot`` into the preallocated output, then one fused pass for bias and
  activation (backward: one pass for the activation derivative, then BLAS).

All arrays are C-contiguous and share one dtype (float32 or float64); kernels allocate
nothing and validate nothing (the Python layer does that, once).
"""

import numpy as np

from .activations import _activation_grad, _bias_activation
from .config import inlined, internal, jit, public
from .dropout import _dropout

#: The dispatchers use BLAS when ``n_samples * n_in * n_out`` is at least this many
#: multiply-adds. Chosen by ``benchmarks/switch_point.py`` on the team VM (AMD EPYC,
#: znver4 with AVX-512, OPENBLAS_NUM_THREADS=1), forward + backward, median µs,
#: float32 (loops / blas):
#:
#:     4x2x4 (32 MACs)     1.7 / 1.9      1x64x64 (4096)      2.5 / 4.0
#:     4x8x8 (256)         2.0 / 2.1      4x32x32 (4096)      4.7 / 2.2
#:     4x16x16 (1024)      2.0 / 2.1      8x32x32 (8192)      4.2 / 3.9
#:     1x100x100 (10000)   6.6 / 3.6      4x100x100 (40000)  12.3 / 5.6
#:     1x784x128 (100352) 31.2 / 26.4     64x784x128 (6.4M)  1726 / 517
#:
#: Below ~4k MACs a call is dominated by overhead and the loops win or tie; above it,
#: OpenBLAS (through SciPy, called from compiled code, so no Python overhead) wins by
#: 2-3x, even at a batch of one. float64 gives the same picture.
BLAS_MIN_MACS = 4096


@internal
def _epilogue(out, b, act, dropped, key, p):
    """``out = act(out + b)``, then, when ``p > 0``, inverted dropout into ``dropped``
    (the masks drawn from ``key``, see :mod:`fastnn.kernels.dropout`)."""
    _bias_activation(out, b, act)
    if p > 0:
        _dropout(out, dropped, key, p)


@internal
def _forward_loops(X, W, b, act, out, dropped, key, p):
    n_samples, n_in = X.shape
    n_out = W.shape[1]
    zero = out.dtype.type(0)
    for i in range(n_samples):
        row = out[i]
        for j in range(n_out):
            row[j] = zero
        for k in range(n_in):
            x = X[i, k]
            for j in range(n_out):
                row[j] += x * W[k, j]
    _epilogue(out, b, act, dropped, key, p)
    return out


@internal
def _forward_blas(X, W, b, act, out, dropped, key, p):
    np.dot(X, W, out)
    _epilogue(out, b, act, dropped, key, p)
    return out


@inlined
def _dense_forward_dropout(X, W, b, act, out, dropped, key, p):
    """:func:`dense_forward`, with inverted dropout fused into its epilogue.

    ``out`` receives ``act(X @ W + b)`` and ``dropped`` (same shape) the output after
    dropout at rate ``p`` with the masks of ``key``
    (:func:`~fastnn.kernels.dropout.dropout_key`). With ``p == 0``, ``dropped``
    is not touched.
    """
    if X.shape[0] * X.shape[1] * W.shape[1] >= BLAS_MIN_MACS:
        return _forward_blas(X, W, b, act, out, dropped, key, p)
    return _forward_loops(X, W, b, act, out, dropped, key, p)


dense_forward_dropout = public(_dense_forward_dropout)


@jit
def dense_forward_loops(X, W, b, act, out):
    """``out[:] = act(X @ W + b)`` with fused loops (no BLAS). Returns ``out``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)
    act : int
        Activation code.
    out : ndarray of shape (n_samples, n_out)
        Overwritten with the layer output.
    """
    return _forward_loops(X, W, b, act, out, out, np.uint64(0), 0.0)


@jit
def dense_forward_blas(X, W, b, act, out):
    """``out[:] = act(X @ W + b)``: BLAS matmul, then one fused bias+activation pass.

    Same parameters and result as :func:`dense_forward_loops`.
    """
    return _forward_blas(X, W, b, act, out, out, np.uint64(0), 0.0)


@jit
def dense_forward(X, W, b, act, out):
    """``out[:] = act(X @ W + b)``; returns ``out``.

    Picks the loop or the BLAS path by size (:data:`BLAS_MIN_MACS`). See
    :func:`dense_forward_loops` for the parameters.
    """
    return _dense_forward_dropout(X, W, b, act, out, out, np.uint64(0), 0.0)


@internal
def _activation_dropout_grad(out, d_out, act, key, p):
    """``d_out``: dL/d(output after dropout) in, dL/dZ out: back through the dropout
    mask of ``key`` (when ``p > 0``), then through the activation, whose derivative
    is taken at ``out``."""
    if p > 0:
        _dropout(d_out, d_out, key, p)
    _activation_grad(out, d_out, act)


@internal
def _bias_grad(dZ, db):
    """``db = dZ.sum(0)``, unless ``db`` is empty (input gradients only)."""
    if db.size == 0:
        return
    zero = db.dtype.type(0)
    for j in range(db.shape[0]):
        db[j] = zero
    for i in range(dZ.shape[0]):
        for j in range(dZ.shape[1]):
            db[j] += dZ[i, j]


@internal
def _backward_loops(X, W, out, d_out, act, dW, db, dX, key, p):
    _activation_dropout_grad(out, d_out, act, key, p)
    n_samples, n_in = X.shape
    n_out = W.shape[1]
    zero = dW.dtype.type(0)
    if dW.size != 0:
        for k in range(n_in):
            for j in range(n_out):
                dW[k, j] = zero
        for i in range(n_samples):
            dz = d_out[i]
            for k in range(n_in):
                x = X[i, k]
                for j in range(n_out):
                    dW[k, j] += x * dz[j]
    _bias_grad(d_out, db)
    if dX.size == 0:
        return
    for i in range(n_samples):
        dz = d_out[i]
        for k in range(n_in):
            acc = zero
            for j in range(n_out):
                acc += dz[j] * W[k, j]
            dX[i, k] = acc


@internal
def _backward_blas(X, W, out, d_out, act, dW, db, dX, key, p):
    _activation_dropout_grad(out, d_out, act, key, p)
    if dW.size != 0:
        np.dot(X.T, d_out, dW)
    _bias_grad(d_out, db)
    if dX.size != 0:
        np.dot(d_out, W.T, dX)


@inlined
def _dense_backward_dropout(X, W, out, d_out, act, dW, db, dX, key, p):
    """:func:`dense_backward` for a layer whose output went through inverted dropout.

    ``d_out`` is the gradient with respect to the output *after* dropout; each row is
    sent back through the mask of ``key`` at rate ``p`` in the same pass as the
    activation derivative. Other arguments as :func:`dense_backward`.
    """
    if X.shape[0] * X.shape[1] * W.shape[1] >= BLAS_MIN_MACS:
        _backward_blas(X, W, out, d_out, act, dW, db, dX, key, p)
    else:
        _backward_loops(X, W, out, d_out, act, dW, db, dX, key, p)


dense_backward_dropout = public(_dense_backward_dropout)


@jit
def dense_backward_loops(X, W, out, d_out, act, dW, db, dX):
    """Gradient of a dense layer with fused loops (no BLAS).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
        The layer input.
    W : ndarray of shape (n_in, n_out)
    out : ndarray of shape (n_samples, n_out)
        The layer output from the forward pass (activations).
    d_out : ndarray of shape (n_samples, n_out)
        dL/d(out) on entry; overwritten with dL/dZ.
    act : int
        Activation code.
    dW : ndarray of shape (n_in, n_out) or of size 0
        Overwritten with ``X.T @ dZ``, unless ``dW.size == 0`` (input gradients only).
    db : ndarray of shape (n_out,) or of size 0
        Overwritten with ``dZ.sum(axis=0)``, unless ``db.size == 0``.
    dX : ndarray of shape (n_samples, n_in) or of size 0
        Overwritten with ``dZ @ W.T``, unless ``dX.size == 0`` (the first layer).
    """
    _backward_loops(X, W, out, d_out, act, dW, db, dX, np.uint64(0), 0.0)


@jit
def dense_backward_blas(X, W, out, d_out, act, dW, db, dX):
    """Gradient of a dense layer: one activation-derivative pass, then BLAS.

    Same parameters and results as :func:`dense_backward_loops`.
    """
    _backward_blas(X, W, out, d_out, act, dW, db, dX, np.uint64(0), 0.0)


@jit
def dense_backward(X, W, out, d_out, act, dW, db, dX):
    """Gradient of a dense layer; picks the loop or BLAS path by size.

    See :func:`dense_backward_loops` for the parameters and what is written.
    """
    _dense_backward_dropout(X, W, out, d_out, act, dW, db, dX, np.uint64(0), 0.0)
