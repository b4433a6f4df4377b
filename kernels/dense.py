"""Fused dense-layer kernels: ``out = act(X @ W + b)`` and its gradient.

Two code paths, chosen by the shape of the batch (:data:`LOOP_MAX_ROWS`):

* **loops** — hand-written loops, no BLAS call, then one pass for bias and activation.
  The forward pass takes two rows by four inputs per pass over the outputs, so each
  weight loaded serves two rows; the weight gradient takes the batch's rows four at
  a time, so each pass over ``dW`` serves four rows. Best for a batch of a few rows,
  where a BLAS call costs more in overhead than in arithmetic.
* **blas** — ``np.dot`` into the preallocated output, then one fused pass for bias and
  activation (backward: one pass for the activation derivative, then BLAS).

All arrays are C-contiguous and share one dtype (float32 or float64); kernels allocate
nothing and validate nothing (the Python layer does that, once).
"""

import numpy as np
from numba.core import config as numba_config

from .activations import _activation_grad, _bias_activation
from .config import inlined, internal, jit, public
from .dropout import _dropout

#: The dispatchers use the loops for a batch of at most this many rows, BLAS for more,
#: whatever the layer's width. Chosen by ``benchmarks/switch_point.py`` (one BLAS
#: thread), forward + backward, median µs, loops / blas, on a 2-vCPU AMD EPYC VM
#: with AVX2 (OpenBLAS's Haswell kernels), about half as fast as the team VM
#: (2026-12-02, after the forward loops took two rows by four inputs per pass):
#:
#:     shape            float32            float64
#:     1x16x16          2.8 / 3.1          3.2 / 3.4
#:     1x128x10         4.6 / 4.2          5.0 / 4.9
#:     1x784x128       39.7 / 37.9        78.3 / 95.4
#:     2x784x128       56.4 / 207.7      117.8 / 242.5
#:     4x2x4            4.0 / 3.9          4.6 / 5.6
#:     4x4x1            3.6 / 3.5          3.9 / 4.7
#:     4x100x100       13.7 / 28.8        19.3 / 30.8
#:     4x512x512      245.7 / 551.3      440.7 / 874.6
#:     8x32x32          6.4 / 7.9          7.4 / 8.7
#:     8x100x100       18.2 / 27.0        35.0 / 37.2
#:     16x64x64        16.6 / 20.0        26.9 / 27.3
#:     16x256x1        17.4 / 6.5         17.2 / 7.5
#:     32x16x16         8.8 / 8.9          8.5 / 8.7
#:     64x32x4         15.6 / 8.8         15.5 / 9.7
#:     64x128x10       89.0 / 20.7        67.2 / 43.2
#:     200x8x2         16.0 / 6.8         15.9 / 12.0
#:     200x24x8        35.2 / 17.3        39.7 / 23.9
#:     64x784x128    1354.6 / 630.7     2524.9 / 1536.3
#:     256x512x512  11490.9 / 5206.3   25302.3 / 13145.7
#:
#: With a few rows, BLAS pays its packing and call overhead for little arithmetic and
#: the loops win or tie at every width, by up to 3.7x (2x784x128). From 8 to 16 rows
#: the loops still win on square layers in float32 (8x100x100: 1.5x) and tie in
#: float64, but lose on skinny ones (16x256x1: 2.3-2.7x), where the inner loop is too
#: short to vectorize; the switch stays at 4 rows, the same for every layer. From 64
#: rows BLAS wins by 1.6x to 4x whatever the shape.
LOOP_MAX_ROWS = 4

#: A network tuple's optional fifth entry, the dense layers' path: ``BLAS`` or
#: ``LOOPS`` for every layer. The whole-network kernels read it from the tuple's
#: type (:func:`_pick`), so a kernel compiled for one path holds none of the other's
#: code, and a first call compiles only the path it runs: the cold first step of the
#: 784-128-10 network took a median 14.0 s instead of 18.1 s on 64 rows (BLAS) and
#: 16.0 s instead of 17.5 s on 4 rows (loops), CPU seconds on the slower VM. A
#: network tuple of four entries chooses by the rows of each call, as
#: :func:`dense_forward` does, and holds both paths.
BLAS = None
LOOPS = True


def path_for(n_rows):
    """The path (:data:`BLAS` or :data:`LOOPS`) for calls on ``n_rows`` rows at a
    time, by :data:`LOOP_MAX_ROWS`."""
    return LOOPS if n_rows <= LOOP_MAX_ROWS else BLAS


def _typed_path(net):
    """``"blas"``, ``"loops"`` or ``"rows"`` (by the rows of each call) for the
    Numba type of a network tuple: what its fifth entry, if any, names."""
    from numba.core import types

    if len(net.types) < 5:
        return "rows"
    if isinstance(net.types[4], types.NoneType):
        return "blas"
    if isinstance(net.types[4], types.Boolean):
        return "loops"
    raise TypeError(
        f"a network's fifth entry must be BLAS or LOOPS, not {net.types[4]}"
    )


