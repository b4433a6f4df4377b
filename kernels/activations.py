"""Activation functions applied in place to a block of rows, and their derivatives.

The derivative is computed from the forward *output* ``a`` (STYLE #6): sigmoid' is
``a (1 - a)``, tanh' is ``1 - a**2``, relu' is ``a > 0``. Backward therefore needs no
stored pre-activation. The functions take a layer's whole block of rows (the
``_row`` versions one row), so the dense kernels run the epilogue once per block,
right after its product.
"""

from .config import internal, public
from .views import _view
from .vmath import _exp, _sigmoid, _tanh

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5

#: Slope of leaky ReLU for negative inputs.
LEAKY_SLOPE = 0.01

#: Name -> code, for the Python layer (STYLE #5).
ACTIVATIONS = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}


@internal
def _bias_activation(Z, b, act):
    """Overwrite every row ``z`` of ``Z`` with ``act(z + b)``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_out)
        Pre-activations without bias; overwritten with the activation outputs.
    b : ndarray of shape (n_out,)
        Bias, same dtype as ``Z``.
    act : int
        Activation code.

    The loop over rows is inside each activation's branch, so a batch of short rows
    costs no call and no view per row. Sigmoid, tanh and the softmax's exponentials
    are :mod:`.vmath`'s, which LLVM vectorizes (libm's would be one call per
    element). They run in one loop over the whole block in memory order, after a
    pass that adds the bias (and, for softmax, subtracts the row maximum): a loop
    per row would leave rows as short as 8 units, fewer than the vectorized loop
    takes per iteration, to its scalar remainder. ``Z`` is therefore C-contiguous,
    as every kernel's arrays are. Sigmoid never overflows: ``exp`` is only taken of
    non-positive numbers.
    """
    one = Z.dtype.type(1)
    n, m = Z.shape
    if act == IDENTITY or act == RELU or act == LEAKY_RELU:
        # one loop for the three piecewise-linear ones (one loop compiles faster
        # than three): z >= 0 stays, z < 0 is scaled by 1 or LEAKY_SLOPE, or is 0
        # for relu (not 0 * z: -inf would give NaN); NaN fails z >= 0, stays NaN
        relu = act == RELU
        slope = Z.dtype.type(1.0 if act == IDENTITY else LEAKY_SLOPE)
        zero = Z.dtype.type(0)
        for i in range(n):
            for j in range(m):
                z = Z[i, j] + b[j]
                low = zero if relu else slope * z
                Z[i, j] = z if z >= zero or z != z else low
    elif act == SIGMOID or act == TANH:
        for i in range(n):
            for j in range(m):
                Z[i, j] += b[j]
        flat = _view(Z, 0, (n * m,))  # one vectorized loop over the whole block
        if act == SIGMOID:
            for t in range(n * m):
                flat[t] = _sigmoid(flat[t])
        else:
            for t in range(n * m):
                flat[t] = _tanh(flat[t])
    elif act == SOFTMAX:
        for i in range(n):
            zmax = Z[i, 0] + b[0]
            for j in range(m):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                zmax = max(zmax, z)
            for j in range(m):
                Z[i, j] -= zmax
        flat = _view(Z, 0, (n * m,))
        for t in range(n * m):
            flat[t] = _exp(flat[t])
        for i in range(n):
            total = Z.dtype.type(0)
            for j in range(m):
                total += Z[i, j]
            inv = one / total
            for j in range(m):
                Z[i, j] *= inv


@internal
def _activation_grad(A, D, act):
    """Turn ``D`` = dL/dA into dL/dZ in place, using the forward outputs ``A``.

    Parameters
    ----------
    A : ndarray of shape (n_samples, n_out)
        Outputs of the activation.
    D : ndarray of shape (n_samples, n_out)
        dL/dA on entry, dL/dZ on exit.
    act : int
        Activation code. For ``SOFTMAX`` this is the exact Jacobian-vector product
        ``a * (d - sum(a * d))`` of each row.
    """
    one = A.dtype.type(1)
    zero = A.dtype.type(0)
    n, m = A.shape
    a, d = _view(A, 0, (n * m,)), _view(D, 0, (n * m,))  # as _bias_activation's
    if act == IDENTITY:
        return
    elif act == SIGMOID:
        for t in range(n * m):
            d[t] *= a[t] * (one - a[t])
    elif act == TANH:
        for t in range(n * m):
            d[t] *= one - a[t] * a[t]
    elif act == RELU or act == LEAKY_RELU:
        slope = A.dtype.type(0.0 if act == RELU else LEAKY_SLOPE)
        for t in range(n * m):
            d[t] *= one if a[t] > zero else slope
    elif act == SOFTMAX:
        for i in range(n):
            dot = zero
            for j in range(m):
                dot += A[i, j] * D[i, j]
            for j in range(m):
                D[i, j] = A[i, j] * (D[i, j] - dot)


@internal
def _bias_activation_row(row, b, act):
    """Overwrite ``row`` (shape (n_out,)) with ``act(row + b)``: one row of
    :func:`_bias_activation`."""
    _bias_activation(row.reshape((1, row.shape[0])), b, act)


@internal
def _activation_grad_row(a, d, act):
    """Turn ``d`` = dL/dA into dL/dZ in place for one row (shape (n_out,)), using the
    forward output ``a``: :func:`_activation_grad` on one row."""
    m = a.shape[0]
    _activation_grad(a.reshape((1, m)), d.reshape((1, m)), act)


bias_activation_row = public(_bias_activation_row)
activation_grad_row = public(_activation_grad_row)