def _pick_py(net, blas, loops, by_rows):
    """Of three kernels, the one for the path the network tuple ``net`` names:
    ``blas`` for :data:`BLAS`, ``loops`` for :data:`LOOPS`, ``by_rows`` for none."""
    if len(net) < 5:
        return by_rows
    return blas if net[4] is BLAS else loops


if numba_config.DISABLE_JIT:
    _pick = _pick_py
else:  # pragma: no cover - compiled code only; the Python version stands in above
    from numba.extending import intrinsic

    @intrinsic
    def _pick(typingctx, net, blas, loops, by_rows):
        """:func:`_pick_py` at typing time: the result's type is the chosen kernel
        (the value is a placeholder: a call through it is resolved by its type), so
        the kernels not chosen are never typed, and never compiled."""
        chosen = {"blas": blas, "loops": loops, "rows": by_rows}[_typed_path(net)]

        def codegen(context, builder, signature, args):
            return context.get_dummy_value()

        return chosen(net, blas, loops, by_rows), codegen


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
    quads = n_in - n_in % 4
    pairs = n_samples - n_samples % 2
    for i in range(0, pairs, 2):  # two rows by four inputs per pass over the outputs
        r0, r1 = out[i], out[i + 1]
        for j in range(n_out):
            r0[j] = zero
            r1[j] = zero
        for k in range(0, quads, 4):
            a0, a1, a2, a3 = X[i, k], X[i, k + 1], X[i, k + 2], X[i, k + 3]
            c0, c1 = X[i + 1, k], X[i + 1, k + 1]
            c2, c3 = X[i + 1, k + 2], X[i + 1, k + 3]
            for j in range(n_out):
                w0, w1, w2, w3 = W[k, j], W[k + 1, j], W[k + 2, j], W[k + 3, j]
                r0[j] += a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3
                r1[j] += c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3
        for k in range(quads, n_in):
            a, c = X[i, k], X[i + 1, k]
            for j in range(n_out):
                r0[j] += a * W[k, j]
                r1[j] += c * W[k, j]
    for i in range(pairs, n_samples):  # an odd last row, one input at a time
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
    if X.shape[0] <= LOOP_MAX_ROWS:
        return _forward_loops(X, W, b, act, out, dropped, key, p)
    return _forward_blas(X, W, b, act, out, dropped, key, p)


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

    Picks the loop or the BLAS path by the batch's rows (:data:`LOOP_MAX_ROWS`). See
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


@inlined
def _weight_grad_loops(X, dZ, dW):
    """``dW = X.T @ dZ``, one pass over ``dW`` for every four rows of the batch."""
    n_samples, n_in = X.shape
    n_out = dZ.shape[1]
    zero = dW.dtype.type(0)
    for k in range(n_in):
        for j in range(n_out):
            dW[k, j] = zero
    blocked = n_samples - n_samples % 4
    for i in range(0, blocked, 4):
        d0, d1, d2, d3 = dZ[i], dZ[i + 1], dZ[i + 2], dZ[i + 3]
        for k in range(n_in):
            x0, x1, x2, x3 = X[i, k], X[i + 1, k], X[i + 2, k], X[i + 3, k]
            g = dW[k]
            for j in range(n_out):
                g[j] += x0 * d0[j] + x1 * d1[j] + x2 * d2[j] + x3 * d3[j]
    for i in range(blocked, n_samples):
        dz = dZ[i]
        for k in range(n_in):
            x = X[i, k]
            g = dW[k]
            for j in range(n_out):
                g[j] += x * dz[j]


@inlined
def _input_grad_loops(dZ, W, dX):
    """``dX = dZ @ W.T``, one row of the batch at a time (four at a time, as
    :func:`_weight_grad_loops` does, ran 1.4-1.8x faster on 4x100x100 but cost 0.4 s
    more of cold compile time on the slower VM, which the first call cannot spare)."""
    n_samples, n_in = dX.shape
    n_out = W.shape[1]
    zero = dX.dtype.type(0)
    for i in range(n_samples):
        dz = dZ[i]
        for k in range(n_in):
            w = W[k]
            acc = zero
            for j in range(n_out):
                acc += dz[j] * w[j]
            dX[i, k] = acc


@internal
def _backward_loops(X, W, out, d_out, act, dW, db, dX, key, p):
    _activation_dropout_grad(out, d_out, act, key, p)
    if dW.size != 0:
        _weight_grad_loops(X, d_out, dW)
    _bias_grad(d_out, db)
    if dX.size != 0:
        _input_grad_loops(d_out, W, dX)


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
    if X.shape[0] <= LOOP_MAX_ROWS:
        _backward_loops(X, W, out, d_out, act, dW, db, dX, key, p)
    else:
        _backward_blas(X, W, out, d_out, act, dW, db, dX, key, p)


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
    """Gradient of a dense layer; picks the loop or BLAS path by the batch's rows.

    See :func:`dense_backward_loops` for the parameters and what is written.
    """
    _dense_backward_dropout(X, W, out, d_out, act, dW, db, dX, np.uint64(0), 0.0)
